/* exo-node-role.c: the ExoNodeRole interface and its checked callers, and
 * ExoChatResult.
 *
 * Owns the only code that calls the vfuncs of ExoNodeRoleInterface.  Each
 * exo_node_role_*() function checks its instance and arguments
 * (g_return_if_fail: a wrong call is a programming error), calls the vfunc,
 * and checks what comes back: a vfunc the implementation left %NULL fails
 * with G_IO_ERROR_NOT_SUPPORTED (asynchronous calls through a task tagged
 * with the function, which the matching _finish recognises) or returns the
 * documented default; a GVariant of the wrong type, or %NULL without an
 * error, becomes an error that names the node and what it gave.
 *
 * Rules: no state of its own.  The functions run in the caller's thread
 * and context, as the vfuncs they call; an ExoNodeRole is a resource and
 * belongs to the main context it was made in (docs/design.md §3), so call
 * them there.  exo_node_role_chat_async() with a @token_notify wraps the
 * caller's callback in a ChatCall, freed after it ran.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-private.h"

/* --- ExoChatResult ------------------------------------------------------- */

struct _ExoChatResult
{
  char       *text;
  const char *finish_reason;   /* interned */
  gint64      prompt_tokens;
  gint64      completion_tokens;
};

G_DEFINE_BOXED_TYPE (ExoChatResult, exo_chat_result, exo_chat_result_copy, exo_chat_result_free)

/**
 * exo_chat_result_new:
 * @text: (nullable): the text generated; %NULL for none
 * @finish_reason: (nullable): why generation stopped, `"stop"` or
 *   `"length"`; %NULL for `"stop"`
 * @prompt_tokens: the tokens the prompt was encoded into, -1 if unknown
 * @completion_tokens: the tokens generated, -1 if unknown
 *
 * Makes the result a node answers a chat with.
 *
 * Returns: (transfer full): a new #ExoChatResult
 */
ExoChatResult *
exo_chat_result_new (const char *text,
                     const char *finish_reason,
                     gint64      prompt_tokens,
                     gint64      completion_tokens)
{
  ExoChatResult *result;

  g_return_val_if_fail (finish_reason == NULL || g_str_equal (finish_reason, "stop") ||
                        g_str_equal (finish_reason, "length"), NULL);
  g_return_val_if_fail (prompt_tokens >= -1, NULL);
  g_return_val_if_fail (completion_tokens >= -1, NULL);

  result = g_new0 (ExoChatResult, 1);
  result->text = g_strdup (text != NULL ? text : "");
  result->finish_reason = g_intern_string (finish_reason != NULL ? finish_reason : "stop");
  result->prompt_tokens = prompt_tokens;
  result->completion_tokens = completion_tokens;
  return result;
}

/**
 * exo_chat_result_copy:
 * @result: a #ExoChatResult
 *
 * Returns: (transfer full): a copy of @result
 */
ExoChatResult *
exo_chat_result_copy (const ExoChatResult *result)
{
  g_return_val_if_fail (result != NULL, NULL);
  return exo_chat_result_new (result->text, result->finish_reason, result->prompt_tokens,
                              result->completion_tokens);
}

/**
 * exo_chat_result_free:
 * @result: (nullable): a #ExoChatResult
 *
 * Frees @result.
 */
void
exo_chat_result_free (ExoChatResult *result)
{
  if (result == NULL)
    return;
  g_free (result->text);
  g_free (result);
}

/**
 * exo_chat_result_get_text:
 * @result: a #ExoChatResult
 *
 * Returns: (transfer none): the text generated (never %NULL; not checked
 *   to be UTF-8)
 */
const char *
exo_chat_result_get_text (const ExoChatResult *result)
{
  g_return_val_if_fail (result != NULL, NULL);
  return result->text;
}

/**
 * exo_chat_result_get_finish_reason:
 * @result: a #ExoChatResult
 *
 * Returns: (transfer none): `"stop"` (the model's end of sequence) or
 *   `"length"` (the most tokens the request could have)
 */
const char *
exo_chat_result_get_finish_reason (const ExoChatResult *result)
{
  g_return_val_if_fail (result != NULL, NULL);
  return result->finish_reason;
}

/**
 * exo_chat_result_get_prompt_tokens:
 * @result: a #ExoChatResult
 *
 * Returns: the tokens the prompt was encoded into, -1 if unknown
 */
gint64
exo_chat_result_get_prompt_tokens (const ExoChatResult *result)
{
  g_return_val_if_fail (result != NULL, -1);
  return result->prompt_tokens;
}

/**
 * exo_chat_result_get_completion_tokens:
 * @result: a #ExoChatResult
 *
 * Returns: the tokens generated, -1 if unknown
 */
gint64
exo_chat_result_get_completion_tokens (const ExoChatResult *result)
{
  g_return_val_if_fail (result != NULL, -1);
  return result->completion_tokens;
}

/* --- ExoNodeRole: checks ------------------------------------------------- */

G_DEFINE_INTERFACE (ExoNodeRole, exo_node_role, EXO_TYPE_RESOURCE)

static void
exo_node_role_default_init (ExoNodeRoleInterface *iface)
{
}

#define NODE_IFACE(self) EXO_NODE_ROLE_GET_IFACE (self)

static const char *
node_name (ExoNodeRole *self)
{
  const char *id = exo_resource_get_id (EXO_RESOURCE (self));

  return id != NULL ? id : "(no id)";
}

static GError *
not_supported (ExoNodeRole *self,
               const char  *vfunc)
{
  return g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "node '%s' (%s) does not implement %s",
                      node_name (self), G_OBJECT_TYPE_NAME (self), vfunc);
}

/* Fails an asynchronous call whose vfunc is NULL: the task is tagged with
 * @tag, the public _async function, for its _finish. */
static void
report_not_supported (ExoNodeRole         *self,
                      const char          *vfunc,
                      gpointer             tag,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_task_report_error (self, callback, user_data, tag, not_supported (self, vfunc));
}

/* What a vfunc returned as a GVariant (transfer full, maybe floating),
 * checked against @type_string: a full reference, or NULL with @error. */
static GVariant *
check_variant (ExoNodeRole  *self,
               GVariant     *value,
               const char   *type_string,
               const char   *what,
               GError      **error)
{
  g_autoptr(GVariant) owned = value != NULL ? g_variant_take_ref (value) : NULL;

  if (owned == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "node '%s' gave no %s",
                   node_name (self), what);
      return NULL;
    }
  if (!g_variant_is_of_type (owned, G_VARIANT_TYPE (type_string)))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "node '%s' gave %s of type '%s', not '%s'", node_name (self), what,
                   g_variant_get_type_string (owned), type_string);
      return NULL;
    }
  return g_steal_pointer (&owned);
}

/* Finishes a boolean call: the NOT_SUPPORTED task the wrapper made itself
 * (tagged with @source_tag), else the _finish vfunc when there is one;
 * FALSE comes with an error. */
static gboolean
finish_boolean (ExoNodeRole   *self,
                gpointer       source_tag,
                gboolean     (*finish) (ExoNodeRole *, GAsyncResult *, GError **),
                const char    *vfunc,
                GAsyncResult  *result,
                GError       **error)
{
  GError *local_error = NULL;

  if (g_async_result_is_tagged (result, source_tag))
    return g_task_propagate_boolean (G_TASK (result), error);
  if (finish == NULL)
    {
      g_propagate_error (error, not_supported (self, vfunc));
      return FALSE;
    }
  if (finish (self, result, &local_error))
    {
      g_clear_error (&local_error);
      return TRUE;
    }
  if (local_error == NULL)
    local_error = g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED, "node '%s' failed %s without saying why",
                               node_name (self), vfunc);
  g_propagate_error (error, local_error);
  return FALSE;
}

/* --- ExoNodeRole: peer RPC ----------------------------------------------- */

/**
 * exo_node_role_get_node_id:
 * @self: a node
 *
 * Returns: (nullable) (transfer none): the node's id; %NULL when the node
 *   does not say
 */
const char *
exo_node_role_get_node_id (ExoNodeRole *self)
{
  g_return_val_if_fail (EXO_IS_NODE_ROLE (self), NULL);

  if (NODE_IFACE (self)->get_node_id == NULL)
    return NULL;
  return NODE_IFACE (self)->get_node_id (self);
}

/**
 * exo_node_role_process_prompt_async:
 * @self: a node
 * @shard: the shard the node is asked to run
 * @prompt: the prompt
 * @request_id: the request
 * @params: (nullable): how the request is to be generated; %NULL for the
 *   defaults
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the node accepted the work (or
 *   refused it)
 * @user_data: (closure): data for @callback
 *
 * Hands the node the prompt of a request (peer RPC `/peer/v1/prompt`).
 * It answers once the work is accepted, not when it is done.
 */
void
exo_node_role_process_prompt_async (ExoNodeRole               *self,
                                    const ExoShard            *shard,
                                    const char                *prompt,
                                    const char                *request_id,
                                    const ExoGenerationParams *params,
                                    GCancellable              *cancellable,
                                    GAsyncReadyCallback        callback,
                                    gpointer                   user_data)
{
  g_return_if_fail (EXO_IS_NODE_ROLE (self));
  g_return_if_fail (shard != NULL);
  g_return_if_fail (prompt != NULL);
  g_return_if_fail (request_id != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  if (NODE_IFACE (self)->process_prompt_async == NULL)
    {
      report_not_supported (self, "process_prompt_async", exo_node_role_process_prompt_async,
                            callback, user_data);
      return;
    }
  NODE_IFACE (self)->process_prompt_async (self, shard, prompt, request_id, params, cancellable,
                                           callback, user_data);
}

/**
 * exo_node_role_process_prompt_finish:
 * @self: a node
 * @result: the #GAsyncResult
 * @error: return location for an error
 *
 * Returns: whether the node accepted the prompt
 */
gboolean
exo_node_role_process_prompt_finish (ExoNodeRole   *self,
                                     GAsyncResult  *result,
                                     GError       **error)
{
  g_return_val_if_fail (EXO_IS_NODE_ROLE (self), FALSE);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return finish_boolean (self, exo_node_role_process_prompt_async,
                         NODE_IFACE (self)->process_prompt_finish, "process_prompt_finish",
                         result, error);
}

/**
 * exo_node_role_process_tensor_async:
 * @self: a node
 * @shard: the shard the sender thought the node runs
 * @tensor: the input of its layers
 * @request_id: the request
 * @params: (nullable): how the request is to be generated; %NULL for the
 *   defaults
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the node accepted the work (or
 *   refused it)
 * @user_data: (closure): data for @callback
 *
 * Hands the node a tensor of a request (peer RPC `/peer/v1/tensor`).  It
 * answers once the work is accepted, not when it is done.
 */
void
exo_node_role_process_tensor_async (ExoNodeRole               *self,
                                    const ExoShard            *shard,
                                    ExoTensor                 *tensor,
                                    const char                *request_id,
                                    const ExoGenerationParams *params,
                                    GCancellable              *cancellable,
                                    GAsyncReadyCallback        callback,
                                    gpointer                   user_data)
{
  g_return_if_fail (EXO_IS_NODE_ROLE (self));
  g_return_if_fail (shard != NULL);
  g_return_if_fail (tensor != NULL);
  g_return_if_fail (request_id != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  if (NODE_IFACE (self)->process_tensor_async == NULL)
    {
      report_not_supported (self, "process_tensor_async", exo_node_role_process_tensor_async,
                            callback, user_data);
      return;
    }
  NODE_IFACE (self)->process_tensor_async (self, shard, tensor, request_id, params, cancellable,
                                           callback, user_data);
}

/**
 * exo_node_role_process_tensor_finish:
 * @self: a node
 * @result: the #GAsyncResult
 * @error: return location for an error
 *
 * Returns: whether the node accepted the tensor
 */
gboolean
exo_node_role_process_tensor_finish (ExoNodeRole   *self,
                                     GAsyncResult  *result,
                                     GError       **error)
{
  g_return_val_if_fail (EXO_IS_NODE_ROLE (self), FALSE);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return finish_boolean (self, exo_node_role_process_tensor_async,
                         NODE_IFACE (self)->process_tensor_finish, "process_tensor_finish",
                         result, error);
}

/**
 * exo_node_role_process_result:
 * @self: a node
 * @request_id: the request
 * @tokens: (array length=n_tokens) (nullable): every token of the request
 *   so far
 * @n_tokens: how many
 * @is_finished: whether generation ended
 * @error: return location for an error
 *
 * Tells the node the tokens of a request (peer RPC `/peer/v1/result`): the
 * node of the last shard sends them to every node after each token.
 *
 * Returns: %TRUE; %FALSE with %G_IO_ERROR_NOT_SUPPORTED when the node
 *   does not take results
 */
gboolean
exo_node_role_process_result (ExoNodeRole   *self,
                              const char    *request_id,
                              const gint32  *tokens,
                              gsize          n_tokens,
                              gboolean       is_finished,
                              GError       **error)
{
  g_return_val_if_fail (EXO_IS_NODE_ROLE (self), FALSE);
  g_return_val_if_fail (request_id != NULL, FALSE);
  g_return_val_if_fail (tokens != NULL || n_tokens == 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (NODE_IFACE (self)->process_result == NULL)
    {
      g_propagate_error (error, not_supported (self, "process_result"));
      return FALSE;
    }
  NODE_IFACE (self)->process_result (self, request_id, tokens, n_tokens, is_finished);
  return TRUE;
}

/**
 * exo_node_role_collect_topology_async:
 * @self: a node
 * @visited: (array zero-terminated=1) (nullable): the nodes already asked
 * @max_depth: how many hops further the node may ask its peers
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the topology
 * @user_data: (closure): data for @callback
 *
 * Collects the topology from this node on (peer RPC `/peer/v1/topology`):
 * the node and its peers, the peers not in @visited asked in turn.
 */
void
exo_node_role_collect_topology_async (ExoNodeRole         *self,
                                      const char * const  *visited,
                                      guint                max_depth,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  g_return_if_fail (EXO_IS_NODE_ROLE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  if (NODE_IFACE (self)->collect_topology_async == NULL)
    {
      report_not_supported (self, "collect_topology_async", exo_node_role_collect_topology_async,
                            callback, user_data);
      return;
    }
  NODE_IFACE (self)->collect_topology_async (self, visited, max_depth, cancellable, callback,
                                             user_data);
}

/**
 * exo_node_role_collect_topology_finish:
 * @self: a node
 * @result: the #GAsyncResult
 * @error: return location for an error
 *
 * Returns: (transfer full): the topology, of %EXO_NODE_ROLE_TOPOLOGY_TYPE
 *   (without the node's own view), or %NULL with @error
 */
GVariant *
exo_node_role_collect_topology_finish (ExoNodeRole   *self,
                                       GAsyncResult  *result,
                                       GError       **error)
{
  GError *local_error = NULL;
  GVariant *topology;

  g_return_val_if_fail (EXO_IS_NODE_ROLE (self), NULL);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_async_result_is_tagged (result, exo_node_role_collect_topology_async))
    return g_task_propagate_pointer (G_TASK (result), error);
  if (NODE_IFACE (self)->collect_topology_finish == NULL)
    {
      g_propagate_error (error, not_supported (self, "collect_topology_finish"));
      return NULL;
    }
  topology = NODE_IFACE (self)->collect_topology_finish (self, result, &local_error);
  if (local_error != NULL)
    {
      g_clear_pointer (&topology, g_variant_unref);
      g_propagate_error (error, local_error);
      return NULL;
    }
  return check_variant (self, topology, EXO_NODE_ROLE_TOPOLOGY_TYPE, "topology", error);
}

/**
 * exo_node_role_cancel_request:
 * @self: a node
 * @request_id: the request abandoned
 * @error: return location for an error
 *
 * Tells the node that @request_id is abandoned (peer RPC
 * `/peer/v1/cancel`): it drops the work of it that arrives later.
 *
 * Returns: %TRUE; %FALSE with %G_IO_ERROR_NOT_SUPPORTED when the node
 *   cannot cancel requests
 */
gboolean
exo_node_role_cancel_request (ExoNodeRole  *self,
                              const char   *request_id,
                              GError      **error)
{
  g_return_val_if_fail (EXO_IS_NODE_ROLE (self), FALSE);
  g_return_val_if_fail (request_id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (NODE_IFACE (self)->cancel_request == NULL)
    {
      g_propagate_error (error, not_supported (self, "cancel_request"));
      return FALSE;
    }
  NODE_IFACE (self)->cancel_request (self, request_id);
  return TRUE;
}

/**
 * exo_node_role_process_failure:
 * @self: a node
 * @request_id: a request this node answers
 * @failure: what failed on a peer (peer RPC `/peer/v1/failure`)
 * @error: return location for an error
 *
 * A peer's work on @request_id failed: the node fails the request with
 * @failure when it is its API node, and ignores it otherwise.  New in
 * plugin ABI 3.2.
 *
 * Returns: %TRUE; %FALSE with %G_IO_ERROR_NOT_SUPPORTED when the node
 *   cannot take failures
 */
gboolean
exo_node_role_process_failure (ExoNodeRole   *self,
                               const char    *request_id,
                               const GError  *failure,
                               GError       **error)
{
  g_return_val_if_fail (EXO_IS_NODE_ROLE (self), FALSE);
  g_return_val_if_fail (request_id != NULL && failure != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (NODE_IFACE (self)->process_failure == NULL)
    {
      g_propagate_error (error, not_supported (self, "process_failure"));
      return FALSE;
    }
  NODE_IFACE (self)->process_failure (self, request_id, failure);
  return TRUE;
}

/* --- ExoNodeRole: user API ----------------------------------------------- */

/**
 * exo_node_role_list_models:
 * @self: a node
 * @error: return location for an error
 *
 * The models the node serves (`GET /v1/models`).
 *
 * Returns: (transfer full): the models, of %EXO_NODE_ROLE_MODELS_TYPE, or
 *   %NULL with @error (%G_IO_ERROR_NOT_SUPPORTED when the node does not
 *   list them)
 */
GVariant *
exo_node_role_list_models (ExoNodeRole  *self,
                           GError      **error)
{
  g_return_val_if_fail (EXO_IS_NODE_ROLE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (NODE_IFACE (self)->list_models == NULL)
    {
      g_propagate_error (error, not_supported (self, "list_models"));
      return NULL;
    }
  return check_variant (self, NODE_IFACE (self)->list_models (self), EXO_NODE_ROLE_MODELS_TYPE,
                        "models", error);
}

/**
 * exo_node_role_get_topology:
 * @self: a node
 * @error: return location for an error
 *
 * The topology as the node sees it, with its ring (`GET /v1/topology`).
 *
 * Returns: (transfer full): the topology, of %EXO_NODE_ROLE_TOPOLOGY_TYPE,
 *   or %NULL with @error (%G_IO_ERROR_NOT_SUPPORTED when the node does
 *   not show it)
 */
GVariant *
exo_node_role_get_topology (ExoNodeRole  *self,
                            GError      **error)
{
  g_return_val_if_fail (EXO_IS_NODE_ROLE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (NODE_IFACE (self)->get_topology == NULL)
    {
      g_propagate_error (error, not_supported (self, "get_topology"));
      return NULL;
    }
  return check_variant (self, NODE_IFACE (self)->get_topology (self),
                        EXO_NODE_ROLE_TOPOLOGY_TYPE, "topology", error);
}

/* The caller's callback, then its token data freed. */
typedef struct
{
  GAsyncReadyCallback callback;
  gpointer            user_data;
  GDestroyNotify      token_notify;
  gpointer            token_data;
} ChatCall;

static void
chat_call_done (GObject      *source,
                GAsyncResult *result,
                gpointer      data)
{
  ChatCall *call = data;

  if (call->callback != NULL)
    call->callback (source, result, call->user_data);
  call->token_notify (call->token_data);
  g_free (call);
}

/**
 * exo_node_role_chat_async:
 * @self: a node
 * @model: (nullable): the model asked for; %NULL or empty for the one served
 * @prompt: the prompt
 * @request_id: (nullable): the request id; %NULL to make one
 * @params: (nullable): how to generate: the user's `max_tokens`,
 *   `temperature`, `top_p` and `seed`; %NULL for the defaults.  The node
 *   copies what it needs before returning.
 * @on_token: (nullable) (scope notified) (closure token_data) (destroy token_notify):
 *   called with new tokens until @callback runs
 * @token_data: data for @on_token
 * @token_notify: (nullable): frees @token_data after @callback returned
 * @cancellable: (nullable): a #GCancellable; cancelling it ends the
 *   request on every node of its ring
 * @callback: (scope async): called when the request ends
 * @user_data: (closure): data for @callback
 *
 * Runs a request of the user API through the ring
 * (`POST /v1/chat/completions`); finish with exo_node_role_chat_finish().
 */
void
exo_node_role_chat_async (ExoNodeRole               *self,
                          const char                *model,
                          const char                *prompt,
                          const char                *request_id,
                          const ExoGenerationParams *params,
                          ExoTokenFunc               on_token,
                          gpointer                   token_data,
                          GDestroyNotify             token_notify,
                          GCancellable              *cancellable,
                          GAsyncReadyCallback        callback,
                          gpointer                   user_data)
{
  ChatCall *call;

  g_return_if_fail (EXO_IS_NODE_ROLE (self));
  g_return_if_fail (prompt != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  if (token_notify != NULL)
    {
      call = g_new0 (ChatCall, 1);
      call->callback = callback;
      call->user_data = user_data;
      call->token_notify = token_notify;
      call->token_data = token_data;
      callback = chat_call_done;
      user_data = call;
    }
  if (NODE_IFACE (self)->chat_async == NULL)
    {
      report_not_supported (self, "chat_async", exo_node_role_chat_async, callback, user_data);
      return;
    }
  NODE_IFACE (self)->chat_async (self, model, prompt, request_id, params, on_token, token_data,
                                 cancellable, callback, user_data);
}

/**
 * exo_node_role_chat_finish:
 * @self: a node
 * @result: the #GAsyncResult
 * @error: return location for an error
 *
 * Returns: (transfer full): how the chat ended, or %NULL with @error
 */
ExoChatResult *
exo_node_role_chat_finish (ExoNodeRole   *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  GError *local_error = NULL;
  ExoChatResult *chat;

  g_return_val_if_fail (EXO_IS_NODE_ROLE (self), NULL);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_async_result_is_tagged (result, exo_node_role_chat_async))
    return g_task_propagate_pointer (G_TASK (result), error);
  if (NODE_IFACE (self)->chat_finish == NULL)
    {
      g_propagate_error (error, not_supported (self, "chat_finish"));
      return NULL;
    }
  chat = NODE_IFACE (self)->chat_finish (self, result, &local_error);
  if (local_error != NULL)
    {
      g_clear_pointer (&chat, exo_chat_result_free);
      g_propagate_error (error, local_error);
      return NULL;
    }
  if (chat == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "node '%s' ended the chat without a result",
                 node_name (self));
  return chat;
}
