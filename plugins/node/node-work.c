/* node-work.c: the ring at work, the part of a request this node does.
 *
 * Split from node-requests.c, which keeps the records this file reads and
 * fills (request_lookup(), request_ensure(), request_params()) and answers
 * the callers (request_fail(), handle_result()).  As exo does it:
 *
 * - Prompt: start_prompt(): the node of the first shard encodes the
 *   prompt and runs its layers; any other node sends the prompt there.
 *   The API node that is not the first shard counts the prompt's tokens
 *   with its own engine (count_prompt()).
 * - Tensors: each node runs its layers (run_infer()) and forwards the
 *   output to the next node of the ring (forward(), send_to()); the last
 *   shard samples a token, broadcasts the tokens so far to every peer and
 *   to itself (broadcast_result()), and feeds the token back to the first
 *   shard, until EOS or max tokens.
 * - Failures here: sending to the next hop fails (hop_failed(); a
 *   connection error also fails that peer), or work here fails
 *   (local_failure()): the API node fails its request, other nodes count
 *   the failure and log it.  Work of a cancelled request stops here
 *   (drop_if_cancelled()).
 *
 * Rules: the node's main context only; no threads, no locks.  Work and Hop
 * hold a reference on the node and the generation they started in; their
 * callbacks act only while `self->running && generation ==
 * self->generation`.  ResultSend only counts, while `self->running`.
 * handle_result() (through broadcast_result()) may run the caller's token
 * callback, which may call back into the node: nothing here holds a
 * Request across it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "node-private.h"

static void
failure_sent_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(ExoClusterNode) self = user_data;
  g_autoptr(GError) error = NULL;

  /* best effort: without it the API node gives up after request-timeout-ms */
  if (!exo_peer_handle_send_failure_finish (EXO_PEER_HANDLE (source), result, &error) &&
      self->running && !is_cancelled (error))
    log_event (self, G_LOG_LEVEL_INFO, "could not report a failure to its API node: %s",
               error->message);
}

/* Work of @request_id failed here, on a node that does not answer it:
 * its API node (@params' origin) is told at once, so that the caller gets
 * @failure (a prompt too long, an engine full: 400, 429) instead of a
 * timeout. */
static void
tell_origin (ExoClusterNode            *self,
             const char                *request_id,
             const ExoGenerationParams *params,
             const GError              *failure)
{
  Peer *peer;

  if (params == NULL || params->origin == NULL || g_strcmp0 (params->origin, self->node_id) == 0 ||
      (peer = lookup_usable_peer (self, params->origin)) == NULL)
    return;
  self->failures_reported++;
  exo_peer_handle_send_failure_async (EXO_PEER_HANDLE (peer->handle), request_id, failure,
                                      self->cancellable, failure_sent_cb, g_object_ref (self));
}

/* Something failed here while working on @request_id (which came with
 * @params). */
static void
local_failure (ExoClusterNode            *self,
               const char                *request_id,
               const ExoGenerationParams *params,
               const char                *what,
               const GError              *error)
{
  g_autoptr(GError) failure = NULL;
  Request *req;

  if (!self->running || is_cancelled (error))
    return;
  /* The request was cancelled (its client left, a stop string ended it)
   * while this work ran: the engine may have freed its state already. */
  if (drop_if_cancelled (self, request_id))
    {
      engine_end_request (self, request_id);
      return;
    }
  failure = g_error_new (error->domain, error->code, "request %s: %s on node %s failed: %s",
                         request_id, what, self->node_id, error->message);
  req = request_lookup (self, request_id);
  if (req != NULL && req->is_api && req->task != NULL)
    request_fail (self, req, g_steal_pointer (&failure));
  else
    {
      self->dropped_messages++;
      engine_end_request (self, request_id);
      log_event (self, G_LOG_LEVEL_WARNING, "request %s: %s failed: %s", request_id, what,
                 error->message);
      tell_origin (self, request_id, params, failure);
    }
}

typedef struct {
  ExoClusterNode      *self;
  char                *request_id;
  ExoShard            *shard;
  ExoGenerationParams *params;     /* those the work came with; NULL: none */
  guint                generation;
} Work;

static Work *
work_new (ExoClusterNode            *self,
          const char                *request_id,
          ExoShard                  *shard,
          const ExoGenerationParams *params)
{
  Work *work = g_new0 (Work, 1);

  work->self = g_object_ref (self);
  work->request_id = g_strdup (request_id);
  work->shard = shard;
  work->params = params != NULL ? exo_generation_params_copy (params) : NULL;
  work->generation = self->generation;
  return work;
}

static void
work_free (Work *work)
{
  g_object_unref (work->self);
  g_free (work->request_id);
  exo_shard_free (work->shard);
  g_clear_pointer (&work->params, exo_generation_params_free);
  g_free (work);
}

static gboolean
work_is_current (Work *work)
{
  return work->self->running && work->generation == work->self->generation;
}

typedef struct {
  ExoClusterNode *self;
  char           *request_id;
  char           *target_id;
  char           *what;
  ExoGenerationParams *params;   /* nullable */
  guint           start_layer;
  guint           end_layer;
  guint           generation;
} Hop;

static void
hop_free (Hop *hop)
{
  g_object_unref (hop->self);
  g_free (hop->request_id);
  g_free (hop->target_id);
  g_free (hop->what);
  g_clear_pointer (&hop->params, exo_generation_params_free);
  g_free (hop);
}

static void
hop_failed (ExoClusterNode            *self,
            const char                *request_id,
            const ExoGenerationParams *params,
            const char                *target_id,
            guint                      start_layer,
            guint                      end_layer,
            const char                *what,
            const GError              *error)
{
  Peer *peer;
  Request *req;
  g_autoptr(GError) failure = NULL;

  if (!self->running || is_cancelled (error))
    return;
  self->hop_failures++;

  if (exo_error_is_connection_error (error))
    failure = g_error_new (G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE,
                           "request %s: node %s (next hop for layers %u-%u) is unreachable: %s",
                           request_id, target_id, start_layer, end_layer, error->message);
  else
    failure = g_error_new (error->domain, error->code,
                           "request %s: node %s (next hop for layers %u-%u) refused the %s: %s",
                           request_id, target_id, start_layer, end_layer, what, error->message);

  /* The call was retried by the peer handle already: a connection error
   * means the peer is gone. */
  peer = g_hash_table_lookup (self->peers, target_id);
  if (peer != NULL && exo_error_is_connection_error (error))
    peer_set_failed (self, peer, error);

  req = request_lookup (self, request_id);
  if (req != NULL && req->is_api && req->task != NULL)
    request_fail (self, req, g_steal_pointer (&failure));
  else
    {
      engine_end_request (self, request_id);
      log_event (self, G_LOG_LEVEL_WARNING, "%s", failure->message);
      tell_origin (self, request_id, params, failure);
    }
}

static void
hop_cb (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  Hop *hop = user_data;
  ExoPeerHandle *handle = EXO_PEER_HANDLE (source);
  g_autoptr(GError) error = NULL;
  gboolean ok;

  if (g_str_equal (hop->what, "prompt"))
    ok = exo_peer_handle_send_prompt_finish (handle, result, &error);
  else
    ok = exo_peer_handle_send_tensor_finish (handle, result, &error);

  if (!ok && hop->self->running && hop->generation == hop->self->generation)
    hop_failed (hop->self, hop->request_id, hop->params, hop->target_id, hop->start_layer,
                hop->end_layer, hop->what, error);
  hop_free (hop);
}

/* Sends @tensor (or, with @prompt, the prompt) with @params to the node of
 * @target. */
static void
send_to (ExoClusterNode            *self,
         const char                *request_id,
         const NodeShardAssignment *target,
         ExoTensor                 *tensor,
         const char                *prompt,
         const ExoGenerationParams *params)
{
  const char *what = prompt != NULL ? "prompt" : "tensor";
  Peer *peer = lookup_usable_peer (self, target->node_id);
  g_autoptr(ExoShard) shard = shard_for (self, target);
  Hop *hop;

  if (peer == NULL)
    {
      g_autoptr(GError) error = g_error_new (G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE,
                                             "no usable connection to it");
      hop_failed (self, request_id, params, target->node_id, target->start_layer,
                  target->end_layer, what, error);
      return;
    }

  hop = g_new0 (Hop, 1);
  hop->self = g_object_ref (self);
  hop->request_id = g_strdup (request_id);
  hop->target_id = g_strdup (target->node_id);
  hop->what = g_strdup (what);
  hop->start_layer = target->start_layer;
  hop->end_layer = target->end_layer;
  hop->generation = self->generation;
  hop->params = params != NULL ? exo_generation_params_copy (params) : NULL;
  if (prompt != NULL)
    exo_peer_handle_send_prompt_async (EXO_PEER_HANDLE (peer->handle), shard, prompt, request_id,
                                       params, self->cancellable, hop_cb, hop);
  else
    exo_peer_handle_send_tensor_async (EXO_PEER_HANDLE (peer->handle), shard, tensor, request_id,
                                       params, self->cancellable, hop_cb, hop);
}

/* The shard after @from_index in the ring (the last one's next is the
 * first); NULL when the ring is empty. */
static NodeShardAssignment *
next_shard (ExoClusterNode *self,
            gint            from_index)
{
  if (self->shards == NULL || self->shards->len == 0)
    return NULL;
  return g_ptr_array_index (self->shards,
                            from_index < 0 ? 0 : (guint) (from_index + 1) % self->shards->len);
}

/* Passes @tensor (and @params) to the node after @from_index in the ring
 * (the last shard's token goes back to the first). */
static void
forward (ExoClusterNode            *self,
         const char                *request_id,
         gint                       from_index,
         ExoTensor                 *tensor,
         const ExoGenerationParams *params)
{
  NodeShardAssignment *next = next_shard (self, from_index);

  if (next == NULL)
    {
      g_autoptr(GError) error = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                                                     "the ring is empty");
      local_failure (self, request_id, params, "forwarding", error);
      return;
    }
  if (g_strcmp0 (next->node_id, self->node_id) == 0)
    run_infer (self, request_id, shard_for (self, next), tensor, params);
  else
    send_to (self, request_id, next, tensor, NULL, params);
}

typedef struct {
  ExoClusterNode *self;
  Peer           *peer;
} ResultSend;

static void
result_sent_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  ResultSend *send = user_data;
  g_autoptr(GError) error = NULL;

  if (!exo_peer_handle_send_result_finish (EXO_PEER_HANDLE (source), result, &error) &&
      send->self->running && !is_cancelled (error))
    {
      send->self->hop_failures++;
      if (send->peer->node == send->self && exo_error_is_connection_error (error))
        peer_note_failure (send->self, send->peer, error);
    }
  peer_unref (send->peer);
  g_object_unref (send->self);
  g_free (send);
}

static void
send_result (ExoClusterNode *self,
             Peer           *peer,
             const char     *request_id,
             const gint32   *tokens,
             gsize           n_tokens,
             gboolean        is_finished)
{
  ResultSend *send = g_new0 (ResultSend, 1);

  send->self = g_object_ref (self);
  send->peer = peer_ref (peer);
  self->results_sent++;
  exo_peer_handle_send_result_async (EXO_PEER_HANDLE (peer->handle), request_id, tokens,
                                     n_tokens, is_finished, self->cancellable,
                                     result_sent_cb, send);
}

/* exo's broadcast_result: every peer, and ourselves. */
static void
broadcast_result (ExoClusterNode *self,
                  const char     *request_id,
                  const gint32   *tokens,
                  gsize           n_tokens,
                  gboolean        is_finished)
{
  g_autoptr(GPtrArray) peers = g_ptr_array_new_with_free_func ((GDestroyNotify) peer_unref);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (peer_is_usable (value))
      g_ptr_array_add (peers, peer_ref (value));
  for (guint i = 0; i < peers->len; i++)
    send_result (self, g_ptr_array_index (peers, i), request_id, tokens, n_tokens, is_finished);
  handle_result (self, request_id, tokens, n_tokens, is_finished);
}

/* The tokens so far of an unfinished request, after its last token went
 * to @next_id (the first shard): to the API node (@origin) alone — not at
 * all when the API node is @next_id, for which that token is the news
 * (take_tensor()).  Without an origin (a sender built before plugin ABI
 * 3.2), or when the API node is not a usable peer, to every node. */
static void
report_tokens (ExoClusterNode *self,
               const char     *request_id,
               const char     *origin,
               const char     *next_id,
               const gint32   *tokens,
               gsize           n_tokens)
{
  Peer *peer;

  if (origin != NULL && g_strcmp0 (origin, self->node_id) == 0)
    handle_result (self, request_id, tokens, n_tokens, FALSE);
  else if (origin != NULL && g_strcmp0 (origin, next_id) == 0)
    self->results_skipped++;
  else if (origin != NULL && (peer = lookup_usable_peer (self, origin)) != NULL)
    send_result (self, peer, request_id, tokens, n_tokens, FALSE);
  else
    broadcast_result (self, request_id, tokens, n_tokens, FALSE);
}

static gint32
tensor_first_int (ExoTensor *x)
{
  const void *data = exo_tensor_peek_data (x);

  if (exo_tensor_get_n_elements (x) == 0)
    return -1;
  switch (exo_tensor_get_dtype (x))
    {
    case EXO_DTYPE_INT32:
      return ((const gint32 *) data)[0];
    case EXO_DTYPE_INT64:
      return (gint32) ((const gint64 *) data)[0];
    case EXO_DTYPE_FLOAT32:
      return (gint32) ((const float *) data)[0];
    case EXO_DTYPE_FLOAT16:
    default:
      return -1;
    }
}

/* exo's process_inference_result; @params came with the work. */
static void
process_inference_result (ExoClusterNode            *self,
                          const char                *request_id,
                          const ExoShard            *shard,
                          ExoTensor                 *output,
                          const ExoGenerationParams *params)
{
  gint index = node_partition_find_shard (self->shards, self->node_id);

  if (exo_shard_is_last_layer (shard))
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(ExoTensor) token = NULL;
      g_autoptr(GArray) tokens = NULL;
      g_autoptr(ExoGenerationParams) used = NULL;
      g_autofree char *next_id = NULL;
      NodeShardAssignment *next;
      gboolean report_first;
      Request *req;
      gint32 value;
      gboolean finished;

      req = request_ensure (self, request_id);
      if (req == NULL)
        {
          self->dropped_messages++;
          return;
        }
      /* The first parameters seen for the request rule, whatever later
       * tensors say.  The engine keeps the request's random state, seeded
       * from its seed at the first token (an engine without
       * sample_for_request samples without it). */
      used = exo_generation_params_copy (request_params (req, params));
      token = exo_inference_engine_sample_for_request (self->engine, request_id, output,
                                                       used->temperature, used->top_p,
                                                       used->seed, used->has_seed, &error);
      if (token == NULL)
        {
          gboolean drop = !req->is_api && req->tokens->len == 0;

          local_failure (self, request_id, used, "sampling", error);
          /* The record was made for this token: it ends here. */
          if (drop)
            g_hash_table_remove (self->requests, request_id);
          return;
        }
      value = tensor_first_int (token);
      finished = value == exo_inference_engine_get_eos_token (self->engine);
      if (!finished)
        {
          g_array_append_val (req->tokens, value);
          self->tokens_generated++;
        }
      if (req->tokens->len >= max_tokens_for (self, used))
        finished = TRUE;

      tokens = g_array_ref (req->tokens);
      if (finished && !req->is_api)
        g_hash_table_remove (self->requests, request_id);
      if (finished)
        {
          /* every node of the ring hears the end: its part is done */
          broadcast_result (self, request_id, (const gint32 *) (void *) tokens->data, tokens->len,
                            TRUE);
          return;
        }
      /* An API node that is neither us nor the first shard hears of the
       * token before the first shard gets it: a failure the first shard
       * tells it of (its context full) comes after the token, not before.
       * (The id is copied: sending may fail a peer and change the ring.) */
      next = next_shard (self, index);
      next_id = next != NULL ? g_strdup (next->node_id) : NULL;
      report_first = next_id != NULL && used->origin != NULL &&
                     g_strcmp0 (used->origin, self->node_id) != 0 &&
                     g_strcmp0 (used->origin, next_id) != 0;
      if (report_first)
        report_tokens (self, request_id, used->origin, next_id,
                       (const gint32 *) (void *) tokens->data, tokens->len);
      forward (self, request_id, index, token, used);
      if (next_id != NULL && !report_first)
        report_tokens (self, request_id, used->origin, next_id,
                       (const gint32 *) (void *) tokens->data, tokens->len);
    }
  else
    forward (self, request_id, index, output, params_to_pass_on (self, request_id, params));
}

/* What our layers gave for @work: the next hop, or the failure. */
static void
infer_done (Work      *work,
            ExoTensor *output,
            GError    *error)
{
  if (!work_is_current (work))
    return;
  if (output == NULL && work->shard->start_layer > 0 &&
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT))
    {
      /* Our layers refused what a peer computed, not what the user sent:
       * the ring's fault (a 500, not a 400), most likely nodes that run
       * different checkpoints under one model id. */
      g_autoptr(GError) ring = g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED,
                                            "%s (the activations came from the previous node "
                                            "of the ring: do its nodes run the same checkpoint?)",
                                            error->message);

      local_failure (work->self, work->request_id, work->params, "inference", ring);
    }
  else if (output == NULL)
    local_failure (work->self, work->request_id, work->params, "inference", error);
  else
    {
      Request *req = request_lookup (work->self, work->request_id);

      work->self->layers_computed++;
      if (req != NULL)
        req->touched_us = g_get_monotonic_time ();
      if (!drop_if_cancelled (work->self, work->request_id))
        process_inference_result (work->self, work->request_id, work->shard, output,
                                  work->params);
    }
}

static void
infer_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Work *work = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoTensor) output = exo_inference_engine_infer_tensor_finish (EXO_INFERENCE_ENGINE (source),
                                                                          result, &error);

  infer_done (work, output, error);
  work_free (work);
}

/* Runs our layers (@shard, taken) on @input of a request with @params: at
 * once when the engine takes a small step on this thread (the next hop
 * leaves in this main-loop iteration, not the next one), else through its
 * task. */
void
run_infer (ExoClusterNode            *self,
           const char                *request_id,
           ExoShard                  *shard,
           ExoTensor                 *input,
           const ExoGenerationParams *params)
{
  Work *work = work_new (self, request_id, shard, params);
  g_autoptr(ExoTensor) output = NULL;
  g_autoptr(GError) error = NULL;

  if (exo_inference_engine_try_infer_tensor (self->engine, request_id, work->shard, input,
                                             &output, &error))
    {
      infer_done (work, output, error);
      work_free (work);
      return;
    }
  exo_inference_engine_infer_tensor_async (self->engine, request_id, shard, input,
                                           self->cancellable, infer_cb, work);
}

/* A tensor from a peer for our layers (@shard, taken): we run them; and
 * when they are the first of the ring and the request is ours to answer,
 * the tensor is the token the last shard sampled (report_tokens() sent no
 * result for it): its news goes to our caller, after the work started. */
void
take_tensor (ExoClusterNode            *self,
             const char                *request_id,
             ExoShard                  *shard,
             ExoTensor                 *tensor,
             const ExoGenerationParams *params)
{
  gboolean first = shard->start_layer == 0;
  Request *req;
  gint32 token;

  token = first ? tensor_first_int (tensor) : -1;
  request_note_origin (self, request_id, params);
  run_infer (self, request_id, shard, tensor, params);
  req = first ? request_lookup (self, request_id) : NULL;
  if (req == NULL || !req->is_api || req->task == NULL || token < 0 ||
      exo_tensor_get_n_elements (tensor) != 1)
    return;
  g_array_append_val (req->tokens, token);
  handle_result (self, request_id, (const gint32 *) (void *) req->tokens->data, req->tokens->len,
                 FALSE);
}

/* The API node has the number of tokens of request @id's prompt. */
static void
note_prompt_tokens (ExoClusterNode *self,
                    const char     *id,
                    ExoTensor      *tokens)
{
  Request *req = request_lookup (self, id);

  if (req != NULL && req->is_api && tokens != NULL)
    req->prompt_tokens = (gint64) exo_tensor_get_n_elements (tokens);
}

static void
count_prompt_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Work *work = user_data;
  g_autoptr(ExoTensor) tokens = exo_inference_engine_encode_finish (EXO_INFERENCE_ENGINE (source),
                                                                    result, NULL);

  if (work_is_current (work))
    note_prompt_tokens (work->self, work->request_id, tokens);
  work_free (work);
}

/* The API node of request @id, not the first shard, counts its prompt's
 * tokens with its own engine (same model, same tokenizer). */
void
count_prompt (ExoClusterNode *self,
              const char     *id,
              const char     *prompt)
{
  NodeShardAssignment *first = g_ptr_array_index (self->shards, 0);
  Work *work = work_new (self, id, shard_for (self, first), NULL);

  exo_inference_engine_encode_async (self->engine, work->shard, prompt, self->cancellable,
                                     count_prompt_cb, work);
}

static void
encode_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Work *work = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoTensor) tokens = exo_inference_engine_encode_finish (EXO_INFERENCE_ENGINE (source),
                                                                    result, &error);

  if (work_is_current (work))
    {
      if (tokens == NULL)
        local_failure (work->self, work->request_id, work->params, "encoding the prompt", error);
      else if ((note_prompt_tokens (work->self, work->request_id, tokens),
                !drop_if_cancelled (work->self, work->request_id)))
        run_infer (work->self, work->request_id, g_steal_pointer (&work->shard), tokens,
                   work->params);
    }
  work_free (work);
}

/* exo's process_prompt: the first shard encodes and runs; anyone else
 * forwards the prompt (with @params) to the node of the first shard. */
void
start_prompt (ExoClusterNode            *self,
              const char                *request_id,
              const char                *prompt,
              const ExoGenerationParams *params)
{
  NodeShardAssignment *first;

  if (drop_if_cancelled (self, request_id))
    return;
  if (self->shards == NULL || self->shards->len == 0)
    {
      g_autoptr(GError) error = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                                                     "the ring is empty");
      local_failure (self, request_id, params, "processing the prompt", error);
      return;
    }
  first = g_ptr_array_index (self->shards, 0);
  params = params_to_pass_on (self, request_id, params);
  if (g_strcmp0 (first->node_id, self->node_id) == 0)
    {
      request_note_origin (self, request_id, params);
      Work *work = work_new (self, request_id, shard_for (self, first), params);

      exo_inference_engine_encode_async (self->engine, work->shard, prompt, self->cancellable,
                                         encode_cb, work);
    }
  else
    send_to (self, request_id, first, NULL, prompt, params);
}
