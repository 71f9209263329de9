/* llama-model.h: a llama2.c checkpoint, mapped and validated, and the view
 * of the weights one shard (a range of layers) uses.
 *
 * Thread rules: a LlamaModel and a LlamaShardWeights are immutable once
 * made; their reference counts are atomic, so any thread may read them and
 * drop its reference.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "llama-kernels.h"

G_BEGIN_DECLS

/* Bounds on what a header may claim (a hostile file cannot make us allocate
 * or index beyond them). */
#define LLAMA_MAX_DIM        65536
#define LLAMA_MAX_HIDDEN_DIM (1 << 18)
#define LLAMA_MAX_LAYERS     1024
#define LLAMA_MAX_VOCAB      (1 << 20)
#define LLAMA_MAX_SEQ_LEN    (1 << 20)

typedef enum
{
  LLAMA_FORMAT_LEGACY,   /* 7 int32, float32 weights, freq_cis tables */
  LLAMA_FORMAT_V1,       /* "ak42" version 1: float32 */
  LLAMA_FORMAT_V2,       /* "ak42" version 2: int8 groups (Q8_0) */
} LlamaFormat;

typedef struct
{
  guint    dim;
  guint    hidden_dim;
  guint    n_layers;
  guint    n_heads;
  guint    n_kv_heads;
  guint    vocab_size;
  guint    seq_len;
  guint    head_size;          /* dim / n_heads */
  guint    kv_dim;             /* head_size * n_kv_heads */
  guint    group_size;         /* int8 group size (version 2), else 0 */
  gboolean shared_classifier;  /* the classifier is the token embedding */
} LlamaConfig;

typedef struct
{
  const float *attention_norm;
  const float *ffn_norm;
  LlamaMatrix  wq, wk, wv, wo;
  LlamaMatrix  w1, w2, w3;
} LlamaLayerWeights;

typedef struct _LlamaModel LlamaModel;

/* The weights of layers start..end (inclusive) of a model, with the token
 * embedding when start == 0 and the final norm and classifier when end is
 * the last layer; pointers into the mapping of the model it holds. */
typedef struct
{
  gint               ref_count;
  LlamaModel        *model;
  const LlamaConfig *config;
  guint              start_layer;
  guint              end_layer;
  gboolean           is_first;
  gboolean           is_last;
  LlamaMatrix        embedding;      /* first shard only */
  const float       *final_norm;     /* last shard only */
  LlamaMatrix        classifier;     /* last shard only */
  LlamaLayerWeights *layers;         /* end_layer - start_layer + 1 */
  guint64            weight_bytes;   /* the bytes of the file this shard uses */
} LlamaShardWeights;

LlamaModel        *llama_model_open               (const char   *path,
                                                   GError      **error);
LlamaModel        *llama_model_ref                (LlamaModel   *model);
void               llama_model_unref              (LlamaModel   *model);
const LlamaConfig *llama_model_get_config         (LlamaModel   *model);
LlamaFormat        llama_model_get_format         (LlamaModel   *model);
const char        *llama_model_get_path           (LlamaModel   *model);
/* "llama2c-sha256:" and 32 hex digits: a digest of the checkpoint's size,
 * its first 64 KiB and a few KiB of every tensor (not all of it). */
const char        *llama_model_get_digest         (LlamaModel   *model);
guint64            llama_model_get_file_size      (LlamaModel   *model);
const char        *llama_format_to_string         (LlamaFormat   format);

LlamaShardWeights *llama_model_get_shard          (LlamaModel   *model,
                                                   guint         start_layer,
                                                   guint         end_layer,
                                                   GError      **error);
LlamaShardWeights *llama_shard_weights_ref        (LlamaShardWeights *weights);
void               llama_shard_weights_unref      (LlamaShardWeights *weights);
/* Ask the kernel to read the shard's pages ahead (MADV_WILLNEED). */
void               llama_shard_weights_prefetch   (LlamaShardWeights *weights);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LlamaModel, llama_model_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LlamaShardWeights, llama_shard_weights_unref)

G_END_DECLS
