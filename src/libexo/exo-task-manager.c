/* exo-task-manager.c: named background tasks with real priorities.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-private.h"

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

/**
 * ExoTask:
 *
 * One task of an #ExoTaskManager.  See #ExoTaskManager for its lifecycle.
 */

#define DEFAULT_CANCEL_TIMEOUT_MS 5000

/* A pending exo_task_wait_async() or exo_task_manager_cancel_all_async(). */
typedef struct
{
  GTask      *gtask;
  GSource    *cancel_source;  /* watches the caller's cancellable, or NULL */
  GHashTable *pending;        /* cancel-all only: the ExoTasks still to finish */
} Waiter;

struct _ExoTask
{
  GObject         parent_instance;

  ExoTaskManager *manager;        /* unowned; NULL once finished */
  GMainContext   *context;
  char           *name;
  int             priority;
  ExoTaskStatus   status;
  GError         *error;
  GCancellable   *cancellable;
  gint64          started_at;
  gint64          finished_at;

  ExoTaskFunc     func;
  gpointer        user_data;
  GDestroyNotify  destroy;

  GSource        *start_source;
  GSource        *grace_source;   /* cancel-timeout of a cancelled, running task */
  GPtrArray      *sources;        /* GSource refs added by the task */
  GQueue          waiters;        /* Waiter */

  guint           body_started : 1;
  guint           body_running : 1;  /* started and exo_task_return() not called */
  guint           finished : 1;
};

struct _ExoTaskManager
{
  GObject       parent_instance;

  GMainContext *context;
  GHashTable   *active;     /* name (owned by the task) -> ExoTask (ref) */
  GHashTable   *stopping;   /* ExoTask (ref): cancelled, body not returned yet */
  GQueue        cancel_ops; /* Waiter */
  guint         cancel_timeout_ms;

  guint64       n_spawned;
  guint64       n_succeeded;
  guint64       n_failed;
  guint64       n_cancelled;
  guint64       n_replaced;
  guint64       n_abandoned;

  guint         disposing : 1;
};

enum {
  TASK_PROP_0,
  TASK_PROP_NAME,
  TASK_PROP_PRIORITY,
  TASK_PROP_STATUS,
  TASK_N_PROPS,
};

static GParamSpec *task_properties[TASK_N_PROPS];

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

G_DEFINE_FINAL_TYPE (ExoTask, exo_task, G_TYPE_OBJECT)
G_DEFINE_FINAL_TYPE (ExoTaskManager, exo_task_manager, G_TYPE_OBJECT)

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

static Waiter *
waiter_new (GTask                   *gtask,
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
static void
waiter_return (Waiter       *waiter,
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

static void
waiter_return_cancelled (Waiter *waiter)
{
  g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                 "Operation was cancelled");

  waiter_return (waiter, error);
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

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
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

static void
manager_notify_n_active (ExoTaskManager *self)
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
    waiter_return (op, NULL);
}

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
          manager_notify_n_active (manager);
        }
      g_hash_table_remove (manager->stopping, self);

      g_signal_emit (manager, signals[TASK_FINISHED], 0, self);
      manager_cancel_ops_task_finished (manager, self);
    }

  for (Waiter *waiter; (waiter = g_queue_pop_head (&self->waiters)) != NULL;)
    waiter_return (waiter, self->status == EXO_TASK_STATUS_SUCCEEDED ? NULL : self->error);
}

static void
task_abandon (ExoTask *self)
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
  task_abandon (self);
  return G_SOURCE_REMOVE;
}

/* Cancels an unfinished task: see the lifecycle in the class comment. */
static void
task_cancel (ExoTask  *self,
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
      manager_notify_n_active (manager);
    }

  task_set_status (self, EXO_TASK_STATUS_CANCELLED);

  /* Handlers may call exo_task_return() from here. */
  g_cancellable_cancel (self->cancellable);
  if (self->finished)
    return;

  if (!self->body_running)
    task_finish (self);
  else if (manager->disposing || manager->cancel_timeout_ms == 0)
    task_abandon (self);
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
  waiter_return_cancelled (waiter);
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
                     waiter_new (g_steal_pointer (&gtask), self->context,
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
    task_cancel (g_ptr_array_index (active, i), FALSE);

  stopping = manager_snapshot (self->stopping, FALSE);
  for (guint i = 0; i < stopping->len; i++)
    {
      ExoTask *task = g_ptr_array_index (stopping, i);

      if (!task->finished)
        task_abandon (task);
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
      task_cancel (task, TRUE);
    }

  task = g_object_new (EXO_TYPE_TASK, NULL);
  task->manager = self;
  task->context = g_main_context_ref (self->context);
  task->name = g_strdup (name);
  task->priority = priority;
  task->func = func;
  task->user_data = user_data;
  task->destroy = destroy;

  task->start_source = g_idle_source_new ();
  g_source_set_priority (task->start_source, priority);
  g_source_set_callback (task->start_source, task_start_cb, task, NULL);
  g_source_set_static_name (task->start_source, "[exo] task start");
  g_source_attach (task->start_source, self->context);

  self->n_spawned++;
  g_hash_table_insert (self->active, task->name, task);
  manager_notify_n_active (self);

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
  task_cancel (task, FALSE);
  return TRUE;
}

static gboolean
cancel_op_cancelled_cb (GCancellable *cancellable,
                        gpointer      user_data)
{
  Waiter *op = user_data;
  ExoTaskManager *self = g_task_get_source_object (op->gtask);

  g_queue_remove (&self->cancel_ops, op);
  waiter_return_cancelled (op);
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
    task_cancel (g_ptr_array_index (active, i), FALSE);

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

  op = waiter_new (g_steal_pointer (&gtask), self->context, cancel_op_cancelled_cb);
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
