/* pipeline-test-util.c: what the resource-pipeline tests share: a scratch
 * folder per case, the program ($EXO_PIPELINE_EXAMPLE) run to its end or
 * read line by line, its report and its output folder.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Main thread only; the waits iterate the thread-default main context, and
 * a run that does not end within PIPELINE_TEST_TIMEOUT_MS is killed and
 * fails the test.
 */
#include "pipeline-test-util.h"

#include <exo/exo.h>
#include <glib/gstdio.h>
#include <stdarg.h>

void
pipeline_fixture_setup (PipelineFixture *f,
                        gconstpointer    data)
{
  f->tmpdir = g_dir_make_tmp ("exo-pipeline-XXXXXX", NULL);
  g_assert_nonnull (f->tmpdir);
  f->workdir = g_build_filename (f->tmpdir, "work", NULL);
  f->report = g_build_filename (f->tmpdir, "report.json", NULL);
}

static void
rm_rf (const char *path)
{
  g_autoptr(GDir) dir = NULL;
  const char *name;

  g_chmod (path, 0700);   /* a killed run may have left it read-only */
  dir = g_dir_open (path, 0, NULL);
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

void
pipeline_fixture_teardown (PipelineFixture *f,
                           gconstpointer    data)
{
  rm_rf (f->tmpdir);
  g_free (f->tmpdir);
  g_free (f->workdir);
  g_free (f->report);
}

/* The program, or NULL (and the case skipped) outside meson test. */
const char *
pipeline_test_example (void)
{
  const char *path = g_getenv ("EXO_PIPELINE_EXAMPLE");

  if (path == NULL)
    g_test_skip ("EXO_PIPELINE_EXAMPLE is not set (run by meson test)");
  return path;
}

/* A GAsyncReadyCallback that keeps the result in *(GAsyncResult **) @user_data. */
void
pipeline_test_store_result (GObject      *source,
                            GAsyncResult *result,
                            gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GSubprocess *
spawn_va (PipelineFixture  *f,
          GSubprocessFlags  flags,
          const char       *first_option,
          va_list           args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  GSubprocess *proc;

  g_ptr_array_add (argv, (gpointer) pipeline_test_example ());
  g_ptr_array_add (argv, (gpointer) "--workdir");
  g_ptr_array_add (argv, f->workdir);
  g_ptr_array_add (argv, (gpointer) "--report");
  g_ptr_array_add (argv, f->report);
  for (const char *option = first_option; option != NULL; option = va_arg (args, const char *))
    g_ptr_array_add (argv, (gpointer) option);
  g_ptr_array_add (argv, NULL);
  proc = g_subprocess_newv ((const char * const *) argv->pdata, flags, &error);
  g_assert_no_error (error);
  return proc;
}

/* Reads what @proc prints until it ends, PIPELINE_TEST_TIMEOUT_MS at most:
 * one that hangs is killed and fails the test.  Returns its exit status. */
int
pipeline_test_finish (GSubprocess  *proc,
                      char        **out,
                      char        **err)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  gboolean hung;

  g_subprocess_communicate_utf8_async (proc, NULL, NULL, pipeline_test_store_result, &result);
  hung = !exo_wait_for_result (NULL, &result, PIPELINE_TEST_TIMEOUT_MS);
  if (hung)
    {
      g_subprocess_force_exit (proc);
      g_assert_true (exo_wait_for_result (NULL, &result, 10000));
    }
  g_subprocess_communicate_utf8_finish (proc, result, out, err, &error);
  g_assert_no_error (error);
  g_test_message ("stdout:\n%s\nstderr:\n%s", *out, *err);
  if (hung)
    g_error ("the example did not end within %u ms (killed)", PIPELINE_TEST_TIMEOUT_MS);
  g_assert_true (g_subprocess_get_if_exited (proc));
  return g_subprocess_get_exit_status (proc);
}

/* Runs the example to its end with the fixture's folder and report, and
 * the given options; returns its exit status. */
int
pipeline_test_run (PipelineFixture  *f,
                   char            **out,
                   char            **err,
                   const char       *first_option,
                   ...)
{
  g_autoptr(GSubprocess) proc = NULL;
  va_list args;

  va_start (args, first_option);
  proc = spawn_va (f, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                   first_option, args);
  va_end (args);
  return pipeline_test_finish (proc, out, err);
}

/* Starts the example with the fixture's folder and report and the given
 * options, its stdout and stderr in one pipe. */
GSubprocess *
pipeline_test_spawn (PipelineFixture *f,
                     const char      *first_option,
                     ...)
{
  GSubprocess *proc;
  va_list args;

  va_start (args, first_option);
  proc = spawn_va (f, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE,
                   first_option, args);
  va_end (args);
  return proc;
}

/* Reads lines into @all until one holds @needle (TRUE) or the output ends. */
gboolean
pipeline_test_read_until (GDataInputStream *lines,
                          GString          *all,
                          const char       *needle)
{
  g_autoptr(GError) error = NULL;
  char *line;

  while ((line = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error)) != NULL)
    {
      gboolean found = needle != NULL && strstr (line, needle) != NULL;

      g_string_append_printf (all, "%s\n", line);
      g_free (line);
      if (found)
        return TRUE;
    }
  g_assert_no_error (error);
  return FALSE;
}

/* The rest of the output, and the exit status (128 + the signal that
 * killed it). */
int
pipeline_test_read_to_end (GSubprocess      *proc,
                           GDataInputStream *lines,
                           GString          *all)
{
  g_autoptr(GError) error = NULL;

  pipeline_test_read_until (lines, all, NULL);
  g_subprocess_wait (proc, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("output:\n%s", all->str);
  if (g_subprocess_get_if_signaled (proc))
    return 128 + g_subprocess_get_term_sig (proc);
  return g_subprocess_get_exit_status (proc);
}

JsonObject *
pipeline_test_load_report (PipelineFixture *f)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_file (parser, f->report, &error);
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

void
pipeline_test_assert_nothing_left (JsonObject *report,
                                   const char *out)
{
  g_assert_cmpint (FIGURE (report, "leftover-fds"), ==, 0);
  g_assert_cmpint (FIGURE (report, "leftover-handles"), ==, 0);
  g_assert_cmpint (FIGURE (report, "temporary-files"), ==, 0);
  g_assert_nonnull (strstr (out, "cleanup check: nothing left open"));
}

/* The output files: how many, how many lines in all, and no temporary one. */
void
pipeline_test_count_output (PipelineFixture *f,
                            guint           *files,
                            guint           *lines)
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
