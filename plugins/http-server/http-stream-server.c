/* http-stream-server.c: the server side of the peer stream — a WebSocket
 * on `GET /peer/v1/stream` over which a peer sends its tensor, result and
 * cancel calls as binary frames (http-stream-frame.c) and gets an answer
 * frame for each (docs/cluster-protocol.md "The peer stream").
 *
 * Owns:
 *  - the upgrade: the route (http-routes.c) runs after the request's
 *    signature was checked like every /peer/ request; it refuses with 404
 *    when the setting `peer-stream` is false, 503 at MAX_STREAMS streams,
 *    400 when the request is no WebSocket handshake, and else signs the
 *    101 answer bound to the request's nonce and leaves the status unset,
 *    so that libsoup's WebSocket handler on the same path (registered
 *    here, with an early handler and a handler that are the server's own
 *    dispatch) completes the handshake;
 *  - each stream (StreamConn): the key and nonce of its upgrade, the
 *    sequence numbers both ways, its calls in flight (at most
 *    MAX_CALLS_PER_STREAM; more are answered 503 busy).  A stream that
 *    closes leaves its calls running, answered nowhere (the peer re-sends
 *    them over HTTP, answered as duplicates); the server's cleanup
 *    cancels them;
 *  - the frames: read and checked at once in libsoup's "message" handler
 *    and the node called from there (no main-loop hop); a frame refused
 *    (bad MAC, sequence, version, type, malformed, too big, not binary)
 *    closes the stream with 1008 and a reason, is counted by reason and
 *    logged, at most once per 10 s per reason;
 *  - the watchdog: libsoup pings each stream every
 *    `peer-stream-keepalive-ms` (in whole seconds, at least 1 s) but
 *    libsoup 3.2 never gives up waiting for the pong; each stream notes when
 *    it last heard from its peer (a frame, a pong), and one timer per
 *    server, running while streams are open, closes those silent for
 *    SILENT_PINGS ping intervals (1008 "no answer to pings for N s"),
 *    counted (`peer-streams-timed-out`) and logged at most once per 10 s;
 *  - tensor calls register their call id in the server's seen calls
 *    (http-peer-rpc.c), the same table as POST /peer/v1/tensor, so a call
 *    re-sent over HTTP after the stream broke runs once; a failed call is
 *    forgotten so that its retry runs;
 *  - exo_http_peer_stream_allowed(): whether this process's peers open
 *    streams (no server here has `peer-stream: false`).
 *
 * Rules: everything runs in the server's GMainContext (libsoup's signals,
 * the node's callbacks, the watchdog); no locks.  Signal handlers of the
 * WebSocket ("pong") only note the time: the watchdog closes streams from
 * its own callback.  A StreamConn is owned by
 * self->peer_streams; it holds the WebSocket connection.  A StreamCall is
 * owned by its node call (the callback's user_data), holds the server, is
 * listed in self->stream_calls and points back at its stream without a
 * reference: the stream, when it closes, clears that pointer, so its end
 * is answered nowhere.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-server-private.h"
#include "http-request.h"

#include <string.h>

#define MAX_STREAMS           64
#define MAX_CALLS_PER_STREAM  64
#define LOG_INTERVAL_US       (10 * G_USEC_PER_SEC)
/* Ping intervals without a word from the peer before its stream is closed. */
#define SILENT_PINGS          3
/* What a frame holds beside a tensor's data, at most. */
#define FRAME_OVERHEAD        (64 * 1024)

typedef struct
{
  ExoHttpServer           *self;     /* the server closes its streams before it goes */
  SoupWebsocketConnection *ws;
  ExoClusterKey           *key;
  char                    *nonce;    /* of the upgrade */
  char                    *remote;
  guint64                  in_seq;   /* the last frame's number received */
  guint64                  out_seq;  /* the last one sent */
  guint                    n_calls;  /* node calls in flight for it */
  ExoHttpTensorParseCache  parsed;   /* its last tensor frame's shard and params */
  gint64                   heard_at; /* monotonic: its last frame or pong (or the upgrade) */
  guint                    ping_s;   /* libsoup's keepalive interval for it */
} StreamConn;

typedef struct
{
  ExoHttpServer *self;               /* strong */
  StreamConn    *conn;               /* NULL once the stream is gone */
  char          *call_id;            /* as sent ("" none) */
  char          *seen_id;            /* registered in seen_calls; NULL: none */
  GCancellable  *cancellable;
} StreamCall;

static void
stream_call_free (StreamCall *call)
{
  if (call->self->stream_calls != NULL)
    g_hash_table_remove (call->self->stream_calls, call);
  if (call->conn != NULL)
    call->conn->n_calls--;
  g_object_unref (call->self);
  g_free (call->call_id);
  g_free (call->seen_id);
  g_clear_object (&call->cancellable);
  g_free (call);
}

/* --- the setting, for the peers of this process ---------------------------- */

gboolean
exo_http_peer_stream_allowed (void)
{
  g_autoptr(GPtrArray) all = exo_registry_list (exo_registry_get_default ());

  for (guint i = 0; i < all->len; i++)
    {
      ExoResource *resource = g_ptr_array_index (all, i);

      if (EXO_IS_HTTP_SERVER (resource) && !EXO_HTTP_SERVER (resource)->peer_stream)
        return FALSE;
    }
  return TRUE;
}

/* --- answers --------------------------------------------------------------- */

static void
stream_send_answer (StreamConn *conn,
                    const char *call_id,
                    guint       status,
                    const char *message)
{
  g_autoptr(GBytes) frame = NULL;

  if (soup_websocket_connection_get_state (conn->ws) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  frame = exo_stream_build_answer (conn->key, conn->nonce, EXO_STREAM_FROM_SERVER,
                                   ++conn->out_seq, call_id, status, message);
  soup_websocket_connection_send_message (conn->ws, SOUP_WEBSOCKET_DATA_BINARY, frame);
}

/* The status POST /peer/v1/result or /cancel answers a failed synchronous
 * node call with (http_server_respond_node_error()). */
static guint
node_error_status (const GError *error)
{
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED)
         ? SOUP_STATUS_NOT_IMPLEMENTED : SOUP_STATUS_INTERNAL_SERVER_ERROR;
}

/* --- refusing a frame -------------------------------------------------------- */

static void
stream_detach (StreamConn *conn);

/* A warning line about a stream, at most one per LOG_INTERVAL_US for each
 * kind of event (@logged_at, @suppressed: that kind's); it says how many
 * were not logged since the last. */
static void
stream_log_limited (ExoHttpServer *self,
                    gint64        *logged_at,
                    guint64       *suppressed,
                    const char    *format,
                    ...) G_GNUC_PRINTF (4, 5);

static void
stream_log_limited (ExoHttpServer *self,
                    gint64        *logged_at,
                    guint64       *suppressed,
                    const char    *format,
                    ...)
{
  gint64 now = g_get_monotonic_time ();
  g_autofree char *text = NULL;
  g_autofree char *more = NULL;
  va_list args;

  if (*logged_at != 0 && now - *logged_at < LOG_INTERVAL_US)
    {
      (*suppressed)++;
      return;
    }
  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  if (*suppressed > 0)
    more = g_strdup_printf (" (%" G_GUINT64_FORMAT " more like it not logged in the last %d s)",
                            *suppressed, (int) (LOG_INTERVAL_US / G_USEC_PER_SEC));
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
                    "EXO_RESOURCE_ID", exo_resource_get_id (EXO_RESOURCE (self)),
                    "MESSAGE", "%s: %s%s", exo_resource_get_id (EXO_RESOURCE (self)), text,
                    more != NULL ? more : "");
  *logged_at = now;
  *suppressed = 0;
}

static void
stream_refuse (StreamConn       *conn,
               ExoStreamRefused  reason,
               const char       *why)
{
  ExoHttpServer *self = conn->self;
  g_autofree char *shown = exo_http_shown_text (why, 200);

  self->n_stream_refused[reason]++;
  stream_log_limited (self, &self->stream_logged_at[reason], &self->stream_suppressed[reason],
                      "refused a frame of the peer stream from %s, closed it: %s: %s",
                      conn->remote, exo_stream_refused_to_string (reason), shown);
  if (soup_websocket_connection_get_state (conn->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (conn->ws, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION,
                                     exo_stream_refused_to_string (reason));
  stream_detach (conn);
}

/* --- calls ----------------------------------------------------------------- */

static void
stream_tensor_done (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  StreamCall *call = user_data;
  g_autoptr(GError) error = NULL;
  StreamConn *conn = call->conn;

  if (!exo_node_role_process_tensor_finish (EXO_NODE_ROLE (source), result, &error))
    {
      /* failed here: its retry must run (as POST /peer/v1/tensor's) */
      http_server_call_forget (call->self, call->seen_id);
      if (conn != NULL)
        stream_send_answer (conn, call->call_id, exo_http_status_for_error (error), error->message);
    }
  else if (conn != NULL)
    stream_send_answer (conn, call->call_id, SOUP_STATUS_ACCEPTED, "");
  stream_call_free (call);
}

static void
stream_on_tensor (StreamConn     *conn,
                  ExoStreamFrame *frame)
{
  ExoHttpServer *self = conn->self;
  g_autoptr(ExoHttpTensorRequest) tensor = NULL;
  g_autoptr(ExoNodeRole) node = NULL;
  g_autoptr(GError) error = NULL;
  char *seen_id = NULL;
  StreamCall *call;

  tensor = exo_http_tensor_request_parse (frame->request_id, frame->shard, frame->dtype,
                                          frame->shape, frame->params, frame->data,
                                          frame->data_len, &conn->parsed, &error);
  if (tensor == NULL)
    {
      stream_send_answer (conn, frame->call_id, SOUP_STATUS_BAD_REQUEST, error->message);
      return;
    }
  node = http_server_lookup_node (self);
  if (node == NULL)
    {
      stream_send_answer (conn, frame->call_id, SOUP_STATUS_SERVICE_UNAVAILABLE, NODE_NOT_READY);
      return;
    }
  if (conn->n_calls >= MAX_CALLS_PER_STREAM)
    {
      g_autofree char *message = g_strdup_printf ("busy: %u calls in flight on this peer stream",
                                                  MAX_CALLS_PER_STREAM);

      stream_send_answer (conn, frame->call_id, SOUP_STATUS_SERVICE_UNAVAILABLE, message);
      return;
    }
  if (http_server_call_seen (self, frame->call_id, &seen_id))
    {
      stream_send_answer (conn, frame->call_id, SOUP_STATUS_ACCEPTED, "duplicate");
      return;
    }

  call = g_new0 (StreamCall, 1);
  call->self = g_object_ref (self);
  call->conn = conn;
  conn->n_calls++;
  g_hash_table_add (self->stream_calls, call);
  call->call_id = g_strdup (frame->call_id);
  call->seen_id = seen_id;
  call->cancellable = g_cancellable_new ();
  exo_node_role_process_tensor_async (node, tensor->shard, tensor->tensor, tensor->request_id,
                                      tensor->params, call->cancellable, stream_tensor_done, call);
}

static void
stream_on_sync_call (StreamConn     *conn,
                     ExoStreamFrame *frame)
{
  g_autoptr(ExoNodeRole) node = http_server_lookup_node (conn->self);
  g_autoptr(GError) error = NULL;
  gboolean ok;

  if (node == NULL)
    {
      stream_send_answer (conn, frame->call_id, SOUP_STATUS_SERVICE_UNAVAILABLE, NODE_NOT_READY);
      return;
    }
  if (frame->type == EXO_STREAM_RESULT)
    ok = exo_node_role_process_result (node, frame->request_id, frame->tokens, frame->n_tokens,
                                       frame->is_finished, &error);
  else
    ok = exo_node_role_cancel_request (node, frame->request_id, &error);
  if (ok)
    stream_send_answer (conn, frame->call_id, SOUP_STATUS_OK, "");
  else
    stream_send_answer (conn, frame->call_id, node_error_status (error), error->message);
}

/* --- the connection ---------------------------------------------------------- */

static void
stream_message_cb (SoupWebsocketConnection *ws,
                   gint                     type,
                   GBytes                  *message,
                   StreamConn              *conn)
{
  ExoStreamFrame frame;
  ExoStreamRefused reason;
  g_autoptr(GError) error = NULL;
  const guint8 *data;
  gsize len = 0;

  conn->heard_at = g_get_monotonic_time ();
  if (type != SOUP_WEBSOCKET_DATA_BINARY)
    {
      stream_refuse (conn, EXO_STREAM_REFUSED_PROTOCOL, "a text message");
      return;
    }
  data = g_bytes_get_data (message, &len);
  if (len > conn->self->max_body_bytes + FRAME_OVERHEAD)
    {
      stream_refuse (conn, EXO_STREAM_REFUSED_TOO_BIG, "the frame is larger than max-body-bytes");
      return;
    }
  if (!exo_stream_frame_read (conn->key, conn->nonce, EXO_STREAM_FROM_CLIENT, conn->in_seq + 1,
                              (1u << EXO_STREAM_TENSOR) | (1u << EXO_STREAM_RESULT) |
                              (1u << EXO_STREAM_CANCEL),
                              conn->self->max_body_bytes, data, len, &frame, &reason, &error))
    {
      stream_refuse (conn, reason, error->message);
      return;
    }
  conn->in_seq++;
  conn->self->n_stream_frames++;
  if (frame.type == EXO_STREAM_TENSOR)
    stream_on_tensor (conn, &frame);
  else
    stream_on_sync_call (conn, &frame);
  exo_stream_frame_clear (&frame);
}

static void
stream_error_cb (SoupWebsocketConnection *ws,
                 GError                  *error,
                 StreamConn              *conn)
{
  /* libsoup closes the connection itself after these */
  if (g_error_matches (error, SOUP_WEBSOCKET_ERROR, SOUP_WEBSOCKET_CLOSE_TOO_BIG))
    stream_refuse (conn, EXO_STREAM_REFUSED_TOO_BIG, error->message);
  else if (error->domain == SOUP_WEBSOCKET_ERROR)
    stream_refuse (conn, EXO_STREAM_REFUSED_PROTOCOL, error->message);
}

static void
stream_closed_cb (SoupWebsocketConnection *ws,
                  StreamConn              *conn)
{
  stream_detach (conn);
}

/* The answer to a ping: only noted (the watchdog acts on it). */
static void
stream_pong_cb (SoupWebsocketConnection *ws,
                GBytes                  *message,
                StreamConn              *conn)
{
  conn->heard_at = g_get_monotonic_time ();
}

static gboolean
unref_idle_cb (gpointer data)
{
  g_object_unref (data);
  return G_SOURCE_REMOVE;
}

/* Dropped from the main loop, not from inside one of its own signals. */
static void
ws_unref_later (SoupWebsocketConnection *ws)
{
  g_idle_add_full (G_PRIORITY_DEFAULT, unref_idle_cb, ws, NULL);
}

static void
stream_conn_free (StreamConn *conn)
{
  GHashTableIter iter;
  gpointer key;

  /* Its calls go on, answered nowhere: the peer re-sends them over HTTP
   * with their call ids, answered as duplicates, so that each runs once.
   * (The server's cleanup cancels them.) */
  g_hash_table_iter_init (&iter, conn->self->stream_calls);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (((StreamCall *) key)->conn == conn)
      ((StreamCall *) key)->conn = NULL;
  g_signal_handlers_disconnect_by_data (conn->ws, conn);
  if (soup_websocket_connection_get_state (conn->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (conn->ws, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, NULL);
  /* kept until its close handshake is done (libsoup bounds it in time) */
  if (soup_websocket_connection_get_state (conn->ws) != SOUP_WEBSOCKET_STATE_CLOSED)
    g_signal_connect (conn->ws, "closed", G_CALLBACK (ws_unref_later), NULL);
  else
    ws_unref_later (conn->ws);
  exo_cluster_key_unref (conn->key);
  g_free (conn->nonce);
  g_free (conn->remote);
  exo_http_tensor_parse_cache_clear (&conn->parsed);
  g_free (conn);
}

/* The stream is done (closed, or refused): forgotten, its calls cancelled. */
static void
stream_detach (StreamConn *conn)
{
  if (conn->self->peer_streams != NULL)
    g_hash_table_remove (conn->self->peer_streams, conn);
}

/* --- the watchdog ------------------------------------------------------------- */

/* libsoup's keepalive interval: the setting in whole seconds (rounded up). */
static guint
stream_ping_seconds (ExoHttpServer *self)
{
  return MAX (1, (self->peer_stream_keepalive_ms + 999) / 1000);
}

static gboolean stream_watchdog_cb (gpointer data);

/* Twice per ping interval, while streams are open. */
static void
stream_watchdog_arm (ExoHttpServer *self)
{
  if (self->stream_watchdog != NULL)
    return;
  self->stream_watchdog = g_timeout_source_new (stream_ping_seconds (self) * 1000 / 2);
  g_source_set_static_name (self->stream_watchdog, "exo peer stream watchdog");
  g_source_set_callback (self->stream_watchdog, stream_watchdog_cb, self, NULL);
  g_source_attach (self->stream_watchdog, exo_resource_get_context (EXO_RESOURCE (self)));
}

static void
stream_watchdog_stop (ExoHttpServer *self)
{
  if (self->stream_watchdog != NULL)
    g_source_destroy (self->stream_watchdog);
  g_clear_pointer (&self->stream_watchdog, g_source_unref);
}

/* The peer answered no ping for SILENT_PINGS intervals: hung (stopped, a
 * wedged main loop) with its socket open.  Its stream is closed and
 * forgotten like any stream that closes; its calls go on. */
static void
stream_time_out (StreamConn *conn,
                 gint64      silent_us)
{
  ExoHttpServer *self = conn->self;
  g_autofree char *reason = g_strdup_printf ("no answer to pings for %" G_GINT64_FORMAT " s",
                                             silent_us / G_USEC_PER_SEC);

  self->n_stream_timed_out++;
  stream_log_limited (self, &self->stream_timeout_logged_at, &self->stream_timeout_suppressed,
                      "closed the peer stream from %s: no answer to pings for %.1f s "
                      "(a ping every %u s)",
                      conn->remote, (double) silent_us / G_USEC_PER_SEC, conn->ping_s);
  /* no handler of ours runs inside the close */
  g_signal_handlers_disconnect_by_data (conn->ws, conn);
  if (soup_websocket_connection_get_state (conn->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (conn->ws, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, reason);
  stream_detach (conn);
}

static gboolean
stream_watchdog_cb (gpointer data)
{
  ExoHttpServer *self = data;
  gint64 now = g_get_monotonic_time ();
  g_autoptr(GPtrArray) silent = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  /* one-shot: armed again below with the setting of now */
  g_clear_pointer (&self->stream_watchdog, g_source_unref);
  if (self->peer_streams == NULL)
    return G_SOURCE_REMOVE;
  g_hash_table_iter_init (&iter, self->peer_streams);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      StreamConn *conn = key;

      if (now - conn->heard_at > (gint64) SILENT_PINGS * conn->ping_s * G_USEC_PER_SEC)
        g_ptr_array_add (silent, conn);
    }
  for (guint i = 0; i < silent->len; i++)
    {
      StreamConn *conn = g_ptr_array_index (silent, i);

      stream_time_out (conn, now - conn->heard_at);
    }
  if (g_hash_table_size (self->peer_streams) > 0)
    stream_watchdog_arm (self);
  return G_SOURCE_REMOVE;
}

/* --- the upgrade --------------------------------------------------------------- */

static void
stream_upgraded_cb (SoupServer              *server,
                    SoupServerMessage       *msg,
                    const char              *path,
                    SoupWebsocketConnection *ws,
                    gpointer                 user_data)
{
  ExoHttpServer *self = user_data;
  ExoClusterKey *key = NULL;
  const char *nonce = NULL;
  const char *host = soup_server_message_get_remote_host (msg);
  StreamConn *conn;

  if (!exo_http_auth_get_verified (msg, &key, &nonce) || self->peer_streams == NULL ||
      g_hash_table_size (self->peer_streams) >= MAX_STREAMS)
    {
      /* only the route signs a 101: never here without it; the limit
       * raced by upgrades in flight together */
      soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "too many peer streams");
      return;
    }
  conn = g_new0 (StreamConn, 1);
  conn->self = self;
  conn->ws = g_object_ref (ws);
  conn->key = exo_cluster_key_ref (key);
  conn->nonce = g_strdup (nonce);
  conn->remote = g_strdup (host != NULL ? host : "?");
  conn->heard_at = g_get_monotonic_time ();
  conn->ping_s = stream_ping_seconds (self);
  /* a bigger message is refused by libsoup before it is read ("error") */
  soup_websocket_connection_set_max_incoming_payload_size (ws, self->max_body_bytes + FRAME_OVERHEAD);
  /* a ping now and then: a peer gone without a word (no FIN) is noticed
   * when the write fails; one that hangs with its socket open, by the
   * watchdog (no pong) */
  soup_websocket_connection_set_keepalive_interval (ws, conn->ping_s);
  g_signal_connect (ws, "message", G_CALLBACK (stream_message_cb), conn);
  g_signal_connect (ws, "error", G_CALLBACK (stream_error_cb), conn);
  g_signal_connect (ws, "closed", G_CALLBACK (stream_closed_cb), conn);
  g_signal_connect (ws, "pong", G_CALLBACK (stream_pong_cb), conn);
  g_hash_table_add (self->peer_streams, conn);
  self->n_stream_opens++;
  stream_watchdog_arm (self);
}

void
http_server_handle_peer_stream (ExoHttpServer     *self,
                                SoupServerMessage *msg,
                                const guint8      *body,
                                gsize              body_len)
{
  g_autoptr(GError) error = NULL;

  if (!self->peer_stream)
    {
      http_server_respond_error (msg, SOUP_STATUS_NOT_FOUND,
                                 "the peer stream is off on this node (peer-stream: false)");
      return;
    }
  if (self->peer_streams == NULL || g_hash_table_size (self->peer_streams) >= MAX_STREAMS)
    {
      self->n_stream_rejected++;
      http_server_respond_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                                 "too many peer streams (%u); use the HTTP calls", MAX_STREAMS);
      return;
    }
  if (!soup_websocket_server_check_handshake (msg, NULL, NULL, NULL, &error))
    {
      http_server_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "not a WebSocket upgrade: %s",
                                 error->message);
      return;
    }
  /* the status stays unset: libsoup's WebSocket handler answers 101,
   * carrying this signature, and hands us the connection */
  exo_http_auth_sign_response (msg, SOUP_STATUS_SWITCHING_PROTOCOLS, "", 0);
}

void
http_server_streams_listen (ExoHttpServer *self)
{
  if (self->peer_streams == NULL)
    self->peer_streams = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) stream_conn_free, NULL);
  if (self->stream_calls == NULL)
    self->stream_calls = g_hash_table_new (NULL, NULL);
  /* A handler of its own path hides the server's defaults from libsoup:
   * the same dispatch is registered for it, then the WebSocket one. */
  soup_server_add_early_handler (self->server, EXO_STREAM_PATH, http_server_early_handler, self, NULL);
  soup_server_add_handler (self->server, EXO_STREAM_PATH, http_server_handler, self, NULL);
  soup_server_add_websocket_handler (self->server, EXO_STREAM_PATH, NULL, NULL,
                                     stream_upgraded_cb, self, NULL);
  /* frames are small and many: no compression */
  soup_server_remove_websocket_extension (self->server, SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE);
}

void
http_server_streams_drop (ExoHttpServer *self)
{
  if (self->peer_streams != NULL)
    g_hash_table_remove_all (self->peer_streams);
}

void
http_server_streams_close (ExoHttpServer *self)
{
  GHashTableIter iter;
  gpointer key;

  stream_watchdog_stop (self);
  g_clear_pointer (&self->peer_streams, g_hash_table_unref);
  /* the node stops working for them; each is freed when its call ends */
  if (self->stream_calls != NULL)
    {
      g_hash_table_iter_init (&iter, self->stream_calls);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        g_cancellable_cancel (((StreamCall *) key)->cancellable);
    }
}

/* --- metrics ------------------------------------------------------------------- */

void
http_server_streams_collect_metrics (ExoHttpServer *self,
                                     GVariantDict  *metrics)
{
  g_variant_dict_insert (metrics, "peer-streams-open", "u",
                         self->peer_streams != NULL ? g_hash_table_size (self->peer_streams) : 0);
  g_variant_dict_insert (metrics, "peer-stream-opens", "t", self->n_stream_opens);
  g_variant_dict_insert (metrics, "peer-stream-frames", "t", self->n_stream_frames);
  g_variant_dict_insert (metrics, "peer-streams-rejected", "t", self->n_stream_rejected);
  g_variant_dict_insert (metrics, "peer-streams-timed-out", "t", self->n_stream_timed_out);
  for (guint i = 0; i < EXO_STREAM_N_REFUSED; i++)
    {
      g_autofree char *key = g_strdup_printf ("peer-stream-refused-%s", exo_stream_refused_to_string (i));

      g_variant_dict_insert (metrics, key, "t", self->n_stream_refused[i]);
    }
}

#define REFUSED(reason)                                                                   \
  { .key = "peer-stream-refused-" reason, .kind = EXO_METRIC_COUNTER,                     \
    .name = "exo_http_peer_stream_refused_total{reason=\"" reason "\"}",                    \
    .help = "Peer streams closed for a frame refused, by reason (the log says which)." }
static const ExoMetricEntry stream_metric_entries[] = {
  { .key = "peer-streams-open", .kind = EXO_METRIC_GAUGE, .name = "exo_http_peer_streams_open",
    .help = "Peer streams open now." },
  { .key = "peer-stream-opens", .kind = EXO_METRIC_COUNTER, .name = "exo_http_peer_stream_opens_total",
    .help = "Peer streams opened (upgrades accepted)." },
  { .key = "peer-stream-frames", .kind = EXO_METRIC_COUNTER, .name = "exo_http_peer_stream_frames_total",
    .help = "Call frames received on peer streams." },
  { .key = "peer-streams-rejected", .kind = EXO_METRIC_COUNTER,
    .name = "exo_http_peer_streams_rejected_total",
    .help = "Upgrades to a peer stream refused at the limit of streams." },
  { .key = "peer-streams-timed-out", .kind = EXO_METRIC_COUNTER,
    .name = "exo_http_peer_streams_timed_out_total",
    .help = "Peer streams closed after no answer to 3 pings in a row (a hung peer)." },
  REFUSED ("bad-mac"),
  REFUSED ("sequence"),
  REFUSED ("version"),
  REFUSED ("type"),
  REFUSED ("malformed"),
  REFUSED ("too-big"),
  REFUSED ("protocol"),
};
#undef REFUSED

void
http_server_streams_add_metric_entries (ExoResourceClass *klass)
{
  exo_resource_class_add_metric_entries (klass, stream_metric_entries,
                                         G_N_ELEMENTS (stream_metric_entries));
}
