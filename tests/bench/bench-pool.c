/* bench-pool.c: ExoResourcePool's hot paths.
 *
 *   pool_cycle_ns        exo_resource_pool_try_acquire() + _release(), one thread
 *   pool_cycle_2t_ns     the same from two threads on a pool of 16:
 *                        wall time / total cycles of both threads
 *   pool_async_cycle_ns  exo_resource_pool_acquire_async() + lease release,
 *                        through the main loop
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bench.h"

#define BENCH_TYPE_POOLED (bench_pooled_get_type ())
G_DECLARE_FINAL_TYPE (BenchPooled, bench_pooled, BENCH, POOLED, ExoResource)

struct _BenchPooled
{
  ExoResource parent_instance;
};

G_DEFINE_FINAL_TYPE (BenchPooled, bench_pooled, EXO_TYPE_RESOURCE)

static void
bench_pooled_done (ExoResource *self,
                   GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
bench_pooled_class_init (BenchPooledClass *klass)
{
  EXO_RESOURCE_CLASS (klass)->do_initialize = bench_pooled_done;
  EXO_RESOURCE_CLASS (klass)->do_cleanup = bench_pooled_done;
  exo_resource_class_set_resource_type (EXO_RESOURCE_CLASS (klass), "bench-pooled");
}

static void
bench_pooled_init (BenchPooled *self)
{
}

#define RUNS 7
#define POOL_SIZE 16

static void
flag_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      data)
{
  *(gboolean *) data = TRUE;
}

/* A ready pool of POOL_SIZE; @all_features turns on every time-based
 * feature (idle timeout, lifetime, validation, idle checks, leaks). */
static ExoResourcePool *
make_pool (gboolean all_features)
{
  ExoResourcePool *pool = exo_resource_pool_new (BENCH_TYPE_POOLED, POOL_SIZE, POOL_SIZE);
  gboolean done = FALSE;

  if (all_features)
    g_object_set (pool,
                  "idle-timeout-ms", 600000,
                  "max-lifetime-ms", 1800000,
                  "validate-after-idle-ms", 600000,
                  "idle-check-interval-ms", 600000,
                  "leak-threshold-ms", 600000,
                  NULL);
  else
    g_object_set (pool, "idle-timeout-ms", 0, "max-lifetime-ms", 0, NULL);

  exo_resource_initialize_async (EXO_RESOURCE (pool), NULL, flag_cb, &done);
  bench_wait_flag (&done);
  g_assert (exo_resource_pool_get_idle (pool) == POOL_SIZE);
  return pool;
}

static void
finish_pool (ExoResourcePool *pool)
{
  gboolean done = FALSE;

  exo_resource_cleanup_async (EXO_RESOURCE (pool), NULL, flag_cb, &done);
  bench_wait_flag (&done);
  g_object_unref (pool);
}

static double
cycle_run (ExoResourcePool *pool,
           guint64          n)
{
  gint64 t0 = bench_now_ns ();

  for (guint64 i = 0; i < n; i++)
    {
      ExoResource *r = exo_resource_pool_try_acquire (pool);

      exo_resource_pool_release (pool, r);
    }
  return (double) (bench_now_ns () - t0) / (double) n;
}

static double
cycle_median (gboolean all_features,
              guint64  n)
{
  ExoResourcePool *pool = make_pool (all_features);
  double results[RUNS];

  cycle_run (pool, n / 10);   /* warm up */
  for (guint run = 0; run < RUNS; run++)
    results[run] = cycle_run (pool, n);
  g_assert (exo_resource_pool_get_idle (pool) == POOL_SIZE);
  finish_pool (pool);
  return bench_median (results, RUNS);
}

static void
bench_pool_cycle (void)
{
  const guint64 n = 5000000;
  double plain = cycle_median (FALSE, n);
  double defaults, all;
  char extra[160];

  /* The defaults: idle timeout and max lifetime on (the release stamps the
   * coarse clock). */
  {
    ExoResourcePool *pool = exo_resource_pool_new (BENCH_TYPE_POOLED, POOL_SIZE, POOL_SIZE);
    gboolean done = FALSE;
    double results[RUNS];

    exo_resource_initialize_async (EXO_RESOURCE (pool), NULL, flag_cb, &done);
    bench_wait_flag (&done);
    cycle_run (pool, n / 10);
    for (guint run = 0; run < RUNS; run++)
      results[run] = cycle_run (pool, n);
    defaults = bench_median (results, RUNS);
    finish_pool (pool);
  }
  all = cycle_median (TRUE, n);

  g_snprintf (extra, sizeof extra,
              ", \"runs\": %d, \"pool_size\": %d, \"no_timers_ns\": %.3f, \"all_features_ns\": %.3f",
              RUNS, POOL_SIZE, plain, all);
  bench_report ("pool_cycle_ns", defaults, "ns", n, extra);
}

typedef struct
{
  ExoResourcePool *pool;
  guint64          n;
  gint            *go;
} ThreadArgs;

static gpointer
cycle_thread (gpointer data)
{
  ThreadArgs *args = data;

  while (!g_atomic_int_get (args->go))
    ;
  for (guint64 i = 0; i < args->n; i++)
    {
      ExoResource *r = exo_resource_pool_try_acquire (args->pool);

      g_assert (r != NULL);
      exo_resource_pool_release (args->pool, r);
    }
  return NULL;
}

static void
bench_pool_cycle_2t (void)
{
  const guint64 n = 2000000;   /* per thread */
  ExoResourcePool *pool = exo_resource_pool_new (BENCH_TYPE_POOLED, POOL_SIZE, POOL_SIZE);
  double results[RUNS];
  gboolean done = FALSE;
  char extra[96];

  exo_resource_initialize_async (EXO_RESOURCE (pool), NULL, flag_cb, &done);
  bench_wait_flag (&done);

  for (guint run = 0; run < RUNS; run++)
    {
      gint go = 0;
      ThreadArgs args = { pool, n, &go };
      GThread *threads[2];
      gint64 t0;

      threads[0] = g_thread_new ("bench-pool-1", cycle_thread, &args);
      threads[1] = g_thread_new ("bench-pool-2", cycle_thread, &args);
      t0 = bench_now_ns ();
      g_atomic_int_set (&go, 1);
      g_thread_join (threads[0]);
      g_thread_join (threads[1]);
      results[run] = (double) (bench_now_ns () - t0) / (double) (2 * n);
    }

  g_assert (exo_resource_pool_get_idle (pool) == POOL_SIZE);
  finish_pool (pool);

  g_snprintf (extra, sizeof extra, ", \"runs\": %d, \"threads\": 2, \"pool_size\": %d",
              RUNS, POOL_SIZE);
  bench_report ("pool_cycle_2t_ns", bench_median (results, RUNS), "ns", 2 * n, extra);
}

typedef struct
{
  ExoResourcePool *pool;
  gboolean         done;
} AsyncCycle;

static void
acquired_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      data)
{
  AsyncCycle *cycle = data;
  ExoPoolLease *lease = exo_resource_pool_acquire_finish (cycle->pool, result, NULL);

  g_assert (lease != NULL);
  exo_pool_lease_unref (lease);
  cycle->done = TRUE;
}

static void
bench_pool_async_cycle (void)
{
  const guint64 n = 200000;
  ExoResourcePool *pool = exo_resource_pool_new (BENCH_TYPE_POOLED, POOL_SIZE, POOL_SIZE);
  double results[RUNS];
  gboolean done = FALSE;
  char extra[64];

  exo_resource_initialize_async (EXO_RESOURCE (pool), NULL, flag_cb, &done);
  bench_wait_flag (&done);

  for (guint run = 0; run < RUNS; run++)
    {
      gint64 t0 = bench_now_ns ();

      for (guint64 i = 0; i < n; i++)
        {
          AsyncCycle cycle = { pool, FALSE };

          exo_resource_pool_acquire_async (pool, 1000, NULL, acquired_cb, &cycle);
          bench_wait_flag (&cycle.done);
        }
      results[run] = (double) (bench_now_ns () - t0) / (double) n;
    }

  g_assert (exo_resource_pool_get_idle (pool) == POOL_SIZE);
  finish_pool (pool);

  g_snprintf (extra, sizeof extra, ", \"runs\": %d, \"timeout_ms\": 1000", RUNS);
  bench_report ("pool_async_cycle_ns", bench_median (results, RUNS), "ns", n, extra);
}

const BenchEntry bench_pool_entries[] = {
  { "pool_cycle_ns", bench_pool_cycle },
  { "pool_cycle_2t_ns", bench_pool_cycle_2t },
  { "pool_async_cycle_ns", bench_pool_async_cycle },
  { NULL, NULL },
};
