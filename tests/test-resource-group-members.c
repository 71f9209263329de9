/* test-resource-group-members.c: groups in groups, and members added to or
 * removed from a running (or starting) ExoResourceGroup.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-resource-group (main() in test-resource-group.c).  One
 * thread: the test's thread-default main context.
 */
#include "resource-group-fixture.h"

/* --- nesting ----------------------------------------------------------- */

static void
test_nesting (void)
{
  g_autoptr(ExoResourceGroup) parent = exo_resource_group_new ("parent");
  g_autoptr(ExoResourceGroup) child = exo_resource_group_new ("child");
  g_autoptr(GError) error = NULL;
  g_autofree char *inits = NULL;
  g_autofree char *cleanups = NULL;
  ExoTestResource *x, *y, *p;

  x = add_member (child, "x", NULL);
  y = add_member (child, "y", "x", NULL);
  g_assert_true (exo_resource_group_add (parent, EXO_RESOURCE (child), NULL, &error));
  g_assert_no_error (error);
  p = add_member (parent, "p", "child", NULL);

  exo_test_log_reset ();
  group_init_ok (parent);
  inits = log_filter ("init", NULL);
  g_assert_cmpstr (inits, ==, "init:x,init:y,init:p");
  g_assert_cmpint (state_of (child), ==, EXO_RESOURCE_STATE_READY);

  /* A failure inside the child is handled by the child; the parent only
   * sees it degraded for a while. */
  x->init_delay_ms = 200;
  fail_member (x);
  g_assert_true (wait_state (child, EXO_RESOURCE_STATE_DEGRADED));
  g_assert_true (wait_state (parent, EXO_RESOURCE_STATE_DEGRADED));
  g_assert_true (wait_state (x, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (child, EXO_RESOURCE_STATE_READY));
  g_assert_true (wait_state (parent, EXO_RESOURCE_STATE_READY));
  g_assert_cmpuint (exo_resource_group_get_restarts (child), ==, 1);
  g_assert_cmpuint (exo_resource_group_get_restarts (parent), ==, 0);
  x->init_delay_ms = 0;

  /* When the child gives up, the parent restarts the whole child. */
  exo_resource_group_set_restart_burst (child, 1);
  x->fail_inits = 1;
  fail_member (x);
  wait_restarts (parent, 1);
  g_assert_true (wait_state (parent, EXO_RESOURCE_STATE_READY));
  g_assert_cmpint (state_of (child), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpint (state_of (x), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpint (state_of (y), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpint (state_of (p), ==, EXO_RESOURCE_STATE_READY);

  exo_test_log_reset ();
  group_cleanup_ok (parent);
  cleanups = log_filter ("cleanup", NULL);
  g_assert_cmpstr (cleanups, ==, "cleanup:p,cleanup:y,cleanup:x");
  g_assert_cmpint (state_of (child), ==, EXO_RESOURCE_STATE_CLOSED);
}

/* --- members that come and go ------------------------------------------ */

static void
test_running_add (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(ExoTestResource) z = member_new ("z");
  g_autoptr(ExoTestResource) v = member_new ("v");
  g_autoptr(ExoTestResource) w = member_new ("w");
  g_autoptr(GError) error = NULL;
  GString *group_history;
  ExoTestResource *a;

  a = add_member (group, "a", NULL);
  group_init_ok (group);
  group_history = watch (group);

  /* z on a ready member, v on z which is not ready yet. */
  z->init_delay_ms = 100;
  exo_test_log_reset ();
  g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (z), (const char *[]) { "a", NULL }, &error));
  g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (v), (const char *[]) { "z", NULL }, &error));
  g_assert_no_error (error);
  g_assert_true (wait_state (v, EXO_RESOURCE_STATE_READY));
  g_assert_cmpint (state_of (z), ==, EXO_RESOURCE_STATE_READY);
  assert_before ("init-done:z", "init:v");
  g_assert_cmpuint (a->n_init_calls, ==, 1);

  /* Starting new members does not make the group degraded. */
  exo_test_spin (20);
  g_assert_cmpstr (group_history->str, ==, "");

  /* While running, a dependency must exist. */
  g_assert_false (exo_resource_group_add (group, EXO_RESOURCE (w), (const char *[]) { "nope", NULL }, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY);
  g_assert_cmpstr (error->message, ==, "member 'w' depends on unknown member 'nope'");
  g_clear_error (&error);
  g_assert_null (exo_resource_group_lookup (group, "w"));

  /* And no edge may make a cycle. */
  g_assert_false (exo_resource_group_add_dependency (group, "a", "v", &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY);
  g_assert_cmpstr (error->message, ==, "dependency cycle: a -> v -> z -> a");
  g_clear_error (&error);

  /* A member that fails its first start stays in error: group degraded. */
  w->fail_inits = 1;
  g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (w), NULL, &error));
  g_assert_true (wait_state (w, EXO_RESOURCE_STATE_ERROR));
  g_assert_true (wait_state (group, EXO_RESOURCE_STATE_DEGRADED));
  g_assert_cmpuint (exo_resource_group_get_restarts (group), ==, 0);

  exo_test_log_reset ();
  group_cleanup_ok (group);
  assert_before ("cleanup:v", "cleanup:z");
  assert_before ("cleanup:z", "cleanup:a");
  g_assert_cmpint (state_of (v), ==, EXO_RESOURCE_STATE_CLOSED);
}

static void
test_running_remove (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) deps = NULL;
  ExoTestResource *db, *api, *leaf;
  guint removed = 0;

  db = g_object_ref (add_member (group, "db", NULL));
  api = add_member (group, "api", "db", NULL);
  leaf = g_object_ref (add_member (group, "leaf", "api", NULL));
  add_member (group, "web", "api", NULL);
  g_signal_connect (group, "member-removed", G_CALLBACK (count_cb), &removed);
  group_init_ok (group);

  /* Refused while others depend on it, naming them. */
  exo_resource_group_remove_async (group, "api", FALSE, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_false (exo_resource_group_remove_finish (group, result, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY);
  g_assert_cmpstr (error->message, ==, "member 'api' is needed by 'leaf', 'web'");
  g_clear_error (&error);
  g_clear_object (&result);
  g_assert_cmpint (state_of (api), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpuint (removed, ==, 0);

  /* A leaf is cleaned up, and awaited. */
  leaf->cleanup_delay_ms = 100;
  exo_resource_group_remove_async (group, "leaf", FALSE, NULL, exo_test_store_result, &result);
  g_assert_null (exo_resource_group_lookup (group, "leaf"));
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_true (exo_resource_group_remove_finish (group, result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);
  g_assert_cmpint (state_of (leaf), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpint (leaf->live, ==, 0);
  g_assert_cmpuint (removed, ==, 1);
  g_assert_cmpint (state_of (group), ==, EXO_RESOURCE_STATE_READY);

  /* Forced: dependents stay and lose the dependency. */
  exo_resource_group_remove_async (group, "db", TRUE, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_true (exo_resource_group_remove_finish (group, result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);
  g_assert_cmpint (state_of (db), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpuint (removed, ==, 2);
  deps = exo_resource_group_get_dependencies (group, "api");
  g_assert_cmpstrv (deps, ((const char *[]) { NULL }));
  exo_test_spin (20);
  g_assert_cmpint (state_of (api), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpint (state_of (group), ==, EXO_RESOURCE_STATE_READY);

  /* Unknown. */
  exo_resource_group_remove_async (group, "nope", FALSE, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_false (exo_resource_group_remove_finish (group, result, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_clear_object (&result);

  /* A removed resource may join another group. */
  {
    g_autoptr(ExoResourceGroup) other = exo_resource_group_new ("other");
    g_assert_true (exo_resource_group_add (other, EXO_RESOURCE (db), NULL, &error));
    g_assert_no_error (error);
  }

  group_cleanup_ok (group);
  g_object_unref (db);
  g_object_unref (leaf);
}

static void
test_remove_during_initialize (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(GAsyncResult) init_result = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  ExoTestResource *slow, *after;

  slow = g_object_ref (add_member (group, "slow", NULL));
  after = add_member (group, "after", "slow", NULL);
  slow->init_delay_ms = 5000;

  exo_resource_initialize_async (EXO_RESOURCE (group), NULL, exo_test_store_result, &init_result);
  g_assert_true (wait_state (slow, EXO_RESOURCE_STATE_INITIALIZING));

  /* Forced removal of the member everybody waits for lets them go on. */
  exo_resource_group_remove_async (group, "slow", TRUE, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_true (exo_resource_group_remove_finish (group, result, &error));
  g_assert_no_error (error);
  g_assert_true (exo_test_wait_result (&init_result, 5000));
  g_assert_true (exo_resource_initialize_finish (EXO_RESOURCE (group), init_result, &error));
  g_assert_no_error (error);
  g_assert_cmpint (state_of (after), ==, EXO_RESOURCE_STATE_READY);
  g_assert_true (wait_state (slow, EXO_RESOURCE_STATE_CLOSED));

  group_cleanup_ok (group);
  g_object_unref (slow);
}

/* --- registration ---------------------------------------------------- */

void
test_group_register_members (void)
{
  g_test_add_func ("/exo/group/nesting", test_nesting);
  g_test_add_func ("/exo/group/running/add", test_running_add);
  g_test_add_func ("/exo/group/running/remove", test_running_remove);
  g_test_add_func ("/exo/group/running/remove-during-initialize", test_remove_during_initialize);
}
