/* test-resource.c: the lifecycle contract implemented by ExoResource.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

/* --- helpers ----------------------------------------------------------- */

typedef struct
{
  GArray *transitions;   /* pairs of (old, new) */
} Recorder;

static void
record_cb (ExoResource      *resource,
           ExoResourceState  old_state,
           ExoResourceState  new_state,
           gpointer          data)
{
  Recorder *rec = data;
  guint pair[2] = { old_state, new_state };

  g_assert_cmpint (exo_resource_get_state (resource), ==, new_state);
  g_array_append_vals (rec->transitions, pair, 2);
}

static char *
recorder_string (Recorder *rec)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < rec->transitions->len; i += 2)
    {
      if (s->len == 0)
        g_string_append (s, exo_resource_state_to_string (g_array_index (rec->transitions, guint, i)));
      g_string_append_printf (s, ">%s",
                              exo_resource_state_to_string (g_array_index (rec->transitions, guint, i + 1)));
    }
  return g_string_free (s, FALSE);
}

static ExoTestResource *
new_plain (const char *id)
{
  ExoTestResource *r = exo_test_resource_new (id);
  ExoRetryPolicy policy = {
    .max_retries = 0, .initial_delay_ms = 1, .max_delay_ms = 1,
    .multiplier = 1.0, .jitter = EXO_JITTER_NONE,
  };

  /* No retries and no recovery: the base contract alone. */
  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (r), &policy);
  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (r), FALSE);
  return r;
}

/* Drive a fresh resource to @state along legal edges with exo_resource_transition(). */
static void
drive_to (ExoResource      *r,
          ExoResourceState  state)
{
  static const ExoResourceState paths[EXO_RESOURCE_STATE_LAST][3] = {
    [EXO_RESOURCE_STATE_UNINITIALIZED] = { 0 },
    [EXO_RESOURCE_STATE_INITIALIZING]  = { EXO_RESOURCE_STATE_INITIALIZING },
    [EXO_RESOURCE_STATE_READY]         = { EXO_RESOURCE_STATE_INITIALIZING, EXO_RESOURCE_STATE_READY },
    [EXO_RESOURCE_STATE_DEGRADED]      = { EXO_RESOURCE_STATE_INITIALIZING, EXO_RESOURCE_STATE_READY,
                                           EXO_RESOURCE_STATE_DEGRADED },
    [EXO_RESOURCE_STATE_ERROR]         = { EXO_RESOURCE_STATE_INITIALIZING, EXO_RESOURCE_STATE_ERROR },
    [EXO_RESOURCE_STATE_CLOSING]       = { EXO_RESOURCE_STATE_CLOSING },
    [EXO_RESOURCE_STATE_CLOSED]        = { EXO_RESOURCE_STATE_CLOSING, EXO_RESOURCE_STATE_CLOSED },
  };

  for (guint i = 0; i < 3 && paths[state][i] != 0; i++)
    g_assert_true (exo_resource_transition (r, paths[state][i], NULL));
  g_assert_cmpint (exo_resource_get_state (r), ==, state);
}

/* --- the transition table ---------------------------------------------- */

/* The table as docs/design.md §3 describes it, spelled independently of the code. */
static gboolean
expected_legal (ExoResourceState from,
                ExoResourceState to)
{
#define E(f, t) (from == EXO_RESOURCE_STATE_##f && to == EXO_RESOURCE_STATE_##t)
  return E (UNINITIALIZED, INITIALIZING) || E (UNINITIALIZED, CLOSING)
      || E (INITIALIZING, READY) || E (INITIALIZING, ERROR) || E (INITIALIZING, CLOSING)
      || E (READY, DEGRADED) || E (READY, ERROR) || E (READY, INITIALIZING) || E (READY, CLOSING)
      || E (DEGRADED, READY) || E (DEGRADED, ERROR) || E (DEGRADED, INITIALIZING) || E (DEGRADED, CLOSING)
      || E (ERROR, INITIALIZING) || E (ERROR, CLOSING)
      || E (CLOSING, CLOSED)
      || E (CLOSED, INITIALIZING) || E (CLOSED, CLOSING);
#undef E
}

static void
test_transition_table (void)
{
  for (guint from = 0; from < EXO_RESOURCE_STATE_LAST; from++)
    for (guint to = 0; to < EXO_RESOURCE_STATE_LAST; to++)
      {
        if (from == to)
          continue;
        g_assert_cmpint (exo_resource_state_transition_is_legal (from, to), ==,
                         expected_legal (from, to));
      }
}

/* Every legal edge really happens, with one signal carrying (old, new). */
static void
test_transition_legal (void)
{
  for (guint from = 0; from < EXO_RESOURCE_STATE_LAST; from++)
    for (guint to = 0; to < EXO_RESOURCE_STATE_LAST; to++)
      {
        g_autoptr(ExoTestResource) r = NULL;
        Recorder rec = { g_array_new (FALSE, FALSE, sizeof (guint)) };
        gint64 before;

        if (from == to || !expected_legal (from, to))
          {
            g_array_unref (rec.transitions);
            continue;
          }

        r = new_plain (NULL);
        drive_to (EXO_RESOURCE (r), from);
        g_signal_connect (r, "state-changed", G_CALLBACK (record_cb), &rec);
        before = g_get_real_time ();

        g_assert_true (exo_resource_transition (EXO_RESOURCE (r), to, NULL));
        g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, to);
        g_assert_cmpuint (rec.transitions->len, ==, 2);
        g_assert_cmpuint (g_array_index (rec.transitions, guint, 0), ==, from);
        g_assert_cmpuint (g_array_index (rec.transitions, guint, 1), ==, to);
        g_assert_cmpint (exo_resource_get_state_changed_at (EXO_RESOURCE (r)), >=, before);
        g_array_unref (rec.transitions);
      }
}

/* Every illegal edge is a critical and changes nothing. */
static void
test_transition_illegal (void)
{
  guint n_illegal = 0;

  for (guint from = 0; from < EXO_RESOURCE_STATE_LAST; from++)
    for (guint to = 0; to < EXO_RESOURCE_STATE_LAST; to++)
      {
        g_autoptr(ExoTestResource) r = NULL;
        Recorder rec = { g_array_new (FALSE, FALSE, sizeof (guint)) };

        if (from == to || expected_legal (from, to))
          {
            g_array_unref (rec.transitions);
            continue;
          }

        r = new_plain ("illegal");
        drive_to (EXO_RESOURCE (r), from);
        g_signal_connect (r, "state-changed", G_CALLBACK (record_cb), &rec);

        g_test_expect_message ("Exo", G_LOG_LEVEL_CRITICAL,
                               "*illegal state transition of resource 'illegal'*");
        g_assert_false (exo_resource_transition (EXO_RESOURCE (r), to, NULL));
        g_test_assert_expected_messages ();

        g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, from);
        g_assert_cmpuint (rec.transitions->len, ==, 0);
        g_array_unref (rec.transitions);
        n_illegal++;
      }

  /* 7*6 edges, 18 legal */
  g_assert_cmpuint (n_illegal, ==, 42 - 18);
}

/* --- lifecycle --------------------------------------------------------- */

static void
test_identity (void)
{
  g_autoptr(ExoTestResource) a = exo_test_resource_new (NULL);
  g_autoptr(ExoTestResource) b = exo_test_resource_new (NULL);
  g_autoptr(ExoTestResource) c = exo_test_resource_new ("engine");
  g_autofree char *type = NULL;

  /* generated ids are unique and derive from the type name */
  g_assert_true (g_str_has_prefix (exo_resource_get_id (EXO_RESOURCE (a)), "test-"));
  g_assert_cmpstr (exo_resource_get_id (EXO_RESOURCE (a)), !=, exo_resource_get_id (EXO_RESOURCE (b)));
  g_assert_cmpstr (exo_resource_get_resource_type (EXO_RESOURCE (c)), ==, "test");
  g_assert_cmpstr (exo_resource_get_display_name (EXO_RESOURCE (c)), ==, "engine");
  exo_resource_set_display_name (EXO_RESOURCE (c), "Inference engine");
  g_assert_cmpstr (exo_resource_get_display_name (EXO_RESOURCE (c)), ==, "Inference engine");

  g_object_get (c, "resource-type", &type, NULL);
  g_assert_cmpstr (type, ==, "test");
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (c)), ==, EXO_RESOURCE_STATE_UNINITIALIZED);
  g_assert_cmpint (exo_resource_get_initialized_at (EXO_RESOURCE (c)), ==, 0);
  g_assert_null (exo_resource_get_last_error (EXO_RESOURCE (c)));
  g_assert_true (exo_async_resource_get_state (EXO_ASYNC_RESOURCE (c)) == EXO_RESOURCE_STATE_UNINITIALIZED);
  g_assert_cmpstr (exo_async_resource_get_id (EXO_ASYNC_RESOURCE (c)), ==, "engine");
}

static void
test_lifecycle (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("life");
  Recorder rec = { g_array_new (FALSE, FALSE, sizeof (guint)) };
  g_autoptr(GError) error = NULL;
  g_autofree char *seq = NULL;
  g_autoptr(GVariant) metrics = NULL;
  gint64 before = g_get_real_time ();

  r->init_delay_ms = 5;
  r->cleanup_delay_ms = 5;
  g_signal_connect (r, "state-changed", G_CALLBACK (record_cb), &rec);

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_no_error (error);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_READY);
  g_assert_true (exo_resource_is_healthy (EXO_RESOURCE (r)));
  g_assert_cmpint (exo_resource_get_initialized_at (EXO_RESOURCE (r)), >=, before);
  g_assert_cmpuint (exo_resource_get_attempts (EXO_RESOURCE (r)), ==, 0);  /* reset after success */
  g_assert_cmpuint (r->n_init_calls, ==, 1);

  /* initialize of a ready resource completes at once without a new attempt */
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_cmpuint (r->n_init_calls, ==, 1);

  metrics = exo_resource_get_metrics (EXO_RESOURCE (r));
  g_assert_true (g_variant_is_of_type (metrics, G_VARIANT_TYPE_VARDICT));
  {
    guint calls = 0;
    g_assert_true (g_variant_lookup (metrics, "init-calls", "u", &calls));
    g_assert_cmpuint (calls, ==, 1);
  }

  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), &error));
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpuint (r->n_cleanup_calls, ==, 1);
  g_assert_cmpint (r->live, ==, 0);

  /* re-initialize from closed */
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_cmpuint (r->n_init_calls, ==, 2);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), &error));

  seq = recorder_string (&rec);
  g_assert_cmpstr (seq, ==,
                   "uninitialized>initializing>ready>closing>closed>initializing>ready>closing>closed");
  g_array_unref (rec.transitions);
}

/* --- single flight ----------------------------------------------------- */

typedef struct
{
  guint ok;
  guint failed;
  guint done;
  GError *first_error;
} Tally;

static void
tally_init_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  Tally *tally = data;
  GError *error = NULL;

  if (exo_resource_initialize_finish (EXO_RESOURCE (source), result, &error))
    tally->ok++;
  else
    {
      tally->failed++;
      if (tally->first_error == NULL)
        tally->first_error = error;
      else
        g_error_free (error);
    }
  tally->done++;
}

static gboolean
tally_done_100 (gpointer data)
{
  return ((Tally *) data)->done == 100;
}

static void
test_single_flight (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("flight");
  Tally tally = { 0 };

  r->init_delay_ms = 30;
  for (guint i = 0; i < 100; i++)
    exo_resource_initialize_async (EXO_RESOURCE (r), NULL, tally_init_cb, &tally);

  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_INITIALIZING);
  g_assert_true (exo_test_spin_until (tally_done_100, &tally, 10000));
  g_assert_cmpuint (tally.ok, ==, 100);
  g_assert_cmpuint (r->n_init_calls, ==, 1);
  g_assert_cmpuint (r->n_init_ok, ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static void
test_single_flight_failure (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("flight-fail");
  Tally tally = { 0 };

  r->init_delay_ms = 10;
  r->fail_inits = 1;
  for (guint i = 0; i < 100; i++)
    exo_resource_initialize_async (EXO_RESOURCE (r), NULL, tally_init_cb, &tally);

  g_assert_true (exo_test_spin_until (tally_done_100, &tally, 10000));
  g_assert_cmpuint (tally.failed, ==, 100);
  g_assert_cmpuint (r->n_init_calls, ==, 1);
  g_assert_error (tally.first_error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_cmpuint (exo_resource_get_error_count (EXO_RESOURCE (r)), ==, 1);
  g_assert_cmpuint (exo_resource_get_attempts (EXO_RESOURCE (r)), ==, 1);
  g_clear_error (&tally.first_error);

  /* from error, initialize again */
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_assert_cmpuint (r->n_init_calls, ==, 2);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

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

/* --- vfuncs that let their task go ---------------------------------------- */

/* A resource whose vfuncs can return without completing their task and
 * without keeping it: what a binding's implementation does when it raises
 * (PyGObject prints the exception and returns). */
#define TEST_TYPE_DROP_RESOURCE (test_drop_resource_get_type ())
G_DECLARE_FINAL_TYPE (TestDropResource, test_drop_resource, TEST, DROP_RESOURCE, ExoResource)

struct _TestDropResource
{
  ExoResource parent_instance;
  gboolean    drop_init;
  gboolean    drop_init_later;   /* keep the task a while, then drop it */
  gboolean    drop_cleanup;
  gboolean    drop_health;
  guint       n_cleanup_calls;
};

G_DEFINE_FINAL_TYPE (TestDropResource, test_drop_resource, EXO_TYPE_RESOURCE)

static gboolean
drop_later_cb (gpointer data)
{
  g_object_unref (data);   /* the last reference: uncompleted */
  return G_SOURCE_REMOVE;
}

static void
drop_do_initialize (ExoResource *resource,
                    GTask       *task)
{
  TestDropResource *self = TEST_DROP_RESOURCE (resource);

  if (self->drop_init_later)
    g_timeout_add (20, drop_later_cb, g_object_ref (task));
  else if (!self->drop_init)
    g_task_return_boolean (task, TRUE);
}

static void
drop_do_cleanup (ExoResource *resource,
                 GTask       *task)
{
  TestDropResource *self = TEST_DROP_RESOURCE (resource);

  self->n_cleanup_calls++;
  if (!self->drop_cleanup)
    g_task_return_boolean (task, TRUE);
}

static void
drop_do_check_health (ExoResource *resource,
                      GTask       *task)
{
  if (!TEST_DROP_RESOURCE (resource)->drop_health)
    g_task_return_boolean (task, TRUE);
}

static void
test_drop_resource_class_init (TestDropResourceClass *klass)
{
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  resource_class->do_initialize = drop_do_initialize;
  resource_class->do_cleanup = drop_do_cleanup;
  resource_class->do_check_health = drop_do_check_health;
}

static void
test_drop_resource_init (TestDropResource *self)
{
}

/* Runs an _async/_finish pair of ExoResource with a bound: without the
 * check, the dropped task would leave the caller waiting for ever. */
typedef void     (*AsyncCall)  (ExoResource *, GCancellable *, GAsyncReadyCallback, gpointer);
typedef gboolean (*FinishCall) (ExoResource *, GAsyncResult *, GError **);

static gboolean
call_bounded (ExoResource  *resource,
              AsyncCall     start,
              FinishCall    finish,
              GError      **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  start (resource, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000 * exo_test_slow_factor ()));
  return finish (resource, result, error);
}

static void
test_vfunc_drops_task (void)
{
  g_autoptr(TestDropResource) r = g_object_new (TEST_TYPE_DROP_RESOURCE, "id", "dropper", NULL);
  g_autoptr(GError) error = NULL;

  /* do_initialize returns without completing its task: the attempt fails,
   * the half-made resource is cleaned up, the resource is in error */
  r->drop_init = TRUE;
  g_assert_false (call_bounded (EXO_RESOURCE (r), exo_resource_initialize_async,
                                exo_resource_initialize_finish, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "do_initialize of 'dropper' returned without "
                                            "completing its task"));
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_cmpuint (r->n_cleanup_calls, ==, 1);
  g_clear_error (&error);

  /* the same when it kept the task a while and then let it go */
  r->drop_init = FALSE;
  r->drop_init_later = TRUE;
  g_assert_false (call_bounded (EXO_RESOURCE (r), exo_resource_initialize_async,
                                exo_resource_initialize_finish, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_clear_error (&error);

  /* a health check that lets its task go is a failed check */
  r->drop_init_later = FALSE;
  g_assert_true (call_bounded (EXO_RESOURCE (r), exo_resource_initialize_async,
                               exo_resource_initialize_finish, NULL));
  r->drop_health = TRUE;
  g_assert_false (call_bounded (EXO_RESOURCE (r), exo_resource_check_health_async,
                                exo_resource_check_health_finish, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "do_check_health of 'dropper'"));
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_DEGRADED);
  g_clear_error (&error);

  /* a cleanup that lets its task go still ends in closed, with the error */
  r->drop_cleanup = TRUE;
  g_assert_false (call_bounded (EXO_RESOURCE (r), exo_resource_cleanup_async,
                                exo_resource_cleanup_finish, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "do_cleanup of 'dropper'"));
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSED);
}

/* --- ensure_ready, report_error, restart -------------------------------- */

static void
test_ensure_ready (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("ensure");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  exo_resource_ensure_ready_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_true (exo_resource_ensure_ready_finish (EXO_RESOURCE (r), result, NULL));
  g_assert_cmpuint (r->n_init_calls, ==, 1);
  g_clear_object (&result);

  /* ready: no new attempt */
  exo_resource_ensure_ready_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_true (exo_resource_ensure_ready_finish (EXO_RESOURCE (r), result, NULL));
  g_assert_cmpuint (r->n_init_calls, ==, 1);
  g_clear_object (&result);

  /* closed: fails fast, no attempt */
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  exo_resource_ensure_ready_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_false (exo_resource_ensure_ready_finish (EXO_RESOURCE (r), result, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED);
  g_assert_cmpuint (r->n_init_calls, ==, 1);
}

static void
test_initialize_while_closing (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("closing");
  g_autoptr(GAsyncResult) cleanup_res = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  r->cleanup_delay_ms = 50;
  exo_resource_cleanup_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &cleanup_res);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSING);
  g_assert_false (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED);
  g_assert_true (exo_test_wait_result (&cleanup_res, 5000));
  g_assert_true (exo_resource_cleanup_finish (EXO_RESOURCE (r), cleanup_res, NULL));
}

static void
test_report_error_and_reinit (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("crash");
  g_autoptr(GError) crash = g_error_new (G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, "peer went away");

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  exo_resource_report_error (EXO_RESOURCE (r), crash);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_error ((GError *) exo_resource_get_last_error (EXO_RESOURCE (r)),
                  G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  g_assert_cmpuint (exo_resource_get_error_count (EXO_RESOURCE (r)), ==, 1);

  /* re-initialize cleans up what the failed instance left first */
  exo_test_log_reset ();
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_assert_cmpstr (exo_test_log_get (), ==,
                   "cleanup:crash,cleanup-done:crash,init:crash,init-done:crash");
  g_assert_cmpint (r->live, ==, 1);

  exo_resource_reset (EXO_RESOURCE (r));
  g_assert_null (exo_resource_get_last_error (EXO_RESOURCE (r)));
  g_assert_cmpuint (exo_resource_get_error_count (EXO_RESOURCE (r)), ==, 0);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static void
test_restart (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("restart");
  g_autoptr(GAsyncResult) result = NULL;
  Recorder rec = { g_array_new (FALSE, FALSE, sizeof (guint)) };
  g_autofree char *seq = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_signal_connect (r, "state-changed", G_CALLBACK (record_cb), &rec);
  exo_resource_restart_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_true (exo_resource_restart_finish (EXO_RESOURCE (r), result, NULL));
  seq = recorder_string (&rec);
  g_assert_cmpstr (seq, ==, "ready>closing>closed>initializing>ready");
  g_assert_cmpuint (r->n_init_calls, ==, 2);
  g_assert_cmpuint (r->n_cleanup_calls, ==, 1);
  g_signal_handlers_disconnect_by_data (r, &rec);
  g_array_unref (rec.transitions);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* GObject "notify::state" accompanies every state-changed. */
static void
notify_count_cb (GObject *object, GParamSpec *pspec, gpointer data)
{
  (*(guint *) data)++;
}

static void
test_notify_state (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("notify");
  guint n = 0;

  g_signal_connect (r, "notify::state", G_CALLBACK (notify_count_cb), &n);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_assert_cmpuint (n, ==, 2);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  g_assert_cmpuint (n, ==, 4);
}

/* A direct subclass of ExoResource that chains up in collect_metrics, as
 * ExoResourceClass documents. */
#define TEST_TYPE_METRICS_RESOURCE (test_metrics_resource_get_type ())
G_DECLARE_FINAL_TYPE (TestMetricsResource, test_metrics_resource, TEST, METRICS_RESOURCE, ExoResource)

struct _TestMetricsResource
{
  ExoResource parent_instance;
};

G_DEFINE_FINAL_TYPE (TestMetricsResource, test_metrics_resource, EXO_TYPE_RESOURCE)

static void
test_metrics_resource_collect_metrics (ExoResource  *resource,
                                       GVariantDict *metrics)
{
  EXO_RESOURCE_CLASS (test_metrics_resource_parent_class)->collect_metrics (resource, metrics);
  g_variant_dict_insert (metrics, "answer", "u", 42);
}

static void
test_metrics_resource_class_init (TestMetricsResourceClass *klass)
{
  EXO_RESOURCE_CLASS (klass)->collect_metrics = test_metrics_resource_collect_metrics;
}

static void
test_metrics_resource_init (TestMetricsResource *self)
{
}

static void
test_metrics_chain_up (void)
{
  g_autoptr(TestMetricsResource) r = g_object_new (TEST_TYPE_METRICS_RESOURCE, "id", "metrics", NULL);
  g_autoptr(GVariant) metrics = NULL;
  guint answer = 0;

  /* The base class has a collect_metrics to chain up to… */
  g_assert_nonnull (EXO_RESOURCE_CLASS (test_metrics_resource_parent_class)->collect_metrics);

  /* …that adds nothing: the subclass gets exactly its own metric. */
  metrics = exo_resource_get_metrics (EXO_RESOURCE (r));
  g_assert_true (g_variant_is_of_type (metrics, G_VARIANT_TYPE_VARDICT));
  g_assert_cmpuint (g_variant_n_children (metrics), ==, 1);
  g_assert_true (g_variant_lookup (metrics, "answer", "u", &answer));
  g_assert_cmpuint (answer, ==, 42);

  /* The same once it is ready. */
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_clear_pointer (&metrics, g_variant_unref);
  metrics = exo_resource_get_metrics (EXO_RESOURCE (r));
  g_assert_cmpuint (g_variant_n_children (metrics), ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* An ExoAsyncResource that is not an ExoResource: its id is read with
 * g_object_get(), and exo_async_resource_get_id() keeps a copy for it. */
#define TEST_TYPE_PLAIN_ASYNC (test_plain_async_get_type ())
G_DECLARE_FINAL_TYPE (TestPlainAsync, test_plain_async, TEST, PLAIN_ASYNC, GObject)

struct _TestPlainAsync
{
  GObject  parent_instance;
  char    *id;
};

enum {
  PLAIN_PROP_0,
  PLAIN_PROP_ID,
  PLAIN_PROP_RESOURCE_TYPE,
  PLAIN_PROP_DISPLAY_NAME,
  PLAIN_PROP_STATE,
};

static void
test_plain_async_iface_init (ExoAsyncResourceInterface *iface)
{
}

G_DEFINE_FINAL_TYPE_WITH_CODE (TestPlainAsync, test_plain_async, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_ASYNC_RESOURCE,
                                                      test_plain_async_iface_init))

static void
test_plain_async_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  TestPlainAsync *self = TEST_PLAIN_ASYNC (object);

  switch (prop_id)
    {
    case PLAIN_PROP_ID:
    case PLAIN_PROP_DISPLAY_NAME:
      g_value_set_string (value, self->id);
      break;
    case PLAIN_PROP_RESOURCE_TYPE:
      g_value_set_string (value, "plain");
      break;
    case PLAIN_PROP_STATE:
      g_value_set_enum (value, EXO_RESOURCE_STATE_UNINITIALIZED);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
test_plain_async_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  TestPlainAsync *self = TEST_PLAIN_ASYNC (object);

  switch (prop_id)
    {
    case PLAIN_PROP_ID:
      g_free (self->id);
      self->id = g_value_dup_string (value);
      break;
    case PLAIN_PROP_RESOURCE_TYPE:
    case PLAIN_PROP_DISPLAY_NAME:
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
test_plain_async_finalize (GObject *object)
{
  g_free (TEST_PLAIN_ASYNC (object)->id);
  G_OBJECT_CLASS (test_plain_async_parent_class)->finalize (object);
}

static void
test_plain_async_class_init (TestPlainAsyncClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = test_plain_async_get_property;
  object_class->set_property = test_plain_async_set_property;
  object_class->finalize = test_plain_async_finalize;
  g_object_class_override_property (object_class, PLAIN_PROP_ID, "id");
  g_object_class_override_property (object_class, PLAIN_PROP_RESOURCE_TYPE, "resource-type");
  g_object_class_override_property (object_class, PLAIN_PROP_DISPLAY_NAME, "display-name");
  g_object_class_override_property (object_class, PLAIN_PROP_STATE, "state");
}

static void
test_plain_async_init (TestPlainAsync *self)
{
}

static void
test_async_id_stable (void)
{
  g_autoptr(TestPlainAsync) r = g_object_new (TEST_TYPE_PLAIN_ASYNC, "id", "plain-1", NULL);
  const char *first, *second;

  first = exo_async_resource_get_id (EXO_ASYNC_RESOURCE (r));
  g_assert_cmpstr (first, ==, "plain-1");

  /* A second call must not free what the first returned (ASan and valgrind
   * see the use after free here)… */
  second = exo_async_resource_get_id (EXO_ASYNC_RESOURCE (r));
  g_assert_cmpstr (first, ==, "plain-1");
  g_assert_cmpstr (second, ==, "plain-1");
  /* …it gives the very same string. */
  g_assert_true (first == second);
}

/* Regression: a handler that changes the state again from inside an
 * emission (a plugin that cleans itself up on `degraded`) must not make the
 * handlers after it see the second transition before the first. */
static void
reenter_cb (ExoResource *r, ExoResourceState o, ExoResourceState n, gpointer data)
{
  if (n == EXO_RESOURCE_STATE_DEGRADED)
    exo_resource_cleanup_async (r, NULL, NULL, NULL);
}

static void
record_order_cb (ExoResource *r, ExoResourceState o, ExoResourceState n, gpointer data)
{
  g_string_append_printf (data, "%s>%s,", exo_resource_state_to_string (o),
                          exo_resource_state_to_string (n));
}

static void
test_reentrant_transition_order (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("reenter");
  g_autoptr(GString) before = g_string_new (NULL);
  g_autoptr(GString) after = g_string_new (NULL);

  g_signal_connect (r, "state-changed", G_CALLBACK (record_order_cb), before);
  g_signal_connect (r, "state-changed", G_CALLBACK (reenter_cb), NULL);
  g_signal_connect (r, "state-changed", G_CALLBACK (record_order_cb), after);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  exo_resource_report_health (EXO_RESOURCE (r), FALSE, NULL);
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (r), EXO_RESOURCE_STATE_CLOSED, 5000));
  g_assert_cmpstr (after->str, ==,
                   "uninitialized>initializing,initializing>ready,ready>degraded,"
                   "degraded>closing,closing>closed,");
  g_assert_cmpstr (before->str, ==, after->str);
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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/exo/resource/transitions/table", test_transition_table);
  g_test_add_func ("/exo/resource/transitions/legal", test_transition_legal);
  g_test_add_func ("/exo/resource/transitions/illegal", test_transition_illegal);
  g_test_add_func ("/exo/resource/identity", test_identity);
  g_test_add_func ("/exo/resource/lifecycle", test_lifecycle);
  g_test_add_func ("/exo/resource/notify-state", test_notify_state);
  g_test_add_func ("/exo/resource/single-flight/success", test_single_flight);
  g_test_add_func ("/exo/resource/single-flight/failure", test_single_flight_failure);
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
  g_test_add_func ("/exo/resource/vfunc-drops-task", test_vfunc_drops_task);
  g_test_add_func ("/exo/resource/ensure-ready", test_ensure_ready);
  g_test_add_func ("/exo/resource/initialize-while-closing", test_initialize_while_closing);
  g_test_add_func ("/exo/resource/report-error-and-reinit", test_report_error_and_reinit);
  g_test_add_func ("/exo/resource/restart", test_restart);
  g_test_add_func ("/exo/resource/regression/reentrant-transition-order", test_reentrant_transition_order);
  g_test_add_func ("/exo/resource/metrics/chain-up", test_metrics_chain_up);
  g_test_add_func ("/exo/async-resource/id/stable", test_async_id_stable);

  return g_test_run ();
}
