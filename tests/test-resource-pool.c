/* test-resource-pool.c: ExoResourcePool — main(), and construction,
 * pre-warm and statistics.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The other cases are in test-resource-pool-{acquire,idle,recovery,threads}.c,
 * the Backend they share in resource-pool-fixture.c; main() registers each
 * part's cases in the order they were written.  One thread unless a case
 * says otherwise: the test spins its thread-default main context.
 */
#include "resource-pool-fixture.h"

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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/exo/pool/prewarm", test_prewarm);
  g_test_add_func ("/exo/pool/prewarm/failure", test_prewarm_failure);
  g_test_add_func ("/exo/pool/properties", test_properties);
  g_test_add_func ("/exo/pool/properties/notify-coalesced", test_notify_coalesced);
  g_test_add_func ("/exo/pool/factory/properties", test_factory_properties);
  test_pool_register_acquire ();
  test_pool_register_idle ();
  test_pool_register_recovery ();
  test_pool_register_threads ();

  return g_test_run ();
}
