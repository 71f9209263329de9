/* http-request.c: the requests of the `http-server` plugin, parsed and
 * checked from their bytes, without libsoup (see http-request.h).
 *
 * Every field a request may carry is typed and bounded here, at the
 * boundary; the first problem found is the error (G_IO_ERROR_INVALID_DATA,
 * a message for the client that names the field and the limit).  The JSON
 * itself goes through exo_http_parse_json () (strict JSON, bounded depth).
 *
 * Pure functions: no state, any thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-request.h"

#include <string.h>

#define INVALID(error, ...) \
  g_set_error ((error), G_IO_ERROR, G_IO_ERROR_INVALID_DATA, __VA_ARGS__)

/* The body as a JSON object; the caller owns the node. */
static JsonNode *
parse_object (const char  *body,
              gsize        len,
              GError     **error)
{
  g_autoptr(JsonNode) root = exo_http_parse_json (body, len, error);

  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      INVALID (error, "the body must be a JSON object");
      return NULL;
    }
  return g_steal_pointer (&root);
}

static gboolean
get_request_id (JsonObject  *object,
                const char **out,
                GError     **error)
{
  if (!exo_http_get_string_member (object, "request_id", TRUE, out, error))
    return FALSE;
  if (!exo_http_id_is_valid (*out))
    {
      INVALID (error, "field 'request_id' must be 1 to %u printable ASCII characters",
               EXO_HTTP_MAX_ID_LEN);
      return FALSE;
    }
  return TRUE;
}

/* An optional number in [@min, @max]; *out is untouched when absent or null.
 * (exo_json_validate () already refused what a double cannot hold.) */
static gboolean
get_number_member (JsonObject  *object,
                   const char  *name,
                   double       min,
                   double       max,
                   double      *out,
                   GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);
  double value;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) ||
      (json_node_get_value_type (node) != G_TYPE_DOUBLE &&
       json_node_get_value_type (node) != G_TYPE_INT64))
    {
      INVALID (error, "field '%s' must be a number", name);
      return FALSE;
    }
  value = json_node_get_value_type (node) == G_TYPE_INT64 ? (double) json_node_get_int (node)
                                                          : json_node_get_double (node);
  if (!(value >= min && value <= max))
    {
      INVALID (error, "field '%s' is out of range (%g to %g)", name, min, max);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

/* An optional integer in [@min, @max]; null counts as absent. */
static gboolean
get_optional_int (JsonObject  *object,
                  const char  *name,
                  gint64       min,
                  gint64       max,
                  gint64      *out,
                  GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  return exo_http_get_int_member (object, name, TRUE, min, max, out, error);
}

/* --- POST /v1/chat/completions ------------------------------------------ */

/* A message's content: a string, null, or OpenAI's array of parts
 * ({"type": "text", "text": …}; other parts are refused). */
static gboolean
append_content (GString    *prompt,
                JsonNode   *content,
                guint       index,
                GError    **error)
{
  if (content == NULL || JSON_NODE_HOLDS_NULL (content))
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (content) && json_node_get_value_type (content) == G_TYPE_STRING)
    {
      g_string_append (prompt, json_node_get_string (content));
      return TRUE;
    }
  if (JSON_NODE_HOLDS_ARRAY (content))
    {
      JsonArray *parts = json_node_get_array (content);

      for (guint i = 0; i < json_array_get_length (parts); i++)
        {
          JsonNode *part = json_array_get_element (parts, i);
          const char *type = NULL, *text = NULL;

          if (!JSON_NODE_HOLDS_OBJECT (part) ||
              !exo_http_get_string_member (json_node_get_object (part), "type", TRUE, &type, NULL) ||
              !g_str_equal (type, "text") ||
              !exo_http_get_string_member (json_node_get_object (part), "text", TRUE, &text, NULL))
            {
              INVALID (error, "messages[%u].content[%u] must be {\"type\": \"text\", \"text\": string}",
                       index, i);
              return FALSE;
            }
          g_string_append (prompt, text);
        }
      return TRUE;
    }
  INVALID (error, "messages[%u].content must be a string or an array of text parts", index);
  return FALSE;
}

/* OpenAI's roles ("function" is its deprecated name of "tool"): anything
 * else (a line break in a role would write its own template lines) is
 * refused, as OpenAI does. */
static gboolean
role_is_known (const char *role)
{
  static const char * const roles[] = { "system", "developer", "user", "assistant", "tool",
                                        "function" };

  for (guint i = 0; i < G_N_ELEMENTS (roles); i++)
    if (g_str_equal (role, roles[i]))
      return TRUE;
  return FALSE;
}

/* exo's dummy tokenizer's chat template: "role: content\n" per message. */
static char *
build_prompt (JsonObject  *object,
              GError     **error)
{
  JsonNode *messages = json_object_get_member (object, "messages");
  g_autoptr(GString) prompt = g_string_new (NULL);
  JsonArray *array;
  guint n;

  if (messages == NULL)
    {
      INVALID (error, "missing field 'messages' (an array of {\"role\", \"content\"})");
      return NULL;
    }
  if (!JSON_NODE_HOLDS_ARRAY (messages))
    {
      INVALID (error, "field 'messages' must be an array of {\"role\", \"content\"}");
      return NULL;
    }
  array = json_node_get_array (messages);
  n = json_array_get_length (array);
  if (n == 0)
    {
      INVALID (error, "field 'messages' is empty");
      return NULL;
    }
  for (guint i = 0; i < n; i++)
    {
      JsonNode *message = json_array_get_element (array, i);
      g_autoptr(GError) local_error = NULL;
      const char *role = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (message))
        {
          INVALID (error, "messages[%u] must be an object {\"role\", \"content\"}", i);
          return NULL;
        }
      if (!exo_http_get_string_member (json_node_get_object (message), "role", TRUE, &role,
                                       &local_error))
        {
          INVALID (error, "messages[%u]: %s", i, local_error->message);
          return NULL;
        }
      if (!role_is_known (role))
        {
          g_autofree char *shown = exo_http_shown_text (role, 32);

          INVALID (error, "messages[%u].role must be one of system, developer, user, assistant, "
                   "tool, function (got \"%s\")", i, shown);
          return NULL;
        }
      g_string_append_printf (prompt, "%s: ", role);
      if (!append_content (prompt, json_object_get_member (json_node_get_object (message), "content"),
                           i, error))
        return NULL;
      g_string_append_c (prompt, '\n');
    }
  return g_string_free (g_steal_pointer (&prompt), FALSE);
}

/* "stop": null, a string, or an array of at most EXO_HTTP_MAX_STOP
 * strings, each at most EXO_GENERATION_MAX_STOP_LEN bytes; set on
 * @params (empty strings left out). */
static gboolean
get_stop (JsonObject           *object,
          ExoGenerationParams  *params,
          GError              **error)
{
  JsonNode *node = json_object_get_member (object, "stop");
  const char *stop[EXO_HTTP_MAX_STOP + 1] = { NULL };
  JsonArray *array;
  guint n;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    stop[0] = json_node_get_string (node);
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      array = json_node_get_array (node);
      n = json_array_get_length (array);
      if (n > EXO_HTTP_MAX_STOP)
        {
          INVALID (error, "field 'stop' has more than %u strings", EXO_HTTP_MAX_STOP);
          return FALSE;
        }
      for (guint i = 0; i < n; i++)
        {
          JsonNode *element = json_array_get_element (array, i);

          if (!JSON_NODE_HOLDS_VALUE (element) || json_node_get_value_type (element) != G_TYPE_STRING)
            {
              INVALID (error, "field 'stop': element %u is not a string", i);
              return FALSE;
            }
          stop[i] = json_node_get_string (element);
        }
    }
  else
    {
      INVALID (error, "field 'stop' must be a string or an array of strings");
      return FALSE;
    }
  for (guint i = 0; stop[i] != NULL; i++)
    if (strlen (stop[i]) > EXO_GENERATION_MAX_STOP_LEN)
      {
        INVALID (error, "field 'stop': string %u is longer than %d bytes", i,
                 EXO_GENERATION_MAX_STOP_LEN);
        return FALSE;
      }
  return exo_generation_params_set_stop (params, stop, error);
}

/* "stream_options": null, or {"include_usage": bool} with "stream": true
 * (as OpenAI, which refuses it without). */
static gboolean
get_stream_options (JsonObject          *object,
                    ExoHttpChatRequest  *request,
                    GError             **error)
{
  JsonNode *node = json_object_get_member (object, "stream_options");
  JsonNode *include;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!request->stream)
    {
      INVALID (error, "field 'stream_options' is only allowed when 'stream' is true");
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      INVALID (error, "field 'stream_options' must be an object {\"include_usage\": bool}");
      return FALSE;
    }
  include = json_object_get_member (json_node_get_object (node), "include_usage");
  if (include == NULL || JSON_NODE_HOLDS_NULL (include))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (include) || json_node_get_value_type (include) != G_TYPE_BOOLEAN)
    {
      INVALID (error, "field 'stream_options.include_usage' must be a boolean");
      return FALSE;
    }
  request->include_usage = json_node_get_boolean (include);
  return TRUE;
}

/* Refuses @name unless it is absent, null, or @allowed (nullable: a JSON
 * value of the same type and value); OpenAI's parameters we cannot honour. */
static gboolean
refuse_unless (JsonObject  *object,
               const char  *name,
               const char  *allowed,
               const char  *why,
               GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);
  g_autoptr(JsonNode) ok = NULL;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (allowed != NULL && (ok = json_from_string (allowed, NULL)) != NULL && json_node_equal (node, ok))
    return TRUE;
  INVALID (error, "field '%s' is not supported: %s", name, why);
  return FALSE;
}

/* Fails with *param = @name when @check fails. */
#define FIELD(name, check) \
  G_STMT_START { if (!(check)) { if (param != NULL) *param = (name); return NULL; } } G_STMT_END

/* What a chat and a completion share: model, stream, stream_options,
 * sampling, length, n, seed, user, stop. */
static ExoHttpChatRequest *
parse_common (JsonObject  *object,
              const char **param,
              GError     **error)
{
  g_autoptr(ExoHttpChatRequest) request = g_new0 (ExoHttpChatRequest, 1);
  JsonNode *seed_node;
  const char *model = NULL, *user = NULL;
  gint64 max_tokens = 0, max_completion_tokens = 0, n = 1, seed = 0;
  double penalty = 0, temperature = -1, top_p = -1;

  FIELD ("model", exo_http_get_string_member (object, "model", FALSE, &model, error));
  if (model != NULL && !exo_http_id_is_valid (model))
    {
      INVALID (error, "field 'model' must be 1 to %u printable ASCII characters", EXO_HTTP_MAX_ID_LEN);
      FIELD ("model", FALSE);
    }
  FIELD ("stream", exo_http_get_bool_member (object, "stream", FALSE, &request->stream, error));
  FIELD ("stream_options", get_stream_options (object, request, error));

  /* OpenAI's sampling parameters: typed and in OpenAI's ranges. */
  FIELD ("temperature", get_number_member (object, "temperature", 0, EXO_HTTP_MAX_TEMPERATURE,
                                           &temperature, error));
  FIELD ("top_p", get_number_member (object, "top_p", 0, 1, &top_p, error));
  FIELD ("presence_penalty", get_number_member (object, "presence_penalty", -2, 2, &penalty, error));
  FIELD ("frequency_penalty", get_number_member (object, "frequency_penalty", -2, 2, &penalty, error));
  FIELD ("max_tokens", get_optional_int (object, "max_tokens", 1, EXO_HTTP_MAX_TOKENS,
                                         &max_tokens, error));
  FIELD ("max_completion_tokens", get_optional_int (object, "max_completion_tokens", 1,
                                                    EXO_HTTP_MAX_TOKENS, &max_completion_tokens,
                                                    error));
  FIELD ("n", get_optional_int (object, "n", 1, G_MAXINT64, &n, error));
  if (n > 1)
    {
      INVALID (error, "field 'n' must be 1: one choice is generated (got %" G_GINT64_FORMAT ")", n);
      FIELD ("n", FALSE);
    }
  FIELD ("seed", get_optional_int (object, "seed", G_MININT64, G_MAXINT64, &seed, error));
  FIELD ("user", exo_http_get_string_member (object, "user", FALSE, &user, error));

  /* What the node gets (ExoGenerationParams; the defaults where absent).
   * max_completion_tokens is OpenAI's newer name; it wins when both are
   * given. */
  request->params = exo_generation_params_new ();
  FIELD ("stop", get_stop (object, request->params, error));
  request->params->max_tokens = (guint) (max_completion_tokens > 0 ? max_completion_tokens
                                                                   : max_tokens);
  if (temperature >= 0)
    request->params->temperature = temperature;
  if (top_p > 0)
    request->params->top_p = top_p;
  else if (top_p == 0)
    {
      /* Nothing but the most likely token: greedy sampling.  (On the wire
       * top_p is more than 0.) */
      request->params->temperature = 0;
      request->params->top_p = 1;
    }
  seed_node = json_object_get_member (object, "seed");
  request->params->has_seed = seed_node != NULL && !JSON_NODE_HOLDS_NULL (seed_node);
  request->params->seed = seed;
  request->model = g_strdup (model);
  return g_steal_pointer (&request);
}

ExoHttpChatRequest *
exo_http_chat_request_parse (const char  *body,
                             gsize        len,
                             const char **param,
                             GError     **error)
{
  g_autoptr(ExoHttpChatRequest) request = NULL;
  g_autoptr(JsonNode) root = parse_object (body, len, error);
  JsonObject *object;

  if (param != NULL)
    *param = NULL;
  if (root == NULL)
    return NULL;
  object = json_node_get_object (root);
  request = parse_common (object, param, error);
  if (request == NULL)
    return NULL;
  FIELD ("logprobs", refuse_unless (object, "logprobs", "false", "log probabilities are not "
                                    "computed", error));
  FIELD ("top_logprobs", refuse_unless (object, "top_logprobs", "0", "log probabilities are not "
                                        "computed", error));
  request->prompt = build_prompt (object, error);
  FIELD ("messages", request->prompt != NULL);
  return g_steal_pointer (&request);
}

/* "prompt": absent or null (""), a string, or an array of one string.
 * Several prompts and token ids are refused. */
static char *
get_prompt (JsonObject  *object,
            GError     **error)
{
  JsonNode *node = json_object_get_member (object, "prompt");
  JsonArray *array;
  JsonNode *first;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return g_strdup ("");
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (node));
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      INVALID (error, "field 'prompt' must be a string");
      return NULL;
    }
  array = json_node_get_array (node);
  first = json_array_get_length (array) > 0 ? json_array_get_element (array, 0) : NULL;
  if (first != NULL && (JSON_NODE_HOLDS_ARRAY (first) ||
                        (JSON_NODE_HOLDS_VALUE (first) &&
                         json_node_get_value_type (first) == G_TYPE_INT64)))
    {
      INVALID (error, "field 'prompt': token ids are not supported; send the prompt as a string");
      return NULL;
    }
  if (json_array_get_length (array) != 1 || !JSON_NODE_HOLDS_VALUE (first) ||
      json_node_get_value_type (first) != G_TYPE_STRING)
    {
      INVALID (error, "field 'prompt' must be one string (several prompts are not supported; "
               "got an array of %u elements)", json_array_get_length (array));
      return NULL;
    }
  return g_strdup (json_node_get_string (first));
}

ExoHttpChatRequest *
exo_http_completion_request_parse (const char  *body,
                                   gsize        len,
                                   const char **param,
                                   GError     **error)
{
  g_autoptr(ExoHttpChatRequest) request = NULL;
  g_autoptr(JsonNode) root = parse_object (body, len, error);
  JsonObject *object;

  if (param != NULL)
    *param = NULL;
  if (root == NULL)
    return NULL;
  object = json_node_get_object (root);
  request = parse_common (object, param, error);
  if (request == NULL)
    return NULL;
  FIELD ("echo", refuse_unless (object, "echo", "false", "the prompt is not echoed", error));
  FIELD ("logprobs", refuse_unless (object, "logprobs", "0", "log probabilities are not computed",
                                    error));
  FIELD ("best_of", refuse_unless (object, "best_of", "1", "one completion is made", error));
  FIELD ("suffix", refuse_unless (object, "suffix", "\"\"", "no text is inserted", error));
  request->prompt = get_prompt (object, error);
  FIELD ("prompt", request->prompt != NULL);
  return g_steal_pointer (&request);
}

#undef FIELD

void
exo_http_chat_request_free (ExoHttpChatRequest *request)
{
  if (request == NULL)
    return;
  g_free (request->model);
  g_free (request->prompt);
  g_clear_pointer (&request->params, exo_generation_params_free);
  g_free (request);
}

/* --- POST /peer/v1/prompt ----------------------------------------------- */

ExoHttpPromptRequest *
exo_http_prompt_request_parse (const char  *body,
                               gsize        len,
                               GError     **error)
{
  g_autoptr(ExoHttpPromptRequest) request = g_new0 (ExoHttpPromptRequest, 1);
  g_autoptr(JsonNode) root = parse_object (body, len, error);
  JsonObject *object;
  JsonNode *params;
  const char *prompt, *request_id;

  if (root == NULL)
    return NULL;
  object = json_node_get_object (root);
  if (!exo_http_get_string_member (object, "prompt", TRUE, &prompt, error) ||
      !get_request_id (object, &request_id, error) ||
      (request->shard = exo_http_shard_from_json (json_object_get_member (object, "shard"),
                                                  "field 'shard'", error)) == NULL)
    return NULL;
  /* Optional: a peer older than plugin ABI 2.0 sends none (the defaults). */
  params = json_object_get_member (object, "params");
  if (params != NULL &&
      (request->params = exo_http_params_from_json (params, "field 'params'", error)) == NULL)
    return NULL;
  request->prompt = g_strdup (prompt);
  request->request_id = g_strdup (request_id);
  return g_steal_pointer (&request);
}

void
exo_http_prompt_request_free (ExoHttpPromptRequest *request)
{
  if (request == NULL)
    return;
  g_clear_pointer (&request->shard, exo_shard_free);
  g_free (request->prompt);
  g_free (request->request_id);
  g_clear_pointer (&request->params, exo_generation_params_free);
  g_free (request);
}

/* --- POST /peer/v1/cancel ----------------------------------------------- */

/* {"request_id": "…"}: the id, copied (free it). */
char *
exo_http_cancel_request_parse (const char  *body,
                               gsize        len,
                               GError     **error)
{
  g_autoptr(JsonNode) root = parse_object (body, len, error);
  const char *request_id;

  if (root == NULL || !get_request_id (json_node_get_object (root), &request_id, error))
    return NULL;
  return g_strdup (request_id);
}

/* --- POST /peer/v1/failure ---------------------------------------------- */

ExoHttpFailureRequest *
exo_http_failure_request_parse (const char  *body,
                                gsize        len,
                                GError     **error)
{
  g_autoptr(JsonNode) root = parse_object (body, len, error);
  g_autoptr(ExoHttpFailureRequest) request = NULL;
  JsonObject *object;
  const char *request_id, *message;
  gint64 status;

  if (root == NULL)
    return NULL;
  object = json_node_get_object (root);
  if (!get_request_id (object, &request_id, error) ||
      !exo_http_get_int_member (object, "status", TRUE, 400, 599, &status, error) ||
      !exo_http_get_string_member (object, "message", TRUE, &message, error))
    return NULL;
  if (strlen (message) > EXO_HTTP_MAX_FAILURE_MESSAGE)
    {
      INVALID (error, "field 'message' is longer than %d bytes", EXO_HTTP_MAX_FAILURE_MESSAGE);
      return NULL;
    }
  request = g_new0 (ExoHttpFailureRequest, 1);
  request->request_id = g_strdup (request_id);
  request->status = (guint) status;
  request->message = g_strdup (message);
  return g_steal_pointer (&request);
}

void
exo_http_failure_request_free (ExoHttpFailureRequest *request)
{
  if (request == NULL)
    return;
  g_free (request->request_id);
  g_free (request->message);
  g_free (request);
}

/* --- POST /peer/v1/result ----------------------------------------------- */

ExoHttpResultRequest *
exo_http_result_request_parse (const char  *body,
                               gsize        len,
                               GError     **error)
{
  g_autoptr(ExoHttpResultRequest) request = g_new0 (ExoHttpResultRequest, 1);
  g_autoptr(JsonNode) root = parse_object (body, len, error);
  JsonObject *object;
  JsonNode *result;
  JsonArray *array;
  const char *request_id;
  guint n;

  if (root == NULL)
    return NULL;
  object = json_node_get_object (root);
  if (!get_request_id (object, &request_id, error) ||
      !exo_http_get_bool_member (object, "is_finished", TRUE, &request->is_finished, error))
    return NULL;
  result = json_object_get_member (object, "result");
  if (result == NULL || !JSON_NODE_HOLDS_ARRAY (result))
    {
      INVALID (error, result == NULL ? "missing field 'result' (an array of token ids)"
                                     : "field 'result' must be an array of token ids");
      return NULL;
    }
  array = json_node_get_array (result);
  n = json_array_get_length (array);
  request->tokens = g_new (gint32, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      gint64 v;

      if (!JSON_NODE_HOLDS_VALUE (element) || json_node_get_value_type (element) != G_TYPE_INT64 ||
          (v = json_node_get_int (element)) < G_MININT32 || v > G_MAXINT32)
        {
          INVALID (error, "field 'result': element %u is not a 32-bit integer", i);
          return NULL;
        }
      request->tokens[i] = (gint32) v;
    }
  request->n_tokens = n;
  request->request_id = g_strdup (request_id);
  return g_steal_pointer (&request);
}

void
exo_http_result_request_free (ExoHttpResultRequest *request)
{
  if (request == NULL)
    return;
  g_free (request->request_id);
  g_free (request->tokens);
  g_free (request);
}

/* --- POST /peer/v1/topology --------------------------------------------- */

ExoHttpTopologyRequest *
exo_http_topology_request_parse (const char  *body,
                                 gsize        len,
                                 GError     **error)
{
  g_autoptr(ExoHttpTopologyRequest) request = g_new0 (ExoHttpTopologyRequest, 1);
  g_autoptr(JsonNode) root = parse_object (body, len, error);
  g_autoptr(GPtrArray) visited = NULL;
  JsonObject *object;
  JsonNode *visited_node;
  JsonArray *array;
  gint64 max_depth = 0;

  if (root == NULL)
    return NULL;
  object = json_node_get_object (root);
  if (!exo_http_get_int_member (object, "max_depth", TRUE, 0, 64, &max_depth, error))
    return NULL;
  visited_node = json_object_get_member (object, "visited");
  if (visited_node == NULL || !JSON_NODE_HOLDS_ARRAY (visited_node))
    {
      INVALID (error, visited_node == NULL ? "missing field 'visited' (an array of node ids)"
                                           : "field 'visited' must be an array of node ids");
      return NULL;
    }
  array = json_node_get_array (visited_node);
  if (json_array_get_length (array) > EXO_HTTP_MAX_VISITED)
    {
      INVALID (error, "field 'visited' has more than %u node ids", EXO_HTTP_MAX_VISITED);
      return NULL;
    }
  visited = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (element) || json_node_get_value_type (element) != G_TYPE_STRING)
        {
          INVALID (error, "field 'visited': element %u is not a string", i);
          return NULL;
        }
      g_ptr_array_add (visited, g_strdup (json_node_get_string (element)));
    }
  g_ptr_array_add (visited, NULL);
  g_ptr_array_set_free_func (visited, NULL);
  request->visited = (GStrv) g_ptr_array_free (g_steal_pointer (&visited), FALSE);
  request->max_depth = (guint) max_depth;
  return g_steal_pointer (&request);
}

void
exo_http_topology_request_free (ExoHttpTopologyRequest *request)
{
  if (request == NULL)
    return;
  g_strfreev (request->visited);
  g_free (request);
}

/* --- POST /peer/v1/tensor ----------------------------------------------- */

void
exo_http_tensor_parse_cache_clear (ExoHttpTensorParseCache *cache)
{
  g_clear_pointer (&cache->shard_text, g_free);
  g_clear_pointer (&cache->shard, exo_shard_free);
  g_clear_pointer (&cache->params_text, g_free);
  g_clear_pointer (&cache->params, exo_generation_params_free);
}

ExoHttpTensorRequest *
exo_http_tensor_request_parse (const char              *request_id,
                               const char              *shard_text,
                               const char              *dtype_text,
                               const char              *shape_text,
                               const char              *params_text,
                               const guint8            *body,
                               gsize                    body_len,
                               ExoHttpTensorParseCache *cache,
                               GError                 **error)
{
  g_autoptr(ExoHttpTensorRequest) request = g_new0 (ExoHttpTensorRequest, 1);
  g_autoptr(GError) local_error = NULL;
  g_autoptr(JsonNode) shard_node = NULL;
  g_autoptr(JsonNode) params_node = NULL;
  g_autoptr(GBytes) data = NULL;
  gsize shape[EXO_TENSOR_MAX_DIMS];
  guint n_dims = 0;
  guint64 n_bytes;
  ExoDType dtype;

  if (request_id == NULL || !exo_http_id_is_valid (request_id))
    {
      INVALID (error, "header %s must be 1 to %u printable ASCII characters",
               EXO_HTTP_HEADER_REQUEST_ID, EXO_HTTP_MAX_ID_LEN);
      return NULL;
    }
  if (shard_text == NULL || strlen (shard_text) > EXO_HTTP_MAX_HEADER_LEN)
    {
      INVALID (error, "header %s must hold the shard as JSON (at most %u bytes)",
               EXO_HTTP_HEADER_SHARD, EXO_HTTP_MAX_HEADER_LEN);
      return NULL;
    }
  if (cache != NULL && cache->shard != NULL && strcmp (cache->shard_text, shard_text) == 0)
    request->shard = exo_shard_copy (cache->shard);
  else
    {
      shard_node = exo_http_parse_json (shard_text, strlen (shard_text), &local_error);
      if (shard_node == NULL)
        {
          INVALID (error, "header %s: %s", EXO_HTTP_HEADER_SHARD, local_error->message);
          return NULL;
        }
      /* from_json names the header already */
      request->shard = exo_http_shard_from_json (shard_node, "header " EXO_HTTP_HEADER_SHARD, error);
      if (request->shard == NULL)
        return NULL;
      if (cache != NULL)
        {
          g_free (cache->shard_text);
          g_clear_pointer (&cache->shard, exo_shard_free);
          cache->shard_text = g_strdup (shard_text);
          cache->shard = exo_shard_copy (request->shard);
        }
    }
  if (dtype_text == NULL || !exo_dtype_from_string (dtype_text, &dtype))
    {
      g_autofree char *shown = exo_http_shown_text (dtype_text, 32);

      INVALID (error, "header %s must be one of float32, int32, int64, float16 (got \"%s\")",
               EXO_HTTP_HEADER_DTYPE, shown);
      return NULL;
    }
  if (!exo_http_parse_shape (shape_text, shape, &n_dims, error))
    return NULL;
  /* Optional: a peer older than plugin ABI 2.0 sends none (the defaults). */
  if (params_text != NULL)
    {
      if (strlen (params_text) > EXO_HTTP_MAX_HEADER_LEN)
        {
          INVALID (error, "header %s must hold the generation parameters as JSON (at most %u bytes)",
                   EXO_HTTP_HEADER_PARAMS, EXO_HTTP_MAX_HEADER_LEN);
          return NULL;
        }
      if (cache != NULL && cache->params != NULL && strcmp (cache->params_text, params_text) == 0)
        request->params = exo_generation_params_copy (cache->params);
      else
        {
          params_node = exo_http_parse_json (params_text, strlen (params_text), &local_error);
          if (params_node == NULL ||
              (request->params = exo_http_params_from_json (params_node, "header " EXO_HTTP_HEADER_PARAMS,
                                                            &local_error)) == NULL)
            {
              /* from_json names the header already */
              if (params_node == NULL)
                INVALID (error, "header %s: %s", EXO_HTTP_HEADER_PARAMS, local_error->message);
              else
                g_propagate_error (error, g_steal_pointer (&local_error));
              return NULL;
            }
          if (cache != NULL)
            {
              g_free (cache->params_text);
              g_clear_pointer (&cache->params, exo_generation_params_free);
              cache->params_text = g_strdup (params_text);
              cache->params = exo_generation_params_copy (request->params);
            }
        }
    }
  n_bytes = exo_dtype_get_size (dtype);
  for (guint i = 0; i < n_dims; i++)
    {
      if (shape[i] != 0 && n_bytes > G_MAXUINT64 / shape[i])
        {
          n_bytes = G_MAXUINT64;
          break;
        }
      n_bytes *= shape[i];
    }
  if (n_bytes != body_len)
    {
      g_autofree char *shown = exo_http_shown_text (shape_text, 128);

      INVALID (error, "the body has %" G_GSIZE_FORMAT " bytes; a %s tensor of shape [%s] has %"
               G_GUINT64_FORMAT, body_len, dtype_text, shown, n_bytes);
      return NULL;
    }
  data = g_bytes_new (body, body_len);
  request->tensor = exo_tensor_new (dtype, shape, n_dims, data, error);
  if (request->tensor == NULL)
    return NULL;
  request->request_id = g_strdup (request_id);
  return g_steal_pointer (&request);
}

void
exo_http_tensor_request_free (ExoHttpTensorRequest *request)
{
  if (request == NULL)
    return;
  g_free (request->request_id);
  g_clear_pointer (&request->shard, exo_shard_free);
  g_clear_pointer (&request->tensor, exo_tensor_unref);
  g_clear_pointer (&request->params, exo_generation_params_free);
  g_free (request);
}
