/* resource-pipeline.c: read -> process -> upload with shared resources; see
 * README.md.  The program: options, the ExoResourceGroup of the pipeline,
 * Ctrl-C, the summary and the cleanup check.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything runs in the global default main context, except the
 * receiver's HTTP server (its own thread, see pipeline-receiver.c).
 */
#include "pipeline.h"
#include "pipeline-monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef enum {
  OUTCOME_FINISHED,
  OUTCOME_FAILED,
  OUTCOME_INTERRUPTED,
} Outcome;

static const char * const outcome_names[] = { "finished", "failed", "interrupted" };

typedef struct
{
  GMainLoop         *loop;
  ExoResourceGroup  *group;
  GPtrArray         *members;        /* ExoResource, in dependency order */
  PipelineReceiver  *receiver;
  PipelineReader    *reader;
  PipelineProcessor *processor;
  PipelineUploader  *uploader;
  PipelineRun       *run;
  PipelineMonitor   *monitor;
  GHashTable        *depends_on;     /* id -> GStrv, the ids it depends on */
  GHashTable        *started;        /* ExoResource that were ready since their initialize */
  GPtrArray         *closed;         /* ids of those, as they closed */
  GPtrArray         *not_started;    /* ids closed without having been ready */
  GError            *error;          /* why it failed */
  gboolean           cleaning;
  gboolean           interrupted;
  gint64             started_at;
} Pipeline;

/* options */
static guint    opt_rows = 20000;
static guint    opt_batch_size = 100;
static guint    opt_in_flight = 4;
static guint    opt_sessions = 3;
static guint    opt_retries = 5;
static guint    opt_receiver_delay_ms = 40;
static char    *opt_workdir;
static char    *opt_report;
static gboolean opt_simulate_failures;
static gboolean opt_monitor;

static const GOptionEntry entries[] = {
  { "rows", 0, 0, G_OPTION_ARG_INT, &opt_rows, "Rows in the database (filled when it has another number; default 20000)", "N" },
  { "batch-size", 0, 0, G_OPTION_ARG_INT, &opt_batch_size, "Rows a batch (default 100)", "N" },
  { "in-flight", 0, 0, G_OPTION_ARG_INT, &opt_in_flight, "Batches on their way at once (default 4)", "N" },
  { "sessions", 0, 0, G_OPTION_ARG_INT, &opt_sessions, "The most pooled HTTP sessions (default 3)", "N" },
  { "retries", 0, 0, G_OPTION_ARG_INT, &opt_retries, "Retries per operation: the retry budget (default 5)", "N" },
  { "receiver-delay-ms", 0, 0, G_OPTION_ARG_INT, &opt_receiver_delay_ms, "How long the receiver takes to answer (default 40)", "MS" },
  { "workdir", 0, 0, G_OPTION_ARG_FILENAME, &opt_workdir, "Where the database and the output files go (default ~/.cache/exo-resource-pipeline)", "DIR" },
  { "simulate-failures", 0, 0, G_OPTION_ARG_NONE, &opt_simulate_failures, "Make real failures happen: a locked database, a read-only folder, 503s and dropped connections", NULL },
  { "monitor-resources", 0, 0, G_OPTION_ARG_NONE, &opt_monitor, "Show the resources, the session pool and the progress while it runs", NULL },
  { "report", 0, 0, G_OPTION_ARG_FILENAME, &opt_report, "Also write the figures of the summary to FILE (JSON)", "FILE" },
  G_OPTION_ENTRY_NULL
};

static void G_GNUC_PRINTF (2, 3)
say (Pipeline   *pipeline,
     const char *format,
     ...)
{
  g_autofree char *line = NULL;
  va_list args;

  va_start (args, format);
  line = g_strdup_vprintf (format, args);
  va_end (args);
  pipeline_monitor_say (pipeline->monitor, line);
}

/* --- the cleanup check -------------------------------------------------------- */

/* The open file descriptors of this process: fd -> what it is. */
static GHashTable *
list_fds (void)
{
  GHashTable *fds = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  const char *name;
  int own = -1;

  if (dir == NULL)
    return fds;
  /* the listing's own descriptor is the one that is a directory of /proc/<pid>/fd */
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/fd", name, NULL);
      char *target = g_file_read_link (path, NULL);

      if (target != NULL && g_str_has_prefix (target, "/proc/") && g_str_has_suffix (target, "/fd"))
        own = atoi (name);
      g_hash_table_insert (fds, GINT_TO_POINTER (atoi (name)),
                           target != NULL ? target : g_strdup ("?"));
    }
  g_hash_table_remove (fds, GINT_TO_POINTER (own));
  return fds;
}

typedef struct
{
  guint fds;
  guint handles;
  guint temporary_files;
  GString *details;
} Leftovers;

static void
check_cleanup (Pipeline   *pipeline,
               GHashTable *fds_before,
               Leftovers  *left)
{
  g_autoptr(GHashTable) fds_after = list_fds ();
  GHashTableIter iter;
  gpointer fd, target;

  left->details = g_string_new (NULL);
  g_hash_table_iter_init (&iter, fds_after);
  while (g_hash_table_iter_next (&iter, &fd, &target))
    if (!g_hash_table_contains (fds_before, fd))
      {
        left->fds++;
        g_string_append_printf (left->details, "\n  file descriptor %d: %s",
                                GPOINTER_TO_INT (fd), (const char *) target);
      }
  for (guint kind = 0; kind < PIPELINE_N_HANDLE_KINDS; kind++)
    {
      guint n = pipeline_ledger_count (kind);

      left->handles += n;
      if (n > 0)
        g_string_append_printf (left->details, "\n  %u %s", n, pipeline_handle_kind_to_string (kind));
    }
  left->temporary_files = pipeline_processor_count_temporary_files (pipeline->processor);
  if (left->temporary_files > 0)
    g_string_append_printf (left->details, "\n  %u temporary files", left->temporary_files);
}

/* --- when run as root: let file modes apply ---------------------------------- */

/* Root ignores a folder's mode (CAP_DAC_OVERRIDE), so a read-only folder
 * would not stop it: take the capabilities that allow that out of the
 * effective set of this thread (threads made later inherit it). */
static gboolean
drop_file_mode_override (GError **error)
{
  struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

  if (syscall (SYS_capget, &header, data) != 0)
    goto failed;
  data[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
  if (syscall (SYS_capset, &header, data) != 0)
    goto failed;
  return TRUE;

failed:
  {
    int saved = errno;

    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s", g_strerror (saved));
    return FALSE;
  }
}

/* --- one run at a time in a workdir ------------------------------------------------ */

#define LOCK_FILE "resource-pipeline.lock"

/* Takes the workdir's lock file (flock, released when the process ends,
 * however it ends) and writes our pid in it: two runs in one workdir would
 * refill each other's database and share the output folder.  Returns the
 * descriptor to keep, or -1. */
static int
lock_workdir (const char  *workdir,
              GError     **error)
{
  g_autofree char *path = g_build_filename (workdir, LOCK_FILE, NULL);
  char pid[32];
  int fd, saved;

  if (g_mkdir_with_parents (workdir, 0755) != 0)
    {
      saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "cannot make workdir %s: %s",
                   workdir, g_strerror (saved));
      return -1;
    }
  fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    {
      saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "cannot open %s: %s",
                   path, g_strerror (saved));
      return -1;
    }
  if (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      gssize n;
      guint64 holder = 0;

      saved = errno;
      if (saved != EWOULDBLOCK)
        g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "cannot lock %s: %s",
                     path, g_strerror (saved));
      else
        {
          /* its pid, when it has written it yet */
          n = pread (fd, pid, sizeof pid - 1, 0);
          pid[MAX (n, 0)] = '\0';
          g_strstrip (pid);
          if (g_ascii_string_to_unsigned (pid, 10, 1, G_MAXINT, &holder, NULL))
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, "workdir %s is in use by pid %"
                         G_GUINT64_FORMAT, workdir, holder);
          else
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, "workdir %s is in use by another "
                         "process", workdir);
        }
      close (fd);
      return -1;
    }
  g_snprintf (pid, sizeof pid, "%d\n", (int) getpid ());
  if (ftruncate (fd, 0) != 0 || pwrite (fd, pid, strlen (pid), 0) != (gssize) strlen (pid))
    {
      saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "cannot write %s: %s",
                   path, g_strerror (saved));
      close (fd);
      return -1;
    }
  return fd;
}

/* --- the pipeline ------------------------------------------------------------------ */

/* The order in which the resources that had started were cleaned up, as
 * it was, and whether each closed before what it depends on. */
static char *
describe_cleanup_order (Pipeline *pipeline)
{
  g_autofree char *list = NULL;
  GString *line = g_string_new (NULL);
  const char *late = NULL, *dependency = NULL;

  g_ptr_array_add (pipeline->closed, NULL);
  list = g_strjoinv (", ", (char **) pipeline->closed->pdata);
  g_ptr_array_set_size (pipeline->closed, pipeline->closed->len - 1);
  /* a resource closed before one it depends on, when both had started */
  for (guint i = 0; i < pipeline->closed->len && late == NULL; i++)
    {
      const char *id = g_ptr_array_index (pipeline->closed, i);
      const char * const *deps = g_hash_table_lookup (pipeline->depends_on, id);

      for (guint j = 0; j < i && late == NULL; j++)
        if (deps != NULL && g_strv_contains (deps, g_ptr_array_index (pipeline->closed, j)))
          {
            late = id;
            dependency = g_ptr_array_index (pipeline->closed, j);
          }
    }
  if (late == NULL)
    g_string_append_printf (line, "cleaned up in reverse dependency order: %s",
                            pipeline->closed->len > 0 ? list : "nothing had started");
  else
    g_string_append_printf (line, "cleaned up NOT in reverse dependency order (%s closed after "
                            "%s, which it depends on): %s", late, dependency, list);
  if (pipeline->not_started->len > 0)
    {
      g_autofree char *others = NULL;

      g_ptr_array_add (pipeline->not_started, NULL);
      others = g_strjoinv (", ", (char **) pipeline->not_started->pdata);
      g_ptr_array_set_size (pipeline->not_started, pipeline->not_started->len - 1);
      g_string_append_printf (line, "; had not started: %s", others);
    }
  return g_string_free (line, FALSE);
}

static void
group_closed_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Pipeline *pipeline = user_data;
  g_autoptr(GError) error = NULL;

  g_autofree char *order = NULL;

  if (!exo_resource_cleanup_finish (EXO_RESOURCE (source), result, &error))
    say (pipeline, "cleanup: %s", error->message);
  order = describe_cleanup_order (pipeline);
  say (pipeline, "%s", order);
  g_main_loop_quit (pipeline->loop);
}

static void
start_cleanup (Pipeline *pipeline)
{
  if (pipeline->cleaning)
    return;
  pipeline->cleaning = TRUE;
  pipeline_monitor_stop (pipeline->monitor);   /* its last view: the figures at the end */
  exo_resource_cleanup_async (EXO_RESOURCE (pipeline->group), NULL, group_closed_cb, pipeline);
}

static void
group_ready_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Pipeline *pipeline = user_data;
  g_autoptr(GError) error = NULL;

  if (!exo_resource_initialize_finish (EXO_RESOURCE (source), result, &error))
    {
      if (!pipeline->interrupted && pipeline->error == NULL)
        pipeline->error = g_error_copy (error);
      say (pipeline, "the pipeline did not start: %s", error->message);
      start_cleanup (pipeline);
      return;
    }
  say (pipeline, "%u resources ready in %.0f ms; the receiver listens on %s",
       pipeline->members->len, (g_get_monotonic_time () - pipeline->started_at) / 1e3,
       pipeline_receiver_get_url (pipeline->receiver));
}

static void
finished_cb (PipelineRun  *run,
             const GError *error,
             gpointer      user_data)
{
  Pipeline *pipeline = user_data;

  if (error != NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
      && pipeline->error == NULL)
    {
      pipeline->error = g_error_copy (error);
      say (pipeline, "the pipeline failed: %s", error->message);
    }
  start_cleanup (pipeline);
}

static void
event_cb (GObject    *source,
          const char *message,
          gpointer    user_data)
{
  say (user_data, "%s", message);
}

static void
state_changed_cb (ExoResource      *resource,
                  ExoResourceState  old_state,
                  ExoResourceState  new_state,
                  gpointer          user_data)
{
  Pipeline *pipeline = user_data;
  const char *id = exo_resource_get_id (resource);

  if (new_state == EXO_RESOURCE_STATE_READY || new_state == EXO_RESOURCE_STATE_DEGRADED)
    g_hash_table_add (pipeline->started, resource);
  else if (new_state == EXO_RESOURCE_STATE_CLOSED)
    g_ptr_array_add (g_hash_table_remove (pipeline->started, resource) ? pipeline->closed
                                                                        : pipeline->not_started,
                     g_strdup (id));
}

static gboolean
interrupt_cb (gpointer user_data)
{
  Pipeline *pipeline = user_data;

  if (pipeline->cleaning)
    {
      say (pipeline, "interrupted: already cleaning up");
      return G_SOURCE_CONTINUE;
    }
  pipeline->interrupted = TRUE;
  say (pipeline, "interrupted: cleaning up");
  pipeline_reader_stop_fill (pipeline->reader);   /* a fill in progress is rolled back */
  start_cleanup (pipeline);
  return G_SOURCE_CONTINUE;
}

static void
add_member (Pipeline    *pipeline,
            gpointer     resource,
            const char  *first_dependency,
            ...)
{
  g_autoptr(GPtrArray) depends_on = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  const char *dependency = first_dependency;
  va_list args;

  va_start (args, first_dependency);
  for (; dependency != NULL; dependency = va_arg (args, const char *))
    g_ptr_array_add (depends_on, (gpointer) dependency);
  va_end (args);
  g_ptr_array_add (depends_on, NULL);

  if (!exo_resource_group_add (pipeline->group, resource, (const char * const *) depends_on->pdata, &error))
    g_error ("%s", error->message);   /* a programming error: fixed ids */
  g_hash_table_insert (pipeline->depends_on, g_strdup (exo_resource_get_id (resource)),
                       g_strdupv ((char **) depends_on->pdata));
  if (PIPELINE_IS_STAGE (resource))
    {
      g_autoptr(ExoRetryPolicy) policy = exo_managed_resource_get_retry_policy (resource);

      policy->max_retries = opt_retries;
      exo_managed_resource_set_retry_policy (resource, policy);
    }
  g_signal_connect (resource, "state-changed", G_CALLBACK (state_changed_cb), pipeline);
  if (PIPELINE_IS_STAGE (resource))
    g_signal_connect (resource, "event", G_CALLBACK (event_cb), pipeline);
  g_ptr_array_add (pipeline->members, g_object_ref (resource));
}

static void
build (Pipeline *pipeline)
{
  g_autofree char *database = g_build_filename (opt_workdir, "pipeline.db", NULL);
  g_autofree char *output_dir = g_build_filename (opt_workdir, "out", NULL);

  pipeline->group = exo_resource_group_new ("pipeline");
  pipeline->members = g_ptr_array_new_with_free_func (g_object_unref);
  pipeline->depends_on = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                (GDestroyNotify) g_strfreev);
  pipeline->started = g_hash_table_new (NULL, NULL);
  pipeline->closed = g_ptr_array_new_with_free_func (g_free);
  pipeline->not_started = g_ptr_array_new_with_free_func (g_free);

  pipeline->receiver = g_object_new (PIPELINE_TYPE_RECEIVER, "id", "receiver",
                                     "delay-ms", opt_receiver_delay_ms,
                                     "simulate-failures", opt_simulate_failures, NULL);
  pipeline->reader = g_object_new (PIPELINE_TYPE_READER, "id", "reader", "database", database,
                                   "rows", opt_rows, "simulate-failures", opt_simulate_failures, NULL);
  pipeline->processor = g_object_new (PIPELINE_TYPE_PROCESSOR, "id", "processor",
                                      "output-dir", output_dir,
                                      "simulate-failures", opt_simulate_failures, NULL);
  pipeline->uploader = g_object_new (PIPELINE_TYPE_UPLOADER, "id", "uploader",
                                     "receiver", "receiver", "sessions", opt_sessions, NULL);
  pipeline->run = g_object_new (PIPELINE_TYPE_RUN, "id", "run", "batch-size", opt_batch_size,
                                "in-flight", opt_in_flight, NULL);

  /* the stages in data order; the run needs all of them */
  add_member (pipeline, pipeline->receiver, NULL);
  add_member (pipeline, pipeline->reader, NULL);
  add_member (pipeline, pipeline->processor, "reader", NULL);
  add_member (pipeline, pipeline->uploader, "processor", "receiver", NULL);
  add_member (pipeline, pipeline->run, "reader", "processor", "uploader", NULL);

  g_signal_connect (pipeline->run, "event", G_CALLBACK (event_cb), pipeline);
  g_signal_connect (pipeline->run, "finished", G_CALLBACK (finished_cb), pipeline);
  pipeline->monitor = pipeline_monitor_new (pipeline->members, pipeline->run, opt_monitor);
}

static void
pipeline_clear (Pipeline *pipeline)
{
  g_clear_pointer (&pipeline->monitor, pipeline_monitor_free);
  g_clear_pointer (&pipeline->members, g_ptr_array_unref);
  g_clear_pointer (&pipeline->depends_on, g_hash_table_unref);
  g_clear_pointer (&pipeline->started, g_hash_table_unref);
  g_clear_pointer (&pipeline->closed, g_ptr_array_unref);
  g_clear_pointer (&pipeline->not_started, g_ptr_array_unref);
  g_clear_object (&pipeline->receiver);
  g_clear_object (&pipeline->reader);
  g_clear_object (&pipeline->processor);
  g_clear_object (&pipeline->uploader);
  g_clear_object (&pipeline->run);
  g_clear_object (&pipeline->group);
  g_clear_pointer (&pipeline->loop, g_main_loop_unref);
}

/* --- the summary ------------------------------------------------------------------ */

static gboolean
write_report (const char                  *path,
              Outcome                      outcome,
              const GError                *error,
              const PipelineRunStats      *run,
              const PipelineReceiverStats *received,
              const Leftovers             *left,
              GError                     **write_error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  const struct { const char *key; guint64 value; } figures[] = {
    { "database-rows", run->rows_total }, { "rows-read", run->rows_read },
    { "rows-processed", run->rows_processed }, { "rows-uploaded", run->rows_uploaded },
    { "batches", run->batches }, { "retries-reader", run->retries[0] },
    { "retries-processor", run->retries[1] }, { "retries-uploader", run->retries[2] },
    { "failures", run->failures }, { "elapsed-ms", run->elapsed_us / 1000 },
    { "receiver-requests", received->requests }, { "receiver-batches", received->batches },
    { "receiver-rows", received->rows }, { "receiver-duplicate-batches", received->duplicate_batches },
    { "receiver-duplicate-rows", received->duplicate_rows },
    { "receiver-answered-503", received->unavailable }, { "receiver-dropped", received->dropped },
    { "leftover-fds", left->fds }, { "leftover-handles", left->handles },
    { "temporary-files", left->temporary_files },
  };

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "outcome");
  json_builder_add_string_value (builder, outcome_names[outcome]);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, error != NULL ? error->message : "");
  for (guint i = 0; i < G_N_ELEMENTS (figures); i++)
    {
      json_builder_set_member_name (builder, figures[i].key);
      json_builder_add_int_value (builder, (gint64) figures[i].value);
    }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  json_generator_set_pretty (generator, TRUE);
  return json_generator_to_file (generator, path, write_error);
}

static void
print_summary (Outcome                      outcome,
               const PipelineRunStats      *run,
               const PipelineReceiverStats *received,
               const Leftovers             *left,
               guint                        fds_before)
{
  printf ("\n%s: %" G_GUINT64_FORMAT " rows in the database; %" G_GUINT64_FORMAT " read, %"
          G_GUINT64_FORMAT " processed, %" G_GUINT64_FORMAT " uploaded in %" G_GUINT64_FORMAT " batches\n",
          outcome_names[outcome], run->rows_total, run->rows_read, run->rows_processed,
          run->rows_uploaded, run->batches);
  printf ("receiver: %" G_GUINT64_FORMAT " rows in %" G_GUINT64_FORMAT " batches from %" G_GUINT64_FORMAT
          " requests; %" G_GUINT64_FORMAT " batches came again and were accepted once; %"
          G_GUINT64_FORMAT " rows came twice\n",
          received->rows, received->batches, received->requests, received->duplicate_batches,
          received->duplicate_rows);
  printf ("retries: %" G_GUINT64_FORMAT " (reader %" G_GUINT64_FORMAT ", processor %" G_GUINT64_FORMAT
          ", uploader %" G_GUINT64_FORMAT "); failures: %" G_GUINT64_FORMAT "\n",
          run->retries[0] + run->retries[1] + run->retries[2], run->retries[0], run->retries[1],
          run->retries[2], run->failures);
  printf ("time: %.2f s\n", run->elapsed_us / 1e6);
  if (left->fds + left->handles + left->temporary_files == 0)
    printf ("cleanup check: nothing left open — %u file descriptors before and after, 0 database "
            "connections, 0 output files, 0 HTTP sessions, 0 receiver threads, 0 temporary files\n",
            fds_before);
  else
    printf ("cleanup check: FAILED, left behind:%s\n", left->details->str);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- read, process and upload rows with libexo");
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) fds_before = NULL;
  Pipeline pipeline = { NULL, };
  PipelineRunStats run_stats;
  PipelineReceiverStats received;
  Leftovers left = { 0, };
  Outcome outcome;
  int status, lock_fd;

  /* a line is out as soon as it is printed, also into a pipe or a file */
  setvbuf (stdout, NULL, _IOLBF, 0);
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (context, "Exit status: 0 every row uploaded, 1 failed, "
                                    "3 something was left open, 130 interrupted.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  if (opt_rows == 0 || opt_rows > 1000000 || opt_batch_size == 0 || opt_batch_size > 10000
      || opt_in_flight == 0 || opt_in_flight > 64 || opt_sessions == 0 || opt_sessions > 16
      || opt_retries > 100 || opt_receiver_delay_ms > 10000)
    {
      g_printerr ("out of range: --rows 1…1000000, --batch-size 1…10000, --in-flight 1…64, "
                  "--sessions 1…16, --retries 0…100, --receiver-delay-ms 0…10000\n");
      return 2;
    }
  if (argc > 1)
    {
      g_printerr ("unexpected argument '%s' (see --help)\n", argv[1]);
      return 2;
    }
  if (opt_workdir != NULL && *opt_workdir == '\0')
    {
      g_printerr ("--workdir: an empty folder name (use . for the current folder)\n");
      return 2;
    }
  if (opt_workdir == NULL)
    opt_workdir = g_build_filename (g_get_user_cache_dir (), "exo-resource-pipeline", NULL);
  lock_fd = lock_workdir (opt_workdir, &error);
  if (lock_fd < 0)
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      g_free (opt_workdir);
      g_free (opt_report);
      return 1;
    }

  if (opt_simulate_failures && geteuid () == 0)
    {
      if (drop_file_mode_override (&error))
        printf ("running as root: dropped CAP_DAC_OVERRIDE so that a read-only folder stops writes\n");
      else
        printf ("running as root and cannot drop CAP_DAC_OVERRIDE (%s): the read-only folder "
                "will not stop writes\n", error->message);
      g_clear_error (&error);
    }

  pipeline.loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, interrupt_cb, &pipeline);
  g_unix_signal_add (SIGTERM, interrupt_cb, &pipeline);
  /* what is open now is not ours to close */
  fds_before = list_fds ();

  build (&pipeline);
  printf ("database %s/pipeline.db, output files in %s/out%s\n", opt_workdir, opt_workdir,
          opt_simulate_failures ? "; simulating failures" : "");
  pipeline.started_at = g_get_monotonic_time ();
  exo_resource_initialize_async (EXO_RESOURCE (pipeline.group), NULL, group_ready_cb, &pipeline);
  g_main_loop_run (pipeline.loop);

  pipeline_run_get_stats (pipeline.run, &run_stats);
  /* what the database holds, also when the run never started */
  run_stats.rows_total = pipeline_reader_get_database_rows (pipeline.reader);
  pipeline_receiver_get_stats (pipeline.receiver, &received);
  outcome = pipeline.interrupted ? OUTCOME_INTERRUPTED
          : pipeline.error != NULL || !run_stats.finished ? OUTCOME_FAILED : OUTCOME_FINISHED;

  /* Every resource is closed: let what closes asynchronously finish, and
   * look before anything is finalized — what cleanup left open shows here,
   * not hidden by a finalizer. */
  {
    g_autoptr(GError) report_error = NULL;

    while (g_main_context_iteration (NULL, FALSE))
      ;
    check_cleanup (&pipeline, fds_before, &left);
    pipeline_clear (&pipeline);
    print_summary (outcome, &run_stats, &received, &left, g_hash_table_size (fds_before));
    if (opt_report != NULL
        && !write_report (opt_report, outcome, pipeline.error, &run_stats, &received, &left, &report_error))
      g_printerr ("cannot write %s: %s\n", opt_report, report_error->message);
  }

  if (outcome == OUTCOME_FAILED)
    g_printerr ("%s: %s\n", g_get_prgname (),
                pipeline.error != NULL ? pipeline.error->message : "the run did not finish");
  status = left.fds + left.handles + left.temporary_files > 0 ? 3
         : outcome == OUTCOME_INTERRUPTED ? 130
         : outcome == OUTCOME_FAILED ? 1 : 0;
  g_string_free (left.details, TRUE);
  if (lock_fd >= 0)
    close (lock_fd);
  g_clear_error (&pipeline.error);
  g_free (opt_workdir);
  g_free (opt_report);
  return status;
}
