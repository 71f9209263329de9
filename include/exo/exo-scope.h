/* exo-scope.h: scoped use of resources and timeouts built on GCancellable.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-resource.h>
#include <exo/exo-managed-resource.h>

G_BEGIN_DECLS

EXO_AVAILABLE_IN_ALL
GCancellable *exo_cancellable_new_with_timeout (guint          timeout_ms,
                                                GCancellable  *parent);
EXO_AVAILABLE_IN_ALL
gboolean      exo_cancellable_timed_out        (GCancellable  *cancellable);

EXO_AVAILABLE_IN_ALL
void          exo_resource_use_async           (ExoResource         *resource,
                                                ExoOperationFunc     func,
                                                gpointer             func_data,
                                                GDestroyNotify       func_data_destroy,
                                                guint                timeout_ms,
                                                GCancellable        *cancellable,
                                                GAsyncReadyCallback  callback,
                                                gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gpointer      exo_resource_use_finish          (ExoResource         *resource,
                                                GAsyncResult        *result,
                                                GError             **error);
EXO_AVAILABLE_IN_ALL
gboolean      exo_resource_use_finish_value    (ExoResource         *resource,
                                                GAsyncResult        *result,
                                                GValue              *value,
                                                GError             **error);

EXO_AVAILABLE_IN_ALL
gboolean      exo_wait_for_result              (GMainContext        *context,
                                                GAsyncResult       **result,
                                                guint                timeout_ms);

G_END_DECLS
