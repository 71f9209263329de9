/* test-network-resource.c: a real TCP connection on 127.0.0.1 as an ExoNetworkResource.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

#define WAIT_MS 20000

/* --- an echo server on 127.0.0.1 ---------------------------------------- */

typedef struct _EchoServer EchoServer;

typedef struct
{
  EchoServer        *server;
  GSocketConnection *connection;
  GDataInputStream  *input;
  GCancellable      *cancellable;
} EchoConn;

struct _EchoServer
{
  GSocketService *service;
  char           *address;    /* "127.0.0.1:PORT" */
  GPtrArray      *conns;      /* EchoConn*, the open ones */
  guint           n_accepted;
};

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

static EchoServer *
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
static void
echo_server_drop_all (EchoServer *server)
{
  for (guint i = 0; i < server->conns->len; i++)
    g_cancellable_cancel (((EchoConn *) g_ptr_array_index (server->conns, i))->cancellable);
  g_assert_true (exo_test_spin_until (echo_server_idle, server, WAIT_MS));
}

static void
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
static GSocket *
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

#define TEST_TYPE_CONN (test_conn_get_type ())
G_DECLARE_FINAL_TYPE (TestConn, test_conn, TEST, CONN, ExoNetworkResource)

struct _TestConn
{
  ExoNetworkResource  parent_instance;
  GSocketClient      *client;
  GSocketConnection  *connection;
  GDataInputStream   *input;
  guint               n_connect_calls;
  guint               n_disconnect_calls;
};

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

static TestConn *
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

/* --- operations ---------------------------------------------------------- */

typedef struct
{
  const char *line;    /* sent with a newline; the echo is returned */
  guint       calls;
} EchoOp;

static void
echo_read_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  GError *error = NULL;
  char *line;

  line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result,
                                                    NULL, &error);
  if (error != NULL)
    g_task_return_error (task, error);
  else if (line == NULL)
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                             "the server closed the connection");
  else
    g_task_return_pointer (task, line, g_free);
  g_object_unref (task);
}

static void
echo_written_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  TestConn *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  g_data_input_stream_read_line_async (self->input, G_PRIORITY_DEFAULT,
                                       g_task_get_cancellable (task), echo_read_cb, task);
}

static void
echo_op (ExoResource  *resource,
         GCancellable *cancellable,
         GTask        *task,
         gpointer      user_data)
{
  TestConn *self = TEST_CONN (resource);
  EchoOp *op = user_data;
  g_autofree char *data = g_strconcat (op->line, "\n", NULL);
  GOutputStream *output;

  op->calls++;
  g_assert_true (exo_resource_is_usable (resource));
  g_assert_nonnull (self->connection);

  output = g_io_stream_get_output_stream (G_IO_STREAM (self->connection));
  g_output_stream_write_all_async (output, data, strlen (data), G_PRIORITY_DEFAULT,
                                   cancellable, echo_written_cb, g_object_ref (task));
  g_object_set_data_full (G_OBJECT (task), "data", g_steal_pointer (&data), g_free);
}

static void
fatal_op (ExoResource  *resource,
          GCancellable *cancellable,
          GTask        *task,
          gpointer      user_data)
{
  guint *calls = user_data;

  (*calls)++;
  g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                           "the peer refused the request for good");
}

static void
flaky_op (ExoResource  *resource,
          GCancellable *cancellable,
          GTask        *task,
          gpointer      user_data)
{
  guint *calls = user_data;

  if ((*calls)++ == 0)
    g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                             "a passing failure");
  else
    g_task_return_pointer (task, g_strdup ("second time lucky"), g_free);
}

static gboolean
hang_cancelled_cb (GCancellable *cancellable,
                   gpointer      user_data)
{
  GTask *task = user_data;

  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "hang op cancelled");
  return G_SOURCE_REMOVE;
}

/* Never completes unless its cancellable is cancelled. */
static void
hang_op (ExoResource  *resource,
         GCancellable *cancellable,
         GTask        *task,
         gpointer      user_data)
{
  guint *calls = user_data;
  GSource *source;

  (*calls)++;
  g_assert_nonnull (cancellable);
  source = g_cancellable_source_new (cancellable);
  g_source_set_callback (source, G_SOURCE_FUNC (hang_cancelled_cb), g_object_ref (task),
                         g_object_unref);
  g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source);
}

/* --- helpers ------------------------------------------------------------- */

static guint64
metric_u64 (gpointer    resource,
            const char *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (EXO_RESOURCE (resource));
  guint64 value = 0;

  g_assert_true (g_variant_lookup (metrics, key, "t", &value));
  return value;
}

static gint64
metric_time (gpointer    resource,
             const char *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (EXO_RESOURCE (resource));
  gint64 value = -1;

  g_assert_true (g_variant_lookup (metrics, key, "x", &value));
  return value;
}

static char *
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

static void
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

static void
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

/* --- tests --------------------------------------------------------------- */

static void
test_connect (void)
{
  EchoServer *server = echo_server_new ();
  TestConn *conn = test_conn_new ("net-connect", server->address, 0);
  g_autoptr(GError) error = NULL;
  gint64 before = g_get_real_time ();
  gint64 after;

  g_assert_cmpuint (metric_u64 (conn, "connect-attempts"), ==, 0);
  g_assert_cmpint (metric_time (conn, "last-connected"), ==, 0);
  g_assert_cmpint (metric_time (conn, "last-success"), ==, 0);

  g_assert_true (exo_test_initialize (EXO_RESOURCE (conn), &error));
  g_assert_no_error (error);
  after = g_get_real_time ();

  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (conn)), ==, EXO_RESOURCE_STATE_READY);
  g_assert_nonnull (conn->connection);
  g_assert_cmpuint (conn->n_connect_calls, ==, 1);

  g_assert_cmpuint (metric_u64 (conn, "connect-attempts"), ==, 1);
  g_assert_cmpuint (metric_u64 (conn, "connect-successes"), ==, 1);
  g_assert_cmpuint (metric_u64 (conn, "connect-failures"), ==, 0);
  g_assert_cmpuint (metric_u64 (conn, "operations"), ==, 0);
  g_assert_cmpint (metric_time (conn, "last-connected"), >=, before);
  g_assert_cmpint (metric_time (conn, "last-connected"), <=, after);
  g_assert_cmpint (metric_time (conn, "last-success"), ==, 0);
  /* the accessors say the same */
  g_assert_cmpuint (exo_network_resource_get_connect_attempts (EXO_NETWORK_RESOURCE (conn)), ==, 1);
  g_assert_cmpuint (exo_network_resource_get_connect_successes (EXO_NETWORK_RESOURCE (conn)), ==, 1);
  g_assert_cmpuint (exo_network_resource_get_connect_failures (EXO_NETWORK_RESOURCE (conn)), ==, 0);
  g_assert_cmpint (exo_network_resource_get_last_connected (EXO_NETWORK_RESOURCE (conn)), ==,
                   metric_time (conn, "last-connected"));

  {
    g_autoptr(GVariant) metrics = exo_resource_get_metrics (EXO_RESOURCE (conn));
    const char *address = NULL;

    g_assert_true (g_variant_lookup (metrics, "address", "&s", &address));
    g_assert_cmpstr (address, ==, server->address);
  }

  close_and_free (conn);
  echo_server_free (server);
}

static void
check_refused (guint max_retries)
{
  g_autofree char *address = NULL;
  g_autoptr(GSocket) port = refusing_port_new (&address);
  g_autofree char *id = g_strdup_printf ("net-refused-%u", max_retries);
  TestConn *conn = test_conn_new (id, address, max_retries);
  g_autoptr(GError) error = NULL;

  g_assert_false (exo_test_initialize (EXO_RESOURCE (conn), &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
  g_assert_true (exo_error_is_connection_error (error));

  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (conn)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_true (g_error_matches (exo_resource_get_last_error (EXO_RESOURCE (conn)),
                                  G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED));
  g_assert_cmpuint (conn->n_connect_calls, ==, max_retries + 1);
  g_assert_cmpuint (metric_u64 (conn, "connect-attempts"), ==, max_retries + 1);
  g_assert_cmpuint (metric_u64 (conn, "connect-failures"), ==, max_retries + 1);
  g_assert_cmpuint (metric_u64 (conn, "connect-successes"), ==, 0);
  g_assert_cmpint (metric_time (conn, "last-connected"), ==, 0);
  g_assert_null (conn->connection);

  close_and_free (conn);
}

static void
test_connect_refused (void)
{
  check_refused (0);
}

static void
test_connect_refused_retries (void)
{
  check_refused (3);
}

static void
test_operation_echo (void)
{
  EchoServer *server = echo_server_new ();
  TestConn *conn = test_conn_new ("net-echo", server->address, 0);
  EchoOp op = { "hello over loopback", 0 };
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = NULL;
  gint64 before = g_get_real_time ();

  /* The runner connects first when it has to. */
  reply = run_sync (conn, echo_op, &op, 5000, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (reply, ==, "hello over loopback");
  g_assert_cmpuint (op.calls, ==, 1);
  g_assert_cmpuint (server->n_accepted, ==, 1);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (conn)), ==, EXO_RESOURCE_STATE_READY);

  g_assert_cmpuint (metric_u64 (conn, "connect-attempts"), ==, 1);
  g_assert_cmpuint (metric_u64 (conn, "connect-successes"), ==, 1);
  g_assert_cmpuint (metric_u64 (conn, "operations"), ==, 1);
  g_assert_cmpuint (metric_u64 (conn, "operation-failures"), ==, 0);
  g_assert_cmpint (metric_time (conn, "last-success"), >=, before);
  g_assert_cmpint (metric_time (conn, "last-success"), <=, g_get_real_time ());

  /* A second operation reuses the connection. */
  g_clear_pointer (&reply, g_free);
  op.line = "again";
  reply = run_sync (conn, echo_op, &op, 5000, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (reply, ==, "again");
  g_assert_cmpuint (server->n_accepted, ==, 1);
  g_assert_cmpuint (metric_u64 (conn, "connect-attempts"), ==, 1);
  g_assert_cmpuint (metric_u64 (conn, "operations"), ==, 2);

  close_and_free (conn);
  echo_server_free (server);
}

static void
test_operation_reconnect (void)
{
  EchoServer *server = echo_server_new ();
  TestConn *conn = test_conn_new ("net-reconnect", server->address, 3);
  EchoOp op = { "first", 0 };
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = NULL;
  g_autoptr(GString) states = g_string_new (NULL);
  const GError *last_error;

  /* Only the runner reconnects here, not the managed recovery. */
  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (conn), FALSE);

  reply = run_sync (conn, echo_op, &op, 5000, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (reply, ==, "first");
  g_clear_pointer (&reply, g_free);

  /* The server drops the connection; the client has not noticed yet. */
  echo_server_drop_all (server);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (conn)), ==, EXO_RESOURCE_STATE_READY);

  g_signal_connect (conn, "state-changed", G_CALLBACK (state_log_cb), states);
  op.calls = 0;
  op.line = "second";
  reply = run_sync (conn, echo_op, &op, 5000, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (reply, ==, "second");

  /* The first attempt failed on the dead connection and marked it lost;
   * the second reconnected and succeeded. */
  g_assert_cmpuint (op.calls, ==, 2);
  g_assert_cmpstr (states->str, ==, "error,initializing,ready");
  last_error = exo_resource_get_last_error (EXO_RESOURCE (conn));
  g_assert_nonnull (last_error);
  g_assert_true (exo_error_is_connection_error (last_error));

  g_assert_cmpuint (server->n_accepted, ==, 2);
  g_assert_cmpuint (conn->n_connect_calls, ==, 2);
  g_assert_cmpuint (conn->n_disconnect_calls, >=, 1);
  g_assert_cmpuint (metric_u64 (conn, "connect-attempts"), ==, 2);
  g_assert_cmpuint (metric_u64 (conn, "connect-successes"), ==, 2);
  g_assert_cmpuint (metric_u64 (conn, "connect-failures"), ==, 0);
  g_assert_cmpuint (metric_u64 (conn, "reconnects"), ==, 1);
  g_assert_cmpuint (metric_u64 (conn, "operations"), ==, 3);
  g_assert_cmpuint (metric_u64 (conn, "operation-failures"), ==, 1);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (conn)), ==, EXO_RESOURCE_STATE_READY);

  g_signal_handlers_disconnect_by_func (conn, state_log_cb, states);
  close_and_free (conn);
  echo_server_free (server);
}

static void
test_operation_lost_without_retries (void)
{
  EchoServer *server = echo_server_new ();
  TestConn *conn = test_conn_new ("net-lost", server->address, 0);
  EchoOp op = { "first", 0 };
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = NULL;

  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (conn), FALSE);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (conn), &error));
  echo_server_drop_all (server);

  /* No retry allowed: the caller sees the connection error, the resource is lost. */
  reply = run_sync (conn, echo_op, &op, 5000, &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  g_assert_true (exo_error_is_connection_error (error));
  g_assert_cmpuint (op.calls, ==, 1);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (conn)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_cmpuint (metric_u64 (conn, "reconnects"), ==, 1);
  g_clear_error (&error);

  /* The next operation reconnects. */
  op.line = "after";
  reply = run_sync (conn, echo_op, &op, 5000, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (reply, ==, "after");
  g_assert_cmpuint (metric_u64 (conn, "connect-successes"), ==, 2);

  close_and_free (conn);
  echo_server_free (server);
}

static void
test_operation_fatal (void)
{
  EchoServer *server = echo_server_new ();
  TestConn *conn = test_conn_new ("net-fatal", server->address, 5);
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = NULL;
  guint calls = 0;

  reply = run_sync (conn, fatal_op, &calls, 0, &error);
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
  g_assert_null (reply);
  g_assert_cmpuint (calls, ==, 1);
  /* not a connection error: the connection is kept */
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (conn)), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpuint (metric_u64 (conn, "connect-attempts"), ==, 1);
  g_assert_cmpuint (metric_u64 (conn, "operations"), ==, 1);
  g_assert_cmpuint (metric_u64 (conn, "operation-failures"), ==, 1);
  g_assert_cmpint (metric_time (conn, "last-success"), ==, 0);
  g_clear_error (&error);

  /* A retryable failure, by contrast, is retried. */
  calls = 0;
  reply = run_sync (conn, flaky_op, &calls, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (reply, ==, "second time lucky");
  g_assert_cmpuint (calls, ==, 2);
  g_assert_cmpuint (metric_u64 (conn, "connect-attempts"), ==, 1);
  g_assert_cmpint (metric_time (conn, "last-success"), >, 0);

  close_and_free (conn);
  echo_server_free (server);
}

static void
test_operation_timeout (void)
{
  const guint max_retries = 2;
  const guint timeout_ms = 50;
  EchoServer *server = echo_server_new ();
  TestConn *conn = test_conn_new ("net-timeout", server->address, max_retries);
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = NULL;
  guint calls = 0;
  gint64 start = g_get_monotonic_time ();

  reply = run_sync (conn, hang_op, &calls, timeout_ms, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_null (reply);
  g_assert_cmpuint (calls, ==, max_retries + 1);
  /* each attempt waited for its own timeout */
  g_assert_cmpint (g_get_monotonic_time () - start, >=, (gint64) (max_retries + 1) * timeout_ms * 1000);

  /* A timed-out operation is not a lost connection. */
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (conn)), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpuint (metric_u64 (conn, "connect-attempts"), ==, 1);
  g_assert_cmpuint (metric_u64 (conn, "operations"), ==, max_retries + 1);
  g_assert_cmpuint (metric_u64 (conn, "operation-failures"), ==, max_retries + 1);

  close_and_free (conn);
  echo_server_free (server);
}

/* (func, func_data, func_data_destroy) on a network resource: func_data is
 * freed once, after the callback; the result of the successful attempt,
 * untaken, is freed with the destroy notify func gave. */
typedef struct
{
  guint         calls;
  guint         data_destroyed;
  guint         values_freed;
  gboolean      callback_ran;
  GAsyncResult *result;
} NetCounts;

static void
net_value_free (gpointer data)
{
  NetCounts **value = data;

  (*value)->values_freed++;
  g_free (value);
}

static void
net_counts_destroy (gpointer data)
{
  ((NetCounts *) data)->data_destroyed++;
}

static void
net_counted_op (ExoResource  *resource,
                GCancellable *cancellable,
                GTask        *task,
                gpointer      user_data)
{
  NetCounts *counts = user_data;
  NetCounts **value;

  if (counts->calls++ == 0)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                               "a passing failure");
      return;
    }
  value = g_new (NetCounts *, 1);
  *value = counts;
  g_task_return_pointer (task, value, net_value_free);
}

static void
net_ignore_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  NetCounts *counts = user_data;

  g_assert_cmpuint (counts->data_destroyed, ==, 0);
  counts->callback_ran = TRUE;
  counts->result = g_object_ref (result);
}

static gboolean
net_counts_done (gpointer data)
{
  return ((NetCounts *) data)->callback_ran;
}

static void
test_operation_destroy_notify (void)
{
  EchoServer *server = echo_server_new ();
  TestConn *conn = test_conn_new ("net-destroy", server->address, 3);
  NetCounts counts = { 0 };

  exo_network_resource_run_async (EXO_NETWORK_RESOURCE (conn), net_counted_op, &counts,
                                  net_counts_destroy, 0, NULL, net_ignore_cb, &counts);
  g_assert_true (exo_test_spin_until (net_counts_done, &counts, WAIT_MS));
  g_assert_cmpuint (counts.calls, ==, 2);
  g_assert_cmpuint (counts.data_destroyed, ==, 0);
  g_assert_cmpuint (counts.values_freed, ==, 0);
  g_assert_cmpuint (metric_u64 (conn, "operations"), ==, 2);
  g_assert_cmpuint (metric_u64 (conn, "operation-failures"), ==, 1);

  g_clear_object (&counts.result);
  g_assert_cmpuint (counts.data_destroyed, ==, 1);
  g_assert_cmpuint (counts.values_freed, ==, 1);

  close_and_free (conn);
  echo_server_free (server);
  g_assert_cmpuint (counts.data_destroyed, ==, 1);
}

static void
test_auto_recover (void)
{
  EchoServer *server = echo_server_new ();
  TestConn *conn = test_conn_new ("net-recover", server->address, 3);
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) lost = NULL;
  EchoOp op = { "still there", 0 };
  g_autofree char *reply = NULL;

  g_assert_true (exo_managed_resource_get_auto_recover (EXO_MANAGED_RESOURCE (conn)));
  g_assert_true (exo_test_initialize (EXO_RESOURCE (conn), &error));
  g_assert_no_error (error);

  lost = g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "peer went away");
  exo_network_resource_report_connection_lost (EXO_NETWORK_RESOURCE (conn), lost);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (conn)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_true (g_error_matches (exo_resource_get_last_error (EXO_RESOURCE (conn)),
                                  G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED));
  g_assert_true (exo_managed_resource_is_recovery_pending (EXO_MANAGED_RESOURCE (conn)));

  /* Nobody calls anything: it comes back by itself. */
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (conn), EXO_RESOURCE_STATE_READY, WAIT_MS));
  g_assert_cmpuint (metric_u64 (conn, "connect-successes"), ==, 2);
  g_assert_cmpuint (metric_u64 (conn, "reconnects"), ==, 1);
  g_assert_cmpuint (server->n_accepted, ==, 2);
  g_assert_cmpuint (conn->n_disconnect_calls, ==, 1);
  g_assert_cmpuint (exo_managed_resource_get_restarts (EXO_MANAGED_RESOURCE (conn)), ==, 1);
  g_assert_false (exo_managed_resource_is_recovery_pending (EXO_MANAGED_RESOURCE (conn)));

  /* and the new connection works */
  reply = run_sync (conn, echo_op, &op, 5000, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (reply, ==, "still there");

  close_and_free (conn);
  echo_server_free (server);
}

/* --- a subclass that drops its task ------------------------------------ */

/* do_connect and do_disconnect get a (transfer none) task.  This one drops
 * it without completing it or keeping a reference (what a subclass that
 * means to complete it later, but forgot g_object_ref(), ends up doing);
 * do_connect succeeds instead when connect_ok is set. */
#define TEST_TYPE_DROP_CONN (test_drop_conn_get_type ())
G_DECLARE_FINAL_TYPE (TestDropConn, test_drop_conn, TEST, DROP_CONN, ExoNetworkResource)

struct _TestDropConn
{
  ExoNetworkResource parent_instance;
  gboolean           connect_ok;
  guint              n_connect_calls;
  guint              n_disconnect_calls;
};

G_DEFINE_FINAL_TYPE (TestDropConn, test_drop_conn, EXO_TYPE_NETWORK_RESOURCE)

static void
test_drop_conn_do_connect (ExoNetworkResource *resource,
                           GTask              *task)
{
  TestDropConn *self = TEST_DROP_CONN (resource);

  self->n_connect_calls++;
  if (self->connect_ok)
    g_task_return_boolean (task, TRUE);
}

static void
test_drop_conn_do_disconnect (ExoNetworkResource *resource,
                              GTask              *task)
{
  TEST_DROP_CONN (resource)->n_disconnect_calls++;
}

static void
test_drop_conn_class_init (TestDropConnClass *klass)
{
  ExoNetworkResourceClass *network_class = EXO_NETWORK_RESOURCE_CLASS (klass);

  network_class->do_connect = test_drop_conn_do_connect;
  network_class->do_disconnect = test_drop_conn_do_disconnect;
}

static void
test_drop_conn_init (TestDropConn *self)
{
}

static void
test_dropped_task (void)
{
  ExoRetryPolicy policy = {
    .max_retries = 3, .initial_delay_ms = 5, .max_delay_ms = 20,
    .multiplier = 2.0, .jitter = EXO_JITTER_NONE,
  };
  g_autoptr(TestDropConn) conn = g_object_new (TEST_TYPE_DROP_CONN, "id", "drop",
                                               "address", "127.0.0.1:1", NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (conn), &policy);

  /* The initialize fails at once instead of staying initializing… */
  exo_resource_initialize_async (EXO_RESOURCE (conn), NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000 * exo_test_slow_factor ()));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (conn), result, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "do_connect"));
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (conn)), ==, EXO_RESOURCE_STATE_ERROR);
  /* …each attempt failed (a binding's exception may be transient: it is
   * retried like any failure).  The cleanups of the half-made connection
   * (whose tasks were dropped too) did not hang either. */
  g_assert_cmpuint (conn->n_connect_calls, ==, 4);
  g_assert_cmpuint (conn->n_disconnect_calls, ==, 4);

  /* A cleanup of a connected resource ends closed instead of closing
   * forever, with the error. */
  conn->connect_ok = TRUE;
  g_assert_true (exo_test_initialize (EXO_RESOURCE (conn), NULL));
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (conn)), ==, EXO_RESOURCE_STATE_READY);
  g_clear_object (&result);
  g_clear_error (&error);
  exo_resource_cleanup_async (EXO_RESOURCE (conn), NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000 * exo_test_slow_factor ()));
  g_assert_false (exo_resource_cleanup_finish (EXO_RESOURCE (conn), result, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "do_disconnect"));
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (conn)), ==, EXO_RESOURCE_STATE_CLOSED);
  g_assert_cmpuint (conn->n_disconnect_calls, >=, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/exo/network/connect/success", test_connect);
  g_test_add_func ("/exo/network/connect/refused", test_connect_refused);
  g_test_add_func ("/exo/network/connect/refused-retries", test_connect_refused_retries);
  g_test_add_func ("/exo/network/operation/echo", test_operation_echo);
  g_test_add_func ("/exo/network/operation/reconnect", test_operation_reconnect);
  g_test_add_func ("/exo/network/operation/lost", test_operation_lost_without_retries);
  g_test_add_func ("/exo/network/operation/fatal", test_operation_fatal);
  g_test_add_func ("/exo/network/operation/timeout", test_operation_timeout);
  g_test_add_func ("/exo/network/operation/destroy-notify", test_operation_destroy_notify);
  g_test_add_func ("/exo/network/auto-recover", test_auto_recover);
  g_test_add_func ("/exo/network/regression/dropped-task-does-not-hang", test_dropped_task);

  return g_test_run ();
}
