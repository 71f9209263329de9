/* node-role.c: the node as an ExoNodeRole, what the http-server plugin
 * calls: for its peers, the peer RPC of docs/cluster-protocol.md
 * (process_prompt, process_tensor, process_result, cancel_request,
 * collect_topology), and for its users, the API (chat, the models, the
 * topology).
 *
 * Each vfunc checks what it is given (the node running and usable, the
 * request id, the shard's model and layers, the generation parameters,
 * the limits) and hands the work over: requests to node-requests.c and
 * node-work.c, the topology to node-ring.c.  As in exo, process_prompt and
 * process_tensor answer once the work is accepted, not when it is done;
 * chat answers when its request ends.
 *
 * Rules: called on the node's main context (the http-server runs there
 * too); no threads, no locks.  The vfuncs may be called in any state of
 * the node: those that act check self->running first and ignore or
 * refuse what comes while the node is not running; the getters answer in
 * any state.  What a vfunc refuses, or accepts
 * at once, it answers in the iteration that made the task, so the
 * caller's callback runs from an idle, never within the vfunc; chat and
 * collect_topology may answer later, from a callback of the node (see
 * the re-entrancy rule in node-requests.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "node-private.h"

static gboolean
check_running (ExoClusterNode  *self,
               GError         **error)
{
  if (!self->running || !exo_resource_is_usable (EXO_RESOURCE (self)))
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                   "node '%s' is %s", self_id (self),
                   exo_resource_state_to_string (exo_resource_get_state (EXO_RESOURCE (self))));
      return FALSE;
    }
  return TRUE;
}

/* Parameters a caller (another server plugin, a test) passes in: what the
 * peer RPC accepts.  NULL is the defaults. */
static gboolean
check_params (const ExoGenerationParams  *params,
              GError                    **error)
{
  if (params == NULL)
    return TRUE;
  if (!(params->temperature >= 0 && params->temperature <= 2))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "temperature %g is out of range (0 to 2)", params->temperature);
      return FALSE;
    }
  if (!(params->top_p > 0 && params->top_p <= 1))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "top_p %g is out of range (more than 0, at most 1)", params->top_p);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_request (ExoClusterNode  *self,
               const ExoShard  *shard,
               const char      *request_id,
               GError         **error)
{
  if (!check_running (self, error))
    return FALSE;
  if (!node_id_is_valid (request_id))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "invalid request id");
      return FALSE;
    }
  if (shard != NULL &&
      (g_strcmp0 (shard->model_id, self->model_id) != 0 || shard->n_layers != self->n_layers))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "shard of model '%s' with %u layers; node %s serves '%s' with %u layers",
                   shard->model_id, shard->n_layers, self->node_id, self->model_id,
                   self->n_layers);
      return FALSE;
    }
  return TRUE;
}

static const char *
node_get_node_id (ExoNodeRole *role)
{
  return EXO_CLUSTER_NODE (role)->node_id;
}

static void
node_process_prompt_async (ExoNodeRole               *role,
                           const ExoShard            *shard,
                           const char                *prompt,
                           const char                *request_id,
                           const ExoGenerationParams *params,
                           GCancellable              *cancellable,
                           GAsyncReadyCallback        callback,
                           gpointer                   user_data)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, node_process_prompt_async);
  if (!check_request (self, shard, request_id, &error) || !check_params (params, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (prompt == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no prompt");
      return;
    }
  g_task_return_boolean (task, TRUE);
  start_prompt (self, request_id, prompt, params);
}

static gboolean
node_boolean_finish (ExoNodeRole   *role,
                     GAsyncResult  *result,
                     GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, role), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
node_process_tensor_async (ExoNodeRole               *role,
                           const ExoShard            *shard,
                           ExoTensor                 *tensor,
                           const char                *request_id,
                           const ExoGenerationParams *params,
                           GCancellable              *cancellable,
                           GAsyncReadyCallback        callback,
                           gpointer                   user_data)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;
  NodeShardAssignment *mine;

  g_task_set_source_tag (task, node_process_tensor_async);
  if (!check_request (self, shard, request_id, &error) || !check_params (params, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (tensor == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no tensor");
      return;
    }
  mine = ring_find (self->shards, self->node_id);
  if (mine == NULL)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                               "node %s holds no layers in its ring", self->node_id);
      return;
    }
  g_task_return_boolean (task, TRUE);
  if (drop_if_cancelled (self, request_id))
    return;
  /* As exo: our own shard, whatever the sender thought it was. */
  run_infer (self, request_id, shard_for (self, mine), tensor, params);
}

static void
node_process_result (ExoNodeRole  *role,
                     const char   *request_id,
                     const gint32 *tokens,
                     gsize         n_tokens,
                     gboolean      is_finished)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);

  if (!self->running || request_id == NULL || (tokens == NULL && n_tokens > 0))
    return;
  handle_result (self, request_id, tokens, n_tokens, is_finished);
}

/* A peer (the API node of @request_id) abandoned it. */
static void
node_cancel_request (ExoNodeRole *role,
                     const char  *request_id)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);

  if (!self->running || !node_id_is_valid (request_id))
    return;
  request_cancel_from_peer (self, request_id);
}

static void
node_collect_topology_async (ExoNodeRole         *role,
                             const char *const   *visited,
                             guint                max_depth,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, node_collect_topology_async);
  if (!check_running (self, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  /* Our answer must arrive within the caller's bound: ask further peers
   * for half of it. */
  collect_begin (self, visited, MIN (max_depth, 16u), MAX (self->peer_timeout_ms / 2, 50u), task);
}

static char *
node_collect_topology_finish (ExoNodeRole   *role,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, role), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static char *
node_get_models_json (ExoNodeRole *role)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "object");
  json_builder_add_string_value (builder, "list");
  json_builder_set_member_name (builder, "data");
  json_builder_begin_array (builder);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, self->model_id);
  json_builder_set_member_name (builder, "object");
  json_builder_add_string_value (builder, "model");
  json_builder_set_member_name (builder, "owned_by");
  json_builder_add_string_value (builder, "exo");
  json_builder_set_member_name (builder, "n_layers");
  json_builder_add_int_value (builder, self->n_layers);
  json_builder_set_member_name (builder, "ready");
  json_builder_add_boolean_value (builder, self->running);
  json_builder_end_object (builder);
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, NULL);
}

static char *
node_get_topology_json (ExoNodeRole *role)
{
  return dup_topology_json (EXO_CLUSTER_NODE (role));
}

static void
node_chat_async (ExoNodeRole               *role,
                 const char                *model,
                 const char                *prompt,
                 const char                *request_id,
                 const ExoGenerationParams *params,
                 ExoTokenFunc               on_token,
                 gpointer                   token_data,
                 GCancellable              *cancellable,
                 GAsyncReadyCallback        callback,
                 gpointer                   user_data)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autofree char *id = NULL;
  GError *error = NULL;

  g_task_set_source_tag (task, node_chat_async);
  if (!check_running (self, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (model != NULL && *model != '\0' && g_strcmp0 (model, self->model_id) != 0)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                               "model '%s' is not served here; this cluster serves '%s'",
                               model, self->model_id);
      return;
    }
  if (prompt == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no prompt");
      return;
    }
  if (!check_params (params, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  id = request_id != NULL ? g_strdup (request_id) : g_uuid_string_random ();
  if (!node_id_is_valid (id))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "invalid request id");
      return;
    }
  if (request_lookup (self, id) != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_EXISTS,
                               "request %s is already in progress", id);
      return;
    }
  if (g_hash_table_size (self->requests) >= MAX_REQUESTS)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_BUSY,
                               "too many requests in progress (limit %d)", MAX_REQUESTS);
      return;
    }
  if (self->shards == NULL || self->shards->len == 0)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                               "node %s has no ring to run on", self->node_id);
      return;
    }

  request_start (self, id, prompt, params, on_token, token_data, cancellable,
                 g_steal_pointer (&task));
}

/* Set by request_complete() (node-requests.c): the count + 1, 0 unknown. */
static gint64
node_chat_get_prompt_tokens (ExoNodeRole  *role,
                             GAsyncResult *result)
{
  g_return_val_if_fail (g_task_is_valid (result, role), -1);
  return (gint64) GPOINTER_TO_SIZE (g_task_get_task_data (G_TASK (result))) - 1;
}

static char *
node_chat_finish (ExoNodeRole   *role,
                  GAsyncResult  *result,
                  GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, role), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
exo_cluster_node_role_init (ExoNodeRoleInterface *iface)
{
  iface->get_node_id = node_get_node_id;
  iface->process_prompt_async = node_process_prompt_async;
  iface->process_prompt_finish = node_boolean_finish;
  iface->process_tensor_async = node_process_tensor_async;
  iface->process_tensor_finish = node_boolean_finish;
  iface->process_result = node_process_result;
  iface->collect_topology_async = node_collect_topology_async;
  iface->collect_topology_finish = node_collect_topology_finish;
  iface->get_models_json = node_get_models_json;
  iface->get_topology_json = node_get_topology_json;
  iface->chat_async = node_chat_async;
  iface->chat_finish = node_chat_finish;
  iface->cancel_request = node_cancel_request;
  iface->chat_get_prompt_tokens = node_chat_get_prompt_tokens;
}
