/* test-dbus-methods.c: the org.exo.Resource1 methods through the bus —
 * Restart, Initialize, Cleanup, CheckHealth, errors mapped to D-Bus names,
 * bad calls refused — and unexport.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-dbus (main() in test-dbus.c).  One thread: the export runs
 * the operations on the thread-default main context the client call spins.
 */
#include "dbus-fixture.h"

/* --- methods --------------------------------------------------------------- */

static void
test_methods_restart (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  const char *path = RESOURCE_PATH ("w1");
  const char *expected[] = {
    RESOURCE_PATH ("w1") " ready>closing:",
    RESOURCE_PATH ("w1") " closing>closed:",
    RESOURCE_PATH ("w1") " closed>initializing:",
    RESOURCE_PATH ("w1") " initializing>ready:",
  };
  guint n_init = 0;
  guint j = 0;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->w1), NULL));
  barrier (f);
  g_ptr_array_set_size (f->rec.state_changes, 0);
  n_init = f->w1->n_init_calls;

  reply = call (f, path, "org.exo.Resource1", "Restart", NULL, G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  /* The call returned when the restart was done. */
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->w1)), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpuint (f->w1->n_init_calls, ==, n_init + 1);
  g_assert_cmpuint (f->w1->n_cleanup_calls, >=, 1);
  barrier (f);
  for (guint i = 0; i < f->rec.state_changes->len && j < G_N_ELEMENTS (expected); i++)
    if (g_str_equal (g_ptr_array_index (f->rec.state_changes, i), expected[j]))
      j++;
  if (j != G_N_ELEMENTS (expected))
    {
      for (guint i = 0; i < f->rec.state_changes->len; i++)
        g_test_message ("seen: %s", (char *) g_ptr_array_index (f->rec.state_changes, i));
      g_error ("StateChanged sequence of Restart incomplete at %s", expected[j]);
    }
}

static void
test_methods_initialize_cleanup_health (Fixture       *f,
                                        gconstpointer  data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  const char *path = RESOURCE_PATH ("w2");
  gboolean healthy = FALSE;

  reply = call (f, path, "org.exo.Resource1", "Initialize", NULL, G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->w2)), ==, EXO_RESOURCE_STATE_READY);

  reply = call (f, path, "org.exo.Resource1", "CheckHealth", NULL, G_VARIANT_TYPE ("(b)"), &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(b)", &healthy);
  g_assert_true (healthy);
  g_clear_pointer (&reply, g_variant_unref);

  /* Unhealthy is an answer, not an error. */
  f->w2->healthy = FALSE;
  reply = call (f, path, "org.exo.Resource1", "CheckHealth", NULL, G_VARIANT_TYPE ("(b)"), &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(b)", &healthy);
  g_assert_false (healthy);
  g_clear_pointer (&reply, g_variant_unref);
  f->w2->healthy = TRUE;

  reply = call (f, path, "org.exo.Resource1", "Cleanup", NULL, G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->w2)), ==, EXO_RESOURCE_STATE_CLOSED);

  /* Groups answer too. */
  reply = call (f, RESOURCE_PATH ("root"), "org.exo.Resource1", "Initialize", NULL,
                G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->root)), ==, EXO_RESOURCE_STATE_READY);
}

static void
test_methods_errors_mapped (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoRetryPolicy) policy = exo_retry_policy_new ();
  g_autoptr(GAsyncResult) cleanup_result = NULL;
  g_autoptr(GVariant) value = NULL;

  /* Failed, with the resource's message. */
  f->api->fail_inits = 1;
  f->api->fail_fatal = TRUE;
  reply = call (f, RESOURCE_PATH ("api"), "org.exo.Resource1", "Initialize", NULL,
                G_VARIANT_TYPE_UNIT, &error);
  g_assert_null (reply);
  assert_dbus_error (error, EXO_DBUS_ERROR_FAILED);
  g_dbus_error_strip_remote_error (error);
  g_assert_cmpstr (error->message, ==,
                   exo_resource_get_last_error (EXO_RESOURCE (f->api))->message);
  g_clear_error (&error);

  /* Timeout. */
  policy->max_retries = 0;
  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (f->w1), policy);
  exo_resource_set_init_timeout (EXO_RESOURCE (f->w1), 50);
  f->w1->init_delay_ms = 60000;
  reply = call (f, RESOURCE_PATH ("w1"), "org.exo.Resource1", "Initialize", NULL,
                G_VARIANT_TYPE_UNIT, &error);
  g_assert_null (reply);
  assert_dbus_error (error, EXO_DBUS_ERROR_TIMEOUT);
  /* Registered: clients get G_IO_ERROR_TIMED_OUT back. */
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);

  /* InvalidState: initialize while the cleanup runs. */
  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->db), NULL));
  f->db->cleanup_delay_ms = 2000;
  exo_resource_cleanup_async (EXO_RESOURCE (f->db), NULL, exo_test_store_result, &cleanup_result);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->db)), ==, EXO_RESOURCE_STATE_CLOSING);
  reply = call (f, RESOURCE_PATH ("db"), "org.exo.Resource1", "Initialize", NULL,
                G_VARIANT_TYPE_UNIT, &error);
  g_assert_null (reply);
  assert_dbus_error (error, EXO_DBUS_ERROR_INVALID_STATE);
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE);
  g_clear_error (&error);
  g_assert_true (exo_test_wait_result (&cleanup_result, WAIT_MS));

  /* NotFound. */
  reply = call (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "GetResource",
                g_variant_new ("(s)", "no-such-thing"), G_VARIANT_TYPE ("(o)"), &error);
  g_assert_null (reply);
  assert_dbus_error (error, EXO_DBUS_ERROR_NOT_FOUND);
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* Still serving. */
  value = get_property (f, RESOURCE_PATH ("db"), "org.exo.Resource1", "State");
  g_assert_cmpstr (g_variant_get_string (value, NULL), ==, "closed");
}

static void
test_methods_bad_calls (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *state = NULL;

  /* Wrong argument types: GDBus refuses them, the export keeps running. */
  reply = call (f, RESOURCE_PATH ("db"), "org.exo.Resource1", "Restart",
                g_variant_new ("(s)", "x"), NULL, &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.freedesktop.DBus.Error.InvalidArgs");
  g_clear_error (&error);
  reply = call (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "GetResource",
                g_variant_new ("(i)", 42), NULL, &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.freedesktop.DBus.Error.InvalidArgs");
  g_clear_error (&error);
  reply = call (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "GetResource", NULL, NULL, &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.freedesktop.DBus.Error.InvalidArgs");
  g_clear_error (&error);
  reply = call (f, RESOURCE_PATH ("db"), "org.freedesktop.DBus.Properties", "Get",
                g_variant_new ("(su)", "org.exo.Resource1", 7), NULL, &error);
  g_assert_null (reply);
  g_assert_true (g_dbus_error_is_remote_error (error));   /* GDBus says UnknownMethod */
  g_clear_error (&error);

  /* Read-only properties. */
  reply = call (f, RESOURCE_PATH ("db"), "org.freedesktop.DBus.Properties", "Set",
                g_variant_new ("(ssv)", "org.exo.Resource1", "State", g_variant_new_string ("ready")),
                NULL, &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* Unknown objects, interfaces and methods. */
  reply = call (f, RESOURCE_PATH ("no_2dsuch"), "org.exo.Resource1", "Restart", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_true (g_dbus_error_is_remote_error (error));
  g_clear_error (&error);
  reply = call (f, RESOURCE_PATH ("no_2dsuch"), "org.freedesktop.DBus.Properties", "Get",
                g_variant_new ("(ss)", "org.exo.Resource1", "State"), NULL, &error);
  g_assert_null (reply);
  g_assert_true (g_dbus_error_is_remote_error (error));
  g_clear_error (&error);
  reply = call (f, RESOURCE_PATH ("db"), "org.exo.Resource1", "Explode", NULL, NULL, &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.freedesktop.DBus.Error.UnknownMethod");
  g_clear_error (&error);
  reply = call (f, RESOURCE_PATH ("db"), "org.exo.ResourcePool1", "Anything", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_true (g_dbus_error_is_remote_error (error));
  g_clear_error (&error);

  /* Still running and answering. */
  state = get_string (f, RESOURCE_PATH ("db"), "org.exo.Resource1", "State");
  g_assert_cmpstr (state, ==, "uninitialized");
  reply = call (f, RESOURCE_PATH ("db"), "org.exo.Resource1", "Initialize", NULL,
                G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
}
/* After unexport nothing is left on the bus. */
static void
test_unexport (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  exo_dbus_export_unexport (f->export);
  reply = call (f, EXO_DBUS_NODE_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  g_clear_error (&error);
  reply = call (f, EXO_DBUS_NODE_PATH, "org.freedesktop.DBus.Properties", "Get",
                g_variant_new ("(ss)", "org.exo.Node1", "NodeId"), NULL, &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* Changes no longer reach anybody, and nothing crashes. */
  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->root), NULL));
  exo_test_spin (20);
  g_assert_cmpuint (exo_dbus_export_get_n_objects (f->export), ==, 0);
}

/* --- registration ---------------------------------------------------- */

void
test_dbus_register_methods (void)
{
  ADD ("/exo/dbus/methods/restart", test_methods_restart);
  ADD ("/exo/dbus/methods/initialize-cleanup-health", test_methods_initialize_cleanup_health);
  ADD ("/exo/dbus/methods/errors-mapped", test_methods_errors_mapped);
  ADD ("/exo/dbus/methods/bad-calls", test_methods_bad_calls);
  ADD ("/exo/dbus/unexport", test_unexport);
}
