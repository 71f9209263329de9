/* exo-resource-report.c: ExoResource's health and failure reports.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * This file owns exo_resource_report_health() and
 * exo_resource_report_error(), the health thresholds (hysteresis) and the
 * supervisor's hold of a resource in degraded, check_health, ensure_ready and
 * restart, and the hooks by which an ExoManagedResource and a group's member
 * record are told of transitions.
 *
 * Rules: the two report functions may be called from any thread: on a
 * foreign thread they copy the report and forward it to the resource's
 * context with an idle (not g_main_context_invoke(), which could run it on
 * the calling thread), so that every transition and emission happens in
 * that context.  Everything else runs in the resource's context, with no
 * lock.  A report made from inside a state-changed emission is a
 * re-entrant transition (queued by exo_resource_transition()).  The
 * callbacks of check_health and restart may re-enter the resource.
 */
#include "exo-resource-private.h"

/* --- health ------------------------------------------------------------ */

/* The report functions may be called from any thread (a worker that found
 * the connection dead): the report is applied in the resource's context, so
 * that every transition and emission happens on its own thread. */
static gboolean
on_foreign_thread (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  return g_thread_self () != priv->thread && !g_main_context_is_owner (priv->context);
}

typedef struct
{
  ExoResource *self;
  GError      *error;
  gboolean     health;
  gboolean     healthy;
} ForwardedReport;

static gboolean
forwarded_report_cb (gpointer data)
{
  ForwardedReport *report = data;

  if (report->health)
    exo_resource_report_health (report->self, report->healthy, report->error);
  else
    exo_resource_report_error (report->self, report->error);
  return G_SOURCE_REMOVE;
}

static void
forwarded_report_free (gpointer data)
{
  ForwardedReport *report = data;

  g_object_unref (report->self);
  g_clear_error (&report->error);
  g_free (report);
}

static void
forward_report (ExoResource  *self,
                gboolean      health,
                gboolean      healthy,
                const GError *error)
{
  ForwardedReport *report = g_new0 (ForwardedReport, 1);

  report->self = g_object_ref (self);
  report->error = error != NULL ? g_error_copy (error) : NULL;
  report->health = health;
  report->healthy = healthy;
  GSource *source = g_idle_source_new ();

  /* not g_main_context_invoke: it runs the function right here when this
   * thread can acquire the context (nobody iterates it at the moment) */
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, forwarded_report_cb, report, forwarded_report_free);
  g_source_set_static_name (source, "[exo] report from another thread");
  g_source_attach (source, PRIV (self)->context);
  g_source_unref (source);
}

/**
 * exo_resource_report_health:
 * @self: a resource
 * @healthy: the outcome of a check
 * @error: (nullable): why it is unhealthy
 *
 * Applies the outcome of one health check, with hysteresis (as Consul's
 * and Envoy's health checks do): every failed check is recorded (last error,
 * error count); `ready` becomes `degraded` after
 * #ExoResource:unhealthy-threshold consecutive failed checks, and a
 * resource degraded by its own checks becomes `ready` again after
 * #ExoResource:healthy-threshold consecutive passes.  A resource that its
 * supervisor keeps `degraded` (because a dependency is down) records its
 * checks but does not change state.  Other states are left alone.
 */
void
exo_resource_report_health (ExoResource  *self,
                            gboolean      healthy,
                            const GError *error)
{
  ExoResourcePrivate *priv;

  g_return_if_fail (EXO_IS_RESOURCE (self));
  priv = PRIV (self);

  if (G_UNLIKELY (on_foreign_thread (self)))
    {
      forward_report (self, TRUE, healthy, error);
      return;
    }

  if (priv->in_flight || priv->cleaning || !exo_resource_state_is_usable (priv->state))
    return;

  if (healthy)
    {
      priv->health_fails = 0;
      if (priv->health_passes < G_MAXUINT)
        priv->health_passes++;
      if (priv->state == EXO_RESOURCE_STATE_DEGRADED && !priv->held &&
          (!priv->degraded_by_health || priv->health_passes >= priv->healthy_threshold))
        exo_resource_transition (self, EXO_RESOURCE_STATE_READY, NULL);
      return;
    }

  {
    g_autoptr(GError) fallback = NULL;

    if (error == NULL)
      error = fallback = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                                      "health check of '%s' failed", ID (priv));
    priv->health_passes = 0;
    if (priv->health_fails < G_MAXUINT)
      priv->health_fails++;
    if (priv->state == EXO_RESOURCE_STATE_READY && !priv->held &&
        priv->health_fails >= priv->unhealthy_threshold)
      {
        /* set first: state-changed handlers ask why it is degraded; the
         * error is recorded with the transition (told once) */
        priv->degraded_by_health = TRUE;
        exo_resource_transition (self, EXO_RESOURCE_STATE_DEGRADED, error);
        return;
      }
    _exo_resource_record_error (self, error);
    if (priv->state == EXO_RESOURCE_STATE_DEGRADED && !priv->held)
      priv->degraded_by_health = TRUE;
  }
}

/* Health thresholds (ExoManagedResource's properties live here because the
 * base class applies the outcomes). */
void
_exo_resource_set_health_thresholds (ExoResource *self,
                                     guint        unhealthy,
                                     guint        healthy)
{
  ExoResourcePrivate *priv = PRIV (self);

  priv->unhealthy_threshold = MAX (unhealthy, 1);
  priv->healthy_threshold = MAX (healthy, 1);
}

void
_exo_resource_get_health_thresholds (ExoResource *self,
                                     guint       *unhealthy,
                                     guint       *healthy)
{
  ExoResourcePrivate *priv = PRIV (self);

  *unhealthy = priv->unhealthy_threshold;
  *healthy = priv->healthy_threshold;
}

/* TRUE while @self is degraded by its own failing health checks (not by a
 * supervisor, not only by a dependency). */
gboolean
_exo_resource_is_degraded_by_health (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  return priv->state == EXO_RESOURCE_STATE_DEGRADED && priv->degraded_by_health && !priv->held;
}

/* For a supervisor: keep @self `degraded` because of @error (a dependency
 * is down) whatever its own checks say, or let it go (@error = NULL): then a
 * resource whose own checks did not fail is `ready` again at once. */
void
_exo_resource_hold_degraded (ExoResource  *self,
                             const GError *error)
{
  ExoResourcePrivate *priv = PRIV (self);

  if (error != NULL)
    {
      if (priv->state != EXO_RESOURCE_STATE_READY && priv->state != EXO_RESOURCE_STATE_DEGRADED)
        return;
      priv->held = TRUE;
      if (priv->state == EXO_RESOURCE_STATE_READY)
        exo_resource_transition (self, EXO_RESOURCE_STATE_DEGRADED, error);
      return;
    }

  if (!priv->held)
    return;
  priv->held = FALSE;
  if (priv->state == EXO_RESOURCE_STATE_DEGRADED && priv->health_fails == 0)
    exo_resource_transition (self, EXO_RESOURCE_STATE_READY, NULL);
  else if (priv->state == EXO_RESOURCE_STATE_DEGRADED && priv->health_fails > 0)
    priv->degraded_by_health = TRUE;
}

gboolean
_exo_resource_is_held (ExoResource *self)
{
  return PRIV (self)->held;
}

void
_exo_resource_set_managed_hook (ExoResource *self)
{
  PRIV (self)->managed_hook = TRUE;
}

gpointer
_exo_resource_get_member (ExoResource *self)
{
  return PRIV (self)->member;
}

void
_exo_resource_set_member (ExoResource *self,
                          gpointer     member)
{
  ExoResourcePrivate *priv = PRIV (self);

  priv->member = member;
  priv->member_hook = member != NULL && !priv->disposed;
}

/**
 * exo_resource_report_error:
 * @self: a resource
 * @error: what went wrong
 *
 * Tells @self that it failed while usable (a connection dropped, a child
 * died): `ready` or `degraded` becomes `error`.  A managed resource then
 * recovers by itself.  May be called from any thread: from another thread
 * the report is applied in @self's main context.
 */
void
exo_resource_report_error (ExoResource  *self,
                           const GError *error)
{
  ExoResourcePrivate *priv;

  g_return_if_fail (EXO_IS_RESOURCE (self));
  g_return_if_fail (error != NULL);
  priv = PRIV (self);

  if (G_UNLIKELY (on_foreign_thread (self)))
    {
      forward_report (self, FALSE, FALSE, error);
      return;
    }

  if (priv->in_flight || priv->cleaning || !exo_resource_state_is_usable (priv->state))
    {
      _exo_resource_record_error (self, error);
      return;
    }

  _exo_resource_set_result (self, EXO_RESOURCE_RESULT_FAILED);
  exo_resource_transition (self, EXO_RESOURCE_STATE_ERROR, error);
}

static void
do_check_health_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExoResource *self = EXO_RESOURCE (source);
  GError *error = NULL;
  gboolean healthy;

  healthy = g_task_propagate_boolean (G_TASK (result), &error);

  /* Cancelled by whoever asked for the check: no outcome.  Cancelled by
   * the implementation itself (its own timeout gave up on a backend that
   * accepts and never answers): a failed check. */
  if (error != NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
      g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      g_task_return_error (task, error);
      return;
    }

  if (!healthy && error == NULL)
    error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                         "health check of '%s' failed", ID (PRIV (self)));

  exo_resource_report_health (self, healthy, error);

  if (healthy)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

void
_exo_resource_real_check_health_async (ExoAsyncResource    *resource,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  ExoResource *self = EXO_RESOURCE (resource);
  ExoResourcePrivate *priv = PRIV (self);
  ExoResourceClass *klass = EXO_RESOURCE_GET_CLASS (self);
  GTask *task;
  GTask *inner;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, exo_resource_check_health_async);

  if (!exo_resource_state_is_usable (priv->state) || priv->in_flight || priv->cleaning)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                               "resource '%s' is %s", ID (priv),
                               exo_resource_state_to_string (priv->state));
      g_object_unref (task);
      return;
    }

  if (klass->do_check_health == NULL)
    {
      exo_resource_report_health (self, TRUE, NULL);
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }

  inner = _exo_resource_vfunc_task_new (self, cancellable, do_check_health_cb, task,
                                        _exo_resource_real_check_health_async, "do_check_health");
  klass->do_check_health (self, inner);
  g_object_unref (inner);
}

/**
 * exo_resource_check_health_async:
 * @self: a resource
 * @cancellable: (nullable): a cancellable
 * @callback: called with the outcome
 * @user_data: data for @callback
 *
 * Runs #ExoResourceClass.do_check_health and applies the outcome (see
 * exo_resource_report_health()).  A resource that is not usable is unhealthy.
 */
void
exo_resource_check_health_async (ExoResource         *self,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_return_if_fail (EXO_IS_RESOURCE (self));

  exo_async_resource_check_health_async (EXO_ASYNC_RESOURCE (self), cancellable, callback, user_data);
}

/**
 * exo_resource_check_health_finish:
 * @self: a resource
 * @result: the result given to the callback
 * @error: return location for why @self is unhealthy
 *
 * Returns: %TRUE if healthy
 */
gboolean
exo_resource_check_health_finish (ExoResource   *self,
                                  GAsyncResult  *result,
                                  GError       **error)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), FALSE);

  return exo_async_resource_check_health_finish (EXO_ASYNC_RESOURCE (self), result, error);
}

/**
 * exo_resource_ensure_ready_async:
 * @self: a resource
 * @cancellable: (nullable): a cancellable
 * @callback: called when @self is usable or cannot be made so
 * @user_data: data for @callback
 *
 * See exo_async_resource_ensure_ready_async().
 */
void
exo_resource_ensure_ready_async (ExoResource         *self,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_return_if_fail (EXO_IS_RESOURCE (self));

  exo_async_resource_ensure_ready_async (EXO_ASYNC_RESOURCE (self), cancellable, callback, user_data);
}

gboolean
exo_resource_ensure_ready_finish (ExoResource   *self,
                                  GAsyncResult  *result,
                                  GError       **error)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), FALSE);

  return exo_async_resource_ensure_ready_finish (EXO_ASYNC_RESOURCE (self), result, error);
}

/* --- restart ----------------------------------------------------------- */

static void
restart_init_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (exo_resource_initialize_finish (EXO_RESOURCE (source), result, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
restart_cleanup_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;

  /* A cleanup error is recorded on the resource; the restart goes on. */
  exo_resource_cleanup_finish (EXO_RESOURCE (source), result, NULL);
  exo_resource_initialize_async (EXO_RESOURCE (source), g_task_get_cancellable (task),
                                 restart_init_cb, g_object_ref (task));
}

/**
 * exo_resource_restart_async:
 * @self: a resource
 * @cancellable: (nullable): cancels the initialize half
 * @callback: called when @self is initialized again, or failed to be
 * @user_data: data for @callback
 *
 * Cleans @self up, then initializes it again.
 */
void
exo_resource_restart_async (ExoResource         *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (EXO_IS_RESOURCE (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, exo_resource_restart_async);
  exo_resource_cleanup_async (self, NULL, restart_cleanup_cb, task);
}

gboolean
exo_resource_restart_finish (ExoResource   *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
