/* test-resource-pipeline.c: the resource-pipeline example in its short mode,
 * so that it never rots: simulated failures that it recovers from (every row
 * uploaded exactly once, nothing left open), a spent retry budget, Ctrl-C,
 * the receiver's dedup and limits, and the same resources as an exo-node
 * config, read over D-Bus.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program and exo-node run as child processes ($EXO_PIPELINE_EXAMPLE,
 * $EXO_NODE with the plugin in $EXO_PIPELINE_PLUGIN_DIR); exo-node on a
 * private dbus-daemon (exo-test-bus.c).  Each case has a scratch folder of
 * its own.  Main thread only.
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>

#include "exo-test-bus.h"
#include "pipeline.h"

typedef struct
{
  char *tmpdir;
  char *workdir;
  char *report;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->tmpdir = g_dir_make_tmp ("exo-pipeline-XXXXXX", NULL);
  g_assert_nonnull (f->tmpdir);
  f->workdir = g_build_filename (f->tmpdir, "work", NULL);
  f->report = g_build_filename (f->tmpdir, "report.json", NULL);
}

static void
rm_rf (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  rm_rf (f->tmpdir);
  g_free (f->tmpdir);
  g_free (f->workdir);
  g_free (f->report);
}

static const char *
example (void)
{
  const char *path = g_getenv ("EXO_PIPELINE_EXAMPLE");

  if (path == NULL)
    g_test_skip ("EXO_PIPELINE_EXAMPLE is not set (run by meson test)");
  return path;
}

/* Runs the example to its end with the fixture's folder and report, and
 * the given options; returns its exit status. */
static int
run_example (Fixture     *f,
             char       **out,
             char       **err,
             const char  *first_option,
             ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  const char *option = first_option;
  va_list args;

  g_ptr_array_add (argv, (gpointer) example ());
  g_ptr_array_add (argv, (gpointer) "--workdir");
  g_ptr_array_add (argv, f->workdir);
  g_ptr_array_add (argv, (gpointer) "--report");
  g_ptr_array_add (argv, f->report);
  va_start (args, first_option);
  for (; option != NULL; option = va_arg (args, const char *))
    g_ptr_array_add (argv, (gpointer) option);
  va_end (args);
  g_ptr_array_add (argv, NULL);

  proc = g_subprocess_newv ((const char * const *) argv->pdata,
                            G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, out, err, &error);
  g_assert_no_error (error);
  g_test_message ("stdout:\n%s\nstderr:\n%s", *out, *err);
  g_assert_true (g_subprocess_get_if_exited (proc));
  return g_subprocess_get_exit_status (proc);
}

static JsonObject *
load_report (Fixture *f)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_file (parser, f->report, &error);
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

#define FIGURE(report, key) json_object_get_int_member (report, key)

static void
assert_nothing_left (JsonObject *report,
                     const char *out)
{
  g_assert_cmpint (FIGURE (report, "leftover-fds"), ==, 0);
  g_assert_cmpint (FIGURE (report, "leftover-handles"), ==, 0);
  g_assert_cmpint (FIGURE (report, "temporary-files"), ==, 0);
  g_assert_nonnull (strstr (out, "cleanup check: nothing left open"));
}

/* The output files: how many, how many lines in all, and no temporary one. */
static void
count_output (Fixture *f,
              guint   *files,
              guint   *lines)
{
  g_autofree char *folder = g_build_filename (f->workdir, "out", NULL);
  g_autoptr(GDir) dir = g_dir_open (folder, 0, NULL);
  const char *name;

  g_assert_nonnull (dir);
  *files = *lines = 0;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (folder, name, NULL);
      g_autofree char *contents = NULL;

      g_assert_true (g_str_has_prefix (name, "rows-") && g_str_has_suffix (name, ".jsonl"));
      g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
      (*files)++;
      for (const char *p = contents; *p != '\0'; p++)
        *lines += *p == '\n';
    }
}

/* Every row uploaded exactly once through a locked database, a read-only
 * folder, 503s and dropped connections. */
static void
test_simulated_failures (Fixture       *f,
                         gconstpointer  data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonObject) report = NULL;
  g_autofree char *journal = g_build_filename (f->workdir, "pipeline.db-journal", NULL);
  guint files, lines;
  int status;

  if (example () == NULL)
    return;
  status = run_example (f, &out, &err, "--rows", "2000", "--batch-size", "100",
                        "--receiver-delay-ms", "10", "--simulate-failures", NULL);
  g_assert_cmpint (status, ==, 0);
  report = load_report (f);
  g_assert_cmpstr (json_object_get_string_member (report, "outcome"), ==, "finished");

  /* exactly once: the receiver holds every row of the database, once */
  g_assert_cmpint (FIGURE (report, "database-rows"), ==, 2000);
  g_assert_cmpint (FIGURE (report, "receiver-rows"), ==, FIGURE (report, "database-rows"));
  g_assert_cmpint (FIGURE (report, "receiver-batches"), ==, 20);
  g_assert_cmpint (FIGURE (report, "receiver-duplicate-rows"), ==, 0);
  g_assert_cmpint (FIGURE (report, "rows-uploaded"), ==, 2000);
  g_assert_cmpint (FIGURE (report, "batches"), ==, 20);
  /* two batches were stored, lost their answer and came again: accepted once */
  g_assert_cmpint (FIGURE (report, "receiver-duplicate-batches"), ==, 2);

  /* each failure really happened and was retried */
  g_assert_cmpint (FIGURE (report, "receiver-answered-503"), ==, 4);
  g_assert_cmpint (FIGURE (report, "receiver-dropped"), ==, 4);
  g_assert_cmpint (FIGURE (report, "retries-uploader"), >=, 8);
  g_assert_cmpint (FIGURE (report, "retries-reader"), >=, 1);
  g_assert_cmpint (FIGURE (report, "retries-processor"), >=, 1);
  g_assert_cmpint (FIGURE (report, "failures"), ==, 0);
  g_assert_nonnull (strstr (out, "database is locked"));
  g_assert_nonnull (strstr (out, "Permission denied"));
  g_assert_nonnull (strstr (out, "503 Service Unavailable"));

  /* nothing left open, nothing half written */
  assert_nothing_left (report, out);
  count_output (f, &files, &lines);
  g_assert_cmpuint (files, ==, 20);
  g_assert_cmpuint (lines, ==, 2000);
  g_assert_false (g_file_test (journal, G_FILE_TEST_EXISTS));
}

/* Without retries the first failure ends the run, with a clear error and
 * everything closed. */
static void
test_retry_budget_spent (Fixture       *f,
                         gconstpointer  data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonObject) report = NULL;

  if (example () == NULL)
    return;
  g_assert_cmpint (run_example (f, &out, &err, "--rows", "2000", "--receiver-delay-ms", "10",
                                "--simulate-failures", "--retries", "0", NULL), ==, 1);
  report = load_report (f);
  g_assert_cmpstr (json_object_get_string_member (report, "outcome"), ==, "failed");
  g_assert_nonnull (strstr (err, "the retry budget of 0 retries is spent"));
  g_assert_cmpint (FIGURE (report, "failures"), >=, 1);
  g_assert_cmpint (FIGURE (report, "rows-uploaded"), <, 2000);
  g_assert_cmpint (FIGURE (report, "receiver-duplicate-rows"), ==, 0);
  assert_nothing_left (report, out);
}

/* Ctrl-C while batches are in flight: cleaned up, exit status 130. */
static void
test_interrupted (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) report = NULL;
  GString *out = g_string_new (NULL);
  g_autofree char *all = NULL;
  char *line;
  gboolean interrupted = FALSE;

  if (example () == NULL)
    return;
  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE, &error,
                           example (), "--workdir", f->workdir, "--report", f->report,
                           "--rows", "20000", "--receiver-delay-ms", "40", "--monitor-resources",
                           NULL);
  g_assert_no_error (error);
  lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  /* interrupt it at its first monitor line: the run is under way */
  while ((line = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error)) != NULL)
    {
      g_string_append_printf (out, "%s\n", line);
      if (!interrupted && g_str_has_prefix (line, "monitor:"))
        {
          g_subprocess_send_signal (proc, SIGINT);
          interrupted = TRUE;
        }
      g_free (line);
    }
  g_assert_no_error (error);
  g_subprocess_wait (proc, NULL, &error);
  g_assert_no_error (error);
  all = g_string_free (out, FALSE);
  g_test_message ("output:\n%s", all);

  g_assert_true (interrupted);
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 130);
  g_assert_nonnull (strstr (all, "interrupted: cleaning up"));
  report = load_report (f);
  g_assert_cmpstr (json_object_get_string_member (report, "outcome"), ==, "interrupted");
  g_assert_cmpint (FIGURE (report, "rows-uploaded"), <, 20000);
  /* an upload cut short may have reached the receiver all the same */
  g_assert_cmpint (FIGURE (report, "receiver-rows"), >=, FIGURE (report, "rows-uploaded"));
  g_assert_cmpint (FIGURE (report, "receiver-duplicate-rows"), ==, 0);
  assert_nothing_left (report, all);
}

/* --- the receiver, in process ----------------------------------------------------- */

/* Sends @request on a new connection and returns the status of the answer. */
static guint
http_status (guint16     port,
             const char *request)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GString *answer = g_string_new (NULL);
  g_autofree char *text = NULL;
  char buffer[1024];
  guint status = 0;
  gssize n;

  g_socket_client_set_timeout (client, 10);
  connection = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, &error);
  g_assert_no_error (error);
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)), request,
                             strlen (request), NULL, NULL, &error);
  g_assert_no_error (error);
  /* the status line and the headers are enough */
  while (strstr (answer->str, "\r\n\r\n") == NULL
         && (n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                                      buffer, sizeof buffer, NULL, &error)) > 0)
    g_string_append_len (answer, buffer, n);
  g_assert_no_error (error);
  text = g_string_free (answer, FALSE);
  g_assert_true (sscanf (text, "HTTP/1.1 %u ", &status) == 1);
  return status;
}

/* POSTs @body as batch @batch_id (none when %NULL); returns the status. */
static guint
post (guint16     port,
      const char *batch_id,
      const char *body)
{
  g_autofree char *request =
    g_strdup_printf ("POST /batches HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "%s%s%sContent-Length: %zu\r\n\r\n%s",
                     batch_id != NULL ? "X-Batch-Id: " : "", batch_id != NULL ? batch_id : "",
                     batch_id != NULL ? "\r\n" : "", strlen (body), body);

  return http_status (port, request);
}

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* It stores a batch once, counts a row that comes in two batches, and
 * refuses what it cannot use, a body too big before reading it. */
static void
test_receiver (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(PipelineReceiver) receiver = g_object_new (PIPELINE_TYPE_RECEIVER, "id", "test-receiver", NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GUri) uri = NULL;
  PipelineReceiverStats stats;
  const char *rows = "{\"id\":1,\"name\":\"A\"}\n{\"id\":2,\"name\":\"B\"}\n";
  const char *overlapping = "{\"id\":2,\"name\":\"B\"}\n{\"id\":3,\"name\":\"C\"}\n";
  guint16 port;

  exo_resource_initialize_async (EXO_RESOURCE (receiver), NULL, store_result, &result);
  g_assert_true (exo_wait_for_result (NULL, &result, 10000));
  g_assert_true (exo_resource_initialize_finish (EXO_RESOURCE (receiver), result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);
  g_assert_cmpuint (pipeline_ledger_count (PIPELINE_HANDLE_SERVER_THREAD), ==, 1);
  uri = g_uri_parse (pipeline_receiver_get_url (PIPELINE_RECEIVER (receiver)), G_URI_FLAGS_NONE, &error);
  g_assert_no_error (error);
  port = g_uri_get_port (uri);

  g_assert_cmpuint (post (port, "rows-1-2", rows), ==, 200);
  g_assert_cmpuint (post (port, "rows-1-2", rows), ==, 200);        /* again: accepted once */
  g_assert_cmpuint (post (port, "rows-2-3", overlapping), ==, 200);
  g_assert_cmpuint (post (port, NULL, rows), ==, 400);               /* no batch id */
  g_assert_cmpuint (post (port, "a b", rows), ==, 400);              /* not an id */
  g_assert_cmpuint (post (port, "junk", "garbage\n"), ==, 400);
  g_assert_cmpuint (http_status (port, "GET /batches HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                    ==, 405);
  /* refused from its headers: the 5 MB are never sent */
  g_assert_cmpuint (http_status (port, "POST /batches HTTP/1.1\r\nHost: x\r\nX-Batch-Id: big\r\n"
                                       "Content-Length: 5000000\r\n\r\n"), ==, 413);
  g_assert_cmpuint (http_status (port, "POST /batches HTTP/1.1\r\nHost: x\r\nX-Batch-Id: c\r\n"
                                       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), ==, 411);

  pipeline_receiver_get_stats (PIPELINE_RECEIVER (receiver), &stats);
  g_assert_cmpuint (stats.batches, ==, 2);
  g_assert_cmpuint (stats.rows, ==, 3);
  g_assert_cmpuint (stats.duplicate_batches, ==, 1);
  g_assert_cmpuint (stats.duplicate_rows, ==, 1);
  g_assert_cmpuint (stats.refused, ==, 6);

  exo_resource_cleanup_async (EXO_RESOURCE (receiver), NULL, store_result, &result);
  g_assert_true (exo_wait_for_result (NULL, &result, 10000));
  g_assert_true (exo_resource_cleanup_finish (EXO_RESOURCE (receiver), result, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (pipeline_ledger_count (PIPELINE_HANDLE_SERVER_THREAD), ==, 0);
  g_assert_null (pipeline_receiver_get_url (PIPELINE_RECEIVER (receiver)));
}

/* --- as an exo-node config ------------------------------------------------------ */

static GVariant *
get_property (GDBusConnection *bus,
              const char      *path,
              const char      *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply =
    g_dbus_connection_call_sync (bus, "org.exo.Test.Pipeline", path, "org.freedesktop.DBus.Properties",
                                 "Get", g_variant_new ("(ss)", "org.exo.Resource1", name),
                                 G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
  GVariant *value;

  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

static char *
resource_path (GDBusConnection *bus,
               const char      *id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply =
    g_dbus_connection_call_sync (bus, "org.exo.Test.Pipeline", "/org/exo/Node1", "org.exo.Node1",
                                 "GetResource", g_variant_new ("(s)", id), G_VARIANT_TYPE ("(o)"),
                                 G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
  char *path;

  g_assert_no_error (error);
  g_variant_get (reply, "(o)", &path);
  return path;
}

static guint64
metric (GVariant   *metrics,
        const char *key)
{
  guint64 t;
  guint32 u;

  if (g_variant_lookup (metrics, key, "t", &t))
    return t;
  if (g_variant_lookup (metrics, key, "u", &u))
    return u;
  g_error ("no metric %s in %s", key, g_variant_print (metrics, TRUE));
}

/* Waits until the node owns its name (its resources are exported then). */
static gboolean
wait_for_name (GDBusConnection *bus,
               GSubprocess     *node)
{
  for (guint i = 0; i < 200; i++)
    {
      g_autoptr(GVariant) reply =
        g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "NameHasOwner",
                                     g_variant_new ("(s)", "org.exo.Test.Pipeline"),
                                     G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
      gboolean owned = FALSE;

      if (reply != NULL)
        g_variant_get (reply, "(b)", &owned);
      if (owned)
        return TRUE;
      if (g_subprocess_get_identifier (node) == NULL)
        return FALSE;   /* it exited */
      g_usleep (50 * 1000);
    }
  return FALSE;
}

static void
test_exo_node (Fixture       *f,
               gconstpointer  data)
{
  const char *exo_node = g_getenv ("EXO_NODE");
  const char *plugin_dir = g_getenv ("EXO_PIPELINE_PLUGIN_DIR");
  const char *config = g_getenv ("EXO_PIPELINE_CONFIG");
  g_autofree char *socket_path = g_build_filename (f->tmpdir, "bus", NULL);
  g_autofree char *log_path = g_build_filename (f->tmpdir, "node.log", NULL);
  g_autofree char *address = NULL, *check_out = NULL, *log = NULL;
  g_autofree char *run = NULL, *receiver = NULL, *uploader = NULL, *printed = NULL;
  g_autoptr(GSubprocess) bus_daemon = NULL, check = NULL, node = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) run_metrics = NULL, receiver_metrics = NULL, uploader_metrics = NULL;
  g_autoptr(GError) error = NULL;
  const char * const ids[] = { "receiver", "reader", "processor", "uploader", "run" };
  gboolean finished = FALSE;

  if (exo_node == NULL || plugin_dir == NULL || config == NULL)
    {
      g_test_skip ("EXO_NODE, EXO_PIPELINE_PLUGIN_DIR or EXO_PIPELINE_CONFIG is not set");
      return;
    }

  /* the config as shipped checks */
  check = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE, &error,
                            exo_node, "--plugin-dir", plugin_dir, "--check-config", config, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (check, NULL, NULL, &check_out, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("%s", check_out);
  g_assert_cmpint (g_subprocess_get_exit_status (check), ==, 0);
  g_assert_nonnull (strstr (check_out, "configuration is valid (5 resources)"));

  /* and runs: the node in the scratch folder (the config's paths are relative) */
  bus_daemon = exo_test_bus_spawn (socket_path, &address);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", address, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "EXO_PLUGIN_PATH");
  g_subprocess_launcher_set_cwd (launcher, f->tmpdir);
  g_subprocess_launcher_set_stdout_file_path (launcher, log_path);
  g_subprocess_launcher_set_stderr_file_path (launcher, log_path);
  node = g_subprocess_launcher_spawn (launcher, &error, exo_node, "--plugin-dir", plugin_dir,
                                      "--config", config, "--bus-name", "org.exo.Test.Pipeline", NULL);
  g_assert_no_error (error);

  bus = g_dbus_connection_new_for_address_sync (address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (wait_for_name (bus, node));
  run = resource_path (bus, "run");
  receiver = resource_path (bus, "receiver");
  uploader = resource_path (bus, "uploader");

  /* the run's figures, over D-Bus, until it is done (about 3 s) */
  for (guint i = 0; i < 300 && !finished; i++)
    {
      g_clear_pointer (&run_metrics, g_variant_unref);
      run_metrics = get_property (bus, run, "Metrics");
      g_variant_lookup (run_metrics, "finished", "b", &finished);
      if (!finished)
        g_usleep (100 * 1000);
    }
  printed = g_variant_print (run_metrics, TRUE);
  g_test_message ("run: %s", printed);
  g_clear_pointer (&printed, g_free);
  g_assert_true (finished);
  g_assert_cmpuint (metric (run_metrics, "rows-total"), ==, 20000);
  g_assert_cmpuint (metric (run_metrics, "rows-uploaded"), ==, 20000);
  g_assert_cmpuint (metric (run_metrics, "batches"), ==, 200);
  g_assert_cmpuint (metric (run_metrics, "failures"), ==, 0);

  receiver_metrics = get_property (bus, receiver, "Metrics");
  printed = g_variant_print (receiver_metrics, TRUE);
  g_test_message ("receiver: %s", printed);
  g_clear_pointer (&printed, g_free);
  g_assert_cmpuint (metric (receiver_metrics, "rows"), ==, 20000);
  g_assert_cmpuint (metric (receiver_metrics, "duplicate-rows"), ==, 0);

  /* the pool's counts, through the uploader */
  uploader_metrics = get_property (bus, uploader, "Metrics");
  printed = g_variant_print (uploader_metrics, TRUE);
  g_test_message ("uploader: %s", printed);
  g_clear_pointer (&printed, g_free);
  g_assert_cmpuint (metric (uploader_metrics, "pool-in-use"), ==, 0);
  g_assert_cmpuint (metric (uploader_metrics, "pool-waiting"), ==, 0);
  g_assert_cmpuint (metric (uploader_metrics, "pool-idle"), ==, metric (uploader_metrics, "pool-size"));
  g_assert_cmpuint (metric (uploader_metrics, "pool-created"), >=, 1);
  g_assert_cmpuint (metric (uploader_metrics, "rows"), ==, 20000);

  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      g_autofree char *path = resource_path (bus, ids[i]);
      g_autoptr(GVariant) state = get_property (bus, path, "State");

      g_assert_cmpstr (g_variant_get_string (state, NULL), ==, "ready");
    }

  g_subprocess_send_signal (node, SIGTERM);
  g_subprocess_wait (node, NULL, &error);
  g_assert_no_error (error);
  g_file_get_contents (log_path, &log, NULL, NULL);
  g_test_message ("node log:\n%s", log);
  g_assert_cmpint (g_subprocess_get_exit_status (node), ==, 0);
  g_assert_nonnull (strstr (log, "run: 20000 rows uploaded in 200 batches"));

  g_dbus_connection_close_sync (bus, NULL, NULL);
  g_subprocess_force_exit (bus_daemon);
  g_subprocess_wait (bus_daemon, NULL, NULL);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/resource-pipeline/simulated-failures", test_simulated_failures);
  ADD ("/resource-pipeline/retry-budget-spent", test_retry_budget_spent);
  ADD ("/resource-pipeline/interrupted", test_interrupted);
  ADD ("/resource-pipeline/receiver", test_receiver);
  ADD ("/resource-pipeline/exo-node", test_exo_node);
#undef ADD

  return g_test_run ();
}
