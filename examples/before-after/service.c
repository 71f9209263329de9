/* service.c: the line service the example kills and starts again.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * `exo-example-before-after --serve PORT`: a GSocketService on
 * 127.0.0.1:PORT that answers each line `ECHO <word>` with `OK <word>` (and
 * anything else with `ERR`).  It prints the port it listens on, then serves
 * until it is killed.  Lines are at most LINE_MAX_BYTES: a longer one ends the
 * connection.  It ignores SIGINT: Ctrl-C on a terminal reaches the whole
 * process group, and the clients still make their last calls then.  One
 * thread, the default main context.
 */
#include "before-after.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define LINE_MAX_BYTES 256

typedef struct
{
  GSocketConnection *connection;
  char               buffer[LINE_MAX_BYTES];
  gsize              length;
  GString           *replies;
} Conn;

static void conn_read (Conn *conn);

static void
conn_free (Conn *conn)
{
  g_io_stream_close (G_IO_STREAM (conn->connection), NULL, NULL);
  g_object_unref (conn->connection);
  g_string_free (conn->replies, TRUE);
  g_free (conn);
}

static void
written_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Conn *conn = user_data;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL))
    {
      conn_free (conn);
      return;
    }
  g_string_truncate (conn->replies, 0);
  conn_read (conn);
}

/* Answers every complete line in the buffer; keeps the rest. */
static void
conn_answer (Conn *conn)
{
  char *start = conn->buffer;
  char *end = conn->buffer + conn->length;
  char *newline;

  while ((newline = memchr (start, '\n', end - start)) != NULL)
    {
      gsize n = newline - start;

      if (n > 0 && start[n - 1] == '\r')
        n--;
      if (n > 5 && memcmp (start, "ECHO ", 5) == 0)
        g_string_append_printf (conn->replies, "OK %.*s\n", (int) (n - 5), start + 5);
      else
        g_string_append (conn->replies, "ERR\n");
      start = newline + 1;
    }
  conn->length = end - start;
  memmove (conn->buffer, start, conn->length);
}

static void
read_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Conn *conn = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);

  if (n <= 0)
    {
      conn_free (conn);   /* end of stream, or an error */
      return;
    }
  conn->length += n;
  conn_answer (conn);
  if (conn->length == sizeof conn->buffer)
    {
      conn_free (conn);   /* a line longer than LINE_MAX_BYTES */
      return;
    }
  if (conn->replies->len == 0)
    {
      conn_read (conn);
      return;
    }
  g_output_stream_write_all_async (g_io_stream_get_output_stream (G_IO_STREAM (conn->connection)),
                                   conn->replies->str, conn->replies->len, G_PRIORITY_DEFAULT,
                                   NULL, written_cb, conn);
}

static void
conn_read (Conn *conn)
{
  g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (conn->connection)),
                             conn->buffer + conn->length, sizeof conn->buffer - conn->length,
                             G_PRIORITY_DEFAULT, NULL, read_cb, conn);
}

static gboolean
incoming_cb (GSocketService    *service,
             GSocketConnection *connection,
             GObject           *source_object,
             gpointer           user_data)
{
  Conn *conn = g_new0 (Conn, 1);

  conn->connection = g_object_ref (connection);
  conn->replies = g_string_new (NULL);
  conn_read (conn);
  return TRUE;
}

int
service_main (guint16 port)
{
  g_autoptr(GSocketService) service = g_socket_service_new ();
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, port);
  g_autoptr(GSocketAddress) effective = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GError) error = NULL;

  signal (SIGINT, SIG_IGN);   /* ended by SIGKILL, by the orchestrator or with it */
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (service), address,
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                      NULL, &effective, &error))
    {
      fprintf (stderr, "service: cannot listen on 127.0.0.1:%u: %s\n", port, error->message);
      return 1;
    }
  g_signal_connect (service, "incoming", G_CALLBACK (incoming_cb), NULL);
  printf ("%u\n", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective)));
  fflush (stdout);
  g_main_loop_run (loop);   /* until SIGKILL */
  return 0;
}
