/* exo-scope.c: scoped use of a resource, and timeouts as cancellables.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: exo_cancellable_new_with_timeout() and exo_cancellable_timed_out()
 * (a child GCancellable with a timer and a link to a parent, sharing a
 * TimeoutData); exo_resource_use_async() and its _finish() functions
 * (initialize, run the caller's operation, clean up, answer);
 * exo_wait_for_result(), the bridge for synchronous callers.
 *
 * Rules: no lock.  The timer runs in the thread-default main context of
 * the thread that made the cancellable.  The parent's ::cancelled handler
 * (parent_cancelled_cb) runs on whichever thread cancels the parent, so the
 * child may be cancelled, and its own handlers run, on that thread; the
 * child may also be finalized there (timeout_data_detach).  Hence
 * TimeoutData's reference count is atomic, the timer and the handler reach
 * the child only through a GWeakRef, and detaching uses
 * g_signal_handler_disconnect(), not g_cancellable_disconnect() (which
 * would wait forever inside the parent's own emission).  The steps of a use
 * are GTask callbacks: they run in the thread-default main context of the
 * caller of exo_resource_use_async(), whichever thread the operation
 * completes its task on.  exo_wait_for_result() iterates a context: never
 * call it from a callback of a running loop on that context.
 */
#include "exo-private.h"

/* --- timeouts ---------------------------------------------------------- */

/* Shared by the child cancellable (its qdata), the timer and the handler on
 * the parent; each holds a reference.  The timer and the handler reach the
 * child only through the weak reference, so neither keeps it alive nor
 * touches it once it is gone. */
typedef struct
{
  gatomicrefcount  ref_count;
  GWeakRef         cancellable;
  GCancellable    *parent;          /* owned while the child lives */
  gulong           parent_id;
  GSource         *timer;           /* owned while the child lives */
} TimeoutData;

static GQuark
exo_timed_out_quark (void)
{
  return g_quark_from_static_string ("exo-timed-out");
}

static TimeoutData *
timeout_data_ref (TimeoutData *data)
{
  g_atomic_ref_count_inc (&data->ref_count);
  return data;
}

static void
timeout_data_unref (gpointer user_data)
{
  TimeoutData *data = user_data;

  if (!g_atomic_ref_count_dec (&data->ref_count))
    return;
  g_weak_ref_clear (&data->cancellable);
  g_free (data);
}

/* The child is being finalized: stop the timer and leave the parent. */
static void
timeout_data_detach (gpointer user_data)
{
  TimeoutData *data = user_data;

  if (data->timer != NULL)
    {
      g_source_destroy (data->timer);
      g_clear_pointer (&data->timer, g_source_unref);
    }
  if (data->parent != NULL)
    {
      /* Not g_cancellable_disconnect(): it waits until a running emission of
       * the parent's ::cancelled ends, and the child's last reference is
       * often dropped inside that very emission (by a handler of the
       * parent, or of the child that our handler cancels), on this thread:
       * the wait would never end.  Our handler does not need that wait: it
       * holds its own reference to @data and finds the child through the
       * weak reference, which is already cleared here.  Disconnecting a
       * handler during an emission is fine for GSignal. */
      if (data->parent_id != 0)
        g_signal_handler_disconnect (data->parent, data->parent_id);
      data->parent_id = 0;
      g_clear_object (&data->parent);
    }
  timeout_data_unref (data);
}

static gboolean
timeout_fire_cb (gpointer user_data)
{
  TimeoutData *data = user_data;
  g_autoptr(GCancellable) cancellable = g_weak_ref_get (&data->cancellable);

  /* Cancelled already (by hand or by its parent): that is not a timeout. */
  if (cancellable != NULL && !g_cancellable_is_cancelled (cancellable))
    {
      g_object_set_qdata (G_OBJECT (cancellable), exo_timed_out_quark (), GINT_TO_POINTER (1));
      g_cancellable_cancel (cancellable);
    }
  return G_SOURCE_REMOVE;
}

static void
parent_cancelled_cb (GCancellable *parent,
                     gpointer      user_data)
{
  TimeoutData *data = user_data;
  g_autoptr(GCancellable) child = g_weak_ref_get (&data->cancellable);

  if (child != NULL)
    g_cancellable_cancel (child);
}

/**
 * exo_cancellable_new_with_timeout:
 * @timeout_ms: cancel after this many milliseconds (0 = never)
 * @parent: (nullable): cancelling it cancels the new one too
 *
 * Makes a #GCancellable that cancels itself after @timeout_ms, in the
 * thread-default main context.  exo_cancellable_timed_out() tells a timeout
 * from a cancel.
 *
 * Returns: (transfer full): a new cancellable
 */
GCancellable *
exo_cancellable_new_with_timeout (guint         timeout_ms,
                                  GCancellable *parent)
{
  GCancellable *cancellable = g_cancellable_new ();
  TimeoutData *data = g_new0 (TimeoutData, 1);

  g_atomic_ref_count_init (&data->ref_count);
  g_weak_ref_init (&data->cancellable, cancellable);

  if (timeout_ms > 0)
    {
      data->timer = g_timeout_source_new (timeout_ms);
      g_source_set_callback (data->timer, timeout_fire_cb,
                             timeout_data_ref (data), timeout_data_unref);
      g_source_set_static_name (data->timer, "[exo] cancellable timeout");
      g_source_attach (data->timer, g_main_context_get_thread_default ());
    }

  if (parent != NULL)
    {
      data->parent = g_object_ref (parent);
      /* The handler must not keep the child alive: it holds @data, and the
       * child's finalization disconnects it (see timeout_data_detach()).
       * When @parent is already cancelled, this runs the handler now and
       * returns 0. */
      data->parent_id = g_cancellable_connect (parent, G_CALLBACK (parent_cancelled_cb),
                                               timeout_data_ref (data), timeout_data_unref);
    }

  /* The first reference: dropped when the child is finalized. */
  g_object_set_data_full (G_OBJECT (cancellable), "exo-timeout-data", data, timeout_data_detach);
  return cancellable;
}

/**
 * exo_cancellable_timed_out:
 * @cancellable: (nullable): a cancellable
 *
 * Returns: %TRUE if @cancellable was made by
 *   exo_cancellable_new_with_timeout() and its timeout fired
 */
gboolean
exo_cancellable_timed_out (GCancellable *cancellable)
{
  if (cancellable == NULL)
    return FALSE;
  return g_object_get_qdata (G_OBJECT (cancellable), exo_timed_out_quark ()) != NULL;
}

/* --- scoped use -------------------------------------------------------- */

typedef struct
{
  ExoOperationFunc  func;
  gpointer          func_data;
  GDestroyNotify    func_data_destroy;
  GCancellable     *op_cancellable;
  GTask            *done;    /* @func's completed task: it holds the value */
  GError           *error;
} UseData;

/* Runs when the use's task is finalized: after its callback ran. */
static void
use_data_free (UseData *data)
{
  g_clear_object (&data->done);
  g_clear_error (&data->error);
  g_clear_object (&data->op_cancellable);
  if (data->func_data_destroy != NULL)
    data->func_data_destroy (data->func_data);
  g_free (data);
}

static void
use_cleanup_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  UseData *data = g_task_get_task_data (task);
  g_autoptr(GError) cleanup_error = NULL;

  exo_resource_cleanup_finish (EXO_RESOURCE (source), result, &cleanup_error);

  if (data->error != NULL)
    g_task_return_error (task, g_steal_pointer (&data->error));
  else if (cleanup_error != NULL)
    g_task_return_error (task, g_steal_pointer (&cleanup_error));
  else
    /* the value stays in @func's task, with its destroy notify (see
     * _exo_operation_propagate_pointer()) */
    g_task_return_pointer (task, g_steal_pointer (&data->done), g_object_unref);
}

static void
use_op_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  GTask *done = G_TASK (result);
  UseData *data = g_task_get_task_data (task);

  /* Only an error is taken out here: a value stays in @done. */
  if (g_task_had_error (done))
    g_task_propagate_pointer (done, &data->error);
  else
    {
      g_task_set_check_cancellable (done, FALSE);
      data->done = g_object_ref (done);
    }
  if (data->error != NULL && exo_cancellable_timed_out (data->op_cancellable))
    {
      g_clear_error (&data->error);
      data->error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                 "use of '%s' timed out",
                                 exo_resource_get_id (EXO_RESOURCE (source)));
    }

  /* Cleanup is awaited before the caller hears anything. */
  exo_resource_cleanup_async (EXO_RESOURCE (source), NULL, use_cleanup_cb, task);
}

static void
use_ready_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  UseData *data = g_task_get_task_data (task);
  GTask *inner;

  if (!exo_resource_initialize_finish (EXO_RESOURCE (source), result, &data->error))
    {
      if (exo_cancellable_timed_out (data->op_cancellable))
        {
          g_clear_error (&data->error);
          data->error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                     "use of '%s' timed out while initializing",
                                     exo_resource_get_id (EXO_RESOURCE (source)));
        }
      exo_resource_cleanup_async (EXO_RESOURCE (source), NULL, use_cleanup_cb, task);
      return;
    }

  /* a func that lets its task go uncompleted fails the use */
  inner = _exo_resource_vfunc_task_new (EXO_RESOURCE (source), data->op_cancellable, use_op_cb,
                                        task, use_ready_cb, "operation");
  data->func (EXO_RESOURCE (source), data->op_cancellable, inner, data->func_data);
  g_object_unref (inner);
}

/**
 * exo_resource_use_async:
 * @resource: a resource
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy): what
 *   to do with @resource once it is usable
 * @func_data: (closure): data for @func
 * @func_data_destroy: (nullable): frees @func_data once the use is over
 * @timeout_ms: time limit for initialize + @func, 0 = none
 * @cancellable: (nullable): a cancellable
 * @callback: (scope async) (closure user_data): called after the cleanup finished
 * @user_data: (closure): data for @callback
 *
 * The scoped use of a resource (Python's `async with`): initialize, run
 * @func, then clean up — and the cleanup is awaited before @callback runs,
 * whatever happened (failure, timeout, cancellation).  The error given to
 * @callback is the first one: initialize's, @func's, or cleanup's.
 *
 * @func completes its task as an #ExoOperationFunc does: with
 * g_task_return_pointer() and the value's destroy notify (taken with
 * exo_resource_use_finish(); freed with that notify when nobody takes it),
 * g_task_return_value() (taken with exo_resource_use_finish_value()), or an
 * error.  @func_data_destroy is called exactly once, when the use is over
 * (after @callback ran), also when @func never ran.
 */
void
exo_resource_use_async (ExoResource         *resource,
                        ExoOperationFunc     func,
                        gpointer             func_data,
                        GDestroyNotify       func_data_destroy,
                        guint                timeout_ms,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  GTask *task;
  UseData *data;

  g_return_if_fail (EXO_IS_RESOURCE (resource));
  g_return_if_fail (func != NULL);

  task = g_task_new (resource, cancellable, callback, user_data);
  g_task_set_source_tag (task, exo_resource_use_async);

  data = g_new0 (UseData, 1);
  data->func = func;
  data->func_data = func_data;
  data->func_data_destroy = func_data_destroy;
  data->op_cancellable = exo_cancellable_new_with_timeout (timeout_ms, cancellable);
  g_task_set_task_data (task, data, (GDestroyNotify) use_data_free);

  exo_resource_initialize_async (resource, data->op_cancellable, use_ready_cb, task);
}

/**
 * exo_resource_use_finish:
 * @resource: a resource
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * For a @func that completes with g_task_return_pointer().  Bindings use
 * exo_resource_use_finish_value().
 *
 * Returns: (transfer full) (nullable): the pointer @func returned; free it the
 *   way its destroy notify would
 */
gpointer
exo_resource_use_finish (ExoResource   *resource,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, resource), NULL);

  return _exo_operation_propagate_pointer (G_TASK (result), error);
}

/**
 * exo_resource_use_finish_value: (rename-to exo_resource_use_finish)
 * @resource: a resource
 * @result: the result given to the callback
 * @value: (out caller-allocates): where to store what @func returned; unset
 *   it with g_value_unset()
 * @error: return location for an error
 *
 * For a @func that completes with g_task_return_value(), as bindings do.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
gboolean
exo_resource_use_finish_value (ExoResource   *resource,
                               GAsyncResult  *result,
                               GValue        *value,
                               GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, resource), FALSE);
  g_return_val_if_fail (value != NULL, FALSE);

  return _exo_operation_propagate_value (G_TASK (result), value, error);
}

/* --- waiting ----------------------------------------------------------- */

static gboolean
wait_timeout_cb (gpointer user_data)
{
  gboolean *expired = user_data;

  *expired = TRUE;
  return G_SOURCE_REMOVE;
}

/**
 * exo_wait_for_result:
 * @context: (nullable): the context to iterate; %NULL = thread-default
 * @result: (inout): where a callback stores its #GAsyncResult
 * @timeout_ms: give up after this long (0 = never)
 *
 * Iterates @context until *@result is set: the bridge from async code to a
 * synchronous caller (tests, command-line tools).  Do not use it inside a
 * running main loop's callbacks.
 *
 * Returns: %TRUE if *@result was set in time
 */
gboolean
exo_wait_for_result (GMainContext  *context,
                     GAsyncResult **result,
                     guint          timeout_ms)
{
  gboolean expired = FALSE;
  GSource *timer = NULL;

  g_return_val_if_fail (result != NULL, FALSE);

  if (context == NULL)
    context = g_main_context_get_thread_default ();
  if (context == NULL)
    context = g_main_context_default ();

  if (timeout_ms > 0)
    {
      timer = g_timeout_source_new (timeout_ms);
      g_source_set_callback (timer, wait_timeout_cb, &expired, NULL);
      g_source_attach (timer, context);
    }

  while (*result == NULL && !expired)
    g_main_context_iteration (context, TRUE);

  if (timer != NULL)
    {
      g_source_destroy (timer);
      g_source_unref (timer);
    }

  return *result != NULL;
}
