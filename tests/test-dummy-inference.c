/* test-dummy-inference.c: the dummy-inference plugin, loaded as exo-node loads it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

static ExoPluginLoader *loader;

static ExoInferenceEngine *
make_engine (const char *first_property, ...)
{
  GType type = exo_plugin_loader_lookup_type (loader, "dummy-inference");
  ExoResource *engine;
  va_list ap;

  g_assert_true (type != G_TYPE_INVALID);
  va_start (ap, first_property);
  engine = EXO_RESOURCE (g_object_new_valist (type, first_property, ap));
  va_end (ap);
  g_assert_true (EXO_IS_INFERENCE_ENGINE (engine));
  return EXO_INFERENCE_ENGINE (engine);
}

static gint32
first_token (ExoTensor *t)
{
  g_assert_cmpint (exo_tensor_get_dtype (t), ==, EXO_DTYPE_INT32);
  g_assert_cmpuint (exo_tensor_get_n_elements (t), >=, 1);
  return ((const gint32 *) exo_tensor_peek_data (t))[0];
}

static ExoTensor *
infer (ExoInferenceEngine *engine, const ExoShard *shard, ExoTensor *input, GError **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  exo_inference_engine_infer_tensor_async (engine, "req-1", shard, input, NULL,
                                           exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  return exo_inference_engine_infer_tensor_finish (engine, result, error);
}

static void
test_plugin_info (void)
{
  ExoPluginInfo *info = exo_plugin_loader_lookup_plugin_for_type (loader, "dummy-inference");

  g_assert_nonnull (info);
  g_assert_cmpstr (exo_plugin_info_get_name (info), ==, "dummy-inference");
  g_assert_cmpstr (exo_plugin_info_get_version (info), ==, "1.0.0");
}

/* exo's DummyInferenceEngine: encode → [1]; the last shard adds one, the
 * others pass the tensor on; sample ends with EOS after num-generate-tokens. */
static void
test_semantics (void)
{
  g_autoptr(ExoInferenceEngine) engine = make_engine ("id", "engine", "num-generate-tokens", 4, NULL);
  g_autoptr(ExoShard) first = exo_shard_new ("dummy", 0, 7, 16);
  g_autoptr(ExoShard) last = exo_shard_new ("dummy", 8, 15, 16);
  g_autoptr(ExoTensor) tokens = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) generated = g_ptr_array_new_with_free_func ((GDestroyNotify) exo_tensor_unref);
  gint32 eos = exo_inference_engine_get_eos_token (engine);
  ExoTensor *x;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (engine), NULL));
  g_assert_cmpint (eos, ==, 69);

  exo_inference_engine_encode_async (engine, first, "hello", NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  tokens = exo_inference_engine_encode_finish (engine, result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (first_token (tokens), ==, 1);

  /* the ring: first shard (unchanged), last shard (+1), sample, feed back */
  x = exo_tensor_ref (tokens);
  for (guint step = 0; step < 20; step++)
    {
      g_autoptr(ExoTensor) mid = infer (engine, first, x, &error);
      g_autoptr(ExoTensor) out = NULL;
      ExoTensor *token;

      g_assert_no_error (error);
      g_assert_cmpint (first_token (mid), ==, first_token (x));
      out = infer (engine, last, mid, &error);
      g_assert_no_error (error);
      g_assert_cmpint (first_token (out), ==, first_token (x) + 1);
      token = exo_inference_engine_sample (engine, out, 0.0, 1.0, &error);
      g_assert_no_error (error);
      exo_tensor_unref (x);
      x = token;
      if (first_token (token) == eos)
        break;
      g_ptr_array_add (generated, exo_tensor_ref (token));
    }
  g_assert_cmpint (first_token (x), ==, eos);
  exo_tensor_unref (x);

  /* tokens 2, 3, 4, then 5 > 4 is EOS */
  g_assert_cmpuint (generated->len, ==, 3);
  g_assert_cmpint (first_token (g_ptr_array_index (generated, 0)), ==, 2);
  g_assert_cmpint (first_token (g_ptr_array_index (generated, 2)), ==, 4);
  {
    g_autofree char *text = exo_inference_engine_decode (engine, first, g_ptr_array_index (generated, 0), NULL);
    g_assert_cmpstr (text, ==, "dummy");
  }
  {
    g_autoptr(GVariant) metrics = exo_resource_get_metrics (EXO_RESOURCE (engine));
    guint64 calls = 0;
    g_assert_true (g_variant_lookup (metrics, "infer-calls", "t", &calls));
    g_assert_cmpuint (calls, ==, 8);
  }

  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
}

static void
test_not_ready (void)
{
  g_autoptr(ExoInferenceEngine) engine = make_engine ("id", "cold", NULL);
  g_autoptr(ExoShard) shard = exo_shard_new ("dummy", 0, 0, 1);
  const gint32 one = 1;
  g_autoptr(ExoTensor) input = exo_tensor_new_int32 (&one, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoTensor) out = infer (engine, shard, input, &error);

  g_assert_null (out);
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE);
}

static void
test_latency (void)
{
  g_autoptr(ExoInferenceEngine) engine = make_engine ("id", "slow", "latency-ms", 50, NULL);
  g_autoptr(ExoShard) shard = exo_shard_new ("dummy", 0, 0, 1);
  const gint32 one = 1;
  g_autoptr(ExoTensor) input = exo_tensor_new_int32 (&one, 1);
  g_autoptr(ExoTensor) out = NULL;
  gint64 t0;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (engine), NULL));
  t0 = g_get_monotonic_time ();
  out = infer (engine, shard, input, NULL);
  g_assert_nonnull (out);
  g_assert_cmpint (g_get_monotonic_time () - t0, >=, 45000);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *dir = g_getenv ("EXO_TEST_BUILD_PLUGIN_DIR");
  g_autofree char *fallback = NULL;
  int rc;

  g_test_init (&argc, &argv, NULL);

  if (dir == NULL)
    {
      g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
      g_autofree char *here = g_path_get_dirname (self);
      fallback = g_build_filename (here, "..", "plugins", NULL);
      dir = fallback;
    }
  loader = exo_plugin_loader_new ();
  exo_plugin_loader_add_search_dir (loader, dir);
  exo_plugin_loader_load_all (loader, NULL);

  g_test_add_func ("/plugins/dummy-inference/info", test_plugin_info);
  g_test_add_func ("/plugins/dummy-inference/semantics", test_semantics);
  g_test_add_func ("/plugins/dummy-inference/not-ready", test_not_ready);
  g_test_add_func ("/plugins/dummy-inference/latency", test_latency);

  rc = g_test_run ();
  g_clear_object (&loader);
  return rc;
}
