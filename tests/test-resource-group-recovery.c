/* test-resource-group-recovery.c: supervision seen over time — the order of
 * events through rollback and restarts, degraded restarts, no flapping,
 * manual operations, giving up, backoff, keep-going.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-resource-group (main() in test-resource-group.c).  One
 * thread: handlers connected before and after the group's see transitions
 * in the order the test's thread-default main context delivers them.
 */
#include "resource-group-fixture.h"

/* --- event order ---------------------------------------------------------- */

/* Every member gets a handler connected before the group's and one after
 * it; each writes "id:old>new" per transition.  Both must see the same
 * sequence, and each member's transitions must chain (no "error>closing"
 * before "ready>error"). */
typedef struct
{
  GString *before;
  GString *after;
} Order;

static void
order_record (GString          *out,
              ExoResource      *resource,
              ExoResourceState  old_state,
              ExoResourceState  new_state)
{
  g_string_append_printf (out, "%s:%s>%s,", exo_resource_get_id (resource),
                          exo_resource_state_to_string (old_state),
                          exo_resource_state_to_string (new_state));
}

static void
order_before_cb (ExoResource *r, ExoResourceState o, ExoResourceState n, gpointer data)
{
  order_record (((Order *) data)->before, r, o, n);
}

static void
order_after_cb (ExoResource *r, ExoResourceState o, ExoResourceState n, gpointer data)
{
  order_record (((Order *) data)->after, r, o, n);
}

static ExoTestResource *
add_ordered (ExoResourceGroup *group,
             Order            *order,
             const char       *id,
             const char       *dep)
{
  g_autoptr(ExoTestResource) r = member_new (id);
  const char *deps[] = { dep, NULL };

  g_signal_connect (r, "state-changed", G_CALLBACK (order_before_cb), order);
  g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (r), deps, NULL));
  g_signal_connect (r, "state-changed", G_CALLBACK (order_after_cb), order);
  return r;
}

static void
order_check (Order *order)
{
  g_auto(GStrv) entries = g_strsplit (order->after->str, ",", -1);
  g_autoptr(GHashTable) last = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  g_assert_cmpstr (order->before->str, ==, order->after->str);
  for (guint i = 0; entries[i] != NULL && entries[i][0] != '\0'; i++)
    {
      char *colon = strchr (entries[i], ':');
      char *arrow = strchr (entries[i], '>');
      g_autofree char *id = g_strndup (entries[i], colon - entries[i]);
      g_autofree char *old_state = g_strndup (colon + 1, arrow - colon - 1);
      const char *prev = g_hash_table_lookup (last, id);

      if (prev != NULL && !g_str_equal (prev, old_state))
        g_error ("transitions of '%s' out of order at %s: %s", id, entries[i], order->after->str);
      g_hash_table_insert (last, g_strdup (id), g_strdup (arrow + 1));
    }
  g_string_truncate (order->before, 0);
  g_string_truncate (order->after, 0);
}

static void
order_clear (Order *order)
{
  g_string_free (order->before, TRUE);
  g_string_free (order->after, TRUE);
}

/* Fails @resource from a source's dispatch, as a socket or timer callback
 * of a real resource would (a GTask completes at once there). */
static gboolean
fail_from_source_cb (gpointer data)
{
  fail_member (data);
  return G_SOURCE_REMOVE;
}

static void
fail_from_source (gpointer resource)
{
  g_timeout_add (0, fail_from_source_cb, resource);
  g_assert_true (wait_state (resource, EXO_RESOURCE_STATE_ERROR));
}

static void
test_order_rollback (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(GAsyncResult) result = NULL;
  Order order = { g_string_new (NULL), g_string_new (NULL) };
  ExoTestResource *a, *slow, *b;

  /* A member that was ready falls while the group initializes: the
   * rollback cleans it up (error -> closing) after every handler saw
   * ready -> error. */
  slow = add_ordered (group, &order, "slow", NULL);
  a = add_ordered (group, &order, "a", NULL);
  slow->init_delay_ms = 300;
  exo_resource_initialize_async (EXO_RESOURCE (group), NULL, exo_test_store_result, &result);
  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));
  g_timeout_add (0, fail_from_source_cb, a);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (group), result, NULL));
  g_assert_true (wait_state (slow, EXO_RESOURCE_STATE_CLOSED));
  g_assert_nonnull (strstr (order.after->str, "a:ready>error,"));
  g_assert_nonnull (strstr (order.after->str, "a:error>closing,"));
  order_check (&order);

  /* A member whose initialize fails: its dependency is rolled back. */
  g_clear_object (&result);
  slow->init_delay_ms = 0;
  b = add_ordered (group, &order, "b", "a");
  b->fail_inits = 1;
  g_assert_false (exo_test_initialize (EXO_RESOURCE (group), NULL));
  g_assert_nonnull (strstr (order.after->str, "b:initializing>error,"));
  order_check (&order);

  group_init_ok (group);
  group_cleanup_ok (group);
  order_check (&order);
  order_clear (&order);
}

static void
test_order_restart (gconstpointer data)
{
  ExoSupervisionStrategy strategy = GPOINTER_TO_UINT (data);
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  Order order = { g_string_new (NULL), g_string_new (NULL) };
  ExoTestResource *a, *b;

  exo_resource_group_set_strategy (group, strategy);
  a = add_ordered (group, &order, "a", NULL);
  b = add_ordered (group, &order, "b", "a");
  add_ordered (group, &order, "c", NULL);
  group_init_ok (group);
  order_check (&order);

  fail_from_source (a);
  wait_restarts (group, 1);
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (b, EXO_RESOURCE_STATE_READY));
  g_assert_nonnull (strstr (order.after->str, "a:ready>error,"));
  order_check (&order);

  group_cleanup_ok (group);
  order_check (&order);
  order_clear (&order);
}

/* --- supervision that recovers -------------------------------------------- */

static gboolean
init_calls_reached (gpointer data)
{
  gpointer *args = data;

  return EXO_TEST_RESOURCE (args[0])->n_init_calls >= GPOINTER_TO_UINT (args[1]);
}

static void
wait_init_calls (ExoTestResource *r,
                 guint            n)
{
  gpointer args[2] = { r, GUINT_TO_POINTER (n) };

  g_assert_true (exo_test_spin_until (init_calls_reached, args, 10000));
}

/* A member degraded by its own checks for longer than degraded-restart-ms
 * is restarted (result "unhealthy"), like systemd's watchdog. */
static void
test_supervision_degraded_restart (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoTestResource *a;
  gint64 start;

  a = add_member (group, "a", NULL);
  exo_managed_resource_set_degraded_restart (EXO_MANAGED_RESOURCE (a), 200);
  group_init_ok (group);

  start = g_get_monotonic_time ();
  exo_resource_report_health (EXO_RESOURCE (a), FALSE, NULL);
  g_assert_cmpint (state_of (a), ==, EXO_RESOURCE_STATE_DEGRADED);
  wait_init_calls (a, 2);
  g_assert_cmpint ((g_get_monotonic_time () - start) / 1000, >=, 190);
  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));
  g_assert_cmpuint (exo_resource_group_get_restarts (group), ==, 1);

  /* A passing check within the tolerance cancels the restart. */
  exo_resource_report_health (EXO_RESOURCE (a), FALSE, NULL);
  exo_test_spin (50);
  exo_resource_report_health (EXO_RESOURCE (a), TRUE, NULL);
  g_assert_cmpint (state_of (a), ==, EXO_RESOURCE_STATE_READY);
  exo_test_spin (300);
  g_assert_cmpuint (a->n_init_calls, ==, 2);

  group_cleanup_ok (group);
}

static void
count_transitions_cb (ExoResource *r, ExoResourceState o, ExoResourceState n, gpointer data)
{
  (*(guint *) data)++;
}

/* While its dependency is down, a dependent whose own checks pass is
 * degraded once (not degraded > ready > degraded on every check), and ready
 * again once the dependency is back. */
static void
test_supervision_dependent_no_flap (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoTestResource *a, *b;
  guint transitions = 0;

  a = add_member (group, "a", NULL);
  b = add_member (group, "b", "a", NULL);
  exo_managed_resource_set_health_check_interval (EXO_MANAGED_RESOURCE (b), 10);
  group_init_ok (group);
  g_signal_connect (b, "state-changed", G_CALLBACK (count_transitions_cb), &transitions);

  a->init_delay_ms = 400;
  fail_member (a);
  g_assert_true (wait_state (b, EXO_RESOURCE_STATE_DEGRADED));
  exo_test_spin (200);
  g_assert_cmpint (state_of (b), ==, EXO_RESOURCE_STATE_DEGRADED);
  g_assert_cmpuint (b->n_health_calls, >=, 5);
  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (b, EXO_RESOURCE_STATE_READY));
  exo_test_spin (50);
  g_assert_cmpuint (transitions, ==, 2);
  g_assert_cmpuint (b->n_init_calls, ==, 1);

  group_cleanup_ok (group);
}

/* A manual restart that fails during an outage is one attempt: the
 * supervisor goes on with its backoff; a manual stop takes the member out
 * of supervision until it is started again. */
static void
test_supervision_manual_ops (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(GAsyncResult) result = NULL;
  ExoTestResource *a;
  guint calls;

  exo_resource_group_set_restart_burst (group, 0);
  a = add_member (group, "a", NULL);
  group_init_ok (group);

  a->fail_inits = 1000;
  fail_member (a);
  wait_init_calls (a, 3);
  exo_resource_restart_async (EXO_RESOURCE (a), NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_false (exo_resource_restart_finish (EXO_RESOURCE (a), result, NULL));
  g_clear_object (&result);
  calls = a->n_init_calls;
  wait_init_calls (a, calls + 2);      /* still supervised */
  a->fail_inits = 0;
  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_READY));

  /* Stopped by hand: left alone. */
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (a), NULL));
  calls = a->n_init_calls;
  exo_test_spin (300);
  g_assert_cmpuint (a->n_init_calls, ==, calls);
  g_assert_cmpint (state_of (a), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (a), NULL));
  fail_member (a);
  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));   /* supervised again */

  group_cleanup_ok (group);
}

/* Over its own restart limit a flapping member gives up (result
 * start-limit-hit); a manual initialize clears it.  Restarts that keep
 * failing while its backend is away do not count: it never gives up on
 * an outage and comes back when the backend does. */
static void
test_supervision_given_up (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoRetryPolicy policy = {
    .max_retries = 0, .initial_delay_ms = 1, .max_delay_ms = 1, .multiplier = 1.0,
    .jitter = EXO_JITTER_NONE, .restart_burst = 2, .restart_interval_ms = 60000,
  };
  g_autoptr(ExoTestResource) a = exo_test_resource_new ("a");

  exo_resource_group_set_restart_burst (group, 0);
  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (a), &policy);
  g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (a), NULL, NULL));
  group_init_ok (group);

  /* An outage: 20 failed restarts, then the backend is back. */
  a->fail_inits = 20;
  fail_member (a);
  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));
  g_assert_cmpuint (a->n_init_calls, ==, 22);
  g_assert_cmpint (exo_resource_get_result (EXO_RESOURCE (a)), ==, EXO_RESOURCE_RESULT_SUCCESS);

  /* Flapping: it came back, failed again, twice more: given up. */
  fail_member (a);
  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));
  fail_member (a);
  exo_test_spin (100);
  g_assert_cmpuint (a->n_init_calls, ==, 23);
  g_assert_cmpint (state_of (a), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_cmpint (exo_resource_get_result (EXO_RESOURCE (a)), ==,
                   EXO_RESOURCE_RESULT_START_LIMIT_HIT);
  g_assert_error ((GError *) exo_resource_get_last_error (EXO_RESOURCE (a)),
                  EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_RESTART_LIMIT);

  g_assert_true (exo_test_initialize (EXO_RESOURCE (a), NULL));
  g_assert_cmpint (exo_resource_get_result (EXO_RESOURCE (a)), ==, EXO_RESOURCE_RESULT_SUCCESS);
  fail_member (a);
  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));   /* supervised again */

  group_cleanup_ok (group);
}

/* Restarts back off: each failed restart waits longer (initial 50 ms, x2). */
static void
test_supervision_backoff (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoRetryPolicy policy = {
    .max_retries = 0, .initial_delay_ms = 50, .max_delay_ms = 400, .multiplier = 2.0,
    .jitter = EXO_JITTER_NONE, .restart_burst = 0, .restart_interval_ms = 0,
  };
  g_autoptr(ExoTestResource) a = exo_test_resource_new ("a");
  gint64 start;
  gint64 elapsed;

  exo_resource_group_set_restart_burst (group, 0);
  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (a), &policy);
  g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (a), NULL, NULL));
  group_init_ok (group);

  a->fail_inits = 3;
  start = g_get_monotonic_time ();
  fail_member (a);
  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));
  elapsed = (g_get_monotonic_time () - start) / 1000;
  /* 50 + 100 + 200 + 400 ms before the fourth restart succeeds */
  g_assert_cmpint (elapsed, >=, 740);
  g_assert_cmpint (elapsed, <, 2000 * (gint64) exo_test_slow_factor ());
  g_assert_cmpuint (a->n_init_calls, ==, 5);

  group_cleanup_ok (group);
}

/* Regression: a dependent whose own checks fail while it is held degraded
 * (its dependency is down) is restarted after degraded-restart-ms once the
 * dependency is back, not left degraded for good. */
static void
test_supervision_held_then_own_failure (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoTestResource *a, *b;

  exo_resource_group_set_restart_burst (group, 0);
  a = add_member (group, "a", NULL);
  b = add_member (group, "b", "a", NULL);
  exo_managed_resource_set_degraded_restart (EXO_MANAGED_RESOURCE (b), 100);
  group_init_ok (group);

  a->init_delay_ms = 300;
  fail_member (a);
  g_assert_true (wait_state (b, EXO_RESOURCE_STATE_DEGRADED));
  exo_resource_report_health (EXO_RESOURCE (b), FALSE, NULL);   /* its own check fails */
  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));
  wait_init_calls (b, 2);
  g_assert_true (wait_state (b, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_READY));

  group_cleanup_ok (group);
}

/* Regression: a member already degraded by its own checks when its group
 * starts is restarted after degraded-restart-ms. */
static void
test_supervision_degraded_before_start (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoTestResource *a;

  a = add_member (group, "a", NULL);
  exo_managed_resource_set_degraded_restart (EXO_MANAGED_RESOURCE (a), 100);
  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (a), FALSE);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (a), NULL));
  exo_resource_report_health (EXO_RESOURCE (a), FALSE, NULL);
  g_assert_cmpint (state_of (a), ==, EXO_RESOURCE_STATE_DEGRADED);

  g_assert_true (exo_test_initialize (EXO_RESOURCE (group), NULL));
  wait_init_calls (a, 2);
  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_READY));

  group_cleanup_ok (group);
}

/* keep-going: a member that fails at the group's start leaves the group up
 * (degraded); it is restarted with backoff, and its dependents start once
 * it is ready. */
static void
test_keep_going (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoTestResource *a, *b, *c;

  exo_resource_group_set_keep_going (group, TRUE);
  exo_resource_group_set_restart_burst (group, 0);
  a = add_member (group, "a", NULL);
  b = add_member (group, "b", "a", NULL);
  c = add_member (group, "c", NULL);
  a->fail_inits = 3;
  c->init_delay_ms = 1500;   /* slow: supervision of a must not wait for it */

  g_assert_true (exo_test_initialize (EXO_RESOURCE (group), NULL));
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_DEGRADED));
  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (b, EXO_RESOURCE_STATE_READY));
  g_assert_cmpint (state_of (c), ==, EXO_RESOURCE_STATE_INITIALIZING);   /* still starting */
  g_assert_true (wait_state (c, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_READY));
  g_assert_cmpuint (a->n_init_calls, ==, 4);
  g_assert_cmpuint (b->n_init_calls, ==, 1);

  group_cleanup_ok (group);
}

/* --- registration ---------------------------------------------------- */

void
test_group_register_recovery (void)
{
  g_test_add_func ("/exo/group/order/rollback", test_order_rollback);
  g_test_add_data_func ("/exo/group/order/one-for-one", GUINT_TO_POINTER (EXO_SUPERVISION_ONE_FOR_ONE),
                        test_order_restart);
  g_test_add_data_func ("/exo/group/order/rest-for-one", GUINT_TO_POINTER (EXO_SUPERVISION_REST_FOR_ONE),
                        test_order_restart);
  g_test_add_data_func ("/exo/group/order/one-for-all", GUINT_TO_POINTER (EXO_SUPERVISION_ONE_FOR_ALL),
                        test_order_restart);
  g_test_add_func ("/exo/group/supervision/degraded-restart", test_supervision_degraded_restart);
  g_test_add_func ("/exo/group/supervision/dependent-no-flap", test_supervision_dependent_no_flap);
  g_test_add_func ("/exo/group/supervision/manual-ops", test_supervision_manual_ops);
  g_test_add_func ("/exo/group/supervision/given-up", test_supervision_given_up);
  g_test_add_func ("/exo/group/supervision/backoff", test_supervision_backoff);
  g_test_add_func ("/exo/group/supervision/keep-going", test_keep_going);
  g_test_add_func ("/exo/group/supervision/regression/held-then-own-failure",
                   test_supervision_held_then_own_failure);
  g_test_add_func ("/exo/group/supervision/regression/degraded-before-start",
                   test_supervision_degraded_before_start);
}
