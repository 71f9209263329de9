/* llama-model.c: the loader of llama2.c checkpoints.
 *
 * It owns the mapping of the file (read-only, MADV_RANDOM so that the
 * kernel does not read ahead into layers nobody asked for) and the table
 * of where each tensor lives.  The header is the only part read while
 * opening: every tensor's offset and size is computed from it with checked
 * arithmetic and compared with the length of the file before anything
 * points into it, so a truncated or hostile file is refused with the name
 * of the file, the tensor and the byte offset.  A shard view
 * (LlamaShardWeights) points only at the tensors of its layers (plus the
 * embedding on the first shard, the final norm and classifier on the last),
 * so a node never touches the pages of the layers it does not compute.
 * The model digest (compute_digest(): a few KiB of every tensor) is read
 * through a descriptor of its own, not the mapping, for the same reason.
 *
 * The three formats (llama2.c's run.c and export.py):
 *  - legacy: int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 *    vocab_size (negative: untied classifier), seq_len; float32 embedding,
 *    attention norms, wq, wk, wv, wo, ffn norms, w1, w2, w3, final norm,
 *    two unused freq_cis tables, [classifier];
 *  - version 1: magic "ak42", int32 version, the 7 int32, a shared
 *    classifier byte, padded to 256 bytes; float32 attention norms, ffn
 *    norms, final norm, embedding, wq … w3, [classifier];
 *  - version 2: as version 1 plus an int32 group size after the byte; the
 *    norms in float32, then every matrix as int8 values followed by one
 *    float32 scale per group.
 *
 * Thread rules: see llama-model.h (immutable after llama_model_open()).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "llama-model.h"

#include <gio/gio.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LLAMA_MAGIC       0x616b3432u   /* "ak42" */
#define LLAMA_HEADER_SIZE 256

typedef enum
{
  T_EMBEDDING,
  T_ATTENTION_NORM,
  T_WQ,
  T_WK,
  T_WV,
  T_WO,
  T_FFN_NORM,
  T_W1,
  T_W2,
  T_W3,
  T_FINAL_NORM,
  T_FREQ_CIS,      /* legacy only: skipped */
  T_CLASSIFIER,
  T_END,
} TensorKind;

/* The tensors that each layer has, as indexes in Span *layers. */
enum { L_ATTENTION_NORM, L_WQ, L_WK, L_WV, L_WO, L_FFN_NORM, L_W1, L_W2, L_W3, N_LAYER_TENSORS };

static const char * const kind_names[] = {
  [T_EMBEDDING] = "tok_embeddings",
  [T_ATTENTION_NORM] = "attention_norm",
  [T_WQ] = "attention.wq",
  [T_WK] = "attention.wk",
  [T_WV] = "attention.wv",
  [T_WO] = "attention.wo",
  [T_FFN_NORM] = "ffn_norm",
  [T_W1] = "feed_forward.w1",
  [T_W2] = "feed_forward.w2",
  [T_W3] = "feed_forward.w3",
  [T_FINAL_NORM] = "norm",
  [T_FREQ_CIS] = "freq_cis",
  [T_CLASSIFIER] = "output",
};

/* The order of the tensors in each format. */
static const TensorKind legacy_order[] = {
  T_EMBEDDING, T_ATTENTION_NORM, T_WQ, T_WK, T_WV, T_WO, T_FFN_NORM, T_W1, T_W2, T_W3,
  T_FINAL_NORM, T_FREQ_CIS, T_CLASSIFIER, T_END,
};
static const TensorKind versioned_order[] = {
  T_ATTENTION_NORM, T_FFN_NORM, T_FINAL_NORM, T_EMBEDDING,
  T_WQ, T_WK, T_WV, T_WO, T_W1, T_W2, T_W3, T_CLASSIFIER, T_END,
};

typedef struct
{
  guint64 offset;         /* of the values */
  guint64 scales_offset;  /* int8 tensors: of the scales */
  guint64 bytes;          /* values and scales */
  guint   rows;
  guint   cols;
} Span;

struct _LlamaModel
{
  gint          ref_count;
  char         *path;
  GMappedFile  *file;
  const guint8 *data;
  guint64       size;
  LlamaFormat   format;
  LlamaConfig   config;
  Span          embedding;
  Span          final_norm;
  Span          classifier;
  Span         *layers;        /* n_layers × N_LAYER_TENSORS */
  char         *digest;        /* llama_model_get_digest () */
};

typedef struct
{
  LlamaModel *model;
  guint64     offset;
  GError    **error;
} Cursor;

const char *
llama_format_to_string (LlamaFormat format)
{
  switch (format)
    {
    case LLAMA_FORMAT_LEGACY:
      return "legacy-float32";
    case LLAMA_FORMAT_V1:
      return "v1-float32";
    case LLAMA_FORMAT_V2:
      return "v2-int8";
    default:
      return "invalid";
    }
}

static gint32
read_i32 (const guint8 *p)
{
  gint32 v;

  memcpy (&v, p, sizeof v);
  return v;
}

static char *
tensor_name (TensorKind kind,
             gint       layer,
             const char *suffix)
{
  if (layer >= 0)
    return g_strdup_printf ("layers.%d.%s%s", layer, kind_names[kind], suffix);
  return g_strdup_printf ("%s%s", kind_names[kind], suffix);
}

/* Claims @n_elements × @elt_size bytes at the cursor for a tensor. */
static gboolean
cursor_take (Cursor     *c,
             TensorKind  kind,
             gint        layer,
             const char *suffix,
             guint64     n_elements,
             guint64     elt_size,
             guint64    *out_offset)
{
  guint64 bytes = 0, end = 0;

  if (!g_uint64_checked_mul (&bytes, n_elements, elt_size) ||
      !g_uint64_checked_add (&end, c->offset, bytes))
    {
      g_autofree char *name = tensor_name (kind, layer, suffix);

      g_set_error (c->error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "model file '%s': tensor '%s' at byte offset %" G_GUINT64_FORMAT
                   ": its size overflows", c->model->path, name, c->offset);
      return FALSE;
    }
  if (end > c->model->size)
    {
      g_autofree char *name = tensor_name (kind, layer, suffix);

      g_set_error (c->error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "model file '%s': tensor '%s' at byte offset %" G_GUINT64_FORMAT
                   " needs %" G_GUINT64_FORMAT " bytes, but the file ends at byte %"
                   G_GUINT64_FORMAT " (truncated or corrupt checkpoint)",
                   c->model->path, name, c->offset, bytes, c->model->size);
      return FALSE;
    }
  *out_offset = c->offset;
  c->offset = end;
  return TRUE;
}

static void
kind_shape (const LlamaConfig *cfg,
            TensorKind         kind,
            guint             *rows,
            guint             *cols)
{
  *rows = 1;
  switch (kind)
    {
    case T_EMBEDDING:
    case T_CLASSIFIER:
      *rows = cfg->vocab_size;
      *cols = cfg->dim;
      break;
    case T_ATTENTION_NORM:
    case T_FFN_NORM:
    case T_FINAL_NORM:
      *cols = cfg->dim;
      break;
    case T_WQ:
    case T_WO:
      *rows = cfg->dim;
      *cols = cfg->dim;
      break;
    case T_WK:
    case T_WV:
      *rows = cfg->kv_dim;
      *cols = cfg->dim;
      break;
    case T_W1:
    case T_W3:
      *rows = cfg->hidden_dim;
      *cols = cfg->dim;
      break;
    case T_W2:
      *rows = cfg->dim;
      *cols = cfg->hidden_dim;
      break;
    case T_FREQ_CIS:
      *rows = cfg->seq_len;
      *cols = cfg->head_size / 2;
      break;
    case T_END:
    default:
      g_assert_not_reached ();
    }
}

static Span *
kind_span (LlamaModel *model,
           TensorKind  kind,
           guint       layer)
{
  static const gint layer_index[] = {
    [T_ATTENTION_NORM] = L_ATTENTION_NORM, [T_WQ] = L_WQ, [T_WK] = L_WK, [T_WV] = L_WV,
    [T_WO] = L_WO, [T_FFN_NORM] = L_FFN_NORM, [T_W1] = L_W1, [T_W2] = L_W2, [T_W3] = L_W3,
  };

  switch (kind)
    {
    case T_EMBEDDING:
      return &model->embedding;
    case T_FINAL_NORM:
      return &model->final_norm;
    case T_CLASSIFIER:
      return &model->classifier;
    default:
      return &model->layers[layer * N_LAYER_TENSORS + layer_index[kind]];
    }
}

static gboolean
kind_is_per_layer (TensorKind kind)
{
  return kind != T_EMBEDDING && kind != T_FINAL_NORM && kind != T_CLASSIFIER && kind != T_FREQ_CIS;
}

static gboolean
kind_is_norm (TensorKind kind)
{
  return kind == T_ATTENTION_NORM || kind == T_FFN_NORM || kind == T_FINAL_NORM;
}

/* Lays out one tensor at the cursor: float32, or int8 values then scales. */
static gboolean
place_tensor (Cursor     *c,
              TensorKind  kind,
              gint        layer,
              Span       *span)
{
  const LlamaConfig *cfg = &c->model->config;
  guint64 n, start = c->offset;

  kind_shape (cfg, kind, &span->rows, &span->cols);
  n = (guint64) span->rows * span->cols;
  if (c->model->format == LLAMA_FORMAT_V2 && !kind_is_norm (kind))
    {
      if (!cursor_take (c, kind, layer, "", n, 1, &span->offset) ||
          !cursor_take (c, kind, layer, " scales", n / cfg->group_size, 4, &span->scales_offset))
        return FALSE;
    }
  else if (!cursor_take (c, kind, layer, "", n, 4, &span->offset))
    return FALSE;
  span->bytes = c->offset - start;
  return TRUE;
}

static gboolean
place_tensors (LlamaModel        *model,
               const TensorKind  *order,
               guint64            start,
               GError           **error)
{
  const LlamaConfig *cfg = &model->config;
  Cursor c = { model, start, error };

  for (guint i = 0; order[i] != T_END; i++)
    {
      TensorKind kind = order[i];

      if (kind == T_FREQ_CIS)
        {
          Span skip;

          if (!place_tensor (&c, kind, -1, &skip) || !place_tensor (&c, kind, -1, &skip))
            return FALSE;
        }
      else if (kind == T_CLASSIFIER && cfg->shared_classifier)
        model->classifier = model->embedding;
      else if (kind_is_per_layer (kind))
        {
          for (guint l = 0; l < cfg->n_layers; l++)
            if (!place_tensor (&c, kind, (gint) l, kind_span (model, kind, l)))
              return FALSE;
        }
      else if (!place_tensor (&c, kind, -1, kind_span (model, kind, 0)))
        return FALSE;
    }

  if (c.offset != model->size)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "model file '%s': %" G_GUINT64_FORMAT " byte%s after the last tensor, which "
                   "ends at byte offset %" G_GUINT64_FORMAT " (not a %s checkpoint of this shape)",
                   model->path, model->size - c.offset, model->size - c.offset == 1 ? "" : "s",
                   c.offset,
                   llama_format_to_string (model->format));
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_dim (const char  *path,
           const char  *name,
           gint64       value,
           gint64       max,
           GError     **error)
{
  if (value < 1 || value > max)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "model file '%s': header field %s = %" G_GINT64_FORMAT
                   " is out of range (1 to %" G_GINT64_FORMAT ")", path, name, value, max);
      return FALSE;
    }
  return TRUE;
}

/* Fills model->config from the 7 int32 at @p and checks it. */
static gboolean
parse_config (LlamaModel    *model,
              const guint8  *p,
              gint64         group_size,
              GError       **error)
{
  LlamaConfig *cfg = &model->config;
  gint64 dim = read_i32 (p), hidden = read_i32 (p + 4), layers = read_i32 (p + 8);
  gint64 heads = read_i32 (p + 12), kv_heads = read_i32 (p + 16);
  gint64 vocab = read_i32 (p + 20), seq_len = read_i32 (p + 24);
  const char *path = model->path;

  if (model->format == LLAMA_FORMAT_LEGACY)
    {
      cfg->shared_classifier = vocab > 0;
      vocab = vocab < 0 ? -vocab : vocab;
    }
  if (!check_dim (path, "dim", dim, LLAMA_MAX_DIM, error) ||
      !check_dim (path, "hidden_dim", hidden, LLAMA_MAX_HIDDEN_DIM, error) ||
      !check_dim (path, "n_layers", layers, LLAMA_MAX_LAYERS, error) ||
      !check_dim (path, "n_heads", heads, dim, error) ||
      !check_dim (path, "n_kv_heads", kv_heads, heads, error) ||
      !check_dim (path, "vocab_size", vocab, LLAMA_MAX_VOCAB, error) ||
      !check_dim (path, "seq_len", seq_len, LLAMA_MAX_SEQ_LEN, error))
    return FALSE;
  if (dim % heads != 0 || heads % kv_heads != 0 || (dim / heads) % 2 != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "model file '%s': n_heads %" G_GINT64_FORMAT " must divide dim %" G_GINT64_FORMAT
                   " into heads of even size, and n_kv_heads %" G_GINT64_FORMAT " must divide n_heads",
                   path, heads, dim, kv_heads);
      return FALSE;
    }
  if (model->format == LLAMA_FORMAT_V2 &&
      (group_size < 1 || group_size > dim || dim % group_size != 0 || hidden % group_size != 0))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "model file '%s': group size %" G_GINT64_FORMAT " must divide dim %"
                   G_GINT64_FORMAT " and hidden_dim %" G_GINT64_FORMAT,
                   path, group_size, dim, hidden);
      return FALSE;
    }

  cfg->dim = dim;
  cfg->hidden_dim = hidden;
  cfg->n_layers = layers;
  cfg->n_heads = heads;
  cfg->n_kv_heads = kv_heads;
  cfg->vocab_size = vocab;
  cfg->seq_len = seq_len;
  cfg->head_size = dim / heads;
  cfg->kv_dim = cfg->head_size * kv_heads;
  cfg->group_size = model->format == LLAMA_FORMAT_V2 ? group_size : 0;
  model->layers = g_new0 (Span, (gsize) cfg->n_layers * N_LAYER_TENSORS);
  return TRUE;
}

static gboolean
parse_header (LlamaModel  *model,
              GError     **error)
{
  const guint8 *p = model->data;
  guint32 magic;
  gint32 version;

  if (model->size < 4 * 7)
    goto truncated;
  memcpy (&magic, p, sizeof magic);
  if (magic != LLAMA_MAGIC)
    {
      model->format = LLAMA_FORMAT_LEGACY;
      return parse_config (model, p, 0, error) &&
             place_tensors (model, legacy_order, 4 * 7, error);
    }

  if (model->size < LLAMA_HEADER_SIZE)
    goto truncated;
  version = read_i32 (p + 4);
  if (version != 1 && version != 2)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "model file '%s': unknown llama2.c checkpoint version %d "
                   "(versions 1 and 2 are supported)", model->path, version);
      return FALSE;
    }
  model->format = version == 1 ? LLAMA_FORMAT_V1 : LLAMA_FORMAT_V2;
  if (read_i32 (p + 28) < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "model file '%s': header field vocab_size = %d is negative "
                   "(only the legacy format uses that)", model->path, read_i32 (p + 28));
      return FALSE;
    }
  if (p[36] > 1)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "model file '%s': header byte shared_classifier = %u (0 or 1 expected)",
                   model->path, p[36]);
      return FALSE;
    }
  model->config.shared_classifier = p[36] == 1;
  return parse_config (model, p + 8, version == 2 ? read_i32 (p + 37) : 0, error) &&
         place_tensors (model, versioned_order, LLAMA_HEADER_SIZE, error);

truncated:
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
               "model file '%s': tensor 'header' at byte offset 0 needs %d bytes, but the "
               "file ends at byte %" G_GUINT64_FORMAT " (truncated or corrupt checkpoint)",
               model->path, model->size < 4 * 7 ? 4 * 7 : LLAMA_HEADER_SIZE, model->size);
  return FALSE;
}

/**
 * llama_model_open:
 * @path: a llama2.c checkpoint
 * @error: return location for what is wrong with it
 *
 * Maps @path and validates its header and layout; reads nothing but the
 * header.
 *
 * Returns: (transfer full) (nullable): the model
 */
#define DIGEST_HEAD    (64 * 1024)
#define DIGEST_BLOCK   4096

/* Reads go through their own descriptor, not the mapping: the pages the
 * digest reads stay out of this process's resident set (a shard maps in
 * only its layers).  FALSE when a read fails (the file changed under us). */
typedef struct
{
  GChecksum *sum;
  int        fd;
  gboolean   ok;
} Digest;

static void
digest_bytes (Digest  *d,
              guint64  offset,
              guint64  length)
{
  guchar buf[DIGEST_BLOCK];

  while (d->ok && length > 0)
    {
      gssize n = pread (d->fd, buf, MIN (length, sizeof buf), (off_t) offset);

      if (n <= 0)
        {
          if (n < 0 && errno == EINTR)
            continue;
          d->ok = FALSE;
          return;
        }
      g_checksum_update (d->sum, buf, n);
      offset += (guint64) n;
      length -= (guint64) n;
    }
}

/* The first, middle and last DIGEST_BLOCK bytes of a region (all of a
 * small one) and where it is. */
static void
digest_region (Digest  *d,
               guint64  offset,
               guint64  length)
{
  guint64 at[3] = { offset, offset + length / 2 - MIN (length / 2, DIGEST_BLOCK / 2),
                    offset + length - MIN (length, DIGEST_BLOCK) };
  char where[64];

  g_snprintf (where, sizeof where, "%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT ";", offset, length);
  g_checksum_update (d->sum, (const guchar *) where, -1);
  if (length <= 3 * DIGEST_BLOCK)
    {
      digest_bytes (d, offset, length);
      return;
    }
  for (guint i = 0; i < 3; i++)
    digest_bytes (d, at[i], DIGEST_BLOCK);
}

static void
digest_span (Digest     *d,
             LlamaModel *model,
             const Span *span)
{
  guint64 values = (guint64) span->rows * span->cols *
                   (model->format == LLAMA_FORMAT_V2 && span->scales_offset != 0 ? 1 : sizeof (float));

  if (span->bytes == 0)
    return;
  digest_region (d, span->offset, MIN (values, span->bytes));
  if (span->scales_offset != 0 && span->bytes > values)
    digest_region (d, span->scales_offset, span->bytes - values);
}

/* A digest of the checkpoint that reads a little of every tensor, not all
 * of the file (a node holding a few layers of a big model reads little
 * more): SHA-256 over the file's size, its first 64 KiB (the header) and,
 * for each tensor, where it is and its first, middle and last 4 KiB (all
 * of a tensor up to 12 KiB: the norms).  Checkpoints trained, fine-tuned
 * (any tensor), exported or quantized apart differ; two files that differ
 * only inside a big tensor's unread part are taken for the same (not a
 * defence against a forged file: peers hold the cluster key).  NULL when
 * the file cannot be read again. */
static char *
compute_digest (LlamaModel *model)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *size = g_strdup_printf ("%" G_GUINT64_FORMAT ";", model->size);
  Digest d = { sum, open (model->path, O_RDONLY | O_CLOEXEC), TRUE };

  if (d.fd < 0)
    return NULL;
  g_checksum_update (sum, (const guchar *) size, -1);
  digest_bytes (&d, 0, MIN (model->size, DIGEST_HEAD));
  digest_span (&d, model, &model->embedding);
  for (guint i = 0; i < model->config.n_layers * N_LAYER_TENSORS; i++)
    digest_span (&d, model, &model->layers[i]);
  digest_span (&d, model, &model->final_norm);
  digest_span (&d, model, &model->classifier);
  close (d.fd);
  if (!d.ok)
    return NULL;
  /* 128 bits of it are plenty to tell checkpoints apart */
  return g_strdup_printf ("llama2c-sha256:%.32s", g_checksum_get_string (sum));
}

LlamaModel *
llama_model_open (const char  *path,
                  GError     **error)
{
  g_autoptr(LlamaModel) model = g_new0 (LlamaModel, 1);
  GError *local_error = NULL;

  model->ref_count = 1;
  model->path = g_strdup (path);
  model->file = g_mapped_file_new (path, FALSE, &local_error);
  if (model->file == NULL)
    {
      g_propagate_prefixed_error (error, local_error, "model file '%s': ", path);
      return NULL;
    }
  model->data = (const guint8 *) g_mapped_file_get_contents (model->file);
  model->size = g_mapped_file_get_length (model->file);
  if (model->size > 0)
    (void) madvise ((void *) model->data, model->size, MADV_RANDOM);

  if (!parse_header (model, error))
    return NULL;
  model->digest = compute_digest (model);
  return g_steal_pointer (&model);
}

LlamaModel *
llama_model_ref (LlamaModel *model)
{
  g_atomic_int_inc (&model->ref_count);
  return model;
}

void
llama_model_unref (LlamaModel *model)
{
  if (model == NULL || !g_atomic_int_dec_and_test (&model->ref_count))
    return;
  g_clear_pointer (&model->file, g_mapped_file_unref);
  g_free (model->layers);
  g_free (model->path);
  g_free (model->digest);
  g_free (model);
}

const LlamaConfig *
llama_model_get_config (LlamaModel *model)
{
  return &model->config;
}

LlamaFormat
llama_model_get_format (LlamaModel *model)
{
  return model->format;
}

const char *
llama_model_get_path (LlamaModel *model)
{
  return model->path;
}

const char *
llama_model_get_digest (LlamaModel *model)
{
  return model->digest;
}

guint64
llama_model_get_file_size (LlamaModel *model)
{
  return model->size;
}

static LlamaMatrix
span_matrix (LlamaModel *model,
             const Span *span)
{
  LlamaMatrix m = { NULL, };

  m.rows = span->rows;
  m.cols = span->cols;
  if (model->format == LLAMA_FORMAT_V2)
    {
      m.q8 = (const gint8 *) (model->data + span->offset);
      m.scales = model->data + span->scales_offset;
      m.group_size = model->config.group_size;
    }
  else
    m.f32 = (const float *) (const void *) (model->data + span->offset);
  return m;
}

static const float *
span_floats (LlamaModel *model,
             const Span *span)
{
  return (const float *) (const void *) (model->data + span->offset);
}

/**
 * llama_model_get_shard:
 * @model: the model
 * @start_layer: first layer (inclusive)
 * @end_layer: last layer (inclusive)
 * @error: return location for a bad range
 *
 * Returns: (transfer full) (nullable): the weights of layers
 *   @start_layer..@end_layer
 */
LlamaShardWeights *
llama_model_get_shard (LlamaModel  *model,
                       guint        start_layer,
                       guint        end_layer,
                       GError     **error)
{
  const LlamaConfig *cfg = &model->config;
  LlamaShardWeights *w;

  if (start_layer > end_layer || end_layer >= cfg->n_layers)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "layers %u..%u are not a range of the %u layers of '%s'",
                   start_layer, end_layer, cfg->n_layers, model->path);
      return NULL;
    }

  w = g_new0 (LlamaShardWeights, 1);
  w->ref_count = 1;
  w->model = llama_model_ref (model);
  w->config = cfg;
  w->start_layer = start_layer;
  w->end_layer = end_layer;
  w->is_first = start_layer == 0;
  w->is_last = end_layer == cfg->n_layers - 1;
  w->layers = g_new0 (LlamaLayerWeights, end_layer - start_layer + 1);
  for (guint l = start_layer; l <= end_layer; l++)
    {
      const Span *s = &model->layers[l * N_LAYER_TENSORS];
      LlamaLayerWeights *lw = &w->layers[l - start_layer];

      lw->attention_norm = span_floats (model, &s[L_ATTENTION_NORM]);
      lw->ffn_norm = span_floats (model, &s[L_FFN_NORM]);
      lw->wq = span_matrix (model, &s[L_WQ]);
      lw->wk = span_matrix (model, &s[L_WK]);
      lw->wv = span_matrix (model, &s[L_WV]);
      lw->wo = span_matrix (model, &s[L_WO]);
      lw->w1 = span_matrix (model, &s[L_W1]);
      lw->w2 = span_matrix (model, &s[L_W2]);
      lw->w3 = span_matrix (model, &s[L_W3]);
      for (guint t = 0; t < N_LAYER_TENSORS; t++)
        w->weight_bytes += s[t].bytes;
    }
  if (w->is_first)
    {
      w->embedding = span_matrix (model, &model->embedding);
      w->weight_bytes += model->embedding.bytes;
    }
  if (w->is_last)
    {
      w->final_norm = span_floats (model, &model->final_norm);
      w->classifier = span_matrix (model, &model->classifier);
      w->weight_bytes += model->final_norm.bytes;
      if (!(cfg->shared_classifier && w->is_first))
        w->weight_bytes += model->classifier.bytes;
    }
  return w;
}

LlamaShardWeights *
llama_shard_weights_ref (LlamaShardWeights *weights)
{
  g_atomic_int_inc (&weights->ref_count);
  return weights;
}

void
llama_shard_weights_unref (LlamaShardWeights *weights)
{
  if (weights == NULL || !g_atomic_int_dec_and_test (&weights->ref_count))
    return;
  g_free (weights->layers);
  llama_model_unref (weights->model);
  g_free (weights);
}

static void
prefetch_span (LlamaModel *model,
               const Span *span)
{
  gsize page = (gsize) sysconf (_SC_PAGESIZE);
  guintptr start = (guintptr) (model->data + span->offset);
  guintptr aligned = start & ~(guintptr) (page - 1);

  if (span->bytes > 0)
    (void) madvise ((void *) aligned, span->bytes + (start - aligned), MADV_WILLNEED);
}

void
llama_shard_weights_prefetch (LlamaShardWeights *w)
{
  LlamaModel *model = w->model;

  for (guint l = w->start_layer; l <= w->end_layer; l++)
    for (guint t = 0; t < N_LAYER_TENSORS; t++)
      prefetch_span (model, &model->layers[l * N_LAYER_TENSORS + t]);
  if (w->is_first)
    prefetch_span (model, &model->embedding);
  if (w->is_last)
    {
      prefetch_span (model, &model->final_norm);
      prefetch_span (model, &model->classifier);
    }
}
