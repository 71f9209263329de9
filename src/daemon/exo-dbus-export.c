/* exo-dbus-export.c: a resource tree on D-Bus (docs/design.md §4).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One ExoDBusExport puts a root group, everything reachable from it and the
 * node itself on a connection:
 *
 *   /org/exo/Node1                      org.exo.Node1 and
 *                                       org.freedesktop.DBus.ObjectManager
 *   /org/exo/Node1/resource/<escaped>   org.exo.Resource1, plus
 *                                       org.exo.ResourcePool1 (pools) or
 *                                       org.exo.ResourceGroup1 (groups)
 *
 * <escaped> is g_dbus_escape_object_path (id).  Ids are unique within a
 * group, not across nested groups; when two exported resources have the same
 * id the later one gets "_2" (then "_3", …) appended.  An escaped id never
 * ends in "_" and one digit (escapes are "_" and two hex digits), so "_2" to
 * "_9" cannot be another id's path; beyond that the table of paths in use
 * keeps them unique.  A path stays the same while the resource is exported.
 *
 * The ObjectManager is ours, not GDBusObjectManagerServer: building every
 * object's properties through the skeletons on each GetManagedObjects costs
 * tens of milliseconds with a thousand objects, so each object's
 * a{sa{sv}} is kept until a property of it changes (the skeletons notify)
 * and the whole reply until anything changes.  Each interface skeleton is
 * exported at its object's path; InterfacesAdded and InterfacesRemoved are
 * emitted for objects added or removed after exo_dbus_export_new().
 *
 * Properties mirror the resources live.  The gdbus-codegen skeletons queue
 * property changes and emit one PropertiesChanged per interface in an idle,
 * so any number of changes in one main-loop iteration make at most one
 * emission per object and interface.  What is costly to compute (Metrics,
 * pool counters, DependsOn, Members, Topology) is recomputed in one idle of
 * our own per iteration, scheduled at a priority above the skeletons' idle so
 * that it lands in the same emission, and Metrics and pool counters are also
 * polled once a second (a value that did not change emits nothing).
 * StateChanged is emitted for every transition, at once.
 *
 * Methods that change anything (Initialize, Cleanup, Restart, Shutdown) are
 * allowed to callers whose uid, asked from the bus with
 * GetConnectionUnixUser and cached per unique name until NameOwnerChanged
 * says it left, is the daemon's effective uid or 0.
 *
 * Everything runs in the thread-default main context of the thread that
 * called exo_dbus_export_new(); the resources' state-changed signals may come
 * from another thread and are then handled in that context.  Groups are
 * expected to change their membership in that context.
 */
#include "exo-dbus-export.h"

#include <unistd.h>
#include <json-glib/json-glib.h>

#include "exo-dbus-generated.h"

/* At most this many callers' uids are cached; beyond it the cache starts over. */
#define UID_CACHE_MAX 1024
/* How often Metrics and pool counters are polled, in seconds. */
#define POLL_INTERVAL_S 1
/* Our refresh idle runs before the skeletons' (G_PRIORITY_DEFAULT) emission idle. */
#define REFRESH_PRIORITY (G_PRIORITY_DEFAULT - 1)
#define TOPOLOGY_INTERVAL_MS 100

enum {
  DIRTY_METRICS = 1 << 0,   /* Metrics and pool counters */
  DIRTY_DEPS    = 1 << 1,   /* DependsOn */
  DIRTY_MEMBERS = 1 << 2,   /* Members (groups) */
  DIRTY_POLL    = 1 << 3,   /* DependsOn, polled: a change marks the group's Members and the topology */
  DIRTY_STATS   = 1 << 4,   /* ErrorCount, LastError, Attempts, Result */
};

typedef struct
{
  ExoDBusExport          *self;       /* unowned: self owns the entry */
  ExoResource            *resource;   /* owned */
  ExoResourceGroup       *parent;     /* unowned: the group it is a member of, NULL for the root */
  char                   *path;
  ExoDBusResource1       *iface;
  ExoDBusResourcePool1   *pool;       /* NULL unless a pool */
  ExoDBusResourceGroup1  *group;      /* NULL unless a group */
  gulong                  state_changed_id;
  gulong                  notify_id;
  gulong                  member_added_id;
  gulong                  member_removed_id;
  guint                   dirty;
  gboolean                queued;     /* in self->dirty_entries */
  gboolean                exported;   /* its skeletons are on the connection */
  char                  **deps;       /* the dependency ids last seen */
  ExoPoolStats            stats;      /* the pool counters last set */
  gboolean                has_stats;
  GVariant               *cached;     /* a{sa{sv}} for GetManagedObjects; NULL when stale */
} Entry;

struct _ExoDBusExport
{
  GObject                   parent_instance;

  GDBusConnection          *connection;
  GMainContext             *context;
  guint                     manager_id;     /* the ObjectManager registration */
  GVariant                 *managed_objects; /* a{oa{sa{sv}}}; NULL when stale */
  ExoResourceGroup         *root;
  char                     *node_id;
  uid_t                     uid;

  ExoDBusNode1             *node;
  gboolean                  node_exported;

  GHashTable               *entries;        /* ExoResource * -> Entry * (owned) */
  GHashTable               *paths;          /* path -> Entry * */
  GPtrArray                *dirty_entries;  /* Entry * with queued set */
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

G_DEFINE_FINAL_TYPE (ExoDBusExport, exo_dbus_export, G_TYPE_OBJECT)

enum {
  SIGNAL_SHUTDOWN_REQUESTED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void add_resource    (ExoDBusExport    *self,
                             ExoResource      *resource,
                             ExoResourceGroup *parent);
static void remove_resource (ExoDBusExport    *self,
                             Entry            *entry);

/* --- errors ------------------------------------------------------------- */

/**
 * exo_dbus_error_register:
 *
 * Maps the libexo error codes that have a name of their own in the contract
 * to it, so that clients get them back as #GErrors in %EXO_RESOURCE_ERROR
 * (NotFound, InvalidState, Failed) and %G_IO_ERROR (Timeout).  Idempotent.
 */
void
exo_dbus_error_register (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      g_dbus_error_register_error (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_NOT_FOUND,
                                   EXO_DBUS_ERROR_NOT_FOUND);
      g_dbus_error_register_error (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                                   EXO_DBUS_ERROR_INVALID_STATE);
      g_dbus_error_register_error (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                                   EXO_DBUS_ERROR_FAILED);
      g_dbus_error_register_error (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                   EXO_DBUS_ERROR_TIMEOUT);
      g_once_init_leave (&done, 1);
    }
}

static const char *
error_to_dbus_name (const GError *error)
{
  if (error->domain == EXO_RESOURCE_ERROR)
    {
      switch (error->code)
        {
        case EXO_RESOURCE_ERROR_NOT_FOUND:
          return EXO_DBUS_ERROR_NOT_FOUND;
        case EXO_RESOURCE_ERROR_INVALID_STATE:
        case EXO_RESOURCE_ERROR_CLOSED:
          return EXO_DBUS_ERROR_INVALID_STATE;
        default:
          break;
        }
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return EXO_DBUS_ERROR_TIMEOUT;

  return EXO_DBUS_ERROR_FAILED;
}

static void
return_error (GDBusMethodInvocation *invocation,
              const GError          *error)
{
  g_dbus_method_invocation_return_dbus_error (invocation, error_to_dbus_name (error),
                                              error->message);
}

/* --- entries ------------------------------------------------------------ */

static char *
make_path (ExoDBusExport *self,
           const char    *id)
{
  g_autofree char *escaped = NULL;
  char *path;

  escaped = g_dbus_escape_object_path (id != NULL ? id : "");
  /* The empty id escapes to "", which is no path element. */
  path = g_strconcat (EXO_DBUS_RESOURCE_PATH_PREFIX, escaped[0] != '\0' ? escaped : "_", NULL);

  for (guint n = 2; g_hash_table_contains (self->paths, path); n++)
    {
      g_free (path);
      path = g_strdup_printf (EXO_DBUS_RESOURCE_PATH_PREFIX "%s_%u",
                              escaped[0] != '\0' ? escaped : "_", n);
    }

  return path;
}

static Entry *
lookup_entry (ExoDBusExport *self,
              ExoResource   *resource)
{
  return resource != NULL ? g_hash_table_lookup (self->entries, resource) : NULL;
}

static gboolean
refresh_cb (gpointer data);

static void
schedule_refresh (ExoDBusExport *self)
{
  if (self->refresh_source != NULL || !self->exported)
    return;

  self->refresh_source = g_idle_source_new ();
  g_source_set_priority (self->refresh_source, REFRESH_PRIORITY);
  g_source_set_callback (self->refresh_source, refresh_cb, self, NULL);
  g_source_set_static_name (self->refresh_source, "[exo] ExoDBusExport refresh");
  g_source_attach (self->refresh_source, self->context);
}

static void
mark_dirty (Entry *entry,
            guint  what)
{
  ExoDBusExport *self = entry->self;

  entry->dirty |= what;
  if (!entry->queued)
    {
      entry->queued = TRUE;
      g_ptr_array_add (self->dirty_entries, entry);
    }
  schedule_refresh (self);
}

static void
mark_topology_dirty (ExoDBusExport *self)
{
  if (self->topology != NULL)
    return;
  self->topology_dirty = TRUE;
  schedule_refresh (self);
}

/* Marks Members of @group and DependsOn of each of its members dirty. */
static void
mark_group_dirty (ExoDBusExport    *self,
                  ExoResourceGroup *group)
{
  Entry *group_entry = lookup_entry (self, EXO_RESOURCE (group));
  GHashTableIter iter;
  gpointer value;

  if (group_entry != NULL)
    mark_dirty (group_entry, DIRTY_MEMBERS);

  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Entry *entry = value;

      if (entry->parent == group)
        mark_dirty (entry, DIRTY_DEPS);
    }
  mark_topology_dirty (self);
}

static void
sync_metrics (Entry *entry)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (entry->resource);
  GVariant *current = exo_dbus_resource1_get_metrics (entry->iface);

  /* Polled every second for every resource: skip the setter (GValue,
   * lock, notify freeze) when nothing changed. */
  if (current == NULL || !g_variant_equal (current, metrics))
    exo_dbus_resource1_set_metrics (entry->iface, metrics);

  if (entry->pool != NULL)
    {
      ExoPoolStats stats;

      exo_resource_pool_get_stats (EXO_RESOURCE_POOL (entry->resource), &stats);
      if (entry->has_stats &&
          stats.min_size == entry->stats.min_size && stats.max_size == entry->stats.max_size &&
          stats.size == entry->stats.size && stats.idle == entry->stats.idle &&
          stats.in_use == entry->stats.in_use && stats.waiting == entry->stats.waiting &&
          stats.acquired == entry->stats.acquired && stats.timeouts == entry->stats.timeouts &&
          stats.created == entry->stats.created && stats.destroyed == entry->stats.destroyed)
        return;
      entry->stats = stats;
      entry->has_stats = TRUE;
      g_object_set (entry->pool,
                    "min-size", stats.min_size,
                    "max-size", stats.max_size,
                    "size", stats.size,
                    "idle", stats.idle,
                    "in-use", stats.in_use,
                    "waiting", stats.waiting,
                    "acquired", (guint64) stats.acquired,
                    "timeouts", (guint64) stats.timeouts,
                    "created", (guint64) stats.created,
                    "destroyed", (guint64) stats.destroyed,
                    NULL);
    }
}

/* Returns whether the dependency ids changed since the last call.  With
 * @polled, unchanged ids leave DependsOn alone (the paths they map to only
 * change with membership, which marks DIRTY_DEPS). */
static gboolean
sync_depends_on (Entry    *entry,
                 gboolean  polled)
{
  ExoDBusExport *self = entry->self;
  g_autoptr(GPtrArray) paths = g_ptr_array_new ();
  g_auto(GStrv) deps = NULL;
  gboolean changed;

  if (entry->parent != NULL)
    deps = exo_resource_group_get_dependencies (entry->parent,
                                                exo_resource_get_id (entry->resource));
  if (deps == NULL)
    deps = g_new0 (char *, 1);
  changed = entry->deps == NULL || !g_strv_equal ((const char * const *) entry->deps,
                                                  (const char * const *) deps);
  if (polled && !changed)
    return FALSE;

  for (guint i = 0; deps != NULL && deps[i] != NULL; i++)
    {
      Entry *dep = lookup_entry (self, exo_resource_group_lookup (entry->parent, deps[i]));

      if (dep != NULL)
        g_ptr_array_add (paths, dep->path);
    }
  g_ptr_array_add (paths, NULL);

  exo_dbus_resource1_set_depends_on (entry->iface, (const char * const *) paths->pdata);
  if (changed)
    {
      g_strfreev (entry->deps);
      entry->deps = g_steal_pointer (&deps);
    }
  return changed;
}

static void
sync_members (Entry *entry)
{
  ExoDBusExport *self = entry->self;
  /* In dependency order; members that cannot be ordered come last. */
  g_autoptr(GPtrArray) members = exo_resource_group_get_members (EXO_RESOURCE_GROUP (entry->resource));
  g_autoptr(GPtrArray) paths = g_ptr_array_new ();

  for (guint i = 0; i < members->len; i++)
    {
      Entry *member = lookup_entry (self, g_ptr_array_index (members, i));

      if (member != NULL)
        g_ptr_array_add (paths, member->path);
    }
  g_ptr_array_add (paths, NULL);

  exo_dbus_resource_group1_set_members (entry->group, (const char * const *) paths->pdata);
}

/* The properties that come straight from the resource's state: set at
 * each transition, at once. */
static void
sync_state (Entry *entry)
{
  ExoResource *resource = entry->resource;
  ExoResourceState state = exo_resource_get_state (resource);

  g_object_set (entry->iface,
                "state", exo_resource_state_to_string (state),
                "healthy", state == EXO_RESOURCE_STATE_READY,
                "state-changed-at", (guint64) MAX (exo_resource_get_state_changed_at (resource), 0),
                "initialized-at", (guint64) MAX (exo_resource_get_initialized_at (resource), 0),
                NULL);
}

/* The failure statistics.  Set only together with Metrics (DIRTY_STATS
 * comes with DIRTY_METRICS): a resource counts a failure in its metrics in
 * the same dispatch in which libexo records it, and one reply must never
 * have ErrorCount ahead of the resource's own failure counters, also when
 * the error comes with a transition (a failed health check that makes it
 * `degraded`). */
static void
sync_stats (Entry *entry)
{
  ExoResource *resource = entry->resource;
  const GError *last_error = exo_resource_get_last_error (resource);

  g_object_set (entry->iface,
                "last-error", last_error != NULL ? last_error->message : "",
                "error-count", exo_resource_get_error_count (resource),
                "attempts", exo_resource_get_attempts (resource),
                "result", exo_resource_result_to_string (exo_resource_get_result (resource)),
                NULL);
}

static void
sync_node_state (ExoDBusExport *self)
{
  const char *state = self->node_state;

  if (state == NULL)
    state = exo_resource_state_to_string (exo_resource_get_state (EXO_RESOURCE (self->root)));
  exo_dbus_node1_set_state (self->node, state);
}

/* --- the default topology ----------------------------------------------- */

static void
build_topology_group (ExoDBusExport    *self,
                      JsonBuilder      *builder,
                      ExoResourceGroup *group);

static void
build_topology_resource (ExoDBusExport    *self,
                         JsonBuilder      *builder,
                         ExoResource      *resource,
                         ExoResourceGroup *parent)
{
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, exo_resource_get_id (resource));
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, exo_resource_get_resource_type (resource));
  json_builder_set_member_name (builder, "state");
  json_builder_add_string_value (builder, exo_resource_state_to_string (exo_resource_get_state (resource)));
  json_builder_set_member_name (builder, "group");
  if (parent != NULL)
    json_builder_add_string_value (builder, exo_resource_get_id (EXO_RESOURCE (parent)));
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "depends_on");
  json_builder_begin_array (builder);
  if (parent != NULL)
    {
      g_auto(GStrv) deps = exo_resource_group_get_dependencies (parent, exo_resource_get_id (resource));

      for (guint i = 0; deps != NULL && deps[i] != NULL; i++)
        json_builder_add_string_value (builder, deps[i]);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  if (EXO_IS_RESOURCE_GROUP (resource))
    build_topology_group (self, builder, EXO_RESOURCE_GROUP (resource));
}

static void
build_topology_group (ExoDBusExport    *self,
                      JsonBuilder      *builder,
                      ExoResourceGroup *group)
{
  g_autoptr(GPtrArray) members = exo_resource_group_get_members (group);

  for (guint i = 0; i < members->len; i++)
    build_topology_resource (self, builder, g_ptr_array_index (members, i), group);
}

static char *
build_topology (ExoDBusExport *self)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "node_id");
  json_builder_add_string_value (builder, self->node_id);
  json_builder_set_member_name (builder, "resources");
  json_builder_begin_array (builder);
  build_topology_resource (self, builder, EXO_RESOURCE (self->root), NULL);
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  /* json-glib leaves U+001F unescaped. */
  return exo_json_fix_generated (json_generator_to_data (generator, NULL), NULL);
}

/* --- refreshing ----------------------------------------------------------- */

static gboolean
topology_due_cb (gpointer data)
{
  ExoDBusExport *self = data;

  g_clear_pointer (&self->topology_source, g_source_unref);
  schedule_refresh (self);
  return G_SOURCE_REMOVE;
}

static gboolean
refresh_cb (gpointer data)
{
  ExoDBusExport *self = data;
  g_autoptr(GPtrArray) dirty = NULL;

  g_clear_pointer (&self->refresh_source, g_source_unref);

  /* Handlers below may queue more; they go into the next refresh. */
  dirty = g_steal_pointer (&self->dirty_entries);
  self->dirty_entries = g_ptr_array_new ();

  for (guint i = 0; i < dirty->len; i++)
    {
      Entry *entry = g_ptr_array_index (dirty, i);
      guint what = entry->dirty;

      entry->queued = FALSE;
      entry->dirty = 0;
      if (what & DIRTY_STATS)
        sync_stats (entry);
      if (what & DIRTY_METRICS)
        sync_metrics (entry);
      if (what & (DIRTY_DEPS | DIRTY_POLL))
        {
          /* A dependency added to a member reorders its group's Members
           * and changes the topology; nothing else says so.  These land
           * in the next refresh, still before the skeletons' emission. */
          gboolean polled = !(what & DIRTY_DEPS);

          if (sync_depends_on (entry, polled) && polled && entry->parent != NULL)
            {
              Entry *parent = lookup_entry (self, EXO_RESOURCE (entry->parent));

              if (parent != NULL)
                mark_dirty (parent, DIRTY_MEMBERS);
              mark_topology_dirty (self);
            }
        }
      if ((what & DIRTY_MEMBERS) && entry->group != NULL)
        sync_members (entry);
    }

  /* The default topology is O(resources): rebuilt at most every
   * TOPOLOGY_INTERVAL_MS, or a node starting 1,000 resources rebuilds it
   * in every iteration. */
  if (self->topology_dirty && self->topology == NULL && self->topology_source == NULL)
    {
      gint64 now = g_get_monotonic_time ();
      gint64 next = self->topology_built_at + TOPOLOGY_INTERVAL_MS * 1000;

      if (now >= next || self->topology_built_at == 0)
        {
          g_autofree char *json = build_topology (self);

          exo_dbus_node1_set_topology (self->node, json);
          self->topology_built_at = now;
          self->topology_dirty = FALSE;
        }
      else
        {
          self->topology_source = g_timeout_source_new ((guint) ((next - now) / 1000) + 1);
          g_source_set_callback (self->topology_source, topology_due_cb, self, NULL);
          g_source_set_static_name (self->topology_source, "[exo] ExoDBusExport topology");
          g_source_attach (self->topology_source, self->context);
        }
    }
  else if (self->topology != NULL)
    self->topology_dirty = FALSE;

  return G_SOURCE_REMOVE;
}

/* Metrics and pool counters change without a signal, and so do DependsOn
 * and Members after exo_resource_group_add_dependency(): look once a second.
 * Values that did not change emit nothing.  Members and the topology (the
 * costly ones) are only recomputed when some dependency list changed: their
 * other inputs (states, membership) come with signals. */
static gboolean
poll_cb (gpointer data)
{
  ExoDBusExport *self = data;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    mark_dirty (value, DIRTY_METRICS | DIRTY_POLL);

  return G_SOURCE_CONTINUE;
}

/* Runs every pending refresh now (after building, so that the first
 * GetManagedObjects is complete). */
static void
flush_refresh (ExoDBusExport *self)
{
  if (self->refresh_source != NULL)
    {
      g_source_destroy (self->refresh_source);
      refresh_cb (self);
    }
}

/* --- resource signals ----------------------------------------------------- */

static void
handle_state_changed (ExoDBusExport    *self,
                      ExoResource      *resource,
                      ExoResourceState  old_state,
                      ExoResourceState  new_state,
                      const char       *error_message)
{
  Entry *entry = lookup_entry (self, resource);

  if (entry == NULL)
    return;

  sync_state (entry);
  /* Straight onto the connection: the skeleton's emitter goes through a
   * GObject signal with the generic (libffi) marshaller, for every
   * transition of every resource. */
  if (entry->exported)
    g_dbus_connection_emit_signal (self->connection, NULL, entry->path, "org.exo.Resource1",
                                   "StateChanged",
                                   g_variant_new ("(sss)", exo_resource_state_to_string (old_state),
                                                  exo_resource_state_to_string (new_state),
                                                  error_message),
                                   NULL);
  /* The error that came with the transition lands in the refresh, with
   * the metrics that count it, still before the skeletons' emission. */
  mark_dirty (entry, DIRTY_STATS | DIRTY_METRICS | DIRTY_DEPS);
  mark_topology_dirty (self);

  if (entry->parent == NULL)
    sync_node_state (self);
}

typedef struct
{
  ExoDBusExport    *self;
  ExoResource      *resource;
  ExoResourceState  old_state;
  ExoResourceState  new_state;
  char             *error_message;
} StateChange;

static void
state_change_free (gpointer data)
{
  StateChange *change = data;

  g_object_unref (change->self);
  g_object_unref (change->resource);
  g_free (change->error_message);
  g_free (change);
}

static gboolean
state_change_cb (gpointer data)
{
  StateChange *change = data;

  if (change->self->exported)
    handle_state_changed (change->self, change->resource,
                          change->old_state, change->new_state, change->error_message);
  return G_SOURCE_REMOVE;
}

static void
on_state_changed (ExoResource      *resource,
                  ExoResourceState  old_state,
                  ExoResourceState  new_state,
                  gpointer          user_data)
{
  Entry *entry = user_data;
  ExoDBusExport *self = entry->self;
  const GError *error = NULL;
  const char *error_message = "";

  if (new_state == EXO_RESOURCE_STATE_ERROR || new_state == EXO_RESOURCE_STATE_DEGRADED)
    error = exo_resource_get_last_error (resource);
  if (error != NULL)
    error_message = error->message;

  if (g_main_context_acquire (self->context))
    {
      handle_state_changed (self, resource, old_state, new_state, error_message);
      g_main_context_release (self->context);
    }
  else
    {
      StateChange *change = g_new0 (StateChange, 1);
      GSource *source = g_idle_source_new ();

      change->self = g_object_ref (self);
      change->resource = g_object_ref (resource);
      change->old_state = old_state;
      change->new_state = new_state;
      change->error_message = g_strdup (error_message);
      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, state_change_cb, change, state_change_free);
      g_source_set_static_name (source, "[exo] ExoDBusExport state change");
      g_source_attach (source, self->context);
      g_source_unref (source);
    }
}

static void
on_notify (ExoResource *resource,
           GParamSpec  *pspec,
           gpointer     user_data)
{
  Entry *entry = user_data;

  if (g_strcmp0 (pspec->name, "display-name") == 0)
    exo_dbus_resource1_set_display_name (entry->iface, exo_resource_get_display_name (resource));
  else if (g_str_equal (pspec->name, "error-count") || g_str_equal (pspec->name, "attempts") ||
           g_str_equal (pspec->name, "last-error") || g_str_equal (pspec->name, "result"))
    /* Coalesced like every property: the values of the refresh are
     * current, so ErrorCount and the resource's own metrics agree. */
    mark_dirty (entry, DIRTY_STATS | DIRTY_METRICS);
  else if (g_strcmp0 (pspec->name, "state") != 0)
    mark_dirty (entry, DIRTY_METRICS);
}

static void
on_member_added (ExoResourceGroup *group,
                 ExoResource      *member,
                 gpointer          user_data)
{
  Entry *entry = user_data;
  ExoDBusExport *self = entry->self;

  add_resource (self, member, group);
  mark_group_dirty (self, group);
}

static void
on_member_removed (ExoResourceGroup *group,
                   ExoResource      *member,
                   gpointer          user_data)
{
  Entry *entry = user_data;
  ExoDBusExport *self = entry->self;
  Entry *member_entry = lookup_entry (self, member);

  if (member_entry != NULL && member_entry->parent == group)
    remove_resource (self, member_entry);
  mark_group_dirty (self, group);
}

/* --- methods ------------------------------------------------------------- */

typedef enum {
  OP_INITIALIZE,
  OP_CLEANUP,
  OP_RESTART,
  OP_SHUTDOWN,
} Op;

static const char * const op_names[] = {
  "org.exo.Resource1.Initialize",
  "org.exo.Resource1.Cleanup",
  "org.exo.Resource1.Restart",
  "org.exo.Node1.Shutdown",
};

typedef struct
{
  ExoDBusExport         *self;
  ExoResource           *resource;     /* NULL for Shutdown */
  GDBusMethodInvocation *invocation;   /* owned until answered */
  Op                     op;
} Call;

static void
call_free (Call *call)
{
  g_clear_object (&call->self);
  g_clear_object (&call->resource);
  g_clear_object (&call->invocation);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Call, call_free)

static void
op_done_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(Call) call = user_data;
  g_autoptr(GError) error = NULL;
  gboolean ok = FALSE;

  switch (call->op)
    {
    case OP_INITIALIZE:
      ok = exo_resource_initialize_finish (call->resource, result, &error);
      break;
    case OP_CLEANUP:
      ok = exo_resource_cleanup_finish (call->resource, result, &error);
      break;
    case OP_RESTART:
      ok = exo_resource_restart_finish (call->resource, result, &error);
      break;
    case OP_SHUTDOWN:
    default:
      g_assert_not_reached ();
    }

  if (ok)
    g_dbus_method_invocation_return_value (g_steal_pointer (&call->invocation), NULL);
  else
    return_error (g_steal_pointer (&call->invocation), error);
}

static void
call_run (Call *call)
{
  switch (call->op)
    {
    case OP_INITIALIZE:
      exo_resource_initialize_async (call->resource, NULL, op_done_cb, call);
      break;
    case OP_CLEANUP:
      exo_resource_cleanup_async (call->resource, NULL, op_done_cb, call);
      break;
    case OP_RESTART:
      exo_resource_restart_async (call->resource, NULL, op_done_cb, call);
      break;
    case OP_SHUTDOWN:
      {
        g_autoptr(ExoDBusExport) self = g_object_ref (call->self);

        g_dbus_method_invocation_return_value (g_steal_pointer (&call->invocation), NULL);
        call_free (call);
        if (self->exported)
          g_signal_emit (self, signals[SIGNAL_SHUTDOWN_REQUESTED], 0);
      }
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
call_authorized (Call    *call,
                 gboolean known,
                 guint    uid)
{
  g_autofree char *message = NULL;

  if (known && (uid == 0 || uid == (guint) call->self->uid))
    {
      call_run (call);
      return;
    }

  if (known)
    message = g_strdup_printf ("%s is not allowed: uid %u is neither root nor exo-node's uid %u",
                               op_names[call->op], uid, (guint) call->self->uid);
  else
    message = g_strdup_printf ("%s is not allowed: the caller's uid is unknown",
                               op_names[call->op]);
  g_dbus_method_invocation_return_dbus_error (g_steal_pointer (&call->invocation),
                                              EXO_DBUS_ERROR_ACCESS_DENIED, message);
  call_free (call);
}

static void
get_uid_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Call *call = user_data;
  ExoDBusExport *self = call->self;
  g_autoptr(GVariant) reply = NULL;
  guint uid = 0;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, NULL);
  if (reply == NULL)
    {
      call_authorized (call, FALSE, 0);
      return;
    }

  g_variant_get (reply, "(u)", &uid);
  if (self->exported && self->name_owner_changed_id != 0)
    {
      if (g_hash_table_size (self->uids) >= UID_CACHE_MAX)
        g_hash_table_remove_all (self->uids);
      g_hash_table_insert (self->uids,
                           g_strdup (g_dbus_method_invocation_get_sender (call->invocation)),
                           GUINT_TO_POINTER (uid));
    }
  call_authorized (call, TRUE, uid);
}

/* Checks the caller's uid, then runs @op (the invocation is handled either way). */
static gboolean
handle_changing (ExoDBusExport         *self,
                 ExoResource           *resource,
                 GDBusMethodInvocation *invocation,
                 Op                     op)
{
  GDBusConnection *connection = g_dbus_method_invocation_get_connection (invocation);
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  Call *call = g_new0 (Call, 1);
  gpointer cached;

  call->self = g_object_ref (self);
  call->resource = resource != NULL ? g_object_ref (resource) : NULL;
  call->invocation = invocation;   /* ours: answering it gives it up */
  call->op = op;

  if (sender == NULL)
    {
      /* A peer-to-peer connection: the peer is who authenticated. */
      GCredentials *credentials = g_dbus_connection_get_peer_credentials (connection);
      uid_t uid = credentials != NULL ? g_credentials_get_unix_user (credentials, NULL) : (uid_t) -1;

      call_authorized (call, uid != (uid_t) -1, (guint) uid);
    }
  else if (g_hash_table_lookup_extended (self->uids, sender, NULL, &cached))
    call_authorized (call, TRUE, GPOINTER_TO_UINT (cached));
  else
    g_dbus_connection_call (connection,
                            "org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus", "GetConnectionUnixUser",
                            g_variant_new ("(s)", sender), G_VARIANT_TYPE ("(u)"),
                            G_DBUS_CALL_FLAGS_NONE, -1, NULL, get_uid_cb, call);

  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
on_name_owner_changed (GDBusConnection *connection,
                       const char      *sender_name,
                       const char      *object_path,
                       const char      *interface_name,
                       const char      *signal_name,
                       GVariant        *parameters,
                       gpointer         user_data)
{
  ExoDBusExport *self = user_data;
  const char *name, *old_owner, *new_owner;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sss)")))
    return;
  g_variant_get (parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
  if (name[0] == ':' && new_owner[0] == '\0')
    g_hash_table_remove (self->uids, name);
}

static gboolean
on_handle_initialize (ExoDBusResource1       *iface,
                      GDBusMethodInvocation  *invocation,
                      gpointer                user_data)
{
  Entry *entry = user_data;

  return handle_changing (entry->self, entry->resource, invocation, OP_INITIALIZE);
}

static gboolean
on_handle_cleanup (ExoDBusResource1       *iface,
                   GDBusMethodInvocation  *invocation,
                   gpointer                user_data)
{
  Entry *entry = user_data;

  return handle_changing (entry->self, entry->resource, invocation, OP_CLEANUP);
}

static gboolean
on_handle_restart (ExoDBusResource1       *iface,
                   GDBusMethodInvocation  *invocation,
                   gpointer                user_data)
{
  Entry *entry = user_data;

  return handle_changing (entry->self, entry->resource, invocation, OP_RESTART);
}

static void
check_health_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GDBusMethodInvocation) invocation = user_data;
  gboolean healthy;

  /* An unhealthy resource is an answer, not a failed call. */
  healthy = exo_resource_check_health_finish (EXO_RESOURCE (source), result, NULL);
  g_dbus_method_invocation_return_value (g_steal_pointer (&invocation),
                                         g_variant_new ("(b)", healthy));
}

static gboolean
on_handle_check_health (ExoDBusResource1       *iface,
                        GDBusMethodInvocation  *invocation,
                        gpointer                user_data)
{
  Entry *entry = user_data;

  /* The handler owns @invocation; returning a value gives it up. */
  exo_resource_check_health_async (entry->resource, NULL, check_health_cb, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_handle_shutdown (ExoDBusNode1          *iface,
                    GDBusMethodInvocation *invocation,
                    gpointer               user_data)
{
  return handle_changing (user_data, NULL, invocation, OP_SHUTDOWN);
}

static Entry *
find_entry_by_id (ExoDBusExport *self,
                  const char    *id)
{
  g_autofree char *escaped = g_dbus_escape_object_path (id);
  g_autofree char *path = g_strconcat (EXO_DBUS_RESOURCE_PATH_PREFIX, escaped[0] != '\0' ? escaped : "_", NULL);
  Entry *entry = g_hash_table_lookup (self->paths, path);
  Entry *found = NULL;
  GHashTableIter iter;
  gpointer value;

  if (entry != NULL && g_strcmp0 (exo_resource_get_id (entry->resource), id) == 0)
    return entry;

  /* The first holder of the plain path is gone; take the lowest suffix. */
  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      entry = value;
      if (g_strcmp0 (exo_resource_get_id (entry->resource), id) == 0 &&
          (found == NULL || strlen (entry->path) < strlen (found->path) ||
           (strlen (entry->path) == strlen (found->path) && strcmp (entry->path, found->path) < 0)))
        found = entry;
    }
  return found;
}

static gboolean
on_handle_get_resource (ExoDBusNode1          *iface,
                        GDBusMethodInvocation *invocation,
                        const char            *id,
                        gpointer               user_data)
{
  ExoDBusExport *self = user_data;
  Entry *entry = find_entry_by_id (self, id);

  if (entry == NULL)
    {
      g_autofree char *message = g_strdup_printf ("no resource '%s'", id);

      g_dbus_method_invocation_return_dbus_error (invocation, EXO_DBUS_ERROR_NOT_FOUND, message);
    }
  else
    exo_dbus_node1_complete_get_resource (iface, invocation, entry->path);

  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* --- the object manager -------------------------------------------------- */

/* org.freedesktop.DBus.ObjectManager, as GDBusObjectManagerServer has it.
 * Ours answers GetManagedObjects from a per-object a{sa{sv}} kept until one
 * of the object's properties changes (the skeletons notify), and the whole
 * reply until any object changes, is added or removed. */
static const char manager_xml[] =
  "<node>"
  "  <interface name='org.freedesktop.DBus.ObjectManager'>"
  "    <method name='GetManagedObjects'>"
  "      <arg type='a{oa{sa{sv}}}' name='object_paths_interfaces_and_properties' direction='out'/>"
  "    </method>"
  "    <signal name='InterfacesAdded'>"
  "      <arg type='o' name='object_path'/>"
  "      <arg type='a{sa{sv}}' name='interfaces_and_properties'/>"
  "    </signal>"
  "    <signal name='InterfacesRemoved'>"
  "      <arg type='o' name='object_path'/>"
  "      <arg type='as' name='interfaces'/>"
  "    </signal>"
  "  </interface>"
  "</node>";

static GDBusInterfaceInfo *
manager_interface_info (void)
{
  static GDBusInterfaceInfo *info = NULL;

  if (g_once_init_enter (&info))
    {
      g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml (manager_xml, NULL);
      GDBusInterfaceInfo *iface = g_dbus_interface_info_ref (node->interfaces[0]);

      g_dbus_interface_info_cache_build (iface);
      g_once_init_leave (&info, iface);
    }
  return info;
}

/* The skeletons of @entry, in the order GetManagedObjects lists them. */
static guint
entry_get_skeletons (Entry                 *entry,
                     GDBusInterfaceSkeleton *skeletons[3])
{
  guint n = 0;

  skeletons[n++] = G_DBUS_INTERFACE_SKELETON (entry->iface);
  if (entry->pool != NULL)
    skeletons[n++] = G_DBUS_INTERFACE_SKELETON (entry->pool);
  if (entry->group != NULL)
    skeletons[n++] = G_DBUS_INTERFACE_SKELETON (entry->group);
  return n;
}

static void
on_skeleton_notify (GObject    *skeleton,
                    GParamSpec *pspec,
                    gpointer    user_data)
{
  Entry *entry = user_data;

  g_clear_pointer (&entry->cached, g_variant_unref);
  g_clear_pointer (&entry->self->managed_objects, g_variant_unref);
}

/* Returns: (transfer none): the interfaces and properties of @entry, a{sa{sv}} */
static GVariant *
entry_get_interfaces (Entry *entry)
{
  if (entry->cached == NULL)
    {
      GDBusInterfaceSkeleton *skeletons[3];
      guint n = entry_get_skeletons (entry, skeletons);
      GVariantBuilder builder;

      g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{sa{sv}}"));
      for (guint i = 0; i < n; i++)
        {
          /* transfer full, not floating (g_variant_take_ref) */
          g_autoptr(GVariant) properties = g_dbus_interface_skeleton_get_properties (skeletons[i]);

          g_variant_builder_add (&builder, "{s@a{sv}}",
                                 g_dbus_interface_skeleton_get_info (skeletons[i])->name,
                                 properties);
        }
      entry->cached = g_variant_ref_sink (g_variant_builder_end (&builder));
      /* Serialised once here, copied as it is into every reply. */
      g_variant_get_data (entry->cached);
    }
  return entry->cached;
}

static GVariant *
get_managed_objects (ExoDBusExport *self)
{
  if (self->managed_objects == NULL)
    {
      GVariantBuilder builder;
      GHashTableIter iter;
      gpointer value;

      g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{oa{sa{sv}}}"));
      g_hash_table_iter_init (&iter, self->entries);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          Entry *entry = value;

          if (entry->exported)
            g_variant_builder_add (&builder, "{o@a{sa{sv}}}", entry->path,
                                   entry_get_interfaces (entry));
        }
      self->managed_objects = g_variant_ref_sink (g_variant_builder_end (&builder));
      g_variant_get_data (self->managed_objects);
    }
  return self->managed_objects;
}

static void
manager_method_call (GDBusConnection       *connection,
                     const char            *sender,
                     const char            *object_path,
                     const char            *interface_name,
                     const char            *method_name,
                     GVariant              *parameters,
                     GDBusMethodInvocation *invocation,
                     gpointer               user_data)
{
  ExoDBusExport *self = user_data;

  /* GDBus has checked the call against the interface: GetManagedObjects (). */
  g_dbus_method_invocation_return_value (invocation,
                                         g_variant_new ("(@a{oa{sa{sv}}})",
                                                        get_managed_objects (self)));
}

static const GDBusInterfaceVTable manager_vtable = {
  manager_method_call, NULL, NULL, { NULL },
};

static void
emit_manager_signal (ExoDBusExport *self,
                     const char    *name,
                     GVariant      *parameters)
{
  g_dbus_connection_emit_signal (self->connection, NULL, EXO_DBUS_NODE_PATH,
                                 "org.freedesktop.DBus.ObjectManager", name,
                                 parameters, NULL);
}

/* Puts @entry's skeletons on the connection; @announce emits InterfacesAdded. */
static void
entry_export (Entry    *entry,
              gboolean  announce)
{
  ExoDBusExport *self = entry->self;
  GDBusInterfaceSkeleton *skeletons[3];
  guint n = entry_get_skeletons (entry, skeletons);

  if (entry->exported)
    return;

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;

      if (!g_dbus_interface_skeleton_export (skeletons[i], self->connection, entry->path, &error))
        g_critical ("cannot export %s on %s: %s",
                    g_dbus_interface_skeleton_get_info (skeletons[i])->name, entry->path,
                    error->message);
    }
  entry->exported = TRUE;
  g_clear_pointer (&self->managed_objects, g_variant_unref);

  if (announce)
    emit_manager_signal (self, "InterfacesAdded",
                         g_variant_new ("(o@a{sa{sv}})", entry->path,
                                        entry_get_interfaces (entry)));
}

/* Takes @entry's skeletons off the connection; @announce emits InterfacesRemoved. */
static void
entry_unexport (Entry    *entry,
                gboolean  announce)
{
  ExoDBusExport *self = entry->self;
  GDBusInterfaceSkeleton *skeletons[3];
  guint n = entry_get_skeletons (entry, skeletons);

  if (!entry->exported)
    return;
  entry->exported = FALSE;
  g_clear_pointer (&self->managed_objects, g_variant_unref);

  if (announce)
    {
      GVariantBuilder names;

      g_variant_builder_init (&names, G_VARIANT_TYPE ("as"));
      for (guint i = 0; i < n; i++)
        g_variant_builder_add (&names, "s", g_dbus_interface_skeleton_get_info (skeletons[i])->name);
      emit_manager_signal (self, "InterfacesRemoved",
                           g_variant_new ("(oas)", entry->path, &names));
    }

  for (guint i = 0; i < n; i++)
    if (g_dbus_interface_skeleton_has_connection (skeletons[i], self->connection))
      g_dbus_interface_skeleton_unexport_from_connection (skeletons[i], self->connection);
}

/* --- adding and removing -------------------------------------------------- */

static void
entry_free (Entry *entry)
{
  entry_unexport (entry, FALSE);
  g_clear_signal_handler (&entry->state_changed_id, entry->resource);
  g_clear_signal_handler (&entry->notify_id, entry->resource);
  g_clear_signal_handler (&entry->member_added_id, entry->resource);
  g_clear_signal_handler (&entry->member_removed_id, entry->resource);
  if (entry->iface != NULL)
    g_signal_handlers_disconnect_by_data (entry->iface, entry);
  if (entry->pool != NULL)
    g_signal_handlers_disconnect_by_data (entry->pool, entry);
  if (entry->group != NULL)
    g_signal_handlers_disconnect_by_data (entry->group, entry);
  g_clear_object (&entry->iface);
  g_clear_object (&entry->pool);
  g_clear_object (&entry->group);
  g_clear_object (&entry->resource);
  g_clear_pointer (&entry->cached, g_variant_unref);
  g_strfreev (entry->deps);
  g_free (entry->path);
  g_free (entry);
}

static void
add_resource (ExoDBusExport    *self,
              ExoResource      *resource,
              ExoResourceGroup *parent)
{
  Entry *entry;

  if (g_hash_table_contains (self->entries, resource))
    return;

  entry = g_new0 (Entry, 1);
  entry->self = self;
  entry->resource = g_object_ref (resource);
  entry->parent = parent;
  entry->path = make_path (self, exo_resource_get_id (resource));
  g_hash_table_insert (self->entries, resource, entry);
  g_hash_table_insert (self->paths, entry->path, entry);

  entry->iface = exo_dbus_resource1_skeleton_new ();
  g_object_set (entry->iface,
                "id", exo_resource_get_id (resource),
                "type", exo_resource_get_resource_type (resource),
                "display-name", exo_resource_get_display_name (resource),
                NULL);
  sync_state (entry);
  sync_stats (entry);
  sync_depends_on (entry, FALSE);
  g_signal_connect (entry->iface, "handle-initialize", G_CALLBACK (on_handle_initialize), entry);
  g_signal_connect (entry->iface, "handle-cleanup", G_CALLBACK (on_handle_cleanup), entry);
  g_signal_connect (entry->iface, "handle-restart", G_CALLBACK (on_handle_restart), entry);
  g_signal_connect (entry->iface, "handle-check-health", G_CALLBACK (on_handle_check_health), entry);
  g_signal_connect (entry->iface, "notify", G_CALLBACK (on_skeleton_notify), entry);

  if (EXO_IS_RESOURCE_POOL (resource))
    {
      entry->pool = exo_dbus_resource_pool1_skeleton_new ();
      g_signal_connect (entry->pool, "notify", G_CALLBACK (on_skeleton_notify), entry);
    }
  sync_metrics (entry);

  entry->state_changed_id = g_signal_connect (resource, "state-changed",
                                              G_CALLBACK (on_state_changed), entry);
  entry->notify_id = g_signal_connect (resource, "notify", G_CALLBACK (on_notify), entry);

  if (EXO_IS_RESOURCE_GROUP (resource))
    {
      ExoResourceGroup *group = EXO_RESOURCE_GROUP (resource);
      g_autoptr(GPtrArray) members = exo_resource_group_get_members (group);

      entry->group = exo_dbus_resource_group1_skeleton_new ();
      g_signal_connect (entry->group, "notify", G_CALLBACK (on_skeleton_notify), entry);
      entry->member_added_id = g_signal_connect (group, "member-added",
                                                 G_CALLBACK (on_member_added), entry);
      entry->member_removed_id = g_signal_connect (group, "member-removed",
                                                   G_CALLBACK (on_member_removed), entry);

      for (guint i = 0; i < members->len; i++)
        add_resource (self, g_ptr_array_index (members, i), group);
      sync_members (entry);
    }

  /* Members first, then the group, as GDBusObjectManagerServer did. */
  if (self->published)
    entry_export (entry, TRUE);
}

static void
remove_resource (ExoDBusExport *self,
                 Entry         *entry)
{
  if (entry->group != NULL)
    {
      ExoResourceGroup *group = EXO_RESOURCE_GROUP (entry->resource);
      g_autoptr(GPtrArray) members = g_ptr_array_new ();
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, self->entries);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (((Entry *) value)->parent == group)
          g_ptr_array_add (members, value);

      for (guint i = 0; i < members->len; i++)
        remove_resource (self, g_ptr_array_index (members, i));
    }

  if (entry->queued)
    g_ptr_array_remove_fast (self->dirty_entries, entry);
  entry_unexport (entry, TRUE);
  g_hash_table_remove (self->paths, entry->path);
  g_hash_table_remove (self->entries, entry->resource);   /* frees entry */
}

/* --- public ---------------------------------------------------------------- */

/**
 * exo_dbus_export_new:
 * @connection: the connection to export on
 * @node_id: the node's id
 * @root: the root group
 *
 * Exports the ObjectManager and org.exo.Node1 at `/org/exo/Node1` and every
 * resource reachable from @root, and keeps them up to date until
 * exo_dbus_export_unexport() or the last unref.  Does not own a bus name.
 *
 * Returns: (transfer full): the export
 */
ExoDBusExport *
exo_dbus_export_new (GDBusConnection  *connection,
                     const char       *node_id,
                     ExoResourceGroup *root)
{
  ExoDBusExport *self;
  g_autoptr(GError) error = NULL;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);
  g_return_val_if_fail (node_id != NULL, NULL);
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (root), NULL);

  exo_dbus_error_register ();

  self = g_object_new (EXO_TYPE_DBUS_EXPORT, NULL);
  self->connection = g_object_ref (connection);
  self->node_id = g_strdup (node_id);
  self->root = g_object_ref (root);
  self->exported = TRUE;

  if (g_dbus_connection_get_unique_name (connection) != NULL)
    self->name_owner_changed_id =
      g_dbus_connection_signal_subscribe (connection,
                                          "org.freedesktop.DBus", "org.freedesktop.DBus",
                                          "NameOwnerChanged", "/org/freedesktop/DBus",
                                          NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                          on_name_owner_changed, self, NULL);

  self->node = exo_dbus_node1_skeleton_new ();
  g_object_set (self->node,
                "node-id", node_id,
                "version", EXO_VERSION_STRING,
                "plugins", g_variant_new_array (G_VARIANT_TYPE ("(ssss)"), NULL, 0),
                NULL);
  sync_node_state (self);
  g_signal_connect (self->node, "handle-shutdown", G_CALLBACK (on_handle_shutdown), self);
  g_signal_connect (self->node, "handle-get-resource", G_CALLBACK (on_handle_get_resource), self);

  add_resource (self, EXO_RESOURCE (root), NULL);
  self->topology_dirty = TRUE;
  schedule_refresh (self);
  flush_refresh (self);

  /* Everything is in place: go public. */
  self->manager_id = g_dbus_connection_register_object (connection, EXO_DBUS_NODE_PATH,
                                                        manager_interface_info (),
                                                        &manager_vtable, self, NULL, &error);
  if (self->manager_id == 0)
    {
      g_critical ("cannot export %s on %s: %s", "org.freedesktop.DBus.ObjectManager",
                  EXO_DBUS_NODE_PATH, error->message);
      g_clear_error (&error);
    }
  {
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init (&iter, self->entries);
    while (g_hash_table_iter_next (&iter, NULL, &value))
      entry_export (value, FALSE);
  }
  self->published = TRUE;
  if (g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->node), connection,
                                        EXO_DBUS_NODE_PATH, &error))
    self->node_exported = TRUE;
  else
    g_critical ("cannot export %s on %s: %s", "org.exo.Node1", EXO_DBUS_NODE_PATH, error->message);

  self->poll_source = g_timeout_source_new_seconds (POLL_INTERVAL_S);
  g_source_set_callback (self->poll_source, poll_cb, self, NULL);
  g_source_set_static_name (self->poll_source, "[exo] ExoDBusExport poll");
  g_source_attach (self->poll_source, self->context);

  return self;
}

/**
 * exo_dbus_export_set_plugins:
 * @self: an export
 * @plugin_infos: (element-type ExoPluginInfo) (nullable): the loaded plugins
 *
 * Sets org.exo.Node1.Plugins.
 */
void
exo_dbus_export_set_plugins (ExoDBusExport *self,
                             GPtrArray     *plugin_infos)
{
  GVariantBuilder builder;

  g_return_if_fail (EXO_IS_DBUS_EXPORT (self));

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(ssss)"));
  for (guint i = 0; plugin_infos != NULL && i < plugin_infos->len; i++)
    {
      ExoPluginInfo *info = g_ptr_array_index (plugin_infos, i);
      const char *name = exo_plugin_info_get_name (info);
      const char *version = exo_plugin_info_get_version (info);
      const char *path = exo_plugin_info_get_path (info);
      const char *description = exo_plugin_info_get_description (info);

      g_variant_builder_add (&builder, "(ssss)",
                             name != NULL ? name : "",
                             version != NULL ? version : "",
                             path != NULL ? path : "",
                             description != NULL ? description : "");
    }
  exo_dbus_node1_set_plugins (self->node, g_variant_builder_end (&builder));
}

/**
 * exo_dbus_export_set_topology:
 * @self: an export
 * @json: (nullable): the cluster topology as JSON, or %NULL for the default
 *
 * Sets org.exo.Node1.Topology.  The default, kept up to date, is
 * `{"node_id": …, "resources": [{"id", "type", "state", "group",
 * "depends_on": [ids]}, …]}` with every resource in dependency order.
 */
void
exo_dbus_export_set_topology (ExoDBusExport *self,
                              const char    *json)
{
  g_return_if_fail (EXO_IS_DBUS_EXPORT (self));

  g_free (self->topology);
  self->topology = g_strdup (json);
  if (json != NULL)
    exo_dbus_node1_set_topology (self->node, json);
  else
    mark_topology_dirty (self);
}

/**
 * exo_dbus_export_set_node_state:
 * @self: an export
 * @state: (nullable): what org.exo.Node1.State says, or %NULL for the root
 *   group's state
 */
void
exo_dbus_export_set_node_state (ExoDBusExport *self,
                                const char    *state)
{
  g_return_if_fail (EXO_IS_DBUS_EXPORT (self));

  g_free (self->node_state);
  self->node_state = g_strdup (state);
  if (self->node != NULL)
    sync_node_state (self);
}

/**
 * exo_dbus_export_get_object_path:
 * @self: an export
 * @resource: a resource
 *
 * Returns: (nullable): the object path @resource is exported at
 */
const char *
exo_dbus_export_get_object_path (ExoDBusExport *self,
                                 ExoResource   *resource)
{
  Entry *entry;

  g_return_val_if_fail (EXO_IS_DBUS_EXPORT (self), NULL);

  entry = lookup_entry (self, resource);
  return entry != NULL ? entry->path : NULL;
}

/**
 * exo_dbus_export_get_n_objects:
 * @self: an export
 *
 * Returns: how many resources are exported
 */
guint
exo_dbus_export_get_n_objects (ExoDBusExport *self)
{
  g_return_val_if_fail (EXO_IS_DBUS_EXPORT (self), 0);

  return g_hash_table_size (self->entries);
}

/**
 * exo_dbus_export_unexport:
 * @self: an export
 *
 * Takes everything off the bus and stops following the resources.  Calls in
 * progress still get their replies.  Idempotent; also done on the last unref.
 */
void
exo_dbus_export_unexport (ExoDBusExport *self)
{
  g_return_if_fail (EXO_IS_DBUS_EXPORT (self));

  if (!self->exported)
    return;
  self->exported = FALSE;

  if (self->refresh_source != NULL)
    g_source_destroy (self->refresh_source);
  g_clear_pointer (&self->refresh_source, g_source_unref);
  if (self->poll_source != NULL)
    g_source_destroy (self->poll_source);
  g_clear_pointer (&self->poll_source, g_source_unref);
  if (self->topology_source != NULL)
    g_source_destroy (self->topology_source);
  g_clear_pointer (&self->topology_source, g_source_unref);

  if (self->name_owner_changed_id != 0)
    g_dbus_connection_signal_unsubscribe (self->connection, self->name_owner_changed_id);
  self->name_owner_changed_id = 0;

  if (self->node_exported)
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->node));
  self->node_exported = FALSE;

  if (self->manager_id != 0)
    g_dbus_connection_unregister_object (self->connection, self->manager_id);
  self->manager_id = 0;
  self->published = FALSE;
  g_ptr_array_set_size (self->dirty_entries, 0);
  g_hash_table_remove_all (self->paths);
  g_hash_table_remove_all (self->entries);   /* unexports, no InterfacesRemoved */
  g_clear_pointer (&self->managed_objects, g_variant_unref);
}

static void
exo_dbus_export_dispose (GObject *object)
{
  ExoDBusExport *self = EXO_DBUS_EXPORT (object);

  exo_dbus_export_unexport (self);
  if (self->node != NULL)
    g_signal_handlers_disconnect_by_data (self->node, self);
  g_clear_object (&self->node);
  g_clear_object (&self->root);
  g_clear_object (&self->connection);

  G_OBJECT_CLASS (exo_dbus_export_parent_class)->dispose (object);
}

static void
exo_dbus_export_finalize (GObject *object)
{
  ExoDBusExport *self = EXO_DBUS_EXPORT (object);

  g_clear_pointer (&self->entries, g_hash_table_unref);
  g_clear_pointer (&self->paths, g_hash_table_unref);
  g_clear_pointer (&self->dirty_entries, g_ptr_array_unref);
  g_clear_pointer (&self->uids, g_hash_table_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_free (self->node_id);
  g_free (self->topology);
  g_free (self->node_state);

  G_OBJECT_CLASS (exo_dbus_export_parent_class)->finalize (object);
}

static void
exo_dbus_export_class_init (ExoDBusExportClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = exo_dbus_export_dispose;
  object_class->finalize = exo_dbus_export_finalize;

  /**
   * ExoDBusExport::shutdown-requested:
   * @self: the export
   *
   * An authorized caller called org.exo.Node1.Shutdown(); the call has
   * been answered.
   */
  signals[SIGNAL_SHUTDOWN_REQUESTED] =
    g_signal_new ("shutdown-requested",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);
}

static void
exo_dbus_export_init (ExoDBusExport *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->uid = geteuid ();
  self->entries = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) entry_free);
  self->paths = g_hash_table_new (g_str_hash, g_str_equal);
  self->dirty_entries = g_ptr_array_new ();
  self->uids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}
