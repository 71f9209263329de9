/* exo-resource-pool.c: a pool of resources made by a factory.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-private.h"

#include <time.h>

/**
 * ExoResourcePool:
 *
 * A pool of resources made by a factory: a #GType with construct
 * properties, or an #ExoPoolFactory callback.  The pool is itself an
 * #ExoResource: initializing it makes #ExoResourcePool:min-size resources;
 * cleaning it up drains it; its state is `ready` while it can serve and
 * `degraded` while making resources fails.
 *
 * ## Borrowing
 *
 * - exo_resource_pool_acquire_async() waits up to a timeout for a resource
 *   and gives an #ExoPoolLease; waiters are served first come, first served,
 *   and a resource that sat idle longer than
 *   #ExoResourcePool:validate-after-idle-ms is health-checked first.
 * - exo_resource_pool_try_acquire() and exo_resource_pool_release() are the
 *   non-blocking, thread-safe pair for worker threads: an idle `ready`
 *   resource or %NULL, never a wait, never a creation.  While callers of
 *   exo_resource_pool_acquire_async() wait, they come first and
 *   exo_resource_pool_try_acquire() gets %NULL.
 *
 * A resource given back in a state other than `ready`, past its lifetime,
 * or with exo_resource_pool_release_broken() / exo_pool_lease_invalidate()
 * is cleaned up and dropped, and a new one is made for whoever waits.
 *
 * ## Upkeep
 *
 * In the pool's main context, a timer evicts resources idle (since their
 * last release) longer than #ExoResourcePool:idle-timeout-ms down to
 * #ExoResourcePool:min-size, retires idle resources past
 * #ExoResourcePool:max-lifetime-ms (each resource's lifetime is shortened
 * by a random 0–10 % so that resources made together do not expire
 * together), health-checks idle resources every
 * #ExoResourcePool:idle-check-interval-ms, and reports leases held longer
 * than #ExoResourcePool:leak-threshold-ms with #ExoResourcePool::leak-detected.
 * When making a resource fails, it is retried with the backoff of
 * #ExoResourcePool:retry-policy for as long as someone waits, so waiters
 * are served once the backend is back.
 *
 * ## Threads
 *
 * exo_resource_pool_try_acquire(), exo_resource_pool_release(),
 * exo_resource_pool_release_broken(), the lease functions and the
 * statistics may be called from any thread.  Everything else, including
 * exo_resource_pool_acquire_async(), belongs to the pool's main context.
 * Property notifications are coalesced and emitted in the pool's context.
 * A lease dropped on another thread hands its reference to the pool over to
 * the pool's context, so that the pool is always finalized there, and its
 * resources cleaned up there, even when a worker drops the last lease.
 */

#define NOTIFY_INTERVAL_US (25 * G_TIME_SPAN_MILLISECOND)

typedef enum {
  SLOT_IDLE,
  SLOT_LENT,
  SLOT_BUSY,      /* taken by the pool for a health check */
  SLOT_GONE,      /* destroyed, or being destroyed */
} SlotWhere;

typedef enum {
  PHASE_DOWN,     /* uninitialized, error or closed */
  PHASE_STARTING,
  PHASE_OPEN,
  PHASE_CLOSING,
} Phase;

typedef struct _Slot Slot;

struct _Slot
{
  ExoResource      *resource;      /* owned */
  ExoResourcePool  *pool;          /* unowned */
  gint64            created_at;    /* pool clock, µs */
  gint64            expires_at;    /* G_MAXINT64: never */
  gint64            idle_since;    /* last release */
  gint64            checked_at;    /* last passed health check */
  gint64            acquired_at;   /* when lent (only with leak detection) */
  double            jitter;        /* lifetime is shortened by this fraction */
  gulong            state_handler;
  guint             serial;
  ExoResourceState  state;         /* mirrored under the lock */
  SlotWhere         where;
  guint             leak_reported : 1;
  guint             orphan : 1;    /* closed by the drain timeout while lent */
  guint             cleaned : 1;   /* orphan: its cleanup has finished */
  guint             released : 1;  /* orphan: its holder gave it back */
};

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

struct _ExoPoolLease
{
  gint              ref_count;
  gint              released;
  ExoResourcePool  *pool;          /* owned */
  ExoResource      *resource;      /* owned by the pool while lent */
};

struct _ExoResourcePool
{
  ExoResource parent_instance;

  /* --- under mutex: what worker threads touch ------------------------- */
  GMutex          mutex;
  Slot          **idle;            /* a stack: the top is the last released */
  guint           n_idle;
  guint           idle_alloc;
  GHashTable     *slots;           /* ExoResource* → Slot*: every member */
  GHashTable     *orphans;         /* ExoResource* → Slot*: closed while lent */
  GPtrArray      *doomed;          /* Slot*: to destroy in the pool's context */
  GPtrArray      *doomed_spare;
  GPtrArray      *free_orphans;    /* Slot*: orphans given back, cleaned up */
  GQueue          waiters;         /* Waiter*, first come first served */
  guint           n_lent;
  guint           n_busy;
  guint           n_validating;    /* busy slots checked for a waiter */
  guint           n_creating;
  guint           min_size;
  guint           max_size;
  Phase           phase;
  gint64          idle_timeout_us;
  gint64          lifetime_us;
  gint64          validate_us;
  gint64          check_us;
  gint64          leak_us;
  gint64          last_notify_us;
  guint64         acquired;
  guint64         timeouts;
  guint64         created;
  guint64         destroyed;
  guint64         leaks;
  guint64         create_failures;
  guint64         wait_count;
  guint64         wait_total_us;
  guint64         wait_max_us;
  gint            deferred_unrefs; /* atomic: references handed over by other threads */
  guint           stamp_release : 1;
  guint           stamp_acquire : 1;
  guint           dispatch_pending : 1;
  guint           notify_pending : 1;
  guint           validate_requested : 1;

  /* --- the pool's main context only ----------------------------------- */
  GType           item_type;
  guint           n_item_props;
  char          **item_prop_names;
  GValue         *item_prop_values;
  ExoPoolFactory  factory;
  gpointer        factory_data;
  GDestroyNotify  factory_data_free;
  ExoRetryPolicy *retry_policy;
  guint           idle_timeout_ms;
  guint           lifetime_ms;
  guint           validate_ms;
  guint           check_ms;
  guint           leak_ms;
  guint           drain_timeout_ms;
  guint           next_serial;

  GThread        *owner_thread;    /* made the pool: its context's thread */
  GSource        *dispatch_source;
  GSource        *notify_source;
  GSource        *unref_source;    /* drops deferred_unrefs */
  GSource        *maintenance_source;
  GSource        *retry_source;
  GSource        *drain_source;
  GCancellable   *cancellable;     /* creations and checks; cancelled on cleanup */

  GTask          *init_task;
  guint           n_prewarm;
  GError         *prewarm_error;
  GTask          *cleanup_task;
  guint           n_orphaned;
  guint           n_cleanups;      /* resource cleanups not finished yet */
  guint           consecutive_failures;
  guint           prev_delay_ms;
  GError         *create_error;    /* the last failed creation */

  guint           in_dispatch : 1;
  guint           dispatch_again : 1;
  guint           probe : 1;       /* the retry timer fired: try one creation */

  /* the values last notified */
  guint           n_size;
  guint           n_idle_notified;
  guint           n_in_use;
  guint           n_waiting;
  guint64         n_acquired;
  guint64         n_timeouts;
  guint64         n_created;
  guint64         n_destroyed;
  guint64         n_leaks;
};

enum {
  PROP_0,
  PROP_ITEM_TYPE,
  PROP_MIN_SIZE,
  PROP_MAX_SIZE,
  PROP_IDLE_TIMEOUT_MS,
  PROP_MAX_LIFETIME_MS,
  PROP_VALIDATE_AFTER_IDLE_MS,
  PROP_IDLE_CHECK_INTERVAL_MS,
  PROP_LEAK_THRESHOLD_MS,
  PROP_DRAIN_TIMEOUT_MS,
  PROP_RETRY_POLICY,
  PROP_SIZE,
  PROP_IDLE,
  PROP_IN_USE,
  PROP_WAITING,
  PROP_ACQUIRED,
  PROP_TIMEOUTS,
  PROP_CREATED,
  PROP_DESTROYED,
  PROP_LEAKS,
  N_PROPS,
};

enum {
  SIGNAL_LEAK_DETECTED,
  N_SIGNALS,
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (ExoResourcePool, exo_resource_pool, EXO_TYPE_RESOURCE)

G_DEFINE_BOXED_TYPE (ExoPoolLease, exo_pool_lease, exo_pool_lease_ref, exo_pool_lease_unref)

static void run_dispatch         (ExoResourcePool *self);
static void maybe_finish_cleanup (ExoResourcePool *self);
static void start_create         (ExoResourcePool *self,
                                  gboolean         prewarm);
static void update_maintenance   (ExoResourcePool *self);

/* --- clock ------------------------------------------------------------- */

/* The pool's clock, in µs.  Idle times, lifetimes and leaks are measured in
 * milliseconds, so the coarse clock (a few ns, a tick of 1–4 ms) is
 * precise enough and keeps try_acquire/release cheap. */
static inline gint64
pool_now (void)
{
#ifdef CLOCK_MONOTONIC_COARSE
  struct timespec ts;

  if G_LIKELY (clock_gettime (CLOCK_MONOTONIC_COARSE, &ts) == 0)
    return (gint64) ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
#endif
  return g_get_monotonic_time ();
}

/* --- wake-up sources --------------------------------------------------- */

static gboolean
wake_source_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  g_source_set_ready_time (source, -1);
  return callback (user_data);
}

static GSourceFuncs wake_source_funcs = {
  .dispatch = wake_source_dispatch,
};

static GSource *
wake_source_new (ExoResourcePool *self,
                 GSourceFunc      func,
                 int              priority,
                 const char      *name)
{
  GSource *source = g_source_new (&wake_source_funcs, sizeof (GSource));

  g_source_set_callback (source, func, self, NULL);
  g_source_set_priority (source, priority);
  g_source_set_static_name (source, name);
  g_source_attach (source, exo_resource_get_context (EXO_RESOURCE (self)));
  return source;
}

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static GSource *
add_timeout (ExoResourcePool *self,
             guint            ms,
             GSourceFunc      func,
             gpointer         data,
             const char      *name)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, data, NULL);
  g_source_set_static_name (source, name);
  g_source_attach (source, exo_resource_get_context (EXO_RESOURCE (self)));
  return source;
}

/* Under the lock: ask for a dispatch.  Returns TRUE when the caller must
 * wake the source (after unlocking). */
static inline gboolean
want_dispatch_locked (ExoResourcePool *self)
{
  if (self->dispatch_pending)
    return FALSE;
  self->dispatch_pending = TRUE;
  return TRUE;
}

/* Under the lock: ask for a coalesced property notification, at most one
 * per NOTIFY_INTERVAL_US.  Returns TRUE when the caller must wake the
 * source at *when. */
static inline gboolean
want_notify_locked (ExoResourcePool *self,
                    gint64          *when)
{
  if (self->notify_pending)
    return FALSE;
  self->notify_pending = TRUE;
  *when = MAX (0, self->last_notify_us + NOTIFY_INTERVAL_US);
  return TRUE;
}

static inline void
wake (ExoResourcePool *self,
      gboolean         dispatch,
      gboolean         notify,
      gint64           notify_when)
{
  if (dispatch)
    g_source_set_ready_time (self->dispatch_source, 0);
  if (notify)
    g_source_set_ready_time (self->notify_source, notify_when);
}

/* --- slots ------------------------------------------------------------- */

static void
slot_free (Slot *slot)
{
  g_clear_object (&slot->resource);
  g_free (slot);
}

static inline guint
size_locked (ExoResourcePool *self)
{
  return self->n_idle + self->n_lent + self->n_busy;
}

static inline void
remove_idle_at (ExoResourcePool *self,
                guint            i)
{
  if (i + 1 < self->n_idle)
    memmove (&self->idle[i], &self->idle[i + 1], (self->n_idle - i - 1) * sizeof (Slot *));
  self->n_idle--;
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

/* Under the lock: drop @slot from the members (the caller has already taken
 * it off the idle stack or the lent/busy counts); it is destroyed in the
 * pool's context. */
static void
doom_locked (ExoResourcePool *self,
             Slot            *slot)
{
  g_hash_table_remove (self->slots, slot->resource);
  slot->where = SLOT_GONE;
  self->destroyed++;
  g_ptr_array_add (self->doomed, slot);
}

/* Under the lock: take the most recently released idle resource that may be
 * lent without a health check.  Unusable or expired ones met on the way are
 * doomed (*doomed is set); ones that need a check stay (*stale is set). */
static inline Slot *
take_idle_locked (ExoResourcePool *self,
                  gint64           now,
                  gboolean        *stale,
                  gboolean        *doomed)
{
  guint i = self->n_idle;

  while (i > 0)
    {
      Slot *slot = self->idle[--i];

      if G_UNLIKELY (slot->state != EXO_RESOURCE_STATE_READY || now >= slot->expires_at)
        {
          remove_idle_at (self, i);
          doom_locked (self, slot);
          *doomed = TRUE;
          continue;
        }

      if G_UNLIKELY (self->validate_us > 0
                     && now - MAX (slot->idle_since, slot->checked_at) >= self->validate_us)
        {
          *stale = TRUE;
          continue;
        }

      remove_idle_at (self, i);
      return slot;
    }

  return NULL;
}

static inline void
lend_locked (ExoResourcePool *self,
             Slot            *slot,
             gint64           now)
{
  slot->where = SLOT_LENT;
  slot->acquired_at = now;
  slot->leak_reported = FALSE;
  self->n_lent++;
  self->acquired++;
}

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

/* --- leases ------------------------------------------------------------ */

static ExoPoolLease *
lease_new (ExoResourcePool *self,
           ExoResource     *resource)
{
  ExoPoolLease *lease = g_new (ExoPoolLease, 1);

  lease->ref_count = 1;
  lease->released = 0;
  lease->pool = g_object_ref (self);
  lease->resource = resource;
  return lease;
}

static void release_internal (ExoResourcePool *self,
                              ExoResource     *resource,
                              gboolean         broken);

/* In the pool's context: drop the references other threads handed over.
 * The last one finalizes the pool (and destroys this source). */
static gboolean
unref_cb (gpointer data)
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
 * any other thread hands it over to the context, where unref_cb() drops it
 * at the next iteration. */
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

  /* Our reference keeps the pool (and the source) alive until unref_cb()
   * has taken it; only the first hand-over since the last one wakes it. */
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
    release_internal (lease->pool, lease->resource, FALSE);
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
    release_internal (lease->pool, lease->resource, TRUE);
}

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

static void
release_internal (ExoResourcePool *self,
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

  release_internal (self, resource, FALSE);
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

  release_internal (self, resource, TRUE);
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

static gboolean
notify_cb (gpointer data)
{
  ExoResourcePool *self = data;
  GObject *object = G_OBJECT (self);
  guint size, idle, in_use, waiting;
  guint64 acquired, timeouts, created, destroyed, leaks;

  g_mutex_lock (&self->mutex);
  self->notify_pending = FALSE;
  self->last_notify_us = g_get_monotonic_time ();
  size = size_locked (self);
  idle = self->n_idle;
  in_use = self->n_lent + self->n_busy;
  waiting = self->waiters.length;
  acquired = self->acquired;
  timeouts = self->timeouts;
  created = self->created;
  destroyed = self->destroyed;
  leaks = self->leaks;
  g_mutex_unlock (&self->mutex);

  g_object_freeze_notify (object);
#define NOTIFY_IF_CHANGED(field, value, prop) \
  if (self->field != (value)) \
    { \
      self->field = (value); \
      g_object_notify_by_pspec (object, properties[prop]); \
    }
  NOTIFY_IF_CHANGED (n_size, size, PROP_SIZE);
  NOTIFY_IF_CHANGED (n_idle_notified, idle, PROP_IDLE);
  NOTIFY_IF_CHANGED (n_in_use, in_use, PROP_IN_USE);
  NOTIFY_IF_CHANGED (n_waiting, waiting, PROP_WAITING);
  NOTIFY_IF_CHANGED (n_acquired, acquired, PROP_ACQUIRED);
  NOTIFY_IF_CHANGED (n_timeouts, timeouts, PROP_TIMEOUTS);
  NOTIFY_IF_CHANGED (n_created, created, PROP_CREATED);
  NOTIFY_IF_CHANGED (n_destroyed, destroyed, PROP_DESTROYED);
  NOTIFY_IF_CHANGED (n_leaks, leaks, PROP_LEAKS);
#undef NOTIFY_IF_CHANGED
  g_object_thaw_notify (object);

  return G_SOURCE_CONTINUE;
}

/* From the pool's context: the counters changed. */
static void
schedule_notify (ExoResourcePool *self)
{
  gboolean notify;
  gint64 when = 0;

  g_mutex_lock (&self->mutex);
  notify = want_notify_locked (self, &when);
  g_mutex_unlock (&self->mutex);
  wake (self, FALSE, notify, when);
}

/* --- waiters ----------------------------------------------------------- */

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
static void
steal_waiters_locked (ExoResourcePool *self,
                      GQueue          *out)
{
  *out = self->waiters;
  g_queue_init (&self->waiters);
  for (GList *l = out->head; l != NULL; l = l->next)
    ((Waiter *) l->data)->queued = FALSE;
}

/* Fails every waiter; the caller has stolen the queue. */
static void
fail_waiters (GQueue       *waiters,
              const GError *error)
{
  GList *link;

  while ((link = g_queue_pop_head_link (waiters)))
    waiter_fail (link->data, g_error_copy (error));
}

static void
fail_all_waiters (ExoResourcePool *self,
                  const GError    *error)
{
  GQueue waiters;

  g_mutex_lock (&self->mutex);
  steal_waiters_locked (self, &waiters);
  g_mutex_unlock (&self->mutex);

  if (!g_queue_is_empty (&waiters))
    {
      fail_waiters (&waiters, error);
      schedule_notify (self);
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
  schedule_notify (self);
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
  schedule_notify (self);
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
    slot_free (slot);

  self->n_cleanups--;
  maybe_finish_cleanup (self);
  g_object_unref (self);
}

static void
destroy_slot (ExoResourcePool *self,
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
  maybe_finish_cleanup (self);
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
      fail_all_waiters (self, self->prewarm_error);
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
  run_dispatch (self);
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
          fail_all_waiters (self, final);
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
  schedule_notify (self);
  run_dispatch (self);
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

  schedule_notify (self);
  run_dispatch (self);
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
static void
start_create (ExoResourcePool *self,
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

  schedule_notify (self);
  run_dispatch (self);
  g_object_unref (self);
  g_free (data);
}

static void
start_check (ExoResourcePool *self,
             Slot            *slot,
             gboolean         for_waiter)
{
  CheckData *data = g_new0 (CheckData, 1);

  data->self = g_object_ref (self);
  data->slot = slot;
  data->for_waiter = for_waiter;
  exo_resource_check_health_async (slot->resource, self->cancellable, check_cb, data);
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
    destroy_slot (self, doomed->pdata[i]);
  g_ptr_array_set_size (doomed, 0);
  g_mutex_lock (&self->mutex);
  if (self->doomed_spare == NULL)
    self->doomed_spare = doomed;
  else
    g_ptr_array_unref (doomed);
  g_mutex_unlock (&self->mutex);

  if (free_orphans != NULL)
    {
      g_ptr_array_set_free_func (free_orphans, (GDestroyNotify) slot_free);
      g_ptr_array_unref (free_orphans);
    }

  for (guint i = 0; i < served->len; i++)
    {
      Served *s = &g_array_index (served, Served, i);
      waiter_serve (self, s->waiter, s->resource);
    }

  for (guint i = 0; i < checks->len; i++)
    start_check (self, checks->pdata[i], i < n_checks_for_waiters);

  for (guint i = 0; i < n_create; i++)
    start_create (self, FALSE);

  if (changed)
    schedule_notify (self);
}

static void
run_dispatch (ExoResourcePool *self)
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

  maybe_finish_cleanup (self);
  g_object_unref (self);
}

static gboolean
dispatch_cb (gpointer data)
{
  run_dispatch (data);
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

      g_signal_emit (self, signals[SIGNAL_LEAK_DETECTED], 0, leak->resource, leak->held_ms);
      g_object_unref (leak->resource);
    }

  for (guint i = 0; i < checks->len; i++)
    start_check (self, checks->pdata[i], FALSE);

  if (leaks->len > 0 || checks->len > 0)
    schedule_notify (self);
  if (dispatch || leaks->len > 0)
    run_dispatch (self);

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

static void
update_maintenance (ExoResourcePool *self)
{
  guint interval = maintenance_interval (self);

  clear_source (&self->maintenance_source);
  if (interval > 0 && self->phase == PHASE_OPEN)
    self->maintenance_source = add_timeout (self, interval, maintenance_cb, self,
                                            "[exo] pool maintenance");
}

/* Recompute what the fast path needs after a configuration change. */
static void
update_config (ExoResourcePool *self)
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

  update_maintenance (self);
}

/* --- lifecycle --------------------------------------------------------- */

static void
pool_state_changed_cb (ExoResourcePool  *self,
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

  if (phase == PHASE_OPEN)
    {
      update_maintenance (self);
      run_dispatch (self);
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
      g_autoptr(GError) error = NULL;

      error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                           "pool '%s' is %s%s%s", exo_resource_get_id (EXO_RESOURCE (self)),
                           exo_resource_state_to_string (new_state),
                           last != NULL ? ": " : "", last != NULL ? last->message : "");
      fail_all_waiters (self, error);
    }
}

static void
exo_resource_pool_do_initialize (ExoResource *resource,
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
    start_create (self, TRUE);
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
  run_dispatch (self);
  return G_SOURCE_REMOVE;
}

static void
maybe_finish_cleanup (ExoResourcePool *self)
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

static void
exo_resource_pool_do_cleanup (ExoResource *resource,
                              GTask       *task)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (resource);
  g_autoptr(GError) error = NULL;
  GQueue waiters;
  guint lent;

  g_mutex_lock (&self->mutex);
  self->phase = PHASE_CLOSING;
  steal_waiters_locked (self, &waiters);
  while (self->n_idle > 0)
    doom_locked (self, self->idle[--self->n_idle]);
  lent = self->n_lent;
  g_mutex_unlock (&self->mutex);

  g_cancellable_cancel (self->cancellable);
  clear_source (&self->retry_source);
  clear_source (&self->maintenance_source);

  error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED,
                       "pool '%s' is closing", exo_resource_get_id (resource));
  fail_waiters (&waiters, error);

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

  schedule_notify (self);
  run_dispatch (self);
}

static void
exo_resource_pool_do_check_health (ExoResource *resource,
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

static void
exo_resource_pool_collect_metrics (ExoResource  *resource,
                                   GVariantDict *metrics)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (resource);
  ExoPoolStats stats;

  if (EXO_RESOURCE_CLASS (exo_resource_pool_parent_class)->collect_metrics != NULL)
    EXO_RESOURCE_CLASS (exo_resource_pool_parent_class)->collect_metrics (resource, metrics);

  exo_resource_pool_get_stats (self, &stats);
  g_variant_dict_insert (metrics, "min-size", "u", stats.min_size);
  g_variant_dict_insert (metrics, "max-size", "u", stats.max_size);
  g_variant_dict_insert (metrics, "size", "u", stats.size);
  g_variant_dict_insert (metrics, "idle", "u", stats.idle);
  g_variant_dict_insert (metrics, "in-use", "u", stats.in_use);
  g_variant_dict_insert (metrics, "waiting", "u", stats.waiting);
  g_variant_dict_insert (metrics, "acquired", "t", stats.acquired);
  g_variant_dict_insert (metrics, "timeouts", "t", stats.timeouts);
  g_variant_dict_insert (metrics, "created", "t", stats.created);
  g_variant_dict_insert (metrics, "destroyed", "t", stats.destroyed);
  g_variant_dict_insert (metrics, "leaks", "t", stats.leaks);
  g_variant_dict_insert (metrics, "create-failures", "t", stats.create_failures);
  g_variant_dict_insert (metrics, "wait-time-mean-us", "t", stats.wait_time_mean_us);
  g_variant_dict_insert (metrics, "wait-time-max-us", "t", stats.wait_time_max_us);
}

/* --- construction ------------------------------------------------------ */

/**
 * exo_resource_pool_new:
 * @item_type: a non-abstract subtype of #ExoResource
 * @min_size: resources made on initialize and kept
 * @max_size: the most resources that may exist
 *
 * Makes a pool of @item_type.  Each resource gets the id
 * `<pool id>-<serial>`.
 *
 * Returns: (transfer full): a new pool, uninitialized
 */
ExoResourcePool *
exo_resource_pool_new (GType item_type,
                       guint min_size,
                       guint max_size)
{
  return exo_resource_pool_new_with_properties (item_type, min_size, max_size, 0, NULL, NULL);
}

/**
 * exo_resource_pool_new_with_properties:
 * @item_type: a non-abstract subtype of #ExoResource
 * @min_size: resources made on initialize and kept
 * @max_size: the most resources that may exist
 * @n_properties: the length of @names and @values
 * @names: (array length=n_properties): construct property names
 * @values: (array length=n_properties): their values (copied)
 *
 * Makes a pool whose resources are `g_object_new_with_properties
 * (item_type, names, values)`.  Without an `id` among @names, each resource
 * gets the id `<pool id>-<serial>`.
 *
 * Returns: (transfer full): a new pool, uninitialized
 */
ExoResourcePool *
exo_resource_pool_new_with_properties (GType               item_type,
                                       guint               min_size,
                                       guint               max_size,
                                       guint               n_properties,
                                       const char * const *names,
                                       const GValue       *values)
{
  ExoResourcePool *self;

  g_return_val_if_fail (g_type_is_a (item_type, EXO_TYPE_RESOURCE), NULL);
  g_return_val_if_fail (!G_TYPE_IS_ABSTRACT (item_type), NULL);
  g_return_val_if_fail (n_properties == 0 || (names != NULL && values != NULL), NULL);
  g_return_val_if_fail (max_size > 0, NULL);

  self = g_object_new (EXO_TYPE_RESOURCE_POOL,
                       "item-type", item_type,
                       "max-size", max_size,
                       "min-size", min_size,
                       NULL);

  self->n_item_props = n_properties;
  self->item_prop_names = g_new0 (char *, n_properties + 1);
  self->item_prop_values = g_new0 (GValue, MAX (n_properties, 1));
  for (guint i = 0; i < n_properties; i++)
    {
      self->item_prop_names[i] = g_strdup (names[i]);
      g_value_init (&self->item_prop_values[i], G_VALUE_TYPE (&values[i]));
      g_value_copy (&values[i], &self->item_prop_values[i]);
    }

  return self;
}

/**
 * exo_resource_pool_new_with_factory:
 * @factory: (scope notified): makes an uninitialized resource
 * @user_data: data for @factory
 * @user_data_free: (nullable): frees @user_data with the pool
 * @min_size: resources made on initialize and kept
 * @max_size: the most resources that may exist
 *
 * Returns: (transfer full): a new pool, uninitialized
 */
ExoResourcePool *
exo_resource_pool_new_with_factory (ExoPoolFactory  factory,
                                    gpointer        user_data,
                                    GDestroyNotify  user_data_free,
                                    guint           min_size,
                                    guint           max_size)
{
  ExoResourcePool *self;

  g_return_val_if_fail (factory != NULL, NULL);
  g_return_val_if_fail (max_size > 0, NULL);

  self = g_object_new (EXO_TYPE_RESOURCE_POOL,
                       "max-size", max_size,
                       "min-size", min_size,
                       NULL);
  self->factory = factory;
  self->factory_data = user_data;
  self->factory_data_free = user_data_free;
  return self;
}

/* --- accessors --------------------------------------------------------- */

/**
 * exo_resource_pool_get_item_type:
 * @self: a pool
 *
 * Returns: the type of resource the pool makes, or %G_TYPE_INVALID when it
 *   uses a factory callback
 */
GType
exo_resource_pool_get_item_type (ExoResourcePool *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), G_TYPE_INVALID);
  return self->item_type;
}

/**
 * exo_resource_pool_get_min_size:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:min-size
 */
guint
exo_resource_pool_get_min_size (ExoResourcePool *self)
{
  guint n;

  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), 0);
  g_mutex_lock (&self->mutex);
  n = self->min_size;
  g_mutex_unlock (&self->mutex);
  return n;
}

/**
 * exo_resource_pool_set_min_size:
 * @self: a pool
 * @min_size: resources to keep, even when idle
 *
 * Raising it above #ExoResourcePool:max-size raises that too.  A usable
 * pool makes the missing resources at once.
 */
void
exo_resource_pool_set_min_size (ExoResourcePool *self,
                                guint            min_size)
{
  gboolean raise_max = FALSE;

  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));

  g_mutex_lock (&self->mutex);
  if (self->min_size == min_size)
    {
      g_mutex_unlock (&self->mutex);
      return;
    }
  self->min_size = min_size;
  if (self->max_size < min_size)
    {
      self->max_size = min_size;
      raise_max = TRUE;
    }
  g_mutex_unlock (&self->mutex);

  g_object_freeze_notify (G_OBJECT (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MIN_SIZE]);
  if (raise_max)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_SIZE]);
  g_object_thaw_notify (G_OBJECT (self));

  if (self->phase == PHASE_OPEN)
    run_dispatch (self);
}

/**
 * exo_resource_pool_get_max_size:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:max-size
 */
guint
exo_resource_pool_get_max_size (ExoResourcePool *self)
{
  guint n;

  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), 0);
  g_mutex_lock (&self->mutex);
  n = self->max_size;
  g_mutex_unlock (&self->mutex);
  return n;
}

/**
 * exo_resource_pool_set_max_size:
 * @self: a pool
 * @max_size: the most resources that may exist, at least 1
 *
 * Lowering it below #ExoResourcePool:min-size lowers that too; idle
 * resources above the new maximum are dropped, lent ones when given back.
 */
void
exo_resource_pool_set_max_size (ExoResourcePool *self,
                                guint            max_size)
{
  gboolean lower_min = FALSE;

  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));
  g_return_if_fail (max_size > 0);

  g_mutex_lock (&self->mutex);
  if (self->max_size == max_size)
    {
      g_mutex_unlock (&self->mutex);
      return;
    }
  self->max_size = max_size;
  if (self->min_size > max_size)
    {
      self->min_size = max_size;
      lower_min = TRUE;
    }
  g_mutex_unlock (&self->mutex);

  g_object_freeze_notify (G_OBJECT (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_SIZE]);
  if (lower_min)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MIN_SIZE]);
  g_object_thaw_notify (G_OBJECT (self));

  if (self->phase == PHASE_OPEN)
    run_dispatch (self);
}

#define DEFINE_MS_PROPERTY(name, field, prop)                                  \
guint                                                                          \
exo_resource_pool_get_##name (ExoResourcePool *self)                           \
{                                                                              \
  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), 0);                       \
  return self->field;                                                          \
}                                                                              \
                                                                               \
void                                                                           \
exo_resource_pool_set_##name (ExoResourcePool *self,                           \
                              guint            value)                          \
{                                                                              \
  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));                              \
                                                                               \
  if (self->field == value)                                                    \
    return;                                                                    \
  self->field = value;                                                         \
  update_config (self);                                                        \
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);                \
}

/**
 * exo_resource_pool_get_idle_timeout:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:idle-timeout-ms
 */
/**
 * exo_resource_pool_set_idle_timeout:
 * @self: a pool
 * @timeout_ms: milliseconds, 0 = never evict
 *
 * Sets #ExoResourcePool:idle-timeout-ms.
 */
DEFINE_MS_PROPERTY (idle_timeout, idle_timeout_ms, PROP_IDLE_TIMEOUT_MS)
/**
 * exo_resource_pool_get_max_lifetime:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:max-lifetime-ms
 */
/**
 * exo_resource_pool_set_max_lifetime:
 * @self: a pool
 * @lifetime_ms: milliseconds, 0 = unlimited
 *
 * Sets #ExoResourcePool:max-lifetime-ms.
 */
DEFINE_MS_PROPERTY (max_lifetime, lifetime_ms, PROP_MAX_LIFETIME_MS)
/**
 * exo_resource_pool_get_validate_after_idle:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:validate-after-idle-ms
 */
/**
 * exo_resource_pool_set_validate_after_idle:
 * @self: a pool
 * @idle_ms: milliseconds, 0 = never validate
 *
 * Sets #ExoResourcePool:validate-after-idle-ms.
 */
DEFINE_MS_PROPERTY (validate_after_idle, validate_ms, PROP_VALIDATE_AFTER_IDLE_MS)
/**
 * exo_resource_pool_get_idle_check_interval:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:idle-check-interval-ms
 */
/**
 * exo_resource_pool_set_idle_check_interval:
 * @self: a pool
 * @interval_ms: milliseconds, 0 = no periodic checks
 *
 * Sets #ExoResourcePool:idle-check-interval-ms.
 */
DEFINE_MS_PROPERTY (idle_check_interval, check_ms, PROP_IDLE_CHECK_INTERVAL_MS)
/**
 * exo_resource_pool_get_leak_threshold:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:leak-threshold-ms
 */
/**
 * exo_resource_pool_set_leak_threshold:
 * @self: a pool
 * @threshold_ms: milliseconds, 0 = no leak detection
 *
 * Sets #ExoResourcePool:leak-threshold-ms.
 */
DEFINE_MS_PROPERTY (leak_threshold, leak_ms, PROP_LEAK_THRESHOLD_MS)

#undef DEFINE_MS_PROPERTY

/**
 * exo_resource_pool_get_drain_timeout:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:drain-timeout-ms
 */
guint
exo_resource_pool_get_drain_timeout (ExoResourcePool *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), 0);
  return self->drain_timeout_ms;
}

/**
 * exo_resource_pool_set_drain_timeout:
 * @self: a pool
 * @timeout_ms: how long cleanup waits for lent resources, 0 = not at all
 *
 * Sets #ExoResourcePool:drain-timeout-ms.
 */
void
exo_resource_pool_set_drain_timeout (ExoResourcePool *self,
                                     guint            timeout_ms)
{
  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));

  if (self->drain_timeout_ms == timeout_ms)
    return;
  self->drain_timeout_ms = timeout_ms;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DRAIN_TIMEOUT_MS]);
}

/**
 * exo_resource_pool_get_retry_policy:
 * @self: a pool
 *
 * Returns: (transfer full): a copy of the backoff used when making a
 *   resource fails
 */
ExoRetryPolicy *
exo_resource_pool_get_retry_policy (ExoResourcePool *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), NULL);
  return exo_retry_policy_copy (self->retry_policy);
}

/**
 * exo_resource_pool_set_retry_policy:
 * @self: a pool
 * @policy: the backoff between attempts to make a resource
 *
 * When making a resource fails, the pool tries again after the policy's
 * delay for as long as someone waits or the pool is below its minimum.
 * `max-retries` consecutive failures (unless %G_MAXUINT, the default) fail
 * the waiters when the pool has no resource at all.
 */
void
exo_resource_pool_set_retry_policy (ExoResourcePool      *self,
                                    const ExoRetryPolicy *policy)
{
  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));
  g_return_if_fail (policy != NULL);
  g_return_if_fail (exo_retry_policy_validate (policy, NULL));

  exo_retry_policy_free (self->retry_policy);
  self->retry_policy = exo_retry_policy_copy (policy);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RETRY_POLICY]);
}

/* --- GObject ----------------------------------------------------------- */

static void
exo_resource_pool_constructed (GObject *object)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (object);

  G_OBJECT_CLASS (exo_resource_pool_parent_class)->constructed (object);

  self->dispatch_source = wake_source_new (self, dispatch_cb, G_PRIORITY_DEFAULT,
                                           "[exo] pool dispatch");
  self->notify_source = wake_source_new (self, notify_cb, G_PRIORITY_DEFAULT_IDLE,
                                         "[exo] pool notify");
  self->unref_source = wake_source_new (self, unref_cb, G_PRIORITY_DEFAULT,
                                        "[exo] pool unref");
  g_signal_connect (self, "state-changed", G_CALLBACK (pool_state_changed_cb), NULL);
}

static void
dispose_slot (Slot *slot)
{
  g_clear_signal_handler (&slot->state_handler, slot->resource);
  if (exo_resource_get_state (slot->resource) != EXO_RESOURCE_STATE_CLOSED)
    exo_resource_cleanup_async (slot->resource, NULL, NULL, NULL);
  slot_free (slot);
}

static void
exo_resource_pool_dispose (GObject *object)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (object);
  g_autoptr(GPtrArray) left = g_ptr_array_new ();
  g_autoptr(GPtrArray) freed = g_ptr_array_new_with_free_func ((GDestroyNotify) slot_free);
  GHashTableIter iter;
  Slot *slot;

  clear_source (&self->dispatch_source);
  clear_source (&self->notify_source);
  clear_source (&self->unref_source);
  clear_source (&self->maintenance_source);
  clear_source (&self->retry_source);
  clear_source (&self->drain_source);
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);

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

  G_OBJECT_CLASS (exo_resource_pool_parent_class)->dispose (object);
}

static void
exo_resource_pool_finalize (GObject *object)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (object);

  g_assert (g_queue_is_empty (&self->waiters));
  g_assert (self->init_task == NULL && self->cleanup_task == NULL);

  g_clear_pointer (&self->idle, g_free);
  g_clear_pointer (&self->slots, g_hash_table_unref);
  g_clear_pointer (&self->orphans, g_hash_table_unref);
  g_clear_pointer (&self->doomed, g_ptr_array_unref);
  g_clear_pointer (&self->doomed_spare, g_ptr_array_unref);
  g_clear_pointer (&self->free_orphans, g_ptr_array_unref);
  for (guint i = 0; i < self->n_item_props; i++)
    g_value_unset (&self->item_prop_values[i]);
  g_clear_pointer (&self->item_prop_values, g_free);
  g_clear_pointer (&self->item_prop_names, g_strfreev);
  if (self->factory_data_free != NULL)
    self->factory_data_free (self->factory_data);
  g_clear_pointer (&self->retry_policy, exo_retry_policy_free);
  g_clear_object (&self->cancellable);
  g_clear_error (&self->create_error);
  g_clear_error (&self->prewarm_error);
  g_clear_pointer (&self->owner_thread, g_thread_unref);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (exo_resource_pool_parent_class)->finalize (object);
}

static void
exo_resource_pool_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (object);
  ExoPoolStats stats;

  if (prop_id >= PROP_SIZE)
    exo_resource_pool_get_stats (self, &stats);

  switch (prop_id)
    {
    case PROP_ITEM_TYPE:
      g_value_set_gtype (value, self->item_type);
      break;
    case PROP_MIN_SIZE:
      g_value_set_uint (value, exo_resource_pool_get_min_size (self));
      break;
    case PROP_MAX_SIZE:
      g_value_set_uint (value, exo_resource_pool_get_max_size (self));
      break;
    case PROP_IDLE_TIMEOUT_MS:
      g_value_set_uint (value, self->idle_timeout_ms);
      break;
    case PROP_MAX_LIFETIME_MS:
      g_value_set_uint (value, self->lifetime_ms);
      break;
    case PROP_VALIDATE_AFTER_IDLE_MS:
      g_value_set_uint (value, self->validate_ms);
      break;
    case PROP_IDLE_CHECK_INTERVAL_MS:
      g_value_set_uint (value, self->check_ms);
      break;
    case PROP_LEAK_THRESHOLD_MS:
      g_value_set_uint (value, self->leak_ms);
      break;
    case PROP_DRAIN_TIMEOUT_MS:
      g_value_set_uint (value, self->drain_timeout_ms);
      break;
    case PROP_RETRY_POLICY:
      g_value_set_boxed (value, self->retry_policy);
      break;
    case PROP_SIZE:
      g_value_set_uint (value, stats.size);
      break;
    case PROP_IDLE:
      g_value_set_uint (value, stats.idle);
      break;
    case PROP_IN_USE:
      g_value_set_uint (value, stats.in_use);
      break;
    case PROP_WAITING:
      g_value_set_uint (value, stats.waiting);
      break;
    case PROP_ACQUIRED:
      g_value_set_uint64 (value, stats.acquired);
      break;
    case PROP_TIMEOUTS:
      g_value_set_uint64 (value, stats.timeouts);
      break;
    case PROP_CREATED:
      g_value_set_uint64 (value, stats.created);
      break;
    case PROP_DESTROYED:
      g_value_set_uint64 (value, stats.destroyed);
      break;
    case PROP_LEAKS:
      g_value_set_uint64 (value, stats.leaks);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_resource_pool_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (object);

  switch (prop_id)
    {
    case PROP_ITEM_TYPE:
      {
        GType type = g_value_get_gtype (value);
        /* The default, the abstract base, means "a factory callback". */
        self->item_type = type == EXO_TYPE_RESOURCE ? G_TYPE_INVALID : type;
      }
      break;
    case PROP_MIN_SIZE:
      exo_resource_pool_set_min_size (self, g_value_get_uint (value));
      break;
    case PROP_MAX_SIZE:
      exo_resource_pool_set_max_size (self, g_value_get_uint (value));
      break;
    case PROP_IDLE_TIMEOUT_MS:
      exo_resource_pool_set_idle_timeout (self, g_value_get_uint (value));
      break;
    case PROP_MAX_LIFETIME_MS:
      exo_resource_pool_set_max_lifetime (self, g_value_get_uint (value));
      break;
    case PROP_VALIDATE_AFTER_IDLE_MS:
      exo_resource_pool_set_validate_after_idle (self, g_value_get_uint (value));
      break;
    case PROP_IDLE_CHECK_INTERVAL_MS:
      exo_resource_pool_set_idle_check_interval (self, g_value_get_uint (value));
      break;
    case PROP_LEAK_THRESHOLD_MS:
      exo_resource_pool_set_leak_threshold (self, g_value_get_uint (value));
      break;
    case PROP_DRAIN_TIMEOUT_MS:
      exo_resource_pool_set_drain_timeout (self, g_value_get_uint (value));
      break;
    case PROP_RETRY_POLICY:
      if (g_value_get_boxed (value) != NULL)
        exo_resource_pool_set_retry_policy (self, g_value_get_boxed (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_resource_pool_class_init (ExoResourcePoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->constructed = exo_resource_pool_constructed;
  object_class->dispose = exo_resource_pool_dispose;
  object_class->finalize = exo_resource_pool_finalize;
  object_class->get_property = exo_resource_pool_get_property;
  object_class->set_property = exo_resource_pool_set_property;

  resource_class->do_initialize = exo_resource_pool_do_initialize;
  resource_class->do_cleanup = exo_resource_pool_do_cleanup;
  resource_class->do_check_health = exo_resource_pool_do_check_health;
  resource_class->collect_metrics = exo_resource_pool_collect_metrics;

  exo_resource_class_set_resource_type (resource_class, "pool");

#define RW (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY)
#define RO (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY)

  /**
   * ExoResourcePool:item-type:
   *
   * The type of resource made, or %G_TYPE_INVALID with a factory callback.
   */
  properties[PROP_ITEM_TYPE] =
    g_param_spec_gtype ("item-type", NULL, NULL, EXO_TYPE_RESOURCE,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * ExoResourcePool:min-size:
   *
   * Resources made on initialize and kept however idle.
   */
  properties[PROP_MIN_SIZE] =
    g_param_spec_uint ("min-size", NULL, NULL, 0, G_MAXINT, 0, RW);
  /**
   * ExoResourcePool:max-size:
   *
   * The most resources that may exist at once.
   */
  properties[PROP_MAX_SIZE] =
    g_param_spec_uint ("max-size", NULL, NULL, 1, G_MAXINT, 10, RW);
  /**
   * ExoResourcePool:idle-timeout-ms:
   *
   * A resource idle (since its last release) this long is dropped, down to
   * #ExoResourcePool:min-size; 0 = never.
   */
  properties[PROP_IDLE_TIMEOUT_MS] =
    g_param_spec_uint ("idle-timeout-ms", NULL, NULL, 0, G_MAXUINT, 600000, RW);
  /**
   * ExoResourcePool:max-lifetime-ms:
   *
   * A resource older than this (less a random 0–10 % per resource) is
   * retired when given back or while idle; 0 = unlimited.
   */
  properties[PROP_MAX_LIFETIME_MS] =
    g_param_spec_uint ("max-lifetime-ms", NULL, NULL, 0, G_MAXUINT, 1800000, RW);
  /**
   * ExoResourcePool:validate-after-idle-ms:
   *
   * exo_resource_pool_acquire_async() health-checks a resource that sat
   * idle this long before lending it; 0 = never.
   */
  properties[PROP_VALIDATE_AFTER_IDLE_MS] =
    g_param_spec_uint ("validate-after-idle-ms", NULL, NULL, 0, G_MAXUINT, 0, RW);
  /**
   * ExoResourcePool:idle-check-interval-ms:
   *
   * Idle resources are health-checked this often; failing ones are
   * dropped.  0 = never.
   */
  properties[PROP_IDLE_CHECK_INTERVAL_MS] =
    g_param_spec_uint ("idle-check-interval-ms", NULL, NULL, 0, G_MAXUINT, 0, RW);
  /**
   * ExoResourcePool:leak-threshold-ms:
   *
   * A resource lent longer than this is reported once with
   * #ExoResourcePool::leak-detected; 0 = never.
   */
  properties[PROP_LEAK_THRESHOLD_MS] =
    g_param_spec_uint ("leak-threshold-ms", NULL, NULL, 0, G_MAXUINT, 0, RW);
  /**
   * ExoResourcePool:drain-timeout-ms:
   *
   * How long cleanup waits for lent resources to come back before it closes
   * them anyway; 0 = no wait.
   */
  properties[PROP_DRAIN_TIMEOUT_MS] =
    g_param_spec_uint ("drain-timeout-ms", NULL, NULL, 0, G_MAXUINT, 30000, RW);
  /**
   * ExoResourcePool:retry-policy:
   *
   * The backoff between attempts to make a resource after a failure.
   */
  properties[PROP_RETRY_POLICY] =
    g_param_spec_boxed ("retry-policy", NULL, NULL, EXO_TYPE_RETRY_POLICY, RW);
  /**
   * ExoResourcePool:size:
   *
   * Resources that exist, idle or in use.
   */
  properties[PROP_SIZE] = g_param_spec_uint ("size", NULL, NULL, 0, G_MAXUINT, 0, RO);
  /**
   * ExoResourcePool:idle:
   *
   * Resources ready to be lent.
   */
  properties[PROP_IDLE] = g_param_spec_uint ("idle", NULL, NULL, 0, G_MAXUINT, 0, RO);
  /**
   * ExoResourcePool:in-use:
   *
   * Resources lent out or being checked by the pool.
   */
  properties[PROP_IN_USE] = g_param_spec_uint ("in-use", NULL, NULL, 0, G_MAXUINT, 0, RO);
  /**
   * ExoResourcePool:waiting:
   *
   * Callers of exo_resource_pool_acquire_async() waiting for a resource.
   */
  properties[PROP_WAITING] = g_param_spec_uint ("waiting", NULL, NULL, 0, G_MAXUINT, 0, RO);
  /**
   * ExoResourcePool:acquired:
   *
   * Successful acquisitions.
   */
  properties[PROP_ACQUIRED] =
    g_param_spec_uint64 ("acquired", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * ExoResourcePool:timeouts:
   *
   * Acquisitions that timed out.
   */
  properties[PROP_TIMEOUTS] =
    g_param_spec_uint64 ("timeouts", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * ExoResourcePool:created:
   *
   * Resources made and initialized.
   */
  properties[PROP_CREATED] =
    g_param_spec_uint64 ("created", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * ExoResourcePool:destroyed:
   *
   * Resources dropped: evicted, retired, broken, unhealthy or closed.
   */
  properties[PROP_DESTROYED] =
    g_param_spec_uint64 ("destroyed", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * ExoResourcePool:leaks:
   *
   * Loans reported by #ExoResourcePool::leak-detected.
   */
  properties[PROP_LEAKS] =
    g_param_spec_uint64 ("leaks", NULL, NULL, 0, G_MAXUINT64, 0, RO);

#undef RW
#undef RO

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ExoResourcePool::leak-detected:
   * @self: the pool
   * @resource: the resource lent too long
   * @held_for_ms: how long it has been lent
   *
   * Emitted once per loan, in the pool's context, when a resource has been
   * lent longer than #ExoResourcePool:leak-threshold-ms.
   */
  signals[SIGNAL_LEAK_DETECTED] =
    g_signal_new ("leak-detected",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, EXO_TYPE_RESOURCE, G_TYPE_UINT64);
}

static void
exo_resource_pool_init (ExoResourcePool *self)
{
  g_mutex_init (&self->mutex);
  g_queue_init (&self->waiters);
  self->slots = g_hash_table_new (g_direct_hash, NULL);
  self->doomed = g_ptr_array_new ();
  self->doomed_spare = g_ptr_array_new ();
  self->free_orphans = g_ptr_array_new ();
  self->cancellable = g_cancellable_new ();
  /* ExoResource took the thread-default context of this thread */
  self->owner_thread = g_thread_ref (g_thread_self ());
  self->phase = PHASE_DOWN;
  self->min_size = 0;
  self->max_size = 10;
  self->idle_timeout_ms = 600000;
  self->lifetime_ms = 1800000;
  self->drain_timeout_ms = 30000;
  self->last_notify_us = G_MININT64 / 2;
  self->idle_alloc = 16;
  self->idle = g_new (Slot *, self->idle_alloc);

  self->retry_policy = exo_retry_policy_new ();
  self->retry_policy->max_retries = G_MAXUINT;
  self->retry_policy->initial_delay_ms = 50;
  self->retry_policy->max_delay_ms = 2000;
  self->retry_policy->jitter = EXO_JITTER_EQUAL;

  update_config (self);
}
