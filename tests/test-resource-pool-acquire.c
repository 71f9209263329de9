/* test-resource-pool-acquire.c: acquiring from an ExoResourcePool — waiting,
 * timeouts, cancellation, FIFO order, leases, try_acquire/release.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-resource-pool (main() in test-resource-pool.c).  One thread:
 * the pool, its callbacks and the test share the thread-default main context.
 */
#include "resource-pool-fixture.h"

/* --- acquire ----------------------------------------------------------- */

static void
test_acquire_basic (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolLease *a, *b, *c;
  g_autoptr(GError) error = NULL;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 0, 2);

  a = acquire_sync (pool, 1000, &error);
  g_assert_no_error (error);
  g_assert_nonnull (a);
  g_assert_cmpint (exo_resource_get_state (exo_pool_lease_get_resource (a)), ==,
                   EXO_RESOURCE_STATE_READY);
  g_assert_true (exo_pool_lease_get_pool (a) == pool);
  b = acquire_sync (pool, 1000, &error);
  g_assert_no_error (error);
  g_assert_true (exo_pool_lease_get_resource (a) != exo_pool_lease_get_resource (b));
  g_assert_cmpuint (exo_resource_pool_get_size (pool), ==, 2);
  g_assert_cmpuint (exo_resource_pool_get_in_use (pool), ==, 2);

  /* Given back, reused (the last given back first). */
  {
    ExoResource *rb = exo_pool_lease_get_resource (b);

    exo_pool_lease_unref (b);
    g_assert_cmpuint (exo_resource_pool_get_idle (pool), ==, 1);
    c = acquire_sync (pool, 1000, &error);
    g_assert_no_error (error);
    g_assert_true (exo_pool_lease_get_resource (c) == rb);
  }

  /* release twice is harmless; the lease is empty after release. */
  exo_pool_lease_release (c);
  exo_pool_lease_release (c);
  g_assert_null (exo_pool_lease_get_resource (c));
  exo_pool_lease_unref (c);
  exo_pool_lease_unref (a);

  g_assert_cmpuint (exo_resource_pool_get_idle (pool), ==, 2);
  g_assert_cmpuint (backend.made->len, ==, 2);
  assert_accounting (pool);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static void
test_acquire_timeout (void)
{
  Backend backend;
  ExoResourcePool *pool;
  g_autoptr(ExoPoolLease) held = NULL;
  g_autoptr(GError) error = NULL;
  ExoPoolLease *none;
  ExoPoolStats st;
  gint64 start;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 1, 1);
  held = acquire_sync (pool, 1000, NULL);

  start = g_get_monotonic_time ();
  none = acquire_sync (pool, 60, &error);
  g_assert_null (none);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 55 * 1000);

  exo_resource_pool_get_stats (pool, &st);
  g_assert_cmpuint (st.timeouts, ==, 1);
  g_assert_cmpuint (st.waiting, ==, 0);
  g_assert_cmpuint (st.acquired, ==, 1);

  g_clear_pointer (&held, exo_pool_lease_unref);
  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static gboolean
cancel_cb (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static void
test_acquire_cancel (void)
{
  Backend backend;
  ExoResourcePool *pool;
  g_autoptr(ExoPoolLease) held = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 1, 1);
  held = acquire_sync (pool, 1000, NULL);

  exo_resource_pool_acquire_async (pool, 0, cancellable, exo_test_store_result, &result);
  g_timeout_add (20, cancel_cb, cancellable);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_null (exo_resource_pool_acquire_finish (pool, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (exo_resource_pool_get_waiting (pool), ==, 0);

  /* The resource given back now goes idle: no ghost waiter takes it. */
  g_clear_pointer (&held, exo_pool_lease_unref);
  exo_test_spin (20);
  g_assert_cmpuint (exo_resource_pool_get_idle (pool), ==, 1);

  /* Already cancelled: fails at once. */
  g_clear_object (&result);
  g_clear_error (&error);
  exo_resource_pool_acquire_async (pool, 0, cancellable, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_null (exo_resource_pool_acquire_finish (pool, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

typedef struct
{
  ExoResourcePool *pool;
  GArray          *order;
  guint            index;
  ExoPoolLease    *lease;
} FifoWaiter;

static void
fifo_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  FifoWaiter *w = data;
  g_autoptr(GError) error = NULL;

  w->lease = exo_resource_pool_acquire_finish (w->pool, result, &error);
  g_assert_no_error (error);
  g_array_append_val (w->order, w->index);
  /* Hand it on to the next one. */
  g_clear_pointer (&w->lease, exo_pool_lease_unref);
}

static gboolean
order_len_is (gpointer data)
{
  GArray *order = data;
  return order->len == 8;
}

static void
test_acquire_fifo (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolLease *held;
  FifoWaiter waiters[8];
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (guint));

  backend_init (&backend);
  pool = new_ready_pool (&backend, 1, 1);
  held = acquire_sync (pool, 1000, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (waiters); i++)
    {
      waiters[i] = (FifoWaiter) { pool, order, i, NULL };
      exo_resource_pool_acquire_async (pool, 10000, NULL, fifo_done_cb, &waiters[i]);
    }
  exo_test_spin (10);
  g_assert_cmpuint (exo_resource_pool_get_waiting (pool), ==, 8);

  /* While they wait, try_acquire may not jump the queue. */
  exo_pool_lease_unref (held);
  g_assert_null (exo_resource_pool_try_acquire (pool));

  g_assert_true (exo_test_spin_until (order_len_is, order, 5000));
  for (guint i = 0; i < order->len; i++)
    g_assert_cmpuint (g_array_index (order, guint, i), ==, i);
  g_assert_cmpuint (backend.made->len, ==, 1);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static void
test_acquire_not_ready (void)
{
  Backend backend;
  ExoResourcePool *pool;
  g_autoptr(GError) error = NULL;

  backend_init (&backend);
  pool = new_pool (&backend, 0, 1);

  g_assert_null (acquire_sync (pool, 100, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE);
  g_assert_null (exo_resource_pool_try_acquire (pool));

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static void
test_acquire_while_starting (void)
{
  Backend backend;
  ExoResourcePool *pool;
  g_autoptr(GAsyncResult) init = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(ExoPoolLease) lease = NULL;

  backend_init (&backend);
  backend.init_delay_ms = 50;
  pool = new_pool (&backend, 1, 1);

  /* Asked while the pool pre-warms: served once it is ready. */
  exo_resource_initialize_async (EXO_RESOURCE (pool), NULL, exo_test_store_result, &init);
  exo_resource_pool_acquire_async (pool, 5000, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  lease = exo_resource_pool_acquire_finish (pool, result, NULL);
  g_assert_nonnull (lease);
  g_assert_true (exo_test_wait_result (&init, 5000));
  g_assert_true (exo_resource_initialize_finish (EXO_RESOURCE (pool), init, NULL));
  g_clear_pointer (&lease, exo_pool_lease_unref);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

/* A waiter's callback must not run inside the pool's own state-changed
 * emission (docs/architecture.md: no callbacks from inside an emission). */
typedef struct
{
  ExoResourcePool *pool;
  GAsyncResult    *result;
  gboolean         inside_emission;
} EmissionProbe;

static void
probe_acquire_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  EmissionProbe *probe = user_data;

  probe->inside_emission = g_signal_get_invocation_hint (probe->pool) != NULL;
  probe->result = g_object_ref (result);
}

static void
test_acquire_not_inside_emission (void)
{
  Backend backend;
  ExoResourcePool *pool;
  g_autoptr(GAsyncResult) init = NULL;
  g_autoptr(ExoPoolLease) lease = NULL;
  g_autoptr(GError) error = NULL;
  EmissionProbe probe = { NULL, NULL, FALSE };

  /* Served when the pool becomes ready. */
  backend_init (&backend);
  backend.init_delay_ms = 50;
  pool = new_pool (&backend, 1, 1);
  probe.pool = pool;
  exo_resource_initialize_async (EXO_RESOURCE (pool), NULL, exo_test_store_result, &init);
  exo_resource_pool_acquire_async (pool, 5000, NULL, probe_acquire_cb, &probe);
  g_assert_true (exo_test_wait_result (&probe.result, 5000));
  g_assert_false (probe.inside_emission);
  lease = exo_resource_pool_acquire_finish (pool, probe.result, NULL);
  g_assert_nonnull (lease);
  g_clear_object (&probe.result);
  g_clear_pointer (&lease, exo_pool_lease_unref);
  g_assert_true (exo_test_wait_result (&init, 5000));
  g_clear_object (&init);
  finish_pool (pool, &backend);
  backend_clear (&backend);

  /* Failed when its start fails. */
  backend_init (&backend);
  backend.init_delay_ms = 50;
  backend.down = TRUE;
  pool = new_pool (&backend, 1, 1);
  probe.pool = pool;
  probe.inside_emission = FALSE;
  exo_resource_initialize_async (EXO_RESOURCE (pool), NULL, exo_test_store_result, &init);
  exo_resource_pool_acquire_async (pool, 5000, NULL, probe_acquire_cb, &probe);
  g_assert_true (exo_test_wait_result (&probe.result, 5000));
  g_assert_false (probe.inside_emission);
  g_assert_null (exo_resource_pool_acquire_finish (pool, probe.result, &error));
  g_assert_nonnull (error);
  g_clear_object (&probe.result);
  g_assert_true (exo_test_wait_result (&init, 5000));
  finish_pool (pool, &backend);
  backend_clear (&backend);
}

/* --- leases ------------------------------------------------------------ */

static void
test_lease_autoptr (void)
{
  Backend backend;
  ExoResourcePool *pool;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 1, 1);

  {
    g_autoptr(ExoPoolLease) lease = acquire_sync (pool, 1000, NULL);

    g_assert_nonnull (lease);
    g_assert_cmpuint (exo_resource_pool_get_in_use (pool), ==, 1);
  }
  /* Out of scope: given back. */
  g_assert_cmpuint (exo_resource_pool_get_in_use (pool), ==, 0);
  g_assert_cmpuint (exo_resource_pool_get_idle (pool), ==, 1);

  {
    g_autoptr(ExoPoolLease) lease = exo_resource_pool_try_acquire_lease (pool);
    g_autoptr(ExoPoolLease) extra = NULL;

    g_assert_nonnull (lease);
    extra = exo_pool_lease_ref (lease);
    g_assert_null (exo_resource_pool_try_acquire_lease (pool));
  }
  g_assert_cmpuint (exo_resource_pool_get_idle (pool), ==, 1);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static void
test_lease_invalidate (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolLease *lease;
  g_autoptr(ExoResource) first = NULL;
  g_autoptr(ExoPoolLease) again = NULL;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 1, 1);

  lease = acquire_sync (pool, 1000, NULL);
  first = g_object_ref (exo_pool_lease_get_resource (lease));
  exo_pool_lease_invalidate (lease);
  g_assert_null (exo_pool_lease_get_resource (lease));
  exo_pool_lease_unref (lease);
  g_assert_cmpuint (destroyed_of (pool), ==, 1);

  /* Cleaned up, and replaced (min-size 1). */
  g_assert_true (exo_test_spin_until (state_is_closed, first, 5000));
  again = acquire_sync (pool, 5000, NULL);
  g_assert_nonnull (again);
  g_assert_true (exo_pool_lease_get_resource (again) != first);
  g_assert_cmpuint (backend.made->len, ==, 2);
  g_clear_pointer (&again, exo_pool_lease_unref);
  assert_accounting (pool);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

/* --- try_acquire / release --------------------------------------------- */

static void
test_try_acquire (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoResource *a, *b;
  g_autoptr(ExoResource) broken = NULL;
  ExoPoolStats st;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 0, 4);

  /* Never makes a resource. */
  g_assert_null (exo_resource_pool_try_acquire (pool));
  exo_test_spin (20);
  g_assert_cmpuint (exo_resource_pool_get_size (pool), ==, 0);
  g_assert_cmpuint (backend.made->len, ==, 0);

  exo_resource_pool_set_min_size (pool, 2);
  {
    PoolCount c = { pool, 2 };
    g_assert_true (exo_test_spin_until (size_is, &c, 5000));
  }

  a = exo_resource_pool_try_acquire (pool);
  b = exo_resource_pool_try_acquire (pool);
  g_assert_nonnull (a);
  g_assert_nonnull (b);
  g_assert_true (a != b);
  g_assert_null (exo_resource_pool_try_acquire (pool));

  exo_resource_pool_release (pool, a);
  broken = g_object_ref (b);
  exo_resource_pool_release_broken (pool, b);

  exo_resource_pool_get_stats (pool, &st);
  g_assert_cmpuint (st.acquired, ==, 2);
  g_assert_cmpuint (st.destroyed, ==, 1);
  g_assert_cmpuint (st.idle, ==, 1);
  g_assert_true (exo_test_spin_until (state_is_closed, broken, 5000));

  /* Only ready resources are handed out: a degraded idle one is replaced. */
  {
    PoolCount c = { pool, 2 };
    g_assert_true (exo_test_spin_until (size_is, &c, 5000));
  }
  a = exo_resource_pool_try_acquire (pool);
  g_assert_nonnull (a);
  EXO_TEST_RESOURCE (a)->healthy = FALSE;
  exo_resource_pool_release (pool, a);
  g_assert_false (exo_test_check_health (a, NULL));
  g_assert_cmpint (exo_resource_get_state (a), ==, EXO_RESOURCE_STATE_DEGRADED);
  for (guint i = 0; i < 2; i++)
    {
      ExoResource *r = exo_resource_pool_try_acquire (pool);

      if (r != NULL)
        {
          g_assert_true (r != a);
          g_assert_cmpint (exo_resource_get_state (r), ==, EXO_RESOURCE_STATE_READY);
          exo_resource_pool_release (pool, r);
        }
    }

  assert_accounting (pool);
  finish_pool (pool, &backend);
  backend_clear (&backend);
}

/* --- regression: a released unusable resource must not stall waiters --- */

static void
test_regression_unusable_release (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolLease *held;
  g_autoptr(ExoResource) first = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(ExoPoolLease) served = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) failure = NULL;
  gint64 start;

  backend_init (&backend);
  pool = new_ready_pool (&backend, 1, 1);

  held = acquire_sync (pool, 1000, NULL);
  first = g_object_ref (exo_pool_lease_get_resource (held));

  /* A waiter queues behind the only resource... */
  exo_resource_pool_acquire_async (pool, 10000, NULL, exo_test_store_result, &result);
  exo_test_spin (10);
  g_assert_cmpuint (exo_resource_pool_get_waiting (pool), ==, 1);

  /* ...which fails while lent and is given back unusable. */
  failure = g_error_new (G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, "connection lost");
  exo_resource_report_error (first, failure);
  g_assert_cmpint (exo_resource_get_state (first), ==, EXO_RESOURCE_STATE_ERROR);
  start = g_get_monotonic_time ();
  exo_pool_lease_unref (held);

  /* The waiter gets a fresh resource promptly, not after its timeout. */
  g_assert_true (exo_test_wait_result (&result, 5000));
  served = exo_resource_pool_acquire_finish (pool, result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (served);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 2 * G_USEC_PER_SEC);
  g_assert_true (exo_pool_lease_get_resource (served) != first);
  g_assert_cmpint (exo_resource_get_state (exo_pool_lease_get_resource (served)), ==,
                   EXO_RESOURCE_STATE_READY);
  g_assert_true (exo_test_spin_until (state_is_closed, first, 5000));

  /* Same with a degraded one given back through the raw API. */
  g_clear_object (&result);
  {
    ExoResource *r = exo_pool_lease_get_resource (served);

    exo_resource_pool_acquire_async (pool, 10000, NULL, exo_test_store_result, &result);
    exo_test_spin (10);
    exo_resource_report_health (r, FALSE, NULL);
    g_assert_cmpint (exo_resource_get_state (r), ==, EXO_RESOURCE_STATE_DEGRADED);
    g_clear_pointer (&served, exo_pool_lease_unref);
    g_assert_true (exo_test_wait_result (&result, 5000));
    served = exo_resource_pool_acquire_finish (pool, result, &error);
    g_assert_no_error (error);
    g_assert_true (exo_pool_lease_get_resource (served) != r);
  }
  g_clear_pointer (&served, exo_pool_lease_unref);

  assert_accounting (pool);
  g_assert_cmpuint (destroyed_of (pool), ==, 2);
  finish_pool (pool, &backend);
  backend_clear (&backend);
}

/* --- registration ---------------------------------------------------- */

void
test_pool_register_acquire (void)
{
  g_test_add_func ("/exo/pool/acquire/basic", test_acquire_basic);
  g_test_add_func ("/exo/pool/acquire/timeout", test_acquire_timeout);
  g_test_add_func ("/exo/pool/acquire/cancel", test_acquire_cancel);
  g_test_add_func ("/exo/pool/acquire/fifo", test_acquire_fifo);
  g_test_add_func ("/exo/pool/acquire/not-ready", test_acquire_not_ready);
  g_test_add_func ("/exo/pool/acquire/while-starting", test_acquire_while_starting);
  g_test_add_func ("/exo/pool/acquire/not-inside-emission", test_acquire_not_inside_emission);
  g_test_add_func ("/exo/pool/lease/autoptr", test_lease_autoptr);
  g_test_add_func ("/exo/pool/lease/invalidate", test_lease_invalidate);
  g_test_add_func ("/exo/pool/try-acquire", test_try_acquire);
  g_test_add_func ("/exo/pool/regression/unusable-release-does-not-stall",
                   test_regression_unusable_release);
}
