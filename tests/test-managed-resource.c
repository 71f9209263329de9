/* test-managed-resource.c: retries, backoff, recovery, restart limits, the runner.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

#include <string.h>

static void
set_policy (ExoTestResource *r,
            guint            max_retries,
            guint            initial_ms,
            guint            max_ms,
            double           multiplier,
            ExoJitter        jitter,
            guint            burst,
            guint            interval_ms)
{
  ExoRetryPolicy policy = {
    .max_retries = max_retries, .initial_delay_ms = initial_ms, .max_delay_ms = max_ms,
    .multiplier = multiplier, .jitter = jitter,
    .restart_burst = burst, .restart_interval_ms = interval_ms,
  };

  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (r), &policy);
}

/* --- initialize with retries ------------------------------------------- */

static void
test_retry_succeeds (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("retry-ok");
  g_autoptr(GError) error = NULL;

  set_policy (r, 3, 5, 100, 2.0, EXO_JITTER_FULL, 0, 0);
  r->fail_inits = 2;
  exo_test_log_reset ();

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_no_error (error);
  g_assert_cmpuint (r->n_init_calls, ==, 3);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpuint (exo_resource_get_error_count (EXO_RESOURCE (r)), ==, 2);
  /* the attempt counter resets after a success */
  g_assert_cmpuint (exo_resource_get_attempts (EXO_RESOURCE (r)), ==, 0);
  /* each failed attempt's leftovers were cleaned up before the next attempt */
  g_assert_cmpstr (exo_test_log_get (), ==,
                   "init:retry-ok,init-failed:retry-ok,cleanup:retry-ok,cleanup-done:retry-ok,"
                   "init:retry-ok,init-failed:retry-ok,cleanup:retry-ok,cleanup-done:retry-ok,"
                   "init:retry-ok,init-done:retry-ok");
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static void
test_retry_exhausted (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("retry-exhausted");
  g_autoptr(GError) error = NULL;

  set_policy (r, 2, 1, 5, 2.0, EXO_JITTER_NONE, 0, 0);
  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (r), FALSE);
  r->fail_inits = 100;

  g_assert_false (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_cmpuint (r->n_init_calls, ==, 3);      /* 1 + 2 retries */
  g_assert_cmpuint (exo_resource_get_attempts (EXO_RESOURCE (r)), ==, 3);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static void
test_retry_fatal (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("retry-fatal");
  g_autoptr(GError) error = NULL;

  set_policy (r, 5, 1, 5, 2.0, EXO_JITTER_NONE, 0, 0);
  r->fail_inits = 100;
  r->fail_fatal = TRUE;

  g_assert_false (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
  g_assert_cmpuint (r->n_init_calls, ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* The delays between attempts follow the policy (no jitter: exact lower bounds). */
static void
test_backoff_timing (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("backoff");
  g_autoptr(GError) error = NULL;
  gint64 t0;

  /* 20 + 40 + 80 ms of waiting before the 4th attempt */
  set_policy (r, 3, 20, 1000, 2.0, EXO_JITTER_NONE, 0, 0);
  r->fail_inits = 3;

  t0 = g_get_monotonic_time ();
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_cmpint (g_get_monotonic_time () - t0, >=, 140000);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 3000000);
  g_assert_cmpuint (r->n_init_calls, ==, 4);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_READY);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static void
count_error_cb (ExoResource *r, ExoResourceState old_state, ExoResourceState new_state, gpointer data)
{
  if (new_state == EXO_RESOURCE_STATE_ERROR)
    (*(guint *) data)++;
}

/* Between retries of one initialize the state stays `initializing`. */
static void
test_retry_state_stays_initializing (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("steady");
  guint errors = 0;

  set_policy (r, 3, 1, 5, 2.0, EXO_JITTER_NONE, 0, 0);
  r->fail_inits = 3;
  g_signal_connect (r, "state-changed", G_CALLBACK (count_error_cb), &errors);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_assert_cmpuint (errors, ==, 0);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* --- recovery ---------------------------------------------------------- */

static void
test_recover_from_error (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("recover-error");
  g_autoptr(GError) crash = g_error_new (G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, "crashed");

  set_policy (r, 3, 5, 20, 2.0, EXO_JITTER_NONE, 5, 10000);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));

  exo_test_log_reset ();
  exo_resource_report_error (EXO_RESOURCE (r), crash);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_true (exo_managed_resource_is_recovery_pending (EXO_MANAGED_RESOURCE (r)));

  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (r), EXO_RESOURCE_STATE_READY, 5000));
  g_assert_cmpuint (exo_managed_resource_get_restarts (EXO_MANAGED_RESOURCE (r)), ==, 1);
  g_assert_cmpuint (r->n_init_calls, ==, 2);
  g_assert_cmpstr (exo_test_log_get (), ==,
                   "cleanup:recover-error,cleanup-done:recover-error,"
                   "init:recover-error,init-done:recover-error");
  g_assert_cmpint (r->live, ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* Recovery keeps trying (with backoff) while the backend is down. */
static void
test_recover_after_backend_returns (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("recover-later");
  g_autoptr(GError) crash = g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED, "down");

  set_policy (r, 0, 5, 10, 2.0, EXO_JITTER_NONE, 0, 0);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  r->fail_inits = 3;   /* the next three re-initializations fail */
  exo_resource_report_error (EXO_RESOURCE (r), crash);
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (r), EXO_RESOURCE_STATE_READY, 5000));
  g_assert_cmpuint (r->n_init_calls, ==, 5);
  g_assert_cmpuint (exo_managed_resource_get_restarts (EXO_MANAGED_RESOURCE (r)), ==, 4);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static gboolean
init_calls_at_least_2 (gpointer data)
{
  return EXO_TEST_RESOURCE (data)->n_init_calls >= 2;
}

static void
test_recover_from_degraded (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("recover-degraded");

  set_policy (r, 3, 5, 20, 2.0, EXO_JITTER_NONE, 0, 0);
  exo_managed_resource_set_health_check_interval (EXO_MANAGED_RESOURCE (r), 10);
  exo_managed_resource_set_degraded_restart (EXO_MANAGED_RESOURCE (r), 0);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));

  r->healthy = FALSE;
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (r), EXO_RESOURCE_STATE_DEGRADED, 5000));
  /* a periodic check found it; recovery re-initializes it */
  g_assert_true (exo_test_spin_until (init_calls_at_least_2, r, 5000));
  r->healthy = TRUE;
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (r), EXO_RESOURCE_STATE_READY, 5000));
  g_assert_cmpuint (exo_managed_resource_get_restarts (EXO_MANAGED_RESOURCE (r)), >=, 1);
  g_assert_cmpint (r->live, ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static void
test_health_checks_periodic (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("periodic");
  guint calls;

  exo_managed_resource_set_health_check_interval (EXO_MANAGED_RESOURCE (r), 10);
  exo_test_spin (50);
  g_assert_cmpuint (r->n_health_calls, ==, 0);   /* not while uninitialized */

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  exo_test_spin (120 * exo_test_slow_factor ());
  g_assert_cmpuint (r->n_health_calls, >=, 3);

  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  calls = r->n_health_calls;
  exo_test_spin (60);
  g_assert_cmpuint (r->n_health_calls, ==, calls);   /* stopped when closed */
}

static void
test_restart_limit (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("flapping");
  g_autoptr(GError) crash = g_error_new (G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, "crashed");
  const GError *last;

  /* at most 2 restarts in 10 s */
  set_policy (r, 0, 1, 2, 1.0, EXO_JITTER_NONE, 2, 10000);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));

  for (guint i = 0; i < 2; i++)
    {
      exo_resource_report_error (EXO_RESOURCE (r), crash);
      g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (r), EXO_RESOURCE_STATE_READY, 5000));
    }
  g_assert_cmpuint (exo_managed_resource_get_restarts (EXO_MANAGED_RESOURCE (r)), ==, 2);

  /* the third failure within the interval is over the limit: it stays in error */
  exo_resource_report_error (EXO_RESOURCE (r), crash);
  exo_test_spin (100);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_cmpuint (r->n_init_calls, ==, 3);
  last = exo_resource_get_last_error (EXO_RESOURCE (r));
  g_assert_error ((GError *) last, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_RESTART_LIMIT);
  g_assert_false (exo_managed_resource_is_recovery_pending (EXO_MANAGED_RESOURCE (r)));
  {
    g_autoptr(GVariant) metrics = exo_resource_get_metrics (EXO_RESOURCE (r));
    gboolean hit = FALSE;
    g_assert_true (g_variant_lookup (metrics, "restart-limit-hit", "b", &hit));
    g_assert_true (hit);
  }

  /* reset (like systemctl reset-failed) lets it recover again */
  exo_resource_reset (EXO_RESOURCE (r));
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (r), EXO_RESOURCE_STATE_READY, 5000));
  g_assert_cmpuint (r->n_init_calls, ==, 4);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static void
test_no_recover_when_off_or_closed (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("no-recover");
  g_autoptr(GError) crash = g_error_new (G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, "crashed");

  set_policy (r, 0, 1, 2, 1.0, EXO_JITTER_NONE, 0, 0);
  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (r), FALSE);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  exo_resource_report_error (EXO_RESOURCE (r), crash);
  exo_test_spin (50);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_cmpuint (r->n_init_calls, ==, 1);

  /* auto-recover on, but cleaned up before the delay ran out: stays closed */
  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (r), TRUE);
  set_policy (r, 0, 50, 50, 1.0, EXO_JITTER_NONE, 0, 0);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  exo_resource_report_error (EXO_RESOURCE (r), crash);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  exo_test_spin (120);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpuint (r->n_init_calls, ==, 2);
}

/* --- the operation runner ---------------------------------------------- */

typedef struct
{
  guint   started;
  guint   completed;
  guint   running;
  guint   max_running;
  guint   fail_first;
  gboolean fatal;
  gboolean hang;          /* never complete unless cancelled */
  guint   delay_ms;
} Op;

typedef struct
{
  Op      *op;
  GTask   *task;
  gulong   cancel_id;
  GSource *timer;
} OpCall;

static void
op_complete (OpCall *call, gboolean cancelled)
{
  Op *op = call->op;
  GCancellable *cancellable = g_task_get_cancellable (call->task);

  if (call->cancel_id != 0)
    g_cancellable_disconnect (cancellable, call->cancel_id);
  op->running--;
  op->completed++;

  if (cancelled)
    g_task_return_new_error (call->task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "op cancelled");
  else if (op->completed <= op->fail_first)
    g_task_return_new_error (call->task, EXO_RESOURCE_ERROR,
                             op->fatal ? EXO_RESOURCE_ERROR_FATAL : EXO_RESOURCE_ERROR_FAILED,
                             "op attempt %u failed", op->completed);
  else
    g_task_return_pointer (call->task, g_strdup_printf ("result after %u", op->completed), g_free);

  g_object_unref (call->task);
  g_free (call);
}

static gboolean
op_timer_cb (gpointer data)
{
  OpCall *call = data;

  call->timer = NULL;
  op_complete (call, FALSE);
  return G_SOURCE_REMOVE;
}

static gboolean
op_cancel_idle (gpointer data)
{
  OpCall *call = data;

  if (call->timer != NULL)
    g_source_remove (g_source_get_id (call->timer));
  call->cancel_id = 0;
  op_complete (call, TRUE);
  return G_SOURCE_REMOVE;
}

static void
op_cancelled_cb (GCancellable *cancellable, gpointer data)
{
  g_idle_add (op_cancel_idle, data);
}

static void
op_func (ExoResource  *resource,
         GCancellable *cancellable,
         GTask        *task,
         gpointer      user_data)
{
  Op *op = user_data;
  OpCall *call = g_new0 (OpCall, 1);

  g_assert_true (exo_resource_is_usable (resource));
  call->op = op;
  call->task = g_object_ref (task);
  op->started++;
  op->running++;
  op->max_running = MAX (op->max_running, op->running);

  if (!op->hang)
    {
      guint id = g_timeout_add (op->delay_ms, op_timer_cb, call);
      call->timer = g_main_context_find_source_by_id (NULL, id);
    }
  if (cancellable != NULL)
    call->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (op_cancelled_cb), call, NULL);
}

static void
run_store_cb (GObject *source, GAsyncResult *result, gpointer data)
{
  exo_test_store_result (source, result, data);
}

/* Regression for the Python original: a retried operation that returned a
 * coroutine was never awaited.  Here every attempt runs to completion before
 * the next starts, and the caller gets the last attempt's value. */
static void
test_runner_awaits_each_attempt (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("runner");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *value = NULL;
  Op op = { .fail_first = 2, .delay_ms = 15 };

  set_policy (r, 3, 1, 5, 2.0, EXO_JITTER_NONE, 0, 0);
  exo_managed_resource_run_async (EXO_MANAGED_RESOURCE (r), op_func, &op, NULL, 0, NULL,
                                  run_store_cb, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  value = exo_managed_resource_run_finish (EXO_MANAGED_RESOURCE (r), result, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (value, ==, "result after 3");
  g_assert_cmpuint (op.started, ==, 3);
  g_assert_cmpuint (op.completed, ==, 3);   /* every attempt was awaited */
  g_assert_cmpuint (op.max_running, ==, 1); /* and never overlapped */
  /* the runner initialized the resource first */
  g_assert_cmpuint (r->n_init_calls, ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static void
test_runner_fatal (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("runner-fatal");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  Op op = { .fail_first = 10, .fatal = TRUE, .delay_ms = 1 };

  set_policy (r, 5, 1, 5, 2.0, EXO_JITTER_NONE, 0, 0);
  exo_managed_resource_run_async (EXO_MANAGED_RESOURCE (r), op_func, &op, NULL, 0, NULL,
                                  run_store_cb, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_null (exo_managed_resource_run_finish (EXO_MANAGED_RESOURCE (r), result, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
  g_assert_cmpuint (op.started, ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static void
test_runner_attempt_timeout (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("runner-timeout");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  Op op = { .hang = TRUE };
  gint64 t0 = g_get_monotonic_time ();

  set_policy (r, 1, 1, 5, 2.0, EXO_JITTER_NONE, 0, 0);
  exo_managed_resource_run_async (EXO_MANAGED_RESOURCE (r), op_func, &op, NULL, 30, NULL,
                                  run_store_cb, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_null (exo_managed_resource_run_finish (EXO_MANAGED_RESOURCE (r), result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpuint (op.started, ==, 2);
  g_assert_cmpuint (op.completed, ==, 2);   /* each timed-out attempt was cancelled and awaited */
  g_assert_cmpint (g_get_monotonic_time () - t0, >=, 60000);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static void
test_runner_cancel (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("runner-cancel");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Op op = { .hang = TRUE };

  set_policy (r, 5, 1, 5, 2.0, EXO_JITTER_NONE, 0, 0);
  exo_managed_resource_run_async (EXO_MANAGED_RESOURCE (r), op_func, &op, NULL, 0, cancellable,
                                  run_store_cb, &result);
  exo_test_spin (20);
  g_assert_cmpuint (op.started, ==, 1);
  g_cancellable_cancel (cancellable);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_null (exo_managed_resource_run_finish (EXO_MANAGED_RESOURCE (r), result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (op.started, ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static void
test_runner_on_closed (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("runner-closed");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  Op op = { .delay_ms = 1 };

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  exo_managed_resource_run_async (EXO_MANAGED_RESOURCE (r), op_func, &op, NULL, 0, NULL,
                                  run_store_cb, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_null (exo_managed_resource_run_finish (EXO_MANAGED_RESOURCE (r), result, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED);
  g_assert_cmpuint (op.started, ==, 0);
}

/* --- the runner's destroy notifies ------------------------------------- */

/* func_data for counted_func: it counts what happened to itself and to the
 * values counted_func returned. */
typedef struct
{
  guint          fail_first;       /* the first N attempts fail (retryable) */
  gboolean       return_gvalue;    /* complete with g_task_return_value() */
  guint          func_calls;
  guint          data_destroyed;
  guint          values_made;
  guint          values_freed;
  gboolean       callback_ran;
  gboolean       destroyed_before_callback;
  gboolean       take_result;      /* the callback calls run_finish */
  char          *taken;
  GAsyncResult  *result;
} Counted;

typedef struct
{
  Counted *counts;
} CountedValue;

static void
counted_value_free (gpointer data)
{
  CountedValue *value = data;

  value->counts->values_freed++;
  g_free (value);
}

static void
counted_data_destroy (gpointer data)
{
  Counted *counts = data;

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
  Counted *counts = user_data;
  CountedValue *value;

  counts->func_calls++;
  if (counts->func_calls <= counts->fail_first)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                               "attempt %u fails", counts->func_calls);
      return;
    }
  if (counts->return_gvalue)
    {
      g_auto(GValue) gvalue = G_VALUE_INIT;

      g_value_init (&gvalue, G_TYPE_STRING);
      g_value_take_string (&gvalue, g_strdup_printf ("value of attempt %u", counts->func_calls));
      g_task_return_value (task, &gvalue);
      return;
    }
  value = g_new0 (CountedValue, 1);
  value->counts = counts;
  counts->values_made++;
  g_task_return_pointer (task, value, counted_value_free);
}

static void
counted_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Counted *counts = user_data;

  g_assert_false (counts->callback_ran);
  counts->callback_ran = TRUE;
  if (counts->take_result && counts->return_gvalue)
    {
      g_auto(GValue) gvalue = G_VALUE_INIT;
      g_autoptr(GError) error = NULL;

      g_assert_true (exo_managed_resource_run_finish_value (EXO_MANAGED_RESOURCE (source), result,
                                                            &gvalue, &error));
      g_assert_no_error (error);
      counts->taken = g_value_dup_string (&gvalue);
    }
  else if (counts->take_result)
    {
      g_autoptr(GError) error = NULL;
      CountedValue *value = exo_managed_resource_run_finish (EXO_MANAGED_RESOURCE (source),
                                                             result, &error);

      g_assert_no_error (error);
      g_assert_nonnull (value);
      g_assert_true (value->counts == counts);
      counted_value_free (value);   /* the caller owns what it took */
      counts->taken = g_strdup ("taken");
    }
  counts->result = g_object_ref (result);
}

static gboolean
counted_done (gpointer data)
{
  return ((Counted *) data)->callback_ran;
}

/* Runs counted_func on a fresh resource and waits for the callback. */
static void
run_counted (Counted  *counts,
             gboolean  closed)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("runner-destroy");

  set_policy (r, 5, 1, 5, 2.0, EXO_JITTER_NONE, 0, 0);
  if (closed)
    {
      g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
      g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
    }
  exo_managed_resource_run_async (EXO_MANAGED_RESOURCE (r), counted_func, counts,
                                  counted_data_destroy, 0, NULL, counted_done_cb, counts);
  g_assert_true (exo_test_spin_until (counted_done, counts, 5000));

  /* func_data lives as long as the result given to the callback */
  g_assert_cmpuint (counts->data_destroyed, ==, 0);
  g_clear_object (&counts->result);
  g_assert_cmpuint (counts->data_destroyed, ==, 1);
  g_assert_false (counts->destroyed_before_callback);
  if (!closed)
    g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  exo_test_spin (5);
  /* called exactly once, never again */
  g_assert_cmpuint (counts->data_destroyed, ==, 1);
}

/* The GLib shape (func, func_data, func_data_destroy): func_data_destroy
 * frees func_data once, after the callback; a result the caller takes is its
 * own (freed once, by the caller). */
static void
test_runner_destroy_taken (void)
{
  Counted counts = { .fail_first = 2, .take_result = TRUE };

  run_counted (&counts, FALSE);
  g_assert_cmpuint (counts.func_calls, ==, 3);
  g_assert_cmpstr (counts.taken, ==, "taken");
  g_assert_cmpuint (counts.values_made, ==, 1);
  g_assert_cmpuint (counts.values_freed, ==, 1);
  g_free (counts.taken);
}

/* A result nobody takes is freed with the destroy notify func gave it. */
static void
test_runner_destroy_untaken (void)
{
  Counted counts = { .fail_first = 1 };

  run_counted (&counts, FALSE);
  g_assert_cmpuint (counts.func_calls, ==, 2);
  g_assert_cmpuint (counts.values_made, ==, 1);
  g_assert_cmpuint (counts.values_freed, ==, 1);
}

/* func never runs (the resource is closed): func_data is still freed, once. */
static void
test_runner_destroy_never_ran (void)
{
  Counted counts = { 0 };

  run_counted (&counts, TRUE);
  g_assert_cmpuint (counts.func_calls, ==, 0);
  g_assert_cmpuint (counts.values_made, ==, 0);
}

/* Bindings: func completes with g_task_return_value(); run_finish_value
 * gives the value, and an untaken one is freed (valgrind checks). */
static void
test_runner_gvalue (void)
{
  Counted taken = { .fail_first = 1, .return_gvalue = TRUE, .take_result = TRUE };
  Counted untaken = { .return_gvalue = TRUE };

  run_counted (&taken, FALSE);
  g_assert_cmpstr (taken.taken, ==, "value of attempt 2");
  g_free (taken.taken);

  run_counted (&untaken, FALSE);
  g_assert_cmpuint (untaken.func_calls, ==, 1);
}

/* An operation that returns without completing its task and without keeping
 * it (a binding's operation that raised) fails its attempt, which is
 * retried; the runner does not wait for ever. */
static void
drop_func (ExoResource  *resource,
           GCancellable *cancellable,
           GTask        *task,
           gpointer      user_data)
{
  (*(guint *) user_data)++;
}

static void
test_runner_operation_drops_task (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("runner-drop");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  guint calls = 0;

  set_policy (r, 1, 1, 5, 2.0, EXO_JITTER_NONE, 0, 0);
  exo_managed_resource_run_async (EXO_MANAGED_RESOURCE (r), drop_func, &calls, NULL, 0, NULL,
                                  run_store_cb, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_null (exo_managed_resource_run_finish (EXO_MANAGED_RESOURCE (r), result, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "operation of 'runner-drop' returned without "
                                            "completing its task"));
  g_assert_cmpuint (calls, ==, 2);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static void
test_policy_property (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("policy-prop");
  g_autoptr(ExoRetryPolicy) got = NULL;
  ExoRetryPolicy *prop = NULL;

  set_policy (r, 7, 11, 1300, 1.5, EXO_JITTER_DECORRELATED, 4, 9000);
  got = exo_managed_resource_get_retry_policy (EXO_MANAGED_RESOURCE (r));
  g_assert_cmpuint (got->max_retries, ==, 7);
  g_assert_cmpint (got->jitter, ==, EXO_JITTER_DECORRELATED);
  g_object_get (r, "retry-policy", &prop, NULL);
  g_assert_cmpuint (prop->restart_burst, ==, 4);
  exo_retry_policy_free (prop);
}

static void
count_error_notify_cb (GObject *object, GParamSpec *pspec, gpointer data)
{
  (*(guint *) data)++;
}

/* Regression: a do_initialize that hangs (ignores its cancellable and never
 * returns in time) must not leave the resource `initializing` forever: each
 * attempt times out on time, is counted and recorded, the retries back off,
 * and the flight ends in `error` with result "timeout". */
static void
test_init_timeout_rescues_hung_initialize (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("hung");
  g_autoptr(GError) error = NULL;
  guint notified = 0;
  gint64 t0;

  set_policy (r, 2, 20, 20, 1.0, EXO_JITTER_NONE, 0, 0);
  r->init_delay_ms = 4000;   /* real time: within the 5 s bound of the last initialize below */
  r->ignore_cancel = TRUE;
  exo_resource_set_init_timeout (EXO_RESOURCE (r), 50);
  g_signal_connect (r, "notify::error-count", G_CALLBACK (count_error_notify_cb), &notified);

  t0 = g_get_monotonic_time ();
  g_assert_false (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  /* 3 attempts of 50 ms and 2 delays of 20 ms, not the 3 s of the hang */
  g_assert_cmpint ((g_get_monotonic_time () - t0) / 1000, <, 1500 * exo_test_slow_factor ());
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_cmpuint (exo_resource_get_attempts (EXO_RESOURCE (r)), ==, 3);
  g_assert_cmpuint (exo_resource_get_error_count (EXO_RESOURCE (r)), ==, 3);
  g_assert_cmpuint (notified, ==, 3);
  g_assert_cmpint (exo_resource_get_result (EXO_RESOURCE (r)), ==, EXO_RESOURCE_RESULT_TIMEOUT);
  g_assert_nonnull (strstr (exo_resource_get_last_error (EXO_RESOURCE (r))->message,
                            "has not returned since it was cancelled"));
  g_assert_cmpuint (r->n_init_calls, ==, 1);   /* never two do_initialize at once */

  /* When the hung call returns at last, what it made is cleaned up and the
   * resource can be initialized again. */
  r->init_delay_ms = 0;
  exo_resource_set_init_timeout (EXO_RESOURCE (r), 0);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_assert_cmpint (r->live, ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  g_assert_cmpint (r->live, ==, 0);
}

/* A recovery's backoff grows across failures and starts again from the
 * initial delay only after a stable run (backoff-reset-ms). */
static void
test_backoff_resets_after_stable_run (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("stable");

  set_policy (r, 0, 40, 1000, 4.0, EXO_JITTER_NONE, 0, 0);
  exo_managed_resource_set_backoff_reset (EXO_MANAGED_RESOURCE (r), 300);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));

  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GError) e = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED, "x");
      gint64 t0;
      gint64 took;

      if (i == 2)
        exo_test_spin (400);   /* a stable run: the backoff starts again */
      t0 = g_get_monotonic_time ();
      exo_resource_report_error (EXO_RESOURCE (r), e);
      g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (r), EXO_RESOURCE_STATE_READY, 5000));
      took = (g_get_monotonic_time () - t0) / 1000;
      if (i == 0 || i == 2)
        g_assert_cmpint (took, <, 140);   /* 40 ms */
      else
        g_assert_cmpint (took, >=, 150);  /* 160 ms: it flapped */
    }
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* Over the restart limit a resource gives up plainly (result
 * start-limit-hit); a manual initialize clears it. */
static void
test_restart_limit_result (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("limit");
  g_autoptr(GError) e = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED, "x");

  set_policy (r, 0, 1, 1, 1.0, EXO_JITTER_NONE, 1, 60000);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  exo_resource_report_error (EXO_RESOURCE (r), e);
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (r), EXO_RESOURCE_STATE_READY, 5000));
  exo_resource_report_error (EXO_RESOURCE (r), e);
  exo_test_spin (50);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_cmpint (exo_resource_get_result (EXO_RESOURCE (r)), ==, EXO_RESOURCE_RESULT_START_LIMIT_HIT);

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_assert_cmpint (exo_resource_get_result (EXO_RESOURCE (r)), ==, EXO_RESOURCE_RESULT_SUCCESS);
  exo_resource_report_error (EXO_RESOURCE (r), e);
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (r), EXO_RESOURCE_STATE_READY, 5000));
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* Regression: a Stop (cleanup) of a resource whose abandoned do_initialize
 * hangs ends `closed` after a grace time instead of `closing` for good; the
 * hung call's leftovers are cleaned up when it returns. */
static void
test_cleanup_does_not_wait_for_hung_initialize (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("hung-stop");
  g_autoptr(GError) error = NULL;
  gint64 t0;

  set_policy (r, 0, 1, 1, 1.0, EXO_JITTER_NONE, 0, 0);
  r->init_delay_ms = 6500;   /* longer than the 5 s bound below (real time, not scaled) */
  r->ignore_cancel = TRUE;
  exo_resource_set_init_timeout (EXO_RESOURCE (r), 100);
  g_assert_false (exo_test_initialize (EXO_RESOURCE (r), NULL));

  t0 = g_get_monotonic_time ();
  g_assert_false (exo_test_cleanup (EXO_RESOURCE (r), &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint ((g_get_monotonic_time () - t0) / 1000, <, 1000 * exo_test_slow_factor ());
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSED);

  /* Without an init-timeout, an initialize that waits for the hung call
   * is bounded too (it does not hang): it times out. */
  exo_resource_set_init_timeout (EXO_RESOURCE (r), 0);
  g_clear_error (&error);
  g_assert_false (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);

  /* The hung call returns; what it made is cleaned up; it starts again. */
  r->init_delay_ms = 0;
  exo_test_spin (2000);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_assert_cmpint (r->live, ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  g_assert_cmpint (r->live, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/exo/managed/retry/succeeds-after-failures", test_retry_succeeds);
  g_test_add_func ("/exo/managed/retry/exhausted", test_retry_exhausted);
  g_test_add_func ("/exo/managed/retry/fatal-not-retried", test_retry_fatal);
  g_test_add_func ("/exo/managed/retry/backoff-timing", test_backoff_timing);
  g_test_add_func ("/exo/managed/retry/state-stays-initializing", test_retry_state_stays_initializing);
  g_test_add_func ("/exo/managed/recover/from-error", test_recover_from_error);
  g_test_add_func ("/exo/managed/recover/after-backend-returns", test_recover_after_backend_returns);
  g_test_add_func ("/exo/managed/recover/from-degraded", test_recover_from_degraded);
  g_test_add_func ("/exo/managed/recover/not-when-off-or-closed", test_no_recover_when_off_or_closed);
  g_test_add_func ("/exo/managed/health/periodic", test_health_checks_periodic);
  g_test_add_func ("/exo/managed/restart-limit", test_restart_limit);
  g_test_add_func ("/exo/managed/restart-limit/result", test_restart_limit_result);
  g_test_add_func ("/exo/managed/recover/backoff-resets-after-stable-run", test_backoff_resets_after_stable_run);
  g_test_add_func ("/exo/managed/regression/cleanup-does-not-wait-for-hung-initialize",
                   test_cleanup_does_not_wait_for_hung_initialize);
  g_test_add_func ("/exo/managed/regression/init-timeout-rescues-hung-initialize",
                   test_init_timeout_rescues_hung_initialize);
  g_test_add_func ("/exo/managed/runner/regression/awaits-each-attempt", test_runner_awaits_each_attempt);
  g_test_add_func ("/exo/managed/runner/fatal", test_runner_fatal);
  g_test_add_func ("/exo/managed/runner/attempt-timeout", test_runner_attempt_timeout);
  g_test_add_func ("/exo/managed/runner/cancel", test_runner_cancel);
  g_test_add_func ("/exo/managed/runner/on-closed", test_runner_on_closed);
  g_test_add_func ("/exo/managed/runner/destroy-notify/result-taken", test_runner_destroy_taken);
  g_test_add_func ("/exo/managed/runner/destroy-notify/result-untaken", test_runner_destroy_untaken);
  g_test_add_func ("/exo/managed/runner/destroy-notify/func-never-ran", test_runner_destroy_never_ran);
  g_test_add_func ("/exo/managed/runner/gvalue-result", test_runner_gvalue);
  g_test_add_func ("/exo/managed/runner/operation-drops-task", test_runner_operation_drops_task);
  g_test_add_func ("/exo/managed/policy-property", test_policy_property);

  return g_test_run ();
}
