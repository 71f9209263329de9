/* fuzz-discovery.c: the discovery datagram and a static peer's health
 * answer (plugins/udp-discovery/udp-discovery-message.c, compiled in).
 *
 * Whatever parses must be usable as the resource uses it: the node id and
 * strings valid UTF-8, the capabilities an a{sv}, and the message this node
 * would announce from them strict JSON that parses back to the same id.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-common.h"
#include "udp-discovery-private.h"

#include <string.h>

static void
device_from_variant (GVariant           *caps,
                     UdpDiscoveryDevice *device)
{
  memset (device, 0, sizeof *device);
  EXO_FUZZ_CHECK (caps != NULL && g_variant_is_of_type (caps, G_VARIANT_TYPE_VARDICT), "caps");
  g_variant_lookup (caps, "model", "s", &device->model);
  g_variant_lookup (caps, "chip", "s", &device->chip);
  g_variant_lookup (caps, "memory", "t", &device->memory_mib);
  g_variant_lookup (caps, "flops-fp32", "d", &device->fp32);
  g_variant_lookup (caps, "flops-fp16", "d", &device->fp16);
  g_variant_lookup (caps, "flops-int8", "d", &device->int8);
}

static void
check_round_trip (const UdpDiscoveryMessage *message)
{
  UdpDiscoveryDevice device;
  g_autoptr(UdpDiscoveryMessage) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  gsize length = 0;

  EXO_FUZZ_CHECK (g_utf8_validate (message->node_id, -1, NULL), "node_id");
  EXO_FUZZ_CHECK (g_utf8_validate (message->interface_name, -1, NULL), "interface_name");
  EXO_FUZZ_CHECK (g_utf8_validate (message->interface_type, -1, NULL), "interface_type");
  EXO_FUZZ_CHECK (message->instance_id == NULL || g_utf8_validate (message->instance_id, -1, NULL),
                  "instance_id");
  device_from_variant (message->capabilities, &device);

  text = udp_discovery_message_build (message->node_id, message->grpc_port,
                                      message->instance_id != NULL ? message->instance_id : "i",
                                      message->interface_name, message->interface_type,
                                      (gint) CLAMP (message->priority, G_MININT, G_MAXINT),
                                      &device, &length);
  udp_discovery_device_clear (&device);
  exo_fuzz_assert_json (text, length, "the discovery message we build");
  if (length > UDP_DISCOVERY_MAX_MESSAGE)
    return;   /* our own limit on what we send; the sender checks it */
  again = udp_discovery_message_parse (text, length, &error);
  EXO_FUZZ_CHECK (again != NULL, "our own message is refused: %s", error->message);
  EXO_FUZZ_CHECK (g_str_equal (again->node_id, message->node_id), "node_id changed");
  EXO_FUZZ_CHECK (again->grpc_port == message->grpc_port, "grpc_port changed");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(UdpDiscoveryMessage) message = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *node_id = NULL;
  g_autoptr(GVariant) caps = NULL;

  exo_fuzz_init ();

  message = udp_discovery_message_parse ((const char *) data, size, &error);
  if (message != NULL)
    check_round_trip (message);
  else
    EXO_FUZZ_CHECK (error != NULL && error->domain == UDP_DISCOVERY_MESSAGE_ERROR, "error");
  g_clear_error (&error);

  if (udp_discovery_parse_health ((const char *) data, size, &node_id, &caps, &error))
    {
      UdpDiscoveryDevice device;

      EXO_FUZZ_CHECK (g_utf8_validate (node_id, -1, NULL), "health node_id");
      device_from_variant (caps, &device);
      udp_discovery_device_clear (&device);
    }
  else
    EXO_FUZZ_CHECK (error != NULL, "health error");
  return 0;
}
