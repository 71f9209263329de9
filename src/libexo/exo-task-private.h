/* exo-task-private.h: what exo-task.c shares with exo-task-manager.c: the
 * ExoTask structure, the waiters of exo_task_wait_async() and
 * exo_task_manager_cancel_all_async(), and the task lifecycle calls the
 * manager makes.  Not installed, not scanned for introspection.
 *
 * The same rules as in exo-task.c hold: the thread that runs the
 * manager's main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "exo-private.h"

G_BEGIN_DECLS

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

/* Waiters complete their GTask with the task's (or cancel-all's) result;
 * @cancelled_cb runs in @context when the caller's cancellable fires. */
Waiter  *_exo_task_waiter_new              (GTask                  *gtask,
                                            GMainContext           *context,
                                            GCancellableSourceFunc  cancelled_cb);
void     _exo_task_waiter_return           (Waiter                 *waiter,
                                            const GError           *error);
void     _exo_task_waiter_return_cancelled (Waiter                 *waiter);

/* For exo_task_manager_spawn(). */
ExoTask *_exo_task_new                     (ExoTaskManager         *manager,
                                            const char             *name,
                                            int                     priority,
                                            ExoTaskFunc             func,
                                            gpointer                user_data,
                                            GDestroyNotify          destroy);
/* Cancels an unfinished task (see the lifecycle in ExoTaskManager's doc);
 * @replaced: by EXO_TASK_FLAGS_REPLACE. */
void     _exo_task_cancel                  (ExoTask                *self,
                                            gboolean                replaced);
/* Finishes a cancelled task whose body has not returned (counted as abandoned). */
void     _exo_task_abandon                 (ExoTask                *self);

G_END_DECLS
