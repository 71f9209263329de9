/* http-peer-stream.c: the peer stream of ExoHttpPeer — one WebSocket to
 * the peer's `GET /peer/v1/stream` that carries the tensor, result and
 * cancel calls as binary frames while it is open (docs/cluster-protocol.md
 * "The peer stream"); the HTTP calls are the fallback.
 *
 * Owns:
 *  - the upgrade, once the peer is connected (http-peer.c) and again after
 *    the stream dropped, with a backoff (STREAM_BACKOFF_MIN_MS doubling to
 *    STREAM_BACKOFF_MAX_MS; a peer that answers 404, its peer-stream off,
 *    is asked again after the longest).  The request is signed like every
 *    peer request, and the 101 answer must carry the peer's signature
 *    bound to our nonce, else the stream is closed unused;
 *  - the calls awaiting their answer frame (StreamPending, at most
 *    MAX_PENDING; beyond, the caller uses HTTP): completed by the answer,
 *    by their cancellable (the runner's per-attempt time limit), or, when
 *    the stream closes, with G_IO_ERROR_CONNECTION_CLOSED, which the caller
 *    (http-peer-calls.c) takes as "re-send over HTTP with the same call id";
 *  - the answer frames: checked (MAC, sequence, type, fields) at once in
 *    libsoup's "message" handler; a bad one closes the stream, counted by
 *    reason and logged at most every 10 s;
 *  - the stream's metrics.
 *
 * Rules: everything runs in the peer's main context; no locks.  The
 * stream's fields live in ExoHttpPeer (http-peer-private.h).  An upgrade
 * in flight holds the peer; a stopped one finds its cancellable replaced
 * and drops what it got.  Completing a call's task may run its callback at
 * once, which may call again: the awaited calls are taken out of the table
 * before any is completed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-peer-private.h"

#include <string.h>

#define MAX_PENDING              64
#define STREAM_BACKOFF_MIN_MS    100
#define STREAM_BACKOFF_MAX_MS    30000
#define MAX_ANSWER_BYTES         (64 * 1024)
#define LOG_INTERVAL_US          (10 * G_USEC_PER_SEC)

typedef struct
{
  GTask   *task;                 /* owned; its source object is the peer */
  char    *call_id;
  char    *path;
  GSource *cancel_source;
  GSource *timer;                /* the call's own limit; NULL: the caller's */
  gint64   started;
} StreamPending;

typedef struct
{
  ExoHttpPeer   *self;           /* strong */
  SoupMessage   *msg;
  char          *nonce;
  ExoClusterKey *key;
  GCancellable  *cancellable;    /* self->stream_opening while it is ours */
} StreamOpening;

static gint64 last_logged;       /* of any peer's stream refusal; main thread */

static void stream_lost (ExoHttpPeer *self);

static void
opening_free (StreamOpening *op)
{
  g_object_unref (op->self);
  g_object_unref (op->msg);
  g_free (op->nonce);
  exo_cluster_key_unref (op->key);
  g_object_unref (op->cancellable);
  g_free (op);
}

static void
log_stream (ExoHttpPeer *self,
            const char  *format,
            ...) G_GNUC_PRINTF (2, 3);

static void
log_stream (ExoHttpPeer *self,
            const char  *format,
            ...)
{
  g_autofree char *text = NULL;
  gint64 now = g_get_monotonic_time ();
  va_list args;

  if (last_logged != 0 && now - last_logged < LOG_INTERVAL_US)
    return;
  last_logged = now;
  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
                    "EXO_RESOURCE_ID", exo_resource_get_id (EXO_RESOURCE (self)),
                    "MESSAGE", "%s: refused the peer stream to %s at %s: %s",
                    exo_resource_get_id (EXO_RESOURCE (self)), peer_label_id (self),
                    peer_address (self), text);
}

/* --- calls awaiting an answer ------------------------------------------------ */

static void
pending_free (StreamPending *pending)
{
  if (pending->cancel_source != NULL)
    {
      g_source_destroy (pending->cancel_source);
      g_source_unref (pending->cancel_source);
    }
  if (pending->timer != NULL)
    {
      g_source_destroy (pending->timer);
      g_source_unref (pending->timer);
    }
  g_clear_object (&pending->task);
  g_free (pending->call_id);
  g_free (pending->path);
  g_free (pending);
}

/* Completes @pending (out of the table already) and frees it. */
static void
pending_complete (StreamPending *pending,
                  GBytes        *body,      /* taken; NULL: @error */
                  GError        *error)     /* taken */
{
  GTask *task = g_steal_pointer (&pending->task);

  pending_free (pending);
  if (body != NULL)
    g_task_return_pointer (task, body, (GDestroyNotify) g_bytes_unref);
  else
    g_task_return_error (task, error);
  g_object_unref (task);
}

static gboolean
pending_cancelled_cb (GCancellable *cancellable,
                      gpointer      data)
{
  StreamPending *pending = data;
  ExoHttpPeer *self = g_task_get_source_object (pending->task);

  g_clear_pointer (&pending->cancel_source, g_source_unref);
  g_hash_table_remove (self->stream_calls, pending->call_id);
  pending_complete (pending, NULL, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                "peer %s at %s: %s: cancelled",
                                                peer_label_id (self), peer_address (self),
                                                pending->path));
  return G_SOURCE_REMOVE;
}

static gboolean
pending_timed_out_cb (gpointer data)
{
  StreamPending *pending = data;
  ExoHttpPeer *self = g_task_get_source_object (pending->task);
  gint64 waited_ms = (g_get_monotonic_time () - pending->started) / 1000;

  g_clear_pointer (&pending->timer, g_source_unref);
  g_hash_table_remove (self->stream_calls, pending->call_id);
  pending_complete (pending, NULL, g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                                "peer %s at %s: %s: no answer on the peer "
                                                "stream within %" G_GINT64_FORMAT " ms",
                                                peer_label_id (self), peer_address (self),
                                                pending->path, waited_ms));
  return G_SOURCE_REMOVE;
}

/* Every awaited call ends as dropped (its caller re-sends it over HTTP). */
static void
pending_drop_all (ExoHttpPeer *self)
{
  GList *all;

  if (self->stream_calls == NULL)
    return;
  all = g_hash_table_get_values (self->stream_calls);
  g_hash_table_steal_all (self->stream_calls);
  for (GList *l = all; l != NULL; l = l->next)
    {
      StreamPending *pending = l->data;

      pending_complete (pending, NULL, g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                                    "peer %s at %s: %s: the peer stream closed",
                                                    peer_label_id (self), peer_address (self),
                                                    pending->path));
    }
  g_list_free (all);
}

gboolean
http_peer_stream_can_call (ExoHttpPeer *self)
{
  return self->stream != NULL &&
         soup_websocket_connection_get_state (self->stream) == SOUP_WEBSOCKET_STATE_OPEN &&
         g_hash_table_size (self->stream_calls) < MAX_PENDING;
}

void
http_peer_stream_call_async (ExoHttpPeer         *self,
                             HttpPeerFrameFunc    build,
                             gpointer             build_data,
                             const char          *call_id,
                             const char          *path,
                             guint                timeout_ms,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GBytes) frame = NULL;
  StreamPending *pending;

  g_task_set_source_tag (task, http_peer_stream_call_async);
  if (!http_peer_stream_can_call (self) || g_hash_table_contains (self->stream_calls, call_id))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                               "peer %s at %s: %s: the peer stream is not open",
                               peer_label_id (self), peer_address (self), path);
      return;
    }
  frame = build (self->key, self->stream_nonce, ++self->stream_out_seq, call_id, build_data);

  pending = g_new0 (StreamPending, 1);
  pending->task = g_steal_pointer (&task);
  pending->call_id = g_strdup (call_id);
  pending->path = g_strdup (path);
  pending->started = g_get_monotonic_time ();
  if (cancellable != NULL)
    {
      pending->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (pending->cancel_source, G_SOURCE_FUNC (pending_cancelled_cb),
                             pending, NULL);
      g_source_set_static_name (pending->cancel_source, "[exo-http] peer stream call cancelled");
      g_source_attach (pending->cancel_source, g_task_get_context (pending->task));
    }
  if (timeout_ms > 0)
    {
      pending->timer = g_timeout_source_new (timeout_ms);
      g_source_set_callback (pending->timer, pending_timed_out_cb, pending, NULL);
      g_source_set_static_name (pending->timer, "[exo-http] peer stream call timeout");
      g_source_attach (pending->timer, g_task_get_context (pending->task));
    }
  g_hash_table_insert (self->stream_calls, pending->call_id, pending);
  self->stream_call_count++;
  soup_websocket_connection_send_message (self->stream, SOUP_WEBSOCKET_DATA_BINARY, frame);
}

GBytes *
http_peer_stream_call_finish (ExoHttpPeer   *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* --- frames received ------------------------------------------------------------ */

static void
stream_on_answer (ExoHttpPeer    *self,
                  ExoStreamFrame *frame)
{
  StreamPending *pending = NULL;
  g_autofree char *who = NULL;
  g_autoptr(GBytes) body = NULL;
  char *json;

  /* none: the call was given up (cancelled, timed out) before its answer */
  if (!g_hash_table_steal_extended (self->stream_calls, frame->call_id, NULL, (gpointer *) &pending))
    return;
  http_peer_record_rtt (self, (guint64) (g_get_monotonic_time () - pending->started));
  if (SOUP_STATUS_IS_SUCCESSFUL (frame->status))
    {
      self->stream_backoff_ms = 0;
      json = g_str_equal (frame->message, "duplicate") ? g_strdup ("{\"duplicate\":true}")
                                                       : g_strdup ("{}");
      pending_complete (pending, g_bytes_new_take (json, strlen (json)), NULL);
      return;
    }
  /* the same error as the HTTP answer's */
  who = g_strdup_printf ("%s at %s", peer_label_id (self), peer_address (self));
  json = exo_http_error_body (pending->path, frame->status, frame->message, NULL, NULL);
  body = g_bytes_new_take (json, strlen (json));
  pending_complete (pending, NULL, exo_http_error_for_status (frame->status, who, pending->path, body));
}

static void
stream_refuse (ExoHttpPeer      *self,
               ExoStreamRefused  reason,
               const char       *why)
{
  self->stream_refused[reason]++;
  log_stream (self, "a frame: %s: %s", exo_stream_refused_to_string (reason), why);
  stream_lost (self);
}

static void
stream_message_cb (SoupWebsocketConnection *ws,
                   gint                     type,
                   GBytes                  *message,
                   ExoHttpPeer             *self)
{
  ExoStreamFrame frame;
  ExoStreamRefused reason;
  g_autoptr(GError) error = NULL;
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (message, &len);

  if (type != SOUP_WEBSOCKET_DATA_BINARY)
    {
      stream_refuse (self, EXO_STREAM_REFUSED_PROTOCOL, "a text message");
      return;
    }
  if (!exo_stream_frame_read (self->key, self->stream_nonce, EXO_STREAM_FROM_SERVER,
                              self->stream_in_seq + 1, 1u << EXO_STREAM_ANSWER, 0,
                              data, len, &frame, &reason, &error))
    {
      stream_refuse (self, reason, error->message);
      return;
    }
  self->stream_in_seq++;
  stream_on_answer (self, &frame);
  exo_stream_frame_clear (&frame);
}

static void
stream_error_cb (SoupWebsocketConnection *ws,
                 GError                  *error,
                 ExoHttpPeer             *self)
{
  if (g_error_matches (error, SOUP_WEBSOCKET_ERROR, SOUP_WEBSOCKET_CLOSE_TOO_BIG))
    stream_refuse (self, EXO_STREAM_REFUSED_TOO_BIG, error->message);
  else if (error->domain == SOUP_WEBSOCKET_ERROR)
    stream_refuse (self, EXO_STREAM_REFUSED_PROTOCOL, error->message);
}

static void
stream_closed_cb (SoupWebsocketConnection *ws,
                  ExoHttpPeer             *self)
{
  stream_lost (self);
}

/* --- opening, losing, reopening --------------------------------------------------- */

static gboolean
unref_idle_cb (gpointer data)
{
  g_object_unref (data);
  return G_SOURCE_REMOVE;
}

/* Closes the stream (if any) and forgets it: never from inside its own
 * signal's emission is it freed. */
static void
stream_drop (ExoHttpPeer *self)
{
  SoupWebsocketConnection *ws = g_steal_pointer (&self->stream);

  if (ws == NULL)
    return;
  g_signal_handlers_disconnect_by_data (ws, self);
  if (soup_websocket_connection_get_state (ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  g_idle_add_full (G_PRIORITY_DEFAULT, unref_idle_cb, ws, NULL);
  g_clear_pointer (&self->stream_nonce, g_free);
}

static gboolean
stream_retry_cb (gpointer data)
{
  ExoHttpPeer *self = data;

  g_clear_pointer (&self->stream_retry, g_source_unref);
  http_peer_stream_start (self);
  return G_SOURCE_REMOVE;
}

/* The next upgrade after the backoff, while the peer is connected. */
static void
stream_schedule_retry (ExoHttpPeer *self,
                       guint        at_least_ms)
{
  if (self->session == NULL || self->stream_retry != NULL)
    return;
  self->stream_backoff_ms = self->stream_backoff_ms == 0 ? STREAM_BACKOFF_MIN_MS
                            : MIN (self->stream_backoff_ms * 2, STREAM_BACKOFF_MAX_MS);
  self->stream_backoff_ms = MAX (self->stream_backoff_ms, at_least_ms);
  self->stream_retry = g_timeout_source_new (self->stream_backoff_ms);
  g_source_set_callback (self->stream_retry, stream_retry_cb, self, NULL);
  g_source_set_static_name (self->stream_retry, "[exo-http] peer stream retry");
  g_source_attach (self->stream_retry, exo_resource_get_context (EXO_RESOURCE (self)));
}

static void
stream_lost (ExoHttpPeer *self)
{
  stream_drop (self);
  pending_drop_all (self);
  stream_schedule_retry (self, 0);
}

static void
stream_opened_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  StreamOpening *op = user_data;
  ExoHttpPeer *self = op->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupWebsocketConnection) ws = soup_session_websocket_connect_finish (SOUP_SESSION (source),
                                                                                  result, &error);

  if (self->stream_opening != op->cancellable)
    {
      /* stopped meanwhile (disconnect): not ours any more */
      if (ws != NULL)
        soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
      opening_free (op);
      return;
    }
  g_clear_object (&self->stream_opening);
  if (ws == NULL)
    {
      guint status = soup_message_get_status (op->msg);

      self->stream_handshake_failures++;
      /* off on the peer (404): ask again rarely */
      stream_schedule_retry (self, status == SOUP_STATUS_NOT_FOUND ? STREAM_BACKOFF_MAX_MS : 0);
      opening_free (op);
      return;
    }
  /* only a holder of the key may get our calls */
  if (!exo_http_auth_verify_answer (op->key, op->msg, op->nonce, NULL, &error))
    {
      self->stream_handshake_failures++;
      log_stream (self, "the upgrade's answer is not signed with this cluster's key: %s",
                  error->message);
      soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "unsigned upgrade");
      stream_schedule_retry (self, STREAM_BACKOFF_MAX_MS);
      opening_free (op);
      return;
    }

  self->stream = g_steal_pointer (&ws);
  self->stream_nonce = g_steal_pointer (&op->nonce);
  self->stream_in_seq = 0;
  self->stream_out_seq = 0;
  self->stream_opens++;
  soup_websocket_connection_set_max_incoming_payload_size (self->stream, MAX_ANSWER_BYTES);
  soup_websocket_connection_set_keepalive_interval (self->stream, 0);
  g_signal_connect (self->stream, "message", G_CALLBACK (stream_message_cb), self);
  g_signal_connect (self->stream, "error", G_CALLBACK (stream_error_cb), self);
  g_signal_connect (self->stream, "closed", G_CALLBACK (stream_closed_cb), self);
  opening_free (op);
}

void
http_peer_stream_start (ExoHttpPeer *self)
{
  StreamOpening *op;
  SoupMessage *msg;

  if (self->session == NULL || self->key == NULL || self->stream != NULL ||
      self->stream_opening != NULL || self->stream_retry != NULL)
    return;
  if (!exo_http_peer_stream_allowed ())
    return;
  msg = http_peer_new_message (self, "GET", EXO_STREAM_PATH, NULL);
  if (msg == NULL)
    return;
  if (self->stream_calls == NULL)
    self->stream_calls = g_hash_table_new (g_str_hash, g_str_equal);

  op = g_new0 (StreamOpening, 1);
  op->self = g_object_ref (self);
  op->msg = msg;
  op->key = exo_cluster_key_ref (self->key);
  op->nonce = exo_http_auth_sign_request (self->key, msg, NULL);
  op->cancellable = g_cancellable_new ();
  self->stream_opening = g_object_ref (op->cancellable);
  soup_message_add_flags (msg, SOUP_MESSAGE_NO_REDIRECT);
  soup_session_websocket_connect_async (self->session, msg, NULL, NULL, G_PRIORITY_DEFAULT,
                                        op->cancellable, stream_opened_cb, op);
}

void
http_peer_stream_stop (ExoHttpPeer *self)
{
  if (self->stream_opening != NULL)
    {
      g_cancellable_cancel (self->stream_opening);
      g_clear_object (&self->stream_opening);
    }
  if (self->stream_retry != NULL)
    {
      g_source_destroy (self->stream_retry);
      g_clear_pointer (&self->stream_retry, g_source_unref);
    }
  stream_drop (self);
  pending_drop_all (self);
  self->stream_backoff_ms = 0;
}

/* --- metrics -------------------------------------------------------------------- */

void
http_peer_stream_collect_metrics (ExoHttpPeer  *self,
                                  GVariantDict *metrics)
{
  g_variant_dict_insert (metrics, "stream-open", "b", self->stream != NULL);
  g_variant_dict_insert (metrics, "stream-opens", "t", self->stream_opens);
  g_variant_dict_insert (metrics, "stream-open-failures", "t", self->stream_handshake_failures);
  g_variant_dict_insert (metrics, "stream-calls", "t", self->stream_call_count);
  g_variant_dict_insert (metrics, "stream-fallbacks", "t", self->stream_fallbacks);
  g_variant_dict_insert (metrics, "stream-direct-calls", "t", self->stream_direct_calls);
  for (guint i = 0; i < EXO_STREAM_N_REFUSED; i++)
    {
      g_autofree char *key = g_strdup_printf ("stream-refused-%s", exo_stream_refused_to_string (i));

      g_variant_dict_insert (metrics, key, "t", self->stream_refused[i]);
    }
}

#define REFUSED(reason)                                                                 \
  { .key = "stream-refused-" reason, .kind = EXO_METRIC_COUNTER,                        \
    .name = "exo_peer_stream_refused_total{reason=\"" reason "\"}",                       \
    .help = "Peer streams closed for an answer frame refused, by reason." }
static const ExoMetricEntry stream_metric_entries[] = {
  { .key = "stream-open", .kind = EXO_METRIC_GAUGE, .name = "exo_peer_stream_open",
    .help = "1 while the peer stream to the peer is open." },
  { .key = "stream-opens", .kind = EXO_METRIC_COUNTER, .name = "exo_peer_stream_opens_total",
    .help = "Peer streams opened to the peer." },
  { .key = "stream-open-failures", .kind = EXO_METRIC_COUNTER,
    .name = "exo_peer_stream_open_failures_total",
    .help = "Upgrades to a peer stream that failed or were not signed with the cluster key." },
  { .key = "stream-calls", .kind = EXO_METRIC_COUNTER, .name = "exo_peer_stream_calls_total",
    .help = "Call attempts sent over the peer stream." },
  { .key = "stream-fallbacks", .kind = EXO_METRIC_COUNTER, .name = "exo_peer_stream_fallbacks_total",
    .help = "Tensor, result and cancel attempts sent over HTTP: no stream open, or it closed with the call in flight." },
  { .key = "stream-direct-calls", .kind = EXO_METRIC_COUNTER,
    .name = "exo_peer_stream_direct_calls_total",
    .help = "Calls sent over the open peer stream at once, without the retrying runner (which takes over a call that fails there)." },
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
http_peer_stream_add_metric_entries (ExoResourceClass *klass)
{
  exo_resource_class_add_metric_entries (klass, stream_metric_entries,
                                         G_N_ELEMENTS (stream_metric_entries));
}
