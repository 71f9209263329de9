/* test-resource-pool-recovery.c: an ExoResourcePool draining on cleanup and
 * recovering when its backend comes back (or giving up).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-resource-pool (main() in test-resource-pool.c).  One thread:
 * the pool's retries run on the test's thread-default main context.
 */
#include "resource-pool-fixture.h"

/* --- drain on cleanup -------------------------------------------------- */

static void
test_cleanup_drains (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolLease *held;
  ExoResource *raw;
  g_autoptr(GAsyncResult) waiter = NULL;
  g_autoptr(GAsyncResult) cleanup = NULL;
  g_autoptr(GError) error = NULL;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 2, 2);
  held = acquire_sync (pool, 1000, NULL);
  raw = exo_resource_pool_try_acquire (pool);
  g_assert_nonnull (raw);
  exo_resource_pool_acquire_async (pool, 0, NULL, exo_test_store_result, &waiter);
  exo_test_spin (10);
  g_assert_cmpuint (exo_resource_pool_get_waiting (pool), ==, 1);

  exo_resource_cleanup_async (EXO_RESOURCE (pool), NULL, exo_test_store_result, &cleanup);

  /* The waiter fails with a clear error; new acquires are refused. */
  g_assert_true (exo_test_wait_result (&waiter, 5000));
  g_assert_null (exo_resource_pool_acquire_finish (pool, waiter, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_null (acquire_sync (pool, 100, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_null (exo_resource_pool_try_acquire (pool));

  /* Cleanup waits for what is lent. */
  exo_test_spin (50);
  g_assert_null (cleanup);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (pool)), ==, EXO_RESOURCE_STATE_CLOSING);
  exo_resource_pool_release (pool, raw);
  exo_test_spin (20);
  g_assert_null (cleanup);
  exo_pool_lease_unref (held);

  g_assert_true (exo_test_wait_result (&cleanup, 5000));
  g_assert_true (exo_resource_cleanup_finish (EXO_RESOURCE (pool), cleanup, &error));
  g_assert_no_error (error);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (pool)), ==, EXO_RESOURCE_STATE_CLOSED);

  /* Every resource was cleaned up before cleanup completed. */
  for (guint i = 0; i < backend.made->len; i++)
    g_assert_cmpint (exo_resource_get_state (backend.made->pdata[i]), ==, EXO_RESOURCE_STATE_CLOSED);
  assert_accounting (pool);
  g_assert_cmpuint (destroyed_of (pool), ==, 2);

  /* And it can start again. */
  g_assert_true (exo_test_initialize (EXO_RESOURCE (pool), NULL));
  g_assert_cmpuint (exo_resource_pool_get_size (pool), ==, 2);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static void
test_cleanup_drain_timeout (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolLease *held;
  ExoResource *r;
  g_autoptr(GAsyncResult) cleanup = NULL;
  g_autoptr(GError) error = NULL;
  gint64 start;

  backend_init (&backend);
  backend.init_delay_ms = 0;
  pool = new_ready_pool (&backend, 1, 2);
  exo_resource_pool_set_drain_timeout (pool, 80);
  held = acquire_sync (pool, 1000, NULL);
  r = exo_pool_lease_get_resource (held);

  start = g_get_monotonic_time ();
  exo_resource_cleanup_async (EXO_RESOURCE (pool), NULL, exo_test_store_result, &cleanup);
  g_assert_true (exo_test_wait_result (&cleanup, 5000));
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 70 * 1000);
  g_assert_false (exo_resource_cleanup_finish (EXO_RESOURCE (pool), cleanup, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (pool)), ==, EXO_RESOURCE_STATE_CLOSED);

  /* The lent resource was closed under its holder; giving it back late is
   * fine. */
  g_assert_cmpint (exo_resource_get_state (r), ==, EXO_RESOURCE_STATE_CLOSED);
  exo_pool_lease_unref (held);
  exo_test_spin (10);

  g_object_unref (pool);
  backend_clear (&backend);
}

/* --- recovery: the backend comes back ---------------------------------- */

static gboolean
backend_up_cb (gpointer data)
{
  ((Backend *) data)->down = FALSE;
  return G_SOURCE_REMOVE;
}

static void
test_recovery (void)
{
  Backend backend;
  ExoResourcePool *pool;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(ExoPoolLease) lease = NULL;
  g_autoptr(GError) error = NULL;
  ExoPoolStats st;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 0, 2);

  /* Down: a waiter with a short timeout times out with the cause... */
  backend.down = TRUE;
  g_assert_null (acquire_sync (pool, 150, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, "test init"));
  g_clear_error (&error);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (pool)), ==, EXO_RESOURCE_STATE_DEGRADED);

  /* ...while one with a longer timeout is served once it is back. */
  exo_resource_pool_acquire_async (pool, 10000, NULL, exo_test_store_result, &result);
  g_timeout_add (300, backend_up_cb, &backend);
  g_assert_true (exo_test_wait_result (&result, 10000));
  lease = exo_resource_pool_acquire_finish (pool, result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (lease);
  g_assert_cmpint (exo_resource_get_state (exo_pool_lease_get_resource (lease)), ==,
                   EXO_RESOURCE_STATE_READY);

  exo_resource_pool_get_stats (pool, &st);
  g_test_message ("%" G_GUINT64_FORMAT " failed creations before recovery", st.create_failures);
  g_assert_cmpuint (st.create_failures, >=, 3);
  /* Backoff, not a busy loop: ~450 ms at 20..100 ms per attempt. */
  g_assert_cmpuint (st.create_failures, <, 100);
  g_assert_cmpuint (st.created, ==, 1);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (pool)), ==, EXO_RESOURCE_STATE_READY);
  g_assert_true (exo_test_check_health (EXO_RESOURCE (pool), NULL));
  g_clear_pointer (&lease, exo_pool_lease_unref);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static gboolean
pool_ready_and_full (gpointer data)
{
  ExoResourcePool *pool = data;

  return exo_resource_get_state (EXO_RESOURCE (pool)) == EXO_RESOURCE_STATE_READY
         && exo_resource_pool_get_size (pool) == exo_resource_pool_get_min_size (pool);
}

static void
test_recovery_without_demand (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolLease *a, *b;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 2, 2);

  /* Both resources break while the backend is down: min-size cannot be
   * kept and the pool is degraded. */
  backend.down = TRUE;
  a = acquire_sync (pool, 1000, NULL);
  b = acquire_sync (pool, 1000, NULL);
  exo_pool_lease_invalidate (a);
  exo_pool_lease_invalidate (b);
  exo_pool_lease_unref (a);
  exo_pool_lease_unref (b);
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (pool), EXO_RESOURCE_STATE_DEGRADED, 5000));
  g_assert_false (exo_test_check_health (EXO_RESOURCE (pool), NULL));
  exo_test_spin (100);
  g_assert_cmpuint (exo_resource_pool_get_size (pool), ==, 0);

  /* Back up: with nobody asking, the pool refills and is ready again. */
  backend.down = FALSE;
  g_assert_true (exo_test_spin_until (pool_ready_and_full, pool, 5000));
  assert_accounting (pool);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static void
test_recovery_gives_up (void)
{
  Backend backend;
  ExoResourcePool *pool;
  g_autoptr(GError) error = NULL;
  ExoRetryPolicy policy = {
    .max_retries = 2, .initial_delay_ms = 10, .max_delay_ms = 10,
    .multiplier = 1.0, .jitter = EXO_JITTER_NONE,
  };
  gint64 start;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 0, 2);
  exo_resource_pool_set_retry_policy (pool, &policy);
  backend.down = TRUE;

  /* With a bounded policy, a waiter without timeout is failed after the
   * last retry instead of waiting forever. */
  start = g_get_monotonic_time ();
  g_assert_null (acquire_sync (pool, 0, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_EXHAUSTED);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
  g_assert_cmpuint (backend.made->len, ==, 3);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

/* --- registration ---------------------------------------------------- */

void
test_pool_register_recovery (void)
{
  g_test_add_func ("/exo/pool/cleanup/drains", test_cleanup_drains);
  g_test_add_func ("/exo/pool/cleanup/drain-timeout", test_cleanup_drain_timeout);
  g_test_add_func ("/exo/pool/recovery/backend-returns", test_recovery);
  g_test_add_func ("/exo/pool/recovery/without-demand", test_recovery_without_demand);
  g_test_add_func ("/exo/pool/recovery/gives-up", test_recovery_gives_up);
}
