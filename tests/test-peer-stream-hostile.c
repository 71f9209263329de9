/* test-peer-stream-hostile.c: the peer stream of the `http-server` plugin
 * (`GET /peer/v1/stream`; docs/cluster-protocol.md, docs/security.md)
 * against peers that break its rules: frames replayed, out of sequence,
 * with another key's MAC, garbage, of an unknown version or type, a field
 * out of bounds, too big, text; and a peer that hangs with its socket open
 * and answers no ping.  Each closes that stream only, counted per reason,
 * and the server goes on serving.  The peer's own use of the stream:
 * test-peer-stream.c.
 *
 * The cases speak the stream themselves (peer-stream-fixture.c: a
 * SoupSession upgrade signed with the cluster key), with frames built by
 * the plugin's own frame code (http-stream-frame.c, compiled in) or forged
 * from it, against http-server-fixture.c's server and fake node.
 *
 * One thread: the server, the node and the clients run in the main
 * context of the test's thread; the test spins it until what it waits for
 * happened (bounded by WAIT_MS).  One exception, the hung peer: its client
 * has a context of its own, pushed as thread-default only while the test
 * iterates it (wait_for_two()).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "peer-stream-fixture.h"

/* --- hostile frames on a raw authenticated stream --------------------------------- */

/* After @raw was closed for @reason: counted, and the server serves. */
static void
assert_refused (Fixture    *fx,
                Raw        *raw,
                const char *reason,
                guint64     before)
{
  g_autofree char *key = g_strdup_printf ("peer-stream-refused-%s", reason);
  g_autoptr(Reply) health = NULL;

  g_assert_true (wait_for (raw_closed, raw));
  g_assert_cmpuint (metric_u64 (fx->server, key), ==, before + 1);
  g_assert_cmpuint (refusals_containing (reason), >=, 1);
  health = http_get (fx, "/peer/v1/health");
  g_assert_cmpuint (health->status, ==, 200);
}

static void
test_stream_hostile (Fixture       *fx,
                     gconstpointer  data)
{
  g_autoptr(ExoClusterKey) other = exo_cluster_key_new_random ();

  /* a good frame is answered, with a valid answer frame */
  {
    g_autoptr(Raw) raw = raw_open (fx);
    g_autoptr(GBytes) frame = result_frame (test_key, raw, 1);
    ExoStreamFrame answer;
    ExoStreamRefused reason;
    g_autoptr(GError) error = NULL;
    gsize len;
    const guint8 *bytes;

    raw_send (raw, frame);
    g_assert_true (wait_for (raw_answered, raw));
    g_assert_cmpuint (raw->answers->len, ==, 1);
    bytes = g_bytes_get_data (g_ptr_array_index (raw->answers, 0), &len);
    g_assert_true (exo_stream_frame_read (test_key, raw->nonce, EXO_STREAM_FROM_SERVER, 1,
                                          1u << EXO_STREAM_ANSWER, 0, bytes, len, &answer,
                                          &reason, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (answer.status, ==, 200);
    g_assert_cmpstr (answer.call_id, ==, "call-1");
    exo_stream_frame_clear (&answer);
    g_assert_cmpuint (fx->node->n_results, ==, 1);

    /* the same frame again: replayed */
    raw_send (raw, frame);
    assert_refused (fx, raw, "sequence", 0);
    g_assert_cmpuint (fx->node->n_results, ==, 1);
  }
  /* a number skipped */
  {
    g_autoptr(Raw) raw = raw_open (fx);
    g_autoptr(GBytes) frame = result_frame (test_key, raw, 2);

    raw_send (raw, frame);
    assert_refused (fx, raw, "sequence", 1);
  }
  /* another key's MAC */
  {
    g_autoptr(Raw) raw = raw_open (fx);
    g_autoptr(GBytes) frame = result_frame (other, raw, 1);

    raw_send (raw, frame);
    assert_refused (fx, raw, "bad-mac", 0);
  }
  /* garbage */
  {
    g_autoptr(Raw) raw = raw_open (fx);
    guint8 junk[300];
    g_autoptr(GBytes) frame = NULL;

    for (guint i = 0; i < sizeof junk; i++)
      junk[i] = (guint8) g_random_int ();
    frame = g_bytes_new (junk, sizeof junk);
    raw_send (raw, frame);
    assert_refused (fx, raw, "bad-mac", 1);
  }
  /* signed, but a version and a type the server does not take */
  {
    g_autoptr(Raw) raw = raw_open (fx);
    g_autoptr(GBytes) frame = exo_stream_build_raw (test_key, raw->nonce, EXO_STREAM_FROM_CLIENT, 9,
                                                    EXO_STREAM_CANCEL, 1, "call-1", NULL, 0);

    raw_send (raw, frame);
    assert_refused (fx, raw, "version", 0);
  }
  {
    g_autoptr(Raw) raw = raw_open (fx);
    g_autoptr(GBytes) frame = exo_stream_build_answer (test_key, raw->nonce, EXO_STREAM_FROM_CLIENT,
                                                       1, "call-1", 200, "");

    raw_send (raw, frame);
    assert_refused (fx, raw, "type", 0);
  }
  /* the server's own direction replayed at it: the MAC does not hold */
  {
    g_autoptr(Raw) raw = raw_open (fx);
    g_autoptr(GBytes) frame = exo_stream_build_cancel (test_key, raw->nonce, EXO_STREAM_FROM_SERVER,
                                                       1, "call-1", "req-x");

    raw_send (raw, frame);
    assert_refused (fx, raw, "bad-mac", 2);
  }
  /* a field out of bounds: a request id of 300 bytes */
  {
    g_autoptr(Raw) raw = raw_open (fx);
    g_autofree char *long_id = g_strnfill (300, 'x');
    g_autoptr(GBytes) frame = exo_stream_build_cancel (test_key, raw->nonce, EXO_STREAM_FROM_CLIENT,
                                                       1, "call-1", long_id);

    raw_send (raw, frame);
    assert_refused (fx, raw, "malformed", 0);
    g_assert_cmpuint (fx->node->n_cancels, ==, 0);
  }
  /* larger than max-body-bytes allows */
  {
    g_autoptr(Raw) raw = NULL;
    g_autoptr(GBytes) frame = NULL;
    guint8 *big = g_malloc0 (200 * 1024);

    g_object_set (fx->server, "max-body-bytes", (guint64) 1024, NULL);
    raw = raw_open (fx);
    frame = g_bytes_new_take (big, 200 * 1024);
    raw_send (raw, frame);
    assert_refused (fx, raw, "too-big", 0);
  }
  /* a text message */
  {
    g_autoptr(Raw) raw = raw_open (fx);

    soup_websocket_connection_send_text (raw->ws, "hello");
    assert_refused (fx, raw, "protocol", 0);
  }
  g_assert_cmpuint (metric_u64 (fx->server, "peer-stream-opens"), ==, 10);
  exo_test_spin (20);
}

/* --- a hung peer ------------------------------------------------------------------- */

/* A peer that hangs with its socket open (stopped, a wedged main loop):
 * its stream's client runs in a context of its own that the test never
 * iterates once the upgrade is done, so it never reads the pings nor
 * answers them.  With peer-stream-keepalive-ms 200 the server pings every
 * second (libsoup's whole seconds) and closes the stream after three
 * pings without an answer.  A stream of a live client, pinged too, sends
 * no frame but its pongs: it stays. */
static void
test_stream_hung_peer (Fixture       *fx,
                       gconstpointer  data)
{
  GMainContext *client = g_main_context_new ();
  SoupSession *session;
  Raw *hung, *alive;
  guint status = 0;
  gint64 start, took;

  g_object_set (fx->server, "peer-stream-keepalive-ms", 200, NULL);
  g_main_context_push_thread_default (client);
  session = soup_session_new ();
  g_main_context_pop_thread_default (client);

  start = g_get_monotonic_time ();
  hung = raw_try_open_with (fx, session, client, &status);
  g_assert_nonnull (hung);
  g_assert_cmpuint (status, ==, 101);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-streams-open"), ==, 1);
  alive = raw_open (fx);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-streams-open"), ==, 2);

  /* closed after three unanswered pings of 1 s, within the watchdog's
   * tick (half an interval) and some slack */
  g_assert_true (wait_for (one_stream_open, fx));
  took = g_get_monotonic_time () - start;
  g_test_message ("the hung peer's stream closed after %" G_GINT64_FORMAT " ms", took / 1000);
  g_assert_cmpint (took, >=, 3 * G_USEC_PER_SEC);
  g_assert_cmpint (took, <, (gint64) 5 * G_USEC_PER_SEC * exo_test_slow_factor ());
  g_assert_cmpuint (metric_u64 (fx->server, "peer-streams-timed-out"), ==, 1);
  g_assert_cmpuint (stream_timeouts->len, ==, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (stream_timeouts, 0),
                            "test-http: closed the peer stream from 127.0.0.1: no answer to pings for 3."));
  {
    g_autoptr(Reply) reply = http_get (fx, "/metrics");
    g_autofree char *text = reply_text (reply);

    g_assert_nonnull (strstr (text, "exo_http_peer_streams_timed_out_total{id=\"test-http\"} 1"));
  }

  /* the live one: answered every ping, kept past the limit (3 s) and
   * the ticks after it */
  took = g_get_monotonic_time () - start;
  if (took < 4500 * 1000)
    exo_test_spin ((guint) (4500 - took / 1000));
  g_assert_false (alive->closed);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-streams-open"), ==, 1);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-streams-timed-out"), ==, 1);
  raw_free (alive);

  /* the hung client wakes up: it reads the server's close, answers it,
   * and both ends finish */
  g_assert_true (wait_for_two (client, raw_closed, hung));
  g_assert_cmpuint (soup_websocket_connection_get_close_code (hung->ws), ==,
                    SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION);
  g_assert_nonnull (strstr (soup_websocket_connection_get_close_data (hung->ws),
                            "no answer to pings for 3 s"));
  raw_free (hung);
  g_main_context_push_thread_default (client);
  soup_session_abort (session);
  g_object_unref (session);
  for (guint i = 0; i < 10 && g_main_context_pending (client); i++)
    g_main_context_iteration (client, FALSE);
  g_main_context_pop_thread_default (client);
  g_main_context_unref (client);
  exo_test_spin (20);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-streams-open"), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  peer_stream_test_init (&argc, &argv);
  g_test_add ("/peer-stream/hostile-frames", Fixture, NULL, fixture_setup, test_stream_hostile,
              fixture_teardown);
  g_test_add ("/peer-stream/hung-peer", Fixture, NULL, fixture_setup, test_stream_hung_peer,
              fixture_teardown);
  return g_test_run ();
}
