/* udp-discovery-private.h: what the files of the udp-discovery plugin share.
 *
 * udp-discovery-message.c: the wire format (build, parse, validate);
 * udp-discovery-auth.c:    the authenticated envelope around a message;
 * udp-discovery-host.c:    this host's interfaces and device capabilities;
 * udp-discovery.c, -peers.c, -sockets.c, -static.c: the resource (they
 *                          share udp-discovery-resource-private.h, which
 *                          needs libsoup; this header does not, for the
 *                          fuzz harness).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>

G_BEGIN_DECLS

/* The largest datagram accepted or sent (docs/cluster-protocol.md). */
#define UDP_DISCOVERY_MAX_MESSAGE 4096
/* How deeply a message's objects and arrays may nest (exo's has 3 levels). */
#define UDP_DISCOVERY_MAX_JSON_DEPTH 8
/* The largest flops value (TFLOPS) accepted or announced. */
#define UDP_DISCOVERY_MAX_FLOPS 1e15
/* The longest node id, in characters. */
#define UDP_DISCOVERY_MAX_NODE_ID 128
/* The longest instance id and any other string field, in characters. */
#define UDP_DISCOVERY_MAX_STRING 256

#define UDP_DISCOVERY_MESSAGE_ERROR (udp_discovery_message_error_quark ())
GQuark udp_discovery_message_error_quark (void);

typedef enum {
  UDP_DISCOVERY_MESSAGE_ERROR_OVERSIZED,
  UDP_DISCOVERY_MESSAGE_ERROR_INVALID,
} UdpDiscoveryMessageError;

/* What a node says about its hardware; exo's device_capabilities. */
typedef struct {
  char    *model;
  char    *chip;
  guint64  memory_mib;
  double   fp32;
  double   fp16;
  double   int8;
} UdpDiscoveryDevice;

void      udp_discovery_device_clear      (UdpDiscoveryDevice *device);
/* a{sv}: model s, chip s, memory t, flops-fp32 d, flops-fp16 d, flops-int8 d */
GVariant *udp_discovery_device_to_variant (const UdpDiscoveryDevice *device);

/* A valid discovery datagram. */
typedef struct {
  char     *node_id;
  guint16   grpc_port;
  char     *instance_id;     /* NULL when the sender did not say (exo does not) */
  char     *interface_name;  /* "" when absent */
  char     *interface_type;  /* "" when absent */
  gint64    priority;        /* 0 when absent */
  GVariant *capabilities;    /* a{sv}, never NULL */
} UdpDiscoveryMessage;

void                 udp_discovery_message_free  (UdpDiscoveryMessage *message);
UdpDiscoveryMessage *udp_discovery_message_parse (const char          *data,
                                                  gsize                length,
                                                  GError             **error);
char                *udp_discovery_message_build (const char          *node_id,
                                                  guint16              grpc_port,
                                                  const char          *instance_id,
                                                  const char          *interface_name,
                                                  const char          *interface_type,
                                                  gint                 priority,
                                                  const UdpDiscoveryDevice *device,
                                                  gsize               *length);
/* {"status": "ok", "node_id": …, ["device_capabilities": {…}]}, as served at
 * GET /peer/v1/health. */
gboolean             udp_discovery_parse_health  (const char          *data,
                                                  gsize                length,
                                                  char               **node_id,
                                                  GVariant           **capabilities,
                                                  GError             **error);
gboolean             udp_discovery_node_id_is_valid (const char       *node_id,
                                                     GError          **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (UdpDiscoveryMessage, udp_discovery_message_free)

/* --- the authenticated envelope (udp-discovery-auth.c) --------------------- */

/* The longest authentication line, and so the largest datagram. */
#define UDP_DISCOVERY_MAX_ENVELOPE 1024
#define UDP_DISCOVERY_MAX_DATAGRAM (UDP_DISCOVERY_MAX_MESSAGE + UDP_DISCOVERY_MAX_ENVELOPE)
/* The most source addresses one datagram may announce. */
#define UDP_DISCOVERY_MAX_ADDRESSES 16

/* An opened envelope: the message points into the datagram. */
typedef struct {
  gint64       timestamp_us;
  char         nonce[33];
  GStrv        addresses;    /* the sender's IPv4 addresses */
  const char  *message;
  gsize        length;
} UdpDiscoveryEnvelope;

/* The datagram for @message: an EXO-AUTH line, then the message. */
char     *udp_discovery_seal                 (ExoClusterKey              *key,
                                              const char                 *message,
                                              gsize                       length,
                                              const char * const         *addresses,
                                              gint64                      now_us,
                                              gsize                      *out_length);
/* Verifies the MAC and parses the line; EXO_CLUSTER_AUTH_ERROR_MISSING,
 * _MALFORMED or _BAD_MAC.  Freshness is the caller's (ExoReplayGuard). */
gboolean  udp_discovery_open                 (ExoClusterKey              *key,
                                              const char                 *data,
                                              gsize                       length,
                                              UdpDiscoveryEnvelope       *envelope,
                                              GError                    **error);
void      udp_discovery_envelope_clear       (UdpDiscoveryEnvelope       *envelope);
gboolean  udp_discovery_envelope_has_address (const UdpDiscoveryEnvelope *envelope,
                                              const char                 *ip);

/* An IPv4 interface of this host that is up. */
typedef struct {
  char     *name;
  char     *type;        /* "ethernet", "wifi", "loopback", … */
  gint      priority;    /* as exo: higher is preferred */
  guint32   address;     /* host byte order */
  guint32   netmask;
  guint32   broadcast;   /* 0 when the interface has none */
  gboolean  loopback;
} UdpDiscoveryInterface;

void       udp_discovery_interface_free   (UdpDiscoveryInterface *iface);
GPtrArray *udp_discovery_list_interfaces  (void);
const char *udp_discovery_interface_type  (const char *name,
                                           gboolean    loopback,
                                           gint       *priority);
gint       udp_discovery_type_priority    (const char *type);
/* Fills what @device does not set from this host: memory from /proc/meminfo,
 * chip from uname, model from DMI (or "Linux"). */
void       udp_discovery_device_probe     (UdpDiscoveryDevice *device);

G_END_DECLS
