/* test-llama-forward.c: the `llama` engine's numbers.
 *
 *  - the forward pass of tiny checkpoints written here, in the three
 *    llama2.c formats, tied and untied, against a naive double-precision
 *    reference (llama-test-util.c), to 1e-5;
 *  - prefill = one token at a time, bit for bit;
 *  - sharded (layers 0..0 then 1..1 on two engines) = one engine, bit for
 *    bit, greedy and seeded sampling over 70 tokens; threads = 2 = 1;
 *  - a shard maps only its layers' pages;
 *  - the tokenizer (BPE merges, byte fallback, decode) and sampling.
 *
 * Thread rules: single-threaded test code.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"
#include "llama-test-util.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char *tmpdir;

static const char * const format_names[] = { "legacy", "v1", "v2" };

/* --- the reference -------------------------------------------------------------- */

static void
assert_close (const float *got, const double *want, int n, double tolerance, const char *what)
{
  for (int i = 0; i < n; i++)
    if (!(fabs (got[i] - want[i]) <= tolerance))
      g_error ("%s: logit %d is %.9g, the reference says %.9g (tolerance %g)",
               what, i, got[i], want[i], tolerance);
}

static void
check_against_reference (TinyFormat format, gboolean shared, int dim, int hidden)
{
  g_autoptr(TinyModel) m = tiny_model_new (dim, hidden, 2, 2, 1, 16, 8, shared, 7 + format);
  g_autoptr(TinyModel) dq = format == TINY_V2 ? tiny_model_dequantized (m) : NULL;
  g_autofree char *name = g_strdup_printf ("ref-%s-%s-%d.bin", format_names[format],
                                           shared ? "tied" : "untied", dim);
  g_autofree char *path = tiny_model_write (m, format, tmpdir, name);
  g_autoptr(ExoInferenceEngine) engine = llama_test_engine_new (path, NULL, NULL);
  g_autoptr(ExoShard) shard = exo_shard_new ("tiny", 0, 1, 2);
  TinyRef *ref = tiny_ref_new (dq != NULL ? dq : m, format == TINY_V2);
  const gint32 prompt[] = { 1, 5, 9 };
  const gint32 next[] = { 3, 7, 11, 2, 15 };
  double want[16];
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (engine), &error));
  g_assert_no_error (error);

  /* a 3-token prefill, then one token at a time up to seq_len */
  {
    g_autoptr(ExoTensor) in = llama_test_tokens (prompt, 3);
    g_autoptr(ExoTensor) out = llama_test_infer (engine, "r", shard, in, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (exo_tensor_get_n_elements (out), ==, 16);
    for (int i = 0; i < 3; i++)
      tiny_ref_step (ref, prompt[i], want);
    assert_close (exo_tensor_peek_data (out), want, 16, 1e-5, name);
  }
  for (guint i = 0; i < G_N_ELEMENTS (next); i++)
    {
      g_autoptr(ExoTensor) in = llama_test_tokens (&next[i], 1);
      g_autoptr(ExoTensor) out = llama_test_infer (engine, "r", shard, in, &error);

      g_assert_no_error (error);
      tiny_ref_step (ref, next[i], want);
      assert_close (exo_tensor_peek_data (out), want, 16, 1e-5, name);
    }

  /* position 8 is past seq_len 8 */
  {
    g_autoptr(ExoTensor) in = llama_test_tokens (&next[0], 1);
    g_autoptr(ExoTensor) out = llama_test_infer (engine, "r", shard, in, &error);

    g_assert_null (out);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
    g_assert_nonnull (strstr (error->message, "reached max-seq-len 8"));
  }
  tiny_ref_free (ref);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
}

static void
test_reference (gconstpointer data)
{
  TinyFormat format = GPOINTER_TO_INT (data);

  check_against_reference (format, TRUE, 8, 16);
  check_against_reference (format, FALSE, 8, 16);
  /* wide enough for the 16 lanes and for int8 groups of 32 (the AVX2 path) */
  check_against_reference (format, FALSE, 64, 96);
}

/* --- generation through one or more shards ------------------------------------------ */

typedef struct
{
  GArray    *ids;
  GPtrArray *logits;   /* GBytes per step */
} Run;

static void
run_clear (Run *run)
{
  g_clear_pointer (&run->ids, g_array_unref);
  g_clear_pointer (&run->logits, g_ptr_array_unref);
}

/* Runs @prompt through @engines[i] holding @shards[i], then samples
 * @n_gen tokens (temperature 0: greedy; else seeded with @seed). */
static Run
generate (ExoInferenceEngine **engines, ExoShard **shards, guint n_shards, const char *request,
          const gint32 *prompt, guint n_prompt, guint n_gen, double temperature, guint64 seed)
{
  Run run = { g_array_new (FALSE, FALSE, sizeof (gint32)),
              g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref) };
  ExoTensor *input = llama_test_tokens (prompt, n_prompt);
  g_autoptr(GError) error = NULL;

  for (guint step = 0; step < n_gen; step++)
    {
      ExoTensor *token;
      gint32 id;

      for (guint i = 0; i < n_shards; i++)
        {
          ExoTensor *out = llama_test_infer (engines[i], request, shards[i], input, &error);

          g_assert_no_error (error);
          exo_tensor_unref (input);
          input = out;
        }
      g_ptr_array_add (run.logits, g_bytes_ref (exo_tensor_get_data (input)));
      token = exo_inference_engine_sample_for_request (engines[n_shards - 1], request, input,
                                                       temperature, 0.9, seed, TRUE, &error);
      g_assert_no_error (error);
      id = llama_test_token (token);
      g_array_append_val (run.ids, id);
      exo_tensor_unref (input);
      input = token;
    }
  exo_tensor_unref (input);
  for (guint i = 0; i < n_shards; i++)
    exo_inference_engine_end_request (engines[i], request);
  return run;
}

static void
assert_runs_equal (Run *a, Run *b)
{
  g_assert_cmpuint (a->ids->len, ==, b->ids->len);
  g_assert_cmpmem (a->ids->data, a->ids->len * sizeof (gint32),
                   b->ids->data, b->ids->len * sizeof (gint32));
  for (guint i = 0; i < a->logits->len; i++)
    g_assert_true (g_bytes_equal (g_ptr_array_index (a->logits, i),
                                  g_ptr_array_index (b->logits, i)));
}

static void
test_sharded (gconstpointer data)
{
  TinyFormat format = GPOINTER_TO_INT (data);
  g_autoptr(TinyModel) m = tiny_model_new (32, 96, 2, 4, 2, 64, 128, FALSE, 11);
  g_autofree char *name = g_strdup_printf ("shard-%s.bin", format_names[format]);
  g_autofree char *path = tiny_model_write (m, format, tmpdir, name);
  g_autoptr(ExoInferenceEngine) whole = llama_test_engine_new (path, NULL, NULL);
  g_autoptr(ExoInferenceEngine) threaded = llama_test_engine_new (path, NULL, "threads", 2, NULL);
  g_autoptr(ExoInferenceEngine) a = llama_test_engine_new (path, NULL, NULL);
  g_autoptr(ExoInferenceEngine) b = llama_test_engine_new (path, NULL, NULL);
  ExoShard *all = exo_shard_new ("m", 0, 1, 2);
  ExoShard *first = exo_shard_new ("m", 0, 0, 2);
  ExoShard *second = exo_shard_new ("m", 1, 1, 2);
  ExoInferenceEngine *one[] = { whole }, *one_threaded[] = { threaded }, *two[] = { a, b };
  ExoShard *one_shard[] = { all }, *two_shards[] = { first, second };
  const gint32 prompt[] = { 1, 17, 33, 5, 60, 2 };

  g_assert_true (exo_test_initialize (EXO_RESOURCE (whole), NULL));
  g_assert_true (exo_test_initialize (EXO_RESOURCE (threaded), NULL));
  g_assert_true (exo_test_initialize (EXO_RESOURCE (a), NULL));
  g_assert_true (exo_test_initialize (EXO_RESOURCE (b), NULL));

  for (guint mode = 0; mode < 2; mode++)
    {
      double t = mode == 0 ? 0.0 : 0.9;
      Run r1 = generate (one, one_shard, 1, mode ? "r1-sampled" : "r1", prompt, 6, 70, t, 1234);
      Run r2 = generate (two, two_shards, 2, mode ? "r2-sampled" : "r2", prompt, 6, 70, t, 1234);
      Run r3 = generate (one_threaded, one_shard, 1, mode ? "r3-sampled" : "r3", prompt, 6, 70, t, 1234);
      Run r4 = generate (one, one_shard, 1, mode ? "r4-sampled" : "r4", prompt, 6, 70, t, 1234);
      guint distinct = 0;

      assert_runs_equal (&r1, &r2);
      assert_runs_equal (&r1, &r3);
      assert_runs_equal (&r1, &r4);   /* seeded: the same on every run */
      for (guint i = 1; i < r1.ids->len; i++)
        distinct += g_array_index (r1.ids, gint32, i) != g_array_index (r1.ids, gint32, i - 1);
      if (g_test_verbose ()) { for (guint i = 0; i < r1.ids->len; i++) g_printerr ("%d ", g_array_index (r1.ids, gint32, i)); g_printerr ("\n"); }
      if (mode == 1)
        g_assert_cmpuint (distinct, >, 5);   /* not one token over and over */
      if (mode == 1)
        {
          Run r5 = generate (one, one_shard, 1, mode ? "r5-sampled" : "r5", prompt, 6, 70, t, 99);

          g_assert_false (memcmp (r1.ids->data, r5.ids->data, 70 * sizeof (gint32)) == 0);
          run_clear (&r5);
        }
      run_clear (&r1);
      run_clear (&r2);
      run_clear (&r3);
      run_clear (&r4);
    }

  /* a prefill = the same tokens one at a time, bit for bit */
  {
    g_autoptr(ExoTensor) in = llama_test_tokens (prompt, 6);
    g_autoptr(ExoTensor) batched = llama_test_infer (whole, "p1", all, in, NULL);
    g_autoptr(ExoTensor) last = NULL;

    for (guint i = 0; i < 6; i++)
      {
        g_autoptr(ExoTensor) one_token = llama_test_tokens (&prompt[i], 1);

        g_clear_pointer (&last, exo_tensor_unref);
        last = llama_test_infer (whole, "p2", all, one_token, NULL);
      }
    g_assert_true (g_bytes_equal (exo_tensor_get_data (batched), exo_tensor_get_data (last)));
    exo_inference_engine_end_request (whole, "p1");
    exo_inference_engine_end_request (whole, "p2");
  }

  /* every state was freed by end_request */
  {
    g_autoptr(GVariant) metrics = exo_resource_get_metrics (EXO_RESOURCE (whole));
    guint sessions = 99;
    guint64 kv = 99;

    g_assert_true (g_variant_lookup (metrics, "sessions", "u", &sessions));
    g_assert_true (g_variant_lookup (metrics, "kv-cache-bytes", "t", &kv));
    g_assert_cmpuint (sessions, ==, 0);
    g_assert_cmpuint (kv, ==, 0);
  }

  exo_shard_free (all);
  exo_shard_free (first);
  exo_shard_free (second);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (whole), NULL));
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (threaded), NULL));
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (a), NULL));
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (b), NULL));
}

/* ExoInferenceEngine.try_infer_tensor (plugin ABI 3.3): a decode step of a
 * shard without the classifier runs at once, on this thread, with the
 * same output as through the task; a prompt's several positions, the
 * shard with the classifier and a request the engine refuses are not
 * taken, or fail with the step's error. */
static void
test_try_infer (void)
{
  g_autoptr(TinyModel) m = tiny_model_new (32, 96, 2, 4, 2, 64, 128, FALSE, 5);
  g_autofree char *path = tiny_model_write (m, TINY_V1, tmpdir, "try.bin");
  g_autoptr(ExoInferenceEngine) a = llama_test_engine_new (path, NULL, NULL);
  g_autoptr(ExoInferenceEngine) twin = llama_test_engine_new (path, NULL, NULL);
  g_autoptr(ExoInferenceEngine) b = llama_test_engine_new (path, NULL, NULL);
  g_autoptr(ExoShard) first = exo_shard_new ("m", 0, 0, 2);
  g_autoptr(ExoShard) second = exo_shard_new ("m", 1, 1, 2);
  const gint32 prompt[] = { 1, 17, 33, 5 }, next = 9;
  g_autoptr(ExoTensor) in = llama_test_tokens (prompt, 4);
  g_autoptr(ExoTensor) one = llama_test_tokens (&next, 1);
  g_autoptr(ExoTensor) out = NULL, via_task = NULL, hidden = NULL, logits = NULL;
  g_autoptr(GVariant) metrics = NULL;
  g_autoptr(GError) error = NULL;
  guint64 inline_steps = 0;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (a), NULL));
  g_assert_true (exo_test_initialize (EXO_RESOURCE (twin), NULL));
  g_assert_true (exo_test_initialize (EXO_RESOURCE (b), NULL));

  /* a prompt (four positions): not taken, nothing set */
  g_assert_false (exo_inference_engine_try_infer_tensor (a, "r", first, in, &out, &error));
  g_assert_no_error (error);
  g_assert_null (out);
  hidden = llama_test_infer (a, "r", first, in, &error);
  g_assert_no_error (error);
  g_clear_pointer (&hidden, exo_tensor_unref);
  via_task = llama_test_infer (twin, "r", first, in, &error);
  g_assert_no_error (error);
  g_clear_pointer (&via_task, exo_tensor_unref);

  /* the next token through the first shard: taken, the task's output */
  g_assert_true (exo_inference_engine_try_infer_tensor (a, "r", first, one, &out, &error));
  g_assert_no_error (error);
  g_assert_nonnull (out);
  via_task = llama_test_infer (twin, "r", first, one, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (exo_tensor_get_data (out), exo_tensor_get_data (via_task)));
  metrics = exo_resource_get_metrics (EXO_RESOURCE (a));
  g_assert_true (g_variant_lookup (metrics, "inline-steps", "t", &inline_steps));
  g_assert_cmpuint (inline_steps, ==, 1);

  /* the shard with the classifier: never on the caller's thread */
  logits = llama_test_infer (b, "r", second, hidden = llama_test_infer (twin, "x", first, in, NULL), &error);
  g_assert_no_error (error);
  g_clear_pointer (&logits, exo_tensor_unref);
  g_assert_false (exo_inference_engine_try_infer_tensor (b, "r", second, out, &logits, &error));
  g_assert_no_error (error);
  g_assert_null (logits);

  /* a step the engine refuses (a token past the vocabulary): taken, with
   * the error the task would give; the request's state is unchanged */
  g_clear_pointer (&out, exo_tensor_unref);
  {
    const gint32 past = 1000;
    g_autoptr(ExoTensor) bad = llama_test_tokens (&past, 1);
    g_autoptr(ExoTensor) again = NULL;

    g_assert_true (exo_inference_engine_try_infer_tensor (a, "r", first, bad, &out, &error));
    g_assert_nonnull (error);
    g_assert_null (out);
    g_assert_nonnull (strstr (error->message, "1000"));
    g_clear_error (&error);
    again = llama_test_infer (a, "r", first, bad, &error);
    g_assert_nonnull (error);
    g_assert_null (again);
    g_clear_error (&error);
  }
  exo_inference_engine_end_request (a, "r");

  /* right after a step through the task (the worker's), the next small
   * step is taken: the worker counts itself done before its task returns */
  for (guint k = 0; k < 20; k++)
    {
      g_autofree char *id = g_strdup_printf ("k%u", k);
      g_autoptr(ExoTensor) prefilled = llama_test_infer (a, id, first, in, &error);
      g_autoptr(ExoTensor) next_out = NULL;

      g_assert_no_error (error);
      g_assert_true (exo_inference_engine_try_infer_tensor (a, id, first, one, &next_out, &error));
      g_assert_no_error (error);
      g_assert_nonnull (next_out);
      exo_inference_engine_end_request (a, id);
    }

  exo_inference_engine_end_request (twin, "r");
  exo_inference_engine_end_request (twin, "x");
  exo_inference_engine_end_request (b, "r");
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (a), NULL));
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (twin), NULL));
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (b), NULL));
}

/* The model digest (ExoInferenceEngine.get_model_digest): the same for
 * copies of a checkpoint, another one when any tensor differs (a
 * fine-tune of the value projections only, one norm weight), or the same
 * model in another format. */
static gchar *
digest_of (const char *path)
{
  g_autoptr(ExoInferenceEngine) engine = llama_test_engine_new (path, NULL, NULL);
  char *digest;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (engine), NULL));
  digest = exo_inference_engine_get_model_digest (engine);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
  g_assert_nonnull (digest);
  g_assert_true (g_str_has_prefix (digest, "llama2c-sha256:"));
  return digest;
}

static void
test_digest (void)
{
  g_autoptr(TinyModel) m = tiny_model_new (64, 160, 2, 4, 2, 64, 128, FALSE, 21);
  g_autofree char *a = tiny_model_write (m, TINY_V1, tmpdir, "digest-a.bin");
  g_autofree char *b = tiny_model_write (m, TINY_V1, tmpdir, "digest-b.bin");
  g_autofree char *q = tiny_model_write (m, TINY_V2, tmpdir, "digest-q.bin");
  g_autofree char *da = digest_of (a), *db = digest_of (b), *dq = digest_of (q);
  g_autofree char *dv = NULL, *dn = NULL, *v = NULL, *n = NULL;

  g_assert_cmpstr (da, ==, db);
  g_assert_cmpstr (da, !=, dq);
  /* the second layer's value projection, scaled (all of it) */
  for (guint i = 0; i < 64u * 32u; i++)
    m->wv[64u * 32u + i] *= 1.5f;
  v = tiny_model_write (m, TINY_V1, tmpdir, "digest-v.bin");
  dv = digest_of (v);
  g_assert_cmpstr (dv, !=, da);
  /* one weight of the final norm */
  m->final_norm[7] += 0.25f;
  n = tiny_model_write (m, TINY_V1, tmpdir, "digest-n.bin");
  dn = digest_of (n);
  g_assert_cmpstr (dn, !=, dv);
}

/* A long prompt (more than one chunk of the batched pass) through two
 * shards = through one, and = one token at a time. */
static void
test_long_prefill (void)
{
  g_autoptr(TinyModel) m = tiny_model_new (32, 96, 2, 4, 2, 64, 128, TRUE, 5);
  g_autofree char *path = tiny_model_write (m, TINY_LEGACY, tmpdir, "long.bin");
  g_autoptr(ExoInferenceEngine) whole = llama_test_engine_new (path, NULL, NULL);
  g_autoptr(ExoInferenceEngine) a = llama_test_engine_new (path, NULL, "threads", 2, NULL);
  g_autoptr(ExoInferenceEngine) b = llama_test_engine_new (path, NULL, NULL);
  g_autoptr(ExoShard) all = exo_shard_new ("m", 0, 1, 2);
  g_autoptr(ExoShard) first = exo_shard_new ("m", 0, 0, 2);
  g_autoptr(ExoShard) second = exo_shard_new ("m", 1, 1, 2);
  gint32 prompt[100];
  g_autoptr(ExoTensor) in = NULL;
  g_autoptr(ExoTensor) batched = NULL;
  g_autoptr(ExoTensor) mid = NULL;
  g_autoptr(ExoTensor) sharded = NULL;
  g_autoptr(ExoTensor) last = NULL;
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (prompt); i++)
    prompt[i] = (i * 37 + 1) % 64;
  g_assert_true (exo_test_initialize (EXO_RESOURCE (whole), NULL));
  g_assert_true (exo_test_initialize (EXO_RESOURCE (a), NULL));
  g_assert_true (exo_test_initialize (EXO_RESOURCE (b), NULL));
  in = llama_test_tokens (prompt, G_N_ELEMENTS (prompt));
  batched = llama_test_infer (whole, "b", all, in, &error);
  g_assert_no_error (error);
  mid = llama_test_infer (a, "s", first, in, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (exo_tensor_get_n_dims (mid), ==, 2);
  g_assert_cmpuint (exo_tensor_get_shape (mid)[0], ==, 100);
  g_assert_cmpuint (exo_tensor_get_shape (mid)[1], ==, 32);
  sharded = llama_test_infer (b, "s", second, mid, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (exo_tensor_get_data (batched), exo_tensor_get_data (sharded)));
  for (guint i = 0; i < G_N_ELEMENTS (prompt); i++)
    {
      g_autoptr(ExoTensor) one = llama_test_tokens (&prompt[i], 1);

      g_clear_pointer (&last, exo_tensor_unref);
      last = llama_test_infer (whole, "t", all, one, NULL);
    }
  g_assert_true (g_bytes_equal (exo_tensor_get_data (batched), exo_tensor_get_data (last)));
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (whole), NULL));
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (a), NULL));
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (b), NULL));
}

/* --- pages ------------------------------------------------------------------------------ */

/* The resident KiB of the mappings of @path (/proc/self/smaps). */
static double
mapped_kib (const char *path)
{
  g_autofree char *smaps = NULL;
  g_auto(GStrv) lines = NULL;
  gboolean inside = FALSE;
  double kib = 0;

  g_assert_true (g_file_get_contents ("/proc/self/smaps", &smaps, NULL, NULL));
  lines = g_strsplit (smaps, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *l = lines[i];

      if (g_ascii_isxdigit (l[0]) && strchr (l, '-') != NULL && strchr (l, ' ') != NULL)
        inside = g_str_has_suffix (l, path);
      else if (inside && g_str_has_prefix (l, "Rss:"))
        kib += g_ascii_strtod (l + 4, NULL);
    }
  return kib;
}

/* Evicts @path from the page cache; FALSE where that cannot be done (tmpfs). */
static gboolean
drop_page_cache (const char *path, gsize size)
{
  int fd = open (path, O_RDONLY);
  gsize page = sysconf (_SC_PAGESIZE), resident = 0;
  g_autofree unsigned char *vec = g_malloc ((size + page - 1) / page);
  void *map;

  g_assert_cmpint (fd, >=, 0);
  fdatasync (fd);
  posix_fadvise (fd, 0, 0, POSIX_FADV_DONTNEED);
  map = mmap (NULL, size, PROT_READ, MAP_SHARED, fd, 0);
  g_assert_true (map != MAP_FAILED);
  g_assert_cmpint (mincore (map, size, vec), ==, 0);
  for (gsize i = 0; i < (size + page - 1) / page; i++)
    resident += vec[i] & 1;
  munmap (map, size);
  close (fd);
  return resident * page < size / 10;
}

/* A shard maps only its layers: an engine running the middle two of four
 * layers brings in those layers' pages (2 × 2.5 MiB), not the 14 MiB file. */
static void
test_pages (void)
{
  g_autoptr(TinyModel) m = tiny_model_new (256, 512, 4, 4, 4, 4096, 64, TRUE, 9);
  g_autofree char *path = tiny_model_write (m, TINY_LEGACY, tmpdir, "pages.bin");
  g_autoptr(ExoShard) middle = exo_shard_new ("m", 1, 2, 4);
  g_autoptr(ExoShard) all = exo_shard_new ("m", 0, 3, 4);
  gsize size = 0;
  double layer_kib = (4.0 * 256 * 256 + 3.0 * 256 * 512) * 4 / 1024, file_kib;

  {
    GStatBuf st;

    g_assert_cmpint (g_stat (path, &st), ==, 0);
    size = st.st_size;
    file_kib = size / 1024.0;
  }
  for (guint run = 0; run < 2; run++)
    {
      g_autoptr(ExoInferenceEngine) engine = llama_test_engine_new (path, NULL, NULL);
      g_autofree float *x = g_new0 (float, 256);
      double grown = 0;

      if (!drop_page_cache (path, size))
        {
          g_test_skip ("the page cache of the temporary folder cannot be dropped");
          return;
        }
      g_assert_true (exo_test_initialize (EXO_RESOURCE (engine), NULL));
      for (gint32 step = 0; step < 4; step++)
        {
          g_autoptr(ExoTensor) in = NULL;
          g_autoptr(ExoTensor) out = NULL;
          g_autoptr(GError) error = NULL;

          if (run == 0)
            {
              gsize shape[2] = { 1, 256 };
              g_autoptr(GBytes) b = NULL;

              x[step] = 1.0f;
              b = g_bytes_new (x, 256 * sizeof (float));
              in = exo_tensor_new (EXO_DTYPE_FLOAT32, shape, 2, b, NULL);
            }
          else
            in = llama_test_tokens (&step, 1);
          out = llama_test_infer (engine, "p", run == 0 ? middle : all, in, &error);
          g_assert_no_error (error);
        }
      grown = mapped_kib (path);
      g_test_message ("%s: %.0f KiB of a %.0f KiB file mapped (2 layers: %.0f KiB)",
                      run == 0 ? "layers 1..2" : "all layers", grown, file_kib, 2 * layer_kib);
      if (run == 0)
        {
          g_assert_cmpfloat (grown, >=, 2 * layer_kib * 0.9);
          g_assert_cmpfloat (grown, <=, 2 * layer_kib + 256);   /* + a page at each end */
        }
      else
        g_assert_cmpfloat (grown, >=, file_kib * 0.9);
      g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
    }
}

/* --- sampling ------------------------------------------------------------------------ */

static void
test_sampling (void)
{
  g_autoptr(TinyModel) m = tiny_model_new (8, 16, 1, 2, 1, 16, 8, TRUE, 3);
  g_autofree char *path = tiny_model_write (m, TINY_LEGACY, tmpdir, "sample.bin");
  g_autoptr(ExoInferenceEngine) engine = llama_test_engine_new (path, NULL, NULL);
  float logits[16] = { 0, };
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(ExoTensor) x = NULL;
  gsize shape[1] = { 16 };
  guint counts[16] = { 0, };
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (engine), NULL));
  g_assert_cmpint (exo_inference_engine_get_eos_token (engine), ==, 2);
  logits[3] = 5.0f;
  logits[7] = 4.5f;
  logits[11] = -20.0f;
  bytes = g_bytes_new (logits, sizeof logits);
  x = exo_tensor_new (EXO_DTYPE_FLOAT32, shape, 1, bytes, NULL);

  /* greedy */
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(ExoTensor) t = exo_inference_engine_sample (engine, x, 0.0, 1.0, &error);

      g_assert_no_error (error);
      g_assert_cmpint (llama_test_token (t), ==, 3);
    }
  /* top-p 0.5 keeps only token 3 (its probability is above 0.5) */
  for (guint i = 0; i < 50; i++)
    {
      g_autoptr(ExoTensor) t = exo_inference_engine_sample_for_request (engine, "q", x, 1.0, 0.5,
                                                                        7, TRUE, &error);
      g_assert_cmpint (llama_test_token (t), ==, 3);
    }
  /* temperature 1, no top-p: both likely tokens come up, others rarely */
  for (guint i = 0; i < 400; i++)
    {
      g_autoptr(ExoTensor) t = exo_inference_engine_sample_for_request (engine, "r", x, 1.0, 1.0,
                                                                        42, TRUE, &error);
      gint32 id = llama_test_token (t);

      g_assert_cmpint (id, >=, 0);
      g_assert_cmpint (id, <, 16);
      g_assert_cmpint (id, !=, 11);
      counts[id]++;
    }
  g_assert_cmpuint (counts[3], >, 150);
  g_assert_cmpuint (counts[7], >, 80);
  /* wrong shapes are errors */
  {
    const gint32 ids[] = { 1, 2 };
    g_autoptr(ExoTensor) wrong = llama_test_tokens (ids, 2);
    g_autoptr(ExoTensor) t = exo_inference_engine_sample (engine, wrong, 0.0, 1.0, &error);

    g_assert_null (t);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
  }
  /* one logit that is not finite (a checkpoint with NaN or infinite
   * weights): an error that says so, greedy or sampled — not a token */
  for (guint k = 0; k < 2; k++)
    {
      float broken[16];
      g_autoptr(GBytes) b = NULL;
      g_autoptr(ExoTensor) bx = NULL;

      for (guint i = 0; i < 16; i++)
        broken[i] = k == 0 ? (i == 9 ? NAN : 1.0f) : (i == 5 ? INFINITY : 1.0f);
      b = g_bytes_new (broken, sizeof broken);
      bx = exo_tensor_new (EXO_DTYPE_FLOAT32, shape, 1, b, NULL);
      for (guint mode = 0; mode < 2; mode++)
        {
          g_autoptr(ExoTensor) t = exo_inference_engine_sample_for_request (engine, "r", bx,
                                                                            mode ? 0.8 : 0.0, 0.9,
                                                                            1, TRUE, &error);

          g_assert_null (t);
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
          g_assert_nonnull (strstr (error->message, "not finite"));
          g_clear_error (&error);
        }
    }
  exo_inference_engine_end_request (engine, "q");
  exo_inference_engine_end_request (engine, "r");
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
}

/* --- the tokenizer --------------------------------------------------------------------- */

#define TOK_VOCAB 300

static char *
write_tokenizer (const char *name)
{
  const char *pieces[TOK_VOCAB];
  float scores[TOK_VOCAB];
  static const char * const words[] = {
    " ", "h", "e", "l", "o", "he", "ll", "llo", " he", "hello", " hello", "é", " w", "w", "or",
    "ld", "orld", " world", "!!", "a", "aa", "aaa", "aaaa", "r", "d",
  };
  static const float word_scores[] = {
    -100, -50, -50, -50, -50, 1, 2, 3, 4, 5, 6, -40, 0.5, -50, 0.25, 0.75, 0.8, 0.9, -1,
    -60, -3, -2, -2.5, -50, -50,
  };
  g_autofree char **owned = g_new0 (char *, 256);

  pieces[0] = "<unk>";
  pieces[1] = "\n<s>\n";
  pieces[2] = "\n</s>\n";
  for (guint b = 0; b < 256; b++)
    pieces[3 + b] = owned[b] = g_strdup_printf ("<0x%02X>", b);
  for (guint i = 0; i < TOK_VOCAB; i++)
    scores[i] = 0.0f;
  for (guint i = 0; i < G_N_ELEMENTS (words); i++)
    {
      pieces[259 + i] = words[i];
      scores[259 + i] = word_scores[i];
    }
  for (guint i = 259 + G_N_ELEMENTS (words); i < TOK_VOCAB; i++)
    pieces[i] = "zz", scores[i] = -1000;   /* duplicates: the first one is found */
  {
    char *path = tiny_tokenizer_write (pieces, scores, TOK_VOCAB, tmpdir, name);

    for (guint b = 0; b < 256; b++)
      g_free (owned[b]);
    return path;
  }
}

static void
assert_encodes (ExoInferenceEngine *engine, const char *text, const gint32 *want, gsize n_want)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoTensor) ids = llama_test_encode (engine, text, &error);
  g_autoptr(ExoShard) shard = exo_shard_new ("m", 0, 0, 1);
  g_autofree char *back = NULL;

  g_assert_no_error (error);
  g_assert_cmpmem (exo_tensor_peek_data (ids), exo_tensor_get_n_elements (ids) * 4, want, n_want * 4);
  back = exo_inference_engine_decode (engine, shard, ids, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (back, ==, text);
}

static void
test_tokenizer (void)
{
  g_autoptr(TinyModel) m = tiny_model_new (8, 16, 1, 2, 1, TOK_VOCAB, 64, TRUE, 1);
  g_autofree char *path = tiny_model_write (m, TINY_LEGACY, tmpdir, "tok-model.bin");
  g_autofree char *tok = write_tokenizer ("tok.bin");
  g_autoptr(ExoInferenceEngine) engine = llama_test_engine_new (path, tok, NULL);
  g_autoptr(GError) error = NULL;
  /* " hello": ll (2), llo (3), he (1), hello (5), " hello" (6) */
  const gint32 hello[] = { 1, 269 };
  /* " hello world": " w" + orld beats " world"'s parts: o r l d → or, ld → orld → " world" */
  const gint32 hello_world[] = { 1, 269, 276 };
  /* é is in the vocabulary; "!" is not: byte fallback 3 + 0x21; € is 3 bytes not in it */
  const gint32 bytes[] = { 1, 259, 260, 270, 3 + 0x21, 3 + 0xE2, 3 + 0x82, 3 + 0xAC };
  const gint32 aaaaa[] = { 1, 259, 281, 278 };
  const gint32 bos[] = { 1 };

  g_assert_true (exo_test_initialize (EXO_RESOURCE (engine), &error));
  g_assert_no_error (error);
  assert_encodes (engine, "hello", hello, G_N_ELEMENTS (hello));
  assert_encodes (engine, "hello world", hello_world, G_N_ELEMENTS (hello_world));
  assert_encodes (engine, "hé!€", bytes, G_N_ELEMENTS (bytes));
  assert_encodes (engine, "", bos, 1);

  /* highest score first, the leftmost of equals: " " a a a a a → " " aa a a a
   * → " " aaa a a (aaa −2 beats aa −3) → " " aaaa a (−2.5) */
  assert_encodes (engine, "aaaaa", aaaaa, G_N_ELEMENTS (aaaaa));

  /* decode: an id outside the vocabulary is an error; EOS gives nothing */
  {
    const gint32 bad[] = { 300 };
    const gint32 eos[] = { 268, 2 };
    g_autoptr(ExoTensor) t = llama_test_tokens (bad, 1);
    g_autoptr(ExoTensor) e = llama_test_tokens (eos, 2);
    g_autoptr(ExoShard) shard = exo_shard_new ("m", 0, 0, 1);
    g_autofree char *text = exo_inference_engine_decode (engine, shard, t, &error);
    g_autofree char *text2 = NULL;

    g_assert_null (text);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
    text2 = exo_inference_engine_decode (engine, shard, e, &error);
    g_assert_cmpstr (text2, ==, "hello");
  }

  /* more text than 64 positions can hold: refused before any merging */
  {
    GString *text = g_string_new (NULL);
    g_autoptr(ExoTensor) ids = NULL;

    for (guint i = 0; i < 4000; i++)
      g_string_append (text, "héllo");
    ids = llama_test_encode (engine, text->str, &error);
    g_assert_null (ids);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "max-seq-len"));
    g_clear_error (&error);
    g_string_free (text, TRUE);
  }

  /* a long prompt is encoded in O(n log n): 24000 bytes, quickly */
  {
    g_autoptr(TinyModel) m2 = tiny_model_new (8, 16, 1, 2, 1, TOK_VOCAB, 32768, TRUE, 1);
    g_autofree char *path2 = tiny_model_write (m2, TINY_LEGACY, tmpdir, "tok-long.bin");
    g_autoptr(ExoInferenceEngine) big = llama_test_engine_new (path2, tok, NULL);
    g_autoptr(ExoShard) shard = exo_shard_new ("m", 0, 0, 1);
    GString *text = g_string_new (NULL);
    g_autoptr(ExoTensor) ids = NULL;
    g_autofree char *back = NULL;
    gint64 t0;

    g_assert_true (exo_test_initialize (EXO_RESOURCE (big), NULL));
    for (guint i = 0; i < 4000; i++)
      g_string_append (text, i % 2 ? "héllo" : "aaa w");
    t0 = g_get_monotonic_time ();
    ids = llama_test_encode (big, text->str, &error);
    g_assert_no_error (error);
    g_assert_cmpint (g_get_monotonic_time () - t0, <, 2 * G_USEC_PER_SEC * exo_test_slow_factor ());
    back = exo_inference_engine_decode (big, shard, ids, &error);
    g_assert_cmpstr (back, ==, text->str);
    g_string_free (text, TRUE);
    g_assert_true (exo_test_cleanup (EXO_RESOURCE (big), NULL));
  }
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  llama_test_load_plugins ();
  if (!llama_test_kernels_usable ())
    return 0;
  tmpdir = g_dir_make_tmp ("test-llama-XXXXXX", NULL);

  g_test_add_data_func ("/llama/forward/reference/legacy", GINT_TO_POINTER (TINY_LEGACY), test_reference);
  g_test_add_data_func ("/llama/forward/reference/v1", GINT_TO_POINTER (TINY_V1), test_reference);
  g_test_add_data_func ("/llama/forward/reference/v2", GINT_TO_POINTER (TINY_V2), test_reference);
  g_test_add_data_func ("/llama/forward/sharded/legacy", GINT_TO_POINTER (TINY_LEGACY), test_sharded);
  g_test_add_data_func ("/llama/forward/sharded/v1", GINT_TO_POINTER (TINY_V1), test_sharded);
  g_test_add_data_func ("/llama/forward/sharded/v2", GINT_TO_POINTER (TINY_V2), test_sharded);
  g_test_add_func ("/llama/forward/long-prefill", test_long_prefill);
  g_test_add_func ("/llama/forward/try-infer", test_try_infer);
  g_test_add_func ("/llama/forward/digest", test_digest);
  g_test_add_func ("/llama/forward/pages", test_pages);
  g_test_add_func ("/llama/sampling", test_sampling);
  g_test_add_func ("/llama/tokenizer", test_tokenizer);

  rc = g_test_run ();
  {
    g_autoptr(GFile) dir = g_file_new_for_path (tmpdir);
    g_autoptr(GFileEnumerator) e = g_file_enumerate_children (dir, "standard::name", 0, NULL, NULL);
    GFileInfo *info;

    while (e != NULL && (info = g_file_enumerator_next_file (e, NULL, NULL)) != NULL)
      {
        g_autoptr(GFile) child = g_file_get_child (dir, g_file_info_get_name (info));

        g_file_delete (child, NULL, NULL);
        g_object_unref (info);
      }
    g_file_delete (dir, NULL, NULL);
  }
  g_free (tmpdir);
  return rc;
}
