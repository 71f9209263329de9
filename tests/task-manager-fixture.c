/* task-manager-fixture.c: statistics, wait conditions and task bodies for
 * test-task-manager.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The bodies run as ExoTask bodies in the manager's main context, the
 * test's thread-default one; the conditions are for exo_test_spin_until().
 */
#include "task-manager-fixture.h"

/* --- helpers ------------------------------------------------------------- */

Stats
get_stats (ExoTaskManager *manager)
{
  g_autoptr(GVariant) stats = exo_task_manager_get_statistics (manager);
  Stats s = { 0 };

  g_assert_true (g_variant_is_of_type (stats, G_VARIANT_TYPE_VARDICT));
  g_assert_true (g_variant_lookup (stats, "spawned", "t", &s.spawned));
  g_assert_true (g_variant_lookup (stats, "active", "t", &s.active));
  g_assert_true (g_variant_lookup (stats, "succeeded", "t", &s.succeeded));
  g_assert_true (g_variant_lookup (stats, "failed", "t", &s.failed));
  g_assert_true (g_variant_lookup (stats, "cancelled", "t", &s.cancelled));
  g_assert_true (g_variant_lookup (stats, "replaced", "t", &s.replaced));
  g_assert_true (g_variant_lookup (stats, "stopping", "t", &s.stopping));
  g_assert_true (g_variant_lookup (stats, "abandoned", "t", &s.abandoned));

  /* The invariant the documentation promises. */
  g_assert_cmpuint (s.spawned, ==, s.active + s.succeeded + s.failed + s.cancelled);
  g_assert_cmpuint (s.active, ==, exo_task_manager_get_n_active (manager));
  return s;
}

gboolean
no_active_tasks (gpointer data)
{
  return exo_task_manager_get_n_active (data) == 0;
}

gboolean
task_is_finished (gpointer data)
{
  return exo_task_is_finished (data);
}

gboolean
task_is_running (gpointer data)
{
  return exo_task_get_status (data) == EXO_TASK_STATUS_RUNNING;
}

void
count_finished_cb (ExoTaskManager *manager,
                   ExoTask        *task,
                   gpointer        user_data)
{
  guint *count = user_data;

  g_assert_true (exo_task_is_finished (task));
  g_assert_true (exo_task_manager_lookup (manager, exo_task_get_name (task)) != task);
  (*count)++;
}

void
count_destroy (gpointer data)
{
  guint *count = data;

  (*count)++;
}

/* Appends its name to the GString given as user data and succeeds; also
 * checks that it runs from a source at the task's priority. */
void
log_body (ExoTask      *task,
          GCancellable *cancellable,
          gpointer      user_data)
{
  GString *log = user_data;
  GSource *current = g_main_current_source ();

  g_assert_nonnull (current);
  g_assert_cmpint (g_source_get_priority (current), ==, exo_task_get_priority (task));
  g_assert_cmpint (exo_task_get_status (task), ==, EXO_TASK_STATUS_RUNNING);

  g_string_append_printf (log, "%s;", exo_task_get_name (task));
  exo_task_return (task, NULL);
}

void
succeed_body (ExoTask      *task,
              GCancellable *cancellable,
              gpointer      user_data)
{
  exo_task_return (task, NULL);
}

void
fail_body (ExoTask      *task,
           GCancellable *cancellable,
           gpointer      user_data)
{
  exo_task_return (task, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no such thing"));
}

void
never_body (ExoTask      *task,
            GCancellable *cancellable,
            gpointer      user_data)
{
  g_assert_not_reached ();
}

/* Stores the task in *(ExoTask **) user_data and returns only when the test
 * calls exo_task_return(). */
void
hold_body (ExoTask      *task,
           GCancellable *cancellable,
           gpointer      user_data)
{
  ExoTask **slot = user_data;

  *slot = task;
}

gboolean
never_cb (gpointer data)
{
  g_assert_not_reached ();
  return G_SOURCE_REMOVE;
}

static gboolean
slow_return_cb (gpointer data)
{
  Slow *slow = data;

  (*slow->n_returned)++;
  /* Not a cancellation error: ignored, the task stays cancelled. */
  exo_task_return (slow->task, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "stopped"));
  return G_SOURCE_REMOVE;
}

static void
slow_cancelled_cb (GCancellable *cancellable,
                   gpointer      data)
{
  Slow *slow = data;

  g_timeout_add (slow->delay_ms, slow_return_cb, slow);
}

void
slow_body (ExoTask      *task,
           GCancellable *cancellable,
           gpointer      user_data)
{
  Slow *slow = user_data;

  slow->task = task;
  g_signal_connect (cancellable, "cancelled", G_CALLBACK (slow_cancelled_cb), slow);
}

void
slow_destroy (gpointer data)
{
  Slow *slow = data;

  slow->destroyed++;
}
