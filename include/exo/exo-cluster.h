/* exo-cluster.h: the roles of a cluster node (discovery, server, peers).
 *
 * The wire formats are JSON (see docs/cluster-protocol.md); these interfaces
 * carry structured values as GVariant, and ExoPeerHandle's topology as the
 * JSON text a peer sent, so that libexo itself needs no JSON library.
 * ExoNodeRole, the node's orchestration, is in exo-node-role.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-resource.h>
#include <exo/exo-inference.h>
#include <exo/exo-generation-params.h>

G_BEGIN_DECLS

/* --- ExoPeerHandle ------------------------------------------------------- */

#define EXO_TYPE_PEER_HANDLE (exo_peer_handle_get_type ())
EXO_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (ExoPeerHandle, exo_peer_handle, EXO, PEER_HANDLE, ExoResource)

/**
 * ExoPeerHandleInterface:
 * @get_peer_id: the peer's node id
 * @get_address: where it is reached (`host:port`)
 * @get_device_capabilities: its capabilities as `a{sv}` (model s, chip s,
 *   memory t (MiB), flops-fp32 d, flops-fp16 d, flops-int8 d)
 * @send_prompt_async: ask the peer to process @prompt for @shard, to be
 *   generated with @params (%NULL: the defaults; copied if kept beyond the
 *   call); since plugin ABI 2.0 with @params
 * @send_tensor_async: send a tensor for @shard, with the @params of its
 *   request (as for @send_prompt_async)
 * @send_result_async: tell the peer the tokens of @request_id so far
 * @collect_topology_async: ask the peer for its topology (JSON), not
 *   visiting the ids in @visited, to @max_depth hops
 * @send_cancel_async: tell the peer that @request_id is abandoned (the
 *   client went away, or it failed): it drops the work of it that
 *   arrives later.  Optional (%NULL: the call fails with
 *   %G_IO_ERROR_NOT_SUPPORTED); since 0.2
 * @*_finish: finish the matching call
 *
 * A connection to another node.  Implementations are #ExoNetworkResource
 * subclasses: connect is a health probe, every call has a timeout and is
 * retried per the retry policy.
 */
struct _ExoPeerHandleInterface
{
  GTypeInterface parent_iface;

  const char *(*get_peer_id)               (ExoPeerHandle       *self);
  const char *(*get_address)               (ExoPeerHandle       *self);
  GVariant   *(*get_device_capabilities)   (ExoPeerHandle       *self);

  void        (*send_prompt_async)         (ExoPeerHandle       *self,
                                            const ExoShard      *shard,
                                            const char          *prompt,
                                            const char          *request_id,
                                            const ExoGenerationParams *params,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
  gboolean    (*send_prompt_finish)        (ExoPeerHandle       *self,
                                            GAsyncResult        *result,
                                            GError             **error);
  void        (*send_tensor_async)         (ExoPeerHandle       *self,
                                            const ExoShard      *shard,
                                            ExoTensor           *tensor,
                                            const char          *request_id,
                                            const ExoGenerationParams *params,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
  gboolean    (*send_tensor_finish)        (ExoPeerHandle       *self,
                                            GAsyncResult        *result,
                                            GError             **error);
  void        (*send_result_async)         (ExoPeerHandle       *self,
                                            const char          *request_id,
                                            const gint32        *tokens,
                                            gsize                n_tokens,
                                            gboolean             is_finished,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
  gboolean    (*send_result_finish)        (ExoPeerHandle       *self,
                                            GAsyncResult        *result,
                                            GError             **error);
  void        (*collect_topology_async)    (ExoPeerHandle       *self,
                                            const char *const   *visited,
                                            guint                max_depth,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
  char       *(*collect_topology_finish)   (ExoPeerHandle       *self,
                                            GAsyncResult        *result,
                                            GError             **error);
  void        (*send_cancel_async)         (ExoPeerHandle       *self,
                                            const char          *request_id,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
  gboolean    (*send_cancel_finish)        (ExoPeerHandle       *self,
                                            GAsyncResult        *result,
                                            GError             **error);
  void        (*send_failure_async)        (ExoPeerHandle       *self,
                                            const char          *request_id,
                                            const GError        *failure,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
  gboolean    (*send_failure_finish)       (ExoPeerHandle       *self,
                                            GAsyncResult        *result,
                                            GError             **error);

  /*< private >*/
  gpointer padding[4];
};

EXO_AVAILABLE_IN_ALL
const char *exo_peer_handle_get_peer_id             (ExoPeerHandle *self);
EXO_AVAILABLE_IN_ALL
const char *exo_peer_handle_get_address             (ExoPeerHandle *self);
EXO_AVAILABLE_IN_ALL
GVariant   *exo_peer_handle_get_device_capabilities (ExoPeerHandle *self);
EXO_AVAILABLE_IN_ALL
void        exo_peer_handle_send_prompt_async       (ExoPeerHandle *self, const ExoShard *shard,
                                                     const char *prompt, const char *request_id,
                                                     const ExoGenerationParams *params,
                                                     GCancellable *cancellable,
                                                     GAsyncReadyCallback callback, gpointer user_data);
EXO_AVAILABLE_IN_ALL
gboolean    exo_peer_handle_send_prompt_finish      (ExoPeerHandle *self, GAsyncResult *result,
                                                     GError **error);
EXO_AVAILABLE_IN_ALL
void        exo_peer_handle_send_tensor_async       (ExoPeerHandle *self, const ExoShard *shard,
                                                     ExoTensor *tensor, const char *request_id,
                                                     const ExoGenerationParams *params,
                                                     GCancellable *cancellable,
                                                     GAsyncReadyCallback callback, gpointer user_data);
EXO_AVAILABLE_IN_ALL
gboolean    exo_peer_handle_send_tensor_finish      (ExoPeerHandle *self, GAsyncResult *result,
                                                     GError **error);
EXO_AVAILABLE_IN_ALL
void        exo_peer_handle_send_result_async       (ExoPeerHandle *self, const char *request_id,
                                                     const gint32 *tokens, gsize n_tokens,
                                                     gboolean is_finished, GCancellable *cancellable,
                                                     GAsyncReadyCallback callback, gpointer user_data);
EXO_AVAILABLE_IN_ALL
gboolean    exo_peer_handle_send_result_finish      (ExoPeerHandle *self, GAsyncResult *result,
                                                     GError **error);
EXO_AVAILABLE_IN_ALL
void        exo_peer_handle_collect_topology_async  (ExoPeerHandle *self, const char *const *visited,
                                                     guint max_depth, GCancellable *cancellable,
                                                     GAsyncReadyCallback callback, gpointer user_data);
EXO_AVAILABLE_IN_ALL
char       *exo_peer_handle_collect_topology_finish (ExoPeerHandle *self, GAsyncResult *result,
                                                     GError **error);
EXO_AVAILABLE_IN_ALL
void        exo_peer_handle_send_cancel_async       (ExoPeerHandle *self, const char *request_id,
                                                     GCancellable *cancellable,
                                                     GAsyncReadyCallback callback, gpointer user_data);
EXO_AVAILABLE_IN_ALL
gboolean    exo_peer_handle_send_cancel_finish      (ExoPeerHandle *self, GAsyncResult *result,
                                                     GError **error);
EXO_AVAILABLE_IN_ALL
void        exo_peer_handle_send_failure_async      (ExoPeerHandle *self, const char *request_id,
                                                     const GError *failure,
                                                     GCancellable *cancellable,
                                                     GAsyncReadyCallback callback, gpointer user_data);
EXO_AVAILABLE_IN_ALL
gboolean    exo_peer_handle_send_failure_finish     (ExoPeerHandle *self, GAsyncResult *result,
                                                     GError **error);

/* --- ExoDiscovery -------------------------------------------------------- */

#define EXO_TYPE_DISCOVERY (exo_discovery_get_type ())
EXO_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (ExoDiscovery, exo_discovery, EXO, DISCOVERY, ExoResource)

/**
 * ExoDiscoveryInterface:
 * @list_peers: the peers known now, as `a(sssa{sv})`: (node id, address
 *   `host:port`, interface name, device capabilities)
 * @peer_found: class closure of #ExoDiscovery::peer-found
 * @peer_lost: class closure of #ExoDiscovery::peer-lost
 *
 * Finds other nodes.  Signals:
 * - `peer-found (s node_id, s address, GVariant caps a{sv})`: a new peer, or
 *   a known peer at a new address;
 * - `peer-lost (s node_id)`: not seen within the peer timeout.
 */
struct _ExoDiscoveryInterface
{
  GTypeInterface parent_iface;

  GVariant *(*list_peers) (ExoDiscovery *self);

  void      (*peer_found) (ExoDiscovery *self,
                           const char   *node_id,
                           const char   *address,
                           GVariant     *capabilities);
  void      (*peer_lost)  (ExoDiscovery *self,
                           const char   *node_id);

  /*< private >*/
  gpointer padding[8];
};

EXO_AVAILABLE_IN_ALL
GVariant *exo_discovery_list_peers (ExoDiscovery *self);

/* --- ExoServer ----------------------------------------------------------- */

#define EXO_TYPE_SERVER (exo_server_get_type ())
EXO_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (ExoServer, exo_server, EXO, SERVER, ExoResource)

/**
 * ExoServerInterface:
 * @get_port: the port it listens on (the real one when configured as 0)
 * @get_listen_address: the address it listens on
 *
 * Serves peers and users.  Initialize starts listening; cleanup stops.
 */
struct _ExoServerInterface
{
  GTypeInterface parent_iface;

  guint16     (*get_port)           (ExoServer *self);
  const char *(*get_listen_address) (ExoServer *self);

  /*< private >*/
  gpointer padding[8];
};

EXO_AVAILABLE_IN_ALL
guint16     exo_server_get_port           (ExoServer *self);
EXO_AVAILABLE_IN_ALL
const char *exo_server_get_listen_address (ExoServer *self);

/* --- this host ------------------------------------------------------------ */

EXO_AVAILABLE_IN_ALL
GVariant   *exo_device_capabilities_probe (void);
EXO_AVAILABLE_IN_ALL
const char *exo_node_id_default           (void);
EXO_AVAILABLE_IN_ALL
void        exo_node_id_set_default       (const char *id);

G_END_DECLS
