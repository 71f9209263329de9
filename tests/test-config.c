/* test-config.c: the daemon's JSON config: schema, settings, errors with
 * file, line and key, limits, building into a group.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"
#include "exo-config.h"

#include <glib/gstdio.h>

/* ------------------------------------------------------------------------ */
/* A resource type with a property of each kind a config can set.           */

typedef enum {
  TEST_LEVEL_LOW,
  TEST_LEVEL_NORMAL,
  TEST_LEVEL_HIGH,
} TestLevel;

typedef enum {
  TEST_FEATURE_ALPHA = 1 << 0,
  TEST_FEATURE_BETA  = 1 << 1,
  TEST_FEATURE_GAMMA = 1 << 2,
} TestFeatures;

static GType
test_level_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    { TEST_LEVEL_LOW, "TEST_LEVEL_LOW", "low" },
    { TEST_LEVEL_NORMAL, "TEST_LEVEL_NORMAL", "normal" },
    { TEST_LEVEL_HIGH, "TEST_LEVEL_HIGH", "high" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type, g_enum_register_static ("TestLevel", values));
  return type;
}

static GType
test_features_get_type (void)
{
  static gsize type = 0;
  static const GFlagsValue values[] = {
    { TEST_FEATURE_ALPHA, "TEST_FEATURE_ALPHA", "alpha" },
    { TEST_FEATURE_BETA, "TEST_FEATURE_BETA", "beta" },
    { TEST_FEATURE_GAMMA, "TEST_FEATURE_GAMMA", "gamma" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type, g_flags_register_static ("TestFeatures", values));
  return type;
}

#define TEST_TYPE_KINDS (test_kinds_get_type ())
G_DECLARE_FINAL_TYPE (TestKinds, test_kinds, TEST, KINDS, ExoResource)

struct _TestKinds
{
  ExoResource  parent_instance;

  int          count;
  guint        port;
  gint64       big;
  double       ratio;
  gboolean     enabled;
  char        *label;
  TestLevel    level;
  char       **tags;
  TestFeatures features;
  char        *mode;            /* construct-only */
  char        *mode_at_constructed;
  char        *token;           /* lower-case letters only (the GParamSpec's cset) */
  gint8        tiny;            /* the other integer types, with odd ranges */
  guint8       byte;
  glong        wide;
  gulong       uwide;
  guint64      huge;
};

G_DEFINE_FINAL_TYPE (TestKinds, test_kinds, EXO_TYPE_RESOURCE)

enum {
  PROP_0,
  PROP_COUNT,
  PROP_PORT,
  PROP_BIG,
  PROP_RATIO,
  PROP_ENABLED,
  PROP_LABEL,
  PROP_LEVEL,
  PROP_TAGS,
  PROP_FEATURES,
  PROP_MODE,
  PROP_TOKEN,
  PROP_COMPUTED,
  PROP_TINY,
  PROP_BYTE,
  PROP_WIDE,
  PROP_UWIDE,
  PROP_HUGE,
  N_PROPS
};

static GParamSpec *kinds_properties[N_PROPS];

static void
test_kinds_constructed (GObject *object)
{
  TestKinds *self = TEST_KINDS (object);

  G_OBJECT_CLASS (test_kinds_parent_class)->constructed (object);
  self->mode_at_constructed = g_strdup (self->mode);
}

static void
test_kinds_finalize (GObject *object)
{
  TestKinds *self = TEST_KINDS (object);

  g_free (self->label);
  g_strfreev (self->tags);
  g_free (self->mode);
  g_free (self->mode_at_constructed);
  g_free (self->token);
  G_OBJECT_CLASS (test_kinds_parent_class)->finalize (object);
}

static void
test_kinds_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  TestKinds *self = TEST_KINDS (object);

  switch (prop_id)
    {
    case PROP_COUNT: g_value_set_int (value, self->count); break;
    case PROP_PORT: g_value_set_uint (value, self->port); break;
    case PROP_BIG: g_value_set_int64 (value, self->big); break;
    case PROP_RATIO: g_value_set_double (value, self->ratio); break;
    case PROP_ENABLED: g_value_set_boolean (value, self->enabled); break;
    case PROP_LABEL: g_value_set_string (value, self->label); break;
    case PROP_LEVEL: g_value_set_enum (value, self->level); break;
    case PROP_TAGS: g_value_set_boxed (value, self->tags); break;
    case PROP_FEATURES: g_value_set_flags (value, self->features); break;
    case PROP_MODE: g_value_set_string (value, self->mode); break;
    case PROP_TOKEN: g_value_set_string (value, self->token); break;
    case PROP_COMPUTED: g_value_set_uint (value, 42); break;
    case PROP_TINY: g_value_set_schar (value, self->tiny); break;
    case PROP_BYTE: g_value_set_uchar (value, self->byte); break;
    case PROP_WIDE: g_value_set_long (value, self->wide); break;
    case PROP_UWIDE: g_value_set_ulong (value, self->uwide); break;
    case PROP_HUGE: g_value_set_uint64 (value, self->huge); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
test_kinds_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  TestKinds *self = TEST_KINDS (object);

  switch (prop_id)
    {
    case PROP_COUNT: self->count = g_value_get_int (value); break;
    case PROP_PORT: self->port = g_value_get_uint (value); break;
    case PROP_BIG: self->big = g_value_get_int64 (value); break;
    case PROP_RATIO: self->ratio = g_value_get_double (value); break;
    case PROP_ENABLED: self->enabled = g_value_get_boolean (value); break;
    case PROP_LABEL: g_free (self->label); self->label = g_value_dup_string (value); break;
    case PROP_LEVEL: self->level = g_value_get_enum (value); break;
    case PROP_TAGS: g_strfreev (self->tags); self->tags = g_value_dup_boxed (value); break;
    case PROP_FEATURES: self->features = g_value_get_flags (value); break;
    case PROP_MODE: g_free (self->mode); self->mode = g_value_dup_string (value); break;
    case PROP_TOKEN: g_free (self->token); self->token = g_value_dup_string (value); break;
    case PROP_TINY: self->tiny = g_value_get_schar (value); break;
    case PROP_BYTE: self->byte = g_value_get_uchar (value); break;
    case PROP_WIDE: self->wide = g_value_get_long (value); break;
    case PROP_UWIDE: self->uwide = g_value_get_ulong (value); break;
    case PROP_HUGE: self->huge = g_value_get_uint64 (value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
test_kinds_class_init (TestKindsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

  object_class->constructed = test_kinds_constructed;
  object_class->finalize = test_kinds_finalize;
  object_class->get_property = test_kinds_get_property;
  object_class->set_property = test_kinds_set_property;

  exo_resource_class_set_resource_type (EXO_RESOURCE_CLASS (klass), "kinds");

  kinds_properties[PROP_COUNT] = g_param_spec_int ("count", NULL, NULL, -10, 100, 0, rw);
  kinds_properties[PROP_PORT] = g_param_spec_uint ("port", NULL, NULL, 0, 65535, 80, rw);
  kinds_properties[PROP_BIG] = g_param_spec_int64 ("big", NULL, NULL, G_MININT64, G_MAXINT64, 0, rw);
  kinds_properties[PROP_RATIO] = g_param_spec_double ("ratio", NULL, NULL, 0.0, 1.0, 0.5, rw);
  kinds_properties[PROP_ENABLED] = g_param_spec_boolean ("enabled", NULL, NULL, FALSE, rw);
  kinds_properties[PROP_LABEL] = g_param_spec_string ("label", NULL, NULL, NULL, rw);
  kinds_properties[PROP_LEVEL] = g_param_spec_enum ("level", NULL, NULL, test_level_get_type (),
                                                    TEST_LEVEL_NORMAL, rw);
  kinds_properties[PROP_TAGS] = g_param_spec_boxed ("tags", NULL, NULL, G_TYPE_STRV, rw);
  kinds_properties[PROP_FEATURES] = g_param_spec_flags ("features", NULL, NULL,
                                                        test_features_get_type (), 0, rw);
  kinds_properties[PROP_MODE] = g_param_spec_string ("mode", NULL, NULL, "slow",
                                                     G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                                     G_PARAM_STATIC_STRINGS);
  kinds_properties[PROP_TOKEN] = g_param_spec_string ("token", NULL, NULL, NULL, rw);
  G_PARAM_SPEC_STRING (kinds_properties[PROP_TOKEN])->cset_first = (char *) G_CSET_a_2_z;
  G_PARAM_SPEC_STRING (kinds_properties[PROP_TOKEN])->cset_nth = (char *) G_CSET_a_2_z;
  kinds_properties[PROP_COMPUTED] = g_param_spec_uint ("computed", NULL, NULL, 0, G_MAXUINT, 0,
                                                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  kinds_properties[PROP_TINY] = g_param_spec_char ("tiny", NULL, NULL, -5, 5, 0, rw);
  kinds_properties[PROP_BYTE] = g_param_spec_uchar ("byte", NULL, NULL, 1, 200, 1, rw);
  kinds_properties[PROP_WIDE] = g_param_spec_long ("wide", NULL, NULL, -1000000, 1000000, 0, rw);
  kinds_properties[PROP_UWIDE] = g_param_spec_ulong ("uwide", NULL, NULL, 0, 1000000, 0, rw);
  kinds_properties[PROP_HUGE] = g_param_spec_uint64 ("huge", NULL, NULL, 10, G_MAXUINT64, 10, rw);
  g_object_class_install_properties (object_class, N_PROPS, kinds_properties);
}

static void
test_kinds_init (TestKinds *self)
{
  self->byte = 1;
  self->huge = 10;
  self->port = 80;
  self->ratio = 0.5;
  self->level = TEST_LEVEL_NORMAL;
}

/* ------------------------------------------------------------------------ */
/* Lookup and helpers                                                       */

static GType
test_lookup (const char *type_name,
             gpointer    user_data)
{
  if (g_str_equal (type_name, "kinds"))
    return TEST_TYPE_KINDS;
  if (g_str_equal (type_name, "test"))
    return EXO_TYPE_TEST_RESOURCE;
  if (g_str_equal (type_name, "group"))
    return EXO_TYPE_RESOURCE_GROUP;
  if (g_str_equal (type_name, "abstract"))
    return EXO_TYPE_RESOURCE;
  if (g_str_equal (type_name, "plain-object"))
    return G_TYPE_OBJECT;
  /* The default config's engine, as some test type. */
  if (g_strcmp0 (user_data, "default") == 0 && g_str_equal (type_name, "dummy-inference"))
    return EXO_TYPE_TEST_RESOURCE;
  return G_TYPE_INVALID;
}

static char *
config_path (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "configs", name, NULL);
}

static ExoConfig *
load_good (void)
{
  g_autofree char *path = config_path ("good.json");
  g_autoptr(GError) error = NULL;
  ExoConfig *config = exo_config_load_file (path, test_lookup, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (config);
  return config;
}

static int
strv_index (char       **strv,
            const char  *str)
{
  for (int i = 0; strv[i] != NULL; i++)
    if (g_str_equal (strv[i], str))
      return i;
  return -1;
}

static void
assert_strv (char       **actual,
             const char  *expected)
{
  g_autofree char *joined = g_strjoinv (",", actual);
  g_assert_cmpstr (joined, ==, expected);
}

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
/* Errors in files: code and the exact message, with file and line          */

typedef struct {
  const char     *file;
  ExoConfigError  code;
  const char     *message;   /* after "PATH:" */
} ErrorCase;

static const ErrorCase error_cases[] = {
  { "syntax-error.json", EXO_CONFIG_ERROR_PARSE,
    "4: syntax error: trailing comma (column 35)" },
  { "missing-comma.json", EXO_CONFIG_ERROR_PARSE,
    "4: syntax error: missing ',' (column 15)" },
  { "unknown-top-level-key.json", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "3: resource: unknown key; did you mean 'resources'?" },
  { "missing-resources.json", EXO_CONFIG_ERROR_INVALID,
    "2: resources: required key is missing" },
  { "missing-id.json", EXO_CONFIG_ERROR_INVALID,
    "4: resources[1].id: required key is missing" },
  { "duplicate-id.json", EXO_CONFIG_ERROR_DUPLICATE_ID,
    "7: resources[2].id: duplicate id 'a' (resources[0], line 3, has it too)" },
  { "bad-id.json", EXO_CONFIG_ERROR_INVALID,
    "4: resources[0].id: the id 'my server' contains ' '; only letters, digits, '_', '.' and '-' are allowed" },
  { "unknown-type.json", EXO_CONFIG_ERROR_UNKNOWN_TYPE,
    "5: resources[0].type: unknown resource type 'http-sever'" },
  { "unknown-setting.json", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "8: resources[0].settings.prot: type 'kinds' has no setting 'prot'; did you mean 'port'?" },
  { "unknown-resource-key.json", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "5: resources[1].depend-on: unknown key; did you mean 'depends-on'?" },
  { "wrong-value-type.json", EXO_CONFIG_ERROR_WRONG_TYPE,
    "8: resources[1].settings.port: expected an integer, got a string" },
  { "out-of-range.json", EXO_CONFIG_ERROR_INVALID,
    "7: resources[0].settings.port: value 70000 is out of range (0 to 65535)" },
  { "bad-enum.json", EXO_CONFIG_ERROR_INVALID,
    "7: resources[0].settings.level: unknown value 'extreme' (expected one of: low, normal, high)" },
  { "rejected-by-pspec.json", EXO_CONFIG_ERROR_INVALID,
    "3: resources[0].settings.token: value not accepted by property 'token' of type TestKinds" },
  { "unknown-dependency.json", EXO_CONFIG_ERROR_MISSING_DEPENDENCY,
    "9: resources[1].depends-on[1]: resource 'discovery' depends on 'engine', which is not defined" },
  { "self-dependency.json", EXO_CONFIG_ERROR_CYCLE,
    "4: resources[0].depends-on[0]: resource 'a' depends on itself" },
  { "cycle.json", EXO_CONFIG_ERROR_CYCLE,
    "9: resources[1].depends-on[1]: dependency cycle: a -> b -> c -> a" },
  { "retry-not-managed.json", EXO_CONFIG_ERROR_INVALID,
    "6: resources[0].retry: 'retry' applies only to managed resources (ExoManagedResource), "
    "and type 'kinds' is not one" },
  { "bad-jitter.json", EXO_CONFIG_ERROR_INVALID,
    "8: resources[0].retry.jitter: unknown value 'partial' (expected one of: full, equal, decorrelated, none)" },
  { "bad-multiplier.json", EXO_CONFIG_ERROR_INVALID,
    "6: resources[0].retry.multiplier: must be a number >= 1 (got 0.5)" },
  { "huge-restart-burst.json", EXO_CONFIG_ERROR_INVALID,
    "6: resources[0].retry: restart-burst must be at most 10000 (got 4294967295)" },
  { "bad-retry-combination.json", EXO_CONFIG_ERROR_INVALID,
    "6: resources[0].retry: max-delay-ms (100) must not be less than initial-delay-ms (5000)" },
  { "duplicate-key.json", EXO_CONFIG_ERROR_PARSE,
    "5: resources[0].settings.port: key given twice in the same object" },
  { "group-key-not-group.json", EXO_CONFIG_ERROR_INVALID,
    "4: resources[0].strategy: 'strategy' applies only to resource groups (ExoResourceGroup), "
    "and type 'test' is not one" },
  { "not-a-setting.json", EXO_CONFIG_ERROR_INVALID,
    "4: resources[0].settings.init-timeout: 'init-timeout' is not a setting; "
    "use the resource key 'init-timeout-ms'" },
};

static void
test_error_file (gconstpointer data)
{
  const ErrorCase *c = data;
  g_autofree char *path = config_path (c->file);
  g_autofree char *expected = g_strdup_printf ("%s:%s", path, c->message);
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;

  config = exo_config_load_file (path, test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, (int) c->code);
  g_assert_cmpstr (error->message, ==, expected);
}

/* ------------------------------------------------------------------------ */
/* Errors in data given inline (source name "inline.json")                  */

typedef struct {
  const char     *name;
  const char     *json;
  ExoConfigError  code;
  const char     *message;   /* the whole message */
} InlineCase;

static const InlineCase inline_cases[] = {
  { "empty", "  \n", EXO_CONFIG_ERROR_PARSE,
    "inline.json:1: syntax error: the file holds no JSON value" },
  { "top-level-array", "[\n]\n", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:1: expected an object at the top level, got an array" },
  { "two-top-level-values", "{ \"resources\": [] }\n{ \"resources\": [] }\n", EXO_CONFIG_ERROR_PARSE,
    "inline.json:2: syntax error: unexpected text after the top-level value (column 1)" },
  { "stray-bracket", "{ \"resources\": [] }\n\n ]\n", EXO_CONFIG_ERROR_PARSE,
    "inline.json:3: syntax error: unexpected text after the top-level value (column 2)" },
  { "comment-after", "{ \"resources\": [] } // done\n", EXO_CONFIG_ERROR_PARSE,
    "inline.json:1: syntax error: unexpected text after the top-level value (column 21)" },
  { "not-utf8", "{ \"resources\": [], \"x\": \"\xff\" }", EXO_CONFIG_ERROR_PARSE,
    "inline.json:1: syntax error: invalid UTF-8 in a string (column 26)" },
  { "bareword", "{\n  \"resources\": tru\n}\n", EXO_CONFIG_ERROR_PARSE,
    "inline.json:2: syntax error: unexpected word 'tru', expected a value (column 16)" },
  { "resources-not-array", "{\n  \"resources\": {\n  }\n}\n", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources: expected an array, got an object" },
  { "resource-not-object", "{ \"resources\": [\n  \"a\"\n] }\n", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0]: expected an object, got a string" },
  { "empty-id", "{ \"resources\": [\n  { \"id\": \"\", \"type\": \"kinds\" }\n] }\n", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].id: the id is empty" },
  { "long-id", "{ \"resources\": [ { \"id\": "
    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"type\": \"kinds\" } ] }",
    EXO_CONFIG_ERROR_INVALID,
    "inline.json:1: resources[0].id: the id is longer than the limit of 64 characters" },
  { "id-not-string", "{ \"resources\": [ { \"id\": 7, \"type\": \"kinds\" } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:1: resources[0].id: expected a string, got an integer" },
  { "missing-type", "{ \"resources\": [\n  { \"id\": \"a\" }\n] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].type: required key is missing" },
  { "abstract-type", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"abstract\" } ] }",
    EXO_CONFIG_ERROR_UNKNOWN_TYPE,
    "inline.json:1: resources[0].type: resource type 'abstract' (ExoResource) is not an instantiable ExoResource" },
  { "not-a-resource", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"plain-object\" } ] }",
    EXO_CONFIG_ERROR_UNKNOWN_TYPE,
    "inline.json:1: resources[0].type: resource type 'plain-object' (GObject) is not an instantiable ExoResource" },
  { "bad-node-id", "{\n  \"node\": { \"id\": \"a/b\" },\n  \"resources\": []\n}", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: node.id: the id 'a/b' contains '/'; only letters, digits, '_', '.' and '-' are allowed" },
  { "unknown-node-key", "{\n  \"node\": { \"idd\": \"x\" },\n  \"resources\": []\n}", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "inline.json:2: node.idd: unknown key; did you mean 'id'?" },
  { "empty-key-file", "{\n  \"node\": { \"cluster-key-file\": \"\" },\n  \"resources\": []\n}",
    EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: node.cluster-key-file: expected the path of a file (1 to 4096 bytes)" },
  { "key-file-not-string", "{\n  \"node\": { \"cluster-key-file\": 1 },\n  \"resources\": []\n}",
    EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: node.cluster-key-file: expected a string, got an integer" },
  { "unknown-key-no-suggestion", "{ \"resources\": [], \"zzzzzz\": 1 }", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "inline.json:1: zzzzzz: unknown key (expected one of: node, resources)" },
  { "unknown-retry-key", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"test\",\n"
    "  \"retry\": { \"max-retry\": 1 } } ] }", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "inline.json:2: resources[0].retry.max-retry: unknown key; did you mean 'max-retries'?" },
  { "negative-timeout", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"test\",\n"
    "  \"init-timeout-ms\": -1 } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].init-timeout-ms: value -1 is out of range (0 to 4294967295)" },
  { "health-not-managed", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"health-check-interval-ms\": 100 } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].health-check-interval-ms: 'health-check-interval-ms' applies only to "
    "managed resources (ExoManagedResource), and type 'kinds' is not one" },
  { "bad-strategy", "{ \"resources\": [ { \"id\": \"g\", \"type\": \"group\",\n"
    "  \"strategy\": \"all-for-one\" } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].strategy: unknown value 'all-for-one' "
    "(expected one of: one-for-one, rest-for-one, one-for-all)" },
  { "read-only-setting", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"computed\": 1 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.computed: property 'computed' of type 'kinds' is read-only" },
  { "base-property-as-setting", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"id\": \"b\" } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.id: 'id' is not a setting; use the resource key 'id'" },
  { "underscore-setting", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"la_bel\": \"x\" } } ] }", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "inline.json:2: resources[0].settings.la_bel: type 'kinds' has no setting 'la_bel'; did you mean 'label'?" },
  { "unknown-setting-no-suggestion", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"test\",\n"
    "  \"settings\": { \"colour\": \"red\" } } ] }", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "inline.json:2: resources[0].settings.colour: type 'test' has no setting 'colour' "
    "(expected one of: auto-recover)" },
  { "double-for-int", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"count\": 1.5 } } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].settings.count: expected an integer, got a number" },
  { "negative-for-uint", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"port\": -1 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.port: value -1 is out of range (0 to 65535)" },
  { "below-int-minimum", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"count\": -11 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.count: value -11 is out of range (-10 to 100)" },
  { "int-wraps", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"count\": 4294967296 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.count: value 4294967296 is out of range (-10 to 100)" },
  { "uint-wraps", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"port\": 4294967376 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.port: value 4294967376 is out of range (0 to 65535)" },
  { "char-range", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"tiny\": 6 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.tiny: value 6 is out of range (-5 to 5)" },
  { "char-wraps", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"tiny\": 256 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.tiny: value 256 is out of range (-5 to 5)" },
  { "uchar-minimum", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"byte\": 0 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.byte: value 0 is out of range (1 to 200)" },
  { "uchar-negative", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"byte\": -56 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.byte: value -56 is out of range (1 to 200)" },
  { "long-range", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"wide\": -1000001 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.wide: value -1000001 is out of range (-1000000 to 1000000)" },
  { "ulong-negative", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"uwide\": -1 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.uwide: value -1 is out of range (0 to 1000000)" },
  { "uint64-negative", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"huge\": -1 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.huge: value -1 is out of range (10 to 18446744073709551615)" },
  { "uint64-minimum", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"huge\": 9 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.huge: value 9 is out of range (10 to 18446744073709551615)" },
  { "double-out-of-range", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"ratio\": 1.5 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.ratio: value 1.5 is out of range (0 to 1)" },
  { "bool-as-string", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"enabled\": \"yes\" } } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].settings.enabled: expected a boolean, got a string" },
  { "null-string", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"label\": null } } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].settings.label: expected a string, got null" },
  { "strv-element", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"tags\": [\"a\",\n  2] } } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:3: resources[0].settings.tags[1]: expected a string, got an integer" },
  { "strv-not-array", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"tags\": \"a\" } } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].settings.tags: expected an array of strings, got a string" },
  { "bad-flag", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"features\": \"alpha|delta\" } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.features: unknown flag 'delta' (expected some of: alpha, beta, gamma)" },
  { "settings-not-object", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": [] } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].settings: expected an object, got an array" },
  { "depends-on-not-array", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"depends-on\": \"b\" }, { \"id\": \"b\", \"type\": \"kinds\" } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].depends-on: expected an array, got a string" },
  { "depends-on-twice", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"depends-on\": [\"b\", \"b\"] }, { \"id\": \"b\", \"type\": \"kinds\" } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].depends-on[1]: 'b' is listed twice" },
  { "two-cycle-later", "{ \"resources\": [\n"
    "  { \"id\": \"a\", \"type\": \"kinds\", \"depends-on\": [\"b\"] },\n"
    "  { \"id\": \"b\", \"type\": \"kinds\", \"depends-on\": [\"c\"] },\n"
    "  { \"id\": \"c\", \"type\": \"kinds\", \"depends-on\": [\"b\"] } ] }", EXO_CONFIG_ERROR_CYCLE,
    "inline.json:3: resources[1].depends-on[0]: dependency cycle: b -> c -> b" },
  { "restart-burst-outside-retry", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"test\",\n"
    "  \"restart-burst\": 3 } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].restart-burst: 'restart-burst' applies only to resource groups "
    "(ExoResourceGroup), and type 'test' is not one; did you mean it inside 'retry'?" },
  { "both-spellings", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\", \"init-timeout-ms\": 1,\n"
    "  \"init-timeout\": 1 } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].init-timeout: 'init-timeout' and 'init-timeout-ms' are both given, "
    "but they are one key (the deprecated and the new spelling); keep only 'init-timeout-ms'" },
  { "both-spellings-retry", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"test\",\n"
    "  \"retry\": { \"restart-interval\": 10,\n    \"restart-interval-ms\": 10 } } ] }",
    EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].retry.restart-interval: 'restart-interval' and 'restart-interval-ms' "
    "are both given, but they are one key (the deprecated and the new spelling); "
    "keep only 'restart-interval-ms'" },
  { "old-spelling-not-in-retry", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"test\",\n"
    "  \"retry\": { \"init-timeout\": 10 } } ] }", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "inline.json:2: resources[0].retry.init-timeout: unknown key (expected one of: max-retries, "
    "initial-delay-ms, max-delay-ms, multiplier, jitter, restart-burst, restart-interval-ms)" },
  { "display-name-not-string", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"display-name\": false } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].display-name: expected a string, got a boolean" },
};

static void
test_error_inline (gconstpointer data)
{
  const InlineCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;

  config = exo_config_load_data (c->json, -1, "inline.json", test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, (int) c->code);
  g_assert_cmpstr (error->message, ==, c->message);
}

/* ------------------------------------------------------------------------ */
/* Limits and I/O                                                           */

static void
test_missing_file (void)
{
  g_autofree char *path = config_path ("does-not-exist.json");
  g_autofree char *expected = g_strdup_printf ("%s: cannot open: %s", path, g_strerror (ENOENT));
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;

  config = exo_config_load_file (path, test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_IO);
  g_assert_cmpstr (error->message, ==, expected);
}

static void
test_directory (void)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "configs", NULL);
  g_autofree char *expected = g_strdup_printf ("%s: cannot read: %s", path, g_strerror (EISDIR));
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;

  config = exo_config_load_file (path, test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_IO);
  g_assert_cmpstr (error->message, ==, expected);
}

/* A valid config padded with spaces to @size bytes. */
static char *
padded_config (gsize size)
{
  const char *json = "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\" } ] }";
  char *data = g_malloc (size + 1);

  g_assert_cmpuint (size, >=, strlen (json) + 1);
  memset (data, ' ', size);
  memcpy (data, json, strlen (json));
  data[size - 1] = '\n';
  data[size] = '\0';
  return data;
}

static void
test_file_too_large (void)
{
  g_autofree char *dir = g_dir_make_tmp ("exo-config-XXXXXX", NULL);
  g_autofree char *big = g_build_filename (dir, "big.json", NULL);
  g_autofree char *limit = g_build_filename (dir, "limit.json", NULL);
  g_autofree char *data = padded_config (EXO_CONFIG_MAX_FILE_SIZE + 1);
  g_autofree char *expected = g_strdup_printf ("%s: the config is larger than the limit of "
                                               "1048576 bytes (1 MiB)", big);
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;

  g_assert_nonnull (dir);
  g_assert_true (g_file_set_contents (big, data, EXO_CONFIG_MAX_FILE_SIZE + 1, NULL));
  config = exo_config_load_file (big, test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_LIMIT);
  g_assert_cmpstr (error->message, ==, expected);
  g_clear_error (&error);

  /* The same, given as data. */
  config = exo_config_load_data (data, EXO_CONFIG_MAX_FILE_SIZE + 1, "big.json", test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_LIMIT);
  g_assert_cmpstr (error->message, ==,
                   "big.json: the config is larger than the limit of 1048576 bytes (1 MiB)");
  g_clear_error (&error);

  /* Exactly the limit is allowed. */
  g_assert_true (g_file_set_contents (limit, data, EXO_CONFIG_MAX_FILE_SIZE, NULL));
  config = exo_config_load_file (limit, test_lookup, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (config);

  g_assert_cmpint (g_remove (big), ==, 0);
  g_assert_cmpint (g_remove (limit), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static char *
many_resources (guint n)
{
  GString *json = g_string_new ("{\n  \"resources\": [\n");

  for (guint i = 0; i < n; i++)
    g_string_append_printf (json, "    { \"id\": \"r%u\", \"type\": \"kinds\"%s }%s\n",
                            i, i > 0 ? ", \"depends-on\": [\"r0\"]" : "", i + 1 < n ? "," : "");
  g_string_append (json, "  ]\n}\n");
  return g_string_free (json, FALSE);
}

static void
test_too_many_resources (void)
{
  g_autofree char *at_limit = many_resources (EXO_CONFIG_MAX_RESOURCES);
  g_autofree char *over = many_resources (EXO_CONFIG_MAX_RESOURCES + 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;
  g_auto(GStrv) ids = NULL;

  config = exo_config_load_data (at_limit, -1, "many.json", test_lookup, NULL, &error);
  g_assert_no_error (error);
  ids = exo_config_get_resource_ids (config);
  g_assert_cmpuint (g_strv_length (ids), ==, EXO_CONFIG_MAX_RESOURCES);
  g_clear_pointer (&config, exo_config_unref);

  config = exo_config_load_data (over, -1, "many.json", test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_LIMIT);
  g_assert_cmpstr (error->message, ==,
                   "many.json:2: resources: 10001 resources are more than the limit of 10000");
}

/* A chain of 10 000 dependencies: checked without deep recursion. */
static void
test_long_chain (void)
{
  GString *json = g_string_new ("{ \"resources\": [\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;
  g_autofree char *data = NULL;
  guint n = EXO_CONFIG_MAX_RESOURCES;

  for (guint i = 0; i < n; i++)
    {
      g_string_append_printf (json, "{ \"id\": \"r%u\", \"type\": \"kinds\"", i);
      if (i + 1 < n)
        g_string_append_printf (json, ", \"depends-on\": [\"r%u\"]", i + 1);
      else
        g_string_append (json, ", \"depends-on\": [\"r0\"]");
      g_string_append (json, i + 1 < n ? " },\n" : " }\n");
    }
  g_string_append (json, "] }\n");
  data = g_string_free (json, FALSE);

  config = exo_config_load_data (data, -1, "chain.json", test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_CYCLE);
  g_assert_true (g_str_has_prefix (error->message,
                                   "chain.json:2: resources[0].depends-on[0]: dependency cycle: r0 -> r1 -> r2 -> "));
  g_assert_true (g_str_has_suffix (error->message, " -> r9999 -> r0"));
}

static void
test_too_deep (void)
{
  GString *json = g_string_new ("{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
                                "  \"settings\": { \"tags\": ");
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;
  g_autofree char *data = NULL;

  /* Far deeper than json-glib 1.6 survives without the limit. */
  for (guint i = 0; i < 200000; i++)
    g_string_append_c (json, '[');
  for (guint i = 0; i < 200000; i++)
    g_string_append_c (json, ']');
  g_string_append (json, " } } ] }\n");
  data = g_string_free (json, FALSE);

  config = exo_config_load_data (data, -1, "deep.json", test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_LIMIT);
  g_assert_cmpstr (error->message, ==,
                   "deep.json:2: objects and arrays nested deeper than the limit of 32 levels");
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

  for (gsize i = 0; i < G_N_ELEMENTS (error_cases); i++)
    {
      g_autofree char *name = g_strndup (error_cases[i].file, strlen (error_cases[i].file) - strlen (".json"));
      g_autofree char *test_path = g_strdup_printf ("/exo/config/error/file/%s", name);

      g_test_add_data_func (test_path, &error_cases[i], test_error_file);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (inline_cases); i++)
    {
      g_autofree char *test_path = g_strdup_printf ("/exo/config/error/inline/%s", inline_cases[i].name);

      g_test_add_data_func (test_path, &inline_cases[i], test_error_inline);
    }

  g_test_add_func ("/exo/config/limit/missing-file", test_missing_file);
  g_test_add_func ("/exo/config/limit/directory", test_directory);
  g_test_add_func ("/exo/config/limit/file-size", test_file_too_large);
  g_test_add_func ("/exo/config/limit/resources", test_too_many_resources);
  g_test_add_func ("/exo/config/limit/long-chain", test_long_chain);
  g_test_add_func ("/exo/config/limit/depth", test_too_deep);

  return g_test_run ();
}
