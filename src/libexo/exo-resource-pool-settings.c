/* exo-resource-pool-settings.c: the pool's settings.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns the public getters and setters of the pool's configuration:
 * item-type, min-size and max-size (which keep min <= max and run the
 * dispatcher of an open pool), the *_ms upkeep settings (which rearm
 * maintenance through _exo_resource_pool_update_config()), drain-timeout
 * and the retry policy.  The GObject side (the property specs,
 * get_property and set_property, which call these) is in
 * exo-resource-pool.c; exo-resource-pool-private.h lists the pool's files
 * and the rules that hold in all of them.
 *
 * Threads: exo_resource_pool_get_min_size() and _get_max_size() may be
 * called from any thread; they read under the mutex.  Everything else
 * runs in the pool's main context.  The size setters write min_size and
 * max_size under the mutex (the fast path reads them there) and notify
 * after unlocking.  The *_ms settings, drain_timeout_ms and retry_policy
 * are the main context's only, written without the mutex;
 * _exo_resource_pool_update_config() copies the *_ms settings, under the
 * mutex, into the *_us thresholds the fast path reads.
 *
 * Re-entrancy: a setter notifies once the setting is in place (and, for
 * the *_ms settings, maintenance rearmed); the size setters then run the
 * dispatcher.  A notify handler may call back into the pool.
 */
#include "exo-resource-pool-private.h"

/* --- accessors --------------------------------------------------------- */

/**
 * exo_resource_pool_get_item_type:
 * @self: a pool
 *
 * Returns: the type of resource the pool makes, or %G_TYPE_INVALID when it
 *   uses a factory callback
 */
GType
exo_resource_pool_get_item_type (ExoResourcePool *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), G_TYPE_INVALID);
  return self->item_type;
}

/**
 * exo_resource_pool_get_min_size:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:min-size
 */
guint
exo_resource_pool_get_min_size (ExoResourcePool *self)
{
  guint n;

  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), 0);
  g_mutex_lock (&self->mutex);
  n = self->min_size;
  g_mutex_unlock (&self->mutex);
  return n;
}

/**
 * exo_resource_pool_set_min_size:
 * @self: a pool
 * @min_size: resources to keep, even when idle
 *
 * Raising it above #ExoResourcePool:max-size raises that too.  A usable
 * pool makes the missing resources at once.
 */
void
exo_resource_pool_set_min_size (ExoResourcePool *self,
                                guint            min_size)
{
  gboolean raise_max = FALSE;

  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));

  g_mutex_lock (&self->mutex);
  if (self->min_size == min_size)
    {
      g_mutex_unlock (&self->mutex);
      return;
    }
  self->min_size = min_size;
  if (self->max_size < min_size)
    {
      self->max_size = min_size;
      raise_max = TRUE;
    }
  g_mutex_unlock (&self->mutex);

  g_object_freeze_notify (G_OBJECT (self));
  _exo_resource_pool_notify (self, PROP_MIN_SIZE);
  if (raise_max)
    _exo_resource_pool_notify (self, PROP_MAX_SIZE);
  g_object_thaw_notify (G_OBJECT (self));

  if (self->phase == PHASE_OPEN)
    _exo_resource_pool_run_dispatch (self);
}

/**
 * exo_resource_pool_get_max_size:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:max-size
 */
guint
exo_resource_pool_get_max_size (ExoResourcePool *self)
{
  guint n;

  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), 0);
  g_mutex_lock (&self->mutex);
  n = self->max_size;
  g_mutex_unlock (&self->mutex);
  return n;
}

/**
 * exo_resource_pool_set_max_size:
 * @self: a pool
 * @max_size: the most resources that may exist, at least 1
 *
 * Lowering it below #ExoResourcePool:min-size lowers that too; idle
 * resources above the new maximum are dropped, lent ones when given back.
 */
void
exo_resource_pool_set_max_size (ExoResourcePool *self,
                                guint            max_size)
{
  gboolean lower_min = FALSE;

  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));
  g_return_if_fail (max_size > 0);

  g_mutex_lock (&self->mutex);
  if (self->max_size == max_size)
    {
      g_mutex_unlock (&self->mutex);
      return;
    }
  self->max_size = max_size;
  if (self->min_size > max_size)
    {
      self->min_size = max_size;
      lower_min = TRUE;
    }
  g_mutex_unlock (&self->mutex);

  g_object_freeze_notify (G_OBJECT (self));
  _exo_resource_pool_notify (self, PROP_MAX_SIZE);
  if (lower_min)
    _exo_resource_pool_notify (self, PROP_MIN_SIZE);
  g_object_thaw_notify (G_OBJECT (self));

  if (self->phase == PHASE_OPEN)
    _exo_resource_pool_run_dispatch (self);
}

#define DEFINE_MS_PROPERTY(name, field, prop)                                  \
guint                                                                          \
exo_resource_pool_get_##name (ExoResourcePool *self)                           \
{                                                                              \
  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), 0);                       \
  return self->field;                                                          \
}                                                                              \
                                                                               \
void                                                                           \
exo_resource_pool_set_##name (ExoResourcePool *self,                           \
                              guint            value)                          \
{                                                                              \
  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));                              \
                                                                               \
  if (self->field == value)                                                    \
    return;                                                                    \
  self->field = value;                                                         \
  _exo_resource_pool_update_config (self);                                     \
  _exo_resource_pool_notify (self, prop);                                      \
}

/**
 * exo_resource_pool_get_idle_timeout:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:idle-timeout-ms
 */
/**
 * exo_resource_pool_set_idle_timeout:
 * @self: a pool
 * @timeout_ms: milliseconds, 0 = never evict
 *
 * Sets #ExoResourcePool:idle-timeout-ms.
 */
DEFINE_MS_PROPERTY (idle_timeout, idle_timeout_ms, PROP_IDLE_TIMEOUT_MS)
/**
 * exo_resource_pool_get_max_lifetime:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:max-lifetime-ms
 */
/**
 * exo_resource_pool_set_max_lifetime:
 * @self: a pool
 * @lifetime_ms: milliseconds, 0 = unlimited
 *
 * Sets #ExoResourcePool:max-lifetime-ms.
 */
DEFINE_MS_PROPERTY (max_lifetime, lifetime_ms, PROP_MAX_LIFETIME_MS)
/**
 * exo_resource_pool_get_validate_after_idle:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:validate-after-idle-ms
 */
/**
 * exo_resource_pool_set_validate_after_idle:
 * @self: a pool
 * @idle_ms: milliseconds, 0 = never validate
 *
 * Sets #ExoResourcePool:validate-after-idle-ms.
 */
DEFINE_MS_PROPERTY (validate_after_idle, validate_ms, PROP_VALIDATE_AFTER_IDLE_MS)
/**
 * exo_resource_pool_get_idle_check_interval:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:idle-check-interval-ms
 */
/**
 * exo_resource_pool_set_idle_check_interval:
 * @self: a pool
 * @interval_ms: milliseconds, 0 = no periodic checks
 *
 * Sets #ExoResourcePool:idle-check-interval-ms.
 */
DEFINE_MS_PROPERTY (idle_check_interval, check_ms, PROP_IDLE_CHECK_INTERVAL_MS)
/**
 * exo_resource_pool_get_leak_threshold:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:leak-threshold-ms
 */
/**
 * exo_resource_pool_set_leak_threshold:
 * @self: a pool
 * @threshold_ms: milliseconds, 0 = no leak detection
 *
 * Sets #ExoResourcePool:leak-threshold-ms.
 */
DEFINE_MS_PROPERTY (leak_threshold, leak_ms, PROP_LEAK_THRESHOLD_MS)

#undef DEFINE_MS_PROPERTY

/**
 * exo_resource_pool_get_drain_timeout:
 * @self: a pool
 *
 * Returns: the #ExoResourcePool:drain-timeout-ms
 */
guint
exo_resource_pool_get_drain_timeout (ExoResourcePool *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), 0);
  return self->drain_timeout_ms;
}

/**
 * exo_resource_pool_set_drain_timeout:
 * @self: a pool
 * @timeout_ms: how long cleanup waits for lent resources, 0 = not at all
 *
 * Sets #ExoResourcePool:drain-timeout-ms.
 */
void
exo_resource_pool_set_drain_timeout (ExoResourcePool *self,
                                     guint            timeout_ms)
{
  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));

  if (self->drain_timeout_ms == timeout_ms)
    return;
  self->drain_timeout_ms = timeout_ms;
  _exo_resource_pool_notify (self, PROP_DRAIN_TIMEOUT_MS);
}

/**
 * exo_resource_pool_get_retry_policy:
 * @self: a pool
 *
 * Returns: (transfer full): a copy of the backoff used when making a
 *   resource fails
 */
ExoRetryPolicy *
exo_resource_pool_get_retry_policy (ExoResourcePool *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_POOL (self), NULL);
  return exo_retry_policy_copy (self->retry_policy);
}

/**
 * exo_resource_pool_set_retry_policy:
 * @self: a pool
 * @policy: the backoff between attempts to make a resource
 *
 * When making a resource fails, the pool tries again after the policy's
 * delay for as long as someone waits or the pool is below its minimum.
 * `max-retries` consecutive failures (unless %G_MAXUINT, the default) fail
 * the waiters when the pool has no resource at all.
 */
void
exo_resource_pool_set_retry_policy (ExoResourcePool      *self,
                                    const ExoRetryPolicy *policy)
{
  g_return_if_fail (EXO_IS_RESOURCE_POOL (self));
  g_return_if_fail (policy != NULL);
  g_return_if_fail (exo_retry_policy_validate (policy, NULL));

  exo_retry_policy_free (self->retry_policy);
  self->retry_policy = exo_retry_policy_copy (policy);
  _exo_resource_pool_notify (self, PROP_RETRY_POLICY);
}
