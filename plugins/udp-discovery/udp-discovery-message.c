/* udp-discovery-message.c: exo's discovery message, built and checked.
 *
 * Everything that arrives from the network is validated here before the
 * resource looks at it: size, UTF-8, JSON, the type of every field it uses.
 * The first problem found is the error message (kept as the metric
 * `last-drop-reason`), so it names the field.
 *
 * Rules: pure functions of their arguments: no state, no main context, no
 * lock, no logging; any thread may call them, and the fuzzers do, alone.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "udp-discovery-private.h"

#include <json-glib/json-glib.h>

G_DEFINE_QUARK (udp-discovery-message-error-quark, udp_discovery_message_error)

static gboolean set_invalid (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* Sets an INVALID error; returns FALSE. */
static gboolean
set_invalid (GError     **error,
             const char  *format,
             ...)
{
  va_list args;

  if (error == NULL)
    return FALSE;
  va_start (args, format);
  *error = g_error_new_valist (UDP_DISCOVERY_MESSAGE_ERROR, UDP_DISCOVERY_MESSAGE_ERROR_INVALID,
                               format, args);
  va_end (args);
  return FALSE;
}

#define INVALID(error, ...) set_invalid ((error), __VA_ARGS__)
#define FAIL(...) G_STMT_START { set_invalid (error, __VA_ARGS__); return NULL; } G_STMT_END

void
udp_discovery_device_clear (UdpDiscoveryDevice *device)
{
  g_clear_pointer (&device->model, g_free);
  g_clear_pointer (&device->chip, g_free);
}

GVariant *
udp_discovery_device_to_variant (const UdpDiscoveryDevice *device)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "model", "s", device->model != NULL ? device->model : "");
  g_variant_dict_insert (&dict, "chip", "s", device->chip != NULL ? device->chip : "");
  g_variant_dict_insert (&dict, "memory", "t", device->memory_mib);
  g_variant_dict_insert (&dict, "flops-fp32", "d", device->fp32);
  g_variant_dict_insert (&dict, "flops-fp16", "d", device->fp16);
  g_variant_dict_insert (&dict, "flops-int8", "d", device->int8);
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

void
udp_discovery_message_free (UdpDiscoveryMessage *message)
{
  if (message == NULL)
    return;
  g_free (message->node_id);
  g_free (message->instance_id);
  g_free (message->interface_name);
  g_free (message->interface_type);
  g_clear_pointer (&message->capabilities, g_variant_unref);
  g_free (message);
}

/* --- checks -------------------------------------------------------------- */

static gboolean
is_integer (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64;
}

static gboolean
is_number (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) &&
         (json_node_get_value_type (node) == G_TYPE_INT64 ||
          json_node_get_value_type (node) == G_TYPE_DOUBLE);
}

static gboolean
is_string (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING;
}

static double
get_number (JsonNode *node)
{
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    return (double) json_node_get_int (node);
  return json_node_get_double (node);
}

static gboolean
has_control_chars (const char *s)
{
  for (; *s != '\0'; s++)
    if ((guchar) *s < 0x20 || *s == 0x7f)
      return TRUE;
  return FALSE;
}

gboolean
udp_discovery_node_id_is_valid (const char  *node_id,
                                GError     **error)
{
  if (node_id == NULL || *node_id == '\0')
    return INVALID (error, "node_id is empty");
  if (!g_utf8_validate (node_id, -1, NULL))
    return INVALID (error, "node_id is not UTF-8");
  if (g_utf8_strlen (node_id, -1) > UDP_DISCOVERY_MAX_NODE_ID)
    return INVALID (error, "node_id is longer than %d characters", UDP_DISCOVERY_MAX_NODE_ID);
  if (has_control_chars (node_id))
    return INVALID (error, "node_id contains control characters");
  return TRUE;
}

/* An optional string member: absent is fine (*out = NULL). */
static gboolean
get_optional_string (JsonObject  *object,
                     const char  *member,
                     const char  *where,
                     char       **out,
                     GError     **error)
{
  JsonNode *node = json_object_get_member (object, member);
  const char *s;

  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!is_string (node))
    return INVALID (error, "%s%s is not a string", where, member);
  s = json_node_get_string (node);
  /* exo_json_validate() made sure of it; GVariant would warn on every message. */
  if (!g_utf8_validate (s, -1, NULL))
    return INVALID (error, "%s%s is not UTF-8", where, member);
  if (g_utf8_strlen (s, -1) > UDP_DISCOVERY_MAX_STRING)
    return INVALID (error, "%s%s is longer than %d characters", where, member,
                    UDP_DISCOVERY_MAX_STRING);
  if (has_control_chars (s))
    return INVALID (error, "%s%s contains control characters", where, member);
  *out = g_strdup (s);
  return TRUE;
}

/* device_capabilities: every field optional, every field typed. */
static gboolean
parse_capabilities (JsonNode   *node,
                    GVariant  **out,
                    GError    **error)
{
  UdpDiscoveryDevice device = { NULL, };
  JsonObject *object;
  JsonNode *member;
  gboolean ok = FALSE;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      *out = udp_discovery_device_to_variant (&device);
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return INVALID (error, "device_capabilities is not an object");
  object = json_node_get_object (node);

  if (!get_optional_string (object, "model", "device_capabilities.", &device.model, error) ||
      !get_optional_string (object, "chip", "device_capabilities.", &device.chip, error))
    goto out;

  member = json_object_get_member (object, "memory");
  if (member != NULL && !JSON_NODE_HOLDS_NULL (member))
    {
      if (!is_integer (member))
        {
          INVALID (error, "device_capabilities.memory is not an integer");
          goto out;
        }
      if (json_node_get_int (member) < 0)
        {
          INVALID (error, "device_capabilities.memory is negative");
          goto out;
        }
      device.memory_mib = (guint64) json_node_get_int (member);
    }

  member = json_object_get_member (object, "flops");
  if (member != NULL && !JSON_NODE_HOLDS_NULL (member))
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *value;

      if (!JSON_NODE_HOLDS_OBJECT (member))
        {
          INVALID (error, "device_capabilities.flops is not an object");
          goto out;
        }
      json_object_iter_init (&iter, json_node_get_object (member));
      while (json_object_iter_next (&iter, &name, &value))
        {
          double number;

          if (!is_number (value))
            {
              INVALID (error, "device_capabilities.flops.%s is not a number",
                       g_utf8_validate (name, -1, NULL) ? name : "?");
              goto out;
            }
          /* Finite (exo_json_validate() refused 1e999), and in a range that
           * goes back out as JSON (see json_safe_flops ()). */
          number = get_number (value);
          if (!(number >= 0 && number <= UDP_DISCOVERY_MAX_FLOPS))
            {
              INVALID (error, "device_capabilities.flops.%s is out of range (0 to %g)",
                       g_utf8_validate (name, -1, NULL) ? name : "?", UDP_DISCOVERY_MAX_FLOPS);
              goto out;
            }
          if (g_str_equal (name, "fp32"))
            device.fp32 = number;
          else if (g_str_equal (name, "fp16"))
            device.fp16 = number;
          else if (g_str_equal (name, "int8"))
            device.int8 = number;
        }
    }

  *out = udp_discovery_device_to_variant (&device);
  ok = TRUE;

out:
  udp_discovery_device_clear (&device);
  return ok;
}

static JsonNode *
parse_json (const char  *data,
            gsize        length,
            const char  *what,
            GError     **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) local_error = NULL;
  guint line = 0, column = 0;
  JsonNode *root;

  if (length > UDP_DISCOVERY_MAX_MESSAGE)
    {
      g_set_error (error, UDP_DISCOVERY_MESSAGE_ERROR, UDP_DISCOVERY_MESSAGE_ERROR_OVERSIZED,
                   "%s of %" G_GSIZE_FORMAT " bytes is larger than %d bytes", what, length,
                   UDP_DISCOVERY_MAX_MESSAGE);
      return NULL;
    }
  /* Strict JSON only (RFC 8259): json-glib would take comments, single
   * quotes and 1e999, recurse without a depth limit, and make invalid UTF-8
   * of a lone surrogate ("\ud800"), which GVariant refuses with a critical. */
  if (!exo_json_validate (data, length, UDP_DISCOVERY_MAX_JSON_DEPTH, &line, &column, &local_error))
    {
      INVALID (error, "%s is not JSON (line %u, column %u): %s", what, line, column,
               local_error->message);
      return NULL;
    }

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, data, (gssize) length, &local_error))
    {
      INVALID (error, "%s is not JSON: %s", what, local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      INVALID (error, "%s is not a JSON object", what);
      return NULL;
    }
  return json_node_ref (root);
}

/* --- the discovery message -------------------------------------------------- */

UdpDiscoveryMessage *
udp_discovery_message_parse (const char  *data,
                             gsize        length,
                             GError     **error)
{
  g_autoptr(UdpDiscoveryMessage) message = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;
  JsonNode *node;
  gint64 port;

  root = parse_json (data, length, "message", error);
  if (root == NULL)
    return NULL;
  object = json_node_get_object (root);

  node = json_object_get_member (object, "type");
  if (node == NULL)
    FAIL ("type is missing");
  if (!is_string (node))
    FAIL ("type is not a string");
  if (!g_str_equal (json_node_get_string (node), "discovery"))
    FAIL ("type is not \"discovery\"");

  message = g_new0 (UdpDiscoveryMessage, 1);

  node = json_object_get_member (object, "node_id");
  if (node == NULL)
    FAIL ("node_id is missing");
  if (!is_string (node))
    FAIL ("node_id is not a string");
  if (!udp_discovery_node_id_is_valid (json_node_get_string (node), error))
    return NULL;
  message->node_id = g_strdup (json_node_get_string (node));

  node = json_object_get_member (object, "grpc_port");
  if (node == NULL)
    FAIL ("grpc_port is missing");
  if (!is_integer (node))
    FAIL ("grpc_port is not an integer");
  port = json_node_get_int (node);
  if (port < 1 || port > 65535)
    FAIL ("grpc_port %" G_GINT64_FORMAT " is out of range (1 to 65535)", port);
  message->grpc_port = (guint16) port;

  if (!parse_capabilities (json_object_get_member (object, "device_capabilities"),
                           &message->capabilities, error))
    return NULL;

  node = json_object_get_member (object, "priority");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (!is_integer (node))
        FAIL ("priority is not an integer");
      message->priority = json_node_get_int (node);
    }

  if (!get_optional_string (object, "interface_name", "", &message->interface_name, error) ||
      !get_optional_string (object, "interface_type", "", &message->interface_type, error) ||
      !get_optional_string (object, "instance_id", "", &message->instance_id, error))
    return NULL;
  if (message->interface_name == NULL)
    message->interface_name = g_strdup ("");
  if (message->interface_type == NULL)
    message->interface_type = g_strdup ("");

  return g_steal_pointer (&message);
}

/* A flops value that json-glib writes as JSON.  json-glib 1.6 prints a
 * double with "%.17g" and appends ".0" when the text has no '.': 1e17
 * becomes 1e+17.0, 1e-8 becomes 1e-08.0 and inf becomes inf.0, none of them
 * JSON.  From 1e-4 up to UDP_DISCOVERY_MAX_FLOPS (1e15) "%.17g" writes
 * plain digits; smaller values (and NaN) go out as 0, larger as the limit. */
static double
json_safe_flops (double value)
{
  if (!(value >= 1e-4))
    return 0;
  return MIN (value, UDP_DISCOVERY_MAX_FLOPS);
}

char *
udp_discovery_message_build (const char               *node_id,
                             guint16                   grpc_port,
                             const char               *instance_id,
                             const char               *interface_name,
                             const char               *interface_type,
                             gint                      priority,
                             const UdpDiscoveryDevice *device,
                             gsize                    *length)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, "discovery");
  json_builder_set_member_name (builder, "node_id");
  json_builder_add_string_value (builder, node_id);
  json_builder_set_member_name (builder, "grpc_port");
  json_builder_add_int_value (builder, grpc_port);

  json_builder_set_member_name (builder, "device_capabilities");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "model");
  json_builder_add_string_value (builder, device->model != NULL ? device->model : "");
  json_builder_set_member_name (builder, "chip");
  json_builder_add_string_value (builder, device->chip != NULL ? device->chip : "");
  json_builder_set_member_name (builder, "memory");
  json_builder_add_int_value (builder, (gint64) MIN (device->memory_mib, (guint64) G_MAXINT64));
  json_builder_set_member_name (builder, "flops");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "fp32");
  json_builder_add_double_value (builder, json_safe_flops (device->fp32));
  json_builder_set_member_name (builder, "fp16");
  json_builder_add_double_value (builder, json_safe_flops (device->fp16));
  json_builder_set_member_name (builder, "int8");
  json_builder_add_double_value (builder, json_safe_flops (device->int8));
  json_builder_end_object (builder);
  json_builder_end_object (builder);

  json_builder_set_member_name (builder, "priority");
  json_builder_add_int_value (builder, priority);
  json_builder_set_member_name (builder, "interface_name");
  json_builder_add_string_value (builder, interface_name != NULL ? interface_name : "");
  json_builder_set_member_name (builder, "interface_type");
  json_builder_add_string_value (builder, interface_type != NULL ? interface_type : "");
  json_builder_set_member_name (builder, "instance_id");
  json_builder_add_string_value (builder, instance_id);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  /* json-glib leaves U+001F unescaped. */
  return exo_json_fix_generated (json_generator_to_data (generator, length), length);
}

/* --- the health answer of a static peer ----------------------------------- */

gboolean
udp_discovery_parse_health (const char  *data,
                            gsize        length,
                            char       **node_id,
                            GVariant   **capabilities,
                            GError     **error)
{
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;
  JsonNode *node;

  root = parse_json (data, length, "health answer", error);
  if (root == NULL)
    return FALSE;
  object = json_node_get_object (root);

  node = json_object_get_member (object, "status");
  if (node == NULL || !is_string (node) || !g_str_equal (json_node_get_string (node), "ok"))
    return INVALID (error, "health answer: status is not \"ok\"");

  node = json_object_get_member (object, "node_id");
  if (node == NULL)
    return INVALID (error, "health answer: node_id is missing");
  if (!is_string (node))
    return INVALID (error, "health answer: node_id is not a string");
  if (!udp_discovery_node_id_is_valid (json_node_get_string (node), error))
    {
      g_prefix_error (error, "health answer: ");
      return FALSE;
    }

  if (!parse_capabilities (json_object_get_member (object, "device_capabilities"),
                           capabilities, error))
    {
      g_prefix_error (error, "health answer: ");
      return FALSE;
    }
  *node_id = g_strdup (json_node_get_string (node));
  return TRUE;
}
