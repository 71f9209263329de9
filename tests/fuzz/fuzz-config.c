/* fuzz-config.c: the config loader (src/daemon/exo-config.c), as
 * `exo-node --config` and `--check-config` use it: load the text, then
 * build the resources into a throw-away root group.
 *
 * Types: the plugins of the build tree (EXO_FUZZ_PLUGIN_DIR: http-server,
 * udp-discovery, node, dummy-inference, with their real settings), plus
 * "kinds", a resource with a setting of every kind a config can set, and
 * "group".  Plugins are loaded once per process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-common.h"
#include "exo-config.h"

typedef enum { FUZZ_LEVEL_LOW, FUZZ_LEVEL_HIGH } FuzzLevel;
typedef enum { FUZZ_FEATURE_A = 1, FUZZ_FEATURE_B = 2 } FuzzFeatures;

static GType
fuzz_level_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    { FUZZ_LEVEL_LOW, "FUZZ_LEVEL_LOW", "low" },
    { FUZZ_LEVEL_HIGH, "FUZZ_LEVEL_HIGH", "high" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type, g_enum_register_static ("FuzzLevel", values));
  return type;
}

static GType
fuzz_features_get_type (void)
{
  static gsize type = 0;
  static const GFlagsValue values[] = {
    { FUZZ_FEATURE_A, "FUZZ_FEATURE_A", "a" },
    { FUZZ_FEATURE_B, "FUZZ_FEATURE_B", "b" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (&type, g_flags_register_static ("FuzzFeatures", values));
  return type;
}

#define FUZZ_TYPE_KINDS (fuzz_kinds_get_type ())
G_DECLARE_FINAL_TYPE (FuzzKinds, fuzz_kinds, FUZZ, KINDS, ExoResource)

struct _FuzzKinds
{
  ExoResource parent_instance;
  GValue      values[11];   /* by property id, 1 to 10 */
};

G_DEFINE_FINAL_TYPE (FuzzKinds, fuzz_kinds, EXO_TYPE_RESOURCE)

static void
fuzz_kinds_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  FuzzKinds *self = FUZZ_KINDS (object);

  if (G_IS_VALUE (&self->values[prop_id]))
    g_value_copy (&self->values[prop_id], value);
}

static void
fuzz_kinds_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  FuzzKinds *self = FUZZ_KINDS (object);

  if (G_IS_VALUE (&self->values[prop_id]))
    g_value_unset (&self->values[prop_id]);
  g_value_init (&self->values[prop_id], G_VALUE_TYPE (value));
  g_value_copy (value, &self->values[prop_id]);
}

static void
fuzz_kinds_finalize (GObject *object)
{
  FuzzKinds *self = FUZZ_KINDS (object);

  for (guint i = 0; i < G_N_ELEMENTS (self->values); i++)
    if (G_IS_VALUE (&self->values[i]))
      g_value_unset (&self->values[i]);
  G_OBJECT_CLASS (fuzz_kinds_parent_class)->finalize (object);
}

static void
fuzz_kinds_class_init (FuzzKindsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  object_class->get_property = fuzz_kinds_get_property;
  object_class->set_property = fuzz_kinds_set_property;
  object_class->finalize = fuzz_kinds_finalize;
  exo_resource_class_set_resource_type (EXO_RESOURCE_CLASS (klass), "kinds");

  g_object_class_install_property (object_class, 1, g_param_spec_int ("count", NULL, NULL, -10, 100, 0, rw));
  g_object_class_install_property (object_class, 2, g_param_spec_uint ("port", NULL, NULL, 0, 65535, 80, rw));
  g_object_class_install_property (object_class, 3, g_param_spec_int64 ("big", NULL, NULL, G_MININT64, G_MAXINT64, 0, rw));
  g_object_class_install_property (object_class, 4, g_param_spec_double ("ratio", NULL, NULL, 0, 1, 0.5, rw));
  g_object_class_install_property (object_class, 5, g_param_spec_boolean ("enabled", NULL, NULL, FALSE, rw));
  g_object_class_install_property (object_class, 6, g_param_spec_string ("label", NULL, NULL, NULL, rw));
  g_object_class_install_property (object_class, 7, g_param_spec_enum ("level", NULL, NULL, fuzz_level_get_type (), FUZZ_LEVEL_LOW, rw));
  g_object_class_install_property (object_class, 8, g_param_spec_boxed ("tags", NULL, NULL, G_TYPE_STRV, rw));
  g_object_class_install_property (object_class, 9, g_param_spec_flags ("features", NULL, NULL, fuzz_features_get_type (), 0, rw));
  g_object_class_install_property (object_class, 10, g_param_spec_uint64 ("huge", NULL, NULL, 0, G_MAXUINT64, 0, rw));
}

static void
fuzz_kinds_init (FuzzKinds *self)
{
}

static ExoPluginLoader *loader;

static GType
lookup (const char *type_name,
        gpointer    user_data)
{
  if (g_str_equal (type_name, "kinds"))
    return FUZZ_TYPE_KINDS;
  if (g_str_equal (type_name, "group"))
    return EXO_TYPE_RESOURCE_GROUP;
  return loader != NULL ? exo_plugin_loader_lookup_type (loader, type_name) : G_TYPE_INVALID;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(ExoConfig) config = NULL;
  g_autoptr(GError) error = NULL;

  exo_fuzz_init ();
  if (loader == NULL)
    {
      const char *dir = g_getenv ("EXO_FUZZ_PLUGIN_DIR");

      loader = exo_plugin_loader_new ();
      exo_plugin_loader_add_search_dir (loader, dir != NULL ? dir : EXO_FUZZ_PLUGIN_DIR);
      exo_plugin_loader_load_all (loader, NULL);
      g_type_ensure (FUZZ_TYPE_KINDS);
    }

  config = exo_config_load_data ((const char *) data, (gssize) size, "fuzz.json", lookup, NULL, &error);
  if (config == NULL)
    {
      if (g_getenv ("EXO_FUZZ_VERBOSE") != NULL)
        fprintf (stderr, "%s\n", error->message);
      EXO_FUZZ_CHECK (error != NULL && error->domain == EXO_CONFIG_ERROR, "no config error");
      EXO_FUZZ_CHECK (g_str_has_prefix (error->message, "fuzz.json"), "%s", error->message);
      return 0;
    }
  {
    g_autoptr(ExoResourceGroup) root = exo_resource_group_new ("root");
    g_autoptr(GError) build_error = NULL;

    if (!exo_config_build (config, root, &build_error))
      EXO_FUZZ_CHECK (build_error != NULL, "build failed without an error");
    if (g_getenv ("EXO_FUZZ_VERBOSE") != NULL)
      fprintf (stderr, "built: %s\n", build_error != NULL ? build_error->message : "ok");
  }
  return 0;
}
