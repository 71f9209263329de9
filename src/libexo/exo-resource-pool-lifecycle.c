/* exo-resource-pool-lifecycle.c: members made, checked and destroyed; the
 * pool's own initialize and cleanup.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns the members' lives: making one (the factory or the item type, then
 * exo_resource_initialize_async(); a failure retried after the retry
 * policy's backoff), health-checking one, destroying one, and following its
 * state (slot_state_changed_cb).  And the pool's own: the phase that follows
 * its state, do_initialize (pre-warm min-size resources), do_cleanup (fail
 * the waiters, drop the idle, wait for the lent up to the drain timeout,
 * then orphan them), do_check_health, and dropping every member at dispose.
 *
 * Threads: all of it runs in the pool's main context.  Under the mutex it
 * touches phase, the idle stack (and idle_alloc), slots, orphans, doomed,
 * free_orphans, n_lent, n_busy, n_validating, n_creating, created,
 * destroyed, create_failures, and a Slot's where, state, checked_at,
 * expires_at and orphan flags; it reads min_size and lifetime_us.  Only on
 * the main context: the factory and item properties, next_serial,
 * retry_policy, retry_source, consecutive_failures, prev_delay_ms,
 * create_error, probe, init_task, n_prewarm, prewarm_error, cleanup_task,
 * n_cleanups, n_orphaned, drain_source, drain_timeout_ms,
 * maintenance_source, cancellable, and a Slot's resource, serial,
 * created_at, jitter and state_handler; it reads in_dispatch.
 *
 * Re-entrancy: slot_state_changed_cb runs inside a member's state-changed
 * emission; it only moves the slot under the mutex and wakes the
 * dispatcher, and never calls out.  _exo_resource_pool_state_changed_cb runs
 * inside the pool's own emission and does not call out either: it wakes the
 * dispatcher (when the pool opens) and takes the waiters to fail them from
 * an idle (when it goes down).
 * The factory, the members' vfuncs, exo_resource_report_health() (the
 * pool's own transitions and their handlers) and the returns of init_task,
 * cleanup_task and the waiters' tasks may call back into the pool: each
 * pending creation, check and cleanup holds a reference to the pool, and
 * _exo_resource_pool_maybe_finish_cleanup() waits while the dispatcher runs.
 */
#include "exo-resource-pool-private.h"

/* --- slots ------------------------------------------------------------- */

void
_exo_resource_pool_slot_free (Slot *slot)
{
  g_clear_object (&slot->resource);
  g_free (slot);
}

static void
ensure_idle_capacity_locked (ExoResourcePool *self,
                             guint            needed)
{
  if (needed <= self->idle_alloc)
    return;
  self->idle_alloc = MAX (needed, MAX (16, self->idle_alloc * 2));
  self->idle = g_renew (Slot *, self->idle, self->idle_alloc);
}

static void
slot_state_changed_cb (ExoResource      *resource,
                       ExoResourceState  old_state,
                       ExoResourceState  new_state,
                       gpointer          user_data)
{
  Slot *slot = user_data;
  ExoResourcePool *self = slot->pool;
  gboolean dispatch = FALSE;

  g_mutex_lock (&self->mutex);
  slot->state = new_state;
  /* An idle resource that stopped being ready is replaced at once. */
  if (slot->where == SLOT_IDLE && new_state != EXO_RESOURCE_STATE_READY)
    {
      for (guint i = 0; i < self->n_idle; i++)
        if (self->idle[i] == slot)
          {
            remove_idle_at (self, i);
            doom_locked (self, slot);
            dispatch = want_dispatch_locked (self);
            break;
          }
    }
  g_mutex_unlock (&self->mutex);

  wake (self, dispatch, FALSE, 0);
}

/* --- destroying -------------------------------------------------------- */

static void
destroy_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Slot *slot = user_data;
  ExoResourcePool *self = slot->pool;
  gboolean free_now = TRUE;

  /* A failed cleanup is kept on the resource; the pool drops it anyway. */
  exo_resource_cleanup_finish (EXO_RESOURCE (source), result, NULL);

  g_mutex_lock (&self->mutex);
  if (slot->orphan && !slot->released)
    {
      /* Its holder still has the pointer: free it when given back. */
      slot->cleaned = TRUE;
      free_now = FALSE;
    }
  g_mutex_unlock (&self->mutex);

  if (free_now)
    _exo_resource_pool_slot_free (slot);

  self->n_cleanups--;
  _exo_resource_pool_maybe_finish_cleanup (self);
  g_object_unref (self);
}

void
_exo_resource_pool_destroy_slot (ExoResourcePool *self,
                                 Slot            *slot)
{
  g_clear_signal_handler (&slot->state_handler, slot->resource);
  self->n_cleanups++;
  g_object_ref (self);
  exo_resource_cleanup_async (slot->resource, NULL, destroy_done_cb, slot);
}

static void
drop_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  ExoResourcePool *self = user_data;

  exo_resource_cleanup_finish (EXO_RESOURCE (source), result, NULL);
  g_object_unref (source);
  self->n_cleanups--;
  _exo_resource_pool_maybe_finish_cleanup (self);
  g_object_unref (self);
}

/* Clean up and drop a resource that never became a member. */
static void
drop_resource (ExoResourcePool *self,
               ExoResource     *resource)
{
  self->n_cleanups++;
  exo_resource_cleanup_async (resource, NULL, drop_done_cb, g_object_ref (self));
}

/* --- creating ---------------------------------------------------------- */

typedef struct
{
  ExoResourcePool *self;       /* owned */
  ExoResource     *resource;   /* owned */
  guint            serial;
  gboolean         prewarm;
} CreateData;

static ExoResource *
make_resource (ExoResourcePool  *self,
               guint             serial,
               GError          **error)
{
  GMainContext *context = exo_resource_get_context (EXO_RESOURCE (self));
  GMainContext *current = g_main_context_ref_thread_default ();
  gboolean push = current != context;
  GObject *object = NULL;

  /* A resource belongs to the context that is thread-default when it is
   * made: make it the pool's. */
  if (push)
    g_main_context_push_thread_default (context);

  if (self->factory != NULL)
    object = (GObject *) self->factory (self, serial, self->factory_data);
  else if (self->item_type != G_TYPE_INVALID && !G_TYPE_IS_ABSTRACT (self->item_type))
    {
      gboolean has_id = FALSE;

      for (guint i = 0; i < self->n_item_props; i++)
        if (g_strcmp0 (self->item_prop_names[i], "id") == 0)
          has_id = TRUE;

      if (has_id)
        object = g_object_new_with_properties (self->item_type, self->n_item_props,
                                               (const char **) self->item_prop_names,
                                               self->item_prop_values);
      else
        {
          g_autofree const char **names = g_new (const char *, self->n_item_props + 1);
          g_autofree GValue *values = g_new0 (GValue, self->n_item_props + 1);
          g_autofree char *id = g_strdup_printf ("%s-%u", exo_resource_get_id (EXO_RESOURCE (self)),
                                                 serial);

          for (guint i = 0; i < self->n_item_props; i++)
            {
              names[i] = self->item_prop_names[i];
              values[i] = self->item_prop_values[i];   /* a shallow copy: not unset */
            }
          names[self->n_item_props] = "id";
          g_value_init (&values[self->n_item_props], G_TYPE_STRING);
          g_value_set_static_string (&values[self->n_item_props], id);
          object = g_object_new_with_properties (self->item_type, self->n_item_props + 1,
                                                 names, values);
        }
    }

  if (push)
    g_main_context_pop_thread_default (context);
  g_main_context_unref (current);

  if (object != NULL && !EXO_IS_RESOURCE (object))
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "the factory of pool '%s' made a %s, not an ExoResource",
                   exo_resource_get_id (EXO_RESOURCE (self)), G_OBJECT_TYPE_NAME (object));
      g_object_unref (object);
      return NULL;
    }
  if (object == NULL)
    g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                 "pool '%s' has no factory, or its factory made nothing",
                 exo_resource_get_id (EXO_RESOURCE (self)));

  return (ExoResource *) object;
}

static void
prewarm_done (ExoResourcePool *self,
              const GError    *error)
{
  GTask *task;

  if (error != NULL && self->prewarm_error == NULL)
    self->prewarm_error = g_error_copy (error);

  g_assert (self->n_prewarm > 0);
  if (--self->n_prewarm > 0)
    return;

  task = g_steal_pointer (&self->init_task);
  if (self->prewarm_error != NULL)
    {
      _exo_resource_pool_fail_all_waiters (self, self->prewarm_error);
      g_task_return_error (task, g_steal_pointer (&self->prewarm_error));
    }
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static gboolean
retry_cb (gpointer data)
{
  ExoResourcePool *self = data;

  g_clear_pointer (&self->retry_source, g_source_unref);
  self->probe = TRUE;
  _exo_resource_pool_run_dispatch (self);
  return G_SOURCE_REMOVE;
}

static void
create_failed (ExoResourcePool *self,
               gboolean         prewarm,
               GError          *error)
{
  Phase phase;
  gboolean hopeless;

  g_mutex_lock (&self->mutex);
  self->n_creating--;
  self->create_failures++;
  phase = self->phase;
  hopeless = size_locked (self) == 0 && self->n_creating == 0;
  g_mutex_unlock (&self->mutex);

  self->consecutive_failures++;
  g_clear_error (&self->create_error);
  self->create_error = g_error_copy (error);

  if (prewarm)
    prewarm_done (self, error);
  else if (phase == PHASE_OPEN)
    {
      ExoRetryPolicy *policy = self->retry_policy;
      gboolean exceeded = policy->max_retries != G_MAXUINT
                          && self->consecutive_failures > policy->max_retries;

      exo_resource_report_health (EXO_RESOURCE (self), FALSE, error);

      if (exceeded && hopeless)
        {
          /* Nothing is lent that could come back: stop the waiters. */
          g_autoptr(GError) final = NULL;

          final = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_EXHAUSTED,
                               "pool '%s' could not make a resource in %u attempts: %s",
                               exo_resource_get_id (EXO_RESOURCE (self)),
                               self->consecutive_failures, error->message);
          _exo_resource_pool_fail_all_waiters (self, final);
        }

      /* Try again after a backoff: for the waiters, for min-size, and to
       * find out when the backend is back (the pool is degraded until then). */
      if (!exceeded && self->retry_source == NULL)
        {
          guint delay = exo_retry_policy_next_delay (policy, self->consecutive_failures,
                                                     self->prev_delay_ms,
                                                     _exo_resource_get_rand (EXO_RESOURCE (self)));

          self->prev_delay_ms = delay;
          self->retry_source = add_timeout (self, delay, retry_cb, self, "[exo] pool create retry");
        }
    }

  g_error_free (error);
  _exo_resource_pool_schedule_notify (self);
  _exo_resource_pool_run_dispatch (self);
}

static void
create_succeeded (ExoResourcePool *self,
                  ExoResource     *resource,
                  guint            serial,
                  gboolean         prewarm)
{
  Slot *slot = g_new0 (Slot, 1);
  gint64 now = pool_now ();
  gboolean keep;

  slot->resource = resource;
  slot->pool = self;
  slot->serial = serial;
  slot->created_at = now;
  slot->idle_since = now;
  slot->checked_at = now;
  slot->jitter = g_rand_double_range (_exo_resource_get_rand (EXO_RESOURCE (self)), 0.0, 0.1);
  slot->state = exo_resource_get_state (resource);
  slot->state_handler = g_signal_connect (resource, "state-changed",
                                          G_CALLBACK (slot_state_changed_cb), slot);

  g_mutex_lock (&self->mutex);
  self->n_creating--;
  slot->expires_at = self->lifetime_us > 0
                     ? now + self->lifetime_us - (gint64) (slot->jitter * self->lifetime_us)
                     : G_MAXINT64;
  keep = self->phase == PHASE_OPEN || (prewarm && self->phase == PHASE_STARTING);
  if (keep)
    {
      self->created++;
      g_hash_table_insert (self->slots, resource, slot);
      ensure_idle_capacity_locked (self, g_hash_table_size (self->slots));
      slot->where = SLOT_IDLE;
      self->idle[self->n_idle++] = slot;
    }
  g_mutex_unlock (&self->mutex);

  if (!keep)
    {
      /* The pool closed meanwhile. */
      g_clear_signal_handler (&slot->state_handler, resource);
      slot->resource = NULL;
      g_free (slot);
      drop_resource (self, resource);
    }
  else
    {
      self->consecutive_failures = 0;
      self->prev_delay_ms = 0;
      if (self->phase == PHASE_OPEN)
        exo_resource_report_health (EXO_RESOURCE (self), TRUE, NULL);
    }

  if (prewarm)
    prewarm_done (self, NULL);

  _exo_resource_pool_schedule_notify (self);
  _exo_resource_pool_run_dispatch (self);
}

static void
create_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  CreateData *data = user_data;
  ExoResourcePool *self = data->self;
  GError *error = NULL;

  if (exo_resource_initialize_finish (data->resource, result, &error))
    create_succeeded (self, g_steal_pointer (&data->resource), data->serial, data->prewarm);
  else
    {
      drop_resource (self, g_steal_pointer (&data->resource));
      create_failed (self, data->prewarm, error);
    }

  g_object_unref (self);
  g_free (data);
}

/* The caller has counted the creation in n_creating. */
void
_exo_resource_pool_start_create (ExoResourcePool *self,
                                 gboolean         prewarm)
{
  GError *error = NULL;
  guint serial = ++self->next_serial;
  ExoResource *resource = make_resource (self, serial, &error);
  CreateData *data;
  GCancellable *cancellable;

  if (resource == NULL)
    {
      create_failed (self, prewarm, error);
      return;
    }

  data = g_new0 (CreateData, 1);
  data->self = g_object_ref (self);
  data->resource = resource;
  data->serial = serial;
  data->prewarm = prewarm;

  cancellable = prewarm ? g_task_get_cancellable (self->init_task) : self->cancellable;
  exo_resource_initialize_async (resource, cancellable, create_cb, data);
}

/* --- health checks ----------------------------------------------------- */

typedef struct
{
  ExoResourcePool *self;       /* owned */
  Slot            *slot;
  gboolean         for_waiter;
} CheckData;

static void
check_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  CheckData *data = user_data;
  ExoResourcePool *self = data->self;
  Slot *slot = data->slot;
  gboolean ok;

  ok = exo_resource_check_health_finish (EXO_RESOURCE (source), result, NULL);

  g_mutex_lock (&self->mutex);
  self->n_busy--;
  if (data->for_waiter)
    self->n_validating--;
  if (ok && self->phase == PHASE_OPEN && slot->state == EXO_RESOURCE_STATE_READY)
    {
      slot->checked_at = pool_now ();
      slot->where = SLOT_IDLE;
      self->idle[self->n_idle++] = slot;
    }
  else
    doom_locked (self, slot);
  g_mutex_unlock (&self->mutex);

  _exo_resource_pool_schedule_notify (self);
  _exo_resource_pool_run_dispatch (self);
  g_object_unref (self);
  g_free (data);
}

void
_exo_resource_pool_start_check (ExoResourcePool *self,
                                Slot            *slot,
                                gboolean         for_waiter)
{
  CheckData *data = g_new0 (CheckData, 1);

  data->self = g_object_ref (self);
  data->slot = slot;
  data->for_waiter = for_waiter;
  exo_resource_check_health_async (slot->resource, self->cancellable, check_cb, data);
}

/* --- lifecycle --------------------------------------------------------- */

/* Waiters taken from the queue when the pool went down, failed from an idle
 * in the pool's context. */
typedef struct
{
  ExoResourcePool *self;
  GQueue           waiters;
  GError          *error;
} FailWaiters;

static void
fail_waiters_free (gpointer data)
{
  FailWaiters *fail = data;

  /* Not run (the context went away first): still fail them. */
  if (!g_queue_is_empty (&fail->waiters))
    _exo_resource_pool_fail_waiters (&fail->waiters, fail->error);
  g_clear_error (&fail->error);
  g_clear_object (&fail->self);
  g_free (fail);
}

static gboolean
fail_waiters_cb (gpointer data)
{
  FailWaiters *fail = data;

  _exo_resource_pool_fail_waiters (&fail->waiters, fail->error);
  _exo_resource_pool_schedule_notify (fail->self);
  return G_SOURCE_REMOVE;
}

void
_exo_resource_pool_state_changed_cb (ExoResourcePool  *self,
                                     ExoResourceState  old_state,
                                     ExoResourceState  new_state,
                                     gpointer          user_data)
{
  Phase phase, old_phase;

  switch (new_state)
    {
    case EXO_RESOURCE_STATE_READY:
    case EXO_RESOURCE_STATE_DEGRADED:
      phase = PHASE_OPEN;
      break;
    case EXO_RESOURCE_STATE_INITIALIZING:
      phase = PHASE_STARTING;
      break;
    case EXO_RESOURCE_STATE_CLOSING:
      phase = PHASE_CLOSING;
      break;
    case EXO_RESOURCE_STATE_UNINITIALIZED:
    case EXO_RESOURCE_STATE_ERROR:
    case EXO_RESOURCE_STATE_CLOSED:
    default:
      phase = PHASE_DOWN;
      break;
    }

  g_mutex_lock (&self->mutex);
  old_phase = self->phase;
  self->phase = phase;
  g_mutex_unlock (&self->mutex);

  if (phase == old_phase)
    return;

  /* Inside our own emission: nothing here calls out.  The dispatcher runs
   * from its source in the next iteration, and waiters are failed from an
   * idle, so that their callbacks never run inside state-changed. */
  if (phase == PHASE_OPEN)
    {
      _exo_resource_pool_update_maintenance (self);
      wake (self, TRUE, FALSE, 0);
    }
  else
    {
      clear_source (&self->maintenance_source);
      clear_source (&self->retry_source);
    }

  if (phase == PHASE_DOWN)
    {
      /* Waiters queued while it started: the start failed. */
      const GError *last = exo_resource_get_last_error (EXO_RESOURCE (self));
      FailWaiters *fail = g_new0 (FailWaiters, 1);
      GSource *source;

      fail->self = g_object_ref (self);
      fail->error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                                 "pool '%s' is %s%s%s", exo_resource_get_id (EXO_RESOURCE (self)),
                                 exo_resource_state_to_string (new_state),
                                 last != NULL ? ": " : "", last != NULL ? last->message : "");
      /* Taken now: no later dispatch may serve them. */
      g_mutex_lock (&self->mutex);
      _exo_resource_pool_steal_waiters_locked (self, &fail->waiters);
      g_mutex_unlock (&self->mutex);
      if (g_queue_is_empty (&fail->waiters))
        {
          fail_waiters_free (fail);
          return;
        }
      source = g_idle_source_new ();
      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, fail_waiters_cb, fail, fail_waiters_free);
      g_source_set_static_name (source, "[exo] ExoResourcePool fail waiters");
      g_source_attach (source, exo_resource_get_context (EXO_RESOURCE (self)));
      g_source_unref (source);
    }
}

void
_exo_resource_pool_do_initialize (ExoResource *resource,
                                  GTask       *task)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (resource);
  guint n;

  if (g_cancellable_is_cancelled (self->cancellable))
    {
      g_clear_object (&self->cancellable);
      self->cancellable = g_cancellable_new ();
    }
  self->consecutive_failures = 0;
  self->prev_delay_ms = 0;
  g_clear_error (&self->create_error);
  g_clear_error (&self->prewarm_error);

  g_mutex_lock (&self->mutex);
  self->phase = PHASE_STARTING;
  n = self->min_size > size_locked (self) ? self->min_size - size_locked (self) : 0;
  self->n_creating += n;
  g_mutex_unlock (&self->mutex);

  if (n == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  /* Pre-warm: make min-size resources in parallel; any failure fails the
   * initialize (and what was made is cleaned up by do_cleanup). */
  self->init_task = g_object_ref (task);
  self->n_prewarm = n;
  for (guint i = 0; i < n; i++)
    _exo_resource_pool_start_create (self, TRUE);
}

static void
orphan_lent (ExoResourcePool *self)
{
  GHashTableIter iter;
  Slot *slot;
  guint n = 0;

  g_mutex_lock (&self->mutex);
  if (self->orphans == NULL)
    self->orphans = g_hash_table_new (g_direct_hash, NULL);
  g_hash_table_iter_init (&iter, self->slots);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &slot))
    if (slot->where == SLOT_LENT)
      {
        g_hash_table_iter_remove (&iter);
        slot->where = SLOT_GONE;
        slot->orphan = TRUE;
        self->n_lent--;
        self->destroyed++;
        g_hash_table_insert (self->orphans, slot->resource, slot);
        g_ptr_array_add (self->doomed, slot);
        n++;
      }
  g_mutex_unlock (&self->mutex);

  self->n_orphaned += n;
}

static gboolean
drain_timeout_cb (gpointer data)
{
  ExoResourcePool *self = data;

  g_clear_pointer (&self->drain_source, g_source_unref);
  orphan_lent (self);
  _exo_resource_pool_run_dispatch (self);
  return G_SOURCE_REMOVE;
}

void
_exo_resource_pool_maybe_finish_cleanup (ExoResourcePool *self)
{
  GTask *task;
  guint busy;

  if (self->cleanup_task == NULL || self->in_dispatch)
    return;

  g_mutex_lock (&self->mutex);
  busy = self->n_lent + self->n_busy + self->n_creating + self->doomed->len;
  g_mutex_unlock (&self->mutex);

  if (busy > 0 || self->n_cleanups > 0)
    return;

  clear_source (&self->drain_source);
  task = g_steal_pointer (&self->cleanup_task);

  if (self->n_orphaned > 0)
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                             "pool '%s': %u resources were still lent after the drain "
                             "timeout of %u ms and were closed",
                             exo_resource_get_id (EXO_RESOURCE (self)),
                             self->n_orphaned, self->drain_timeout_ms);
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

void
_exo_resource_pool_do_cleanup (ExoResource *resource,
                               GTask       *task)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (resource);
  g_autoptr(GError) error = NULL;
  GQueue waiters;
  guint lent;

  g_mutex_lock (&self->mutex);
  self->phase = PHASE_CLOSING;
  _exo_resource_pool_steal_waiters_locked (self, &waiters);
  while (self->n_idle > 0)
    doom_locked (self, self->idle[--self->n_idle]);
  lent = self->n_lent;
  g_mutex_unlock (&self->mutex);

  g_cancellable_cancel (self->cancellable);
  clear_source (&self->retry_source);
  clear_source (&self->maintenance_source);

  error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED,
                       "pool '%s' is closing", exo_resource_get_id (resource));
  _exo_resource_pool_fail_waiters (&waiters, error);

  g_assert (self->cleanup_task == NULL);
  self->cleanup_task = g_object_ref (task);
  self->n_orphaned = 0;

  if (lent > 0)
    {
      if (self->drain_timeout_ms == 0)
        orphan_lent (self);
      else
        self->drain_source = add_timeout (self, self->drain_timeout_ms, drain_timeout_cb, self,
                                          "[exo] pool drain timeout");
    }

  _exo_resource_pool_schedule_notify (self);
  _exo_resource_pool_run_dispatch (self);
}

void
_exo_resource_pool_do_check_health (ExoResource *resource,
                                    GTask       *task)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (resource);

  if (self->consecutive_failures > 0 && self->create_error != NULL)
    g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                             "pool '%s' cannot make resources: %s",
                             exo_resource_get_id (resource), self->create_error->message);
  else
    g_task_return_boolean (task, TRUE);
}

/* --- dispose ----------------------------------------------------------- */

static void
dispose_slot (Slot *slot)
{
  g_clear_signal_handler (&slot->state_handler, slot->resource);
  if (exo_resource_get_state (slot->resource) != EXO_RESOURCE_STATE_CLOSED)
    exo_resource_cleanup_async (slot->resource, NULL, NULL, NULL);
  _exo_resource_pool_slot_free (slot);
}

/* At dispose, after the sources are gone and the cancellable is cancelled:
 * drop every member.  Returns the orphans whose cleanup had finished, for
 * the caller to free after chaining up. */
GPtrArray *
_exo_resource_pool_dispose_slots (ExoResourcePool *self)
{
  g_autoptr(GPtrArray) left = g_ptr_array_new ();
  g_autoptr(GPtrArray) freed =
    g_ptr_array_new_with_free_func ((GDestroyNotify) _exo_resource_pool_slot_free);
  GHashTableIter iter;
  Slot *slot;

  /* Waiters, creations, checks and cleanups hold a reference: what is left
   * is idle, lent without a lease, or doomed. */
  g_mutex_lock (&self->mutex);
  self->phase = PHASE_DOWN;
  self->n_idle = 0;
  self->n_lent = 0;
  self->n_busy = 0;
  g_hash_table_iter_init (&iter, self->slots);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &slot))
    g_ptr_array_add (left, slot);
  g_hash_table_remove_all (self->slots);
  g_ptr_array_extend_and_steal (left, g_steal_pointer (&self->doomed));
  self->doomed = g_ptr_array_new ();
  if (self->orphans != NULL)
    {
      g_hash_table_iter_init (&iter, self->orphans);
      while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &slot))
        if (slot->cleaned)
          g_ptr_array_add (freed, slot);
      g_hash_table_remove_all (self->orphans);
    }
  g_ptr_array_extend_and_steal (freed, g_steal_pointer (&self->free_orphans));
  self->free_orphans = g_ptr_array_new ();
  g_mutex_unlock (&self->mutex);

  for (guint i = 0; i < left->len; i++)
    dispose_slot (left->pdata[i]);

  return g_steal_pointer (&freed);
}
