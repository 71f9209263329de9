/* dbus-fixture.c: the Fixture of test-dbus — a tree of resources exported on
 * one connection, a client on another — and what the client saw and calls.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The Recorder subscribes the client to the export's signals and keeps what
 * arrived.  One thread: the export and the client share the test's
 * thread-default main context; calls are asynchronous and the waits spin it
 * (the only synchronous call goes to the bus daemon, another process).
 */
#include "dbus-fixture.h"

GTestDBus *test_bus;

/* --- what the client saw --------------------------------------------------- */

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

guint
pc_count (Fixture    *f,
          const char *path,
          const char *iface)
{
  g_autofree char *key = g_strdup_printf ("%s %s", path, iface);

  return GPOINTER_TO_UINT (g_hash_table_lookup (f->rec.pc_counts, key));
}

GVariant *
pc_last (Fixture    *f,
         const char *path,
         const char *iface)
{
  g_autofree char *key = g_strdup_printf ("%s %s", path, iface);

  return g_hash_table_lookup (f->rec.pc_last, key);
}

gboolean
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

void
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

void
wait_for_count (GPtrArray *array,
                guint      n)
{
  gpointer args[2] = { array, GUINT_TO_POINTER (n) };

  if (!exo_test_spin_until (count_cond, args, WAIT_MS))
    g_error ("timed out waiting for %u entries (have %u)", n, array->len);
}

/* --- client calls (asynchronous: the export runs in this thread) ----------- */

GVariant *
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

GVariant *
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

GVariant *
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

char *
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
void
barrier (Fixture *f)
{
  g_autoptr(GVariant) value = get_property (f, EXO_DBUS_NODE_PATH, "org.exo.Node1", "NodeId");
}

GVariant *
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

void
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

void
add_member (ExoResourceGroup   *group,
            gpointer            resource,
            const char * const *deps)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (resource), deps, &error));
  g_assert_no_error (error);
}

/* root: db, api (-> db), workers (-> db) { w1, w2 (-> w1) }, pool (-> db) */
void
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

void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  fixture_set_up_on (f, g_test_dbus_get_bus_address (test_bus));
}

void
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

const char *
path_of (Fixture *f,
         gpointer resource)
{
  const char *path = exo_dbus_export_get_object_path (f->export, EXO_RESOURCE (resource));

  g_assert_nonnull (path);
  return path;
}
