/* http-stream-frame.h: the frames of the peer stream (`/peer/v1/stream`,
 * docs/cluster-protocol.md "The peer stream"): building them, and reading
 * and checking one received, with its MAC and sequence number.  The
 * reasons a frame is refused and their metric names are here, shared by
 * the server (http-stream-server.c) and the peer handle
 * (http-peer-stream.c).
 *
 * Pure functions over bytes: no libsoup, no state, any thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "http-common.h"

G_BEGIN_DECLS

#define EXO_STREAM_PATH           "/peer/v1/stream"
#define EXO_STREAM_VERSION        1
/* The MAC at the end of every frame: HMAC-SHA256 as 64 hex digits. */
#define EXO_STREAM_MAC_LEN        64
/* Version, type, sequence number, call id's length: the fixed head. */
#define EXO_STREAM_HEAD_LEN       (1 + 1 + 8 + 2)
/* Frames with a body smaller than this never come near a limit. */
#define EXO_STREAM_MAX_MESSAGE    1024   /* an answer's message */
#define EXO_STREAM_MAX_TOKENS     (1u << 20)  /* tokens in a result frame */
/* Who wrote a frame: part of what its MAC covers. */
#define EXO_STREAM_FROM_CLIENT    'C'
#define EXO_STREAM_FROM_SERVER    'S'

typedef enum {
  EXO_STREAM_TENSOR = 1,
  EXO_STREAM_RESULT = 2,
  EXO_STREAM_CANCEL = 3,
  EXO_STREAM_ANSWER = 4,
} ExoStreamType;

/* Why a frame (or the stream) was refused; each is counted. */
typedef enum {
  EXO_STREAM_REFUSED_BAD_MAC,     /* no MAC, or not made with the cluster key */
  EXO_STREAM_REFUSED_SEQUENCE,    /* not the next sequence number (replayed, skipped) */
  EXO_STREAM_REFUSED_VERSION,     /* a version we do not speak */
  EXO_STREAM_REFUSED_TYPE,        /* an unknown type, or one this side never gets */
  EXO_STREAM_REFUSED_MALFORMED,   /* truncated, a field out of bounds, trailing bytes */
  EXO_STREAM_REFUSED_TOO_BIG,     /* larger than the limit */
  EXO_STREAM_REFUSED_PROTOCOL,    /* not a binary WebSocket message, or the WebSocket broke */
  EXO_STREAM_N_REFUSED,
} ExoStreamRefused;

/* "bad-mac", "sequence", …: the reason's name in logs and metrics. */
const char *exo_stream_refused_to_string (ExoStreamRefused reason);

/* One frame as read.  The strings and @data point into the frame's bytes
 * (valid while they are), not NUL-terminated where said. */
typedef struct {
  guint8        type;
  guint64       seq;
  char         *call_id;       /* owned, NUL-terminated; may be "" */
  /* tensor, result, cancel */
  char         *request_id;    /* owned */
  /* tensor: the texts of the X-Exo-* headers of POST /peer/v1/tensor */
  char         *shard;         /* owned */
  char         *dtype;         /* owned */
  char         *shape;         /* owned */
  char         *params;        /* owned; NULL when absent */
  const guint8 *data;
  gsize         data_len;
  /* result */
  gint32       *tokens;        /* owned */
  guint         n_tokens;
  gboolean      is_finished;
  /* answer */
  guint         status;
  char         *message;       /* owned */
} ExoStreamFrame;

void exo_stream_frame_clear (ExoStreamFrame *frame);

/* Builds frames.  Each returns the frame's bytes with its MAC, made with
 * the first key of @key over @nonce (the upgrade's), @from, the sequence
 * number and the frame. */
GBytes *exo_stream_build_tensor (ExoClusterKey  *key,
                                 const char     *nonce,
                                 char            from,
                                 guint64         seq,
                                 const char     *call_id,
                                 const char     *request_id,
                                 const char     *shard,
                                 const char     *dtype,
                                 const char     *shape,
                                 const char     *params,   /* nullable */
                                 GBytes         *data);
GBytes *exo_stream_build_result (ExoClusterKey  *key,
                                 const char     *nonce,
                                 char            from,
                                 guint64         seq,
                                 const char     *call_id,
                                 const char     *request_id,
                                 const gint32   *tokens,
                                 gsize           n_tokens,
                                 gboolean        is_finished);
GBytes *exo_stream_build_cancel (ExoClusterKey  *key,
                                 const char     *nonce,
                                 char            from,
                                 guint64         seq,
                                 const char     *call_id,
                                 const char     *request_id);
GBytes *exo_stream_build_answer (ExoClusterKey  *key,
                                 const char     *nonce,
                                 char            from,
                                 guint64         seq,
                                 const char     *call_id,
                                 guint           status,
                                 const char     *message);
/* Any frame from its parts (the tests forge frames with it): @body is
 * the bytes after the head, @type and @version as given. */
GBytes *exo_stream_build_raw    (ExoClusterKey  *key,
                                 const char     *nonce,
                                 char            from,
                                 guint8          version,
                                 guint8          type,
                                 guint64         seq,
                                 const char     *call_id,
                                 const guint8   *body,
                                 gsize           body_len);

/* Reads and checks @bytes, written by @from: the MAC (any key of @key),
 * then the version, that the sequence number is @expected_seq, the type
 * (one of @types, a mask of 1 << type) and every field within the limits
 * of the HTTP routes (ids, headers, @max_data bytes of tensor data).
 * FALSE with @reason and a message in @error. */
gboolean exo_stream_frame_read  (ExoClusterKey     *key,
                                 const char        *nonce,
                                 char               from,
                                 guint64            expected_seq,
                                 guint              types,
                                 gsize              max_data,
                                 const guint8      *bytes,
                                 gsize              len,
                                 ExoStreamFrame    *frame,
                                 ExoStreamRefused  *reason,
                                 GError           **error);

/* http-stream-server.c: whether this process's peer handles open streams
 * (no ExoHttpServer here has `peer-stream: false`). */
gboolean exo_http_peer_stream_allowed (void);

G_END_DECLS
