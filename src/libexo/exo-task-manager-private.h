/* exo-task-manager-private.h: what exo-task-manager.c shares with
 * exo-task.c: the ExoTaskManager structure, whose tables and counters a
 * task's lifecycle updates, and the two notifications that need the
 * manager's property and signal.  Not installed, not scanned for
 * introspection.
 *
 * The same rules as in exo-task-manager.c hold: the thread that runs the
 * manager's main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "exo-private.h"

G_BEGIN_DECLS

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

/* Notifies ExoTaskManager:n-active (not while disposing). */
void _exo_task_manager_notify_n_active (ExoTaskManager *self);
/* Called when @task finished and left @self: ::task-finished, cancel-all. */
void _exo_task_manager_task_finished   (ExoTaskManager *self,
                                        ExoTask        *task);

G_END_DECLS
