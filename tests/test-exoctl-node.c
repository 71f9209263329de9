/* test-exoctl-node.c: exoctl against the real exo-node ($EXO_NODE, with the
 * plugins in $EXO_TEST_PLUGIN_DIR; skipped when it is not built), started on
 * the private bus of exoctl-fake-node.c under its own bus name: list, node,
 * tree, stop/start/restart seen by watch, health, status, is-active,
 * is-failed and show, the bash completion of its ids, and the node going
 * away under a running watch.
 *
 * Rules: the test's main context runs the bus monitor's results and the
 * exoctl runs; the monitor's filter runs in GDBus' worker thread and hands
 * over under monitor_lock and through an async queue.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exoctl-fake-node.h"

/* ------------------------------------------------- against the real node */

/* A bus monitor that sees GetManagedObjects calls and their replies: that
 * is how a test knows `exoctl watch` listens (it subscribes first, then
 * makes that call, and needs its reply) when the node is the real
 * exo-node.  Replies are matched to the exoctl process by its pid. */
static GMutex monitor_lock;
static GHashTable *monitor_gmo_calls;      /* "sender serial" of calls seen */
static GAsyncQueue *monitor_gmo_replied;   /* char*: who got a reply */

static GDBusMessage *
monitor_filter (GDBusConnection *connection,
                GDBusMessage    *message,
                gboolean         incoming,
                gpointer         user_data)
{
  GDBusMessageType type = g_dbus_message_get_message_type (message);

  if (!incoming)
    return message;
  if (type == G_DBUS_MESSAGE_TYPE_METHOD_CALL)
    {
      if (g_strcmp0 (g_dbus_message_get_member (message), "GetManagedObjects") == 0)
        {
          g_mutex_lock (&monitor_lock);
          g_hash_table_add (monitor_gmo_calls,
                            g_strdup_printf ("%s %u", g_dbus_message_get_sender (message),
                                             g_dbus_message_get_serial (message)));
          g_mutex_unlock (&monitor_lock);
        }
      g_object_unref (message);
      return NULL;        /* a monitor never answers */
    }
  if (type == G_DBUS_MESSAGE_TYPE_METHOD_RETURN && g_dbus_message_get_destination (message) != NULL)
    {
      g_autofree char *key = g_strdup_printf ("%s %u", g_dbus_message_get_destination (message),
                                              g_dbus_message_get_reply_serial (message));
      gboolean found;

      g_mutex_lock (&monitor_lock);
      found = g_hash_table_remove (monitor_gmo_calls, key);
      g_mutex_unlock (&monitor_lock);
      if (found)
        {
          g_async_queue_push (monitor_gmo_replied, g_strdup (g_dbus_message_get_destination (message)));
          g_main_context_wakeup (NULL);   /* this runs in GDBus' worker thread */
        }
    }
  return message;
}

static GDBusConnection *
monitor_new (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  const char *rules[] = { "type='method_call',member='GetManagedObjects'",
                          "type='method_return'", NULL };
  GDBusConnection *monitor;

  monitor_gmo_calls = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  monitor_gmo_replied = g_async_queue_new_full (g_free);
  monitor = g_dbus_connection_new_for_address_sync (
      g_test_dbus_get_bus_address (fake.bus),
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
      G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  g_assert_no_error (error);
  g_dbus_connection_add_filter (monitor, monitor_filter, NULL, NULL);
  reply = g_dbus_connection_call_sync (monitor, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus.Monitoring", "BecomeMonitor",
                                       g_variant_new ("(^asu)", rules, 0u), NULL,
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  return monitor;
}

static guint32
pid_of (const char *unique_name)
{
  g_autoptr(GVariant) reply = NULL;
  guint32 pid = 0;

  reply = g_dbus_connection_call_sync (fake.connection, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "GetConnectionUnixProcessID",
                                       g_variant_new ("(s)", unique_name), G_VARIANT_TYPE ("(u)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(u)", &pid);
  return pid;           /* 0 when that exoctl has already gone */
}

/* Starts exoctl watch and returns once it listens. */
static Run *
watch_start (const char * const *args)
{
  Run *run = run_start (NULL, args);
  guint32 pid = (guint32) atoi (g_subprocess_get_identifier (run->proc));

  while (!run->done)
    {
      g_autofree char *name = g_async_queue_try_pop (monitor_gmo_replied);

      if (name == NULL)
        g_main_context_iteration (NULL, TRUE);
      else if (pid_of (name) == pid)
        break;
    }
  g_assert_false (run->done);
  return run;
}

static gboolean
on_poll_tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* Runs `exoctl --bus-name NAME --json health` until it says @healthy. */
static void
wait_health (const char *bus_name, gboolean healthy)
{
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  guint tick = g_timeout_add (50, on_poll_tick, NULL);

  while (TRUE)
    {
      const char *args[] = { "--bus-name", bus_name, "--json", "health", NULL };
      g_autoptr(Run) run = run_envv (NULL, args);

      if (run->status == (healthy ? 0 : 1))
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
  g_source_remove (tick);
}

static void
on_name_appeared (GDBusConnection *connection, const char *name, const char *owner,
                  gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
}

static void
test_real_node (void)
{
  const char *exo_node = g_getenv ("EXO_NODE");
  const char *plugin_dir = g_getenv ("EXO_TEST_PLUGIN_DIR");
  const char *bus_name = "org.exo.ExoctlTest1";
  const char *config =
    "{\n"
    "  \"node\": { \"id\": \"exoctl-test-node\" },\n"
    "  \"resources\": [\n"
    "    { \"id\": \"engine\", \"type\": \"dummy-inference\" },\n"
    "    { \"id\": \"engine-2\", \"type\": \"dummy-inference\", \"depends-on\": [\"engine\"] }\n"
    "  ]\n"
    "}\n";
  g_autofree char *config_path = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) node = NULL;
  g_autoptr(GDBusConnection) monitor = NULL;
  gboolean appeared = FALSE;
  guint watch_id;
  int fd;

  if (exo_node == NULL || plugin_dir == NULL ||
      !g_file_test (exo_node, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("exo-node is not built (EXO_NODE, EXO_TEST_PLUGIN_DIR)");
      return;
    }

  fd = g_file_open_tmp ("exoctl-test-XXXXXX.json", &config_path, &error);
  g_assert_no_error (error);
  close (fd);
  g_file_set_contents (config_path, config, -1, &error);
  g_assert_no_error (error);

  monitor = monitor_new ();

  node = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error,
                           exo_node, "--session", "--bus-name", bus_name,
                           "--config", config_path, "--plugin-dir", plugin_dir, NULL);
  g_assert_no_error (error);
  watch_id = g_bus_watch_name_on_connection (fake.connection, bus_name, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                             on_name_appeared, NULL, &appeared, NULL);
  {
    gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
    guint tick = g_timeout_add (50, on_poll_tick, NULL);

    while (!appeared)
      {
        g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        g_main_context_iteration (NULL, TRUE);
      }
    g_source_remove (tick);
  }
  g_bus_unwatch_name (watch_id);
  wait_health (bus_name, TRUE);

  /* list: every resource, with the group and the dependency */
  {
    const char *args[] = { "--bus-name", bus_name, "--json", "list", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonArray *array = json_node_get_array (root);
    const char *engine_deps[] = { "engine", NULL };
    JsonObject *o;

    g_assert_cmpint (run->status, ==, 0);
    o = find_by_id (array, "engine-2");
    g_assert_nonnull (o);
    g_assert_cmpstr (json_object_get_string_member (o, "type"), ==, "dummy-inference");
    g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "ready");
    g_assert_true (strv_array_equal (json_object_get_array_member (o, "depends_on"), engine_deps));
    g_assert_true (JSON_NODE_HOLDS_OBJECT (json_object_get_member (o, "metrics")));
    g_assert_nonnull (find_by_id (array, "engine"));
    /* the root group lists both */
    for (guint i = 0; i < json_array_get_length (array); i++)
      {
        JsonObject *g = json_array_get_object_element (array, i);
        if (json_object_has_member (g, "members"))
          g_assert_cmpuint (json_array_get_length (json_object_get_array_member (g, "members")), >=, 2);
      }
  }
  {
    const char *args[] = { "--bus-name", bus_name, "list", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_autofree char *row = row_of (run->out, "engine-2");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (row);
    g_assert_nonnull (strstr (row, "dummy-inference"));
  }
  /* the bash completion offers the real node's ids, on its bus name */
  if (completion_available ())
    {
      g_autofree char *line = g_strdup_printf ("exoctl --bus-name %s restart eng", bus_name);
      g_autoptr(Run) run = run_completion (line);

      g_assert_cmpint (run->status, ==, 0);
      g_assert_cmpstr (run->err, ==, "");
      g_assert_cmpstr (run->out, ==, "engine\nengine-2\n");
    }
  /* node and plugins */
  {
    const char *args[] = { "--bus-name", bus_name, "--json", "node", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonObject *o = json_node_get_object (root);
    JsonArray *plugins;
    gboolean found = FALSE;

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (json_object_get_string_member (o, "node_id"), ==, "exoctl-test-node");
    g_assert_cmpstr (json_object_get_string_member (o, "version"), !=, "");
    plugins = json_object_get_array_member (o, "plugins");
    for (guint i = 0; i < json_array_get_length (plugins); i++)
      if (g_strcmp0 (json_object_get_string_member (json_array_get_object_element (plugins, i), "name"),
                     "dummy-inference") == 0)
        found = TRUE;
    g_assert_true (found);
    g_assert_true (json_object_has_member (o, "topology"));
  }
  /* tree: engine hangs under engine-2, which needs it */
  {
    const char *args[] = { "--bus-name", bus_name, "tree", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_auto(GStrv) lines = g_strsplit (run->out, "\n", -1);
    gboolean found = FALSE;

    g_assert_cmpint (run->status, ==, 0);
    for (guint i = 0; lines[i] != NULL && lines[i + 1] != NULL; i++)
      if (strstr (lines[i], " engine-2 (") != NULL && strstr (lines[i + 1], " engine (") != NULL)
        found = TRUE;
    g_assert_true (found);
  }
  /* stop, seen by watch and health; start again */
  {
    const char *wargs[] = { "--bus-name", bus_name, "--json", "watch", "--count", "2",
                            "--timeout", "60", NULL };
    const char *sargs[] = { "--bus-name", bus_name, "stop", "engine-2", NULL };
    g_autoptr(Run) watch = watch_start (wargs);
    g_autoptr(Run) stop = run_envv (NULL, sargs);
    g_auto(GStrv) lines = NULL;
    g_autoptr(JsonNode) first = NULL;
    JsonObject *o;

    g_assert_cmpint (stop->status, ==, 0);
    g_assert_cmpint (run_wait (watch), ==, 0);
    lines = g_strsplit (watch->out, "\n", -1);
    g_assert_cmpuint (g_strv_length (lines), ==, 3);
    first = parse_json (lines[0]);
    o = json_node_get_object (first);
    g_assert_cmpstr (json_object_get_string_member (o, "id"), ==, "engine-2");
    g_assert_cmpstr (json_object_get_string_member (o, "old_state"), ==, "ready");
    g_assert_cmpstr (json_object_get_string_member (o, "new_state"), ==, "closing");
  }
  wait_health (bus_name, FALSE);
  {
    const char *args[] = { "--bus-name", bus_name, "--json", "health", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonArray *unhealthy = json_object_get_array_member (json_node_get_object (root), "unhealthy");
    gboolean found = FALSE;

    g_assert_cmpint (run->status, ==, 1);
    for (guint i = 0; i < json_array_get_length (unhealthy); i++)
      if (g_strcmp0 (json_array_get_string_element (unhealthy, i), "engine-2") == 0)
        found = TRUE;
    g_assert_true (found);
  }
  /* stopped: not active (3), not failed (1) */
  {
    const char *args[] = { "--bus-name", bus_name, "is-active", "engine", "engine-2", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_auto(GStrv) lines = g_strsplit (run->out, "\n", -1);

    g_assert_cmpint (run->status, ==, 3);
    g_assert_cmpuint (g_strv_length (lines), ==, 3);
    g_assert_cmpstr (lines[0], ==, "ready");
    g_assert_cmpstr (lines[1], !=, "ready");
  }
  {
    const char *args[] = { "--bus-name", bus_name, "status", "engine-2", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_assert_cmpint (run->status, ==, 3);
  }
  {
    const char *args[] = { "--bus-name", bus_name, "is-failed", "-q", "engine-2", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_assert_cmpint (run->status, ==, 1);
    g_assert_cmpstr (run->out, ==, "");
  }
  {
    const char *args[] = { "--bus-name", bus_name, "start", "engine-2", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_assert_cmpint (run->status, ==, 0);
  }
  wait_health (bus_name, TRUE);
  {
    const char *args[] = { "--bus-name", bus_name, "is-active", "engine", "engine-2", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->out, ==, "ready\nready\n");
  }
  {
    const char *args[] = { "--bus-name", bus_name, "show", "-p", "State,Type", "engine-2", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->out, ==, "Type=dummy-inference\nState=ready\n");
  }
  {
    const char *args[] = { "--bus-name", bus_name, "restart", "engine", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_assert_cmpint (run->status, ==, 0);
  }
  {
    const char *args[] = { "--bus-name", bus_name, "status", "nope", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_assert_cmpint (run->status, ==, 4);
  }

  /* The node goes away: a running watch says so (exit 1), and then
   * exoctl finds no node (exit 1). */
  {
    const char *wargs[] = { "--bus-name", bus_name, "watch", "--timeout", "60", NULL };
    const char *largs[] = { "--bus-name", bus_name, "list", NULL };
    g_autoptr(Run) watch = watch_start (wargs);
    g_autoptr(Run) list = NULL;
    g_autofree char *expected = g_strdup_printf (
        "exoctl: no exo-node is running on the session bus (name %s)\n", bus_name);

    g_subprocess_send_signal (node, SIGTERM);
    g_subprocess_wait (node, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (g_subprocess_get_if_exited (node));
    g_assert_cmpint (g_subprocess_get_exit_status (node), ==, 0);

    g_assert_cmpint (run_wait (watch), ==, 1);
    g_assert_nonnull (strstr (watch->err, "went away"));

    list = run_envv (NULL, largs);
    g_assert_cmpint (list->status, ==, 1);
    g_assert_cmpstr (list->err, ==, expected);
  }

  g_dbus_connection_close_sync (monitor, NULL, NULL);
  g_clear_object (&monitor);      /* its worker no longer calls the filter */
  g_clear_pointer (&monitor_gmo_calls, g_hash_table_unref);
  g_clear_pointer (&monitor_gmo_replied, g_async_queue_unref);
  g_unlink (config_path);
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);

  exoctl_path = g_getenv ("EXOCTL");
  if (exoctl_path == NULL)
    exoctl_path = g_test_build_filename (G_TEST_BUILT, "..", "src", "exoctl", "exoctl", NULL);

  g_test_add_func ("/exoctl/real-node", test_real_node);

  fake_up ();
  rc = g_test_run ();
  fake_down ();
  return rc;
}
