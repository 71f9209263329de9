/* http-routes.c: how a request to ExoHttpServer gets from libsoup to its
 * handler, and how it is answered.
 *
 * Owns:
 *  - the route table: every path the server answers, its method and the
 *    kind of its body.  The server dispatches every path itself (libsoup's
 *    default early handler and default handler) so that unknown paths get
 *    404 and wrong methods 405 with `Allow`;
 *  - body limits, enforced while the body is read: libsoup never
 *    accumulates a request body; the early handler collects it up to the
 *    route's limit (max-json-bytes, max-body-bytes) and a bigger one gets
 *    413 and `Connection: close` (before the body is read when
 *    Content-Length says so);
 *  - the two checkpoints of authentication (http-auth.c): in the early
 *    handler, an unsigned /peer/ request, or a user request without a
 *    valid API key when keys are configured, gets 401 before its body is
 *    read; before a peer route runs, the MAC over the body, the time and
 *    the nonce are checked.  Every answer goes through
 *    http_server_respond_string(), which signs those to verified peer
 *    requests;
 *  - keep-alive for every client (HTTP/1.1 by default; an HTTP/1.0 client
 *    that asks gets it said back), within http-connections.c's limits;
 *  - error answers: {"error": text} on peer paths (/peer/…), which peers
 *    read; OpenAI's {"error": {"message", "type", "param", "code"}} on
 *    every other path (exo_http_error_body(), http-common.c); 429 (busy)
 *    and 503 (no usable node, no ring to run on) carry `Retry-After`;
 *  - the node, looked up by id (setting `node`) at each request, and the
 *    check a handler starts with (REQUIRE_NODE in the private header):
 *    503 "node not ready" while there is no usable node.  The
 *    handlers call the node through libexo's exo_node_role_*() functions
 *    only; a call the node lacks fails with G_IO_ERROR_NOT_SUPPORTED,
 *    answered 501;
 *  - requests waiting for the node (Request): the message is paused until
 *    the answer (a stream: until it is opened, http_server_stream_begin());
 *    a request that makes no progress (no answer, no token) for
 *    `request-timeout-ms` is answered 504 (or, in an open stream, an SSE
 *    `error` event) and its node call cancelled;
 *  - routes with an id at their end ("/v1/models/{id}"): the prefix and
 *    anything after it.
 *
 * Rules: libsoup's handlers and the message's signals run in the server's
 * GMainContext (its initialize's), and so do the node's callbacks and the
 * request timers (attached to the thread-default context when the request
 * is made); no locks.  A Request is owned by the node call it waits for:
 * made with one reference, handed to the call as its callback's
 * user_data, freed when that callback returns (the private header says
 * who else holds it without a reference).  It answers at most once, and
 * its timer stops then.  When the client goes away (the message
 * "finished" or "disconnected"; http-connections.c notices a cut
 * connection at once), the request leaves the message alone from then on
 * and cancels its cancellable: the node stops working for it, and its end
 * is answered nowhere.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-server-private.h"

#include "exo-plugin-util.h"

#include <string.h>

/* Retry-After of 429 and 503 answers, in seconds: a ring re-partitions and
 * an engine's sessions end within about that. */
#define RETRY_AFTER_S "1"

/* --- responses ----------------------------------------------------------- */

void
http_server_respond_string (SoupServerMessage *msg,
                            guint              status,
                            const char        *content_type,
                            char              *text)   /* owned */
{
  exo_http_auth_sign_response (msg, status, text, strlen (text));
  /* Busy (an engine at max-sessions: 429) or unavailable for now (no
   * usable node, a ring that no node holds layers of: 503): when to try
   * again. */
  if (status == EXO_HTTP_STATUS_TOO_MANY_REQUESTS || status == SOUP_STATUS_SERVICE_UNAVAILABLE)
    soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After",
                                  RETRY_AFTER_S);
  soup_server_message_set_status (msg, status,
                                  status == EXO_HTTP_STATUS_TOO_MANY_REQUESTS ? "Too Many Requests" : NULL);
  soup_server_message_set_response (msg, content_type, SOUP_MEMORY_TAKE, text, strlen (text));
}

void
http_server_respond_json (SoupServerMessage *msg,
                          guint              status,
                          JsonNode          *node)
{
  http_server_respond_string (msg, status, "application/json", exo_http_node_to_string (node));
}

void
http_server_respond_node_error (SoupServerMessage *msg,
                                const GError      *error)
{
  http_server_respond_error (msg, g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED)
                                  ? SOUP_STATUS_NOT_IMPLEMENTED : SOUP_STATUS_INTERNAL_SERVER_ERROR,
                             "%s", error->message);
}

static const char *
message_path (SoupServerMessage *msg)
{
  GUri *uri = soup_server_message_get_uri (msg);

  return uri != NULL ? g_uri_get_path (uri) : NULL;
}

static void
respond_error_valist (SoupServerMessage *msg,
                      guint              status,
                      const char        *param,
                      const char        *code,
                      const char        *format,
                      va_list            args) G_GNUC_PRINTF (5, 0);

static void
respond_error_valist (SoupServerMessage *msg,
                      guint              status,
                      const char        *param,
                      const char        *code,
                      const char        *format,
                      va_list            args)
{
  g_autofree char *message = g_strdup_vprintf (format, args);

  http_server_respond_string (msg, status, "application/json",
                              exo_http_error_body (message_path (msg), status, message, param,
                                                   code));
}

void
http_server_respond_error (SoupServerMessage *msg,
                           guint              status,
                           const char        *format,
                           ...)
{
  va_list args;

  va_start (args, format);
  respond_error_valist (msg, status, NULL, NULL, format, args);
  va_end (args);
}

void
http_server_respond_api_error (SoupServerMessage *msg,
                               guint              status,
                               const char        *param,
                               const char        *code,
                               const char        *format,
                               ...)
{
  va_list args;

  va_start (args, format);
  respond_error_valist (msg, status, param, code, format, args);
  va_end (args);
}

void
http_server_respond_bad_request (SoupServerMessage *msg,
                                 const GError      *error)
{
  http_server_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
}

/* --- the node ------------------------------------------------------------ */

ExoNodeRole *
http_server_lookup_node (ExoHttpServer *self)
{
  ExoResource *resource = exo_registry_lookup (exo_registry_get_default (), self->node_id);

  if (resource == NULL)
    return NULL;
  if (!EXO_IS_NODE_ROLE (resource) || !exo_resource_is_usable (resource))
    {
      g_object_unref (resource);
      return NULL;
    }
  return EXO_NODE_ROLE (resource);
}

/* --- requests in flight -------------------------------------------------- */

static void request_stop_timer (Request *req);

static void
request_clear (Request *req)
{
  request_stop_timer (req);
  g_clear_signal_handler (&req->finished_id, req->msg);
  g_clear_signal_handler (&req->disconnected_id, req->msg);
  if (req->self->requests != NULL)
    g_hash_table_remove (req->self->requests, req);
  g_clear_object (&req->cancellable);
  g_clear_object (&req->node);
  g_clear_object (&req->msg);
  g_clear_object (&req->self);
  g_clear_pointer (&req->request_id, g_free);
  g_clear_pointer (&req->call_id, g_free);
  g_clear_pointer (&req->model, g_free);
  if (req->text != NULL)
    g_string_free (req->text, TRUE);
}

void
http_server_request_unref (Request *req)
{
  g_rc_box_release_full (req, (GDestroyNotify) request_clear);
}

static void
request_msg_gone_cb (SoupServerMessage *msg,
                     Request           *req)
{
  req->msg_gone = TRUE;
  /* Gone before libsoup's "request-finished": 499, unless its answer was
   * all given to libsoup first (http-metrics.c counts its status then). */
  http_server_request_client_left (req->self, msg);
  /* The caller went away: stop working for it. */
  g_cancellable_cancel (req->cancellable);
}

Request *
http_server_request_new (ExoHttpServer     *self,
                         SoupServerMessage *msg,
                         ExoNodeRole       *node,
                         RequestKind        kind)
{
  Request *req = g_rc_box_new0 (Request);

  req->self = g_object_ref (self);
  req->msg = g_object_ref (msg);
  req->node = g_object_ref (node);
  req->kind = kind;
  req->status_ok = SOUP_STATUS_OK;
  req->cancellable = g_cancellable_new ();
  req->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (request_msg_gone_cb), req);
  req->disconnected_id = g_signal_connect (msg, "disconnected", G_CALLBACK (request_msg_gone_cb), req);
  g_hash_table_add (self->requests, req);
  http_server_request_restart_timer (req);

  soup_server_message_pause (msg);
  return req;
}

static void
request_stop_timer (Request *req)
{
  if (req->timer != NULL)
    {
      g_source_destroy (req->timer);
      g_clear_pointer (&req->timer, g_source_unref);
    }
}

static GQuark
answered_quark (void)
{
  static GQuark quark;

  if (G_UNLIKELY (quark == 0))
    quark = g_quark_from_static_string ("exo-http-answered");
  return quark;
}

/* @req's answer is all given to libsoup, under @status (a stream's: the
 * 200 of its head): kept on the message for http-metrics.c. */
static void
request_mark_answered (Request *req,
                       guint    status)
{
  req->answered = TRUE;
  g_object_set_qdata (G_OBJECT (req->msg), answered_quark (), GUINT_TO_POINTER (status));
}

guint
http_server_answered_status (SoupServerMessage *msg)
{
  return GPOINTER_TO_UINT (g_object_get_qdata (G_OBJECT (msg), answered_quark ()));
}

void
http_server_request_answer_json (Request  *req,
                                 guint     status,
                                 JsonNode *node)
{
  if (!http_server_request_can_answer (req))
    return;
  request_mark_answered (req, status);
  request_stop_timer (req);
  http_server_respond_json (req->msg, status, node);
  soup_server_message_unpause (req->msg);
}

void
http_server_request_answer_string (Request    *req,
                                   guint       status,
                                   char       *text)   /* owned */
{
  if (!http_server_request_can_answer (req))
    {
      g_free (text);
      return;
    }
  request_mark_answered (req, status);
  request_stop_timer (req);
  http_server_respond_string (req->msg, status, "application/json", text);
  soup_server_message_unpause (req->msg);
}

void
http_server_stream_append (Request    *req,
                           const char *chunk)
{
  SoupMessageBody *body = soup_server_message_get_response_body (req->msg);

  soup_message_body_append (body, SOUP_MEMORY_COPY, chunk, strlen (chunk));
  soup_server_message_unpause (req->msg);
}

void
http_server_stream_end (Request *req)
{
  request_mark_answered (req, SOUP_STATUS_OK);
  request_stop_timer (req);
  soup_message_body_complete (soup_server_message_get_response_body (req->msg));
  soup_server_message_unpause (req->msg);
}

void
http_server_stream_begin (Request *req)
{
  SoupMessageHeaders *headers;

  if (req->stream_open || !http_server_request_can_answer (req))
    return;
  req->stream_open = TRUE;
  req->self->n_streams++;
  headers = soup_server_message_get_response_headers (req->msg);
  soup_server_message_set_status (req->msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_type (headers, "text/event-stream", NULL);
  soup_message_headers_replace (headers, "Cache-Control", "no-cache");
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  soup_server_message_unpause (req->msg);
}

/* Answers @req with an error: an SSE `error` event that ends a stream
 * already open, else @status.  The body as exo_http_error_body() makes
 * it for the request's path: the user API's in OpenAI's shape, with @code
 * (NULL: the status's); the peer API's {"error": text}. */
static void
request_fail (Request      *req,
              guint         status,
              const char   *code,
              const char   *message)
{
  g_autofree char *json = NULL;

  if (!http_server_request_can_answer (req))
    return;
  json = exo_http_error_body (message_path (req->msg), status, message, NULL, code);
  if (req->stream_open)
    {
      g_autofree char *event = g_strdup_printf ("event: error\ndata: %s\n\n", json);

      http_server_stream_append (req, event);
      http_server_stream_end (req);
      return;
    }
  /* (429 and 503 get Retry-After: http_server_respond_string()) */
  http_server_request_answer_string (req, status, g_steal_pointer (&json));
}

void
http_server_request_fail_error (Request      *req,
                                const GError *error)
{
  request_fail (req, exo_http_status_for_error (error), NULL, error->message);
}

static gboolean
request_timeout_cb (gpointer data)
{
  Request *req = data;
  gint64 deadline = req->progress_us + (gint64) req->self->request_timeout_ms * 1000;
  g_autofree char *message = NULL;

  /* progress since it was set: on to the deadline of the last progress */
  if (g_get_monotonic_time () < deadline)
    {
      g_source_set_ready_time (req->timer, deadline);
      return G_SOURCE_CONTINUE;
    }
  g_clear_pointer (&req->timer, g_source_unref);
  req->self->n_timeouts++;
  message = g_strdup_printf ("the node made no progress within %u ms (request-timeout-ms)",
                             req->self->request_timeout_ms);
  request_fail (req, SOUP_STATUS_GATEWAY_TIMEOUT, NULL, message);
  g_cancellable_cancel (req->cancellable);
  return G_SOURCE_REMOVE;
}

void
http_server_request_restart_timer (Request *req)
{
  if (req->self->request_timeout_ms == 0 || req->answered)
    {
      request_stop_timer (req);
      return;
    }
  req->progress_us = g_get_monotonic_time ();
  /* One timer, set once (not made anew per token, nor moved: a new ready
   * time wakes the main loop through its eventfd); it looks at the last
   * progress when it fires (request_timeout_cb). */
  if (req->timer == NULL)
    {
      req->timer = exo_plugin_ready_time_source_new (request_timeout_cb, req,
                                                     "[exo-http] request timeout");
      g_source_set_ready_time (req->timer, req->progress_us +
                                           (gint64) req->self->request_timeout_ms * 1000);
    }
}

/* --- request bodies ------------------------------------------------------ */

typedef enum {
  BODY_NONE,
  BODY_JSON,
  BODY_BINARY,
} BodyKind;

typedef struct
{
  GByteArray *data;
  guint64     limit;
  guint64     seen;
  gboolean    too_big;
} BodyCollector;

static void
body_collector_free (BodyCollector *collector)
{
  g_byte_array_unref (collector->data);
  g_free (collector);
}

static void
got_chunk_cb (SoupServerMessage *msg,
              GBytes            *chunk,
              BodyCollector     *collector)
{
  gsize len = g_bytes_get_size (chunk);

  collector->seen += len;
  if (collector->too_big || collector->seen > collector->limit)
    {
      /* Drain the rest without keeping it. */
      if (!collector->too_big)
        g_byte_array_set_size (collector->data, 0);
      collector->too_big = TRUE;
      return;
    }
  g_byte_array_append (collector->data, g_bytes_get_data (chunk, NULL), len);
}

/* --- routes -------------------------------------------------------------- */

typedef void (*RouteFunc) (ExoHttpServer     *self,
                           SoupServerMessage *msg,
                           const guint8      *body,
                           gsize              body_len);

typedef struct
{
  const char *path;
  const char *method;
  BodyKind    body;
  RouteFunc   func;
} Route;

static const Route routes[] = {
  { "/peer/v1/health",      "GET",  BODY_NONE,   http_server_handle_peer_health },
  { "/peer/v1/status",      "GET",  BODY_NONE,   http_server_handle_peer_status },
  { "/peer/v1/prompt",      "POST", BODY_JSON,   http_server_handle_peer_prompt },
  { "/peer/v1/tensor",      "POST", BODY_BINARY, http_server_handle_peer_tensor },
  { "/peer/v1/result",      "POST", BODY_JSON,   http_server_handle_peer_result },
  { "/peer/v1/topology",    "POST", BODY_JSON,   http_server_handle_peer_topology },
  { "/peer/v1/cancel",      "POST", BODY_JSON,   http_server_handle_peer_cancel },
  { "/peer/v1/failure",     "POST", BODY_JSON,   http_server_handle_peer_failure },
  /* the upgrade to the peer stream (http-stream-server.c) */
  { EXO_STREAM_PATH,        "GET",  BODY_NONE,   http_server_handle_peer_stream },
  { "/v1/chat/completions", "POST", BODY_JSON,   http_server_handle_chat },
  { "/v1/completions",      "POST", BODY_JSON,   http_server_handle_completion },
  { "/v1/models",           "GET",  BODY_NONE,   http_server_handle_models },
  { "/v1/models/{id}",      "GET",  BODY_NONE,   http_server_handle_model },
  { "/v1/topology",         "GET",  BODY_NONE,   http_server_handle_topology },
  { "/healthcheck",         "GET",  BODY_NONE,   http_server_handle_healthcheck },
  { "/metrics",             "GET",  BODY_NONE,   http_server_handle_metrics },
};

/* A route's path matches itself; one that ends in "/{id}" matches its
 * prefix and a slash followed by anything but nothing. */
static gboolean
route_matches (const Route *route,
               const char  *path)
{
  const char *param = g_strrstr (route->path, "/{");
  gsize prefix;

  if (param == NULL)
    return strcmp (route->path, path) == 0;
  prefix = (gsize) (param - route->path) + 1;
  return strncmp (route->path, path, prefix) == 0 && path[prefix] != '\0';
}

static const Route *
find_route (const char *path)
{
  if (path == NULL)
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (routes); i++)
    if (route_matches (&routes[i], path))
      return &routes[i];
  return NULL;
}

const char *
http_server_route_path (const char *path)
{
  const Route *route = find_route (path);

  return route != NULL ? route->path : NULL;
}

static gboolean
method_allowed (const Route *route,
                const char  *method)
{
  if (g_strcmp0 (method, route->method) == 0)
    return TRUE;
  return g_str_equal (route->method, "GET") && g_strcmp0 (method, "HEAD") == 0;
}

static guint64
body_limit (ExoHttpServer *self,
            const Route   *route)
{
  switch (route->body)
    {
    case BODY_JSON:
      return MIN (self->max_json_bytes, self->max_body_bytes);
    case BODY_BINARY:
      return self->max_body_bytes;
    case BODY_NONE:
    default:
      return 0;
    }
}

static void
respond_too_big (SoupServerMessage *msg,
                 const Route       *route,
                 guint64            limit)
{
  http_server_respond_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                             "the body of %s is larger than %" G_GUINT64_FORMAT " bytes (%s)",
                             route->path, limit,
                             route->body == BODY_JSON ? "max-json-bytes" : "max-body-bytes");
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Connection", "close");
}

/* libsoup answers a head it will not route (a path with a NUL byte or a
 * dot segment above the root) 400 before any handler, with no body: that
 * answer (and any other error status libsoup set by then) gets OpenAI's
 * error shape too.  (What libsoup refuses while parsing the head — no
 * Host, a bad Content-Length, Expect, Transfer-Encoding or version — is
 * written before any signal and keeps its empty body.)  Runs after libsoup's
 * own "got-headers" handler, which it connects before "request-started". */
static void
head_refused_cb (SoupServerMessage *msg,
                 gpointer           user_data)
{
  guint status = soup_server_message_get_status (msg);

  if (status < 400 || soup_server_message_get_response_body (msg)->length > 0)
    return;
  if (status == SOUP_STATUS_BAD_REQUEST)
    http_server_respond_api_error (msg, status, NULL, "invalid_request",
                                   "the request cannot be routed: its path holds a NUL byte or "
                                   "a dot segment above the root");
  else
    http_server_respond_api_error (msg, status, NULL, NULL, "the request's head was refused: %s",
                                   soup_status_get_phrase (status));
}

void
http_server_watch_head_cb (SoupServer        *server,
                           SoupServerMessage *msg,
                           ExoHttpServer     *self)
{
  g_signal_connect (msg, "got-headers", G_CALLBACK (head_refused_cb), NULL);
}

void
http_server_early_handler (SoupServer        *server,
                           SoupServerMessage *msg,
                           const char        *path,
                           GHashTable        *query,
                           gpointer           user_data)
{
  ExoHttpServer *self = user_data;
  const Route *route = find_route (path);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupEncoding encoding = soup_message_headers_get_encoding (headers);
  BodyCollector *collector;

  /* A head whose framing is wrong (Content-Length no number, twice, or
   * beside Transfer-Encoding; a body over every limit) is answered and
   * closed before anything else looks at it. */
  if (self->connections != NULL && !http_connections_check_head (self->connections, msg, NULL))
    return;

  /* Never let libsoup keep the whole body: collect up to the limit. */
  soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);
  if (encoding == SOUP_ENCODING_NONE ||
      (encoding == SOUP_ENCODING_CONTENT_LENGTH && soup_message_headers_get_content_length (headers) == 0))
    collector = NULL;   /* no body: nothing to collect (the common GET) */
  else
    {
      collector = g_new0 (BodyCollector, 1);
      collector->data = g_byte_array_new ();
      if (route != NULL && method_allowed (route, soup_server_message_get_method (msg)))
        collector->limit = body_limit (self, route);
      g_object_set_data_full (G_OBJECT (msg), "exo-http-body", collector,
                              (GDestroyNotify) body_collector_free);
      g_signal_connect (msg, "got-chunk", G_CALLBACK (got_chunk_cb), collector);
    }

  /* Unsigned peer requests and user requests without a valid API key (when
   * keys are configured) are refused before their body is read. */
  if (!exo_http_auth_check_early (self->auth, msg, path))
    return;

  /* Every client may keep its connection alive (HTTP/1.1 by default; an
   * HTTP/1.0 client that asks gets it said back), within the limits of
   * http-connections.c. */
  if (soup_server_message_get_http_version (msg) == SOUP_HTTP_1_0 &&
      soup_message_headers_header_contains (headers, "Connection", "Keep-Alive"))
    soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                  "Connection", "Keep-Alive");

  /* Said by Content-Length: answered now, without reading the body (which
   * libsoup 3.2 would read first). */
  if (collector != NULL && collector->limit > 0 &&
      encoding == SOUP_ENCODING_CONTENT_LENGTH &&
      (guint64) soup_message_headers_get_content_length (headers) > collector->limit)
    {
      g_autofree char *message = g_strdup_printf ("the body of %s is larger than %" G_GUINT64_FORMAT
                                                  " bytes (%s)", route->path, collector->limit,
                                                  route->body == BODY_JSON ? "max-json-bytes"
                                                                           : "max-body-bytes");

      respond_too_big (msg, route, collector->limit);
      if (self->connections != NULL)
        http_connections_refuse (self->connections, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                                 message);
    }
}

void
http_server_handler (SoupServer        *server,
                     SoupServerMessage *msg,
                     const char        *path,
                     GHashTable        *query,
                     gpointer           user_data)
{
  ExoHttpServer *self = user_data;
  const Route *route = find_route (path);
  BodyCollector *collector = g_object_get_data (G_OBJECT (msg), "exo-http-body");

  if (route == NULL)
    {
      g_autofree char *shown = exo_http_shown_text (path, 128);
      http_server_respond_api_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "unknown_url",
                                     "no such path: %s", shown);
      return;
    }
  if (!method_allowed (route, soup_server_message_get_method (msg)))
    {
      http_server_respond_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "%s takes %s, not %s",
                                 route->path, route->method, soup_server_message_get_method (msg));
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow",
                                    g_str_equal (route->method, "GET") ? "GET, HEAD" : route->method);
      return;
    }
  if (collector != NULL && collector->too_big)
    {
      respond_too_big (msg, route, collector->limit);
      return;
    }
  /* A compressed body would be read as if it were not: refused, named. */
  {
    const char *encoding = soup_message_headers_get_list (soup_server_message_get_request_headers (msg),
                                                          "Content-Encoding");

    if (encoding != NULL && encoding[strspn (encoding, " \t")] != '\0' &&
        g_ascii_strcasecmp (encoding, "identity") != 0)
      {
        g_autofree char *shown = exo_http_shown_text (encoding, 64);

        http_server_respond_api_error (msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, NULL,
                                       "unsupported_content_encoding",
                                       "Content-Encoding %s is not supported: send the body "
                                       "uncompressed", shown);
        return;
      }
  }
  if (exo_http_auth_is_peer_path (route->path) &&
      !exo_http_auth_check_peer (self->auth, msg,
                                 collector != NULL ? collector->data->data : NULL,
                                 collector != NULL ? collector->data->len : 0))
    return;

  route->func (self, msg,
               collector != NULL ? collector->data->data : NULL,
               collector != NULL ? collector->data->len : 0);
}
