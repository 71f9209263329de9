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
  guint64 max_body_bytes;   /* the largest body any route takes (413 past it) */
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
  guint64  refused;          /* answered 400/413 from the head and closed */
  guint64  body_timeouts;    /* closed: the body came slower than its deadline */
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
/* Checks the framing of @msg's head (Content-Length a number, alone, not
 * beside Transfer-Encoding, within max_body_bytes) and refuses the request
 * when it is wrong; FALSE then.  @out_length: the Content-Length (0 when
 * none).  Idempotent: the first of the early handler and got-headers runs it. */
gboolean         http_connections_check_head (HttpConnections            *self,
                                              SoupServerMessage          *msg,
                                              guint64                    *out_length);
/* Answers @msg's request from its head (@status, a JSON error naming
 * @message) and closes its connection, without reading its body: libsoup
 * 3.2 would read a body it was told to refuse before answering. */
void             http_connections_refuse     (HttpConnections            *self,
                                              SoupServerMessage          *msg,
                                              guint                       status,
                                              const char                 *message);

G_END_DECLS
