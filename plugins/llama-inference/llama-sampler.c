/* llama-sampler.c: greedy, temperature and top-p sampling.
 *
 * The random numbers are xorshift64* (Vigna) with the state seeded through
 * splitmix64, so that every seed (0 too) gives a good, non-zero state and
 * the same seed gives the same tokens on every machine.  NaN logits (from
 * a broken peer) never index out of bounds: they count as the lowest.
 *
 * Thread rules: see llama-sampler.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "llama-sampler.h"

#include <math.h>
#include <stdlib.h>

guint64
llama_rng_seed (guint64 seed)
{
  guint64 z = seed + G_GUINT64_CONSTANT (0x9E3779B97F4A7C15);

  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94D049BB133111EB);
  z ^= z >> 31;
  return z != 0 ? z : G_GUINT64_CONSTANT (0x2545F4914F6CDD1D);
}

/* A float in [0, 1) from the top 24 bits of the next output. */
float
llama_rng_next_float (guint64 *state)
{
  guint64 x = *state;

  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return (float) ((x * G_GUINT64_CONSTANT (0x2545F4914F6CDD1D)) >> 40) / 16777216.0f;
}

static gint32
argmax (const float *x,
        guint        n)
{
  gint32 best = 0;

  for (guint i = 1; i < n; i++)
    if (x[i] > x[best] || (isnan (x[best]) && !isnan (x[i])))
      best = i;
  return best;
}

typedef struct
{
  float  p;
  gint32 id;
} Candidate;

static int
candidate_compare (const void *a,
                   const void *b)
{
  const Candidate *ca = a, *cb = b;

  if (ca->p > cb->p)
    return -1;
  if (ca->p < cb->p)
    return 1;
  return ca->id < cb->id ? -1 : ca->id > cb->id;
}

gint32
llama_sample (const float *logits,
              guint        n,
              double       temperature,
              double       top_p,
              guint64     *state)
{
  g_autofree float *probs = NULL;
  float max, sum = 0.0f, coin, cdf = 0.0f;
  float inv_t;
  gint32 best;

  g_assert (n > 0);
  /* a logit that is not finite (NaN, infinite): the output is broken — a
   * corrupt checkpoint here or before us in the ring — not a token */
  for (guint i = 0; i < n; i++)
    if (!isfinite (logits[i]))
      return -1;
  best = argmax (logits, n);
  if (!(temperature > 0.0))
    return best;

  /* softmax of logits / temperature; NaN becomes probability 0 */
  probs = g_new (float, n);
  inv_t = (float) (1.0 / temperature);
  max = logits[best] * inv_t;
  for (guint i = 0; i < n; i++)
    {
      float v = expf (logits[i] * inv_t - max);

      probs[i] = isnan (v) ? 0.0f : v;
      sum += probs[i];
    }
  if (!(sum > 0.0f) || !isfinite (sum))
    return argmax (logits, n);
  for (guint i = 0; i < n; i++)
    probs[i] /= sum;

  coin = llama_rng_next_float (state);
  if (top_p > 0.0 && top_p < 1.0)
    {
      /* nucleus: the smallest set of the most likely tokens whose mass
       * reaches top_p; tokens below (1 - top_p) / (n - 1) cannot be in it */
      g_autofree Candidate *cands = g_new (Candidate, n);
      float cutoff = n > 1 ? (float) ((1.0 - top_p) / (n - 1)) : 0.0f;
      guint m = 0, last;
      float mass = 0.0f;

      for (guint i = 0; i < n; i++)
        if (probs[i] >= cutoff)
          {
            cands[m].p = probs[i];
            cands[m].id = i;
            m++;
          }
      if (m == 0)
        return argmax (logits, n);
      qsort (cands, m, sizeof (Candidate), candidate_compare);
      last = m - 1;
      for (guint i = 0; i < m; i++)
        {
          mass += cands[i].p;
          if (mass > (float) top_p)
            {
              last = i;
              break;
            }
        }
      coin *= mass;
      for (guint i = 0; i <= last; i++)
        {
          cdf += cands[i].p;
          if (coin < cdf)
            return cands[i].id;
        }
      return cands[last].id;
    }

  for (guint i = 0; i < n; i++)
    {
      cdf += probs[i];
      if (coin < cdf)
        return i;
    }
  return argmax (logits, n);
}
