/* proxy.c: a TCP proxy on loopback that injects real faults.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * FaultProxy listens on 127.0.0.1 (a port of its own) and connects each
 * client it accepts to the service on 127.0.0.1:upstream_port; bytes are
 * forwarded both ways with non-blocking GSockets.  The faults:
 *
 * - delay: every chunk is held delay_ms before it is forwarded (each way,
 *   never reordered);
 * - reset: n more requests (data from a client) are not forwarded: both
 *   sockets of that connection are closed with SO_LINGER 0, an RST each way;
 * - refusing: the listener is closed (connects are refused) and every open
 *   connection is closed; it listens on the same port again afterwards.
 *
 * When the service cannot be reached (it was killed) an accepted client is
 * closed at once, as an L4 load balancer does.  A connection ends when
 * either end closes, once what that end sent has been forwarded (no
 * half-close).  Limits: LINKS_MAX open
 * connections (more are closed at once), QUEUE_MAX_BYTES queued each way
 * (reading the other side stops until it drains).  One thread, the default
 * main context; a callback that closes a link returns at once.
 */
#include "before-after.h"

#include <sys/socket.h>

#define CHUNK_BYTES     16384
#define QUEUE_MAX_BYTES (256 * 1024)
#define LINKS_MAX       256

enum { DOWN, UP };   /* the client's socket, the service's */

typedef struct _Link Link;

typedef struct
{
  gint64  due_us;
  GBytes *bytes;
  gsize   offset;
} Chunk;

typedef struct
{
  Link     *link;
  int       index;
  GSocket  *socket;
  GSource  *readable;
  gboolean  read_done;   /* this socket reached its end */
  GQueue    outbox;      /* Chunk *: to be written to this socket */
  gsize     queued;
  gint64    last_due_us;
  GSource  *timer;       /* until the head of the outbox is due */
  GSource  *writable;    /* while the socket's buffer is full */
} Side;

struct _Link
{
  FaultProxy *proxy;
  Side        side[2];
  GSource    *connecting;
  gboolean    connected;
};

struct _FaultProxy
{
  GSocket        *listener;   /* NULL while refusing */
  GSource        *accepting;
  GSocketAddress *upstream;
  guint16         port;
  guint           delay_ms;
  guint           resets_pending;
  GList          *links;
  guint           n_links;
  guint           accepted;
  guint           resets;
};

static gboolean side_flush (Side *side);

static Side *
peer_of (Side *side)
{
  return &side->link->side[1 - side->index];
}

static void
chunk_free (Chunk *chunk)
{
  g_bytes_unref (chunk->bytes);
  g_free (chunk);
}

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static GSource *
watch_socket (GSocket           *socket,
              GIOCondition       condition,
              GSocketSourceFunc  func,
              gpointer           data)
{
  GSource *source = g_socket_create_source (socket, condition, NULL);

  g_source_set_callback (source, (GSourceFunc) G_CALLBACK (func), data, NULL);
  g_source_attach (source, NULL);
  return source;
}

/* Closes both sockets and frees @link: with @abort, SO_LINGER 0 makes each
 * close send an RST instead of a FIN. */
static void
link_close (Link     *link,
            gboolean  abort)
{
  struct linger linger = { 1, 0 };

  link->proxy->links = g_list_remove (link->proxy->links, link);
  link->proxy->n_links--;
  clear_source (&link->connecting);
  for (int i = DOWN; i <= UP; i++)
    {
      Side *side = &link->side[i];

      clear_source (&side->readable);
      clear_source (&side->timer);
      clear_source (&side->writable);
      g_queue_clear_full (&side->outbox, (GDestroyNotify) chunk_free);
      if (abort)
        setsockopt (g_socket_get_fd (side->socket), SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
      g_socket_close (side->socket, NULL);
      g_object_unref (side->socket);
    }
  g_free (link);
}

static gboolean side_readable_cb (GSocket *socket, GIOCondition condition, gpointer data);

/* Reads @side when it may: the service's side once connected, and while
 * its peer's outbox has room. */
static void
side_watch (Side *side)
{
  if (side->readable != NULL || side->read_done ||
      (side->index == UP && !side->link->connected) ||
      peer_of (side)->queued >= QUEUE_MAX_BYTES)
    return;
  side->readable = watch_socket (side->socket, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                 side_readable_cb, side);
}

static gboolean
side_timer_cb (gpointer data)
{
  Side *side = data;

  g_clear_pointer (&side->timer, g_source_unref);
  side_flush (side);
  return G_SOURCE_REMOVE;
}

static gboolean
side_writable_cb (GSocket      *socket,
                  GIOCondition  condition,
                  gpointer      data)
{
  Side *side = data;

  g_clear_pointer (&side->writable, g_source_unref);
  side_flush (side);
  return G_SOURCE_REMOVE;
}

/* Writes what is due to @side.  Returns FALSE when the link was closed. */
static gboolean
side_flush (Side *side)
{
  Link *link = side->link;

  if (side->index == UP && !link->connected)
    return TRUE;

  while (!g_queue_is_empty (&side->outbox))
    {
      Chunk *chunk = g_queue_peek_head (&side->outbox);
      gint64 now = g_get_monotonic_time ();
      g_autoptr(GError) error = NULL;
      gsize size;
      const char *data = g_bytes_get_data (chunk->bytes, &size);
      gssize n;

      if (chunk->due_us > now)
        {
          if (side->timer == NULL)
            {
              side->timer = g_timeout_source_new ((chunk->due_us - now + 999) / 1000);
              g_source_set_callback (side->timer, side_timer_cb, side, NULL);
              g_source_attach (side->timer, NULL);
            }
          return TRUE;
        }
      n = g_socket_send (side->socket, data + chunk->offset, size - chunk->offset, NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (side->writable == NULL)
            side->writable = watch_socket (side->socket, G_IO_OUT, side_writable_cb, side);
          return TRUE;
        }
      if (n < 0)
        {
          link_close (link, FALSE);
          return FALSE;
        }
      chunk->offset += n;
      side->queued -= n;
      if (chunk->offset == size)
        chunk_free (g_queue_pop_head (&side->outbox));
    }

  /* all written: if the other end is gone, so is the link */
  if (peer_of (side)->read_done)
    {
      link_close (link, FALSE);
      return FALSE;
    }
  side_watch (peer_of (side));
  return TRUE;
}

static gboolean
side_readable_cb (GSocket      *socket,
                  GIOCondition  condition,
                  gpointer      data)
{
  Side *side = data;
  Link *link = side->link;
  FaultProxy *proxy = link->proxy;
  Side *peer = peer_of (side);
  g_autoptr(GError) error = NULL;
  char buffer[CHUNK_BYTES];
  Chunk *chunk;
  gssize n;

  n = g_socket_receive (socket, buffer, sizeof buffer, NULL, &error);
  if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE;
  if (n < 0)
    {
      link_close (link, FALSE);   /* also destroys this source */
      return G_SOURCE_REMOVE;
    }
  if (n == 0)
    {
      side->read_done = TRUE;
      g_clear_pointer (&side->readable, g_source_unref);
      side_flush (peer);          /* closes the link once the peer has it all */
      return G_SOURCE_REMOVE;
    }
  if (side->index == DOWN && proxy->resets_pending > 0)
    {
      proxy->resets_pending--;
      proxy->resets++;
      link_close (link, TRUE);    /* a request in flight: RST both ways */
      return G_SOURCE_REMOVE;
    }

  chunk = g_new0 (Chunk, 1);
  chunk->bytes = g_bytes_new (buffer, n);
  chunk->due_us = MAX (g_get_monotonic_time () + (gint64) proxy->delay_ms * 1000, peer->last_due_us);
  peer->last_due_us = chunk->due_us;
  peer->queued += n;
  g_queue_push_tail (&peer->outbox, chunk);

  if (peer->queued >= QUEUE_MAX_BYTES)
    {
      g_clear_pointer (&side->readable, g_source_unref);   /* side_flush () reads again */
      side_flush (peer);
      return G_SOURCE_REMOVE;
    }
  side_flush (peer);
  return G_SOURCE_CONTINUE;   /* harmless if the flush closed the link: it destroyed us */
}

static void
link_connected (Link *link)
{
  link->connected = TRUE;
  side_watch (&link->side[UP]);
  side_flush (&link->side[UP]);
}

static gboolean
link_connecting_cb (GSocket      *socket,
                    GIOCondition  condition,
                    gpointer      data)
{
  Link *link = data;

  g_clear_pointer (&link->connecting, g_source_unref);
  if (!g_socket_check_connect_result (socket, NULL))
    link_close (link, FALSE);   /* the service is down: the client sees its connection end */
  else
    link_connected (link);
  return G_SOURCE_REMOVE;
}

static void
link_new (FaultProxy *proxy,
          GSocket    *down)
{
  g_autoptr(GError) error = NULL;
  GSocket *up = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                              G_SOCKET_PROTOCOL_TCP, NULL);
  Link *link;

  if (up == NULL)
    {
      g_socket_close (down, NULL);
      g_object_unref (down);
      return;
    }
  link = g_new0 (Link, 1);
  link->proxy = proxy;
  proxy->links = g_list_prepend (proxy->links, link);
  proxy->n_links++;
  for (int i = DOWN; i <= UP; i++)
    {
      link->side[i].link = link;
      link->side[i].index = i;
      link->side[i].socket = i == DOWN ? down : up;
      g_queue_init (&link->side[i].outbox);
      g_socket_set_blocking (link->side[i].socket, FALSE);
    }
  side_watch (&link->side[DOWN]);

  if (g_socket_connect (up, proxy->upstream, NULL, &error))
    link_connected (link);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING))
    link->connecting = watch_socket (up, G_IO_OUT, link_connecting_cb, link);
  else
    link_close (link, FALSE);
}

static gboolean
accept_cb (GSocket      *listener,
           GIOCondition  condition,
           gpointer      data)
{
  FaultProxy *proxy = data;

  for (;;)
    {
      GSocket *socket = g_socket_accept (listener, NULL, NULL);

      if (socket == NULL)
        return G_SOURCE_CONTINUE;   /* would block, or an error we cannot help */
      proxy->accepted++;
      if (proxy->n_links >= LINKS_MAX)
        {
          g_socket_close (socket, NULL);
          g_object_unref (socket);
          continue;
        }
      link_new (proxy, socket);
    }
}

static void
close_links (FaultProxy *proxy)
{
  while (proxy->links != NULL)
    link_close (proxy->links->data, FALSE);
}

static gboolean
proxy_listen (FaultProxy  *proxy,
              GError     **error)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, proxy->port);
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GSocket) socket = NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL)
    return FALSE;
  g_socket_set_blocking (socket, FALSE);
  g_socket_set_listen_backlog (socket, 64);
  if (!g_socket_bind (socket, address, TRUE, error) || !g_socket_listen (socket, error))
    return FALSE;
  local = g_socket_get_local_address (socket, error);
  if (local == NULL)
    return FALSE;
  proxy->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  proxy->listener = g_steal_pointer (&socket);
  proxy->accepting = watch_socket (proxy->listener, G_IO_IN, accept_cb, proxy);
  return TRUE;
}

FaultProxy *
fault_proxy_new (guint16   upstream_port,
                 GError  **error)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  FaultProxy *proxy = g_new0 (FaultProxy, 1);

  proxy->upstream = g_inet_socket_address_new (loopback, upstream_port);
  if (!proxy_listen (proxy, error))
    {
      fault_proxy_free (proxy);
      return NULL;
    }
  return proxy;
}

guint16
fault_proxy_get_port (FaultProxy *proxy)
{
  return proxy->port;
}

void
fault_proxy_set_delay (FaultProxy *proxy,
                       guint       delay_ms)
{
  proxy->delay_ms = delay_ms;
}

void
fault_proxy_reset_next (FaultProxy *proxy,
                        guint       n_requests)
{
  proxy->resets_pending += n_requests;
}

/* Refusing: stop listening and close every connection.  Not refusing:
 * listen on the same port again (fails when someone else took it). */
gboolean
fault_proxy_set_refusing (FaultProxy  *proxy,
                          gboolean     refusing,
                          GError     **error)
{
  if (refusing)
    {
      clear_source (&proxy->accepting);
      if (proxy->listener != NULL)
        g_socket_close (proxy->listener, NULL);
      g_clear_object (&proxy->listener);
      close_links (proxy);
      return TRUE;
    }
  return proxy->listener != NULL || proxy_listen (proxy, error);
}

guint
fault_proxy_get_accepted (FaultProxy *proxy)
{
  return proxy->accepted;
}

guint
fault_proxy_get_resets (FaultProxy *proxy)
{
  return proxy->resets;
}

void
fault_proxy_free (FaultProxy *proxy)
{
  fault_proxy_set_refusing (proxy, TRUE, NULL);
  g_clear_object (&proxy->upstream);
  g_free (proxy);
}
