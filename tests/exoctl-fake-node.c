/* exoctl-fake-node.c: the fake exo-node the exoctl tests run exoctl
 * against, and running exoctl (exoctl-fake-node.h says what and the rules).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exoctl-fake-node.h"

#include <string.h>

/* ------------------------------------------------------------ fake node */

const FakeSpec fake_specs[N_FAKE] = {
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

Fake fake;
const char *exoctl_path;

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

void
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

void
fake_reset (void)
{
  for (guint i = 0; i < N_FAKE; i++)
    {
      ExoDBusResource1 *r = g_hash_table_lookup (fake.resources, fake_specs[i].id);

      exo_dbus_resource1_set_state (r, "ready");
      exo_dbus_resource1_set_healthy (r, TRUE);
      exo_dbus_resource1_set_last_error (r, "");
      exo_dbus_resource1_set_error_count (r, 0);
      exo_dbus_resource1_set_result (r, "");
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
                                                  /* a node's text: exoctl prints it on one
                                                   * line, without terminal controls */
                                                  "bind to port 5678 failed:\nAddress already in use\033[2J\302\233");
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

void
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

void
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

void
run_free (Run *run)
{
  g_clear_object (&run->proc);
  g_free (run->out);
  g_free (run->err);
  g_free (run);
}

static void
on_communicated (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Run *run = user_data;
  g_autoptr(GError) error = NULL;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &run->out, &run->err, &error);
  g_assert_no_error (error);
  if (run->out == NULL)                  /* stdout was not a pipe */
    run->out = g_strdup ("");
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

Run *
run_start (const char * const *env, const char * const *args)
{
  return run_start_fd (env, args, -1);
}

Run *
run_start_fd (const char * const *env, const char * const *args, int stdout_fd)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();

  launcher = g_subprocess_launcher_new ((stdout_fd < 0 ? G_SUBPROCESS_FLAGS_STDOUT_PIPE : 0) |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  if (stdout_fd >= 0)
    g_subprocess_launcher_take_stdout_fd (launcher, stdout_fd);
  g_subprocess_launcher_setenv (launcher, "LC_ALL", "C.UTF-8", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "NO_COLOR");
  /* Whatever the caller's terminal has: tables uncut, no pager chosen. */
  g_subprocess_launcher_unsetenv (launcher, "COLUMNS");
  g_subprocess_launcher_unsetenv (launcher, "EXO_PAGER");
  g_subprocess_launcher_unsetenv (launcher, "PAGER");
  g_subprocess_launcher_unsetenv (launcher, "LESS");
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
  return run_spawn (launcher, (const char * const *) argv->pdata);
}

Run *
run_spawn (GSubprocessLauncher *launcher, const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  Run *run = g_new0 (Run, 1);

  run->proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (run->proc, NULL, NULL, on_communicated, run);
  run->timeout_id = g_timeout_add_seconds (60, on_run_timeout, run);
  return run;
}

int
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

Run *
run_envv (const char * const *env, const char * const *args)
{
  Run *run = run_start (env, args);

  run_wait (run);
  return run;
}

JsonNode *
parse_json (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (json_parser_get_root (parser));
  return json_node_copy (json_parser_get_root (parser));
}

JsonObject *
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

gboolean
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

char *
row_of (const char *out, const char *id)
{
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  g_autofree char *prefix = g_strconcat (id, " ", NULL);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      return g_strdup (lines[i]);
  return NULL;
}

GStrv
words (const char *line)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_auto(GStrv) parts = g_strsplit_set (line, " ", -1);

  for (guint i = 0; parts[i] != NULL; i++)
    if (parts[i][0] != '\0')
      g_strv_builder_add (b, parts[i]);
  return g_strv_builder_end (b);
}


/* ------------------------------------------------------- bash completion */

#define BASH_COMPLETION "/usr/share/bash-completion/bash_completion"

/* Sources bash-completion and exoctl's script, fills COMP_WORDS as bash
 * does for $1 (split at blanks, and at "=" as COMP_WORDBREAKS has it),
 * calls _exoctl and prints COMPREPLY one per line.  Exit 97 when the
 * script did not register _exoctl for exoctl. */
static const char completion_driver[] =
  ". \"$1\" || exit 99\n"
  ". \"$2\" || exit 98\n"
  "[[ $(complete -p exoctl 2>/dev/null) == 'complete -F _exoctl exoctl' ]] || exit 97\n"
  "COMP_LINE=$3 COMP_POINT=${#3}\n"
  "read -ra raw <<<\"$COMP_LINE\"\n"
  "COMP_WORDS=()\n"
  "for w in \"${raw[@]}\"; do\n"
  "  if [[ $w == ?*=* ]]; then COMP_WORDS+=(\"${w%%=*}\" = \"${w#*=}\")\n"
  "  else COMP_WORDS+=(\"$w\"); fi\n"
  "done\n"
  "[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')\n"
  "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
  "COMPREPLY=()\n"
  "_exoctl \"${COMP_WORDS[0]}\" \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD - 1]}\"\n"
  "printf '%s\\n' \"${COMPREPLY[@]}\"\n";

gboolean
completion_available (void)
{
  return g_file_test (BASH_COMPLETION, G_FILE_TEST_EXISTS);
}

Run *
run_completion (const char *line)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autofree char *script = NULL;
  g_autofree char *dir = g_path_get_dirname (exoctl_path);
  g_autofree char *path = g_strconcat (dir, ":", g_getenv ("PATH"), NULL);
  const char *argv[] = { "bash", "--norc", "--noprofile", "-c", completion_driver, "bash",
                         BASH_COMPLETION, NULL, line, NULL };
  Run *run;

  script = g_strdup (g_getenv ("EXOCTL_COMPLETION"));
  if (script == NULL)
    script = g_test_build_filename (G_TEST_DIST, "..", "data", "completion", "exoctl", NULL);
  argv[7] = script;

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "PATH", path, TRUE);   /* exoctl: the one built */
  g_subprocess_launcher_setenv (launcher, "LC_ALL", "C.UTF-8", TRUE);
  run = run_spawn (launcher, argv);
  run_wait (run);
  return run;
}
