/* cluster-calls.c: chats run by curl in the background through a node of
 * a Cluster (cluster-harness.h), and waiting on their way through a ring:
 * start_curl(), end_curls(), flow_through(), wait_double().
 *
 * Thread rules: one thread, the test's; the waits iterate the default
 * main context (the curl processes' output arrives there).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cluster-harness.h"

#include <signal.h>

void
end_curls (AsyncCurl *curls,
           guint      n)
{
  for (guint i = 0; i < n; i++)
    {
      if (curls[i].proc != NULL)
        {
          end_process (&curls[i].proc, SIGKILL, 2000);
          while (!curls[i].done)
            g_main_context_iteration (NULL, TRUE);
        }
      g_clear_pointer (&curls[i].out, g_free);
    }
}

gboolean
start_curl (Cluster    *c,
            Node       *n,
            const char *request,
            AsyncCurl  *ac,
            char      **why)
{
  g_autoptr(GPtrArray) argv = curl_argv (c, n, "POST", "/v1/chat/completions", request, 30);
  g_autoptr(GError) error = NULL;

  ac->proc = spawn ((const char * const *) argv->pdata, NULL, NULL,
                    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error);
  if (ac->proc == NULL)
    {
      *why = g_strdup_printf ("curl: %s", error->message);
      return FALSE;
    }
  g_subprocess_communicate_utf8_async (ac->proc, NULL, NULL, async_curl_done, ac);
  return TRUE;
}

/* Until the live double metric @name of resource @id of @n is @cmp @value
 * (cmp 1: at least, -1: at most), at most @timeout_ms; the last value. */
double
wait_double (Cluster    *c,
             Node       *n,
             const char *id,
             const char *name,
             int         cmp,
             double      value,
             guint       timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  double now;

  while (now = live_resource_metric_double (c, n, id, name),
         !(cmp > 0 ? now >= value : now <= value) && g_get_monotonic_time () < deadline)
    {
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (10 * 1000);
    }
  return now;
}

/* Sends @request to @api and waits until it has gone through @through a
 * few times (its layers-computed grew by 8: @base → @now), still running. */
gboolean
flow_through (Cluster    *c,
              Node       *api,
              Node       *through,
              const char *request,
              AsyncCurl  *inflight,
              gint64     *base,
              gint64     *now,
              char      **why)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  *now = -1;
  *base = live_node_metric (c, through, "exo_node_layers_computed_total");
  if (*base < 0 || !start_curl (c, api, request, inflight, why))
    {
      if (*why == NULL)
        *why = g_strdup_printf ("%s has no layers-computed metric", through->id);
      return FALSE;
    }
  while (!inflight->done && g_get_monotonic_time () < deadline &&
         (*now = live_node_metric (c, through, "exo_node_layers_computed_total")) < *base + 8)
    {
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (2 * 1000);
    }
  if (inflight->done || *now < *base + 8)
    {
      *why = g_strdup_printf ("the request did not flow through %s (layers-computed %"
                              G_GINT64_FORMAT " → %" G_GINT64_FORMAT ") or ended before the "
                              "kill: %s", through->id, *base, *now, inflight->out ? inflight->out : "");
      return FALSE;
    }
  return TRUE;
}
