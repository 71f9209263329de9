/* exo-managed-resource.c: retries, health checks, recovery, restart limits.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-private.h"

/**
 * ExoManagedResource:
 *
 * A resource that looks after itself:
 *
 * - initialize retries with exponential backoff and jitter
 *   (#ExoManagedResource:retry-policy) while the error is retryable;
 * - a periodic health check on a #GSource in the resource's main context
 *   (#ExoManagedResource:health-check-interval);
 * - health hysteresis: #ExoManagedResource:unhealthy-threshold consecutive
 *   failed checks make it `degraded`, #ExoManagedResource:healthy-threshold
 *   passes make it `ready` again;
 * - automatic recovery (while #ExoManagedResource:auto-recover): a resource
 *   that was up once and is in `error` — it failed, or a manual initialize
 *   or restart failed — is re-initialized after a backoff delay; one that
 *   stays `degraded` by its own checks for
 *   #ExoManagedResource:degraded-restart-ms is re-initialized too (result
 *   `unhealthy`, like systemd's watchdog).  The backoff grows with each
 *   recovery and starts again from the initial delay once the resource has
 *   been `ready` for #ExoManagedResource:backoff-reset-ms;
 * - a restart limit (burst within interval, as systemd's StartLimitBurst):
 *   over it, the resource gives up: it stays in `error` with
 *   %EXO_RESOURCE_ERROR_RESTART_LIMIT and #ExoResource:result
 *   `start-limit-hit` until it is initialized by hand or reset;
 * - an operation runner: exo_managed_resource_run_async().
 */

/* What only recoveries, retries and restart limits use: made when first
 * needed, so that a resource that never fails does not carry it. */
typedef struct
{
  ExoRestartLimiter *limiter;            /* for policy; made when first needed */
  GSource           *recover_source;
  GSource           *degraded_source;
  guint              recover_streak;     /* recoveries since the last success */
  guint              prev_delay_ms;
  guint              recover_prev_ms;
  guint              restarts;
  /* settings that nearly every resource leaves at their defaults */
  guint              degraded_restart_ms;
  guint              backoff_reset_ms;
} ManagedExtra;

typedef struct
{
  ExoRetryPolicy    *policy;             /* shared_default_policy() until one is set */
  ManagedExtra      *extra;              /* NULL until needed: MX() */
  GSource           *health_source;
  GCancellable      *health_cancellable;
  gint64             ready_since;        /* monotonic µs, 0 = not ready */
  guint              health_interval_ms;
  /* the health thresholds are ExoResource's, which applies them */
  guint              auto_recover : 1;
  guint              health_running : 1;
  guint              recovering : 1;
  guint              limit_hit : 1;
  guint              came_up : 1;       /* ready since the last recovery started */
} ExoManagedResourcePrivate;

enum {
  PROP_0,
  PROP_RETRY_POLICY,
  PROP_HEALTH_CHECK_INTERVAL,
  PROP_AUTO_RECOVER,
  PROP_RESTARTS,
  PROP_UNHEALTHY_THRESHOLD,
  PROP_HEALTHY_THRESHOLD,
  PROP_DEGRADED_RESTART_MS,
  PROP_BACKOFF_RESET_MS,
  N_PROPS,
};

#define DEFAULT_BACKOFF_RESET_MS    10000
#define DEFAULT_DEGRADED_RESTART_MS 10000

static GParamSpec *properties[N_PROPS];

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (ExoManagedResource, exo_managed_resource, EXO_TYPE_RESOURCE)

#define PRIV(self) ((ExoManagedResourcePrivate *) exo_managed_resource_get_instance_private (EXO_MANAGED_RESOURCE (self)))

static void schedule_recovery (ExoManagedResource *self);

static inline ManagedExtra *
MX (ExoManagedResourcePrivate *priv)
{
  if (G_UNLIKELY (priv->extra == NULL))
    {
      priv->extra = g_new0 (ManagedExtra, 1);
      priv->extra->degraded_restart_ms = DEFAULT_DEGRADED_RESTART_MS;
      priv->extra->backoff_reset_ms = DEFAULT_BACKOFF_RESET_MS;
    }
  return priv->extra;
}

#define DEGRADED_RESTART_MS(priv) \
  ((priv)->extra != NULL ? (priv)->extra->degraded_restart_ms : DEFAULT_DEGRADED_RESTART_MS)
#define BACKOFF_RESET_MS(priv) \
  ((priv)->extra != NULL ? (priv)->extra->backoff_reset_ms : DEFAULT_BACKOFF_RESET_MS)

/* A field of the extra part, for reading: 0 or NULL when there is none. */
#define MX_GET(priv, field) ((priv)->extra != NULL ? (priv)->extra->field : 0)

/* The defaults, shared by every resource that has not set a policy of its
 * own (read only: a set policy is a copy). */
static ExoRetryPolicy *
shared_default_policy (void)
{
  static ExoRetryPolicy *policy;

  if (g_once_init_enter (&policy))
    g_once_init_leave (&policy, exo_retry_policy_new ());
  return policy;
}

static void
free_policy (ExoRetryPolicy *policy)
{
  if (policy != shared_default_policy ())
    exo_retry_policy_free (policy);
}

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

static void
reset_limiter (ExoManagedResourcePrivate *priv)
{
  if (MX_GET (priv, limiter) != NULL)
    exo_restart_limiter_reset (priv->extra->limiter);
}

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static void
clear_extra_source (ExoManagedResourcePrivate *priv,
                    glong                      offset)
{
  if (priv->extra != NULL)
    clear_source (G_STRUCT_MEMBER_P (priv->extra, offset));
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

/* --- retries ----------------------------------------------------------- */

static gint64
exo_managed_resource_retry_delay (ExoResource  *resource,
                                  guint         attempt,
                                  const GError *error)
{
  ExoManagedResource *self = EXO_MANAGED_RESOURCE (resource);
  ExoManagedResourcePrivate *priv = PRIV (self);
  guint delay;

  if (attempt <= 1)
    MX (priv)->prev_delay_ms = 0;

  if (!EXO_MANAGED_RESOURCE_GET_CLASS (self)->is_retryable (self, error))
    return -1;
  if (priv->policy->max_retries != G_MAXUINT && attempt > priv->policy->max_retries)
    return -1;

  delay = exo_retry_policy_next_delay (priv->policy, attempt, MX_GET (priv, prev_delay_ms),
                                       _exo_resource_get_rand (resource));
  MX (priv)->prev_delay_ms = delay;
  return delay;
}

static gboolean
exo_managed_resource_real_is_retryable (ExoManagedResource *self,
                                        const GError       *error)
{
  return exo_error_is_retryable (error);
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

static void
update_health_timer (ExoManagedResource *self)
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
    schedule_recovery (self);

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
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESTARTS]);
  _exo_resource_reinitialize_async (EXO_RESOURCE (self), recover_cb, g_object_ref (self));

  return G_SOURCE_REMOVE;
}

static void
schedule_recovery (ExoManagedResource *self)
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
      schedule_recovery (self);
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

  update_health_timer (self);
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
          schedule_recovery (self);
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
        schedule_recovery (self);
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

static void
exo_managed_resource_reset (ExoResource *resource)
{
  ExoManagedResource *self = EXO_MANAGED_RESOURCE (resource);
  ExoManagedResourcePrivate *priv = PRIV (self);
  gboolean was_held = priv->limit_hit;

  EXO_RESOURCE_CLASS (exo_managed_resource_parent_class)->reset (resource);

  reset_limiter (priv);
  priv->limit_hit = FALSE;
  if (priv->extra != NULL)
    priv->extra->recover_streak = priv->extra->recover_prev_ms = 0;
  if (MX_GET (priv, restarts) != 0)
    {
      priv->extra->restarts = 0;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESTARTS]);
    }

  if (was_held && exo_resource_get_state (resource) == EXO_RESOURCE_STATE_ERROR)
    schedule_recovery (self);
}

static void
exo_managed_resource_collect_metrics (ExoResource  *resource,
                                      GVariantDict *metrics)
{
  ExoManagedResourcePrivate *priv = PRIV (resource);

  if (EXO_RESOURCE_CLASS (exo_managed_resource_parent_class)->collect_metrics != NULL)
    EXO_RESOURCE_CLASS (exo_managed_resource_parent_class)->collect_metrics (resource, metrics);

  g_variant_dict_insert (metrics, "restarts", "u", MX_GET (priv, restarts));
  /* its own limit, or its supervisor's give-up (a group's member) */
  g_variant_dict_insert (metrics, "restart-limit-hit", "b",
                         priv->limit_hit ||
                         exo_resource_get_result (resource) == EXO_RESOURCE_RESULT_START_LIMIT_HIT);
  g_variant_dict_insert (metrics, "recovery-pending", "b", MX_GET (priv, recover_source) != NULL);
}

/* What the keys above are in /metrics (docs/metrics.md). */
static const ExoMetricEntry managed_metric_entries[] = {
  { .key = "restarts", .kind = EXO_METRIC_COUNTER, .name = "exo_resource_restarts_total",
    .help = "Restarts of the resource by its own recovery; `exoctl status ID` shows the last error." },
  { .key = "restart-limit-hit", .kind = EXO_METRIC_GAUGE, .name = "exo_resource_restart_limit_hit",
    .help = "1 when the resource was given up on (start-limit-hit); `exoctl restart ID` starts it again." },
  { .key = "recovery-pending", .kind = EXO_METRIC_GAUGE, .name = "exo_resource_recovery_pending",
    .help = "1 while a restart of the resource is scheduled." },
};

/* --- operation runner -------------------------------------------------- */

/* How results travel: the operation completes the attempt's GTask with
 * g_task_return_pointer (value, value_destroy) or g_task_return_value().  The
 * runner does not take the value out: the successful attempt's GTask itself
 * becomes the runner's result, so the value keeps the destroy notify the
 * operation gave it.  A finish function takes the value out of it; when nobody
 * calls one, the attempt's GTask is finalized with the runner's and frees the
 * value (GTask frees a result nobody propagated). */

typedef struct
{
  ExoOperationFunc  func;
  gpointer          func_data;
  GDestroyNotify    func_data_destroy;
  ExoRunObserver    observe;
  guint             timeout_ms;
  guint             attempt;
  guint             prev_delay_ms;
  GCancellable     *attempt_cancellable;
  GSource          *timer;
  gulong            cancel_id;
  gboolean          timed_out;
} RunData;

static void run_attempt (GTask *task);

/* Runs when the runner's task is finalized: after its callback ran. */
static void
run_data_free (RunData *data)
{
  clear_source (&data->timer);
  g_clear_object (&data->attempt_cancellable);
  if (data->func_data_destroy != NULL)
    data->func_data_destroy (data->func_data);
  g_free (data);
}

static gboolean
run_attempt_timeout_cb (gpointer user_data)
{
  RunData *data = user_data;

  g_clear_pointer (&data->timer, g_source_unref);
  data->timed_out = TRUE;
  g_cancellable_cancel (data->attempt_cancellable);
  return G_SOURCE_REMOVE;
}

static gboolean
run_retry_cb (gpointer user_data)
{
  GTask *task = user_data;
  RunData *data = g_task_get_task_data (task);

  g_clear_pointer (&data->timer, g_source_unref);
  run_attempt (g_object_ref (task));   /* the source drops its own reference */
  return G_SOURCE_REMOVE;
}

static void
run_attempt_done (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  GTask *attempt = G_TASK (result);
  RunData *data = g_task_get_task_data (task);
  ExoManagedResource *self = g_task_get_source_object (task);
  ExoManagedResourcePrivate *priv = PRIV (self);
  GCancellable *outer = g_task_get_cancellable (task);
  GError *error = NULL;

  clear_source (&data->timer);
  if (data->cancel_id != 0)
    {
      g_cancellable_disconnect (outer, data->cancel_id);
      data->cancel_id = 0;
    }

  /* Only an error is taken out of the attempt here: a value stays in it. */
  if (g_task_had_error (attempt))
    g_task_propagate_pointer (attempt, &error);
  if (data->observe != NULL)
    data->observe (self, error);

  if (error == NULL)
    {
      /* the value is final now, whatever happens to the attempt's cancellable */
      g_task_set_check_cancellable (attempt, FALSE);
      g_task_return_pointer (task, g_object_ref (attempt), g_object_unref);
      g_object_unref (task);
      return;
    }

  if (data->timed_out && !(outer != NULL && g_cancellable_is_cancelled (outer)))
    {
      g_clear_error (&error);
      error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                           "operation on '%s' timed out after %u ms (attempt %u)",
                           exo_resource_get_id (EXO_RESOURCE (self)), data->timeout_ms,
                           data->attempt);
    }

  if ((outer != NULL && g_cancellable_is_cancelled (outer))
      || !EXO_MANAGED_RESOURCE_GET_CLASS (self)->is_retryable (self, error)
      || (priv->policy->max_retries != G_MAXUINT && data->attempt > priv->policy->max_retries))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  g_clear_error (&error);
  {
    guint delay = exo_retry_policy_next_delay (priv->policy, data->attempt, data->prev_delay_ms,
                                               _exo_resource_get_rand (EXO_RESOURCE (self)));
    data->prev_delay_ms = delay;
    data->timer = g_timeout_source_new (delay);
    g_source_set_callback (data->timer, run_retry_cb, task, g_object_unref);
    g_source_set_static_name (data->timer, "[exo] operation retry");
    g_source_attach (data->timer, g_task_get_context (task));
  }
}

static void
run_outer_cancelled (GCancellable *cancellable,
                     gpointer      user_data)
{
  GCancellable *attempt = user_data;

  g_cancellable_cancel (attempt);
}

static void
run_ready_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  RunData *data = g_task_get_task_data (task);
  GError *error = NULL;
  GTask *inner;

  if (!exo_resource_ensure_ready_finish (EXO_RESOURCE (source), result, &error))
    {
      /* initialize already retried per the policy: its failure is final here */
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  g_clear_object (&data->attempt_cancellable);
  data->attempt_cancellable = g_cancellable_new ();
  data->timed_out = FALSE;
  if (g_task_get_cancellable (task) != NULL)
    data->cancel_id = g_cancellable_connect (g_task_get_cancellable (task),
                                             G_CALLBACK (run_outer_cancelled),
                                             data->attempt_cancellable, NULL);

  if (data->timeout_ms > 0)
    {
      data->timer = g_timeout_source_new (data->timeout_ms);
      g_source_set_callback (data->timer, run_attempt_timeout_cb, data, NULL);
      g_source_set_static_name (data->timer, "[exo] operation timeout");
      g_source_attach (data->timer, g_task_get_context (task));
    }

  /* an operation that lets its task go uncompleted fails the attempt */
  inner = _exo_resource_vfunc_task_new (EXO_RESOURCE (source), data->attempt_cancellable,
                                        run_attempt_done, task, run_ready_cb, "operation");
  data->func (EXO_RESOURCE (source), data->attempt_cancellable, inner, data->func_data);
  g_object_unref (inner);
}

static void
run_attempt (GTask *task)
{
  RunData *data = g_task_get_task_data (task);
  ExoResource *resource = g_task_get_source_object (task);

  data->attempt++;
  exo_resource_ensure_ready_async (resource, g_task_get_cancellable (task),
                                   run_ready_cb, task);
}

/* Shared with ExoNetworkResource: @observe (nullable) sees the outcome of
 * each attempt (%NULL on success) before the runner decides on a retry. */
void
_exo_managed_resource_run (ExoManagedResource  *self,
                           ExoOperationFunc     func,
                           gpointer             func_data,
                           GDestroyNotify       func_data_destroy,
                           ExoRunObserver       observe,
                           guint                attempt_timeout_ms,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data,
                           gpointer             source_tag)
{
  GTask *task;
  RunData *data;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, source_tag);

  data = g_new0 (RunData, 1);
  data->func = func;
  data->func_data = func_data;
  data->func_data_destroy = func_data_destroy;
  data->observe = observe;
  data->timeout_ms = attempt_timeout_ms;
  g_task_set_task_data (task, data, (GDestroyNotify) run_data_free);

  run_attempt (task);
}

/* The finish side, for every task whose result is a completed operation
 * task (the runners and exo_resource_use_async()). */
gpointer
_exo_operation_propagate_pointer (GTask   *task,
                                  GError **error)
{
  g_autoptr(GTask) attempt = g_task_propagate_pointer (task, error);

  if (attempt == NULL)
    return NULL;
  return g_task_propagate_pointer (attempt, NULL);
}

gboolean
_exo_operation_propagate_value (GTask   *task,
                                GValue  *value,
                                GError **error)
{
  g_autoptr(GTask) attempt = g_task_propagate_pointer (task, error);

  if (attempt == NULL)
    return FALSE;
  return g_task_propagate_value (attempt, value, NULL);
}

/**
 * exo_managed_resource_run_async:
 * @self: a managed resource
 * @func: (scope notified) (closure func_data) (destroy func_data_destroy): one
 *   attempt of the operation
 * @func_data: (closure): data for @func
 * @func_data_destroy: (nullable): frees @func_data once the operation is over
 * @attempt_timeout_ms: time limit of each attempt, 0 = none
 * @cancellable: (nullable): cancels the whole operation
 * @callback: (scope async) (closure user_data): called with the result of the
 *   last attempt
 * @user_data: (closure): data for @callback
 *
 * Runs @func on @self: makes sure @self is usable, runs one attempt, and
 * waits for it to complete.  A retryable error is retried after a backoff
 * delay from #ExoManagedResource:retry-policy; a fatal one (see
 * #ExoManagedResourceClass.is_retryable) ends the operation at once.  An
 * attempt that times out is cancelled and counts as %G_IO_ERROR_TIMED_OUT.
 *
 * @func completes its task with g_task_return_pointer() (and the value's
 * destroy notify), g_task_return_value() or an error; see #ExoOperationFunc.
 * The successful attempt's value is what exo_managed_resource_run_finish()
 * (or exo_managed_resource_run_finish_value()) returns; when nobody takes it,
 * it is freed with the destroy notify @func gave.
 *
 * @func_data_destroy is called exactly once, when the operation is over:
 * after the last attempt, once @callback has run (when the result is
 * finalized).  @func is not called again after that.
 */
void
exo_managed_resource_run_async (ExoManagedResource  *self,
                                ExoOperationFunc     func,
                                gpointer             func_data,
                                GDestroyNotify       func_data_destroy,
                                guint                attempt_timeout_ms,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_return_if_fail (EXO_IS_MANAGED_RESOURCE (self));
  g_return_if_fail (func != NULL);

  _exo_managed_resource_run (self, func, func_data, func_data_destroy, NULL, attempt_timeout_ms,
                             cancellable, callback, user_data, exo_managed_resource_run_async);
}

/**
 * exo_managed_resource_run_finish:
 * @self: a managed resource
 * @result: the result given to the callback
 * @error: return location for the last attempt's error
 *
 * For operations that complete with g_task_return_pointer().  Bindings use
 * exo_managed_resource_run_finish_value().
 *
 * Returns: (transfer full) (nullable): the pointer the successful attempt
 *   returned; free it the way the operation's destroy notify would
 */
gpointer
exo_managed_resource_run_finish (ExoManagedResource  *self,
                                 GAsyncResult        *result,
                                 GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return _exo_operation_propagate_pointer (G_TASK (result), error);
}

/**
 * exo_managed_resource_run_finish_value: (rename-to exo_managed_resource_run_finish)
 * @self: a managed resource
 * @result: the result given to the callback
 * @value: (out caller-allocates): where to store the value of the successful
 *   attempt; unset it with g_value_unset()
 * @error: return location for the last attempt's error
 *
 * For operations that complete with g_task_return_value(), as bindings do.
 *
 * Returns: (skip): %TRUE on success, %FALSE with @error set
 */
gboolean
exo_managed_resource_run_finish_value (ExoManagedResource  *self,
                                       GAsyncResult        *result,
                                       GValue              *value,
                                       GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (value != NULL, FALSE);

  return _exo_operation_propagate_value (G_TASK (result), value, error);
}

/* --- accessors --------------------------------------------------------- */

/**
 * exo_managed_resource_get_retry_policy:
 * @self: a managed resource
 *
 * Returns: (transfer full): a copy of the retry policy
 */
ExoRetryPolicy *
exo_managed_resource_get_retry_policy (ExoManagedResource *self)
{
  g_return_val_if_fail (EXO_IS_MANAGED_RESOURCE (self), NULL);
  return exo_retry_policy_copy (PRIV (self)->policy);
}

/**
 * exo_managed_resource_set_retry_policy:
 * @self: a managed resource
 * @policy: the new policy (copied); must pass exo_retry_policy_validate()
 */
void
exo_managed_resource_set_retry_policy (ExoManagedResource   *self,
                                       const ExoRetryPolicy *policy)
{
  ExoManagedResourcePrivate *priv;

  g_return_if_fail (EXO_IS_MANAGED_RESOURCE (self));
  g_return_if_fail (policy != NULL);
  g_return_if_fail (exo_retry_policy_validate (policy, NULL));
  priv = PRIV (self);

  free_policy (priv->policy);
  priv->policy = exo_retry_policy_copy (policy);
  if (priv->extra != NULL)
    g_clear_pointer (&priv->extra->limiter, exo_restart_limiter_free);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RETRY_POLICY]);
}

guint
exo_managed_resource_get_health_check_interval (ExoManagedResource *self)
{
  g_return_val_if_fail (EXO_IS_MANAGED_RESOURCE (self), 0);
  return PRIV (self)->health_interval_ms;
}

/**
 * exo_managed_resource_set_health_check_interval:
 * @self: a managed resource
 * @interval_ms: time between health checks while usable, 0 = none
 */
void
exo_managed_resource_set_health_check_interval (ExoManagedResource *self,
                                                guint               interval_ms)
{
  ExoManagedResourcePrivate *priv;

  g_return_if_fail (EXO_IS_MANAGED_RESOURCE (self));
  priv = PRIV (self);

  if (priv->health_interval_ms == interval_ms)
    return;
  priv->health_interval_ms = interval_ms;
  clear_source (&priv->health_source);
  update_health_timer (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HEALTH_CHECK_INTERVAL]);
}

gboolean
exo_managed_resource_get_auto_recover (ExoManagedResource *self)
{
  g_return_val_if_fail (EXO_IS_MANAGED_RESOURCE (self), FALSE);
  return PRIV (self)->auto_recover;
}

/**
 * exo_managed_resource_set_auto_recover:
 * @self: a managed resource
 * @auto_recover: whether @self re-initializes itself after failing
 *
 * A supervisor that restarts its members itself (a group) turns this off.
 */
void
exo_managed_resource_set_auto_recover (ExoManagedResource *self,
                                       gboolean            auto_recover)
{
  ExoManagedResourcePrivate *priv;

  g_return_if_fail (EXO_IS_MANAGED_RESOURCE (self));
  priv = PRIV (self);

  auto_recover = !!auto_recover;
  if (priv->auto_recover == (guint) auto_recover)
    return;
  priv->auto_recover = auto_recover;
  if (!auto_recover)
    clear_extra_source (priv, G_STRUCT_OFFSET (ManagedExtra, recover_source));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_AUTO_RECOVER]);
}

/**
 * exo_managed_resource_get_restarts:
 * @self: a managed resource
 *
 * Returns: automatic recoveries started since made or reset
 */
guint
exo_managed_resource_get_restarts (ExoManagedResource *self)
{
  g_return_val_if_fail (EXO_IS_MANAGED_RESOURCE (self), 0);
  return MX_GET (PRIV (self), restarts);
}

gboolean
exo_managed_resource_is_recovery_pending (ExoManagedResource *self)
{
  g_return_val_if_fail (EXO_IS_MANAGED_RESOURCE (self), FALSE);
  return MX_GET (PRIV (self), recover_source) != NULL || PRIV (self)->recovering;
}

/**
 * exo_managed_resource_set_health_thresholds:
 * @self: a managed resource
 * @unhealthy_threshold: consecutive failed checks before `ready` becomes
 *   `degraded` (at least 1)
 * @healthy_threshold: consecutive passed checks before a resource degraded
 *   by its checks is `ready` again (at least 1)
 */
void
exo_managed_resource_set_health_thresholds (ExoManagedResource *self,
                                            guint               unhealthy_threshold,
                                            guint               healthy_threshold)
{
  guint old_unhealthy, old_healthy;

  g_return_if_fail (EXO_IS_MANAGED_RESOURCE (self));

  unhealthy_threshold = MAX (unhealthy_threshold, 1);
  healthy_threshold = MAX (healthy_threshold, 1);
  _exo_resource_get_health_thresholds (EXO_RESOURCE (self), &old_unhealthy, &old_healthy);
  _exo_resource_set_health_thresholds (EXO_RESOURCE (self), unhealthy_threshold, healthy_threshold);
  if (old_unhealthy != unhealthy_threshold)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_UNHEALTHY_THRESHOLD]);
  if (old_healthy != healthy_threshold)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HEALTHY_THRESHOLD]);
}

/**
 * exo_managed_resource_get_degraded_restart:
 * @self: a managed resource
 *
 * Returns: how long @self may stay `degraded` by its own failing checks
 *   before its supervisor restarts it, in ms (0 = at once)
 */
guint
exo_managed_resource_get_degraded_restart (ExoManagedResource *self)
{
  g_return_val_if_fail (EXO_IS_MANAGED_RESOURCE (self), 0);
  return DEGRADED_RESTART_MS (PRIV (self));
}

/**
 * exo_managed_resource_set_degraded_restart:
 * @self: a managed resource
 * @ms: how long @self may stay `degraded` by its own failing checks before
 *   its supervisor (itself, or its group) restarts it; 0 = at once
 */
void
exo_managed_resource_set_degraded_restart (ExoManagedResource *self,
                                           guint               ms)
{
  g_return_if_fail (EXO_IS_MANAGED_RESOURCE (self));

  if (DEGRADED_RESTART_MS (PRIV (self)) == ms)
    return;
  MX (PRIV (self))->degraded_restart_ms = ms;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DEGRADED_RESTART_MS]);
}

/**
 * exo_managed_resource_get_backoff_reset:
 * @self: a managed resource
 *
 * Returns: after how many ms of `ready` the restart backoff starts again
 *   from the initial delay
 */
guint
exo_managed_resource_get_backoff_reset (ExoManagedResource *self)
{
  g_return_val_if_fail (EXO_IS_MANAGED_RESOURCE (self), 0);
  return BACKOFF_RESET_MS (PRIV (self));
}

/**
 * exo_managed_resource_set_backoff_reset:
 * @self: a managed resource
 * @ms: after how many ms of `ready` the restart backoff starts again from
 *   the initial delay
 */
void
exo_managed_resource_set_backoff_reset (ExoManagedResource *self,
                                        guint               ms)
{
  g_return_if_fail (EXO_IS_MANAGED_RESOURCE (self));

  if (BACKOFF_RESET_MS (PRIV (self)) == ms)
    return;
  MX (PRIV (self))->backoff_reset_ms = ms;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BACKOFF_RESET_MS]);
}

/**
 * exo_managed_resource_seed_jitter:
 * @self: a managed resource
 * @seed: a seed
 *
 * Makes the jitter of @self's delays repeatable (for tests).
 */
void
exo_managed_resource_seed_jitter (ExoManagedResource *self,
                                  guint32             seed)
{
  g_return_if_fail (EXO_IS_MANAGED_RESOURCE (self));
  _exo_resource_seed_rand (EXO_RESOURCE (self), seed);
}

/* --- GObject ----------------------------------------------------------- */

static void
exo_managed_resource_dispose (GObject *object)
{
  ExoManagedResourcePrivate *priv = PRIV (object);

  clear_source (&priv->health_source);
  clear_extra_source (priv, G_STRUCT_OFFSET (ManagedExtra, recover_source));
  clear_extra_source (priv, G_STRUCT_OFFSET (ManagedExtra, degraded_source));
  if (priv->health_cancellable != NULL)
    g_cancellable_cancel (priv->health_cancellable);
  g_clear_object (&priv->health_cancellable);

  G_OBJECT_CLASS (exo_managed_resource_parent_class)->dispose (object);
}

static void
exo_managed_resource_finalize (GObject *object)
{
  ExoManagedResourcePrivate *priv = PRIV (object);

  g_clear_pointer (&priv->policy, free_policy);
  if (priv->extra != NULL)
    g_clear_pointer (&priv->extra->limiter, exo_restart_limiter_free);
  g_clear_pointer (&priv->extra, g_free);

  G_OBJECT_CLASS (exo_managed_resource_parent_class)->finalize (object);
}

static void
exo_managed_resource_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  ExoManagedResource *self = EXO_MANAGED_RESOURCE (object);
  ExoManagedResourcePrivate *priv = PRIV (self);

  switch (prop_id)
    {
    case PROP_RETRY_POLICY:
      g_value_set_boxed (value, priv->policy);
      break;
    case PROP_HEALTH_CHECK_INTERVAL:
      g_value_set_uint (value, priv->health_interval_ms);
      break;
    case PROP_AUTO_RECOVER:
      g_value_set_boolean (value, priv->auto_recover);
      break;
    case PROP_RESTARTS:
      g_value_set_uint (value, MX_GET (priv, restarts));
      break;
    case PROP_UNHEALTHY_THRESHOLD:
      {
        guint unhealthy, healthy;

        _exo_resource_get_health_thresholds (EXO_RESOURCE (object), &unhealthy, &healthy);
        g_value_set_uint (value, unhealthy);
      }
      break;
    case PROP_HEALTHY_THRESHOLD:
      {
        guint unhealthy, healthy;

        _exo_resource_get_health_thresholds (EXO_RESOURCE (object), &unhealthy, &healthy);
        g_value_set_uint (value, healthy);
      }
      break;
    case PROP_DEGRADED_RESTART_MS:
      g_value_set_uint (value, DEGRADED_RESTART_MS (priv));
      break;
    case PROP_BACKOFF_RESET_MS:
      g_value_set_uint (value, BACKOFF_RESET_MS (priv));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_managed_resource_set_property (GObject      *object,
                                   guint         prop_id,
                                   const GValue *value,
                                   GParamSpec   *pspec)
{
  ExoManagedResource *self = EXO_MANAGED_RESOURCE (object);

  switch (prop_id)
    {
    case PROP_RETRY_POLICY:
      if (g_value_get_boxed (value) != NULL)
        exo_managed_resource_set_retry_policy (self, g_value_get_boxed (value));
      break;
    case PROP_HEALTH_CHECK_INTERVAL:
      exo_managed_resource_set_health_check_interval (self, g_value_get_uint (value));
      break;
    case PROP_AUTO_RECOVER:
      exo_managed_resource_set_auto_recover (self, g_value_get_boolean (value));
      break;
    case PROP_UNHEALTHY_THRESHOLD:
    case PROP_HEALTHY_THRESHOLD:
      {
        guint unhealthy, healthy;

        _exo_resource_get_health_thresholds (EXO_RESOURCE (self), &unhealthy, &healthy);
        if (prop_id == PROP_UNHEALTHY_THRESHOLD)
          unhealthy = g_value_get_uint (value);
        else
          healthy = g_value_get_uint (value);
        exo_managed_resource_set_health_thresholds (self, unhealthy, healthy);
      }
      break;
    case PROP_DEGRADED_RESTART_MS:
      exo_managed_resource_set_degraded_restart (self, g_value_get_uint (value));
      break;
    case PROP_BACKOFF_RESET_MS:
      exo_managed_resource_set_backoff_reset (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_managed_resource_class_init (ExoManagedResourceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->dispose = exo_managed_resource_dispose;
  object_class->finalize = exo_managed_resource_finalize;
  object_class->get_property = exo_managed_resource_get_property;
  object_class->set_property = exo_managed_resource_set_property;

  resource_class->retry_delay = exo_managed_resource_retry_delay;
  resource_class->reset = exo_managed_resource_reset;
  resource_class->collect_metrics = exo_managed_resource_collect_metrics;
  exo_resource_class_add_metric_entries (resource_class, managed_metric_entries,
                                         G_N_ELEMENTS (managed_metric_entries));

  klass->is_retryable = exo_managed_resource_real_is_retryable;

  /**
   * ExoManagedResource:retry-policy:
   *
   * Backoff, retries and the restart limit.
   */
  properties[PROP_RETRY_POLICY] =
    g_param_spec_boxed ("retry-policy", NULL, NULL, EXO_TYPE_RETRY_POLICY,
                        G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoManagedResource:health-check-interval:
   *
   * Milliseconds between health checks while usable; 0 = none.
   */
  properties[PROP_HEALTH_CHECK_INTERVAL] =
    g_param_spec_uint ("health-check-interval", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoManagedResource:auto-recover:
   *
   * Whether the resource re-initializes itself after it fails.
   */
  properties[PROP_AUTO_RECOVER] =
    g_param_spec_boolean ("auto-recover", NULL, NULL, TRUE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoManagedResource:restarts:
   *
   * Automatic recoveries since made or reset.
   */
  properties[PROP_RESTARTS] =
    g_param_spec_uint ("restarts", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoManagedResource:unhealthy-threshold:
   *
   * Consecutive failed health checks before `ready` becomes `degraded`.
   */
  properties[PROP_UNHEALTHY_THRESHOLD] =
    g_param_spec_uint ("unhealthy-threshold", NULL, NULL, 1, G_MAXUINT, 1,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoManagedResource:healthy-threshold:
   *
   * Consecutive passed health checks before a resource degraded by its
   * checks is `ready` again.
   */
  properties[PROP_HEALTHY_THRESHOLD] =
    g_param_spec_uint ("healthy-threshold", NULL, NULL, 1, G_MAXUINT, 1,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoManagedResource:degraded-restart-ms:
   *
   * How long the resource may stay `degraded` by its own failing health
   * checks before its supervisor restarts it; 0 = at once.  Default 10 s.
   */
  properties[PROP_DEGRADED_RESTART_MS] =
    g_param_spec_uint ("degraded-restart-ms", NULL, NULL, 0, G_MAXUINT, DEFAULT_DEGRADED_RESTART_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * ExoManagedResource:backoff-reset-ms:
   *
   * After this long in `ready`, the restart backoff starts again from the
   * initial delay.
   */
  properties[PROP_BACKOFF_RESET_MS] =
    g_param_spec_uint ("backoff-reset-ms", NULL, NULL, 0, G_MAXUINT, DEFAULT_BACKOFF_RESET_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
exo_managed_resource_init (ExoManagedResource *self)
{
  ExoManagedResourcePrivate *priv = PRIV (self);

  priv->policy = shared_default_policy ();
  priv->auto_recover = TRUE;

  _exo_resource_set_managed_hook (EXO_RESOURCE (self));
}
