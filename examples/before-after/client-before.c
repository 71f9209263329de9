/* client-before.c: the client as it is written without a framework.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Blocking GIO calls: connect with a retry loop (3 tries, 100 ms apart), a
 * 1 s timeout on the connect and on every read and write, close the
 * connection on any error and connect again at the next call.  The calling
 * thread blocks for the whole call.  Its lines are counted into the table:
 * keep only the client here.
 */
#include "clients.h"

#include <string.h>

#define CONNECT_TRIES    3
#define CONNECT_RETRY_MS 100

struct _BeforeClient
{
  char              *address;
  GSocketClient     *client;
  GSocketConnection *connection;
  GDataInputStream  *input;
  guint64            connect_attempts;
};

BeforeClient *
before_client_new (const char *address)
{
  BeforeClient *self = g_new0 (BeforeClient, 1);

  self->address = g_strdup (address);
  self->client = g_socket_client_new ();
  /* whole seconds: the connect, and every read and write of the socket */
  g_socket_client_set_timeout (self->client, CLIENT_TIMEOUT_MS / 1000);
  return self;
}

static void
before_client_disconnect (BeforeClient *self)
{
  g_clear_object (&self->input);
  if (self->connection != NULL)
    g_io_stream_close (G_IO_STREAM (self->connection), NULL, NULL);
  g_clear_object (&self->connection);
}

static gboolean
before_client_connect (BeforeClient  *self,
                       GError       **error)
{
  for (guint try = 1; self->connection == NULL; try++)
    {
      g_clear_error (error);
      self->connect_attempts++;
      self->connection = g_socket_client_connect_to_host (self->client, self->address, 0,
                                                          NULL, error);
      if (self->connection == NULL && try == CONNECT_TRIES)
        return FALSE;
      if (self->connection == NULL)
        g_usleep (CONNECT_RETRY_MS * 1000);
    }
  if (self->input == NULL)
    self->input = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (self->connection)));
  return TRUE;
}

char *
before_client_call (BeforeClient  *self,
                    const char    *request,
                    GError       **error)
{
  g_autofree char *line = g_strconcat (request, "\n", NULL);
  GError *local_error = NULL;
  char *reply = NULL;

  if (!before_client_connect (self, error))
    return NULL;

  if (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (self->connection)),
                                 line, strlen (line), NULL, NULL, &local_error))
    reply = g_data_input_stream_read_line (self->input, NULL, NULL, &local_error);

  if (reply == NULL)
    {
      /* close on error: the next call connects again */
      before_client_disconnect (self);
      if (local_error == NULL)
        local_error = g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                   "the service closed the connection");
      g_propagate_error (error, local_error);
    }
  return reply;
}

guint64
before_client_get_connect_attempts (BeforeClient *self)
{
  return self->connect_attempts;
}

void
before_client_free (BeforeClient *self)
{
  before_client_disconnect (self);
  g_object_unref (self->client);
  g_free (self->address);
  g_free (self);
}
