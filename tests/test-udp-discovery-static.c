/* test-udp-discovery-static.c: static peers, probed over HTTP — found and
 * lost, a probe that hangs or times out, a peer with the wrong key.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-udp-discovery (main() in test-udp-discovery.c).  The peers
 * are a SoupServer (HealthServer) in this process; server and node share
 * the test's thread-default main context.
 */
#include "udp-discovery-fixture.h"

#include <libsoup/soup.h>

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

/* --- registration ---------------------------------------------------- */

void
test_discovery_register_static (void)
{
  g_test_add_func ("/udp-discovery/static/found-and-lost", test_static_peers);
  g_test_add_func ("/udp-discovery/static/wrong-key", test_static_peer_wrong_key);
  g_test_add_func ("/udp-discovery/static/probe-timeout", test_static_peer_timeout);
  g_test_add_func ("/udp-discovery/static/cleanup-while-probing", test_static_peer_hangs);
}
