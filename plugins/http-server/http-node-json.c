/* http-node-json.c: the node's typed answers as the JSON of the wire.
 *
 * Owns the one place where the models and the topology of an ExoNodeRole
 * (GVariants of EXO_NODE_ROLE_MODELS_TYPE and EXO_NODE_ROLE_TOPOLOGY_TYPE)
 * become JSON: GET /v1/models, GET /v1/topology and the answer to
 * POST /peer/v1/topology, which peers of older builds parse, so the
 * members, their order and their number formats are those of
 * docs/cluster-protocol.md and must stay so.  (The node plugin writes the
 * same TOPOLOGY for its `topology` property, D-Bus org.exo.Node1.Topology;
 * test-cluster checks that the two agree byte for byte.)
 *
 * Rules: pure functions of their argument: no server, no main context, no
 * state; any thread.  The values come from a node plugin, trusted code,
 * but its topology holds what peers said: every key is looked up with its
 * type, and what JSON cannot hold is written as the header says.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-node-json.h"

#include <math.h>
#include <string.h>

/* The largest flops value (TFLOPS) written: json-glib 1.6 prints doubles
 * with "%.17g" and appends ".0" when there is no '.', which from 1e17 on
 * (1e+17.0), below 1e-4 (1e-05.0) and for inf is no JSON.  The node plugin
 * clamps what peers say the same way. */
#define FLOPS_MAX 1e15
#define FLOPS_MIN 1e-4

/* --- values of any integer type ------------------------------------------ */

/* @value (nullable) as an integer in 0..G_MAXINT64 (negative values as
 * 0); FALSE when it is no integer. */
static gboolean
variant_to_count (GVariant *value,
                  gint64   *out)
{
  gint64 v;

  if (value == NULL)
    return FALSE;
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    v = (gint64) MIN (g_variant_get_uint64 (value), (guint64) G_MAXINT64);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
    v = g_variant_get_int64 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    v = g_variant_get_uint32 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
    v = g_variant_get_int32 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT16))
    v = g_variant_get_uint16 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT16))
    v = g_variant_get_int16 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_BYTE))
    v = g_variant_get_byte (value);
  else
    return FALSE;
  *out = MAX (v, 0);
  return TRUE;
}

/* The integer under @key of the a{sv} @dict; FALSE when absent or no
 * integer. */
static gboolean
lookup_count (GVariant   *dict,
              const char *key,
              gint64     *out)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (dict, key, NULL);

  return variant_to_count (value, out);
}

static double
finite_or_zero (double value)
{
  return isfinite (value) ? value : 0;
}

static double
lookup_flops (GVariant   *caps,
              const char *key)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (caps, key, NULL);
  gint64 count;
  double flops = 0;

  if (value != NULL && g_variant_is_of_type (value, G_VARIANT_TYPE_DOUBLE))
    flops = g_variant_get_double (value);
  else if (variant_to_count (value, &count))
    flops = (double) count;
  if (!(flops >= FLOPS_MIN))
    return 0;
  return MIN (flops, FLOPS_MAX);
}

static void
add_member_string (JsonBuilder *builder,
                   const char  *name,
                   const char  *value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_string_value (builder, value);
}

static void
add_member_int (JsonBuilder *builder,
                const char  *name,
                gint64       value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_int_value (builder, value);
}

/* --- models ------------------------------------------------------------- */

/* One model (a{sv} with "id") as OpenAI's model object. */
static void
builder_add_model (JsonBuilder *builder,
                   GVariant    *model,
                   const char  *id)
{
  const char *owned_by;
  gint64 count;
  gboolean ready;

  json_builder_begin_object (builder);
  add_member_string (builder, "id", id);
  add_member_string (builder, "object", "model");
  if (lookup_count (model, "created", &count))
    add_member_int (builder, "created", count);
  if (g_variant_lookup (model, "owned-by", "&s", &owned_by))
    add_member_string (builder, "owned_by", owned_by);
  if (lookup_count (model, "n-layers", &count))
    add_member_int (builder, "n_layers", count);
  if (g_variant_lookup (model, "ready", "b", &ready))
    {
      json_builder_set_member_name (builder, "ready");
      json_builder_add_boolean_value (builder, ready);
    }
  json_builder_end_object (builder);
}

JsonNode *
http_node_models_to_json (GVariant *models)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  GVariantIter iter;
  GVariant *model;

  g_return_val_if_fail (models != NULL &&
                        g_variant_is_of_type (models, G_VARIANT_TYPE (EXO_NODE_ROLE_MODELS_TYPE)),
                        NULL);

  json_builder_begin_object (builder);
  add_member_string (builder, "object", "list");
  json_builder_set_member_name (builder, "data");
  json_builder_begin_array (builder);
  g_variant_iter_init (&iter, models);
  while ((model = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *id;

      if (g_variant_lookup (model, "id", "&s", &id))
        builder_add_model (builder, model, id);
      g_variant_unref (model);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

JsonNode *
http_node_model_to_json (GVariant   *models,
                         const char *id)
{
  g_autoptr(JsonBuilder) builder = NULL;
  GVariantIter iter;
  GVariant *model;

  g_return_val_if_fail (models != NULL &&
                        g_variant_is_of_type (models, G_VARIANT_TYPE (EXO_NODE_ROLE_MODELS_TYPE)),
                        NULL);
  g_return_val_if_fail (id != NULL, NULL);

  g_variant_iter_init (&iter, models);
  while ((model = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *model_id;

      if (g_variant_lookup (model, "id", "&s", &model_id) && g_str_equal (model_id, id))
        {
          builder = json_builder_new_immutable ();
          builder_add_model (builder, model, id);
          g_variant_unref (model);
          return json_builder_get_root (builder);
        }
      g_variant_unref (model);
    }
  return NULL;
}

char *
http_node_models_first_id (GVariant *models)
{
  GVariantIter iter;
  GVariant *model;
  char *id = NULL;

  g_return_val_if_fail (models != NULL &&
                        g_variant_is_of_type (models, G_VARIANT_TYPE (EXO_NODE_ROLE_MODELS_TYPE)),
                        NULL);

  g_variant_iter_init (&iter, models);
  while (id == NULL && (model = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_variant_lookup (model, "id", "s", &id);
      g_variant_unref (model);
    }
  return id;
}

/* --- topology ----------------------------------------------------------- */

typedef struct
{
  const char *id;      /* owned by the topology variant */
  GVariant   *value;   /* a{sv} caps, or (sss) edge */
} Entry;

static void
entry_clear (gpointer data)
{
  g_variant_unref (((Entry *) data)->value);
}

static int
entry_compare (gconstpointer a,
               gconstpointer b)
{
  return strcmp (((const Entry *) a)->id, ((const Entry *) b)->id);
}

static void
add_nodes (JsonBuilder *builder,
           GVariant    *topology)
{
  g_autoptr(GVariant) nodes = g_variant_lookup_value (topology, "nodes", G_VARIANT_TYPE ("a{sa{sv}}"));
  g_autoptr(GArray) sorted = g_array_new (FALSE, FALSE, sizeof (Entry));
  gsize n = nodes != NULL ? g_variant_n_children (nodes) : 0;

  g_array_set_clear_func (sorted, entry_clear);
  for (gsize i = 0; i < n; i++)
    {
      Entry entry;

      g_variant_get_child (nodes, i, "{&s@a{sv}}", &entry.id, &entry.value);
      g_array_append_val (sorted, entry);
    }
  /* g_array_sort() is stable: of a repeated id the first stays first. */
  g_array_sort (sorted, entry_compare);

  json_builder_set_member_name (builder, "nodes");
  json_builder_begin_object (builder);
  for (guint i = 0; i < sorted->len; i++)
    {
      Entry *entry = &g_array_index (sorted, Entry, i);
      const char *model = "", *chip = "";
      gint64 memory = 0;

      if (i > 0 && g_str_equal (entry->id, g_array_index (sorted, Entry, i - 1).id))
        continue;
      g_variant_lookup (entry->value, "model", "&s", &model);
      g_variant_lookup (entry->value, "chip", "&s", &chip);
      lookup_count (entry->value, "memory", &memory);

      json_builder_set_member_name (builder, entry->id);
      json_builder_begin_object (builder);
      add_member_string (builder, "model", model);
      add_member_string (builder, "chip", chip);
      add_member_int (builder, "memory", memory);
      json_builder_set_member_name (builder, "flops");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "fp32");
      json_builder_add_double_value (builder, lookup_flops (entry->value, "flops-fp32"));
      json_builder_set_member_name (builder, "fp16");
      json_builder_add_double_value (builder, lookup_flops (entry->value, "flops-fp16"));
      json_builder_set_member_name (builder, "int8");
      json_builder_add_double_value (builder, lookup_flops (entry->value, "flops-int8"));
      json_builder_end_object (builder);
      /* the engine's model digest (plugin ABI 3.3), when the node has one:
       * a peer's node keeps nodes of another digest out of its ring */
      {
        const char *digest = NULL;

        if (g_variant_lookup (entry->value, "model-digest", "&s", &digest) &&
            digest[0] != '\0' && strlen (digest) <= EXO_MODEL_DIGEST_MAX_LEN)
          add_member_string (builder, "model_digest", digest);
      }
      json_builder_end_object (builder);
    }
  json_builder_end_object (builder);
}

static void
add_peer_graph (JsonBuilder *builder,
                GVariant    *topology)
{
  g_autoptr(GVariant) edges = g_variant_lookup_value (topology, "edges", G_VARIANT_TYPE ("a(sss)"));
  g_autoptr(GArray) sorted = g_array_new (FALSE, FALSE, sizeof (Entry));
  gsize n = edges != NULL ? g_variant_n_children (edges) : 0;

  g_array_set_clear_func (sorted, entry_clear);
  for (gsize i = 0; i < n; i++)
    {
      Entry entry;

      entry.value = g_variant_get_child_value (edges, i);
      g_variant_get_child (entry.value, 0, "&s", &entry.id);
      g_array_append_val (sorted, entry);
    }
  /* Stable: within a from id, the node's order. */
  g_array_sort (sorted, entry_compare);

  json_builder_set_member_name (builder, "peer_graph");
  json_builder_begin_object (builder);
  for (guint i = 0; i < sorted->len; i++)
    {
      Entry *entry = &g_array_index (sorted, Entry, i);
      const char *from, *to, *description;

      if (i == 0 || !g_str_equal (entry->id, g_array_index (sorted, Entry, i - 1).id))
        {
          if (i > 0)
            json_builder_end_array (builder);
          json_builder_set_member_name (builder, entry->id);
          json_builder_begin_array (builder);
        }
      g_variant_get (entry->value, "(&s&s&s)", &from, &to, &description);
      json_builder_begin_object (builder);
      add_member_string (builder, "from_id", from);
      add_member_string (builder, "to_id", to);
      add_member_string (builder, "description", description);
      json_builder_end_object (builder);
    }
  if (sorted->len > 0)
    json_builder_end_array (builder);
  json_builder_end_object (builder);
}

/* The node's own view (exo_node_role_get_topology() only). */
static void
add_view (JsonBuilder *builder,
          GVariant    *topology)
{
  g_autoptr(GVariant) partitions = g_variant_lookup_value (topology, "partitions", G_VARIANT_TYPE ("a(sdd)"));
  g_autoptr(GVariant) shards = g_variant_lookup_value (topology, "shards", G_VARIANT_TYPE ("a(ssuuu)"));
  const char *text;
  gint64 count;

  if (g_variant_lookup (topology, "node-id", "&s", &text))
    add_member_string (builder, "node_id", text);
  if (lookup_count (topology, "version", &count))
    add_member_int (builder, "version", count);
  if (g_variant_lookup (topology, "model-id", "&s", &text))
    add_member_string (builder, "model_id", text);
  if (lookup_count (topology, "n-layers", &count))
    add_member_int (builder, "n_layers", count);

  if (partitions != NULL)
    {
      GVariantIter iter;
      const char *node_id;
      double start, end;

      json_builder_set_member_name (builder, "partitions");
      json_builder_begin_array (builder);
      g_variant_iter_init (&iter, partitions);
      while (g_variant_iter_next (&iter, "(&sdd)", &node_id, &start, &end))
        {
          json_builder_begin_object (builder);
          add_member_string (builder, "node_id", node_id);
          json_builder_set_member_name (builder, "start");
          json_builder_add_double_value (builder, finite_or_zero (start));
          json_builder_set_member_name (builder, "end");
          json_builder_add_double_value (builder, finite_or_zero (end));
          json_builder_end_object (builder);
        }
      json_builder_end_array (builder);
    }

  if (shards != NULL)
    {
      GVariantIter iter;
      const char *node_id, *model_id;
      guint32 start_layer, end_layer, n_layers;

      json_builder_set_member_name (builder, "shards");
      json_builder_begin_array (builder);
      g_variant_iter_init (&iter, shards);
      while (g_variant_iter_next (&iter, "(&s&suuu)", &node_id, &model_id, &start_layer,
                                  &end_layer, &n_layers))
        {
          json_builder_begin_object (builder);
          add_member_string (builder, "node_id", node_id);
          add_member_string (builder, "model_id", model_id);
          add_member_int (builder, "start_layer", start_layer);
          add_member_int (builder, "end_layer", end_layer);
          add_member_int (builder, "n_layers", n_layers);
          json_builder_end_object (builder);
        }
      json_builder_end_array (builder);
    }
}

JsonNode *
http_node_topology_to_json (GVariant *topology)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  const char *active;

  g_return_val_if_fail (topology != NULL &&
                        g_variant_is_of_type (topology, G_VARIANT_TYPE (EXO_NODE_ROLE_TOPOLOGY_TYPE)),
                        NULL);

  json_builder_begin_object (builder);
  add_nodes (builder, topology);
  add_peer_graph (builder, topology);
  json_builder_set_member_name (builder, "active_node_id");
  if (g_variant_lookup (topology, "active-node-id", "&s", &active))
    json_builder_add_string_value (builder, active);
  else
    json_builder_add_null_value (builder);
  add_view (builder, topology);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}
