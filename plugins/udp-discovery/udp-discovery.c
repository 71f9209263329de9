/* udp-discovery.c: the `udp-discovery` plugin, an ExoDiscovery that speaks
 * exo's UDP broadcast protocol (docs/cluster-protocol.md).
 *
 * One UDP socket, bound to listen-address:port with SO_REUSEADDR and
 * SO_BROADCAST, both receives and sends, so that a datagram's source port is
 * the sender's discovery port.  Everything runs on the resource's main
 * context: a socket source for reading, a timer that announces this node and
 * probes the static peers every broadcast-interval-ms, and a timer that
 * forgets peers not heard from within peer-timeout-ms.  No threads.
 *
 * A peer is a node id with one or more *endpoints*: the source address of
 * its datagrams (a node with several interfaces is heard from several), or a
 * static peer's configured address.  The endpoint with the highest priority
 * (then the oldest) gives the address announced by `peer-found`; it changes
 * only when that endpoint is gone or a better one of the same node appears,
 * so a peer does not flap between addresses.
 *
 * Each message also carries `instance_id`, a random id of this resource
 * (an addition to exo's message, which exo ignores).  It tells our own
 * datagrams (looped back by broadcast) from another node that uses our node
 * id — a duplicate id — and a node heard on two interfaces from two nodes
 * that claim the same id (a peer id conflict).  For senders without it (exo)
 * the source port stands in: one exo node sends from one port.
 *
 * Every datagram is authenticated with the cluster key (the envelope of
 * udp-discovery-auth.c): a datagram without a valid MAC, with a timestamp
 * outside ±30 s, with a nonce seen before (ExoReplayGuard), or from a
 * source address its sender did not announce is dropped, counted per
 * reason and logged at most once per 10 s per reason.  Static peers are
 * probed with a signed request and count only when the answer is signed
 * with the key too.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "udp-discovery-private.h"

#include <libsoup/soup.h>
#include <string.h>
#include <sys/socket.h>

#define UDP_TYPE_DISCOVERY (udp_discovery_get_type ())
G_DECLARE_FINAL_TYPE (UdpDiscovery, udp_discovery, UDP, DISCOVERY, ExoManagedResource)

/* Datagrams read per wake-up, so that a flood cannot starve the context. */
#define MAX_READS_PER_DISPATCH 64
/* Source addresses remembered per peer. */
#define MAX_ENDPOINTS 8
/* Nonces remembered (per node, within the clock skew) against replays. */
#define MAX_REPLAY_ENTRIES 16384
/* One log line per reason of unauthenticated datagrams per this interval. */
#define AUTH_LOG_INTERVAL_US (10 * G_USEC_PER_SEC)

/* Why a datagram was not authentic: the metrics dropped-auth-<name>. */
typedef enum {
  AUTH_DROP_MISSING,
  AUTH_DROP_MALFORMED,
  AUTH_DROP_BAD_MAC,
  AUTH_DROP_STALE,
  AUTH_DROP_REPLAY,
  AUTH_DROP_UNANNOUNCED_SOURCE,
  N_AUTH_DROPS,
} AuthDrop;

static const char * const auth_drop_metrics[N_AUTH_DROPS] = {
  "dropped-auth-missing",
  "dropped-auth-malformed",
  "dropped-auth-bad-mac",
  "dropped-auth-stale",
  "dropped-auth-replay",
  "dropped-auth-unannounced-source",
};

typedef struct {
  char     *key;             /* "ip:port" of the datagrams, or "static:host:port" */
  gboolean  is_static;
  guint16   source_port;
  char     *instance_id;     /* NULL when the sender does not say */
  char     *address;         /* host:port of its HTTP server */
  char     *interface_name;
  gint64    priority;
  GVariant *capabilities;
  gint64    first_seen;
  gint64    last_seen;
} Endpoint;

typedef struct {
  char      *node_id;
  GPtrArray *endpoints;      /* Endpoint */
  Endpoint  *chosen;         /* in endpoints, or NULL */
  char      *announced;      /* the address given with the last peer-found */
  char      *last_speaker;   /* key of the endpoint heard last */
  gboolean   conflict_logged;
} Peer;

typedef struct {
  GSocketAddress *address;
  char           *text;      /* "ip:port" */
  guint32         ip;        /* host byte order */
  char           *interface_name;   /* NULL: look it up when sending */
  char           *interface_type;
  gint            priority;
} Target;

typedef struct {
  char     *text;            /* "host:port", as configured */
  char     *uri;             /* http://host:port/peer/v1/health */
  char     *node_id;         /* what it answered last */
  gboolean  in_flight;
} StaticPeer;

typedef struct {
  UdpDiscovery *self;        /* a reference */
  StaticPeer   *peer;
  SoupMessage  *message;
  GCancellable *cancellable;
  GSource      *timeout;
  GInputStream *stream;
  char         *nonce;       /* of the signed request: the answer must carry it */
  guint         generation;
  gsize         length;
  char          buffer[UDP_DISCOVERY_MAX_MESSAGE + 1];
} Probe;

struct _UdpDiscovery
{
  ExoManagedResource parent_instance;

  /* settings */
  guint     port;
  char     *listen_address;
  char    **broadcast_addresses;
  guint     broadcast_interval_ms;
  guint     peer_timeout_ms;
  char    **static_peers;
  guint     probe_timeout_ms;
  char     *node_id;
  char     *effective_node_id;
  guint     server_port;
  UdpDiscoveryDevice device_settings;
  char     *interface_type;
  gboolean  include_loopback;
  guint     max_peers;

  /* while running */
  char        *instance_id;
  GSocket     *socket;
  guint16      bound_port;
  GSource     *read_source;
  GSource     *broadcast_source;
  GSource     *expire_source;
  GPtrArray   *explicit_targets;   /* Target; NULL: automatic */
  GPtrArray   *interfaces;         /* UdpDiscoveryInterface, refreshed per broadcast */
  GStrv        last_targets;
  UdpDiscoveryDevice device;
  GHashTable  *peers;              /* node id → Peer */
  GPtrArray   *static_targets;     /* StaticPeer */
  SoupSession *session;
  GPtrArray   *probes;             /* Probe in flight (not owned) */
  guint        probes_in_flight;
  guint        generation;
  GTask       *cleanup_task;       /* waiting for probes to finish */
  ExoClusterKey  *key;             /* the cluster key (from start on) */
  ExoReplayGuard *guard;           /* nonces seen */
  GStrv        source_addresses;   /* announced: where our datagrams come from */
  gboolean     bound_to_one;       /* listen-address is one address, not 0.0.0.0 */

  /* duplicate node id */
  gboolean  duplicate_active;
  gint64    duplicate_seen_at;
  char     *duplicate_from;

  /* metrics */
  guint64   sent;
  guint64   received;
  guint64   dropped_invalid;
  guint64   dropped_oversized;
  guint64   dropped_peer_limit;
  guint64   duplicate_ids;
  guint64   peer_id_conflicts;
  guint64   peer_found_count;
  guint64   peer_lost_count;
  guint64   own_messages;
  guint64   send_errors;
  guint64   receive_errors;
  guint64   static_probes;
  guint64   static_probe_failures;
  char     *last_drop_reason;
  char     *last_send_error;
  char     *last_probe_error;
  char     *peer_id_conflict;
  guint64   dropped_auth[N_AUTH_DROPS];
  gint64    auth_logged_at[N_AUTH_DROPS];
  guint64   auth_suppressed[N_AUTH_DROPS];
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
static void finish_cleanup (UdpDiscovery *self);

G_DEFINE_FINAL_TYPE_WITH_CODE (UdpDiscovery, udp_discovery, EXO_TYPE_MANAGED_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_DISCOVERY,
                                                      udp_discovery_iface_init))

/* --- small helpers --------------------------------------------------------- */

static void
log_event (UdpDiscovery   *self,
           GLogLevelFlags  level,
           const char     *format,
           ...) G_GNUC_PRINTF (3, 4);

/* Things an operator must see: duplicate ids, conflicts, peers found/lost. */
static void
log_event (UdpDiscovery   *self,
           GLogLevelFlags  level,
           const char     *format,
           ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_log_structured (G_LOG_DOMAIN, level,
                    "EXO_RESOURCE_ID", exo_resource_get_id (EXO_RESOURCE (self)),
                    "MESSAGE", "%s: %s", exo_resource_get_id (EXO_RESOURCE (self)), message);
}

static void
replace_string (char       **slot,
                const char  *value)
{
  if (g_strcmp0 (*slot, value) == 0)
    return;
  g_free (*slot);
  *slot = g_strdup (value);
}

static char *
ip_to_string (guint32 ip)
{
  return g_strdup_printf ("%u.%u.%u.%u", (ip >> 24) & 0xff, (ip >> 16) & 0xff,
                          (ip >> 8) & 0xff, ip & 0xff);
}

static guint32
inet_address_to_ip (GInetAddress *address)
{
  const guint8 *b = g_inet_address_to_bytes (address);

  return ((guint32) b[0] << 24) | ((guint32) b[1] << 16) | ((guint32) b[2] << 8) | b[3];
}

static GSource *
attach_source (UdpDiscovery *self,
               GSource      *source)
{
  g_source_attach (source, exo_resource_get_context (EXO_RESOURCE (self)));
  return source;
}

static void
destroy_source (GSource **source)
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
  replace_string (&self->effective_node_id, id);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_EFFECTIVE_NODE_ID]);
}

static void
drop (UdpDiscovery *self,
      guint64      *counter,
      const char   *reason)
{
  (*counter)++;
  replace_string (&self->last_drop_reason, reason);
}

/* --- endpoints and peers ------------------------------------------------- */

static void
endpoint_free (Endpoint *endpoint)
{
  if (endpoint == NULL)
    return;
  g_free (endpoint->key);
  g_free (endpoint->instance_id);
  g_free (endpoint->address);
  g_free (endpoint->interface_name);
  g_clear_pointer (&endpoint->capabilities, g_variant_unref);
  g_free (endpoint);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Endpoint, endpoint_free)

static void
peer_free (Peer *peer)
{
  g_free (peer->node_id);
  g_ptr_array_unref (peer->endpoints);
  g_free (peer->announced);
  g_free (peer->last_speaker);
  g_free (peer);
}

static Peer *
peer_new (const char *node_id)
{
  Peer *peer = g_new0 (Peer, 1);

  peer->node_id = g_strdup (node_id);
  peer->endpoints = g_ptr_array_new_with_free_func ((GDestroyNotify) endpoint_free);
  return peer;
}

static Endpoint *
peer_find_endpoint (Peer       *peer,
                    const char *key)
{
  for (guint i = 0; i < peer->endpoints->len; i++)
    {
      Endpoint *e = g_ptr_array_index (peer->endpoints, i);

      if (g_str_equal (e->key, key))
        return e;
    }
  return NULL;
}

/* Whether two endpoints of one node id are the same node. */
static gboolean
same_node (const Endpoint *a,
           const Endpoint *b)
{
  if (a == b || a->is_static || b->is_static)
    return TRUE;
  if (a->instance_id != NULL && b->instance_id != NULL)
    return g_str_equal (a->instance_id, b->instance_id);
  return a->source_port == b->source_port;
}

static Endpoint *
peer_best_endpoint (Peer *peer)
{
  Endpoint *best = NULL;

  for (guint i = 0; i < peer->endpoints->len; i++)
    {
      Endpoint *e = g_ptr_array_index (peer->endpoints, i);

      if (best == NULL || e->priority > best->priority ||
          (e->priority == best->priority && e->first_seen < best->first_seen))
        best = e;
    }
  return best;
}

static void
peer_remove_endpoint (Peer     *peer,
                      Endpoint *endpoint)
{
  if (peer->chosen == endpoint)
    peer->chosen = NULL;
  g_ptr_array_remove (peer->endpoints, endpoint);
  if (peer->chosen == NULL)
    peer->chosen = peer_best_endpoint (peer);
}

/* Emits peer-found when @node_id's chosen address is new or changed. */
static void
announce (UdpDiscovery *self,
          const char   *node_id)
{
  Peer *peer = g_hash_table_lookup (self->peers, node_id);
  g_autofree char *id = NULL;
  g_autofree char *address = NULL;
  g_autoptr(GVariant) capabilities = NULL;
  gboolean is_new;

  if (peer == NULL || peer->chosen == NULL ||
      g_strcmp0 (peer->announced, peer->chosen->address) == 0)
    return;

  is_new = peer->announced == NULL;
  replace_string (&peer->announced, peer->chosen->address);
  id = g_strdup (peer->node_id);
  address = g_strdup (peer->chosen->address);
  capabilities = g_variant_ref (peer->chosen->capabilities);
  if (is_new)
    self->peer_found_count++;

  log_event (self, G_LOG_LEVEL_INFO, "peer %s %s at %s", id, is_new ? "found" : "moved", address);
  g_signal_emit_by_name (self, "peer-found", id, address, capabilities);
}

/* Forgets @node_id (all its endpoints gone) and emits peer-lost. */
static void
lose_peer (UdpDiscovery *self,
           const char   *node_id,
           gboolean      count)
{
  g_autofree char *id = g_strdup (node_id);
  gboolean was_announced;
  Peer *peer = g_hash_table_lookup (self->peers, id);

  if (peer == NULL)
    return;
  was_announced = peer->announced != NULL;
  g_hash_table_remove (self->peers, id);
  if (!was_announced)
    return;
  if (count)
    self->peer_lost_count++;
  log_event (self, G_LOG_LEVEL_INFO, "peer %s lost", id);
  g_signal_emit_by_name (self, "peer-lost", id);
}

static void
note_conflict (UdpDiscovery   *self,
               Peer           *peer,
               const Endpoint *previous,
               const Endpoint *current)
{
  g_autofree char *text = NULL;

  self->peer_id_conflicts++;
  text = g_strdup_printf ("node id %s is claimed by the nodes at %s and %s",
                          peer->node_id, previous->key, current->key);
  replace_string (&self->peer_id_conflict, text);
  if (!peer->conflict_logged)
    {
      peer->conflict_logged = TRUE;
      log_event (self, G_LOG_LEVEL_WARNING, "%s", text);
    }
}

/* A sign of life of @node_id through @incoming (taken). */
static void
peer_seen (UdpDiscovery *self,
           const char   *node_id,
           Endpoint     *incoming)
{
  g_autoptr(Endpoint) owned = incoming;
  Peer *peer = g_hash_table_lookup (self->peers, node_id);
  Endpoint *endpoint;

  if (peer == NULL)
    {
      if (g_hash_table_size (self->peers) >= self->max_peers)
        {
          g_autofree char *reason = g_strdup_printf ("peer limit of %u reached: node %s from %s "
                                                     "ignored", self->max_peers, node_id,
                                                     incoming->key);
          drop (self, &self->dropped_peer_limit, reason);
          return;
        }
      peer = peer_new (node_id);
      g_hash_table_insert (self->peers, peer->node_id, peer);
    }

  endpoint = peer_find_endpoint (peer, incoming->key);
  if (endpoint != NULL)
    {
      /* The same address with another instance: the node restarted. */
      if (g_strcmp0 (endpoint->instance_id, incoming->instance_id) != 0)
        endpoint->first_seen = incoming->first_seen;
      g_free (endpoint->instance_id);
      endpoint->instance_id = g_steal_pointer (&incoming->instance_id);
      g_free (endpoint->address);
      endpoint->address = g_steal_pointer (&incoming->address);
      g_free (endpoint->interface_name);
      endpoint->interface_name = g_steal_pointer (&incoming->interface_name);
      g_clear_pointer (&endpoint->capabilities, g_variant_unref);
      endpoint->capabilities = g_steal_pointer (&incoming->capabilities);
      endpoint->priority = incoming->priority;
      endpoint->last_seen = incoming->last_seen;
    }
  else
    {
      if (peer->endpoints->len >= MAX_ENDPOINTS)
        {
          Endpoint *oldest = NULL;

          for (guint i = 0; i < peer->endpoints->len; i++)
            {
              Endpoint *e = g_ptr_array_index (peer->endpoints, i);

              if (oldest == NULL || e->last_seen < oldest->last_seen)
                oldest = e;
            }
          peer_remove_endpoint (peer, oldest);
        }
      endpoint = g_steal_pointer (&owned);
      g_ptr_array_add (peer->endpoints, endpoint);
    }

  if (!endpoint->is_static)
    {
      if (peer->last_speaker != NULL && !g_str_equal (peer->last_speaker, endpoint->key))
        {
          Endpoint *previous = peer_find_endpoint (peer, peer->last_speaker);

          if (previous != NULL && !same_node (previous, endpoint))
            note_conflict (self, peer, previous, endpoint);
        }
      replace_string (&peer->last_speaker, endpoint->key);
    }

  if (peer->chosen == NULL)
    peer->chosen = peer_best_endpoint (peer);
  else if (peer->chosen != endpoint && same_node (peer->chosen, endpoint) &&
           endpoint->priority > peer->chosen->priority)
    peer->chosen = endpoint;

  announce (self, node_id);
}

/* Forgets endpoints not heard from within the timeout, then peers without
 * endpoints; ends a duplicate-id episode the same way. */
static void
expire (UdpDiscovery *self)
{
  gint64 now = g_get_monotonic_time ();
  gint64 timeout_us = (gint64) self->peer_timeout_ms * 1000;
  g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) moved = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  Peer *peer;

  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &peer))
    {
      Endpoint *chosen = peer->chosen;

      for (guint i = peer->endpoints->len; i > 0; i--)
        {
          Endpoint *e = g_ptr_array_index (peer->endpoints, i - 1);

          if (now - e->last_seen > timeout_us)
            peer_remove_endpoint (peer, e);
        }
      if (peer->endpoints->len == 0)
        g_ptr_array_add (lost, g_strdup (peer->node_id));
      else if (peer->chosen != chosen)
        g_ptr_array_add (moved, g_strdup (peer->node_id));
    }

  for (guint i = 0; i < moved->len; i++)
    announce (self, g_ptr_array_index (moved, i));
  for (guint i = 0; i < lost->len; i++)
    lose_peer (self, g_ptr_array_index (lost, i), TRUE);

  if (self->duplicate_active && now - self->duplicate_seen_at > timeout_us)
    {
      self->duplicate_active = FALSE;
      log_event (self, G_LOG_LEVEL_MESSAGE, "node id %s: no duplicate heard for %u ms",
                 self->effective_node_id, self->peer_timeout_ms);
      exo_resource_report_health (EXO_RESOURCE (self), TRUE, NULL);
    }
}

static gboolean
expire_cb (gpointer user_data)
{
  UdpDiscovery *self = g_object_ref (user_data);

  expire (self);
  g_object_unref (self);
  return G_SOURCE_CONTINUE;
}

/* --- duplicates of our own node id ------------------------------------- */

static GError *
duplicate_error (UdpDiscovery *self)
{
  return g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                      "node id %s is also used by the node at %s",
                      self->effective_node_id, self->duplicate_from);
}

static void
note_duplicate (UdpDiscovery *self,
                const char   *from)
{
  gboolean news = !self->duplicate_active || g_strcmp0 (self->duplicate_from, from) != 0;

  self->duplicate_ids++;
  self->duplicate_seen_at = g_get_monotonic_time ();
  self->duplicate_active = TRUE;
  replace_string (&self->duplicate_from, from);

  if (news)
    log_event (self, G_LOG_LEVEL_WARNING, "node id %s is also used by the node at %s",
               self->effective_node_id, from);
  /* Report again until it took (it does not while initializing). */
  if (news || exo_resource_get_state (EXO_RESOURCE (self)) == EXO_RESOURCE_STATE_READY)
    {
      g_autoptr(GError) error = duplicate_error (self);

      exo_resource_report_health (EXO_RESOURCE (self), FALSE, error);
    }
}

/* --- receiving ------------------------------------------------------------ */

/* Counts an unauthenticated datagram; logs at most one line per reason per
 * AUTH_LOG_INTERVAL_US, with how many were not logged. */
static void
drop_unauthenticated (UdpDiscovery *self,
                      AuthDrop      why,
                      const char   *source,
                      const char   *message)
{
  g_autofree char *reason = g_strdup_printf ("%s: %s", source, message);
  gint64 now = g_get_monotonic_time ();

  drop (self, &self->dropped_auth[why], reason);
  if (self->auth_logged_at[why] != 0 && now - self->auth_logged_at[why] < AUTH_LOG_INTERVAL_US)
    {
      self->auth_suppressed[why]++;
      return;
    }
  if (self->auth_suppressed[why] > 0)
    log_event (self, G_LOG_LEVEL_WARNING,
               "dropped an unauthenticated datagram from %s (%" G_GUINT64_FORMAT
               " more like it not logged in the last %d s)", reason,
               self->auth_suppressed[why], (int) (AUTH_LOG_INTERVAL_US / G_USEC_PER_SEC));
  else
    log_event (self, G_LOG_LEVEL_WARNING, "dropped an unauthenticated datagram from %s", reason);
  self->auth_logged_at[why] = now;
  self->auth_suppressed[why] = 0;
}

static AuthDrop
auth_drop_for_error (const GError *error)
{
  if (error->domain == EXO_CLUSTER_AUTH_ERROR)
    switch (error->code)
      {
      case EXO_CLUSTER_AUTH_ERROR_MISSING:
        return AUTH_DROP_MISSING;
      case EXO_CLUSTER_AUTH_ERROR_BAD_MAC:
        return AUTH_DROP_BAD_MAC;
      case EXO_CLUSTER_AUTH_ERROR_STALE:
        return AUTH_DROP_STALE;
      case EXO_CLUSTER_AUTH_ERROR_REPLAY:
        return AUTH_DROP_REPLAY;
      default:
        break;
      }
  return AUTH_DROP_MALFORMED;
}

static void
handle_datagram (UdpDiscovery       *self,
                 const char         *data,
                 gsize               length,
                 GInetSocketAddress *from)
{
  g_autoptr(UdpDiscoveryMessage) message = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *ip = g_inet_address_to_string (g_inet_socket_address_get_address (from));
  guint16 port = g_inet_socket_address_get_port (from);
  g_autofree char *source = g_strdup_printf ("%s:%u", ip, port);
  UdpDiscoveryEnvelope envelope = { 0, };
  Endpoint *endpoint;

  self->received++;
  if (length > UDP_DISCOVERY_MAX_DATAGRAM)
    {
      g_autofree char *reason = g_strdup_printf ("%s: datagram of %" G_GSIZE_FORMAT " bytes is "
                                                 "larger than %d bytes", source, length,
                                                 UDP_DISCOVERY_MAX_DATAGRAM);
      drop (self, &self->dropped_oversized, reason);
      return;
    }
  /* First the MAC: nothing of an unauthenticated datagram is looked at. */
  if (!udp_discovery_open (self->key, data, length, &envelope, &error))
    {
      drop_unauthenticated (self, auth_drop_for_error (error), source, error->message);
      return;
    }
  message = udp_discovery_message_parse (envelope.message, envelope.length, &error);
  if (message == NULL)
    {
      g_autofree char *reason = g_strdup_printf ("%s: %s", source, error->message);

      if (g_error_matches (error, UDP_DISCOVERY_MESSAGE_ERROR,
                           UDP_DISCOVERY_MESSAGE_ERROR_OVERSIZED))
        drop (self, &self->dropped_oversized, reason);
      else
        drop (self, &self->dropped_invalid, reason);
      udp_discovery_envelope_clear (&envelope);
      return;
    }
  /* A copy with a spoofed source must not send us anywhere else (checked
   * before the nonce is used up, so such a copy cannot shadow the real one). */
  if (!udp_discovery_envelope_has_address (&envelope, ip))
    {
      g_autofree char *text = g_strjoinv (", ", envelope.addresses);
      g_autofree char *why = g_strdup_printf ("node %s does not send from %s (it announced %s)",
                                              message->node_id, ip, text);

      drop_unauthenticated (self, AUTH_DROP_UNANNOUNCED_SOURCE, source, why);
      udp_discovery_envelope_clear (&envelope);
      return;
    }
  /* Fresh, and not seen before from this node (the id is authenticated). */
  if (!exo_replay_guard_check (self->guard, message->node_id, envelope.timestamp_us,
                               envelope.nonce, g_get_real_time (), &error))
    {
      drop_unauthenticated (self, auth_drop_for_error (error), source, error->message);
      udp_discovery_envelope_clear (&envelope);
      return;
    }
  udp_discovery_envelope_clear (&envelope);

  if (g_str_equal (message->node_id, self->effective_node_id))
    {
      if (g_strcmp0 (message->instance_id, self->instance_id) == 0)
        self->own_messages++;
      else
        note_duplicate (self, source);
      return;
    }

  endpoint = g_new0 (Endpoint, 1);
  endpoint->key = g_steal_pointer (&source);
  endpoint->source_port = port;
  endpoint->instance_id = g_steal_pointer (&message->instance_id);
  endpoint->address = g_strdup_printf ("%s:%u", ip, message->grpc_port);
  endpoint->interface_name = g_steal_pointer (&message->interface_name);
  endpoint->priority = message->priority;
  endpoint->capabilities = g_steal_pointer (&message->capabilities);
  endpoint->first_seen = endpoint->last_seen = g_get_monotonic_time ();
  peer_seen (self, message->node_id, endpoint);
}

static gboolean
socket_readable_cb (GSocket      *socket,
                    GIOCondition  condition,
                    gpointer      user_data)
{
  UdpDiscovery *self = g_object_ref (user_data);
  char buffer[UDP_DISCOVERY_MAX_DATAGRAM];

  g_object_ref (socket);
  for (guint i = 0; i < MAX_READS_PER_DISPATCH && self->socket == socket; i++)
    {
      g_autoptr(GSocketAddress) from = NULL;
      g_autoptr(GError) error = NULL;
      GInputVector vector = { buffer, sizeof buffer };
      /* MSG_TRUNC: the datagram's real length, even when it is longer
       * than the buffer (and so oversized). */
      int flags = MSG_TRUNC;
      gssize n;

      n = g_socket_receive_message (socket, &from, &vector, 1, NULL, NULL, &flags, NULL, &error);
      if (n < 0)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            self->receive_errors++;
          break;
        }
      if (!G_IS_INET_SOCKET_ADDRESS (from))
        continue;
      handle_datagram (self, buffer, (gsize) n, G_INET_SOCKET_ADDRESS (from));
    }
  g_object_unref (socket);
  g_object_unref (self);
  return G_SOURCE_CONTINUE;
}

/* --- sending ---------------------------------------------------------------- */

static void
target_free (Target *target)
{
  g_clear_object (&target->address);
  g_free (target->text);
  g_free (target->interface_name);
  g_free (target->interface_type);
  g_free (target);
}

static Target *
target_new (guint32 ip,
            guint16 port)
{
  Target *target = g_new0 (Target, 1);
  g_autofree char *text = ip_to_string (ip);
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string (text);

  target->ip = ip;
  target->address = g_inet_socket_address_new (address, port);
  target->text = g_strdup_printf ("%s:%u", text, port);
  return target;
}

/* "a.b.c.d" or "a.b.c.d:port". */
static Target *
parse_target (const char  *text,
              guint16      default_port,
              GError     **error)
{
  g_autofree char *host = g_strdup (text);
  char *colon = strrchr (host, ':');
  guint64 port = default_port;
  g_autoptr(GInetAddress) address = NULL;

  if (colon != NULL)
    {
      *colon = '\0';
      if (!g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &port, NULL))
        {
          g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                       "broadcast-addresses: '%s' has no valid port (1 to 65535)", text);
          return NULL;
        }
    }
  address = g_inet_address_new_from_string (host);
  if (address == NULL || g_inet_address_get_family (address) != G_SOCKET_FAMILY_IPV4)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "broadcast-addresses: '%s' is not an IPv4 address or address:port", text);
      return NULL;
    }
  return target_new (inet_address_to_ip (address), (guint16) port);
}

static UdpDiscoveryInterface *
interface_for (UdpDiscovery *self,
               guint32       ip)
{
  UdpDiscoveryInterface *fallback = NULL;

  for (guint i = 0; i < self->interfaces->len; i++)
    {
      UdpDiscoveryInterface *iface = g_ptr_array_index (self->interfaces, i);

      if (ip == 0xffffffff)
        {
          if (!iface->loopback && iface->broadcast != 0)
            return iface;
          continue;
        }
      if ((iface->broadcast != 0 && iface->broadcast == ip) ||
          (iface->netmask != 0 && (iface->address & iface->netmask) == (ip & iface->netmask)))
        return iface;
      if (iface->loopback && (ip >> 24) == 127)
        fallback = iface;
    }
  return fallback;
}

static guint16
send_port (UdpDiscovery *self)
{
  return self->port != 0 ? (guint16) self->port : self->bound_port;
}

/* The automatic targets: each interface's broadcast address (loopback only
 * when include-loopback), then 255.255.255.255. */
static GPtrArray *
automatic_targets (UdpDiscovery *self)
{
  GPtrArray *targets = g_ptr_array_new_with_free_func ((GDestroyNotify) target_free);
  guint16 port = send_port (self);

  for (guint i = 0; i < self->interfaces->len; i++)
    {
      UdpDiscoveryInterface *iface = g_ptr_array_index (self->interfaces, i);
      guint32 broadcast = iface->broadcast;
      Target *target;
      gboolean seen = FALSE;

      if (iface->loopback)
        {
          if (!self->include_loopback)
            continue;
          if (broadcast == 0)
            broadcast = iface->address | ~iface->netmask;
        }
      if (broadcast == 0)
        continue;
      for (guint j = 0; j < targets->len && !seen; j++)
        seen = ((Target *) g_ptr_array_index (targets, j))->ip == broadcast;
      if (seen)
        continue;
      target = target_new (broadcast, port);
      target->interface_name = g_strdup (iface->name);
      target->interface_type = g_strdup (iface->type);
      target->priority = iface->priority;
      g_ptr_array_add (targets, target);
    }
  g_ptr_array_add (targets, target_new (0xffffffff, port));
  return targets;
}

/* The addresses to announce with a datagram that leaves by the interface
 * @ip (or named @ifname): that one first, then the others, so that it is
 * among them however many the host has. */
static GStrv
addresses_for (UdpDiscovery *self,
               guint32       ip,
               const char   *ifname)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autofree char *first = NULL;
  guint n = 0;

  if (ip == 0 && ifname != NULL && *ifname != '\0' && self->interfaces != NULL)
    for (guint i = 0; i < self->interfaces->len && ip == 0; i++)
      {
        UdpDiscoveryInterface *iface = g_ptr_array_index (self->interfaces, i);

        if (g_str_equal (iface->name, ifname))
          ip = iface->address;
      }
  /* a socket bound to one address sends from it, whatever the interface */
  if (ip != 0 && !self->bound_to_one)
    {
      first = ip_to_string (ip);
      g_strv_builder_add (builder, first);
      n++;
    }
  for (guint i = 0; self->source_addresses[i] != NULL && n < UDP_DISCOVERY_MAX_ADDRESSES; i++)
    if (first == NULL || !g_str_equal (self->source_addresses[i], first))
      {
        g_strv_builder_add (builder, self->source_addresses[i]);
        n++;
      }
  return g_strv_builder_end (builder);
}

static void
send_to (UdpDiscovery *self,
         Target       *target)
{
  UdpDiscoveryInterface *iface = NULL;
  const char *ifname = target->interface_name;
  const char *iftype = target->interface_type;
  gint priority = target->priority;
  g_autofree char *data = NULL;
  g_autofree char *datagram = NULL;
  g_autoptr(GError) error = NULL;
  gsize length = 0, datagram_length = 0;

  if (ifname == NULL)
    {
      iface = interface_for (self, target->ip);
      ifname = iface != NULL ? iface->name : "";
      iftype = iface != NULL ? iface->type : "other";
      priority = iface != NULL ? iface->priority : udp_discovery_type_priority ("other");
    }
  if (!g_str_equal (self->interface_type, "auto"))
    {
      iftype = self->interface_type;
      priority = udp_discovery_type_priority (iftype);
    }

  data = udp_discovery_message_build (self->effective_node_id, (guint16) self->server_port,
                                      self->instance_id, ifname, iftype, priority,
                                      &self->device, &length);
  if (length > UDP_DISCOVERY_MAX_MESSAGE)
    {
      g_autofree char *text = g_strdup_printf ("our message of %" G_GSIZE_FORMAT " bytes is "
                                               "larger than %d bytes", length,
                                               UDP_DISCOVERY_MAX_MESSAGE);
      self->send_errors++;
      replace_string (&self->last_send_error, text);
      return;
    }
  {
    g_auto(GStrv) addresses = addresses_for (self, iface != NULL ? iface->address : 0, ifname);

    datagram = udp_discovery_seal (self->key, data, length, (const char * const *) addresses,
                                   g_get_real_time (), &datagram_length);
  }
  if (g_socket_send_to (self->socket, target->address, datagram, datagram_length, NULL, &error) < 0)
    {
      g_autofree char *text = g_strdup_printf ("%s: %s", target->text, error->message);

      self->send_errors++;
      replace_string (&self->last_send_error, text);
      return;
    }
  self->sent++;
}

static void probe_start (UdpDiscovery *self, StaticPeer *peer);

static int
compare_priority (gconstpointer a,
                  gconstpointer b)
{
  const UdpDiscoveryInterface *ia = *(const UdpDiscoveryInterface * const *) a;
  const UdpDiscoveryInterface *ib = *(const UdpDiscoveryInterface * const *) b;

  return (ib->priority > ia->priority) - (ib->priority < ia->priority);
}

/* The addresses our datagrams leave from, announced (signed) in each one:
 * listen-address when it is one, else this host's interfaces, the
 * preferred first, at most UDP_DISCOVERY_MAX_ADDRESSES. */
static void
update_source_addresses (UdpDiscovery *self)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(GPtrArray) sorted = g_ptr_array_new ();
  g_autoptr(GInetAddress) listen = g_inet_address_new_from_string (self->listen_address);
  guint n = 0;

  self->bound_to_one = listen != NULL && !g_inet_address_get_is_any (listen);
  if (self->bound_to_one)
    {
      g_strv_builder_add (builder, self->listen_address);
      n++;
    }
  else
    {
      for (guint i = 0; i < self->interfaces->len; i++)
        g_ptr_array_add (sorted, g_ptr_array_index (self->interfaces, i));
      g_ptr_array_sort (sorted, compare_priority);
      for (guint i = 0; i < sorted->len && n < UDP_DISCOVERY_MAX_ADDRESSES; i++)
        {
          UdpDiscoveryInterface *iface = g_ptr_array_index (sorted, i);
          g_autofree char *text = ip_to_string (iface->address);

          g_strv_builder_add (builder, text);
          n++;
        }
    }
  if (n == 0)
    g_strv_builder_add (builder, "127.0.0.1");   /* no interface: nobody hears us anyway */
  g_strfreev (self->source_addresses);
  self->source_addresses = g_strv_builder_end (builder);
}

static void
broadcast (UdpDiscovery *self)
{
  g_autoptr(GPtrArray) automatic = NULL;
  GPtrArray *targets;
  g_autoptr(GStrvBuilder) texts = g_strv_builder_new ();

  g_clear_pointer (&self->interfaces, g_ptr_array_unref);
  self->interfaces = udp_discovery_list_interfaces ();
  update_source_addresses (self);

  targets = self->explicit_targets;
  if (targets == NULL)
    targets = automatic = automatic_targets (self);

  for (guint i = 0; i < targets->len && self->socket != NULL; i++)
    {
      Target *target = g_ptr_array_index (targets, i);

      send_to (self, target);
      g_strv_builder_add (texts, target->text);
    }
  g_strfreev (self->last_targets);
  self->last_targets = g_strv_builder_end (texts);

  for (guint i = 0; self->static_targets != NULL && i < self->static_targets->len; i++)
    {
      StaticPeer *peer = g_ptr_array_index (self->static_targets, i);

      if (!peer->in_flight)
        probe_start (self, peer);
    }
}

static gboolean
broadcast_cb (gpointer user_data)
{
  UdpDiscovery *self = g_object_ref (user_data);

  broadcast (self);
  g_object_unref (self);
  return G_SOURCE_CONTINUE;
}

/* --- static peers ------------------------------------------------------------ */

static void
static_peer_free (StaticPeer *peer)
{
  g_free (peer->text);
  g_free (peer->uri);
  g_free (peer->node_id);
  g_free (peer);
}

static StaticPeer *
parse_static_peer (const char  *text,
                   GError     **error)
{
  g_autoptr(GSocketConnectable) address = NULL;
  g_autoptr(GError) local_error = NULL;
  StaticPeer *peer;
  guint16 port;

  address = g_network_address_parse (text, 0, &local_error);
  if (address == NULL)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "static-peers: '%s' is not host:port: %s", text, local_error->message);
      return NULL;
    }
  port = g_network_address_get_port (G_NETWORK_ADDRESS (address));
  if (port == 0)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "static-peers: '%s' has no port (host:port)", text);
      return NULL;
    }
  peer = g_new0 (StaticPeer, 1);
  peer->text = g_strdup (text);
  peer->uri = g_uri_join (G_URI_FLAGS_NONE, "http", NULL,
                          g_network_address_get_hostname (G_NETWORK_ADDRESS (address)),
                          port, "/peer/v1/health", NULL, NULL);
  return peer;
}

static void
probe_free (Probe *probe)
{
  destroy_source (&probe->timeout);
  g_clear_object (&probe->stream);
  g_clear_object (&probe->message);
  g_clear_object (&probe->cancellable);
  g_free (probe->nonce);
  g_free (probe);
}

static void
forget_static_endpoint (UdpDiscovery *self,
                        StaticPeer   *static_peer)
{
  g_autofree char *key = g_strdup_printf ("static:%s", static_peer->text);
  g_autofree char *old_id = g_steal_pointer (&static_peer->node_id);
  Peer *peer;
  Endpoint *endpoint;

  if (old_id == NULL || (peer = g_hash_table_lookup (self->peers, old_id)) == NULL ||
      (endpoint = peer_find_endpoint (peer, key)) == NULL)
    return;
  peer_remove_endpoint (peer, endpoint);
  if (peer->endpoints->len == 0)
    lose_peer (self, old_id, TRUE);
  else
    announce (self, old_id);
}

static void
probe_done (Probe       *probe,
            char        *node_id,        /* taken */
            GVariant    *capabilities,   /* taken */
            const char  *error_message)
{
  UdpDiscovery *self = probe->self;
  StaticPeer *static_peer = probe->peer;
  g_autofree char *id = node_id;
  g_autoptr(GVariant) caps = capabilities;

  g_assert (self->probes_in_flight > 0);
  self->probes_in_flight--;
  g_ptr_array_remove_fast (self->probes, probe);
  static_peer->in_flight = FALSE;

  if (probe->generation == self->generation && self->cleanup_task == NULL)
    {
      if (error_message != NULL)
        {
          g_autofree char *text = g_strdup_printf ("%s: %s", static_peer->text, error_message);

          self->static_probe_failures++;
          replace_string (&self->last_probe_error, text);
        }
      else if (g_str_equal (id, self->effective_node_id))
        {
          /* Ourselves in the list of static peers: the same list on every node. */
          self->own_messages++;
        }
      else
        {
          Endpoint *endpoint = g_new0 (Endpoint, 1);

          if (static_peer->node_id != NULL && !g_str_equal (static_peer->node_id, id))
            forget_static_endpoint (self, static_peer);
          replace_string (&static_peer->node_id, id);

          endpoint->key = g_strdup_printf ("static:%s", static_peer->text);
          endpoint->is_static = TRUE;
          endpoint->address = g_strdup (static_peer->text);
          endpoint->interface_name = g_strdup ("static");
          endpoint->capabilities = g_steal_pointer (&caps);
          endpoint->first_seen = endpoint->last_seen = g_get_monotonic_time ();
          peer_seen (self, id, endpoint);
        }
    }

  if (self->cleanup_task != NULL && self->probes_in_flight == 0)
    finish_cleanup (self);

  probe_free (probe);
  g_object_unref (self);
}

static void
probe_read_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Probe *probe = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *node_id = NULL;
  GVariant *capabilities = NULL;

  if (!g_input_stream_read_all_finish (G_INPUT_STREAM (source), result, &probe->length, &error))
    {
      probe_done (probe, NULL, NULL, error->message);
      return;
    }
  if (probe->length > UDP_DISCOVERY_MAX_MESSAGE)
    {
      probe_done (probe, NULL, NULL, "the health answer is larger than 4096 bytes");
      return;
    }
  /* At the end of the body: closing does not block. */
  g_input_stream_close (probe->stream, NULL, NULL);
  /* Only a holder of the cluster key answers our request so. */
  if (!exo_cluster_key_verify_response (probe->self->key,
                                        soup_message_headers_get_one (
                                          soup_message_get_response_headers (probe->message),
                                          EXO_CLUSTER_AUTH_HEADER),
                                        probe->nonce, soup_message_get_status (probe->message),
                                        (const guint8 *) probe->buffer, probe->length, &error))
    {
      g_autofree char *text = g_strdup_printf ("not a node of this cluster: %s", error->message);

      probe_done (probe, NULL, NULL, text);
      return;
    }
  if (!udp_discovery_parse_health (probe->buffer, probe->length, &node_id, &capabilities, &error))
    {
      probe_done (probe, NULL, NULL, error->message);
      return;
    }
  probe_done (probe, g_steal_pointer (&node_id), capabilities, NULL);
}

static void
probe_sent_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Probe *probe = user_data;
  g_autoptr(GError) error = NULL;
  guint status;

  probe->stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (probe->stream == NULL)
    {
      probe_done (probe, NULL, NULL, error->message);
      return;
    }
  status = soup_message_get_status (probe->message);
  if (status != SOUP_STATUS_OK)
    {
      g_autofree char *text = g_strdup_printf ("HTTP %u %s%s", status,
                                               soup_message_get_reason_phrase (probe->message),
                                               status == SOUP_STATUS_UNAUTHORIZED
                                               ? " (it refused our signature: another cluster key?)"
                                               : "");
      probe_done (probe, NULL, NULL, text);
      return;
    }
  g_input_stream_read_all_async (probe->stream, probe->buffer, sizeof probe->buffer,
                                 G_PRIORITY_DEFAULT, probe->cancellable, probe_read_cb, probe);
}

static gboolean
probe_timeout_cb (gpointer user_data)
{
  Probe *probe = user_data;

  g_clear_pointer (&probe->timeout, g_source_unref);
  g_cancellable_cancel (probe->cancellable);
  return G_SOURCE_REMOVE;
}

static void
probe_start (UdpDiscovery *self,
             StaticPeer   *static_peer)
{
  GMainContext *context = exo_resource_get_context (EXO_RESOURCE (self));
  SoupMessage *message = soup_message_new ("GET", static_peer->uri);
  Probe *probe;

  if (message == NULL)
    {
      self->static_probe_failures++;
      replace_string (&self->last_probe_error, static_peer->text);
      return;
    }

  probe = g_new0 (Probe, 1);
  probe->self = g_object_ref (self);
  probe->peer = static_peer;
  {
    const char *headers[] = { EXO_CLUSTER_AUTH_NODE_HEADER, self->effective_node_id, NULL };
    g_autofree char *auth = exo_cluster_key_sign_request (self->key, "GET", "/peer/v1/health",
                                                          headers, NULL, 0, g_get_real_time (),
                                                          &probe->nonce);
    SoupMessageHeaders *request_headers = soup_message_get_request_headers (message);

    soup_message_headers_replace (request_headers, EXO_CLUSTER_AUTH_NODE_HEADER,
                                  self->effective_node_id);
    soup_message_headers_replace (request_headers, EXO_CLUSTER_AUTH_HEADER, auth);
  }
  probe->generation = self->generation;
  probe->message = message;
  probe->cancellable = g_cancellable_new ();
  probe->timeout = g_timeout_source_new (self->probe_timeout_ms);
  g_source_set_callback (probe->timeout, probe_timeout_cb, probe, NULL);
  attach_source (self, probe->timeout);

  static_peer->in_flight = TRUE;
  self->probes_in_flight++;
  g_ptr_array_add (self->probes, probe);
  self->static_probes++;

  g_main_context_push_thread_default (context);
  soup_session_send_async (self->session, probe->message, G_PRIORITY_DEFAULT,
                           probe->cancellable, probe_sent_cb, probe);
  g_main_context_pop_thread_default (context);
}

/* --- ExoResource ---------------------------------------------------------------- */

static gboolean
start (UdpDiscovery  *self,
       GError       **error)
{
  GMainContext *context = exo_resource_get_context (EXO_RESOURCE (self));
  g_autoptr(GInetAddress) listen = NULL;
  g_autoptr(GSocketAddress) bind_address = NULL;
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GError) local_error = NULL;

  resolve_node_id (self);
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

  if (self->broadcast_addresses != NULL && self->broadcast_addresses[0] != NULL)
    {
      self->explicit_targets = g_ptr_array_new_with_free_func ((GDestroyNotify) target_free);
      for (guint i = 0; self->broadcast_addresses[i] != NULL; i++)
        {
          Target *target = parse_target (self->broadcast_addresses[i],
                                         self->port != 0 ? (guint16) self->port : 0, error);

          if (target == NULL)
            return FALSE;
          g_ptr_array_add (self->explicit_targets, target);
        }
    }

  if (self->static_peers != NULL && self->static_peers[0] != NULL)
    {
      self->static_targets = g_ptr_array_new_with_free_func ((GDestroyNotify) static_peer_free);
      for (guint i = 0; self->static_peers[i] != NULL; i++)
        {
          StaticPeer *peer = parse_static_peer (self->static_peers[i], error);

          if (peer == NULL)
            return FALSE;
          g_ptr_array_add (self->static_targets, peer);
        }
    }

  udp_discovery_device_clear (&self->device);
  self->device = self->device_settings;
  self->device.model = g_strdup (self->device_settings.model);
  self->device.chip = g_strdup (self->device_settings.chip);
  udp_discovery_device_probe (&self->device);

  self->socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                               G_SOCKET_PROTOCOL_UDP, error);
  if (self->socket == NULL)
    return FALSE;
  g_socket_set_blocking (self->socket, FALSE);
  g_socket_set_broadcast (self->socket, TRUE);
  bind_address = g_inet_socket_address_new (listen, (guint16) self->port);
  /* allow_reuse: SO_REUSEADDR (GLib adds SO_REUSEPORT for datagram
   * sockets), so that several nodes on one host share a broadcast port. */
  if (!g_socket_bind (self->socket, bind_address, TRUE, error))
    {
      g_prefix_error (error, "cannot listen on %s:%u: ", self->listen_address, self->port);
      return FALSE;
    }
  local = g_socket_get_local_address (self->socket, error);
  if (local == NULL)
    return FALSE;
  self->bound_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  if (self->explicit_targets != NULL)
    for (guint i = 0; i < self->explicit_targets->len; i++)
      {
        Target *target = g_ptr_array_index (self->explicit_targets, i);

        if (g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (target->address)) == 0)
          {
            Target *fixed = target_new (target->ip, self->bound_port);

            g_ptr_array_index (self->explicit_targets, i) = fixed;
            target_free (target);
          }
      }

  if (self->static_targets != NULL)
    {
      g_main_context_push_thread_default (context);
      self->session = soup_session_new_with_options ("timeout", self->probe_timeout_ms / 1000 + 1,
                                                     "idle-timeout", 60,
                                                     "user-agent", "exo-node-udp-discovery/1.0",
                                                     NULL);
      soup_session_set_proxy_resolver (self->session, NULL);
      g_main_context_pop_thread_default (context);
    }

  self->read_source = g_socket_create_source (self->socket, G_IO_IN, NULL);
  g_source_set_callback (self->read_source, G_SOURCE_FUNC (socket_readable_cb), self, NULL);
  attach_source (self, self->read_source);

  self->broadcast_source = g_timeout_source_new (self->broadcast_interval_ms);
  g_source_set_callback (self->broadcast_source, broadcast_cb, self, NULL);
  attach_source (self, self->broadcast_source);

  self->expire_source = g_timeout_source_new (MAX (10, MIN (self->peer_timeout_ms / 4, 1000)));
  g_source_set_callback (self->expire_source, expire_cb, self, NULL);
  attach_source (self, self->expire_source);

  /* Say hello at once rather than one interval later. */
  broadcast (self);
  return TRUE;
}

/* Stops sockets and timers; probes are cancelled and waited for. */
static void
stop (UdpDiscovery *self)
{
  g_autoptr(GPtrArray) cancellables = g_ptr_array_new_with_free_func (g_object_unref);

  self->generation++;
  destroy_source (&self->read_source);
  destroy_source (&self->broadcast_source);
  destroy_source (&self->expire_source);
  if (self->socket != NULL)
    g_socket_close (self->socket, NULL);
  g_clear_object (&self->socket);
  /* A probe may complete (and leave the array) while it is cancelled. */
  for (guint i = 0; i < self->probes->len; i++)
    g_ptr_array_add (cancellables,
                     g_object_ref (((Probe *) g_ptr_array_index (self->probes, i))->cancellable));
  for (guint i = 0; i < cancellables->len; i++)
    g_cancellable_cancel (g_ptr_array_index (cancellables, i));
  if (self->session != NULL)
    soup_session_abort (self->session);
  g_clear_pointer (&self->explicit_targets, g_ptr_array_unref);
  g_clear_pointer (&self->interfaces, g_ptr_array_unref);
  self->duplicate_active = FALSE;
}

static void
finish_cleanup (UdpDiscovery *self)
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
      finish_cleanup (self);
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
    lose_peer (self, g_ptr_array_index (ids, i), FALSE);
  g_hash_table_remove_all (self->peers);

  self->cleanup_task = g_object_ref (task);
  if (self->probes_in_flight == 0)
    finish_cleanup (self);
}

static void
udp_discovery_do_check_health (ExoResource *resource,
                               GTask       *task)
{
  UdpDiscovery *self = UDP_DISCOVERY (resource);

  if (self->duplicate_active)
    g_task_return_error (task, duplicate_error (self));
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

/* --- ExoDiscovery --------------------------------------------------------------- */

static int
compare_peers (gconstpointer a,
               gconstpointer b)
{
  const Peer *pa = *(const Peer * const *) a;
  const Peer *pb = *(const Peer * const *) b;

  return strcmp (pa->node_id, pb->node_id);
}

static GVariant *
udp_discovery_list_peers (ExoDiscovery *discovery)
{
  UdpDiscovery *self = UDP_DISCOVERY (discovery);
  g_autoptr(GPtrArray) sorted = g_ptr_array_new ();
  GVariantBuilder builder;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (sorted, value);
  g_ptr_array_sort (sorted, compare_peers);
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sssa{sv})"));
  for (guint i = 0; i < sorted->len; i++)
    {
      Peer *peer = g_ptr_array_index (sorted, i);

      if (peer->chosen == NULL || peer->announced == NULL)
        continue;
      g_variant_builder_add (&builder, "(sss@a{sv})", peer->node_id, peer->chosen->address,
                             peer->chosen->interface_name, peer->chosen->capabilities);
    }
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

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
  finish_cleanup (self);

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
set_string (char         **slot,
            const GValue  *value)
{
  const char *s = g_value_get_string (value);

  if (g_strcmp0 (*slot, s) == 0)
    return FALSE;
  g_free (*slot);
  *slot = g_strdup (s);
  return TRUE;
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
set_uint (guint        *slot,
          const GValue *value)
{
  if (*slot == g_value_get_uint (value))
    return FALSE;
  *slot = g_value_get_uint (value);
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
      changed = set_uint (&self->port, value);
      break;
    case PROP_LISTEN_ADDRESS:
      changed = set_string (&self->listen_address, value);
      break;
    case PROP_BROADCAST_ADDRESSES:
      changed = set_strv (&self->broadcast_addresses, value);
      break;
    case PROP_BROADCAST_INTERVAL_MS:
      changed = set_uint (&self->broadcast_interval_ms, value);
      break;
    case PROP_PEER_TIMEOUT_MS:
      changed = set_uint (&self->peer_timeout_ms, value);
      break;
    case PROP_STATIC_PEERS:
      changed = set_strv (&self->static_peers, value);
      break;
    case PROP_PROBE_TIMEOUT_MS:
      changed = set_uint (&self->probe_timeout_ms, value);
      break;
    case PROP_NODE_ID:
      changed = set_string (&self->node_id, value);
      if (changed)
        resolve_node_id (self);
      break;
    case PROP_SERVER_PORT:
      changed = set_uint (&self->server_port, value);
      break;
    case PROP_DEVICE_MODEL:
      changed = set_string (&self->device_settings.model, value);
      break;
    case PROP_DEVICE_CHIP:
      changed = set_string (&self->device_settings.chip, value);
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
      changed = set_string (&self->interface_type, value);
      if (self->interface_type == NULL || *self->interface_type == '\0')
        replace_string (&self->interface_type, "auto");
      break;
    case PROP_INCLUDE_LOOPBACK:
      changed = self->include_loopback != g_value_get_boolean (value);
      self->include_loopback = g_value_get_boolean (value);
      break;
    case PROP_MAX_PEERS:
      changed = set_uint (&self->max_peers, value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  if (changed)
    g_object_notify_by_pspec (object, pspec);
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
   * This node's id.  Empty (the default): `$EXO_NODE_ID`, else a random
   * UUID made once per process.  See #UdpDiscovery:effective-node-id.
   */
  properties[PROP_NODE_ID] =
    g_param_spec_string ("node-id", NULL, "This node's id (empty: $EXO_NODE_ID or a UUID)",
                         NULL, RW);
  /** UdpDiscovery:effective-node-id: the node id in use */
  properties[PROP_EFFECTIVE_NODE_ID] =
    g_param_spec_string ("effective-node-id", NULL, "The node id in use", NULL, RO);
  /** UdpDiscovery:instance-id: a random id of this resource, sent as `instance_id` */
  properties[PROP_INSTANCE_ID] =
    g_param_spec_string ("instance-id", NULL, "Random id of this resource", NULL, RO);
  /** UdpDiscovery:server-port: this node's HTTP port, announced as `grpc_port` */
  properties[PROP_SERVER_PORT] =
    g_param_spec_uint ("server-port", NULL, "HTTP port announced as grpc_port",
                       1, 65535, 52415, RW);
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
  self->server_port = 52415;
  self->interface_type = g_strdup ("auto");
  self->max_peers = 1024;
  self->instance_id = g_uuid_string_random ();
  self->probes = g_ptr_array_new ();
  self->peers = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) peer_free);
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
