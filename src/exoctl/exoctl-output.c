/* exoctl-output.c: how exoctl prints: tables, "Key: value" fields,
 * colours and glyphs, times and GVariant values for people, JSON for
 * programs, and error lines on stderr.
 *
 * Everything printed that came from another process goes through clean()
 * first (no control characters, valid UTF-8).  Colour only when
 * Ctl.color (a tty, NO_COLOR unset), UTF-8 glyphs only when Ctl.utf8, and
 * the last table column is cut to Ctl.columns when that is set.
 *
 * Rules: plain functions of their arguments and stdout/stderr; no D-Bus,
 * no main context, single thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exoctl-private.h"

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

  fflush (stdout);
  fprintf (stderr, "exoctl: %s\n", message);
  return code;
}

/* A copy of @s that is safe to print on a terminal: no control characters,
 * valid UTF-8.  Strings come from another process. */
char *
clean (const char *s)
{
  char *out;

  if (s == NULL)
    return g_strdup ("");
  out = g_utf8_make_valid (s, -1);
  for (char *p = out; *p != '\0'; p++)
    {
      if ((guchar) *p < 0x20 || (guchar) *p == 0x7f)
        *p = ' ';
    }
  return out;
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

static void
print_padded (Ctl *ctl, const Cell *cell, glong width, gboolean pad)
{
  glong len = g_utf8_strlen (cell->text, -1);

  print_colored (ctl, cell->color, cell->text);
  if (pad)
    for (glong i = len; i < width; i++)
      putchar (' ');
}

void
table_print (Ctl *ctl, Table *table)
{
  g_autofree glong *widths = g_new0 (glong, table->n_cols);
  guint n_rows = table_n_rows (table);
  glong used = 0;
  glong last_width = -1;       /* -1: no limit */

  for (guint r = 0; r < n_rows; r++)
    for (guint c = 0; c < table->n_cols; c++)
      {
        Cell *cell = &g_array_index (table->cells, Cell, r * table->n_cols + c);
        widths[c] = MAX (widths[c], g_utf8_strlen (cell->text, -1));
      }

  for (guint c = 0; c + 1 < table->n_cols; c++)
    used += widths[c] + 2;
  if (ctl->columns > 0)
    last_width = MAX (ctl->columns - used, 10);

  for (guint r = 0; r < n_rows; r++)
    {
      for (guint c = 0; c < table->n_cols; c++)
        {
          Cell *cell = &g_array_index (table->cells, Cell, r * table->n_cols + c);
          gboolean is_last = c + 1 == table->n_cols;

          if (is_last && last_width >= 0 && g_utf8_strlen (cell->text, -1) > last_width)
            {
              g_autofree char *cut = g_utf8_substring (cell->text, 0, last_width - 1);
              g_autofree char *shown = g_strconcat (cut, glyph (ctl, "…", "~"), NULL);
              Cell tmp = { shown, cell->color };

              print_padded (ctl, &tmp, 0, FALSE);
            }
          else
            {
              print_padded (ctl, cell, widths[c], !is_last);
            }
          if (!is_last)
            fputs ("  ", stdout);
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
