/* http-peer-calls.c: the ExoPeerHandle calls of ExoHttpPeer.
 *
 * Owns the calls a node makes on a peer: send_prompt, send_tensor,
 * send_result, collect_topology and send_cancel (the ExoPeerHandle vtable,
 * exo_http_peer_peer_handle_init()), and the Call they share: a POST of a
 * JSON or binary body (a tensor goes raw, its shape and dtype in headers)
 * with a call id that stays the same on every attempt, so the server can
 * drop a duplicate.  Each call runs through exo_network_resource_run_async()
 * with call-timeout-ms per attempt and the retry policy; each attempt is one
 * exchange (http-peer-exchange.c), or, for tensor, result and cancel calls
 * while the peer stream is open, one frame and its answer
 * (http-peer-stream.c); a stream that closes before the answer has the
 * attempt re-sent over HTTP at once, with the same call id.
 * http-peer-private.h lists the other files.
 *
 * Rules: everything runs in the peer's main context; no locks.  The Call
 * is the call's GTask data: it lives until the runner's callback has run,
 * so an attempt (and its Attempt over the stream) may point at it.
 * A topology answer is checked to be a JSON object before it is handed on.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-peer-private.h"
#include "http-request.h"

#include <string.h>

/* --- calls --------------------------------------------------------------- */

typedef struct
{
  char    *path;
  char    *content_type;
  GBytes  *body;
  GStrv    headers;      /* name, value, name, value, …, NULL */
  char    *call_id;      /* the same on every attempt (EXO_HTTP_HEADER_CALL_ID) */
  /* over the peer stream while it is open (0: HTTP only); the frame's
   * fields (a tensor's data is @body) */
  ExoStreamType stream_type;
  char    *request_id;
  char    *shard;
  char    *dtype;
  char    *shape;
  char    *params;
  gint32  *tokens;
  gsize    n_tokens;
  gboolean is_finished;
} Call;

/* One attempt's state while it runs over the stream. */
typedef struct
{
  GTask        *task;    /* the runner's attempt task */
  Call         *call;    /* the call task's data: outlives the attempt */
  GCancellable *cancellable;
} Attempt;

static void
call_free (Call *call)
{
  g_free (call->path);
  g_free (call->content_type);
  g_bytes_unref (call->body);
  g_strfreev (call->headers);
  g_free (call->call_id);
  g_free (call->request_id);
  g_free (call->shard);
  g_free (call->dtype);
  g_free (call->shape);
  g_free (call->params);
  g_free (call->tokens);
  g_free (call);
}

static Call *
call_new_json (const char *path,
               JsonNode   *root)
{
  Call *call = g_new0 (Call, 1);
  char *json = exo_http_node_to_string (root);

  call->path = g_strdup (path);
  call->content_type = g_strdup ("application/json");
  call->body = g_bytes_new_take (json, strlen (json));
  return call;
}

static void
call_exchange_done (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;   /* the runner's attempt task (taken) */
  GError *error = NULL;
  GBytes *body = http_peer_exchange_finish (EXO_HTTP_PEER (source), result, &error);

  if (body == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, body, (GDestroyNotify) g_bytes_unref);
}

/* One attempt over HTTP: a signed POST. */
static void
call_attempt_http (ExoHttpPeer  *self,
                   Call         *call,
                   GCancellable *cancellable,
                   GTask        *task)   /* taken */
{
  g_autoptr(GError) error = NULL;
  SoupMessage *msg = http_peer_new_message (self, "POST", call->path, &error);

  if (msg == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
      return;
    }
  if (call->headers != NULL)
    {
      SoupMessageHeaders *headers = soup_message_get_request_headers (msg);

      for (guint i = 0; call->headers[i] != NULL && call->headers[i + 1] != NULL; i += 2)
        soup_message_headers_replace (headers, call->headers[i], call->headers[i + 1]);
    }
  if (call->call_id != NULL)
    soup_message_headers_replace (soup_message_get_request_headers (msg),
                                  EXO_HTTP_HEADER_CALL_ID, call->call_id);
  soup_message_set_request_body_from_bytes (msg, call->content_type, call->body);
  /* The runner times each attempt (call-timeout-ms) through @cancellable. */
  http_peer_exchange_async (self, msg, call->body, call->path, 0, cancellable,
                            call_exchange_done, task);
}

/* The frame of @data (a Call) on the stream (HttpPeerFrameFunc). */
static GBytes *
call_build_frame (ExoClusterKey *key,
                  const char    *nonce,
                  guint64        seq,
                  const char    *call_id,
                  gpointer       data)
{
  Call *call = data;

  switch (call->stream_type)
    {
    case EXO_STREAM_TENSOR:
      return exo_stream_build_tensor (key, nonce, EXO_STREAM_FROM_CLIENT, seq, call_id,
                                      call->request_id, call->shard, call->dtype, call->shape,
                                      call->params, call->body);
    case EXO_STREAM_RESULT:
      return exo_stream_build_result (key, nonce, EXO_STREAM_FROM_CLIENT, seq, call_id,
                                      call->request_id, call->tokens, call->n_tokens,
                                      call->is_finished);
    case EXO_STREAM_CANCEL:
      return exo_stream_build_cancel (key, nonce, EXO_STREAM_FROM_CLIENT, seq, call_id,
                                      call->request_id);
    case EXO_STREAM_ANSWER:
    default:
      g_assert_not_reached ();
    }
  return NULL;
}

static void
call_stream_done (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Attempt *attempt = user_data;
  ExoHttpPeer *self = EXO_HTTP_PEER (source);
  GTask *task = g_steal_pointer (&attempt->task);
  GError *error = NULL;
  GBytes *body = http_peer_stream_call_finish (self, result, &error);

  if (body == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
    {
      /* the stream closed before the answer: the same call id over HTTP,
       * which the peer runs once whether the frame arrived or not */
      g_clear_error (&error);
      self->stream_fallbacks++;
      call_attempt_http (self, attempt->call, attempt->cancellable, task);
    }
  else
    {
      if (body == NULL)
        g_task_return_error (task, error);
      else
        g_task_return_pointer (task, body, (GDestroyNotify) g_bytes_unref);
      g_object_unref (task);
    }
  g_clear_object (&attempt->cancellable);
  g_free (attempt);
}

/* One attempt (ExoOperationFunc): the runner made sure we are connected.
 * Over the peer stream when the call may go there and it is open. */
static void
call_attempt (ExoResource  *resource,
              GCancellable *cancellable,
              GTask        *task,
              gpointer      user_data)
{
  ExoHttpPeer *self = EXO_HTTP_PEER (resource);
  Call *call = user_data;
  Attempt *attempt;

  if (call->stream_type == 0)
    {
      call_attempt_http (self, call, cancellable, g_object_ref (task));
      return;
    }
  if (!http_peer_stream_can_call (self))
    {
      self->stream_fallbacks++;
      call_attempt_http (self, call, cancellable, g_object_ref (task));
      return;
    }
  attempt = g_new0 (Attempt, 1);
  attempt->task = g_object_ref (task);
  attempt->call = call;
  attempt->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  http_peer_stream_call_async (self, call_build_frame, call, call->call_id, call->path, 0,
                               cancellable, call_stream_done, attempt);
}

static void
call_run_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExoHttpPeer *self = EXO_HTTP_PEER (source);
  GError *error = NULL;
  GBytes *body = exo_network_resource_run_finish (EXO_NETWORK_RESOURCE (self), result, &error);

  self->calls++;
  if (body == NULL)
    {
      self->call_failures++;
      if (error == NULL)
        error = g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED, "peer %s: no answer",
                             peer_label_id (self));
      g_task_return_error (task, error);
      return;
    }
  g_task_return_pointer (task, body, (GDestroyNotify) g_bytes_unref);
}

static void
call_run (ExoHttpPeer *self,
          GTask       *task)   /* taken */
{
  /* @call is the task's data: it lives until call_run_done has run */
  exo_network_resource_run_async (EXO_NETWORK_RESOURCE (self), call_attempt,
                                  g_task_get_task_data (task), NULL, self->call_timeout_ms,
                                  g_task_get_cancellable (task), call_run_done, task);
}

static void
call_direct_done (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GTask *task = user_data;   /* the call's task (taken) */
  ExoHttpPeer *self = EXO_HTTP_PEER (source);
  GError *error = NULL;
  GBytes *body = http_peer_stream_call_finish (self, result, &error);

  if (body != NULL)
    {
      self->calls++;
      g_task_return_pointer (task, body, (GDestroyNotify) g_bytes_unref);
      g_object_unref (task);
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      self->calls++;
      self->call_failures++;
      g_task_return_error (task, error);
      g_object_unref (task);
    }
  else
    {
      /* closed, timed out or refused: the runner takes the call over
       * (its retries, over HTTP while the stream is down), with the same
       * call id, which the peer runs once whether the frame arrived or not */
      g_error_free (error);
      call_run (self, task);
    }
}

static void
call_start (ExoHttpPeer         *self,
            Call                *call,          /* taken */
            gpointer             source_tag,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  if (call->call_id == NULL)
    call->call_id = g_uuid_string_random ();
  g_task_set_task_data (task, call, (GDestroyNotify) call_free);
  /* The hot path (a tensor or a result a token): a ready peer with its
   * stream open gets the frame now, not after a main-loop iteration of
   * the runner's; only a call that fails there goes to the runner. */
  if (call->stream_type != 0 &&
      exo_resource_get_state (EXO_RESOURCE (self)) == EXO_RESOURCE_STATE_READY &&
      http_peer_stream_can_call (self))
    {
      self->stream_direct_calls++;
      http_peer_stream_call_async (self, call_build_frame, call, call->call_id, call->path,
                                   self->call_timeout_ms, cancellable, call_direct_done, task);
      return;
    }
  call_run (self, task);
}

static gboolean
call_finish_boolean (ExoPeerHandle  *peer,
                     GAsyncResult   *result,
                     gpointer        source_tag,
                     GError        **error)
{
  g_autoptr(GBytes) body = NULL;

  g_return_val_if_fail (g_task_is_valid (result, peer), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, FALSE);

  body = g_task_propagate_pointer (G_TASK (result), error);
  return body != NULL;
}

/* --- ExoPeerHandle ------------------------------------------------------- */

static const char *
exo_http_peer_get_peer_id (ExoPeerHandle *peer)
{
  return EXO_HTTP_PEER (peer)->peer_id;
}

static const char *
exo_http_peer_get_address (ExoPeerHandle *peer)
{
  return exo_network_resource_get_address (EXO_NETWORK_RESOURCE (peer));
}

static GVariant *
exo_http_peer_get_device_capabilities (ExoPeerHandle *peer)
{
  ExoHttpPeer *self = EXO_HTTP_PEER (peer);

  if (self->capabilities != NULL)
    return g_variant_ref (self->capabilities);
  return g_variant_ref_sink (g_variant_new ("a{sv}", NULL));
}

static void
exo_http_peer_send_prompt_async (ExoPeerHandle             *peer,
                                 const ExoShard            *shard,
                                 const char                *prompt,
                                 const char                *request_id,
                                 const ExoGenerationParams *params,
                                 GCancellable              *cancellable,
                                 GAsyncReadyCallback        callback,
                                 gpointer                   user_data)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  Call *call;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "shard");
  json_builder_add_value (builder, exo_http_shard_to_json (shard));
  json_builder_set_member_name (builder, "prompt");
  json_builder_add_string_value (builder, prompt);
  json_builder_set_member_name (builder, "request_id");
  json_builder_add_string_value (builder, request_id);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);

  call = call_new_json ("/peer/v1/prompt", root);
  if (params != NULL)
    {
      /* "params" is written by exo_http_params_to_string (), not json-glib
       * (see there): it goes in before the object's closing brace. */
      g_autofree char *params_json = exo_http_params_to_string (params);
      gsize len = 0;
      const char *json = g_bytes_get_data (call->body, &len);
      GString *body = g_string_new_len (json, len);

      g_assert (len > 2 && body->str[len - 1] == '}');
      g_string_truncate (body, len - 1);
      g_string_append_printf (body, ",\"params\":%s}", params_json);
      g_bytes_unref (call->body);
      call->body = g_string_free_to_bytes (body);
    }
  call_start (EXO_HTTP_PEER (peer), call, exo_http_peer_send_prompt_async, cancellable,
              callback, user_data);
}

static gboolean
exo_http_peer_send_prompt_finish (ExoPeerHandle  *peer,
                                  GAsyncResult   *result,
                                  GError        **error)
{
  return call_finish_boolean (peer, result, exo_http_peer_send_prompt_async, error);
}

static void
exo_http_peer_send_tensor_async (ExoPeerHandle             *peer,
                                 const ExoShard            *shard,
                                 ExoTensor                 *tensor,
                                 const char                *request_id,
                                 const ExoGenerationParams *params,
                                 GCancellable              *cancellable,
                                 GAsyncReadyCallback        callback,
                                 gpointer                   user_data)
{
  Call *call = g_new0 (Call, 1);
  GStrvBuilder *headers = g_strv_builder_new ();
  g_autofree char *shard_json = exo_http_shard_to_string (shard);
  g_autofree char *shape = exo_http_shape_to_string (exo_tensor_get_shape (tensor),
                                                     exo_tensor_get_n_dims (tensor));
  g_autofree char *params_json = params != NULL ? exo_http_params_to_string (params) : NULL;

  g_strv_builder_add_many (headers,
                           EXO_HTTP_HEADER_REQUEST_ID, request_id,
                           EXO_HTTP_HEADER_SHARD, shard_json,
                           EXO_HTTP_HEADER_DTYPE, exo_dtype_to_string (exo_tensor_get_dtype (tensor)),
                           EXO_HTTP_HEADER_SHAPE, shape,
                           NULL);
  if (params_json != NULL)
    g_strv_builder_add_many (headers, EXO_HTTP_HEADER_PARAMS, params_json, NULL);
  call->headers = g_strv_builder_end (headers);
  g_strv_builder_unref (headers);
  call->path = g_strdup ("/peer/v1/tensor");
  call->content_type = g_strdup ("application/octet-stream");
  call->body = g_bytes_ref (exo_tensor_get_data (tensor));
  call->stream_type = EXO_STREAM_TENSOR;
  call->request_id = g_strdup (request_id);
  call->shard = g_steal_pointer (&shard_json);
  call->dtype = g_strdup (exo_dtype_to_string (exo_tensor_get_dtype (tensor)));
  call->shape = g_steal_pointer (&shape);
  call->params = g_steal_pointer (&params_json);

  call_start (EXO_HTTP_PEER (peer), call, exo_http_peer_send_tensor_async,
              cancellable, callback, user_data);
}

static gboolean
exo_http_peer_send_tensor_finish (ExoPeerHandle  *peer,
                                  GAsyncResult   *result,
                                  GError        **error)
{
  return call_finish_boolean (peer, result, exo_http_peer_send_tensor_async, error);
}

static void
exo_http_peer_send_result_async (ExoPeerHandle       *peer,
                                 const char          *request_id,
                                 const gint32        *tokens,
                                 gsize                n_tokens,
                                 gboolean             is_finished,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  Call *call;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "request_id");
  json_builder_add_string_value (builder, request_id);
  json_builder_set_member_name (builder, "result");
  json_builder_begin_array (builder);
  for (gsize i = 0; i < n_tokens; i++)
    json_builder_add_int_value (builder, tokens[i]);
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "is_finished");
  json_builder_add_boolean_value (builder, is_finished);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);

  call = call_new_json ("/peer/v1/result", root);
  call->stream_type = EXO_STREAM_RESULT;
  call->request_id = g_strdup (request_id);
  call->tokens = g_memdup2 (tokens, MAX (n_tokens, 1) * sizeof (gint32));
  call->n_tokens = n_tokens;
  call->is_finished = is_finished;
  call_start (EXO_HTTP_PEER (peer), call, exo_http_peer_send_result_async, cancellable,
              callback, user_data);
}

static gboolean
exo_http_peer_send_result_finish (ExoPeerHandle  *peer,
                                  GAsyncResult   *result,
                                  GError        **error)
{
  return call_finish_boolean (peer, result, exo_http_peer_send_result_async, error);
}

static void
exo_http_peer_collect_topology_async (ExoPeerHandle       *peer,
                                      const char * const  *visited,
                                      guint                max_depth,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "visited");
  json_builder_begin_array (builder);
  for (guint i = 0; visited != NULL && visited[i] != NULL; i++)
    json_builder_add_string_value (builder, visited[i]);
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "max_depth");
  json_builder_add_int_value (builder, max_depth);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);

  call_start (EXO_HTTP_PEER (peer), call_new_json ("/peer/v1/topology", root),
              exo_http_peer_collect_topology_async, cancellable, callback, user_data);
}

static char *
exo_http_peer_collect_topology_finish (ExoPeerHandle  *peer,
                                       GAsyncResult   *result,
                                       GError        **error)
{
  ExoHttpPeer *self = EXO_HTTP_PEER (peer);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) parse_error = NULL;
  const char *data;
  gsize len = 0;

  g_return_val_if_fail (g_task_is_valid (result, peer), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) ==
                        exo_http_peer_collect_topology_async, NULL);

  body = g_task_propagate_pointer (G_TASK (result), error);
  if (body == NULL)
    return NULL;
  data = g_bytes_get_data (body, &len);
  root = exo_http_parse_json (data, len, &parse_error);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "peer %s at %s answered a topology that is not a JSON object%s%s",
                   peer_label_id (self), peer_address (self),
                   parse_error != NULL ? ": " : "", parse_error != NULL ? parse_error->message : "");
      return NULL;
    }
  return g_strndup (data, len);
}

static void
exo_http_peer_send_cancel_async (ExoPeerHandle       *peer,
                                 const char          *request_id,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  Call *call;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "request_id");
  json_builder_add_string_value (builder, request_id);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);

  call = call_new_json ("/peer/v1/cancel", root);
  call->stream_type = EXO_STREAM_CANCEL;
  call->request_id = g_strdup (request_id);
  call_start (EXO_HTTP_PEER (peer), call, exo_http_peer_send_cancel_async, cancellable,
              callback, user_data);
}

static gboolean
exo_http_peer_send_cancel_finish (ExoPeerHandle  *peer,
                                  GAsyncResult   *result,
                                  GError        **error)
{
  return call_finish_boolean (peer, result, exo_http_peer_send_cancel_async, error);
}

/* Rare (a request that failed): over HTTP, not the stream. */
static void
exo_http_peer_send_failure_async (ExoPeerHandle       *peer,
                                  const char          *request_id,
                                  const GError        *failure,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *message = NULL;
  guint status = exo_http_status_for_error (failure);
  const char *end;

  /* cut at a character within the peer's limit */
  message = g_strndup (failure->message, EXO_HTTP_MAX_FAILURE_MESSAGE);
  if (!g_utf8_validate (message, -1, &end))
    message[end - message] = '\0';
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "request_id");
  json_builder_add_string_value (builder, request_id);
  json_builder_set_member_name (builder, "status");
  json_builder_add_int_value (builder, status >= 400 && status <= 599 ? status : 500);
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, message);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  call_start (EXO_HTTP_PEER (peer), call_new_json ("/peer/v1/failure", root),
              exo_http_peer_send_failure_async, cancellable, callback, user_data);
}

static gboolean
exo_http_peer_send_failure_finish (ExoPeerHandle  *peer,
                                   GAsyncResult   *result,
                                   GError        **error)
{
  return call_finish_boolean (peer, result, exo_http_peer_send_failure_async, error);
}

void
exo_http_peer_peer_handle_init (ExoPeerHandleInterface *iface)
{
  iface->get_peer_id = exo_http_peer_get_peer_id;
  iface->get_address = exo_http_peer_get_address;
  iface->get_device_capabilities = exo_http_peer_get_device_capabilities;
  iface->send_prompt_async = exo_http_peer_send_prompt_async;
  iface->send_prompt_finish = exo_http_peer_send_prompt_finish;
  iface->send_tensor_async = exo_http_peer_send_tensor_async;
  iface->send_tensor_finish = exo_http_peer_send_tensor_finish;
  iface->send_result_async = exo_http_peer_send_result_async;
  iface->send_result_finish = exo_http_peer_send_result_finish;
  iface->collect_topology_async = exo_http_peer_collect_topology_async;
  iface->collect_topology_finish = exo_http_peer_collect_topology_finish;
  iface->send_cancel_async = exo_http_peer_send_cancel_async;
  iface->send_cancel_finish = exo_http_peer_send_cancel_finish;
  iface->send_failure_async = exo_http_peer_send_failure_async;
  iface->send_failure_finish = exo_http_peer_send_failure_finish;
}
