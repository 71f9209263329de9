/* test-json.c: exo_json_validate(), the strict JSON check every parser of
 * outside input runs before json-glib (issue 9, defect 1).
 *
 * Each refused text is one that json-glib 1.6 accepts with another meaning
 * or crashes on; each accepted text is also parsed by json-glib to show the
 * two agree on what JSON is.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <exo/exo.h>
#include <json-glib/json-glib.h>
#include <string.h>

typedef struct {
  const char   *text;
  gssize        length;      /* -1: strlen */
  int           code;        /* -1: valid */
  guint         line, column;
  const char   *needle;      /* in the message */
} Case;

static const Case cases[] = {
  /* valid */
  { "{}", -1, -1, 0, 0, NULL },
  { "[]", -1, -1, 0, 0, NULL },
  { " \t\r\n[1, -0, 0.5, 1e3, 1E+3, -2.5e-3, true, false, null, \"x\"] \n", -1, -1, 0, 0, NULL },
  { "\"a string at the top\"", -1, -1, 0, 0, NULL },
  { "42", -1, -1, 0, 0, NULL },
  { "{\"a\":{\"b\":[{\"c\":[]}]}}", -1, -1, 0, 0, NULL },
  { "[\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041 \\u00e9 \\ud83d\\ude00\"]", -1, -1, 0, 0, NULL },
  { "[\"caf\xc3\xa9 \xf0\x9f\x98\x80\"]", -1, -1, 0, 0, NULL },
  { "[9223372036854775807, -9223372036854775808]", -1, -1, 0, 0, NULL },
  { "[1.7976931348623157e308, 1e-400, 123456789012345678901234567890.5]", -1, -1, 0, 0, NULL },

  /* what json-glib accepts but JSON is not: the bypass of issue 9 */
  { "/*\"*/[[[[", -1, EXO_JSON_ERROR_SYNTAX, 1, 1, "comments are not JSON" },
  { "[1] // done", -1, EXO_JSON_ERROR_SYNTAX, 1, 5, "after the top-level value" },
  { "['a']", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "single quotes" },
  { "{'a': 1}", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "single quotes" },
  { "# x\n{}", -1, EXO_JSON_ERROR_SYNTAX, 1, 1, "comments" },
  { "[0x10]", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "hexadecimal" },
  { "[.5]", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "unexpected '.'" },
  { "[01]", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "leading zeros" },
  { "[1.]", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "'.' in a number" },
  { "[1e]", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "exponent" },
  { "[-]", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "'-' must be followed" },
  { "[+1]", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "unexpected '+'" },
  { "{} {}", -1, EXO_JSON_ERROR_SYNTAX, 1, 4, "after the top-level value" },
  { "{\"a\":1}\n{\"b\":2}", -1, EXO_JSON_ERROR_SYNTAX, 2, 1, "after the top-level value" },
  { "\xef\xbb\xbf{}", -1, EXO_JSON_ERROR_ENCODING, 1, 1, "byte order mark" },
  { "[TRUE]", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "unexpected word 'TRUE'" },
  { "[nan]", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "unexpected word 'nan'" },
  { "[Infinity]", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "unexpected word 'Infinity'" },
  { "[truex]", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "unexpected word 'truex'" },
  { "{a: 1}", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "member name in double quotes" },
  { "[\f1]", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "byte 0x0c" },

  /* syntax errors, at the place a person looks */
  { "", -1, EXO_JSON_ERROR_EMPTY, 1, 1, "no JSON value" },
  { " \n ", -1, EXO_JSON_ERROR_EMPTY, 2, 2, "no JSON value" },
  { "[1,\n 2,\n]", -1, EXO_JSON_ERROR_SYNTAX, 2, 3, "trailing comma" },
  { "{\"a\":1,}", -1, EXO_JSON_ERROR_SYNTAX, 1, 7, "trailing comma" },
  { "{\n  \"a\": \"x\"\n  \"b\": 1\n}", -1, EXO_JSON_ERROR_SYNTAX, 2, 10, "missing ','" },
  { "[1 2]", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "missing ','" },
  { "{\"a\" 1}", -1, EXO_JSON_ERROR_SYNTAX, 1, 6, "missing ':'" },
  { "[1}", -1, EXO_JSON_ERROR_SYNTAX, 1, 3, "mismatched '}'" },
  { "{\"a\":1]", -1, EXO_JSON_ERROR_SYNTAX, 1, 7, "mismatched ']'" },
  { "[[1]", -1, EXO_JSON_ERROR_SYNTAX, 1, 5, "1 object or array is not closed" },
  { "[\"abc", -1, EXO_JSON_ERROR_SYNTAX, 1, 2, "unterminated string" },
  { "]", -1, EXO_JSON_ERROR_SYNTAX, 1, 1, "unexpected ']'" },
  { "{\"a\":}", -1, EXO_JSON_ERROR_SYNTAX, 1, 6, "expected a value" },

  /* strings */
  { "[\"\\ud800\"]", -1, EXO_JSON_ERROR_ENCODING, 1, 3, "lone UTF-16 surrogate \\ud800" },
  { "[\"\\udc00x\"]", -1, EXO_JSON_ERROR_ENCODING, 1, 3, "lone UTF-16 surrogate \\udc00" },
  { "[\"\\ud800\\u0041\"]", -1, EXO_JSON_ERROR_ENCODING, 1, 3, "lone UTF-16 surrogate" },
  { "[\"\\ud800\\", -1, EXO_JSON_ERROR_ENCODING, 1, 3, "lone UTF-16 surrogate" },
  { "[\"a\\u0000b\"]", -1, EXO_JSON_ERROR_ENCODING, 1, 4, "\\u0000" },
  { "[\"\\x41\"]", -1, EXO_JSON_ERROR_ENCODING, 1, 3, "invalid escape" },
  { "[\"\\'\"]", -1, EXO_JSON_ERROR_ENCODING, 1, 3, "invalid escape" },
  { "[\"\\u12\"]", -1, EXO_JSON_ERROR_ENCODING, 1, 3, "4 hex digits" },
  { "[\"a\tb\"]", -1, EXO_JSON_ERROR_ENCODING, 1, 4, "control character 0x09" },
  { "[\"\xff\"]", -1, EXO_JSON_ERROR_ENCODING, 1, 3, "invalid UTF-8" },
  { "[\"\xed\xa0\x80\"]", -1, EXO_JSON_ERROR_ENCODING, 1, 3, "invalid UTF-8" },
  { "[\"\xc0\xaf\"]", -1, EXO_JSON_ERROR_ENCODING, 1, 3, "invalid UTF-8" },
  { "[\"\xe2\x82\"]", -1, EXO_JSON_ERROR_ENCODING, 1, 3, "invalid UTF-8" },
  { "[\"a\0b\"]", 7, EXO_JSON_ERROR_ENCODING, 1, 4, "NUL byte" },
  { "{}\0", 3, EXO_JSON_ERROR_ENCODING, 1, 3, "NUL byte" },
  { "\xff", -1, EXO_JSON_ERROR_SYNTAX, 1, 1, "byte 0xff" },

  /* numbers json-glib cannot hold */
  { "[1e999]", -1, EXO_JSON_ERROR_NUMBER, 1, 2, "too large for a double" },
  { "[-1e999]", -1, EXO_JSON_ERROR_NUMBER, 1, 2, "too large for a double" },
  { "[1.7976931348623159e308]", -1, EXO_JSON_ERROR_NUMBER, 1, 2, "too large" },
  { "[9223372036854775808]", -1, EXO_JSON_ERROR_NUMBER, 1, 2, "64-bit range" },
  { "[-9223372036854775809]", -1, EXO_JSON_ERROR_NUMBER, 1, 2, "64-bit range" },
  { "[18446744073709551617]", -1, EXO_JSON_ERROR_NUMBER, 1, 2, "64-bit range" },
  { "[100000000000000000000000000000000000000000000000000]", -1, EXO_JSON_ERROR_NUMBER, 1, 2, "64-bit range" },
};

static void
test_cases (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const Case *c = &cases[i];
      gsize length = c->length < 0 ? strlen (c->text) : (gsize) c->length;
      g_autoptr(GError) error = NULL;
      guint line = 0, column = 0;
      gboolean ok;

      ok = exo_json_validate (c->text, length, 32, &line, &column, &error);
      if (c->code < 0)
        {
          g_autoptr(JsonParser) parser = json_parser_new ();
          g_autoptr(GError) json_error = NULL;

          if (!ok)
            g_error ("case %" G_GSIZE_FORMAT " (%s) refused: %s", i, c->text, error->message);
          /* json-glib agrees */
          g_assert_true (json_parser_load_from_data (parser, c->text, (gssize) length, &json_error));
          g_assert_no_error (json_error);
          continue;
        }
      if (ok)
        g_error ("case %" G_GSIZE_FORMAT " (%s) accepted", i, c->text);
      g_assert_error (error, EXO_JSON_ERROR, c->code);
      if (strstr (error->message, c->needle) == NULL)
        g_error ("case %" G_GSIZE_FORMAT " (%s): message '%s' lacks '%s'", i, c->text,
                 error->message, c->needle);
      if (line != c->line || column != c->column)
        g_error ("case %" G_GSIZE_FORMAT " (%s): at %u:%u, expected %u:%u (%s)", i, c->text,
                 line, column, c->line, c->column, error->message);
    }
}

/* The crash of issue 9: a comment hid the nesting from a bracket counter,
 * and json-glib recursed once per '[' until the stack ran out. */
static void
test_deep (void)
{
  const guint n = 1000000;
  g_autoptr(GString) text = g_string_new ("/*\"*/");
  g_autoptr(GError) error = NULL;
  guint line = 0, column = 0;

  for (guint i = 0; i < n; i++)
    g_string_append_c (text, '[');
  g_assert_false (exo_json_validate (text->str, text->len, 32, &line, &column, &error));
  g_assert_error (error, EXO_JSON_ERROR, EXO_JSON_ERROR_SYNTAX);
  g_clear_error (&error);

  /* without the comment: the limit, named */
  g_assert_false (exo_json_validate (text->str + 5, text->len - 5, 32, &line, &column, &error));
  g_assert_error (error, EXO_JSON_ERROR, EXO_JSON_ERROR_DEPTH);
  g_assert_cmpstr (error->message, ==, "objects and arrays nested deeper than the limit of 32 levels");
  g_assert_cmpuint (line, ==, 1);
  g_assert_cmpuint (column, ==, 33);
  g_clear_error (&error);

  /* a string hides nothing either */
  g_string_assign (text, "[\"[[[[\\\"]]\",");
  for (guint i = 0; i < 40; i++)
    g_string_append (text, "{\"a\":[");
  g_assert_false (exo_json_validate (text->str, text->len, 32, NULL, NULL, &error));
  g_assert_error (error, EXO_JSON_ERROR, EXO_JSON_ERROR_DEPTH);
  g_clear_error (&error);
}

static void
test_depth_limit (void)
{
  for (guint limit = 0; limit < 300; limit += 7)
    {
      g_autoptr(GString) ok = g_string_new (NULL);
      g_autoptr(GString) over = NULL;
      g_autoptr(GError) error = NULL;

      for (guint i = 0; i < limit; i++)
        g_string_append (ok, i % 2 ? "{\"k\":" : "[");
      g_string_append (ok, "1");
      for (guint i = limit; i > 0; i--)
        g_string_append (ok, (i - 1) % 2 ? "}" : "]");
      g_assert_true (exo_json_validate (ok->str, ok->len, limit, NULL, NULL, &error));
      g_assert_no_error (error);
      over = g_string_new (NULL);
      g_string_append_printf (over, "[%s]", ok->str);
      g_assert_false (exo_json_validate (over->str, over->len, limit, NULL, NULL, &error));
      g_assert_error (error, EXO_JSON_ERROR, EXO_JSON_ERROR_DEPTH);
    }
}

/* A long number is refused by its length, not parsed slowly. */
static void
test_long_number (void)
{
  g_autoptr(GString) text = g_string_new ("[0.");
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < EXO_JSON_MAX_NUMBER_LENGTH - 2; i++)
    g_string_append_c (text, '1');
  g_string_append_c (text, ']');
  g_assert_true (exo_json_validate (text->str, text->len, 8, NULL, NULL, &error));
  g_string_insert_c (text, 3, '1');
  g_assert_false (exo_json_validate (text->str, text->len, 8, NULL, NULL, &error));
  g_assert_error (error, EXO_JSON_ERROR, EXO_JSON_ERROR_NUMBER);
  g_assert_nonnull (strstr (error->message, "1024"));
}

/* json-glib 1.6 writes U+001F unescaped; exo_json_fix_generated () mends it. */
static void
test_fix_generated (void)
{
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_VALUE);
  g_autoptr(GError) error = NULL;
  char *text;
  gsize length = 0;

  json_node_set_string (node, "a\x1f" "b\x1e" "c");
  text = json_to_string (node, FALSE);
  if (exo_json_validate (text, strlen (text), 1, NULL, NULL, NULL))
    g_test_message ("this json-glib escapes U+001F itself");
  length = strlen (text);
  text = exo_json_fix_generated (text, &length);
  g_assert_cmpstr (text, ==, "\"a\\u001fb\\u001ec\"");
  g_assert_cmpuint (length, ==, strlen (text));
  g_assert_true (exo_json_validate (text, length, 1, NULL, NULL, &error));
  g_assert_no_error (error);
  g_free (text);

  /* nothing to mend: the same string */
  text = g_strdup ("{\"a\":1}");
  g_assert_true (exo_json_fix_generated (text, NULL) == text);
  g_free (text);
  g_assert_null (exo_json_fix_generated (NULL, NULL));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/json/validate/cases", test_cases);
  g_test_add_func ("/json/validate/deep", test_deep);
  g_test_add_func ("/json/validate/depth-limit", test_depth_limit);
  g_test_add_func ("/json/validate/long-number", test_long_number);
  g_test_add_func ("/json/fix-generated", test_fix_generated);

  return g_test_run ();
}
