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
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "node.h"
#include "node-partition.h"
#include "node-topology.h"

#include <json-glib/json-glib.h>
#include <string.h>

#define LOG_DOMAIN "exo-node-plugin"

/* Requests and results a node keeps at most (a limit on what peers and
 * users can make us hold). */
#define MAX_REQUESTS 4096

struct _ExoClusterNode
{
  ExoManagedResource parent_instance;

  /* settings */
  char         *engine_id;
  char         *server_id;
  char         *discovery_id;
  char         *node_id_setting;
  char         *model_id;
  guint         n_layers;
  guint         topology_interval_ms;
  guint         topology_max_depth;
  guint         peer_timeout_ms;
  guint         request_timeout_ms;
  guint         max_tokens;
  guint         peer_health_interval_ms;
  guint         peer_failure_threshold;
  guint64       device_memory_mib;

  /* running (between initialize and cleanup) */
  char               *node_id;        /* the effective id; kept after cleanup */
  guint               generation;     /* bumped by every initialize and cleanup */
  gboolean            running;
  GCancellable       *cancellable;
  ExoResourceGroup   *group;
  ExoInferenceEngine *engine;
  ExoResource        *server;
  ExoDiscovery       *discovery;
  gulong              found_handler;
  gulong              lost_handler;
  NodeCaps           *caps;
  GHashTable         *peers;          /* node id → Peer */
  GHashTable         *failed;         /* node id → FailedPeer */
  GHashTable         *requests;       /* request id → Request */
  GHashTable         *cancelled;      /* request ids abandoned (set, ids owned by the queue) */
  GQueue              cancelled_order;/* the same ids, oldest first */
  NodeTopology       *topology;       /* the last merged topology */
  GPtrArray          *partitions;     /* NodePartition, ring order */
  GPtrArray          *shards;         /* NodeShardAssignment, ring order */
  char               *topology_json;
  guint               topology_timer;
  guint               health_timer;
  guint               collect_soon;
  guint               reap_idle;
  gboolean            collecting;
  guint               pending_removals;
  GTask              *cleanup_task;
  GType               peer_type;
  gboolean            warned_no_peer_type;
  GError             *peer_type_error;

  /* metrics (kept across restarts) */
  guint64       requests_total;
  guint64       tokens_generated;
  guint64       layers_computed;
  guint64       failed_requests;
  guint64       topology_version;
  guint64       peers_failed;
  guint64       peers_joined;
  guint64       topology_errors;
  guint64       hop_failures;
  guint64       dropped_messages;
  guint64       cancels_sent;
  guint64       cancels_received;
  guint64       cancelled_dropped;
  gint64        last_failure_detect_ms;
  char         *last_failed_peer;
};

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

static void exo_cluster_node_role_init (ExoNodeRoleInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ExoClusterNode, exo_cluster_node, EXO_TYPE_MANAGED_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_NODE_ROLE,
                                                      exo_cluster_node_role_init))

/* --- small helpers ----------------------------------------------------- */

static const char *
self_id (ExoClusterNode *self)
{
  return exo_resource_get_id (EXO_RESOURCE (self));
}

static void
log_event (ExoClusterNode *self,
           GLogLevelFlags  level,
           const char     *format,
           ...) G_GNUC_PRINTF (3, 4);

/* Things an operator must see (peers found, lost, failed; the ring). */
static void
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

static gboolean
is_cancelled (const GError *error)
{
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* Errors that leave no doubt: nothing listens there, or no route. */
static gboolean
is_definitive (const GError *error)
{
  if (error == NULL || error->domain != G_IO_ERROR)
    return FALSE;
  switch (error->code)
    {
    case G_IO_ERROR_CONNECTION_REFUSED:
    case G_IO_ERROR_HOST_UNREACHABLE:
    case G_IO_ERROR_NETWORK_UNREACHABLE:
      return TRUE;
    default:
      return FALSE;
    }
}

static gboolean
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

/* A GCancellable that fires after @timeout_ms or when @parent fires. */
typedef struct {
  GCancellable *cancellable;
  GCancellable *parent;
  gulong        parent_handler;
  guint         timer;
  gboolean      timed_out;
  guint         timeout_ms;
} Deadline;

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

static Deadline *
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

static void
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
static void
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

/* --- peers --------------------------------------------------------------- */

typedef struct _Peer Peer;

struct _Peer
{
  guint           ref;
  ExoClusterNode *node;        /* not a reference; NULL once removed */
  char           *node_id;
  char           *address;
  char           *resource_id;
  NodeCaps       *caps;        /* as discovery told */
  ExoResource    *handle;
  gulong          state_handler;
  guint           failures;    /* failed health checks in a row */
  gint64          added_us;
  gint64          unusable_since;
  gint64          last_ok_us;
  gboolean        health_pending;
  gboolean        verifying;
  gboolean        ever_ready;
  GError         *fail_error;  /* set when it is to be failed (by the reaper) */
};

typedef struct {
  char     *node_id;
  char     *address;
  GVariant *caps;
  gint64    failed_us;
  gint64    last_probe_us;
  gboolean  probing;
} FailedPeer;

static Peer *
peer_ref (Peer *peer)
{
  peer->ref++;
  return peer;
}

static void
peer_unref (Peer *peer)
{
  if (--peer->ref > 0)
    return;
  g_free (peer->node_id);
  g_free (peer->address);
  g_free (peer->resource_id);
  node_caps_free (peer->caps);
  g_clear_object (&peer->handle);
  g_clear_error (&peer->fail_error);
  g_free (peer);
}

static void
failed_peer_free (FailedPeer *failed)
{
  g_free (failed->node_id);
  g_free (failed->address);
  g_clear_pointer (&failed->caps, g_variant_unref);
  g_free (failed);
}

static gboolean
peer_is_usable (Peer *peer)
{
  return peer->handle != NULL && peer->fail_error == NULL &&
         exo_resource_is_usable (peer->handle);
}

static Peer *
lookup_usable_peer (ExoClusterNode *self,
                    const char     *node_id)
{
  Peer *peer = self->peers != NULL ? g_hash_table_lookup (self->peers, node_id) : NULL;

  return peer != NULL && peer_is_usable (peer) ? peer : NULL;
}

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

static void schedule_reap (ExoClusterNode *self);
static void peer_verify (ExoClusterNode *self, Peer *peer);
static void schedule_collect (ExoClusterNode *self, guint delay_ms);
static void ring_recompute (ExoClusterNode *self, const char *why);
static void fail_requests_using (ExoClusterNode *self, const char *node_id, const GError *error);
static void requests_gc (ExoClusterNode *self, gint64 now);

/* Marks @peer to be failed; the reaper removes it outside of any signal
 * emission.  Failures counted by the caller. */
static void
peer_set_failed (ExoClusterNode *self,
                 Peer           *peer,
                 const GError   *error)
{
  if (peer->fail_error != NULL || peer->node == NULL)
    return;
  peer->fail_error = error != NULL ? g_error_copy (error)
                                   : g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED,
                                                          "peer failed");
  schedule_reap (self);
}

/* One failure of @peer: a failed health check, a failed call, `error` state. */
static void
peer_note_failure (ExoClusterNode *self,
                   Peer           *peer,
                   const GError   *error)
{
  peer->failures++;
  if (is_definitive (error) || peer->failures >= MAX (1u, self->peer_failure_threshold))
    peer_set_failed (self, peer, error);
}

static void
peer_state_changed (ExoResource      *handle,
                    ExoResourceState  old_state,
                    ExoResourceState  new_state,
                    gpointer          user_data)
{
  Peer *peer = user_data;
  ExoClusterNode *self = peer->node;

  if (self == NULL)
    return;

  if (exo_resource_state_is_usable (new_state))
    {
      peer->unusable_since = 0;
      peer->last_ok_us = g_get_monotonic_time ();
      if (!exo_resource_state_is_usable (old_state))
        {
          if (!peer->ever_ready)
            {
              self->peers_joined++;
              log_event (self, G_LOG_LEVEL_MESSAGE, "peer %s (%s) is ready",
                         peer->node_id, peer->address);
            }
          peer->ever_ready = TRUE;
          peer->failures = 0;
          ring_recompute (self, "peer ready");
          schedule_collect (self, 0);
        }
      return;
    }

  if (peer->unusable_since == 0)
    peer->unusable_since = g_get_monotonic_time ();
  if (exo_resource_state_is_usable (old_state))
    ring_recompute (self, "peer not usable");
  if (new_state == EXO_RESOURCE_STATE_ERROR)
    {
      const GError *error = exo_resource_get_last_error (handle);

      /* The group restarts a member in error, and its restarts count
       * against the group's restart limit: decide now.  Nothing listens
       * there any more, or no route: failed.  Otherwise ask it once more,
       * on a connection of its own. */
      if (is_definitive (error))
        peer_set_failed (self, peer, error);
      else
        peer_verify (self, peer);
    }
}

static void
peer_removed_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(ExoClusterNode) self = user_data;
  g_autoptr(GError) error = NULL;

  if (EXO_IS_RESOURCE_GROUP (source))
    exo_resource_group_remove_finish (EXO_RESOURCE_GROUP (source), result, &error);
  else
    exo_resource_cleanup_finish (EXO_RESOURCE (source), result, &error);
  /* A cleanup error of a dead peer is expected; nothing to do about it. */

  if (self->pending_removals > 0 && --self->pending_removals == 0 && self->cleanup_task != NULL)
    {
      GTask *task = g_steal_pointer (&self->cleanup_task);

      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
}

/* Takes @peer out of the table and its handle out of the group (cleaned up). */
static void
peer_remove (ExoClusterNode *self,
             Peer           *peer)
{
  gboolean group_closing = FALSE;

  if (peer->node == NULL)
    return;
  peer_ref (peer);
  peer->node = NULL;
  g_hash_table_remove (self->peers, peer->node_id);

  if (peer->handle != NULL)
    {
      g_clear_signal_handler (&peer->state_handler, peer->handle);
      if (self->group != NULL)
        {
          ExoResourceState gs = exo_resource_get_state (EXO_RESOURCE (self->group));

          group_closing = gs == EXO_RESOURCE_STATE_CLOSING || gs == EXO_RESOURCE_STATE_CLOSED;
        }
      if (self->group != NULL &&
          exo_resource_group_lookup (self->group, peer->resource_id) == peer->handle)
        {
          if (!group_closing)
            {
              self->pending_removals++;
              exo_resource_group_remove_async (self->group, peer->resource_id, TRUE, NULL,
                                               peer_removed_cb, g_object_ref (self));
            }
        }
      else
        {
          self->pending_removals++;
          exo_resource_cleanup_async (peer->handle, NULL, peer_removed_cb, g_object_ref (self));
        }
    }
  peer_unref (peer);
}

static GType
get_peer_type (ExoClusterNode *self,
               GError        **error)
{
  if (self->peer_type == 0)
    self->peer_type = g_type_from_name (EXO_CLUSTER_NODE_PEER_TYPE_NAME);
  if (self->peer_type == 0 || !g_type_is_a (self->peer_type, EXO_TYPE_RESOURCE) ||
      !g_type_is_a (self->peer_type, EXO_TYPE_PEER_HANDLE))
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                   "cannot connect to peers: the peer handle type '%s' is not registered "
                   "(is the http-server plugin loaded?)", EXO_CLUSTER_NODE_PEER_TYPE_NAME);
      self->peer_type = 0;
      return 0;
    }
  return self->peer_type;
}

/* A new peer handle object for @node_id; not initialized, in no group. */
static ExoResource *
make_handle (ExoClusterNode *self,
             const char     *resource_id,
             const char     *node_id,
             const char     *address,
             GVariant       *caps,
             GError        **error)
{
  GType type = get_peer_type (self, error);
  GObjectClass *klass;
  const char *names[5];
  GValue values[5] = { G_VALUE_INIT, G_VALUE_INIT, G_VALUE_INIT, G_VALUE_INIT, G_VALUE_INIT };
  guint n = 0;
  GObject *object;

  if (type == 0)
    return NULL;
  klass = g_type_class_ref (type);

  names[n] = "id";
  g_value_init (&values[n], G_TYPE_STRING);
  g_value_set_string (&values[n++], resource_id);
  if (g_object_class_find_property (klass, "peer-id") != NULL)
    {
      names[n] = "peer-id";
      g_value_init (&values[n], G_TYPE_STRING);
      g_value_set_string (&values[n++], node_id);
    }
  if (g_object_class_find_property (klass, "address") != NULL)
    {
      names[n] = "address";
      g_value_init (&values[n], G_TYPE_STRING);
      g_value_set_string (&values[n++], address);
    }
  if (caps != NULL && g_object_class_find_property (klass, "device-capabilities") != NULL &&
      G_PARAM_SPEC_VALUE_TYPE (g_object_class_find_property (klass, "device-capabilities")) == G_TYPE_VARIANT)
    {
      names[n] = "device-capabilities";
      g_value_init (&values[n], G_TYPE_VARIANT);
      g_value_set_variant (&values[n++], caps);
    }

  object = g_object_new_with_properties (type, n, names, values);
  for (guint i = 0; i < n; i++)
    g_value_unset (&values[i]);
  g_type_class_unref (klass);

  if (EXO_IS_MANAGED_RESOURCE (object))
    exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (object), FALSE);
  return EXO_RESOURCE (object);
}

static void
peer_own_init_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  /* The outcome shows in the handle's state, which the node watches. */
  exo_resource_initialize_finish (EXO_RESOURCE (source), result, NULL);
}

static gboolean
group_is_up (ExoClusterNode *self)
{
  ExoResourceState state;

  if (self->group == NULL)
    return FALSE;
  state = exo_resource_get_state (EXO_RESOURCE (self->group));
  return state == EXO_RESOURCE_STATE_READY || state == EXO_RESOURCE_STATE_DEGRADED;
}

static void peer_add (ExoClusterNode *self, const char *node_id, const char *address, GVariant *caps);

typedef struct {
  ExoClusterNode *self;
  char           *node_id;
  char           *address;
  GVariant       *caps;
  guint           generation;
} PendingAdd;

static void
pending_add_free (PendingAdd *pending)
{
  g_object_unref (pending->self);
  g_free (pending->node_id);
  g_free (pending->address);
  g_clear_pointer (&pending->caps, g_variant_unref);
  g_free (pending);
}

static void
stale_removed_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  PendingAdd *pending = user_data;

  exo_resource_group_remove_finish (EXO_RESOURCE_GROUP (source), result, NULL);
  if (pending->self->running && pending->generation == pending->self->generation &&
      g_hash_table_lookup (pending->self->peers, pending->node_id) == NULL)
    peer_add (pending->self, pending->node_id, pending->address, pending->caps);
  pending_add_free (pending);
}

/* A peer found: make its handle, add it to the group, watch it. */
static void
peer_add (ExoClusterNode *self,
          const char     *node_id,
          const char     *address,
          GVariant       *caps)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *resource_id = NULL;
  g_autoptr(ExoResource) handle = NULL;
  ExoResource *existing = NULL;
  Peer *peer;

  if (!self->running || g_strcmp0 (node_id, self->node_id) == 0)
    return;
  if (!node_id_is_valid (node_id) || address == NULL || *address == '\0')
    {
      self->dropped_messages++;
      return;
    }

  peer = g_hash_table_lookup (self->peers, node_id);
  if (peer != NULL)
    {
      if (g_strcmp0 (peer->address, address) == 0 && peer->fail_error == NULL)
        {
          if (caps != NULL)
            {
              node_caps_free (peer->caps);
              peer->caps = node_caps_from_variant (caps);
            }
          return;
        }
      /* At a new address (or failed and found again): start over. */
      peer_remove (self, peer);
    }
  g_hash_table_remove (self->failed, node_id);

  resource_id = g_strconcat ("peer-", node_id, NULL);
  if (self->group != NULL)
    existing = exo_resource_group_lookup (self->group, resource_id);
  if (existing != NULL)
    {
      /* Left over from an earlier run of this node (or being removed):
       * remove it, then add ours. */
      PendingAdd *pending = g_new0 (PendingAdd, 1);

      pending->self = g_object_ref (self);
      pending->node_id = g_strdup (node_id);
      pending->address = g_strdup (address);
      pending->caps = caps != NULL ? g_variant_ref_sink (caps) : NULL;
      pending->generation = self->generation;
      exo_resource_group_remove_async (self->group, resource_id, TRUE, NULL,
                                       stale_removed_cb, pending);
      return;
    }

  handle = make_handle (self, resource_id, node_id, address, caps, &error);
  if (handle == NULL)
    {
      if (!self->warned_no_peer_type)
        {
          self->warned_no_peer_type = TRUE;
          log_event (self, G_LOG_LEVEL_WARNING, "%s", error->message);
        }
      if (self->peer_type_error == NULL)
        self->peer_type_error = g_error_copy (error);
      return;
    }

  if (self->group != NULL && !exo_resource_group_add (self->group, handle, NULL, &error))
    {
      log_event (self, G_LOG_LEVEL_WARNING, "cannot add peer %s (%s): %s",
                 node_id, address, error->message);
      return;
    }

  peer = g_new0 (Peer, 1);
  peer->ref = 1;
  peer->node = self;
  peer->node_id = g_strdup (node_id);
  peer->address = g_strdup (address);
  peer->resource_id = g_steal_pointer (&resource_id);
  peer->caps = node_caps_from_variant (caps);
  peer->handle = g_object_ref (handle);
  peer->added_us = g_get_monotonic_time ();
  peer->unusable_since = peer->added_us;
  g_hash_table_insert (self->peers, peer->node_id, peer);
  peer->state_handler = g_signal_connect (handle, "state-changed",
                                          G_CALLBACK (peer_state_changed), peer);

  log_event (self, G_LOG_LEVEL_MESSAGE, "peer %s found at %s", node_id, address);

  /* A running group starts new members itself; otherwise we do. */
  if (!group_is_up (self))
    exo_resource_initialize_async (handle, self->cancellable, peer_own_init_cb, NULL);
}

static void
discovery_peer_found (ExoDiscovery *discovery,
                      const char   *node_id,
                      const char   *address,
                      GVariant     *caps,
                      gpointer      user_data)
{
  peer_add (EXO_CLUSTER_NODE (user_data), node_id, address, caps);
}

static void
discovery_peer_lost (ExoDiscovery *discovery,
                     const char   *node_id,
                     gpointer      user_data)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (user_data);
  Peer *peer = g_hash_table_lookup (self->peers, node_id);
  g_autoptr(GError) error = NULL;

  g_hash_table_remove (self->failed, node_id);
  if (peer == NULL)
    return;
  error = g_error_new (G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE,
                       "discovery lost node %s", node_id);
  log_event (self, G_LOG_LEVEL_MESSAGE, "peer %s (%s) lost by discovery", node_id, peer->address);
  fail_requests_using (self, node_id, error);
  peer_remove (self, peer);
  if (self->topology != NULL)
    node_topology_remove_node (self->topology, node_id);
  ring_recompute (self, "peer lost");
}

/* The reaper: fails the peers marked by peer_set_failed(). */
static gboolean
reap_cb (gpointer user_data)
{
  ExoClusterNode *self = user_data;
  g_autoptr(GPtrArray) doomed = g_ptr_array_new_with_free_func ((GDestroyNotify) peer_unref);
  GHashTableIter iter;
  gpointer value;

  self->reap_idle = 0;
  if (!self->running)
    return G_SOURCE_REMOVE;

  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((Peer *) value)->fail_error != NULL)
      g_ptr_array_add (doomed, peer_ref (value));

  for (guint i = 0; i < doomed->len; i++)
    {
      Peer *peer = g_ptr_array_index (doomed, i);
      FailedPeer *failed = g_new0 (FailedPeer, 1);
      gint64 now = g_get_monotonic_time ();

      self->peers_failed++;
      self->last_failure_detect_ms = peer->last_ok_us > 0 ? (now - peer->last_ok_us) / 1000 : -1;
      g_free (self->last_failed_peer);
      self->last_failed_peer = g_strdup (peer->node_id);
      log_event (self, G_LOG_LEVEL_WARNING,
                 "peer %s (%s) failed: %s; removed (last answer %" G_GINT64_FORMAT " ms ago)",
                 peer->node_id, peer->address, peer->fail_error->message,
                 self->last_failure_detect_ms);

      failed->node_id = g_strdup (peer->node_id);
      failed->address = g_strdup (peer->address);
      failed->caps = node_caps_to_variant (peer->caps);
      g_variant_ref_sink (failed->caps);
      failed->failed_us = now;
      failed->last_probe_us = now;
      g_hash_table_replace (self->failed, failed->node_id, failed);

      fail_requests_using (self, peer->node_id, peer->fail_error);
      peer_remove (self, peer);
      if (self->topology != NULL)
        node_topology_remove_node (self->topology, peer->node_id);
    }

  if (doomed->len > 0)
    {
      ring_recompute (self, "peer failed");
      schedule_collect (self, 0);
    }
  return G_SOURCE_REMOVE;
}

static void
schedule_reap (ExoClusterNode *self)
{
  if (self->reap_idle == 0 && self->running)
    self->reap_idle = g_idle_add_full (G_PRIORITY_HIGH, reap_cb, self, NULL);
}

/* --- health of peers ----------------------------------------------------- */

typedef struct {
  ExoClusterNode *self;
  Peer           *peer;
  Deadline       *deadline;
  guint           generation;
} HealthCall;

static void peer_health_start (ExoClusterNode *self, Peer *peer);

static void
peer_health_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  HealthCall *call = user_data;
  ExoClusterNode *self = call->self;
  Peer *peer = call->peer;
  g_autoptr(GError) error = NULL;
  g_autofree char *what = NULL;

  exo_resource_check_health_finish (EXO_RESOURCE (source), result, &error);
  what = g_strdup_printf ("health check of node %s", peer->node_id);
  deadline_fix_error (call->deadline, &error, what);
  peer->health_pending = FALSE;

  if (self->running && call->generation == self->generation && peer->node == self)
    {
      if (error == NULL)
        {
          peer->failures = 0;
          peer->last_ok_us = g_get_monotonic_time ();
        }
      else if (!is_cancelled (error))
        {
          peer_note_failure (self, peer, error);
          /* Confirm at once rather than at the next tick: a silent peer is
           * failed after threshold × the health timeout. */
          if (peer->fail_error == NULL &&
              !g_error_matches (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY) &&
              exo_resource_is_usable (peer->handle))
            peer_health_start (self, peer);
        }
    }

  deadline_free (call->deadline);
  peer_unref (call->peer);
  g_object_unref (call->self);
  g_free (call);
}

static guint
health_timeout_ms (ExoClusterNode *self)
{
  guint t = MIN (self->peer_timeout_ms, self->peer_health_interval_ms);

  return MAX (t, 50u);
}

static void
peer_health_start (ExoClusterNode *self,
                   Peer           *peer)
{
  HealthCall *call = g_new0 (HealthCall, 1);

  call->self = g_object_ref (self);
  call->peer = peer_ref (peer);
  call->deadline = deadline_new (self->cancellable, health_timeout_ms (self));
  call->generation = self->generation;
  peer->health_pending = TRUE;
  exo_resource_check_health_async (peer->handle, call->deadline->cancellable,
                                   peer_health_cb, call);
}

static gboolean
health_tick (gpointer user_data)
{
  ExoClusterNode *self = user_data;
  g_autoptr(GPtrArray) peers = g_ptr_array_new_with_free_func ((GDestroyNotify) peer_unref);
  gint64 now = g_get_monotonic_time ();
  gint64 ready_limit_us;
  GHashTableIter iter;
  gpointer value;

  /* A new peer gets one failure period plus a call timeout to become ready. */
  ready_limit_us = ((gint64) MAX (1u, self->peer_failure_threshold) * self->peer_health_interval_ms +
                    self->peer_timeout_ms) * 1000;

  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (peers, peer_ref (value));

  for (guint i = 0; i < peers->len; i++)
    {
      Peer *peer = g_ptr_array_index (peers, i);
      ExoResourceState state;

      if (peer->node != self || peer->fail_error != NULL || peer->health_pending)
        continue;
      state = exo_resource_get_state (peer->handle);

      if (exo_resource_state_is_usable (state))
        peer_health_start (self, peer);
      else if (state == EXO_RESOURCE_STATE_ERROR)
        {
          const GError *last = exo_resource_get_last_error (peer->handle);
          g_autoptr(GError) error = last != NULL ? g_error_copy (last)
                                                 : g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED,
                                                                "peer handle is in error");
          peer_note_failure (self, peer, error);
        }
      else if (peer->unusable_since > 0 && now - peer->unusable_since > ready_limit_us)
        {
          const GError *last = exo_resource_get_last_error (peer->handle);
          g_autoptr(GError) error =
            g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                         "not ready within %" G_GINT64_FORMAT " ms (%s%s%s)",
                         ready_limit_us / 1000, exo_resource_state_to_string (state),
                         last != NULL ? ": " : "", last != NULL ? last->message : "");
          peer_set_failed (self, peer, error);
        }
      else if (state == EXO_RESOURCE_STATE_UNINITIALIZED && !group_is_up (self))
        exo_resource_initialize_async (peer->handle, self->cancellable, peer_own_init_cb, NULL);
    }

  requests_gc (self, now);

  return G_SOURCE_CONTINUE;
}

/* --- the ring and the published topology ------------------------------- */

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

static GPtrArray *
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

static char *
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

static void
publish_topology (ExoClusterNode *self)
{
  g_autofree char *json = build_topology_json (self);

  if (g_strcmp0 (json, self->topology_json) == 0)
    return;
  g_free (self->topology_json);
  self->topology_json = g_steal_pointer (&json);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TOPOLOGY]);
  g_signal_emit (self, signals[SIGNAL_TOPOLOGY_CHANGED], 0, self->topology_json);
}

/* Partitions the ring over this node and its usable peers. */
static void
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
  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (peer_is_usable (value))
      g_ptr_array_add (ids, ((Peer *) value)->node_id);

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
      g_task_return_pointer (c->task, node_topology_to_json (c->result), g_free);
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
static void
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

static void
schedule_collect (ExoClusterNode *self,
                  guint           delay_ms)
{
  if (!self->running || self->collect_soon != 0)
    return;
  /* Coalesce the bursts of peers becoming ready. */
  self->collect_soon = g_timeout_add (MAX (delay_ms, 20u), collect_soon_cb, self);
}

/* --- discovery: peers it lists that we do not have --------------------- */

typedef struct {
  ExoClusterNode *self;
  ExoResource    *handle;
  char           *node_id;
  char           *address;
  GVariant       *caps;
  Deadline       *deadline;
  guint           generation;
  Peer           *verify;      /* a peer in error to confirm, or NULL (a rejoin) */
} Probe;

static void
probe_cleanup_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  exo_resource_cleanup_finish (EXO_RESOURCE (source), result, NULL);
}

static void
probe_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Probe *probe = user_data;
  ExoClusterNode *self = probe->self;
  g_autoptr(GError) error = NULL;
  gboolean ok = exo_resource_initialize_finish (EXO_RESOURCE (source), result, &error);
  FailedPeer *failed;

  exo_resource_cleanup_async (probe->handle, NULL, probe_cleanup_cb, NULL);
  if (probe->verify != NULL)
    {
      g_autofree char *what = g_strdup_printf ("probe of node %s", probe->node_id);

      deadline_fix_error (probe->deadline, &error, what);
      probe->verify->verifying = FALSE;
      if (!ok && !is_cancelled (error) && self->running && probe->generation == self->generation &&
          probe->verify->node == self)
        peer_set_failed (self, probe->verify, error);
      g_clear_pointer (&probe->verify, peer_unref);
    }
  else if (self->running && probe->generation == self->generation)
    {
      failed = g_hash_table_lookup (self->failed, probe->node_id);
      if (failed != NULL)
        failed->probing = FALSE;
      if (ok && failed != NULL)
        {
          log_event (self, G_LOG_LEVEL_MESSAGE, "failed peer %s answers again at %s; rejoining",
                     probe->node_id, probe->address);
          peer_add (self, probe->node_id, probe->address, probe->caps);
        }
    }

  deadline_free (probe->deadline);
  g_object_unref (probe->handle);
  g_free (probe->node_id);
  g_free (probe->address);
  g_clear_pointer (&probe->caps, g_variant_unref);
  g_object_unref (probe->self);
  g_free (probe);
}

static void
probe_failed_peer (ExoClusterNode *self,
                   FailedPeer     *failed,
                   const char     *address,
                   GVariant       *caps)
{
  g_autofree char *resource_id = g_strconcat ("probe-", failed->node_id, NULL);
  ExoResource *handle = make_handle (self, resource_id, failed->node_id, address, caps, NULL);
  Probe *probe;

  if (handle == NULL)
    return;
  failed->probing = TRUE;
  failed->last_probe_us = g_get_monotonic_time ();

  probe = g_new0 (Probe, 1);
  probe->self = g_object_ref (self);
  probe->handle = handle;
  probe->node_id = g_strdup (failed->node_id);
  probe->address = g_strdup (address);
  probe->caps = caps != NULL ? g_variant_ref (caps) : NULL;
  probe->deadline = deadline_new (self->cancellable, self->peer_timeout_ms);
  probe->generation = self->generation;
  exo_resource_initialize_async (handle, probe->deadline->cancellable, probe_cb, probe);
}

/* A peer in `error`: is it really gone?  Its own connection is being
 * restarted by the group; a fresh one answers within the health timeout,
 * or the peer is failed. */
static void
peer_verify (ExoClusterNode *self,
             Peer           *peer)
{
  g_autofree char *resource_id = NULL;
  g_autoptr(GVariant) caps = NULL;
  ExoResource *handle;
  Probe *probe;

  if (peer->verifying || peer->fail_error != NULL || !self->running)
    return;
  resource_id = g_strconcat ("probe-", peer->node_id, NULL);
  caps = g_variant_ref_sink (node_caps_to_variant (peer->caps));
  handle = make_handle (self, resource_id, peer->node_id, peer->address, caps, NULL);
  if (handle == NULL)
    return;
  peer->verifying = TRUE;

  probe = g_new0 (Probe, 1);
  probe->self = g_object_ref (self);
  probe->handle = handle;
  probe->node_id = g_strdup (peer->node_id);
  probe->address = g_strdup (peer->address);
  probe->deadline = deadline_new (self->cancellable, health_timeout_ms (self));
  probe->generation = self->generation;
  probe->verify = peer_ref (peer);
  exo_resource_initialize_async (handle, probe->deadline->cancellable, probe_cb, probe);
}

static void
reconcile_discovery (ExoClusterNode *self)
{
  g_autoptr(GVariant) list = NULL;
  GVariantIter iter;
  const char *node_id, *address, *iface;
  GVariant *caps;
  gint64 now = g_get_monotonic_time ();

  if (self->discovery == NULL)
    return;
  list = exo_discovery_list_peers (self->discovery);
  if (list == NULL || !g_variant_is_of_type (list, G_VARIANT_TYPE ("a(sssa{sv})")))
    return;

  g_variant_iter_init (&iter, list);
  while (g_variant_iter_next (&iter, "(&s&s&s@a{sv})", &node_id, &address, &iface, &caps))
    {
      Peer *peer = g_hash_table_lookup (self->peers, node_id);
      FailedPeer *failed = g_hash_table_lookup (self->failed, node_id);

      if (g_strcmp0 (node_id, self->node_id) == 0)
        ;
      else if (peer != NULL)
        {
          if (g_strcmp0 (peer->address, address) != 0 && peer->fail_error == NULL)
            peer_add (self, node_id, address, caps);
        }
      else if (failed == NULL)
        peer_add (self, node_id, address, caps);
      else if (!failed->probing &&
               now - failed->last_probe_us >= (gint64) self->topology_interval_ms * 1000 / 2)
        probe_failed_peer (self, failed, address, caps);
      g_variant_unref (caps);
    }
}

static gboolean
topology_tick (gpointer user_data)
{
  ExoClusterNode *self = user_data;

  reconcile_discovery (self);
  collect_run (self);
  return G_SOURCE_CONTINUE;
}

/* --- requests ------------------------------------------------------------ */

typedef struct {
  ExoClusterNode *self;          /* not a reference: the table is the node's */
  char           *id;
  gint64          touched_us;
  GArray         *tokens;        /* gint32: sampled here (last shard) */
  ExoGenerationParams *params;   /* the first ones seen; NULL until then */

  /* the API node */
  gboolean        is_api;
  GTask          *task;
  ExoTokenFunc    on_token;
  gpointer        token_data;
  gsize           delivered;
  GString        *text;
  GPtrArray      *ring;          /* NodeShardAssignment: the ring at the start */
  GSource        *timeout;       /* no progress for request-timeout-ms (moved, not remade) */
  guint           cancel_idle;
  GCancellable   *cancellable;
  gulong          cancel_handler;
  gint64          started_us;
  gint64          last_progress_us;
} Request;

static void
request_free (Request *req)
{
  if (req->timeout != NULL)
    {
      g_source_destroy (req->timeout);
      g_clear_pointer (&req->timeout, g_source_unref);
    }
  g_clear_handle_id (&req->cancel_idle, g_source_remove);
  if (req->cancellable != NULL)
    {
      g_cancellable_disconnect (req->cancellable, req->cancel_handler);
      g_object_unref (req->cancellable);
    }
  if (req->task != NULL)
    {
      /* Never leave a caller without an answer. */
      if (!g_task_had_error (req->task) && !g_task_get_completed (req->task))
        g_task_return_new_error (req->task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED,
                                 "request %s: dropped", req->id);
      g_object_unref (req->task);
    }
  g_clear_pointer (&req->tokens, g_array_unref);
  g_clear_pointer (&req->params, exo_generation_params_free);
  g_clear_pointer (&req->ring, g_ptr_array_unref);
  if (req->text != NULL)
    g_string_free (req->text, TRUE);
  g_free (req->id);
  g_free (req);
}

static Request *
request_lookup (ExoClusterNode *self,
                const char     *id)
{
  return self->requests != NULL && id != NULL ? g_hash_table_lookup (self->requests, id) : NULL;
}

/* --- cancelled requests -------------------------------------------------- */

static gboolean
request_is_cancelled (ExoClusterNode *self,
                      const char     *id)
{
  return id != NULL && g_hash_table_contains (self->cancelled, id);
}

static void
remember_cancelled (ExoClusterNode *self,
                    const char     *id)
{
  char *copy;

  if (id == NULL || g_hash_table_contains (self->cancelled, id))
    return;
  while (self->cancelled_order.length >= MAX_REQUESTS)
    {
      char *oldest = g_queue_pop_head (&self->cancelled_order);

      g_hash_table_remove (self->cancelled, oldest);
      g_free (oldest);
    }
  copy = g_strdup (id);
  g_queue_push_tail (&self->cancelled_order, copy);
  g_hash_table_add (self->cancelled, copy);
}

/* Work of a cancelled request reached this node: it stops here. */
static gboolean
drop_if_cancelled (ExoClusterNode *self,
                   const char     *id)
{
  if (!request_is_cancelled (self, id))
    return FALSE;
  self->cancelled_dropped++;
  return TRUE;
}

typedef struct {
  ExoClusterNode *self;
  Peer           *peer;
} CancelSend;

static void
cancel_sent_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  CancelSend *send = user_data;
  g_autoptr(GError) error = NULL;

  /* Best effort: a peer that misses it drops nothing, and its work ends
   * with the request's tokens at max-tokens or EOS as before. */
  if (!exo_peer_handle_send_cancel_finish (EXO_PEER_HANDLE (source), result, &error) &&
      send->self->running && !is_cancelled (error))
    log_event (send->self, G_LOG_LEVEL_INFO, "telling node %s to cancel a request failed: %s",
               send->peer->node_id, error->message);
  peer_unref (send->peer);
  g_object_unref (send->self);
  g_free (send);
}

/* The API node gives up @req: this node and every other node of its ring
 * drop what of it is still under way. */
static void
request_abandon (ExoClusterNode *self,
                 Request        *req)
{
  remember_cancelled (self, req->id);
  for (guint i = 0; req->ring != NULL && i < req->ring->len; i++)
    {
      NodeShardAssignment *s = g_ptr_array_index (req->ring, i);
      Peer *peer;
      CancelSend *send;

      if (g_strcmp0 (s->node_id, self->node_id) == 0 ||
          (peer = lookup_usable_peer (self, s->node_id)) == NULL)
        continue;
      send = g_new0 (CancelSend, 1);
      send->self = g_object_ref (self);
      send->peer = peer_ref (peer);
      self->cancels_sent++;
      exo_peer_handle_send_cancel_async (EXO_PEER_HANDLE (peer->handle), req->id,
                                         self->cancellable, cancel_sent_cb, send);
    }
}

/* The entry the last shard keeps its tokens in; NULL over the limit. */
static Request *
request_ensure (ExoClusterNode *self,
                const char     *id)
{
  Request *req = request_lookup (self, id);

  if (req == NULL)
    {
      if (g_hash_table_size (self->requests) >= MAX_REQUESTS)
        return NULL;
      req = g_new0 (Request, 1);
      req->self = self;
      req->id = g_strdup (id);
      req->tokens = g_array_new (FALSE, FALSE, sizeof (gint32));
      g_hash_table_insert (self->requests, req->id, req);
    }
  req->touched_us = g_get_monotonic_time ();
  return req;
}

/* The parameters @req is generated with: the first ones seen for it
 * (@params, NULL for the defaults, when it had none yet). */
static const ExoGenerationParams *
request_params (Request                   *req,
                const ExoGenerationParams *params)
{
  if (req->params == NULL)
    req->params = params != NULL ? exo_generation_params_copy (params)
                                 : exo_generation_params_new ();
  return req->params;
}

/* What goes on with the work of @request_id that came with @params: the
 * parameters of its record if this node keeps one, else @params. */
static const ExoGenerationParams *
params_to_pass_on (ExoClusterNode            *self,
                   const char                *request_id,
                   const ExoGenerationParams *params)
{
  Request *req = request_lookup (self, request_id);

  return req != NULL ? request_params (req, params) : params;
}

/* Tokens generated at most for a request with @params. */
static guint
max_tokens_for (ExoClusterNode            *self,
                const ExoGenerationParams *params)
{
  if (params->max_tokens > 0)
    return MIN (params->max_tokens, self->max_tokens);
  return self->max_tokens;
}

/* Parameters a caller (another server plugin, a test) passes in: what the
 * peer RPC accepts.  NULL is the defaults. */
static gboolean
check_params (const ExoGenerationParams  *params,
              GError                    **error)
{
  if (params == NULL)
    return TRUE;
  if (!(params->temperature >= 0 && params->temperature <= 2))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "temperature %g is out of range (0 to 2)", params->temperature);
      return FALSE;
    }
  if (!(params->top_p > 0 && params->top_p <= 1))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "top_p %g is out of range (more than 0, at most 1)", params->top_p);
      return FALSE;
    }
  return TRUE;
}

/* Takes @req out of the table, then answers its caller. */
static void
request_complete (ExoClusterNode *self,
                  Request        *req,
                  GError         *error)
{
  GTask *task = g_steal_pointer (&req->task);

  g_hash_table_steal (self->requests, req->id);
  if (error != NULL && req->is_api && self->running)
    request_abandon (self, req);
  if (task != NULL)
    {
      if (error != NULL)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            {
              self->failed_requests++;
              log_event (self, G_LOG_LEVEL_MESSAGE, "%s", error->message);
            }
          g_task_return_error (task, error);
        }
      else
        g_task_return_pointer (task, g_strdup (req->text->str), g_free);
      g_object_unref (task);
    }
  else if (error != NULL)
    g_error_free (error);
  request_free (req);
}

static void
request_fail (ExoClusterNode *self,
              Request        *req,
              GError         *error)
{
  request_complete (self, req, error);
}

static gboolean
ready_time_dispatch (GSource     *source,
                     GSourceFunc  callback,
                     gpointer     user_data)
{
  return callback (user_data);
}

/* A source that fires at the ready time it is given: moved at each token
 * instead of a timer made and destroyed per token. */
static GSourceFuncs ready_time_funcs = {
  .dispatch = ready_time_dispatch,
};

static gboolean
request_timeout_cb (gpointer user_data)
{
  Request *req = user_data;
  ExoClusterNode *self = req->self;
  g_autofree char *ring = node_partition_shards_to_string (req->ring);

  g_clear_pointer (&req->timeout, g_source_unref);
  request_fail (self, req,
                g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                             "request %s: no progress for %u ms (ring %s); giving up",
                             req->id, self->request_timeout_ms, ring));
  return G_SOURCE_REMOVE;
}

static void
request_progress (ExoClusterNode *self,
                  Request        *req)
{
  req->last_progress_us = g_get_monotonic_time ();
  req->touched_us = req->last_progress_us;
  if (self->request_timeout_ms == 0)
    return;
  if (req->timeout == NULL)
    {
      req->timeout = g_source_new (&ready_time_funcs, sizeof (GSource));
      g_source_set_callback (req->timeout, request_timeout_cb, req, NULL);
      g_source_set_static_name (req->timeout, "[exo-node] request timeout");
      g_source_attach (req->timeout, g_main_context_get_thread_default ());
    }
  g_source_set_ready_time (req->timeout, req->last_progress_us +
                                         (gint64) self->request_timeout_ms * 1000);
}

static gboolean
request_cancel_idle (gpointer user_data)
{
  Request *req = user_data;

  req->cancel_idle = 0;
  request_fail (req->self, req,
                g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, "request %s: cancelled", req->id));
  return G_SOURCE_REMOVE;
}

static void
request_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  Request *req = user_data;

  /* Not from within the cancellable's emission: from an idle. */
  if (req->cancel_idle == 0)
    req->cancel_idle = g_idle_add (request_cancel_idle, req);
}

static NodeShardAssignment *
ring_find (GPtrArray  *ring,
           const char *node_id)
{
  gint i = node_partition_find_shard (ring, node_id);

  return i >= 0 ? g_ptr_array_index (ring, i) : NULL;
}

/* A node of the ring is gone: every request of ours that needs it fails. */
static void
fail_requests_using (ExoClusterNode *self,
                     const char     *node_id,
                     const GError   *error)
{
  g_autoptr(GPtrArray) doomed = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  if (self->requests == NULL)
    return;
  g_hash_table_iter_init (&iter, self->requests);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Request *req = value;

      if (req->is_api && req->task != NULL && ring_find (req->ring, node_id) != NULL)
        g_ptr_array_add (doomed, req);
    }
  for (guint i = 0; i < doomed->len; i++)
    {
      Request *req = g_ptr_array_index (doomed, i);
      NodeShardAssignment *s = ring_find (req->ring, node_id);

      request_fail (self, req,
                    g_error_new (G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE,
                                 "request %s: node %s (next hop for layers %u-%u) is unreachable: %s",
                                 req->id, node_id, s->start_layer, s->end_layer,
                                 error != NULL ? error->message : "lost"));
    }
}

static void
requests_gc (ExoClusterNode *self,
             gint64          now)
{
  g_autoptr(GPtrArray) stale = g_ptr_array_new ();
  gint64 limit = (gint64) MAX (self->request_timeout_ms, 1000u) * 2 * 1000;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->requests);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Request *req = value;

      if (!req->is_api && now - req->touched_us > limit)
        g_ptr_array_add (stale, req);
    }
  for (guint i = 0; i < stale->len; i++)
    {
      Request *req = g_ptr_array_index (stale, i);

      g_hash_table_remove (self->requests, req->id);
    }
}

/* --- the ring at work ---------------------------------------------------- */

static ExoShard *
shard_for (ExoClusterNode            *self,
           const NodeShardAssignment *s)
{
  return exo_shard_new (self->model_id, s->start_layer, s->end_layer, s->n_layers);
}

/* Something failed here while working on @request_id. */
static void
local_failure (ExoClusterNode *self,
               const char     *request_id,
               const char     *what,
               const GError   *error)
{
  Request *req;

  if (!self->running || is_cancelled (error))
    return;
  req = request_lookup (self, request_id);
  if (req != NULL && req->is_api && req->task != NULL)
    request_fail (self, req,
                  g_error_new (error->domain, error->code, "request %s: %s on node %s failed: %s",
                               request_id, what, self->node_id, error->message));
  else
    {
      self->dropped_messages++;
      log_event (self, G_LOG_LEVEL_WARNING, "request %s: %s failed: %s", request_id, what,
                 error->message);
    }
}

typedef struct {
  ExoClusterNode      *self;
  char                *request_id;
  ExoShard            *shard;
  ExoGenerationParams *params;     /* those the work came with; NULL: none */
  guint                generation;
} Work;

static Work *
work_new (ExoClusterNode            *self,
          const char                *request_id,
          ExoShard                  *shard,
          const ExoGenerationParams *params)
{
  Work *work = g_new0 (Work, 1);

  work->self = g_object_ref (self);
  work->request_id = g_strdup (request_id);
  work->shard = shard;
  work->params = params != NULL ? exo_generation_params_copy (params) : NULL;
  work->generation = self->generation;
  return work;
}

static void
work_free (Work *work)
{
  g_object_unref (work->self);
  g_free (work->request_id);
  exo_shard_free (work->shard);
  g_clear_pointer (&work->params, exo_generation_params_free);
  g_free (work);
}

static gboolean
work_is_current (Work *work)
{
  return work->self->running && work->generation == work->self->generation;
}

typedef struct {
  ExoClusterNode *self;
  char           *request_id;
  char           *target_id;
  char           *what;
  guint           start_layer;
  guint           end_layer;
  guint           generation;
} Hop;

static void
hop_free (Hop *hop)
{
  g_object_unref (hop->self);
  g_free (hop->request_id);
  g_free (hop->target_id);
  g_free (hop->what);
  g_free (hop);
}

static void
hop_failed (ExoClusterNode *self,
            const char     *request_id,
            const char     *target_id,
            guint           start_layer,
            guint           end_layer,
            const char     *what,
            const GError   *error)
{
  Peer *peer;
  Request *req;
  g_autoptr(GError) failure = NULL;

  if (!self->running || is_cancelled (error))
    return;
  self->hop_failures++;

  if (exo_error_is_connection_error (error))
    failure = g_error_new (G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE,
                           "request %s: node %s (next hop for layers %u-%u) is unreachable: %s",
                           request_id, target_id, start_layer, end_layer, error->message);
  else
    failure = g_error_new (error->domain, error->code,
                           "request %s: node %s (next hop for layers %u-%u) refused the %s: %s",
                           request_id, target_id, start_layer, end_layer, what, error->message);

  /* The call was retried by the peer handle already: a connection error
   * means the peer is gone. */
  peer = g_hash_table_lookup (self->peers, target_id);
  if (peer != NULL && exo_error_is_connection_error (error))
    peer_set_failed (self, peer, error);

  req = request_lookup (self, request_id);
  if (req != NULL && req->is_api && req->task != NULL)
    request_fail (self, req, g_steal_pointer (&failure));
  else
    log_event (self, G_LOG_LEVEL_WARNING, "%s", failure->message);
}

static void
hop_cb (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  Hop *hop = user_data;
  ExoPeerHandle *handle = EXO_PEER_HANDLE (source);
  g_autoptr(GError) error = NULL;
  gboolean ok;

  if (g_str_equal (hop->what, "prompt"))
    ok = exo_peer_handle_send_prompt_finish (handle, result, &error);
  else
    ok = exo_peer_handle_send_tensor_finish (handle, result, &error);

  if (!ok && hop->self->running && hop->generation == hop->self->generation)
    hop_failed (hop->self, hop->request_id, hop->target_id, hop->start_layer, hop->end_layer,
                hop->what, error);
  hop_free (hop);
}

static void run_infer (ExoClusterNode *self, const char *request_id, ExoShard *shard,
                       ExoTensor *input, const ExoGenerationParams *params);

/* Sends @tensor (or, with @prompt, the prompt) with @params to the node of
 * @target. */
static void
send_to (ExoClusterNode            *self,
         const char                *request_id,
         const NodeShardAssignment *target,
         ExoTensor                 *tensor,
         const char                *prompt,
         const ExoGenerationParams *params)
{
  const char *what = prompt != NULL ? "prompt" : "tensor";
  Peer *peer = lookup_usable_peer (self, target->node_id);
  g_autoptr(ExoShard) shard = shard_for (self, target);
  Hop *hop;

  if (peer == NULL)
    {
      g_autoptr(GError) error = g_error_new (G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE,
                                             "no usable connection to it");
      hop_failed (self, request_id, target->node_id, target->start_layer, target->end_layer,
                  what, error);
      return;
    }

  hop = g_new0 (Hop, 1);
  hop->self = g_object_ref (self);
  hop->request_id = g_strdup (request_id);
  hop->target_id = g_strdup (target->node_id);
  hop->what = g_strdup (what);
  hop->start_layer = target->start_layer;
  hop->end_layer = target->end_layer;
  hop->generation = self->generation;
  if (prompt != NULL)
    exo_peer_handle_send_prompt_async (EXO_PEER_HANDLE (peer->handle), shard, prompt, request_id,
                                       params, self->cancellable, hop_cb, hop);
  else
    exo_peer_handle_send_tensor_async (EXO_PEER_HANDLE (peer->handle), shard, tensor, request_id,
                                       params, self->cancellable, hop_cb, hop);
}

/* Passes @tensor (and @params) to the node after @from_index in the ring
 * (the last shard's token goes back to the first). */
static void
forward (ExoClusterNode            *self,
         const char                *request_id,
         gint                       from_index,
         ExoTensor                 *tensor,
         const ExoGenerationParams *params)
{
  NodeShardAssignment *next;

  if (self->shards == NULL || self->shards->len == 0)
    {
      g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                                                     "the ring is empty");
      local_failure (self, request_id, "forwarding", error);
      return;
    }
  next = g_ptr_array_index (self->shards, from_index < 0 ? 0 : (guint) (from_index + 1) % self->shards->len);
  if (g_strcmp0 (next->node_id, self->node_id) == 0)
    run_infer (self, request_id, shard_for (self, next), tensor, params);
  else
    send_to (self, request_id, next, tensor, NULL, params);
}

typedef struct {
  ExoClusterNode *self;
  Peer           *peer;
} ResultSend;

static void
result_sent_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  ResultSend *send = user_data;
  g_autoptr(GError) error = NULL;

  if (!exo_peer_handle_send_result_finish (EXO_PEER_HANDLE (source), result, &error) &&
      send->self->running && !is_cancelled (error))
    {
      send->self->hop_failures++;
      if (send->peer->node == send->self && exo_error_is_connection_error (error))
        peer_note_failure (send->self, send->peer, error);
    }
  peer_unref (send->peer);
  g_object_unref (send->self);
  g_free (send);
}

static void handle_result (ExoClusterNode *self, const char *request_id, const gint32 *tokens,
                           gsize n_tokens, gboolean is_finished);

/* exo's broadcast_result: every peer, and ourselves. */
static void
broadcast_result (ExoClusterNode *self,
                  const char     *request_id,
                  const gint32   *tokens,
                  gsize           n_tokens,
                  gboolean        is_finished)
{
  g_autoptr(GPtrArray) peers = g_ptr_array_new_with_free_func ((GDestroyNotify) peer_unref);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (peer_is_usable (value))
      g_ptr_array_add (peers, peer_ref (value));
  for (guint i = 0; i < peers->len; i++)
    {
      Peer *peer = g_ptr_array_index (peers, i);
      ResultSend *send = g_new0 (ResultSend, 1);

      send->self = g_object_ref (self);
      send->peer = peer_ref (peer);
      exo_peer_handle_send_result_async (EXO_PEER_HANDLE (peer->handle), request_id, tokens,
                                         n_tokens, is_finished, self->cancellable,
                                         result_sent_cb, send);
    }
  handle_result (self, request_id, tokens, n_tokens, is_finished);
}

static gint32
tensor_first_int (ExoTensor *x)
{
  const void *data = exo_tensor_peek_data (x);

  if (exo_tensor_get_n_elements (x) == 0)
    return -1;
  switch (exo_tensor_get_dtype (x))
    {
    case EXO_DTYPE_INT32:
      return ((const gint32 *) data)[0];
    case EXO_DTYPE_INT64:
      return (gint32) ((const gint64 *) data)[0];
    case EXO_DTYPE_FLOAT32:
      return (gint32) ((const float *) data)[0];
    case EXO_DTYPE_FLOAT16:
    default:
      return -1;
    }
}

/* exo's process_inference_result; @params came with the work. */
static void
process_inference_result (ExoClusterNode            *self,
                          const char                *request_id,
                          const ExoShard            *shard,
                          ExoTensor                 *output,
                          const ExoGenerationParams *params)
{
  gint index = node_partition_find_shard (self->shards, self->node_id);

  if (exo_shard_is_last_layer (shard))
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(ExoTensor) token = NULL;
      g_autoptr(GArray) tokens = NULL;
      g_autoptr(ExoGenerationParams) used = NULL;
      Request *req;
      gint32 value;
      gboolean finished;

      req = request_ensure (self, request_id);
      if (req == NULL)
        {
          self->dropped_messages++;
          return;
        }
      /* The first parameters seen for the request rule, whatever later
       * tensors say.  TODO: the seed (used->seed, used->has_seed) goes to
       * the engine when exo_inference_engine_sample () takes one. */
      used = exo_generation_params_copy (request_params (req, params));
      token = exo_inference_engine_sample (self->engine, output, used->temperature, used->top_p,
                                           &error);
      if (token == NULL)
        {
          gboolean drop = !req->is_api && req->tokens->len == 0;

          local_failure (self, request_id, "sampling", error);
          /* The record was made for this token: it ends here. */
          if (drop)
            g_hash_table_remove (self->requests, request_id);
          return;
        }
      value = tensor_first_int (token);
      finished = value == exo_inference_engine_get_eos_token (self->engine);
      if (!finished)
        {
          g_array_append_val (req->tokens, value);
          self->tokens_generated++;
        }
      if (req->tokens->len >= max_tokens_for (self, used))
        finished = TRUE;

      tokens = g_array_ref (req->tokens);
      if (finished && !req->is_api)
        g_hash_table_remove (self->requests, request_id);
      if (!finished)
        forward (self, request_id, index, token, used);
      broadcast_result (self, request_id, (const gint32 *) (void *) tokens->data, tokens->len, finished);
    }
  else
    forward (self, request_id, index, output, params_to_pass_on (self, request_id, params));
}

static void
infer_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Work *work = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoTensor) output = exo_inference_engine_infer_tensor_finish (EXO_INFERENCE_ENGINE (source),
                                                                          result, &error);

  if (work_is_current (work))
    {
      if (output == NULL)
        local_failure (work->self, work->request_id, "inference", error);
      else
        {
          Request *req = request_lookup (work->self, work->request_id);

          work->self->layers_computed++;
          if (req != NULL)
            req->touched_us = g_get_monotonic_time ();
          if (!drop_if_cancelled (work->self, work->request_id))
            process_inference_result (work->self, work->request_id, work->shard, output,
                                      work->params);
        }
    }
  work_free (work);
}

/* Runs our layers (@shard, taken) on @input of a request with @params. */
static void
run_infer (ExoClusterNode            *self,
           const char                *request_id,
           ExoShard                  *shard,
           ExoTensor                 *input,
           const ExoGenerationParams *params)
{
  Work *work = work_new (self, request_id, shard, params);

  exo_inference_engine_infer_tensor_async (self->engine, request_id, shard, input,
                                           self->cancellable, infer_cb, work);
}

static void
encode_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Work *work = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoTensor) tokens = exo_inference_engine_encode_finish (EXO_INFERENCE_ENGINE (source),
                                                                    result, &error);

  if (work_is_current (work))
    {
      if (tokens == NULL)
        local_failure (work->self, work->request_id, "encoding the prompt", error);
      else if (!drop_if_cancelled (work->self, work->request_id))
        run_infer (work->self, work->request_id, g_steal_pointer (&work->shard), tokens,
                   work->params);
    }
  work_free (work);
}

/* exo's process_prompt: the first shard encodes and runs; anyone else
 * forwards the prompt (with @params) to the node of the first shard. */
static void
start_prompt (ExoClusterNode            *self,
              const char                *request_id,
              const char                *prompt,
              const ExoGenerationParams *params)
{
  NodeShardAssignment *first;

  if (drop_if_cancelled (self, request_id))
    return;
  if (self->shards == NULL || self->shards->len == 0)
    {
      g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                                                     "the ring is empty");
      local_failure (self, request_id, "processing the prompt", error);
      return;
    }
  first = g_ptr_array_index (self->shards, 0);
  params = params_to_pass_on (self, request_id, params);
  if (g_strcmp0 (first->node_id, self->node_id) == 0)
    {
      Work *work = work_new (self, request_id, shard_for (self, first), params);

      exo_inference_engine_encode_async (self->engine, work->shard, prompt, self->cancellable,
                                         encode_cb, work);
    }
  else
    send_to (self, request_id, first, NULL, prompt, params);
}

/* exo's on_token: the API node passes new tokens to its caller. */
static void
handle_result (ExoClusterNode *self,
               const char     *request_id,
               const gint32   *tokens,
               gsize           n_tokens,
               gboolean        is_finished)
{
  Request *req = request_lookup (self, request_id);
  g_autofree char *id = NULL;

  if (req == NULL || !req->is_api || req->task == NULL)
    return;
  if (n_tokens <= req->delivered && !is_finished)
    return;

  id = g_strdup (request_id);
  request_progress (self, req);
  if (n_tokens > req->delivered || is_finished)
    {
      gsize n_new = n_tokens > req->delivered ? n_tokens - req->delivered : 0;
      const gint32 *fresh = tokens + req->delivered;
      g_autofree char *text = NULL;

      if (n_new > 0)
        {
          g_autoptr(ExoTensor) t = exo_tensor_new_int32 (fresh, n_new);
          g_autoptr(ExoShard) shard = exo_shard_new (self->model_id, 0, self->n_layers - 1,
                                                     self->n_layers);
          g_autoptr(GError) error = NULL;

          text = exo_inference_engine_decode (self->engine, shard, t, &error);
          if (text == NULL)
            {
              request_fail (self, req,
                            g_error_new (error->domain, error->code,
                                         "request %s: decoding failed: %s", id, error->message));
              return;
            }
          g_string_append (req->text, text);
          req->delivered = n_tokens;
        }
      if (req->on_token != NULL)
        req->on_token (id, fresh, n_new, text != NULL ? text : "", is_finished, req->token_data);
    }

  /* The callback may have ended the request. */
  req = request_lookup (self, id);
  if (req != NULL && is_finished && req->task != NULL)
    request_complete (self, req, NULL);
}

/* --- ExoNodeRole ----------------------------------------------------------- */

static gboolean
check_running (ExoClusterNode  *self,
               GError         **error)
{
  if (!self->running || !exo_resource_is_usable (EXO_RESOURCE (self)))
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                   "node '%s' is %s", self_id (self),
                   exo_resource_state_to_string (exo_resource_get_state (EXO_RESOURCE (self))));
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_request (ExoClusterNode  *self,
               const ExoShard  *shard,
               const char      *request_id,
               GError         **error)
{
  if (!check_running (self, error))
    return FALSE;
  if (!node_id_is_valid (request_id))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "invalid request id");
      return FALSE;
    }
  if (shard != NULL &&
      (g_strcmp0 (shard->model_id, self->model_id) != 0 || shard->n_layers != self->n_layers))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "shard of model '%s' with %u layers; node %s serves '%s' with %u layers",
                   shard->model_id, shard->n_layers, self->node_id, self->model_id,
                   self->n_layers);
      return FALSE;
    }
  return TRUE;
}

static const char *
node_get_node_id (ExoNodeRole *role)
{
  return EXO_CLUSTER_NODE (role)->node_id;
}

static void
node_process_prompt_async (ExoNodeRole               *role,
                           const ExoShard            *shard,
                           const char                *prompt,
                           const char                *request_id,
                           const ExoGenerationParams *params,
                           GCancellable              *cancellable,
                           GAsyncReadyCallback        callback,
                           gpointer                   user_data)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, node_process_prompt_async);
  if (!check_request (self, shard, request_id, &error) || !check_params (params, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (prompt == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no prompt");
      return;
    }
  g_task_return_boolean (task, TRUE);
  start_prompt (self, request_id, prompt, params);
}

static gboolean
node_boolean_finish (ExoNodeRole   *role,
                     GAsyncResult  *result,
                     GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, role), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
node_process_tensor_async (ExoNodeRole               *role,
                           const ExoShard            *shard,
                           ExoTensor                 *tensor,
                           const char                *request_id,
                           const ExoGenerationParams *params,
                           GCancellable              *cancellable,
                           GAsyncReadyCallback        callback,
                           gpointer                   user_data)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;
  NodeShardAssignment *mine;

  g_task_set_source_tag (task, node_process_tensor_async);
  if (!check_request (self, shard, request_id, &error) || !check_params (params, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (tensor == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no tensor");
      return;
    }
  mine = ring_find (self->shards, self->node_id);
  if (mine == NULL)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                               "node %s holds no layers in its ring", self->node_id);
      return;
    }
  g_task_return_boolean (task, TRUE);
  if (drop_if_cancelled (self, request_id))
    return;
  /* As exo: our own shard, whatever the sender thought it was. */
  run_infer (self, request_id, shard_for (self, mine), tensor, params);
}

static void
node_process_result (ExoNodeRole  *role,
                     const char   *request_id,
                     const gint32 *tokens,
                     gsize         n_tokens,
                     gboolean      is_finished)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);

  if (!self->running || request_id == NULL || (tokens == NULL && n_tokens > 0))
    return;
  handle_result (self, request_id, tokens, n_tokens, is_finished);
}

/* A peer (the API node of @request_id) abandoned it. */
static void
node_cancel_request (ExoNodeRole *role,
                     const char  *request_id)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);
  Request *req;

  if (!self->running || !node_id_is_valid (request_id))
    return;
  self->cancels_received++;
  remember_cancelled (self, request_id);
  req = request_lookup (self, request_id);
  if (req == NULL)
    return;
  if (req->is_api && req->task != NULL)
    request_fail (self, req, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                          "request %s: cancelled by a peer", request_id));
  else if (!req->is_api)
    g_hash_table_remove (self->requests, request_id);   /* the last shard's tokens */
}

static void
node_collect_topology_async (ExoNodeRole         *role,
                             const char *const   *visited,
                             guint                max_depth,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, node_collect_topology_async);
  if (!check_running (self, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  /* Our answer must arrive within the caller's bound: ask further peers
   * for half of it. */
  collect_begin (self, visited, MIN (max_depth, 16u), MAX (self->peer_timeout_ms / 2, 50u), task);
}

static char *
node_collect_topology_finish (ExoNodeRole   *role,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, role), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static char *
node_get_models_json (ExoNodeRole *role)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "object");
  json_builder_add_string_value (builder, "list");
  json_builder_set_member_name (builder, "data");
  json_builder_begin_array (builder);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, self->model_id);
  json_builder_set_member_name (builder, "object");
  json_builder_add_string_value (builder, "model");
  json_builder_set_member_name (builder, "owned_by");
  json_builder_add_string_value (builder, "exo");
  json_builder_set_member_name (builder, "n_layers");
  json_builder_add_int_value (builder, self->n_layers);
  json_builder_set_member_name (builder, "ready");
  json_builder_add_boolean_value (builder, self->running);
  json_builder_end_object (builder);
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, NULL);
}

static char *
node_get_topology_json (ExoNodeRole *role)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);

  if (self->topology_json == NULL)
    return build_topology_json (self);
  return g_strdup (self->topology_json);
}

static void
node_chat_async (ExoNodeRole               *role,
                 const char                *model,
                 const char                *prompt,
                 const char                *request_id,
                 const ExoGenerationParams *params,
                 ExoTokenFunc               on_token,
                 gpointer                   token_data,
                 GCancellable              *cancellable,
                 GAsyncReadyCallback        callback,
                 gpointer                   user_data)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (role);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autofree char *id = NULL;
  GError *error = NULL;
  Request *req;

  g_task_set_source_tag (task, node_chat_async);
  if (!check_running (self, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (model != NULL && *model != '\0' && g_strcmp0 (model, self->model_id) != 0)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                               "model '%s' is not served here; this cluster serves '%s'",
                               model, self->model_id);
      return;
    }
  if (prompt == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no prompt");
      return;
    }
  if (!check_params (params, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  id = request_id != NULL ? g_strdup (request_id) : g_uuid_string_random ();
  if (!node_id_is_valid (id))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "invalid request id");
      return;
    }
  if (request_lookup (self, id) != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_EXISTS,
                               "request %s is already in progress", id);
      return;
    }
  if (g_hash_table_size (self->requests) >= MAX_REQUESTS)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_BUSY,
                               "too many requests in progress (limit %d)", MAX_REQUESTS);
      return;
    }
  if (self->shards == NULL || self->shards->len == 0)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                               "node %s has no ring to run on", self->node_id);
      return;
    }

  self->requests_total++;
  req = request_ensure (self, id);
  req->is_api = TRUE;
  request_params (req, params);
  req->task = g_steal_pointer (&task);
  req->on_token = on_token;
  req->token_data = token_data;
  req->text = g_string_new (NULL);
  req->ring = copy_shards (self->shards);
  req->started_us = g_get_monotonic_time ();
  request_progress (self, req);
  if (cancellable != NULL)
    {
      req->cancellable = g_object_ref (cancellable);
      req->cancel_handler = g_cancellable_connect (cancellable, G_CALLBACK (request_cancelled),
                                                   req, NULL);
    }
  start_prompt (self, id, prompt, req->params);
}

static char *
node_chat_finish (ExoNodeRole   *role,
                  GAsyncResult  *result,
                  GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, role), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
exo_cluster_node_role_init (ExoNodeRoleInterface *iface)
{
  iface->get_node_id = node_get_node_id;
  iface->process_prompt_async = node_process_prompt_async;
  iface->process_prompt_finish = node_boolean_finish;
  iface->process_tensor_async = node_process_tensor_async;
  iface->process_tensor_finish = node_boolean_finish;
  iface->process_result = node_process_result;
  iface->collect_topology_async = node_collect_topology_async;
  iface->collect_topology_finish = node_collect_topology_finish;
  iface->get_models_json = node_get_models_json;
  iface->get_topology_json = node_get_topology_json;
  iface->chat_async = node_chat_async;
  iface->chat_finish = node_chat_finish;
  iface->cancel_request = node_cancel_request;
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

static NodeCaps *
own_caps (ExoClusterNode *self)
{
  g_autoptr(GVariant) host = exo_device_capabilities_probe ();
  const char *model = "Linux", *chip = "unknown";
  guint64 memory = 0;

  g_variant_lookup (host, "model", "&s", &model);
  g_variant_lookup (host, "chip", "&s", &chip);
  g_variant_lookup (host, "memory", "t", &memory);
  return node_caps_new (model, chip, self->device_memory_mib > 0 ? self->device_memory_mib : memory);
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
  self->collecting = FALSE;
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
  self->server = g_steal_pointer (&server);
  self->discovery = discovery != NULL ? EXO_DISCOVERY (g_steal_pointer (&discovery)) : NULL;

  if (!resolve_node_id (self, &error))
    {
      drop_running_state (self);
      g_task_return_error (task, error);
      return;
    }

  self->caps = own_caps (self);
  self->cancellable = g_cancellable_new ();
  self->peers = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) peer_unref);
  self->failed = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify) failed_peer_free);
  self->requests = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) request_free);
  self->topology = node_topology_new ();
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
  g_autoptr(GPtrArray) peers = NULL;
  g_autoptr(GPtrArray) api = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  self->running = FALSE;
  self->generation++;
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);

  if (self->requests != NULL)
    {
      g_hash_table_iter_init (&iter, self->requests);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (((Request *) value)->task != NULL)
          g_ptr_array_add (api, value);
      for (guint i = 0; i < api->len; i++)
        {
          Request *req = g_ptr_array_index (api, i);

          request_fail (self, req,
                        g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED,
                                     "request %s: node %s is shutting down", req->id,
                                     self->node_id));
        }
      g_clear_pointer (&self->requests, g_hash_table_unref);
    }

  if (self->peers != NULL)
    {
      peers = g_ptr_array_new_with_free_func ((GDestroyNotify) peer_unref);
      g_hash_table_iter_init (&iter, self->peers);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        g_ptr_array_add (peers, peer_ref (value));
      for (guint i = 0; i < peers->len; i++)
        peer_remove (self, g_ptr_array_index (peers, i));
      g_clear_pointer (&self->peers, g_hash_table_unref);
    }

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
  ExoClusterNode *self = EXO_CLUSTER_NODE (resource);
  NodeShardAssignment *mine = ring_find (self->shards, self->node_id);
  guint usable = 0, in_flight = 0;
  GHashTableIter iter;
  gpointer value;

  EXO_RESOURCE_CLASS (exo_cluster_node_parent_class)->collect_metrics (resource, metrics);

  if (self->peers != NULL)
    {
      g_hash_table_iter_init (&iter, self->peers);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (peer_is_usable (value))
          usable++;
    }
  if (self->requests != NULL)
    {
      g_hash_table_iter_init (&iter, self->requests);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (((Request *) value)->task != NULL)
          in_flight++;
    }

  g_variant_dict_insert (metrics, "node-id", "s", self->node_id != NULL ? self->node_id : "");
  g_variant_dict_insert (metrics, "model-id", "s", self->model_id);
  g_variant_dict_insert (metrics, "n-layers", "u", self->n_layers);
  g_variant_dict_insert (metrics, "memory-mib", "t", self->caps != NULL ? self->caps->memory : 0);
  g_variant_dict_insert (metrics, "requests", "t", self->requests_total);
  g_variant_dict_insert (metrics, "requests-in-flight", "u", in_flight);
  g_variant_dict_insert (metrics, "tokens-generated", "t", self->tokens_generated);
  g_variant_dict_insert (metrics, "layers-computed", "t", self->layers_computed);
  g_variant_dict_insert (metrics, "shard-start", "i", mine != NULL ? (gint32) mine->start_layer : -1);
  g_variant_dict_insert (metrics, "shard-end", "i", mine != NULL ? (gint32) mine->end_layer : -1);
  g_variant_dict_insert (metrics, "ring-size", "u", self->shards != NULL ? self->shards->len : 0);
  g_variant_dict_insert (metrics, "peers", "u", usable);
  g_variant_dict_insert (metrics, "peers-known", "u", self->peers != NULL ? g_hash_table_size (self->peers) : 0);
  g_variant_dict_insert (metrics, "peers-failed", "t", self->peers_failed);
  g_variant_dict_insert (metrics, "peers-joined", "t", self->peers_joined);
  g_variant_dict_insert (metrics, "last-failed-peer", "s",
                         self->last_failed_peer != NULL ? self->last_failed_peer : "");
  g_variant_dict_insert (metrics, "last-failure-silence-ms", "x", self->last_failure_detect_ms);
  g_variant_dict_insert (metrics, "topology-version", "t", self->topology_version);
  g_variant_dict_insert (metrics, "topology-errors", "t", self->topology_errors);
  g_variant_dict_insert (metrics, "failed-requests", "t", self->failed_requests);
  g_variant_dict_insert (metrics, "hop-failures", "t", self->hop_failures);
  g_variant_dict_insert (metrics, "dropped-messages", "t", self->dropped_messages);
  g_variant_dict_insert (metrics, "cancels-sent", "t", self->cancels_sent);
  g_variant_dict_insert (metrics, "cancels-received", "t", self->cancels_received);
  g_variant_dict_insert (metrics, "cancelled-work-dropped", "t", self->cancelled_dropped);
}

/* --- GObject ------------------------------------------------------------- */

static void
exo_cluster_node_finalize (GObject *object)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (object);

  g_assert (self->cleanup_task == NULL);
  drop_running_state (self);
  g_clear_pointer (&self->requests, g_hash_table_unref);
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
      g_value_take_string (value, node_get_topology_json (EXO_NODE_ROLE (self)));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static gboolean
set_string (char       **field,
            const GValue *value)
{
  const char *s = g_value_get_string (value);

  if (g_strcmp0 (*field, s) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (s);
  return TRUE;
}

static gboolean
set_uint (guint        *field,
          const GValue *value)
{
  guint v = g_value_get_uint (value);

  if (*field == v)
    return FALSE;
  *field = v;
  return TRUE;
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
      changed = set_string (&self->engine_id, value);
      break;
    case PROP_SERVER:
      changed = set_string (&self->server_id, value);
      break;
    case PROP_DISCOVERY:
      changed = set_string (&self->discovery_id, value);
      break;
    case PROP_NODE_ID:
      changed = set_string (&self->node_id_setting, value);
      break;
    case PROP_MODEL_ID:
      changed = set_string (&self->model_id, value);
      if (self->model_id == NULL)
        self->model_id = g_strdup ("dummy");
      break;
    case PROP_N_LAYERS:
      changed = set_uint (&self->n_layers, value);
      break;
    case PROP_TOPOLOGY_INTERVAL_MS:
      changed = set_uint (&self->topology_interval_ms, value);
      break;
    case PROP_TOPOLOGY_MAX_DEPTH:
      changed = set_uint (&self->topology_max_depth, value);
      break;
    case PROP_PEER_TIMEOUT_MS:
      changed = set_uint (&self->peer_timeout_ms, value);
      break;
    case PROP_REQUEST_TIMEOUT_MS:
      changed = set_uint (&self->request_timeout_ms, value);
      break;
    case PROP_MAX_TOKENS:
      changed = set_uint (&self->max_tokens, value);
      break;
    case PROP_PEER_HEALTH_INTERVAL_MS:
      changed = set_uint (&self->peer_health_interval_ms, value);
      break;
    case PROP_PEER_FAILURE_THRESHOLD:
      changed = set_uint (&self->peer_failure_threshold, value);
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
   * environment variable `EXO_NODE_ID`, else a random UUID made once per
   * process (exo_node_id_default(), as the discovery does).  Must equal the
   * discovery's id.
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
