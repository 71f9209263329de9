/* exoctl-private.h: what the files of exoctl share (see exoctl.c for the
 * map): the bus names and interfaces, exit statuses and colours, the
 * options (Ctl), a resource as read from the node (Resource, Snapshot), the
 * output helpers, the pager and the commands.
 *
 * Not installed; exoctl is one program and links no library of its own.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define DEFAULT_BUS_NAME   "org.exo.Node1"
#define NODE_PATH          "/org/exo/Node1"
#define RESOURCE_PREFIX    "/org/exo/Node1/resource/"
#define IFACE_NODE         "org.exo.Node1"
#define IFACE_RESOURCE     "org.exo.Resource1"
#define IFACE_POOL         "org.exo.ResourcePool1"
#define IFACE_GROUP        "org.exo.ResourceGroup1"
#define IFACE_OBJ_MANAGER  "org.freedesktop.DBus.ObjectManager"
#define IFACE_PROPERTIES   "org.freedesktop.DBus.Properties"

/* The exit statuses follow systemctl's (docs/exoctl.md, EXIT STATUS).  With
 * several ids a command exits with the highest status of them. */
enum
{
  EXIT_OK          = 0,
  EXIT_FAILED      = 1,        /* a method failed; health: unhealthy; is-failed: none failed */
  EXIT_NOT_RUNNING = 1,        /* no node, no bus: systemctl's "Failed to connect to bus" */
  EXIT_USAGE       = 2,
  EXIT_NOT_ACTIVE  = 3,        /* status, is-active: not ready (LSB "program is not running") */
  EXIT_NO_RESOURCE = 4,
};

#define COLOR_RESET  "\033[0m"
#define COLOR_BOLD   "\033[1m"
#define COLOR_GREEN  "\033[0;32m"
#define COLOR_YELLOW "\033[0;33m"
#define COLOR_RED    "\033[1;31m"
#define COLOR_CYAN   "\033[0;36m"
#define COLOR_GREY   "\033[0;90m"

typedef struct
{
  /* options */
  gboolean         session;
  gboolean         system;
  gboolean         json;
  gboolean         no_color;
  gboolean         help;
  gboolean         version;
  gboolean         quiet;        /* -q: is-active, is-failed print nothing */
  gboolean         value_only;   /* --value: show prints values without "Key=" */
  gboolean         no_pager;
  gboolean         no_legend;    /* tables without header (and list, plugins: footer) */
  gboolean         full;         /* -l: never cut table cells */
  char            *bus_name;
  char            *count_arg;
  char            *timeout_arg;
  char           **property_args; /* -p as given: NAME[,NAME...] each */
  int              count;        /* 0: not given */
  double           timeout;      /* 0: not given */
  GHashTable      *properties;   /* show -p: the names (set); NULL: all */

  GBusType         bus_type;
  GDBusConnection *connection;
  gboolean         color;        /* stdout is a tty and NO_COLOR is unset */
  gboolean         utf8;
  int              columns;      /* 0: do not cut */
  GPid             pager_pid;    /* 0: no pager runs (exoctl-pager.c) */
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

typedef struct
{
  const char *key;
  char       *value;           /* may hold newlines */
  const char *color;
} Field;

/* An output table (exoctl-output.c). */
typedef struct _Table Table;

/* --- exoctl-output.c ------------------------------------------------------ */

int G_GNUC_PRINTF (2, 3)
            fail          (int          code,
                           const char  *format,
                           ...);
char       *clean         (const char  *s);
const char *state_color   (Ctl         *ctl,
                           const char  *state);
void        print_colored (Ctl         *ctl,
                           const char  *color,
                           const char  *text);
const char *glyph         (Ctl         *ctl,
                           const char  *utf8,
                           const char  *ascii);
char       *format_time   (guint64      usec,
                           gboolean     relative);
char       *format_value  (GVariant    *value);

Table      *table_new     (guint        n_cols,
                           ...);
void        table_free    (Table       *table);
void        table_add     (Table       *table,
                           const char  *text,
                           const char  *color);
void        table_print   (Ctl         *ctl,
                           Table       *table);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Table, table_free)

void        fields_add    (GArray      *fields,
                           const char  *key,
                           char        *value,
                           const char  *color);
void        field_clear   (gpointer     data);
void        fields_print  (Ctl         *ctl,
                           GArray      *fields);

void        print_json    (JsonNode    *node,
                           gboolean     pretty);

/* --- exoctl-pager.c ------------------------------------------------------- */

void        pager_open    (Ctl         *ctl);
void        pager_close   (Ctl         *ctl);

/* --- exoctl-snapshot.c ---------------------------------------------------- */

/* The org.exo.ResourcePool1 properties, in the order of the D-Bus API,
 * with their JSON keys. */
typedef struct
{
  const char *dbus_name;
  const char *json_key;
} PoolProperty;

extern const PoolProperty pool_props[10];

const char *bus_label         (Ctl         *ctl);
int         not_running       (Ctl         *ctl,
                               const char  *why);
gboolean    node_gone         (Ctl         *ctl,
                               const GError *error);
int         report_dbus_error (Ctl         *ctl,
                               GError      *error,
                               const char  *what);

char       *lookup_string     (GVariant    *props,
                               const char  *key);
guint64     lookup_uint       (GVariant    *props,
                               const char  *key);
char       *id_from_path      (const char  *path);

Resource   *resource_new      (const char  *path,
                               GVariant    *interfaces);
void        resource_free     (Resource    *r);
void        snapshot_free     (Snapshot    *snap);
Resource   *snapshot_find     (Snapshot    *snap,
                               const char  *id);
Resource   *snapshot_lookup   (Snapshot    *snap,
                               const char  *id,
                               int         *rc);
char       *snapshot_id       (Snapshot    *snap,
                               const char  *path);
int         fetch_snapshot    (Ctl         *ctl,
                               Snapshot   **out);
int         fetch_node        (Ctl         *ctl,
                               GVariant   **out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Snapshot, snapshot_free)

JsonNode   *paths_to_ids_json (Snapshot    *snap,
                               char       **paths);
JsonNode   *resource_to_json  (Snapshot    *snap,
                               Resource    *r);

/* --- the commands: each returns an exit status ---------------------------- */

/* @ids: NULL-terminated, at least one for the commands that take ids. */

/* exoctl-status.c */
int cmd_list      (Ctl         *ctl);
int cmd_status    (Ctl         *ctl,
                   char       **ids);
int cmd_health    (Ctl         *ctl);
/* exoctl-show.c */
int cmd_show      (Ctl         *ctl,
                   char       **ids);
int cmd_is_active (Ctl         *ctl,
                   char       **ids);
int cmd_is_failed (Ctl         *ctl,
                   char       **ids);
/* exoctl-tree.c */
int cmd_tree      (Ctl         *ctl);
/* exoctl-control.c: @method on org.exo.Resource1; @verb for the error */
int cmd_method    (Ctl         *ctl,
                   char       **ids,
                   const char  *method,
                   const char  *verb);
/* exoctl-node.c */
int cmd_plugins   (Ctl         *ctl);
int cmd_node      (Ctl         *ctl);
/* exoctl-watch.c */
int cmd_watch     (Ctl         *ctl);

G_END_DECLS
