/* daemon-fixture.c: the Fixture of test-daemon (a private bus, a temporary
 * folder) and the Node (the real exo-node as a subprocess, its log, its
 * exit), with a D-Bus client to ask it its state.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * exo-node and the bus are subprocesses; an isolated node runs in a network
 * namespace of its own (unshare, as root).  One thread: waits spin the
 * test's thread-default main context; the synchronous D-Bus calls go to
 * the node, another process.
 */
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon-fixture.h"
#include "exo-test-bus.h"

void
fixture_setup (Fixture *f, gconstpointer data)
{
  static char *node_fallback, *plugins_fallback;

  f->exo_node = g_getenv ("EXO_NODE");
  f->plugin_dir = g_getenv ("EXO_TEST_PLUGIN_DIR");
  if (f->exo_node == NULL && node_fallback == NULL)
    {
      /* run by hand or by gtester: the build tree next to this program */
      g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
      g_autofree char *dir = self ? g_path_get_dirname (self) : NULL;

      if (dir != NULL)
        {
          node_fallback = g_build_filename (dir, "..", "src", "daemon", "exo-node", NULL);
          plugins_fallback = g_build_filename (dir, "..", "plugins", NULL);
        }
    }
  if (f->exo_node == NULL && node_fallback != NULL
      && g_file_test (node_fallback, G_FILE_TEST_IS_EXECUTABLE))
    {
      f->exo_node = node_fallback;
      f->plugin_dir = plugins_fallback;
    }
  f->tmpdir = g_dir_make_tmp ("exo-daemon-XXXXXX", NULL);
  g_assert_nonnull (f->tmpdir);

  /* A bus on a filesystem socket (not an abstract one): reachable from a
   * node that runs in its own network namespace too. */
  {
    g_autofree char *socket_path = g_build_filename (f->tmpdir, "bus", NULL);

    f->bus = exo_test_bus_spawn (socket_path, &f->bus_address);
  }
}

static void
rm_rf (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        rm_rf (path);
      else
        g_unlink (path);
    }
  g_rmdir (dir);
}

void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_subprocess_force_exit (f->bus);
  g_subprocess_wait (f->bus, NULL, NULL);
  g_clear_object (&f->bus);
  g_clear_pointer (&f->bus_address, g_free);
  rm_rf (f->tmpdir);
  g_free (f->tmpdir);
}

gboolean
have_daemon (Fixture *f)
{
  if (f->exo_node == NULL || f->plugin_dir == NULL)
    {
      g_test_skip ("EXO_NODE / EXO_TEST_PLUGIN_DIR not set");
      return FALSE;
    }
  return TRUE;
}

gboolean
can_isolate (void)
{
  g_autofree char *unshare = g_find_program_in_path ("unshare");
  g_autofree char *ip = g_find_program_in_path ("ip");
  int status = -1;

  if (getuid () != 0 || unshare == NULL || ip == NULL)
    return FALSE;
  if (!g_spawn_command_line_sync ("unshare --net -- true", NULL, NULL, &status, NULL))
    return FALSE;
  return g_spawn_check_wait_status (status, NULL);
}

const char engine_config[] =
  "{ \"resources\": [ { \"id\": \"engine\", \"type\": \"dummy-inference\" } ] }\n";

char *
write_file (Fixture *f, const char *name, const char *contents)
{
  char *path = g_build_filename (f->tmpdir, name, NULL);
  g_assert_true (g_file_set_contents (path, contents, -1, NULL));
  return path;
}

static Node *node_start_argv (Fixture *f, gboolean isolated, const char *log_name, va_list ap);

Node *
node_start (Fixture *f, const char *log_name, ...)
{
  Node *node;
  va_list ap;

  va_start (ap, log_name);
  node = node_start_argv (f, FALSE, log_name, ap);
  va_end (ap);
  return node;
}

/* In a network namespace of its own with only loopback: for configs whose
 * discovery broadcasts (the default one), so that tests send nothing to any
 * real network. */
Node *
node_start_isolated (Fixture *f, const char *log_name, ...)
{
  Node *node;
  va_list ap;

  va_start (ap, log_name);
  node = node_start_argv (f, TRUE, log_name, ap);
  va_end (ap);
  return node;
}

static Node *
node_start_argv (Fixture *f, gboolean isolated, const char *log_name, va_list ap)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  Node *node = g_new0 (Node, 1);
  const char *arg;

  node->log_path = g_build_filename (f->tmpdir, log_name, NULL);
  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS",
                                f->bus_address, TRUE);
  /* the state directory (the cluster key) of this test, as systemd's
   * StateDirectory= sets it */
  {
    g_autofree char *state = g_build_filename (f->tmpdir, "state", NULL);

    g_subprocess_launcher_setenv (launcher, "STATE_DIRECTORY", state, TRUE);
  }
  g_subprocess_launcher_unsetenv (launcher, "EXO_PLUGIN_PATH");
  /* relative paths given to a node are relative to the test's folder */
  g_subprocess_launcher_set_cwd (launcher, f->tmpdir);
  g_subprocess_launcher_set_stderr_file_path (launcher, node->log_path);
  g_subprocess_launcher_set_stdout_file_path (launcher, node->log_path);

  if (isolated)
    {
      g_ptr_array_add (argv, (gpointer) "unshare");
      g_ptr_array_add (argv, (gpointer) "--net");
      g_ptr_array_add (argv, (gpointer) "--");
      g_ptr_array_add (argv, (gpointer) "sh");
      g_ptr_array_add (argv, (gpointer) "-c");
      g_ptr_array_add (argv, (gpointer) "ip link set lo up && exec \"$0\" \"$@\"");
    }
  g_ptr_array_add (argv, (gpointer) f->exo_node);
  g_ptr_array_add (argv, (gpointer) "--plugin-dir");
  g_ptr_array_add (argv, (gpointer) f->plugin_dir);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (gpointer) arg);
  g_ptr_array_add (argv, NULL);

  node->proc = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  return node;
}

char *
node_log (Node *node)
{
  char *contents = NULL;
  g_file_get_contents (node->log_path, &contents, NULL, NULL);
  return contents ? contents : g_strdup ("");
}

static gboolean
wait_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
waited_cb (GObject *source, GAsyncResult *result, gpointer data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) data = TRUE;
}

/* Wait for the process to exit; returns its exit status, or -1 on timeout. */
int
node_wait (Node *node, guint timeout_ms)
{
  gboolean expired = FALSE, done = FALSE;
  guint id = g_timeout_add (timeout_ms, wait_cb, &expired);

  g_subprocess_wait_async (node->proc, NULL, waited_cb, &done);
  while (!done)
    {
      g_main_context_iteration (NULL, TRUE);
      if (expired && !done)
        {
          g_subprocess_force_exit (node->proc);
          expired = FALSE;
          id = 0;
          while (!done)
            g_main_context_iteration (NULL, TRUE);
          return -1;
        }
    }
  if (id != 0 && !expired)
    g_source_remove (id);
  return g_subprocess_get_if_exited (node->proc) ? g_subprocess_get_exit_status (node->proc) : 128;
}

void
node_free (Node *node)
{
  if (node->proc != NULL && g_subprocess_get_identifier (node->proc) != NULL)
    {
      g_subprocess_force_exit (node->proc);
      g_subprocess_wait (node->proc, NULL, NULL);
    }
  /* keep the log in the test output when something failed */
  if (g_test_failed ())
    {
      g_autofree char *log = node_log (node);
      g_test_message ("%s:\n%s", node->log_path, log);
    }
  g_clear_object (&node->proc);
  g_free (node->log_path);
  g_free (node);
}

GDBusConnection *
client (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *c = g_dbus_connection_new_for_address_sync (
      f->bus_address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  g_assert_no_error (error);
  return c;
}

static char *
get_node_state (GDBusConnection *c, const char *bus_name)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) value = NULL;

  reply = g_dbus_connection_call_sync (c, bus_name, "/org/exo/Node1",
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", "org.exo.Node1", "State"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, 2000,
                                       NULL, NULL);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(v)", &value);
  return g_variant_dup_string (value, NULL);
}

gboolean
wait_node_ready (GDBusConnection *c, const char *bus_name, guint timeout_ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  while (g_get_monotonic_time () < end)
    {
      g_autofree char *state = get_node_state (c, bus_name);
      if (g_strcmp0 (state, "ready") == 0)
        return TRUE;
      g_usleep (20000);
    }
  return FALSE;
}
