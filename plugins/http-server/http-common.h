/* http-common.h: what the server and the peer handle of the `http-server`
 * plugin share: the wire format of docs/cluster-protocol.md (shards,
 * tensors in headers, JSON bodies) and error ↔ status mapping.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

#define EXO_TYPE_HTTP_SERVER (exo_http_server_get_type ())
G_DECLARE_FINAL_TYPE (ExoHttpServer, exo_http_server, EXO, HTTP_SERVER, ExoManagedResource)

#define EXO_TYPE_HTTP_PEER (exo_http_peer_get_type ())
G_DECLARE_FINAL_TYPE (ExoHttpPeer, exo_http_peer, EXO, HTTP_PEER, ExoNetworkResource)

/* Limits of the user API and of the generation parameters on the wire
 * (OpenAI's where it has one). */
#define EXO_HTTP_MAX_TEMPERATURE   2.0
#define EXO_HTTP_MAX_TOKENS        (1 << 20)   /* max_tokens, max_completion_tokens */

/* Limits of the wire format. */
#define EXO_HTTP_MAX_JSON_DEPTH   32    /* nesting of arrays/objects in a body */
#define EXO_HTTP_MAX_ID_LEN       256   /* node, request and model ids */
#define EXO_HTTP_MAX_HEADER_LEN   1024  /* an X-Exo-* header */
#define EXO_HTTP_MAX_RESPONSE_BYTES (64u * 1024 * 1024)  /* an answer a peer handle reads */

/* Sent by ExoHttpPeer on every request: such clients keep connections alive. */
#define EXO_HTTP_HEADER_PEER         "X-Exo-Peer"
/* One id per logical peer call, the same on every retry of it: the server
 * processes a prompt or tensor once even when a timed-out attempt is retried. */
#define EXO_HTTP_HEADER_CALL_ID      "X-Exo-Call-Id"
#define EXO_HTTP_MAX_SEEN_CALLS      4096

/* Header names of POST /peer/v1/tensor. */
#define EXO_HTTP_HEADER_REQUEST_ID   "X-Exo-Request-Id"
/* libsoup 3.2 has no name for it */
#define EXO_HTTP_STATUS_TOO_MANY_REQUESTS 429
#define EXO_HTTP_HEADER_SHARD        "X-Exo-Shard"
#define EXO_HTTP_HEADER_DTYPE        "X-Exo-Tensor-Dtype"
#define EXO_HTTP_HEADER_SHAPE        "X-Exo-Tensor-Shape"
/* The request's ExoGenerationParams as JSON (optional; since plugin ABI 2.0). */
#define EXO_HTTP_HEADER_PARAMS       "X-Exo-Params"

/* Parse @len bytes of JSON.  Only strict JSON (exo_json_validate():
 * no comments, single quotes, trailing data, NUL bytes, invalid UTF-8 or
 * lone surrogates, numbers json-glib cannot hold) nested at most
 * EXO_HTTP_MAX_JSON_DEPTH deep reaches json-glib, which recurses without a
 * limit.  The error is G_IO_ERROR_INVALID_DATA, a message for users that
 * says where and what, and names the limit that was hit. */
JsonNode   *exo_http_parse_json        (const char     *data,
                                        gsize           len,
                                        GError        **error);
char       *exo_http_node_to_string    (JsonNode       *node);

/* SHARD ↔ JSON.  from_json checks every field and the layer range. */
ExoShard   *exo_http_shard_from_json   (JsonNode       *node,
                                        const char     *what,
                                        GError        **error);
JsonNode   *exo_http_shard_to_json     (const ExoShard *shard);
char       *exo_http_shard_to_string   (const ExoShard *shard);

/* ExoGenerationParams ↔ JSON: {"max_tokens": 1…EXO_HTTP_MAX_TOKENS,
 * "temperature": 0…2, "top_p": (0, 1], "seed": int64}, each member
 * optional (absent: the default of exo_generation_params_new()), other
 * members ignored (a newer peer's).  from_json refuses anything else (null
 * too), naming @what and the field.  to_string writes temperature and
 * top_p, max_tokens unless 0 and seed when set, numbers as strict JSON
 * (json-glib would write 1e-8 as `1e-08.0`): the text may be spliced into
 * a body or sent as the X-Exo-Params header. */
ExoGenerationParams *exo_http_params_from_json (JsonNode                  *node,
                                                const char                *what,
                                                GError                   **error);
char       *exo_http_params_to_string  (const ExoGenerationParams *params);

/* "1,4" ↔ shape.  Parses at most EXO_TENSOR_MAX_DIMS non-negative dims. */
gboolean    exo_http_parse_shape       (const char     *text,
                                        gsize          *shape,
                                        guint          *n_dims,
                                        GError        **error);
char       *exo_http_shape_to_string   (const gsize    *shape,
                                        guint           n_dims);

/* A string that may go into an id field: non-empty, at most
 * EXO_HTTP_MAX_ID_LEN bytes, printable ASCII.  */
gboolean    exo_http_id_is_valid       (const char     *id);

/* Typed member getters: FALSE with G_IO_ERROR_INVALID_DATA naming @name. */
gboolean    exo_http_get_string_member (JsonObject     *object,
                                        const char     *name,
                                        gboolean        required,
                                        const char    **out,
                                        GError        **error);
gboolean    exo_http_get_int_member    (JsonObject     *object,
                                        const char     *name,
                                        gboolean        required,
                                        gint64          min,
                                        gint64          max,
                                        gint64         *out,
                                        GError        **error);
gboolean    exo_http_get_bool_member   (JsonObject     *object,
                                        const char     *name,
                                        gboolean        required,
                                        gboolean       *out,
                                        GError        **error);

/* At most @max bytes of @text (NULL: ""), valid UTF-8: a piece of a
 * request quoted in a message. */
char       *exo_http_shown_text        (const char     *text,
                                        gsize           max);

/* The body of an error answer (JSON, to free).  Peer paths (/peer/…) get
 * {"error": message}, which peers read (exo_http_error_for_status());
 * every other path, and @path NULL (a connection refused before its
 * request was read), OpenAI's {"error": {"message", "type", "param",
 * "code"}}: the type from @status (rate_limit_error for 429,
 * server_error for 5xx, invalid_request_error else), @param (nullable:
 * the field at fault) and @code (nullable: a stable code for @status,
 * exo_http_error_code_for_status()). */
char       *exo_http_error_body        (const char     *path,
                                        guint           status,
                                        const char     *message,
                                        const char     *param,
                                        const char     *code);
/* The code the user API's errors of @status have when the caller gives
 * none: "rate_limit_exceeded", "not_found", "server_error", …; NULL for
 * 400 (OpenAI's null: @param names the field). */
const char *exo_http_error_code_for_status (guint       status);

/* The HTTP status that tells a client about @error (a failure of the node). */
guint       exo_http_status_for_error  (const GError   *error);
/* The GError a client makes of an HTTP error answer (see the peer handle):
 * 5xx → retryable G_IO_ERROR, 4xx → EXO_RESOURCE_ERROR_FATAL. */
GError     *exo_http_error_for_failure (guint           status,
                                        const char     *message);
GError     *exo_http_error_for_status  (guint           status,
                                        const char     *peer,
                                        const char     *path,
                                        GBytes         *body);

G_END_DECLS
