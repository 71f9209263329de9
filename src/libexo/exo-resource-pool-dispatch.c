/* exo-resource-pool-dispatch.c: who gets what; what to make, check and drop.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns the waiters (Waiter; exo_resource_pool_acquire_async() and _finish(),
 * their timeouts and cancellation, failing them all), the dispatcher
 * (dispatch_once(): one pass under the mutex that serves waiters from the
 * idle stack, picks resources to check, shrinks to max-size, counts the
 * creations needed and takes the doomed; after unlocking it carries that
 * out through exo-resource-pool-lifecycle.c), and maintenance (the timer
 * that evicts, retires and checks idle resources and reports leaks), with
 * the configuration it runs on (_exo_resource_pool_update_config).
 *
 * Threads: all of it runs in the pool's main context.  Under the mutex it
 * touches the waiter queue and each Waiter's queued flag, the idle stack,
 * slots, doomed and doomed_spare, free_orphans, n_lent, n_busy, n_validating,
 * n_creating, dispatch_pending, validate_requested, the wait statistics,
 * timeouts, leaks, the *_us thresholds and stamp_* flags, a Slot's where,
 * idle_since, expires_at, acquired_at and leak_reported (and reads its state
 * and checked_at), and it reads phase, min_size and max_size.  Only on the
 * main context: in_dispatch, dispatch_again, probe, maintenance_source, the
 * *_ms settings, and the rest of a Waiter; it reads retry_source,
 * consecutive_failures and create_error.
 *
 * Re-entrancy: serving or failing a waiter returns its GTask, whose callback
 * may run at once (inside dispatch_once() or a timeout or cancellation
 * source) and call anything of the pool; so may ::leak-detected handlers in
 * maintenance_cb.  Hence _exo_resource_pool_run_dispatch() holds a reference
 * and is never nested: a call while it runs sets dispatch_again, and the
 * running loop makes another pass.  A waiter is unlinked (queued = FALSE)
 * under the mutex before it is served or failed, so its timeout or
 * cancellation, firing later, finds it gone.  acquire_async() never calls
 * back before it returns: a GTask returned in the iteration that made it
 * completes from an idle source.
 */
#include "exo-resource-pool-private.h"

/* --- waiters ----------------------------------------------------------- */

typedef struct
{
  GList    link;                   /* in pool->waiters; data = the waiter */
  GTask   *task;
  GSource *timeout_source;
  GSource *cancel_source;
  gint64   queued_at;              /* g_get_monotonic_time () */
  guint    timeout_ms;
  gboolean queued;                 /* in pool->waiters (under the lock) */
} Waiter;

static void
record_wait_locked (ExoResourcePool *self,
                    gint64           waited_us)
{
  guint64 us = waited_us > 0 ? (guint64) waited_us : 0;

  self->wait_count++;
  self->wait_total_us += us;
  if (us > self->wait_max_us)
    self->wait_max_us = us;
}

static void
waiter_free (Waiter *waiter)
{
  clear_source (&waiter->timeout_source);
  clear_source (&waiter->cancel_source);
  g_clear_object (&waiter->task);
  g_free (waiter);
}

static void
waiter_serve (ExoResourcePool *self,
              Waiter          *waiter,
              ExoResource     *resource)
{
  g_task_return_pointer (waiter->task, lease_new (self, resource),
                         (GDestroyNotify) exo_pool_lease_unref);
  waiter_free (waiter);
}

static void
waiter_fail (Waiter *waiter,
             GError *error)
{
  g_task_return_error (waiter->task, error);
  waiter_free (waiter);
}

/* Under the lock: move every waiter to @out. */
void
_exo_resource_pool_steal_waiters_locked (ExoResourcePool *self,
                                         GQueue          *out)
{
  *out = self->waiters;
  g_queue_init (&self->waiters);
  for (GList *l = out->head; l != NULL; l = l->next)
    ((Waiter *) l->data)->queued = FALSE;
}

/* Fails every waiter; the caller has stolen the queue. */
void
_exo_resource_pool_fail_waiters (GQueue       *waiters,
                                 const GError *error)
{
  GList *link;

  while ((link = g_queue_pop_head_link (waiters)))
    waiter_fail (link->data, g_error_copy (error));
}

void
_exo_resource_pool_fail_all_waiters (ExoResourcePool *self,
                                     const GError    *error)
{
  GQueue waiters;

  g_mutex_lock (&self->mutex);
  _exo_resource_pool_steal_waiters_locked (self, &waiters);
  g_mutex_unlock (&self->mutex);

  if (!g_queue_is_empty (&waiters))
    {
      _exo_resource_pool_fail_waiters (&waiters, error);
      _exo_resource_pool_schedule_notify (self);
    }
}

static gboolean
waiter_timeout_cb (gpointer data)
{
  Waiter *waiter = data;
  ExoResourcePool *self = g_task_get_source_object (waiter->task);
  guint size, max_size, in_use;
  g_autofree char *cause = NULL;

  g_mutex_lock (&self->mutex);
  if (!waiter->queued)
    {
      /* Already served or failed; whoever took it frees it. */
      g_mutex_unlock (&self->mutex);
      return G_SOURCE_REMOVE;
    }
  g_queue_unlink (&self->waiters, &waiter->link);
  waiter->queued = FALSE;
  self->timeouts++;
  size = size_locked (self);
  in_use = self->n_lent + self->n_busy;
  max_size = self->max_size;
  g_mutex_unlock (&self->mutex);

  if (self->consecutive_failures > 0 && self->create_error != NULL)
    cause = g_strdup_printf ("; making a resource failed: %s", self->create_error->message);

  waiter_fail (waiter, g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                    "no resource from pool '%s' within %u ms "
                                    "(%u of at most %u exist, %u in use)%s",
                                    exo_resource_get_id (EXO_RESOURCE (self)),
                                    waiter->timeout_ms, size, max_size, in_use,
                                    cause != NULL ? cause : ""));
  _exo_resource_pool_schedule_notify (self);
  return G_SOURCE_REMOVE;
}

static gboolean
waiter_cancelled_cb (GCancellable *cancellable,
                     gpointer      data)
{
  Waiter *waiter = data;
  ExoResourcePool *self = g_task_get_source_object (waiter->task);

  g_mutex_lock (&self->mutex);
  if (!waiter->queued)
    {
      g_mutex_unlock (&self->mutex);
      return G_SOURCE_REMOVE;
    }
  g_queue_unlink (&self->waiters, &waiter->link);
  waiter->queued = FALSE;
  g_mutex_unlock (&self->mutex);

  waiter_fail (waiter, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                    "acquiring from pool '%s' was cancelled",
                                    exo_resource_get_id (EXO_RESOURCE (self))));
  _exo_resource_pool_schedule_notify (self);
  return G_SOURCE_REMOVE;
}

/**
 * exo_resource_pool_acquire_async:
 * @self: a pool
 * @timeout_ms: how long to wait, 0 = as long as it takes
 * @cancellable: (nullable): stops waiting
 * @callback: called with a lease, or an error
 * @user_data: data for @callback
 *
 * Borrows a resource: an idle one at once, else a new one while the pool
 * may grow, else the next one given back.  Waiters are served first come,
 * first served.  A resource that sat idle longer than
 * #ExoResourcePool:validate-after-idle-ms is health-checked first; one that
 * fails is dropped and another taken or made.
 *
 * Fails with %G_IO_ERROR_TIMED_OUT after @timeout_ms, %G_IO_ERROR_CANCELLED,
 * %EXO_RESOURCE_ERROR_CLOSED once the pool is closing, and
 * %EXO_RESOURCE_ERROR_INVALID_STATE when the pool is not initialized.
 * Call it in the pool's main context.
 */
void
exo_resource_pool_acquire_async (ExoResourcePool     *self,
                                 guint                timeout_ms,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  GTask *task;
  Slot *slot = NULL;
  Waiter *waiter = NULL;
  ExoResource *resource = NULL;
  gboolean stale = FALSE, doomed = FALSE;
  gboolean dispatch = FALSE, notify = FALSE;
  gint64 notify_when = 0;
  Phase phase;

  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, exo_resource_pool_acquire_async);
  /* A lease handed over must reach the caller even if it cancels late. */
  g_task_set_check_cancellable (task, FALSE);

  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }

  g_mutex_lock (&self->mutex);
  phase = self->phase;
  if (phase == PHASE_OPEN || phase == PHASE_STARTING)
    {
      if (phase == PHASE_OPEN && self->waiters.length == 0)
        {
          gint64 now = self->stamp_acquire ? pool_now () : 0;

          slot = take_idle_locked (self, now, &stale, &doomed);
          if (slot != NULL)
            {
              lend_locked (self, slot, now);
              record_wait_locked (self, 0);
              resource = slot->resource;
            }
        }

      if (slot == NULL)
        {
          waiter = g_new0 (Waiter, 1);
          waiter->link.data = waiter;
          waiter->task = task;
          waiter->timeout_ms = timeout_ms;
          waiter->queued_at = g_get_monotonic_time ();
          waiter->queued = TRUE;
          g_queue_push_tail_link (&self->waiters, &waiter->link);
          if (phase == PHASE_OPEN)
            dispatch = want_dispatch_locked (self);
        }
      else if (stale || doomed)
        {
          self->validate_requested |= stale;
          dispatch = want_dispatch_locked (self);
        }
      notify = want_notify_locked (self, &notify_when);
    }
  g_mutex_unlock (&self->mutex);

  wake (self, dispatch, notify, notify_when);

  if (phase == PHASE_CLOSING)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED,
                               "pool '%s' is closing", exo_resource_get_id (EXO_RESOURCE (self)));
      g_object_unref (task);
    }
  else if (phase == PHASE_DOWN)
    {
      const GError *last = exo_resource_get_last_error (EXO_RESOURCE (self));

      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                               "pool '%s' is %s%s%s", exo_resource_get_id (EXO_RESOURCE (self)),
                               exo_resource_state_to_string (exo_resource_get_state (EXO_RESOURCE (self))),
                               last != NULL ? ": " : "", last != NULL ? last->message : "");
      g_object_unref (task);
    }
  else if (resource != NULL)
    {
      g_task_return_pointer (task, lease_new (self, resource), (GDestroyNotify) exo_pool_lease_unref);
      g_object_unref (task);
    }
  else
    {
      /* Only the pool's context runs these, and only after we return. */
      if (timeout_ms > 0)
        waiter->timeout_source = add_timeout (self, timeout_ms, waiter_timeout_cb, waiter,
                                              "[exo] pool acquire timeout");
      if (cancellable != NULL)
        {
          waiter->cancel_source = g_cancellable_source_new (cancellable);
          g_source_set_callback (waiter->cancel_source,
                                 (GSourceFunc) (void (*)(void)) waiter_cancelled_cb,
                                 waiter, NULL);
          g_source_set_static_name (waiter->cancel_source, "[exo] pool acquire cancelled");
          g_source_attach (waiter->cancel_source, exo_resource_get_context (EXO_RESOURCE (self)));
        }
    }
}

/**
 * exo_resource_pool_acquire_finish:
 * @self: a pool
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Returns: (transfer full): a lease; release it (or let `g_autoptr` do it)
 *   to give the resource back
 */
ExoPoolLease *
exo_resource_pool_acquire_finish (ExoResourcePool  *self,
                                  GAsyncResult     *result,
                                  GError          **error)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* --- dispatch: serve waiters, create, destroy -------------------------- */

typedef struct
{
  Waiter      *waiter;
  ExoResource *resource;
} Served;

static void
dispatch_once (ExoResourcePool *self)
{
  GPtrArray *doomed;
  GPtrArray *free_orphans = NULL;
  g_autoptr(GArray) served = g_array_new (FALSE, FALSE, sizeof (Served));
  g_autoptr(GPtrArray) checks = g_ptr_array_new ();
  guint n_checks_for_waiters = 0;
  guint n_create = 0;
  gint64 now_precise = g_get_monotonic_time ();
  gint64 now = pool_now ();
  gboolean changed = FALSE;

  g_mutex_lock (&self->mutex);
  self->dispatch_pending = FALSE;

  doomed = self->doomed;
  self->doomed = self->doomed_spare;
  self->doomed_spare = NULL;

  if (self->free_orphans->len > 0)
    {
      free_orphans = self->free_orphans;
      self->free_orphans = g_ptr_array_new ();
    }

  if (self->phase == PHASE_OPEN)
    {
      guint size, covered, room, want;

      /* Serve waiters from the idle stack, first come first served. */
      while (self->waiters.length > 0)
        {
          gboolean stale = FALSE, unused = FALSE;
          Slot *slot = take_idle_locked (self, now, &stale, &unused);

          if (slot != NULL)
            {
              /* The link is embedded in the waiter: never g_queue_pop_head(). */
              Waiter *waiter = g_queue_pop_head_link (&self->waiters)->data;
              Served s = { waiter, slot->resource };

              waiter->queued = FALSE;
              lend_locked (self, slot, self->stamp_acquire ? now : 0);
              record_wait_locked (self, now_precise - waiter->queued_at);
              g_array_append_val (served, s);
              continue;
            }

          /* What is left on the stack needs a check: check one for each
           * waiter that nothing is on its way for. */
          covered = self->n_validating + self->n_creating;
          if (self->n_idle > 0 && self->waiters.length > covered)
            {
              slot = self->idle[--self->n_idle];
              slot->where = SLOT_BUSY;
              self->n_busy++;
              self->n_validating++;
              g_ptr_array_add (checks, slot);
              n_checks_for_waiters++;
              continue;
            }
          break;
        }

      /* Check stale idle resources that try_acquire met. */
      if (self->validate_requested)
        {
          self->validate_requested = FALSE;
          for (guint i = self->n_idle; i > 0; i--)
            {
              Slot *slot = self->idle[i - 1];

              if (self->validate_us > 0
                  && now - MAX (slot->idle_since, slot->checked_at) >= self->validate_us)
                {
                  remove_idle_at (self, i - 1);
                  slot->where = SLOT_BUSY;
                  self->n_busy++;
                  g_ptr_array_add (checks, slot);
                }
            }
        }

      /* Shrink to max-size, oldest idle first. */
      while (size_locked (self) > self->max_size && self->n_idle > 0)
        {
          Slot *slot = self->idle[0];

          remove_idle_at (self, 0);
          doom_locked (self, slot);
        }

      /* Make what the waiters and min-size need, within max-size. */
      size = size_locked (self);
      covered = self->n_validating + self->n_creating;
      room = self->max_size > size + self->n_creating ? self->max_size - size - self->n_creating : 0;
      want = self->waiters.length > covered ? self->waiters.length - covered : 0;
      if (size + self->n_creating < self->min_size)
        want = MAX (want, self->min_size - size - self->n_creating);
      if (self->retry_source == NULL)
        n_create = MIN (want, room);
      /* After a failure, one probe per backoff step even without demand. */
      if (self->probe && n_create == 0 && self->n_creating == 0 && room > 0
          && self->consecutive_failures > 0)
        n_create = 1;
      self->probe = FALSE;
      self->n_creating += n_create;
    }

  /* What was doomed meanwhile is in the fresh array: go round again. */
  if (self->doomed->len > 0 || self->free_orphans->len > 0)
    self->dispatch_again = TRUE;
  changed = doomed->len > 0 || served->len > 0 || checks->len > 0 || n_create > 0;
  g_mutex_unlock (&self->mutex);

  for (guint i = 0; i < doomed->len; i++)
    _exo_resource_pool_destroy_slot (self, doomed->pdata[i]);
  g_ptr_array_set_size (doomed, 0);
  g_mutex_lock (&self->mutex);
  if (self->doomed_spare == NULL)
    self->doomed_spare = doomed;
  else
    g_ptr_array_unref (doomed);
  g_mutex_unlock (&self->mutex);

  if (free_orphans != NULL)
    {
      g_ptr_array_set_free_func (free_orphans, (GDestroyNotify) _exo_resource_pool_slot_free);
      g_ptr_array_unref (free_orphans);
    }

  for (guint i = 0; i < served->len; i++)
    {
      Served *s = &g_array_index (served, Served, i);
      waiter_serve (self, s->waiter, s->resource);
    }

  for (guint i = 0; i < checks->len; i++)
    _exo_resource_pool_start_check (self, checks->pdata[i], i < n_checks_for_waiters);

  for (guint i = 0; i < n_create; i++)
    _exo_resource_pool_start_create (self, FALSE);

  if (changed)
    _exo_resource_pool_schedule_notify (self);
}

void
_exo_resource_pool_run_dispatch (ExoResourcePool *self)
{
  if (self->in_dispatch)
    {
      self->dispatch_again = TRUE;
      return;
    }

  g_object_ref (self);
  self->in_dispatch = TRUE;
  do
    {
      self->dispatch_again = FALSE;
      dispatch_once (self);
    }
  while (self->dispatch_again);
  self->in_dispatch = FALSE;

  _exo_resource_pool_maybe_finish_cleanup (self);
  g_object_unref (self);
}

gboolean
_exo_resource_pool_dispatch_cb (gpointer data)
{
  _exo_resource_pool_run_dispatch (data);
  return G_SOURCE_CONTINUE;
}

/* --- maintenance: eviction, lifetime, leaks, idle health checks -------- */

typedef struct
{
  ExoResource *resource;
  guint64      held_ms;
} Leak;

static gboolean
maintenance_cb (gpointer data)
{
  ExoResourcePool *self = data;
  g_autoptr(GArray) leaks = g_array_new (FALSE, FALSE, sizeof (Leak));
  g_autoptr(GPtrArray) checks = g_ptr_array_new ();
  gboolean dispatch = FALSE;
  gint64 now = pool_now ();

  g_object_ref (self);
  g_mutex_lock (&self->mutex);

  if (self->phase == PHASE_OPEN)
    {
      guint size = size_locked (self);
      guint i = 0;

      /* Oldest first: the bottom of the stack was released longest ago. */
      while (i < self->n_idle)
        {
          Slot *slot = self->idle[i];
          gboolean retire = slot->state != EXO_RESOURCE_STATE_READY || now >= slot->expires_at;
          gboolean evict = self->idle_timeout_us > 0
                           && now - slot->idle_since >= self->idle_timeout_us
                           && size > self->min_size;

          if (retire || evict)
            {
              remove_idle_at (self, i);
              doom_locked (self, slot);
              size--;
              dispatch = TRUE;
              continue;
            }

          if (self->check_us > 0
              && now - MAX (slot->idle_since, slot->checked_at) >= self->check_us)
            {
              remove_idle_at (self, i);
              slot->where = SLOT_BUSY;
              self->n_busy++;
              g_ptr_array_add (checks, slot);
              continue;
            }
          i++;
        }

      if (self->leak_us > 0 && self->n_lent > 0)
        {
          GHashTableIter iter;
          Slot *slot;

          g_hash_table_iter_init (&iter, self->slots);
          while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &slot))
            if (slot->where == SLOT_LENT && !slot->leak_reported
                && now - slot->acquired_at >= self->leak_us)
              {
                Leak leak = { g_object_ref (slot->resource),
                              (guint64) (now - slot->acquired_at) / 1000 };

                slot->leak_reported = TRUE;
                self->leaks++;
                g_array_append_val (leaks, leak);
              }
        }
    }
  g_mutex_unlock (&self->mutex);

  for (guint i = 0; i < leaks->len; i++)
    {
      Leak *leak = &g_array_index (leaks, Leak, i);

      _exo_resource_pool_emit_leak_detected (self, leak->resource, leak->held_ms);
      g_object_unref (leak->resource);
    }

  for (guint i = 0; i < checks->len; i++)
    _exo_resource_pool_start_check (self, checks->pdata[i], FALSE);

  if (leaks->len > 0 || checks->len > 0)
    _exo_resource_pool_schedule_notify (self);
  if (dispatch || leaks->len > 0)
    _exo_resource_pool_run_dispatch (self);

  g_object_unref (self);
  return G_SOURCE_CONTINUE;
}

static guint
maintenance_interval (ExoResourcePool *self)
{
  guint values[] = { self->idle_timeout_ms, self->lifetime_ms, self->check_ms, self->leak_ms };
  guint shortest = 0;

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    if (values[i] > 0 && (shortest == 0 || values[i] < shortest))
      shortest = values[i];

  if (shortest == 0)
    return 0;
  return CLAMP (shortest / 4, 5, 1000);
}

void
_exo_resource_pool_update_maintenance (ExoResourcePool *self)
{
  guint interval = maintenance_interval (self);

  clear_source (&self->maintenance_source);
  if (interval > 0 && self->phase == PHASE_OPEN)
    self->maintenance_source = add_timeout (self, interval, maintenance_cb, self,
                                            "[exo] pool maintenance");
}

/* Recompute what the fast path needs after a configuration change. */
void
_exo_resource_pool_update_config (ExoResourcePool *self)
{
  gint64 now = pool_now ();

  g_mutex_lock (&self->mutex);
  self->idle_timeout_us = (gint64) self->idle_timeout_ms * 1000;
  self->lifetime_us = (gint64) self->lifetime_ms * 1000;
  self->validate_us = (gint64) self->validate_ms * 1000;
  self->check_us = (gint64) self->check_ms * 1000;
  self->leak_us = (gint64) self->leak_ms * 1000;

  if (!self->stamp_release)
    for (guint i = 0; i < self->n_idle; i++)
      self->idle[i]->idle_since = now;

  self->stamp_release = self->idle_timeout_ms > 0 || self->lifetime_ms > 0
                        || self->validate_ms > 0 || self->check_ms > 0;
  self->stamp_acquire = self->validate_ms > 0 || self->leak_ms > 0;

  {
    GHashTableIter iter;
    Slot *slot;

    g_hash_table_iter_init (&iter, self->slots);
    while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &slot))
      {
        slot->expires_at = self->lifetime_us > 0
                           ? slot->created_at + self->lifetime_us
                             - (gint64) (slot->jitter * self->lifetime_us)
                           : G_MAXINT64;
        if (slot->where == SLOT_LENT && self->leak_us > 0 && slot->acquired_at == 0)
          slot->acquired_at = now;
      }
  }
  g_mutex_unlock (&self->mutex);

  _exo_resource_pool_update_maintenance (self);
}
