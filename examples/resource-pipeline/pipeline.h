/* pipeline.h: the resource types of the resource-pipeline example (see
 * README.md): a receiver (an HTTP server in a thread of its own), the
 * three stages reader -> processor -> uploader, and the run that drives
 * batches through them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything here belongs to the main context the resources were made in,
 * except what says otherwise: the handle ledger is thread-safe, and the
 * receiver's counters may be read from any thread.
 */
#pragma once

#include <exo/exo.h>

G_BEGIN_DECLS

/* --- errors ------------------------------------------------------------- */

#define PIPELINE_ERROR (pipeline_error_quark ())

/**
 * PipelineError:
 * @PIPELINE_ERROR_UNAVAILABLE: the receiver answered 503 (retryable)
 * @PIPELINE_ERROR_BAD_DATA: the database holds something the pipeline cannot use
 */
typedef enum {
  PIPELINE_ERROR_UNAVAILABLE,
  PIPELINE_ERROR_BAD_DATA,
} PipelineError;

GQuark pipeline_error_quark (void);

/* --- the handle ledger: what the cleanup check counts ------------------- */

typedef enum {
  PIPELINE_HANDLE_DATABASE,       /* sqlite3 connections */
  PIPELINE_HANDLE_FILE,           /* output files open for writing */
  PIPELINE_HANDLE_HTTP_SESSION,   /* SoupSession objects alive */
  PIPELINE_HANDLE_SERVER_THREAD,  /* receiver threads running */
  PIPELINE_N_HANDLE_KINDS,
} PipelineHandleKind;

void        pipeline_ledger_open          (PipelineHandleKind kind);
void        pipeline_ledger_close         (PipelineHandleKind kind);
guint       pipeline_ledger_count         (PipelineHandleKind kind);
const char *pipeline_handle_kind_to_string (PipelineHandleKind kind);

/* --- batches ------------------------------------------------------------ */

typedef struct
{
  gint64  id;
  char   *name;
  double  value;
} PipelineRow;

/* One batch on its way through the stages; reference counted (the run and
 * each operation in flight hold one). */
typedef struct
{
  guint      index;      /* 0, 1, … in reading order */
  gint64     after_id;   /* the reader reads rows with id > after_id */
  guint      limit;      /* at most this many */
  char      *id;         /* "rows-000101-000200", once read: the upload's idempotency key */
  GArray    *rows;       /* PipelineRow, filled by the reader */
  GBytes    *payload;    /* JSON lines, made by the processor */
  char      *path;       /* the processor's output file */
} PipelineBatch;

PipelineBatch *pipeline_batch_new   (guint          index,
                                     gint64         after_id,
                                     guint          limit);
PipelineBatch *pipeline_batch_ref   (PipelineBatch *batch);
void           pipeline_batch_unref (PipelineBatch *batch);
GArray        *pipeline_rows_new    (guint          reserved);
void           pipeline_batch_set_rows (PipelineBatch *batch,
                                        GArray        *rows);
gint64         pipeline_batch_last_id (PipelineBatch *batch);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PipelineBatch, pipeline_batch_unref)

/* --- PipelineStage: what the reader, processor and uploader share --------- */

#define PIPELINE_TYPE_STAGE (pipeline_stage_get_type ())
G_DECLARE_DERIVABLE_TYPE (PipelineStage, pipeline_stage, PIPELINE, STAGE, ExoManagedResource)

/**
 * PipelineStageClass:
 * @run_attempt: one attempt at @batch; complete @task (transfer none, as
 *   an #ExoOperationFunc's) with %TRUE or an error
 */
struct _PipelineStageClass
{
  ExoManagedResourceClass parent_class;

  void (*run_attempt) (PipelineStage *self,
                       PipelineBatch *batch,
                       guint          attempt,
                       GCancellable  *cancellable,
                       GTask         *task);
};

void     pipeline_stage_run_async  (PipelineStage       *self,
                                    PipelineBatch       *batch,
                                    guint                attempt_timeout_ms,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data);
gboolean pipeline_stage_run_finish (PipelineStage       *self,
                                    GAsyncResult        *result,
                                    guint               *attempts,
                                    GError             **error);
void     pipeline_stage_emit_event (PipelineStage       *self,
                                    const char          *format,
                                    ...) G_GNUC_PRINTF (2, 3);
gboolean pipeline_stage_get_simulate_failures (PipelineStage *self);
guint64  pipeline_stage_get_failed_attempts   (PipelineStage *self);

/* --- the stages ----------------------------------------------------------- */

#define PIPELINE_TYPE_READER (pipeline_reader_get_type ())
G_DECLARE_FINAL_TYPE (PipelineReader, pipeline_reader, PIPELINE, READER, PipelineStage)

guint64 pipeline_reader_get_database_rows (PipelineReader *self);
void    pipeline_reader_stop_fill         (PipelineReader *self);

#define PIPELINE_TYPE_PROCESSOR (pipeline_processor_get_type ())
G_DECLARE_FINAL_TYPE (PipelineProcessor, pipeline_processor, PIPELINE, PROCESSOR, PipelineStage)

guint pipeline_processor_count_temporary_files (PipelineProcessor *self);
guint pipeline_processor_remove_output_files    (PipelineProcessor *self);

#define PIPELINE_TYPE_UPLOADER (pipeline_uploader_get_type ())
G_DECLARE_FINAL_TYPE (PipelineUploader, pipeline_uploader, PIPELINE, UPLOADER, PipelineStage)

gboolean pipeline_uploader_get_pool_stats (PipelineUploader *self,
                                           ExoPoolStats     *stats);

#define PIPELINE_TYPE_SESSION (pipeline_session_get_type ())
G_DECLARE_FINAL_TYPE (PipelineSession, pipeline_session, PIPELINE, SESSION, ExoManagedResource)

/* --- the receiver ----------------------------------------------------------- */

#define PIPELINE_TYPE_RECEIVER (pipeline_receiver_get_type ())
G_DECLARE_FINAL_TYPE (PipelineReceiver, pipeline_receiver, PIPELINE, RECEIVER, ExoResource)

/* A consistent snapshot of what the receiver counted (any thread). */
typedef struct
{
  guint64 requests;
  guint64 batches;             /* distinct batches stored */
  guint64 rows;                /* distinct rows stored */
  guint64 duplicate_batches;   /* batches sent again, accepted once */
  guint64 duplicate_rows;      /* rows that came in two different batches: must stay 0 */
  guint64 unavailable;         /* answered 503 */
  guint64 dropped;             /* connections closed without an answer */
  guint64 refused;             /* answered 4xx */
} PipelineReceiverStats;

const char *pipeline_receiver_get_url   (PipelineReceiver      *self);
void        pipeline_receiver_get_stats (PipelineReceiver      *self,
                                         PipelineReceiverStats *stats);

/* --- the run ---------------------------------------------------------------- */

#define PIPELINE_TYPE_RUN (pipeline_run_get_type ())
G_DECLARE_FINAL_TYPE (PipelineRun, pipeline_run, PIPELINE, RUN, ExoResource)

typedef struct
{
  guint64 rows_total;      /* rows in the database */
  guint64 rows_read;
  guint64 rows_processed;
  guint64 rows_uploaded;
  guint64 batches;         /* uploaded */
  guint64 retries[3];      /* reader, processor, uploader */
  guint64 failures;        /* operations that failed for good */
  gint64  elapsed_us;
  gboolean finished;
} PipelineRunStats;

void          pipeline_run_get_stats (PipelineRun      *self,
                                      PipelineRunStats *stats);
const GError *pipeline_run_get_error (PipelineRun      *self);

G_END_DECLS
