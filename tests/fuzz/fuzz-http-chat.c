/* fuzz-http-chat.c: the body of POST /v1/chat/completions
 * (exo_http_chat_request_parse () of plugins/http-server/http-request.c,
 * compiled in), as the handler gets it.
 *
 * Accepted requests must hold what the handler relies on: a prompt, an id
 * for the model if any, and the OpenAI parameters in their ranges, which a
 * peer accepts as they are sent (fuzz-http.h).  The error of a refused one
 * is the 400 answer, which must be JSON.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-http.h"
#include "http-request.h"

#include <math.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(ExoHttpChatRequest) chat = NULL;
  g_autoptr(GError) error = NULL;

  exo_fuzz_init ();
  chat = exo_http_chat_request_parse ((const char *) data, size, NULL, &error);
  if (chat == NULL)
    {
      exo_fuzz_check_error_answer (error);
      return 0;
    }
  EXO_FUZZ_CHECK (chat->prompt != NULL && g_utf8_validate (chat->prompt, -1, NULL), "prompt");
  EXO_FUZZ_CHECK (chat->model == NULL || exo_http_id_is_valid (chat->model), "model");
  /* the stop strings as the node takes them (exo_generation_params_set_stop()) */
  for (guint i = 0; chat->params->stop != NULL && chat->params->stop[i] != NULL; i++)
    EXO_FUZZ_CHECK (i < EXO_GENERATION_MAX_STOP && chat->params->stop[i][0] != '\0' &&
                    strlen (chat->params->stop[i]) <= EXO_GENERATION_MAX_STOP_LEN &&
                    g_utf8_validate (chat->params->stop[i], -1, NULL), "stop string %u", i);
  /* what the node gets, and a peer too */
  exo_fuzz_check_params (chat->params);
  return 0;
}
