/* test-daemon-lifecycle.c: how exo-node starts, refuses and stops — a
 * plugin refused, the bus name taken, the Shutdown method, a second signal,
 * usage errors and their exit status.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-daemon (main() in test-daemon.c).  Each case starts the real
 * exo-node on the Fixture's private bus; one thread.
 */
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "daemon-fixture.h"

/* A refused plugin file is reported; the daemon goes on when the config does
 * not need it, and refuses to start (before anything starts) when it does. */
static void
test_refused_plugin (Fixture *f, gconstpointer data)
{
  g_autofree char *bad_dir = g_build_filename (f->tmpdir, "bad-plugins", NULL);
  g_autofree char *bad_so = g_build_filename (bad_dir, "libexo-plugin-broken.so", NULL);
  g_autofree char *engine = write_file (f, "engine.json", engine_config);
  g_autofree char *needs = write_file (f, "needs.json",
                                       "{ \"resources\": [ { \"id\": \"x\", \"type\": \"broken\" } ] }\n");
  g_autoptr(GDBusConnection) c = NULL;
  g_autofree char *log = NULL;
  Node *node;

  if (!have_daemon (f))
    return;

  g_mkdir (bad_dir, 0755);
  g_assert_true (g_file_set_contents (bad_so, "this is not an ELF file\n", -1, NULL));
  g_chmod (bad_so, 0644);

  /* not needed: starts, with one line about the refused file */
  node = node_start (f, "refused-ok.log", "--plugin-dir", bad_dir, "--config", engine,
                     "--bus-name", "org.exo.Test.Refused", NULL);
  c = client (f);
  g_assert_true (wait_node_ready (c, "org.exo.Test.Refused", 10000));
  kill (atoi (g_subprocess_get_identifier (node->proc)), SIGTERM);
  g_assert_cmpint (node_wait (node, 10000), ==, 0);
  log = node_log (node);
  g_assert_nonnull (strstr (log, "plugin refused"));
  g_assert_nonnull (strstr (log, bad_so));
  g_clear_pointer (&log, g_free);
  node_free (node);

  /* needed: exits non-zero, nothing started */
  node = node_start (f, "refused-needed.log", "--plugin-dir", bad_dir, "--config", needs,
                     "--bus-name", "org.exo.Test.Refused2", NULL);
  g_assert_cmpint (node_wait (node, 10000), ==, 1);
  log = node_log (node);
  g_assert_nonnull (strstr (log, "unknown resource type 'broken'"));
  g_assert_null (strstr (log, "initializing"));
  node_free (node);
}

static void
test_bus_name_taken (Fixture *f, gconstpointer data)
{
  g_autoptr(GDBusConnection) c = NULL;
  g_autofree char *log = NULL;
  Node *first, *second;

  if (!have_daemon (f))
    return;

  g_autofree char *engine = write_file (f, "engine.json", engine_config);

  first = node_start (f, "first.log", "--config", engine, "--bus-name", "org.exo.Test.Taken", NULL);
  c = client (f);
  g_assert_true (wait_node_ready (c, "org.exo.Test.Taken", 10000));
  second = node_start (f, "second.log", "--config", engine, "--bus-name", "org.exo.Test.Taken", NULL);
  g_assert_cmpint (node_wait (second, 10000), ==, 1);
  log = node_log (second);
  g_assert_nonnull (strstr (log, "another exo-node owns it"));
  /* the first one is unaffected */
  g_assert_true (wait_node_ready (c, "org.exo.Test.Taken", 2000));
  kill (atoi (g_subprocess_get_identifier (first->proc)), SIGTERM);
  g_assert_cmpint (node_wait (first, 10000), ==, 0);
  node_free (second);
  node_free (first);
}

static void
test_shutdown_method (Fixture *f, gconstpointer data)
{
  g_autofree char *engine = write_file (f, "engine.json", engine_config);
  g_autoptr(GDBusConnection) c = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  Node *node;

  if (!have_daemon (f))
    return;

  node = node_start (f, "shutdown.log", "--config", engine, "--bus-name", "org.exo.Test.Shutdown", NULL);
  c = client (f);
  g_assert_true (wait_node_ready (c, "org.exo.Test.Shutdown", 10000));
  reply = g_dbus_connection_call_sync (c, "org.exo.Test.Shutdown", "/org/exo/Node1",
                                       "org.exo.Node1", "Shutdown", NULL, NULL,
                                       G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (node_wait (node, 10000), ==, 0);
  node_free (node);
}

/* SIGTERM starts the cleanup; a second signal while it runs forces the exit. */
static void
test_second_signal (Fixture *f, gconstpointer data)
{
  g_autofree char *test_plugins = NULL;
  g_autofree char *config = write_file (f, "slow.json",
      "{ \"resources\": [ { \"id\": \"slow\", \"type\": \"test-good\",\n"
      "    \"settings\": { \"port\": 1, \"cleanup-delay-ms\": 60000 } } ] }\n");
  g_autoptr(GDBusConnection) c = NULL;
  g_autofree char *log = NULL;
  gint64 t0;
  int pid;
  Node *node;

  if (!have_daemon (f))
    return;
  test_plugins = g_build_filename (f->plugin_dir, "..", "tests", "plugins", NULL);
  if (!g_file_test (test_plugins, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("the test plugins are not built");
      return;
    }

  node = node_start (f, "second.log", "--plugin-dir", test_plugins, "--config", config,
                     "--bus-name", "org.exo.Test.Second", NULL);
  c = client (f);
  g_assert_true (wait_node_ready (c, "org.exo.Test.Second", 10000));
  pid = atoi (g_subprocess_get_identifier (node->proc));
  kill (pid, SIGTERM);
  g_usleep (300000);
  t0 = g_get_monotonic_time ();
  kill (pid, SIGINT);
  g_assert_cmpint (node_wait (node, 10000), ==, 1);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 5 * G_USEC_PER_SEC);
  log = node_log (node);
  g_assert_nonnull (strstr (log, "slow: ready -> closing"));
  g_assert_nonnull (strstr (log, "second SIGINT: forcing exit"));
  g_assert_null (strstr (log, "all resources cleaned up"));
  node_free (node);
}

static void
test_usage_errors (Fixture *f, gconstpointer data)
{
  g_autofree char *log = NULL;
  Node *node;

  if (!have_daemon (f))
    return;

  node = node_start (f, "usage.log", "--no-such-option", NULL);
  g_assert_cmpint (node_wait (node, 10000), ==, 2);
  node_free (node);

  node = node_start (f, "version.log", "--version", NULL);
  g_assert_cmpint (node_wait (node, 10000), ==, 0);
  log = node_log (node);
  g_assert_true (g_str_has_prefix (log, "exo-node "));
  g_assert_nonnull (strstr (log, "plugin ABI 3."));
  node_free (node);
}

/* --- registration ---------------------------------------------------- */

void
test_daemon_register_lifecycle (void)
{
  ADD ("/daemon/refused-plugin", test_refused_plugin);
  ADD ("/daemon/bus-name-taken", test_bus_name_taken);
  ADD ("/daemon/shutdown-method", test_shutdown_method);
  ADD ("/daemon/second-signal", test_second_signal);
  ADD ("/daemon/usage-errors", test_usage_errors);
}
