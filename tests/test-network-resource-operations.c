/* test-network-resource-operations.c: operations over an ExoNetworkResource's
 * connection — an echo, a reconnect after the server dropped it, a lost
 * connection without retries, fatal errors, timeouts, the destroy notify of
 * the operation's data — and auto-recovery.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-network-resource (main() in test-network-resource.c).  The
 * operations (echo_op, flaky_op, ...) run on the resource's main context,
 * the test's thread-default one; hang_op only ends when cancelled.
 */
#include "network-resource-fixture.h"

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

/* --- registration ---------------------------------------------------- */

void
test_network_register_operations (void)
{
  g_test_add_func ("/exo/network/operation/echo", test_operation_echo);
  g_test_add_func ("/exo/network/operation/reconnect", test_operation_reconnect);
  g_test_add_func ("/exo/network/operation/lost", test_operation_lost_without_retries);
  g_test_add_func ("/exo/network/operation/fatal", test_operation_fatal);
  g_test_add_func ("/exo/network/operation/timeout", test_operation_timeout);
  g_test_add_func ("/exo/network/operation/destroy-notify", test_operation_destroy_notify);
  g_test_add_func ("/exo/network/auto-recover", test_auto_recover);
}
