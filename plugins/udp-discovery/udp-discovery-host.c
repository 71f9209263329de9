/* udp-discovery-host.c: this host's IPv4 interfaces and device capabilities.
 *
 * Interface types and priorities follow exo (higher priority is preferred
 * when a peer is heard on several interfaces), detected from sysfs rather
 * than from name prefixes where Linux tells us.
 *
 * Rules: no state kept, no lock: each call reads getifaddrs(), sysfs and
 * (through exo_device_capabilities_probe()) /proc, so any thread may call
 * it, but it blocks briefly: the discovery calls it in its main context,
 * the device probe once at initialize and the interface list once per
 * broadcast, never per datagram received.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "udp-discovery-private.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>

void
udp_discovery_interface_free (UdpDiscoveryInterface *iface)
{
  if (iface == NULL)
    return;
  g_free (iface->name);
  g_free (iface->type);
  g_free (iface);
}

static const struct {
  const char *type;
  gint        priority;
} type_priorities[] = {
  { "container",   7 },
  { "loopback",    6 },
  { "thunderbolt", 5 },
  { "ethernet",    4 },
  { "wifi",        3 },
  { "other",       2 },
  { "virtual",     1 },
};

gint
udp_discovery_type_priority (const char *type)
{
  for (gsize i = 0; i < G_N_ELEMENTS (type_priorities); i++)
    if (g_strcmp0 (type, type_priorities[i].type) == 0)
      return type_priorities[i].priority;
  return 2;
}

static gboolean
sysfs_exists (const char *name,
              const char *leaf)
{
  g_autofree char *path = g_build_filename ("/sys/class/net", name, leaf, NULL);

  return g_file_test (path, G_FILE_TEST_EXISTS);
}

static gboolean
has_prefix_any (const char         *name,
                const char * const *prefixes)
{
  for (; *prefixes != NULL; prefixes++)
    if (g_str_has_prefix (name, *prefixes))
      return TRUE;
  return FALSE;
}

const char *
udp_discovery_interface_type (const char *name,
                              gboolean    loopback,
                              gint       *priority)
{
  static const char * const container_prefixes[] = {
    "docker", "br-", "veth", "cni", "flannel", "cali", "weave", "virbr", "podman", NULL
  };
  static const char * const virtual_prefixes[] = {
    "tun", "tap", "wg", "tailscale", "zt", "vpn", "ppp", NULL
  };
  const char *type;
  g_autofree char *sysfs_type = NULL;
  g_autofree char *driver_link = NULL;
  g_autofree char *driver = NULL;

  if (loopback)
    type = "loopback";
  else if (sysfs_exists (name, "wireless") || sysfs_exists (name, "phy80211"))
    type = "wifi";
  else if (sysfs_exists (name, "bridge") || has_prefix_any (name, container_prefixes))
    type = "container";
  else if (sysfs_exists (name, "tun_flags") || has_prefix_any (name, virtual_prefixes))
    type = "virtual";
  else
    {
      g_autofree char *type_path = g_build_filename ("/sys/class/net", name, "type", NULL);
      g_autofree char *link_path = g_build_filename ("/sys/class/net", name, "device", "driver", NULL);

      driver_link = g_file_read_link (link_path, NULL);
      driver = driver_link != NULL ? g_path_get_basename (driver_link) : NULL;
      if (g_file_get_contents (type_path, &sysfs_type, NULL, NULL))
        g_strstrip (sysfs_type);

      if (g_strcmp0 (driver, "thunderbolt-net") == 0 || g_str_has_prefix (name, "thunderbolt"))
        type = "thunderbolt";
      else if (g_strcmp0 (sysfs_type, "1") == 0)   /* ARPHRD_ETHER */
        type = "ethernet";
      else
        type = "other";
    }

  if (priority != NULL)
    *priority = udp_discovery_type_priority (type);
  return type;
}

GPtrArray *
udp_discovery_list_interfaces (void)
{
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) udp_discovery_interface_free);
  struct ifaddrs *addrs = NULL;

  if (getifaddrs (&addrs) != 0)
    return list;

  for (struct ifaddrs *ifa = addrs; ifa != NULL; ifa = ifa->ifa_next)
    {
      UdpDiscoveryInterface *iface;

      if (ifa->ifa_addr == NULL || ifa->ifa_addr->sa_family != AF_INET ||
          (ifa->ifa_flags & IFF_UP) == 0 || ifa->ifa_name == NULL)
        continue;

      iface = g_new0 (UdpDiscoveryInterface, 1);
      iface->name = g_strdup (ifa->ifa_name);
      iface->loopback = (ifa->ifa_flags & IFF_LOOPBACK) != 0;
      iface->address = ntohl (((struct sockaddr_in *) ifa->ifa_addr)->sin_addr.s_addr);
      if (ifa->ifa_netmask != NULL)
        iface->netmask = ntohl (((struct sockaddr_in *) ifa->ifa_netmask)->sin_addr.s_addr);
      if ((ifa->ifa_flags & IFF_BROADCAST) != 0 && ifa->ifa_broadaddr != NULL &&
          ifa->ifa_broadaddr->sa_family == AF_INET)
        iface->broadcast = ntohl (((struct sockaddr_in *) ifa->ifa_broadaddr)->sin_addr.s_addr);
      iface->type = g_strdup (udp_discovery_interface_type (iface->name, iface->loopback,
                                                            &iface->priority));
      g_ptr_array_add (list, iface);
    }

  freeifaddrs (addrs);
  return list;
}

void
udp_discovery_device_probe (UdpDiscoveryDevice *device)
{
  g_autoptr(GVariant) host = exo_device_capabilities_probe ();

  if (device->memory_mib == 0)
    g_variant_lookup (host, "memory", "t", &device->memory_mib);
  if (device->chip == NULL || *device->chip == '\0')
    {
      g_free (device->chip);
      g_variant_lookup (host, "chip", "s", &device->chip);
    }
  if (device->model == NULL || *device->model == '\0')
    {
      g_free (device->model);
      g_variant_lookup (host, "model", "s", &device->model);
    }
}
