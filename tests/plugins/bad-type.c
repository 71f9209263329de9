/* bad-type.c: a test plugin that registers a type not derived from
 * ExoResource; the loader refuses the whole plugin.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <exo/exo.h>

#define TEST_TYPE_BAD_OBJECT (test_bad_object_get_type ())
G_DECLARE_FINAL_TYPE (TestBadObject, test_bad_object, TEST, BAD_OBJECT, GObject)

struct _TestBadObject
{
  GObject parent_instance;
};

G_DEFINE_FINAL_TYPE (TestBadObject, test_bad_object, G_TYPE_OBJECT)

static void
test_bad_object_class_init (TestBadObjectClass *klass)
{
}

static void
test_bad_object_init (TestBadObject *self)
{
}

static void
bad_type_register (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "test-bad", TEST_TYPE_BAD_OBJECT);
}

EXO_PLUGIN_DEFINE ("bad-type", "1.0.0", "Registers a type that is not a resource",
                   bad_type_register)
