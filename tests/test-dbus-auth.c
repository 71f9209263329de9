/* test-dbus-auth.c: who may call exo-node — a caller that is not root
 * (nobody, through setpriv or runuser) and the system-bus policy of
 * data/org.exo.Node1.conf, each on a dbus-daemon of its own.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-dbus (main() in test-dbus.c).  The cases skip when not root.
 * The bus daemon and the other callers are subprocesses; the export runs in
 * this thread on the thread-default main context, which the test spins while
 * it waits for them.
 */
#include <unistd.h>
#include <signal.h>
#include <glib/gstdio.h>

#include "dbus-fixture.h"

/* --- authorization: a caller that is not root ---------------------------- */

typedef struct
{
  GSubprocess *bus;
  char        *dir;
  char        *address;
} OwnBus;

/* A dbus-daemon of our own with @body inside <busconfig> (GTestDBus lets
 * only our own uid connect). */
static gboolean
own_bus_start (OwnBus      *bus,
               const char  *body,
               GError     **error)
{
  g_autofree char *config = NULL;
  g_autofree char *config_path = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  char *line;

  bus->dir = g_dir_make_tmp ("exo-test-dbus-XXXXXX", error);
  if (bus->dir == NULL)
    return FALSE;
  config_path = g_build_filename (bus->dir, "bus.conf", NULL);
  config = g_strconcat (
    "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
    " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
    "<busconfig>\n"
    "  <listen>unix:tmpdir=/tmp</listen>\n"
    "  <auth>EXTERNAL</auth>\n",
    body,
    "</busconfig>\n", NULL);
  if (!g_file_set_contents (config_path, config, -1, error))
    return FALSE;

  bus->bus = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, error,
                               "dbus-daemon", "--nofork", "--nopidfile", "--print-address=1",
                               "--config-file", config_path, NULL);
  if (bus->bus == NULL)
    return FALSE;
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (bus->bus));
  line = g_data_input_stream_read_line (out, NULL, NULL, error);
  if (line == NULL)
    {
      if (error != NULL && *error == NULL)
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "dbus-daemon printed no address");
      return FALSE;
    }
  bus->address = g_strstrip (line);
  return TRUE;
}

/* Everybody may connect and do anything. */
static const char open_bus_config[] =
  "  <type>session</type>\n"
  "  <policy context=\"default\">\n"
  "    <allow user=\"*\"/>\n"
  "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
  "    <allow eavesdrop=\"true\"/>\n"
  "    <allow own=\"*\"/>\n"
  "  </policy>\n";

static void
own_bus_stop (OwnBus *bus)
{
  if (bus->bus != NULL)
    {
      g_subprocess_send_signal (bus->bus, SIGTERM);
      g_subprocess_wait (bus->bus, NULL, NULL);
    }
  g_clear_object (&bus->bus);
  if (bus->dir != NULL)
    {
      g_autofree char *config_path = g_build_filename (bus->dir, "bus.conf", NULL);

      g_unlink (config_path);
      g_rmdir (bus->dir);
    }
  g_clear_pointer (&bus->dir, g_free);
  g_clear_pointer (&bus->address, g_free);
}

typedef struct
{
  gboolean  done;
  gboolean  ok;
  char     *out;
  char     *err;
} RunResult;

static void
communicate_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  RunResult *run = user_data;
  g_autoptr(GError) error = NULL;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &run->out, &run->err, &error);
  g_assert_no_error (error);
  run->ok = g_subprocess_get_if_exited (G_SUBPROCESS (source)) &&
            g_subprocess_get_exit_status (G_SUBPROCESS (source)) == 0;
  run->done = TRUE;
}

static gboolean
run_done (gpointer data)
{
  return ((RunResult *) data)->done;
}

/* Runs `gdbus call` as @user (NULL: as ourselves) while this context keeps
 * serving the export. */
static void
gdbus_call_as_full (const char         *user,
                    const char         *address,
                    const char         *dest,
                    const char         *path,
                    const char         *method,
                    const char * const *args,
                    RunResult          *run)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");

  if (user != NULL && setpriv != NULL)
    {
      g_ptr_array_add (argv, "setpriv");
      g_ptr_array_add (argv, "--reuid=nobody");
      g_ptr_array_add (argv, "--regid=nogroup");
      g_ptr_array_add (argv, "--clear-groups");
    }
  else if (user != NULL)
    {
      g_ptr_array_add (argv, "runuser");
      g_ptr_array_add (argv, "-u");
      g_ptr_array_add (argv, (char *) user);
      g_ptr_array_add (argv, "--");
    }
  g_ptr_array_add (argv, "gdbus");
  g_ptr_array_add (argv, "call");
  g_ptr_array_add (argv, "--address");
  g_ptr_array_add (argv, (char *) address);
  g_ptr_array_add (argv, "--dest");
  g_ptr_array_add (argv, (char *) dest);
  g_ptr_array_add (argv, "--object-path");
  g_ptr_array_add (argv, (char *) path);
  g_ptr_array_add (argv, "--method");
  g_ptr_array_add (argv, (char *) method);
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (argv, (char *) args[i]);
  g_ptr_array_add (argv, NULL);

  memset (run, 0, sizeof *run);
  process = g_subprocess_newv ((const char * const *) argv->pdata,
                               G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                               &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (process, NULL, NULL, communicate_cb, run);
  g_assert_true (exo_test_spin_until (run_done, run, WAIT_MS));
}

static void
gdbus_call_as (const char *user,
               const char *address,
               const char *dest,
               const char *path,
               const char *method,
               RunResult  *run)
{
  gdbus_call_as_full (user, address, dest, path, method, NULL, run);
}

static void
run_result_clear (RunResult *run)
{
  g_clear_pointer (&run->out, g_free);
  g_clear_pointer (&run->err, g_free);
}

static void
test_auth_nobody (void)
{
  OwnBus bus = { NULL, };
  Fixture fixture = { NULL, };
  Fixture *f = &fixture;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");
  g_autofree char *runuser = g_find_program_in_path ("runuser");
  g_autofree char *gdbus = g_find_program_in_path ("gdbus");
  g_autofree char *dbus_daemon = g_find_program_in_path ("dbus-daemon");
  const char *path = RESOURCE_PATH ("db");
  RunResult run;
  guint n_init;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root to run a caller as nobody");
      return;
    }
  if ((setpriv == NULL && runuser == NULL) || gdbus == NULL || dbus_daemon == NULL)
    {
      g_test_skip ("needs setpriv or runuser, gdbus and dbus-daemon");
      return;
    }
  if (!own_bus_start (&bus, open_bus_config, &error))
    {
      g_test_skip_printf ("cannot start a dbus-daemon: %s", error->message);
      own_bus_stop (&bus);
      return;
    }

  fixture_set_up_on (f, bus.address);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->db), NULL));
  n_init = f->db->n_init_calls;

  /* nobody may read… */
  gdbus_call_as ("nobody", bus.address, f->server_name, path, "org.exo.Resource1.CheckHealth", &run);
  if (!run.ok)
    g_error ("nobody's CheckHealth failed: %s", run.err);
  g_assert_nonnull (strstr (run.out, "true"));
  run_result_clear (&run);

  /* …but not change anything. */
  gdbus_call_as ("nobody", bus.address, f->server_name, path, "org.exo.Resource1.Restart", &run);
  g_assert_false (run.ok);
  g_test_message ("nobody's Restart: %s", run.err);
  g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
  g_assert_nonnull (strstr (run.err, "Restart"));
  run_result_clear (&run);
  g_assert_cmpuint (f->db->n_init_calls, ==, n_init);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->db)), ==, EXO_RESOURCE_STATE_READY);

  gdbus_call_as ("nobody", bus.address, f->server_name, path, "org.exo.Resource1.Cleanup", &run);
  g_assert_false (run.ok);
  g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
  run_result_clear (&run);
  gdbus_call_as ("nobody", bus.address, f->server_name, path, "org.exo.Resource1.Initialize", &run);
  g_assert_false (run.ok);
  g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
  run_result_clear (&run);
  gdbus_call_as ("nobody", bus.address, f->server_name, EXO_DBUS_NODE_PATH,
                 "org.exo.Node1.Shutdown", &run);
  g_assert_false (run.ok);
  g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
  run_result_clear (&run);
  g_assert_cmpuint (f->n_shutdown_requests, ==, 0);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->db)), ==, EXO_RESOURCE_STATE_READY);

  /* root may, from another process and from our client connection. */
  gdbus_call_as (NULL, bus.address, f->server_name, path, "org.exo.Resource1.Restart", &run);
  if (!run.ok)
    g_error ("root's Restart failed: %s", run.err);
  run_result_clear (&run);
  g_assert_cmpuint (f->db->n_init_calls, ==, n_init + 1);
  reply = call (f, path, "org.exo.Resource1", "Restart", NULL, G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f->db->n_init_calls, ==, n_init + 2);

  fixture_tear_down (f, NULL);
  own_bus_stop (&bus);
}

/* data/org.exo.Node1.conf in a bus configured like Debian's system bus:
 * nobody may read, but the bus itself refuses the changing methods, and
 * only root may own the name. */
static void
test_policy_system_bus (void)
{
  OwnBus bus = { NULL, };
  Fixture fixture = { NULL, };
  Fixture *f = &fixture;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");
  g_autofree char *runuser = g_find_program_in_path ("runuser");
  g_autofree char *gdbus = g_find_program_in_path ("gdbus");
  g_autofree char *dbus_daemon = g_find_program_in_path ("dbus-daemon");
  g_autofree char *policy = g_build_filename (EXO_TEST_DATADIR, "org.exo.Node1.conf", NULL);
  g_autofree char *config = NULL;
  const char *path = RESOURCE_PATH ("db");
  const char *get_args[] = { "org.exo.Resource1", "State", NULL };
  const char *get_resource_args[] = { "db", NULL };
  const char *own_args[] = { "org.exo.Node1", "0", NULL };
  const char *changing[] = {
    "org.exo.Resource1.Restart", "org.exo.Resource1.Initialize", "org.exo.Resource1.Cleanup",
  };
  RunResult run;
  guint32 owned = 0;
  guint n_init;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root to run a caller as nobody");
      return;
    }
  if ((setpriv == NULL && runuser == NULL) || gdbus == NULL || dbus_daemon == NULL)
    {
      g_test_skip ("needs setpriv or runuser, gdbus and dbus-daemon");
      return;
    }

  config = g_strdup_printf (
    "  <type>system</type>\n"
    "  <policy context=\"default\">\n"
    "    <allow user=\"*\"/>\n"
    "    <deny own=\"*\"/>\n"
    "    <deny send_type=\"method_call\"/>\n"
    "    <allow send_type=\"signal\"/>\n"
    "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
    "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
    "    <allow receive_type=\"method_call\"/>\n"
    "    <allow receive_type=\"method_return\"/>\n"
    "    <allow receive_type=\"error\"/>\n"
    "    <allow receive_type=\"signal\"/>\n"
    "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
    "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
    "  </policy>\n"
    "  <include>%s</include>\n", policy);
  if (!own_bus_start (&bus, config, &error))
    {
      g_test_skip_printf ("cannot start a dbus-daemon: %s", error->message);
      own_bus_stop (&bus);
      return;
    }

  fixture_set_up_on (f, bus.address);
  reply = g_dbus_connection_call_sync (f->server, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "RequestName",
                                       g_variant_new ("(su)", "org.exo.Node1", 0),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, WAIT_MS,
                                       NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &owned);
  g_assert_cmpuint (owned, ==, 1);   /* DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER */
  g_clear_pointer (&reply, g_variant_unref);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->db), NULL));
  n_init = f->db->n_init_calls;

  /* nobody reads. */
  gdbus_call_as ("nobody", bus.address, "org.exo.Node1", path, "org.exo.Resource1.CheckHealth", &run);
  if (!run.ok)
    g_error ("nobody's CheckHealth failed: %s", run.err);
  run_result_clear (&run);
  gdbus_call_as_full ("nobody", bus.address, "org.exo.Node1", path,
                      "org.freedesktop.DBus.Properties.Get", get_args, &run);
  if (!run.ok)
    g_error ("nobody's Properties.Get failed: %s", run.err);
  g_assert_nonnull (strstr (run.out, "ready"));
  run_result_clear (&run);
  gdbus_call_as ("nobody", bus.address, "org.exo.Node1", EXO_DBUS_NODE_PATH,
                 "org.freedesktop.DBus.ObjectManager.GetManagedObjects", &run);
  if (!run.ok)
    g_error ("nobody's GetManagedObjects failed: %s", run.err);
  g_assert_nonnull (strstr (run.out, path));
  run_result_clear (&run);
  gdbus_call_as_full ("nobody", bus.address, "org.exo.Node1", EXO_DBUS_NODE_PATH,
                      "org.exo.Node1.GetResource", get_resource_args, &run);
  if (!run.ok)
    g_error ("nobody's GetResource failed: %s", run.err);
  run_result_clear (&run);

  /* The bus refuses the rest before exo-node sees it. */
  for (guint i = 0; i < G_N_ELEMENTS (changing); i++)
    {
      gdbus_call_as ("nobody", bus.address, "org.exo.Node1", path, changing[i], &run);
      g_assert_false (run.ok);
      g_test_message ("nobody's %s: %s", changing[i], run.err);
      g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
      run_result_clear (&run);
    }
  gdbus_call_as ("nobody", bus.address, "org.exo.Node1", EXO_DBUS_NODE_PATH,
                 "org.exo.Node1.Shutdown", &run);
  g_assert_false (run.ok);
  g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
  run_result_clear (&run);
  g_assert_cmpuint (f->n_shutdown_requests, ==, 0);
  g_assert_cmpuint (f->db->n_init_calls, ==, n_init);

  /* Only root owns the name. */
  gdbus_call_as_full ("nobody", bus.address, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                      "org.freedesktop.DBus.RequestName", own_args, &run);
  g_assert_false (run.ok);
  g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
  run_result_clear (&run);

  /* root may. */
  gdbus_call_as (NULL, bus.address, "org.exo.Node1", path, "org.exo.Resource1.Restart", &run);
  if (!run.ok)
    g_error ("root's Restart failed: %s", run.err);
  run_result_clear (&run);
  g_assert_cmpuint (f->db->n_init_calls, ==, n_init + 1);
  reply = call_full (f->client, "org.exo.Node1", path, "org.exo.Resource1", "Restart", NULL,
                     G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f->db->n_init_calls, ==, n_init + 2);

  fixture_tear_down (f, NULL);
  own_bus_stop (&bus);
}

/* --- registration ---------------------------------------------------- */

void
test_dbus_register_auth (void)
{
  g_test_add_func ("/exo/dbus/auth/nobody", test_auth_nobody);
  g_test_add_func ("/exo/dbus/auth/system-bus-policy", test_policy_system_bus);
}
