/* exo-generation-params.h: ExoGenerationParams, how a request asks to be
 * generated (length, sampling), carried from the user API to the node that
 * samples.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-types.h>

G_BEGIN_DECLS

#define EXO_TYPE_GENERATION_PARAMS (exo_generation_params_get_type ())

/**
 * ExoGenerationParams:
 * @max_tokens: the most tokens to generate; 0 for the node's default (its
 *   `max-tokens` setting).  A node never generates more than its own
 *   `max-tokens`, whatever is asked.
 * @temperature: the sampling temperature, from 0 to 2; 0 samples greedily
 *   (the most likely token)
 * @top_p: nucleus sampling: sample among the most likely tokens whose
 *   probabilities add up to @top_p, greater than 0 and at most 1 (1: all)
 * @seed: the seed of the sampler's random numbers, when @has_seed
 * @has_seed: whether @seed is set; without it the sampler seeds itself
 * @stop: (array zero-terminated=1) (nullable): the user's `stop`: at most
 *   %EXO_GENERATION_MAX_STOP non-empty strings of at most
 *   %EXO_GENERATION_MAX_STOP_LEN bytes; %NULL for none.  Owned by the
 *   parameters: set it with exo_generation_params_set_stop().  New in
 *   plugin ABI 3.1.
 * @origin: (nullable): the id of the node that answers the request's
 *   client (the API node), set by that node; %NULL when unknown.  The node
 *   of the last shard sends each token's result to it alone (the ending
 *   one to every node of the ring); without it, to every node.  At most
 *   %EXO_GENERATION_MAX_ORIGIN_LEN bytes of UTF-8.  Owned by the
 *   parameters: set it with exo_generation_params_set_origin().  New in
 *   plugin ABI 3.2.
 *
 * How a request asks to be generated: the user API's `max_tokens`,
 * `temperature`, `top_p`, `seed` and `stop`.  The API node gets them with
 * [vfunc@Exo.NodeRole.chat_async]; they travel with the request through
 * the ring (peer RPC) to the node of the last shard, which samples with
 * them and stops at @max_tokens.  @stop stays with the API node, which
 * decodes the tokens: it ends the request as soon as the text contains
 * one of the strings, answers the text before it (the string left out)
 * with the finish reason `"stop"`, and cancels the request on every node
 * of its ring.  Meanwhile the text it passes to the token callback holds
 * back what may be the start of a stop string.
 *
 * Make one with exo_generation_params_new(), which fills in the defaults
 * (max_tokens 0, temperature 0, top_p 1, no seed, no stop strings), then
 * set the fields.  Where a #ExoGenerationParams argument is %NULL, the
 * defaults apply.  New in plugin ABI 2.0.
 */
typedef struct {
  guint    max_tokens;
  double   temperature;
  double   top_p;
  gint64   seed;
  gboolean has_seed;
  char   **stop;
  char    *origin;

  /*< private >*/
  gpointer padding[2];
} ExoGenerationParams;

/**
 * EXO_GENERATION_MAX_STOP:
 *
 * The most stop strings a request carries (OpenAI's limit).  New in
 * plugin ABI 3.1.
 */
#define EXO_GENERATION_MAX_STOP 4

/**
 * EXO_GENERATION_MAX_STOP_LEN:
 *
 * The longest stop string, in bytes.  New in plugin ABI 3.1.
 */
#define EXO_GENERATION_MAX_STOP_LEN 256

/**
 * EXO_GENERATION_MAX_ORIGIN_LEN:
 *
 * The longest #ExoGenerationParams:origin, in bytes.  New in plugin ABI
 * 3.2.
 */
#define EXO_GENERATION_MAX_ORIGIN_LEN 128

EXO_AVAILABLE_IN_ALL
GType                exo_generation_params_get_type (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
ExoGenerationParams *exo_generation_params_new      (void);
EXO_AVAILABLE_IN_ALL
ExoGenerationParams *exo_generation_params_copy     (const ExoGenerationParams *params);
EXO_AVAILABLE_IN_ALL
void                 exo_generation_params_free     (ExoGenerationParams       *params);
EXO_AVAILABLE_IN_ALL
gboolean             exo_generation_params_set_stop (ExoGenerationParams       *params,
                                                     const char * const        *stop,
                                                     GError                   **error);
EXO_AVAILABLE_IN_ALL
gboolean             exo_generation_params_set_origin (ExoGenerationParams     *params,
                                                       const char              *origin,
                                                       GError                 **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoGenerationParams, exo_generation_params_free)

G_END_DECLS
