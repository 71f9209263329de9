/* test-http-server-openai.c: OpenAI's shapes — error objects, refused
 * streams, 503 with Retry-After, /v1/completions (OpenAI's default of 16
 * tokens), usage and the models list.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-http-server (main() in test-http-server.c).  One thread:
 * the server, the fake node and the clients run in the main context of the
 * test's thread; the test spins it until the asynchronous calls complete.
 */
#include "http-server-fixture.h"

/* --- OpenAI's shapes ------------------------------------------------------- */

/* Asserts @reply is @status with OpenAI's error object {"message" holding
 * @needle (nullable), "type", "param", "code"} (@param, @code nullable:
 * null). */
static void
assert_openai_error (Reply      *reply,
                     guint       status,
                     const char *type,
                     const char *param,
                     const char *code,
                     const char *needle)
{
  g_autoptr(JsonNode) root = NULL;
  JsonObject *e;

  assert_error_reply (reply, status, needle);
  root = reply_json (reply);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_object_get_member (json_node_get_object (root), "error")));
  e = json_object_get_object_member (json_node_get_object (root), "error");
  g_assert_cmpuint (json_object_get_size (e), ==, 4);
  g_assert_cmpstr (json_object_get_string_member (e, "type"), ==, type);
  if (param != NULL)
    g_assert_cmpstr (json_object_get_string_member (e, "param"), ==, param);
  else
    g_assert_true (json_object_get_null_member (e, "param"));
  if (code != NULL)
    g_assert_cmpstr (json_object_get_string_member (e, "code"), ==, code);
  else
    g_assert_true (json_object_get_null_member (e, "code"));
}

/* Asserts @reply is the peer API's {"error": text} with @status. */
static void
assert_peer_error (Reply *reply,
                   guint  status)
{
  g_autoptr(JsonNode) root = NULL;

  assert_error_reply (reply, status, NULL);
  root = reply_json (reply);
  g_assert_true (JSON_NODE_HOLDS_VALUE (json_object_get_member (json_node_get_object (root), "error")));
}

#define MSG(extra) "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" extra "}"

/* Every error of the user API has OpenAI's shape, with the field at fault
 * as "param" and a stable "code"; the peer API keeps {"error": text}. */
static void
test_openai_errors (Fixture       *fx,
                    gconstpointer  data)
{
  static const struct { const char *path, *body, *param, *needle; } bad[] = {
    { "/v1/chat/completions", "{\"messages\":", NULL, "malformed JSON" },
    { "/v1/chat/completions", "[]", NULL, "JSON object" },
    { "/v1/chat/completions", "{}", "messages", "missing field 'messages'" },
    { "/v1/chat/completions", MSG (",\"temperature\":3"), "temperature", "out of range" },
    { "/v1/chat/completions", MSG (",\"top_p\":\"x\""), "top_p", "must be a number" },
    { "/v1/chat/completions", MSG (",\"max_tokens\":0"), "max_tokens", "out of range" },
    { "/v1/chat/completions", MSG (",\"n\":2"), "n", "must be 1" },
    { "/v1/chat/completions", MSG (",\"seed\":1.5"), "seed", "integer" },
    { "/v1/chat/completions", MSG (",\"model\":7"), "model", "string" },
    { "/v1/chat/completions", MSG (",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]"), "stop", "more than 4" },
    { "/v1/chat/completions", MSG (",\"stop\":[1]"), "stop", "not a string" },
    { "/v1/chat/completions", MSG (",\"stream_options\":{\"include_usage\":true}"), "stream_options",
      "only allowed when 'stream' is true" },
    { "/v1/chat/completions", MSG (",\"stream\":true,\"stream_options\":{\"include_usage\":1}"),
      "stream_options", "boolean" },
    { "/v1/chat/completions", MSG (",\"logprobs\":true"), "logprobs", "not supported" },
    { "/v1/completions", "{\"prompt\":[1,2,3]}", "prompt", "token ids" },
    { "/v1/completions", "{\"prompt\":[[1],[2]]}", "prompt", "token ids" },
    { "/v1/completions", "{\"prompt\":[\"a\",\"b\"]}", "prompt", "several prompts" },
    { "/v1/completions", "{\"prompt\":[]}", "prompt", "one string" },
    { "/v1/completions", "{\"prompt\":5}", "prompt", "must be a string" },
    { "/v1/completions", "{\"prompt\":\"x\",\"echo\":true}", "echo", "not supported" },
    { "/v1/completions", "{\"prompt\":\"x\",\"best_of\":2}", "best_of", "not supported" },
    { "/v1/completions", "{\"prompt\":\"x\",\"logprobs\":2}", "logprobs", "not supported" },
    { "/v1/completions", "{\"prompt\":\"x\",\"suffix\":\"y\"}", "suffix", "not supported" },
    { "/v1/completions", "{\"prompt\":\"x\",\"n\":3}", "n", "must be 1" },
  };
  g_autofree char *long_stop = g_strnfill (EXO_GENERATION_MAX_STOP_LEN + 1, 'x');
  g_autofree char *long_body = g_strdup_printf (MSG (",\"stop\":\"%s\""), long_stop);

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(Reply) reply = http_post_json (fx, bad[i].path, bad[i].body);
      assert_openai_error (reply, 400, "invalid_request_error", bad[i].param, NULL, bad[i].needle);
    }
  {
    g_autoptr(Reply) reply = http_post_json (fx, "/v1/chat/completions", long_body);
    assert_openai_error (reply, 400, "invalid_request_error", "stop", NULL, "longer than 256 bytes");
  }
  g_assert_cmpuint (fx->node->n_chats, ==, 0);

  /* a model the node does not list: 404 before the node generates */
  {
    g_autoptr(Reply) chat = http_post_json (fx, "/v1/chat/completions", MSG (",\"model\":\"gpt-4\""));
    g_autoptr(Reply) text = http_post_json (fx, "/v1/completions", "{\"model\":\"gpt-4\",\"prompt\":\"\"}");
    g_autoptr(Reply) model = http_get (fx, "/v1/models/gpt-4");

    assert_openai_error (chat, 404, "invalid_request_error", "model", "model_not_found", "gpt-4");
    assert_openai_error (text, 404, "invalid_request_error", "model", "model_not_found", "gpt-4");
    assert_openai_error (model, 404, "invalid_request_error", "model", "model_not_found", "gpt-4");
    g_assert_cmpuint (fx->node->n_chats, ==, 0);
  }
  /* the router's and the limits' answers */
  {
    g_autoptr(Reply) missing = http_get (fx, "/v1/nothing");
    g_autoptr(Reply) method = http_get (fx, "/v1/completions");
    g_autoptr(Reply) peer_missing = http_get (fx, "/peer/v1/nothing");
    g_autoptr(Reply) peer_method = http_get (fx, "/peer/v1/prompt");
    g_autoptr(Reply) peer_bad = http_post_json (fx, "/peer/v1/cancel", "{}");
    g_autoptr(Reply) big = NULL;
    g_autoptr(Reply) peer_big = NULL;
    g_autofree char *body = g_strnfill (5000, ' ');

    assert_openai_error (missing, 404, "invalid_request_error", NULL, "unknown_url", "/v1/nothing");
    assert_openai_error (method, 405, "invalid_request_error", NULL, "method_not_allowed", "POST");
    assert_peer_error (peer_missing, 404);
    assert_peer_error (peer_method, 405);
    assert_peer_error (peer_bad, 400);
    g_object_set (fx->server, "max-json-bytes", (guint64) 4096, NULL);
    big = http_post_json (fx, "/v1/chat/completions", body);
    peer_big = http_post_json (fx, "/peer/v1/cancel", body);
    assert_openai_error (big, 413, "invalid_request_error", NULL, "request_too_large", "max-json-bytes");
    assert_peer_error (peer_big, 413);
  }
  /* the node's failures: 5xx, type server_error */
  {
    static const struct { GIOErrorEnum code; guint status; const char *api_code; } fails[] = {
      { G_IO_ERROR_HOST_UNREACHABLE, 502, "bad_gateway" },
      { G_IO_ERROR_TIMED_OUT, 504, "timeout" },
      { G_IO_ERROR_NOT_SUPPORTED, 501, "not_implemented" },
      { G_IO_ERROR_FAILED, 500, "server_error" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS (fails); i++)
      {
        g_autoptr(Reply) reply = NULL;

        g_clear_error (&fx->node->chat_refuse);
        fx->node->chat_refuse = g_error_new (G_IO_ERROR, fails[i].code, "it failed (%u)", fails[i].status);
        reply = http_post_json (fx, "/v1/chat/completions", MSG (""));
        assert_openai_error (reply, fails[i].status, "server_error", NULL, fails[i].api_code, "it failed");
      }
  }
}

/* Runs curl -si on @path with @body (POST): the status, the head and the
 * body. */
static guint
curl_status (Fixture     *fx,
             const char  *path,
             const char  *body,
             char       **head,
             char       **rest)
{
  g_autofree char *url = g_strdup_printf ("http://%s%s", fx->address, path);
  g_autoptr(GSubprocess) curl = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) out = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  char *split;
  guint status = 0;

  curl = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, "curl", "-si", "--max-time", "20",
                           "-H", "Content-Type: application/json", "-d", body, url, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_async (curl, NULL, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_subprocess_communicate_finish (curl, result, &out, NULL, &error);
  g_assert_no_error (error);
  text = g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
  sscanf (text, "HTTP/1.1 %u", &status);
  split = strstr (text, "\r\n\r\n");
  g_assert_nonnull (split);
  *split = '\0';
  *head = g_strdup (text);
  *rest = g_strdup (split + 4);
  return status;
}

/* A streamed request the node refuses before its first token gets that
 * status as a whole answer: 429 with Retry-After when an engine is at
 * max-sessions, not a 200 stream with an error event. */
static void
test_stream_refused (Fixture       *fx,
                     gconstpointer  data)
{
  static const char body[] = "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
  g_autofree char *head = NULL, *rest = NULL;
  g_autoptr(GVariant) metrics = NULL;
  guint64 streams = 1;

  if (!have_curl ())
    {
      g_test_skip ("curl is not installed");
      return;
    }
  fx->node->chat_refuse = g_error_new (G_IO_ERROR, G_IO_ERROR_BUSY,
                                       "engine 'engine' already holds max-sessions (8) requests; retry later");
  g_assert_cmpuint (curl_status (fx, "/v1/chat/completions", body, &head, &rest), ==, 429);
  g_assert_nonnull (strstr (head, "\r\nRetry-After: 1"));
  g_assert_nonnull (strstr (head, "\r\nContent-Type: application/json"));
  g_assert_null (strstr (head, "text/event-stream"));
  g_assert_cmpstr (rest, ==, "{\"error\":{\"message\":\"engine 'engine' already holds max-sessions (8) "
                             "requests; retry later\",\"type\":\"rate_limit_error\",\"param\":null,"
                             "\"code\":\"rate_limit_exceeded\"}}");
  g_clear_pointer (&head, g_free);
  g_clear_pointer (&rest, g_free);
  /* the same for a completion, and not busy: 502 as a whole answer */
  g_clear_error (&fx->node->chat_refuse);
  fx->node->chat_refuse = g_error_new (G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE, "node-2 is unreachable");
  g_assert_cmpuint (curl_status (fx, "/v1/completions", "{\"stream\":true,\"prompt\":\"\"}", &head,
                                 &rest), ==, 502);
  g_assert_null (strstr (head, "Retry-After"));
  g_assert_true (g_str_has_prefix (rest, "{\"error\":{\"message\":\"node-2 is unreachable\""));
  metrics = exo_resource_get_metrics (fx->server);
  g_assert_true (g_variant_lookup (metrics, "streams", "t", &streams));
  g_assert_cmpuint (streams, ==, 0);
}

/* No node to run on is "not now": 503 in OpenAI's shape with Retry-After,
 * streamed or not, whether the ring has no node holding layers (the
 * node's EXO_RESOURCE_ERROR_INVALID_STATE "the ring is empty",
 * node-work.c; it was G_IO_ERROR_NOT_FOUND, answered 404) or there is no
 * usable node. */
static void
test_unavailable (Fixture       *fx,
                  gconstpointer  data)
{
  static const struct { const char *path, *body; } requests[] = {
    { "/v1/chat/completions", MSG ("") },
    { "/v1/chat/completions", MSG (",\"stream\":true") },
    { "/v1/completions", "{\"prompt\":\"\"}" },
    { "/v1/completions", "{\"prompt\":\"\",\"stream\":true}" },
  };

  if (!have_curl ())
    {
      g_test_skip ("curl is not installed");
      return;
    }
  fx->node->chat_refuse = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                                       "request r1: processing the prompt on node node-1 failed: "
                                       "the ring is empty");
  for (gsize i = 0; i < G_N_ELEMENTS (requests); i++)
    {
      g_autofree char *head = NULL, *rest = NULL;

      g_assert_cmpuint (curl_status (fx, requests[i].path, requests[i].body, &head, &rest), ==, 503);
      g_assert_nonnull (strstr (head, "\r\nRetry-After: 1"));
      g_assert_nonnull (strstr (head, "\r\nContent-Type: application/json"));
      g_assert_cmpstr (rest, ==, "{\"error\":{\"message\":\"request r1: processing the prompt on node "
                                 "node-1 failed: the ring is empty\",\"type\":\"server_error\","
                                 "\"param\":null,\"code\":\"service_unavailable\"}}");
    }
  g_assert_cmpuint (fx->node->n_chats, ==, G_N_ELEMENTS (requests));

  /* no usable node: the same, before the node is asked */
  g_object_set (fx->server, "node", "no-such-node", NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (requests); i++)
    {
      g_autofree char *head = NULL, *rest = NULL;

      g_assert_cmpuint (curl_status (fx, requests[i].path, requests[i].body, &head, &rest), ==, 503);
      g_assert_nonnull (strstr (head, "\r\nRetry-After: 1"));
      g_assert_cmpstr (rest, ==, "{\"error\":{\"message\":\"node not ready\",\"type\":\"server_error\","
                                 "\"param\":null,\"code\":\"service_unavailable\"}}");
    }
  g_assert_cmpuint (fx->node->n_chats, ==, G_N_ELEMENTS (requests));
}

/* The SSE events of a finished curl: the JSON of each "data: {…}" line
 * (parsed), and whether "data: [DONE]" came last. */
static GPtrArray *
curl_events (Curl     *curl,
             gboolean *done)
{
  GPtrArray *events = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);

  *done = FALSE;
  for (guint i = 0; i < curl->lines->len; i++)
    {
      const char *line = g_ptr_array_index (curl->lines, i);
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GError) error = NULL;

      if (line[0] == '\0')
        continue;
      g_assert_false (*done);
      if (g_str_equal (line, "data: [DONE]"))
        {
          *done = TRUE;
          continue;
        }
      g_assert_true (g_str_has_prefix (line, "data: {"));
      json_parser_load_from_data (parser, line + 6, -1, &error);
      g_assert_no_error (error);
      g_ptr_array_add (events, json_node_ref (json_parser_get_root (parser)));
    }
  return events;
}

/* POST /v1/completions: the prompt goes to the node as given (no chat
 * template); OpenAI's "text_completion", whole and streamed; the same
 * parameters as a chat, stop strings included. */
static void
test_completions (Fixture       *fx,
                  gconstpointer  data)
{
  g_autoptr(Reply) reply = http_post_json (fx, "/v1/completions",
                                           "{\"model\":\"dummy\",\"prompt\":\"Once upon\",\"max_tokens\":3,"
                                           "\"temperature\":0.5,\"seed\":4,\"stop\":[\"\\n\",\"The End\"]}");
  g_autoptr(JsonNode) root = reply_json (reply);
  JsonObject *object = json_node_get_object (root), *choice, *usage;

  g_assert_cmpuint (reply->status, ==, 200);
  g_assert_cmpstr (fx->node->last_prompt, ==, "Once upon");
  assert_params (fx->node->last_params, 3, 0.5, 1, TRUE, 4);
  g_assert_nonnull (fx->node->last_params->stop);
  g_assert_cmpstr (fx->node->last_params->stop[0], ==, "\n");
  g_assert_cmpstr (fx->node->last_params->stop[1], ==, "The End");
  g_assert_null (fx->node->last_params->stop[2]);
  g_assert_true (g_str_has_prefix (json_object_get_string_member (object, "id"), "cmpl-"));
  g_assert_cmpstr (json_object_get_string_member (object, "object"), ==, "text_completion");
  g_assert_cmpstr (json_object_get_string_member (object, "model"), ==, "dummy");
  g_assert_cmpint (json_object_get_int_member (object, "created"), >, 1600000000);
  choice = json_array_get_object_element (json_object_get_array_member (object, "choices"), 0);
  g_assert_cmpuint (json_object_get_size (choice), ==, 4);
  g_assert_cmpstr (json_object_get_string_member (choice, "text"), ==, "tok0 tok1 tok2 tok3 tok4 ");
  g_assert_cmpint (json_object_get_int_member (choice, "index"), ==, 0);
  g_assert_true (json_object_get_null_member (choice, "logprobs"));
  g_assert_cmpstr (json_object_get_string_member (choice, "finish_reason"), ==, "stop");
  usage = json_object_get_object_member (object, "usage");
  g_assert_cmpint (json_object_get_int_member (usage, "completion_tokens"), ==, 5);

  /* no prompt, null, "" and [""] are all the empty prompt; a stop "" is none */
  {
    const char *empty[] = { "{}", "{\"prompt\":null}", "{\"prompt\":\"\"}", "{\"prompt\":[\"\"],\"stop\":\"\"}" };

    for (gsize i = 0; i < G_N_ELEMENTS (empty); i++)
      {
        g_autoptr(Reply) r = http_post_json (fx, "/v1/completions", empty[i]);

        g_assert_cmpuint (r->status, ==, 200);
        g_assert_cmpstr (fx->node->last_prompt, ==, "");
        g_assert_null (fx->node->last_params->stop);
        /* without max_tokens: OpenAI's default of /v1/completions */
        g_assert_cmpuint (fx->node->last_params->max_tokens, ==, 16);
      }
  }
  /* max_completion_tokens counts too; a chat without either: the node's
   * own max-tokens (0 on the wire) */
  {
    g_autoptr(Reply) newer = http_post_json (fx, "/v1/completions", "{\"max_completion_tokens\":40}");
    g_autoptr(Reply) chat = NULL;

    g_assert_cmpuint (newer->status, ==, 200);
    g_assert_cmpuint (fx->node->last_params->max_tokens, ==, 40);
    chat = http_post_json (fx, "/v1/chat/completions", MSG (""));
    g_assert_cmpuint (chat->status, ==, 200);
    g_assert_cmpuint (fx->node->last_params->max_tokens, ==, 0);
  }

  /* streamed, with the usage as OpenAI sends it: every chunk "usage":
   * null, then one with no choices and the usage */
  if (have_curl ())
    {
      g_autoptr(Curl) curl = curl_start (fx, "/v1/completions",
                                         "{\"prompt\":\"x\",\"stream\":true,"
                                         "\"stream_options\":{\"include_usage\":true}}");
      g_autoptr(GPtrArray) events = NULL;
      g_autoptr(GString) text = g_string_new (NULL);
      gboolean done;

      fx->node->chat_prompt_tokens = 2;
      g_assert_true (exo_test_spin_until (curl_done, curl, WAIT_MS));
      events = curl_events (curl, &done);
      g_assert_true (done);
      g_assert_cmpuint (events->len, ==, 5 + 2);
      for (guint i = 0; i < events->len; i++)
        {
          JsonObject *e = json_node_get_object (g_ptr_array_index (events, i));
          JsonArray *choices = json_object_get_array_member (e, "choices");

          g_assert_cmpstr (json_object_get_string_member (e, "object"), ==, "text_completion");
          g_assert_true (g_str_has_prefix (json_object_get_string_member (e, "id"), "cmpl-"));
          if (i == events->len - 1)
            {
              g_assert_cmpuint (json_array_get_length (choices), ==, 0);
              usage = json_object_get_object_member (e, "usage");
              g_assert_cmpint (json_object_get_int_member (usage, "prompt_tokens"), ==, 2);
              g_assert_cmpint (json_object_get_int_member (usage, "completion_tokens"), ==, 5);
              g_assert_cmpint (json_object_get_int_member (usage, "total_tokens"), ==, 7);
              continue;
            }
          g_assert_true (json_object_get_null_member (e, "usage"));
          choice = json_array_get_object_element (choices, 0);
          g_assert_true (json_object_get_null_member (choice, "logprobs"));
          g_string_append (text, json_object_get_string_member (choice, "text"));
          if (i < 5)
            g_assert_true (json_object_get_null_member (choice, "finish_reason"));
          else
            g_assert_cmpstr (json_object_get_string_member (choice, "finish_reason"), ==, "stop");
        }
      g_assert_cmpstr (text->str, ==, "tok0 tok1 tok2 tok3 tok4 ");
    }
}

/* A chat streamed with stream_options.include_usage; the stop strings
 * reach the node; GET /v1/models/{id}. */
static void
test_chat_usage_and_models (Fixture       *fx,
                            gconstpointer  data)
{
  {
    g_autoptr(Reply) reply = http_post_json (fx, "/v1/chat/completions", MSG (",\"stop\":\"END\""));

    g_assert_cmpuint (reply->status, ==, 200);
    g_assert_cmpstr (fx->node->last_params->stop[0], ==, "END");
    g_assert_null (fx->node->last_params->stop[1]);
  }
  if (have_curl ())
    {
      g_autoptr(Curl) curl = curl_start (fx, "/v1/chat/completions",
                                         MSG (",\"stream\":true,\"stream_options\":{\"include_usage\":true}"));
      g_autoptr(GPtrArray) events = NULL;
      JsonObject *last, *finish;
      gboolean done;

      g_assert_true (exo_test_spin_until (curl_done, curl, WAIT_MS));
      events = curl_events (curl, &done);
      g_assert_true (done);
      g_assert_cmpuint (events->len, ==, 5 + 2);
      for (guint i = 0; i + 1 < events->len; i++)
        g_assert_true (json_object_get_null_member (json_node_get_object (g_ptr_array_index (events, i)),
                                                    "usage"));
      finish = json_node_get_object (g_ptr_array_index (events, 5));
      g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (
                         json_object_get_array_member (finish, "choices"), 0), "finish_reason"), ==, "stop");
      last = json_node_get_object (g_ptr_array_index (events, 6));
      g_assert_cmpstr (json_object_get_string_member (last, "object"), ==, "chat.completion.chunk");
      g_assert_cmpuint (json_array_get_length (json_object_get_array_member (last, "choices")), ==, 0);
      g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (last, "usage"),
                                                   "completion_tokens"), ==, 5);
    }
  /* a model of the list, by id (percent-encoded too), with its "created" */
  g_clear_pointer (&fx->node->models, g_variant_unref);
  fx->node->models = g_variant_ref_sink (g_variant_new_parsed (
    "[{'id': <'dummy'>, 'created': <int64 1700000000>, 'owned-by': <'exo'>},"
    " {'id': <'org/m 2'>}]"));
  {
    g_autoptr(Reply) one = http_get (fx, "/v1/models/dummy");
    g_autoptr(Reply) two = http_get (fx, "/v1/models/org/m%202");
    g_autoptr(Reply) none = http_get (fx, "/v1/models/");
    g_autofree char *one_text = reply_text (one);
    g_autofree char *two_text = reply_text (two);

    g_assert_cmpuint (one->status, ==, 200);
    g_assert_cmpstr (one_text, ==, "{\"id\":\"dummy\",\"object\":\"model\",\"created\":1700000000,"
                                   "\"owned_by\":\"exo\"}");
    g_assert_cmpuint (two->status, ==, 200);
    g_assert_cmpstr (two_text, ==, "{\"id\":\"org/m 2\",\"object\":\"model\"}");
    assert_openai_error (none, 404, "invalid_request_error", NULL, "unknown_url", NULL);
  }
}

#undef MSG

void
test_http_server_register_openai (void)
{
  ADD ("api/openai-errors", test_openai_errors);
  ADD ("api/stream-refused", test_stream_refused);
  ADD ("api/unavailable", test_unavailable);
  ADD ("api/completions", test_completions);
  ADD ("api/chat-usage-and-models", test_chat_usage_and_models);
}
