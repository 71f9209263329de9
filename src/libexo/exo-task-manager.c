/* exo-task-manager.c: named background tasks with real priorities.
 *
 * ExoTaskManager: the table of named tasks (active ones by name, cancelled
 * ones still stopping), spawn, lookup, list, cancel, cancel-all and the
 * counters of exo_task_manager_get_statistics().  A task's own lifecycle
 * is in exo-task.c; what the two share is in exo-task-private.h and
 * exo-task-manager-private.h.
 *
 * Rules: not thread-safe: the manager and its tasks are used from the
 * thread that runs the manager's main context (the thread-default one
 * when it was made), and every source is attached there.  Re-entrancy:
 * cancelling a task runs its cancellable's handlers, which may spawn or
 * cancel again; spawn loops until the name is free, and dispose and
 * cancel-all work on a snapshot of the tables.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-task-private.h"
#include "exo-task-manager-private.h"

/**
 * ExoTaskManager:
 *
 * Runs named background tasks in one #GMainContext (the thread-default
 * context when the manager was made).
 *
 * A task's priority is the priority of the #GSource that starts its body
 * and of every source added with exo_task_add_source(),
 * exo_task_timeout_add() or exo_task_idle_add().  When sources of several
 * tasks are ready at once, the main context dispatches those of the
 * higher-priority task first, so priorities really order work.
 *
 * Lifecycle of a task:
 *
 * - exo_task_manager_spawn() makes it `pending`; its body runs from an idle
 *   source at its priority and the task becomes `running`;
 * - the body (or anything it started) ends it with exo_task_return(),
 *   exactly once: the task is `succeeded` or `failed`, it is *finished*;
 * - cancelling (exo_task_manager_cancel(), %EXO_TASK_FLAGS_REPLACE,
 *   exo_task_manager_cancel_all_async() or disposing the manager) makes it
 *   `cancelled` at once: it is counted as cancelled, removed from the name
 *   table, its sources are destroyed and its #GCancellable is cancelled.
 *   A task whose body had not started is finished at once.  A running task is
 *   finished when its body acknowledges with exo_task_return() (the error
 *   given then is ignored), or, if the body does not return within
 *   #ExoTaskManager:cancel-timeout, the manager gives up on it ("abandons"
 *   it) and finishes it anyway; the later exo_task_return() is ignored.
 *
 * When a task finishes, the manager forgets it (exo_task_manager_lookup()
 * returns %NULL), emits #ExoTaskManager::task-finished and completes every
 * exo_task_wait_async().
 *
 * The manager and its tasks are not thread-safe: use them from the thread
 * that runs the manager's main context.
 */

#define DEFAULT_CANCEL_TIMEOUT_MS 5000

enum {
  PROP_0,
  PROP_CANCEL_TIMEOUT,
  PROP_N_ACTIVE,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];

enum {
  TASK_FINISHED,
  N_SIGNALS,
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (ExoTaskManager, exo_task_manager, G_TYPE_OBJECT)

/* --- ExoTask bookkeeping ---------------------------------------------------- */

void
_exo_task_manager_notify_n_active (ExoTaskManager *self)
{
  if (!self->disposing)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_ACTIVE]);
}

/* Tells the cancel-all operations that @task finished; completes those that
 * have nothing left to wait for. */
static void
manager_cancel_ops_task_finished (ExoTaskManager *self,
                                  ExoTask        *task)
{
  GQueue done = G_QUEUE_INIT;
  GList *l = self->cancel_ops.head;

  while (l != NULL)
    {
      GList *next = l->next;
      Waiter *op = l->data;

      g_hash_table_remove (op->pending, task);
      if (g_hash_table_size (op->pending) == 0)
        {
          g_queue_delete_link (&self->cancel_ops, l);
          g_queue_push_tail (&done, op);
        }
      l = next;
    }

  for (Waiter *op; (op = g_queue_pop_head (&done)) != NULL;)
    _exo_task_waiter_return (op, NULL);
}

/* @task finished and left @self (task_finish() in exo-task.c): emits
 * ::task-finished, then completes the cancel-all operations that have
 * nothing left to wait for. */
void
_exo_task_manager_task_finished (ExoTaskManager *self,
                                 ExoTask        *task)
{
  g_signal_emit (self, signals[TASK_FINISHED], 0, task);
  manager_cancel_ops_task_finished (self, task);
}

/* --- ExoTaskManager -------------------------------------------------------- */

static GPtrArray *
manager_snapshot (GHashTable *table,
                  gboolean    values)
{
  GPtrArray *tasks = g_ptr_array_new_full (g_hash_table_size (table), g_object_unref);
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_ptr_array_add (tasks, g_object_ref (values ? value : key));
  return tasks;
}

static void
exo_task_manager_dispose (GObject *object)
{
  ExoTaskManager *self = EXO_TASK_MANAGER (object);
  g_autoptr(GPtrArray) active = NULL;
  g_autoptr(GPtrArray) stopping = NULL;

  /* Cancel everything; bodies that are still running are abandoned, since
   * nobody is left to wait for them. */
  self->disposing = TRUE;

  active = manager_snapshot (self->active, TRUE);
  for (guint i = 0; i < active->len; i++)
    _exo_task_cancel (g_ptr_array_index (active, i), FALSE);

  stopping = manager_snapshot (self->stopping, FALSE);
  for (guint i = 0; i < stopping->len; i++)
    {
      ExoTask *task = g_ptr_array_index (stopping, i);

      if (!task->finished)
        _exo_task_abandon (task);
    }

  g_assert (g_hash_table_size (self->active) == 0);
  g_assert (g_hash_table_size (self->stopping) == 0);
  g_assert (g_queue_is_empty (&self->cancel_ops));

  G_OBJECT_CLASS (exo_task_manager_parent_class)->dispose (object);
}

static void
exo_task_manager_finalize (GObject *object)
{
  ExoTaskManager *self = EXO_TASK_MANAGER (object);

  g_clear_pointer (&self->active, g_hash_table_unref);
  g_clear_pointer (&self->stopping, g_hash_table_unref);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (exo_task_manager_parent_class)->finalize (object);
}

static void
exo_task_manager_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  ExoTaskManager *self = EXO_TASK_MANAGER (object);

  switch (prop_id)
    {
    case PROP_CANCEL_TIMEOUT:
      g_value_set_uint (value, self->cancel_timeout_ms);
      break;
    case PROP_N_ACTIVE:
      g_value_set_uint (value, exo_task_manager_get_n_active (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_task_manager_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  ExoTaskManager *self = EXO_TASK_MANAGER (object);

  switch (prop_id)
    {
    case PROP_CANCEL_TIMEOUT:
      exo_task_manager_set_cancel_timeout (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_task_manager_class_init (ExoTaskManagerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = exo_task_manager_dispose;
  object_class->finalize = exo_task_manager_finalize;
  object_class->get_property = exo_task_manager_get_property;
  object_class->set_property = exo_task_manager_set_property;

  /**
   * ExoTaskManager:cancel-timeout:
   *
   * How long, in milliseconds, a cancelled task's body may take to return
   * with exo_task_return() before the manager abandons it and counts it
   * finished.  0 means not to wait at all.  Default: 5000.
   */
  properties[PROP_CANCEL_TIMEOUT] =
    g_param_spec_uint ("cancel-timeout", NULL, NULL, 0, G_MAXUINT, DEFAULT_CANCEL_TIMEOUT_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoTaskManager:n-active:
   *
   * The number of tasks that are pending or running (not cancelled).
   */
  properties[PROP_N_ACTIVE] =
    g_param_spec_uint ("n-active", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ExoTaskManager::task-finished:
   * @self: the manager
   * @task: the task that finished
   *
   * Emitted when a task is finished, after it left the manager and before
   * its waiters complete.
   */
  signals[TASK_FINISHED] =
    g_signal_new ("task-finished",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, EXO_TYPE_TASK);
}

static void
exo_task_manager_init (ExoTaskManager *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->active = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_object_unref);
  self->stopping = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->cancel_timeout_ms = DEFAULT_CANCEL_TIMEOUT_MS;
  g_queue_init (&self->cancel_ops);
}

/**
 * exo_task_manager_new:
 *
 * Makes a task manager for the thread-default main context.
 *
 * Returns: (transfer full): a new task manager
 */
ExoTaskManager *
exo_task_manager_new (void)
{
  return g_object_new (EXO_TYPE_TASK_MANAGER, NULL);
}

/**
 * exo_task_manager_get_context:
 * @self: a task manager
 *
 * Returns: (transfer none): the main context tasks run in
 */
GMainContext *
exo_task_manager_get_context (ExoTaskManager *self)
{
  g_return_val_if_fail (EXO_IS_TASK_MANAGER (self), NULL);
  return self->context;
}

/**
 * exo_task_manager_get_cancel_timeout:
 * @self: a task manager
 *
 * Returns: the #ExoTaskManager:cancel-timeout in milliseconds
 */
guint
exo_task_manager_get_cancel_timeout (ExoTaskManager *self)
{
  g_return_val_if_fail (EXO_IS_TASK_MANAGER (self), 0);
  return self->cancel_timeout_ms;
}

/**
 * exo_task_manager_set_cancel_timeout:
 * @self: a task manager
 * @timeout_ms: milliseconds; 0 to finish cancelled tasks at once
 *
 * Sets #ExoTaskManager:cancel-timeout; it applies to tasks cancelled after this.
 */
void
exo_task_manager_set_cancel_timeout (ExoTaskManager *self,
                                     guint           timeout_ms)
{
  g_return_if_fail (EXO_IS_TASK_MANAGER (self));

  if (self->cancel_timeout_ms == timeout_ms)
    return;
  self->cancel_timeout_ms = timeout_ms;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CANCEL_TIMEOUT]);
}

/**
 * exo_task_manager_spawn:
 * @self: a task manager
 * @name: the task's name
 * @priority: the #GSource priority of the body and of the task's sources,
 *   e.g. %G_PRIORITY_DEFAULT
 * @flags: what to do when a task called @name is active
 * @func: (scope notified): the body
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data once @func can no longer run
 *
 * Starts a task: @func runs from an idle source at @priority in the
 * manager's main context, and must end with exo_task_return().
 *
 * When an active task is called @name, it is returned instead and
 * @user_data is freed at once, unless @flags has %EXO_TASK_FLAGS_REPLACE:
 * then that task is cancelled (and counted as replaced) and a new one starts.
 *
 * Returns: (transfer none): the task; it stays valid at least until it is
 *   finished (take a reference to keep it longer)
 */
ExoTask *
exo_task_manager_spawn (ExoTaskManager *self,
                        const char     *name,
                        int             priority,
                        ExoTaskFlags    flags,
                        ExoTaskFunc     func,
                        gpointer        user_data,
                        GDestroyNotify  destroy)
{
  ExoTask *task;

  g_return_val_if_fail (EXO_IS_TASK_MANAGER (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (func != NULL, NULL);
  g_return_val_if_fail (!self->disposing, NULL);

  /* A loop: handlers run by a cancellation may spawn under the same name. */
  while ((task = g_hash_table_lookup (self->active, name)) != NULL)
    {
      if ((flags & EXO_TASK_FLAGS_REPLACE) == 0)
        {
          if (destroy != NULL)
            destroy (user_data);
          return task;
        }
      _exo_task_cancel (task, TRUE);
    }

  task = _exo_task_new (self, name, priority, func, user_data, destroy);

  self->n_spawned++;
  g_hash_table_insert (self->active, task->name, task);
  _exo_task_manager_notify_n_active (self);

  return task;
}

/**
 * exo_task_manager_lookup:
 * @self: a task manager
 * @name: a task name
 *
 * Returns: (transfer none) (nullable): the active (pending or running, not
 *   cancelled) task called @name, or %NULL
 */
ExoTask *
exo_task_manager_lookup (ExoTaskManager *self,
                         const char     *name)
{
  g_return_val_if_fail (EXO_IS_TASK_MANAGER (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  return g_hash_table_lookup (self->active, name);
}

static int
compare_by_name (gconstpointer a,
                 gconstpointer b)
{
  ExoTask *ta = *(ExoTask **) a;
  ExoTask *tb = *(ExoTask **) b;

  return g_strcmp0 (ta->name, tb->name);
}

/**
 * exo_task_manager_list:
 * @self: a task manager
 *
 * Returns: (transfer full) (element-type ExoTask): the active tasks, sorted by name
 */
GPtrArray *
exo_task_manager_list (ExoTaskManager *self)
{
  GPtrArray *tasks;

  g_return_val_if_fail (EXO_IS_TASK_MANAGER (self), NULL);

  tasks = manager_snapshot (self->active, TRUE);
  g_ptr_array_sort (tasks, compare_by_name);
  return tasks;
}

/**
 * exo_task_manager_cancel:
 * @self: a task manager
 * @name: a task name
 *
 * Cancels the active task called @name (see #ExoTaskManager for what that does).
 *
 * Returns: %TRUE if there was such a task
 */
gboolean
exo_task_manager_cancel (ExoTaskManager *self,
                         const char     *name)
{
  ExoTask *task;

  g_return_val_if_fail (EXO_IS_TASK_MANAGER (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  task = g_hash_table_lookup (self->active, name);
  if (task == NULL)
    return FALSE;
  _exo_task_cancel (task, FALSE);
  return TRUE;
}

static gboolean
cancel_op_cancelled_cb (GCancellable *cancellable,
                        gpointer      user_data)
{
  Waiter *op = user_data;
  ExoTaskManager *self = g_task_get_source_object (op->gtask);

  g_queue_remove (&self->cancel_ops, op);
  _exo_task_waiter_return_cancelled (op);
  return G_SOURCE_REMOVE;
}

/**
 * exo_task_manager_cancel_all_async:
 * @self: a task manager
 * @cancellable: (nullable): stops the wait (the tasks stay cancelled)
 * @callback: called when every task is finished
 * @user_data: data for @callback
 *
 * Cancels every active task, then waits until every cancelled task is
 * finished: tasks whose body had not started at once, running ones when
 * their body returns or #ExoTaskManager:cancel-timeout passes.  Tasks
 * spawned meanwhile are neither cancelled nor waited for.
 */
void
exo_task_manager_cancel_all_async (ExoTaskManager      *self,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) gtask = NULL;
  g_autoptr(GPtrArray) active = NULL;
  GHashTable *pending;
  Waiter *op;

  g_return_if_fail (EXO_IS_TASK_MANAGER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  gtask = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (gtask, exo_task_manager_cancel_all_async);

  if (g_task_return_error_if_cancelled (gtask))
    return;

  active = manager_snapshot (self->active, TRUE);
  for (guint i = 0; i < active->len; i++)
    _exo_task_cancel (g_ptr_array_index (active, i), FALSE);

  /* Whatever is still stopping now, including tasks cancelled earlier. */
  if (g_hash_table_size (self->stopping) == 0)
    {
      g_task_return_boolean (gtask, TRUE);
      return;
    }

  pending = g_hash_table_new (NULL, NULL);
  {
    GHashTableIter iter;
    gpointer key;

    g_hash_table_iter_init (&iter, self->stopping);
    while (g_hash_table_iter_next (&iter, &key, NULL))
      g_hash_table_add (pending, key);
  }

  op = _exo_task_waiter_new (g_steal_pointer (&gtask), self->context, cancel_op_cancelled_cb);
  op->pending = pending;
  g_queue_push_tail (&self->cancel_ops, op);
}

/**
 * exo_task_manager_cancel_all_finish:
 * @self: a task manager
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Returns: %TRUE when every task is finished; %FALSE with
 *   %G_IO_ERROR_CANCELLED if the wait was cancelled
 */
gboolean
exo_task_manager_cancel_all_finish (ExoTaskManager  *self,
                                    GAsyncResult    *result,
                                    GError         **error)
{
  g_return_val_if_fail (EXO_IS_TASK_MANAGER (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == exo_task_manager_cancel_all_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * exo_task_manager_get_n_active:
 * @self: a task manager
 *
 * Returns: the number of pending or running tasks that are not cancelled
 */
guint
exo_task_manager_get_n_active (ExoTaskManager *self)
{
  g_return_val_if_fail (EXO_IS_TASK_MANAGER (self), 0);
  return g_hash_table_size (self->active);
}

/**
 * exo_task_manager_get_statistics:
 * @self: a task manager
 *
 * The counters, as `a{sv}` with `t` (guint64) values:
 *
 * - `spawned`: tasks made by exo_task_manager_spawn() (a duplicate name that
 *   returns the running task does not count)
 * - `active`: pending or running tasks, not cancelled
 * - `succeeded`, `failed`: tasks that returned without / with an error
 * - `cancelled`: tasks cancelled (counted when cancelled, whether or not
 *   their body has returned yet), including those whose body returned
 *   %G_IO_ERROR_CANCELLED
 * - `replaced`: the cancelled tasks that %EXO_TASK_FLAGS_REPLACE cancelled
 * - `stopping`: cancelled tasks whose body has not returned yet
 * - `abandoned`: cancelled tasks finished by #ExoTaskManager:cancel-timeout
 *   (or by disposing the manager) before their body returned
 *
 * Always `spawned == active + succeeded + failed + cancelled`.
 *
 * Returns: (transfer full): the statistics
 */
GVariant *
exo_task_manager_get_statistics (ExoTaskManager *self)
{
  GVariantDict dict;

  g_return_val_if_fail (EXO_IS_TASK_MANAGER (self), NULL);

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "spawned", "t", self->n_spawned);
  g_variant_dict_insert (&dict, "active", "t", (guint64) g_hash_table_size (self->active));
  g_variant_dict_insert (&dict, "succeeded", "t", self->n_succeeded);
  g_variant_dict_insert (&dict, "failed", "t", self->n_failed);
  g_variant_dict_insert (&dict, "cancelled", "t", self->n_cancelled);
  g_variant_dict_insert (&dict, "replaced", "t", self->n_replaced);
  g_variant_dict_insert (&dict, "stopping", "t", (guint64) g_hash_table_size (self->stopping));
  g_variant_dict_insert (&dict, "abandoned", "t", self->n_abandoned);
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}
