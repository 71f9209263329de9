/* exo-managed-resource-recovery.c: health checks, recovery, restart limits.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns what ExoManagedResource does by itself once it is up: the periodic
 * health check while usable, the automatic recovery of a resource that
 * fell (backoff from the retry policy, reset after a stable run), the
 * restart of one that stays `degraded` by its own checks, the restart
 * limit and the give-up (`start-limit-hit`), and
 * _exo_managed_resource_state_changed(), the hook that arms all of them.
 * exo-managed-resource-private.h lists the other files and the rules.
 *
 * Rules: everything here runs in the resource's main context; no locks.
 * The hook runs inside the state-changed emission: it arms timers and sets
 * flags, and calls nothing outside this object (cancelling a health check
 * goes through an idle).  The timers' callbacks run outside any emission
 * and may transition the resource; the health check's and the recovery's
 * callbacks hold a reference to it.
 */
#include "exo-managed-resource-private.h"

/* The restart limiter, made on first use from the current policy (as it
 * was made anew whenever the policy was set). */
static ExoRestartLimiter *
get_limiter (ExoManagedResourcePrivate *priv)
{
  if (MX (priv)->limiter == NULL)
    priv->extra->limiter = exo_restart_limiter_new (priv->policy->restart_burst,
                                                    priv->policy->restart_interval_ms);
  return priv->extra->limiter;
}

static GSource *
attach_timeout (ExoManagedResource *self,
                guint               ms,
                GSourceFunc         func)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, self, NULL);
  g_source_set_static_name (source, "[exo] managed resource timer");
  g_source_attach (source, exo_resource_get_context (EXO_RESOURCE (self)));
  return source;
}

/* --- health checks ----------------------------------------------------- */

static void
health_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  ExoManagedResource *self = user_data;
  ExoManagedResourcePrivate *priv = PRIV (self);

  exo_resource_check_health_finish (EXO_RESOURCE (source), result, NULL);
  priv->health_running = FALSE;
  g_object_unref (self);
}

static gboolean
health_tick_cb (gpointer data)
{
  ExoManagedResource *self = data;
  ExoManagedResourcePrivate *priv = PRIV (self);

  if (!priv->health_running && exo_resource_is_usable (EXO_RESOURCE (self))
      && !_exo_resource_is_busy (EXO_RESOURCE (self)))
    {
      priv->health_running = TRUE;
      if (priv->health_cancellable == NULL)
        priv->health_cancellable = g_cancellable_new ();
      exo_resource_check_health_async (EXO_RESOURCE (self), priv->health_cancellable,
                                       health_cb, g_object_ref (self));
    }

  return G_SOURCE_CONTINUE;
}

static gboolean
cancel_idle_cb (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

void
_exo_managed_resource_update_health_timer (ExoManagedResource *self)
{
  ExoManagedResourcePrivate *priv = PRIV (self);
  gboolean want = priv->health_interval_ms > 0
                  && exo_resource_is_usable (EXO_RESOURCE (self));

  if (want && priv->health_source == NULL)
    priv->health_source = attach_timeout (self, priv->health_interval_ms, health_tick_cb);
  else if (!want && priv->health_source != NULL)
    {
      clear_source (&priv->health_source);
      if (priv->health_cancellable != NULL)
        {
          /* Called from inside our state-changed emission: cancelling runs
           * other objects' handlers, so it happens from an idle instead. */
          GSource *idle = g_idle_source_new ();

          g_source_set_priority (idle, G_PRIORITY_HIGH);
          g_source_set_callback (idle, cancel_idle_cb, g_steal_pointer (&priv->health_cancellable),
                                 g_object_unref);
          g_source_set_static_name (idle, "[exo] cancel health check");
          g_source_attach (idle, exo_resource_get_context (EXO_RESOURCE (self)));
          g_source_unref (idle);
        }
    }
}

/* --- recovery ---------------------------------------------------------- */

static void
recover_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  ExoManagedResource *self = user_data;
  ExoManagedResourcePrivate *priv = PRIV (self);
  g_autoptr(GError) error = NULL;

  priv->recovering = FALSE;
  /* A success does not reset the backoff: a stable run does (backoff-reset-ms). */
  if (!exo_resource_initialize_finish (EXO_RESOURCE (source), result, &error) &&
      exo_resource_get_state (EXO_RESOURCE (self)) == EXO_RESOURCE_STATE_ERROR)
    _exo_managed_resource_schedule_recovery (self);

  g_object_unref (self);
}

static gboolean
recover_tick_cb (gpointer data)
{
  ExoManagedResource *self = data;
  ExoManagedResourcePrivate *priv = PRIV (self);
  ExoResourceState state = exo_resource_get_state (EXO_RESOURCE (self));
  gboolean counts;

  g_clear_pointer (&priv->extra->recover_source, g_source_unref);

  if (state != EXO_RESOURCE_STATE_DEGRADED && state != EXO_RESOURCE_STATE_ERROR)
    return G_SOURCE_REMOVE;

  /* The limit is for flapping: a recovery counts when the resource came
   * back since the previous one.  The recoveries that keep failing while
   * its backend is away do not: they only back off (up to max-delay-ms),
   * so the resource comes back by itself when its backend does. */
  counts = priv->came_up;
  priv->came_up = FALSE;
  if (counts && !exo_restart_limiter_try (get_limiter (priv), g_get_monotonic_time ()))
    {
      g_autoptr(GError) error = NULL;

      priv->limit_hit = TRUE;
      error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_RESTART_LIMIT,
                           "resource '%s' restarted %u times within %u ms: "
                           "giving up until it is started by hand or reset",
                           exo_resource_get_id (EXO_RESOURCE (self)),
                           priv->policy->restart_burst, priv->policy->restart_interval_ms);
      _exo_resource_set_result (EXO_RESOURCE (self), EXO_RESOURCE_RESULT_START_LIMIT_HIT);
      if (state == EXO_RESOURCE_STATE_DEGRADED)
        exo_resource_transition (EXO_RESOURCE (self), EXO_RESOURCE_STATE_ERROR, error);
      else
        exo_resource_report_error (EXO_RESOURCE (self), error);
      /* report_error sets `failed`: the give-up is what a user must see */
      _exo_resource_set_result (EXO_RESOURCE (self), EXO_RESOURCE_RESULT_START_LIMIT_HIT);
      return G_SOURCE_REMOVE;
    }

  MX (priv)->restarts++;
  MX (priv)->recover_streak++;
  priv->recovering = TRUE;
  _exo_managed_resource_notify_restarts (self);
  _exo_resource_reinitialize_async (EXO_RESOURCE (self), recover_cb, g_object_ref (self));

  return G_SOURCE_REMOVE;
}

void
_exo_managed_resource_schedule_recovery (ExoManagedResource *self)
{
  ExoManagedResourcePrivate *priv = PRIV (self);
  guint delay;

  if (!priv->auto_recover || priv->limit_hit || priv->recovering ||
      MX_GET (priv, recover_source) != NULL)
    return;

  delay = exo_retry_policy_next_delay (priv->policy, MX_GET (priv, recover_streak) + 1,
                                       MX_GET (priv, recover_prev_ms),
                                       _exo_resource_get_rand (EXO_RESOURCE (self)));
  MX (priv)->recover_prev_ms = delay;
  priv->extra->recover_source = attach_timeout (self, delay, recover_tick_cb);
}

static gboolean
degraded_tick_cb (gpointer data)
{
  ExoManagedResource *self = data;
  ExoManagedResourcePrivate *priv = PRIV (self);

  g_clear_pointer (&priv->extra->degraded_source, g_source_unref);
  if (_exo_resource_is_degraded_by_health (EXO_RESOURCE (self)))
    {
      _exo_resource_set_result (EXO_RESOURCE (self), EXO_RESOURCE_RESULT_UNHEALTHY);
      _exo_managed_resource_schedule_recovery (self);
    }
  return G_SOURCE_REMOVE;
}

/* The backoff of recoveries starts again after a stable run. */
static void
forget_streak_if_stable (ExoManagedResource *self)
{
  ExoManagedResourcePrivate *priv = PRIV (self);

  if (priv->ready_since != 0 &&
      g_get_monotonic_time () - priv->ready_since >= (gint64) BACKOFF_RESET_MS (priv) * 1000)
    {
      if (priv->extra != NULL)
        priv->extra->recover_streak = priv->extra->recover_prev_ms = 0;
    }
  priv->ready_since = 0;
}

/* Only timers are armed and flags set here: nothing outside this object is
 * called from inside the emission.  Called by ExoResource on each
 * transition, where the first state-changed handler would run. */
void
_exo_managed_resource_state_changed (ExoManagedResource *self,
                                     ExoResourceState    old_state,
                                     ExoResourceState    new_state)
{
  ExoManagedResourcePrivate *priv = PRIV (self);

  _exo_managed_resource_update_health_timer (self);
  if (new_state != EXO_RESOURCE_STATE_DEGRADED)
    clear_extra_source (priv, G_STRUCT_OFFSET (ManagedExtra, degraded_source));

  switch (new_state)
    {
    case EXO_RESOURCE_STATE_READY:
      priv->came_up = TRUE;
      if (priv->ready_since == 0)
        priv->ready_since = g_get_monotonic_time ();
      clear_extra_source (priv, G_STRUCT_OFFSET (ManagedExtra, recover_source));
      break;

    case EXO_RESOURCE_STATE_DEGRADED:
      if (old_state == EXO_RESOURCE_STATE_READY)
        forget_streak_if_stable (self);
      /* Kept degraded by a supervisor: a dependency is down, not this. */
      if (_exo_resource_is_held (EXO_RESOURCE (self)))
        break;
      if (DEGRADED_RESTART_MS (priv) == 0)
        {
          _exo_resource_set_result (EXO_RESOURCE (self), EXO_RESOURCE_RESULT_UNHEALTHY);
          _exo_managed_resource_schedule_recovery (self);
        }
      else if (priv->auto_recover && MX_GET (priv, degraded_source) == NULL)
        MX (priv)->degraded_source = attach_timeout (self, DEGRADED_RESTART_MS (priv),
                                                     degraded_tick_cb);
      break;

    case EXO_RESOURCE_STATE_ERROR:
      if (old_state == EXO_RESOURCE_STATE_READY)
        forget_streak_if_stable (self);
      /* Recover what was up once: what fell, what failed while recovering,
       * and what a manual initialize or restart failed to bring back.  A
       * first initialize that failed is its caller's to retry. */
      if (exo_resource_get_initialized_at (EXO_RESOURCE (self)) != 0 || MX_GET (priv, recover_streak) > 0)
        _exo_managed_resource_schedule_recovery (self);
      break;

    case EXO_RESOURCE_STATE_INITIALIZING:
      priv->ready_since = 0;
      /* Started by hand (not by our recovery): the give-up is over. */
      if (!priv->recovering && priv->limit_hit)
        {
          priv->limit_hit = FALSE;
          reset_limiter (priv);
        }
      break;

    case EXO_RESOURCE_STATE_CLOSING:
    case EXO_RESOURCE_STATE_CLOSED:
      priv->ready_since = 0;
      clear_extra_source (priv, G_STRUCT_OFFSET (ManagedExtra, recover_source));
      break;

    case EXO_RESOURCE_STATE_UNINITIALIZED:
    default:
      break;
    }
}
