/* test-resource.c: the lifecycle contract implemented by ExoResource —
 * main(), the transition table, identity, the lifecycle, single flight.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Failure, cleanup, timeouts, cancellation and health are in
 * test-resource-failure.c; ensure_ready, restart, re-entrant handlers and
 * implementations that bend the rules in test-resource-operations.c; the
 * Recorder in resource-fixture.c.  One thread: the test spins its
 * thread-default main context.
 */
#include "resource-fixture.h"

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
  test_resource_register_failure ();
  test_resource_register_operations ();

  return g_test_run ();
}
