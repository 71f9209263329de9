/* exo-resource.c: the abstract base that implements the lifecycle once.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-private.h"

/**
 * ExoResource:
 *
 * The abstract base class of every resource.  It implements
 * #ExoAsyncResource once: the transition table, single-flight initialize,
 * timeouts, cancellation, cleanup of half-made resources, health checks and
 * the statistics.  A subclass writes only #ExoResourceClass.do_initialize,
 * #ExoResourceClass.do_cleanup and, optionally,
 * #ExoResourceClass.do_check_health.
 *
 * ## How the calls are serialised
 *
 * At most one `do_initialize` or `do_cleanup` of a resource runs at a time.
 * When an attempt times out or every caller cancels, the callers get their
 * error at once and the resource enters `error`; the abandoned attempt's
 * cancellable is cancelled and, when its `do_initialize` returns, whatever it
 * made is cleaned up with `do_cleanup`.  A later initialize or cleanup waits
 * for that first, so a subclass never sees overlapping calls.
 *
 * A resource belongs to the #GMainContext that was thread-default when it
 * was made: call its methods there; its signals are emitted there.
 */

typedef struct _Attempt Attempt;

struct _Attempt
{
  ExoResource  *self;         /* owned while the attempt runs */
  GCancellable *cancellable;
  gboolean      abandoned;
  /* why its do_initialize failed, while its cleanup runs, is the
   * resource's extra->init_error (one attempt at a time is busy) */
};

/* A caller of initialize with a GTask (the library's own callers use a
 * bare ExoInitWaiter). */
typedef struct
{
  ExoInitWaiter  base;          /* base.func == NULL */
  GTask         *task;
  GSource       *cancel_source;
} Waiter;

/* What only failures, retries, zombies and nested emissions use: made when
 * first needed, so that a resource that never fails does not carry it. */
typedef struct
{
  GError           *last_error;
  GRand            *rand;
  GSource          *retry_source;
  GSource          *cleanup_wait_source; /* how long a cleanup waits for a zombie */
  GError           *init_error;        /* why do_initialize failed, while its cleanup runs */
  /* Transitions made by handlers during an emission: emitted after it, in
   * order (guint32: old | new << 8 | has_error << 16); NULL until needed. */
  GArray           *pending_emissions;
} ExoResourceExtra;

typedef struct
{
  union {
    char           *ptr;
    char            buf[16];
  }                 id;                /* ID(): inline when it fits, as most ids do */
  char             *display_name;
  const char       *resource_type;     /* interned */
  GMainContext     *context;
  ExoResourceExtra *extra;             /* NULL until needed: EXTRA() */
  gint64            state_changed_at;
  gint64            initialized_at;
  guint             error_count;
  guint             attempts;
  guint             attempts_notified; /* the value `notify::attempts` last told */
  guint             init_timeout_ms;

  /* Health hysteresis: consecutive outcomes of health checks. */
  guint             health_fails;
  guint             health_passes;
  guint             unhealthy_threshold;
  guint             healthy_threshold;

  /* The initialize flight: one set of callers sharing attempts. */
  /* in the order they came (Waiter, or the library's): a ring, the last
   * one's next is the first */
  ExoInitWaiter    *init_waiters_tail;
  Attempt          *attempt;           /* the live attempt, if any */
  GSource          *timeout_source;

  GSList           *cleanup_waiters;   /* GTask*, the last one first */

  guint8            state;             /* ExoResourceState: a byte, read on every transition */
  guint8            result;            /* ExoResourceResult */
  guint             in_flight : 1;
  guint             busy : 1;          /* a do_initialize or do_cleanup runs */
  guint             needs_cleanup : 1; /* do_initialize succeeded, no do_cleanup since */
  guint             start_pending : 1;
  guint             cleanup_pending : 1;
  guint             cleaning : 1;
  guint             registered : 1;
  guint             attempt_counted : 1; /* the next attempt is counted and timed, not started */
  guint             degraded_by_health : 1; /* degraded by its own failing checks */
  guint             held : 1;          /* kept degraded by its supervisor (a dependency is down) */
  guint             emitting : 1;      /* inside a state-changed emission */
  guint             zombie : 1;        /* busy with a vfunc of an abandoned attempt */
  guint             managed_hook : 1;  /* an ExoManagedResource: told of transitions first */
  guint             member_hook : 1;   /* in a group, not disposed: the group is told */
  guint             disposed : 1;      /* its handlers are gone: so are the hooks */
  guint             id_inline : 1;
  guint             flight_attempt;    /* beside the bits: no hole */

  GThread          *thread;            /* the thread that made it */
  gpointer          member;            /* the record of the group it is in, if any */
} ExoResourcePrivate;

G_STATIC_ASSERT (EXO_RESOURCE_STATE_LAST <= 8);
G_STATIC_ASSERT (EXO_RESOURCE_RESULT_START_LIMIT_HIT < 8);

#define ID(priv) ((priv)->id_inline ? (priv)->id.buf : (priv)->id.ptr)

static void
set_id (ExoResourcePrivate *priv,
        const char         *id)
{
  if (!priv->id_inline)
    g_free (priv->id.ptr);
  if (id != NULL && strlen (id) < sizeof priv->id.buf)
    {
      strcpy (priv->id.buf, id);
      priv->id_inline = TRUE;
    }
  else
    {
      priv->id.ptr = g_strdup (id);
      priv->id_inline = FALSE;
    }
}

static inline ExoResourceExtra *
EXTRA (ExoResourcePrivate *priv)
{
  if (G_UNLIKELY (priv->extra == NULL))
    priv->extra = g_new0 (ExoResourceExtra, 1);
  return priv->extra;
}

/* A field of the extra part, for reading: NULL when there is none. */
#define EXTRA_GET(priv, field) ((priv)->extra != NULL ? (priv)->extra->field : NULL)

enum {
  PROP_0,
  PROP_ID,
  PROP_RESOURCE_TYPE,
  PROP_DISPLAY_NAME,
  PROP_STATE,
  PROP_INIT_TIMEOUT,
  PROP_ERROR_COUNT,
  PROP_ATTEMPTS,
  PROP_LAST_ERROR,
  PROP_RESULT,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];
static guint signal_state_changed;
static guint signal_notify;
static GQuark resource_type_quark;

static void exo_resource_async_resource_init (ExoAsyncResourceInterface *iface);

G_DEFINE_ABSTRACT_TYPE_WITH_CODE (ExoResource, exo_resource, G_TYPE_OBJECT,
                                  G_ADD_PRIVATE (ExoResource)
                                  G_IMPLEMENT_INTERFACE (EXO_TYPE_ASYNC_RESOURCE,
                                                         exo_resource_async_resource_init))

#define PRIV(self) ((ExoResourcePrivate *) exo_resource_get_instance_private (self))

/* The transition table: legal[from] is the set of states reachable from it. */
#define S(x) (1u << EXO_RESOURCE_STATE_##x)
static const guint legal_transitions[EXO_RESOURCE_STATE_LAST] = {
  [EXO_RESOURCE_STATE_UNINITIALIZED] = S (INITIALIZING) | S (CLOSING),
  [EXO_RESOURCE_STATE_INITIALIZING]  = S (READY) | S (ERROR) | S (CLOSING),
  [EXO_RESOURCE_STATE_READY]         = S (DEGRADED) | S (ERROR) | S (INITIALIZING) | S (CLOSING),
  [EXO_RESOURCE_STATE_DEGRADED]      = S (READY) | S (ERROR) | S (INITIALIZING) | S (CLOSING),
  [EXO_RESOURCE_STATE_ERROR]         = S (INITIALIZING) | S (CLOSING),
  [EXO_RESOURCE_STATE_CLOSING]       = S (CLOSED),
  [EXO_RESOURCE_STATE_CLOSED]        = S (INITIALIZING) | S (CLOSING),
};
#undef S

static void start_attempt  (ExoResource *self);
static guint zombie_wait_ms (ExoResource *self);
static void resume_pending (ExoResource *self);
static GTask *vfunc_init_task_new (ExoResource *self,
                                   Attempt     *attempt);

/**
 * exo_resource_state_transition_is_legal:
 * @from: the current state
 * @to: the next state
 *
 * Returns: %TRUE if the transition table has the edge @from → @to
 */
gboolean
exo_resource_state_transition_is_legal (ExoResourceState from,
                                        ExoResourceState to)
{
  if ((guint) from >= EXO_RESOURCE_STATE_LAST || (guint) to >= EXO_RESOURCE_STATE_LAST)
    return FALSE;
  return (legal_transitions[from] & (1u << to)) != 0;
}

/* Notifies @prop only when somebody listens: the statistics change on hot
 * paths (every attempt), where an unobserved notify would cost more than the
 * work itself. */
static inline void
notify_watched (ExoResource *self,
                guint        prop)
{
  if (g_signal_has_handler_pending (self, signal_notify,
                                    g_param_spec_get_name_quark (properties[prop]), FALSE))
    g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

/* `attempts` is notified when an attempt failed and when a flight ended,
 * not when an attempt starts: a first attempt that succeeds (every member
 * of a group starting) changes nothing anyone saw, and costs no notify. */
static void
notify_attempts (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  if (priv->attempts_notified == priv->attempts)
    return;
  priv->attempts_notified = priv->attempts;
  notify_watched (self, PROP_ATTEMPTS);
}

static void
set_attempts (ExoResource *self,
              guint        attempts)
{
  PRIV (self)->attempts = attempts;
  notify_attempts (self);
}

static void
record_error_quietly (ExoResource  *self,
                      const GError *error)
{
  ExoResourcePrivate *priv = PRIV (self);

  g_clear_error (&EXTRA (priv)->last_error);
  priv->extra->last_error = g_error_copy (error);
  priv->error_count++;
}

static void
notify_error (ExoResource *self)
{
  notify_attempts (self);
  notify_watched (self, PROP_LAST_ERROR);
  notify_watched (self, PROP_ERROR_COUNT);
}

static void
record_error (ExoResource  *self,
              const GError *error)
{
  if (error == NULL)
    return;
  record_error_quietly (self, error);
  notify_error (self);
}

void
_exo_resource_set_result (ExoResource       *self,
                          ExoResourceResult  result)
{
  ExoResourcePrivate *priv = PRIV (self);

  if (priv->result == result)
    return;
  priv->result = result;
  notify_watched (self, PROP_RESULT);
}

static ExoResourceResult
result_of (const GError *error)
{
  if (error == NULL)
    return EXO_RESOURCE_RESULT_SUCCESS;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return EXO_RESOURCE_RESULT_TIMEOUT;
  return EXO_RESOURCE_RESULT_FAILED;
}

static void
emit_transition (ExoResource        *self,
                 ExoResourcePrivate *priv,
                 ExoResourceState    old_state,
                 ExoResourceState    new_state,
                 gboolean            with_error)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
  /* Where ExoManagedResource's own handler was: connected at init, it ran
   * before every other handler. */
  if (G_UNLIKELY (priv->managed_hook))
    _exo_managed_resource_state_changed (EXO_MANAGED_RESOURCE (self), old_state, new_state);
  g_signal_emit (self, signal_state_changed, 0, old_state, new_state);
  /* The group's bookkeeping: after every handler, so that each of them has
   * seen the transition before the group does anything about it. */
  if (G_UNLIKELY (priv->member_hook))
    _exo_resource_group_member_state_changed (priv->member, old_state, new_state);
  /* After the emission: a watcher of the error count sees that this error
   * came with the transition it was just told of. */
  if (with_error)
    notify_error (self);
}

/**
 * exo_resource_transition:
 * @self: a resource
 * @new_state: the state to enter
 * @error: (nullable): recorded as the last error when not %NULL
 *
 * Moves @self to @new_state and emits #ExoAsyncResource::state-changed.
 * This is for runtimes built on libexo (groups, pools) that manage a
 * resource's state themselves; an edge that is not in the transition table
 * is a programming error: it is refused with a critical warning.
 *
 * Returns: %TRUE if the transition happened (or @self already was in @new_state)
 */
gboolean
exo_resource_transition (ExoResource      *self,
                         ExoResourceState  new_state,
                         const GError     *error)
{
  ExoResourcePrivate *priv = PRIV (self);
  ExoResourceState old_state = priv->state;

  if (old_state == new_state)
    return TRUE;

  if G_UNLIKELY (!exo_resource_state_transition_is_legal (old_state, new_state))
    {
      g_critical ("illegal state transition of resource '%s': %s -> %s",
                  ID (priv),
                  exo_resource_state_to_string (old_state),
                  exo_resource_state_to_string (new_state));
      return FALSE;
    }

  priv->state = new_state;
  priv->state_changed_at = g_get_real_time ();
  if (error != NULL)
    record_error_quietly (self, error);

  if (new_state == EXO_RESOURCE_STATE_READY && old_state == EXO_RESOURCE_STATE_INITIALIZING)
    priv->initialized_at = priv->state_changed_at;
  if (new_state != EXO_RESOURCE_STATE_DEGRADED)
    {
      priv->degraded_by_health = FALSE;
      if (!exo_resource_state_is_usable (new_state))
        {
          priv->held = FALSE;
          priv->health_fails = priv->health_passes = 0;
        }
    }

  /* A handler that changes the state again from inside an emission (a
   * plugin restarting itself on `degraded`) must not make the handlers
   * after it see the second transition before the first: the state changes
   * at once, its emission waits until the current one has reached every
   * handler. */
  if (priv->emitting)
    {
      guint32 entry = old_state | (new_state << 8) | ((error != NULL) << 16);

      if (EXTRA (priv)->pending_emissions == NULL)
        priv->extra->pending_emissions = g_array_new (FALSE, FALSE, sizeof (guint32));
      g_array_append_val (priv->extra->pending_emissions, entry);
      return TRUE;
    }

  g_object_ref (self);
  priv->emitting = TRUE;
  emit_transition (self, priv, old_state, new_state, error != NULL);
  if (G_UNLIKELY (priv->extra != NULL && priv->extra->pending_emissions != NULL))
    {
      GArray *pending = priv->extra->pending_emissions;

      for (guint i = 0; i < pending->len; i++)
        {
          guint32 entry = g_array_index (pending, guint32, i);

          emit_transition (self, priv, entry & 0xff, (entry >> 8) & 0xff, (entry >> 16) & 1);
        }
      g_array_set_size (pending, 0);
    }
  priv->emitting = FALSE;
  g_object_unref (self);

  return TRUE;
}

/* --- waiters ----------------------------------------------------------- */

static void
waiter_free (Waiter *waiter)
{
  if (waiter->cancel_source != NULL)
    {
      g_source_destroy (waiter->cancel_source);
      g_source_unref (waiter->cancel_source);
    }
  g_clear_object (&waiter->task);
  g_free (waiter);
}

static void
init_waiters_push (ExoResourcePrivate *priv,
                   ExoInitWaiter      *waiter)
{
  ExoInitWaiter *tail = priv->init_waiters_tail;

  if (tail != NULL)
    {
      waiter->next = tail->next;
      tail->next = waiter;
    }
  else
    waiter->next = waiter;
  priv->init_waiters_tail = waiter;
}

typedef struct
{
  ExoResource   *self;
  ExoInitWaiter *waiter;
  GError        *error;
} DeferredWaiter;

static void
call_init_waiter (ExoResource   *self,
                  ExoInitWaiter *waiter,
                  const GError  *error)
{
  GMainContext *context = PRIV (self)->context;

  /* as g_task_return_now() does */
  g_main_context_push_thread_default (context);
  waiter->func (self, waiter, error);
  g_main_context_pop_thread_default (context);
}

static gboolean
deferred_waiter_cb (gpointer data)
{
  DeferredWaiter *deferred = data;

  call_init_waiter (deferred->self, deferred->waiter, deferred->error);
  return G_SOURCE_REMOVE;
}

static void
deferred_waiter_free (gpointer data)
{
  DeferredWaiter *deferred = data;

  g_object_unref (deferred->self);
  g_clear_error (&deferred->error);
  g_free (deferred);
}

/* Completes a library caller when a GTask in its place would complete:
 * at once when running in its context in a later iteration than the one
 * it came in, else from an idle of default priority. */
static void
complete_init_waiter (ExoResource   *self,
                      ExoInitWaiter *waiter,
                      const GError  *error)
{
  GSource *source = g_main_current_source ();
  DeferredWaiter *deferred;

  if (source != NULL && g_source_get_context (source) == PRIV (self)->context &&
      g_source_get_time (source) > waiter->created)
    {
      call_init_waiter (self, waiter, error);
      return;
    }

  deferred = g_new (DeferredWaiter, 1);
  deferred->self = g_object_ref (self);
  deferred->waiter = waiter;
  deferred->error = error != NULL ? g_error_copy (error) : NULL;
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, deferred_waiter_cb, deferred, deferred_waiter_free);
  g_source_set_static_name (source, "[exo] initialize complete");
  g_source_attach (source, PRIV (self)->context);
  g_source_unref (source);
}

static void
flush_init_waiters (ExoResource  *self,
                    const GError *error)
{
  ExoResourcePrivate *priv = PRIV (self);
  ExoInitWaiter *tail = g_steal_pointer (&priv->init_waiters_tail);
  ExoInitWaiter *next = NULL;

  if (tail != NULL)
    {
      next = tail->next;
      tail->next = NULL;
    }

  while (next != NULL)
    {
      ExoInitWaiter *base = next;

      next = base->next;
      if (base->func != NULL)
        {
          complete_init_waiter (self, base, error);
          continue;
        }

      {
        Waiter *waiter = (Waiter *) base;

        if (error == NULL)
          g_task_return_boolean (waiter->task, TRUE);
        else
          g_task_return_error (waiter->task, g_error_copy (error));
        waiter_free (waiter);
      }
    }
}

static void
flush_cleanup_waiters (ExoResource  *self,
                       const GError *error)
{
  ExoResourcePrivate *priv = PRIV (self);
  GSList *waiters = g_slist_reverse (g_steal_pointer (&priv->cleanup_waiters));

  while (waiters != NULL)
    {
      GTask *task = waiters->data;

      waiters = g_slist_delete_link (waiters, waiters);
      if (error == NULL)
        g_task_return_boolean (task, TRUE);
      else
        g_task_return_error (task, g_error_copy (error));
      g_object_unref (task);
    }
}

/* --- attempts ---------------------------------------------------------- */

static Attempt *
attempt_new (ExoResource *self)
{
  Attempt *attempt = g_new0 (Attempt, 1);

  attempt->self = g_object_ref (self);
  attempt->cancellable = g_cancellable_new ();
  return attempt;
}

static void
attempt_free (Attempt *attempt)
{
  g_clear_object (&attempt->cancellable);
  g_clear_object (&attempt->self);
  g_free (attempt);
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

static void
clear_extra_source (ExoResourcePrivate *priv,
                    glong               offset)
{
  if (priv->extra != NULL)
    clear_source (G_STRUCT_MEMBER_P (priv->extra, offset));
}

static GSource *
add_timeout (ExoResource *self,
             guint        ms,
             GSourceFunc  func,
             gpointer     data)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, data, NULL);
  g_source_set_static_name (source, "[exo] resource timer");
  g_source_attach (source, PRIV (self)->context);
  return source;
}

static void
end_flight (ExoResource  *self,
            const GError *error)
{
  ExoResourcePrivate *priv = PRIV (self);

  priv->in_flight = FALSE;
  priv->start_pending = FALSE;
  priv->attempt_counted = FALSE;
  clear_extra_source (priv, G_STRUCT_OFFSET (ExoResourceExtra, retry_source));
  clear_source (&priv->timeout_source);

  if (error == NULL)
    {
      set_attempts (self, 0);
      _exo_resource_set_result (self, EXO_RESOURCE_RESULT_SUCCESS);
      exo_resource_transition (self, EXO_RESOURCE_STATE_READY, NULL);
    }
  else if (priv->state == EXO_RESOURCE_STATE_INITIALIZING)
    {
      _exo_resource_set_result (self, result_of (error));
      exo_resource_transition (self, EXO_RESOURCE_STATE_ERROR, NULL);
    }

  flush_init_waiters (self, error);
}

/* Stop waiting for the live attempt: its do_initialize may still be running,
 * it is cleaned up when it returns. */
static void
abandon_attempt (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);
  Attempt *attempt = g_steal_pointer (&priv->attempt);

  clear_source (&priv->timeout_source);
  if (attempt != NULL)
    {
      attempt->abandoned = TRUE;
      priv->zombie = TRUE;
      g_cancellable_cancel (attempt->cancellable);
    }
}

static gboolean
retry_cb (gpointer data)
{
  ExoResource *self = data;
  ExoResourcePrivate *priv = PRIV (self);

  g_clear_pointer (&priv->extra->retry_source, g_source_unref);
  start_attempt (self);
  return G_SOURCE_REMOVE;
}

static void
after_failed_attempt (ExoResource  *self,
                      const GError *error)
{
  ExoResourcePrivate *priv = PRIV (self);
  ExoResourceClass *klass = EXO_RESOURCE_GET_CLASS (self);
  gint64 delay = -1;

  if (!priv->in_flight)
    return;

  if (klass->retry_delay != NULL)
    delay = klass->retry_delay (self, priv->flight_attempt, error);

  if (delay < 0)
    {
      end_flight (self, error);
      return;
    }

  EXTRA (priv)->retry_source = add_timeout (self, (guint) MIN (delay, G_MAXUINT), retry_cb, self);
}

typedef void (*CleanupDone) (ExoResource *self, Attempt *attempt, GError *error);

typedef struct
{
  Attempt     *attempt;
  CleanupDone  done;
} CleanupCall;

static void
do_cleanup_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  CleanupCall *call = user_data;
  ExoResource *self = EXO_RESOURCE (source);
  GError *error = NULL;

  PRIV (self)->needs_cleanup = FALSE;
  g_task_propagate_boolean (G_TASK (result), &error);
  call->done (self, call->attempt, error);
  g_free (call);
}

/* Run do_cleanup (without a cancellable: cleanup is not abandoned). */
static void
call_do_cleanup (ExoResource *self,
                 Attempt     *attempt,
                 CleanupDone  done)
{
  CleanupCall *call = g_new0 (CleanupCall, 1);
  GTask *task;

  call->attempt = attempt;
  call->done = done;

  task = _exo_resource_vfunc_task_new (self, NULL, do_cleanup_cb, call, call_do_cleanup,
                                       "do_cleanup");
  EXO_RESOURCE_GET_CLASS (self)->do_cleanup (self, task);
  g_object_unref (task);
}

static void
zombie_cleanup_done (ExoResource *self,
                     Attempt     *attempt,
                     GError      *error)
{
  ExoResourcePrivate *priv = PRIV (self);

  if (error != NULL)
    record_error (self, error);
  g_clear_error (&error);
  priv->busy = FALSE;
  priv->zombie = FALSE;
  resume_pending (self);
  attempt_free (attempt);
}

static void
failed_cleanup_done (ExoResource *self,
                     Attempt     *attempt,
                     GError      *error)
{
  ExoResourcePrivate *priv = PRIV (self);
  GError *init_error = g_steal_pointer (&EXTRA (priv)->init_error);

  /* The init error is what callers see; a cleanup error is only recorded. */
  if (error != NULL)
    record_error (self, error);
  g_clear_error (&error);
  if (init_error != NULL)
    {
      g_clear_error (&EXTRA (priv)->last_error);
      priv->extra->last_error = g_error_copy (init_error);
    }

  priv->busy = FALSE;
  priv->zombie = FALSE;
  if (attempt->abandoned)
    {
      /* Someone stopped waiting while do_cleanup ran. */
      g_clear_error (&init_error);
      resume_pending (self);
      attempt_free (attempt);
      return;
    }

  priv->attempt = NULL;
  after_failed_attempt (self, init_error);
  g_clear_error (&init_error);
  resume_pending (self);
  attempt_free (attempt);
}

static void
do_initialize_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Attempt *attempt = user_data;
  ExoResource *self = attempt->self;
  ExoResourcePrivate *priv = PRIV (self);
  GError *error = NULL;
  gboolean ok;

  ok = g_task_propagate_boolean (G_TASK (result), &error);

  if (attempt->abandoned)
    {
      /* Nobody waits for this attempt any more: clean up what it made. */
      g_clear_error (&error);
      call_do_cleanup (self, attempt, zombie_cleanup_done);
      return;
    }

  clear_source (&priv->timeout_source);

  if (ok)
    {
      priv->attempt = NULL;
      priv->needs_cleanup = TRUE;
      priv->busy = FALSE;
      priv->zombie = FALSE;
      end_flight (self, NULL);
      attempt_free (attempt);
      resume_pending (self);
      return;
    }

  if (error == NULL)
    error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                         "initialize of '%s' failed", ID (priv));

  record_error (self, error);
  /* Clean up the half-made resource before anyone hears of the failure. */
  g_clear_error (&EXTRA (priv)->init_error);
  priv->extra->init_error = error;
  call_do_cleanup (self, attempt, failed_cleanup_done);
}

static void
call_do_initialize (ExoResource *self,
                    Attempt     *attempt)
{
  GTask *task = vfunc_init_task_new (self, attempt);

  EXO_RESOURCE_GET_CLASS (self)->do_initialize (self, task);
  g_object_unref (task);
}

static void
pre_cleanup_done (ExoResource *self,
                  Attempt     *attempt,
                  GError      *error)
{
  if (error != NULL)
    record_error (self, error);
  g_clear_error (&error);

  if (attempt->abandoned)
    {
      PRIV (self)->busy = FALSE;
      PRIV (self)->zombie = FALSE;
      resume_pending (self);
      attempt_free (attempt);
      return;
    }

  call_do_initialize (self, attempt);
}

static gboolean
attempt_timeout_cb (gpointer data)
{
  ExoResource *self = data;
  ExoResourcePrivate *priv = PRIV (self);
  g_autoptr(GError) error = NULL;

  if (priv->attempt == NULL && priv->start_pending)
    /* This attempt never started: an abandoned one still runs. */
    error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                         "initialize of '%s' timed out after %u ms (attempt %u): the previous "
                         "attempt has not returned since it was cancelled",
                         ID (priv), priv->init_timeout_ms > 0 ? priv->init_timeout_ms : zombie_wait_ms (self),
                         priv->flight_attempt);
  else
    error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                         "initialize of '%s' timed out after %u ms (attempt %u)",
                         ID (priv), priv->init_timeout_ms, priv->flight_attempt);

  g_clear_pointer (&priv->timeout_source, g_source_unref);
  priv->start_pending = FALSE;
  priv->attempt_counted = FALSE;
  abandon_attempt (self);
  record_error (self, error);
  after_failed_attempt (self, error);

  return G_SOURCE_REMOVE;
}

static void
start_attempt (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);
  Attempt *attempt;

  /* The attempt counts, and its clock runs, from now: also while it waits
   * for an abandoned attempt whose do_initialize has not returned yet.  A
   * do_initialize that hangs for good so makes every later attempt time out
   * on time, and the flight ends in `error` after the retries. */
  if (!priv->attempt_counted)
    {
      priv->attempt_counted = TRUE;
      priv->flight_attempt++;
      priv->attempts++;          /* notified if it fails: notify_attempts */
      if (priv->init_timeout_ms > 0 && priv->timeout_source == NULL)
        priv->timeout_source = add_timeout (self, priv->init_timeout_ms, attempt_timeout_cb, self);
      else if (priv->zombie && priv->timeout_source == NULL)
        /* no init-timeout, but an abandoned call that may never return:
         * waiting for it is bounded all the same */
        priv->timeout_source = add_timeout (self, zombie_wait_ms (self), attempt_timeout_cb, self);
    }

  if (priv->busy)
    {
      priv->start_pending = TRUE;
      return;
    }

  priv->start_pending = FALSE;
  priv->attempt_counted = FALSE;
  priv->busy = TRUE;

  attempt = attempt_new (self);
  priv->attempt = attempt;

  if (priv->needs_cleanup)
    call_do_cleanup (self, attempt, pre_cleanup_done);
  else
    call_do_initialize (self, attempt);
}

static void
final_cleanup_done (ExoResource *self,
                    Attempt     *attempt,
                    GError      *error)
{
  ExoResourcePrivate *priv = PRIV (self);

  priv->busy = FALSE;
  priv->zombie = FALSE;
  priv->cleaning = FALSE;
  exo_resource_transition (self, EXO_RESOURCE_STATE_CLOSED, error);
  flush_cleanup_waiters (self, error);
  g_clear_error (&error);
  resume_pending (self);
}

/* A group's members can be started by hand after the group failed or was
 * closed: its do_cleanup must run while any of them is not closed. */
static gboolean
holds_more (ExoResource *self)
{
  return EXO_IS_RESOURCE_GROUP (self) && _exo_resource_group_has_live_members (EXO_RESOURCE_GROUP (self));
}

static void
run_cleanup (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  priv->cleanup_pending = FALSE;
  clear_extra_source (priv, G_STRUCT_OFFSET (ExoResourceExtra, cleanup_wait_source));

  if (priv->needs_cleanup || holds_more (self))
    {
      priv->busy = TRUE;
      call_do_cleanup (self, NULL, final_cleanup_done);
    }
  else
    final_cleanup_done (self, NULL, NULL);
}

static void
resume_pending (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  if (priv->busy)
    return;
  if (priv->cleanup_pending)
    run_cleanup (self);
  else if (priv->start_pending)
    start_attempt (self);
}

/* --- initialize -------------------------------------------------------- */

static gboolean
waiter_cancelled_cb (GCancellable *cancellable,
                     gpointer      data)
{
  GTask *task = data;
  ExoResource *self = g_task_get_source_object (task);
  ExoResourcePrivate *priv = PRIV (self);
  g_autoptr(GError) error = NULL;
  ExoInitWaiter *prev = NULL;
  ExoInitWaiter *link = NULL;

  if (priv->init_waiters_tail != NULL)
    {
      ExoInitWaiter *tail = priv->init_waiters_tail;

      for (prev = tail, link = tail->next; ; prev = link, link = link->next)
        {
          if (link->func == NULL && ((Waiter *) link)->task == task)
            break;
          if (link == tail)
            {
              link = NULL;
              break;
            }
        }
    }
  if (link == NULL)
    return G_SOURCE_REMOVE;

  {
    Waiter *waiter = (Waiter *) link;

    if (link->next == link)
      priv->init_waiters_tail = NULL;
    else
      {
        prev->next = link->next;
        if (priv->init_waiters_tail == link)
          priv->init_waiters_tail = prev;
      }
    g_clear_pointer (&waiter->cancel_source, g_source_unref);
    error = g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                         "initialize of '%s' was cancelled", ID (priv));
    g_task_return_error (waiter->task, g_error_copy (error));
    /* keep the source alive until dispatch returns: it is destroyed for us */
    g_clear_object (&waiter->task);
    g_free (waiter);
  }

  /* The last caller is gone: stop the attempt. */
  if (priv->in_flight && priv->init_waiters_tail == NULL)
    {
      g_object_ref (self);
      abandon_attempt (self);
      record_error (self, error);
      end_flight (self, error);
      g_object_unref (self);
    }

  return G_SOURCE_REMOVE;
}

static void
add_init_waiter (ExoResource *self,
                 GTask       *task)
{
  ExoResourcePrivate *priv = PRIV (self);
  Waiter *waiter = g_new0 (Waiter, 1);
  GCancellable *cancellable = g_task_get_cancellable (task);

  waiter->task = task;
  if (cancellable != NULL)
    {
      waiter->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (waiter->cancel_source, (GSourceFunc) (void (*)(void)) waiter_cancelled_cb,
                             task, NULL);
      g_source_set_static_name (waiter->cancel_source, "[exo] initialize cancelled");
      g_source_attach (waiter->cancel_source, priv->context);
    }
  init_waiters_push (priv, &waiter->base);
}

static void start_flight (ExoResource *self);
static void exo_resource_real_initialize_async (ExoAsyncResource    *resource,
                                                GCancellable        *cancellable,
                                                GAsyncReadyCallback  callback,
                                                gpointer             user_data);

static void
initialize_internal (ExoResource         *self,
                     gboolean             force,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data,
                     gpointer             source_tag)
{
  ExoResourcePrivate *priv = PRIV (self);
  GTask *task;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, source_tag);

  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }

  if (priv->cleaning || priv->state == EXO_RESOURCE_STATE_CLOSING)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED,
                               "resource '%s' is closing", ID (priv));
      g_object_unref (task);
      return;
    }

  if (!priv->in_flight && !force && exo_resource_state_is_usable (priv->state))
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }

  add_init_waiter (self, task);
  start_flight (self);
}

/* After a waiter was queued: the flight starts, unless it flies already. */
static void
start_flight (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  if (priv->in_flight)
    return;

  priv->in_flight = TRUE;
  priv->flight_attempt = 0;
  g_object_ref (self);
  exo_resource_transition (self, EXO_RESOURCE_STATE_INITIALIZING, NULL);
  /* a handler may have cleaned it up from inside that emission */
  if (priv->in_flight && priv->state == EXO_RESOURCE_STATE_INITIALIZING)
    start_attempt (self);
  g_object_unref (self);
}

gboolean
_exo_resource_initialize_internal (ExoResource       *self,
                                   ExoInitWaiter     *waiter,
                                   ExoInitWaiterFunc  func)
{
  ExoResourcePrivate *priv = PRIV (self);

  if (EXO_ASYNC_RESOURCE_GET_IFACE (self)->initialize_async != exo_resource_real_initialize_async)
    return FALSE;

  waiter->func = func;
  waiter->created = g_get_monotonic_time ();

  /* initialize_internal() without a cancellable */
  if (priv->cleaning || priv->state == EXO_RESOURCE_STATE_CLOSING)
    {
      g_autoptr(GError) error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED,
                                             "resource '%s' is closing", ID (priv));
      complete_init_waiter (self, waiter, error);
      return TRUE;
    }

  if (!priv->in_flight && exo_resource_state_is_usable (priv->state))
    {
      complete_init_waiter (self, waiter, NULL);
      return TRUE;
    }

  init_waiters_push (priv, waiter);
  start_flight (self);
  return TRUE;
}

static void
exo_resource_real_initialize_async (ExoAsyncResource    *resource,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  initialize_internal (EXO_RESOURCE (resource), FALSE, cancellable, callback, user_data,
                       exo_resource_initialize_async);
}

static gboolean
exo_resource_real_task_finish (ExoAsyncResource  *resource,
                               GAsyncResult      *result,
                               GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, resource), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * exo_resource_initialize_async:
 * @self: a resource
 * @cancellable: (nullable): cancels this caller's wait; when every caller
 *   has cancelled, the attempt itself is cancelled
 * @callback: called with the result of the attempt
 * @user_data: data for @callback
 *
 * Initializes @self; see exo_async_resource_initialize_async().  A usable
 * resource completes at once.  From `error` or `closed` it initializes again.
 */
void
exo_resource_initialize_async (ExoResource         *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_return_if_fail (EXO_IS_RESOURCE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  exo_async_resource_initialize_async (EXO_ASYNC_RESOURCE (self), cancellable, callback, user_data);
}

/**
 * exo_resource_initialize_finish:
 * @self: a resource
 * @result: the result given to the callback
 * @error: return location for the error of the attempt
 *
 * Returns: %TRUE if @self is now usable
 */
gboolean
exo_resource_initialize_finish (ExoResource   *self,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), FALSE);

  return exo_async_resource_initialize_finish (EXO_ASYNC_RESOURCE (self), result, error);
}

/* Re-initialize even from a usable state (recovery). */
void
_exo_resource_reinitialize_async (ExoResource         *self,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  initialize_internal (self, TRUE, NULL, callback, user_data, _exo_resource_reinitialize_async);
}

/* --- cleanup ----------------------------------------------------------- */

static guint
zombie_wait_ms (ExoResource *self)
{
  guint timeout = PRIV (self)->init_timeout_ms;

  return timeout > 0 ? MAX (timeout, 100) : 5000;
}

/* The cleanup stops waiting for an abandoned do_initialize that has not
 * returned: the resource ends `closed`, with an error that says so.  It
 * stays busy: when the call returns at last, what it made is cleaned up
 * (do_cleanup), and a later initialize waits for that, its own clock
 * running. */
static gboolean
cleanup_wait_cb (gpointer data)
{
  ExoResource *self = data;
  ExoResourcePrivate *priv = PRIV (self);
  g_autoptr(GError) error = NULL;

  g_clear_pointer (&priv->extra->cleanup_wait_source, g_source_unref);
  if (!priv->cleanup_pending || !priv->busy)
    return G_SOURCE_REMOVE;

  error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                       "cleanup of '%s' stopped waiting after %u ms for a do_initialize that "
                       "has not returned since it was cancelled; what it made is cleaned up "
                       "when it returns", ID (priv), zombie_wait_ms (self));
  g_object_ref (self);
  priv->cleanup_pending = FALSE;
  priv->cleaning = FALSE;
  exo_resource_transition (self, EXO_RESOURCE_STATE_CLOSED, error);
  flush_cleanup_waiters (self, error);
  g_object_unref (self);
  return G_SOURCE_REMOVE;
}

static void
exo_resource_real_cleanup_async (ExoAsyncResource    *resource,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  ExoResource *self = EXO_RESOURCE (resource);
  ExoResourcePrivate *priv = PRIV (self);
  GTask *task;

  task = g_task_new (self, NULL, callback, user_data);
  g_task_set_source_tag (task, exo_resource_cleanup_async);

  if (priv->state == EXO_RESOURCE_STATE_CLOSED && (!priv->busy || priv->zombie) && !priv->cleaning &&
      !holds_more (self))
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }

  priv->cleanup_waiters = g_slist_prepend (priv->cleanup_waiters, task);
  if (priv->cleaning)
    return;

  priv->cleaning = TRUE;
  g_object_ref (self);

  if (priv->in_flight)
    {
      g_autoptr(GError) error = NULL;

      error = g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           "initialize of '%s' was cancelled: cleanup requested", ID (priv));
      abandon_attempt (self);
      priv->in_flight = FALSE;
      priv->start_pending = FALSE;
      priv->attempt_counted = FALSE;
      clear_extra_source (priv, G_STRUCT_OFFSET (ExoResourceExtra, retry_source));
      exo_resource_transition (self, EXO_RESOURCE_STATE_CLOSING, NULL);
      flush_init_waiters (self, error);
    }
  else
    exo_resource_transition (self, EXO_RESOURCE_STATE_CLOSING, NULL);

  if (priv->busy)
    {
      priv->cleanup_pending = TRUE;
      /* An abandoned do_initialize that never returns must not keep the
       * resource `closing` for good (a Stop or Restart would hang). */
      if (priv->zombie && EXTRA_GET (priv, cleanup_wait_source) == NULL)
        EXTRA (priv)->cleanup_wait_source = add_timeout (self, zombie_wait_ms (self),
                                                         cleanup_wait_cb, self);
    }
  else
    run_cleanup (self);

  g_object_unref (self);
}

/**
 * exo_resource_cleanup_async:
 * @self: a resource
 * @cancellable: (nullable): ignored: cleanup always runs to the end
 * @callback: called when @self is `closed`
 * @user_data: data for @callback
 *
 * Releases everything @self holds.  From any state this ends in `closed`,
 * even when #ExoResourceClass.do_cleanup fails; that error is kept as the
 * last error and given to @callback.  A running initialize is cancelled and
 * its callers get %G_IO_ERROR_CANCELLED.  Concurrent callers share one
 * cleanup.
 */
void
exo_resource_cleanup_async (ExoResource         *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_return_if_fail (EXO_IS_RESOURCE (self));

  exo_async_resource_cleanup_async (EXO_ASYNC_RESOURCE (self), cancellable, callback, user_data);
}

gboolean
exo_resource_cleanup_finish (ExoResource   *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), FALSE);

  return exo_async_resource_cleanup_finish (EXO_ASYNC_RESOURCE (self), result, error);
}

/* --- health ------------------------------------------------------------ */

/* The report functions may be called from any thread (a worker that found
 * the connection dead): the report is applied in the resource's context, so
 * that every transition and emission happens on its own thread. */
static gboolean
on_foreign_thread (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  return g_thread_self () != priv->thread && !g_main_context_is_owner (priv->context);
}

typedef struct
{
  ExoResource *self;
  GError      *error;
  gboolean     health;
  gboolean     healthy;
} ForwardedReport;

static gboolean
forwarded_report_cb (gpointer data)
{
  ForwardedReport *report = data;

  if (report->health)
    exo_resource_report_health (report->self, report->healthy, report->error);
  else
    exo_resource_report_error (report->self, report->error);
  return G_SOURCE_REMOVE;
}

static void
forwarded_report_free (gpointer data)
{
  ForwardedReport *report = data;

  g_object_unref (report->self);
  g_clear_error (&report->error);
  g_free (report);
}

static void
forward_report (ExoResource  *self,
                gboolean      health,
                gboolean      healthy,
                const GError *error)
{
  ForwardedReport *report = g_new0 (ForwardedReport, 1);

  report->self = g_object_ref (self);
  report->error = error != NULL ? g_error_copy (error) : NULL;
  report->health = health;
  report->healthy = healthy;
  GSource *source = g_idle_source_new ();

  /* not g_main_context_invoke: it runs the function right here when this
   * thread can acquire the context (nobody iterates it at the moment) */
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, forwarded_report_cb, report, forwarded_report_free);
  g_source_set_static_name (source, "[exo] report from another thread");
  g_source_attach (source, PRIV (self)->context);
  g_source_unref (source);
}

/**
 * exo_resource_report_health:
 * @self: a resource
 * @healthy: the outcome of a check
 * @error: (nullable): why it is unhealthy
 *
 * Applies the outcome of one health check, with hysteresis (as Consul's
 * and Envoy's health checks do): every failed check is recorded (last error,
 * error count); `ready` becomes `degraded` after
 * #ExoResource:unhealthy-threshold consecutive failed checks, and a
 * resource degraded by its own checks becomes `ready` again after
 * #ExoResource:healthy-threshold consecutive passes.  A resource that its
 * supervisor keeps `degraded` (because a dependency is down) records its
 * checks but does not change state.  Other states are left alone.
 */
void
exo_resource_report_health (ExoResource  *self,
                            gboolean      healthy,
                            const GError *error)
{
  ExoResourcePrivate *priv;

  g_return_if_fail (EXO_IS_RESOURCE (self));
  priv = PRIV (self);

  if (G_UNLIKELY (on_foreign_thread (self)))
    {
      forward_report (self, TRUE, healthy, error);
      return;
    }

  if (priv->in_flight || priv->cleaning || !exo_resource_state_is_usable (priv->state))
    return;

  if (healthy)
    {
      priv->health_fails = 0;
      if (priv->health_passes < G_MAXUINT)
        priv->health_passes++;
      if (priv->state == EXO_RESOURCE_STATE_DEGRADED && !priv->held &&
          (!priv->degraded_by_health || priv->health_passes >= priv->healthy_threshold))
        exo_resource_transition (self, EXO_RESOURCE_STATE_READY, NULL);
      return;
    }

  {
    g_autoptr(GError) fallback = NULL;

    if (error == NULL)
      error = fallback = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                                      "health check of '%s' failed", ID (priv));
    priv->health_passes = 0;
    if (priv->health_fails < G_MAXUINT)
      priv->health_fails++;
    if (priv->state == EXO_RESOURCE_STATE_READY && !priv->held &&
        priv->health_fails >= priv->unhealthy_threshold)
      {
        /* set first: state-changed handlers ask why it is degraded; the
         * error is recorded with the transition (told once) */
        priv->degraded_by_health = TRUE;
        exo_resource_transition (self, EXO_RESOURCE_STATE_DEGRADED, error);
        return;
      }
    record_error (self, error);
    if (priv->state == EXO_RESOURCE_STATE_DEGRADED && !priv->held)
      priv->degraded_by_health = TRUE;
  }
}

/* Health thresholds (ExoManagedResource's properties live here because the
 * base class applies the outcomes). */
void
_exo_resource_set_health_thresholds (ExoResource *self,
                                     guint        unhealthy,
                                     guint        healthy)
{
  ExoResourcePrivate *priv = PRIV (self);

  priv->unhealthy_threshold = MAX (unhealthy, 1);
  priv->healthy_threshold = MAX (healthy, 1);
}

void
_exo_resource_get_health_thresholds (ExoResource *self,
                                     guint       *unhealthy,
                                     guint       *healthy)
{
  ExoResourcePrivate *priv = PRIV (self);

  *unhealthy = priv->unhealthy_threshold;
  *healthy = priv->healthy_threshold;
}

/* TRUE while @self is degraded by its own failing health checks (not by a
 * supervisor, not only by a dependency). */
gboolean
_exo_resource_is_degraded_by_health (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  return priv->state == EXO_RESOURCE_STATE_DEGRADED && priv->degraded_by_health && !priv->held;
}

/* For a supervisor: keep @self `degraded` because of @error (a dependency
 * is down) whatever its own checks say, or let it go (@error = NULL): then a
 * resource whose own checks did not fail is `ready` again at once. */
void
_exo_resource_hold_degraded (ExoResource  *self,
                             const GError *error)
{
  ExoResourcePrivate *priv = PRIV (self);

  if (error != NULL)
    {
      if (priv->state != EXO_RESOURCE_STATE_READY && priv->state != EXO_RESOURCE_STATE_DEGRADED)
        return;
      priv->held = TRUE;
      if (priv->state == EXO_RESOURCE_STATE_READY)
        exo_resource_transition (self, EXO_RESOURCE_STATE_DEGRADED, error);
      return;
    }

  if (!priv->held)
    return;
  priv->held = FALSE;
  if (priv->state == EXO_RESOURCE_STATE_DEGRADED && priv->health_fails == 0)
    exo_resource_transition (self, EXO_RESOURCE_STATE_READY, NULL);
  else if (priv->state == EXO_RESOURCE_STATE_DEGRADED && priv->health_fails > 0)
    priv->degraded_by_health = TRUE;
}

gboolean
_exo_resource_is_held (ExoResource *self)
{
  return PRIV (self)->held;
}

void
_exo_resource_set_managed_hook (ExoResource *self)
{
  PRIV (self)->managed_hook = TRUE;
}

gpointer
_exo_resource_get_member (ExoResource *self)
{
  return PRIV (self)->member;
}

void
_exo_resource_set_member (ExoResource *self,
                          gpointer     member)
{
  ExoResourcePrivate *priv = PRIV (self);

  priv->member = member;
  priv->member_hook = member != NULL && !priv->disposed;
}

/**
 * exo_resource_report_error:
 * @self: a resource
 * @error: what went wrong
 *
 * Tells @self that it failed while usable (a connection dropped, a child
 * died): `ready` or `degraded` becomes `error`.  A managed resource then
 * recovers by itself.  May be called from any thread: from another thread
 * the report is applied in @self's main context.
 */
void
exo_resource_report_error (ExoResource  *self,
                           const GError *error)
{
  ExoResourcePrivate *priv;

  g_return_if_fail (EXO_IS_RESOURCE (self));
  g_return_if_fail (error != NULL);
  priv = PRIV (self);

  if (G_UNLIKELY (on_foreign_thread (self)))
    {
      forward_report (self, FALSE, FALSE, error);
      return;
    }

  if (priv->in_flight || priv->cleaning || !exo_resource_state_is_usable (priv->state))
    {
      record_error (self, error);
      return;
    }

  _exo_resource_set_result (self, EXO_RESOURCE_RESULT_FAILED);
  exo_resource_transition (self, EXO_RESOURCE_STATE_ERROR, error);
}

static void
do_check_health_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExoResource *self = EXO_RESOURCE (source);
  GError *error = NULL;
  gboolean healthy;

  healthy = g_task_propagate_boolean (G_TASK (result), &error);

  /* Cancelled by whoever asked for the check: no outcome.  Cancelled by
   * the implementation itself (its own timeout gave up on a backend that
   * accepts and never answers): a failed check. */
  if (error != NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
      g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      g_task_return_error (task, error);
      return;
    }

  if (!healthy && error == NULL)
    error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                         "health check of '%s' failed", ID (PRIV (self)));

  exo_resource_report_health (self, healthy, error);

  if (healthy)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
exo_resource_real_check_health_async (ExoAsyncResource    *resource,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  ExoResource *self = EXO_RESOURCE (resource);
  ExoResourcePrivate *priv = PRIV (self);
  ExoResourceClass *klass = EXO_RESOURCE_GET_CLASS (self);
  GTask *task;
  GTask *inner;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, exo_resource_check_health_async);

  if (!exo_resource_state_is_usable (priv->state) || priv->in_flight || priv->cleaning)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                               "resource '%s' is %s", ID (priv),
                               exo_resource_state_to_string (priv->state));
      g_object_unref (task);
      return;
    }

  if (klass->do_check_health == NULL)
    {
      exo_resource_report_health (self, TRUE, NULL);
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }

  inner = _exo_resource_vfunc_task_new (self, cancellable, do_check_health_cb, task,
                                        exo_resource_real_check_health_async, "do_check_health");
  klass->do_check_health (self, inner);
  g_object_unref (inner);
}

/**
 * exo_resource_check_health_async:
 * @self: a resource
 * @cancellable: (nullable): a cancellable
 * @callback: called with the outcome
 * @user_data: data for @callback
 *
 * Runs #ExoResourceClass.do_check_health and applies the outcome (see
 * exo_resource_report_health()).  A resource that is not usable is unhealthy.
 */
void
exo_resource_check_health_async (ExoResource         *self,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_return_if_fail (EXO_IS_RESOURCE (self));

  exo_async_resource_check_health_async (EXO_ASYNC_RESOURCE (self), cancellable, callback, user_data);
}

/**
 * exo_resource_check_health_finish:
 * @self: a resource
 * @result: the result given to the callback
 * @error: return location for why @self is unhealthy
 *
 * Returns: %TRUE if healthy
 */
gboolean
exo_resource_check_health_finish (ExoResource   *self,
                                  GAsyncResult  *result,
                                  GError       **error)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), FALSE);

  return exo_async_resource_check_health_finish (EXO_ASYNC_RESOURCE (self), result, error);
}

/**
 * exo_resource_ensure_ready_async:
 * @self: a resource
 * @cancellable: (nullable): a cancellable
 * @callback: called when @self is usable or cannot be made so
 * @user_data: data for @callback
 *
 * See exo_async_resource_ensure_ready_async().
 */
void
exo_resource_ensure_ready_async (ExoResource         *self,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_return_if_fail (EXO_IS_RESOURCE (self));

  exo_async_resource_ensure_ready_async (EXO_ASYNC_RESOURCE (self), cancellable, callback, user_data);
}

gboolean
exo_resource_ensure_ready_finish (ExoResource   *self,
                                  GAsyncResult  *result,
                                  GError       **error)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), FALSE);

  return exo_async_resource_ensure_ready_finish (EXO_ASYNC_RESOURCE (self), result, error);
}

/* --- restart ----------------------------------------------------------- */

static void
restart_init_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (exo_resource_initialize_finish (EXO_RESOURCE (source), result, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
restart_cleanup_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;

  /* A cleanup error is recorded on the resource; the restart goes on. */
  exo_resource_cleanup_finish (EXO_RESOURCE (source), result, NULL);
  exo_resource_initialize_async (EXO_RESOURCE (source), g_task_get_cancellable (task),
                                 restart_init_cb, g_object_ref (task));
}

/**
 * exo_resource_restart_async:
 * @self: a resource
 * @cancellable: (nullable): cancels the initialize half
 * @callback: called when @self is initialized again, or failed to be
 * @user_data: data for @callback
 *
 * Cleans @self up, then initializes it again.
 */
void
exo_resource_restart_async (ExoResource         *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (EXO_IS_RESOURCE (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, exo_resource_restart_async);
  exo_resource_cleanup_async (self, NULL, restart_cleanup_cb, task);
}

gboolean
exo_resource_restart_finish (ExoResource   *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* --- reset, metrics, accessors ---------------------------------------- */

/* The base class has no metrics of its own; it is here so that a subclass
 * can chain up unconditionally, as the class documentation says. */
static void
exo_resource_real_collect_metrics (ExoResource  *self,
                                   GVariantDict *metrics)
{
}

static void
exo_resource_real_reset (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  gboolean had_error = EXTRA_GET (priv, last_error) != NULL;

  if (priv->extra != NULL)
    g_clear_error (&priv->extra->last_error);
  if (had_error)
    notify_watched (self, PROP_LAST_ERROR);
  if (priv->error_count != 0)
    {
      priv->error_count = 0;
      notify_watched (self, PROP_ERROR_COUNT);
    }
  set_attempts (self, 0);
  if (priv->result == EXO_RESOURCE_RESULT_START_LIMIT_HIT)
    _exo_resource_set_result (self, EXO_RESOURCE_RESULT_FAILED);
}

/**
 * exo_resource_reset:
 * @self: a resource
 *
 * Forgets past failures: the last error, the error and attempt counters and
 * (for managed resources) the restart limit, like `systemctl reset-failed`.
 * A managed resource held in `error` by its restart limit starts recovering.
 */
void
exo_resource_reset (ExoResource *self)
{
  g_return_if_fail (EXO_IS_RESOURCE (self));

  EXO_RESOURCE_GET_CLASS (self)->reset (self);
}

/**
 * exo_resource_check_settings:
 * @self: a resource, with its properties set
 * @setting: (out) (optional) (nullable) (transfer full): the name of the
 *   property at fault, or %NULL when the error names none
 * @error: return location for an error
 *
 * Runs #ExoResourceClass.check_settings: checks the settings that can be
 * checked without side effects, as initialize would, without initializing
 * anything.  exo_config_build() calls it on every resource it makes, so a
 * config that initialize would refuse is refused when it is loaded (and by
 * `exo-node --check-config`).  A type without the vfunc accepts any
 * settings here.
 *
 * Returns: %TRUE when the settings are usable (or cannot be checked
 *   before initialize)
 *
 * Since: 0.3
 */
gboolean
exo_resource_check_settings (ExoResource  *self,
                             char        **setting,
                             GError      **error)
{
  ExoResourceClass *klass;
  g_autofree char *at_fault = NULL;
  g_autoptr(GError) local_error = NULL;

  if (setting != NULL)
    *setting = NULL;
  g_return_val_if_fail (EXO_IS_RESOURCE (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = EXO_RESOURCE_GET_CLASS (self);
  if (klass->check_settings == NULL ||
      klass->check_settings (self, &at_fault, &local_error))
    {
      /* a vfunc that succeeds names nothing */
      g_warn_if_fail (local_error == NULL);
      return TRUE;
    }

  if (local_error == NULL)
    local_error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                               "the settings of '%s' are not usable", ID (PRIV (self)));
  g_propagate_error (error, g_steal_pointer (&local_error));
  if (setting != NULL)
    *setting = g_steal_pointer (&at_fault);
  return FALSE;
}

/* check_settings (0.3) took a padding slot: the class keeps its size. */
G_STATIC_ASSERT (sizeof (ExoResourceClass) ==
                 sizeof (GObjectClass) + 18 * sizeof (gpointer));

/**
 * exo_resource_get_metrics:
 * @self: a resource
 *
 * Returns: (transfer full): the type-specific metrics as an `a{sv}` dictionary
 */
GVariant *
exo_resource_get_metrics (ExoResource *self)
{
  GVariantDict dict;

  g_return_val_if_fail (EXO_IS_RESOURCE (self), NULL);

  g_variant_dict_init (&dict, NULL);
  if (EXO_RESOURCE_GET_CLASS (self)->collect_metrics != NULL)
    EXO_RESOURCE_GET_CLASS (self)->collect_metrics (self, &dict);
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

const char *
exo_resource_get_id (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), NULL);
  return ID (PRIV (self));
}

const char *
exo_resource_get_resource_type (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), NULL);
  return PRIV (self)->resource_type;
}

const char *
exo_resource_get_display_name (ExoResource *self)
{
  ExoResourcePrivate *priv;

  g_return_val_if_fail (EXO_IS_RESOURCE (self), NULL);
  priv = PRIV (self);
  return priv->display_name != NULL ? priv->display_name : ID (priv);
}

void
exo_resource_set_display_name (ExoResource *self,
                               const char  *display_name)
{
  ExoResourcePrivate *priv;

  g_return_if_fail (EXO_IS_RESOURCE (self));
  priv = PRIV (self);

  if (g_strcmp0 (priv->display_name, display_name) == 0)
    return;
  g_free (priv->display_name);
  priv->display_name = g_strdup (display_name);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DISPLAY_NAME]);
}

ExoResourceState
exo_resource_get_state (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), EXO_RESOURCE_STATE_UNINITIALIZED);
  return PRIV (self)->state;
}

gboolean
exo_resource_is_usable (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), FALSE);
  return exo_resource_state_is_usable (PRIV (self)->state);
}

/**
 * exo_resource_is_healthy:
 * @self: a resource
 *
 * Returns: %TRUE when @self is `ready`
 */
gboolean
exo_resource_is_healthy (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), FALSE);
  return PRIV (self)->state == EXO_RESOURCE_STATE_READY;
}

/**
 * exo_resource_get_last_error:
 * @self: a resource
 *
 * Returns: (transfer none) (nullable): the last error recorded, or %NULL
 */
const GError *
exo_resource_get_last_error (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), NULL);
  return EXTRA_GET (PRIV (self), last_error);
}

guint
exo_resource_get_error_count (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), 0);
  return PRIV (self)->error_count;
}

/**
 * exo_resource_get_attempts:
 * @self: a resource
 *
 * Returns: initialize attempts since the last successful initialize (0 once
 *   it succeeds)
 */
guint
exo_resource_get_attempts (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), 0);
  return PRIV (self)->attempts;
}

/**
 * exo_resource_get_result:
 * @self: a resource
 *
 * Returns: why @self is where it is (see #ExoResourceResult)
 */
ExoResourceResult
exo_resource_get_result (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), EXO_RESOURCE_RESULT_SUCCESS);
  return PRIV (self)->result;
}

/**
 * exo_resource_get_state_changed_at:
 * @self: a resource
 *
 * Returns: the wall-clock time of the last transition in µs since the Unix
 *   epoch, 0 = never
 */
gint64
exo_resource_get_state_changed_at (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), 0);
  return PRIV (self)->state_changed_at;
}

/**
 * exo_resource_get_initialized_at:
 * @self: a resource
 *
 * Returns: when the last initialize succeeded, in µs since the Unix epoch,
 *   0 = never
 */
gint64
exo_resource_get_initialized_at (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), 0);
  return PRIV (self)->initialized_at;
}

guint
exo_resource_get_init_timeout (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), 0);
  return PRIV (self)->init_timeout_ms;
}

/**
 * exo_resource_set_init_timeout:
 * @self: a resource
 * @timeout_ms: the time one initialize attempt may take, 0 = unlimited
 *
 * An attempt that takes longer fails with %G_IO_ERROR_TIMED_OUT.
 */
void
exo_resource_set_init_timeout (ExoResource *self,
                               guint        timeout_ms)
{
  g_return_if_fail (EXO_IS_RESOURCE (self));

  if (PRIV (self)->init_timeout_ms == timeout_ms)
    return;
  PRIV (self)->init_timeout_ms = timeout_ms;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_INIT_TIMEOUT]);
}

/**
 * exo_resource_get_context:
 * @self: a resource
 *
 * Returns: (transfer none): the main context @self belongs to
 */
GMainContext *
exo_resource_get_context (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), NULL);
  return PRIV (self)->context;
}

GRand *
_exo_resource_get_rand (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  if (EXTRA (priv)->rand == NULL)
    priv->extra->rand = g_rand_new ();
  return priv->extra->rand;
}

void
_exo_resource_seed_rand (ExoResource *self,
                         guint32      seed)
{
  ExoResourcePrivate *priv = PRIV (self);

  g_clear_pointer (&EXTRA (priv)->rand, g_rand_free);
  priv->extra->rand = g_rand_new_with_seed (seed);
}

gboolean
_exo_resource_is_busy (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  return priv->busy || priv->in_flight || priv->cleaning;
}

/**
 * exo_resource_class_set_resource_type:
 * @klass: a resource class
 * @resource_type: the type name used in configs, e.g. `"udp-discovery"`
 *
 * Sets the default of #ExoAsyncResource:resource-type for instances of
 * @klass and its subclasses that do not set their own.
 */
void
exo_resource_class_set_resource_type (ExoResourceClass *klass,
                                      const char       *resource_type)
{
  g_return_if_fail (EXO_IS_RESOURCE_CLASS (klass));

  g_type_set_qdata (G_TYPE_FROM_CLASS (klass), resource_type_quark,
                    (gpointer) g_intern_string (resource_type));
}

static const char *
class_resource_type (GType type)
{
  for (; type != 0 && type != EXO_TYPE_RESOURCE; type = g_type_parent (type))
    {
      const char *name = g_type_get_qdata (type, resource_type_quark);
      if (name != NULL)
        return name;
    }
  return NULL;
}

/**
 * exo_task_return_result:
 * @task: the task given to a `do_*` vfunc
 * @ok: whether it succeeded
 * @error: (transfer full) (nullable): the error when it did not
 *
 * Completes @task from a synchronous implementation:
 * `exo_task_return_result (task, open_thing (self, &error), error);`
 */
void
exo_task_return_result (GTask    *task,
                        gboolean  ok,
                        GError   *error)
{
  g_return_if_fail (G_IS_TASK (task));

  if (ok)
    {
      g_clear_error (&error);
      g_task_return_boolean (task, TRUE);
    }
  else if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                             "operation failed");
}

/* --- tasks given to do_* vfuncs ----------------------------------------- */

/* A vfunc must complete its task, at once or later (keeping a reference to it
 * meanwhile).  An implementation that does neither lets the task be finalized
 * uncompleted, and whoever waits for it would wait forever: a C
 * implementation that forgot, or a binding's whose code failed — PyGObject
 * prints an exception raised in a vfunc and returns without completing the
 * task.  So each such task is watched: finalized before its callback ran, it
 * is replaced by one that completes with an error, in the resource's main
 * context, and the callback sees a failed attempt. */

typedef struct
{
  GAsyncReadyCallback  callback;
  gpointer             user_data;
  gpointer             source_tag;
  const char          *vfunc;   /* static */
  ExoResource         *self;    /* owned */
} VfuncWatch;

/* The watch rides on the task as qdata (one GData; a weak ref would cost a
 * second allocation): the task's own callback takes it off, so that its
 * destroy notify runs only for a task finalized before its callback ran. */
static GQuark vfunc_watch_quark;

static void
vfunc_watch_free (gpointer data)
{
  VfuncWatch *watch = data;

  g_clear_object (&watch->self);
  g_free (watch);
}

static gboolean
vfunc_task_dropped_cb (gpointer data)
{
  VfuncWatch *watch = data;
  ExoResourcePrivate *priv = PRIV (watch->self);
  GTask *task;

  g_main_context_push_thread_default (priv->context);
  task = g_task_new (watch->self, NULL, watch->callback, watch->user_data);
  g_task_set_source_tag (task, watch->source_tag);
  g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                           "%s of '%s' returned without completing its task and without "
                           "keeping a reference to it", watch->vfunc, ID (priv));
  g_object_unref (task);
  g_main_context_pop_thread_default (priv->context);
  return G_SOURCE_REMOVE;
}

/* The task is finalized and its callback never ran. */
static void
vfunc_task_gone (gpointer data)
{
  VfuncWatch *watch = data;
  GSource *source;

  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, vfunc_task_dropped_cb, watch, vfunc_watch_free);
  g_source_set_static_name (source, "[exo] vfunc task dropped");
  g_source_attach (source, PRIV (watch->self)->context);
  g_source_unref (source);
}

static void
vfunc_task_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  VfuncWatch *watch = data;

  g_object_steal_qdata (G_OBJECT (result), vfunc_watch_quark);
  watch->callback (source, result, watch->user_data);
  vfunc_watch_free (watch);
}

/* The task of do_initialize is watched the same way, with its attempt as
 * the watch (it has all a watch needs): no allocation of its own. */
static void do_initialize_cb (GObject      *source,
                              GAsyncResult *result,
                              gpointer      user_data);
static void call_do_initialize (ExoResource *self,
                                Attempt     *attempt);

static void
init_task_gone (gpointer data)
{
  Attempt *attempt = data;
  VfuncWatch *watch = g_new (VfuncWatch, 1);

  watch->callback = do_initialize_cb;
  watch->user_data = attempt;
  watch->source_tag = call_do_initialize;
  watch->vfunc = "do_initialize";
  watch->self = g_object_ref (attempt->self);
  vfunc_task_gone (watch);
}

static void
init_task_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  g_object_steal_qdata (G_OBJECT (result), vfunc_watch_quark);
  do_initialize_cb (source, result, data);
}

static GTask *
vfunc_init_task_new (ExoResource *self,
                     Attempt     *attempt)
{
  GTask *task = g_task_new (self, attempt->cancellable, init_task_cb, attempt);

  (g_task_set_source_tag) (task, call_do_initialize);
#if GLIB_CHECK_VERSION (2, 76, 0)
  g_task_set_static_name (task, "do_initialize");
#endif
  /* the attempt lives until the task's callback ran (or the error that
   * stands for it, when the task is dropped) */
  g_object_set_qdata_full (G_OBJECT (task), vfunc_watch_quark, attempt, init_task_gone);
  return task;
}

/* g_task_new() + g_task_set_source_tag() for the task given to a do_* vfunc
 * (@vfunc, a static string, names it in the error). */
GTask *
_exo_resource_vfunc_task_new (ExoResource         *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data,
                              gpointer             source_tag,
                              const char          *vfunc)
{
  VfuncWatch *watch = g_new (VfuncWatch, 1);
  GTask *task;

  watch->callback = callback;
  watch->user_data = user_data;
  watch->source_tag = source_tag;
  watch->vfunc = vfunc;
  watch->self = g_object_ref (self);

  task = g_task_new (self, cancellable, vfunc_task_cb, watch);
  /* Not the g_task_set_source_tag() macro: before GLib 2.76 it names the
   * task with a copy of the string "source_tag", and GTask copies the name
   * again to the source that completes the task (two allocations per
   * do_initialize of every resource). */
  (g_task_set_source_tag) (task, source_tag);
#if GLIB_CHECK_VERSION (2, 76, 0)
  g_task_set_static_name (task, vfunc);
#endif
  g_object_set_qdata_full (G_OBJECT (task), vfunc_watch_quark, watch, vfunc_task_gone);
  return task;
}

/* --- GObject ----------------------------------------------------------- */

static void
exo_resource_real_do_nothing (ExoResource *self,
                              GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
exo_resource_constructed (GObject *object)
{
  ExoResource *self = EXO_RESOURCE (object);
  ExoResourcePrivate *priv = PRIV (self);
  static gint counter;

  G_OBJECT_CLASS (exo_resource_parent_class)->constructed (object);

  if (priv->resource_type == NULL)
    {
      priv->resource_type = class_resource_type (G_OBJECT_TYPE (object));
      if (priv->resource_type == NULL)
        priv->resource_type = G_OBJECT_TYPE_NAME (object);
    }

  if (ID (priv) == NULL || ID (priv)[0] == '\0')
    {
      g_autofree char *made = g_strdup_printf ("%s-%d", priv->resource_type,
                                               g_atomic_int_add (&counter, 1) + 1);

      set_id (priv, made);
    }

  _exo_registry_add (self);
  priv->registered = TRUE;
}

static void
exo_resource_dispose (GObject *object)
{
  ExoResource *self = EXO_RESOURCE (object);
  ExoResourcePrivate *priv = PRIV (self);

  if (priv->registered)
    {
      priv->registered = FALSE;
      _exo_registry_remove (self);
    }

  clear_source (&priv->timeout_source);
  clear_extra_source (priv, G_STRUCT_OFFSET (ExoResourceExtra, retry_source));
  clear_extra_source (priv, G_STRUCT_OFFSET (ExoResourceExtra, cleanup_wait_source));

  G_OBJECT_CLASS (exo_resource_parent_class)->dispose (object);

  /* GObject's dispose destroyed the signal handlers: the hooks that stand
   * for handlers go with them. */
  priv->managed_hook = FALSE;
  priv->member_hook = FALSE;
  priv->disposed = TRUE;
}

static void
exo_resource_finalize (GObject *object)
{
  ExoResource *self = EXO_RESOURCE (object);
  ExoResourcePrivate *priv = PRIV (self);

  g_assert (priv->init_waiters_tail == NULL);
  g_assert (priv->cleanup_waiters == NULL);

  if (!priv->id_inline)
    g_clear_pointer (&priv->id.ptr, g_free);
  g_clear_pointer (&priv->display_name, g_free);
  if (priv->extra != NULL)
    {
      g_clear_pointer (&priv->extra->rand, g_rand_free);
      g_clear_pointer (&priv->extra->pending_emissions, g_array_unref);
      g_clear_error (&priv->extra->last_error);
      g_clear_error (&priv->extra->init_error);
      g_clear_pointer (&priv->extra, g_free);
    }
  g_clear_pointer (&priv->context, g_main_context_unref);

  G_OBJECT_CLASS (exo_resource_parent_class)->finalize (object);
}

static void
exo_resource_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  ExoResource *self = EXO_RESOURCE (object);
  ExoResourcePrivate *priv = PRIV (self);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_string (value, ID (priv));
      break;
    case PROP_RESOURCE_TYPE:
      g_value_set_string (value, priv->resource_type);
      break;
    case PROP_DISPLAY_NAME:
      g_value_set_string (value, exo_resource_get_display_name (self));
      break;
    case PROP_STATE:
      g_value_set_enum (value, priv->state);
      break;
    case PROP_INIT_TIMEOUT:
      g_value_set_uint (value, priv->init_timeout_ms);
      break;
    case PROP_ERROR_COUNT:
      g_value_set_uint (value, priv->error_count);
      break;
    case PROP_ATTEMPTS:
      g_value_set_uint (value, priv->attempts);
      break;
    case PROP_LAST_ERROR:
      g_value_set_boxed (value, EXTRA_GET (priv, last_error));
      break;
    case PROP_RESULT:
      g_value_set_enum (value, priv->result);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_resource_set_property (GObject      *object,
                           guint         prop_id,
                           const GValue *value,
                           GParamSpec   *pspec)
{
  ExoResource *self = EXO_RESOURCE (object);
  ExoResourcePrivate *priv = PRIV (self);

  switch (prop_id)
    {
    case PROP_ID:
      set_id (priv, g_value_get_string (value));
      break;
    case PROP_RESOURCE_TYPE:
      if (g_value_get_string (value) != NULL)
        priv->resource_type = g_intern_string (g_value_get_string (value));
      break;
    case PROP_DISPLAY_NAME:
      exo_resource_set_display_name (self, g_value_get_string (value));
      break;
    case PROP_INIT_TIMEOUT:
      exo_resource_set_init_timeout (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_resource_async_resource_init (ExoAsyncResourceInterface *iface)
{
  iface->initialize_async = exo_resource_real_initialize_async;
  iface->initialize_finish = exo_resource_real_task_finish;
  iface->cleanup_async = exo_resource_real_cleanup_async;
  iface->cleanup_finish = exo_resource_real_task_finish;
  iface->check_health_async = exo_resource_real_check_health_async;
  iface->check_health_finish = exo_resource_real_task_finish;
}

static void
exo_resource_class_init (ExoResourceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = exo_resource_constructed;
  object_class->dispose = exo_resource_dispose;
  object_class->finalize = exo_resource_finalize;
  object_class->get_property = exo_resource_get_property;
  object_class->set_property = exo_resource_set_property;

  klass->do_initialize = exo_resource_real_do_nothing;
  klass->do_cleanup = exo_resource_real_do_nothing;
  klass->collect_metrics = exo_resource_real_collect_metrics;
  klass->reset = exo_resource_real_reset;

  resource_type_quark = g_quark_from_static_string ("exo-resource-type");
  vfunc_watch_quark = g_quark_from_static_string ("exo-vfunc-watch");

  g_object_class_override_property (object_class, PROP_ID, "id");
  g_object_class_override_property (object_class, PROP_RESOURCE_TYPE, "resource-type");
  g_object_class_override_property (object_class, PROP_DISPLAY_NAME, "display-name");
  g_object_class_override_property (object_class, PROP_STATE, "state");

  /**
   * ExoResource:init-timeout:
   *
   * Milliseconds one initialize attempt may take; 0 = unlimited.
   */
  properties[PROP_INIT_TIMEOUT] =
    g_param_spec_uint ("init-timeout", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_property (object_class, PROP_INIT_TIMEOUT, properties[PROP_INIT_TIMEOUT]);

  /**
   * ExoResource:error-count:
   *
   * Errors recorded since made or reset: failed initialize attempts, failed
   * health checks, failures reported while usable.  Notified when it changes.
   */
  properties[PROP_ERROR_COUNT] =
    g_param_spec_uint ("error-count", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_property (object_class, PROP_ERROR_COUNT, properties[PROP_ERROR_COUNT]);

  /**
   * ExoResource:attempts:
   *
   * Initialize attempts since the last successful one (0 once it succeeds).
   */
  properties[PROP_ATTEMPTS] =
    g_param_spec_uint ("attempts", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_property (object_class, PROP_ATTEMPTS, properties[PROP_ATTEMPTS]);

  /**
   * ExoResource:last-error:
   *
   * The last error recorded, or %NULL.
   */
  properties[PROP_LAST_ERROR] =
    g_param_spec_boxed ("last-error", NULL, NULL, G_TYPE_ERROR,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_property (object_class, PROP_LAST_ERROR, properties[PROP_LAST_ERROR]);

  /**
   * ExoResource:result:
   *
   * Why the resource is where it is; see #ExoResourceResult.
   */
  properties[PROP_RESULT] =
    g_param_spec_enum ("result", NULL, NULL, EXO_TYPE_RESOURCE_RESULT, EXO_RESOURCE_RESULT_SUCCESS,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_property (object_class, PROP_RESULT, properties[PROP_RESULT]);

  properties[PROP_STATE] = g_object_class_find_property (object_class, "state");
  properties[PROP_DISPLAY_NAME] = g_object_class_find_property (object_class, "display-name");

  signal_state_changed = g_signal_lookup ("state-changed", EXO_TYPE_ASYNC_RESOURCE);
  signal_notify = g_signal_lookup ("notify", G_TYPE_OBJECT);
}

static void
exo_resource_init (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  priv->state = EXO_RESOURCE_STATE_UNINITIALIZED;
  priv->thread = g_thread_self ();
  priv->unhealthy_threshold = 1;
  priv->healthy_threshold = 1;
  priv->context = g_main_context_ref_thread_default ();
}
