/* test-resource-group-lifecycle.c: an ExoResourceGroup's initialize and
 * cleanup — dependency order, parallelism, rollback, timeout, cancellation,
 * reverse-order cleanup and its errors.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-resource-group (main() in test-resource-group.c).  One
 * thread: the group and its members run on the test's thread-default main
 * context.
 */
#include "resource-group-fixture.h"

/* --- initialize -------------------------------------------------------- */

/* db <- cache <- api <- web, and api also on db; added out of order. */
static void
add_diamond (ExoResourceGroup *group)
{
  add_member (group, "web", "api", NULL);
  add_member (group, "db", NULL);
  add_member (group, "api", "db", "cache", NULL);
  add_member (group, "cache", "db", NULL);
}

static void
test_initialize_order (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autofree char *inits = NULL;
  g_autoptr(GPtrArray) members = NULL;

  add_diamond (group);
  exo_test_log_reset ();
  group_init_ok (group);

  inits = log_filter ("init", NULL);
  g_assert_cmpstr (inits, ==, "init:db,init:cache,init:api,init:web");

  members = exo_resource_group_get_members (group);
  for (guint i = 0; i < members->len; i++)
    g_assert_cmpint (state_of (g_ptr_array_index (members, i)), ==, EXO_RESOURCE_STATE_READY);

  /* Initialize of a ready group is a no-op. */
  exo_test_log_reset ();
  group_init_ok (group);
  g_assert_cmpstr (exo_test_log_get (), ==, "");

  group_cleanup_ok (group);
  for (guint i = 0; i < members->len; i++)
    g_assert_cmpint (state_of (g_ptr_array_index (members, i)), ==, EXO_RESOURCE_STATE_CLOSED);

  /* And it initializes again from closed. */
  group_init_ok (group);
  group_cleanup_ok (group);
}

static void
test_initialize_parallel (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoTestResource *a, *b, *c;
  gint64 start, elapsed_ms;

  a = add_member (group, "a", NULL);
  b = add_member (group, "b", NULL);
  c = add_member (group, "c", "a", "b", NULL);
  a->init_delay_ms = 300;
  b->init_delay_ms = 300;

  exo_test_log_reset ();
  start = g_get_monotonic_time ();
  group_init_ok (group);
  elapsed_ms = (g_get_monotonic_time () - start) / 1000;

  /* Both started before either finished; c only after both. */
  assert_before ("init:a", "init-done:a");
  assert_before ("init:b", "init-done:a");
  assert_before ("init:a", "init-done:b");
  assert_before ("init-done:a", "init:c");
  assert_before ("init-done:b", "init:c");
  g_assert_cmpint (state_of (c), ==, EXO_RESOURCE_STATE_READY);

  /* About one delay, not two. */
  g_assert_cmpint (elapsed_ms, >=, 290);
  g_assert_cmpint (elapsed_ms, <, 550);

  group_cleanup_ok (group);
}

static void
test_initialize_max_parallel (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  const char *ids[] = { "a", "b", "c", NULL };
  g_autofree char *log = NULL;

  exo_resource_group_set_max_parallel (group, 1);
  for (guint i = 0; ids[i] != NULL; i++)
    add_member (group, ids[i], NULL)->init_delay_ms = 30;

  exo_test_log_reset ();
  group_init_ok (group);
  log = g_strdup (exo_test_log_get ());
  g_assert_cmpstr (log, ==, "init:a,init-done:a,init:b,init-done:b,init:c,init-done:c");

  /* Two at a time: never three. */
  group_cleanup_ok (group);
  exo_resource_group_set_max_parallel (group, 2);
  exo_test_log_reset ();
  group_init_ok (group);
  assert_before ("init:b", "init-done:a");
  assert_before ("init-done:a", "init:c");
  group_cleanup_ok (group);
}

static void
test_initialize_rollback (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(GError) error = NULL;
  g_autofree char *cleanups = NULL;
  ExoTestResource *db, *cache, *api, *web, *worker;
  gint64 start;

  web = add_member (group, "web", "api", NULL);
  db = add_member (group, "db", NULL);
  api = add_member (group, "api", "db", "cache", NULL);
  cache = add_member (group, "cache", "db", NULL);
  worker = add_member (group, "worker", NULL);     /* independent and slow */
  worker->init_delay_ms = 5000;
  web->fail_inits = 1;

  exo_test_log_reset ();
  start = g_get_monotonic_time ();
  g_assert_false (exo_test_initialize (EXO_RESOURCE (group), &error));

  /* The member that failed and why, with its own domain and code. */
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_cmpstr (error->message, ==, "member 'web' failed: test init of 'web' failed");
  g_assert_cmpint (state_of (group), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_cmpstr (exo_resource_get_last_error (EXO_RESOURCE (group))->message, ==, error->message);

  /* Nobody waited for the slow worker: its attempt was cancelled. */
  g_assert_cmpint ((g_get_monotonic_time () - start) / 1000, <, 4000);

  /* Rolled back in reverse dependency order, before the failure was
   * reported; the failed member stays in error to show what failed. */
  cleanups = log_filter ("cleanup", (const char *[]) { "api", "cache", "db", NULL });
  g_assert_cmpstr (cleanups, ==, "cleanup:api,cleanup:cache,cleanup:db");
  g_assert_cmpint (state_of (db), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpint (state_of (cache), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpint (state_of (api), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpint (state_of (web), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_cmpint (state_of (worker), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_true (wait_state (worker, EXO_RESOURCE_STATE_CLOSED));
  g_assert_cmpint (db->live + cache->live + api->live + web->live + worker->live, ==, 0);

  /* A second try succeeds (web's failure was one-off). */
  worker->init_delay_ms = 0;
  group_init_ok (group);
  g_assert_cmpint (state_of (web), ==, EXO_RESOURCE_STATE_READY);
  group_cleanup_ok (group);
  g_assert_cmpint (state_of (web), ==, EXO_RESOURCE_STATE_CLOSED);
}

/* A member that was ready and fails before the whole group is ready fails
 * the initialize; it is rolled back like the others, since it holds what
 * it made. */
static void
test_initialize_member_falls (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  ExoTestResource *a, *slow;

  slow = add_member (group, "slow", NULL);
  a = add_member (group, "a", NULL);
  slow->init_delay_ms = 10000;
  /* One at a time, then more: the run picks up a raised limit. */
  exo_resource_group_set_max_parallel (group, 1);

  exo_resource_initialize_async (EXO_RESOURCE (group), NULL, exo_test_store_result, &result);
  g_assert_true (wait_state (slow, EXO_RESOURCE_STATE_INITIALIZING));
  exo_test_spin (20);
  g_assert_cmpint (state_of (a), ==, EXO_RESOURCE_STATE_UNINITIALIZED);
  exo_resource_group_set_max_parallel (group, 0);
  g_assert_true (wait_state (a, EXO_RESOURCE_STATE_READY));

  fail_member (a);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (group), result, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_cmpstr (error->message, ==, "member 'a' failed: connection to 'a' dropped");
  g_assert_cmpint (state_of (a), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpint (a->live, ==, 0);
  g_assert_true (wait_state (slow, EXO_RESOURCE_STATE_CLOSED));
}

static void
test_initialize_timeout (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(GError) error = NULL;
  ExoTestResource *fast, *slow;

  fast = add_member (group, "fast", NULL);
  slow = add_member (group, "slow", "fast", NULL);
  slow->init_delay_ms = 10000;
  exo_resource_set_init_timeout (EXO_RESOURCE (group), 200);

  g_assert_false (exo_test_initialize (EXO_RESOURCE (group), &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (state_of (group), ==, EXO_RESOURCE_STATE_ERROR);

  /* What was made is released (the base class cleans up behind a timeout). */
  g_assert_true (wait_state (slow, EXO_RESOURCE_STATE_CLOSED));
  g_assert_true (wait_state (fast, EXO_RESOURCE_STATE_CLOSED));
  g_assert_cmpint (fast->live + slow->live, ==, 0);
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (group), EXO_RESOURCE_STATE_ERROR, 1000));
}

static void
test_initialize_cancel (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  ExoTestResource *slow;

  add_member (group, "fast", NULL);
  slow = add_member (group, "slow", "fast", NULL);
  slow->init_delay_ms = 10000;

  exo_resource_initialize_async (EXO_RESOURCE (group), cancellable, exo_test_store_result, &result);
  g_assert_true (wait_state (slow, EXO_RESOURCE_STATE_INITIALIZING));
  g_cancellable_cancel (cancellable);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (group), result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  g_assert_true (wait_state (slow, EXO_RESOURCE_STATE_CLOSED));
  g_assert_true (wait_state (exo_resource_group_lookup (group, "fast"), EXO_RESOURCE_STATE_CLOSED));
}

static void
test_initialize_deep_chain (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  const guint n = 10000;
  g_autoptr(GPtrArray) members = NULL;
  char prev[32] = "";

  /* A chain as deep as the benchmark's graph is wide: a recursive
   * implementation would overflow the stack here. */
  for (guint i = 0; i < n; i++)
    {
      char id[32];
      g_autoptr(ExoTestResource) r = NULL;

      g_snprintf (id, sizeof id, "m%u", i);
      r = member_new (id);
      g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (r),
                                             i > 0 ? (const char *[]) { prev, NULL } : NULL, NULL));
      memcpy (prev, id, sizeof id);
    }

  exo_test_log_reset ();
  group_init_ok (group);
  members = exo_resource_group_get_members (group);
  g_assert_cmpuint (members->len, ==, n);
  for (guint i = 0; i < n; i++)
    {
      ExoTestResource *r = g_ptr_array_index (members, i);
      char id[32];

      g_snprintf (id, sizeof id, "m%u", i);
      g_assert_cmpstr (exo_resource_get_id (EXO_RESOURCE (r)), ==, id);
      g_assert_cmpint (state_of (r), ==, EXO_RESOURCE_STATE_READY);
    }
  group_cleanup_ok (group);
  assert_before ("cleanup:m9999", "cleanup:m0");
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (state_of (g_ptr_array_index (members, i)), ==, EXO_RESOURCE_STATE_CLOSED);
}

/* --- cleanup ----------------------------------------------------------- */

static void
test_cleanup_reverse_order (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autofree char *cleanups = NULL;

  add_diamond (group);
  group_init_ok (group);
  exo_test_log_reset ();
  group_cleanup_ok (group);

  cleanups = log_filter ("cleanup", NULL);
  g_assert_cmpstr (cleanups, ==, "cleanup:web,cleanup:api,cleanup:cache,cleanup:db");
}

/* The Python original cleaned up in insertion order.  Here the insertion
 * order (db, cache, api, web) is the dependency order, and in a second
 * group insertion order is neither it nor its reverse: both must clean up
 * dependents before their dependencies. */
static void
test_regression_cleanup_reverse_dependency_order (void)
{
  for (guint variant = 0; variant < 2; variant++)
    {
      g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
      g_autofree char *cleanups = NULL;
      g_autofree char *inits = NULL;

      if (variant == 0)
        {
          add_member (group, "db", NULL);
          add_member (group, "cache", "db", NULL);
          add_member (group, "api", "db", "cache", NULL);
          add_member (group, "web", "api", NULL);
        }
      else
        add_diamond (group);

      exo_test_log_reset ();
      group_init_ok (group);
      inits = log_filter ("init", NULL);
      g_assert_cmpstr (inits, ==, "init:db,init:cache,init:api,init:web");

      exo_test_log_reset ();
      group_cleanup_ok (group);
      cleanups = log_filter ("cleanup", NULL);
      g_assert_cmpstr (cleanups, ==, "cleanup:web,cleanup:api,cleanup:cache,cleanup:db");
      /* Each cleanup finished before the next began: awaited. */
      assert_before ("cleanup-done:web", "cleanup:api");
      assert_before ("cleanup-done:cache", "cleanup:db");
    }
}

static void
test_cleanup_parallel (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoTestResource *a, *b;
  gint64 start, elapsed_ms;

  add_member (group, "base", NULL);
  a = add_member (group, "a", "base", NULL);
  b = add_member (group, "b", "base", NULL);
  a->cleanup_delay_ms = 300;
  b->cleanup_delay_ms = 300;
  group_init_ok (group);

  exo_test_log_reset ();
  start = g_get_monotonic_time ();
  group_cleanup_ok (group);
  elapsed_ms = (g_get_monotonic_time () - start) / 1000;

  assert_before ("cleanup:b", "cleanup-done:a");
  assert_before ("cleanup:a", "cleanup-done:b");
  assert_before ("cleanup-done:a", "cleanup:base");
  assert_before ("cleanup-done:b", "cleanup:base");
  g_assert_cmpint (elapsed_ms, >=, 290);
  g_assert_cmpint (elapsed_ms, <, 550);
}

static void
test_cleanup_error (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(GError) error = NULL;
  ExoTestResource *a, *b;

  a = add_member (group, "a", NULL);
  b = add_member (group, "b", "a", NULL);
  group_init_ok (group);
  b->fail_cleanup = TRUE;

  /* Every member ends closed; the failure is reported and kept. */
  g_assert_false (exo_test_cleanup (EXO_RESOURCE (group), &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_cmpstr (error->message, ==, "member 'b' cleanup failed: test cleanup of 'b' failed");
  g_assert_cmpint (state_of (group), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpint (state_of (a), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpint (state_of (b), ==, EXO_RESOURCE_STATE_CLOSED);
}

/* Regression: after a failed group initialize, a member started by hand is
 * cleaned up with the group (shutdown must not leave it running). */
static void
test_cleanup_after_failed_init_cleans_started_member (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoTestResource *b;

  add_member (group, "a", NULL);
  b = add_member (group, "b", "a", NULL);
  b->fail_inits = 1;
  g_assert_false (exo_test_initialize (EXO_RESOURCE (group), NULL));
  g_assert_cmpint (state_of (b), ==, EXO_RESOURCE_STATE_ERROR);

  g_assert_true (exo_test_initialize (EXO_RESOURCE (b), NULL));   /* by hand */
  g_assert_cmpint (b->live, ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (group), NULL));
  g_assert_cmpint (state_of (b), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpint (b->live, ==, 0);
}

/* --- registration ---------------------------------------------------- */

void
test_group_register_lifecycle (void)
{
  g_test_add_func ("/exo/group/initialize/order", test_initialize_order);
  g_test_add_func ("/exo/group/initialize/parallel", test_initialize_parallel);
  g_test_add_func ("/exo/group/initialize/max-parallel", test_initialize_max_parallel);
  g_test_add_func ("/exo/group/initialize/rollback", test_initialize_rollback);
  g_test_add_func ("/exo/group/initialize/member-falls", test_initialize_member_falls);
  g_test_add_func ("/exo/group/initialize/timeout", test_initialize_timeout);
  g_test_add_func ("/exo/group/initialize/cancel", test_initialize_cancel);
  g_test_add_func ("/exo/group/initialize/deep-chain", test_initialize_deep_chain);
  g_test_add_func ("/exo/group/cleanup/reverse-order", test_cleanup_reverse_order);
  g_test_add_func ("/exo/group/cleanup/parallel", test_cleanup_parallel);
  g_test_add_func ("/exo/group/cleanup/error", test_cleanup_error);
  g_test_add_func ("/exo/group/regression/cleanup-after-failed-init-cleans-started-member",
                   test_cleanup_after_failed_init_cleans_started_member);
  g_test_add_func ("/exo/group/regression/cleanup-reverse-dependency-order",
                   test_regression_cleanup_reverse_dependency_order);
}
