/* exo-resource-pool-private.h: what the files of ExoResourcePool share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Not installed and not given to g-ir-scanner.  It holds the instance
 * struct, the Slot that carries each member, the lease's struct, the helpers
 * that the fast path and the dispatcher share (static inline, so that
 * try_acquire, release and acquire_async compile to the code they had in
 * one file: try_acquire and release call nothing but the mutex, the clock
 * and the wake-up), and the functions one file of the pool calls in another.
 *
 * The pool's files:
 *
 *   exo-resource-pool.c            the GObject: property specs,
 *                                  constructors, property notifications,
 *                                  ::leak-detected, dispose and finalize
 *   exo-resource-pool-settings.c   the getters and setters of the pool's
 *                                  configuration (sizes, *_ms, drain
 *                                  timeout, retry policy)
 *   exo-pool-lease.c               ExoPoolLease; pool references dropped on
 *                                  other threads, handed to the pool's context
 *   exo-resource-pool-fastpath.c   try_acquire, release and the statistics:
 *                                  any thread
 *   exo-resource-pool-dispatch.c   waiters and acquire_async; the dispatcher,
 *                                  which decides what to lend, check, make and
 *                                  drop; maintenance and its configuration
 *   exo-resource-pool-lifecycle.c  members made, checked and destroyed; the
 *                                  pool's initialize, cleanup and drain
 *
 * The rules, for all of them:
 *
 * - The fields under "under mutex" in struct _ExoResourcePool, and a Slot's
 *   where, state, idle_since, checked_at, expires_at, acquired_at and flags,
 *   are read and written with self->mutex held, from any thread.  Of these,
 *   phase, min_size, max_size, the *_us thresholds and the stamp_* flags are
 *   written only in the pool's context, so that context may also read them
 *   without the mutex.  deferred_unrefs is an atomic, not under the mutex.
 * - The fields under "the pool's main context only" are touched only in the
 *   pool's context (exo_resource_get_context()), without the mutex.
 *   Exception: dispatch_source, notify_source, unref_source and owner_thread
 *   are set at construction, cleared at dispose, and read by any thread in
 *   between (wake(), leases).  A Slot's resource, pool, serial, created_at
 *   and jitter are set before it is published and do not change while it is
 *   a member (code under the mutex reads them too); its state_handler is the
 *   pool's context's.
 * - Any thread may call exo_resource_pool_try_acquire(), _try_acquire_lease(),
 *   _release(), _release_broken(), _get_stats(), _get_size(), _get_idle(),
 *   _get_in_use() and _get_waiting() (_get_min_size() and _get_max_size()
 *   take the mutex too), and the exo_pool_lease_*() functions.  Everything
 *   else, and every callback of a source or of a member, runs in the pool's
 *   context.
 * - The mutex is a leaf lock: while it is held nothing else is locked and
 *   nothing is called out (no signal, no GTask, no factory, no source).
 *   Code collects under it what to do (waiters to serve, slots to destroy,
 *   checks, leaks) and does it after unlocking.  Other threads reach the
 *   pool's context only by wake() after unlocking (g_source_set_ready_time()
 *   on the dispatch and notify sources) and by deferred_unrefs.
 * - Re-entrancy: whatever the pool's context calls out (a GTask's callback, a
 *   notify or ::leak-detected handler, the factory, the pool's own or a
 *   member's state-changed handlers) may call back into the pool: acquire,
 *   release, change properties, clean the pool up, drop a reference.  So
 *   whoever calls out holds a reference to the pool and not the mutex; the
 *   dispatcher is never nested (a nested call asks for another pass); and a
 *   waiter is unlinked under the mutex before it is served or failed.
 */
#pragma once

#include "exo-private.h"

#include <time.h>

G_BEGIN_DECLS

#define NOTIFY_INTERVAL_US (25 * G_TIME_SPAN_MILLISECOND)

/* The pool's properties (exo-resource-pool.c installs them). */
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

/* --- waking the pool's context, timers --------------------------------- */

static inline GSource *
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

/* --- slots: what the fast path and the dispatcher share ---------------- */

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

/* Under the lock: drop @slot from the members (the caller has already taken
 * it off the idle stack or the lent/busy counts); it is destroyed in the
 * pool's context. */
static inline void
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

/* --- leases: made by the fast path and the dispatcher ------------------ */

struct _ExoPoolLease
{
  gint              ref_count;
  gint              released;
  ExoResourcePool  *pool;          /* owned */
  ExoResource      *resource;      /* owned by the pool while lent */
};

static inline ExoPoolLease *
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

/* --- what one file calls in another ------------------------------------ */

/* exo-pool-lease.c */
gboolean      _exo_resource_pool_unref_cb (gpointer         data);

/* exo-resource-pool-fastpath.c: any thread */
void          _exo_resource_pool_release_internal (ExoResourcePool *self,
                                                   ExoResource     *resource,
                                                   gboolean         broken);

/* exo-resource-pool-dispatch.c: the pool's context */
gboolean      _exo_resource_pool_dispatch_cb          (gpointer         data);
void          _exo_resource_pool_run_dispatch         (ExoResourcePool *self);
void          _exo_resource_pool_steal_waiters_locked (ExoResourcePool *self,
                                                       GQueue          *out);
void          _exo_resource_pool_fail_waiters         (GQueue          *waiters,
                                                       const GError    *error);
void          _exo_resource_pool_fail_all_waiters     (ExoResourcePool *self,
                                                       const GError    *error);
void          _exo_resource_pool_update_maintenance   (ExoResourcePool *self);
void          _exo_resource_pool_update_config        (ExoResourcePool *self);

/* exo-resource-pool-lifecycle.c: the pool's context */
void          _exo_resource_pool_slot_free            (Slot            *slot);
void          _exo_resource_pool_destroy_slot         (ExoResourcePool *self,
                                                       Slot            *slot);
void          _exo_resource_pool_start_create         (ExoResourcePool *self,
                                                       gboolean         prewarm);
void          _exo_resource_pool_start_check          (ExoResourcePool *self,
                                                       Slot            *slot,
                                                       gboolean         for_waiter);
void          _exo_resource_pool_maybe_finish_cleanup (ExoResourcePool *self);
void          _exo_resource_pool_state_changed_cb     (ExoResourcePool  *self,
                                                       ExoResourceState  old_state,
                                                       ExoResourceState  new_state,
                                                       gpointer          user_data);
void          _exo_resource_pool_do_initialize        (ExoResource     *resource,
                                                       GTask           *task);
void          _exo_resource_pool_do_cleanup           (ExoResource     *resource,
                                                       GTask           *task);
void          _exo_resource_pool_do_check_health      (ExoResource     *resource,
                                                       GTask           *task);
GPtrArray    *_exo_resource_pool_dispose_slots        (ExoResourcePool *self);

/* exo-resource-pool.c: the pool's context */
void          _exo_resource_pool_schedule_notify      (ExoResourcePool *self);
void          _exo_resource_pool_notify               (ExoResourcePool *self,
                                                       guint            prop);
void          _exo_resource_pool_emit_leak_detected   (ExoResourcePool *self,
                                                       ExoResource     *resource,
                                                       guint64          held_ms);

G_END_DECLS
