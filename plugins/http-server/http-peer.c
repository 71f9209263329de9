/* http-peer.c: ExoHttpPeer, an ExoPeerHandle over a SoupSession
 * (config type `http-peer`; docs/cluster-protocol.md).
 *
 * - connect = a health probe (`GET /peer/v1/health`) within
 *   `call-timeout-ms`; the answer's `node_id` must be `peer-id` (an unset
 *   `peer-id` takes the one answered), else the connect fails for good;
 * - every call runs through exo_network_resource_run_async() with
 *   `call-timeout-ms` per attempt and the retry policy: a connection error
 *   marks the connection lost and the next attempt reconnects;
 * - do_check_health = the probe within `health-timeout-ms`: a failure makes
 *   the peer `degraded` and the managed recovery reconnects with backoff;
 * - errors: no answer → the G_IO_ERROR of the transport (connection
 *   refused/closed, timed out, host not found); 5xx → retryable G_IO_ERROR
 *   (503 → BUSY, others FAILED); 4xx → EXO_RESOURCE_ERROR_FATAL with the
 *   server's message;
 * - metrics: round trips of the last 256 exchanges that got an answer
 *   (last, median, p99, in µs), calls, call failures, probes;
 * - authentication (http-auth.c): every request is signed with the cluster
 *   key (exo_cluster_key_get_default(), read at connect) just before it is
 *   sent, so each retry gets a fresh time and nonce; a 2xx answer counts
 *   only with a valid signature bound to our request's nonce, else the
 *   exchange fails with EXO_RESOURCE_ERROR_FATAL.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-common.h"
#include "http-auth.h"

#include <string.h>

#define DEFAULT_PEER_PORT          52415
#define DEFAULT_CALL_TIMEOUT_MS    5000
#define DEFAULT_HEALTH_TIMEOUT_MS  1000
#define RTT_WINDOW                 256

struct _ExoHttpPeer
{
  ExoNetworkResource parent_instance;

  /* settings */
  char        *peer_id;
  GVariant    *capabilities;      /* a{sv}, nullable */
  guint        call_timeout_ms;
  guint        health_timeout_ms;

  /* while connected */
  ExoClusterKey *key;
  SoupSession *session;
  char        *base_uri;          /* "http://host:port" */

  /* statistics */
  guint64      rtt[RTT_WINDOW];
  guint        rtt_count;
  guint        rtt_next;
  guint64      rtt_last;
  guint64      calls;
  guint64      call_failures;
  guint64      probes;
  guint64      probe_failures;
};

enum {
  PROP_0,
  PROP_PEER_ID,
  PROP_DEVICE_CAPABILITIES,
  PROP_CALL_TIMEOUT_MS,
  PROP_HEALTH_TIMEOUT_MS,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];

static void exo_http_peer_peer_handle_init (ExoPeerHandleInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ExoHttpPeer, exo_http_peer, EXO_TYPE_NETWORK_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_PEER_HANDLE,
                                                      exo_http_peer_peer_handle_init))

static const char *
peer_address (ExoHttpPeer *self)
{
  const char *address = exo_network_resource_get_address (EXO_NETWORK_RESOURCE (self));

  return address != NULL ? address : "";
}

static const char *
peer_label_id (ExoHttpPeer *self)
{
  return self->peer_id != NULL && self->peer_id[0] != '\0' ? self->peer_id : "(unknown)";
}

static void
record_rtt (ExoHttpPeer *self,
            guint64      us)
{
  self->rtt_last = us;
  self->rtt[self->rtt_next] = us;
  self->rtt_next = (self->rtt_next + 1) % RTT_WINDOW;
  if (self->rtt_count < RTT_WINDOW)
    self->rtt_count++;
}

static int
compare_u64 (gconstpointer a,
             gconstpointer b)
{
  guint64 x = *(const guint64 *) a, y = *(const guint64 *) b;

  return x < y ? -1 : x > y ? 1 : 0;
}

/* Nearest-rank percentile of the window. */
static guint64
rtt_percentile (ExoHttpPeer *self,
                guint        percent)
{
  guint64 sorted[RTT_WINDOW];
  guint rank;

  if (self->rtt_count == 0)
    return 0;
  memcpy (sorted, self->rtt, self->rtt_count * sizeof (guint64));
  qsort (sorted, self->rtt_count, sizeof (guint64), compare_u64);
  rank = (self->rtt_count * percent + 99) / 100;
  return sorted[MAX (rank, 1) - 1];
}

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

  record_rtt (self, (guint64) (g_get_monotonic_time () - ex->started));
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
static void
exchange_async (ExoHttpPeer         *self,
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

  g_task_set_source_tag (task, exchange_async);
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

static GBytes *
exchange_finish (ExoHttpPeer   *self,
                 GAsyncResult  *result,
                 GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static SoupMessage *
new_message (ExoHttpPeer  *self,
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

/* --- the health probe ---------------------------------------------------- */

static void
probe_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExoHttpPeer *self = EXO_HTTP_PEER (source);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = exchange_finish (self, result, &error);
  g_autoptr(JsonNode) root = NULL;
  const char *node_id = NULL, *status = NULL;
  const char *data;
  gsize len = 0;

  self->probes++;
  if (body == NULL)
    {
      self->probe_failures++;
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  data = g_bytes_get_data (body, &len);
  root = exo_http_parse_json (data, len, &error);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root) ||
      !exo_http_get_string_member (json_node_get_object (root), "status", TRUE, &status, NULL) ||
      !exo_http_get_string_member (json_node_get_object (root), "node_id", TRUE, &node_id, NULL) ||
      !exo_http_id_is_valid (node_id))
    {
      self->probe_failures++;
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                               "address %s does not answer GET /peer/v1/health like an exo node",
                               peer_address (self));
      return;
    }
  if (self->peer_id == NULL || self->peer_id[0] == '\0')
    {
      g_free (self->peer_id);
      self->peer_id = g_strdup (node_id);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PEER_ID]);
    }
  else if (!g_str_equal (node_id, self->peer_id))
    {
      self->probe_failures++;
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                               "address %s answers as node %s, expected %s",
                               peer_address (self), node_id, self->peer_id);
      return;
    }
  if (!g_str_equal (status, "ok"))
    {
      self->probe_failures++;
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                               "peer %s at %s reports status '%s'", self->peer_id,
                               peer_address (self), status);
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
probe_async (ExoHttpPeer         *self,
             guint                timeout_ms,
             GCancellable        *cancellable,
             GAsyncReadyCallback  callback,
             gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GError) error = NULL;
  SoupMessage *msg;

  g_task_set_source_tag (task, probe_async);
  msg = new_message (self, "GET", "/peer/v1/health", &error);
  if (msg == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
      return;
    }
  exchange_async (self, msg, NULL, "/peer/v1/health", timeout_ms, cancellable, probe_done, task);
}

/* Completes @task (a do_* task) with the probe's outcome. */
static void
probe_task_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (g_task_propagate_boolean (G_TASK (result), &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/* --- ExoNetworkResource -------------------------------------------------- */

static void
drop_session (ExoHttpPeer *self)
{
  if (self->session != NULL)
    soup_session_abort (self->session);
  g_clear_object (&self->session);
  g_clear_pointer (&self->base_uri, g_free);
}

static void
exo_http_peer_do_connect (ExoNetworkResource *resource,
                          GTask              *task)
{
  ExoHttpPeer *self = EXO_HTTP_PEER (resource);
  g_autoptr(GSocketConnectable) connectable = NULL;
  g_autoptr(GError) error = NULL;
  const char *host;
  guint16 port;

  drop_session (self);

  g_clear_pointer (&self->key, exo_cluster_key_unref);
  self->key = exo_cluster_key_get_default (&error);
  if (self->key == NULL)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                               "peer %s: %s", peer_label_id (self), error->message);
      return;
    }

  connectable = exo_network_resource_get_connectable (resource, DEFAULT_PEER_PORT, &error);
  if (connectable == NULL)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                               "peer %s: address '%s' is not host:port: %s",
                               peer_label_id (self), peer_address (self), error->message);
      return;
    }
  host = g_network_address_get_hostname (G_NETWORK_ADDRESS (connectable));
  port = g_network_address_get_port (G_NETWORK_ADDRESS (connectable));
  self->base_uri = strchr (host, ':') != NULL
                   ? g_strdup_printf ("http://[%s]:%u", host, port)
                   : g_strdup_printf ("http://%s:%u", host, port);

  /* No proxy: peers are reached directly, whatever http_proxy says. */
  self->session = soup_session_new_with_options ("max-conns-per-host", 16,
                                                 "max-conns", 64,
                                                 "user-agent", "exo-node ",
                                                 "proxy-resolver", NULL,
                                                 NULL);

  probe_async (self, self->call_timeout_ms, g_task_get_cancellable (task),
               probe_task_done, g_object_ref (task));
}

static void
exo_http_peer_do_disconnect (ExoNetworkResource *resource,
                             GTask              *task)
{
  drop_session (EXO_HTTP_PEER (resource));
  g_task_return_boolean (task, TRUE);
}

static void
exo_http_peer_do_check_health (ExoResource *resource,
                               GTask       *task)
{
  ExoHttpPeer *self = EXO_HTTP_PEER (resource);

  probe_async (self, self->health_timeout_ms, g_task_get_cancellable (task),
               probe_task_done, g_object_ref (task));
}

static void
exo_http_peer_collect_metrics (ExoResource  *resource,
                               GVariantDict *metrics)
{
  ExoHttpPeer *self = EXO_HTTP_PEER (resource);

  EXO_RESOURCE_CLASS (exo_http_peer_parent_class)->collect_metrics (resource, metrics);
  g_variant_dict_insert (metrics, "peer-id", "s", self->peer_id != NULL ? self->peer_id : "");
  g_variant_dict_insert (metrics, "rtt-last-us", "t", self->rtt_last);
  g_variant_dict_insert (metrics, "rtt-p50-us", "t", rtt_percentile (self, 50));
  g_variant_dict_insert (metrics, "rtt-p99-us", "t", rtt_percentile (self, 99));
  g_variant_dict_insert (metrics, "rtt-samples", "u", self->rtt_count);
  g_variant_dict_insert (metrics, "calls", "t", self->calls);
  g_variant_dict_insert (metrics, "call-failures", "t", self->call_failures);
  g_variant_dict_insert (metrics, "health-probes", "t", self->probes);
  g_variant_dict_insert (metrics, "health-probe-failures", "t", self->probe_failures);
}

/* What the keys above are in /metrics (docs/metrics.md); the connection's
 * own are ExoNetworkResource's (exo_network_*). */
static const ExoMetricEntry peer_metric_entries[] = {
  { .key = "peer-id", .kind = EXO_METRIC_INFO, .name = "exo_peer_info",
    .help = "The node id of each peer handle's peer (value 1); `exoctl node` shows the topology." },
  { .key = "rtt-last-us", .kind = EXO_METRIC_GAUGE, .name = "exo_peer_rtt_last_seconds",
    .scale = 1e-6, .help = "The round trip time of the last call to the peer." },
  /* quantiles of the last calls, computed here: they cannot be
   * aggregated over peers or time; `exoctl status ID` has them */
  { .key = "rtt-p50-us", .kind = EXO_METRIC_HIDDEN },
  { .key = "rtt-p99-us", .kind = EXO_METRIC_HIDDEN },
  { .key = "rtt-samples", .kind = EXO_METRIC_HIDDEN },
  { .key = "calls", .kind = EXO_METRIC_COUNTER, .name = "exo_peer_calls_total",
    .help = "Calls to the peer." },
  { .key = "call-failures", .kind = EXO_METRIC_COUNTER, .name = "exo_peer_call_failures_total",
    .help = "Calls to the peer that failed." },
  { .key = "health-probes", .kind = EXO_METRIC_COUNTER, .name = "exo_peer_health_probes_total",
    .help = "Health probes of the peer." },
  { .key = "health-probe-failures", .kind = EXO_METRIC_COUNTER, .name = "exo_peer_health_probe_failures_total",
    .help = "Health probes of the peer that failed." },
};

/* --- calls --------------------------------------------------------------- */

typedef struct
{
  char    *path;
  char    *content_type;
  GBytes  *body;
  GStrv    headers;      /* name, value, name, value, …, NULL */
  char    *call_id;      /* the same on every attempt (EXO_HTTP_HEADER_CALL_ID) */
} Call;

static void
call_free (Call *call)
{
  g_free (call->path);
  g_free (call->content_type);
  g_bytes_unref (call->body);
  g_strfreev (call->headers);
  g_free (call->call_id);
  g_free (call);
}

static Call *
call_new_json (const char *path,
               JsonNode   *root)
{
  Call *call = g_new0 (Call, 1);
  char *json = exo_http_node_to_string (root);

  call->path = g_strdup (path);
  call->content_type = g_strdup ("application/json");
  call->body = g_bytes_new_take (json, strlen (json));
  return call;
}

static void
call_exchange_done (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;   /* the runner's attempt task */
  GError *error = NULL;
  GBytes *body = exchange_finish (EXO_HTTP_PEER (source), result, &error);

  if (body == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, body, (GDestroyNotify) g_bytes_unref);
}

/* One attempt (ExoOperationFunc): the runner made sure we are connected. */
static void
call_attempt (ExoResource  *resource,
              GCancellable *cancellable,
              GTask        *task,
              gpointer      user_data)
{
  ExoHttpPeer *self = EXO_HTTP_PEER (resource);
  Call *call = user_data;
  g_autoptr(GError) error = NULL;
  SoupMessage *msg = new_message (self, "POST", call->path, &error);

  if (msg == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (call->headers != NULL)
    {
      SoupMessageHeaders *headers = soup_message_get_request_headers (msg);

      for (guint i = 0; call->headers[i] != NULL && call->headers[i + 1] != NULL; i += 2)
        soup_message_headers_replace (headers, call->headers[i], call->headers[i + 1]);
    }
  if (call->call_id != NULL)
    soup_message_headers_replace (soup_message_get_request_headers (msg),
                                  EXO_HTTP_HEADER_CALL_ID, call->call_id);
  soup_message_set_request_body_from_bytes (msg, call->content_type, call->body);
  /* The runner times each attempt (call-timeout-ms) through @cancellable. */
  exchange_async (self, msg, call->body, call->path, 0, cancellable, call_exchange_done,
                  g_object_ref (task));
}

static void
call_run_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExoHttpPeer *self = EXO_HTTP_PEER (source);
  GError *error = NULL;
  GBytes *body = exo_network_resource_run_finish (EXO_NETWORK_RESOURCE (self), result, &error);

  self->calls++;
  if (body == NULL)
    {
      self->call_failures++;
      if (error == NULL)
        error = g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED, "peer %s: no answer",
                             peer_label_id (self));
      g_task_return_error (task, error);
      return;
    }
  g_task_return_pointer (task, body, (GDestroyNotify) g_bytes_unref);
}

static void
call_start (ExoHttpPeer         *self,
            Call                *call,          /* taken */
            gpointer             source_tag,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  if (call->call_id == NULL)
    call->call_id = g_uuid_string_random ();
  g_task_set_task_data (task, call, (GDestroyNotify) call_free);
  /* @call is the task's data: it lives until call_run_done has run */
  exo_network_resource_run_async (EXO_NETWORK_RESOURCE (self), call_attempt, call, NULL,
                                  self->call_timeout_ms, cancellable, call_run_done, task);
}

static gboolean
call_finish_boolean (ExoPeerHandle  *peer,
                     GAsyncResult   *result,
                     gpointer        source_tag,
                     GError        **error)
{
  g_autoptr(GBytes) body = NULL;

  g_return_val_if_fail (g_task_is_valid (result, peer), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, FALSE);

  body = g_task_propagate_pointer (G_TASK (result), error);
  return body != NULL;
}

/* --- ExoPeerHandle ------------------------------------------------------- */

static const char *
exo_http_peer_get_peer_id (ExoPeerHandle *peer)
{
  return EXO_HTTP_PEER (peer)->peer_id;
}

static const char *
exo_http_peer_get_address (ExoPeerHandle *peer)
{
  return exo_network_resource_get_address (EXO_NETWORK_RESOURCE (peer));
}

static GVariant *
exo_http_peer_get_device_capabilities (ExoPeerHandle *peer)
{
  ExoHttpPeer *self = EXO_HTTP_PEER (peer);

  if (self->capabilities != NULL)
    return g_variant_ref (self->capabilities);
  return g_variant_ref_sink (g_variant_new ("a{sv}", NULL));
}

static void
exo_http_peer_send_prompt_async (ExoPeerHandle             *peer,
                                 const ExoShard            *shard,
                                 const char                *prompt,
                                 const char                *request_id,
                                 const ExoGenerationParams *params,
                                 GCancellable              *cancellable,
                                 GAsyncReadyCallback        callback,
                                 gpointer                   user_data)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  Call *call;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "shard");
  json_builder_add_value (builder, exo_http_shard_to_json (shard));
  json_builder_set_member_name (builder, "prompt");
  json_builder_add_string_value (builder, prompt);
  json_builder_set_member_name (builder, "request_id");
  json_builder_add_string_value (builder, request_id);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);

  call = call_new_json ("/peer/v1/prompt", root);
  if (params != NULL)
    {
      /* "params" is written by exo_http_params_to_string (), not json-glib
       * (see there): it goes in before the object's closing brace. */
      g_autofree char *params_json = exo_http_params_to_string (params);
      gsize len = 0;
      const char *json = g_bytes_get_data (call->body, &len);
      GString *body = g_string_new_len (json, len);

      g_assert (len > 2 && body->str[len - 1] == '}');
      g_string_truncate (body, len - 1);
      g_string_append_printf (body, ",\"params\":%s}", params_json);
      g_bytes_unref (call->body);
      call->body = g_string_free_to_bytes (body);
    }
  call_start (EXO_HTTP_PEER (peer), call, exo_http_peer_send_prompt_async, cancellable,
              callback, user_data);
}

static gboolean
exo_http_peer_send_prompt_finish (ExoPeerHandle  *peer,
                                  GAsyncResult   *result,
                                  GError        **error)
{
  return call_finish_boolean (peer, result, exo_http_peer_send_prompt_async, error);
}

static void
exo_http_peer_send_tensor_async (ExoPeerHandle             *peer,
                                 const ExoShard            *shard,
                                 ExoTensor                 *tensor,
                                 const char                *request_id,
                                 const ExoGenerationParams *params,
                                 GCancellable              *cancellable,
                                 GAsyncReadyCallback        callback,
                                 gpointer                   user_data)
{
  Call *call = g_new0 (Call, 1);
  GStrvBuilder *headers = g_strv_builder_new ();
  g_autofree char *shard_json = exo_http_shard_to_string (shard);
  g_autofree char *shape = exo_http_shape_to_string (exo_tensor_get_shape (tensor),
                                                     exo_tensor_get_n_dims (tensor));

  g_strv_builder_add_many (headers,
                           EXO_HTTP_HEADER_REQUEST_ID, request_id,
                           EXO_HTTP_HEADER_SHARD, shard_json,
                           EXO_HTTP_HEADER_DTYPE, exo_dtype_to_string (exo_tensor_get_dtype (tensor)),
                           EXO_HTTP_HEADER_SHAPE, shape,
                           NULL);
  if (params != NULL)
    {
      g_autofree char *params_json = exo_http_params_to_string (params);

      g_strv_builder_add_many (headers, EXO_HTTP_HEADER_PARAMS, params_json, NULL);
    }
  call->headers = g_strv_builder_end (headers);
  g_strv_builder_unref (headers);
  call->path = g_strdup ("/peer/v1/tensor");
  call->content_type = g_strdup ("application/octet-stream");
  call->body = g_bytes_ref (exo_tensor_get_data (tensor));

  call_start (EXO_HTTP_PEER (peer), call, exo_http_peer_send_tensor_async,
              cancellable, callback, user_data);
}

static gboolean
exo_http_peer_send_tensor_finish (ExoPeerHandle  *peer,
                                  GAsyncResult   *result,
                                  GError        **error)
{
  return call_finish_boolean (peer, result, exo_http_peer_send_tensor_async, error);
}

static void
exo_http_peer_send_result_async (ExoPeerHandle       *peer,
                                 const char          *request_id,
                                 const gint32        *tokens,
                                 gsize                n_tokens,
                                 gboolean             is_finished,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "request_id");
  json_builder_add_string_value (builder, request_id);
  json_builder_set_member_name (builder, "result");
  json_builder_begin_array (builder);
  for (gsize i = 0; i < n_tokens; i++)
    json_builder_add_int_value (builder, tokens[i]);
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "is_finished");
  json_builder_add_boolean_value (builder, is_finished);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);

  call_start (EXO_HTTP_PEER (peer), call_new_json ("/peer/v1/result", root),
              exo_http_peer_send_result_async, cancellable, callback, user_data);
}

static gboolean
exo_http_peer_send_result_finish (ExoPeerHandle  *peer,
                                  GAsyncResult   *result,
                                  GError        **error)
{
  return call_finish_boolean (peer, result, exo_http_peer_send_result_async, error);
}

static void
exo_http_peer_collect_topology_async (ExoPeerHandle       *peer,
                                      const char * const  *visited,
                                      guint                max_depth,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "visited");
  json_builder_begin_array (builder);
  for (guint i = 0; visited != NULL && visited[i] != NULL; i++)
    json_builder_add_string_value (builder, visited[i]);
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "max_depth");
  json_builder_add_int_value (builder, max_depth);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);

  call_start (EXO_HTTP_PEER (peer), call_new_json ("/peer/v1/topology", root),
              exo_http_peer_collect_topology_async, cancellable, callback, user_data);
}

static char *
exo_http_peer_collect_topology_finish (ExoPeerHandle  *peer,
                                       GAsyncResult   *result,
                                       GError        **error)
{
  ExoHttpPeer *self = EXO_HTTP_PEER (peer);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) parse_error = NULL;
  const char *data;
  gsize len = 0;

  g_return_val_if_fail (g_task_is_valid (result, peer), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) ==
                        exo_http_peer_collect_topology_async, NULL);

  body = g_task_propagate_pointer (G_TASK (result), error);
  if (body == NULL)
    return NULL;
  data = g_bytes_get_data (body, &len);
  root = exo_http_parse_json (data, len, &parse_error);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "peer %s at %s answered a topology that is not a JSON object%s%s",
                   peer_label_id (self), peer_address (self),
                   parse_error != NULL ? ": " : "", parse_error != NULL ? parse_error->message : "");
      return NULL;
    }
  return g_strndup (data, len);
}

static void
exo_http_peer_send_cancel_async (ExoPeerHandle       *peer,
                                 const char          *request_id,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "request_id");
  json_builder_add_string_value (builder, request_id);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);

  call_start (EXO_HTTP_PEER (peer), call_new_json ("/peer/v1/cancel", root),
              exo_http_peer_send_cancel_async, cancellable, callback, user_data);
}

static gboolean
exo_http_peer_send_cancel_finish (ExoPeerHandle  *peer,
                                  GAsyncResult   *result,
                                  GError        **error)
{
  return call_finish_boolean (peer, result, exo_http_peer_send_cancel_async, error);
}

static void
exo_http_peer_peer_handle_init (ExoPeerHandleInterface *iface)
{
  iface->get_peer_id = exo_http_peer_get_peer_id;
  iface->get_address = exo_http_peer_get_address;
  iface->get_device_capabilities = exo_http_peer_get_device_capabilities;
  iface->send_prompt_async = exo_http_peer_send_prompt_async;
  iface->send_prompt_finish = exo_http_peer_send_prompt_finish;
  iface->send_tensor_async = exo_http_peer_send_tensor_async;
  iface->send_tensor_finish = exo_http_peer_send_tensor_finish;
  iface->send_result_async = exo_http_peer_send_result_async;
  iface->send_result_finish = exo_http_peer_send_result_finish;
  iface->collect_topology_async = exo_http_peer_collect_topology_async;
  iface->collect_topology_finish = exo_http_peer_collect_topology_finish;
  iface->send_cancel_async = exo_http_peer_send_cancel_async;
  iface->send_cancel_finish = exo_http_peer_send_cancel_finish;
}

/* --- GObject ------------------------------------------------------------- */

static void
exo_http_peer_dispose (GObject *object)
{
  drop_session (EXO_HTTP_PEER (object));

  G_OBJECT_CLASS (exo_http_peer_parent_class)->dispose (object);
}

static void
exo_http_peer_finalize (GObject *object)
{
  ExoHttpPeer *self = EXO_HTTP_PEER (object);

  g_clear_pointer (&self->peer_id, g_free);
  g_clear_pointer (&self->capabilities, g_variant_unref);
  g_clear_pointer (&self->key, exo_cluster_key_unref);

  G_OBJECT_CLASS (exo_http_peer_parent_class)->finalize (object);
}

static void
exo_http_peer_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  ExoHttpPeer *self = EXO_HTTP_PEER (object);

  switch (prop_id)
    {
    case PROP_PEER_ID:
      g_value_set_string (value, self->peer_id);
      break;
    case PROP_DEVICE_CAPABILITIES:
      g_value_set_variant (value, self->capabilities);
      break;
    case PROP_CALL_TIMEOUT_MS:
      g_value_set_uint (value, self->call_timeout_ms);
      break;
    case PROP_HEALTH_TIMEOUT_MS:
      g_value_set_uint (value, self->health_timeout_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_http_peer_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  ExoHttpPeer *self = EXO_HTTP_PEER (object);

  switch (prop_id)
    {
    case PROP_PEER_ID:
      if (g_strcmp0 (self->peer_id, g_value_get_string (value)) == 0)
        return;
      g_free (self->peer_id);
      self->peer_id = g_value_dup_string (value);
      break;
    case PROP_DEVICE_CAPABILITIES:
      {
        GVariant *caps = g_value_get_variant (value);

        if (caps == self->capabilities ||
            (caps != NULL && self->capabilities != NULL && g_variant_equal (caps, self->capabilities)))
          return;
        g_clear_pointer (&self->capabilities, g_variant_unref);
        self->capabilities = caps != NULL ? g_variant_ref_sink (caps) : NULL;
      }
      break;
    case PROP_CALL_TIMEOUT_MS:
      if (self->call_timeout_ms == g_value_get_uint (value))
        return;
      self->call_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_HEALTH_TIMEOUT_MS:
      if (self->health_timeout_ms == g_value_get_uint (value))
        return;
      self->health_timeout_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  g_object_notify_by_pspec (object, pspec);
}

static void
exo_http_peer_class_init (ExoHttpPeerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);
  ExoNetworkResourceClass *network_class = EXO_NETWORK_RESOURCE_CLASS (klass);

  object_class->dispose = exo_http_peer_dispose;
  object_class->finalize = exo_http_peer_finalize;
  object_class->get_property = exo_http_peer_get_property;
  object_class->set_property = exo_http_peer_set_property;

  resource_class->do_check_health = exo_http_peer_do_check_health;
  resource_class->collect_metrics = exo_http_peer_collect_metrics;
  exo_resource_class_add_metric_entries (resource_class, peer_metric_entries,
                                         G_N_ELEMENTS (peer_metric_entries));
  exo_resource_class_set_resource_type (resource_class, "http-peer");

  network_class->do_connect = exo_http_peer_do_connect;
  network_class->do_disconnect = exo_http_peer_do_disconnect;

  /**
   * ExoHttpPeer:peer-id:
   *
   * The node id the peer must answer with; unset, the first answer sets it.
   */
  properties[PROP_PEER_ID] =
    g_param_spec_string ("peer-id", NULL, "The peer's node id", NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoHttpPeer:device-capabilities:
   *
   * The peer's capabilities as discovery reported them (`a{sv}`).
   */
  properties[PROP_DEVICE_CAPABILITIES] =
    g_param_spec_variant ("device-capabilities", NULL, "The peer's capabilities (a{sv})",
                          G_VARIANT_TYPE_VARDICT, NULL,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoHttpPeer:call-timeout-ms:
   *
   * Time limit of each attempt of a call, and of the connect probe; 0 = none.
   */
  properties[PROP_CALL_TIMEOUT_MS] =
    g_param_spec_uint ("call-timeout-ms", NULL, "Time limit of each call attempt (0: none)",
                       0, G_MAXUINT, DEFAULT_CALL_TIMEOUT_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoHttpPeer:health-timeout-ms:
   *
   * Time limit of a periodic health probe; 0 = none.
   */
  properties[PROP_HEALTH_TIMEOUT_MS] =
    g_param_spec_uint ("health-timeout-ms", NULL, "Time limit of a health probe (0: none)",
                       0, G_MAXUINT, DEFAULT_HEALTH_TIMEOUT_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
exo_http_peer_init (ExoHttpPeer *self)
{
  g_autoptr(ExoRetryPolicy) policy = exo_retry_policy_new ();

  self->call_timeout_ms = DEFAULT_CALL_TIMEOUT_MS;
  self->health_timeout_ms = DEFAULT_HEALTH_TIMEOUT_MS;

  /* A peer comes back when it comes back: reconnect with backoff (at most
   * 5 s apart) without a restart limit; discovery removes lost peers. */
  policy->max_delay_ms = 5000;
  policy->restart_burst = 0;
  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (self), policy);
}
