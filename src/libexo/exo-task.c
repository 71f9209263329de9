/* exo-task.c: ExoTask, one named background task of an ExoTaskManager:
 * its status (ExoTaskStatus), its body and the sources it owns, its
 * lifecycle (start, return, cancel, the cancel-timeout, abandon, finish)
 * and exo_task_wait_async().  exo-task-manager.c owns the table of named
 * tasks and the counters; the lifecycle here updates them through the
 * structures and functions of exo-task-manager-private.h.
 *
 * Rules: not thread-safe.  A task lives in its manager's main context
 * (the thread-default one when the manager was made): its start source,
 * its own sources, its cancel-timeout and its waiters' cancellable
 * sources are attached there, and every function here is called from the
 * thread that runs it.  Re-entrancy: cancelling runs the cancellable's
 * handlers, which may call exo_task_return() (or spawn, or cancel again),
 * so _exo_task_cancel() re-checks `finished` after them; task_finish() and
 * _exo_task_cancel() hold a reference to the task while they call out
 * (signal handlers, cancellable handlers, waiters' callbacks).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-task-private.h"
#include "exo-task-manager-private.h"

/**
 * ExoTask:
 *
 * One task of an #ExoTaskManager.  See #ExoTaskManager for its lifecycle.
 */

enum {
  TASK_PROP_0,
  TASK_PROP_NAME,
  TASK_PROP_PRIORITY,
  TASK_PROP_STATUS,
  TASK_N_PROPS,
};

static GParamSpec *task_properties[TASK_N_PROPS];

G_DEFINE_FINAL_TYPE (ExoTask, exo_task, G_TYPE_OBJECT)

/* --- ExoTaskStatus ------------------------------------------------------ */

static const char *const status_names[] = {
  [EXO_TASK_STATUS_PENDING]   = "pending",
  [EXO_TASK_STATUS_RUNNING]   = "running",
  [EXO_TASK_STATUS_SUCCEEDED] = "succeeded",
  [EXO_TASK_STATUS_FAILED]    = "failed",
  [EXO_TASK_STATUS_CANCELLED] = "cancelled",
};

GType
exo_task_status_get_type (void)
{
  static gsize type_id = 0;

  if (g_once_init_enter (&type_id))
    {
      static const GEnumValue values[] = {
        { EXO_TASK_STATUS_PENDING, "EXO_TASK_STATUS_PENDING", "pending" },
        { EXO_TASK_STATUS_RUNNING, "EXO_TASK_STATUS_RUNNING", "running" },
        { EXO_TASK_STATUS_SUCCEEDED, "EXO_TASK_STATUS_SUCCEEDED", "succeeded" },
        { EXO_TASK_STATUS_FAILED, "EXO_TASK_STATUS_FAILED", "failed" },
        { EXO_TASK_STATUS_CANCELLED, "EXO_TASK_STATUS_CANCELLED", "cancelled" },
        { 0, NULL, NULL }
      };
      GType type = g_enum_register_static (g_intern_static_string ("ExoTaskStatus"), values);
      g_once_init_leave (&type_id, type);
    }

  return type_id;
}

/**
 * exo_task_status_to_string:
 * @status: a task status
 *
 * Returns: (transfer none): the status's nick, e.g. `"running"`, or `"invalid"`
 */
const char *
exo_task_status_to_string (ExoTaskStatus status)
{
  if ((guint) status >= G_N_ELEMENTS (status_names))
    return "invalid";
  return status_names[status];
}

/* --- waiters ------------------------------------------------------------ */

static void
waiter_free (Waiter *waiter)
{
  if (waiter->cancel_source != NULL)
    {
      g_source_destroy (waiter->cancel_source);
      g_source_unref (waiter->cancel_source);
    }
  g_clear_pointer (&waiter->pending, g_hash_table_unref);
  g_clear_object (&waiter->gtask);
  g_free (waiter);
}

Waiter *
_exo_task_waiter_new (GTask                   *gtask,
            GMainContext            *context,
            GCancellableSourceFunc   cancelled_cb)
{
  Waiter *waiter = g_new0 (Waiter, 1);
  GCancellable *cancellable = g_task_get_cancellable (gtask);

  waiter->gtask = gtask;
  if (cancellable != NULL)
    {
      waiter->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (waiter->cancel_source, G_SOURCE_FUNC (cancelled_cb), waiter, NULL);
      g_source_set_static_name (waiter->cancel_source, "[exo] task waiter cancelled");
      g_source_attach (waiter->cancel_source, context);
    }
  return waiter;
}

/* Completes and frees @waiter; it must no longer be in any queue. */
void
_exo_task_waiter_return (Waiter       *waiter,
               const GError *error)
{
  GTask *gtask = g_steal_pointer (&waiter->gtask);

  waiter_free (waiter);
  if (error != NULL)
    g_task_return_error (gtask, g_error_copy (error));
  else
    g_task_return_boolean (gtask, TRUE);
  g_object_unref (gtask);
}

void
_exo_task_waiter_return_cancelled (Waiter *waiter)
{
  g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                 "Operation was cancelled");

  _exo_task_waiter_return (waiter, error);
}

/* --- ExoTask ------------------------------------------------------------- */

static void
task_set_status (ExoTask       *self,
                 ExoTaskStatus  status)
{
  if (self->status == status)
    return;
  self->status = status;
  g_object_notify_by_pspec (G_OBJECT (self), task_properties[TASK_PROP_STATUS]);
}

/* Destroys every source the task owns; none of their callbacks runs again. */
static void
task_clear_sources (ExoTask *self)
{
  clear_source (&self->start_source);
  clear_source (&self->grace_source);
  for (guint i = 0; i < self->sources->len; i++)
    g_source_destroy (g_ptr_array_index (self->sources, i));
  g_ptr_array_set_size (self->sources, 0);
}

/* Drops the body and its data; called once the body can no longer run or
 * has returned. */
static void
task_release_data (ExoTask *self)
{
  GDestroyNotify destroy = self->destroy;
  gpointer user_data = self->user_data;

  self->func = NULL;
  self->destroy = NULL;
  self->user_data = NULL;
  if (destroy != NULL)
    destroy (user_data);
}

static void
exo_task_dispose (GObject *object)
{
  ExoTask *self = EXO_TASK (object);

  /* A task is only released when it is finished (the manager holds it
   * until then), so nothing is left to run here. */
  task_clear_sources (self);
  task_release_data (self);

  G_OBJECT_CLASS (exo_task_parent_class)->dispose (object);
}

static void
exo_task_finalize (GObject *object)
{
  ExoTask *self = EXO_TASK (object);

  g_assert (g_queue_is_empty (&self->waiters));

  g_clear_pointer (&self->sources, g_ptr_array_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_object (&self->cancellable);
  g_clear_error (&self->error);
  g_clear_pointer (&self->name, g_free);

  G_OBJECT_CLASS (exo_task_parent_class)->finalize (object);
}

static void
exo_task_get_property (GObject    *object,
                       guint       prop_id,
                       GValue     *value,
                       GParamSpec *pspec)
{
  ExoTask *self = EXO_TASK (object);

  switch (prop_id)
    {
    case TASK_PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case TASK_PROP_PRIORITY:
      g_value_set_int (value, self->priority);
      break;
    case TASK_PROP_STATUS:
      g_value_set_enum (value, self->status);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_task_class_init (ExoTaskClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = exo_task_dispose;
  object_class->finalize = exo_task_finalize;
  object_class->get_property = exo_task_get_property;

  /**
   * ExoTask:name:
   *
   * The task's name, unique among the active tasks of its manager.
   */
  task_properties[TASK_PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoTask:priority:
   *
   * The #GSource priority its body and its sources are dispatched at.
   */
  task_properties[TASK_PROP_PRIORITY] =
    g_param_spec_int ("priority", NULL, NULL, G_MININT, G_MAXINT, G_PRIORITY_DEFAULT,
                      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoTask:status:
   *
   * Where the task is in its lifecycle.
   */
  task_properties[TASK_PROP_STATUS] =
    g_param_spec_enum ("status", NULL, NULL, EXO_TYPE_TASK_STATUS, EXO_TASK_STATUS_PENDING,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, TASK_N_PROPS, task_properties);
}

static void
exo_task_init (ExoTask *self)
{
  self->status = EXO_TASK_STATUS_PENDING;
  self->cancellable = g_cancellable_new ();
  self->sources = g_ptr_array_new_with_free_func ((GDestroyNotify) g_source_unref);
  g_queue_init (&self->waiters);
}

/* --- finishing and cancelling -------------------------------------------- */

/* Makes @self finished: it leaves its manager, which emits ::task-finished,
 * and its waiters complete.  The status and error are already set. */
static void
task_finish (ExoTask *self)
{
  g_autoptr(ExoTask) hold = g_object_ref (self);
  ExoTaskManager *manager = self->manager;

  g_assert (!self->finished);
  g_assert (self->status >= EXO_TASK_STATUS_SUCCEEDED);

  self->finished = TRUE;
  self->finished_at = g_get_real_time ();
  task_clear_sources (self);
  if (!self->body_running)
    task_release_data (self);

  if (manager != NULL)
    {
      g_autoptr(ExoTaskManager) hold_manager = g_object_ref (manager);

      self->manager = NULL;
      if (g_hash_table_lookup (manager->active, self->name) == self)
        {
          g_hash_table_remove (manager->active, self->name);
          _exo_task_manager_notify_n_active (manager);
        }
      g_hash_table_remove (manager->stopping, self);

      _exo_task_manager_task_finished (manager, self);
    }

  for (Waiter *waiter; (waiter = g_queue_pop_head (&self->waiters)) != NULL;)
    _exo_task_waiter_return (waiter, self->status == EXO_TASK_STATUS_SUCCEEDED ? NULL : self->error);
}

void
_exo_task_abandon (ExoTask *self)
{
  if (self->manager != NULL)
    self->manager->n_abandoned++;
  task_finish (self);
}

static gboolean
task_grace_expired_cb (gpointer user_data)
{
  ExoTask *self = user_data;

  g_clear_pointer (&self->grace_source, g_source_unref);
  _exo_task_abandon (self);
  return G_SOURCE_REMOVE;
}

/* Cancels an unfinished task: see the lifecycle in the class comment. */
void
_exo_task_cancel (ExoTask  *self,
             gboolean  replaced)
{
  g_autoptr(ExoTask) hold = g_object_ref (self);
  ExoTaskManager *manager = self->manager;

  if (self->finished || self->status == EXO_TASK_STATUS_CANCELLED)
    return;

  g_assert (manager != NULL);

  task_clear_sources (self);
  g_clear_error (&self->error);
  self->error = g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             "Task “%s” was cancelled", self->name);

  manager->n_cancelled++;
  if (replaced)
    manager->n_replaced++;
  g_hash_table_add (manager->stopping, g_object_ref (self));
  if (g_hash_table_lookup (manager->active, self->name) == self)
    {
      g_hash_table_remove (manager->active, self->name);
      _exo_task_manager_notify_n_active (manager);
    }

  task_set_status (self, EXO_TASK_STATUS_CANCELLED);

  /* Handlers may call exo_task_return() from here. */
  g_cancellable_cancel (self->cancellable);
  if (self->finished)
    return;

  if (!self->body_running)
    task_finish (self);
  else if (manager->disposing || manager->cancel_timeout_ms == 0)
    _exo_task_abandon (self);
  else
    {
      self->grace_source = g_timeout_source_new (manager->cancel_timeout_ms);
      g_source_set_callback (self->grace_source, task_grace_expired_cb, self, NULL);
      g_source_set_static_name (self->grace_source, "[exo] task cancel timeout");
      g_source_attach (self->grace_source, self->context);
    }
}

static gboolean
task_start_cb (gpointer user_data)
{
  ExoTask *self = user_data;

  g_clear_pointer (&self->start_source, g_source_unref);
  self->body_started = TRUE;
  self->body_running = TRUE;
  self->started_at = g_get_real_time ();
  task_set_status (self, EXO_TASK_STATUS_RUNNING);

  /* Released by exo_task_return(): the task lives as long as its body. */
  g_object_ref (self);
  self->func (self, self->cancellable, self->user_data);

  return G_SOURCE_REMOVE;
}

/* A pending task of @manager, for exo_task_manager_spawn(): its body runs
 * from an idle source at @priority in the manager's main context.  The
 * caller owns the reference (the manager's table of active tasks). */
ExoTask *
_exo_task_new (ExoTaskManager *manager,
               const char     *name,
               int             priority,
               ExoTaskFunc     func,
               gpointer        user_data,
               GDestroyNotify  destroy)
{
  ExoTask *task;

  task = g_object_new (EXO_TYPE_TASK, NULL);
  task->manager = manager;
  task->context = g_main_context_ref (manager->context);
  task->name = g_strdup (name);
  task->priority = priority;
  task->func = func;
  task->user_data = user_data;
  task->destroy = destroy;

  task->start_source = g_idle_source_new ();
  g_source_set_priority (task->start_source, priority);
  g_source_set_callback (task->start_source, task_start_cb, task, NULL);
  g_source_set_static_name (task->start_source, "[exo] task start");
  g_source_attach (task->start_source, manager->context);

  return task;
}

/* --- ExoTask public API --------------------------------------------------- */

/**
 * exo_task_get_name:
 * @self: a task
 *
 * Returns: (transfer none): the task's name
 */
const char *
exo_task_get_name (ExoTask *self)
{
  g_return_val_if_fail (EXO_IS_TASK (self), NULL);
  return self->name;
}

/**
 * exo_task_get_priority:
 * @self: a task
 *
 * Returns: the #GSource priority the task's body and sources run at
 */
int
exo_task_get_priority (ExoTask *self)
{
  g_return_val_if_fail (EXO_IS_TASK (self), G_PRIORITY_DEFAULT);
  return self->priority;
}

/**
 * exo_task_get_status:
 * @self: a task
 *
 * A cancelled task is %EXO_TASK_STATUS_CANCELLED from the moment it is
 * cancelled, even while its body is still winding down.
 *
 * Returns: the task's status
 */
ExoTaskStatus
exo_task_get_status (ExoTask *self)
{
  g_return_val_if_fail (EXO_IS_TASK (self), EXO_TASK_STATUS_FAILED);
  return self->status;
}

/**
 * exo_task_get_error:
 * @self: a task
 *
 * Returns: (transfer none) (nullable): the error of a failed task,
 *   %G_IO_ERROR_CANCELLED for a cancelled one, %NULL otherwise
 */
const GError *
exo_task_get_error (ExoTask *self)
{
  g_return_val_if_fail (EXO_IS_TASK (self), NULL);
  return self->error;
}

/**
 * exo_task_get_cancellable:
 * @self: a task
 *
 * Returns: (transfer none): the cancellable that is cancelled when the task is
 */
GCancellable *
exo_task_get_cancellable (ExoTask *self)
{
  g_return_val_if_fail (EXO_IS_TASK (self), NULL);
  return self->cancellable;
}

/**
 * exo_task_get_started_at:
 * @self: a task
 *
 * Returns: when the body started, in microseconds since the Unix epoch; 0 if never
 */
gint64
exo_task_get_started_at (ExoTask *self)
{
  g_return_val_if_fail (EXO_IS_TASK (self), 0);
  return self->started_at;
}

/**
 * exo_task_get_finished_at:
 * @self: a task
 *
 * Returns: when the task finished, in microseconds since the Unix epoch; 0 if not yet
 */
gint64
exo_task_get_finished_at (ExoTask *self)
{
  g_return_val_if_fail (EXO_IS_TASK (self), 0);
  return self->finished_at;
}

/**
 * exo_task_is_finished:
 * @self: a task
 *
 * A task is finished when it has succeeded or failed, or when it was
 * cancelled and its body has returned (or never started, or was abandoned
 * after the manager's #ExoTaskManager:cancel-timeout).
 *
 * Returns: whether the task is finished
 */
gboolean
exo_task_is_finished (ExoTask *self)
{
  g_return_val_if_fail (EXO_IS_TASK (self), FALSE);
  return self->finished;
}

/**
 * exo_task_return:
 * @self: a task whose body has started
 * @error: (transfer full) (nullable): why the task failed, or %NULL for success
 *
 * Ends the task's body.  Every body calls this exactly once, now or later,
 * also when it was cancelled; until then the task keeps itself alive.
 *
 * An error %G_IO_ERROR_CANCELLED makes the task cancelled; any other error
 * makes it failed.  After the task was cancelled, @error is ignored, and so
 * are further calls.  Calling it twice otherwise is a programming error.
 */
void
exo_task_return (ExoTask *self,
                 GError  *error)
{
  g_autoptr(GError) owned = error;
  ExoTaskManager *manager;

  g_return_if_fail (EXO_IS_TASK (self));

  if (!self->body_started)
    {
      g_critical ("exo_task_return: the body of task “%s” has not started", self->name);
      return;
    }

  if (!self->body_running)
    {
      if (self->status != EXO_TASK_STATUS_CANCELLED)
        g_critical ("exo_task_return: task “%s” already returned", self->name);
      return;
    }

  self->body_running = FALSE;

  if (self->status == EXO_TASK_STATUS_CANCELLED)
    {
      /* The acknowledgement of a cancellation, or a late return after the
       * manager abandoned the task. */
      if (self->finished)
        task_release_data (self);
      else
        task_finish (self);
      g_object_unref (self);
      return;
    }

  manager = self->manager;
  g_assert (manager != NULL);

  if (owned == NULL)
    {
      manager->n_succeeded++;
      task_set_status (self, EXO_TASK_STATUS_SUCCEEDED);
    }
  else if (g_error_matches (owned, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      manager->n_cancelled++;
      self->error = g_steal_pointer (&owned);
      task_set_status (self, EXO_TASK_STATUS_CANCELLED);
    }
  else
    {
      manager->n_failed++;
      self->error = g_steal_pointer (&owned);
      task_set_status (self, EXO_TASK_STATUS_FAILED);
    }

  task_finish (self);
  g_object_unref (self);
}

/**
 * exo_task_add_source:
 * @self: a task
 * @source: a source that is not attached yet
 *
 * Attaches @source to the task's main context at the task's priority
 * (overriding the priority @source had).  The source is destroyed when the
 * task finishes or is cancelled, so its callback never runs after that.
 * The caller keeps its reference to @source.
 *
 * Returns: the source id, or 0 (and @source is not attached) when the task
 *   is already cancelled or finished
 */
guint
exo_task_add_source (ExoTask *self,
                     GSource *source)
{
  g_return_val_if_fail (EXO_IS_TASK (self), 0);
  g_return_val_if_fail (source != NULL, 0);
  g_return_val_if_fail (g_source_get_context (source) == NULL, 0);

  if (self->finished || self->status == EXO_TASK_STATUS_CANCELLED)
    return 0;

  /* Forget sources that ended on their own, so that a long-running task
   * that adds many one-shot sources keeps a short list. */
  for (guint i = self->sources->len; i > 0; i--)
    {
      if (g_source_is_destroyed (g_ptr_array_index (self->sources, i - 1)))
        g_ptr_array_remove_index_fast (self->sources, i - 1);
    }

  g_source_set_priority (source, self->priority);
  g_ptr_array_add (self->sources, g_source_ref (source));
  return g_source_attach (source, self->context);
}

/**
 * exo_task_timeout_add:
 * @self: a task
 * @interval_ms: the interval in milliseconds
 * @func: (scope notified): called at the task's priority
 * @data: data for @func
 *
 * Like g_timeout_add(), for a source owned by the task: see exo_task_add_source().
 *
 * Returns: the source id, or 0 when the task is already cancelled or finished
 */
guint
exo_task_timeout_add (ExoTask     *self,
                      guint        interval_ms,
                      GSourceFunc  func,
                      gpointer     data)
{
  g_autoptr(GSource) source = NULL;

  g_return_val_if_fail (EXO_IS_TASK (self), 0);
  g_return_val_if_fail (func != NULL, 0);

  source = g_timeout_source_new (interval_ms);
  g_source_set_callback (source, func, data, NULL);
  g_source_set_static_name (source, "[exo] task timeout");
  return exo_task_add_source (self, source);
}

/**
 * exo_task_idle_add:
 * @self: a task
 * @func: (scope notified): called at the task's priority
 * @data: data for @func
 *
 * Like g_idle_add(), but at the task's priority, for a source owned by the
 * task: see exo_task_add_source().
 *
 * Returns: the source id, or 0 when the task is already cancelled or finished
 */
guint
exo_task_idle_add (ExoTask     *self,
                   GSourceFunc  func,
                   gpointer     data)
{
  g_autoptr(GSource) source = NULL;

  g_return_val_if_fail (EXO_IS_TASK (self), 0);
  g_return_val_if_fail (func != NULL, 0);

  source = g_idle_source_new ();
  g_source_set_callback (source, func, data, NULL);
  g_source_set_static_name (source, "[exo] task idle");
  return exo_task_add_source (self, source);
}

static gboolean
task_waiter_cancelled_cb (GCancellable *cancellable,
                          gpointer      user_data)
{
  Waiter *waiter = user_data;
  ExoTask *self = g_task_get_source_object (waiter->gtask);

  g_queue_remove (&self->waiters, waiter);
  _exo_task_waiter_return_cancelled (waiter);
  return G_SOURCE_REMOVE;
}

/**
 * exo_task_wait_async:
 * @self: a task
 * @cancellable: (nullable): stops the wait (not the task)
 * @callback: called when the task is finished
 * @user_data: data for @callback
 *
 * Waits until the task is finished (at once if it already is).
 */
void
exo_task_wait_async (ExoTask             *self,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  g_autoptr(GTask) gtask = NULL;

  g_return_if_fail (EXO_IS_TASK (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  gtask = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (gtask, exo_task_wait_async);

  if (self->finished)
    {
      if (self->status == EXO_TASK_STATUS_SUCCEEDED)
        g_task_return_boolean (gtask, TRUE);
      else
        g_task_return_error (gtask, g_error_copy (self->error));
      return;
    }

  if (g_task_return_error_if_cancelled (gtask))
    return;

  g_queue_push_tail (&self->waiters,
                     _exo_task_waiter_new (g_steal_pointer (&gtask), self->context,
                                 task_waiter_cancelled_cb));
}

/**
 * exo_task_wait_finish:
 * @self: a task
 * @result: the result given to the callback
 * @error: return location for the task's error
 *
 * Returns: %TRUE if the task succeeded; %FALSE with the task's error if it
 *   failed, with %G_IO_ERROR_CANCELLED if it (or the wait) was cancelled
 */
gboolean
exo_task_wait_finish (ExoTask       *self,
                      GAsyncResult  *result,
                      GError       **error)
{
  g_return_val_if_fail (EXO_IS_TASK (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == exo_task_wait_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
