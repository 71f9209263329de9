/* http-peer-exchange.c: one HTTP exchange of ExoHttpPeer with its peer.
 *
 * Owns the Exchange: a message signed with the cluster key just before it
 * is sent (each retry gets a fresh time and nonce), sent without
 * following redirects, its answer read in chunks up to
 * EXO_HTTP_MAX_RESPONSE_BYTES, a 2xx answer accepted only with a valid
 * signature bound to our nonce, a non-2xx answer turned into the error for
 * its status, a transport error mapped to the G_IO_ERROR codes
 * exo_error_is_connection_error() knows, and the optional time limit.
 * Also http_peer_new_message(), the request every call and probe starts
 * from.  http-peer-private.h lists the other files.
 *
 * Rules: everything runs in the peer's main context; no locks.  An
 * exchange owns references to the session, the message and the key, and
 * its own cancellable, which the caller's cancellable and the timer
 * cancel; the exchange's GTask holds the peer and completes exactly once.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-peer-private.h"

#include <string.h>

/* --- one HTTP exchange --------------------------------------------------- */

typedef struct
{
  SoupSession  *session;
  SoupMessage  *msg;
  char         *path;
  gint64        started;
  GCancellable *cancellable;     /* ours: cancelled by the caller's or the timer */
  GCancellable *outer;
  gulong        outer_id;
  GSource      *timer;
  guint         timeout_ms;
  gboolean      timed_out;
  GInputStream *stream;          /* the answer's body */
  GByteArray   *body;
  char         *nonce;           /* of our signature: the answer must carry it */
  ExoClusterKey *key;
} Exchange;

static void
exchange_free (Exchange *ex)
{
  if (ex->timer != NULL)
    {
      g_source_destroy (ex->timer);
      g_source_unref (ex->timer);
    }
  if (ex->outer_id != 0)
    g_cancellable_disconnect (ex->outer, ex->outer_id);
  g_clear_object (&ex->outer);
  g_clear_object (&ex->cancellable);
  g_clear_object (&ex->stream);
  g_clear_pointer (&ex->body, g_byte_array_unref);
  g_clear_object (&ex->msg);
  g_clear_object (&ex->session);
  g_free (ex->path);
  g_free (ex->nonce);
  g_clear_pointer (&ex->key, exo_cluster_key_unref);
  g_free (ex);
}

static void
exchange_outer_cancelled (GCancellable *outer,
                          GCancellable *inner)
{
  g_cancellable_cancel (inner);
}

static gboolean
exchange_timeout_cb (gpointer data)
{
  Exchange *ex = data;

  g_clear_pointer (&ex->timer, g_source_unref);
  ex->timed_out = TRUE;
  g_cancellable_cancel (ex->cancellable);
  return G_SOURCE_REMOVE;
}

/* The transport's error in the terms of exo_error_is_connection_error(). */
static GError *
map_transport_error (ExoHttpPeer  *self,
                     const char   *path,
                     const GError *error)
{
  gint code = G_IO_ERROR_FAILED;

  if (error->domain == G_IO_ERROR)
    {
      switch (error->code)
        {
        case G_IO_ERROR_BROKEN_PIPE:
        case G_IO_ERROR_PARTIAL_INPUT:
          code = G_IO_ERROR_CONNECTION_CLOSED;
          break;
        default:
          code = error->code;
          break;
        }
    }
  else if (error->domain == G_RESOLVER_ERROR)
    code = G_IO_ERROR_HOST_NOT_FOUND;
  else if (error->domain == SOUP_SESSION_ERROR)
    code = G_IO_ERROR_INVALID_DATA;

  return g_error_new (G_IO_ERROR, code, "peer %s at %s: %s: %s",
                      peer_label_id (self), peer_address (self), path, error->message);
}

/* Completes the exchange's task with @error (a transport error). */
static void
exchange_fail (GTask        *task,
               const GError *error)
{
  ExoHttpPeer *self = g_task_get_source_object (task);
  Exchange *ex = g_task_get_task_data (task);

  if (ex->timed_out)
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                             "peer %s at %s: %s: no answer within %u ms",
                             peer_label_id (self), peer_address (self), ex->path, ex->timeout_ms);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_task_return_error (task, g_error_copy (error));
  else
    g_task_return_error (task, map_transport_error (self, ex->path, error));
}

static void exchange_read_more (GTask *task);

static void
exchange_complete (GTask *task)
{
  ExoHttpPeer *self = g_task_get_source_object (task);
  Exchange *ex = g_task_get_task_data (task);
  g_autoptr(GBytes) body = g_byte_array_free_to_bytes (g_steal_pointer (&ex->body));
  g_autoptr(GError) error = NULL;
  guint status = soup_message_get_status (ex->msg);

  http_peer_record_rtt (self, (guint64) (g_get_monotonic_time () - ex->started));
  if (!SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      g_autofree char *who = g_strdup_printf ("%s at %s", peer_label_id (self), peer_address (self));
      g_task_return_error (task, exo_http_error_for_status (status, who, ex->path, body));
      return;
    }
  /* Data we act on comes from a holder of the key, for this request. */
  if (!exo_http_auth_verify_answer (ex->key, ex->msg, ex->nonce, body, &error))
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                               "peer %s at %s: %s: the answer is not signed with this "
                               "cluster's key: %s", peer_label_id (self), peer_address (self),
                               ex->path, error->message);
      return;
    }
  g_task_return_pointer (task, g_steal_pointer (&body), (GDestroyNotify) g_bytes_unref);
}

static void
exchange_read_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExoHttpPeer *self = g_task_get_source_object (task);
  Exchange *ex = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);

  if (chunk == NULL)
    {
      exchange_fail (task, error);
      return;
    }
  if (g_bytes_get_size (chunk) == 0)
    {
      exchange_complete (task);
      return;
    }
  if (ex->body->len + g_bytes_get_size (chunk) > EXO_HTTP_MAX_RESPONSE_BYTES)
    {
      g_cancellable_cancel (ex->cancellable);   /* drops the connection */
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                               "peer %s at %s: %s: the answer is larger than %u bytes",
                               peer_label_id (self), peer_address (self), ex->path,
                               EXO_HTTP_MAX_RESPONSE_BYTES);
      return;
    }
  g_byte_array_append (ex->body, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
  exchange_read_more (g_steal_pointer (&task));
}

static void
exchange_read_more (GTask *task)   /* taken */
{
  Exchange *ex = g_task_get_task_data (task);

  g_input_stream_read_bytes_async (ex->stream, 64 * 1024, G_PRIORITY_DEFAULT, ex->cancellable,
                                   exchange_read_cb, task);
}

static void
exchange_sent_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  Exchange *ex = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  ex->stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (ex->stream == NULL)
    {
      exchange_fail (task, error);
      g_object_unref (task);
      return;
    }
  ex->body = g_byte_array_new ();
  exchange_read_more (task);
}

/* Sends @msg (taken) and reads the answer, at most
 * EXO_HTTP_MAX_RESPONSE_BYTES: a GBytes on 2xx, else the error for the status. */
void
http_peer_exchange_async (ExoHttpPeer         *self,
                          SoupMessage         *msg,
                          GBytes              *request_body,
                          const char          *path,
                          guint                timeout_ms,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  Exchange *ex;

  g_task_set_source_tag (task, http_peer_exchange_async);
  ex = g_new0 (Exchange, 1);
  ex->msg = msg;
  ex->path = g_strdup (path);
  ex->timeout_ms = timeout_ms;
  ex->cancellable = g_cancellable_new ();
  g_task_set_task_data (task, ex, (GDestroyNotify) exchange_free);

  if (self->session == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                               "peer %s at %s is not connected", peer_label_id (self),
                               peer_address (self));
      return;
    }
  ex->session = g_object_ref (self->session);
  ex->key = exo_cluster_key_ref (self->key);
  ex->nonce = exo_http_auth_sign_request (self->key, msg, request_body);
  if (cancellable != NULL)
    {
      ex->outer = g_object_ref (cancellable);
      ex->outer_id = g_cancellable_connect (cancellable, G_CALLBACK (exchange_outer_cancelled),
                                            ex->cancellable, NULL);
    }
  if (timeout_ms > 0)
    {
      ex->timer = g_timeout_source_new (timeout_ms);
      g_source_set_callback (ex->timer, exchange_timeout_cb, ex, NULL);
      g_source_set_static_name (ex->timer, "[exo-http] peer exchange timeout");
      g_source_attach (ex->timer, g_task_get_context (task));
    }

  /* A peer answers itself: never follow it elsewhere.  IDEMPOTENT: libsoup
   * sends a POST without it on a new connection every time (a TCP
   * handshake and an accept per hop, and 16 idle sockets per peer closed
   * in bursts); the server takes a prompt or tensor call id once, and
   * libsoup never resends a POST by itself (our retries sign anew). */
  soup_message_add_flags (msg, SOUP_MESSAGE_NO_REDIRECT | SOUP_MESSAGE_IDEMPOTENT);
  ex->started = g_get_monotonic_time ();
  soup_session_send_async (self->session, msg, G_PRIORITY_DEFAULT, ex->cancellable,
                           exchange_sent_cb, g_steal_pointer (&task));
}

GBytes *
http_peer_exchange_finish (ExoHttpPeer   *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

SoupMessage *
http_peer_new_message (ExoHttpPeer  *self,
                       const char   *method,
                       const char   *path,
                       GError      **error)
{
  g_autofree char *uri = NULL;
  SoupMessage *msg;

  if (self->base_uri == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                   "peer %s at %s is not connected", peer_label_id (self), peer_address (self));
      return NULL;
    }
  uri = g_strconcat (self->base_uri, path, NULL);
  msg = soup_message_new (method, uri);
  if (msg == NULL)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "peer %s: '%s' is not a valid URI", peer_label_id (self), uri);
      return NULL;
    }
  /* marks peer calls (the server keeps every client's connection alive) */
  soup_message_headers_replace (soup_message_get_request_headers (msg), EXO_HTTP_HEADER_PEER, "1");
  return msg;
}
