/* llama-jobs.c: the worker of the llama engine — forward passes, encodes
 * and prefetches, run one at a time on the engine's worker thread, in the
 * order they were queued; a small decode step (a shard without the
 * classifier, at most LLAMA_INLINE_STEP_MAX_MACS) runs at once on the
 * engine's main context instead, when the worker has nothing queued.
 *
 * It owns nothing long-lived: each LlamaJob is freed when its task is
 * completed.  Thread rules: llama_job_new and llama_job_push run on the
 * engine's main context; llama_job_run on the worker, or (a small step)
 * in llama_job_push, while `jobs_queued` (atomic: pushed, not done) is 0,
 * so that the worker and the main context never run jobs at once (only
 * the main context pushes).  The worker reads
 * the model, tokenizer and team (read-only while the engine is usable),
 * takes self->lock for the shard views, counters and `closing`, and holds a
 * request's session (llama-sessions.c) only between begin and finish.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "llama-inference-private.h"

#define MAX_SHARD_VIEWS 8

/* The view of the layers of @shard, shared by the requests that run it. */
LlamaShardWeights *
llama_inference_get_view (LlamaInference  *self,
          const ExoShard  *shard,
          GError         **error)
{
  const LlamaConfig *cfg = llama_model_get_config (self->model);
  LlamaShardWeights *w;

  if (shard->n_layers != cfg->n_layers)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "shard %u..%u of %u layers, but '%s' has %u layers",
                   shard->start_layer, shard->end_layer, shard->n_layers,
                   llama_model_get_path (self->model), cfg->n_layers);
      return NULL;
    }
  for (guint i = 0; i < self->views->len; i++)
    {
      w = g_ptr_array_index (self->views, i);
      if (w->start_layer == shard->start_layer && w->end_layer == shard->end_layer)
        return w;
    }
  w = llama_model_get_shard (self->model, shard->start_layer, shard->end_layer, error);
  if (w == NULL)
    return NULL;
  if (self->views->len >= MAX_SHARD_VIEWS)
    g_ptr_array_remove_index (self->views, 0);   /* sessions keep their own reference */
  g_ptr_array_add (self->views, w);
  return w;
}

void
llama_job_free (LlamaJob *job)
{
  g_clear_object (&job->task);
  g_free (job->request_id);
  exo_shard_free (job->shard);
  g_clear_pointer (&job->input, exo_tensor_unref);
  g_free (job->prompt);
  g_free (job);
}

/* Multiply-adds of one position through @shard's layers, when it is a
 * small step: no classifier (not the last layer), one position; else 0. */
static guint64
small_step_macs (LlamaInference *self,
                 LlamaJob       *job)
{
  const LlamaConfig *cfg = llama_model_get_config (self->model);
  guint64 kv_dim, per_layer;

  if (job->kind != LLAMA_JOB_INFER || job->request_id == NULL || job->shard == NULL ||
      job->shard->end_layer + 1 >= cfg->n_layers || job->input == NULL)
    return 0;
  if (job->shard->start_layer == 0 ? exo_tensor_get_n_elements (job->input) != 1
                                   : exo_tensor_get_n_elements (job->input) != cfg->dim)
    return 0;
  kv_dim = (guint64) cfg->dim * cfg->n_kv_heads / cfg->n_heads;
  per_layer = (guint64) cfg->dim * (2 * cfg->dim + 2 * kv_dim) + 3 * (guint64) cfg->dim * cfg->hidden_dim;
  return per_layer * (job->shard->end_layer - job->shard->start_layer + 1);
}

/* A decode step of a few layers (a shard of a ring, not the last) costs
 * less than waking the worker and being woken back (two thread hand-offs,
 * ~0.1-0.2 ms each here): it runs on the caller's thread when the worker
 * has nothing queued (it is the only other user of the sessions and the
 * team), and the engine is not closing.  TRUE (counted) when @job may. */
static gboolean
take_inline (LlamaInference *self,
             LlamaJob       *job)
{
  guint64 macs = small_step_macs (self, job);
  gboolean take;

  if (macs == 0 || macs > LLAMA_INLINE_STEP_MAX_MACS || g_atomic_int_get (&self->jobs_queued) != 0)
    return FALSE;
  g_mutex_lock (&self->lock);
  take = !self->closing;
  if (take)
    self->inline_steps++;
  g_mutex_unlock (&self->lock);
  return take;
}

void
llama_job_push (LlamaInference *self,
                LlamaJob       *job)
{
  GError *error = NULL;

  /* its task completes in the next iteration */
  if (take_inline (self, job))
    {
      llama_job_run_inline (self, job);
      return;
    }
  g_atomic_int_inc (&self->jobs_queued);
  if (!g_thread_pool_push (self->pool, job, &error))
    {
      g_atomic_int_add (&self->jobs_queued, -1);
      g_task_return_error (job->task, error);
      llama_job_free (job);
    }
}

/* Checks @input against the shard and the request's position; returns the
 * number of positions it holds. */
static guint
check_input (LlamaInference     *self,
             LlamaShardWeights  *w,
             const char         *request_id,
             ExoTensor          *input,
             guint               pos,
             GError            **error)
{
  const LlamaConfig *cfg = w->config;
  gsize n_elements = exo_tensor_get_n_elements (input);
  guint n_dims = exo_tensor_get_n_dims (input);
  const gsize *shape = exo_tensor_get_shape (input);
  gsize n;

  if (w->is_first)
    {
      const gint32 *ids = exo_tensor_peek_data (input);

      if (exo_tensor_get_dtype (input) != EXO_DTYPE_INT32 || n_elements == 0)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "the first shard takes int32 token ids [n], not %s with %" G_GSIZE_FORMAT
                       " elements", exo_dtype_to_string (exo_tensor_get_dtype (input)), n_elements);
          return 0;
        }
      for (gsize i = 0; i < n_elements; i++)
        if (ids[i] < 0 || (guint) ids[i] >= cfg->vocab_size)
          {
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                         "token id %d at index %" G_GSIZE_FORMAT " is not in the vocabulary of %u",
                         ids[i], i, cfg->vocab_size);
            return 0;
          }
      n = n_elements;
    }
  else
    {
      if (exo_tensor_get_dtype (input) != EXO_DTYPE_FLOAT32 || n_elements == 0 ||
          shape[n_dims - 1] != cfg->dim)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "layers %u..%u take float32 activations [n, %u], not %s with %"
                       G_GSIZE_FORMAT " elements", w->start_layer, w->end_layer, cfg->dim,
                       exo_dtype_to_string (exo_tensor_get_dtype (input)), n_elements);
          return 0;
        }
      n = n_elements / cfg->dim;
    }

  if (n > self->seq_limit || pos + n > self->seq_limit)
    {
      if (pos == 0)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                     "the prompt is %" G_GSIZE_FORMAT " tokens, longer than max-seq-len %u",
                     n, self->seq_limit);
      else
        /* the context is full: the node ends the request with the finish
         * reason "length" (node-requests.c) */
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                     "request %s reached max-seq-len %u (%u positions done, %" G_GSIZE_FORMAT
                     " more asked for)", request_id != NULL ? request_id : "(one-off)",
                     self->seq_limit, pos, n);
      return 0;
    }
  return (guint) n;
}

static ExoTensor *
run_infer (LlamaInference  *self,
           LlamaJob        *job,
           GError         **error)
{
  const char *engine_id = exo_resource_get_id (EXO_RESOURCE (self));
  LlamaSession *s, one_off = { NULL, };
  g_autoptr(LlamaShardWeights) w = NULL;
  const LlamaConfig *cfg;
  float *out;
  gsize out_len, shape[2];
  gint64 t0;
  guint n = 0;

  g_mutex_lock (&self->lock);
  w = llama_inference_get_view (self, job->shard, error);
  if (w != NULL)
    llama_shard_weights_ref (w);
  g_mutex_unlock (&self->lock);
  if (w == NULL)
    return NULL;
  cfg = w->config;

  if (job->request_id == NULL)
    {
      one_off.weights = llama_shard_weights_ref (w);
      one_off.kv = llama_kv_cache_new (w->end_layer - w->start_layer + 1, cfg->kv_dim);
      s = &one_off;
    }
  else if ((s = llama_sessions_begin (self->sessions, job->request_id, w, engine_id, error)) == NULL)
    return NULL;

  /* the session is ours until llama_sessions_finish () */
  out_len = w->is_last ? cfg->vocab_size : 0;
  n = check_input (self, w, job->request_id, job->input, s->pos, error);
  if (n == 0 || !llama_kv_cache_reserve (s->kv, s->pos + n, self->seq_limit, error))
    out = NULL;
  else if ((out = g_try_new (float, w->is_last ? out_len : (out_len = (gsize) n * cfg->dim))) == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "out of memory for the output");
  if (out != NULL)
    {
      t0 = g_get_monotonic_time ();
      llama_forward (w, s->kv, self->team, s->pos, n,
                     w->is_first ? exo_tensor_peek_data (job->input) : NULL,
                     w->is_first ? NULL : exo_tensor_peek_data (job->input), out);
      g_mutex_lock (&self->lock);
      self->forward_us += g_get_monotonic_time () - t0;
      self->infer_calls++;
      self->positions += n;
      g_mutex_unlock (&self->lock);
    }

  if (s == &one_off)
    {
      llama_shard_weights_unref (one_off.weights);
      llama_kv_cache_free (one_off.kv);
    }
  else
    llama_sessions_finish (self->sessions, s, out != NULL ? n : 0);
  if (out == NULL)
    return NULL;

  shape[0] = w->is_last ? cfg->vocab_size : n;
  shape[1] = cfg->dim;
  {
    g_autoptr(GBytes) bytes = g_bytes_new_take (out, out_len * sizeof (float));

    return exo_tensor_new (EXO_DTYPE_FLOAT32, shape, w->is_last ? 1 : 2, bytes, error);
  }
}

static ExoTensor *
run_encode (LlamaInference  *self,
            LlamaJob        *job,
            GError         **error)
{
  g_autoptr(GArray) ids = NULL;

  if (self->tokenizer == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "engine '%s' has no tokenizer: set its `tokenizer` setting",
                   exo_resource_get_id (EXO_RESOURCE (self)));
      return NULL;
    }
  ids = llama_tokenizer_encode (self->tokenizer, job->prompt, self->seq_limit, error);
  if (ids == NULL)
    return NULL;
  return exo_tensor_new_int32 ((const gint32 *) (void *) ids->data, ids->len);
}

static void
job_run (LlamaInference *self,
         LlamaJob       *job,
         gboolean        queued)
{
  GError *error = NULL;
  ExoTensor *out = NULL;
  gboolean closing, cancelled, prefetched = FALSE;

  g_mutex_lock (&self->lock);
  closing = self->closing;
  g_mutex_unlock (&self->lock);

  cancelled = g_cancellable_is_cancelled (g_task_get_cancellable (job->task));
  if (cancelled)
    ;
  else if (closing)
    g_set_error (&error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED,
                 "inference engine '%s' is closing", exo_resource_get_id (EXO_RESOURCE (self)));
  else if (job->kind == LLAMA_JOB_INFER)
    out = run_infer (self, job, &error);
  else if (job->kind == LLAMA_JOB_ENCODE)
    out = run_encode (self, job, &error);
  else
    {
      LlamaShardWeights *w;

      g_mutex_lock (&self->lock);
      w = llama_inference_get_view (self, job->shard, &error);
      if (w != NULL)
        llama_shard_weights_ref (w);
      g_mutex_unlock (&self->lock);
      if (w != NULL)
        {
          llama_shard_weights_prefetch (w);
          llama_shard_weights_unref (w);
          prefetched = TRUE;
        }
    }

  /* The worker is done with the sessions and the team: a small step may
   * run on the main context from now on (llama_job_try_now() waits for
   * jobs_queued 0) — before the task returns, whose callback may be the
   * caller of the next step. */
  if (queued)
    g_atomic_int_add (&self->jobs_queued, -1);
  if (cancelled)
    g_task_return_error_if_cancelled (job->task);
  else if (prefetched)
    g_task_return_boolean (job->task, TRUE);
  else if (out != NULL)
    g_task_return_pointer (job->task, out, (GDestroyNotify) exo_tensor_unref);
  else
    g_task_return_error (job->task, error);
  llama_job_free (job);
}

void
llama_job_run (gpointer data,
               gpointer user_data)
{
  job_run (user_data, data, TRUE);
}

/* ExoInferenceEngine.try_infer_tensor: a small decode step (as
 * llama_job_push() runs inline) now, on the caller's thread, with no task:
 * its output is back before this returns.  FALSE (nothing set) for any
 * other step, while the worker has jobs, or while the engine closes. */
gboolean
llama_job_try_now (LlamaInference  *self,
                   const char      *request_id,
                   const ExoShard  *shard,
                   ExoTensor       *input,
                   ExoTensor      **output,
                   GError         **error)
{
  LlamaJob job = { .kind = LLAMA_JOB_INFER, .request_id = (char *) request_id,
                   .shard = (ExoShard *) shard, .input = input };

  /* closing: the task path says so */
  if (!take_inline (self, &job))
    return FALSE;
  *output = run_infer (self, &job, error);
  return TRUE;
}

void
llama_job_run_inline (LlamaInference *self,
                      LlamaJob       *job)
{
  job_run (self, job, FALSE);
}

LlamaJob *
llama_job_new (LlamaInference      *self,
               LlamaJobKind         kind,
               gpointer             source_tag,
               GCancellable        *cancellable,
               GAsyncReadyCallback  callback,
               gpointer             user_data)
{
  LlamaJob *job = g_new0 (LlamaJob, 1);

  job->kind = kind;
  job->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (job->task, source_tag);
  return job;
}

