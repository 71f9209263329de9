/* http-connections.h: the TCP side of the `http-server` plugin — the
 * listening socket, the accept loop and every accepted connection, with
 * their limits (see http-connections.c).
 *
 * Thread rules: one HttpConnections belongs to the GMainContext that was
 * thread-default when it was made (the server's); it is used from there
 * only, and takes no locks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

#define HTTP_LISTEN_BACKLOG 4096

typedef struct _HttpConnections HttpConnections;

typedef struct
{
  guint max_connections;    /* past it, new clients get 503 and are closed */
  guint header_timeout_ms;  /* request head (and each stall of a body) */
  guint idle_timeout_ms;    /* a kept-alive connection between requests */
} HttpConnectionLimits;

typedef struct
{
  guint64  accepted;         /* connections handed to libsoup */
  guint64  rejected;         /* answered 503: max-connections */
  guint64  header_timeouts;  /* closed: no complete request in time */
  guint64  idle_timeouts;    /* closed: idle for idle-timeout-ms */
  guint64  closed_idle;      /* the client closed it between requests */
  guint64  client_gone;      /* the client left during a request */
  guint64  accept_pauses;    /* accept failed (EMFILE, ENFILE, ...): paused */
  guint    open;             /* connections now */
  gboolean accept_paused;    /* not accepting right now */
} HttpConnectionStats;

HttpConnections *http_connections_new        (SoupServer                 *server,
                                              const HttpConnectionLimits *limits);
/* Listens on @address (backlog HTTP_LISTEN_BACKLOG); the bound port in
 * @out_port.  The error is the socket's (bind, listen). */
gboolean         http_connections_listen     (HttpConnections            *self,
                                              GSocketAddress             *address,
                                              guint16                    *out_port,
                                              GError                    **error);
/* Closes the listener and every connection (requests on them see their
 * message disconnected). */
void             http_connections_free       (HttpConnections            *self);
void             http_connections_get_stats  (HttpConnections            *self,
                                              HttpConnectionStats        *stats);

G_END_DECLS
