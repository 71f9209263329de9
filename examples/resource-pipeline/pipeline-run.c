/* pipeline-run.c: the `pipeline-run` resource — drives batches through the
 * reader, the processor and the uploader once it is initialized, and counts
 * what happened.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Main context of the resource only.  A run starts by removing the output
 * files of the one before.  It finds its stages by id in the
 * process's ExoRegistry (a config names them; `depends-on` makes them ready
 * first).  Batches are read one at a time, in order; up to `in-flight` of
 * them are between reading and the end of their upload at once.  The first
 * operation that fails for good (its stage's retry budget spent, or a
 * failure no retry can fix) stops the run: the others are cancelled and
 * awaited.  Cleanup cancels a run in progress and completes once every
 * batch in flight has come back, so nothing it holds outlives it.
 */
#include "pipeline.h"

struct _PipelineRun
{
  ExoResource       parent_instance;

  char             *stage_ids[3];     /* reader, processor, uploader */
  guint             batch_size;
  guint             max_in_flight;
  guint             pace_ms;

  PipelineStage    *stages[3];
  GCancellable     *cancellable;
  PipelineRunStats  stats;
  GError           *error;
  gint64            started_at;       /* monotonic µs */
  gint64            next_start;       /* monotonic µs, for pace-ms */
  gint64            cursor;           /* the last row id read */
  guint             next_index;
  guint             in_flight;
  guint             pace_id;
  gboolean          reading;
  gboolean          eof;
  gboolean          stopping;         /* failed or cancelled: start nothing */
  GTask            *cleanup_task;     /* waiting for the batches in flight */
};

G_DEFINE_FINAL_TYPE (PipelineRun, pipeline_run, EXO_TYPE_RESOURCE)

enum {
  PROP_0,
  PROP_READER,
  PROP_PROCESSOR,
  PROP_UPLOADER,
  PROP_BATCH_SIZE,
  PROP_IN_FLIGHT,
  PROP_PACE_MS,
  N_PROPS
};
static GParamSpec *properties[N_PROPS];

enum { SIGNAL_EVENT, SIGNAL_FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

enum { READER, PROCESSOR, UPLOADER };

static const struct {
  const char *setting;
  const char *type_name;
  guint       attempt_timeout_ms;
} stage_info[] = {
  { "reader", "pipeline-reader", 5000 },
  { "processor", "pipeline-processor", 5000 },
  { "uploader", "pipeline-uploader", 10000 },
};

static GType
stage_type (guint stage)
{
  switch (stage)
    {
    case READER:
      return PIPELINE_TYPE_READER;
    case PROCESSOR:
      return PIPELINE_TYPE_PROCESSOR;
    default:
      return PIPELINE_TYPE_UPLOADER;
    }
}

static void pump (PipelineRun *self);

static void
emit_event (PipelineRun *self,
            const char  *message)
{
  if (g_signal_has_handler_pending (self, signals[SIGNAL_EVENT], 0, FALSE))
    g_signal_emit (self, signals[SIGNAL_EVENT], 0, message);
  else
    g_message ("%s", message);
}

/* One batch between the start of its reading and the end of its upload. */
typedef struct
{
  PipelineRun   *self;
  PipelineBatch *batch;
} Flight;

static void
flight_end (Flight *flight)
{
  PipelineRun *self = flight->self;

  self->in_flight--;
  pipeline_batch_unref (flight->batch);
  g_free (flight);
  pump (self);
  g_object_unref (self);
}

static void
finish (PipelineRun *self)
{
  g_autoptr(GTask) cleanup_task = g_steal_pointer (&self->cleanup_task);

  self->stats.finished = TRUE;
  self->stats.elapsed_us = g_get_monotonic_time () - self->started_at;
  g_clear_handle_id (&self->pace_id, g_source_remove);
  if (self->error == NULL && self->stopping)
    self->error = g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, "interrupted");
  if (self->error == NULL)
    {
      g_autofree char *line =
        g_strdup_printf ("%s: %" G_GUINT64_FORMAT " rows uploaded in %" G_GUINT64_FORMAT
                         " batches, %.2f s", exo_resource_get_id (EXO_RESOURCE (self)),
                         self->stats.rows_uploaded, self->stats.batches,
                         self->stats.elapsed_us / 1e6);
      emit_event (self, line);
    }
  else if (!g_error_matches (self->error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      /* visible as the resource's state and last error (on D-Bus too) */
      exo_resource_report_health (EXO_RESOURCE (self), FALSE, self->error);
    }
  g_signal_emit (self, signals[SIGNAL_FINISHED], 0, self->error);
  if (cleanup_task != NULL)
    g_task_return_boolean (cleanup_task, TRUE);
}

static void
fail (PipelineRun  *self,
      Flight       *flight,
      guint         stage,
      guint         attempts,
      GError       *error)
{
  g_autoptr(ExoRetryPolicy) policy =
    exo_managed_resource_get_retry_policy (EXO_MANAGED_RESOURCE (self->stages[stage]));

  if (self->stopping && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_error_free (error);   /* stopped because of another batch, or by cleanup */
      return;
    }
  self->stats.failures++;
  if (self->error == NULL)
    {
      g_prefix_error (&error, "batch %u: %s: ", flight->batch->index + 1,
                      exo_resource_get_id (EXO_RESOURCE (self->stages[stage])));
      if (policy->max_retries != G_MAXUINT && attempts > policy->max_retries)
        self->error = g_error_new (error->domain, error->code,
                                   "%s (gave up after %u attempt%s: the retry budget of %u "
                                   "retr%s is spent)", error->message, attempts,
                                   attempts == 1 ? "" : "s", policy->max_retries,
                                   policy->max_retries == 1 ? "y" : "ies");
      else
        self->error = g_error_new (error->domain, error->code, "%s (not worth a retry)",
                                   error->message);
    }
  g_error_free (error);
  self->stopping = TRUE;
  g_cancellable_cancel (self->cancellable);
}

static void
count_attempts (PipelineRun *self,
                guint        stage,
                guint        attempts)
{
  if (attempts > 1)
    self->stats.retries[stage] += attempts - 1;
}

static void
uploaded_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Flight *flight = user_data;
  PipelineRun *self = flight->self;
  GError *error = NULL;
  guint attempts;

  if (!pipeline_stage_run_finish (PIPELINE_STAGE (source), result, &attempts, &error))
    fail (self, flight, UPLOADER, attempts, error);
  else
    {
      self->stats.rows_uploaded += flight->batch->rows->len;
      self->stats.batches++;
    }
  count_attempts (self, UPLOADER, attempts);
  flight_end (flight);
}

static void
processed_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Flight *flight = user_data;
  PipelineRun *self = flight->self;
  GError *error = NULL;
  guint attempts;

  if (!pipeline_stage_run_finish (PIPELINE_STAGE (source), result, &attempts, &error))
    {
      count_attempts (self, PROCESSOR, attempts);
      fail (self, flight, PROCESSOR, attempts, error);
      flight_end (flight);
      return;
    }
  count_attempts (self, PROCESSOR, attempts);
  self->stats.rows_processed += flight->batch->rows->len;
  if (self->stopping)
    {
      flight_end (flight);
      return;
    }
  pipeline_stage_run_async (self->stages[UPLOADER], flight->batch,
                            stage_info[UPLOADER].attempt_timeout_ms, self->cancellable,
                            uploaded_cb, flight);
}

static void
read_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Flight *flight = user_data;
  PipelineRun *self = flight->self;
  GError *error = NULL;
  guint attempts;

  self->reading = FALSE;
  if (!pipeline_stage_run_finish (PIPELINE_STAGE (source), result, &attempts, &error))
    {
      count_attempts (self, READER, attempts);
      fail (self, flight, READER, attempts, error);
      flight_end (flight);
      return;
    }
  count_attempts (self, READER, attempts);
  if (flight->batch->rows->len == 0)
    {
      self->eof = TRUE;
      flight_end (flight);
      return;
    }
  self->cursor = pipeline_batch_last_id (flight->batch);
  self->stats.rows_read += flight->batch->rows->len;
  if (self->stopping)
    {
      flight_end (flight);
      return;
    }
  pipeline_stage_run_async (self->stages[PROCESSOR], flight->batch,
                            stage_info[PROCESSOR].attempt_timeout_ms, self->cancellable,
                            processed_cb, flight);
  pump (self);   /* the next read may start now */
}

static void
start_batch (PipelineRun *self)
{
  Flight *flight = g_new0 (Flight, 1);

  flight->self = g_object_ref (self);
  flight->batch = pipeline_batch_new (self->next_index++, self->cursor, self->batch_size);
  self->reading = TRUE;
  self->in_flight++;
  self->next_start = g_get_monotonic_time () + (gint64) self->pace_ms * 1000;
  pipeline_stage_run_async (self->stages[READER], flight->batch,
                            stage_info[READER].attempt_timeout_ms, self->cancellable,
                            read_cb, flight);
}

static gboolean
pace_cb (gpointer user_data)
{
  PipelineRun *self = user_data;

  self->pace_id = 0;
  pump (self);
  return G_SOURCE_REMOVE;
}

static void
pump (PipelineRun *self)
{
  if (self->stats.finished || self->pace_id != 0)
    return;
  if (!self->stopping && !self->eof && !self->reading && self->in_flight < self->max_in_flight)
    {
      gint64 wait_us = self->next_start - g_get_monotonic_time ();

      if (wait_us > 0)
        self->pace_id = g_timeout_add ((wait_us + 999) / 1000, pace_cb, self);
      else
        start_batch (self);
    }
  if (self->in_flight == 0 && (self->eof || self->stopping))
    finish (self);
}

static void
release_stages (PipelineRun *self)
{
  for (guint i = 0; i < G_N_ELEMENTS (self->stages); i++)
    g_clear_object (&self->stages[i]);
}

static gboolean
find_stages (PipelineRun  *self,
             GError      **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (self->stages); i++)
    {
      g_autoptr(ExoResource) stage = exo_registry_lookup (exo_registry_get_default (),
                                                          self->stage_ids[i]);

      if (stage == NULL || !G_TYPE_CHECK_INSTANCE_TYPE (stage, stage_type (i)))
        {
          g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                       "no %s with id '%s' (setting `%s`)", stage_info[i].type_name,
                       self->stage_ids[i], stage_info[i].setting);
          return FALSE;
        }
      self->stages[i] = PIPELINE_STAGE (g_steal_pointer (&stage));
    }
  return TRUE;
}

static void
pipeline_run_do_initialize (ExoResource *resource,
                            GTask       *task)
{
  PipelineRun *self = PIPELINE_RUN (resource);
  GError *error = NULL;

  release_stages (self);
  if (!find_stages (self, &error))
    {
      release_stages (self);
      g_task_return_error (task, error);
      return;
    }
  /* the output folder holds this run's files only */
  pipeline_processor_remove_output_files (PIPELINE_PROCESSOR (self->stages[PROCESSOR]));
  memset (&self->stats, 0, sizeof self->stats);
  self->stats.rows_total = pipeline_reader_get_database_rows (PIPELINE_READER (self->stages[READER]));
  g_clear_error (&self->error);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  self->started_at = self->next_start = g_get_monotonic_time ();
  self->cursor = 0;
  self->next_index = 0;
  self->eof = self->stopping = self->reading = FALSE;
  g_task_return_boolean (task, TRUE);
  pump (self);
}

static void
pipeline_run_do_cleanup (ExoResource *resource,
                         GTask       *task)
{
  PipelineRun *self = PIPELINE_RUN (resource);

  if (self->cancellable != NULL && !self->stats.finished)
    {
      self->stopping = TRUE;
      g_cancellable_cancel (self->cancellable);
      if (self->in_flight > 0)
        {
          /* finish () completes it once the last batch is back */
          self->cleanup_task = g_object_ref (task);
          return;
        }
      finish (self);
    }
  g_task_return_boolean (task, TRUE);
}

void
pipeline_run_get_stats (PipelineRun      *self,
                        PipelineRunStats *stats)
{
  *stats = self->stats;
  if (!stats->finished && self->started_at != 0)
    stats->elapsed_us = g_get_monotonic_time () - self->started_at;
}

/**
 * pipeline_run_get_error:
 *
 * Returns: (nullable): why the last run stopped early
 */
const GError *
pipeline_run_get_error (PipelineRun *self)
{
  return self->error;
}

static void
pipeline_run_collect_metrics (ExoResource  *resource,
                              GVariantDict *metrics)
{
  PipelineRun *self = PIPELINE_RUN (resource);
  PipelineRunStats stats;

  EXO_RESOURCE_CLASS (pipeline_run_parent_class)->collect_metrics (resource, metrics);
  pipeline_run_get_stats (self, &stats);
  g_variant_dict_insert (metrics, "rows-total", "t", stats.rows_total);
  g_variant_dict_insert (metrics, "rows-read", "t", stats.rows_read);
  g_variant_dict_insert (metrics, "rows-processed", "t", stats.rows_processed);
  g_variant_dict_insert (metrics, "rows-uploaded", "t", stats.rows_uploaded);
  g_variant_dict_insert (metrics, "batches", "t", stats.batches);
  g_variant_dict_insert (metrics, "retries", "t",
                         stats.retries[READER] + stats.retries[PROCESSOR] + stats.retries[UPLOADER]);
  g_variant_dict_insert (metrics, "failures", "t", stats.failures);
  g_variant_dict_insert (metrics, "in-flight", "u", self->in_flight);
  g_variant_dict_insert (metrics, "finished", "b", stats.finished);
  g_variant_dict_insert (metrics, "elapsed-ms", "t", (guint64) (stats.elapsed_us / 1000));
  if (self->error != NULL)
    g_variant_dict_insert (metrics, "error", "s", self->error->message);
}

static void
pipeline_run_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  PipelineRun *self = PIPELINE_RUN (object);

  switch (prop_id)
    {
    case PROP_READER:
    case PROP_PROCESSOR:
    case PROP_UPLOADER:
      g_value_set_string (value, self->stage_ids[prop_id - PROP_READER]);
      break;
    case PROP_BATCH_SIZE:
      g_value_set_uint (value, self->batch_size);
      break;
    case PROP_IN_FLIGHT:
      g_value_set_uint (value, self->max_in_flight);
      break;
    case PROP_PACE_MS:
      g_value_set_uint (value, self->pace_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pipeline_run_set_property (GObject      *object,
                           guint         prop_id,
                           const GValue *value,
                           GParamSpec   *pspec)
{
  PipelineRun *self = PIPELINE_RUN (object);

  switch (prop_id)
    {
    case PROP_READER:
    case PROP_PROCESSOR:
    case PROP_UPLOADER:
      g_free (self->stage_ids[prop_id - PROP_READER]);
      self->stage_ids[prop_id - PROP_READER] = g_value_dup_string (value);
      break;
    case PROP_BATCH_SIZE:
      self->batch_size = g_value_get_uint (value);
      break;
    case PROP_IN_FLIGHT:
      self->max_in_flight = g_value_get_uint (value);
      break;
    case PROP_PACE_MS:
      self->pace_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  g_object_notify_by_pspec (object, pspec);
}

static void
pipeline_run_dispose (GObject *object)
{
  release_stages (PIPELINE_RUN (object));
  G_OBJECT_CLASS (pipeline_run_parent_class)->dispose (object);
}

static void
pipeline_run_finalize (GObject *object)
{
  PipelineRun *self = PIPELINE_RUN (object);

  g_clear_handle_id (&self->pace_id, g_source_remove);
  g_clear_object (&self->cancellable);
  g_clear_error (&self->error);
  for (guint i = 0; i < G_N_ELEMENTS (self->stage_ids); i++)
    g_free (self->stage_ids[i]);
  G_OBJECT_CLASS (pipeline_run_parent_class)->finalize (object);
}

static void
pipeline_run_class_init (PipelineRunClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->get_property = pipeline_run_get_property;
  object_class->set_property = pipeline_run_set_property;
  object_class->dispose = pipeline_run_dispose;
  object_class->finalize = pipeline_run_finalize;
  resource_class->do_initialize = pipeline_run_do_initialize;
  resource_class->do_cleanup = pipeline_run_do_cleanup;
  resource_class->collect_metrics = pipeline_run_collect_metrics;
  exo_resource_class_set_resource_type (resource_class, "pipeline-run");

  for (guint i = 0; i < G_N_ELEMENTS (stage_info); i++)
    properties[PROP_READER + i] =
      g_param_spec_string (stage_info[i].setting, NULL, "The id of the stage", stage_info[i].setting,
                           G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_BATCH_SIZE] =
    g_param_spec_uint ("batch-size", NULL, "Rows a batch", 1, 10000, 100,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_IN_FLIGHT] =
    g_param_spec_uint ("in-flight", NULL, "Batches on their way at once", 1, 64, 4,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_PACE_MS] =
    g_param_spec_uint ("pace-ms", NULL, "At least this long between two batches (ms)", 0, 60000, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * PipelineRun::event:
   * @message: one line for people
   */
  signals[SIGNAL_EVENT] =
    g_signal_new ("event", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  /**
   * PipelineRun::finished:
   * @error: (nullable): why the run stopped early; %NULL when every row was uploaded
   */
  signals[SIGNAL_FINISHED] =
    g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
pipeline_run_init (PipelineRun *self)
{
  for (guint i = 0; i < G_N_ELEMENTS (stage_info); i++)
    self->stage_ids[i] = g_strdup (stage_info[i].setting);
  self->batch_size = 100;
  self->max_in_flight = 4;
}
