/* tcp-backend.c: the `tcp-backend` plugin, written as a third-party plugin
 * author writes one (only <exo/exo.h>, EXO_PLUGIN_DEFINE, built with
 * hidden symbols), for tests/test-outage.c.
 *
 * - `tcp-backend`: an ExoNetworkResource whose connection is a TCP
 *   connection to `host`:`port`.  Its health check opens a fresh TCP
 *   connection as the probe, so it fails while nothing listens.  It counts
 *   its own failed connects and failed probes (metrics
 *   `backend-connect-failures` and `backend-probe-failures`), each counted
 *   right before the task is completed with the error, so that a reader of
 *   the metrics and of the resource's error count sees both change together.
 *   A cancelled connect or probe is not a failure of the backend: it is not
 *   counted (libexo does not record it either).
 * - `tcp-consumer`: a managed resource that depends on the backend in the
 *   config; it always initializes and its health check always passes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <exo/exo.h>
#include <string.h>

/* GSocketClient's time limit, in seconds, of one connect or probe. */
#define CONNECT_TIMEOUT_S 1

/* --- tcp-backend -------------------------------------------------------- */

#define TCP_TYPE_BACKEND (tcp_backend_get_type ())
G_DECLARE_FINAL_TYPE (TcpBackend, tcp_backend, TCP, BACKEND, ExoNetworkResource)

struct _TcpBackend
{
  ExoNetworkResource  parent_instance;

  char               *host;
  guint               port;
  GSocketConnection  *connection;
  guint               connect_failures;
  guint               probe_failures;
  guint               probes;
};

enum {
  BACKEND_PROP_0,
  BACKEND_PROP_HOST,
  BACKEND_PROP_PORT,
  BACKEND_N_PROPS,
};

static GParamSpec *backend_properties[BACKEND_N_PROPS];

G_DEFINE_FINAL_TYPE (TcpBackend, tcp_backend, EXO_TYPE_NETWORK_RESOURCE)

static void
update_address (TcpBackend *self)
{
  g_autofree char *address = NULL;

  if (self->host != NULL)
    address = g_strdup_printf (strchr (self->host, ':') != NULL ? "[%s]:%u" : "%s:%u",
                               self->host, self->port);
  exo_network_resource_set_address (EXO_NETWORK_RESOURCE (self), address);
}

static GSocketClient *
new_client (void)
{
  GSocketClient *client = g_socket_client_new ();

  g_socket_client_set_timeout (client, CONNECT_TIMEOUT_S);
  return client;
}

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;   /* our reference */
  TcpBackend *self = g_task_get_source_object (task);
  GSocketConnection *connection;
  GError *error = NULL;

  connection = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &error);
  if (connection == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        self->connect_failures++;
      g_task_return_error (task, error);
      return;
    }

  g_clear_object (&self->connection);
  self->connection = connection;
  g_task_return_boolean (task, TRUE);
}

static void
tcp_backend_do_connect (ExoNetworkResource *resource,
                        GTask              *task)
{
  TcpBackend *self = TCP_BACKEND (resource);
  g_autoptr(GSocketClient) client = new_client ();

  if (self->host == NULL || self->host[0] == '\0' || self->port == 0)
    {
      /* No retry can fix a missing setting. */
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                               "tcp-backend '%s' needs a host and a port",
                               exo_resource_get_id (EXO_RESOURCE (self)));
      return;
    }

  /* The task is (transfer none) and completes later: hold it. */
  g_socket_client_connect_to_host_async (client, self->host, (guint16) self->port,
                                         g_task_get_cancellable (task),
                                         connect_cb, g_object_ref (task));
}

static void
tcp_backend_do_disconnect (ExoNetworkResource *resource,
                           GTask              *task)
{
  TcpBackend *self = TCP_BACKEND (resource);

  if (self->connection != NULL)
    {
      /* Closing a TCP socket does not block. */
      g_io_stream_close (G_IO_STREAM (self->connection), NULL, NULL);
      g_clear_object (&self->connection);
    }
  g_task_return_boolean (task, TRUE);
}

static void
probe_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;   /* our reference */
  TcpBackend *self = g_task_get_source_object (task);
  g_autoptr(GSocketConnection) connection = NULL;
  GError *error = NULL;

  connection = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &error);
  if (connection == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        self->probe_failures++;
      g_task_return_error (task, error);
      return;
    }

  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  g_task_return_boolean (task, TRUE);
}

static void
tcp_backend_do_check_health (ExoResource *resource,
                             GTask       *task)
{
  TcpBackend *self = TCP_BACKEND (resource);
  g_autoptr(GSocketClient) client = new_client ();

  self->probes++;
  if (self->host == NULL || self->host[0] == '\0' || self->port == 0)
    {
      self->probe_failures++;
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "tcp-backend '%s' needs a host and a port",
                               exo_resource_get_id (resource));
      return;
    }
  g_socket_client_connect_to_host_async (client, self->host, (guint16) self->port,
                                         g_task_get_cancellable (task),
                                         probe_cb, g_object_ref (task));
}

static void
tcp_backend_collect_metrics (ExoResource  *resource,
                             GVariantDict *metrics)
{
  TcpBackend *self = TCP_BACKEND (resource);

  EXO_RESOURCE_CLASS (tcp_backend_parent_class)->collect_metrics (resource, metrics);
  g_variant_dict_insert (metrics, "backend-connect-failures", "u", self->connect_failures);
  g_variant_dict_insert (metrics, "backend-probe-failures", "u", self->probe_failures);
  g_variant_dict_insert (metrics, "backend-probes", "u", self->probes);
  g_variant_dict_insert (metrics, "backend-connected", "b", self->connection != NULL);
}

static void
tcp_backend_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  TcpBackend *self = TCP_BACKEND (object);

  switch (prop_id)
    {
    case BACKEND_PROP_HOST:
      g_value_set_string (value, self->host);
      break;
    case BACKEND_PROP_PORT:
      g_value_set_uint (value, self->port);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tcp_backend_set_property (GObject      *object,
                          guint         prop_id,
                          const GValue *value,
                          GParamSpec   *pspec)
{
  TcpBackend *self = TCP_BACKEND (object);

  switch (prop_id)
    {
    case BACKEND_PROP_HOST:
      if (g_strcmp0 (self->host, g_value_get_string (value)) == 0)
        return;
      g_free (self->host);
      self->host = g_value_dup_string (value);
      break;
    case BACKEND_PROP_PORT:
      if (self->port == g_value_get_uint (value))
        return;
      self->port = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  update_address (self);
  g_object_notify_by_pspec (object, pspec);
}

static void
tcp_backend_dispose (GObject *object)
{
  TcpBackend *self = TCP_BACKEND (object);

  g_clear_object (&self->connection);
  G_OBJECT_CLASS (tcp_backend_parent_class)->dispose (object);
}

static void
tcp_backend_finalize (GObject *object)
{
  TcpBackend *self = TCP_BACKEND (object);

  g_free (self->host);
  G_OBJECT_CLASS (tcp_backend_parent_class)->finalize (object);
}

static void
tcp_backend_class_init (TcpBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);
  ExoNetworkResourceClass *network_class = EXO_NETWORK_RESOURCE_CLASS (klass);

  object_class->get_property = tcp_backend_get_property;
  object_class->set_property = tcp_backend_set_property;
  object_class->dispose = tcp_backend_dispose;
  object_class->finalize = tcp_backend_finalize;

  resource_class->do_check_health = tcp_backend_do_check_health;
  resource_class->collect_metrics = tcp_backend_collect_metrics;
  exo_resource_class_set_resource_type (resource_class, "tcp-backend");

  network_class->do_connect = tcp_backend_do_connect;
  network_class->do_disconnect = tcp_backend_do_disconnect;

  /**
   * TcpBackend:host:
   *
   * The host name or address the backend listens on.
   */
  backend_properties[BACKEND_PROP_HOST] =
    g_param_spec_string ("host", NULL, "Host of the backend", "127.0.0.1",
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * TcpBackend:port:
   *
   * The TCP port the backend listens on.
   */
  backend_properties[BACKEND_PROP_PORT] =
    g_param_spec_uint ("port", NULL, "TCP port of the backend", 0, 65535, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, BACKEND_N_PROPS, backend_properties);
}

static void
tcp_backend_init (TcpBackend *self)
{
  self->host = g_strdup ("127.0.0.1");
}

/* --- tcp-consumer ------------------------------------------------------- */

#define TCP_TYPE_CONSUMER (tcp_consumer_get_type ())
G_DECLARE_FINAL_TYPE (TcpConsumer, tcp_consumer, TCP, CONSUMER, ExoManagedResource)

struct _TcpConsumer
{
  ExoManagedResource parent_instance;

  guint              checks;
};

G_DEFINE_FINAL_TYPE (TcpConsumer, tcp_consumer, EXO_TYPE_MANAGED_RESOURCE)

static void
tcp_consumer_do_initialize (ExoResource *resource,
                            GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
tcp_consumer_do_cleanup (ExoResource *resource,
                         GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
tcp_consumer_do_check_health (ExoResource *resource,
                              GTask       *task)
{
  TCP_CONSUMER (resource)->checks++;
  g_task_return_boolean (task, TRUE);
}

static void
tcp_consumer_collect_metrics (ExoResource  *resource,
                              GVariantDict *metrics)
{
  EXO_RESOURCE_CLASS (tcp_consumer_parent_class)->collect_metrics (resource, metrics);
  g_variant_dict_insert (metrics, "consumer-checks", "u", TCP_CONSUMER (resource)->checks);
}

static void
tcp_consumer_class_init (TcpConsumerClass *klass)
{
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  resource_class->do_initialize = tcp_consumer_do_initialize;
  resource_class->do_cleanup = tcp_consumer_do_cleanup;
  resource_class->do_check_health = tcp_consumer_do_check_health;
  resource_class->collect_metrics = tcp_consumer_collect_metrics;
  exo_resource_class_set_resource_type (resource_class, "tcp-consumer");
}

static void
tcp_consumer_init (TcpConsumer *self)
{
}

/* --- the plugin --------------------------------------------------------- */

static void
tcp_backend_register (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "tcp-backend", TCP_TYPE_BACKEND);
  exo_plugin_registrar_add_type (registrar, "tcp-consumer", TCP_TYPE_CONSUMER);
}

EXO_PLUGIN_DEFINE ("tcp-backend", "1.0.0",
                   "A TCP backend and a consumer of it, for the outage test",
                   tcp_backend_register)
