/* exo-task-manager.h: named background tasks with real priorities.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-types.h>

G_BEGIN_DECLS

#define EXO_TYPE_TASK_MANAGER (exo_task_manager_get_type ())
#define EXO_TYPE_TASK (exo_task_get_type ())
#define EXO_TYPE_TASK_STATUS (exo_task_status_get_type ())

EXO_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ExoTaskManager, exo_task_manager, EXO, TASK_MANAGER, GObject)
EXO_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ExoTask, exo_task, EXO, TASK, GObject)

/**
 * ExoTaskStatus:
 * @EXO_TASK_STATUS_PENDING: spawned, its first dispatch has not run yet
 * @EXO_TASK_STATUS_RUNNING: started, not finished
 * @EXO_TASK_STATUS_SUCCEEDED: finished without error
 * @EXO_TASK_STATUS_FAILED: finished with an error
 * @EXO_TASK_STATUS_CANCELLED: cancelled before or while running
 */
typedef enum {
  EXO_TASK_STATUS_PENDING,
  EXO_TASK_STATUS_RUNNING,
  EXO_TASK_STATUS_SUCCEEDED,
  EXO_TASK_STATUS_FAILED,
  EXO_TASK_STATUS_CANCELLED,
} ExoTaskStatus;

/**
 * ExoTaskFlags:
 * @EXO_TASK_FLAGS_NONE: a task with the same name that is still running is returned instead
 * @EXO_TASK_FLAGS_REPLACE: cancel a running task of the same name and start this one
 */
typedef enum {
  EXO_TASK_FLAGS_NONE    = 0,
  EXO_TASK_FLAGS_REPLACE = 1 << 0,
} ExoTaskFlags;

/**
 * ExoTaskFunc:
 * @task: the task; finish it with exo_task_return() (now or later)
 * @cancellable: cancelled when the task is cancelled
 * @user_data: data given to exo_task_manager_spawn()
 *
 * The body of a task.  It is called from a #GSource at the task's priority;
 * sources added with exo_task_add_source() and friends run at that priority too.
 */
typedef void (*ExoTaskFunc) (ExoTask      *task,
                             GCancellable *cancellable,
                             gpointer      user_data);

EXO_AVAILABLE_IN_ALL
GType            exo_task_status_get_type         (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
const char      *exo_task_status_to_string        (ExoTaskStatus status);

EXO_AVAILABLE_IN_ALL
ExoTaskManager  *exo_task_manager_new             (void);
EXO_AVAILABLE_IN_ALL
GMainContext    *exo_task_manager_get_context     (ExoTaskManager *self);
EXO_AVAILABLE_IN_ALL
guint            exo_task_manager_get_cancel_timeout (ExoTaskManager *self);
EXO_AVAILABLE_IN_ALL
void             exo_task_manager_set_cancel_timeout (ExoTaskManager *self,
                                                      guint           timeout_ms);
EXO_AVAILABLE_IN_ALL
ExoTask         *exo_task_manager_spawn           (ExoTaskManager *self,
                                                   const char     *name,
                                                   int             priority,
                                                   ExoTaskFlags    flags,
                                                   ExoTaskFunc     func,
                                                   gpointer        user_data,
                                                   GDestroyNotify  destroy);
EXO_AVAILABLE_IN_ALL
ExoTask         *exo_task_manager_lookup          (ExoTaskManager *self,
                                                   const char     *name);
EXO_AVAILABLE_IN_ALL
GPtrArray       *exo_task_manager_list            (ExoTaskManager *self);
EXO_AVAILABLE_IN_ALL
gboolean         exo_task_manager_cancel          (ExoTaskManager *self,
                                                   const char     *name);
EXO_AVAILABLE_IN_ALL
void             exo_task_manager_cancel_all_async  (ExoTaskManager      *self,
                                                     GCancellable        *cancellable,
                                                     GAsyncReadyCallback  callback,
                                                     gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gboolean         exo_task_manager_cancel_all_finish (ExoTaskManager      *self,
                                                     GAsyncResult        *result,
                                                     GError             **error);
EXO_AVAILABLE_IN_ALL
guint            exo_task_manager_get_n_active    (ExoTaskManager *self);
EXO_AVAILABLE_IN_ALL
GVariant        *exo_task_manager_get_statistics  (ExoTaskManager *self);

EXO_AVAILABLE_IN_ALL
const char      *exo_task_get_name                (ExoTask        *self);
EXO_AVAILABLE_IN_ALL
int              exo_task_get_priority            (ExoTask        *self);
EXO_AVAILABLE_IN_ALL
ExoTaskStatus    exo_task_get_status              (ExoTask        *self);
EXO_AVAILABLE_IN_ALL
const GError    *exo_task_get_error               (ExoTask        *self);
EXO_AVAILABLE_IN_ALL
GCancellable    *exo_task_get_cancellable         (ExoTask        *self);
EXO_AVAILABLE_IN_ALL
gint64           exo_task_get_started_at          (ExoTask        *self);
EXO_AVAILABLE_IN_ALL
gint64           exo_task_get_finished_at         (ExoTask        *self);
EXO_AVAILABLE_IN_ALL
gboolean         exo_task_is_finished             (ExoTask        *self);
EXO_AVAILABLE_IN_ALL
void             exo_task_return                  (ExoTask        *self,
                                                   GError         *error);
EXO_AVAILABLE_IN_ALL
guint            exo_task_add_source              (ExoTask        *self,
                                                   GSource        *source);
EXO_AVAILABLE_IN_ALL
guint            exo_task_timeout_add             (ExoTask        *self,
                                                   guint           interval_ms,
                                                   GSourceFunc     func,
                                                   gpointer        data);
EXO_AVAILABLE_IN_ALL
guint            exo_task_idle_add                (ExoTask        *self,
                                                   GSourceFunc     func,
                                                   gpointer        data);
EXO_AVAILABLE_IN_ALL
void             exo_task_wait_async              (ExoTask             *self,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gboolean         exo_task_wait_finish             (ExoTask             *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);

G_END_DECLS
