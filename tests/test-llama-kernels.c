/* test-llama-kernels.c: the determinism contract of the llama engine's
 * kernels (plugins/llama-inference/llama-kernels.c, linked in).
 *
 * A matmul gives the same bits whatever the batch it is part of, the
 * number of threads of the team, the tail lengths, and whether the
 * CPU-specific (AVX2) or the portable code runs; and it agrees with a
 * plain double-precision product (for int8, of the quantised values).
 *
 * Thread rules: the test thread drives the teams.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "llama-kernels.h"

static guint64 rng = 88172645463325252ull;

static float
uniform (void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (float) ((double) (rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Runs @w on @batch rows of @x with @team, also one row at a time; both
 * into @out (batch × rows), checked equal. */
static void
run (LlamaTeam *team, const LlamaMatrix *w, const float *x, guint batch, float *out)
{
  g_autofree float *single = g_new (float, (gsize) batch * w->rows);

  llama_matmul (team, out, w->rows, w, x, w->cols, batch);
  for (guint b = 0; b < batch; b++)
    llama_matmul (team, single + (gsize) b * w->rows, w->rows, w, x + (gsize) b * w->cols, w->cols, 1);
  g_assert_cmpmem (out, batch * w->rows * sizeof (float), single, batch * w->rows * sizeof (float));
}

static void
test_f32 (void)
{
  static const guint cols_list[] = { 1, 7, 16, 17, 33, 288 };
  static const guint rows_list[] = { 1, 5, 13, 40 };
  LlamaTeam *one = llama_team_new (1), *three = llama_team_new (3);

  for (guint c = 0; c < G_N_ELEMENTS (cols_list); c++)
    for (guint r = 0; r < G_N_ELEMENTS (rows_list); r++)
      {
        guint cols = cols_list[c], rows = rows_list[r], batch = 5;
        g_autofree float *wv = g_new (float, (gsize) rows * cols);
        g_autofree float *x = g_new (float, (gsize) batch * cols);
        g_autofree float *a = g_new (float, (gsize) batch * rows);
        g_autofree float *b = g_new (float, (gsize) batch * rows);
        LlamaMatrix w = { wv, NULL, NULL, rows, cols, 0 };

        for (gsize i = 0; i < (gsize) rows * cols; i++)
          wv[i] = uniform ();
        for (gsize i = 0; i < (gsize) batch * cols; i++)
          x[i] = uniform ();
        run (one, &w, x, batch, a);
        run (three, &w, x, batch, b);
        g_assert_cmpmem (a, batch * rows * 4, b, batch * rows * 4);
        for (guint i = 0; i < batch; i++)
          for (guint k = 0; k < rows; k++)
            {
              double want = 0;

              for (guint j = 0; j < cols; j++)
                want += (double) wv[(gsize) k * cols + j] * x[(gsize) i * cols + j];
              g_assert_cmpfloat_with_epsilon (a[i * rows + k], want, 1e-5 * MAX (1.0, fabs (want)) * sqrt (cols));
            }
      }
  llama_team_free (one);
  llama_team_free (three);
}

static void
test_q8 (void)
{
  static const guint gs_list[] = { 8, 32, 64 };
  static const guint rows_list[] = { 1, 3, 4, 5, 9, 13, 64 };
  LlamaTeam *one = llama_team_new (1), *three = llama_team_new (3);

  for (guint g = 0; g < G_N_ELEMENTS (gs_list); g++)
    for (guint r = 0; r < G_N_ELEMENTS (rows_list); r++)
      {
        guint gs = gs_list[g], cols = gs * 5, rows = rows_list[r], batch = 3;
        gsize n = (gsize) rows * cols;
        g_autofree gint8 *q = g_new (gint8, n);
        g_autofree float *scales = g_new (float, n / gs);
        g_autofree float *x = g_new (float, (gsize) batch * cols);
        g_autofree float *auto_out = g_new (float, (gsize) batch * rows);
        g_autofree float *generic = g_new (float, (gsize) batch * rows);
        g_autofree float *threaded = g_new (float, (gsize) batch * rows);
        g_autofree gint16 *xq = g_new (gint16, cols);
        g_autofree float *xs = g_new (float, cols / gs);
        LlamaMatrix w = { NULL, q, (const guint8 *) scales, rows, cols, gs };

        for (gsize i = 0; i < n; i++)
          q[i] = (gint8) ((gint) (uniform () * 127.0f));
        for (gsize i = 0; i < n / gs; i++)
          scales[i] = 0.01f + 0.01f * fabsf (uniform ());
        for (gsize i = 0; i < (gsize) batch * cols; i++)
          x[i] = uniform () * 3.0f;

        llama_kernels_generic_only = FALSE;
        run (one, &w, x, batch, auto_out);
        run (three, &w, x, batch, threaded);
        llama_kernels_generic_only = TRUE;
        run (one, &w, x, batch, generic);
        llama_kernels_generic_only = FALSE;
        g_assert_cmpmem (auto_out, batch * rows * 4, generic, batch * rows * 4);
        g_assert_cmpmem (auto_out, batch * rows * 4, threaded, batch * rows * 4);

        /* against the plain sum of the quantised products */
        for (guint i = 0; i < batch; i++)
          {
            llama_quantize_q8 (xq, xs, x + (gsize) i * cols, cols, gs);
            for (guint k = 0; k < rows; k++)
              {
                double want = 0;

                for (guint j = 0; j < cols; j++)
                  want += (double) q[(gsize) k * cols + j] * scales[((gsize) k * cols + j) / gs]
                          * xq[j] * xs[j / gs];
                g_assert_cmpfloat_with_epsilon (auto_out[i * rows + k], want, 1e-5 * MAX (1.0, fabs (want)));
              }
          }
      }
  llama_team_free (one);
  llama_team_free (three);
}

static void
test_quantize (void)
{
  const float x[8] = { 0.0f, 1.0f, -2.0f, 0.5f, NAN, INFINITY, -0.25f, 3.0f };
  const float zeros[4] = { 0, };
  gint16 q[8];
  float s[2];

  llama_quantize_q8 (q, s, x, 8, 4);
  g_assert_cmpfloat (s[0], ==, 2.0f / 127.0f);
  g_assert_cmpint (q[2], ==, -127);
  g_assert_cmpint (q[1], ==, 64);    /* 63.5 rounds away from zero */
  for (guint i = 4; i < 8; i++)
    g_assert_true (q[i] >= -127 && q[i] <= 127);   /* NaN and inf stay in range */
  llama_quantize_q8 (q, s, zeros, 4, 4);
  g_assert_cmpfloat (s[0], ==, 0.0f);
  g_assert_cmpint (q[0], ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/llama/kernels/f32", test_f32);
  g_test_add_func ("/llama/kernels/q8", test_q8);
  g_test_add_func ("/llama/kernels/quantize", test_quantize);
  return g_test_run ();
}
