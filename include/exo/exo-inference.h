/* exo-inference.h: shards, tensors and the ExoInferenceEngine role.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-resource.h>

G_BEGIN_DECLS

/* --- ExoShard ------------------------------------------------------------ */

#define EXO_TYPE_SHARD (exo_shard_get_type ())

/**
 * ExoShard:
 * @model_id: the model
 * @start_layer: first layer of the shard (0-based, inclusive)
 * @end_layer: last layer of the shard (inclusive)
 * @n_layers: layers of the whole model
 *
 * A contiguous range of a model's layers, as exo's `Shard`.
 */
typedef struct {
  char *model_id;
  guint start_layer;
  guint end_layer;
  guint n_layers;
} ExoShard;

EXO_AVAILABLE_IN_ALL
GType     exo_shard_get_type        (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
ExoShard *exo_shard_new             (const char     *model_id,
                                     guint           start_layer,
                                     guint           end_layer,
                                     guint           n_layers);
EXO_AVAILABLE_IN_ALL
ExoShard *exo_shard_copy            (const ExoShard *shard);
EXO_AVAILABLE_IN_ALL
void      exo_shard_free            (ExoShard       *shard);
EXO_AVAILABLE_IN_ALL
gboolean  exo_shard_is_first_layer  (const ExoShard *shard);
EXO_AVAILABLE_IN_ALL
gboolean  exo_shard_is_last_layer   (const ExoShard *shard);
EXO_AVAILABLE_IN_ALL
guint     exo_shard_get_layer_count (const ExoShard *shard);
EXO_AVAILABLE_IN_ALL
gboolean  exo_shard_equal           (const ExoShard *a,
                                     const ExoShard *b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoShard, exo_shard_free)

/* --- ExoTensor ----------------------------------------------------------- */

/**
 * ExoDType:
 * @EXO_DTYPE_FLOAT32: 32-bit IEEE float
 * @EXO_DTYPE_INT32: 32-bit signed integer (token ids)
 * @EXO_DTYPE_INT64: 64-bit signed integer
 * @EXO_DTYPE_FLOAT16: 16-bit IEEE float (stored, not computed on)
 */
typedef enum {
  EXO_DTYPE_FLOAT32,
  EXO_DTYPE_INT32,
  EXO_DTYPE_INT64,
  EXO_DTYPE_FLOAT16,
} ExoDType;

#define EXO_TYPE_TENSOR (exo_tensor_get_type ())
#define EXO_TENSOR_MAX_DIMS 8

/**
 * ExoTensor:
 *
 * An immutable, reference-counted n-dimensional array: dtype, shape and
 * the bytes in row-major order.
 */
typedef struct _ExoTensor ExoTensor;

EXO_AVAILABLE_IN_ALL
GType         exo_tensor_get_type       (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
ExoTensor    *exo_tensor_new            (ExoDType        dtype,
                                         const gsize    *shape,
                                         guint           n_dims,
                                         GBytes         *data,
                                         GError        **error);
EXO_AVAILABLE_IN_ALL
ExoTensor    *exo_tensor_new_int32      (const gint32   *values,
                                         gsize           n_values);
EXO_AVAILABLE_IN_ALL
ExoTensor    *exo_tensor_ref            (ExoTensor      *tensor);
EXO_AVAILABLE_IN_ALL
void          exo_tensor_unref          (ExoTensor      *tensor);
EXO_AVAILABLE_IN_ALL
ExoDType      exo_tensor_get_dtype      (ExoTensor      *tensor);
EXO_AVAILABLE_IN_ALL
guint         exo_tensor_get_n_dims     (ExoTensor      *tensor);
EXO_AVAILABLE_IN_ALL
const gsize  *exo_tensor_get_shape      (ExoTensor      *tensor);
EXO_AVAILABLE_IN_ALL
gsize         exo_tensor_get_n_elements (ExoTensor      *tensor);
EXO_AVAILABLE_IN_ALL
GBytes       *exo_tensor_get_data       (ExoTensor      *tensor);
EXO_AVAILABLE_IN_ALL
gconstpointer exo_tensor_peek_data      (ExoTensor      *tensor);
EXO_AVAILABLE_IN_ALL
const char   *exo_dtype_to_string       (ExoDType        dtype);
EXO_AVAILABLE_IN_ALL
gboolean      exo_dtype_from_string     (const char     *str,
                                         ExoDType       *out_dtype);
EXO_AVAILABLE_IN_ALL
gsize         exo_dtype_get_size        (ExoDType        dtype);
EXO_AVAILABLE_IN_ALL
char         *exo_tensor_shape_to_string (ExoTensor     *tensor);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoTensor, exo_tensor_unref)

/* --- ExoInferenceEngine -------------------------------------------------- */

/**
 * EXO_MODEL_DIGEST_MAX_LEN:
 *
 * The longest model digest (exo_inference_engine_get_model_digest()), in
 * bytes.  New in plugin ABI 3.3.
 */
#define EXO_MODEL_DIGEST_MAX_LEN 128

#define EXO_TYPE_INFERENCE_ENGINE (exo_inference_engine_get_type ())

EXO_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (ExoInferenceEngine, exo_inference_engine, EXO, INFERENCE_ENGINE, ExoResource)

/**
 * ExoInferenceEngineInterface:
 * @encode_async: prompt text → token tensor (int32, shape [n])
 * @encode_finish: finish @encode_async
 * @decode: tokens → text
 * @sample: logits or the last layer's output → next token (int32, shape [1])
 * @infer_tensor_async: run the shard's layers on an input tensor
 * @infer_tensor_finish: finish @infer_tensor_async
 * @load_checkpoint_async: load (or switch to) a shard's weights
 * @load_checkpoint_finish: finish @load_checkpoint_async
 * @get_eos_token: the end-of-sequence token id
 * @sample_for_request: as @sample, with the random state of @request_id:
 *   seeded from @seed on its first use when @has_seed, else from a random
 *   seed, then carried from token to token.  Optional (%NULL: @sample is
 *   called and the seed is ignored); since 0.3
 * @end_request: @request_id is over (finished, failed, cancelled or timed
 *   out): free its state (KV cache, random state).  Optional; since 0.3
 * @try_infer_tensor: as @infer_tensor_async, but now, on the caller's
 *   thread, when the engine finds the step cheap enough (a decode step of
 *   a few layers costs less than a hand-off to a worker and back): %TRUE
 *   when it took the step, with *@output set (it ran) or @error (it
 *   refused it); %FALSE, setting neither, when it would rather not (the
 *   caller then calls @infer_tensor_async).  Optional; plugin ABI 3.3
 * @get_model_digest: a short text that is the same on two engines exactly
 *   when they compute the same model (a digest of its checkpoint), or
 *   %NULL when unknown: nodes put in one ring only engines whose digests
 *   match.  Optional; plugin ABI 3.3
 *
 * The role of an inference engine, as exo's `InferenceEngine`.  An engine
 * is a resource: its initialize loads nothing yet; load_checkpoint or the
 * first infer call loads a shard.
 *
 * An engine may keep state per request id (the position and KV cache of a
 * transformer): each call of @infer_tensor_async for a request continues
 * where the previous one stopped, so the caller runs a request's calls one
 * after another and calls @end_request when it is over.
 */
struct _ExoInferenceEngineInterface
{
  GTypeInterface parent_iface;

  void       (*encode_async)           (ExoInferenceEngine  *self,
                                        const ExoShard      *shard,
                                        const char          *prompt,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data);
  ExoTensor *(*encode_finish)          (ExoInferenceEngine  *self,
                                        GAsyncResult        *result,
                                        GError             **error);
  char      *(*decode)                 (ExoInferenceEngine  *self,
                                        const ExoShard      *shard,
                                        ExoTensor           *tokens,
                                        GError             **error);
  ExoTensor *(*sample)                 (ExoInferenceEngine  *self,
                                        ExoTensor           *x,
                                        double               temperature,
                                        double               top_p,
                                        GError             **error);
  void       (*infer_tensor_async)     (ExoInferenceEngine  *self,
                                        const char          *request_id,
                                        const ExoShard      *shard,
                                        ExoTensor           *input,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data);
  ExoTensor *(*infer_tensor_finish)    (ExoInferenceEngine  *self,
                                        GAsyncResult        *result,
                                        GError             **error);
  void       (*load_checkpoint_async)  (ExoInferenceEngine  *self,
                                        const ExoShard      *shard,
                                        const char          *path,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data);
  gboolean   (*load_checkpoint_finish) (ExoInferenceEngine  *self,
                                        GAsyncResult        *result,
                                        GError             **error);
  gint32     (*get_eos_token)          (ExoInferenceEngine  *self);

  /* since 0.3 */
  ExoTensor *(*sample_for_request)     (ExoInferenceEngine  *self,
                                        const char          *request_id,
                                        ExoTensor           *x,
                                        double               temperature,
                                        double               top_p,
                                        guint64              seed,
                                        gboolean             has_seed,
                                        GError             **error);
  void       (*end_request)            (ExoInferenceEngine  *self,
                                        const char          *request_id);

  /* plugin ABI 3.3 */
  gboolean   (*try_infer_tensor)       (ExoInferenceEngine  *self,
                                        const char          *request_id,
                                        const ExoShard      *shard,
                                        ExoTensor           *input,
                                        ExoTensor          **output,
                                        GError             **error);
  char      *(*get_model_digest)       (ExoInferenceEngine  *self);

  /*< private >*/
  gpointer padding[4];
};

EXO_AVAILABLE_IN_ALL
void       exo_inference_engine_encode_async          (ExoInferenceEngine  *self,
                                                       const ExoShard      *shard,
                                                       const char          *prompt,
                                                       GCancellable        *cancellable,
                                                       GAsyncReadyCallback  callback,
                                                       gpointer             user_data);
EXO_AVAILABLE_IN_ALL
ExoTensor *exo_inference_engine_encode_finish         (ExoInferenceEngine  *self,
                                                       GAsyncResult        *result,
                                                       GError             **error);
EXO_AVAILABLE_IN_ALL
char      *exo_inference_engine_decode                (ExoInferenceEngine  *self,
                                                       const ExoShard      *shard,
                                                       ExoTensor           *tokens,
                                                       GError             **error);
EXO_AVAILABLE_IN_ALL
ExoTensor *exo_inference_engine_sample                (ExoInferenceEngine  *self,
                                                       ExoTensor           *x,
                                                       double               temperature,
                                                       double               top_p,
                                                       GError             **error);
EXO_AVAILABLE_IN_ALL
void       exo_inference_engine_infer_tensor_async    (ExoInferenceEngine  *self,
                                                       const char          *request_id,
                                                       const ExoShard      *shard,
                                                       ExoTensor           *input,
                                                       GCancellable        *cancellable,
                                                       GAsyncReadyCallback  callback,
                                                       gpointer             user_data);
EXO_AVAILABLE_IN_ALL
ExoTensor *exo_inference_engine_infer_tensor_finish   (ExoInferenceEngine  *self,
                                                       GAsyncResult        *result,
                                                       GError             **error);
EXO_AVAILABLE_IN_ALL
void       exo_inference_engine_infer_prompt_async    (ExoInferenceEngine  *self,
                                                       const char          *request_id,
                                                       const ExoShard      *shard,
                                                       const char          *prompt,
                                                       GCancellable        *cancellable,
                                                       GAsyncReadyCallback  callback,
                                                       gpointer             user_data);
EXO_AVAILABLE_IN_ALL
ExoTensor *exo_inference_engine_infer_prompt_finish   (ExoInferenceEngine  *self,
                                                       GAsyncResult        *result,
                                                       GError             **error);
EXO_AVAILABLE_IN_ALL
void       exo_inference_engine_load_checkpoint_async (ExoInferenceEngine  *self,
                                                       const ExoShard      *shard,
                                                       const char          *path,
                                                       GCancellable        *cancellable,
                                                       GAsyncReadyCallback  callback,
                                                       gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gboolean   exo_inference_engine_load_checkpoint_finish (ExoInferenceEngine *self,
                                                        GAsyncResult       *result,
                                                        GError            **error);
EXO_AVAILABLE_IN_ALL
gint32     exo_inference_engine_get_eos_token         (ExoInferenceEngine  *self);
EXO_AVAILABLE_IN_ALL
ExoTensor *exo_inference_engine_sample_for_request    (ExoInferenceEngine  *self,
                                                       const char          *request_id,
                                                       ExoTensor           *x,
                                                       double               temperature,
                                                       double               top_p,
                                                       guint64              seed,
                                                       gboolean             has_seed,
                                                       GError             **error);
EXO_AVAILABLE_IN_ALL
void       exo_inference_engine_end_request           (ExoInferenceEngine  *self,
                                                       const char          *request_id);
EXO_AVAILABLE_IN_ALL
char      *exo_inference_engine_get_model_digest      (ExoInferenceEngine  *self);
EXO_AVAILABLE_IN_ALL
gboolean   exo_inference_engine_try_infer_tensor      (ExoInferenceEngine  *self,
                                                       const char          *request_id,
                                                       const ExoShard      *shard,
                                                       ExoTensor           *input,
                                                       ExoTensor          **output,
                                                       GError             **error);

G_END_DECLS
