/* http-stream-frame.c: the frames of the peer stream, built and read
 * (see http-stream-frame.h; the format is docs/cluster-protocol.md's
 * "The peer stream").
 *
 * A frame: version (u8), type (u8), sequence number (u64), call id
 * (string), the type's fields, then the MAC: HMAC-SHA256 with the cluster
 * key, 64 hex digits, over the upgrade's nonce (string), the writer's
 * direction (one byte, 'C' or 'S') and the frame before the MAC.
 * Integers are big-endian; a string is its length (u16) and its bytes,
 * without NUL.  Reading checks the MAC before anything else is looked at,
 * then the version, the sequence number, the type and each field, with
 * the limits of the HTTP routes (http-request.c checks the tensor's
 * fields as it does the headers of POST /peer/v1/tensor).
 *
 * Pure functions: no state, any thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-stream-frame.h"

#include <string.h>

static const char * const refused_names[EXO_STREAM_N_REFUSED] = {
  [EXO_STREAM_REFUSED_BAD_MAC] = "bad-mac",
  [EXO_STREAM_REFUSED_SEQUENCE] = "sequence",
  [EXO_STREAM_REFUSED_VERSION] = "version",
  [EXO_STREAM_REFUSED_TYPE] = "type",
  [EXO_STREAM_REFUSED_MALFORMED] = "malformed",
  [EXO_STREAM_REFUSED_TOO_BIG] = "too-big",
  [EXO_STREAM_REFUSED_PROTOCOL] = "protocol",
};

const char *
exo_stream_refused_to_string (ExoStreamRefused reason)
{
  return reason < EXO_STREAM_N_REFUSED ? refused_names[reason] : "unknown";
}

void
exo_stream_frame_clear (ExoStreamFrame *frame)
{
  g_free (frame->call_id);
  g_free (frame->request_id);
  g_free (frame->shard);
  g_free (frame->dtype);
  g_free (frame->shape);
  g_free (frame->params);
  g_free (frame->tokens);
  g_free (frame->message);
  memset (frame, 0, sizeof *frame);
}

/* --- writing ------------------------------------------------------------- */

static void
put_u8 (GByteArray *out,
        guint8      v)
{
  g_byte_array_append (out, &v, 1);
}

static void
put_u16 (GByteArray *out,
         guint16     v)
{
  guint8 b[2] = { v >> 8, v & 0xff };

  g_byte_array_append (out, b, 2);
}

static void
put_u32 (GByteArray *out,
         guint32     v)
{
  guint32 be = GUINT32_TO_BE (v);

  g_byte_array_append (out, (const guint8 *) &be, 4);
}

static void
put_u64 (GByteArray *out,
         guint64     v)
{
  guint64 be = GUINT64_TO_BE (v);

  g_byte_array_append (out, (const guint8 *) &be, 8);
}

/* Strings longer than a u16 never reach here: every one is bounded below
 * that where it is made (ids, headers, messages). */
static void
put_str (GByteArray *out,
         const char *s)
{
  gsize len = s != NULL ? strlen (s) : 0;

  g_assert (len <= G_MAXUINT16);
  put_u16 (out, (guint16) len);
  g_byte_array_append (out, (const guint8 *) s, len);
}

/* The MAC's input up to the frame: the nonce and the direction. */
static GByteArray *
frame_begin (const char *nonce,
             char        from,
             guint8      version,
             guint8      type,
             guint64     seq,
             const char *call_id)
{
  GByteArray *out = g_byte_array_sized_new (256);

  put_str (out, nonce);
  put_u8 (out, (guint8) from);
  put_u8 (out, version);
  put_u8 (out, type);
  put_u64 (out, seq);
  put_str (out, call_id);
  return out;
}

/* Appends the MAC and returns the frame (without what came before it). */
static GBytes *
frame_end (ExoClusterKey *key,
           GByteArray    *out,
           const char    *nonce)
{
  gsize prefix = 2 + strlen (nonce) + 1;
  g_autofree char *mac = exo_cluster_key_sign (key, out->data, out->len);
  g_autoptr(GBytes) all = NULL;

  g_byte_array_append (out, (const guint8 *) mac, EXO_STREAM_MAC_LEN);
  all = g_byte_array_free_to_bytes (out);
  return g_bytes_new_from_bytes (all, prefix, g_bytes_get_size (all) - prefix);
}

GBytes *
exo_stream_build_raw (ExoClusterKey *key,
                      const char    *nonce,
                      char           from,
                      guint8         version,
                      guint8         type,
                      guint64        seq,
                      const char    *call_id,
                      const guint8  *body,
                      gsize          body_len)
{
  GByteArray *out = frame_begin (nonce, from, version, type, seq, call_id);

  g_byte_array_append (out, body, body_len);
  return frame_end (key, out, nonce);
}

GBytes *
exo_stream_build_tensor (ExoClusterKey *key,
                         const char    *nonce,
                         char           from,
                         guint64        seq,
                         const char    *call_id,
                         const char    *request_id,
                         const char    *shard,
                         const char    *dtype,
                         const char    *shape,
                         const char    *params,
                         GBytes        *data)
{
  GByteArray *out = frame_begin (nonce, from, EXO_STREAM_VERSION, EXO_STREAM_TENSOR, seq, call_id);
  gsize len = 0;
  const guint8 *bytes = g_bytes_get_data (data, &len);

  put_str (out, request_id);
  put_str (out, shard);
  put_str (out, dtype);
  put_str (out, shape);
  put_u8 (out, params != NULL);
  if (params != NULL)
    put_str (out, params);
  g_assert (len <= G_MAXUINT32);
  put_u32 (out, (guint32) len);
  g_byte_array_append (out, bytes, len);
  return frame_end (key, out, nonce);
}

GBytes *
exo_stream_build_result (ExoClusterKey *key,
                         const char    *nonce,
                         char           from,
                         guint64        seq,
                         const char    *call_id,
                         const char    *request_id,
                         const gint32  *tokens,
                         gsize          n_tokens,
                         gboolean       is_finished)
{
  GByteArray *out = frame_begin (nonce, from, EXO_STREAM_VERSION, EXO_STREAM_RESULT, seq, call_id);

  put_str (out, request_id);
  put_u8 (out, is_finished ? 1 : 0);
  g_assert (n_tokens <= G_MAXUINT32);
  put_u32 (out, (guint32) n_tokens);
  for (gsize i = 0; i < n_tokens; i++)
    put_u32 (out, (guint32) tokens[i]);
  return frame_end (key, out, nonce);
}

GBytes *
exo_stream_build_cancel (ExoClusterKey *key,
                         const char    *nonce,
                         char           from,
                         guint64        seq,
                         const char    *call_id,
                         const char    *request_id)
{
  GByteArray *out = frame_begin (nonce, from, EXO_STREAM_VERSION, EXO_STREAM_CANCEL, seq, call_id);

  put_str (out, request_id);
  return frame_end (key, out, nonce);
}

GBytes *
exo_stream_build_answer (ExoClusterKey *key,
                         const char    *nonce,
                         char           from,
                         guint64        seq,
                         const char    *call_id,
                         guint          status,
                         const char    *message)
{
  GByteArray *out = frame_begin (nonce, from, EXO_STREAM_VERSION, EXO_STREAM_ANSWER, seq, call_id);
  g_autofree char *shown = exo_http_shown_text (message, EXO_STREAM_MAX_MESSAGE);

  /* made valid, it may have grown (U+FFFD for a byte): cut at a character */
  if (strlen (shown) > EXO_STREAM_MAX_MESSAGE)
    *g_utf8_find_prev_char (shown, shown + EXO_STREAM_MAX_MESSAGE + 1) = '\0';
  put_u16 (out, (guint16) MIN (status, 999));
  put_str (out, shown);
  return frame_end (key, out, nonce);
}

/* --- reading ------------------------------------------------------------- */

typedef struct {
  const guint8 *p;
  gsize         left;
  const char   *what;     /* the field being read, for the error */
} Cursor;

#define MALFORMED(error, ...) \
  g_set_error ((error), G_IO_ERROR, G_IO_ERROR_INVALID_DATA, __VA_ARGS__)

static gboolean
get_bytes (Cursor        *c,
           gsize          n,
           const guint8 **out,
           GError       **error)
{
  if (c->left < n)
    {
      MALFORMED (error, "the frame ends inside %s", c->what);
      return FALSE;
    }
  *out = c->p;
  c->p += n;
  c->left -= n;
  return TRUE;
}

static gboolean
get_u8 (Cursor  *c,
        guint8  *out,
        GError **error)
{
  const guint8 *b;

  if (!get_bytes (c, 1, &b, error))
    return FALSE;
  *out = b[0];
  return TRUE;
}

static gboolean
get_u16 (Cursor   *c,
         guint16  *out,
         GError  **error)
{
  const guint8 *b;

  if (!get_bytes (c, 2, &b, error))
    return FALSE;
  *out = (guint16) ((b[0] << 8) | b[1]);
  return TRUE;
}

static gboolean
get_u32 (Cursor   *c,
         guint32  *out,
         GError  **error)
{
  const guint8 *b;
  guint32 be;

  if (!get_bytes (c, 4, &b, error))
    return FALSE;
  memcpy (&be, b, 4);
  *out = GUINT32_FROM_BE (be);
  return TRUE;
}

static gboolean
get_u64 (Cursor   *c,
         guint64  *out,
         GError  **error)
{
  const guint8 *b;
  guint64 be;

  if (!get_bytes (c, 8, &b, error))
    return FALSE;
  memcpy (&be, b, 8);
  *out = GUINT64_FROM_BE (be);
  return TRUE;
}

/* A string of at most @max bytes, without NUL: a copy. */
static gboolean
get_str (Cursor      *c,
         const char  *what,
         gsize        max,
         char       **out,
         GError     **error)
{
  const guint8 *b;
  guint16 len;

  c->what = what;
  if (!get_u16 (c, &len, error) || !get_bytes (c, len, &b, error))
    return FALSE;
  if (len > max || memchr (b, '\0', len) != NULL)
    {
      MALFORMED (error, "%s is longer than %" G_GSIZE_FORMAT " bytes or holds a NUL", what, max);
      return FALSE;
    }
  *out = g_strndup ((const char *) b, len);
  return TRUE;
}

static gboolean
get_id (Cursor      *c,
        const char  *what,
        char       **out,
        GError     **error)
{
  if (!get_str (c, what, EXO_HTTP_MAX_ID_LEN, out, error))
    return FALSE;
  if (!exo_http_id_is_valid (*out))
    {
      MALFORMED (error, "%s must be 1 to %u printable ASCII characters", what, EXO_HTTP_MAX_ID_LEN);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_fields (Cursor          *c,
             gsize            max_data,
             ExoStreamFrame  *frame,
             GError         **error)
{
  switch (frame->type)
    {
    case EXO_STREAM_TENSOR:
      {
        guint8 has_params;
        guint32 len;

        if (!get_id (c, "the request id", &frame->request_id, error) ||
            !get_str (c, "the shard", EXO_HTTP_MAX_HEADER_LEN, &frame->shard, error) ||
            !get_str (c, "the dtype", 32, &frame->dtype, error) ||
            !get_str (c, "the shape", EXO_HTTP_MAX_HEADER_LEN, &frame->shape, error))
          return FALSE;
        c->what = "the params flag";
        if (!get_u8 (c, &has_params, error))
          return FALSE;
        if (has_params > 1)
          {
            MALFORMED (error, "the params flag is %u", has_params);
            return FALSE;
          }
        if (has_params &&
            !get_str (c, "the params", EXO_HTTP_MAX_HEADER_LEN, &frame->params, error))
          return FALSE;
        c->what = "the tensor's data";
        if (!get_u32 (c, &len, error))
          return FALSE;
        if (len > max_data)
          {
            MALFORMED (error, "the tensor's data is larger than %" G_GSIZE_FORMAT " bytes (max-body-bytes)",
                       max_data);
            return FALSE;
          }
        return get_bytes (c, len, &frame->data, error) && ((frame->data_len = len), TRUE);
      }
    case EXO_STREAM_RESULT:
      {
        guint8 finished;
        guint32 n;

        if (!get_id (c, "the request id", &frame->request_id, error))
          return FALSE;
        c->what = "the result";
        if (!get_u8 (c, &finished, error) || !get_u32 (c, &n, error))
          return FALSE;
        if (finished > 1 || n > EXO_STREAM_MAX_TOKENS || (gsize) n * 4 != c->left)
          {
            MALFORMED (error, "the result's finished flag (%u) or token count (%u) is wrong",
                       finished, n);
            return FALSE;
          }
        frame->is_finished = finished;
        frame->n_tokens = n;
        frame->tokens = g_new (gint32, MAX (n, 1));
        for (guint32 i = 0; i < n; i++)
          {
            guint32 v;

            get_u32 (c, &v, NULL);
            frame->tokens[i] = (gint32) v;
          }
        return TRUE;
      }
    case EXO_STREAM_CANCEL:
      return get_id (c, "the request id", &frame->request_id, error);
    case EXO_STREAM_ANSWER:
      {
        guint16 status;

        c->what = "the status";
        if (!get_u16 (c, &status, error))
          return FALSE;
        if (status < 100 || status > 599)
          {
            MALFORMED (error, "the status %u is not an HTTP status", status);
            return FALSE;
          }
        frame->status = status;
        return get_str (c, "the message", EXO_STREAM_MAX_MESSAGE, &frame->message, error);
      }
    default:
      g_assert_not_reached ();
    }
  return FALSE;
}

gboolean
exo_stream_frame_read (ExoClusterKey     *key,
                       const char        *nonce,
                       char               from,
                       guint64            expected_seq,
                       guint              types,
                       gsize              max_data,
                       const guint8      *bytes,
                       gsize              len,
                       ExoStreamFrame    *frame,
                       ExoStreamRefused  *reason,
                       GError           **error)
{
  g_autoptr(GByteArray) signed_part = NULL;
  char mac[EXO_STREAM_MAC_LEN + 1];
  Cursor c;
  guint8 version;

  memset (frame, 0, sizeof *frame);
  if (len < EXO_STREAM_HEAD_LEN + EXO_STREAM_MAC_LEN)
    {
      *reason = EXO_STREAM_REFUSED_BAD_MAC;
      MALFORMED (error, "a frame of %" G_GSIZE_FORMAT " bytes has no room for its MAC", len);
      return FALSE;
    }

  /* Nothing unauthenticated is interpreted. */
  memcpy (mac, bytes + len - EXO_STREAM_MAC_LEN, EXO_STREAM_MAC_LEN);
  mac[EXO_STREAM_MAC_LEN] = '\0';
  signed_part = g_byte_array_sized_new (len + strlen (nonce) + 3);
  put_str (signed_part, nonce);
  put_u8 (signed_part, (guint8) from);
  g_byte_array_append (signed_part, bytes, len - EXO_STREAM_MAC_LEN);
  if (!exo_cluster_key_verify (key, signed_part->data, signed_part->len, mac))
    {
      *reason = EXO_STREAM_REFUSED_BAD_MAC;
      MALFORMED (error, "the frame's MAC is not the cluster key's");
      return FALSE;
    }

  c.p = bytes;
  c.left = len - EXO_STREAM_MAC_LEN;
  c.what = "the head";
  get_u8 (&c, &version, NULL);
  get_u8 (&c, &frame->type, NULL);
  get_u64 (&c, &frame->seq, NULL);
  if (version != EXO_STREAM_VERSION)
    {
      *reason = EXO_STREAM_REFUSED_VERSION;
      MALFORMED (error, "version %u (this node speaks %u)", version, EXO_STREAM_VERSION);
      return FALSE;
    }
  if (frame->seq != expected_seq)
    {
      *reason = EXO_STREAM_REFUSED_SEQUENCE;
      MALFORMED (error, "sequence number %" G_GUINT64_FORMAT ", expected %" G_GUINT64_FORMAT,
                 frame->seq, expected_seq);
      return FALSE;
    }
  if (frame->type < EXO_STREAM_TENSOR || frame->type > EXO_STREAM_ANSWER ||
      (types & (1u << frame->type)) == 0)
    {
      *reason = EXO_STREAM_REFUSED_TYPE;
      MALFORMED (error, "a frame of type %u is not taken here", frame->type);
      return FALSE;
    }
  *reason = EXO_STREAM_REFUSED_MALFORMED;
  if (!get_str (&c, "the call id", EXO_HTTP_MAX_ID_LEN, &frame->call_id, error) ||
      (frame->call_id[0] != '\0' && !exo_http_id_is_valid (frame->call_id)) ||
      !read_fields (&c, max_data, frame, error))
    {
      if (error != NULL && *error == NULL)
        MALFORMED (error, "the call id must be printable ASCII");
      exo_stream_frame_clear (frame);
      return FALSE;
    }
  if (c.left != 0)
    {
      MALFORMED (error, "%" G_GSIZE_FORMAT " bytes after the frame's fields", c.left);
      exo_stream_frame_clear (frame);
      return FALSE;
    }
  return TRUE;
}
