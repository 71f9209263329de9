/* test-dbus-signals.c: properties mirrored on the bus, PropertiesChanged
 * coalesced, StateChanged sent in the order the resources changed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-dbus (main() in test-dbus.c).  One thread: the export, the
 * client's Recorder and the resources share the thread-default main context.
 */
#include "dbus-fixture.h"

/* --- properties and signals -------------------------------------------------- */

static void
test_properties_mirror (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(GVariant) value = NULL;
  g_autofree char *state = NULL;
  g_autofree char *last_error = NULL;
  gint64 before = g_get_real_time ();
  GVariant *changed;
  const char *path = RESOURCE_PATH ("api");

  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->root), NULL));
  barrier (f);

  state = get_string (f, path, "org.exo.Resource1", "State");
  g_assert_cmpstr (state, ==, "ready");
  value = get_property (f, path, "org.exo.Resource1", "Healthy");
  g_assert_true (g_variant_get_boolean (value));
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (f, path, "org.exo.Resource1", "InitializedAt");
  g_assert_cmpuint (g_variant_get_uint64 (value), >=, (guint64) before);
  g_assert_cmpuint (g_variant_get_uint64 (value), ==,
                    (guint64) exo_resource_get_initialized_at (EXO_RESOURCE (f->api)));
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (f, path, "org.exo.Resource1", "StateChangedAt");
  g_assert_cmpuint (g_variant_get_uint64 (value), ==,
                    (guint64) exo_resource_get_state_changed_at (EXO_RESOURCE (f->api)));
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (f, path, "org.exo.Resource1", "Type");
  g_assert_cmpstr (g_variant_get_string (value, NULL), ==,
                   exo_resource_get_resource_type (EXO_RESOURCE (f->api)));
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (f, path, "org.exo.Resource1", "Metrics");
  g_assert_cmpstr (g_variant_get_type_string (value), ==, "a{sv}");
  g_clear_pointer (&value, g_variant_unref);
  last_error = get_string (f, path, "org.exo.Resource1", "LastError");
  g_assert_cmpstr (last_error, ==, "");

  /* Pool counters (the pool notifies them at most every 25 ms). */
  g_assert_cmpuint (exo_resource_pool_get_size (f->pool), >=, 1);
  for (gint64 end = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;; )
    {
      value = get_property (f, path_of (f, f->pool), "org.exo.ResourcePool1", "Size");
      if (g_variant_get_uint32 (value) == exo_resource_pool_get_size (f->pool))
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_clear_pointer (&value, g_variant_unref);
      exo_test_spin (10);
    }
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (f, path_of (f, f->pool), "org.exo.ResourcePool1", "MaxSize");
  g_assert_cmpuint (g_variant_get_uint32 (value), ==, 4);
  g_clear_pointer (&value, g_variant_unref);

  /* DisplayName follows notify::display-name. */
  exo_resource_set_display_name (EXO_RESOURCE (f->api), "The API");
  barrier (f);
  changed = pc_last (f, path, "org.exo.Resource1");
  g_assert_nonnull (changed);
  value = g_variant_lookup_value (changed, "DisplayName", G_VARIANT_TYPE_STRING);
  g_assert_nonnull (value);
  g_assert_cmpstr (g_variant_get_string (value, NULL), ==, "The API");
  g_clear_pointer (&value, g_variant_unref);

  /* A failure: LastError, ErrorCount, Healthy. */
  {
    g_autoptr(GError) error = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                                                   "disk is on fire");

    exo_resource_report_health (EXO_RESOURCE (f->api), FALSE, error);
  }
  barrier (f);
  g_clear_pointer (&state, g_free);
  state = get_string (f, path, "org.exo.Resource1", "State");
  g_assert_cmpstr (state, ==, "degraded");
  g_clear_pointer (&last_error, g_free);
  last_error = get_string (f, path, "org.exo.Resource1", "LastError");
  g_assert_cmpstr (last_error, ==, "disk is on fire");
  value = get_property (f, path, "org.exo.Resource1", "ErrorCount");
  g_assert_cmpuint (g_variant_get_uint32 (value), ==, exo_resource_get_error_count (EXO_RESOURCE (f->api)));
  g_assert_cmpuint (g_variant_get_uint32 (value), >=, 1);
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (f, path, "org.exo.Resource1", "Healthy");
  g_assert_false (g_variant_get_boolean (value));
  g_assert_true (strv_has (f->rec.state_changes,
                           RESOURCE_PATH ("api") " ready>degraded:disk is on fire"));
}

static void
test_signals_state_changed (Fixture       *f,
                            gconstpointer  data)
{
  const char *path = RESOURCE_PATH ("db");
  GVariant *changed;
  g_autoptr(GVariant) state = NULL;
  g_autoptr(GVariant) healthy = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->db), NULL));
  wait_for_string (f->rec.state_changes, RESOURCE_PATH ("db") " initializing>ready:");
  g_assert_true (strv_has (f->rec.state_changes, RESOURCE_PATH ("db") " uninitialized>initializing:"));
  barrier (f);

  g_assert_cmpuint (pc_count (f, path, "org.exo.Resource1"), >=, 1);
  changed = pc_last (f, path, "org.exo.Resource1");
  state = g_variant_lookup_value (changed, "State", G_VARIANT_TYPE_STRING);
  g_assert_nonnull (state);
  g_assert_cmpstr (g_variant_get_string (state, NULL), ==, "ready");
  healthy = g_variant_lookup_value (changed, "Healthy", G_VARIANT_TYPE_BOOLEAN);
  g_assert_nonnull (healthy);
  g_assert_true (g_variant_get_boolean (healthy));

  /* A failed initialize carries the error message. */
  f->api->fail_inits = 1;
  f->api->fail_fatal = TRUE;
  g_assert_false (exo_test_initialize (EXO_RESOURCE (f->api), NULL));
  barrier (f);
  {
    gboolean found = FALSE;

    for (guint i = 0; i < f->rec.state_changes->len; i++)
      {
        const char *line = g_ptr_array_index (f->rec.state_changes, i);

        if (g_str_has_prefix (line, RESOURCE_PATH ("api") " initializing>error:") &&
            strlen (line) > strlen (RESOURCE_PATH ("api") " initializing>error:"))
          found = TRUE;
      }
    g_assert_true (found);
  }
}

/* 10,000 transitions in one main-loop iteration: one StateChanged each, at
 * most one PropertiesChanged. */
static void
test_signals_coalesced (Fixture       *f,
                        gconstpointer  data)
{
  const char *path = RESOURCE_PATH ("db");
  const guint n = 10000;
  g_autoptr(GError) unhealthy = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                                                     "flapping");
  GVariant *changed;
  g_autoptr(GVariant) state_changed_at = NULL;

  /* No recovery attempt may come in between. */
  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (f->db), FALSE);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->db), NULL));
  barrier (f);
  g_hash_table_remove_all (f->rec.pc_counts);
  g_hash_table_remove_all (f->rec.pc_last);
  g_ptr_array_set_size (f->rec.state_changes, 0);

  for (guint i = 0; i < n; i++)
    exo_resource_report_health (EXO_RESOURCE (f->db), i % 2 == 1, unhealthy);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->db)), ==, EXO_RESOURCE_STATE_READY);

  wait_for_count (f->rec.state_changes, n);
  barrier (f);
  g_assert_cmpuint (f->rec.state_changes->len, ==, n);
  g_assert_cmpstr (g_ptr_array_index (f->rec.state_changes, 0), ==,
                   RESOURCE_PATH ("db") " ready>degraded:flapping");
  g_assert_cmpstr (g_ptr_array_index (f->rec.state_changes, n - 1), ==,
                   RESOURCE_PATH ("db") " degraded>ready:");

  g_test_message ("PropertiesChanged for %u state changes: %u", n,
                  pc_count (f, path, "org.exo.Resource1"));
  g_assert_cmpuint (pc_count (f, path, "org.exo.Resource1"), ==, 1);
  changed = pc_last (f, path, "org.exo.Resource1");
  state_changed_at = g_variant_lookup_value (changed, "StateChangedAt", G_VARIANT_TYPE_UINT64);
  g_assert_nonnull (state_changed_at);
  g_assert_cmpuint (g_variant_get_uint64 (state_changed_at), ==,
                    (guint64) exo_resource_get_state_changed_at (EXO_RESOURCE (f->db)));
  /* Other objects saw nothing of it. */
  g_assert_cmpuint (pc_count (f, RESOURCE_PATH ("api"), "org.exo.Resource1"), ==, 0);
}

/* Regression: a member that falls while its group initializes is rolled
 * back.  The export's handler is connected after the group's; it must still
 * send every transition in order (ready>error before error>closing), the
 * same sequence as a handler in the process sees. */
static void
local_order_cb (ExoResource *r, ExoResourceState o, ExoResourceState n, gpointer data)
{
  g_ptr_array_add (data, g_strdup_printf ("%s>%s", exo_resource_state_to_string (o),
                                          exo_resource_state_to_string (n)));
}

static gboolean
fail_db_cb (gpointer data)
{
  g_autoptr(GError) error = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                                                 "db connection dropped");

  exo_resource_report_error (EXO_RESOURCE (data), error);
  return G_SOURCE_REMOVE;
}

static void
test_signals_state_changed_order (Fixture       *f,
                                  gconstpointer  data)
{
  const char *prefix = RESOURCE_PATH ("db") " ";
  g_autoptr(GPtrArray) local = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) remote = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GAsyncResult) result = NULL;

  g_signal_connect (f->db, "state-changed", G_CALLBACK (local_order_cb), local);
  f->api->init_delay_ms = 300;
  exo_resource_initialize_async (EXO_RESOURCE (f->root), NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (f->db), EXO_RESOURCE_STATE_READY, WAIT_MS));
  g_timeout_add (0, fail_db_cb, f->db);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (f->root), result, NULL));
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (f->db), EXO_RESOURCE_STATE_CLOSED, WAIT_MS));
  barrier (f);

  for (guint i = 0; i < f->rec.state_changes->len; i++)
    {
      const char *line = g_ptr_array_index (f->rec.state_changes, i);

      if (g_str_has_prefix (line, prefix))
        g_ptr_array_add (remote, g_strndup (line + strlen (prefix),
                                            strcspn (line + strlen (prefix), ":")));
    }
  g_assert_cmpuint (remote->len, ==, local->len);
  for (guint i = 0; i < local->len; i++)
    {
      g_assert_cmpstr (g_ptr_array_index (remote, i), ==, g_ptr_array_index (local, i));
      if (i > 0)
        {
          const char *prev = strchr (g_ptr_array_index (local, i - 1), '>') + 1;
          const char *cur = g_ptr_array_index (local, i);

          g_assert_true (strncmp (cur, prev, strlen (prev)) == 0 && cur[strlen (prev)] == '>');
        }
    }
  g_assert_true (strv_has (local, "ready>error"));
  g_assert_true (strv_has (local, "error>closing"));
}

/* --- registration ---------------------------------------------------- */

void
test_dbus_register_signals (void)
{
  ADD ("/exo/dbus/properties/mirror", test_properties_mirror);
  ADD ("/exo/dbus/signals/state-changed", test_signals_state_changed);
  ADD ("/exo/dbus/signals/coalesced", test_signals_coalesced);
  ADD ("/exo/dbus/signals/state-changed-order", test_signals_state_changed_order);
}
