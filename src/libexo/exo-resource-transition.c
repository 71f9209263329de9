/* exo-resource-transition.c: ExoResource's state machine.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * This file owns the transition table, exo_resource_transition() and the
 * emission of state-changed (notify::state first, the ExoManagedResource
 * hook, the handlers, then the group's bookkeeping hook), the queue of
 * transitions made by handlers during an emission, and the recording of
 * errors (last-error, error-count, attempts notifications).
 *
 * Rules: it runs in the resource's main context, with no lock.  This is the
 * hot path (every transition of every resource): exo_resource_transition()
 * and emit_transition() stay here, in one file, with what they inline; do
 * not add allocations or notifies nobody listens to.  The handlers may
 * re-enter (a handler that changes the state again): the state changes at
 * once, its emission is queued in extra->pending_emissions and emitted, in
 * order, after the current one has reached every handler, so that no
 * emission is ever nested in another.  The two hooks only do bookkeeping:
 * they call nothing out from inside the emission.
 */
#include "exo-resource-private.h"

/* The transition table: legal[from] is the set of states reachable from it. */
#define S(x) (1u << EXO_RESOURCE_STATE_##x)
static const guint legal_transitions[EXO_RESOURCE_STATE_LAST] = {
  [EXO_RESOURCE_STATE_UNINITIALIZED] = S (INITIALIZING) | S (CLOSING),
  [EXO_RESOURCE_STATE_INITIALIZING]  = S (READY) | S (ERROR) | S (CLOSING),
  [EXO_RESOURCE_STATE_READY]         = S (DEGRADED) | S (ERROR) | S (INITIALIZING) | S (CLOSING),
  [EXO_RESOURCE_STATE_DEGRADED]      = S (READY) | S (ERROR) | S (INITIALIZING) | S (CLOSING),
  [EXO_RESOURCE_STATE_ERROR]         = S (INITIALIZING) | S (CLOSING),
  [EXO_RESOURCE_STATE_CLOSING]       = S (CLOSED),
  [EXO_RESOURCE_STATE_CLOSED]        = S (INITIALIZING) | S (CLOSING),
};
#undef S

/**
 * exo_resource_state_transition_is_legal:
 * @from: the current state
 * @to: the next state
 *
 * Returns: %TRUE if the transition table has the edge @from → @to
 */
gboolean
exo_resource_state_transition_is_legal (ExoResourceState from,
                                        ExoResourceState to)
{
  if ((guint) from >= EXO_RESOURCE_STATE_LAST || (guint) to >= EXO_RESOURCE_STATE_LAST)
    return FALSE;
  return (legal_transitions[from] & (1u << to)) != 0;
}

static void
record_error_quietly (ExoResource  *self,
                      const GError *error)
{
  ExoResourcePrivate *priv = PRIV (self);

  g_clear_error (&EXTRA (priv)->last_error);
  priv->extra->last_error = g_error_copy (error);
  priv->error_count++;
}

static void
notify_error (ExoResource *self)
{
  notify_attempts (self);
  notify_watched (self, PROP_LAST_ERROR);
  notify_watched (self, PROP_ERROR_COUNT);
}

void
_exo_resource_record_error (ExoResource  *self,
                            const GError *error)
{
  if (error == NULL)
    return;
  record_error_quietly (self, error);
  notify_error (self);
}

void
_exo_resource_set_result (ExoResource       *self,
                          ExoResourceResult  result)
{
  ExoResourcePrivate *priv = PRIV (self);

  if (priv->result == result)
    return;
  priv->result = result;
  notify_watched (self, PROP_RESULT);
}

static void
emit_transition (ExoResource        *self,
                 ExoResourcePrivate *priv,
                 ExoResourceState    old_state,
                 ExoResourceState    new_state,
                 gboolean            with_error)
{
  g_object_notify_by_pspec (G_OBJECT (self), _exo_resource_properties[PROP_STATE]);
  /* Where ExoManagedResource's own handler was: connected at init, it ran
   * before every other handler. */
  if (G_UNLIKELY (priv->managed_hook))
    _exo_managed_resource_state_changed (EXO_MANAGED_RESOURCE (self), old_state, new_state);
  g_signal_emit (self, _exo_resource_signal_state_changed, 0, old_state, new_state);
  /* The group's bookkeeping: after every handler, so that each of them has
   * seen the transition before the group does anything about it. */
  if (G_UNLIKELY (priv->member_hook))
    _exo_resource_group_member_state_changed (priv->member, old_state, new_state);
  /* After the emission: a watcher of the error count sees that this error
   * came with the transition it was just told of. */
  if (with_error)
    notify_error (self);
}

/**
 * exo_resource_transition:
 * @self: a resource
 * @new_state: the state to enter
 * @error: (nullable): recorded as the last error when not %NULL
 *
 * Moves @self to @new_state and emits #ExoAsyncResource::state-changed.
 * This is for runtimes built on libexo (groups, pools) that manage a
 * resource's state themselves; an edge that is not in the transition table
 * is a programming error: it is refused with a critical warning.
 *
 * Returns: %TRUE if the transition happened (or @self already was in @new_state)
 */
gboolean
exo_resource_transition (ExoResource      *self,
                         ExoResourceState  new_state,
                         const GError     *error)
{
  ExoResourcePrivate *priv = PRIV (self);
  ExoResourceState old_state = priv->state;

  if (old_state == new_state)
    return TRUE;

  if G_UNLIKELY (!exo_resource_state_transition_is_legal (old_state, new_state))
    {
      g_critical ("illegal state transition of resource '%s': %s -> %s",
                  ID (priv),
                  exo_resource_state_to_string (old_state),
                  exo_resource_state_to_string (new_state));
      return FALSE;
    }

  priv->state = new_state;
  priv->state_changed_at = g_get_real_time ();
  if (error != NULL)
    record_error_quietly (self, error);

  if (new_state == EXO_RESOURCE_STATE_READY && old_state == EXO_RESOURCE_STATE_INITIALIZING)
    priv->initialized_at = priv->state_changed_at;
  if (new_state != EXO_RESOURCE_STATE_DEGRADED)
    {
      priv->degraded_by_health = FALSE;
      if (!exo_resource_state_is_usable (new_state))
        {
          priv->held = FALSE;
          priv->health_fails = priv->health_passes = 0;
        }
    }

  /* A handler that changes the state again from inside an emission (a
   * plugin restarting itself on `degraded`) must not make the handlers
   * after it see the second transition before the first: the state changes
   * at once, its emission waits until the current one has reached every
   * handler. */
  if (priv->emitting)
    {
      guint32 entry = old_state | (new_state << 8) | ((error != NULL) << 16);

      if (EXTRA (priv)->pending_emissions == NULL)
        priv->extra->pending_emissions = g_array_new (FALSE, FALSE, sizeof (guint32));
      g_array_append_val (priv->extra->pending_emissions, entry);
      return TRUE;
    }

  g_object_ref (self);
  priv->emitting = TRUE;
  emit_transition (self, priv, old_state, new_state, error != NULL);
  if (G_UNLIKELY (priv->extra != NULL && priv->extra->pending_emissions != NULL))
    {
      GArray *pending = priv->extra->pending_emissions;

      for (guint i = 0; i < pending->len; i++)
        {
          guint32 entry = g_array_index (pending, guint32, i);

          emit_transition (self, priv, entry & 0xff, (entry >> 8) & 0xff, (entry >> 16) & 1);
        }
      g_array_set_size (pending, 0);
    }
  priv->emitting = FALSE;
  g_object_unref (self);

  return TRUE;
}
