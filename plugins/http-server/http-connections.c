/* http-connections.c: the TCP side of the `http-server` plugin.
 *
 * Owns the listening socket, the accept loop and every accepted connection
 * from accept to close; libsoup (3.2) parses and answers the requests on
 * them.  What it bounds (docs/cluster-protocol.md, "Connections"):
 *
 *  - max-connections: past it a new client gets `503` with `Retry-After`,
 *    written here, and is closed (a lingering close: our side shuts down
 *    writing and drains what the client sent, at most LINGER_MS, at most
 *    MAX_LINGERING sockets, so that the client reads the answer rather than
 *    a reset);
 *  - header-timeout-ms: a client must send a request head within it of
 *    connecting or of starting a request, and may not stall a body longer;
 *  - idle-timeout-ms: a kept-alive connection between requests;
 *  - the listen backlog (HTTP_LISTEN_BACKLOG);
 *  - accept failures (EMFILE, ENFILE, ...): accepting pauses, with a delay
 *    doubling from ACCEPT_RETRY_MIN_MS to ACCEPT_RETRY_MAX_MS, instead of
 *    spinning on a listening socket that stays readable (GSocketService
 *    does: a core busy and a warning per attempt); one log line when a
 *    pause begins and one when accepting works again.
 *
 * Connections and libsoup 3.2.  soup_server_accept_iostream() makes a
 * SoupServerConnection that libsoup keeps in its list of clients until it
 * emits "disconnected".  A kept-alive connection that the client closes
 * between requests never gets there: libsoup's idle read fails, finishes a
 * message nobody sees, and keeps the connection (≈2.1 KB, and its socket
 * unless closed elsewhere; fixed upstream in 3.3, "Don't leak idle
 * connections closed by the client").  So every connection here is closed
 * by stealing it from libsoup (soup_server_message_steal_connection() on
 * the last message seen on it: libsoup then drops it and emits
 * "disconnected") and closing its stream ourselves.  Between requests a
 * watch on the socket, at a higher priority than libsoup's own read source,
 * sees the client's EOF first, so libsoup never reads it.  A connection
 * libsoup closes itself (Connection: close, an error) announces it through
 * "disconnected" on its messages: never stolen after that.  The same watch
 * runs while a request is being answered: a client that goes away (a cut
 * stream) is noticed within EOF_GRACE_MS, not at the next write, and the
 * request's message is disconnected, which cancels its work (the grace
 * lets libsoup finish a request whose client hung up as soon as it had
 * the last chunk: that one is counted as done, not as a client gone).
 *
 * Connections are found from a message through the remote address object
 * given to libsoup (qdata on it): libsoup hands that same object back.
 *
 * Thread rules: everything runs in the GMainContext that was thread-default
 * at http_connections_new() (the server's); no locks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-connections.h"
#include "http-common.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/resource.h>

#define ACCEPTS_PER_WAKEUP   64
#define ACCEPT_RETRY_MIN_MS  20
#define ACCEPT_RETRY_MAX_MS  1000
#define MAX_LINGERING        64
#define LINGER_MS            2000
#define RETRY_AFTER_S        1
/* A body must come at least this fast: its deadline is header-timeout-ms
 * after the head, moved on by one second for each this many bytes read
 * (as Apache's mod_reqtimeout MinRate).  A trickle of a byte every few
 * seconds (slow POST) is closed; a 16 MiB tensor has 16 minutes at it. */
#define MIN_BODY_BYTES_PER_S 16384
/* Above libsoup's sources (G_PRIORITY_DEFAULT): see the comment above. */
#define WATCH_PRIORITY       (G_PRIORITY_DEFAULT - 10)
/* A client's EOF while its answer is being sent: libsoup gets this long to
 * finish the request (a client that hangs up as soon as a stream's last
 * chunk is in — curl does — is a request done, not a client gone). */
#define EOF_GRACE_MS         50

typedef enum {
  CONN_READING,      /* waiting for, or reading, a request */
  CONN_PROCESSING,   /* the request is read; the answer is being made or sent */
  CONN_IDLE,         /* kept alive between requests */
} ConnState;

typedef struct _Conn Conn;

struct _HttpConnections
{
  SoupServer           *server;       /* strong */
  GMainContext         *context;
  HttpConnectionLimits  limits;

  GSocket              *listener;
  GSource              *accept_source;
  GSource              *retry_source;
  guint                 retry_ms;
  gboolean              paused_logged;

  GHashTable           *conns;        /* Conn* set */
  GSource              *deadlines;    /* one timer for every connection's deadline */
  gint64                armed;        /* its ready time, -1: none */
  GHashTable           *lingering;    /* Linger* set */
  HttpConnectionStats   stats;
};

struct _Conn
{
  HttpConnections   *owner;
  GSocketConnection *connection;
  GSocketAddress    *remote;      /* carries the qdata that finds us */
  SoupServerMessage *msg;         /* the last message on it (strong) */
  gulong             disconnected_id;
  gulong             got_headers_id;
  gulong             got_chunk_id;
  ConnState          state;
  GSource           *watch;
  gint64             deadline;    /* monotonic µs; 0: none (see the deadlines source) */
  gboolean           soup_gone;   /* libsoup closed it: never steal */
  gboolean           closing;
  gboolean           refused;     /* answered from its head; closes at its deadline */
  gboolean           eof_seen;    /* the client's EOF while answering: closes at its deadline */
  gint64             body_start;  /* monotonic µs: the head was read */
  guint64            body_read;   /* bytes of the body so far */
};

typedef struct
{
  HttpConnections *owner;
  GSocket         *socket;
  GSource         *watch;
  GSource         *timer;
} Linger;

static GQuark
conn_quark (void)
{
  static GQuark quark;

  if (G_UNLIKELY (quark == 0))
    quark = g_quark_from_static_string ("exo-http-conn");
  return quark;
}

static void conn_close (Conn *conn);

/* --- sources ------------------------------------------------------------- */

static void
source_clear (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static GSource *
timer_new (HttpConnections *self,
           guint            ms,
           GSourceFunc      func,
           gpointer         data,
           const char      *name)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, data, NULL);
  g_source_set_static_name (source, name);
  g_source_attach (source, self->context);
  return source;
}

/* --- one connection ------------------------------------------------------ */

static void
conn_forget_msg (Conn *conn)
{
  if (conn->msg == NULL)
    return;
  g_clear_signal_handler (&conn->disconnected_id, conn->msg);
  g_clear_signal_handler (&conn->got_headers_id, conn->msg);
  g_clear_signal_handler (&conn->got_chunk_id, conn->msg);
  g_clear_object (&conn->msg);
}

static void
conn_free (Conn *conn)
{
  source_clear (&conn->watch);
  conn_forget_msg (conn);
  g_object_set_qdata (G_OBJECT (conn->remote), conn_quark (), NULL);
  g_object_unref (conn->remote);
  g_object_unref (conn->connection);
  g_free (conn);
}

/* Takes @conn out of the table and frees it. */
static void
conn_remove (Conn *conn)
{
  HttpConnections *self = conn->owner;

  g_hash_table_remove (self->conns, conn);
  self->stats.open = g_hash_table_size (self->conns);
  conn_free (conn);
}

static Conn *
conn_for_message (HttpConnections   *self,
                  SoupServerMessage *msg)
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);
  Conn *conn;

  if (remote == NULL)
    return NULL;
  conn = g_object_get_qdata (G_OBJECT (remote), conn_quark ());
  return conn != NULL && conn->owner == self ? conn : NULL;
}

/* Deadlines: one GSource for all connections (a timer each would put a
 * source per connection in every main-loop iteration and make and destroy
 * one per request).  It fires at the earliest deadline it knows; deadlines
 * only move later or go away in between, so a firing that finds none
 * expired just arms the next one. */
/* @conn is closed at @deadline (monotonic µs; 0: never): the one timer of
 * every connection is moved earlier when needed. */
static void
conn_set_deadline (Conn   *conn,
                   gint64  deadline)
{
  HttpConnections *self = conn->owner;

  conn->deadline = deadline;
  if (deadline != 0 && (self->armed < 0 || deadline < self->armed))
    {
      self->armed = deadline;
      g_source_set_ready_time (self->deadlines, self->armed);
    }
}

static void
conn_set_timer (Conn  *conn,
                guint  ms)
{
  conn_set_deadline (conn, ms > 0 ? g_get_monotonic_time () + (gint64) ms * 1000 : 0);
}

static void
conn_clear_timer (Conn *conn)
{
  conn->deadline = 0;
}

static gboolean
deadlines_dispatch (GSource     *source,
                    GSourceFunc  callback,
                    gpointer     user_data)
{
  HttpConnections *self = user_data;
  g_autoptr(GPtrArray) expired = g_ptr_array_new ();
  gint64 now = g_get_monotonic_time ();
  gint64 next = -1;
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, self->conns);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      Conn *conn = key;

      if (conn->deadline == 0)
        continue;
      if (conn->deadline <= now)
        g_ptr_array_add (expired, conn);
      else if (next < 0 || conn->deadline < next)
        next = conn->deadline;
    }
  self->armed = next;
  g_source_set_ready_time (source, next);
  for (guint i = 0; i < expired->len; i++)
    {
      Conn *conn = g_ptr_array_index (expired, i);

      conn->deadline = 0;
      if (conn->refused)
        ;   /* answered already: counted as refused */
      else if (conn->eof_seen)
        self->stats.client_gone++;   /* libsoup did not finish within EOF_GRACE_MS */
      else if (conn->state == CONN_IDLE)
        self->stats.idle_timeouts++;
      else if (conn->body_start != 0)
        self->stats.body_timeouts++;
      else
        self->stats.header_timeouts++;
      conn_close (conn);
    }
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs deadlines_funcs = {
  .dispatch = deadlines_dispatch,
};

/* Idle or answering: is the client still there? */
static gboolean
conn_watch_cb (GSocket      *socket,
               GIOCondition  condition,
               gpointer      data)
{
  Conn *conn = data;
  g_autoptr(GError) error = NULL;
  GInputVector vector;
  gint flags = G_SOCKET_MSG_PEEK;
  char byte;
  gssize n;

  vector.buffer = &byte;
  vector.size = 1;
  n = g_socket_receive_message (socket, NULL, &vector, 1, NULL, NULL, &flags, NULL, &error);
  if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE;
  if (n > 0)
    {
      /* A request begins (or is pipelined): libsoup reads it. */
      g_clear_pointer (&conn->watch, g_source_unref);
      return G_SOURCE_REMOVE;
    }

  /* EOF or an error: the client is gone.  While its answer is being sent,
   * libsoup may be about to finish it (the client had all it wanted):
   * closed at a deadline EOF_GRACE_MS away unless request_finished_cb()
   * comes first. */
  g_clear_pointer (&conn->watch, g_source_unref);
  if (conn->state == CONN_PROCESSING && !conn->eof_seen)
    {
      conn->eof_seen = TRUE;
      conn_set_timer (conn, EOF_GRACE_MS);
      return G_SOURCE_REMOVE;
    }
  if (conn->state == CONN_IDLE)
    conn->owner->stats.closed_idle++;
  else
    conn->owner->stats.client_gone++;
  conn_close (conn);
  return G_SOURCE_REMOVE;
}

static void
conn_watch (Conn *conn)
{
  GSocket *socket = g_socket_connection_get_socket (conn->connection);

  if (conn->watch != NULL)
    return;
  conn->watch = g_socket_create_source (socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_priority (conn->watch, WATCH_PRIORITY);
  g_source_set_callback (conn->watch, G_SOURCE_FUNC (conn_watch_cb), conn, NULL);
  g_source_set_static_name (conn->watch, "[exo-http] connection watch");
  g_source_attach (conn->watch, conn->owner->context);
}

/* Closes @conn: libsoup lets go of it, then its socket is closed. */
static void
conn_close (Conn *conn)
{
  if (conn->closing)
    return;
  conn->closing = TRUE;
  source_clear (&conn->watch);
  conn_clear_timer (conn);
  if (conn->msg != NULL && !conn->soup_gone)
    {
      g_autoptr(SoupServerMessage) msg = g_object_ref (conn->msg);
      g_autoptr(GIOStream) stolen = NULL;

      /* Disconnects every message of the connection (a request in
       * progress is cancelled by its handler); the stream returned is
       * libsoup's wrapper, which does not close ours. */
      stolen = soup_server_message_steal_connection (msg);
    }
  g_io_stream_close (G_IO_STREAM (conn->connection), NULL, NULL);
  conn_remove (conn);
}

static void
msg_disconnected_cb (SoupServerMessage *msg,
                     Conn              *conn)
{
  /* During our own steal: conn_close() goes on. */
  if (conn->closing)
    return;
  /* libsoup closed the connection itself (our stream too): after the
   * client's EOF during the grace, a client gone all the same. */
  if (conn->eof_seen)
    conn->owner->stats.client_gone++;
  conn->soup_gone = TRUE;
  conn_remove (conn);
}

/* The body's deadline: header-timeout-ms after the head, one more second
 * for each MIN_BODY_BYTES_PER_S bytes read. */
static void
conn_set_body_deadline (Conn *conn)
{
  HttpConnections *self = conn->owner;

  if (self->limits.header_timeout_ms == 0)
    return;
  conn_set_deadline (conn, conn->body_start + (gint64) self->limits.header_timeout_ms * 1000 +
                           (gint64) (conn->body_read * G_USEC_PER_SEC / MIN_BODY_BYTES_PER_S));
}

static void
msg_got_chunk_cb (SoupServerMessage *msg,
                  GBytes            *chunk,
                  Conn              *conn)
{
  if (conn->refused)
    return;
  conn->body_read += g_bytes_get_size (chunk);
  conn_set_body_deadline (conn);
}

/* The value of Content-Length, if it is one: 1 to 19 digits and nothing
 * else (a list, as two headers make it, a sign or junk are not). */
static gboolean
parse_content_length (const char *value,
                      guint64    *out)
{
  const char *p = value;
  guint64 n = 0;
  guint digits = 0;

  while (*p == ' ' || *p == '\t')
    p++;
  for (; *p >= '0' && *p <= '9'; p++, digits++)
    {
      if (digits == 19)
        return FALSE;
      n = n * 10 + (guint64) (*p - '0');
    }
  while (*p == ' ' || *p == '\t')
    p++;
  if (digits == 0 || *p != '\0')
    return FALSE;
  *out = n;
  return TRUE;
}

static void
msg_got_headers_cb (SoupServerMessage *msg,
                    Conn              *conn)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupEncoding encoding = soup_message_headers_get_encoding (headers);
  guint64 declared = 0;
  gboolean has_body;

  if (!http_connections_check_head (conn->owner, msg, &declared))
    return;

  has_body = encoding == SOUP_ENCODING_CHUNKED ||
             (encoding == SOUP_ENCODING_CONTENT_LENGTH && declared > 0);
  /* The head is complete; the body has a deadline of its own, moved on by
   * what arrives (MIN_BODY_BYTES_PER_S). */
  if (has_body)
    {
      conn->body_start = g_get_monotonic_time ();
      conn->body_read = 0;
      conn_set_body_deadline (conn);
      if (conn->got_chunk_id == 0)
        conn->got_chunk_id = g_signal_connect (msg, "got-chunk", G_CALLBACK (msg_got_chunk_cb), conn);
    }
  else
    conn_clear_timer (conn);
}

/* --- libsoup's signals ----------------------------------------------------- */

static void
request_started_cb (SoupServer        *server,
                    SoupServerMessage *msg,
                    HttpConnections   *self)
{
  Conn *conn = conn_for_message (self, msg);

  if (conn == NULL)
    return;
  if (conn->msg != msg)
    {
      conn_forget_msg (conn);
      conn->msg = g_object_ref (msg);
      conn->disconnected_id = g_signal_connect (msg, "disconnected",
                                                G_CALLBACK (msg_disconnected_cb), conn);
      conn->got_headers_id = g_signal_connect (msg, "got-headers",
                                               G_CALLBACK (msg_got_headers_cb), conn);
    }
  conn->state = CONN_READING;
  conn->body_start = 0;
  source_clear (&conn->watch);
  conn_set_timer (conn, self->limits.header_timeout_ms);
}

static void
request_read_cb (SoupServer        *server,
                 SoupServerMessage *msg,
                 HttpConnections   *self)
{
  Conn *conn = conn_for_message (self, msg);

  if (conn == NULL || conn->msg != msg || conn->refused)
    return;
  conn->state = CONN_PROCESSING;
  conn->body_start = 0;
  conn_clear_timer (conn);
  conn_watch (conn);
}

static void
request_finished_cb (SoupServer        *server,
                     SoupServerMessage *msg,
                     HttpConnections   *self)
{
  Conn *conn = conn_for_message (self, msg);

  if (conn == NULL || conn->msg != msg)
    return;
  /* If libsoup keeps it alive, it now waits for the next request; if not,
   * "disconnected" follows at once and removes it.  (A client whose EOF
   * came meanwhile is found by the watch again, as closed between
   * requests.) */
  conn->state = CONN_IDLE;
  conn->eof_seen = FALSE;
  conn_set_timer (conn, self->limits.idle_timeout_ms);
  conn_watch (conn);
}

/* libsoup gave the request up (a write failed): after the client's EOF,
 * a client gone during the request; then as finished. */
static void
request_aborted_cb (SoupServer        *server,
                    SoupServerMessage *msg,
                    HttpConnections   *self)
{
  Conn *conn = conn_for_message (self, msg);

  if (conn != NULL && conn->msg == msg && conn->eof_seen)
    {
      self->stats.client_gone++;
      conn->eof_seen = FALSE;
    }
  request_finished_cb (server, msg, self);
}

/* --- refusing a client over the limit ------------------------------------ */

static void
linger_free (Linger *linger)
{
  source_clear (&linger->watch);
  source_clear (&linger->timer);
  g_socket_close (linger->socket, NULL);
  g_object_unref (linger->socket);
  g_free (linger);
}

static gboolean
linger_done_cb (gpointer data)
{
  Linger *linger = data;

  g_hash_table_remove (linger->owner->lingering, linger);
  return G_SOURCE_REMOVE;
}

static gboolean
linger_read_cb (GSocket      *socket,
                GIOCondition  condition,
                gpointer      data)
{
  g_autoptr(GError) error = NULL;
  char buf[4096];
  gssize n = g_socket_receive (socket, buf, sizeof buf, NULL, &error);

  /* What the client sent is dropped; its EOF (or an error) ends it. */
  if (n > 0 || (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)))
    return G_SOURCE_CONTINUE;
  return linger_done_cb (data);
}

static void
reject (HttpConnections *self,
        GSocket         *socket)
{
  g_autofree char *message = g_strdup_printf ("too many connections (max-connections %u); "
                                              "retry later", self->limits.max_connections);
  /* Its request is not read: OpenAI's shape, which peers read too. */
  g_autofree char *body = exo_http_error_body (NULL, SOUP_STATUS_SERVICE_UNAVAILABLE, message,
                                               NULL, "too_many_connections");
  g_autofree char *response = g_strdup_printf ("HTTP/1.1 503 Service Unavailable\r\n"
                                               "Server: exo-node\r\n"
                                               "Content-Type: application/json\r\n"
                                               "Retry-After: %d\r\n"
                                               "Connection: close\r\n"
                                               "Content-Length: %zu\r\n\r\n%s",
                                               RETRY_AFTER_S, strlen (body), body);
  Linger *linger;

  self->stats.rejected++;
  /* A few hundred bytes into an empty socket buffer: never blocks. */
  g_socket_send (socket, response, strlen (response), NULL, NULL);
  if (g_hash_table_size (self->lingering) >= MAX_LINGERING ||
      !g_socket_shutdown (socket, FALSE, TRUE, NULL))
    {
      g_socket_close (socket, NULL);
      return;
    }
  linger = g_new0 (Linger, 1);
  linger->owner = self;
  linger->socket = g_object_ref (socket);
  linger->watch = g_socket_create_source (socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (linger->watch, G_SOURCE_FUNC (linger_read_cb), linger, NULL);
  g_source_set_static_name (linger->watch, "[exo-http] lingering close");
  g_source_attach (linger->watch, self->context);
  linger->timer = timer_new (self, LINGER_MS, linger_done_cb, linger, "[exo-http] linger timeout");
  g_hash_table_add (self->lingering, linger);
}

gboolean
http_connections_check_head (HttpConnections   *self,
                             SoupServerMessage *msg,
                             guint64           *out_length)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *length = soup_message_headers_get_list (headers, "Content-Length");
  const char *transfer = soup_message_headers_get_list (headers, "Transfer-Encoding");
  Conn *conn = conn_for_message (self, msg);
  guint64 declared = 0;

  if (conn != NULL && conn->refused)
    return FALSE;
  /* What libsoup would wait for forever or read wrongly: a Content-Length
   * that is no number, two of them (which one frames the body?), or one
   * beside Transfer-Encoding (RFC 9112 §6.3: request smuggling). */
  if (length != NULL && !parse_content_length (length, &declared))
    {
      g_autofree char *shown = g_utf8_make_valid (length, MIN (strlen (length), 64));
      g_autofree char *message = g_strdup_printf ("invalid Content-Length: '%s'", shown);

      http_connections_refuse (self, msg, SOUP_STATUS_BAD_REQUEST, message);
      return FALSE;
    }
  if (length != NULL && transfer != NULL)
    {
      http_connections_refuse (self, msg, SOUP_STATUS_BAD_REQUEST,
                               "both Content-Length and Transfer-Encoding");
      return FALSE;
    }
  if (length != NULL && self->limits.max_body_bytes > 0 &&
      declared > self->limits.max_body_bytes)
    {
      g_autofree char *message = g_strdup_printf ("the body (Content-Length %" G_GUINT64_FORMAT
                                                  ") is larger than %" G_GUINT64_FORMAT
                                                  " bytes (max-body-bytes)",
                                                  declared, self->limits.max_body_bytes);

      http_connections_refuse (self, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, message);
      return FALSE;
    }

  if (out_length != NULL)
    *out_length = declared;
  return TRUE;
}

void
http_connections_refuse (HttpConnections   *self,
                         SoupServerMessage *msg,
                         guint              status,
                         const char        *message)
{
  Conn *conn = conn_for_message (self, msg);
  GUri *uri = soup_server_message_get_uri (msg);
  g_autofree char *body = NULL;
  g_autofree char *response = NULL;
  GSocket *socket;

  if (conn == NULL || conn->refused || conn->closing)
    return;
  /* the shape of every error of the server for its path (http-routes.c) */
  body = exo_http_error_body (uri != NULL ? g_uri_get_path (uri) : NULL, status, message, NULL,
                              NULL);
  response = g_strdup_printf ("HTTP/1.1 %u %s\r\n"
                              "Server: exo-node\r\n"
                              "Content-Type: application/json\r\n"
                              "Connection: close\r\n"
                              "Content-Length: %zu\r\n\r\n%s",
                              status, soup_status_get_phrase (status), strlen (body), body);
  self->stats.refused++;
  conn->refused = TRUE;
  /* A few hundred bytes into the socket's buffer: never blocks.  libsoup is
   * reading this connection and writes nothing before the body is read. */
  socket = g_socket_connection_get_socket (conn->connection);
  g_socket_send (socket, response, strlen (response), NULL, NULL);
  /* Closed from the deadlines source, not inside libsoup's emission. */
  conn_set_deadline (conn, g_get_monotonic_time ());
}

/* --- accepting ------------------------------------------------------------- */

static void
accept_one (HttpConnections *self,
            GSocket         *socket)
{
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GSocketAddress) remote = NULL;
  Conn *conn;

  /* Our own calls on it (the peek of the watch, the 503) must not wait;
   * GIO's streams say per call whether they block. */
  g_socket_set_blocking (socket, FALSE);
  if (g_hash_table_size (self->conns) >= self->limits.max_connections)
    {
      reject (self, socket);
      return;
    }
  /* Small answers go out at once (no Nagle delay on the RPC path). */
  g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  local = g_socket_get_local_address (socket, NULL);
  remote = g_socket_get_remote_address (socket, NULL);
  if (local == NULL || remote == NULL)
    {
      /* gone already */
      g_socket_close (socket, NULL);
      return;
    }
  connection = g_socket_connection_factory_create_connection (socket);

  conn = g_new0 (Conn, 1);
  conn->owner = self;
  conn->connection = g_object_ref (connection);
  conn->remote = g_object_ref (remote);
  conn->state = CONN_READING;
  g_object_set_qdata (G_OBJECT (remote), conn_quark (), conn);
  g_hash_table_add (self->conns, conn);
  self->stats.open = g_hash_table_size (self->conns);
  self->stats.accepted++;
  conn_set_timer (conn, self->limits.header_timeout_ms);

  /* libsoup emits request-started for its first message in here. */
  soup_server_accept_iostream (self->server, G_IO_STREAM (connection), local, remote, NULL);
}

static gboolean accept_cb (GSocket *socket, GIOCondition condition, gpointer data);

static void
accept_resume (HttpConnections *self)
{
  if (self->accept_source != NULL || self->listener == NULL)
    return;
  self->stats.accept_paused = FALSE;
  self->accept_source = g_socket_create_source (self->listener, G_IO_IN, NULL);
  g_source_set_callback (self->accept_source, G_SOURCE_FUNC (accept_cb), self, NULL);
  g_source_set_static_name (self->accept_source, "[exo-http] accept");
  g_source_attach (self->accept_source, self->context);
}

static gboolean
accept_retry_cb (gpointer data)
{
  HttpConnections *self = data;

  g_clear_pointer (&self->retry_source, g_source_unref);
  accept_resume (self);
  return G_SOURCE_REMOVE;
}

static void
accept_pause (HttpConnections *self,
              const GError    *error)
{
  source_clear (&self->accept_source);
  self->retry_ms = self->retry_ms == 0 ? ACCEPT_RETRY_MIN_MS
                                       : MIN (self->retry_ms * 2, ACCEPT_RETRY_MAX_MS);
  self->stats.accept_paused = TRUE;
  self->stats.accept_pauses++;
  if (!self->paused_logged)
    {
      struct rlimit limit = { 0 };

      self->paused_logged = TRUE;
      getrlimit (RLIMIT_NOFILE, &limit);
      g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
                        "MESSAGE", "cannot accept connections: %s (file descriptor limit %lu, "
                        "%u connections open); pausing accept, retrying every %u to %u ms",
                        error->message, (unsigned long) limit.rlim_cur,
                        g_hash_table_size (self->conns), ACCEPT_RETRY_MIN_MS,
                        ACCEPT_RETRY_MAX_MS);
    }
  self->retry_source = timer_new (self, self->retry_ms, accept_retry_cb, self,
                                  "[exo-http] accept retry");
}

static gboolean
accept_cb (GSocket      *listener,
           GIOCondition  condition,
           gpointer      data)
{
  HttpConnections *self = data;

  for (guint i = 0; i < ACCEPTS_PER_WAKEUP; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocket) socket = g_socket_accept (listener, NULL, &error);

      if (socket == NULL)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            break;
          /* EMFILE, ENFILE, ENOBUFS, ...: the listener stays readable;
           * trying again at once would spin.  (A client that gave up before
           * we accepted costs one short pause.) */
          g_clear_pointer (&self->accept_source, g_source_unref);
          accept_pause (self, error);
          return G_SOURCE_REMOVE;
        }
      if (self->paused_logged)
        {
          self->paused_logged = FALSE;
          g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE,
                            "MESSAGE", "accepting connections again (%" G_GUINT64_FORMAT
                            " pauses so far)", self->stats.accept_pauses);
        }
      self->retry_ms = 0;
      accept_one (self, socket);
    }
  return G_SOURCE_CONTINUE;
}

/* --- public ---------------------------------------------------------------- */

HttpConnections *
http_connections_new (SoupServer                 *server,
                      const HttpConnectionLimits *limits)
{
  HttpConnections *self = g_new0 (HttpConnections, 1);

  self->server = g_object_ref (server);
  self->context = g_main_context_ref_thread_default ();
  self->limits = *limits;
  self->limits.max_connections = MAX (self->limits.max_connections, 1u);
  self->conns = g_hash_table_new (NULL, NULL);
  self->armed = -1;
  self->deadlines = g_source_new (&deadlines_funcs, sizeof (GSource));
  g_source_set_callback (self->deadlines, NULL, self, NULL);
  g_source_set_static_name (self->deadlines, "[exo-http] connection deadlines");
  g_source_attach (self->deadlines, self->context);
  self->lingering = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) linger_free, NULL);
  g_signal_connect (server, "request-started", G_CALLBACK (request_started_cb), self);
  g_signal_connect (server, "request-read", G_CALLBACK (request_read_cb), self);
  g_signal_connect (server, "request-finished", G_CALLBACK (request_finished_cb), self);
  g_signal_connect (server, "request-aborted", G_CALLBACK (request_aborted_cb), self);
  return self;
}

gboolean
http_connections_listen (HttpConnections  *self,
                         GSocketAddress   *address,
                         guint16          *out_port,
                         GError          **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketAddress) effective = NULL;

  g_return_val_if_fail (self->listener == NULL, FALSE);

  socket = g_socket_new (g_socket_address_get_family (address), G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL)
    return FALSE;
  g_socket_set_blocking (socket, FALSE);
  g_socket_set_listen_backlog (socket, HTTP_LISTEN_BACKLOG);
  if (!g_socket_bind (socket, address, TRUE, error) || !g_socket_listen (socket, error))
    return FALSE;
  effective = g_socket_get_local_address (socket, error);
  if (effective == NULL)
    return FALSE;
  if (out_port != NULL)
    *out_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  self->listener = g_steal_pointer (&socket);
  accept_resume (self);
  return TRUE;
}

void
http_connections_free (HttpConnections *self)
{
  g_autoptr(GList) conns = NULL;

  if (self == NULL)
    return;
  source_clear (&self->accept_source);
  source_clear (&self->retry_source);
  if (self->listener != NULL)
    g_socket_close (self->listener, NULL);
  g_clear_object (&self->listener);

  conns = g_hash_table_get_keys (self->conns);
  for (GList *l = conns; l != NULL; l = l->next)
    conn_close (l->data);
  source_clear (&self->deadlines);
  g_hash_table_destroy (self->conns);
  g_hash_table_destroy (self->lingering);

  g_signal_handlers_disconnect_by_data (self->server, self);
  g_object_unref (self->server);
  g_main_context_unref (self->context);
  g_free (self);
}

void
http_connections_get_stats (HttpConnections     *self,
                            HttpConnectionStats *stats)
{
  *stats = self->stats;
  stats->open = g_hash_table_size (self->conns);
}
