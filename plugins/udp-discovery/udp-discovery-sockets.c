/* udp-discovery-sockets.c: the UDP side of UdpDiscovery: the one socket
 * (opened by start() through udp_discovery_open_socket()), reading
 * datagrams from it, and announcing this node to the broadcast targets
 * (each interface's broadcast address and 255.255.255.255, or the
 * configured broadcast-addresses) every broadcast-interval-ms.
 *
 * One UDP socket, bound to listen-address:port with SO_REUSEADDR and
 * SO_BROADCAST, both receives and sends, so that a datagram's source port is
 * the sender's discovery port.  Each datagram is sealed with the cluster
 * key and announces the addresses it leaves from (udp-discovery-auth.c).
 *
 * Rules: the resource's main context only: the socket source and the
 * broadcast timer (attached by start()) call in here; no threads, no
 * locks.  The socket is non-blocking; one dispatch reads at most
 * MAX_READS_PER_DISPATCH datagrams, so that a flood cannot starve the
 * context, and stops when the socket is closed under it (the resource
 * stopped from a signal handler).  Callbacks hold a reference to the
 * resource while they run.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "udp-discovery-resource-private.h"

#include <string.h>
#include <sys/socket.h>

/* Datagrams read per wake-up, so that a flood cannot starve the context. */
#define MAX_READS_PER_DISPATCH 64

typedef struct {
  GSocketAddress *address;
  char           *text;      /* "ip:port" */
  guint32         ip;        /* host byte order */
  char           *interface_name;   /* NULL: look it up when sending */
  char           *interface_type;
  gint            priority;
} Target;

/* --- addresses ------------------------------------------------------------- */

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

/* --- receiving ------------------------------------------------------------ */

gboolean
udp_discovery_socket_readable_cb (GSocket      *socket,
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
      udp_discovery_handle_datagram (self, buffer, (gsize) n, G_INET_SOCKET_ADDRESS (from));
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

/* broadcast-addresses as Targets (explicit_targets), or none: automatic. */
gboolean
udp_discovery_parse_broadcast_addresses (UdpDiscovery  *self,
                                         GError       **error)
{
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
  return TRUE;
}

/* The one UDP socket, bound to @listen:port; also gives explicit targets
 * without a port the bound one. */
gboolean
udp_discovery_open_socket (UdpDiscovery  *self,
                           GInetAddress  *listen,
                           GError       **error)
{
  g_autoptr(GSocketAddress) bind_address = NULL;
  g_autoptr(GSocketAddress) local = NULL;

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
  return TRUE;
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

  data = udp_discovery_message_build (self->effective_node_id, (guint16) self->announced_port,
                                      self->instance_id, ifname, iftype, priority,
                                      &self->device, &length);
  if (length > UDP_DISCOVERY_MAX_MESSAGE)
    {
      g_autofree char *text = g_strdup_printf ("our message of %" G_GSIZE_FORMAT " bytes is "
                                               "larger than %d bytes", length,
                                               UDP_DISCOVERY_MAX_MESSAGE);
      self->send_errors++;
      udp_discovery_replace_string (&self->last_send_error, text);
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
      udp_discovery_replace_string (&self->last_send_error, text);
      return;
    }
  self->sent++;
}

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

void
udp_discovery_broadcast (UdpDiscovery *self)
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

  udp_discovery_probe_static_peers (self);
}

gboolean
udp_discovery_broadcast_cb (gpointer user_data)
{
  UdpDiscovery *self = g_object_ref (user_data);

  udp_discovery_broadcast (self);
  g_object_unref (self);
  return G_SOURCE_CONTINUE;
}
