/* http-metrics.c: what ExoHttpServer counts, and how it tells it.
 *
 * Owns:
 *  - request counting: every answered request (libsoup's
 *    "request-finished"), by route ("other" for a path no route serves)
 *    and status, and the client and server errors.  A request whose
 *    client left before its answer was all sent (in the middle of its
 *    body, while it waited for the node, in the middle of a stream) is
 *    counted as 499, nginx's "client closed request", whatever status it
 *    had (libsoup sets 500 on a broken connection), and as neither kind
 *    of error: from libsoup's "request-aborted", or from the request
 *    noticing it first (http_server_request_client_left(): a connection
 *    that http-connections.c takes back from libsoup gets neither
 *    signal).  Each request is counted and logged (http-access-log.c)
 *    once; a connection closed before a request line is no request;
 *  - the latency histograms: each request's duration from libsoup's
 *    "request-started" (the time is kept on the message) to its end, by
 *    route; a chat's time to its first token (http-user-api.c calls
 *    http_server_request_observe_tokens());
 *  - GET /metrics, in Prometheus' text format (version 0.0.4; written by
 *    http-exposition.c): every resource of the registry (state, errors,
 *    and each metric key its class declared with
 *    exo_resource_class_add_metric_entries(): counters, gauges, summaries,
 *    `_info` labels; a key no class declared stays on D-Bus), the
 *    requests and latencies of every server of this context, process_*,
 *    exo_build_info (docs/metrics.md lists every family);
 *  - the resource's collect_metrics (`exoctl status ID`, D-Bus): the
 *    server's counters, those of its connections (http-connections.c)
 *    summed over every listen since start, and authentication's
 *    (http-auth.c), and what each of those keys is in /metrics.
 *
 * Rules: everything runs in the server's GMainContext, the registry's
 * resources are read there too (only servers of the same context have
 * their requests read); no locks (a pool's statistics are taken under the
 * pool's own lock by its collect_metrics).  A scrape is bounded by the
 * registry's size: labels come from the route table, the status codes the
 * server sends, resource ids and declared entries, never from a request.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-server-private.h"
#include "http-exposition.h"

#include <string.h>

/* Seconds; the last ones for streamed chats and slow peers. */
static const double duration_bounds[] = {
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
};
static const double ttft_bounds[] = {
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

struct _HttpMetrics
{
  GHashTable    *counts;      /* "route\ncode" -> guint64* */
  GHashTable    *durations;   /* route (a static string) -> HttpHistogram* */
  HttpHistogram *ttft;
  double         start_time;  /* process_start_time_seconds, once read */
};

HttpMetrics *
http_metrics_new (void)
{
  HttpMetrics *self = g_new0 (HttpMetrics, 1);

  self->counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->durations = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) http_histogram_free);
  self->ttft = http_histogram_new (ttft_bounds, G_N_ELEMENTS (ttft_bounds));
  return self;
}

void
http_metrics_free (HttpMetrics *self)
{
  g_hash_table_unref (self->counts);
  g_hash_table_unref (self->durations);
  http_histogram_free (self->ttft);
  g_free (self);
}

/* --- request counting and latencies -------------------------------------- */

static GQuark
started_quark (void)
{
  static GQuark quark;

  /* as G_DEFINE_QUARK: a race gives the same quark twice */
  if (G_UNLIKELY (quark == 0))
    quark = g_quark_from_static_string ("exo-http-request-started");
  return quark;
}

void
http_server_request_started_cb (SoupServer        *server,
                                SoupServerMessage *msg,
                                ExoHttpServer     *self)
{
  gint64 *started = g_new (gint64, 1);

  *started = g_get_monotonic_time ();
  g_object_set_qdata_full (G_OBJECT (msg), started_quark (), started, g_free);
}

/* Since "request-started" of @msg, or -1 when it was not seen. */
static double
seconds_since_start (SoupServerMessage *msg)
{
  const gint64 *started = g_object_get_qdata (G_OBJECT (msg), started_quark ());

  if (started == NULL)
    return -1;
  return (double) MAX (g_get_monotonic_time () - *started, 0) / G_USEC_PER_SEC;
}

/* nginx's status for a request whose client closed the connection before
 * the answer was sent (no HTTP status: never sent to anyone). */
#define STATUS_CLIENT_CLOSED_REQUEST 499

/* Counts @msg with its status, or 499 when @client_left. */
static void
count_request (ExoHttpServer     *self,
               SoupServerMessage *msg,
               double             seconds,
               gboolean           client_left)
{
  GUri *uri = soup_server_message_get_uri (msg);
  const char *route = uri != NULL ? http_server_route_path (g_uri_get_path (uri)) : NULL;
  guint status = soup_server_message_get_status (msg);
  g_autofree char *key = NULL;
  guint64 *count;
  HttpHistogram *duration;

  if (client_left)
    {
      /* a connection closed before its request line: no request */
      if (soup_server_message_get_method (msg) == NULL || uri == NULL)
        return;
      status = STATUS_CLIENT_CLOSED_REQUEST;
    }
  if (status == 0)
    return;   /* nothing was answered */
  if (route == NULL)
    route = "other";
  key = g_strdup_printf ("%s\n%u", route, status);
  count = g_hash_table_lookup (self->metrics->counts, key);

  if (count == NULL)
    {
      count = g_new0 (guint64, 1);
      g_hash_table_insert (self->metrics->counts, g_steal_pointer (&key), count);
    }
  (*count)++;
  self->n_requests++;
  /* (a 499 is not an answer of ours: neither kind of error) */
  if (status >= 400 && status < 500 && !client_left)
    self->n_client_errors++;
  else if (status >= 500)
    self->n_server_errors++;

  if (seconds < 0)
    return;
  duration = g_hash_table_lookup (self->metrics->durations, route);
  if (duration == NULL)
    {
      duration = http_histogram_new (duration_bounds, G_N_ELEMENTS (duration_bounds));
      g_hash_table_insert (self->metrics->durations, (gpointer) route, duration);
    }
  http_histogram_observe (duration, seconds);
}

static GQuark
counted_quark (void)
{
  static GQuark quark;

  if (G_UNLIKELY (quark == 0))
    quark = g_quark_from_static_string ("exo-http-request-counted");
  return quark;
}

/* Counts and logs @msg, once: libsoup's "request-finished" or
 * "request-aborted", or the client leaving first (of a stream that
 * http-connections.c takes back from libsoup, neither comes). */
static void
request_done (ExoHttpServer     *self,
              SoupServerMessage *msg,
              gboolean           client_left)
{
  double seconds;
  guint answered;

  if (g_object_get_qdata (G_OBJECT (msg), counted_quark ()) != NULL)
    return;
  g_object_set_qdata (G_OBJECT (msg), counted_quark (), GINT_TO_POINTER (TRUE));
  /* Its answer was all given to libsoup (a stream's last event, `[DONE]`,
   * written) and the client hung up before libsoup finished (before the
   * chunked body's terminator): the client had its answer, under the
   * status it was given (libsoup's abort may have set 500 since). */
  answered = http_server_answered_status (msg);
  if (client_left && answered != 0)
    {
      client_left = FALSE;
      soup_server_message_set_status (msg, answered, NULL);
    }
  seconds = seconds_since_start (msg);
  count_request (self, msg, seconds, client_left);
  http_server_access_log (self, msg, seconds, client_left);
}

void
http_server_request_finished_cb (SoupServer        *server,
                                 SoupServerMessage *msg,
                                 ExoHttpServer     *self)
{
  request_done (self, msg, FALSE);
}

void
http_server_request_aborted_cb (SoupServer        *server,
                                SoupServerMessage *msg,
                                ExoHttpServer     *self)
{
  request_done (self, msg, TRUE);
}

void
http_server_request_client_left (ExoHttpServer     *self,
                                 SoupServerMessage *msg)
{
  request_done (self, msg, TRUE);
}

void
http_server_request_observe_tokens (Request *req,
                                    gsize    n_tokens)
{
  double seconds;

  if (req->first_token_seen || n_tokens == 0)
    return;
  req->first_token_seen = TRUE;
  seconds = seconds_since_start (req->msg);
  if (seconds >= 0)
    http_histogram_observe (req->self->metrics->ttft, seconds);
}

/* --- /metrics: the resources' declared metrics ----------------------------- */

/* Where the samples of one entry go, found once per scrape. */
typedef struct
{
  HttpFamily *family;   /* NULL: the name is taken by a family of another type */
  char       *sample;   /* the sample's name */
  char       *labels;   /* the entry's constant labels (no braces), or NULL */
} EntryTarget;

static void
entry_target_free (EntryTarget *target)
{
  g_free (target->sample);
  g_free (target->labels);
  g_free (target);
}

static EntryTarget *
entry_target (HttpExposition       *expo,
              GHashTable           *targets,
              const ExoMetricEntry *entry)
{
  EntryTarget *target = g_hash_table_lookup (targets, entry);
  const char *brace;
  g_autofree char *family = NULL;
  const char *type = "gauge";

  if (target != NULL)
    return target;
  target = g_new0 (EntryTarget, 1);
  brace = strchr (entry->name, '{');
  if (brace != NULL)
    {
      target->sample = g_strndup (entry->name, brace - entry->name);
      target->labels = g_strndup (brace + 1, strlen (brace + 1) - 1);
    }
  else
    target->sample = g_strdup (entry->name);
  family = g_strdup (target->sample);
  if (entry->kind == EXO_METRIC_COUNTER)
    type = "counter";
  else if (entry->kind == EXO_METRIC_SUMMARY)
    {
      /* exo_resource_class_add_metric_entries() checked the suffix */
      type = "summary";
      *strrchr (family, '_') = '\0';
    }
  target->family = http_exposition_family (expo, family, type, entry->help);
  g_hash_table_insert (targets, (gpointer) entry, target);
  return target;
}

/* A number (a boolean is 0 or 1) times @scale (0: 1); integers stay exact
 * when not scaled.  FALSE for anything else, and for a negative value that
 * is scaled: a duration or a time that says "none" (-1). */
static gboolean
add_value (HttpFamily *family,
           const char *sample,
           const char *labels,
           GVariant   *value,
           double      scale)
{
  gboolean scaled = scale != 0 && scale != 1;
  guint64 u;
  gint64 i;

  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BOOLEAN:
      http_family_add_u64 (family, sample, labels, g_variant_get_boolean (value) ? 1 : 0);
      return TRUE;
    case G_VARIANT_CLASS_BYTE:
      u = g_variant_get_byte (value);
      break;
    case G_VARIANT_CLASS_UINT16:
      u = g_variant_get_uint16 (value);
      break;
    case G_VARIANT_CLASS_UINT32:
      u = g_variant_get_uint32 (value);
      break;
    case G_VARIANT_CLASS_UINT64:
      u = g_variant_get_uint64 (value);
      break;
    case G_VARIANT_CLASS_INT16:
      i = g_variant_get_int16 (value);
      goto signed_value;
    case G_VARIANT_CLASS_INT32:
      i = g_variant_get_int32 (value);
      goto signed_value;
    case G_VARIANT_CLASS_INT64:
      i = g_variant_get_int64 (value);
      goto signed_value;
    case G_VARIANT_CLASS_DOUBLE:
      if (scaled && g_variant_get_double (value) < 0)
        return FALSE;
      http_family_add_double (family, sample, labels,
                              g_variant_get_double (value) * (scaled ? scale : 1));
      return TRUE;
    default:
      return FALSE;
    }
  if (scaled)
    http_family_add_double (family, sample, labels, (double) u * scale);
  else
    http_family_add_u64 (family, sample, labels, u);
  return TRUE;

signed_value:
  if (scaled && i < 0)
    return FALSE;
  if (scaled)
    http_family_add_double (family, sample, labels, (double) i * scale);
  else
    http_family_add_i64 (family, sample, labels, i);
  return TRUE;
}

/* A label of an `_info` family: its value as text. */
typedef struct
{
  const ExoMetricEntry *entry;
  char                 *value;
} InfoLabel;

static void
info_label_clear (gpointer data)
{
  g_free (((InfoLabel *) data)->value);
}

static int
compare_info_labels (gconstpointer a,
                     gconstpointer b)
{
  const InfoLabel *la = a;
  const InfoLabel *lb = b;
  int by_family = strcmp (la->entry->name, lb->entry->name);

  return by_family != 0 ? by_family : strcmp (la->entry->key, lb->entry->key);
}

static char *
info_value (GVariant *value)
{
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
    return g_variant_dup_string (value, NULL);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
    return g_strdup (g_variant_get_boolean (value) ? "true" : "false");
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    return g_strdup_printf ("%u", g_variant_get_uint32 (value));
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    return g_strdup_printf ("%" G_GUINT64_FORMAT, g_variant_get_uint64 (value));
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
    return g_strdup_printf ("%d", g_variant_get_int32 (value));
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
    return g_strdup_printf ("%" G_GINT64_FORMAT, g_variant_get_int64 (value));
  return NULL;
}

/* One `_info` sample per family, its labels sorted by key. */
static void
add_info_samples (HttpExposition *expo,
                  GArray         *info,
                  const char     *id_labels)
{
  g_autoptr(GString) labels = g_string_new (NULL);

  g_array_sort (info, compare_info_labels);
  for (guint i = 0; i < info->len;)
    {
      const ExoMetricEntry *first = g_array_index (info, InfoLabel, i).entry;
      HttpFamily *family = http_exposition_family (expo, first->name, "gauge", first->help);

      g_string_assign (labels, id_labels);
      for (; i < info->len && strcmp (g_array_index (info, InfoLabel, i).entry->name, first->name) == 0; i++)
        {
          InfoLabel *label = &g_array_index (info, InfoLabel, i);
          g_autofree char *name = g_strdelimit (g_strdup (label->entry->key), "-", '_');

          http_labels_append (labels, name, label->value);
        }
      if (family != NULL)
        http_family_add_u64 (family, NULL, labels->str, 1);
    }
}

static void
add_resource_metrics (HttpExposition *expo,
                      GHashTable     *targets,
                      ExoResource    *resource,
                      const char     *id_labels)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (resource);
  ExoResourceClass *klass = EXO_RESOURCE_GET_CLASS (resource);
  g_autoptr(GArray) info = g_array_new (FALSE, FALSE, sizeof (InfoLabel));
  g_autoptr(GString) labels = g_string_new (NULL);
  GVariantIter iter;
  const char *key;
  GVariant *value;

  if (metrics == NULL || !g_variant_is_of_type (metrics, G_VARIANT_TYPE_VARDICT))
    return;
  g_array_set_clear_func (info, info_label_clear);
  g_variant_iter_init (&iter, metrics);
  while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
    {
      const ExoMetricEntry *entry = exo_resource_class_find_metric_entry (klass, key);
      EntryTarget *target;

      /* a key no class declared is on D-Bus only: its kind is unknown */
      if (entry == NULL || entry->kind == EXO_METRIC_HIDDEN)
        continue;
      if (entry->kind == EXO_METRIC_INFO)
        {
          InfoLabel label = { entry, info_value (value) };

          if (label.value != NULL)
            g_array_append_val (info, label);
          continue;
        }
      target = entry_target (expo, targets, entry);
      if (target->family == NULL)
        continue;
      g_string_assign (labels, id_labels);
      if (target->labels != NULL)
        g_string_append_printf (labels, ",%s", target->labels);
      add_value (target->family, target->sample, labels->str, value, entry->scale);
    }
  add_info_samples (expo, info, id_labels);
}

/* --- /metrics: the servers' requests ---------------------------------------- */

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static GPtrArray *
sorted_keys (GHashTable *table)
{
  GPtrArray *keys = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (keys, key);
  g_ptr_array_sort (keys, compare_strings);
  return keys;
}

static void
add_server_requests (HttpExposition *expo,
                     ExoHttpServer  *server,
                     const char     *id_labels)
{
  HttpFamily *requests =
    http_exposition_family (expo, "exo_http_requests_total", "counter",
                            "HTTP requests answered, by route (\"other\": a path no route serves) and "
                            "status code (499: the client left before the answer was sent).");
  HttpFamily *durations =
    http_exposition_family (expo, "exo_http_request_duration_seconds", "histogram",
                            "Time from the start of a request to the end of its answer (of a stream: "
                            "its last event), by route.");
  HttpFamily *ttft =
    http_exposition_family (expo, "exo_chat_time_to_first_token_seconds", "histogram",
                            "Time from the start of a chat request to its first token.");
  g_autoptr(GPtrArray) keys = sorted_keys (server->metrics->counts);
  g_autoptr(GPtrArray) routes = sorted_keys (server->metrics->durations);
  g_autoptr(GString) labels = g_string_new (NULL);

  for (guint i = 0; requests != NULL && i < keys->len; i++)
    {
      const char *key = g_ptr_array_index (keys, i);
      const char *sep = strchr (key, '\n');
      g_autofree char *route = g_strndup (key, sep - key);

      g_string_assign (labels, id_labels);
      http_labels_append (labels, "route", route);
      http_labels_append (labels, "code", sep + 1);
      http_family_add_u64 (requests, NULL, labels->str,
                           *(guint64 *) g_hash_table_lookup (server->metrics->counts, key));
    }
  for (guint i = 0; durations != NULL && i < routes->len; i++)
    {
      const char *route = g_ptr_array_index (routes, i);

      g_string_assign (labels, id_labels);
      http_labels_append (labels, "route", route);
      http_histogram_write (g_hash_table_lookup (server->metrics->durations, route), durations,
                            labels->str);
    }
  if (ttft != NULL)
    http_histogram_write (server->metrics->ttft, ttft, id_labels);
}

/* --- /metrics ------------------------------------------------------------ */

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
  HttpExposition *expo = http_exposition_new ();
  g_autoptr(GPtrArray) all = exo_registry_list (exo_registry_get_default ());
  g_autoptr(GHashTable) targets = g_hash_table_new_full (NULL, NULL, NULL,
                                                         (GDestroyNotify) entry_target_free);
  g_autoptr(GString) id_labels = g_string_new (NULL);
  g_autoptr(GString) labels = g_string_new (NULL);
  GMainContext *context = exo_resource_get_context (EXO_RESOURCE (self));
  HttpFamily *state =
    http_exposition_family (expo, "exo_resource_state", "gauge",
                            "The state of each resource (value 1); `exoctl list` shows them.");
  HttpFamily *errors =
    http_exposition_family (expo, "exo_resource_errors_total", "counter",
                            "Errors each resource has had; `exoctl status ID` shows the last.");
  HttpFamily *build;

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

  for (guint i = 0; i < all->len; i++)
    {
      ExoResource *resource = g_ptr_array_index (all, i);

      g_string_truncate (id_labels, 0);
      http_labels_append (id_labels, "id", exo_resource_get_id (resource));
      g_string_assign (labels, id_labels->str);
      http_labels_append (labels, "type", exo_resource_get_resource_type (resource));
      http_labels_append (labels, "state", exo_resource_state_to_string (exo_resource_get_state (resource)));
      http_family_add_u64 (state, NULL, labels->str, 1);
      http_family_add_u64 (errors, NULL, id_labels->str, exo_resource_get_error_count (resource));
      add_resource_metrics (expo, targets, resource, id_labels->str);
      /* another context's server is counted in its own thread: not read */
      if (EXO_IS_HTTP_SERVER (resource) && exo_resource_get_context (resource) == context)
        add_server_requests (expo, EXO_HTTP_SERVER (resource), id_labels->str);
    }

  http_exposition_add_process (expo, &self->metrics->start_time);
  build = http_exposition_family (expo, "exo_build_info", "gauge",
                                  "The version of libexo this node runs and its plugin ABI (value 1); "
                                  "`exoctl node` shows the node's.");
  if (build != NULL)
    {
      g_autofree char *abi = g_strdup_printf ("%d.%d", EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR);

      g_string_truncate (labels, 0);
      http_labels_append (labels, "version", EXO_VERSION_STRING);
      http_labels_append (labels, "abi", abi);
      http_family_add_u64 (build, NULL, labels->str, 1);
    }
  return http_exposition_end (expo);
}

void
http_server_handle_metrics (ExoHttpServer     *self,
                            SoupServerMessage *msg,
                            const guint8      *body,
                            gsize              body_len)
{
  http_server_respond_string (msg, SOUP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
                              render_metrics (self));
}

/* --- the resource's metrics --------------------------------------------- */

/* Counters of earlier listens are kept: the metrics count since start. */
void
http_server_connection_stats (ExoHttpServer       *self,
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
  out->body_timeouts += now.body_timeouts;
  out->refused += now.refused;
  out->idle_timeouts += now.idle_timeouts;
  out->closed_idle += now.closed_idle;
  out->client_gone += now.client_gone;
  out->accept_pauses += now.accept_pauses;
  out->open = now.open;
  out->accept_paused = now.accept_paused;
}

void
http_server_collect_metrics (ExoHttpServer *self,
                             GVariantDict  *metrics)
{
  g_variant_dict_insert (metrics, "port", "u", (guint) exo_server_get_port (EXO_SERVER (self)));
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

    http_server_connection_stats (self, &c);
    g_variant_dict_insert (metrics, "max-connections", "u", self->max_connections);
    g_variant_dict_insert (metrics, "connections", "t", c.accepted);
    g_variant_dict_insert (metrics, "connections-open", "u", c.open);
    g_variant_dict_insert (metrics, "connections-rejected", "t", c.rejected);
    g_variant_dict_insert (metrics, "connections-closed-idle", "t", c.closed_idle);
    g_variant_dict_insert (metrics, "connections-client-gone", "t", c.client_gone);
    g_variant_dict_insert (metrics, "header-timeouts", "t", c.header_timeouts);
    g_variant_dict_insert (metrics, "body-timeouts", "t", c.body_timeouts);
    g_variant_dict_insert (metrics, "requests-refused-framing", "t", c.refused);
    g_variant_dict_insert (metrics, "idle-timeouts", "t", c.idle_timeouts);
    g_variant_dict_insert (metrics, "accept-pauses", "t", c.accept_pauses);
    g_variant_dict_insert (metrics, "accept-paused", "b", c.accept_paused);
  }
  g_variant_dict_insert (metrics, "duplicate-peer-calls", "t", self->n_duplicate_calls);
  g_variant_dict_insert (metrics, "keep-alive", "b", self->keepalive_socket != NULL);
  exo_http_auth_collect_metrics (self->auth, metrics);
  http_server_streams_collect_metrics (self, metrics);
}

/* What the keys above are in /metrics (docs/metrics.md); requests are
 * counted by route and code in exo_http_requests_total instead. */
static const ExoMetricEntry server_metric_entries[] = {
  { .key = "port", .kind = EXO_METRIC_INFO, .name = "exo_http_server_info",
    .help = "The server's address, port and cluster key fingerprint (value 1)." },
  { .key = "listen-address", .kind = EXO_METRIC_INFO, .name = "exo_http_server_info",
    .help = "The server's address, port and cluster key fingerprint (value 1)." },
  { .key = "requests", .kind = EXO_METRIC_HIDDEN },
  { .key = "client-errors", .kind = EXO_METRIC_HIDDEN },
  { .key = "server-errors", .kind = EXO_METRIC_HIDDEN },
  { .key = "requests-in-flight", .kind = EXO_METRIC_GAUGE, .name = "exo_http_requests_in_flight",
    .help = "Requests waiting for the node." },
  { .key = "streams", .kind = EXO_METRIC_COUNTER, .name = "exo_http_streams_total",
    .help = "Chats answered as server-sent events." },
  { .key = "request-timeouts", .kind = EXO_METRIC_COUNTER, .name = "exo_http_request_timeouts_total",
    .help = "Requests the node did not answer within request-timeout-ms." },
  { .key = "max-connections", .kind = EXO_METRIC_GAUGE, .name = "exo_http_connections_max",
    .help = "The server's max-connections." },
  { .key = "connections", .kind = EXO_METRIC_COUNTER, .name = "exo_http_connections_accepted_total",
    .help = "Connections accepted." },
  { .key = "connections-open", .kind = EXO_METRIC_GAUGE, .name = "exo_http_connections_open",
    .help = "Connections open now." },
  { .key = "connections-rejected", .kind = EXO_METRIC_COUNTER, .name = "exo_http_connections_rejected_total",
    .help = "Connections answered 503 at max-connections." },
  { .key = "connections-closed-idle", .kind = EXO_METRIC_COUNTER,
    .name = "exo_http_connections_closed_idle_total",
    .help = "Connections the client closed between requests." },
  { .key = "connections-client-gone", .kind = EXO_METRIC_COUNTER,
    .name = "exo_http_connections_client_gone_total",
    .help = "Connections the client closed during a request." },
  { .key = "header-timeouts", .kind = EXO_METRIC_COUNTER, .name = "exo_http_header_timeouts_total",
    .help = "Connections closed for a request head not complete within header-timeout-ms." },
  { .key = "body-timeouts", .kind = EXO_METRIC_COUNTER, .name = "exo_http_body_timeouts_total",
    .help = "Connections closed for a body that came too slowly." },
  { .key = "requests-refused-framing", .kind = EXO_METRIC_COUNTER,
    .name = "exo_http_requests_refused_framing_total",
    .help = "Requests refused from their head (400, 413) and their connection closed." },
  { .key = "idle-timeouts", .kind = EXO_METRIC_COUNTER, .name = "exo_http_idle_timeouts_total",
    .help = "Kept-alive connections closed after idle-timeout-ms." },
  { .key = "accept-pauses", .kind = EXO_METRIC_COUNTER, .name = "exo_http_accept_pauses_total",
    .help = "Times accepting paused for lack of descriptors (see process_open_fds)." },
  { .key = "accept-paused", .kind = EXO_METRIC_GAUGE, .name = "exo_http_accept_paused",
    .help = "1 while the server does not accept connections for lack of descriptors." },
  { .key = "duplicate-peer-calls", .kind = EXO_METRIC_COUNTER, .name = "exo_http_duplicate_peer_calls_total",
    .help = "Peer calls received again (a retry) and not run twice." },
  { .key = "keep-alive", .kind = EXO_METRIC_GAUGE, .name = "exo_http_listening",
    .help = "1 while the server listens." },
};

void
http_server_add_metric_entries (ExoResourceClass *klass)
{
  exo_resource_class_add_metric_entries (klass, server_metric_entries,
                                         G_N_ELEMENTS (server_metric_entries));
  exo_http_auth_add_metric_entries (klass);
  http_server_streams_add_metric_entries (klass);
}
