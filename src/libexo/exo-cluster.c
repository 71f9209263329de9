/* exo-cluster.c: the role interfaces of a cluster node.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: the interfaces ExoPeerHandle, ExoDiscovery (with its ::peer-found
 * and ::peer-lost signals) and ExoServer, whose functions only check the
 * instance and call the implementation; exo_device_capabilities_probe()
 * (what this host is, read from /proc, /sys and uname); and the process's
 * node id (exo_node_id_set_default(), exo_node_id_default()).
 *
 * Rules: no lock.  The interface functions keep no state: they are called,
 * and the signals emitted, in the implementing resource's main context (the
 * rule of every resource; the in-tree plugins run all of it there), and
 * their re-entrancy is the implementation's.  The probe reads files and
 * blocks briefly: any thread, at a resource's start, not per request.  The
 * node id set is an atomic pointer, set once (compare-and-exchange) and
 * never freed, so exo_node_id_default() may be called from any thread and
 * the string it returns lives as long as the process; the random fallback
 * is made once under g_once_init_enter().
 */
#include "exo-private.h"

#include <string.h>
#include <sys/utsname.h>

/* --- ExoPeerHandle ------------------------------------------------------- */

G_DEFINE_INTERFACE (ExoPeerHandle, exo_peer_handle, EXO_TYPE_RESOURCE)

static void
exo_peer_handle_default_init (ExoPeerHandleInterface *iface)
{
}

#define PEER_IFACE(self) EXO_PEER_HANDLE_GET_IFACE (self)

const char *
exo_peer_handle_get_peer_id (ExoPeerHandle *self)
{
  g_return_val_if_fail (EXO_IS_PEER_HANDLE (self), NULL);
  return PEER_IFACE (self)->get_peer_id (self);
}

const char *
exo_peer_handle_get_address (ExoPeerHandle *self)
{
  g_return_val_if_fail (EXO_IS_PEER_HANDLE (self), NULL);
  return PEER_IFACE (self)->get_address (self);
}

/**
 * exo_peer_handle_get_device_capabilities:
 * @self: a peer
 *
 * Returns: (transfer full): `a{sv}`
 */
GVariant *
exo_peer_handle_get_device_capabilities (ExoPeerHandle *self)
{
  g_return_val_if_fail (EXO_IS_PEER_HANDLE (self), NULL);
  return PEER_IFACE (self)->get_device_capabilities (self);
}

/**
 * exo_peer_handle_send_prompt_async:
 * @self: a peer
 * @shard: the shard the peer is to run
 * @prompt: the prompt
 * @request_id: the request
 * @params: (nullable): how the request is to be generated; %NULL for the
 *   defaults
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the peer has it (or the call failed)
 * @user_data: data for @callback
 *
 * Asks the peer to process @prompt (peer RPC `/peer/v1/prompt`).
 */
void
exo_peer_handle_send_prompt_async (ExoPeerHandle *self, const ExoShard *shard,
                                   const char *prompt, const char *request_id,
                                   const ExoGenerationParams *params,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (EXO_IS_PEER_HANDLE (self));
  PEER_IFACE (self)->send_prompt_async (self, shard, prompt, request_id, params, cancellable,
                                        callback, user_data);
}

gboolean
exo_peer_handle_send_prompt_finish (ExoPeerHandle *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (EXO_IS_PEER_HANDLE (self), FALSE);
  return PEER_IFACE (self)->send_prompt_finish (self, result, error);
}

/**
 * exo_peer_handle_send_tensor_async:
 * @self: a peer
 * @shard: the shard the peer is to run
 * @tensor: the input of its layers
 * @request_id: the request
 * @params: (nullable): how the request is to be generated; %NULL for the
 *   defaults
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the peer has it (or the call failed)
 * @user_data: data for @callback
 *
 * Sends the peer a tensor of a request (peer RPC `/peer/v1/tensor`).
 */
void
exo_peer_handle_send_tensor_async (ExoPeerHandle *self, const ExoShard *shard,
                                   ExoTensor *tensor, const char *request_id,
                                   const ExoGenerationParams *params,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (EXO_IS_PEER_HANDLE (self));
  PEER_IFACE (self)->send_tensor_async (self, shard, tensor, request_id, params, cancellable,
                                        callback, user_data);
}

gboolean
exo_peer_handle_send_tensor_finish (ExoPeerHandle *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (EXO_IS_PEER_HANDLE (self), FALSE);
  return PEER_IFACE (self)->send_tensor_finish (self, result, error);
}

void
exo_peer_handle_send_result_async (ExoPeerHandle *self, const char *request_id,
                                   const gint32 *tokens, gsize n_tokens,
                                   gboolean is_finished, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (EXO_IS_PEER_HANDLE (self));
  PEER_IFACE (self)->send_result_async (self, request_id, tokens, n_tokens, is_finished,
                                        cancellable, callback, user_data);
}

gboolean
exo_peer_handle_send_result_finish (ExoPeerHandle *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (EXO_IS_PEER_HANDLE (self), FALSE);
  return PEER_IFACE (self)->send_result_finish (self, result, error);
}

void
exo_peer_handle_collect_topology_async (ExoPeerHandle *self, const char *const *visited,
                                        guint max_depth, GCancellable *cancellable,
                                        GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (EXO_IS_PEER_HANDLE (self));
  PEER_IFACE (self)->collect_topology_async (self, visited, max_depth, cancellable,
                                             callback, user_data);
}

/**
 * exo_peer_handle_collect_topology_finish:
 * @self: a peer
 * @result: the result
 * @error: return location for an error
 *
 * Returns: (transfer full): the topology as JSON
 */
char *
exo_peer_handle_collect_topology_finish (ExoPeerHandle *self, GAsyncResult *result,
                                         GError **error)
{
  g_return_val_if_fail (EXO_IS_PEER_HANDLE (self), NULL);
  return PEER_IFACE (self)->collect_topology_finish (self, result, error);
}

/**
 * exo_peer_handle_send_cancel_async:
 * @self: a peer
 * @request_id: the request abandoned
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the peer has it (or the call failed)
 * @user_data: data for @callback
 *
 * Tells the peer that @request_id is abandoned: it drops the work of it
 * that arrives later.  A peer handle without this call fails it with
 * %G_IO_ERROR_NOT_SUPPORTED.
 */
void
exo_peer_handle_send_cancel_async (ExoPeerHandle *self, const char *request_id,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (EXO_IS_PEER_HANDLE (self));
  if (PEER_IFACE (self)->send_cancel_async == NULL)
    {
      g_task_report_new_error (self, callback, user_data, exo_peer_handle_send_cancel_async,
                               G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               "peer handle %s cannot cancel requests",
                               G_OBJECT_TYPE_NAME (self));
      return;
    }
  PEER_IFACE (self)->send_cancel_async (self, request_id, cancellable, callback, user_data);
}

gboolean
exo_peer_handle_send_cancel_finish (ExoPeerHandle *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (EXO_IS_PEER_HANDLE (self), FALSE);
  if (g_async_result_is_tagged (result, exo_peer_handle_send_cancel_async))
    return g_task_propagate_boolean (G_TASK (result), error);
  return PEER_IFACE (self)->send_cancel_finish (self, result, error);
}

/**
 * exo_peer_handle_send_failure_async:
 * @self: a peer (the API node of @request_id)
 * @request_id: the request whose work failed here
 * @failure: what failed, for the request's caller
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the peer has it (or the call failed)
 * @user_data: data for @callback
 *
 * Tells the API node of @request_id that its work failed on this node
 * (the prompt too long for the engine, the engine full, the next hop
 * gone): it fails the request with @failure at once instead of waiting
 * for progress that will not come.  A peer handle without this call fails
 * it with %G_IO_ERROR_NOT_SUPPORTED.  New in plugin ABI 3.2.
 */
void
exo_peer_handle_send_failure_async (ExoPeerHandle *self, const char *request_id,
                                    const GError *failure, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (EXO_IS_PEER_HANDLE (self));
  g_return_if_fail (request_id != NULL && failure != NULL);
  if (PEER_IFACE (self)->send_failure_async == NULL)
    {
      g_task_report_new_error (self, callback, user_data, exo_peer_handle_send_failure_async,
                               G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               "peer handle %s cannot report failures",
                               G_OBJECT_TYPE_NAME (self));
      return;
    }
  PEER_IFACE (self)->send_failure_async (self, request_id, failure, cancellable, callback,
                                         user_data);
}

/**
 * exo_peer_handle_send_failure_finish:
 * @self: a peer
 * @result: the result
 * @error: return location for an error
 *
 * Returns: whether the peer has it.  New in plugin ABI 3.2.
 */
gboolean
exo_peer_handle_send_failure_finish (ExoPeerHandle *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (EXO_IS_PEER_HANDLE (self), FALSE);
  if (g_async_result_is_tagged (result, exo_peer_handle_send_failure_async))
    return g_task_propagate_boolean (G_TASK (result), error);
  return PEER_IFACE (self)->send_failure_finish (self, result, error);
}

/* --- ExoDiscovery -------------------------------------------------------- */

G_DEFINE_INTERFACE (ExoDiscovery, exo_discovery, EXO_TYPE_RESOURCE)

static void
exo_discovery_default_init (ExoDiscoveryInterface *iface)
{
  /**
   * ExoDiscovery::peer-found:
   * @self: the discovery
   * @node_id: the peer's node id
   * @address: `host:port` of its server
   * @capabilities: its device capabilities, `a{sv}`
   */
  g_signal_new ("peer-found", G_TYPE_FROM_INTERFACE (iface), G_SIGNAL_RUN_LAST,
                G_STRUCT_OFFSET (ExoDiscoveryInterface, peer_found), NULL, NULL, NULL,
                G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_VARIANT);
  /**
   * ExoDiscovery::peer-lost:
   * @self: the discovery
   * @node_id: the peer that was not seen within the timeout
   */
  g_signal_new ("peer-lost", G_TYPE_FROM_INTERFACE (iface), G_SIGNAL_RUN_LAST,
                G_STRUCT_OFFSET (ExoDiscoveryInterface, peer_lost), NULL, NULL, NULL,
                G_TYPE_NONE, 1, G_TYPE_STRING);
}

/**
 * exo_discovery_list_peers:
 * @self: a discovery
 *
 * Returns: (transfer full): `a(sssa{sv})`
 */
GVariant *
exo_discovery_list_peers (ExoDiscovery *self)
{
  g_return_val_if_fail (EXO_IS_DISCOVERY (self), NULL);
  return EXO_DISCOVERY_GET_IFACE (self)->list_peers (self);
}

/* --- ExoServer ----------------------------------------------------------- */

G_DEFINE_INTERFACE (ExoServer, exo_server, EXO_TYPE_RESOURCE)

static void
exo_server_default_init (ExoServerInterface *iface)
{
}

guint16
exo_server_get_port (ExoServer *self)
{
  g_return_val_if_fail (EXO_IS_SERVER (self), 0);
  return EXO_SERVER_GET_IFACE (self)->get_port (self);
}

const char *
exo_server_get_listen_address (ExoServer *self)
{
  g_return_val_if_fail (EXO_IS_SERVER (self), NULL);
  return EXO_SERVER_GET_IFACE (self)->get_listen_address (self);
}

/* --- this host ------------------------------------------------------------ */

#define MAX_MODEL_CHARS 256

static guint64
mem_total_mib (void)
{
  g_autofree char *contents = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/meminfo", &contents, NULL, NULL))
    return 0;
  line = strstr (contents, "MemTotal:");
  if (line == NULL)
    return 0;
  return g_ascii_strtoull (line + strlen ("MemTotal:"), NULL, 10) / 1024;
}

static char *
product_name (void)
{
  g_autofree char *product = NULL;

  if (!g_file_get_contents ("/sys/devices/virtual/dmi/id/product_name", &product, NULL, NULL)
      || !g_utf8_validate (g_strstrip (product), -1, NULL) || *product == '\0')
    return g_strdup ("Linux");

  /* Peers refuse control characters. */
  for (char *c = product; *c != '\0'; c++)
    if ((guchar) *c < 0x20 || *c == 0x7f)
      *c = ' ';
  return g_utf8_substring (product, 0, MIN (g_utf8_strlen (product, -1), MAX_MODEL_CHARS));
}

/**
 * exo_device_capabilities_probe:
 *
 * Reads what this host is: `model` (the DMI product name, or "Linux"),
 * `chip` (the machine from uname) and `memory` (MemTotal in MiB), in the
 * `a{sv}` form of exo_peer_handle_get_device_capabilities().  Reads files:
 * call it when a resource starts, not per request.
 *
 * Returns: (transfer full): `a{sv}`
 */
GVariant *
exo_device_capabilities_probe (void)
{
  GVariantDict dict;
  struct utsname u;
  g_autofree char *model = product_name ();

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "model", "s", model);
  g_variant_dict_insert (&dict, "chip", "s", uname (&u) == 0 ? u.machine : "unknown");
  g_variant_dict_insert (&dict, "memory", "t", mem_total_mib ());
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

/* The id exo_node_id_set_default() gave; never freed (read without a lock). */
static char *set_node_id;

/**
 * exo_node_id_set_default:
 * @id: this process's node id (not empty)
 *
 * Sets the id exo_node_id_default() returns: the node id of the program, for
 * the resources not given one (the discovery, the node, the id peer requests
 * are signed with).  exo-node calls it with the id of `--node-id`, the
 * config's `node.id` or a generated one.  Call it once, before any thread
 * exists and before the resources are made; a second call with another id is
 * a programming error and changes nothing.
 *
 * Added in plugin ABI 2.1.
 */
void
exo_node_id_set_default (const char *id)
{
  char *copy;

  g_return_if_fail (id != NULL && *id != '\0');

  copy = g_strdup (id);
  if (!g_atomic_pointer_compare_and_exchange (&set_node_id, NULL, copy))
    {
      g_free (copy);
      g_return_if_fail (g_strcmp0 (g_atomic_pointer_get (&set_node_id), id) == 0);
    }
}

/**
 * exo_node_id_default:
 *
 * The node id for resources that are not given one: the id given to
 * exo_node_id_set_default() (exo-node gives it), else `$EXO_NODE_ID` (a
 * fallback for programs that embed libexo without exo-node and set no id),
 * else a random UUID made once per process, so that every resource of a
 * node agrees.
 *
 * Returns: (transfer none): the id
 */
const char *
exo_node_id_default (void)
{
  static char *process_node_id;
  const char *set = g_atomic_pointer_get (&set_node_id);
  const char *env;

  if (set != NULL)
    return set;
  env = g_getenv ("EXO_NODE_ID");
  if (env != NULL && *env != '\0')
    return env;
  if (g_once_init_enter (&process_node_id))
    g_once_init_leave (&process_node_id, g_uuid_string_random ());
  return process_node_id;
}
