/* name-clash.c: a test plugin with the same name as good.c ("good") but its
 * own types: whichever of the two is loaded second is refused.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <exo/exo.h>

#define TEST_TYPE_CLASH_RESOURCE (test_clash_resource_get_type ())
G_DECLARE_FINAL_TYPE (TestClashResource, test_clash_resource, TEST, CLASH_RESOURCE, ExoResource)

struct _TestClashResource
{
  ExoResource parent_instance;
};

G_DEFINE_FINAL_TYPE (TestClashResource, test_clash_resource, EXO_TYPE_RESOURCE)

static void
test_clash_resource_do_initialize (ExoResource *resource,
                                   GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
test_clash_resource_do_cleanup (ExoResource *resource,
                                GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
test_clash_resource_class_init (TestClashResourceClass *klass)
{
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  resource_class->do_initialize = test_clash_resource_do_initialize;
  resource_class->do_cleanup = test_clash_resource_do_cleanup;
}

static void
test_clash_resource_init (TestClashResource *self)
{
}

static void
name_clash_register (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "test-clash", TEST_TYPE_CLASH_RESOURCE);
}

EXO_PLUGIN_DEFINE ("good", "9.9.9", "Another plugin named good", name_clash_register)
