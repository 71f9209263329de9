/* test-resource-failure.c: ExoResource when things go wrong — cleanup of
 * half-made resources, timeouts, cancellation at each await point, health
 * checks, and two regressions (a self-cancelled check, cleanup from inside
 * the initializing emission).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-resource (main() in test-resource.c).  One thread: the
 * resources and their timers run on the test's thread-default main context.
 */
#include "resource-fixture.h"

/* --- failure, cleanup of half-made resources --------------------------- */

static void
cleanup_seen_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      data)
{
  ExoTestResource *r = EXO_TEST_RESOURCE (source);
  gboolean *checked = data;
  g_autoptr(GError) error = NULL;

  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (r), result, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  /* the half-made resource was cleaned up before the caller heard of it */
  g_assert_cmpuint (r->n_cleanup_calls, ==, 1);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  *checked = TRUE;
}

static gboolean
flag_set (gpointer data)
{
  return *(gboolean *) data;
}

static void
test_cleanup_after_failed_init (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("half-made");
  gboolean checked = FALSE;
  const GError *last;

  r->init_delay_ms = 5;
  r->cleanup_delay_ms = 20;   /* the caller must wait for it */
  r->fail_inits = 1;
  exo_test_log_reset ();
  exo_resource_initialize_async (EXO_RESOURCE (r), NULL, cleanup_seen_cb, &checked);
  g_assert_true (exo_test_spin_until (flag_set, &checked, 5000));

  g_assert_cmpstr (exo_test_log_get (), ==,
                   "init:half-made,init-failed:half-made,cleanup:half-made,cleanup-done:half-made");
  last = exo_resource_get_last_error (EXO_RESOURCE (r));
  g_assert_nonnull (last);
  g_assert_error ((GError *) last, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);

  /* The final cleanup does not run do_cleanup a second time. */
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  g_assert_cmpuint (r->n_cleanup_calls, ==, 1);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSED);
}

static void
test_cleanup_failure_still_closed (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("bad-cleanup");
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  r->fail_cleanup = TRUE;
  g_assert_false (exo_test_cleanup (EXO_RESOURCE (r), &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_nonnull (exo_resource_get_last_error (EXO_RESOURCE (r)));
  g_assert_nonnull (strstr (exo_resource_get_last_error (EXO_RESOURCE (r))->message, "cleanup"));

  /* cleanup of a closed resource is a no-op that succeeds */
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  g_assert_cmpuint (r->n_cleanup_calls, ==, 1);
}

static void
test_cleanup_from_every_state (void)
{
  for (guint state = 0; state < EXO_RESOURCE_STATE_LAST; state++)
    {
      g_autoptr(ExoTestResource) r = new_plain (NULL);

      if (state == EXO_RESOURCE_STATE_CLOSING)
        continue;  /* only reachable inside cleanup itself */

      drive_to (EXO_RESOURCE (r), state);
      if (state == EXO_RESOURCE_STATE_INITIALIZING)
        {
          /* a real attempt, not a forced state */
          g_clear_object (&r);
          r = new_plain (NULL);
          r->init_delay_ms = 10000;
          exo_resource_initialize_async (EXO_RESOURCE (r), NULL, NULL, NULL);
        }

      g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
      g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSED);
    }
}

static void
test_cleanup_during_init (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("interrupted");
  g_autoptr(GAsyncResult) init_res = NULL;
  g_autoptr(GError) error = NULL;

  r->init_delay_ms = 10000;
  exo_resource_initialize_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &init_res);
  exo_test_spin (10);
  g_assert_cmpuint (r->n_init_calls, ==, 1);

  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_true (exo_test_wait_result (&init_res, 1000));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (r), init_res, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* the half-made resource was cleaned up before cleanup completed */
  g_assert_cmpuint (r->n_cleanup_calls, ==, 1);
}

/* --- timeouts ---------------------------------------------------------- */

static void
test_timeout (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("slow");
  g_autoptr(GError) error = NULL;
  gint64 t0;

  r->init_delay_ms = 10000;
  exo_resource_set_init_timeout (EXO_RESOURCE (r), 50);

  t0 = g_get_monotonic_time ();
  g_assert_false (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (g_get_monotonic_time () - t0, >=, 45000);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 5000000);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_error ((GError *) exo_resource_get_last_error (EXO_RESOURCE (r)),
                  G_IO_ERROR, G_IO_ERROR_TIMED_OUT);

  /* The attempt was cancelled; what it made is cleaned up. */
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  g_assert_cmpuint (r->n_cleanup_calls, ==, 1);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSED);
}

/* An implementation that ignores its cancellable: the caller still gets the
 * timeout on time, and the late result is cleaned up before anything else
 * runs on the resource. */
static void
test_timeout_ignores_cancel (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("stubborn");
  g_autoptr(GError) error = NULL;
  gint64 t0;

  r->init_delay_ms = 300 * exo_test_slow_factor ();
  r->ignore_cancel = TRUE;
  exo_resource_set_init_timeout (EXO_RESOURCE (r), 30);
  exo_test_log_reset ();

  t0 = g_get_monotonic_time ();
  g_assert_false (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 250000 * exo_test_slow_factor ());
  g_clear_error (&error);

  /* A new initialize waits for the abandoned attempt and its cleanup. */
  r->init_delay_ms = 0;
  exo_resource_set_init_timeout (EXO_RESOURCE (r), 0);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_no_error (error);
  g_assert_cmpstr (exo_test_log_get (), ==,
                   "init:stubborn,init-done:stubborn,cleanup:stubborn,cleanup-done:stubborn,"
                   "init:stubborn,init-done:stubborn");
  g_assert_cmpint (r->live, ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  g_assert_cmpint (r->live, ==, 0);
}

/* --- cancellation at each await point ---------------------------------- */

static void
test_cancel_before (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("cancel-before");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  g_cancellable_cancel (cancellable);
  exo_resource_initialize_async (EXO_RESOURCE (r), cancellable, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 1000));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (r), result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (r->n_init_calls, ==, 0);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_UNINITIALIZED);
}

static gboolean
cancel_cb (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static void
test_cancel_during_init (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("cancel-during");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  r->init_delay_ms = 10000;
  exo_resource_initialize_async (EXO_RESOURCE (r), cancellable, exo_test_store_result, &result);
  g_timeout_add (20, cancel_cb, cancellable);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (r), result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_error ((GError *) exo_resource_get_last_error (EXO_RESOURCE (r)),
                  G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* do_initialize saw the cancellation and its leftovers are cleaned up */
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  g_assert_cmpuint (r->n_cleanup_calls, ==, 1);
}

/* Cancelled while the half-made resource is being cleaned up after a
 * failed attempt: the caller hears at once; the cleanup still completes. */
static void
test_cancel_during_failed_cleanup (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("cancel-in-cleanup");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  r->init_delay_ms = 5;
  r->cleanup_delay_ms = 200;
  r->fail_inits = 1;
  exo_resource_initialize_async (EXO_RESOURCE (r), cancellable, exo_test_store_result, &result);
  g_timeout_add (50, cancel_cb, cancellable);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (r), result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);

  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  g_assert_cmpuint (r->n_cleanup_calls, ==, 1);
  g_assert_cmpint (r->live, ==, 0);
}

static void
test_cancel_one_of_two (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("shared");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) first = NULL;
  g_autoptr(GAsyncResult) second = NULL;
  g_autoptr(GError) error = NULL;

  r->init_delay_ms = 100;
  exo_resource_initialize_async (EXO_RESOURCE (r), cancellable, exo_test_store_result, &first);
  exo_resource_initialize_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &second);
  g_timeout_add (10, cancel_cb, cancellable);

  g_assert_true (exo_test_wait_result (&first, 5000));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (r), first, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* the other caller's attempt goes on */
  g_assert_null (second);
  g_assert_true (exo_test_wait_result (&second, 5000));
  g_assert_true (exo_resource_initialize_finish (EXO_RESOURCE (r), second, NULL));
  g_assert_cmpuint (r->n_init_calls, ==, 1);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_READY);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* Callers that cancel from the middle and the end of the queue: the others
 * stay queued, in order, and the attempt goes on for them. */
static void
test_cancel_middle_and_last (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("shared-three");
  g_autoptr(GCancellable) middle_cancellable = g_cancellable_new ();
  g_autoptr(GCancellable) last_cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) first = NULL;
  g_autoptr(GAsyncResult) middle = NULL;
  g_autoptr(GAsyncResult) last = NULL;
  g_autoptr(GAsyncResult) fourth = NULL;
  g_autoptr(GError) error = NULL;

  r->init_delay_ms = 100;
  exo_resource_initialize_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &first);
  exo_resource_initialize_async (EXO_RESOURCE (r), middle_cancellable, exo_test_store_result, &middle);
  exo_resource_initialize_async (EXO_RESOURCE (r), last_cancellable, exo_test_store_result, &last);
  g_timeout_add (10, cancel_cb, middle_cancellable);
  g_timeout_add (20, cancel_cb, last_cancellable);

  g_assert_true (exo_test_wait_result (&middle, 5000));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (r), middle, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_true (exo_test_wait_result (&last, 5000));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (r), last, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* a caller that comes after the cancelled last one joins the queue */
  exo_resource_initialize_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &fourth);
  g_assert_null (first);
  g_assert_true (exo_test_wait_result (&first, 5000));
  g_assert_true (exo_resource_initialize_finish (EXO_RESOURCE (r), first, NULL));
  g_assert_true (exo_test_wait_result (&fourth, 5000));
  g_assert_true (exo_resource_initialize_finish (EXO_RESOURCE (r), fourth, NULL));
  g_assert_cmpuint (r->n_init_calls, ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* Cancelled while waiting for the next retry: no further attempt. */
static void
test_cancel_during_retry_wait (void)
{
  g_autoptr(ExoTestResource) r = exo_test_resource_new ("cancel-retry");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  ExoRetryPolicy policy = {
    .max_retries = 5, .initial_delay_ms = 10000, .max_delay_ms = 10000,
    .multiplier = 1.0, .jitter = EXO_JITTER_NONE,
  };

  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (r), &policy);
  r->fail_inits = 100;
  exo_resource_initialize_async (EXO_RESOURCE (r), cancellable, exo_test_store_result, &result);
  g_timeout_add (30, cancel_cb, cancellable);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (r), result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (r->n_init_calls, ==, 1);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  exo_test_spin (50);
  g_assert_cmpuint (r->n_init_calls, ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* --- health ------------------------------------------------------------ */

static void
test_health (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("health");
  g_autoptr(GError) error = NULL;
  Recorder rec = { g_array_new (FALSE, FALSE, sizeof (guint)) };
  g_autofree char *seq = NULL;

  /* not usable: unhealthy, with the state as reason */
  g_assert_false (exo_test_check_health (EXO_RESOURCE (r), &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY);
  g_assert_nonnull (strstr (error->message, "uninitialized"));
  g_clear_error (&error);

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_signal_connect (r, "state-changed", G_CALLBACK (record_cb), &rec);

  g_assert_true (exo_test_check_health (EXO_RESOURCE (r), &error));
  g_assert_no_error (error);

  r->healthy = FALSE;
  g_assert_false (exo_test_check_health (EXO_RESOURCE (r), &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY);
  g_clear_error (&error);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_DEGRADED);
  g_assert_false (exo_resource_is_healthy (EXO_RESOURCE (r)));
  g_assert_true (exo_resource_is_usable (EXO_RESOURCE (r)));
  g_assert_nonnull (strstr (exo_resource_get_last_error (EXO_RESOURCE (r))->message, "unhealthy"));

  r->healthy = TRUE;
  g_assert_true (exo_test_check_health (EXO_RESOURCE (r), NULL));
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpuint (r->n_health_calls, ==, 3);

  seq = recorder_string (&rec);
  g_assert_cmpstr (seq, ==, "ready>degraded>ready");
  g_signal_handlers_disconnect_by_data (r, &rec);
  g_array_unref (rec.transitions);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* Regression: a health check that gives up by itself (its own timeout
 * cancellable fired: the backend accepts and never answers) is a failed
 * check, not "no outcome". */
#define TEST_TYPE_SELF_CANCEL (test_self_cancel_get_type ())
G_DECLARE_FINAL_TYPE (TestSelfCancel, test_self_cancel, TEST, SELF_CANCEL, ExoResource)
struct _TestSelfCancel { ExoResource parent_instance; };
G_DEFINE_FINAL_TYPE (TestSelfCancel, test_self_cancel, EXO_TYPE_RESOURCE)

static void
test_self_cancel_do_check_health (ExoResource *resource, GTask *task)
{
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "probe timed out");
}

static void
test_self_cancel_class_init (TestSelfCancelClass *klass)
{
  EXO_RESOURCE_CLASS (klass)->do_check_health = test_self_cancel_do_check_health;
}

static void
test_self_cancel_init (TestSelfCancel *self)
{
}

static void
test_health_self_cancelled_check_fails (void)
{
  g_autoptr(TestSelfCancel) r = g_object_new (TEST_TYPE_SELF_CANCEL, "id", "self-cancel", NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_assert_false (exo_test_check_health (EXO_RESOURCE (r), NULL));
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_DEGRADED);
  g_assert_cmpuint (exo_resource_get_error_count (EXO_RESOURCE (r)), ==, 1);

  /* cancelled by the caller: no outcome, nothing counted */
  g_cancellable_cancel (cancellable);
  exo_resource_check_health_async (EXO_RESOURCE (r), cancellable, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_cmpuint (exo_resource_get_error_count (EXO_RESOURCE (r)), ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* Regression: a handler that cleans the resource up from inside its own
 * `initializing` emission: no do_initialize runs, nothing is left made,
 * no illegal closed -> ready. */
static void
cleanup_on_initializing_cb (ExoResource *r, ExoResourceState o, ExoResourceState n, gpointer data)
{
  if (n == EXO_RESOURCE_STATE_INITIALIZING)
    exo_resource_cleanup_async (r, NULL, NULL, NULL);
}

static void
test_cleanup_inside_initializing_emission (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("self-stop");
  g_autoptr(GError) error = NULL;

  g_signal_connect (r, "state-changed", G_CALLBACK (cleanup_on_initializing_cb), NULL);
  g_assert_false (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (r), EXO_RESOURCE_STATE_CLOSED, 5000));
  exo_test_spin (50);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpuint (r->n_init_calls, ==, 0);
  g_assert_cmpint (r->live, ==, 0);
}

/* --- registration ---------------------------------------------------- */

void
test_resource_register_failure (void)
{
  g_test_add_func ("/exo/resource/cleanup/after-failed-init", test_cleanup_after_failed_init);
  g_test_add_func ("/exo/resource/cleanup/failure-still-closed", test_cleanup_failure_still_closed);
  g_test_add_func ("/exo/resource/cleanup/from-every-state", test_cleanup_from_every_state);
  g_test_add_func ("/exo/resource/cleanup/during-init", test_cleanup_during_init);
  g_test_add_func ("/exo/resource/timeout/honoured", test_timeout);
  g_test_add_func ("/exo/resource/timeout/ignores-cancel", test_timeout_ignores_cancel);
  g_test_add_func ("/exo/resource/cancel/before-start", test_cancel_before);
  g_test_add_func ("/exo/resource/cancel/during-init", test_cancel_during_init);
  g_test_add_func ("/exo/resource/cancel/during-failed-cleanup", test_cancel_during_failed_cleanup);
  g_test_add_func ("/exo/resource/cancel/one-of-two-callers", test_cancel_one_of_two);
  g_test_add_func ("/exo/resource/cancel/middle-and-last-callers", test_cancel_middle_and_last);
  g_test_add_func ("/exo/resource/cancel/during-retry-wait", test_cancel_during_retry_wait);
  g_test_add_func ("/exo/resource/health", test_health);
  g_test_add_func ("/exo/resource/regression/cleanup-inside-initializing-emission",
                   test_cleanup_inside_initializing_emission);
  g_test_add_func ("/exo/resource/regression/self-cancelled-check-fails", test_health_self_cancelled_check_fails);
}
