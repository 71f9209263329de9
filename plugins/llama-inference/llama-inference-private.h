/* llama-inference-private.h: what llama-inference.c (the GObject and its
 * ExoInferenceEngine vfuncs) and llama-jobs.c (the worker) share: the
 * instance struct and the jobs.
 *
 * Thread rules: see llama-inference.c; the fields say who may touch them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>

#include "llama-forward.h"
#include "llama-model.h"
#include "llama-sessions.h"
#include "llama-tokenizer.h"

G_BEGIN_DECLS

#define LLAMA_TYPE_INFERENCE (llama_inference_get_type ())
G_DECLARE_FINAL_TYPE (LlamaInference, llama_inference, LLAMA, INFERENCE, ExoManagedResource)

struct _LlamaInference
{
  ExoManagedResource parent_instance;

  /* settings */
  char           *model_path;
  char           *tokenizer_path;
  guint           max_seq_len;
  guint           max_sessions;
  guint           threads;
  guint           session_timeout_ms;

  /* made by initialize, freed by cleanup */
  LlamaModel     *model;
  LlamaTokenizer *tokenizer;
  guint           seq_limit;
  GThreadPool    *pool;
  LlamaTeam      *team;
  GSource        *expire_source;

  LlamaSessions  *sessions;

  /* under lock */
  GMutex          lock;
  GPtrArray      *views;           /* LlamaShardWeights */
  guint64         rng;
  gboolean        closing;
  guint64         infer_calls;
  guint64         positions;
  guint64         tokens_sampled;
  guint64         forward_us;
  guint64         inline_steps;    /* decode steps run on the caller's thread */

  /* jobs pushed to the worker and not done (atomic) */
  gint            jobs_queued;
};

typedef enum
{
  LLAMA_JOB_INFER,
  LLAMA_JOB_ENCODE,
  LLAMA_JOB_PREFETCH,
} LlamaJobKind;

/* One piece of work for the worker; it completes @task. */
typedef struct
{
  LlamaJobKind  kind;
  GTask        *task;        /* owned */
  char         *request_id;  /* NULL: a one-off request */
  ExoShard     *shard;
  ExoTensor    *input;
  char         *prompt;
} LlamaJob;

/* The most multiply-adds of a decode step run on the caller's thread
 * instead of the worker (llama_job_push()). */
#define LLAMA_INLINE_STEP_MAX_MACS (4u * 1000 * 1000)

void      llama_job_run_inline (LlamaInference *self,
                                LlamaJob       *job);
gboolean  llama_job_try_now    (LlamaInference  *self,
                                const char      *request_id,
                                const ExoShard  *shard,
                                ExoTensor       *input,
                                ExoTensor      **output,
                                GError         **error);

LlamaJob *llama_job_new  (LlamaInference      *self,
                          LlamaJobKind         kind,
                          gpointer             source_tag,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data);
char     *llama_inference_resolve_path (const char  *setting,
                                        const char  *what,
                                        GError     **error);
void      llama_job_free (LlamaJob            *job);
/* Queues @job (taken) for the worker. */
void      llama_job_push (LlamaInference      *self,
                          LlamaJob            *job);
/* The worker's GThreadPool function: @data is a LlamaJob, @user_data self. */
void      llama_job_run  (gpointer             data,
                          gpointer             user_data);
/* The shared view of @shard's layers (self->lock held). */
LlamaShardWeights *llama_inference_get_view (LlamaInference  *self,
                                             const ExoShard  *shard,
                                             GError         **error);

G_END_DECLS
