/* pipeline-processor.c: the `pipeline-processor` stage — turns a batch's
 * rows into JSON lines and writes them to one output file per batch, through
 * a temporary file that is renamed into place.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Main context of the resource only; files are written synchronously there.
 * An OutputFile (g_autoptr) closes its descriptor and removes its temporary
 * file on every path out of write_batch(), so that neither leaks whatever
 * fails.  With simulate-failures, the output folder is made read-only
 * (mode 0555) when the fifth batch is written, for readonly-ms: the writes
 * fail with "Permission denied" and are retried until the mode is back.
 * The mode to give back is kept in a marker file in the folder (see
 * make_readonly()), so a run killed meanwhile leaves the next one a way
 * back to it.  The output files are this stage's: rows-*.jsonl; a new run
 * removes those of the one before (pipeline_processor_remove_output_files()).
 * (A process that may ignore file modes — root with CAP_DAC_OVERRIDE — is
 * not stopped by that; the program drops the capability, see README.md.)
 */
#include "pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

struct _PipelineProcessor
{
  PipelineStage  parent_instance;

  char          *output_dir;
  guint          readonly_ms;

  guint          open_files;     /* OutputFiles not yet freed */
  guint64        files_written;
  guint          restore_id;     /* the read-only folder's timer */
  mode_t         saved_mode;
  gboolean       readonly_done;
};

G_DEFINE_FINAL_TYPE (PipelineProcessor, pipeline_processor, PIPELINE_TYPE_STAGE)

enum { PROP_0, PROP_OUTPUT_DIR, PROP_READONLY_MS, N_PROPS };
static GParamSpec *properties[N_PROPS];

#define TEMPORARY_SUFFIX ".tmp"
#define OUTPUT_PREFIX    "rows-"
#define OUTPUT_SUFFIX    ".jsonl"
#define READONLY_MARKER  ".simulated-read-only"   /* the mode to restore, in octal */

/* --- an output file that cannot leak ----------------------------------------- */

typedef struct
{
  PipelineProcessor *owner;
  int                fd;
  char              *temporary;
  gboolean           committed;
} OutputFile;

static void
output_file_free (OutputFile *file)
{
  if (file->fd >= 0)
    close (file->fd);
  if (!file->committed && file->temporary != NULL)
    g_unlink (file->temporary);
  g_free (file->temporary);
  file->owner->open_files--;
  pipeline_ledger_close (PIPELINE_HANDLE_FILE);
  g_free (file);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutputFile, output_file_free)

static gboolean
set_errno_error (GError     **error,
                 int          saved_errno,
                 const char  *what,
                 const char  *path)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
               "cannot %s %s: %s", what, path, g_strerror (saved_errno));
  return FALSE;
}

static OutputFile *
output_file_open (PipelineProcessor  *self,
                  const char         *temporary,
                  GError            **error)
{
  OutputFile *file = g_new0 (OutputFile, 1);

  file->owner = self;
  self->open_files++;
  pipeline_ledger_open (PIPELINE_HANDLE_FILE);
  file->fd = open (temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (file->fd < 0)
    {
      set_errno_error (error, errno, "create", temporary);
      output_file_free (file);
      return NULL;
    }
  file->temporary = g_strdup (temporary);
  return file;
}

static gboolean
output_file_write (OutputFile  *file,
                   GBytes      *bytes,
                   GError     **error)
{
  gsize size;
  const char *data = g_bytes_get_data (bytes, &size);

  while (size > 0)
    {
      gssize n = write (file->fd, data, size);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return set_errno_error (error, errno, "write", file->temporary);
      data += n;
      size -= n;
    }
  return TRUE;
}

/* Closes the file and renames it to @path. */
static gboolean
output_file_commit (OutputFile  *file,
                    const char  *path,
                    GError     **error)
{
  int fd = file->fd;

  file->fd = -1;   /* closed whatever close() says */
  if (close (fd) != 0)
    return set_errno_error (error, errno, "close", file->temporary);
  if (g_rename (file->temporary, path) != 0)
    return set_errno_error (error, errno, "rename into", path);
  file->committed = TRUE;
  return TRUE;
}

/* --- processing ---------------------------------------------------------------- */

static void
append_json_string (GString    *out,
                    const char *text)
{
  g_string_append_c (out, '"');
  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '"' || *p == '\\')
        g_string_append_printf (out, "\\%c", *p);
      else if ((guchar) *p < 0x20)
        g_string_append_printf (out, "\\u%04x", (guchar) *p);
      else
        g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
}

/* One JSON object a line: the row, its name in capitals, and a score. */
static GBytes *
process_rows (GArray *rows)
{
  GString *out = g_string_sized_new (rows->len * 64);

  for (guint i = 0; i < rows->len; i++)
    {
      const PipelineRow *row = &g_array_index (rows, PipelineRow, i);
      g_autofree char *upper = g_ascii_strup (row->name, -1);
      char value[G_ASCII_DTOSTR_BUF_SIZE], score[G_ASCII_DTOSTR_BUF_SIZE];

      g_string_append_printf (out, "{\"id\":%" G_GINT64_FORMAT ",\"name\":", row->id);
      append_json_string (out, upper);
      g_string_append_printf (out, ",\"value\":%s,\"score\":%s}\n",
                              g_ascii_dtostr (value, sizeof value, row->value),
                              g_ascii_dtostr (score, sizeof score, row->value * 1.5 + 1.0));
    }
  return g_string_free_to_bytes (out);
}

static gboolean
write_batch (PipelineProcessor  *self,
             PipelineBatch      *batch,
             GError            **error)
{
  g_autofree char *name = g_strconcat (batch->id, OUTPUT_SUFFIX, NULL);
  g_autofree char *hidden = g_strconcat (".", name, TEMPORARY_SUFFIX, NULL);
  g_autofree char *path = g_build_filename (self->output_dir, name, NULL);
  g_autofree char *temporary = g_build_filename (self->output_dir, hidden, NULL);
  g_autoptr(GBytes) payload = process_rows (batch->rows);
  g_autoptr(OutputFile) file = output_file_open (self, temporary, error);

  if (file == NULL
      || !output_file_write (file, payload, error)
      || !output_file_commit (file, path, error))
    return FALSE;
  g_clear_pointer (&batch->payload, g_bytes_unref);
  batch->payload = g_steal_pointer (&payload);
  g_free (batch->path);
  batch->path = g_steal_pointer (&path);
  self->files_written++;
  return TRUE;
}

/* --- simulate-failures: the output folder is read-only for a while ------- */

/* The mode to give the folder back is never read from the folder while it
 * may be read-only because of us: before the chmod it is written to a marker
 * file in the folder, and a marker found later (a run killed while the
 * folder was read-only) says the mode to restore. */
static char *
marker_path (PipelineProcessor *self)
{
  return g_build_filename (self->output_dir, READONLY_MARKER, NULL);
}

/* The mode a marker holds, when there is one (a few bytes at most). */
static gboolean
read_marker (PipelineProcessor *self,
             mode_t            *mode)
{
  g_autofree char *path = marker_path (self);
  char text[16] = "";
  guint64 value;
  gssize n;
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

  if (fd < 0)
    return FALSE;
  n = read (fd, text, sizeof text - 1);
  close (fd);
  text[MAX (n, 0)] = '\0';
  g_strstrip (text);
  if (!g_ascii_string_to_unsigned (text, 8, 0, 07777, &value, NULL))
    value = 0755;
  *mode = (mode_t) value | S_IRWXU;   /* whatever it says, writable by us again */
  return TRUE;
}

static gboolean
write_marker (PipelineProcessor  *self,
              mode_t              mode,
              GError            **error)
{
  g_autofree char *path = marker_path (self);
  char text[16];

  g_snprintf (text, sizeof text, "%04o\n", (guint) mode);
  return g_file_set_contents (path, text, -1, error);
}

/* Gives the folder its mode back, then drops the marker. */
static gboolean
give_mode_back (PipelineProcessor *self,
                mode_t             mode)
{
  g_autofree char *path = marker_path (self);

  if (g_chmod (self->output_dir, mode) != 0)
    return FALSE;
  g_unlink (path);
  return TRUE;
}

static void
restore_mode (PipelineProcessor *self)
{
  if (self->restore_id == 0)
    return;
  g_clear_handle_id (&self->restore_id, g_source_remove);
  give_mode_back (self, self->saved_mode);
}

static gboolean
restore_cb (gpointer user_data)
{
  PipelineProcessor *self = user_data;

  self->restore_id = 0;
  give_mode_back (self, self->saved_mode);
  pipeline_stage_emit_event (PIPELINE_STAGE (self), "%s: %s is writable again",
                             exo_resource_get_id (EXO_RESOURCE (self)), self->output_dir);
  return G_SOURCE_REMOVE;
}

static void
make_readonly (PipelineProcessor *self)
{
  g_autoptr(GError) error = NULL;
  GStatBuf st;
  mode_t mode = 0755;

  self->readonly_done = TRUE;
  /* a marker already there: the folder may be read-only now, it knows better */
  if (!read_marker (self, &mode))
    {
      if (g_stat (self->output_dir, &st) != 0)
        {
          int saved = errno;

          g_set_error (&error, G_IO_ERROR, g_io_error_from_errno (saved), "%s", g_strerror (saved));
        }
      else
        {
          mode = st.st_mode & 07777;
          write_marker (self, mode, &error);
        }
    }
  if (error == NULL && g_chmod (self->output_dir, 0555) != 0)
    {
      int saved = errno;

      g_set_error (&error, G_IO_ERROR, g_io_error_from_errno (saved), "%s", g_strerror (saved));
      give_mode_back (self, mode);   /* drops the marker */
    }
  if (error != NULL)
    {
      pipeline_stage_emit_event (PIPELINE_STAGE (self), "%s: cannot make %s read-only: %s",
                                 exo_resource_get_id (EXO_RESOURCE (self)), self->output_dir,
                                 error->message);
      return;
    }
  self->saved_mode = mode;
  pipeline_stage_emit_event (PIPELINE_STAGE (self),
                             "%s: simulated failure: %s is read-only (mode 0555) for %u ms",
                             exo_resource_get_id (EXO_RESOURCE (self)), self->output_dir,
                             self->readonly_ms);
  self->restore_id = g_timeout_add (self->readonly_ms, restore_cb, self);
}

/* A marker at the start: a run that made the folder read-only did not end
 * (killed): give the folder its mode back. */
static void
recover_mode (PipelineProcessor *self)
{
  mode_t mode;

  if (!read_marker (self, &mode))
    return;
  if (give_mode_back (self, mode))
    pipeline_stage_emit_event (PIPELINE_STAGE (self), "%s: %s was left read-only by a run that "
                               "did not end: mode %04o restored",
                               exo_resource_get_id (EXO_RESOURCE (self)), self->output_dir,
                               (guint) mode);
  else
    pipeline_stage_emit_event (PIPELINE_STAGE (self), "%s: cannot give %s its mode back: %s",
                               exo_resource_get_id (EXO_RESOURCE (self)), self->output_dir,
                               g_strerror (errno));
}

/* --- the stage ------------------------------------------------------------------ */

static void
pipeline_processor_run_attempt (PipelineStage *stage,
                                PipelineBatch *batch,
                                guint          attempt,
                                GCancellable  *cancellable,
                                GTask         *task)
{
  PipelineProcessor *self = PIPELINE_PROCESSOR (stage);
  GError *error = NULL;
  gboolean simulated = FALSE;

  if (pipeline_stage_get_simulate_failures (stage) && batch->index == 4 && !self->readonly_done)
    {
      make_readonly (self);
      simulated = self->restore_id != 0;
    }
  if (write_batch (self, batch, &error) && simulated)
    pipeline_stage_emit_event (stage, "%s: %s was written although its folder is read-only: this "
                               "process ignores file modes (root with CAP_DAC_OVERRIDE)",
                               exo_resource_get_id (EXO_RESOURCE (self)), batch->path);
  exo_task_return_result (task, error == NULL, error);
}

/* Permissions can be mended while we wait (an operator, or here the
 * simulation's timer): worth the retries the policy allows. */
static gboolean
pipeline_processor_is_retryable (ExoManagedResource *resource,
                                 const GError       *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
    return TRUE;
  return EXO_MANAGED_RESOURCE_CLASS (pipeline_processor_parent_class)->is_retryable (resource, error);
}

static gboolean
is_temporary (const char *name)
{
  return name[0] == '.' && g_str_has_suffix (name, TEMPORARY_SUFFIX);
}

/* Removes (or counts) the temporary files in the output folder. */
static guint
sweep_temporary_files (PipelineProcessor *self,
                       gboolean           remove)
{
  g_autoptr(GDir) dir = g_dir_open (self->output_dir, 0, NULL);
  const char *name;
  guint n = 0;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (self->output_dir, name, NULL);

      if (!is_temporary (name))
        continue;
      if (!remove || g_unlink (path) == 0)
        n++;
    }
  return n;
}

guint
pipeline_processor_count_temporary_files (PipelineProcessor *self)
{
  return sweep_temporary_files (self, FALSE);
}

/**
 * pipeline_processor_remove_output_files:
 *
 * Removes the output files (rows-*.jsonl) of an earlier run, so that the
 * folder holds those of the run that starts; other files are left alone.
 *
 * Returns: how many were removed
 */
guint
pipeline_processor_remove_output_files (PipelineProcessor *self)
{
  g_autoptr(GDir) dir = g_dir_open (self->output_dir, 0, NULL);
  const char *name;
  guint n = 0;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (self->output_dir, name, NULL);

      if (g_str_has_prefix (name, OUTPUT_PREFIX) && g_str_has_suffix (name, OUTPUT_SUFFIX)
          && g_unlink (path) == 0)
        n++;
    }
  if (n > 0)
    pipeline_stage_emit_event (PIPELINE_STAGE (self), "%s: removed the %u output files of an "
                               "earlier run", exo_resource_get_id (EXO_RESOURCE (self)), n);
  return n;
}

static void
pipeline_processor_do_initialize (ExoResource *resource,
                                  GTask       *task)
{
  PipelineProcessor *self = PIPELINE_PROCESSOR (resource);
  guint stale;

  if (g_mkdir_with_parents (self->output_dir, 0755) != 0)
    {
      int saved = errno;

      g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (saved),
                               "cannot make %s: %s", self->output_dir, g_strerror (saved));
      return;
    }
  recover_mode (self);
  stale = sweep_temporary_files (self, TRUE);
  if (stale > 0)
    pipeline_stage_emit_event (PIPELINE_STAGE (self), "%s: removed %u temporary files of an "
                               "interrupted earlier run", exo_resource_get_id (resource), stale);
  g_task_return_boolean (task, TRUE);
}

static void
pipeline_processor_do_cleanup (ExoResource *resource,
                               GTask       *task)
{
  restore_mode (PIPELINE_PROCESSOR (resource));
  g_task_return_boolean (task, TRUE);
}

static gboolean
pipeline_processor_check_settings (ExoResource  *resource,
                                   char        **setting,
                                   GError      **error)
{
  PipelineProcessor *self = PIPELINE_PROCESSOR (resource);

  if (self->output_dir == NULL || *self->output_dir == '\0')
    {
      *setting = g_strdup ("output-dir");
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no output folder given");
      return FALSE;
    }
  return TRUE;
}

static void
pipeline_processor_collect_metrics (ExoResource  *resource,
                                    GVariantDict *metrics)
{
  PipelineProcessor *self = PIPELINE_PROCESSOR (resource);

  EXO_RESOURCE_CLASS (pipeline_processor_parent_class)->collect_metrics (resource, metrics);
  g_variant_dict_insert (metrics, "files-written", "t", self->files_written);
  g_variant_dict_insert (metrics, "open-files", "u", self->open_files);
}

static void
pipeline_processor_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  PipelineProcessor *self = PIPELINE_PROCESSOR (object);

  switch (prop_id)
    {
    case PROP_OUTPUT_DIR:
      g_value_set_string (value, self->output_dir);
      break;
    case PROP_READONLY_MS:
      g_value_set_uint (value, self->readonly_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pipeline_processor_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  PipelineProcessor *self = PIPELINE_PROCESSOR (object);

  switch (prop_id)
    {
    case PROP_OUTPUT_DIR:
      g_free (self->output_dir);
      self->output_dir = g_value_dup_string (value);
      break;
    case PROP_READONLY_MS:
      self->readonly_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  g_object_notify_by_pspec (object, pspec);
}

static void
pipeline_processor_finalize (GObject *object)
{
  PipelineProcessor *self = PIPELINE_PROCESSOR (object);

  restore_mode (self);
  g_free (self->output_dir);
  G_OBJECT_CLASS (pipeline_processor_parent_class)->finalize (object);
}

static void
pipeline_processor_class_init (PipelineProcessorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->get_property = pipeline_processor_get_property;
  object_class->set_property = pipeline_processor_set_property;
  object_class->finalize = pipeline_processor_finalize;
  resource_class->do_initialize = pipeline_processor_do_initialize;
  resource_class->do_cleanup = pipeline_processor_do_cleanup;
  resource_class->check_settings = pipeline_processor_check_settings;
  resource_class->collect_metrics = pipeline_processor_collect_metrics;
  EXO_MANAGED_RESOURCE_CLASS (klass)->is_retryable = pipeline_processor_is_retryable;
  PIPELINE_STAGE_CLASS (klass)->run_attempt = pipeline_processor_run_attempt;
  exo_resource_class_set_resource_type (resource_class, "pipeline-processor");

  properties[PROP_OUTPUT_DIR] =
    g_param_spec_string ("output-dir", NULL, "The folder of the output files", NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_READONLY_MS] =
    g_param_spec_uint ("readonly-ms", NULL, "How long the simulated read-only folder lasts (ms)",
                       1, 60000, 300,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
pipeline_processor_init (PipelineProcessor *self)
{
  self->readonly_ms = 300;
}
