/* client-after.c: the same client as an ExoNetworkResource.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Written here: connect, disconnect, a passive health check and one attempt
 * of a call.  libexo does the rest: retries with backoff (of the connect and
 * of each call, on a fresh connection), the attempt timeout, the periodic
 * health check, recovery in the background.  Everything runs in the main
 * context that was thread-default when the client was made; nothing blocks.
 * Its lines are counted into the table: keep only the client here.
 */
#include "clients.h"

#include <string.h>

#define HEALTH_CHECK_MS 200

struct _AfterClient
{
  ExoNetworkResource  parent_instance;
  GSocketConnection  *connection;
  GDataInputStream   *input;
};

G_DEFINE_FINAL_TYPE (AfterClient, after_client, EXO_TYPE_NETWORK_RESOURCE)

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  AfterClient *self = g_task_get_source_object (task);
  GError *error = NULL;

  self->connection = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  if (self->connection != NULL)
    self->input = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (self->connection)));
  exo_task_return_result (task, self->connection != NULL, error);
}

static void
after_client_do_connect (ExoNetworkResource *resource,
                         GTask              *task)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnectable) address = NULL;
  GError *error = NULL;

  address = exo_network_resource_get_connectable (resource, 0, &error);
  if (address == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_socket_client_connect_async (client, address, g_task_get_cancellable (task),
                                 connected_cb, g_object_ref (task));
}

static void
after_client_do_disconnect (ExoNetworkResource *resource,
                            GTask              *task)
{
  AfterClient *self = AFTER_CLIENT (resource);

  g_clear_object (&self->input);
  if (self->connection != NULL)
    g_io_stream_close (G_IO_STREAM (self->connection), NULL, NULL);
  g_clear_object (&self->connection);
  g_task_return_boolean (task, TRUE);
}

/* The service sends nothing but replies: a connection that is readable with
 * nothing to read was closed by the other end. */
static void
after_client_do_check_health (ExoResource *resource,
                              GTask       *task)
{
  AfterClient *self = AFTER_CLIENT (resource);
  GSocket *socket = g_socket_connection_get_socket (self->connection);
  g_autoptr(GError) lost = NULL;

  if (g_socket_condition_check (socket, G_IO_IN | G_IO_HUP | G_IO_ERR) == 0 ||
      g_socket_get_available_bytes (socket) > 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  lost = g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "the service closed the connection");
  exo_network_resource_report_connection_lost (EXO_NETWORK_RESOURCE (self), lost);
  g_task_return_error (task, g_error_copy (lost));
}

/* A failed exchange leaves the line protocol out of step (a timed-out call's
 * reply may still come): whatever went wrong, use a new connection. */
static gboolean
after_client_is_connection_error (ExoNetworkResource *self,
                                  const GError       *error)
{
  return TRUE;
}

static void
after_client_class_init (AfterClientClass *klass)
{
  EXO_NETWORK_RESOURCE_CLASS (klass)->do_connect = after_client_do_connect;
  EXO_NETWORK_RESOURCE_CLASS (klass)->do_disconnect = after_client_do_disconnect;
  EXO_NETWORK_RESOURCE_CLASS (klass)->is_connection_error = after_client_is_connection_error;
  EXO_RESOURCE_CLASS (klass)->do_check_health = after_client_do_check_health;
  exo_resource_class_set_resource_type (EXO_RESOURCE_CLASS (klass), "line-client");
}

static void
after_client_init (AfterClient *self)
{
}

AfterClient *
after_client_new (const char *address,
                  guint32     seed)
{
  ExoRetryPolicy policy = {
    .max_retries = 10, .initial_delay_ms = 25, .max_delay_ms = 400,
    .multiplier = 2.0, .jitter = EXO_JITTER_EQUAL,
  };
  AfterClient *self = g_object_new (AFTER_TYPE_CLIENT, "id", "after", "address", address,
                                    "health-check-interval", HEALTH_CHECK_MS, NULL);

  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (self), &policy);
  exo_managed_resource_seed_jitter (EXO_MANAGED_RESOURCE (self), seed);
  return self;
}

/* --- one attempt of a call: write the request, read the reply ------------ */

static void
reply_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  char *reply = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (source), result,
                                                      NULL, &error);

  if (reply == NULL && error == NULL)
    error = g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "the service closed the connection");
  if (reply == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, reply, g_free);
}

static void
request_written_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GDataInputStream *input = g_task_get_task_data (task);   /* this attempt's connection */
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  g_data_input_stream_read_line_async (input, G_PRIORITY_DEFAULT, cancellable,
                                       reply_cb, g_steal_pointer (&task));
}

static void
call_attempt (ExoResource  *resource,
              GCancellable *cancellable,
              GTask        *task,
              gpointer      line)
{
  AfterClient *self = AFTER_CLIENT (resource);

  g_task_set_task_data (task, g_object_ref (self->input), g_object_unref);
  g_output_stream_write_all_async (g_io_stream_get_output_stream (G_IO_STREAM (self->connection)),
                                   line, strlen (line), G_PRIORITY_DEFAULT, cancellable,
                                   request_written_cb, g_object_ref (task));
}

void
after_client_call_async (AfterClient         *self,
                         const char          *request,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  exo_network_resource_run_async (EXO_NETWORK_RESOURCE (self), call_attempt,
                                  g_strconcat (request, "\n", NULL), g_free,
                                  CLIENT_TIMEOUT_MS, cancellable, callback, user_data);
}

char *
after_client_call_finish (AfterClient   *self,
                          GAsyncResult  *result,
                          GError       **error)
{
  return exo_network_resource_run_finish (EXO_NETWORK_RESOURCE (self), result, error);
}
