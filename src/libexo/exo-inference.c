/* exo-inference.c: shards, tensors and the inference engine role.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: ExoShard (a plain boxed value), ExoTensor (immutable after
 * exo_tensor_new(), shape-checked against its bytes, reference counted),
 * the dtype names, and the ExoInferenceEngine interface: its functions
 * check the instance and call the implementation, and infer_prompt is
 * encode then infer_tensor, chained through one GTask.
 *
 * Rules: no lock, no global state but the constant dtype table.  Shards
 * and tensors may be used from any thread: a tensor never changes after it
 * is made and its reference count is atomic (an engine's worker thread
 * holds tensors the main context also holds).  The engine functions are
 * called in the engine's main context, where their GTasks call back (an
 * engine that computes on a worker thread, as llama-inference does, returns
 * there); the synchronous ones (decode, sample, sample_for_request,
 * get_eos_token, end_request) run in the caller's thread, which is that
 * context too.
 */
#include "exo-private.h"

#include <string.h>

/* --- ExoShard ------------------------------------------------------------ */

G_DEFINE_BOXED_TYPE (ExoShard, exo_shard, exo_shard_copy, exo_shard_free)

/**
 * exo_shard_new:
 * @model_id: the model
 * @start_layer: first layer (inclusive)
 * @end_layer: last layer (inclusive), >= @start_layer, < @n_layers
 * @n_layers: layers of the model
 *
 * Returns: (transfer full): a new shard
 */
ExoShard *
exo_shard_new (const char *model_id,
               guint       start_layer,
               guint       end_layer,
               guint       n_layers)
{
  ExoShard *shard;

  g_return_val_if_fail (model_id != NULL, NULL);
  g_return_val_if_fail (start_layer <= end_layer, NULL);
  g_return_val_if_fail (end_layer < n_layers, NULL);

  shard = g_new0 (ExoShard, 1);
  shard->model_id = g_strdup (model_id);
  shard->start_layer = start_layer;
  shard->end_layer = end_layer;
  shard->n_layers = n_layers;
  return shard;
}

ExoShard *
exo_shard_copy (const ExoShard *shard)
{
  g_return_val_if_fail (shard != NULL, NULL);
  return exo_shard_new (shard->model_id, shard->start_layer, shard->end_layer, shard->n_layers);
}

void
exo_shard_free (ExoShard *shard)
{
  if (shard == NULL)
    return;
  g_free (shard->model_id);
  g_free (shard);
}

gboolean
exo_shard_is_first_layer (const ExoShard *shard)
{
  g_return_val_if_fail (shard != NULL, FALSE);
  return shard->start_layer == 0;
}

gboolean
exo_shard_is_last_layer (const ExoShard *shard)
{
  g_return_val_if_fail (shard != NULL, FALSE);
  return shard->end_layer == shard->n_layers - 1;
}

guint
exo_shard_get_layer_count (const ExoShard *shard)
{
  g_return_val_if_fail (shard != NULL, 0);
  return shard->end_layer - shard->start_layer + 1;
}

gboolean
exo_shard_equal (const ExoShard *a,
                 const ExoShard *b)
{
  if (a == b)
    return TRUE;
  if (a == NULL || b == NULL)
    return FALSE;
  return g_strcmp0 (a->model_id, b->model_id) == 0
         && a->start_layer == b->start_layer
         && a->end_layer == b->end_layer
         && a->n_layers == b->n_layers;
}

/* --- ExoTensor ----------------------------------------------------------- */

struct _ExoTensor
{
  gint      ref_count;
  ExoDType  dtype;
  guint     n_dims;
  gsize     shape[EXO_TENSOR_MAX_DIMS];
  gsize     n_elements;
  GBytes   *data;
};

G_DEFINE_BOXED_TYPE (ExoTensor, exo_tensor, exo_tensor_ref, exo_tensor_unref)

static const struct {
  const char *name;
  gsize       size;
} dtypes[] = {
  [EXO_DTYPE_FLOAT32] = { "float32", 4 },
  [EXO_DTYPE_INT32]   = { "int32", 4 },
  [EXO_DTYPE_INT64]   = { "int64", 8 },
  [EXO_DTYPE_FLOAT16] = { "float16", 2 },
};

const char *
exo_dtype_to_string (ExoDType dtype)
{
  if ((guint) dtype >= G_N_ELEMENTS (dtypes))
    return "invalid";
  return dtypes[dtype].name;
}

gboolean
exo_dtype_from_string (const char *str,
                       ExoDType   *out_dtype)
{
  g_return_val_if_fail (out_dtype != NULL, FALSE);

  for (guint i = 0; str != NULL && i < G_N_ELEMENTS (dtypes); i++)
    if (strcmp (str, dtypes[i].name) == 0)
      {
        *out_dtype = (ExoDType) i;
        return TRUE;
      }
  return FALSE;
}

gsize
exo_dtype_get_size (ExoDType dtype)
{
  if ((guint) dtype >= G_N_ELEMENTS (dtypes))
    return 0;
  return dtypes[dtype].size;
}

/**
 * exo_tensor_new:
 * @dtype: the element type
 * @shape: (array length=n_dims): the dimensions
 * @n_dims: number of dimensions, 1 to %EXO_TENSOR_MAX_DIMS
 * @data: the elements, row-major; its size must match the shape
 * @error: return location for a mismatch
 *
 * Returns: (transfer full) (nullable): a new tensor, or %NULL with @error
 *   set (%G_IO_ERROR_INVALID_DATA) when the shape and data disagree
 */
ExoTensor *
exo_tensor_new (ExoDType       dtype,
                const gsize   *shape,
                guint          n_dims,
                GBytes        *data,
                GError       **error)
{
  ExoTensor *tensor;
  gsize n = 1;

  g_return_val_if_fail (data != NULL, NULL);

  if ((guint) dtype >= G_N_ELEMENTS (dtypes))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "unknown dtype %d", (int) dtype);
      return NULL;
    }
  if (n_dims == 0 || n_dims > EXO_TENSOR_MAX_DIMS || shape == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "a tensor has 1 to %d dimensions (got %u)", EXO_TENSOR_MAX_DIMS, n_dims);
      return NULL;
    }
  for (guint i = 0; i < n_dims; i++)
    {
      if (shape[i] != 0 && n > G_MAXSIZE / shape[i] / dtypes[dtype].size)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "tensor shape overflows");
          return NULL;
        }
      n *= shape[i];
    }
  if (n * dtypes[dtype].size != g_bytes_get_size (data))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "tensor data is %" G_GSIZE_FORMAT " bytes, shape and dtype %s need %" G_GSIZE_FORMAT,
                   g_bytes_get_size (data), dtypes[dtype].name, n * dtypes[dtype].size);
      return NULL;
    }

  tensor = g_new0 (ExoTensor, 1);
  tensor->ref_count = 1;
  tensor->dtype = dtype;
  tensor->n_dims = n_dims;
  memcpy (tensor->shape, shape, n_dims * sizeof (gsize));
  tensor->n_elements = n;
  tensor->data = g_bytes_ref (data);
  return tensor;
}

/**
 * exo_tensor_new_int32:
 * @values: (array length=n_values): the values
 * @n_values: how many
 *
 * Returns: (transfer full): a 1-dimensional int32 tensor of @values
 */
ExoTensor *
exo_tensor_new_int32 (const gint32 *values,
                      gsize         n_values)
{
  g_autoptr(GBytes) bytes = g_bytes_new (values, n_values * sizeof (gint32));
  gsize shape[1] = { n_values };

  return exo_tensor_new (EXO_DTYPE_INT32, shape, 1, bytes, NULL);
}

ExoTensor *
exo_tensor_ref (ExoTensor *tensor)
{
  g_return_val_if_fail (tensor != NULL, NULL);
  g_atomic_int_inc (&tensor->ref_count);
  return tensor;
}

void
exo_tensor_unref (ExoTensor *tensor)
{
  if (tensor == NULL)
    return;
  if (g_atomic_int_dec_and_test (&tensor->ref_count))
    {
      g_bytes_unref (tensor->data);
      g_free (tensor);
    }
}

ExoDType
exo_tensor_get_dtype (ExoTensor *tensor)
{
  return tensor->dtype;
}

guint
exo_tensor_get_n_dims (ExoTensor *tensor)
{
  return tensor->n_dims;
}

const gsize *
exo_tensor_get_shape (ExoTensor *tensor)
{
  return tensor->shape;
}

gsize
exo_tensor_get_n_elements (ExoTensor *tensor)
{
  return tensor->n_elements;
}

/**
 * exo_tensor_get_data:
 * @tensor: a tensor
 *
 * Returns: (transfer none): the bytes
 */
GBytes *
exo_tensor_get_data (ExoTensor *tensor)
{
  return tensor->data;
}

gconstpointer
exo_tensor_peek_data (ExoTensor *tensor)
{
  return g_bytes_get_data (tensor->data, NULL);
}

/**
 * exo_tensor_shape_to_string:
 * @tensor: a tensor
 *
 * Returns: (transfer full): the shape as `"2,3,4"` (the form used in HTTP headers)
 */
char *
exo_tensor_shape_to_string (ExoTensor *tensor)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < tensor->n_dims; i++)
    g_string_append_printf (s, "%s%" G_GSIZE_FORMAT, i ? "," : "", tensor->shape[i]);
  return g_string_free (s, FALSE);
}

/* --- ExoInferenceEngine -------------------------------------------------- */

G_DEFINE_INTERFACE (ExoInferenceEngine, exo_inference_engine, EXO_TYPE_RESOURCE)

static void
exo_inference_engine_default_init (ExoInferenceEngineInterface *iface)
{
}

void
exo_inference_engine_encode_async (ExoInferenceEngine  *self,
                                   const ExoShard      *shard,
                                   const char          *prompt,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_return_if_fail (EXO_IS_INFERENCE_ENGINE (self));
  g_return_if_fail (shard != NULL && prompt != NULL);
  EXO_INFERENCE_ENGINE_GET_IFACE (self)->encode_async (self, shard, prompt, cancellable,
                                                       callback, user_data);
}

/**
 * exo_inference_engine_encode_finish:
 * @self: an engine
 * @result: the result
 * @error: return location for an error
 *
 * Returns: (transfer full): the tokens
 */
ExoTensor *
exo_inference_engine_encode_finish (ExoInferenceEngine  *self,
                                    GAsyncResult        *result,
                                    GError             **error)
{
  g_return_val_if_fail (EXO_IS_INFERENCE_ENGINE (self), NULL);
  return EXO_INFERENCE_ENGINE_GET_IFACE (self)->encode_finish (self, result, error);
}

/**
 * exo_inference_engine_decode:
 * @self: an engine
 * @shard: the shard
 * @tokens: token ids
 * @error: return location for an error
 *
 * Returns: (transfer full): the text
 */
char *
exo_inference_engine_decode (ExoInferenceEngine  *self,
                             const ExoShard      *shard,
                             ExoTensor           *tokens,
                             GError             **error)
{
  g_return_val_if_fail (EXO_IS_INFERENCE_ENGINE (self), NULL);
  return EXO_INFERENCE_ENGINE_GET_IFACE (self)->decode (self, shard, tokens, error);
}

/**
 * exo_inference_engine_sample:
 * @self: an engine
 * @x: the output of the last layer
 * @temperature: sampling temperature
 * @top_p: nucleus sampling threshold
 * @error: return location for an error
 *
 * Returns: (transfer full): the next token, int32 shape [1]
 */
ExoTensor *
exo_inference_engine_sample (ExoInferenceEngine  *self,
                             ExoTensor           *x,
                             double               temperature,
                             double               top_p,
                             GError             **error)
{
  g_return_val_if_fail (EXO_IS_INFERENCE_ENGINE (self), NULL);
  return EXO_INFERENCE_ENGINE_GET_IFACE (self)->sample (self, x, temperature, top_p, error);
}

void
exo_inference_engine_infer_tensor_async (ExoInferenceEngine  *self,
                                         const char          *request_id,
                                         const ExoShard      *shard,
                                         ExoTensor           *input,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data)
{
  g_return_if_fail (EXO_IS_INFERENCE_ENGINE (self));
  g_return_if_fail (shard != NULL && input != NULL);
  EXO_INFERENCE_ENGINE_GET_IFACE (self)->infer_tensor_async (self, request_id, shard, input,
                                                             cancellable, callback, user_data);
}

/**
 * exo_inference_engine_infer_tensor_finish:
 * @self: an engine
 * @result: the result
 * @error: return location for an error
 *
 * Returns: (transfer full): the shard's output
 */
ExoTensor *
exo_inference_engine_infer_tensor_finish (ExoInferenceEngine  *self,
                                          GAsyncResult        *result,
                                          GError             **error)
{
  g_return_val_if_fail (EXO_IS_INFERENCE_ENGINE (self), NULL);
  return EXO_INFERENCE_ENGINE_GET_IFACE (self)->infer_tensor_finish (self, result, error);
}

typedef struct
{
  char     *request_id;
  ExoShard *shard;
} PromptData;

static void
prompt_data_free (PromptData *data)
{
  g_free (data->request_id);
  exo_shard_free (data->shard);
  g_free (data);
}

static void
prompt_infer_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  ExoTensor *out;

  out = exo_inference_engine_infer_tensor_finish (EXO_INFERENCE_ENGINE (source), result, &error);
  if (out == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, out, (GDestroyNotify) exo_tensor_unref);
}

static void
prompt_encode_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  PromptData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(ExoTensor) tokens = NULL;

  tokens = exo_inference_engine_encode_finish (EXO_INFERENCE_ENGINE (source), result, &error);
  if (tokens == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  exo_inference_engine_infer_tensor_async (EXO_INFERENCE_ENGINE (source), data->request_id,
                                           data->shard, tokens, g_task_get_cancellable (task),
                                           prompt_infer_cb, task);
}

/**
 * exo_inference_engine_infer_prompt_async:
 * @self: an engine
 * @request_id: the request
 * @shard: the shard to run (the first of the model)
 * @prompt: the prompt text
 * @cancellable: (nullable): a cancellable
 * @callback: called with the shard's output
 * @user_data: data for @callback
 *
 * Encodes @prompt and runs the shard on the tokens, as exo's `infer_prompt`.
 */
void
exo_inference_engine_infer_prompt_async (ExoInferenceEngine  *self,
                                         const char          *request_id,
                                         const ExoShard      *shard,
                                         const char          *prompt,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data)
{
  GTask *task;
  PromptData *data;

  g_return_if_fail (EXO_IS_INFERENCE_ENGINE (self));
  g_return_if_fail (shard != NULL && prompt != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, exo_inference_engine_infer_prompt_async);
  data = g_new0 (PromptData, 1);
  data->request_id = g_strdup (request_id);
  data->shard = exo_shard_copy (shard);
  g_task_set_task_data (task, data, (GDestroyNotify) prompt_data_free);

  exo_inference_engine_encode_async (self, shard, prompt, cancellable, prompt_encode_cb, task);
}

/**
 * exo_inference_engine_infer_prompt_finish:
 * @self: an engine
 * @result: the result
 * @error: return location for an error
 *
 * Returns: (transfer full): the shard's output
 */
ExoTensor *
exo_inference_engine_infer_prompt_finish (ExoInferenceEngine  *self,
                                          GAsyncResult        *result,
                                          GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
exo_inference_engine_load_checkpoint_async (ExoInferenceEngine  *self,
                                            const ExoShard      *shard,
                                            const char          *path,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data)
{
  g_return_if_fail (EXO_IS_INFERENCE_ENGINE (self));
  EXO_INFERENCE_ENGINE_GET_IFACE (self)->load_checkpoint_async (self, shard, path, cancellable,
                                                                callback, user_data);
}

gboolean
exo_inference_engine_load_checkpoint_finish (ExoInferenceEngine  *self,
                                             GAsyncResult        *result,
                                             GError             **error)
{
  g_return_val_if_fail (EXO_IS_INFERENCE_ENGINE (self), FALSE);
  return EXO_INFERENCE_ENGINE_GET_IFACE (self)->load_checkpoint_finish (self, result, error);
}

gint32
exo_inference_engine_get_eos_token (ExoInferenceEngine *self)
{
  g_return_val_if_fail (EXO_IS_INFERENCE_ENGINE (self), -1);
  return EXO_INFERENCE_ENGINE_GET_IFACE (self)->get_eos_token (self);
}

/**
 * exo_inference_engine_sample_for_request:
 * @self: an engine
 * @request_id: (nullable): the request the token is for
 * @x: the output of the last layer (the logits)
 * @temperature: sampling temperature; 0 (or less) is greedy
 * @top_p: nucleus sampling threshold; 0 or 1 and above sample from all tokens
 * @seed: the seed of @request_id's random state, read on its first use
 * @has_seed: whether @seed is given; without it the state is seeded randomly
 * @error: return location for an error
 *
 * Samples the next token of @request_id.  The random state belongs to the
 * request, so the same prompt, settings and seed give the same tokens on
 * every run, whatever else the engine does meanwhile.  An engine without
 * the vfunc falls back to exo_inference_engine_sample() (no seed).
 *
 * Returns: (transfer full): the next token, int32 shape [1]
 *
 * Since: 0.3
 */
ExoTensor *
exo_inference_engine_sample_for_request (ExoInferenceEngine  *self,
                                         const char          *request_id,
                                         ExoTensor           *x,
                                         double               temperature,
                                         double               top_p,
                                         guint64              seed,
                                         gboolean             has_seed,
                                         GError             **error)
{
  ExoInferenceEngineInterface *iface;

  g_return_val_if_fail (EXO_IS_INFERENCE_ENGINE (self), NULL);
  g_return_val_if_fail (x != NULL, NULL);

  iface = EXO_INFERENCE_ENGINE_GET_IFACE (self);
  if (iface->sample_for_request == NULL)
    return iface->sample (self, x, temperature, top_p, error);
  return iface->sample_for_request (self, request_id, x, temperature, top_p, seed, has_seed, error);
}

/**
 * exo_inference_engine_end_request:
 * @self: an engine
 * @request_id: the request that is over
 *
 * Tells the engine that @request_id finished, failed, was cancelled or
 * timed out: it frees what it keeps for it (KV cache, random state).  A
 * later call for the same id is refused by an engine that keeps state.
 * Unknown ids are ignored; engines without state ignore every id.
 *
 * Since: 0.3
 */
void
exo_inference_engine_end_request (ExoInferenceEngine *self,
                                  const char         *request_id)
{
  ExoInferenceEngineInterface *iface;

  g_return_if_fail (EXO_IS_INFERENCE_ENGINE (self));
  g_return_if_fail (request_id != NULL);

  iface = EXO_INFERENCE_ENGINE_GET_IFACE (self);
  if (iface->end_request != NULL)
    iface->end_request (self, request_id);
}

/**
 * exo_inference_engine_try_infer_tensor:
 * @self: an engine
 * @request_id: (nullable): the request, as for infer_tensor_async
 * @shard: the layers to run
 * @input: their input
 * @output: (out) (transfer full) (nullable): where the output goes
 * @error: return location for an error
 *
 * Runs @shard's layers on @input now, on this thread, when the engine
 * finds the step cheap enough (a decode step of a few layers, its worker
 * idle) — without the main-loop iteration a #GTask's callback waits for.
 *
 * Returns: %TRUE when the engine took the step now: *@output is set (it
 *   ran), or @error (it refused it: the step's failure); %FALSE, setting
 *   neither, when it would rather run it asynchronously or has no such
 *   path: then call exo_inference_engine_infer_tensor_async().
 *
 * Since: 0.4 (plugin ABI 3.3)
 */
gboolean
exo_inference_engine_try_infer_tensor (ExoInferenceEngine  *self,
                                       const char          *request_id,
                                       const ExoShard      *shard,
                                       ExoTensor           *input,
                                       ExoTensor          **output,
                                       GError             **error)
{
  ExoInferenceEngineInterface *iface;
  GError *local = NULL;

  g_return_val_if_fail (EXO_IS_INFERENCE_ENGINE (self), FALSE);
  g_return_val_if_fail (shard != NULL, FALSE);
  g_return_val_if_fail (input != NULL, FALSE);
  g_return_val_if_fail (output != NULL && *output == NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  iface = EXO_INFERENCE_ENGINE_GET_IFACE (self);
  if (iface->try_infer_tensor == NULL)
    return FALSE;
  if (!iface->try_infer_tensor (self, request_id, shard, input, output, &local))
    {
      /* not taken: whatever it left behind is dropped */
      g_clear_pointer (output, exo_tensor_unref);
      g_clear_error (&local);
      return FALSE;
    }
  if (*output != NULL)
    g_clear_error (&local);
  else if (local == NULL)
    local = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED,
                                 "the engine took the step but gave neither an output nor an error");
  if (local != NULL)
    g_propagate_error (error, local);
  return TRUE;
}

/**
 * exo_inference_engine_get_model_digest:
 * @self: an engine
 *
 * What the engine computes, as a short printable text (a digest of its
 * checkpoint): two engines with the same text compute the same model.
 * The node puts only engines whose digests match in one ring.
 *
 * Returns: (transfer full) (nullable): the digest (printable ASCII, at
 *   most %EXO_MODEL_DIGEST_MAX_LEN bytes), or %NULL when the engine has
 *   none (or gave one that is not such a text)
 *
 * Since: 0.4 (plugin ABI 3.3)
 */
char *
exo_inference_engine_get_model_digest (ExoInferenceEngine *self)
{
  ExoInferenceEngineInterface *iface;
  g_autofree char *digest = NULL;

  g_return_val_if_fail (EXO_IS_INFERENCE_ENGINE (self), NULL);

  iface = EXO_INFERENCE_ENGINE_GET_IFACE (self);
  if (iface->get_model_digest == NULL || (digest = iface->get_model_digest (self)) == NULL)
    return NULL;
  if (digest[0] == '\0' || strlen (digest) > EXO_MODEL_DIGEST_MAX_LEN)
    return NULL;
  for (const char *p = digest; *p != '\0'; p++)
    if (*p < 0x21 || *p > 0x7e)
      return NULL;
  return g_steal_pointer (&digest);
}

/* The vfuncs of 0.3 and 3.3 took four padding slots: the struct keeps its size. */
G_STATIC_ASSERT (sizeof (ExoInferenceEngineInterface) ==
                 sizeof (GTypeInterface) + 17 * sizeof (gpointer));
