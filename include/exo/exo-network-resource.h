/* exo-network-resource.h: a managed resource that is a connection to an address.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-managed-resource.h>

G_BEGIN_DECLS

#define EXO_TYPE_NETWORK_RESOURCE (exo_network_resource_get_type ())

EXO_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (ExoNetworkResource, exo_network_resource, EXO, NETWORK_RESOURCE, ExoManagedResource)

/**
 * ExoNetworkResourceClass:
 * @do_connect: connect to exo_network_resource_get_address(); complete @task
 *   like #ExoResourceClass.do_initialize (transfer none: take a reference to
 *   complete it after returning; complete it exactly once)
 * @do_disconnect: drop the connection (also a half-made one); complete @task
 *   like #ExoResourceClass.do_cleanup (same ownership rules)
 * @is_connection_error: whether @error means the connection is gone and a
 *   reconnect may help; default exo_error_is_connection_error()
 */
struct _ExoNetworkResourceClass
{
  ExoManagedResourceClass parent_class;

  /**
   * ExoNetworkResourceClass::do_connect:
   * @self: the resource
   * @task: (transfer none): the task to complete with the result
   *
   * Connects to exo_network_resource_get_address().  Complete @task
   * exactly once, with g_task_return_boolean() or g_task_return_error(),
   * before returning or later; honour g_task_get_cancellable().
   *
   * @task is borrowed: the caller drops its reference when this returns.
   * To complete it later, keep a reference (`g_object_ref (task)`) and drop
   * it after returning the result.
   */
  void     (*do_connect)          (ExoNetworkResource *self,
                                   GTask              *task);
  /**
   * ExoNetworkResourceClass::do_disconnect:
   * @self: the resource
   * @task: (transfer none): the task to complete with the result
   *
   * Drops the connection, also a half-made one.  Complete @task exactly
   * once, before returning or later.
   *
   * @task is borrowed: the caller drops its reference when this returns.
   * To complete it later, keep a reference (`g_object_ref (task)`) and drop
   * it after returning the result.
   */
  void     (*do_disconnect)       (ExoNetworkResource *self,
                                   GTask              *task);
  gboolean (*is_connection_error) (ExoNetworkResource *self,
                                   const GError       *error);

  /*< private >*/
  gpointer padding[8];
};

EXO_AVAILABLE_IN_ALL
const char *exo_network_resource_get_address        (ExoNetworkResource *self);
EXO_AVAILABLE_IN_ALL
void        exo_network_resource_set_address        (ExoNetworkResource *self,
                                                     const char         *address);
EXO_AVAILABLE_IN_ALL
GSocketConnectable *exo_network_resource_get_connectable (ExoNetworkResource *self,
                                                          guint16             default_port,
                                                          GError            **error);
EXO_AVAILABLE_IN_ALL
guint64     exo_network_resource_get_connect_attempts  (ExoNetworkResource *self);
EXO_AVAILABLE_IN_ALL
guint64     exo_network_resource_get_connect_successes (ExoNetworkResource *self);
EXO_AVAILABLE_IN_ALL
guint64     exo_network_resource_get_connect_failures  (ExoNetworkResource *self);
EXO_AVAILABLE_IN_ALL
gint64      exo_network_resource_get_last_connected    (ExoNetworkResource *self);
EXO_AVAILABLE_IN_ALL
gint64      exo_network_resource_get_last_success      (ExoNetworkResource *self);

EXO_AVAILABLE_IN_ALL
void        exo_network_resource_report_connection_lost (ExoNetworkResource *self,
                                                         const GError       *error);

EXO_AVAILABLE_IN_ALL
void        exo_network_resource_run_async          (ExoNetworkResource  *self,
                                                     ExoOperationFunc     func,
                                                     gpointer             func_data,
                                                     GDestroyNotify       func_data_destroy,
                                                     guint                attempt_timeout_ms,
                                                     GCancellable        *cancellable,
                                                     GAsyncReadyCallback  callback,
                                                     gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gpointer    exo_network_resource_run_finish         (ExoNetworkResource  *self,
                                                     GAsyncResult        *result,
                                                     GError             **error);
EXO_AVAILABLE_IN_ALL
gboolean    exo_network_resource_run_finish_value   (ExoNetworkResource  *self,
                                                     GAsyncResult        *result,
                                                     GValue              *value,
                                                     GError             **error);

EXO_AVAILABLE_IN_ALL
gboolean    exo_error_is_connection_error           (const GError       *error);

G_END_DECLS
