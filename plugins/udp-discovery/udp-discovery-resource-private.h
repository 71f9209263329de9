/* udp-discovery-resource-private.h: what the four files of the
 * UdpDiscovery resource share (udp-discovery.c has the map): the object's
 * structure, the peer table's Peer and Endpoint, and the calls between
 * the files.  Not installed.  Kept apart from udp-discovery-private.h,
 * whose pure helpers the fuzzers build without libsoup.
 *
 * Rules: the same for every file of the resource: the resource's main
 * context only, no threads, no locks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "udp-discovery-private.h"

#include <libsoup/soup.h>

G_BEGIN_DECLS

#define UDP_TYPE_DISCOVERY (udp_discovery_get_type ())
G_DECLARE_FINAL_TYPE (UdpDiscovery, udp_discovery, UDP, DISCOVERY, ExoManagedResource)

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
  guint     server_port;       /* the setting; 0: the server's */
  char     *server_id;
  guint     announced_port;    /* resolved at start */
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

/* --- udp-discovery.c ------------------------------------------------------ */

void      udp_discovery_replace_string  (char          **slot,
                                         const char     *value);
GSource  *udp_discovery_attach_source   (UdpDiscovery   *self,
                                         GSource        *source);
void      udp_discovery_destroy_source  (GSource       **source);
/* Completes a pending cleanup once no probe is in flight. */
void      udp_discovery_finish_cleanup  (UdpDiscovery   *self);

/* --- udp-discovery-peers.c ------------------------------------------------ */

void      udp_discovery_peer_free       (Peer           *peer);
/* A sign of life of @node_id through @incoming (taken). */
void      udp_discovery_peer_seen       (UdpDiscovery   *self,
                                         const char     *node_id,
                                         Endpoint       *incoming);
void      udp_discovery_forget_endpoint (UdpDiscovery   *self,
                                         const char     *node_id,
                                         const char     *key);
/* Forgets @node_id and emits peer-lost (counted when @count). */
void      udp_discovery_lose_peer       (UdpDiscovery   *self,
                                         const char     *node_id,
                                         gboolean        count);
gboolean  udp_discovery_expire_cb       (gpointer        user_data);
GError   *udp_discovery_duplicate_error (UdpDiscovery   *self);
void      udp_discovery_handle_datagram (UdpDiscovery       *self,
                                         const char         *data,
                                         gsize               length,
                                         GInetSocketAddress *from);
GVariant *udp_discovery_list_peers      (ExoDiscovery   *discovery);

/* --- udp-discovery-sockets.c ---------------------------------------------- */

gboolean  udp_discovery_parse_broadcast_addresses (UdpDiscovery  *self,
                                                   GError       **error);
gboolean  udp_discovery_open_socket     (UdpDiscovery   *self,
                                         GInetAddress   *listen,
                                         GError        **error);
gboolean  udp_discovery_socket_readable_cb (GSocket      *socket,
                                            GIOCondition  condition,
                                            gpointer      user_data);
/* Announces this node to every target, then probes the static peers. */
void      udp_discovery_broadcast       (UdpDiscovery   *self);
gboolean  udp_discovery_broadcast_cb    (gpointer        user_data);

/* --- udp-discovery-static.c ----------------------------------------------- */

gboolean  udp_discovery_parse_static_peers (UdpDiscovery  *self,
                                            GError       **error);
/* The parse of udp_discovery_parse_static_peers(), keeping nothing. */
gboolean  udp_discovery_check_static_peers (const char * const  *static_peers,
                                            GError             **error);
void      udp_discovery_open_session    (UdpDiscovery   *self);
void      udp_discovery_probe_static_peers (UdpDiscovery *self);
void      udp_discovery_cancel_probes   (UdpDiscovery   *self);

G_END_DECLS
