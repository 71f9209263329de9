/* test-network-resource.c: a real TCP connection on 127.0.0.1 as an ExoNetworkResource.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * main(), connecting and refused connections, and a subclass that drops its
 * task are here; operations over the connection in
 * test-network-resource-operations.c; the echo server and TestConn in
 * network-resource-fixture.c.  One thread: the test's thread-default main
 * context.
 */
#include "network-resource-fixture.h"

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
  test_network_register_operations ();
  g_test_add_func ("/exo/network/regression/dropped-task-does-not-hang", test_dropped_task);

  return g_test_run ();
}
