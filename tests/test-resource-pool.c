/* test-resource-pool.c: ExoResourcePool.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

/* --- helpers ----------------------------------------------------------- */

/* The "backend" the pooled resources talk to: a test switches it off and
 * on, and keeps every resource the pool made for inspection. */
typedef struct
{
  gboolean   down;           /* new resources fail to initialize */
  guint      init_delay_ms;
  GPtrArray *made;           /* ExoTestResource*, owned */
} Backend;

static ExoTestResource *
new_plain (const char *id)
{
  ExoTestResource *r = exo_test_resource_new (id);
  ExoRetryPolicy policy = {
    .max_retries = 0, .initial_delay_ms = 1, .max_delay_ms = 1,
    .multiplier = 1.0, .jitter = EXO_JITTER_NONE,
  };

  /* No retries and no recovery of its own: the pool does that. */
  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (r), &policy);
  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (r), FALSE);
  return r;
}

static ExoResource *
backend_factory (ExoResourcePool *pool,
                 guint            serial,
                 gpointer         data)
{
  Backend *backend = data;
  g_autofree char *id = g_strdup_printf ("%s-item-%u",
                                         exo_resource_get_id (EXO_RESOURCE (pool)), serial);
  ExoTestResource *r = new_plain (id);

  r->init_delay_ms = backend->init_delay_ms;
  if (backend->down)
    r->fail_inits = 1;
  g_ptr_array_add (backend->made, g_object_ref (r));
  return EXO_RESOURCE (r);
}

static void
backend_init (Backend *backend)
{
  memset (backend, 0, sizeof *backend);
  backend->made = g_ptr_array_new_with_free_func (g_object_unref);
}

static void
backend_clear (Backend *backend)
{
  g_clear_pointer (&backend->made, g_ptr_array_unref);
}

static ExoResourcePool *
new_pool (Backend *backend,
          guint    min_size,
          guint    max_size)
{
  ExoResourcePool *pool = exo_resource_pool_new_with_factory (backend_factory, backend, NULL,
                                                              min_size, max_size);
  ExoRetryPolicy policy = {
    .max_retries = G_MAXUINT, .initial_delay_ms = 20, .max_delay_ms = 100,
    .multiplier = 2.0, .jitter = EXO_JITTER_NONE,
  };

  exo_resource_pool_set_retry_policy (pool, &policy);
  return pool;
}

static ExoResourcePool *
new_ready_pool (Backend *backend,
                guint    min_size,
                guint    max_size)
{
  ExoResourcePool *pool = new_pool (backend, min_size, max_size);
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (pool), &error));
  g_assert_no_error (error);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (pool)), ==, EXO_RESOURCE_STATE_READY);
  return pool;
}

static void
assert_accounting (ExoResourcePool *pool)
{
  ExoPoolStats st;

  exo_resource_pool_get_stats (pool, &st);
  g_assert_cmpuint (st.size, ==, st.idle + st.in_use);
  g_assert_cmpuint (st.created - st.destroyed, ==, st.size);
}

/* Closes the pool and checks that every resource it made is closed. */
static void
finish_pool (ExoResourcePool *pool,
             Backend         *backend)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_cleanup (EXO_RESOURCE (pool), &error));
  g_assert_no_error (error);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (pool)), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpuint (exo_resource_pool_get_size (pool), ==, 0);
  assert_accounting (pool);

  if (backend != NULL)
    for (guint i = 0; i < backend->made->len; i++)
      {
        ExoTestResource *r = backend->made->pdata[i];

        g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSED);
        g_assert_cmpint (r->live, ==, 0);
      }

  g_object_unref (pool);
}

static ExoPoolLease *
acquire_sync (ExoResourcePool  *pool,
              guint             timeout_ms,
              GError          **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  exo_resource_pool_acquire_async (pool, timeout_ms, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 30000));
  return exo_resource_pool_acquire_finish (pool, result, error);
}

static ExoTestResource *
lease_item (ExoPoolLease *lease)
{
  return EXO_TEST_RESOURCE (exo_pool_lease_get_resource (lease));
}

typedef struct
{
  ExoResourcePool *pool;
  guint            value;
} PoolCount;

static gboolean
size_is (gpointer data)
{
  PoolCount *c = data;
  return exo_resource_pool_get_size (c->pool) == c->value;
}

static gboolean
state_is_closed (gpointer data)
{
  return exo_resource_get_state (data) == EXO_RESOURCE_STATE_CLOSED;
}

static guint64
destroyed_of (ExoResourcePool *pool)
{
  ExoPoolStats st;

  exo_resource_pool_get_stats (pool, &st);
  return st.destroyed;
}

/* --- construction, pre-warm, statistics -------------------------------- */

static void
test_prewarm (void)
{
  Backend backend;
  ExoResourcePool *pool;
  ExoPoolStats st;

  backend_init (&backend);
  pool = new_pool (&backend, 3, 5);

  /* Nothing is made before initialize. */
  g_assert_cmpuint (backend.made->len, ==, 0);
  g_assert_null (exo_resource_pool_try_acquire (pool));

  g_assert_true (exo_test_initialize (EXO_RESOURCE (pool), NULL));
  g_assert_cmpuint (backend.made->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpint (exo_resource_get_state (backend.made->pdata[i]), ==, EXO_RESOURCE_STATE_READY);

  exo_resource_pool_get_stats (pool, &st);
  g_assert_cmpuint (st.min_size, ==, 3);
  g_assert_cmpuint (st.max_size, ==, 5);
  g_assert_cmpuint (st.size, ==, 3);
  g_assert_cmpuint (st.idle, ==, 3);
  g_assert_cmpuint (st.in_use, ==, 0);
  g_assert_cmpuint (st.created, ==, 3);
  g_assert_cmpuint (st.destroyed, ==, 0);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static void
test_prewarm_failure (void)
{
  Backend backend;
  ExoResourcePool *pool;
  g_autoptr(GError) error = NULL;

  backend_init (&backend);
  backend.down = TRUE;
  pool = new_pool (&backend, 2, 4);

  /* A pool whose backend is down at start fails to initialize, and what
   * it made is cleaned up. */
  g_assert_false (exo_test_initialize (EXO_RESOURCE (pool), &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (pool)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_cmpuint (exo_resource_pool_get_size (pool), ==, 0);
  g_clear_error (&error);

  /* Back up: initialize again works. */
  backend.down = FALSE;
  g_assert_true (exo_test_initialize (EXO_RESOURCE (pool), &error));
  g_assert_no_error (error);
  g_assert_cmpuint (exo_resource_pool_get_size (pool), ==, 2);

  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static void
test_properties (void)
{
  Backend backend;
  ExoResourcePool *pool;
  g_autoptr(ExoPoolLease) lease = NULL;
  g_autoptr(GVariant) metrics = NULL;
  guint min_size, max_size, size, idle, in_use, waiting;
  guint64 acquired, timeouts, created, destroyed, leaks;
  struct { const char *name; GType type; } expected[] = {
    { "min-size", G_TYPE_UINT }, { "max-size", G_TYPE_UINT }, { "size", G_TYPE_UINT },
    { "idle", G_TYPE_UINT }, { "in-use", G_TYPE_UINT }, { "waiting", G_TYPE_UINT },
    { "acquired", G_TYPE_UINT64 }, { "timeouts", G_TYPE_UINT64 },
    { "created", G_TYPE_UINT64 }, { "destroyed", G_TYPE_UINT64 }, { "leaks", G_TYPE_UINT64 },
  };
  const char *metric_keys[] = {
    "min-size", "max-size", "size", "idle", "in-use", "waiting", "acquired", "timeouts",
    "created", "destroyed", "leaks", "wait-time-mean-us", "wait-time-max-us",
  };

  backend_init (&backend);
  pool = new_ready_pool (&backend, 2, 4);

  /* The types match org.exo.ResourcePool1 (u for sizes, t for counters). */
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (pool), expected[i].name);

      g_assert_nonnull (pspec);
      g_assert_true (pspec->value_type == expected[i].type);
    }

  lease = acquire_sync (pool, 1000, NULL);
  g_assert_nonnull (lease);

  g_object_get (pool,
                "min-size", &min_size, "max-size", &max_size, "size", &size,
                "idle", &idle, "in-use", &in_use, "waiting", &waiting,
                "acquired", &acquired, "timeouts", &timeouts, "created", &created,
                "destroyed", &destroyed, "leaks", &leaks,
                NULL);
  g_assert_cmpuint (min_size, ==, 2);
  g_assert_cmpuint (max_size, ==, 4);
  g_assert_cmpuint (size, ==, 2);
  g_assert_cmpuint (idle, ==, 1);
  g_assert_cmpuint (in_use, ==, 1);
  g_assert_cmpuint (waiting, ==, 0);
  g_assert_cmpuint (acquired, ==, 1);
  g_assert_cmpuint (timeouts, ==, 0);
  g_assert_cmpuint (created, ==, 2);
  g_assert_cmpuint (destroyed, ==, 0);
  g_assert_cmpuint (leaks, ==, 0);

  metrics = exo_resource_get_metrics (EXO_RESOURCE (pool));
  for (guint i = 0; i < G_N_ELEMENTS (metric_keys); i++)
    {
      g_autoptr(GVariant) v = g_variant_lookup_value (metrics, metric_keys[i], NULL);

      if (v == NULL)
        g_test_message ("missing metric %s", metric_keys[i]);
      g_assert_nonnull (v);
    }
  {
    guint v = 0;
    guint64 t = 0;

    g_assert_true (g_variant_lookup (metrics, "in-use", "u", &v));
    g_assert_cmpuint (v, ==, 1);
    g_assert_true (g_variant_lookup (metrics, "acquired", "t", &t));
    g_assert_cmpuint (t, ==, 1);
  }

  /* min above max raises max; max below min lowers min. */
  exo_resource_pool_set_min_size (pool, 6);
  g_assert_cmpuint (exo_resource_pool_get_max_size (pool), ==, 6);
  exo_resource_pool_set_max_size (pool, 3);
  g_assert_cmpuint (exo_resource_pool_get_min_size (pool), ==, 3);

  exo_pool_lease_release (lease);
  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static gboolean
count_ge (gpointer data)
{
  guint *counts = data;
  return counts[0] >= counts[1];
}

static void
count_notify_cb (GObject    *object,
                 GParamSpec *pspec,
                 gpointer    data)
{
  ((guint *) data)[0]++;
}

static void
test_notify_coalesced (void)
{
  Backend backend;
  ExoResourcePool *pool;
  guint counts[2] = { 0, 1 };

  backend_init (&backend);
  pool = new_ready_pool (&backend, 1, 1);
  exo_test_spin (50);

  g_signal_connect (pool, "notify::acquired", G_CALLBACK (count_notify_cb), counts);

  /* 1000 cycles from the fast path: the notification comes later, from
   * the pool's context, and coalesced. */
  for (guint i = 0; i < 1000; i++)
    {
      ExoResource *r = exo_resource_pool_try_acquire (pool);

      g_assert_nonnull (r);
      exo_resource_pool_release (pool, r);
    }
  g_assert_cmpuint (counts[0], ==, 0);
  g_assert_true (exo_test_spin_until (count_ge, counts, 5000));
  exo_test_spin (100);
  g_assert_cmpuint (counts[0], ==, 1);

  g_signal_handlers_disconnect_by_func (pool, count_notify_cb, counts);
  finish_pool (pool, &backend);
  backend_clear (&backend);
}

static void
test_factory_properties (void)
{
  ExoResourcePool *pool;
  GValue values[1] = { G_VALUE_INIT };
  const char *names[] = { "init-timeout" };
  g_autoptr(ExoPoolLease) lease = NULL;
  ExoResource *r;

  g_value_init (&values[0], G_TYPE_UINT);
  g_value_set_uint (&values[0], 4321);
  pool = g_object_new (EXO_TYPE_RESOURCE_POOL, "id", "typed", NULL);
  g_object_unref (pool);

  pool = exo_resource_pool_new_with_properties (EXO_TYPE_TEST_RESOURCE, 1, 2, 1, names, values);
  g_value_unset (&values[0]);
  g_assert_true (exo_resource_pool_get_item_type (pool) == EXO_TYPE_TEST_RESOURCE);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (pool), NULL));

  lease = acquire_sync (pool, 1000, NULL);
  r = exo_pool_lease_get_resource (lease);
  g_assert_true (EXO_IS_TEST_RESOURCE (r));
  g_assert_cmpuint (exo_resource_get_init_timeout (r), ==, 4321);
  g_assert_true (g_str_has_prefix (exo_resource_get_id (r), exo_resource_get_id (EXO_RESOURCE (pool))));
  exo_pool_lease_release (lease);

  finish_pool (pool, NULL);
}

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
  g_assert_cmpuint (((ExoTestResource *) backend.made->pdata[1])->n_health_calls, >=, 1);
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

/* --- two threads on the fast path -------------------------------------- */

#define CONTENTION_POOL 4
#define CONTENTION_CYCLES 200000

typedef struct
{
  ExoResourcePool *pool;
  ExoResource     *members[CONTENTION_POOL];
  gint             holders[CONTENTION_POOL];
  gint             double_lent;
} Contention;

typedef struct
{
  Contention *c;
  guint64     got;
  guint64     missed;
} ContentionThread;

static gpointer
contention_thread (gpointer data)
{
  ContentionThread *t = data;
  Contention *c = t->c;

  for (guint i = 0; i < CONTENTION_CYCLES; i++)
    {
      ExoResource *r = exo_resource_pool_try_acquire (c->pool);
      guint k;

      if (r == NULL)
        {
          t->missed++;
          continue;
        }
      t->got++;
      for (k = 0; k < CONTENTION_POOL && c->members[k] != r; k++)
        ;
      g_assert_cmpuint (k, <, CONTENTION_POOL);
      if (!g_atomic_int_compare_and_exchange (&c->holders[k], 0, 1))
        g_atomic_int_inc (&c->double_lent);
      if (i % 3 == 0)
        g_thread_yield ();
      g_atomic_int_set (&c->holders[k], 0);
      exo_resource_pool_release (c->pool, r);
    }
  return NULL;
}

static void
test_threads_contention (void)
{
  Backend backend;
  Contention c = { 0 };
  ContentionThread t[2] = { { &c }, { &c } };
  GThread *threads[2];
  ExoPoolStats st;

  backend_init (&backend);
  c.pool = new_ready_pool (&backend, CONTENTION_POOL, CONTENTION_POOL);
  for (guint i = 0; i < CONTENTION_POOL; i++)
    c.members[i] = backend.made->pdata[i];

  for (guint i = 0; i < 2; i++)
    threads[i] = g_thread_new ("contention", contention_thread, &t[i]);
  for (guint i = 0; i < 2; i++)
    g_thread_join (threads[i]);

  g_assert_cmpint (c.double_lent, ==, 0);
  /* With 4 resources and 2 threads, nobody ever misses. */
  g_assert_cmpuint (t[0].missed + t[1].missed, ==, 0);

  exo_resource_pool_get_stats (c.pool, &st);
  g_assert_cmpuint (st.acquired, ==, t[0].got + t[1].got);
  g_assert_cmpuint (st.acquired, ==, 2 * CONTENTION_CYCLES);
  g_assert_cmpuint (st.size, ==, CONTENTION_POOL);
  g_assert_cmpuint (st.idle, ==, CONTENTION_POOL);
  g_assert_cmpuint (st.in_use, ==, 0);
  g_assert_cmpuint (st.created, ==, CONTENTION_POOL);
  g_assert_cmpuint (st.destroyed, ==, 0);

  finish_pool (c.pool, &backend);
  backend_clear (&backend);
}

static void
test_threads_scarce (void)
{
  Backend backend;
  Contention c = { 0 };
  ContentionThread t[2] = { { &c }, { &c } };
  GThread *threads[2];
  ExoPoolStats st;

  /* One resource, two threads: try_acquire misses but never lends twice. */
  backend_init (&backend);
  c.pool = new_ready_pool (&backend, 1, 1);
  c.members[0] = backend.made->pdata[0];
  for (guint i = 1; i < CONTENTION_POOL; i++)
    c.members[i] = NULL;

  for (guint i = 0; i < 2; i++)
    threads[i] = g_thread_new ("scarce", contention_thread, &t[i]);
  for (guint i = 0; i < 2; i++)
    g_thread_join (threads[i]);

  g_assert_cmpint (c.double_lent, ==, 0);
  exo_resource_pool_get_stats (c.pool, &st);
  g_assert_cmpuint (st.acquired, ==, t[0].got + t[1].got);
  g_assert_cmpuint (t[0].got + t[0].missed, ==, CONTENTION_CYCLES);
  g_assert_cmpuint (st.size, ==, 1);
  g_assert_cmpuint (st.idle, ==, 1);

  finish_pool (c.pool, &backend);
  backend_clear (&backend);
}

/* --- the last lease dropped on a worker thread ------------------------- */

/* Where the pool was finalized and its resources changed state. */
typedef struct
{
  GThread *owner;
  gint     transitions;
  gint     wrong_thread;   /* state-changed or finalize on another thread */
  gint     finalized;
} ThreadCheck;

static void
thread_check_state_cb (ExoResource      *resource,
                       ExoResourceState  old_state,
                       ExoResourceState  new_state,
                       gpointer          data)
{
  ThreadCheck *check = data;

  g_atomic_int_inc (&check->transitions);
  if (g_thread_self () != check->owner)
    g_atomic_int_inc (&check->wrong_thread);
}

static void
thread_check_finalized_cb (gpointer  data,
                           GObject  *where_the_object_was)
{
  ThreadCheck *check = data;

  if (g_thread_self () != check->owner)
    g_atomic_int_inc (&check->wrong_thread);
  g_atomic_int_set (&check->finalized, TRUE);
}

static gboolean
check_finalized (gpointer data)
{
  return g_atomic_int_get (&((ThreadCheck *) data)->finalized);
}

static gboolean
all_made_closed (gpointer data)
{
  Backend *backend = data;

  for (guint i = 0; i < backend->made->len; i++)
    if (exo_resource_get_state (backend->made->pdata[i]) != EXO_RESOURCE_STATE_CLOSED)
      return FALSE;
  return TRUE;
}

static gpointer
drop_lease_thread (gpointer data)
{
  exo_pool_lease_unref (data);
  return NULL;
}

static ExoResourcePool *
watched_pool (Backend    *backend,
              guint       size,
              ThreadCheck *check)
{
  ExoResourcePool *pool = new_ready_pool (backend, size, size);

  for (guint i = 0; i < backend->made->len; i++)
    g_signal_connect (backend->made->pdata[i], "state-changed",
                      G_CALLBACK (thread_check_state_cb), check);
  g_object_weak_ref (G_OBJECT (pool), thread_check_finalized_cb, check);
  return pool;
}

/* Finalized in its context, every resource closed there, nothing else. */
static void
assert_closed_on_owner (Backend     *backend,
                        ThreadCheck *check)
{
  guint limit = 10000 * exo_test_slow_factor ();

  g_assert_true (exo_test_spin_until (check_finalized, check, limit));
  g_assert_true (exo_test_spin_until (all_made_closed, backend, limit));
  g_assert_cmpint (g_atomic_int_get (&check->wrong_thread), ==, 0);
  /* ready > closing > closed, each seen on the owner's thread */
  g_assert_cmpint (g_atomic_int_get (&check->transitions), ==, 2 * backend->made->len);

  for (guint i = 0; i < backend->made->len; i++)
    g_signal_handlers_disconnect_by_data (backend->made->pdata[i], check);
}

static void
test_threads_last_lease_on_worker (void)
{
  Backend backend;
  ThreadCheck check = { g_thread_self () };
  ExoResourcePool *pool;
  ExoPoolLease *lease;
  GThread *thread;

  backend_init (&backend);
  pool = watched_pool (&backend, 2, &check);
  lease = exo_resource_pool_try_acquire_lease (pool);
  g_assert_nonnull (lease);

  /* The owner lets go of the pool: the lease holds the last reference, and
   * a worker drops it while the owner does not iterate its context. */
  g_object_unref (pool);
  thread = g_thread_new ("lease-dropper", drop_lease_thread, lease);
  g_thread_join (thread);
  g_assert_cmpint (g_atomic_int_get (&check.wrong_thread), ==, 0);

  assert_closed_on_owner (&backend, &check);
  backend_clear (&backend);
}

static void
test_threads_leases_dropped_while_iterating (void)
{
  Backend backend;
  ThreadCheck check = { g_thread_self () };
  ExoResourcePool *pool;
  GThread *threads[4];

  /* Workers drop every lease while the owner iterates its context. */
  backend_init (&backend);
  pool = watched_pool (&backend, G_N_ELEMENTS (threads), &check);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      ExoPoolLease *lease = exo_resource_pool_try_acquire_lease (pool);

      g_assert_nonnull (lease);
      threads[i] = g_thread_new ("lease-dropper", drop_lease_thread, lease);
    }
  g_object_unref (pool);

  assert_closed_on_owner (&backend, &check);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  backend_clear (&backend);
}

/* --- 1,000 waiters: nothing lost --------------------------------------- */

typedef struct
{
  ExoResourcePool *pool;
  guint            done;
  guint            served;
  guint            timed_out;
  guint            other;
  guint            held;
} Crowd;

static gboolean
crowd_release_cb (gpointer data)
{
  ExoPoolLease *lease = data;
  Crowd *crowd = g_object_get_data (G_OBJECT (exo_pool_lease_get_pool (lease)), "crowd");

  crowd->held--;
  /* Some come back broken. */
  if (g_test_rand_int_range (0, 10) == 0)
    exo_pool_lease_invalidate (lease);
  exo_pool_lease_unref (lease);
  return G_SOURCE_REMOVE;
}

static void
crowd_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  Crowd *crowd = data;
  g_autoptr(GError) error = NULL;
  ExoPoolLease *lease;

  lease = exo_resource_pool_acquire_finish (crowd->pool, result, &error);
  crowd->done++;
  if (lease != NULL)
    {
      g_assert_cmpint (exo_resource_get_state (exo_pool_lease_get_resource (lease)), ==,
                       EXO_RESOURCE_STATE_READY);
      crowd->served++;
      crowd->held++;
      g_timeout_add (g_test_rand_int_range (0, 4), crowd_release_cb, lease);
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    crowd->timed_out++;
  else
    crowd->other++;
}

static gboolean
crowd_finished (gpointer data)
{
  Crowd *crowd = data;
  return crowd->done == 1000 && crowd->held == 0;
}

static void
test_thousand_waiters (void)
{
  Backend backend;
  Crowd crowd = { 0 };
  ExoPoolStats st;
  PoolCount c;

  backend_init (&backend);
  crowd.pool = new_ready_pool (&backend, 2, 8);
  g_object_set_data (G_OBJECT (crowd.pool), "crowd", &crowd);

  for (guint i = 0; i < 1000; i++)
    {
      /* Mixed: short timeouts (some expire), long ones, and no timeout. */
      guint timeout = i % 5 == 0 ? 0 : (guint) g_test_rand_int_range (1, 400);

      exo_resource_pool_acquire_async (crowd.pool, timeout, NULL, crowd_done_cb, &crowd);
    }
  g_assert_true (exo_test_spin_until (crowd_finished, &crowd, 60000));
  g_test_message ("served %u, timed out %u", crowd.served, crowd.timed_out);

  g_assert_cmpuint (crowd.other, ==, 0);
  g_assert_cmpuint (crowd.served + crowd.timed_out, ==, 1000);
  g_assert_cmpuint (crowd.served, >, 0);
  g_assert_cmpuint (crowd.timed_out, >, 0);

  /* Wait for the broken ones to be replaced and everything to settle. */
  exo_test_spin (50);
  exo_resource_pool_get_stats (crowd.pool, &st);
  g_assert_cmpuint (st.waiting, ==, 0);
  g_assert_cmpuint (st.in_use, ==, 0);
  g_assert_cmpuint (st.acquired, ==, crowd.served);
  g_assert_cmpuint (st.timeouts, ==, crowd.timed_out);
  g_assert_cmpuint (st.size, ==, st.idle + st.in_use);
  g_assert_cmpuint (st.created - st.destroyed, ==, st.size);
  g_assert_cmpuint (st.size, <=, 8);
  g_assert_cmpuint (st.size, >=, 2);
  g_assert_cmpuint (backend.made->len, ==, st.created);

  /* Nothing was lost: every idle resource can be taken. */
  c = (PoolCount) { crowd.pool, st.size };
  g_assert_true (size_is (&c));
  {
    g_autoptr(GPtrArray) taken = g_ptr_array_new ();

    for (guint i = 0; i < st.size; i++)
      {
        ExoResource *r = exo_resource_pool_try_acquire (crowd.pool);

        g_assert_nonnull (r);
        g_ptr_array_add (taken, r);
      }
    g_assert_null (exo_resource_pool_try_acquire (crowd.pool));
    for (guint i = 0; i < taken->len; i++)
      exo_resource_pool_release (crowd.pool, taken->pdata[i]);
  }

  finish_pool (crowd.pool, &backend);
  backend_clear (&backend);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/exo/pool/prewarm", test_prewarm);
  g_test_add_func ("/exo/pool/prewarm/failure", test_prewarm_failure);
  g_test_add_func ("/exo/pool/properties", test_properties);
  g_test_add_func ("/exo/pool/properties/notify-coalesced", test_notify_coalesced);
  g_test_add_func ("/exo/pool/factory/properties", test_factory_properties);
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
  g_test_add_func ("/exo/pool/validate/after-idle", test_validate_after_idle);
  g_test_add_func ("/exo/pool/regression/idle-eviction-uses-idle-time",
                   test_regression_idle_eviction);
  g_test_add_func ("/exo/pool/idle/evict-to-min-size", test_idle_eviction_to_min);
  g_test_add_func ("/exo/pool/lifetime/jitter", test_lifetime_jitter);
  g_test_add_func ("/exo/pool/lifetime/idle-replaced", test_lifetime_idle_replaced);
  g_test_add_func ("/exo/pool/idle/health-check", test_idle_check);
  g_test_add_func ("/exo/pool/leak/detected", test_leak_detected);
  g_test_add_func ("/exo/pool/stats/wait-time", test_wait_time);
  g_test_add_func ("/exo/pool/cleanup/drains", test_cleanup_drains);
  g_test_add_func ("/exo/pool/cleanup/drain-timeout", test_cleanup_drain_timeout);
  g_test_add_func ("/exo/pool/recovery/backend-returns", test_recovery);
  g_test_add_func ("/exo/pool/recovery/without-demand", test_recovery_without_demand);
  g_test_add_func ("/exo/pool/recovery/gives-up", test_recovery_gives_up);
  g_test_add_func ("/exo/pool/threads/contention", test_threads_contention);
  g_test_add_func ("/exo/pool/threads/scarce", test_threads_scarce);
  g_test_add_func ("/exo/pool/threads/last-lease-on-worker", test_threads_last_lease_on_worker);
  g_test_add_func ("/exo/pool/threads/leases-dropped-while-iterating",
                   test_threads_leases_dropped_while_iterating);
  g_test_add_func ("/exo/pool/waiters/thousand", test_thousand_waiters);

  return g_test_run ();
}
