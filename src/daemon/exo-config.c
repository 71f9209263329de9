/* exo-config.c: the node's JSON config, checked before anything starts.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Loading does all the checking: JSON syntax, the schema, the resource
 * types (through the caller's lookup), every setting against its
 * GParamSpec, retry policies, dependencies and cycles.  What is left for
 * exo_config_build() is to create the objects and add them to a group.
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
 */
#include "exo-config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

G_DEFINE_QUARK (exo-config-error-quark, exo_config_error)

/* ------------------------------------------------------------------------ */
/* What a loaded config holds                                               */

typedef struct {
  char   *name;
  GValue  value;
} Setting;

enum {
  RETRY_MAX_RETRIES   = 1 << 0,
  RETRY_INITIAL_DELAY = 1 << 1,
  RETRY_MAX_DELAY     = 1 << 2,
  RETRY_MULTIPLIER    = 1 << 3,
  RETRY_JITTER        = 1 << 4,
  RETRY_BURST         = 1 << 5,
  RETRY_INTERVAL      = 1 << 6,
};

typedef struct {
  guint                  index;
  guint                  line;           /* where the resource's object opens */
  guint                  id_line;
  char                  *id;
  char                  *type_name;
  GType                  type;
  char                  *display_name;
  gboolean               has_init_timeout;
  guint                  init_timeout_ms;
  gboolean               has_health_interval;
  guint                  health_interval_ms;
  guint                  supervision_mask; /* (1 << i): supervision_keys[i] given */
  guint                  supervision[4];   /* values, by supervision_keys index */
  guint                  retry_mask;     /* RETRY_* keys given */
  guint                  retry_line;
  ExoRetryPolicy         retry;
  gboolean               has_strategy;
  ExoSupervisionStrategy strategy;
  gboolean               has_group_burst;
  guint                  group_burst;
  gboolean               has_group_interval;
  guint                  group_interval_ms;
  GPtrArray             *settings;       /* Setting, in file order */
  GPtrArray             *depends_on;     /* char *, NULL-terminated */
  GArray                *depends_lines;  /* guint, one per dependency */
} ResourceSpec;

struct _ExoConfig {
  gatomicrefcount  ref_count;
  char            *source;
  char            *node_id;
  char            *node_name;
  char            *cluster_key_file;
  guint            resources_line;
  GPtrArray       *resources;   /* ResourceSpec, in file order */
  guint           *order;       /* indices into resources, dependencies first */
};

static void
setting_free (gpointer data)
{
  Setting *setting = data;

  g_free (setting->name);
  g_value_unset (&setting->value);
  g_free (setting);
}

static void
resource_spec_free (gpointer data)
{
  ResourceSpec *spec = data;

  g_free (spec->id);
  g_free (spec->type_name);
  g_free (spec->display_name);
  g_clear_pointer (&spec->settings, g_ptr_array_unref);
  g_clear_pointer (&spec->depends_on, g_ptr_array_unref);
  g_clear_pointer (&spec->depends_lines, g_array_unref);
  g_free (spec);
}

static ResourceSpec *
resource_spec_new (guint index,
                   guint line)
{
  ResourceSpec *spec = g_new0 (ResourceSpec, 1);

  spec->index = index;
  spec->line = line;
  spec->settings = g_ptr_array_new_with_free_func (setting_free);
  spec->depends_on = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (spec->depends_on, NULL);
  spec->depends_lines = g_array_new (FALSE, FALSE, sizeof (guint));
  return spec;
}

static guint
resource_spec_n_depends (const ResourceSpec *spec)
{
  return spec->depends_on->len - 1;
}

static const char *
resource_spec_depends (const ResourceSpec *spec,
                       guint               i)
{
  return g_ptr_array_index (spec->depends_on, i);
}

/**
 * exo_config_ref:
 * @self: a config
 *
 * Returns: (transfer full): @self
 */
ExoConfig *
exo_config_ref (ExoConfig *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

/**
 * exo_config_unref:
 * @self: (transfer full): a config
 */
void
exo_config_unref (ExoConfig *self)
{
  g_return_if_fail (self != NULL);

  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  g_free (self->source);
  g_free (self->node_id);
  g_free (self->node_name);
  g_free (self->cluster_key_file);
  g_clear_pointer (&self->resources, g_ptr_array_unref);
  g_free (self->order);
  g_free (self);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

static void G_GNUC_PRINTF (6, 7)
set_key_error (GError       **error,
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

static char *
describe_unknown (const char         *key,
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

typedef struct {
  const char          *source;
  ExoConfigTypeLookup  lookup;
  gpointer             lookup_data;

  GHashTable          *node_lines;       /* JsonNode * -> line of the value */
  GHashTable          *container_lines;  /* JsonObject * / JsonArray * -> line it opens */
  GHashTable          *member_counts;    /* JsonObject * -> members parsed */
  GArray              *open_lines;       /* stack of lines of open containers */
  guint                n_top_levels;
  guint                second_top_level_line;
  guint                last_line;
  JsonObject          *dup_object;       /* first key given twice, if any */
  char                *dup_name;
  guint                dup_line;

  ExoConfig           *config;
  GHashTable          *ids;              /* id -> ResourceSpec *, borrowed */
} Loader;

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

static guint
line_of (Loader   *loader,
         JsonNode *node)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (loader->node_lines, node));
}

static guint
line_of_object (Loader     *loader,
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

/* ------------------------------------------------------------------------ */
/* Checking values                                                          */

static const char *
json_kind (JsonNode *node)
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

static gboolean
holds (JsonNode *node,
       GType     value_type)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == value_type;
}

static gboolean
wrong_type (Loader     *loader,
            JsonNode   *node,
            const char *key,
            const char *expected,
            GError    **error)
{
  set_key_error (error, EXO_CONFIG_ERROR_WRONG_TYPE, loader->source, line_of (loader, node),
                 key, "expected %s, got %s", expected, json_kind (node));
  return FALSE;
}

static gboolean
get_string (Loader      *loader,
            JsonNode    *node,
            const char  *key,
            const char **out,
            GError     **error)
{
  if (!holds (node, G_TYPE_STRING))
    return wrong_type (loader, node, key, "a string", error);
  *out = json_node_get_string (node);
  return TRUE;
}

static gboolean
get_uint (Loader     *loader,
          JsonNode   *node,
          const char *key,
          guint      *out,
          GError    **error)
{
  gint64 v;

  if (!holds (node, G_TYPE_INT64))
    return wrong_type (loader, node, key, "an integer", error);
  v = json_node_get_int (node);
  if (v < 0 || v > G_MAXUINT)
    {
      set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of (loader, node), key,
                     "value %" G_GINT64_FORMAT " is out of range (0 to %u)", v, G_MAXUINT);
      return FALSE;
    }
  *out = (guint) v;
  return TRUE;
}

static gboolean
get_object (Loader      *loader,
            JsonNode    *node,
            const char  *key,
            JsonObject **out,
            GError     **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return wrong_type (loader, node, key, "an object", error);
  *out = json_node_get_object (node);
  return TRUE;
}

static gboolean
get_array (Loader     *loader,
           JsonNode   *node,
           const char *key,
           JsonArray **out,
           GError    **error)
{
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return wrong_type (loader, node, key, "an array", error);
  *out = json_node_get_array (node);
  return TRUE;
}

/* Refuses every member of @object not in @known. */
static gboolean
check_keys (Loader             *loader,
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
      what = describe_unknown (name, known, n_known, "unknown key");
      set_key_error (error, EXO_CONFIG_ERROR_UNKNOWN_KEY, loader->source,
                     line_of (loader, json_object_get_member (object, name)), key, "%s", what);
      return FALSE;
    }

  return TRUE;
}

static gboolean
check_id (Loader     *loader,
          JsonNode   *node,
          const char *key,
          const char *id,
          GError    **error)
{
  guint line = line_of (loader, node);

  if (*id == '\0')
    {
      set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line, key, "the id is empty");
      return FALSE;
    }
  if (strlen (id) > EXO_CONFIG_MAX_ID_LENGTH)
    {
      set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line, key,
                     "the id is longer than the limit of %u characters", EXO_CONFIG_MAX_ID_LENGTH);
      return FALSE;
    }
  for (const char *p = id; *p != '\0'; p++)
    {
      if (g_ascii_isalnum (*p) || *p == '_' || *p == '.' || *p == '-')
        continue;
      if (g_ascii_isprint (*p))
        set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line, key,
                       "the id '%s' contains '%c'; only letters, digits, '_', '.' and '-' are allowed",
                       id, *p);
      else
        set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line, key,
                       "the id contains the byte 0x%02x; only letters, digits, '_', '.' and '-' are allowed",
                       (guint) (guchar) *p);
      return FALSE;
    }

  return TRUE;
}

static gboolean
missing_key (Loader     *loader,
             JsonObject *object,
             const char *key,
             GError    **error)
{
  set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of_object (loader, object),
                 key, "required key is missing");
  return FALSE;
}

/* ------------------------------------------------------------------------ */
/* Settings: JSON values to GObject properties                              */

/* Properties of libexo's base classes that have their own resource key, or
 * that no config may set. */
static const struct {
  const char *property;
  const char *key;
} dedicated_properties[] = {
  { "id", "id" },
  { "resource-type", "type" },
  { "display-name", "display-name" },
  { "init-timeout", "init-timeout-ms" },
  { "retry-policy", "retry" },
  { "health-check-interval", "health-check-interval-ms" },
  { "strategy", "strategy" },
  { "restart-burst", "restart-burst" },
  { "restart-interval", "restart-interval-ms" },
  { "restart-interval-ms", "restart-interval-ms" },
  { "unhealthy-threshold", "unhealthy-threshold" },
  { "healthy-threshold", "healthy-threshold" },
  { "degraded-restart-ms", "degraded-restart-ms" },
  { "backoff-reset-ms", "backoff-reset-ms" },
};

/* Supervision keys of managed resources: resource keys, each an
 * ExoManagedResource property of the same name (unsigned; minimum). */
static const struct {
  const char *key;
  guint       minimum;
} supervision_keys[] = {
  { "unhealthy-threshold", 1 },
  { "healthy-threshold", 1 },
  { "degraded-restart-ms", 0 },
  { "backoff-reset-ms", 0 },
};

static gboolean
owned_by_base_class (GParamSpec *pspec)
{
  return pspec->owner_type == EXO_TYPE_ASYNC_RESOURCE ||
         pspec->owner_type == EXO_TYPE_RESOURCE ||
         pspec->owner_type == EXO_TYPE_MANAGED_RESOURCE ||
         pspec->owner_type == EXO_TYPE_RESOURCE_GROUP;
}

static const char *
dedicated_key (GParamSpec *pspec)
{
  if (!owned_by_base_class (pspec))
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (dedicated_properties); i++)
    if (g_str_equal (pspec->name, dedicated_properties[i].property))
      return dedicated_properties[i].key;
  return NULL;
}

static gboolean
is_setting (GParamSpec *pspec)
{
  return (pspec->flags & G_PARAM_WRITABLE) != 0 && dedicated_key (pspec) == NULL;
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* The settable property names of @klass, sorted (for messages). */
static GPtrArray *
list_settings (GObjectClass *klass)
{
  g_autofree GParamSpec **pspecs = NULL;
  guint n = 0;
  GPtrArray *names = g_ptr_array_new ();

  pspecs = g_object_class_list_properties (klass, &n);
  for (guint i = 0; i < n; i++)
    if (is_setting (pspecs[i]))
      g_ptr_array_add (names, (gpointer) pspecs[i]->name);
  g_ptr_array_sort (names, compare_strings);
  return names;
}

static gboolean
out_of_range_signed (Loader     *loader,
                     JsonNode   *node,
                     const char *key,
                     gint64      v,
                     gint64      min,
                     gint64      max,
                     GError    **error)
{
  set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of (loader, node), key,
                 "value %" G_GINT64_FORMAT " is out of range (%" G_GINT64_FORMAT " to %" G_GINT64_FORMAT ")",
                 v, min, max);
  return FALSE;
}

static gboolean
out_of_range_unsigned (Loader     *loader,
                       JsonNode   *node,
                       const char *key,
                       gint64      v,
                       guint64     min,
                       guint64     max,
                       GError    **error)
{
  set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of (loader, node), key,
                 "value %" G_GINT64_FORMAT " is out of range (%" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT ")",
                 v, min, max);
  return FALSE;
}

static gboolean
convert_signed (Loader     *loader,
                JsonNode   *node,
                GParamSpec *pspec,
                const char *key,
                GValue     *value,
                GError    **error)
{
  GType type = G_TYPE_FUNDAMENTAL (G_PARAM_SPEC_VALUE_TYPE (pspec));
  gint64 min, max, v;

  if (!holds (node, G_TYPE_INT64))
    return wrong_type (loader, node, key, "an integer", error);
  v = json_node_get_int (node);

  switch (type)
    {
    case G_TYPE_CHAR:
      min = G_PARAM_SPEC_CHAR (pspec)->minimum;
      max = G_PARAM_SPEC_CHAR (pspec)->maximum;
      break;
    case G_TYPE_INT:
      min = G_PARAM_SPEC_INT (pspec)->minimum;
      max = G_PARAM_SPEC_INT (pspec)->maximum;
      break;
    case G_TYPE_LONG:
      min = G_PARAM_SPEC_LONG (pspec)->minimum;
      max = G_PARAM_SPEC_LONG (pspec)->maximum;
      break;
    case G_TYPE_INT64:
    default:
      min = G_PARAM_SPEC_INT64 (pspec)->minimum;
      max = G_PARAM_SPEC_INT64 (pspec)->maximum;
      break;
    }
  if (v < min || v > max)
    return out_of_range_signed (loader, node, key, v, min, max, error);

  g_value_init (value, G_PARAM_SPEC_VALUE_TYPE (pspec));
  switch (type)
    {
    case G_TYPE_CHAR:
      g_value_set_schar (value, (gint8) v);
      break;
    case G_TYPE_INT:
      g_value_set_int (value, (int) v);
      break;
    case G_TYPE_LONG:
      g_value_set_long (value, (long) v);
      break;
    case G_TYPE_INT64:
    default:
      g_value_set_int64 (value, v);
      break;
    }
  return TRUE;
}

static gboolean
convert_unsigned (Loader     *loader,
                  JsonNode   *node,
                  GParamSpec *pspec,
                  const char *key,
                  GValue     *value,
                  GError    **error)
{
  GType type = G_TYPE_FUNDAMENTAL (G_PARAM_SPEC_VALUE_TYPE (pspec));
  guint64 min, max;
  gint64 v;

  if (!holds (node, G_TYPE_INT64))
    return wrong_type (loader, node, key, "an integer", error);
  v = json_node_get_int (node);

  switch (type)
    {
    case G_TYPE_UCHAR:
      min = G_PARAM_SPEC_UCHAR (pspec)->minimum;
      max = G_PARAM_SPEC_UCHAR (pspec)->maximum;
      break;
    case G_TYPE_UINT:
      min = G_PARAM_SPEC_UINT (pspec)->minimum;
      max = G_PARAM_SPEC_UINT (pspec)->maximum;
      break;
    case G_TYPE_ULONG:
      min = G_PARAM_SPEC_ULONG (pspec)->minimum;
      max = G_PARAM_SPEC_ULONG (pspec)->maximum;
      break;
    case G_TYPE_UINT64:
    default:
      min = G_PARAM_SPEC_UINT64 (pspec)->minimum;
      max = G_PARAM_SPEC_UINT64 (pspec)->maximum;
      break;
    }
  if (v < 0 || (guint64) v < min || (guint64) v > max)
    return out_of_range_unsigned (loader, node, key, v, min, max, error);

  g_value_init (value, G_PARAM_SPEC_VALUE_TYPE (pspec));
  switch (type)
    {
    case G_TYPE_UCHAR:
      g_value_set_uchar (value, (guint8) v);
      break;
    case G_TYPE_UINT:
      g_value_set_uint (value, (guint) v);
      break;
    case G_TYPE_ULONG:
      g_value_set_ulong (value, (gulong) v);
      break;
    case G_TYPE_UINT64:
    default:
      g_value_set_uint64 (value, (guint64) v);
      break;
    }
  return TRUE;
}

static gboolean
convert_floating (Loader     *loader,
                  JsonNode   *node,
                  GParamSpec *pspec,
                  const char *key,
                  GValue     *value,
                  GError    **error)
{
  gboolean is_float = G_IS_PARAM_SPEC_FLOAT (pspec);
  double min, max, v;

  if (holds (node, G_TYPE_INT64))
    v = (double) json_node_get_int (node);
  else if (holds (node, G_TYPE_DOUBLE))
    v = json_node_get_double (node);
  else
    return wrong_type (loader, node, key, "a number", error);

  if (is_float)
    {
      min = G_PARAM_SPEC_FLOAT (pspec)->minimum;
      max = G_PARAM_SPEC_FLOAT (pspec)->maximum;
    }
  else
    {
      min = G_PARAM_SPEC_DOUBLE (pspec)->minimum;
      max = G_PARAM_SPEC_DOUBLE (pspec)->maximum;
    }
  if (!isfinite (v) || v < min || v > max)
    {
      set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of (loader, node), key,
                     "value %g is out of range (%g to %g)", v, min, max);
      return FALSE;
    }

  g_value_init (value, G_PARAM_SPEC_VALUE_TYPE (pspec));
  if (is_float)
    g_value_set_float (value, (float) v);
  else
    g_value_set_double (value, v);
  return TRUE;
}

static char *
enum_nicks (GEnumClass *enum_class)
{
  GString *str = g_string_new (NULL);

  for (guint i = 0; i < enum_class->n_values; i++)
    g_string_append_printf (str, "%s%s", i > 0 ? ", " : "", enum_class->values[i].value_nick);
  return g_string_free (str, FALSE);
}

static char *
flags_nicks (GFlagsClass *flags_class)
{
  GString *str = g_string_new (NULL);

  for (guint i = 0; i < flags_class->n_values; i++)
    g_string_append_printf (str, "%s%s", i > 0 ? ", " : "", flags_class->values[i].value_nick);
  return g_string_free (str, FALSE);
}

static gboolean
convert_enum (Loader     *loader,
              JsonNode   *node,
              GParamSpec *pspec,
              const char *key,
              GValue     *value,
              GError    **error)
{
  GEnumClass *enum_class = G_PARAM_SPEC_ENUM (pspec)->enum_class;
  GEnumValue *enum_value;
  const char *nick;

  if (!get_string (loader, node, key, &nick, error))
    return FALSE;

  enum_value = g_enum_get_value_by_nick (enum_class, nick);
  if (enum_value == NULL)
    {
      g_autofree char *nicks = enum_nicks (enum_class);

      set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of (loader, node), key,
                     "unknown value '%s' (expected one of: %s)", nick, nicks);
      return FALSE;
    }

  g_value_init (value, G_PARAM_SPEC_VALUE_TYPE (pspec));
  g_value_set_enum (value, enum_value->value);
  return TRUE;
}

static gboolean
add_flag (Loader       *loader,
          JsonNode     *node,
          const char   *key,
          GFlagsClass  *flags_class,
          const char   *nick,
          guint        *flags,
          GError      **error)
{
  GFlagsValue *flags_value = g_flags_get_value_by_nick (flags_class, nick);

  if (flags_value == NULL)
    {
      g_autofree char *nicks = flags_nicks (flags_class);

      set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of (loader, node), key,
                     "unknown flag '%s' (expected some of: %s)", nick, nicks);
      return FALSE;
    }
  *flags |= flags_value->value;
  return TRUE;
}

/* A string "a|b" or an array of strings ["a", "b"]. */
static gboolean
convert_flags (Loader     *loader,
               JsonNode   *node,
               GParamSpec *pspec,
               const char *key,
               GValue     *value,
               GError    **error)
{
  GFlagsClass *flags_class = G_PARAM_SPEC_FLAGS (pspec)->flags_class;
  guint flags = 0;

  if (holds (node, G_TYPE_STRING))
    {
      g_auto(GStrv) nicks = g_strsplit (json_node_get_string (node), "|", -1);

      for (guint i = 0; nicks[i] != NULL; i++)
        {
          g_strstrip (nicks[i]);
          if (*nicks[i] == '\0')
            continue;
          if (!add_flag (loader, node, key, flags_class, nicks[i], &flags, error))
            return FALSE;
        }
    }
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *element = json_array_get_element (array, i);
          g_autofree char *element_key = g_strdup_printf ("%s[%u]", key, i);
          const char *nick;

          if (!get_string (loader, element, element_key, &nick, error) ||
              !add_flag (loader, element, element_key, flags_class, nick, &flags, error))
            return FALSE;
        }
    }
  else
    return wrong_type (loader, node, key, "a string or an array of strings", error);

  g_value_init (value, G_PARAM_SPEC_VALUE_TYPE (pspec));
  g_value_set_flags (value, flags);
  return TRUE;
}

static gboolean
convert_strv (Loader     *loader,
              JsonNode   *node,
              GParamSpec *pspec,
              const char *key,
              GValue     *value,
              GError    **error)
{
  JsonArray *array;
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  if (!JSON_NODE_HOLDS_ARRAY (node))
    return wrong_type (loader, node, key, "an array of strings", error);

  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      g_autofree char *element_key = g_strdup_printf ("%s[%u]", key, i);
      const char *str;

      if (!get_string (loader, element, element_key, &str, error))
        return FALSE;
      g_strv_builder_add (builder, str);
    }

  g_value_init (value, G_TYPE_STRV);
  g_value_take_boxed (value, g_strv_builder_end (builder));
  return TRUE;
}

static gboolean
convert_setting (Loader     *loader,
                 JsonNode   *node,
                 GParamSpec *pspec,
                 const char *key,
                 GValue     *value,
                 GError    **error)
{
  GType value_type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  gboolean ok;

  switch (G_TYPE_FUNDAMENTAL (value_type))
    {
    case G_TYPE_BOOLEAN:
      if (!holds (node, G_TYPE_BOOLEAN))
        return wrong_type (loader, node, key, "a boolean", error);
      g_value_init (value, G_TYPE_BOOLEAN);
      g_value_set_boolean (value, json_node_get_boolean (node));
      ok = TRUE;
      break;
    case G_TYPE_CHAR:
    case G_TYPE_INT:
    case G_TYPE_LONG:
    case G_TYPE_INT64:
      ok = convert_signed (loader, node, pspec, key, value, error);
      break;
    case G_TYPE_UCHAR:
    case G_TYPE_UINT:
    case G_TYPE_ULONG:
    case G_TYPE_UINT64:
      ok = convert_unsigned (loader, node, pspec, key, value, error);
      break;
    case G_TYPE_FLOAT:
    case G_TYPE_DOUBLE:
      ok = convert_floating (loader, node, pspec, key, value, error);
      break;
    case G_TYPE_STRING:
      {
        const char *str;

        if (!get_string (loader, node, key, &str, error))
          return FALSE;
        g_value_init (value, value_type);
        g_value_set_string (value, str);
        ok = TRUE;
      }
      break;
    case G_TYPE_ENUM:
      ok = convert_enum (loader, node, pspec, key, value, error);
      break;
    case G_TYPE_FLAGS:
      ok = convert_flags (loader, node, pspec, key, value, error);
      break;
    case G_TYPE_BOXED:
      if (value_type == G_TYPE_STRV)
        {
          ok = convert_strv (loader, node, pspec, key, value, error);
          break;
        }
      G_GNUC_FALLTHROUGH;
    default:
      set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of (loader, node), key,
                     "property '%s' has the type %s, which a config cannot set",
                     pspec->name, g_type_name (value_type));
      return FALSE;
    }

  if (!ok)
    return FALSE;

  /* The GParamSpec has the last word (custom param types, string rules…). */
  if (g_param_value_validate (pspec, value))
    {
      g_value_unset (value);
      set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of (loader, node), key,
                     "value not accepted by property '%s' of type %s",
                     pspec->name, g_type_name (pspec->owner_type));
      return FALSE;
    }

  return TRUE;
}

static gboolean
load_settings (Loader       *loader,
               ResourceSpec *spec,
               JsonNode     *node,
               const char   *prefix,
               GError      **error)
{
  g_autofree char *settings_key = g_strdup_printf ("%s.settings", prefix);
  g_autoptr(GTypeClass) type_class = NULL;
  g_autoptr(GList) members = NULL;
  GObjectClass *klass;
  JsonObject *object;

  if (!get_object (loader, node, settings_key, &object, error))
    return FALSE;

  type_class = g_type_class_ref (spec->type);
  klass = G_OBJECT_CLASS (type_class);
  members = json_object_get_members (object);

  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *name = l->data;
      JsonNode *value_node = json_object_get_member (object, name);
      g_autofree char *key = g_strdup_printf ("%s.%s", settings_key, name);
      GParamSpec *pspec = g_object_class_find_property (klass, name);
      Setting *setting;

      /* GObject also finds "listen_address"; the config spells it "listen-address". */
      if (pspec == NULL || !g_str_equal (pspec->name, name))
        {
          g_autoptr(GPtrArray) names = list_settings (klass);
          g_autofree char *what = g_strdup_printf ("type '%s' has no setting '%s'",
                                                   spec->type_name, name);
          g_autofree char *message = NULL;

          message = describe_unknown (name, (const char * const *) names->pdata, names->len, what);
          set_key_error (error, EXO_CONFIG_ERROR_UNKNOWN_KEY, loader->source,
                         line_of (loader, value_node), key, "%s", message);
          return FALSE;
        }

      if (dedicated_key (pspec) != NULL)
        {
          set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                         line_of (loader, value_node), key,
                         "'%s' is not a setting; use the resource key '%s'",
                         name, dedicated_key (pspec));
          return FALSE;
        }
      if ((pspec->flags & G_PARAM_WRITABLE) == 0)
        {
          set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                         line_of (loader, value_node), key,
                         "property '%s' of type '%s' is read-only", name, spec->type_name);
          return FALSE;
        }

      setting = g_new0 (Setting, 1);
      setting->name = g_strdup (pspec->name);
      if (!convert_setting (loader, value_node, pspec, key, &setting->value, error))
        {
          setting_free (setting);
          return FALSE;
        }
      g_ptr_array_add (spec->settings, setting);
    }

  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* The schema                                                               */

static const char * const node_keys[] = { "id", "name", "cluster-key-file" };
static const char * const top_level_keys[] = { "node", "resources" };
static const char * const resource_keys[] = {
  "id", "type", "display-name", "settings", "depends-on", "retry",
  "health-check-interval-ms", "init-timeout-ms",
  "unhealthy-threshold", "healthy-threshold", "degraded-restart-ms", "backoff-reset-ms",
  "strategy", "restart-burst", "restart-interval-ms",
};
static const char * const retry_keys[] = {
  "max-retries", "initial-delay-ms", "max-delay-ms", "multiplier", "jitter",
  "restart-burst", "restart-interval-ms",
};

static gboolean
load_node (Loader    *loader,
           JsonNode  *node,
           GError   **error)
{
  JsonObject *object;
  JsonNode *member;

  if (!get_object (loader, node, "node", &object, error) ||
      !check_keys (loader, object, "node", node_keys, G_N_ELEMENTS (node_keys), error))
    return FALSE;

  if ((member = json_object_get_member (object, "id")) != NULL)
    {
      const char *id;

      if (!get_string (loader, member, "node.id", &id, error))
        return FALSE;
      if (!g_str_equal (id, "auto") && !check_id (loader, member, "node.id", id, error))
        return FALSE;
      g_free (loader->config->node_id);
      loader->config->node_id = g_strdup (id);
    }

  if ((member = json_object_get_member (object, "name")) != NULL)
    {
      const char *name;

      if (!get_string (loader, member, "node.name", &name, error))
        return FALSE;
      loader->config->node_name = g_strdup (name);
    }

  if ((member = json_object_get_member (object, "cluster-key-file")) != NULL)
    {
      const char *path;

      if (!get_string (loader, member, "node.cluster-key-file", &path, error))
        return FALSE;
      if (*path == '\0' || strlen (path) > 4096)
        {
          set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of (loader, member),
                         "node.cluster-key-file", "expected the path of a file (1 to 4096 bytes)");
          return FALSE;
        }
      g_free (loader->config->cluster_key_file);
      loader->config->cluster_key_file = g_strdup (path);
    }

  return TRUE;
}

static gboolean
not_applicable (Loader             *loader,
                JsonNode           *node,
                const char         *key,
                const char         *name,
                const ResourceSpec *spec,
                const char         *what,
                GError            **error)
{
  gboolean in_retry = g_type_is_a (spec->type, EXO_TYPE_MANAGED_RESOURCE) &&
                      g_str_has_prefix (name, "restart-");

  /* A managed resource's restart limit lives in its "retry" object. */
  set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of (loader, node), key,
                 "'%s' applies only to %s, and type '%s' is not one%s",
                 name, what, spec->type_name,
                 in_retry ? "; did you mean it inside 'retry'?" : "");
  return FALSE;
}

static gboolean
load_retry (Loader       *loader,
            ResourceSpec *spec,
            JsonNode     *node,
            const char   *prefix,
            GError      **error)
{
  g_autofree char *retry_key = g_strdup_printf ("%s.retry", prefix);
  g_autoptr(ExoRetryPolicy) policy = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GList) members = NULL;
  JsonObject *object;

  if (!g_type_is_a (spec->type, EXO_TYPE_MANAGED_RESOURCE))
    return not_applicable (loader, node, retry_key, "retry", spec,
                           "managed resources (ExoManagedResource)", error);

  if (!get_object (loader, node, retry_key, &object, error) ||
      !check_keys (loader, object, retry_key, retry_keys, G_N_ELEMENTS (retry_keys), error))
    return FALSE;

  spec->retry_line = line_of (loader, node);
  members = json_object_get_members (object);
  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *name = l->data;
      JsonNode *member = json_object_get_member (object, name);
      g_autofree char *key = g_strdup_printf ("%s.%s", retry_key, name);

      if (g_str_equal (name, "max-retries"))
        {
          if (!get_uint (loader, member, key, &spec->retry.max_retries, error))
            return FALSE;
          spec->retry_mask |= RETRY_MAX_RETRIES;
        }
      else if (g_str_equal (name, "initial-delay-ms"))
        {
          if (!get_uint (loader, member, key, &spec->retry.initial_delay_ms, error))
            return FALSE;
          spec->retry_mask |= RETRY_INITIAL_DELAY;
        }
      else if (g_str_equal (name, "max-delay-ms"))
        {
          if (!get_uint (loader, member, key, &spec->retry.max_delay_ms, error))
            return FALSE;
          spec->retry_mask |= RETRY_MAX_DELAY;
        }
      else if (g_str_equal (name, "multiplier"))
        {
          double v;

          if (holds (member, G_TYPE_INT64))
            v = (double) json_node_get_int (member);
          else if (holds (member, G_TYPE_DOUBLE))
            v = json_node_get_double (member);
          else
            return wrong_type (loader, member, key, "a number", error);
          if (!isfinite (v) || v < 1.0)
            {
              set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                             line_of (loader, member), key,
                             "must be a number >= 1 (got %g)", v);
              return FALSE;
            }
          spec->retry.multiplier = v;
          spec->retry_mask |= RETRY_MULTIPLIER;
        }
      else if (g_str_equal (name, "jitter"))
        {
          const char *str;

          if (!get_string (loader, member, key, &str, error))
            return FALSE;
          if (!exo_jitter_from_string (str, &spec->retry.jitter))
            {
              set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                             line_of (loader, member), key,
                             "unknown value '%s' (expected one of: full, equal, decorrelated, none)",
                             str);
              return FALSE;
            }
          spec->retry_mask |= RETRY_JITTER;
        }
      else if (g_str_equal (name, "restart-burst"))
        {
          if (!get_uint (loader, member, key, &spec->retry.restart_burst, error))
            return FALSE;
          spec->retry_mask |= RETRY_BURST;
        }
      else if (g_str_equal (name, "restart-interval-ms"))
        {
          if (!get_uint (loader, member, key, &spec->retry.restart_interval_ms, error))
            return FALSE;
          spec->retry_mask |= RETRY_INTERVAL;
        }
      else
        g_assert_not_reached ();
    }

  /* The keys not given keep the defaults; the whole must make sense. */
  policy = exo_retry_policy_new ();
  if (spec->retry_mask & RETRY_MAX_RETRIES)
    policy->max_retries = spec->retry.max_retries;
  if (spec->retry_mask & RETRY_INITIAL_DELAY)
    policy->initial_delay_ms = spec->retry.initial_delay_ms;
  if (spec->retry_mask & RETRY_MAX_DELAY)
    policy->max_delay_ms = spec->retry.max_delay_ms;
  if (spec->retry_mask & RETRY_MULTIPLIER)
    policy->multiplier = spec->retry.multiplier;
  if (spec->retry_mask & RETRY_JITTER)
    policy->jitter = spec->retry.jitter;
  if (spec->retry_mask & RETRY_BURST)
    policy->restart_burst = spec->retry.restart_burst;
  if (spec->retry_mask & RETRY_INTERVAL)
    policy->restart_interval_ms = spec->retry.restart_interval_ms;
  if (!exo_retry_policy_validate (policy, &local_error))
    {
      set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, spec->retry_line,
                     retry_key, "%s", local_error->message);
      return FALSE;
    }

  return TRUE;
}

static gboolean
load_depends_on (Loader       *loader,
                 ResourceSpec *spec,
                 JsonNode     *node,
                 const char   *prefix,
                 GError      **error)
{
  g_autofree char *depends_key = g_strdup_printf ("%s.depends-on", prefix);
  JsonArray *array;

  if (!get_array (loader, node, depends_key, &array, error))
    return FALSE;

  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      g_autofree char *key = g_strdup_printf ("%s[%u]", depends_key, i);
      guint line = line_of (loader, element);
      const char *dependency;

      if (!get_string (loader, element, key, &dependency, error))
        return FALSE;
      if (g_str_equal (dependency, spec->id))
        {
          set_key_error (error, EXO_CONFIG_ERROR_CYCLE, loader->source, line, key,
                         "resource '%s' depends on itself", spec->id);
          return FALSE;
        }
      for (guint j = 0; j < resource_spec_n_depends (spec); j++)
        if (g_str_equal (resource_spec_depends (spec, j), dependency))
          {
            set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line, key,
                           "'%s' is listed twice", dependency);
            return FALSE;
          }

      g_ptr_array_insert (spec->depends_on, spec->depends_on->len - 1, g_strdup (dependency));
      g_array_append_val (spec->depends_lines, line);
    }

  return TRUE;
}

static gboolean
load_resource (Loader    *loader,
               guint      index,
               JsonNode  *node,
               GError   **error)
{
  g_autofree char *prefix = g_strdup_printf ("resources[%u]", index);
  g_autofree char *key = NULL;
  ResourceSpec *spec, *other;
  JsonObject *object;
  JsonNode *member;
  const char *str;
  gboolean is_managed, is_group;

  if (!get_object (loader, node, prefix, &object, error) ||
      !check_keys (loader, object, prefix, resource_keys, G_N_ELEMENTS (resource_keys), error))
    return FALSE;

  spec = resource_spec_new (index, line_of (loader, node));
  g_ptr_array_add (loader->config->resources, spec);

  /* id */
  key = g_strdup_printf ("%s.id", prefix);
  if ((member = json_object_get_member (object, "id")) == NULL)
    return missing_key (loader, object, key, error);
  if (!get_string (loader, member, key, &str, error) ||
      !check_id (loader, member, key, str, error))
    return FALSE;
  if ((other = g_hash_table_lookup (loader->ids, str)) != NULL)
    {
      set_key_error (error, EXO_CONFIG_ERROR_DUPLICATE_ID, loader->source, line_of (loader, member), key,
                     "duplicate id '%s' (resources[%u], line %u, has it too)",
                     str, other->index, other->id_line);
      return FALSE;
    }
  spec->id = g_strdup (str);
  spec->id_line = line_of (loader, member);
  g_hash_table_insert (loader->ids, spec->id, spec);
  g_clear_pointer (&key, g_free);

  /* type */
  key = g_strdup_printf ("%s.type", prefix);
  if ((member = json_object_get_member (object, "type")) == NULL)
    return missing_key (loader, object, key, error);
  if (!get_string (loader, member, key, &str, error))
    return FALSE;
  spec->type_name = g_strdup (str);
  spec->type = loader->lookup (str, loader->lookup_data);
  if (spec->type == G_TYPE_INVALID)
    {
      set_key_error (error, EXO_CONFIG_ERROR_UNKNOWN_TYPE, loader->source, line_of (loader, member), key,
                     "unknown resource type '%s'", str);
      return FALSE;
    }
  if (!g_type_is_a (spec->type, EXO_TYPE_RESOURCE) || G_TYPE_IS_ABSTRACT (spec->type))
    {
      set_key_error (error, EXO_CONFIG_ERROR_UNKNOWN_TYPE, loader->source, line_of (loader, member), key,
                     "resource type '%s' (%s) is not an instantiable ExoResource",
                     str, g_type_name (spec->type));
      return FALSE;
    }
  g_clear_pointer (&key, g_free);

  is_managed = g_type_is_a (spec->type, EXO_TYPE_MANAGED_RESOURCE);
  is_group = g_type_is_a (spec->type, EXO_TYPE_RESOURCE_GROUP);

  if ((member = json_object_get_member (object, "display-name")) != NULL)
    {
      key = g_strdup_printf ("%s.display-name", prefix);
      if (!get_string (loader, member, key, &str, error))
        return FALSE;
      spec->display_name = g_strdup (str);
      g_clear_pointer (&key, g_free);
    }

  if ((member = json_object_get_member (object, "init-timeout-ms")) != NULL)
    {
      key = g_strdup_printf ("%s.init-timeout-ms", prefix);
      if (!get_uint (loader, member, key, &spec->init_timeout_ms, error))
        return FALSE;
      spec->has_init_timeout = TRUE;
      g_clear_pointer (&key, g_free);
    }

  if ((member = json_object_get_member (object, "health-check-interval-ms")) != NULL)
    {
      key = g_strdup_printf ("%s.health-check-interval-ms", prefix);
      if (!is_managed)
        return not_applicable (loader, member, key, "health-check-interval-ms", spec,
                               "managed resources (ExoManagedResource)", error);
      if (!get_uint (loader, member, key, &spec->health_interval_ms, error))
        return FALSE;
      spec->has_health_interval = TRUE;
      g_clear_pointer (&key, g_free);
    }

  for (gsize i = 0; i < G_N_ELEMENTS (supervision_keys); i++)
    {
      if ((member = json_object_get_member (object, supervision_keys[i].key)) == NULL)
        continue;
      key = g_strdup_printf ("%s.%s", prefix, supervision_keys[i].key);
      if (!is_managed)
        return not_applicable (loader, member, key, supervision_keys[i].key, spec,
                               "managed resources (ExoManagedResource)", error);
      if (!get_uint (loader, member, key, &spec->supervision[i], error))
        return FALSE;
      if (spec->supervision[i] < supervision_keys[i].minimum)
        {
          set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of (loader, member),
                         key, "must be at least %u (got %u)", supervision_keys[i].minimum,
                         spec->supervision[i]);
          return FALSE;
        }
      spec->supervision_mask |= 1u << i;
      g_clear_pointer (&key, g_free);
    }

  if ((member = json_object_get_member (object, "retry")) != NULL &&
      !load_retry (loader, spec, member, prefix, error))
    return FALSE;

  if ((member = json_object_get_member (object, "strategy")) != NULL)
    {
      key = g_strdup_printf ("%s.strategy", prefix);
      if (!is_group)
        return not_applicable (loader, member, key, "strategy", spec,
                               "resource groups (ExoResourceGroup)", error);
      if (!get_string (loader, member, key, &str, error))
        return FALSE;
      if (!exo_supervision_strategy_from_string (str, &spec->strategy))
        {
          set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of (loader, member), key,
                         "unknown value '%s' (expected one of: one-for-one, rest-for-one, one-for-all)",
                         str);
          return FALSE;
        }
      spec->has_strategy = TRUE;
      g_clear_pointer (&key, g_free);
    }

  if ((member = json_object_get_member (object, "restart-burst")) != NULL)
    {
      key = g_strdup_printf ("%s.restart-burst", prefix);
      if (!is_group)
        return not_applicable (loader, member, key, "restart-burst", spec,
                               "resource groups (ExoResourceGroup)", error);
      if (!get_uint (loader, member, key, &spec->group_burst, error))
        return FALSE;
      if (spec->group_burst > EXO_RESTART_BURST_MAX)
        {
          set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line_of (loader, member),
                         key, "must be at most %u (got %u)", EXO_RESTART_BURST_MAX, spec->group_burst);
          return FALSE;
        }
      spec->has_group_burst = TRUE;
      g_clear_pointer (&key, g_free);
    }

  if ((member = json_object_get_member (object, "restart-interval-ms")) != NULL)
    {
      key = g_strdup_printf ("%s.restart-interval-ms", prefix);
      if (!is_group)
        return not_applicable (loader, member, key, "restart-interval-ms", spec,
                               "resource groups (ExoResourceGroup)", error);
      if (!get_uint (loader, member, key, &spec->group_interval_ms, error))
        return FALSE;
      spec->has_group_interval = TRUE;
      g_clear_pointer (&key, g_free);
    }

  if ((member = json_object_get_member (object, "settings")) != NULL &&
      !load_settings (loader, spec, member, prefix, error))
    return FALSE;

  if ((member = json_object_get_member (object, "depends-on")) != NULL &&
      !load_depends_on (loader, spec, member, prefix, error))
    return FALSE;

  return TRUE;
}

/* Every dependency defined; no cycle; an order with dependencies first
 * (a depth-first post-order, without recursion: 10 000 resources in a
 * chain must not exhaust the stack). */
static gboolean
check_dependencies (Loader  *loader,
                    GError **error)
{
  ExoConfig *config = loader->config;
  guint n = config->resources->len;
  g_autofree guint8 *color = g_new0 (guint8, n);   /* 0 new, 1 on the path, 2 done */
  g_autofree guint *path = g_new (guint, n);
  g_autofree guint *next_edge = g_new (guint, n);
  guint n_order = 0;

  for (guint i = 0; i < n; i++)
    {
      ResourceSpec *spec = g_ptr_array_index (config->resources, i);

      for (guint j = 0; j < resource_spec_n_depends (spec); j++)
        {
          const char *dependency = resource_spec_depends (spec, j);

          if (!g_hash_table_contains (loader->ids, dependency))
            {
              g_autofree char *key = g_strdup_printf ("resources[%u].depends-on[%u]", i, j);

              set_key_error (error, EXO_CONFIG_ERROR_MISSING_DEPENDENCY, loader->source,
                             g_array_index (spec->depends_lines, guint, j), key,
                             "resource '%s' depends on '%s', which is not defined",
                             spec->id, dependency);
              return FALSE;
            }
        }
    }

  config->order = g_new (guint, MAX (n, 1));
  for (guint root = 0; root < n; root++)
    {
      guint depth = 0;

      if (color[root] != 0)
        continue;

      color[root] = 1;
      path[depth] = root;
      next_edge[depth] = 0;
      depth++;

      while (depth > 0)
        {
          ResourceSpec *spec = g_ptr_array_index (config->resources, path[depth - 1]);
          guint edge = next_edge[depth - 1]++;
          ResourceSpec *dependency;

          if (edge >= resource_spec_n_depends (spec))
            {
              color[spec->index] = 2;
              config->order[n_order++] = spec->index;
              depth--;
              continue;
            }

          dependency = g_hash_table_lookup (loader->ids, resource_spec_depends (spec, edge));
          if (color[dependency->index] == 0)
            {
              color[dependency->index] = 1;
              path[depth] = dependency->index;
              next_edge[depth] = 0;
              depth++;
            }
          else if (color[dependency->index] == 1)
            {
              g_autoptr(GString) cycle = g_string_new (NULL);
              g_autofree char *key = NULL;
              ResourceSpec *first;
              guint start = 0, first_edge;

              while (path[start] != dependency->index)
                start++;
              for (guint k = start; k < depth; k++)
                {
                  ResourceSpec *member = g_ptr_array_index (config->resources, path[k]);
                  g_string_append_printf (cycle, "%s -> ", member->id);
                }
              g_string_append (cycle, dependency->id);

              /* Reported where the cycle's first member names the next one. */
              first = g_ptr_array_index (config->resources, path[start]);
              first_edge = next_edge[start] - 1;
              key = g_strdup_printf ("resources[%u].depends-on[%u]", first->index, first_edge);
              set_key_error (error, EXO_CONFIG_ERROR_CYCLE, loader->source,
                             g_array_index (first->depends_lines, guint, first_edge), key,
                             "dependency cycle: %s", cycle->str);
              return FALSE;
            }
        }
    }

  g_assert (n_order == n);
  return TRUE;
}

static gboolean
load_document (Loader    *loader,
               JsonNode  *root,
               GError   **error)
{
  JsonObject *object;
  JsonNode *member;
  JsonArray *resources;
  guint n;

  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_WRONG_TYPE,
                   "%s:%u: expected an object at the top level, got %s",
                   loader->source, MAX (loader->last_line, 1), json_kind (root));
      return FALSE;
    }
  object = json_node_get_object (root);

  if (!check_keys (loader, object, NULL, top_level_keys, G_N_ELEMENTS (top_level_keys), error))
    return FALSE;

  if ((member = json_object_get_member (object, "node")) != NULL &&
      !load_node (loader, member, error))
    return FALSE;

  if ((member = json_object_get_member (object, "resources")) == NULL)
    return missing_key (loader, object, "resources", error);
  if (!get_array (loader, member, "resources", &resources, error))
    return FALSE;
  loader->config->resources_line = line_of (loader, member);

  n = json_array_get_length (resources);
  if (n > EXO_CONFIG_MAX_RESOURCES)
    {
      set_key_error (error, EXO_CONFIG_ERROR_LIMIT, loader->source, line_of (loader, member),
                     "resources", "%u resources are more than the limit of %u",
                     n, EXO_CONFIG_MAX_RESOURCES);
      return FALSE;
    }

  for (guint i = 0; i < n; i++)
    if (!load_resource (loader, i, json_array_get_element (resources, i), error))
      return FALSE;

  return check_dependencies (loader, error);
}

/**
 * exo_config_load_data:
 * @data: the JSON text
 * @len: its length in bytes, or -1 when it is nul-terminated
 * @source_name: (nullable): the name used in error messages, normally the
 *   file name
 * @lookup: maps a resource type name to its #GType
 * @lookup_data: data for @lookup
 * @error: return location for an error in %EXO_CONFIG_ERROR
 *
 * Parses and checks a config.  Every error names @source_name, the line
 * and the key (see %EXO_CONFIG_ERROR).
 *
 * Returns: (transfer full): the config, or %NULL with @error set
 */
ExoConfig *
exo_config_load_data (const char           *data,
                      gssize                len,
                      const char           *source_name,
                      ExoConfigTypeLookup   lookup,
                      gpointer              lookup_data,
                      GError              **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) json_error = NULL;
  g_autoptr(ExoConfig) config = NULL;
  Loader loader = { 0 };
  JsonNode *root;
  gboolean ok = FALSE;
  gsize size;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (lookup != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (source_name == NULL)
    source_name = "<data>";
  size = len < 0 ? strlen (data) : (gsize) len;

  if (size > EXO_CONFIG_MAX_FILE_SIZE)
    {
      g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_LIMIT,
                   "%s: the config is larger than the limit of %u bytes (1 MiB)",
                   source_name, EXO_CONFIG_MAX_FILE_SIZE);
      return NULL;
    }
  if (!prescan (data, size, source_name, error))
    return NULL;

  config = g_new0 (ExoConfig, 1);
  g_atomic_ref_count_init (&config->ref_count);
  config->source = g_strdup (source_name);
  config->node_id = g_strdup ("auto");
  config->resources = g_ptr_array_new_with_free_func (resource_spec_free);

  loader.source = config->source;
  loader.lookup = lookup;
  loader.lookup_data = lookup_data;
  loader.config = config;
  loader.node_lines = g_hash_table_new (NULL, NULL);
  loader.container_lines = g_hash_table_new (NULL, NULL);
  loader.member_counts = g_hash_table_new (NULL, NULL);
  loader.open_lines = g_array_new (FALSE, FALSE, sizeof (guint));
  loader.ids = g_hash_table_new (g_str_hash, g_str_equal);

  parser = json_parser_new ();
  g_signal_connect (parser, "object-start", G_CALLBACK (on_container_start), &loader);
  g_signal_connect (parser, "array-start", G_CALLBACK (on_container_start), &loader);
  g_signal_connect (parser, "object-end", G_CALLBACK (on_container_end), &loader);
  g_signal_connect (parser, "array-end", G_CALLBACK (on_container_end), &loader);
  g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member), &loader);
  g_signal_connect (parser, "array-element", G_CALLBACK (on_array_element), &loader);

  if (!json_parser_load_from_data (parser, size > 0 ? data : "", size, &json_error))
    set_syntax_error (&loader, json_error, error);
  else if ((root = json_parser_get_root (parser)) == NULL)
    g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_PARSE,
                 "%s:1: syntax error: the file holds no JSON value", source_name);
  else if (loader.n_top_levels > 1)
    g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_PARSE,
                 "%s:%u: syntax error: unexpected text after the top-level value",
                 source_name, loader.second_top_level_line);
  else if (loader.dup_object != NULL)
    {
      g_autoptr(GString) path = g_string_new (NULL);

      find_object_path (root, loader.dup_object, path);
      g_string_append_printf (path, "%s%s", path->len > 0 ? "." : "", loader.dup_name);
      set_key_error (error, EXO_CONFIG_ERROR_PARSE, source_name, loader.dup_line, path->str,
                     "key given twice in the same object");
    }
  else
    ok = load_document (&loader, root, error);

  g_hash_table_unref (loader.node_lines);
  g_hash_table_unref (loader.container_lines);
  g_hash_table_unref (loader.member_counts);
  g_array_unref (loader.open_lines);
  g_hash_table_unref (loader.ids);
  g_free (loader.dup_name);

  return ok ? g_steal_pointer (&config) : NULL;
}

static gboolean
read_limited (const char  *path,
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

/**
 * exo_config_load_file:
 * @path: the config file
 * @lookup: maps a resource type name to its #GType
 * @data: data for @lookup
 * @error: return location for an error in %EXO_CONFIG_ERROR
 *
 * Reads and checks a config file of at most %EXO_CONFIG_MAX_FILE_SIZE
 * bytes.  Messages name @path as given.
 *
 * Returns: (transfer full): the config, or %NULL with @error set
 */
ExoConfig *
exo_config_load_file (const char           *path,
                      ExoConfigTypeLookup   lookup,
                      gpointer              data,
                      GError              **error)
{
  g_autofree char *contents = NULL;
  gsize length = 0;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (lookup != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!read_limited (path, &contents, &length, error))
    return NULL;

  return exo_config_load_data (contents, length, path, lookup, data, error);
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                */

/**
 * exo_config_get_source_name:
 * @self: a config
 *
 * Returns: the file name (or source name) used in messages
 */
const char *
exo_config_get_source_name (ExoConfig *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->source;
}

/**
 * exo_config_get_node_id:
 * @self: a config
 *
 * Returns: `node.id`: `"auto"` (also when not given) or the id
 */
const char *
exo_config_get_node_id (ExoConfig *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->node_id;
}

/**
 * exo_config_get_node_name:
 * @self: a config
 *
 * Returns: (nullable): `node.name`, or %NULL when not given
 */
const char *
exo_config_get_node_name (ExoConfig *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->node_name;
}

/**
 * exo_config_get_cluster_key_file:
 * @self: a config
 *
 * Returns: (nullable): `node.cluster-key-file` as written (perhaps
 *   relative), or %NULL when not given
 */
const char *
exo_config_get_cluster_key_file (ExoConfig *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->cluster_key_file;
}

/**
 * exo_config_get_resource_types:
 * @self: a config
 *
 * Returns: (transfer full): the distinct resource type names, in the
 *   order of first use
 */
char **
exo_config_get_resource_types (ExoConfig *self)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  g_return_val_if_fail (self != NULL, NULL);

  for (guint i = 0; i < self->resources->len; i++)
    {
      ResourceSpec *spec = g_ptr_array_index (self->resources, i);

      if (g_hash_table_add (seen, spec->type_name))
        g_strv_builder_add (builder, spec->type_name);
    }
  return g_strv_builder_end (builder);
}

/**
 * exo_config_get_resource_ids:
 * @self: a config
 *
 * Returns: (transfer full): the resource ids, in file order
 */
char **
exo_config_get_resource_ids (ExoConfig *self)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  g_return_val_if_fail (self != NULL, NULL);

  for (guint i = 0; i < self->resources->len; i++)
    {
      ResourceSpec *spec = g_ptr_array_index (self->resources, i);
      g_strv_builder_add (builder, spec->id);
    }
  return g_strv_builder_end (builder);
}

/* ------------------------------------------------------------------------ */
/* Building                                                                 */

static ExoResource *
create_resource (ExoConfig     *self,
                 ResourceSpec  *spec,
                 GError       **error)
{
  guint n = 2 + spec->settings->len;
  g_autofree const char **names = g_new (const char *, n);
  g_autofree GValue *values = g_new0 (GValue, n);
  ExoResource *resource;

  names[0] = "id";
  g_value_init (&values[0], G_TYPE_STRING);
  g_value_set_static_string (&values[0], spec->id);
  names[1] = "resource-type";
  g_value_init (&values[1], G_TYPE_STRING);
  g_value_set_static_string (&values[1], spec->type_name);
  for (guint i = 0; i < spec->settings->len; i++)
    {
      Setting *setting = g_ptr_array_index (spec->settings, i);

      names[2 + i] = setting->name;
      g_value_init (&values[2 + i], G_VALUE_TYPE (&setting->value));
      g_value_copy (&setting->value, &values[2 + i]);
    }

  resource = EXO_RESOURCE (g_object_new_with_properties (spec->type, n, names, values));

  for (guint i = 0; i < n; i++)
    g_value_unset (&values[i]);

  if (spec->display_name != NULL)
    exo_resource_set_display_name (resource, spec->display_name);
  if (spec->has_init_timeout)
    exo_resource_set_init_timeout (resource, spec->init_timeout_ms);

  if (EXO_IS_MANAGED_RESOURCE (resource))
    {
      ExoManagedResource *managed = EXO_MANAGED_RESOURCE (resource);

      if (spec->has_health_interval)
        exo_managed_resource_set_health_check_interval (managed, spec->health_interval_ms);
      for (gsize i = 0; i < G_N_ELEMENTS (supervision_keys); i++)
        if (spec->supervision_mask & (1u << i))
          g_object_set (managed, supervision_keys[i].key, spec->supervision[i], NULL);

      if (spec->retry_mask != 0)
        {
          /* Keys not given keep the type's own defaults. */
          g_autoptr(ExoRetryPolicy) policy = exo_managed_resource_get_retry_policy (managed);
          g_autoptr(GError) local_error = NULL;

          if (spec->retry_mask & RETRY_MAX_RETRIES)
            policy->max_retries = spec->retry.max_retries;
          if (spec->retry_mask & RETRY_INITIAL_DELAY)
            policy->initial_delay_ms = spec->retry.initial_delay_ms;
          if (spec->retry_mask & RETRY_MAX_DELAY)
            policy->max_delay_ms = spec->retry.max_delay_ms;
          if (spec->retry_mask & RETRY_MULTIPLIER)
            policy->multiplier = spec->retry.multiplier;
          if (spec->retry_mask & RETRY_JITTER)
            policy->jitter = spec->retry.jitter;
          if (spec->retry_mask & RETRY_BURST)
            policy->restart_burst = spec->retry.restart_burst;
          if (spec->retry_mask & RETRY_INTERVAL)
            policy->restart_interval_ms = spec->retry.restart_interval_ms;

          if (!exo_retry_policy_validate (policy, &local_error))
            {
              g_autofree char *key = g_strdup_printf ("resources[%u].retry", spec->index);

              set_key_error (error, EXO_CONFIG_ERROR_INVALID, self->source, spec->retry_line, key,
                             "%s (with the defaults of type '%s')",
                             local_error->message, spec->type_name);
              g_object_unref (resource);
              return NULL;
            }
          exo_managed_resource_set_retry_policy (managed, policy);
        }
    }

  if (EXO_IS_RESOURCE_GROUP (resource))
    {
      ExoResourceGroup *group = EXO_RESOURCE_GROUP (resource);

      if (spec->has_strategy)
        exo_resource_group_set_strategy (group, spec->strategy);
      if (spec->has_group_burst)
        exo_resource_group_set_restart_burst (group, spec->group_burst);
      if (spec->has_group_interval)
        exo_resource_group_set_restart_interval (group, spec->group_interval_ms);
    }

  return resource;
}

static void
remove_added (ExoResourceGroup *root,
              GPtrArray        *added)
{
  /* Never initialized, so removal has nothing to wait for. */
  for (guint i = added->len; i > 0; i--)
    exo_resource_group_remove_async (root, g_ptr_array_index (added, i - 1), TRUE,
                                     NULL, NULL, NULL);
}

/**
 * exo_config_build:
 * @self: a loaded config
 * @root: the group the resources are added to
 * @error: return location for an error in %EXO_CONFIG_ERROR
 *
 * Creates every resource of the config (with g_object_new_with_properties(),
 * so construct-only settings work), applies display names, timeouts, retry
 * policies, health-check intervals and group strategies, and adds them to
 * @root with their dependencies.  Nothing is initialized.
 *
 * All resources are created before any is added; when something is
 * refused, @root is left as it was (members already added are removed
 * again).  Ids that are already members of @root, or @root's own id, are
 * refused with %EXO_CONFIG_ERROR_DUPLICATE_ID.
 *
 * Can be called more than once (each call creates new resources).
 *
 * Returns: %TRUE on success
 */
gboolean
exo_config_build (ExoConfig         *self,
                  ExoResourceGroup  *root,
                  GError           **error)
{
  g_autoptr(GHashTable) existing = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) members = NULL;
  g_autoptr(GPtrArray) built = NULL;
  g_autoptr(GPtrArray) added = NULL;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (root), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* The group would refuse these too, but only after others were added. */
  members = exo_resource_group_get_members (root);
  for (guint i = 0; members != NULL && i < members->len; i++)
    g_hash_table_add (existing, (gpointer) exo_resource_get_id (g_ptr_array_index (members, i)));
  for (guint i = 0; i < self->resources->len; i++)
    {
      ResourceSpec *spec = g_ptr_array_index (self->resources, i);
      g_autofree char *key = g_strdup_printf ("resources[%u].id", i);

      if (g_strcmp0 (spec->id, exo_resource_get_id (EXO_RESOURCE (root))) == 0)
        {
          set_key_error (error, EXO_CONFIG_ERROR_DUPLICATE_ID, self->source, spec->id_line, key,
                         "'%s' is the id of the group the config is built into", spec->id);
          return FALSE;
        }
      if (g_hash_table_contains (existing, spec->id))
        {
          set_key_error (error, EXO_CONFIG_ERROR_DUPLICATE_ID, self->source, spec->id_line, key,
                         "'%s' is already a member of group '%s'",
                         spec->id, exo_resource_get_id (EXO_RESOURCE (root)));
          return FALSE;
        }
    }

  built = g_ptr_array_new_full (self->resources->len, g_object_unref);
  for (guint i = 0; i < self->resources->len; i++)
    {
      ExoResource *resource = create_resource (self, g_ptr_array_index (self->resources, i), error);

      if (resource == NULL)
        return FALSE;
      g_ptr_array_add (built, resource);
    }

  added = g_ptr_array_new ();
  for (guint k = 0; k < self->resources->len; k++)
    {
      ResourceSpec *spec = g_ptr_array_index (self->resources, self->order[k]);

      if (!exo_resource_group_add (root, g_ptr_array_index (built, spec->index),
                                   (const char * const *) spec->depends_on->pdata,
                                   &local_error))
        {
          g_autofree char *key = g_strdup_printf ("resources[%u]", spec->index);

          remove_added (root, added);
          set_key_error (error, EXO_CONFIG_ERROR_INVALID, self->source, spec->line, key,
                         "%s", local_error->message);
          return FALSE;
        }
      g_ptr_array_add (added, spec->id);
    }

  if (!exo_resource_group_validate (root, &local_error))
    {
      remove_added (root, added);
      set_key_error (error, EXO_CONFIG_ERROR_INVALID, self->source, self->resources_line,
                     "resources", "%s", local_error->message);
      return FALSE;
    }

  return TRUE;
}
