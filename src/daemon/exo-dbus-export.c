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
 * This file owns the export's lifecycle: the public API, the entries (one
 * per exported resource, added and removed as groups change membership) and
 * the resources' signals.  The other files (see exo-dbus-export-private.h):
 * exo-dbus-objects.c serves the resource objects from one subtree
 * registration, with their property values kept as GVariants, one
 * PropertiesChanged per object and interface per main-loop iteration, and
 * our own ObjectManager (org.exo.Node1 keeps its gdbus-codegen skeleton);
 * exo-dbus-refresh.c reads the values from the resources, in one idle per
 * iteration, and polls what has no signal once a second; exo-dbus-methods.c
 * has the methods and the uid check.
 *
 * StateChanged is emitted for every transition, at once, and the values that
 * come from the state with it; PropertiesChanged follows in the refresh.
 *
 * Everything runs in the thread-default main context of the thread that
 * called exo_dbus_export_new(); the resources' state-changed signals may come
 * from another thread and are then handled in that context.  Other signals
 * of the resources (notify, member-added, member-removed) are expected in
 * that context.  Nothing is locked.  The handlers only read the resources,
 * store values, mark entries for the refresh and emit signals on the
 * connection; they change no resource, so they may run inside any libexo
 * emission.
 */
#include "exo-dbus-export-private.h"

#include <unistd.h>

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
                             ExoDBusEntry     *entry);

void
_exo_dbus_emit_shutdown_requested (ExoDBusExport *self)
{
  g_signal_emit (self, signals[SIGNAL_SHUTDOWN_REQUESTED], 0);
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

ExoDBusEntry *
_exo_dbus_lookup_entry (ExoDBusExport *self,
                        ExoResource   *resource)
{
  return resource != NULL ? g_hash_table_lookup (self->entries, resource) : NULL;
}

/* --- resource signals ----------------------------------------------------- */

static void
handle_state_changed (ExoDBusExport    *self,
                      ExoResource      *resource,
                      ExoResourceState  old_state,
                      ExoResourceState  new_state,
                      const char       *error_message)
{
  ExoDBusEntry *entry = _exo_dbus_lookup_entry (self, resource);

  if (entry == NULL)
    return;

  _exo_dbus_entry_sync_state (entry);
  /* Straight onto the connection, the body made of shared nicks. */
  if (entry->exported)
    {
      GVariant *old_nick = _exo_dbus_state_variant (old_state);
      GVariant *new_nick = _exo_dbus_state_variant (new_state);
      GVariant *args[3];

      args[0] = old_nick != NULL ? old_nick : g_variant_new_string (exo_resource_state_to_string (old_state));
      args[1] = new_nick != NULL ? new_nick : g_variant_new_string (exo_resource_state_to_string (new_state));
      args[2] = error_message[0] == '\0' ? _exo_dbus_empty_string_variant () : g_variant_new_string (error_message);
      g_dbus_connection_emit_signal (self->connection, NULL, entry->path, "org.exo.Resource1",
                                     "StateChanged", g_variant_new_tuple (args, 3), NULL);
    }
  /* The error that came with the transition lands in the refresh, with
   * the metrics that count it, before the emission. */
  _exo_dbus_mark_dirty (entry, DIRTY_STATS | DIRTY_METRICS);
  _exo_dbus_mark_topology_dirty (self);

  if (entry->parent == NULL)
    _exo_dbus_sync_node_state (self);
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
  ExoDBusEntry *entry = user_data;
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
  ExoDBusEntry *entry = user_data;

  if (g_strcmp0 (pspec->name, "display-name") == 0)
    _exo_dbus_entry_set_string (entry, PROP_DISPLAY_NAME, exo_resource_get_display_name (resource));
  else if (g_str_equal (pspec->name, "error-count") || g_str_equal (pspec->name, "attempts") ||
           g_str_equal (pspec->name, "last-error") || g_str_equal (pspec->name, "result"))
    /* Coalesced like every property: the values of the refresh are
     * current, so ErrorCount and the resource's own metrics agree. */
    _exo_dbus_mark_dirty (entry, DIRTY_STATS | DIRTY_METRICS);
  else if (g_strcmp0 (pspec->name, "state") != 0)
    _exo_dbus_mark_dirty (entry, DIRTY_METRICS);
}

static void
on_member_added (ExoResourceGroup *group,
                 ExoResource      *member,
                 gpointer          user_data)
{
  ExoDBusEntry *entry = user_data;
  ExoDBusExport *self = entry->self;

  add_resource (self, member, group);
  _exo_dbus_mark_group_dirty (self, group);
}

static void
on_member_removed (ExoResourceGroup *group,
                   ExoResource      *member,
                   gpointer          user_data)
{
  ExoDBusEntry *entry = user_data;
  ExoDBusExport *self = entry->self;
  ExoDBusEntry *member_entry = _exo_dbus_lookup_entry (self, member);

  if (member_entry != NULL && member_entry->parent == group)
    remove_resource (self, member_entry);
  _exo_dbus_mark_group_dirty (self, group);
}

/* --- adding and removing -------------------------------------------------- */

static void
entry_free (ExoDBusEntry *entry)
{
  _exo_dbus_entry_unexport (entry, FALSE);
  g_clear_signal_handler (&entry->state_changed_id, entry->resource);
  g_clear_signal_handler (&entry->notify_id, entry->resource);
  g_clear_signal_handler (&entry->member_added_id, entry->resource);
  g_clear_signal_handler (&entry->member_removed_id, entry->resource);
  _exo_dbus_entry_clear_values (entry);
  g_clear_object (&entry->resource);
  g_strfreev (entry->deps);
  g_free (entry->topology_head);
  g_free (entry->topology_tail);
  g_free (entry->path);
  g_free (entry);
}

static void
add_resource (ExoDBusExport    *self,
              ExoResource      *resource,
              ExoResourceGroup *parent)
{
  gboolean is_group = EXO_IS_RESOURCE_GROUP (resource);
  gboolean is_pool = EXO_IS_RESOURCE_POOL (resource);
  guint n_values = is_group ? N_PROPS : is_pool ? PROP_MEMBERS : PROP_MIN_SIZE;
  ExoDBusEntry *entry;

  if (g_hash_table_contains (self->entries, resource))
    return;

  entry = g_malloc0 (sizeof (ExoDBusEntry) + n_values * sizeof (GVariant *));
  entry->self = self;
  entry->resource = g_object_ref (resource);
  entry->parent = parent;
  entry->n_values = n_values;
  entry->ifaces = 1u << IFACE_RESOURCE;
  if (is_pool)
    entry->ifaces |= 1u << IFACE_POOL;
  if (is_group)
    entry->ifaces |= 1u << IFACE_GROUP;
  entry->path = make_path (self, exo_resource_get_id (resource));
  g_hash_table_insert (self->entries, resource, entry);
  g_hash_table_insert (self->paths, entry->path, entry);

  _exo_dbus_entry_sync_all (entry);
  entry->state_changed_id = g_signal_connect (resource, "state-changed",
                                              G_CALLBACK (on_state_changed), entry);
  entry->notify_id = g_signal_connect (resource, "notify", G_CALLBACK (on_notify), entry);

  if (is_group)
    {
      ExoResourceGroup *group = EXO_RESOURCE_GROUP (resource);
      g_autoptr(GPtrArray) members = exo_resource_group_get_members (group);

      entry->member_added_id = g_signal_connect (group, "member-added",
                                                 G_CALLBACK (on_member_added), entry);
      entry->member_removed_id = g_signal_connect (group, "member-removed",
                                                   G_CALLBACK (on_member_removed), entry);

      for (guint i = 0; i < members->len; i++)
        add_resource (self, g_ptr_array_index (members, i), group);
      _exo_dbus_entry_sync_members (entry);
    }

  /* Members first, then the group, as GDBusObjectManagerServer did. */
  if (self->published)
    _exo_dbus_entry_export (entry, TRUE);
}

static void
remove_resource (ExoDBusExport *self,
                 ExoDBusEntry  *entry)
{
  if (entry->ifaces & (1u << IFACE_GROUP))
    {
      ExoResourceGroup *group = EXO_RESOURCE_GROUP (entry->resource);
      g_autoptr(GPtrArray) members = g_ptr_array_new ();
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, self->entries);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (((ExoDBusEntry *) value)->parent == group)
          g_ptr_array_add (members, value);

      for (guint i = 0; i < members->len; i++)
        remove_resource (self, g_ptr_array_index (members, i));
    }

  if (entry->queued)
    g_ptr_array_remove_fast (self->dirty_entries, entry);
  _exo_dbus_entry_unexport (entry, TRUE);
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
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);
  g_return_val_if_fail (node_id != NULL, NULL);
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (root), NULL);

  exo_dbus_error_register ();

  self = g_object_new (EXO_TYPE_DBUS_EXPORT, NULL);
  self->connection = g_object_ref (connection);
  self->node_id = g_strdup (node_id);
  self->root = g_object_ref (root);
  self->exported = TRUE;

  _exo_dbus_uid_cache_start (self);

  self->node = exo_dbus_node1_skeleton_new ();
  g_object_set (self->node,
                "node-id", node_id,
                "version", EXO_VERSION_STRING,
                "plugins", g_variant_new_array (G_VARIANT_TYPE ("(ssss)"), NULL, 0),
                NULL);
  _exo_dbus_sync_node_state (self);
  _exo_dbus_node_connect_methods (self);

  add_resource (self, EXO_RESOURCE (root), NULL);
  self->topology_dirty = TRUE;
  _exo_dbus_schedule_refresh (self);
  _exo_dbus_flush_refresh (self);

  /* Everything is in place: go public. */
  _exo_dbus_objects_register (self);
  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    _exo_dbus_entry_export (value, FALSE);
  self->published = TRUE;
  if (g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->node), connection,
                                        EXO_DBUS_NODE_PATH, &error))
    self->node_exported = TRUE;
  else
    g_critical ("cannot export %s on %s: %s", "org.exo.Node1", EXO_DBUS_NODE_PATH, error->message);

  self->poll_source = _exo_dbus_poll_source_new (self);
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
    _exo_dbus_mark_topology_dirty (self);
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
    _exo_dbus_sync_node_state (self);
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
  ExoDBusEntry *entry;

  g_return_val_if_fail (EXO_IS_DBUS_EXPORT (self), NULL);

  entry = _exo_dbus_lookup_entry (self, resource);
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

  _exo_dbus_uid_cache_stop (self);

  if (self->node_exported)
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->node));
  self->node_exported = FALSE;

  _exo_dbus_objects_unregister (self);
  self->published = FALSE;
  g_ptr_array_set_size (self->dirty_entries, 0);
  g_ptr_array_set_size (self->changed_entries, 0);
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
  g_clear_pointer (&self->changed_entries, g_ptr_array_unref);
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
  self->changed_entries = g_ptr_array_new ();
  self->uids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}
