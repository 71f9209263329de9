/* pipeline-monitor.c: the program's terminal output — event lines, and with
 * --monitor-resources a live view of the resources, the session pool and the
 * progress: redrawn in place on a terminal, one plain line now and then
 * otherwise.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Main context only.  The view reads the same figures exo-node exports on
 * D-Bus: each resource's state and its metrics (exo_resource_get_metrics()).
 * On a terminal each line of the view is cut to the terminal's width (asked
 * at each redraw), so that it takes one row and the redraw moves up by the
 * number of lines it drew.
 */
#include "pipeline-monitor.h"

#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct _PipelineMonitor
{
  GPtrArray        *resources;    /* ExoResource, in the order shown */
  PipelineRun      *run;
  gboolean          tty;
  guint             timer_id;
  guint             lines_drawn;  /* of the view, on a terminal */
};

#define TTY_INTERVAL_MS   100
#define PLAIN_INTERVAL_MS 500
#define BAR_WIDTH         32
#define MAX_COLUMNS       1000

/* The terminal's width: its window size, else $COLUMNS, else 80. */
static guint
terminal_columns (void)
{
  struct winsize size;
  const char *columns = g_getenv ("COLUMNS");
  guint64 n;

  if (ioctl (STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
    return MIN (size.ws_col, MAX_COLUMNS);
  if (columns != NULL && g_ascii_string_to_unsigned (columns, 10, 1, MAX_COLUMNS, &n, NULL))
    return n;
  return 80;
}

/* Prints @text as one row of a terminal @columns wide: at most @columns - 1
 * characters (a full row would leave the cursor at its edge, where some
 * terminals wrap), cut with "…".  The view's text is ASCII, one column a
 * character. */
static void
print_row (const char *text,
           guint       columns)
{
  glong room = MAX ((glong) columns - 1, 2);

  if (g_utf8_strlen (text, -1) <= room)
    printf ("%s\n", text);
  else
    {
      const char *end = g_utf8_offset_to_pointer (text, room - 1);

      printf ("%.*s…\n", (int) (end - text), text);
    }
}

static guint64
metric (GVariant   *metrics,
        const char *key)
{
  guint64 t = 0;
  guint32 u = 0;

  if (g_variant_lookup (metrics, key, "t", &t))
    return t;
  if (g_variant_lookup (metrics, key, "u", &u))
    return u;
  return 0;
}

/* What matters about one resource, from its metrics. */
static char *
describe (ExoResource *resource,
          GVariant    *metrics)
{
  const char *type = exo_resource_get_resource_type (resource);

  if (g_str_equal (type, "pipeline-receiver"))
    return g_strdup_printf ("%" G_GUINT64_FORMAT " requests, %" G_GUINT64_FORMAT " rows stored, %"
                            G_GUINT64_FORMAT " duplicate batches, %" G_GUINT64_FORMAT " answered 503, %"
                            G_GUINT64_FORMAT " dropped",
                            metric (metrics, "requests"), metric (metrics, "rows"),
                            metric (metrics, "duplicate-batches"), metric (metrics, "answered-503"),
                            metric (metrics, "dropped"));
  if (g_str_equal (type, "pipeline-reader"))
    return g_strdup_printf ("%" G_GUINT64_FORMAT " rows read, %" G_GUINT64_FORMAT " failed attempts",
                            metric (metrics, "rows"), metric (metrics, "failed-attempts"));
  if (g_str_equal (type, "pipeline-processor"))
    return g_strdup_printf ("%" G_GUINT64_FORMAT " files written, %" G_GUINT64_FORMAT " open, %"
                            G_GUINT64_FORMAT " failed attempts",
                            metric (metrics, "files-written"), metric (metrics, "open-files"),
                            metric (metrics, "failed-attempts"));
  if (g_str_equal (type, "pipeline-uploader"))
    return g_strdup_printf ("%" G_GUINT64_FORMAT " rows uploaded, %" G_GUINT64_FORMAT
                            " failed attempts; sessions: %" G_GUINT64_FORMAT " idle, %"
                            G_GUINT64_FORMAT " in use, %" G_GUINT64_FORMAT " waiting (%"
                            G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                            " made)",
                            metric (metrics, "rows"), metric (metrics, "failed-attempts"),
                            metric (metrics, "pool-idle"), metric (metrics, "pool-in-use"),
                            metric (metrics, "pool-waiting"), metric (metrics, "pool-size"),
                            metric (metrics, "pool-max-size"), metric (metrics, "pool-created"));
  if (g_str_equal (type, "pipeline-run"))
    return g_strdup_printf ("%" G_GUINT64_FORMAT " batches in flight, %" G_GUINT64_FORMAT " retries",
                            metric (metrics, "in-flight"), metric (metrics, "retries"));
  return g_strdup ("");
}

static char *
progress (PipelineMonitor *self,
          gboolean         bar)
{
  PipelineRunStats stats;
  double fraction;
  GString *out = g_string_new (NULL);

  pipeline_run_get_stats (self->run, &stats);
  fraction = stats.rows_total > 0 ? (double) stats.rows_uploaded / stats.rows_total : 0.0;
  if (bar)
    {
      guint filled = (guint) (fraction * BAR_WIDTH);

      g_string_append_c (out, '[');
      for (guint i = 0; i < BAR_WIDTH; i++)
        g_string_append_c (out, i < filled ? '#' : '-');
      g_string_append (out, "]  ");
    }
  g_string_append_printf (out, "%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " rows uploaded (%.0f%%)  %.1f s",
                          stats.rows_uploaded, stats.rows_total, fraction * 100, stats.elapsed_us / 1e6);
  return g_string_free (out, FALSE);
}

static void
erase_view (PipelineMonitor *self)
{
  if (self->lines_drawn > 0)
    printf ("\033[%uA\033[J", self->lines_drawn);
  self->lines_drawn = 0;
}

static void
draw_view (PipelineMonitor *self)
{
  g_autofree char *bar = progress (self, TRUE);
  g_autofree char *last = g_strconcat ("  ", bar, NULL);
  guint columns = terminal_columns ();

  for (guint i = 0; i < self->resources->len; i++)
    {
      ExoResource *resource = g_ptr_array_index (self->resources, i);
      g_autoptr(GVariant) metrics = exo_resource_get_metrics (resource);
      g_autofree char *what = describe (resource, metrics);
      g_autofree char *line = g_strdup_printf ("  %-10s %-9s %s", exo_resource_get_id (resource),
                                               exo_resource_state_to_string (exo_resource_get_state (resource)),
                                               what);

      print_row (line, columns);
      self->lines_drawn++;
    }
  print_row (last, columns);
  self->lines_drawn++;
}

static void
print_plain (PipelineMonitor *self)
{
  g_autofree char *line = progress (self, FALSE);
  GString *states = g_string_new ("monitor:");
  ExoPoolStats pool = { 0, };

  for (guint i = 0; i < self->resources->len; i++)
    {
      ExoResource *resource = g_ptr_array_index (self->resources, i);

      g_string_append_printf (states, " %s %s%s", exo_resource_get_id (resource),
                              exo_resource_state_to_string (exo_resource_get_state (resource)),
                              i + 1 < self->resources->len ? "," : "");
      if (PIPELINE_IS_UPLOADER (resource))
        pipeline_uploader_get_pool_stats (PIPELINE_UPLOADER (resource), &pool);
    }
  printf ("%s | sessions idle %u, in use %u, waiting %u | %s\n",
          states->str, pool.idle, pool.in_use, pool.waiting, line);
  g_string_free (states, TRUE);
}

static gboolean
tick_cb (gpointer user_data)
{
  PipelineMonitor *self = user_data;

  if (self->tty)
    {
      erase_view (self);
      draw_view (self);
    }
  else
    print_plain (self);
  fflush (stdout);
  return G_SOURCE_CONTINUE;
}

/**
 * pipeline_monitor_new:
 * @resources: (element-type ExoResource): what to show, in that order
 * @enabled: whether to show the live view (--monitor-resources)
 */
PipelineMonitor *
pipeline_monitor_new (GPtrArray   *resources,
                      PipelineRun *run,
                      gboolean     enabled)
{
  PipelineMonitor *self = g_new0 (PipelineMonitor, 1);
  const char *term = g_getenv ("TERM");

  self->resources = g_ptr_array_ref (resources);
  self->run = g_object_ref (run);
  self->tty = isatty (STDOUT_FILENO) && term != NULL && !g_str_equal (term, "dumb");
  if (enabled)
    self->timer_id = g_timeout_add (self->tty ? TTY_INTERVAL_MS : PLAIN_INTERVAL_MS, tick_cb, self);
  return self;
}

/* Prints @line above the view. */
void
pipeline_monitor_say (PipelineMonitor *self,
                      const char      *line)
{
  gboolean redraw = self->lines_drawn > 0;

  erase_view (self);
  printf ("%s\n", line);
  if (redraw)
    draw_view (self);
  fflush (stdout);
}

/* Draws the view a last time and leaves it on the screen. */
void
pipeline_monitor_stop (PipelineMonitor *self)
{
  if (self->timer_id == 0)
    return;
  g_clear_handle_id (&self->timer_id, g_source_remove);
  tick_cb (self);
  self->lines_drawn = 0;
}

void
pipeline_monitor_free (PipelineMonitor *self)
{
  g_clear_handle_id (&self->timer_id, g_source_remove);
  g_ptr_array_unref (self->resources);
  g_object_unref (self->run);
  g_free (self);
}
