/* http-server.c: the `http-server` plugin — peer RPC and the user API over
 * HTTP/1.1 on libsoup-3.0 (docs/cluster-protocol.md), and the plugin entry.
 *
 * This file owns ExoHttpServer as an object: its properties, the ExoServer
 * interface, initialize and cleanup, dispose and finalize.  One
 * #SoupServer per initialize, with a default early handler and a default
 * handler (http-routes.c) that see every path.  The TCP listener is ours
 * (http-connections.c); libsoup is given a keep-alive listener it never
 * accepts on (add_keepalive_listener()).  Cleanup (dispose, and a new
 * initialize, too) cancels the node calls in flight, closes every
 * connection and drops the SoupServer; the statistics and the auth state
 * (counters, nonces seen) live as long as the object.
 *
 * The files of the server, which share http-server-private.h:
 *   http-server.c       this one: the object, its lifecycle, the listener,
 *                       the plugin entry
 *   http-connections.c  the TCP side: accept, connection limits and
 *                       timeouts, closing connections
 *   http-routes.c       the route table, body limits, dispatch, the
 *                       REQUIRE_NODE check, answers, and the requests
 *                       waiting for the node (Request)
 *   http-peer-rpc.c     the server side of peer RPC: the /peer/v1/ routes
 *   http-stream-server.c the peer stream: the WebSocket upgrade of
 *                       /peer/v1/stream and the calls' frames on it
 *   http-stream-frame.c the stream's frames, built and checked (shared
 *                       with the peer handle)
 *   http-user-api.c     /v1/chat/completions and /v1/completions (whole
 *                       or streamed), /v1/models[/{id}], /v1/topology,
 *                       /healthcheck
 *   http-completions.c  the JSON of their answers (OpenAI's objects)
 *   http-node-json.c    the node's typed models and topology (ExoNodeRole)
 *                       as the JSON of the wire
 *   http-metrics.c      /metrics, request counting and latencies, the
 *                       resource's metrics
 *   http-access-log.c   the access log: a line per request (--verbose)
 *   http-exposition.c   Prometheus' text format, histograms, process_*
 *   http-auth.c         signed peer RPC (both ways) and API keys
 *   http-request.c      request bodies (and a tensor's headers) parsed and
 *                       checked
 *   http-common.c       the wire format the server and the peer handle share
 * The peer handle, ExoHttpPeer (the client side of peer RPC), is
 * http-peer.c and the files http-peer-private.h lists.
 *
 * Thread rules: the server runs in the GMainContext of its initialize (the
 * daemon's main thread): libsoup's handlers and signals, the node's
 * callbacks and every timer; no locks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-server-private.h"

#include "exo-plugin-util.h"

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
#define DEFAULT_PEER_STREAM        TRUE
#define DEFAULT_PEER_STREAM_KEEPALIVE_MS 30000

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
  PROP_PEER_STREAM,
  PROP_PEER_STREAM_KEEPALIVE_MS,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];

static void exo_http_server_server_init (ExoServerInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ExoHttpServer, exo_http_server, EXO_TYPE_MANAGED_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_SERVER,
                                                      exo_http_server_server_init))

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

  /* the peer streams' calls are cancelled like the requests' */
  http_server_streams_close (self);
  http_server_connection_stats (self, &self->last_connection_stats);
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
    .max_body_bytes = MAX (self->max_body_bytes, self->max_json_bytes),
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
  soup_server_add_early_handler (self->server, NULL, http_server_early_handler, self, NULL);
  soup_server_add_handler (self->server, NULL, http_server_handler, self, NULL);
  http_server_streams_listen (self);
  g_signal_connect (self->server, "request-started", G_CALLBACK (http_server_request_started_cb), self);
  g_signal_connect (self->server, "request-started", G_CALLBACK (http_server_watch_head_cb), self);
  g_signal_connect (self->server, "request-finished", G_CALLBACK (http_server_request_finished_cb), self);
  g_signal_connect (self->server, "request-aborted", G_CALLBACK (http_server_request_aborted_cb), self);
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
  EXO_RESOURCE_CLASS (exo_http_server_parent_class)->collect_metrics (resource, metrics);
  http_server_collect_metrics (EXO_HTTP_SERVER (resource), metrics);
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
  g_clear_pointer (&self->stream_calls, g_hash_table_unref);
  g_queue_clear_full (&self->seen_order, g_free);
  g_clear_pointer (&self->metrics, http_metrics_free);
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
    case PROP_PEER_STREAM:
      g_value_set_boolean (value, self->peer_stream);
      break;
    case PROP_PEER_STREAM_KEEPALIVE_MS:
      g_value_set_uint (value, self->peer_stream_keepalive_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
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
      changed = exo_plugin_set_string (&self->listen_address, value);
      break;
    case PROP_NODE:
      changed = exo_plugin_set_string (&self->node_id, value);
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
      changed = exo_plugin_set_string (&self->api_key_file, value);
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
    case PROP_PEER_STREAM:
      changed = self->peer_stream != g_value_get_boolean (value);
      self->peer_stream = g_value_get_boolean (value);
      /* at once: the streams open close, their peers go on over HTTP */
      if (changed && !self->peer_stream)
        http_server_streams_drop (self);
      break;
    case PROP_PEER_STREAM_KEEPALIVE_MS:
      changed = self->peer_stream_keepalive_ms != g_value_get_uint (value);
      self->peer_stream_keepalive_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  if (changed)
    g_object_notify_by_pspec (object, pspec);
}

/* Before initialize (exo-node --check-config and the daemon's start): the
 * API keys and the key file, with the checks initialize makes (the file is
 * read again there, so an edit after the start is seen at a restart). */
static gboolean
exo_http_server_check_settings (ExoResource  *resource,
                                char        **setting,
                                GError      **error)
{
  ExoHttpServer *self = EXO_HTTP_SERVER (resource);
  const char *at_fault = NULL;

  if (exo_http_auth_check_settings ((const char * const *) self->api_keys, self->api_key_file,
                                    &at_fault, error))
    return TRUE;
  *setting = g_strdup (at_fault);
  return FALSE;
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
  http_server_add_metric_entries (resource_class);
  resource_class->check_settings = exo_http_server_check_settings;
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

  /**
   * ExoHttpServer:peer-stream:
   *
   * Whether peers may open the peer stream (`GET /peer/v1/stream`, a
   * WebSocket for tensor, result and cancel calls); false: the upgrade is
   * answered 404, and the peer handles of this process never open one
   * (their calls go over HTTP).  Turned off, the streams open close at
   * once (their calls in flight are re-sent over HTTP and run once).
   */
  properties[PROP_PEER_STREAM] =
    g_param_spec_boolean ("peer-stream", NULL, "Serve and use the peer stream",
                          DEFAULT_PEER_STREAM,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoHttpServer:peer-stream-keepalive-ms:
   *
   * How often the server pings each peer stream.  libsoup pings in whole
   * seconds: the value is rounded up to them (at least 1 s).  A stream
   * whose peer sends nothing, not even the pong, for three such intervals
   * is closed (a peer hung with its socket open).  A change holds for the
   * streams opened after it.
   */
  properties[PROP_PEER_STREAM_KEEPALIVE_MS] =
    g_param_spec_uint ("peer-stream-keepalive-ms", NULL, "Ping interval of a peer stream",
                       100, 3600000, DEFAULT_PEER_STREAM_KEEPALIVE_MS,
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
  self->peer_stream = DEFAULT_PEER_STREAM;
  self->peer_stream_keepalive_ms = DEFAULT_PEER_STREAM_KEEPALIVE_MS;
  self->requests = g_hash_table_new (NULL, NULL);
  self->seen_calls = g_hash_table_new (g_str_hash, g_str_equal);
  g_queue_init (&self->seen_order);
  self->metrics = http_metrics_new ();
  self->auth = exo_http_auth_new ();
}

/* --- plugin -------------------------------------------------------------- */

static void
http_server_register (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "http-server", EXO_TYPE_HTTP_SERVER);
  exo_plugin_registrar_add_type (registrar, "http-peer", EXO_TYPE_HTTP_PEER);
  /* The node plugin makes its peer handles of this type. */
  exo_plugin_registrar_add_role (registrar, EXO_TYPE_PEER_HANDLE, EXO_TYPE_HTTP_PEER);
}

EXO_PLUGIN_DEFINE ("http-server", "1.0.0",
                   "Peer RPC and the OpenAI-compatible user API over HTTP (libsoup), and HTTP peer handles",
                   http_server_register)
