/* network-resource-fixture.c: an echo server on 127.0.0.1, TestConn (an
 * ExoNetworkResource whose connection is a GSocketClient's), and helpers
 * for test-network-resource.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The server answers each line with the same line; a test can drop every
 * connection or ask for a port that refuses.  One thread: the server's
 * accepts and reads, TestConn's connects and the helpers' waits run on the
 * test's thread-default main context.
 */
#include "network-resource-fixture.h"

/* --- an echo server on 127.0.0.1 ---------------------------------------- */

typedef struct
{
  EchoServer        *server;
  GSocketConnection *connection;
  GDataInputStream  *input;
  GCancellable      *cancellable;
} EchoConn;

static void echo_conn_read (EchoConn *conn);

static void
echo_conn_close (EchoConn *conn)
{
  EchoServer *server = conn->server;

  g_io_stream_close (G_IO_STREAM (conn->connection), NULL, NULL);
  g_ptr_array_remove (server->conns, conn);
  g_clear_object (&conn->input);
  g_clear_object (&conn->connection);
  g_clear_object (&conn->cancellable);
  g_free (conn);
}

static void
echo_conn_written_cb (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  EchoConn *conn = user_data;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL))
    echo_conn_close (conn);
  else
    echo_conn_read (conn);
}

static void
echo_conn_line_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  EchoConn *conn = user_data;
  g_autofree char *line = NULL;
  g_autofree char *reply = NULL;
  GOutputStream *output;

  line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result,
                                                    NULL, NULL);
  if (line == NULL)
    {
      /* EOF, an error, or cancelled by echo_server_drop_all() */
      echo_conn_close (conn);
      return;
    }

  reply = g_strconcat (line, "\n", NULL);
  output = g_io_stream_get_output_stream (G_IO_STREAM (conn->connection));
  g_output_stream_write_all_async (output, reply, strlen (reply), G_PRIORITY_DEFAULT,
                                   conn->cancellable, echo_conn_written_cb, conn);
  /* write_all_async copies nothing: keep the buffer until it completes */
  g_object_set_data_full (G_OBJECT (conn->connection), "reply", g_steal_pointer (&reply), g_free);
}

static void
echo_conn_read (EchoConn *conn)
{
  g_data_input_stream_read_line_async (conn->input, G_PRIORITY_DEFAULT, conn->cancellable,
                                       echo_conn_line_cb, conn);
}

static gboolean
echo_incoming_cb (GSocketService    *service,
                  GSocketConnection *connection,
                  GObject           *source_object,
                  gpointer           user_data)
{
  EchoServer *server = user_data;
  EchoConn *conn = g_new0 (EchoConn, 1);

  conn->server = server;
  conn->connection = g_object_ref (connection);
  conn->input = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  g_data_input_stream_set_newline_type (conn->input, G_DATA_STREAM_NEWLINE_TYPE_LF);
  conn->cancellable = g_cancellable_new ();
  g_ptr_array_add (server->conns, conn);
  server->n_accepted++;
  echo_conn_read (conn);
  return TRUE;
}

static GInetSocketAddress *
loopback_any_port (void)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);

  return G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (loopback, 0));
}

static char *
address_to_string (GSocketAddress *address)
{
  GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS (address);
  g_autofree char *host = g_inet_address_to_string (g_inet_socket_address_get_address (inet));

  g_assert_cmpstr (host, ==, "127.0.0.1");
  g_assert_cmpuint (g_inet_socket_address_get_port (inet), >, 0);
  return g_strdup_printf ("%s:%u", host, g_inet_socket_address_get_port (inet));
}

EchoServer *
echo_server_new (void)
{
  EchoServer *server = g_new0 (EchoServer, 1);
  g_autoptr(GInetSocketAddress) wanted = loopback_any_port ();
  g_autoptr(GSocketAddress) effective = NULL;
  g_autoptr(GError) error = NULL;

  server->conns = g_ptr_array_new ();
  server->service = g_socket_service_new ();
  g_socket_listener_add_address (G_SOCKET_LISTENER (server->service), G_SOCKET_ADDRESS (wanted),
                                 G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                 &effective, &error);
  g_assert_no_error (error);
  server->address = address_to_string (effective);
  g_signal_connect (server->service, "incoming", G_CALLBACK (echo_incoming_cb), server);
  g_socket_service_start (server->service);
  return server;
}

static gboolean
echo_server_idle (gpointer data)
{
  EchoServer *server = data;
  return server->conns->len == 0;
}

/* The server closes every open connection (as a peer that restarts would). */
void
echo_server_drop_all (EchoServer *server)
{
  for (guint i = 0; i < server->conns->len; i++)
    g_cancellable_cancel (((EchoConn *) g_ptr_array_index (server->conns, i))->cancellable);
  g_assert_true (exo_test_spin_until (echo_server_idle, server, WAIT_MS));
}

void
echo_server_free (EchoServer *server)
{
  echo_server_drop_all (server);
  g_socket_service_stop (server->service);
  g_socket_listener_close (G_SOCKET_LISTENER (server->service));
  g_clear_object (&server->service);
  g_ptr_array_unref (server->conns);
  g_free (server->address);
  g_free (server);
}

/* A port on 127.0.0.1 that refuses connections: bound, never listening, and
 * held for the whole test so that nobody else takes it. */
GSocket *
refusing_port_new (char **address)
{
  g_autoptr(GInetSocketAddress) wanted = loopback_any_port ();
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GError) error = NULL;
  GSocket *socket;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (socket, G_SOCKET_ADDRESS (wanted), FALSE, &error));
  g_assert_no_error (error);
  local = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  *address = address_to_string (local);
  return socket;
}

/* --- a network resource over GSocketClient ------------------------------ */

G_DEFINE_FINAL_TYPE (TestConn, test_conn, EXO_TYPE_NETWORK_RESOURCE)

static void
test_conn_connected_cb (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  TestConn *self = g_task_get_source_object (task);
  GSocketConnection *connection;
  GError *error = NULL;

  connection = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  if (connection == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  self->connection = connection;
  self->input = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  g_data_input_stream_set_newline_type (self->input, G_DATA_STREAM_NEWLINE_TYPE_LF);
  g_task_return_boolean (task, TRUE);
}

static void
test_conn_do_connect (ExoNetworkResource *resource,
                      GTask              *task)
{
  TestConn *self = TEST_CONN (resource);
  g_autoptr(GSocketConnectable) connectable = NULL;
  GError *error = NULL;

  self->n_connect_calls++;
  /* the base class disconnects before it connects again */
  g_assert_null (self->connection);

  connectable = exo_network_resource_get_connectable (resource, 0, &error);
  if (connectable == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_socket_client_connect_async (self->client, connectable, g_task_get_cancellable (task),
                                 test_conn_connected_cb, g_object_ref (task));
}

static void
test_conn_do_disconnect (ExoNetworkResource *resource,
                         GTask              *task)
{
  TestConn *self = TEST_CONN (resource);

  self->n_disconnect_calls++;
  if (self->connection != NULL)
    g_io_stream_close (G_IO_STREAM (self->connection), NULL, NULL);
  g_clear_object (&self->input);
  g_clear_object (&self->connection);
  g_task_return_boolean (task, TRUE);
}

static void
test_conn_finalize (GObject *object)
{
  TestConn *self = TEST_CONN (object);

  g_clear_object (&self->input);
  g_clear_object (&self->connection);
  g_clear_object (&self->client);

  G_OBJECT_CLASS (test_conn_parent_class)->finalize (object);
}

static void
test_conn_class_init (TestConnClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoNetworkResourceClass *network_class = EXO_NETWORK_RESOURCE_CLASS (klass);

  object_class->finalize = test_conn_finalize;
  network_class->do_connect = test_conn_do_connect;
  network_class->do_disconnect = test_conn_do_disconnect;
}

static void
test_conn_init (TestConn *self)
{
  self->client = g_socket_client_new ();
  /* loopback only: no proxy from the environment */
  g_socket_client_set_enable_proxy (self->client, FALSE);
}

TestConn *
test_conn_new (const char *id,
               const char *address,
               guint       max_retries)
{
  ExoRetryPolicy policy = {
    .max_retries = max_retries,
    .initial_delay_ms = 5,
    .max_delay_ms = 20,
    .multiplier = 2.0,
    .jitter = EXO_JITTER_NONE,
    .restart_burst = 0,
    .restart_interval_ms = 0,
  };
  TestConn *self = g_object_new (TEST_TYPE_CONN, "id", id, "address", address, NULL);

  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (self), &policy);
  return self;
}

/* --- helpers ------------------------------------------------------------- */

guint64
metric_u64 (gpointer    resource,
            const char *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (EXO_RESOURCE (resource));
  guint64 value = 0;

  g_assert_true (g_variant_lookup (metrics, key, "t", &value));
  return value;
}

gint64
metric_time (gpointer    resource,
             const char *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (EXO_RESOURCE (resource));
  gint64 value = -1;

  g_assert_true (g_variant_lookup (metrics, key, "x", &value));
  return value;
}

char *
run_sync (TestConn         *conn,
          ExoOperationFunc  func,
          gpointer          data,
          guint             attempt_timeout_ms,
          GError          **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  exo_network_resource_run_async (EXO_NETWORK_RESOURCE (conn), func, data, NULL,
                                  attempt_timeout_ms, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  return exo_network_resource_run_finish (EXO_NETWORK_RESOURCE (conn), result, error);
}

void
state_log_cb (ExoResource      *resource,
              ExoResourceState  old_state,
              ExoResourceState  new_state,
              gpointer          user_data)
{
  GString *log = user_data;

  if (log->len > 0)
    g_string_append_c (log, ',');
  g_string_append (log, exo_resource_state_to_string (new_state));
}

void
close_and_free (TestConn *conn)
{
  g_autoptr(GError) error = NULL;
  GWeakRef weak;

  g_assert_true (exo_test_cleanup (EXO_RESOURCE (conn), &error));
  g_assert_no_error (error);
  g_assert_null (conn->connection);

  g_weak_ref_init (&weak, conn);
  g_object_unref (conn);
  g_assert_null (g_weak_ref_get (&weak));
  g_weak_ref_clear (&weak);
}
