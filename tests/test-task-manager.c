/* test-task-manager.c: ExoTaskManager — priorities that really order work,
 * names, replace, cancel, cancel-all, wait, statistics, dispose.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

#define WAIT_MS 5000

/* --- helpers ------------------------------------------------------------- */

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

static Stats
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

static gboolean
no_active_tasks (gpointer data)
{
  return exo_task_manager_get_n_active (data) == 0;
}

static gboolean
task_is_finished (gpointer data)
{
  return exo_task_is_finished (data);
}

static gboolean
task_is_running (gpointer data)
{
  return exo_task_get_status (data) == EXO_TASK_STATUS_RUNNING;
}

static void
count_finished_cb (ExoTaskManager *manager,
                   ExoTask        *task,
                   gpointer        user_data)
{
  guint *count = user_data;

  g_assert_true (exo_task_is_finished (task));
  g_assert_true (exo_task_manager_lookup (manager, exo_task_get_name (task)) != task);
  (*count)++;
}

static void
count_destroy (gpointer data)
{
  guint *count = data;

  (*count)++;
}

/* Appends its name to the GString given as user data and succeeds; also
 * checks that it runs from a source at the task's priority. */
static void
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

static void
succeed_body (ExoTask      *task,
              GCancellable *cancellable,
              gpointer      user_data)
{
  exo_task_return (task, NULL);
}

static void
fail_body (ExoTask      *task,
           GCancellable *cancellable,
           gpointer      user_data)
{
  exo_task_return (task, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no such thing"));
}

static void
never_body (ExoTask      *task,
            GCancellable *cancellable,
            gpointer      user_data)
{
  g_assert_not_reached ();
}

/* Stores the task in *(ExoTask **) user_data and returns only when the test
 * calls exo_task_return(). */
static void
hold_body (ExoTask      *task,
           GCancellable *cancellable,
           gpointer      user_data)
{
  ExoTask **slot = user_data;

  *slot = task;
}

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

static gboolean
never_cb (gpointer data)
{
  g_assert_not_reached ();
  return G_SOURCE_REMOVE;
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

/* A body that, when cancelled, returns a little later from a plain timeout. */
typedef struct
{
  ExoTask *task;
  guint    delay_ms;
  guint   *n_returned;
  guint    destroyed;
} Slow;

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

static void
slow_body (ExoTask      *task,
           GCancellable *cancellable,
           gpointer      user_data)
{
  Slow *slow = user_data;

  slow->task = task;
  g_signal_connect (cancellable, "cancelled", G_CALLBACK (slow_cancelled_cb), slow);
}

static void
slow_destroy (gpointer data)
{
  Slow *slow = data;

  slow->destroyed++;
}

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
  g_test_add_func ("/exo/task-manager/cancel/pending", test_cancel_pending);
  g_test_add_func ("/exo/task-manager/cancel/sources", test_cancel_destroys_sources);
  g_test_add_func ("/exo/task-manager/cancel/sync-ack", test_cancel_sync_ack);
  g_test_add_func ("/exo/task-manager/cancel/body-returns-cancelled", test_body_returns_cancelled);
  g_test_add_func ("/exo/task-manager/cancel-all/waits", test_cancel_all_waits);
  g_test_add_func ("/exo/task-manager/cancel-all/empty", test_cancel_all_empty);
  g_test_add_func ("/exo/task-manager/cancel-all/stuck", test_cancel_all_stuck);
  g_test_add_func ("/exo/task-manager/cancel-all/cancellable", test_cancel_all_cancellable);
  g_test_add_func ("/exo/task-manager/cancel-all/earlier", test_cancel_all_earlier);
  g_test_add_func ("/exo/task-manager/wait/result", test_wait);
  g_test_add_func ("/exo/task-manager/wait/cancelled", test_wait_cancelled);
  g_test_add_func ("/exo/task-manager/return/twice", test_return_twice);
  g_test_add_func ("/exo/task-manager/return/before-start", test_return_before_start);
  g_test_add_func ("/exo/task-manager/statistics", test_statistics);
  g_test_add_func ("/exo/task-manager/dispose", test_dispose_cancels);

  return g_test_run ();
}
