/* udp-discovery-fixture.c: nodes, a plain UDP sender, log capture and waits
 * for test-udp-discovery.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A Node is a discovery resource of the loaded plugin on 127.0.0.1 that
 * records the peers it found and lost; a Sender is a plain GSocket that
 * seals (or does not) what it sends with test_key.  The log writer keeps the
 * plugin's warnings in plugin_log for the cases to check.  One thread: the
 * nodes run on the test's thread-default main context, which the waits spin.
 */
#include "udp-discovery-fixture.h"

GType discovery_type;
ExoClusterKey *test_key;   /* the cluster key of every node here */
guint interval_ms;     /* broadcast-interval-ms of the nodes */
guint timeout_ms;      /* peer-timeout-ms of the nodes */
guint wait_ms;         /* upper bound of any wait */

/* --- log capture ----------------------------------------------------------- */

/* The plugin logs duplicate ids as warnings, which GTest would make fatal
 * through the default writer; they are captured here and checked instead. */
GPtrArray *plugin_log;

GLogWriterOutput
capture_writer (GLogLevelFlags   log_level,
                const GLogField *fields,
                gsize            n_fields,
                gpointer         user_data)
{
  const char *domain = NULL;
  const char *message = NULL;
  const char *resource_id = NULL;

  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_str_equal (fields[i].key, "GLIB_DOMAIN"))
        domain = fields[i].value;
      else if (g_str_equal (fields[i].key, "MESSAGE"))
        message = fields[i].value;
      else if (g_str_equal (fields[i].key, "EXO_RESOURCE_ID"))
        resource_id = fields[i].value;
    }
  if (g_strcmp0 (domain, "exo-udp-discovery") == 0)
    {
      g_assert_nonnull (resource_id);
      if (log_level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE))
        g_ptr_array_add (plugin_log, g_strdup (message));
      return G_LOG_WRITER_HANDLED;
    }
  /* libsoup's and GIO's chatter only when asked for. */
  if ((log_level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)) != 0 &&
      g_getenv ("G_MESSAGES_DEBUG") == NULL)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (log_level, fields, n_fields, user_data);
}

void
discard_log (const char     *log_domain,
             GLogLevelFlags  log_level,
             const char     *message,
             gpointer        user_data)
{
}

gboolean
log_contains (const char *needle)
{
  for (guint i = 0; i < plugin_log->len; i++)
    if (strstr (g_ptr_array_index (plugin_log, i), needle) != NULL)
      return TRUE;
  return FALSE;
}

/* --- helpers --------------------------------------------------------------- */

/* A UDP port of 127.0.0.1 that is free now, not handed out before. */
guint16
free_udp_port (void)
{
  static GHashTable *given = NULL;

  if (given == NULL)
    given = g_hash_table_new (NULL, NULL);

  for (;;)
    {
      g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                                G_SOCKET_PROTOCOL_UDP, NULL);
      g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
      g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
      g_autoptr(GSocketAddress) local = NULL;
      guint16 port;

      g_assert_true (g_socket_bind (socket, any, FALSE, NULL));
      local = g_socket_get_local_address (socket, NULL);
      port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
      if (!g_hash_table_contains (given, GUINT_TO_POINTER (port)))
        {
          g_hash_table_add (given, GUINT_TO_POINTER (port));
          return port;
        }
    }
}

guint64
metric_u64 (ExoResource *resource,
            const char  *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (resource);
  guint64 value = 0;

  g_assert_true (g_variant_lookup (metrics, key, "t", &value));
  return value;
}

guint
metric_u32 (ExoResource *resource,
            const char  *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (resource);
  guint32 value = 0;

  g_assert_true (g_variant_lookup (metrics, key, "u", &value));
  return value;
}

char *
metric_str (ExoResource *resource,
            const char  *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (resource);
  char *value = NULL;

  g_assert_true (g_variant_lookup (metrics, key, "s", &value));
  return value;
}

/* "127.0.0.1:PORT" for each port; NULL-terminated. */
char **
loopback_targets (const guint16 *ports,
                  guint          n)
{
  char **targets = g_new0 (char *, n + 1);

  for (guint i = 0; i < n; i++)
    targets[i] = g_strdup_printf ("127.0.0.1:%u", ports[i]);
  return targets;
}

/* --- nodes ------------------------------------------------------------------- */

static void
on_peer_found (ExoDiscovery *discovery,
               const char   *node_id,
               const char   *address,
               GVariant     *capabilities,
               Node         *node)
{
  g_assert_true (g_variant_is_of_type (capabilities, G_VARIANT_TYPE ("a{sv}")));
  g_assert_cmpstr (node_id, !=, node->node_id);
  g_hash_table_insert (node->peers, g_strdup (node_id), g_strdup (address));
  g_hash_table_insert (node->caps, g_strdup (node_id), g_variant_ref (capabilities));
  node->found++;
}

static void
on_peer_lost (ExoDiscovery *discovery,
              const char   *node_id,
              Node         *node)
{
  g_assert_true (g_hash_table_remove (node->peers, node_id));
  g_hash_table_remove (node->caps, node_id);
  node->lost++;
  node->last_lost_at = g_get_monotonic_time ();
}

Node *
node_new (const char         *node_id,
          guint16             port,
          const char * const *targets,
          const char         *first_property,
          ...)
{
  Node *node = g_new0 (Node, 1);
  g_autofree char *resource_id = g_strdup_printf ("discovery-%s-%u", node_id, port);
  va_list args;

  node->node_id = g_strdup (node_id);
  node->port = port;
  node->server_port = (guint16) (40000 + port % 20000);
  node->peers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  node->caps = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) g_variant_unref);
  node->resource = g_object_new (discovery_type,
                                 "id", resource_id,
                                 "node-id", node_id,
                                 "port", (guint) port,
                                 "listen-address", "127.0.0.1",
                                 "broadcast-addresses", targets,
                                 "broadcast-interval-ms", interval_ms,
                                 "peer-timeout-ms", timeout_ms,
                                 "server-port", (guint) node->server_port,
                                 "device-model", "test box",
                                 "device-chip", "test chip",
                                 "device-memory", (guint64) (1000 + port % 1000),
                                 NULL);
  va_start (args, first_property);
  if (first_property != NULL)
    g_object_set_valist (G_OBJECT (node->resource), first_property, args);
  va_end (args);
  g_signal_connect (node->resource, "peer-found", G_CALLBACK (on_peer_found), node);
  g_signal_connect (node->resource, "peer-lost", G_CALLBACK (on_peer_lost), node);
  return node;
}

void
node_start (Node *node)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_initialize (node->resource, &error));
  g_assert_no_error (error);
  g_assert_cmpint (exo_resource_get_state (node->resource), ==, EXO_RESOURCE_STATE_READY);
}

void
node_free (Node *node)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_cleanup (node->resource, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_hash_table_size (node->peers), ==, 0);   /* told on cleanup */
  g_signal_handlers_disconnect_by_data (node->resource, node);
  g_assert_finalize_object (node->resource);
  g_hash_table_unref (node->peers);
  g_hash_table_unref (node->caps);
  g_free (node->node_id);
  g_free (node);
}

char *
expected_address (Node *peer)
{
  return g_strdup_printf ("127.0.0.1:%u", peer->server_port);
}

typedef struct {
  Node **nodes;
  guint  n;
} Mesh;

/* Whether every node knows every other node at its address. */
static gboolean
mesh_complete (gpointer data)
{
  Mesh *mesh = data;

  for (guint i = 0; i < mesh->n; i++)
    for (guint j = 0; j < mesh->n; j++)
      {
        g_autofree char *address = NULL;

        if (i == j)
          continue;
        address = expected_address (mesh->nodes[j]);
        if (g_strcmp0 (g_hash_table_lookup (mesh->nodes[i]->peers, mesh->nodes[j]->node_id),
                       address) != 0)
          return FALSE;
      }
  return TRUE;
}

/* Waits until every node knows every other; @fresh: nobody knew anybody
 * before, so each peer was found exactly once. */
void
assert_mesh (Node   **nodes,
             guint    n,
             gboolean fresh)
{
  Mesh mesh = { nodes, n };

  g_assert_true (exo_test_spin_until (mesh_complete, &mesh, wait_ms));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) peers = exo_discovery_list_peers (EXO_DISCOVERY (nodes[i]->resource));

      g_assert_true (g_variant_is_of_type (peers, G_VARIANT_TYPE ("a(sssa{sv})")));
      g_assert_cmpuint (g_variant_n_children (peers), ==, n - 1);
      g_assert_cmpuint (g_hash_table_size (nodes[i]->peers), ==, n - 1);
      g_assert_cmpuint (metric_u32 (nodes[i]->resource, "peers"), ==, n - 1);
      if (fresh)
        g_assert_cmpuint (nodes[i]->found, ==, n - 1);   /* once each: no flapping */
      g_assert_cmpuint (metric_u64 (nodes[i]->resource, "duplicate-ids"), ==, 0);
      g_assert_cmpuint (metric_u64 (nodes[i]->resource, "dropped-invalid"), ==, 0);
      g_assert_cmpint (exo_resource_get_state (nodes[i]->resource), ==, EXO_RESOURCE_STATE_READY);
    }
}

/* --- a plain UDP sender, standing in for other implementations ------------- */

Sender *
sender_new (const char *ip,
            guint16     port)
{
  Sender *sender = g_new0 (Sender, 1);
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string (ip);
  g_autoptr(GSocketAddress) bind_address = g_inet_socket_address_new (address, port);
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GError) error = NULL;

  sender->ip = g_strdup (ip);
  sender->socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                 G_SOCKET_PROTOCOL_UDP, &error);
  g_assert_no_error (error);
  g_socket_bind (sender->socket, bind_address, FALSE, &error);
  g_assert_no_error (error);
  local = g_socket_get_local_address (sender->socket, NULL);
  sender->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  return sender;
}

/* Unsigned: exactly @data. */
void
sender_send_raw (Sender     *sender,
                 guint16     port,
                 const void *data,
                 gsize       length)
{
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new (lo, port);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (g_socket_send_to (sender->socket, to, data, length, NULL, &error), ==,
                   (gssize) length);
  g_assert_no_error (error);
}

/* The datagram a node holding @key sends for @data, announcing @addresses
 * (NULL: the sender's own address) and signed at @ts_us (0: now). */
char *
seal (ExoClusterKey *key,
      const void    *data,
      gsize          length,
      const char    *addresses,
      gint64         ts_us,
      gsize         *out_length)
{
  g_autofree char *nonce = exo_cluster_auth_new_nonce ();
  g_autofree char *prefix = g_strdup_printf ("EXO-AUTH v1 ts=%" G_GINT64_FORMAT " nonce=%s addrs=%s",
                                             ts_us != 0 ? ts_us : g_get_real_time (), nonce,
                                             addresses);
  g_autoptr(GByteArray) covered = g_byte_array_new ();
  g_autofree char *mac = NULL;
  GString *datagram;

  /* The envelope of docs/cluster-protocol.md, built independently of the plugin. */
  g_byte_array_append (covered, (const guint8 *) "exo-discovery-v1\n", 17);
  g_byte_array_append (covered, (const guint8 *) prefix, strlen (prefix));
  g_byte_array_append (covered, (const guint8 *) "\n", 1);
  g_byte_array_append (covered, data, length);
  mac = exo_cluster_key_sign (key, covered->data, covered->len);
  datagram = g_string_new (prefix);
  g_string_append_printf (datagram, " mac=%s\n", mac);
  g_string_append_len (datagram, data, (gssize) length);
  *out_length = datagram->len;
  return g_string_free (datagram, FALSE);
}

/* Sealed with the cluster key, from the sender's address. */
void
sender_send (Sender     *sender,
             guint16     port,
             const void *data,
             gsize       length)
{
  gsize sealed_length = 0;
  g_autofree char *sealed = seal (test_key, data, length, sender->ip, 0, &sealed_length);

  sender_send_raw (sender, port, sealed, sealed_length);
}

void
sender_send_string (Sender     *sender,
                    guint16     port,
                    const char *text)
{
  sender_send (sender, port, text, strlen (text));
}

void
sender_free (Sender *sender)
{
  g_object_unref (sender->socket);
  g_free (sender->ip);
  g_free (sender);
}

/* A message as exo (Python) sends it: no instance_id. */
char *
exo_message (const char *node_id,
             guint       grpc_port,
             const char *instance_id,
             gint        priority)
{
  g_autofree char *instance = instance_id != NULL
    ? g_strdup_printf (", \"instance_id\": \"%s\"", instance_id) : g_strdup ("");

  return g_strdup_printf ("{\"type\": \"discovery\", \"node_id\": \"%s\", \"grpc_port\": %u, "
                          "\"device_capabilities\": {\"model\": \"MacBook Pro\", "
                          "\"chip\": \"Apple M3 Max\", \"memory\": 131072, "
                          "\"flops\": {\"fp32\": 28.4, \"fp16\": 56.8, \"int8\": 113}}, "
                          "\"priority\": %d, \"interface_name\": \"en0\", "
                          "\"interface_type\": \"Ethernet\"%s}",
                          node_id, grpc_port, priority, instance);
}

typedef struct {
  ExoResource *resource;
  const char  *key;
  guint64      at_least;
} MetricWait;

static gboolean
metric_reached (gpointer data)
{
  MetricWait *w = data;

  return metric_u64 (w->resource, w->key) >= w->at_least;
}

gboolean
wait_metric (ExoResource *resource,
             const char  *key,
             guint64      at_least)
{
  MetricWait w = { resource, key, at_least };

  return exo_test_spin_until (metric_reached, &w, wait_ms);
}

typedef struct {
  Node       *node;
  const char *peer_id;
  const char *address;   /* NULL: any */
  gboolean    present;
} PeerWait;

static gboolean
peer_state_reached (gpointer data)
{
  PeerWait *w = data;
  const char *address = g_hash_table_lookup (w->node->peers, w->peer_id);

  if (!w->present)
    return address == NULL;
  return address != NULL && (w->address == NULL || g_str_equal (address, w->address));
}

gboolean
wait_peer (Node       *node,
           const char *peer_id,
           const char *address,
           gboolean    present)
{
  PeerWait w = { node, peer_id, address, present };

  return exo_test_spin_until (peer_state_reached, &w, wait_ms);
}
