/* exo-network-resource.c: a managed resource that is a connection.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: ExoNetworkResource — initialize as do_connect and cleanup as
 * do_disconnect (through vfunc tasks), the address and its parsing, the
 * connection counters and times (and their metrics), reporting a lost
 * connection, and run_async (the managed runner with an observer that
 * marks the connection lost on a connection error);
 * exo_error_is_connection_error().
 *
 * Rules: everything runs in the resource's main context, with no lock: the
 * counters and the address are plain fields written by the vfunc task
 * callbacks, the runner's observer and the setters, all there.  Unlike
 * exo_resource_report_error(), report_connection_lost() is not for other
 * threads (it counts and reads the state first).  The function
 * exo_error_is_connection_error() is pure: any thread.  Re-entrancy is the
 * managed resource's: a subclass's do_connect may complete its task at
 * once, and the runner's callbacks may call anything of the resource.
 */
#include "exo-private.h"

/**
 * ExoNetworkResource:
 *
 * A managed resource that is a connection to #ExoNetworkResource:address.
 * Subclasses implement #ExoNetworkResourceClass.do_connect and
 * #ExoNetworkResourceClass.do_disconnect; initialize connects, cleanup
 * disconnects.  It counts connection attempts, successes and failures and
 * the times of the last connection and the last successful operation (all
 * in exo_resource_get_metrics()).
 *
 * When a connection drops (exo_network_resource_report_connection_lost(), or
 * an operation run with exo_network_resource_run_async() fails with a
 * connection error) the resource enters `error`, and the next attempt of the
 * runner — or the managed recovery — reconnects.
 */

typedef struct
{
  char    *address;
  guint64  connect_attempts;
  guint64  connect_successes;
  guint64  connect_failures;
  guint64  operations;
  guint64  operation_failures;
  guint64  reconnects;
  gint64   last_connected;
  gint64   last_success;
} ExoNetworkResourcePrivate;

enum {
  PROP_0,
  PROP_ADDRESS,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (ExoNetworkResource, exo_network_resource, EXO_TYPE_MANAGED_RESOURCE)

#define PRIV(self) ((ExoNetworkResourcePrivate *) exo_network_resource_get_instance_private (EXO_NETWORK_RESOURCE (self)))

/**
 * exo_error_is_connection_error:
 * @error: an error
 *
 * Returns: %TRUE when @error means the peer cannot be reached or the
 *   connection broke, so that reconnecting may help
 */
gboolean
exo_error_is_connection_error (const GError *error)
{
  if (error == NULL || error->domain != G_IO_ERROR)
    return FALSE;

  switch (error->code)
    {
    case G_IO_ERROR_CONNECTION_REFUSED:
    case G_IO_ERROR_CONNECTION_CLOSED:
    case G_IO_ERROR_NOT_CONNECTED:
    case G_IO_ERROR_HOST_UNREACHABLE:
    case G_IO_ERROR_NETWORK_UNREACHABLE:
    case G_IO_ERROR_HOST_NOT_FOUND:
    case G_IO_ERROR_TIMED_OUT:
      return TRUE;
    default:
      return FALSE;
    }
}

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExoNetworkResourcePrivate *priv = PRIV (source);
  GError *error = NULL;

  if (g_task_propagate_boolean (G_TASK (result), &error))
    {
      priv->connect_successes++;
      priv->last_connected = g_get_real_time ();
      g_task_return_boolean (task, TRUE);
    }
  else
    {
      priv->connect_failures++;
      g_task_return_error (task, error);
    }
}

static void
exo_network_resource_do_initialize (ExoResource *resource,
                                    GTask       *task)
{
  ExoNetworkResource *self = EXO_NETWORK_RESOURCE (resource);
  ExoNetworkResourceClass *klass = EXO_NETWORK_RESOURCE_GET_CLASS (self);
  ExoNetworkResourcePrivate *priv = PRIV (self);
  GTask *inner;

  priv->connect_attempts++;

  if (klass->do_connect == NULL)
    {
      priv->connect_failures++;
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               "%s does not implement do_connect", G_OBJECT_TYPE_NAME (self));
      return;
    }

  inner = _exo_resource_vfunc_task_new (resource, g_task_get_cancellable (task), connect_cb,
                                        g_object_ref (task), exo_network_resource_do_initialize,
                                        "do_connect");
  klass->do_connect (self, inner);
  g_object_unref (inner);
}

static void
disconnect_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (g_task_propagate_boolean (G_TASK (result), &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
exo_network_resource_do_cleanup (ExoResource *resource,
                                 GTask       *task)
{
  ExoNetworkResource *self = EXO_NETWORK_RESOURCE (resource);
  ExoNetworkResourceClass *klass = EXO_NETWORK_RESOURCE_GET_CLASS (self);
  GTask *inner;

  if (klass->do_disconnect == NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  inner = _exo_resource_vfunc_task_new (resource, NULL, disconnect_cb, g_object_ref (task),
                                        exo_network_resource_do_cleanup, "do_disconnect");
  klass->do_disconnect (self, inner);
  g_object_unref (inner);
}

static gboolean
exo_network_resource_real_is_connection_error (ExoNetworkResource *self,
                                               const GError       *error)
{
  return exo_error_is_connection_error (error);
}

static void
exo_network_resource_collect_metrics (ExoResource  *resource,
                                      GVariantDict *metrics)
{
  ExoNetworkResourcePrivate *priv = PRIV (resource);

  EXO_RESOURCE_CLASS (exo_network_resource_parent_class)->collect_metrics (resource, metrics);

  g_variant_dict_insert (metrics, "address", "s", priv->address ? priv->address : "");
  g_variant_dict_insert (metrics, "connect-attempts", "t", priv->connect_attempts);
  g_variant_dict_insert (metrics, "connect-successes", "t", priv->connect_successes);
  g_variant_dict_insert (metrics, "connect-failures", "t", priv->connect_failures);
  g_variant_dict_insert (metrics, "reconnects", "t", priv->reconnects);
  g_variant_dict_insert (metrics, "operations", "t", priv->operations);
  g_variant_dict_insert (metrics, "operation-failures", "t", priv->operation_failures);
  g_variant_dict_insert (metrics, "last-connected", "x", priv->last_connected);
  g_variant_dict_insert (metrics, "last-success", "x", priv->last_success);
}

/* What the keys above are in /metrics (docs/metrics.md). */
static const ExoMetricEntry network_metric_entries[] = {
  { .key = "address", .kind = EXO_METRIC_INFO, .name = "exo_network_info",
    .help = "The address each network resource connects to (value 1)." },
  { .key = "connect-attempts", .kind = EXO_METRIC_COUNTER, .name = "exo_network_connect_attempts_total",
    .help = "Connection attempts." },
  { .key = "connect-successes", .kind = EXO_METRIC_COUNTER, .name = "exo_network_connect_successes_total",
    .help = "Connection attempts that succeeded." },
  { .key = "connect-failures", .kind = EXO_METRIC_COUNTER, .name = "exo_network_connect_failures_total",
    .help = "Connection attempts that failed; `exoctl status ID` shows the last error." },
  { .key = "reconnects", .kind = EXO_METRIC_COUNTER, .name = "exo_network_reconnects_total",
    .help = "Connections lost while in use." },
  { .key = "operations", .kind = EXO_METRIC_COUNTER, .name = "exo_network_operations_total",
    .help = "Operations run on the connection." },
  { .key = "operation-failures", .kind = EXO_METRIC_COUNTER, .name = "exo_network_operation_failures_total",
    .help = "Operations that failed." },
  { .key = "last-connected", .kind = EXO_METRIC_GAUGE, .name = "exo_network_last_connected_timestamp_seconds",
    .scale = 1e-6, .help = "When the last connection was made (Unix time; 0: never)." },
  { .key = "last-success", .kind = EXO_METRIC_GAUGE, .name = "exo_network_last_success_timestamp_seconds",
    .scale = 1e-6, .help = "When an operation last succeeded (Unix time; 0: never)." },
};

/**
 * exo_network_resource_report_connection_lost:
 * @self: a network resource
 * @error: what happened
 *
 * Says the connection is gone: @self enters `error`; the next operation, or
 * the managed recovery, reconnects.
 */
void
exo_network_resource_report_connection_lost (ExoNetworkResource *self,
                                             const GError       *error)
{
  g_return_if_fail (EXO_IS_NETWORK_RESOURCE (self));
  g_return_if_fail (error != NULL);

  if (exo_resource_is_usable (EXO_RESOURCE (self)))
    PRIV (self)->reconnects++;
  exo_resource_report_error (EXO_RESOURCE (self), error);
}

/* --- runner ------------------------------------------------------------ */

/* Sees each attempt's outcome before the managed runner decides on a retry:
 * a connection error marks the connection lost, so the next attempt
 * reconnects first. */
static void
net_run_observe (ExoManagedResource *resource,
                 const GError       *error)
{
  ExoNetworkResource *self = EXO_NETWORK_RESOURCE (resource);
  ExoNetworkResourcePrivate *priv = PRIV (self);

  priv->operations++;
  if (error == NULL)
    {
      priv->last_success = g_get_real_time ();
      return;
    }

  priv->operation_failures++;
  if (EXO_NETWORK_RESOURCE_GET_CLASS (self)->is_connection_error (self, error))
    exo_network_resource_report_connection_lost (self, error);
}

/**
 * exo_network_resource_run_async:
 * @self: a network resource
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy): one
 *   attempt of the operation
 * @func_data: (closure): data for @func
 * @func_data_destroy: (nullable): frees @func_data once the operation is over
 * @attempt_timeout_ms: time limit of each attempt, 0 = none
 * @cancellable: (nullable): cancels the whole operation
 * @callback: (scope async) (closure user_data): called with the result
 * @user_data: (closure): data for @callback
 *
 * Like exo_managed_resource_run_async() (same contract for @func, its
 * results and @func_data_destroy), but an attempt that fails with a
 * connection error (see #ExoNetworkResourceClass.is_connection_error) marks
 * the connection lost, and the next attempt reconnects first.
 */
void
exo_network_resource_run_async (ExoNetworkResource  *self,
                                ExoOperationFunc     func,
                                gpointer             func_data,
                                GDestroyNotify       func_data_destroy,
                                guint                attempt_timeout_ms,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_return_if_fail (EXO_IS_NETWORK_RESOURCE (self));
  g_return_if_fail (func != NULL);

  _exo_managed_resource_run (EXO_MANAGED_RESOURCE (self), func, func_data, func_data_destroy,
                             net_run_observe, attempt_timeout_ms, cancellable, callback,
                             user_data, exo_network_resource_run_async);
}

/**
 * exo_network_resource_run_finish:
 * @self: a network resource
 * @result: the result given to the callback
 * @error: return location for the last attempt's error
 *
 * For operations that complete with g_task_return_pointer().  Bindings use
 * exo_network_resource_run_finish_value().
 *
 * Returns: (transfer full) (nullable): the pointer the successful attempt
 *   returned; free it the way the operation's destroy notify would
 */
gpointer
exo_network_resource_run_finish (ExoNetworkResource  *self,
                                 GAsyncResult        *result,
                                 GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return _exo_operation_propagate_pointer (G_TASK (result), error);
}

/**
 * exo_network_resource_run_finish_value: (rename-to exo_network_resource_run_finish)
 * @self: a network resource
 * @result: the result given to the callback
 * @value: (out caller-allocates): where to store the value of the successful
 *   attempt; unset it with g_value_unset()
 * @error: return location for the last attempt's error
 *
 * For operations that complete with g_task_return_value(), as bindings do.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
gboolean
exo_network_resource_run_finish_value (ExoNetworkResource  *self,
                                       GAsyncResult        *result,
                                       GValue              *value,
                                       GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (value != NULL, FALSE);

  return _exo_operation_propagate_value (G_TASK (result), value, error);
}

/* --- accessors --------------------------------------------------------- */

const char *
exo_network_resource_get_address (ExoNetworkResource *self)
{
  g_return_val_if_fail (EXO_IS_NETWORK_RESOURCE (self), NULL);
  return PRIV (self)->address;
}

/**
 * exo_network_resource_set_address:
 * @self: a network resource
 * @address: (nullable): `host:port`, `[v6]:port` or a host name
 *
 * The new address is used at the next connect.
 */
void
exo_network_resource_set_address (ExoNetworkResource *self,
                                  const char         *address)
{
  ExoNetworkResourcePrivate *priv;

  g_return_if_fail (EXO_IS_NETWORK_RESOURCE (self));
  priv = PRIV (self);

  if (g_strcmp0 (priv->address, address) == 0)
    return;
  g_free (priv->address);
  priv->address = g_strdup (address);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ADDRESS]);
}

/**
 * exo_network_resource_get_connectable:
 * @self: a network resource
 * @default_port: the port when the address names none
 * @error: return location for a parse error
 *
 * Returns: (transfer full): the address as a #GSocketConnectable
 */
GSocketConnectable *
exo_network_resource_get_connectable (ExoNetworkResource  *self,
                                      guint16              default_port,
                                      GError             **error)
{
  ExoNetworkResourcePrivate *priv;

  g_return_val_if_fail (EXO_IS_NETWORK_RESOURCE (self), NULL);
  priv = PRIV (self);

  if (priv->address == NULL || priv->address[0] == '\0')
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "resource '%s' has no address", exo_resource_get_id (EXO_RESOURCE (self)));
      return NULL;
    }
  return g_network_address_parse (priv->address, default_port, error);
}

guint64
exo_network_resource_get_connect_attempts (ExoNetworkResource *self)
{
  g_return_val_if_fail (EXO_IS_NETWORK_RESOURCE (self), 0);
  return PRIV (self)->connect_attempts;
}

guint64
exo_network_resource_get_connect_successes (ExoNetworkResource *self)
{
  g_return_val_if_fail (EXO_IS_NETWORK_RESOURCE (self), 0);
  return PRIV (self)->connect_successes;
}

guint64
exo_network_resource_get_connect_failures (ExoNetworkResource *self)
{
  g_return_val_if_fail (EXO_IS_NETWORK_RESOURCE (self), 0);
  return PRIV (self)->connect_failures;
}

/**
 * exo_network_resource_get_last_connected:
 * @self: a network resource
 *
 * Returns: when the last connect succeeded, µs since the Unix epoch, 0 = never
 */
gint64
exo_network_resource_get_last_connected (ExoNetworkResource *self)
{
  g_return_val_if_fail (EXO_IS_NETWORK_RESOURCE (self), 0);
  return PRIV (self)->last_connected;
}

/**
 * exo_network_resource_get_last_success:
 * @self: a network resource
 *
 * Returns: when the last operation succeeded, µs since the Unix epoch, 0 = never
 */
gint64
exo_network_resource_get_last_success (ExoNetworkResource *self)
{
  g_return_val_if_fail (EXO_IS_NETWORK_RESOURCE (self), 0);
  return PRIV (self)->last_success;
}

/* --- GObject ----------------------------------------------------------- */

static void
exo_network_resource_finalize (GObject *object)
{
  g_clear_pointer (&PRIV (object)->address, g_free);

  G_OBJECT_CLASS (exo_network_resource_parent_class)->finalize (object);
}

static void
exo_network_resource_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  switch (prop_id)
    {
    case PROP_ADDRESS:
      g_value_set_string (value, PRIV (object)->address);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_network_resource_set_property (GObject      *object,
                                   guint         prop_id,
                                   const GValue *value,
                                   GParamSpec   *pspec)
{
  switch (prop_id)
    {
    case PROP_ADDRESS:
      exo_network_resource_set_address (EXO_NETWORK_RESOURCE (object), g_value_get_string (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_network_resource_class_init (ExoNetworkResourceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->finalize = exo_network_resource_finalize;
  object_class->get_property = exo_network_resource_get_property;
  object_class->set_property = exo_network_resource_set_property;

  resource_class->do_initialize = exo_network_resource_do_initialize;
  resource_class->do_cleanup = exo_network_resource_do_cleanup;
  resource_class->collect_metrics = exo_network_resource_collect_metrics;
  exo_resource_class_add_metric_entries (resource_class, network_metric_entries,
                                         G_N_ELEMENTS (network_metric_entries));

  klass->is_connection_error = exo_network_resource_real_is_connection_error;

  /**
   * ExoNetworkResource:address:
   *
   * Where to connect: `host:port`, `[v6]:port`, or what the subclass understands.
   */
  properties[PROP_ADDRESS] =
    g_param_spec_string ("address", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
exo_network_resource_init (ExoNetworkResource *self)
{
}
