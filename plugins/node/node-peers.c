/* node-peers.c: the node's peers, their health, and the sync with
 * discovery.
 *
 * Owns the peer table (self->peers: node id → Peer) and the failed peers
 * (self->failed: node id → FailedPeer):
 *
 * - Found: discovery's peer-found, and reconcile_discovery() (at
 *   initialize, then at every topology tick) for what discovery lists that
 *   we do not have, make a peer handle (`ExoHttpPeer`, id `peer-<node id>`,
 *   auto-recover off) and add it to the node's group, which starts it (we
 *   do while the group is not up).  A handle of that id left in the group
 *   by an earlier run is removed first (PendingAdd).  A peer found at a new
 *   address starts over.
 * - Health: every peer-health-interval-ms health_tick() checks each usable
 *   handle, bounded by MIN (peer-timeout-ms, peer-health-interval-ms).
 *   After peer-failure-threshold failures in a row, at once on a
 *   definitive error (connection refused, no route), or when a new handle
 *   is not ready within threshold × interval + peer-timeout-ms, the peer
 *   is failed.  A handle in `error` is confirmed first by a probe on a
 *   connection of its own (peer_verify()).  health_tick() also drops the
 *   stale records of other nodes' requests (requests_gc()).
 * - Failed: peer_set_failed() only marks the peer; the reaper, an idle at
 *   G_PRIORITY_HIGH, removes it, so no peer is removed from within a
 *   signal emission of its handle or of the group.  The reaper fails the
 *   requests that need it, recomputes the ring and moves the peer to
 *   self->failed.  A failed peer that discovery still lists is probed at
 *   the topology ticks (probe_failed_peer()) and rejoins when it answers.
 * - Lost: discovery's peer-lost removes the peer at once and fails the
 *   requests that need it.
 * - Removed: peer_remove() takes the handle out of the group (or cleans it
 *   up when the group does not hold it); do_cleanup completes when these
 *   are done (pending_removals, cleanup_task, peer_removed_cb()).
 *
 * Rules: the node's main context only; no threads, no locks.  A Peer is
 * reference counted; peer->node is NULL once it is out of the table, so
 * whatever holds a Peer checks `peer->node == self` before it touches the
 * node through it, and loops that may remove peers collect them first,
 * with a reference each.  Calls started in a run of the node (HealthCall,
 * Probe, PendingAdd) hold a reference on the node and the generation they
 * started in; their callbacks act only while `self->running &&
 * generation == self->generation`.  The handlers of peer-found, peer-lost
 * and a handle's state-changed run within those emissions; what they call
 * (ring_recompute() emits topology-changed; failing a request answers its
 * caller, who may call back into the node) must not hold table iterators.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "node-private.h"

/* --- peers --------------------------------------------------------------- */

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

/* A peer failed here that discovery may still list: probed until it
 * answers (or discovery loses it). */
struct _FailedPeer
{
  char     *node_id;
  char     *address;
  GVariant *caps;
  gint64    failed_us;
  gint64    last_probe_us;
  gboolean  probing;
};

Peer *
peer_ref (Peer *peer)
{
  peer->ref++;
  return peer;
}

void
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
  g_free (peer->warned_digest);
  g_free (peer);
}

void
failed_peer_free (FailedPeer *failed)
{
  g_free (failed->node_id);
  g_free (failed->address);
  g_clear_pointer (&failed->caps, g_variant_unref);
  g_free (failed);
}

gboolean
peer_is_usable (Peer *peer)
{
  return peer->handle != NULL && peer->fail_error == NULL &&
         exo_resource_is_usable (peer->handle);
}

Peer *
lookup_usable_peer (ExoClusterNode *self,
                    const char     *node_id)
{
  Peer *peer = self->peers != NULL ? g_hash_table_lookup (self->peers, node_id) : NULL;

  return peer != NULL && peer_is_usable (peer) ? peer : NULL;
}

static void schedule_reap (ExoClusterNode *self);
static void peer_verify (ExoClusterNode *self, Peer *peer);

/* Marks @peer to be failed; the reaper removes it outside of any signal
 * emission.  Failures counted by the caller. */
void
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
void
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

void
peers_remove_all (ExoClusterNode *self)
{
  g_autoptr(GPtrArray) peers = NULL;
  GHashTableIter iter;
  gpointer value;

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
}

GType
node_get_peer_type (ExoClusterNode *self,
                    GError        **error)
{
  if (self->peer_type == 0)
    self->peer_type = exo_plugin_lookup_role (EXO_TYPE_PEER_HANDLE);
  if (self->peer_type == 0)
    {
      /* FATAL: no retry can load a plugin */
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "node '%s': no plugin provides peer handles (ExoPeerHandle); "
                   "load the http-server plugin", self_id (self));
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
  GType type = node_get_peer_type (self, error);
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

void
discovery_peer_found (ExoDiscovery *discovery,
                      const char   *node_id,
                      const char   *address,
                      GVariant     *caps,
                      gpointer      user_data)
{
  peer_add (EXO_CLUSTER_NODE (user_data), node_id, address, caps);
}

void
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
  end_requests_of (self, node_id);
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
      end_requests_of (self, peer->node_id);
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

gboolean
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

void
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
