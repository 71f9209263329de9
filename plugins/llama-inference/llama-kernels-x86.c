/* llama-kernels-x86.c: the AVX2 and AVX-512 copies of the llama engine's
 * hot kernels, compiled with GCC function-level target attributes so that
 * the build stays portable; llama-kernels.c picks one path once, from
 * what the CPU has (llama_kernels_get ()).  AVX2: float32 matmul rows, the
 * attention, int8 matmul rows.  AVX-512: int8 matmul rows and the int8
 * quantiser; its float32 code is the AVX2 one (64-byte loads of rows that
 * a checkpoint does not align cross cache lines, and measured no faster:
 * the float32 matmul streams memory).
 *
 * Owns nothing.  Thread rules: pure functions of their arguments, called
 * by the threads of a team on disjoint output rows.
 *
 * Every copy gives the bits of the portable code (llama-kernels.c):
 * - float32: element i goes to lane i % 16 (two ymm), each lane adds
 *   w × x in order (multiply, then add: the file is compiled with
 *   -ffp-contract=off), then the tail and the fold of the portable code,
 *   as vector operations on the same pairs;
 * - int8: each (row, group) integer sum is exact, whatever instructions
 *   make it; then, per row and in group order, acc += (float) isum ×
 *   (w scale × x scale), eight rows side by side in a vector.
 * AVX2 multiplies |w| by x with w's sign (vpmaddubsw, which cannot
 * saturate here: 2 × 128 × 127 < 2^15).  AVX-512 VNNI (vpdpbusd: unsigned
 * × signed bytes) multiplies w + 128 (w xor 0x80, 0..255) by x and takes
 * 128 × Σ x of the group off the sum: exact for every int8 w, x in
 * -127..127.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "llama-kernels-private.h"

#ifdef LLAMA_HAVE_X86

#include <immintrin.h>

#define TARGET_AVX2   __attribute__ ((target ("avx2")))
#define TARGET_AVX512 __attribute__ ((target ("avx512f,avx512bw,avx512vl,avx512vnni")))

#define ROWS 8   /* rows per int8 block: one ymm of results */

/* The weights and scales stream from memory (a decode step reads each
 * byte once): each load asks for its bytes LLAMA_PREFETCH_BYTES ahead. */
#define PREFETCH(p) _mm_prefetch ((const char *) (p) + LLAMA_PREFETCH_BYTES, _MM_HINT_T0)

/* --- float32 ---------------------------------------------------------------- */

/* Lanes k < @n set (@n ≤ 8), for masked loads and stores. */
TARGET_AVX2 static inline __m256i
lanes_below (guint n)
{
  return _mm256_cmpgt_epi32 (_mm256_set1_epi32 ((int) n), _mm256_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7));
}

/* llama_finish_dot () on the lanes lo (0..7) and hi (8..15): the tail
 * products into lanes 0.. (a masked-off lane adds +0, which changes no
 * lane: a lane is never -0), then the fold, width 8, 4, 2, 1, as vector
 * adds of the same pairs. */
TARGET_AVX2 static inline float
finish_avx2 (__m256       lo,
             __m256       hi,
             const float *a,
             const float *b,
             guint        i,
             guint        n)
{
  __m128 s4, s2, s1;
  __m256 s8;

  if (i < n)
    {
      guint tail = n - i;
      __m256i m = lanes_below (MIN (tail, 8));

      lo = _mm256_add_ps (lo, _mm256_mul_ps (_mm256_maskload_ps (a + i, m), _mm256_maskload_ps (b + i, m)));
      if (tail > 8)
        {
          m = lanes_below (tail - 8);
          hi = _mm256_add_ps (hi, _mm256_mul_ps (_mm256_maskload_ps (a + i + 8, m),
                                                 _mm256_maskload_ps (b + i + 8, m)));
        }
    }
  s8 = _mm256_add_ps (lo, hi);
  s4 = _mm_add_ps (_mm256_castps256_ps128 (s8), _mm256_extractf128_ps (s8, 1));
  s2 = _mm_add_ps (s4, _mm_movehl_ps (s4, s4));
  s1 = _mm_add_ss (s2, _mm_shuffle_ps (s2, s2, 1));
  return _mm_cvtss_f32 (s1);
}

/* The dot products of one weight row @w with @nb (1 to 4) x rows; with
 * @prefetch, the row is asked for LLAMA_PREFETCH_BYTES ahead. */
TARGET_AVX2 static inline void
f32_dots_avx2 (const float *w,
               const float *x,
               gsize        x_stride,
               guint        nb,
               guint        n,
               gboolean     prefetch,
               float       *res)
{
  __m256 lo[4], hi[4];
  guint i = 0;

  for (guint b = 0; b < nb; b++)
    lo[b] = hi[b] = _mm256_setzero_ps ();
  for (; i + LLAMA_LANES <= n; i += LLAMA_LANES)
    {
      __m256 w0 = _mm256_loadu_ps (w + i), w1 = _mm256_loadu_ps (w + i + 8);

      if (prefetch)
        _mm_prefetch ((const char *) (w + i) + LLAMA_PREFETCH_BYTES, _MM_HINT_T0);
      for (guint b = 0; b < nb; b++)
        {
          const float *xb = x + b * x_stride + i;

          lo[b] = _mm256_add_ps (lo[b], _mm256_mul_ps (w0, _mm256_loadu_ps (xb)));
          hi[b] = _mm256_add_ps (hi[b], _mm256_mul_ps (w1, _mm256_loadu_ps (xb + 8)));
        }
    }
  for (guint b = 0; b < nb; b++)
    res[b] = finish_avx2 (lo[b], hi[b], w, x + b * x_stride, i, n);
}

/* The x rows four at a time (the weight row read once for them), then
 * the rest; nb is a constant in each call, so the loops unroll. */
TARGET_AVX2 void
llama_f32_rows_avx2 (const LlamaMatmul *m,
                     guint              start,
                     guint              end)
{
  guint cols = m->w->cols;

  for (guint r = start; r < end; r++)
    {
      const float *row = m->w->f32 + (gsize) r * cols;
      guint b = 0;
      float v[4];

      for (; b + 4 <= m->batch; b += 4)
        {
          f32_dots_avx2 (row, m->x + b * m->x_stride, m->x_stride, 4, cols, TRUE, v);
          for (guint k = 0; k < 4; k++)
            m->out[(b + k) * m->out_stride + r] = v[k];
        }
      if (b + 2 <= m->batch)
        {
          f32_dots_avx2 (row, m->x + b * m->x_stride, m->x_stride, 2, cols, TRUE, v);
          m->out[b * m->out_stride + r] = v[0];
          m->out[(b + 1) * m->out_stride + r] = v[1];
          b += 2;
        }
      if (b < m->batch)
        {
          f32_dots_avx2 (row, m->x + b * m->x_stride, m->x_stride, 1, cols, TRUE, v);
          m->out[b * m->out_stride + r] = v[0];
        }
    }
}

/* llama_attend (): the scores, the portable softmax, then out = Σ_t
 * att[t] v_t with out held in registers, 64 values at a time (each value
 * gets the same adds in the same order as the portable loop, from 0). */
TARGET_AVX2 void
llama_attend_avx2 (const float *q,
                   const float *keys,
                   const float *values,
                   gsize        stride,
                   guint        n_pos,
                   guint        head_size,
                   float        scale,
                   float       *att,
                   float       *out)
{
  for (guint t = 0; t < n_pos; t++)
    {
      float dot;

      f32_dots_avx2 (q, keys + t * stride, 0, 1, head_size, FALSE, &dot);
      att[t] = dot * scale;
    }
  llama_softmax (att, n_pos);
  for (guint c0 = 0; c0 < head_size; c0 += 64)
    {
      guint n = MIN (64, head_size - c0);
      __m256 o[8];
      __m256i m[8];

      for (guint j = 0; j < 8; j++)
        {
          o[j] = _mm256_setzero_ps ();
          m[j] = lanes_below (8 * j < n ? MIN (8, n - 8 * j) : 0);
        }
      for (guint t = 0; t < n_pos; t++)
        {
          const float *v = values + t * stride + c0;
          __m256 a = _mm256_set1_ps (att[t]);

          for (guint j = 0; j < 8; j++)
            if (8 * j < n)
              o[j] = _mm256_add_ps (o[j], _mm256_mul_ps (a, 8 * j + 8 <= n ? _mm256_loadu_ps (v + 8 * j)
                                                                          : _mm256_maskload_ps (v + 8 * j, m[j])));
        }
      for (guint j = 0; j < 8; j++)
        if (8 * j < n)
          _mm256_maskstore_ps (out + c0 + 8 * j, m[j], o[j]);
    }
}

/* --- int8: shared pieces ---------------------------------------------------- */

/* The scales of ROWS rows (@stride bytes apart) for groups g0 .. g0 + n - 1
 * (n ≤ 8), transposed: t[j][k] = scale of row k, group g0 + j. */
TARGET_AVX2 static inline void
transpose_scales (const guint8 *ws,
                  gsize         stride,
                  guint         g0,
                  guint         n,
                  float         t[8][ROWS])
{
  __m256 r[8], u[8], v[8];

  if (n < 8)
    {
      for (guint j = 0; j < n; j++)
        for (guint k = 0; k < ROWS; k++)
          t[j][k] = llama_load_scale (ws + k * stride, g0 + j);
      return;
    }
  for (guint k = 0; k < 8; k++)
    r[k] = _mm256_loadu_ps ((const float *) (const void *) (ws + k * stride) + g0);
  for (guint k = 0; k < 8; k += 2)
    {
      u[k] = _mm256_unpacklo_ps (r[k], r[k + 1]);       /* r0 c0, r1 c0, r0 c1, r1 c1 | c4 c5 */
      u[k + 1] = _mm256_unpackhi_ps (r[k], r[k + 1]);   /* c2, c3 | c6, c7 */
    }
  for (guint h = 0; h < 8; h += 4)
    {
      v[h] = _mm256_shuffle_ps (u[h], u[h + 2], 0x44);      /* rows h..h+3 of c0 | c4 */
      v[h + 1] = _mm256_shuffle_ps (u[h], u[h + 2], 0xee);  /* c1 | c5 */
      v[h + 2] = _mm256_shuffle_ps (u[h + 1], u[h + 3], 0x44);  /* c2 | c6 */
      v[h + 3] = _mm256_shuffle_ps (u[h + 1], u[h + 3], 0xee);  /* c3 | c7 */
    }
  for (guint j = 0; j < 4; j++)
    {
      _mm256_storeu_ps (t[j], _mm256_permute2f128_ps (v[j], v[j + 4], 0x20));
      _mm256_storeu_ps (t[j + 4], _mm256_permute2f128_ps (v[j], v[j + 4], 0x31));
    }
}

/* The scales of a block of ROWS rows, as far ahead as the weights are
 * (they stream gs / 4 times slower). */
TARGET_AVX2 static inline void
prefetch_scales (const guint8 *ws,
                 gsize         stride,
                 guint         gs)
{
  for (gsize off = 0; off < ROWS * stride; off += 64)
    _mm_prefetch ((const char *) ws + LLAMA_PREFETCH_BYTES / (gs / 4) + off, _MM_HINT_T0);
}

/* Eight vectors of eight int32 → their eight sums, in order. */
TARGET_AVX2 static inline __m256i
sum8x8 (const __m256i *v)
{
  __m256i q0 = _mm256_hadd_epi32 (_mm256_hadd_epi32 (v[0], v[1]), _mm256_hadd_epi32 (v[2], v[3]));
  __m256i q1 = _mm256_hadd_epi32 (_mm256_hadd_epi32 (v[4], v[5]), _mm256_hadd_epi32 (v[6], v[7]));

  /* q0: rows 0..3 of lanes 0..3 | of lanes 4..7; q1 likewise rows 4..7 */
  return _mm256_add_epi32 (_mm256_permute2x128_si256 (q0, q1, 0x21),
                           _mm256_blend_epi32 (q0, q1, 0xf0));
}

/* acc[k] += (float) isum[k] × (t[k] × xs), k < 8: the portable order. */
TARGET_AVX2 static inline __m256
scale_add (__m256       acc,
           __m256i      isum,
           const float *t,
           float        xs)
{
  __m256 s = _mm256_mul_ps (_mm256_loadu_ps (t), _mm256_set1_ps (xs));

  return _mm256_add_ps (acc, _mm256_mul_ps (_mm256_cvtepi32_ps (isum), s));
}

/* --- int8, AVX2 ------------------------------------------------------------- */

/* Σ w × x over 32 bytes, as eight int32 (|w| × ±x: exact). */
TARGET_AVX2 static inline __m256i
dot32_avx2 (__m256i      x,
            const gint8 *w,
            gboolean     prefetch)
{
  __m256i wv = _mm256_loadu_si256 ((const __m256i *) (const void *) w);

  if (prefetch)
    PREFETCH (w);
  __m256i p = _mm256_maddubs_epi16 (_mm256_abs_epi8 (wv), _mm256_sign_epi8 (x, wv));

  return _mm256_madd_epi16 (p, _mm256_set1_epi16 (1));
}

/* Group @g of ROWS rows (@cols apart) with x: the eight exact sums. */
TARGET_AVX2 static inline __m256i
group_avx2 (const gint8 *w,
            guint        cols,
            const gint8 *x,
            guint        g,
            guint        gs,
            gboolean     prefetch)
{
  __m256i v[ROWS], xv = _mm256_loadu_si256 ((const __m256i *) (const void *) (x + g * gs));

  for (guint k = 0; k < ROWS; k++)
    v[k] = dot32_avx2 (xv, w + (gsize) k * cols + g * gs, prefetch);
  for (guint u = g * gs + 32; u < (g + 1) * gs; u += 32)
    {
      xv = _mm256_loadu_si256 ((const __m256i *) (const void *) (x + u));
      for (guint k = 0; k < ROWS; k++)
        v[k] = _mm256_add_epi32 (v[k], dot32_avx2 (xv, w + (gsize) k * cols + u, prefetch));
    }
  return sum8x8 (v);
}

TARGET_AVX2 guint
llama_q8_rows_avx2 (const LlamaMatmul *m,
                    guint              start,
                    guint              end)
{
  guint cols = m->w->cols, gs = m->w->group_size, groups = cols / gs;
  gsize scale_stride = (gsize) groups * sizeof (float);
  float t[8][ROWS] __attribute__ ((aligned (32)));
  guint r = start;

  if (gs % 32 != 0)
    return start;
  for (; r + ROWS <= end; r += ROWS)
    {
      const gint8 *w = m->w->q8 + (gsize) r * cols;
      const guint8 *ws = m->w->scales + (gsize) r * scale_stride;

      prefetch_scales (ws, scale_stride, gs);

      for (guint b = 0; b < m->batch; b++)
        {
          const gint8 *x = m->xq + (gsize) b * cols;
          const float *xs = m->xs + (gsize) b * groups;
          __m256 acc = _mm256_setzero_ps ();

          for (guint g0 = 0; g0 < groups; g0 += 8)
            {
              guint n = MIN (8, groups - g0);

              transpose_scales (ws, scale_stride, g0, n, t);
              for (guint j = 0; j < n; j++)
                acc = scale_add (acc, group_avx2 (w, cols, x, g0 + j, gs, b == 0), t[j], xs[g0 + j]);
            }
          _mm256_storeu_ps (m->out + b * m->out_stride + r, acc);
        }
    }
  return r;
}

/* --- int8, AVX-512 VNNI ----------------------------------------------------- */

/* Σ (w + 128) × x over 64 bytes, as sixteen int32 (lane i: bytes 4i..4i+3). */
TARGET_AVX512 static inline __m512i
dot64_vnni (__m512i      x,
            const gint8 *w,
            gboolean     prefetch)
{
  __m512i wu = _mm512_xor_si512 (_mm512_loadu_si512 (w), _mm512_set1_epi8 ((char) 0x80));

  if (prefetch)
    PREFETCH (w);
  return _mm512_dpbusd_epi32 (_mm512_setzero_si512 (), wu, x);
}

TARGET_AVX512 static inline __m256i
dot32_vnni (__m256i      x,
            const gint8 *w,
            gboolean     prefetch)
{
  __m256i wu = _mm256_xor_si256 (_mm256_loadu_si256 ((const __m256i *) (const void *) w),
                                 _mm256_set1_epi8 ((char) 0x80));

  if (prefetch)
    PREFETCH (w);
  return _mm256_dpbusd_epi32 (_mm256_setzero_si256 (), wu, x);
}

/* Eight vectors of sixteen int32 → per row k the sum of its lanes 0..7
 * (in lane k) and of its lanes 8..15 (in lane 8 + k). */
TARGET_AVX512 static inline __m512i
sum8x16 (const __m512i *v)
{
  __m512i t[4], u0, u1, p, q;

  /* per 128-bit chunk: [a0+a2, b0+b2, a1+a3, b1+b3] */
  for (guint k = 0; k < 4; k++)
    t[k] = _mm512_add_epi32 (_mm512_unpacklo_epi32 (v[2 * k], v[2 * k + 1]),
                             _mm512_unpackhi_epi32 (v[2 * k], v[2 * k + 1]));
  /* per chunk c: the chunk's sums of rows 0..3 (u0), 4..7 (u1) */
  u0 = _mm512_add_epi32 (_mm512_unpacklo_epi64 (t[0], t[1]), _mm512_unpackhi_epi64 (t[0], t[1]));
  u1 = _mm512_add_epi32 (_mm512_unpacklo_epi64 (t[2], t[3]), _mm512_unpackhi_epi64 (t[2], t[3]));
  /* [u0 c0, u1 c0, u0 c2, u1 c2] + [u0 c1, u1 c1, u0 c3, u1 c3] */
  p = _mm512_permutex2var_epi64 (u0, _mm512_setr_epi64 (0, 1, 8, 9, 4, 5, 12, 13), u1);
  q = _mm512_permutex2var_epi64 (u0, _mm512_setr_epi64 (2, 3, 10, 11, 6, 7, 14, 15), u1);
  return _mm512_add_epi32 (p, q);
}

/* The eight exact sums of group @g for ROWS rows (xsum: Σ x of @g). */
TARGET_AVX512 static inline __m256i
fix_sum (__m256i sum,
         gint32  xsum)
{
  return _mm256_sub_epi32 (sum, _mm256_set1_epi32 (xsum * 128));
}

/* Σ (w + 128) × x over 64 bytes, or over 32 (@half: the upper lanes 0). */
TARGET_AVX512 static inline __m512i
dot64_vnni_part (__m512i      x,
                 const gint8 *w,
                 gboolean     half,
                 gboolean     prefetch)
{
  if (half)
    {
      __m256i wv = _mm256_loadu_si256 ((const __m256i *) (const void *) w);

      if (prefetch)
        PREFETCH (w);

      return _mm512_dpbusd_epi32 (_mm512_setzero_si512 (),
                                  _mm512_xor_si512 (_mm512_zextsi256_si512 (wv),
                                                    _mm512_set1_epi8 ((char) 0x80)),
                                  x);
    }
  return dot64_vnni (x, w, prefetch);
}

/* Groups @g and @g + 1 (gs 32: 64 contiguous bytes) of ROWS rows; with
 * @single, group @g alone (x's upper half zero: *hi is not set). */
TARGET_AVX512 static inline void
group_pair_vnni (const gint8  *w,
                 guint         cols,
                 const gint8  *x,
                 const gint32 *xsum,
                 guint         g,
                 gboolean      single,
                 gboolean      prefetch,
                 __m256i      *lo,
                 __m256i      *hi)
{
  __m512i xv, v[ROWS], s;

  if (single)
    xv = _mm512_zextsi256_si512 (_mm256_loadu_si256 ((const __m256i *) (const void *) (x + g * 32)));
  else
    xv = _mm512_loadu_si512 (x + g * 32);
  for (guint k = 0; k < ROWS; k++)
    v[k] = dot64_vnni_part (xv, w + (gsize) k * cols + g * 32, single, prefetch);
  s = sum8x16 (v);
  *lo = fix_sum (_mm512_castsi512_si256 (s), xsum[g]);
  if (!single)
    *hi = fix_sum (_mm512_extracti64x4_epi64 (s, 1), xsum[g + 1]);
}

/* One group of a multiple of 32 bytes. */
TARGET_AVX512 static inline __m256i
group_vnni (const gint8  *w,
            guint         cols,
            const gint8  *x,
            const gint32 *xsum,
            guint         g,
            guint         gs,
            gboolean      prefetch)
{
  __m256i sum;

  if (gs % 64 == 0)
    {
      __m512i v[ROWS], s, xv = _mm512_loadu_si512 (x + g * gs);

      for (guint k = 0; k < ROWS; k++)
        v[k] = dot64_vnni (xv, w + (gsize) k * cols + g * gs, prefetch);
      for (guint u = g * gs + 64; u < (g + 1) * gs; u += 64)
        {
          xv = _mm512_loadu_si512 (x + u);
          for (guint k = 0; k < ROWS; k++)
            v[k] = _mm512_add_epi32 (v[k], dot64_vnni (xv, w + (gsize) k * cols + u, prefetch));
        }
      s = sum8x16 (v);
      sum = _mm256_add_epi32 (_mm512_castsi512_si256 (s), _mm512_extracti64x4_epi64 (s, 1));
    }
  else
    {
      __m256i v[ROWS], xv = _mm256_loadu_si256 ((const __m256i *) (const void *) (x + g * gs));

      for (guint k = 0; k < ROWS; k++)
        v[k] = dot32_vnni (xv, w + (gsize) k * cols + g * gs, prefetch);
      for (guint u = g * gs + 32; u < (g + 1) * gs; u += 32)
        {
          xv = _mm256_loadu_si256 ((const __m256i *) (const void *) (x + u));
          for (guint k = 0; k < ROWS; k++)
            v[k] = _mm256_add_epi32 (v[k], dot32_vnni (xv, w + (gsize) k * cols + u, prefetch));
        }
      sum = sum8x8 (v);
    }
  return fix_sum (sum, xsum[g]);
}

TARGET_AVX512 guint
llama_q8_rows_avx512 (const LlamaMatmul *m,
                      guint              start,
                      guint              end)
{
  guint cols = m->w->cols, gs = m->w->group_size, groups = cols / gs;
  gsize scale_stride = (gsize) groups * sizeof (float);
  float t[8][ROWS] __attribute__ ((aligned (32)));
  guint r = start;

  if (gs % 32 != 0)
    return start;
  g_assert (m->xsum != NULL);
  for (; r + ROWS <= end; r += ROWS)
    {
      const gint8 *w = m->w->q8 + (gsize) r * cols;
      const guint8 *ws = m->w->scales + (gsize) r * scale_stride;

      prefetch_scales (ws, scale_stride, gs);

      for (guint b = 0; b < m->batch; b++)
        {
          const gint8 *x = m->xq + (gsize) b * cols;
          const float *xs = m->xs + (gsize) b * groups;
          const gint32 *xsum = m->xsum + (gsize) b * groups;
          __m256 acc = _mm256_setzero_ps ();

          for (guint g0 = 0; g0 < groups; g0 += 8)
            {
              guint n = MIN (8, groups - g0), j = 0;

              transpose_scales (ws, scale_stride, g0, n, t);
              if (gs == 32)
                for (; j < n; j += 2)
                  {
                    __m256i lo, hi;

                    if (j + 1 == n)
                      {
                        group_pair_vnni (w, cols, x, xsum, g0 + j, TRUE, b == 0, &lo, &hi);
                        acc = scale_add (acc, lo, t[j], xs[g0 + j]);
                        j = n;
                        break;
                      }
                    group_pair_vnni (w, cols, x, xsum, g0 + j, FALSE, b == 0, &lo, &hi);
                    acc = scale_add (acc, lo, t[j], xs[g0 + j]);
                    acc = scale_add (acc, hi, t[j + 1], xs[g0 + j + 1]);
                  }
              for (; j < n; j++)
                acc = scale_add (acc, group_vnni (w, cols, x, xsum, g0 + j, gs, b == 0), t[j], xs[g0 + j]);
            }
          _mm256_storeu_ps (m->out + b * m->out_stride + r, acc);
        }
    }
  return r;
}

/* llama_quantize_q8 () sixteen values at a time (@group_size a multiple of
 * 16), the same operations: max |x| ignoring NaN, scale = amax / 127,
 * x / scale clamped (NaN: 0), rounded half away from zero; and each
 * group's Σ q. */
TARGET_AVX512 void
llama_quantize_avx512 (gint8       *q,
                       float       *scales,
                       gint32      *sums,
                       const float *x,
                       guint        n,
                       guint        group_size)
{
  const __m512 hi = _mm512_set1_ps (127.0f), lo = _mm512_set1_ps (-127.0f);
  const __m512 half = _mm512_set1_ps (0.5f), mhalf = _mm512_set1_ps (-0.5f);
  const __m512 one = _mm512_set1_ps (1.0f);

  g_assert (group_size % 16 == 0);
  for (guint g = 0; g < n / group_size; g++)
    {
      const float *xg = x + (gsize) g * group_size;
      gint8 *qg = q + (gsize) g * group_size;
      __m512 mx = _mm512_setzero_ps ();
      __m512i sum = _mm512_setzero_si512 ();
      float scale;

      /* vmaxps returns its second operand when the first is NaN */
      for (guint j = 0; j < group_size; j += 16)
        mx = _mm512_max_ps (_mm512_abs_ps (_mm512_loadu_ps (xg + j)), mx);
      scale = _mm512_reduce_max_ps (mx) / 127.0f;
      scales[g] = scale;
      for (guint j = 0; j < group_size; j += 16)
        {
          __m512 v = _mm512_setzero_ps (), t, frac;
          __m512i iv;

          if (scale > 0.0f)
            v = _mm512_div_ps (_mm512_loadu_ps (xg + j), _mm512_set1_ps (scale));
          v = _mm512_mask_mov_ps (v, _mm512_cmp_ps_mask (v, v, _CMP_UNORD_Q), _mm512_setzero_ps ());
          v = _mm512_max_ps (_mm512_min_ps (v, hi), lo);
          t = _mm512_roundscale_ps (v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
          frac = _mm512_sub_ps (v, t);
          t = _mm512_mask_add_ps (t, _mm512_cmp_ps_mask (frac, half, _CMP_GE_OQ), t, one);
          t = _mm512_mask_sub_ps (t, _mm512_cmp_ps_mask (frac, mhalf, _CMP_LE_OQ), t, one);
          iv = _mm512_cvttps_epi32 (t);
          sum = _mm512_add_epi32 (sum, iv);
          _mm_storeu_si128 ((__m128i *) (void *) (qg + j), _mm512_cvtepi32_epi8 (iv));
        }
      sums[g] = _mm512_reduce_add_epi32 (sum);
    }
}

#endif /* LLAMA_HAVE_X86 */
