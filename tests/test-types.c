/* test-types.c: enum strings, error classes, retry policy and restart limiter.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

static void
test_state_strings (void)
{
  static const char *expected[] = {
    "uninitialized", "initializing", "ready", "degraded", "error", "closing", "closed",
  };
  g_autoptr(GEnumClass) klass = g_type_class_ref (EXO_TYPE_RESOURCE_STATE);

  g_assert_cmpuint (G_N_ELEMENTS (expected), ==, EXO_RESOURCE_STATE_LAST);

  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      ExoResourceState state = 99;
      GEnumValue *value = g_enum_get_value (klass, i);

      g_assert_cmpstr (exo_resource_state_to_string (i), ==, expected[i]);
      g_assert_true (exo_resource_state_from_string (expected[i], &state));
      g_assert_cmpint (state, ==, i);
      /* the GEnum nick is the same spelling (D-Bus, JSON and CLI use it) */
      g_assert_nonnull (value);
      g_assert_cmpstr (value->value_nick, ==, expected[i]);
    }

  {
    ExoResourceState state = EXO_RESOURCE_STATE_READY;
    g_assert_false (exo_resource_state_from_string ("Ready", &state));
    g_assert_false (exo_resource_state_from_string ("", &state));
    g_assert_false (exo_resource_state_from_string (NULL, &state));
    g_assert_cmpint (state, ==, EXO_RESOURCE_STATE_READY);
  }
  g_assert_cmpstr (exo_resource_state_to_string (42), ==, "invalid");

  g_assert_true (exo_resource_state_is_usable (EXO_RESOURCE_STATE_READY));
  g_assert_true (exo_resource_state_is_usable (EXO_RESOURCE_STATE_DEGRADED));
  g_assert_false (exo_resource_state_is_usable (EXO_RESOURCE_STATE_ERROR));
  g_assert_false (exo_resource_state_is_usable (EXO_RESOURCE_STATE_INITIALIZING));
}

static void
test_jitter_strings (void)
{
  static const char *names[] = { "full", "equal", "decorrelated", "none" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      ExoJitter jitter = 99;
      g_assert_cmpstr (exo_jitter_to_string (i), ==, names[i]);
      g_assert_true (exo_jitter_from_string (names[i], &jitter));
      g_assert_cmpint (jitter, ==, i);
    }
  {
    ExoJitter jitter;
    g_assert_false (exo_jitter_from_string ("random", &jitter));
  }
}

static void
test_retryable (void)
{
  g_autoptr(GError) cancelled = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "x");
  g_autoptr(GError) timed_out = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "x");
  g_autoptr(GError) refused = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED, "x");
  g_autoptr(GError) fatal = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL, "x");
  g_autoptr(GError) failed = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED, "x");
  g_autoptr(GError) limit = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_RESTART_LIMIT, "x");
  g_autoptr(GError) invalid = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "x");

  g_assert_false (exo_error_is_retryable (cancelled));
  g_assert_true (exo_error_is_retryable (timed_out));
  g_assert_true (exo_error_is_retryable (refused));
  g_assert_false (exo_error_is_retryable (fatal));
  g_assert_true (exo_error_is_retryable (failed));
  g_assert_false (exo_error_is_retryable (limit));
  g_assert_false (exo_error_is_retryable (invalid));

  g_assert_true (exo_error_is_connection_error (refused));
  g_assert_true (exo_error_is_connection_error (timed_out));
  g_assert_false (exo_error_is_connection_error (failed));
}

/* The error codes are a registered enum (what lets g-ir-scanner mark
 * ExoResourceError as the EXO_RESOURCE_ERROR domain), one value per code. */
static void
test_resource_error_type (void)
{
  g_autoptr(GEnumClass) klass = NULL;
  GEnumValue *value;

  g_assert_true (G_TYPE_IS_ENUM (EXO_TYPE_RESOURCE_ERROR));
  g_assert_cmpstr (g_type_name (EXO_TYPE_RESOURCE_ERROR), ==, "ExoResourceError");
  klass = g_type_class_ref (EXO_TYPE_RESOURCE_ERROR);
  g_assert_cmpuint (klass->n_values, ==, EXO_RESOURCE_ERROR_UNHEALTHY + 1);
  value = g_enum_get_value (klass, EXO_RESOURCE_ERROR_RESTART_LIMIT);
  g_assert_nonnull (value);
  g_assert_cmpstr (value->value_nick, ==, "restart-limit");
  g_assert_cmpstr (g_quark_to_string (EXO_RESOURCE_ERROR), ==, "exo-resource-error-quark");
}

static void
test_policy_defaults_and_validate (void)
{
  g_autoptr(ExoRetryPolicy) policy = exo_retry_policy_new ();
  g_autoptr(ExoRetryPolicy) copy = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (policy->jitter, ==, EXO_JITTER_FULL);
  g_assert_cmpfloat (policy->multiplier, ==, 2.0);
  g_assert_true (exo_retry_policy_validate (policy, &error));
  g_assert_no_error (error);

  copy = exo_retry_policy_copy (policy);
  g_assert_true (copy != policy);
  g_assert_cmpmem (copy, sizeof *copy, policy, sizeof *policy);

  policy->multiplier = 0.5;
  g_assert_false (exo_retry_policy_validate (policy, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "multiplier"));
  g_clear_error (&error);

  policy->multiplier = 2.0;
  policy->max_delay_ms = 10;
  policy->initial_delay_ms = 100;
  g_assert_false (exo_retry_policy_validate (policy, &error));
  g_assert_nonnull (strstr (error->message, "max-delay-ms"));
}

static void
test_policy_base_delay (void)
{
  ExoRetryPolicy policy = {
    .max_retries = 10, .initial_delay_ms = 100, .max_delay_ms = 5000,
    .multiplier = 2.0, .jitter = EXO_JITTER_NONE,
  };

  g_assert_cmpuint (exo_retry_policy_base_delay (&policy, 1), ==, 100);
  g_assert_cmpuint (exo_retry_policy_base_delay (&policy, 2), ==, 200);
  g_assert_cmpuint (exo_retry_policy_base_delay (&policy, 3), ==, 400);
  g_assert_cmpuint (exo_retry_policy_base_delay (&policy, 6), ==, 3200);
  g_assert_cmpuint (exo_retry_policy_base_delay (&policy, 7), ==, 5000);
  g_assert_cmpuint (exo_retry_policy_base_delay (&policy, 200), ==, 5000);
  g_assert_cmpuint (exo_retry_policy_next_delay (&policy, 3, 0, NULL), ==, 400);
}

/* Each jitter mode stays within the formula's bounds, and the random ones
 * really vary. */
static void
test_policy_jitter_bounds (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (1234);

  for (ExoJitter jitter = EXO_JITTER_FULL; jitter <= EXO_JITTER_NONE; jitter++)
    {
      ExoRetryPolicy policy = {
        .max_retries = 20, .initial_delay_ms = 50, .max_delay_ms = 4000,
        .multiplier = 3.0, .jitter = jitter,
      };

      for (guint retry = 1; retry <= 10; retry++)
        {
          guint base = exo_retry_policy_base_delay (&policy, retry);
          guint prev = retry == 1 ? 0 : exo_retry_policy_base_delay (&policy, retry - 1);
          guint min_seen = G_MAXUINT, max_seen = 0;

          for (guint i = 0; i < 2000; i++)
            {
              guint d = exo_retry_policy_next_delay (&policy, retry, prev, rand);

              switch (jitter)
                {
                case EXO_JITTER_FULL:
                  g_assert_cmpuint (d, <=, base);
                  break;
                case EXO_JITTER_EQUAL:
                  g_assert_cmpuint (d, >=, base / 2);
                  g_assert_cmpuint (d, <=, base);
                  break;
                case EXO_JITTER_DECORRELATED:
                  g_assert_cmpuint (d, >=, policy.initial_delay_ms);
                  g_assert_cmpuint (d, <=, MIN (policy.max_delay_ms,
                                                MAX (prev, policy.initial_delay_ms) * 3));
                  break;
                case EXO_JITTER_NONE:
                  g_assert_cmpuint (d, ==, base);
                  break;
                default:
                  g_assert_not_reached ();
                }
              min_seen = MIN (min_seen, d);
              max_seen = MAX (max_seen, d);
            }

          g_assert_cmpuint (max_seen, <=, policy.max_delay_ms);
          if (jitter == EXO_JITTER_FULL)
            {
              /* uniform over [0, base]: both ends are reached closely */
              g_assert_cmpuint (min_seen, <=, base / 20 + 1);
              g_assert_cmpuint (max_seen, >=, base - base / 20 - 1);
            }
          if (jitter == EXO_JITTER_EQUAL || jitter == EXO_JITTER_DECORRELATED)
            g_assert_cmpuint (min_seen, <, max_seen);
        }
    }
}

static void
test_restart_limiter (void)
{
  g_autoptr(ExoRestartLimiter) limiter = exo_restart_limiter_new (3, 1000);
  g_autoptr(ExoRestartLimiter) unlimited = exo_restart_limiter_new (0, 0);
  gint64 t = 1000000;

  g_assert_true (exo_restart_limiter_try (limiter, t));
  g_assert_true (exo_restart_limiter_try (limiter, t + 100000));
  g_assert_true (exo_restart_limiter_try (limiter, t + 200000));
  /* a fourth within 1 s is refused, and not recorded */
  g_assert_false (exo_restart_limiter_try (limiter, t + 300000));
  g_assert_cmpuint (exo_restart_limiter_count (limiter, t + 300000), ==, 3);
  /* the first falls out of the window at t + 1 s */
  g_assert_true (exo_restart_limiter_try (limiter, t + 1000001));
  g_assert_false (exo_restart_limiter_try (limiter, t + 1000002));
  g_assert_cmpuint (exo_restart_limiter_count (limiter, t + 5000000), ==, 0);

  exo_restart_limiter_reset (limiter);
  g_assert_cmpuint (exo_restart_limiter_count (limiter, t + 1000003), ==, 0);

  for (guint i = 0; i < 1000; i++)
    g_assert_true (exo_restart_limiter_try (unlimited, t));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/exo/types/state-strings", test_state_strings);
  g_test_add_func ("/exo/types/jitter-strings", test_jitter_strings);
  g_test_add_func ("/exo/types/retryable", test_retryable);
  g_test_add_func ("/exo/types/resource-error", test_resource_error_type);
  g_test_add_func ("/exo/retry-policy/defaults-and-validate", test_policy_defaults_and_validate);
  g_test_add_func ("/exo/retry-policy/base-delay", test_policy_base_delay);
  g_test_add_func ("/exo/retry-policy/jitter-bounds", test_policy_jitter_bounds);
  g_test_add_func ("/exo/retry-policy/restart-limiter", test_restart_limiter);

  return g_test_run ();
}
