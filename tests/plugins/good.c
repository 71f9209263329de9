/* good.c: a valid test plugin ("good") with two resource types.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <exo/exo.h>

#define TEST_TYPE_GOOD_RESOURCE (test_good_resource_get_type ())
G_DECLARE_FINAL_TYPE (TestGoodResource, test_good_resource, TEST, GOOD_RESOURCE, ExoResource)

struct _TestGoodResource
{
  ExoResource  parent_instance;

  guint        port;
  char        *greeting;
  gboolean     opened;
  guint        cleanup_delay_ms;   /* a slow cleanup, for shutdown tests */
};

enum {
  PROP_0,
  PROP_PORT,
  PROP_GREETING,
  PROP_OPENED,
  PROP_CLEANUP_DELAY_MS,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (TestGoodResource, test_good_resource, EXO_TYPE_RESOURCE)

static void
test_good_resource_do_initialize (ExoResource *resource,
                                  GTask       *task)
{
  TestGoodResource *self = TEST_GOOD_RESOURCE (resource);

  if (self->port == 0)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "port must not be 0");
      return;
    }

  self->opened = TRUE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_OPENED]);
  g_task_return_boolean (task, TRUE);
}

static gboolean
delayed_cleanup_cb (gpointer data)
{
  g_task_return_boolean (G_TASK (data), TRUE);
  return G_SOURCE_REMOVE;
}

static void
test_good_resource_do_cleanup (ExoResource *resource,
                               GTask       *task)
{
  TestGoodResource *self = TEST_GOOD_RESOURCE (resource);

  if (self->opened)
    {
      self->opened = FALSE;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_OPENED]);
    }
  if (self->cleanup_delay_ms > 0)
    {
      g_timeout_add_full (G_PRIORITY_DEFAULT, self->cleanup_delay_ms, delayed_cleanup_cb,
                          g_object_ref (task), g_object_unref);
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
test_good_resource_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  TestGoodResource *self = TEST_GOOD_RESOURCE (object);

  switch (prop_id)
    {
    case PROP_PORT:
      g_value_set_uint (value, self->port);
      break;
    case PROP_GREETING:
      g_value_set_string (value, self->greeting);
      break;
    case PROP_OPENED:
      g_value_set_boolean (value, self->opened);
      break;
    case PROP_CLEANUP_DELAY_MS:
      g_value_set_uint (value, self->cleanup_delay_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
test_good_resource_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  TestGoodResource *self = TEST_GOOD_RESOURCE (object);

  switch (prop_id)
    {
    case PROP_PORT:
      if (self->port != g_value_get_uint (value))
        {
          self->port = g_value_get_uint (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_GREETING:
      if (g_strcmp0 (self->greeting, g_value_get_string (value)) != 0)
        {
          g_free (self->greeting);
          self->greeting = g_value_dup_string (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_CLEANUP_DELAY_MS:
      self->cleanup_delay_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
test_good_resource_finalize (GObject *object)
{
  TestGoodResource *self = TEST_GOOD_RESOURCE (object);

  g_clear_pointer (&self->greeting, g_free);

  G_OBJECT_CLASS (test_good_resource_parent_class)->finalize (object);
}

static void
test_good_resource_class_init (TestGoodResourceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->finalize = test_good_resource_finalize;
  object_class->get_property = test_good_resource_get_property;
  object_class->set_property = test_good_resource_set_property;
  resource_class->do_initialize = test_good_resource_do_initialize;
  resource_class->do_cleanup = test_good_resource_do_cleanup;
  exo_resource_class_set_resource_type (resource_class, "test-good");

  properties[PROP_PORT] =
    g_param_spec_uint ("port", NULL, NULL, 0, G_MAXUINT16, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_GREETING] =
    g_param_spec_string ("greeting", NULL, NULL, "hello",
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_OPENED] =
    g_param_spec_boolean ("opened", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_CLEANUP_DELAY_MS] =
    g_param_spec_uint ("cleanup-delay-ms", NULL, NULL, 0, 600000, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
test_good_resource_init (TestGoodResource *self)
{
  self->greeting = g_strdup ("hello");
}

/* A second type, derived from ExoManagedResource: a subclass of a subclass
 * of ExoResource is accepted. */
#define TEST_TYPE_GOOD_MANAGED (test_good_managed_get_type ())
G_DECLARE_FINAL_TYPE (TestGoodManaged, test_good_managed, TEST, GOOD_MANAGED, ExoManagedResource)

struct _TestGoodManaged
{
  ExoManagedResource parent_instance;
};

G_DEFINE_FINAL_TYPE (TestGoodManaged, test_good_managed, EXO_TYPE_MANAGED_RESOURCE)

static void
test_good_managed_do_initialize (ExoResource *resource,
                                 GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
test_good_managed_do_cleanup (ExoResource *resource,
                              GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
test_good_managed_class_init (TestGoodManagedClass *klass)
{
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  resource_class->do_initialize = test_good_managed_do_initialize;
  resource_class->do_cleanup = test_good_managed_do_cleanup;
}

static void
test_good_managed_init (TestGoodManaged *self)
{
}

static void
good_register (ExoPluginRegistrar *registrar)
{
  g_assert_cmpstr (exo_plugin_registrar_get_plugin_name (registrar), ==, "good");

  exo_plugin_registrar_add_type (registrar, "test-good", TEST_TYPE_GOOD_RESOURCE);
  exo_plugin_registrar_add_type (registrar, "test-good-managed", TEST_TYPE_GOOD_MANAGED);
}

EXO_PLUGIN_DEFINE ("good", "1.2.3", "A plugin the loader accepts", good_register)
