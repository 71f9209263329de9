/* http-completions.c: the JSON of a generation's answers, for
 * http-user-api.c:
 *
 *   chat, whole     {"id": "chatcmpl-…", "object": "chat.completion",
 *                    "created", "model", "choices": [{"index": 0,
 *                    "message": {"role": "assistant", "content"},
 *                    "finish_reason"}], "usage"}
 *   chat, streamed  {"id", "object": "chat.completion.chunk", "created",
 *                    "model", "choices": [{"index": 0, "delta": {"role"
 *                    (the first), "content"}, "finish_reason"}]}
 *   completion      {"id": "cmpl-…", "object": "text_completion",
 *                    "created", "model", "choices": [{"text", "index": 0,
 *                    "logprobs": null, "finish_reason"}], "usage"}, and
 *                    streamed the same object with the new text
 *
 * A stream ends with a chunk whose choice has the finish reason.  With
 * stream_options.include_usage (OpenAI's way) every chunk has
 * "usage": null and one more, with "choices": [] and the usage, follows;
 * without it the last chunk carries the usage (more than OpenAI sends,
 * which its clients ignore).  Then `data: [DONE]`.
 *
 * Rules: called by http-user-api.c in the server's GMainContext with a
 * Request that can still be answered (http_server_request_can_answer());
 * no state of its own, no locks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-completions.h"

static void
builder_add_header (JsonBuilder *builder,
                    Request     *req,
                    gboolean     chunk)
{
  g_autofree char *id = g_strdup_printf ("%s-%s", req->is_text ? "cmpl" : "chatcmpl",
                                         req->request_id);

  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, id);
  json_builder_set_member_name (builder, "object");
  json_builder_add_string_value (builder, req->is_text ? "text_completion"
                                          : chunk ? "chat.completion.chunk" : "chat.completion");
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

static void
builder_add_nullable (JsonBuilder *builder,
                      const char  *name,
                      const char  *value)
{
  json_builder_set_member_name (builder, name);
  if (value != NULL)
    json_builder_add_string_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

/* The one choice of an answer: @text (nullable: none) as a chat's message
 * (@chunk: its delta) or a completion's text. */
static void
builder_add_choice (JsonBuilder *builder,
                    Request     *req,
                    gboolean     chunk,
                    const char  *text,
                    const char  *finish_reason)
{
  json_builder_begin_object (builder);
  if (req->is_text)
    {
      json_builder_set_member_name (builder, "text");
      json_builder_add_string_value (builder, text != NULL ? text : "");
    }
  json_builder_set_member_name (builder, "index");
  json_builder_add_int_value (builder, 0);
  if (req->is_text)
    builder_add_nullable (builder, "logprobs", NULL);
  else
    {
      json_builder_set_member_name (builder, chunk ? "delta" : "message");
      json_builder_begin_object (builder);
      if (!chunk || !req->sent_role)
        {
          json_builder_set_member_name (builder, "role");
          json_builder_add_string_value (builder, "assistant");
          req->sent_role = TRUE;
        }
      if (text != NULL)
        {
          json_builder_set_member_name (builder, "content");
          json_builder_add_string_value (builder, text);
        }
      json_builder_end_object (builder);
    }
  builder_add_nullable (builder, "finish_reason", finish_reason);
  json_builder_end_object (builder);
}

static void
stream_event (Request     *req,
              JsonBuilder *builder)
{
  g_autoptr(JsonNode) root = json_builder_get_root (builder);
  g_autofree char *json = exo_http_node_to_string (root);
  g_autofree char *event = g_strdup_printf ("data: %s\n\n", json);

  http_server_stream_append (req, event);
}

void
http_completion_stream_chunk (Request    *req,
                              const char *text,
                              const char *finish_reason)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();

  json_builder_begin_object (builder);
  builder_add_header (builder, req, TRUE);
  json_builder_set_member_name (builder, "choices");
  json_builder_begin_array (builder);
  builder_add_choice (builder, req, TRUE, text, finish_reason);
  json_builder_end_array (builder);
  if (req->include_usage)
    builder_add_nullable (builder, "usage", NULL);
  else if (finish_reason != NULL)
    builder_add_usage (builder, req);
  json_builder_end_object (builder);
  stream_event (req, builder);
}

void
http_completion_stream_end (Request    *req,
                            const char *finish_reason)
{
  http_completion_stream_chunk (req, NULL, finish_reason);
  if (req->include_usage)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();

      json_builder_begin_object (builder);
      builder_add_header (builder, req, TRUE);
      json_builder_set_member_name (builder, "choices");
      json_builder_begin_array (builder);
      json_builder_end_array (builder);
      builder_add_usage (builder, req);
      json_builder_end_object (builder);
      stream_event (req, builder);
    }
  http_server_stream_append (req, "data: [DONE]\n\n");
  http_server_stream_end (req);
}

void
http_completion_answer (Request    *req,
                        const char *text,
                        const char *finish_reason)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  builder_add_header (builder, req, FALSE);
  json_builder_set_member_name (builder, "choices");
  json_builder_begin_array (builder);
  builder_add_choice (builder, req, FALSE, text, finish_reason);
  json_builder_end_array (builder);
  builder_add_usage (builder, req);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  http_server_request_answer_json (req, SOUP_STATUS_OK, root);
}
