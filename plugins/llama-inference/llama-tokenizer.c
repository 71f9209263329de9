/* llama-tokenizer.c: llama2.c's tokenizer.bin and its BPE.
 *
 * The file: int32 max_token_length, then for each of the model's
 * vocab_size tokens: float32 score, int32 length, the bytes.  Everything
 * is checked while loading (lengths bounded, no NUL inside a piece, finite
 * scores, exactly vocab_size tokens and nothing after them).
 *
 * Encoding is sentencepiece's as llama2.c does it: BOS, the dummy prefix
 * " " (when the text is not empty), one token per UTF-8 character or, for a
 * character not in the vocabulary, one <0xXX> byte token per byte (ids
 * 3..258; <unk> when the vocabulary has none), then repeatedly merge the
 * adjacent pair whose concatenation is the vocabulary piece with the
 * highest score (the leftmost on a tie).  The merges come from a heap of
 * candidate pairs over a linked list, so a long prompt costs O(n log n),
 * not llama2.c's O(n²); the result is the same.
 *
 * Thread rules: immutable once loaded (llama-tokenizer.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "llama-tokenizer.h"

#include <gio/gio.h>
#include <math.h>
#include <string.h>

/* A tokenizer file larger than this is refused before it is read. */
#define MAX_FILE_SIZE ((gsize) 256 << 20)
/* A prompt longer than this (bytes) is refused before it is encoded. */
#define MAX_TEXT_SIZE ((gsize) 16 << 20)

struct _LlamaTokenizer
{
  char       *path;
  guint       vocab_size;
  guint       max_token_length;  /* as declared */
  guint       longest_piece;     /* as found */
  char      **pieces;            /* vocab_size NUL-terminated strings */
  float      *scores;
  GHashTable *ids;               /* piece → id + 1 (first occurrence) */
  gint        byte_tokens[256];  /* id of <0xXX>, or -1 */
};

void
llama_tokenizer_free (LlamaTokenizer *tok)
{
  if (tok == NULL)
    return;
  g_clear_pointer (&tok->ids, g_hash_table_unref);
  if (tok->pieces != NULL)
    for (guint i = 0; i < tok->vocab_size; i++)
      g_free (tok->pieces[i]);
  g_free (tok->pieces);
  g_free (tok->scores);
  g_free (tok->path);
  g_free (tok);
}

guint
llama_tokenizer_get_vocab_size (LlamaTokenizer *tok)
{
  return tok->vocab_size;
}

guint
llama_tokenizer_get_max_token_length (LlamaTokenizer *tok)
{
  return tok->max_token_length;
}

/* If @piece is exactly "<0xXX>", its byte. */
static gint
parse_byte_piece (const char *piece)
{
  gint hi, lo;

  if (strlen (piece) != 6 || strncmp (piece, "<0x", 3) != 0 || piece[5] != '>')
    return -1;
  hi = g_ascii_xdigit_value (piece[3]);
  lo = g_ascii_xdigit_value (piece[4]);
  if (hi < 0 || lo < 0)
    return -1;
  return hi * 16 + lo;
}

static gboolean
fail (GError     **error,
      const char  *path,
      const char  *format,
      ...) G_GNUC_PRINTF (3, 4);

static gboolean
fail (GError     **error,
      const char  *path,
      const char  *format,
      ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "tokenizer file '%s': %s", path, message);
  return FALSE;
}

static gboolean
parse (LlamaTokenizer  *tok,
       const guint8    *data,
       gsize            size,
       GError         **error)
{
  const char *path = tok->path;
  gsize off = 4;
  gint32 max_len;

  if (size < 4)
    return fail (error, path, "the header at byte offset 0 needs 4 bytes, the file has %"
                 G_GSIZE_FORMAT, size);
  memcpy (&max_len, data, 4);
  if (max_len < 1 || max_len > LLAMA_MAX_TOKEN_LENGTH)
    return fail (error, path, "max_token_length %d is out of range (1 to %d)",
                 max_len, LLAMA_MAX_TOKEN_LENGTH);
  tok->max_token_length = max_len;

  for (guint i = 0; i < tok->vocab_size; i++)
    {
      float score;
      gint32 len;

      if (size - off < 8)
        return fail (error, path, "token %u at byte offset %" G_GSIZE_FORMAT " is cut short: "
                     "the file has %u tokens, the model's vocabulary has %u", i, off, i,
                     tok->vocab_size);
      memcpy (&score, data + off, 4);
      memcpy (&len, data + off + 4, 4);
      if (!isfinite (score))
        return fail (error, path, "token %u at byte offset %" G_GSIZE_FORMAT
                     " has a score that is not a finite number", i, off);
      if (len < 0 || len > max_len)
        return fail (error, path, "token %u at byte offset %" G_GSIZE_FORMAT " has length %d "
                     "(0 to max_token_length %d)", i, off, len, max_len);
      off += 8;
      if (size - off < (gsize) len)
        return fail (error, path, "token %u at byte offset %" G_GSIZE_FORMAT " needs %d bytes, "
                     "the file ends at byte %" G_GSIZE_FORMAT, i, off - 8, len + 8, size);
      if (memchr (data + off, '\0', len) != NULL)
        return fail (error, path, "token %u at byte offset %" G_GSIZE_FORMAT
                     " has a NUL byte in it", i, off - 8);
      tok->scores[i] = score;
      tok->pieces[i] = g_strndup ((const char *) data + off, len);
      tok->longest_piece = MAX (tok->longest_piece, (guint) len);
      off += len;
    }
  if (off != size)
    return fail (error, path, "%" G_GSIZE_FORMAT " bytes after token %u (byte offset %"
                 G_GSIZE_FORMAT "): the tokenizer has more tokens than the model's "
                 "vocabulary of %u", size - off, tok->vocab_size - 1, off, tok->vocab_size);
  return TRUE;
}

/**
 * llama_tokenizer_load:
 * @path: a llama2.c tokenizer.bin
 * @vocab_size: the vocabulary size of the model: the file must have
 *   exactly that many tokens
 * @error: return location for what is wrong
 *
 * Returns: (transfer full) (nullable): the tokenizer
 */
LlamaTokenizer *
llama_tokenizer_load (const char  *path,
                      guint        vocab_size,
                      GError     **error)
{
  g_autoptr(LlamaTokenizer) tok = g_new0 (LlamaTokenizer, 1);
  g_autoptr(GMappedFile) file = NULL;
  GError *local_error = NULL;
  gsize size;

  tok->path = g_strdup (path);
  file = g_mapped_file_new (path, FALSE, &local_error);
  if (file == NULL)
    {
      g_propagate_prefixed_error (error, local_error, "tokenizer file '%s': ", path);
      return NULL;
    }
  size = g_mapped_file_get_length (file);
  if (size > MAX_FILE_SIZE)
    {
      fail (error, path, "%" G_GSIZE_FORMAT " bytes is larger than the limit of %" G_GSIZE_FORMAT,
            size, MAX_FILE_SIZE);
      return NULL;
    }

  tok->vocab_size = vocab_size;
  tok->pieces = g_new0 (char *, vocab_size);
  tok->scores = g_new0 (float, vocab_size);
  if (!parse (tok, (const guint8 *) g_mapped_file_get_contents (file), size, error))
    return NULL;

  tok->ids = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < vocab_size; i++)
    if (!g_hash_table_contains (tok->ids, tok->pieces[i]))
      g_hash_table_insert (tok->ids, tok->pieces[i], GUINT_TO_POINTER (i + 1));
  for (guint b = 0; b < 256; b++)
    tok->byte_tokens[b] = 3 + b < vocab_size && parse_byte_piece (tok->pieces[3 + b]) == (gint) b
                          ? (gint) (3 + b) : -1;
  return g_steal_pointer (&tok);
}

static gint
lookup (LlamaTokenizer *tok,
        const char     *piece)
{
  return GPOINTER_TO_INT (g_hash_table_lookup (tok->ids, piece)) - 1;
}

/* --- the merges -------------------------------------------------------------- */

typedef struct
{
  float  score;
  guint  left;      /* symbol indexes */
  guint  right;
  gint32 left_id;   /* the ids when the candidate was made */
  gint32 right_id;
  gint32 merged_id;
} Candidate;

typedef struct
{
  GArray *heap;     /* Candidate, a max-heap on (score, -left) */
} Queue;

static gboolean
candidate_before (const Candidate *a,
                  const Candidate *b)
{
  return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void
queue_push (Queue     *q,
            Candidate *c)
{
  Candidate *h;
  guint i;

  g_array_append_val (q->heap, *c);
  h = (Candidate *) (void *) q->heap->data;
  for (i = q->heap->len - 1; i > 0 && candidate_before (&h[i], &h[(i - 1) / 2]); i = (i - 1) / 2)
    {
      Candidate t = h[i];

      h[i] = h[(i - 1) / 2];
      h[(i - 1) / 2] = t;
    }
}

static Candidate
queue_pop (Queue *q)
{
  Candidate *h = (Candidate *) (void *) q->heap->data;
  Candidate top = h[0];
  guint n = q->heap->len - 1, i = 0;

  h[0] = h[n];
  g_array_set_size (q->heap, n);
  for (;;)
    {
      guint l = 2 * i + 1, r = l + 1, best = i;
      Candidate t;

      if (l < n && candidate_before (&h[l], &h[best]))
        best = l;
      if (r < n && candidate_before (&h[r], &h[best]))
        best = r;
      if (best == i)
        break;
      t = h[i];
      h[i] = h[best];
      h[best] = t;
      i = best;
    }
  return top;
}

typedef struct
{
  LlamaTokenizer *tok;
  gint32         *ids;
  gint           *next;   /* -1: none */
  gint           *prev;
  char           *buffer; /* 2 × longest piece + 1 */
  Queue           queue;
} Merger;

static void
consider_pair (Merger *m,
               gint    left,
               gint    right)
{
  Candidate c;
  const char *a, *b;
  gsize la;

  if (left < 0 || right < 0)
    return;
  a = m->tok->pieces[m->ids[left]];
  b = m->tok->pieces[m->ids[right]];
  la = strlen (a);
  memcpy (m->buffer, a, la);
  strcpy (m->buffer + la, b);
  c.merged_id = lookup (m->tok, m->buffer);
  if (c.merged_id < 0)
    return;
  c.score = m->tok->scores[c.merged_id];
  c.left = left;
  c.right = right;
  c.left_id = m->ids[left];
  c.right_id = m->ids[right];
  queue_push (&m->queue, &c);
}

/* Merges @ids[first..len) in place; returns the new length. */
static guint
merge (LlamaTokenizer *tok,
       gint32         *ids,
       guint           first,
       guint           len)
{
  guint n = len - first, out = first;
  Merger m = { tok, ids + first, NULL, NULL, NULL, { NULL } };
  gint head = 0;

  if (n < 2)
    return len;
  m.next = g_new (gint, n);
  m.prev = g_new (gint, n);
  m.buffer = g_malloc (2 * (gsize) tok->longest_piece + 1);
  m.queue.heap = g_array_sized_new (FALSE, FALSE, sizeof (Candidate), 2 * n);
  for (guint i = 0; i < n; i++)
    {
      m.next[i] = i + 1 < n ? (gint) i + 1 : -1;
      m.prev[i] = (gint) i - 1;
    }
  for (guint i = 0; i + 1 < n; i++)
    consider_pair (&m, i, i + 1);

  while (m.queue.heap->len > 0)
    {
      Candidate c = queue_pop (&m.queue);
      gint l = c.left, r = c.right;

      /* stale: one side merged since (a merged id is a longer piece, so an
       * unchanged id means an untouched symbol) or no longer neighbours */
      if (m.next[l] != r || m.ids[l] != c.left_id || m.ids[r] != c.right_id)
        continue;
      m.ids[l] = c.merged_id;
      m.ids[r] = -1;
      m.next[l] = m.next[r];
      if (m.next[r] >= 0)
        m.prev[m.next[r]] = l;
      m.next[r] = -2;   /* dead: never anyone's neighbour again */
      consider_pair (&m, m.prev[l], l);
      consider_pair (&m, l, m.next[l]);
    }

  for (gint i = head; i >= 0; i = m.next[i])
    ids[out++] = m.ids[i];
  g_free (m.next);
  g_free (m.prev);
  g_free (m.buffer);
  g_array_unref (m.queue.heap);
  return out;
}

static void
append_bytes (LlamaTokenizer *tok,
              GArray         *ids,
              const char     *bytes,
              gsize           n)
{
  char piece[5];
  gint32 id;

  memcpy (piece, bytes, n);
  piece[n] = '\0';
  id = lookup (tok, piece);
  if (id >= 0)
    {
      g_array_append_val (ids, id);
      return;
    }
  for (gsize i = 0; i < n; i++)
    {
      gint fallback = tok->byte_tokens[(guint8) bytes[i]];

      id = fallback >= 0 ? fallback : LLAMA_TOKEN_UNK;
      g_array_append_val (ids, id);
    }
}

GArray *
llama_tokenizer_encode (LlamaTokenizer  *tok,
                        const char      *text,
                        gsize            max_tokens,
                        GError         **error)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  gsize len = strlen (text);
  gint32 bos = LLAMA_TOKEN_BOS;

  /* each token is at most longest_piece bytes: refuse what cannot fit */
  if (len > MAX_TEXT_SIZE ||
      (tok->longest_piece > 0 && len / tok->longest_piece + 2 > max_tokens))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "the prompt (%" G_GSIZE_FORMAT " bytes) is longer than max-seq-len: "
                   "it would be more than %" G_GSIZE_FORMAT " tokens", len, max_tokens);
      return NULL;
    }

  g_array_append_val (ids, bos);
  if (len > 0)
    append_bytes (tok, ids, " ", 1);
  for (gsize i = 0; i < len;)
    {
      gsize n = 1;

      /* a UTF-8 lead byte and up to three continuation bytes */
      while (n < 4 && i + n < len && ((guint8) text[i + n] & 0xC0) == 0x80)
        n++;
      append_bytes (tok, ids, text + i, n);
      i += n;
    }
  g_array_set_size (ids, merge (tok, (gint32 *) (void *) ids->data, 1, ids->len));

  if (ids->len > max_tokens)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "the prompt is %u tokens, longer than max-seq-len %" G_GSIZE_FORMAT,
                   ids->len, max_tokens);
      return NULL;
    }
  return g_steal_pointer (&ids);
}

char *
llama_tokenizer_decode (LlamaTokenizer  *tok,
                        gint32           prev_token,
                        const gint32    *tokens,
                        gsize            n_tokens,
                        GError         **error)
{
  g_autoptr(GString) text = g_string_new (NULL);

  for (gsize i = 0; i < n_tokens; prev_token = tokens[i], i++)
    {
      gint32 id = tokens[i];
      const char *piece;
      gint byte;

      if (id < 0 || (guint) id >= tok->vocab_size)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "token id %d is not in the vocabulary of %u tokens", id, tok->vocab_size);
          return NULL;
        }
      if (id == LLAMA_TOKEN_BOS || id == LLAMA_TOKEN_EOS)
        continue;
      piece = tok->pieces[id];
      if (prev_token == LLAMA_TOKEN_BOS && piece[0] == ' ')
        piece++;
      byte = parse_byte_piece (piece);
      if (byte >= 0)
        g_string_append_c (text, (char) byte);
      else
        g_string_append (text, piece);
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}
