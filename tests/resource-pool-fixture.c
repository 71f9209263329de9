/* resource-pool-fixture.c: the Backend of test-resource-pool and its helpers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A Backend makes the pool's resources (ExoTestResource without retries or
 * recovery of their own) and keeps each for inspection; a test switches it
 * down and up.  Pools are made, filled, used and finished here in the test's
 * thread on its thread-default main context; only the factory may be called
 * elsewhere, as the pool calls it.
 */
#include "resource-pool-fixture.h"

/* --- helpers ----------------------------------------------------------- */

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

void
backend_init (Backend *backend)
{
  memset (backend, 0, sizeof *backend);
  backend->made = g_ptr_array_new_with_free_func (g_object_unref);
}

void
backend_clear (Backend *backend)
{
  g_clear_pointer (&backend->made, g_ptr_array_unref);
}

ExoResourcePool *
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

ExoResourcePool *
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

void
assert_accounting (ExoResourcePool *pool)
{
  ExoPoolStats st;

  exo_resource_pool_get_stats (pool, &st);
  g_assert_cmpuint (st.size, ==, st.idle + st.in_use);
  g_assert_cmpuint (st.created - st.destroyed, ==, st.size);
}

/* Closes the pool and checks that every resource it made is closed. */
void
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

ExoPoolLease *
acquire_sync (ExoResourcePool  *pool,
              guint             timeout_ms,
              GError          **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  exo_resource_pool_acquire_async (pool, timeout_ms, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 30000));
  return exo_resource_pool_acquire_finish (pool, result, error);
}

ExoTestResource *
lease_item (ExoPoolLease *lease)
{
  return EXO_TEST_RESOURCE (exo_pool_lease_get_resource (lease));
}

gboolean
size_is (gpointer data)
{
  PoolCount *c = data;
  return exo_resource_pool_get_size (c->pool) == c->value;
}

gboolean
state_is_closed (gpointer data)
{
  return exo_resource_get_state (data) == EXO_RESOURCE_STATE_CLOSED;
}

guint64
destroyed_of (ExoResourcePool *pool)
{
  ExoPoolStats st;

  exo_resource_pool_get_stats (pool, &st);
  return st.destroyed;
}
