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
 *   (last, median, p99, in µs), calls, call failures, probes, and the
 *   peer stream's (http-peer-stream.c);
 * - the peer stream: opened once connected (and after a healthy probe if
 *   it is not), closed at disconnect; tensor, result and cancel calls go
 *   over it while it is open;
 * - authentication (http-auth.c): every request is signed with the cluster
 *   key (exo_cluster_key_get_default(), read at connect) just before it is
 *   sent, so each retry gets a fresh time and nonce; a 2xx answer counts
 *   only with a valid signature bound to our request's nonce, else the
 *   exchange fails with EXO_RESOURCE_ERROR_FATAL.
 *
 * This file owns the object (properties, dispose and finalize), connect,
 * disconnect and the health probe, and the round-trip window and the
 * metrics.  One exchange is in http-peer-exchange.c, the ExoPeerHandle
 * calls in http-peer-calls.c; http-peer-private.h lists the files and the
 * rules that hold in all of them: the peer's main context, no threads, no
 * locks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-peer-private.h"

#include <string.h>

#define DEFAULT_PEER_PORT          52415
#define DEFAULT_CALL_TIMEOUT_MS    5000
#define DEFAULT_HEALTH_TIMEOUT_MS  1000

enum {
  PROP_0,
  PROP_PEER_ID,
  PROP_DEVICE_CAPABILITIES,
  PROP_CALL_TIMEOUT_MS,
  PROP_HEALTH_TIMEOUT_MS,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE_WITH_CODE (ExoHttpPeer, exo_http_peer, EXO_TYPE_NETWORK_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_PEER_HANDLE,
                                                      exo_http_peer_peer_handle_init))

void
http_peer_record_rtt (ExoHttpPeer *self,
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

/* --- the health probe ---------------------------------------------------- */

static void
probe_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExoHttpPeer *self = EXO_HTTP_PEER (source);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = http_peer_exchange_finish (self, result, &error);
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
  msg = http_peer_new_message (self, "GET", "/peer/v1/health", &error);
  if (msg == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
      return;
    }
  http_peer_exchange_async (self, msg, NULL, "/peer/v1/health", timeout_ms, cancellable,
                            probe_done, task);
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
    {
      /* connected or healthy: the peer stream opens (again) unless it is */
      http_peer_stream_start (EXO_HTTP_PEER (source));
      g_task_return_boolean (task, TRUE);
    }
  else
    g_task_return_error (task, error);
}

/* --- ExoNetworkResource -------------------------------------------------- */

static void
drop_session (ExoHttpPeer *self)
{
  http_peer_stream_stop (self);
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
  /* the peer stream's frames are small and many: no compression */
  soup_session_remove_feature_by_type (self->session, SOUP_TYPE_WEBSOCKET_EXTENSION_MANAGER);

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
  http_peer_stream_collect_metrics (self, metrics);
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
  g_clear_pointer (&self->stream_calls, g_hash_table_unref);

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
  http_peer_stream_add_metric_entries (resource_class);
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
