/* exo-json.h: a strict check of JSON text (RFC 8259) before a parser sees it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-types.h>

G_BEGIN_DECLS

/**
 * ExoJsonError:
 * @EXO_JSON_ERROR_EMPTY: the text holds no value (empty or only whitespace)
 * @EXO_JSON_ERROR_SYNTAX: the text is not JSON: a comment, a single-quoted
 *   string, a bare word, a missing or trailing comma, an unclosed object,
 *   array or string, or text after the top-level value
 * @EXO_JSON_ERROR_ENCODING: a NUL byte, invalid UTF-8, a byte order mark, an
 *   unescaped control character, an invalid escape, `\u0000` or a lone
 *   UTF-16 surrogate (`\ud800`)
 * @EXO_JSON_ERROR_DEPTH: objects and arrays nested deeper than the limit
 * @EXO_JSON_ERROR_NUMBER: a number a double cannot hold (`1e999`), an integer
 *   beyond 64 bits, or a number longer than %EXO_JSON_MAX_NUMBER_LENGTH
 *
 * Error codes in the %EXO_JSON_ERROR domain.  Each message says what was
 * found, and for @EXO_JSON_ERROR_DEPTH the limit.
 */
typedef enum {
  EXO_JSON_ERROR_EMPTY,
  EXO_JSON_ERROR_SYNTAX,
  EXO_JSON_ERROR_ENCODING,
  EXO_JSON_ERROR_DEPTH,
  EXO_JSON_ERROR_NUMBER,
} ExoJsonError;

/**
 * EXO_JSON_ERROR:
 *
 * The error domain of exo_json_validate(); the codes are #ExoJsonError.
 */
#define EXO_JSON_ERROR (exo_json_error_quark ())
EXO_AVAILABLE_IN_ALL
GQuark   exo_json_error_quark (void);

/**
 * EXO_JSON_MAX_NUMBER_LENGTH:
 *
 * The longest number token exo_json_validate() accepts, in bytes.
 */
#define EXO_JSON_MAX_NUMBER_LENGTH 1024

/**
 * EXO_JSON_MAX_DEPTH_LIMIT:
 *
 * The largest @max_depth exo_json_validate() takes.
 */
#define EXO_JSON_MAX_DEPTH_LIMIT 4096

EXO_AVAILABLE_IN_ALL
gboolean exo_json_validate    (const char  *data,
                               gsize        length,
                               guint        max_depth,
                               guint       *error_line,
                               guint       *error_column,
                               GError     **error);

EXO_AVAILABLE_IN_ALL
char    *exo_json_fix_generated (char   *text,
                                 gsize  *length);

G_END_DECLS
