/* exo-async-resource.c: the lifecycle interface.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: the ExoAsyncResource interface (its state property and
 * ::state-changed signal, with the hand-written marshallers every
 * transition goes through) and its functions: get_id, get_state,
 * initialize, cleanup, check_health, and ensure_ready built on them.
 *
 * Rules: no lock, no state of its own.  For an ExoResource the functions
 * go straight to exo_resource_*(), whose rules hold: called in the
 * resource's main context, ::state-changed emitted there.  For another
 * implementation they call its vfuncs and properties under the same rule.
 * The one exception is get_id on another implementation, which may run on
 * any thread: it keeps the id in qdata, set with g_object_replace_qdata()
 * so that the first copy stored wins and a pointer returned earlier stays
 * valid; the quark is made under g_once_init_enter().  ensure_ready's
 * GTask calls back in the caller's thread-default main context, never
 * inside the call (GTask defers a return made in the iteration that made
 * the task).
 */
#include "exo-private.h"

/**
 * ExoAsyncResource:
 *
 * The lifecycle contract of an asynchronous resource: states, the
 * #ExoAsyncResource::state-changed signal, and asynchronous initialize,
 * cleanup and health check.  #ExoResource implements it.
 */

G_DEFINE_INTERFACE (ExoAsyncResource, exo_async_resource, G_TYPE_OBJECT)

static guint iface_signal_state_changed;

/* The marshallers of state-changed (VOID:ENUM,ENUM): every transition of
 * every resource goes through them, and the generic one (libffi) cost a
 * quarter of exo-node's cold start with 1,000 resources. */
typedef void (*StateChangedFunc) (gpointer instance,
                                  gint     old_state,
                                  gint     new_state,
                                  gpointer data);

static void
state_changed_marshal (GClosure     *closure,
                       GValue       *return_value,
                       guint         n_param_values,
                       const GValue *param_values,
                       gpointer      invocation_hint,
                       gpointer      marshal_data)
{
  GCClosure *cc = (GCClosure *) closure;
  gpointer data1, data2;
  StateChangedFunc callback;

  g_return_if_fail (n_param_values == 3);

  if (G_CCLOSURE_SWAP_DATA (closure))
    {
      data1 = closure->data;
      data2 = g_value_peek_pointer (param_values + 0);
    }
  else
    {
      data1 = g_value_peek_pointer (param_values + 0);
      data2 = closure->data;
    }
  callback = (StateChangedFunc) (marshal_data ? marshal_data : cc->callback);
  callback (data1, g_value_get_enum (param_values + 1), g_value_get_enum (param_values + 2), data2);
}

static void
state_changed_marshal_v (GClosure *closure,
                         GValue   *return_value,
                         gpointer  instance,
                         va_list   args,
                         gpointer  marshal_data,
                         int       n_params,
                         GType    *param_types)
{
  GCClosure *cc = (GCClosure *) closure;
  gpointer data1, data2;
  StateChangedFunc callback;
  gint old_state, new_state;
  va_list args_copy;

  va_copy (args_copy, args);
  old_state = va_arg (args_copy, gint);
  new_state = va_arg (args_copy, gint);
  va_end (args_copy);

  if (G_CCLOSURE_SWAP_DATA (closure))
    {
      data1 = closure->data;
      data2 = instance;
    }
  else
    {
      data1 = instance;
      data2 = closure->data;
    }
  callback = (StateChangedFunc) (marshal_data ? marshal_data : cc->callback);
  callback (data1, old_state, new_state, data2);
}

static void
exo_async_resource_default_init (ExoAsyncResourceInterface *iface)
{
  /**
   * ExoAsyncResource:id:
   *
   * The resource's id, unique within a node.
   */
  g_object_interface_install_property (iface,
    g_param_spec_string ("id", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));
  /**
   * ExoAsyncResource:resource-type:
   *
   * The type name used in configs, e.g. `"udp-discovery"`.
   */
  g_object_interface_install_property (iface,
    g_param_spec_string ("resource-type", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));
  /**
   * ExoAsyncResource:display-name:
   *
   * A name for people.
   */
  g_object_interface_install_property (iface,
    g_param_spec_string ("display-name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY));
  /**
   * ExoAsyncResource:state:
   *
   * The current state.
   */
  g_object_interface_install_property (iface,
    g_param_spec_enum ("state", NULL, NULL,
                       EXO_TYPE_RESOURCE_STATE, EXO_RESOURCE_STATE_UNINITIALIZED,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY));

  /**
   * ExoAsyncResource::state-changed:
   * @self: the resource
   * @old_state: the state left
   * @new_state: the state entered
   *
   * Emitted after every transition, in the resource's main context.
   */
  iface_signal_state_changed =
    g_signal_new ("state-changed",
                  G_TYPE_FROM_INTERFACE (iface),
                  G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (ExoAsyncResourceInterface, state_changed),
                  NULL, NULL, state_changed_marshal,
                  G_TYPE_NONE, 2, EXO_TYPE_RESOURCE_STATE, EXO_TYPE_RESOURCE_STATE);
  g_signal_set_va_marshaller (iface_signal_state_changed, G_TYPE_FROM_INTERFACE (iface),
                              state_changed_marshal_v);
}

/* Made once, safely from any thread (G_DEFINE_QUARK's lazy static is not
 * synchronised). */
static GQuark
async_resource_id_quark (void)
{
  static gsize quark = 0;

  if (g_once_init_enter (&quark))
    g_once_init_leave (&quark, g_quark_from_static_string ("exo-async-resource-id"));
  return (GQuark) quark;
}

/**
 * exo_async_resource_get_id:
 * @self: a resource
 *
 * Returns: (transfer none) (nullable): the resource's id, valid as long as
 *   @self lives
 */
const char *
exo_async_resource_get_id (ExoAsyncResource *self)
{
  g_return_val_if_fail (EXO_IS_ASYNC_RESOURCE (self), NULL);

  if (EXO_IS_RESOURCE (self))
    return exo_resource_get_id (EXO_RESOURCE (self));

  /* Other implementations: the id lives in qdata so that we can return it
   * without transferring ownership.  "id" is construct-only, so the first
   * copy stored stays for the object's life: a pointer returned earlier
   * stays valid, also when several threads ask at once. */
  {
    GQuark q = async_resource_id_quark ();
    const char *id = g_object_get_qdata (G_OBJECT (self), q);
    char *copy = NULL;

    if (id != NULL)
      return id;

    g_object_get (self, "id", &copy, NULL);
    if (copy == NULL)
      return NULL;
    if (g_object_replace_qdata (G_OBJECT (self), q, NULL, copy, g_free, NULL))
      return copy;

    /* Another thread stored it first: use that one. */
    g_free (copy);
    return g_object_get_qdata (G_OBJECT (self), q);
  }
}

ExoResourceState
exo_async_resource_get_state (ExoAsyncResource *self)
{
  ExoResourceState state = EXO_RESOURCE_STATE_UNINITIALIZED;

  g_return_val_if_fail (EXO_IS_ASYNC_RESOURCE (self), state);

  if (EXO_IS_RESOURCE (self))
    return exo_resource_get_state (EXO_RESOURCE (self));

  g_object_get (self, "state", &state, NULL);
  return state;
}

/**
 * exo_async_resource_initialize_async:
 * @self: a resource
 * @cancellable: (nullable): a cancellable
 * @callback: called when the attempt (shared by concurrent callers) ends
 * @user_data: data for @callback
 *
 * Initializes @self.  Concurrent callers share one attempt and all receive
 * its result.
 */
void
exo_async_resource_initialize_async (ExoAsyncResource    *self,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_return_if_fail (EXO_IS_ASYNC_RESOURCE (self));
  EXO_ASYNC_RESOURCE_GET_IFACE (self)->initialize_async (self, cancellable, callback, user_data);
}

gboolean
exo_async_resource_initialize_finish (ExoAsyncResource  *self,
                                      GAsyncResult      *result,
                                      GError           **error)
{
  g_return_val_if_fail (EXO_IS_ASYNC_RESOURCE (self), FALSE);
  return EXO_ASYNC_RESOURCE_GET_IFACE (self)->initialize_finish (self, result, error);
}

void
exo_async_resource_cleanup_async (ExoAsyncResource    *self,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_return_if_fail (EXO_IS_ASYNC_RESOURCE (self));
  EXO_ASYNC_RESOURCE_GET_IFACE (self)->cleanup_async (self, cancellable, callback, user_data);
}

gboolean
exo_async_resource_cleanup_finish (ExoAsyncResource  *self,
                                   GAsyncResult      *result,
                                   GError           **error)
{
  g_return_val_if_fail (EXO_IS_ASYNC_RESOURCE (self), FALSE);
  return EXO_ASYNC_RESOURCE_GET_IFACE (self)->cleanup_finish (self, result, error);
}

void
exo_async_resource_check_health_async (ExoAsyncResource    *self,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  g_return_if_fail (EXO_IS_ASYNC_RESOURCE (self));
  EXO_ASYNC_RESOURCE_GET_IFACE (self)->check_health_async (self, cancellable, callback, user_data);
}

gboolean
exo_async_resource_check_health_finish (ExoAsyncResource  *self,
                                        GAsyncResult      *result,
                                        GError           **error)
{
  g_return_val_if_fail (EXO_IS_ASYNC_RESOURCE (self), FALSE);
  return EXO_ASYNC_RESOURCE_GET_IFACE (self)->check_health_finish (self, result, error);
}

static void
ensure_ready_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (exo_async_resource_initialize_finish (EXO_ASYNC_RESOURCE (source), result, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/**
 * exo_async_resource_ensure_ready_async:
 * @self: a resource
 * @cancellable: (nullable): a cancellable
 * @callback: called when @self is usable or cannot be made so
 * @user_data: data for @callback
 *
 * Completes at once when @self is `ready` or `degraded`; fails at once with
 * %EXO_RESOURCE_ERROR_CLOSED when it is `closing` or `closed`; otherwise
 * initializes it (joining an attempt already running).
 */
void
exo_async_resource_ensure_ready_async (ExoAsyncResource    *self,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  ExoResourceState state;

  g_return_if_fail (EXO_IS_ASYNC_RESOURCE (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, exo_async_resource_ensure_ready_async);

  state = exo_async_resource_get_state (self);
  if (exo_resource_state_is_usable (state))
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (state == EXO_RESOURCE_STATE_CLOSING || state == EXO_RESOURCE_STATE_CLOSED)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED,
                               "resource '%s' is %s",
                               exo_async_resource_get_id (self),
                               exo_resource_state_to_string (state));
      return;
    }

  exo_async_resource_initialize_async (self, cancellable, ensure_ready_cb, g_steal_pointer (&task));
}

gboolean
exo_async_resource_ensure_ready_finish (ExoAsyncResource  *self,
                                        GAsyncResult      *result,
                                        GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
