/* exo-bench.c: runs the benchmarks named on the command line (all by default)
 * and prints one JSON object per line.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tables of the optional bench-*.c files. */
extern const BenchEntry bench_pool_entries[] __attribute__((weak));
extern const BenchEntry bench_group_entries[] __attribute__((weak));
extern const BenchEntry bench_daemon_entries[] __attribute__((weak));
extern const BenchEntry bench_cluster_entries[] __attribute__((weak));
extern const BenchEntry bench_recovery_entries[] __attribute__((weak));
extern const BenchEntry bench_http_entries[] __attribute__((weak));
extern const BenchEntry bench_llama_entries[] __attribute__((weak));
extern const BenchEntry bench_python_entries[] __attribute__((weak));

void
bench_report (const char *name,
              double      value,
              const char *unit,
              guint64     n,
              const char *extra_json)
{
  printf ("{\"bench\": \"%s\", \"value\": %.3f, \"unit\": \"%s\", \"n\": %" G_GUINT64_FORMAT "%s}\n",
          name, value, unit, n, extra_json != NULL ? extra_json : "");
  fflush (stdout);
}

static int
cmp_double (const void *a,
            const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y ? 1 : 0;
}

double
bench_median (double *values,
              guint   n_values)
{
  g_assert (n_values > 0);
  qsort (values, n_values, sizeof (double), cmp_double);
  if (n_values % 2 == 1)
    return values[n_values / 2];
  return (values[n_values / 2 - 1] + values[n_values / 2]) / 2.0;
}

gint64
bench_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

void
bench_wait_flag (gboolean *flag)
{
  GMainContext *context = g_main_context_get_thread_default ();

  if (context == NULL)
    context = g_main_context_default ();
  while (!*flag)
    g_main_context_iteration (context, TRUE);
}

static gboolean
wanted (int argc, char **argv, const char *name)
{
  if (argc <= 1)
    return TRUE;
  for (int i = 1; i < argc; i++)
    if (strcmp (argv[i], name) == 0)
      return TRUE;
  return FALSE;
}

int
main (int argc, char **argv)
{
  const BenchEntry *tables[9];
  guint n_tables = 0;
  guint ran = 0;

  if (argc > 1 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "--list") == 0))
    {
      printf ("usage: exo-bench [NAME...]\nbenchmarks:\n");
      argc = 1;
    }

  tables[n_tables++] = bench_core_entries;
  if (bench_pool_entries != NULL)
    tables[n_tables++] = bench_pool_entries;
  if (bench_group_entries != NULL)
    tables[n_tables++] = bench_group_entries;
  if (bench_daemon_entries != NULL)
    tables[n_tables++] = bench_daemon_entries;
  if (bench_cluster_entries != NULL)
    tables[n_tables++] = bench_cluster_entries;
  if (bench_recovery_entries != NULL)
    tables[n_tables++] = bench_recovery_entries;
  if (bench_http_entries != NULL)
    tables[n_tables++] = bench_http_entries;
  if (bench_llama_entries != NULL)
    tables[n_tables++] = bench_llama_entries;
  if (bench_python_entries != NULL)
    tables[n_tables++] = bench_python_entries;

  if (argv[1] != NULL && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "--list") == 0))
    {
      for (guint t = 0; t < n_tables; t++)
        for (const BenchEntry *e = tables[t]; e->name != NULL; e++)
          printf ("  %s\n", e->name);
      return 0;
    }

  for (guint t = 0; t < n_tables; t++)
    for (const BenchEntry *e = tables[t]; e->name != NULL; e++)
      if (wanted (argc, argv, e->name))
        {
          e->func ();
          ran++;
        }

  if (ran == 0)
    {
      fprintf (stderr, "exo-bench: no benchmark matches; try --list\n");
      return 2;
    }
  return 0;
}
