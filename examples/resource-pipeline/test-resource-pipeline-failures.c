/* test-resource-pipeline-failures.c: the resource-pipeline program when
 * things go wrong around it: a pipeline that fails to start (the receiver's
 * thread stopped right after it started; a processor that cannot), Ctrl-C
 * while the database is filled, an empty --workdir, a workdir in use by
 * another run or left read-only by a killed one, and the live view on an
 * 80-column terminal.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program runs as a child process ($EXO_PIPELINE_EXAMPLE), on a pipe or
 * on a pseudo-terminal.  Each case has a scratch folder of its own
 * (pipeline-test-util.c).  Main thread only.
 */
#define _GNU_SOURCE   /* posix_openpt() and the pty calls, for the terminal test */

#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline-test-util.h"

/* The receiver's thread starts and the reader then fails: the cleanup
 * stops the thread (its loop had just started) and the program ends. */
static void
test_start_failure (PipelineFixture *f,
                    gconstpointer    data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *database = g_build_filename (f->workdir, "pipeline.db", NULL);
  g_autoptr(JsonObject) report = NULL;

  if (pipeline_test_example () == NULL)
    return;
  g_assert_cmpint (g_mkdir_with_parents (database, 0755), ==, 0);   /* not a database */
  g_assert_cmpint (pipeline_test_run (f, &out, &err, "--rows", "100", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "the pipeline did not start: member 'reader' failed"));
  g_assert_nonnull (strstr (out, "had not started: reader"));
  g_assert_nonnull (strstr (err, "cannot open"));
  report = pipeline_test_load_report (f);
  g_assert_cmpstr (json_object_get_string_member (report, "outcome"), ==, "failed");
  pipeline_test_assert_nothing_left (report, out);
}

/* The processor cannot start: the summary tells what was cleaned up and in
 * which order, and how many rows the database holds. */
static void
test_processor_start_failure (PipelineFixture *f,
                              gconstpointer    data)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *output_dir = g_build_filename (f->workdir, "out", NULL);
  g_autoptr(JsonObject) report = NULL;
  const char *order;

  if (pipeline_test_example () == NULL)
    return;
  g_assert_cmpint (g_mkdir_with_parents (f->workdir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (output_dir, "a file, not a folder\n", -1, NULL));
  g_assert_cmpint (pipeline_test_run (f, &out, &err, "--rows", "300", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "member 'processor' failed"));
  order = strstr (out, "cleaned up in reverse dependency order: ");
  g_assert_nonnull (order);
  g_assert_nonnull (strstr (order, "; had not started: processor\n"));
  g_assert_null (strstr (out, "NOT in reverse dependency order"));
  report = pipeline_test_load_report (f);
  g_assert_cmpint (FIGURE (report, "database-rows"), ==, 300);   /* filled, though the run never started */
  pipeline_test_assert_nothing_left (report, out);
}

static void
test_empty_workdir (PipelineFixture *f,
                    gconstpointer    data)
{
  g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;

  if (pipeline_test_example () == NULL)
    return;
  g_assert_cmpint (pipeline_test_run (f, &out, &err, "--workdir", "", NULL), ==, 2);
  g_assert_nonnull (strstr (err, "--workdir: an empty folder name"));
  g_assert_cmpint (pipeline_test_run (f, &out2, &err2, "extra", NULL), ==, 2);
  g_assert_nonnull (strstr (err2, "unexpected argument 'extra'"));
}

/* A second run in the same workdir is refused while the first one runs. */
static void
test_workdir_in_use (PipelineFixture *f,
                     gconstpointer    data)
{
  g_autoptr(GSubprocess) first = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  g_autofree char *out = NULL, *err = NULL, *expected = NULL;
  GString *all = g_string_new (NULL);

  if (pipeline_test_example () == NULL)
    return;
  first = pipeline_test_spawn (f, "--rows", "20000", "--receiver-delay-ms", "40", NULL);
  lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (first));
  g_assert_true (pipeline_test_read_until (lines, all, "resources ready"));

  g_assert_cmpint (pipeline_test_run (f, &out, &err, "--rows", "100", NULL), ==, 1);
  expected = g_strdup_printf ("is in use by pid %s\n", g_subprocess_get_identifier (first));
  g_assert_nonnull (strstr (err, expected));

  g_subprocess_send_signal (first, SIGINT);
  g_assert_cmpint (pipeline_test_read_to_end (first, lines, all), ==, 130);
  g_string_free (all, TRUE);
}

/* A run killed while its output folder was read-only: the next run gives
 * the folder its mode back and finishes. */
static void
test_killed_while_read_only (PipelineFixture *f,
                             gconstpointer    data)
{
  g_autoptr(GSubprocess) first = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  g_autoptr(JsonObject) report = NULL;
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *output_dir = g_build_filename (f->workdir, "out", NULL);
  g_autofree char *marker = g_build_filename (output_dir, ".simulated-read-only", NULL);
  GString *all = g_string_new (NULL);
  GStatBuf st;

  if (pipeline_test_example () == NULL)
    return;
  first = pipeline_test_spawn (f, "--rows", "2000", "--receiver-delay-ms", "10", "--simulate-failures", NULL);
  lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (first));
  g_assert_true (pipeline_test_read_until (lines, all, "is read-only (mode 0555)"));
  g_subprocess_force_exit (first);
  g_assert_cmpint (pipeline_test_read_to_end (first, lines, all), ==, 128 + SIGKILL);
  g_string_free (all, TRUE);
  g_assert_cmpint (g_stat (output_dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0555);   /* left so */

  g_assert_cmpint (pipeline_test_run (f, &out, &err, "--rows", "2000", "--receiver-delay-ms", "10",
                                "--simulate-failures", "--retries", "8", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "was left read-only by a run that did not end: mode 0755 restored"));
  g_assert_cmpint (g_stat (output_dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0755);
  g_assert_false (g_file_test (marker, G_FILE_TEST_EXISTS));
  report = pipeline_test_load_report (f);
  g_assert_cmpint (FIGURE (report, "receiver-rows"), ==, 2000);
  pipeline_test_assert_nothing_left (report, out);
}

/* Ctrl-C while the database is filled: the fill stops (rolled back) and the
 * summary says what the database holds. */
static void
test_interrupted_fill (PipelineFixture *f,
                       gconstpointer    data)
{
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  g_autoptr(JsonObject) report = NULL;
  g_autofree char *database = g_build_filename (f->workdir, "pipeline.db", NULL);
  GString *all = g_string_new (NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *count = NULL;

  if (pipeline_test_example () == NULL)
    return;
  proc = pipeline_test_spawn (f, "--rows", "1000000", NULL);
  lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  g_assert_true (pipeline_test_read_until (lines, all, "database "));   /* the first line: filling now */
  g_subprocess_send_signal (proc, SIGINT);
  g_assert_cmpint (pipeline_test_read_to_end (proc, lines, all), ==, 130);
  g_assert_nonnull (strstr (all->str, "was stopped after"));
  g_string_free (all, TRUE);

  g_assert_cmpint (sqlite3_open_v2 (database, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT COUNT(*) FROM rows", -1, &count, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (count), ==, SQLITE_ROW);
  report = pipeline_test_load_report (f);
  g_assert_cmpint (FIGURE (report, "database-rows"), ==, sqlite3_column_int64 (count, 0));
  sqlite3_finalize (count);
  sqlite3_close (db);
}

/* --monitor-resources on an 80-column terminal: each line of the view fits
 * in a row, and each redraw moves up by the lines it drew. */
static void
test_monitor_width (PipelineFixture *f,
                    gconstpointer    data)
{
  struct winsize size = { .ws_row = 24, .ws_col = 80 };
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) output = g_string_new (NULL);
  g_auto(GStrv) segments = NULL;
  guint redraws = 0, cut = 0;
  gint64 deadline = g_get_monotonic_time () + PIPELINE_TEST_TIMEOUT_MS * G_GINT64_CONSTANT (1000);
  int master, slave;

  if (pipeline_test_example () == NULL)
    return;
  master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
  g_assert_cmpint (master, >=, 0);
  g_assert_cmpint (grantpt (master), ==, 0);
  g_assert_cmpint (unlockpt (master), ==, 0);
  slave = open (ptsname (master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  g_assert_cmpint (slave, >=, 0);
  g_assert_cmpint (ioctl (master, TIOCSWINSZ, &size), ==, 0);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_setenv (launcher, "TERM", "xterm", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "COLUMNS");
  g_subprocess_launcher_take_stdout_fd (launcher, slave);
  g_subprocess_launcher_take_stderr_fd (launcher, dup (slave));
  proc = g_subprocess_launcher_spawn (launcher, &error, pipeline_test_example (), "--workdir", f->workdir,
                                      "--rows", "2000", "--receiver-delay-ms", "40",
                                      "--monitor-resources", NULL);
  g_assert_no_error (error);
  g_clear_object (&launcher);   /* closes our copies of the terminal's side */

  /* until the program's side is closed (EIO) */
  for (;;)
    {
      struct pollfd pfd = { master, POLLIN, 0 };
      char buffer[4096];
      gssize n;

      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      if (poll (&pfd, 1, 1000) <= 0)
        continue;
      n = read (master, buffer, sizeof buffer);
      if (n <= 0)
        break;
      g_string_append_len (output, buffer, n);
    }
  close (master);
  g_subprocess_wait (proc, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 0);
  g_test_message ("terminal:\n%s", output->str);

  /* the output before each "up N lines" ends with the N lines of the view
   * (indented by two spaces); each fits in 79 columns.  Cut at each escape
   * sequence ("\033[6A", "\033[J"), what follows one begins a segment. */
  g_string_replace (output, "\r", "", 0);
  segments = g_strsplit (output->str, "\033[", -1);
  for (guint i = 0; segments[i] != NULL; i++)
    {
      g_auto(GStrv) lines = NULL;
      const char *text = segments[i];
      guint up = 0, view = 0;

      if (i > 0 && sscanf (text, "%uA", &up) == 1)
        {
          g_auto(GStrv) before = g_strsplit (segments[i - 1] + (i > 1 && segments[i - 1][0] == 'J'),
                                             "\n", -1);

          for (guint j = 0; before[j] != NULL; j++)
            view += g_str_has_prefix (before[j], "  ");
          g_assert_cmpuint (up, ==, view);
          redraws++;
        }
      if (i > 0 && text[0] == 'J')
        text++;
      lines = g_strsplit (text, "\n", -1);
      for (guint j = 0; lines[j] != NULL; j++)
        if (g_str_has_prefix (lines[j], "  "))
          {
            g_assert_cmpint (g_utf8_strlen (lines[j], -1), <=, 79);
            cut += g_str_has_suffix (lines[j], "…");
          }
    }
  g_assert_cmpuint (redraws, >=, 2);
  g_assert_cmpuint (cut, >=, 1);   /* the uploader's line is longer than 80 */
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add (path, PipelineFixture, NULL, pipeline_fixture_setup, func, \
                                    pipeline_fixture_teardown)
  ADD ("/resource-pipeline/start-failure", test_start_failure);
  ADD ("/resource-pipeline/processor-start-failure", test_processor_start_failure);
  ADD ("/resource-pipeline/empty-workdir", test_empty_workdir);
  ADD ("/resource-pipeline/interrupted-fill", test_interrupted_fill);
  ADD ("/resource-pipeline/workdir-in-use", test_workdir_in_use);
  ADD ("/resource-pipeline/killed-while-read-only", test_killed_while_read_only);
  ADD ("/resource-pipeline/monitor-width", test_monitor_width);
#undef ADD

  return g_test_run ();
}
