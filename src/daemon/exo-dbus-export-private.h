/* exo-dbus-export-private.h: what the files of the D-Bus export share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Not installed, not introspected.  The export is four files:
 *
 *   exo-dbus-export.c   lifecycle: the public API, entries (adding and
 *                       removing resources) and the resources' signals
 *   exo-dbus-refresh.c  the refresh idle: values taken from the resources,
 *                       the once-a-second poll, the default topology
 *   exo-dbus-objects.c  the resource objects on the bus: the subtree, the
 *                       property values, PropertiesChanged, the
 *                       ObjectManager
 *   exo-dbus-methods.c  method calls, the uid check, D-Bus error names
 *
 * Everything declared here is used in the export's main context only (the
 * thread-default context of the thread that called exo_dbus_export_new());
 * nothing is locked.
 */
#pragma once

#include <sys/types.h>

#include "exo-dbus-export.h"
#include "exo-dbus-generated.h"

G_BEGIN_DECLS

/* The interfaces of a resource object, in the order GetManagedObjects
 * lists them. */
typedef enum {
  IFACE_RESOURCE,   /* org.exo.Resource1, every resource */
  IFACE_POOL,       /* org.exo.ResourcePool1 */
  IFACE_GROUP,      /* org.exo.ResourceGroup1 */
  N_IFACES
} ExoDBusIface;

/* The properties of the resource objects, interface by interface, each in
 * the order of data/org.exo.Node1.xml (checked against the generated
 * interface infos once). */
typedef enum {
  /* org.exo.Resource1 */
  PROP_ID,
  PROP_TYPE,
  PROP_DISPLAY_NAME,
  PROP_STATE,
  PROP_HEALTHY,
  PROP_LAST_ERROR,
  PROP_ERROR_COUNT,
  PROP_ATTEMPTS,
  PROP_RESULT,
  PROP_STATE_CHANGED_AT,
  PROP_INITIALIZED_AT,
  PROP_DEPENDS_ON,
  PROP_METRICS,
  /* org.exo.ResourcePool1 */
  PROP_MIN_SIZE,
  PROP_MAX_SIZE,
  PROP_SIZE,
  PROP_IDLE,
  PROP_IN_USE,
  PROP_WAITING,
  PROP_ACQUIRED,
  PROP_TIMEOUTS,
  PROP_CREATED,
  PROP_DESTROYED,
  /* org.exo.ResourceGroup1 */
  PROP_MEMBERS,
  N_PROPS
} ExoDBusProp;

G_STATIC_ASSERT (N_PROPS <= 32);   /* ExoDBusEntry.changed is a bitmask */

/* What the refresh has to recompute for an entry. */
enum {
  DIRTY_METRICS = 1 << 0,   /* Metrics and pool counters */
  DIRTY_DEPS    = 1 << 1,   /* DependsOn: membership changed */
  DIRTY_MEMBERS = 1 << 2,   /* Members (groups) */
  DIRTY_POLL    = 1 << 3,   /* DependsOn, polled: a change marks the group's Members and the topology */
  DIRTY_STATS   = 1 << 4,   /* ErrorCount, LastError, Attempts, Result */
};

typedef struct _ExoDBusEntry ExoDBusEntry;

/* One exported resource. */
struct _ExoDBusEntry
{
  ExoDBusExport    *self;       /* unowned: self owns the entry */
  ExoResource      *resource;   /* owned */
  ExoResourceGroup *parent;     /* unowned: the group it is a member of, NULL for the root */
  char             *path;
  guint             ifaces;     /* 1 << ExoDBusIface of each interface it has */
  guint             n_values;   /* PROP_MIN_SIZE, PROP_MEMBERS (pools) or N_PROPS (groups) */
  gulong            state_changed_id;
  gulong            notify_id;
  gulong            member_added_id;
  gulong            member_removed_id;
  guint             dirty;      /* DIRTY_* for the refresh */
  gboolean          queued;     /* in self->dirty_entries */
  gboolean          exported;   /* visible on the bus */
  char            **deps;       /* the dependency ids last seen */
  char             *topology_head; /* its object in the default topology up to the state */
  char             *topology_tail; /* and after it; NULL when stale */
  GVariant         *cached;     /* a{sa{sv}} for GetManagedObjects and GetAll; NULL when stale */
  guint32           changed;    /* 1 << ExoDBusProp set since the last PropertiesChanged (while exported) */
  GVariant        **emitted;    /* [n_values]: for each bit of changed, the value then; NULL when none */
  GVariant         *values[];   /* [n_values]: the current values; Metrics and the pool
                                 * counters NULL until first read (_exo_dbus_entry_ensure_values) */
};

struct _ExoDBusExport
{
  GObject                   parent_instance;

  GDBusConnection          *connection;
  GMainContext             *context;
  guint                     manager_id;     /* the ObjectManager registration */
  guint                     subtree_id;     /* the resource objects' registration */
  gpointer                  subtree_handle; /* the subtree's user data (exo-dbus-objects.c) */
  GVariant                 *managed_objects; /* a{oa{sa{sv}}}; NULL when stale */
  ExoResourceGroup         *root;
  char                     *node_id;
  uid_t                     uid;

  ExoDBusNode1             *node;
  gboolean                  node_exported;

  GHashTable               *entries;        /* ExoResource * -> ExoDBusEntry * (owned) */
  GHashTable               *paths;          /* path -> ExoDBusEntry * */
  GPtrArray                *dirty_entries;  /* ExoDBusEntry * with queued set */
  GPtrArray                *changed_entries; /* ExoDBusEntry * with changed != 0 */
  gboolean                  topology_dirty;
  gint64                    topology_built_at; /* monotonic µs */
  GSource                  *topology_source;   /* the next allowed rebuild */

  GHashTable               *uids;           /* unique name -> GUINT_TO_POINTER (uid) */
  guint                     name_owner_changed_id;

  char                     *topology;       /* set by the cluster code; NULL = ours */
  char                     *node_state;     /* set by the daemon; NULL = the root's */

  GSource                  *refresh_source;
  GSource                  *poll_source;
  gboolean                  exported;
  gboolean                  published;      /* objects go on the connection when added */
};

/* exo-dbus-export.c */
ExoDBusEntry *_exo_dbus_lookup_entry          (ExoDBusExport    *self,
                                               ExoResource      *resource);
void          _exo_dbus_emit_shutdown_requested (ExoDBusExport  *self);

/* exo-dbus-refresh.c */
void          _exo_dbus_schedule_refresh      (ExoDBusExport    *self);
void          _exo_dbus_flush_refresh         (ExoDBusExport    *self);
void          _exo_dbus_mark_dirty            (ExoDBusEntry     *entry,
                                               guint             what);
void          _exo_dbus_mark_topology_dirty   (ExoDBusExport    *self);
void          _exo_dbus_mark_group_dirty      (ExoDBusExport    *self,
                                               ExoResourceGroup *group);
void          _exo_dbus_entry_sync_all        (ExoDBusEntry     *entry);
void          _exo_dbus_entry_ensure_values   (ExoDBusEntry     *entry);
void          _exo_dbus_entry_sync_state      (ExoDBusEntry     *entry);
void          _exo_dbus_entry_sync_members    (ExoDBusEntry     *entry);
void          _exo_dbus_sync_node_state       (ExoDBusExport    *self);
GSource      *_exo_dbus_poll_source_new       (ExoDBusExport    *self);

/* exo-dbus-objects.c */
GVariant     *_exo_dbus_state_variant         (ExoResourceState  state);
GVariant     *_exo_dbus_empty_string_variant  (void);
GVariant     *_exo_dbus_empty_objv_variant    (void);
gboolean      _exo_dbus_entry_set             (ExoDBusEntry     *entry,
                                               ExoDBusProp       prop,
                                               GVariant         *value);
gboolean      _exo_dbus_entry_set_string      (ExoDBusEntry     *entry,
                                               ExoDBusProp       prop,
                                               const char       *value);
gboolean      _exo_dbus_entry_set_boolean     (ExoDBusEntry     *entry,
                                               ExoDBusProp       prop,
                                               gboolean          value);
gboolean      _exo_dbus_entry_set_uint32      (ExoDBusEntry     *entry,
                                               ExoDBusProp       prop,
                                               guint32           value);
gboolean      _exo_dbus_entry_set_uint64      (ExoDBusEntry     *entry,
                                               ExoDBusProp       prop,
                                               guint64           value);
gboolean      _exo_dbus_entry_set_result      (ExoDBusEntry     *entry,
                                               ExoResourceResult result);
void          _exo_dbus_emit_properties_changed (ExoDBusExport  *self);
void          _exo_dbus_entry_export          (ExoDBusEntry     *entry,
                                               gboolean          announce);
void          _exo_dbus_entry_unexport        (ExoDBusEntry     *entry,
                                               gboolean          announce);
void          _exo_dbus_entry_clear_values    (ExoDBusEntry     *entry);
void          _exo_dbus_objects_register      (ExoDBusExport    *self);
void          _exo_dbus_objects_unregister    (ExoDBusExport    *self);

/* exo-dbus-methods.c */
void          _exo_dbus_handle_resource_method (ExoDBusExport         *self,
                                                ExoDBusEntry          *entry,
                                                const char            *method_name,
                                                GDBusMethodInvocation *invocation);
void          _exo_dbus_node_connect_methods  (ExoDBusExport    *self);
void          _exo_dbus_uid_cache_start       (ExoDBusExport    *self);
void          _exo_dbus_uid_cache_stop        (ExoDBusExport    *self);

G_END_DECLS
