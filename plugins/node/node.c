/* node.c: the `node` plugin, an ExoNodeRole (exo's `Node`).
 *
 * - Peers: every peer discovery finds becomes a peer handle resource
 *   (`ExoHttpPeer`, id `peer-<node id>`) in the group the node belongs to.
 *   The node probes each handle's health every peer-health-interval-ms
 *   (bounded by peer-timeout-ms); after peer-failure-threshold failures in a
 *   row — at once on "connection refused" — the peer is failed: removed from
 *   the group, left out of the ring, and every request that needed it fails.
 *   A failed peer that discovery still lists is probed again every
 *   topology-interval-ms and rejoins when it answers.
 * - Topology: every topology-interval-ms the node asks each usable peer for
 *   its topology (depth-limited, with the visited list, each peer bounded by
 *   peer-timeout-ms; one that does not answer is left out) and merges the
 *   answers.  What a node says about itself wins.
 * - Partitioning: ring memory-weighted over this node and its usable peers,
 *   as exo (node-partition.c).
 * - Requests go through the ring as in exo: the first shard encodes and runs
 *   its layers, each node runs its layers and forwards the tensor, the last
 *   samples, broadcasts the tokens so far to every node, and feeds the token
 *   back to the first shard until EOS or max-tokens.  The API node (where
 *   chat_async was called) streams the tokens and fails the request with a
 *   clear error when a node of its ring is lost, when sending to the next
 *   hop fails, or after request-timeout-ms without progress.
 * - Generation parameters (ExoGenerationParams: max_tokens, temperature,
 *   top_p, seed) travel with the request's prompt and tensors.  A node that
 *   keeps a record of the request (the API node; the last shard from the
 *   first token on) keeps the first parameters it sees for it and sends
 *   those on; the others pass on what they got.  The last shard samples
 *   with them and stops at max_tokens or the node's max-tokens, whichever
 *   is smaller.  A prompt or tensor without them (an older peer) gets the
 *   defaults.
 * - Cancellation: a request the API node abandons (its client went away,
 *   or it failed) is remembered as cancelled and every other node of its
 *   ring is told (peer RPC /peer/v1/cancel); each node drops the work of a
 *   cancelled request that reaches it (a prompt, a tensor, an inference
 *   that completes), so the ring stops within about one token.  The last
 *   MAX_REQUESTS cancelled ids are remembered.
 *
 * This file owns the ExoClusterNode object: its settings (properties),
 * its life as an ExoResource (initialize: the engine, server and discovery
 * it uses, its node id and capabilities — the engine's model digest and
 * layer count, taken again when the engine comes back from a restart —
 * the tables and timers; cleanup; health), the topology property and
 * ::topology-changed, the
 * helpers every file uses (log_event(), node_id_is_valid(), Deadline), and
 * the plugin's entry point.  The other files of the node:
 *
 *   node-peers.c     peers and their health, in step with discovery:
 *                    peer-found/-lost, peer handles in the group, health
 *                    checks, failure thresholds, the reaper, probes
 *   node-ring.c      the ring (partitioning), collecting the topology from
 *                    peers and merging it, the topology we show
 *   node-requests.c  the records of requests and their callers: results,
 *                    cancellation, failures, timeouts
 *   node-work.c      the ring at work: prompts, tensors, sampling,
 *                    forwarding, broadcasting results
 *   node-role.c      ExoNodeRole: the vfuncs the http-server calls
 *   node-metrics.c   the metrics: their values and names in /metrics
 *   node-private.h   what these seven share
 *
 * and under them the pure data code, which knows nothing of the node:
 * node-topology.c (the topology, its JSON, merging) and node-partition.c
 * (exo's ring partitioning and shards).
 *
 * Rules, for every file of the node:
 *
 * - One main context, no threads, no locks.  The node lives in the
 *   daemon's main context, which is both the global default context and
 *   the thread-default one of the main thread: most timers and idles are
 *   added with g_timeout_add() and g_idle_add() (the global default), the
 *   request timeouts (node-requests.c) are attached to the thread-default
 *   context, and its tasks and the calls it makes (peer handles, the
 *   engine, the group) complete in the thread-default context.  So the
 *   node must run in a thread whose thread-default context is the global
 *   default (exo-node's main thread; an embedding program's main thread).
 * - Generations.  self->generation is bumped by every initialize and every
 *   cleanup.  An asynchronous call that may complete after a cleanup
 *   (HealthCall, Probe, PendingAdd: node-peers.c; Collect: node-ring.c;
 *   Work, Hop: node-work.c) holds a reference on the node and records
 *   the generation it starts in.  Its callback always frees what it holds,
 *   but touches the node's running state only if `self->running &&
 *   generation == self->generation`: a call from an earlier run, even one
 *   before a restart, is stale and ignored.  A callback that holds a Peer
 *   also checks `peer->node == self` (NULL once the peer is removed).  The
 *   node's own timers and idles hold no reference: cleanup and finalize
 *   remove them (drop_running_state()); a request's timeout and idle go
 *   with its record.  Cleanup cancels self->cancellable, answers every
 *   caller, removes every peer, and completes when the peer handles are
 *   out of the group (pending_removals).
 * - Re-entrancy.  What the node calls out may call back into it: its
 *   callers' callbacks (a GTask returned in a later iteration than the one
 *   that made it runs its callback at once; chat's token callback), and the
 *   handlers of notify::topology and ::topology-changed.  The signals the
 *   node handles (discovery's peer-found and peer-lost, a peer handle's
 *   state-changed, a caller's cancellable) reach it within another
 *   object's emission: peers are failed by the reaper (an idle), cancelled
 *   requests from an idle.  Records leave their table before their caller
 *   is answered, and loops collect what they act on before acting.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "node-private.h"

#include "exo-plugin-util.h"

enum {
  PROP_0,
  PROP_ENGINE,
  PROP_SERVER,
  PROP_DISCOVERY,
  PROP_NODE_ID,
  PROP_MODEL_ID,
  PROP_N_LAYERS,
  PROP_TOPOLOGY_INTERVAL_MS,
  PROP_TOPOLOGY_MAX_DEPTH,
  PROP_PEER_TIMEOUT_MS,
  PROP_REQUEST_TIMEOUT_MS,
  PROP_MAX_TOKENS,
  PROP_PEER_HEALTH_INTERVAL_MS,
  PROP_PEER_FAILURE_THRESHOLD,
  PROP_DEVICE_MEMORY_MIB,
  PROP_TOPOLOGY,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_TOPOLOGY_CHANGED,
  N_SIGNALS,
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE_WITH_CODE (ExoClusterNode, exo_cluster_node, EXO_TYPE_MANAGED_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_NODE_ROLE,
                                                      exo_cluster_node_role_init))

/* --- helpers of every file ---------------------------------------------- */

/* Things an operator must see (peers found, lost, failed; the ring). */
void
log_event (ExoClusterNode *self,
           GLogLevelFlags  level,
           const char     *format,
           ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_log_structured (LOG_DOMAIN, level,
                    "EXO_RESOURCE_ID", self_id (self),
                    "MESSAGE", "%s: %s", self_id (self), message);
}

gboolean
node_id_is_valid (const char *id)
{
  gsize len;

  if (id == NULL || (len = strlen (id)) == 0 || len > 128)
    return FALSE;
  for (const char *p = id; *p != '\0'; p++)
    if (*p <= 0x20 || *p == 0x7f || *p == '/' || (guchar) *p >= 0x80)
      return FALSE;
  return TRUE;
}

/* Deadline: a GCancellable that fires after @timeout_ms or when @parent
 * fires. */
static void
deadline_parent_cancelled (GCancellable *parent,
                           gpointer      user_data)
{
  g_cancellable_cancel (G_CANCELLABLE (user_data));
}

static gboolean
deadline_fire (gpointer user_data)
{
  Deadline *d = user_data;

  d->timer = 0;
  d->timed_out = TRUE;
  g_cancellable_cancel (d->cancellable);
  return G_SOURCE_REMOVE;
}

Deadline *
deadline_new (GCancellable *parent,
              guint         timeout_ms)
{
  Deadline *d = g_new0 (Deadline, 1);

  d->cancellable = g_cancellable_new ();
  d->timeout_ms = timeout_ms;
  if (parent != NULL)
    {
      d->parent = g_object_ref (parent);
      d->parent_handler = g_cancellable_connect (parent, G_CALLBACK (deadline_parent_cancelled),
                                                 g_object_ref (d->cancellable), g_object_unref);
    }
  if (timeout_ms > 0)
    d->timer = g_timeout_add (timeout_ms, deadline_fire, d);
  return d;
}

void
deadline_free (Deadline *d)
{
  if (d == NULL)
    return;
  g_clear_handle_id (&d->timer, g_source_remove);
  if (d->parent != NULL)
    {
      g_cancellable_disconnect (d->parent, d->parent_handler);
      g_object_unref (d->parent);
    }
  g_object_unref (d->cancellable);
  g_free (d);
}

/* Replaces a cancellation caused by the deadline by a timeout error. */
void
deadline_fix_error (Deadline    *d,
                    GError     **error,
                    const char  *what)
{
  if (d->timed_out && *error != NULL && is_cancelled (*error))
    {
      g_clear_error (error);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "%s timed out after %u ms",
                   what, d->timeout_ms);
    }
}

void
emit_topology_changed (ExoClusterNode *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TOPOLOGY]);
  g_signal_emit (self, signals[SIGNAL_TOPOLOGY_CHANGED], 0, self->topology_json);
}

/* --- ExoResource --------------------------------------------------------- */

/* The group that has us as a member (the daemon's root group). */
static ExoResourceGroup *
find_group (ExoClusterNode *self)
{
  g_autoptr(GPtrArray) all = exo_registry_list (exo_registry_get_default ());
  ExoResourceGroup *found = NULL;

  for (guint i = 0; i < all->len; i++)
    {
      ExoResource *r = g_ptr_array_index (all, i);

      if (EXO_IS_RESOURCE_GROUP (r) &&
          exo_resource_group_lookup (EXO_RESOURCE_GROUP (r), self_id (self)) == EXO_RESOURCE (self))
        {
          found = EXO_RESOURCE_GROUP (g_object_ref (r));
          break;
        }
    }
  return found;
}

/* A resource the node uses: from its own group first (several nodes may
 * share a process), else from the registry. */
static ExoResource *
find_resource (ExoClusterNode *self,
               const char     *id)
{
  ExoResource *r = NULL;

  if (self->group != NULL)
    r = exo_resource_group_lookup (self->group, id);
  if (r != NULL)
    return g_object_ref (r);
  return exo_registry_lookup (exo_registry_get_default (), id);
}

static gboolean
find_role (ExoClusterNode  *self,
           const char      *setting,
           const char      *id,
           GType            iface,
           const char      *what,
           gboolean         required,
           ExoResource    **out,
           GError         **error)
{
  g_autoptr(ExoResource) r = NULL;

  *out = NULL;
  if (id == NULL || *id == '\0')
    {
      if (!required)
        return TRUE;
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                   "node '%s': setting '%s' is empty; it must name the %s",
                   self_id (self), setting, what);
      return FALSE;
    }
  r = find_resource (self, id);
  if (r == NULL)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                   "node '%s': no resource '%s' (setting '%s') to use as the %s",
                   self_id (self), id, setting, what);
      return FALSE;
    }
  if (!g_type_is_a (G_OBJECT_TYPE (r), iface))
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                   "node '%s': resource '%s' (setting '%s') is a '%s', not an %s",
                   self_id (self), id, setting, exo_resource_get_resource_type (r),
                   g_type_name (iface));
      return FALSE;
    }
  *out = g_steal_pointer (&r);
  return TRUE;
}

static gboolean
resolve_node_id (ExoClusterNode  *self,
                 GError         **error)
{
  g_autofree char *discovery_id = NULL;
  g_autofree char *id = NULL;

  if (self->discovery != NULL)
    {
      GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (self->discovery),
                                                        "node-id");

      if (pspec != NULL && G_PARAM_SPEC_VALUE_TYPE (pspec) == G_TYPE_STRING &&
          (pspec->flags & G_PARAM_READABLE))
        g_object_get (self->discovery, "node-id", &discovery_id, NULL);
      if (discovery_id != NULL && *discovery_id == '\0')
        g_clear_pointer (&discovery_id, g_free);
    }

  if (self->node_id_setting != NULL && *self->node_id_setting != '\0')
    {
      if (discovery_id != NULL && g_strcmp0 (discovery_id, self->node_id_setting) != 0)
        {
          g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                       "node '%s': node-id '%s' differs from the node id '%s' of discovery '%s'; "
                       "peers would not know us: set the same id on both (or on neither)",
                       self_id (self), self->node_id_setting, discovery_id,
                       exo_resource_get_id (EXO_RESOURCE (self->discovery)));
          return FALSE;
        }
      id = g_strdup (self->node_id_setting);
    }
  else if (discovery_id != NULL)
    id = g_steal_pointer (&discovery_id);
  else
    id = g_strdup (exo_node_id_default ());

  if (!node_id_is_valid (id))
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "node '%s': '%s' is not a valid node id (1-128 printable ASCII "
                   "characters, no spaces or '/')", self_id (self), id);
      return FALSE;
    }
  if (g_strcmp0 (id, self->node_id) != 0)
    {
      g_free (self->node_id);
      self->node_id = g_steal_pointer (&id);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NODE_ID]);
    }
  return TRUE;
}

/* An engine that knows its model's layer count (the llama engine's
 * read-only `n-layers`) rules over our own `n-layers` setting.  TRUE when
 * that changed ours. */
static gboolean
take_engine_layers (ExoClusterNode *self)
{
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (self->engine), "n-layers");
  guint engine_layers = 0;

  if (pspec == NULL || G_PARAM_SPEC_VALUE_TYPE (pspec) != G_TYPE_UINT ||
      (pspec->flags & G_PARAM_READABLE) == 0)
    return FALSE;
  g_object_get (self->engine, "n-layers", &engine_layers, NULL);
  if (engine_layers == 0 || engine_layers == self->n_layers)
    return FALSE;
  log_event (self, G_LOG_LEVEL_INFO, "the engine's model has %u layers (was %u)",
             engine_layers, self->n_layers);
  self->n_layers = engine_layers;
  return TRUE;
}

/* The engine came back (restarted, perhaps on another checkpoint): its
 * model digest and layer count are taken again, and a change re-partitions
 * the ring and tells the peers (the next topology they collect).  From an
 * idle: not from inside the engine's notify emission. */
static gboolean
engine_back_idle (gpointer data)
{
  ExoClusterNode *self = data;
  g_autofree char *digest = NULL;
  gboolean changed;

  self->engine_idle = 0;
  if (!self->running || self->engine == NULL || self->caps == NULL ||
      !exo_resource_is_usable (EXO_RESOURCE (self->engine)))
    return G_SOURCE_REMOVE;
  digest = exo_inference_engine_get_model_digest (self->engine);
  changed = take_engine_layers (self);
  if (g_strcmp0 (digest, self->caps->digest) != 0)
    {
      log_event (self, G_LOG_LEVEL_MESSAGE, "the engine's model changed (digest %s, was %s)",
                 digest != NULL ? digest : "none",
                 self->caps->digest != NULL ? self->caps->digest : "none");
      g_free (self->caps->digest);
      self->caps->digest = g_steal_pointer (&digest);
      changed = TRUE;
    }
  if (changed)
    {
      ring_recompute (self, "the engine's model changed");
      schedule_collect (self, 0);
    }
  return G_SOURCE_REMOVE;
}

static void
engine_state_cb (GObject        *engine,
                 GParamSpec     *pspec,
                 ExoClusterNode *self)
{
  if (self->engine_idle == 0 && exo_resource_is_usable (EXO_RESOURCE (engine)))
    self->engine_idle = g_idle_add (engine_back_idle, self);
}

static NodeCaps *
own_caps (ExoClusterNode *self)
{
  g_autoptr(GVariant) host = exo_device_capabilities_probe ();
  const char *model = "Linux", *chip = "unknown";
  guint64 memory = 0;
  NodeCaps *caps;

  g_variant_lookup (host, "model", "&s", &model);
  g_variant_lookup (host, "chip", "&s", &chip);
  g_variant_lookup (host, "memory", "t", &memory);
  caps = node_caps_new (model, chip, self->device_memory_mib > 0 ? self->device_memory_mib : memory);
  /* what our engine computes: peers of another digest stay out of our ring */
  if (self->engine != NULL)
    caps->digest = exo_inference_engine_get_model_digest (self->engine);
  return caps;
}

static void
drop_running_state (ExoClusterNode *self)
{
  if (self->discovery != NULL)
    {
      g_clear_signal_handler (&self->found_handler, self->discovery);
      g_clear_signal_handler (&self->lost_handler, self->discovery);
    }
  g_clear_handle_id (&self->topology_timer, g_source_remove);
  g_clear_handle_id (&self->health_timer, g_source_remove);
  g_clear_handle_id (&self->collect_soon, g_source_remove);
  g_clear_handle_id (&self->reap_idle, g_source_remove);
  g_clear_handle_id (&self->engine_idle, g_source_remove);
  self->collecting = FALSE;
  if (self->engine != NULL)
    g_clear_signal_handler (&self->engine_handler, self->engine);
  g_clear_object (&self->engine);
  g_clear_object (&self->server);
  g_clear_object (&self->discovery);
  g_clear_object (&self->group);
  g_clear_pointer (&self->caps, node_caps_free);
  g_clear_pointer (&self->failed, g_hash_table_unref);
  g_clear_pointer (&self->topology, node_topology_free);
  g_clear_pointer (&self->partitions, g_ptr_array_unref);
  g_clear_pointer (&self->shards, g_ptr_array_unref);
  g_clear_error (&self->peer_type_error);
  self->warned_no_peer_type = FALSE;
}

static void
exo_cluster_node_do_initialize (ExoResource *resource,
                                GTask       *task)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (resource);
  g_autoptr(ExoResource) engine = NULL;
  g_autoptr(ExoResource) server = NULL;
  g_autoptr(ExoResource) discovery = NULL;
  GError *error = NULL;

  self->generation++;
  self->group = find_group (self);

  if (!find_role (self, "engine", self->engine_id, EXO_TYPE_INFERENCE_ENGINE,
                  "inference engine", TRUE, &engine, &error) ||
      !find_role (self, "server", self->server_id, EXO_TYPE_SERVER, "server", FALSE,
                  &server, &error) ||
      !find_role (self, "discovery", self->discovery_id, EXO_TYPE_DISCOVERY, "discovery",
                  FALSE, &discovery, &error))
    {
      g_clear_object (&self->group);
      g_task_return_error (task, error);
      return;
    }
  self->engine = EXO_INFERENCE_ENGINE (g_steal_pointer (&engine));
  take_engine_layers (self);
  self->server = g_steal_pointer (&server);
  self->discovery = discovery != NULL ? EXO_DISCOVERY (g_steal_pointer (&discovery)) : NULL;

  if (!resolve_node_id (self, &error))
    {
      drop_running_state (self);
      g_task_return_error (task, error);
      return;
    }
  /* Found peers need handles: without a plugin that makes them the node
   * would never reach its peers, so it says so now. */
  if (self->discovery != NULL && node_get_peer_type (self, &error) == 0)
    {
      drop_running_state (self);
      g_task_return_error (task, error);
      return;
    }

  self->caps = own_caps (self);
  self->engine_handler = g_signal_connect (self->engine, "notify::state",
                                           G_CALLBACK (engine_state_cb), self);
  self->cancellable = g_cancellable_new ();
  self->peers = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) peer_unref);
  self->failed = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify) failed_peer_free);
  self->requests = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) request_free);
  self->origins = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, origin_free);
  self->topology = node_topology_new ();
  self->serving_since = g_get_real_time () / G_USEC_PER_SEC;
  self->running = TRUE;

  if (self->discovery != NULL)
    {
      self->found_handler = g_signal_connect (self->discovery, "peer-found",
                                              G_CALLBACK (discovery_peer_found), self);
      self->lost_handler = g_signal_connect (self->discovery, "peer-lost",
                                             G_CALLBACK (discovery_peer_lost), self);
      reconcile_discovery (self);
    }

  ring_recompute (self, "started");
  self->topology_timer = g_timeout_add (MAX (self->topology_interval_ms, 50u), topology_tick, self);
  self->health_timer = g_timeout_add (MAX (self->peer_health_interval_ms, 50u), health_tick, self);

  log_event (self, G_LOG_LEVEL_MESSAGE, "node %s serving %s (%u layers), memory %" G_GUINT64_FORMAT " MiB",
             self->node_id, self->model_id, self->n_layers, self->caps->memory);
  g_task_return_boolean (task, TRUE);
}

static void
exo_cluster_node_do_cleanup (ExoResource *resource,
                             GTask       *task)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (resource);

  self->running = FALSE;
  self->generation++;
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);

  requests_close (self);
  peers_remove_all (self);
  drop_running_state (self);
  g_clear_object (&self->cancellable);

  if (self->pending_removals > 0)
    {
      g_assert (self->cleanup_task == NULL);
      self->cleanup_task = g_object_ref (task);
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
exo_cluster_node_do_check_health (ExoResource *resource,
                                  GTask       *task)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (resource);

  if (self->peer_type_error != NULL)
    g_task_return_error (task, g_error_copy (self->peer_type_error));
  else if (self->engine != NULL && !exo_resource_is_usable (EXO_RESOURCE (self->engine)))
    g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                             "engine '%s' is %s",
                             exo_resource_get_id (EXO_RESOURCE (self->engine)),
                             exo_resource_state_to_string (exo_resource_get_state (EXO_RESOURCE (self->engine))));
  else
    g_task_return_boolean (task, TRUE);
}

static void
exo_cluster_node_collect_metrics (ExoResource  *resource,
                                  GVariantDict *metrics)
{
  EXO_RESOURCE_CLASS (exo_cluster_node_parent_class)->collect_metrics (resource, metrics);
  node_collect_metrics (resource, metrics);   /* node-metrics.c */
}

/* --- GObject ------------------------------------------------------------- */

static void
exo_cluster_node_finalize (GObject *object)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (object);

  g_assert (self->cleanup_task == NULL);
  drop_running_state (self);
  g_clear_pointer (&self->requests, g_hash_table_unref);
  g_clear_pointer (&self->origins, g_hash_table_unref);
  g_clear_pointer (&self->peers, g_hash_table_unref);
  g_clear_pointer (&self->cancelled, g_hash_table_unref);
  g_queue_clear_full (&self->cancelled_order, g_free);
  g_clear_object (&self->cancellable);
  g_free (self->engine_id);
  g_free (self->server_id);
  g_free (self->discovery_id);
  g_free (self->node_id_setting);
  g_free (self->model_id);
  g_free (self->node_id);
  g_free (self->topology_json);
  g_clear_pointer (&self->topology_variant, g_variant_unref);
  g_free (self->last_failed_peer);
  G_OBJECT_CLASS (exo_cluster_node_parent_class)->finalize (object);
}

static void
exo_cluster_node_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (object);

  switch (prop_id)
    {
    case PROP_ENGINE:
      g_value_set_string (value, self->engine_id);
      break;
    case PROP_SERVER:
      g_value_set_string (value, self->server_id);
      break;
    case PROP_DISCOVERY:
      g_value_set_string (value, self->discovery_id);
      break;
    case PROP_NODE_ID:
      g_value_set_string (value, self->node_id != NULL ? self->node_id : self->node_id_setting);
      break;
    case PROP_MODEL_ID:
      g_value_set_string (value, self->model_id);
      break;
    case PROP_N_LAYERS:
      g_value_set_uint (value, self->n_layers);
      break;
    case PROP_TOPOLOGY_INTERVAL_MS:
      g_value_set_uint (value, self->topology_interval_ms);
      break;
    case PROP_TOPOLOGY_MAX_DEPTH:
      g_value_set_uint (value, self->topology_max_depth);
      break;
    case PROP_PEER_TIMEOUT_MS:
      g_value_set_uint (value, self->peer_timeout_ms);
      break;
    case PROP_REQUEST_TIMEOUT_MS:
      g_value_set_uint (value, self->request_timeout_ms);
      break;
    case PROP_MAX_TOKENS:
      g_value_set_uint (value, self->max_tokens);
      break;
    case PROP_PEER_HEALTH_INTERVAL_MS:
      g_value_set_uint (value, self->peer_health_interval_ms);
      break;
    case PROP_PEER_FAILURE_THRESHOLD:
      g_value_set_uint (value, self->peer_failure_threshold);
      break;
    case PROP_DEVICE_MEMORY_MIB:
      g_value_set_uint64 (value, self->device_memory_mib);
      break;
    case PROP_TOPOLOGY:
      g_value_take_string (value, dup_topology_json (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_cluster_node_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (object);
  gboolean changed;

  switch (prop_id)
    {
    case PROP_ENGINE:
      changed = exo_plugin_set_string (&self->engine_id, value);
      break;
    case PROP_SERVER:
      changed = exo_plugin_set_string (&self->server_id, value);
      break;
    case PROP_DISCOVERY:
      changed = exo_plugin_set_string (&self->discovery_id, value);
      break;
    case PROP_NODE_ID:
      changed = exo_plugin_set_string (&self->node_id_setting, value);
      break;
    case PROP_MODEL_ID:
      changed = exo_plugin_set_string (&self->model_id, value);
      if (self->model_id == NULL)
        self->model_id = g_strdup ("dummy");
      break;
    case PROP_N_LAYERS:
      changed = exo_plugin_set_uint (&self->n_layers, value);
      break;
    case PROP_TOPOLOGY_INTERVAL_MS:
      changed = exo_plugin_set_uint (&self->topology_interval_ms, value);
      break;
    case PROP_TOPOLOGY_MAX_DEPTH:
      changed = exo_plugin_set_uint (&self->topology_max_depth, value);
      break;
    case PROP_PEER_TIMEOUT_MS:
      changed = exo_plugin_set_uint (&self->peer_timeout_ms, value);
      break;
    case PROP_REQUEST_TIMEOUT_MS:
      changed = exo_plugin_set_uint (&self->request_timeout_ms, value);
      break;
    case PROP_MAX_TOKENS:
      changed = exo_plugin_set_uint (&self->max_tokens, value);
      break;
    case PROP_PEER_HEALTH_INTERVAL_MS:
      changed = exo_plugin_set_uint (&self->peer_health_interval_ms, value);
      break;
    case PROP_PEER_FAILURE_THRESHOLD:
      changed = exo_plugin_set_uint (&self->peer_failure_threshold, value);
      break;
    case PROP_DEVICE_MEMORY_MIB:
      changed = self->device_memory_mib != g_value_get_uint64 (value);
      self->device_memory_mib = g_value_get_uint64 (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  if (changed)
    g_object_notify_by_pspec (object, pspec);
}

#define RW (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY)

/* --check-config: a node with a discovery needs a plugin that makes peer
 * handles (plugins are loaded before configs are checked). */
static gboolean
exo_cluster_node_check_settings (ExoResource  *resource,
                                 char        **setting,
                                 GError      **error)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (resource);

  if (self->discovery_id != NULL && *self->discovery_id != '\0' &&
      exo_plugin_lookup_role (EXO_TYPE_PEER_HANDLE) == 0)
    {
      *setting = g_strdup ("discovery");
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "a node with a discovery needs peer handles, and no loaded plugin "
                   "provides them (ExoPeerHandle); load the http-server plugin");
      return FALSE;
    }
  return TRUE;
}

static void
exo_cluster_node_class_init (ExoClusterNodeClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->finalize = exo_cluster_node_finalize;
  object_class->get_property = exo_cluster_node_get_property;
  object_class->set_property = exo_cluster_node_set_property;

  resource_class->do_initialize = exo_cluster_node_do_initialize;
  resource_class->do_cleanup = exo_cluster_node_do_cleanup;
  resource_class->do_check_health = exo_cluster_node_do_check_health;
  resource_class->collect_metrics = exo_cluster_node_collect_metrics;
  resource_class->check_settings = exo_cluster_node_check_settings;
  node_add_metric_entries (resource_class);
  exo_resource_class_set_resource_type (resource_class, "node");

  /**
   * ExoClusterNode:engine:
   *
   * The id of the inference engine resource.
   */
  properties[PROP_ENGINE] =
    g_param_spec_string ("engine", NULL, "Id of the inference engine resource", "engine", RW);
  /**
   * ExoClusterNode:server:
   *
   * The id of the server resource ("" for none).
   */
  properties[PROP_SERVER] =
    g_param_spec_string ("server", NULL, "Id of the server resource", "server", RW);
  /**
   * ExoClusterNode:discovery:
   *
   * The id of the discovery resource ("" for none: no peers).
   */
  properties[PROP_DISCOVERY] =
    g_param_spec_string ("discovery", NULL, "Id of the discovery resource", "discovery", RW);
  /**
   * ExoClusterNode:node-id:
   *
   * This node's id.  Default: the discovery's `node-id`, else the
   * process's node id, exo_node_id_default() (in exo-node, the daemon's
   * node id; as the discovery does).  Must equal the discovery's id.
   */
  properties[PROP_NODE_ID] =
    g_param_spec_string ("node-id", NULL, "This node's id", NULL, RW);
  properties[PROP_MODEL_ID] =
    g_param_spec_string ("model-id", NULL, "The model the cluster serves", "dummy", RW);
  properties[PROP_N_LAYERS] =
    g_param_spec_uint ("n-layers", NULL, "Layers of the model", 1, 100000, 16, RW);
  properties[PROP_TOPOLOGY_INTERVAL_MS] =
    g_param_spec_uint ("topology-interval-ms", NULL, "How often the topology is collected",
                       50, 3600000, 2000, RW);
  properties[PROP_TOPOLOGY_MAX_DEPTH] =
    g_param_spec_uint ("topology-max-depth", NULL, "Hops a topology collection goes",
                       0, 16, 4, RW);
  properties[PROP_PEER_TIMEOUT_MS] =
    g_param_spec_uint ("peer-timeout-ms", NULL,
                       "Bound on one peer's topology answer and on a health check",
                       50, 600000, 1000, RW);
  properties[PROP_REQUEST_TIMEOUT_MS] =
    g_param_spec_uint ("request-timeout-ms", NULL,
                       "A request without progress for this long fails (0 = never)",
                       0, 3600000, 10000, RW);
  properties[PROP_MAX_TOKENS] =
    g_param_spec_uint ("max-tokens", NULL, "Tokens generated at most per request",
                       1, 1000000, 64, RW);
  properties[PROP_PEER_HEALTH_INTERVAL_MS] =
    g_param_spec_uint ("peer-health-interval-ms", NULL, "How often each peer is probed",
                       50, 3600000, 1000, RW);
  properties[PROP_PEER_FAILURE_THRESHOLD] =
    g_param_spec_uint ("peer-failure-threshold", NULL,
                       "Failed probes in a row after which a peer is failed",
                       1, 1000, 2, RW);
  properties[PROP_DEVICE_MEMORY_MIB] =
    g_param_spec_uint64 ("device-memory-mib", NULL,
                         "Memory this node announces, in MiB (0 = the host's)",
                         0, G_MAXUINT64, 0, RW);
  /**
   * ExoClusterNode:topology:
   *
   * The topology as JSON (nodes, peer_graph, partitions, shards, version);
   * notified when it changes, with #ExoClusterNode::topology-changed.
   */
  properties[PROP_TOPOLOGY] =
    g_param_spec_string ("topology", NULL, "The topology as JSON", NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ExoClusterNode::topology-changed:
   * @self: the node
   * @json: the topology as JSON
   *
   * The topology or the ring changed (for org.exo.Node1.Topology).
   */
  signals[SIGNAL_TOPOLOGY_CHANGED] =
    g_signal_new ("topology-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
exo_cluster_node_init (ExoClusterNode *self)
{
  self->engine_id = g_strdup ("engine");
  self->server_id = g_strdup ("server");
  self->discovery_id = g_strdup ("discovery");
  self->model_id = g_strdup ("dummy");
  self->n_layers = 16;
  self->topology_interval_ms = 2000;
  self->topology_max_depth = 4;
  self->peer_timeout_ms = 1000;
  self->request_timeout_ms = 10000;
  self->max_tokens = 64;
  self->peer_health_interval_ms = 1000;
  self->peer_failure_threshold = 2;
  self->last_failure_detect_ms = -1;
  self->cancelled = g_hash_table_new (g_str_hash, g_str_equal);
  g_queue_init (&self->cancelled_order);
}

static void
node_plugin_register (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "node", EXO_TYPE_CLUSTER_NODE);
}

EXO_PLUGIN_DEFINE ("node", "1.0.0",
                   "Cluster orchestration: peers, topology, ring partitioning, requests through the ring",
                   node_plugin_register)
