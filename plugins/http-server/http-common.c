/* http-common.c: the wire format shared by the server and the peer handle.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: parsing JSON from outside (exo_http_parse_json(): exo_json_validate()
 * first, so json-glib sees only strict JSON within EXO_HTTP_MAX_JSON_DEPTH)
 * and the typed getters of its members; the JSON and text forms of shards,
 * generation parameters and tensor shapes (docs/cluster-protocol.md); ids
 * checked; text cut for error messages; and errors to HTTP statuses and
 * back (a peer's error answer read as a GError that names the peer).
 *
 * Rules: pure functions of their arguments: no state, no main context, no
 * lock, no logging; any thread may call them, and the fuzzers do, alone.
 * Everything parsed is hostile: every getter checks the member's type and
 * range and names the member in its G_IO_ERROR_INVALID_DATA.
 */
#include "http-common.h"

#include <math.h>
#include <string.h>

/* --- JSON -------------------------------------------------------------- */

JsonNode *
exo_http_parse_json (const char  *data,
                     gsize        len,
                     GError     **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) local_error = NULL;
  guint line = 0, column = 0;
  JsonNode *root;

  if (data == NULL || len == 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "the body is empty; a JSON object was expected");
      return NULL;
    }
  /* json-glib accepts comments and single quotes, recurses without a depth
   * limit and wraps big integers: only strict JSON within the limits gets
   * to it (exo_json_validate() refuses NUL bytes and invalid UTF-8 too). */
  if (!exo_json_validate (data, len, EXO_HTTP_MAX_JSON_DEPTH, &line, &column, &local_error))
    {
      if (g_error_matches (local_error, EXO_JSON_ERROR, EXO_JSON_ERROR_EMPTY))
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                             "the body is empty; a JSON object was expected");
      else
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                     "malformed JSON (line %u, column %u): %s", line, column, local_error->message);
      return NULL;
    }

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, data, (gssize) len, &local_error))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "malformed JSON: %s", local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "the body is empty; a JSON object was expected");
      return NULL;
    }
  return json_node_ref (root);
}

char *
exo_http_node_to_string (JsonNode *node)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();

  json_generator_set_root (generator, node);
  /* json-glib leaves U+001F unescaped: every answer and request is JSON. */
  return exo_json_fix_generated (json_generator_to_data (generator, NULL), NULL);
}

static const char *
node_type_name (JsonNode *node)
{
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return "null";
  if (JSON_NODE_HOLDS_OBJECT (node))
    return "an object";
  if (JSON_NODE_HOLDS_ARRAY (node))
    return "an array";
  switch (json_node_get_value_type (node))
    {
    case G_TYPE_STRING:
      return "a string";
    case G_TYPE_BOOLEAN:
      return "a boolean";
    case G_TYPE_INT64:
    case G_TYPE_DOUBLE:
      return "a number";
    default:
      return "a value of an unknown type";
    }
}

gboolean
exo_http_get_string_member (JsonObject  *object,
                            const char  *name,
                            gboolean     required,
                            const char **out,
                            GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);

  *out = NULL;
  if (node == NULL)
    {
      if (!required)
        return TRUE;
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "missing field '%s' (a string)", name);
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "field '%s' must be a string, not %s", name, node_type_name (node));
      return FALSE;
    }
  *out = json_node_get_string (node);
  return TRUE;
}

gboolean
exo_http_get_int_member (JsonObject  *object,
                         const char  *name,
                         gboolean     required,
                         gint64       min,
                         gint64       max,
                         gint64      *out,
                         GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);
  gint64 v;

  if (node == NULL)
    {
      if (!required)
        return TRUE;
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "missing field '%s' (an integer)", name);
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "field '%s' must be an integer, not %s", name, node_type_name (node));
      return FALSE;
    }
  v = json_node_get_int (node);
  if (v < min || v > max)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "field '%s' is out of range (%" G_GINT64_FORMAT " to %" G_GINT64_FORMAT ")",
                   name, min, max);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

gboolean
exo_http_get_bool_member (JsonObject  *object,
                          const char  *name,
                          gboolean     required,
                          gboolean    *out,
                          GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL)
    {
      if (!required)
        return TRUE;
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "missing field '%s' (a boolean)", name);
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "field '%s' must be a boolean, not %s", name, node_type_name (node));
      return FALSE;
    }
  *out = json_node_get_boolean (node);
  return TRUE;
}

gboolean
exo_http_id_is_valid (const char *id)
{
  gsize len = 0;

  if (id == NULL || id[0] == '\0')
    return FALSE;
  for (const char *p = id; *p != '\0'; p++, len++)
    if (len >= EXO_HTTP_MAX_ID_LEN || !g_ascii_isprint (*p))
      return FALSE;
  return TRUE;
}

/* --- shards ------------------------------------------------------------ */

ExoShard *
exo_http_shard_from_json (JsonNode    *node,
                          const char  *what,
                          GError     **error)
{
  g_autoptr(GError) local_error = NULL;
  JsonObject *object;
  const char *model_id = NULL;
  gint64 start = 0, end = 0, n_layers = 0;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "%s must be an object {\"model_id\", \"start_layer\", \"end_layer\", "
                   "\"n_layers\"}, not %s", what, node_type_name (node));
      return NULL;
    }
  object = json_node_get_object (node);
  if (!exo_http_get_string_member (object, "model_id", TRUE, &model_id, &local_error) ||
      !exo_http_get_int_member (object, "start_layer", TRUE, 0, G_MAXINT32, &start, &local_error) ||
      !exo_http_get_int_member (object, "end_layer", TRUE, 0, G_MAXINT32, &end, &local_error) ||
      !exo_http_get_int_member (object, "n_layers", TRUE, 1, G_MAXINT32, &n_layers, &local_error))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "%s: %s", what, local_error->message);
      return NULL;
    }
  if (!exo_http_id_is_valid (model_id))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "%s: 'model_id' must be 1 to %u printable ASCII characters",
                   what, EXO_HTTP_MAX_ID_LEN);
      return NULL;
    }
  if (start > end || end >= n_layers)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "%s: layers %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT
                   " are not a range of a model with %" G_GINT64_FORMAT " layers",
                   what, start, end, n_layers);
      return NULL;
    }
  return exo_shard_new (model_id, (guint) start, (guint) end, (guint) n_layers);
}

JsonNode *
exo_http_shard_to_json (const ExoShard *shard)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "model_id");
  json_builder_add_string_value (builder, shard->model_id);
  json_builder_set_member_name (builder, "start_layer");
  json_builder_add_int_value (builder, shard->start_layer);
  json_builder_set_member_name (builder, "end_layer");
  json_builder_add_int_value (builder, shard->end_layer);
  json_builder_set_member_name (builder, "n_layers");
  json_builder_add_int_value (builder, shard->n_layers);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

/* @text as a JSON string, quoted, appended to @out: every control
 * character, quote and backslash escaped (what json-glib does, and
 * U+001F too); text that is not UTF-8 has its invalid bytes replaced.
 * Written here because a ring's every tensor call carries a shard and
 * params: a JsonBuilder and a JsonGenerator per call cost more than the
 * rest of the frame. */
static void
append_json_string (GString    *out,
                    const char *text)
{
  g_autofree char *valid = g_utf8_validate (text, -1, NULL) ? NULL : g_utf8_make_valid (text, -1);

  g_string_append_c (out, '"');
  for (const char *p = valid != NULL ? valid : text; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

      if (c == '"' || c == '\\')
        {
          g_string_append_c (out, '\\');
          g_string_append_c (out, (char) c);
        }
      else if (c < 0x20 || c == 0x7f)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_c (out, (char) c);
    }
  g_string_append_c (out, '"');
}

char *
exo_http_shard_to_string (const ExoShard *shard)
{
  GString *out = g_string_new ("{\"model_id\":");

  append_json_string (out, shard->model_id);
  g_string_append_printf (out, ",\"start_layer\":%u,\"end_layer\":%u,\"n_layers\":%u}",
                          shard->start_layer, shard->end_layer, shard->n_layers);
  return g_string_free (out, FALSE);
}

/* --- generation parameters -------------------------------------------- */

/* An optional number in [@min, @max] (or (@min, @max] without
 * @min_inclusive); *out is untouched when absent.  (exo_json_validate ()
 * already refused what a double cannot hold.) */
static gboolean
get_number_member (JsonObject  *object,
                   const char  *name,
                   double       min,
                   gboolean     min_inclusive,
                   double       max,
                   double      *out,
                   GError     **error)
{
  JsonNode *node = json_object_get_member (object, name);
  double value;

  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) ||
      (json_node_get_value_type (node) != G_TYPE_DOUBLE &&
       json_node_get_value_type (node) != G_TYPE_INT64))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "field '%s' must be a number, not %s", name, node_type_name (node));
      return FALSE;
    }
  value = json_node_get_value_type (node) == G_TYPE_INT64 ? (double) json_node_get_int (node)
                                                          : json_node_get_double (node);
  if (!((min_inclusive ? value >= min : value > min) && value <= max))
    {
      if (min_inclusive)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                     "field '%s' is out of range (%g to %g)", name, min, max);
      else
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                     "field '%s' is out of range (more than %g, at most %g)", name, min, max);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

ExoGenerationParams *
exo_http_params_from_json (JsonNode    *node,
                           const char  *what,
                           GError     **error)
{
  g_autoptr(ExoGenerationParams) params = exo_generation_params_new ();
  g_autoptr(GError) local_error = NULL;
  JsonObject *object;
  gint64 max_tokens = 0;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "%s must be an object {\"max_tokens\", \"temperature\", \"top_p\", "
                   "\"seed\", \"origin\"}, not %s", what, node_type_name (node));
      return NULL;
    }
  object = json_node_get_object (node);
  if (!exo_http_get_int_member (object, "max_tokens", FALSE, 1, EXO_HTTP_MAX_TOKENS,
                                &max_tokens, &local_error) ||
      !get_number_member (object, "temperature", 0, TRUE, EXO_HTTP_MAX_TEMPERATURE,
                          &params->temperature, &local_error) ||
      !get_number_member (object, "top_p", 0, FALSE, 1, &params->top_p, &local_error) ||
      !exo_http_get_int_member (object, "seed", FALSE, G_MININT64, G_MAXINT64,
                                &params->seed, &local_error))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: %s", what, local_error->message);
      return NULL;
    }
  params->max_tokens = (guint) max_tokens;
  params->has_seed = json_object_has_member (object, "seed");
  if (json_object_has_member (object, "origin"))
    {
      JsonNode *origin = json_object_get_member (object, "origin");

      if (!JSON_NODE_HOLDS_VALUE (origin) || json_node_get_value_type (origin) != G_TYPE_STRING)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "%s: field 'origin' must be a string, not %s", what, node_type_name (origin));
          return NULL;
        }
      if (!exo_generation_params_set_origin (params, json_node_get_string (origin), &local_error))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: %s", what, local_error->message);
          return NULL;
        }
    }
  return g_steal_pointer (&params);
}

/* @value (finite) as a JSON number: the shortest text that reads back as
 * the same double.  json-glib 1.6 would append ".0" to any text without a
 * '.', which makes 1e-08 into `1e-08.0`, not JSON. */
static void
append_number (GString *out,
               double   value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_assert (isfinite (value));
  for (int precision = 1; precision <= 17; precision++)
    {
      char format[8];

      g_snprintf (format, sizeof format, "%%.%dg", precision);
      g_ascii_formatd (buf, sizeof buf, format, value);
      if (g_ascii_strtod (buf, NULL) == value)
        break;
    }
  g_string_append (out, buf);
}

char *
exo_http_params_to_string (const ExoGenerationParams *params)
{
  GString *out = g_string_new ("{");

  g_return_val_if_fail (params != NULL, NULL);
  /* What a peer accepts; the values of a caller that did not check them
   * are refused there, with the field named. */
  if (params->max_tokens > 0)
    g_string_append_printf (out, "\"max_tokens\":%u,", MIN (params->max_tokens, EXO_HTTP_MAX_TOKENS));
  g_string_append (out, "\"temperature\":");
  append_number (out, isfinite (params->temperature) ? params->temperature : -1);
  g_string_append (out, ",\"top_p\":");
  append_number (out, isfinite (params->top_p) ? params->top_p : -1);
  if (params->has_seed)
    g_string_append_printf (out, ",\"seed\":%" G_GINT64_FORMAT, params->seed);
  if (params->origin != NULL)
    {
      g_string_append (out, ",\"origin\":");
      append_json_string (out, params->origin);
    }
  g_string_append_c (out, '}');
  return g_string_free (out, FALSE);
}

/* --- tensor shape ------------------------------------------------------ */

gboolean
exo_http_parse_shape (const char *text,
                      gsize      *shape,
                      guint      *n_dims,
                      GError    **error)
{
  g_auto(GStrv) parts = NULL;
  guint n;

  if (text == NULL || text[0] == '\0')
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "header %s is missing (dims separated by commas, e.g. \"1,4\")",
                   EXO_HTTP_HEADER_SHAPE);
      return FALSE;
    }
  parts = g_strsplit (text, ",", EXO_TENSOR_MAX_DIMS + 1);
  n = g_strv_length (parts);
  if (n > EXO_TENSOR_MAX_DIMS)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "header %s has more than %u dims", EXO_HTTP_HEADER_SHAPE, EXO_TENSOR_MAX_DIMS);
      return FALSE;
    }
  for (guint i = 0; i < n; i++)
    {
      const char *p = g_strstrip (parts[i]);
      guint64 v;

      if (!g_ascii_string_to_unsigned (p, 10, 0, G_MAXUINT32, &v, NULL))
        {
          /* A header may hold any byte but CR, LF and NUL: the message shows
           * at most 32 of them, as valid UTF-8. */
          g_autofree char *shown = g_utf8_make_valid (p, (gssize) strnlen (p, 32));

          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "header %s: dim %u (\"%s\") is not a non-negative integer",
                       EXO_HTTP_HEADER_SHAPE, i, shown);
          return FALSE;
        }
      shape[i] = (gsize) v;
    }
  *n_dims = n;
  return TRUE;
}

char *
exo_http_shape_to_string (const gsize *shape,
                          guint        n_dims)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < n_dims; i++)
    g_string_append_printf (s, "%s%" G_GSIZE_FORMAT, i > 0 ? "," : "", shape[i]);
  return g_string_free (s, FALSE);
}

/* --- errors ------------------------------------------------------------ */

char *
exo_http_shown_text (const char *text,
                     gsize       max)
{
  if (text == NULL)
    return g_strdup ("");
  return g_utf8_make_valid (text, (gssize) strnlen (text, max));
}

guint
exo_http_status_for_error (const GError *error)
{
  if (error->domain == G_IO_ERROR)
    {
      switch (error->code)
        {
        case G_IO_ERROR_INVALID_ARGUMENT:
        case G_IO_ERROR_INVALID_DATA:
          return SOUP_STATUS_BAD_REQUEST;
        case G_IO_ERROR_NOT_FOUND:
          return SOUP_STATUS_NOT_FOUND;
        case G_IO_ERROR_TIMED_OUT:
          return SOUP_STATUS_GATEWAY_TIMEOUT;
        case G_IO_ERROR_BUSY:
          /* the engine holds max-sessions requests: retry later
           * (answered with Retry-After, http-routes.c) */
          return EXO_HTTP_STATUS_TOO_MANY_REQUESTS;
        case G_IO_ERROR_CANCELLED:
          return SOUP_STATUS_SERVICE_UNAVAILABLE;
        case G_IO_ERROR_MESSAGE_TOO_LARGE:
          /* an engine's context (max-seq-len) is full; the API node ends
           * such a request for "length" itself, so this is how a peer
           * tells it (/peer/v1/failure) */
          return SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE;
        case G_IO_ERROR_NOT_SUPPORTED:
          /* the node lacks the call (exo_node_role_*()), or its engine
           * cannot do what was asked */
          return SOUP_STATUS_NOT_IMPLEMENTED;
        default:
          if (exo_error_is_connection_error (error))
            return SOUP_STATUS_BAD_GATEWAY;
          return SOUP_STATUS_INTERNAL_SERVER_ERROR;
        }
    }
  if (error->domain == EXO_RESOURCE_ERROR)
    {
      switch (error->code)
        {
        case EXO_RESOURCE_ERROR_FATAL:
          return SOUP_STATUS_UNPROCESSABLE_ENTITY;
        case EXO_RESOURCE_ERROR_NOT_FOUND:
          return SOUP_STATUS_NOT_FOUND;
        case EXO_RESOURCE_ERROR_INVALID_STATE:
          /* not now: a node not ready, a ring that no node holds layers
           * of ("the ring is empty"); answered with Retry-After */
        case EXO_RESOURCE_ERROR_CLOSED:
        case EXO_RESOURCE_ERROR_EXHAUSTED:
        case EXO_RESOURCE_ERROR_UNHEALTHY:
          return SOUP_STATUS_SERVICE_UNAVAILABLE;
        default:
          return SOUP_STATUS_INTERNAL_SERVER_ERROR;
        }
    }
  return SOUP_STATUS_INTERNAL_SERVER_ERROR;
}

const char *
exo_http_error_code_for_status (guint status)
{
  switch (status)
    {
    case SOUP_STATUS_BAD_REQUEST:
      return NULL;
    case SOUP_STATUS_UNAUTHORIZED:
      return "invalid_api_key";
    case SOUP_STATUS_NOT_FOUND:
      return "not_found";
    case SOUP_STATUS_METHOD_NOT_ALLOWED:
      return "method_not_allowed";
    case SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE:
      return "request_too_large";
    case SOUP_STATUS_UNPROCESSABLE_ENTITY:
      return "unprocessable";
    case EXO_HTTP_STATUS_TOO_MANY_REQUESTS:
      return "rate_limit_exceeded";     /* what OpenAI sends with 429 */
    case SOUP_STATUS_NOT_IMPLEMENTED:
      return "not_implemented";
    case SOUP_STATUS_BAD_GATEWAY:
      return "bad_gateway";
    case SOUP_STATUS_SERVICE_UNAVAILABLE:
      return "service_unavailable";
    case SOUP_STATUS_GATEWAY_TIMEOUT:
      return "timeout";
    default:
      return status >= 500 ? "server_error" : "invalid_request";
    }
}

char *
exo_http_error_body (const char *path,
                     guint       status,
                     const char *message,
                     const char *param,
                     const char *code)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *valid = g_utf8_make_valid (message != NULL ? message : "", -1);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  if (path != NULL && g_str_has_prefix (path, "/peer/"))
    json_builder_add_string_value (builder, valid);
  else
    {
      if (code == NULL)
        code = exo_http_error_code_for_status (status);
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "message");
      json_builder_add_string_value (builder, valid);
      json_builder_set_member_name (builder, "type");
      json_builder_add_string_value (builder,
                                     status == EXO_HTTP_STATUS_TOO_MANY_REQUESTS ? "rate_limit_error"
                                     : status >= 500 ? "server_error" : "invalid_request_error");
      json_builder_set_member_name (builder, "param");
      if (param != NULL)
        json_builder_add_string_value (builder, param);
      else
        json_builder_add_null_value (builder);
      json_builder_set_member_name (builder, "code");
      if (code != NULL)
        json_builder_add_string_value (builder, code);
      else
        json_builder_add_null_value (builder);
      json_builder_end_object (builder);
    }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  return exo_http_node_to_string (root);
}

/* The inverse of exo_http_status_for_error() for a failure a peer relays
 * (/peer/v1/failure): the error its @status stands for here, so that the
 * request's caller gets the same status as from the peer itself. */
GError *
exo_http_error_for_failure (guint       status,
                            const char *message)
{
  GQuark domain = G_IO_ERROR;
  gint code;

  switch (status)
    {
    case SOUP_STATUS_BAD_REQUEST:
      code = G_IO_ERROR_INVALID_ARGUMENT;
      break;
    case SOUP_STATUS_NOT_FOUND:
      code = G_IO_ERROR_NOT_FOUND;
      break;
    case EXO_HTTP_STATUS_TOO_MANY_REQUESTS:
      code = G_IO_ERROR_BUSY;
      break;
    case SOUP_STATUS_GATEWAY_TIMEOUT:
      code = G_IO_ERROR_TIMED_OUT;
      break;
    case SOUP_STATUS_NOT_IMPLEMENTED:
      code = G_IO_ERROR_NOT_SUPPORTED;
      break;
    case SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE:
      code = G_IO_ERROR_MESSAGE_TOO_LARGE;
      break;
    case SOUP_STATUS_BAD_GATEWAY:
      code = G_IO_ERROR_HOST_UNREACHABLE;
      break;
    case SOUP_STATUS_UNPROCESSABLE_ENTITY:
      domain = EXO_RESOURCE_ERROR;
      code = EXO_RESOURCE_ERROR_FATAL;
      break;
    case SOUP_STATUS_SERVICE_UNAVAILABLE:
      domain = EXO_RESOURCE_ERROR;
      code = EXO_RESOURCE_ERROR_INVALID_STATE;
      break;
    default:
      code = G_IO_ERROR_FAILED;
      break;
    }
  return g_error_new_literal (domain, code, message);
}

/* The message of an error answer, or NULL: the "error" member, or its
 * "message" (OpenAI's shape, which a server answers before it knows the
 * request is a peer's: a connection over max-connections). */
static char *
error_message_of (GBytes *body)
{
  g_autoptr(JsonNode) root = NULL;
  const char *data;
  gsize len = 0;
  JsonNode *member;

  if (body == NULL)
    return NULL;
  data = g_bytes_get_data (body, &len);
  root = exo_http_parse_json (data, len, NULL);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  member = json_object_get_member (json_node_get_object (root), "error");
  if (member != NULL && JSON_NODE_HOLDS_OBJECT (member))
    member = json_object_get_member (json_node_get_object (member), "message");
  if (member == NULL || !JSON_NODE_HOLDS_VALUE (member) ||
      json_node_get_value_type (member) != G_TYPE_STRING)
    return NULL;
  /* An operator reads it: keep it short (g_utf8_substring() needs end <= length). */
  {
    const char *text = json_node_get_string (member);
    return g_utf8_substring (text, 0, MIN (g_utf8_strlen (text, -1), 512));
  }
}

GError *
exo_http_error_for_status (guint       status,
                           const char *peer,
                           const char *path,
                           GBytes     *body)
{
  g_autofree char *message = error_message_of (body);
  const char *reason = soup_status_get_phrase (status);
  GQuark domain;
  gint code;

  if (status >= 500)
    {
      domain = G_IO_ERROR;
      switch (status)
        {
        case SOUP_STATUS_SERVICE_UNAVAILABLE:
          code = G_IO_ERROR_BUSY;
          break;
        case SOUP_STATUS_GATEWAY_TIMEOUT:
          /* the peer's own next hop timed out: not our connection */
          code = G_IO_ERROR_FAILED;
          break;
        default:
          code = G_IO_ERROR_FAILED;
          break;
        }
    }
  else if (status == EXO_HTTP_STATUS_TOO_MANY_REQUESTS)
    {
      /* the peer's engine is full: busy, as 503 */
      domain = G_IO_ERROR;
      code = G_IO_ERROR_BUSY;
    }
  else if (status >= 400)
    {
      domain = EXO_RESOURCE_ERROR;
      code = EXO_RESOURCE_ERROR_FATAL;
    }
  else
    {
      domain = G_IO_ERROR;
      code = G_IO_ERROR_INVALID_DATA;
    }

  return g_error_new (domain, code, "peer %s: %s answered %u %s%s%s",
                      peer, path, status, reason != NULL ? reason : "",
                      message != NULL ? ": " : "", message != NULL ? message : "");
}
