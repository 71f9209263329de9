/* test-llama-kernels.c: the determinism contract of the llama engine's
 * kernels (plugins/llama-inference/llama-kernels.c and
 * llama-kernels-x86.c, linked in).
 *
 * A matmul gives the same bits whatever the batch it is part of, the
 * number of threads of the team, the tail lengths, and the kernel path
 * (portable, AVX2, AVX-512: each one the CPU has is run and compared with
 * the portable code bit for bit); and it agrees with a plain
 * double-precision product (for int8, of the quantised values).
 *
 * Thread rules: the test thread drives the teams and switches the path
 * (llama_kernels_set) only between matmuls.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "llama-kernels-private.h"

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

/* The paths this CPU has, portable first. */
static guint
cpu_paths (LlamaKernels *paths)
{
  guint n = 0;

  for (LlamaKernels k = LLAMA_KERNELS_PORTABLE; k <= LLAMA_KERNELS_AVX512; k++)
    if (llama_kernels_cpu_has (k))
      paths[n++] = k;
  return n;
}

/* @w on @x with the portable code, one thread, into @out; then with every
 * path the CPU has, with one and with three threads: all the same bits. */
static void
run_all_paths (const LlamaMatrix *w, const float *x, guint batch, float *out)
{
  LlamaKernels saved = llama_kernels_get (), paths[3];
  guint n_paths = cpu_paths (paths);
  gsize bytes = (gsize) batch * w->rows * sizeof (float);
  g_autofree float *other = g_malloc (bytes);
  LlamaTeam *one = llama_team_new (1), *three = llama_team_new (3);

  llama_kernels_set (LLAMA_KERNELS_PORTABLE);
  run (one, w, x, batch, out);
  for (guint p = 0; p < n_paths; p++)
    {
      llama_kernels_set (paths[p]);
      run (one, w, x, batch, other);
      g_assert_cmpmem (out, bytes, other, bytes);
      run (three, w, x, batch, other);
      g_assert_cmpmem (out, bytes, other, bytes);
    }
  llama_kernels_set (saved);
  llama_team_free (one);
  llama_team_free (three);
}

static void
test_f32 (void)
{
  static const guint cols_list[] = { 1, 7, 16, 17, 25, 31, 33, 288 };
  static const guint rows_list[] = { 1, 5, 13, 40 };

  for (guint c = 0; c < G_N_ELEMENTS (cols_list); c++)
    for (guint r = 0; r < G_N_ELEMENTS (rows_list); r++)
      {
        guint cols = cols_list[c], rows = rows_list[r], batch = 7;
        g_autofree float *wv = g_new (float, (gsize) rows * cols);
        g_autofree float *x = g_new (float, (gsize) batch * cols);
        g_autofree float *a = g_new (float, (gsize) batch * rows);
        LlamaMatrix w = { wv, NULL, NULL, rows, cols, 0 };

        for (gsize i = 0; i < (gsize) rows * cols; i++)
          wv[i] = uniform ();
        for (gsize i = 0; i < (gsize) batch * cols; i++)
          x[i] = uniform ();
        run_all_paths (&w, x, batch, a);
        for (guint i = 0; i < batch; i++)
          for (guint k = 0; k < rows; k++)
            {
              double want = 0;

              for (guint j = 0; j < cols; j++)
                want += (double) wv[(gsize) k * cols + j] * x[(gsize) i * cols + j];
              g_assert_cmpfloat_with_epsilon (a[i * rows + k], want, 1e-5 * MAX (1.0, fabs (want)) * sqrt (cols));
            }
      }
}

/* x rows for an int8 matmul: random, with hostile values in row 1 (a huge
 * value, NaN, subnormals, -0) that quantisation must absorb. */
static void
q8_inputs (float *x, guint batch, guint cols)
{
  for (gsize i = 0; i < (gsize) batch * cols; i++)
    x[i] = uniform () * 3.0f;
  if (batch > 1)
    {
      float *row = x + cols;

      row[0] = 1e30f;
      row[cols / 2] = NAN;
      row[cols - 1] = -0.0f;
      if (cols > 3)
        row[cols - 2] = 1e-41f;
    }
}

static void
test_q8 (void)
{
  static const guint gs_list[] = { 8, 16, 32, 64, 96, 128 };
  static const guint groups_list[] = { 1, 5, 8, 9 };
  static const guint rows_list[] = { 1, 3, 8, 9, 13, 17, 64 };

  for (guint g = 0; g < G_N_ELEMENTS (gs_list); g++)
    for (guint c = 0; c < G_N_ELEMENTS (groups_list); c++)
      for (guint r = 0; r < G_N_ELEMENTS (rows_list); r++)
        {
          guint gs = gs_list[g], cols = gs * groups_list[c], rows = rows_list[r], batch = 3;
          gsize n = (gsize) rows * cols;
          g_autofree gint8 *q = g_new (gint8, n);
          g_autofree float *scales = g_new (float, n / gs);
          g_autofree float *x = g_new (float, (gsize) batch * cols);
          g_autofree float *out = g_new (float, (gsize) batch * rows);
          g_autofree gint8 *xq = g_new (gint8, cols);
          g_autofree float *xs = g_new (float, cols / gs);
          LlamaMatrix w = { NULL, q, (const guint8 *) scales, rows, cols, gs };

          /* the whole int8 range, -128 included (no exporter writes it,
           * a file may hold it) */
          for (gsize i = 0; i < n; i++)
            q[i] = (gint8) (rng = rng * 6364136223846793005ull + 1442695040888963407ull, rng >> 56);
          q[0] = -128;
          q[n - 1] = 127;
          for (gsize i = 0; i < n / gs; i++)
            scales[i] = 0.01f + 0.01f * fabsf (uniform ());
          q8_inputs (x, batch, cols);

          run_all_paths (&w, x, batch, out);

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
                  g_assert_cmpfloat_with_epsilon (out[i * rows + k], want,
                                                  1e-5 * MAX (1.0, fabs (want)));
                }
            }
        }
}

/* An infinite activation makes its group's scale infinite: NaN outputs,
 * the same bits on every path. */
static void
test_q8_nonfinite (void)
{
  guint rows = 17, cols = 64, gs = 32;
  g_autofree gint8 *q = g_new (gint8, rows * cols);
  g_autofree float *scales = g_new (float, rows * cols / gs);
  g_autofree float *x = g_new (float, cols);
  g_autofree float *out = g_new (float, rows);
  LlamaMatrix w = { NULL, q, (const guint8 *) scales, rows, cols, gs };

  for (guint i = 0; i < rows * cols; i++)
    q[i] = (gint8) (i % 255 - 127);
  for (guint i = 0; i < rows * cols / gs; i++)
    scales[i] = 0.02f;
  for (guint i = 0; i < cols; i++)
    x[i] = uniform ();
  x[40] = INFINITY;
  run_all_paths (&w, x, 1, out);
  for (guint k = 0; k < rows; k++)
    g_assert_true (isnan (out[k]));
}

static void
test_quantize (void)
{
  const float x[8] = { 0.0f, 1.0f, -2.0f, 0.5f, NAN, INFINITY, -0.25f, 3.0f };
  const float zeros[4] = { 0, };
  gint8 q[8];
  float s[2];

  llama_quantize_q8 (q, s, x, 8, 4);
  g_assert_cmpfloat (s[0], ==, 2.0f / 127.0f);
  g_assert_cmpint (q[2], ==, -127);
  g_assert_cmpint (q[1], ==, 64);    /* 63.5 rounds away from zero */
  g_assert_cmpint (q[3], ==, 32);    /* 31.75 */
  for (guint i = 4; i < 8; i++)
    g_assert_true (q[i] >= -127 && q[i] <= 127);   /* NaN and inf stay in range */
  llama_quantize_q8 (q, s, zeros, 4, 4);
  g_assert_cmpfloat (s[0], ==, 0.0f);
  g_assert_cmpint (q[0], ==, 0);
}

/* The AVX-512 quantiser against the portable one: values, scales, and
 * the groups' sums. */
static void
test_quantize_avx512 (void)
{
#ifdef LLAMA_HAVE_X86
  guint n = 16 * 40;
  g_autofree float *x = g_new (float, n);
  g_autofree gint8 *q = g_new (gint8, n), *q2 = g_new (gint8, n);
  g_autofree float *s = g_new (float, n / 16), *s2 = g_new (float, n / 16);
  g_autofree gint32 *sums = g_new (gint32, n / 16);

  if (!llama_kernels_cpu_has (LLAMA_KERNELS_AVX512))
    {
      g_test_skip ("this CPU has no AVX-512 VNNI");
      return;
    }
  for (guint i = 0; i < n; i++)
    x[i] = uniform () * 10.0f;
  /* NaN, infinities, an all-zero group, subnormals, a group whose
   * largest value is negative, exact halves (scale 1: 127 is the largest
   * of elements 96..127) */
  x[20] = NAN;
  x[40] = INFINITY, x[41] = -INFINITY;
  for (guint i = 48; i < 64; i++)
    x[i] = 0.0f;
  x[64] = 1e-40f, x[65] = -3e-41f;
  x[80] = -50.0f;
  x[96] = 127.0f, x[97] = 63.5f, x[98] = -63.5f, x[99] = 0.5f, x[100] = -2.5f, x[101] = 0.49999997f;
  for (guint gs = 16; gs <= 64; gs *= 2)
    {
      llama_quantize_q8 (q, s, x, n, gs);
      llama_quantize_avx512 (q2, s2, sums, x, n, gs);
      g_assert_cmpmem (q, n, q2, n);
      g_assert_cmpmem (s, n / gs * sizeof (float), s2, n / gs * sizeof (float));
      for (guint g = 0; g < n / gs; g++)
        {
          gint32 want = 0;

          for (guint j = 0; j < gs; j++)
            want += q[g * gs + j];
          g_assert_cmpint (sums[g], ==, want);
        }
    }
#else
  g_test_skip ("not an x86 build");
#endif
}

static void
test_attend (void)
{
  static const guint head_sizes[] = { 7, 13, 16, 48, 80, 130 };
  LlamaKernels saved = llama_kernels_get (), paths[3];
  guint n_paths = cpu_paths (paths);

  for (guint h = 0; h < G_N_ELEMENTS (head_sizes); h++)
    for (guint n_pos = 1; n_pos <= 37; n_pos += 9)
      {
        guint hs = head_sizes[h], stride = 2 * hs + 3;
        g_autofree float *q = g_new (float, hs);
        g_autofree float *keys = g_new (float, (gsize) n_pos * stride);
        g_autofree float *values = g_new (float, (gsize) n_pos * stride);
        g_autofree float *att = g_new (float, n_pos);
        g_autofree float *want = g_new (float, hs), *got = g_new (float, hs);

        for (guint i = 0; i < hs; i++)
          q[i] = uniform ();
        for (gsize i = 0; i < (gsize) n_pos * stride; i++)
          keys[i] = uniform (), values[i] = uniform ();
        llama_kernels_set (LLAMA_KERNELS_PORTABLE);
        llama_attend (q, keys, values, stride, n_pos, hs, 0.25f, att, want);
        for (guint p = 0; p < n_paths; p++)
          {
            llama_kernels_set (paths[p]);
            llama_attend (q, keys, values, stride, n_pos, hs, 0.25f, att, got);
            g_assert_cmpmem (want, hs * sizeof (float), got, hs * sizeof (float));
          }
      }
  llama_kernels_set (saved);
}

static LlamaKernels initial_path;

/* The names, and the path chosen at the first use: $EXO_LLAMA_KERNELS
 * when the CPU has it, else the best the CPU has. */
static void
test_paths (void)
{
  const char *env = g_getenv ("EXO_LLAMA_KERNELS");
  LlamaKernels k, best = LLAMA_KERNELS_AVX512;

  for (LlamaKernels p = LLAMA_KERNELS_PORTABLE; p <= LLAMA_KERNELS_AVX512; p++)
    {
      g_assert_true (llama_kernels_from_string (llama_kernels_to_string (p), &k));
      g_assert_cmpint (k, ==, p);
    }
  g_assert_false (llama_kernels_from_string ("avx3", &k));
  g_assert_false (llama_kernels_from_string (NULL, &k));
  g_assert_true (llama_kernels_cpu_has (LLAMA_KERNELS_PORTABLE));

  while (!llama_kernels_cpu_has (best))
    best--;
  g_test_message ("kernel path in use: %s (EXO_LLAMA_KERNELS=%s), best on this CPU: %s",
                  llama_kernels_to_string (initial_path), env ? env : "",
                  llama_kernels_to_string (best));
  if (env != NULL && llama_kernels_from_string (env, &k) && llama_kernels_cpu_has (k))
    g_assert_cmpint (initial_path, ==, k);
  else
    g_assert_cmpint (initial_path, ==, best);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  initial_path = llama_kernels_get ();
  g_test_add_func ("/llama/kernels/paths", test_paths);
  g_test_add_func ("/llama/kernels/f32", test_f32);
  g_test_add_func ("/llama/kernels/q8", test_q8);
  g_test_add_func ("/llama/kernels/q8-nonfinite", test_q8_nonfinite);
  g_test_add_func ("/llama/kernels/quantize", test_quantize);
  g_test_add_func ("/llama/kernels/quantize-avx512", test_quantize_avx512);
  g_test_add_func ("/llama/kernels/attend", test_attend);
  return g_test_run ();
}
