/* llama-sampler.h: the next token from logits (greedy, temperature,
 * nucleus top-p) with an explicit random state.
 *
 * Thread rules: pure functions; the caller owns the random state.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* xorshift64* state: never 0. */
guint64 llama_rng_seed       (guint64        seed);
float   llama_rng_next_float (guint64       *state);

/* Greedy (the first maximum) when @temperature <= 0; otherwise softmax of
 * @logits / @temperature, then nucleus sampling when 0 < @top_p < 1.
 * @logits (n values) is left untouched.  -1 when a logit is not finite
 * (NaN or infinite): the model's output is broken. */
gint32  llama_sample         (const float   *logits,
                              guint          n,
                              double         temperature,
                              double         top_p,
                              guint64       *state);

G_END_DECLS
