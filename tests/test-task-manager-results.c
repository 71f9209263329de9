/* test-task-manager-results.c: how ExoTasks end — waiting for a result,
 * exo_task_return() misused, the manager's statistics, dispose cancelling
 * what runs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-task-manager (main() in test-task-manager.c).  One thread:
 * the test's thread-default main context.
 */
#include "task-manager-fixture.h"

/* --- wait ------------------------------------------------------------------ */

static void
test_wait (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(ExoTask) ok = NULL;
  g_autoptr(ExoTask) bad = NULL;
  g_autoptr(GAsyncResult) r1 = NULL;
  g_autoptr(GAsyncResult) r2 = NULL;
  g_autoptr(GAsyncResult) r3 = NULL;
  g_autoptr(GAsyncResult) r4 = NULL;
  g_autoptr(GError) error = NULL;

  ok = g_object_ref (exo_task_manager_spawn (manager, "ok", G_PRIORITY_DEFAULT, 0,
                                             succeed_body, NULL, NULL));
  bad = g_object_ref (exo_task_manager_spawn (manager, "bad", G_PRIORITY_DEFAULT, 0,
                                              fail_body, NULL, NULL));
  exo_task_wait_async (ok, NULL, exo_test_store_result, &r1);
  exo_task_wait_async (bad, NULL, exo_test_store_result, &r2);

  g_assert_true (exo_test_wait_result (&r1, WAIT_MS));
  g_assert_true (exo_task_wait_finish (ok, r1, &error));
  g_assert_no_error (error);

  g_assert_true (exo_test_wait_result (&r2, WAIT_MS));
  g_assert_false (exo_task_wait_finish (bad, r2, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_cmpint (exo_task_get_status (bad), ==, EXO_TASK_STATUS_FAILED);
  g_assert_error ((GError *) exo_task_get_error (bad), G_IO_ERROR, G_IO_ERROR_NOT_FOUND);

  /* Waiting on a finished task completes at once, with the same result. */
  exo_task_wait_async (bad, NULL, exo_test_store_result, &r3);
  g_assert_true (exo_test_wait_result (&r3, WAIT_MS));
  g_assert_false (exo_task_wait_finish (bad, r3, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error (&error);

  assert_stats (manager, 2, 0, 1, 1, 0, 0);

  /* Cancelling the wait does not cancel the task. */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();
    ExoTask *held = NULL;
    ExoTask *task = exo_task_manager_spawn (manager, "w", G_PRIORITY_DEFAULT, 0, hold_body,
                                            &held, NULL);

    exo_task_wait_async (task, cancellable, exo_test_store_result, &r4);
    g_cancellable_cancel (cancellable);
    g_assert_true (exo_test_wait_result (&r4, WAIT_MS));
    g_assert_false (exo_task_wait_finish (task, r4, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_assert_false (exo_task_is_finished (task));
    g_assert_true (exo_task_manager_lookup (manager, "w") == task);
    g_assert_true (exo_test_spin_until (task_is_running, task, WAIT_MS));
    exo_task_return (held, NULL);
  }
  assert_stats (manager, 3, 0, 2, 1, 0, 0);
}

/* Waiters of a cancelled task complete when its body acknowledges. */
static void
test_wait_cancelled (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  guint n_returned = 0;
  Slow slow = { NULL, 30, &n_returned, 0 };
  ExoTask *task;

  task = exo_task_manager_spawn (manager, "s", G_PRIORITY_DEFAULT, 0, slow_body, &slow, NULL);
  g_assert_true (exo_test_spin_until (task_is_running, task, WAIT_MS));
  exo_task_wait_async (task, NULL, exo_test_store_result, &result);

  g_assert_true (exo_task_manager_cancel (manager, "s"));
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_cmpuint (n_returned, ==, 1);
  g_assert_false (exo_task_wait_finish (task, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* --- exo_task_return misuse ----------------------------------------------- */

/* Criticals are logged with the structured API, which g_test_expect_message()
 * does not see: the misuse runs in a subprocess whose stderr is checked. */
static void
test_return_twice (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
      g_autoptr(ExoTask) task = NULL;

      g_log_set_always_fatal (G_LOG_FATAL_MASK);
      task = g_object_ref (exo_task_manager_spawn (manager, "twice", G_PRIORITY_DEFAULT, 0,
                                                   succeed_body, NULL, NULL));
      g_assert_true (exo_test_spin_until (task_is_finished, task, WAIT_MS));

      exo_task_return (task, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "again"));

      g_assert_cmpint (exo_task_get_status (task), ==, EXO_TASK_STATUS_SUCCEEDED);
      g_assert_null (exo_task_get_error (task));
      assert_stats (manager, 1, 0, 1, 0, 0, 0);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*CRITICAL*twice*already returned*");
}

static void
test_return_before_start (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
      ExoTask *task;

      g_log_set_always_fatal (G_LOG_FATAL_MASK);
      task = exo_task_manager_spawn (manager, "early", G_PRIORITY_DEFAULT, 0, succeed_body,
                                     NULL, NULL);
      exo_task_return (task, NULL);
      g_assert_cmpint (exo_task_get_status (task), ==, EXO_TASK_STATUS_PENDING);

      g_assert_true (exo_test_spin_until (no_active_tasks, manager, WAIT_MS));
      assert_stats (manager, 1, 0, 1, 0, 0, 0);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*CRITICAL*early*has not started*");
}

/* --- statistics ------------------------------------------------------------- */

static void
test_statistics (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(GVariant) stats = NULL;
  ExoTask *held = NULL;
  ExoTask *held2 = NULL;
  guint64 value;

  stats = exo_task_manager_get_statistics (manager);
  g_assert_false (g_variant_is_floating (stats));
  g_assert_true (g_variant_lookup (stats, "spawned", "t", &value));
  g_assert_cmpuint (value, ==, 0);
  assert_stats (manager, 0, 0, 0, 0, 0, 0);

  exo_task_manager_spawn (manager, "s1", G_PRIORITY_DEFAULT, 0, log_body, log, NULL);
  exo_task_manager_spawn (manager, "s2", G_PRIORITY_DEFAULT, 0, log_body, log, NULL);
  exo_task_manager_spawn (manager, "f1", G_PRIORITY_DEFAULT, 0, fail_body, NULL, NULL);
  exo_task_manager_spawn (manager, "c1", G_PRIORITY_DEFAULT, 0, never_body, NULL, NULL);
  exo_task_manager_spawn (manager, "r", G_PRIORITY_DEFAULT, 0, hold_body, &held, NULL);
  /* A duplicate: not spawned. */
  exo_task_manager_spawn (manager, "s1", G_PRIORITY_DEFAULT, 0, never_body, NULL, NULL);
  assert_stats (manager, 5, 5, 0, 0, 0, 0);

  g_assert_true (exo_task_manager_cancel (manager, "c1"));
  assert_stats (manager, 5, 4, 0, 0, 1, 0);

  g_assert_true (exo_test_spin_until (task_is_running, exo_task_manager_lookup (manager, "r"),
                                      WAIT_MS));
  assert_stats (manager, 5, 1, 2, 1, 1, 0);

  exo_task_manager_spawn (manager, "r", G_PRIORITY_DEFAULT, EXO_TASK_FLAGS_REPLACE,
                          hold_body, &held2, NULL);
  assert_stats (manager, 6, 1, 2, 1, 2, 1);
  exo_task_return (held, NULL);
  assert_stats (manager, 6, 1, 2, 1, 2, 1);

  g_assert_true (exo_test_spin_until (task_is_running, exo_task_manager_lookup (manager, "r"),
                                      WAIT_MS));
  exo_task_return (held2, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "x"));
  assert_stats (manager, 6, 0, 2, 2, 2, 1);
}

/* --- dispose --------------------------------------------------------------- */

static void
test_dispose_cancels (void)
{
  ExoTaskManager *manager = exo_task_manager_new ();
  g_autoptr(ExoTask) pending = NULL;
  g_autoptr(ExoTask) running = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  ExoTask *held = NULL;
  guint pending_destroyed = 0;
  guint running_destroyed = 0;
  guint finished = 0;

  g_signal_connect (manager, "task-finished", G_CALLBACK (count_finished_cb), &finished);

  running = g_object_ref (exo_task_manager_spawn (manager, "running", G_PRIORITY_DEFAULT, 0,
                                                  hold_body, &held, NULL));
  g_object_set_data_full (G_OBJECT (running), "d", &running_destroyed, count_destroy);
  g_assert_true (exo_test_spin_until (task_is_running, running, WAIT_MS));
  pending = g_object_ref (exo_task_manager_spawn (manager, "pending", G_PRIORITY_DEFAULT, 0,
                                                  never_body, &pending_destroyed,
                                                  count_destroy));
  exo_task_wait_async (running, NULL, exo_test_store_result, &result);

  g_object_unref (manager);

  g_assert_cmpuint (finished, ==, 2);
  g_assert_cmpint (exo_task_get_status (pending), ==, EXO_TASK_STATUS_CANCELLED);
  g_assert_true (exo_task_is_finished (pending));
  g_assert_cmpuint (pending_destroyed, ==, 1);
  g_assert_cmpint (exo_task_get_status (running), ==, EXO_TASK_STATUS_CANCELLED);
  g_assert_true (exo_task_is_finished (running));
  g_assert_true (g_cancellable_is_cancelled (exo_task_get_cancellable (running)));

  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_false (exo_task_wait_finish (running, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* The body returns after the manager is gone: fine, ignored. */
  exo_task_return (held, NULL);
  g_assert_cmpuint (exo_task_idle_add (running, never_cb, NULL), ==, 0);
  exo_test_spin (30);
  g_clear_object (&result);
  g_clear_object (&running);
  g_assert_cmpuint (running_destroyed, ==, 1);
}

/* --- registration ---------------------------------------------------- */

void
test_task_manager_register_results (void)
{
  g_test_add_func ("/exo/task-manager/wait/result", test_wait);
  g_test_add_func ("/exo/task-manager/wait/cancelled", test_wait_cancelled);
  g_test_add_func ("/exo/task-manager/return/twice", test_return_twice);
  g_test_add_func ("/exo/task-manager/return/before-start", test_return_before_start);
  g_test_add_func ("/exo/task-manager/statistics", test_statistics);
  g_test_add_func ("/exo/task-manager/dispose", test_dispose_cancels);
}
