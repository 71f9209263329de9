/* llama-test-util.h: tiny llama2.c checkpoints written by the tests, a
 * naive double-precision reference of the forward pass, and helpers that
 * drive the `llama` engine plugin synchronously.
 *
 * Thread rules: single-threaded test code (the engine's own worker aside).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>

G_BEGIN_DECLS

typedef enum
{
  TINY_LEGACY,
  TINY_V1,
  TINY_V2,
} TinyFormat;

/* A model's float weights, laid out as llama2.c's structs are (all layers
 * of one kind together). */
typedef struct
{
  int       dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
  gboolean  shared;       /* classifier = embedding */
  int       group_size;   /* for TINY_V2 */
  float    *emb;          /* vocab × dim */
  float    *att_norm;     /* L × dim */
  float    *wq;           /* L × dim × dim */
  float    *wk;           /* L × kv_dim × dim */
  float    *wv;
  float    *wo;           /* L × dim × dim */
  float    *ffn_norm;
  float    *w1;           /* L × hidden × dim */
  float    *w2;           /* L × dim × hidden */
  float    *w3;
  float    *final_norm;
  float    *cls;          /* vocab × dim, NULL when shared */
} TinyModel;

TinyModel *tiny_model_new          (int dim, int hidden, int n_layers, int n_heads,
                                    int n_kv_heads, int vocab, int seq_len,
                                    gboolean shared, guint64 seed);
void       tiny_model_free         (TinyModel   *m);
/* The checkpoint bytes in @format (v2: int8 groups of m->group_size). */
GBytes    *tiny_model_serialize    (TinyModel   *m,
                                    TinyFormat   format);
/* Writes it to @dir/@name; returns the path. */
char      *tiny_model_write        (TinyModel   *m,
                                    TinyFormat   format,
                                    const char  *dir,
                                    const char  *name);
/* A copy whose matrices went through the v2 int8 round trip, as the
 * engine sees them. */
TinyModel *tiny_model_dequantized  (TinyModel   *m);
/* Reads a legacy float32 checkpoint in the plainest way (no checks). */
TinyModel *tiny_model_read_legacy  (const char  *path);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TinyModel, tiny_model_free)

/* The reference: one position at a time, in double.  With
 * @quantize_activations the inputs of the matmuls are rounded to int8
 * groups first, as the v2 format's kernels do. */
typedef struct _TinyRef TinyRef;

TinyRef   *tiny_ref_new            (TinyModel   *m,
                                    gboolean     quantize_activations);
void       tiny_ref_free           (TinyRef     *ref);
/* Runs @token at the next position; fills @logits (vocab). */
void       tiny_ref_step           (TinyRef     *ref,
                                    int          token,
                                    double      *logits);

/* A tokenizer.bin with @n pieces and scores. */
char      *tiny_tokenizer_write    (const char * const *pieces,
                                    const float *scores,
                                    guint        n,
                                    const char  *dir,
                                    const char  *name);
/* A tokenizer.bin of @n tokens (n ≥ 259) for a model whose own tokenizer
 * is not at hand: <unk>, <s>, </s>, then the byte tokens <0xXX> (ids
 * 3–258) of which those of printable ASCII but '[', ']' and '<', tab and
 * newline keep that form (a prompt of such text encodes to them); every
 * other id is "[id]".  So a decoded text names its ids. */
char      *tiny_tokenizer_write_ids (guint        n,
                                     const char  *dir,
                                     const char  *name);
/* The ids of a text that tokenizer decoded (<unk> is 0), or NULL. */
GArray    *tiny_tokenizer_text_ids  (const char  *text);

/* --- the engine ---------------------------------------------------------- */

void                llama_test_load_plugins (void);
/* After llama_test_load_plugins (): FALSE, with a TAP plan that skips the
 * program, when $EXO_LLAMA_KERNELS names a kernel path that an engine does
 * not use here (the CPU lacks it: the engine's "kernels" metric). */
gboolean            llama_test_kernels_usable (void);
ExoInferenceEngine *llama_test_engine_new   (const char  *model,
                                             const char  *tokenizer,
                                             const char  *first_property,
                                             ...);
ExoTensor          *llama_test_infer        (ExoInferenceEngine *engine,
                                             const char         *request_id,
                                             const ExoShard     *shard,
                                             ExoTensor          *input,
                                             GError            **error);
ExoTensor          *llama_test_encode       (ExoInferenceEngine *engine,
                                             const char         *text,
                                             GError            **error);
ExoTensor          *llama_test_tokens       (const gint32       *ids,
                                             gsize               n);
gint32              llama_test_token        (ExoTensor          *t);

G_END_DECLS
