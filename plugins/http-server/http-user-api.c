/* http-user-api.c: the user API of ExoHttpServer, OpenAI's where OpenAI
 * has one (docs/cluster-protocol.md):
 *
 *   POST /v1/chat/completions  a chat, answered whole ("chat.completion")
 *                              or, with "stream": true, as server-sent
 *                              events: a "chat.completion.chunk" per token,
 *                              a last one with "finish_reason", then
 *                              `data: [DONE]`
 *   POST /v1/completions       a prompt as given, no chat template
 *                              ("text_completion"), whole or streamed the
 *                              same way; 16 tokens without max_tokens
 *                              (OpenAI's default); the text of "" without
 *                              the leading space of its first piece
 *   GET  /v1/models            the node's models
 *   GET  /v1/models/{id}       one of them (404 for another id)
 *   GET  /v1/topology          the node's topology
 *   GET  /healthcheck          {"status":"ok"}, with or without a node
 *
 * With api-keys or api-key-file, every path but /healthcheck wants
 * `Authorization: Bearer` (checked before the body is read: http-routes.c,
 * http-auth.c).  A body is parsed and checked by http-request.c before
 * the node is looked for (400 naming the field as OpenAI's "param"); a
 * model the node does not list is answered 404 ("model_not_found") before
 * the node is asked to generate.  The node is called through
 * exo_node_role_*() (libexo): its models and topology come typed and are
 * written as JSON by http-node-json.c; a generation ends with its
 * ExoChatResult, whose text, finish reason and token counts the answer
 * reports (the node applies the stop strings).  A call the node lacks is
 * answered 501.  Every error has OpenAI's shape (http-routes.c).  The
 * JSON of the answers is http-completions.c's.
 *
 * Rules: handlers, the node's token callback and its finish callback run
 * in the server's GMainContext; no locks.  A generation is a Request
 * (http-routes.c) with the chat fields: made by the handler, owned by the
 * node call (generation_done() takes it and frees it when it returns),
 * lent to generation_token_cb(), which the node calls only before
 * generation_done().  A streamed answer is opened (200 and its headers)
 * at its first token or at its end, whichever comes first, so a request
 * the node refuses before generating (an engine at max-sessions: 429 with
 * Retry-After) gets its own status as a whole answer; then a chunk per
 * token with text; every token restarts the request's timer.  When the
 * client goes away the node call is cancelled (a node cancels the request
 * on every shard); tokens and an end that still arrive are counted and
 * written nowhere.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-server-private.h"
#include "http-node-json.h"
#include "http-request.h"
#include "http-completions.h"

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

/* GET /v1/models/{id}: the model of that id, as in /v1/models. */
void
http_server_handle_model (ExoHttpServer     *self,
                          SoupServerMessage *msg,
                          const guint8      *body,
                          gsize              body_len)
{
  const char *path = g_uri_get_path (soup_server_message_get_uri (msg));
  g_autofree char *id = g_uri_unescape_string (path + strlen ("/v1/models/"), NULL);
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
  if (id != NULL && exo_http_id_is_valid (id))
    root = http_node_model_to_json (models, id);
  if (root == NULL)
    {
      g_autofree char *shown = exo_http_shown_text (id != NULL ? id : path, 128);

      http_server_respond_api_error (msg, SOUP_STATUS_NOT_FOUND, "model", "model_not_found",
                                     "The model '%s' does not exist", shown);
      return;
    }
  http_server_respond_json (msg, SOUP_STATUS_OK, root);
}

/* --- POST /v1/chat/completions, POST /v1/completions ------------------- */

static void
generation_token_cb (const char   *request_id,
                     const gint32 *tokens,
                     gsize         n_tokens,
                     const char   *text,
                     gboolean      is_finished,
                     gpointer      user_data)
{
  Request *req = user_data;
  g_autofree char *valid = g_utf8_make_valid (text != NULL ? text : "", -1);
  const char *shown = valid;

  /* The first text of a completion from BOS alone: see start_generation().
   * (req->text holds the text as the node decoded it: empty until then.) */
  if (req->from_bos && req->text->len == 0 && valid[0] == ' ')
    shown = valid + 1;
  http_server_request_observe_tokens (req, n_tokens);
  req->n_tokens += n_tokens;
  g_string_append (req->text, valid);
  if (!http_server_request_can_answer (req))
    return;
  http_server_request_restart_timer (req);
  if (req->stream)
    {
      /* The node is generating: the request can no longer be refused. */
      http_server_stream_begin (req);
      if (shown[0] != '\0')
        http_completion_stream_chunk (req, shown, NULL);
    }
}

static void
generation_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(Request) req = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoChatResult) chat = exo_node_role_chat_finish (EXO_NODE_ROLE (source), result, &error);
  g_autofree char *text = NULL;

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
  if (!http_server_request_can_answer (req))
    return;

  if (req->stream)
    {
      http_server_stream_begin (req);
      http_completion_stream_end (req, exo_chat_result_get_finish_reason (chat));
      return;
    }
  text = g_utf8_make_valid (exo_chat_result_get_text (chat), -1);
  http_completion_answer (req, req->from_bos && text[0] == ' ' ? text + 1 : text,
                          exo_chat_result_get_finish_reason (chat));
}

/* Both routes: the parsed request (@parsed, NULL when http-request.c
 * refused it with @error naming @param) to the node. */
static void
start_generation (ExoHttpServer      *self,
                  SoupServerMessage  *msg,
                  ExoHttpChatRequest *parsed,
                  const char         *param,
                  const GError       *error,
                  gboolean            is_text)
{
  g_autoptr(GVariant) models = NULL;
  Request *req;

  /* Validate before looking for the node: a bad request is bad anyway. */
  if (parsed == NULL)
    {
      http_server_respond_api_error (msg, SOUP_STATUS_BAD_REQUEST, param, NULL, "%s",
                                     error->message);
      return;
    }

  {
    REQUIRE_NODE (self, msg, node);

    /* A model the node does not list is refused here (a node that does
     * not list its models decides itself). */
    models = exo_node_role_list_models (node, NULL);
    if (parsed->model != NULL && models != NULL)
      {
        g_autoptr(JsonNode) known = http_node_model_to_json (models, parsed->model);

        if (known == NULL)
          {
            http_server_respond_api_error (msg, SOUP_STATUS_NOT_FOUND, "model", "model_not_found",
                                           "The model '%s' does not exist", parsed->model);
            return;
          }
      }

    req = http_server_request_new (self, msg, node, REQUEST_CHAT);
    req->stream = parsed->stream;
    req->include_usage = parsed->include_usage;
    req->is_text = is_text;
    /* A completion of "" generates from BOS alone.  The text of the piece
     * after BOS starts without its leading space (sentencepiece's and
     * llama2.c's decode: " One" is "One" at the start of a text), but the
     * node decodes each token's piece on its own, without the prompt
     * before it: that space is dropped here, from the first text.  A
     * prompt of text ends in a token of it, and its answer keeps its
     * space (" of" after "The"). */
    req->from_bos = is_text && parsed->prompt[0] == '\0';
    req->request_id = g_uuid_string_random ();
    req->model = parsed->model != NULL ? g_strdup (parsed->model) : NULL;
    if (req->model == NULL && models != NULL)
      req->model = http_node_models_first_id (models);
    if (req->model == NULL)
      req->model = g_strdup ("default");
    req->text = g_string_new (NULL);
    req->created = g_get_real_time () / G_USEC_PER_SEC;

    exo_node_role_chat_async (node, req->model, parsed->prompt, req->request_id, parsed->params,
                              generation_token_cb, req, NULL, req->cancellable, generation_done,
                              req);
  }
}

void
http_server_handle_chat (ExoHttpServer     *self,
                         SoupServerMessage *msg,
                         const guint8      *body,
                         gsize              body_len)
{
  g_autoptr(GError) error = NULL;
  const char *param = NULL;
  g_autoptr(ExoHttpChatRequest) parsed = exo_http_chat_request_parse ((const char *) body, body_len,
                                                                      &param, &error);

  start_generation (self, msg, parsed, param, error, FALSE);
}

/* The prompt goes to the node as given: no chat template.  The engine
 * encodes it as it encodes every prompt (the llama engine with BOS first,
 * as llama2.c does), so "" generates from BOS alone.  Without max_tokens
 * it generates OpenAI's default of /v1/completions (a chat: the node's
 * max-tokens). */
#define COMPLETION_DEFAULT_MAX_TOKENS 16

void
http_server_handle_completion (ExoHttpServer     *self,
                               SoupServerMessage *msg,
                               const guint8      *body,
                               gsize              body_len)
{
  g_autoptr(GError) error = NULL;
  const char *param = NULL;
  g_autoptr(ExoHttpChatRequest) parsed = exo_http_completion_request_parse ((const char *) body,
                                                                            body_len, &param,
                                                                            &error);

  if (parsed != NULL && parsed->params->max_tokens == 0)
    parsed->params->max_tokens = COMPLETION_DEFAULT_MAX_TOKENS;
  start_generation (self, msg, parsed, param, error, TRUE);
}
