/* llama-forward.h: the Llama forward pass over a shard's layers, and the
 * KV cache of one request on that shard.
 *
 * Thread rules: a LlamaKVCache belongs to one request and is used by one
 * thread at a time (the engine's worker); llama_forward() touches only the
 * cache it is given and the shard's read-only weights.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "llama-kernels.h"
#include "llama-model.h"

G_BEGIN_DECLS

typedef struct _LlamaKVCache LlamaKVCache;

LlamaKVCache *llama_kv_cache_new       (guint          n_layers,
                                        guint          kv_dim);
void          llama_kv_cache_free      (LlamaKVCache  *kv);
/* Makes room for positions [0, n_positions), growing by doubling up to
 * @max_positions; fails when memory runs out. */
gboolean      llama_kv_cache_reserve   (LlamaKVCache  *kv,
                                        guint          n_positions,
                                        guint          max_positions,
                                        GError       **error);
gsize         llama_kv_cache_get_bytes (LlamaKVCache  *kv);

/* Runs positions pos0 .. pos0 + n - 1 through the layers of @w, filling
 * their entries of @kv (reserved for pos0 + n positions beforehand).
 * Input: @tokens (n ids < vocab_size) on the first shard, else @x_in
 * (n × dim floats).  Output in @out: the logits of the last position
 * (vocab_size floats) on the last shard, else the activations (n × dim). */
void          llama_forward            (const LlamaShardWeights *w,
                                        LlamaKVCache            *kv,
                                        LlamaTeam               *team,
                                        guint                    pos0,
                                        guint                    n,
                                        const gint32            *tokens,
                                        const float             *x_in,
                                        float                   *out);

G_END_DECLS
