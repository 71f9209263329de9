/* bench-llama.c: the `llama` engine on a stories15M-shaped model.
 *
 *   engine_decode_tokens_per_s      one thread, float32 (legacy file),
 *                                   decode steps through the engine API
 *                                   (with "reference_tokens_per_s" and
 *                                   "vs_reference": the plain -O3
 *                                   -ffast-math decoder of
 *                                   bench-llama-ref.c, same run)
 *   engine_decode_q8_tokens_per_s   the same with the version 2 int8 file
 *                                   ("vs_f32": the ratio to the above, in
 *                                   the same rounds; also per CPU second
 *                                   and inside the forward pass alone)
 *   engine_prefill_tokens_per_s     a 128-token prompt in one call
 *   engine_rss_mib                  resident memory of an engine holding
 *                                   the middle third of the layers, after
 *                                   decoding (all layers, first and last
 *                                   thirds in the JSON line)
 *
 * bench_llama_files() lends the float32 file and a tokenizer of its 32000
 * tokens (tiny_tokenizer_write_ids) to cluster_decode_ratio
 * (bench-cluster.c).
 *
 * The checkpoints are made here with random weights (dim 288, hidden 768,
 * 6 layers, 6 heads, 6 KV heads, vocab 32000, seq 256, tied classifier)
 * in a temporary folder, removed afterwards.  Figures are medians of
 * ROUNDS rounds; tokens are the argmax of the logits.
 *
 * Thread rules: one thread (the engine has its own worker).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bench.h"
#include "bench-llama-ref.h"
#include "exo-test-util.h"
#include "llama-test-util.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROUNDS        5
#define DECODE_STEPS  128
#define PREFILL       128

typedef struct
{
  char *dir;
  char *f32;
  char *q8;
  char *tokenizer;   /* 32000 pieces naming their ids: for bench-cluster.c */
} Files;

static Files files;

static void remove_files (void);

static gboolean
ensure_files (void)
{
  g_autoptr(TinyModel) m = NULL;
  const char *plugins = g_getenv ("EXO_TEST_BUILD_PLUGIN_DIR");

  if (files.dir != NULL)
    return TRUE;
  if (plugins == NULL)
    {
      g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
      g_autofree char *here = g_path_get_dirname (self);
      g_autofree char *dir = g_build_filename (here, "..", "..", "plugins", NULL);

      g_setenv ("EXO_TEST_BUILD_PLUGIN_DIR", dir, TRUE);
    }
  llama_test_load_plugins ();
  atexit (remove_files);
  files.dir = g_dir_make_tmp ("bench-llama-XXXXXX", NULL);
  m = tiny_model_new (288, 768, 6, 6, 6, 32000, 256, TRUE, 15);
  files.f32 = tiny_model_write (m, TINY_LEGACY, files.dir, "stories15M-shaped.bin");
  files.q8 = tiny_model_write (m, TINY_V2, files.dir, "stories15M-shaped-q8.bin");
  files.tokenizer = tiny_tokenizer_write_ids (m->vocab, files.dir, "tokenizer-ids.bin");
  return TRUE;
}

void
bench_llama_files (const char **f32,
                   const char **tokenizer)
{
  ensure_files ();
  *f32 = files.f32;
  *tokenizer = files.tokenizer;
}

static void
remove_files (void)
{
  if (files.dir == NULL)
    return;
  g_unlink (files.f32);
  g_unlink (files.q8);
  g_unlink (files.tokenizer);
  g_rmdir (files.dir);
  g_clear_pointer (&files.f32, g_free);
  g_clear_pointer (&files.q8, g_free);
  g_clear_pointer (&files.tokenizer, g_free);
  g_clear_pointer (&files.dir, g_free);
}

static gint32
argmax (ExoTensor *logits)
{
  const float *v = exo_tensor_peek_data (logits);
  gsize n = exo_tensor_get_n_elements (logits);
  gint32 best = 0;

  for (gsize i = 1; i < n; i++)
    if (v[i] > v[best])
      best = i;
  return best;
}

static ExoInferenceEngine *
engine_new (const char *path, guint threads)
{
  ExoInferenceEngine *engine = llama_test_engine_new (path, NULL, "threads", threads, NULL);

  g_assert_true (exo_test_initialize (EXO_RESOURCE (engine), NULL));
  return engine;
}

static void
engine_free (ExoInferenceEngine *engine)
{
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
  g_object_unref (engine);
}

/* CPU time of the whole process (all threads), ns: the machine is shared,
 * so rates are also given per CPU second, which the load does not skew. */
static gint64
cpu_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (gint64) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static guint64
forward_us (ExoInferenceEngine *engine)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (EXO_RESOURCE (engine));
  guint64 us = 0;

  g_variant_lookup (metrics, "forward-us", "t", &us);
  return us;
}

/* Decode tokens per second through the engine: BOS, then DECODE_STEPS
 * steps of one token; *compute gets the rate inside the forward pass
 * alone (without the hops to the worker thread and back). */
static double
decode_rate (ExoInferenceEngine *engine, guint round, double *compute, double *cpu)
{
  guint64 us0 = 0;
  gint64 c0 = 0;
  g_autoptr(ExoShard) shard = exo_shard_new ("bench", 0, 5, 6);
  g_autofree char *request = g_strdup_printf ("decode-%u", round);
  gint32 token = 1;
  gint64 t0 = 0;

  for (guint step = 0; step <= DECODE_STEPS; step++)
    {
      g_autoptr(ExoTensor) in = llama_test_tokens (&token, 1);
      g_autoptr(ExoTensor) out = NULL;
      g_autoptr(GError) error = NULL;

      if (step == 1)
        {
          t0 = bench_now_ns ();
          c0 = cpu_now_ns ();
          us0 = forward_us (engine);
        }
      out = llama_test_infer (engine, request, shard, in, &error);
      g_assert_no_error (error);
      token = argmax (out);
    }
  t0 = bench_now_ns () - t0;
  if (cpu != NULL)
    *cpu = DECODE_STEPS / ((cpu_now_ns () - c0) / 1e9);
  if (compute != NULL)
    *compute = DECODE_STEPS / ((forward_us (engine) - us0) / 1e6);
  exo_inference_engine_end_request (engine, request);
  return DECODE_STEPS / (t0 / 1e9);
}

static double
reference_rate (double *cpu)
{
  RefModel *ref = ref_model_open (files.f32);
  int token = ref_model_step (ref, 1, 0);
  gint64 t0 = bench_now_ns (), c0 = cpu_now_ns ();

  for (int pos = 1; pos <= DECODE_STEPS; pos++)
    token = ref_model_step (ref, token, pos);
  t0 = bench_now_ns () - t0;
  *cpu = DECODE_STEPS / ((cpu_now_ns () - c0) / 1e9);
  ref_model_free (ref);
  return DECODE_STEPS / (t0 / 1e9);
}

static double f32_rate;

/* The kernel path the engine picked (its "kernels" metric). */
static const char *
kernels_in_use (void)
{
  static char name[32];

  if (name[0] == '\0')
    {
      ExoInferenceEngine *engine = engine_new (files.f32, 1);
      g_autoptr(GVariant) metrics = exo_resource_get_metrics (EXO_RESOURCE (engine));
      const char *k = "?";

      g_variant_lookup (metrics, "kernels", "&s", &k);
      g_strlcpy (name, k, sizeof name);
      engine_free (engine);
    }
  return name;
}

static void
bench_engine_decode (void)
{
  ExoInferenceEngine *engine;
  double engine_rates[ROUNDS], ref_rates[ROUNDS], ratios[ROUNDS], compute[ROUNDS];
  double cpu[ROUNDS], ref_cpu[ROUNDS], cpu_ratios[ROUNDS];
  char extra[512];

  ensure_files ();
  engine = engine_new (files.f32, 1);
  /* alternate, so that both see the same machine load */
  for (guint r = 0; r < ROUNDS; r++)
    {
      engine_rates[r] = decode_rate (engine, r, &compute[r], &cpu[r]);
      ref_rates[r] = reference_rate (&ref_cpu[r]);
      ratios[r] = engine_rates[r] / ref_rates[r];
      cpu_ratios[r] = cpu[r] / ref_cpu[r];
    }
  engine_free (engine);
  f32_rate = bench_median (engine_rates, ROUNDS);
  g_snprintf (extra, sizeof extra,
              ", \"reference_tokens_per_s\": %.1f, \"vs_reference\": %.2f, "
              "\"per_cpu_s\": %.1f, \"reference_per_cpu_s\": %.1f, \"vs_reference_cpu\": %.2f, "
              "\"forward_only_tokens_per_s\": %.1f, \"kernels\": \"%s\", \"threads\": 1",
              bench_median (ref_rates, ROUNDS), bench_median (ratios, ROUNDS),
              bench_median (cpu, ROUNDS), bench_median (ref_cpu, ROUNDS),
              bench_median (cpu_ratios, ROUNDS), bench_median (compute, ROUNDS), kernels_in_use ());
  bench_report ("engine_decode_tokens_per_s", f32_rate, "tokens/s", DECODE_STEPS, extra);
}

static void
bench_engine_decode_q8 (void)
{
  ExoInferenceEngine *f32, *q8;
  double rates[ROUNDS], ratios[ROUNDS], cpu_ratios[ROUNDS], forward_ratios[ROUNDS];
  char extra[256];

  ensure_files ();
  f32 = engine_new (files.f32, 1);
  q8 = engine_new (files.q8, 1);
  for (guint r = 0; r < ROUNDS; r++)
    {
      double base_cpu, cpu, base_forward, forward;
      double base = decode_rate (f32, r, &base_forward, &base_cpu);

      rates[r] = decode_rate (q8, r, &forward, &cpu);
      ratios[r] = rates[r] / base;
      cpu_ratios[r] = cpu / base_cpu;
      forward_ratios[r] = forward / base_forward;
    }
  engine_free (f32);
  engine_free (q8);
  g_snprintf (extra, sizeof extra,
              ", \"vs_f32\": %.2f, \"vs_f32_cpu\": %.2f, \"vs_f32_forward_only\": %.2f, "
              "\"kernels\": \"%s\", \"threads\": 1",
              bench_median (ratios, ROUNDS), bench_median (cpu_ratios, ROUNDS),
              bench_median (forward_ratios, ROUNDS), kernels_in_use ());
  bench_report ("engine_decode_q8_tokens_per_s", bench_median (rates, ROUNDS), "tokens/s",
                DECODE_STEPS, extra);
}

static void
bench_engine_prefill (void)
{
  ExoInferenceEngine *engine;
  g_autoptr(ExoShard) shard = exo_shard_new ("bench", 0, 5, 6);
  gint32 prompt[PREFILL];
  double rates[ROUNDS], q8_rates[ROUNDS];
  char extra[128];

  ensure_files ();
  for (guint i = 0; i < PREFILL; i++)
    prompt[i] = (i * 7919 + 1) % 32000;
  for (guint q = 0; q < 2; q++)
    {
      engine = engine_new (q ? files.q8 : files.f32, 1);
      for (guint r = 0; r < ROUNDS; r++)
        {
          g_autoptr(ExoTensor) in = llama_test_tokens (prompt, PREFILL);
          g_autoptr(ExoTensor) out = NULL;
          g_autofree char *request = g_strdup_printf ("prefill-%u", r);
          gint64 t0 = bench_now_ns ();

          out = llama_test_infer (engine, request, shard, in, NULL);
          g_assert_nonnull (out);
          (q ? q8_rates : rates)[r] = PREFILL / ((bench_now_ns () - t0) / 1e9);
          exo_inference_engine_end_request (engine, request);
        }
      engine_free (engine);
    }
  g_snprintf (extra, sizeof extra, ", \"q8_tokens_per_s\": %.1f, \"prompt\": %d, \"threads\": 1",
              bench_median (q8_rates, ROUNDS), PREFILL);
  bench_report ("engine_prefill_tokens_per_s", bench_median (rates, ROUNDS), "tokens/s", PREFILL, extra);
}

static double
rss_mib (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL) ||
      (line = strstr (status, "VmRSS:")) == NULL)
    return 0;
  return g_ascii_strtod (line + 6, NULL) / 1024.0;
}

/* Forgets the cached pages of @path, so that what an engine maps is what
 * it reads (a warm page cache of large folios maps whole folios around
 * each touched page, which would blur the figure). */
static void
drop_page_cache (const char *path)
{
  int fd = open (path, O_RDONLY);

  if (fd < 0)
    return;
  fdatasync (fd);
  posix_fadvise (fd, 0, 0, POSIX_FADV_DONTNEED);
  close (fd);
}

/* Resident MiB that an engine holding layers @start..@end adds after
 * decoding 16 tokens, from a cold page cache. */
static double
shard_rss (guint start, guint end)
{
  g_autoptr(ExoShard) shard = exo_shard_new ("bench", start, end, 6);
  double before, after;
  ExoInferenceEngine *engine;
  g_autofree float *x = g_new0 (float, 288);

  drop_page_cache (files.f32);
  before = rss_mib ();
  engine = engine_new (files.f32, 1);

  for (guint i = 0; i < 288; i++)
    x[i] = (float) ((i * 37) % 11) / 11.0f - 0.5f;
  for (gint32 step = 0; step < 16; step++)
    {
      g_autoptr(ExoTensor) in = NULL;
      g_autoptr(ExoTensor) out = NULL;

      if (start == 0)
        in = llama_test_tokens (&step, 1);
      else
        {
          gsize shape[2] = { 1, 288 };
          g_autoptr(GBytes) b = g_bytes_new (x, 288 * sizeof (float));

          in = exo_tensor_new (EXO_DTYPE_FLOAT32, shape, 2, b, NULL);
        }
      out = llama_test_infer (engine, "rss", shard, in, NULL);
      g_assert_nonnull (out);
    }
  after = rss_mib ();
  engine_free (engine);
  return after - before;
}

static void
bench_engine_rss (void)
{
  double third, all, first, last;
  GStatBuf st = { 0, };
  char extra[512];

  ensure_files ();
  third = shard_rss (2, 3);
  all = shard_rss (0, 5);
  first = shard_rss (0, 1);
  last = shard_rss (4, 5);
  g_stat (files.f32, &st);
  g_snprintf (extra, sizeof extra,
              ", \"all_layers_mib\": %.1f, \"first_third_mib\": %.1f, \"last_third_mib\": %.1f, "
              "\"file_mib\": %.1f, \"note\": \"cold page cache; value: layers 2..3 of 6 (no "
              "embedding, no classifier); the first third adds the embedding rows it reads, "
              "the last the 32000x288 classifier\"", all, first, last, st.st_size / 1048576.0);
  bench_report ("engine_rss_mib", third, "MiB", 16, extra);
}

const BenchEntry bench_llama_entries[] = {
  { "engine_decode_tokens_per_s", bench_engine_decode },
  { "engine_decode_q8_tokens_per_s", bench_engine_decode_q8 },
  { "engine_prefill_tokens_per_s", bench_engine_prefill },
  { "engine_rss_mib", bench_engine_rss },
  { NULL, NULL },
};
