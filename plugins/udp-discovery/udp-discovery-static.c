/* udp-discovery-static.c: the static peers of UdpDiscovery, for networks
 * without broadcast: each `host:port` of static-peers is probed with a
 * signed `GET /peer/v1/health` every broadcast interval, and counts as a
 * peer (an endpoint "static:host:port", udp-discovery-peers.c) only when
 * the answer is signed with the cluster key too.
 *
 * Rules: the resource's main context only: probes are started from the
 * broadcast timer, and the SoupSession was made with that context as
 * thread-default (udp_discovery_open_session()), so its callbacks come
 * back there; no threads, no locks.  One probe per static peer at a time,
 * each bounded by probe-timeout-ms and holding a reference to the
 * resource until it completes.  A probe that completes after a stop
 * (another `generation`) or during cleanup is not acted on; the last one
 * to complete during cleanup finishes it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "udp-discovery-resource-private.h"

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

/* static-peers as StaticPeers (static_targets). */
gboolean
udp_discovery_parse_static_peers (UdpDiscovery  *self,
                                  GError       **error)
{
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
  return TRUE;
}

/* The same parse, keeping nothing: for check_settings, before initialize. */
gboolean
udp_discovery_check_static_peers (const char * const  *static_peers,
                                  GError             **error)
{
  for (guint i = 0; static_peers != NULL && static_peers[i] != NULL; i++)
    {
      StaticPeer *peer = parse_static_peer (static_peers[i], error);

      if (peer == NULL)
        return FALSE;
      static_peer_free (peer);
    }
  return TRUE;
}

/* The HTTP session of the probes, when there are static peers; made with
 * the resource's context as thread-default, so that its callbacks come
 * back there. */
void
udp_discovery_open_session (UdpDiscovery *self)
{
  GMainContext *context = exo_resource_get_context (EXO_RESOURCE (self));

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
}

static void
probe_free (Probe *probe)
{
  udp_discovery_destroy_source (&probe->timeout);
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

  if (old_id != NULL)
    udp_discovery_forget_endpoint (self, old_id, key);
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
          udp_discovery_replace_string (&self->last_probe_error, text);
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
          udp_discovery_replace_string (&static_peer->node_id, id);

          endpoint->key = g_strdup_printf ("static:%s", static_peer->text);
          endpoint->is_static = TRUE;
          endpoint->address = g_strdup (static_peer->text);
          endpoint->interface_name = g_strdup ("static");
          endpoint->capabilities = g_steal_pointer (&caps);
          endpoint->first_seen = endpoint->last_seen = g_get_monotonic_time ();
          udp_discovery_peer_seen (self, id, endpoint);
        }
    }

  if (self->cleanup_task != NULL && self->probes_in_flight == 0)
    udp_discovery_finish_cleanup (self);

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
      udp_discovery_replace_string (&self->last_probe_error, static_peer->text);
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
  udp_discovery_attach_source (self, probe->timeout);

  static_peer->in_flight = TRUE;
  self->probes_in_flight++;
  g_ptr_array_add (self->probes, probe);
  self->static_probes++;

  g_main_context_push_thread_default (context);
  soup_session_send_async (self->session, probe->message, G_PRIORITY_DEFAULT,
                           probe->cancellable, probe_sent_cb, probe);
  g_main_context_pop_thread_default (context);
}

/* Probes every static peer that has no probe in flight. */
void
udp_discovery_probe_static_peers (UdpDiscovery *self)
{
  for (guint i = 0; self->static_targets != NULL && i < self->static_targets->len; i++)
    {
      StaticPeer *peer = g_ptr_array_index (self->static_targets, i);

      if (!peer->in_flight)
        probe_start (self, peer);
    }
}

/* Cancels every probe in flight; each still completes (probe_done()),
 * later, in the resource's context. */
void
udp_discovery_cancel_probes (UdpDiscovery *self)
{
  g_autoptr(GPtrArray) cancellables = g_ptr_array_new_with_free_func (g_object_unref);

  /* A probe may complete (and leave the array) while it is cancelled. */
  for (guint i = 0; i < self->probes->len; i++)
    g_ptr_array_add (cancellables,
                     g_object_ref (((Probe *) g_ptr_array_index (self->probes, i))->cancellable));
  for (guint i = 0; i < cancellables->len; i++)
    g_cancellable_cancel (g_ptr_array_index (cancellables, i));
  if (self->session != NULL)
    soup_session_abort (self->session);
}
