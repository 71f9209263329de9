/* exoctl.c: the command-line client of exo-node (docs/design.md §7).
 *
 * A plain D-Bus client: it links GLib, GIO and json-glib, never libexo.
 * Everything it shows comes from one GetManagedObjects call on
 * /org/exo/Node1 and, for `node` and `plugins`, one Properties.GetAll of
 * org.exo.Node1; it never makes a call per resource.
 *
 * Exit status: 0 ok; 1 a failed method, or something unhealthy (`health`);
 * 2 a usage error; 3 no exo-node is running (or no bus); 4 an unknown id.
 * docs/exoctl.md is the reference.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>
#include <glib-unix.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Only the version macros; exoctl does not link libexo. */
#define EXO_INSIDE
#include <exo/exo-version.h>
#undef EXO_INSIDE

#define DEFAULT_BUS_NAME   "org.exo.Node1"
#define NODE_PATH          "/org/exo/Node1"
#define RESOURCE_PREFIX    "/org/exo/Node1/resource/"
#define IFACE_NODE         "org.exo.Node1"
#define IFACE_RESOURCE     "org.exo.Resource1"
#define IFACE_POOL         "org.exo.ResourcePool1"
#define IFACE_GROUP        "org.exo.ResourceGroup1"
#define IFACE_OBJ_MANAGER  "org.freedesktop.DBus.ObjectManager"
#define IFACE_PROPERTIES   "org.freedesktop.DBus.Properties"

enum
{
  EXIT_OK          = 0,
  EXIT_FAILED      = 1,
  EXIT_USAGE       = 2,
  EXIT_NOT_RUNNING = 3,
  EXIT_NO_RESOURCE = 4,
};

#define COLOR_RESET  "\033[0m"
#define COLOR_BOLD   "\033[1m"
#define COLOR_GREEN  "\033[0;32m"
#define COLOR_YELLOW "\033[0;33m"
#define COLOR_RED    "\033[1;31m"
#define COLOR_CYAN   "\033[0;36m"
#define COLOR_GREY   "\033[0;90m"

/* The pool properties, in the order of docs/design.md §4, with their JSON keys. */
static const struct
{
  const char *dbus_name;
  const char *json_key;
} pool_props[] = {
  { "MinSize",   "min_size" },
  { "MaxSize",   "max_size" },
  { "Size",      "size" },
  { "Idle",      "idle" },
  { "InUse",     "in_use" },
  { "Waiting",   "waiting" },
  { "Acquired",  "acquired" },
  { "Timeouts",  "timeouts" },
  { "Created",   "created" },
  { "Destroyed", "destroyed" },
};

static const char usage_text[] =
  "Usage: exoctl [OPTION...] COMMAND [ARG]\n"
  "\n"
  "Query and control a running exo-node over D-Bus.\n"
  "\n"
  "Commands:\n"
  "  list                 List every resource with its state\n"
  "  status ID            Show all properties and metrics of one resource\n"
  "  health               Show unhealthy resources; exit 1 when there is one\n"
  "  start ID             Initialize a resource\n"
  "  stop ID              Clean up a resource\n"
  "  restart ID           Restart a resource\n"
  "  tree                 Show groups and dependencies as a tree\n"
  "  watch                Print state changes as they happen\n"
  "  plugins              List the plugins the node loaded\n"
  "  node                 Show the node's id, version, state and topology\n"
  "\n"
  "Options:\n"
  "  --session            Talk to the node on the session bus (the default)\n"
  "  --system             Talk to the node on the system bus\n"
  "  --bus-name NAME      The node's bus name (default " DEFAULT_BUS_NAME ")\n"
  "  --json               Print JSON for programs instead of tables\n"
  "  --count N            watch: end after N state changes\n"
  "  --timeout SEC        watch: end after SEC seconds\n"
  "  --no-color           Never colour the output (also: NO_COLOR set)\n"
  "  -h, --help           Show this help and exit\n"
  "  --version            Show the version and exit\n"
  "\n"
  "Exit status: 0 ok; 1 a failed method or an unhealthy node (health);\n"
  "2 usage error; 3 no exo-node running; 4 no such resource.\n";

static const char short_usage_text[] =
  "Usage: exoctl [--session|--system] [--bus-name NAME] [--json] COMMAND [ID]\n"
  "Commands: list, status ID, health, start ID, stop ID, restart ID, tree,\n"
  "watch [--count N] [--timeout SEC], plugins, node.  See 'exoctl --help'.\n";

typedef struct
{
  /* options */
  gboolean         session;
  gboolean         system;
  gboolean         json;
  gboolean         no_color;
  gboolean         help;
  gboolean         version;
  char            *bus_name;
  char            *count_arg;
  char            *timeout_arg;
  int              count;        /* 0: not given */
  double           timeout;      /* 0: not given */

  GBusType         bus_type;
  GDBusConnection *connection;
  gboolean         color;        /* stdout is a tty and NO_COLOR is unset */
  gboolean         utf8;
  int              columns;      /* 0: do not truncate */
} Ctl;

typedef struct
{
  char     *path;
  char     *id;
  char     *type;
  char     *display_name;
  char     *state;
  char     *last_error;
  char     *result;            /* "success", "start-limit-hit", … */
  gboolean  healthy;
  guint32   error_count;
  guint32   attempts;
  guint64   state_changed_at;
  guint64   initialized_at;
  char    **depends_on;        /* object paths */
  GVariant *metrics;           /* a{sv}, never NULL */
  GVariant *pool;              /* a{sv} of org.exo.ResourcePool1, or NULL */
  gboolean  is_group;
  char    **members;           /* object paths, groups only */
} Resource;

typedef struct
{
  GPtrArray  *resources;       /* Resource*, sorted by id */
  GHashTable *by_path;         /* path -> Resource* (borrowed) */
} Snapshot;

/* ---------------------------------------------------------------- helpers */

static void
resource_free (Resource *r)
{
  g_free (r->path);
  g_free (r->id);
  g_free (r->type);
  g_free (r->display_name);
  g_free (r->state);
  g_free (r->last_error);
  g_free (r->result);
  g_strfreev (r->depends_on);
  g_clear_pointer (&r->metrics, g_variant_unref);
  g_clear_pointer (&r->pool, g_variant_unref);
  g_strfreev (r->members);
  g_free (r);
}

static void
snapshot_free (Snapshot *snap)
{
  g_clear_pointer (&snap->by_path, g_hash_table_unref);
  g_clear_pointer (&snap->resources, g_ptr_array_unref);
  g_free (snap);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Snapshot, snapshot_free)

static const char *
bus_label (Ctl *ctl)
{
  return ctl->bus_type == G_BUS_TYPE_SYSTEM ? "system bus" : "session bus";
}

static int G_GNUC_PRINTF (2, 3)
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

static int G_GNUC_PRINTF (1, 2)
usage_error (const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  fprintf (stderr, "exoctl: %s\n%s", message, short_usage_text);
  return EXIT_USAGE;
}

static int
not_running (Ctl *ctl, const char *why)
{
  if (why != NULL)
    return fail (EXIT_NOT_RUNNING, "no exo-node is running on the %s (name %s): %s",
                 bus_label (ctl), ctl->bus_name, why);
  return fail (EXIT_NOT_RUNNING, "no exo-node is running on the %s (name %s)",
               bus_label (ctl), ctl->bus_name);
}

static gboolean
error_is_not_running (const GError *error)
{
  return g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER);
}

/* Whether the node's bus name has an owner now. */
static gboolean
node_has_owner (Ctl *ctl)
{
  g_autoptr(GVariant) reply = NULL;
  gboolean owned;

  reply = g_dbus_connection_call_sync (ctl->connection, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "NameHasOwner", g_variant_new ("(s)", ctl->bus_name),
                                       G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE, -1,
                                       NULL, NULL);
  if (reply == NULL)
    return TRUE;     /* cannot tell: report the original error */
  g_variant_get (reply, "(b)", &owned);
  return owned;
}

/* Reports a D-Bus error on one line and returns the exit status for it. */
static int
report_dbus_error (Ctl *ctl, GError *error, const char *what)
{
  /* No owner, or the node went away before it answered. */
  if (error_is_not_running (error) ||
      (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY) && !node_has_owner (ctl)))
    return not_running (ctl, NULL);

  g_dbus_error_strip_remote_error (error);
  if (what != NULL)
    return fail (EXIT_FAILED, "%s: %s", what, error->message);
  return fail (EXIT_FAILED, "%s", error->message);
}

/* A copy of @s that is safe to print on a terminal: no control characters,
 * valid UTF-8.  Strings come from another process. */
static char *
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

static const char *
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

static void
print_colored (Ctl *ctl, const char *color, const char *text)
{
  if (ctl->color && color != NULL)
    printf ("%s%s%s", color, text, COLOR_RESET);
  else
    fputs (text, stdout);
}

static const char *
glyph (Ctl *ctl, const char *utf8, const char *ascii)
{
  return ctl->utf8 ? utf8 : ascii;
}

/* "2024-05-01 12:00:00 CEST (3min 2s ago)", or "never" for 0. */
static char *
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
static char *
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

typedef struct
{
  guint   n_cols;
  GArray *cells;               /* Cell; row-major, first row the header */
} Table;

static void
cell_clear (gpointer data)
{
  Cell *cell = data;

  g_free (cell->text);
}

static Table *
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

static void
table_free (Table *table)
{
  g_array_unref (table->cells);
  g_free (table);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Table, table_free)

/* Appends one cell; @text is cleaned of control characters. */
static void
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

static void
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

/* --------------------------------------------------------------- snapshot */

static char *
lookup_string (GVariant *props, const char *key)
{
  g_autoptr(GVariant) v = NULL;

  if (props == NULL)
    return NULL;
  v = g_variant_lookup_value (props, key, G_VARIANT_TYPE_STRING);
  return v != NULL ? g_variant_dup_string (v, NULL) : NULL;
}

static guint64
lookup_uint (GVariant *props, const char *key)
{
  g_autoptr(GVariant) v = NULL;

  if (props == NULL)
    return 0;
  v = g_variant_lookup_value (props, key, NULL);
  if (v == NULL)
    return 0;
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT64))
    return g_variant_get_uint64 (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_INT32))
    return (guint64) MAX (g_variant_get_int32 (v), 0);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_INT64))
    return (guint64) MAX (g_variant_get_int64 (v), 0);
  return 0;
}

static char **
lookup_objv (GVariant *props, const char *key)
{
  g_autoptr(GVariant) v = NULL;

  if (props == NULL)
    return g_new0 (char *, 1);
  v = g_variant_lookup_value (props, key, G_VARIANT_TYPE_OBJECT_PATH_ARRAY);
  return v != NULL ? g_variant_dup_objv (v, NULL) : g_new0 (char *, 1);
}

/* The id a resource path stands for when the object itself is unknown. */
static char *
id_from_path (const char *path)
{
  if (g_str_has_prefix (path, RESOURCE_PREFIX))
    {
      guint8 *id = g_dbus_unescape_object_path (path + strlen (RESOURCE_PREFIX));

      if (id != NULL)
        {
          char *valid = g_utf8_make_valid ((const char *) id, -1);
          g_free (id);
          return valid;
        }
    }
  return g_strdup (path);
}

static Resource *
resource_new (const char *path, GVariant *interfaces)
{
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GVariant) healthy = NULL;
  g_autoptr(GVariant) group = NULL;
  Resource *r;

  props = g_variant_lookup_value (interfaces, IFACE_RESOURCE, G_VARIANT_TYPE_VARDICT);
  if (props == NULL)
    return NULL;

  r = g_new0 (Resource, 1);
  r->path = g_strdup (path);
  r->id = lookup_string (props, "Id");
  if (r->id == NULL || r->id[0] == '\0')
    {
      g_free (r->id);
      r->id = id_from_path (path);
    }
  r->type = lookup_string (props, "Type");
  r->display_name = lookup_string (props, "DisplayName");
  r->state = lookup_string (props, "State");
  if (r->state == NULL)
    r->state = g_strdup ("unknown");
  r->last_error = lookup_string (props, "LastError");
  r->result = lookup_string (props, "Result");
  if (r->result == NULL || r->result[0] == '\0')
    {
      g_free (r->result);
      r->result = g_strdup ("success");
    }
  healthy = g_variant_lookup_value (props, "Healthy", G_VARIANT_TYPE_BOOLEAN);
  r->healthy = healthy != NULL && g_variant_get_boolean (healthy);
  r->error_count = (guint32) lookup_uint (props, "ErrorCount");
  r->attempts = (guint32) lookup_uint (props, "Attempts");
  r->state_changed_at = lookup_uint (props, "StateChangedAt");
  r->initialized_at = lookup_uint (props, "InitializedAt");
  r->depends_on = lookup_objv (props, "DependsOn");
  r->metrics = g_variant_lookup_value (props, "Metrics", G_VARIANT_TYPE_VARDICT);
  if (r->metrics == NULL)
    r->metrics = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));

  r->pool = g_variant_lookup_value (interfaces, IFACE_POOL, G_VARIANT_TYPE_VARDICT);
  group = g_variant_lookup_value (interfaces, IFACE_GROUP, G_VARIANT_TYPE_VARDICT);
  r->is_group = group != NULL;
  if (r->is_group)
    r->members = lookup_objv (group, "Members");

  return r;
}

static int
compare_resources (gconstpointer a, gconstpointer b)
{
  const Resource *ra = *(const Resource * const *) a;
  const Resource *rb = *(const Resource * const *) b;
  int cmp = g_strcmp0 (ra->id, rb->id);

  return cmp != 0 ? cmp : g_strcmp0 (ra->path, rb->path);
}

static Snapshot *
snapshot_new (GVariant *objects)
{
  Snapshot *snap = g_new0 (Snapshot, 1);
  GVariantIter iter;
  const char *path;
  GVariant *interfaces;

  snap->resources = g_ptr_array_new_with_free_func ((GDestroyNotify) resource_free);
  snap->by_path = g_hash_table_new (g_str_hash, g_str_equal);

  g_variant_iter_init (&iter, objects);
  while (g_variant_iter_next (&iter, "{&o@a{sa{sv}}}", &path, &interfaces))
    {
      Resource *r = resource_new (path, interfaces);

      if (r != NULL)
        g_ptr_array_add (snap->resources, r);
      g_variant_unref (interfaces);
    }

  g_ptr_array_sort (snap->resources, compare_resources);
  for (guint i = 0; i < snap->resources->len; i++)
    {
      Resource *r = g_ptr_array_index (snap->resources, i);
      g_hash_table_insert (snap->by_path, r->path, r);
    }
  return snap;
}

static Resource *
snapshot_find (Snapshot *snap, const char *id)
{
  for (guint i = 0; i < snap->resources->len; i++)
    {
      Resource *r = g_ptr_array_index (snap->resources, i);
      if (g_str_equal (r->id, id))
        return r;
    }
  return NULL;
}

/* The id for an object path, known or not. */
static char *
snapshot_id (Snapshot *snap, const char *path)
{
  Resource *r = g_hash_table_lookup (snap->by_path, path);

  return r != NULL ? g_strdup (r->id) : id_from_path (path);
}

/* The one GetManagedObjects call.  Returns an exit status. */
static int
fetch_snapshot (Ctl *ctl, Snapshot **out)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) objects = NULL;

  reply = g_dbus_connection_call_sync (ctl->connection, ctl->bus_name, NODE_PATH,
                                       IFACE_OBJ_MANAGER, "GetManagedObjects", NULL,
                                       G_VARIANT_TYPE ("(a{oa{sa{sv}}})"),
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, &error);
  if (reply == NULL)
    return report_dbus_error (ctl, error, "cannot read the resources");

  objects = g_variant_get_child_value (reply, 0);
  *out = snapshot_new (objects);
  return EXIT_OK;
}

/* The one Properties.GetAll of org.exo.Node1.  Returns an exit status. */
static int
fetch_node (Ctl *ctl, GVariant **out)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_sync (ctl->connection, ctl->bus_name, NODE_PATH,
                                       IFACE_PROPERTIES, "GetAll",
                                       g_variant_new ("(s)", IFACE_NODE),
                                       G_VARIANT_TYPE ("(a{sv})"),
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, &error);
  if (reply == NULL)
    return report_dbus_error (ctl, error, "cannot read the node");

  *out = g_variant_get_child_value (reply, 0);
  return EXIT_OK;
}

/* ------------------------------------------------------------------- json */

static void
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

static JsonNode *
paths_to_ids_json (Snapshot *snap, char **paths)
{
  JsonArray *array = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; paths != NULL && paths[i] != NULL; i++)
    {
      g_autofree char *id = snapshot_id (snap, paths[i]);
      json_array_add_string_element (array, id);
    }
  json_node_take_array (node, array);
  return node;
}

static JsonNode *
resource_to_json (Snapshot *snap, Resource *r)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, r->id);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, r->type != NULL ? r->type : "");
  json_builder_set_member_name (b, "display_name");
  json_builder_add_string_value (b, r->display_name != NULL ? r->display_name : "");
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, r->state);
  json_builder_set_member_name (b, "healthy");
  json_builder_add_boolean_value (b, r->healthy);
  json_builder_set_member_name (b, "last_error");
  json_builder_add_string_value (b, r->last_error != NULL ? r->last_error : "");
  json_builder_set_member_name (b, "result");
  json_builder_add_string_value (b, r->result);
  json_builder_set_member_name (b, "error_count");
  json_builder_add_int_value (b, r->error_count);
  json_builder_set_member_name (b, "attempts");
  json_builder_add_int_value (b, r->attempts);
  json_builder_set_member_name (b, "state_changed_at");
  json_builder_add_int_value (b, (gint64) r->state_changed_at);
  json_builder_set_member_name (b, "initialized_at");
  json_builder_add_int_value (b, (gint64) r->initialized_at);
  json_builder_set_member_name (b, "depends_on");
  json_builder_add_value (b, paths_to_ids_json (snap, r->depends_on));
  json_builder_set_member_name (b, "metrics");
  json_builder_add_value (b, json_gvariant_serialize (r->metrics));
  if (r->pool != NULL)
    {
      json_builder_set_member_name (b, "pool");
      json_builder_begin_object (b);
      for (gsize i = 0; i < G_N_ELEMENTS (pool_props); i++)
        {
          json_builder_set_member_name (b, pool_props[i].json_key);
          json_builder_add_int_value (b, (gint64) lookup_uint (r->pool, pool_props[i].dbus_name));
        }
      json_builder_end_object (b);
    }
  if (r->is_group)
    {
      json_builder_set_member_name (b, "members");
      json_builder_add_value (b, paths_to_ids_json (snap, r->members));
    }
  json_builder_set_member_name (b, "object_path");
  json_builder_add_string_value (b, r->path);
  json_builder_end_object (b);

  return json_builder_get_root (b);
}

/* --------------------------------------------------------------- commands */

static int
cmd_list (Ctl *ctl)
{
  g_autoptr(Snapshot) snap = NULL;
  g_autoptr(Table) table = NULL;
  int rc;

  if ((rc = fetch_snapshot (ctl, &snap)) != EXIT_OK)
    return rc;

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = json_node_new (JSON_NODE_ARRAY);
      JsonArray *array = json_array_new ();

      for (guint i = 0; i < snap->resources->len; i++)
        json_array_add_element (array, resource_to_json (snap, g_ptr_array_index (snap->resources, i)));
      json_node_take_array (root, array);
      print_json (root, TRUE);
      return EXIT_OK;
    }

  table = table_new (6, "ID", "TYPE", "STATE", "HEALTHY", "ERRORS", "LAST ERROR");
  for (guint i = 0; i < snap->resources->len; i++)
    {
      Resource *r = g_ptr_array_index (snap->resources, i);
      g_autofree char *errors = g_strdup_printf ("%u", r->error_count);

      g_autofree char *state = NULL;

      /* A give-up shows where one looks first, like systemctl's "failed
       * (Result: start-limit-hit)". */
      if (!g_str_equal (r->result, "success") && g_str_equal (r->state, "error"))
        state = g_strdup_printf ("%s (%s)", r->state, r->result);
      else
        state = g_strdup (r->state);
      table_add (table, r->id, NULL);
      table_add (table, r->type, NULL);
      table_add (table, state, state_color (ctl, r->state));
      table_add (table, r->healthy ? "yes" : "no",
                 ctl->color ? (r->healthy ? COLOR_GREEN : COLOR_RED) : NULL);
      table_add (table, errors, NULL);
      table_add (table, r->last_error != NULL && r->last_error[0] != '\0' ? r->last_error : "-",
                 NULL);
    }
  table_print (ctl, table);
  printf ("\n%u resource%s listed.\n", snap->resources->len,
          snap->resources->len == 1 ? "" : "s");
  return EXIT_OK;
}

typedef struct
{
  const char *key;
  char       *value;           /* may hold newlines */
  const char *color;
} Field;

static void
fields_add (GArray *fields, const char *key, char *value, const char *color)
{
  Field f = { key, value, color };

  g_array_append_val (fields, f);
}

static void
field_clear (gpointer data)
{
  g_free (((Field *) data)->value);
}

static void
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

static char *
join_ids (Snapshot *snap, char **paths)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; paths != NULL && paths[i] != NULL; i++)
    {
      g_autofree char *id = snapshot_id (snap, paths[i]);
      g_autofree char *shown = clean (id);

      if (i > 0)
        g_string_append (s, ", ");
      g_string_append (s, shown);
    }
  if (s->len == 0)
    g_string_append (s, "-");
  return g_string_free (s, FALSE);
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

static int
cmd_status (Ctl *ctl, const char *id)
{
  g_autoptr(Snapshot) snap = NULL;
  g_autoptr(GArray) fields = NULL;
  g_autofree char *title_id = NULL;
  g_autofree char *title_name = NULL;
  Resource *r;
  int rc;

  if ((rc = fetch_snapshot (ctl, &snap)) != EXIT_OK)
    return rc;
  r = snapshot_find (snap, id);
  if (r == NULL)
    return fail (EXIT_NO_RESOURCE, "no resource '%s'", id);

  if (ctl->json)
    {
      g_autoptr(JsonNode) node = resource_to_json (snap, r);
      print_json (node, TRUE);
      return EXIT_OK;
    }

  title_id = clean (r->id);
  title_name = clean (r->display_name);
  print_colored (ctl, state_color (ctl, r->state), glyph (ctl, "●", "*"));
  printf (" %s", title_id);
  if (title_name[0] != '\0' && !g_str_equal (title_name, title_id))
    printf (" %s %s", glyph (ctl, "—", "-"), title_name);
  putchar ('\n');

  fields = g_array_new (FALSE, TRUE, sizeof (Field));
  g_array_set_clear_func (fields, field_clear);
  fields_add (fields, "Type", clean (r->type), NULL);
  fields_add (fields, "Display name", clean (r->display_name), NULL);
  fields_add (fields, "State", clean (r->state), state_color (ctl, r->state));
  fields_add (fields, "Healthy", g_strdup (r->healthy ? "yes" : "no"),
              ctl->color ? (r->healthy ? COLOR_GREEN : COLOR_RED) : NULL);
  if (g_str_equal (r->result, "start-limit-hit"))
    fields_add (fields, "Result",
                g_strdup ("start-limit-hit (given up: restart limit hit; "
                          "`exoctl restart` starts it again)"),
                ctl->color ? COLOR_RED : NULL);
  else
    fields_add (fields, "Result", clean (r->result),
                !g_str_equal (r->result, "success") && ctl->color ? COLOR_RED : NULL);
  fields_add (fields, "Last error",
              r->last_error != NULL && r->last_error[0] != '\0' ? clean (r->last_error) : g_strdup ("-"),
              r->last_error != NULL && r->last_error[0] != '\0' && ctl->color ? COLOR_RED : NULL);
  fields_add (fields, "Errors", g_strdup_printf ("%u", r->error_count), NULL);
  fields_add (fields, "Attempts", g_strdup_printf ("%u", r->attempts), NULL);
  fields_add (fields, "State changed", format_time (r->state_changed_at, TRUE), NULL);
  fields_add (fields, "Initialized", format_time (r->initialized_at, TRUE), NULL);
  fields_add (fields, "Depends on", join_ids (snap, r->depends_on), NULL);
  if (r->is_group)
    fields_add (fields, "Members", join_ids (snap, r->members), NULL);
  if (r->pool != NULL)
    {
      fields_add (fields, "Pool",
                  g_strdup_printf ("size %" G_GUINT64_FORMAT " (min %" G_GUINT64_FORMAT
                                   ", max %" G_GUINT64_FORMAT "), idle %" G_GUINT64_FORMAT
                                   ", in use %" G_GUINT64_FORMAT ", waiting %" G_GUINT64_FORMAT,
                                   lookup_uint (r->pool, "Size"), lookup_uint (r->pool, "MinSize"),
                                   lookup_uint (r->pool, "MaxSize"), lookup_uint (r->pool, "Idle"),
                                   lookup_uint (r->pool, "InUse"), lookup_uint (r->pool, "Waiting")),
                  NULL);
      fields_add (fields, "Pool totals",
                  g_strdup_printf ("acquired %" G_GUINT64_FORMAT ", timeouts %" G_GUINT64_FORMAT
                                   ", created %" G_GUINT64_FORMAT ", destroyed %" G_GUINT64_FORMAT,
                                   lookup_uint (r->pool, "Acquired"), lookup_uint (r->pool, "Timeouts"),
                                   lookup_uint (r->pool, "Created"), lookup_uint (r->pool, "Destroyed")),
                  NULL);
    }

  {
    GString *metrics = g_string_new (NULL);
    GVariantIter iter;
    const char *key;
    GVariant *value;
    g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);

    g_variant_iter_init (&iter, r->metrics);
    while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
      {
        g_autofree char *shown_key = clean (key);
        g_autofree char *shown = format_value (value);

        g_ptr_array_add (lines, g_strdup_printf ("%s: %s", shown_key, shown));
        g_variant_unref (value);
      }
    g_ptr_array_sort (lines, compare_strings);
    for (guint i = 0; i < lines->len; i++)
      {
        if (i > 0)
          g_string_append_c (metrics, '\n');
        g_string_append (metrics, g_ptr_array_index (lines, i));
      }
    if (metrics->len == 0)
      g_string_append (metrics, "-");
    fields_add (fields, "Metrics", g_string_free (metrics, FALSE), NULL);
  }
  fields_add (fields, "Object path", g_strdup (r->path), NULL);

  fields_print (ctl, fields);
  return EXIT_OK;
}

static int
cmd_health (Ctl *ctl)
{
  g_autoptr(Snapshot) snap = NULL;
  g_autoptr(GPtrArray) unhealthy = g_ptr_array_new ();
  int rc;

  if ((rc = fetch_snapshot (ctl, &snap)) != EXIT_OK)
    return rc;

  for (guint i = 0; i < snap->resources->len; i++)
    {
      Resource *r = g_ptr_array_index (snap->resources, i);
      if (!r->healthy)
        g_ptr_array_add (unhealthy, r);
    }

  if (ctl->json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "healthy");
      json_builder_add_boolean_value (b, unhealthy->len == 0);
      json_builder_set_member_name (b, "unhealthy");
      json_builder_begin_array (b);
      for (guint i = 0; i < unhealthy->len; i++)
        json_builder_add_string_value (b, ((Resource *) g_ptr_array_index (unhealthy, i))->id);
      json_builder_end_array (b);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      print_json (root, TRUE);
    }
  else if (unhealthy->len == 0)
    {
      print_colored (ctl, COLOR_GREEN, "healthy");
      printf (": all %u resource%s ready.\n", snap->resources->len,
              snap->resources->len == 1 ? " is" : "s are");
    }
  else
    {
      g_autoptr(Table) table = table_new (3, "ID", "STATE", "LAST ERROR");

      for (guint i = 0; i < unhealthy->len; i++)
        {
          Resource *r = g_ptr_array_index (unhealthy, i);

          table_add (table, r->id, NULL);
          table_add (table, r->state, state_color (ctl, r->state));
          table_add (table, r->last_error != NULL && r->last_error[0] != '\0' ? r->last_error : "-",
                     NULL);
        }
      table_print (ctl, table);
      putchar ('\n');
      print_colored (ctl, COLOR_RED, "unhealthy");
      printf (": %u of %u resource%s not ready.\n", unhealthy->len, snap->resources->len,
              snap->resources->len == 1 ? "" : "s");
    }

  return unhealthy->len == 0 ? EXIT_OK : EXIT_FAILED;
}

static int
cmd_method (Ctl *ctl, const char *id, const char *method, const char *verb)
{
  g_autoptr(Snapshot) snap = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  Resource *r;
  int rc;

  if ((rc = fetch_snapshot (ctl, &snap)) != EXIT_OK)
    return rc;
  r = snapshot_find (snap, id);
  if (r == NULL)
    return fail (EXIT_NO_RESOURCE, "no resource '%s'", id);

  /* Initialize and Cleanup take as long as the resource takes; the node's
   * own timeouts bound them. */
  reply = g_dbus_connection_call_sync (ctl->connection, ctl->bus_name, r->path,
                                       IFACE_RESOURCE, method, NULL, G_VARIANT_TYPE_UNIT,
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, G_MAXINT, NULL, &error);
  if (reply == NULL)
    {
      g_autofree char *what = g_strdup_printf ("cannot %s '%s'", verb, id);
      return report_dbus_error (ctl, error, what);
    }
  return EXIT_OK;
}

/* ------------------------------------------------------------------- tree */

/* The children of @r in the people's tree: for a group, those members no
 * other member depends on (the rest appear under them); then what @r
 * depends on. */
static GPtrArray *
tree_children (Snapshot *snap, Resource *r)
{
  GPtrArray *children = g_ptr_array_new ();     /* paths, borrowed from @snap */

  if (r->is_group && r->members != NULL)
    {
      g_autoptr(GHashTable) needed = g_hash_table_new (g_str_hash, g_str_equal);

      for (guint i = 0; r->members[i] != NULL; i++)
        {
          Resource *m = g_hash_table_lookup (snap->by_path, r->members[i]);
          if (m == NULL)
            continue;
          for (guint d = 0; m->depends_on[d] != NULL; d++)
            g_hash_table_add (needed, m->depends_on[d]);
        }
      for (guint i = 0; r->members[i] != NULL; i++)
        if (!g_hash_table_contains (needed, r->members[i]))
          g_ptr_array_add (children, r->members[i]);
      if (children->len == 0)            /* a cycle: show every member */
        for (guint i = 0; r->members[i] != NULL; i++)
          g_ptr_array_add (children, r->members[i]);
    }
  for (guint d = 0; r->depends_on != NULL && r->depends_on[d] != NULL; d++)
    g_ptr_array_add (children, r->depends_on[d]);
  return children;
}

static void
tree_print (Ctl *ctl, Snapshot *snap, const char *path, GString *prefix,
            gboolean is_top, gboolean is_last, GHashTable *on_path)
{
  Resource *r = g_hash_table_lookup (snap->by_path, path);
  g_autofree char *id = snapshot_id (snap, path);
  g_autofree char *shown_id = clean (id);
  g_autoptr(GPtrArray) children = NULL;
  gsize prefix_len = prefix->len;

  fputs (prefix->str, stdout);
  if (!is_top)
    fputs (is_last ? glyph (ctl, "└─", "`-") : glyph (ctl, "├─", "|-"), stdout);
  print_colored (ctl, state_color (ctl, r != NULL ? r->state : NULL), glyph (ctl, "●", "*"));
  printf (" %s", shown_id);

  if (r == NULL)
    {
      fputs (" (not exported)\n", stdout);
      return;
    }
  {
    g_autofree char *type = clean (r->type);
    g_autofree char *state = clean (r->state);

    printf (" (%s) ", type);
    print_colored (ctl, state_color (ctl, r->state), state);
  }
  if (g_hash_table_contains (on_path, path))
    {
      fputs (" (cycle)\n", stdout);
      return;
    }
  putchar ('\n');

  g_hash_table_add (on_path, (gpointer) path);
  if (!is_top)
    g_string_append (prefix, is_last ? "  " : glyph (ctl, "│ ", "| "));
  children = tree_children (snap, r);
  for (guint i = 0; i < children->len; i++)
    tree_print (ctl, snap, g_ptr_array_index (children, i), prefix, FALSE,
                i + 1 == children->len, on_path);
  g_string_truncate (prefix, prefix_len);
  g_hash_table_remove (on_path, path);
}

/* Roots: resources that are no group's member; among those, the ones no
 * other root depends on. */
static GPtrArray *
tree_roots (Snapshot *snap)
{
  g_autoptr(GHashTable) is_member = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) needed = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) tops = g_ptr_array_new ();
  GPtrArray *roots = g_ptr_array_new ();

  for (guint i = 0; i < snap->resources->len; i++)
    {
      Resource *r = g_ptr_array_index (snap->resources, i);
      for (guint m = 0; r->members != NULL && r->members[m] != NULL; m++)
        if (!g_str_equal (r->members[m], r->path))
          g_hash_table_add (is_member, r->members[m]);
    }
  for (guint i = 0; i < snap->resources->len; i++)
    {
      Resource *r = g_ptr_array_index (snap->resources, i);
      if (!g_hash_table_contains (is_member, r->path))
        {
          g_ptr_array_add (tops, r);
          for (guint d = 0; r->depends_on[d] != NULL; d++)
            g_hash_table_add (needed, r->depends_on[d]);
        }
    }
  for (guint i = 0; i < tops->len; i++)
    {
      Resource *r = g_ptr_array_index (tops, i);
      if (!g_hash_table_contains (needed, r->path))
        g_ptr_array_add (roots, r);
    }
  if (roots->len == 0)
    for (guint i = 0; i < tops->len; i++)
      g_ptr_array_add (roots, g_ptr_array_index (tops, i));
  return roots;
}

static JsonNode *
tree_json (Snapshot *snap, Resource *r, GHashTable *on_path)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, r->id);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, r->type != NULL ? r->type : "");
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, r->state);
  json_builder_set_member_name (b, "healthy");
  json_builder_add_boolean_value (b, r->healthy);
  json_builder_set_member_name (b, "depends_on");
  json_builder_add_value (b, paths_to_ids_json (snap, r->depends_on));
  if (r->is_group)
    {
      g_hash_table_add (on_path, r->path);
      json_builder_set_member_name (b, "members");
      json_builder_begin_array (b);
      for (guint i = 0; r->members[i] != NULL; i++)
        {
          Resource *m = g_hash_table_lookup (snap->by_path, r->members[i]);

          if (m != NULL && !g_hash_table_contains (on_path, m->path))
            json_builder_add_value (b, tree_json (snap, m, on_path));
        }
      json_builder_end_array (b);
      g_hash_table_remove (on_path, r->path);
    }
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static int
cmd_tree (Ctl *ctl)
{
  g_autoptr(Snapshot) snap = NULL;
  g_autoptr(GPtrArray) roots = NULL;
  g_autoptr(GHashTable) on_path = g_hash_table_new (g_str_hash, g_str_equal);
  int rc;

  if ((rc = fetch_snapshot (ctl, &snap)) != EXIT_OK)
    return rc;
  roots = tree_roots (snap);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = json_node_new (JSON_NODE_ARRAY);
      JsonArray *array = json_array_new ();

      /* Nested by membership; dependencies as ids. */
      for (guint i = 0; i < snap->resources->len; i++)
        {
          Resource *r = g_ptr_array_index (snap->resources, i);
          gboolean member = FALSE;

          for (guint j = 0; j < snap->resources->len && !member; j++)
            {
              Resource *g = g_ptr_array_index (snap->resources, j);
              if (g != r && g->members != NULL && g_strv_contains ((const char * const *) g->members, r->path))
                member = TRUE;
            }
          if (!member)
            json_array_add_element (array, tree_json (snap, r, on_path));
        }
      json_node_take_array (root, array);
      print_json (root, TRUE);
      return EXIT_OK;
    }

  for (guint i = 0; i < roots->len; i++)
    {
      g_autoptr(GString) prefix = g_string_new (NULL);
      Resource *r = g_ptr_array_index (roots, i);

      tree_print (ctl, snap, r->path, prefix, TRUE, TRUE, on_path);
    }
  return EXIT_OK;
}

/* ---------------------------------------------------------------- plugins */

static int
cmd_plugins (Ctl *ctl)
{
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GVariant) plugins = NULL;
  GVariantIter iter;
  const char *name, *version, *path, *description;
  int rc;

  if ((rc = fetch_node (ctl, &props)) != EXIT_OK)
    return rc;
  plugins = g_variant_lookup_value (props, "Plugins", G_VARIANT_TYPE ("a(ssss)"));
  if (plugins == NULL)
    plugins = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("(ssss)"), NULL, 0));

  if (ctl->json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_array (b);
      g_variant_iter_init (&iter, plugins);
      while (g_variant_iter_next (&iter, "(&s&s&s&s)", &name, &version, &path, &description))
        {
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "name");
          json_builder_add_string_value (b, name);
          json_builder_set_member_name (b, "version");
          json_builder_add_string_value (b, version);
          json_builder_set_member_name (b, "path");
          json_builder_add_string_value (b, path);
          json_builder_set_member_name (b, "description");
          json_builder_add_string_value (b, description);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      root = json_builder_get_root (b);
      print_json (root, TRUE);
      return EXIT_OK;
    }

  {
    g_autoptr(Table) table = table_new (4, "NAME", "VERSION", "PATH", "DESCRIPTION");
    gsize n = g_variant_n_children (plugins);

    g_variant_iter_init (&iter, plugins);
    while (g_variant_iter_next (&iter, "(&s&s&s&s)", &name, &version, &path, &description))
      {
        table_add (table, name, NULL);
        table_add (table, version, NULL);
        table_add (table, path, NULL);
        table_add (table, description, NULL);
      }
    table_print (ctl, table);
    printf ("\n%" G_GSIZE_FORMAT " plugin%s loaded.\n", n, n == 1 ? "" : "s");
  }
  return EXIT_OK;
}

/* ------------------------------------------------------------------- node */

static JsonNode *
parse_topology (const char *topology)
{
  g_autoptr(JsonParser) parser = NULL;
  JsonNode *root;

  if (topology == NULL || topology[0] == '\0')
    return json_node_new (JSON_NODE_NULL);
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, topology, -1, NULL) ||
      (root = json_parser_get_root (parser)) == NULL)
    {
      /* Not JSON: pass it on as a string rather than lose it. */
      JsonNode *node = json_node_new (JSON_NODE_VALUE);
      json_node_set_string (node, topology);
      return node;
    }
  return json_node_copy (root);
}

static int
cmd_node (Ctl *ctl)
{
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GVariant) plugins = NULL;
  g_autofree char *node_id = NULL;
  g_autofree char *version = NULL;
  g_autofree char *state = NULL;
  g_autofree char *topology = NULL;
  GVariantIter iter;
  const char *name, *pversion, *path, *description;
  int rc;

  if ((rc = fetch_node (ctl, &props)) != EXIT_OK)
    return rc;
  node_id = lookup_string (props, "NodeId");
  version = lookup_string (props, "Version");
  state = lookup_string (props, "State");
  topology = lookup_string (props, "Topology");
  plugins = g_variant_lookup_value (props, "Plugins", G_VARIANT_TYPE ("a(ssss)"));
  if (plugins == NULL)
    plugins = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("(ssss)"), NULL, 0));

  if (ctl->json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "node_id");
      json_builder_add_string_value (b, node_id != NULL ? node_id : "");
      json_builder_set_member_name (b, "version");
      json_builder_add_string_value (b, version != NULL ? version : "");
      json_builder_set_member_name (b, "state");
      json_builder_add_string_value (b, state != NULL ? state : "");
      json_builder_set_member_name (b, "plugins");
      json_builder_begin_array (b);
      g_variant_iter_init (&iter, plugins);
      while (g_variant_iter_next (&iter, "(&s&s&s&s)", &name, &pversion, &path, &description))
        {
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "name");
          json_builder_add_string_value (b, name);
          json_builder_set_member_name (b, "version");
          json_builder_add_string_value (b, pversion);
          json_builder_set_member_name (b, "path");
          json_builder_add_string_value (b, path);
          json_builder_set_member_name (b, "description");
          json_builder_add_string_value (b, description);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_set_member_name (b, "topology");
      json_builder_add_value (b, parse_topology (topology));
      json_builder_set_member_name (b, "bus_name");
      json_builder_add_string_value (b, ctl->bus_name);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      print_json (root, TRUE);
      return EXIT_OK;
    }

  {
    g_autoptr(GArray) fields = g_array_new (FALSE, TRUE, sizeof (Field));
    GString *names = g_string_new (NULL);
    char *pretty_topology;

    g_array_set_clear_func (fields, field_clear);
    fields_add (fields, "Node ID", clean (node_id), NULL);
    fields_add (fields, "Version", clean (version), NULL);
    fields_add (fields, "State", clean (state), state_color (ctl, state));
    fields_add (fields, "Bus", g_strdup_printf ("%s on the %s", ctl->bus_name, bus_label (ctl)), NULL);

    g_variant_iter_init (&iter, plugins);
    while (g_variant_iter_next (&iter, "(&s&s&s&s)", &name, &pversion, &path, &description))
      {
        g_autofree char *line = g_strdup_printf ("%s %s", name, pversion);
        g_autofree char *shown = clean (line);

        if (names->len > 0)
          g_string_append_c (names, '\n');
        g_string_append (names, shown);
      }
    if (names->len == 0)
      g_string_append (names, "-");
    fields_add (fields, "Plugins", g_string_free (names, FALSE), NULL);

    if (topology == NULL || topology[0] == '\0')
      pretty_topology = g_strdup ("-");
    else
      {
        g_autoptr(JsonNode) parsed = parse_topology (topology);
        g_autoptr(JsonGenerator) gen = json_generator_new ();
        g_autofree char *text = NULL;

        json_generator_set_pretty (gen, TRUE);
        json_generator_set_indent (gen, 2);
        json_generator_set_root (gen, parsed);
        text = json_generator_to_data (gen, NULL);
        /* keep newlines; clean each line */
        {
          g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
          for (guint i = 0; lines[i] != NULL; i++)
            {
              char *c = clean (lines[i]);
              g_free (lines[i]);
              lines[i] = c;
            }
          pretty_topology = g_strjoinv ("\n", lines);
        }
      }
    fields_add (fields, "Topology", pretty_topology, NULL);
    fields_print (ctl, fields);
  }
  return EXIT_OK;
}

/* ------------------------------------------------------------------ watch */

typedef struct
{
  Ctl        *ctl;
  GMainLoop  *loop;
  GHashTable *ids;             /* path -> id (owned) */
  int         seen;
  int         exit_code;
  glong       id_width;
  guint       timeout_id;
} Watch;

static void
watch_quit (Watch *w, int code)
{
  w->exit_code = code;
  g_main_loop_quit (w->loop);
}

static void
on_state_changed (GDBusConnection *connection,
                  const char      *sender,
                  const char      *path,
                  const char      *interface,
                  const char      *signal,
                  GVariant        *params,
                  gpointer         user_data)
{
  Watch *w = user_data;
  Ctl *ctl = w->ctl;
  const char *old_state, *new_state, *message;
  const char *known;
  g_autofree char *id = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();

  if (ctl->count > 0 && w->seen >= ctl->count)
    return;
  if (!g_variant_is_of_type (params, G_VARIANT_TYPE ("(sss)")))
    return;
  g_variant_get (params, "(&s&s&s)", &old_state, &new_state, &message);
  known = g_hash_table_lookup (w->ids, path);
  id = known != NULL ? g_strdup (known) : id_from_path (path);

  if (ctl->json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *time = g_date_time_format_iso8601 (now);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "time");
      json_builder_add_string_value (b, time);
      json_builder_set_member_name (b, "timestamp");
      json_builder_add_int_value (b, g_date_time_to_unix (now) * G_USEC_PER_SEC +
                                     g_date_time_get_microsecond (now));
      json_builder_set_member_name (b, "id");
      json_builder_add_string_value (b, id);
      json_builder_set_member_name (b, "old_state");
      json_builder_add_string_value (b, old_state);
      json_builder_set_member_name (b, "new_state");
      json_builder_add_string_value (b, new_state);
      json_builder_set_member_name (b, "error");
      json_builder_add_string_value (b, message);
      json_builder_set_member_name (b, "object_path");
      json_builder_add_string_value (b, path);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      print_json (root, FALSE);
    }
  else
    {
      g_autofree char *time = g_date_time_format (now, "%Y-%m-%d %H:%M:%S");
      g_autofree char *shown_id = clean (id);
      g_autofree char *shown_old = clean (old_state);
      g_autofree char *shown_new = clean (new_state);
      g_autofree char *shown_msg = clean (message);
      glong pad = w->id_width - g_utf8_strlen (shown_id, -1);

      printf ("%s.%03d  %s%*s  ", time, g_date_time_get_microsecond (now) / 1000,
              shown_id, (int) MAX (pad, 0), "");
      print_colored (ctl, state_color (ctl, old_state), shown_old);
      printf (" %s ", glyph (ctl, "→", "->"));
      print_colored (ctl, state_color (ctl, new_state), shown_new);
      if (shown_msg[0] != '\0')
        printf ("  %s", shown_msg);
      putchar ('\n');
      fflush (stdout);
    }

  w->seen++;
  if (ctl->count > 0 && w->seen >= ctl->count)
    watch_quit (w, EXIT_OK);
}

static void
on_interfaces_added (GDBusConnection *connection,
                     const char      *sender,
                     const char      *path,
                     const char      *interface,
                     const char      *signal,
                     GVariant        *params,
                     gpointer         user_data)
{
  Watch *w = user_data;
  const char *object;
  g_autoptr(GVariant) interfaces = NULL;
  Resource *r;

  if (!g_variant_is_of_type (params, G_VARIANT_TYPE ("(oa{sa{sv}})")))
    return;
  g_variant_get (params, "(&o@a{sa{sv}})", &object, &interfaces);
  r = resource_new (object, interfaces);
  if (r != NULL)
    {
      g_hash_table_replace (w->ids, g_strdup (object), g_strdup (r->id));
      w->id_width = MAX (w->id_width, g_utf8_strlen (r->id, -1));
      resource_free (r);
    }
}

static void
on_name_vanished (GDBusConnection *connection, const char *name, gpointer user_data)
{
  Watch *w = user_data;

  fail (EXIT_NOT_RUNNING, "exo-node went away from the %s (name %s)",
        bus_label (w->ctl), w->ctl->bus_name);
  watch_quit (w, EXIT_NOT_RUNNING);
}

static void
on_connection_closed (GDBusConnection *connection, gboolean remote_peer_vanished,
                      GError *error, gpointer user_data)
{
  Watch *w = user_data;

  fail (EXIT_NOT_RUNNING, "the %s went away", bus_label (w->ctl));
  watch_quit (w, EXIT_NOT_RUNNING);
}

static gboolean
on_watch_timeout (gpointer user_data)
{
  Watch *w = user_data;

  w->timeout_id = 0;
  watch_quit (w, EXIT_OK);
  return G_SOURCE_REMOVE;
}

static gboolean
on_watch_signal (gpointer user_data)
{
  watch_quit (user_data, EXIT_OK);
  return G_SOURCE_CONTINUE;
}

static int
cmd_watch (Ctl *ctl)
{
  g_autoptr(Snapshot) snap = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Watch w = { ctl, loop, NULL, 0, EXIT_OK, 2, 0 };
  guint sub_state, sub_added, watch_id;
  gulong closed_id;
  guint sigint_id, sigterm_id;
  int rc;

  w.ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  /* Subscribe first, then read the snapshot: the bus handles our AddMatch
   * before our GetManagedObjects, so no change after the snapshot is lost. */
  sub_state = g_dbus_connection_signal_subscribe (ctl->connection, ctl->bus_name,
                                                  IFACE_RESOURCE, "StateChanged", NULL, NULL,
                                                  G_DBUS_SIGNAL_FLAGS_NONE,
                                                  on_state_changed, &w, NULL);
  sub_added = g_dbus_connection_signal_subscribe (ctl->connection, ctl->bus_name,
                                                  IFACE_OBJ_MANAGER, "InterfacesAdded",
                                                  NODE_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                  on_interfaces_added, &w, NULL);

  rc = fetch_snapshot (ctl, &snap);
  if (rc == EXIT_OK)
    {
      for (guint i = 0; i < snap->resources->len; i++)
        {
          Resource *r = g_ptr_array_index (snap->resources, i);
          g_hash_table_replace (w.ids, g_strdup (r->path), g_strdup (r->id));
          w.id_width = MAX (w.id_width, g_utf8_strlen (r->id, -1));
        }

      watch_id = g_bus_watch_name_on_connection (ctl->connection, ctl->bus_name,
                                                 G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                 NULL, on_name_vanished, &w, NULL);
      closed_id = g_signal_connect (ctl->connection, "closed",
                                    G_CALLBACK (on_connection_closed), &w);
      if (ctl->timeout > 0)
        w.timeout_id = g_timeout_add ((guint) MIN (ctl->timeout * 1000.0, (double) G_MAXUINT),
                                    on_watch_timeout, &w);
      sigint_id = g_unix_signal_add (SIGINT, on_watch_signal, &w);
      sigterm_id = g_unix_signal_add (SIGTERM, on_watch_signal, &w);

      g_main_loop_run (loop);
      rc = w.exit_code;

      g_clear_handle_id (&w.timeout_id, g_source_remove);
      g_source_remove (sigint_id);
      g_source_remove (sigterm_id);
      g_signal_handler_disconnect (ctl->connection, closed_id);
      g_bus_unwatch_name (watch_id);
    }

  g_dbus_connection_signal_unsubscribe (ctl->connection, sub_state);
  g_dbus_connection_signal_unsubscribe (ctl->connection, sub_added);
  g_hash_table_unref (w.ids);
  return rc;
}

/* ------------------------------------------------------------------- main */

static int
terminal_columns (void)
{
  struct winsize ws;
  const char *env = g_getenv ("COLUMNS");

  if (ioctl (STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  if (env != NULL && atoi (env) > 0)
    return atoi (env);
  return 80;
}

static int
connect_bus (Ctl *ctl)
{
  g_autoptr(GError) error = NULL;

  ctl->connection = g_bus_get_sync (ctl->bus_type, NULL, &error);
  if (ctl->connection == NULL)
    {
      g_autofree char *why = g_strdup_printf ("cannot connect to the bus: %s", error->message);
      return not_running (ctl, why);
    }
  g_dbus_connection_set_exit_on_close (ctl->connection, FALSE);
  return EXIT_OK;
}

typedef enum
{
  NEEDS_NOTHING,
  NEEDS_ID,
} Arity;

static const struct
{
  const char *name;
  Arity       arity;
} commands[] = {
  { "list", NEEDS_NOTHING },
  { "status", NEEDS_ID },
  { "health", NEEDS_NOTHING },
  { "start", NEEDS_ID },
  { "stop", NEEDS_ID },
  { "restart", NEEDS_ID },
  { "tree", NEEDS_NOTHING },
  { "watch", NEEDS_NOTHING },
  { "plugins", NEEDS_NOTHING },
  { "node", NEEDS_NOTHING },
};

static int
run (Ctl *ctl, const char *command, const char *id)
{
  if (g_str_equal (command, "list"))
    return cmd_list (ctl);
  if (g_str_equal (command, "status"))
    return cmd_status (ctl, id);
  if (g_str_equal (command, "health"))
    return cmd_health (ctl);
  if (g_str_equal (command, "start"))
    return cmd_method (ctl, id, "Initialize", "start");
  if (g_str_equal (command, "stop"))
    return cmd_method (ctl, id, "Cleanup", "stop");
  if (g_str_equal (command, "restart"))
    return cmd_method (ctl, id, "Restart", "restart");
  if (g_str_equal (command, "tree"))
    return cmd_tree (ctl);
  if (g_str_equal (command, "watch"))
    return cmd_watch (ctl);
  if (g_str_equal (command, "plugins"))
    return cmd_plugins (ctl);
  if (g_str_equal (command, "node"))
    return cmd_node (ctl);
  g_assert_not_reached ();
}

int
main (int argc, char **argv)
{
  Ctl ctl = { 0 };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) args = NULL;
  const char *command;
  const char *id = NULL;
  gsize i, n_args;
  int rc;
  GOptionEntry entries[] = {
    { "session", 0, 0, G_OPTION_ARG_NONE, &ctl.session, NULL, NULL },
    { "system", 0, 0, G_OPTION_ARG_NONE, &ctl.system, NULL, NULL },
    { "bus-name", 0, 0, G_OPTION_ARG_STRING, &ctl.bus_name, NULL, NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &ctl.json, NULL, NULL },
    { "count", 0, 0, G_OPTION_ARG_STRING, &ctl.count_arg, NULL, NULL },
    { "timeout", 0, 0, G_OPTION_ARG_STRING, &ctl.timeout_arg, NULL, NULL },
    { "no-color", 0, 0, G_OPTION_ARG_NONE, &ctl.no_color, NULL, NULL },
    { "help", 'h', 0, G_OPTION_ARG_NONE, &ctl.help, NULL, NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &ctl.version, NULL, NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, NULL },
    { NULL }
  };

  setlocale (LC_ALL, "");

  context = g_option_context_new (NULL);
  g_option_context_set_help_enabled (context, FALSE);
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      rc = usage_error ("%s", error->message);
      goto out;
    }

  if (ctl.help)
    {
      fputs (usage_text, stdout);
      rc = EXIT_OK;
      goto out;
    }
  if (ctl.version)
    {
      printf ("exoctl %s\n", EXO_VERSION_STRING);
      rc = EXIT_OK;
      goto out;
    }

  n_args = args != NULL ? g_strv_length (args) : 0;
  if (n_args == 0)
    {
      rc = usage_error ("no command given");
      goto out;
    }
  command = args[0];
  if (g_str_equal (command, "help"))
    {
      fputs (usage_text, stdout);
      rc = EXIT_OK;
      goto out;
    }
  for (i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (commands[i].name, command))
      break;
  if (i == G_N_ELEMENTS (commands))
    {
      rc = usage_error ("unknown command '%s'", command);
      goto out;
    }
  if (commands[i].arity == NEEDS_ID)
    {
      if (n_args < 2 || args[1][0] == '\0')
        {
          rc = usage_error ("%s: missing resource ID", command);
          goto out;
        }
      id = args[1];
    }
  if (n_args > (commands[i].arity == NEEDS_ID ? 2u : 1u))
    {
      rc = usage_error ("%s: unexpected argument '%s'", command,
                        args[commands[i].arity == NEEDS_ID ? 2 : 1]);
      goto out;
    }

  if (ctl.session && ctl.system)
    {
      rc = usage_error ("--session and --system exclude each other");
      goto out;
    }
  if (ctl.count_arg != NULL)
    {
      guint64 value;

      if (!g_ascii_string_to_unsigned (ctl.count_arg, 10, 1, G_MAXINT, &value, NULL))
        {
          rc = usage_error ("--count must be a positive number, not '%s'", ctl.count_arg);
          goto out;
        }
      ctl.count = (int) value;
    }
  if (ctl.timeout_arg != NULL)
    {
      char *end = NULL;

      ctl.timeout = g_ascii_strtod (ctl.timeout_arg, &end);
      if (end == ctl.timeout_arg || *end != '\0' || !(ctl.timeout > 0) || ctl.timeout > 1e9)
        {
          rc = usage_error ("--timeout must be a positive number of seconds, not '%s'",
                            ctl.timeout_arg);
          goto out;
        }
    }
  if ((ctl.count_arg != NULL || ctl.timeout_arg != NULL) && !g_str_equal (command, "watch"))
    {
      rc = usage_error ("--count and --timeout are options of watch");
      goto out;
    }
  if (ctl.bus_name == NULL)
    ctl.bus_name = g_strdup (DEFAULT_BUS_NAME);
  if (!g_dbus_is_name (ctl.bus_name))
    {
      rc = usage_error ("'%s' is not a valid bus name", ctl.bus_name);
      goto out;
    }

  ctl.bus_type = ctl.system ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION;
  ctl.color = !ctl.no_color && isatty (STDOUT_FILENO) && g_getenv ("NO_COLOR") == NULL &&
              g_strcmp0 (g_getenv ("TERM"), "dumb") != 0;
  ctl.utf8 = g_get_charset (NULL);
  ctl.columns = isatty (STDOUT_FILENO) ? terminal_columns () : 0;

  rc = connect_bus (&ctl);
  if (rc == EXIT_OK)
    rc = run (&ctl, command, id);

out:
  fflush (stdout);
  g_clear_object (&ctl.connection);
  g_free (ctl.bus_name);
  g_free (ctl.count_arg);
  g_free (ctl.timeout_arg);
  return rc;
}
