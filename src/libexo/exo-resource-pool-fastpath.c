/* exo-resource-pool-fastpath.c: borrowing without waiting, from any thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns exo_resource_pool_try_acquire(), _try_acquire_lease(), _release()
 * and _release_broken() (all through _exo_resource_pool_release_internal,
 * which leases use too), the return of orphans (resources closed by the
 * drain timeout while lent), and the statistics getters.
 *
 * Threads: everything here may run on any thread.  It touches only fields
 * that are under the mutex, and only with it held: the idle stack, slots,
 * orphans, free_orphans, doomed (doom_locked), n_lent, n_busy, the counters,
 * dispatch_pending, notify_pending, validate_requested, the waiter queue's
 * length, phase, min_size, max_size, validate_us and the stamp_* flags; and
 * of a Slot its where, state, idle_since, checked_at, expires_at,
 * acquired_at, leak_reported, cleaned and released.  No main-context field,
 * except that wake() reads the dispatch and notify sources.  try_acquire and
 * release stay in this one file, with what they share with the dispatcher
 * inlined from the private header: keep it so, they are the hot path
 * (pool_cycle_ns, pool_cycle_2t_ns).
 *
 * Re-entrancy: nothing here calls out, except g_critical() for a resource
 * the pool did not lend (after unlocking), and nothing waits but for the
 * mutex; so all of it may be called from inside any pool callback.  The
 * main context learns of a change through wake(), after unlocking.
 */
#include "exo-resource-pool-private.h"

/* --- the thread-safe fast path ---------------------------------------- */

/**
 * exo_resource_pool_try_acquire:
 * @self: a pool
 *
 * Takes an idle `ready` resource if there is one, without waiting and
 * without making one.  Returns %NULL when none is idle, when callers of
 * exo_resource_pool_acquire_async() are waiting (they come first), or when
 * the pool is not usable.  Safe from any thread; give the resource back
 * with exo_resource_pool_release().  The pool must outlive the loan.
 *
 * Returns: (transfer none) (nullable): a resource, valid until you release
 *   it, or %NULL
 */
ExoResource *
exo_resource_pool_try_acquire (ExoResourcePool *self)
{
  ExoResource *resource = NULL;
  gboolean stale = FALSE, doomed = FALSE;
  gboolean dispatch = FALSE, notify = FALSE;
  gint64 notify_when = 0;

  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), NULL);

  g_mutex_lock (&self->mutex);
  if G_LIKELY (self->phase == PHASE_OPEN && self->waiters.length == 0)
    {
      gint64 now = self->stamp_acquire ? pool_now () : 0;
      Slot *slot = take_idle_locked (self, now, &stale, &doomed);

      if G_LIKELY (slot != NULL)
        {
          lend_locked (self, slot, now);
          resource = slot->resource;
          notify = want_notify_locked (self, &notify_when);
        }
      if G_UNLIKELY (stale || doomed)
        {
          self->validate_requested |= stale;
          dispatch = want_dispatch_locked (self);
        }
    }
  g_mutex_unlock (&self->mutex);

  if G_UNLIKELY (dispatch || notify)
    wake (self, dispatch, notify, notify_when);

  return resource;
}

/**
 * exo_resource_pool_try_acquire_lease:
 * @self: a pool
 *
 * Like exo_resource_pool_try_acquire(), wrapped in a lease for
 * `g_autoptr(ExoPoolLease)`.
 *
 * Returns: (transfer full) (nullable): a lease, or %NULL
 */
ExoPoolLease *
exo_resource_pool_try_acquire_lease (ExoResourcePool *self)
{
  ExoResource *resource = exo_resource_pool_try_acquire (self);

  return resource != NULL ? lease_new (self, resource) : NULL;
}

/* Under the lock: @resource is not a member; it may be an orphan (closed by
 * the drain timeout while lent).  Returns FALSE if it is not that either. */
static gboolean
release_orphan_locked (ExoResourcePool *self,
                       ExoResource     *resource,
                       gboolean        *dispatch)
{
  Slot *slot;

  if (self->orphans == NULL)
    return FALSE;
  slot = g_hash_table_lookup (self->orphans, resource);
  if (slot == NULL)
    return FALSE;

  g_hash_table_remove (self->orphans, resource);
  slot->released = TRUE;
  if (slot->cleaned)
    {
      g_ptr_array_add (self->free_orphans, slot);
      *dispatch = want_dispatch_locked (self);
    }
  return TRUE;
}

void
_exo_resource_pool_release_internal (ExoResourcePool *self,
                                     ExoResource     *resource,
                                     gboolean         broken)
{
  Slot *slot;
  gboolean dispatch = FALSE, notify;
  gint64 notify_when = 0;
  gint64 now;

  g_mutex_lock (&self->mutex);

  slot = g_hash_table_lookup (self->slots, resource);
  if G_UNLIKELY (slot == NULL || slot->where != SLOT_LENT)
    {
      gboolean known = release_orphan_locked (self, resource, &dispatch);

      g_mutex_unlock (&self->mutex);
      wake (self, dispatch, FALSE, 0);
      if (!known)
        g_critical ("%s: resource %p was not lent by pool '%s'", G_STRFUNC, resource,
                    exo_resource_get_id (EXO_RESOURCE (self)));
      return;
    }

  now = self->stamp_release ? pool_now () : 0;
  self->n_lent--;

  if G_LIKELY (!broken
               && slot->state == EXO_RESOURCE_STATE_READY
               && now < slot->expires_at
               && self->phase == PHASE_OPEN)
    {
      slot->where = SLOT_IDLE;
      slot->idle_since = now;
      self->idle[self->n_idle++] = slot;
      if G_UNLIKELY (self->waiters.length > 0)
        dispatch = want_dispatch_locked (self);
    }
  else
    {
      doom_locked (self, slot);
      dispatch = want_dispatch_locked (self);
    }

  notify = want_notify_locked (self, &notify_when);
  g_mutex_unlock (&self->mutex);

  if G_UNLIKELY (dispatch || notify)
    wake (self, dispatch, notify, notify_when);
}

/**
 * exo_resource_pool_release:
 * @self: a pool
 * @resource: a resource from exo_resource_pool_try_acquire()
 *
 * Gives @resource back.  It becomes idle if it is still `ready` and within
 * its lifetime; otherwise the pool cleans it up and drops it.  Safe from
 * any thread.
 */
void
exo_resource_pool_release (ExoResourcePool *self,
                           ExoResource     *resource)
{
  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));
  g_return_if_fail (resource != NULL);

  _exo_resource_pool_release_internal (self, resource, FALSE);
}

/**
 * exo_resource_pool_release_broken:
 * @self: a pool
 * @resource: a resource from exo_resource_pool_try_acquire()
 *
 * Gives @resource back as broken: the pool cleans it up, drops it, and
 * makes a new one when someone needs it.  Safe from any thread.
 */
void
exo_resource_pool_release_broken (ExoResourcePool *self,
                                  ExoResource     *resource)
{
  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));
  g_return_if_fail (resource != NULL);

  _exo_resource_pool_release_internal (self, resource, TRUE);
}

/* --- statistics -------------------------------------------------------- */

/**
 * exo_resource_pool_get_stats:
 * @self: a pool
 * @stats: (out caller-allocates): where to store the snapshot
 *
 * Takes a consistent snapshot of the statistics.  Safe from any thread.
 */
void
exo_resource_pool_get_stats (ExoResourcePool *self,
                             ExoPoolStats    *stats)
{
  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));
  g_return_if_fail (stats != NULL);

  memset (stats, 0, sizeof *stats);
  g_mutex_lock (&self->mutex);
  stats->min_size = self->min_size;
  stats->max_size = self->max_size;
  stats->size = size_locked (self);
  stats->idle = self->n_idle;
  stats->in_use = self->n_lent + self->n_busy;
  stats->waiting = self->waiters.length;
  stats->acquired = self->acquired;
  stats->timeouts = self->timeouts;
  stats->created = self->created;
  stats->destroyed = self->destroyed;
  stats->leaks = self->leaks;
  stats->create_failures = self->create_failures;
  stats->wait_time_mean_us = self->wait_count > 0 ? self->wait_total_us / self->wait_count : 0;
  stats->wait_time_max_us = self->wait_max_us;
  g_mutex_unlock (&self->mutex);
}

/**
 * exo_resource_pool_get_size:
 * @self: a pool
 *
 * Returns: the number of resources that exist, idle or in use
 */
guint
exo_resource_pool_get_size (ExoResourcePool *self)
{
  guint n;

  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), 0);

  g_mutex_lock (&self->mutex);
  n = size_locked (self);
  g_mutex_unlock (&self->mutex);
  return n;
}

/**
 * exo_resource_pool_get_idle:
 * @self: a pool
 *
 * Returns: the number of idle resources
 */
guint
exo_resource_pool_get_idle (ExoResourcePool *self)
{
  guint n;

  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), 0);

  g_mutex_lock (&self->mutex);
  n = self->n_idle;
  g_mutex_unlock (&self->mutex);
  return n;
}

/**
 * exo_resource_pool_get_in_use:
 * @self: a pool
 *
 * Returns: the number of resources lent out or being checked by the pool
 */
guint
exo_resource_pool_get_in_use (ExoResourcePool *self)
{
  guint n;

  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), 0);

  g_mutex_lock (&self->mutex);
  n = self->n_lent + self->n_busy;
  g_mutex_unlock (&self->mutex);
  return n;
}

/**
 * exo_resource_pool_get_waiting:
 * @self: a pool
 *
 * Returns: the number of callers of exo_resource_pool_acquire_async() that
 *   wait
 */
guint
exo_resource_pool_get_waiting (ExoResourcePool *self)
{
  guint n;

  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), 0);

  g_mutex_lock (&self->mutex);
  n = self->waiters.length;
  g_mutex_unlock (&self->mutex);
  return n;
}
