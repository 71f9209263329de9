/* test-udp-discovery-auth.c: the cluster key on discovery datagrams —
 * forged, replayed and spoofed-source datagrams are dropped and logged.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-udp-discovery (main() in test-udp-discovery.c).  One thread:
 * the node and the plain sockets share the test's thread-default main
 * context.
 */
#include "udp-discovery-fixture.h"

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

/* --- registration ---------------------------------------------------- */

void
test_discovery_register_auth (void)
{
  g_test_add_func ("/udp-discovery/auth/forged", test_auth_forged);
  g_test_add_func ("/udp-discovery/auth/replay", test_auth_replay);
  g_test_add_func ("/udp-discovery/auth/spoofed-source", test_auth_spoofed_source);
}
