/* exo-async-resource.h: the lifecycle contract of an asynchronous resource.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-types.h>

G_BEGIN_DECLS

#define EXO_TYPE_ASYNC_RESOURCE (exo_async_resource_get_type ())

EXO_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (ExoAsyncResource, exo_async_resource, EXO, ASYNC_RESOURCE, GObject)

/**
 * ExoAsyncResourceInterface:
 * @initialize_async: start initializing; single-flight
 * @initialize_finish: finish @initialize_async
 * @cleanup_async: release everything; always ends in `closed`
 * @cleanup_finish: finish @cleanup_async
 * @check_health_async: run a health check
 * @check_health_finish: %TRUE when healthy; otherwise %FALSE and the reason
 * @state_changed: class closure of #ExoAsyncResource::state-changed
 *
 * Implementations have the properties `id`, `resource-type`, `display-name`
 * and `state` (read-only) and emit #ExoAsyncResource::state-changed on every
 * transition.  #ExoResource implements all of this once; implement the
 * interface directly only when you cannot derive from it.
 */
struct _ExoAsyncResourceInterface
{
  GTypeInterface parent_iface;

  void     (*initialize_async)    (ExoAsyncResource    *self,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data);
  gboolean (*initialize_finish)   (ExoAsyncResource    *self,
                                   GAsyncResult        *result,
                                   GError             **error);
  void     (*cleanup_async)       (ExoAsyncResource    *self,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data);
  gboolean (*cleanup_finish)      (ExoAsyncResource    *self,
                                   GAsyncResult        *result,
                                   GError             **error);
  void     (*check_health_async)  (ExoAsyncResource    *self,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data);
  gboolean (*check_health_finish) (ExoAsyncResource    *self,
                                   GAsyncResult        *result,
                                   GError             **error);

  /* signals */
  void     (*state_changed)       (ExoAsyncResource    *self,
                                   ExoResourceState     old_state,
                                   ExoResourceState     new_state);
};

EXO_AVAILABLE_IN_ALL
const char       *exo_async_resource_get_id            (ExoAsyncResource    *self);
EXO_AVAILABLE_IN_ALL
ExoResourceState  exo_async_resource_get_state         (ExoAsyncResource    *self);

EXO_AVAILABLE_IN_ALL
void              exo_async_resource_initialize_async  (ExoAsyncResource    *self,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gboolean          exo_async_resource_initialize_finish (ExoAsyncResource    *self,
                                                        GAsyncResult        *result,
                                                        GError             **error);
EXO_AVAILABLE_IN_ALL
void              exo_async_resource_cleanup_async     (ExoAsyncResource    *self,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gboolean          exo_async_resource_cleanup_finish    (ExoAsyncResource    *self,
                                                        GAsyncResult        *result,
                                                        GError             **error);
EXO_AVAILABLE_IN_ALL
void              exo_async_resource_check_health_async  (ExoAsyncResource    *self,
                                                          GCancellable        *cancellable,
                                                          GAsyncReadyCallback  callback,
                                                          gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gboolean          exo_async_resource_check_health_finish (ExoAsyncResource    *self,
                                                          GAsyncResult        *result,
                                                          GError             **error);
EXO_AVAILABLE_IN_ALL
void              exo_async_resource_ensure_ready_async  (ExoAsyncResource    *self,
                                                          GCancellable        *cancellable,
                                                          GAsyncReadyCallback  callback,
                                                          gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gboolean          exo_async_resource_ensure_ready_finish (ExoAsyncResource    *self,
                                                          GAsyncResult        *result,
                                                          GError             **error);

G_END_DECLS
