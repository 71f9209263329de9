/* exo-pool-lease.c: ExoPoolLease, a resource lent by an ExoResourcePool.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns the lease's functions (its reference count, whether it was released,
 * its reference to the pool) and the hand-over of pool references dropped
 * on other threads (pool_unref_from_any_thread, _exo_resource_pool_unref_cb).
 * Its struct and lease_new() are in the private header, inlined where
 * leases are made (acquire_async, the dispatcher, try_acquire_lease).
 *
 * Threads: every exo_pool_lease_*() function may run on any thread.  A
 * lease's ref_count and released are atomics; its pool and resource never
 * change.  No field of the pool is touched here under the mutex: giving the
 * resource back is _exo_resource_pool_release_internal (fastpath), which
 * takes it.  deferred_unrefs is an atomic; owner_thread and unref_source
 * are only read.  _exo_resource_pool_unref_cb runs in the pool's context.
 *
 * Re-entrancy: the last exo_pool_lease_unref() drops the lease's reference
 * to the pool, which may be the last one.  In the pool's context (or on its
 * owner thread, which then acquires the context) the pool is finalized right
 * there, and dispose cleans up its members; any other thread hands the
 * reference over to the pool's context instead.  A lease may be released or
 * dropped from inside any pool callback: no pool code holds the mutex while
 * it calls out.
 */
#include "exo-resource-pool-private.h"

G_DEFINE_BOXED_TYPE (ExoPoolLease, exo_pool_lease, exo_pool_lease_ref, exo_pool_lease_unref)

/* --- leases ------------------------------------------------------------ */

/* In the pool's context: drop the references other threads handed over.
 * The last one finalizes the pool (and destroys this source). */
gboolean
_exo_resource_pool_unref_cb (gpointer data)
{
  ExoResourcePool *self = data;
  gint n = g_atomic_int_exchange (&self->deferred_unrefs, 0);

  while (n-- > 0)
    g_object_unref (self);
  return G_SOURCE_CONTINUE;
}

/* Drops a reference to @self from any thread.  The last one finalizes the
 * pool, which cleans up its resources (transitions, signals): that belongs
 * to the pool's context.  So only its thread drops a reference directly;
 * any other thread hands it over to the context, where
 * _exo_resource_pool_unref_cb() drops it at the next iteration. */
static void
pool_unref_from_any_thread (ExoResourcePool *self)
{
  GMainContext *context = exo_resource_get_context (EXO_RESOURCE (self));

  if (g_main_context_is_owner (context))
    {
      g_object_unref (self);
      return;
    }

  /* The owner thread between iterations: hold the context while the pool
   * may be finalized, so nobody else dispatches its sources meanwhile. */
  if (self->owner_thread == g_thread_self () && g_main_context_acquire (context))
    {
      g_main_context_ref (context);
      g_object_unref (self);
      g_main_context_release (context);
      g_main_context_unref (context);
      return;
    }

  /* Our reference keeps the pool (and the source) alive until
   * _exo_resource_pool_unref_cb() has taken it; only the first hand-over
   * since the last one wakes it. */
  if (g_atomic_int_add (&self->deferred_unrefs, 1) == 0)
    g_source_set_ready_time (self->unref_source, 0);
}

/**
 * exo_pool_lease_ref:
 * @lease: a lease
 *
 * Returns: (transfer full): @lease
 */
ExoPoolLease *
exo_pool_lease_ref (ExoPoolLease *lease)
{
  g_return_val_if_fail (lease != NULL, NULL);

  g_atomic_int_inc (&lease->ref_count);
  return lease;
}

/**
 * exo_pool_lease_unref:
 * @lease: (transfer full): a lease
 *
 * Drops a reference; the last one returns the resource to its pool (unless
 * it was already released).  Safe from any thread: on a thread other than
 * the pool's, the lease's reference to the pool is dropped in the pool's
 * main context, so that the pool, when this was its last reference, is
 * finalized and its resources are cleaned up there.
 */
void
exo_pool_lease_unref (ExoPoolLease *lease)
{
  g_return_if_fail (lease != NULL);

  if (!g_atomic_int_dec_and_test (&lease->ref_count))
    return;

  exo_pool_lease_release (lease);
  pool_unref_from_any_thread (lease->pool);
  g_free (lease);
}

/**
 * exo_pool_lease_get_resource:
 * @lease: a lease
 *
 * Returns: (transfer none) (nullable): the lent resource, or %NULL once the
 *   lease was released
 */
ExoResource *
exo_pool_lease_get_resource (ExoPoolLease *lease)
{
  g_return_val_if_fail (lease != NULL, NULL);

  if (g_atomic_int_get (&lease->released))
    return NULL;
  return lease->resource;
}

/**
 * exo_pool_lease_get_pool:
 * @lease: a lease
 *
 * Returns: (transfer none): the pool the resource belongs to
 */
ExoResourcePool *
exo_pool_lease_get_pool (ExoPoolLease *lease)
{
  g_return_val_if_fail (lease != NULL, NULL);

  return lease->pool;
}

/**
 * exo_pool_lease_release:
 * @lease: a lease
 *
 * Returns the resource to the pool now, before the last reference goes.
 * Releasing twice does nothing.  Safe from any thread.
 */
void
exo_pool_lease_release (ExoPoolLease *lease)
{
  g_return_if_fail (lease != NULL);

  if (g_atomic_int_compare_and_exchange (&lease->released, 0, 1))
    _exo_resource_pool_release_internal (lease->pool, lease->resource, FALSE);
}

/**
 * exo_pool_lease_invalidate:
 * @lease: a lease
 *
 * Returns the resource to the pool as broken, now: the pool cleans it up
 * and drops it, and makes a new one when someone needs it.  Does nothing
 * when @lease was already released.  Safe from any thread.
 */
void
exo_pool_lease_invalidate (ExoPoolLease *lease)
{
  g_return_if_fail (lease != NULL);

  if (g_atomic_int_compare_and_exchange (&lease->released, 0, 1))
    _exo_resource_pool_release_internal (lease->pool, lease->resource, TRUE);
}
