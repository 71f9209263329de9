/* udp-discovery-peers.c: the peer table of UdpDiscovery (node id → Peer)
 * and what feeds it: authenticated datagrams (udp_discovery_handle_datagram(),
 * from the socket) and answers of static peers (udp_discovery_peer_seen(),
 * from udp-discovery-static.c).  It emits peer-found and peer-lost, forgets
 * what is not heard from (expiry), notices peer id conflicts and
 * duplicates of our own node id, and lists the peers for ExoDiscovery.
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
 * reason and logged at most once per 10 s per reason.  Nothing of a
 * datagram is looked at before its MAC is checked.
 *
 * Rules: the resource's main context only (socket source, probe
 * completions, the expiry timer, do_cleanup); no threads, no locks.  At
 * most max-peers peers and MAX_ENDPOINTS endpoints per peer.  peer-found
 * and peer-lost are emitted synchronously and their handlers may call
 * back into the resource (list_peers, say): announce() and lose_peer()
 * copy what they emit first, and expire() collects the ids before it
 * emits anything.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "udp-discovery-resource-private.h"

#include <string.h>

/* Source addresses remembered per peer. */
#define MAX_ENDPOINTS 8

/* One log line per reason of unauthenticated datagrams per this interval. */
#define AUTH_LOG_INTERVAL_US (10 * G_USEC_PER_SEC)

/* --- logging and drops ----------------------------------------------------- */

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
drop (UdpDiscovery *self,
      guint64      *counter,
      const char   *reason)
{
  (*counter)++;
  udp_discovery_replace_string (&self->last_drop_reason, reason);
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

void
udp_discovery_peer_free (Peer *peer)
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
  udp_discovery_replace_string (&peer->announced, peer->chosen->address);
  id = g_strdup (peer->node_id);
  address = g_strdup (peer->chosen->address);
  capabilities = g_variant_ref (peer->chosen->capabilities);
  if (is_new)
    self->peer_found_count++;

  log_event (self, G_LOG_LEVEL_INFO, "peer %s %s at %s", id, is_new ? "found" : "moved", address);
  g_signal_emit_by_name (self, "peer-found", id, address, capabilities);
}

/* Forgets @node_id (all its endpoints gone) and emits peer-lost. */
void
udp_discovery_lose_peer (UdpDiscovery *self,
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
  udp_discovery_replace_string (&self->peer_id_conflict, text);
  if (!peer->conflict_logged)
    {
      peer->conflict_logged = TRUE;
      log_event (self, G_LOG_LEVEL_WARNING, "%s", text);
    }
}

/* A sign of life of @node_id through @incoming (taken). */
void
udp_discovery_peer_seen (UdpDiscovery *self,
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
      udp_discovery_replace_string (&peer->last_speaker, endpoint->key);
    }

  if (peer->chosen == NULL)
    peer->chosen = peer_best_endpoint (peer);
  else if (peer->chosen != endpoint && same_node (peer->chosen, endpoint) &&
           endpoint->priority > peer->chosen->priority)
    peer->chosen = endpoint;

  announce (self, node_id);
}

/* Forgets the endpoint @key of @node_id, if there is one: the peer is
 * lost with its last endpoint, else announced again (its address may
 * change). */
void
udp_discovery_forget_endpoint (UdpDiscovery *self,
                               const char   *node_id,
                               const char   *key)
{
  Peer *peer;
  Endpoint *endpoint;

  if ((peer = g_hash_table_lookup (self->peers, node_id)) == NULL ||
      (endpoint = peer_find_endpoint (peer, key)) == NULL)
    return;
  peer_remove_endpoint (peer, endpoint);
  if (peer->endpoints->len == 0)
    udp_discovery_lose_peer (self, node_id, TRUE);
  else
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
    udp_discovery_lose_peer (self, g_ptr_array_index (lost, i), TRUE);

  if (self->duplicate_active && now - self->duplicate_seen_at > timeout_us)
    {
      self->duplicate_active = FALSE;
      log_event (self, G_LOG_LEVEL_MESSAGE, "node id %s: no duplicate heard for %u ms",
                 self->effective_node_id, self->peer_timeout_ms);
      exo_resource_report_health (EXO_RESOURCE (self), TRUE, NULL);
    }
}

gboolean
udp_discovery_expire_cb (gpointer user_data)
{
  UdpDiscovery *self = g_object_ref (user_data);

  expire (self);
  g_object_unref (self);
  return G_SOURCE_CONTINUE;
}

/* --- duplicates of our own node id ------------------------------------- */

GError *
udp_discovery_duplicate_error (UdpDiscovery *self)
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
  udp_discovery_replace_string (&self->duplicate_from, from);

  if (news)
    log_event (self, G_LOG_LEVEL_WARNING, "node id %s is also used by the node at %s",
               self->effective_node_id, from);
  /* Report again until it took (it does not while initializing). */
  if (news || exo_resource_get_state (EXO_RESOURCE (self)) == EXO_RESOURCE_STATE_READY)
    {
      g_autoptr(GError) error = udp_discovery_duplicate_error (self);

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

void
udp_discovery_handle_datagram (UdpDiscovery       *self,
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
  udp_discovery_peer_seen (self, message->node_id, endpoint);
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

GVariant *
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
