/* http-request.h: the requests of the `http-server` plugin, parsed and
 * checked from their bytes (bodies, and the headers of a tensor) without
 * libsoup.  The handlers of http-peer-rpc.c and http-user-api.c answer 400
 * with the error's message; the fuzz harnesses of tests/fuzz/ call the
 * same functions.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "http-common.h"

G_BEGIN_DECLS

/* Limits of the user API (OpenAI's where it has one; the limits of the
 * generation parameters are in http-common.h). */
#define EXO_HTTP_MAX_STOP          EXO_GENERATION_MAX_STOP  /* strings in "stop" */
#define EXO_HTTP_MAX_VISITED       1024        /* ids in a topology request */

/* POST /v1/chat/completions and POST /v1/completions */
typedef struct {
  char                *model;   /* NULL when absent (the node's first model) */
  /* chat: the messages as "role: content\n" lines (the template);
   * completion: the prompt as given ("" when absent) */
  char                *prompt;
  gboolean             stream;
  gboolean             include_usage;  /* stream_options.include_usage */
  /* max_tokens (or max_completion_tokens; 0 when absent), temperature,
   * top_p, seed, stop: never NULL, the defaults where absent */
  ExoGenerationParams *params;
} ExoHttpChatRequest;

/* NULL with the error (G_IO_ERROR_INVALID_DATA) and *@param (nullable)
 * the field at fault (a static string; NULL when the body itself is
 * wrong: no JSON, no object). */
ExoHttpChatRequest *exo_http_chat_request_parse       (const char   *body,
                                                       gsize         len,
                                                       const char  **param,
                                                       GError      **error);
ExoHttpChatRequest *exo_http_completion_request_parse (const char   *body,
                                                       gsize         len,
                                                       const char  **param,
                                                       GError      **error);
void                exo_http_chat_request_free        (ExoHttpChatRequest *request);

/* POST /peer/v1/prompt */
typedef struct {
  ExoShard            *shard;
  char                *prompt;
  char                *request_id;
  ExoGenerationParams *params;    /* NULL when absent (an older peer) */
} ExoHttpPromptRequest;

ExoHttpPromptRequest *exo_http_prompt_request_parse (const char  *body,
                                                     gsize        len,
                                                     GError     **error);
void                  exo_http_prompt_request_free  (ExoHttpPromptRequest *request);

/* POST /peer/v1/result */
typedef struct {
  char     *request_id;
  gint32   *tokens;
  guint     n_tokens;
  gboolean  is_finished;
} ExoHttpResultRequest;

ExoHttpResultRequest *exo_http_result_request_parse (const char  *body,
                                                     gsize        len,
                                                     GError     **error);
void                  exo_http_result_request_free  (ExoHttpResultRequest *request);

char                 *exo_http_cancel_request_parse (const char  *body,
                                                     gsize        len,
                                                     GError     **error);

/* POST /peer/v1/failure: {"request_id", "status" (400-599), "message"
 * (at most EXO_HTTP_MAX_FAILURE_MESSAGE bytes)} */
#define EXO_HTTP_MAX_FAILURE_MESSAGE 1024
typedef struct {
  char  *request_id;
  guint  status;
  char  *message;
} ExoHttpFailureRequest;

ExoHttpFailureRequest *exo_http_failure_request_parse (const char  *body,
                                                       gsize        len,
                                                       GError     **error);
void                   exo_http_failure_request_free  (ExoHttpFailureRequest *request);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoHttpFailureRequest, exo_http_failure_request_free)

/* POST /peer/v1/topology */
typedef struct {
  GStrv  visited;         /* NULL-terminated */
  guint  max_depth;
} ExoHttpTopologyRequest;

ExoHttpTopologyRequest *exo_http_topology_request_parse (const char  *body,
                                                         gsize        len,
                                                         GError     **error);
void                    exo_http_topology_request_free  (ExoHttpTopologyRequest *request);

/* POST /peer/v1/tensor: the X-Exo-* headers (each may be NULL: missing;
 * X-Exo-Params is optional) and the body. */
typedef struct {
  char                *request_id;
  ExoShard            *shard;
  ExoTensor           *tensor;
  ExoGenerationParams *params;    /* NULL when absent (an older peer) */
} ExoHttpTensorRequest;

/* The shard and params texts a peer stream parsed last, and what they
 * gave: a ring's tensor calls repeat them token after token, and json-glib
 * costs more than the rest of a decode-step frame.  Owned by one stream. */
typedef struct
{
  char                *shard_text;
  ExoShard            *shard;
  char                *params_text;
  ExoGenerationParams *params;
} ExoHttpTensorParseCache;

void                  exo_http_tensor_parse_cache_clear (ExoHttpTensorParseCache *cache);

/* @cache: NULL, or the caller's (see above): texts equal to the last ones
 * parsed give copies of what they gave, with no parse. */
ExoHttpTensorRequest *exo_http_tensor_request_parse (const char              *request_id,
                                                     const char              *shard,
                                                     const char              *dtype,
                                                     const char              *shape,
                                                     const char              *params,
                                                     const guint8            *body,
                                                     gsize                    body_len,
                                                     ExoHttpTensorParseCache *cache,
                                                     GError                 **error);
void                  exo_http_tensor_request_free  (ExoHttpTensorRequest *request);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoHttpChatRequest, exo_http_chat_request_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoHttpPromptRequest, exo_http_prompt_request_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoHttpResultRequest, exo_http_result_request_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoHttpTopologyRequest, exo_http_topology_request_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoHttpTensorRequest, exo_http_tensor_request_free)

G_END_DECLS
