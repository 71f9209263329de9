/* bench-python.c: what Python plugins cost.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   python_transition_ns   one transition of a resource written in Python
 *                          with one Python `state-changed` handler
 *                          (tests/bench/bench-python.py, run by the python3
 *                          that has PyGObject, with this build's typelib and
 *                          overrides), and in the same run the C floor
 *                          (this program's transition_ns, run as a child):
 *                          "c_transition_ns" and "ratio" in its line
 *   node_rss_python_kib    exo-node's resident memory (VmRSS) once ready
 *                          with one Python resource (tests/python-plugins/
 *                          pyhello.py) next to an http-server, median of
 *                          N_RUNS; "without_python_kib": the same node with
 *                          the http-server only and no Python plugin folder,
 *                          so the Python loader (and libpython) is never
 *                          loaded
 *
 * Both need the Python loader in the build (python3-embed, PyGObject and
 * the typelib); without it they say so on stderr and print nothing.  The
 * children get a private dbus-daemon (exo-test-bus.c) and temporary
 * folders, removed at the end.  Runs on exo-bench's main thread only.
 */
#include "bench.h"
#include "exo-test-bus.h"
#include "exo-test-util.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define N_RUNS 5
#define READY_TIMEOUT_S 30
#define BUS_NAME "org.exo.BenchPython"

/* The number under @key in the first JSON line of @out that names @bench
 * (exo-bench's format: {"bench": NAME, "value": ..., "n": ...}); -1 if
 * there is none. */
static double
bench_number (const char *out,
              const char *bench,
              const char *key)
{
  g_autofree char *name = g_strdup_printf ("\"bench\": \"%s\"", bench);
  g_autofree char *field = g_strdup_printf ("\"%s\": ", key);
  const char *line = out != NULL ? strstr (out, name) : NULL;
  const char *end = line != NULL ? strchr (line, '\n') : NULL;
  const char *at = line != NULL ? strstr (line, field) : NULL;

  if (at == NULL || (end != NULL && at > end))
    return -1;
  return g_ascii_strtod (at + strlen (field), NULL);
}

/* Runs @argv with @launcher and returns its stdout; NULL (and a line on
 * stderr) when it cannot run or fails. */
static char *
run_child (GSubprocessLauncher *launcher,
           const char * const  *argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  if (proc == NULL || !g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, &err, &error))
    {
      g_printerr ("python bench: cannot run %s: %s\n", argv[0], error->message);
      return NULL;
    }
  if (!g_subprocess_get_successful (proc))
    {
      g_printerr ("python bench: %s failed:\n%s", argv[0], err != NULL ? err : "");
      return NULL;
    }
  return g_steal_pointer (&out);
}

/* The build's src/libexo (the typelib and the library; free it), or NULL
 * when the Python loader was not built. */
static char *
python_build_dir (const char *bench)
{
  const char *typelib = exo_test_build_path ("EXO_BENCH_TYPELIB", "../../src/libexo/Exo-1.typelib");
  const char *loader = exo_test_build_path ("EXO_PYTHON_LOADER",
                                            "../../src/python-loader/libexo-python-loader.so");

  if (typelib == NULL || loader == NULL || EXO_BENCH_PYTHON[0] == '\0')
    {
      g_printerr ("%s: no Python loader in this build (python3-embed, PyGObject or the typelib)\n",
                  bench);
      return NULL;
    }
  return g_path_get_dirname (typelib);
}

static void
bench_python_transition (void)
{
  g_autofree char *libexo_dir = python_build_dir ("python_transition_ns");
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *script = g_build_filename (EXO_BENCH_SOURCE_DIR, "tests", "bench",
                                              "bench-python.py", NULL);
  g_autofree char *overrides = g_build_filename (EXO_BENCH_SOURCE_DIR, "src", "libexo", "python", NULL);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autofree char *c_out = NULL;
  g_autofree char *py_out = NULL;
  g_autofree char *extra = NULL;
  double c_ns, py_ns;
  const char *c_argv[] = { self, "transition_ns", NULL };
  const char *py_argv[] = { EXO_BENCH_PYTHON, script, NULL };

  if (libexo_dir == NULL || self == NULL)
    return;

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  c_out = run_child (launcher, c_argv);
  g_subprocess_launcher_setenv (launcher, "GI_TYPELIB_PATH", libexo_dir, TRUE);
  g_subprocess_launcher_setenv (launcher, "LD_LIBRARY_PATH", libexo_dir, TRUE);
  g_subprocess_launcher_setenv (launcher, "PYTHONPATH", overrides, TRUE);
  g_subprocess_launcher_setenv (launcher, "PYTHONDONTWRITEBYTECODE", "1", TRUE);
  py_out = run_child (launcher, py_argv);

  c_ns = bench_number (c_out, "transition_ns", "value");
  py_ns = bench_number (py_out, "python_transition_ns", "value");
  if (c_ns <= 0 || py_ns <= 0)
    {
      g_printerr ("python_transition_ns: no figure (C: %s; Python: %s)\n",
                  c_out != NULL ? c_out : "-", py_out != NULL ? py_out : "-");
      return;
    }
  extra = g_strdup_printf (", \"handlers\": 1, \"runs\": %.0f, \"c_transition_ns\": %.3f, "
                           "\"ratio\": %.1f",
                           bench_number (py_out, "python_transition_ns", "runs"), c_ns, py_ns / c_ns);
  bench_report ("python_transition_ns", py_ns, "ns",
                (guint64) MAX (bench_number (py_out, "python_transition_ns", "n"), 0), extra);
}

/* --- the daemon's RSS with and without the Python loader ------------------ */

static long
rss_kib_of (const char *pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/status", pid);
  g_autofree char *contents = NULL;
  const char *line;

  if (!g_file_get_contents (path, &contents, NULL, NULL) ||
      (line = strstr (contents, "VmRSS:")) == NULL)
    return -1;
  return strtol (line + strlen ("VmRSS:"), NULL, 10);
}

static gboolean
node_ready (GDBusConnection *bus)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) value = NULL;

  reply = g_dbus_connection_call_sync (bus, BUS_NAME, "/org/exo/Node1",
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", "org.exo.Node1", "State"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, 1000,
                                       NULL, NULL);
  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(v)", &value);
  return g_variant_is_of_type (value, G_VARIANT_TYPE_STRING) &&
         strcmp (g_variant_get_string (value, NULL), "ready") == 0;
}

/* exo-node's VmRSS once ready with @config (and @python_dir as a plugin
 * folder when not NULL), median of N_RUNS starts; -1 if it did not start. */
static double
node_rss (const char      *address,
          GDBusConnection *bus,
          const char      *dir,
          const char      *libexo_dir,
          const char      *config,
          const char      *python_dir)
{
  const char *exo_node = exo_test_build_path ("EXO_NODE", "../../src/daemon/exo-node");
  const char *plugins = exo_test_build_path ("EXO_TEST_PLUGIN_DIR", "../../plugins");
  const char *loader = exo_test_build_path ("EXO_PYTHON_LOADER",
                                            "../../src/python-loader/libexo-python-loader.so");
  g_autofree char *state = g_build_filename (dir, "state", NULL);
  g_autofree char *overrides = g_build_filename (EXO_BENCH_SOURCE_DIR, "src", "libexo", "python", NULL);
  double rss[N_RUNS];

  if (exo_node == NULL || plugins == NULL)
    return -1;
  for (guint run = 0; run < N_RUNS; run++)
    {
      g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_SILENCE);
      g_autoptr(GSubprocess) proc = NULL;
      g_autoptr(GError) error = NULL;
      gint64 deadline = g_get_monotonic_time () + READY_TIMEOUT_S * G_USEC_PER_SEC;

      g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", address, TRUE);
      g_subprocess_launcher_setenv (launcher, "STATE_DIRECTORY", state, TRUE);
      g_subprocess_launcher_setenv (launcher, "GI_TYPELIB_PATH", libexo_dir, TRUE);
      g_subprocess_launcher_setenv (launcher, "PYTHONPATH", overrides, TRUE);
      g_subprocess_launcher_setenv (launcher, "PYTHONDONTWRITEBYTECODE", "1", TRUE);
      g_subprocess_launcher_setenv (launcher, "EXO_PYTHON_LOADER", loader, TRUE);
      g_subprocess_launcher_unsetenv (launcher, "EXO_PLUGIN_PATH");
      proc = g_subprocess_launcher_spawn (launcher, &error, exo_node, "--config", config,
                                          "--bus-name", BUS_NAME, "--plugin-dir", plugins,
                                          python_dir != NULL ? "--plugin-dir" : NULL,
                                          python_dir, NULL);
      if (proc == NULL)
        {
          g_printerr ("node_rss_python_kib: cannot run %s: %s\n", exo_node, error->message);
          return -1;
        }
      while (!node_ready (bus) && g_get_monotonic_time () < deadline)
        g_usleep (2000);
      rss[run] = node_ready (bus) ? rss_kib_of (g_subprocess_get_identifier (proc)) : -1;
      g_subprocess_send_signal (proc, SIGTERM);
      g_subprocess_wait (proc, NULL, NULL);
      if (rss[run] < 0)
        {
          g_printerr ("node_rss_python_kib: exo-node with %s was not ready within %d s\n",
                      config, READY_TIMEOUT_S);
          return -1;
        }
    }
  return bench_median (rss, N_RUNS);
}

static char *
write_file (const char *dir,
            const char *name,
            const char *contents,
            int         mode)
{
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  if (!g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_NONE, mode, &error))
    g_error ("%s", error->message);
  return path;
}

static void
bench_node_rss_python (void)
{
  static const char server[] =
    "{ \"id\": \"server\", \"type\": \"http-server\", "
    "\"settings\": { \"port\": 0, \"listen-address\": \"127.0.0.1\" } }";
  g_autofree char *libexo_dir = python_build_dir ("node_rss_python_kib");
  g_autofree char *dir = NULL;
  g_autofree char *python_dir = NULL;
  g_autofree char *bus_socket = NULL;
  g_autofree char *address = NULL;
  g_autofree char *hello = NULL;
  g_autofree char *hello_path = NULL;
  g_autofree char *with_json = NULL;
  g_autofree char *without_json = NULL;
  g_autofree char *without_path = NULL;
  g_autofree char *with_path = NULL;
  g_autofree char *extra = NULL;
  g_autoptr(GSubprocess) bus_proc = NULL;
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GError) error = NULL;
  double without, with;

  if (libexo_dir == NULL)
    return;
  hello_path = g_build_filename (EXO_BENCH_SOURCE_DIR, "tests", "python-plugins", "pyhello.py", NULL);
  if (!g_file_get_contents (hello_path, &hello, NULL, &error))
    g_error ("%s", error->message);

  /* the loader refuses plugins in folders others can write */
  dir = g_dir_make_tmp ("exo-bench-python-XXXXXX", &error);
  g_assert_no_error (error);
  python_dir = g_build_filename (dir, "plugins", NULL);
  g_mkdir (python_dir, 0700);
  g_free (write_file (python_dir, "pyhello.py", hello, 0600));
  without_json = g_strdup_printf ("{ \"resources\": [ %s ] }\n", server);
  without_path = write_file (dir, "without.json", without_json, 0600);
  with_json = g_strdup_printf ("{ \"resources\": [ %s, "
                               "{ \"id\": \"py\", \"type\": \"py-hello\" } ] }\n", server);
  with_path = write_file (dir, "with.json", with_json, 0600);

  bus_socket = g_build_filename (dir, "bus", NULL);
  bus_proc = exo_test_bus_spawn (bus_socket, &address);
  bus = g_dbus_connection_new_for_address_sync (address,
                                                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                NULL, NULL, &error);
  g_assert_no_error (error);

  without = node_rss (address, bus, dir, libexo_dir, without_path, NULL);
  with = node_rss (address, bus, dir, libexo_dir, with_path, python_dir);
  if (without > 0 && with > 0)
    {
      extra = g_strdup_printf (", \"without_python_kib\": %.0f, \"python_cost_kib\": %.0f, "
                               "\"config\": \"http-server + one Python resource\"",
                               without, with - without);
      bench_report ("node_rss_python_kib", with, "KiB", N_RUNS, extra);
    }

  g_dbus_connection_close_sync (bus, NULL, NULL);
  g_subprocess_force_exit (bus_proc);
  g_subprocess_wait (bus_proc, NULL, NULL);
  /* the node's state folder has what exo-node chose to keep there */
  {
    g_autoptr(GSubprocess) rm = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, NULL,
                                                  "rm", "-rf", "--", dir, NULL);
    if (rm != NULL)
      g_subprocess_wait (rm, NULL, NULL);
  }
}

const BenchEntry bench_python_entries[] = {
  { "python_transition_ns", bench_python_transition },
  { "node_rss_python_kib", bench_node_rss_python },
  { NULL, NULL },
};
