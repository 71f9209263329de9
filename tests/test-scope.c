/* test-scope.c: scoped use of a resource, and timeouts as cancellables.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

#define WAIT_MS 20000

/* --- what the callback saw ---------------------------------------------- */

typedef struct
{
  ExoTestResource  *resource;
  gboolean          done;
  char             *value;
  GError           *error;
  /* checked at the moment the callback ran */
  ExoResourceState  state_at_callback;
  guint             cleanups_at_callback;
  gint              live_at_callback;
  char             *log_at_callback;
} UseCheck;

static void
use_check_clear (UseCheck *check)
{
  g_clear_pointer (&check->value, g_free);
  g_clear_error (&check->error);
  g_clear_pointer (&check->log_at_callback, g_free);
}

static void
use_done_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  UseCheck *check = user_data;

  g_assert_false (check->done);
  g_assert_true (source == G_OBJECT (check->resource));

  check->state_at_callback = exo_resource_get_state (EXO_RESOURCE (check->resource));
  check->cleanups_at_callback = check->resource->n_cleanup_calls;
  check->live_at_callback = check->resource->live;
  check->log_at_callback = g_strdup (exo_test_log_get ());

  check->value = exo_resource_use_finish (EXO_RESOURCE (source), result, &check->error);
  check->done = TRUE;
}

static gboolean
use_done (gpointer data)
{
  return ((UseCheck *) data)->done;
}

static void
use_and_wait (UseCheck         *check,
              ExoOperationFunc  func,
              gpointer          func_data,
              guint             timeout_ms,
              GCancellable     *cancellable)
{
  exo_resource_use_async (EXO_RESOURCE (check->resource), func, func_data, NULL,
                          timeout_ms, cancellable, use_done_cb, check);
  g_assert_true (exo_test_spin_until (use_done, check, WAIT_MS));
}

/* The callback ran only after cleanup had completed. */
static void
assert_cleaned_up (UseCheck *check)
{
  g_autofree char *cleanup_done = g_strdup_printf ("cleanup-done:%s",
                                                   exo_resource_get_id (EXO_RESOURCE (check->resource)));

  g_assert_true (check->done);
  g_assert_cmpint (check->state_at_callback, ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpuint (check->cleanups_at_callback, ==, 1);
  g_assert_cmpint (check->live_at_callback, ==, 0);
  g_assert_true (g_str_has_suffix (check->log_at_callback, cleanup_done));
}

/* --- operations ---------------------------------------------------------- */

typedef struct
{
  guint             calls;
  ExoResourceState  state_seen;
  GCancellable     *cancellable_seen;
} FuncData;

static void
value_func (ExoResource  *resource,
            GCancellable *cancellable,
            GTask        *task,
            gpointer      user_data)
{
  FuncData *data = user_data;

  data->calls++;
  data->state_seen = exo_resource_get_state (resource);
  exo_test_log_append ("func", exo_resource_get_id (resource));
  g_task_return_pointer (task, g_strdup ("the value"), g_free);
}

static void
failing_func (ExoResource  *resource,
              GCancellable *cancellable,
              GTask        *task,
              gpointer      user_data)
{
  FuncData *data = user_data;

  data->calls++;
  data->state_seen = exo_resource_get_state (resource);
  exo_test_log_append ("func", exo_resource_get_id (resource));
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the func failed");
}

static gboolean
hang_cancelled_cb (GCancellable *cancellable,
                   gpointer      user_data)
{
  GTask *task = user_data;

  exo_test_log_append ("func-cancelled", exo_resource_get_id (g_task_get_source_object (task)));
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "func cancelled");
  return G_SOURCE_REMOVE;
}

/* Never completes unless its cancellable is cancelled. */
static void
hang_func (ExoResource  *resource,
           GCancellable *cancellable,
           GTask        *task,
           gpointer      user_data)
{
  FuncData *data = user_data;
  GSource *source;

  data->calls++;
  data->state_seen = exo_resource_get_state (resource);
  data->cancellable_seen = cancellable;
  exo_test_log_append ("func", exo_resource_get_id (resource));
  g_assert_nonnull (cancellable);
  source = g_cancellable_source_new (cancellable);
  g_source_set_callback (source, G_SOURCE_FUNC (hang_cancelled_cb), g_object_ref (task),
                         g_object_unref);
  g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source);
}

static gboolean
cancel_cb (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

/* --- use ----------------------------------------------------------------- */

static void
test_use_success (void)
{
  ExoTestResource *resource = exo_test_resource_new ("scope-ok");
  UseCheck check = { resource };
  FuncData data = { 0 };
  gint64 start = g_get_monotonic_time ();

  resource->init_delay_ms = 10;
  resource->cleanup_delay_ms = 150;
  exo_test_log_reset ();

  use_and_wait (&check, value_func, &data, 0, NULL);

  g_assert_no_error (check.error);
  g_assert_cmpstr (check.value, ==, "the value");
  g_assert_cmpuint (data.calls, ==, 1);
  g_assert_cmpint (data.state_seen, ==, EXO_RESOURCE_STATE_READY);
  assert_cleaned_up (&check);
  g_assert_cmpstr (check.log_at_callback, ==,
                   "init:scope-ok,init-done:scope-ok,func:scope-ok,"
                   "cleanup:scope-ok,cleanup-done:scope-ok");
  /* the slow cleanup was waited for */
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 150 * 1000);

  use_check_clear (&check);
  g_object_unref (resource);
}

static void
test_use_func_fails (void)
{
  ExoTestResource *resource = exo_test_resource_new ("scope-func-fails");
  UseCheck check = { resource };
  FuncData data = { 0 };

  resource->cleanup_delay_ms = 100;
  exo_test_log_reset ();

  use_and_wait (&check, failing_func, &data, 0, NULL);

  g_assert_error (check.error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_null (check.value);
  g_assert_cmpuint (data.calls, ==, 1);
  assert_cleaned_up (&check);
  g_assert_cmpstr (check.log_at_callback, ==,
                   "init:scope-func-fails,init-done:scope-func-fails,func:scope-func-fails,"
                   "cleanup:scope-func-fails,cleanup-done:scope-func-fails");

  use_check_clear (&check);
  g_object_unref (resource);
}

static void
test_use_init_fails (void)
{
  ExoTestResource *resource = exo_test_resource_new ("scope-init-fails");
  UseCheck check = { resource };
  FuncData data = { 0 };

  resource->fail_inits = 1;
  resource->fail_fatal = TRUE;
  resource->cleanup_delay_ms = 100;
  exo_test_log_reset ();

  use_and_wait (&check, value_func, &data, 0, NULL);

  g_assert_error (check.error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
  g_assert_null (check.value);
  g_assert_cmpuint (data.calls, ==, 0);
  /* the half-made resource was cleaned up before the callback */
  assert_cleaned_up (&check);
  g_assert_cmpstr (check.log_at_callback, ==,
                   "init:scope-init-fails,init-failed:scope-init-fails,"
                   "cleanup:scope-init-fails,cleanup-done:scope-init-fails");

  use_check_clear (&check);
  g_object_unref (resource);
}

static void
test_use_timeout (void)
{
  ExoTestResource *resource = exo_test_resource_new ("scope-timeout");
  UseCheck check = { resource };
  FuncData data = { 0 };
  gint64 start = g_get_monotonic_time ();

  resource->cleanup_delay_ms = 100;
  exo_test_log_reset ();

  use_and_wait (&check, hang_func, &data, 100, NULL);

  g_assert_error (check.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_null (check.value);
  g_assert_cmpuint (data.calls, ==, 1);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 200 * 1000);
  assert_cleaned_up (&check);
  g_assert_cmpstr (check.log_at_callback, ==,
                   "init:scope-timeout,init-done:scope-timeout,func:scope-timeout,"
                   "func-cancelled:scope-timeout,"
                   "cleanup:scope-timeout,cleanup-done:scope-timeout");

  use_check_clear (&check);
  g_object_unref (resource);
}

static void
test_use_timeout_in_init (void)
{
  ExoTestResource *resource = exo_test_resource_new ("scope-timeout-init");
  UseCheck check = { resource };
  FuncData data = { 0 };

  resource->init_delay_ms = 60000;
  resource->cleanup_delay_ms = 50;
  exo_test_log_reset ();

  use_and_wait (&check, value_func, &data, 100, NULL);

  g_assert_null (check.value);
  g_assert_cmpuint (data.calls, ==, 0);
  g_assert_cmpuint (resource->n_init_calls, ==, 1);
  /* the abandoned attempt was cleaned up before the callback */
  assert_cleaned_up (&check);
  g_assert_nonnull (check.error);
  g_assert_error (check.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);

  use_check_clear (&check);
  g_object_unref (resource);
}

static void
test_use_cancelled (void)
{
  ExoTestResource *resource = exo_test_resource_new ("scope-cancelled");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  UseCheck check = { resource };
  FuncData data = { 0 };

  resource->cleanup_delay_ms = 100;
  exo_test_log_reset ();

  g_timeout_add (50, cancel_cb, cancellable);
  use_and_wait (&check, hang_func, &data, 0, cancellable);

  g_assert_error (check.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (data.calls, ==, 1);
  assert_cleaned_up (&check);

  use_check_clear (&check);
  g_object_unref (resource);
}

static void
test_use_cleanup_fails (void)
{
  ExoTestResource *resource = exo_test_resource_new ("scope-cleanup-fails");
  UseCheck check = { resource };
  FuncData data = { 0 };

  resource->fail_cleanup = TRUE;
  resource->cleanup_delay_ms = 20;
  exo_test_log_reset ();

  use_and_wait (&check, value_func, &data, 0, NULL);

  /* func succeeded, cleanup failed: the caller hears of it, and the value
   * is freed with the destroy notify func gave (valgrind checks) */
  g_assert_error (check.error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_null (check.value);
  g_assert_cmpuint (data.calls, ==, 1);
  assert_cleaned_up (&check);

  use_check_clear (&check);
  g_object_unref (resource);
}

/* --- destroy notifies ---------------------------------------------------- */

typedef struct
{
  guint     func_calls;
  guint     data_destroyed;
  guint     values_freed;
  gboolean  callback_ran;
  gboolean  destroyed_before_callback;
  GAsyncResult *result;
} UseCounts;

typedef struct
{
  UseCounts *counts;
} UseValue;

static void
use_value_free (gpointer data)
{
  UseValue *value = data;

  value->counts->values_freed++;
  g_free (value);
}

static void
use_counts_destroy (gpointer data)
{
  UseCounts *counts = data;

  counts->data_destroyed++;
  if (!counts->callback_ran)
    counts->destroyed_before_callback = TRUE;
}

static void
counted_func (ExoResource  *resource,
              GCancellable *cancellable,
              GTask        *task,
              gpointer      user_data)
{
  UseCounts *counts = user_data;
  UseValue *value = g_new0 (UseValue, 1);

  counts->func_calls++;
  value->counts = counts;
  g_task_return_pointer (task, value, use_value_free);
}

/* The callback leaves the result alone. */
static void
use_ignore_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  UseCounts *counts = user_data;

  counts->callback_ran = TRUE;
  counts->result = g_object_ref (result);
}

static gboolean
use_counts_done (gpointer data)
{
  return ((UseCounts *) data)->callback_ran;
}

/* (func, func_data, func_data_destroy): func_data_destroy runs once, after
 * the callback; the value nobody took is freed with func's destroy notify. */
static void
test_use_destroy_notify (void)
{
  ExoTestResource *resource = exo_test_resource_new ("scope-destroy");
  UseCounts counts = { 0 };

  exo_resource_use_async (EXO_RESOURCE (resource), counted_func, &counts, use_counts_destroy,
                          0, NULL, use_ignore_cb, &counts);
  g_assert_true (exo_test_spin_until (use_counts_done, &counts, WAIT_MS));
  g_assert_cmpuint (counts.func_calls, ==, 1);
  g_assert_cmpuint (counts.data_destroyed, ==, 0);
  g_assert_cmpuint (counts.values_freed, ==, 0);

  g_clear_object (&counts.result);
  g_assert_cmpuint (counts.data_destroyed, ==, 1);
  g_assert_false (counts.destroyed_before_callback);
  g_assert_cmpuint (counts.values_freed, ==, 1);
  exo_test_spin (5);
  g_assert_cmpuint (counts.data_destroyed, ==, 1);
  g_assert_cmpuint (counts.values_freed, ==, 1);

  g_object_unref (resource);
}

/* --- cancellables with a timeout ---------------------------------------- */

static gboolean
is_cancelled (gpointer data)
{
  return g_cancellable_is_cancelled (data);
}

static void
test_cancellable_timeout_fires (void)
{
  gint64 start = g_get_monotonic_time ();
  g_autoptr(GCancellable) cancellable = exo_cancellable_new_with_timeout (80, NULL);
  gint64 elapsed;

  g_assert_false (g_cancellable_is_cancelled (cancellable));
  g_assert_false (exo_cancellable_timed_out (cancellable));

  g_assert_true (exo_test_spin_until (is_cancelled, cancellable, WAIT_MS));
  elapsed = g_get_monotonic_time () - start;
  g_assert_cmpint (elapsed, >=, 80 * 1000);
  g_assert_true (exo_cancellable_timed_out (cancellable));

  /* and an error from it is the usual cancel */
  {
    g_autoptr(GError) error = NULL;
    g_assert_true (g_cancellable_set_error_if_cancelled (cancellable, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  }
}

static void
test_cancellable_parent (void)
{
  g_autoptr(GCancellable) parent = g_cancellable_new ();
  g_autoptr(GCancellable) child = exo_cancellable_new_with_timeout (60000, parent);

  g_assert_false (g_cancellable_is_cancelled (child));
  g_cancellable_cancel (parent);
  g_assert_true (g_cancellable_is_cancelled (child));
  g_assert_false (exo_cancellable_timed_out (child));
}

static void
test_cancellable_parent_already_cancelled (void)
{
  g_autoptr(GCancellable) parent = g_cancellable_new ();
  g_autoptr(GCancellable) child = NULL;

  g_cancellable_cancel (parent);
  child = exo_cancellable_new_with_timeout (60000, parent);
  g_assert_true (g_cancellable_is_cancelled (child));
  g_assert_false (exo_cancellable_timed_out (child));
}

static void
test_cancellable_no_timeout (void)
{
  g_autoptr(GCancellable) cancellable = exo_cancellable_new_with_timeout (0, NULL);

  exo_test_spin (50);
  g_assert_false (g_cancellable_is_cancelled (cancellable));
  g_assert_false (exo_cancellable_timed_out (cancellable));

  /* a plain cancel is not a timeout */
  g_cancellable_cancel (cancellable);
  g_assert_false (exo_cancellable_timed_out (cancellable));

  /* nor is a cancel by hand before the timer fires, after it fired */
  {
    g_autoptr(GCancellable) early = exo_cancellable_new_with_timeout (20, NULL);

    g_cancellable_cancel (early);
    exo_test_spin (60);
    g_assert_false (exo_cancellable_timed_out (early));
  }

  g_assert_false (exo_cancellable_timed_out (NULL));
  {
    g_autoptr(GCancellable) plain = g_cancellable_new ();
    g_cancellable_cancel (plain);
    g_assert_false (exo_cancellable_timed_out (plain));
  }
}

static void
test_cancellable_dropped (void)
{
  g_autoptr(GCancellable) parent = g_cancellable_new ();
  GCancellable *child = exo_cancellable_new_with_timeout (30, parent);
  GCancellable *lone = exo_cancellable_new_with_timeout (30, NULL);
  GWeakRef weak_child, weak_lone;

  g_weak_ref_init (&weak_child, child);
  g_weak_ref_init (&weak_lone, lone);
  g_assert_true (g_signal_has_handler_pending (parent, g_signal_lookup ("cancelled", G_TYPE_CANCELLABLE),
                                               0, FALSE));

  /* Dropped before the timeout: nothing keeps them alive… */
  g_object_unref (child);
  g_object_unref (lone);
  g_assert_null (g_weak_ref_get (&weak_child));
  g_assert_null (g_weak_ref_get (&weak_lone));
  g_weak_ref_clear (&weak_child);
  g_weak_ref_clear (&weak_lone);

  /* …the parent forgets the child… */
  g_assert_false (g_signal_has_handler_pending (parent, g_signal_lookup ("cancelled", G_TYPE_CANCELLABLE),
                                                0, FALSE));

  /* …and neither the timer nor the parent touches freed memory later
   * (ASan and valgrind check this; valgrind checks for leaks). */
  exo_test_spin (80);
  g_cancellable_cancel (parent);
}

/* --- the child's last reference dropped from inside a cancel ----------- *
 *
 * Each scenario runs in a subprocess with a time limit: the bug was a hang
 * (g_cancellable_disconnect() on the parent from inside the parent's own
 * ::cancelled emission waits for that emission to end). */

#define HANG_LIMIT_US (10 * G_USEC_PER_SEC)

static guint
cancelled_signal (void)
{
  return g_signal_lookup ("cancelled", G_TYPE_CANCELLABLE);
}

/* Drops the last reference of the child that @data points to. */
static void
drop_child_cb (GCancellable *cancellable,
               gpointer      data)
{
  GCancellable **child = data;

  g_clear_object (child);
}

typedef struct
{
  GCancellable *parent;
  GCancellable *child;
  GWeakRef      weak_parent;
  GWeakRef      weak_child;
} Family;

static void
family_init (Family *f,
             guint   timeout_ms)
{
  f->parent = g_cancellable_new ();
  f->child = exo_cancellable_new_with_timeout (timeout_ms, f->parent);
  g_weak_ref_init (&f->weak_parent, f->parent);
  g_weak_ref_init (&f->weak_child, f->child);
}

/* The child is gone, the parent kept no handler for it, and the parent
 * itself goes with its last reference: nothing leaked (valgrind checks the
 * rest). */
static void
family_check_and_clear (Family *f)
{
  GCancellable *child = g_weak_ref_get (&f->weak_child);

  g_assert_null (f->child);
  g_assert_null (child);
  g_assert_false (g_signal_has_handler_pending (f->parent, cancelled_signal (), 0, FALSE));

  /* a later cancel of the parent does not reach the freed child */
  g_cancellable_reset (f->parent);
  g_cancellable_cancel (f->parent);

  g_clear_object (&f->parent);
  g_assert_null (g_weak_ref_get (&f->weak_parent));
  g_weak_ref_clear (&f->weak_parent);
  g_weak_ref_clear (&f->weak_child);
}

static void
run_in_subprocess (void)
{
  g_test_trap_subprocess (NULL, HANG_LIMIT_US * exo_test_slow_factor (),
                          G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_assert_false (g_test_trap_reached_timeout ());
  g_test_trap_assert_passed ();
}

/* A handler of the parent that runs before ours drops the child. */
static void
test_cancellable_drop_in_parent_handler (void)
{
  Family f;
  gulong id;

  if (!g_test_subprocess ())
    {
      run_in_subprocess ();
      return;
    }

  /* connected before the child exists: runs before the child's handler */
  f.parent = g_cancellable_new ();
  id = g_signal_connect (f.parent, "cancelled", G_CALLBACK (drop_child_cb), &f.child);
  f.child = exo_cancellable_new_with_timeout (60000, f.parent);
  g_weak_ref_init (&f.weak_parent, f.parent);
  g_weak_ref_init (&f.weak_child, f.child);

  g_cancellable_cancel (f.parent);
  g_signal_handler_disconnect (f.parent, id);
  family_check_and_clear (&f);
}

/* A handler of the parent that runs after ours (which cancelled the child)
 * drops the child. */
static void
test_cancellable_drop_after_parent_handler (void)
{
  Family f;
  gulong id;

  if (!g_test_subprocess ())
    {
      run_in_subprocess ();
      return;
    }

  family_init (&f, 60000);
  id = g_cancellable_connect (f.parent, G_CALLBACK (drop_child_cb), &f.child, NULL);

  g_cancellable_cancel (f.parent);
  g_cancellable_disconnect (f.parent, id);
  family_check_and_clear (&f);
}

/* The child's own ::cancelled handler, run by g_cancellable_cancel(parent),
 * drops the child. */
static void
test_cancellable_drop_in_child_handler (void)
{
  Family f;

  if (!g_test_subprocess ())
    {
      run_in_subprocess ();
      return;
    }

  family_init (&f, 60000);
  g_cancellable_connect (f.child, G_CALLBACK (drop_child_cb), &f.child, NULL);

  g_cancellable_cancel (f.parent);
  family_check_and_clear (&f);
}

/* The timer fires and the child's ::cancelled handler drops the child. */
static void
test_cancellable_drop_on_timeout (void)
{
  Family f;

  if (!g_test_subprocess ())
    {
      run_in_subprocess ();
      return;
    }

  family_init (&f, 20);
  g_cancellable_connect (f.child, G_CALLBACK (drop_child_cb), &f.child, NULL);

  /* the timer cancels the child, whose handler clears f.child */
  while (f.child != NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (g_cancellable_is_cancelled (f.parent));
  family_check_and_clear (&f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/exo/scope/use/success", test_use_success);
  g_test_add_func ("/exo/scope/use/func-fails", test_use_func_fails);
  g_test_add_func ("/exo/scope/use/init-fails", test_use_init_fails);
  g_test_add_func ("/exo/scope/use/timeout", test_use_timeout);
  g_test_add_func ("/exo/scope/use/timeout-in-init", test_use_timeout_in_init);
  g_test_add_func ("/exo/scope/use/cancelled", test_use_cancelled);
  g_test_add_func ("/exo/scope/use/cleanup-fails", test_use_cleanup_fails);
  g_test_add_func ("/exo/scope/use/destroy-notify", test_use_destroy_notify);
  g_test_add_func ("/exo/scope/cancellable/timeout", test_cancellable_timeout_fires);
  g_test_add_func ("/exo/scope/cancellable/parent", test_cancellable_parent);
  g_test_add_func ("/exo/scope/cancellable/parent-already-cancelled",
                   test_cancellable_parent_already_cancelled);
  g_test_add_func ("/exo/scope/cancellable/no-timeout", test_cancellable_no_timeout);
  g_test_add_func ("/exo/scope/cancellable/dropped", test_cancellable_dropped);
  g_test_add_func ("/exo/scope/cancellable/drop/in-parent-handler",
                   test_cancellable_drop_in_parent_handler);
  g_test_add_func ("/exo/scope/cancellable/drop/after-parent-handler",
                   test_cancellable_drop_after_parent_handler);
  g_test_add_func ("/exo/scope/cancellable/drop/in-child-handler",
                   test_cancellable_drop_in_child_handler);
  g_test_add_func ("/exo/scope/cancellable/drop/on-timeout", test_cancellable_drop_on_timeout);

  return g_test_run ();
}
