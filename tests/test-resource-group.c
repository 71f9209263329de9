/* test-resource-group.c: dependencies, ordering, rollback and supervision —
 * main(), membership and validation.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The other cases are in test-resource-group-{lifecycle,supervision,recovery,
 * members}.c, the helpers they share in resource-group-fixture.c; main()
 * registers every case in the order it always had.  One thread: groups,
 * members and the test share the thread-default main context.
 */
#include "resource-group-fixture.h"

#include <string.h>

/* --- membership -------------------------------------------------------- */

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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/exo/group/members/add-lookup", test_members_add_lookup);
  g_test_add_func ("/exo/group/members/strategy-strings", test_strategy_strings);
  g_test_add_func ("/exo/group/validate/missing", test_validate_missing);
  g_test_add_func ("/exo/group/validate/cycle", test_validate_cycle);
  test_group_register_lifecycle ();
  test_group_register_supervision ();
  test_group_register_recovery ();
  test_group_register_members ();

  return g_test_run ();
}
