/* exo-managed-resource.c: a resource that retries, checks and recovers itself.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns the GObject: the class documentation, the properties and their
 * accessors, the retry delay of initialize (retry_delay, is_retryable),
 * reset and metrics, dispose and finalize.  Health checks, recovery and
 * the restart limit are in exo-managed-resource-recovery.c, the operation
 * runner in exo-managed-resource-run.c; exo-managed-resource-private.h
 * lists the files and the rules that hold in all of them.
 *
 * Rules: everything here runs in the resource's main context; no locks.
 * The setters' notifications and reset's may run handlers that re-enter
 * the resource; the setters only change fields and timers before they
 * notify.
 */
#include "exo-managed-resource-private.h"

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

static GParamSpec *properties[N_PROPS];

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (ExoManagedResource, exo_managed_resource, EXO_TYPE_RESOURCE)

gint _exo_managed_resource_private_offset;

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
    _exo_managed_resource_schedule_recovery (self);
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

/* For the recovery: restarts changed. */
void
_exo_managed_resource_notify_restarts (ExoManagedResource *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESTARTS]);
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
  _exo_managed_resource_update_health_timer (self);
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

  /* for PRIV() in the other files */
  _exo_managed_resource_private_offset = ExoManagedResource_private_offset;

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
