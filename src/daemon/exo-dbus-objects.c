/* exo-dbus-objects.c: the resource objects on the bus (docs/design.md §4).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns how the resource objects are seen from the bus: their property
 * values, PropertiesChanged, the subtree that serves them and the
 * ObjectManager at /org/exo/Node1.  What the values are is the refresh's
 * business (exo-dbus-refresh.c); what the methods do is exo-dbus-methods.c's.
 *
 * No GObject per resource: one subtree registered at
 * /org/exo/Node1/resource (G_DBUS_SUBTREE_FLAGS_DISPATCH_TO_UNENUMERATED_NODES,
 * so GDBus does not enumerate the objects per message) serves every
 * resource object.  Its introspect function gives the generated interface
 * infos of the entry's interfaces; its dispatch function gives one static
 * vtable whose method_call looks the entry up by object path: an entry that
 * went away between dispatch and the call is answered
 * org.freedesktop.DBus.Error.UnknownObject.  Properties.Get and GetAll come
 * to method_call too (no get_property) and are answered from the stored
 * values.
 *
 * Each entry keeps its values as GVariants in an array indexed by
 * ExoDBusProp.  Setting a value equal to the current one does nothing;
 * otherwise, while the entry is exported, the property's bit is set in
 * entry->changed and the value it had at the last emission is kept.  The
 * refresh idle (exo-dbus-refresh.c, one per main-loop iteration for the
 * whole export) calls _exo_dbus_emit_properties_changed() last, which sends
 * one PropertiesChanged per object and interface with the properties whose
 * value differs from the last emission, as the gdbus-codegen skeletons did.
 *
 * GetManagedObjects answers from a per-entry a{sa{sv}}, kept until one of
 * the entry's values changes (also used for GetAll), and the whole reply
 * until anything changes, is added or removed.  InterfacesAdded and
 * InterfacesRemoved are emitted for objects added or removed after
 * exo_dbus_export_new().
 *
 * Runs in the export's main context: GDBus calls the subtree functions
 * and the vtables there (the registrations are made in it); nothing is
 * locked.
 */
#include "exo-dbus-export-private.h"

/* --- constant values ----------------------------------------------------- */

static const char * const prop_names[N_PROPS] = {
  [PROP_ID] = "Id",
  [PROP_TYPE] = "Type",
  [PROP_DISPLAY_NAME] = "DisplayName",
  [PROP_STATE] = "State",
  [PROP_HEALTHY] = "Healthy",
  [PROP_LAST_ERROR] = "LastError",
  [PROP_ERROR_COUNT] = "ErrorCount",
  [PROP_ATTEMPTS] = "Attempts",
  [PROP_RESULT] = "Result",
  [PROP_STATE_CHANGED_AT] = "StateChangedAt",
  [PROP_INITIALIZED_AT] = "InitializedAt",
  [PROP_DEPENDS_ON] = "DependsOn",
  [PROP_METRICS] = "Metrics",
  [PROP_MIN_SIZE] = "MinSize",
  [PROP_MAX_SIZE] = "MaxSize",
  [PROP_SIZE] = "Size",
  [PROP_IDLE] = "Idle",
  [PROP_IN_USE] = "InUse",
  [PROP_WAITING] = "Waiting",
  [PROP_ACQUIRED] = "Acquired",
  [PROP_TIMEOUTS] = "Timeouts",
  [PROP_CREATED] = "Created",
  [PROP_DESTROYED] = "Destroyed",
  [PROP_MEMBERS] = "Members",
};

/* The properties of interface i are iface_first[i] .. iface_first[i + 1] - 1. */
static const guint iface_first[N_IFACES + 1] = {
  [IFACE_RESOURCE] = PROP_ID,
  [IFACE_POOL] = PROP_MIN_SIZE,
  [IFACE_GROUP] = PROP_MEMBERS,
  [N_IFACES] = N_PROPS,
};

/* Made once, shared by every entry and export (GVariants are immutable). */
typedef struct
{
  GDBusInterfaceInfo *ifaces[N_IFACES];
  GVariant           *iface_names[N_IFACES];   /* s */
  GVariant           *prop_names[N_PROPS];     /* s */
  GVariant           *states[EXO_RESOURCE_STATE_LAST];
  GVariant           *results[EXO_RESOURCE_RESULT_START_LIMIT_HIT + 1];
  GVariant           *booleans[2];
  GVariant           *empty_string;
  GVariant           *empty_strv;              /* as, PropertiesChanged's invalidated */
  GVariant           *empty_objv;
  GVariant           *zero_u;
  GVariant           *zero_t;
} Constants;

static const Constants *
constants (void)
{
  static Constants *constants = NULL;

  if (g_once_init_enter (&constants))
    {
      Constants *c = g_new0 (Constants, 1);

      c->ifaces[IFACE_RESOURCE] = exo_dbus_resource1_interface_info ();
      c->ifaces[IFACE_POOL] = exo_dbus_resource_pool1_interface_info ();
      c->ifaces[IFACE_GROUP] = exo_dbus_resource_group1_interface_info ();
      for (guint i = 0; i < N_IFACES; i++)
        {
          GDBusInterfaceInfo *info = c->ifaces[i];
          guint n = 0;

          c->iface_names[i] = g_variant_ref_sink (g_variant_new_string (info->name));
          /* The table above follows the XML; the generated code too. */
          for (; info->properties != NULL && info->properties[n] != NULL; n++)
            g_assert (g_str_equal (info->properties[n]->name, prop_names[iface_first[i] + n]));
          g_assert (n == iface_first[i + 1] - iface_first[i]);
        }
      for (guint p = 0; p < N_PROPS; p++)
        c->prop_names[p] = g_variant_ref_sink (g_variant_new_string (prop_names[p]));
      for (guint s = 0; s < EXO_RESOURCE_STATE_LAST; s++)
        c->states[s] = g_variant_ref_sink (g_variant_new_string (exo_resource_state_to_string (s)));
      for (guint r = 0; r < G_N_ELEMENTS (c->results); r++)
        c->results[r] = g_variant_ref_sink (g_variant_new_string (exo_resource_result_to_string (r)));
      c->booleans[0] = g_variant_ref_sink (g_variant_new_boolean (FALSE));
      c->booleans[1] = g_variant_ref_sink (g_variant_new_boolean (TRUE));
      c->empty_string = g_variant_ref_sink (g_variant_new_string (""));
      c->empty_strv = g_variant_ref_sink (g_variant_new_strv (NULL, 0));
      c->empty_objv = g_variant_ref_sink (g_variant_new_objv (NULL, 0));
      c->zero_u = g_variant_ref_sink (g_variant_new_uint32 (0));
      c->zero_t = g_variant_ref_sink (g_variant_new_uint64 (0));
      g_once_init_leave (&constants, c);
    }
  return constants;
}

/* Returns: (transfer none): the state's nick as a string variant */
GVariant *
_exo_dbus_state_variant (ExoResourceState state)
{
  const Constants *c = constants ();

  if ((guint) state < EXO_RESOURCE_STATE_LAST)
    return c->states[state];
  return NULL;
}

/* Returns: (transfer none): "" */
GVariant *
_exo_dbus_empty_string_variant (void)
{
  return constants ()->empty_string;
}

/* Returns: (transfer none): an empty `ao` */
GVariant *
_exo_dbus_empty_objv_variant (void)
{
  return constants ()->empty_objv;
}

/* --- values -------------------------------------------------------------- */

static void
schedule_emission (ExoDBusEntry *entry)
{
  g_ptr_array_add (entry->self->changed_entries, entry);
  _exo_dbus_schedule_refresh (entry->self);
}

/* Stores @value (floating, or a reference we take over) as @prop of
 * @entry.
 * Returns: whether the value changed */
gboolean
_exo_dbus_entry_set (ExoDBusEntry *entry,
                     ExoDBusProp   prop,
                     GVariant     *value)
{
  GVariant *old = entry->values[prop];
  guint32 bit = 1u << prop;

  g_assert (prop < entry->n_values);

  if (g_variant_is_floating (value))
    g_variant_ref_sink (value);
  if (old != NULL && (old == value || g_variant_equal (old, value)))
    {
      g_variant_unref (value);
      return FALSE;
    }

  entry->values[prop] = value;
  g_clear_pointer (&entry->cached, g_variant_unref);
  g_clear_pointer (&entry->self->managed_objects, g_variant_unref);

  if (!entry->exported || old == NULL || (entry->changed & bit))
    {
      g_clear_pointer (&old, g_variant_unref);
      return TRUE;
    }

  /* The first change since the last emission: keep what clients saw. */
  if (entry->changed == 0)
    schedule_emission (entry);
  if (entry->emitted == NULL)
    entry->emitted = g_new0 (GVariant *, entry->n_values);
  entry->emitted[prop] = old;
  entry->changed |= bit;
  return TRUE;
}

/* The typed setters compare before they make a variant: most calls (the
 * poll, transitions that leave a value alone) change nothing. */
gboolean
_exo_dbus_entry_set_string (ExoDBusEntry *entry,
                            ExoDBusProp   prop,
                            const char   *value)
{
  GVariant *old = entry->values[prop];

  if (value == NULL)
    value = "";
  if (old != NULL && strcmp (g_variant_get_string (old, NULL), value) == 0)
    return FALSE;
  if (value[0] == '\0')
    return _exo_dbus_entry_set (entry, prop, g_variant_ref (constants ()->empty_string));
  return _exo_dbus_entry_set (entry, prop, g_variant_new_string (value));
}

gboolean
_exo_dbus_entry_set_boolean (ExoDBusEntry *entry,
                             ExoDBusProp   prop,
                             gboolean      value)
{
  return _exo_dbus_entry_set (entry, prop, g_variant_ref (constants ()->booleans[value != FALSE]));
}

gboolean
_exo_dbus_entry_set_uint32 (ExoDBusEntry *entry,
                            ExoDBusProp   prop,
                            guint32       value)
{
  GVariant *old = entry->values[prop];

  if (old != NULL && g_variant_get_uint32 (old) == value)
    return FALSE;
  if (value == 0)
    return _exo_dbus_entry_set (entry, prop, g_variant_ref (constants ()->zero_u));
  return _exo_dbus_entry_set (entry, prop, g_variant_new_uint32 (value));
}

gboolean
_exo_dbus_entry_set_uint64 (ExoDBusEntry *entry,
                            ExoDBusProp   prop,
                            guint64       value)
{
  GVariant *old = entry->values[prop];

  if (old != NULL && g_variant_get_uint64 (old) == value)
    return FALSE;
  if (value == 0)
    return _exo_dbus_entry_set (entry, prop, g_variant_ref (constants ()->zero_t));
  return _exo_dbus_entry_set (entry, prop, g_variant_new_uint64 (value));
}

/* Result nicks are few: shared like the states. */
gboolean
_exo_dbus_entry_set_result (ExoDBusEntry      *entry,
                            ExoResourceResult  result)
{
  const Constants *c = constants ();

  if ((guint) result < G_N_ELEMENTS (c->results))
    return _exo_dbus_entry_set (entry, PROP_RESULT, g_variant_ref (c->results[result]));
  return _exo_dbus_entry_set_string (entry, PROP_RESULT, exo_resource_result_to_string (result));
}

/* Forgets what is pending for PropertiesChanged. */
static void
entry_forget_changes (ExoDBusEntry *entry)
{
  if (entry->emitted != NULL)
    {
      for (guint i = 0; i < entry->n_values; i++)
        g_clear_pointer (&entry->emitted[i], g_variant_unref);
      g_clear_pointer (&entry->emitted, g_free);
    }
  entry->changed = 0;
}

void
_exo_dbus_entry_clear_values (ExoDBusEntry *entry)
{
  entry_forget_changes (entry);
  for (guint i = 0; i < entry->n_values; i++)
    g_clear_pointer (&entry->values[i], g_variant_unref);
  g_clear_pointer (&entry->cached, g_variant_unref);
}

/* --- PropertiesChanged ----------------------------------------------------- */

static GVariant *
dict_entry (ExoDBusProp  prop,
            GVariant    *value)
{
  /* The constructors take a reference of what is not floating. */
  return g_variant_new_dict_entry (constants ()->prop_names[prop], g_variant_new_variant (value));
}

static void
entry_emit_changes (ExoDBusEntry *entry)
{
  const Constants *c = constants ();

  for (guint i = 0; i < N_IFACES; i++)
    {
      GVariant *items[N_PROPS];
      GVariant *body[3];
      guint n = 0;

      if (!(entry->ifaces & (1u << i)))
        continue;
      for (guint p = iface_first[i]; p < iface_first[i + 1]; p++)
        if ((entry->changed & (1u << p)) &&
            !g_variant_equal (entry->emitted[p], entry->values[p]))
          items[n++] = dict_entry (p, entry->values[p]);
      if (n == 0)
        continue;

      body[0] = c->iface_names[i];
      body[1] = g_variant_new_array (G_VARIANT_TYPE ("{sv}"), items, n);
      body[2] = c->empty_strv;
      g_dbus_connection_emit_signal (entry->self->connection, NULL, entry->path,
                                     "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                     g_variant_new_tuple (body, 3), NULL);
    }
  entry_forget_changes (entry);
}

/* One PropertiesChanged per object and interface with what changed since
 * the last one, objects in the order of their first change. */
void
_exo_dbus_emit_properties_changed (ExoDBusExport *self)
{
  GPtrArray *changed = self->changed_entries;

  for (guint i = 0; i < changed->len; i++)
    entry_emit_changes (g_ptr_array_index (changed, i));
  g_ptr_array_set_size (changed, 0);
}

/* --- GetManagedObjects ---------------------------------------------------- */

/* Returns: (transfer full): a{sv} of interface @iface of @entry */
static GVariant *
entry_build_properties (ExoDBusEntry *entry,
                        ExoDBusIface  iface)
{
  GVariant *items[N_PROPS];
  guint n = 0;

  for (guint p = iface_first[iface]; p < iface_first[iface + 1]; p++)
    items[n++] = dict_entry (p, entry->values[p]);
  return g_variant_new_array (G_VARIANT_TYPE ("{sv}"), items, n);
}

/* Returns: (transfer none): the interfaces and properties of @entry, a{sa{sv}} */
static GVariant *
entry_get_interfaces (ExoDBusEntry *entry)
{
  if (entry->cached == NULL)
    {
      const Constants *c = constants ();
      GVariant *items[N_IFACES];
      guint n = 0;

      _exo_dbus_entry_ensure_values (entry);
      g_assert (entry->cached == NULL);

      for (guint i = 0; i < N_IFACES; i++)
        if (entry->ifaces & (1u << i))
          items[n++] = g_variant_new_dict_entry (c->iface_names[i],
                                                 entry_build_properties (entry, i));
      entry->cached = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sa{sv}}"), items, n));
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
          ExoDBusEntry *entry = value;

          if (entry->exported)
            g_variant_builder_add (&builder, "{o@a{sa{sv}}}", entry->path,
                                   entry_get_interfaces (entry));
        }
      self->managed_objects = g_variant_ref_sink (g_variant_builder_end (&builder));
      g_variant_get_data (self->managed_objects);
    }
  return self->managed_objects;
}

/* org.freedesktop.DBus.ObjectManager, as GDBusObjectManagerServer has it. */
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

/* Makes @entry visible on the bus; @announce emits InterfacesAdded. */
void
_exo_dbus_entry_export (ExoDBusEntry *entry,
                        gboolean      announce)
{
  ExoDBusExport *self = entry->self;

  if (entry->exported)
    return;
  entry->exported = TRUE;
  g_clear_pointer (&self->managed_objects, g_variant_unref);

  if (announce)
    emit_manager_signal (self, "InterfacesAdded",
                         g_variant_new ("(o@a{sa{sv}})", entry->path,
                                        entry_get_interfaces (entry)));
}

/* Takes @entry off the bus; @announce emits InterfacesRemoved. */
void
_exo_dbus_entry_unexport (ExoDBusEntry *entry,
                          gboolean      announce)
{
  ExoDBusExport *self = entry->self;

  if (!entry->exported)
    return;
  entry->exported = FALSE;
  g_clear_pointer (&self->managed_objects, g_variant_unref);
  if (entry->changed != 0)
    {
      g_ptr_array_remove_fast (self->changed_entries, entry);
      entry_forget_changes (entry);
    }

  if (announce)
    {
      const Constants *c = constants ();
      GVariant *names[N_IFACES];
      guint n = 0;

      for (guint i = 0; i < N_IFACES; i++)
        if (entry->ifaces & (1u << i))
          names[n++] = c->iface_names[i];
      emit_manager_signal (self, "InterfacesRemoved",
                           g_variant_new ("(o@as)", entry->path,
                                          g_variant_new_array (G_VARIANT_TYPE_STRING, names, n)));
    }
}

/* --- the subtree ------------------------------------------------------------ */

/* The subtree's user data: GDBus may run a queued message's subtree
 * functions after the registration is gone, so they reach the export
 * through this, which unexport clears. */
typedef struct
{
  ExoDBusExport *self;   /* unowned; NULL once unregistered */
} SubtreeHandle;

static ExoDBusEntry *
lookup_exported (ExoDBusExport *self,
                 const char    *path)
{
  ExoDBusEntry *entry = self != NULL ? g_hash_table_lookup (self->paths, path) : NULL;

  return entry != NULL && entry->exported ? entry : NULL;
}

static char **
subtree_enumerate (GDBusConnection *connection,
                   const char      *sender,
                   const char      *object_path,
                   gpointer         user_data)
{
  SubtreeHandle *handle = user_data;
  GPtrArray *nodes = g_ptr_array_new ();
  gsize prefix_len = strlen (EXO_DBUS_RESOURCE_PATH_PREFIX);

  if (handle->self != NULL)
    {
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, handle->self->entries);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          ExoDBusEntry *entry = value;

          if (entry->exported)
            g_ptr_array_add (nodes, g_strdup (entry->path + prefix_len));
        }
    }
  g_ptr_array_add (nodes, NULL);
  return (char **) g_ptr_array_free (nodes, FALSE);
}

static GDBusInterfaceInfo **
subtree_introspect (GDBusConnection *connection,
                    const char      *sender,
                    const char      *object_path,
                    const char      *node,
                    gpointer         user_data)
{
  SubtreeHandle *handle = user_data;
  const Constants *c = constants ();
  g_autofree char *path = NULL;
  GDBusInterfaceInfo **infos;
  ExoDBusEntry *entry;
  guint n = 0;

  /* The subtree's root is no object: it only has the resources below it. */
  if (node == NULL)
    return NULL;
  path = g_strconcat (EXO_DBUS_RESOURCE_PATH_PREFIX, node, NULL);
  entry = lookup_exported (handle->self, path);
  if (entry == NULL)
    return NULL;

  infos = g_new0 (GDBusInterfaceInfo *, N_IFACES + 1);
  for (guint i = 0; i < N_IFACES; i++)
    if (entry->ifaces & (1u << i))
      infos[n++] = g_dbus_interface_info_ref (c->ifaces[i]);
  return infos;
}

static void
resource_return_property (ExoDBusEntry          *entry,
                          GVariant              *parameters,
                          GDBusMethodInvocation *invocation)
{
  const Constants *c = constants ();
  const GDBusPropertyInfo *info = g_dbus_method_invocation_get_property_info (invocation);
  const char *iface_name;

  /* GDBus checked that the interface is one the entry had at dispatch
   * and that the property is readable. */
  g_variant_get (parameters, "(&s&s)", &iface_name, NULL);
  _exo_dbus_entry_ensure_values (entry);
  for (guint i = 0; i < N_IFACES; i++)
    {
      if (!(entry->ifaces & (1u << i)) || !g_str_equal (c->ifaces[i]->name, iface_name))
        continue;
      for (guint p = iface_first[i]; info != NULL && p < iface_first[i + 1]; p++)
        if (g_str_equal (prop_names[p], info->name))
          {
            g_dbus_method_invocation_return_value (invocation,
                                                   g_variant_new ("(v)", entry->values[p]));
            return;
          }
    }
  g_dbus_method_invocation_return_dbus_error (invocation, "org.freedesktop.DBus.Error.InvalidArgs",
                                              "No such property");
}

static void
resource_return_all (ExoDBusEntry          *entry,
                     GVariant              *parameters,
                     GDBusMethodInvocation *invocation)
{
  const Constants *c = constants ();
  GVariant *interfaces = entry_get_interfaces (entry);
  const char *iface_name;
  gsize n = 0;

  g_variant_get (parameters, "(&s)", &iface_name);
  for (guint i = 0; i < N_IFACES; i++)
    {
      if (!(entry->ifaces & (1u << i)))
        continue;
      if (g_str_equal (c->ifaces[i]->name, iface_name))
        {
          /* {sa{sv}} -> a{sv}, a view into the cached serialised data */
          g_autoptr(GVariant) item = g_variant_get_child_value (interfaces, n);
          g_autoptr(GVariant) properties = g_variant_get_child_value (item, 1);

          g_dbus_method_invocation_return_value (invocation,
                                                 g_variant_new_tuple (&properties, 1));
          return;
        }
      n++;
    }
  g_dbus_method_invocation_return_dbus_error (invocation, "org.freedesktop.DBus.Error.InvalidArgs",
                                              "No such interface");
}

static void
resource_method_call (GDBusConnection       *connection,
                      const char            *sender,
                      const char            *object_path,
                      const char            *interface_name,
                      const char            *method_name,
                      GVariant              *parameters,
                      GDBusMethodInvocation *invocation,
                      gpointer               user_data)
{
  SubtreeHandle *handle = user_data;
  ExoDBusEntry *entry = lookup_exported (handle->self, object_path);

  if (entry == NULL)
    {
      g_dbus_method_invocation_return_dbus_error (invocation, "org.freedesktop.DBus.Error.UnknownObject",
                                                  "No such object");
      return;
    }

  if (g_str_equal (interface_name, "org.freedesktop.DBus.Properties"))
    {
      if (g_str_equal (method_name, "Get"))
        resource_return_property (entry, parameters, invocation);
      else if (g_str_equal (method_name, "GetAll"))
        resource_return_all (entry, parameters, invocation);
      else   /* Set: GDBus refuses it first, every property is read-only */
        g_dbus_method_invocation_return_dbus_error (invocation, "org.freedesktop.DBus.Error.PropertyReadOnly",
                                                    "Properties are read-only");
      return;
    }

  /* GDBus has checked the call against the interface: only Resource1 has methods. */
  _exo_dbus_handle_resource_method (handle->self, entry, method_name, invocation);
}

static const GDBusInterfaceVTable resource_vtable = {
  resource_method_call, NULL, NULL, { NULL },
};

static const GDBusInterfaceVTable *
subtree_dispatch (GDBusConnection *connection,
                  const char      *sender,
                  const char      *object_path,
                  const char      *interface_name,
                  const char      *node,
                  gpointer        *out_user_data,
                  gpointer         user_data)
{
  *out_user_data = user_data;
  return &resource_vtable;
}

static const GDBusSubtreeVTable subtree_vtable = {
  subtree_enumerate, subtree_introspect, subtree_dispatch, { NULL },
};

static void
subtree_handle_free (gpointer data)
{
  g_free (data);
}

/* Registers the ObjectManager and the resource subtree; the entries are
 * visible once exported (_exo_dbus_entry_export). */
void
_exo_dbus_objects_register (ExoDBusExport *self)
{
  g_autofree char *root = g_strndup (EXO_DBUS_RESOURCE_PATH_PREFIX,
                                     strlen (EXO_DBUS_RESOURCE_PATH_PREFIX) - 1);
  g_autoptr(GError) error = NULL;
  SubtreeHandle *handle;

  constants ();   /* checks the property table */
  self->manager_id = g_dbus_connection_register_object (self->connection, EXO_DBUS_NODE_PATH,
                                                        manager_interface_info (),
                                                        &manager_vtable, self, NULL, &error);
  if (self->manager_id == 0)
    {
      g_critical ("cannot export %s on %s: %s", "org.freedesktop.DBus.ObjectManager",
                  EXO_DBUS_NODE_PATH, error->message);
      g_clear_error (&error);
    }

  handle = g_new0 (SubtreeHandle, 1);
  handle->self = self;
  self->subtree_id = g_dbus_connection_register_subtree (self->connection, root, &subtree_vtable,
                                                         G_DBUS_SUBTREE_FLAGS_DISPATCH_TO_UNENUMERATED_NODES,
                                                         handle, subtree_handle_free, &error);
  if (self->subtree_id != 0)
    self->subtree_handle = handle;
  else   /* GDBus keeps or frees @handle, not us */
    g_critical ("cannot export the resources on %s: %s", root, error->message);
}

void
_exo_dbus_objects_unregister (ExoDBusExport *self)
{
  if (self->subtree_handle != NULL)
    ((SubtreeHandle *) self->subtree_handle)->self = NULL;
  self->subtree_handle = NULL;
  if (self->subtree_id != 0)
    g_dbus_connection_unregister_subtree (self->connection, self->subtree_id);
  self->subtree_id = 0;
  if (self->manager_id != 0)
    g_dbus_connection_unregister_object (self->connection, self->manager_id);
  self->manager_id = 0;
}
