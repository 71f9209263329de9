/* config-fixture.c: TestKinds — a resource type with a property of each
 * kind a config can set — and the lookup and file helpers of test-config.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The types are registered once (g_once) from whichever thread asks first;
 * the rest runs in the test's thread.  Sample configs are read from
 * tests/configs/ through G_TEST_SRCDIR.
 */
#include "config-fixture.h"

/* ------------------------------------------------------------------------ */
/* A resource type with a property of each kind a config can set.           */

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

GType
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

char *
config_path (const char *name)
{
  return g_test_build_filename (G_TEST_DIST, "configs", name, NULL);
}

ExoConfig *
load_good (void)
{
  g_autofree char *path = config_path ("good.json");
  g_autoptr(GError) error = NULL;
  ExoConfig *config = exo_config_load_file (path, test_lookup, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (config);
  return config;
}

int
strv_index (char       **strv,
            const char  *str)
{
  for (int i = 0; strv[i] != NULL; i++)
    if (g_str_equal (strv[i], str))
      return i;
  return -1;
}

void
assert_strv (char       **actual,
             const char  *expected)
{
  g_autofree char *joined = g_strjoinv (",", actual);
  g_assert_cmpstr (joined, ==, expected);
}
