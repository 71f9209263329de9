/* test-cluster-security.c: the cluster key between exo-node processes —
 * a node with another key never joins; unsigned peer RPC and forged,
 * replayed and spoofed-source datagrams sent to node 1 are dropped and
 * counted (seen on D-Bus), the spoofed source is never probed; the node joins
 * once it has the cluster's key file.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-cluster (main() in test-cluster.c).  One thread, the test's:
 * the nodes are processes of cluster-harness.c, reached by blocking calls;
 * the datagrams are sent from plain sockets of this process.
 */
#include "cluster-fixture.h"

/* --- security: the cluster key -------------------------------------------- */

static GSocket *
socket_on (const char  *ip,
           guint16      port,
           GSocketType  type)
{
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string (ip);
  g_autoptr(GSocketAddress) where = g_inet_socket_address_new (address, port);
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, type, 0, NULL);

  if (socket == NULL || !g_socket_bind (socket, where, TRUE, NULL))
    return NULL;
  if (type == G_SOCKET_TYPE_STREAM && !g_socket_listen (socket, NULL))
    return NULL;
  return g_steal_pointer (&socket);
}

static guint16
local_port (GSocket *socket)
{
  g_autoptr(GSocketAddress) local = g_socket_get_local_address (socket, NULL);

  return local != NULL ? g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local)) : 0;
}

static gboolean
send_datagram (GSocket    *socket,
               guint16     port,
               const void *data,
               gsize       length)
{
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new (lo, port);

  return g_socket_send_to (socket, to, data, length, NULL, NULL) == (gssize) length;
}

/* The datagram a holder of @key sends for @message, announcing @addresses
 * (docs/cluster-protocol.md, made here independently of the plugin). */
static char *
seal (ExoClusterKey *key,
      const char    *message,
      const char    *addresses,
      gsize         *out_length)
{
  g_autofree char *nonce = exo_cluster_auth_new_nonce ();
  g_autofree char *prefix = g_strdup_printf ("EXO-AUTH v1 ts=%" G_GINT64_FORMAT " nonce=%s addrs=%s",
                                             g_get_real_time (), nonce, addresses);
  g_autofree char *covered = g_strdup_printf ("exo-discovery-v1\n%s\n%s", prefix, message);
  g_autofree char *mac = exo_cluster_key_sign (key, (const guint8 *) covered, strlen (covered));
  char *datagram = g_strdup_printf ("%s mac=%s\n%s", prefix, mac, message);

  *out_length = strlen (datagram);
  return datagram;
}

/* Nodes 1 and 2 share the cluster's key, node 3 has another: it never
 * joins them; the attacks of issue 9 against node 1 fail and are counted;
 * with the cluster's key file, node 3 joins. */
static void
test_security (void)
{
  Cluster cl, *c = &cl;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) capture = NULL;
  g_autoptr(GSocket) spoofer = NULL;
  g_autoptr(GSocket) honest = NULL;
  g_autoptr(GSocket) trap = NULL;
  g_autofree char *last = NULL;
  g_autofree char *why = NULL;
  char captured[8192];
  gssize n_captured = 0;
  guint status = 0;
  const guint num_tokens = 10, expected_tokens = num_tokens - 1;

  cluster_init (c, FALSE);
  CHECK (c->exo_node != NULL && c->plugin_dir != NULL, "EXO_NODE and EXO_TEST_PLUGIN_DIR must be set");
  CHECK (c->key_path != NULL, "cannot make a temporary folder");
  {
    g_autoptr(ExoClusterKey) other = exo_cluster_key_new_random ();

    c->nodes[2].key_path = g_build_filename (c->tmpdir, "another.key", NULL);
    CHECK (exo_cluster_key_save (other, c->nodes[2].key_path, &error), "key: %s", error->message);
  }
  /* Node 2 also announces itself to a socket of ours (a capture on the
   * wire); a listener waits where a spoofed copy would point node 1. */
  capture = socket_on ("127.0.0.1", 0, G_SOCKET_TYPE_DATAGRAM);
  spoofer = socket_on ("127.0.0.66", 0, G_SOCKET_TYPE_DATAGRAM);
  honest = socket_on ("127.0.0.1", 0, G_SOCKET_TYPE_DATAGRAM);
  trap = socket_on ("127.0.0.66", c->nodes[1].http_port, G_SOCKET_TYPE_STREAM);
  CHECK (capture != NULL && spoofer != NULL && honest != NULL && trap != NULL,
         "cannot make the test's sockets on 127.0.0.1 and 127.0.0.66");
  g_socket_set_blocking (trap, FALSE);
  c->nodes[1].capture_port = local_port (capture);
  CHECK (write_configs (c, 0, num_tokens, &error), "configs: %s", error->message);
  CHECK (start_bus (c, &error), "dbus-daemon: %s", error ? error->message : "?");
  for (guint i = 0; i < N_NODES; i++)
    CHECK (start_node (c, &c->nodes[i], &error), "starting %s: %s", c->nodes[i].id, error->message);

  /* 1. Nodes 1 and 2 form a ring; node 3, with another key, stays alone. */
  CHECK (wait_ring (c, 0x3, RING_2, 15000, &last), "no ring %s; last: %s", RING_2, last);
  CHECK (wait_ring (c, 0x4, "node-3:0-15", 15000, &last), "node-3 is not alone; last: %s", last);
  CHECK (wait_resource_metric (c, &c->nodes[0], "discovery", "dropped-auth-bad-mac", 1, 10000),
         "node-1 counted no datagram of node-3 as bad-mac");
  CHECK (wait_resource_metric (c, &c->nodes[0], "server", "peer-auth-bad-mac", 1, 10000),
         "node-1 counted no probe of node-3 as bad-mac");
  CHECK (wait_resource_metric (c, &c->nodes[2], "discovery", "static-probe-failures", 1, 10000),
         "node-3 counted no failed probe");
  g_test_message ("node-1: %" G_GINT64_FORMAT " datagrams and %" G_GINT64_FORMAT
                  " peer requests of node-3 refused (bad-mac)",
                  resource_metric (c, &c->nodes[0], "discovery", "dropped-auth-bad-mac"),
                  resource_metric (c, &c->nodes[0], "server", "peer-auth-bad-mac"));

  /* 2. Unsigned peer RPC: 401, counted, the node does nothing. */
  {
    g_autofree char *prompt = g_strdup_printf (
      "{\"shard\": {\"model_id\": \"dummy\", \"start_layer\": 0, \"end_layer\": 14, "
      "\"n_layers\": 16}, \"prompt\": \"hi\", \"request_id\": \"forged\"}");
    g_autofree char *body = http (c, &c->nodes[0], "POST", "/peer/v1/prompt", prompt, &status);

    CHECK (status == 401 && body != NULL && strstr (body, "unauthenticated") != NULL,
           "unsigned /peer/v1/prompt: HTTP %u %s", status, body ? body : "");
  }
  CHECK (wait_resource_metric (c, &c->nodes[0], "server", "peer-auth-missing", 1, 5000),
         "the unsigned peer request was not counted");

  /* 3. A forged datagram (exo's bare message): dropped and counted. */
  {
    g_autofree char *forged = g_strdup_printf (
      "{\"type\": \"discovery\", \"node_id\": \"intruder\", \"grpc_port\": %u, "
      "\"device_capabilities\": {\"memory\": 1048576}}", c->nodes[1].http_port);

    CHECK (send_datagram (honest, c->nodes[0].udp_port, forged, strlen (forged)),
           "cannot send the forged datagram");
  }
  CHECK (wait_resource_metric (c, &c->nodes[0], "discovery", "dropped-auth-missing", 1, 5000),
         "the forged datagram was not counted");

  /* 4. A real datagram of node 2, replayed from a spoofed source. */
  g_socket_set_timeout (capture, 10);
  n_captured = g_socket_receive (capture, captured, sizeof captured, NULL, &error);
  CHECK (n_captured > 0, "no datagram of node-2 captured: %s", error ? error->message : "?");
  CHECK (send_datagram (spoofer, c->nodes[0].udp_port, captured, (gsize) n_captured),
         "cannot send the spoofed datagram");
  CHECK (wait_resource_metric (c, &c->nodes[0], "discovery", "dropped-auth-unannounced-source", 1,
                               5000), "the spoofed datagram was not refused");
  /* The same for a node node-1 does not know yet, pointing at the listener:
   * signed by a key holder, for 127.0.0.1, sent from 127.0.0.66. */
  {
    g_autoptr(ExoClusterKey) key = exo_cluster_key_load (c->key_path, &error);
    g_autofree char *message = NULL;
    g_autofree char *datagram = NULL;
    gsize length = 0;

    CHECK (key != NULL, "cannot read the cluster key: %s", error->message);
    message = g_strdup_printf ("{\"type\": \"discovery\", \"node_id\": \"ghost\", "
                               "\"grpc_port\": %u}", c->nodes[1].http_port);
    datagram = seal (key, message, "127.0.0.1", &length);
    CHECK (send_datagram (spoofer, c->nodes[0].udp_port, datagram, length),
           "cannot send the spoofed datagram");
  }
  CHECK (wait_resource_metric (c, &c->nodes[0], "discovery", "dropped-auth-unannounced-source", 2,
                               5000), "the spoofed datagram of a new node was not refused");
  /* From the right address it is genuine, once; again, it is a replay. */
  CHECK (send_datagram (honest, c->nodes[0].udp_port, captured, (gsize) n_captured) &&
         send_datagram (honest, c->nodes[0].udp_port, captured, (gsize) n_captured),
         "cannot replay the datagram");
  CHECK (wait_resource_metric (c, &c->nodes[0], "discovery", "dropped-auth-replay", 1, 5000),
         "the replayed datagram was not refused");

  /* 5. Nobody connected to where the spoofed copy pointed. */
  g_usleep (3 * G_USEC_PER_SEC);
  {
    g_autoptr(GSocket) probe = g_socket_accept (trap, NULL, NULL);

    CHECK (probe == NULL, "node-1 connected to 127.0.0.66:%u, the spoofed source",
           c->nodes[1].http_port);
  }

  /* 6. The ring is as it was; it computes. */
  CHECK (wait_ring (c, 0x3, RING_2, 5000, &last), "the ring changed; last: %s", last);
  CHECK (node_metric (c, &c->nodes[0], "peers") == 1, "node-1 has %" G_GINT64_FORMAT " peers",
         node_metric (c, &c->nodes[0], "peers"));
  CHECK (chat_ok (c, &c->nodes[0], expected_tokens, &why), "chat on nodes 1 and 2: %s", why);

  /* 7. Node 3 gets the cluster's key file (an operator copies it) and joins. */
  CHECK (end_process (&c->nodes[2].proc, SIGTERM, 10000), "node-3 did not stop");
  {
    g_autofree char *text = NULL;

    CHECK (g_file_get_contents (c->key_path, &text, NULL, &error) &&
           g_file_set_contents (c->nodes[2].key_path, text, -1, &error),
           "copying the key: %s", error->message);
    g_chmod (c->nodes[2].key_path, 0600);
  }
  CHECK (start_node (c, &c->nodes[2], &error), "restarting node-3: %s", error->message);
  CHECK (wait_ring (c, 0x7, RING_3, 20000, &last), "node-3 did not join with the key; last: %s",
         last);
  CHECK (chat_ok (c, &c->nodes[0], expected_tokens, &why), "chat on three nodes: %s", why);

  /* 8. Node-1's peer requests carry its node id (the daemon's, from the
   * config) in X-Exo-Node-Id: a genuine announcement of a node "listener"
   * at a socket of ours, and the first request node-1 sends there. */
  {
    g_autoptr(GSocket) listener = socket_on ("127.0.0.1", 0, G_SOCKET_TYPE_STREAM);
    g_autoptr(GSocket) conn = NULL;
    g_autoptr(ExoClusterKey) key = exo_cluster_key_load (c->key_path, &error);
    g_autofree char *message = NULL;
    g_autofree char *datagram = NULL;
    char request[8192] = { 0, };
    gsize length = 0, got = 0;

    CHECK (listener != NULL && key != NULL, "cannot listen or read the key");
    message = g_strdup_printf ("{\"type\": \"discovery\", \"node_id\": \"listener\", "
                               "\"grpc_port\": %u}", local_port (listener));
    datagram = seal (key, message, "127.0.0.1", &length);
    CHECK (send_datagram (honest, c->nodes[0].udp_port, datagram, length),
           "cannot announce the listener");
    g_socket_set_timeout (listener, 10);
    conn = g_socket_accept (listener, NULL, &error);
    CHECK (conn != NULL, "node-1 did not connect to the listener: %s", error->message);
    g_socket_set_timeout (conn, 10);
    while (got < sizeof request - 1 && strstr (request, "\r\n\r\n") == NULL)
      {
        gssize r = g_socket_receive (conn, request + got, sizeof request - 1 - got, NULL, NULL);

        if (r <= 0)
          break;
        got += (gsize) r;
      }
    CHECK (g_strstr_len (request, -1, "\r\nX-Exo-Node-Id: node-1\r\n") != NULL,
           "node-1's peer request has not its node id: %s", request);
  }

out:
  cluster_clear (c);
}

void
test_cluster_register_security (void)
{
  g_test_add_func ("/cluster/loopback/security", test_security);
}
