/* llama-kernels-private.h: what llama-kernels.c (the team, the portable
 * kernels and the choice of path) and llama-kernels-x86.c (the AVX2 and
 * AVX-512 copies) share; nothing else includes it.
 *
 * Thread rules: as llama-kernels.h — pure functions of their arguments.
 *
 * The rule every copy keeps: a CPU-specific kernel computes each output
 * with the same float operations in the same order as the portable one,
 * so that every path gives the same bits (tests/test-llama-kernels.c
 * compares them); only the integer sums, which are exact, and the loads
 * are organised differently.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "llama-kernels.h"

#include <string.h>

G_BEGIN_DECLS

/* A float dot product sums element i into lane i % LLAMA_LANES; the lanes
 * are folded in a fixed tree (llama_fold_lanes). */
#define LLAMA_LANES 16

/* A matmul streams its weights from memory (a decode step reads the whole
 * model once): it asks for the bytes this far ahead of the ones it reads
 * (a prefetch never faults, past the end of a mapping included).  Measured
 * on stories15M-shaped weights not in the cache: float32 a quarter less
 * time per step, int8 half. */
#define LLAMA_PREFETCH_BYTES 8192

/* What one matmul call needs, handed to the threads of the team. */
typedef struct
{
  float             *out;
  gsize              out_stride;
  const LlamaMatrix *w;
  const float       *x;
  gsize              x_stride;
  guint              batch;
  LlamaKernels       kernels;   /* the path, read once per call */
  const gint8       *xq;        /* int8: the quantised x rows, batch × cols */
  const float       *xs;        /* int8: their scales, batch × groups */
  const gint32      *xsum;      /* int8, AVX-512 path: Σ of each group's xq */
} LlamaMatmul;

static inline float
llama_load_scale (const guint8 *scales,
                  gsize         index)
{
  float s;

  memcpy (&s, scales + index * sizeof (float), sizeof s);
  return s;
}

/* acc[0..15] folded: acc[k] += acc[k + 8], then + 4, + 2, + 1. */
static inline float
llama_fold_lanes (float *acc)
{
  for (guint width = LLAMA_LANES / 2; width > 0; width /= 2)
    for (guint k = 0; k < width; k++)
      acc[k] += acc[k + width];
  return acc[0];
}

/* The lanes @acc plus the tail a[i..n) · b[i..n) (fewer than LLAMA_LANES
 * elements: element i + k into lane k), folded. */
static inline float
llama_finish_dot (float       *acc,
                  const float *a,
                  const float *b,
                  guint        i,
                  guint        n)
{
  for (guint k = 0; i < n; i++, k++)
    acc[k] += a[i] * b[i];
  return llama_fold_lanes (acc);
}

#if defined (__x86_64__) || defined (__i386__)
# define LLAMA_HAVE_X86 1

/* Rows [start, end) of a matmul; each returns the first row it did not
 * compute (the rest, fewer than a block, is the portable code's). */
guint llama_q8_rows_avx2     (const LlamaMatmul *m,
                              guint              start,
                              guint              end);
guint llama_q8_rows_avx512   (const LlamaMatmul *m,
                              guint              start,
                              guint              end);
void  llama_f32_rows_avx2    (const LlamaMatmul *m,
                              guint              start,
                              guint              end);
void  llama_attend_avx2      (const float       *q,
                              const float       *keys,
                              const float       *values,
                              gsize              stride,
                              guint              n_pos,
                              guint              head_size,
                              float              scale,
                              float             *att,
                              float             *out);
/* llama_quantize_q8 (), and the groups' sums of the int8 values */
void  llama_quantize_avx512  (gint8             *q,
                              float             *scales,
                              gint32            *sums,
                              const float       *x,
                              guint              n,
                              guint              group_size);
#endif

G_END_DECLS
