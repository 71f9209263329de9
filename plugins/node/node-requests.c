/* node-requests.c: requests through the ring.
 *
 * Owns the request records (self->requests: request id → Request, at most
 * MAX_REQUESTS), the ids of cancelled requests (self->cancelled and
 * self->cancelled_order: the last MAX_REQUESTS), and the work of a request
 * on this node, done as exo does it:
 *
 * - Prompt: start_prompt(): the node of the first shard encodes the
 *   prompt and runs its layers; any other node sends the prompt there.
 * - Tensors: each node runs its layers (run_infer()) and forwards the
 *   output to the next node of the ring (forward(), send_to()); the last
 *   shard samples a token, broadcasts the tokens so far to every peer and
 *   to itself (broadcast_result()), and feeds the token back to the first
 *   shard, until EOS or max tokens.
 * - Records: the API node (where chat_async was called, request_start())
 *   keeps one with its caller's task, the token callback, the text so far
 *   and the ring the request started with.  The last shard keeps one with
 *   the tokens it sampled, from the first token on, until the request ends
 *   (or requests_gc() finds it untouched for twice request-timeout-ms, at
 *   least 2 s).  A record keeps the first generation parameters seen for
 *   its request and sends those on; a node without one passes on what it
 *   got.
 * - Results: handle_result() gives the API node's caller the new tokens,
 *   decoded, and answers it with the text when the request is finished.
 * - Failures: the API node fails its request with an error that names the
 *   node and its layers when a node of its ring is lost
 *   (fail_requests_using()), when sending to the next hop fails
 *   (hop_failed(); a connection error also fails that peer), when work
 *   here fails (local_failure()), or after request-timeout-ms without
 *   progress (one GSource per request, its ready time moved at each
 *   token).  Other nodes count the failure and log it.
 * - Cancellation: a request the API node abandons (its caller's
 *   cancellable fired, or it failed) is remembered as cancelled and every
 *   other node of its ring is told, best effort (request_abandon()); each
 *   node drops the work of a cancelled request that reaches it (a prompt,
 *   a tensor, an inference that completes).
 *
 * Rules: the node's main context only; no threads, no locks.  A Request's
 * `self` is not a reference (the table is the node's); its timeout source
 * and cancel idle go with it (request_free()), and do_cleanup answers
 * every caller and drops the table (requests_close()), so none outlives
 * the run.  Work and Hop hold a reference on the node and the generation
 * they started in; their callbacks act only while `self->running &&
 * generation == self->generation`.  CancelSend and ResultSend only count
 * and log, while `self->running`.  Re-entrancy: answering a caller
 * (request_complete()) may run its callback at once, and the token
 * callback runs within handle_result(); either may call back into the
 * node (end this request, start another).  So a record leaves the table
 * before its caller is answered, handle_result() looks the request up
 * again after the token callback, loops that fail requests collect them
 * first, and a caller's cancellable is acted on from an idle, not within
 * its emission.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "node-private.h"

/* --- requests ------------------------------------------------------------ */

struct _Request
{
  ExoClusterNode *self;          /* not a reference: the table is the node's */
  char           *id;
  gint64          touched_us;
  GArray         *tokens;        /* gint32: sampled here (last shard) */
  ExoGenerationParams *params;   /* the first ones seen; NULL until then */

  /* the API node */
  gboolean        is_api;
  GTask          *task;
  ExoTokenFunc    on_token;
  gpointer        token_data;
  gsize           delivered;
  GString        *text;
  GPtrArray      *ring;          /* NodeShardAssignment: the ring at the start */
  GSource        *timeout;       /* no progress for request-timeout-ms (moved, not remade) */
  guint           cancel_idle;
  GCancellable   *cancellable;
  gulong          cancel_handler;
  gint64          started_us;
  gint64          last_progress_us;
  gint64          prompt_tokens; /* the prompt's tokens; -1 until encoded */
};

void
request_free (Request *req)
{
  if (req->timeout != NULL)
    {
      g_source_destroy (req->timeout);
      g_clear_pointer (&req->timeout, g_source_unref);
    }
  g_clear_handle_id (&req->cancel_idle, g_source_remove);
  if (req->cancellable != NULL)
    {
      g_cancellable_disconnect (req->cancellable, req->cancel_handler);
      g_object_unref (req->cancellable);
    }
  if (req->task != NULL)
    {
      /* Never leave a caller without an answer. */
      if (!g_task_had_error (req->task) && !g_task_get_completed (req->task))
        g_task_return_new_error (req->task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED,
                                 "request %s: dropped", req->id);
      g_object_unref (req->task);
    }
  g_clear_pointer (&req->tokens, g_array_unref);
  g_clear_pointer (&req->params, exo_generation_params_free);
  g_clear_pointer (&req->ring, g_ptr_array_unref);
  if (req->text != NULL)
    g_string_free (req->text, TRUE);
  g_free (req->id);
  g_free (req);
}

Request *
request_lookup (ExoClusterNode *self,
                const char     *id)
{
  return self->requests != NULL && id != NULL ? g_hash_table_lookup (self->requests, id) : NULL;
}

/* @id is over on this node (finished, failed, cancelled or timed out):
 * the engine frees what it keeps of it (KV cache, random state).  Safe to
 * call more than once and for an id the engine never saw (it then refuses
 * late work of it). */
static void
engine_end_request (ExoClusterNode *self,
                    const char     *id)
{
  if (self->engine != NULL && id != NULL)
    exo_inference_engine_end_request (self->engine, id);
}

/* --- cancelled requests -------------------------------------------------- */

static gboolean
request_is_cancelled (ExoClusterNode *self,
                      const char     *id)
{
  return id != NULL && g_hash_table_contains (self->cancelled, id);
}

static void
remember_cancelled (ExoClusterNode *self,
                    const char     *id)
{
  char *copy;

  if (id == NULL || g_hash_table_contains (self->cancelled, id))
    return;
  while (self->cancelled_order.length >= MAX_REQUESTS)
    {
      char *oldest = g_queue_pop_head (&self->cancelled_order);

      g_hash_table_remove (self->cancelled, oldest);
      g_free (oldest);
    }
  copy = g_strdup (id);
  g_queue_push_tail (&self->cancelled_order, copy);
  g_hash_table_add (self->cancelled, copy);
}

/* Work of a cancelled request reached this node: it stops here. */
gboolean
drop_if_cancelled (ExoClusterNode *self,
                   const char     *id)
{
  if (!request_is_cancelled (self, id))
    return FALSE;
  self->cancelled_dropped++;
  return TRUE;
}

typedef struct {
  ExoClusterNode *self;
  Peer           *peer;
} CancelSend;

static void
cancel_sent_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  CancelSend *send = user_data;
  g_autoptr(GError) error = NULL;

  /* Best effort: a peer that misses it drops nothing, and its work ends
   * with the request's tokens at max-tokens or EOS as before. */
  if (!exo_peer_handle_send_cancel_finish (EXO_PEER_HANDLE (source), result, &error) &&
      send->self->running && !is_cancelled (error))
    log_event (send->self, G_LOG_LEVEL_INFO, "telling node %s to cancel a request failed: %s",
               send->peer->node_id, error->message);
  peer_unref (send->peer);
  g_object_unref (send->self);
  g_free (send);
}

/* The API node gives up @req: this node and every other node of its ring
 * drop what of it is still under way. */
static void
request_abandon (ExoClusterNode *self,
                 Request        *req)
{
  remember_cancelled (self, req->id);
  for (guint i = 0; req->ring != NULL && i < req->ring->len; i++)
    {
      NodeShardAssignment *s = g_ptr_array_index (req->ring, i);
      Peer *peer;
      CancelSend *send;

      if (g_strcmp0 (s->node_id, self->node_id) == 0 ||
          (peer = lookup_usable_peer (self, s->node_id)) == NULL)
        continue;
      send = g_new0 (CancelSend, 1);
      send->self = g_object_ref (self);
      send->peer = peer_ref (peer);
      self->cancels_sent++;
      exo_peer_handle_send_cancel_async (EXO_PEER_HANDLE (peer->handle), req->id,
                                         self->cancellable, cancel_sent_cb, send);
    }
}

/* The entry the last shard keeps its tokens in; NULL over the limit. */
static Request *
request_ensure (ExoClusterNode *self,
                const char     *id)
{
  Request *req = request_lookup (self, id);

  if (req == NULL)
    {
      if (g_hash_table_size (self->requests) >= MAX_REQUESTS)
        return NULL;
      req = g_new0 (Request, 1);
      req->self = self;
      req->id = g_strdup (id);
      req->tokens = g_array_new (FALSE, FALSE, sizeof (gint32));
      g_hash_table_insert (self->requests, req->id, req);
    }
  req->touched_us = g_get_monotonic_time ();
  return req;
}

/* The parameters @req is generated with: the first ones seen for it
 * (@params, NULL for the defaults, when it had none yet). */
static const ExoGenerationParams *
request_params (Request                   *req,
                const ExoGenerationParams *params)
{
  if (req->params == NULL)
    req->params = params != NULL ? exo_generation_params_copy (params)
                                 : exo_generation_params_new ();
  return req->params;
}

/* What goes on with the work of @request_id that came with @params: the
 * parameters of its record if this node keeps one, else @params. */
static const ExoGenerationParams *
params_to_pass_on (ExoClusterNode            *self,
                   const char                *request_id,
                   const ExoGenerationParams *params)
{
  Request *req = request_lookup (self, request_id);

  return req != NULL ? request_params (req, params) : params;
}

/* Tokens generated at most for a request with @params. */
static guint
max_tokens_for (ExoClusterNode            *self,
                const ExoGenerationParams *params)
{
  if (params->max_tokens > 0)
    return MIN (params->max_tokens, self->max_tokens);
  return self->max_tokens;
}

/* Takes @req out of the table, then answers its caller. */
static void
request_complete (ExoClusterNode *self,
                  Request        *req,
                  GError         *error)
{
  GTask *task = g_steal_pointer (&req->task);

  g_hash_table_steal (self->requests, req->id);
  engine_end_request (self, req->id);
  if (error != NULL && req->is_api && self->running)
    request_abandon (self, req);
  if (task != NULL)
    {
      if (error != NULL)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            {
              self->failed_requests++;
              log_event (self, G_LOG_LEVEL_MESSAGE, "%s", error->message);
            }
          g_task_return_error (task, error);
        }
      else
        {
          /* read by chat_get_prompt_tokens (node-role.c): the count + 1 */
          g_task_set_task_data (task, GSIZE_TO_POINTER ((gsize) (req->prompt_tokens + 1)), NULL);
          g_task_return_pointer (task, g_strdup (req->text->str), g_free);
        }
      g_object_unref (task);
    }
  else if (error != NULL)
    g_error_free (error);
  request_free (req);
}

static void
request_fail (ExoClusterNode *self,
              Request        *req,
              GError         *error)
{
  request_complete (self, req, error);
}

static gboolean
ready_time_dispatch (GSource     *source,
                     GSourceFunc  callback,
                     gpointer     user_data)
{
  return callback (user_data);
}

/* A source that fires at the ready time it is given: moved at each token
 * instead of a timer made and destroyed per token. */
static GSourceFuncs ready_time_funcs = {
  .dispatch = ready_time_dispatch,
};

static gboolean
request_timeout_cb (gpointer user_data)
{
  Request *req = user_data;
  ExoClusterNode *self = req->self;
  g_autofree char *ring = node_partition_shards_to_string (req->ring);

  g_clear_pointer (&req->timeout, g_source_unref);
  request_fail (self, req,
                g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                             "request %s: no progress for %u ms (ring %s); giving up",
                             req->id, self->request_timeout_ms, ring));
  return G_SOURCE_REMOVE;
}

static void
request_progress (ExoClusterNode *self,
                  Request        *req)
{
  req->last_progress_us = g_get_monotonic_time ();
  req->touched_us = req->last_progress_us;
  if (self->request_timeout_ms == 0)
    return;
  if (req->timeout == NULL)
    {
      req->timeout = g_source_new (&ready_time_funcs, sizeof (GSource));
      g_source_set_callback (req->timeout, request_timeout_cb, req, NULL);
      g_source_set_static_name (req->timeout, "[exo-node] request timeout");
      g_source_attach (req->timeout, g_main_context_get_thread_default ());
    }
  g_source_set_ready_time (req->timeout, req->last_progress_us +
                                         (gint64) self->request_timeout_ms * 1000);
}

static gboolean
request_cancel_idle (gpointer user_data)
{
  Request *req = user_data;

  req->cancel_idle = 0;
  request_fail (req->self, req,
                g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, "request %s: cancelled", req->id));
  return G_SOURCE_REMOVE;
}

static void
request_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  Request *req = user_data;

  /* Not from within the cancellable's emission: from an idle. */
  if (req->cancel_idle == 0)
    req->cancel_idle = g_idle_add (request_cancel_idle, req);
}

static void count_prompt (ExoClusterNode *self, const char *id, const char *prompt);

/* The API node starts request @id (chat_async, checked): a record with
 * its caller (@task, taken) and the ring as it is, then the prompt. */
void
request_start (ExoClusterNode            *self,
               const char                *id,
               const char                *prompt,
               const ExoGenerationParams *params,
               ExoTokenFunc               on_token,
               gpointer                   token_data,
               GCancellable              *cancellable,
               GTask                     *task)
{
  Request *req;

  self->requests_total++;
  req = request_ensure (self, id);
  req->is_api = TRUE;
  request_params (req, params);
  req->task = task;
  req->on_token = on_token;
  req->token_data = token_data;
  req->text = g_string_new (NULL);
  req->ring = copy_shards (self->shards);
  req->started_us = g_get_monotonic_time ();
  req->prompt_tokens = -1;
  request_progress (self, req);
  if (cancellable != NULL)
    {
      req->cancellable = g_object_ref (cancellable);
      req->cancel_handler = g_cancellable_connect (cancellable, G_CALLBACK (request_cancelled),
                                                   req, NULL);
    }
  start_prompt (self, id, prompt, req->params);
  /* The first shard's encode_cb counts the prompt's tokens when that is
   * us; else our engine (same model, same tokenizer) counts them. */
  if (self->shards != NULL && self->shards->len > 0 && self->engine != NULL &&
      (req = request_lookup (self, id)) != NULL && req->prompt_tokens < 0)
    {
      NodeShardAssignment *first = g_ptr_array_index (self->shards, 0);

      if (g_strcmp0 (first->node_id, self->node_id) != 0)
        count_prompt (self, id, prompt);
    }
}

/* A peer (the API node of @request_id) abandoned it. */
void
request_cancel_from_peer (ExoClusterNode *self,
                          const char     *request_id)
{
  Request *req;

  self->cancels_received++;
  remember_cancelled (self, request_id);
  engine_end_request (self, request_id);
  req = request_lookup (self, request_id);
  if (req == NULL)
    return;
  if (req->is_api && req->task != NULL)
    request_fail (self, req, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                          "request %s: cancelled by a peer", request_id));
  else if (!req->is_api)
    g_hash_table_remove (self->requests, request_id);   /* the last shard's tokens */
}

/* A node of the ring is gone: every request of ours that needs it fails. */
void
fail_requests_using (ExoClusterNode *self,
                     const char     *node_id,
                     const GError   *error)
{
  g_autoptr(GPtrArray) doomed = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  if (self->requests == NULL)
    return;
  g_hash_table_iter_init (&iter, self->requests);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Request *req = value;

      if (req->is_api && req->task != NULL && ring_find (req->ring, node_id) != NULL)
        g_ptr_array_add (doomed, req);
    }
  for (guint i = 0; i < doomed->len; i++)
    {
      Request *req = g_ptr_array_index (doomed, i);
      NodeShardAssignment *s = ring_find (req->ring, node_id);

      request_fail (self, req,
                    g_error_new (G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE,
                                 "request %s: node %s (next hop for layers %u-%u) is unreachable: %s",
                                 req->id, node_id, s->start_layer, s->end_layer,
                                 error != NULL ? error->message : "lost"));
    }
}

void
requests_gc (ExoClusterNode *self,
             gint64          now)
{
  g_autoptr(GPtrArray) stale = g_ptr_array_new ();
  gint64 limit = (gint64) MAX (self->request_timeout_ms, 1000u) * 2 * 1000;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->requests);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Request *req = value;

      if (!req->is_api && now - req->touched_us > limit)
        g_ptr_array_add (stale, req);
    }
  for (guint i = 0; i < stale->len; i++)
    {
      Request *req = g_ptr_array_index (stale, i);

      engine_end_request (self, req->id);
      g_hash_table_remove (self->requests, req->id);
    }
}

void
requests_close (ExoClusterNode *self)
{
  g_autoptr(GPtrArray) api = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  if (self->requests != NULL)
    {
      g_hash_table_iter_init (&iter, self->requests);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (((Request *) value)->task != NULL)
          g_ptr_array_add (api, value);
      for (guint i = 0; i < api->len; i++)
        {
          Request *req = g_ptr_array_index (api, i);

          request_fail (self, req,
                        g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED,
                                     "request %s: node %s is shutting down", req->id,
                                     self->node_id));
        }
      g_clear_pointer (&self->requests, g_hash_table_unref);
    }
}

/* The requests of our callers under way. */
guint
requests_in_flight (ExoClusterNode *self)
{
  guint in_flight = 0;
  GHashTableIter iter;
  gpointer value;

  if (self->requests != NULL)
    {
      g_hash_table_iter_init (&iter, self->requests);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (((Request *) value)->task != NULL)
          in_flight++;
    }
  return in_flight;
}

/* --- the ring at work ---------------------------------------------------- */

/* Something failed here while working on @request_id. */
static void
local_failure (ExoClusterNode *self,
               const char     *request_id,
               const char     *what,
               const GError   *error)
{
  Request *req;

  if (!self->running || is_cancelled (error))
    return;
  req = request_lookup (self, request_id);
  if (req != NULL && req->is_api && req->task != NULL)
    request_fail (self, req,
                  g_error_new (error->domain, error->code, "request %s: %s on node %s failed: %s",
                               request_id, what, self->node_id, error->message));
  else
    {
      self->dropped_messages++;
      engine_end_request (self, request_id);
      log_event (self, G_LOG_LEVEL_WARNING, "request %s: %s failed: %s", request_id, what,
                 error->message);
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
  g_free (hop);
}

static void
hop_failed (ExoClusterNode *self,
            const char     *request_id,
            const char     *target_id,
            guint           start_layer,
            guint           end_layer,
            const char     *what,
            const GError   *error)
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
    hop_failed (hop->self, hop->request_id, hop->target_id, hop->start_layer, hop->end_layer,
                hop->what, error);
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
      hop_failed (self, request_id, target->node_id, target->start_layer, target->end_layer,
                  what, error);
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
  if (prompt != NULL)
    exo_peer_handle_send_prompt_async (EXO_PEER_HANDLE (peer->handle), shard, prompt, request_id,
                                       params, self->cancellable, hop_cb, hop);
  else
    exo_peer_handle_send_tensor_async (EXO_PEER_HANDLE (peer->handle), shard, tensor, request_id,
                                       params, self->cancellable, hop_cb, hop);
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
  NodeShardAssignment *next;

  if (self->shards == NULL || self->shards->len == 0)
    {
      g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                                                     "the ring is empty");
      local_failure (self, request_id, "forwarding", error);
      return;
    }
  next = g_ptr_array_index (self->shards, from_index < 0 ? 0 : (guint) (from_index + 1) % self->shards->len);
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
    {
      Peer *peer = g_ptr_array_index (peers, i);
      ResultSend *send = g_new0 (ResultSend, 1);

      send->self = g_object_ref (self);
      send->peer = peer_ref (peer);
      exo_peer_handle_send_result_async (EXO_PEER_HANDLE (peer->handle), request_id, tokens,
                                         n_tokens, is_finished, self->cancellable,
                                         result_sent_cb, send);
    }
  handle_result (self, request_id, tokens, n_tokens, is_finished);
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

          local_failure (self, request_id, "sampling", error);
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
      if (!finished)
        forward (self, request_id, index, token, used);
      broadcast_result (self, request_id, (const gint32 *) (void *) tokens->data, tokens->len, finished);
    }
  else
    forward (self, request_id, index, output, params_to_pass_on (self, request_id, params));
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

  if (work_is_current (work))
    {
      if (output == NULL)
        local_failure (work->self, work->request_id, "inference", error);
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
  work_free (work);
}

/* Runs our layers (@shard, taken) on @input of a request with @params. */
void
run_infer (ExoClusterNode            *self,
           const char                *request_id,
           ExoShard                  *shard,
           ExoTensor                 *input,
           const ExoGenerationParams *params)
{
  Work *work = work_new (self, request_id, shard, params);

  exo_inference_engine_infer_tensor_async (self->engine, request_id, shard, input,
                                           self->cancellable, infer_cb, work);
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
static void
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
        local_failure (work->self, work->request_id, "encoding the prompt", error);
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
      g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                                                     "the ring is empty");
      local_failure (self, request_id, "processing the prompt", error);
      return;
    }
  first = g_ptr_array_index (self->shards, 0);
  params = params_to_pass_on (self, request_id, params);
  if (g_strcmp0 (first->node_id, self->node_id) == 0)
    {
      Work *work = work_new (self, request_id, shard_for (self, first), params);

      exo_inference_engine_encode_async (self->engine, work->shard, prompt, self->cancellable,
                                         encode_cb, work);
    }
  else
    send_to (self, request_id, first, NULL, prompt, params);
}

/* exo's on_token: the API node passes new tokens to its caller. */
void
handle_result (ExoClusterNode *self,
               const char     *request_id,
               const gint32   *tokens,
               gsize           n_tokens,
               gboolean        is_finished)
{
  Request *req;
  g_autofree char *id = NULL;

  /* Every node hears the end (broadcast_result): its shard of the
   * request is done. */
  if (is_finished)
    engine_end_request (self, request_id);
  req = request_lookup (self, request_id);
  if (req == NULL || !req->is_api || req->task == NULL)
    return;
  if (n_tokens <= req->delivered && !is_finished)
    return;

  id = g_strdup (request_id);
  request_progress (self, req);
  if (n_tokens > req->delivered || is_finished)
    {
      gsize n_new = n_tokens > req->delivered ? n_tokens - req->delivered : 0;
      const gint32 *fresh = tokens + req->delivered;
      g_autofree char *text = NULL;

      if (n_new > 0)
        {
          g_autoptr(ExoTensor) t = exo_tensor_new_int32 (fresh, n_new);
          g_autoptr(ExoShard) shard = exo_shard_new (self->model_id, 0, self->n_layers - 1,
                                                     self->n_layers);
          g_autoptr(GError) error = NULL;

          text = exo_inference_engine_decode (self->engine, shard, t, &error);
          if (text == NULL)
            {
              request_fail (self, req,
                            g_error_new (error->domain, error->code,
                                         "request %s: decoding failed: %s", id, error->message));
              return;
            }
          g_string_append (req->text, text);
          req->delivered = n_tokens;
        }
      if (req->on_token != NULL)
        req->on_token (id, fresh, n_new, text != NULL ? text : "", is_finished, req->token_data);
    }

  /* The callback may have ended the request. */
  req = request_lookup (self, id);
  if (req != NULL && is_finished && req->task != NULL)
    request_complete (self, req, NULL);
}
