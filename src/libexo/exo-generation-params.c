/* exo-generation-params.c: ExoGenerationParams, how a request asks to be
 * generated (see exo-generation-params.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: the boxed type and its new, copy and free.  Rules: a plain value
 * with no lock and no global state; whoever holds a copy owns it, and any
 * thread may copy one that nobody changes.
 */
#include "exo-private.h"

#include <string.h>

G_DEFINE_BOXED_TYPE (ExoGenerationParams, exo_generation_params,
                     exo_generation_params_copy, exo_generation_params_free)

/**
 * exo_generation_params_new:
 *
 * Makes the parameters of a request that asks for nothing in particular:
 * max_tokens 0 (the node's `max-tokens`), temperature 0 (greedy), top_p 1,
 * no seed, no stop strings.
 *
 * Returns: (transfer full): new parameters; free them with
 *   exo_generation_params_free()
 */
ExoGenerationParams *
exo_generation_params_new (void)
{
  ExoGenerationParams *params = g_new0 (ExoGenerationParams, 1);

  params->max_tokens = 0;
  params->temperature = 0.0;
  params->top_p = 1.0;
  params->seed = 0;
  params->has_seed = FALSE;
  return params;
}

/**
 * exo_generation_params_copy:
 * @params: parameters
 *
 * Returns: (transfer full): a copy of @params
 */
ExoGenerationParams *
exo_generation_params_copy (const ExoGenerationParams *params)
{
  ExoGenerationParams *copy;

  g_return_val_if_fail (params != NULL, NULL);
  copy = g_memdup2 (params, sizeof *params);
  copy->stop = g_strdupv (params->stop);
  copy->origin = g_strdup (params->origin);
  return copy;
}

/**
 * exo_generation_params_free:
 * @params: (nullable): parameters
 *
 * Frees @params.
 */
void
exo_generation_params_free (ExoGenerationParams *params)
{
  if (params == NULL)
    return;
  g_strfreev (params->stop);
  g_free (params->origin);
  g_free (params);
}

/**
 * exo_generation_params_set_stop:
 * @params: parameters
 * @stop: (array zero-terminated=1) (nullable): the stop strings; %NULL or
 *   empty for none
 * @error: return location for a #GError
 *
 * Sets the strings that end the request's text (#ExoGenerationParams:stop),
 * copied.  Empty strings are left out.  Refused, and @params left as it
 * was, with %G_IO_ERROR_INVALID_ARGUMENT naming the limit: more than
 * %EXO_GENERATION_MAX_STOP strings, one longer than
 * %EXO_GENERATION_MAX_STOP_LEN bytes or not valid UTF-8.
 *
 * Returns: whether @stop was set
 *
 * Since: plugin ABI 3.1
 */
gboolean
exo_generation_params_set_stop (ExoGenerationParams *params,
                                const char * const  *stop,
                                GError             **error)
{
  g_autoptr(GPtrArray) kept = NULL;
  guint n = stop != NULL ? g_strv_length ((char **) stop) : 0;

  g_return_val_if_fail (params != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (n > EXO_GENERATION_MAX_STOP)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%u stop strings; at most %d", n, EXO_GENERATION_MAX_STOP);
      return FALSE;
    }
  kept = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < n; i++)
    {
      gsize len = strlen (stop[i]);

      if (len > EXO_GENERATION_MAX_STOP_LEN || !g_utf8_validate (stop[i], (gssize) len, NULL))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "stop string %u is longer than %d bytes or not UTF-8", i,
                       EXO_GENERATION_MAX_STOP_LEN);
          return FALSE;
        }
      if (len > 0)
        g_ptr_array_add (kept, g_strdup (stop[i]));
    }
  g_strfreev (params->stop);
  params->stop = NULL;
  if (kept->len > 0)
    {
      g_ptr_array_add (kept, NULL);
      g_ptr_array_set_free_func (kept, NULL);
      params->stop = (char **) g_ptr_array_free (g_steal_pointer (&kept), FALSE);
    }
  return TRUE;
}

/**
 * exo_generation_params_set_origin:
 * @params: parameters
 * @origin: (nullable): the id of the node that answers the request's
 *   client; %NULL or empty for unknown
 * @error: return location for a #GError
 *
 * Sets #ExoGenerationParams:origin, copied.  Refused, and @params left as
 * it was, with %G_IO_ERROR_INVALID_ARGUMENT: longer than
 * %EXO_GENERATION_MAX_ORIGIN_LEN bytes, not valid UTF-8, or holding a
 * control character.
 *
 * Returns: whether @origin was set
 *
 * Since: plugin ABI 3.2
 */
gboolean
exo_generation_params_set_origin (ExoGenerationParams *params,
                                  const char          *origin,
                                  GError             **error)
{
  gsize len = origin != NULL ? strlen (origin) : 0;

  g_return_val_if_fail (params != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (len > EXO_GENERATION_MAX_ORIGIN_LEN || !g_utf8_validate (origin, (gssize) len, NULL))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "the origin node id is longer than %d bytes or not UTF-8",
                   EXO_GENERATION_MAX_ORIGIN_LEN);
      return FALSE;
    }
  for (gsize i = 0; i < len; i++)
    if ((guchar) origin[i] < 0x20 || origin[i] == 0x7f)
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                     "the origin node id holds a control character at byte %" G_GSIZE_FORMAT, i);
        return FALSE;
      }
  g_free (params->origin);
  params->origin = len > 0 ? g_strdup (origin) : NULL;
  return TRUE;
}
