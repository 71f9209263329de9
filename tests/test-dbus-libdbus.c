/* test-dbus-libdbus.c: the D-Bus API of exo-node through a second, unrelated
 * implementation: a client written with plain libdbus (not GDBus).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The export runs in a thread of its own with its own GMainContext, like
 * exo-node's main loop; the test thread is a blocking libdbus client.
 */
#include <string.h>
#include <dbus/dbus.h>

#include "exo-test-util.h"
#include "exo-dbus-export.h"

#define WAIT_MS (30000 * exo_test_slow_factor ())

static GTestDBus *test_bus;

/* --- the server thread ------------------------------------------------------- */

typedef struct
{
  GMutex            lock;
  GCond             cond;
  gboolean          ready;
  gint              quit;
  const char       *address;
  GThread          *thread;
  GMainContext     *context;
  char             *name;       /* the export's unique name */
  ExoTestResource  *db;         /* only touched in the server thread */
} Server;

static gpointer
server_thread (gpointer data)
{
  Server *server = data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(ExoResourceGroup) root = NULL;
  g_autoptr(ExoTestResource) api = NULL;
  g_autoptr(ExoDBusExport) export = NULL;
  g_autoptr(GError) error = NULL;
  const char *api_deps[] = { "db", NULL };

  g_main_context_push_thread_default (context);

  connection = g_dbus_connection_new_for_address_sync (server->address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
  g_assert_no_error (error);

  root = exo_resource_group_new ("root");
  server->db = exo_test_resource_new ("db");
  api = exo_test_resource_new ("api");
  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (server->db), FALSE);
  g_assert_true (exo_resource_group_add (root, EXO_RESOURCE (server->db), NULL, &error));
  g_assert_true (exo_resource_group_add (root, EXO_RESOURCE (api), api_deps, &error));
  g_assert_no_error (error);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (root), NULL));

  export = exo_dbus_export_new (connection, "node-libdbus", root);

  g_mutex_lock (&server->lock);
  server->context = context;
  server->name = g_strdup (g_dbus_connection_get_unique_name (connection));
  server->ready = TRUE;
  g_cond_signal (&server->cond);
  g_mutex_unlock (&server->lock);

  while (!g_atomic_int_get (&server->quit))
    g_main_context_iteration (context, TRUE);

  exo_dbus_export_unexport (export);
  g_clear_object (&export);
  exo_test_cleanup (EXO_RESOURCE (root), NULL);
  g_clear_object (&server->db);
  g_dbus_connection_close_sync (connection, NULL, NULL);
  /* Let the idles of the connection and the resources run. */
  while (g_main_context_iteration (context, FALSE))
    ;

  g_main_context_pop_thread_default (context);
  return NULL;
}

static void
server_start (Server *server)
{
  memset (server, 0, sizeof *server);
  g_mutex_init (&server->lock);
  g_cond_init (&server->cond);
  server->address = g_test_dbus_get_bus_address (test_bus);
  server->thread = g_thread_new ("export", server_thread, server);

  g_mutex_lock (&server->lock);
  while (!server->ready)
    g_cond_wait (&server->cond, &server->lock);
  g_mutex_unlock (&server->lock);
}

static void
server_stop (Server *server)
{
  g_atomic_int_set (&server->quit, 1);
  g_main_context_wakeup (server->context);
  g_thread_join (server->thread);
  g_free (server->name);
  g_mutex_clear (&server->lock);
  g_cond_clear (&server->cond);
}

static gboolean
degrade_cb (gpointer data)
{
  Server *server = data;
  g_autoptr(GError) error = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                                                 "out of coffee");

  exo_resource_report_health (EXO_RESOURCE (server->db), FALSE, error);
  return G_SOURCE_REMOVE;
}

/* --- libdbus helpers ---------------------------------------------------------- */

static DBusConnection *
client_connect (void)
{
  DBusError error;
  DBusConnection *connection;

  dbus_error_init (&error);
  connection = dbus_connection_open_private (g_test_dbus_get_bus_address (test_bus), &error);
  if (connection == NULL)
    g_error ("dbus_connection_open_private: %s", error.message);
  if (!dbus_bus_register (connection, &error))
    g_error ("dbus_bus_register: %s", error.message);
  return connection;
}

static void
client_close (DBusConnection *connection)
{
  dbus_connection_close (connection);
  dbus_connection_unref (connection);
}

/* Sends @message (consumed) and returns the reply; on an error reply returns
 * NULL and sets @error_name (owned by the caller). */
static DBusMessage *
send_and_wait (DBusConnection  *connection,
               DBusMessage     *message,
               char           **error_name)
{
  DBusError error;
  DBusMessage *reply;

  dbus_error_init (&error);
  reply = dbus_connection_send_with_reply_and_block (connection, message, WAIT_MS, &error);
  dbus_message_unref (message);
  if (reply == NULL)
    {
      g_assert_nonnull (error_name);
      *error_name = g_strdup (error.name);
      g_test_message ("error reply %s: %s", error.name, error.message);
      dbus_error_free (&error);
    }
  return reply;
}

static DBusMessage *
method_call (Server     *server,
             const char *path,
             const char *iface,
             const char *method)
{
  DBusMessage *message = dbus_message_new_method_call (server->name, path, iface, method);

  g_assert_nonnull (message);
  return message;
}

static char *
get_string_property (DBusConnection *connection,
                     Server         *server,
                     const char     *path,
                     const char     *iface,
                     const char     *name)
{
  DBusMessage *message = method_call (server, path, "org.freedesktop.DBus.Properties", "Get");
  DBusMessage *reply;
  DBusMessageIter iter, variant;
  const char *value;
  char *result;

  dbus_message_append_args (message, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &name,
                            DBUS_TYPE_INVALID);
  reply = send_and_wait (connection, message, NULL);
  g_assert_true (dbus_message_iter_init (reply, &iter));
  g_assert_cmpint (dbus_message_iter_get_arg_type (&iter), ==, DBUS_TYPE_VARIANT);
  dbus_message_iter_recurse (&iter, &variant);
  g_assert_cmpint (dbus_message_iter_get_arg_type (&variant), ==, DBUS_TYPE_STRING);
  dbus_message_iter_get_basic (&variant, &value);
  result = g_strdup (value);
  dbus_message_unref (reply);
  return result;
}

/* path -> GPtrArray of interface names */
static GHashTable *
get_managed_objects (DBusConnection *connection,
                     Server         *server)
{
  DBusMessage *reply;
  DBusMessageIter iter, objects;
  GHashTable *result = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                              (GDestroyNotify) g_ptr_array_unref);

  reply = send_and_wait (connection,
                         method_call (server, EXO_DBUS_NODE_PATH,
                                      "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"),
                         NULL);
  g_assert_cmpstr (dbus_message_get_signature (reply), ==, "a{oa{sa{sv}}}");
  dbus_message_iter_init (reply, &iter);
  dbus_message_iter_recurse (&iter, &objects);
  while (dbus_message_iter_get_arg_type (&objects) == DBUS_TYPE_DICT_ENTRY)
    {
      DBusMessageIter entry, ifaces;
      const char *path;
      GPtrArray *names = g_ptr_array_new_with_free_func (g_free);

      dbus_message_iter_recurse (&objects, &entry);
      dbus_message_iter_get_basic (&entry, &path);
      dbus_message_iter_next (&entry);
      dbus_message_iter_recurse (&entry, &ifaces);
      while (dbus_message_iter_get_arg_type (&ifaces) == DBUS_TYPE_DICT_ENTRY)
        {
          DBusMessageIter iface_entry;
          const char *name;

          dbus_message_iter_recurse (&ifaces, &iface_entry);
          dbus_message_iter_get_basic (&iface_entry, &name);
          g_ptr_array_add (names, g_strdup (name));
          dbus_message_iter_next (&ifaces);
        }
      g_hash_table_insert (result, g_strdup (path), names);
      dbus_message_iter_next (&objects);
    }
  dbus_message_unref (reply);
  return result;
}

static gboolean
has_name (GPtrArray  *names,
          const char *name)
{
  for (guint i = 0; names != NULL && i < names->len; i++)
    if (g_str_equal (g_ptr_array_index (names, i), name))
      return TRUE;
  return FALSE;
}

/* Reads messages until a StateChanged of @path to @new_state arrives; each
 * one seen is appended to @seen as "old>new:message".  Returns its message. */
static char *
wait_for_state_changed (DBusConnection *connection,
                        const char     *path,
                        const char     *new_state,
                        GPtrArray      *seen)
{
  gint64 end = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;

  while (g_get_monotonic_time () < end)
    {
      DBusMessage *message;

      while ((message = dbus_connection_pop_message (connection)) != NULL)
        {
          char *found = NULL;

          if (dbus_message_is_signal (message, "org.exo.Resource1", "StateChanged") &&
              g_strcmp0 (dbus_message_get_path (message), path) == 0)
            {
              DBusError error;
              const char *old_s, *new_s, *text;

              dbus_error_init (&error);
              if (!dbus_message_get_args (message, &error,
                                          DBUS_TYPE_STRING, &old_s,
                                          DBUS_TYPE_STRING, &new_s,
                                          DBUS_TYPE_STRING, &text,
                                          DBUS_TYPE_INVALID))
                g_error ("StateChanged arguments: %s", error.message);
              if (seen != NULL)
                g_ptr_array_add (seen, g_strdup_printf ("%s>%s:%s", old_s, new_s, text));
              if (g_str_equal (new_s, new_state))
                found = g_strdup (text);
            }
          dbus_message_unref (message);
          if (found != NULL)
            return found;
        }
      dbus_connection_read_write (connection, 100);
    }

  g_error ("no StateChanged to %s on %s", new_state, path);
  return NULL;
}

/* --- the test ------------------------------------------------------------------ */

static void
test_libdbus_client (void)
{
  Server server;
  DBusConnection *connection;
  g_autoptr(GHashTable) objects = NULL;
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *state = NULL;
  g_autofree char *message_text = NULL;
  g_autofree char *error_name = NULL;
  g_autofree char *match = NULL;
  const char *db_path = EXO_DBUS_RESOURCE_PATH_PREFIX "db";
  DBusMessage *message, *reply;
  DBusError error;
  dbus_bool_t healthy = FALSE;
  const char *path;

  server_start (&server);
  connection = client_connect ();
  dbus_error_init (&error);

  /* GetManagedObjects lists every resource with its interfaces. */
  objects = get_managed_objects (connection, &server);
  g_assert_cmpuint (g_hash_table_size (objects), ==, 3);
  g_assert_true (has_name (g_hash_table_lookup (objects, db_path), "org.exo.Resource1"));
  g_assert_true (has_name (g_hash_table_lookup (objects, EXO_DBUS_RESOURCE_PATH_PREFIX "api"),
                           "org.exo.Resource1"));
  g_assert_true (has_name (g_hash_table_lookup (objects, EXO_DBUS_RESOURCE_PATH_PREFIX "root"),
                           "org.exo.ResourceGroup1"));

  /* Properties.Get */
  state = get_string_property (connection, &server, db_path, "org.exo.Resource1", "State");
  g_assert_cmpstr (state, ==, "ready");
  g_clear_pointer (&state, g_free);
  state = get_string_property (connection, &server, EXO_DBUS_NODE_PATH, "org.exo.Node1", "State");
  g_assert_cmpstr (state, ==, "ready");
  g_clear_pointer (&state, g_free);

  /* CheckHealth -> (b) */
  reply = send_and_wait (connection, method_call (&server, db_path, "org.exo.Resource1", "CheckHealth"),
                         NULL);
  g_assert_cmpstr (dbus_message_get_signature (reply), ==, "b");
  g_assert_true (dbus_message_get_args (reply, &error, DBUS_TYPE_BOOLEAN, &healthy, DBUS_TYPE_INVALID));
  g_assert_true (healthy);
  dbus_message_unref (reply);

  /* GetResource, and its errors. */
  message = method_call (&server, EXO_DBUS_NODE_PATH, "org.exo.Node1", "GetResource");
  path = "db";
  dbus_message_append_args (message, DBUS_TYPE_STRING, &path, DBUS_TYPE_INVALID);
  reply = send_and_wait (connection, message, NULL);
  g_assert_true (dbus_message_get_args (reply, &error, DBUS_TYPE_OBJECT_PATH, &path, DBUS_TYPE_INVALID));
  g_assert_cmpstr (path, ==, db_path);
  dbus_message_unref (reply);

  message = method_call (&server, EXO_DBUS_NODE_PATH, "org.exo.Node1", "GetResource");
  path = "nothing-here";
  dbus_message_append_args (message, DBUS_TYPE_STRING, &path, DBUS_TYPE_INVALID);
  g_assert_null (send_and_wait (connection, message, &error_name));
  g_assert_cmpstr (error_name, ==, EXO_DBUS_ERROR_NOT_FOUND);
  g_clear_pointer (&error_name, g_free);

  message = method_call (&server, EXO_DBUS_NODE_PATH, "org.exo.Node1", "GetResource");
  {
    dbus_int32_t wrong = 7;

    dbus_message_append_args (message, DBUS_TYPE_INT32, &wrong, DBUS_TYPE_INVALID);
  }
  g_assert_null (send_and_wait (connection, message, &error_name));
  g_assert_cmpstr (error_name, ==, DBUS_ERROR_INVALID_ARGS);
  g_clear_pointer (&error_name, g_free);

  /* Signals: a state change made in the daemon… */
  match = g_strdup_printf ("type='signal',sender='%s',interface='org.exo.Resource1',member='StateChanged'",
                           server.name);
  dbus_bus_add_match (connection, match, &error);
  g_assert_false (dbus_error_is_set (&error));
  g_main_context_invoke (server.context, degrade_cb, &server);
  message_text = wait_for_state_changed (connection, db_path, "degraded", seen);
  g_assert_cmpstr (message_text, ==, "out of coffee");
  g_assert_cmpstr (g_ptr_array_index (seen, seen->len - 1), ==, "ready>degraded:out of coffee");
  g_clear_pointer (&message_text, g_free);
  state = get_string_property (connection, &server, db_path, "org.exo.Resource1", "State");
  g_assert_cmpstr (state, ==, "degraded");
  g_clear_pointer (&state, g_free);

  /* …and one asked for: Restart (we are root or the daemon's uid). */
  g_ptr_array_set_size (seen, 0);
  reply = send_and_wait (connection, method_call (&server, db_path, "org.exo.Resource1", "Restart"),
                         NULL);
  g_assert_nonnull (reply);
  dbus_message_unref (reply);
  message_text = wait_for_state_changed (connection, db_path, "ready", seen);
  g_assert_cmpstr (message_text, ==, "");
  g_assert_cmpuint (seen->len, ==, 4);
  g_assert_cmpstr (g_ptr_array_index (seen, 0), ==, "degraded>closing:");
  g_assert_cmpstr (g_ptr_array_index (seen, 1), ==, "closing>closed:");
  g_assert_cmpstr (g_ptr_array_index (seen, 2), ==, "closed>initializing:");
  g_assert_cmpstr (g_ptr_array_index (seen, 3), ==, "initializing>ready:");

  dbus_error_free (&error);
  client_close (connection);
  server_stop (&server);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/exo/dbus/libdbus/client", test_libdbus_client);

  test_bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (test_bus);

  ret = g_test_run ();

  g_test_dbus_down (test_bus);
  g_clear_object (&test_bus);
  dbus_shutdown ();
  return ret;
}
