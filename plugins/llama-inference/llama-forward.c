/* llama-forward.c: the Llama forward pass (RMSNorm, RoPE, grouped-query
 * attention with a KV cache, SwiGLU feed-forward, classifier) over the
 * layers of one shard, for a batch of consecutive positions.
 *
 * Owns the KV cache type.  Thread rules: see llama-forward.h.
 *
 * A batch goes through the layers in chunks of CHUNK positions: each
 * weight row is read once per chunk and multiplied with every position of
 * it, so a prompt costs far less than one step per token.  Every value is
 * computed by the same kernels in the same order as a single step would
 * compute it, so prefill, decode, any chunking and any sharding give
 * bit-identical activations and logits.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "llama-forward.h"

#include <gio/gio.h>
#include <math.h>
#include <string.h>

#define CHUNK 32

struct _LlamaKVCache
{
  guint   n_layers;
  guint   kv_dim;
  guint   capacity;   /* positions */
  float **keys;       /* per layer: capacity × kv_dim */
  float **values;
};

LlamaKVCache *
llama_kv_cache_new (guint n_layers,
                    guint kv_dim)
{
  LlamaKVCache *kv = g_new0 (LlamaKVCache, 1);

  kv->n_layers = n_layers;
  kv->kv_dim = kv_dim;
  kv->keys = g_new0 (float *, n_layers);
  kv->values = g_new0 (float *, n_layers);
  return kv;
}

void
llama_kv_cache_free (LlamaKVCache *kv)
{
  if (kv == NULL)
    return;
  for (guint l = 0; l < kv->n_layers; l++)
    {
      g_free (kv->keys[l]);
      g_free (kv->values[l]);
    }
  g_free (kv->keys);
  g_free (kv->values);
  g_free (kv);
}

gboolean
llama_kv_cache_reserve (LlamaKVCache  *kv,
                        guint          n_positions,
                        guint          max_positions,
                        GError       **error)
{
  guint capacity = MAX (kv->capacity, 16);
  gsize bytes;

  g_assert (n_positions <= max_positions);
  if (n_positions <= kv->capacity)
    return TRUE;
  while (capacity < n_positions)
    capacity = capacity > G_MAXUINT / 2 ? n_positions : capacity * 2;
  capacity = MIN (capacity, max_positions);
  bytes = (gsize) capacity * kv->kv_dim * sizeof (float);
  for (guint l = 0; l < kv->n_layers; l++)
    {
      float *k = g_try_realloc (kv->keys[l], bytes);
      float *v;

      if (k != NULL)
        kv->keys[l] = k;
      v = k != NULL ? g_try_realloc (kv->values[l], bytes) : NULL;
      if (v == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                       "out of memory for a KV cache of %u positions (%" G_GSIZE_FORMAT
                       " bytes per layer)", capacity, 2 * bytes);
          /* the layers done so far keep their larger blocks; capacity
           * stays what every layer has */
          return FALSE;
        }
      kv->values[l] = v;
    }
  kv->capacity = capacity;
  return TRUE;
}

gsize
llama_kv_cache_get_bytes (LlamaKVCache *kv)
{
  return (gsize) 2 * kv->n_layers * kv->capacity * kv->kv_dim * sizeof (float);
}

/* Rotates the pairs (v[2j], v[2j+1]) of each head of @vec by pos × θ_j,
 * θ_j = 10000^(−2j / head_size) (llama2.c's RoPE). */
static void
rope (float       *vec,
      guint        n,
      guint        head_size,
      const float *cos_sin)
{
  for (guint i = 0; i < n; i += 2)
    {
      guint j = (i % head_size) / 2;
      float c = cos_sin[2 * j], s = cos_sin[2 * j + 1];
      float v0 = vec[i], v1 = vec[i + 1];

      vec[i] = v0 * c - v1 * s;
      vec[i + 1] = v0 * s + v1 * c;
    }
}

static void
rope_table (float *cos_sin,
            guint  head_size,
            guint  pos)
{
  for (guint j = 0; j < head_size / 2; j++)
    {
      double freq = 1.0 / pow (10000.0, (double) (2 * j) / (double) head_size);
      double angle = (double) pos * freq;

      cos_sin[2 * j] = (float) cos (angle);
      cos_sin[2 * j + 1] = (float) sin (angle);
    }
}

typedef struct
{
  float *x;       /* CHUNK × dim: the residual stream */
  float *xb;      /* CHUNK × dim */
  float *xb2;     /* CHUNK × dim */
  float *q;       /* CHUNK × dim */
  float *hb;      /* CHUNK × hidden_dim */
  float *hb2;     /* CHUNK × hidden_dim */
  float *att;     /* positions */
  float *cos_sin; /* CHUNK × head_size: the RoPE tables of the chunk's positions */
} Scratch;

/* Attention of position @pos (query @q) over the cached positions 0..pos
 * of one layer; the heads' outputs go to @out (dim). */
static void
attention (const LlamaConfig *cfg,
           const float       *keys,
           const float       *values,
           const float       *q,
           guint              pos,
           float             *att,
           float             *out)
{
  guint hs = cfg->head_size, group = cfg->n_heads / cfg->n_kv_heads;
  float scale = 1.0f / sqrtf ((float) hs);

  for (guint h = 0; h < cfg->n_heads; h++)
    {
      guint kv_offset = (h / group) * hs;

      llama_attend (q + h * hs, keys + kv_offset, values + kv_offset, cfg->kv_dim, pos + 1, hs,
                    scale, att, out + h * hs);
    }
}

static void
run_layer (const LlamaConfig       *cfg,
           const LlamaLayerWeights *lw,
           float                   *keys,
           float                   *values,
           LlamaTeam               *team,
           Scratch                 *s,
           guint                    pos0,
           guint                    nb)
{
  guint dim = cfg->dim, kv_dim = cfg->kv_dim, hidden = cfg->hidden_dim;
  float *k_rows = keys + (gsize) pos0 * kv_dim;
  float *v_rows = values + (gsize) pos0 * kv_dim;

  /* attention */
  for (guint b = 0; b < nb; b++)
    llama_rmsnorm (s->xb + b * dim, s->x + b * dim, lw->attention_norm, dim);
  llama_matmul (team, s->q, dim, &lw->wq, s->xb, dim, nb);
  llama_matmul (team, k_rows, kv_dim, &lw->wk, s->xb, dim, nb);
  llama_matmul (team, v_rows, kv_dim, &lw->wv, s->xb, dim, nb);
  for (guint b = 0; b < nb; b++)
    {
      const float *cos_sin = s->cos_sin + (gsize) b * cfg->head_size;

      rope (s->q + b * dim, dim, cfg->head_size, cos_sin);
      rope (k_rows + b * kv_dim, kv_dim, cfg->head_size, cos_sin);
    }
  for (guint b = 0; b < nb; b++)
    attention (cfg, keys, values, s->q + b * dim, pos0 + b, s->att, s->xb2 + b * dim);
  llama_matmul (team, s->xb, dim, &lw->wo, s->xb2, dim, nb);
  for (gsize i = 0; i < (gsize) nb * dim; i++)
    s->x[i] += s->xb[i];

  /* feed-forward */
  for (guint b = 0; b < nb; b++)
    llama_rmsnorm (s->xb + b * dim, s->x + b * dim, lw->ffn_norm, dim);
  llama_matmul (team, s->hb, hidden, &lw->w1, s->xb, dim, nb);
  llama_matmul (team, s->hb2, hidden, &lw->w3, s->xb, dim, nb);
  llama_swiglu (s->hb, s->hb2, nb * hidden);
  llama_matmul (team, s->xb, dim, &lw->w2, s->hb, hidden, nb);
  for (gsize i = 0; i < (gsize) nb * dim; i++)
    s->x[i] += s->xb[i];
}

void
llama_forward (const LlamaShardWeights *w,
               LlamaKVCache            *kv,
               LlamaTeam               *team,
               guint                    pos0,
               guint                    n,
               const gint32            *tokens,
               const float             *x_in,
               float                   *out)
{
  const LlamaConfig *cfg = w->config;
  guint dim = cfg->dim, n_layers = w->end_layer - w->start_layer + 1;
  Scratch s;

  g_assert (team != NULL && n > 0 && pos0 + n <= kv->capacity && kv->n_layers == n_layers);

  s.x = llama_team_scratch (team, LLAMA_SCRATCH_X, (gsize) CHUNK * dim * sizeof (float));
  s.xb = llama_team_scratch (team, LLAMA_SCRATCH_XB, (gsize) CHUNK * dim * sizeof (float));
  s.xb2 = llama_team_scratch (team, LLAMA_SCRATCH_XB2, (gsize) CHUNK * dim * sizeof (float));
  s.q = llama_team_scratch (team, LLAMA_SCRATCH_Q, (gsize) CHUNK * dim * sizeof (float));
  s.hb = llama_team_scratch (team, LLAMA_SCRATCH_HB,
                             (gsize) CHUNK * cfg->hidden_dim * sizeof (float));
  s.hb2 = llama_team_scratch (team, LLAMA_SCRATCH_HB2,
                              (gsize) CHUNK * cfg->hidden_dim * sizeof (float));
  s.att = llama_team_scratch (team, LLAMA_SCRATCH_ATT, (gsize) (pos0 + n) * sizeof (float));
  s.cos_sin = llama_team_scratch (team, LLAMA_SCRATCH_ROPE,
                                  (gsize) CHUNK * cfg->head_size * sizeof (float));

  for (guint c0 = 0; c0 < n; c0 += CHUNK)
    {
      guint nb = MIN (CHUNK, n - c0);

      if (w->is_first)
        for (guint b = 0; b < nb; b++)
          llama_matrix_get_row (&w->embedding, (guint) tokens[c0 + b], s.x + (gsize) b * dim);
      else
        memcpy (s.x, x_in + (gsize) c0 * dim, (gsize) nb * dim * sizeof (float));

      /* the same tables for every layer: made once per chunk */
      for (guint b = 0; b < nb; b++)
        rope_table (s.cos_sin + (gsize) b * cfg->head_size, cfg->head_size, pos0 + c0 + b);
      for (guint l = 0; l < n_layers; l++)
        run_layer (cfg, &w->layers[l], kv->keys[l], kv->values[l], team, &s, pos0 + c0, nb);

      if (!w->is_last)
        memcpy (out + (gsize) c0 * dim, s.x, (gsize) nb * dim * sizeof (float));
      else if (c0 + nb == n)
        {
          /* only the last position's logits are asked for */
          llama_rmsnorm (s.xb, s.x + (gsize) (nb - 1) * dim, w->final_norm, dim);
          llama_matmul (team, out, cfg->vocab_size, &w->classifier, s.xb, dim, 1);
        }
    }
}
