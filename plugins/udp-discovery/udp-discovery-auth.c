/* udp-discovery-auth.c: the authenticated envelope around a discovery
 * message (docs/cluster-protocol.md, "Authentication").
 *
 * A datagram is one line of authentication, then exo's JSON message,
 * unchanged:
 *
 *   EXO-AUTH v1 ts=<µs> nonce=<32 hex> addrs=<ip>[,<ip>…] mac=<64 hex>\n{…}
 *
 * The MAC is HMAC-SHA256 with the cluster key over "exo-discovery-v1\n",
 * the line up to " mac=", "\n" and the message: everything the receiver
 * acts on.  `addrs` are the IPv4 addresses the sender sends from; the
 * receiver connects only to one of them (a replayed datagram with a spoofed
 * source cannot point it elsewhere).
 *
 * Pure functions of their arguments; no state, no threads, no logging.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "udp-discovery-private.h"

#include <string.h>

#define ENVELOPE_PREFIX "EXO-AUTH v1 "
#define MAC_FIELD       " mac="
#define MAC_DOMAIN      "exo-discovery-v1\n"

void
udp_discovery_envelope_clear (UdpDiscoveryEnvelope *envelope)
{
  g_clear_pointer (&envelope->addresses, g_strfreev);
  envelope->message = NULL;
  envelope->length = 0;
}

/* "exo-discovery-v1\n" + prefix + "\n" + message: what the MAC covers. */
static GByteArray *
signed_bytes (const char *prefix,
              gsize       prefix_length,
              const char *message,
              gsize       length)
{
  GByteArray *bytes = g_byte_array_sized_new (sizeof MAC_DOMAIN + prefix_length + 1 + length);

  g_byte_array_append (bytes, (const guint8 *) MAC_DOMAIN, sizeof MAC_DOMAIN - 1);
  g_byte_array_append (bytes, (const guint8 *) prefix, prefix_length);
  g_byte_array_append (bytes, (const guint8 *) "\n", 1);
  g_byte_array_append (bytes, (const guint8 *) message, length);
  return bytes;
}

char *
udp_discovery_seal (ExoClusterKey      *key,
                    const char         *message,
                    gsize               length,
                    const char * const *addresses,
                    gint64              now_us,
                    gsize              *out_length)
{
  g_autofree char *nonce = exo_cluster_auth_new_nonce ();
  g_autofree char *addrs = NULL;
  g_autofree char *prefix = NULL;
  g_autofree char *mac = NULL;
  g_autoptr(GByteArray) covered = NULL;
  GString *datagram;

  addrs = g_strjoinv (",", (char **) addresses);
  prefix = g_strdup_printf (ENVELOPE_PREFIX "ts=%" G_GINT64_FORMAT " nonce=%s addrs=%s",
                            now_us, nonce, addrs);
  covered = signed_bytes (prefix, strlen (prefix), message, length);
  mac = exo_cluster_key_sign (key, covered->data, covered->len);

  datagram = g_string_sized_new (strlen (prefix) + 80 + length);
  g_string_append_printf (datagram, "%s" MAC_FIELD "%s\n", prefix, mac);
  g_string_append_len (datagram, message, (gssize) length);
  *out_length = datagram->len;
  return g_string_free (datagram, FALSE);
}

static gboolean
malformed (GError     **error,
           const char  *what)
{
  g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_MALFORMED,
               "authentication line: %s", what);
  return FALSE;
}

/* "a.b.c.d,…": 1 to UDP_DISCOVERY_MAX_ADDRESSES IPv4 addresses. */
static GStrv
parse_addresses (const char *text)
{
  g_auto(GStrv) parts = g_strsplit (text, ",", UDP_DISCOVERY_MAX_ADDRESSES + 1);
  guint n = g_strv_length (parts);

  if (n == 0 || n > UDP_DISCOVERY_MAX_ADDRESSES)
    return NULL;
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GInetAddress) address = g_inet_address_new_from_string (parts[i]);

      if (address == NULL || g_inet_address_get_family (address) != G_SOCKET_FAMILY_IPV4)
        return NULL;
    }
  return g_steal_pointer (&parts);
}

gboolean
udp_discovery_open (ExoClusterKey         *key,
                    const char            *data,
                    gsize                  length,
                    UdpDiscoveryEnvelope  *envelope,
                    GError               **error)
{
  const char *newline, *mac_at;
  g_autoptr(GByteArray) covered = NULL;
  g_autofree char *prefix = NULL;
  g_autofree char *mac = NULL;
  g_auto(GStrv) fields = NULL;
  gsize header_length;
  guint64 ts;

  memset (envelope, 0, sizeof *envelope);
  if (length > 0 && data[0] == '{')
    {
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_MISSING,
                   "unsigned (a bare JSON message: another cluster key's node does not "
                   "send these; exo's Python nodes do)");
      return FALSE;
    }
  if (length < sizeof ENVELOPE_PREFIX - 1 ||
      memcmp (data, ENVELOPE_PREFIX, sizeof ENVELOPE_PREFIX - 1) != 0)
    return malformed (error, "does not start with \"" ENVELOPE_PREFIX "\"");
  newline = memchr (data, '\n', MIN (length, UDP_DISCOVERY_MAX_ENVELOPE));
  if (newline == NULL)
    return malformed (error, "no end of line within the first "
                      G_STRINGIFY (UDP_DISCOVERY_MAX_ENVELOPE) " bytes");
  header_length = (gsize) (newline - data);
  prefix = g_strndup (data, header_length);
  if (strlen (prefix) != header_length)
    return malformed (error, "contains a NUL byte");
  mac_at = g_strrstr (prefix, MAC_FIELD);
  if (mac_at == NULL)
    return malformed (error, "no mac");
  mac = g_strdup (mac_at + strlen (MAC_FIELD));
  if (strlen (mac) != 64)
    return malformed (error, "mac is not 64 hexadecimal digits");

  covered = signed_bytes (prefix, (gsize) (mac_at - prefix), newline + 1,
                          length - header_length - 1);
  if (!exo_cluster_key_verify (key, covered->data, covered->len, mac))
    {
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_BAD_MAC,
                   "the MAC does not match (another cluster key, or an altered message)");
      return FALSE;
    }

  /* Authenticated: a holder of the key wrote the rest. */
  prefix[mac_at - prefix] = '\0';
  fields = g_strsplit (prefix + strlen (ENVELOPE_PREFIX), " ", -1);
  if (g_strv_length (fields) != 3 ||
      !g_str_has_prefix (fields[0], "ts=") || !g_str_has_prefix (fields[1], "nonce=") ||
      !g_str_has_prefix (fields[2], "addrs="))
    return malformed (error, "expected ts=, nonce=, addrs= and mac=");
  if (!g_ascii_string_to_unsigned (fields[0] + 3, 10, 0, G_MAXINT64, &ts, NULL))
    return malformed (error, "ts is not a time in microseconds");
  if (strlen (fields[1] + 6) != 32 || strspn (fields[1] + 6, "0123456789abcdef") != 32)
    return malformed (error, "nonce is not 32 hexadecimal digits");
  envelope->addresses = parse_addresses (fields[2] + 6);
  if (envelope->addresses == NULL)
    return malformed (error, "addrs is not a list of 1 to "
                      G_STRINGIFY (UDP_DISCOVERY_MAX_ADDRESSES) " IPv4 addresses");
  envelope->timestamp_us = (gint64) ts;
  g_strlcpy (envelope->nonce, fields[1] + 6, sizeof envelope->nonce);
  envelope->message = newline + 1;
  envelope->length = length - header_length - 1;
  return TRUE;
}

gboolean
udp_discovery_envelope_has_address (const UdpDiscoveryEnvelope *envelope,
                                    const char                 *ip)
{
  return envelope->addresses != NULL &&
         g_strv_contains ((const char * const *) envelope->addresses, ip);
}
