/* test-resource-group.c: dependencies, ordering, rollback and supervision.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

#include <string.h>

/* --- helpers ----------------------------------------------------------- */

/* A test resource without retries of its own: one do_initialize per
 * initialize, so that logs and counters say what the group did. */
static ExoTestResource *
member_new (const char *id)
{
  ExoTestResource *r = exo_test_resource_new (id);
  ExoRetryPolicy policy = {
    .max_retries = 0, .initial_delay_ms = 1, .max_delay_ms = 1,
    .multiplier = 1.0, .jitter = EXO_JITTER_NONE,
  };

  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (r), &policy);
  return r;
}

/* Adds a new test resource called @id depending on the NULL-terminated
 * names that follow; returns it (the group holds the only ref). */
static ExoTestResource *
add_member (ExoResourceGroup *group,
            const char       *id,
            ...)
{
  g_autoptr(ExoTestResource) r = member_new (id);
  g_autoptr(GPtrArray) deps = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  const char *dep;
  va_list args;

  va_start (args, id);
  while ((dep = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (deps, (gpointer) dep);
  va_end (args);
  g_ptr_array_add (deps, NULL);

  g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (r),
                                         (const char * const *) deps->pdata, &error));
  g_assert_no_error (error);
  return r;
}

static ExoResourceState
state_of (gpointer resource)
{
  return exo_resource_get_state (EXO_RESOURCE (resource));
}

/* The entries of the test log whose kind is @kind ("init", "cleanup", …),
 * for the ids in @ids (all when NULL), comma separated. */
static char *
log_filter (const char        *kind,
            const char * const *ids)
{
  g_auto(GStrv) entries = g_strsplit (exo_test_log_get (), ",", -1);
  GString *out = g_string_new (NULL);
  gsize kind_len = strlen (kind);

  for (guint i = 0; entries[i] != NULL; i++)
    {
      const char *e = entries[i];

      if (strncmp (e, kind, kind_len) != 0 || e[kind_len] != ':')
        continue;
      if (ids != NULL && !g_strv_contains (ids, e + kind_len + 1))
        continue;
      if (out->len > 0)
        g_string_append_c (out, ',');
      g_string_append (out, e);
    }
  return g_string_free (out, FALSE);
}

/* The position of @entry in the test log, or -1. */
static int
log_index (const char *entry)
{
  g_auto(GStrv) entries = g_strsplit (exo_test_log_get (), ",", -1);

  for (guint i = 0; entries[i] != NULL; i++)
    if (g_str_equal (entries[i], entry))
      return (int) i;
  return -1;
}

static void
assert_before (const char *first,
               const char *second)
{
  int a = log_index (first);
  int b = log_index (second);

  if (a < 0 || b < 0 || a >= b)
    g_error ("expected %s before %s in log: %s", first, second, exo_test_log_get ());
}

/* Records every state a resource enters: "initializing>ready>…". */
static void
history_cb (ExoResource      *resource,
            ExoResourceState  old_state,
            ExoResourceState  new_state,
            gpointer          data)
{
  GString *history = data;

  if (history->len > 0)
    g_string_append_c (history, '>');
  g_string_append (history, exo_resource_state_to_string (new_state));
}

static void
history_free (gpointer data)
{
  g_string_free (data, TRUE);
}

static GString *
watch (gpointer resource)
{
  GString *history = g_string_new (NULL);

  g_object_set_data_full (G_OBJECT (resource), "test-history", history, history_free);
  g_signal_connect (resource, "state-changed", G_CALLBACK (history_cb), history);
  return history;
}

static void
group_init_ok (ExoResourceGroup *group)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (group), &error));
  g_assert_no_error (error);
  g_assert_cmpint (state_of (group), ==, EXO_RESOURCE_STATE_READY);
}

static void
group_cleanup_ok (ExoResourceGroup *group)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_cleanup (EXO_RESOURCE (group), &error));
  g_assert_no_error (error);
  g_assert_cmpint (state_of (group), ==, EXO_RESOURCE_STATE_CLOSED);
}

static gboolean
wait_state (gpointer         resource,
            ExoResourceState state)
{
  return exo_test_wait_for_state (EXO_RESOURCE (resource), state, 10000);
}

static gboolean
restarts_reached (gpointer data)
{
  gpointer *args = data;

  return exo_resource_group_get_restarts (args[0]) >= GPOINTER_TO_UINT (args[1]);
}

static void
wait_restarts (ExoResourceGroup *group,
               guint             n)
{
  gpointer args[2] = { group, GUINT_TO_POINTER (n) };

  g_assert_true (exo_test_spin_until (restarts_reached, args, 10000));
}

static void
fail_member (gpointer resource)
{
  g_autoptr(GError) error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                                         "connection to '%s' dropped",
                                         exo_resource_get_id (resource));

  exo_resource_report_error (EXO_RESOURCE (resource), error);
  g_assert_cmpint (state_of (resource), ==, EXO_RESOURCE_STATE_ERROR);
}

/* --- membership -------------------------------------------------------- */

static void
count_cb (ExoResourceGroup *group,
          ExoResource      *member,
          gpointer          data)
{
  (*(guint *) data)++;
}

static void
test_members_add_lookup (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(ExoResourceGroup) other = exo_resource_group_new ("other");
  g_autoptr(ExoTestResource) dup = member_new ("db");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) members = NULL;
  g_auto(GStrv) order = NULL;
  g_auto(GStrv) deps = NULL;
  g_auto(GStrv) dependents = NULL;
  ExoTestResource *db, *api;
  guint added = 0;

  g_signal_connect (group, "member-added", G_CALLBACK (count_cb), &added);

  /* A member may name a dependency that is added later. */
  api = add_member (group, "api", "db", NULL);
  db = add_member (group, "db", NULL);
  g_assert_cmpuint (added, ==, 2);
  g_assert_cmpuint (exo_resource_group_get_n_members (group), ==, 2);
  g_assert_true (exo_resource_group_lookup (group, "db") == EXO_RESOURCE (db));
  g_assert_true (exo_resource_group_lookup (group, "api") == EXO_RESOURCE (api));
  g_assert_null (exo_resource_group_lookup (group, "nope"));

  /* Names are unique. */
  g_assert_false (exo_resource_group_add (group, EXO_RESOURCE (dup), NULL, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE);
  g_assert_nonnull (strstr (error->message, "'db'"));
  g_clear_error (&error);

  /* A resource belongs to one group. */
  g_assert_false (exo_resource_group_add (other, EXO_RESOURCE (db), NULL, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE);
  g_assert_nonnull (strstr (error->message, "group 'g'"));
  g_clear_error (&error);

  /* A group cannot contain itself, even through a child. */
  g_assert_false (exo_resource_group_add (group, EXO_RESOURCE (group), NULL, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE);
  g_clear_error (&error);
  g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (other), NULL, &error));
  g_assert_false (exo_resource_group_add (other, EXO_RESOURCE (group), NULL, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE);
  g_clear_error (&error);

  /* Members come in topological order. */
  members = exo_resource_group_get_members (group);
  g_assert_cmpuint (members->len, ==, 3);
  g_assert_true (g_ptr_array_index (members, 0) == (gpointer) db);
  g_assert_true (g_ptr_array_index (members, 1) == (gpointer) other);
  g_assert_true (g_ptr_array_index (members, 2) == (gpointer) api);

  order = exo_resource_group_get_topological_order (group, &error);
  g_assert_no_error (error);
  g_assert_cmpstrv (order, ((const char *[]) { "db", "other", "api", NULL }));

  deps = exo_resource_group_get_dependencies (group, "api");
  g_assert_cmpstrv (deps, ((const char *[]) { "db", NULL }));
  dependents = exo_resource_group_get_dependents (group, "db");
  g_assert_cmpstrv (dependents, ((const char *[]) { "api", NULL }));
  g_assert_null (exo_resource_group_get_dependencies (group, "nope"));

  g_assert_true (exo_resource_group_add_dependency (group, "other", "db", &error));
  g_assert_no_error (error);
  g_clear_pointer (&dependents, g_strfreev);
  dependents = exo_resource_group_get_dependents (group, "db");
  g_assert_cmpstrv (dependents, ((const char *[]) { "api", "other", NULL }));

  g_assert_false (exo_resource_group_add_dependency (group, "nope", "db", &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_cmpstr (exo_resource_get_resource_type (EXO_RESOURCE (group)), ==, "group");
}

static void
test_strategy_strings (void)
{
  ExoSupervisionStrategy s;
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  ExoSupervisionStrategy prop;

  g_assert_cmpstr (exo_supervision_strategy_to_string (EXO_SUPERVISION_ONE_FOR_ONE), ==, "one-for-one");
  g_assert_cmpstr (exo_supervision_strategy_to_string (EXO_SUPERVISION_REST_FOR_ONE), ==, "rest-for-one");
  g_assert_cmpstr (exo_supervision_strategy_to_string (EXO_SUPERVISION_ONE_FOR_ALL), ==, "one-for-all");
  g_assert_true (exo_supervision_strategy_from_string ("rest-for-one", &s));
  g_assert_cmpint (s, ==, EXO_SUPERVISION_REST_FOR_ONE);
  g_assert_false (exo_supervision_strategy_from_string ("all-for-one", &s));

  g_assert_cmpint (exo_resource_group_get_strategy (group), ==, EXO_SUPERVISION_ONE_FOR_ONE);
  g_object_set (group, "strategy", EXO_SUPERVISION_ONE_FOR_ALL, "max-parallel", 4,
                "restart-burst", 3, "restart-interval-ms", 500, NULL);
  g_object_get (group, "strategy", &prop, NULL);
  g_assert_cmpint (prop, ==, EXO_SUPERVISION_ONE_FOR_ALL);
  g_assert_cmpuint (exo_resource_group_get_max_parallel (group), ==, 4);
  g_assert_cmpuint (exo_resource_group_get_restart_burst (group), ==, 3);
  g_assert_cmpuint (exo_resource_group_get_restart_interval (group), ==, 500);
}

/* --- validation -------------------------------------------------------- */

static void
test_validate_missing (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(GError) error = NULL;
  ExoTestResource *api;

  api = add_member (group, "api", "db", NULL);

  g_assert_false (exo_resource_group_validate (group, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY);
  g_assert_cmpstr (error->message, ==, "member 'api' depends on unknown member 'db'");
  g_clear_error (&error);

  g_assert_null (exo_resource_group_get_topological_order (group, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY);
  g_clear_error (&error);

  /* Initialize refuses before anything starts. */
  g_assert_false (exo_test_initialize (EXO_RESOURCE (group), &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY);
  g_assert_cmpstr (error->message, ==, "member 'api' depends on unknown member 'db'");
  g_clear_error (&error);
  g_assert_cmpuint (api->n_init_calls, ==, 0);
  g_assert_cmpint (state_of (api), ==, EXO_RESOURCE_STATE_UNINITIALIZED);

  /* Adding the dependency later makes the graph whole. */
  add_member (group, "db", NULL);
  g_assert_true (exo_resource_group_validate (group, &error));
  g_assert_no_error (error);
  group_init_ok (group);
  g_assert_cmpint (state_of (api), ==, EXO_RESOURCE_STATE_READY);
  group_cleanup_ok (group);
}

static void
test_validate_cycle (void)
{
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("g");
  g_autoptr(ExoTestResource) self_dep = member_new ("x");
  g_autoptr(GError) error = NULL;
  ExoTestResource *a, *d;

  d = add_member (group, "d", NULL);
  a = add_member (group, "a", "b", NULL);
  add_member (group, "c", "a", "d", NULL);
  add_member (group, "b", "c", NULL);
  add_member (group, "e", "a", NULL);

  g_assert_false (exo_resource_group_validate (group, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY);
  g_assert_cmpstr (error->message, ==, "dependency cycle: a -> b -> c -> a");
  g_clear_error (&error);

  g_assert_false (exo_test_initialize (EXO_RESOURCE (group), &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY);
  g_assert_cmpstr (error->message, ==, "dependency cycle: a -> b -> c -> a");
  g_clear_error (&error);
  g_assert_cmpuint (a->n_init_calls, ==, 0);
  g_assert_cmpuint (d->n_init_calls, ==, 0);

  /* Members are still listed, even those in the cycle. */
  {
    g_autoptr(GPtrArray) members = exo_resource_group_get_members (group);
    g_assert_cmpuint (members->len, ==, 5);
  }

  /* A member depending on itself is refused at once. */
  g_assert_false (exo_resource_group_add (group, EXO_RESOURCE (self_dep),
                                          (const char *[]) { "x", NULL }, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY);
  g_assert_cmpstr (error->message, ==, "dependency cycle: x -> x");
  g_clear_error (&error);
  g_assert_null (exo_resource_group_lookup (group, "x"));
}

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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/exo/group/members/add-lookup", test_members_add_lookup);
  g_test_add_func ("/exo/group/members/strategy-strings", test_strategy_strings);
  g_test_add_func ("/exo/group/validate/missing", test_validate_missing);
  g_test_add_func ("/exo/group/validate/cycle", test_validate_cycle);
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
  g_test_add_func ("/exo/group/nesting", test_nesting);
  g_test_add_func ("/exo/group/running/add", test_running_add);
  g_test_add_func ("/exo/group/running/remove", test_running_remove);
  g_test_add_func ("/exo/group/running/remove-during-initialize", test_remove_during_initialize);

  return g_test_run ();
}
