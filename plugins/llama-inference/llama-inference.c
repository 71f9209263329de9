/* llama-inference.c: the `llama` plugin, an ExoInferenceEngine that runs
 * llama2.c checkpoints (llama-model.c), their tokenizer (llama-tokenizer.c)
 * and our forward pass (llama-forward.c) for one shard of the layers.
 *
 * It owns the loaded model and tokenizer, the worker (whose jobs are in
 * llama-jobs.c), the shard views and the table of request states
 * (llama-sessions.c: position, KV cache and random state per request id,
 * bounded by `max-sessions`, `max-seq-len` and `session-timeout-ms`, freed
 * by end_request()).
 *
 * Thread rules:
 *  - The object lives on the main context that made it: properties,
 *    initialize and cleanup, end_request, sample, decode and metrics run
 *    there.
 *  - Every forward pass and every encode runs on one worker thread (a
 *    GThreadPool of one exclusive thread), in the order they were asked
 *    for; the matmuls of a pass may use `threads` - 1 helper threads
 *    (llama-kernels.c, split by output rows: results do not depend on it).
 *  - self->lock guards the shard views, the counters, `closing` and the
 *    shared random state; the session table has its own lock.
 *  - The model, tokenizer, pool and team are made by initialize and freed
 *    by cleanup after the worker has drained; in between they are read-only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "llama-inference-private.h"
#include "llama-sampler.h"
#include "exo-plugin-util.h"

#include <string.h>

enum {
  PROP_0,
  PROP_MODEL,
  PROP_TOKENIZER,
  PROP_MAX_SEQ_LEN,
  PROP_MAX_SESSIONS,
  PROP_THREADS,
  PROP_SESSION_TIMEOUT_MS,
  PROP_N_LAYERS,
  PROP_VOCAB_SIZE,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];

static void llama_inference_engine_init (ExoInferenceEngineInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (LlamaInference, llama_inference, EXO_TYPE_MANAGED_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_INFERENCE_ENGINE,
                                                      llama_inference_engine_init))

/* --- ExoResource ----------------------------------------------------------- */

typedef struct
{
  char           *model_path;
  char           *tokenizer_path;
  LlamaModel     *model;
  LlamaTokenizer *tokenizer;
} Loaded;

static void
loaded_free (Loaded *l)
{
  g_free (l->model_path);
  g_free (l->tokenizer_path);
  g_clear_pointer (&l->model, llama_model_unref);
  g_clear_pointer (&l->tokenizer, llama_tokenizer_free);
  g_free (l);
}

#ifndef EXO_MODELDIR
# define EXO_MODELDIR "/usr/local/share/exo/models"
#endif

/* The file a `model` or `tokenizer` setting names: an absolute path, or one
 * starting with ./ or ../, as it is; any other relative path is looked for
 * in the folders of $EXO_MODEL_PATH (separated by ':'), then in the
 * installed models folder (EXO_MODELDIR), then in the current folder.
 * NULL with an error naming every place looked when none has it. */
char *
llama_inference_resolve_path (const char  *setting,
                              const char  *what,
                              GError     **error)
{
  g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GString) looked = g_string_new (NULL);
  const char *env = g_getenv ("EXO_MODEL_PATH");

  if (g_path_is_absolute (setting) || g_str_has_prefix (setting, "./") ||
      g_str_has_prefix (setting, "../"))
    return g_strdup (setting);
  if (env != NULL)
    {
      g_auto(GStrv) parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);

      for (guint i = 0; parts[i] != NULL; i++)
        if (parts[i][0] != '\0')
          g_ptr_array_add (dirs, g_strdup (parts[i]));
    }
  g_ptr_array_add (dirs, g_strdup (EXO_MODELDIR));
  g_ptr_array_add (dirs, g_get_current_dir ());
  for (guint i = 0; i < dirs->len; i++)
    {
      g_autofree char *path = g_build_filename (g_ptr_array_index (dirs, i), setting, NULL);

      if (g_file_test (path, G_FILE_TEST_EXISTS))
        return g_steal_pointer (&path);
      g_string_append_printf (looked, "%s'%s'", i > 0 ? ", " : "", path);
    }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
               "%s file '%s' not found; looked at %s (set EXO_MODEL_PATH or an absolute path)",
               what, setting, looked->str);
  return NULL;
}

static void
load_thread (GTask        *task,
             gpointer      source,
             gpointer      task_data,
             GCancellable *cancellable)
{
  Loaded *l = task_data;
  GError *error = NULL;
  char *path;

  /* relative settings are looked for on the model search path */
  if ((path = llama_inference_resolve_path (l->model_path, "model", &error)) == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_free (l->model_path);
  l->model_path = path;
  if (l->tokenizer_path != NULL && l->tokenizer_path[0] != '\0')
    {
      if ((path = llama_inference_resolve_path (l->tokenizer_path, "tokenizer", &error)) == NULL)
        {
          g_task_return_error (task, error);
          return;
        }
      g_free (l->tokenizer_path);
      l->tokenizer_path = path;
    }
  l->model = llama_model_open (l->model_path, &error);
  if (l->model != NULL && l->tokenizer_path != NULL && l->tokenizer_path[0] != '\0')
    l->tokenizer = llama_tokenizer_load (l->tokenizer_path,
                                         llama_model_get_config (l->model)->vocab_size, &error);
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static gboolean
expire_cb (gpointer data)
{
  LlamaInference *self = data;

  llama_sessions_expire (self->sessions);
  return G_SOURCE_CONTINUE;
}

static void
load_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;   /* the resource's initialize */
  LlamaInference *self = LLAMA_INFERENCE (source);
  Loaded *l = g_task_get_task_data (G_TASK (result));
  GError *error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;

  self->model = g_steal_pointer (&l->model);
  self->tokenizer = g_steal_pointer (&l->tokenizer);
  self->seq_limit = llama_model_get_config (self->model)->seq_len;
  if (self->max_seq_len > 0 && self->max_seq_len < self->seq_limit)
    self->seq_limit = self->max_seq_len;
  self->team = llama_team_new (self->threads);
  llama_kernels_get ();   /* the kernel path: chosen once per process, now */
  self->closing = FALSE;
  self->pool = g_thread_pool_new (llama_job_run, self, 1, TRUE, &error);
  if (self->pool == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (self->session_timeout_ms > 0)
    {
      self->expire_source = g_timeout_source_new (CLAMP (self->session_timeout_ms / 4, 50, 10000));
      g_source_set_callback (self->expire_source, expire_cb, self, NULL);
      g_source_attach (self->expire_source, g_task_get_context (task));
    }
  self->rng = llama_rng_seed (((guint64) g_random_int () << 32) | g_random_int ());
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_LAYERS]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_VOCAB_SIZE]);
  g_task_return_boolean (task, TRUE);
}

static void
llama_inference_do_initialize (ExoResource *resource,
                               GTask       *task)
{
  LlamaInference *self = LLAMA_INFERENCE (resource);
  g_autoptr(GTask) load = NULL;
  Loaded *l;

  if (self->model_path == NULL || self->model_path[0] == '\0')
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "engine '%s': set the `model` setting to a llama2.c checkpoint",
                               exo_resource_get_id (resource));
      return;
    }
  l = g_new0 (Loaded, 1);
  l->model_path = g_strdup (self->model_path);
  l->tokenizer_path = g_strdup (self->tokenizer_path);
  load = g_task_new (self, g_task_get_cancellable (task), load_cb, g_object_ref (task));
  g_task_set_source_tag (load, llama_inference_do_initialize);
  g_task_set_task_data (load, l, (GDestroyNotify) loaded_free);
  g_task_run_in_thread (load, load_thread);
}

static void
drain_thread (GTask        *task,
              gpointer      source,
              gpointer      task_data,
              GCancellable *cancellable)
{
  /* queued jobs see `closing` and fail at once; the running one finishes */
  g_thread_pool_free (task_data, FALSE, TRUE);
  g_task_return_boolean (task, TRUE);
}

static void
release (LlamaInference *self)
{
  if (self->expire_source != NULL)
    {
      g_source_destroy (self->expire_source);
      g_clear_pointer (&self->expire_source, g_source_unref);
    }
  llama_sessions_clear (self->sessions);
  g_mutex_lock (&self->lock);
  g_ptr_array_set_size (self->views, 0);
  g_mutex_unlock (&self->lock);
  g_clear_pointer (&self->team, llama_team_free);
  g_clear_pointer (&self->model, llama_model_unref);
  g_clear_pointer (&self->tokenizer, llama_tokenizer_free);
}

static void
drain_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;   /* the resource's cleanup */

  release (LLAMA_INFERENCE (source));
  g_task_return_boolean (task, TRUE);
}

static void
llama_inference_do_cleanup (ExoResource *resource,
                            GTask       *task)
{
  LlamaInference *self = LLAMA_INFERENCE (resource);
  g_autoptr(GTask) drain = NULL;

  g_mutex_lock (&self->lock);
  self->closing = TRUE;
  g_mutex_unlock (&self->lock);
  if (self->pool == NULL)
    {
      release (self);
      g_task_return_boolean (task, TRUE);
      return;
    }
  drain = g_task_new (self, NULL, drain_cb, g_object_ref (task));
  g_task_set_source_tag (drain, llama_inference_do_cleanup);
  g_task_set_task_data (drain, g_steal_pointer (&self->pool), NULL);
  g_task_run_in_thread (drain, drain_thread);
}

static void
llama_inference_collect_metrics (ExoResource  *resource,
                                 GVariantDict *metrics)
{
  LlamaInference *self = LLAMA_INFERENCE (resource);
  LlamaSessionStats stats;

  EXO_RESOURCE_CLASS (llama_inference_parent_class)->collect_metrics (resource, metrics);
  llama_sessions_get_stats (self->sessions, &stats);
  g_variant_dict_insert (metrics, "sessions", "u", stats.sessions);
  g_variant_dict_insert (metrics, "sessions-expired", "t", stats.expired);
  g_variant_dict_insert (metrics, "sessions-refused", "t", stats.refused);
  g_variant_dict_insert (metrics, "kv-cache-bytes", "t", stats.kv_bytes);
  g_mutex_lock (&self->lock);
  g_variant_dict_insert (metrics, "infer-calls", "t", self->infer_calls);
  g_variant_dict_insert (metrics, "positions", "t", self->positions);
  g_variant_dict_insert (metrics, "tokens-sampled", "t", self->tokens_sampled);
  g_variant_dict_insert (metrics, "forward-us", "t", self->forward_us);
  g_variant_dict_insert (metrics, "inline-steps", "t", self->inline_steps);
  g_variant_dict_insert (metrics, "kernels", "s", llama_kernels_to_string (llama_kernels_get ()));
  for (guint i = 0; i < self->views->len; i++)
    {
      LlamaShardWeights *w = g_ptr_array_index (self->views, i);

      if (i + 1 == self->views->len)
        {
          g_variant_dict_insert (metrics, "start-layer", "u", w->start_layer);
          g_variant_dict_insert (metrics, "end-layer", "u", w->end_layer);
          g_variant_dict_insert (metrics, "shard-weight-bytes", "t", w->weight_bytes);
        }
    }
  g_mutex_unlock (&self->lock);
  if (self->model != NULL)
    {
      const LlamaConfig *cfg = llama_model_get_config (self->model);

      g_variant_dict_insert (metrics, "model-path", "s", llama_model_get_path (self->model));
      g_variant_dict_insert (metrics, "model-format", "s",
                             llama_format_to_string (llama_model_get_format (self->model)));
      g_variant_dict_insert (metrics, "n-layers", "u", cfg->n_layers);
      g_variant_dict_insert (metrics, "dim", "u", cfg->dim);
      g_variant_dict_insert (metrics, "vocab-size", "u", cfg->vocab_size);
      g_variant_dict_insert (metrics, "max-seq-len", "u", self->seq_limit);
    }
}

/* What the keys above are in /metrics (docs/metrics.md); the families
 * exo_engine_* are shared with the other engines. */
static const ExoMetricEntry llama_metric_entries[] = {
  { .key = "sessions", .kind = EXO_METRIC_GAUGE, .name = "exo_engine_sessions",
    .help = "Sessions (requests with a KV cache) the engine holds." },
  { .key = "sessions-expired", .kind = EXO_METRIC_COUNTER, .name = "exo_engine_sessions_expired_total",
    .help = "Sessions dropped after their idle time." },
  { .key = "sessions-refused", .kind = EXO_METRIC_COUNTER, .name = "exo_engine_sessions_refused_total",
    .help = "Sessions refused at the engine's limit." },
  { .key = "kv-cache-bytes", .kind = EXO_METRIC_GAUGE, .name = "exo_engine_kv_cache_bytes",
    .help = "Memory of the sessions' KV caches." },
  { .key = "infer-calls", .kind = EXO_METRIC_COUNTER, .name = "exo_engine_infer_calls_total",
    .help = "Calls to the engine's infer." },
  { .key = "positions", .kind = EXO_METRIC_COUNTER, .name = "exo_engine_positions_total",
    .help = "Token positions the engine computed." },
  { .key = "tokens-sampled", .kind = EXO_METRIC_COUNTER, .name = "exo_engine_tokens_sampled_total",
    .help = "Tokens the engine sampled." },
  { .key = "forward-us", .kind = EXO_METRIC_COUNTER, .name = "exo_engine_forward_seconds_total",
    .scale = 1e-6, .help = "Time the engine spent in forward passes." },
  { .key = "inline-steps", .kind = EXO_METRIC_COUNTER, .name = "exo_engine_inline_steps_total",
    .help = "Decode steps of a few layers run on the node's main thread instead of the worker (no classifier, the worker idle)." },
  { .key = "start-layer", .kind = EXO_METRIC_GAUGE, .name = "exo_engine_shard_start_layer",
    .help = "The first layer of the engine's shard." },
  { .key = "end-layer", .kind = EXO_METRIC_GAUGE, .name = "exo_engine_shard_end_layer",
    .help = "The last layer of the engine's shard." },
  { .key = "shard-weight-bytes", .kind = EXO_METRIC_GAUGE, .name = "exo_engine_shard_weight_bytes",
    .help = "Memory of the weights of the engine's shard." },
  { .key = "model-path", .kind = EXO_METRIC_INFO, .name = "exo_engine_info",
    .help = "The engine's model (value 1)." },
  { .key = "model-format", .kind = EXO_METRIC_INFO, .name = "exo_engine_info",
    .help = "The engine's model (value 1)." },
  { .key = "kernels", .kind = EXO_METRIC_INFO, .name = "exo_engine_info",
    .help = "The engine's model (value 1)." },
  { .key = "n-layers", .kind = EXO_METRIC_GAUGE, .name = "exo_engine_model_layers",
    .help = "Layers of the engine's model." },
  { .key = "dim", .kind = EXO_METRIC_GAUGE, .name = "exo_engine_model_dim",
    .help = "The embedding dimension of the engine's model." },
  { .key = "vocab-size", .kind = EXO_METRIC_GAUGE, .name = "exo_engine_model_vocab_size",
    .help = "Tokens in the vocabulary of the engine's model." },
  { .key = "max-seq-len", .kind = EXO_METRIC_GAUGE, .name = "exo_engine_max_sequence_length",
    .help = "The most positions a session of the engine may have." },
};

/* --- ExoInferenceEngine ------------------------------------------------------ */

static gboolean
ensure_usable (LlamaInference  *self,
               GError         **error)
{
  if (!exo_resource_is_usable (EXO_RESOURCE (self)) || self->pool == NULL)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                   "inference engine '%s' is %s", exo_resource_get_id (EXO_RESOURCE (self)),
                   exo_resource_state_to_string (exo_resource_get_state (EXO_RESOURCE (self))));
      return FALSE;
    }
  return TRUE;
}

static void
llama_encode_async (ExoInferenceEngine  *engine,
                    const ExoShard      *shard,
                    const char          *prompt,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  LlamaInference *self = LLAMA_INFERENCE (engine);
  LlamaJob *job = llama_job_new (self, LLAMA_JOB_ENCODE, llama_encode_async, cancellable, callback, user_data);
  GError *error = NULL;

  if (!ensure_usable (self, &error))
    {
      g_task_return_error (job->task, error);
      llama_job_free (job);
      return;
    }
  job->prompt = g_strdup (prompt);
  llama_job_push (self, job);
}

static ExoTensor *
llama_tensor_finish (ExoInferenceEngine  *engine,
                     GAsyncResult        *result,
                     GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, engine), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
llama_infer_tensor_async (ExoInferenceEngine  *engine,
                          const char          *request_id,
                          const ExoShard      *shard,
                          ExoTensor           *input,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  LlamaInference *self = LLAMA_INFERENCE (engine);
  LlamaJob *job = llama_job_new (self, LLAMA_JOB_INFER, llama_infer_tensor_async, cancellable, callback, user_data);
  GError *error = NULL;

  if (!ensure_usable (self, &error))
    {
      g_task_return_error (job->task, error);
      llama_job_free (job);
      return;
    }
  job->request_id = g_strdup (request_id);
  job->shard = exo_shard_copy (shard);
  job->input = exo_tensor_ref (input);
  llama_job_push (self, job);
}

static char *
llama_get_model_digest (ExoInferenceEngine *engine)
{
  LlamaInference *self = LLAMA_INFERENCE (engine);

  return self->model != NULL ? g_strdup (llama_model_get_digest (self->model)) : NULL;
}

static gboolean
llama_try_infer_tensor (ExoInferenceEngine  *engine,
                        const char          *request_id,
                        const ExoShard      *shard,
                        ExoTensor           *input,
                        ExoTensor          **output,
                        GError             **error)
{
  LlamaInference *self = LLAMA_INFERENCE (engine);

  /* not usable: infer_tensor_async says why */
  if (!ensure_usable (self, NULL))
    return FALSE;
  return llama_job_try_now (self, request_id, shard, input, output, error);
}

static char *
llama_decode (ExoInferenceEngine  *engine,
              const ExoShard      *shard,
              ExoTensor           *tokens,
              GError             **error)
{
  LlamaInference *self = LLAMA_INFERENCE (engine);

  if (!ensure_usable (self, error))
    return NULL;
  if (self->tokenizer == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "engine '%s' has no tokenizer: set its `tokenizer` setting",
                   exo_resource_get_id (EXO_RESOURCE (self)));
      return NULL;
    }
  if (exo_tensor_get_dtype (tokens) != EXO_DTYPE_INT32)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "decode takes int32 token ids, not %s",
                   exo_dtype_to_string (exo_tensor_get_dtype (tokens)));
      return NULL;
    }
  return llama_tokenizer_decode (self->tokenizer, -1, exo_tensor_peek_data (tokens),
                                 exo_tensor_get_n_elements (tokens), error);
}

/* The logits to sample from: the last vocab_size values of @x. */
static const float *
sample_input (LlamaInference  *self,
              ExoTensor       *x,
              GError         **error)
{
  guint vocab = llama_model_get_config (self->model)->vocab_size;
  gsize n = exo_tensor_get_n_elements (x);

  if (exo_tensor_get_dtype (x) != EXO_DTYPE_FLOAT32 || n == 0 || n % vocab != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "sampling takes float32 logits [%u], not %s with %" G_GSIZE_FORMAT " elements",
                   vocab, exo_dtype_to_string (exo_tensor_get_dtype (x)), n);
      return NULL;
    }
  return (const float *) exo_tensor_peek_data (x) + (n - vocab);
}

static ExoTensor *
llama_sample_for_request (ExoInferenceEngine  *engine,
                          const char          *request_id,
                          ExoTensor           *x,
                          double               temperature,
                          double               top_p,
                          guint64              seed,
                          gboolean             has_seed,
                          GError             **error)
{
  LlamaInference *self = LLAMA_INFERENCE (engine);
  const float *logits;
  guint64 state = 0;
  gint32 token;
  guint vocab;

  if (!ensure_usable (self, error) || (logits = sample_input (self, x, error)) == NULL)
    return NULL;
  vocab = llama_model_get_config (self->model)->vocab_size;

  if (temperature > 0.0)
    {
      if (request_id != NULL)
        {
          if (!llama_sessions_take_rng (self->sessions, request_id, seed, has_seed,
                                        exo_resource_get_id (EXO_RESOURCE (self)), &state, error))
            return NULL;
        }
      else if (has_seed)
        state = llama_rng_seed (seed);
      else
        {
          g_mutex_lock (&self->lock);
          state = self->rng;
          g_mutex_unlock (&self->lock);
        }
    }

  token = llama_sample (logits, vocab, temperature, top_p, &state);
  if (token < 0)
    {
      if (temperature > 0.0 && request_id != NULL)
        llama_sessions_put_rng (self->sessions, request_id, state);
      /* the server's fault, not the request's: 500 */
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "engine '%s': the model's output is not finite (NaN or infinite logits): "
                   "a checkpoint may be corrupt ('%s' here, or one of a node before this one "
                   "in the ring)", exo_resource_get_id (EXO_RESOURCE (self)),
                   llama_model_get_path (self->model));
      return NULL;
    }
  /* llama2.c's models end a text by predicting BOS (they were trained on
   * BOS + text + BOS + …, never on EOS): BOS is reported as EOS, the token
   * get_eos_token() names, so a caller that stops on EOS stops there. */
  if (token == LLAMA_TOKEN_BOS)
    token = LLAMA_TOKEN_EOS;

  if (temperature > 0.0 && request_id != NULL)
    llama_sessions_put_rng (self->sessions, request_id, state);
  g_mutex_lock (&self->lock);
  if (temperature > 0.0 && request_id == NULL && !has_seed)
    self->rng = state;
  self->tokens_sampled++;
  g_mutex_unlock (&self->lock);
  return exo_tensor_new_int32 (&token, 1);
}

static ExoTensor *
llama_engine_sample (ExoInferenceEngine  *engine,
              ExoTensor           *x,
              double               temperature,
              double               top_p,
              GError             **error)
{
  return llama_sample_for_request (engine, NULL, x, temperature, top_p, 0, FALSE, error);
}

static void
llama_end_request (ExoInferenceEngine *engine,
                   const char         *request_id)
{
  llama_sessions_end (LLAMA_INFERENCE (engine)->sessions, request_id);
}

static void
llama_load_checkpoint_async (ExoInferenceEngine  *engine,
                             const ExoShard      *shard,
                             const char          *path,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  LlamaInference *self = LLAMA_INFERENCE (engine);
  LlamaJob *job = llama_job_new (self, LLAMA_JOB_PREFETCH, llama_load_checkpoint_async, cancellable,
                      callback, user_data);
  GError *error = NULL;

  if (!ensure_usable (self, &error))
    {
      g_task_return_error (job->task, error);
      llama_job_free (job);
      return;
    }
  if (path != NULL && path[0] != '\0' && g_strcmp0 (path, self->model_path) != 0)
    {
      g_task_return_new_error (job->task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               "engine '%s' serves '%s' (its `model` setting), not '%s'",
                               exo_resource_get_id (EXO_RESOURCE (self)), self->model_path, path);
      llama_job_free (job);
      return;
    }
  job->shard = exo_shard_copy (shard);
  llama_job_push (self, job);
}

static gboolean
llama_load_checkpoint_finish (ExoInferenceEngine  *engine,
                              GAsyncResult        *result,
                              GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, engine), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static gint32
llama_get_eos_token (ExoInferenceEngine *engine)
{
  return LLAMA_TOKEN_EOS;
}

static void
llama_inference_engine_init (ExoInferenceEngineInterface *iface)
{
  iface->encode_async = llama_encode_async;
  iface->encode_finish = llama_tensor_finish;
  iface->decode = llama_decode;
  iface->sample = llama_engine_sample;
  iface->infer_tensor_async = llama_infer_tensor_async;
  iface->infer_tensor_finish = llama_tensor_finish;
  iface->load_checkpoint_async = llama_load_checkpoint_async;
  iface->load_checkpoint_finish = llama_load_checkpoint_finish;
  iface->get_eos_token = llama_get_eos_token;
  iface->sample_for_request = llama_sample_for_request;
  iface->end_request = llama_end_request;
  iface->try_infer_tensor = llama_try_infer_tensor;
  iface->get_model_digest = llama_get_model_digest;
}

/* --- GObject ------------------------------------------------------------------ */

static void
llama_inference_finalize (GObject *object)
{
  LlamaInference *self = LLAMA_INFERENCE (object);

  if (self->pool != NULL)
    {
      /* finalized without a cleanup: drain the worker here */
      g_mutex_lock (&self->lock);
      self->closing = TRUE;
      g_mutex_unlock (&self->lock);
      g_thread_pool_free (g_steal_pointer (&self->pool), FALSE, TRUE);
    }
  release (self);
  llama_sessions_free (self->sessions);
  g_ptr_array_unref (self->views);
  g_mutex_clear (&self->lock);
  g_free (self->model_path);
  g_free (self->tokenizer_path);
  G_OBJECT_CLASS (llama_inference_parent_class)->finalize (object);
}

static void
llama_inference_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  LlamaInference *self = LLAMA_INFERENCE (object);

  switch (prop_id)
    {
    case PROP_MODEL:
      g_value_set_string (value, self->model_path);
      break;
    case PROP_TOKENIZER:
      g_value_set_string (value, self->tokenizer_path);
      break;
    case PROP_MAX_SEQ_LEN:
      g_value_set_uint (value, self->max_seq_len);
      break;
    case PROP_MAX_SESSIONS:
      g_value_set_uint (value, self->max_sessions);
      break;
    case PROP_THREADS:
      g_value_set_uint (value, self->threads);
      break;
    case PROP_SESSION_TIMEOUT_MS:
      g_value_set_uint (value, self->session_timeout_ms);
      break;
    case PROP_N_LAYERS:
      g_value_set_uint (value, self->model ? llama_model_get_config (self->model)->n_layers : 0);
      break;
    case PROP_VOCAB_SIZE:
      g_value_set_uint (value, self->model ? llama_model_get_config (self->model)->vocab_size : 0);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
llama_inference_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  LlamaInference *self = LLAMA_INFERENCE (object);
  gboolean changed;

  switch (prop_id)
    {
    case PROP_MODEL:
      changed = exo_plugin_set_string (&self->model_path, value);
      break;
    case PROP_TOKENIZER:
      changed = exo_plugin_set_string (&self->tokenizer_path, value);
      break;
    case PROP_MAX_SEQ_LEN:
      changed = exo_plugin_set_uint (&self->max_seq_len, value);
      break;
    case PROP_MAX_SESSIONS:
      changed = exo_plugin_set_uint (&self->max_sessions, value);
      llama_sessions_set_limits (self->sessions, self->max_sessions, self->session_timeout_ms);
      break;
    case PROP_THREADS:
      changed = exo_plugin_set_uint (&self->threads, value);
      break;
    case PROP_SESSION_TIMEOUT_MS:
      changed = exo_plugin_set_uint (&self->session_timeout_ms, value);
      llama_sessions_set_limits (self->sessions, self->max_sessions, self->session_timeout_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  if (changed)
    g_object_notify_by_pspec (object, pspec);
}

static void
llama_inference_class_init (LlamaInferenceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

  object_class->finalize = llama_inference_finalize;
  object_class->get_property = llama_inference_get_property;
  object_class->set_property = llama_inference_set_property;

  resource_class->do_initialize = llama_inference_do_initialize;
  resource_class->do_cleanup = llama_inference_do_cleanup;
  resource_class->collect_metrics = llama_inference_collect_metrics;
  exo_resource_class_add_metric_entries (resource_class, llama_metric_entries,
                                         G_N_ELEMENTS (llama_metric_entries));
  exo_resource_class_set_resource_type (resource_class, "llama");

  /**
   * LlamaInference:model:
   *
   * Path of a llama2.c checkpoint (legacy float32, version 1 or version 2
   * int8).  Read when the engine initializes.
   */
  properties[PROP_MODEL] =
    g_param_spec_string ("model", NULL, "Path of the llama2.c checkpoint", NULL, rw);
  /**
   * LlamaInference:tokenizer:
   *
   * Path of its llama2.c tokenizer.bin; without it encode and decode fail.
   */
  properties[PROP_TOKENIZER] =
    g_param_spec_string ("tokenizer", NULL, "Path of the llama2.c tokenizer.bin", NULL, rw);
  /**
   * LlamaInference:max-seq-len:
   *
   * The most positions (prompt and generated tokens) of a request; 0 or a
   * value above the model's seq_len means the model's seq_len.
   */
  properties[PROP_MAX_SEQ_LEN] =
    g_param_spec_uint ("max-seq-len", NULL, "Most positions of a request (0: the model's)",
                       0, LLAMA_MAX_SEQ_LEN, 0, rw);
  /**
   * LlamaInference:max-sessions:
   *
   * The most requests whose state (KV cache) the engine keeps at once;
   * one more is refused with %G_IO_ERROR_BUSY.
   */
  properties[PROP_MAX_SESSIONS] =
    g_param_spec_uint ("max-sessions", NULL, "Most concurrent request states",
                       1, 65536, 8, rw);
  /**
   * LlamaInference:threads:
   *
   * Threads of a matmul (split by output rows; results do not depend on
   * it).  Read when the engine initializes.
   */
  properties[PROP_THREADS] =
    g_param_spec_uint ("threads", NULL, "Threads per matmul", 1, 256, 1, rw);
  /**
   * LlamaInference:session-timeout-ms:
   *
   * A request state without a call for this long is dropped; 0 keeps
   * states until end_request.
   */
  properties[PROP_SESSION_TIMEOUT_MS] =
    g_param_spec_uint ("session-timeout-ms", NULL, "Idle time after which a request state is dropped",
                       0, G_MAXUINT, 60000, rw);
  /**
   * LlamaInference:n-layers:
   *
   * The layers of the loaded model; 0 before it is loaded.
   */
  properties[PROP_N_LAYERS] =
    g_param_spec_uint ("n-layers", NULL, "Layers of the loaded model", 0, G_MAXUINT, 0, ro);
  /**
   * LlamaInference:vocab-size:
   *
   * The vocabulary size of the loaded model; 0 before it is loaded.
   */
  properties[PROP_VOCAB_SIZE] =
    g_param_spec_uint ("vocab-size", NULL, "Vocabulary size of the loaded model", 0, G_MAXUINT, 0, ro);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
llama_inference_init (LlamaInference *self)
{
  g_mutex_init (&self->lock);
  self->max_sessions = 8;
  self->threads = 1;
  self->session_timeout_ms = 60000;
  self->sessions = llama_sessions_new ();
  self->views = g_ptr_array_new_with_free_func ((GDestroyNotify) llama_shard_weights_unref);
}

static void
llama_inference_register (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "llama", LLAMA_TYPE_INFERENCE);
}

EXO_PLUGIN_DEFINE ("llama-inference", "0.3.0",
                   "Llama transformers from llama2.c checkpoints, sharded by layers",
                   llama_inference_register)
