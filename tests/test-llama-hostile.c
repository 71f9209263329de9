/* test-llama-hostile.c: every bad input of the `llama` engine gets a clear
 * error and the engine keeps working.
 *
 * Truncated and corrupt checkpoints (the error names the file, the tensor
 * and the byte offset), unknown versions, bad dimensions, tokenizers that
 * do not match, prompts longer than max-seq-len, more requests than
 * max-sessions, idle states that time out, tensors of the wrong shape,
 * and a loop of random truncations and bit flips that must never crash
 * (EXO_TEST_LLAMA_FUZZ_ITERATIONS, default 300).
 *
 * Thread rules: single-threaded test code.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"
#include "llama-test-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *tmpdir;

static void
no_retries (ExoInferenceEngine *engine)
{
  ExoRetryPolicy *policy = exo_retry_policy_new ();

  policy->max_retries = 0;
  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (engine), policy);
  exo_retry_policy_free (policy);
}

static char *
write_bytes (const char *name, const void *data, gsize len)
{
  char *path = g_build_filename (tmpdir, name, NULL);

  g_assert_true (g_file_set_contents (path, data, len, NULL));
  return path;
}

/* Initializes an engine on @path; returns the error (or NULL). */
static GError *
load_error (const char *path, const char *tokenizer)
{
  g_autoptr(ExoInferenceEngine) engine = llama_test_engine_new (path, tokenizer, NULL);
  GError *error = NULL;

  if (exo_test_initialize (EXO_RESOURCE (engine), &error))
    g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
  return error;
}

static void
assert_load_fails (const char *path, const char *tokenizer, GQuark domain, int code,
                   const char *fragment)
{
  g_autoptr(GError) error = load_error (path, tokenizer);

  g_assert_error (error, domain, code);
  if (strstr (error->message, fragment) == NULL)
    g_error ("'%s' does not say '%s'", error->message, fragment);
  g_test_message ("%s", error->message);
}

/* --- checkpoints ------------------------------------------------------------------ */

static void
test_truncated (void)
{
  g_autoptr(TinyModel) m = tiny_model_new (8, 16, 2, 2, 1, 16, 8, TRUE, 1);
  g_autoptr(GBytes) legacy = tiny_model_serialize (m, TINY_LEGACY);
  g_autoptr(GBytes) v2 = tiny_model_serialize (m, TINY_V2);
  const guint8 *data = g_bytes_get_data (legacy, NULL);
  /* legacy: header, embedding 16×8, attention norms 2×8, wq 2×8×8, wk 2×4×8 */
  gsize wk1 = 28 + 4 * (16 * 8 + 2 * 8 + 2 * 8 * 8 + 4 * 8);
  g_autofree char *expected = g_strdup_printf ("tensor 'layers.1.attention.wk' at byte offset %"
                                               G_GSIZE_FORMAT, wk1);
  g_autofree char *path = write_bytes ("cut-wk.bin", data, wk1 + 5);
  g_autofree char *header = write_bytes ("cut-header.bin", data, 10);
  g_autofree char *empty = write_bytes ("empty.bin", "", 0);
  g_autofree char *longer = NULL;

  assert_load_fails (path, NULL, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, expected);
  assert_load_fails (path, NULL, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, path);
  assert_load_fails (header, NULL, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                     "tensor 'header' at byte offset 0");
  assert_load_fails (empty, NULL, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "tensor 'header'");

  /* v2: header 256, norms (2 + 2 + 1) × 8 floats, the embedding's 128 int8
   * and 16 scales, then layer 0's wq: 64 int8, then its scales */
  {
    gsize scales = 256 + 4 * 5 * 8 + 128 + 4 * 16 + 64;
    g_autofree char *cut = write_bytes ("cut-v2.bin", g_bytes_get_data (v2, NULL), scales + 3);
    g_autofree char *want = g_strdup_printf ("tensor 'layers.0.attention.wq scales' at byte offset %"
                                             G_GSIZE_FORMAT, scales);

    assert_load_fails (cut, NULL, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, want);
  }

  /* a byte too many is not this shape either */
  {
    g_autofree guint8 *more = g_malloc0 (g_bytes_get_size (legacy) + 1);

    memcpy (more, data, g_bytes_get_size (legacy));
    longer = write_bytes ("longer.bin", more, g_bytes_get_size (legacy) + 1);
    assert_load_fails (longer, NULL, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "1 byte after the last tensor");
  }

  /* a missing file */
  {
    g_autofree char *missing = g_build_filename (tmpdir, "missing.bin", NULL);
    g_autoptr(ExoInferenceEngine) engine = llama_test_engine_new (missing, NULL, NULL);
    g_autoptr(GError) error = NULL;

    no_retries (engine);
    g_assert_false (exo_test_initialize (EXO_RESOURCE (engine), &error));
    g_assert_nonnull (strstr (error->message, missing));
  }
}

static GBytes *
patched (GBytes *bytes, gsize offset, gint32 value)
{
  g_autofree guint8 *copy = g_memdup2 (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));

  memcpy (copy + offset, &value, 4);
  return g_bytes_new (copy, g_bytes_get_size (bytes));
}

static void
assert_patch_fails (GBytes *bytes, gsize offset, gint32 value, GQuark domain, int code,
                    const char *fragment)
{
  g_autoptr(GBytes) p = patched (bytes, offset, value);
  g_autofree char *path = write_bytes ("patched.bin", g_bytes_get_data (p, NULL), g_bytes_get_size (p));

  assert_load_fails (path, NULL, domain, code, fragment);
}

static void
test_version (void)
{
  g_autoptr(TinyModel) m = tiny_model_new (8, 16, 2, 2, 1, 16, 8, TRUE, 1);
  g_autoptr(GBytes) v1 = tiny_model_serialize (m, TINY_V1);

  assert_patch_fails (v1, 4, 3, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                      "unknown llama2.c checkpoint version 3");
  assert_patch_fails (v1, 4, -1, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "version -1");
  assert_patch_fails (v1, 4, 0, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "version 0");
}

static void
test_dims (void)
{
  g_autoptr(TinyModel) m = tiny_model_new (8, 16, 2, 2, 1, 16, 8, TRUE, 1);
  g_autoptr(GBytes) legacy = tiny_model_serialize (m, TINY_LEGACY);
  g_autoptr(GBytes) v1 = tiny_model_serialize (m, TINY_V1);
  g_autoptr(GBytes) v2 = tiny_model_serialize (m, TINY_V2);
  const GQuark io = G_IO_ERROR;
  const int bad = G_IO_ERROR_INVALID_DATA;

  assert_patch_fails (legacy, 0, 0, io, bad, "dim = 0 is out of range");
  assert_patch_fails (legacy, 0, -8, io, bad, "dim = -8");
  assert_patch_fails (legacy, 0, 65537, io, bad, "dim = 65537");
  assert_patch_fails (legacy, 4, 0, io, bad, "hidden_dim = 0");
  assert_patch_fails (legacy, 8, 2000, io, bad, "n_layers = 2000");
  assert_patch_fails (legacy, 8, G_MAXINT32, io, bad, "n_layers");
  assert_patch_fails (legacy, 12, 3, io, bad, "n_heads 3 must divide dim 8");
  assert_patch_fails (legacy, 12, 8, io, bad, "into heads of even size");   /* head size 1 */
  assert_patch_fails (legacy, 16, 3, io, bad, "n_kv_heads = 3 is out of range (1 to 2)");
  assert_patch_fails (legacy, 20, 1 << 21, io, bad, "vocab_size = 2097152");
  assert_patch_fails (legacy, 20, G_MININT32, io, bad, "vocab_size");
  assert_patch_fails (legacy, 24, 0, io, bad, "seq_len = 0");
  assert_patch_fails (legacy, 24, 1 << 21, io, bad, "seq_len");
  /* consistent-looking dimensions that the file is not big enough for */
  assert_patch_fails (legacy, 0, 64, io, bad, "truncated or corrupt");
  assert_patch_fails (legacy, 4, 1 << 18, io, bad, "truncated or corrupt");
  assert_patch_fails (legacy, 20, -16, io, bad, "tensor 'output'");   /* untied: no classifier */
  /* versioned headers */
  assert_patch_fails (v1, 8 + 20, -16, io, bad, "vocab_size = -16 is negative");
  {
    g_autofree guint8 *copy = g_memdup2 (g_bytes_get_data (v1, NULL), g_bytes_get_size (v1));
    g_autofree char *path = NULL;

    copy[36] = 7;
    path = write_bytes ("shared7.bin", copy, g_bytes_get_size (v1));
    assert_load_fails (path, NULL, io, bad, "shared_classifier = 7");
  }
  assert_patch_fails (v2, 37, 3, io, bad, "group size 3 must divide dim 8");
  assert_patch_fails (v2, 37, 0, io, bad, "group size 0");
  assert_patch_fails (v2, 37, 16, io, bad, "group size 16");
  assert_patch_fails (v2, 37, -8, io, bad, "group size -8");
}

/* --- the tokenizer ------------------------------------------------------------------- */

static void
test_tokenizer (void)
{
  g_autoptr(TinyModel) m = tiny_model_new (8, 16, 1, 2, 1, 16, 8, TRUE, 1);
  g_autofree char *model = tiny_model_write (m, TINY_LEGACY, tmpdir, "tok-model.bin");
  const char *pieces[17] = { "<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", "c", "d", "e",
                             "ab", "cd", " a", "ba", "dc", "abc", "x", "y" };
  float scores[17] = { 0, };
  g_autofree char *short_tok = tiny_tokenizer_write (pieces, scores, 15, tmpdir, "tok15.bin");
  g_autofree char *long_tok = tiny_tokenizer_write (pieces, scores, 17, tmpdir, "tok17.bin");
  g_autofree char *good = tiny_tokenizer_write (pieces, scores, 16, tmpdir, "tok16.bin");
  g_autofree char *data = NULL;
  gsize len;

  assert_load_fails (model, short_tok, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                     "the file has 15 tokens, the model's vocabulary has 16");
  assert_load_fails (model, long_tok, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                     "more tokens than the model's vocabulary of 16");
  assert_load_fails (model, short_tok, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, short_tok);
  g_assert_null (load_error (model, good));

  g_assert_true (g_file_get_contents (good, &data, &len, NULL));
  {
    const gint32 bad_values[] = { 0, -1, 100000 };

    for (guint i = 0; i < G_N_ELEMENTS (bad_values); i++)
      {
        g_autofree char *path = NULL;

        memcpy (data, &bad_values[i], 4);
        path = write_bytes ("tok-bad.bin", data, len);
        assert_load_fails (model, path, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "max_token_length");
      }
  }
  {
    g_autofree char *copy = NULL;
    g_autofree char *path = NULL;
    gint32 huge = 1 << 30;
    float nan = NAN;

    g_free (data);
    g_assert_true (g_file_get_contents (good, &data, &len, NULL));
    copy = g_memdup2 (data, len);
    memcpy (copy + 4 + 4, &huge, 4);     /* token 0's length */
    path = write_bytes ("tok-len.bin", copy, len);
    assert_load_fails (model, path, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "token 0 at byte offset 4 has length");
    memcpy (copy, data, len);
    memcpy (copy + 4, &nan, 4);          /* token 0's score */
    g_free (path);
    path = write_bytes ("tok-nan.bin", copy, len);
    assert_load_fails (model, path, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not a finite number");
    memcpy (copy, data, len);
    copy[4 + 8 + 1] = '\0';              /* inside "<unk>" */
    g_free (path);
    path = write_bytes ("tok-nul.bin", copy, len);
    assert_load_fails (model, path, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "token 0 at byte offset 4 has a NUL byte");
  }
}

/* --- requests ------------------------------------------------------------------------- */

static ExoInferenceEngine *
tiny_engine (const char *first_property, ...)
{
  g_autoptr(TinyModel) m = tiny_model_new (8, 16, 2, 2, 1, 16, 8, TRUE, 1);
  g_autofree char *model = tiny_model_write (m, TINY_LEGACY, tmpdir, "req-model.bin");
  const char *pieces[16] = { "<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", "c", "d", "e",
                             "ab", "cd", " a", "ba", "dc", "abc", "x" };
  float scores[16] = { 0, };
  g_autofree char *tok = tiny_tokenizer_write (pieces, scores, 16, tmpdir, "req-tok.bin");
  ExoInferenceEngine *engine = llama_test_engine_new (model, tok, NULL);
  va_list ap;

  va_start (ap, first_property);
  if (first_property != NULL)
    g_object_set_valist (G_OBJECT (engine), first_property, ap);
  va_end (ap);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (engine), NULL));
  return engine;
}

static ExoTensor *
step (ExoInferenceEngine *engine, const char *request, const ExoShard *shard, gint32 token,
      GError **error)
{
  g_autoptr(ExoTensor) in = llama_test_tokens (&token, 1);

  return llama_test_infer (engine, request, shard, in, error);
}

static guint64
metric (ExoInferenceEngine *engine, const char *name)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (EXO_RESOURCE (engine));
  g_autoptr(GVariant) v = g_variant_lookup_value (metrics, name, NULL);

  g_assert_nonnull (v);
  return g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32) ? g_variant_get_uint32 (v)
                                                         : g_variant_get_uint64 (v);
}

static void
test_too_long (void)
{
  g_autoptr(ExoInferenceEngine) engine = tiny_engine ("max-seq-len", 4, NULL);
  g_autoptr(ExoShard) shard = exo_shard_new ("m", 0, 1, 2);
  const gint32 five[] = { 1, 4, 5, 6, 7 };
  g_autoptr(ExoTensor) in = llama_test_tokens (five, 5);
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoTensor) out = llama_test_infer (engine, "long", shard, in, &error);
  g_autoptr(ExoTensor) ids = NULL;

  g_assert_null (out);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==, "the prompt is 5 tokens, longer than max-seq-len 4");
  g_assert_cmpuint (metric (engine, "sessions"), ==, 0);   /* nothing kept for it */
  g_clear_error (&error);

  ids = llama_test_encode (engine, "abababab", &error);
  g_assert_null (ids);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "longer than max-seq-len 4"));
  g_clear_error (&error);

  /* four positions work, the fifth is refused, the engine goes on */
  for (gint32 i = 0; i < 4; i++)
    {
      g_autoptr(ExoTensor) o = step (engine, "gen", shard, 4 + i, &error);

      g_assert_no_error (error);
    }
  /* its KV cache holds 4 positions, not the 16 of a first doubling:
   * 2 layers × (keys + values) × 4 positions × kv_dim 4 × 4 bytes */
  g_assert_cmpuint (metric (engine, "kv-cache-bytes"), ==, 2 * 2 * 4 * 4 * 4);
  g_clear_pointer (&out, exo_tensor_unref);
  out = step (engine, "gen", shard, 4, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
  g_assert_nonnull (strstr (error->message, "request gen reached max-seq-len 4"));
  g_clear_error (&error);
  out = step (engine, "other", shard, 4, &error);
  g_assert_no_error (error);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
}

static void
test_max_sessions (void)
{
  g_autoptr(ExoInferenceEngine) engine = tiny_engine ("max-sessions", 2, NULL);
  g_autoptr(ExoShard) shard = exo_shard_new ("m", 0, 1, 2);
  g_autoptr(GError) error = NULL;
  ExoTensor *out;

  out = step (engine, "r1", shard, 1, &error);
  g_assert_no_error (error);
  exo_tensor_unref (out);
  out = step (engine, "r2", shard, 1, &error);
  g_assert_no_error (error);
  exo_tensor_unref (out);

  out = step (engine, "r3", shard, 1, &error);
  g_assert_null (out);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "max-sessions (2)"));
  g_clear_error (&error);
  /* sampling state counts too */
  {
    float logits[16] = { 0, };
    g_autoptr(GBytes) b = g_bytes_new (logits, sizeof logits);
    gsize shape[1] = { 16 };
    g_autoptr(ExoTensor) x = exo_tensor_new (EXO_DTYPE_FLOAT32, shape, 1, b, NULL);
    g_autoptr(ExoTensor) t = exo_inference_engine_sample_for_request (engine, "r4", x, 1.0, 1.0,
                                                                      1, TRUE, &error);
    g_assert_null (t);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BUSY);
    g_clear_error (&error);
  }
  g_assert_cmpuint (metric (engine, "sessions-refused"), ==, 2);

  exo_inference_engine_end_request (engine, "r1");
  out = step (engine, "r3", shard, 1, &error);
  g_assert_no_error (error);
  exo_tensor_unref (out);

  /* an ended request does not start over at position 0 */
  out = step (engine, "r1", shard, 1, &error);
  g_assert_null (out);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  exo_inference_engine_end_request (engine, "never-seen");   /* harmless */
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
}

static void
test_timeout (void)
{
  g_autoptr(ExoInferenceEngine) engine = tiny_engine ("session-timeout-ms", 100, NULL);
  g_autoptr(ExoShard) shard = exo_shard_new ("m", 0, 1, 2);
  g_autoptr(GError) error = NULL;
  ExoTensor *out;

  out = step (engine, "idle", shard, 1, &error);
  g_assert_no_error (error);
  exo_tensor_unref (out);
  g_assert_cmpuint (metric (engine, "sessions"), ==, 1);
  g_assert_cmpuint (metric (engine, "kv-cache-bytes"), >, 0);
  exo_test_spin (400 * exo_test_slow_factor ());
  g_assert_cmpuint (metric (engine, "sessions"), ==, 0);
  g_assert_cmpuint (metric (engine, "sessions-expired"), ==, 1);
  g_assert_cmpuint (metric (engine, "kv-cache-bytes"), ==, 0);
  out = step (engine, "idle", shard, 5, &error);
  g_assert_null (out);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_assert_nonnull (strstr (error->message, "expired"));
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
}

static void
test_bad_tensors (void)
{
  g_autoptr(ExoInferenceEngine) engine = tiny_engine (NULL, NULL);
  g_autoptr(ExoShard) all = exo_shard_new ("m", 0, 1, 2);
  g_autoptr(ExoShard) second = exo_shard_new ("m", 1, 1, 2);
  g_autoptr(ExoShard) wrong = exo_shard_new ("m", 0, 2, 3);
  g_autoptr(GError) error = NULL;
  float floats[8] = { 0, };
  g_autoptr(GBytes) b = g_bytes_new (floats, sizeof floats);
  gsize shape7[1] = { 7 }, shape8[2] = { 1, 8 };
  g_autoptr(GBytes) b7 = g_bytes_new (floats, 7 * sizeof (float));
  g_autoptr(ExoTensor) seven = exo_tensor_new (EXO_DTYPE_FLOAT32, shape7, 1, b7, NULL);
  g_autoptr(ExoTensor) eight = exo_tensor_new (EXO_DTYPE_FLOAT32, shape8, 2, b, NULL);
  const gint32 bad_ids[] = { 1, 16 }, negative[] = { -1 };
  ExoTensor *out;

  g_assert_null (llama_test_infer (engine, "a", all, eight, &error));   /* floats on the first shard */
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  {
    g_autoptr(ExoTensor) t = llama_test_tokens (bad_ids, 2);

    g_assert_null (llama_test_infer (engine, "b", all, t, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "token id 16 at index 1"));
    g_clear_error (&error);
  }
  {
    g_autoptr(ExoTensor) t = llama_test_tokens (negative, 1);

    g_assert_null (llama_test_infer (engine, "c", all, t, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
  }
  g_assert_null (llama_test_infer (engine, "d", second, seven, &error));   /* not [n, dim] */
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  out = step (engine, "e", wrong, 1, &error);   /* a shard of a 3-layer model */
  g_assert_null (out);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "has 2 layers"));
  g_clear_error (&error);
  /* the layers of a request do not change under it */
  out = step (engine, "f", all, 1, &error);
  g_assert_no_error (error);
  exo_tensor_unref (out);
  g_assert_null (llama_test_infer (engine, "f", second, eight, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "runs layers 0..1 here, not 1..1"));
  g_clear_error (&error);
  g_assert_cmpuint (metric (engine, "sessions"), ==, 1);

  /* NaN and infinite activations from a broken peer: no crash, and no
   * token made of them: sampling says the output is not finite */
  {
    float poison[16] = { NAN, INFINITY, -INFINITY, 1e38f, -1e38f, 0, 1, 2, NAN, NAN, 0, 0, 0, 0, 0, 0 };
    g_autoptr(GBytes) pb = g_bytes_new (poison, sizeof poison);
    gsize shape[2] = { 2, 8 };
    g_autoptr(ExoTensor) p = exo_tensor_new (EXO_DTYPE_FLOAT32, shape, 2, pb, NULL);
    g_autoptr(ExoTensor) logits = llama_test_infer (engine, "g", second, p, &error);
    g_autoptr(ExoTensor) t1 = NULL;
    g_autoptr(ExoTensor) t2 = NULL;

    g_assert_no_error (error);
    t1 = exo_inference_engine_sample (engine, logits, 0.0, 1.0, &error);
    g_assert_null (t1);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
    g_assert_nonnull (strstr (error->message, "not finite"));
    g_clear_error (&error);
    t2 = exo_inference_engine_sample_for_request (engine, "g", logits, 0.8, 0.9, 3, TRUE, &error);
    g_assert_null (t2);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
    g_clear_error (&error);
  }
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));

  /* after cleanup, calls are refused */
  out = step (engine, "h", all, 1, &error);
  g_assert_null (out);
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE);
}

/* --- random corruption -------------------------------------------------------------------- */

static void
exercise (const char *path, guint64 *rng)
{
  g_autoptr(ExoInferenceEngine) engine = llama_test_engine_new (path, NULL, NULL);
  g_autoptr(GError) error = NULL;
  guint n_layers = 0, vocab = 0;

  no_retries (engine);
  if (!exo_test_initialize (EXO_RESOURCE (engine), &error))
    {
      g_assert_nonnull (strstr (error->message, path));
      return;
    }
  g_object_get (engine, "n-layers", &n_layers, "vocab-size", &vocab, NULL);
  for (guint split = 0; split < 2; split++)
    {
      g_autoptr(ExoShard) a = exo_shard_new ("m", 0, split ? 0 : n_layers - 1, n_layers);
      gint32 tokens[3] = { 1, (gint32) (*rng % (vocab + 2)) - 1, (gint32) (*rng % vocab) };
      g_autoptr(ExoTensor) in = llama_test_tokens (tokens, 3);
      g_autoptr(ExoTensor) out = llama_test_infer (engine, split ? "s" : "w", a, in, NULL);

      *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
      if (out != NULL && exo_tensor_get_dtype (out) == EXO_DTYPE_FLOAT32 && !split)
        {
          g_autoptr(ExoTensor) t = exo_inference_engine_sample_for_request (engine, "w", out, 0.7,
                                                                            0.9, 1, TRUE, NULL);
          g_autoptr(ExoTensor) g = exo_inference_engine_sample (engine, out, 0.0, 1.0, NULL);
        }
    }
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
}

static void
test_fuzz (void)
{
  const char *env = g_getenv ("EXO_TEST_LLAMA_FUZZ_ITERATIONS");
  guint iterations = env != NULL ? atoi (env) : 300;
  g_autoptr(TinyModel) m = tiny_model_new (8, 16, 2, 2, 1, 16, 8, FALSE, 1);
  GBytes *formats[3];
  guint64 rng = 0x1234567;
  guint loaded = 0;

  for (guint f = 0; f < 3; f++)
    formats[f] = tiny_model_serialize (m, f);
  for (guint i = 0; i < iterations; i++)
    {
      GBytes *base = formats[i % 3];
      gsize len = g_bytes_get_size (base);
      g_autofree guint8 *data = g_memdup2 (g_bytes_get_data (base, NULL), len);
      g_autofree char *path = NULL;
      guint kind;

      rng = rng * 6364136223846793005ull + 1442695040888963407ull;
      kind = (rng >> 33) % 4;
      if (kind == 0)
        len = (rng >> 13) % len;   /* truncated */
      else
        {
          guint flips = 1 + (rng >> 20) % 8;

          for (guint j = 0; j < flips; j++)
            {
              gsize where;

              rng = rng * 6364136223846793005ull + 1442695040888963407ull;
              /* kind 1: the header; 2: anywhere; 3: a whole header field */
              where = kind == 2 ? (rng >> 17) % len : (rng >> 17) % MIN (len, 48);
              if (kind == 3)
                {
                  gint32 extremes[] = { 0, -1, 1, G_MAXINT32, G_MININT32, 1 << 20, 65536, 3 };

                  memcpy (data + (where & ~3u), &extremes[(rng >> 40) % 8], 4);
                }
              else
                data[where] ^= 1u << ((rng >> 50) % 8);
            }
        }
      path = write_bytes ("fuzz.bin", data, len);
      exercise (path, &rng);
      {
        g_autoptr(ExoInferenceEngine) probe = llama_test_engine_new (path, NULL, NULL);

        no_retries (probe);
        if (exo_test_initialize (EXO_RESOURCE (probe), NULL))
          {
            loaded++;
            g_assert_true (exo_test_cleanup (EXO_RESOURCE (probe), NULL));
          }
      }
    }
  g_test_message ("%u of %u corrupted checkpoints still loaded (bit flips in weights)",
                  loaded, iterations);
  for (guint f = 0; f < 3; f++)
    g_bytes_unref (formats[f]);
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  llama_test_load_plugins ();
  if (!llama_test_kernels_usable ())
    return 0;
  tmpdir = g_dir_make_tmp ("test-llama-hostile-XXXXXX", NULL);

  g_test_add_func ("/llama/hostile/truncated", test_truncated);
  g_test_add_func ("/llama/hostile/version", test_version);
  g_test_add_func ("/llama/hostile/dims", test_dims);
  g_test_add_func ("/llama/hostile/tokenizer", test_tokenizer);
  g_test_add_func ("/llama/hostile/too-long", test_too_long);
  g_test_add_func ("/llama/hostile/max-sessions", test_max_sessions);
  g_test_add_func ("/llama/hostile/timeout", test_timeout);
  g_test_add_func ("/llama/hostile/bad-tensors", test_bad_tensors);
  g_test_add_func ("/llama/hostile/fuzz", test_fuzz);

  rc = g_test_run ();
  {
    g_autoptr(GDir) dir = g_dir_open (tmpdir, 0, NULL);
    const char *name;

    while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
      {
        g_autofree char *p = g_build_filename (tmpdir, name, NULL);

        g_unlink (p);
      }
    g_rmdir (tmpdir);
  }
  g_free (tmpdir);
  return rc;
}
