/* http-peer-rpc.c: the server side of peer RPC, the /peer/v1/ routes
 * (docs/cluster-protocol.md) that other nodes call through their
 * ExoHttpPeer (http-peer.c, the client side):
 *
 *   GET  /peer/v1/health     {"status": "ok", "node_id": …}
 *   GET  /peer/v1/status     the node's state, requests in flight, peer handles
 *   POST /peer/v1/prompt     a prompt for a shard: 202 when the node's call succeeds
 *   POST /peer/v1/tensor     a tensor (X-Exo-* headers, raw body): 202 likewise
 *   POST /peer/v1/result     tokens of a request, for the node
 *   POST /peer/v1/topology   the topology, collected from this node on
 *   POST /peer/v1/cancel     a request abandoned: the node drops its work
 *   POST /peer/v1/failure    work of a request of this node failed on the peer
 *
 * Bodies are parsed and checked by http-request.c (400 with its message).
 * Every request here was signed with the cluster key and verified before
 * its handler runs, and its answer is signed (http-routes.c, http-auth.c).
 * Prompt and tensor calls carry a call id (X-Exo-Call-Id), the same on
 * every retry: a call seen before is answered 202 `{"duplicate":true}`
 * without being done again (the last EXO_HTTP_MAX_SEEN_CALLS ids are
 * remembered), and a call that fails is forgotten, so that its retry runs.
 * The peer stream's tensor calls (http-stream-server.c) share the table.
 *
 * Rules: handlers and the node's callbacks run in the server's
 * GMainContext; no locks.  Prompt, tensor and topology calls make a
 * Request (http-routes.c), owned by the node call and freed when its
 * callback returns; when the calling peer goes away, the request times
 * out or the server stops, the node call is cancelled and its end is
 * answered nowhere.  Health, status, result and cancel are answered at
 * once.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-server-private.h"
#include "http-node-json.h"
#include "http-request.h"

static void
respond_empty_object (SoupServerMessage *msg,
                      guint              status)
{
  http_server_respond_string (msg, status, "application/json", g_strdup ("{}"));
}

/* --- health and status --------------------------------------------------- */

void
http_server_handle_peer_health (ExoHttpServer     *self,
                                SoupServerMessage *msg,
                                const guint8      *body,
                                gsize              body_len)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  const char *node_id;
  REQUIRE_NODE (self, msg, node);

  node_id = exo_node_role_get_node_id (node);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "status");
  json_builder_add_string_value (builder, "ok");
  json_builder_set_member_name (builder, "node_id");
  json_builder_add_string_value (builder, node_id != NULL ? node_id : "");
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  http_server_respond_json (msg, SOUP_STATUS_OK, root);
}

void
http_server_handle_peer_status (ExoHttpServer     *self,
                                SoupServerMessage *msg,
                                const guint8      *body,
                                gsize              body_len)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) all = NULL;
  const char *node_id;
  REQUIRE_NODE (self, msg, node);

  node_id = exo_node_role_get_node_id (node);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "node_id");
  json_builder_add_string_value (builder, node_id != NULL ? node_id : "");
  json_builder_set_member_name (builder, "state");
  json_builder_add_string_value (builder,
                                 exo_resource_state_to_string (exo_resource_get_state (EXO_RESOURCE (node))));
  json_builder_set_member_name (builder, "requests_in_flight");
  json_builder_add_int_value (builder, g_hash_table_size (self->requests));
  json_builder_set_member_name (builder, "peers");
  json_builder_begin_array (builder);
  all = exo_registry_list (exo_registry_get_default ());
  for (guint i = 0; i < all->len; i++)
    {
      ExoResource *resource = g_ptr_array_index (all, i);
      ExoPeerHandle *peer;
      const char *peer_id, *address;

      if (!EXO_IS_PEER_HANDLE (resource))
        continue;
      peer = EXO_PEER_HANDLE (resource);
      peer_id = exo_peer_handle_get_peer_id (peer);
      address = exo_peer_handle_get_address (peer);
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "node_id");
      json_builder_add_string_value (builder, peer_id != NULL ? peer_id : "");
      json_builder_set_member_name (builder, "address");
      json_builder_add_string_value (builder, address != NULL ? address : "");
      json_builder_set_member_name (builder, "state");
      json_builder_add_string_value (builder,
                                     exo_resource_state_to_string (exo_resource_get_state (resource)));
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  http_server_respond_json (msg, SOUP_STATUS_OK, root);
}

/* --- prompts and tensors, once per call id ------------------------------- */

/* A peer call seen before (a retry of an attempt that timed out on the
 * caller's side while we worked on it, over HTTP or the peer stream) is
 * answered without doing it again. */
gboolean
http_server_call_seen (ExoHttpServer  *self,
                       const char     *call_id,
                       char          **out_call_id)
{
  char *copy;

  *out_call_id = NULL;
  if (call_id == NULL || !exo_http_id_is_valid (call_id))
    return FALSE;
  if (g_hash_table_contains (self->seen_calls, call_id))
    {
      self->n_duplicate_calls++;
      return TRUE;
    }
  while (self->seen_order.length >= EXO_HTTP_MAX_SEEN_CALLS)
    {
      char *oldest = g_queue_pop_head (&self->seen_order);
      g_hash_table_remove (self->seen_calls, oldest);
      g_free (oldest);
    }
  copy = g_strdup (call_id);
  g_queue_push_tail (&self->seen_order, copy);
  g_hash_table_insert (self->seen_calls, copy, self->seen_order.tail);
  *out_call_id = g_strdup (call_id);
  return FALSE;
}

/* The request of a prompt or tensor call, answered 202 when it succeeds;
 * NULL when the call was seen before (then it is answered here). */
static Request *
peer_request_new (ExoHttpServer     *self,
                  SoupServerMessage *msg,
                  ExoNodeRole       *node)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  char *call_id = NULL;
  Request *req;

  if (http_server_call_seen (self, soup_message_headers_get_one (headers, EXO_HTTP_HEADER_CALL_ID),
                             &call_id))
    {
      http_server_respond_string (msg, SOUP_STATUS_ACCEPTED, "application/json",
                                  g_strdup ("{\"duplicate\":true}"));
      return NULL;
    }
  req = http_server_request_new (self, msg, node, REQUEST_PEER);
  req->call_id = call_id;
  req->status_ok = SOUP_STATUS_ACCEPTED;
  return req;
}

/* The call failed here: a retry must be done, not skipped. */
void
http_server_call_forget (ExoHttpServer *self,
                         const char    *call_id)
{
  GList *link;

  if (call_id == NULL || self->seen_calls == NULL)
    return;
  link = g_hash_table_lookup (self->seen_calls, call_id);
  if (link == NULL)
    return;
  g_hash_table_remove (self->seen_calls, call_id);
  g_free (link->data);
  g_queue_delete_link (&self->seen_order, link);
}

static void
peer_call_done (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(Request) req = user_data;
  ExoNodeRole *node = EXO_NODE_ROLE (source);
  g_autoptr(GError) error = NULL;
  gboolean ok;

  if (req->is_tensor)
    ok = exo_node_role_process_tensor_finish (node, result, &error);
  else
    ok = exo_node_role_process_prompt_finish (node, result, &error);

  if (!ok)
    {
      http_server_call_forget (req->self, req->call_id);
      http_server_request_fail_error (req, error);
      return;
    }
  http_server_request_answer_string (req, req->status_ok, g_strdup ("{}"));
}

void
http_server_handle_peer_prompt (ExoHttpServer     *self,
                                SoupServerMessage *msg,
                                const guint8      *body,
                                gsize              body_len)
{
  g_autoptr(ExoHttpPromptRequest) prompt = NULL;
  g_autoptr(GError) error = NULL;
  Request *req;
  REQUIRE_NODE (self, msg, node);

  prompt = exo_http_prompt_request_parse ((const char *) body, body_len, &error);
  if (prompt == NULL)
    {
      http_server_respond_bad_request (msg, error);
      return;
    }

  req = peer_request_new (self, msg, node);
  if (req == NULL)
    return;
  exo_node_role_process_prompt_async (node, prompt->shard, prompt->prompt, prompt->request_id,
                                      prompt->params, req->cancellable, peer_call_done, req);
}

void
http_server_handle_peer_tensor (ExoHttpServer     *self,
                                SoupServerMessage *msg,
                                const guint8      *body,
                                gsize              body_len)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autoptr(ExoHttpTensorRequest) tensor = NULL;
  g_autoptr(GError) error = NULL;
  Request *req;
  REQUIRE_NODE (self, msg, node);

  tensor = exo_http_tensor_request_parse (soup_message_headers_get_one (headers, EXO_HTTP_HEADER_REQUEST_ID),
                                          soup_message_headers_get_one (headers, EXO_HTTP_HEADER_SHARD),
                                          soup_message_headers_get_one (headers, EXO_HTTP_HEADER_DTYPE),
                                          soup_message_headers_get_one (headers, EXO_HTTP_HEADER_SHAPE),
                                          soup_message_headers_get_one (headers, EXO_HTTP_HEADER_PARAMS),
                                          body, body_len, NULL, &error);
  if (tensor == NULL)
    {
      http_server_respond_bad_request (msg, error);
      return;
    }

  req = peer_request_new (self, msg, node);
  if (req == NULL)
    return;
  req->is_tensor = TRUE;
  exo_node_role_process_tensor_async (node, tensor->shard, tensor->tensor, tensor->request_id,
                                      tensor->params, req->cancellable, peer_call_done, req);
}

/* --- results and cancel -------------------------------------------------- */

void
http_server_handle_peer_result (ExoHttpServer     *self,
                                SoupServerMessage *msg,
                                const guint8      *body,
                                gsize              body_len)
{
  g_autoptr(ExoHttpResultRequest) result = NULL;
  g_autoptr(GError) error = NULL;
  REQUIRE_NODE (self, msg, node);

  result = exo_http_result_request_parse ((const char *) body, body_len, &error);
  if (result == NULL)
    {
      http_server_respond_bad_request (msg, error);
      return;
    }

  if (!exo_node_role_process_result (node, result->request_id, result->tokens, result->n_tokens,
                                     result->is_finished, &error))
    {
      http_server_respond_node_error (msg, error);
      return;
    }
  respond_empty_object (msg, SOUP_STATUS_OK);
}

/* The request is abandoned (its client went away, or it failed): the node
 * drops the work of it that arrives later. */
void
http_server_handle_peer_cancel (ExoHttpServer     *self,
                                SoupServerMessage *msg,
                                const guint8      *body,
                                gsize              body_len)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *request_id = NULL;
  REQUIRE_NODE (self, msg, node);

  request_id = exo_http_cancel_request_parse ((const char *) body, body_len, &error);
  if (request_id == NULL)
    {
      http_server_respond_bad_request (msg, error);
      return;
    }
  if (!exo_node_role_cancel_request (node, request_id, &error))
    {
      http_server_respond_node_error (msg, error);
      return;
    }
  respond_empty_object (msg, SOUP_STATUS_OK);
}

/* A peer's work on a request of ours failed. */
void
http_server_handle_peer_failure (ExoHttpServer     *self,
                                 SoupServerMessage *msg,
                                 const guint8      *body,
                                 gsize              body_len)
{
  g_autoptr(ExoHttpFailureRequest) failure = NULL;
  g_autoptr(GError) reported = NULL;
  g_autoptr(GError) error = NULL;
  REQUIRE_NODE (self, msg, node);

  failure = exo_http_failure_request_parse ((const char *) body, body_len, &error);
  if (failure == NULL)
    {
      http_server_respond_bad_request (msg, error);
      return;
    }
  reported = exo_http_error_for_failure (failure->status, failure->message);
  if (!exo_node_role_process_failure (node, failure->request_id, reported, &error))
    {
      http_server_respond_node_error (msg, error);
      return;
    }
  respond_empty_object (msg, SOUP_STATUS_OK);
}

/* --- topology ------------------------------------------------------------ */

static void
topology_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(Request) req = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) topology = exo_node_role_collect_topology_finish (EXO_NODE_ROLE (source),
                                                                        result, &error);
  g_autoptr(JsonNode) root = NULL;

  if (topology == NULL)
    {
      http_server_request_fail_error (req, error);
      return;
    }
  /* The TOPOLOGY of docs/cluster-protocol.md, as peers of every build read it. */
  root = http_node_topology_to_json (topology);
  http_server_request_answer_json (req, SOUP_STATUS_OK, root);
}

void
http_server_handle_peer_topology (ExoHttpServer     *self,
                                  SoupServerMessage *msg,
                                  const guint8      *body,
                                  gsize              body_len)
{
  g_autoptr(ExoHttpTopologyRequest) topology = NULL;
  g_autoptr(GError) error = NULL;
  Request *req;
  REQUIRE_NODE (self, msg, node);

  topology = exo_http_topology_request_parse ((const char *) body, body_len, &error);
  if (topology == NULL)
    {
      http_server_respond_bad_request (msg, error);
      return;
    }

  req = http_server_request_new (self, msg, node, REQUEST_TOPOLOGY);
  exo_node_role_collect_topology_async (node, (const char * const *) topology->visited,
                                        topology->max_depth, req->cancellable, topology_done, req);
}
