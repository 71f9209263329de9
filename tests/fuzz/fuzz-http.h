/* fuzz-http.h: what the harnesses of the http-server plugin share: the 400
 * answer a refused request gets, made as http-server.c's error_body () makes
 * it, must be strict JSON whatever the request held.
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
