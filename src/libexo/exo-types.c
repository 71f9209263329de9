/* exo-types.c: enum types and their string tables.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: the GTypes of ExoResourceState, ExoJitter, ExoResourceResult and
 * ExoResourceError (with the error quark), their names to and from
 * strings, exo_resource_state_is_usable() and exo_error_is_retryable().
 *
 * Rules: any thread, no lock.  The tables are constant; each GType is
 * registered once under g_once_init_enter(); the quark (G_DEFINE_QUARK)
 * is the same whichever thread makes it first.  Nothing here keeps state
 * or calls out.
 */
#include "exo-private.h"

#include <string.h>

static const char *const state_names[EXO_RESOURCE_STATE_LAST] = {
  [EXO_RESOURCE_STATE_UNINITIALIZED] = "uninitialized",
  [EXO_RESOURCE_STATE_INITIALIZING]  = "initializing",
  [EXO_RESOURCE_STATE_READY]         = "ready",
  [EXO_RESOURCE_STATE_DEGRADED]      = "degraded",
  [EXO_RESOURCE_STATE_ERROR]         = "error",
  [EXO_RESOURCE_STATE_CLOSING]       = "closing",
  [EXO_RESOURCE_STATE_CLOSED]        = "closed",
};

static const char *const jitter_names[] = {
  [EXO_JITTER_FULL]         = "full",
  [EXO_JITTER_EQUAL]        = "equal",
  [EXO_JITTER_DECORRELATED] = "decorrelated",
  [EXO_JITTER_NONE]         = "none",
};

GType
exo_resource_state_get_type (void)
{
  static gsize type_id = 0;

  if (g_once_init_enter (&type_id))
    {
      static const GEnumValue values[] = {
        { EXO_RESOURCE_STATE_UNINITIALIZED, "EXO_RESOURCE_STATE_UNINITIALIZED", "uninitialized" },
        { EXO_RESOURCE_STATE_INITIALIZING, "EXO_RESOURCE_STATE_INITIALIZING", "initializing" },
        { EXO_RESOURCE_STATE_READY, "EXO_RESOURCE_STATE_READY", "ready" },
        { EXO_RESOURCE_STATE_DEGRADED, "EXO_RESOURCE_STATE_DEGRADED", "degraded" },
        { EXO_RESOURCE_STATE_ERROR, "EXO_RESOURCE_STATE_ERROR", "error" },
        { EXO_RESOURCE_STATE_CLOSING, "EXO_RESOURCE_STATE_CLOSING", "closing" },
        { EXO_RESOURCE_STATE_CLOSED, "EXO_RESOURCE_STATE_CLOSED", "closed" },
        { 0, NULL, NULL }
      };
      GType type = g_enum_register_static (g_intern_static_string ("ExoResourceState"), values);
      g_once_init_leave (&type_id, type);
    }

  return type_id;
}

GType
exo_jitter_get_type (void)
{
  static gsize type_id = 0;

  if (g_once_init_enter (&type_id))
    {
      static const GEnumValue values[] = {
        { EXO_JITTER_FULL, "EXO_JITTER_FULL", "full" },
        { EXO_JITTER_EQUAL, "EXO_JITTER_EQUAL", "equal" },
        { EXO_JITTER_DECORRELATED, "EXO_JITTER_DECORRELATED", "decorrelated" },
        { EXO_JITTER_NONE, "EXO_JITTER_NONE", "none" },
        { 0, NULL, NULL }
      };
      GType type = g_enum_register_static (g_intern_static_string ("ExoJitter"), values);
      g_once_init_leave (&type_id, type);
    }

  return type_id;
}

static const GEnumValue result_values[] = {
  { EXO_RESOURCE_RESULT_SUCCESS, "EXO_RESOURCE_RESULT_SUCCESS", "success" },
  { EXO_RESOURCE_RESULT_FAILED, "EXO_RESOURCE_RESULT_FAILED", "failed" },
  { EXO_RESOURCE_RESULT_TIMEOUT, "EXO_RESOURCE_RESULT_TIMEOUT", "timeout" },
  { EXO_RESOURCE_RESULT_UNHEALTHY, "EXO_RESOURCE_RESULT_UNHEALTHY", "unhealthy" },
  { EXO_RESOURCE_RESULT_START_LIMIT_HIT, "EXO_RESOURCE_RESULT_START_LIMIT_HIT", "start-limit-hit" },
  { 0, NULL, NULL }
};

GType
exo_resource_result_get_type (void)
{
  static gsize type_id = 0;

  if (g_once_init_enter (&type_id))
    {
      GType type = g_enum_register_static (g_intern_static_string ("ExoResourceResult"),
                                           result_values);
      g_once_init_leave (&type_id, type);
    }

  return type_id;
}

/**
 * exo_resource_result_to_string:
 * @result: a result
 *
 * Returns: (transfer none): the result's nick, e.g. `"start-limit-hit"`, or
 *   `"invalid"`
 */
const char *
exo_resource_result_to_string (ExoResourceResult result)
{
  if ((guint) result > EXO_RESOURCE_RESULT_START_LIMIT_HIT)
    return "invalid";
  return result_values[result].value_nick;
}

/**
 * exo_resource_state_to_string:
 * @state: a state
 *
 * Returns: (transfer none): the state's nick, e.g. `"ready"`, or `"invalid"`
 */
const char *
exo_resource_state_to_string (ExoResourceState state)
{
  if ((guint) state >= EXO_RESOURCE_STATE_LAST)
    return "invalid";
  return state_names[state];
}

/**
 * exo_resource_state_from_string:
 * @str: a nick such as `"ready"`
 * @out_state: (out): where to store the state
 *
 * Returns: %TRUE if @str names a state
 */
gboolean
exo_resource_state_from_string (const char       *str,
                                ExoResourceState *out_state)
{
  g_return_val_if_fail (out_state != NULL, FALSE);

  if (str == NULL)
    return FALSE;

  for (guint i = 0; i < EXO_RESOURCE_STATE_LAST; i++)
    if (strcmp (str, state_names[i]) == 0)
      {
        *out_state = (ExoResourceState) i;
        return TRUE;
      }

  return FALSE;
}

/**
 * exo_resource_state_is_usable:
 * @state: a state
 *
 * Returns: %TRUE for `ready` and `degraded`: the resource was initialized
 *   and can be used
 */
gboolean
exo_resource_state_is_usable (ExoResourceState state)
{
  return state == EXO_RESOURCE_STATE_READY || state == EXO_RESOURCE_STATE_DEGRADED;
}

const char *
exo_jitter_to_string (ExoJitter jitter)
{
  if ((guint) jitter >= G_N_ELEMENTS (jitter_names))
    return "invalid";
  return jitter_names[jitter];
}

gboolean
exo_jitter_from_string (const char *str,
                        ExoJitter  *out_jitter)
{
  g_return_val_if_fail (out_jitter != NULL, FALSE);

  if (str == NULL)
    return FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (jitter_names); i++)
    if (strcmp (str, jitter_names[i]) == 0)
      {
        *out_jitter = (ExoJitter) i;
        return TRUE;
      }

  return FALSE;
}

/* The domain's quark, and the codes as a registered enum: with both,
 * g-ir-scanner pairs them and emits ExoResourceError with
 * glib:error-domain, so bindings see `Exo.ResourceError` as an error domain
 * (without the GType the scanner filed the quark function under the
 * ExoResource class and the enum lost its domain). */
G_DEFINE_QUARK (exo-resource-error-quark, exo_resource_error)

GType
exo_resource_error_get_type (void)
{
  static gsize type_id = 0;

  if (g_once_init_enter (&type_id))
    {
      static const GEnumValue values[] = {
        { EXO_RESOURCE_ERROR_FAILED, "EXO_RESOURCE_ERROR_FAILED", "failed" },
        { EXO_RESOURCE_ERROR_INVALID_STATE, "EXO_RESOURCE_ERROR_INVALID_STATE", "invalid-state" },
        { EXO_RESOURCE_ERROR_CLOSED, "EXO_RESOURCE_ERROR_CLOSED", "closed" },
        { EXO_RESOURCE_ERROR_RESTART_LIMIT, "EXO_RESOURCE_ERROR_RESTART_LIMIT", "restart-limit" },
        { EXO_RESOURCE_ERROR_FATAL, "EXO_RESOURCE_ERROR_FATAL", "fatal" },
        { EXO_RESOURCE_ERROR_NOT_FOUND, "EXO_RESOURCE_ERROR_NOT_FOUND", "not-found" },
        { EXO_RESOURCE_ERROR_DEPENDENCY, "EXO_RESOURCE_ERROR_DEPENDENCY", "dependency" },
        { EXO_RESOURCE_ERROR_EXHAUSTED, "EXO_RESOURCE_ERROR_EXHAUSTED", "exhausted" },
        { EXO_RESOURCE_ERROR_UNHEALTHY, "EXO_RESOURCE_ERROR_UNHEALTHY", "unhealthy" },
        { 0, NULL, NULL }
      };
      GType type = g_enum_register_static (g_intern_static_string ("ExoResourceError"), values);
      g_once_init_leave (&type_id, type);
    }

  return type_id;
}

/**
 * exo_error_is_retryable:
 * @error: an error
 *
 * Tells transient failures from permanent ones.  Cancellation, invalid
 * arguments, missing support, permission problems, %EXO_RESOURCE_ERROR_FATAL,
 * %EXO_RESOURCE_ERROR_CLOSED and %EXO_RESOURCE_ERROR_RESTART_LIMIT are not
 * retryable; everything else is.
 *
 * Returns: %TRUE if another attempt may succeed
 */
gboolean
exo_error_is_retryable (const GError *error)
{
  if (error == NULL)
    return TRUE;

  if (error->domain == G_IO_ERROR)
    {
      switch (error->code)
        {
        case G_IO_ERROR_CANCELLED:
        case G_IO_ERROR_INVALID_ARGUMENT:
        case G_IO_ERROR_NOT_SUPPORTED:
        case G_IO_ERROR_PERMISSION_DENIED:
        case G_IO_ERROR_INVALID_DATA:
          return FALSE;
        default:
          return TRUE;
        }
    }

  if (error->domain == EXO_RESOURCE_ERROR)
    {
      switch (error->code)
        {
        case EXO_RESOURCE_ERROR_FATAL:
        case EXO_RESOURCE_ERROR_CLOSED:
        case EXO_RESOURCE_ERROR_RESTART_LIMIT:
        case EXO_RESOURCE_ERROR_INVALID_STATE:
          return FALSE;
        default:
          return TRUE;
        }
    }

  return TRUE;
}
