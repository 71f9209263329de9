/* node-topology.c: the cluster topology, its JSON form (a peer's answer
 * parsed; what the node shows as its `topology` property) and its GVariant
 * form (what ExoNodeRole returns, EXO_NODE_ROLE_TOPOLOGY_TYPE).  Pure data:
 * no node, no main context; the fuzzers build it alone.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "node-topology.h"

#include <exo/exo.h>
#include <gio/gio.h>
#include <string.h>

#define MAX_JSON_DEPTH 32
#define MAX_JSON_BYTES (4 * 1024 * 1024)

/* --- capabilities ---------------------------------------------------- */

NodeCaps *
node_caps_new (const char *model,
               const char *chip,
               guint64     memory)
{
  NodeCaps *caps = g_new0 (NodeCaps, 1);

  caps->model = g_strdup (model != NULL ? model : "");
  caps->chip = g_strdup (chip != NULL ? chip : "");
  caps->memory = memory;
  return caps;
}

NodeCaps *
node_caps_copy (const NodeCaps *caps)
{
  NodeCaps *copy;

  if (caps == NULL)
    return NULL;
  copy = node_caps_new (caps->model, caps->chip, caps->memory);
  copy->fp32 = caps->fp32;
  copy->fp16 = caps->fp16;
  copy->int8 = caps->int8;
  copy->digest = g_strdup (caps->digest);
  return copy;
}

const char *
node_caps_valid_digest (const char *digest)
{
  gsize n = 0;

  if (digest == NULL || digest[0] == '\0')
    return NULL;
  for (const char *p = digest; *p != '\0'; p++, n++)
    if (*p < 0x21 || *p > 0x7e || n >= EXO_MODEL_DIGEST_MAX_LEN)
      return NULL;
  return digest;
}

void
node_caps_free (NodeCaps *caps)
{
  if (caps == NULL)
    return;
  g_free (caps->model);
  g_free (caps->chip);
  g_free (caps->digest);
  g_free (caps);
}

gboolean
node_caps_equal (const NodeCaps *a,
                 const NodeCaps *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return g_strcmp0 (a->model, b->model) == 0 && g_strcmp0 (a->chip, b->chip) == 0 &&
         a->memory == b->memory && a->fp32 == b->fp32 && a->fp16 == b->fp16 &&
         a->int8 == b->int8 && g_strcmp0 (a->digest, b->digest) == 0;
}

/* Memory in MiB from a double of unknown origin: a cast of NaN, a negative
 * value or one past 2^64 is undefined behaviour; the topology has integers
 * up to G_MAXINT64. */
static guint64
memory_from_double (double value)
{
  if (!(value > 0))
    return 0;
  if (value >= 9223372036854775807.0)
    return G_MAXINT64;
  return (guint64) value;
}

/* Flops (TFLOPS) that json-glib writes as JSON.  json-glib 1.6 prints a
 * double with "%.17g" and appends ".0" when the text has no '.': 1e17
 * becomes 1e+17.0, 1e-8 becomes 1e-08.0 and inf becomes inf.0, none of them
 * JSON.  From 1e-4 up to NODE_CAPS_MAX_FLOPS (1e15) "%.17g" writes plain
 * digits; smaller values (and NaN) become 0, larger ones the limit. */
static double
flops_clamp (double value)
{
  if (!(value >= 1e-4))
    return 0;
  return MIN (value, NODE_CAPS_MAX_FLOPS);
}

static double
lookup_double (GVariantDict *dict,
               const char   *key)
{
  g_autoptr(GVariant) v = g_variant_dict_lookup_value (dict, key, NULL);

  if (v == NULL)
    return 0;
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_DOUBLE))
    return g_variant_get_double (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_INT64))
    return (double) g_variant_get_int64 (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT64))
    return (double) g_variant_get_uint64 (v);
  return 0;
}

NodeCaps *
node_caps_from_variant (GVariant *variant)
{
  g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT (NULL);
  g_autoptr(GVariant) memory = NULL;
  const char *model = "", *chip = "";
  NodeCaps *caps;

  if (variant == NULL || !g_variant_is_of_type (variant, G_VARIANT_TYPE_VARDICT))
    return node_caps_new ("", "", 0);

  g_variant_dict_init (&dict, variant);
  g_variant_dict_lookup (&dict, "model", "&s", &model);
  g_variant_dict_lookup (&dict, "chip", "&s", &chip);
  caps = node_caps_new (model, chip, 0);
  {
    const char *digest = NULL;

    if (g_variant_dict_lookup (&dict, "model-digest", "&s", &digest))
      caps->digest = g_strdup (node_caps_valid_digest (digest));
  }

  memory = g_variant_dict_lookup_value (&dict, "memory", NULL);
  if (memory != NULL)
    {
      if (g_variant_is_of_type (memory, G_VARIANT_TYPE_UINT64))
        caps->memory = g_variant_get_uint64 (memory);
      else if (g_variant_is_of_type (memory, G_VARIANT_TYPE_INT64))
        caps->memory = (guint64) MAX (0, g_variant_get_int64 (memory));
      else if (g_variant_is_of_type (memory, G_VARIANT_TYPE_UINT32))
        caps->memory = g_variant_get_uint32 (memory);
      else if (g_variant_is_of_type (memory, G_VARIANT_TYPE_INT32))
        caps->memory = (guint64) MAX (0, g_variant_get_int32 (memory));
      else if (g_variant_is_of_type (memory, G_VARIANT_TYPE_DOUBLE))
        caps->memory = memory_from_double (g_variant_get_double (memory));
    }
  caps->fp32 = flops_clamp (lookup_double (&dict, "flops-fp32"));
  caps->fp16 = flops_clamp (lookup_double (&dict, "flops-fp16"));
  caps->int8 = flops_clamp (lookup_double (&dict, "flops-int8"));
  return caps;
}

GVariant *
node_caps_to_variant (const NodeCaps *caps)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "model", "s", caps->model);
  g_variant_dict_insert (&dict, "chip", "s", caps->chip);
  g_variant_dict_insert (&dict, "memory", "t", caps->memory);
  g_variant_dict_insert (&dict, "flops-fp32", "d", caps->fp32);
  g_variant_dict_insert (&dict, "flops-fp16", "d", caps->fp16);
  g_variant_dict_insert (&dict, "flops-int8", "d", caps->int8);
  if (caps->digest != NULL)
    g_variant_dict_insert (&dict, "model-digest", "s", caps->digest);
  return g_variant_dict_end (&dict);
}

/* --- topology -------------------------------------------------------- */

static void
edge_free (NodeEdge *edge)
{
  g_free (edge->from_id);
  g_free (edge->to_id);
  g_free (edge->description);
  g_free (edge);
}

NodeTopology *
node_topology_new (void)
{
  NodeTopology *topology = g_new0 (NodeTopology, 1);

  topology->nodes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify) node_caps_free);
  topology->edges = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify) g_ptr_array_unref);
  return topology;
}

void
node_topology_free (NodeTopology *topology)
{
  if (topology == NULL)
    return;
  g_hash_table_unref (topology->nodes);
  g_hash_table_unref (topology->edges);
  g_free (topology->active_node_id);
  g_free (topology);
}

void
node_topology_update_node (NodeTopology   *topology,
                           const char     *id,
                           const NodeCaps *caps)
{
  g_hash_table_replace (topology->nodes, g_strdup (id), node_caps_copy (caps));
}

void
node_topology_add_edge (NodeTopology *topology,
                        const char   *from_id,
                        const char   *to_id,
                        const char   *description)
{
  GPtrArray *list = g_hash_table_lookup (topology->edges, from_id);
  NodeEdge *edge;

  if (list == NULL)
    {
      list = g_ptr_array_new_with_free_func ((GDestroyNotify) edge_free);
      g_hash_table_insert (topology->edges, g_strdup (from_id), list);
    }
  for (guint i = 0; i < list->len; i++)
    if (g_str_equal (((NodeEdge *) g_ptr_array_index (list, i))->to_id, to_id))
      return;

  edge = g_new0 (NodeEdge, 1);
  edge->from_id = g_strdup (from_id);
  edge->to_id = g_strdup (to_id);
  edge->description = g_strdup (description != NULL ? description : "");
  g_ptr_array_add (list, edge);
}

void
node_topology_remove_node (NodeTopology *topology,
                           const char   *id)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_remove (topology->nodes, id);
  g_hash_table_remove (topology->edges, id);
  g_hash_table_iter_init (&iter, topology->edges);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      GPtrArray *list = value;

      for (guint i = 0; i < list->len; i++)
        if (g_str_equal (((NodeEdge *) g_ptr_array_index (list, i))->to_id, id))
          g_ptr_array_remove_index (list, i--);
    }
}

NodeTopology *
node_topology_copy (const NodeTopology *topology)
{
  NodeTopology *copy = node_topology_new ();

  node_topology_merge (copy, NULL, topology, NULL);
  copy->active_node_id = g_strdup (topology->active_node_id);
  return copy;
}

void
node_topology_merge (NodeTopology       *topology,
                     const char         *peer_id,
                     const NodeTopology *other,
                     GHashTable         *exclude)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, other->nodes);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      if (exclude != NULL && g_hash_table_contains (exclude, key))
        continue;
      /* A peer that lists NODE_TOPOLOGY_MAX_NODES nodes must not make ours
       * one that every other peer refuses. */
      if (!g_hash_table_contains (topology->nodes, key) &&
          g_hash_table_size (topology->nodes) >= NODE_TOPOLOGY_MAX_NODES)
        continue;
      if (g_strcmp0 (key, peer_id) == 0 || !g_hash_table_contains (topology->nodes, key))
        node_topology_update_node (topology, key, value);
    }

  g_hash_table_iter_init (&iter, other->edges);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      GPtrArray *list = value;

      if (exclude != NULL && g_hash_table_contains (exclude, key))
        continue;
      for (guint i = 0; i < list->len; i++)
        {
          NodeEdge *edge = g_ptr_array_index (list, i);

          if (exclude != NULL && g_hash_table_contains (exclude, edge->to_id))
            continue;
          node_topology_add_edge (topology, edge->from_id, edge->to_id, edge->description);
        }
    }
}

static int
compare_ids (gconstpointer a,
             gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

GPtrArray *
node_topology_list_nodes (const NodeTopology *topology)
{
  GPtrArray *ids = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, topology->nodes);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (ids, key);
  g_ptr_array_sort (ids, compare_ids);
  return ids;
}

/* --- GVariant (EXO_NODE_ROLE_TOPOLOGY_TYPE) -------------------------- */

/* From ids of the edges, sorted. */
static GPtrArray *
list_from_ids (const NodeTopology *topology)
{
  GPtrArray *from_ids = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, topology->edges);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (from_ids, key);
  g_ptr_array_sort (from_ids, compare_ids);
  return from_ids;
}

void
node_topology_build_variant (const NodeTopology *topology,
                             GVariantBuilder    *dict)
{
  g_autoptr(GPtrArray) ids = node_topology_list_nodes (topology);
  g_autoptr(GPtrArray) from_ids = list_from_ids (topology);
  GVariantBuilder nodes, edges;

  g_variant_builder_init (&nodes, G_VARIANT_TYPE ("a{sa{sv}}"));
  for (guint i = 0; i < ids->len; i++)
    {
      const char *id = g_ptr_array_index (ids, i);

      g_variant_builder_add (&nodes, "{s@a{sv}}", id,
                             node_caps_to_variant (g_hash_table_lookup (topology->nodes, id)));
    }
  g_variant_builder_add (dict, "{sv}", "nodes", g_variant_builder_end (&nodes));

  g_variant_builder_init (&edges, G_VARIANT_TYPE ("a(sss)"));
  for (guint i = 0; i < from_ids->len; i++)
    {
      GPtrArray *list = g_hash_table_lookup (topology->edges, g_ptr_array_index (from_ids, i));

      for (guint j = 0; j < list->len; j++)
        {
          NodeEdge *edge = g_ptr_array_index (list, j);

          g_variant_builder_add (&edges, "(sss)", edge->from_id, edge->to_id, edge->description);
        }
    }
  g_variant_builder_add (dict, "{sv}", "edges", g_variant_builder_end (&edges));

  if (topology->active_node_id != NULL)
    g_variant_builder_add (dict, "{sv}", "active-node-id",
                           g_variant_new_string (topology->active_node_id));
}

GVariant *
node_topology_to_variant (const NodeTopology *topology)
{
  GVariantBuilder dict;

  g_variant_builder_init (&dict, G_VARIANT_TYPE_VARDICT);
  node_topology_build_variant (topology, &dict);
  return g_variant_ref_sink (g_variant_builder_end (&dict));
}

/* --- JSON ------------------------------------------------------------ */

void
node_topology_build_json (const NodeTopology *topology,
                          JsonBuilder        *builder)
{
  g_autoptr(GPtrArray) ids = node_topology_list_nodes (topology);
  g_autoptr(GPtrArray) from_ids = list_from_ids (topology);

  json_builder_set_member_name (builder, "nodes");
  json_builder_begin_object (builder);
  for (guint i = 0; i < ids->len; i++)
    {
      const char *id = g_ptr_array_index (ids, i);
      const NodeCaps *caps = g_hash_table_lookup (topology->nodes, id);

      json_builder_set_member_name (builder, id);
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "model");
      json_builder_add_string_value (builder, caps->model);
      json_builder_set_member_name (builder, "chip");
      json_builder_add_string_value (builder, caps->chip);
      json_builder_set_member_name (builder, "memory");
      json_builder_add_int_value (builder, (gint64) MIN (caps->memory, (guint64) G_MAXINT64));
      json_builder_set_member_name (builder, "flops");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "fp32");
      json_builder_add_double_value (builder, flops_clamp (caps->fp32));
      json_builder_set_member_name (builder, "fp16");
      json_builder_add_double_value (builder, flops_clamp (caps->fp16));
      json_builder_set_member_name (builder, "int8");
      json_builder_add_double_value (builder, flops_clamp (caps->int8));
      json_builder_end_object (builder);
      if (caps->digest != NULL)
        {
          json_builder_set_member_name (builder, "model_digest");
          json_builder_add_string_value (builder, caps->digest);
        }
      json_builder_end_object (builder);
    }
  json_builder_end_object (builder);

  json_builder_set_member_name (builder, "peer_graph");
  json_builder_begin_object (builder);
  for (guint i = 0; i < from_ids->len; i++)
    {
      const char *from = g_ptr_array_index (from_ids, i);
      GPtrArray *list = g_hash_table_lookup (topology->edges, from);

      json_builder_set_member_name (builder, from);
      json_builder_begin_array (builder);
      for (guint j = 0; j < list->len; j++)
        {
          NodeEdge *edge = g_ptr_array_index (list, j);

          json_builder_begin_object (builder);
          json_builder_set_member_name (builder, "from_id");
          json_builder_add_string_value (builder, edge->from_id);
          json_builder_set_member_name (builder, "to_id");
          json_builder_add_string_value (builder, edge->to_id);
          json_builder_set_member_name (builder, "description");
          json_builder_add_string_value (builder, edge->description);
          json_builder_end_object (builder);
        }
      json_builder_end_array (builder);
    }
  json_builder_end_object (builder);

  json_builder_set_member_name (builder, "active_node_id");
  if (topology->active_node_id != NULL)
    json_builder_add_string_value (builder, topology->active_node_id);
  else
    json_builder_add_null_value (builder);
}

char *
node_topology_to_json (const NodeTopology *topology)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  node_topology_build_json (topology, builder);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  /* json-glib leaves U+001F unescaped (a model name from a peer may hold it). */
  return exo_json_fix_generated (json_generator_to_data (generator, NULL), NULL);
}

static gboolean
id_is_valid (const char *id)
{
  gsize len;

  if (id == NULL || (len = strlen (id)) == 0 || len > NODE_TOPOLOGY_MAX_ID_LEN)
    return FALSE;
  for (const char *p = id; *p != '\0'; p++)
    if ((guchar) *p < 0x20 || (guchar) *p == 0x7f)
      return FALSE;
  return g_utf8_validate (id, -1, NULL);
}

/* A number in [@min, @max]; absent or null is 0. */
static gboolean
get_number (JsonObject *object,
            const char *name,
            double      min,
            double      max,
            double     *out)
{
  JsonNode *node = json_object_get_member (object, name);
  double value;

  *out = 0;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  switch (json_node_get_value_type (node))
    {
    case G_TYPE_INT64:
      value = (double) json_node_get_int (node);
      break;
    case G_TYPE_DOUBLE:
      value = json_node_get_double (node);
      break;
    default:
      return FALSE;
    }
  if (!(value >= min && value <= max))
    return FALSE;
  *out = value;
  return TRUE;
}

static const char *
get_string (JsonObject *object,
            const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static NodeCaps *
caps_from_json (JsonNode    *node,
                const char  *id,
                GError     **error)
{
  JsonObject *object, *flops;
  JsonNode *flops_node;
  const char *model, *chip;
  double memory;
  g_autoptr(NodeCaps) caps = NULL;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    goto bad;
  object = json_node_get_object (node);
  model = get_string (object, "model");
  chip = get_string (object, "chip");
  /* Memory goes back out as a JSON integer, flops as plain digits
   * (flops_clamp ()); a cast of a double past 2^64 would be undefined. */
  if (!get_number (object, "memory", 0, 9223372036854774784.0, &memory))
    goto bad;
  caps = node_caps_new (model, chip, (guint64) memory);
  caps->digest = g_strdup (node_caps_valid_digest (get_string (object, "model_digest")));
  flops_node = json_object_get_member (object, "flops");
  if (flops_node != NULL && JSON_NODE_HOLDS_OBJECT (flops_node))
    {
      flops = json_node_get_object (flops_node);
      if (!get_number (flops, "fp32", 0, NODE_CAPS_MAX_FLOPS, &caps->fp32) ||
          !get_number (flops, "fp16", 0, NODE_CAPS_MAX_FLOPS, &caps->fp16) ||
          !get_number (flops, "int8", 0, NODE_CAPS_MAX_FLOPS, &caps->int8))
        goto bad;
    }
  return g_steal_pointer (&caps);

bad:
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
               "topology: the capabilities of node '%s' are not an object "
               "{model, chip, memory (0 to 2^63 MiB), flops (0 to %g each)}",
               id, NODE_CAPS_MAX_FLOPS);
  return NULL;
}

NodeTopology *
node_topology_from_json (const char  *json,
                         gssize       length,
                         GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(NodeTopology) topology = node_topology_new ();
  g_autoptr(GError) local_error = NULL;
  JsonObject *root, *nodes, *graph;
  JsonNode *member;
  GList *names;
  guint line = 0, column = 0;

  if (json == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "topology: empty answer");
      return NULL;
    }
  if (length < 0)
    length = strlen (json);
  if ((gsize) length > MAX_JSON_BYTES)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "topology: %" G_GSSIZE_FORMAT " bytes is more than the limit of %d",
                   length, MAX_JSON_BYTES);
      return NULL;
    }
  /* Strict JSON only: json-glib would take comments and single quotes,
   * recurse without a depth limit, and read 1e999 as inf. */
  if (!exo_json_validate (json, (gsize) length, MAX_JSON_DEPTH, &line, &column, &local_error))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "topology: not JSON (line %u, column %u): %s", line, column, local_error->message);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, json, length, &local_error))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "topology: %s", local_error->message);
      return NULL;
    }
  if (json_parser_get_root (parser) == NULL || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "topology: not a JSON object");
      return NULL;
    }
  root = json_node_get_object (json_parser_get_root (parser));

  member = json_object_get_member (root, "nodes");
  if (member == NULL || !JSON_NODE_HOLDS_OBJECT (member))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "topology: \"nodes\" is missing or not an object");
      return NULL;
    }
  nodes = json_node_get_object (member);
  if (json_object_get_size (nodes) > NODE_TOPOLOGY_MAX_NODES)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "topology: %u nodes is more than the limit of %d",
                   json_object_get_size (nodes), NODE_TOPOLOGY_MAX_NODES);
      return NULL;
    }
  names = json_object_get_members (nodes);
  for (GList *l = names; l != NULL; l = l->next)
    {
      const char *id = l->data;
      NodeCaps *caps;

      if (!id_is_valid (id))
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                               "topology: invalid node id");
          g_list_free (names);
          return NULL;
        }
      caps = caps_from_json (json_object_get_member (nodes, id), id, error);
      if (caps == NULL)
        {
          g_list_free (names);
          return NULL;
        }
      g_hash_table_replace (topology->nodes, g_strdup (id), caps);
    }
  g_list_free (names);

  member = json_object_get_member (root, "peer_graph");
  if (member != NULL && !JSON_NODE_HOLDS_NULL (member))
    {
      guint n_edges = 0;

      if (!JSON_NODE_HOLDS_OBJECT (member))
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                               "topology: \"peer_graph\" is not an object");
          return NULL;
        }
      graph = json_node_get_object (member);
      names = json_object_get_members (graph);
      for (GList *l = names; l != NULL; l = l->next)
        {
          JsonNode *list_node = json_object_get_member (graph, l->data);
          JsonArray *list;

          if (!JSON_NODE_HOLDS_ARRAY (list_node))
            goto bad_edge;
          list = json_node_get_array (list_node);
          for (guint i = 0; i < json_array_get_length (list); i++)
            {
              JsonNode *edge_node = json_array_get_element (list, i);
              JsonObject *edge;
              const char *from, *to, *description;

              if (!JSON_NODE_HOLDS_OBJECT (edge_node))
                goto bad_edge;
              edge = json_node_get_object (edge_node);
              from = get_string (edge, "from_id");
              to = get_string (edge, "to_id");
              description = get_string (edge, "description");
              if (!id_is_valid (from) || !id_is_valid (to))
                goto bad_edge;
              if (++n_edges > NODE_TOPOLOGY_MAX_EDGES)
                {
                  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                               "topology: more than %d edges", NODE_TOPOLOGY_MAX_EDGES);
                  g_list_free (names);
                  return NULL;
                }
              node_topology_add_edge (topology, from, to, description);
            }
        }
      g_list_free (names);
    }

  member = json_object_get_member (root, "active_node_id");
  if (member != NULL && JSON_NODE_HOLDS_VALUE (member) &&
      json_node_get_value_type (member) == G_TYPE_STRING &&
      id_is_valid (json_node_get_string (member)))
    topology->active_node_id = g_strdup (json_node_get_string (member));

  return g_steal_pointer (&topology);

bad_edge:
  g_list_free (names);
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "topology: \"peer_graph\" must map ids to lists of "
                       "{from_id, to_id, description}");
  return NULL;
}
