/* test-udp-discovery-find.c: nodes finding each other (two, three, the port
 * of a server), losing a peer that went quiet, invalid datagrams refused,
 * duplicate node ids.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-udp-discovery (main() in test-udp-discovery.c).  One thread:
 * every node runs on the test's thread-default main context.
 */
#include "udp-discovery-fixture.h"

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

/* --- registration ---------------------------------------------------- */

void
test_discovery_register_find (void)
{
  g_test_add_func ("/udp-discovery/find/two-nodes", test_two_nodes);
  g_test_add_func ("/udp-discovery/find/three-nodes", test_three_nodes);
  g_test_add_func ("/udp-discovery/find/server-port-from-server", test_server_port_from_server);
  g_test_add_func ("/udp-discovery/lost/timeout", test_peer_lost);
  g_test_add_func ("/udp-discovery/validation/invalid-messages", test_invalid_messages);
  g_test_add_func ("/udp-discovery/duplicate/own-id", test_duplicate_id);
  g_test_add_func ("/udp-discovery/duplicate/peer-id-conflict", test_peer_id_conflict);
}
