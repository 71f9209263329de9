/* test-task-manager.c: ExoTaskManager — priorities that really order work,
 * names, replace, cancel, cancel-all, wait, statistics, dispose.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * main(), status strings, spawn and lookup, priorities and names are here;
 * cancel and cancel-all in test-task-manager-cancel.c; wait, return misuse,
 * statistics and dispose in test-task-manager-results.c; the bodies and
 * checks they share in task-manager-fixture.c.  One thread: the test spins
 * its thread-default main context.
 */
#include "task-manager-fixture.h"

/* --- types --------------------------------------------------------------- */

static void
test_status_strings (void)
{
  GEnumClass *klass = g_type_class_ref (EXO_TYPE_TASK_STATUS);

  g_assert_cmpstr (exo_task_status_to_string (EXO_TASK_STATUS_PENDING), ==, "pending");
  g_assert_cmpstr (exo_task_status_to_string (EXO_TASK_STATUS_RUNNING), ==, "running");
  g_assert_cmpstr (exo_task_status_to_string (EXO_TASK_STATUS_SUCCEEDED), ==, "succeeded");
  g_assert_cmpstr (exo_task_status_to_string (EXO_TASK_STATUS_FAILED), ==, "failed");
  g_assert_cmpstr (exo_task_status_to_string (EXO_TASK_STATUS_CANCELLED), ==, "cancelled");
  g_assert_cmpstr (exo_task_status_to_string (42), ==, "invalid");

  for (guint i = 0; i < klass->n_values; i++)
    g_assert_cmpstr (klass->values[i].value_nick, ==,
                     exo_task_status_to_string (klass->values[i].value));
  g_type_class_unref (klass);
}

/* --- spawn, lookup, pruning ------------------------------------------------ */

static void
test_spawn_basic (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(ExoTask) task = NULL;
  g_autoptr(GPtrArray) list = NULL;
  guint finished = 0;
  gint64 before = g_get_real_time ();

  g_signal_connect (manager, "task-finished", G_CALLBACK (count_finished_cb), &finished);

  task = g_object_ref (exo_task_manager_spawn (manager, "one", G_PRIORITY_DEFAULT,
                                               EXO_TASK_FLAGS_NONE, log_body, log, NULL));
  g_assert_nonnull (task);
  g_assert_cmpstr (exo_task_get_name (task), ==, "one");
  g_assert_cmpint (exo_task_get_priority (task), ==, G_PRIORITY_DEFAULT);
  g_assert_cmpint (exo_task_get_status (task), ==, EXO_TASK_STATUS_PENDING);
  g_assert_false (exo_task_is_finished (task));
  g_assert_cmpint (exo_task_get_started_at (task), ==, 0);
  g_assert_true (G_IS_CANCELLABLE (exo_task_get_cancellable (task)));

  /* The body runs from the main loop, not from spawn. */
  g_assert_cmpstr (log->str, ==, "");
  g_assert_true (exo_task_manager_lookup (manager, "one") == task);
  g_assert_cmpuint (exo_task_manager_get_n_active (manager), ==, 1);
  assert_stats (manager, 1, 1, 0, 0, 0, 0);

  g_assert_true (exo_test_spin_until (task_is_finished, task, WAIT_MS));
  g_assert_cmpstr (log->str, ==, "one;");
  g_assert_cmpint (exo_task_get_status (task), ==, EXO_TASK_STATUS_SUCCEEDED);
  g_assert_null (exo_task_get_error (task));
  g_assert_cmpint (exo_task_get_started_at (task), >=, before);
  g_assert_cmpint (exo_task_get_finished_at (task), >=, exo_task_get_started_at (task));
  g_assert_cmpuint (finished, ==, 1);

  /* Pruned. */
  g_assert_null (exo_task_manager_lookup (manager, "one"));
  list = exo_task_manager_list (manager);
  g_assert_cmpuint (list->len, ==, 0);
  assert_stats (manager, 1, 0, 1, 0, 0, 0);

  /* The name is free again. */
  g_assert_true (exo_task_manager_spawn (manager, "one", G_PRIORITY_DEFAULT,
                                         EXO_TASK_FLAGS_NONE, log_body, log, NULL) != task);
  g_assert_true (exo_test_spin_until (no_active_tasks, manager, WAIT_MS));
  g_assert_cmpstr (log->str, ==, "one;one;");
  assert_stats (manager, 2, 0, 2, 0, 0, 0);
}

static void
test_list_and_lookup (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  ExoTask *held[3] = { NULL, NULL, NULL };
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GPtrArray) list2 = NULL;
  g_autoptr(GPtrArray) list3 = NULL;

  exo_task_manager_spawn (manager, "c", G_PRIORITY_DEFAULT, 0, hold_body, &held[2], NULL);
  exo_task_manager_spawn (manager, "a", G_PRIORITY_DEFAULT, 0, hold_body, &held[0], NULL);
  exo_task_manager_spawn (manager, "b", G_PRIORITY_DEFAULT, 0, hold_body, &held[1], NULL);

  list = exo_task_manager_list (manager);
  g_assert_cmpuint (list->len, ==, 3);
  g_assert_cmpstr (exo_task_get_name (g_ptr_array_index (list, 0)), ==, "a");
  g_assert_cmpstr (exo_task_get_name (g_ptr_array_index (list, 1)), ==, "b");
  g_assert_cmpstr (exo_task_get_name (g_ptr_array_index (list, 2)), ==, "c");

  for (guint i = 0; i < 3; i++)
    g_assert_true (exo_test_spin_until (task_is_running, g_ptr_array_index (list, i), WAIT_MS));
  g_assert_true (held[0] == g_ptr_array_index (list, 0));

  /* b finishes: only a and c are listed; a is cancelled: only c. */
  exo_task_return (held[1], NULL);
  g_assert_null (exo_task_manager_lookup (manager, "b"));
  list2 = exo_task_manager_list (manager);
  g_assert_cmpuint (list2->len, ==, 2);
  g_assert_cmpstr (exo_task_get_name (g_ptr_array_index (list2, 0)), ==, "a");
  g_assert_cmpstr (exo_task_get_name (g_ptr_array_index (list2, 1)), ==, "c");

  g_assert_true (exo_task_manager_cancel (manager, "a"));
  g_assert_false (exo_task_manager_cancel (manager, "a"));
  g_assert_false (exo_task_manager_cancel (manager, "nope"));
  g_assert_null (exo_task_manager_lookup (manager, "a"));
  list3 = exo_task_manager_list (manager);
  g_assert_cmpuint (list3->len, ==, 1);
  g_assert_cmpstr (exo_task_get_name (g_ptr_array_index (list3, 0)), ==, "c");

  exo_task_return (held[0], NULL);   /* acknowledges the cancellation */
  exo_task_return (held[2], NULL);
  assert_stats (manager, 3, 0, 2, 0, 1, 0);
}

/* The manager belongs to the thread-default context when it was made. */
static void
test_context (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(ExoTaskManager) manager = NULL;
  g_autoptr(GString) log = g_string_new (NULL);
  ExoTask *task;

  g_main_context_push_thread_default (context);
  manager = exo_task_manager_new ();
  g_main_context_pop_thread_default (context);

  g_assert_true (exo_task_manager_get_context (manager) == context);
  task = exo_task_manager_spawn (manager, "ctx", G_PRIORITY_DEFAULT, 0, log_body, log, NULL);
  g_assert_nonnull (task);

  /* Iterating the global default context does not run it. */
  for (guint i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpstr (log->str, ==, "");

  while (exo_task_manager_get_n_active (manager) > 0)
    g_main_context_iteration (context, TRUE);
  g_assert_cmpstr (log->str, ==, "ctx;");
}

/* --- priorities (the regression test for priorities that had no effect) -- */

static void
test_priority_start_order (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(GString) log = g_string_new (NULL);

  /* Spawned low first, both ready at the same time: high runs first. */
  exo_task_manager_spawn (manager, "low", G_PRIORITY_LOW, 0, log_body, log, NULL);
  exo_task_manager_spawn (manager, "default", G_PRIORITY_DEFAULT, 0, log_body, log, NULL);
  exo_task_manager_spawn (manager, "high", G_PRIORITY_HIGH, 0, log_body, log, NULL);

  g_assert_true (exo_test_spin_until (no_active_tasks, manager, WAIT_MS));
  g_assert_cmpstr (log->str, ==, "high;default;low;");
}

typedef struct
{
  ExoTask    *task;
  GString    *log;
  const char *tag;
  guint       left;
} Stepper;

static gboolean
step_cb (gpointer data)
{
  Stepper *stepper = data;

  g_assert_cmpint (g_source_get_priority (g_main_current_source ()), ==,
                   exo_task_get_priority (stepper->task));
  g_string_append (stepper->log, stepper->tag);
  if (--stepper->left > 0)
    return G_SOURCE_CONTINUE;

  exo_task_return (stepper->task, NULL);
  return G_SOURCE_REMOVE;
}

static void
stepper_body (ExoTask      *task,
              GCancellable *cancellable,
              gpointer      user_data)
{
  Stepper *stepper = user_data;

  stepper->task = task;
}

/* Two running tasks each have an idle step that repeats 5 times; both
 * steps are ready at the same time.  Returns the order the steps ran in. */
static char *
run_steps (int low_priority,
           int high_priority)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(GString) log = g_string_new (NULL);
  Stepper low = { NULL, log, "l", 5 };
  Stepper high = { NULL, log, "h", 5 };
  ExoTask *low_task, *high_task;

  low_task = exo_task_manager_spawn (manager, "low", low_priority, 0, stepper_body, &low, NULL);
  high_task = exo_task_manager_spawn (manager, "high", high_priority, 0, stepper_body, &high, NULL);
  g_assert_true (exo_test_spin_until (task_is_running, low_task, WAIT_MS));
  g_assert_true (exo_test_spin_until (task_is_running, high_task, WAIT_MS));

  /* Low first, so that list order would favour it. */
  g_assert_cmpuint (exo_task_idle_add (low.task, step_cb, &low), >, 0);
  g_assert_cmpuint (exo_task_idle_add (high.task, step_cb, &high), >, 0);

  g_assert_true (exo_test_spin_until (no_active_tasks, manager, WAIT_MS));
  assert_stats (manager, 2, 0, 2, 0, 0, 0);
  return g_strdup (log->str);
}

static void
test_priority_steps (void)
{
  g_autofree char *prioritised = run_steps (G_PRIORITY_LOW, G_PRIORITY_HIGH);
  g_autofree char *equal = run_steps (G_PRIORITY_DEFAULT_IDLE, G_PRIORITY_DEFAULT_IDLE);
  g_autofree char *reversed = run_steps (G_PRIORITY_HIGH, G_PRIORITY_LOW);

  /* All of the high-priority task's steps run before any of the other's. */
  g_assert_cmpstr (prioritised, ==, "hhhhhlllll");
  g_assert_cmpstr (reversed, ==, "lllllhhhhh");

  /* The control: with equal priorities the steps interleave, so the
   * assertion above would catch priorities that have no effect. */
  g_assert_cmpstr (equal, !=, "hhhhhlllll");
  g_assert_nonnull (strstr (equal, "lh"));
}

/* A high-priority task whose body adds steps at once keeps a low-priority
 * task that was spawned first from starting until it is done. */
static void
chain_body (ExoTask      *task,
            GCancellable *cancellable,
            gpointer      user_data)
{
  Stepper *stepper = user_data;

  stepper->task = task;
  g_string_append (stepper->log, "start;");
  exo_task_idle_add (task, step_cb, stepper);
}

static void
test_priority_over_start (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(GString) log = g_string_new (NULL);
  Stepper high = { NULL, log, "h", 5 };

  exo_task_manager_spawn (manager, "low", G_PRIORITY_LOW, 0, log_body, log, NULL);
  exo_task_manager_spawn (manager, "high", G_PRIORITY_HIGH, 0, chain_body, &high, NULL);

  g_assert_true (exo_test_spin_until (no_active_tasks, manager, WAIT_MS));
  g_assert_cmpstr (log->str, ==, "start;hhhhhlow;");
}

/* Sources added through the task take its priority. */
static void
test_priority_sources (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  GMainContext *context = exo_task_manager_get_context (manager);
  ExoTask *held = NULL;
  g_autoptr(GSource) source = g_timeout_source_new (60000);
  guint id;

  exo_task_manager_spawn (manager, "p", 42, 0, hold_body, &held, NULL);
  g_assert_true (exo_test_spin_until (task_is_running, exo_task_manager_lookup (manager, "p"),
                                      WAIT_MS));

  id = exo_task_timeout_add (held, 60000, never_cb, NULL);
  g_assert_cmpint (g_source_get_priority (g_main_context_find_source_by_id (context, id)), ==, 42);
  id = exo_task_idle_add (held, never_cb, NULL);
  g_assert_cmpint (g_source_get_priority (g_main_context_find_source_by_id (context, id)), ==, 42);

  g_source_set_priority (source, G_PRIORITY_HIGH);
  g_source_set_callback (source, never_cb, NULL, NULL);
  id = exo_task_add_source (held, source);
  g_assert_cmpuint (id, ==, g_source_get_id (source));
  g_assert_cmpint (g_source_get_priority (source), ==, 42);
  g_assert_true (g_source_get_context (source) == context);

  /* Finishing destroys them all (the idle one would otherwise fire). */
  exo_task_return (held, NULL);
  g_assert_true (g_source_is_destroyed (source));
  exo_test_spin (20);
}

/* --- names: duplicates and REPLACE --------------------------------------- */

static void
test_duplicate (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  ExoTask *held = NULL;
  ExoTask *first, *second;
  guint destroyed = 0;

  first = exo_task_manager_spawn (manager, "dup", G_PRIORITY_DEFAULT, 0, hold_body, &held,
                                  NULL);
  second = exo_task_manager_spawn (manager, "dup", G_PRIORITY_HIGH, 0, never_body, &destroyed,
                                   count_destroy);
  g_assert_true (first == second);
  g_assert_cmpuint (destroyed, ==, 1);   /* the unused data is freed at once */
  assert_stats (manager, 1, 1, 0, 0, 0, 0);

  g_assert_true (exo_test_spin_until (task_is_running, first, WAIT_MS));
  g_assert_true (exo_task_manager_spawn (manager, "dup", G_PRIORITY_DEFAULT, 0, never_body,
                                         NULL, NULL) == first);
  exo_task_return (held, NULL);
  assert_stats (manager, 1, 0, 1, 0, 0, 0);
}

static void
test_replace (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(ExoTask) old = NULL;
  g_autoptr(ExoTask) replacement = NULL;
  ExoTask *held = NULL;
  guint finished = 0;
  guint destroyed = 0;

  g_signal_connect (manager, "task-finished", G_CALLBACK (count_finished_cb), &finished);

  /* Replacing a running task. */
  old = g_object_ref (exo_task_manager_spawn (manager, "job", G_PRIORITY_DEFAULT, 0,
                                              hold_body, &held, NULL));
  g_assert_true (exo_test_spin_until (task_is_running, old, WAIT_MS));

  replacement = g_object_ref (exo_task_manager_spawn (manager, "job", G_PRIORITY_DEFAULT,
                                                      EXO_TASK_FLAGS_REPLACE, log_body, log,
                                                      NULL));
  g_assert_true (replacement != old);
  g_assert_cmpint (exo_task_get_status (old), ==, EXO_TASK_STATUS_CANCELLED);
  g_assert_true (g_cancellable_is_cancelled (exo_task_get_cancellable (old)));
  g_assert_true (g_error_matches (exo_task_get_error (old), G_IO_ERROR, G_IO_ERROR_CANCELLED));
  g_assert_true (exo_task_manager_lookup (manager, "job") == replacement);
  assert_stats (manager, 2, 1, 0, 0, 1, 1);

  g_assert_true (exo_test_spin_until (task_is_finished, replacement, WAIT_MS));
  g_assert_cmpstr (log->str, ==, "job;");

  /* The old body returns late, even with an error: ignored, still cancelled. */
  g_assert_false (exo_task_is_finished (old));
  exo_task_return (held, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "late"));
  g_assert_true (exo_task_is_finished (old));
  g_assert_cmpint (exo_task_get_status (old), ==, EXO_TASK_STATUS_CANCELLED);
  g_assert_true (g_error_matches (exo_task_get_error (old), G_IO_ERROR, G_IO_ERROR_CANCELLED));
  assert_stats (manager, 2, 0, 1, 0, 1, 1);
  g_assert_cmpuint (finished, ==, 2);
  /* A second late return after cancellation is silently ignored too. */
  exo_task_return (old, NULL);

  /* Replacing a pending task: its body never runs, its data is freed. */
  exo_task_manager_spawn (manager, "job", G_PRIORITY_DEFAULT, 0, never_body, &destroyed,
                          count_destroy);
  g_clear_object (&replacement);
  replacement = g_object_ref (exo_task_manager_spawn (manager, "job", G_PRIORITY_DEFAULT,
                                                      EXO_TASK_FLAGS_REPLACE, log_body, log,
                                                      NULL));
  g_assert_cmpuint (destroyed, ==, 1);
  g_assert_true (exo_test_spin_until (task_is_finished, replacement, WAIT_MS));
  g_assert_cmpstr (log->str, ==, "job;job;");
  assert_stats (manager, 4, 0, 2, 0, 2, 2);
  g_assert_cmpuint (finished, ==, 4);

  /* REPLACE with no task of that name just spawns. */
  exo_task_manager_spawn (manager, "fresh", G_PRIORITY_DEFAULT, EXO_TASK_FLAGS_REPLACE,
                          log_body, log, NULL);
  g_assert_true (exo_test_spin_until (no_active_tasks, manager, WAIT_MS));
  assert_stats (manager, 5, 0, 3, 0, 2, 2);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/exo/task-manager/status/strings", test_status_strings);
  g_test_add_func ("/exo/task-manager/spawn/basic", test_spawn_basic);
  g_test_add_func ("/exo/task-manager/spawn/context", test_context);
  g_test_add_func ("/exo/task-manager/lookup/pruning", test_list_and_lookup);
  g_test_add_func ("/exo/task-manager/priority/start-order", test_priority_start_order);
  g_test_add_func ("/exo/task-manager/priority/steps", test_priority_steps);
  g_test_add_func ("/exo/task-manager/priority/over-start", test_priority_over_start);
  g_test_add_func ("/exo/task-manager/priority/sources", test_priority_sources);
  g_test_add_func ("/exo/task-manager/name/duplicate", test_duplicate);
  g_test_add_func ("/exo/task-manager/name/replace", test_replace);
  test_task_manager_register_cancel ();
  test_task_manager_register_results ();

  return g_test_run ();
}
