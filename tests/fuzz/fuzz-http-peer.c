/* fuzz-http-peer.c: the JSON a node takes from its peers over HTTP
 * (plugins/http-server, compiled in): the bodies of POST /peer/v1/prompt
 * (with its generation parameters), /peer/v1/result and /peer/v1/topology, and a peer's error answer
 * (exo_http_error_for_status (), which reads its "error" member).  Every
 * parser gets every input.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-http.h"
#include "http-request.h"

#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  const char *text = (const char *) data;

  exo_fuzz_init ();

  {
    g_autoptr(GError) error = NULL;
    g_autoptr(ExoHttpPromptRequest) prompt = exo_http_prompt_request_parse (text, size, &error);

    EXO_FUZZ_CHECK ((prompt == NULL) == (error != NULL), "prompt: result and error disagree");
    if (prompt == NULL)
      exo_fuzz_check_error_answer (error);
    else
      {
        EXO_FUZZ_CHECK (exo_http_id_is_valid (prompt->request_id), "request_id");
        EXO_FUZZ_CHECK (g_utf8_validate (prompt->prompt, -1, NULL), "prompt");
        EXO_FUZZ_CHECK (prompt->shard->start_layer <= prompt->shard->end_layer &&
                        prompt->shard->end_layer < prompt->shard->n_layers, "shard");
        if (prompt->params != NULL)
          exo_fuzz_check_params (prompt->params);
      }
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(ExoHttpResultRequest) result = exo_http_result_request_parse (text, size, &error);

    EXO_FUZZ_CHECK ((result == NULL) == (error != NULL), "result: result and error disagree");
    if (result != NULL)
      {
        gint64 sum = 0;

        EXO_FUZZ_CHECK (exo_http_id_is_valid (result->request_id), "request_id");
        for (guint i = 0; i < result->n_tokens; i++)
          sum += result->tokens[i];   /* every token is readable */
        (void) sum;
      }
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(ExoHttpTopologyRequest) topology = exo_http_topology_request_parse (text, size, &error);

    EXO_FUZZ_CHECK ((topology == NULL) == (error != NULL), "topology: result and error disagree");
    if (topology != NULL)
      {
        EXO_FUZZ_CHECK (topology->max_depth <= 64, "max_depth");
        EXO_FUZZ_CHECK (g_strv_length (topology->visited) <= EXO_HTTP_MAX_VISITED, "visited");
      }
  }
  {
    g_autoptr(GBytes) body = g_bytes_new (data, size);
    g_autoptr(GError) error = exo_http_error_for_status (400, "fuzz-peer", "/peer/v1/prompt", body);

    EXO_FUZZ_CHECK (error != NULL && g_utf8_validate (error->message, -1, NULL),
                    "the error of a peer's answer is not UTF-8");
  }
  return 0;
}
