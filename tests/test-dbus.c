/* test-dbus.c: the D-Bus export of exo-node (docs/design.md §4), seen by a client.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A private bus (GTestDBus); the export runs in this process on one
 * connection, the client is a second connection to the same bus.  Both use
 * the thread-default main context, so every client call is asynchronous and
 * the test spins the context until the answer is there.
 */
#include <unistd.h>
#include <signal.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "exo-test-util.h"
#include "exo-dbus-export.h"

#define WAIT_MS (30000 * exo_test_slow_factor ())
#define RESOURCE_PATH(id) EXO_DBUS_RESOURCE_PATH_PREFIX id

static GTestDBus *test_bus;

/* --- what the client saw --------------------------------------------------- */

typedef struct
{
  GPtrArray  *added;             /* paths (InterfacesAdded) */
  GPtrArray  *removed;           /* paths (InterfacesRemoved) */
  GPtrArray  *state_changes;     /* "path old>new:message" */
  GHashTable *pc_counts;         /* "path interface" -> count of PropertiesChanged */
  GHashTable *pc_last;           /* "path interface" -> GVariant a{sv} of the last one */
  guint       ids[3];
} Recorder;

typedef struct
{
  char             *address;
  GDBusConnection  *server;
  GDBusConnection  *client;
  const char       *server_name;
  ExoResourceGroup *root;
  ExoResourceGroup *workers;
  ExoTestResource  *db;
  ExoTestResource  *api;
  ExoTestResource  *w1;
  ExoTestResource  *w2;
  ExoResourcePool  *pool;
  ExoDBusExport    *export;
  Recorder          rec;
  guint             n_shutdown_requests;
} Fixture;

static void
on_signal (GDBusConnection *connection,
           const char      *sender_name,
           const char      *object_path,
           const char      *interface_name,
           const char      *signal_name,
           GVariant        *parameters,
           gpointer         user_data)
{
  Recorder *rec = user_data;

  if (g_str_equal (signal_name, "InterfacesAdded"))
    {
      const char *path;

      g_variant_get (parameters, "(&o@a{sa{sv}})", &path, NULL);
      g_ptr_array_add (rec->added, g_strdup (path));
    }
  else if (g_str_equal (signal_name, "InterfacesRemoved"))
    {
      const char *path;

      g_variant_get (parameters, "(&o@as)", &path, NULL);
      g_ptr_array_add (rec->removed, g_strdup (path));
    }
  else if (g_str_equal (signal_name, "StateChanged"))
    {
      const char *old_state, *new_state, *message;

      g_variant_get (parameters, "(&s&s&s)", &old_state, &new_state, &message);
      g_ptr_array_add (rec->state_changes,
                       g_strdup_printf ("%s %s>%s:%s", object_path, old_state, new_state, message));
    }
  else if (g_str_equal (signal_name, "PropertiesChanged"))
    {
      const char *iface;
      GVariant *changed;
      char *key;

      g_variant_get (parameters, "(&s@a{sv}@as)", &iface, &changed, NULL);
      key = g_strdup_printf ("%s %s", object_path, iface);
      g_hash_table_insert (rec->pc_counts, g_strdup (key),
                           GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (rec->pc_counts, key)) + 1));
      g_hash_table_insert (rec->pc_last, key, changed);
    }
}

static void
recorder_start (Recorder        *rec,
                GDBusConnection *client,
                const char      *server_name)
{
  rec->added = g_ptr_array_new_with_free_func (g_free);
  rec->removed = g_ptr_array_new_with_free_func (g_free);
  rec->state_changes = g_ptr_array_new_with_free_func (g_free);
  rec->pc_counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  rec->pc_last = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_variant_unref);

  rec->ids[0] = g_dbus_connection_signal_subscribe (client, server_name,
                                                    "org.freedesktop.DBus.ObjectManager", NULL,
                                                    EXO_DBUS_NODE_PATH, NULL,
                                                    G_DBUS_SIGNAL_FLAGS_NONE, on_signal, rec, NULL);
  rec->ids[1] = g_dbus_connection_signal_subscribe (client, server_name,
                                                    "org.exo.Resource1", "StateChanged",
                                                    NULL, NULL,
                                                    G_DBUS_SIGNAL_FLAGS_NONE, on_signal, rec, NULL);
  rec->ids[2] = g_dbus_connection_signal_subscribe (client, server_name,
                                                    "org.freedesktop.DBus.Properties",
                                                    "PropertiesChanged", NULL, NULL,
                                                    G_DBUS_SIGNAL_FLAGS_NONE, on_signal, rec, NULL);
}

static void
recorder_stop (Recorder        *rec,
               GDBusConnection *client)
{
  for (guint i = 0; i < G_N_ELEMENTS (rec->ids); i++)
    if (rec->ids[i] != 0)
      g_dbus_connection_signal_unsubscribe (client, rec->ids[i]);
  g_clear_pointer (&rec->added, g_ptr_array_unref);
  g_clear_pointer (&rec->removed, g_ptr_array_unref);
  g_clear_pointer (&rec->state_changes, g_ptr_array_unref);
  g_clear_pointer (&rec->pc_counts, g_hash_table_unref);
  g_clear_pointer (&rec->pc_last, g_hash_table_unref);
}

static guint
pc_count (Fixture    *f,
          const char *path,
          const char *iface)
{
  g_autofree char *key = g_strdup_printf ("%s %s", path, iface);

  return GPOINTER_TO_UINT (g_hash_table_lookup (f->rec.pc_counts, key));
}

static GVariant *
pc_last (Fixture    *f,
         const char *path,
         const char *iface)
{
  g_autofree char *key = g_strdup_printf ("%s %s", path, iface);

  return g_hash_table_lookup (f->rec.pc_last, key);
}

static gboolean
strv_has (GPtrArray  *array,
          const char *what)
{
  for (guint i = 0; i < array->len; i++)
    if (g_str_equal (g_ptr_array_index (array, i), what))
      return TRUE;
  return FALSE;
}

/* --- waiting --------------------------------------------------------------- */

typedef struct
{
  GPtrArray  *array;
  const char *what;
} HasData;

static gboolean
has_cond (gpointer data)
{
  HasData *has = data;

  return strv_has (has->array, has->what);
}

static void
wait_for_string (GPtrArray  *array,
                 const char *what)
{
  HasData has = { array, what };

  if (!exo_test_spin_until (has_cond, &has, WAIT_MS))
    g_error ("timed out waiting for '%s'", what);
}

static gboolean
count_cond (gpointer data)
{
  gpointer *args = data;
  GPtrArray *array = args[0];

  return array->len >= GPOINTER_TO_UINT (args[1]);
}

static void
wait_for_count (GPtrArray *array,
                guint      n)
{
  gpointer args[2] = { array, GUINT_TO_POINTER (n) };

  if (!exo_test_spin_until (count_cond, args, WAIT_MS))
    g_error ("timed out waiting for %u entries (have %u)", n, array->len);
}

/* --- client calls (asynchronous: the export runs in this thread) ----------- */

static GVariant *
call_full (GDBusConnection     *client,
           const char          *dest,
           const char          *path,
           const char          *iface,
           const char          *method,
           GVariant            *params,
           const GVariantType  *reply_type,
           GError             **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  g_dbus_connection_call (client, dest, path, iface, method, params, reply_type,
                          G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL,
                          exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS + 1000));
  return g_dbus_connection_call_finish (client, result, error);
}

static GVariant *
call (Fixture            *f,
      const char         *path,
      const char         *iface,
      const char         *method,
      GVariant           *params,
      const GVariantType *reply_type,
      GError            **error)
{
  return call_full (f->client, f->server_name, path, iface, method, params, reply_type, error);
}

static GVariant *
get_property (Fixture    *f,
              const char *path,
              const char *iface,
              const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariant *value;

  reply = call (f, path, "org.freedesktop.DBus.Properties", "Get",
                g_variant_new ("(ss)", iface, name), G_VARIANT_TYPE ("(v)"), &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

static char *
get_string (Fixture    *f,
            const char *path,
            const char *iface,
            const char *name)
{
  g_autoptr(GVariant) value = get_property (f, path, iface, name);

  return g_variant_dup_string (value, NULL);
}

/* Everything the export sent before this returns has been dispatched to the
 * client's handlers: the bus keeps one sender's messages in order, and the
 * reply is dispatched in this context after the signals. */
static void
barrier (Fixture *f)
{
  g_autoptr(GVariant) value = get_property (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "NodeId");
}

static GVariant *
get_managed_objects (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariant *objects;

  reply = call (f, EXO_DBUS_NODE_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                NULL, G_VARIANT_TYPE ("(a{oa{sa{sv}}})"), &error);
  g_assert_no_error (error);
  objects = g_variant_get_child_value (reply, 0);
  return objects;
}

static void
assert_dbus_error (const GError *error,
                   const char   *name)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  if (g_strcmp0 (remote, name) != 0)
    g_error ("expected D-Bus error %s, got %s (%s)", name,
             remote != NULL ? remote : "(none)", error->message);
}

/* --- fixture ----------------------------------------------------------------- */

static GDBusConnection *
connect_to (const char *address)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *connection;

  connection = g_dbus_connection_new_for_address_sync (address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
  g_assert_no_error (error);
  return connection;
}

/* The bus has handled everything @connection sent before, such as the
 * AddMatch of a signal subscription (the bus is another process: a
 * synchronous call cannot deadlock). */
static void
bus_round_trip (GDBusConnection *connection)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetId", NULL, G_VARIANT_TYPE ("(s)"),
                                       G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL, &error);
  g_assert_no_error (error);
}

static void
on_shutdown_requested (ExoDBusExport *export,
                       gpointer       user_data)
{
  Fixture *f = user_data;

  f->n_shutdown_requests++;
}

static void
add_member (ExoResourceGroup   *group,
            gpointer            resource,
            const char * const *deps)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (resource), deps, &error));
  g_assert_no_error (error);
}

/* root: db, api (-> db), workers (-> db) { w1, w2 (-> w1) }, pool (-> db) */
static void
fixture_set_up_on (Fixture    *f,
                   const char *address)
{
  const char *api_deps[] = { "db", NULL };
  const char *w2_deps[] = { "w1", NULL };

  f->address = g_strdup (address);
  f->server = connect_to (address);
  f->client = connect_to (address);
  f->server_name = g_dbus_connection_get_unique_name (f->server);

  f->root = exo_resource_group_new ("root");
  f->workers = exo_resource_group_new ("workers");
  f->db = exo_test_resource_new ("db");
  f->api = exo_test_resource_new ("api");
  f->w1 = exo_test_resource_new ("w1");
  f->w2 = exo_test_resource_new ("w2");
  f->pool = exo_resource_pool_new (EXO_TYPE_TEST_RESOURCE, 1, 4);

  add_member (f->root, f->db, NULL);
  add_member (f->root, f->api, api_deps);
  add_member (f->workers, f->w1, NULL);
  add_member (f->workers, f->w2, w2_deps);
  add_member (f->root, f->workers, api_deps);
  add_member (f->root, f->pool, api_deps);

  recorder_start (&f->rec, f->client, f->server_name);
  bus_round_trip (f->client);
  f->export = exo_dbus_export_new (f->server, "node-test", f->root);
  g_signal_connect (f->export, "shutdown-requested", G_CALLBACK (on_shutdown_requested), f);
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  fixture_set_up_on (f, g_test_dbus_get_bus_address (test_bus));
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  exo_dbus_export_unexport (f->export);
  g_clear_object (&f->export);
  recorder_stop (&f->rec, f->client);

  if (exo_resource_get_state (EXO_RESOURCE (f->root)) != EXO_RESOURCE_STATE_UNINITIALIZED &&
      exo_resource_get_state (EXO_RESOURCE (f->root)) != EXO_RESOURCE_STATE_CLOSED)
    exo_test_cleanup (EXO_RESOURCE (f->root), NULL);

  g_clear_object (&f->db);
  g_clear_object (&f->api);
  g_clear_object (&f->w1);
  g_clear_object (&f->w2);
  g_clear_object (&f->pool);
  g_clear_object (&f->workers);
  g_clear_object (&f->root);

  g_dbus_connection_close_sync (f->client, NULL, &error);
  g_assert_no_error (error);
  g_dbus_connection_close_sync (f->server, NULL, &error);
  g_assert_no_error (error);
  g_clear_object (&f->client);
  g_clear_object (&f->server);
  g_clear_pointer (&f->address, g_free);

  /* Let idles holding the last references run. */
  exo_test_spin (10);
}

static const char *
path_of (Fixture *f,
         gpointer resource)
{
  const char *path = exo_dbus_export_get_object_path (f->export, EXO_RESOURCE (resource));

  g_assert_nonnull (path);
  return path;
}

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

/* --- properties and signals -------------------------------------------------- */

static void
test_properties_mirror (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(GVariant) value = NULL;
  g_autofree char *state = NULL;
  g_autofree char *last_error = NULL;
  gint64 before = g_get_real_time ();
  GVariant *changed;
  const char *path = RESOURCE_PATH ("api");

  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->root), NULL));
  barrier (f);

  state = get_string (f, path, "org.exo.Resource1", "State");
  g_assert_cmpstr (state, ==, "ready");
  value = get_property (f, path, "org.exo.Resource1", "Healthy");
  g_assert_true (g_variant_get_boolean (value));
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (f, path, "org.exo.Resource1", "InitializedAt");
  g_assert_cmpuint (g_variant_get_uint64 (value), >=, (guint64) before);
  g_assert_cmpuint (g_variant_get_uint64 (value), ==,
                    (guint64) exo_resource_get_initialized_at (EXO_RESOURCE (f->api)));
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (f, path, "org.exo.Resource1", "StateChangedAt");
  g_assert_cmpuint (g_variant_get_uint64 (value), ==,
                    (guint64) exo_resource_get_state_changed_at (EXO_RESOURCE (f->api)));
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (f, path, "org.exo.Resource1", "Type");
  g_assert_cmpstr (g_variant_get_string (value, NULL), ==,
                   exo_resource_get_resource_type (EXO_RESOURCE (f->api)));
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (f, path, "org.exo.Resource1", "Metrics");
  g_assert_cmpstr (g_variant_get_type_string (value), ==, "a{sv}");
  g_clear_pointer (&value, g_variant_unref);
  last_error = get_string (f, path, "org.exo.Resource1", "LastError");
  g_assert_cmpstr (last_error, ==, "");

  /* Pool counters (the pool notifies them at most every 25 ms). */
  g_assert_cmpuint (exo_resource_pool_get_size (f->pool), >=, 1);
  for (gint64 end = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;; )
    {
      value = get_property (f, path_of (f, f->pool), "org.exo.ResourcePool1", "Size");
      if (g_variant_get_uint32 (value) == exo_resource_pool_get_size (f->pool))
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_clear_pointer (&value, g_variant_unref);
      exo_test_spin (10);
    }
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (f, path_of (f, f->pool), "org.exo.ResourcePool1", "MaxSize");
  g_assert_cmpuint (g_variant_get_uint32 (value), ==, 4);
  g_clear_pointer (&value, g_variant_unref);

  /* DisplayName follows notify::display-name. */
  exo_resource_set_display_name (EXO_RESOURCE (f->api), "The API");
  barrier (f);
  changed = pc_last (f, path, "org.exo.Resource1");
  g_assert_nonnull (changed);
  value = g_variant_lookup_value (changed, "DisplayName", G_VARIANT_TYPE_STRING);
  g_assert_nonnull (value);
  g_assert_cmpstr (g_variant_get_string (value, NULL), ==, "The API");
  g_clear_pointer (&value, g_variant_unref);

  /* A failure: LastError, ErrorCount, Healthy. */
  {
    g_autoptr(GError) error = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                                                   "disk is on fire");

    exo_resource_report_health (EXO_RESOURCE (f->api), FALSE, error);
  }
  barrier (f);
  g_clear_pointer (&state, g_free);
  state = get_string (f, path, "org.exo.Resource1", "State");
  g_assert_cmpstr (state, ==, "degraded");
  g_clear_pointer (&last_error, g_free);
  last_error = get_string (f, path, "org.exo.Resource1", "LastError");
  g_assert_cmpstr (last_error, ==, "disk is on fire");
  value = get_property (f, path, "org.exo.Resource1", "ErrorCount");
  g_assert_cmpuint (g_variant_get_uint32 (value), ==, exo_resource_get_error_count (EXO_RESOURCE (f->api)));
  g_assert_cmpuint (g_variant_get_uint32 (value), >=, 1);
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (f, path, "org.exo.Resource1", "Healthy");
  g_assert_false (g_variant_get_boolean (value));
  g_assert_true (strv_has (f->rec.state_changes,
                           RESOURCE_PATH ("api") " ready>degraded:disk is on fire"));
}

static void
test_signals_state_changed (Fixture       *f,
                            gconstpointer  data)
{
  const char *path = RESOURCE_PATH ("db");
  GVariant *changed;
  g_autoptr(GVariant) state = NULL;
  g_autoptr(GVariant) healthy = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->db), NULL));
  wait_for_string (f->rec.state_changes, RESOURCE_PATH ("db") " initializing>ready:");
  g_assert_true (strv_has (f->rec.state_changes, RESOURCE_PATH ("db") " uninitialized>initializing:"));
  barrier (f);

  g_assert_cmpuint (pc_count (f, path, "org.exo.Resource1"), >=, 1);
  changed = pc_last (f, path, "org.exo.Resource1");
  state = g_variant_lookup_value (changed, "State", G_VARIANT_TYPE_STRING);
  g_assert_nonnull (state);
  g_assert_cmpstr (g_variant_get_string (state, NULL), ==, "ready");
  healthy = g_variant_lookup_value (changed, "Healthy", G_VARIANT_TYPE_BOOLEAN);
  g_assert_nonnull (healthy);
  g_assert_true (g_variant_get_boolean (healthy));

  /* A failed initialize carries the error message. */
  f->api->fail_inits = 1;
  f->api->fail_fatal = TRUE;
  g_assert_false (exo_test_initialize (EXO_RESOURCE (f->api), NULL));
  barrier (f);
  {
    gboolean found = FALSE;

    for (guint i = 0; i < f->rec.state_changes->len; i++)
      {
        const char *line = g_ptr_array_index (f->rec.state_changes, i);

        if (g_str_has_prefix (line, RESOURCE_PATH ("api") " initializing>error:") &&
            strlen (line) > strlen (RESOURCE_PATH ("api") " initializing>error:"))
          found = TRUE;
      }
    g_assert_true (found);
  }
}

/* 10,000 transitions in one main-loop iteration: one StateChanged each, at
 * most one PropertiesChanged. */
static void
test_signals_coalesced (Fixture       *f,
                        gconstpointer  data)
{
  const char *path = RESOURCE_PATH ("db");
  const guint n = 10000;
  g_autoptr(GError) unhealthy = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                                                     "flapping");
  GVariant *changed;
  g_autoptr(GVariant) state_changed_at = NULL;

  /* No recovery attempt may come in between. */
  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (f->db), FALSE);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->db), NULL));
  barrier (f);
  g_hash_table_remove_all (f->rec.pc_counts);
  g_hash_table_remove_all (f->rec.pc_last);
  g_ptr_array_set_size (f->rec.state_changes, 0);

  for (guint i = 0; i < n; i++)
    exo_resource_report_health (EXO_RESOURCE (f->db), i % 2 == 1, unhealthy);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->db)), ==, EXO_RESOURCE_STATE_READY);

  wait_for_count (f->rec.state_changes, n);
  barrier (f);
  g_assert_cmpuint (f->rec.state_changes->len, ==, n);
  g_assert_cmpstr (g_ptr_array_index (f->rec.state_changes, 0), ==,
                   RESOURCE_PATH ("db") " ready>degraded:flapping");
  g_assert_cmpstr (g_ptr_array_index (f->rec.state_changes, n - 1), ==,
                   RESOURCE_PATH ("db") " degraded>ready:");

  g_test_message ("PropertiesChanged for %u state changes: %u", n,
                  pc_count (f, path, "org.exo.Resource1"));
  g_assert_cmpuint (pc_count (f, path, "org.exo.Resource1"), ==, 1);
  changed = pc_last (f, path, "org.exo.Resource1");
  state_changed_at = g_variant_lookup_value (changed, "StateChangedAt", G_VARIANT_TYPE_UINT64);
  g_assert_nonnull (state_changed_at);
  g_assert_cmpuint (g_variant_get_uint64 (state_changed_at), ==,
                    (guint64) exo_resource_get_state_changed_at (EXO_RESOURCE (f->db)));
  /* Other objects saw nothing of it. */
  g_assert_cmpuint (pc_count (f, RESOURCE_PATH ("api"), "org.exo.Resource1"), ==, 0);
}

/* --- methods --------------------------------------------------------------- */

static void
test_methods_restart (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  const char *path = RESOURCE_PATH ("w1");
  const char *expected[] = {
    RESOURCE_PATH ("w1") " ready>closing:",
    RESOURCE_PATH ("w1") " closing>closed:",
    RESOURCE_PATH ("w1") " closed>initializing:",
    RESOURCE_PATH ("w1") " initializing>ready:",
  };
  guint n_init = 0;
  guint j = 0;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->w1), NULL));
  barrier (f);
  g_ptr_array_set_size (f->rec.state_changes, 0);
  n_init = f->w1->n_init_calls;

  reply = call (f, path, "org.exo.Resource1", "Restart", NULL, G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  /* The call returned when the restart was done. */
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->w1)), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpuint (f->w1->n_init_calls, ==, n_init + 1);
  g_assert_cmpuint (f->w1->n_cleanup_calls, >=, 1);
  barrier (f);
  for (guint i = 0; i < f->rec.state_changes->len && j < G_N_ELEMENTS (expected); i++)
    if (g_str_equal (g_ptr_array_index (f->rec.state_changes, i), expected[j]))
      j++;
  if (j != G_N_ELEMENTS (expected))
    {
      for (guint i = 0; i < f->rec.state_changes->len; i++)
        g_test_message ("seen: %s", (char *) g_ptr_array_index (f->rec.state_changes, i));
      g_error ("StateChanged sequence of Restart incomplete at %s", expected[j]);
    }
}

static void
test_methods_initialize_cleanup_health (Fixture       *f,
                                        gconstpointer  data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  const char *path = RESOURCE_PATH ("w2");
  gboolean healthy = FALSE;

  reply = call (f, path, "org.exo.Resource1", "Initialize", NULL, G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->w2)), ==, EXO_RESOURCE_STATE_READY);

  reply = call (f, path, "org.exo.Resource1", "CheckHealth", NULL, G_VARIANT_TYPE ("(b)"), &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(b)", &healthy);
  g_assert_true (healthy);
  g_clear_pointer (&reply, g_variant_unref);

  /* Unhealthy is an answer, not an error. */
  f->w2->healthy = FALSE;
  reply = call (f, path, "org.exo.Resource1", "CheckHealth", NULL, G_VARIANT_TYPE ("(b)"), &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(b)", &healthy);
  g_assert_false (healthy);
  g_clear_pointer (&reply, g_variant_unref);
  f->w2->healthy = TRUE;

  reply = call (f, path, "org.exo.Resource1", "Cleanup", NULL, G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->w2)), ==, EXO_RESOURCE_STATE_CLOSED);

  /* Groups answer too. */
  reply = call (f, RESOURCE_PATH ("root"), "org.exo.Resource1", "Initialize", NULL,
                G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->root)), ==, EXO_RESOURCE_STATE_READY);
}

static void
test_methods_errors_mapped (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoRetryPolicy) policy = exo_retry_policy_new ();
  g_autoptr(GAsyncResult) cleanup_result = NULL;
  g_autoptr(GVariant) value = NULL;

  /* Failed, with the resource's message. */
  f->api->fail_inits = 1;
  f->api->fail_fatal = TRUE;
  reply = call (f, RESOURCE_PATH ("api"), "org.exo.Resource1", "Initialize", NULL,
                G_VARIANT_TYPE_UNIT, &error);
  g_assert_null (reply);
  assert_dbus_error (error, EXO_DBUS_ERROR_FAILED);
  g_dbus_error_strip_remote_error (error);
  g_assert_cmpstr (error->message, ==,
                   exo_resource_get_last_error (EXO_RESOURCE (f->api))->message);
  g_clear_error (&error);

  /* Timeout. */
  policy->max_retries = 0;
  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (f->w1), policy);
  exo_resource_set_init_timeout (EXO_RESOURCE (f->w1), 50);
  f->w1->init_delay_ms = 60000;
  reply = call (f, RESOURCE_PATH ("w1"), "org.exo.Resource1", "Initialize", NULL,
                G_VARIANT_TYPE_UNIT, &error);
  g_assert_null (reply);
  assert_dbus_error (error, EXO_DBUS_ERROR_TIMEOUT);
  /* Registered: clients get G_IO_ERROR_TIMED_OUT back. */
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);

  /* InvalidState: initialize while the cleanup runs. */
  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->db), NULL));
  f->db->cleanup_delay_ms = 2000;
  exo_resource_cleanup_async (EXO_RESOURCE (f->db), NULL, exo_test_store_result, &cleanup_result);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->db)), ==, EXO_RESOURCE_STATE_CLOSING);
  reply = call (f, RESOURCE_PATH ("db"), "org.exo.Resource1", "Initialize", NULL,
                G_VARIANT_TYPE_UNIT, &error);
  g_assert_null (reply);
  assert_dbus_error (error, EXO_DBUS_ERROR_INVALID_STATE);
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE);
  g_clear_error (&error);
  g_assert_true (exo_test_wait_result (&cleanup_result, WAIT_MS));

  /* NotFound. */
  reply = call (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "GetResource",
                g_variant_new ("(s)", "no-such-thing"), G_VARIANT_TYPE ("(o)"), &error);
  g_assert_null (reply);
  assert_dbus_error (error, EXO_DBUS_ERROR_NOT_FOUND);
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* Still serving. */
  value = get_property (f, RESOURCE_PATH ("db"), "org.exo.Resource1", "State");
  g_assert_cmpstr (g_variant_get_string (value, NULL), ==, "closed");
}

static void
test_methods_bad_calls (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *state = NULL;

  /* Wrong argument types: GDBus refuses them, the export keeps running. */
  reply = call (f, RESOURCE_PATH ("db"), "org.exo.Resource1", "Restart",
                g_variant_new ("(s)", "x"), NULL, &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.freedesktop.DBus.Error.InvalidArgs");
  g_clear_error (&error);
  reply = call (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "GetResource",
                g_variant_new ("(i)", 42), NULL, &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.freedesktop.DBus.Error.InvalidArgs");
  g_clear_error (&error);
  reply = call (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "GetResource", NULL, NULL, &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.freedesktop.DBus.Error.InvalidArgs");
  g_clear_error (&error);
  reply = call (f, RESOURCE_PATH ("db"), "org.freedesktop.DBus.Properties", "Get",
                g_variant_new ("(su)", "org.exo.Resource1", 7), NULL, &error);
  g_assert_null (reply);
  g_assert_true (g_dbus_error_is_remote_error (error));   /* GDBus says UnknownMethod */
  g_clear_error (&error);

  /* Read-only properties. */
  reply = call (f, RESOURCE_PATH ("db"), "org.freedesktop.DBus.Properties", "Set",
                g_variant_new ("(ssv)", "org.exo.Resource1", "State", g_variant_new_string ("ready")),
                NULL, &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* Unknown objects, interfaces and methods. */
  reply = call (f, RESOURCE_PATH ("no_2dsuch"), "org.exo.Resource1", "Restart", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_true (g_dbus_error_is_remote_error (error));
  g_clear_error (&error);
  reply = call (f, RESOURCE_PATH ("no_2dsuch"), "org.freedesktop.DBus.Properties", "Get",
                g_variant_new ("(ss)", "org.exo.Resource1", "State"), NULL, &error);
  g_assert_null (reply);
  g_assert_true (g_dbus_error_is_remote_error (error));
  g_clear_error (&error);
  reply = call (f, RESOURCE_PATH ("db"), "org.exo.Resource1", "Explode", NULL, NULL, &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.freedesktop.DBus.Error.UnknownMethod");
  g_clear_error (&error);
  reply = call (f, RESOURCE_PATH ("db"), "org.exo.ResourcePool1", "Anything", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_true (g_dbus_error_is_remote_error (error));
  g_clear_error (&error);

  /* Still running and answering. */
  state = get_string (f, RESOURCE_PATH ("db"), "org.exo.Resource1", "State");
  g_assert_cmpstr (state, ==, "uninitialized");
  reply = call (f, RESOURCE_PATH ("db"), "org.exo.Resource1", "Initialize", NULL,
                G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
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

/* After unexport nothing is left on the bus. */
static void
test_unexport (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  exo_dbus_export_unexport (f->export);
  reply = call (f, EXO_DBUS_NODE_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  g_clear_error (&error);
  reply = call (f, EXO_DBUS_NODE_PATH, "org.freedesktop.DBus.Properties", "Get",
                g_variant_new ("(ss)", "org.exo.Node1", "NodeId"), NULL, &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* Changes no longer reach anybody, and nothing crashes. */
  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->root), NULL));
  exo_test_spin (20);
  g_assert_cmpuint (exo_dbus_export_get_n_objects (f->export), ==, 0);
}

/* --- authorization: a caller that is not root ---------------------------- */

typedef struct
{
  GSubprocess *bus;
  char        *dir;
  char        *address;
} OwnBus;

/* A dbus-daemon of our own with @body inside <busconfig> (GTestDBus lets
 * only our own uid connect). */
static gboolean
own_bus_start (OwnBus      *bus,
               const char  *body,
               GError     **error)
{
  g_autofree char *config = NULL;
  g_autofree char *config_path = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  char *line;

  bus->dir = g_dir_make_tmp ("exo-test-dbus-XXXXXX", error);
  if (bus->dir == NULL)
    return FALSE;
  config_path = g_build_filename (bus->dir, "bus.conf", NULL);
  config = g_strconcat (
    "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
    " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
    "<busconfig>\n"
    "  <listen>unix:tmpdir=/tmp</listen>\n"
    "  <auth>EXTERNAL</auth>\n",
    body,
    "</busconfig>\n", NULL);
  if (!g_file_set_contents (config_path, config, -1, error))
    return FALSE;

  bus->bus = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, error,
                               "dbus-daemon", "--nofork", "--nopidfile", "--print-address=1",
                               "--config-file", config_path, NULL);
  if (bus->bus == NULL)
    return FALSE;
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (bus->bus));
  line = g_data_input_stream_read_line (out, NULL, NULL, error);
  if (line == NULL)
    {
      if (error != NULL && *error == NULL)
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "dbus-daemon printed no address");
      return FALSE;
    }
  bus->address = g_strstrip (line);
  return TRUE;
}

/* Everybody may connect and do anything. */
static const char open_bus_config[] =
  "  <type>session</type>\n"
  "  <policy context=\"default\">\n"
  "    <allow user=\"*\"/>\n"
  "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
  "    <allow eavesdrop=\"true\"/>\n"
  "    <allow own=\"*\"/>\n"
  "  </policy>\n";

static void
own_bus_stop (OwnBus *bus)
{
  if (bus->bus != NULL)
    {
      g_subprocess_send_signal (bus->bus, SIGTERM);
      g_subprocess_wait (bus->bus, NULL, NULL);
    }
  g_clear_object (&bus->bus);
  if (bus->dir != NULL)
    {
      g_autofree char *config_path = g_build_filename (bus->dir, "bus.conf", NULL);

      g_unlink (config_path);
      g_rmdir (bus->dir);
    }
  g_clear_pointer (&bus->dir, g_free);
  g_clear_pointer (&bus->address, g_free);
}

typedef struct
{
  gboolean  done;
  gboolean  ok;
  char     *out;
  char     *err;
} RunResult;

static void
communicate_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  RunResult *run = user_data;
  g_autoptr(GError) error = NULL;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &run->out, &run->err, &error);
  g_assert_no_error (error);
  run->ok = g_subprocess_get_if_exited (G_SUBPROCESS (source)) &&
            g_subprocess_get_exit_status (G_SUBPROCESS (source)) == 0;
  run->done = TRUE;
}

static gboolean
run_done (gpointer data)
{
  return ((RunResult *) data)->done;
}

/* Runs `gdbus call` as @user (NULL: as ourselves) while this context keeps
 * serving the export. */
static void
gdbus_call_as_full (const char         *user,
                    const char         *address,
                    const char         *dest,
                    const char         *path,
                    const char         *method,
                    const char * const *args,
                    RunResult          *run)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");

  if (user != NULL && setpriv != NULL)
    {
      g_ptr_array_add (argv, "setpriv");
      g_ptr_array_add (argv, "--reuid=nobody");
      g_ptr_array_add (argv, "--regid=nogroup");
      g_ptr_array_add (argv, "--clear-groups");
    }
  else if (user != NULL)
    {
      g_ptr_array_add (argv, "runuser");
      g_ptr_array_add (argv, "-u");
      g_ptr_array_add (argv, (char *) user);
      g_ptr_array_add (argv, "--");
    }
  g_ptr_array_add (argv, "gdbus");
  g_ptr_array_add (argv, "call");
  g_ptr_array_add (argv, "--address");
  g_ptr_array_add (argv, (char *) address);
  g_ptr_array_add (argv, "--dest");
  g_ptr_array_add (argv, (char *) dest);
  g_ptr_array_add (argv, "--object-path");
  g_ptr_array_add (argv, (char *) path);
  g_ptr_array_add (argv, "--method");
  g_ptr_array_add (argv, (char *) method);
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (argv, (char *) args[i]);
  g_ptr_array_add (argv, NULL);

  memset (run, 0, sizeof *run);
  process = g_subprocess_newv ((const char * const *) argv->pdata,
                               G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                               &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (process, NULL, NULL, communicate_cb, run);
  g_assert_true (exo_test_spin_until (run_done, run, WAIT_MS));
}

static void
gdbus_call_as (const char *user,
               const char *address,
               const char *dest,
               const char *path,
               const char *method,
               RunResult  *run)
{
  gdbus_call_as_full (user, address, dest, path, method, NULL, run);
}

static void
run_result_clear (RunResult *run)
{
  g_clear_pointer (&run->out, g_free);
  g_clear_pointer (&run->err, g_free);
}

static void
test_auth_nobody (void)
{
  OwnBus bus = { NULL, };
  Fixture fixture = { NULL, };
  Fixture *f = &fixture;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");
  g_autofree char *runuser = g_find_program_in_path ("runuser");
  g_autofree char *gdbus = g_find_program_in_path ("gdbus");
  g_autofree char *dbus_daemon = g_find_program_in_path ("dbus-daemon");
  const char *path = RESOURCE_PATH ("db");
  RunResult run;
  guint n_init;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root to run a caller as nobody");
      return;
    }
  if ((setpriv == NULL && runuser == NULL) || gdbus == NULL || dbus_daemon == NULL)
    {
      g_test_skip ("needs setpriv or runuser, gdbus and dbus-daemon");
      return;
    }
  if (!own_bus_start (&bus, open_bus_config, &error))
    {
      g_test_skip_printf ("cannot start a dbus-daemon: %s", error->message);
      own_bus_stop (&bus);
      return;
    }

  fixture_set_up_on (f, bus.address);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->db), NULL));
  n_init = f->db->n_init_calls;

  /* nobody may read… */
  gdbus_call_as ("nobody", bus.address, f->server_name, path, "org.exo.Resource1.CheckHealth", &run);
  if (!run.ok)
    g_error ("nobody's CheckHealth failed: %s", run.err);
  g_assert_nonnull (strstr (run.out, "true"));
  run_result_clear (&run);

  /* …but not change anything. */
  gdbus_call_as ("nobody", bus.address, f->server_name, path, "org.exo.Resource1.Restart", &run);
  g_assert_false (run.ok);
  g_test_message ("nobody's Restart: %s", run.err);
  g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
  g_assert_nonnull (strstr (run.err, "Restart"));
  run_result_clear (&run);
  g_assert_cmpuint (f->db->n_init_calls, ==, n_init);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->db)), ==, EXO_RESOURCE_STATE_READY);

  gdbus_call_as ("nobody", bus.address, f->server_name, path, "org.exo.Resource1.Cleanup", &run);
  g_assert_false (run.ok);
  g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
  run_result_clear (&run);
  gdbus_call_as ("nobody", bus.address, f->server_name, path, "org.exo.Resource1.Initialize", &run);
  g_assert_false (run.ok);
  g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
  run_result_clear (&run);
  gdbus_call_as ("nobody", bus.address, f->server_name, EXO_DBUS_NODE_PATH,
                 "org.exo.Node1.Shutdown", &run);
  g_assert_false (run.ok);
  g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
  run_result_clear (&run);
  g_assert_cmpuint (f->n_shutdown_requests, ==, 0);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (f->db)), ==, EXO_RESOURCE_STATE_READY);

  /* root may, from another process and from our client connection. */
  gdbus_call_as (NULL, bus.address, f->server_name, path, "org.exo.Resource1.Restart", &run);
  if (!run.ok)
    g_error ("root's Restart failed: %s", run.err);
  run_result_clear (&run);
  g_assert_cmpuint (f->db->n_init_calls, ==, n_init + 1);
  reply = call (f, path, "org.exo.Resource1", "Restart", NULL, G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f->db->n_init_calls, ==, n_init + 2);

  fixture_tear_down (f, NULL);
  own_bus_stop (&bus);
}

/* data/org.exo.Node1.conf in a bus configured like Debian's system bus:
 * nobody may read, but the bus itself refuses the changing methods, and
 * only root may own the name. */
static void
test_policy_system_bus (void)
{
  OwnBus bus = { NULL, };
  Fixture fixture = { NULL, };
  Fixture *f = &fixture;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");
  g_autofree char *runuser = g_find_program_in_path ("runuser");
  g_autofree char *gdbus = g_find_program_in_path ("gdbus");
  g_autofree char *dbus_daemon = g_find_program_in_path ("dbus-daemon");
  g_autofree char *policy = g_build_filename (EXO_TEST_DATADIR, "org.exo.Node1.conf", NULL);
  g_autofree char *config = NULL;
  const char *path = RESOURCE_PATH ("db");
  const char *get_args[] = { "org.exo.Resource1", "State", NULL };
  const char *get_resource_args[] = { "db", NULL };
  const char *own_args[] = { "org.exo.Node1", "0", NULL };
  const char *changing[] = {
    "org.exo.Resource1.Restart", "org.exo.Resource1.Initialize", "org.exo.Resource1.Cleanup",
  };
  RunResult run;
  guint32 owned = 0;
  guint n_init;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root to run a caller as nobody");
      return;
    }
  if ((setpriv == NULL && runuser == NULL) || gdbus == NULL || dbus_daemon == NULL)
    {
      g_test_skip ("needs setpriv or runuser, gdbus and dbus-daemon");
      return;
    }

  config = g_strdup_printf (
    "  <type>system</type>\n"
    "  <policy context=\"default\">\n"
    "    <allow user=\"*\"/>\n"
    "    <deny own=\"*\"/>\n"
    "    <deny send_type=\"method_call\"/>\n"
    "    <allow send_type=\"signal\"/>\n"
    "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
    "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
    "    <allow receive_type=\"method_call\"/>\n"
    "    <allow receive_type=\"method_return\"/>\n"
    "    <allow receive_type=\"error\"/>\n"
    "    <allow receive_type=\"signal\"/>\n"
    "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
    "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
    "  </policy>\n"
    "  <include>%s</include>\n", policy);
  if (!own_bus_start (&bus, config, &error))
    {
      g_test_skip_printf ("cannot start a dbus-daemon: %s", error->message);
      own_bus_stop (&bus);
      return;
    }

  fixture_set_up_on (f, bus.address);
  reply = g_dbus_connection_call_sync (f->server, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "RequestName",
                                       g_variant_new ("(su)", "org.exo.Node1", 0),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, WAIT_MS,
                                       NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &owned);
  g_assert_cmpuint (owned, ==, 1);   /* DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER */
  g_clear_pointer (&reply, g_variant_unref);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (f->db), NULL));
  n_init = f->db->n_init_calls;

  /* nobody reads. */
  gdbus_call_as ("nobody", bus.address, "org.exo.Node1", path, "org.exo.Resource1.CheckHealth", &run);
  if (!run.ok)
    g_error ("nobody's CheckHealth failed: %s", run.err);
  run_result_clear (&run);
  gdbus_call_as_full ("nobody", bus.address, "org.exo.Node1", path,
                      "org.freedesktop.DBus.Properties.Get", get_args, &run);
  if (!run.ok)
    g_error ("nobody's Properties.Get failed: %s", run.err);
  g_assert_nonnull (strstr (run.out, "ready"));
  run_result_clear (&run);
  gdbus_call_as ("nobody", bus.address, "org.exo.Node1", EXO_DBUS_NODE_PATH,
                 "org.freedesktop.DBus.ObjectManager.GetManagedObjects", &run);
  if (!run.ok)
    g_error ("nobody's GetManagedObjects failed: %s", run.err);
  g_assert_nonnull (strstr (run.out, path));
  run_result_clear (&run);
  gdbus_call_as_full ("nobody", bus.address, "org.exo.Node1", EXO_DBUS_NODE_PATH,
                      "org.exo.Node1.GetResource", get_resource_args, &run);
  if (!run.ok)
    g_error ("nobody's GetResource failed: %s", run.err);
  run_result_clear (&run);

  /* The bus refuses the rest before exo-node sees it. */
  for (guint i = 0; i < G_N_ELEMENTS (changing); i++)
    {
      gdbus_call_as ("nobody", bus.address, "org.exo.Node1", path, changing[i], &run);
      g_assert_false (run.ok);
      g_test_message ("nobody's %s: %s", changing[i], run.err);
      g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
      run_result_clear (&run);
    }
  gdbus_call_as ("nobody", bus.address, "org.exo.Node1", EXO_DBUS_NODE_PATH,
                 "org.exo.Node1.Shutdown", &run);
  g_assert_false (run.ok);
  g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
  run_result_clear (&run);
  g_assert_cmpuint (f->n_shutdown_requests, ==, 0);
  g_assert_cmpuint (f->db->n_init_calls, ==, n_init);

  /* Only root owns the name. */
  gdbus_call_as_full ("nobody", bus.address, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                      "org.freedesktop.DBus.RequestName", own_args, &run);
  g_assert_false (run.ok);
  g_assert_nonnull (strstr (run.err, "org.freedesktop.DBus.Error.AccessDenied"));
  run_result_clear (&run);

  /* root may. */
  gdbus_call_as (NULL, bus.address, "org.exo.Node1", path, "org.exo.Resource1.Restart", &run);
  if (!run.ok)
    g_error ("root's Restart failed: %s", run.err);
  run_result_clear (&run);
  g_assert_cmpuint (f->db->n_init_calls, ==, n_init + 1);
  reply = call_full (f->client, "org.exo.Node1", path, "org.exo.Resource1", "Restart", NULL,
                     G_VARIANT_TYPE_UNIT, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f->db->n_init_calls, ==, n_init + 2);

  fixture_tear_down (f, NULL);
  own_bus_stop (&bus);
}


/* Regression: a member that falls while its group initializes is rolled
 * back.  The export's handler is connected after the group's; it must still
 * send every transition in order (ready>error before error>closing), the
 * same sequence as a handler in the process sees. */
static void
local_order_cb (ExoResource *r, ExoResourceState o, ExoResourceState n, gpointer data)
{
  g_ptr_array_add (data, g_strdup_printf ("%s>%s", exo_resource_state_to_string (o),
                                          exo_resource_state_to_string (n)));
}

static gboolean
fail_db_cb (gpointer data)
{
  g_autoptr(GError) error = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                                                 "db connection dropped");

  exo_resource_report_error (EXO_RESOURCE (data), error);
  return G_SOURCE_REMOVE;
}

static void
test_signals_state_changed_order (Fixture       *f,
                                  gconstpointer  data)
{
  const char *prefix = RESOURCE_PATH ("db") " ";
  g_autoptr(GPtrArray) local = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) remote = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GAsyncResult) result = NULL;

  g_signal_connect (f->db, "state-changed", G_CALLBACK (local_order_cb), local);
  f->api->init_delay_ms = 300;
  exo_resource_initialize_async (EXO_RESOURCE (f->root), NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (f->db), EXO_RESOURCE_STATE_READY, WAIT_MS));
  g_timeout_add (0, fail_db_cb, f->db);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_false (exo_resource_initialize_finish (EXO_RESOURCE (f->root), result, NULL));
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (f->db), EXO_RESOURCE_STATE_CLOSED, WAIT_MS));
  barrier (f);

  for (guint i = 0; i < f->rec.state_changes->len; i++)
    {
      const char *line = g_ptr_array_index (f->rec.state_changes, i);

      if (g_str_has_prefix (line, prefix))
        g_ptr_array_add (remote, g_strndup (line + strlen (prefix),
                                            strcspn (line + strlen (prefix), ":")));
    }
  g_assert_cmpuint (remote->len, ==, local->len);
  for (guint i = 0; i < local->len; i++)
    {
      g_assert_cmpstr (g_ptr_array_index (remote, i), ==, g_ptr_array_index (local, i));
      if (i > 0)
        {
          const char *prev = strchr (g_ptr_array_index (local, i - 1), '>') + 1;
          const char *cur = g_ptr_array_index (local, i);

          g_assert_true (strncmp (cur, prev, strlen (prev)) == 0 && cur[strlen (prev)] == '>');
        }
    }
  g_assert_true (strv_has (local, "ready>error"));
  g_assert_true (strv_has (local, "error>closing"));
}

/* --- main -------------------------------------------------------------------- */

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

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
  ADD ("/exo/dbus/properties/mirror", test_properties_mirror);
  ADD ("/exo/dbus/signals/state-changed", test_signals_state_changed);
  ADD ("/exo/dbus/signals/coalesced", test_signals_coalesced);
  ADD ("/exo/dbus/signals/state-changed-order", test_signals_state_changed_order);
  ADD ("/exo/dbus/methods/restart", test_methods_restart);
  ADD ("/exo/dbus/methods/initialize-cleanup-health", test_methods_initialize_cleanup_health);
  ADD ("/exo/dbus/methods/errors-mapped", test_methods_errors_mapped);
  ADD ("/exo/dbus/methods/bad-calls", test_methods_bad_calls);
  ADD ("/exo/dbus/unexport", test_unexport);
  g_test_add_func ("/exo/dbus/auth/nobody", test_auth_nobody);
  g_test_add_func ("/exo/dbus/auth/system-bus-policy", test_policy_system_bus);

  test_bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (test_bus);

  ret = g_test_run ();

  g_test_dbus_down (test_bus);
  g_clear_object (&test_bus);
  return ret;
}
