/* bench-core.c: the resource contract's hot paths.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bench.h"

#include <malloc.h>
#include <stdio.h>

#define BENCH_TYPE_TRIVIAL (bench_trivial_get_type ())
G_DECLARE_FINAL_TYPE (BenchTrivial, bench_trivial, BENCH, TRIVIAL, ExoResource)

struct _BenchTrivial
{
  ExoResource parent_instance;
};

G_DEFINE_FINAL_TYPE (BenchTrivial, bench_trivial, EXO_TYPE_RESOURCE)

static void
bench_trivial_do_initialize (ExoResource *self,
                             GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
bench_trivial_class_init (BenchTrivialClass *klass)
{
  EXO_RESOURCE_CLASS (klass)->do_initialize = bench_trivial_do_initialize;
  EXO_RESOURCE_CLASS (klass)->do_cleanup = bench_trivial_do_initialize;
  exo_resource_class_set_resource_type (EXO_RESOURCE_CLASS (klass), "trivial");
}

static void
bench_trivial_init (BenchTrivial *self)
{
}

#define RUNS 7

static void
count_cb (ExoResource      *resource,
          ExoResourceState  old_state,
          ExoResourceState  new_state,
          gpointer          data)
{
  (*(guint64 *) data)++;
}

static void
done_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      data)
{
  *(gboolean *) data = TRUE;
}

static ExoResource *
make_ready (const char *id)
{
  ExoResource *r = g_object_new (BENCH_TYPE_TRIVIAL, "id", id, NULL);
  gboolean done = FALSE;

  exo_resource_initialize_async (r, NULL, done_cb, &done);
  bench_wait_flag (&done);
  g_assert (exo_resource_get_state (r) == EXO_RESOURCE_STATE_READY);
  return r;
}

static void
bench_transition (void)
{
  const guint64 n = 1000000;
  double results[RUNS];
  guint64 seen = 0;
  ExoResource *r = make_ready ("bench-transition");

  g_signal_connect (r, "state-changed", G_CALLBACK (count_cb), &seen);

  for (guint run = 0; run < RUNS; run++)
    {
      gint64 t0 = bench_now_ns ();
      for (guint64 i = 0; i < n / 2; i++)
        {
          exo_resource_transition (r, EXO_RESOURCE_STATE_DEGRADED, NULL);
          exo_resource_transition (r, EXO_RESOURCE_STATE_READY, NULL);
        }
      results[run] = (double) (bench_now_ns () - t0) / (double) n;
    }

  g_assert (seen == n * RUNS);
  {
    char extra[64];
    g_snprintf (extra, sizeof extra, ", \"handlers\": 1, \"runs\": %d", RUNS);
    bench_report ("transition_ns", bench_median (results, RUNS), "ns", n, extra);
  }
  g_object_unref (r);
}

static void
bench_lifecycle (void)
{
  const guint n = 20000;
  double results[RUNS];

  for (guint run = 0; run < RUNS; run++)
    {
      gint64 t0 = bench_now_ns ();
      for (guint i = 0; i < n; i++)
        {
          ExoResource *r = g_object_new (BENCH_TYPE_TRIVIAL, "id", "bench-lifecycle", NULL);
          gboolean done = FALSE;

          exo_resource_initialize_async (r, NULL, done_cb, &done);
          bench_wait_flag (&done);
          done = FALSE;
          exo_resource_cleanup_async (r, NULL, done_cb, &done);
          bench_wait_flag (&done);
          g_object_unref (r);
        }
      results[run] = (double) (bench_now_ns () - t0) / (double) n;
    }

  bench_report ("resource_lifecycle_ns", bench_median (results, RUNS), "ns", n, "");
}

static long
rss_kib (void)
{
  long pages = 0, resident = 0;
  FILE *f = fopen ("/proc/self/statm", "r");

  if (f == NULL)
    return 0;
  if (fscanf (f, "%ld %ld", &pages, &resident) != 2)
    resident = 0;
  fclose (f);
  return resident * (sysconf (_SC_PAGESIZE) / 1024);
}

static void
bench_bytes_per_resource (void)
{
  const guint n = 100000;
  GPtrArray *all = g_ptr_array_new_full (n, g_object_unref);
  struct mallinfo2 before, after;
  long rss_before, rss_after;
  char extra[240];
  double heap_per;

  /* Warm up types and the registry. */
  g_object_unref (make_ready ("warmup"));

  malloc_trim (0);
  before = mallinfo2 ();
  rss_before = rss_kib ();

  for (guint i = 0; i < n; i++)
    {
      char id[32];
      g_snprintf (id, sizeof id, "res-%u", i);
      g_ptr_array_add (all, make_ready (id));
    }

  after = mallinfo2 ();
  rss_after = rss_kib ();

  heap_per = (double) (after.uordblks - before.uordblks) / n;
  /* "value" is malloc's heap in use; blocks malloc maps by themselves (the
   * large arrays: registry table) are not in it, but in mmap_bytes */
  g_snprintf (extra, sizeof extra,
              ", \"rss_bytes_per_resource\": %.1f, \"mmap_bytes_per_resource\": %.1f, "
              "\"state\": \"ready\", \"registered\": %u",
              (double) (rss_after - rss_before) * 1024.0 / n,
              ((double) after.hblkhd - (double) before.hblkhd) / n,
              exo_registry_get_size (exo_registry_get_default ()));
  bench_report ("bytes_per_resource", heap_per, "bytes", n, extra);

  g_ptr_array_unref (all);
}

/* The same, the way exo-node makes them: all members of one group,
 * initialized together by the group (@managed: ExoManagedResource
 * subclasses, as plugins' types are). */
#define BENCH_TYPE_MANAGED (bench_managed_get_type ())
G_DECLARE_FINAL_TYPE (BenchManaged, bench_managed, BENCH, MANAGED, ExoManagedResource)
struct _BenchManaged { ExoManagedResource parent_instance; };
G_DEFINE_FINAL_TYPE (BenchManaged, bench_managed, EXO_TYPE_MANAGED_RESOURCE)

static void
bench_managed_class_init (BenchManagedClass *klass)
{
  EXO_RESOURCE_CLASS (klass)->do_initialize = bench_trivial_do_initialize;
}

static void
bench_managed_init (BenchManaged *self)
{
}

static void
bytes_per_resource_in_group (const char *name,
                             GType       type)
{
  const guint n = 100000;
  ExoResourceGroup *group;
  struct mallinfo2 before, after;
  long rss_before, rss_after;
  gboolean done = FALSE;
  char extra[280];

  malloc_trim (0);
  before = mallinfo2 ();
  rss_before = rss_kib ();

  group = exo_resource_group_new (name);
  for (guint i = 0; i < n; i++)
    {
      char id[32];
      ExoResource *r;

      g_snprintf (id, sizeof id, "m-%u", i);
      r = g_object_new (type, "id", id, NULL);
      if (!exo_resource_group_add (group, r, NULL, NULL))
        g_error ("bench: cannot add %s", id);
      g_object_unref (r);
    }
  exo_resource_initialize_async (EXO_RESOURCE (group), NULL, done_cb, &done);
  bench_wait_flag (&done);
  if (exo_resource_get_state (EXO_RESOURCE (group)) != EXO_RESOURCE_STATE_READY)
    g_error ("bench: the group is not ready");
  while (g_main_context_iteration (NULL, FALSE))
    ;

  after = mallinfo2 ();
  rss_after = rss_kib ();
  /* "value" is malloc's heap in use; blocks malloc maps by themselves (the
   * large arrays: member tables, registry) are not in it, but in mmap_bytes */
  g_snprintf (extra, sizeof extra,
              ", \"rss_bytes_per_resource\": %.1f, \"mmap_bytes_per_resource\": %.1f, "
              "\"state\": \"ready\", \"how\": \"members of one group, initialized by it\", "
              "\"type\": \"%s\"",
              (double) (rss_after - rss_before) * 1024.0 / n,
              ((double) after.hblkhd - (double) before.hblkhd) / n, g_type_name (type));
  bench_report (name, (double) (after.uordblks - before.uordblks) / n, "bytes", n, extra);

  done = FALSE;
  exo_resource_cleanup_async (EXO_RESOURCE (group), NULL, done_cb, &done);
  bench_wait_flag (&done);
  g_object_unref (group);
}

static void
bench_bytes_per_resource_group (void)
{
  bytes_per_resource_in_group ("bytes_per_resource_group", BENCH_TYPE_TRIVIAL);
}

static void
bench_bytes_per_managed_resource_group (void)
{
  bytes_per_resource_in_group ("bytes_per_managed_resource_group", BENCH_TYPE_MANAGED);
}

const BenchEntry bench_core_entries[] = {
  { "transition_ns", bench_transition },
  { "resource_lifecycle_ns", bench_lifecycle },
  { "bytes_per_resource", bench_bytes_per_resource },
  { "bytes_per_resource_group", bench_bytes_per_resource_group },
  { "bytes_per_managed_resource_group", bench_bytes_per_managed_resource_group },
  { NULL, NULL },
};
