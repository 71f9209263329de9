/* test-exoctl.c: the exoctl binary against a fake exo-node on a private bus.
 *
 * The fake node exports the D-Bus API of docs/design.md §4 (data/org.exo.Node1.xml
 * through gdbus-codegen) on a private dbus-daemon started with GTestDBus:
 * an ObjectManager at /org/exo/Node1, org.exo.Node1 there, and resources
 * with org.exo.Resource1 (+ ResourceGroup1 / ResourcePool1).  Each test
 * runs the real exoctl (path in $EXOCTL) as a subprocess and checks its exit
 * status, its tables and its JSON.  /exoctl/real-node does the same against
 * the real exo-node ($EXO_NODE, with the plugins in $EXO_TEST_PLUGIN_DIR)
 * when it is built.
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

#include "exo-dbus-generated.h"

#define BUS_NAME    "org.exo.Node1"
#define NODE_PATH   "/org/exo/Node1"

/* ------------------------------------------------------------ fake node */

typedef struct
{
  const char *id;
  const char *type;
  const char *display_name;
  const char *depends_on[4];
  const char *members[8];     /* non-empty: a group */
  gboolean    pool;
} FakeSpec;

static const FakeSpec fake_specs[] = {
  { "root", "group", "Root group", { NULL },
    { "engine", "server", "discovery", "node", "workers", "peers", NULL }, FALSE },
  { "engine", "dummy-inference", "Dummy inference engine", { NULL }, { NULL }, FALSE },
  { "server", "http-server", "HTTP server", { NULL }, { NULL }, FALSE },
  { "discovery", "udp-discovery", "UDP discovery", { "server", NULL }, { NULL }, FALSE },
  { "node", "node", "Node", { "engine", "server", "discovery", NULL }, { NULL }, FALSE },
  { "workers", "pool", "Worker pool", { NULL }, { NULL }, TRUE },
  { "peers", "group", "Peers", { "discovery", NULL }, { "peer-1", NULL }, FALSE },
  { "peer-1", "peer", "Peer 1", { NULL }, { NULL }, FALSE },
};

#define N_FAKE G_N_ELEMENTS (fake_specs)

typedef struct
{
  GTestDBus                 *bus;
  GDBusConnection           *connection;
  GDBusObjectManagerServer  *manager;
  ExoDBusNode1              *node;
  GHashTable                *resources;     /* id -> ExoDBusResource1 (owned) */
  gint                       gmo_calls;     /* GetManagedObjects received (atomic) */
  guint                      filter_id;
  GPtrArray                 *calls;         /* "Method id" strings */
} Fake;

static Fake fake;
static const char *exoctl_path;

static char *
resource_path (const char *id)
{
  g_autofree char *escaped = g_dbus_escape_object_path (id);

  return g_strconcat (NODE_PATH "/resource/", escaped, NULL);
}

static GVariant *
paths_variant (const char * const *ids)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("ao"));
  for (guint i = 0; ids[i] != NULL; i++)
    {
      g_autofree char *path = resource_path (ids[i]);
      g_variant_builder_add (&b, "o", path);
    }
  return g_variant_builder_end (&b);
}

static GVariant *
metrics_for (const char *id)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  if (g_str_equal (id, "engine"))
    {
      g_variant_builder_add (&b, "{sv}", "requests", g_variant_new_uint64 (12));
      g_variant_builder_add (&b, "{sv}", "model", g_variant_new_string ("llama-3.2-1b"));
    }
  return g_variant_builder_end (&b);
}

static void
fake_set_state (const char *id, const char *state, const char *error)
{
  ExoDBusResource1 *r = g_hash_table_lookup (fake.resources, id);

  g_assert_nonnull (r);
  exo_dbus_resource1_set_state (r, state);
  exo_dbus_resource1_set_healthy (r, g_str_equal (state, "ready"));
  exo_dbus_resource1_set_last_error (r, error != NULL ? error : "");
  if (error != NULL)
    exo_dbus_resource1_set_error_count (r, exo_dbus_resource1_get_error_count (r) + 1);
  exo_dbus_resource1_set_state_changed_at (r, (guint64) g_get_real_time ());
}

static void
fake_reset (void)
{
  for (guint i = 0; i < N_FAKE; i++)
    {
      ExoDBusResource1 *r = g_hash_table_lookup (fake.resources, fake_specs[i].id);

      exo_dbus_resource1_set_state (r, "ready");
      exo_dbus_resource1_set_healthy (r, TRUE);
      exo_dbus_resource1_set_last_error (r, "");
      exo_dbus_resource1_set_error_count (r, 0);
    }
  g_ptr_array_set_size (fake.calls, 0);
}

/* Method handlers: "server" refuses like a node run by another uid would;
 * "discovery" fails like a resource whose initialize fails. */
static gboolean
on_method (ExoDBusResource1       *r,
           GDBusMethodInvocation  *invocation,
           gpointer                user_data)
{
  const char *method = user_data;
  const char *id = exo_dbus_resource1_get_id (r);

  g_ptr_array_add (fake.calls, g_strdup_printf ("%s %s", method, id));

  if (g_str_equal (id, "server"))
    {
      g_dbus_method_invocation_return_dbus_error (invocation,
                                                  "org.freedesktop.DBus.Error.AccessDenied",
                                                  "uid 4242 may not change resources of this node");
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (g_str_equal (id, "discovery"))
    {
      g_dbus_method_invocation_return_dbus_error (invocation, "org.exo.Error.Failed",
                                                  "bind to port 5678 failed: Address already in use");
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  g_dbus_method_invocation_return_value (invocation, NULL);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static GDBusMessage *
count_gmo_filter (GDBusConnection *connection,
                  GDBusMessage    *message,
                  gboolean         incoming,
                  gpointer         user_data)
{
  if (incoming &&
      g_dbus_message_get_message_type (message) == G_DBUS_MESSAGE_TYPE_METHOD_CALL &&
      g_strcmp0 (g_dbus_message_get_member (message), "GetManagedObjects") == 0)
    {
      g_atomic_int_inc (&fake.gmo_calls);
      g_main_context_wakeup (NULL);       /* this runs in GDBus' worker thread */
    }
  return message;
}

static void
fake_up (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  guint32 result;

  fake.bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fake.bus);

  fake.connection = g_dbus_connection_new_for_address_sync (
      g_test_dbus_get_bus_address (fake.bus),
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
      G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  g_assert_no_error (error);
  fake.filter_id = g_dbus_connection_add_filter (fake.connection, count_gmo_filter, NULL, NULL);

  fake.resources = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_object_unref);
  fake.calls = g_ptr_array_new_with_free_func (g_free);
  fake.manager = g_dbus_object_manager_server_new (NODE_PATH);

  for (guint i = 0; i < N_FAKE; i++)
    {
      const FakeSpec *spec = &fake_specs[i];
      g_autofree char *path = resource_path (spec->id);
      g_autoptr(ExoDBusObjectSkeleton) object = exo_dbus_object_skeleton_new (path);
      ExoDBusResource1 *r = exo_dbus_resource1_skeleton_new ();

      exo_dbus_resource1_set_id (r, spec->id);
      exo_dbus_resource1_set_type_ (r, spec->type);
      exo_dbus_resource1_set_display_name (r, spec->display_name);
      exo_dbus_resource1_set_state (r, "ready");
      exo_dbus_resource1_set_healthy (r, TRUE);
      exo_dbus_resource1_set_last_error (r, "");
      exo_dbus_resource1_set_attempts (r, 0);
      exo_dbus_resource1_set_state_changed_at (r, (guint64) g_get_real_time () - 5 * G_USEC_PER_SEC);
      exo_dbus_resource1_set_initialized_at (r, (guint64) g_get_real_time () - 5 * G_USEC_PER_SEC);
      {
        GVariant *deps = paths_variant (spec->depends_on);
        g_autofree const char **objv = g_variant_get_objv (deps, NULL);

        exo_dbus_resource1_set_depends_on (r, objv);
        g_variant_unref (g_variant_ref_sink (deps));
      }
      exo_dbus_resource1_set_metrics (r, metrics_for (spec->id));
      g_signal_connect (r, "handle-initialize", G_CALLBACK (on_method), (gpointer) "Initialize");
      g_signal_connect (r, "handle-cleanup", G_CALLBACK (on_method), (gpointer) "Cleanup");
      g_signal_connect (r, "handle-restart", G_CALLBACK (on_method), (gpointer) "Restart");
      exo_dbus_object_skeleton_set_resource1 (object, r);

      if (spec->members[0] != NULL)
        {
          g_autoptr(ExoDBusResourceGroup1) group = exo_dbus_resource_group1_skeleton_new ();
          GVariant *members = paths_variant (spec->members);
          g_autofree const char **objv = g_variant_get_objv (members, NULL);

          exo_dbus_resource_group1_set_members (group, objv);
          g_variant_unref (g_variant_ref_sink (members));
          exo_dbus_object_skeleton_set_resource_group1 (object, group);
        }
      if (spec->pool)
        {
          g_autoptr(ExoDBusResourcePool1) pool = exo_dbus_resource_pool1_skeleton_new ();

          exo_dbus_resource_pool1_set_min_size (pool, 1);
          exo_dbus_resource_pool1_set_max_size (pool, 8);
          exo_dbus_resource_pool1_set_size (pool, 3);
          exo_dbus_resource_pool1_set_idle (pool, 2);
          exo_dbus_resource_pool1_set_in_use (pool, 1);
          exo_dbus_resource_pool1_set_waiting (pool, 0);
          exo_dbus_resource_pool1_set_acquired (pool, 10);
          exo_dbus_resource_pool1_set_timeouts (pool, 1);
          exo_dbus_resource_pool1_set_created (pool, 3);
          exo_dbus_resource_pool1_set_destroyed (pool, 0);
          exo_dbus_object_skeleton_set_resource_pool1 (object, pool);
        }

      g_dbus_object_manager_server_export (fake.manager, G_DBUS_OBJECT_SKELETON (object));
      g_hash_table_insert (fake.resources, (gpointer) spec->id, r);
    }
  g_dbus_object_manager_server_set_connection (fake.manager, fake.connection);

  fake.node = exo_dbus_node1_skeleton_new ();
  exo_dbus_node1_set_node_id (fake.node, "test-node");
  exo_dbus_node1_set_version (fake.node, "0.1.0");
  exo_dbus_node1_set_state (fake.node, "ready");
  exo_dbus_node1_set_plugins (fake.node,
      g_variant_new_parsed ("[('dummy-inference', '1.0.0', '/usr/lib/exo-1/plugins/dummy-inference.so', 'A fake inference engine'),"
                            " ('http-server', '1.2.0', '/usr/lib/exo-1/plugins/http-server.so', 'Peer RPC and the user API')]"));
  exo_dbus_node1_set_topology (fake.node,
      "{\"nodes\": {\"test-node\": {\"memory\": 1024}}, \"peer_graph\": {}}");
  g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (fake.node), fake.connection,
                                    NODE_PATH, &error);
  g_assert_no_error (error);

  reply = g_dbus_connection_call_sync (fake.connection, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "RequestName", g_variant_new ("(su)", BUS_NAME, 4u),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1,
                                       NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &result);
  g_assert_cmpuint (result, ==, 1);   /* primary owner */
}

static void
fake_down (void)
{
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (fake.node));
  g_clear_object (&fake.node);
  g_clear_object (&fake.manager);
  g_dbus_connection_remove_filter (fake.connection, fake.filter_id);
  g_dbus_connection_close_sync (fake.connection, NULL, NULL);
  g_clear_object (&fake.connection);
  g_clear_pointer (&fake.resources, g_hash_table_unref);
  g_clear_pointer (&fake.calls, g_ptr_array_unref);
  g_test_dbus_down (fake.bus);
  g_clear_object (&fake.bus);
}

/* ----------------------------------------------------------- run exoctl */

typedef struct
{
  GSubprocess *proc;
  gboolean     done;
  char        *out;
  char        *err;
  int          status;
  guint        timeout_id;
} Run;

static void
run_free (Run *run)
{
  g_clear_object (&run->proc);
  g_free (run->out);
  g_free (run->err);
  g_free (run);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Run, run_free)

static void
on_communicated (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Run *run = user_data;
  g_autoptr(GError) error = NULL;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &run->out, &run->err, &error);
  g_assert_no_error (error);
  run->done = TRUE;
}

static gboolean
on_run_timeout (gpointer user_data)
{
  Run *run = user_data;

  g_test_message ("exoctl did not exit within 60 s; killing it");
  g_subprocess_force_exit (run->proc);
  run->timeout_id = 0;
  return G_SOURCE_REMOVE;
}

/* Starts exoctl with @args (NULL-terminated); @env: NAME=VALUE pairs to set
 * (a NULL value unsets). */
static Run *
run_start (const char * const *env, const char * const *args)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  Run *run = g_new0 (Run, 1);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "LC_ALL", "C.UTF-8", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "NO_COLOR");
  for (guint i = 0; env != NULL && env[i] != NULL; i += 2)
    {
      if (env[i + 1] != NULL)
        g_subprocess_launcher_setenv (launcher, env[i], env[i + 1], TRUE);
      else
        g_subprocess_launcher_unsetenv (launcher, env[i]);
    }

  g_ptr_array_add (argv, (gpointer) exoctl_path);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  run->proc = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (run->proc, NULL, NULL, on_communicated, run);
  run->timeout_id = g_timeout_add_seconds (60, on_run_timeout, run);
  return run;
}

static int
run_wait (Run *run)
{
  while (!run->done)
    g_main_context_iteration (NULL, TRUE);
  /* communicate finishes at EOF; the exit status may come a moment later */
  while (!g_subprocess_wait (run->proc, NULL, NULL))
    ;
  g_clear_handle_id (&run->timeout_id, g_source_remove);
  g_assert_true (g_subprocess_get_if_exited (run->proc));
  run->status = g_subprocess_get_exit_status (run->proc);
  g_test_message ("exit %d\n--- stdout\n%s--- stderr\n%s", run->status, run->out, run->err);
  /* exoctl never logs a warning or a critical, whatever happens */
  g_assert_null (strstr (run->err, "CRITICAL"));
  g_assert_null (strstr (run->err, "WARNING"));
  g_assert_null (strstr (run->err, "Sanitizer"));
  g_assert_null (strstr (run->err, "runtime error"));
  return run->status;
}

static Run *
run_envv (const char * const *env, const char * const *args)
{
  Run *run = run_start (env, args);

  run_wait (run);
  return run;
}

#define EXOCTL(...)          run_envv (NULL, (const char * const []) { __VA_ARGS__, NULL })

static JsonNode *
parse_json (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (json_parser_get_root (parser));
  return json_node_copy (json_parser_get_root (parser));
}

static JsonObject *
find_by_id (JsonArray *array, const char *id)
{
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *o = json_array_get_object_element (array, i);
      if (g_strcmp0 (json_object_get_string_member (o, "id"), id) == 0)
        return o;
    }
  return NULL;
}

static gboolean
strv_array_equal (JsonArray *array, const char * const *expected)
{
  guint n = g_strv_length ((char **) expected);

  if (json_array_get_length (array) != n)
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (g_strcmp0 (json_array_get_string_element (array, i), expected[i]) != 0)
      return FALSE;
  return TRUE;
}

/* The table row of @id: the line that starts with "@id ". */
static char *
row_of (const char *out, const char *id)
{
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  g_autofree char *prefix = g_strconcat (id, " ", NULL);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      return g_strdup (lines[i]);
  return NULL;
}

/* "a b   c" -> ["a", "b", "c"] */
static GStrv
words (const char *line)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_auto(GStrv) parts = g_strsplit_set (line, " ", -1);

  for (guint i = 0; parts[i] != NULL; i++)
    if (parts[i][0] != '\0')
      g_strv_builder_add (b, parts[i]);
  return g_strv_builder_end (b);
}

/* ---------------------------------------------------------------- tests */

static void
test_usage (void)
{
  struct { const char *args[4]; const char *message; } cases[] = {
    { { NULL }, "no command given" },
    { { "frobnicate", NULL }, "unknown command 'frobnicate'" },
    { { "status", NULL }, "missing resource ID" },
    { { "start", NULL }, "missing resource ID" },
    { { "list", "extra", NULL }, "unexpected argument 'extra'" },
    { { "--bogus", "list", NULL }, "--bogus" },
    { { "--session", "--system", "list", NULL }, "exclude each other" },
    { { "watch", "--count", "0", NULL }, "--count" },
    { { "watch", "--count", "many", NULL }, "--count" },
    { { "watch", "--timeout", "-1", NULL }, "--timeout" },
    { { "list", "--count", "2", NULL }, "options of watch" },
    { { "--bus-name", "not a name", "list", NULL }, "not a valid bus name" },
  };

  fake_reset ();
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(Run) run = run_envv (NULL, cases[i].args);
      g_auto(GStrv) lines = g_strsplit (run->err, "\n", -1);

      g_assert_cmpint (run->status, ==, 2);
      g_assert_cmpstr (run->out, ==, "");
      g_assert_true (g_str_has_prefix (lines[0], "exoctl: "));
      g_assert_nonnull (strstr (lines[0], cases[i].message));
      g_assert_nonnull (strstr (run->err, "Usage: exoctl"));
    }

  /* Nothing reached the node. */
  g_assert_cmpuint (fake.calls->len, ==, 0);

  {
    g_autoptr(Run) run = EXOCTL ("--help");
    const char *commands[] = { "list", "status ID", "health", "start ID", "stop ID",
                               "restart ID", "tree", "watch", "plugins", "node" };

    g_assert_cmpint (run->status, ==, 0);
    for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
      g_assert_nonnull (strstr (run->out, commands[i]));
    g_assert_nonnull (strstr (run->out, "--json"));
    g_assert_nonnull (strstr (run->out, "--bus-name"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("--version");
    g_assert_cmpint (run->status, ==, 0);
    g_assert_true (g_str_has_prefix (run->out, "exoctl "));
  }
}

static void
test_not_running (void)
{
  const char *commands[][3] = {
    { "list", NULL }, { "status", "engine", NULL }, { "health", NULL }, { "start", "engine", NULL },
    { "tree", NULL }, { "watch", NULL }, { "plugins", NULL }, { "node", NULL },
  };

  fake_reset ();
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      const char *args[6] = { "--bus-name", "org.exo.Nobody", commands[i][0], commands[i][1], NULL };
      g_autoptr(Run) run = run_envv (NULL, args);

      g_assert_cmpint (run->status, ==, 3);
      g_assert_cmpstr (run->out, ==, "");
      g_assert_cmpstr (run->err, ==,
                       "exoctl: no exo-node is running on the session bus (name org.exo.Nobody)\n");
    }

  /* No bus at all. */
  {
    const char *env[] = { "DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/exoctl-test", NULL };
    const char *args[] = { "list", NULL };
    g_autoptr(Run) run = run_envv (env, args);
    g_assert_cmpint (run->status, ==, 3);
    g_assert_true (g_str_has_prefix (run->err, "exoctl: no exo-node is running on the session bus "
                                               "(name org.exo.Node1)"));
    g_assert_cmpuint (strlen (run->err), ==, strcspn (run->err, "\n") + 1);   /* one line */
  }
}

static void
test_list (void)
{
  g_autoptr(Run) run = NULL;
  g_auto(GStrv) lines = NULL;
  g_auto(GStrv) header = NULL;

  fake_reset ();
  fake_set_state ("discovery", "error", "bind to port 5678 failed: Address already in use");
  run = EXOCTL ("list");
  g_assert_cmpint (run->status, ==, 0);

  lines = g_strsplit (run->out, "\n", -1);
  header = words (lines[0]);
  g_assert_cmpstr (header[0], ==, "ID");
  g_assert_cmpstr (header[1], ==, "TYPE");
  g_assert_cmpstr (header[2], ==, "STATE");
  g_assert_cmpstr (header[3], ==, "HEALTHY");
  g_assert_cmpstr (header[4], ==, "ERRORS");
  g_assert_cmpstr (header[5], ==, "LAST");

  for (guint i = 0; i < N_FAKE; i++)
    {
      g_autofree char *row = row_of (run->out, fake_specs[i].id);
      g_auto(GStrv) w = NULL;
      gboolean is_discovery = g_str_equal (fake_specs[i].id, "discovery");

      g_assert_nonnull (row);
      w = words (row);
      g_assert_cmpstr (w[1], ==, fake_specs[i].type);
      g_assert_cmpstr (w[2], ==, is_discovery ? "error" : "ready");
      g_assert_cmpstr (w[3], ==, is_discovery ? "no" : "yes");
      g_assert_cmpstr (w[4], ==, is_discovery ? "1" : "0");
      if (is_discovery)
        g_assert_nonnull (strstr (row, "bind to port 5678 failed: Address already in use"));
      else
        g_assert_cmpstr (w[5], ==, "-");
    }
  /* Columns are aligned: STATE starts at the same offset in every row. */
  {
    const char *state_col = strstr (lines[0], "STATE");
    gsize offset = (gsize) (state_col - lines[0]);

    for (guint i = 1; i <= N_FAKE; i++)
      g_assert_true (g_str_has_prefix (lines[i] + offset, "ready") ||
                     g_str_has_prefix (lines[i] + offset, "error"));
  }
  g_assert_nonnull (strstr (run->out, "8 resources listed."));
  /* not a tty: no colours */
  g_assert_null (strchr (run->out, '\033'));
}

static void
test_list_json (void)
{
  g_autoptr(Run) run = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonArray *array;
  JsonObject *o;
  JsonObject *pool;
  JsonObject *metrics;

  fake_reset ();
  run = EXOCTL ("--json", "list");
  g_assert_cmpint (run->status, ==, 0);
  root = parse_json (run->out);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (root));
  array = json_node_get_array (root);
  g_assert_cmpuint (json_array_get_length (array), ==, N_FAKE);

  for (guint i = 0; i < N_FAKE; i++)
    {
      const char *keys[] = { "id", "type", "display_name", "state", "healthy", "last_error",
                             "error_count", "attempts", "state_changed_at", "initialized_at",
                             "depends_on", "metrics" };

      o = find_by_id (array, fake_specs[i].id);
      g_assert_nonnull (o);
      for (guint k = 0; k < G_N_ELEMENTS (keys); k++)
        g_assert_true (json_object_has_member (o, keys[k]));
      g_assert_cmpstr (json_object_get_string_member (o, "type"), ==, fake_specs[i].type);
      g_assert_cmpstr (json_object_get_string_member (o, "display_name"), ==, fake_specs[i].display_name);
      g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "ready");
      g_assert_true (json_object_get_boolean_member (o, "healthy"));
      g_assert_cmpint (json_object_get_int_member (o, "state_changed_at"), >, 0);
      g_assert_true (strv_array_equal (json_object_get_array_member (o, "depends_on"),
                                       fake_specs[i].depends_on));
      g_assert_true (json_object_has_member (o, "members") == (fake_specs[i].members[0] != NULL));
      if (fake_specs[i].members[0] != NULL)
        g_assert_true (strv_array_equal (json_object_get_array_member (o, "members"),
                                         fake_specs[i].members));
      g_assert_true (json_object_has_member (o, "pool") == fake_specs[i].pool);
    }

  o = find_by_id (array, "workers");
  pool = json_object_get_object_member (o, "pool");
  g_assert_cmpint (json_object_get_int_member (pool, "min_size"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (pool, "max_size"), ==, 8);
  g_assert_cmpint (json_object_get_int_member (pool, "size"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (pool, "idle"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (pool, "in_use"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (pool, "waiting"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (pool, "acquired"), ==, 10);
  g_assert_cmpint (json_object_get_int_member (pool, "timeouts"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (pool, "created"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (pool, "destroyed"), ==, 0);

  o = find_by_id (array, "engine");
  metrics = json_object_get_object_member (o, "metrics");
  g_assert_cmpint (json_object_get_int_member (metrics, "requests"), ==, 12);
  g_assert_cmpstr (json_object_get_string_member (metrics, "model"), ==, "llama-3.2-1b");
  g_assert_cmpstr (json_object_get_string_member (o, "last_error"), ==, "");
  g_assert_cmpint (json_object_get_int_member (o, "error_count"), ==, 0);

  /* The id comes from the Id property, not from the escaped path. */
  o = find_by_id (array, "peer-1");
  g_assert_nonnull (o);
}

static void
test_status (void)
{
  fake_reset ();
  fake_set_state ("engine", "degraded", "model not loaded");

  {
    g_autoptr(Run) run = EXOCTL ("status", "engine");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (strstr (run->out, "engine"));
    g_assert_nonnull (strstr (run->out, "Type: dummy-inference\n"));
    g_assert_nonnull (strstr (run->out, "Display name: Dummy inference engine\n"));
    g_assert_nonnull (strstr (run->out, "State: degraded\n"));
    g_assert_nonnull (strstr (run->out, "Healthy: no\n"));
    g_assert_nonnull (strstr (run->out, "Last error: model not loaded\n"));
    g_assert_nonnull (strstr (run->out, "Errors: 1\n"));
    g_assert_nonnull (strstr (run->out, "Attempts: 0\n"));
    g_assert_nonnull (strstr (run->out, "State changed: "));
    g_assert_nonnull (strstr (run->out, "Initialized: "));
    g_assert_nonnull (strstr (run->out, "Depends on: -\n"));
    g_assert_nonnull (strstr (run->out, "Metrics: model: llama-3.2-1b\n"));
    g_assert_nonnull (strstr (run->out, "requests: "));
    g_assert_nonnull (strstr (run->out, "12"));
    g_assert_nonnull (strstr (run->out, "Object path: /org/exo/Node1/resource/engine\n"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("status", "node");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (strstr (run->out, "Depends on: engine, server, discovery\n"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("status", "peers");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (strstr (run->out, "Members: peer-1\n"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("status", "workers");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (strstr (run->out, "Pool: size 3 (min 1, max 8), idle 2, in use 1, waiting 0\n"));
    g_assert_nonnull (strstr (run->out, "acquired 10, timeouts 1, created 3, destroyed 0\n"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("status", "engine", "--json");
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonObject *o;

    g_assert_cmpint (run->status, ==, 0);
    g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
    o = json_node_get_object (root);
    g_assert_cmpstr (json_object_get_string_member (o, "id"), ==, "engine");
    g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "degraded");
    g_assert_false (json_object_get_boolean_member (o, "healthy"));
    g_assert_cmpstr (json_object_get_string_member (o, "last_error"), ==, "model not loaded");
    g_assert_cmpint (json_object_get_int_member (o, "error_count"), ==, 1);
  }
  {
    g_autoptr(Run) run = EXOCTL ("status", "nope");

    g_assert_cmpint (run->status, ==, 4);
    g_assert_cmpstr (run->out, ==, "");
    g_assert_cmpstr (run->err, ==, "exoctl: no resource 'nope'\n");
  }
}

static void
test_health (void)
{
  fake_reset ();
  {
    g_autoptr(Run) run = EXOCTL ("health");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (strstr (run->out, "healthy"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("--json", "health");
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonObject *o = json_node_get_object (root);

    g_assert_cmpint (run->status, ==, 0);
    g_assert_true (json_object_get_boolean_member (o, "healthy"));
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o, "unhealthy")), ==, 0);
  }

  fake_set_state ("engine", "degraded", "model not loaded");
  {
    g_autoptr(Run) run = EXOCTL ("health");
    g_autofree char *row = NULL;
    g_auto(GStrv) w = NULL;

    g_assert_cmpint (run->status, ==, 1);
    row = row_of (run->out, "engine");
    g_assert_nonnull (row);
    w = words (row);
    g_assert_cmpstr (w[1], ==, "degraded");
    g_assert_nonnull (strstr (row, "model not loaded"));
    g_assert_null (row_of (run->out, "server"));
    g_assert_nonnull (strstr (run->out, "1 of 8"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("--json", "health");
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonObject *o = json_node_get_object (root);
    const char *expected[] = { "engine", NULL };

    g_assert_cmpint (run->status, ==, 1);
    g_assert_false (json_object_get_boolean_member (o, "healthy"));
    g_assert_true (strv_array_equal (json_object_get_array_member (o, "unhealthy"), expected));
  }
}

static void
test_methods (void)
{
  struct { const char *command; const char *method; } cases[] = {
    { "start", "Initialize" }, { "stop", "Cleanup" }, { "restart", "Restart" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      fake_reset ();
      {
        g_autoptr(Run) run = EXOCTL (cases[i].command, "peer-1");
        g_autofree char *expected = g_strdup_printf ("%s peer-1", cases[i].method);

        g_assert_cmpint (run->status, ==, 0);
        g_assert_cmpstr (run->err, ==, "");
        g_assert_cmpuint (fake.calls->len, ==, 1);
        g_assert_cmpstr (g_ptr_array_index (fake.calls, 0), ==, expected);
      }
      {
        /* The node refuses: AccessDenied, on one line, exit 1. */
        g_autoptr(Run) run = EXOCTL (cases[i].command, "server");

        g_assert_cmpint (run->status, ==, 1);
        g_assert_true (g_str_has_prefix (run->err, "exoctl: "));
        g_assert_nonnull (strstr (run->err, "uid 4242 may not change resources of this node"));
        g_assert_cmpuint (strlen (run->err), ==, strcspn (run->err, "\n") + 1);
        g_assert_null (strstr (run->err, "GDBus.Error"));
      }
      {
        g_autoptr(Run) run = EXOCTL (cases[i].command, "discovery");

        g_assert_cmpint (run->status, ==, 1);
        g_assert_nonnull (strstr (run->err, "bind to port 5678 failed: Address already in use"));
      }
      {
        g_autoptr(Run) run = EXOCTL (cases[i].command, "nope");

        g_assert_cmpint (run->status, ==, 4);
        g_assert_cmpstr (run->err, ==, "exoctl: no resource 'nope'\n");
      }
      g_assert_cmpuint (fake.calls->len, ==, 3);
    }
}

static void
test_tree (void)
{
  fake_reset ();
  {
    g_autoptr(Run) run = EXOCTL ("tree");
    g_auto(GStrv) lines = NULL;
    int root_line = -1, peers_line = -1, peer_line = -1, node_line = -1;

    g_assert_cmpint (run->status, ==, 0);
    lines = g_strsplit (run->out, "\n", -1);
    g_assert_nonnull (strstr (lines[0], "root (group) ready"));
    for (int i = 0; lines[i] != NULL; i++)
      {
        if (strstr (lines[i], " root (") != NULL) root_line = i;
        if (strstr (lines[i], " peers (group)") != NULL) peers_line = i;
        if (strstr (lines[i], " peer-1 (peer)") != NULL) peer_line = i;
        if (strstr (lines[i], " node (node)") != NULL) node_line = i;
      }
    g_assert_cmpint (root_line, ==, 0);
    g_assert_cmpint (node_line, >, 0);
    g_assert_cmpint (peers_line, >, 0);
    g_assert_cmpint (peer_line, ==, peers_line + 1);
    /* peer-1 is nested deeper than peers */
    g_assert_cmpint (strstr (lines[peer_line], "peer-1") - lines[peer_line], >,
                     strstr (lines[peers_line], "peers") - lines[peers_line]);
    /* every resource appears */
    for (guint i = 0; i < N_FAKE; i++)
      {
        g_autofree char *needle = g_strdup_printf (" %s (%s)", fake_specs[i].id, fake_specs[i].type);
        g_assert_nonnull (strstr (run->out, needle));
      }
    /* dependencies hang under their dependents: server under discovery */
    {
      gboolean found = FALSE;
      for (int i = 1; lines[i] != NULL && lines[i + 1] != NULL; i++)
        if (strstr (lines[i], " discovery (") != NULL && strstr (lines[i + 1], " server (") != NULL &&
            strstr (lines[i + 1], "server") - lines[i + 1] > strstr (lines[i], "discovery") - lines[i])
          found = TRUE;
      g_assert_true (found);
    }
  }
  {
    g_autoptr(Run) run = EXOCTL ("tree", "--json");
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonArray *top;
    JsonObject *r, *peers, *node;
    JsonArray *members;
    const char *node_deps[] = { "engine", "server", "discovery", NULL };

    g_assert_cmpint (run->status, ==, 0);
    top = json_node_get_array (root);
    g_assert_cmpuint (json_array_get_length (top), ==, 1);
    r = json_array_get_object_element (top, 0);
    g_assert_cmpstr (json_object_get_string_member (r, "id"), ==, "root");
    members = json_object_get_array_member (r, "members");
    g_assert_cmpuint (json_array_get_length (members), ==, 6);
    peers = find_by_id (members, "peers");
    g_assert_nonnull (peers);
    g_assert_nonnull (find_by_id (json_object_get_array_member (peers, "members"), "peer-1"));
    node = find_by_id (members, "node");
    g_assert_true (strv_array_equal (json_object_get_array_member (node, "depends_on"), node_deps));
  }
}

static void
test_watch (void)
{
  const char *modes[] = { "text", "json" };

  for (guint m = 0; m < G_N_ELEMENTS (modes); m++)
    {
      gboolean json = g_str_equal (modes[m], "json");
      g_autoptr(Run) run = NULL;
      g_auto(GStrv) lines = NULL;
      ExoDBusResource1 *engine, *peer;
      int before;

      fake_reset ();
      engine = g_hash_table_lookup (fake.resources, "engine");
      peer = g_hash_table_lookup (fake.resources, "peer-1");

      before = g_atomic_int_get (&fake.gmo_calls);
      run = json ? run_start (NULL, (const char * const []) { "watch", "--json", "--count", "2", "--timeout", "60", NULL })
                 : run_start (NULL, (const char * const []) { "watch", "--count", "2", "--timeout", "60", NULL });

      /* exoctl subscribes before its GetManagedObjects: once that call is
       * here, the bus routes our signals to it. */
      while (g_atomic_int_get (&fake.gmo_calls) == before && !run->done)
        g_main_context_iteration (NULL, TRUE);
      g_assert_false (run->done);

      fake_set_state ("engine", "degraded", "model not loaded");
      exo_dbus_resource1_emit_state_changed (engine, "ready", "degraded", "model not loaded");
      fake_set_state ("peer-1", "closing", NULL);
      exo_dbus_resource1_emit_state_changed (peer, "ready", "closing", "");
      /* a third one must not be printed: --count 2 */
      exo_dbus_resource1_emit_state_changed (peer, "closing", "closed", "");

      g_assert_cmpint (run_wait (run), ==, 0);
      g_assert_cmpstr (run->err, ==, "");
      lines = g_strsplit (run->out, "\n", -1);
      g_assert_cmpuint (g_strv_length (lines), ==, 3);   /* two lines and "" */
      g_assert_cmpstr (lines[2], ==, "");

      if (!json)
        {
          g_auto(GStrv) w0 = words (lines[0]);
          g_auto(GStrv) w1 = words (lines[1]);

          /* time (date and clock), id, old → new, error */
          g_assert_true (g_regex_match_simple ("^\\d{4}-\\d\\d-\\d\\d$", w0[0], 0, 0));
          g_assert_true (g_regex_match_simple ("^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}$", w0[1], 0, 0));
          g_assert_cmpstr (w0[2], ==, "engine");
          g_assert_cmpstr (w0[3], ==, "ready");
          g_assert_cmpstr (w0[4], ==, "→");
          g_assert_cmpstr (w0[5], ==, "degraded");
          g_assert_nonnull (strstr (lines[0], "model not loaded"));
          g_assert_cmpstr (w1[2], ==, "peer-1");
          g_assert_cmpstr (w1[3], ==, "ready");
          g_assert_cmpstr (w1[5], ==, "closing");
          g_assert_null (w1[6]);
        }
      else
        {
          g_autoptr(JsonNode) n0 = parse_json (lines[0]);
          g_autoptr(JsonNode) n1 = parse_json (lines[1]);
          JsonObject *o0 = json_node_get_object (n0);
          JsonObject *o1 = json_node_get_object (n1);

          g_assert_cmpstr (json_object_get_string_member (o0, "id"), ==, "engine");
          g_assert_cmpstr (json_object_get_string_member (o0, "old_state"), ==, "ready");
          g_assert_cmpstr (json_object_get_string_member (o0, "new_state"), ==, "degraded");
          g_assert_cmpstr (json_object_get_string_member (o0, "error"), ==, "model not loaded");
          g_assert_true (json_object_has_member (o0, "time"));
          g_assert_cmpstr (json_object_get_string_member (o1, "id"), ==, "peer-1");
          g_assert_cmpstr (json_object_get_string_member (o1, "new_state"), ==, "closing");
          g_assert_cmpstr (json_object_get_string_member (o1, "error"), ==, "");
        }
    }

  /* --timeout ends a quiet watch with exit 0. */
  {
    gint64 start = g_get_monotonic_time ();
    g_autoptr(Run) run = EXOCTL ("watch", "--timeout", "0.3");
    gint64 elapsed = g_get_monotonic_time () - start;

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->out, ==, "");
    g_assert_cmpstr (run->err, ==, "");
    g_assert_cmpint (elapsed, >=, 300 * 1000);
    g_assert_cmpint (elapsed, <, 30 * G_USEC_PER_SEC);
  }
}

static void
test_plugins (void)
{
  fake_reset ();
  {
    g_autoptr(Run) run = EXOCTL ("plugins");
    g_autofree char *row = NULL;
    g_auto(GStrv) w = NULL;

    g_assert_cmpint (run->status, ==, 0);
    g_assert_true (g_str_has_prefix (run->out, "NAME "));
    row = row_of (run->out, "dummy-inference");
    g_assert_nonnull (row);
    w = words (row);
    g_assert_cmpstr (w[1], ==, "1.0.0");
    g_assert_cmpstr (w[2], ==, "/usr/lib/exo-1/plugins/dummy-inference.so");
    g_assert_nonnull (strstr (row, "A fake inference engine"));
    g_clear_pointer (&row, g_free);
    row = row_of (run->out, "http-server");
    g_assert_nonnull (row);
    g_assert_nonnull (strstr (run->out, "2 plugins loaded."));
  }
  {
    g_autoptr(Run) run = EXOCTL ("--json", "plugins");
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonArray *a = json_node_get_array (root);
    JsonObject *o;

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpuint (json_array_get_length (a), ==, 2);
    o = json_array_get_object_element (a, 1);
    g_assert_cmpstr (json_object_get_string_member (o, "name"), ==, "http-server");
    g_assert_cmpstr (json_object_get_string_member (o, "version"), ==, "1.2.0");
    g_assert_cmpstr (json_object_get_string_member (o, "path"), ==, "/usr/lib/exo-1/plugins/http-server.so");
    g_assert_cmpstr (json_object_get_string_member (o, "description"), ==, "Peer RPC and the user API");
  }
}

static void
test_node (void)
{
  fake_reset ();
  {
    g_autoptr(Run) run = EXOCTL ("node");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (strstr (run->out, "Node ID: test-node\n"));
    g_assert_nonnull (strstr (run->out, "Version: 0.1.0\n"));
    g_assert_nonnull (strstr (run->out, "State: ready\n"));
    g_assert_nonnull (strstr (run->out, "dummy-inference 1.0.0"));
    g_assert_nonnull (strstr (run->out, "\"memory\" : 1024"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("node", "--json");
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonObject *o = json_node_get_object (root);
    JsonObject *topology;
    JsonArray *plugins;

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (json_object_get_string_member (o, "node_id"), ==, "test-node");
    g_assert_cmpstr (json_object_get_string_member (o, "version"), ==, "0.1.0");
    g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "ready");
    plugins = json_object_get_array_member (o, "plugins");
    g_assert_cmpuint (json_array_get_length (plugins), ==, 2);
    g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (plugins, 0), "name"),
                     ==, "dummy-inference");
    topology = json_object_get_object_member (o, "topology");
    g_assert_nonnull (topology);
    g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (
                       json_object_get_object_member (topology, "nodes"), "test-node"), "memory"), ==, 1024);
  }
}

/* exoctl reads with one GetManagedObjects, never a call per resource. */
static void
test_one_call (void)
{
  int before;

  fake_reset ();
  before = g_atomic_int_get (&fake.gmo_calls);
  {
    g_autoptr(Run) run = EXOCTL ("list");
    g_assert_cmpint (run->status, ==, 0);
  }
  g_assert_cmpint (g_atomic_int_get (&fake.gmo_calls), ==, before + 1);
}

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
  {
    const char *args[] = { "--bus-name", bus_name, "start", "engine-2", NULL };
    g_autoptr(Run) run = run_envv (NULL, args);
    g_assert_cmpint (run->status, ==, 0);
  }
  wait_health (bus_name, TRUE);
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

  /* The node goes away: a running watch says so (exit 3), and then
   * exoctl finds no node (exit 3). */
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

    g_assert_cmpint (run_wait (watch), ==, 3);
    g_assert_nonnull (strstr (watch->err, "went away"));

    list = run_envv (NULL, largs);
    g_assert_cmpint (list->status, ==, 3);
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

  /* By hand: `test-exoctl --serve` runs the fake node until killed, so
   * that exoctl can be tried on a terminal. */
  if (argc > 1 && g_str_equal (argv[1], "--serve"))
    {
      fake_up ();
      g_print ("DBUS_SESSION_BUS_ADDRESS=%s\n", g_test_dbus_get_bus_address (fake.bus));
      while (TRUE)
        g_main_context_iteration (NULL, TRUE);
    }

  /* meson sets EXOCTL; run alone, the binary is next door in the build. */
  exoctl_path = g_getenv ("EXOCTL");
  if (exoctl_path == NULL)
    exoctl_path = g_test_build_filename (G_TEST_BUILT, "..", "src", "exoctl", "exoctl", NULL);

  g_test_add_func ("/exoctl/usage", test_usage);
  g_test_add_func ("/exoctl/not-running", test_not_running);
  g_test_add_func ("/exoctl/list", test_list);
  g_test_add_func ("/exoctl/list/json", test_list_json);
  g_test_add_func ("/exoctl/list/one-call", test_one_call);
  g_test_add_func ("/exoctl/status", test_status);
  g_test_add_func ("/exoctl/health", test_health);
  g_test_add_func ("/exoctl/methods", test_methods);
  g_test_add_func ("/exoctl/tree", test_tree);
  g_test_add_func ("/exoctl/watch", test_watch);
  g_test_add_func ("/exoctl/plugins", test_plugins);
  g_test_add_func ("/exoctl/node", test_node);
  g_test_add_func ("/exoctl/real-node", test_real_node);

  fake_up ();
  rc = g_test_run ();
  fake_down ();
  return rc;
}
