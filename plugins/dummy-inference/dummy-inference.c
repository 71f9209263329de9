/* dummy-inference.c: the `dummy-inference` plugin, an ExoInferenceEngine with
 * the semantics of exo's DummyInferenceEngine.
 *
 *  - encode (prompt) → [1]                     (exo's DummyTokenizer.encode)
 *  - infer_tensor (shard, x) → x + 1 on the shard holding the model's last
 *    layer, x unchanged on any other shard
 *  - sample (x) → [eos] once x[0] > num-generate-tokens, else x[0]; the
 *    temperature and top_p it was called with last are metrics (tests see
 *    what the node sampled with)
 *  - decode (tokens) → "dummy" per token
 *
 * So a prompt run through every shard yields the tokens 2, 3, …, N, then EOS:
 * N−1 tokens, deterministic, whatever the partitioning — which is what the
 * multi-node tests check.  `latency-ms` simulates compute time per infer call.
 *
 * Rules: everything runs in the engine's main context, with no thread and
 * no lock: the vfuncs are called there, and a result delayed by latency-ms
 * is completed by a timeout attached to the task's own context (checking
 * its cancellable first).  encode, decode and sample are synchronous and
 * keep no per-request state; end_request is the interface's default
 * (nothing to free).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <exo/exo.h>

#define DUMMY_TYPE_INFERENCE (dummy_inference_get_type ())
G_DECLARE_FINAL_TYPE (DummyInference, dummy_inference, DUMMY, INFERENCE, ExoManagedResource)

struct _DummyInference
{
  ExoManagedResource parent_instance;

  ExoShard *shard;             /* the loaded shard, NULL before the first use */
  guint     latency_ms;
  guint     num_generate_tokens;
  guint     vocab_size;
  gint      eos_token;
  guint64   infer_calls;
  guint64   tokens_sampled;
  double    last_temperature;  /* of the last sample call; -1 before */
  double    last_top_p;
  guint64   shard_loads;
};

enum {
  PROP_0,
  PROP_LATENCY_MS,
  PROP_NUM_GENERATE_TOKENS,
  PROP_VOCAB_SIZE,
  PROP_EOS_TOKEN,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];

static void dummy_inference_engine_init (ExoInferenceEngineInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (DummyInference, dummy_inference, EXO_TYPE_MANAGED_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_INFERENCE_ENGINE,
                                                      dummy_inference_engine_init))

static gboolean
ensure_usable (DummyInference *self,
               GError        **error)
{
  if (!exo_resource_is_usable (EXO_RESOURCE (self)))
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                   "inference engine '%s' is %s", exo_resource_get_id (EXO_RESOURCE (self)),
                   exo_resource_state_to_string (exo_resource_get_state (EXO_RESOURCE (self))));
      return FALSE;
    }
  return TRUE;
}

static void
ensure_shard (DummyInference *self,
              const ExoShard *shard)
{
  if (exo_shard_equal (self->shard, shard))
    return;
  exo_shard_free (self->shard);
  self->shard = exo_shard_copy (shard);
  self->shard_loads++;
}

/* --- ExoResource ------------------------------------------------------- */

static void
dummy_inference_do_initialize (ExoResource *resource,
                               GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
dummy_inference_do_cleanup (ExoResource *resource,
                            GTask       *task)
{
  DummyInference *self = DUMMY_INFERENCE (resource);

  g_clear_pointer (&self->shard, exo_shard_free);
  g_task_return_boolean (task, TRUE);
}

static void
dummy_inference_collect_metrics (ExoResource  *resource,
                                 GVariantDict *metrics)
{
  DummyInference *self = DUMMY_INFERENCE (resource);

  EXO_RESOURCE_CLASS (dummy_inference_parent_class)->collect_metrics (resource, metrics);
  g_variant_dict_insert (metrics, "infer-calls", "t", self->infer_calls);
  g_variant_dict_insert (metrics, "tokens-sampled", "t", self->tokens_sampled);
  g_variant_dict_insert (metrics, "last-sample-temperature", "d", self->last_temperature);
  g_variant_dict_insert (metrics, "last-sample-top-p", "d", self->last_top_p);
  g_variant_dict_insert (metrics, "shard-loads", "t", self->shard_loads);
  if (self->shard != NULL)
    {
      g_variant_dict_insert (metrics, "model-id", "s", self->shard->model_id);
      g_variant_dict_insert (metrics, "start-layer", "u", self->shard->start_layer);
      g_variant_dict_insert (metrics, "end-layer", "u", self->shard->end_layer);
      g_variant_dict_insert (metrics, "n-layers", "u", self->shard->n_layers);
    }
}

/* What the keys above are in /metrics (docs/metrics.md); the families
 * exo_engine_* are shared with the other engines. */
static const ExoMetricEntry dummy_metric_entries[] = {
  { .key = "infer-calls", .kind = EXO_METRIC_COUNTER, .name = "exo_engine_infer_calls_total",
    .help = "Calls to the engine's infer." },
  { .key = "tokens-sampled", .kind = EXO_METRIC_COUNTER, .name = "exo_engine_tokens_sampled_total",
    .help = "Tokens the engine sampled." },
  { .key = "last-sample-temperature", .kind = EXO_METRIC_GAUGE,
    .name = "exo_engine_last_sample_temperature",
    .help = "The temperature of the engine's last sample (-1: none yet)." },
  { .key = "last-sample-top-p", .kind = EXO_METRIC_GAUGE, .name = "exo_engine_last_sample_top_p",
    .help = "The top_p of the engine's last sample (-1: none yet)." },
  { .key = "shard-loads", .kind = EXO_METRIC_COUNTER, .name = "exo_engine_shard_loads_total",
    .help = "Shards the engine loaded." },
  { .key = "model-id", .kind = EXO_METRIC_INFO, .name = "exo_engine_info",
    .help = "The engine's model (value 1)." },
  { .key = "start-layer", .kind = EXO_METRIC_GAUGE, .name = "exo_engine_shard_start_layer",
    .help = "The first layer of the engine's shard." },
  { .key = "end-layer", .kind = EXO_METRIC_GAUGE, .name = "exo_engine_shard_end_layer",
    .help = "The last layer of the engine's shard." },
  { .key = "n-layers", .kind = EXO_METRIC_GAUGE, .name = "exo_engine_model_layers",
    .help = "Layers of the engine's model." },
};

/* --- ExoInferenceEngine ------------------------------------------------ */

static gboolean
complete_later_cb (gpointer data)
{
  GTask *task = data;
  ExoTensor *tensor = g_object_steal_data (G_OBJECT (task), "dummy-result");

  if (g_task_return_error_if_cancelled (task))
    exo_tensor_unref (tensor);
  else
    g_task_return_pointer (task, tensor, (GDestroyNotify) exo_tensor_unref);
  return G_SOURCE_REMOVE;
}

/* Return @tensor on @task after the simulated latency. */
static void
return_tensor (DummyInference *self,
               GTask          *task,
               ExoTensor      *tensor)
{
  if (self->latency_ms == 0)
    {
      g_task_return_pointer (task, tensor, (GDestroyNotify) exo_tensor_unref);
      return;
    }
  g_object_set_data (G_OBJECT (task), "dummy-result", tensor);
  {
    GSource *source = g_timeout_source_new (self->latency_ms);
    g_source_set_callback (source, complete_later_cb, g_object_ref (task), g_object_unref);
    g_source_attach (source, g_task_get_context (task));
    g_source_unref (source);
  }
}

static void
dummy_encode_async (ExoInferenceEngine  *engine,
                    const ExoShard      *shard,
                    const char          *prompt,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  DummyInference *self = DUMMY_INFERENCE (engine);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;
  const gint32 one = 1;

  g_task_set_source_tag (task, dummy_encode_async);
  if (!ensure_usable (self, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  ensure_shard (self, shard);
  g_task_return_pointer (task, exo_tensor_new_int32 (&one, 1), (GDestroyNotify) exo_tensor_unref);
}

static ExoTensor *
dummy_tensor_finish (ExoInferenceEngine  *engine,
                     GAsyncResult        *result,
                     GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, engine), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static char *
dummy_decode (ExoInferenceEngine  *engine,
              const ExoShard      *shard,
              ExoTensor           *tokens,
              GError             **error)
{
  GString *text = g_string_new (NULL);

  for (gsize i = 0; i < exo_tensor_get_n_elements (tokens); i++)
    g_string_append (text, "dummy");
  return g_string_free (text, FALSE);
}

static gint32
first_value (ExoTensor *x)
{
  const void *data = exo_tensor_peek_data (x);

  if (exo_tensor_get_n_elements (x) == 0)
    return 0;
  switch (exo_tensor_get_dtype (x))
    {
    case EXO_DTYPE_INT32:
      return ((const gint32 *) data)[0];
    case EXO_DTYPE_INT64:
      return (gint32) ((const gint64 *) data)[0];
    case EXO_DTYPE_FLOAT32:
      return (gint32) ((const float *) data)[0];
    case EXO_DTYPE_FLOAT16:
    default:
      return 0;
    }
}

static ExoTensor *
dummy_sample (ExoInferenceEngine  *engine,
              ExoTensor           *x,
              double               temperature,
              double               top_p,
              GError             **error)
{
  DummyInference *self = DUMMY_INFERENCE (engine);
  gint32 token = first_value (x);

  if (!ensure_usable (self, error))
    return NULL;
  if (token > (gint32) self->num_generate_tokens)
    token = self->eos_token;
  self->tokens_sampled++;
  self->last_temperature = temperature;
  self->last_top_p = top_p;
  return exo_tensor_new_int32 (&token, 1);
}

static ExoTensor *
add_one (ExoTensor *x)
{
  gsize n = exo_tensor_get_n_elements (x);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;

  switch (exo_tensor_get_dtype (x))
    {
    case EXO_DTYPE_INT32:
      {
        gint32 *v = g_memdup2 (exo_tensor_peek_data (x), n * sizeof (gint32));
        for (gsize i = 0; i < n; i++)
          v[i] += 1;
        bytes = g_bytes_new_take (v, n * sizeof (gint32));
        break;
      }
    case EXO_DTYPE_INT64:
      {
        gint64 *v = g_memdup2 (exo_tensor_peek_data (x), n * sizeof (gint64));
        for (gsize i = 0; i < n; i++)
          v[i] += 1;
        bytes = g_bytes_new_take (v, n * sizeof (gint64));
        break;
      }
    case EXO_DTYPE_FLOAT32:
      {
        float *v = g_memdup2 (exo_tensor_peek_data (x), n * sizeof (float));
        for (gsize i = 0; i < n; i++)
          v[i] += 1.0f;
        bytes = g_bytes_new_take (v, n * sizeof (float));
        break;
      }
    case EXO_DTYPE_FLOAT16:
    default:
      return exo_tensor_ref (x);
    }
  return exo_tensor_new (exo_tensor_get_dtype (x), exo_tensor_get_shape (x),
                         exo_tensor_get_n_dims (x), bytes, &error);
}

static void
dummy_infer_tensor_async (ExoInferenceEngine  *engine,
                          const char          *request_id,
                          const ExoShard      *shard,
                          ExoTensor           *input,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  DummyInference *self = DUMMY_INFERENCE (engine);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, dummy_infer_tensor_async);
  if (!ensure_usable (self, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  ensure_shard (self, shard);
  self->infer_calls++;
  return_tensor (self, task,
                 exo_shard_is_last_layer (shard) ? add_one (input) : exo_tensor_ref (input));
}

static void
dummy_load_checkpoint_async (ExoInferenceEngine  *engine,
                             const ExoShard      *shard,
                             const char          *path,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  DummyInference *self = DUMMY_INFERENCE (engine);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, dummy_load_checkpoint_async);
  if (!ensure_usable (self, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  ensure_shard (self, shard);
  g_task_return_boolean (task, TRUE);
}

static gboolean
dummy_load_checkpoint_finish (ExoInferenceEngine  *engine,
                              GAsyncResult        *result,
                              GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, engine), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static gint32
dummy_get_eos_token (ExoInferenceEngine *engine)
{
  return DUMMY_INFERENCE (engine)->eos_token;
}

static void
dummy_inference_engine_init (ExoInferenceEngineInterface *iface)
{
  iface->encode_async = dummy_encode_async;
  iface->encode_finish = dummy_tensor_finish;
  iface->decode = dummy_decode;
  iface->sample = dummy_sample;
  iface->infer_tensor_async = dummy_infer_tensor_async;
  iface->infer_tensor_finish = dummy_tensor_finish;
  iface->load_checkpoint_async = dummy_load_checkpoint_async;
  iface->load_checkpoint_finish = dummy_load_checkpoint_finish;
  iface->get_eos_token = dummy_get_eos_token;
}

/* --- GObject ----------------------------------------------------------- */

static void
dummy_inference_finalize (GObject *object)
{
  DummyInference *self = DUMMY_INFERENCE (object);

  g_clear_pointer (&self->shard, exo_shard_free);
  G_OBJECT_CLASS (dummy_inference_parent_class)->finalize (object);
}

static void
dummy_inference_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  DummyInference *self = DUMMY_INFERENCE (object);

  switch (prop_id)
    {
    case PROP_LATENCY_MS:
      g_value_set_uint (value, self->latency_ms);
      break;
    case PROP_NUM_GENERATE_TOKENS:
      g_value_set_uint (value, self->num_generate_tokens);
      break;
    case PROP_VOCAB_SIZE:
      g_value_set_uint (value, self->vocab_size);
      break;
    case PROP_EOS_TOKEN:
      g_value_set_int (value, self->eos_token);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dummy_inference_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  DummyInference *self = DUMMY_INFERENCE (object);

  switch (prop_id)
    {
    case PROP_LATENCY_MS:
      self->latency_ms = g_value_get_uint (value);
      break;
    case PROP_NUM_GENERATE_TOKENS:
      self->num_generate_tokens = g_value_get_uint (value);
      break;
    case PROP_VOCAB_SIZE:
      self->vocab_size = g_value_get_uint (value);
      break;
    case PROP_EOS_TOKEN:
      self->eos_token = g_value_get_int (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  g_object_notify_by_pspec (object, pspec);
}

static void
dummy_inference_class_init (DummyInferenceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->finalize = dummy_inference_finalize;
  object_class->get_property = dummy_inference_get_property;
  object_class->set_property = dummy_inference_set_property;

  resource_class->do_initialize = dummy_inference_do_initialize;
  resource_class->do_cleanup = dummy_inference_do_cleanup;
  resource_class->collect_metrics = dummy_inference_collect_metrics;
  exo_resource_class_add_metric_entries (resource_class, dummy_metric_entries,
                                         G_N_ELEMENTS (dummy_metric_entries));
  exo_resource_class_set_resource_type (resource_class, "dummy-inference");

  properties[PROP_LATENCY_MS] =
    g_param_spec_uint ("latency-ms", NULL, "Simulated compute time per infer call",
                       0, 60000, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_NUM_GENERATE_TOKENS] =
    g_param_spec_uint ("num-generate-tokens", NULL, "Tokens generated before EOS",
                       0, 100000, 10,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_VOCAB_SIZE] =
    g_param_spec_uint ("vocab-size", NULL, "Vocabulary size", 1, G_MAXINT, 1000,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_EOS_TOKEN] =
    g_param_spec_int ("eos-token", NULL, "The end-of-sequence token", 0, G_MAXINT, 69,
                      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dummy_inference_init (DummyInference *self)
{
  self->num_generate_tokens = 10;
  self->vocab_size = 1000;
  self->eos_token = 69;
  self->last_temperature = -1;
  self->last_top_p = -1;
}

static void
dummy_inference_register (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "dummy-inference", DUMMY_TYPE_INFERENCE);
}

EXO_PLUGIN_DEFINE ("dummy-inference", "1.0.0",
                   "A deterministic inference engine with the semantics of exo's DummyInferenceEngine",
                   dummy_inference_register)
