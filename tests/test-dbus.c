/* test-dbus.c: the D-Bus export of exo-node (docs/design.md §4), seen by a client —
 * main(), the exported objects and the node object.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A private bus (GTestDBus); the export runs in this process on one
 * connection, the client is a second connection to the same bus.  Both use
 * the thread-default main context, so every client call is asynchronous and
 * the test spins the context until the answer is there.  The Fixture and
 * the client calls are in dbus-fixture.c; properties and signals, methods,
 * and authorization in test-dbus-{signals,methods,auth}.c.
 */
#include <json-glib/json-glib.h>

#include "dbus-fixture.h"

/* --- objects --------------------------------------------------------------- */

static gboolean
object_has_interface (GVariant   *objects,
                      const char *path,
                      const char *iface)
{
  g_autoptr(GVariant) ifaces = g_variant_lookup_value (objects, path, G_VARIANT_TYPE ("a{sa{sv}}"));
  g_autoptr(GVariant) props = NULL;

  if (ifaces == NULL)
    return FALSE;
  props = g_variant_lookup_value (ifaces, iface, G_VARIANT_TYPE ("a{sv}"));
  return props != NULL;
}

static void
test_objects_initial (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GVariant) objects = get_managed_objects (f);
  g_autofree char *pool_escaped = g_dbus_escape_object_path (exo_resource_get_id (EXO_RESOURCE (f->pool)));
  g_autofree char *pool_path = g_strconcat (EXO_DBUS_RESOURCE_PATH_PREFIX, pool_escaped, NULL);
  const char *ids[] = { "root", "db", "api", "workers", "w1", "w2" };
  g_autoptr(GVariant) members = NULL;
  g_autoptr(GVariant) depends_on = NULL;
  g_autofree const char **member_paths = NULL;

  /* Six resources, the pool; nothing else (the node object is not a child). */
  g_assert_cmpuint (g_variant_n_children (objects), ==, 7);
  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      g_autofree char *path = g_strconcat (EXO_DBUS_RESOURCE_PATH_PREFIX, ids[i], NULL);

      g_assert_true (object_has_interface (objects, path, "org.exo.Resource1"));
      g_assert_false (object_has_interface (objects, path, "org.exo.ResourcePool1"));
    }
  g_assert_true (object_has_interface (objects, RESOURCE_PATH ("root"), "org.exo.ResourceGroup1"));
  g_assert_true (object_has_interface (objects, RESOURCE_PATH ("workers"), "org.exo.ResourceGroup1"));
  g_assert_false (object_has_interface (objects, RESOURCE_PATH ("db"), "org.exo.ResourceGroup1"));
  g_assert_true (object_has_interface (objects, pool_path, "org.exo.Resource1"));
  g_assert_true (object_has_interface (objects, pool_path, "org.exo.ResourcePool1"));
  g_assert_cmpstr (path_of (f, f->pool), ==, pool_path);

  /* Members in dependency order; DependsOn within the group. */
  members = get_property (f, RESOURCE_PATH ("root"), "org.exo.ResourceGroup1", "Members");
  member_paths = g_variant_get_objv (members, NULL);
  g_assert_cmpuint (g_strv_length ((char **) member_paths), ==, 4);
  g_assert_cmpstr (member_paths[0], ==, RESOURCE_PATH ("db"));
  g_assert_cmpstr (member_paths[1], ==, RESOURCE_PATH ("api"));
  g_clear_pointer (&members, g_variant_unref);
  members = get_property (f, RESOURCE_PATH ("workers"), "org.exo.ResourceGroup1", "Members");
  g_clear_pointer (&member_paths, g_free);
  member_paths = g_variant_get_objv (members, NULL);
  g_assert_cmpuint (g_strv_length ((char **) member_paths), ==, 2);
  g_assert_cmpstr (member_paths[0], ==, RESOURCE_PATH ("w1"));
  g_assert_cmpstr (member_paths[1], ==, RESOURCE_PATH ("w2"));

  depends_on = get_property (f, RESOURCE_PATH ("w2"), "org.exo.Resource1", "DependsOn");
  g_assert_cmpstr (g_variant_get_type_string (depends_on), ==, "ao");
  {
    g_autofree char *printed = g_variant_print (depends_on, FALSE);

    g_assert_cmpstr (printed, ==, "['/org/exo/Node1/resource/w1']");
  }
  g_clear_pointer (&depends_on, g_variant_unref);
  depends_on = get_property (f, RESOURCE_PATH ("workers"), "org.exo.Resource1", "DependsOn");
  {
    g_autofree char *printed = g_variant_print (depends_on, FALSE);

    g_assert_cmpstr (printed, ==, "['/org/exo/Node1/resource/db']");
  }
  g_clear_pointer (&depends_on, g_variant_unref);
  depends_on = get_property (f, RESOURCE_PATH ("db"), "org.exo.Resource1", "DependsOn");
  g_assert_cmpuint (g_variant_n_children (depends_on), ==, 0);
}

static void
test_node_properties (Fixture       *f,
                      gconstpointer  data)
{
  g_autofree char *node_id = get_string (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "NodeId");
  g_autofree char *version = get_string (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "Version");
  g_autofree char *state = get_string (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "State");
  g_autofree char *topology = get_string (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "Topology");
  g_autoptr(GVariant) plugins = get_property (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "Plugins");
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *object;
  JsonArray *resources;
  gboolean seen_w2 = FALSE;

  g_assert_cmpstr (node_id, ==, "node-test");
  g_assert_cmpstr (version, ==, EXO_VERSION_STRING);
  g_assert_cmpstr (state, ==, "uninitialized");
  g_assert_cmpstr (g_variant_get_type_string (plugins), ==, "a(ssss)");
  g_assert_cmpuint (g_variant_n_children (plugins), ==, 0);

  /* The default topology: every resource, its state and dependencies. */
  json_parser_load_from_data (parser, topology, -1, &error);
  g_assert_no_error (error);
  object = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (object, "node_id"), ==, "node-test");
  resources = json_object_get_array_member (object, "resources");
  g_assert_cmpuint (json_array_get_length (resources), ==, 7);
  for (guint i = 0; i < json_array_get_length (resources); i++)
    {
      JsonObject *r = json_array_get_object_element (resources, i);

      g_assert_cmpstr (json_object_get_string_member (r, "state"), ==, "uninitialized");
      g_assert_true (json_object_has_member (r, "type"));
      if (g_str_equal (json_object_get_string_member (r, "id"), "w2"))
        {
          JsonArray *deps = json_object_get_array_member (r, "depends_on");

          seen_w2 = TRUE;
          g_assert_cmpuint (json_array_get_length (deps), ==, 1);
          g_assert_cmpstr (json_array_get_string_element (deps, 0), ==, "w1");
          g_assert_cmpstr (json_object_get_string_member (r, "group"), ==, "workers");
        }
    }
  g_assert_true (seen_w2);

  /* Live: the root's state; the topology follows. */
  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->root), NULL));
  barrier (f);
  g_clear_pointer (&state, g_free);
  state = get_string (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "State");
  g_assert_cmpstr (state, ==, "ready");
  /* the topology is rebuilt at most every 100 ms: it follows within that */
  {
    gint64 end = g_get_monotonic_time () + 2 * G_USEC_PER_SEC * exo_test_slow_factor ();

    do
      {
        g_clear_pointer (&topology, g_free);
        exo_test_spin (20);
        topology = get_string (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "Topology");
      }
    while ((strstr (topology, "uninitialized") != NULL || strstr (topology, "initializing") != NULL) &&
           g_get_monotonic_time () < end);
  }
  g_assert_nonnull (strstr (topology, "\"state\":\"ready\""));
  g_assert_null (strstr (topology, "uninitialized"));

  /* Overrides. */
  exo_dbus_export_set_node_state (f->export, "stopping");
  exo_dbus_export_set_topology (f->export, "{\"cluster\":[]}");
  g_clear_pointer (&state, g_free);
  state = get_string (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "State");
  g_assert_cmpstr (state, ==, "stopping");
  g_clear_pointer (&topology, g_free);
  topology = get_string (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "Topology");
  g_assert_cmpstr (topology, ==, "{\"cluster\":[]}");
  exo_dbus_export_set_node_state (f->export, NULL);
  g_clear_pointer (&state, g_free);
  state = get_string (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "State");
  g_assert_cmpstr (state, ==, "ready");
}

static void
register_nothing (ExoPluginRegistrar *registrar)
{
}

static void
test_node_plugins (Fixture       *f,
                   gconstpointer  data)
{
  static const ExoPluginDescriptor descriptor = {
    EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR,
    "dbus-test-plugin", "1.2.3", "a plugin for the D-Bus test", register_nothing, { NULL, }
  };
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GPtrArray) infos = NULL;
  g_autoptr(GVariant) plugins = NULL;
  g_autoptr(GError) error = NULL;
  const char *name, *version, *path, *description;

  if (!exo_plugin_loader_register_builtin (loader, &descriptor, &error))
    {
      g_test_skip_printf ("cannot register a built-in plugin: %s", error->message);
      return;
    }
  infos = exo_plugin_loader_list_plugins (loader);
  exo_dbus_export_set_plugins (f->export, infos);

  plugins = get_property (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "Plugins");
  g_assert_cmpuint (g_variant_n_children (plugins), ==, infos->len);
  g_assert_cmpuint (g_variant_n_children (plugins), >=, 1);
  for (guint i = 0; i < g_variant_n_children (plugins); i++)
    {
      g_variant_get_child (plugins, i, "(&s&s&s&s)", &name, &version, &path, &description);
      if (g_str_equal (name, "dbus-test-plugin"))
        break;
      name = NULL;
    }
  g_assert_cmpstr (name, ==, "dbus-test-plugin");
  g_assert_cmpstr (version, ==, "1.2.3");
  g_assert_cmpstr (description, ==, "a plugin for the D-Bus test");
}

static void
remove_member (ExoResourceGroup *group,
               const char       *member)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  exo_resource_group_remove_async (group, member, TRUE, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_true (exo_resource_group_remove_finish (group, result, &error));
  g_assert_no_error (error);
}

static void
test_objects_added_removed (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(ExoTestResource) late = exo_test_resource_new ("late");
  g_autoptr(ExoTestResource) w3 = exo_test_resource_new ("w3");
  g_autoptr(ExoResourceGroup) sub = exo_resource_group_new ("sub");
  g_autoptr(ExoTestResource) s1 = exo_test_resource_new ("s1");
  g_autoptr(ExoTestResource) twin = exo_test_resource_new ("db");
  g_autoptr(ExoTestResource) odd = exo_test_resource_new ("a b/c_2");
  g_autoptr(GVariant) objects = NULL;
  g_autoptr(GVariant) members = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  const char *late_deps[] = { "db", NULL };
  g_autofree char *odd_escaped = g_dbus_escape_object_path ("a b/c_2");
  g_autofree char *odd_path = g_strconcat (EXO_DBUS_RESOURCE_PATH_PREFIX, odd_escaped, NULL);
  const char *path;

  /* Added to the root at runtime. */
  add_member (f->root, late, late_deps);
  wait_for_string (f->rec.added, RESOURCE_PATH ("late"));
  objects = get_managed_objects (f);
  g_assert_true (object_has_interface (objects, RESOURCE_PATH ("late"), "org.exo.Resource1"));
  g_clear_pointer (&objects, g_variant_unref);
  {
    g_autoptr(GVariant) deps = get_property (f, RESOURCE_PATH ("late"), "org.exo.Resource1", "DependsOn");
    g_autofree char *printed = g_variant_print (deps, FALSE);

    g_assert_cmpstr (printed, ==, "['/org/exo/Node1/resource/db']");
  }
  members = get_property (f, RESOURCE_PATH ("root"), "org.exo.ResourceGroup1", "Members");
  g_assert_cmpuint (g_variant_n_children (members), ==, 5);
  g_clear_pointer (&members, g_variant_unref);

  /* Added to a nested group; a group with a member added at once. */
  add_member (f->workers, w3, NULL);
  wait_for_string (f->rec.added, RESOURCE_PATH ("w3"));
  add_member (sub, s1, NULL);
  add_member (f->workers, sub, NULL);
  wait_for_string (f->rec.added, RESOURCE_PATH ("sub"));
  wait_for_string (f->rec.added, RESOURCE_PATH ("s1"));
  members = get_property (f, RESOURCE_PATH ("workers"), "org.exo.ResourceGroup1", "Members");
  g_assert_cmpuint (g_variant_n_children (members), ==, 4);
  g_clear_pointer (&members, g_variant_unref);

  /* Same id as a resource in another group: a path of its own. */
  add_member (sub, twin, NULL);
  wait_for_string (f->rec.added, RESOURCE_PATH ("db_2"));
  g_assert_cmpstr (path_of (f, twin), ==, RESOURCE_PATH ("db_2"));
  g_assert_cmpstr (path_of (f, f->db), ==, RESOURCE_PATH ("db"));
  /* An id that needs escaping. */
  add_member (sub, odd, NULL);
  wait_for_string (f->rec.added, odd_path);
  g_assert_cmpstr (path_of (f, odd), ==, odd_path);
  reply = call (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "GetResource",
                g_variant_new ("(s)", "a b/c_2"), G_VARIANT_TYPE ("(o)"), &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(&o)", &path);
  g_assert_cmpstr (path, ==, odd_path);
  g_clear_pointer (&reply, g_variant_unref);
  /* GetResource gives the first one with that id. */
  reply = call (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "GetResource",
                g_variant_new ("(s)", "db"), G_VARIANT_TYPE ("(o)"), &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(&o)", &path);
  g_assert_cmpstr (path, ==, RESOURCE_PATH ("db"));
  g_clear_pointer (&reply, g_variant_unref);

  /* Removed: the object goes; a removed group takes its members along. */
  remove_member (f->root, "late");
  wait_for_string (f->rec.removed, RESOURCE_PATH ("late"));
  remove_member (f->workers, "sub");
  wait_for_string (f->rec.removed, RESOURCE_PATH ("sub"));
  wait_for_string (f->rec.removed, RESOURCE_PATH ("s1"));
  wait_for_string (f->rec.removed, RESOURCE_PATH ("db_2"));
  wait_for_string (f->rec.removed, odd_path);
  objects = get_managed_objects (f);
  g_assert_false (object_has_interface (objects, RESOURCE_PATH ("late"), "org.exo.Resource1"));
  g_assert_false (object_has_interface (objects, RESOURCE_PATH ("s1"), "org.exo.Resource1"));
  g_assert_false (object_has_interface (objects, RESOURCE_PATH ("db_2"), "org.exo.Resource1"));
  g_assert_true (object_has_interface (objects, RESOURCE_PATH ("w3"), "org.exo.Resource1"));
  g_assert_cmpuint (g_variant_n_children (objects), ==, 8);
  g_assert_cmpuint (exo_dbus_export_get_n_objects (f->export), ==, 8);
  g_assert_null (exo_dbus_export_get_object_path (f->export, EXO_RESOURCE (late)));
  members = get_property (f, RESOURCE_PATH ("root"), "org.exo.ResourceGroup1", "Members");
  g_assert_cmpuint (g_variant_n_children (members), ==, 4);

  /* A removed resource changing state is not seen any more. */
  g_ptr_array_set_size (f->rec.state_changes, 0);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (late), NULL));
  barrier (f);
  for (guint i = 0; i < f->rec.state_changes->len; i++)
    g_assert_false (g_str_has_prefix (g_ptr_array_index (f->rec.state_changes, i), RESOURCE_PATH ("late ")));
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (late), NULL));
}

/* GetManagedObjects answers from a cache: it must follow every change. */
static GVariant *
managed_property (GVariant   *objects,
                  const char *path,
                  const char *iface,
                  const char *name)
{
  g_autoptr(GVariant) interfaces = g_variant_lookup_value (objects, path, G_VARIANT_TYPE ("a{sa{sv}}"));
  g_autoptr(GVariant) properties = NULL;

  g_assert_nonnull (interfaces);
  properties = g_variant_lookup_value (interfaces, iface, G_VARIANT_TYPE ("a{sv}"));
  g_assert_nonnull (properties);
  return g_variant_lookup_value (properties, name, NULL);
}

typedef struct
{
  Fixture  *f;
  gboolean  seen;
} LateDep;

static gboolean
late_dependency_seen (gpointer data)
{
  LateDep *late = data;
  g_autoptr(GVariant) objects = get_managed_objects (late->f);
  g_autoptr(GVariant) deps = managed_property (objects, RESOURCE_PATH ("workers"), "org.exo.Resource1", "DependsOn");
  g_autofree char *printed = g_variant_print (deps, FALSE);

  return strstr (printed, path_of (late->f, EXO_RESOURCE (late->f->pool))) != NULL;
}

static void
test_objects_cache (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GVariant) objects = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) members = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *topology_before = NULL;
  g_autofree char *topology_after = NULL;
  LateDep late = { f, FALSE };
  gsize workers_at = G_MAXSIZE, pool_at = G_MAXSIZE;

  objects = get_managed_objects (f);
  value = managed_property (objects, RESOURCE_PATH ("db"), "org.exo.Resource1", "State");
  g_assert_cmpstr (g_variant_get_string (value, NULL), !=, "ready");
  g_clear_pointer (&value, g_variant_unref);
  g_clear_pointer (&objects, g_variant_unref);

  /* A state change shows in the next GetManagedObjects. */
  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->db), NULL));
  barrier (f);
  objects = get_managed_objects (f);
  value = managed_property (objects, RESOURCE_PATH ("db"), "org.exo.Resource1", "State");
  g_assert_cmpstr (g_variant_get_string (value, NULL), ==, "ready");
  g_clear_pointer (&value, g_variant_unref);
  g_clear_pointer (&objects, g_variant_unref);

  /* A dependency added without a signal is found by the poll: DependsOn,
   * the group's Members order and the topology follow. */
  topology_before = get_string (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "Topology");
  exo_resource_group_add_dependency (f->root, "workers", exo_resource_get_id (EXO_RESOURCE (f->pool)), &error);
  g_assert_no_error (error);
  g_assert_true (exo_test_spin_until (late_dependency_seen, &late, WAIT_MS));
  barrier (f);
  members = get_property (f, RESOURCE_PATH ("root"), "org.exo.ResourceGroup1", "Members");
  for (gsize i = 0; i < g_variant_n_children (members); i++)
    {
      const char *path;

      g_variant_get_child (members, i, "&o", &path);
      if (g_str_equal (path, RESOURCE_PATH ("workers")))
        workers_at = i;
      else if (g_str_equal (path, path_of (f, EXO_RESOURCE (f->pool))))
        pool_at = i;
    }
  g_assert_cmpuint (pool_at, <, workers_at);
  g_assert_cmpuint (workers_at, <, g_variant_n_children (members));
  topology_after = get_string (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "Topology");
  g_assert_cmpstr (topology_after, !=, topology_before);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (f->db), NULL));
}

static char *
introspect (Fixture    *f,
            const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  char *xml;

  reply = call (f, path, "org.freedesktop.DBus.Introspectable", "Introspect", NULL,
                G_VARIANT_TYPE ("(s)"), &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(s)", &xml);
  return xml;
}

static GVariant *
get_all (Fixture    *f,
         const char *path,
         const char *iface)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariant *properties;

  reply = call (f, path, "org.freedesktop.DBus.Properties", "GetAll", g_variant_new ("(s)", iface),
                G_VARIANT_TYPE ("(a{sv})"), &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(@a{sv})", &properties);
  return properties;
}

/* The resource objects are one subtree: introspection lists them and each
 * object's own interfaces, and GetAll agrees with GetManagedObjects. */
static void
test_objects_introspect (Fixture       *f,
                         gconstpointer  data)
{
  const char *pool_path = path_of (f, f->pool);
  const char *nodes[] = { "root", "db", "workers", "w2" };
  g_autofree char *tree_xml = introspect (f, "/org/exo/Node1/resource");
  g_autofree char *db_xml = introspect (f, RESOURCE_PATH ("db"));
  g_autofree char *pool_xml = introspect (f, pool_path);
  g_autofree char *workers_xml = introspect (f, RESOURCE_PATH ("workers"));
  g_autoptr(GVariant) objects = NULL;
  g_autoptr(GVariant) all = NULL;
  g_autoptr(GVariant) managed = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (nodes); i++)
    {
      g_autofree char *node = g_strdup_printf ("<node name=\"%s\"/>", nodes[i]);

      g_assert_nonnull (strstr (tree_xml, node));
    }
  g_assert_nonnull (strstr (db_xml, "<interface name=\"org.exo.Resource1\">"));
  g_assert_null (strstr (db_xml, "org.exo.ResourcePool1"));
  g_assert_null (strstr (db_xml, "org.exo.ResourceGroup1"));
  g_assert_nonnull (strstr (pool_xml, "<interface name=\"org.exo.ResourcePool1\">"));
  g_assert_nonnull (strstr (workers_xml, "<interface name=\"org.exo.ResourceGroup1\">"));
  /* Id and Type never change: clients may cache them (busctl, dbus-next). */
  {
    g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml (db_xml, NULL);
    GDBusInterfaceInfo *iface = info != NULL ? g_dbus_node_info_lookup_interface (info, "org.exo.Resource1") : NULL;
    const char *consts[] = { "Id", "Type" };

    g_assert_nonnull (iface);
    for (guint i = 0; i < G_N_ELEMENTS (consts); i++)
      {
        GDBusPropertyInfo *prop = g_dbus_interface_info_lookup_property (iface, consts[i]);

        g_assert_nonnull (prop);
        g_assert_cmpstr (g_dbus_annotation_info_lookup (prop->annotations,
                                                        "org.freedesktop.DBus.Property.EmitsChangedSignal"),
                         ==, "const");
      }
    g_assert_null (g_dbus_annotation_info_lookup (g_dbus_interface_info_lookup_property (iface, "State")->annotations,
                                                  "org.freedesktop.DBus.Property.EmitsChangedSignal"));
  }

  /* GetAll reads what GetManagedObjects reads, Metrics included. */
  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->root), NULL));
  barrier (f);
  objects = get_managed_objects (f);
  all = get_all (f, RESOURCE_PATH ("db"), "org.exo.Resource1");
  managed = managed_property (objects, RESOURCE_PATH ("db"), "org.exo.Resource1", "State");
  g_assert_cmpuint (g_variant_n_children (all), ==, 13);
  {
    g_autoptr(GVariant) state = g_variant_lookup_value (all, "State", G_VARIANT_TYPE_STRING);
    g_autoptr(GVariant) metrics = g_variant_lookup_value (all, "Metrics", G_VARIANT_TYPE_VARDICT);

    g_assert_true (g_variant_equal (state, managed));
    g_assert_nonnull (metrics);
  }
  g_clear_pointer (&all, g_variant_unref);
  all = get_all (f, pool_path, "org.exo.ResourcePool1");
  g_assert_cmpuint (g_variant_n_children (all), ==, 10);
  g_clear_pointer (&all, g_variant_unref);
  all = get_all (f, RESOURCE_PATH ("workers"), "org.exo.ResourceGroup1");
  g_assert_cmpuint (g_variant_n_children (all), ==, 1);
}

static void
test_node_shutdown (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = call (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "Shutdown", NULL, G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f->n_shutdown_requests, ==, 1);
}

/* --- main -------------------------------------------------------------------- */

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);

  ADD ("/exo/dbus/objects/initial", test_objects_initial);
  ADD ("/exo/dbus/objects/added-removed", test_objects_added_removed);
  ADD ("/exo/dbus/objects/cache", test_objects_cache);
  ADD ("/exo/dbus/objects/introspect", test_objects_introspect);
  ADD ("/exo/dbus/node/properties", test_node_properties);
  ADD ("/exo/dbus/node/plugins", test_node_plugins);
  ADD ("/exo/dbus/node/shutdown", test_node_shutdown);
  test_dbus_register_signals ();
  test_dbus_register_methods ();
  test_dbus_register_auth ();

  test_bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (test_bus);

  ret = g_test_run ();

  g_test_dbus_down (test_bus);
  g_clear_object (&test_bus);
  return ret;
}
