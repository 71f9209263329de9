/* exo-task.h: one named background task of an #ExoTaskManager.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-types.h>

G_BEGIN_DECLS

#define EXO_TYPE_TASK (exo_task_get_type ())
#define EXO_TYPE_TASK_STATUS (exo_task_status_get_type ())

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
