/* llama-tokenizer.h: llama2.c's tokenizer.bin, a BPE vocabulary with
 * merge scores (sentencepiece's, exported).
 *
 * Thread rules: immutable once loaded; any thread may encode and decode.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define LLAMA_TOKEN_UNK 0
#define LLAMA_TOKEN_BOS 1
#define LLAMA_TOKEN_EOS 2

/* The longest piece a tokenizer.bin may declare. */
#define LLAMA_MAX_TOKEN_LENGTH 1024

typedef struct _LlamaTokenizer LlamaTokenizer;

LlamaTokenizer *llama_tokenizer_load        (const char      *path,
                                             guint            vocab_size,
                                             GError         **error);
void            llama_tokenizer_free        (LlamaTokenizer  *tokenizer);
guint           llama_tokenizer_get_vocab_size (LlamaTokenizer *tokenizer);
guint           llama_tokenizer_get_max_token_length (LlamaTokenizer *tokenizer);

/* BOS, then the ids of " " + @text (nothing more for an empty text).
 * Fails when the ids would be more than @max_tokens. */
GArray         *llama_tokenizer_encode      (LlamaTokenizer  *tokenizer,
                                             const char      *text,
                                             gsize            max_tokens,
                                             GError         **error);
/* The text of @tokens (control tokens give nothing; <0xXX> gives its byte;
 * a piece after BOS loses its leading space).  @prev_token is the token
 * before @tokens[0] (-1 if none). */
char           *llama_tokenizer_decode      (LlamaTokenizer  *tokenizer,
                                             gint32           prev_token,
                                             const gint32    *tokens,
                                             gsize            n_tokens,
                                             GError         **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LlamaTokenizer, llama_tokenizer_free)

G_END_DECLS
