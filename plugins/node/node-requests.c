/* node-requests.c: the records of requests and their callers.
 *
 * Owns the request records (self->requests: request id → Request, at most
 * MAX_REQUESTS; the struct is in node-private.h because node-work.c reads
 * and fills them) and the ids of cancelled requests (self->cancelled and
 * self->cancelled_order: the last MAX_REQUESTS).  The work of a request on
 * this node (prompts, tensors, sampling, forwarding) is node-work.c's; this
 * file keeps the books, as exo does:
 *
 * - Records: the API node (where chat_async was called, request_start())
 *   keeps one with its caller's task, the token callback, the text so far
 *   and the ring the request started with.  The last shard keeps one with
 *   the tokens it sampled, from the first token on (request_ensure(),
 *   called by node-work.c), until the request ends (or requests_gc() finds
 *   it untouched for twice request-timeout-ms, at least 2 s).  A record
 *   keeps the first generation parameters seen for its request and sends
 *   those on (request_params(), params_to_pass_on()); a node without one
 *   passes on what it got.
 * - Results: handle_result() gives the API node's caller the new tokens,
 *   decoded, and answers it with an ExoChatResult when the request is
 *   finished (request_complete()).  With the request's stop strings
 *   (ExoGenerationParams.stop) it holds back text that may start one, and
 *   the first one the text contains ends the request there: the text
 *   before it is the answer ("stop"), and the ring is told to cancel.
 * - Failures: the API node fails its request with an error that names the
 *   node and its layers when a node of its ring is lost
 *   (fail_requests_using()), or after request-timeout-ms without progress
 *   (one GSource per request, its ready time moved at each token);
 *   node-work.c fails it through request_fail() when sending to the next
 *   hop or work here fails.
 * - Others' requests: a node that runs work of another node's request
 *   remembers which node is its API node (self->origins, from the params'
 *   origin, at most MAX_ORIGINS); when that node fails or leaves, the
 *   request ends here at once (end_requests_of(): engine state freed,
 *   late work dropped) instead of waiting for the engine's session
 *   timeout, since nobody is left to end it.
 * - Cancellation: a request the API node abandons (its caller's
 *   cancellable fired, or it failed) is remembered as cancelled and every
 *   other node of its ring is told, best effort (request_abandon()); each
 *   node drops the work of a cancelled request that reaches it
 *   (drop_if_cancelled(), asked by node-work.c and node-role.c).
 *
 * Rules: the node's main context only; no threads, no locks.  A Request's
 * `self` is not a reference (the table is the node's); its timeout source
 * and cancel idle go with it (request_free()), and do_cleanup answers
 * every caller and drops the table (requests_close()), so none outlives
 * the run.  CancelSend only counts and logs, while `self->running`.
 * Re-entrancy: answering a caller (request_complete()) may run its
 * callback at once, and the token callback runs within handle_result();
 * either may call back into the node (end this request, start another).
 * So a record leaves the table before its caller is answered,
 * handle_result() looks the request up again after the token callback,
 * loops that fail requests collect them first, and a caller's cancellable
 * is acted on from an idle, not within its emission.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "node-private.h"

#include "exo-plugin-util.h"

/* --- requests ------------------------------------------------------------ */

/* How long the API node of a request whose context is full waits for a
 * result still in flight before it answers "length". */
#define CONTEXT_FULL_GRACE_MS 100
/* Others' requests whose API node is remembered (request_note_origin()). */
#define MAX_ORIGINS           4096

void
request_free (Request *req)
{
  if (req->timeout != NULL)
    {
      g_source_destroy (req->timeout);
      g_clear_pointer (&req->timeout, g_source_unref);
    }
  g_clear_handle_id (&req->cancel_idle, g_source_remove);
  g_clear_handle_id (&req->context_full_grace, g_source_remove);
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
void
engine_end_request (ExoClusterNode *self,
                    const char     *id)
{
  if (self->engine != NULL && id != NULL)
    exo_inference_engine_end_request (self->engine, id);
  if (self->origins != NULL && id != NULL)
    g_hash_table_remove (self->origins, id);
}

/* --- others' requests whose API node goes -------------------------------- */

static void remember_cancelled (ExoClusterNode *self,
                                const char     *id);

/* Work of another node's request (@params' origin) runs here: which node
 * that is, so that its end comes when that node goes (end_requests_of()),
 * not after the engine's session timeout.  At most MAX_ORIGINS requests
 * are remembered (then the session timeout alone frees the rest). */
typedef struct
{
  char   *node_id;      /* the API node */
  gint64  touched_us;   /* the last work of the request here */
} Origin;

void
origin_free (gpointer data)
{
  Origin *origin = data;

  g_free (origin->node_id);
  g_free (origin);
}

void
request_note_origin (ExoClusterNode            *self,
                     const char                *request_id,
                     const ExoGenerationParams *params)
{
  Origin *origin;

  if (self->origins == NULL || request_id == NULL || params == NULL || params->origin == NULL ||
      g_strcmp0 (params->origin, self->node_id) == 0)
    return;
  origin = g_hash_table_lookup (self->origins, request_id);
  if (origin == NULL)
    {
      if (g_hash_table_size (self->origins) >= MAX_ORIGINS)
        return;
      origin = g_new0 (Origin, 1);
      origin->node_id = g_strdup (params->origin);
      g_hash_table_insert (self->origins, g_strdup (request_id), origin);
    }
  origin->touched_us = g_get_monotonic_time ();
}

/* @node_id failed or left: the requests it was the API node of end here —
 * nobody is left to hear their tokens or to end them.  Their KV caches are
 * freed now, and late work for them is dropped. */
/* The work of request @id on this node ends: it is remembered as
 * cancelled (late work for it is dropped), the engine frees its state and
 * the last shard's record goes.  Returns the record when we are its API
 * node (the caller answers it), else NULL. */
static Request *
end_work_here (ExoClusterNode *self,
               const char     *id)
{
  Request *req;

  remember_cancelled (self, id);
  engine_end_request (self, id);
  req = request_lookup (self, id);
  if (req != NULL && !req->is_api)
    {
      g_hash_table_remove (self->requests, id);   /* the last shard's tokens */
      return NULL;
    }
  return req;
}

void
end_requests_of (ExoClusterNode *self,
                 const char     *node_id)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key, value;

  if (self->origins == NULL)
    return;
  g_hash_table_iter_init (&iter, self->origins);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (g_str_equal (((Origin *) value)->node_id, node_id))
      g_ptr_array_add (ids, g_strdup (key));
  for (guint i = 0; i < ids->len; i++)
    {
      end_work_here (self, g_ptr_array_index (ids, i));
      self->orphans_ended++;
    }
  if (ids->len > 0)
    log_event (self, G_LOG_LEVEL_INFO, "%u request(s) of %s ended here: their API node is gone",
               ids->len, node_id);
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
Request *
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
const ExoGenerationParams *
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
const ExoGenerationParams *
params_to_pass_on (ExoClusterNode            *self,
                   const char                *request_id,
                   const ExoGenerationParams *params)
{
  Request *req = request_lookup (self, request_id);

  return req != NULL ? request_params (req, params) : params;
}

/* Tokens generated at most for a request with @params. */
guint
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
  /* A request that failed, or that a stop string ended while its ring
   * still generates, is cancelled on every node of the ring. */
  if ((error != NULL || req->stopped || req->context_full) && req->is_api && self->running)
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
          /* "length" when the answer has as many tokens as the request
           * could have (the last shard stopped at that count, not at EOS
           * or a stop string) */
          guint limit = max_tokens_for (self, request_params (req, NULL));

          g_task_return_pointer (task,
                                 exo_chat_result_new (req->text->str,
                                                      req->context_full ||
                                                      (req->delivered >= limit && !req->stopped)
                                                      ? "length" : "stop",
                                                      req->prompt_tokens, (gint64) req->delivered),
                                 (GDestroyNotify) exo_chat_result_free);
        }
      g_object_unref (task);
    }
  else if (error != NULL)
    g_error_free (error);
  request_free (req);
}

static gboolean
context_full_grace_cb (gpointer user_data)
{
  Request *req = user_data;

  req->context_full_grace = 0;
  request_complete (req->self, req, NULL);
  return G_SOURCE_REMOVE;
}

void
request_fail (ExoClusterNode *self,
              Request        *req,
              GError         *error)
{
  /* The context of an engine of the ring is full (G_IO_ERROR_MESSAGE_TOO_LARGE,
   * here or told by a peer): the answer so far, finished for "length", as
   * OpenAI ends a generation at the model's context; the ring drops it.
   * The last token's result may still be on its way from the last shard
   * (sent before the token went to the first shard, whose engine found the
   * context full and told us by another path): it is awaited a moment. */
  if (req->is_api && (req->context_full ||
                      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE)))
    {
      if (!req->context_full)
        {
          log_event (self, G_LOG_LEVEL_INFO, "%s: the answer so far, finish reason \"length\"",
                     error->message);
          req->context_full = TRUE;
          req->context_full_grace = g_timeout_add (CONTEXT_FULL_GRACE_MS, context_full_grace_cb,
                                                   req);
        }
      g_error_free (error);
      return;
    }
  request_complete (self, req, error);
}

static gboolean
request_timeout_cb (gpointer user_data)
{
  Request *req = user_data;
  ExoClusterNode *self = req->self;
  gint64 deadline = req->last_progress_us + (gint64) self->request_timeout_ms * 1000;
  g_autofree char *ring = NULL;

  /* progress since it was set: on to the deadline of the last progress */
  if (g_get_monotonic_time () < deadline)
    {
      g_source_set_ready_time (req->timeout, deadline);
      return G_SOURCE_CONTINUE;
    }
  ring = node_partition_shards_to_string (req->ring);
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
  /* Set once, not moved at each token: a new ready time wakes the main
   * loop (GLib signals its context's eventfd), a syscall and a loop
   * iteration a token; the timer looks at the last progress when it fires
   * (request_timeout_cb). */
  if (req->timeout == NULL)
    {
      req->timeout = exo_plugin_ready_time_source_new (request_timeout_cb, req,
                                                       "[exo-node] request timeout");
      g_source_set_ready_time (req->timeout, req->last_progress_us +
                                             (gint64) self->request_timeout_ms * 1000);
    }
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
  /* the last shard tells us alone the tokens (docs/cluster-protocol.md);
   * an id too long to carry leaves it to broadcast them */
  if (!exo_generation_params_set_origin (req->params, self->node_id, NULL))
    exo_generation_params_set_origin (req->params, NULL, NULL);
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
  req = end_work_here (self, request_id);
  if (req != NULL && req->task != NULL)
    request_fail (self, req, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                          "request %s: cancelled by a peer", request_id));
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
  /* others' requests with no work here for as long: their end went
   * elsewhere (or the engine's session timeout freed them) */
  if (self->origins != NULL)
    {
      g_hash_table_iter_init (&iter, self->origins);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (now - ((Origin *) value)->touched_us > limit)
          g_hash_table_iter_remove (&iter);
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
  g_clear_pointer (&self->origins, g_hash_table_unref);
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

/* --- stop strings -------------------------------------------------------- */

/* The first stop string in @text at or after @from: where it starts, or
 * -1.  (None can start before @from: stop_hold() kept back every byte
 * from where one might start.) */
static gssize
stop_find (const GString      *text,
           gsize               from,
           const char * const *stop)
{
  gssize found = -1;

  for (guint i = 0; stop[i] != NULL; i++)
    {
      const char *at = g_strstr_len (text->str + from, (gssize) (text->len - from), stop[i]);

      if (at != NULL && (found < 0 || at - text->str < found))
        found = at - text->str;
    }
  return found;
}

/* How many bytes at the end of @text (after @from) may be the start of a
 * stop string: the longest such end. */
static gsize
stop_hold (const GString      *text,
           gsize               from,
           const char * const *stop)
{
  gsize hold = 0;

  for (guint i = 0; stop[i] != NULL; i++)
    {
      gsize len = strlen (stop[i]);

      for (gsize n = MIN (len - 1, text->len - from); n > hold; n--)
        if (memcmp (text->str + text->len - n, stop[i], n) == 0)
          {
            hold = n;
            break;
          }
    }
  return hold;
}

/* exo's on_token: the API node passes new tokens to its caller.  With stop
 * strings, the text the caller gets lags behind the tokens by what may be
 * the start of one; a stop string ends the request (answered "stop", its
 * ring told to cancel: request_complete()). */
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
      const char * const *stop = req->params != NULL ? (const char * const *) req->params->stop
                                                     : NULL;
      g_autofree char *text = NULL;
      gsize end;

      if (n_new > 0)
        {
          g_autoptr(ExoTensor) t = exo_tensor_new_int32 (fresh, n_new);
          g_autoptr(ExoShard) shard = exo_shard_new (self->model_id, 0, self->n_layers - 1,
                                                     self->n_layers);
          g_autoptr(GError) error = NULL;
          char *decoded = exo_inference_engine_decode (self->engine, shard, t, &error);

          if (decoded == NULL)
            {
              request_fail (self, req,
                            g_error_new (error->domain, error->code,
                                         "request %s: decoding failed: %s", id, error->message));
              return;
            }
          g_string_append (req->text, decoded);
          g_free (decoded);
          req->delivered = n_tokens;
        }
      end = req->text->len;
      if (stop != NULL && stop[0] != NULL)
        {
          gssize at = stop_find (req->text, req->sent, stop);

          if (at >= 0)
            {
              g_string_truncate (req->text, (gsize) at);
              end = (gsize) at;
              req->stopped = TRUE;
              is_finished = TRUE;
            }
          else if (!is_finished)
            end -= stop_hold (req->text, req->sent, stop);
        }
      text = g_strndup (req->text->str + req->sent, end - req->sent);
      req->sent = end;
      if (req->on_token != NULL)
        req->on_token (id, fresh, n_new, text, is_finished, req->token_data);
    }

  /* The callback may have ended the request. */
  req = request_lookup (self, id);
  if (req != NULL && is_finished && req->task != NULL)
    request_complete (self, req, NULL);
}
