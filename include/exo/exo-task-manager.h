/* exo-task-manager.h: named background tasks with real priorities.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-task.h>

G_BEGIN_DECLS

#define EXO_TYPE_TASK_MANAGER (exo_task_manager_get_type ())

EXO_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ExoTaskManager, exo_task_manager, EXO, TASK_MANAGER, GObject)

/**
 * ExoTaskFlags:
 * @EXO_TASK_FLAGS_NONE: a task with the same name that is still running is returned instead
 * @EXO_TASK_FLAGS_REPLACE: cancel a running task of the same name and start this one
 */
typedef enum {
  EXO_TASK_FLAGS_NONE    = 0,
  EXO_TASK_FLAGS_REPLACE = 1 << 0,
} ExoTaskFlags;

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

G_END_DECLS
