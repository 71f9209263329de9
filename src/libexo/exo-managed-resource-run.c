/* exo-managed-resource-run.c: the operation runner.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns exo_managed_resource_run_async() and its finish functions,
 * _exo_managed_resource_run() (which ExoNetworkResource's runs use too)
 * and _exo_operation_propagate_pointer()/_value(), the finish side of every
 * task whose result is a completed operation task (exo_resource_use_async()
 * as well).  An operation: make sure the resource is usable, run one
 * attempt under a time limit, retry a retryable error after the retry
 * policy's backoff.
 *
 * Rules: a run belongs to the main context of its GTask, which is the
 * resource's (exo_resource_ensure_ready_async() is called there); its timers
 * are attached there; no locks.  The runner's GTask holds the resource; the
 * operation's function and the caller's callback may re-enter the resource
 * (a new run, a cleanup), and a cancelled outer cancellable cancels the
 * attempt's.  @func_data_destroy runs once, when the runner's task is
 * finalized.
 */
#include "exo-managed-resource-private.h"

/* --- operation runner -------------------------------------------------- */

/* How results travel: the operation completes the attempt's GTask with
 * g_task_return_pointer (value, value_destroy) or g_task_return_value().  The
 * runner does not take the value out: the successful attempt's GTask itself
 * becomes the runner's result, so the value keeps the destroy notify the
 * operation gave it.  A finish function takes the value out of it; when nobody
 * calls one, the attempt's GTask is finalized with the runner's and frees the
 * value (GTask frees a result nobody propagated). */

typedef struct
{
  ExoOperationFunc  func;
  gpointer          func_data;
  GDestroyNotify    func_data_destroy;
  ExoRunObserver    observe;
  guint             timeout_ms;
  guint             attempt;
  guint             prev_delay_ms;
  GCancellable     *attempt_cancellable;
  GSource          *timer;
  gulong            cancel_id;
  gboolean          timed_out;
} RunData;

static void run_attempt (GTask *task);

/* Runs when the runner's task is finalized: after its callback ran. */
static void
run_data_free (RunData *data)
{
  clear_source (&data->timer);
  g_clear_object (&data->attempt_cancellable);
  if (data->func_data_destroy != NULL)
    data->func_data_destroy (data->func_data);
  g_free (data);
}

static gboolean
run_attempt_timeout_cb (gpointer user_data)
{
  RunData *data = user_data;

  g_clear_pointer (&data->timer, g_source_unref);
  data->timed_out = TRUE;
  g_cancellable_cancel (data->attempt_cancellable);
  return G_SOURCE_REMOVE;
}

static gboolean
run_retry_cb (gpointer user_data)
{
  GTask *task = user_data;
  RunData *data = g_task_get_task_data (task);

  g_clear_pointer (&data->timer, g_source_unref);
  run_attempt (g_object_ref (task));   /* the source drops its own reference */
  return G_SOURCE_REMOVE;
}

static void
run_attempt_done (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  GTask *attempt = G_TASK (result);
  RunData *data = g_task_get_task_data (task);
  ExoManagedResource *self = g_task_get_source_object (task);
  ExoManagedResourcePrivate *priv = PRIV (self);
  GCancellable *outer = g_task_get_cancellable (task);
  GError *error = NULL;

  clear_source (&data->timer);
  if (data->cancel_id != 0)
    {
      g_cancellable_disconnect (outer, data->cancel_id);
      data->cancel_id = 0;
    }

  /* Only an error is taken out of the attempt here: a value stays in it. */
  if (g_task_had_error (attempt))
    g_task_propagate_pointer (attempt, &error);
  if (data->observe != NULL)
    data->observe (self, error);

  if (error == NULL)
    {
      /* the value is final now, whatever happens to the attempt's cancellable */
      g_task_set_check_cancellable (attempt, FALSE);
      g_task_return_pointer (task, g_object_ref (attempt), g_object_unref);
      g_object_unref (task);
      return;
    }

  if (data->timed_out && !(outer != NULL && g_cancellable_is_cancelled (outer)))
    {
      g_clear_error (&error);
      error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                           "operation on '%s' timed out after %u ms (attempt %u)",
                           exo_resource_get_id (EXO_RESOURCE (self)), data->timeout_ms,
                           data->attempt);
    }

  if ((outer != NULL && g_cancellable_is_cancelled (outer))
      || !EXO_MANAGED_RESOURCE_GET_CLASS (self)->is_retryable (self, error)
      || (priv->policy->max_retries != G_MAXUINT && data->attempt > priv->policy->max_retries))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  g_clear_error (&error);
  {
    guint delay = exo_retry_policy_next_delay (priv->policy, data->attempt, data->prev_delay_ms,
                                               _exo_resource_get_rand (EXO_RESOURCE (self)));
    data->prev_delay_ms = delay;
    data->timer = g_timeout_source_new (delay);
    g_source_set_callback (data->timer, run_retry_cb, task, g_object_unref);
    g_source_set_static_name (data->timer, "[exo] operation retry");
    g_source_attach (data->timer, g_task_get_context (task));
  }
}

static void
run_outer_cancelled (GCancellable *cancellable,
                     gpointer      user_data)
{
  GCancellable *attempt = user_data;

  g_cancellable_cancel (attempt);
}

static void
run_ready_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  RunData *data = g_task_get_task_data (task);
  GError *error = NULL;
  GTask *inner;

  if (!exo_resource_ensure_ready_finish (EXO_RESOURCE (source), result, &error))
    {
      /* initialize already retried per the policy: its failure is final here */
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  g_clear_object (&data->attempt_cancellable);
  data->attempt_cancellable = g_cancellable_new ();
  data->timed_out = FALSE;
  if (g_task_get_cancellable (task) != NULL)
    data->cancel_id = g_cancellable_connect (g_task_get_cancellable (task),
                                             G_CALLBACK (run_outer_cancelled),
                                             data->attempt_cancellable, NULL);

  if (data->timeout_ms > 0)
    {
      data->timer = g_timeout_source_new (data->timeout_ms);
      g_source_set_callback (data->timer, run_attempt_timeout_cb, data, NULL);
      g_source_set_static_name (data->timer, "[exo] operation timeout");
      g_source_attach (data->timer, g_task_get_context (task));
    }

  /* an operation that lets its task go uncompleted fails the attempt */
  inner = _exo_resource_vfunc_task_new (EXO_RESOURCE (source), data->attempt_cancellable,
                                        run_attempt_done, task, run_ready_cb, "operation");
  data->func (EXO_RESOURCE (source), data->attempt_cancellable, inner, data->func_data);
  g_object_unref (inner);
}

static void
run_attempt (GTask *task)
{
  RunData *data = g_task_get_task_data (task);
  ExoResource *resource = g_task_get_source_object (task);

  data->attempt++;
  exo_resource_ensure_ready_async (resource, g_task_get_cancellable (task),
                                   run_ready_cb, task);
}

/* Shared with ExoNetworkResource: @observe (nullable) sees the outcome of
 * each attempt (%NULL on success) before the runner decides on a retry. */
void
_exo_managed_resource_run (ExoManagedResource  *self,
                           ExoOperationFunc     func,
                           gpointer             func_data,
                           GDestroyNotify       func_data_destroy,
                           ExoRunObserver       observe,
                           guint                attempt_timeout_ms,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data,
                           gpointer             source_tag)
{
  GTask *task;
  RunData *data;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, source_tag);

  data = g_new0 (RunData, 1);
  data->func = func;
  data->func_data = func_data;
  data->func_data_destroy = func_data_destroy;
  data->observe = observe;
  data->timeout_ms = attempt_timeout_ms;
  g_task_set_task_data (task, data, (GDestroyNotify) run_data_free);

  run_attempt (task);
}

/* The finish side, for every task whose result is a completed operation
 * task (the runners and exo_resource_use_async()). */
gpointer
_exo_operation_propagate_pointer (GTask   *task,
                                  GError **error)
{
  g_autoptr(GTask) attempt = g_task_propagate_pointer (task, error);

  if (attempt == NULL)
    return NULL;
  return g_task_propagate_pointer (attempt, NULL);
}

gboolean
_exo_operation_propagate_value (GTask   *task,
                                GValue  *value,
                                GError **error)
{
  g_autoptr(GTask) attempt = g_task_propagate_pointer (task, error);

  if (attempt == NULL)
    return FALSE;
  return g_task_propagate_value (attempt, value, NULL);
}

/**
 * exo_managed_resource_run_async:
 * @self: a managed resource
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy): one
 *   attempt of the operation
 * @func_data: (closure): data for @func
 * @func_data_destroy: (nullable): frees @func_data once the operation is over
 * @attempt_timeout_ms: time limit of each attempt, 0 = none
 * @cancellable: (nullable): cancels the whole operation
 * @callback: (scope async) (closure user_data): called with the result of the
 *   last attempt
 * @user_data: (closure): data for @callback
 *
 * Runs @func on @self: makes sure @self is usable, runs one attempt, and
 * waits for it to complete.  A retryable error is retried after a backoff
 * delay from #ExoManagedResource:retry-policy; a fatal one (see
 * #ExoManagedResourceClass.is_retryable) ends the operation at once.  An
 * attempt that times out is cancelled and counts as %G_IO_ERROR_TIMED_OUT.
 *
 * @func completes its task with g_task_return_pointer() (and the value's
 * destroy notify), g_task_return_value() or an error; see #ExoOperationFunc.
 * The successful attempt's value is what exo_managed_resource_run_finish()
 * (or exo_managed_resource_run_finish_value()) returns; when nobody takes it,
 * it is freed with the destroy notify @func gave.
 *
 * @func_data_destroy is called exactly once, when the operation is over:
 * after the last attempt, once @callback has run (when the result is
 * finalized).  @func is not called again after that.
 */
void
exo_managed_resource_run_async (ExoManagedResource  *self,
                                ExoOperationFunc     func,
                                gpointer             func_data,
                                GDestroyNotify       func_data_destroy,
                                guint                attempt_timeout_ms,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_return_if_fail (EXO_IS_MANAGED_RESOURCE (self));
  g_return_if_fail (func != NULL);

  _exo_managed_resource_run (self, func, func_data, func_data_destroy, NULL, attempt_timeout_ms,
                             cancellable, callback, user_data, exo_managed_resource_run_async);
}

/**
 * exo_managed_resource_run_finish:
 * @self: a managed resource
 * @result: the result given to the callback
 * @error: return location for the last attempt's error
 *
 * For operations that complete with g_task_return_pointer().  Bindings use
 * exo_managed_resource_run_finish_value().
 *
 * Returns: (transfer full) (nullable): the pointer the successful attempt
 *   returned; free it the way the operation's destroy notify would
 */
gpointer
exo_managed_resource_run_finish (ExoManagedResource  *self,
                                 GAsyncResult        *result,
                                 GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return _exo_operation_propagate_pointer (G_TASK (result), error);
}

/**
 * exo_managed_resource_run_finish_value: (rename-to exo_managed_resource_run_finish)
 * @self: a managed resource
 * @result: the result given to the callback
 * @value: (out caller-allocates): where to store the value of the successful
 *   attempt; unset it with g_value_unset()
 * @error: return location for the last attempt's error
 *
 * For operations that complete with g_task_return_value(), as bindings do.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
gboolean
exo_managed_resource_run_finish_value (ExoManagedResource  *self,
                                       GAsyncResult        *result,
                                       GValue              *value,
                                       GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (value != NULL, FALSE);

  return _exo_operation_propagate_value (G_TASK (result), value, error);
}
