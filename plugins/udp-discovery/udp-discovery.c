/* udp-discovery.c: the `udp-discovery` plugin, an ExoDiscovery that speaks
 * exo's UDP broadcast protocol (docs/cluster-protocol.md).
 *
 * This file owns the UdpDiscovery object: its properties, its life as an
 * ExoResource (start: settings checked, cluster key, socket, sources;
 * stop, and a cleanup that waits for static probes; health, which only a
 * duplicate node id spoils; metrics), ExoDiscovery.list_peers, and the
 * plugin's entry point.  The other files of the resource:
 *
 *   udp-discovery-peers.c    the peer table: authenticated datagrams and
 *                            static probes become peers; peer-found,
 *                            peer-lost, expiry, conflicts, duplicate ids
 *   udp-discovery-sockets.c  the UDP socket: reading, announcing, targets
 *   udp-discovery-static.c   static peers, probed over HTTP
 *   udp-discovery-resource-private.h  what these four share
 *
 * and its pure helpers (udp-discovery-private.h): the wire format
 * (udp-discovery-message.c), the authenticated envelope
 * (udp-discovery-auth.c), this host's interfaces and device
 * (udp-discovery-host.c).
 *
 * Rules: everything runs on the resource's main context: a socket source
 * for reading, a timer that announces this node and probes the static
 * peers every broadcast-interval-ms, and a timer that forgets peers not
 * heard from within peer-timeout-ms, all three attached by start() below;
 * the do_* vfuncs are called there too.  No threads, no locks.  A stop
 * bumps `generation`, so that probes started before it are ignored when
 * they complete; cleanup completes only when no probe is in flight
 * (udp_discovery_finish_cleanup()).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "udp-discovery-resource-private.h"

#include "exo-plugin-util.h"

/* Nonces remembered (per node, within the clock skew) against replays. */
#define MAX_REPLAY_ENTRIES 16384

static const char * const auth_drop_metrics[N_AUTH_DROPS] = {
  "dropped-auth-missing",
  "dropped-auth-malformed",
  "dropped-auth-bad-mac",
  "dropped-auth-stale",
  "dropped-auth-replay",
  "dropped-auth-unannounced-source",
};

enum {
  PROP_0,
  PROP_PORT,
  PROP_LISTEN_ADDRESS,
  PROP_BROADCAST_ADDRESSES,
  PROP_BROADCAST_INTERVAL_MS,
  PROP_PEER_TIMEOUT_MS,
  PROP_STATIC_PEERS,
  PROP_PROBE_TIMEOUT_MS,
  PROP_NODE_ID,
  PROP_EFFECTIVE_NODE_ID,
  PROP_INSTANCE_ID,
  PROP_SERVER_PORT,
  PROP_SERVER_ID,
  PROP_DEVICE_MODEL,
  PROP_DEVICE_CHIP,
  PROP_DEVICE_MEMORY,
  PROP_DEVICE_FLOPS_FP32,
  PROP_DEVICE_FLOPS_FP16,
  PROP_DEVICE_FLOPS_INT8,
  PROP_INTERFACE_TYPE,
  PROP_INCLUDE_LOOPBACK,
  PROP_MAX_PEERS,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];

static void udp_discovery_iface_init (ExoDiscoveryInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (UdpDiscovery, udp_discovery, EXO_TYPE_MANAGED_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_DISCOVERY,
                                                      udp_discovery_iface_init))

/* --- small helpers --------------------------------------------------------- */

void
udp_discovery_replace_string (char       **slot,
                const char  *value)
{
  if (g_strcmp0 (*slot, value) == 0)
    return;
  g_free (*slot);
  *slot = g_strdup (value);
}

GSource *
udp_discovery_attach_source (UdpDiscovery *self,
               GSource      *source)
{
  g_source_attach (source, exo_resource_get_context (EXO_RESOURCE (self)));
  return source;
}

void
udp_discovery_destroy_source (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

static void
resolve_node_id (UdpDiscovery *self)
{
  const char *id;

  if (self->node_id != NULL && *self->node_id != '\0')
    id = self->node_id;
  else
    id = exo_node_id_default ();

  if (g_strcmp0 (id, self->effective_node_id) == 0)
    return;
  udp_discovery_replace_string (&self->effective_node_id, id);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_EFFECTIVE_NODE_ID]);
}

/* --- ExoResource ---------------------------------------------------------------- */

/* The port announced: server-port, else the port of the server named by
 * server-id (ready by now when the discovery depends on it), else exo's. */
static gboolean
resolve_announced_port (UdpDiscovery  *self,
                        GError       **error)
{
  g_autoptr(ExoResource) server = NULL;

  self->announced_port = self->server_port;
  if (self->announced_port != 0)
    return TRUE;
  if (self->server_id != NULL && *self->server_id != '\0')
    server = exo_registry_lookup (exo_registry_get_default (), self->server_id);
  if (server == NULL)
    {
      self->announced_port = 52415;
      return TRUE;
    }
  if (!EXO_IS_SERVER (server))
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "server-id '%s' is a %s, not a server; set server-port or server-id",
                   self->server_id, exo_resource_get_resource_type (server));
      return FALSE;
    }
  self->announced_port = exo_server_get_port (EXO_SERVER (server));
  if (self->announced_port == 0)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                   "server '%s' has no port yet (is it ready? the discovery should "
                   "depend on it); set server-port or depends-on",
                   self->server_id);
      return FALSE;
    }
  return TRUE;
}

static gboolean
start (UdpDiscovery  *self,
       GError       **error)
{
  g_autoptr(GInetAddress) listen = NULL;
  g_autoptr(GError) local_error = NULL;

  resolve_node_id (self);
  if (!resolve_announced_port (self, error))
    return FALSE;
  if (!udp_discovery_node_id_is_valid (self->effective_node_id, &local_error))
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "node-id '%s': %s", self->effective_node_id, local_error->message);
      return FALSE;
    }
  g_clear_pointer (&self->key, exo_cluster_key_unref);
  self->key = exo_cluster_key_get_default (&local_error);
  if (self->key == NULL)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "%s", local_error->message);
      return FALSE;
    }
  /* Kept across restarts: a datagram seen before a restart is still a replay. */
  if (self->guard == NULL)
    self->guard = exo_replay_guard_new (EXO_CLUSTER_AUTH_MAX_SKEW_US, MAX_REPLAY_ENTRIES,
                                        self->max_peers + 1);

  listen = g_inet_address_new_from_string (self->listen_address != NULL ? self->listen_address : "");
  if (listen == NULL || g_inet_address_get_family (listen) != G_SOCKET_FAMILY_IPV4)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "listen-address: '%s' is not an IPv4 address", self->listen_address);
      return FALSE;
    }

  if (!udp_discovery_parse_broadcast_addresses (self, error))
    return FALSE;

  if (!udp_discovery_parse_static_peers (self, error))
    return FALSE;

  udp_discovery_device_clear (&self->device);
  self->device = self->device_settings;
  self->device.model = g_strdup (self->device_settings.model);
  self->device.chip = g_strdup (self->device_settings.chip);
  udp_discovery_device_probe (&self->device);

  if (!udp_discovery_open_socket (self, listen, error))
    return FALSE;

  udp_discovery_open_session (self);

  self->read_source = g_socket_create_source (self->socket, G_IO_IN, NULL);
  g_source_set_callback (self->read_source, G_SOURCE_FUNC (udp_discovery_socket_readable_cb), self, NULL);
  udp_discovery_attach_source (self, self->read_source);

  self->broadcast_source = g_timeout_source_new (self->broadcast_interval_ms);
  g_source_set_callback (self->broadcast_source, udp_discovery_broadcast_cb, self, NULL);
  udp_discovery_attach_source (self, self->broadcast_source);

  self->expire_source = g_timeout_source_new (MAX (10, MIN (self->peer_timeout_ms / 4, 1000)));
  g_source_set_callback (self->expire_source, udp_discovery_expire_cb, self, NULL);
  udp_discovery_attach_source (self, self->expire_source);

  /* Say hello at once rather than one interval later. */
  udp_discovery_broadcast (self);
  return TRUE;
}

/* Stops sockets and timers; probes are cancelled and waited for. */
static void
stop (UdpDiscovery *self)
{
  self->generation++;
  udp_discovery_destroy_source (&self->read_source);
  udp_discovery_destroy_source (&self->broadcast_source);
  udp_discovery_destroy_source (&self->expire_source);
  if (self->socket != NULL)
    g_socket_close (self->socket, NULL);
  g_clear_object (&self->socket);
  udp_discovery_cancel_probes (self);
  g_clear_pointer (&self->explicit_targets, g_ptr_array_unref);
  g_clear_pointer (&self->interfaces, g_ptr_array_unref);
  self->duplicate_active = FALSE;
}

void
udp_discovery_finish_cleanup (UdpDiscovery *self)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->cleanup_task);

  g_clear_object (&self->session);
  g_clear_pointer (&self->static_targets, g_ptr_array_unref);
  if (task != NULL)
    g_task_return_boolean (task, TRUE);
}

static void
udp_discovery_do_initialize (ExoResource *resource,
                             GTask       *task)
{
  UdpDiscovery *self = UDP_DISCOVERY (resource);
  GError *error = NULL;

  if (!start (self, &error))
    {
      stop (self);
      udp_discovery_finish_cleanup (self);
      g_task_return_error (task, error);
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
udp_discovery_do_cleanup (ExoResource *resource,
                          GTask       *task)
{
  UdpDiscovery *self = UDP_DISCOVERY (resource);
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  const char *id;

  stop (self);

  /* Whoever listens learns that the peers are gone with us. */
  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, (gpointer *) &id, NULL))
    g_ptr_array_add (ids, g_strdup (id));
  for (guint i = 0; i < ids->len; i++)
    udp_discovery_lose_peer (self, g_ptr_array_index (ids, i), FALSE);
  g_hash_table_remove_all (self->peers);

  self->cleanup_task = g_object_ref (task);
  if (self->probes_in_flight == 0)
    udp_discovery_finish_cleanup (self);
}

static void
udp_discovery_do_check_health (ExoResource *resource,
                               GTask       *task)
{
  UdpDiscovery *self = UDP_DISCOVERY (resource);

  if (self->duplicate_active)
    g_task_return_error (task, udp_discovery_duplicate_error (self));
  else
    g_task_return_boolean (task, TRUE);
}

static void
udp_discovery_collect_metrics (ExoResource  *resource,
                               GVariantDict *metrics)
{
  UdpDiscovery *self = UDP_DISCOVERY (resource);
  const char * const no_targets[] = { NULL };

  EXO_RESOURCE_CLASS (udp_discovery_parent_class)->collect_metrics (resource, metrics);
  g_variant_dict_insert (metrics, "node-id", "s", self->effective_node_id);
  g_variant_dict_insert (metrics, "port", "u", (guint) self->bound_port);
  g_variant_dict_insert (metrics, "sent", "t", self->sent);
  g_variant_dict_insert (metrics, "received", "t", self->received);
  g_variant_dict_insert (metrics, "peers", "u", g_hash_table_size (self->peers));
  g_variant_dict_insert (metrics, "dropped-invalid", "t", self->dropped_invalid);
  g_variant_dict_insert (metrics, "dropped-oversized", "t", self->dropped_oversized);
  g_variant_dict_insert (metrics, "dropped-peer-limit", "t", self->dropped_peer_limit);
  {
    guint64 total = 0;

    for (guint i = 0; i < N_AUTH_DROPS; i++)
      {
        g_variant_dict_insert (metrics, auth_drop_metrics[i], "t", self->dropped_auth[i]);
        total += self->dropped_auth[i];
      }
    g_variant_dict_insert (metrics, "dropped-unauthenticated", "t", total);
  }
  g_variant_dict_insert (metrics, "cluster-key-fingerprint", "s",
                         self->key != NULL ? exo_cluster_key_get_fingerprint (self->key) : "");
  g_variant_dict_insert (metrics, "replay-cache-size", "u",
                         self->guard != NULL ? exo_replay_guard_get_size (self->guard) : 0);
  g_variant_dict_insert (metrics, "last-drop-reason", "s",
                         self->last_drop_reason != NULL ? self->last_drop_reason : "");
  g_variant_dict_insert (metrics, "duplicate-ids", "t", self->duplicate_ids);
  g_variant_dict_insert (metrics, "duplicate-id-from", "s",
                         self->duplicate_from != NULL ? self->duplicate_from : "");
  g_variant_dict_insert (metrics, "peer-id-conflicts", "t", self->peer_id_conflicts);
  g_variant_dict_insert (metrics, "peer-id-conflict", "s",
                         self->peer_id_conflict != NULL ? self->peer_id_conflict : "");
  g_variant_dict_insert (metrics, "peer-found-count", "t", self->peer_found_count);
  g_variant_dict_insert (metrics, "peer-lost-count", "t", self->peer_lost_count);
  g_variant_dict_insert (metrics, "own-messages", "t", self->own_messages);
  g_variant_dict_insert (metrics, "send-errors", "t", self->send_errors);
  g_variant_dict_insert (metrics, "last-send-error", "s",
                         self->last_send_error != NULL ? self->last_send_error : "");
  g_variant_dict_insert (metrics, "receive-errors", "t", self->receive_errors);
  g_variant_dict_insert (metrics, "static-probes", "t", self->static_probes);
  g_variant_dict_insert (metrics, "static-probe-failures", "t", self->static_probe_failures);
  g_variant_dict_insert (metrics, "last-static-probe-error", "s",
                         self->last_probe_error != NULL ? self->last_probe_error : "");
  g_variant_dict_insert_value (metrics, "broadcast-targets",
                               g_variant_new_strv (self->last_targets != NULL
                                                   ? (const char * const *) self->last_targets
                                                   : no_targets, -1));
}

/* What the keys above are in /metrics (docs/metrics.md). */
#define DROPPED(metric_key, reason)                                                      \
  { .key = metric_key, .kind = EXO_METRIC_COUNTER,                                       \
    .name = "exo_discovery_dropped_messages_total{reason=\"" reason "\"}",                \
    .help = "Datagrams discovery dropped, by reason; `exoctl status ID` shows the last." }
static const ExoMetricEntry discovery_metric_entries[] = {
  { .key = "node-id", .kind = EXO_METRIC_INFO, .name = "exo_discovery_info",
    .help = "Discovery's node id, port and cluster key fingerprint (value 1)." },
  { .key = "port", .kind = EXO_METRIC_INFO, .name = "exo_discovery_info",
    .help = "Discovery's node id, port and cluster key fingerprint (value 1)." },
  { .key = "cluster-key-fingerprint", .kind = EXO_METRIC_INFO, .name = "exo_discovery_info",
    .help = "Discovery's node id, port and cluster key fingerprint (value 1)." },
  { .key = "sent", .kind = EXO_METRIC_COUNTER, .name = "exo_discovery_messages_sent_total",
    .help = "Announcements sent." },
  { .key = "received", .kind = EXO_METRIC_COUNTER, .name = "exo_discovery_messages_received_total",
    .help = "Datagrams received." },
  { .key = "peers", .kind = EXO_METRIC_GAUGE, .name = "exo_discovery_peers",
    .help = "Peers discovery knows now." },
  DROPPED ("dropped-invalid", "invalid"),
  DROPPED ("dropped-oversized", "oversized"),
  DROPPED ("dropped-peer-limit", "peer-limit"),
  DROPPED ("dropped-auth-missing", "auth-missing"),
  DROPPED ("dropped-auth-malformed", "auth-malformed"),
  DROPPED ("dropped-auth-bad-mac", "auth-bad-mac"),
  DROPPED ("dropped-auth-stale", "auth-stale"),
  DROPPED ("dropped-auth-replay", "auth-replay"),
  DROPPED ("dropped-auth-unannounced-source", "auth-unannounced-source"),
  /* the sum of the dropped-auth-* above: sum() of their series */
  { .key = "dropped-unauthenticated", .kind = EXO_METRIC_HIDDEN },
  { .key = "replay-cache-size", .kind = EXO_METRIC_GAUGE, .name = "exo_discovery_replay_cache_entries",
    .help = "Nonces discovery remembers against replays." },
  { .key = "duplicate-ids", .kind = EXO_METRIC_COUNTER, .name = "exo_discovery_duplicate_ids_total",
    .help = "Announcements of another node with this node's id." },
  { .key = "peer-id-conflicts", .kind = EXO_METRIC_COUNTER, .name = "exo_discovery_peer_id_conflicts_total",
    .help = "Peers announced with one id from two addresses." },
  { .key = "peer-found-count", .kind = EXO_METRIC_COUNTER, .name = "exo_discovery_peers_found_total",
    .help = "Peers found." },
  { .key = "peer-lost-count", .kind = EXO_METRIC_COUNTER, .name = "exo_discovery_peers_lost_total",
    .help = "Peers lost (not heard from within peer-timeout-ms)." },
  { .key = "own-messages", .kind = EXO_METRIC_COUNTER, .name = "exo_discovery_own_messages_total",
    .help = "This node's own announcements received back." },
  { .key = "send-errors", .kind = EXO_METRIC_COUNTER, .name = "exo_discovery_send_errors_total",
    .help = "Announcements that could not be sent." },
  { .key = "receive-errors", .kind = EXO_METRIC_COUNTER, .name = "exo_discovery_receive_errors_total",
    .help = "Failed receives." },
  { .key = "static-probes", .kind = EXO_METRIC_COUNTER, .name = "exo_discovery_static_probes_total",
    .help = "Probes of the static peers." },
  { .key = "static-probe-failures", .kind = EXO_METRIC_COUNTER,
    .name = "exo_discovery_static_probe_failures_total", .help = "Probes of the static peers that failed." },
  /* texts and addresses that change: a label would make a new series each
   * time; they are on D-Bus (`exoctl status ID`) */
  { .key = "last-drop-reason", .kind = EXO_METRIC_HIDDEN },
  { .key = "duplicate-id-from", .kind = EXO_METRIC_HIDDEN },
  { .key = "peer-id-conflict", .kind = EXO_METRIC_HIDDEN },
  { .key = "last-send-error", .kind = EXO_METRIC_HIDDEN },
  { .key = "last-static-probe-error", .kind = EXO_METRIC_HIDDEN },
  { .key = "broadcast-targets", .kind = EXO_METRIC_HIDDEN },
};
#undef DROPPED

/* --- ExoDiscovery --------------------------------------------------------------- */

static void
udp_discovery_iface_init (ExoDiscoveryInterface *iface)
{
  iface->list_peers = udp_discovery_list_peers;
}

/* --- GObject ------------------------------------------------------------------- */

static void
udp_discovery_dispose (GObject *object)
{
  UdpDiscovery *self = UDP_DISCOVERY (object);

  /* Probes hold a reference: none is in flight here. */
  stop (self);
  g_hash_table_remove_all (self->peers);
  udp_discovery_finish_cleanup (self);

  G_OBJECT_CLASS (udp_discovery_parent_class)->dispose (object);
}

static void
udp_discovery_finalize (GObject *object)
{
  UdpDiscovery *self = UDP_DISCOVERY (object);

  g_free (self->listen_address);
  g_strfreev (self->broadcast_addresses);
  g_strfreev (self->static_peers);
  g_free (self->node_id);
  g_free (self->server_id);
  g_free (self->effective_node_id);
  udp_discovery_device_clear (&self->device_settings);
  udp_discovery_device_clear (&self->device);
  g_free (self->interface_type);
  g_free (self->instance_id);
  g_strfreev (self->last_targets);
  g_hash_table_unref (self->peers);
  g_ptr_array_unref (self->probes);
  g_free (self->duplicate_from);
  g_free (self->last_drop_reason);
  g_free (self->last_send_error);
  g_free (self->last_probe_error);
  g_free (self->peer_id_conflict);
  g_clear_pointer (&self->key, exo_cluster_key_unref);
  g_clear_pointer (&self->guard, exo_replay_guard_unref);
  g_strfreev (self->source_addresses);

  G_OBJECT_CLASS (udp_discovery_parent_class)->finalize (object);
}

static void
udp_discovery_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  UdpDiscovery *self = UDP_DISCOVERY (object);

  switch (prop_id)
    {
    case PROP_PORT:
      g_value_set_uint (value, self->port);
      break;
    case PROP_LISTEN_ADDRESS:
      g_value_set_string (value, self->listen_address);
      break;
    case PROP_BROADCAST_ADDRESSES:
      g_value_set_boxed (value, self->broadcast_addresses);
      break;
    case PROP_BROADCAST_INTERVAL_MS:
      g_value_set_uint (value, self->broadcast_interval_ms);
      break;
    case PROP_PEER_TIMEOUT_MS:
      g_value_set_uint (value, self->peer_timeout_ms);
      break;
    case PROP_STATIC_PEERS:
      g_value_set_boxed (value, self->static_peers);
      break;
    case PROP_PROBE_TIMEOUT_MS:
      g_value_set_uint (value, self->probe_timeout_ms);
      break;
    case PROP_NODE_ID:
      g_value_set_string (value, self->node_id);
      break;
    case PROP_EFFECTIVE_NODE_ID:
      g_value_set_string (value, self->effective_node_id);
      break;
    case PROP_INSTANCE_ID:
      g_value_set_string (value, self->instance_id);
      break;
    case PROP_SERVER_PORT:
      g_value_set_uint (value, self->server_port);
      break;
    case PROP_SERVER_ID:
      g_value_set_string (value, self->server_id);
      break;
    case PROP_DEVICE_MODEL:
      g_value_set_string (value, self->device_settings.model);
      break;
    case PROP_DEVICE_CHIP:
      g_value_set_string (value, self->device_settings.chip);
      break;
    case PROP_DEVICE_MEMORY:
      g_value_set_uint64 (value, self->device_settings.memory_mib);
      break;
    case PROP_DEVICE_FLOPS_FP32:
      g_value_set_double (value, self->device_settings.fp32);
      break;
    case PROP_DEVICE_FLOPS_FP16:
      g_value_set_double (value, self->device_settings.fp16);
      break;
    case PROP_DEVICE_FLOPS_INT8:
      g_value_set_double (value, self->device_settings.int8);
      break;
    case PROP_INTERFACE_TYPE:
      g_value_set_string (value, self->interface_type);
      break;
    case PROP_INCLUDE_LOOPBACK:
      g_value_set_boolean (value, self->include_loopback);
      break;
    case PROP_MAX_PEERS:
      g_value_set_uint (value, self->max_peers);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static gboolean
set_strv (char         ***slot,
          const GValue   *value)
{
  const char * const *v = g_value_get_boxed (value);

  if ((*slot == NULL && v == NULL) ||
      (*slot != NULL && v != NULL && g_strv_equal ((const char * const *) *slot, v)))
    return FALSE;
  g_strfreev (*slot);
  *slot = g_strdupv ((char **) v);
  return TRUE;
}

static gboolean
set_double (double       *slot,
            const GValue *value)
{
  if (*slot == g_value_get_double (value))
    return FALSE;
  *slot = g_value_get_double (value);
  return TRUE;
}

static void
udp_discovery_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  UdpDiscovery *self = UDP_DISCOVERY (object);
  gboolean changed;

  switch (prop_id)
    {
    case PROP_PORT:
      changed = exo_plugin_set_uint (&self->port, value);
      break;
    case PROP_LISTEN_ADDRESS:
      changed = exo_plugin_set_string (&self->listen_address, value);
      break;
    case PROP_BROADCAST_ADDRESSES:
      changed = set_strv (&self->broadcast_addresses, value);
      break;
    case PROP_BROADCAST_INTERVAL_MS:
      changed = exo_plugin_set_uint (&self->broadcast_interval_ms, value);
      break;
    case PROP_PEER_TIMEOUT_MS:
      changed = exo_plugin_set_uint (&self->peer_timeout_ms, value);
      break;
    case PROP_STATIC_PEERS:
      changed = set_strv (&self->static_peers, value);
      break;
    case PROP_PROBE_TIMEOUT_MS:
      changed = exo_plugin_set_uint (&self->probe_timeout_ms, value);
      break;
    case PROP_NODE_ID:
      changed = exo_plugin_set_string (&self->node_id, value);
      if (changed)
        resolve_node_id (self);
      break;
    case PROP_SERVER_PORT:
      changed = exo_plugin_set_uint (&self->server_port, value);
      break;
    case PROP_SERVER_ID:
      changed = exo_plugin_set_string (&self->server_id, value);
      break;
    case PROP_DEVICE_MODEL:
      changed = exo_plugin_set_string (&self->device_settings.model, value);
      break;
    case PROP_DEVICE_CHIP:
      changed = exo_plugin_set_string (&self->device_settings.chip, value);
      break;
    case PROP_DEVICE_MEMORY:
      changed = self->device_settings.memory_mib != g_value_get_uint64 (value);
      self->device_settings.memory_mib = g_value_get_uint64 (value);
      break;
    case PROP_DEVICE_FLOPS_FP32:
      changed = set_double (&self->device_settings.fp32, value);
      break;
    case PROP_DEVICE_FLOPS_FP16:
      changed = set_double (&self->device_settings.fp16, value);
      break;
    case PROP_DEVICE_FLOPS_INT8:
      changed = set_double (&self->device_settings.int8, value);
      break;
    case PROP_INTERFACE_TYPE:
      changed = exo_plugin_set_string (&self->interface_type, value);
      if (self->interface_type == NULL || *self->interface_type == '\0')
        udp_discovery_replace_string (&self->interface_type, "auto");
      break;
    case PROP_INCLUDE_LOOPBACK:
      changed = self->include_loopback != g_value_get_boolean (value);
      self->include_loopback = g_value_get_boolean (value);
      break;
    case PROP_MAX_PEERS:
      changed = exo_plugin_set_uint (&self->max_peers, value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  if (changed)
    g_object_notify_by_pspec (object, pspec);
}

/* Before initialize (exo-node --check-config and the daemon's start): the
 * static peers, with the parser initialize uses.  Nothing is resolved. */
static gboolean
udp_discovery_check_settings (ExoResource  *resource,
                              char        **setting,
                              GError      **error)
{
  UdpDiscovery *self = UDP_DISCOVERY (resource);

  if (!udp_discovery_check_static_peers ((const char * const *) self->static_peers, error))
    {
      *setting = g_strdup ("static-peers");
      return FALSE;
    }
  return TRUE;
}

#define RW (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY)
#define RO (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY)

static void
udp_discovery_class_init (UdpDiscoveryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->dispose = udp_discovery_dispose;
  object_class->finalize = udp_discovery_finalize;
  object_class->get_property = udp_discovery_get_property;
  object_class->set_property = udp_discovery_set_property;

  resource_class->do_initialize = udp_discovery_do_initialize;
  resource_class->do_cleanup = udp_discovery_do_cleanup;
  resource_class->do_check_health = udp_discovery_do_check_health;
  resource_class->collect_metrics = udp_discovery_collect_metrics;
  exo_resource_class_add_metric_entries (resource_class, discovery_metric_entries,
                                         G_N_ELEMENTS (discovery_metric_entries));
  resource_class->check_settings = udp_discovery_check_settings;
  exo_resource_class_set_resource_type (resource_class, "udp-discovery");

  /* Settings are read when the resource initializes. */

  /** UdpDiscovery:port: the UDP port listened on and sent to (0: any, for tests) */
  properties[PROP_PORT] =
    g_param_spec_uint ("port", NULL, "UDP port listened on and sent to", 0, 65535, 5678, RW);
  /** UdpDiscovery:listen-address: the IPv4 address the socket is bound to */
  properties[PROP_LISTEN_ADDRESS] =
    g_param_spec_string ("listen-address", NULL, "IPv4 address to listen on", "0.0.0.0", RW);
  /**
   * UdpDiscovery:broadcast-addresses:
   *
   * Where announcements go, as `"a.b.c.d"` (at #UdpDiscovery:port) or
   * `"a.b.c.d:port"`: broadcast or unicast addresses.  Empty (the default):
   * every interface's broadcast address, and 255.255.255.255.
   */
  properties[PROP_BROADCAST_ADDRESSES] =
    g_param_spec_boxed ("broadcast-addresses", NULL, "Destinations of announcements",
                        G_TYPE_STRV, RW);
  properties[PROP_BROADCAST_INTERVAL_MS] =
    g_param_spec_uint ("broadcast-interval-ms", NULL, "Time between announcements",
                       10, 3600000, 2500, RW);
  properties[PROP_PEER_TIMEOUT_MS] =
    g_param_spec_uint ("peer-timeout-ms", NULL, "A peer not heard from for this long is lost",
                       40, 86400000, 30000, RW);
  /**
   * UdpDiscovery:static-peers:
   *
   * `"host:port"` of peers' HTTP servers, probed with `GET /peer/v1/health`
   * every broadcast interval: for networks without broadcast.
   */
  properties[PROP_STATIC_PEERS] =
    g_param_spec_boxed ("static-peers", NULL, "HTTP servers of peers to probe", G_TYPE_STRV, RW);
  properties[PROP_PROBE_TIMEOUT_MS] =
    g_param_spec_uint ("probe-timeout-ms", NULL, "Time limit of one static peer probe",
                       10, 600000, 2000, RW);
  /**
   * UdpDiscovery:node-id:
   *
   * This node's id.  Empty (the default): the process's node id,
   * exo_node_id_default() (in exo-node, the daemon's node id).  See
   * #UdpDiscovery:effective-node-id.
   */
  properties[PROP_NODE_ID] =
    g_param_spec_string ("node-id", NULL, "This node's id (empty: the process's node id)",
                         NULL, RW);
  /** UdpDiscovery:effective-node-id: the node id in use */
  properties[PROP_EFFECTIVE_NODE_ID] =
    g_param_spec_string ("effective-node-id", NULL, "The node id in use", NULL, RO);
  /** UdpDiscovery:instance-id: a random id of this resource, sent as `instance_id` */
  properties[PROP_INSTANCE_ID] =
    g_param_spec_string ("instance-id", NULL, "Random id of this resource", NULL, RO);
  /**
   * UdpDiscovery:server-port:
   *
   * This node's HTTP port, announced as `grpc_port`.  0 (the default): the
   * port of the server #UdpDiscovery:server-id names, read at initialize
   * (depend on the server so that it is ready by then); 52415, exo's port,
   * when there is no resource of that id.
   */
  properties[PROP_SERVER_PORT] =
    g_param_spec_uint ("server-port", NULL, "HTTP port announced as grpc_port (0: the server's)",
                       0, 65535, 0, RW);
  /**
   * UdpDiscovery:server-id:
   *
   * The id of the #ExoServer whose port is announced when
   * #UdpDiscovery:server-port is 0.  Default: `server`, as the node's.
   */
  properties[PROP_SERVER_ID] =
    g_param_spec_string ("server-id", NULL, "Server whose port is announced (server-port 0)",
                         "server", RW);
  properties[PROP_DEVICE_MODEL] =
    g_param_spec_string ("device-model", NULL, "Model announced (empty: from DMI, or Linux)",
                         NULL, RW);
  properties[PROP_DEVICE_CHIP] =
    g_param_spec_string ("device-chip", NULL, "Chip announced (empty: uname's machine)",
                         NULL, RW);
  properties[PROP_DEVICE_MEMORY] =
    g_param_spec_uint64 ("device-memory", NULL, "Memory announced in MiB (0: MemTotal)",
                         0, G_MAXINT64, 0, RW);
  properties[PROP_DEVICE_FLOPS_FP32] =
    g_param_spec_double ("device-flops-fp32", NULL, "FP32 TFLOPS announced",
                         0, UDP_DISCOVERY_MAX_FLOPS, 0, RW);
  properties[PROP_DEVICE_FLOPS_FP16] =
    g_param_spec_double ("device-flops-fp16", NULL, "FP16 TFLOPS announced",
                         0, UDP_DISCOVERY_MAX_FLOPS, 0, RW);
  properties[PROP_DEVICE_FLOPS_INT8] =
    g_param_spec_double ("device-flops-int8", NULL, "INT8 TOPS announced",
                         0, UDP_DISCOVERY_MAX_FLOPS, 0, RW);
  /**
   * UdpDiscovery:interface-type:
   *
   * `"auto"`: each announcement says the type of the interface it leaves
   * by (`ethernet`, `wifi`, `loopback`, `thunderbolt`, `container`,
   * `virtual`, `other`); anything else is announced as it is.
   */
  properties[PROP_INTERFACE_TYPE] =
    g_param_spec_string ("interface-type", NULL, "Interface type announced (auto: detected)",
                         "auto", RW);
  properties[PROP_INCLUDE_LOOPBACK] =
    g_param_spec_boolean ("include-loopback", NULL,
                          "Automatic broadcast addresses include the loopback network",
                          FALSE, RW);
  properties[PROP_MAX_PEERS] =
    g_param_spec_uint ("max-peers", NULL, "Most peers remembered; more are dropped",
                       1, 65536, 1024, RW);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
udp_discovery_init (UdpDiscovery *self)
{
  self->port = 5678;
  self->listen_address = g_strdup ("0.0.0.0");
  self->broadcast_interval_ms = 2500;
  self->peer_timeout_ms = 30000;
  self->probe_timeout_ms = 2000;
  self->server_id = g_strdup ("server");
  self->interface_type = g_strdup ("auto");
  self->max_peers = 1024;
  self->instance_id = g_uuid_string_random ();
  self->probes = g_ptr_array_new ();
  self->peers = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) udp_discovery_peer_free);
  resolve_node_id (self);

  /* The one way this resource degrades is a duplicate node id, which a
   * restart does not cure; it turns ready again by itself once the other
   * node has not been heard from for peer-timeout-ms. */
  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (self), FALSE);
}

static void
udp_discovery_register (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "udp-discovery", UDP_TYPE_DISCOVERY);
}

EXO_PLUGIN_DEFINE ("udp-discovery", "1.0.0",
                   "Finds peers by exo's UDP broadcast, and static peers over HTTP",
                   udp_discovery_register)
