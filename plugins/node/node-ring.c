/* node-ring.c: the ring, and the topology the node collects and shows.
 *
 * Owns self->topology (the last merged topology), the ring
 * (self->partitions, self->shards, self->topology_version) and what we
 * show of them (self->topology_json, self->topology_variant):
 *
 * - The ring: ring_recompute() partitions it memory-weighted over this
 *   node and its usable peers (node-partition.c, as exo), each node's
 *   memory as it said itself in the topology, else as discovery told.  It
 *   runs when a peer becomes usable or stops being usable, is failed or
 *   lost, and after each collection; the version goes up when the shards
 *   change.  A request keeps the ring it started with (copy_shards()).
 * - Collection: every topology-interval-ms (topology_tick(), which first
 *   has discovery reconciled, node-peers.c) and soon after a peer becomes
 *   ready (schedule_collect(), coalesced), collect_begin() asks each usable
 *   peer for its topology: depth-limited (topology-max-depth), with the
 *   visited list, each peer bounded by peer-timeout-ms; a peer that does
 *   not answer is left out.  The answers are merged (node-topology.c):
 *   what a node says about itself wins; peers failed meanwhile stay out.
 *   One collection of our own at a time (self->collecting).  The same code
 *   answers a peer's collect_topology (node-role.c).
 * - What we show: the merged topology with ourselves and our usable peers
 *   as they are now, the partitions and the shards, as JSON for the
 *   `topology` property (D-Bus org.exo.Node1.Topology;
 *   build_topology_json()) and as the GVariant of ExoNodeRole.get_topology
 *   (build_topology_variant(), which the http-server writes as the same
 *   JSON); publish_topology() keeps both and announces a change with
 *   notify::topology and ::topology-changed.  A collection that answers a
 *   peer returns the GVariant of what it merged; a peer's answer arrives
 *   as JSON (ExoPeerHandle) and is parsed by node-topology.c.
 *
 * node-topology.c and node-partition.c stay pure data code (GLib and
 * json-glib, no node, no main context): the fuzzers and
 * test-node-partition build them alone.
 *
 * Rules: the node's main context only; no threads, no locks.  A collection
 * of our own holds a reference on the node and the generation it started
 * in, and replaces the topology only if `self->running && generation ==
 * self->generation` when its last answer arrives; one that answers a peer
 * returns its task whatever became of the node.  publish_topology() emits
 * synchronously, after the ring, topology_json and topology_variant are
 * set: handlers may read the node.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "node-private.h"

/* --- the ring and the published topology ------------------------------- */

/* The memory of @node_id: what it said about itself in the topology, else
 * what discovery told. */
static guint64
node_memory (ExoClusterNode *self,
             const char     *node_id)
{
  NodeCaps *caps;
  Peer *peer;

  if (g_strcmp0 (node_id, self->node_id) == 0)
    return self->caps != NULL ? self->caps->memory : 0;
  if (self->topology != NULL && (caps = g_hash_table_lookup (self->topology->nodes, node_id)) != NULL)
    return caps->memory;
  peer = g_hash_table_lookup (self->peers, node_id);
  return peer != NULL && peer->caps != NULL ? peer->caps->memory : 0;
}

static const NodeCaps *
peer_best_caps (ExoClusterNode *self,
                Peer           *peer)
{
  NodeCaps *caps = self->topology != NULL ? g_hash_table_lookup (self->topology->nodes, peer->node_id) : NULL;

  return caps != NULL ? caps : peer->caps;
}

/* A peer whose engine computes another model — its digest, as it said in
 * the topology or else as discovery told, differs from ours — stays out
 * of our ring (its layers would refuse our activations, or take them and
 * answer other tokens); an unknown digest (an engine without one, a node
 * built before plugin ABI 3.3) is taken as the same.  Logged once per
 * peer and digest. */
static gboolean
same_model (ExoClusterNode *self,
            Peer           *peer)
{
  const NodeCaps *caps = peer_best_caps (self, peer);
  const char *ours = self->caps != NULL ? self->caps->digest : NULL;
  const char *theirs = caps != NULL ? caps->digest : NULL;

  if (ours == NULL || theirs == NULL || g_str_equal (ours, theirs))
    return TRUE;
  if (g_strcmp0 (peer->warned_digest, theirs) != 0)
    {
      log_event (self, G_LOG_LEVEL_WARNING,
                 "peer %s runs another checkpoint of model %s (digest %s, ours %s): left out "
                 "of the ring; give every node the same model file",
                 peer->node_id, self->model_id, theirs, ours);
      g_free (peer->warned_digest);
      peer->warned_digest = g_strdup (theirs);
    }
  return FALSE;
}

static gboolean
shards_equal (GPtrArray *a,
              GPtrArray *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  if (a->len != b->len)
    return FALSE;
  for (guint i = 0; i < a->len; i++)
    {
      NodeShardAssignment *x = g_ptr_array_index (a, i);
      NodeShardAssignment *y = g_ptr_array_index (b, i);

      if (g_strcmp0 (x->node_id, y->node_id) != 0 || x->start_layer != y->start_layer ||
          x->end_layer != y->end_layer || x->n_layers != y->n_layers)
        return FALSE;
    }
  return TRUE;
}

GPtrArray *
copy_shards (GPtrArray *shards)
{
  GPtrArray *copy = g_ptr_array_new_with_free_func ((GDestroyNotify) node_shard_assignment_free);

  for (guint i = 0; shards != NULL && i < shards->len; i++)
    {
      NodeShardAssignment *s = g_ptr_array_index (shards, i);
      NodeShardAssignment *c = g_new0 (NodeShardAssignment, 1);

      *c = *s;
      c->node_id = g_strdup (s->node_id);
      g_ptr_array_add (copy, c);
    }
  return copy;
}

/* The topology as we show it: the last merged one, with ourselves and our
 * usable peers as they are now. */
static NodeTopology *
current_view (ExoClusterNode *self)
{
  NodeTopology *view = self->topology != NULL ? node_topology_copy (self->topology)
                                              : node_topology_new ();
  GHashTableIter iter;
  gpointer value;

  if (self->node_id != NULL && self->caps != NULL)
    node_topology_update_node (view, self->node_id, self->caps);
  if (self->peers != NULL)
    {
      g_hash_table_iter_init (&iter, self->peers);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          Peer *peer = value;

          if (!peer_is_usable (peer))
            continue;
          if (!g_hash_table_contains (view->nodes, peer->node_id))
            node_topology_update_node (view, peer->node_id, peer_best_caps (self, peer));
          node_topology_add_edge (view, self->node_id, peer->node_id, peer->address);
        }
    }
  return view;
}

char *
build_topology_json (ExoClusterNode *self)
{
  g_autoptr(NodeTopology) view = current_view (self);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  node_topology_build_json (view, builder);
  json_builder_set_member_name (builder, "node_id");
  if (self->node_id != NULL)
    json_builder_add_string_value (builder, self->node_id);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "version");
  json_builder_add_int_value (builder, (gint64) self->topology_version);
  json_builder_set_member_name (builder, "model_id");
  json_builder_add_string_value (builder, self->model_id);
  json_builder_set_member_name (builder, "n_layers");
  json_builder_add_int_value (builder, self->n_layers);

  json_builder_set_member_name (builder, "partitions");
  json_builder_begin_array (builder);
  for (guint i = 0; self->partitions != NULL && i < self->partitions->len; i++)
    {
      NodePartition *p = g_ptr_array_index (self->partitions, i);

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "node_id");
      json_builder_add_string_value (builder, p->node_id);
      json_builder_set_member_name (builder, "start");
      json_builder_add_double_value (builder, p->start);
      json_builder_set_member_name (builder, "end");
      json_builder_add_double_value (builder, p->end);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);

  json_builder_set_member_name (builder, "shards");
  json_builder_begin_array (builder);
  for (guint i = 0; self->shards != NULL && i < self->shards->len; i++)
    {
      NodeShardAssignment *s = g_ptr_array_index (self->shards, i);

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "node_id");
      json_builder_add_string_value (builder, s->node_id);
      json_builder_set_member_name (builder, "model_id");
      json_builder_add_string_value (builder, self->model_id);
      json_builder_set_member_name (builder, "start_layer");
      json_builder_add_int_value (builder, s->start_layer);
      json_builder_set_member_name (builder, "end_layer");
      json_builder_add_int_value (builder, s->end_layer);
      json_builder_set_member_name (builder, "n_layers");
      json_builder_add_int_value (builder, s->n_layers);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  /* json-glib leaves U+001F unescaped (a model name from a peer may hold it). */
  return exo_json_fix_generated (json_generator_to_data (generator, NULL), NULL);
}

/* The same as build_topology_json(), typed: EXO_NODE_ROLE_TOPOLOGY_TYPE
 * with the node's own view (not floating). */
static GVariant *
build_topology_variant (ExoClusterNode *self)
{
  g_autoptr(NodeTopology) view = current_view (self);
  GVariantBuilder dict, partitions, shards;

  g_variant_builder_init (&dict, G_VARIANT_TYPE_VARDICT);
  node_topology_build_variant (view, &dict);
  if (self->node_id != NULL)
    g_variant_builder_add (&dict, "{sv}", "node-id", g_variant_new_string (self->node_id));
  g_variant_builder_add (&dict, "{sv}", "version", g_variant_new_uint64 (self->topology_version));
  g_variant_builder_add (&dict, "{sv}", "model-id", g_variant_new_string (self->model_id));
  g_variant_builder_add (&dict, "{sv}", "n-layers", g_variant_new_uint32 (self->n_layers));

  g_variant_builder_init (&partitions, G_VARIANT_TYPE ("a(sdd)"));
  for (guint i = 0; self->partitions != NULL && i < self->partitions->len; i++)
    {
      NodePartition *p = g_ptr_array_index (self->partitions, i);

      g_variant_builder_add (&partitions, "(sdd)", p->node_id, p->start, p->end);
    }
  g_variant_builder_add (&dict, "{sv}", "partitions", g_variant_builder_end (&partitions));

  g_variant_builder_init (&shards, G_VARIANT_TYPE ("a(ssuuu)"));
  for (guint i = 0; self->shards != NULL && i < self->shards->len; i++)
    {
      NodeShardAssignment *sh = g_ptr_array_index (self->shards, i);

      g_variant_builder_add (&shards, "(ssuuu)", sh->node_id, self->model_id,
                             sh->start_layer, sh->end_layer, sh->n_layers);
    }
  g_variant_builder_add (&dict, "{sv}", "shards", g_variant_builder_end (&shards));
  return g_variant_ref_sink (g_variant_builder_end (&dict));
}

static void
publish_topology (ExoClusterNode *self)
{
  g_autofree char *json = build_topology_json (self);

  if (g_strcmp0 (json, self->topology_json) == 0)
    return;
  g_free (self->topology_json);
  self->topology_json = g_steal_pointer (&json);
  g_clear_pointer (&self->topology_variant, g_variant_unref);
  self->topology_variant = build_topology_variant (self);
  emit_topology_changed (self);
}

char *
dup_topology_json (ExoClusterNode *self)
{
  if (self->topology_json == NULL)
    return build_topology_json (self);
  return g_strdup (self->topology_json);
}

GVariant *
dup_topology_variant (ExoClusterNode *self)
{
  if (self->topology_variant == NULL)
    return build_topology_variant (self);
  return g_variant_ref (self->topology_variant);
}

/* Partitions the ring over this node and its usable peers. */
void
ring_recompute (ExoClusterNode *self,
                const char     *why)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new ();
  g_autofree NodePartitionInput *inputs = NULL;
  g_autoptr(GPtrArray) partitions = NULL;
  g_autoptr(GPtrArray) shards = NULL;
  GHashTableIter iter;
  gpointer value;

  if (!self->running || self->node_id == NULL)
    return;

  g_ptr_array_add (ids, self->node_id);
  self->peers_other_model = 0;
  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (peer_is_usable (value))
      {
        if (same_model (self, value))
          g_ptr_array_add (ids, ((Peer *) value)->node_id);
        else
          self->peers_other_model++;
      }

  inputs = g_new0 (NodePartitionInput, ids->len);
  for (guint i = 0; i < ids->len; i++)
    {
      inputs[i].node_id = g_ptr_array_index (ids, i);
      inputs[i].memory = node_memory (self, inputs[i].node_id);
    }
  partitions = node_partition_ring_memory_weighted (inputs, ids->len);
  shards = node_partition_map_to_shards (partitions, self->n_layers);

  g_clear_pointer (&self->partitions, g_ptr_array_unref);
  self->partitions = g_steal_pointer (&partitions);
  if (!shards_equal (self->shards, shards))
    {
      g_autofree char *text = node_partition_shards_to_string (shards);

      g_clear_pointer (&self->shards, g_ptr_array_unref);
      self->shards = g_steal_pointer (&shards);
      self->topology_version++;
      log_event (self, G_LOG_LEVEL_MESSAGE, "ring version %" G_GUINT64_FORMAT " (%s): %s",
                 self->topology_version, why, text);
    }
  publish_topology (self);
}

/* The shard of @node_id in @ring, or NULL. */
NodeShardAssignment *
ring_find (GPtrArray  *ring,
           const char *node_id)
{
  gint i = node_partition_find_shard (ring, node_id);

  return i >= 0 ? g_ptr_array_index (ring, i) : NULL;
}

/* The ExoShard of @s, a shard of our model. */
ExoShard *
shard_for (ExoClusterNode            *self,
           const NodeShardAssignment *s)
{
  return exo_shard_new (self->model_id, s->start_layer, s->end_layer, s->n_layers);
}

/* --- topology collection --------------------------------------------- */

typedef struct {
  ExoClusterNode *self;
  GTask          *task;      /* answering a peer; NULL for our own */
  NodeTopology   *result;
  GPtrArray      *visited;   /* char*, NULL-terminated, passed on */
  guint           pending;
  guint           generation;
} Collect;

typedef struct {
  Collect  *collect;
  char     *peer_id;
  Deadline *deadline;
} CollectCall;

static void collect_run (ExoClusterNode *self);

static void
collect_free (Collect *c)
{
  g_clear_object (&c->task);
  node_topology_free (c->result);
  g_ptr_array_unref (c->visited);
  g_object_unref (c->self);
  g_free (c);
}

static void
collect_done (Collect *c)
{
  ExoClusterNode *self = c->self;

  if (--c->pending > 0)
    return;

  if (c->task != NULL)
    {
      g_task_return_pointer (c->task, node_topology_to_variant (c->result),
                             (GDestroyNotify) g_variant_unref);
    }
  else if (self->running && c->generation == self->generation)
    {
      GHashTableIter iter;
      gpointer key;

      self->collecting = FALSE;
      /* Peers failed while we asked stay out. */
      g_hash_table_iter_init (&iter, self->failed);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        node_topology_remove_node (c->result, key);
      node_topology_free (self->topology);
      self->topology = g_steal_pointer (&c->result);
      ring_recompute (self, "topology");
    }
  collect_free (c);
}

static void
collect_call_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  CollectCall *call = user_data;
  Collect *c = call->collect;
  ExoClusterNode *self = c->self;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  g_autofree char *what = NULL;

  json = exo_peer_handle_collect_topology_finish (EXO_PEER_HANDLE (source), result, &error);
  what = g_strdup_printf ("topology of node %s", call->peer_id);
  deadline_fix_error (call->deadline, &error, what);
  if (json != NULL)
    {
      g_autoptr(NodeTopology) other = node_topology_from_json (json, -1, &error);

      if (other != NULL)
        node_topology_merge (c->result, call->peer_id, other, self->failed);
    }
  if (error != NULL && !is_cancelled (error))
    self->topology_errors++;

  deadline_free (call->deadline);
  g_free (call->peer_id);
  g_free (call);
  collect_done (c);
}

/* exo's Node.collect_topology: ourselves and our usable peers; each peer
 * not already visited is asked (max_depth - 1), bounded by @timeout_ms. */
void
collect_begin (ExoClusterNode     *self,
               const char * const *visited,
               guint               max_depth,
               guint               timeout_ms,
               GTask              *task)
{
  Collect *c = g_new0 (Collect, 1);
  g_autoptr(GHashTable) prev = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) usable = g_ptr_array_new_with_free_func ((GDestroyNotify) peer_unref);
  GHashTableIter iter;
  gpointer value;

  c->self = g_object_ref (self);
  c->task = task != NULL ? g_object_ref (task) : NULL;
  c->result = node_topology_new ();
  c->visited = g_ptr_array_new_with_free_func (g_free);
  c->generation = self->generation;
  c->pending = 1;

  node_topology_update_node (c->result, self->node_id, self->caps);

  for (guint i = 0; visited != NULL && visited[i] != NULL && i < NODE_TOPOLOGY_MAX_NODES; i++)
    if (!g_hash_table_contains (prev, visited[i]))
      {
        g_hash_table_add (prev, (gpointer) visited[i]);
        g_ptr_array_add (c->visited, g_strdup (visited[i]));
      }
  if (!g_hash_table_contains (prev, self->node_id))
    g_ptr_array_add (c->visited, g_strdup (self->node_id));

  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (peer_is_usable (value))
      {
        Peer *peer = value;

        g_ptr_array_add (usable, peer_ref (peer));
        if (!g_hash_table_contains (prev, peer->node_id))
          g_ptr_array_add (c->visited, g_strdup (peer->node_id));
      }
  g_ptr_array_add (c->visited, NULL);

  for (guint i = 0; i < usable->len; i++)
    {
      Peer *peer = g_ptr_array_index (usable, i);
      CollectCall *call;

      node_topology_update_node (c->result, peer->node_id, peer_best_caps (self, peer));
      node_topology_add_edge (c->result, self->node_id, peer->node_id, peer->address);
      if (g_hash_table_contains (prev, peer->node_id) || max_depth == 0)
        continue;

      call = g_new0 (CollectCall, 1);
      call->collect = c;
      call->peer_id = g_strdup (peer->node_id);
      call->deadline = deadline_new (self->cancellable, timeout_ms);
      c->pending++;
      exo_peer_handle_collect_topology_async (EXO_PEER_HANDLE (peer->handle),
                                              (const char * const *) c->visited->pdata,
                                              max_depth - 1, call->deadline->cancellable,
                                              collect_call_cb, call);
    }
  collect_done (c);
}

static void
collect_run (ExoClusterNode *self)
{
  if (!self->running || self->collecting)
    return;
  self->collecting = TRUE;
  collect_begin (self, NULL, self->topology_max_depth, self->peer_timeout_ms, NULL);
}

static gboolean
collect_soon_cb (gpointer user_data)
{
  ExoClusterNode *self = user_data;

  self->collect_soon = 0;
  collect_run (self);
  return G_SOURCE_REMOVE;
}

void
schedule_collect (ExoClusterNode *self,
                  guint           delay_ms)
{
  if (!self->running || self->collect_soon != 0)
    return;
  /* Coalesce the bursts of peers becoming ready. */
  self->collect_soon = g_timeout_add (MAX (delay_ms, 20u), collect_soon_cb, self);
}

gboolean
topology_tick (gpointer user_data)
{
  ExoClusterNode *self = user_data;

  reconcile_discovery (self);
  collect_run (self);
  return G_SOURCE_CONTINUE;
}
