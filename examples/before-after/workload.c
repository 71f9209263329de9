/* workload.c: one client under the workload, in a process of its own.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * `exo-example-before-after --client before|after ADDRESS DURATION_MS
 * INTERVAL_MS SEED`: one call every INTERVAL_MS, one at a time (a slow call
 * delays the next; missed ticks are skipped, not made up), for DURATION_MS.
 * No call starts after the end; one still in flight CLIENT_TIMEOUT_MS after
 * it is cancelled (the after client; the before client's calls end by
 * themselves within about as long) and counts as failed.  Then the client is closed and freed, and the process reports on
 * stdout, for the orchestrator:
 *
 *   ERROR <count> <message>      one line per kind of failure
 *   RESULT key=value …           the figures
 *
 * The file descriptors are counted here, in the client's own process, before
 * the client is made and after it is gone.  A heartbeat on the main loop
 * measures the longest stall of the caller's thread.  SIGINT (Ctrl-C, or
 * the orchestrator when it is interrupted) ends the workload early: no call
 * starts after it, the one in flight is cancelled, and the report covers
 * the calls made.  One thread, the default main context.
 */
#include "before-after.h"
#include "clients.h"

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>

#define HEARTBEAT_MS     10
#define ERROR_KINDS_MAX  16

typedef struct
{
  BeforeClient *before;
  AfterClient  *after;
  GMainLoop    *loop;
  GCancellable *stop;
  gint64        start_us;
  gint64        end_us;
  gint64        next_due_us;
  gint64        finished_us;   /* when the last call ended */
  gint64        call_start_us;
  gint64        last_beat_us;
  gint64        max_stall_us;
  guint         interval_ms;
  guint         seq;
  guint         heartbeat_id;
  guint         time_up_id;
  guint         next_call_id;   /* while no call is in flight */
  guint         interrupt_id;
  guint64       attempted;
  guint64       succeeded;
  guint64       connects;
  GArray       *latencies_ms;   /* double, one per call */
  GHashTable   *errors;         /* message → ErrorKind */
} Workload;

typedef struct
{
  guint64 count;
} ErrorKind;

static gboolean issue_call (gpointer data);

int
count_open_fds (void)
{
  GDir *dir = g_dir_open ("/proc/self/fd", 0, NULL);
  int n = 0;

  if (dir == NULL)
    return -1;
  while (g_dir_read_name (dir) != NULL)
    n++;
  g_dir_close (dir);
  return n - 1;   /* the directory itself */
}

/* Failures by message (one line each in the report); after ERROR_KINDS_MAX
 * kinds, the rest as "other errors". */
static void
count_error (Workload     *w,
             const GError *error)
{
  g_autofree char *key = g_strdelimit (g_strdup (error->message), "\r\n", ' ');
  ErrorKind *kind = g_hash_table_lookup (w->errors, key);

  if (kind == NULL && g_hash_table_size (w->errors) >= ERROR_KINDS_MAX)
    {
      g_free (key);
      key = g_strdup ("other errors");
      kind = g_hash_table_lookup (w->errors, key);
    }
  if (kind == NULL)
    {
      kind = g_new0 (ErrorKind, 1);
      g_hash_table_insert (w->errors, g_steal_pointer (&key), kind);
    }
  kind->count++;
}

static gboolean
heartbeat_cb (gpointer data)
{
  Workload *w = data;
  gint64 now = g_get_monotonic_time ();

  w->max_stall_us = MAX (w->max_stall_us, now - w->last_beat_us - HEARTBEAT_MS * 1000);
  w->last_beat_us = now;
  return G_SOURCE_CONTINUE;
}

static void
after_closed_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      data)
{
  Workload *w = data;

  exo_resource_cleanup_finish (EXO_RESOURCE (source), result, NULL);
  g_clear_object (&w->after);
  g_main_loop_quit (w->loop);
}

/* The time is up and no call is in flight: close the client. */
static void
finish (Workload *w)
{
  w->finished_us = g_get_monotonic_time ();
  g_clear_handle_id (&w->heartbeat_id, g_source_remove);
  g_clear_handle_id (&w->time_up_id, g_source_remove);
  g_clear_handle_id (&w->interrupt_id, g_source_remove);
  if (w->before != NULL)
    {
      w->connects = before_client_get_connect_attempts (w->before);
      g_clear_pointer (&w->before, before_client_free);
      g_main_loop_quit (w->loop);
      return;
    }
  w->connects = exo_network_resource_get_connect_attempts (EXO_NETWORK_RESOURCE (w->after));
  exo_resource_cleanup_async (EXO_RESOURCE (w->after), NULL, after_closed_cb, w);
}

static void
call_done (Workload     *w,
           char         *reply,   /* owned */
           const GError *error)
{
  g_autofree char *expected = g_strdup_printf ("OK %u", w->seq);
  gint64 now = g_get_monotonic_time ();
  double latency_ms = (now - w->call_start_us) / 1000.0;

  w->attempted++;
  g_array_append_val (w->latencies_ms, latency_ms);
  if (reply != NULL && g_str_equal (reply, expected))
    w->succeeded++;
  else if (reply != NULL)
    {
      g_autoptr(GError) wrong = g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                             "a wrong reply: '%.40s'", reply);
      count_error (w, wrong);
    }
  else
    count_error (w, error);
  g_free (reply);

  if (now >= w->end_us)
    {
      finish (w);
      return;
    }
  w->next_due_us = MAX (w->next_due_us + w->interval_ms * 1000, now);
  w->next_call_id = g_timeout_add ((w->next_due_us - now) / 1000, issue_call, w);
}

static void
after_call_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  g_autoptr(GError) error = NULL;
  char *reply = after_client_call_finish (AFTER_CLIENT (source), result, &error);

  call_done (data, reply, error);
}

static gboolean
issue_call (gpointer data)
{
  Workload *w = data;
  g_autofree char *request = NULL;

  w->next_call_id = 0;
  w->call_start_us = g_get_monotonic_time ();
  if (w->call_start_us >= w->end_us)
    {
      finish (w);
      return G_SOURCE_REMOVE;
    }
  request = g_strdup_printf ("ECHO %u", ++w->seq);
  if (w->before != NULL)
    {
      g_autoptr(GError) error = NULL;
      char *reply = before_client_call (w->before, request, &error);

      call_done (w, reply, error);
    }
  else
    after_client_call_async (w->after, request, w->stop, after_call_cb, w);
  return G_SOURCE_REMOVE;
}

static gboolean
time_up_cb (gpointer data)
{
  Workload *w = data;

  w->time_up_id = 0;
  g_cancellable_cancel (w->stop);   /* a call still in flight ends now */
  return G_SOURCE_REMOVE;
}

/* Ctrl-C: the end is now. */
static gboolean
interrupt_cb (gpointer data)
{
  Workload *w = data;

  w->interrupt_id = 0;
  w->end_us = MIN (w->end_us, g_get_monotonic_time ());
  g_cancellable_cancel (w->stop);   /* the call in flight ends now */
  if (w->next_call_id != 0)
    {
      /* between two calls */
      g_clear_handle_id (&w->next_call_id, g_source_remove);
      finish (w);
    }
  return G_SOURCE_REMOVE;
}

static int
compare_doubles (gconstpointer a,
                 gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least @q of the values at or below it. */
static double
percentile (GArray *sorted,
            double  q)
{
  guint rank;

  if (sorted->len == 0)
    return 0;
  rank = (guint) (q * sorted->len + 0.999999);
  return g_array_index (sorted, double, CLAMP (rank, 1, sorted->len) - 1);
}

static void
report (Workload *w,
        int       fds_leaked)
{
  GHashTableIter iter;
  gpointer key, value;
  double elapsed_ms = (w->finished_us - w->start_us) / 1000.0;

  g_hash_table_iter_init (&iter, w->errors);
  while (g_hash_table_iter_next (&iter, &key, &value))
    printf ("ERROR %" G_GUINT64_FORMAT " %s\n", ((ErrorKind *) value)->count, (const char *) key);
  g_array_sort (w->latencies_ms, compare_doubles);
  printf ("RESULT attempted=%" G_GUINT64_FORMAT " succeeded=%" G_GUINT64_FORMAT
          " connects=%" G_GUINT64_FORMAT " elapsed_ms=%.1f p50_ms=%.3f p99_ms=%.3f"
          " max_ms=%.3f stall_ms=%.1f fds_leaked=%d\n",
          w->attempted, w->succeeded, w->connects, elapsed_ms,
          percentile (w->latencies_ms, 0.50), percentile (w->latencies_ms, 0.99),
          percentile (w->latencies_ms, 1.0),
          w->max_stall_us / 1000.0, fds_leaked);
  fflush (stdout);
}

int
workload_main (const char *which,
               const char *address,
               guint       duration_ms,
               guint       interval_ms,
               guint32     seed)
{
  Workload w = { 0, };
  int fds_before, fds_after;

  w.loop = g_main_loop_new (NULL, FALSE);
  w.stop = g_cancellable_new ();
  w.latencies_ms = g_array_new (FALSE, FALSE, sizeof (double));
  w.errors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  w.interval_ms = interval_ms;

  /* GLib makes its default proxy resolver (and with it two eventfds) at the
   * first connect of any GSocketClient and keeps it for the life of the
   * process: made now, so that what is counted below is the client's. */
  g_proxy_resolver_get_default ();
  fds_before = count_open_fds ();
  if (g_str_equal (which, "before"))
    w.before = before_client_new (address);
  else
    w.after = after_client_new (address, seed);

  w.start_us = w.next_due_us = w.last_beat_us = g_get_monotonic_time ();
  w.end_us = w.start_us + (gint64) duration_ms * 1000;
  w.heartbeat_id = g_timeout_add (HEARTBEAT_MS, heartbeat_cb, &w);
  w.time_up_id = g_timeout_add (duration_ms + CLIENT_TIMEOUT_MS, time_up_cb, &w);
  w.interrupt_id = g_unix_signal_add (SIGINT, interrupt_cb, &w);
  w.next_call_id = g_idle_add (issue_call, &w);
  g_main_loop_run (w.loop);

  /* let what the client left behind (idle callbacks, finalizers) run */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  fds_after = count_open_fds ();
  report (&w, fds_before < 0 || fds_after < 0 ? -1 : fds_after - fds_before);

  g_hash_table_unref (w.errors);
  g_array_unref (w.latencies_ms);
  g_object_unref (w.stop);
  g_main_loop_unref (w.loop);
  return 0;
}
