/* test-task-manager-cancel.c: cancelling ExoTasks — pending ones, the
 * sources a task added, synchronous acknowledgement, bodies that return
 * cancelled — and exo_task_manager_cancel_all() (waits, empty, stuck,
 * cancellable, earlier calls).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-task-manager (main() in test-task-manager.c).  One thread:
 * cancellation handlers and the bodies' timeouts run on the test's
 * thread-default main context.
 */
#include "task-manager-fixture.h"

/* --- cancel -------------------------------------------------------------- */

static void
test_cancel_pending (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(ExoTask) task = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  guint destroyed = 0;
  guint finished = 0;

  g_signal_connect (manager, "task-finished", G_CALLBACK (count_finished_cb), &finished);
  task = g_object_ref (exo_task_manager_spawn (manager, "p", G_PRIORITY_DEFAULT, 0,
                                               never_body, &destroyed, count_destroy));
  exo_task_wait_async (task, NULL, exo_test_store_result, &result);

  g_assert_true (exo_task_manager_cancel (manager, "p"));
  /* Its body never started, so it is finished at once. */
  g_assert_true (exo_task_is_finished (task));
  g_assert_cmpint (exo_task_get_status (task), ==, EXO_TASK_STATUS_CANCELLED);
  g_assert_cmpint (exo_task_get_started_at (task), ==, 0);
  g_assert_cmpuint (destroyed, ==, 1);
  g_assert_cmpuint (finished, ==, 1);
  assert_stats (manager, 1, 0, 0, 0, 1, 0);

  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_false (exo_task_wait_finish (task, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  exo_test_spin (30);   /* never_body would abort */
}

typedef struct
{
  ExoTask *task;
  guint    ticks;
  guint    timeouts;
} Busy;

static gboolean
busy_tick_cb (gpointer data)
{
  Busy *busy = data;

  busy->ticks++;
  return G_SOURCE_CONTINUE;
}

static gboolean
busy_timeout_cb (gpointer data)
{
  Busy *busy = data;

  busy->timeouts++;
  return G_SOURCE_CONTINUE;
}

static void
busy_body (ExoTask      *task,
           GCancellable *cancellable,
           gpointer      user_data)
{
  Busy *busy = user_data;

  busy->task = task;
  g_assert_cmpuint (exo_task_timeout_add (task, 100, busy_timeout_cb, busy), >, 0);
  g_assert_cmpuint (exo_task_timeout_add (task, 1, busy_tick_cb, busy), >, 0);
}

static gboolean
busy_ticked (gpointer data)
{
  Busy *busy = data;

  return busy->ticks >= 3;
}

/* Sources of a cancelled task never fire again. */
static void
test_cancel_destroys_sources (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(ExoTask) task = NULL;
  Busy busy = { NULL, 0, 0 };
  guint ticks;

  task = g_object_ref (exo_task_manager_spawn (manager, "busy", G_PRIORITY_DEFAULT, 0,
                                               busy_body, &busy, NULL));
  g_assert_true (exo_test_spin_until (busy_ticked, &busy, WAIT_MS));
  g_assert_cmpuint (busy.timeouts, ==, 0);

  g_assert_true (exo_task_manager_cancel (manager, "busy"));
  ticks = busy.ticks;
  g_assert_cmpint (exo_task_get_status (task), ==, EXO_TASK_STATUS_CANCELLED);
  /* Sources cannot be added any more. */
  g_assert_cmpuint (exo_task_idle_add (task, never_cb, NULL), ==, 0);

  /* Well past the 100 ms timeout. */
  exo_test_spin (250);
  g_assert_cmpuint (busy.timeouts, ==, 0);
  g_assert_cmpuint (busy.ticks, ==, ticks);

  /* The body has not acknowledged yet: the task is cancelled, not finished. */
  g_assert_false (exo_task_is_finished (task));
  g_assert_cmpuint (get_stats (manager).stopping, ==, 1);
  exo_task_return (task, NULL);
  g_assert_true (exo_task_is_finished (task));
  assert_stats (manager, 1, 0, 0, 0, 1, 0);
  g_assert_cmpuint (get_stats (manager).stopping, ==, 0);
}

/* A body that acknowledges a cancellation from the "cancelled" handler, that
 * is from inside exo_task_manager_cancel(). */
static void
ack_now_cb (GCancellable *cancellable,
            gpointer      data)
{
  exo_task_return (data, NULL);
}

static void
ack_now_body (ExoTask      *task,
              GCancellable *cancellable,
              gpointer      user_data)
{
  g_signal_connect (cancellable, "cancelled", G_CALLBACK (ack_now_cb), task);
}

static void
test_cancel_sync_ack (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(ExoTask) task = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  guint finished = 0;
  guint destroyed = 0;

  g_signal_connect (manager, "task-finished", G_CALLBACK (count_finished_cb), &finished);
  task = g_object_ref (exo_task_manager_spawn (manager, "ack", G_PRIORITY_DEFAULT, 0,
                                               ack_now_body, &destroyed, count_destroy));
  g_assert_true (exo_test_spin_until (task_is_running, task, WAIT_MS));

  g_assert_true (exo_task_manager_cancel (manager, "ack"));
  g_assert_true (exo_task_is_finished (task));
  g_assert_cmpint (exo_task_get_status (task), ==, EXO_TASK_STATUS_CANCELLED);
  g_assert_cmpuint (finished, ==, 1);
  g_assert_cmpuint (destroyed, ==, 1);
  assert_stats (manager, 1, 0, 0, 0, 1, 0);
  g_assert_cmpuint (get_stats (manager).stopping, ==, 0);

  /* cancel-all has nothing left to wait for. */
  exo_task_manager_cancel_all_async (manager, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_true (exo_task_manager_cancel_all_finish (manager, result, NULL));
}

/* The body ends itself with G_IO_ERROR_CANCELLED: that is a cancellation. */
static void
self_cancel_body (ExoTask      *task,
                  GCancellable *cancellable,
                  gpointer      user_data)
{
  exo_task_return (task, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "gave up"));
}

static void
test_body_returns_cancelled (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(ExoTask) task = NULL;

  task = g_object_ref (exo_task_manager_spawn (manager, "x", G_PRIORITY_DEFAULT, 0,
                                               self_cancel_body, NULL, NULL));
  g_assert_true (exo_test_spin_until (task_is_finished, task, WAIT_MS));
  g_assert_cmpint (exo_task_get_status (task), ==, EXO_TASK_STATUS_CANCELLED);
  g_assert_cmpstr (exo_task_get_error (task)->message, ==, "gave up");
  assert_stats (manager, 1, 0, 0, 0, 1, 0);
}

/* --- cancel-all ------------------------------------------------------------ */

typedef struct
{
  GAsyncResult *result;
  guint        *n_returned;
  guint         n_returned_at_completion;
} CancelAllWait;

static void
cancel_all_done_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  CancelAllWait *wait = user_data;

  wait->n_returned_at_completion = *wait->n_returned;
  wait->result = g_object_ref (result);
}

static void
test_cancel_all_waits (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(GError) error = NULL;
  guint n_returned = 0;
  guint finished = 0;
  Slow slow[3] = {
    { NULL, 60, &n_returned, 0 },
    { NULL, 20, &n_returned, 0 },
    { NULL, 40, &n_returned, 0 },
  };
  guint pending_destroyed = 0;
  CancelAllWait wait = { NULL, &n_returned, 0 };
  Stats s;

  g_signal_connect (manager, "task-finished", G_CALLBACK (count_finished_cb), &finished);

  for (guint i = 0; i < G_N_ELEMENTS (slow); i++)
    {
      g_autofree char *name = g_strdup_printf ("slow-%u", i);
      ExoTask *task = exo_task_manager_spawn (manager, name, G_PRIORITY_DEFAULT, 0,
                                              slow_body, &slow[i], slow_destroy);
      g_assert_true (exo_test_spin_until (task_is_running, task, WAIT_MS));
    }
  /* Two more that have not started. */
  exo_task_manager_spawn (manager, "pending-0", G_PRIORITY_DEFAULT, 0, never_body,
                          &pending_destroyed, count_destroy);
  exo_task_manager_spawn (manager, "pending-1", G_PRIORITY_LOW, 0, never_body,
                          &pending_destroyed, count_destroy);
  assert_stats (manager, 5, 5, 0, 0, 0, 0);

  exo_task_manager_cancel_all_async (manager, NULL, cancel_all_done_cb, &wait);

  /* Everything is cancelled (and counted) at once; the pending ones are done. */
  assert_stats (manager, 5, 0, 0, 0, 5, 0);
  g_assert_cmpuint (get_stats (manager).stopping, ==, 3);
  g_assert_cmpuint (pending_destroyed, ==, 2);
  g_assert_cmpuint (finished, ==, 2);
  g_assert_null (wait.result);

  g_assert_true (exo_test_wait_result (&wait.result, WAIT_MS));
  /* It completed only after every body had returned. */
  g_assert_cmpuint (wait.n_returned_at_completion, ==, 3);
  g_assert_true (exo_task_manager_cancel_all_finish (manager, wait.result, &error));
  g_assert_no_error (error);
  g_clear_object (&wait.result);

  g_assert_cmpuint (finished, ==, 5);
  for (guint i = 0; i < G_N_ELEMENTS (slow); i++)
    g_assert_cmpuint (slow[i].destroyed, ==, 1);
  s = get_stats (manager);
  assert_stats (manager, 5, 0, 0, 0, 5, 0);
  g_assert_cmpuint (s.stopping, ==, 0);
  g_assert_cmpuint (s.abandoned, ==, 0);
}

static void
test_cancel_all_empty (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  exo_task_manager_cancel_all_async (manager, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_true (exo_task_manager_cancel_all_finish (manager, result, &error));
  g_assert_no_error (error);
  assert_stats (manager, 0, 0, 0, 0, 0, 0);
}

/* A body that never returns: the manager gives up after cancel-timeout,
 * counts it cancelled and abandoned, and ignores the late return. */
static void
test_cancel_all_stuck (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoTask) task = NULL;
  ExoTask *held = NULL;
  gint64 start;
  Stats s;

  g_assert_cmpuint (exo_task_manager_get_cancel_timeout (manager), ==, 5000);
  exo_task_manager_set_cancel_timeout (manager, 100);
  g_assert_cmpuint (exo_task_manager_get_cancel_timeout (manager), ==, 100);

  task = g_object_ref (exo_task_manager_spawn (manager, "stuck", G_PRIORITY_DEFAULT, 0,
                                               hold_body, &held, NULL));
  g_assert_true (exo_test_spin_until (task_is_running, task, WAIT_MS));

  start = g_get_monotonic_time ();
  exo_task_manager_cancel_all_async (manager, NULL, exo_test_store_result, &result);
  g_assert_cmpint (exo_task_get_status (task), ==, EXO_TASK_STATUS_CANCELLED);
  g_assert_false (exo_task_is_finished (task));

  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 90 * 1000);
  g_assert_true (exo_task_manager_cancel_all_finish (manager, result, &error));
  g_assert_true (exo_task_is_finished (task));
  g_assert_cmpint (exo_task_get_status (task), ==, EXO_TASK_STATUS_CANCELLED);

  s = get_stats (manager);
  assert_stats (manager, 1, 0, 0, 0, 1, 0);
  g_assert_cmpuint (s.abandoned, ==, 1);
  g_assert_cmpuint (s.stopping, ==, 0);

  /* The late return: no critical, no change. */
  exo_task_return (held, NULL);
  g_assert_cmpint (exo_task_get_status (task), ==, EXO_TASK_STATUS_CANCELLED);
  assert_stats (manager, 1, 0, 0, 0, 1, 0);
}

/* Cancelling the wait of cancel-all: the tasks stay cancelled. */
static void
test_cancel_all_cancellable (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  ExoTask *held = NULL;
  ExoTask *task;

  task = exo_task_manager_spawn (manager, "h", G_PRIORITY_DEFAULT, 0, hold_body, &held, NULL);
  g_assert_true (exo_test_spin_until (task_is_running, task, WAIT_MS));

  exo_task_manager_cancel_all_async (manager, cancellable, exo_test_store_result, &result);
  exo_test_spin (20);
  g_assert_null (result);
  g_cancellable_cancel (cancellable);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_false (exo_task_manager_cancel_all_finish (manager, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (exo_task_get_status (held), ==, EXO_TASK_STATUS_CANCELLED);
  g_assert_false (exo_task_is_finished (held));

  exo_task_return (held, NULL);
  assert_stats (manager, 1, 0, 0, 0, 1, 0);
}

/* cancel-all also waits for tasks cancelled before it was called. */
static void
test_cancel_all_earlier (void)
{
  g_autoptr(ExoTaskManager) manager = exo_task_manager_new ();
  g_autoptr(GAsyncResult) result = NULL;
  guint n_returned = 0;
  Slow slow = { NULL, 40, &n_returned, 0 };
  ExoTask *task;

  task = exo_task_manager_spawn (manager, "s", G_PRIORITY_DEFAULT, 0, slow_body, &slow, NULL);
  g_assert_true (exo_test_spin_until (task_is_running, task, WAIT_MS));
  g_assert_true (exo_task_manager_cancel (manager, "s"));
  g_assert_cmpuint (exo_task_manager_get_n_active (manager), ==, 0);

  exo_task_manager_cancel_all_async (manager, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_cmpuint (n_returned, ==, 1);
  g_assert_true (exo_task_manager_cancel_all_finish (manager, result, NULL));
  assert_stats (manager, 1, 0, 0, 0, 1, 0);
}

/* --- registration ---------------------------------------------------- */

void
test_task_manager_register_cancel (void)
{
  g_test_add_func ("/exo/task-manager/cancel/pending", test_cancel_pending);
  g_test_add_func ("/exo/task-manager/cancel/sources", test_cancel_destroys_sources);
  g_test_add_func ("/exo/task-manager/cancel/sync-ack", test_cancel_sync_ack);
  g_test_add_func ("/exo/task-manager/cancel/body-returns-cancelled", test_body_returns_cancelled);
  g_test_add_func ("/exo/task-manager/cancel-all/waits", test_cancel_all_waits);
  g_test_add_func ("/exo/task-manager/cancel-all/empty", test_cancel_all_empty);
  g_test_add_func ("/exo/task-manager/cancel-all/stuck", test_cancel_all_stuck);
  g_test_add_func ("/exo/task-manager/cancel-all/cancellable", test_cancel_all_cancellable);
  g_test_add_func ("/exo/task-manager/cancel-all/earlier", test_cancel_all_earlier);
}
