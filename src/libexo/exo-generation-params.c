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

G_DEFINE_BOXED_TYPE (ExoGenerationParams, exo_generation_params,
                     exo_generation_params_copy, exo_generation_params_free)

/**
 * exo_generation_params_new:
 *
 * Makes the parameters of a request that asks for nothing in particular:
 * max_tokens 0 (the node's `max-tokens`), temperature 0 (greedy), top_p 1,
 * no seed.
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
  g_return_val_if_fail (params != NULL, NULL);
  return g_memdup2 (params, sizeof *params);
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
  g_free (params);
}
