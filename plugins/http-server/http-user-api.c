/* http-user-api.c: the user API of ExoHttpServer, OpenAI's where OpenAI
 * has one (docs/cluster-protocol.md):
 *
 *   POST /v1/chat/completions  a chat, answered whole ("chat.completion")
 *                              or, with "stream": true, as server-sent
 *                              events: a "chat.completion.chunk" per token,
 *                              a last one with "finish_reason" and "usage",
 *                              then `data: [DONE]`
 *   GET  /v1/models            the node's models
 *   GET  /v1/topology          the node's topology
 *   GET  /healthcheck          {"status":"ok"}, with or without a node
 *
 * With api-keys or api-key-file, every path but /healthcheck wants
 * `Authorization: Bearer` (checked before the body is read: http-routes.c,
 * http-auth.c).  The chat body is parsed and checked by http-request.c,
 * before the node is looked for (400 with its message).  The node is
 * called through exo_node_role_*() (libexo): its models and topology come
 * typed and are written as JSON by http-node-json.c; a chat ends with its
 * ExoChatResult, whose finish reason and token counts the answer reports.
 * A call the node lacks is answered 501.
 *
 * Rules: handlers, the node's token callback and its finish callback run
 * in the server's GMainContext; no locks.  A chat is a Request
 * (http-routes.c) with the chat fields: made by the handler, owned by the
 * node call (chat_done() takes it and frees it when it returns), lent to
 * chat_token_cb(), which the node calls only before chat_done().  A
 * streamed answer gets its status and headers at once and a chunk per
 * token; every token restarts the request's timer.  When the client goes
 * away the node call is cancelled (a node cancels the request on every
 * shard); tokens and an end that still arrive are counted and written
 * nowhere.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-server-private.h"
#include "http-node-json.h"
#include "http-request.h"

#include <string.h>

/* --- /healthcheck, /v1/models, /v1/topology ------------------------------ */

void
http_server_handle_healthcheck (ExoHttpServer     *self,
                                SoupServerMessage *msg,
                                const guint8      *body,
                                gsize              body_len)
{
  http_server_respond_string (msg, SOUP_STATUS_OK, "application/json", g_strdup ("{\"status\":\"ok\"}"));
}

void
http_server_handle_models (ExoHttpServer     *self,
                           SoupServerMessage *msg,
                           const guint8      *body,
                           gsize              body_len)
{
  g_autoptr(GVariant) models = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  REQUIRE_NODE (self, msg, node);

  models = exo_node_role_list_models (node, &error);
  if (models == NULL)
    {
      http_server_respond_node_error (msg, error);
      return;
    }
  root = http_node_models_to_json (models);
  http_server_respond_json (msg, SOUP_STATUS_OK, root);
}

void
http_server_handle_topology (ExoHttpServer     *self,
                             SoupServerMessage *msg,
                             const guint8      *body,
                             gsize              body_len)
{
  g_autoptr(GVariant) topology = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  REQUIRE_NODE (self, msg, node);

  topology = exo_node_role_get_topology (node, &error);
  if (topology == NULL)
    {
      http_server_respond_node_error (msg, error);
      return;
    }
  root = http_node_topology_to_json (topology);
  http_server_respond_json (msg, SOUP_STATUS_OK, root);
}

/* --- /v1/chat/completions ------------------------------------------------ */

/* The model a request without "model" gets: the first of the node's
 * models, else "default". */
static char *
default_model (ExoNodeRole *node)
{
  g_autoptr(GVariant) models = exo_node_role_list_models (node, NULL);
  char *id = models != NULL ? http_node_models_first_id (models) : NULL;

  return id != NULL ? id : g_strdup ("default");
}

static void
builder_add_chat_header (JsonBuilder *builder,
                         Request     *req,
                         const char  *object)
{
  g_autofree char *id = g_strdup_printf ("chatcmpl-%s", req->request_id);

  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, id);
  json_builder_set_member_name (builder, "object");
  json_builder_add_string_value (builder, object);
  json_builder_set_member_name (builder, "created");
  json_builder_add_int_value (builder, req->created);
  json_builder_set_member_name (builder, "model");
  json_builder_add_string_value (builder, req->model);
}

static void
builder_add_usage (JsonBuilder *builder,
                   Request     *req)
{
  /* prompt_tokens: as the node encoded the prompt (0 if it does not say) */
  json_builder_set_member_name (builder, "usage");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "prompt_tokens");
  json_builder_add_int_value (builder, req->prompt_tokens);
  json_builder_set_member_name (builder, "completion_tokens");
  json_builder_add_int_value (builder, req->n_tokens);
  json_builder_set_member_name (builder, "total_tokens");
  json_builder_add_int_value (builder, req->prompt_tokens + req->n_tokens);
  json_builder_end_object (builder);
}

/* data: {chat.completion.chunk} */
static void
stream_chunk (Request    *req,
              const char *content,          /* nullable: no content */
              const char *finish_reason)    /* nullable */
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *json = NULL;
  g_autofree char *event = NULL;

  json_builder_begin_object (builder);
  builder_add_chat_header (builder, req, "chat.completion.chunk");
  json_builder_set_member_name (builder, "choices");
  json_builder_begin_array (builder);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "index");
  json_builder_add_int_value (builder, 0);
  json_builder_set_member_name (builder, "delta");
  json_builder_begin_object (builder);
  if (!req->sent_role)
    {
      json_builder_set_member_name (builder, "role");
      json_builder_add_string_value (builder, "assistant");
      req->sent_role = TRUE;
    }
  if (content != NULL)
    {
      json_builder_set_member_name (builder, "content");
      json_builder_add_string_value (builder, content);
    }
  json_builder_end_object (builder);
  json_builder_set_member_name (builder, "finish_reason");
  if (finish_reason != NULL)
    json_builder_add_string_value (builder, finish_reason);
  else
    json_builder_add_null_value (builder);
  json_builder_end_object (builder);
  json_builder_end_array (builder);
  if (finish_reason != NULL)
    builder_add_usage (builder, req);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json = exo_http_node_to_string (root);
  event = g_strdup_printf ("data: %s\n\n", json);
  http_server_stream_append (req, event);
}

static void
chat_token_cb (const char   *request_id,
               const gint32 *tokens,
               gsize         n_tokens,
               const char   *text,
               gboolean      is_finished,
               gpointer      user_data)
{
  Request *req = user_data;
  g_autofree char *valid = g_utf8_make_valid (text != NULL ? text : "", -1);

  http_server_request_observe_tokens (req, n_tokens);
  req->n_tokens += n_tokens;
  g_string_append (req->text, valid);
  if (!http_server_request_can_answer (req))
    return;
  http_server_request_restart_timer (req);
  if (req->stream && (n_tokens > 0 || valid[0] != '\0'))
    stream_chunk (req, valid, NULL);
}

static void
chat_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(Request) req = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoChatResult) chat = exo_node_role_chat_finish (EXO_NODE_ROLE (source), result, &error);
  g_autoptr(JsonBuilder) builder = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *content = NULL;
  const char *finish_reason;

  if (chat == NULL)
    {
      http_server_request_fail_error (req, error);
      return;
    }
  /* usage: as the node counted (the prompt: 0 when it does not say; the
   * answer: the tokens streamed when it does not say) */
  req->prompt_tokens = MAX (exo_chat_result_get_prompt_tokens (chat), 0);
  if (exo_chat_result_get_completion_tokens (chat) >= 0)
    req->n_tokens = (guint) MIN (exo_chat_result_get_completion_tokens (chat), (gint64) G_MAXUINT);
  finish_reason = exo_chat_result_get_finish_reason (chat);
  if (!http_server_request_can_answer (req))
    return;

  if (req->stream)
    {
      stream_chunk (req, NULL, finish_reason);
      http_server_stream_append (req, "data: [DONE]\n\n");
      http_server_stream_end (req);
      return;
    }

  content = g_utf8_make_valid (exo_chat_result_get_text (chat), -1);
  builder = json_builder_new_immutable ();
  json_builder_begin_object (builder);
  builder_add_chat_header (builder, req, "chat.completion");
  json_builder_set_member_name (builder, "choices");
  json_builder_begin_array (builder);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "index");
  json_builder_add_int_value (builder, 0);
  json_builder_set_member_name (builder, "message");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "role");
  json_builder_add_string_value (builder, "assistant");
  json_builder_set_member_name (builder, "content");
  json_builder_add_string_value (builder, content);
  json_builder_end_object (builder);
  json_builder_set_member_name (builder, "finish_reason");
  json_builder_add_string_value (builder, finish_reason);
  json_builder_end_object (builder);
  json_builder_end_array (builder);
  builder_add_usage (builder, req);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  http_server_request_answer_json (req, SOUP_STATUS_OK, root);
}

void
http_server_handle_chat (ExoHttpServer     *self,
                         SoupServerMessage *msg,
                         const guint8      *body,
                         gsize              body_len)
{
  g_autoptr(ExoHttpChatRequest) chat = NULL;
  g_autoptr(GError) error = NULL;
  Request *req;

  /* Validate before looking for the node: a bad request is bad anyway. */
  chat = exo_http_chat_request_parse ((const char *) body, body_len, &error);
  if (chat == NULL)
    {
      http_server_respond_bad_request (msg, error);
      return;
    }

  {
    REQUIRE_NODE (self, msg, node);

    req = http_server_request_new (self, msg, node, REQUEST_CHAT);
    req->stream = chat->stream;
    req->request_id = g_uuid_string_random ();
    req->model = chat->model != NULL ? g_strdup (chat->model) : default_model (node);
    req->text = g_string_new (NULL);
    req->created = g_get_real_time () / G_USEC_PER_SEC;

    if (chat->stream)
      {
        SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

        self->n_streams++;
        soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
        soup_message_headers_set_content_type (headers, "text/event-stream", NULL);
        soup_message_headers_replace (headers, "Cache-Control", "no-cache");
        soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
      }

    exo_node_role_chat_async (node, req->model, chat->prompt, req->request_id, chat->params,
                              chat_token_cb, req, NULL, req->cancellable, chat_done, req);
  }
}
