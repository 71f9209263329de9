/* exo-resource-flight.c: ExoResource's initialize and cleanup.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * This file owns the initialize flight (one set of callers sharing
 * attempts): the waiters, their cancellation, the attempts and their
 * do_initialize, the init timeout, retries, the zombie attempt (an abandoned
 * do_initialize whose result is cleaned up when it returns), and cleanup
 * (do_cleanup, its waiters, and the wait for a zombie).
 *
 * Rules: everything runs in the resource's main context, with no lock.  At
 * most one do_initialize or do_cleanup runs at a time (priv->busy): a later
 * initialize or cleanup waits (start_pending, cleanup_pending) and
 * resume_pending() starts it.  Whatever is called out (a waiter's callback,
 * a GTask completing at once, a do_* vfunc, a transition's handlers) may
 * re-enter: initialize, clean up, cancel, drop a reference; so the code
 * holds a reference to the resource across every such call, and a waiter is
 * unlinked before it is served.  A waiter is answered as a GTask would be
 * (complete_init_waiter()): at once only in the resource's context and in a
 * later main-loop iteration than the one it came in, else from an idle; and
 * only after exo_resource_transition() to the state that ends the flight
 * has returned.
 */
#include "exo-resource-private.h"

static void start_attempt  (ExoResource *self);
static guint zombie_wait_ms (ExoResource *self);
static void resume_pending (ExoResource *self);

/* A caller of initialize with a GTask (the library's own callers use a
 * bare ExoInitWaiter). */
typedef struct
{
  ExoInitWaiter  base;          /* base.func == NULL */
  GTask         *task;
  GSource       *cancel_source;
} Waiter;

static ExoResourceResult
result_of (const GError *error)
{
  if (error == NULL)
    return EXO_RESOURCE_RESULT_SUCCESS;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return EXO_RESOURCE_RESULT_TIMEOUT;
  return EXO_RESOURCE_RESULT_FAILED;
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
    _exo_resource_record_error (self, error);
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
    _exo_resource_record_error (self, error);
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

void
_exo_resource_do_initialize_cb (GObject      *source,
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

  _exo_resource_record_error (self, error);
  /* Clean up the half-made resource before anyone hears of the failure. */
  g_clear_error (&EXTRA (priv)->init_error);
  priv->extra->init_error = error;
  call_do_cleanup (self, attempt, failed_cleanup_done);
}

void
_exo_resource_call_do_initialize (ExoResource *self,
                                  Attempt     *attempt)
{
  GTask *task = _exo_resource_vfunc_init_task_new (self, attempt);

  EXO_RESOURCE_GET_CLASS (self)->do_initialize (self, task);
  g_object_unref (task);
}

static void
pre_cleanup_done (ExoResource *self,
                  Attempt     *attempt,
                  GError      *error)
{
  if (error != NULL)
    _exo_resource_record_error (self, error);
  g_clear_error (&error);

  if (attempt->abandoned)
    {
      PRIV (self)->busy = FALSE;
      PRIV (self)->zombie = FALSE;
      resume_pending (self);
      attempt_free (attempt);
      return;
    }

  _exo_resource_call_do_initialize (self, attempt);
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
  _exo_resource_record_error (self, error);
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
    _exo_resource_call_do_initialize (self, attempt);
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
      _exo_resource_record_error (self, error);
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

  if (EXO_ASYNC_RESOURCE_GET_IFACE (self)->initialize_async != _exo_resource_real_initialize_async)
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

void
_exo_resource_real_initialize_async (ExoAsyncResource    *resource,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  initialize_internal (EXO_RESOURCE (resource), FALSE, cancellable, callback, user_data,
                       exo_resource_initialize_async);
}

gboolean
_exo_resource_real_task_finish (ExoAsyncResource  *resource,
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

void
_exo_resource_real_cleanup_async (ExoAsyncResource    *resource,
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
