/* exoctl-output.c: how exoctl prints: tables, "Key: value" fields,
 * colours and glyphs, times and GVariant values for people, JSON for
 * programs, and error lines on stderr.
 *
 * Everything printed that came from another process goes through clean()
 * first (no control characters, valid UTF-8).  Colour only when
 * Ctl.color (a tty, NO_COLOR unset), UTF-8 glyphs only when Ctl.utf8.
 * Tables fit Ctl.columns when that is set (and not --full): the widest
 * columns are cut first, with "…"; widths are terminal columns
 * (text_width()), not bytes.
 *
 * Rules: plain functions of their arguments and stdout/stderr; no D-Bus,
 * no main context, single thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exoctl-private.h"

#include <string.h>

#include <stdio.h>

/* ---------------------------------------------------------------- helpers */

int G_GNUC_PRINTF (2, 3)
fail (int code, const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  /* one line, and nothing a terminal would obey: the message may carry a
   * node's error text */
  {
    g_autofree char *shown = clean (message);

    fflush (stdout);
    fprintf (stderr, "exoctl: %s\n", shown);
  }
  return code;
}

/* A copy of @s that is safe to print on a terminal: no control characters,
 * valid UTF-8.  Strings come from another process. */
char *
clean (const char *s)
{
  if (s == NULL)
    return g_strdup ("");
  g_autofree char *valid = g_utf8_make_valid (s, -1);
  GString *out = g_string_sized_new (strlen (valid));

  /* C0, DEL and C1 (U+0080..U+009F: 8-bit CSI and friends) */
  for (const char *p = valid; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
        g_string_append_c (out, ' ');
      else
        g_string_append_unichar (out, c);
    }
  return g_string_free (out, FALSE);
}

const char *
state_color (Ctl *ctl, const char *state)
{
  if (!ctl->color || state == NULL)
    return NULL;
  if (g_str_equal (state, "ready"))
    return COLOR_GREEN;
  if (g_str_equal (state, "degraded"))
    return COLOR_YELLOW;
  if (g_str_equal (state, "error"))
    return COLOR_RED;
  if (g_str_equal (state, "initializing") || g_str_equal (state, "closing"))
    return COLOR_CYAN;
  return COLOR_GREY;
}

void
print_colored (Ctl *ctl, const char *color, const char *text)
{
  if (ctl->color && color != NULL)
    printf ("%s%s%s", color, text, COLOR_RESET);
  else
    fputs (text, stdout);
}

const char *
glyph (Ctl *ctl, const char *utf8, const char *ascii)
{
  return ctl->utf8 ? utf8 : ascii;
}

/* "2024-05-01 12:00:00 CEST (3min 2s ago)", or "never" for 0. */
char *
format_time (guint64 usec, gboolean relative)
{
  g_autoptr(GDateTime) base = NULL;
  g_autoptr(GDateTime) dt = NULL;
  g_autofree char *abs = NULL;
  gint64 now, ago;

  if (usec == 0)
    return g_strdup ("never");

  base = g_date_time_new_from_unix_local ((gint64) (usec / G_USEC_PER_SEC));
  if (base == NULL)
    return g_strdup_printf ("%" G_GUINT64_FORMAT " us", usec);
  dt = g_date_time_add (base, (GTimeSpan) (usec % G_USEC_PER_SEC));
  abs = g_date_time_format (dt, "%Y-%m-%d %H:%M:%S %Z");

  if (!relative)
    return g_steal_pointer (&abs);

  now = g_get_real_time ();
  ago = (now - (gint64) usec) / G_USEC_PER_SEC;
  if (ago < 0)
    return g_strdup_printf ("%s (in the future)", abs);
  if (ago < 60)
    return g_strdup_printf ("%s (%" G_GINT64_FORMAT "s ago)", abs, ago);
  if (ago < 3600)
    return g_strdup_printf ("%s (%" G_GINT64_FORMAT "min %" G_GINT64_FORMAT "s ago)",
                            abs, ago / 60, ago % 60);
  if (ago < 86400)
    return g_strdup_printf ("%s (%" G_GINT64_FORMAT "h %" G_GINT64_FORMAT "min ago)",
                            abs, ago / 3600, (ago % 3600) / 60);
  return g_strdup_printf ("%s (%" G_GINT64_FORMAT " days ago)", abs, ago / 86400);
}

/* A GVariant value for people: strings bare, everything else printed. */
char *
format_value (GVariant *value)
{
  g_autoptr(GVariant) inner = NULL;

  if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARIANT))
    {
      inner = g_variant_get_variant (value);
      value = inner;
    }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING) ||
      g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH))
    return clean (g_variant_get_string (value, NULL));
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
    return g_strdup (g_variant_get_boolean (value) ? "yes" : "no");
  {
    g_autofree char *printed = g_variant_print (value, FALSE);
    return clean (printed);
  }
}

/* ------------------------------------------------------------------ table */

typedef struct
{
  char       *text;
  const char *color;
} Cell;

struct _Table
{
  guint   n_cols;
  GArray *cells;               /* Cell; row-major, first row the header */
};

static void
cell_clear (gpointer data)
{
  Cell *cell = data;

  g_free (cell->text);
}

Table *
table_new (guint n_cols, ...)
{
  Table *table = g_new0 (Table, 1);
  va_list args;

  table->n_cols = n_cols;
  table->cells = g_array_new (FALSE, TRUE, sizeof (Cell));
  g_array_set_clear_func (table->cells, cell_clear);

  va_start (args, n_cols);
  for (guint i = 0; i < n_cols; i++)
    {
      Cell cell = { g_strdup (va_arg (args, const char *)), COLOR_BOLD };
      g_array_append_val (table->cells, cell);
    }
  va_end (args);
  return table;
}

void
table_free (Table *table)
{
  g_array_unref (table->cells);
  g_free (table);
}

/* Appends one cell; @text is cleaned of control characters. */
void
table_add (Table *table, const char *text, const char *color)
{
  Cell cell = { clean (text), color };

  g_array_append_val (table->cells, cell);
}

static guint
table_n_rows (Table *table)
{
  return table->cells->len / table->n_cols;
}

/* How many terminal columns @text takes: wide (East Asian) characters two,
 * combining marks none, everything else one. */
static glong
text_width (const char *text)
{
  glong width = 0;

  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (g_unichar_iszerowidth (c))
        continue;
      width += g_unichar_iswide (c) ? 2 : 1;
    }
  return width;
}

/* @text cut to at most @width columns (@width >= 1), ending in "…" when
 * anything was cut.  @text is valid UTF-8 (clean()ed). */
static char *
text_cut (Ctl *ctl, const char *text, glong width)
{
  GString *out;
  glong used = 0;

  if (text_width (text) <= width)
    return g_strdup (text);

  out = g_string_new (NULL);
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      glong w = g_unichar_iszerowidth (c) ? 0 : g_unichar_iswide (c) ? 2 : 1;

      if (used + w > width - 1)          /* one column for the ellipsis */
        break;
      g_string_append_unichar (out, c);
      used += w;
    }
  g_string_append (out, glyph (ctl, "…", "~"));
  return g_string_free (out, FALSE);
}

/* Shrinks @widths so that the row fits @columns: one column at a time, the
 * widest first (the rightmost of equals, so free text such as LAST ERROR
 * goes before ids), none below MIN (its width, 4).  Narrow columns (yes/no,
 * counts) are thus cut last; a table fits down to 4 columns a cell. */
static void
table_fit (glong *widths, guint n_cols, glong columns)
{
  glong total = 2 * (glong) (n_cols - 1);

  for (guint c = 0; c < n_cols; c++)
    {
      widths[c] = MIN (widths[c], columns);     /* bounds the loop below */
      total += widths[c];
    }
  while (total > columns)
    {
      guint widest = n_cols;

      for (guint c = 0; c < n_cols; c++)
        if (widths[c] > 4 && (widest == n_cols || widths[c] >= widths[widest]))
          widest = c;
      if (widest == n_cols)
        break;                                   /* cannot get narrower */
      widths[widest]--;
      total--;
    }
}

void
table_print (Ctl *ctl, Table *table)
{
  g_autofree glong *widths = g_new0 (glong, table->n_cols);
  guint n_rows = table_n_rows (table);
  guint first = ctl->no_legend ? 1 : 0;          /* row 0 is the header */

  for (guint r = first; r < n_rows; r++)
    for (guint c = 0; c < table->n_cols; c++)
      {
        Cell *cell = &g_array_index (table->cells, Cell, r * table->n_cols + c);
        widths[c] = MAX (widths[c], text_width (cell->text));
      }
  if (ctl->columns > 0 && !ctl->full)
    table_fit (widths, table->n_cols, ctl->columns);

  for (guint r = first; r < n_rows; r++)
    {
      for (guint c = 0; c < table->n_cols; c++)
        {
          Cell *cell = &g_array_index (table->cells, Cell, r * table->n_cols + c);
          gboolean is_last = c + 1 == table->n_cols;
          g_autofree char *shown = NULL;

          if (ctl->columns > 0 && !ctl->full)
            shown = text_cut (ctl, cell->text, widths[c]);
          else
            shown = g_strdup (cell->text);
          print_colored (ctl, cell->color, shown);
          if (!is_last)
            {
              for (glong i = text_width (shown); i < widths[c]; i++)
                putchar (' ');
              fputs ("  ", stdout);
            }
        }
      putchar ('\n');
    }
}

/* ----------------------------------------------------------------- fields */

void
fields_add (GArray *fields, const char *key, char *value, const char *color)
{
  Field f = { key, value, color };

  g_array_append_val (fields, f);
}

void
field_clear (gpointer data)
{
  g_free (((Field *) data)->value);
}

void
fields_print (Ctl *ctl, GArray *fields)
{
  glong width = 0;

  for (guint i = 0; i < fields->len; i++)
    width = MAX (width, g_utf8_strlen (g_array_index (fields, Field, i).key, -1));

  for (guint i = 0; i < fields->len; i++)
    {
      Field *f = &g_array_index (fields, Field, i);
      g_auto(GStrv) lines = g_strsplit (f->value, "\n", -1);

      for (guint l = 0; lines[l] != NULL; l++)
        {
          if (l == 0)
            printf ("%*s%s: ", (int) (width - g_utf8_strlen (f->key, -1)), "", f->key);
          else
            printf ("%*s  ", (int) width, "");
          print_colored (ctl, f->color, lines[l]);
          putchar ('\n');
        }
    }
}

/* ------------------------------------------------------------------- json */

void
print_json (JsonNode *node, gboolean pretty)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autofree char *text = NULL;

  json_generator_set_pretty (gen, pretty);
  json_generator_set_indent (gen, 2);
  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, NULL);
  puts (text);
  fflush (stdout);
}
