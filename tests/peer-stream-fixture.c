/* peer-stream-fixture.c: what test-peer-stream and test-peer-stream-hostile
 * share — the programs' start (plugin, key, log capture), the waits, the
 * metric predicates, the raw authenticated stream (Raw) and its frame
 * builder.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One thread: everything runs in the main context of the test's thread.
 * One exception: a Raw opened with raw_try_open_with() and a client
 * context runs in that context, which is thread-default only while
 * wait_for_two() (or the caller) iterates it; its signal handlers then run
 * there, on the same thread.
 */
#include "peer-stream-fixture.h"

/* --- the programs' start ----------------------------------------------------- */

GPtrArray *stream_timeouts;

static GLogWriterOutput
timeout_writer (GLogLevelFlags   log_level,
                const GLogField *fields,
                gsize            n_fields,
                gpointer         user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "MESSAGE") && fields[i].length < 0 &&
        strstr (fields[i].value, "no answer to pings") != NULL)
      {
        g_ptr_array_add (stream_timeouts, g_strdup (fields[i].value));
        return G_LOG_WRITER_HANDLED;
      }
  return capture_writer (log_level, fields, n_fields, user_data);
}

void
peer_stream_test_init (int    *argc,
                       char ***argv)
{
  g_test_init (argc, argv, NULL);
  load_plugin ();
  test_key = exo_cluster_key_new_random ();
  exo_cluster_key_set_default (test_key);
  refusals = g_ptr_array_new_with_free_func (g_free);
  stream_timeouts = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (timeout_writer, NULL, NULL);
  if (g_getenv ("G_MESSAGES_DEBUG") == NULL)
    {
      g_log_set_handler ("GLib-GIO", G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO, discard_log, NULL);
      g_log_set_handler ("libsoup", G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO, discard_log, NULL);
    }
}

/* --- waiting ------------------------------------------------------------------ */

gboolean
wait_for (Predicate predicate,
          gpointer  data)
{
  gint64 end = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;

  while (!predicate (data))
    {
      if (g_get_monotonic_time () > end)
        return FALSE;
      g_main_context_iteration (NULL, FALSE);
      g_usleep (200);
    }
  return TRUE;
}

gboolean
wait_for_two (GMainContext *client,
              Predicate     predicate,
              gpointer      data)
{
  gint64 end = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;

  while (!predicate (data))
    {
      if (g_get_monotonic_time () > end)
        return FALSE;
      g_main_context_push_thread_default (client);
      g_main_context_iteration (client, FALSE);
      g_main_context_pop_thread_default (client);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (200);
    }
  return TRUE;
}

/* --- metric predicates -------------------------------------------------------- */

gboolean
stream_is_open (gpointer data)
{
  return metric_u64 (data, "stream-open") == 1;
}

gboolean
fewer_than_64_streams (gpointer data)
{
  return metric_u64 (((Fixture *) data)->server, "peer-streams-open") < 64;
}

gboolean
one_stream_open (gpointer data)
{
  return metric_u64 (((Fixture *) data)->server, "peer-streams-open") == 1;
}

/* --- a raw authenticated stream --------------------------------------------------- */

static void
raw_message_cb (SoupWebsocketConnection *ws,
                gint                     type,
                GBytes                  *message,
                Raw                     *raw)
{
  g_ptr_array_add (raw->answers, g_bytes_ref (message));
}

static void
raw_closed_cb (SoupWebsocketConnection *ws,
               Raw                     *raw)
{
  raw->closed = TRUE;
}

void
raw_free (Raw *raw)
{
  g_signal_handlers_disconnect_by_data (raw->ws, raw);
  if (soup_websocket_connection_get_state (raw->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (raw->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  g_object_unref (raw->ws);
  g_free (raw->nonce);
  g_ptr_array_unref (raw->answers);
  g_free (raw);
}

static gboolean
result_set (gpointer data)
{
  return *(GAsyncResult **) data != NULL;
}

Raw *
raw_try_open_with (Fixture      *fx,
                   SoupSession  *session,
                   GMainContext *client,
                   guint        *status)
{
  g_autofree char *uri = g_strdup_printf ("ws://%s%s", fx->address, EXO_STREAM_PATH);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  const char *pairs[] = { "X-Exo-Node-Id", "test-client", NULL };
  g_autofree char *auth = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  Raw *raw = g_new0 (Raw, 1);

  soup_message_headers_replace (soup_message_get_request_headers (msg), "X-Exo-Node-Id", "test-client");
  auth = exo_cluster_key_sign_request (test_key, "GET", EXO_STREAM_PATH, pairs, NULL, 0,
                                       g_get_real_time (), &raw->nonce);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "X-Exo-Auth", auth);
  if (client == NULL)
    {
      soup_session_websocket_connect_async (session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL,
                                            exo_test_store_result, &result);
      g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    }
  else
    {
      g_main_context_push_thread_default (client);
      soup_session_websocket_connect_async (session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL,
                                            exo_test_store_result, &result);
      g_main_context_pop_thread_default (client);
      g_assert_true (wait_for_two (client, result_set, &result));
    }
  raw->ws = soup_session_websocket_connect_finish (session, result, &error);
  *status = soup_message_get_status (msg);
  if (raw->ws == NULL)
    {
      g_free (raw->nonce);
      g_free (raw);
      return NULL;
    }
  g_assert_true (exo_cluster_key_verify_response (test_key,
                                                  soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                                                "X-Exo-Auth"),
                                                  raw->nonce, 101, NULL, 0, &error));
  g_assert_no_error (error);
  raw->answers = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_signal_connect (raw->ws, "message", G_CALLBACK (raw_message_cb), raw);
  g_signal_connect (raw->ws, "closed", G_CALLBACK (raw_closed_cb), raw);
  return raw;
}

Raw *
raw_try_open (Fixture *fx,
              guint   *status)
{
  return raw_try_open_with (fx, fx->session, NULL, status);
}

Raw *
raw_open (Fixture *fx)
{
  guint status = 0;
  Raw *raw = raw_try_open (fx, &status);

  g_assert_nonnull (raw);
  g_assert_cmpuint (status, ==, 101);
  return raw;
}

gboolean
raw_closed (gpointer data)
{
  return ((Raw *) data)->closed;
}

gboolean
raw_answered (gpointer data)
{
  return ((Raw *) data)->answers->len > 0 || ((Raw *) data)->closed;
}

void
raw_send (Raw    *raw,
          GBytes *frame)
{
  soup_websocket_connection_send_message (raw->ws, SOUP_WEBSOCKET_DATA_BINARY, frame);
}

GBytes *
result_frame (ExoClusterKey *key,
              Raw           *raw,
              guint64        seq)
{
  const gint32 token = 42;

  return exo_stream_build_result (key, raw->nonce, EXO_STREAM_FROM_CLIENT, seq, "call-1",
                                  "req-raw", &token, 1, FALSE);
}
