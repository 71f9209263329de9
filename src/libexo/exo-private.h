/* exo-private.h: what library files share but users may not use.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>

G_BEGIN_DECLS

/* Destroys *@source (a source the caller attached and holds a reference
 * to) and clears the pointer; nothing when it is NULL. */
static inline void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

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
void     _exo_resource_get_health_thresholds (ExoResource      *self,
                                              guint            *unhealthy,
                                              guint            *healthy);
gboolean _exo_resource_is_degraded_by_health (ExoResource      *self);
void     _exo_resource_hold_degraded      (ExoResource         *self,
                                           const GError        *error);
gboolean _exo_resource_is_held            (ExoResource         *self);

/* Who is told of @self's transitions without a signal handler (a
 * GClosure, a handler and their tables cost ~250 bytes per resource):
 * ExoManagedResource, as the first of the state-changed handlers; the
 * group @self is a member of, after every handler (its bookkeeping queues
 * events, handled outside the emission).  @member is the group's record,
 * NULL when @self is in no group. */
void     _exo_resource_set_managed_hook   (ExoResource         *self);
gpointer _exo_resource_get_member         (ExoResource         *self);
void     _exo_resource_set_member         (ExoResource         *self,
                                           gpointer             member);
/* The task for a do_* vfunc or an operation: if the implementation lets it
 * go uncompleted, @callback still runs, with an error naming @vfunc. */
GTask   *_exo_resource_vfunc_task_new     (ExoResource         *self,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data,
                                           gpointer             source_tag,
                                           const char          *vfunc);

/* An initialize caller inside the library (a group starting its members)
 * without a GTask: embedded in the caller's own record, it costs no
 * allocation.  @func runs when the flight ends, at the time the callback of
 * exo_resource_initialize_async() would (GTask's rules: at once from a
 * later main-loop iteration of @self's context, else from an idle; the
 * caller is in that context, as it must be); @error is %NULL on success.
 * The fields are the resource's until @func runs. */
typedef struct _ExoInitWaiter ExoInitWaiter;
typedef void (*ExoInitWaiterFunc) (ExoResource   *self,
                                   ExoInitWaiter *waiter,
                                   const GError  *error);
struct _ExoInitWaiter
{
  ExoInitWaiter     *next;
  ExoInitWaiterFunc  func;       /* NULL: a caller with a GTask */
  gint64             created;    /* monotonic µs */
};

/* exo_resource_initialize_async() for such a caller, when @self does not
 * override it (returns %FALSE then: call exo_resource_initialize_async()). */
gboolean _exo_resource_initialize_internal (ExoResource       *self,
                                            ExoInitWaiter     *waiter,
                                            ExoInitWaiterFunc  func);

/* exo-resource-group-run.c, exo-resource-group-supervisor.c */
gboolean _exo_resource_group_has_live_members (ExoResourceGroup *self);
void     _exo_resource_group_member_state_changed (gpointer         member,
                                                   ExoResourceState old_state,
                                                   ExoResourceState new_state);

/* exo-managed-resource-recovery.c */
void     _exo_managed_resource_state_changed (ExoManagedResource *self,
                                              ExoResourceState    old_state,
                                              ExoResourceState    new_state);

/* exo-managed-resource-run.c: the runner, shared with ExoNetworkResource.
 * @observe sees each attempt's error (%NULL on success) before the runner
 * decides on a retry. */
typedef void (*ExoRunObserver) (ExoManagedResource *self,
                                const GError       *error);

void     _exo_managed_resource_run        (ExoManagedResource  *self,
                                           ExoOperationFunc     func,
                                           gpointer             func_data,
                                           GDestroyNotify       func_data_destroy,
                                           ExoRunObserver       observe,
                                           guint                attempt_timeout_ms,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data,
                                           gpointer             source_tag);

/* The result of a runner (or of exo_resource_use_async()) is the completed
 * GTask of the successful attempt, which holds the value with its destroy
 * notify; these take the value out of it. */
gpointer _exo_operation_propagate_pointer (GTask               *task,
                                           GError             **error);
gboolean _exo_operation_propagate_value   (GTask               *task,
                                           GValue              *value,
                                           GError             **error);
