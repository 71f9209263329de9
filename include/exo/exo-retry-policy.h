/* exo-retry-policy.h: backoff with jitter and a restart limit.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-types.h>

/**
 * EXO_RESTART_BURST_MAX:
 *
 * The largest restart burst a policy, a group or a limiter accepts.
 */
#define EXO_RESTART_BURST_MAX 10000

G_BEGIN_DECLS

#define EXO_TYPE_RETRY_POLICY (exo_retry_policy_get_type ())

/**
 * ExoRetryPolicy:
 * @max_retries: retries after the first attempt (0 = none, %G_MAXUINT = unlimited)
 * @initial_delay_ms: delay before the first retry
 * @max_delay_ms: upper bound of any delay
 * @multiplier: growth of the delay per retry (>= 1.0)
 * @jitter: how the delay is randomised
 * @restart_burst: at most this many restarts… (0 = no limit)
 * @restart_interval_ms: …within this interval, like systemd's
 *   StartLimitBurst / StartLimitIntervalSec
 *
 * A plain boxed struct: fill it in, or start from exo_retry_policy_new().
 *
 * The delay before retry `n` (1-based) is
 * `min (max_delay_ms, initial_delay_ms * multiplier^(n-1))`, then jitter.
 */
typedef struct {
  guint     max_retries;
  guint     initial_delay_ms;
  guint     max_delay_ms;
  double    multiplier;
  ExoJitter jitter;
  guint     restart_burst;
  guint     restart_interval_ms;
} ExoRetryPolicy;

EXO_AVAILABLE_IN_ALL
GType           exo_retry_policy_get_type       (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
ExoRetryPolicy *exo_retry_policy_new            (void);
EXO_AVAILABLE_IN_ALL
ExoRetryPolicy *exo_retry_policy_copy           (const ExoRetryPolicy *policy);
EXO_AVAILABLE_IN_ALL
void            exo_retry_policy_free           (ExoRetryPolicy       *policy);
EXO_AVAILABLE_IN_ALL
gboolean        exo_retry_policy_validate       (const ExoRetryPolicy *policy,
                                                 GError              **error);
EXO_AVAILABLE_IN_ALL
guint           exo_retry_policy_base_delay     (const ExoRetryPolicy *policy,
                                                 guint                 retry);
EXO_AVAILABLE_IN_ALL
guint           exo_retry_policy_next_delay     (const ExoRetryPolicy *policy,
                                                 guint                 retry,
                                                 guint                 previous_delay_ms,
                                                 GRand                *rand);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoRetryPolicy, exo_retry_policy_free)

/**
 * ExoRestartLimiter:
 *
 * Counts restarts in a sliding window (StartLimitBurst within
 * StartLimitIntervalSec).  Not thread-safe; owned by one resource.
 */
typedef struct _ExoRestartLimiter ExoRestartLimiter;

EXO_AVAILABLE_IN_ALL
ExoRestartLimiter *exo_restart_limiter_new      (guint               burst,
                                                 guint               interval_ms);
EXO_AVAILABLE_IN_ALL
void               exo_restart_limiter_free     (ExoRestartLimiter *limiter);
EXO_AVAILABLE_IN_ALL
gboolean           exo_restart_limiter_try      (ExoRestartLimiter *limiter,
                                                 gint64             now_us);
EXO_AVAILABLE_IN_ALL
void               exo_restart_limiter_reset    (ExoRestartLimiter *limiter);
EXO_AVAILABLE_IN_ALL
guint              exo_restart_limiter_count    (ExoRestartLimiter *limiter,
                                                 gint64             now_us);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoRestartLimiter, exo_restart_limiter_free)

G_END_DECLS
