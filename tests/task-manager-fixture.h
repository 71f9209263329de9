/* task-manager-fixture.h: what the parts of test-task-manager share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program is test-task-manager.c (main(), status strings, spawn and
 * lookup, priorities, names) and test-task-manager-{cancel,results}.c; each
 * part registers its cases through the test_task_manager_register_*()
 * function below.  task-manager-fixture.c has the statistics check, the
 * wait conditions and the task bodies the cases spawn.  One thread: the
 * manager runs its tasks on the test's thread-default main context.
 */
#pragma once

#include "exo-test-util.h"

G_BEGIN_DECLS

#define WAIT_MS 5000

typedef struct
{
  guint64 spawned;
  guint64 active;
  guint64 succeeded;
  guint64 failed;
  guint64 cancelled;
  guint64 replaced;
  guint64 stopping;
  guint64 abandoned;
} Stats;

#define assert_stats(manager, sp, ac, su, fa, ca, re)             \
  G_STMT_START {                                                  \
    Stats _s = get_stats (manager);                               \
    g_assert_cmpuint (_s.spawned, ==, (sp));                      \
    g_assert_cmpuint (_s.active, ==, (ac));                       \
    g_assert_cmpuint (_s.succeeded, ==, (su));                    \
    g_assert_cmpuint (_s.failed, ==, (fa));                       \
    g_assert_cmpuint (_s.cancelled, ==, (ca));                    \
    g_assert_cmpuint (_s.replaced, ==, (re));                     \
  } G_STMT_END

/* A body that, when cancelled, returns a little later from a plain timeout. */
typedef struct
{
  ExoTask *task;
  guint    delay_ms;
  guint   *n_returned;
  guint    destroyed;
} Slow;

Stats get_stats (ExoTaskManager *manager);
gboolean no_active_tasks (gpointer data);
gboolean task_is_finished (gpointer data);
gboolean task_is_running (gpointer data);
void count_finished_cb (ExoTaskManager *manager,
                        ExoTask        *task,
                        gpointer        user_data);
void count_destroy (gpointer data);
void log_body (ExoTask      *task,
               GCancellable *cancellable,
               gpointer      user_data);
void succeed_body (ExoTask      *task,
                   GCancellable *cancellable,
                   gpointer      user_data);
void fail_body (ExoTask      *task,
                GCancellable *cancellable,
                gpointer      user_data);
void never_body (ExoTask      *task,
                 GCancellable *cancellable,
                 gpointer      user_data);
void hold_body (ExoTask      *task,
                GCancellable *cancellable,
                gpointer      user_data);
gboolean never_cb (gpointer data);
void slow_body (ExoTask      *task,
                GCancellable *cancellable,
                gpointer      user_data);
void slow_destroy (gpointer data);

/* The cases of each part of the program; main() calls these in order. */
void test_task_manager_register_cancel (void);
void test_task_manager_register_results (void);

G_END_DECLS
