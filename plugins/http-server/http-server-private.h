/* http-server-private.h: what the files of ExoHttpServer share (the map
 * of the files is at the top of http-server.c): the object's structure,
 * the record of a request waiting for the node (Request), the check a
 * handler starts with (REQUIRE_NODE) and the calls between the files.
 * The node is called through exo_node_role_*() (libexo) only; its typed
 * answers become JSON in http-node-json.c.  Not installed.  The type
 * itself (G_DECLARE_FINAL_TYPE) is in http-common.h, next to
 * ExoHttpPeer's, for the plugin entry; the wire format, the limits and
 * the header names the peer handle shares are there too.
 *
 * Rules: the same in every file of the server: everything runs in the
 * GMainContext that was thread-default at initialize (the daemon's main
 * thread): libsoup's handlers and signals, the node's callbacks, the
 * request timers.  No threads, no locks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "http-common.h"
#include "http-auth.h"
#include "http-connections.h"
#include "http-stream-frame.h"

G_BEGIN_DECLS

#define NODE_NOT_READY             "node not ready"

/* http-metrics.c: the requests by route and code and the latency
 * histograms of one server. */
typedef struct _HttpMetrics HttpMetrics;

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

  gboolean     peer_stream;     /* /peer/v1/stream is served (setting peer-stream) */
  guint        peer_stream_keepalive_ms; /* its pings (in whole seconds) */

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
  GHashTable  *peer_streams;    /* StreamConn* set (http-stream-server.c) */
  GHashTable  *stream_calls;    /* StreamCall* set: their node calls in flight */
  GSource     *stream_watchdog; /* while streams are open: closes the silent ones */

  /* statistics */
  HttpMetrics *metrics;         /* http-metrics.c */
  guint64      n_requests;
  guint64      n_client_errors;
  guint64      n_server_errors;
  guint64      n_streams;
  guint64      n_timeouts;
  guint64      n_duplicate_calls;
  HttpConnectionStats last_connection_stats; /* kept across cleanup */
  guint64      n_stream_opens;
  guint64      n_stream_frames;
  guint64      n_stream_rejected;            /* upgrades refused at the limit */
  guint64      n_stream_refused[EXO_STREAM_N_REFUSED];
  gint64       stream_logged_at[EXO_STREAM_N_REFUSED];
  guint64      stream_suppressed[EXO_STREAM_N_REFUSED];
  guint64      n_stream_timed_out;           /* closed: no answer to pings */
  gint64       stream_timeout_logged_at;
  guint64      stream_timeout_suppressed;
};

/* --- http-routes.c: answers ------------------------------------------------ */

/* Sets the status and the body (@text, taken); signs the answer of a
 * verified peer request. */
void         http_server_respond_string      (SoupServerMessage *msg,
                                              guint              status,
                                              const char        *content_type,
                                              char              *text);
void         http_server_respond_json        (SoupServerMessage *msg,
                                              guint              status,
                                              JsonNode          *node);
/* An error answer, its body as exo_http_error_body() makes it for the
 * request's path: {"error": message} on peer paths, OpenAI's
 * {"error": {"message", "type", "param", "code"}} on the others (the
 * code of @status). */
void         http_server_respond_error       (SoupServerMessage *msg,
                                              guint              status,
                                              const char        *format,
                                              ...) G_GNUC_PRINTF (3, 4);
/* The same with OpenAI's "param" (nullable: the field at fault) and
 * "code" (nullable: the code of @status). */
void         http_server_respond_api_error   (SoupServerMessage *msg,
                                              guint              status,
                                              const char        *param,
                                              const char        *code,
                                              const char        *format,
                                              ...) G_GNUC_PRINTF (5, 6);
/* A synchronous call of the node failed (exo_node_role_*()): 501 when the
 * node lacks the call (G_IO_ERROR_NOT_SUPPORTED), else 500; the error's
 * message. */
void         http_server_respond_node_error  (SoupServerMessage *msg,
                                              const GError      *error);
/* 400 with the error's message (a request http-request.c refused). */
void         http_server_respond_bad_request (SoupServerMessage *msg,
                                              const GError      *error);

/* --- http-routes.c: the node ----------------------------------------------- */

/* The node (setting `node`) when it is there and usable (transfer full),
 * else NULL. */
ExoNodeRole *http_server_lookup_node         (ExoHttpServer     *self);

/* The check a handler starts with: 503 while there is no usable node
 * (and declares @node, unreffed when the handler returns). */
#define REQUIRE_NODE(self, msg, node)                                          \
  g_autoptr(ExoNodeRole) node = http_server_lookup_node (self);                \
  if (node == NULL)                                                            \
    {                                                                          \
      http_server_respond_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,         \
                                 NODE_NOT_READY);                              \
      return;                                                                  \
    }

/* --- http-routes.c: requests waiting for the node --------------------------- */

typedef enum {
  REQUEST_PEER,       /* answered with {} or the node's JSON */
  REQUEST_TOPOLOGY,
  REQUEST_CHAT,
} RequestKind;

/* A request whose answer waits for an asynchronous node call; its message
 * is paused meanwhile.  Reference counted (g_rc_box): http_server_request_new()
 * returns the one reference, which the handler hands to the node call as
 * its callback's user_data; the callback takes it (g_autoptr) and the
 * request is freed when the callback returns.  Everything else holds it
 * without a reference: self->requests, the timer, the message's signal
 * handlers (all undone when it is freed), a chat's token callback (the node
 * calls it only before the finish callback).
 *
 * When the client goes away (the message "finished" or "disconnected"), or
 * the request times out, or the server stops listening, the cancellable is
 * cancelled: the node call ends with an error that is answered nowhere. */
typedef struct
{
  ExoHttpServer     *self;          /* strong */
  SoupServerMessage *msg;           /* strong */
  ExoNodeRole       *node;          /* strong */
  GCancellable      *cancellable;
  GSource           *timer;
  gint64             progress_us;   /* the last progress: the timer's deadline from it */
  gulong             finished_id;
  gulong             disconnected_id;
  RequestKind        kind;
  guint              status_ok;     /* status of a successful peer call */
  guint              msg_gone : 1;  /* finished or disconnected: leave msg alone */
  guint              answered : 1;  /* the response (or the stream's end) is set */
  guint              stream : 1;    /* asked for a stream */
  guint              stream_open : 1; /* its status and headers are set (200) */
  guint              include_usage : 1; /* stream_options.include_usage */
  guint              is_text : 1;   /* POST /v1/completions, not a chat */
  guint              sent_role : 1;
  guint              is_tensor : 1;
  guint              first_token_seen : 1; /* chat: its time to first token is counted */
  guint              from_bos : 1;  /* a completion of "": its text loses a leading space */
  char              *call_id;       /* peer calls: forgotten again if the call fails */
  /* chat and completion (http-user-api.c, http-completions.c) */
  char              *request_id;
  char              *model;
  GString           *text;
  guint              n_tokens;
  gint64             prompt_tokens; /* from the node after the chat; 0 unknown */
  gint64             created;
} Request;

/* Pauses @msg; the request timer starts. */
Request     *http_server_request_new         (ExoHttpServer     *self,
                                              SoupServerMessage *msg,
                                              ExoNodeRole       *node,
                                              RequestKind        kind);
void         http_server_request_unref       (Request           *req);
/* The request made progress (a token): its timer starts again. */
void         http_server_request_restart_timer (Request         *req);
/* Answer (once; nothing when the client is gone) and unpause. */
void         http_server_request_answer_json (Request           *req,
                                              guint              status,
                                              JsonNode          *node);
void         http_server_request_answer_string (Request         *req,
                                                guint            status,
                                                char            *text);
/* The status of @error (429 and 503 with Retry-After) and the error body of the
 * request's path, or an SSE `error` event that ends a stream already
 * open. */
void         http_server_request_fail_error  (Request           *req,
                                              const GError      *error);
/* A streamed answer: 200, text/event-stream, chunked, sent now (once; a
 * stream is opened at its first token, so that an error before it is
 * answered with its own status). */
void         http_server_stream_begin        (Request           *req);
/* A streamed answer (chunked): append @chunk, and end it. */
void         http_server_stream_append       (Request           *req,
                                              const char        *chunk);
void         http_server_stream_end          (Request           *req);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Request, http_server_request_unref)

/* Whether the response may still be written (inline: asked at every token,
 * as it was before the split). */
static inline gboolean
http_server_request_can_answer (Request *req)
{
  return !req->answered && !req->msg_gone;
}

/* --- http-routes.c: dispatch ------------------------------------------------ */

/* libsoup's default early handler (headers read) and default handler (body
 * read) of the server: every path goes through them. */
void         http_server_early_handler       (SoupServer        *server,
                                              SoupServerMessage *msg,
                                              const char        *path,
                                              GHashTable        *query,
                                              gpointer           user_data);
void         http_server_handler             (SoupServer        *server,
                                              SoupServerMessage *msg,
                                              const char        *path,
                                              GHashTable        *query,
                                              gpointer           user_data);
/* The path of the route that serves @path (a static string), or NULL. */
const char  *http_server_route_path          (const char        *path);

/* --- the handlers of the routes --------------------------------------------
 *
 * Called by http_server_handler() once the path, the method, the body's
 * size and (peer paths) the signature were checked; @body (nullable) is
 * the request's body, owned by the message.  A handler answers at once, or
 * makes a Request and answers when the node is done. */

/* http-peer-rpc.c */
void http_server_handle_peer_health   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
void http_server_handle_peer_status   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
void http_server_handle_peer_prompt   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
void http_server_handle_peer_tensor   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
void http_server_handle_peer_result   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
void http_server_handle_peer_topology (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
void http_server_handle_peer_cancel   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
void http_server_handle_peer_failure  (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
/* A prompt or tensor call id seen before (TRUE: counted, answer it as a
 * duplicate); else it is remembered and copied to @out_call_id (NULL when
 * there is no valid one). */
gboolean http_server_call_seen        (ExoHttpServer *self,
                                       const char    *call_id,
                                       char         **out_call_id);
/* The call failed here: its retry must run. */
void http_server_call_forget          (ExoHttpServer *self,
                                       const char    *call_id);
/* http-stream-server.c: the peer stream (GET /peer/v1/stream) */
void http_server_handle_peer_stream   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
/* At listen: the WebSocket handler of the stream's path on @server. */
void http_server_streams_listen       (ExoHttpServer *self);
/* At cleanup: every stream closed, their calls cancelled. */
void http_server_streams_close        (ExoHttpServer *self);
/* peer-stream turned off: every stream closed (their calls go on). */
void http_server_streams_drop         (ExoHttpServer *self);
void http_server_streams_collect_metrics (ExoHttpServer *self,
                                          GVariantDict  *metrics);
void http_server_streams_add_metric_entries (ExoResourceClass *klass);
/* http-user-api.c */
void http_server_handle_chat          (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
void http_server_handle_completion    (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
void http_server_handle_models        (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
void http_server_handle_model         (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
void http_server_handle_topology      (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
void http_server_handle_healthcheck   (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);
/* http-metrics.c */
void http_server_handle_metrics       (ExoHttpServer *, SoupServerMessage *, const guint8 *, gsize);

/* --- http-metrics.c --------------------------------------------------------- */

HttpMetrics *http_metrics_new                (void);
void         http_metrics_free               (HttpMetrics       *metrics);
/* The server's "request-started": the time the request's latency counts
 * from (kept on @msg). */
void         http_server_request_started_cb  (SoupServer        *server,
                                              SoupServerMessage *msg,
                                              ExoHttpServer     *self);
/* The server's "request-finished" and "request-aborted" (as 499): counts
 * the answer by route and status, and its duration by route, and logs the
 * request (http_server_access_log()), once. */
void         http_server_request_finished_cb (SoupServer        *server,
                                              SoupServerMessage *msg,
                                              ExoHttpServer     *self);
void         http_server_request_aborted_cb  (SoupServer        *server,
                                              SoupServerMessage *msg,
                                              ExoHttpServer     *self);
/* @msg's client left before its answer was all given to libsoup (a
 * stream cut, a request that waited for the node): counted as 499 and
 * logged now, unless libsoup's signals did first (once either way). */
/* The status a request's whole answer was given to libsoup with; 0: not
 * (yet) answered whole. */
guint        http_server_answered_status     (SoupServerMessage *msg);
void         http_server_watch_head_cb       (SoupServer        *server,
                                              SoupServerMessage *msg,
                                              ExoHttpServer     *self);
void         http_server_request_client_left (ExoHttpServer     *self,
                                              SoupServerMessage *msg);
/* A chat's token callback got @n_tokens: the first time some come, the
 * chat's time to first token is counted. */
void         http_server_request_observe_tokens (Request         *req,
                                                 gsize            n_tokens);
/* The counters of the connections since start (those of earlier listens
 * included); open and accept_paused are now's. */
void         http_server_connection_stats    (ExoHttpServer       *self,
                                              HttpConnectionStats *out);
/* The server's own entries of ExoResource.collect_metrics (after the
 * parent class's). */
void         http_server_collect_metrics     (ExoHttpServer     *self,
                                              GVariantDict      *metrics);
/* Declares what those keys are (class_init). */
void         http_server_add_metric_entries  (ExoResourceClass  *klass);

/* --- http-access-log.c ------------------------------------------------------ */

/* The access line of @msg (answered, or @client_left before its answer was
 * sent), @seconds after it started (negative: unknown); nothing when the
 * log would drop it. */
void         http_server_access_log          (ExoHttpServer     *self,
                                              SoupServerMessage *msg,
                                              double             seconds,
                                              gboolean           client_left);

G_END_DECLS
