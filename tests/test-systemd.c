/* test-systemd.c: exo-node under a service manager.
 *
 * The real exo-node (with the plugins of this tree and the tcp-backend
 * plugin of tests/outage-plugin/) on a private bus, with the test playing
 * the service manager's side of $NOTIFY_SOCKET: a datagram socket, on a
 * path or abstract.  It checks READY=1 (after the resources of
 * node.ready-when, or once their start failed), STATUS= and its rate
 * limit, STOPPING=1, the watchdog pings ($WATCHDOG_USEC, $WATCHDOG_PID),
 * and the node id kept in the state directory.  The unit itself:
 * test-systemd-unit.c.
 *
 * Main thread only; no main loop: the test waits on the notify socket
 * with timeouts and on the node's exit with g_subprocess_wait().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exo-test-bus.h"
#include "exo-test-util.h"

typedef struct
{
  GSubprocess *bus;
  char        *bus_address;
  char        *tmpdir;
  const char  *exo_node;
  const char  *plugin_dir;
  const char  *outage_plugin_dir;
  GSocket     *notify;
  char        *notify_socket;    /* the value of $NOTIFY_SOCKET */
} Fixture;

typedef struct
{
  GSubprocess *proc;
  char        *log_path;
} Node;

static guint
bound_ms (guint ms)
{
  return ms * exo_test_slow_factor ();
}

static GSocket *
notify_socket_new (GSocketAddress *address)
{
  g_autoptr(GError) error = NULL;
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM,
                                  G_SOCKET_PROTOCOL_DEFAULT, &error);

  g_assert_no_error (error);
  g_socket_bind (socket, address, FALSE, &error);
  g_assert_no_error (error);
  return socket;
}

/* The manager's socket on a path (data == NULL) or abstract (data != NULL). */
static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autofree char *bus_path = NULL;
  g_autoptr(GSocketAddress) address = NULL;

  f->exo_node = exo_test_build_path ("EXO_NODE", "../src/daemon/exo-node");
  f->plugin_dir = exo_test_build_path ("EXO_TEST_PLUGIN_DIR", "../plugins");
  f->outage_plugin_dir = exo_test_build_path ("EXO_TEST_OUTAGE_PLUGIN_DIR", "outage-plugin");
  f->tmpdir = g_dir_make_tmp ("exo-systemd-XXXXXX", NULL);
  g_assert_nonnull (f->tmpdir);
  bus_path = g_build_filename (f->tmpdir, "bus", NULL);
  f->bus = exo_test_bus_spawn (bus_path, &f->bus_address);

  if (data == NULL)
    {
      f->notify_socket = g_build_filename (f->tmpdir, "notify", NULL);
      address = g_unix_socket_address_new (f->notify_socket);
    }
  else
    {
      g_autofree char *name = g_strdup_printf ("exo-test-notify-%d-%08x", (int) getpid (),
                                               g_random_int ());

      f->notify_socket = g_strconcat ("@", name, NULL);
      address = g_unix_socket_address_new_with_type (name, -1, G_UNIX_SOCKET_ADDRESS_ABSTRACT);
    }
  f->notify = notify_socket_new (address);
}

static void
rm_rf (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        rm_rf (path);
      else
        g_unlink (path);
    }
  g_rmdir (dir);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->notify);
  g_subprocess_force_exit (f->bus);
  g_subprocess_wait (f->bus, NULL, NULL);
  g_clear_object (&f->bus);
  g_clear_pointer (&f->bus_address, g_free);
  g_clear_pointer (&f->notify_socket, g_free);
  rm_rf (f->tmpdir);
  g_clear_pointer (&f->tmpdir, g_free);
}

static gboolean
have_daemon (Fixture *f, gboolean outage_plugin)
{
  if (f->exo_node == NULL || f->plugin_dir == NULL ||
      (outage_plugin && f->outage_plugin_dir == NULL))
    {
      g_test_skip ("EXO_NODE, EXO_TEST_PLUGIN_DIR or EXO_TEST_OUTAGE_PLUGIN_DIR not set");
      return FALSE;
    }
  return TRUE;
}

static char *
write_file (Fixture *f, const char *name, const char *contents)
{
  char *path = g_build_filename (f->tmpdir, name, NULL);

  g_assert_true (g_file_set_contents (path, contents, -1, NULL));
  return path;
}

static void
die_with_test (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* Starts exo-node with the plugins, $NOTIFY_SOCKET set to the fixture's
 * socket and $STATE_DIRECTORY to <tmpdir>/state; @env (NAME, VALUE pairs,
 * a NULL VALUE unsets NAME) changes that.  @args: more arguments. */
static Node *
node_start (Fixture            *f,
            const char         *log_name,
            const char * const *env,
            const char * const *args)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *state = g_build_filename (f->tmpdir, "state", NULL);
  Node *node = g_new0 (Node, 1);

  node->log_path = g_build_filename (f->tmpdir, log_name, NULL);
  g_subprocess_launcher_set_child_setup (launcher, die_with_test, NULL, NULL);
  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", f->bus_address, TRUE);
  g_subprocess_launcher_setenv (launcher, "STATE_DIRECTORY", state, TRUE);
  g_subprocess_launcher_setenv (launcher, "NOTIFY_SOCKET", f->notify_socket, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "WATCHDOG_USEC");
  g_subprocess_launcher_unsetenv (launcher, "WATCHDOG_PID");
  g_subprocess_launcher_unsetenv (launcher, "EXO_PLUGIN_PATH");
  g_subprocess_launcher_unsetenv (launcher, "EXO_NODE_ID");
  for (guint i = 0; env != NULL && env[i] != NULL; i += 2)
    {
      if (env[i + 1] != NULL)
        g_subprocess_launcher_setenv (launcher, env[i], env[i + 1], TRUE);
      else
        g_subprocess_launcher_unsetenv (launcher, env[i]);
    }
  g_subprocess_launcher_set_cwd (launcher, f->tmpdir);
  g_subprocess_launcher_set_stderr_file_path (launcher, node->log_path);
  g_subprocess_launcher_set_stdout_file_path (launcher, node->log_path);

  g_ptr_array_add (argv, (gpointer) f->exo_node);
  g_ptr_array_add (argv, (gpointer) "--plugin-dir");
  g_ptr_array_add (argv, (gpointer) f->plugin_dir);
  if (f->outage_plugin_dir != NULL)
    {
      g_ptr_array_add (argv, (gpointer) "--plugin-dir");
      g_ptr_array_add (argv, (gpointer) f->outage_plugin_dir);
    }
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  node->proc = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  return node;
}

static char *
node_log (Node *node)
{
  char *contents = NULL;

  g_file_get_contents (node->log_path, &contents, NULL, NULL);
  return contents != NULL ? contents : g_strdup ("");
}

static void
node_signal (Node *node, int signum)
{
  g_subprocess_send_signal (node->proc, signum);
}

/* The exit status, after at most @timeout_ms (then killed: -1). */
static int
node_wait (Node *node, guint timeout_ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  while (g_subprocess_get_identifier (node->proc) != NULL)
    {
      if (g_get_monotonic_time () > end)
        {
          g_subprocess_force_exit (node->proc);
          g_subprocess_wait (node->proc, NULL, NULL);
          return -1;
        }
      g_main_context_iteration (NULL, FALSE);
      g_usleep (10000);
    }
  g_subprocess_wait (node->proc, NULL, NULL);
  return g_subprocess_get_if_exited (node->proc) ? g_subprocess_get_exit_status (node->proc) : 128;
}

static void
node_free (Node *node)
{
  if (g_subprocess_get_identifier (node->proc) != NULL)
    {
      g_subprocess_force_exit (node->proc);
      g_subprocess_wait (node->proc, NULL, NULL);
    }
  if (g_test_failed ())
    {
      g_autofree char *log = node_log (node);

      g_test_message ("%s:\n%s", node->log_path, log);
    }
  g_clear_object (&node->proc);
  g_free (node->log_path);
  g_free (node);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Node, node_free)

/* --- the manager's side ---------------------------------------------------- */

/* The next datagram, or NULL after @timeout_ms. */
static char *
next_message (Fixture *f, guint timeout_ms)
{
  g_autoptr(GError) error = NULL;
  char buffer[4096];
  gssize n;

  if (!g_socket_condition_timed_wait (f->notify, G_IO_IN, (gint64) timeout_ms * 1000, NULL, &error))
    return NULL;
  n = g_socket_receive (f->notify, buffer, sizeof buffer - 1, NULL, &error);
  g_assert_no_error (error);
  buffer[n] = '\0';
  g_test_message ("notify: %s", buffer);
  return g_strdup (buffer);
}

static gboolean
has_line (const char *message, const char *line)
{
  g_auto(GStrv) lines = g_strsplit (message, "\n", -1);

  return g_strv_contains ((const char * const *) lines, line);
}

/* The value of KEY= in @message, or NULL. */
static char *
field (const char *message, const char *key)
{
  g_auto(GStrv) lines = g_strsplit (message, "\n", -1);
  gsize length = strlen (key);

  for (guint i = 0; lines[i] != NULL; i++)
    if (strncmp (lines[i], key, length) == 0 && lines[i][length] == '=')
      return g_strdup (lines[i] + length + 1);
  return NULL;
}

/* Waits for a message with the line @line; every message received before
 * it is added to @seen (when not NULL).  NULL after @timeout_ms. */
static char *
wait_line (Fixture *f, const char *line, guint timeout_ms, GPtrArray *seen)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  while (g_get_monotonic_time () < end)
    {
      gint64 left_ms = (end - g_get_monotonic_time ()) / 1000;
      char *message = next_message (f, (guint) MAX (left_ms, 1));

      if (message == NULL)
        return NULL;
      if (has_line (message, line))
        return message;
      if (seen != NULL)
        g_ptr_array_add (seen, message);
      else
        g_free (message);
    }
  return NULL;
}

/* A TCP port on 127.0.0.1 that refuses connections until listen (). */
static GSocket *
bound_socket (guint16 *port)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) local = NULL;
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                  G_SOCKET_PROTOCOL_TCP, &error);

  g_assert_no_error (error);
  g_socket_bind (socket, any, TRUE, &error);
  g_assert_no_error (error);
  local = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  *port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  return socket;
}

/* A backend that keeps retrying its first start (state `initializing`)
 * while @port refuses, and a consumer that depends on it. */
static char *
backend_config (Fixture *f, guint16 port, guint max_retries, const char *node)
{
  g_autofree char *json = g_strdup_printf (
    "{ %s\n"
    "  \"resources\": [\n"
    "    { \"id\": \"backend\", \"type\": \"tcp-backend\", \"settings\": { \"port\": %u },\n"
    "      \"retry\": { \"max-retries\": %u, \"initial-delay-ms\": 50, \"max-delay-ms\": 100 } },\n"
    "    { \"id\": \"consumer\", \"type\": \"tcp-consumer\", \"depends-on\": [\"backend\"] },\n"
    "    { \"id\": \"engine\", \"type\": \"dummy-inference\" } ] }\n",
    node != NULL ? node : "", port, max_retries);

  return write_file (f, "backend.json", json);
}

/* --- readiness ------------------------------------------------------------- */

/* READY=1 waits for the resources: not while the backend's first start
 * retries, at once when it connects; STATUS= says what is going on;
 * STOPPING=1 on SIGTERM. */
static void
test_ready_after_resources (Fixture *f, gconstpointer data)
{
  g_autoptr(Node) node = NULL;
  g_autoptr(GSocket) backend = NULL;
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autofree char *config = NULL;
  g_autofree char *ready = NULL;
  g_autofree char *status = NULL;
  g_autofree char *stopping = NULL;
  const char *args[] = { "--config", NULL, NULL };
  gboolean starting_seen = FALSE;
  guint16 port;

  if (!have_daemon (f, TRUE))
    return;
  backend = bound_socket (&port);
  config = backend_config (f, port, 1000, NULL);
  args[1] = config;
  node = node_start (f, "ready.log", NULL, args);

  /* the backend refuses: no READY=1 in 1.5 s, a STATUS= that says why */
  ready = wait_line (f, "READY=1", 1500, seen);
  g_assert_null (ready);
  for (guint i = 0; i < seen->len; i++)
    {
      g_autofree char *s = field (g_ptr_array_index (seen, i), "STATUS");

      if (s != NULL && g_str_has_prefix (s, "starting: ") && strstr (s, "initializing: backend"))
        starting_seen = TRUE;
    }
  g_assert_true (starting_seen);

  /* the backend is there: READY=1 with every resource ready */
  g_socket_listen (backend, &error);
  g_assert_no_error (error);
  ready = wait_line (f, "READY=1", bound_ms (10000), NULL);
  g_assert_nonnull (ready);
  status = field (ready, "STATUS");
  g_assert_cmpstr (status, ==, "running: 3 of 3 resources ready");

  node_signal (node, SIGTERM);
  stopping = wait_line (f, "STOPPING=1", bound_ms (5000), NULL);
  g_assert_nonnull (stopping);
  g_clear_pointer (&status, g_free);
  status = field (stopping, "STATUS");
  g_assert_true (g_str_has_prefix (status, "stopping: "));
  g_assert_cmpint (node_wait (node, bound_ms (10000)), ==, 0);
}

/* A required resource whose start fails: READY=1 all the same (the start
 * is over), STATUS= names it and what waits for it.  On an abstract
 * socket. */
static void
test_ready_degraded (Fixture *f, gconstpointer data)
{
  g_autoptr(Node) node = NULL;
  g_autoptr(GSocket) backend = NULL;
  g_autofree char *config = NULL;
  g_autofree char *ready = NULL;
  g_autofree char *status = NULL;
  g_autofree char *log = NULL;
  const char *args[] = { "--config", NULL, NULL };
  guint16 port;

  if (!have_daemon (f, TRUE))
    return;
  g_assert_true (f->notify_socket[0] == '@');
  backend = bound_socket (&port);
  config = backend_config (f, port, 0, NULL);
  args[1] = config;
  node = node_start (f, "degraded.log", NULL, args);

  ready = wait_line (f, "READY=1", bound_ms (10000), NULL);
  g_assert_nonnull (ready);
  status = field (ready, "STATUS");
  g_assert_true (g_str_has_prefix (status, "degraded: 1 of 3 resources ready"));
  g_assert_nonnull (strstr (status, "backend"));
  g_assert_nonnull (strstr (status, "waiting: consumer"));

  /* the root group restarts the backend again and again: STATUS= follows,
   * at most once a second */
  {
    gint64 end = g_get_monotonic_time () + 2500 * 1000, last = g_get_monotonic_time ();
    gint64 min_gap = G_MAXINT64;
    guint n = 0;

    while (g_get_monotonic_time () < end)
      {
        g_autofree char *message = next_message (f, 100);

        if (message == NULL || !g_str_has_prefix (message, "STATUS="))
          continue;
        min_gap = MIN (min_gap, g_get_monotonic_time () - last);
        last = g_get_monotonic_time ();
        n++;
      }
    g_test_message ("%u STATUS= in 2.5 s, %.0f ms apart at least", n, min_gap / 1000.0);
    g_assert_cmpuint (n, >=, 1);
    g_assert_cmpint (min_gap, >=, 800 * 1000);
  }

  node_signal (node, SIGTERM);
  g_assert_cmpint (node_wait (node, bound_ms (10000)), ==, 0);
  log = node_log (node);
  g_assert_nonnull (strstr (log, "startup finished degraded"));
}

/* node.ready-when names what must be up: READY=1 while the backend still
 * retries. */
static void
test_ready_when (Fixture *f, gconstpointer data)
{
  g_autoptr(Node) node = NULL;
  g_autoptr(GSocket) backend = NULL;
  g_autofree char *config = NULL;
  g_autofree char *ready = NULL;
  g_autofree char *status = NULL;
  const char *args[] = { "--config", NULL, NULL };
  guint16 port;

  if (!have_daemon (f, TRUE))
    return;
  backend = bound_socket (&port);
  config = backend_config (f, port, 1000, "\"node\": { \"ready-when\": [\"engine\"] },");
  args[1] = config;
  node = node_start (f, "ready-when.log", NULL, args);

  ready = wait_line (f, "READY=1", bound_ms (10000), NULL);
  g_assert_nonnull (ready);
  status = field (ready, "STATUS");
  g_assert_true (g_str_has_prefix (status, "degraded: 1 of 3 resources ready"));
  g_assert_nonnull (strstr (status, "initializing: backend"));
}

/* A config that cannot start: STATUS= says why, exit 1. */
static void
test_refused (Fixture *f, gconstpointer data)
{
  g_autoptr(Node) node = NULL;
  g_autofree char *config = NULL;
  g_autofree char *message = NULL;
  g_autofree char *status = NULL;
  const char *args[] = { "--config", NULL, NULL };

  if (!have_daemon (f, FALSE))
    return;
  config = write_file (f, "bad.json", "{ \"resources\": [ { \"id\": \"x\", \"type\": \"nope\" } ] }");
  args[1] = config;
  node = node_start (f, "refused.log", NULL, args);
  g_assert_cmpint (node_wait (node, bound_ms (10000)), ==, 1);
  message = next_message (f, 1000);
  g_assert_nonnull (message);
  status = field (message, "STATUS");
  g_assert_true (g_str_has_prefix (status, "refusing to start: "));
  g_assert_nonnull (strstr (status, "unknown resource type 'nope'"));
}

/* node.ready-when and node.state-dir are checked with the config. */
static void
test_node_keys_check (Fixture *f, gconstpointer data)
{
  static const struct {
    const char *node;
    const char *error;   /* NULL: valid */
  } cases[] = {
    { "\"ready-when\": \"all\"", NULL },
    { "\"ready-when\": []", NULL },
    { "\"ready-when\": [\"b\", \"a\"]", NULL },
    { "\"ready-when\": \"some\"", "node.ready-when: expected \"all\" or an array of resource ids" },
    { "\"ready-when\": 3",
      "node.ready-when: expected \"all\" or an array of resource ids, got an integer" },
    { "\"ready-when\": [\"a\", \"c\"]", "node.ready-when[1]: 'c' is not a resource of this file" },
    { "\"ready-when\": [\"a\", \"a\"]", "node.ready-when[1]: 'a' is listed twice" },
    { "\"ready-when\": [1]", "node.ready-when[0]: expected a string, got an integer" },
    { "\"state-dir\": \"here\"", NULL },
    { "\"state-dir\": \"\"", "node.state-dir: expected the path of a folder (1 to 4096 bytes)" },
    { "\"state-dir\": false", "node.state-dir: expected a string, got a boolean" },
  };

  if (!have_daemon (f, FALSE))
    return;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *json = g_strdup_printf (
        "{ \"node\": { %s },\n"
        "  \"resources\": [ { \"id\": \"a\", \"type\": \"dummy-inference\" },\n"
        "                   { \"id\": \"b\", \"type\": \"dummy-inference\" } ] }\n", cases[i].node);
      g_autofree char *path = write_file (f, "node-keys.json", json);
      g_autofree char *out = NULL, *err = NULL;
      g_autoptr(GError) error = NULL;
      const char *argv[] = { f->exo_node, "--plugin-dir", f->plugin_dir, "--check-config", path, NULL };
      int status;

      g_spawn_sync (f->tmpdir, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                    &status, &error);
      g_assert_no_error (error);
      g_test_message ("%s: %s%s", cases[i].node, out, err);
      if (cases[i].error == NULL)
        g_assert_true (g_spawn_check_wait_status (status, NULL));
      else
        {
          g_assert_false (g_spawn_check_wait_status (status, NULL));
          g_assert_nonnull (strstr (err, cases[i].error));
        }
    }
}

/* --- watchdog -------------------------------------------------------------- */

static int
compare_int64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

/* The pings of 1.5 s after READY=1; returns their median gap (ms), or -1
 * when fewer than two came. */
static double
watchdog_gap_ms (Fixture *f, guint *n_pings)
{
  g_autoptr(GArray) gaps = g_array_new (FALSE, FALSE, sizeof (gint64));
  gint64 end = g_get_monotonic_time () + 1500 * 1000, last = 0;

  *n_pings = 0;
  while (g_get_monotonic_time () < end)
    {
      g_autofree char *message = next_message (f, 100);

      if (message == NULL || !has_line (message, "WATCHDOG=1"))
        continue;
      if (last != 0)
        {
          gint64 gap = g_get_monotonic_time () - last;

          g_array_append_val (gaps, gap);
        }
      last = g_get_monotonic_time ();
      (*n_pings)++;
    }
  if (gaps->len == 0)
    return -1;
  g_array_sort (gaps, compare_int64);
  return g_array_index (gaps, gint64, gaps->len / 2) / 1000.0;
}

/* WATCHDOG_USEC=200000: a ping every 100 ms from the main loop. */
static void
test_watchdog_pings (Fixture *f, gconstpointer data)
{
  g_autoptr(Node) node = NULL;
  g_autofree char *config = NULL;
  g_autofree char *ready = NULL;
  const char *env[] = { "WATCHDOG_USEC", "200000", NULL };
  const char *args[] = { "--config", NULL, NULL };
  double gap;
  guint n;

  if (!have_daemon (f, FALSE))
    return;
  config = write_file (f, "engine.json",
                       "{ \"resources\": [ { \"id\": \"engine\", \"type\": \"dummy-inference\" } ] }");
  args[1] = config;
  node = node_start (f, "watchdog.log", env, args);
  ready = wait_line (f, "READY=1", bound_ms (10000), NULL);
  g_assert_nonnull (ready);

  gap = watchdog_gap_ms (f, &n);
  g_test_message ("%u pings in 1.5 s, median gap %.1f ms", n, gap);
  g_assert_cmpuint (n, >=, 5);
  g_assert_cmpfloat (gap, >=, 70);
  g_assert_cmpfloat (gap, <=, 150 * exo_test_slow_factor ());
}

/* WATCHDOG_PID names another process: no pings; the node's own pid
 * (through a shell that execs it): pings. */
static void
test_watchdog_pid (Fixture *f, gconstpointer data)
{
  g_autofree char *config = NULL;
  g_autofree char *other = g_strdup_printf ("%d", (int) getpid ());

  if (!have_daemon (f, FALSE))
    return;
  config = write_file (f, "engine.json",
                       "{ \"resources\": [ { \"id\": \"engine\", \"type\": \"dummy-inference\" } ] }");
  {
    const char *env[] = { "WATCHDOG_USEC", "200000", "WATCHDOG_PID", other, NULL };
    const char *args[] = { "--config", config, NULL };
    g_autoptr(Node) node = node_start (f, "other-pid.log", env, args);
    g_autofree char *ready = wait_line (f, "READY=1", bound_ms (10000), NULL);
    guint n;

    g_assert_nonnull (ready);
    watchdog_gap_ms (f, &n);
    g_assert_cmpuint (n, ==, 0);
    node_signal (node, SIGTERM);
    g_assert_cmpint (node_wait (node, bound_ms (10000)), ==, 0);
  }
  {
    /* sh sets WATCHDOG_PID to its own pid and becomes exo-node */
    g_autofree char *script = g_strdup_printf ("WATCHDOG_PID=$$ exec '%s' --plugin-dir '%s' "
                                               "--config '%s'", f->exo_node, f->plugin_dir, config);
    const char *argv[] = { "/bin/sh", "-c", script, NULL };
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_SILENCE);
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *ready = NULL;
    g_autofree char *state = g_build_filename (f->tmpdir, "state", NULL);
    guint n;

    g_subprocess_launcher_set_child_setup (launcher, die_with_test, NULL, NULL);
    g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", f->bus_address, TRUE);
    g_subprocess_launcher_setenv (launcher, "STATE_DIRECTORY", state, TRUE);
    g_subprocess_launcher_setenv (launcher, "NOTIFY_SOCKET", f->notify_socket, TRUE);
    g_subprocess_launcher_setenv (launcher, "WATCHDOG_USEC", "200000", TRUE);
    proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
    g_assert_no_error (error);
    ready = wait_line (f, "READY=1", bound_ms (10000), NULL);
    g_assert_nonnull (ready);
    watchdog_gap_ms (f, &n);
    g_assert_cmpuint (n, >=, 5);
    g_subprocess_send_signal (proc, SIGTERM);
    g_subprocess_wait (proc, NULL, NULL);
  }
}

/* Hostile values of the variables: warned about, ignored, the node runs. */
static void
test_bad_environment (Fixture *f, gconstpointer data)
{
  g_autoptr(Node) node = NULL;
  g_autofree char *config = NULL;
  g_autofree char *long_path = g_strnfill (200, 'x');
  g_autofree char *log = NULL;
  const char *args[] = { "--config", NULL, NULL };

  if (!have_daemon (f, FALSE))
    return;
  config = write_file (f, "engine.json",
                       "{ \"resources\": [ { \"id\": \"engine\", \"type\": \"dummy-inference\" } ] }");
  args[1] = config;
  {
    /* a relative socket: nothing sent, the node runs */
    const char *env[] = { "NOTIFY_SOCKET", "relative/socket", NULL };

    node = node_start (f, "relative.log", env, args);
    g_assert_null (next_message (f, bound_ms (1500)));
    node_signal (node, SIGTERM);
    g_assert_cmpint (node_wait (node, bound_ms (10000)), ==, 0);
    log = node_log (node);
    g_assert_nonnull (strstr (log, "ignoring NOTIFY_SOCKET='relative/socket'"));
    g_clear_pointer (&node, node_free);
    g_clear_pointer (&log, g_free);
  }
  {
    /* too long for sun_path */
    g_autofree char *too_long = g_strconcat ("/", long_path, NULL);
    const char *env[] = { "NOTIFY_SOCKET", too_long, NULL };

    node = node_start (f, "long.log", env, args);
    g_assert_null (next_message (f, bound_ms (1500)));
    node_signal (node, SIGTERM);
    g_assert_cmpint (node_wait (node, bound_ms (10000)), ==, 0);
    log = node_log (node);
    g_assert_nonnull (strstr (log, "ignoring NOTIFY_SOCKET="));
    g_clear_pointer (&node, node_free);
    g_clear_pointer (&log, g_free);
  }
  {
    /* a watchdog interval that is no number: READY=1, no pings */
    const char *env[] = { "WATCHDOG_USEC", "12abc", NULL };
    g_autofree char *ready = NULL;
    guint n;

    node = node_start (f, "usec.log", env, args);
    ready = wait_line (f, "READY=1", bound_ms (10000), NULL);
    g_assert_nonnull (ready);
    watchdog_gap_ms (f, &n);
    g_assert_cmpuint (n, ==, 0);
    node_signal (node, SIGTERM);
    g_assert_cmpint (node_wait (node, bound_ms (10000)), ==, 0);
    log = node_log (node);
    g_assert_nonnull (strstr (log, "ignoring WATCHDOG_USEC='12abc'"));
  }
}

/* --- the node id ----------------------------------------------------------- */

/* Runs a node until READY=1 and returns the node id it logged. */
static char *
run_for_id (Fixture *f, const char * const *env, const char * const *args, char **out_log)
{
  g_autoptr(Node) node = node_start (f, "id.log", env, args);
  g_autofree char *ready = wait_line (f, "READY=1", bound_ms (10000), NULL);
  g_autofree char *log = NULL;
  const char *at, *end;

  g_assert_nonnull (ready);
  node_signal (node, SIGTERM);
  g_assert_cmpint (node_wait (node, bound_ms (10000)), ==, 0);
  log = node_log (node);
  at = strstr (log, "starting: node id ");
  g_assert_nonnull (at);
  at += strlen ("starting: node id ");
  end = strchr (at, ',');
  g_assert_nonnull (end);
  if (out_log != NULL)
    *out_log = g_strdup (log);
  return g_strndup (at, (gsize) (end - at));
}

static char *
read_id_file (const char *dir, guint *mode)
{
  g_autofree char *path = g_build_filename (dir, "node-id", NULL);
  char *contents = NULL;
  GStatBuf st;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  *mode = st.st_mode & 0777;
  return contents;
}

static void
test_node_id_stable (Fixture *f, gconstpointer data)
{
  g_autofree char *config = NULL;
  g_autofree char *first = NULL, *second = NULL, *third = NULL, *fourth = NULL;
  g_autofree char *state = g_build_filename (f->tmpdir, "state", NULL);
  g_autofree char *file = NULL, *expected = NULL, *log = NULL;
  const char *args[] = { "--config", NULL, NULL, NULL, NULL };
  guint mode;

  if (!have_daemon (f, FALSE))
    return;
  config = write_file (f, "engine.json",
                       "{ \"resources\": [ { \"id\": \"engine\", \"type\": \"dummy-inference\" } ] }");
  args[1] = config;

  /* made once, kept, the same at the next start */
  first = run_for_id (f, NULL, args, &log);
  g_assert_nonnull (strstr (log, "made the node id"));
  g_assert_true (g_uuid_string_is_valid (first));
  file = read_id_file (state, &mode);
  expected = g_strconcat (first, "\n", NULL);
  g_assert_cmpstr (file, ==, expected);
  g_assert_cmpuint (mode, ==, 0644);
  g_clear_pointer (&log, g_free);
  second = run_for_id (f, NULL, args, &log);
  g_assert_cmpstr (second, ==, first);
  g_assert_null (strstr (log, "made the node id"));

  /* --node-id overrides it and leaves the file alone */
  args[2] = "--node-id";
  args[3] = "rack3-a";
  third = run_for_id (f, NULL, args, NULL);
  g_assert_cmpstr (third, ==, "rack3-a");
  g_clear_pointer (&file, g_free);
  file = read_id_file (state, &mode);
  g_assert_cmpstr (file, ==, expected);

  /* so does node.id */
  g_clear_pointer (&config, g_free);
  config = write_file (f, "named.json",
                       "{ \"node\": { \"id\": \"from-config\" },\n"
                       "  \"resources\": [ { \"id\": \"engine\", \"type\": \"dummy-inference\" } ] }");
  args[1] = config;
  args[2] = NULL;
  fourth = run_for_id (f, NULL, args, NULL);
  g_assert_cmpstr (fourth, ==, "from-config");
}

/* A file that is no node id is replaced, with a warning; a bad --node-id
 * is refused. */
static void
test_node_id_corrupt (Fixture *f, gconstpointer data)
{
  static const char *bad[] = { "", "has space\n", "../../etc\n", "\xff\xfe\n", NULL };
  g_autofree char *config = NULL;
  g_autofree char *state = g_build_filename (f->tmpdir, "state", NULL);
  g_autofree char *path = g_build_filename (state, "node-id", NULL);
  g_autofree char *huge = g_strnfill (100000, 'a');
  const char *args[] = { "--config", NULL, NULL };

  if (!have_daemon (f, FALSE))
    return;
  config = write_file (f, "engine.json",
                       "{ \"resources\": [ { \"id\": \"engine\", \"type\": \"dummy-inference\" } ] }");
  args[1] = config;
  g_assert_cmpint (g_mkdir_with_parents (state, 0700), ==, 0);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      const char *contents = bad[i] != NULL ? bad[i] : huge;
      g_autofree char *id = NULL, *log = NULL, *file = NULL, *expected = NULL;
      guint mode;

      g_assert_true (g_file_set_contents (path, contents, -1, NULL));
      id = run_for_id (f, NULL, args, &log);
      g_assert_true (g_uuid_string_is_valid (id));
      g_assert_nonnull (strstr (log, "making a new node id"));
      file = read_id_file (state, &mode);
      expected = g_strconcat (id, "\n", NULL);
      g_assert_cmpstr (file, ==, expected);
    }

  {
    /* a hand-written id with blanks around it is read as it is */
    g_autofree char *id = NULL;

    g_assert_true (g_file_set_contents (path, "  my-node.1 \n", -1, NULL));
    id = run_for_id (f, NULL, args, NULL);
    g_assert_cmpstr (id, ==, "my-node.1");
  }
  {
    const char *argv[] = { f->exo_node, "--node-id", "a/b", NULL };
    g_autofree char *err = NULL;
    int status;

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                                 NULL, &err, &status, NULL));
    g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 2);
    g_assert_nonnull (strstr (err, "--node-id: the node id contains the byte 0x2f"));
  }
}

/* Without $STATE_DIRECTORY: --state-dir, else node.state-dir (relative to
 * the config's folder); $STATE_DIRECTORY wins over both, with a warning. */
static void
test_state_dir (Fixture *f, gconstpointer data)
{
  g_autofree char *config = NULL;
  g_autofree char *option_dir = g_build_filename (f->tmpdir, "by-option", NULL);
  g_autofree char *config_dir = g_build_filename (f->tmpdir, "conf", "by-config", NULL);
  g_autofree char *state = g_build_filename (f->tmpdir, "state", NULL);
  g_autofree char *a = NULL, *b = NULL, *c = NULL, *log = NULL, *file = NULL;
  const char *unset[] = { "STATE_DIRECTORY", NULL, NULL };
  const char *args[] = { "--config", NULL, "--state-dir", option_dir, NULL };
  guint mode;

  if (!have_daemon (f, FALSE))
    return;
  g_assert_cmpint (g_mkdir_with_parents (config_dir, 0700), ==, 0);
  config = write_file (f, "conf/node.json",
                       "{ \"node\": { \"state-dir\": \"by-config\" },\n"
                       "  \"resources\": [ { \"id\": \"engine\", \"type\": \"dummy-inference\" } ] }");
  args[1] = config;

  a = run_for_id (f, unset, args, NULL);
  file = read_id_file (option_dir, &mode);
  g_assert_true (g_str_has_prefix (file, a));

  args[2] = NULL;
  b = run_for_id (f, unset, args, NULL);
  g_clear_pointer (&file, g_free);
  file = read_id_file (config_dir, &mode);
  g_assert_true (g_str_has_prefix (file, b));
  g_assert_cmpstr (a, !=, b);

  args[2] = "--state-dir";
  c = run_for_id (f, NULL, args, &log);
  g_assert_nonnull (strstr (log, "is ignored: $STATE_DIRECTORY"));
  g_clear_pointer (&file, g_free);
  file = read_id_file (state, &mode);
  g_assert_true (g_str_has_prefix (file, c));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn, data) g_test_add (path, Fixture, data, fixture_setup, fn, fixture_teardown)
  ADD ("/systemd/notify/ready-after-resources", test_ready_after_resources, NULL);
  ADD ("/systemd/notify/ready-degraded", test_ready_degraded, "abstract");
  ADD ("/systemd/notify/ready-when", test_ready_when, NULL);
  ADD ("/systemd/notify/node-keys-check", test_node_keys_check, NULL);
  ADD ("/systemd/notify/refused", test_refused, NULL);
  ADD ("/systemd/notify/bad-environment", test_bad_environment, NULL);
  ADD ("/systemd/watchdog/pings", test_watchdog_pings, "abstract");
  ADD ("/systemd/watchdog/pid", test_watchdog_pid, NULL);
  ADD ("/systemd/node-id/stable", test_node_id_stable, NULL);
  ADD ("/systemd/node-id/corrupt", test_node_id_corrupt, NULL);
  ADD ("/systemd/node-id/state-dir", test_state_dir, NULL);
#undef ADD

  return g_test_run ();
}
