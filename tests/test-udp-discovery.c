/* test-udp-discovery.c: the udp-discovery plugin, in process.
 *
 * Several discovery resources share this program's main context on
 * 127.0.0.1, each on its own port, and send to each other's ports as
 * unicast "broadcast addresses", so the tests need no broadcast-capable
 * interface and send nothing beyond loopback.  Bad datagrams come from
 * plain GSockets; static peers are a SoupServer in this process.
 *
 * Every node of this process uses one cluster key (test_key, the default
 * key); the plain sockets seal what they send with it (sender_send), so the
 * checks of the message behind the envelope are exercised, or send raw or
 * forged datagrams on purpose (/udp-discovery/auth/...).
 *
 * The plugin is loaded through ExoPluginLoader from $EXO_UDP_DISCOVERY_PLUGIN
 * (set by meson), as the daemon loads it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

#include <libsoup/soup.h>

/* The longest node id the plugin accepts (docs/cluster-protocol.md). */
#define UDP_DISCOVERY_TEST_MAX_ID 128

static GType discovery_type;
static ExoClusterKey *test_key;   /* the cluster key of every node here */
static guint interval_ms;     /* broadcast-interval-ms of the nodes */
static guint timeout_ms;      /* peer-timeout-ms of the nodes */
static guint wait_ms;         /* upper bound of any wait */

/* --- log capture ----------------------------------------------------------- */

/* The plugin logs duplicate ids as warnings, which GTest would make fatal
 * through the default writer; they are captured here and checked instead. */
static GPtrArray *plugin_log;

static GLogWriterOutput
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

static void
discard_log (const char     *log_domain,
             GLogLevelFlags  log_level,
             const char     *message,
             gpointer        user_data)
{
}

static gboolean
log_contains (const char *needle)
{
  for (guint i = 0; i < plugin_log->len; i++)
    if (strstr (g_ptr_array_index (plugin_log, i), needle) != NULL)
      return TRUE;
  return FALSE;
}

/* --- helpers --------------------------------------------------------------- */

/* A UDP port of 127.0.0.1 that is free now, not handed out before. */
static guint16
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

static guint64
metric_u64 (ExoResource *resource,
            const char  *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (resource);
  guint64 value = 0;

  g_assert_true (g_variant_lookup (metrics, key, "t", &value));
  return value;
}

static guint
metric_u32 (ExoResource *resource,
            const char  *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (resource);
  guint32 value = 0;

  g_assert_true (g_variant_lookup (metrics, key, "u", &value));
  return value;
}

static char *
metric_str (ExoResource *resource,
            const char  *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (resource);
  char *value = NULL;

  g_assert_true (g_variant_lookup (metrics, key, "s", &value));
  return value;
}

/* "127.0.0.1:PORT" for each port; NULL-terminated. */
static char **
loopback_targets (const guint16 *ports,
                  guint          n)
{
  char **targets = g_new0 (char *, n + 1);

  for (guint i = 0; i < n; i++)
    targets[i] = g_strdup_printf ("127.0.0.1:%u", ports[i]);
  return targets;
}

/* --- nodes ------------------------------------------------------------------- */

typedef struct {
  ExoResource *resource;
  char        *node_id;
  guint16      port;
  guint16      server_port;
  GHashTable  *peers;        /* id → address, as the signals told */
  GHashTable  *caps;         /* id → GVariant a{sv} */
  guint        found;        /* peer-found emissions */
  guint        lost;         /* peer-lost emissions */
  gint64       last_lost_at;
} Node;

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

static Node *
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

static void
node_start (Node *node)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_initialize (node->resource, &error));
  g_assert_no_error (error);
  g_assert_cmpint (exo_resource_get_state (node->resource), ==, EXO_RESOURCE_STATE_READY);
}

static void
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

static char *
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
static void
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

typedef struct {
  GSocket *socket;
  guint16  port;
  char    *ip;
} Sender;

static Sender *
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
static void
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
static char *
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
static void
sender_send (Sender     *sender,
             guint16     port,
             const void *data,
             gsize       length)
{
  gsize sealed_length = 0;
  g_autofree char *sealed = seal (test_key, data, length, sender->ip, 0, &sealed_length);

  sender_send_raw (sender, port, sealed, sealed_length);
}

static void
sender_send_string (Sender     *sender,
                    guint16     port,
                    const char *text)
{
  sender_send (sender, port, text, strlen (text));
}

static void
sender_free (Sender *sender)
{
  g_object_unref (sender->socket);
  g_free (sender->ip);
  g_free (sender);
}

/* A message as exo (Python) sends it: no instance_id. */
static char *
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

static gboolean
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

static gboolean
wait_peer (Node       *node,
           const char *peer_id,
           const char *address,
           gboolean    present)
{
  PeerWait w = { node, peer_id, address, present };

  return exo_test_spin_until (peer_state_reached, &w, wait_ms);
}

/* --- tests ------------------------------------------------------------------ */

static void
test_two_nodes (void)
{
  guint16 ports[2] = { free_udp_port (), free_udp_port () };
  /* Each node also sends to itself, as a broadcast comes back: ignored. */
  g_auto(GStrv) targets = loopback_targets (ports, 2);
  Node *a = node_new ("node-a", ports[0], (const char * const *) targets, NULL);
  Node *b = node_new ("node-b", ports[1], (const char * const *) targets, NULL);
  Node *nodes[2] = { a, b };
  g_autoptr(GVariant) peers = NULL;
  GVariant *caps;
  const char *id, *address, *ifname, *model = NULL;
  guint64 memory = 0;
  double fp32 = -1;

  node_start (a);
  node_start (b);
  assert_mesh (nodes, 2, TRUE);

  /* What A knows of B: the address of B's server, B's capabilities. */
  peers = exo_discovery_list_peers (EXO_DISCOVERY (a->resource));
  g_variant_get_child (peers, 0, "(&s&s&s@a{sv})", &id, &address, &ifname, &caps);
  g_assert_cmpstr (id, ==, "node-b");
  g_assert_cmpstr (address, ==, g_hash_table_lookup (a->peers, "node-b"));
  g_assert_cmpstr (ifname, ==, "lo");
  g_assert_true (g_variant_lookup (caps, "model", "&s", &model));
  g_assert_cmpstr (model, ==, "test box");
  g_assert_true (g_variant_lookup (caps, "memory", "t", &memory));
  g_assert_cmpuint (memory, ==, 1000 + b->port % 1000);
  g_assert_true (g_variant_lookup (caps, "flops-fp32", "d", &fp32));
  g_assert_cmpfloat (fp32, ==, 0.0);
  g_variant_unref (caps);
  g_assert_true (g_variant_equal (g_hash_table_lookup (a->caps, "node-b"),
                                  g_hash_table_lookup (a->caps, "node-b")));

  /* Its own datagrams came back and were recognised as its own. */
  g_assert_true (wait_metric (a->resource, "own-messages", 1));
  g_assert_cmpuint (metric_u64 (a->resource, "sent"), >=, 2);
  g_assert_cmpuint (metric_u64 (a->resource, "received"), >=, 2);
  g_assert_cmpuint (metric_u64 (a->resource, "send-errors"), ==, 0);
  g_assert_cmpuint (metric_u32 (a->resource, "port"), ==, a->port);

  /* Steady state: more rounds change nothing. */
  exo_test_spin (interval_ms * 4);
  g_assert_cmpuint (a->found, ==, 1);
  g_assert_cmpuint (b->found, ==, 1);
  g_assert_cmpuint (a->lost + b->lost, ==, 0);

  node_free (a);
  node_free (b);
}

/* A server that only says its port: what the discovery announces when its
 * server-port is 0. */
GType fake_server_get_type (void);
typedef struct { ExoManagedResource parent_instance; guint16 port; } FakeServer;
typedef struct { ExoManagedResourceClass parent_class; } FakeServerClass;
static guint16 fake_server_get_port (ExoServer *self) { return ((FakeServer *) self)->port; }
static const char *fake_server_get_listen_address (ExoServer *self) { return "127.0.0.1"; }
static void
fake_server_iface_init (ExoServerInterface *iface)
{
  iface->get_port = fake_server_get_port;
  iface->get_listen_address = fake_server_get_listen_address;
}
G_DEFINE_TYPE_WITH_CODE (FakeServer, fake_server, EXO_TYPE_MANAGED_RESOURCE,
                         G_IMPLEMENT_INTERFACE (EXO_TYPE_SERVER, fake_server_iface_init))
static void fake_server_class_init (FakeServerClass *klass) { }
static void fake_server_init (FakeServer *self) { }

/* Without server-port, a node announces the port of its server (server-id):
 * B finds A at the fake server's port.  A server-id that is no server is an
 * error at initialize. */
static void
test_server_port_from_server (void)
{
  guint16 ports[2] = { free_udp_port (), free_udp_port () };
  g_auto(GStrv) targets = loopback_targets (ports, 2);
  g_autoptr(ExoResource) server = g_object_new (fake_server_get_type (), "id", "fake-server", NULL);
  Node *a = node_new ("node-a", ports[0], (const char * const *) targets,
                      "server-port", 0, "server-id", "fake-server", NULL);
  Node *b = node_new ("node-b", ports[1], (const char * const *) targets, NULL);
  Node *nodes[2] = { a, b };
  g_autoptr(GError) error = NULL;

  ((FakeServer *) server)->port = 47123;
  a->server_port = 47123;         /* where B must find A */
  node_start (a);
  node_start (b);
  assert_mesh (nodes, 2, TRUE);
  {
    g_autofree char *expected = g_strdup_printf ("127.0.0.1:%u", 47123);

    g_assert_cmpstr (g_hash_table_lookup (b->peers, "node-a"), ==, expected);
  }
  node_free (a);
  node_free (b);

  {
    g_autoptr(ExoResource) wrong = g_object_new (discovery_type, "id", "wrong-server",
                                                 "node-id", "n", "port", (guint) free_udp_port (),
                                                 "listen-address", "127.0.0.1",
                                                 "server-id", "wrong-server", NULL);

    g_assert_false (exo_test_initialize (wrong, &error));
    g_assert_nonnull (error);
    g_assert_nonnull (strstr (error->message, "server-id 'wrong-server' is a udp-discovery, not a server"));
    g_clear_error (&error);
    exo_test_cleanup (wrong, NULL);
  }
}

static void
test_three_nodes (void)
{
  guint16 ports[3] = { free_udp_port (), free_udp_port (), free_udp_port () };
  g_auto(GStrv) targets = loopback_targets (ports, 3);
  Node *nodes[3];

  nodes[0] = node_new ("node-1", ports[0], (const char * const *) targets, NULL);
  nodes[1] = node_new ("node-2", ports[1], (const char * const *) targets, NULL);
  nodes[2] = node_new ("node-3", ports[2], (const char * const *) targets, NULL);
  for (guint i = 0; i < 3; i++)
    node_start (nodes[i]);
  assert_mesh (nodes, 3, TRUE);
  for (guint i = 0; i < 3; i++)
    node_free (nodes[i]);
}

static void
test_peer_lost (void)
{
  guint16 ports[3] = { free_udp_port (), free_udp_port (), free_udp_port () };
  g_auto(GStrv) targets = loopback_targets (ports, 3);
  Node *nodes[3];
  gint64 stopped_at;
  g_autoptr(GError) error = NULL;

  nodes[0] = node_new ("stays-1", ports[0], (const char * const *) targets, NULL);
  nodes[1] = node_new ("stays-2", ports[1], (const char * const *) targets, NULL);
  nodes[2] = node_new ("leaves", ports[2], (const char * const *) targets, NULL);
  for (guint i = 0; i < 3; i++)
    node_start (nodes[i]);
  assert_mesh (nodes, 3, TRUE);

  /* The leaving node tells its own listeners that its peers are gone. */
  stopped_at = g_get_monotonic_time ();
  g_assert_true (exo_test_cleanup (nodes[2]->resource, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (nodes[2]->lost, ==, 2);
  g_assert_cmpuint (metric_u64 (nodes[2]->resource, "peer-lost-count"), ==, 0);

  for (guint i = 0; i < 2; i++)
    {
      gint64 elapsed_ms;

      g_assert_true (wait_peer (nodes[i], "leaves", NULL, FALSE));
      elapsed_ms = (nodes[i]->last_lost_at - stopped_at) / 1000;
      g_test_message ("node %u lost the peer after %" G_GINT64_FORMAT " ms (timeout %u ms)",
                      i, elapsed_ms, timeout_ms);
      /* Not before the timeout (less the last interval), and within it
       * plus one expiry tick and scheduling slack. */
      g_assert_cmpint (elapsed_ms, >=, (gint64) (timeout_ms - interval_ms) - 50);
      g_assert_cmpint (elapsed_ms, <=, (gint64) (timeout_ms + timeout_ms / 4 + interval_ms * 2));
      g_assert_cmpuint (nodes[i]->lost, ==, 1);
      g_assert_cmpuint (metric_u64 (nodes[i]->resource, "peer-lost-count"), ==, 1);
      g_assert_cmpuint (metric_u32 (nodes[i]->resource, "peers"), ==, 1);
      /* The remaining pair still know each other. */
      g_assert_nonnull (g_hash_table_lookup (nodes[i]->peers, nodes[1 - i]->node_id));
    }

  /* It comes back: found again. */
  node_start (nodes[2]);
  assert_mesh (nodes, 3, FALSE);
  g_assert_cmpuint (nodes[0]->found, ==, 3);

  for (guint i = 0; i < 3; i++)
    node_free (nodes[i]);
}

static void
test_invalid_messages (void)
{
  guint16 ports[1] = { free_udp_port () };
  g_auto(GStrv) targets = loopback_targets (ports, 1);
  Node *a = node_new ("receiver", ports[0], (const char * const *) targets, NULL);
  Sender *sender = sender_new ("127.0.0.1", 0);
  const char *invalid_json[] = {
    "[1, 2, 3]",
    "\"discovery\"",
    "42",
    "null",
    "{\"type\": \"discovery\", \"node_id\": \"x\", \"grpc_port\": \"52415\"}",  /* port as string */
    "{\"type\": \"discovery\", \"grpc_port\": 52415}",                          /* no node_id */
    "{\"type\": \"discovery\", \"node_id\": \"\", \"grpc_port\": 52415}",       /* empty id */
    "{\"type\": \"discovery\", \"node_id\": 7, \"grpc_port\": 52415}",          /* id not a string */
    "{\"type\": \"hello\", \"node_id\": \"x\", \"grpc_port\": 52415}",          /* wrong type */
    "{\"node_id\": \"x\", \"grpc_port\": 52415}",                               /* no type */
    "{\"type\": \"discovery\", \"node_id\": \"x\", \"grpc_port\": 70000}",      /* port range */
    "{\"type\": \"discovery\", \"node_id\": \"x\", \"grpc_port\": 0}",
    "{\"type\": \"discovery\", \"node_id\": \"x\", \"grpc_port\": 52415.5}",
    "{\"type\": \"discovery\", \"node_id\": \"x\", \"grpc_port\": 52415, "
    "\"device_capabilities\": \"big\"}",
    "{\"type\": \"discovery\", \"node_id\": \"x\", \"grpc_port\": 52415, "
    "\"device_capabilities\": {\"memory\": \"lots\"}}",
    "{\"type\": \"discovery\", \"node_id\": \"x\", \"grpc_port\": 52415, "
    "\"device_capabilities\": {\"memory\": -1}}",
    "{\"type\": \"discovery\", \"node_id\": \"x\", \"grpc_port\": 52415, "
    "\"device_capabilities\": {\"flops\": {\"fp32\": \"fast\"}}}",
    "{\"type\": \"discovery\", \"node_id\": \"x\", \"grpc_port\": 52415, \"priority\": \"high\"}",
    "{\"type\": \"discovery\", \"node_id\": \"x\", \"grpc_port\": 52415, \"interface_name\": 3}",
    "{\"type\": \"discovery\", \"node_id\": \"x\\u0001y\", \"grpc_port\": 52415}",
    "{\"type\": \"discovery\", \"node_id\": \"x\", \"grpc_port\": 52415",       /* truncated */
    "",
  };
  const char bad_utf8[] = "{\"type\": \"discovery\", \"node_id\": \"\xff\xfe\", \"grpc_port\": 1}";
  const char with_nul[] = "{\"type\": \"discovery\", \"node_id\": \"a\0b\", \"grpc_port\": 1}";
  g_autofree char *long_id = g_strnfill (UDP_DISCOVERY_TEST_MAX_ID + 1, 'i');
  g_autofree char *long_id_message = exo_message (long_id, 52415, NULL, 1);
  g_autofree char *oversized = g_strnfill (5000, ' ');
  g_autofree char *last_reason = NULL;
  g_autofree char *fake = exo_message ("exo-python", 52415, NULL, 1);
  guint n_invalid = 0, n_random = 200;
  guint64 received, base;
  GVariant *caps;
  double fp32 = 0;
  guint64 memory = 0;

  node_start (a);
  base = metric_u64 (a->resource, "received");

  /* Random bytes, paced so that the socket buffer never overflows. */
  for (guint i = 0; i < n_random; i++)
    {
      guint8 junk[1200];
      gsize length = 1 + (gsize) g_test_rand_int_range (0, sizeof junk);

      for (gsize j = 0; j < length; j++)
        junk[j] = (guint8) g_test_rand_int_range (0, 256);
      sender_send (sender, a->port, junk, length);
      n_invalid++;
      if (n_invalid % 16 == 0)
        g_assert_true (wait_metric (a->resource, "received", base + n_invalid));
    }
  for (guint i = 0; i < G_N_ELEMENTS (invalid_json); i++)
    {
      sender_send_string (sender, a->port, invalid_json[i]);
      n_invalid++;
    }
  g_assert_true (wait_metric (a->resource, "received", base + n_invalid));
  sender_send (sender, a->port, bad_utf8, sizeof bad_utf8 - 1);
  sender_send (sender, a->port, with_nul, sizeof with_nul - 1);
  sender_send_string (sender, a->port, long_id_message);
  n_invalid += 3;
  /* Oversized: a valid message padded past 4096 bytes (the envelope is
   * not counted: its line has a limit of its own). */
  memcpy (oversized, fake, strlen (fake));
  sender_send (sender, a->port, oversized, 4600);
  /* Exactly the limit is fine (JSON allows trailing spaces). */
  {
    g_autofree char *at_limit = g_strnfill (4096, ' ');
    g_autofree char *message = exo_message ("at-limit", 52416, NULL, 1);

    memcpy (at_limit, message, strlen (message));
    sender_send (sender, a->port, at_limit, 4096);
  }

  received = base + n_invalid + 2;
  g_assert_true (wait_metric (a->resource, "dropped-oversized", 1));
  g_assert_true (wait_metric (a->resource, "dropped-invalid", n_invalid));
  g_assert_cmpuint (metric_u64 (a->resource, "dropped-invalid"), ==, n_invalid);
  g_assert_cmpuint (metric_u64 (a->resource, "dropped-oversized"), ==, 1);
  g_assert_cmpuint (metric_u64 (a->resource, "received"), >=, received);
  g_assert_true (wait_peer (a, "at-limit", "127.0.0.1:52416", TRUE));
  last_reason = metric_str (a->resource, "last-drop-reason");
  g_test_message ("last drop reason: %s", last_reason);
  g_assert_nonnull (strstr (last_reason, "larger than 4096 bytes"));

  /* Every problem is named. */
  {
    struct { const char *message; const char *reason; } cases[] = {
      { "{\"type\": \"discovery\", \"node_id\": \"x\", \"grpc_port\": \"1\"}", "grpc_port is not an integer" },
      { "{\"type\": \"discovery\", \"grpc_port\": 1}", "node_id is missing" },
      { "[1]", "not a JSON object" },
      { "{\"type\": \"discovery\", \"node_id\": \"x\", \"grpc_port\": 1, "
        "\"device_capabilities\": {\"flops\": {\"int8\": true}}}", "device_capabilities.flops.int8 is not a number" },
      { "\x80garbage", "is not JSON (line 1, column 1): unexpected byte 0x80" },
      { "{oops", "not JSON" },
    };

    for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        g_autofree char *reason = NULL;

        sender_send_string (sender, a->port, cases[i].message);
        n_invalid++;
        g_assert_true (wait_metric (a->resource, "dropped-invalid", n_invalid));
        reason = metric_str (a->resource, "last-drop-reason");
        g_assert_nonnull (strstr (reason, cases[i].reason));
        g_assert_true (g_str_has_prefix (reason, "127.0.0.1:"));
      }
  }

  /* Still working: a well-formed message from exo (no instance_id). */
  sender_send_string (sender, a->port, fake);
  g_assert_true (wait_peer (a, "exo-python", "127.0.0.1:52415", TRUE));
  caps = g_hash_table_lookup (a->caps, "exo-python");
  g_assert_true (g_variant_lookup (caps, "flops-fp32", "d", &fp32));
  g_assert_cmpfloat_with_epsilon (fp32, 28.4, 1e-9);
  g_assert_true (g_variant_lookup (caps, "memory", "t", &memory));
  g_assert_cmpuint (memory, ==, 131072);
  g_assert_cmpint (exo_resource_get_state (a->resource), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpuint (metric_u32 (a->resource, "peers"), ==, 2);
  g_assert_cmpuint (metric_u64 (a->resource, "duplicate-ids"), ==, 0);

  /* And a real node is still found. */
  {
    guint16 both[2] = { a->port, free_udp_port () };
    g_auto(GStrv) targets2 = loopback_targets (both, 2);
    Node *b = node_new ("late", both[1], (const char * const *) targets2, NULL);
    g_autofree char *address = expected_address (b);

    node_start (b);
    g_assert_true (wait_peer (a, "late", address, TRUE));
    node_free (b);
  }

  sender_free (sender);
  node_free (a);
}

static void
test_duplicate_id (void)
{
  guint16 ports[3] = { free_udp_port (), free_udp_port (), free_udp_port () };
  g_auto(GStrv) targets = loopback_targets (ports, 3);
  Node *a = node_new ("twin", ports[0], (const char * const *) targets, NULL);
  Node *b = node_new ("twin", ports[1], (const char * const *) targets, NULL);
  Node *c = node_new ("bystander", ports[2], (const char * const *) targets, NULL);
  g_autofree char *from_b = g_strdup_printf ("127.0.0.1:%u", b->port);
  g_autofree char *message = NULL;
  g_autofree char *from = NULL;
  g_autoptr(GError) error = NULL;
  const GError *last_error;

  g_ptr_array_set_size (plugin_log, 0);
  node_start (a);
  node_start (b);
  node_start (c);

  g_assert_true (wait_metric (a->resource, "duplicate-ids", 1));
  g_assert_true (wait_metric (b->resource, "duplicate-ids", 1));
  g_assert_true (exo_test_wait_for_state (a->resource, EXO_RESOURCE_STATE_DEGRADED, wait_ms));
  g_assert_true (exo_test_wait_for_state (b->resource, EXO_RESOURCE_STATE_DEGRADED, wait_ms));

  from = metric_str (a->resource, "duplicate-id-from");
  g_assert_cmpstr (from, ==, from_b);
  last_error = exo_resource_get_last_error (a->resource);
  g_assert_nonnull (last_error);
  message = g_strdup_printf ("node id twin is also used by the node at %s", from_b);
  g_assert_cmpstr (last_error->message, ==, message);
  g_assert_true (log_contains (message));
  g_assert_false (exo_resource_is_healthy (a->resource));
  /* A health check agrees, and does not clear it. */
  g_assert_false (exo_test_check_health (a->resource, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY);
  g_clear_error (&error);
  g_assert_cmpint (exo_resource_get_state (a->resource), ==, EXO_RESOURCE_STATE_DEGRADED);

  /* Degraded is still usable: A and B still announce and listen. */
  g_assert_true (wait_peer (a, "bystander", NULL, TRUE));
  g_assert_true (wait_peer (c, "twin", NULL, TRUE));
  g_assert_cmpuint (g_hash_table_size (a->peers), ==, 1);
  /* The bystander sees one "twin" claimed from two places. */
  g_assert_true (wait_metric (c->resource, "peer-id-conflicts", 1));
  g_assert_cmpuint (c->found, ==, 1);

  /* B goes away: A is ready again once B has been silent for the timeout. */
  g_assert_true (exo_test_cleanup (b->resource, &error));
  g_assert_no_error (error);
  g_assert_true (exo_test_wait_for_state (a->resource, EXO_RESOURCE_STATE_READY, wait_ms));
  g_assert_true (exo_resource_is_healthy (a->resource));
  g_assert_true (exo_test_check_health (a->resource, &error));
  g_assert_no_error (error);
  g_assert_cmpint (exo_resource_get_state (a->resource), ==, EXO_RESOURCE_STATE_READY);

  node_free (a);
  node_free (b);
  node_free (c);
}

static void
test_peer_id_conflict (void)
{
  guint16 ports[1] = { free_udp_port () };
  g_auto(GStrv) targets = loopback_targets (ports, 1);
  Node *a = node_new ("observer", ports[0], (const char * const *) targets, NULL);
  Sender *one = sender_new ("127.0.0.1", 0);
  Sender *two = sender_new ("127.0.0.1", 0);
  g_autofree char *from_one = exo_message ("contested", 50001, "instance-one", 1);
  g_autofree char *from_two = exo_message ("contested", 50002, "instance-two", 1);
  g_autofree char *conflict = NULL;
  guint16 shared_port = free_udp_port ();
  Sender *home = NULL, *work = NULL, *fast = NULL;
  g_autofree char *multi = exo_message ("multi-homed", 50003, "same-instance", 1);
  g_autofree char *multi_better = exo_message ("multi-homed", 50003, "same-instance", 5);

  node_start (a);

  /* Two nodes claim one id, alternately: counted; the first keeps it. */
  for (guint round = 0; round < 3; round++)
    {
      sender_send_string (one, a->port, from_one);
      g_assert_true (wait_peer (a, "contested", NULL, TRUE));
      sender_send_string (two, a->port, from_two);
      g_assert_true (wait_metric (a->resource, "peer-id-conflicts", 2 * round + 1));
    }
  g_assert_cmpstr (g_hash_table_lookup (a->peers, "contested"), ==, "127.0.0.1:50001");
  g_assert_cmpuint (a->found, ==, 1);
  conflict = metric_str (a->resource, "peer-id-conflict");
  g_assert_nonnull (strstr (conflict, "contested"));
  g_assert_true (log_contains ("node id contested is claimed by the nodes at"));

  /* One node heard on two addresses (same instance, same port): no
   * conflict, and it does not move at equal priority... */
  home = sender_new ("127.0.0.2", shared_port);
  work = sender_new ("127.0.0.3", shared_port);
  fast = sender_new ("127.0.0.4", shared_port);
  for (guint round = 0; round < 3; round++)
    {
      sender_send_string (home, a->port, multi);
      g_assert_true (wait_peer (a, "multi-homed", "127.0.0.2:50003", TRUE));
      sender_send_string (work, a->port, multi);
    }
  exo_test_spin (50);
  g_assert_cmpstr (g_hash_table_lookup (a->peers, "multi-homed"), ==, "127.0.0.2:50003");
  g_assert_cmpuint (a->found, ==, 2);
  g_assert_cmpuint (metric_u64 (a->resource, "peer-id-conflicts"), ==, 5);
  /* ...but a better interface wins: peer-found again, with the new address. */
  sender_send_string (fast, a->port, multi_better);
  g_assert_true (wait_peer (a, "multi-homed", "127.0.0.4:50003", TRUE));
  g_assert_cmpuint (a->found, ==, 3);
  g_assert_cmpuint (metric_u64 (a->resource, "peer-id-conflicts"), ==, 5);

  /* A node restarting at the same address with a new instance and port is
   * no conflict, and its new address is announced. */
  {
    g_autofree char *restarted = exo_message ("contested", 50009, "instance-three", 1);

    sender_send_string (one, a->port, restarted);
    g_assert_true (wait_peer (a, "contested", "127.0.0.1:50009", TRUE));
  }

  sender_free (one);
  sender_free (two);
  sender_free (home);
  sender_free (work);
  sender_free (fast);
  node_free (a);
}

/* --- authentication ------------------------------------------------------------- */

static guint
log_count (const char *needle)
{
  guint n = 0;

  for (guint i = 0; i < plugin_log->len; i++)
    if (strstr (g_ptr_array_index (plugin_log, i), needle) != NULL)
      n++;
  return n;
}

/* Datagrams without the cluster key's MAC are dropped before their message
 * is looked at, counted per reason, and logged at most once per reason
 * per 10 s. */
static void
test_auth_forged (void)
{
  guint16 ports[1] = { free_udp_port () };
  g_auto(GStrv) targets = loopback_targets (ports, 1);
  Node *a = node_new ("guarded", ports[0], (const char * const *) targets, NULL);
  Sender *sender = sender_new ("127.0.0.1", 0);
  g_autoptr(ExoClusterKey) other_key = exo_cluster_key_new_random ();
  g_autofree char *forged = exo_message ("intruder", 52415, "evil", 1);
  g_autofree char *reason = NULL;
  gsize length = 0;
  guint64 base;
  guint n_bad_mac = 0;

  g_ptr_array_set_size (plugin_log, 0);
  node_start (a);
  base = metric_u64 (a->resource, "received");

  /* exo's bare message, as before the cluster key */
  sender_send_raw (sender, a->port, forged, strlen (forged));
  g_assert_true (wait_metric (a->resource, "dropped-auth-missing", 1));
  reason = metric_str (a->resource, "last-drop-reason");
  g_assert_nonnull (strstr (reason, "unsigned"));

  /* another key, many times: counted each time, logged once */
  for (guint i = 0; i < 50; i++)
    {
      g_autofree char *sealed = seal (other_key, forged, strlen (forged), "127.0.0.1", 0, &length);

      sender_send_raw (sender, a->port, sealed, length);
      n_bad_mac++;
    }
  /* the right key, but the message altered after signing */
  {
    g_autofree char *sealed = seal (test_key, forged, strlen (forged), "127.0.0.1", 0, &length);
    char *port = strstr (sealed, "52415");

    port[4] = '6';
    sender_send_raw (sender, a->port, sealed, length);
    n_bad_mac++;
  }
  g_assert_true (wait_metric (a->resource, "dropped-auth-bad-mac", n_bad_mac));

  /* a line that is not the envelope; an envelope without a MAC */
  sender_send_raw (sender, a->port, "EXO-AUTH v2 nonsense\n{}", 23);
  sender_send_raw (sender, a->port, "EXO-AUTH v1 ts=1 nonce=00 addrs=127.0.0.1\n{}", 44);
  g_assert_true (wait_metric (a->resource, "dropped-auth-malformed", 2));

  /* the right key, signed a minute ago or a minute ahead: stale */
  {
    g_autofree char *old = seal (test_key, forged, strlen (forged), "127.0.0.1",
                                 g_get_real_time () - 60 * G_USEC_PER_SEC, &length);
    g_autofree char *ahead = NULL;

    sender_send_raw (sender, a->port, old, length);
    ahead = seal (test_key, forged, strlen (forged), "127.0.0.1",
                  g_get_real_time () + 60 * G_USEC_PER_SEC, &length);
    sender_send_raw (sender, a->port, ahead, length);
  }
  g_assert_true (wait_metric (a->resource, "dropped-auth-stale", 2));
  g_free (reason);
  reason = metric_str (a->resource, "last-drop-reason");
  g_assert_nonnull (strstr (reason, "clocks"));

  /* a datagram larger than any envelope and message */
  {
    g_autofree char *huge = g_strnfill (6000, 'x');

    sender_send_raw (sender, a->port, huge, 6000);
    g_assert_true (wait_metric (a->resource, "dropped-oversized", 1));
  }

  g_assert_cmpuint (metric_u64 (a->resource, "dropped-unauthenticated"), ==, 1 + n_bad_mac + 2 + 2);
  g_assert_cmpuint (metric_u64 (a->resource, "dropped-invalid"), ==, 0);
  g_assert_cmpuint (metric_u64 (a->resource, "received"), >=, base + 1 + n_bad_mac + 5);
  g_assert_cmpuint (a->found, ==, 0);
  g_assert_null (g_hash_table_lookup (a->peers, "intruder"));
  /* one line per reason (the four reasons above), not one per datagram */
  g_test_message ("%u log lines for %u dropped datagrams",
                  log_count ("dropped an unauthenticated datagram"), 5 + n_bad_mac);
  g_assert_cmpuint (log_count ("dropped an unauthenticated datagram"), ==, 4);
  g_assert_cmpint (exo_resource_get_state (a->resource), ==, EXO_RESOURCE_STATE_READY);

  /* Authentic datagrams still get through. */
  sender_send_string (sender, a->port, forged);
  g_assert_true (wait_peer (a, "intruder", "127.0.0.1:52415", TRUE));

  sender_free (sender);
  node_free (a);
}

/* A datagram is accepted once: the same one again is a replay. */
static void
test_auth_replay (void)
{
  guint16 ports[1] = { free_udp_port () };
  g_auto(GStrv) targets = loopback_targets (ports, 1);
  Node *a = node_new ("replayed-to", ports[0], (const char * const *) targets, NULL);
  Sender *sender = sender_new ("127.0.0.1", 0);
  g_autofree char *message = exo_message ("once", 52420, "only", 1);
  gsize length = 0;
  g_autofree char *sealed = seal (test_key, message, strlen (message), "127.0.0.1", 0, &length);

  node_start (a);
  sender_send_raw (sender, a->port, sealed, length);
  g_assert_true (wait_peer (a, "once", "127.0.0.1:52420", TRUE));
  for (guint i = 0; i < 3; i++)
    sender_send_raw (sender, a->port, sealed, length);
  g_assert_true (wait_metric (a->resource, "dropped-auth-replay", 3));
  g_assert_cmpuint (a->found, ==, 1);
  g_assert_cmpuint (metric_u32 (a->resource, "replay-cache-size"), >=, 1);

  sender_free (sender);
  node_free (a);
}

/* A real node's datagram, captured and sent again from another address
 * (a spoofed source), does not make the receiver connect to that address:
 * the sender signed where it sends from. */
static void
test_auth_spoofed_source (void)
{
  guint16 ports[1] = { free_udp_port () };
  g_auto(GStrv) targets = loopback_targets (ports, 1);
  Node *a = node_new ("victim", ports[0], (const char * const *) targets, NULL);
  Sender *capture = sender_new ("127.0.0.1", 0);
  Sender *spoofer = sender_new ("127.0.0.66", 0);
  g_autofree char *capture_target = g_strdup_printf ("127.0.0.1:%u", capture->port);
  const char *b_targets[] = { capture_target, NULL };
  Node *b = node_new ("honest", free_udp_port (), b_targets, NULL);
  g_autoptr(GError) error = NULL;
  char buffer[8192];
  gssize n;

  node_start (a);
  /* B announces itself to the capture socket only (A never hears it). */
  node_start (b);
  g_socket_set_timeout (capture->socket, 10);
  n = g_socket_receive (capture->socket, buffer, sizeof buffer, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  g_assert_true (g_str_has_prefix (buffer, "EXO-AUTH v1 "));

  /* Replayed from 127.0.0.66: dropped, B is not found at 127.0.0.66. */
  sender_send_raw (spoofer, a->port, buffer, (gsize) n);
  g_assert_true (wait_metric (a->resource, "dropped-auth-unannounced-source", 1));
  {
    g_autofree char *reason = metric_str (a->resource, "last-drop-reason");

    g_test_message ("%s", reason);
    g_assert_nonnull (strstr (reason, "does not send from 127.0.0.66"));
  }
  /* A message signed with the key but announcing other addresses: the same. */
  {
    g_autofree char *message = exo_message ("honest-too", 52421, "x", 1);
    gsize length = 0;
    g_autofree char *sealed = seal (test_key, message, strlen (message), "10.1.2.3,127.0.0.1",
                                    0, &length);

    sender_send_raw (spoofer, a->port, sealed, length);
    g_assert_true (wait_metric (a->resource, "dropped-auth-unannounced-source", 2));
  }
  exo_test_spin (50);
  g_assert_cmpuint (a->found, ==, 0);
  g_assert_cmpuint (g_hash_table_size (a->peers), ==, 0);

  /* From its own address, the same datagram is fine (A had not seen it). */
  sender_send_raw (capture, a->port, buffer, (gsize) n);
  g_assert_true (wait_peer (a, "honest", NULL, TRUE));

  node_free (b);
  node_free (a);
  sender_free (capture);
  sender_free (spoofer);
}

/* --- static peers ------------------------------------------------------------ */

typedef struct {
  const char    *node_id;
  gboolean       garbage;
  gboolean       hang;
  GPtrArray     *paused;    /* SoupServerMessage kept without an answer */
  guint          requests;
  ExoClusterKey *key;       /* signs its answers with it; NULL: test_key */
  gboolean       unsigned_answers;
  guint          refused;   /* requests without a valid signature */
} HealthServer;

static void
health_handler (SoupServer        *server,
                SoupServerMessage *message,
                const char        *path,
                GHashTable        *query,
                gpointer           user_data)
{
  HealthServer *hs = user_data;
  g_autofree char *body = NULL;

  hs->requests++;
  if (!g_str_equal (path, "/peer/v1/health"))
    {
      soup_server_message_set_status (message, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  if (hs->hang)
    {
      soup_server_message_pause (message);
      g_ptr_array_add (hs->paused, g_object_ref (message));
      return;
    }
  body = hs->garbage ? g_strdup ("<html>hello</html>")
                     : g_strdup_printf ("{\"status\": \"ok\", \"node_id\": \"%s\"}", hs->node_id);
  {
    /* As a node's server: the probe is signed; the answer is bound to it. */
    SoupMessageHeaders *headers = soup_server_message_get_request_headers (message);
    ExoClusterKey *key = hs->key != NULL ? hs->key : test_key;
    const char *pairs[] = { "X-Exo-Node-Id", soup_message_headers_get_one (headers, "X-Exo-Node-Id"),
                            NULL };
    g_autofree char *nonce = NULL;

    if (!exo_cluster_key_verify_request (key, soup_message_headers_get_one (headers, "X-Exo-Auth"),
                                         "GET", path, pairs[1] != NULL ? pairs : NULL, NULL, 0,
                                         NULL, &nonce, NULL))
      {
        hs->refused++;
        soup_server_message_set_status (message, SOUP_STATUS_UNAUTHORIZED, NULL);
        return;
      }
    if (!hs->unsigned_answers)
      {
        g_autofree char *auth = exo_cluster_key_sign_response (key, nonce, SOUP_STATUS_OK,
                                                               (const guint8 *) body, strlen (body));
        soup_message_headers_replace (soup_server_message_get_response_headers (message),
                                      "X-Exo-Auth", auth);
      }
  }
  soup_server_message_set_status (message, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (message, "application/json", SOUP_MEMORY_COPY,
                                    body, strlen (body));
}

/* A SoupServer on 127.0.0.1 at a free port.  The listening socket is made
 * here: soup_server_listen_local() with port 0 leaks an address in
 * libsoup 3.2.  (Its server also leaks the GSocket of each accepted
 * connection — g_socket_accept in valgrind's report — whatever we do.) */
static SoupServer *
health_server_new (HealthServer *hs,
                   guint16      *port)
{
  SoupServer *server = soup_server_new (NULL, NULL);
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GError) error = NULL;

  soup_server_add_handler (server, NULL, health_handler, hs, NULL);
  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (socket, any, TRUE, &error);
  g_assert_no_error (error);
  g_socket_listen (socket, &error);
  g_assert_no_error (error);
  local = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  *port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  g_assert_true (soup_server_listen_socket (server, socket, 0, &error));
  g_assert_no_error (error);
  return server;
}

static void
health_server_free (SoupServer *server)
{
  soup_server_disconnect (server);
  exo_test_spin (50);
  g_object_unref (server);
  exo_test_spin (50);
}

static void
test_static_peers (void)
{
  guint16 ports[1] = { free_udp_port () };
  g_auto(GStrv) targets = loopback_targets (ports, 1);
  HealthServer good = { "static-node", FALSE, FALSE, NULL, 0, NULL, FALSE, 0 };
  HealthServer garbage = { NULL, TRUE, FALSE, NULL, 0, NULL, FALSE, 0 };
  HealthServer self_server = { "prober", FALSE, FALSE, NULL, 0, NULL, FALSE, 0 };
  guint16 good_port, garbage_port, self_port, closed_port = free_udp_port ();
  SoupServer *good_server = health_server_new (&good, &good_port);
  SoupServer *garbage_server = health_server_new (&garbage, &garbage_port);
  SoupServer *self_soup = health_server_new (&self_server, &self_port);
  g_autofree char *good_address = g_strdup_printf ("127.0.0.1:%u", good_port);
  g_autofree char *garbage_address = g_strdup_printf ("127.0.0.1:%u", garbage_port);
  g_autofree char *self_address = g_strdup_printf ("127.0.0.1:%u", self_port);
  /* A TCP port nobody listens on (a free UDP port number is as good as any). */
  g_autofree char *closed_address = g_strdup_printf ("127.0.0.1:%u", closed_port);
  const char *static_peers[] = { good_address, garbage_address, self_address, closed_address, NULL };
  Node *a = node_new ("prober", ports[0], (const char * const *) targets,
                      "static-peers", static_peers,
                      "probe-timeout-ms", interval_ms * 4,
                      NULL);
  g_autoptr(GVariant) peers = NULL;
  const char *ifname = NULL;
  g_autofree char *probe_error = NULL;
  gint64 stopped_at, elapsed_ms;

  node_start (a);
  g_assert_true (wait_peer (a, "static-node", good_address, TRUE));
  peers = exo_discovery_list_peers (EXO_DISCOVERY (a->resource));
  g_assert_cmpuint (g_variant_n_children (peers), ==, 1);
  g_variant_get_child (peers, 0, "(&s&s&s@a{sv})", NULL, NULL, &ifname, NULL);
  g_assert_cmpstr (ifname, ==, "static");

  /* The garbage server and the closed port are failures; itself is ignored. */
  g_assert_true (wait_metric (a->resource, "static-probe-failures", 4));
  g_assert_true (wait_metric (a->resource, "own-messages", 1));
  probe_error = metric_str (a->resource, "last-static-probe-error");
  g_assert_cmpstr (probe_error, !=, "");
  g_assert_cmpuint (g_hash_table_size (a->peers), ==, 1);
  g_assert_cmpuint (a->found, ==, 1);
  g_assert_cmpint (exo_resource_get_state (a->resource), ==, EXO_RESOURCE_STATE_READY);

  /* Probed every interval, found only once. */
  {
    guint before = good.requests;

    exo_test_spin (interval_ms * 5);
    g_assert_cmpuint (good.requests, >=, before + 2);
    g_assert_cmpuint (a->found, ==, 1);
  }

  /* The server stops: the peer is lost after the timeout. */
  soup_server_disconnect (good_server);
  stopped_at = g_get_monotonic_time ();
  g_assert_true (wait_peer (a, "static-node", NULL, FALSE));
  elapsed_ms = (a->last_lost_at - stopped_at) / 1000;
  g_test_message ("static peer lost after %" G_GINT64_FORMAT " ms", elapsed_ms);
  g_assert_cmpint (elapsed_ms, <=, (gint64) (timeout_ms + timeout_ms / 4 + interval_ms * 2));
  g_assert_cmpuint (metric_u64 (a->resource, "peer-lost-count"), ==, 1);

  node_free (a);
  health_server_free (good_server);
  health_server_free (garbage_server);
  health_server_free (self_soup);
}

/* Cleanup does not wait for a peer that never answers. */
static void
test_static_peer_hangs (void)
{
  guint16 ports[1] = { free_udp_port () };
  g_auto(GStrv) targets = loopback_targets (ports, 1);
  HealthServer hang = { "slow", FALSE, TRUE, g_ptr_array_new_with_free_func (g_object_unref), 0,
                       NULL, FALSE, 0 };
  guint16 hang_port;
  SoupServer *server = health_server_new (&hang, &hang_port);
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%u", hang_port);
  const char *static_peers[] = { address, NULL };
  Node *a = node_new ("waiter", ports[0], (const char * const *) targets,
                      "static-peers", static_peers,
                      "probe-timeout-ms", 60000,
                      NULL);
  g_autoptr(GError) error = NULL;
  gint64 start;

  node_start (a);
  while (hang.paused->len == 0)
    g_main_context_iteration (NULL, TRUE);

  start = g_get_monotonic_time ();
  g_assert_true (exo_test_cleanup (a->resource, &error));
  g_assert_no_error (error);
  g_assert_cmpint ((g_get_monotonic_time () - start) / 1000, <, 5000);
  g_assert_cmpuint (metric_u64 (a->resource, "static-probes"), ==, 1);

  node_free (a);
  for (guint i = 0; i < hang.paused->len; i++)
    soup_server_message_unpause (g_ptr_array_index (hang.paused, i));
  g_ptr_array_unref (hang.paused);
  health_server_free (server);
}

/* A probe whose answer times out is a failure, and the peer is not found. */
static void
test_static_peer_timeout (void)
{
  guint16 ports[1] = { free_udp_port () };
  g_auto(GStrv) targets = loopback_targets (ports, 1);
  HealthServer hang = { "slow", FALSE, TRUE, g_ptr_array_new_with_free_func (g_object_unref), 0,
                       NULL, FALSE, 0 };
  guint16 hang_port;
  SoupServer *server = health_server_new (&hang, &hang_port);
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%u", hang_port);
  const char *static_peers[] = { address, NULL };
  Node *a = node_new ("impatient", ports[0], (const char * const *) targets,
                      "static-peers", static_peers,
                      "probe-timeout-ms", 100,
                      NULL);

  node_start (a);
  g_assert_true (wait_metric (a->resource, "static-probe-failures", 2));
  g_assert_cmpuint (a->found, ==, 0);

  node_free (a);
  for (guint i = 0; i < hang.paused->len; i++)
    soup_server_message_unpause (g_ptr_array_index (hang.paused, i));
  g_ptr_array_unref (hang.paused);
  health_server_free (server);
}

/* A static peer counts only when it answers with a signature made with our
 * key for our (signed) probe. */
static void
test_static_peer_wrong_key (void)
{
  guint16 ports[1] = { free_udp_port () };
  g_auto(GStrv) targets = loopback_targets (ports, 1);
  g_autoptr(ExoClusterKey) other_key = exo_cluster_key_new_random ();
  HealthServer stranger = { "stranger", FALSE, FALSE, NULL, 0, other_key, FALSE, 0 };
  HealthServer unsigned_server = { "no-signature", FALSE, FALSE, NULL, 0, NULL, TRUE, 0 };
  guint16 stranger_port, unsigned_port;
  SoupServer *stranger_soup = health_server_new (&stranger, &stranger_port);
  SoupServer *unsigned_soup = health_server_new (&unsigned_server, &unsigned_port);
  g_autofree char *stranger_address = g_strdup_printf ("127.0.0.1:%u", stranger_port);
  g_autofree char *unsigned_address = g_strdup_printf ("127.0.0.1:%u", unsigned_port);
  const char *static_peers[] = { stranger_address, unsigned_address, NULL };
  Node *a = node_new ("careful", ports[0], (const char * const *) targets,
                      "static-peers", static_peers,
                      "probe-timeout-ms", interval_ms * 4,
                      NULL);
  g_autofree char *probe_error = NULL;

  node_start (a);
  g_assert_true (wait_metric (a->resource, "static-probe-failures", 4));
  /* The stranger refused our signature (another key); the other answered
   * without one. */
  g_assert_cmpuint (stranger.refused, >=, 2);
  g_assert_cmpuint (unsigned_server.refused, ==, 0);
  probe_error = metric_str (a->resource, "last-static-probe-error");
  g_test_message ("%s", probe_error);
  g_assert_true (strstr (probe_error, "not a node of this cluster") != NULL ||
                 strstr (probe_error, "another cluster key") != NULL);
  g_assert_cmpuint (a->found, ==, 0);

  node_free (a);
  health_server_free (stranger_soup);
  health_server_free (unsigned_soup);
}

/* --- settings ----------------------------------------------------------------- */

static void
test_defaults (void)
{
  g_autoptr(ExoResource) resource = NULL;
  guint port, interval, timeout, server_port;
  g_autofree char *listen = NULL;
  g_autofree char *interface_type = NULL;
  g_auto(GStrv) addresses = NULL;
  g_auto(GStrv) statics = NULL;

  g_unsetenv ("EXO_NODE_ID");
  resource = g_object_new (discovery_type, "id", "defaults", NULL);
  g_object_get (resource,
                "port", &port, "listen-address", &listen, "broadcast-addresses", &addresses,
                "broadcast-interval-ms", &interval, "peer-timeout-ms", &timeout,
                "static-peers", &statics, "server-port", &server_port,
                "interface-type", &interface_type, NULL);
  g_assert_cmpuint (port, ==, 5678);
  g_assert_cmpstr (listen, ==, "0.0.0.0");
  g_assert_true (addresses == NULL || addresses[0] == NULL);
  g_assert_cmpuint (interval, ==, 2500);
  g_assert_cmpuint (timeout, ==, 30000);
  g_assert_true (statics == NULL || statics[0] == NULL);
  g_assert_cmpuint (server_port, ==, 0);
  g_assert_cmpstr (interface_type, ==, "auto");
  g_assert_cmpstr (exo_resource_get_resource_type (resource), ==, "udp-discovery");
  g_assert_true (EXO_IS_DISCOVERY (resource));
}

static void
test_node_id (void)
{
  g_autoptr(ExoResource) one = NULL;
  g_autoptr(ExoResource) two = NULL;
  g_autoptr(ExoResource) from_env = NULL;
  g_autoptr(ExoResource) configured = NULL;
  g_autofree char *id_one = NULL, *id_two = NULL, *id_env = NULL, *id_conf = NULL;
  g_autofree char *instance_one = NULL, *instance_two = NULL;
  g_autoptr(GError) error = NULL;

  /* No setting, no environment: one random id per process. */
  g_unsetenv ("EXO_NODE_ID");
  one = g_object_new (discovery_type, "id", "one", NULL);
  two = g_object_new (discovery_type, "id", "two", NULL);
  g_object_get (one, "effective-node-id", &id_one, "instance-id", &instance_one, NULL);
  g_object_get (two, "effective-node-id", &id_two, "instance-id", &instance_two, NULL);
  g_assert_true (g_uuid_string_is_valid (id_one));
  g_assert_cmpstr (id_one, ==, id_two);
  g_assert_cmpstr (instance_one, !=, instance_two);

  /* The daemon's id through the environment. */
  g_setenv ("EXO_NODE_ID", "from-the-daemon", TRUE);
  from_env = g_object_new (discovery_type, "id", "env", NULL);
  g_object_get (from_env, "effective-node-id", &id_env, NULL);
  g_assert_cmpstr (id_env, ==, "from-the-daemon");

  /* The setting wins. */
  configured = g_object_new (discovery_type, "id", "conf", "node-id", "configured", NULL);
  g_object_get (configured, "effective-node-id", &id_conf, NULL);
  g_assert_cmpstr (id_conf, ==, "configured");
  g_unsetenv ("EXO_NODE_ID");

  /* An id that could not go on the wire is refused. */
  {
    g_autofree char *long_id = g_strnfill (UDP_DISCOVERY_TEST_MAX_ID + 1, 'x');
    g_autoptr(ExoResource) bad = g_object_new (discovery_type, "id", "bad", "node-id", long_id,
                                               "port", (guint) free_udp_port (),
                                               "listen-address", "127.0.0.1",
                                               "broadcast-addresses", (const char *[]) { "127.0.0.1:9", NULL },
                                               NULL);

    g_assert_false (exo_test_initialize (bad, &error));
    g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
    g_assert_nonnull (strstr (error->message, "node-id"));
    g_clear_error (&error);
    g_assert_true (exo_test_cleanup (bad, NULL));
  }
}

static void
test_bad_settings (void)
{
  struct { const char *property; const char *value[3]; const char *needle; } cases[] = {
    { "broadcast-addresses", { "not-an-address", NULL }, "broadcast-addresses: 'not-an-address'" },
    { "broadcast-addresses", { "127.0.0.1:0", NULL }, "no valid port" },
    { "broadcast-addresses", { "127.0.0.1:99999", NULL }, "no valid port" },
    { "broadcast-addresses", { "::1", NULL }, "not an IPv4 address" },
    { "static-peers", { "127.0.0.1", NULL }, "static-peers: '127.0.0.1' has no port" },
    { "static-peers", { "[bad:", NULL }, "static-peers: '[bad:'" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(ExoResource) resource = NULL;
      g_autoptr(GError) error = NULL;

      resource = g_object_new (discovery_type, "id", "bad-settings", "node-id", "n",
                               "port", (guint) free_udp_port (), "listen-address", "127.0.0.1",
                               "broadcast-addresses", (const char *[]) { "127.0.0.1:9", NULL },
                               NULL);
      g_object_set (resource, cases[i].property, cases[i].value, NULL);
      g_assert_false (exo_test_initialize (resource, &error));
      g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, cases[i].needle));
      g_assert_true (exo_test_cleanup (resource, NULL));
    }

  /* listen-address */
  {
    g_autoptr(ExoResource) resource = g_object_new (discovery_type, "id", "bad-listen",
                                                    "node-id", "n", "listen-address", "nowhere",
                                                    NULL);
    g_autoptr(GError) error = NULL;

    g_assert_false (exo_test_initialize (resource, &error));
    g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
    g_assert_nonnull (strstr (error->message, "listen-address"));
    g_assert_true (exo_test_cleanup (resource, NULL));
  }
}

/* Port 0 binds any free port, and "addr" without a port means that port. */
static void
test_any_port (void)
{
  g_autoptr(ExoResource) resource = g_object_new (discovery_type, "id", "any-port",
                                                  "node-id", "lonely", "port", 0,
                                                  "listen-address", "127.0.0.1",
                                                  "broadcast-addresses", (const char *[]) { "127.0.0.1", NULL },
                                                  "broadcast-interval-ms", interval_ms,
                                                  NULL);
  g_autoptr(GVariant) metrics = NULL;
  g_autofree const char **sent_to = NULL;
  g_autofree char *expected = NULL;
  guint32 port = 0;

  g_assert_true (exo_test_initialize (resource, NULL));
  g_assert_true (wait_metric (resource, "own-messages", 2));
  metrics = exo_resource_get_metrics (resource);
  g_assert_true (g_variant_lookup (metrics, "port", "u", &port));
  g_assert_cmpuint (port, >, 0);
  g_assert_true (g_variant_lookup (metrics, "broadcast-targets", "^a&s", &sent_to));
  expected = g_strdup_printf ("127.0.0.1:%u", port);
  g_assert_cmpuint (g_strv_length ((char **) sent_to), ==, 1);
  g_assert_cmpstr (sent_to[0], ==, expected);
  g_assert_true (exo_test_cleanup (resource, NULL));
}

/* --- main ----------------------------------------------------------------------- */

static GType
load_plugin (ExoPluginLoader *loader,
             const char      *argv0)
{
  const char *path = g_getenv ("EXO_UDP_DISCOVERY_PLUGIN");
  g_autofree char *fallback = NULL;
  g_autoptr(GError) error = NULL;
  ExoPluginInfo *info;   /* the loader's */

  if (path == NULL)
    {
      g_autofree char *dir = g_path_get_dirname (argv0);

      fallback = g_build_filename (dir, "..", "plugins", "udp-discovery",
                                   "libexo-plugin-udp-discovery.so", NULL);
      path = fallback;
    }
  info = exo_plugin_loader_load_file (loader, path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (exo_plugin_info_get_name (info), ==, "udp-discovery");
  return exo_plugin_loader_lookup_type (loader, "udp-discovery");
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(ExoPluginLoader) loader = NULL;
  guint slow;
  int ret;

  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (capture_writer, NULL, NULL);
  /* GTest shows every g_debug(); GSocketClient has many. */
  if (g_getenv ("G_MESSAGES_DEBUG") == NULL)
    {
      g_log_set_handler ("GLib-GIO", G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO, discard_log, NULL);
      g_log_set_handler ("libsoup", G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO, discard_log, NULL);
    }
  plugin_log = g_ptr_array_new_with_free_func (g_free);
  test_key = exo_cluster_key_new_random ();
  exo_cluster_key_set_default (test_key);

  loader = exo_plugin_loader_new ();
  discovery_type = load_plugin (loader, argv[0]);
  g_assert_true (g_type_is_a (discovery_type, EXO_TYPE_DISCOVERY));

  slow = exo_test_slow_factor ();
  interval_ms = 100 * slow;
  timeout_ms = 600 * slow;
  wait_ms = 10000 * slow;

  g_test_add_func ("/udp-discovery/settings/defaults", test_defaults);
  g_test_add_func ("/udp-discovery/settings/node-id", test_node_id);
  g_test_add_func ("/udp-discovery/settings/invalid", test_bad_settings);
  g_test_add_func ("/udp-discovery/settings/any-port", test_any_port);
  g_test_add_func ("/udp-discovery/find/two-nodes", test_two_nodes);
  g_test_add_func ("/udp-discovery/find/three-nodes", test_three_nodes);
  g_test_add_func ("/udp-discovery/find/server-port-from-server", test_server_port_from_server);
  g_test_add_func ("/udp-discovery/lost/timeout", test_peer_lost);
  g_test_add_func ("/udp-discovery/validation/invalid-messages", test_invalid_messages);
  g_test_add_func ("/udp-discovery/duplicate/own-id", test_duplicate_id);
  g_test_add_func ("/udp-discovery/duplicate/peer-id-conflict", test_peer_id_conflict);
  g_test_add_func ("/udp-discovery/auth/forged", test_auth_forged);
  g_test_add_func ("/udp-discovery/auth/replay", test_auth_replay);
  g_test_add_func ("/udp-discovery/auth/spoofed-source", test_auth_spoofed_source);
  g_test_add_func ("/udp-discovery/static/found-and-lost", test_static_peers);
  g_test_add_func ("/udp-discovery/static/wrong-key", test_static_peer_wrong_key);
  g_test_add_func ("/udp-discovery/static/probe-timeout", test_static_peer_timeout);
  g_test_add_func ("/udp-discovery/static/cleanup-while-probing", test_static_peer_hangs);

  ret = g_test_run ();
  exo_cluster_key_set_default (NULL);
  g_clear_pointer (&test_key, exo_cluster_key_unref);
  g_ptr_array_unref (plugin_log);
  return ret;
}
