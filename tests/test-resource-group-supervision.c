/* test-resource-group-supervision.c: how an ExoResourceGroup supervises
 * members that fail — one-for-one, rest-for-one, one-for-all, escalation,
 * restart limits, degraded dependents — and health aggregation and
 * hysteresis.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-resource-group (main() in test-resource-group.c).  One
 * thread: restarts are scheduled on the test's thread-default main context.
 */
#include "resource-group-fixture.h"

/* --- supervision ------------------------------------------------------- */

static void
test_supervision_one_for_one (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoTestResource *db, *api, *other;
  GString *api_history, *group_history;
  const GError *api_error;

  db = add_member (group, "db", NULL);
  api = add_member (group, "api", "db", NULL);
  other = add_member (group, "other", NULL);
  group_init_ok (group);

  api_history = watch (api);
  group_history = watch (group);
  db->init_delay_ms = 200;     /* slow to come back: dependents wait degraded */
  exo_test_log_reset ();
  fail_member (db);

  /* While db is down its dependent is degraded, with the reason. */
  g_assert_true (wait_state (api, EXO_RESOURCE_STATE_DEGRADED));
  api_error = exo_resource_get_last_error (EXO_RESOURCE (api));
  g_assert_error ((GError *) api_error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY);
  g_assert_nonnull (strstr (api_error->message, "'db'"));
  g_assert_cmpint (state_of (group), ==, EXO_RESOURCE_STATE_DEGRADED);

  /* db is restarted; its dependent is restored by a health pass. */
  g_assert_true (wait_state (db, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (api, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_READY));
  g_assert_cmpstr (api_history->str, ==, "degraded>ready");
  g_assert_cmpstr (group_history->str, ==, "degraded>ready");

  g_assert_cmpstr (exo_test_log_get (), ==, "cleanup:db,cleanup-done:db,init:db,init-done:db");
  g_assert_cmpuint (db->n_init_calls, ==, 2);
  g_assert_cmpuint (api->n_init_calls, ==, 1);
  g_assert_cmpuint (other->n_init_calls, ==, 1);
  g_assert_cmpuint (other->n_cleanup_calls, ==, 0);
  g_assert_cmpuint (exo_resource_group_get_restarts (group), ==, 1);

  group_cleanup_ok (group);
}

static void
test_supervision_rest_for_one (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autofree char *calls = NULL;
  ExoTestResource *a, *b, *c, *d, *e;
  g_auto(GStrv) entries = NULL;

  exo_resource_group_set_strategy (group, EXO_SUPERVISION_REST_FOR_ONE);
  a = add_member (group, "a", NULL);
  b = add_member (group, "b", "a", NULL);
  c = add_member (group, "c", "b", NULL);
  d = add_member (group, "d", NULL);
  e = add_member (group, "e", "a", NULL);
  group_init_ok (group);

  exo_test_log_reset ();
  fail_member (b);
  wait_restarts (group, 1);
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_READY));
  g_assert_cmpint (state_of (b), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpint (state_of (c), ==, EXO_RESOURCE_STATE_READY);

  /* b and what depends on it: dependents cleaned up first, then both
   * initialized in dependency order.  a, d and e were left alone. */
  entries = g_strsplit (exo_test_log_get (), ",", -1);
  calls = g_strjoinv (",", entries);
  g_assert_cmpstr (calls, ==,
                   "cleanup:c,cleanup-done:c,cleanup:b,cleanup-done:b,"
                   "init:b,init-done:b,init:c,init-done:c");
  g_assert_cmpuint (a->n_init_calls + d->n_init_calls + e->n_init_calls, ==, 3);
  g_assert_cmpuint (a->n_cleanup_calls + d->n_cleanup_calls + e->n_cleanup_calls, ==, 0);

  group_cleanup_ok (group);
}

/* A restart that fails does not start what depends on the failed member;
 * the next restart (which counts against the limit) brings both back. */
static void
test_supervision_failed_restart (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autofree char *inits = NULL;
  ExoTestResource *b, *c;

  exo_resource_group_set_strategy (group, EXO_SUPERVISION_REST_FOR_ONE);
  add_member (group, "a", NULL);
  b = add_member (group, "b", "a", NULL);
  c = add_member (group, "c", "b", NULL);
  group_init_ok (group);

  exo_test_log_reset ();
  b->fail_inits = 1;
  fail_member (b);
  wait_restarts (group, 2);
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_READY));
  g_assert_cmpint (state_of (b), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpint (state_of (c), ==, EXO_RESOURCE_STATE_READY);

  inits = log_filter ("init", NULL);
  g_assert_cmpstr (inits, ==, "init:b,init:b,init:c");
  g_assert_cmpuint (c->n_init_calls, ==, 2);
  g_assert_cmpuint (exo_resource_group_get_restarts (group), ==, 2);

  group_cleanup_ok (group);
}

static void
test_supervision_one_for_all (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autofree char *cleanups = NULL;
  g_autofree char *inits = NULL;
  ExoTestResource *a, *b, *c;

  exo_resource_group_set_strategy (group, EXO_SUPERVISION_ONE_FOR_ALL);
  exo_resource_group_set_max_parallel (group, 1);
  a = add_member (group, "a", NULL);
  b = add_member (group, "b", "a", NULL);
  c = add_member (group, "c", NULL);
  group_init_ok (group);

  exo_test_log_reset ();
  fail_member (c);
  wait_restarts (group, 1);
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_READY));

  cleanups = log_filter ("cleanup", NULL);
  inits = log_filter ("init", NULL);
  /* Reverse topological order (a, c, b) for cleanup, then forward. */
  g_assert_cmpstr (cleanups, ==, "cleanup:b,cleanup:c,cleanup:a");
  g_assert_cmpstr (inits, ==, "init:a,init:c,init:b");
  g_assert_cmpuint (a->n_init_calls, ==, 2);
  g_assert_cmpuint (b->n_init_calls, ==, 2);
  g_assert_cmpuint (c->n_init_calls, ==, 2);
  g_assert_cmpint (state_of (a), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpint (state_of (b), ==, EXO_RESOURCE_STATE_READY);

  group_cleanup_ok (group);
}

static void
test_supervision_escalation (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  const GError *error;
  ExoTestResource *m;

  exo_resource_group_set_restart_burst (group, 2);
  exo_resource_group_set_restart_interval (group, 60000);
  m = add_member (group, "m", NULL);
  add_member (group, "other", NULL);
  group_init_ok (group);

  /* m cannot come back: each restart fails and counts. */
  m->fail_inits = 100;
  fail_member (m);

  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_ERROR));
  error = exo_resource_get_last_error (EXO_RESOURCE (group));
  g_assert_error ((GError *) error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_RESTART_LIMIT);
  g_assert_nonnull (strstr (error->message, "member 'm' failed"));
  g_assert_cmpuint (exo_resource_group_get_restarts (group), ==, 2);
  g_assert_cmpuint (m->n_init_calls, ==, 3);

  /* Escalated: no more restarts. */
  exo_test_spin (100);
  g_assert_cmpuint (m->n_init_calls, ==, 3);
  g_assert_cmpint (state_of (m), ==, EXO_RESOURCE_STATE_ERROR);

  /* Initializing the group again starts afresh. */
  m->fail_inits = 0;
  group_init_ok (group);
  g_assert_cmpint (state_of (m), ==, EXO_RESOURCE_STATE_READY);
  group_cleanup_ok (group);
}

/* The rule: members are supervised by the group only; a managed member's
 * own auto-recover is off while it is a member. */
static void
test_supervision_auto_recover_off (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(GAsyncResult) result = NULL;
  ExoTestResource *m;

  m = add_member (group, "m", NULL);
  g_assert_false (exo_managed_resource_get_auto_recover (EXO_MANAGED_RESOURCE (m)));
  group_init_ok (group);

  fail_member (m);
  wait_restarts (group, 1);
  g_assert_true (wait_state (m, EXO_RESOURCE_STATE_READY));
  g_assert_cmpuint (exo_managed_resource_get_restarts (EXO_MANAGED_RESOURCE (m)), ==, 0);
  g_assert_cmpuint (m->n_init_calls, ==, 2);
  exo_test_spin (50);
  g_assert_cmpuint (m->n_init_calls, ==, 2);

  /* Removed, it looks after itself again. */
  g_object_ref (m);
  exo_resource_group_remove_async (group, "m", FALSE, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_true (exo_resource_group_remove_finish (group, result, NULL));
  g_assert_true (exo_managed_resource_get_auto_recover (EXO_MANAGED_RESOURCE (m)));
  g_object_unref (m);

  group_cleanup_ok (group);
}

static void
test_supervision_degraded_dependents (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoTestResource *a, *b, *c, *side;

  a = add_member (group, "a", NULL);
  b = add_member (group, "b", "a", NULL);
  c = add_member (group, "c", "b", NULL);
  side = add_member (group, "side", NULL);
  group_init_ok (group);

  /* Transitively: c depends on a through b. */
  a->init_delay_ms = 300;
  fail_member (a);
  g_assert_true (wait_state (b, EXO_RESOURCE_STATE_DEGRADED));
  g_assert_true (wait_state (c, EXO_RESOURCE_STATE_DEGRADED));
  g_assert_nonnull (strstr (exo_resource_get_last_error (EXO_RESOURCE (c))->message, "'a'"));
  g_assert_cmpint (state_of (side), ==, EXO_RESOURCE_STATE_READY);

  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (b, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (c, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_READY));
  g_assert_cmpuint (b->n_init_calls + c->n_init_calls, ==, 2);

  /* A member degraded by its own health check is not restarted within its
   * degraded-restart-ms; only the group's state follows it. */
  exo_managed_resource_set_degraded_restart (EXO_MANAGED_RESOURCE (side), 60000);
  exo_resource_report_health (EXO_RESOURCE (side), FALSE, NULL);
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_DEGRADED));
  exo_test_spin (50);
  g_assert_cmpint (state_of (side), ==, EXO_RESOURCE_STATE_DEGRADED);
  g_assert_cmpuint (side->n_init_calls, ==, 1);
  exo_resource_report_health (EXO_RESOURCE (side), TRUE, NULL);
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_READY));

  group_cleanup_ok (group);
}

static void
test_health_check (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(GError) error = NULL;
  ExoTestResource *a;

  a = add_member (group, "a", NULL);
  add_member (group, "b", NULL);
  group_init_ok (group);

  g_assert_true (exo_test_check_health (EXO_RESOURCE (group), &error));
  g_assert_no_error (error);

  a->healthy = FALSE;
  g_assert_false (exo_test_check_health (EXO_RESOURCE (group), &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY);
  g_assert_nonnull (strstr (error->message, "member 'a' is degraded"));
  g_clear_error (&error);
  g_assert_cmpint (state_of (a), ==, EXO_RESOURCE_STATE_DEGRADED);
  g_assert_cmpint (state_of (group), ==, EXO_RESOURCE_STATE_DEGRADED);

  a->healthy = TRUE;
  g_assert_true (exo_test_check_health (EXO_RESOURCE (group), &error));
  g_assert_no_error (error);
  g_assert_cmpint (state_of (a), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpint (state_of (group), ==, EXO_RESOURCE_STATE_READY);

  group_cleanup_ok (group);
}

/* A managed member's own restart limit (its retry policy's restart burst)
 * applies inside a group: over it, that member stays failed and the group
 * goes on degraded, without escalating. */
static void
test_supervision_member_restart_limit (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoRetryPolicy policy = {
    .max_retries = 0, .initial_delay_ms = 1, .max_delay_ms = 1, .multiplier = 1.0,
    .jitter = EXO_JITTER_NONE, .restart_burst = 2, .restart_interval_ms = 60000,
  };
  g_autoptr(ExoTestResource) flaky = exo_test_resource_new ("flaky");
  const GError *error;

  exo_resource_group_set_restart_burst (group, 100);
  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (flaky), &policy);
  g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (flaky), NULL, NULL));
  add_member (group, "steady", NULL);
  group_init_ok (group);

  for (guint i = 0; i < 2; i++)
    {
      fail_member (flaky);
      g_assert_true (wait_state (flaky, EXO_RESOURCE_STATE_READY));
    }
  g_assert_cmpuint (flaky->n_init_calls, ==, 3);

  fail_member (flaky);
  exo_test_spin (100);
  g_assert_cmpint (state_of (flaky), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_cmpuint (flaky->n_init_calls, ==, 3);
  error = exo_resource_get_last_error (EXO_RESOURCE (flaky));
  g_assert_error ((GError *) error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_RESTART_LIMIT);
  g_assert_cmpint (state_of (group), ==, EXO_RESOURCE_STATE_DEGRADED);

  group_cleanup_ok (group);
}

/* Health hysteresis: N failed checks before degraded, M passes before ready. */
static void
test_health_hysteresis (void)
{
  g_autoptr(ExoTestResource) r = member_new ("h");

  exo_managed_resource_set_health_thresholds (EXO_MANAGED_RESOURCE (r), 3, 2);
  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (r), FALSE);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));

  r->healthy = FALSE;
  g_assert_false (exo_test_check_health (EXO_RESOURCE (r), NULL));
  g_assert_false (exo_test_check_health (EXO_RESOURCE (r), NULL));
  g_assert_cmpint (state_of (r), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpuint (exo_resource_get_error_count (EXO_RESOURCE (r)), ==, 2);
  g_assert_false (exo_test_check_health (EXO_RESOURCE (r), NULL));
  g_assert_cmpint (state_of (r), ==, EXO_RESOURCE_STATE_DEGRADED);
  g_assert_cmpuint (exo_resource_get_error_count (EXO_RESOURCE (r)), ==, 3);

  r->healthy = TRUE;
  exo_test_check_health (EXO_RESOURCE (r), NULL);
  g_assert_cmpint (state_of (r), ==, EXO_RESOURCE_STATE_DEGRADED);
  exo_test_check_health (EXO_RESOURCE (r), NULL);
  g_assert_cmpint (state_of (r), ==, EXO_RESOURCE_STATE_READY);

  /* A pass in between starts the count again. */
  r->healthy = FALSE;
  exo_test_check_health (EXO_RESOURCE (r), NULL);
  exo_test_check_health (EXO_RESOURCE (r), NULL);
  r->healthy = TRUE;
  exo_test_check_health (EXO_RESOURCE (r), NULL);
  r->healthy = FALSE;
  exo_test_check_health (EXO_RESOURCE (r), NULL);
  exo_test_check_health (EXO_RESOURCE (r), NULL);
  g_assert_cmpint (state_of (r), ==, EXO_RESOURCE_STATE_READY);

  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* --- registration ---------------------------------------------------- */

void
test_group_register_supervision (void)
{
  g_test_add_func ("/exo/group/supervision/one-for-one", test_supervision_one_for_one);
  g_test_add_func ("/exo/group/supervision/rest-for-one", test_supervision_rest_for_one);
  g_test_add_func ("/exo/group/supervision/one-for-all", test_supervision_one_for_all);
  g_test_add_func ("/exo/group/supervision/failed-restart", test_supervision_failed_restart);
  g_test_add_func ("/exo/group/supervision/escalation", test_supervision_escalation);
  g_test_add_func ("/exo/group/supervision/member-restart-limit", test_supervision_member_restart_limit);
  g_test_add_func ("/exo/group/supervision/auto-recover-off", test_supervision_auto_recover_off);
  g_test_add_func ("/exo/group/supervision/degraded-dependents", test_supervision_degraded_dependents);
  g_test_add_func ("/exo/group/health/aggregate", test_health_check);
  g_test_add_func ("/exo/group/health/hysteresis", test_health_hysteresis);
}
