/* exo-config-reader.c: the config's JSON text read into a tree with the
 * line of every value, and the reads and messages the rest of the loader
 * is written with.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: reading the file within its size limit, the strict-JSON prescan,
 * json-glib parsing with line tracking, syntax and duplicate-key errors,
 * the `FILE:LINE: KEY: what` messages (_exo_config_set_key_error()), typed
 * reads of values (_exo_config_read_string() and the like), unknown keys
 * and the "did you mean …?" suggestions.  It knows no key names: those
 * are in exo-config-schema.c.
 *
 * Line numbers.  json-glib 1.6 keeps no positions in its nodes, so the
 * parser's "object-member" and "array-element" signals record
 * json_parser_get_current_line() for each value.  Those signals run after
 * the value is parsed: for a scalar that is the line the value is on, but
 * for an object or array it is the line of its closing bracket.  The
 * "object-start"/"array-start" signals therefore push the line of the
 * opening bracket and "object-end"/"array-end" pop it, so that a container
 * is reported at the line where it opens (normally the line of its key).
 * A missing key is reported at the line where the object lacking it opens.
 *
 * Rules: synchronous and single-threaded, like the whole load; the signal
 * handlers run inside json_parser_load_from_data() and only record lines
 * in the Loader.  No main context, no locks.
 */
#include "exo-config-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

void
_exo_config_set_key_error (GError       **error,
                           ExoConfigError code,
                           const char    *source,
                           guint          line,
                           const char    *key,
                           const char    *format,
                           ...)
{
  g_autofree char *what = NULL;
  va_list args;

  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);

  g_set_error (error, EXO_CONFIG_ERROR, code, "%s:%u: %s: %s",
               source, MAX (line, 1), key, what);
}

/* Edit distance with adjacent transpositions (optimal string alignment),
 * for "did you mean …?": "prot" is one edit from "port". */
static guint
edit_distance (const char *a,
               const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  g_autofree guint *d = g_new (guint, (la + 1) * (lb + 1));

#define D(i, j) d[(i) * (lb + 1) + (j)]
  for (gsize i = 0; i <= la; i++)
    D (i, 0) = i;
  for (gsize j = 0; j <= lb; j++)
    D (0, j) = j;

  for (gsize i = 1; i <= la; i++)
    for (gsize j = 1; j <= lb; j++)
      {
        guint cost = (a[i - 1] == b[j - 1]) ? 0 : 1;
        guint best = MIN (MIN (D (i - 1, j) + 1, D (i, j - 1) + 1), D (i - 1, j - 1) + cost);

        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
          best = MIN (best, D (i - 2, j - 2) + 1);
        D (i, j) = best;
      }

  return D (la, lb);
#undef D
}

/* The nearest candidate when it is close enough to be a typo, else NULL. */
static const char *
nearest_key (const char         *key,
             const char * const *candidates,
             gsize               n_candidates)
{
  const char *best = NULL;
  guint best_distance = G_MAXUINT;
  gsize len = strlen (key);

  if (len > 128)
    return NULL;

  for (gsize i = 0; i < n_candidates; i++)
    {
      guint d = edit_distance (key, candidates[i]);

      if (d < best_distance)
        {
          best_distance = d;
          best = candidates[i];
        }
    }

  /* Two edits, or a third of the key when it is long; never the whole key. */
  if (best != NULL && best_distance <= MAX (2, len / 3) && best_distance < len)
    return best;
  return NULL;
}

char *
_exo_config_describe_unknown (const char         *key,
                              const char * const *candidates,
                              gsize               n_candidates,
                              const char         *what)
{
  const char *nearest = nearest_key (key, candidates, n_candidates);
  GString *str;

  if (nearest != NULL)
    return g_strdup_printf ("%s; did you mean '%s'?", what, nearest);

  str = g_string_new (what);
  if (n_candidates == 0)
    {
      g_string_append (str, " (there are none)");
      return g_string_free (str, FALSE);
    }
  g_string_append (str, " (expected one of: ");
  for (gsize i = 0; i < n_candidates; i++)
    {
      if (i > 0)
        g_string_append (str, ", ");
      g_string_append (str, candidates[i]);
    }
  g_string_append_c (str, ')');
  return g_string_free (str, FALSE);
}

/* ------------------------------------------------------------------------ */
/* Parsing with line numbers                                                */

static guint
current_line (Loader     *loader,
              JsonParser *parser)
{
  guint line = json_parser_get_current_line (parser);

  loader->last_line = MAX (loader->last_line, line);
  return line;
}

static void
on_container_start (JsonParser *parser,
                    gpointer    user_data)
{
  Loader *loader = user_data;
  guint line = current_line (loader, parser);

  if (loader->open_lines->len == 0 && ++loader->n_top_levels == 2)
    loader->second_top_level_line = line;
  g_array_append_val (loader->open_lines, line);
}

static void
on_container_end (JsonParser *parser,
                  gpointer    container,
                  gpointer    user_data)
{
  Loader *loader = user_data;
  guint line;

  g_assert (loader->open_lines->len > 0);
  line = g_array_index (loader->open_lines, guint, loader->open_lines->len - 1);
  g_array_set_size (loader->open_lines, loader->open_lines->len - 1);
  g_hash_table_insert (loader->container_lines, container, GUINT_TO_POINTER (line));
}

static guint
value_line (Loader     *loader,
            JsonParser *parser,
            JsonNode   *node)
{
  gpointer container = NULL;

  if (JSON_NODE_HOLDS_OBJECT (node))
    container = json_node_get_object (node);
  else if (JSON_NODE_HOLDS_ARRAY (node))
    container = json_node_get_array (node);

  if (container != NULL)
    return GPOINTER_TO_UINT (g_hash_table_lookup (loader->container_lines, container));
  return current_line (loader, parser);
}

static void
on_object_member (JsonParser *parser,
                  JsonObject *object,
                  const char *name,
                  gpointer    user_data)
{
  Loader *loader = user_data;
  JsonNode *node = json_object_get_member (object, name);
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (loader->member_counts, object)) + 1;
  guint line;

  g_hash_table_insert (loader->member_counts, object, GUINT_TO_POINTER (count));
  if (node == NULL)
    return;

  line = value_line (loader, parser, node);
  g_hash_table_insert (loader->node_lines, node, GUINT_TO_POINTER (line));

  /* json-glib keeps the last of two equal keys; we refuse them. */
  if (count > json_object_get_size (object) && loader->dup_object == NULL)
    {
      loader->dup_object = object;
      loader->dup_name = g_strdup (name);
      loader->dup_line = line;
    }
}

static void
on_array_element (JsonParser *parser,
                  JsonArray  *array,
                  int         index,
                  gpointer    user_data)
{
  Loader *loader = user_data;
  JsonNode *node = json_array_get_element (array, index);

  if (node != NULL)
    g_hash_table_insert (loader->node_lines, node,
                         GUINT_TO_POINTER (value_line (loader, parser, node)));
}

guint
_exo_config_line_of (Loader   *loader,
                     JsonNode *node)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (loader->node_lines, node));
}

guint
_exo_config_line_of_object (Loader     *loader,
                            JsonObject *object)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (loader->container_lines, object));
}

/* The text must be strict JSON before json-glib sees it (exo_json_validate()):
 *  - json-glib 1.6 recurses once per nesting level and has no limit of its
 *    own: a file of a million '[' overflows the stack, also when a comment
 *    or a single-quoted string hides them from a simpler check;
 *  - it accepts comments, single quotes and several top-level values, wraps
 *    integers beyond 64 bits and reads 1e999 as inf.
 * A UTF-8 byte order mark, which editors write, is allowed at the start. */
static gboolean
prescan (const char  *data,
         gsize        len,
         const char  *source,
         GError     **error)
{
  g_autoptr(GError) json_error = NULL;
  guint line = 0, column = 0;

  if (len >= 3 && memcmp (data, "\xef\xbb\xbf", 3) == 0)
    {
      data += 3;
      len -= 3;
    }
  if (exo_json_validate (data, len, EXO_CONFIG_MAX_DEPTH, &line, &column, &json_error))
    return TRUE;

  if (g_error_matches (json_error, EXO_JSON_ERROR, EXO_JSON_ERROR_DEPTH))
    g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_LIMIT,
                 "%s:%u: objects and arrays nested deeper than the limit of %u levels",
                 source, line, EXO_CONFIG_MAX_DEPTH);
  else if (g_error_matches (json_error, EXO_JSON_ERROR, EXO_JSON_ERROR_EMPTY))
    g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_PARSE,
                 "%s:1: syntax error: the file holds no JSON value", source);
  else
    g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_PARSE,
                 "%s:%u: syntax error: %s (column %u)", source, line, json_error->message, column);
  return FALSE;
}

static void
set_syntax_error (Loader       *loader,
                  const GError *json_error,
                  GError      **error)
{
  const char *what = json_error->message;
  guint line = 0, column = 0;

  /* json-glib says "<data>:LINE:COLUMN: Parse error: WHAT". */
  if (g_str_has_prefix (what, "<data>:"))
    {
      char *end = NULL;

      line = strtoul (what + strlen ("<data>:"), &end, 10);
      if (end != NULL && *end == ':')
        column = strtoul (end + 1, &end, 10);
      if (end != NULL && *end == ':')
        what = end + 1;
      while (*what == ' ')
        what++;
    }
  if (g_str_has_prefix (what, "Parse error: "))
    what += strlen ("Parse error: ");

  /* Where json-glib's wording misleads ("expected ']'" inside an object). */
  if (json_error->domain == JSON_PARSER_ERROR)
    {
      switch (json_error->code)
        {
        case JSON_PARSER_ERROR_TRAILING_COMMA:
          what = "trailing comma";
          break;
        case JSON_PARSER_ERROR_MISSING_COMMA:
          what = "missing ','";
          break;
        case JSON_PARSER_ERROR_MISSING_COLON:
          what = "missing ':'";
          break;
        case JSON_PARSER_ERROR_EMPTY_MEMBER_NAME:
          what = "empty member name";
          break;
        default:
          break;
        }
    }

  if (line == 0)
    line = MAX (loader->last_line, 1);

  if (column > 0)
    g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_PARSE,
                 "%s:%u: syntax error: %s (column %u)", loader->source, line, what, column);
  else
    g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_PARSE,
                 "%s:%u: syntax error: %s", loader->source, line, what);
}

/* The path of @target below @node, for the rare message that needs it. */
static gboolean
find_object_path (JsonNode   *node,
                  JsonObject *target,
                  GString    *path)
{
  gsize len = path->len;

  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObject *object = json_node_get_object (node);
      g_autoptr(GList) members = NULL;

      if (object == target)
        return TRUE;
      members = json_object_get_members (object);
      for (GList *l = members; l != NULL; l = l->next)
        {
          g_string_append_printf (path, "%s%s", path->len > 0 ? "." : "", (char *) l->data);
          if (find_object_path (json_object_get_member (object, l->data), target, path))
            return TRUE;
          g_string_truncate (path, len);
        }
    }
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          g_string_append_printf (path, "[%u]", i);
          if (find_object_path (json_array_get_element (array, i), target, path))
            return TRUE;
          g_string_truncate (path, len);
        }
    }

  return FALSE;
}

/* Reads @data (strict JSON, at most %EXO_CONFIG_MAX_FILE_SIZE bytes) with
 * @parser, recording the line of every value in @loader.  Refuses, with
 * @loader->source in the message, what json-glib lets through: several
 * top-level values and a key given twice in one object.
 *
 * Returns: (transfer none) (nullable): the root, owned by @parser, or
 *   %NULL with @error set */
JsonNode *
_exo_config_parse (Loader      *loader,
                   JsonParser  *parser,
                   const char  *data,
                   gsize        size,
                   GError     **error)
{
  g_autoptr(GError) json_error = NULL;
  const char *source_name = loader->source;
  JsonNode *root;

  if (size > EXO_CONFIG_MAX_FILE_SIZE)
    {
      g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_LIMIT,
                   "%s: the config is larger than the limit of %u bytes (1 MiB)",
                   source_name, EXO_CONFIG_MAX_FILE_SIZE);
      return NULL;
    }
  if (!prescan (data, size, source_name, error))
    return NULL;

  loader->node_lines = g_hash_table_new (NULL, NULL);
  loader->container_lines = g_hash_table_new (NULL, NULL);
  loader->member_counts = g_hash_table_new (NULL, NULL);
  loader->open_lines = g_array_new (FALSE, FALSE, sizeof (guint));

  g_signal_connect (parser, "object-start", G_CALLBACK (on_container_start), loader);
  g_signal_connect (parser, "array-start", G_CALLBACK (on_container_start), loader);
  g_signal_connect (parser, "object-end", G_CALLBACK (on_container_end), loader);
  g_signal_connect (parser, "array-end", G_CALLBACK (on_container_end), loader);
  g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member), loader);
  g_signal_connect (parser, "array-element", G_CALLBACK (on_array_element), loader);

  if (!json_parser_load_from_data (parser, size > 0 ? data : "", size, &json_error))
    {
      set_syntax_error (loader, json_error, error);
      return NULL;
    }
  if ((root = json_parser_get_root (parser)) == NULL)
    {
      g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_PARSE,
                   "%s:1: syntax error: the file holds no JSON value", source_name);
      return NULL;
    }
  if (loader->n_top_levels > 1)
    {
      g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_PARSE,
                   "%s:%u: syntax error: unexpected text after the top-level value",
                   source_name, loader->second_top_level_line);
      return NULL;
    }
  if (loader->dup_object != NULL)
    {
      g_autoptr(GString) path = g_string_new (NULL);

      find_object_path (root, loader->dup_object, path);
      g_string_append_printf (path, "%s%s", path->len > 0 ? "." : "", loader->dup_name);
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_PARSE, source_name, loader->dup_line,
                                 path->str, "key given twice in the same object");
      return NULL;
    }

  return root;
}

/* Frees what a load kept in @loader (not the config). */
void
_exo_config_loader_clear (Loader *loader)
{
  g_clear_pointer (&loader->node_lines, g_hash_table_unref);
  g_clear_pointer (&loader->container_lines, g_hash_table_unref);
  g_clear_pointer (&loader->member_counts, g_hash_table_unref);
  g_clear_pointer (&loader->open_lines, g_array_unref);
  g_clear_pointer (&loader->ids, g_hash_table_unref);
  g_clear_pointer (&loader->dup_name, g_free);
  g_clear_pointer (&loader->deprecations, g_ptr_array_unref);
}

/* ------------------------------------------------------------------------ */
/* Checking values                                                          */

const char *
_exo_config_json_kind (JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      return "an object";
    case JSON_NODE_ARRAY:
      return "an array";
    case JSON_NODE_NULL:
      return "null";
    case JSON_NODE_VALUE:
    default:
      break;
    }

  switch (json_node_get_value_type (node))
    {
    case G_TYPE_INT64:
      return "an integer";
    case G_TYPE_DOUBLE:
      return "a number";
    case G_TYPE_BOOLEAN:
      return "a boolean";
    case G_TYPE_STRING:
      return "a string";
    default:
      return "a value";
    }
}

gboolean
_exo_config_holds (JsonNode *node,
                   GType     value_type)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == value_type;
}

gboolean
_exo_config_wrong_type (Loader     *loader,
                        JsonNode   *node,
                        const char *key,
                        const char *expected,
                        GError    **error)
{
  _exo_config_set_key_error (error, EXO_CONFIG_ERROR_WRONG_TYPE, loader->source,
                             _exo_config_line_of (loader, node),
                             key, "expected %s, got %s", expected, _exo_config_json_kind (node));
  return FALSE;
}

gboolean
_exo_config_read_string (Loader      *loader,
                         JsonNode    *node,
                         const char  *key,
                         const char **out,
                         GError     **error)
{
  if (!_exo_config_holds (node, G_TYPE_STRING))
    return _exo_config_wrong_type (loader, node, key, "a string", error);
  *out = json_node_get_string (node);
  return TRUE;
}

gboolean
_exo_config_read_uint (Loader     *loader,
                       JsonNode   *node,
                       const char *key,
                       guint      *out,
                       GError    **error)
{
  gint64 v;

  if (!_exo_config_holds (node, G_TYPE_INT64))
    return _exo_config_wrong_type (loader, node, key, "an integer", error);
  v = json_node_get_int (node);
  if (v < 0 || v > G_MAXUINT)
    {
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                 _exo_config_line_of (loader, node), key,
                                 "value %" G_GINT64_FORMAT " is out of range (0 to %u)", v, G_MAXUINT);
      return FALSE;
    }
  *out = (guint) v;
  return TRUE;
}

gboolean
_exo_config_read_object (Loader      *loader,
                         JsonNode    *node,
                         const char  *key,
                         JsonObject **out,
                         GError     **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return _exo_config_wrong_type (loader, node, key, "an object", error);
  *out = json_node_get_object (node);
  return TRUE;
}

gboolean
_exo_config_read_array (Loader     *loader,
                        JsonNode   *node,
                        const char *key,
                        JsonArray **out,
                        GError    **error)
{
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return _exo_config_wrong_type (loader, node, key, "an array", error);
  *out = json_node_get_array (node);
  return TRUE;
}

/* Refuses every member of @object not in @known. */
gboolean
_exo_config_check_keys (Loader             *loader,
                        JsonObject         *object,
                        const char         *prefix,
                        const char * const *known,
                        gsize               n_known,
                        GError            **error)
{
  g_autoptr(GList) members = json_object_get_members (object);

  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *name = l->data;
      g_autofree char *key = NULL;
      g_autofree char *what = NULL;
      gboolean found = FALSE;

      for (gsize i = 0; i < n_known && !found; i++)
        found = g_str_equal (name, known[i]);
      if (found)
        continue;

      key = prefix != NULL ? g_strdup_printf ("%s.%s", prefix, name) : g_strdup (name);
      what = _exo_config_describe_unknown (name, known, n_known, "unknown key");
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_UNKNOWN_KEY, loader->source,
                                 _exo_config_line_of (loader, json_object_get_member (object, name)),
                                 key, "%s", what);
      return FALSE;
    }

  return TRUE;
}

gboolean
_exo_config_missing_key (Loader     *loader,
                         JsonObject *object,
                         const char *key,
                         GError    **error)
{
  _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                             _exo_config_line_of_object (loader, object),
                             key, "required key is missing");
  return FALSE;
}

/* ------------------------------------------------------------------------ */
/* Reading the file                                                         */

gboolean
_exo_config_read_file (const char  *path,
                       char       **contents,
                       gsize       *length,
                       GError     **error)
{
  g_autofree char *buffer = NULL;
  struct stat st;
  gsize size = 0;
  int fd;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      int saved_errno = errno;

      g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_IO,
                   "%s: cannot open: %s", path, g_strerror (saved_errno));
      return FALSE;
    }
  if (fstat (fd, &st) == 0 && S_ISDIR (st.st_mode))
    {
      close (fd);
      g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_IO,
                   "%s: cannot read: %s", path, g_strerror (EISDIR));
      return FALSE;
    }

  /* One byte more than allowed tells "too large" from "exactly the limit";
   * st_size is not trusted (pipes, /proc, a file that grows). */
  buffer = g_malloc (EXO_CONFIG_MAX_FILE_SIZE + 2);
  while (size <= EXO_CONFIG_MAX_FILE_SIZE)
    {
      gssize n = read (fd, buffer + size, EXO_CONFIG_MAX_FILE_SIZE + 1 - size);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved_errno = errno;

          close (fd);
          g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_IO,
                       "%s: cannot read: %s", path, g_strerror (saved_errno));
          return FALSE;
        }
      if (n == 0)
        break;
      size += n;
    }
  close (fd);

  if (size > EXO_CONFIG_MAX_FILE_SIZE)
    {
      g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_LIMIT,
                   "%s: the config is larger than the limit of %u bytes (1 MiB)",
                   path, EXO_CONFIG_MAX_FILE_SIZE);
      return FALSE;
    }

  buffer[size] = '\0';
  *contents = g_realloc (g_steal_pointer (&buffer), size + 1);
  *length = size;
  return TRUE;
}
