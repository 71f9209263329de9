/* test-config.c: the daemon's JSON config: schema, settings, errors with
 * file, line and key, limits, building into a group.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * main(), good configs, deprecated spellings and the project's default
 * config are here; errors in files and inline in test-config-errors.c,
 * limits and I/O in test-config-limits.c; TestKinds and the lookup in
 * config-fixture.c.  One thread: the test's thread-default main context.
 */
#include "config-fixture.h"

/* ------------------------------------------------------------------------ */
/* A good config                                                            */

static void
test_good_load (void)
{
  g_autoptr(ExoConfig) config = load_good ();
  g_auto(GStrv) ids = exo_config_get_resource_ids (config);
  g_auto(GStrv) types = exo_config_get_resource_types (config);

  g_assert_cmpstr (exo_config_get_node_id (config), ==, "node-1");
  g_assert_cmpstr (exo_config_get_node_name (config), ==, "Test node");
  g_assert_cmpstr (exo_config_get_cluster_key_file (config), ==, "keys/cluster.key");
  assert_strv (ids, "store,worker,sub,late,partial.retry_1");
  assert_strv (types, "kinds,test,group");
  g_assert_true (g_str_has_suffix (exo_config_get_source_name (config), "good.json"));
}

static void
test_good_build (void)
{
  g_autoptr(ExoConfig) config = load_good ();
  g_autoptr(ExoResourceGroup) root = exo_resource_group_new ("root");
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoRetryPolicy) policy = NULL;
  g_autoptr(ExoRetryPolicy) defaults = exo_retry_policy_new ();
  g_autoptr(ExoRetryPolicy) partial = NULL;
  g_auto(GStrv) worker_deps = NULL;
  g_auto(GStrv) sub_deps = NULL;
  g_auto(GStrv) store_deps = NULL;
  g_auto(GStrv) order = NULL;
  TestKinds *store, *late;
  ExoResource *worker;
  ExoResourceGroup *sub;

  g_assert_true (exo_config_build (config, root, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (exo_resource_group_get_n_members (root), ==, 5);

  /* Settings: every kind of property, construct-only included. */
  store = TEST_KINDS (exo_resource_group_lookup (root, "store"));
  g_assert_nonnull (store);
  g_assert_cmpstr (exo_resource_get_id (EXO_RESOURCE (store)), ==, "store");
  g_assert_cmpstr (exo_resource_get_resource_type (EXO_RESOURCE (store)), ==, "kinds");
  g_assert_cmpstr (exo_resource_get_display_name (EXO_RESOURCE (store)), ==, "The store");
  g_assert_cmpuint (exo_resource_get_init_timeout (EXO_RESOURCE (store)), ==, 2500);
  g_assert_cmpint (store->count, ==, -5);
  g_assert_cmpuint (store->port, ==, 8080);
  g_assert_cmpint (store->big, ==, G_GINT64_CONSTANT (9007199254740993));
  g_assert_cmpfloat (store->ratio, ==, 0.25);
  g_assert_true (store->enabled);
  g_assert_cmpstr (store->label, ==, "hello");
  g_assert_cmpint (store->level, ==, TEST_LEVEL_HIGH);
  assert_strv (store->tags, "a,b,c");
  g_assert_cmpuint (store->features, ==, TEST_FEATURE_ALPHA | TEST_FEATURE_GAMMA);
  g_assert_cmpstr (store->mode_at_constructed, ==, "fast");
  g_assert_cmpstr (store->token, ==, "abc");

  /* An integer for a double; a flags value as one string; defaults kept. */
  late = TEST_KINDS (exo_resource_group_lookup (root, "late"));
  g_assert_cmpfloat (late->ratio, ==, 1.0);
  g_assert_cmpuint (late->features, ==, TEST_FEATURE_BETA);
  g_assert_cmpuint (late->port, ==, 80);
  g_assert_cmpstr (late->mode_at_constructed, ==, "slow");

  /* A managed resource: retry policy and health-check interval. */
  worker = exo_resource_group_lookup (root, "worker");
  g_assert_true (EXO_IS_TEST_RESOURCE (worker));
  g_assert_cmpstr (exo_resource_get_resource_type (worker), ==, "test");
  policy = exo_managed_resource_get_retry_policy (EXO_MANAGED_RESOURCE (worker));
  g_assert_cmpuint (policy->max_retries, ==, 5);
  g_assert_cmpuint (policy->initial_delay_ms, ==, 10);
  g_assert_cmpuint (policy->max_delay_ms, ==, 500);
  g_assert_cmpfloat (policy->multiplier, ==, 1.5);
  g_assert_cmpint (policy->jitter, ==, EXO_JITTER_NONE);
  g_assert_cmpuint (policy->restart_burst, ==, 2);
  g_assert_cmpuint (policy->restart_interval_ms, ==, 1000);
  g_assert_cmpuint (exo_managed_resource_get_health_check_interval (EXO_MANAGED_RESOURCE (worker)), ==, 5000);

  /* Keys not given keep the defaults. */
  partial = exo_managed_resource_get_retry_policy (
      EXO_MANAGED_RESOURCE (exo_resource_group_lookup (root, "partial.retry_1")));
  g_assert_cmpuint (partial->max_retries, ==, 0);
  g_assert_cmpuint (partial->initial_delay_ms, ==, defaults->initial_delay_ms);
  g_assert_cmpuint (partial->max_delay_ms, ==, defaults->max_delay_ms);
  g_assert_cmpint (partial->jitter, ==, defaults->jitter);

  /* A group: strategy and restart limit. */
  sub = EXO_RESOURCE_GROUP (exo_resource_group_lookup (root, "sub"));
  g_assert_cmpint (exo_resource_group_get_strategy (sub), ==, EXO_SUPERVISION_REST_FOR_ONE);
  g_assert_cmpuint (exo_resource_group_get_restart_burst (sub), ==, 3);
  g_assert_cmpuint (exo_resource_group_get_restart_interval (sub), ==, 60000);

  /* Dependencies, including one on a resource defined later in the file. */
  worker_deps = exo_resource_group_get_dependencies (root, "worker");
  assert_strv (worker_deps, "store,late");
  sub_deps = exo_resource_group_get_dependencies (root, "sub");
  assert_strv (sub_deps, "worker");
  store_deps = exo_resource_group_get_dependencies (root, "store");
  g_assert_cmpuint (g_strv_length (store_deps), ==, 0);

  g_assert_true (exo_resource_group_validate (root, &error));
  g_assert_no_error (error);
  order = exo_resource_group_get_topological_order (root, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (order), ==, 5);
  g_assert_cmpint (strv_index (order, "store"), <, strv_index (order, "worker"));
  g_assert_cmpint (strv_index (order, "late"), <, strv_index (order, "worker"));
  g_assert_cmpint (strv_index (order, "worker"), <, strv_index (order, "sub"));
}

/* Every integer type, at the ends of its property's range. */
static void
test_integer_kinds (void)
{
  const char *json =
    "{ \"resources\": [\n"
    "  { \"id\": \"low\", \"type\": \"kinds\", \"settings\": { \"count\": -10, \"port\": 0,\n"
    "    \"tiny\": -5, \"byte\": 1, \"wide\": -1000000, \"uwide\": 0, \"huge\": 10,\n"
    "    \"big\": -9223372036854775808 } },\n"
    "  { \"id\": \"high\", \"type\": \"kinds\", \"settings\": { \"count\": 100, \"port\": 65535,\n"
    "    \"tiny\": 5, \"byte\": 200, \"wide\": 1000000, \"uwide\": 1000000,\n"
    "    \"huge\": 9223372036854775807, \"big\": 9223372036854775807 } }\n"
    "] }\n";
  g_autoptr(ExoConfig) config = NULL;
  g_autoptr(ExoResourceGroup) root = exo_resource_group_new ("root");
  g_autoptr(GError) error = NULL;
  TestKinds *low, *high;

  config = exo_config_load_data (json, -1, "inline.json", test_lookup, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (exo_config_build (config, root, &error));
  g_assert_no_error (error);

  low = TEST_KINDS (exo_resource_group_lookup (root, "low"));
  g_assert_cmpint (low->count, ==, -10);
  g_assert_cmpuint (low->port, ==, 0);
  g_assert_cmpint (low->tiny, ==, -5);
  g_assert_cmpuint (low->byte, ==, 1);
  g_assert_cmpint (low->wide, ==, -1000000);
  g_assert_cmpuint (low->uwide, ==, 0);
  g_assert_cmpuint (low->huge, ==, 10);
  g_assert_cmpint (low->big, ==, G_MININT64);

  high = TEST_KINDS (exo_resource_group_lookup (root, "high"));
  g_assert_cmpint (high->count, ==, 100);
  g_assert_cmpuint (high->port, ==, 65535);
  g_assert_cmpint (high->tiny, ==, 5);
  g_assert_cmpuint (high->byte, ==, 200);
  g_assert_cmpint (high->wide, ==, 1000000);
  g_assert_cmpuint (high->uwide, ==, 1000000);
  g_assert_cmpuint (high->huge, ==, G_MAXINT64);
  g_assert_cmpint (high->big, ==, G_MAXINT64);
}

/* One config builds any number of times, into different groups. */
static void
test_good_build_twice (void)
{
  g_autoptr(ExoConfig) config = load_good ();
  g_autoptr(ExoResourceGroup) root1 = exo_resource_group_new ("root");
  g_autoptr(ExoResourceGroup) root2 = exo_resource_group_new ("root");
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_config_build (config, root1, &error));
  g_assert_true (exo_config_build (config, root2, &error));
  g_assert_no_error (error);
  g_assert_true (exo_resource_group_lookup (root1, "store") != exo_resource_group_lookup (root2, "store"));
}

/* The built resources run: initialized in dependency order, cleaned up. */
static void
test_good_initialize (void)
{
  const char *json =
    "{ \"resources\": [\n"
    "  { \"id\": \"b\", \"type\": \"test\", \"depends-on\": [\"a\"] },\n"
    "  { \"id\": \"a\", \"type\": \"test\" }\n"
    "] }\n";
  g_autoptr(ExoConfig) config = NULL;
  g_autoptr(ExoResourceGroup) root = exo_resource_group_new ("root");
  g_autoptr(GError) error = NULL;
  const char *log;

  config = exo_config_load_data (json, -1, "inline.json", test_lookup, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (exo_config_build (config, root, &error));
  g_assert_no_error (error);

  exo_test_log_reset ();
  g_assert_true (exo_test_initialize (EXO_RESOURCE (root), &error));
  g_assert_no_error (error);
  log = exo_test_log_get ();
  g_assert_nonnull (strstr (log, "init:a"));
  g_assert_nonnull (strstr (log, "init:b"));
  g_assert_cmpint (strstr (log, "init:a") - log, <, strstr (log, "init:b") - log);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (root), &error));
  g_assert_no_error (error);
}

/* An id that is already a member: refused before anything is added. */
static void
test_build_refuses_existing_member (void)
{
  g_autoptr(ExoConfig) config = load_good ();
  g_autoptr(ExoResourceGroup) root = exo_resource_group_new ("root");
  g_autoptr(ExoTestResource) existing = exo_test_resource_new ("late");
  g_autoptr(GError) error = NULL;
  g_autofree char *path = config_path ("good.json");
  g_autofree char *expected = g_strdup_printf ("%s:43: resources[3].id: "
                                               "'late' is already a member of group 'root'", path);

  g_assert_true (exo_resource_group_add (root, EXO_RESOURCE (existing), NULL, &error));
  g_assert_false (exo_config_build (config, root, &error));
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_DUPLICATE_ID);
  g_assert_cmpstr (error->message, ==, expected);
  g_assert_cmpuint (exo_resource_group_get_n_members (root), ==, 1);
  g_clear_error (&error);

  /* The group's own id. */
  {
    g_autoptr(ExoResourceGroup) store_root = exo_resource_group_new ("store");
    g_autofree char *expected2 = g_strdup_printf ("%s:5: resources[0].id: "
                                                  "'store' is the id of the group the config is built into",
                                                  path);

    g_assert_false (exo_config_build (config, store_root, &error));
    g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_DUPLICATE_ID);
    g_assert_cmpstr (error->message, ==, expected2);
    g_assert_cmpuint (exo_resource_group_get_n_members (store_root), ==, 0);
  }
}

/* The group refuses the result (here: it already held a member with a
 * missing dependency): every member the config added is removed again. */
static void
test_build_rolls_back (void)
{
  g_autoptr(ExoConfig) config = load_good ();
  g_autoptr(ExoResourceGroup) root = exo_resource_group_new ("root");
  g_autoptr(ExoTestResource) existing = exo_test_resource_new ("x");
  const char * const deps[] = { "ghost", NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *path = config_path ("good.json");
  g_autofree char *prefix = g_strdup_printf ("%s:3: resources: ", path);

  g_assert_true (exo_resource_group_add (root, EXO_RESOURCE (existing), deps, &error));
  g_assert_no_error (error);

  g_assert_false (exo_config_build (config, root, &error));
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_INVALID);
  g_assert_true (g_str_has_prefix (error->message, prefix));
  g_assert_nonnull (strstr (error->message, "ghost"));
  g_test_message ("%s", error->message);

  g_assert_cmpuint (exo_resource_group_get_n_members (root), ==, 1);
  g_assert_true (exo_resource_group_lookup (root, "x") == EXO_RESOURCE (existing));
  g_assert_null (exo_resource_group_lookup (root, "store"));
}

/* ------------------------------------------------------------------------ */
/* Deprecated spellings: every time in milliseconds, its key ending in -ms   */

/* The same config in the old spellings and in the new ones.  The old keys
 * were the names of the libexo properties, which count milliseconds too:
 * the values are the same numbers. */
static const char old_spelling_json[] =
  "{ \"resources\": [\n"
  "  { \"id\": \"store\", \"type\": \"kinds\", \"init-timeout\": 2500 },\n"
  "  { \"id\": \"worker\", \"type\": \"test\", \"health-check-interval\": 5000,\n"
  "    \"retry\": { \"restart-burst\": 2, \"restart-interval\": 1000 } },\n"
  "  { \"id\": \"sub\", \"type\": \"group\", \"restart-interval\": 60000, \"init-timeout\": 7 }\n"
  "] }\n";

static const char new_spelling_json[] =
  "{ \"resources\": [\n"
  "  { \"id\": \"store\", \"type\": \"kinds\", \"init-timeout-ms\": 2500 },\n"
  "  { \"id\": \"worker\", \"type\": \"test\", \"health-check-interval-ms\": 5000,\n"
  "    \"retry\": { \"restart-burst\": 2, \"restart-interval-ms\": 1000 } },\n"
  "  { \"id\": \"sub\", \"type\": \"group\", \"restart-interval-ms\": 60000, \"init-timeout-ms\": 7 }\n"
  "] }\n";

/* Builds @json and checks the values of both configs above. */
static ExoConfig *
load_spelling (const char *json)
{
  g_autoptr(ExoConfig) config = NULL;
  g_autoptr(ExoResourceGroup) root = exo_resource_group_new ("root");
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoRetryPolicy) policy = NULL;
  ExoResource *worker;

  /* g_test_init () makes warnings fatal: the loader logs nothing. */
  config = exo_config_load_data (json, -1, "inline.json", test_lookup, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (exo_config_build (config, root, &error));
  g_assert_no_error (error);

  g_assert_cmpuint (exo_resource_get_init_timeout (exo_resource_group_lookup (root, "store")), ==, 2500);
  worker = exo_resource_group_lookup (root, "worker");
  g_assert_cmpuint (exo_managed_resource_get_health_check_interval (EXO_MANAGED_RESOURCE (worker)), ==, 5000);
  policy = exo_managed_resource_get_retry_policy (EXO_MANAGED_RESOURCE (worker));
  g_assert_cmpuint (policy->restart_burst, ==, 2);
  g_assert_cmpuint (policy->restart_interval_ms, ==, 1000);
  g_assert_cmpuint (exo_resource_group_get_restart_interval (
      EXO_RESOURCE_GROUP (exo_resource_group_lookup (root, "sub"))), ==, 60000);
  g_assert_cmpuint (exo_resource_get_init_timeout (exo_resource_group_lookup (root, "sub")), ==, 7);

  return g_steal_pointer (&config);
}

/* The old spelling: the same values, and one warning per old key (at its
 * first use, by line), which exo-node logs and --check-config prints. */
static void
test_old_spelling (void)
{
  g_autoptr(ExoConfig) config = load_spelling (old_spelling_json);
  const char * const *warnings = exo_config_get_warnings (config);

  g_assert_cmpuint (g_strv_length ((char **) warnings), ==, 3);
  g_assert_cmpstr (warnings[0], ==,
                   "inline.json:2: resources[0].init-timeout: 'init-timeout' is a deprecated spelling of "
                   "'init-timeout-ms' (the same value, in milliseconds); 1 more use in this file");
  g_assert_cmpstr (warnings[1], ==,
                   "inline.json:3: resources[1].health-check-interval: 'health-check-interval' is a "
                   "deprecated spelling of 'health-check-interval-ms' (the same value, in milliseconds)");
  g_assert_cmpstr (warnings[2], ==,
                   "inline.json:4: resources[1].retry.restart-interval: 'restart-interval' is a "
                   "deprecated spelling of 'restart-interval-ms' (the same value, in milliseconds); "
                   "1 more use in this file");
}

/* The new spelling: no warning (and none in the test configs either). */
static void
test_new_spelling (void)
{
  g_autoptr(ExoConfig) config = load_spelling (new_spelling_json);
  g_autoptr(ExoConfig) good = load_good ();

  g_assert_null (exo_config_get_warnings (config)[0]);
  g_assert_null (exo_config_get_warnings (good)[0]);
}

/* ------------------------------------------------------------------------ */
/* The project's default config                                             */

static GType
plugin_lookup (const char *type_name,
               gpointer    user_data)
{
  return exo_plugin_loader_lookup_type (EXO_PLUGIN_LOADER (user_data), type_name);
}

/* The project's default config, checked against the real plugins. */
static void
test_default_config (void)
{
  const char *path = g_getenv ("EXO_TEST_DEFAULT_CONFIG");
  const char *plugin_dir = g_getenv ("EXO_TEST_BUILD_PLUGIN_DIR");
  g_autoptr(ExoPluginLoader) loader = NULL;
  g_autoptr(ExoConfig) config = NULL;
  g_autoptr(ExoResourceGroup) root = exo_resource_group_new ("root");
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) types = NULL;
  g_auto(GStrv) ids = NULL;
  const char *expected[] = { "llama", "http-server", "udp-discovery", "node" };

  if (path == NULL || plugin_dir == NULL)
    {
      g_test_skip ("EXO_TEST_DEFAULT_CONFIG / EXO_TEST_BUILD_PLUGIN_DIR is not set");
      return;
    }

  loader = exo_plugin_loader_new ();
  exo_plugin_loader_add_search_dir (loader, plugin_dir);
  exo_plugin_loader_load_all (loader, NULL);

  config = exo_config_load_file (path, plugin_lookup, loader, &error);
  g_assert_no_error (error);
  g_assert_nonnull (config);
  g_assert_cmpstr (exo_config_get_node_id (config), ==, "auto");
  types = exo_config_get_resource_types (config);
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    g_assert_true (g_strv_contains ((const char * const *) types, expected[i]));
  ids = exo_config_get_resource_ids (config);
  g_assert_cmpuint (g_strv_length (ids), ==, 4);

  /* built, not started: nothing listens or sends */
  g_assert_true (exo_config_build (config, root, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (exo_resource_group_get_n_members (root), ==, g_strv_length (ids));
  for (guint i = 0; ids[i] != NULL; i++)
    g_assert_nonnull (exo_resource_group_lookup (root, ids[i]));
  {
    g_auto(GStrv) deps = exo_resource_group_get_dependencies (root, "node");
    g_assert_cmpuint (g_strv_length (deps), ==, 3);
  }
}

/* A built-in default (a GResource) is loaded as data with a source name. */
static void
test_load_data_defaults (void)
{
  const char *json = "{ \"resources\": [] }";
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;
  g_autoptr(ExoConfig) ref = NULL;
  g_auto(GStrv) ids = NULL;
  g_auto(GStrv) types = NULL;

  config = exo_config_load_data (json, strlen (json), NULL, test_lookup, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (exo_config_get_source_name (config), ==, "<data>");
  g_assert_cmpstr (exo_config_get_node_id (config), ==, "auto");
  g_assert_null (exo_config_get_node_name (config));
  g_assert_null (exo_config_get_cluster_key_file (config));
  ids = exo_config_get_resource_ids (config);
  types = exo_config_get_resource_types (config);
  g_assert_cmpuint (g_strv_length (ids), ==, 0);
  g_assert_cmpuint (g_strv_length (types), ==, 0);

  ref = exo_config_ref (config);
  g_assert_true (ref == config);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/exo/config/good/load", test_good_load);
  g_test_add_func ("/exo/config/good/build", test_good_build);
  g_test_add_func ("/exo/config/good/build-twice", test_good_build_twice);
  g_test_add_func ("/exo/config/good/integer-kinds", test_integer_kinds);
  g_test_add_func ("/exo/config/good/initialize", test_good_initialize);
  g_test_add_func ("/exo/config/good/data", test_load_data_defaults);
  g_test_add_func ("/exo/config/good/default-config", test_default_config);
  g_test_add_func ("/exo/config/build/existing-member", test_build_refuses_existing_member);
  g_test_add_func ("/exo/config/deprecated/old-spelling", test_old_spelling);
  g_test_add_func ("/exo/config/deprecated/new-spelling", test_new_spelling);
  g_test_add_func ("/exo/config/build/rollback", test_build_rolls_back);

  test_config_register_errors ();
  test_config_register_limits ();

  return g_test_run ();
}
