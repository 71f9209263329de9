/* test-resource-pool-idle.c: what an ExoResourcePool does with idle and old
 * resources — validation on borrow, idle eviction, lifetime, periodic health
 * checks, leak detection — and the wait-time statistics.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-resource-pool (main() in test-resource-pool.c).  One thread:
 * the pool's timers run on the test's thread-default main context.
 */
#include "resource-pool-fixture.h"

/* --- validation on borrow ---------------------------------------------- */

static void
test_validate_after_idle (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolLease *lease;
  ExoTestResource *first;
  guint checks;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 1, 2);
  exo_resource_pool_set_validate_after_idle (pool, 150);

  /* Fresh: no check. */
  lease = acquire_sync (pool, 1000, NULL);
  first = lease_item (lease);
  g_assert_cmpuint (first->n_health_calls, ==, 0);
  exo_pool_lease_unref (lease);

  /* Idle long enough: checked, healthy, lent. */
  exo_test_spin (250);
  lease = acquire_sync (pool, 1000, NULL);
  g_assert_true (lease_item (lease) == first);
  g_assert_cmpuint (first->n_health_calls, ==, 1);
  exo_pool_lease_unref (lease);

  /* try_acquire does not lend a resource that needs a check: it leaves it
   * to be checked in the pool's context. */
  exo_test_spin (250);
  checks = first->n_health_calls;
  g_assert_null (exo_resource_pool_try_acquire (pool));
  exo_test_spin (20);
  g_assert_cmpuint (first->n_health_calls, ==, checks + 1);
  {
    ExoResource *r = exo_resource_pool_try_acquire (pool);

    g_assert_true (r == EXO_RESOURCE (first));
    exo_resource_pool_release (pool, r);
  }

  /* Idle long enough and unhealthy: dropped, another one made and lent. */
  exo_test_spin (250);
  first->healthy = FALSE;
  lease = acquire_sync (pool, 5000, NULL);
  g_assert_nonnull (lease);
  g_assert_true (lease_item (lease) != first);
  g_assert_cmpint (exo_resource_get_state (exo_pool_lease_get_resource (lease)), ==,
                   EXO_RESOURCE_STATE_READY);
  g_assert_cmpuint (destroyed_of (pool), ==, 1);
  g_assert_true (exo_test_spin_until (state_is_closed, first, 5000));
  exo_pool_lease_unref (lease);

  assert_accounting (pool);
  finish_pool (pool, &backend);
  backend_clear (&backend);
}

/* --- idle eviction ----------------------------------------------------- */

static void
test_regression_idle_eviction (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolLease *lease;
  g_autoptr(ExoResource) r = NULL;
  PoolCount gone;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 0, 2);
  exo_resource_pool_set_idle_timeout (pool, 400);

  /* Made long ago (older than the idle timeout), used until now. */
  lease = acquire_sync (pool, 1000, NULL);
  r = g_object_ref (exo_pool_lease_get_resource (lease));
  exo_test_spin (900);
  g_assert_cmpuint (exo_resource_pool_get_size (pool), ==, 1);
  exo_pool_lease_unref (lease);

  /* Just released: several reaper runs later it is still there, because
   * it has been idle only briefly (the Python original evicted it here). */
  exo_test_spin (150);
  g_assert_cmpuint (exo_resource_pool_get_size (pool), ==, 1);
  g_assert_cmpuint (destroyed_of (pool), ==, 0);
  g_assert_cmpint (exo_resource_get_state (r), ==, EXO_RESOURCE_STATE_READY);

  /* Idle past the timeout: evicted. */
  gone = (PoolCount) { pool, 0 };
  g_assert_true (exo_test_spin_until (size_is, &gone, 5000));
  g_assert_cmpuint (destroyed_of (pool), ==, 1);
  g_assert_true (exo_test_spin_until (state_is_closed, r, 5000));

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static void
test_idle_eviction_to_min (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolLease *leases[5];
  PoolCount c;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 2, 5);
  exo_resource_pool_set_idle_timeout (pool, 60);

  for (guint i = 0; i < 5; i++)
    leases[i] = acquire_sync (pool, 1000, NULL);
  g_assert_cmpuint (exo_resource_pool_get_size (pool), ==, 5);
  for (guint i = 0; i < 5; i++)
    exo_pool_lease_unref (leases[i]);

  c = (PoolCount) { pool, 2 };
  g_assert_true (exo_test_spin_until (size_is, &c, 5000));
  /* And never below min-size. */
  exo_test_spin (200);
  g_assert_cmpuint (exo_resource_pool_get_size (pool), ==, 2);
  g_assert_cmpuint (exo_resource_pool_get_idle (pool), ==, 2);
  g_assert_cmpuint (destroyed_of (pool), ==, 3);
  assert_accounting (pool);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

/* --- lifetime ---------------------------------------------------------- */

static void
test_lifetime_jitter (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolLease *leases[24];
  guint64 retired;
  gint64 made_at;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 0, 24);
  exo_resource_pool_set_max_lifetime (pool, 2000);

  /* 24 resources made together... */
  made_at = g_get_monotonic_time ();
  for (guint i = 0; i < 24; i++)
    leases[i] = acquire_sync (pool, 1000, NULL);
  g_assert_cmpint (g_get_monotonic_time () - made_at, <, 200 * 1000);

  /* ...given back at 95 % of their lifetime: each lifetime is shortened by
   * a random 0-10 %, so some are past it and some are not. */
  while (g_get_monotonic_time () - made_at < 1900 * 1000)
    exo_test_spin (2);
  for (guint i = 0; i < 24; i++)
    exo_pool_lease_unref (leases[i]);
  retired = destroyed_of (pool);
  g_test_message ("given back after %" G_GINT64_FORMAT " ms",
                  (g_get_monotonic_time () - made_at) / 1000);
  g_test_message ("%" G_GUINT64_FORMAT " of 24 retired at 95%% of their lifetime", retired);
  g_assert_cmpuint (retired, >, 0);
  g_assert_cmpuint (retired, <, 24);

  /* The rest are retired while idle. */
  {
    PoolCount c = { pool, 0 };
    g_assert_true (exo_test_spin_until (size_is, &c, 5000));
  }
  g_assert_cmpuint (destroyed_of (pool), ==, 24);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static void
test_lifetime_idle_replaced (void)
{
  Backend backend;
  ExoResourcePool *pool;
  g_autoptr(ExoResource) first = NULL;
  ExoResource *second;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 1, 1);
  exo_resource_pool_set_max_lifetime (pool, 150);
  first = g_object_ref (backend.made->pdata[0]);

  /* Past its lifetime while idle: retired and replaced to min-size. */
  g_assert_true (exo_test_spin_until (state_is_closed, first, 5000));
  {
    PoolCount c = { pool, 1 };
    g_assert_true (exo_test_spin_until (size_is, &c, 5000));
  }
  second = exo_resource_pool_try_acquire (pool);
  g_assert_nonnull (second);
  g_assert_true (second != first);
  exo_resource_pool_release (pool, second);

  exo_resource_pool_set_max_lifetime (pool, 0);
  finish_pool (pool, &backend);
  backend_clear (&backend);
}

/* --- periodic idle health checks --------------------------------------- */

static gboolean
was_health_checked (gpointer data)
{
  return ((ExoTestResource *) data)->n_health_calls >= 1;
}

static void
test_idle_check (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoTestResource *sick;
  PoolCount c;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 2, 2);
  sick = backend.made->pdata[0];
  sick->healthy = FALSE;
  exo_resource_pool_set_idle_check_interval (pool, 40);

  /* The sick one is found while idle, dropped, and replaced. */
  g_assert_true (exo_test_spin_until (state_is_closed, sick, 5000));
  c = (PoolCount) { pool, 2 };
  g_assert_true (exo_test_spin_until (size_is, &c, 5000));
  g_assert_cmpuint (backend.made->len, ==, 3);
  /* the healthy one is checked too (every 40 ms; the sick one may have
   * been found first, on a slow machine before any other check) */
  g_assert_true (exo_test_spin_until (was_health_checked, backend.made->pdata[1], 5000));
  g_assert_cmpint (exo_resource_get_state (backend.made->pdata[1]), ==, EXO_RESOURCE_STATE_READY);

  exo_resource_pool_set_idle_check_interval (pool, 0);
  finish_pool (pool, &backend);
  backend_clear (&backend);
}

/* --- leak detection ---------------------------------------------------- */

typedef struct
{
  guint        count;
  ExoResource *resource;
  guint64      held_ms;
} LeakSeen;

static void
leak_cb (ExoResourcePool *pool,
         ExoResource     *resource,
         guint64          held_ms,
         gpointer         data)
{
  LeakSeen *seen = data;

  seen->count++;
  seen->resource = resource;
  seen->held_ms = held_ms;
}

static gboolean
leak_seen (gpointer data)
{
  return ((LeakSeen *) data)->count > 0;
}

static void
test_leak_detected (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolLease *lease, *quick;
  ExoResource *raw;
  LeakSeen seen = { 0 };
  guint64 leaks;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 0, 3);
  exo_resource_pool_set_leak_threshold (pool, 200);
  g_signal_connect (pool, "leak-detected", G_CALLBACK (leak_cb), &seen);

  lease = acquire_sync (pool, 1000, NULL);
  /* Given back in time: no report. */
  quick = acquire_sync (pool, 1000, NULL);
  exo_test_spin (10);
  exo_pool_lease_unref (quick);

  g_assert_true (exo_test_spin_until (leak_seen, &seen, 5000));
  g_assert_true (seen.resource == exo_pool_lease_get_resource (lease));
  g_assert_cmpuint (seen.held_ms, >=, 190);

  /* Once per lease. */
  exo_test_spin (500);
  g_assert_cmpuint (seen.count, ==, 1);
  g_object_get (pool, "leaks", &leaks, NULL);
  g_assert_cmpuint (leaks, ==, 1);
  exo_pool_lease_unref (lease);

  /* The raw API is watched too. */
  seen.count = 0;
  raw = exo_resource_pool_try_acquire (pool);
  g_assert_nonnull (raw);
  g_assert_true (exo_test_spin_until (leak_seen, &seen, 5000));
  g_assert_true (seen.resource == raw);
  exo_resource_pool_release (pool, raw);

  g_signal_handlers_disconnect_by_func (pool, leak_cb, &seen);
  finish_pool (pool, &backend);
  backend_clear (&backend);
}

/* --- statistics: wait time --------------------------------------------- */

static gboolean
release_lease_cb (gpointer data)
{
  exo_pool_lease_unref (data);
  return G_SOURCE_REMOVE;
}

static void
test_wait_time (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolLease *held, *waited;
  ExoPoolStats st;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 1, 1);

  held = acquire_sync (pool, 1000, NULL);
  g_timeout_add (100, release_lease_cb, held);
  waited = acquire_sync (pool, 5000, NULL);
  g_assert_nonnull (waited);
  exo_pool_lease_unref (waited);

  exo_resource_pool_get_stats (pool, &st);
  g_assert_cmpuint (st.acquired, ==, 2);
  g_assert_cmpuint (st.wait_time_max_us, >=, 90 * 1000);
  g_assert_cmpuint (st.wait_time_max_us, <, 5 * G_USEC_PER_SEC);
  /* One immediate, one ~100 ms. */
  g_assert_cmpuint (st.wait_time_mean_us, >=, 45 * 1000);
  g_assert_cmpuint (st.wait_time_mean_us, <=, st.wait_time_max_us);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

/* --- registration ---------------------------------------------------- */

void
test_pool_register_idle (void)
{
  g_test_add_func ("/exo/pool/validate/after-idle", test_validate_after_idle);
  g_test_add_func ("/exo/pool/regression/idle-eviction-uses-idle-time",
                   test_regression_idle_eviction);
  g_test_add_func ("/exo/pool/idle/evict-to-min-size", test_idle_eviction_to_min);
  g_test_add_func ("/exo/pool/lifetime/jitter", test_lifetime_jitter);
  g_test_add_func ("/exo/pool/lifetime/idle-replaced", test_lifetime_idle_replaced);
  g_test_add_func ("/exo/pool/idle/health-check", test_idle_check);
  g_test_add_func ("/exo/pool/leak/detected", test_leak_detected);
  g_test_add_func ("/exo/pool/stats/wait-time", test_wait_time);
}
