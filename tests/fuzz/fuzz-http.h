/* fuzz-http.h: what the harnesses of the http-server plugin share: the 400
 * answer a refused request gets, made as http-routes.c's error_body () makes
 * it, must be strict JSON whatever the request held; generation parameters
 * that were accepted are what a peer accepts, and come back the same from
 * the text a peer handle sends.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "fuzz-common.h"
#include "http-common.h"

#include <string.h>

static inline void
exo_fuzz_check_error_answer (const GError *error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *valid = NULL;
  g_autofree char *text = NULL;

  EXO_FUZZ_CHECK (error != NULL, "refused without an error");
  EXO_FUZZ_CHECK (error->domain == G_IO_ERROR && error->code == G_IO_ERROR_INVALID_DATA,
                  "unexpected error %s", error->message);
  valid = g_utf8_make_valid (error->message, -1);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, valid);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  text = exo_http_node_to_string (root);
  exo_fuzz_assert_json (text, strlen (text), "the error answer");
}

static inline void
exo_fuzz_check_params (const ExoGenerationParams *params)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(ExoGenerationParams) back = NULL;

  EXO_FUZZ_CHECK (params != NULL, "no parameters");
  EXO_FUZZ_CHECK (params->max_tokens <= EXO_HTTP_MAX_TOKENS, "max_tokens %u", params->max_tokens);
  EXO_FUZZ_CHECK (params->temperature >= 0 && params->temperature <= EXO_HTTP_MAX_TEMPERATURE,
                  "temperature %g", params->temperature);
  EXO_FUZZ_CHECK (params->top_p > 0 && params->top_p <= 1, "top_p %g", params->top_p);
  EXO_FUZZ_CHECK (params->has_seed || params->seed == 0, "a seed without has_seed");

  /* As ExoHttpPeer sends them: strict JSON that a peer takes back intact. */
  text = exo_http_params_to_string (params);
  exo_fuzz_assert_json (text, strlen (text), "the parameters sent to a peer");
  node = exo_http_parse_json (text, strlen (text), &error);
  EXO_FUZZ_CHECK (node != NULL, "the parameters sent do not parse: %s", error->message);
  back = exo_http_params_from_json (node, "params", &error);
  EXO_FUZZ_CHECK (back != NULL, "a peer refuses the parameters sent (%s): %s", text, error->message);
  EXO_FUZZ_CHECK (back->max_tokens == params->max_tokens &&
                  back->temperature == params->temperature && back->top_p == params->top_p &&
                  back->has_seed == params->has_seed && back->seed == params->seed,
                  "the parameters changed on the way: %s", text);
}
