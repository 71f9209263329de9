/* exo-retry-policy.c: backoff delays with jitter, and restart limits.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: ExoRetryPolicy (a plain boxed value: defaults, copy, validation,
 * the base delay and the next delay with jitter) and ExoRestartLimiter (a
 * ring of the last burst restart times; its stamps are allocated by the
 * first restart).
 *
 * Rules: no lock, no main context, no global state.  A policy is a value:
 * the functions only read it, so any thread may use a policy nobody
 * changes.  next_delay draws from the GRand given (not thread-safe: one
 * per thread) or, given NULL, from g_random_*() (locked by GLib).  A
 * limiter is not thread-safe: one owner (a managed resource, in its main
 * context).  Callers pass the time (now_us) in, so nothing here reads a
 * clock and the tests drive it.
 */
#include "exo-private.h"

#include <math.h>

G_DEFINE_BOXED_TYPE (ExoRetryPolicy, exo_retry_policy, exo_retry_policy_copy, exo_retry_policy_free)

/**
 * exo_retry_policy_new:
 *
 * Makes a policy with the defaults: 3 retries, 100 ms initial delay, 30 s
 * maximum, multiplier 2.0, full jitter, at most 5 restarts in 10 s.
 *
 * Returns: (transfer full): a new policy
 */
ExoRetryPolicy *
exo_retry_policy_new (void)
{
  ExoRetryPolicy *policy = g_new0 (ExoRetryPolicy, 1);

  policy->max_retries = 3;
  policy->initial_delay_ms = 100;
  policy->max_delay_ms = 30000;
  policy->multiplier = 2.0;
  policy->jitter = EXO_JITTER_FULL;
  policy->restart_burst = 5;
  policy->restart_interval_ms = 10000;

  return policy;
}

/**
 * exo_retry_policy_copy:
 * @policy: a policy
 *
 * Returns: (transfer full): a copy of @policy
 */
ExoRetryPolicy *
exo_retry_policy_copy (const ExoRetryPolicy *policy)
{
  g_return_val_if_fail (policy != NULL, NULL);

  return g_memdup2 (policy, sizeof *policy);
}

void
exo_retry_policy_free (ExoRetryPolicy *policy)
{
  g_free (policy);
}

/**
 * exo_retry_policy_validate:
 * @policy: a policy
 * @error: return location for an error naming the bad field
 *
 * Returns: %TRUE if every field is in range
 */
gboolean
exo_retry_policy_validate (const ExoRetryPolicy *policy,
                           GError              **error)
{
  g_return_val_if_fail (policy != NULL, FALSE);

  if (!(policy->multiplier >= 1.0) || !isfinite (policy->multiplier))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "multiplier must be a finite number >= 1.0 (got %g)", policy->multiplier);
      return FALSE;
    }
  if (policy->max_delay_ms < policy->initial_delay_ms)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "max-delay-ms (%u) must not be less than initial-delay-ms (%u)",
                   policy->max_delay_ms, policy->initial_delay_ms);
      return FALSE;
    }
  if ((guint) policy->jitter > EXO_JITTER_NONE)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "unknown jitter mode %d", (int) policy->jitter);
      return FALSE;
    }
  if (policy->restart_burst > EXO_RESTART_BURST_MAX)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "restart-burst must be at most %u (got %u)", EXO_RESTART_BURST_MAX,
                   policy->restart_burst);
      return FALSE;
    }
  if (policy->restart_burst > 0 && policy->restart_interval_ms == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "restart-interval-ms must be > 0 when restart-burst is set");
      return FALSE;
    }
  return TRUE;
}

/**
 * exo_retry_policy_base_delay:
 * @policy: a policy
 * @retry: the retry number, 1-based
 *
 * Returns: `min (max_delay_ms, initial_delay_ms * multiplier^(retry-1))`, before jitter
 */
guint
exo_retry_policy_base_delay (const ExoRetryPolicy *policy,
                             guint                 retry)
{
  double delay;

  g_return_val_if_fail (policy != NULL, 0);

  if (retry == 0)
    retry = 1;

  delay = (double) policy->initial_delay_ms * pow (policy->multiplier, (double) (retry - 1));
  if (!(delay < (double) policy->max_delay_ms))
    return policy->max_delay_ms;
  return (guint) delay;
}

/**
 * exo_retry_policy_next_delay:
 * @policy: a policy
 * @retry: the retry number, 1-based
 * @previous_delay_ms: the delay used before the previous retry (for
 *   decorrelated jitter; 0 for the first)
 * @rand: (nullable): the random source; %NULL uses g_random_*
 *
 * Returns: the delay in milliseconds before retry @retry, jitter applied:
 *   full: [0, base]; equal: [base/2, base]; decorrelated: [initial,
 *   min (max, 3 * previous)]; none: base.
 */
guint
exo_retry_policy_next_delay (const ExoRetryPolicy *policy,
                             guint                 retry,
                             guint                 previous_delay_ms,
                             GRand                *rand)
{
  guint base;
  double r;

  g_return_val_if_fail (policy != NULL, 0);

  base = exo_retry_policy_base_delay (policy, retry);
  r = rand != NULL ? g_rand_double (rand) : g_random_double ();  /* [0, 1) */

  switch (policy->jitter)
    {
    case EXO_JITTER_NONE:
      return base;

    case EXO_JITTER_EQUAL:
      {
        guint half = base / 2;
        guint d = half + (guint) (r * ((double) (base - half) + 1.0));
        return MIN (d, base);
      }

    case EXO_JITTER_DECORRELATED:
      {
        double lo = policy->initial_delay_ms;
        double hi = MAX ((double) previous_delay_ms, lo) * 3.0;
        double d;

        if (hi > policy->max_delay_ms)
          hi = policy->max_delay_ms;
        if (hi < lo)
          return policy->max_delay_ms;
        d = lo + r * (hi - lo);
        return (guint) MIN (d, (double) policy->max_delay_ms);
      }

    case EXO_JITTER_FULL:
    default:
      {
        guint d = (guint) (r * ((double) base + 1.0));
        return MIN (d, base);
      }
    }
}

struct _ExoRestartLimiter
{
  guint   burst;
  gint64  interval_us;
  gint64 *stamps;   /* ring of the last @burst restart times */
  guint   head;
  guint   len;
};

/**
 * exo_restart_limiter_new: (skip)
 * @burst: restarts allowed within @interval_ms (0 = unlimited)
 * @interval_ms: the window
 *
 * Returns: (transfer full): a new limiter
 */
ExoRestartLimiter *
exo_restart_limiter_new (guint burst,
                         guint interval_ms)
{
  ExoRestartLimiter *limiter = g_new0 (ExoRestartLimiter, 1);

  /* a limiter keeps one time stamp per allowed restart */
  burst = MIN (burst, EXO_RESTART_BURST_MAX);
  limiter->burst = burst;
  limiter->interval_us = (gint64) interval_ms * 1000;
  /* the stamps are made by the first restart: most limiters never see one */
  return limiter;
}

void
exo_restart_limiter_free (ExoRestartLimiter *limiter)
{
  if (limiter == NULL)
    return;
  g_free (limiter->stamps);
  g_free (limiter);
}

static void
restart_limiter_expire (ExoRestartLimiter *limiter,
                        gint64             now_us)
{
  while (limiter->len > 0)
    {
      guint oldest = (limiter->head + limiter->burst - limiter->len) % limiter->burst;

      if (now_us - limiter->stamps[oldest] < limiter->interval_us)
        break;
      limiter->len--;
    }
}

/**
 * exo_restart_limiter_try:
 * @limiter: a limiter
 * @now_us: the monotonic time now
 *
 * Records a restart if it is within the limit.
 *
 * Returns: %TRUE if the restart may go ahead, %FALSE if the limit is hit
 */
gboolean
exo_restart_limiter_try (ExoRestartLimiter *limiter,
                         gint64             now_us)
{
  g_return_val_if_fail (limiter != NULL, FALSE);

  if (limiter->burst == 0)
    return TRUE;

  restart_limiter_expire (limiter, now_us);
  if (limiter->len >= limiter->burst)
    return FALSE;

  if (limiter->stamps == NULL)
    limiter->stamps = g_new0 (gint64, limiter->burst);
  limiter->stamps[limiter->head] = now_us;
  limiter->head = (limiter->head + 1) % limiter->burst;
  limiter->len++;
  return TRUE;
}

void
exo_restart_limiter_reset (ExoRestartLimiter *limiter)
{
  g_return_if_fail (limiter != NULL);
  limiter->len = 0;
}

/**
 * exo_restart_limiter_count:
 * @limiter: a limiter
 * @now_us: the monotonic time now
 *
 * Returns: the restarts recorded within the window ending at @now_us
 */
guint
exo_restart_limiter_count (ExoRestartLimiter *limiter,
                           gint64             now_us)
{
  g_return_val_if_fail (limiter != NULL, 0);

  if (limiter->burst == 0)
    return 0;
  restart_limiter_expire (limiter, now_us);
  return limiter->len;
}
