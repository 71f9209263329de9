/* exo-private.h: what library files share but users may not use.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>

G_BEGIN_DECLS

/* exo-registry.c: called by ExoResource when it is made and disposed. */
void _exo_registry_add    (ExoResource *resource);
void _exo_registry_remove (ExoResource *resource);

/* exo-resource.c */
GRand *_exo_resource_get_rand (ExoResource *self);

G_END_DECLS

/* exo-resource.c: for ExoManagedResource and other library types. */
void     _exo_resource_reinitialize_async (ExoResource         *self,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data);
void     _exo_resource_seed_rand          (ExoResource         *self,
                                           guint32              seed);
gboolean _exo_resource_is_busy            (ExoResource         *self);
void     _exo_resource_set_result         (ExoResource         *self,
                                           ExoResourceResult    result);
void     _exo_resource_set_health_thresholds (ExoResource      *self,
                                              guint             unhealthy,
                                              guint             healthy);
gboolean _exo_resource_is_degraded_by_health (ExoResource      *self);
void     _exo_resource_hold_degraded      (ExoResource         *self,
                                           const GError        *error);
gboolean _exo_resource_is_held            (ExoResource         *self);

/* exo-managed-resource.c: the runner, shared with ExoNetworkResource. */
void _exo_managed_resource_run (ExoManagedResource  *self,
                                ExoOperationFunc     func,
                                gpointer             func_data,
                                GDestroyNotify       result_destroy,
                                guint                attempt_timeout_ms,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data,
                                gpointer             source_tag);
