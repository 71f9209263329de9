/* test-resource-pool-threads.c: an ExoResourcePool used from several
 * threads, and 1,000 waiters at once.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-resource-pool (main() in test-resource-pool.c).  Worker
 * threads only call the pool's thread-safe entry points (try_acquire,
 * release, lease unref); the pool belongs to the test's thread, where its
 * state changes and finalization must happen (ThreadCheck asserts that).
 */
#include "resource-pool-fixture.h"

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

/* --- registration ---------------------------------------------------- */

void
test_pool_register_threads (void)
{
  g_test_add_func ("/exo/pool/threads/contention", test_threads_contention);
  g_test_add_func ("/exo/pool/threads/scarce", test_threads_scarce);
  g_test_add_func ("/exo/pool/threads/last-lease-on-worker", test_threads_last_lease_on_worker);
  g_test_add_func ("/exo/pool/threads/leases-dropped-while-iterating",
                   test_threads_leases_dropped_while_iterating);
  g_test_add_func ("/exo/pool/waiters/thousand", test_thousand_waiters);
}
