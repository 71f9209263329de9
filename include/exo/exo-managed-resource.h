/* exo-managed-resource.h: retries, health checks, recovery, restart limits.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-resource.h>
#include <exo/exo-retry-policy.h>

G_BEGIN_DECLS

#define EXO_TYPE_MANAGED_RESOURCE (exo_managed_resource_get_type ())

EXO_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (ExoManagedResource, exo_managed_resource, EXO, MANAGED_RESOURCE, ExoResource)

/**
 * ExoManagedResourceClass:
 * @is_retryable: whether @error is worth another attempt; the default is
 *   exo_error_is_retryable()
 */
struct _ExoManagedResourceClass
{
  ExoResourceClass parent_class;

  gboolean (*is_retryable) (ExoManagedResource *self,
                            const GError       *error);

  /*< private >*/
  gpointer padding[8];
};

/**
 * ExoOperationFunc:
 * @resource: the resource the operation runs on, usable when called
 * @cancellable: cancelled when the attempt times out or the caller cancels
 * @task: (transfer none): the attempt's task: complete it once, see below
 * @user_data: (closure): the `func_data` given to the runner
 *
 * One attempt of an asynchronous operation, run by
 * exo_managed_resource_run_async(), exo_network_resource_run_async() or
 * exo_resource_use_async().  The runner waits for @task to complete before it
 * decides on a retry: nothing is left unawaited.
 *
 * Complete @task with one of:
 *
 * - g_task_return_pointer (task, value, value_destroy): the runner's
 *   `_finish()` function hands `value` to its caller; if nobody calls it (or
 *   the attempt's result is not the one used), `value_destroy` frees it;
 * - g_task_return_value (task, value): for bindings; the caller takes it with
 *   the `_finish_value()` function (`run_finish` in bindings);
 * - g_task_return_error (task, error): the attempt failed.
 *
 * The runners take `(func, func_data, func_data_destroy)` in the usual GLib
 * way: @user_data is `func_data`, and `func_data_destroy` frees it once the
 * operation is over (after the callback ran), whether @func ran or not.
 *
 * @task is borrowed: the runner drops its reference when the function
 * returns.  To complete it later, keep a reference (`g_object_ref (task)`)
 * and drop it after returning the result.
 */
typedef void (*ExoOperationFunc) (ExoResource  *resource,
                                  GCancellable *cancellable,
                                  GTask        *task,
                                  gpointer      user_data);

EXO_AVAILABLE_IN_ALL
ExoRetryPolicy *exo_managed_resource_get_retry_policy   (ExoManagedResource   *self);
EXO_AVAILABLE_IN_ALL
void            exo_managed_resource_set_retry_policy   (ExoManagedResource   *self,
                                                         const ExoRetryPolicy *policy);
EXO_AVAILABLE_IN_ALL
guint           exo_managed_resource_get_health_check_interval (ExoManagedResource *self);
EXO_AVAILABLE_IN_ALL
void            exo_managed_resource_set_health_check_interval (ExoManagedResource *self,
                                                                guint               interval_ms);
EXO_AVAILABLE_IN_ALL
gboolean        exo_managed_resource_get_auto_recover   (ExoManagedResource   *self);
EXO_AVAILABLE_IN_ALL
void            exo_managed_resource_set_auto_recover   (ExoManagedResource   *self,
                                                         gboolean              auto_recover);
EXO_AVAILABLE_IN_ALL
guint           exo_managed_resource_get_restarts       (ExoManagedResource   *self);
EXO_AVAILABLE_IN_ALL
gboolean        exo_managed_resource_is_recovery_pending (ExoManagedResource  *self);
EXO_AVAILABLE_IN_ALL
void            exo_managed_resource_set_health_thresholds (ExoManagedResource *self,
                                                            guint               unhealthy_threshold,
                                                            guint               healthy_threshold);
EXO_AVAILABLE_IN_ALL
guint           exo_managed_resource_get_degraded_restart (ExoManagedResource *self);
EXO_AVAILABLE_IN_ALL
void            exo_managed_resource_set_degraded_restart (ExoManagedResource *self,
                                                           guint               ms);
EXO_AVAILABLE_IN_ALL
guint           exo_managed_resource_get_backoff_reset (ExoManagedResource *self);
EXO_AVAILABLE_IN_ALL
void            exo_managed_resource_set_backoff_reset (ExoManagedResource *self,
                                                        guint               ms);
EXO_AVAILABLE_IN_ALL
void            exo_managed_resource_seed_jitter        (ExoManagedResource   *self,
                                                         guint32               seed);

EXO_AVAILABLE_IN_ALL
void            exo_managed_resource_run_async          (ExoManagedResource   *self,
                                                         ExoOperationFunc      func,
                                                         gpointer              func_data,
                                                         GDestroyNotify        func_data_destroy,
                                                         guint                 attempt_timeout_ms,
                                                         GCancellable         *cancellable,
                                                         GAsyncReadyCallback   callback,
                                                         gpointer              user_data);
EXO_AVAILABLE_IN_ALL
gpointer        exo_managed_resource_run_finish         (ExoManagedResource   *self,
                                                         GAsyncResult         *result,
                                                         GError              **error);
EXO_AVAILABLE_IN_ALL
gboolean        exo_managed_resource_run_finish_value   (ExoManagedResource   *self,
                                                         GAsyncResult         *result,
                                                         GValue               *value,
                                                         GError              **error);

G_END_DECLS
