/* bench-recovery.c: how fast supervision brings a resource back after an
 * outage of its backend.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The real code path of an embedder (and of exo-node, less D-Bus): a group
 * supervises an ExoNetworkResource that holds a TCP connection to a real
 * server on 127.0.0.1 and probes it with a fresh connection as its health
 * check.  Each run stops the server (listener closed, connections dropped),
 * waits until the resource has noticed (it leaves `ready`) and 300 ms more,
 * starts the server again on the same port and measures the time until the
 * resource is `ready` again: recovery_after_outage_ms.  Everything runs in
 * this thread's main context; only loopback traffic.
 */
#include "bench.h"

#include <stdio.h>

#define HEALTH_INTERVAL_MS  50
#define INITIAL_DELAY_MS    20
#define MAX_DELAY_MS       200
#define OUTAGE_MS          300
#define RUNS                 9

/* --- the backend ---------------------------------------------------------- */

typedef struct
{
  GSocketService *service;
  GPtrArray      *connections;   /* GSocketConnection*, closed when it stops */
  guint16         port;
} Server;

static gboolean
on_incoming (GSocketService    *service,
             GSocketConnection *connection,
             GObject           *source,
             gpointer           user_data)
{
  Server *server = user_data;

  g_ptr_array_add (server->connections, g_object_ref (connection));
  return TRUE;
}

static void
server_start (Server *server)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, server->port);
  g_autoptr(GSocketAddress) effective = NULL;

  server->service = g_socket_service_new ();
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (server->service), address,
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                      NULL, &effective, &error))
    g_error ("bench server: %s", error->message);
  server->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  g_signal_connect (server->service, "incoming", G_CALLBACK (on_incoming), server);
  g_socket_service_start (server->service);
}

static void
server_stop (Server *server)
{
  g_socket_service_stop (server->service);
  g_socket_listener_close (G_SOCKET_LISTENER (server->service));
  g_clear_object (&server->service);
  for (guint i = 0; i < server->connections->len; i++)
    g_io_stream_close (g_ptr_array_index (server->connections, i), NULL, NULL);
  g_ptr_array_set_size (server->connections, 0);
}

/* --- the resource ----------------------------------------------------------- */

#define BENCH_TYPE_TCP (bench_tcp_get_type ())
G_DECLARE_FINAL_TYPE (BenchTcp, bench_tcp, BENCH, TCP, ExoNetworkResource)

struct _BenchTcp
{
  ExoNetworkResource  parent_instance;
  GSocketConnection  *connection;
  guint16             port;
};

G_DEFINE_FINAL_TYPE (BenchTcp, bench_tcp, EXO_TYPE_NETWORK_RESOURCE)

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;   /* our own reference */
  BenchTcp *self = g_task_get_source_object (task);
  GError *error = NULL;

  self->connection = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &error);
  if (self->connection == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
bench_tcp_do_connect (ExoNetworkResource *resource,
                      GTask              *task)
{
  BenchTcp *self = BENCH_TCP (resource);
  g_autoptr(GSocketClient) client = g_socket_client_new ();

  g_socket_client_set_timeout (client, 1);
  g_socket_client_connect_to_host_async (client, "127.0.0.1", self->port,
                                         g_task_get_cancellable (task), connect_cb,
                                         g_object_ref (task));
}

static void
bench_tcp_do_disconnect (ExoNetworkResource *resource,
                         GTask              *task)
{
  BenchTcp *self = BENCH_TCP (resource);

  if (self->connection != NULL)
    g_io_stream_close (G_IO_STREAM (self->connection), NULL, NULL);
  g_clear_object (&self->connection);
  g_task_return_boolean (task, TRUE);
}

static void
probe_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GSocketConnection) probe = NULL;
  GError *error = NULL;

  probe = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &error);
  if (probe == NULL)
    g_task_return_error (task, error);
  else
    {
      g_io_stream_close (G_IO_STREAM (probe), NULL, NULL);
      g_task_return_boolean (task, TRUE);
    }
}

/* The probe: a fresh connection to the backend. */
static void
bench_tcp_do_check_health (ExoResource *resource,
                           GTask       *task)
{
  BenchTcp *self = BENCH_TCP (resource);
  g_autoptr(GSocketClient) client = g_socket_client_new ();

  g_socket_client_set_timeout (client, 1);
  g_socket_client_connect_to_host_async (client, "127.0.0.1", self->port,
                                         g_task_get_cancellable (task), probe_cb,
                                         g_object_ref (task));
}

static void
bench_tcp_finalize (GObject *object)
{
  g_clear_object (&BENCH_TCP (object)->connection);
  G_OBJECT_CLASS (bench_tcp_parent_class)->finalize (object);
}

static void
bench_tcp_class_init (BenchTcpClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bench_tcp_finalize;
  EXO_RESOURCE_CLASS (klass)->do_check_health = bench_tcp_do_check_health;
  EXO_NETWORK_RESOURCE_CLASS (klass)->do_connect = bench_tcp_do_connect;
  EXO_NETWORK_RESOURCE_CLASS (klass)->do_disconnect = bench_tcp_do_disconnect;
}

static void
bench_tcp_init (BenchTcp *self)
{
}

/* --- the benchmark ------------------------------------------------------------ */

static gboolean
timeout_flag_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
spin_ms (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, timeout_flag_cb, &done);
  bench_wait_flag (&done);
}

/* Spins until @resource is (want_ready) or is not (!want_ready) `ready`;
 * FALSE after 10 s. */
static gboolean
wait_ready (ExoResource *resource,
            gboolean     want_ready)
{
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while ((exo_resource_get_state (resource) == EXO_RESOURCE_STATE_READY) != want_ready)
    {
      if (g_get_monotonic_time () > end)
        return FALSE;
      g_main_context_iteration (NULL, TRUE);
    }
  return TRUE;
}

static void
init_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  if (!exo_resource_initialize_finish (EXO_RESOURCE (source), result, NULL))
    g_error ("bench group did not initialize");
  *(gboolean *) user_data = TRUE;
}

static void
cleanup_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  exo_resource_cleanup_finish (EXO_RESOURCE (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

static void
bench_recovery_after_outage (void)
{
  Server server = { NULL, g_ptr_array_new_with_free_func (g_object_unref), 0 };
  g_autoptr(ExoResourceGroup) group = exo_resource_group_new ("bench-recovery");
  g_autoptr(BenchTcp) tcp = g_object_new (BENCH_TYPE_TCP, "id", "backend", NULL);
  ExoRetryPolicy policy = {
    .max_retries = 0, .initial_delay_ms = INITIAL_DELAY_MS, .max_delay_ms = MAX_DELAY_MS,
    .multiplier = 2.0, .jitter = EXO_JITTER_NONE, .restart_burst = 0, .restart_interval_ms = 0,
  };
  double values[RUNS];
  double lo = G_MAXDOUBLE, hi = 0;
  gboolean done = FALSE;
  char extra[256];

  server_start (&server);
  tcp->port = server.port;
  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (tcp), &policy);
  exo_managed_resource_set_health_check_interval (EXO_MANAGED_RESOURCE (tcp), HEALTH_INTERVAL_MS);
  exo_managed_resource_set_degraded_restart (EXO_MANAGED_RESOURCE (tcp), 0);
  exo_resource_group_set_restart_burst (group, 0);
  g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (tcp), NULL, NULL));
  exo_resource_initialize_async (EXO_RESOURCE (group), NULL, init_done_cb, &done);
  bench_wait_flag (&done);

  for (guint i = 0; i < RUNS; i++)
    {
      gint64 t0;

      server_stop (&server);
      if (!wait_ready (EXO_RESOURCE (tcp), FALSE))
        g_error ("bench: the resource did not notice the outage");
      spin_ms (OUTAGE_MS);
      server_start (&server);
      t0 = bench_now_ns ();
      if (!wait_ready (EXO_RESOURCE (tcp), TRUE))
        g_error ("bench: the resource did not recover within 10 s");
      values[i] = (bench_now_ns () - t0) / 1e6;
      lo = MIN (lo, values[i]);
      hi = MAX (hi, values[i]);
      spin_ms (100);
    }

  g_snprintf (extra, sizeof extra,
              ", \"runs\": %u, \"min\": %.1f, \"max\": %.1f, \"outage_ms\": %u, "
              "\"health_interval_ms\": %u, \"max_delay_ms\": %u, \"restarts\": %u",
              RUNS, lo, hi, OUTAGE_MS, HEALTH_INTERVAL_MS, MAX_DELAY_MS,
              exo_resource_group_get_restarts (group));
  bench_report ("recovery_after_outage_ms", bench_median (values, RUNS), "ms", RUNS, extra);

  done = FALSE;
  exo_resource_cleanup_async (EXO_RESOURCE (group), NULL, cleanup_done_cb, &done);
  bench_wait_flag (&done);
  server_stop (&server);
  g_ptr_array_unref (server.connections);
}

const BenchEntry bench_recovery_entries[] = {
  { "recovery_after_outage_ms", bench_recovery_after_outage },
  { NULL, NULL },
};
