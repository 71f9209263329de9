/* exo-json.c: exo_json_validate(), a strict RFC 8259 check of JSON text.
 *
 * json-glib 1.6 parses more than JSON: comments, single-quoted strings,
 * hexadecimal numbers, a byte order mark, several top-level values (it keeps
 * the first); it recurses once per nesting level without a limit (100,000
 * '[' overflow the stack), wraps integers beyond 64 bits (2^64 becomes -1),
 * reads 1e999 as inf and truncates strings at \u0000.  Every place that parses
 * JSON from outside the process — config files, HTTP bodies, peer answers,
 * discovery datagrams — runs this check first, so json-glib only ever sees
 * text that is JSON, shallow, and representable.  A check that understands
 * only part of the grammar (counting brackets outside strings) is what the
 * comment and the single quote got past; this one accepts exactly RFC 8259.
 *
 * One pass over the bytes, no recursion: the open objects and arrays are a
 * stack of bytes (on the C stack up to 256 levels).  No global state: any
 * thread may call it.
 *
 * exo_json_fix_generated() mends the one thing json-glib 1.6 writes that is
 * not JSON whatever the values: U+001F unescaped in a string.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-private.h"

#include <math.h>
#include <string.h>

/**
 * exo_json_error_quark:
 *
 * Returns: the quark of %EXO_JSON_ERROR
 */
G_DEFINE_QUARK (exo-json-error-quark, exo_json_error)

typedef enum {
  EXPECT_VALUE,            /* after ':' or ',' in an array, or at the start */
  EXPECT_VALUE_OR_CLOSE,   /* after '[' */
  EXPECT_KEY,              /* after ',' in an object */
  EXPECT_KEY_OR_CLOSE,     /* after '{' */
  EXPECT_COLON,            /* after a member name */
  EXPECT_COMMA_OR_CLOSE,   /* after a value inside an object or array */
  EXPECT_END,              /* after the top-level value */
} State;

typedef struct {
  const guchar *data;
  gsize         length;
  gsize         pos;
  gsize         line_start;   /* offset of the first byte of the current line */
  guint         line;         /* 1-based */
  /* Where the last value ended and the last ',' was: the errors "missing
   * ','" and "trailing comma" point there, as people look for them. */
  guint         value_end_line, value_end_column;
  guint         comma_line, comma_column;
  /* Set by fail (): */
  guint         error_line, error_column;
} Scanner;

static guint
column (Scanner *s,
        gsize    pos)
{
  return (guint) MIN (pos - s->line_start + 1, (gsize) G_MAXUINT);
}

static gboolean fail_at (Scanner *s, guint line, guint col, GError **error,
                         ExoJsonError code, const char *format, ...) G_GNUC_PRINTF (6, 7);

static gboolean
fail_at (Scanner      *s,
         guint         line,
         guint         col,
         GError      **error,
         ExoJsonError  code,
         const char   *format,
         ...)
{
  va_list args;

  s->error_line = line;
  s->error_column = col;
  if (error == NULL)
    return FALSE;
  va_start (args, format);
  *error = g_error_new_valist (EXO_JSON_ERROR, code, format, args);
  va_end (args);
  return FALSE;
}

#define FAIL(s, pos, error, code, ...) \
  fail_at ((s), (s)->line, column ((s), (pos)), (error), (code), __VA_ARGS__)

/* "'x'" for a printable ASCII byte, "byte 0xNN" for anything else. */
static const char *
describe_byte (guchar  c,
               char    buffer[16])
{
  if (c >= 0x21 && c < 0x7f)
    g_snprintf (buffer, 16, "'%c'", c);
  else if (c == ' ')
    g_snprintf (buffer, 16, "a space");
  else
    g_snprintf (buffer, 16, "byte 0x%02x", c);
  return buffer;
}

/* What is wrong with byte @c where a value (or member name) was expected. */
static gboolean
fail_unexpected (Scanner     *s,
                 const char  *expected,
                 GError     **error)
{
  guchar c = s->data[s->pos];
  char buffer[16];

  switch (c)
    {
    case '/':
      return FAIL (s, s->pos, error, EXO_JSON_ERROR_SYNTAX, "comments are not JSON");
    case '#':
      return FAIL (s, s->pos, error, EXO_JSON_ERROR_SYNTAX, "'#' comments are not JSON");
    case '\'':
      return FAIL (s, s->pos, error, EXO_JSON_ERROR_SYNTAX,
                   "strings are in double quotes in JSON, not single quotes");
    case '\0':
      return FAIL (s, s->pos, error, EXO_JSON_ERROR_ENCODING, "NUL byte");
    case 0xef:
      if (s->pos + 2 < s->length && s->data[s->pos + 1] == 0xbb && s->data[s->pos + 2] == 0xbf)
        return FAIL (s, s->pos, error, EXO_JSON_ERROR_ENCODING, "byte order mark (U+FEFF)");
      break;
    default:
      break;
    }

  if (g_ascii_isalpha (c) || c == '_')
    {
      gsize end = s->pos;

      while (end < s->length && end - s->pos < 24 &&
             (g_ascii_isalnum (s->data[end]) || s->data[end] == '_'))
        end++;
      return FAIL (s, s->pos, error, EXO_JSON_ERROR_SYNTAX, "unexpected word '%.*s', expected %s",
                   (int) (end - s->pos), (const char *) s->data + s->pos, expected);
    }
  return FAIL (s, s->pos, error, EXO_JSON_ERROR_SYNTAX, "unexpected %s, expected %s",
               describe_byte (c, buffer), expected);
}

/* Skips JSON whitespace (space, tab, LF, CR); FALSE at the end of the text. */
static gboolean
skip_whitespace (Scanner *s)
{
  while (s->pos < s->length)
    {
      switch (s->data[s->pos])
        {
        case '\n':
          s->line++;
          s->line_start = s->pos + 1;
          G_GNUC_FALLTHROUGH;
        case ' ':
        case '\t':
        case '\r':
          s->pos++;
          break;
        default:
          return TRUE;
        }
    }
  return FALSE;
}

static void
mark_value_end (Scanner *s)
{
  s->value_end_line = s->line;
  s->value_end_column = column (s, s->pos - 1);
}

static gint
hex_value (guchar c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Four hex digits at @pos; -1 when they are not. */
static gint
read_hex4 (Scanner *s,
           gsize    pos)
{
  gint value = 0;

  if (s->length - pos < 4)
    return -1;
  for (guint i = 0; i < 4; i++)
    {
      gint digit = hex_value (s->data[pos + i]);

      if (digit < 0)
        return -1;
      value = value * 16 + digit;
    }
  return value;
}

/* A string; s->pos is on the opening '"'; on success just past the closing one. */
static gboolean
scan_string (Scanner  *s,
             GError  **error)
{
  gsize start = s->pos;

  s->pos++;
  while (s->pos < s->length)
    {
      guchar c = s->data[s->pos];

      if (c == '"')
        {
          s->pos++;
          return TRUE;
        }
      if (c == '\\')
        {
          guchar e;
          gint unit, low;

          if (s->pos + 1 >= s->length)
            break;
          e = s->data[s->pos + 1];
          switch (e)
            {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
              s->pos += 2;
              continue;
            case 'u':
              break;
            default:
              {
                char buffer[16];
                return FAIL (s, s->pos, error, EXO_JSON_ERROR_ENCODING,
                             "invalid escape in a string: backslash followed by %s",
                             describe_byte (e, buffer));
              }
            }
          unit = read_hex4 (s, s->pos + 2);
          if (unit < 0)
            return FAIL (s, s->pos, error, EXO_JSON_ERROR_ENCODING,
                         "invalid escape in a string: \\u must be followed by 4 hex digits");
          if (unit == 0)
            return FAIL (s, s->pos, error, EXO_JSON_ERROR_ENCODING,
                         "\\u0000 (a NUL character) is not accepted in a string");
          if (unit >= 0xdc00 && unit <= 0xdfff)
            return FAIL (s, s->pos, error, EXO_JSON_ERROR_ENCODING,
                         "lone UTF-16 surrogate \\u%04x in a string", (guint) unit);
          if (unit >= 0xd800 && unit <= 0xdbff)
            {
              if (s->length - s->pos < 12 || s->data[s->pos + 6] != '\\' ||
                  s->data[s->pos + 7] != 'u' || (low = read_hex4 (s, s->pos + 8)) < 0xdc00 ||
                  low > 0xdfff)
                return FAIL (s, s->pos, error, EXO_JSON_ERROR_ENCODING,
                             "lone UTF-16 surrogate \\u%04x in a string", (guint) unit);
              s->pos += 12;
              continue;
            }
          s->pos += 6;
          continue;
        }
      if (c < 0x20)
        {
          if (c == 0)
            return FAIL (s, s->pos, error, EXO_JSON_ERROR_ENCODING, "NUL byte");
          return FAIL (s, s->pos, error, EXO_JSON_ERROR_ENCODING,
                       "control character 0x%02x in a string must be escaped", c);
        }
      if (c >= 0x80)
        {
          gsize avail = MIN (s->length - s->pos, (gsize) 4);
          gunichar ch = g_utf8_get_char_validated ((const char *) s->data + s->pos, (gssize) avail);

          /* GLib refuses overlong forms, surrogates and code points past U+10FFFF. */
          if (ch == (gunichar) -1 || ch == (gunichar) -2)
            return FAIL (s, s->pos, error, EXO_JSON_ERROR_ENCODING, "invalid UTF-8 in a string");
          s->pos += g_unichar_to_utf8 (ch, NULL);
          continue;
        }
      s->pos++;
    }

  s->pos = start;
  return FAIL (s, start, error, EXO_JSON_ERROR_SYNTAX, "unterminated string");
}

/* A number; s->pos is on '-' or a digit; on success just past it. */
static gboolean
scan_number (Scanner  *s,
             GError  **error)
{
  gsize start = s->pos;
  gboolean is_integer = TRUE;
  char stack_buffer[64];
  char *text;
  gsize len;

  if (s->data[s->pos] == '-')
    s->pos++;
  if (s->pos >= s->length || !g_ascii_isdigit (s->data[s->pos]))
    return FAIL (s, start, error, EXO_JSON_ERROR_SYNTAX, "'-' must be followed by a digit");
  if (s->data[s->pos] == '0')
    {
      s->pos++;
      if (s->pos < s->length && g_ascii_isdigit (s->data[s->pos]))
        return FAIL (s, start, error, EXO_JSON_ERROR_SYNTAX,
                     "numbers do not start with 0 in JSON (no leading zeros, no octal)");
      if (s->pos < s->length && (s->data[s->pos] == 'x' || s->data[s->pos] == 'X'))
        return FAIL (s, start, error, EXO_JSON_ERROR_SYNTAX,
                     "hexadecimal numbers are not JSON");
    }
  else
    {
      while (s->pos < s->length && g_ascii_isdigit (s->data[s->pos]))
        s->pos++;
    }
  if (s->pos < s->length && s->data[s->pos] == '.')
    {
      is_integer = FALSE;
      s->pos++;
      if (s->pos >= s->length || !g_ascii_isdigit (s->data[s->pos]))
        return FAIL (s, start, error, EXO_JSON_ERROR_SYNTAX, "'.' in a number must be followed by a digit");
      while (s->pos < s->length && g_ascii_isdigit (s->data[s->pos]))
        s->pos++;
    }
  if (s->pos < s->length && (s->data[s->pos] == 'e' || s->data[s->pos] == 'E'))
    {
      is_integer = FALSE;
      s->pos++;
      if (s->pos < s->length && (s->data[s->pos] == '+' || s->data[s->pos] == '-'))
        s->pos++;
      if (s->pos >= s->length || !g_ascii_isdigit (s->data[s->pos]))
        return FAIL (s, start, error, EXO_JSON_ERROR_SYNTAX, "the exponent of a number has no digits");
      while (s->pos < s->length && g_ascii_isdigit (s->data[s->pos]))
        s->pos++;
    }

  len = s->pos - start;
  if (len > EXO_JSON_MAX_NUMBER_LENGTH)
    return FAIL (s, start, error, EXO_JSON_ERROR_NUMBER,
                 "a number longer than the limit of %u characters", EXO_JSON_MAX_NUMBER_LENGTH);

  text = len < sizeof stack_buffer ? stack_buffer : g_malloc (len + 1);
  memcpy (text, s->data + start, len);
  text[len] = '\0';

  if (is_integer)
    {
      /* json-glib keeps integers in a gint64 and wraps the others silently. */
      gboolean negative = text[0] == '-';
      guint64 value = 0;
      gboolean overflow = FALSE;

      for (const char *p = text + (negative ? 1 : 0); *p != '\0'; p++)
        {
          guint digit = (guint) (*p - '0');

          if (value > (G_MAXUINT64 - digit) / 10)
            {
              overflow = TRUE;
              break;
            }
          value = value * 10 + digit;
        }
      if (overflow || value > (negative ? (guint64) G_MAXINT64 + 1 : (guint64) G_MAXINT64))
        {
          fail_at (s, s->line, column (s, start), error, EXO_JSON_ERROR_NUMBER,
                   "the integer %.*s%s is out of the 64-bit range", (int) MIN (len, 40), text,
                   len > 40 ? "…" : "");
          if (text != stack_buffer)
            g_free (text);
          return FALSE;
        }
    }
  else
    {
      double value;

      value = g_ascii_strtod (text, NULL);
      if (!isfinite (value))
        {
          fail_at (s, s->line, column (s, start), error, EXO_JSON_ERROR_NUMBER,
                   "the number %.*s%s is too large for a double", (int) MIN (len, 40), text,
                   len > 40 ? "…" : "");
          if (text != stack_buffer)
            g_free (text);
          return FALSE;
        }
    }
  if (text != stack_buffer)
    g_free (text);
  return TRUE;
}

/* true, false or null; s->pos is on its first letter. */
static gboolean
scan_literal (Scanner  *s,
              GError  **error)
{
  static const char * const words[] = { "true", "false", "null" };

  for (guint i = 0; i < G_N_ELEMENTS (words); i++)
    {
      gsize len = strlen (words[i]);

      if (s->length - s->pos >= len && memcmp (s->data + s->pos, words[i], len) == 0 &&
          (s->length - s->pos == len || !(g_ascii_isalnum (s->data[s->pos + len]) ||
                                          s->data[s->pos + len] == '_')))
        {
          s->pos += len;
          return TRUE;
        }
    }
  return fail_unexpected (s, "a value", error);
}

/**
 * exo_json_validate:
 * @data: (array length=length) (element-type guint8): the text
 * @length: its length in bytes
 * @max_depth: how deeply objects and arrays may nest (1 allows `{"a": 1}`
 *   but not `{"a": []}`); at most %EXO_JSON_MAX_DEPTH_LIMIT
 * @error_line: (out) (optional): where the problem is: its line, from 1
 * @error_column: (out) (optional): and its column, in bytes from 1
 * @error: return location for a #GError in the %EXO_JSON_ERROR domain
 *
 * Checks that @data is one JSON value as RFC 8259 defines it, and no more:
 * UTF-8 without a byte order mark or NUL bytes; no comments, single-quoted
 * strings, bare words or trailing commas; nothing but whitespace after the
 * value; escapes that make valid UTF-8 (no lone surrogates such as
 * `\ud800`, no `\u0000`); numbers that a double holds (not `1e999`) and
 * integers that 64 bits hold; objects and arrays nested at most @max_depth
 * levels.  One pass without recursion, so any text is safe to check.
 *
 * Text that passes is safe to give to a recursive parser such as json-glib's
 * with the same meaning.  Duplicate member names are not checked.
 *
 * On failure the error message says what was found (and for
 * %EXO_JSON_ERROR_DEPTH the limit), without the position: that is in
 * @error_line and @error_column, for the caller to format.
 *
 * Returns: %TRUE if @data is valid JSON within the limits
 */
gboolean
exo_json_validate (const char  *data,
                   gsize        length,
                   guint        max_depth,
                   guint       *error_line,
                   guint       *error_column,
                   GError     **error)
{
  Scanner s = { (const guchar *) data, length, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
  guint8 stack_containers[256];
  guint8 *containers;            /* '{' or '[' per open level */
  guint depth = 0;
  State state = EXPECT_VALUE;
  gboolean ok = FALSE;

  g_return_val_if_fail (data != NULL || length == 0, FALSE);
  g_return_val_if_fail (max_depth <= EXO_JSON_MAX_DEPTH_LIMIT, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  containers = max_depth <= G_N_ELEMENTS (stack_containers) ? stack_containers
                                                             : g_malloc (max_depth);

  for (;;)
    {
      guchar c;

      if (!skip_whitespace (&s))
        break;
      c = s.data[s.pos];

      switch (state)
        {
        case EXPECT_KEY_OR_CLOSE:
        case EXPECT_KEY:
          if (c == '}' && state == EXPECT_KEY_OR_CLOSE)
            goto close;
          if (c == '}')
            {
              fail_at (&s, s.comma_line, s.comma_column, error, EXO_JSON_ERROR_SYNTAX,
                       "trailing comma");
              goto out;
            }
          if (c != '"')
            {
              fail_unexpected (&s, "a member name in double quotes", error);
              goto out;
            }
          if (!scan_string (&s, error))
            goto out;
          state = EXPECT_COLON;
          continue;

        case EXPECT_COLON:
          if (c != ':')
            {
              fail_at (&s, s.line, column (&s, s.pos), error, EXO_JSON_ERROR_SYNTAX,
                       "missing ':'");
              goto out;
            }
          s.pos++;
          state = EXPECT_VALUE;
          continue;

        case EXPECT_COMMA_OR_CLOSE:
          if (c == ',')
            {
              s.comma_line = s.line;
              s.comma_column = column (&s, s.pos);
              s.pos++;
              state = containers[depth - 1] == '{' ? EXPECT_KEY : EXPECT_VALUE;
              continue;
            }
          if ((c == '}' && containers[depth - 1] == '{') || (c == ']' && containers[depth - 1] == '['))
            goto close;
          if (c == '}' || c == ']')
            {
              FAIL (&s, s.pos, error, EXO_JSON_ERROR_SYNTAX, "mismatched '%c': the open %s",
                    c, containers[depth - 1] == '{' ? "object ends with '}'" : "array ends with ']'");
              goto out;
            }
          if (c == '"' || c == '{' || c == '[' || c == '-' || g_ascii_isdigit (c) ||
              c == 't' || c == 'f' || c == 'n')
            fail_at (&s, s.value_end_line, s.value_end_column, error, EXO_JSON_ERROR_SYNTAX,
                     "missing ','");
          else
            fail_unexpected (&s, containers[depth - 1] == '{' ? "',' or '}'" : "',' or ']'", error);
          goto out;

        case EXPECT_END:
          if (c == '\0')
            FAIL (&s, s.pos, error, EXO_JSON_ERROR_ENCODING, "NUL byte");
          else
            FAIL (&s, s.pos, error, EXO_JSON_ERROR_SYNTAX, "unexpected text after the top-level value");
          goto out;

        case EXPECT_VALUE_OR_CLOSE:
          if (c == ']')
            goto close;
          G_GNUC_FALLTHROUGH;
        case EXPECT_VALUE:
          if (c == ']' && depth > 0 && containers[depth - 1] == '[')
            {
              fail_at (&s, s.comma_line, s.comma_column, error, EXO_JSON_ERROR_SYNTAX,
                       "trailing comma");
              goto out;
            }
          if (c == '{' || c == '[')
            {
              if (depth >= max_depth)
                {
                  FAIL (&s, s.pos, error, EXO_JSON_ERROR_DEPTH,
                        "objects and arrays nested deeper than the limit of %u levels", max_depth);
                  goto out;
                }
              containers[depth++] = c;
              s.pos++;
              state = c == '{' ? EXPECT_KEY_OR_CLOSE : EXPECT_VALUE_OR_CLOSE;
              continue;
            }
          if (c == '"')
            {
              if (!scan_string (&s, error))
                goto out;
            }
          else if (c == '-' || g_ascii_isdigit (c))
            {
              if (!scan_number (&s, error))
                goto out;
            }
          else if (c == 't' || c == 'f' || c == 'n')
            {
              if (!scan_literal (&s, error))
                goto out;
            }
          else
            {
              fail_unexpected (&s, "a value", error);
              goto out;
            }
          mark_value_end (&s);
          state = depth == 0 ? EXPECT_END : EXPECT_COMMA_OR_CLOSE;
          continue;

        default:
          g_assert_not_reached ();
        }

    close:
      depth--;
      s.pos++;
      mark_value_end (&s);
      state = depth == 0 ? EXPECT_END : EXPECT_COMMA_OR_CLOSE;
    }

  /* The end of the text. */
  if (state == EXPECT_END)
    ok = TRUE;
  else if (state == EXPECT_VALUE && depth == 0)
    fail_at (&s, s.line, column (&s, s.pos), error, EXO_JSON_ERROR_EMPTY, "no JSON value");
  else
    fail_at (&s, s.line, column (&s, s.pos), error, EXO_JSON_ERROR_SYNTAX,
             "unexpected end of the text: %u %s not closed", depth,
             depth == 1 ? "object or array is" : "objects or arrays are");

out:
  if (containers != stack_containers)
    g_free (containers);
  if (!ok)
    {
      if (error_line != NULL)
        *error_line = s.error_line;
      if (error_column != NULL)
        *error_column = s.error_column;
    }
  return ok;
}

/**
 * exo_json_fix_generated:
 * @text: (transfer full): text that json-glib's #JsonGenerator wrote
 * @length: (inout) (optional): its length in bytes, updated
 *
 * json-glib 1.6 escapes the control characters U+0000 to U+001E in the
 * strings it writes but writes U+001F as it is, which makes text that is not
 * JSON (RFC 8259 §7) and that exo_json_validate() refuses: a peer that
 * announces a model name with `"\u001f"` in it would make every topology
 * its neighbours write invalid.  In generated text the byte 0x1f can only
 * stand inside a string, so each one becomes `\u001f`.
 *
 * Returns: (transfer full): @text, or a new string that replaces it (then
 *   @text is freed)
 */
char *
exo_json_fix_generated (char  *text,
                        gsize *length)
{
  gsize len;
  GString *fixed;

  if (text == NULL)
    return NULL;
  len = length != NULL ? *length : strlen (text);
  if (memchr (text, 0x1f, len) == NULL)
    return text;

  fixed = g_string_sized_new (len + 16);
  for (gsize i = 0; i < len; i++)
    {
      if (text[i] == 0x1f)
        g_string_append (fixed, "\\u001f");
      else
        g_string_append_c (fixed, text[i]);
    }
  g_free (text);
  if (length != NULL)
    *length = fixed->len;
  return g_string_free (fixed, FALSE);
}
