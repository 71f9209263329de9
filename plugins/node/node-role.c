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
 * chat answers when its request ends.  The values are typed (exo-node-role.h):
 * the models and the topology as GVariants, the end of a chat as an
 * ExoChatResult; the http-server writes them as JSON.
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
  /* The stop strings as exo_generation_params_set_stop() leaves them (a
   * caller may have set the field itself). */
  for (guint i = 0; params->stop != NULL && params->stop[i] != NULL; i++)
    if (i >= EXO_GENERATION_MAX_STOP || params->stop[i][0] == '\0' ||
        strlen (params->stop[i]) > EXO_GENERATION_MAX_STOP_LEN)
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                     "stop strings: at most %d, each of 1 to %d bytes",
                     EXO_GENERATION_MAX_STOP, EXO_GENERATION_MAX_STOP_LEN);
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
  take_tensor (self, request_id, shard_for (self, mine), tensor, params);
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

/* A peer's work on @request_id failed (/peer/v1/failure): when we answer
 * the request, its caller gets @failure now, and the ring is told to drop
 * it; else nothing. */
static void
node_process_failure (ExoNodeRole  *role,
                      const char   *request_id,
                      const GError *failure)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);
  Request *req;

  if (!self->running || !node_id_is_valid (request_id) || failure == NULL)
    return;
  req = request_lookup (self, request_id);
  if (req == NULL || !req->is_api || req->task == NULL)
    return;
  self->failures_received++;
  request_fail (self, req, g_error_new_literal (failure->domain, failure->code, failure->message));
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

static GVariant *
node_collect_topology_finish (ExoNodeRole   *role,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, role), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* EXO_NODE_ROLE_MODELS_TYPE: the one model the cluster serves; `created`
 * is when this node started serving it (its engine had loaded it). */
static GVariant *
node_list_models (ExoNodeRole *role)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);
  GVariantBuilder models;
  GVariantDict model;

  g_variant_dict_init (&model, NULL);
  g_variant_dict_insert (&model, "id", "s", self->model_id);
  if (self->serving_since > 0)
    g_variant_dict_insert (&model, "created", "x", self->serving_since);
  g_variant_dict_insert (&model, "owned-by", "s", "exo");
  g_variant_dict_insert (&model, "n-layers", "u", self->n_layers);
  g_variant_dict_insert (&model, "ready", "b", self->running);
  g_variant_builder_init (&models, G_VARIANT_TYPE (EXO_NODE_ROLE_MODELS_TYPE));
  g_variant_builder_add_value (&models, g_variant_dict_end (&model));
  return g_variant_builder_end (&models);
}

static GVariant *
node_get_topology (ExoNodeRole *role)
{
  return dup_topology_variant (EXO_CLUSTER_NODE (role));
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

/* Made by request_complete() (node-requests.c). */
static ExoChatResult *
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
  iface->cancel_request = node_cancel_request;
  iface->process_failure = node_process_failure;
  iface->list_models = node_list_models;
  iface->get_topology = node_get_topology;
  iface->chat_async = node_chat_async;
  iface->chat_finish = node_chat_finish;
}
