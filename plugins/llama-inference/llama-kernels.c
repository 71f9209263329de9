/* llama-kernels.c: matmul (float32 and int8 groups), RMSNorm, softmax,
 * SwiGLU, attention, the thread team that runs a matmul's rows in
 * parallel, and the choice of kernel path.
 *
 * Owns the team's threads and the path in use (chosen once).  Thread rules
 * and the determinism contract: see llama-kernels.h.  The portable code is
 * here; it defines the numbers.  Each float dot product accumulates in
 * LANES = 16 independent partial sums (element i goes to lane i % 16),
 * held in four 4-float vectors, then folds them in a fixed tree: nothing
 * is reassociated, so the result is the same with SSE2, AVX2, AVX-512 or
 * scalar code, and whichever thread computes the element.  Int8 dot
 * products sum exactly in int32 per group, then accumulate the groups in
 * order in float.  The AVX2 and AVX-512 copies (llama-kernels-x86.c) do
 * the same float operations in the same order.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "llama-kernels-private.h"

#include <math.h>
#include <string.h>

#define LANES LLAMA_LANES

/* --- the thread team ------------------------------------------------------ */

struct _LlamaTeam
{
  guint           n_threads;
  GThread       **threads;      /* n_threads - 1 helpers */
  GMutex          lock;
  GCond           start_cond;
  GCond           done_cond;
  guint64         generation;   /* bumped for each job */
  guint           pending;      /* helpers still running the job */
  gboolean        quit;
  LlamaRangeFunc  func;
  gpointer        data;
  guint           n_items;
  gpointer        scratch[LLAMA_N_SCRATCH];
  gsize           scratch_size[LLAMA_N_SCRATCH];
};

typedef struct
{
  LlamaTeam *team;
  guint      index;
} Helper;

static void
team_range (LlamaTeam *team,
            guint      index,
            guint      n_items,
            guint     *start,
            guint     *end)
{
  *start = (guint) ((guint64) n_items * index / team->n_threads);
  *end = (guint) ((guint64) n_items * (index + 1) / team->n_threads);
}

static gpointer
helper_main (gpointer data)
{
  Helper *helper = data;
  LlamaTeam *team = helper->team;
  guint64 seen = 0;

  for (;;)
    {
      LlamaRangeFunc func;
      gpointer func_data;
      guint start, end;

      g_mutex_lock (&team->lock);
      while (team->generation == seen && !team->quit)
        g_cond_wait (&team->start_cond, &team->lock);
      if (team->quit)
        {
          g_mutex_unlock (&team->lock);
          break;
        }
      seen = team->generation;
      func = team->func;
      func_data = team->data;
      team_range (team, helper->index, team->n_items, &start, &end);
      g_mutex_unlock (&team->lock);

      if (start < end)
        func (func_data, start, end);

      g_mutex_lock (&team->lock);
      if (--team->pending == 0)
        g_cond_signal (&team->done_cond);
      g_mutex_unlock (&team->lock);
    }
  g_free (helper);
  return NULL;
}

LlamaTeam *
llama_team_new (guint n_threads)
{
  LlamaTeam *team = g_new0 (LlamaTeam, 1);

  team->n_threads = CLAMP (n_threads, 1, 256);
  g_mutex_init (&team->lock);
  g_cond_init (&team->start_cond);
  g_cond_init (&team->done_cond);
  team->threads = g_new0 (GThread *, team->n_threads);
  for (guint i = 1; i < team->n_threads; i++)
    {
      Helper *helper = g_new0 (Helper, 1);

      helper->team = team;
      helper->index = i;
      team->threads[i - 1] = g_thread_new ("llama-matmul", helper_main, helper);
    }
  return team;
}

void
llama_team_free (LlamaTeam *team)
{
  if (team == NULL)
    return;
  g_mutex_lock (&team->lock);
  team->quit = TRUE;
  g_cond_broadcast (&team->start_cond);
  g_mutex_unlock (&team->lock);
  for (guint i = 0; i + 1 < team->n_threads; i++)
    g_thread_join (team->threads[i]);
  g_free (team->threads);
  for (guint i = 0; i < LLAMA_N_SCRATCH; i++)
    g_free (team->scratch[i]);
  g_mutex_clear (&team->lock);
  g_cond_clear (&team->start_cond);
  g_cond_clear (&team->done_cond);
  g_free (team);
}

gpointer
llama_team_scratch (LlamaTeam *team,
                    guint      slot,
                    gsize      bytes)
{
  g_assert (slot < LLAMA_N_SCRATCH);
  if (bytes > team->scratch_size[slot])
    {
      g_free (team->scratch[slot]);
      team->scratch[slot] = g_malloc (bytes);
      team->scratch_size[slot] = bytes;
    }
  return team->scratch[slot];
}

/* Runs @func over [0, n_items) split in contiguous ranges, one per thread
 * (the caller takes the first); returns when all are done.  Small jobs run
 * on the caller alone: which thread computes a row never changes a value. */
void
llama_team_run (LlamaTeam      *team,
                guint           n_items,
                LlamaRangeFunc  func,
                gpointer        data)
{
  guint start, end;

  if (team == NULL || team->n_threads == 1 || n_items < 4 * team->n_threads)
    {
      func (data, 0, n_items);
      return;
    }

  g_mutex_lock (&team->lock);
  team->func = func;
  team->data = data;
  team->n_items = n_items;
  team->pending = team->n_threads - 1;
  team->generation++;
  g_cond_broadcast (&team->start_cond);
  g_mutex_unlock (&team->lock);

  team_range (team, 0, n_items, &start, &end);
  func (data, start, end);

  g_mutex_lock (&team->lock);
  while (team->pending > 0)
    g_cond_wait (&team->done_cond, &team->lock);
  g_mutex_unlock (&team->lock);
}

/* --- the kernel paths ------------------------------------------------------- */

static LlamaKernels kernels_path;   /* written once (g_once), or by tests */

const char *
llama_kernels_to_string (LlamaKernels kernels)
{
  switch (kernels)
    {
    case LLAMA_KERNELS_PORTABLE:
      return "portable";
    case LLAMA_KERNELS_AVX2:
      return "avx2";
    case LLAMA_KERNELS_AVX512:
      return "avx512";
    default:
      g_assert_not_reached ();
    }
}

gboolean
llama_kernels_from_string (const char   *name,
                           LlamaKernels *kernels)
{
  for (LlamaKernels k = LLAMA_KERNELS_PORTABLE; k <= LLAMA_KERNELS_AVX512; k++)
    if (g_strcmp0 (name, llama_kernels_to_string (k)) == 0)
      {
        *kernels = k;
        return TRUE;
      }
  return FALSE;
}

gboolean
llama_kernels_cpu_has (LlamaKernels kernels)
{
  if (kernels == LLAMA_KERNELS_PORTABLE)
    return TRUE;
#ifdef LLAMA_HAVE_X86
  __builtin_cpu_init ();
  if (kernels == LLAMA_KERNELS_AVX2)
    return __builtin_cpu_supports ("avx2");
  if (kernels == LLAMA_KERNELS_AVX512)
    return __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512bw") &&
           __builtin_cpu_supports ("avx512vl") && __builtin_cpu_supports ("avx512vnni");
#endif
  return FALSE;
}

LlamaKernels
llama_kernels_get (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      LlamaKernels best = LLAMA_KERNELS_AVX512, wanted;
      const char *env = g_getenv ("EXO_LLAMA_KERNELS");

      while (!llama_kernels_cpu_has (best))
        best--;
      if (env != NULL && *env != '\0')
        {
          if (!llama_kernels_from_string (env, &wanted))
            g_warning ("EXO_LLAMA_KERNELS=%s is not one of portable, avx2, avx512: using %s",
                       env, llama_kernels_to_string (best));
          else if (wanted > best)
            g_message ("EXO_LLAMA_KERNELS=%s: this CPU lacks it, using %s",
                       env, llama_kernels_to_string (best));
          else
            best = wanted;
        }
      kernels_path = best;
      g_once_init_leave (&once, 1);
    }
  return kernels_path;
}

void
llama_kernels_set (LlamaKernels kernels)
{
  g_assert (llama_kernels_cpu_has (kernels));
  llama_kernels_get ();
  kernels_path = kernels;
}

/* --- float32 ---------------------------------------------------------------- */

/* Four vectors of four floats: the 16 lanes, in registers (GCC's vector
 * extension; SSE2 or better does each in one instruction, anything else
 * lane by lane with the same result). */
typedef float v4sf __attribute__ ((vector_size (16)));

static inline v4sf
load4 (const float *p)
{
  v4sf v;

  memcpy (&v, p, sizeof v);
  return v;
}

/* Adds the tail (i .. n-1, fewer than LANES) to the lanes and folds them. */
static inline float
finish (v4sf         a0,
        v4sf         a1,
        v4sf         a2,
        v4sf         a3,
        const float *a,
        const float *b,
        guint        i,
        guint        n)
{
  float acc[LANES];

  memcpy (acc, &a0, sizeof a0);
  memcpy (acc + 4, &a1, sizeof a1);
  memcpy (acc + 8, &a2, sizeof a2);
  memcpy (acc + 12, &a3, sizeof a3);
  return llama_finish_dot (acc, a, b, i, n);
}

static inline float
dot_f32 (const float *restrict a,
         const float *restrict b,
         guint                 n)
{
  v4sf a0 = { 0, }, a1 = { 0, }, a2 = { 0, }, a3 = { 0, };
  guint i = 0;

  for (; i + LANES <= n; i += LANES)
    {
      a0 += load4 (a + i) * load4 (b + i);
      a1 += load4 (a + i + 4) * load4 (b + i + 4);
      a2 += load4 (a + i + 8) * load4 (b + i + 8);
      a3 += load4 (a + i + 12) * load4 (b + i + 12);
    }
  return finish (a0, a1, a2, a3, a, b, i, n);
}

/* Two dot products of one weight row with two x rows: each computed
 * exactly as dot_f32() computes it, the row read once. */
static inline void
dot_f32_x2 (const float *restrict w,
            const float *restrict x0,
            const float *restrict x1,
            guint                 n,
            float                *out)
{
  v4sf a0 = { 0, }, a1 = { 0, }, a2 = { 0, }, a3 = { 0, };
  v4sf b0 = { 0, }, b1 = { 0, }, b2 = { 0, }, b3 = { 0, };
  guint i = 0;

  for (; i + LANES <= n; i += LANES)
    {
      v4sf w0 = load4 (w + i), w1 = load4 (w + i + 4), w2 = load4 (w + i + 8), w3 = load4 (w + i + 12);

      a0 += w0 * load4 (x0 + i);
      a1 += w1 * load4 (x0 + i + 4);
      a2 += w2 * load4 (x0 + i + 8);
      a3 += w3 * load4 (x0 + i + 12);
      b0 += w0 * load4 (x1 + i);
      b1 += w1 * load4 (x1 + i + 4);
      b2 += w2 * load4 (x1 + i + 8);
      b3 += w3 * load4 (x1 + i + 12);
    }
  out[0] = finish (a0, a1, a2, a3, w, x0, i, n);
  out[1] = finish (b0, b1, b2, b3, w, x1, i, n);
}

static void
matmul_f32_rows_portable (const LlamaMatmul *m,
                          guint              start,
                          guint              end)
{
  guint cols = m->w->cols;

  for (guint r = start; r < end; r++)
    {
      const float *row = m->w->f32 + (gsize) r * cols;
      guint b = 0;

      for (gsize off = 0; off < (gsize) cols * sizeof (float); off += 64)
        __builtin_prefetch ((const char *) row + LLAMA_PREFETCH_BYTES + off);
      for (; b + 2 <= m->batch; b += 2)
        {
          float v[2];

          dot_f32_x2 (row, m->x + b * m->x_stride, m->x + (b + 1) * m->x_stride, cols, v);
          m->out[b * m->out_stride + r] = v[0];
          m->out[(b + 1) * m->out_stride + r] = v[1];
        }
      for (; b < m->batch; b++)
        m->out[b * m->out_stride + r] = dot_f32 (row, m->x + b * m->x_stride, cols);
    }
}

static void
matmul_f32_rows (gpointer data,
                 guint    start,
                 guint    end)
{
  const LlamaMatmul *m = data;

#ifdef LLAMA_HAVE_X86
  if (m->kernels >= LLAMA_KERNELS_AVX2)   /* AVX-512 too: see llama-kernels-x86.c */
    {
      llama_f32_rows_avx2 (m, start, end);
      return;
    }
#endif
  matmul_f32_rows_portable (m, start, end);
}

/* --- int8 groups ---------------------------------------------------------- */

static inline gint32
dot_i8 (const gint8 *restrict w,
        const gint8 *restrict x,
        guint                 n)
{
  gint32 sum = 0;

  for (guint j = 0; j < n; j++)
    sum += (gint32) w[j] * (gint32) x[j];
  return sum;
}

/* Rows @w, @w + stride, … (@n_rows of them, 1 to 4) times one x: each row
 * sums its groups in order, acc += isum × (w scale × x scale), the same
 * whichever rows it is computed with; four rows make four independent
 * chains for the CPU to overlap.  Inlined with a constant @gs (the common
 * group sizes) so that GCC unrolls the groups. */
static inline void
dot_q8_rows (const gint8  *restrict w,
             gsize                  stride,
             const guint8 *restrict ws,
             gsize                  scale_stride,
             guint                  n_rows,
             const gint8  *restrict xq,
             const float  *restrict xs,
             guint                  n,
             guint                  gs,
             float                 *out)
{
  float acc[4] = { 0.0f, 0.0f, 0.0f, 0.0f };

  for (guint g = 0; g < n / gs; g++)
    {
      const gint8 *xg = xq + (gsize) g * gs;
      float xsg = xs[g];

      for (guint k = 0; k < 4; k++)
        if (k < n_rows)
          acc[k] += (float) dot_i8 (w + k * stride + (gsize) g * gs, xg, gs)
                    * (llama_load_scale (ws + k * scale_stride, g) * xsg);
    }
  for (guint k = 0; k < n_rows; k++)
    out[k] = acc[k];
}

static inline void
dot_q8 (const gint8  *w,
        gsize         stride,
        const guint8 *ws,
        gsize         scale_stride,
        guint         n_rows,
        const gint8  *xq,
        const float  *xs,
        guint         n,
        guint         gs,
        float        *out)
{
  if (gs == 32 && n_rows == 4)
    dot_q8_rows (w, stride, ws, scale_stride, 4, xq, xs, n, 32, out);
  else if (gs == 64 && n_rows == 4)
    dot_q8_rows (w, stride, ws, scale_stride, 4, xq, xs, n, 64, out);
  else
    dot_q8_rows (w, stride, ws, scale_stride, n_rows, xq, xs, n, gs, out);
}

static void
matmul_q8_rows (gpointer data,
                guint    start,
                guint    end)
{
  const LlamaMatmul *m = data;
  guint cols = m->w->cols, gs = m->w->group_size, groups = cols / gs;
  gsize scale_stride = (gsize) groups * sizeof (float);

#ifdef LLAMA_HAVE_X86
  if (m->kernels == LLAMA_KERNELS_AVX512)
    start = llama_q8_rows_avx512 (m, start, end);
  else if (m->kernels == LLAMA_KERNELS_AVX2)
    start = llama_q8_rows_avx2 (m, start, end);
#endif

  for (guint r = start; r < end; r += 4)
    {
      guint n_rows = MIN (4, end - r);
      const gint8 *rows = m->w->q8 + (gsize) r * cols;
      const guint8 *scales = m->w->scales + (gsize) r * scale_stride;

      /* the weights stream from memory: ask for them ahead (the scales
       * come gs / 4 times slower) */
      for (gsize off = 0; off < (gsize) n_rows * cols; off += 64)
        __builtin_prefetch ((const char *) rows + LLAMA_PREFETCH_BYTES + off);
      for (gsize off = 0; off < n_rows * scale_stride; off += 64)
        __builtin_prefetch ((const char *) scales + LLAMA_PREFETCH_BYTES * 4 / gs + off);

      for (guint b = 0; b < m->batch; b++)
        {
          float v[4];

          dot_q8 (rows, cols, scales, scale_stride, n_rows, m->xq + (gsize) b * cols,
                  m->xs + (gsize) b * groups, cols, gs, v);
          for (guint k = 0; k < n_rows; k++)
            m->out[b * m->out_stride + r + k] = v[k];
        }
    }
}

/* round () of a value in [-127, 127], half away from zero, without a call:
 * t = trunc (v), and v - t is exact. */
static inline gint8
round_q8 (float v)
{
  gint32 t = (gint32) v;
  float frac = v - (float) t;

  if (frac >= 0.5f)
    t++;
  else if (frac <= -0.5f)
    t--;
  return (gint8) t;
}

void
llama_quantize_q8 (gint8       *q,
                   float       *scales,
                   const float *x,
                   guint        n,
                   guint        group_size)
{
  for (guint g = 0; g < n / group_size; g++)
    {
      const float *xg = x + (gsize) g * group_size;
      gint8 *qg = q + (gsize) g * group_size;
      float amax = 0.0f, scale;

      for (guint j = 0; j < group_size; j++)
        {
          float a = fabsf (xg[j]);

          if (a > amax)   /* NaN never is */
            amax = a;
        }
      scale = amax / 127.0f;
      scales[g] = scale;
      for (guint j = 0; j < group_size; j++)
        {
          float v = scale > 0.0f ? xg[j] / scale : 0.0f;

          /* NaN and infinities from a hostile peer must not reach the cast */
          if (v > 127.0f)
            v = 127.0f;
          else if (v < -127.0f)
            v = -127.0f;
          else if (v != v)
            v = 0.0f;
          qg[j] = round_q8 (v);
        }
    }
}

void
llama_matmul (LlamaTeam         *team,
              float             *out,
              gsize              out_stride,
              const LlamaMatrix *w,
              const float       *x,
              gsize              x_stride,
              guint              batch)
{
  LlamaMatmul m = { out, out_stride, w, x, x_stride, batch, llama_kernels_get (), NULL, NULL, NULL };
  guint groups;
  gint8 *xq;
  float *xs;

  if (w->q8 == NULL)
    {
      llama_team_run (team, w->rows, matmul_f32_rows, &m);
      return;
    }

  groups = w->cols / w->group_size;
  xq = llama_team_scratch (team, LLAMA_SCRATCH_Q8_VALUES, (gsize) batch * w->cols);
  xs = llama_team_scratch (team, LLAMA_SCRATCH_Q8_SCALES, (gsize) batch * groups * sizeof (float));
#ifdef LLAMA_HAVE_X86
  if (m.kernels == LLAMA_KERNELS_AVX512 && w->group_size % 16 == 0)
    {
      gint32 *sums = llama_team_scratch (team, LLAMA_SCRATCH_Q8_SUMS,
                                         (gsize) batch * groups * sizeof (gint32));

      for (guint b = 0; b < batch; b++)
        llama_quantize_avx512 (xq + (gsize) b * w->cols, xs + (gsize) b * groups,
                               sums + (gsize) b * groups, x + b * x_stride, w->cols,
                               w->group_size);
      m.xsum = sums;
    }
  else
#endif
  for (guint b = 0; b < batch; b++)
    llama_quantize_q8 (xq + (gsize) b * w->cols, xs + (gsize) b * groups,
                       x + b * x_stride, w->cols, w->group_size);
  m.xq = xq;
  m.xs = xs;
  llama_team_run (team, w->rows, matmul_q8_rows, &m);
}

void
llama_matrix_get_row (const LlamaMatrix *w,
                      guint              row,
                      float             *out)
{
  if (w->q8 == NULL)
    {
      memcpy (out, w->f32 + (gsize) row * w->cols, w->cols * sizeof (float));
      return;
    }
  for (guint c = 0; c < w->cols; c++)
    {
      gsize i = (gsize) row * w->cols + c;

      out[c] = (float) w->q8[i] * llama_load_scale (w->scales, i / w->group_size);
    }
}

/* --- the rest --------------------------------------------------------------- */

void
llama_rmsnorm (float       *out,
               const float *x,
               const float *weight,
               guint        n)
{
  float ss = dot_f32 (x, x, n);

  ss = 1.0f / sqrtf (ss / (float) n + 1e-5f);
  for (guint i = 0; i < n; i++)
    out[i] = weight[i] * (ss * x[i]);
}

void
llama_softmax (float *x,
               guint  n)
{
  float max = x[0], sum = 0.0f;

  for (guint i = 1; i < n; i++)
    if (x[i] > max)
      max = x[i];
  for (guint i = 0; i < n; i++)
    {
      x[i] = expf (x[i] - max);
      sum += x[i];
    }
  for (guint i = 0; i < n; i++)
    x[i] /= sum;
}

void
llama_swiglu (float       *hb,
              const float *hb2,
              guint        n)
{
  for (guint i = 0; i < n; i++)
    {
      float v = hb[i];

      hb[i] = v / (1.0f + expf (-v)) * hb2[i];
    }
}

void
llama_attend (const float *q,
              const float *keys,
              const float *values,
              gsize        stride,
              guint        n_pos,
              guint        head_size,
              float        scale,
              float       *att,
              float       *out)
{
#ifdef LLAMA_HAVE_X86
  if (llama_kernels_get () >= LLAMA_KERNELS_AVX2)
    {
      llama_attend_avx2 (q, keys, values, stride, n_pos, head_size, scale, att, out);
      return;
    }
#endif
  for (guint t = 0; t < n_pos; t++)
    att[t] = dot_f32 (q, keys + t * stride, head_size) * scale;
  llama_softmax (att, n_pos);
  memset (out, 0, head_size * sizeof (float));
  for (guint t = 0; t < n_pos; t++)
    {
      const float *v = values + t * stride;
      float a = att[t];

      for (guint i = 0; i < head_size; i++)
        out[i] += a * v[i];
    }
}

