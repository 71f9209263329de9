/* pipeline-reader.c: the `pipeline-reader` stage — batches of rows from a
 * SQLite database, which it creates and fills on first use.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Main context of the resource only; SQLite is called synchronously there
 * (a batch is one indexed range query).  Filling the database is one
 * transaction written in slices of FILL_SLICE rows, one slice per idle
 * callback, so that the context stays responsive (Ctrl-C, D-Bus) and a
 * fill can be stopped (the initialize's cancellable, or
 * pipeline_reader_stop_fill()): it is rolled back and the database keeps
 * the rows it had.  With simulate-failures, a second
 * connection takes an exclusive lock when the third batch is read and
 * holds it for lock-ms: the reads fail with "database is locked" and are
 * retried until it lets go.
 */
#include "pipeline.h"

#include <sqlite3.h>

struct _PipelineReader
{
  PipelineStage  parent_instance;

  char          *database;
  guint          rows;          /* how many rows to fill the database with */
  guint          lock_ms;

  sqlite3       *db;
  sqlite3_stmt  *select;
  guint64        database_rows;

  sqlite3_stmt  *insert;        /* while filling */
  GTask         *fill_task;     /* the initialize waiting for the fill */
  guint          fill_id;       /* the idle source of the next slice */
  guint          fill_next;     /* the next row id to insert */
  gboolean       fill_stop;

  sqlite3       *locker;        /* the other connection, while it holds its lock */
  guint          unlock_id;
  gboolean       lock_done;
};

G_DEFINE_FINAL_TYPE (PipelineReader, pipeline_reader, PIPELINE_TYPE_STAGE)

enum { PROP_0, PROP_DATABASE, PROP_ROWS, PROP_LOCK_MS, N_PROPS };
static GParamSpec *properties[N_PROPS];

#define MAX_ROWS   1000000   /* what the receiver keeps track of */
#define FILL_SLICE 10000     /* rows inserted in one go while filling */

static GError *
sqlite_error (sqlite3    *db,
              int         rc,
              const char *what)
{
  const char *message = db != NULL ? sqlite3_errmsg (db) : sqlite3_errstr (rc);

  switch (rc & 0xff)
    {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return g_error_new (G_IO_ERROR, G_IO_ERROR_BUSY, "%s: %s", what, message);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return g_error_new (G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, "%s: %s", what, message);
    default:
      return g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", what, message);
    }
}

static sqlite3 *
open_connection (const char  *path,
                 GError     **error)
{
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

  if (rc != SQLITE_OK)
    {
      g_autofree char *what = g_strdup_printf ("cannot open %s", path);

      g_propagate_error (error, sqlite_error (db, rc, what));
      sqlite3_close (db);   /* a handle is made even when opening fails */
      return NULL;
    }
  pipeline_ledger_open (PIPELINE_HANDLE_DATABASE);
  return db;
}

static void
close_connection (sqlite3 **db)
{
  if (*db == NULL)
    return;
  /* every statement is finalized first: this cannot be busy */
  if (sqlite3_close (*db) != SQLITE_OK)
    g_error ("sqlite3_close: %s", sqlite3_errmsg (*db));
  *db = NULL;
  pipeline_ledger_close (PIPELINE_HANDLE_DATABASE);
}

static gboolean
exec (sqlite3     *db,
      const char  *sql,
      GError     **error)
{
  int rc = sqlite3_exec (db, sql, NULL, NULL, NULL);

  if (rc != SQLITE_OK)
    {
      g_propagate_error (error, sqlite_error (db, rc, sql));
      return FALSE;
    }
  return TRUE;
}

static gboolean
count_rows (PipelineReader  *self,
            GError         **error)
{
  sqlite3_stmt *count = NULL;
  int rc = sqlite3_prepare_v2 (self->db, "SELECT COUNT(*) FROM rows", -1, &count, NULL);

  if (rc == SQLITE_OK)
    rc = sqlite3_step (count);
  if (rc != SQLITE_ROW)
    {
      g_propagate_error (error, sqlite_error (self->db, rc, "cannot count the rows"));
      sqlite3_finalize (count);
      return FALSE;
    }
  self->database_rows = sqlite3_column_int64 (count, 0);
  sqlite3_finalize (count);
  return TRUE;
}

static void
close_database (PipelineReader *self)
{
  g_clear_pointer (&self->insert, sqlite3_finalize);
  g_clear_pointer (&self->select, sqlite3_finalize);
  close_connection (&self->db);
}

static gboolean
prepare_select (PipelineReader  *self,
                GError         **error)
{
  int rc = sqlite3_prepare_v2 (self->db, "SELECT id, name, value FROM rows WHERE id > ?1"
                                         " ORDER BY id LIMIT ?2", -1, &self->select, NULL);

  if (rc != SQLITE_OK)
    {
      g_propagate_error (error, sqlite_error (self->db, rc, "cannot prepare the query"));
      return FALSE;
    }
  return TRUE;
}

/* Ends the initialize that waits for the fill: with @error (taken) the
 * transaction is rolled back and the database closed. */
static void
fill_end (PipelineReader *self,
          GError         *error)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->fill_task);
  guint64 before = self->database_rows;

  g_clear_handle_id (&self->fill_id, g_source_remove);
  g_clear_pointer (&self->insert, sqlite3_finalize);
  if (error == NULL
      && exec (self->db, "COMMIT", &error) && count_rows (self, &error)
      && prepare_select (self, &error))
    pipeline_stage_emit_event (PIPELINE_STAGE (self), "%s: filled %s with %" G_GUINT64_FORMAT
                               " rows (it had %" G_GUINT64_FORMAT ")",
                               exo_resource_get_id (EXO_RESOURCE (self)), self->database,
                               self->database_rows, before);
  if (error != NULL)
    {
      sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);   /* the rows from before stay */
      self->database_rows = before;
      close_database (self);
      pipeline_stage_emit_event (PIPELINE_STAGE (self), "%s: %s",
                                 exo_resource_get_id (EXO_RESOURCE (self)), error->message);
    }
  exo_task_return_result (task, error == NULL, error);
}

/* One slice of the fill; the next one in a later iteration of the context. */
static gboolean
fill_slice_cb (gpointer user_data)
{
  static const char * const words[] = {
    "amber", "basalt", "cedar", "delta", "ember", "fjord", "garnet", "harbor",
  };
  PipelineReader *self = user_data;
  guint last = MIN ((guint64) self->fill_next + FILL_SLICE - 1, self->rows);
  int rc = SQLITE_OK;

  self->fill_id = 0;
  if (self->fill_stop || g_cancellable_is_cancelled (g_task_get_cancellable (self->fill_task)))
    {
      fill_end (self, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                   "filling %s was stopped after %u of %u rows (rolled back: it "
                                   "keeps its %" G_GUINT64_FORMAT " rows)", self->database,
                                   self->fill_next - 1, self->rows, self->database_rows));
      return G_SOURCE_REMOVE;
    }
  for (guint i = self->fill_next; rc == SQLITE_OK && i <= last; i++)
    {
      g_autofree char *name = g_strdup_printf ("%s-%u", words[i % G_N_ELEMENTS (words)], i);

      sqlite3_bind_int64 (self->insert, 1, i);
      sqlite3_bind_text (self->insert, 2, name, -1, SQLITE_TRANSIENT);
      sqlite3_bind_double (self->insert, 3, (i * 37 % 1000) / 10.0);
      rc = sqlite3_step (self->insert);
      rc = rc == SQLITE_DONE ? sqlite3_reset (self->insert) : rc;
    }
  if (rc != SQLITE_OK)
    fill_end (self, sqlite_error (self->db, rc, "cannot fill the database"));
  else if ((self->fill_next = last + 1) > self->rows)
    fill_end (self, NULL);
  else
    self->fill_id = g_idle_add (fill_slice_cb, self);
  return G_SOURCE_REMOVE;
}

/* Starts filling the table with `rows` rows, in one transaction; @task
 * completes once it is done. */
static gboolean
fill_start (PipelineReader  *self,
            GTask           *task,
            GError         **error)
{
  int rc;

  if (!exec (self->db, "BEGIN IMMEDIATE; DELETE FROM rows", error))
    return FALSE;
  rc = sqlite3_prepare_v2 (self->db, "INSERT INTO rows (id, name, value) VALUES (?1, ?2, ?3)",
                           -1, &self->insert, NULL);
  if (rc != SQLITE_OK)
    {
      g_propagate_error (error, sqlite_error (self->db, rc, "cannot fill the database"));
      sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
      return FALSE;
    }
  self->fill_task = g_object_ref (task);
  self->fill_next = 1;
  self->fill_stop = FALSE;
  self->fill_id = g_idle_add (fill_slice_cb, self);
  return TRUE;
}

/* Opens the database; when it does not hold `rows` rows, starts filling
 * it and sets @filling: @task completes once the fill is done. */
static gboolean
open_database (PipelineReader  *self,
               GTask           *task,
               gboolean        *filling,
               GError         **error)
{
  g_autofree char *folder = g_path_get_dirname (self->database);

  *filling = FALSE;
  if (g_mkdir_with_parents (folder, 0755) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "cannot make %s: %s", folder, g_strerror (saved));
      return FALSE;
    }
  self->db = open_connection (self->database, error);
  if (self->db == NULL
      || !exec (self->db, "CREATE TABLE IF NOT EXISTS rows ("
                          " id INTEGER PRIMARY KEY, name TEXT NOT NULL, value REAL NOT NULL)", error)
      || !count_rows (self, error))
    return FALSE;
  if (self->database_rows == self->rows)
    return prepare_select (self, error);
  *filling = fill_start (self, task, error);
  return *filling;
}

/**
 * pipeline_reader_stop_fill:
 *
 * Stops a fill of the database in progress (Ctrl-C in the program): the
 * initialize fails with %G_IO_ERROR_CANCELLED and the database keeps the
 * rows it had.  Nothing happens when it is not filling.
 */
void
pipeline_reader_stop_fill (PipelineReader *self)
{
  self->fill_stop = self->fill_task != NULL;
}

/* --- simulate-failures: another connection holds an exclusive lock ------- */

static void
release_lock (PipelineReader *self)
{
  g_clear_handle_id (&self->unlock_id, g_source_remove);
  if (self->locker == NULL)
    return;
  sqlite3_exec (self->locker, "ROLLBACK", NULL, NULL, NULL);
  close_connection (&self->locker);
}

static gboolean
unlock_cb (gpointer user_data)
{
  PipelineReader *self = user_data;

  self->unlock_id = 0;
  release_lock (self);
  pipeline_stage_emit_event (PIPELINE_STAGE (self), "%s: the other connection released its lock",
                             exo_resource_get_id (EXO_RESOURCE (self)));
  return G_SOURCE_REMOVE;
}

static void
take_lock (PipelineReader *self)
{
  g_autoptr(GError) error = NULL;

  self->lock_done = TRUE;
  self->locker = open_connection (self->database, &error);
  if (self->locker == NULL || !exec (self->locker, "BEGIN EXCLUSIVE", &error))
    {
      pipeline_stage_emit_event (PIPELINE_STAGE (self), "%s: could not lock the database: %s",
                                 exo_resource_get_id (EXO_RESOURCE (self)), error->message);
      release_lock (self);
      return;
    }
  pipeline_stage_emit_event (PIPELINE_STAGE (self),
                             "%s: simulated failure: another connection locks the database for %u ms",
                             exo_resource_get_id (EXO_RESOURCE (self)), self->lock_ms);
  self->unlock_id = g_timeout_add (self->lock_ms, unlock_cb, self);
}

/* --- the stage ------------------------------------------------------------------- */

static void
pipeline_reader_run_attempt (PipelineStage *stage,
                             PipelineBatch *batch,
                             guint          attempt,
                             GCancellable  *cancellable,
                             GTask         *task)
{
  PipelineReader *self = PIPELINE_READER (stage);
  g_autoptr(GArray) rows = pipeline_rows_new (batch->limit);
  int rc;

  if (pipeline_stage_get_simulate_failures (stage) && batch->index == 2 && !self->lock_done)
    take_lock (self);

  sqlite3_reset (self->select);
  sqlite3_bind_int64 (self->select, 1, batch->after_id);
  sqlite3_bind_int64 (self->select, 2, batch->limit);
  while ((rc = sqlite3_step (self->select)) == SQLITE_ROW)
    {
      const unsigned char *name = sqlite3_column_text (self->select, 1);
      PipelineRow row = {
        .id = sqlite3_column_int64 (self->select, 0),
        .name = g_strdup (name != NULL ? (const char *) name : ""),
        .value = sqlite3_column_double (self->select, 2),
      };

      g_array_append_val (rows, row);
    }
  if (rc != SQLITE_DONE)
    {
      GError *error = sqlite_error (self->db, rc, "cannot read");

      sqlite3_reset (self->select);
      g_task_return_error (task, error);
      return;
    }
  sqlite3_reset (self->select);   /* ends the read transaction */
  pipeline_batch_set_rows (batch, g_steal_pointer (&rows));
  g_task_return_boolean (task, TRUE);
}

static void
pipeline_reader_do_initialize (ExoResource *resource,
                               GTask       *task)
{
  PipelineReader *self = PIPELINE_READER (resource);
  GError *error = NULL;
  gboolean filling;

  if (!open_database (self, task, &filling, &error))
    close_database (self);
  if (!filling)
    exo_task_return_result (task, error == NULL, error);
}

static void
pipeline_reader_do_cleanup (ExoResource *resource,
                            GTask       *task)
{
  PipelineReader *self = PIPELINE_READER (resource);

  release_lock (self);
  close_database (self);
  g_task_return_boolean (task, TRUE);
}

static gboolean
pipeline_reader_check_settings (ExoResource  *resource,
                                char        **setting,
                                GError      **error)
{
  PipelineReader *self = PIPELINE_READER (resource);

  if (self->database == NULL || *self->database == '\0')
    {
      *setting = g_strdup ("database");
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no database file given");
      return FALSE;
    }
  return TRUE;
}

static void
pipeline_reader_collect_metrics (ExoResource  *resource,
                                 GVariantDict *metrics)
{
  PipelineReader *self = PIPELINE_READER (resource);

  EXO_RESOURCE_CLASS (pipeline_reader_parent_class)->collect_metrics (resource, metrics);
  g_variant_dict_insert (metrics, "database-rows", "t", self->database_rows);
  g_variant_dict_insert (metrics, "connections", "u",
                         (self->db != NULL ? 1u : 0u) + (self->locker != NULL ? 1u : 0u));
}

guint64
pipeline_reader_get_database_rows (PipelineReader *self)
{
  return self->database_rows;
}

static void
pipeline_reader_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  PipelineReader *self = PIPELINE_READER (object);

  switch (prop_id)
    {
    case PROP_DATABASE:
      g_value_set_string (value, self->database);
      break;
    case PROP_ROWS:
      g_value_set_uint (value, self->rows);
      break;
    case PROP_LOCK_MS:
      g_value_set_uint (value, self->lock_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pipeline_reader_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  PipelineReader *self = PIPELINE_READER (object);

  switch (prop_id)
    {
    case PROP_DATABASE:
      g_free (self->database);
      self->database = g_value_dup_string (value);
      break;
    case PROP_ROWS:
      self->rows = g_value_get_uint (value);
      break;
    case PROP_LOCK_MS:
      self->lock_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  g_object_notify_by_pspec (object, pspec);
}

static void
pipeline_reader_finalize (GObject *object)
{
  PipelineReader *self = PIPELINE_READER (object);

  release_lock (self);
  close_database (self);
  g_free (self->database);
  G_OBJECT_CLASS (pipeline_reader_parent_class)->finalize (object);
}

static void
pipeline_reader_class_init (PipelineReaderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->get_property = pipeline_reader_get_property;
  object_class->set_property = pipeline_reader_set_property;
  object_class->finalize = pipeline_reader_finalize;
  resource_class->do_initialize = pipeline_reader_do_initialize;
  resource_class->do_cleanup = pipeline_reader_do_cleanup;
  resource_class->check_settings = pipeline_reader_check_settings;
  resource_class->collect_metrics = pipeline_reader_collect_metrics;
  PIPELINE_STAGE_CLASS (klass)->run_attempt = pipeline_reader_run_attempt;
  exo_resource_class_set_resource_type (resource_class, "pipeline-reader");

  properties[PROP_DATABASE] =
    g_param_spec_string ("database", NULL, "The SQLite database file", NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_ROWS] =
    g_param_spec_uint ("rows", NULL, "Rows the database is filled with when it has another number",
                       1, MAX_ROWS, 20000,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_LOCK_MS] =
    g_param_spec_uint ("lock-ms", NULL, "How long the simulated lock is held (ms)",
                       1, 60000, 300,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
pipeline_reader_init (PipelineReader *self)
{
  self->rows = 20000;
  self->lock_ms = 300;
}
