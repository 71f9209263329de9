/* llama-kernels.c: matmul (float32 and int8 groups), RMSNorm, softmax,
 * SwiGLU, and the thread team that runs a matmul's rows in parallel.
 *
 * Owns nothing but the team's threads.  Thread rules and the determinism
 * contract: see llama-kernels.h.  Each float dot product accumulates in
 * LANES independent partial sums (element i goes to lane i % LANES) and
 * then folds them in a fixed tree; GCC vectorises the lanes at -O3 without
 * reassociating anything, so the result is the same whether it uses SSE2,
 * AVX2 or scalar code, and whichever thread computes the element.  Int8
 * dot products sum exactly in int32 per group, then accumulate the groups
 * in order in float.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "llama-kernels.h"

#include <math.h>
#include <string.h>

#define LANES 16

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
  g_mutex_clear (&team->lock);
  g_cond_clear (&team->start_cond);
  g_cond_clear (&team->done_cond);
  g_free (team);
}

guint
llama_team_get_size (LlamaTeam *team)
{
  return team != NULL ? team->n_threads : 1;
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

/* --- float32 ---------------------------------------------------------------- */

static inline float
fold_lanes (float *acc)
{
  for (guint width = LANES / 2; width > 0; width /= 2)
    for (guint k = 0; k < width; k++)
      acc[k] += acc[k + width];
  return acc[0];
}

static inline float
dot_f32 (const float *restrict a,
         const float *restrict b,
         guint                 n)
{
  float acc[LANES] = { 0.0f, };
  guint i = 0;

  for (; i + LANES <= n; i += LANES)
    for (guint k = 0; k < LANES; k++)
      acc[k] += a[i + k] * b[i + k];
  for (guint k = 0; i < n; i++, k++)
    acc[k] += a[i] * b[i];
  return fold_lanes (acc);
}

/* Four dot products of one weight row with four x rows: each is computed
 * exactly as dot_f32() computes it, the row is read once. */
static inline void
dot_f32_x4 (const float *restrict w,
            const float *restrict x0,
            const float *restrict x1,
            const float *restrict x2,
            const float *restrict x3,
            guint                 n,
            float                *out)
{
  float a0[LANES] = { 0.0f, }, a1[LANES] = { 0.0f, }, a2[LANES] = { 0.0f, }, a3[LANES] = { 0.0f, };
  guint i = 0;

  for (; i + LANES <= n; i += LANES)
    for (guint k = 0; k < LANES; k++)
      {
        float wk = w[i + k];

        a0[k] += wk * x0[i + k];
        a1[k] += wk * x1[i + k];
        a2[k] += wk * x2[i + k];
        a3[k] += wk * x3[i + k];
      }
  for (guint k = 0; i < n; i++, k++)
    {
      a0[k] += w[i] * x0[i];
      a1[k] += w[i] * x1[i];
      a2[k] += w[i] * x2[i];
      a3[k] += w[i] * x3[i];
    }
  out[0] = fold_lanes (a0);
  out[1] = fold_lanes (a1);
  out[2] = fold_lanes (a2);
  out[3] = fold_lanes (a3);
}

float
llama_dot (const float *a,
           const float *b,
           guint        n)
{
  return dot_f32 (a, b, n);
}

typedef struct
{
  float             *out;
  gsize              out_stride;
  const LlamaMatrix *w;
  const float       *x;
  gsize              x_stride;
  guint              batch;
  const gint8       *xq;        /* int8: the quantised x rows */
  const float       *xs;        /* int8: their scales */
} Matmul;

static void
matmul_f32_rows (gpointer data,
                 guint    start,
                 guint    end)
{
  const Matmul *m = data;
  guint cols = m->w->cols;

  for (guint r = start; r < end; r++)
    {
      const float *row = m->w->f32 + (gsize) r * cols;
      guint b = 0;

      for (; b + 4 <= m->batch; b += 4)
        {
          float v[4];

          dot_f32_x4 (row, m->x + b * m->x_stride, m->x + (b + 1) * m->x_stride,
                      m->x + (b + 2) * m->x_stride, m->x + (b + 3) * m->x_stride, cols, v);
          for (guint k = 0; k < 4; k++)
            m->out[(b + k) * m->out_stride + r] = v[k];
        }
      for (; b < m->batch; b++)
        m->out[b * m->out_stride + r] = dot_f32 (row, m->x + b * m->x_stride, cols);
    }
}

/* --- int8 groups ---------------------------------------------------------- */

static inline float
load_scale (const guint8 *scales,
            gsize         index)
{
  float s;

  memcpy (&s, scales + index * sizeof (float), sizeof s);
  return s;
}

static inline gint32
dot_i8 (const gint8 *restrict a,
        const gint8 *restrict b,
        guint                 n)
{
  gint32 sum = 0;

  for (guint j = 0; j < n; j++)
    sum += (gint32) a[j] * (gint32) b[j];
  return sum;
}

static inline float
dot_q8 (const gint8  *restrict wq,
        const guint8 *restrict ws,
        const gint8  *restrict xq,
        const float  *restrict xs,
        guint                  n,
        guint                  gs)
{
  float acc = 0.0f;
  guint n_groups = n / gs;

  /* the common group sizes get a constant trip count GCC unrolls */
  if (gs == 64)
    for (guint g = 0; g < n_groups; g++)
      acc += (float) dot_i8 (wq + g * 64, xq + g * 64, 64) * (load_scale (ws, g) * xs[g]);
  else if (gs == 32)
    for (guint g = 0; g < n_groups; g++)
      acc += (float) dot_i8 (wq + g * 32, xq + g * 32, 32) * (load_scale (ws, g) * xs[g]);
  else
    for (guint g = 0; g < n_groups; g++)
      acc += (float) dot_i8 (wq + g * gs, xq + g * gs, gs) * (load_scale (ws, g) * xs[g]);
  return acc;
}

static void
matmul_q8_rows (gpointer data,
                guint    start,
                guint    end)
{
  const Matmul *m = data;
  guint cols = m->w->cols, gs = m->w->group_size, groups = cols / gs;

  for (guint r = start; r < end; r++)
    {
      const gint8 *row = m->w->q8 + (gsize) r * cols;
      const guint8 *scales = m->w->scales + (gsize) r * groups * sizeof (float);

      for (guint b = 0; b < m->batch; b++)
        m->out[b * m->out_stride + r] = dot_q8 (row, scales, m->xq + (gsize) b * cols,
                                                m->xs + (gsize) b * groups, cols, gs);
    }
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

          if (a > amax)
            amax = a;
        }
      scale = amax / 127.0f;
      scales[g] = scale;
      for (guint j = 0; j < group_size; j++)
        {
          float v = scale > 0.0f ? roundf (xg[j] / scale) : 0.0f;

          /* NaN and infinities from a hostile peer must not reach the cast */
          if (v > 127.0f)
            v = 127.0f;
          else if (v < -127.0f)
            v = -127.0f;
          else if (v != v)
            v = 0.0f;
          qg[j] = (gint8) v;
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
  Matmul m = { out, out_stride, w, x, x_stride, batch, NULL, NULL };

  if (w->q8 == NULL)
    {
      llama_team_run (team, w->rows, matmul_f32_rows, &m);
      return;
    }

  {
    guint groups = w->cols / w->group_size;
    g_autofree gint8 *xq = g_new (gint8, (gsize) batch * w->cols);
    g_autofree float *xs = g_new (float, (gsize) batch * groups);

    for (guint b = 0; b < batch; b++)
      llama_quantize_q8 (xq + (gsize) b * w->cols, xs + (gsize) b * groups,
                         x + b * x_stride, w->cols, w->group_size);
    m.xq = xq;
    m.xs = xs;
    llama_team_run (team, w->rows, matmul_q8_rows, &m);
  }
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

      out[c] = (float) w->q8[i] * load_scale (w->scales, i / w->group_size);
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
llama_axpy (float       *y,
            float        a,
            const float *x,
            guint        n)
{
  for (guint i = 0; i < n; i++)
    y[i] += a * x[i];
}
