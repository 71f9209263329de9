/* http-completions.h: the answers of a generation of the user API, as
 * OpenAI writes them: a chat's ("chat.completion", "chat.completion.chunk")
 * and a completion's ("text_completion"), whole or as server-sent events.
 * Not installed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "http-server-private.h"

G_BEGIN_DECLS

/* A stream's event for new text (@text nullable: none) or, with
 * @finish_reason, its last choice. */
void http_completion_stream_chunk (Request    *req,
                                   const char *text,
                                   const char *finish_reason);
/* The end of a stream: the last choice, the usage, `data: [DONE]`. */
void http_completion_stream_end   (Request    *req,
                                   const char *finish_reason);
/* The whole answer (200) with @text. */
void http_completion_answer       (Request    *req,
                                   const char *text,
                                   const char *finish_reason);

G_END_DECLS
