/* outage-fixture.c: the harness of test-outage — a Fixture with a private
 * bus and the real exo-node, the TCP server its backend connects to, and
 * the node seen from outside over D-Bus (states, GetAll samples, metrics).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The bus and exo-node are subprocesses that die with the test
 * (PR_SET_PDEATHSIG).  One thread: the server's accepts, the StateChanged
 * subscriptions and the D-Bus calls run on the test's thread-default main
 * context; the synchronous calls go to other processes only.
 */
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/prctl.h>

#include "outage-fixture.h"
#include "exo-test-bus.h"

/* --- the fixture ------------------------------------------------------- */

void
sample_clear (Sample *s)
{
  g_clear_pointer (&s->state, g_free);
  g_clear_pointer (&s->result, g_free);
  g_clear_pointer (&s->last_error, g_free);
}

guint
bound_ms (guint ms)
{
  return ms * exo_test_slow_factor ();
}

double
ms_since (gint64 t0_us)
{
  return (g_get_monotonic_time () - t0_us) / 1000.0;
}

/* Children die with the test, also when an assertion aborts it. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, GPOINTER_TO_INT (data));
}

static const char *
build_fallback (const char *relative)
{
  static GHashTable *paths;
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = self != NULL ? g_path_get_dirname (self) : NULL;
  char *path;

  if (dir == NULL)
    return NULL;
  if (paths == NULL)
    paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  path = g_hash_table_lookup (paths, relative);
  if (path == NULL)
    {
      path = g_build_filename (dir, relative, NULL);
      g_hash_table_insert (paths, g_strdup (relative), path);
    }
  return g_file_test (path, G_FILE_TEST_EXISTS) ? path : NULL;
}

void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->exo_node = g_getenv ("EXO_NODE");
  f->plugin_dir = g_getenv ("EXO_TEST_OUTAGE_PLUGIN_DIR");
  f->exoctl = g_getenv ("EXOCTL");
  /* run by hand or by gtester: the build tree next to this program */
  if (f->exo_node == NULL)
    f->exo_node = build_fallback ("../src/daemon/exo-node");
  if (f->plugin_dir == NULL)
    f->plugin_dir = build_fallback ("outage-plugin");
  if (f->exoctl == NULL)
    f->exoctl = build_fallback ("../src/exoctl/exoctl");

  f->server.connections = g_ptr_array_new_with_free_func (g_object_unref);
  f->trace = g_string_new (NULL);
  f->tmpdir = g_dir_make_tmp ("exo-outage-XXXXXX", NULL);
  g_assert_nonnull (f->tmpdir);
  /* Removed in the teardown.  An assertion aborts the program before it:
   * the children die with it (die_with_parent), the folder stays, with
   * exo-node.log in it. */
  g_test_message ("temporary folder: %s", f->tmpdir);
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

char *
node_log (Fixture *f)
{
  char *contents = NULL;

  if (f->node_log == NULL || !g_file_get_contents (f->node_log, &contents, NULL, NULL))
    return g_strdup ("");
  return contents;
}

static void
watch_clear (Fixture *f, Watch *w)
{
  if (w->subscription != 0 && f->c != NULL)
    g_dbus_connection_signal_unsubscribe (f->c, w->subscription);
  w->subscription = 0;
  g_clear_pointer (&w->id, g_free);
  if (w->changes != NULL)
    g_string_free (w->changes, TRUE);
  w->changes = NULL;
}

void
fixture_teardown (Fixture *f, gconstpointer data)
{
  watch_clear (f, &f->backend);
  watch_clear (f, &f->consumer);
  if (f->c != NULL)
    g_dbus_connection_close_sync (f->c, NULL, NULL);
  g_clear_object (&f->c);

  if (f->node != NULL)
    {
      if (g_subprocess_get_identifier (f->node) != NULL)
        {
          g_subprocess_force_exit (f->node);
          g_subprocess_wait (f->node, NULL, NULL);
        }
      g_clear_object (&f->node);
    }
  if (g_test_failed ())
    {
      g_autofree char *log = node_log (f);

      g_test_message ("samples of the last phase:\n%s", f->trace->str);
      g_test_message ("%s:\n%s", f->node_log ? f->node_log : "(no node)", log);
    }

  if (f->bus != NULL)
    {
      g_subprocess_force_exit (f->bus);
      g_subprocess_wait (f->bus, NULL, NULL);
      g_clear_object (&f->bus);
    }

  server_stop (&f->server);
  g_ptr_array_unref (f->server.connections);
  g_string_free (f->trace, TRUE);
  g_clear_pointer (&f->backend_path, g_free);
  g_clear_pointer (&f->consumer_path, g_free);
  g_clear_pointer (&f->node_log, g_free);
  g_clear_pointer (&f->bus_address, g_free);
  rm_rf (f->tmpdir);
  g_free (f->tmpdir);
}

gboolean
have_programs (Fixture *f)
{
  g_autofree char *dbus_daemon = g_find_program_in_path ("dbus-daemon");

  if (dbus_daemon == NULL)
    {
      g_test_skip ("dbus-daemon is not installed");
      return FALSE;
    }
  if (f->exo_node == NULL || f->plugin_dir == NULL)
    {
      g_test_skip ("EXO_NODE / EXO_TEST_OUTAGE_PLUGIN_DIR not set and no build tree found");
      return FALSE;
    }
  return TRUE;
}

/* A private bus on a socket in the temporary folder. */
void
start_bus (Fixture *f)
{
  g_autofree char *socket_path = g_build_filename (f->tmpdir, "bus", NULL);
  g_autoptr(GError) error = NULL;

  f->bus = exo_test_bus_spawn (socket_path, &f->bus_address);

  f->c = g_dbus_connection_new_for_address_sync (f->bus_address,
                                                 G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                 G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                 NULL, NULL, &error);
  g_assert_no_error (error);
}

/* --- the TCP server ----------------------------------------------------- */

static gboolean
server_incoming_cb (GSocketService    *service,
                    GSocketConnection *connection,
                    GObject           *source_object,
                    gpointer           user_data)
{
  Server *s = user_data;

  s->accepted++;
  g_ptr_array_add (s->connections, g_object_ref (connection));
  return TRUE;
}

static gboolean
server_listen (Server   *s,
               guint16   port,
               GError  **error)
{
  g_autoptr(GSocketService) service = g_socket_service_new ();
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, port);
  g_autoptr(GSocketAddress) effective = NULL;

  g_assert_null (s->service);
  /* GSocketListener binds with SO_REUSEADDR: the port is free again at once. */
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (service), address, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, NULL, &effective, error))
    return FALSE;
  s->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  g_signal_connect (service, "incoming", G_CALLBACK (server_incoming_cb), s);
  g_socket_service_start (service);
  s->service = g_steal_pointer (&service);
  return TRUE;
}

/* "Killed": nothing listens and every connection it had is closed. */
void
server_stop (Server *s)
{
  if (s->service != NULL)
    {
      g_socket_service_stop (s->service);
      g_socket_listener_close (G_SOCKET_LISTENER (s->service));
      g_clear_object (&s->service);
    }
  for (guint i = 0; i < s->connections->len; i++)
    g_io_stream_close (g_ptr_array_index (s->connections, i), NULL, NULL);
  g_ptr_array_set_size (s->connections, 0);
}

/* The port stays the server's across restarts, so it is taken below the
 * range of ephemeral ports: a connect to it while nothing listens can then
 * never be a TCP self-connect (source port = destination port). */
void
server_start_first (Server *s)
{
  g_autofree char *range = NULL;
  guint low = 32768;

  if (g_file_get_contents ("/proc/sys/net/ipv4/ip_local_port_range", &range, NULL, NULL))
    low = (guint) g_ascii_strtoull (range, NULL, 10);
  for (guint i = 0; low > 11000 && i < 50; i++)
    {
      guint16 port = (guint16) g_random_int_range (10000, (gint32) low);

      if (server_listen (s, port, NULL))
        return;
    }

  {
    g_autoptr(GError) error = NULL;

    g_test_message ("no free port below the ephemeral range: using one in it");
    server_listen (s, 0, &error);
    g_assert_no_error (error);
  }
}

void
server_restart (Server *s)
{
  g_autoptr(GError) error = NULL;

  server_listen (s, s->port, &error);
  g_assert_no_error (error);
}

/* --- the node ----------------------------------------------------------- */

static void
state_changed_cb (GDBusConnection *connection,
                  const char      *sender,
                  const char      *path,
                  const char      *iface,
                  const char      *signal,
                  GVariant        *parameters,
                  gpointer         user_data)
{
  Watch *w = user_data;
  const char *old_state, *new_state, *message;

  g_variant_get (parameters, "(&s&s&s)", &old_state, &new_state, &message);
  g_string_append_printf (w->changes, "%s->%s,", old_state, new_state);
  w->n_changes++;
  if (g_str_equal (new_state, "ready"))
    w->last_ready_us = g_get_monotonic_time ();
}

static void
watch_start (Fixture *f, Watch *w, const char *id, const char *path)
{
  w->id = g_strdup (id);
  w->changes = g_string_new (NULL);
  w->subscription = g_dbus_connection_signal_subscribe (f->c, NULL, RESOURCE_IFACE, "StateChanged",
                                                        path, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                        state_changed_cb, w, NULL);
}

void
watch_reset (Watch *w)
{
  g_string_truncate (w->changes, 0);
  w->n_changes = 0;
  w->last_ready_us = 0;
}

/* A config with the backend's supervision keys @backend_keys (JSON members,
 * comma separated) and the consumer. */
char *
write_config (Fixture *f, const char *name, const char *backend_keys)
{
  g_autofree char *path = g_build_filename (f->tmpdir, name, NULL);
  g_autofree char *contents = g_strdup_printf (
    "{\n"
    "  \"node\": { \"id\": \"outage-node\" },\n"
    "  \"resources\": [\n"
    "    { \"id\": \"backend\", \"type\": \"tcp-backend\",\n"
    "      \"settings\": { \"host\": \"127.0.0.1\", \"port\": %u },\n"
    "      %s },\n"
    "    { \"id\": \"consumer\", \"type\": \"tcp-consumer\", \"depends-on\": [\"backend\"],\n"
    "      \"health-check-interval-ms\": 50 }\n"
    "  ]\n"
    "}\n",
    f->server.port, backend_keys);

  g_assert_true (g_file_set_contents (path, contents, -1, NULL));
  return g_steal_pointer (&path);
}

static GVariant *
get_all (Fixture *f, const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariant *props;

  reply = g_dbus_connection_call_sync (f->c, BUS_NAME, path, "org.freedesktop.DBus.Properties",
                                       "GetAll", g_variant_new ("(s)", RESOURCE_IFACE),
                                       G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, 5000,
                                       NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(@a{sv})", &props);
  return props;
}

char *
get_node_state (Fixture *f)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) value = NULL;

  reply = g_dbus_connection_call_sync (f->c, BUS_NAME, NODE_PATH, "org.freedesktop.DBus.Properties",
                                       "Get", g_variant_new ("(ss)", "org.exo.Node1", "State"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, 2000,
                                       NULL, NULL);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(v)", &value);
  return g_variant_dup_string (value, NULL);
}

static char *
resource_path (Fixture *f, const char *id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  char *path;

  reply = g_dbus_connection_call_sync (f->c, BUS_NAME, NODE_PATH, "org.exo.Node1", "GetResource",
                                       g_variant_new ("(s)", id), G_VARIANT_TYPE ("(o)"),
                                       G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(o)", &path);
  return path;
}

/* Starts exo-node on @config with only the tcp-backend plugin's folder, and
 * waits until the node (its root group) is ready. */
void
node_start_until (Fixture *f, const char *config, const char *wanted)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  gint64 t0 = g_get_monotonic_time ();
  gint64 deadline = t0 + (gint64) bound_ms (10000) * 1000;
  g_autofree char *state = NULL;

  f->node_log = g_build_filename (f->tmpdir, "exo-node.log", NULL);
  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", f->bus_address, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "EXO_PLUGIN_PATH");
  g_subprocess_launcher_set_stderr_file_path (launcher, f->node_log);
  g_subprocess_launcher_set_stdout_file_path (launcher, f->node_log);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, GINT_TO_POINTER (SIGTERM), NULL);
  f->node = g_subprocess_launcher_spawn (launcher, &error, f->exo_node,
                                         "--plugin-dir", f->plugin_dir, "--config", config, NULL);
  g_assert_no_error (error);

  while (g_get_monotonic_time () < deadline)
    {
      g_clear_pointer (&state, g_free);
      state = get_node_state (f);
      if (g_strcmp0 (state, wanted) == 0)
        break;
      g_assert_nonnull (g_subprocess_get_identifier (f->node));   /* still running */
      g_usleep (20000);
    }
  g_assert_cmpstr (state, ==, wanted);
  g_test_message ("node %s after %.0f ms", wanted, ms_since (t0));

  f->backend_path = resource_path (f, "backend");
  f->consumer_path = resource_path (f, "consumer");
  watch_start (f, &f->backend, "backend", f->backend_path);
  watch_start (f, &f->consumer, "consumer", f->consumer_path);
  /* The bus has the subscriptions' match rules once it answered a later
   * call: no signal of what follows is missed. */
  g_variant_unref (g_dbus_connection_call_sync (f->c, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                "org.freedesktop.DBus", "GetId", NULL, NULL,
                                                G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL));
}

void
node_start (Fixture *f, const char *config)
{
  node_start_until (f, config, "ready");
}

guint
metric_u (GVariant *props, const char *name)
{
  g_autoptr(GVariant) metrics = g_variant_lookup_value (props, "Metrics", G_VARIANT_TYPE_VARDICT);
  guint value = G_MAXUINT;

  g_assert_nonnull (metrics);
  if (!g_variant_lookup (metrics, name, "u", &value))
    g_error ("no metric %s (type u) in %s", name, g_variant_print (metrics, TRUE));
  return value;
}

static gboolean
metric_b (GVariant *props, const char *name)
{
  g_autoptr(GVariant) metrics = g_variant_lookup_value (props, "Metrics", G_VARIANT_TYPE_VARDICT);
  gboolean value = FALSE;

  g_assert_nonnull (metrics);
  g_assert_true (g_variant_lookup (metrics, name, "b", &value));
  return value;
}

/* One Properties.GetAll of the backend; appended to the phase's trace. */
void
sample_backend (Fixture *f, gint64 t0_us, Sample *s)
{
  g_autoptr(GVariant) props = get_all (f, f->backend_path);

  s->t_us = g_get_monotonic_time ();
  g_assert_true (g_variant_lookup (props, "State", "s", &s->state));
  g_assert_true (g_variant_lookup (props, "Result", "s", &s->result));
  g_assert_true (g_variant_lookup (props, "LastError", "s", &s->last_error));
  g_assert_true (g_variant_lookup (props, "ErrorCount", "u", &s->error_count));
  g_assert_true (g_variant_lookup (props, "Attempts", "u", &s->attempts));
  s->connect_failures = metric_u (props, "backend-connect-failures");
  s->probe_failures = metric_u (props, "backend-probe-failures");

  g_string_append_printf (f->trace, "%+7.0f ms  %-12s %-16s errors %2u = connects %2u + probes %2u"
                          "  attempts %u  server %s  %s\n",
                          (s->t_us - t0_us) / 1000.0, s->state, s->result, s->error_count,
                          s->connect_failures, s->probe_failures, s->attempts,
                          f->server.service != NULL ? "up" : "down", s->last_error);
}

/* ErrorCount = backend-connect-failures + backend-probe-failures in one
 * sample.  The one error that is neither is the give-up (over its restart
 * limit the group records "restarted N times within M ms" as the backend's
 * error): from the sample that shows Result start-limit-hit on, it counts
 * one more.  A mismatch fails the test but the scenario goes on, so that
 * the trace shows what followed. */
void
check_error_count (Fixture *f, const Sample *s)
{
  guint extra;

  if (g_str_equal (s->result, "start-limit-hit"))
    f->given_up = TRUE;
  extra = f->given_up ? 1 : 0;
  if (s->error_count == s->connect_failures + s->probe_failures + extra)
    return;
  /* The plugin counts a failure just before it completes its task; libexo
   * records it when the task's callback runs, which GTask may defer to the
   * next main-loop iteration: a sample taken in between (the export polls
   * Metrics every second) sees the plugin one failure ahead.  Never more. */
  if (s->error_count + 1 == s->connect_failures + s->probe_failures + extra)
    {
      f->lagging_samples++;
      return;
    }
  if (!f->mismatch_reported)
    g_test_fail_printf ("ErrorCount %u != backend-connect-failures %u + backend-probe-failures %u"
                        " + %u (state %s, last error: %s)", s->error_count, s->connect_failures,
                        s->probe_failures, extra, s->state, s->last_error);
  f->mismatch_reported = TRUE;
}

gboolean
root_limit_hit (Fixture *f, guint *restarts)
{
  g_autofree char *root_path = resource_path (f, "root");
  g_autoptr(GVariant) props = get_all (f, root_path);

  *restarts = metric_u (props, "restarts");
  return metric_b (props, "restart-limit-hit");
}
