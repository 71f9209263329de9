/* test-llama-stories.c: a checkpoint that another tool wrote.
 *
 * ../shared/models/stories260K.bin (llama2.c's legacy float32 format,
 * trained and exported by llama2.c; path in $EXO_TEST_STORIES260K, the
 * test skips when it is absent): it loads, its numbers match the naive
 * reference, and greedy and seeded generation give the same ids and logits
 * on one engine and on three (layers 0..1, 2..3, 4..4).  It has no
 * tokenizer here, so ids are checked, not text.
 *
 * Thread rules: single-threaded test code.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"
#include "llama-test-util.h"

#include <math.h>
#include <string.h>

static const char *
stories_path (void)
{
  const char *path = g_getenv ("EXO_TEST_STORIES260K");

  if (path == NULL || !g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("stories260K.bin is absent (../shared/models beside the source tree)");
      return NULL;
    }
  return path;
}

/* Generates @n tokens from BOS through @n_engines shards; the ids, and the
 * logits of every step in @logits. */
static GArray *
generate (ExoInferenceEngine **engines, ExoShard **shards, guint n_engines, const char *request,
          guint n, double temperature, GPtrArray *logits)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  const gint32 bos = 1;
  ExoTensor *input = llama_test_tokens (&bos, 1);
  g_autoptr(GError) error = NULL;

  for (guint step = 0; step < n; step++)
    {
      ExoTensor *token;
      gint32 id;

      for (guint i = 0; i < n_engines; i++)
        {
          ExoTensor *out = llama_test_infer (engines[i], request, shards[i], input, &error);

          g_assert_no_error (error);
          exo_tensor_unref (input);
          input = out;
        }
      g_ptr_array_add (logits, g_bytes_ref (exo_tensor_get_data (input)));
      token = exo_inference_engine_sample_for_request (engines[n_engines - 1], request, input,
                                                       temperature, 0.9, 260, TRUE, &error);
      g_assert_no_error (error);
      id = llama_test_token (token);
      g_array_append_val (ids, id);
      exo_tensor_unref (input);
      input = token;
    }
  exo_tensor_unref (input);
  for (guint i = 0; i < n_engines; i++)
    exo_inference_engine_end_request (engines[i], request);
  return ids;
}

static void
test_one_and_three (void)
{
  const char *path = stories_path ();
  ExoInferenceEngine *engines[4];
  ExoShard *shards[4];
  guint n_layers = 0;

  if (path == NULL)
    return;
  for (guint i = 0; i < 4; i++)
    {
      engines[i] = llama_test_engine_new (path, NULL, NULL);
      g_assert_true (exo_test_initialize (EXO_RESOURCE (engines[i]), NULL));
    }
  g_object_get (engines[0], "n-layers", &n_layers, NULL);
  g_assert_cmpuint (n_layers, ==, 5);
  shards[0] = exo_shard_new ("stories260K", 0, 4, 5);
  shards[1] = exo_shard_new ("stories260K", 0, 1, 5);
  shards[2] = exo_shard_new ("stories260K", 2, 3, 5);
  shards[3] = exo_shard_new ("stories260K", 4, 4, 5);

  for (guint mode = 0; mode < 2; mode++)
    {
      double t = mode == 0 ? 0.0 : 1.0;
      g_autoptr(GPtrArray) l1 = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
      g_autoptr(GPtrArray) l3 = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
      g_autoptr(GArray) one = generate (engines, shards, 1, mode ? "s1" : "g1", 80, t, l1);
      g_autoptr(GArray) three = generate (engines + 1, shards + 1, 3, mode ? "s3" : "g3", 80, t, l3);

      g_assert_cmpmem (one->data, one->len * 4, three->data, three->len * 4);
      for (guint i = 0; i < l1->len; i++)
        g_assert_true (g_bytes_equal (g_ptr_array_index (l1, i), g_ptr_array_index (l3, i)));
      if (g_test_verbose ())
        {
          for (guint i = 0; i < one->len; i++)
            g_printerr ("%d ", g_array_index (one, gint32, i));
          g_printerr ("\n");
        }
    }

  /* each of the three engines computed only its layers */
  for (guint i = 1; i < 4; i++)
    {
      g_autoptr(GVariant) metrics = exo_resource_get_metrics (EXO_RESOURCE (engines[i]));
      guint64 positions = 0;
      guint start = 99;

      g_assert_true (g_variant_lookup (metrics, "positions", "t", &positions));
      g_assert_true (g_variant_lookup (metrics, "start-layer", "u", &start));
      g_assert_cmpuint (positions, ==, 160);
      g_assert_cmpuint (start, ==, shards[i]->start_layer);
    }

  for (guint i = 0; i < 4; i++)
    {
      g_assert_true (exo_test_cleanup (EXO_RESOURCE (engines[i]), NULL));
      g_object_unref (engines[i]);
      exo_shard_free (shards[i]);
    }
}

/* The engine against the naive double reference on the real weights, and a
 * trained model's confidence: its greedy tokens are far likelier than
 * chance (a mis-read layout would give noise). */
static void
test_reference (void)
{
  const char *path = stories_path ();
  g_autoptr(TinyModel) m = NULL;
  g_autoptr(ExoInferenceEngine) engine = NULL;
  g_autoptr(ExoShard) shard = exo_shard_new ("stories260K", 0, 4, 5);
  TinyRef *ref;
  double want[512], confidence = 0;
  gint32 token = 1;
  const guint steps = 32;

  if (path == NULL)
    return;
  m = tiny_model_read_legacy (path);
  g_assert_nonnull (m);
  g_assert_cmpint (m->vocab, ==, 512);
  ref = tiny_ref_new (m, FALSE);
  engine = llama_test_engine_new (path, NULL, NULL);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (engine), NULL));

  for (guint step = 0; step < steps; step++)
    {
      g_autoptr(ExoTensor) in = llama_test_tokens (&token, 1);
      g_autoptr(GError) error = NULL;
      g_autoptr(ExoTensor) out = llama_test_infer (engine, "ref", shard, in, &error);
      const float *logits;
      double max = -INFINITY, sum = 0;
      gint32 best = 0;

      g_assert_no_error (error);
      logits = exo_tensor_peek_data (out);
      tiny_ref_step (ref, token, want);
      for (guint i = 0; i < 512; i++)
        {
          if (!(fabs (logits[i] - want[i]) <= 1e-4 * MAX (1.0, fabs (want[i]))))
            g_error ("step %u: logit %u is %.8g, the reference says %.8g", step, i, logits[i], want[i]);
          if (want[i] > max)
            max = want[i], best = i;
        }
      for (guint i = 0; i < 512; i++)
        sum += exp (want[i] - max);
      confidence += 1.0 / sum;   /* the probability of the greedy token */
      token = best;
    }
  confidence /= steps;
  g_test_message ("mean probability of the greedy token: %.3f (chance: %.4f)", confidence, 1.0 / 512);
  g_assert_cmpfloat (confidence, >, 0.2);
  tiny_ref_free (ref);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
}

/* The legacy format still carries the RoPE tables its exporter computed
 * (freq_cis, which the engine skips): they are the rotation the engine
 * computes, cos and sin of pos · 10000^(−2j / head_size). */
static void
test_rope_tables (void)
{
  const char *path = stories_path ();
  g_autofree char *data = NULL;
  const gint32 *h;
  const float *re, *im;
  gsize len, n, off;
  int dim, hidden, layers, heads, kv_heads, vocab, seq, hs, kv;

  if (path == NULL)
    return;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  h = (const gint32 *) (void *) data;
  dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kv_heads = h[4];
  vocab = abs (h[5]), seq = h[6];
  hs = dim / heads;
  kv = hs * kv_heads;
  n = (gsize) vocab * dim + 2 * layers * dim + 2 * layers * dim * dim + 2 * layers * kv * dim
      + 3 * layers * hidden * dim + dim;
  off = 28 + 4 * n;
  g_assert_cmpuint (off + 8 * (gsize) seq * (hs / 2), <=, len);
  re = (const float *) (const void *) (data + off);
  im = re + (gsize) seq * (hs / 2);
  for (int pos = 0; pos < seq; pos++)
    for (int j = 0; j < hs / 2; j++)
      {
        double theta = pos * pow (10000.0, -2.0 * j / hs);

        g_assert_cmpfloat_with_epsilon (re[pos * (hs / 2) + j], cos (theta), 1e-5);
        g_assert_cmpfloat_with_epsilon (im[pos * (hs / 2) + j], sin (theta), 1e-5);
      }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  llama_test_load_plugins ();
  if (!llama_test_kernels_usable ())
    return 0;
  g_test_add_func ("/llama/stories260K/rope-tables", test_rope_tables);
  g_test_add_func ("/llama/stories260K/reference", test_reference);
  g_test_add_func ("/llama/stories260K/one-and-three-shards", test_one_and_three);
  return g_test_run ();
}
