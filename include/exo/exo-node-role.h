/* exo-node-role.h: ExoNodeRole, the orchestration of a cluster node as
 * the server plugin calls it, and ExoChatResult, the end of a chat.
 *
 * Typed values only: the models and the topology are GVariants of the
 * types documented here, the end of a chat an ExoChatResult.  The wire
 * formats (the JSON of docs/cluster-protocol.md) are the server plugin's.
 * Call the interface through the exo_node_role_*() functions, never
 * through its vfuncs: they check their arguments and the values the
 * implementation returns, and answer for a vfunc a node leaves %NULL.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-resource.h>
#include <exo/exo-inference.h>
#include <exo/exo-generation-params.h>

G_BEGIN_DECLS

/* --- ExoChatResult -------------------------------------------------------- */

#define EXO_TYPE_CHAT_RESULT (exo_chat_result_get_type ())

/**
 * ExoChatResult:
 *
 * How a chat ended (exo_node_role_chat_finish()): the text generated, why
 * generation stopped (`"stop"`: the model's end of sequence; `"length"`:
 * the request's `max_tokens` or the node's `max-tokens` was reached), and
 * the tokens of the prompt and of the answer (-1 when unknown).  The user
 * API reports them as `finish_reason` and `usage`.  Immutable.
 *
 * New in plugin ABI 3.0.
 */
typedef struct _ExoChatResult ExoChatResult;

EXO_AVAILABLE_IN_ALL
GType          exo_chat_result_get_type              (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
ExoChatResult *exo_chat_result_new                   (const char          *text,
                                                      const char          *finish_reason,
                                                      gint64               prompt_tokens,
                                                      gint64               completion_tokens);
EXO_AVAILABLE_IN_ALL
ExoChatResult *exo_chat_result_copy                  (const ExoChatResult *result);
EXO_AVAILABLE_IN_ALL
void           exo_chat_result_free                  (ExoChatResult       *result);
EXO_AVAILABLE_IN_ALL
const char    *exo_chat_result_get_text              (const ExoChatResult *result);
EXO_AVAILABLE_IN_ALL
const char    *exo_chat_result_get_finish_reason     (const ExoChatResult *result);
EXO_AVAILABLE_IN_ALL
gint64         exo_chat_result_get_prompt_tokens     (const ExoChatResult *result);
EXO_AVAILABLE_IN_ALL
gint64         exo_chat_result_get_completion_tokens (const ExoChatResult *result);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoChatResult, exo_chat_result_free)

/* --- ExoNodeRole ---------------------------------------------------------- */

/**
 * EXO_NODE_ROLE_MODELS_TYPE:
 *
 * The type string of the models a node serves
 * (exo_node_role_list_models()): `aa{sv}`, one dictionary per model with
 *
 * - `id` `s`: the model's name (required)
 * - `owned-by` `s`: who provides it
 * - `created` `x`: when it was made, seconds since the Unix epoch
 * - `n-layers` `u`: its layers
 * - `ready` `b`: whether the node can serve it now
 *
 * Keys other than `id` are left out when unknown; the user API
 * (`GET /v1/models`) shows those present, under the names of OpenAI's
 * model object (`owned_by`, `n_layers`).
 */
#define EXO_NODE_ROLE_MODELS_TYPE "aa{sv}"

/**
 * EXO_NODE_ROLE_TOPOLOGY_TYPE:
 *
 * The type string of a topology (exo_node_role_get_topology(),
 * exo_node_role_collect_topology_finish()): `a{sv}` with
 *
 * - `nodes` `a{sa{sv}}`: node id → its device capabilities, in the form of
 *   exo_peer_handle_get_device_capabilities() (`model` s, `chip` s,
 *   `memory` t in MiB, `flops-fp32` d, `flops-fp16` d, `flops-int8` d, in
 *   TFLOPS)
 * - `edges` `a(sss)`: (from id, to id, description): the peers each node
 *   reaches, the description being the address it reaches them at
 * - `active-node-id` `s`: the node working on a request now (left out when
 *   none)
 *
 * and, in exo_node_role_get_topology() only, the node's own view:
 *
 * - `node-id` `s`, `model-id` `s`, `n-layers` `u`
 * - `version` `t`: the ring's version, raised when the shards change
 * - `partitions` `a(sdd)`: (node id, start, end) fractions of the ring,
 *   in ring order
 * - `shards` `a(ssuuu)`: (node id, model id, start layer, end layer,
 *   layers of the model), in ring order
 *
 * The server writes it as the TOPOLOGY of docs/cluster-protocol.md
 * (`POST /peer/v1/topology`, `GET /v1/topology`).
 */
#define EXO_NODE_ROLE_TOPOLOGY_TYPE "a{sv}"

#define EXO_TYPE_NODE_ROLE (exo_node_role_get_type ())
EXO_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (ExoNodeRole, exo_node_role, EXO, NODE_ROLE, ExoResource)

/**
 * ExoTokenFunc:
 * @request_id: the request
 * @tokens: (array length=n_tokens): the new tokens
 * @n_tokens: how many
 * @text: the new tokens decoded
 * @is_finished: whether generation ended
 * @user_data: data given with the callback
 *
 * Receives tokens of a request as they are generated.
 */
typedef void (*ExoTokenFunc) (const char   *request_id,
                              const gint32 *tokens,
                              gsize         n_tokens,
                              const char   *text,
                              gboolean      is_finished,
                              gpointer      user_data);

/**
 * ExoNodeRoleInterface:
 * @get_node_id: the node's id; %NULL: exo_node_role_get_node_id() returns
 *   %NULL
 * @process_prompt_async: peer RPC `/peer/v1/prompt`
 * @process_prompt_finish: finishes @process_prompt_async
 * @process_tensor_async: peer RPC `/peer/v1/tensor`
 * @process_tensor_finish: finishes @process_tensor_async
 * @process_result: peer RPC `/peer/v1/result`
 * @collect_topology_async: peer RPC `/peer/v1/topology`
 * @collect_topology_finish: finishes @collect_topology_async: a topology of
 *   %EXO_NODE_ROLE_TOPOLOGY_TYPE (transfer full; may be floating)
 * @list_models: the models served, of %EXO_NODE_ROLE_MODELS_TYPE (transfer
 *   full; may be floating)
 * @get_topology: the topology as the node sees it, of
 *   %EXO_NODE_ROLE_TOPOLOGY_TYPE (transfer full; may be floating)
 * @chat_async: a request of the user API through the ring
 * @chat_finish: finishes @chat_async
 * @cancel_request: peer RPC `/peer/v1/cancel`
 *
 * The orchestration of a node, as exo's `Node`: what the server calls when
 * a peer or a user asks for something.  The `node` plugin implements it.
 * Every vfunc may be %NULL: the exo_node_role_*() function that calls it
 * then fails with %G_IO_ERROR_NOT_SUPPORTED (the server answers 501), or
 * returns the default it documents.
 *
 * `process_prompt_async` and `process_tensor_async` get the
 * #ExoGenerationParams the request carries, %NULL when it carries none (a
 * peer older than plugin ABI 2.0): the defaults apply; the node copies
 * what it keeps before returning, as it does the shard.  The node keeps
 * the first parameters it sees for a request and passes them on with it;
 * the node of the last shard samples with them and stops at their
 * `max_tokens` (or its own `max-tokens`, whichever is smaller).
 * `cancel_request`: the request is abandoned; work of it that arrives
 * later is dropped.
 *
 * Plugin ABI 3.0 replaced `get_models_json`, `get_topology_json`, the
 * JSON of `collect_topology_finish`, the text of `chat_finish` and
 * `chat_get_prompt_tokens` with the typed values above.
 */
/**
 * ExoNodeRoleInterface::chat_async:
 * @self: the node
 * @model: (nullable): the model asked for; %NULL or empty for the one served
 * @prompt: the prompt
 * @request_id: (nullable): the request id; %NULL to make one
 * @params: (nullable): how to generate: the user's `max_tokens`,
 *   `temperature`, `top_p` and `seed`; %NULL for the defaults.  The node
 *   copies what it needs before returning.
 * @on_token: (nullable) (scope notified) (closure token_data): called with
 *   new tokens until @callback runs
 * @token_data: data for @on_token
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the request ends
 * @user_data: data for @callback
 *
 * Runs a request of the user API through the ring; finish with
 * [vfunc@Exo.NodeRole.chat_finish].
 */
struct _ExoNodeRoleInterface
{
  GTypeInterface parent_iface;

  const char    *(*get_node_id)             (ExoNodeRole               *self);
  /* peer RPC */
  void           (*process_prompt_async)    (ExoNodeRole               *self,
                                             const ExoShard            *shard,
                                             const char                *prompt,
                                             const char                *request_id,
                                             const ExoGenerationParams *params,
                                             GCancellable              *cancellable,
                                             GAsyncReadyCallback        callback,
                                             gpointer                   user_data);
  gboolean       (*process_prompt_finish)   (ExoNodeRole               *self,
                                             GAsyncResult              *result,
                                             GError                   **error);
  void           (*process_tensor_async)    (ExoNodeRole               *self,
                                             const ExoShard            *shard,
                                             ExoTensor                 *tensor,
                                             const char                *request_id,
                                             const ExoGenerationParams *params,
                                             GCancellable              *cancellable,
                                             GAsyncReadyCallback        callback,
                                             gpointer                   user_data);
  gboolean       (*process_tensor_finish)   (ExoNodeRole               *self,
                                             GAsyncResult              *result,
                                             GError                   **error);
  void           (*process_result)          (ExoNodeRole               *self,
                                             const char                *request_id,
                                             const gint32              *tokens,
                                             gsize                      n_tokens,
                                             gboolean                   is_finished);
  void           (*collect_topology_async)  (ExoNodeRole               *self,
                                             const char *const         *visited,
                                             guint                      max_depth,
                                             GCancellable              *cancellable,
                                             GAsyncReadyCallback        callback,
                                             gpointer                   user_data);
  GVariant      *(*collect_topology_finish) (ExoNodeRole               *self,
                                             GAsyncResult              *result,
                                             GError                   **error);
  void           (*cancel_request)          (ExoNodeRole               *self,
                                             const char                *request_id);
  /* user API */
  GVariant      *(*list_models)             (ExoNodeRole               *self);
  GVariant      *(*get_topology)            (ExoNodeRole               *self);
  void           (*chat_async)              (ExoNodeRole               *self,
                                             const char                *model,
                                             const char                *prompt,
                                             const char                *request_id,
                                             const ExoGenerationParams *params,
                                             ExoTokenFunc               on_token,
                                             gpointer                   token_data,
                                             GCancellable              *cancellable,
                                             GAsyncReadyCallback        callback,
                                             gpointer                   user_data);
  ExoChatResult *(*chat_finish)             (ExoNodeRole               *self,
                                             GAsyncResult              *result,
                                             GError                   **error);
  /* peer RPC, plugin ABI 3.2 */
  void           (*process_failure)         (ExoNodeRole               *self,
                                             const char                *request_id,
                                             const GError              *failure);

  /*< private >*/
  gpointer padding[7];
};

EXO_AVAILABLE_IN_ALL
const char    *exo_node_role_get_node_id             (ExoNodeRole               *self);

EXO_AVAILABLE_IN_ALL
void           exo_node_role_process_prompt_async    (ExoNodeRole               *self,
                                                      const ExoShard            *shard,
                                                      const char                *prompt,
                                                      const char                *request_id,
                                                      const ExoGenerationParams *params,
                                                      GCancellable              *cancellable,
                                                      GAsyncReadyCallback        callback,
                                                      gpointer                   user_data);
EXO_AVAILABLE_IN_ALL
gboolean       exo_node_role_process_prompt_finish   (ExoNodeRole               *self,
                                                      GAsyncResult              *result,
                                                      GError                   **error);
EXO_AVAILABLE_IN_ALL
void           exo_node_role_process_tensor_async    (ExoNodeRole               *self,
                                                      const ExoShard            *shard,
                                                      ExoTensor                 *tensor,
                                                      const char                *request_id,
                                                      const ExoGenerationParams *params,
                                                      GCancellable              *cancellable,
                                                      GAsyncReadyCallback        callback,
                                                      gpointer                   user_data);
EXO_AVAILABLE_IN_ALL
gboolean       exo_node_role_process_tensor_finish   (ExoNodeRole               *self,
                                                      GAsyncResult              *result,
                                                      GError                   **error);
EXO_AVAILABLE_IN_ALL
gboolean       exo_node_role_process_result          (ExoNodeRole               *self,
                                                      const char                *request_id,
                                                      const gint32              *tokens,
                                                      gsize                      n_tokens,
                                                      gboolean                   is_finished,
                                                      GError                   **error);
EXO_AVAILABLE_IN_ALL
void           exo_node_role_collect_topology_async  (ExoNodeRole               *self,
                                                      const char *const         *visited,
                                                      guint                      max_depth,
                                                      GCancellable              *cancellable,
                                                      GAsyncReadyCallback        callback,
                                                      gpointer                   user_data);
EXO_AVAILABLE_IN_ALL
GVariant      *exo_node_role_collect_topology_finish (ExoNodeRole               *self,
                                                      GAsyncResult              *result,
                                                      GError                   **error);
EXO_AVAILABLE_IN_ALL
gboolean       exo_node_role_cancel_request          (ExoNodeRole               *self,
                                                      const char                *request_id,
                                                      GError                   **error);
EXO_AVAILABLE_IN_ALL
gboolean       exo_node_role_process_failure         (ExoNodeRole               *self,
                                                      const char                *request_id,
                                                      const GError              *failure,
                                                      GError                   **error);

EXO_AVAILABLE_IN_ALL
GVariant      *exo_node_role_list_models             (ExoNodeRole               *self,
                                                      GError                   **error);
EXO_AVAILABLE_IN_ALL
GVariant      *exo_node_role_get_topology            (ExoNodeRole               *self,
                                                      GError                   **error);
EXO_AVAILABLE_IN_ALL
void           exo_node_role_chat_async              (ExoNodeRole               *self,
                                                      const char                *model,
                                                      const char                *prompt,
                                                      const char                *request_id,
                                                      const ExoGenerationParams *params,
                                                      ExoTokenFunc               on_token,
                                                      gpointer                   token_data,
                                                      GDestroyNotify             token_notify,
                                                      GCancellable              *cancellable,
                                                      GAsyncReadyCallback        callback,
                                                      gpointer                   user_data);
EXO_AVAILABLE_IN_ALL
ExoChatResult *exo_node_role_chat_finish             (ExoNodeRole               *self,
                                                      GAsyncResult              *result,
                                                      GError                   **error);

G_END_DECLS
