/* bench-llama-ref.c: the floor for bench-llama.c — the plainest
 * single-threaded decoder of a legacy llama2.c float32 checkpoint, one
 * position at a time, with the textbook loops, compiled -O3 -ffast-math
 * (tests/bench/meson.build) so the compiler may vectorise and reassociate
 * everything.  The engine's kernels are held to being at least as fast
 * while keeping a fixed summation order.
 *
 * Owns the file's bytes (read into memory) and its scratch buffers.
 * Thread rules: one thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bench-llama-ref.h"

#include <math.h>
#include <string.h>

struct _RefModel
{
  char  *data;
  int    dim, hidden, layers, heads, kv_heads, vocab, seq, head_size, kv_dim;
  float *emb, *att_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w1, *w2, *w3, *final_norm, *cls;
  float *x, *xb, *xb2, *q, *hb, *hb2, *att, *logits, *keys, *values;
};

RefModel *
ref_model_open (const char *path)
{
  RefModel *m = g_new0 (RefModel, 1);
  gsize len;
  int *h;
  float *p;

  if (!g_file_get_contents (path, &m->data, &len, NULL))
    {
      g_free (m);
      return NULL;
    }
  h = (int *) (void *) m->data;
  m->dim = h[0], m->hidden = h[1], m->layers = h[2], m->heads = h[3], m->kv_heads = h[4];
  m->vocab = abs (h[5]), m->seq = h[6];
  m->head_size = m->dim / m->heads;
  m->kv_dim = m->head_size * m->kv_heads;
  p = (float *) (void *) (m->data + 28);
  m->emb = p, p += (gsize) m->vocab * m->dim;
  m->att_norm = p, p += (gsize) m->layers * m->dim;
  m->wq = p, p += (gsize) m->layers * m->dim * m->dim;
  m->wk = p, p += (gsize) m->layers * m->kv_dim * m->dim;
  m->wv = p, p += (gsize) m->layers * m->kv_dim * m->dim;
  m->wo = p, p += (gsize) m->layers * m->dim * m->dim;
  m->ffn_norm = p, p += (gsize) m->layers * m->dim;
  m->w1 = p, p += (gsize) m->layers * m->hidden * m->dim;
  m->w2 = p, p += (gsize) m->layers * m->dim * m->hidden;
  m->w3 = p, p += (gsize) m->layers * m->hidden * m->dim;
  m->final_norm = p, p += m->dim;
  p += (gsize) m->seq * m->head_size;   /* the two freq_cis tables */
  m->cls = h[5] > 0 ? m->emb : p;

  m->x = g_new0 (float, m->dim);
  m->xb = g_new0 (float, m->dim);
  m->xb2 = g_new0 (float, m->dim);
  m->q = g_new0 (float, m->dim);
  m->hb = g_new0 (float, m->hidden);
  m->hb2 = g_new0 (float, m->hidden);
  m->att = g_new0 (float, m->seq);
  m->logits = g_new0 (float, m->vocab);
  m->keys = g_new0 (float, (gsize) m->layers * m->seq * m->kv_dim);
  m->values = g_new0 (float, (gsize) m->layers * m->seq * m->kv_dim);
  return m;
}

void
ref_model_free (RefModel *m)
{
  g_free (m->x);
  g_free (m->xb);
  g_free (m->xb2);
  g_free (m->q);
  g_free (m->hb);
  g_free (m->hb2);
  g_free (m->att);
  g_free (m->logits);
  g_free (m->keys);
  g_free (m->values);
  g_free (m->data);
  g_free (m);
}

static void
norm (float *out, const float *x, const float *w, int n)
{
  float ss = 0;

  for (int i = 0; i < n; i++)
    ss += x[i] * x[i];
  ss = 1.0f / sqrtf (ss / n + 1e-5f);
  for (int i = 0; i < n; i++)
    out[i] = w[i] * ss * x[i];
}

/* out[r] = Σ_c w[r][c] x[c] */
static void
matvec (float *out, const float *w, const float *x, int rows, int cols)
{
  for (int r = 0; r < rows; r++)
    {
      float s = 0;

      for (int c = 0; c < cols; c++)
        s += w[(gsize) r * cols + c] * x[c];
      out[r] = s;
    }
}

static void
rotate (float *v, int n, int head_size, int pos)
{
  for (int i = 0; i < n; i += 2)
    {
      float theta = pos * powf (10000.0f, -(float) (i % head_size) / head_size);
      float c = cosf (theta), s = sinf (theta), a = v[i], b = v[i + 1];

      v[i] = a * c - b * s;
      v[i + 1] = a * s + b * c;
    }
}

int
ref_model_step (RefModel *m, int token, int pos)
{
  int d = m->dim, kv = m->kv_dim, hs = m->head_size, best = 0;

  memcpy (m->x, m->emb + (gsize) token * d, d * sizeof (float));
  for (int l = 0; l < m->layers; l++)
    {
      float *k = m->keys + ((gsize) l * m->seq + pos) * kv;
      float *v = m->values + ((gsize) l * m->seq + pos) * kv;

      norm (m->xb, m->x, m->att_norm + (gsize) l * d, d);
      matvec (m->q, m->wq + (gsize) l * d * d, m->xb, d, d);
      matvec (k, m->wk + (gsize) l * kv * d, m->xb, kv, d);
      matvec (v, m->wv + (gsize) l * kv * d, m->xb, kv, d);
      rotate (m->q, d, hs, pos);
      rotate (k, kv, hs, pos);
      for (int h = 0; h < m->heads; h++)
        {
          int kvh = h / (m->heads / m->kv_heads);
          float max = -INFINITY, sum = 0;

          for (int t = 0; t <= pos; t++)
            {
              const float *kt = m->keys + ((gsize) l * m->seq + t) * kv + kvh * hs;
              float s = 0;

              for (int i = 0; i < hs; i++)
                s += m->q[h * hs + i] * kt[i];
              m->att[t] = s / sqrtf (hs);
              max = fmaxf (max, m->att[t]);
            }
          for (int t = 0; t <= pos; t++)
            sum += m->att[t] = expf (m->att[t] - max);
          for (int i = 0; i < hs; i++)
            m->xb2[h * hs + i] = 0;
          for (int t = 0; t <= pos; t++)
            {
              const float *vt = m->values + ((gsize) l * m->seq + t) * kv + kvh * hs;

              for (int i = 0; i < hs; i++)
                m->xb2[h * hs + i] += m->att[t] / sum * vt[i];
            }
        }
      matvec (m->xb, m->wo + (gsize) l * d * d, m->xb2, d, d);
      for (int i = 0; i < d; i++)
        m->x[i] += m->xb[i];
      norm (m->xb, m->x, m->ffn_norm + (gsize) l * d, d);
      matvec (m->hb, m->w1 + (gsize) l * m->hidden * d, m->xb, m->hidden, d);
      matvec (m->hb2, m->w3 + (gsize) l * m->hidden * d, m->xb, m->hidden, d);
      for (int i = 0; i < m->hidden; i++)
        m->hb[i] = m->hb[i] / (1.0f + expf (-m->hb[i])) * m->hb2[i];
      matvec (m->xb, m->w2 + (gsize) l * d * m->hidden, m->hb, d, m->hidden);
      for (int i = 0; i < d; i++)
        m->x[i] += m->xb[i];
    }
  norm (m->xb, m->x, m->final_norm, d);
  matvec (m->logits, m->cls, m->xb, m->vocab, d);
  for (int i = 1; i < m->vocab; i++)
    if (m->logits[i] > m->logits[best])
      best = i;
  return best;
}
