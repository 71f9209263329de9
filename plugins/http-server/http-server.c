/* http-server.c: the `http-server` plugin — peer RPC and the user API over
 * HTTP/1.1 on libsoup-3.0 (docs/cluster-protocol.md), and the plugin entry.
 *
 * One #SoupServer per initialize, dispatching every path itself (a default
 * handler and a default early handler) so that unknown paths get 404,
 * wrong methods 405 with `Allow`, and body limits are enforced while the
 * body is read: the request body is never accumulated by libsoup; an early
 * handler collects it up to the route's limit and a bigger one gets 413.
 *
 * The node is looked up by id (setting `node`) at request time; requests
 * that need it get 503 `{"error": "node not ready"}` while there is none or
 * it is not usable.  Asynchronous node calls pause the message; a request
 * that makes no progress for `request-timeout-ms` is answered 504 (or an
 * SSE `error` event) and its node call cancelled.
 *
 * Authentication (http-auth.c): every /peer/ request must be signed with
 * the cluster key — checked in the early handler (no signature: 401 before
 * the body is read) and before the route runs (the MAC over the body, the
 * time, the nonce); answers to verified peer requests are signed in
 * respond_string().  With `api-keys`/`api-key-file`, the user API wants
 * `Authorization: Bearer`.
 * The TCP side (the listener, accept, connection limits and timeouts, and
 * closing connections so that libsoup 3.2 frees them) is http-connections.c.
 * Every client may keep its connection alive.
 *
 * Thread rules: the server runs in the GMainContext of its initialize (the
 * daemon's main thread); no locks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-common.h"
#include "http-auth.h"
#include "http-connections.h"
#include "http-request.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_PORT               52415
#define DEFAULT_LISTEN_ADDRESS     "0.0.0.0"
#define DEFAULT_NODE               "node"
#define DEFAULT_MAX_BODY_BYTES     (16u * 1024 * 1024)
#define DEFAULT_MAX_JSON_BYTES     (1u * 1024 * 1024)
#define DEFAULT_REQUEST_TIMEOUT_MS 30000
#define DEFAULT_MAX_CONNECTIONS    1024
#define DEFAULT_HEADER_TIMEOUT_MS  10000
#define DEFAULT_IDLE_TIMEOUT_MS    60000
#define NODE_NOT_READY             "node not ready"

struct _ExoHttpServer
{
  ExoManagedResource parent_instance;

  /* settings */
  guint        port;
  char        *listen_address;
  char        *node_id;
  guint64      max_body_bytes;
  guint64      max_json_bytes;
  guint        request_timeout_ms;
  char       **api_keys;
  char        *api_key_file;

  ExoHttpAuth *auth;            /* for the server's life; configured per initialize */
  guint        max_connections;
  guint        header_timeout_ms;
  guint        idle_timeout_ms;

  /* while listening (see do_initialize) */
  HttpConnections *connections; /* the listener and the accepted connections */
  GSocket     *keepalive_socket;/* a listener libsoup never accepts on */
  GSocket     *keepalive_peer;  /* its other end, never written to */
  SoupServer  *server;
  guint16      bound_port;
  GHashTable  *requests;        /* Request* set: node calls in flight */
  GHashTable  *seen_calls;      /* call id -> the GList link in seen_order */
  GQueue       seen_order;      /* call ids, oldest first (owned) */

  /* statistics */
  GHashTable  *counts;          /* "path\ncode" -> guint64* */
  guint64      n_requests;
  guint64      n_client_errors;
  guint64      n_server_errors;
  guint64      n_streams;
  guint64      n_timeouts;
  guint64      n_duplicate_calls;
  HttpConnectionStats last_connection_stats; /* kept across cleanup */
};

enum {
  PROP_0,
  PROP_PORT,
  PROP_LISTEN_ADDRESS,
  PROP_NODE,
  PROP_MAX_BODY_BYTES,
  PROP_MAX_JSON_BYTES,
  PROP_REQUEST_TIMEOUT_MS,
  PROP_API_KEYS,
  PROP_API_KEY_FILE,
  PROP_MAX_CONNECTIONS,
  PROP_HEADER_TIMEOUT_MS,
  PROP_IDLE_TIMEOUT_MS,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];

static void exo_http_server_server_init (ExoServerInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ExoHttpServer, exo_http_server, EXO_TYPE_MANAGED_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_SERVER,
                                                      exo_http_server_server_init))

/* --- responses ----------------------------------------------------------- */

static void
respond_string (SoupServerMessage *msg,
                guint              status,
                const char        *content_type,
                char              *text)   /* owned */
{
  exo_http_auth_sign_response (msg, status, text, strlen (text));
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, content_type, SOUP_MEMORY_TAKE, text, strlen (text));
}

static void
respond_json (SoupServerMessage *msg,
              guint              status,
              JsonNode          *node)
{
  respond_string (msg, status, "application/json", exo_http_node_to_string (node));
}

static char *
error_body (const char *message)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *valid = g_utf8_make_valid (message, -1);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, valid);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  return exo_http_node_to_string (root);
}

G_GNUC_PRINTF (3, 4)
static void
respond_error (SoupServerMessage *msg,
               guint              status,
               const char        *format,
               ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  respond_string (msg, status, "application/json", error_body (message));
}

static void
respond_empty_object (SoupServerMessage *msg,
                      guint              status)
{
  respond_string (msg, status, "application/json", g_strdup ("{}"));
}

/* At most @max bytes of @text, valid UTF-8, for a message. */
static char *
shown_text (const char *text,
            gsize       max)
{
  if (text == NULL)
    return g_strdup ("");
  return g_utf8_make_valid (text, (gssize) strnlen (text, max));
}

/* --- the node ------------------------------------------------------------ */

static ExoNodeRole *
lookup_node (ExoHttpServer *self)
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

#define NODE_IFACE(node) EXO_NODE_ROLE_GET_IFACE (node)

/* --- requests in flight -------------------------------------------------- */

typedef enum {
  REQUEST_PEER,       /* answered with {} or the node's JSON */
  REQUEST_TOPOLOGY,
  REQUEST_CHAT,
} RequestKind;

typedef struct
{
  ExoHttpServer     *self;          /* strong */
  SoupServerMessage *msg;           /* strong */
  ExoNodeRole       *node;          /* strong */
  GCancellable      *cancellable;
  GSource           *timer;
  gulong             finished_id;
  gulong             disconnected_id;
  RequestKind        kind;
  guint              status_ok;     /* status of a successful peer call */
  guint              msg_gone : 1;  /* finished or disconnected: leave msg alone */
  guint              answered : 1;  /* the response (or the stream's end) is set */
  guint              stream : 1;
  guint              sent_role : 1;
  guint              is_tensor : 1;
  char              *call_id;       /* peer calls: forgotten again if the call fails */
  /* chat */
  char              *request_id;
  char              *model;
  GString           *text;
  guint              n_tokens;
  gint64             created;
} Request;

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

static void
request_unref (Request *req)
{
  g_rc_box_release_full (req, (GDestroyNotify) request_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Request, request_unref)

static void
request_msg_gone_cb (SoupServerMessage *msg,
                     Request           *req)
{
  req->msg_gone = TRUE;
  /* The caller went away: stop working for it. */
  g_cancellable_cancel (req->cancellable);
}

static void request_restart_timer (Request *req);

static Request *
request_new (ExoHttpServer     *self,
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
  request_restart_timer (req);

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

/* Whether the response may still be written. */
static gboolean
request_can_answer (Request *req)
{
  return !req->answered && !req->msg_gone;
}

static void
request_answer_json (Request  *req,
                     guint     status,
                     JsonNode *node)
{
  if (!request_can_answer (req))
    return;
  req->answered = TRUE;
  request_stop_timer (req);
  respond_json (req->msg, status, node);
  soup_server_message_unpause (req->msg);
}

static void
request_answer_string (Request    *req,
                       guint       status,
                       char       *text)   /* owned */
{
  if (!request_can_answer (req))
    {
      g_free (text);
      return;
    }
  req->answered = TRUE;
  request_stop_timer (req);
  respond_string (req->msg, status, "application/json", text);
  soup_server_message_unpause (req->msg);
}

static void
stream_append (Request    *req,
               const char *chunk)
{
  SoupMessageBody *body = soup_server_message_get_response_body (req->msg);

  soup_message_body_append (body, SOUP_MEMORY_COPY, chunk, strlen (chunk));
  soup_server_message_unpause (req->msg);
}

static void
stream_end (Request *req)
{
  req->answered = TRUE;
  request_stop_timer (req);
  soup_message_body_complete (soup_server_message_get_response_body (req->msg));
  soup_server_message_unpause (req->msg);
}

static void
request_fail (Request      *req,
              guint         status,
              const char   *message)
{
  if (!request_can_answer (req))
    return;
  if (req->stream)
    {
      g_autofree char *json = error_body (message);
      g_autofree char *event = g_strdup_printf ("event: error\ndata: %s\n\n", json);

      stream_append (req, event);
      stream_end (req);
      return;
    }
  request_answer_string (req, status, error_body (message));
}

static void
request_fail_error (Request      *req,
                    const GError *error)
{
  request_fail (req, exo_http_status_for_error (error), error->message);
}

static gboolean
request_timeout_cb (gpointer data)
{
  Request *req = data;
  g_autofree char *message = NULL;

  g_clear_pointer (&req->timer, g_source_unref);
  req->self->n_timeouts++;
  message = g_strdup_printf ("the node made no progress within %u ms (request-timeout-ms)",
                             req->self->request_timeout_ms);
  request_fail (req, SOUP_STATUS_GATEWAY_TIMEOUT, message);
  g_cancellable_cancel (req->cancellable);
  return G_SOURCE_REMOVE;
}

static gboolean
ready_time_dispatch (GSource     *source,
                     GSourceFunc  callback,
                     gpointer     user_data)
{
  return callback (user_data);
}

/* A source that fires at the ready time it is given: moved at each token,
 * not made anew (a stream of tokens on 256 connections would otherwise make
 * and destroy a timer per token). */
static GSourceFuncs ready_time_funcs = {
  .dispatch = ready_time_dispatch,
};

static void
request_restart_timer (Request *req)
{
  if (req->self->request_timeout_ms == 0 || req->answered)
    {
      request_stop_timer (req);
      return;
    }
  if (req->timer == NULL)
    {
      req->timer = g_source_new (&ready_time_funcs, sizeof (GSource));
      g_source_set_callback (req->timer, request_timeout_cb, req, NULL);
      g_source_set_static_name (req->timer, "[exo-http] request timeout");
      g_source_attach (req->timer, g_main_context_get_thread_default ());
    }
  g_source_set_ready_time (req->timer, g_get_monotonic_time () +
                                       (gint64) req->self->request_timeout_ms * 1000);
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

static void handle_peer_health   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
static void handle_peer_status   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
static void handle_peer_prompt   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
static void handle_peer_tensor   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
static void handle_peer_result   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
static void handle_peer_topology (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
static void handle_peer_cancel   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
static void handle_chat          (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
static void handle_models        (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
static void handle_topology      (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
static void handle_healthcheck   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
static void handle_metrics       (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);

static const Route routes[] = {
  { "/peer/v1/health",      "GET",  BODY_NONE,   handle_peer_health },
  { "/peer/v1/status",      "GET",  BODY_NONE,   handle_peer_status },
  { "/peer/v1/prompt",      "POST", BODY_JSON,   handle_peer_prompt },
  { "/peer/v1/tensor",      "POST", BODY_BINARY, handle_peer_tensor },
  { "/peer/v1/result",      "POST", BODY_JSON,   handle_peer_result },
  { "/peer/v1/topology",    "POST", BODY_JSON,   handle_peer_topology },
  { "/peer/v1/cancel",      "POST", BODY_JSON,   handle_peer_cancel },
  { "/v1/chat/completions", "POST", BODY_JSON,   handle_chat },
  { "/v1/models",           "GET",  BODY_NONE,   handle_models },
  { "/v1/topology",         "GET",  BODY_NONE,   handle_topology },
  { "/healthcheck",         "GET",  BODY_NONE,   handle_healthcheck },
  { "/metrics",             "GET",  BODY_NONE,   handle_metrics },
};

static const Route *
find_route (const char *path)
{
  if (path == NULL)
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (routes); i++)
    if (strcmp (routes[i].path, path) == 0)
      return &routes[i];
  return NULL;
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
  respond_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                 "the body of %s is larger than %" G_GUINT64_FORMAT " bytes (%s)",
                 route->path, limit,
                 route->body == BODY_JSON ? "max-json-bytes" : "max-body-bytes");
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Connection", "close");
}

static void
early_handler (SoupServer        *server,
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

  if (collector != NULL && collector->limit > 0 &&
      encoding == SOUP_ENCODING_CONTENT_LENGTH &&
      (guint64) soup_message_headers_get_content_length (headers) > collector->limit)
    respond_too_big (msg, route, collector->limit);
}

static void
server_handler (SoupServer        *server,
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
      g_autofree char *shown = shown_text (path, 128);
      respond_error (msg, SOUP_STATUS_NOT_FOUND, "no such path: %s", shown);
      return;
    }
  if (!method_allowed (route, soup_server_message_get_method (msg)))
    {
      respond_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "%s takes %s, not %s",
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
  if (exo_http_auth_is_peer_path (route->path) &&
      !exo_http_auth_check_peer (self->auth, msg,
                                 collector != NULL ? collector->data->data : NULL,
                                 collector != NULL ? collector->data->len : 0))
    return;

  route->func (self, msg,
               collector != NULL ? collector->data->data : NULL,
               collector != NULL ? collector->data->len : 0);
}

/* --- request counting ---------------------------------------------------- */

static void
count_request (ExoHttpServer     *self,
               SoupServerMessage *msg)
{
  GUri *uri = soup_server_message_get_uri (msg);
  const Route *route = uri != NULL ? find_route (g_uri_get_path (uri)) : NULL;
  guint status = soup_server_message_get_status (msg);
  g_autofree char *key = NULL;
  guint64 *count;

  if (status == 0)
    return;   /* the client left before anything was answered */
  key = g_strdup_printf ("%s\n%u", route != NULL ? route->path : "other", status);
  count = g_hash_table_lookup (self->counts, key);

  if (count == NULL)
    {
      count = g_new0 (guint64, 1);
      g_hash_table_insert (self->counts, g_steal_pointer (&key), count);
    }
  (*count)++;
  self->n_requests++;
  if (status >= 400 && status < 500)
    self->n_client_errors++;
  else if (status >= 500)
    self->n_server_errors++;
}

static void
request_finished_cb (SoupServer        *server,
                     SoupServerMessage *msg,
                     ExoHttpServer     *self)
{
  count_request (self, msg);
}

/* --- peer RPC ------------------------------------------------------------ */

static void
respond_bad_request (SoupServerMessage *msg,
                     const GError      *error)
{
  respond_error (msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
}

#define REQUIRE_NODE(self, msg, node)                                          \
  g_autoptr(ExoNodeRole) node = lookup_node (self);                            \
  if (node == NULL)                                                            \
    {                                                                          \
      respond_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, NODE_NOT_READY);    \
      return;                                                                  \
    }

#define REQUIRE_VFUNC(msg, node, vfunc)                                        \
  if (NODE_IFACE (node)->vfunc == NULL)                                        \
    {                                                                          \
      respond_error (msg, SOUP_STATUS_NOT_IMPLEMENTED,                         \
                     "the node does not implement " #vfunc);                   \
      return;                                                                  \
    }

static void
handle_peer_health (ExoHttpServer     *self,
                    SoupServerMessage *msg,
                    const guint8      *body,
                    gsize              body_len)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  const char *node_id;
  REQUIRE_NODE (self, msg, node);

  node_id = NODE_IFACE (node)->get_node_id != NULL ? NODE_IFACE (node)->get_node_id (node) : NULL;
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "status");
  json_builder_add_string_value (builder, "ok");
  json_builder_set_member_name (builder, "node_id");
  json_builder_add_string_value (builder, node_id != NULL ? node_id : "");
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  respond_json (msg, SOUP_STATUS_OK, root);
}

static void
handle_peer_status (ExoHttpServer     *self,
                    SoupServerMessage *msg,
                    const guint8      *body,
                    gsize              body_len)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) all = NULL;
  const char *node_id;
  REQUIRE_NODE (self, msg, node);

  node_id = NODE_IFACE (node)->get_node_id != NULL ? NODE_IFACE (node)->get_node_id (node) : NULL;
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "node_id");
  json_builder_add_string_value (builder, node_id != NULL ? node_id : "");
  json_builder_set_member_name (builder, "state");
  json_builder_add_string_value (builder,
                                 exo_resource_state_to_string (exo_resource_get_state (EXO_RESOURCE (node))));
  json_builder_set_member_name (builder, "requests_in_flight");
  json_builder_add_int_value (builder, g_hash_table_size (self->requests));
  json_builder_set_member_name (builder, "peers");
  json_builder_begin_array (builder);
  all = exo_registry_list (exo_registry_get_default ());
  for (guint i = 0; i < all->len; i++)
    {
      ExoResource *resource = g_ptr_array_index (all, i);
      ExoPeerHandle *peer;
      const char *peer_id, *address;

      if (!EXO_IS_PEER_HANDLE (resource))
        continue;
      peer = EXO_PEER_HANDLE (resource);
      peer_id = exo_peer_handle_get_peer_id (peer);
      address = exo_peer_handle_get_address (peer);
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "node_id");
      json_builder_add_string_value (builder, peer_id != NULL ? peer_id : "");
      json_builder_set_member_name (builder, "address");
      json_builder_add_string_value (builder, address != NULL ? address : "");
      json_builder_set_member_name (builder, "state");
      json_builder_add_string_value (builder,
                                     exo_resource_state_to_string (exo_resource_get_state (resource)));
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  respond_json (msg, SOUP_STATUS_OK, root);
}

/* A peer call seen before (a retry of an attempt that timed out on the
 * caller's side while we worked on it) is answered without doing it again. */
static gboolean
call_seen_before (ExoHttpServer     *self,
                  SoupServerMessage *msg,
                  char             **out_call_id)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *call_id = soup_message_headers_get_one (headers, EXO_HTTP_HEADER_CALL_ID);
  char *copy;

  *out_call_id = NULL;
  if (call_id == NULL || !exo_http_id_is_valid (call_id))
    return FALSE;
  if (g_hash_table_contains (self->seen_calls, call_id))
    {
      self->n_duplicate_calls++;
      return TRUE;
    }
  while (self->seen_order.length >= EXO_HTTP_MAX_SEEN_CALLS)
    {
      char *oldest = g_queue_pop_head (&self->seen_order);
      g_hash_table_remove (self->seen_calls, oldest);
      g_free (oldest);
    }
  copy = g_strdup (call_id);
  g_queue_push_tail (&self->seen_order, copy);
  g_hash_table_insert (self->seen_calls, copy, self->seen_order.tail);
  *out_call_id = g_strdup (call_id);
  return FALSE;
}

/* The request of a prompt or tensor call, answered 202 when it succeeds;
 * NULL when the call was seen before (then it is answered here). */
static Request *
peer_request_new (ExoHttpServer     *self,
                  SoupServerMessage *msg,
                  ExoNodeRole       *node)
{
  char *call_id = NULL;
  Request *req;

  if (call_seen_before (self, msg, &call_id))
    {
      respond_string (msg, SOUP_STATUS_ACCEPTED, "application/json",
                      g_strdup ("{\"duplicate\":true}"));
      return NULL;
    }
  req = request_new (self, msg, node, REQUEST_PEER);
  req->call_id = call_id;
  req->status_ok = SOUP_STATUS_ACCEPTED;
  return req;
}

/* The call failed here: a retry must be done, not skipped. */
static void
call_forget (ExoHttpServer *self,
             const char    *call_id)
{
  GList *link;

  if (call_id == NULL || self->seen_calls == NULL)
    return;
  link = g_hash_table_lookup (self->seen_calls, call_id);
  if (link == NULL)
    return;
  g_hash_table_remove (self->seen_calls, call_id);
  g_free (link->data);
  g_queue_delete_link (&self->seen_order, link);
}

static void
peer_call_done (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(Request) req = user_data;
  ExoNodeRole *node = EXO_NODE_ROLE (source);
  g_autoptr(GError) error = NULL;
  gboolean ok;

  if (req->is_tensor)
    ok = NODE_IFACE (node)->process_tensor_finish (node, result, &error);
  else
    ok = NODE_IFACE (node)->process_prompt_finish (node, result, &error);

  if (!ok)
    {
      if (error == NULL)
        g_set_error_literal (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "the node failed without saying why");
      call_forget (req->self, req->call_id);
      request_fail_error (req, error);
      return;
    }
  request_answer_string (req, req->status_ok, g_strdup ("{}"));
}

static void
handle_peer_prompt (ExoHttpServer     *self,
                    SoupServerMessage *msg,
                    const guint8      *body,
                    gsize              body_len)
{
  g_autoptr(ExoHttpPromptRequest) prompt = NULL;
  g_autoptr(GError) error = NULL;
  Request *req;
  REQUIRE_NODE (self, msg, node);
  REQUIRE_VFUNC (msg, node, process_prompt_async);

  prompt = exo_http_prompt_request_parse ((const char *) body, body_len, &error);
  if (prompt == NULL)
    {
      respond_bad_request (msg, error);
      return;
    }

  req = peer_request_new (self, msg, node);
  if (req == NULL)
    return;
  NODE_IFACE (node)->process_prompt_async (node, prompt->shard, prompt->prompt, prompt->request_id,
                                           prompt->params, req->cancellable, peer_call_done, req);
}

static void
handle_peer_tensor (ExoHttpServer     *self,
                    SoupServerMessage *msg,
                    const guint8      *body,
                    gsize              body_len)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autoptr(ExoHttpTensorRequest) tensor = NULL;
  g_autoptr(GError) error = NULL;
  Request *req;
  REQUIRE_NODE (self, msg, node);
  REQUIRE_VFUNC (msg, node, process_tensor_async);

  tensor = exo_http_tensor_request_parse (soup_message_headers_get_one (headers, EXO_HTTP_HEADER_REQUEST_ID),
                                          soup_message_headers_get_one (headers, EXO_HTTP_HEADER_SHARD),
                                          soup_message_headers_get_one (headers, EXO_HTTP_HEADER_DTYPE),
                                          soup_message_headers_get_one (headers, EXO_HTTP_HEADER_SHAPE),
                                          soup_message_headers_get_one (headers, EXO_HTTP_HEADER_PARAMS),
                                          body, body_len, &error);
  if (tensor == NULL)
    {
      respond_bad_request (msg, error);
      return;
    }

  req = peer_request_new (self, msg, node);
  if (req == NULL)
    return;
  req->is_tensor = TRUE;
  NODE_IFACE (node)->process_tensor_async (node, tensor->shard, tensor->tensor, tensor->request_id,
                                           tensor->params, req->cancellable, peer_call_done, req);
}

static void
handle_peer_result (ExoHttpServer     *self,
                    SoupServerMessage *msg,
                    const guint8      *body,
                    gsize              body_len)
{
  g_autoptr(ExoHttpResultRequest) result = NULL;
  g_autoptr(GError) error = NULL;
  REQUIRE_NODE (self, msg, node);
  REQUIRE_VFUNC (msg, node, process_result);

  result = exo_http_result_request_parse ((const char *) body, body_len, &error);
  if (result == NULL)
    {
      respond_bad_request (msg, error);
      return;
    }

  NODE_IFACE (node)->process_result (node, result->request_id, result->tokens, result->n_tokens,
                                     result->is_finished);
  respond_empty_object (msg, SOUP_STATUS_OK);
}

/* The request is abandoned (its client went away, or it failed): the node
 * drops the work of it that arrives later. */
static void
handle_peer_cancel (ExoHttpServer     *self,
                    SoupServerMessage *msg,
                    const guint8      *body,
                    gsize              body_len)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *request_id = NULL;
  REQUIRE_NODE (self, msg, node);
  REQUIRE_VFUNC (msg, node, cancel_request);

  request_id = exo_http_cancel_request_parse ((const char *) body, body_len, &error);
  if (request_id == NULL)
    {
      respond_bad_request (msg, error);
      return;
    }
  NODE_IFACE (node)->cancel_request (node, request_id);
  respond_empty_object (msg, SOUP_STATUS_OK);
}

static void
topology_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(Request) req = user_data;
  ExoNodeRole *node = EXO_NODE_ROLE (source);
  g_autoptr(GError) error = NULL;
  char *json = NODE_IFACE (node)->collect_topology_finish (node, result, &error);

  if (json == NULL)
    {
      if (error == NULL)
        g_set_error_literal (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "the node gave no topology");
      request_fail_error (req, error);
      return;
    }
  request_answer_string (req, SOUP_STATUS_OK, json);
}

static void
handle_peer_topology (ExoHttpServer     *self,
                      SoupServerMessage *msg,
                      const guint8      *body,
                      gsize              body_len)
{
  g_autoptr(ExoHttpTopologyRequest) topology = NULL;
  g_autoptr(GError) error = NULL;
  Request *req;
  REQUIRE_NODE (self, msg, node);
  REQUIRE_VFUNC (msg, node, collect_topology_async);

  topology = exo_http_topology_request_parse ((const char *) body, body_len, &error);
  if (topology == NULL)
    {
      respond_bad_request (msg, error);
      return;
    }

  req = request_new (self, msg, node, REQUEST_TOPOLOGY);
  NODE_IFACE (node)->collect_topology_async (node, (const char * const *) topology->visited,
                                             topology->max_depth, req->cancellable,
                                             topology_done, req);
}

/* --- user API ------------------------------------------------------------ */

static void
handle_healthcheck (ExoHttpServer     *self,
                    SoupServerMessage *msg,
                    const guint8      *body,
                    gsize              body_len)
{
  respond_string (msg, SOUP_STATUS_OK, "application/json", g_strdup ("{\"status\":\"ok\"}"));
}

static void
respond_node_json (SoupServerMessage *msg,
                   char              *json,   /* owned, nullable */
                   const char        *what)
{
  if (json == NULL)
    {
      respond_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "the node gave no %s", what);
      return;
    }
  respond_string (msg, SOUP_STATUS_OK, "application/json", json);
}

static void
handle_models (ExoHttpServer     *self,
               SoupServerMessage *msg,
               const guint8      *body,
               gsize              body_len)
{
  REQUIRE_NODE (self, msg, node);
  REQUIRE_VFUNC (msg, node, get_models_json);

  respond_node_json (msg, NODE_IFACE (node)->get_models_json (node), "models");
}

static void
handle_topology (ExoHttpServer     *self,
                 SoupServerMessage *msg,
                 const guint8      *body,
                 gsize              body_len)
{
  REQUIRE_NODE (self, msg, node);
  REQUIRE_VFUNC (msg, node, get_topology_json);

  respond_node_json (msg, NODE_IFACE (node)->get_topology_json (node), "topology");
}

/* The model a request without "model" gets: the first of the node's models
 * (OpenAI's {"data": [{"id": …}]}), else "default". */
static char *
default_model (ExoNodeRole *node)
{
  g_autofree char *json = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonNode *data;

  if (NODE_IFACE (node)->get_models_json != NULL)
    json = NODE_IFACE (node)->get_models_json (node);
  if (json != NULL)
    root = exo_http_parse_json (json, strlen (json), NULL);
  if (root != NULL && JSON_NODE_HOLDS_OBJECT (root) &&
      (data = json_object_get_member (json_node_get_object (root), "data")) != NULL &&
      JSON_NODE_HOLDS_ARRAY (data) && json_array_get_length (json_node_get_array (data)) > 0)
    {
      JsonNode *first = json_array_get_element (json_node_get_array (data), 0);
      JsonNode *id = JSON_NODE_HOLDS_OBJECT (first)
                     ? json_object_get_member (json_node_get_object (first), "id") : NULL;

      if (id != NULL && JSON_NODE_HOLDS_VALUE (id) && json_node_get_value_type (id) == G_TYPE_STRING)
        return g_strdup (json_node_get_string (id));
    }
  return g_strdup ("default");
}

static void
builder_add_chat_header (JsonBuilder *builder,
                         Request     *req,
                         const char  *object)
{
  g_autofree char *id = g_strdup_printf ("chatcmpl-%s", req->request_id);

  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, id);
  json_builder_set_member_name (builder, "object");
  json_builder_add_string_value (builder, object);
  json_builder_set_member_name (builder, "created");
  json_builder_add_int_value (builder, req->created);
  json_builder_set_member_name (builder, "model");
  json_builder_add_string_value (builder, req->model);
}

static void
builder_add_usage (JsonBuilder *builder,
                   Request     *req)
{
  /* The node does not say how many tokens the prompt had. */
  json_builder_set_member_name (builder, "usage");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "prompt_tokens");
  json_builder_add_int_value (builder, 0);
  json_builder_set_member_name (builder, "completion_tokens");
  json_builder_add_int_value (builder, req->n_tokens);
  json_builder_set_member_name (builder, "total_tokens");
  json_builder_add_int_value (builder, req->n_tokens);
  json_builder_end_object (builder);
}

/* data: {chat.completion.chunk} */
static void
stream_chunk (Request    *req,
              const char *content,          /* nullable: no content */
              const char *finish_reason)    /* nullable */
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *json = NULL;
  g_autofree char *event = NULL;

  json_builder_begin_object (builder);
  builder_add_chat_header (builder, req, "chat.completion.chunk");
  json_builder_set_member_name (builder, "choices");
  json_builder_begin_array (builder);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "index");
  json_builder_add_int_value (builder, 0);
  json_builder_set_member_name (builder, "delta");
  json_builder_begin_object (builder);
  if (!req->sent_role)
    {
      json_builder_set_member_name (builder, "role");
      json_builder_add_string_value (builder, "assistant");
      req->sent_role = TRUE;
    }
  if (content != NULL)
    {
      json_builder_set_member_name (builder, "content");
      json_builder_add_string_value (builder, content);
    }
  json_builder_end_object (builder);
  json_builder_set_member_name (builder, "finish_reason");
  if (finish_reason != NULL)
    json_builder_add_string_value (builder, finish_reason);
  else
    json_builder_add_null_value (builder);
  json_builder_end_object (builder);
  json_builder_end_array (builder);
  if (finish_reason != NULL)
    builder_add_usage (builder, req);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json = exo_http_node_to_string (root);
  event = g_strdup_printf ("data: %s\n\n", json);
  stream_append (req, event);
}

static void
chat_token_cb (const char   *request_id,
               const gint32 *tokens,
               gsize         n_tokens,
               const char   *text,
               gboolean      is_finished,
               gpointer      user_data)
{
  Request *req = user_data;
  g_autofree char *valid = g_utf8_make_valid (text != NULL ? text : "", -1);

  req->n_tokens += n_tokens;
  g_string_append (req->text, valid);
  if (!request_can_answer (req))
    return;
  request_restart_timer (req);
  if (req->stream && (n_tokens > 0 || valid[0] != '\0'))
    stream_chunk (req, valid, NULL);
}

static void
chat_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(Request) req = user_data;
  ExoNodeRole *node = EXO_NODE_ROLE (source);
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NODE_IFACE (node)->chat_finish (node, result, &error);
  g_autoptr(JsonBuilder) builder = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *content = NULL;

  if (error != NULL)
    {
      request_fail_error (req, error);
      return;
    }
  if (!request_can_answer (req))
    return;

  if (req->stream)
    {
      stream_chunk (req, NULL, "stop");
      stream_append (req, "data: [DONE]\n\n");
      stream_end (req);
      return;
    }

  content = g_utf8_make_valid (text != NULL ? text : req->text->str, -1);
  builder = json_builder_new_immutable ();
  json_builder_begin_object (builder);
  builder_add_chat_header (builder, req, "chat.completion");
  json_builder_set_member_name (builder, "choices");
  json_builder_begin_array (builder);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "index");
  json_builder_add_int_value (builder, 0);
  json_builder_set_member_name (builder, "message");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "role");
  json_builder_add_string_value (builder, "assistant");
  json_builder_set_member_name (builder, "content");
  json_builder_add_string_value (builder, content);
  json_builder_end_object (builder);
  json_builder_set_member_name (builder, "finish_reason");
  json_builder_add_string_value (builder, "stop");
  json_builder_end_object (builder);
  json_builder_end_array (builder);
  builder_add_usage (builder, req);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  request_answer_json (req, SOUP_STATUS_OK, root);
}

static void
handle_chat (ExoHttpServer     *self,
             SoupServerMessage *msg,
             const guint8      *body,
             gsize              body_len)
{
  g_autoptr(ExoHttpChatRequest) chat = NULL;
  g_autoptr(GError) error = NULL;
  Request *req;

  /* Validate before looking for the node: a bad request is bad anyway. */
  chat = exo_http_chat_request_parse ((const char *) body, body_len, &error);
  if (chat == NULL)
    {
      respond_bad_request (msg, error);
      return;
    }

  {
    REQUIRE_NODE (self, msg, node);
    REQUIRE_VFUNC (msg, node, chat_async);

    req = request_new (self, msg, node, REQUEST_CHAT);
    req->stream = chat->stream;
    req->request_id = g_uuid_string_random ();
    req->model = chat->model != NULL ? g_strdup (chat->model) : default_model (node);
    req->text = g_string_new (NULL);
    req->created = g_get_real_time () / G_USEC_PER_SEC;

    if (chat->stream)
      {
        SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

        self->n_streams++;
        soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
        soup_message_headers_set_content_type (headers, "text/event-stream", NULL);
        soup_message_headers_replace (headers, "Cache-Control", "no-cache");
        soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
      }

    NODE_IFACE (node)->chat_async (node, req->model, chat->prompt, req->request_id, chat->params,
                                   chat_token_cb, req, req->cancellable, chat_done, req);
  }
}

/* --- /metrics ------------------------------------------------------------ */

static void
append_label_value (GString    *out,
                    const char *value)
{
  for (const char *p = value != NULL ? value : ""; *p != '\0'; p++)
    {
      switch (*p)
        {
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        default:
          g_string_append_c (out, *p);
        }
    }
}

static void
append_family (GString    *out,
               const char *name,
               const char *type,
               const char *help)
{
  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
append_sample_u64 (GString    *out,
                   const char *name,
                   const char *id,
                   guint64     value)
{
  g_string_append_printf (out, "%s{id=\"", name);
  append_label_value (out, id);
  g_string_append_printf (out, "\"} %" G_GUINT64_FORMAT "\n", value);
}

static gboolean
variant_to_double (GVariant *value,
                   double   *out)
{
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
    *out = g_variant_get_boolean (value) ? 1 : 0;
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_BYTE))
    *out = g_variant_get_byte (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT16))
    *out = g_variant_get_int16 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT16))
    *out = g_variant_get_uint16 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
    *out = g_variant_get_int32 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    *out = g_variant_get_uint32 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
    *out = (double) g_variant_get_int64 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    *out = (double) g_variant_get_uint64 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_DOUBLE))
    *out = g_variant_get_double (value);
  else
    return FALSE;
  return TRUE;
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static int
compare_resource_ids (gconstpointer a,
                      gconstpointer b)
{
  ExoResource *ra = *(ExoResource * const *) a;
  ExoResource *rb = *(ExoResource * const *) b;

  return g_strcmp0 (exo_resource_get_id (ra), exo_resource_get_id (rb));
}

static char *
render_metrics (ExoHttpServer *self)
{
  GString *out = g_string_new (NULL);
  g_autoptr(GPtrArray) all = exo_registry_list (exo_registry_get_default ());
  g_autoptr(GPtrArray) pools = g_ptr_array_new ();
  g_autoptr(GPtrArray) keys = NULL;
  ExoPoolStats *stats;
  guint n_pools;

  /* One sample per id: several live resources may share one (tests). */
  g_ptr_array_sort (all, compare_resource_ids);
  for (guint i = 1; i < all->len;)
    {
      if (g_strcmp0 (exo_resource_get_id (g_ptr_array_index (all, i - 1)),
                     exo_resource_get_id (g_ptr_array_index (all, i))) == 0)
        g_ptr_array_remove_index (all, i);
      else
        i++;
    }

  append_family (out, "exo_resource_state", "gauge",
                 "The lifecycle state of each resource (one sample, value 1).");
  for (guint i = 0; i < all->len; i++)
    {
      ExoResource *resource = g_ptr_array_index (all, i);

      g_string_append (out, "exo_resource_state{id=\"");
      append_label_value (out, exo_resource_get_id (resource));
      g_string_append (out, "\",type=\"");
      append_label_value (out, exo_resource_get_resource_type (resource));
      g_string_append (out, "\",state=\"");
      append_label_value (out, exo_resource_state_to_string (exo_resource_get_state (resource)));
      g_string_append (out, "\"} 1\n");
      if (EXO_IS_RESOURCE_POOL (resource))
        g_ptr_array_add (pools, resource);
    }

  append_family (out, "exo_resource_errors_total", "counter",
                 "Errors each resource has had.");
  for (guint i = 0; i < all->len; i++)
    {
      ExoResource *resource = g_ptr_array_index (all, i);
      append_sample_u64 (out, "exo_resource_errors_total", exo_resource_get_id (resource),
                         exo_resource_get_error_count (resource));
    }

  append_family (out, "exo_resource_metric", "gauge",
                 "The numeric metrics each resource reports (see exoctl metrics).");
  for (guint i = 0; i < all->len; i++)
    {
      ExoResource *resource = g_ptr_array_index (all, i);
      g_autoptr(GVariant) metrics = exo_resource_get_metrics (resource);
      GVariantIter iter;
      const char *name;
      GVariant *value;

      if (metrics == NULL || !g_variant_is_of_type (metrics, G_VARIANT_TYPE_VARDICT))
        continue;
      g_variant_iter_init (&iter, metrics);
      while (g_variant_iter_loop (&iter, "{&sv}", &name, &value))
        {
          double v;

          if (!variant_to_double (value, &v))
            continue;
          g_string_append (out, "exo_resource_metric{id=\"");
          append_label_value (out, exo_resource_get_id (resource));
          g_string_append (out, "\",name=\"");
          append_label_value (out, name);
          g_string_append (out, "\"} ");
          {
            char buf[G_ASCII_DTOSTR_BUF_SIZE];
            g_string_append (out, g_ascii_dtostr (buf, sizeof buf, v));
          }
          g_string_append_c (out, '\n');
        }
    }

  n_pools = pools->len;
  stats = g_new0 (ExoPoolStats, MAX (n_pools, 1));
  for (guint i = 0; i < n_pools; i++)
    exo_resource_pool_get_stats (EXO_RESOURCE_POOL (g_ptr_array_index (pools, i)), &stats[i]);

#define POOL_FAMILY(metric, type, help, field)                                     \
  append_family (out, metric, type, help);                                         \
  for (guint i = 0; i < n_pools; i++)                                              \
    append_sample_u64 (out, metric,                                                \
                       exo_resource_get_id (g_ptr_array_index (pools, i)),         \
                       (guint64) stats[i].field);

  POOL_FAMILY ("exo_pool_size", "gauge", "Resources in each pool.", size)
  POOL_FAMILY ("exo_pool_idle", "gauge", "Idle resources in each pool.", idle)
  POOL_FAMILY ("exo_pool_in_use", "gauge", "Resources lent out by each pool.", in_use)
  POOL_FAMILY ("exo_pool_waiting", "gauge", "Callers waiting for a resource of each pool.", waiting)
  POOL_FAMILY ("exo_pool_max_size", "gauge", "The size limit of each pool.", max_size)
  POOL_FAMILY ("exo_pool_acquired_total", "counter", "Successful acquisitions.", acquired)
  POOL_FAMILY ("exo_pool_timeouts_total", "counter", "Acquisitions that timed out.", timeouts)
  POOL_FAMILY ("exo_pool_created_total", "counter", "Resources made.", created)
  POOL_FAMILY ("exo_pool_destroyed_total", "counter", "Resources retired.", destroyed)
  POOL_FAMILY ("exo_pool_leaks_total", "counter", "Leases held past the leak threshold.", leaks)
  POOL_FAMILY ("exo_pool_create_failures_total", "counter", "Failed creations.", create_failures)
  POOL_FAMILY ("exo_pool_wait_time_mean_us", "gauge", "Mean wait of served acquisitions (µs).",
               wait_time_mean_us)
#undef POOL_FAMILY
  g_free (stats);

  append_family (out, "exo_http_requests_total", "counter",
                 "HTTP requests answered by this server, by path and status code.");
  keys = g_ptr_array_new ();
  {
    GHashTableIter iter;
    gpointer key;

    g_hash_table_iter_init (&iter, self->counts);
    while (g_hash_table_iter_next (&iter, &key, NULL))
      g_ptr_array_add (keys, key);
  }
  g_ptr_array_sort (keys, compare_strings);
  for (guint i = 0; i < keys->len; i++)
    {
      const char *key = g_ptr_array_index (keys, i);
      const char *sep = strchr (key, '\n');
      guint64 *count = g_hash_table_lookup (self->counts, key);
      g_autofree char *path = g_strndup (key, sep - key);

      g_string_append (out, "exo_http_requests_total{path=\"");
      append_label_value (out, path);
      g_string_append_printf (out, "\",code=\"%s\"} %" G_GUINT64_FORMAT "\n", sep + 1, *count);
    }

  append_family (out, "exo_http_requests_in_flight", "gauge",
                 "Requests waiting for the node.");
  g_string_append_printf (out, "exo_http_requests_in_flight %u\n", g_hash_table_size (self->requests));

  return g_string_free (out, FALSE);
}

static void
handle_metrics (ExoHttpServer     *self,
                SoupServerMessage *msg,
                const guint8      *body,
                gsize              body_len)
{
  respond_string (msg, SOUP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
                  render_metrics (self));
}

/* --- ExoServer ----------------------------------------------------------- */

static guint16
exo_http_server_get_port (ExoServer *server)
{
  ExoHttpServer *self = EXO_HTTP_SERVER (server);

  return self->bound_port != 0 ? self->bound_port : (guint16) self->port;
}

static const char *
exo_http_server_get_listen_address (ExoServer *server)
{
  return EXO_HTTP_SERVER (server)->listen_address;
}

static void
exo_http_server_server_init (ExoServerInterface *iface)
{
  iface->get_port = exo_http_server_get_port;
  iface->get_listen_address = exo_http_server_get_listen_address;
}

/* --- ExoResource --------------------------------------------------------- */

/* Counters of earlier listens are kept: the metrics count since start. */
static void
connection_stats (ExoHttpServer       *self,
                  HttpConnectionStats *out)
{
  HttpConnectionStats now = { 0 };

  *out = self->last_connection_stats;
  if (self->connections == NULL)
    {
      out->open = 0;
      out->accept_paused = FALSE;
      return;
    }
  http_connections_get_stats (self->connections, &now);
  out->accepted += now.accepted;
  out->rejected += now.rejected;
  out->header_timeouts += now.header_timeouts;
  out->idle_timeouts += now.idle_timeouts;
  out->closed_idle += now.closed_idle;
  out->client_gone += now.client_gone;
  out->accept_pauses += now.accept_pauses;
  out->open = now.open;
  out->accept_paused = now.accept_paused;
}

static void
stop_listening (ExoHttpServer *self)
{
  GHashTableIter iter;
  gpointer key;

  exo_http_auth_unconfigure (self->auth);
  if (self->server == NULL)
    return;

  /* Stop the node calls in flight; their answers go nowhere. */
  g_hash_table_iter_init (&iter, self->requests);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_cancellable_cancel (((Request *) key)->cancellable);

  connection_stats (self, &self->last_connection_stats);
  self->last_connection_stats.open = 0;
  self->last_connection_stats.accept_paused = FALSE;
  g_clear_pointer (&self->connections, http_connections_free);
  g_signal_handlers_disconnect_by_data (self->server, self);
  soup_server_disconnect (self->server);
  g_clear_object (&self->server);
  if (self->keepalive_socket != NULL)
    g_socket_close (self->keepalive_socket, NULL);
  g_clear_object (&self->keepalive_socket);
  if (self->keepalive_peer != NULL)
    g_socket_close (self->keepalive_peer, NULL);
  g_clear_object (&self->keepalive_peer);
  self->bound_port = 0;
}

/* "Address already in use" from GIO's "Error binding to address …: Address already in use". */
static const char *
short_reason (const GError *error)
{
  const char *colon = g_strrstr (error->message, ": ");

  return colon != NULL ? colon + 2 : error->message;
}

/* libsoup 3.2 keeps connections alive only while it has a listener of its
 * own.  It takes a connected socket as one: one end of a socket pair whose
 * other end is never written to, so it never accepts anything (and nobody
 * can connect to it). */
static gboolean
add_keepalive_listener (ExoHttpServer *self)
{
  int fds[2];
  g_autoptr(GSocket) mine = NULL;
  g_autoptr(GSocket) peer = NULL;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
    return FALSE;
  mine = g_socket_new_from_fd (fds[0], NULL);
  peer = g_socket_new_from_fd (fds[1], NULL);
  if (mine == NULL || peer == NULL)
    {
      if (mine == NULL)
        close (fds[0]);
      if (peer == NULL)
        close (fds[1]);
      return FALSE;
    }
  if (!soup_server_listen_socket (self->server, mine, 0, NULL))
    return FALSE;
  self->keepalive_socket = g_steal_pointer (&mine);
  self->keepalive_peer = g_steal_pointer (&peer);
  return TRUE;
}

/* The TCP listener is ours (http-connections.c): libsoup 3.2's own leaks
 * the GSocket of every connection and never closes a kept-alive
 * connection that the client closed; each connection is handed to libsoup
 * with soup_server_accept_iostream() and closed by us. */
static void
exo_http_server_do_initialize (ExoResource *resource,
                               GTask       *task)
{
  ExoHttpServer *self = EXO_HTTP_SERVER (resource);
  HttpConnectionLimits limits = {
    .max_connections = self->max_connections,
    .header_timeout_ms = self->header_timeout_ms,
    .idle_timeout_ms = self->idle_timeout_ms,
  };
  g_autoptr(GInetAddress) inet = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoClusterKey) key = NULL;
  g_autofree char *where = NULL;

  stop_listening (self);

  key = exo_cluster_key_get_default (&error);
  if (key == NULL)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                               "%s", error->message);
      return;
    }
  if (!exo_http_auth_configure (self->auth, exo_resource_get_id (resource), key,
                                (const char * const *) self->api_keys, self->api_key_file,
                                &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  inet = g_inet_address_new_from_string (self->listen_address != NULL ? self->listen_address : "");
  if (inet == NULL)
    {
      stop_listening (self);
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                               "listen-address '%s' is not an IP address",
                               self->listen_address != NULL ? self->listen_address : "");
      return;
    }
  where = g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6
          ? g_strdup_printf ("[%s]:%u", self->listen_address, self->port)
          : g_strdup_printf ("%s:%u", self->listen_address, self->port);
  address = g_inet_socket_address_new (inet, (guint16) self->port);

  self->server = soup_server_new ("server-header", "exo-node ", NULL);
  soup_server_add_early_handler (self->server, NULL, early_handler, self, NULL);
  soup_server_add_handler (self->server, NULL, server_handler, self, NULL);
  g_signal_connect (self->server, "request-finished", G_CALLBACK (request_finished_cb), self);
  g_signal_connect (self->server, "request-aborted", G_CALLBACK (request_finished_cb), self);
  add_keepalive_listener (self);

  self->connections = http_connections_new (self->server, &limits);
  if (!http_connections_listen (self->connections, address, &self->bound_port, &error))
    {
      stop_listening (self);
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                               "cannot listen on %s: %s", where, short_reason (error));
      return;
    }

  g_task_return_boolean (task, TRUE);
}

static void
exo_http_server_do_cleanup (ExoResource *resource,
                            GTask       *task)
{
  stop_listening (EXO_HTTP_SERVER (resource));
  g_task_return_boolean (task, TRUE);
}

static void
exo_http_server_collect_metrics (ExoResource  *resource,
                                 GVariantDict *metrics)
{
  ExoHttpServer *self = EXO_HTTP_SERVER (resource);

  EXO_RESOURCE_CLASS (exo_http_server_parent_class)->collect_metrics (resource, metrics);
  g_variant_dict_insert (metrics, "port", "u", (guint) exo_http_server_get_port (EXO_SERVER (self)));
  g_variant_dict_insert (metrics, "listen-address", "s",
                         self->listen_address != NULL ? self->listen_address : "");
  g_variant_dict_insert (metrics, "requests", "t", self->n_requests);
  g_variant_dict_insert (metrics, "requests-in-flight", "u", g_hash_table_size (self->requests));
  g_variant_dict_insert (metrics, "client-errors", "t", self->n_client_errors);
  g_variant_dict_insert (metrics, "server-errors", "t", self->n_server_errors);
  g_variant_dict_insert (metrics, "streams", "t", self->n_streams);
  g_variant_dict_insert (metrics, "request-timeouts", "t", self->n_timeouts);
  {
    HttpConnectionStats c;

    connection_stats (self, &c);
    g_variant_dict_insert (metrics, "max-connections", "u", self->max_connections);
    g_variant_dict_insert (metrics, "connections", "t", c.accepted);
    g_variant_dict_insert (metrics, "connections-open", "u", c.open);
    g_variant_dict_insert (metrics, "connections-rejected", "t", c.rejected);
    g_variant_dict_insert (metrics, "connections-closed-idle", "t", c.closed_idle);
    g_variant_dict_insert (metrics, "connections-client-gone", "t", c.client_gone);
    g_variant_dict_insert (metrics, "header-timeouts", "t", c.header_timeouts);
    g_variant_dict_insert (metrics, "idle-timeouts", "t", c.idle_timeouts);
    g_variant_dict_insert (metrics, "accept-pauses", "t", c.accept_pauses);
    g_variant_dict_insert (metrics, "accept-paused", "b", c.accept_paused);
  }
  g_variant_dict_insert (metrics, "duplicate-peer-calls", "t", self->n_duplicate_calls);
  g_variant_dict_insert (metrics, "keep-alive", "b", self->keepalive_socket != NULL);
  exo_http_auth_collect_metrics (self->auth, metrics);
}

/* --- GObject ------------------------------------------------------------- */

static void
exo_http_server_dispose (GObject *object)
{
  stop_listening (EXO_HTTP_SERVER (object));

  G_OBJECT_CLASS (exo_http_server_parent_class)->dispose (object);
}

static void
exo_http_server_finalize (GObject *object)
{
  ExoHttpServer *self = EXO_HTTP_SERVER (object);

  g_clear_pointer (&self->listen_address, g_free);
  g_clear_pointer (&self->node_id, g_free);
  g_clear_pointer (&self->requests, g_hash_table_unref);
  g_clear_pointer (&self->seen_calls, g_hash_table_unref);
  g_queue_clear_full (&self->seen_order, g_free);
  g_clear_pointer (&self->counts, g_hash_table_unref);
  g_clear_pointer (&self->api_keys, g_strfreev);
  g_clear_pointer (&self->api_key_file, g_free);
  g_clear_pointer (&self->auth, exo_http_auth_free);

  G_OBJECT_CLASS (exo_http_server_parent_class)->finalize (object);
}

static void
exo_http_server_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  ExoHttpServer *self = EXO_HTTP_SERVER (object);

  switch (prop_id)
    {
    case PROP_PORT:
      g_value_set_uint (value, self->port);
      break;
    case PROP_LISTEN_ADDRESS:
      g_value_set_string (value, self->listen_address);
      break;
    case PROP_NODE:
      g_value_set_string (value, self->node_id);
      break;
    case PROP_MAX_BODY_BYTES:
      g_value_set_uint64 (value, self->max_body_bytes);
      break;
    case PROP_MAX_JSON_BYTES:
      g_value_set_uint64 (value, self->max_json_bytes);
      break;
    case PROP_REQUEST_TIMEOUT_MS:
      g_value_set_uint (value, self->request_timeout_ms);
      break;
    case PROP_API_KEYS:
      g_value_set_boxed (value, self->api_keys);
      break;
    case PROP_API_KEY_FILE:
      g_value_set_string (value, self->api_key_file);
      break;
    case PROP_MAX_CONNECTIONS:
      g_value_set_uint (value, self->max_connections);
      break;
    case PROP_HEADER_TIMEOUT_MS:
      g_value_set_uint (value, self->header_timeout_ms);
      break;
    case PROP_IDLE_TIMEOUT_MS:
      g_value_set_uint (value, self->idle_timeout_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static gboolean
set_string (char       **field,
            const char  *value)
{
  if (g_strcmp0 (*field, value) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (value);
  return TRUE;
}

static void
exo_http_server_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  ExoHttpServer *self = EXO_HTTP_SERVER (object);
  gboolean changed = FALSE;

  switch (prop_id)
    {
    case PROP_PORT:
      changed = self->port != g_value_get_uint (value);
      self->port = g_value_get_uint (value);
      break;
    case PROP_LISTEN_ADDRESS:
      changed = set_string (&self->listen_address, g_value_get_string (value));
      break;
    case PROP_NODE:
      changed = set_string (&self->node_id, g_value_get_string (value));
      break;
    case PROP_MAX_BODY_BYTES:
      changed = self->max_body_bytes != g_value_get_uint64 (value);
      self->max_body_bytes = g_value_get_uint64 (value);
      break;
    case PROP_MAX_JSON_BYTES:
      changed = self->max_json_bytes != g_value_get_uint64 (value);
      self->max_json_bytes = g_value_get_uint64 (value);
      break;
    case PROP_REQUEST_TIMEOUT_MS:
      changed = self->request_timeout_ms != g_value_get_uint (value);
      self->request_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_API_KEYS:
      {
        const char * const *keys = g_value_get_boxed (value);

        changed = !((self->api_keys == NULL || self->api_keys[0] == NULL) &&
                    (keys == NULL || keys[0] == NULL)) &&
                  !(self->api_keys != NULL && keys != NULL &&
                    g_strv_equal ((const char * const *) self->api_keys, keys));
        g_strfreev (self->api_keys);
        self->api_keys = g_strdupv ((char **) keys);
      }
      break;
    case PROP_API_KEY_FILE:
      changed = set_string (&self->api_key_file, g_value_get_string (value));
      break;
    case PROP_MAX_CONNECTIONS:
      changed = self->max_connections != g_value_get_uint (value);
      self->max_connections = g_value_get_uint (value);
      break;
    case PROP_HEADER_TIMEOUT_MS:
      changed = self->header_timeout_ms != g_value_get_uint (value);
      self->header_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_IDLE_TIMEOUT_MS:
      changed = self->idle_timeout_ms != g_value_get_uint (value);
      self->idle_timeout_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  if (changed)
    g_object_notify_by_pspec (object, pspec);
}

static void
exo_http_server_class_init (ExoHttpServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->dispose = exo_http_server_dispose;
  object_class->finalize = exo_http_server_finalize;
  object_class->get_property = exo_http_server_get_property;
  object_class->set_property = exo_http_server_set_property;

  resource_class->do_initialize = exo_http_server_do_initialize;
  resource_class->do_cleanup = exo_http_server_do_cleanup;
  resource_class->collect_metrics = exo_http_server_collect_metrics;
  exo_resource_class_set_resource_type (resource_class, "http-server");

  /**
   * ExoHttpServer:port:
   *
   * The TCP port; 0 picks a free one (see exo_server_get_port()).  A change
   * takes effect at the next initialize.
   */
  properties[PROP_PORT] =
    g_param_spec_uint ("port", NULL, "TCP port (0: any free port)", 0, 65535, DEFAULT_PORT,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoHttpServer:listen-address:
   *
   * The IP address to listen on.
   */
  properties[PROP_LISTEN_ADDRESS] =
    g_param_spec_string ("listen-address", NULL, "IP address to listen on",
                         DEFAULT_LISTEN_ADDRESS,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoHttpServer:node:
   *
   * The id of the #ExoNodeRole resource, looked up at each request.
   */
  properties[PROP_NODE] =
    g_param_spec_string ("node", NULL, "Id of the node resource", DEFAULT_NODE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoHttpServer:max-body-bytes:
   *
   * The largest request body (tensors); bigger ones get 413.
   */
  properties[PROP_MAX_BODY_BYTES] =
    g_param_spec_uint64 ("max-body-bytes", NULL, "Largest request body (tensors)",
                         1024, G_MAXUINT32, DEFAULT_MAX_BODY_BYTES,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoHttpServer:max-json-bytes:
   *
   * The largest JSON request body; bigger ones get 413.
   */
  properties[PROP_MAX_JSON_BYTES] =
    g_param_spec_uint64 ("max-json-bytes", NULL, "Largest JSON request body",
                         1024, G_MAXUINT32, DEFAULT_MAX_JSON_BYTES,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoHttpServer:request-timeout-ms:
   *
   * A request waiting for the node with no progress (no answer, no token)
   * for this long gets 504 (or an SSE `error` event); 0 = no limit.
   */
  properties[PROP_REQUEST_TIMEOUT_MS] =
    g_param_spec_uint ("request-timeout-ms", NULL, "No-progress limit of a request (0: none)",
                       0, G_MAXUINT, DEFAULT_REQUEST_TIMEOUT_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoHttpServer:api-keys:
   *
   * API keys of the user API: with any (here or in #ExoHttpServer:api-key-file),
   * every path but `/healthcheck` and the peer RPC wants
   * `Authorization: Bearer <key>`; without, the user API is open.  Read at
   * initialize.  Keys in a config file are as secret as the file: prefer
   * api-key-file.
   */
  properties[PROP_API_KEYS] =
    g_param_spec_boxed ("api-keys", NULL, "API keys of the user API (empty: open)",
                        G_TYPE_STRV,
                        G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoHttpServer:api-key-file:
   *
   * A file of API keys, one per line (`#` comments), mode 0600 or 0400;
   * see #ExoHttpServer:api-keys.  Read at initialize.
   */
  properties[PROP_API_KEY_FILE] =
    g_param_spec_string ("api-key-file", NULL, "File of API keys of the user API", NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoHttpServer:max-connections:
   *
   * The most connections open at once; past it a new client gets 503 with
   * `Retry-After` and is closed.  Takes effect at the next initialize.
   */
  properties[PROP_MAX_CONNECTIONS] =
    g_param_spec_uint ("max-connections", NULL, "Most connections open at once",
                       1, 1000000, DEFAULT_MAX_CONNECTIONS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoHttpServer:header-timeout-ms:
   *
   * A client must send a complete request head within this long of
   * connecting or of starting a request, and may not stall a body longer;
   * else its connection is closed.
   */
  properties[PROP_HEADER_TIMEOUT_MS] =
    g_param_spec_uint ("header-timeout-ms", NULL, "Limit for a request head (and a body stall)",
                       100, 3600000, DEFAULT_HEADER_TIMEOUT_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoHttpServer:idle-timeout-ms:
   *
   * A kept-alive connection with no request for this long is closed.
   */
  properties[PROP_IDLE_TIMEOUT_MS] =
    g_param_spec_uint ("idle-timeout-ms", NULL, "Limit for a kept-alive connection between requests",
                       100, 3600000, DEFAULT_IDLE_TIMEOUT_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
exo_http_server_init (ExoHttpServer *self)
{
  self->port = DEFAULT_PORT;
  self->listen_address = g_strdup (DEFAULT_LISTEN_ADDRESS);
  self->node_id = g_strdup (DEFAULT_NODE);
  self->max_body_bytes = DEFAULT_MAX_BODY_BYTES;
  self->max_json_bytes = DEFAULT_MAX_JSON_BYTES;
  self->request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_MS;
  self->max_connections = DEFAULT_MAX_CONNECTIONS;
  self->header_timeout_ms = DEFAULT_HEADER_TIMEOUT_MS;
  self->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
  self->requests = g_hash_table_new (NULL, NULL);
  self->seen_calls = g_hash_table_new (g_str_hash, g_str_equal);
  g_queue_init (&self->seen_order);
  self->counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->auth = exo_http_auth_new ();
}

/* --- plugin -------------------------------------------------------------- */

static void
http_server_register (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "http-server", EXO_TYPE_HTTP_SERVER);
  exo_plugin_registrar_add_type (registrar, "http-peer", EXO_TYPE_HTTP_PEER);
}

EXO_PLUGIN_DEFINE ("http-server", "1.0.0",
                   "Peer RPC and the OpenAI-compatible user API over HTTP (libsoup), and HTTP peer handles",
                   http_server_register)
