/* http-metrics.c: what ExoHttpServer counts, and how it tells it.
 *
 * Owns:
 *  - request counting: every answered request (libsoup's
 *    "request-finished" and "request-aborted"), by route ("other" for a
 *    path no route serves) and status, and the client and server errors;
 *    a request whose client left before any status was set is not counted;
 *  - GET /metrics, in Prometheus' text format (version 0.0.4): every
 *    resource of the registry (state, errors, numeric metrics; one sample
 *    per id), every pool's statistics, and this server's requests by path
 *    and code and requests in flight;
 *  - the resource's collect_metrics (exoctl metrics, D-Bus): the server's
 *    counters, those of its connections (http-connections.c) summed over
 *    every listen since start, and authentication's (http-auth.c).
 *
 * Rules: everything runs in the server's GMainContext, the registry's
 * resources are read there too; no locks (a pool's statistics are taken
 * under the pool's own lock, by exo_resource_pool_get_stats()).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-server-private.h"

#include <string.h>

/* --- request counting ---------------------------------------------------- */

static void
count_request (ExoHttpServer     *self,
               SoupServerMessage *msg)
{
  GUri *uri = soup_server_message_get_uri (msg);
  const char *route = uri != NULL ? http_server_route_path (g_uri_get_path (uri)) : NULL;
  guint status = soup_server_message_get_status (msg);
  g_autofree char *key = NULL;
  guint64 *count;

  if (status == 0)
    return;   /* the client left before anything was answered */
  key = g_strdup_printf ("%s\n%u", route != NULL ? route : "other", status);
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

void
http_server_request_finished_cb (SoupServer        *server,
                                 SoupServerMessage *msg,
                                 ExoHttpServer     *self)
{
  count_request (self, msg);
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
}
