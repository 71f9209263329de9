/* test-resource-pipeline.c: the resource-pipeline example in its short mode,
 * so that it never rots: simulated failures that it recovers from (every row
 * uploaded exactly once, nothing left open), a spent retry budget, Ctrl-C,
 * the receiver's dedup, limits and restarts, and the same resources as an
 * exo-node config, read over D-Bus while its receiver is restarted.  The
 * program's failures are test-resource-pipeline-failures.c's.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program and exo-node run as child processes ($EXO_PIPELINE_EXAMPLE,
 * $EXO_NODE with the plugin in $EXO_PIPELINE_PLUGIN_DIR); exo-node on a
 * private dbus-daemon (exo-test-bus.c).  Each case has a scratch folder of
 * its own (pipeline-test-util.c).  Main thread only.
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>

#include "exo-test-bus.h"
#include "pipeline.h"
#include "pipeline-test-util.h"

/* Every row uploaded exactly once through a locked database, a read-only
 * folder, 503s and dropped connections.  The retry budget (8 retries: at
 * least 1.9 s of backoff) is well beyond the 0.3 s lock and read-only
 * folder, so that a loaded machine does not spend it; a failure that lasts
 * is still a failure.  An output file of an earlier, bigger run
 * is removed. */
static void
test_simulated_failures (PipelineFixture *f,
                         gconstpointer    data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonObject) report = NULL;
  g_autofree char *journal = g_build_filename (f->workdir, "pipeline.db-journal", NULL);
  g_autofree char *old_output = g_build_filename (f->workdir, "out", "rows-999901-1000000.jsonl", NULL);
  g_autofree char *marker = g_build_filename (f->workdir, "out", ".simulated-read-only", NULL);
  g_autofree char *output_dir = g_build_filename (f->workdir, "out", NULL);
  GStatBuf st;
  guint files, lines;
  int status;

  if (pipeline_test_example () == NULL)
    return;
  g_assert_cmpint (g_mkdir_with_parents (output_dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (old_output, "{\"id\":999901,\"name\":\"OLD\"}\n", -1, NULL));
  status = pipeline_test_run (f, &out, &err, "--rows", "2000", "--batch-size", "100",
                        "--receiver-delay-ms", "10", "--simulate-failures", "--retries", "8", NULL);
  g_assert_cmpint (status, ==, 0);
  report = pipeline_test_load_report (f);
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
  pipeline_test_assert_nothing_left (report, out);
  pipeline_test_count_output (f, &files, &lines);
  g_assert_cmpuint (files, ==, 20);
  g_assert_cmpuint (lines, ==, 2000);
  g_assert_nonnull (strstr (out, "processor: removed the 1 output files of an earlier run"));
  g_assert_false (g_file_test (journal, G_FILE_TEST_EXISTS));
  /* the folder has its mode back, and the marker that kept it is gone */
  g_assert_cmpint (g_stat (output_dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0755);
  g_assert_false (g_file_test (marker, G_FILE_TEST_EXISTS));
}

/* Without retries the first failure ends the run, with a clear error and
 * everything closed. */
static void
test_retry_budget_spent (PipelineFixture *f,
                         gconstpointer    data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(JsonObject) report = NULL;

  if (pipeline_test_example () == NULL)
    return;
  g_assert_cmpint (pipeline_test_run (f, &out, &err, "--rows", "2000", "--receiver-delay-ms", "10",
                                "--simulate-failures", "--retries", "0", NULL), ==, 1);
  report = pipeline_test_load_report (f);
  g_assert_cmpstr (json_object_get_string_member (report, "outcome"), ==, "failed");
  g_assert_nonnull (strstr (err, "the retry budget of 0 retries is spent"));
  g_assert_cmpint (FIGURE (report, "failures"), >=, 1);
  g_assert_cmpint (FIGURE (report, "rows-uploaded"), <, 2000);
  g_assert_cmpint (FIGURE (report, "receiver-duplicate-rows"), ==, 0);
  pipeline_test_assert_nothing_left (report, out);
}

/* Ctrl-C while batches are in flight: cleaned up, exit status 130. */
static void
test_interrupted (PipelineFixture *f,
                  gconstpointer    data)
{
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) report = NULL;
  GString *out = g_string_new (NULL);
  g_autofree char *all = NULL;
  char *line;
  gboolean interrupted = FALSE;

  if (pipeline_test_example () == NULL)
    return;
  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE, &error,
                           pipeline_test_example (), "--workdir", f->workdir, "--report", f->report,
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
  report = pipeline_test_load_report (f);
  g_assert_cmpstr (json_object_get_string_member (report, "outcome"), ==, "interrupted");
  g_assert_cmpint (FIGURE (report, "rows-uploaded"), <, 20000);
  /* an upload cut short may have reached the receiver all the same */
  g_assert_cmpint (FIGURE (report, "receiver-rows"), >=, FIGURE (report, "rows-uploaded"));
  g_assert_cmpint (FIGURE (report, "receiver-duplicate-rows"), ==, 0);
  pipeline_test_assert_nothing_left (report, all);
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

/* It stores a batch once, counts a row that comes in two batches, and
 * refuses what it cannot use, a body too big before reading it. */
static void
test_receiver (PipelineFixture *f,
               gconstpointer    data)
{
  g_autoptr(PipelineReceiver) receiver = g_object_new (PIPELINE_TYPE_RECEIVER, "id", "test-receiver", NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GUri) uri = NULL;
  PipelineReceiverStats stats;
  const char *rows = "{\"id\":1,\"name\":\"A\"}\n{\"id\":2,\"name\":\"B\"}\n";
  const char *overlapping = "{\"id\":2,\"name\":\"B\"}\n{\"id\":3,\"name\":\"C\"}\n";
  guint16 port;

  exo_resource_initialize_async (EXO_RESOURCE (receiver), NULL, pipeline_test_store_result, &result);
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

  exo_resource_cleanup_async (EXO_RESOURCE (receiver), NULL, pipeline_test_store_result, &result);
  g_assert_true (exo_wait_for_result (NULL, &result, 10000));
  g_assert_true (exo_resource_cleanup_finish (EXO_RESOURCE (receiver), result, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (pipeline_ledger_count (PIPELINE_HANDLE_SERVER_THREAD), ==, 0);
  g_assert_null (pipeline_receiver_get_url (PIPELINE_RECEIVER (receiver)));
}

static void
receiver_call (PipelineReceiver *receiver,
               gboolean          initialize)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  if (initialize)
    exo_resource_initialize_async (EXO_RESOURCE (receiver), NULL, pipeline_test_store_result, &result);
  else
    exo_resource_cleanup_async (EXO_RESOURCE (receiver), NULL, pipeline_test_store_result, &result);
  g_assert_true (exo_wait_for_result (NULL, &result, 10000));
  if (initialize)
    exo_resource_initialize_finish (EXO_RESOURCE (receiver), result, &error);
  else
    exo_resource_cleanup_finish (EXO_RESOURCE (receiver), result, &error);
  g_assert_no_error (error);
}

static guint16
receiver_port (PipelineReceiver *receiver)
{
  g_autoptr(GUri) uri = g_uri_parse (pipeline_receiver_get_url (receiver), G_URI_FLAGS_NONE, NULL);

  g_assert_nonnull (uri);
  return g_uri_get_port (uri);
}

/* Stopped as soon as it started, many times: the stop is never lost (it
 * hung when the quit came before the thread's loop ran).  What it stored
 * is still stored after a restart.  In a subprocess, so that a hang fails
 * the test in bounded time. */
static void
test_receiver_restarts (PipelineFixture *f,
                        gconstpointer    data)
{
  g_autoptr(PipelineReceiver) receiver = NULL;
  PipelineReceiverStats stats;
  const char *rows = "{\"id\":1,\"name\":\"A\"}\n{\"id\":2,\"name\":\"B\"}\n";

  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 30 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
      return;
    }

  receiver = g_object_new (PIPELINE_TYPE_RECEIVER, "id", "restarted-receiver", NULL);
  receiver_call (receiver, TRUE);
  g_assert_cmpuint (post (receiver_port (receiver), "rows-1-2", rows), ==, 200);
  receiver_call (receiver, FALSE);
  for (guint i = 0; i < 300; i++)
    {
      receiver_call (receiver, TRUE);
      receiver_call (receiver, FALSE);
    }
  g_assert_cmpuint (pipeline_ledger_count (PIPELINE_HANDLE_SERVER_THREAD), ==, 0);

  /* the batch is still known: sent again, it is accepted once */
  receiver_call (receiver, TRUE);
  g_assert_cmpuint (post (receiver_port (receiver), "rows-1-2", rows), ==, 200);
  pipeline_receiver_get_stats (receiver, &stats);
  g_assert_cmpuint (stats.batches, ==, 1);
  g_assert_cmpuint (stats.rows, ==, 2);
  g_assert_cmpuint (stats.duplicate_batches, ==, 1);
  receiver_call (receiver, FALSE);
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

/* Restart the receiver twice at once over D-Bus, as two `exoctl restart
 * receiver` would: both calls are answered (the node's main thread does
 * not hang stopping the receiver's thread).  The second cleanup may cancel
 * the first restart's initialize; the last restart succeeds. */
static void
restart_twice (GDBusConnection *bus,
               const char      *path)
{
  g_autoptr(GAsyncResult) first = NULL, second = NULL;
  GAsyncResult **results[] = { &first, &second };
  guint succeeded = 0;

  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    g_dbus_connection_call (bus, "org.exo.Test.Pipeline", path, "org.exo.Resource1", "Restart",
                            NULL, NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, pipeline_test_store_result,
                            results[i]);
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GError) error = NULL;

      g_assert_true (exo_wait_for_result (NULL, results[i], 20000));
      reply = g_dbus_connection_call_finish (bus, *results[i], &error);
      g_test_message ("restart %u: %s", i + 1, error != NULL ? error->message : "done");
      if (error == NULL)
        succeeded++;
      else
        g_assert_nonnull (strstr (error->message, "cancelled"));
    }
  g_assert_cmpuint (succeeded, >=, 1);
}

static void
test_exo_node (PipelineFixture *f,
               gconstpointer    data)
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
  gboolean finished = FALSE, restarted = FALSE;

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

  /* the run's figures, over D-Bus, until it is done (about 3 s); with
   * 2000 rows uploaded, the receiver is restarted twice at once: it comes
   * back on another port, and keeps what it stored */
  for (guint i = 0; i < 300 && !finished; i++)
    {
      g_clear_pointer (&run_metrics, g_variant_unref);
      run_metrics = get_property (bus, run, "Metrics");
      g_variant_lookup (run_metrics, "finished", "b", &finished);
      if (!restarted && !finished && metric (run_metrics, "rows-uploaded") >= 2000)
        {
          restart_twice (bus, receiver);
          restarted = TRUE;
        }
      else if (!finished)
        g_usleep (100 * 1000);
    }
  printed = g_variant_print (run_metrics, TRUE);
  g_test_message ("run: %s", printed);
  g_clear_pointer (&printed, g_free);
  g_assert_true (finished);
  g_assert_true (restarted);
  g_assert_cmpuint (metric (run_metrics, "rows-total"), ==, 20000);
  g_assert_cmpuint (metric (run_metrics, "rows-uploaded"), ==, 20000);
  g_assert_cmpuint (metric (run_metrics, "batches"), ==, 200);
  g_assert_cmpuint (metric (run_metrics, "failures"), ==, 0);

  receiver_metrics = get_property (bus, receiver, "Metrics");
  printed = g_variant_print (receiver_metrics, TRUE);
  g_test_message ("receiver: %s", printed);
  g_clear_pointer (&printed, g_free);
  /* exactly once, across the restarts */
  g_assert_cmpuint (metric (receiver_metrics, "rows"), ==, 20000);
  g_assert_cmpuint (metric (receiver_metrics, "batches"), ==, 200);
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
  g_assert_nonnull (strstr (log, "uploader: posting to http://127.0.0.1:"));   /* the new port */

  g_dbus_connection_close_sync (bus, NULL, NULL);
  g_subprocess_force_exit (bus_daemon);
  g_subprocess_wait (bus_daemon, NULL, NULL);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add (path, PipelineFixture, NULL, pipeline_fixture_setup, func, \
                                    pipeline_fixture_teardown)
  ADD ("/resource-pipeline/simulated-failures", test_simulated_failures);
  ADD ("/resource-pipeline/retry-budget-spent", test_retry_budget_spent);
  ADD ("/resource-pipeline/interrupted", test_interrupted);
  ADD ("/resource-pipeline/receiver", test_receiver);
  ADD ("/resource-pipeline/receiver-restarts", test_receiver_restarts);
  ADD ("/resource-pipeline/exo-node", test_exo_node);
#undef ADD

  return g_test_run ();
}
