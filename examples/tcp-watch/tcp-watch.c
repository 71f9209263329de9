/* tcp-watch.c: keep a TCP connection open with libexo; see README.md.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <exo/exo.h>
#include <glib-unix.h>
#include <stdio.h>

#define TCP_TYPE_WATCH (tcp_watch_get_type ())
G_DECLARE_FINAL_TYPE (TcpWatch, tcp_watch, TCP, WATCH, ExoNetworkResource)

struct _TcpWatch
{
  ExoNetworkResource  parent_instance;
  GSocketConnection  *connection;
};

G_DEFINE_FINAL_TYPE (TcpWatch, tcp_watch, EXO_TYPE_NETWORK_RESOURCE)

static void
connected_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  TcpWatch *self = g_task_get_source_object (task);
  GError *error = NULL;

  self->connection = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  if (self->connection == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
tcp_watch_do_connect (ExoNetworkResource *resource, GTask *task)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnectable) address = NULL;
  GError *error = NULL;

  address = exo_network_resource_get_connectable (resource, 80, &error);
  if (address == NULL)
    {
      /* a bad address is not worth retrying */
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                               "%s", error->message);
      g_error_free (error);
      return;
    }
  g_socket_client_set_timeout (client, 5);
  g_socket_client_connect_async (client, address, g_task_get_cancellable (task),
                                 connected_cb, g_object_ref (task));
}

static void
tcp_watch_do_disconnect (ExoNetworkResource *resource, GTask *task)
{
  TcpWatch *self = TCP_WATCH (resource);

  if (self->connection != NULL)
    g_io_stream_close (G_IO_STREAM (self->connection), NULL, NULL);
  g_clear_object (&self->connection);
  g_task_return_boolean (task, TRUE);
}

/* Healthy while the peer has not closed: a closed socket is readable with 0 bytes. */
static void
tcp_watch_do_check_health (ExoResource *resource, GTask *task)
{
  TcpWatch *self = TCP_WATCH (resource);
  GSocket *socket = g_socket_connection_get_socket (self->connection);
  char byte;
  gssize n;

  if (g_socket_condition_check (socket, G_IO_IN | G_IO_HUP | G_IO_ERR) == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  n = g_socket_receive_with_blocking (socket, &byte, 1, FALSE, NULL, NULL);
  if (n == 0 || n < 0)
    {
      g_autoptr(GError) lost = g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                            "the peer closed the connection");
      exo_network_resource_report_connection_lost (EXO_NETWORK_RESOURCE (self), lost);
      g_task_return_error (task, g_error_copy (lost));
      return;
    }
  g_task_return_boolean (task, TRUE);   /* data arrived: still alive */
}

static void
tcp_watch_class_init (TcpWatchClass *klass)
{
  EXO_NETWORK_RESOURCE_CLASS (klass)->do_connect = tcp_watch_do_connect;
  EXO_NETWORK_RESOURCE_CLASS (klass)->do_disconnect = tcp_watch_do_disconnect;
  EXO_RESOURCE_CLASS (klass)->do_check_health = tcp_watch_do_check_health;
  exo_resource_class_set_resource_type (EXO_RESOURCE_CLASS (klass), "tcp-watch");
}

static void
tcp_watch_init (TcpWatch *self)
{
}

static void
state_changed_cb (ExoResource *resource, ExoResourceState old_state,
                  ExoResourceState new_state, gpointer user_data)
{
  const GError *error = exo_resource_get_last_error (resource);
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (resource);
  guint64 attempts = 0, successes = 0;

  g_variant_lookup (metrics, "connect-attempts", "t", &attempts);
  g_variant_lookup (metrics, "connect-successes", "t", &successes);
  printf ("%s: %s -> %s%s%s  (connects %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT ")\n",
          exo_resource_get_id (resource),
          exo_resource_state_to_string (old_state), exo_resource_state_to_string (new_state),
          new_state == EXO_RESOURCE_STATE_ERROR && error ? ": " : "",
          new_state == EXO_RESOURCE_STATE_ERROR && error ? error->message : "",
          successes, attempts);
  fflush (stdout);
}

static void
initialized_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;

  if (!exo_resource_initialize_finish (EXO_RESOURCE (source), result, &error))
    printf ("initialize failed after its retries: %s\n"
            "(automatic recovery starts once the connection has been up; Ctrl-C to stop)\n",
            error->message);
}

static void
cleaned_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  exo_resource_cleanup_finish (EXO_RESOURCE (source), result, NULL);
  g_main_loop_quit (user_data);
}

static gboolean
on_sigint (gpointer user_data)
{
  gpointer *pair = user_data;
  exo_resource_cleanup_async (pair[0], NULL, cleaned_cb, pair[1]);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(TcpWatch) watch = NULL;
  ExoRetryPolicy policy = {
    .max_retries = 5, .initial_delay_ms = 200, .max_delay_ms = 5000,
    .multiplier = 2.0, .jitter = EXO_JITTER_FULL,
    .restart_burst = 20, .restart_interval_ms = 60000,
  };
  gpointer pair[2];

  if (argc != 2)
    {
      fprintf (stderr, "usage: %s HOST:PORT\n", argv[0]);
      return 2;
    }

  loop = g_main_loop_new (NULL, FALSE);
  watch = g_object_new (TCP_TYPE_WATCH, "id", "peer", "address", argv[1],
                        "health-check-interval", 1000, NULL);
  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (watch), &policy);
  g_signal_connect (watch, "state-changed", G_CALLBACK (state_changed_cb), NULL);

  pair[0] = watch;
  pair[1] = loop;
  g_unix_signal_add (SIGINT, on_sigint, pair);
  exo_resource_initialize_async (EXO_RESOURCE (watch), NULL, initialized_cb, NULL);
  g_main_loop_run (loop);
  return 0;
}
