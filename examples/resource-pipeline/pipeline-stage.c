/* pipeline-stage.c: what the three stages share — PipelineStage (a managed
 * resource that runs one batch at a time through exo_managed_resource_run_async()
 * and counts the attempts), batches, the error domain and the handle ledger.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A stage and its operations belong to the main context it was made in.
 * The ledger's counters are atomic: a handle may be closed in any thread.
 */
#include "pipeline.h"

#include <stdarg.h>

G_DEFINE_QUARK (pipeline-error-quark, pipeline_error)

/* --- the handle ledger ------------------------------------------------------ */

static gint ledger[PIPELINE_N_HANDLE_KINDS];

void
pipeline_ledger_open (PipelineHandleKind kind)
{
  g_atomic_int_inc (&ledger[kind]);
}

void
pipeline_ledger_close (PipelineHandleKind kind)
{
  g_assert (g_atomic_int_get (&ledger[kind]) > 0);
  g_atomic_int_add (&ledger[kind], -1);
}

guint
pipeline_ledger_count (PipelineHandleKind kind)
{
  return g_atomic_int_get (&ledger[kind]);
}

const char *
pipeline_handle_kind_to_string (PipelineHandleKind kind)
{
  static const char * const names[] = {
    "database connections", "output files", "HTTP sessions", "receiver threads",
  };

  G_STATIC_ASSERT (G_N_ELEMENTS (names) == PIPELINE_N_HANDLE_KINDS);
  return names[kind];
}

/* --- batches ------------------------------------------------------------------ */

static void
row_clear (gpointer data)
{
  g_free (((PipelineRow *) data)->name);
}

PipelineBatch *
pipeline_batch_new (guint  index,
                    gint64 after_id,
                    guint  limit)
{
  PipelineBatch *batch = g_atomic_rc_box_new0 (PipelineBatch);

  batch->index = index;
  batch->after_id = after_id;
  batch->limit = limit;
  return batch;
}

PipelineBatch *
pipeline_batch_ref (PipelineBatch *batch)
{
  return g_atomic_rc_box_acquire (batch);
}

static void
batch_clear (gpointer data)
{
  PipelineBatch *batch = data;

  g_free (batch->id);
  g_clear_pointer (&batch->rows, g_array_unref);
  g_clear_pointer (&batch->payload, g_bytes_unref);
  g_free (batch->path);
}

void
pipeline_batch_unref (PipelineBatch *batch)
{
  g_atomic_rc_box_release_full (batch, batch_clear);
}

/* An empty array of PipelineRow that frees its rows' fields. */
GArray *
pipeline_rows_new (guint reserved)
{
  GArray *rows = g_array_sized_new (FALSE, FALSE, sizeof (PipelineRow), reserved);

  g_array_set_clear_func (rows, row_clear);
  return rows;
}

/* Takes @rows (from pipeline_rows_new (), sorted by id) and names the
 * batch after them. */
void
pipeline_batch_set_rows (PipelineBatch *batch,
                         GArray        *rows)
{
  g_clear_pointer (&batch->rows, g_array_unref);
  g_clear_pointer (&batch->id, g_free);
  batch->rows = rows;
  if (rows->len > 0)
    batch->id = g_strdup_printf ("rows-%06" G_GINT64_FORMAT "-%06" G_GINT64_FORMAT,
                                 g_array_index (rows, PipelineRow, 0).id,
                                 g_array_index (rows, PipelineRow, rows->len - 1).id);
}

gint64
pipeline_batch_last_id (PipelineBatch *batch)
{
  if (batch->rows == NULL || batch->rows->len == 0)
    return batch->after_id;
  return g_array_index (batch->rows, PipelineRow, batch->rows->len - 1).id;
}

/* --- PipelineStage ------------------------------------------------------------- */

typedef struct
{
  guint64  failed_attempts;   /* attempts that ended in an error */
  guint64  batches;           /* operations that succeeded */
  guint64  rows;
  gboolean simulate_failures;
} PipelineStagePrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (PipelineStage, pipeline_stage, EXO_TYPE_MANAGED_RESOURCE)

enum { PROP_0, PROP_SIMULATE_FAILURES, N_PROPS };
static GParamSpec *properties[N_PROPS];

enum { SIGNAL_EVENT, N_SIGNALS };
static guint signals[N_SIGNALS];

/* One operation: a batch through one stage, over as many attempts as the
 * stage's retry policy allows. */
typedef struct
{
  PipelineBatch *batch;
  guint          attempts;
} StageOp;

static void
stage_op_free (gpointer data)
{
  StageOp *op = data;

  pipeline_batch_unref (op->batch);
  g_free (op);
}

/* One attempt: the stage completes `inner`, whose callback looks at the
 * outcome (to count and tell failures) and completes the runner's task. */
typedef struct
{
  GTask   *runner_task;
  StageOp *op;
} Attempt;

static void
attempt_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Attempt *attempt = user_data;
  PipelineStage *self = PIPELINE_STAGE (source);
  PipelineStagePrivate *priv = pipeline_stage_get_instance_private (self);
  GError *error = NULL;

  /* a failed attempt makes the stage `degraded` (ready again on success),
   * so that its state tells what goes on, here and on D-Bus */
  if (g_task_propagate_boolean (G_TASK (result), &error))
    {
      exo_resource_report_health (EXO_RESOURCE (self), TRUE, NULL);
      g_task_return_boolean (attempt->runner_task, TRUE);
    }
  else
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          priv->failed_attempts++;
          exo_resource_report_health (EXO_RESOURCE (self), FALSE, error);
          pipeline_stage_emit_event (self, "batch %u: %s: attempt %u failed: %s",
                                     attempt->op->batch->index + 1,
                                     exo_resource_get_id (EXO_RESOURCE (self)),
                                     attempt->op->attempts, error->message);
        }
      g_task_return_error (attempt->runner_task, error);
    }
  g_object_unref (attempt->runner_task);
  g_free (attempt);
}

static void
stage_attempt (ExoResource  *resource,
               GCancellable *cancellable,
               GTask        *task,
               gpointer      user_data)
{
  PipelineStage *self = PIPELINE_STAGE (resource);
  StageOp *op = user_data;
  Attempt *attempt = g_new0 (Attempt, 1);
  GTask *inner;

  op->attempts++;
  attempt->runner_task = g_object_ref (task);
  attempt->op = op;
  inner = g_task_new (self, cancellable, attempt_done, attempt);
  PIPELINE_STAGE_GET_CLASS (self)->run_attempt (self, op->batch, op->attempts, cancellable, inner);
  g_object_unref (inner);   /* the stage took its own reference if it completes later */
}

static void
stage_run_done (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  PipelineStage *self = PIPELINE_STAGE (source);
  PipelineStagePrivate *priv = pipeline_stage_get_instance_private (self);
  StageOp *op = g_task_get_task_data (task);
  GError *error = NULL;

  exo_managed_resource_run_finish (EXO_MANAGED_RESOURCE (source), result, &error);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  priv->batches++;
  priv->rows += op->batch->rows != NULL ? op->batch->rows->len : 0;
  if (op->attempts > 1)
    pipeline_stage_emit_event (self, "batch %u: %s: succeeded on attempt %u",
                               op->batch->index + 1, exo_resource_get_id (EXO_RESOURCE (self)),
                               op->attempts);
  g_task_return_boolean (task, TRUE);
}

/**
 * pipeline_stage_run_async:
 * @attempt_timeout_ms: time limit of each attempt
 *
 * Runs @batch through the stage: attempts are retried per the stage's
 * #ExoManagedResource:retry-policy while their error is retryable.
 */
void
pipeline_stage_run_async (PipelineStage       *self,
                          PipelineBatch       *batch,
                          guint                attempt_timeout_ms,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  StageOp *op = g_new0 (StageOp, 1);

  op->batch = pipeline_batch_ref (batch);
  /* the task owns the op: its attempt count outlives the runner's data */
  g_task_set_task_data (task, op, stage_op_free);
  exo_managed_resource_run_async (EXO_MANAGED_RESOURCE (self), stage_attempt, op, NULL,
                                  attempt_timeout_ms, cancellable, stage_run_done, task);
}

/**
 * pipeline_stage_run_finish:
 * @attempts: (out): how many attempts the operation took
 */
gboolean
pipeline_stage_run_finish (PipelineStage  *self,
                           GAsyncResult   *result,
                           guint          *attempts,
                           GError        **error)
{
  StageOp *op = g_task_get_task_data (G_TASK (result));

  *attempts = op->attempts;
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Tells what happened through the `event` signal; without a handler (in
 * exo-node) it goes to the log. */
void
pipeline_stage_emit_event (PipelineStage *self,
                           const char    *format,
                           ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  if (g_signal_has_handler_pending (self, signals[SIGNAL_EVENT], 0, FALSE))
    g_signal_emit (self, signals[SIGNAL_EVENT], 0, message);
  else
    g_message ("%s", message);
}

gboolean
pipeline_stage_get_simulate_failures (PipelineStage *self)
{
  PipelineStagePrivate *priv = pipeline_stage_get_instance_private (self);

  return priv->simulate_failures;
}

guint64
pipeline_stage_get_failed_attempts (PipelineStage *self)
{
  PipelineStagePrivate *priv = pipeline_stage_get_instance_private (self);

  return priv->failed_attempts;
}

static void
pipeline_stage_collect_metrics (ExoResource  *resource,
                                GVariantDict *metrics)
{
  PipelineStage *self = PIPELINE_STAGE (resource);
  PipelineStagePrivate *priv = pipeline_stage_get_instance_private (self);

  EXO_RESOURCE_CLASS (pipeline_stage_parent_class)->collect_metrics (resource, metrics);
  g_variant_dict_insert (metrics, "batches", "t", priv->batches);
  g_variant_dict_insert (metrics, "rows", "t", priv->rows);
  g_variant_dict_insert (metrics, "failed-attempts", "t", priv->failed_attempts);
}

static void
pipeline_stage_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  PipelineStagePrivate *priv = pipeline_stage_get_instance_private (PIPELINE_STAGE (object));

  switch (prop_id)
    {
    case PROP_SIMULATE_FAILURES:
      g_value_set_boolean (value, priv->simulate_failures);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pipeline_stage_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  PipelineStagePrivate *priv = pipeline_stage_get_instance_private (PIPELINE_STAGE (object));

  switch (prop_id)
    {
    case PROP_SIMULATE_FAILURES:
      if (priv->simulate_failures != g_value_get_boolean (value))
        {
          priv->simulate_failures = g_value_get_boolean (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pipeline_stage_class_init (PipelineStageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = pipeline_stage_get_property;
  object_class->set_property = pipeline_stage_set_property;
  EXO_RESOURCE_CLASS (klass)->collect_metrics = pipeline_stage_collect_metrics;

  properties[PROP_SIMULATE_FAILURES] =
    g_param_spec_boolean ("simulate-failures", NULL,
                          "Make this stage's real failures happen (see README.md)", FALSE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * PipelineStage::event:
   * @message: one line for people
   *
   * A failed attempt, a recovery, a simulated failure starting or ending.
   */
  signals[SIGNAL_EVENT] =
    g_signal_new ("event", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
pipeline_stage_init (PipelineStage *self)
{
  /* 50 ms doubling to 800 ms, equal jitter: the 5th attempt comes at least
   * 375 ms after the first, the 6th (the last) at least 775 ms after it:
   * both after the simulated failures (300 ms) end, with a spare attempt */
  ExoRetryPolicy policy = {
    .max_retries = 5, .initial_delay_ms = 50, .max_delay_ms = 800,
    .multiplier = 2.0, .jitter = EXO_JITTER_EQUAL,
    .restart_burst = 5, .restart_interval_ms = 10000,
  };

  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (self), &policy);
}
