/* bench-daemon.c: what the daemon and its D-Bus export cost.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   dbus_get_managed_objects_1k_ms  GetManagedObjects round trip with 1,000
 *                                   exported resources (median of 9), ms
 *   dbus_export_1k_ms               exo_dbus_export_new() of those 1,000, ms
 *   properties_changed_per_object   the most PropertiesChanged one object
 *                                   emitted for 1,000 state changes made in
 *                                   one main-loop iteration (100 objects)
 *
 *   node_cold_start_ms              exo-node with the default config, from
 *                                   spawn to org.exo.Node1.State == "ready"
 *   node_rss_kib                    its resident memory then (VmRSS)
 *
 * A private bus (GTestDBus); export and client connections in this process.
 */
#include "bench.h"
#include "exo-test-util.h"
#include "exo-dbus-export.h"
#include "exo-test-bus.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>

#define N_RESOURCES 1000
#define N_RUNS 9

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

static ExoResourceGroup *
make_group (guint n)
{
  ExoResourceGroup *root = exo_resource_group_new ("root");

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *id = g_strdup_printf ("r%04u", i);
      g_autoptr(ExoTestResource) resource = exo_test_resource_new (id);
      g_autofree char *dep = i > 0 ? g_strdup_printf ("r%04u", i - 1) : NULL;
      const char *deps[] = { dep, NULL };
      g_autoptr(GError) error = NULL;

      exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (resource), FALSE);
      if (!exo_resource_group_add (root, EXO_RESOURCE (resource), dep != NULL ? deps : NULL, &error))
        g_error ("%s", error->message);
    }
  return root;
}

static void
bench_get_managed_objects (const char *address)
{
  g_autoptr(GDBusConnection) server = connect_to (address);
  g_autoptr(GDBusConnection) client = connect_to (address);
  g_autoptr(ExoResourceGroup) root = make_group (N_RESOURCES);
  g_autoptr(ExoDBusExport) export = NULL;
  double times[N_RUNS];
  double export_ms;
  gint64 start;
  gsize size = 0;

  start = g_get_monotonic_time ();
  export = exo_dbus_export_new (server, "bench", root);
  export_ms = (g_get_monotonic_time () - start) / 1000.0;
  g_assert_cmpuint (exo_dbus_export_get_n_objects (export), ==, N_RESOURCES + 1);

  for (guint run = 0; run < N_RUNS; run++)
    {
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GVariant) objects = NULL;
      g_autoptr(GError) error = NULL;

      start = g_get_monotonic_time ();
      g_dbus_connection_call (client, g_dbus_connection_get_unique_name (server),
                              EXO_DBUS_NODE_PATH, "org.freedesktop.DBus.ObjectManager",
                              "GetManagedObjects", NULL, G_VARIANT_TYPE ("(a{oa{sa{sv}}})"),
                              G_DBUS_CALL_FLAGS_NONE, -1, NULL, exo_test_store_result, &result);
      g_assert_true (exo_test_wait_result (&result, 60000));
      reply = g_dbus_connection_call_finish (client, result, &error);
      times[run] = (g_get_monotonic_time () - start) / 1000.0;
      g_assert_no_error (error);
      objects = g_variant_get_child_value (reply, 0);
      g_assert_cmpuint (g_variant_n_children (objects), ==, N_RESOURCES + 1);
      size = g_variant_get_size (reply);
    }

  g_print ("{\"bench\": \"dbus_get_managed_objects_1k_ms\", \"value\": %.3f, \"unit\": \"ms\", "
           "\"n\": %u, \"reply_bytes\": %" G_GSIZE_FORMAT "}\n",
           bench_median (times, N_RUNS), N_RUNS, size);
  g_print ("{\"bench\": \"dbus_export_1k_ms\", \"value\": %.3f, \"unit\": \"ms\", \"n\": 1}\n",
           export_ms);

  exo_dbus_export_unexport (export);
  g_dbus_connection_close_sync (client, NULL, NULL);
  g_dbus_connection_close_sync (server, NULL, NULL);
}

typedef struct
{
  GHashTable *counts;   /* path -> PropertiesChanged count */
  guint       n_state_changed;
} Counts;

static void
on_signal (GDBusConnection *connection,
           const char      *sender_name,
           const char      *object_path,
           const char      *interface_name,
           const char      *signal_name,
           GVariant        *parameters,
           gpointer         user_data)
{
  Counts *counts = user_data;

  if (g_str_equal (signal_name, "StateChanged"))
    counts->n_state_changed++;
  else
    g_hash_table_insert (counts->counts, g_strdup (object_path),
                         GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (counts->counts, object_path)) + 1));
}

static gboolean
all_state_changes_seen (gpointer data)
{
  gpointer *args = data;

  return ((Counts *) args[0])->n_state_changed >= GPOINTER_TO_UINT (args[1]);
}

static void
bench_properties_changed (const char *address)
{
  const guint n_objects = 100, n_changes = 1000;
  g_autoptr(GDBusConnection) server = connect_to (address);
  g_autoptr(GDBusConnection) client = connect_to (address);
  g_autoptr(ExoResourceGroup) root = make_group (n_objects);
  g_autoptr(ExoDBusExport) export = NULL;
  g_autoptr(GPtrArray) members = exo_resource_group_get_members (root);
  g_autoptr(GError) unhealthy = g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY, "x");
  Counts counts = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL), 0 };
  gpointer args[2] = { &counts, GUINT_TO_POINTER (n_objects * n_changes) };
  guint ids[2];
  guint max = 0;
  gint64 start;
  double seconds;
  GHashTableIter iter;
  gpointer value;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (root), NULL));
  export = exo_dbus_export_new (server, "bench", root);
  ids[0] = g_dbus_connection_signal_subscribe (client, g_dbus_connection_get_unique_name (server),
                                               "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                               NULL, "org.exo.Resource1", G_DBUS_SIGNAL_FLAGS_NONE,
                                               on_signal, &counts, NULL);
  ids[1] = g_dbus_connection_signal_subscribe (client, g_dbus_connection_get_unique_name (server),
                                               "org.exo.Resource1", "StateChanged",
                                               NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                               on_signal, &counts, NULL);
  /* The bus has the subscriptions' match rules once it answered a later call. */
  g_variant_unref (g_dbus_connection_call_sync (client, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                "org.freedesktop.DBus", "GetId", NULL, NULL,
                                                G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL));
  g_hash_table_remove_all (counts.counts);
  counts.n_state_changed = 0;

  start = g_get_monotonic_time ();
  for (guint i = 0; i < members->len; i++)
    for (guint c = 0; c < n_changes; c++)
      exo_resource_report_health (g_ptr_array_index (members, i), c % 2 == 1, unhealthy);
  g_assert_true (exo_test_spin_until (all_state_changes_seen, args, 120000));
  seconds = (g_get_monotonic_time () - start) / 1e6;
  exo_test_spin (200);

  g_hash_table_iter_init (&iter, counts.counts);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    max = MAX (max, GPOINTER_TO_UINT (value));

  g_print ("{\"bench\": \"properties_changed_per_object\", \"value\": %u, \"unit\": \"signals\", "
           "\"n\": %u, \"state_changes_per_object\": %u, \"objects_signalled\": %u}\n",
           max, n_objects, n_changes, g_hash_table_size (counts.counts));
  g_print ("{\"bench\": \"dbus_state_changed_signals_per_s\", \"value\": %.0f, \"unit\": \"signals/s\", "
           "\"n\": %u}\n", n_objects * n_changes / seconds, n_objects * n_changes);

  g_dbus_connection_signal_unsubscribe (client, ids[0]);
  g_dbus_connection_signal_unsubscribe (client, ids[1]);
  g_hash_table_unref (counts.counts);
  exo_dbus_export_unexport (export);
  exo_test_cleanup (EXO_RESOURCE (root), NULL);
  g_dbus_connection_close_sync (client, NULL, NULL);
  g_dbus_connection_close_sync (server, NULL, NULL);
}

static void
with_bus (void (*func) (const char *address))
{
  g_autoptr(GTestDBus) bus = g_test_dbus_new (G_TEST_DBUS_NONE);

  g_test_dbus_up (bus);
  func (g_test_dbus_get_bus_address (bus));
  g_test_dbus_down (bus);
}

static void
run_get_managed_objects (void)
{
  with_bus (bench_get_managed_objects);
}

static void
run_properties_changed (void)
{
  with_bus (bench_properties_changed);
}

/* The floor of a cold start under the D-Bus contract (docs/dbus-api.md):
 * each resource that starts sends StateChanged twice (uninitialized ->
 * initializing, initializing -> ready) and PropertiesChanged after each
 * (the two transitions fall in different main-loop iterations).  This is
 * what those 4,000 signals of 1,000 resources cost through GDBus alone, on
 * the same kind of bus, until the bus has them all (a flush), with bodies
 * like the export's. */
static void
bench_signal_floor (const char *address)
{
  g_autoptr(GDBusConnection) server = connect_to (address);
  double times[N_RUNS];

  for (guint run = 0; run < N_RUNS; run++)
    {
      gint64 start = g_get_monotonic_time ();

      for (guint i = 0; i < N_RESOURCES; i++)
        {
          g_autofree char *path = g_strdup_printf ("/org/exo/Node1/resource/e%u", i);
          static const char * const states[][2] = {
            { "uninitialized", "initializing" }, { "initializing", "ready" },
          };

          for (guint t = 0; t < G_N_ELEMENTS (states); t++)
            {
              GVariantBuilder changed;

              g_dbus_connection_emit_signal (server, NULL, path, "org.exo.Resource1", "StateChanged",
                                             g_variant_new ("(sss)", states[t][0], states[t][1], ""),
                                             NULL);
              g_variant_builder_init (&changed, G_VARIANT_TYPE ("a{sv}"));
              g_variant_builder_add (&changed, "{sv}", "State", g_variant_new_string (states[t][1]));
              g_variant_builder_add (&changed, "{sv}", "Healthy", g_variant_new_boolean (t == 1));
              g_variant_builder_add (&changed, "{sv}", "Attempts", g_variant_new_uint32 (1));
              g_variant_builder_add (&changed, "{sv}", "StateChangedAt",
                                     g_variant_new_uint64 ((guint64) g_get_real_time ()));
              g_dbus_connection_emit_signal (server, NULL, path, "org.freedesktop.DBus.Properties",
                                             "PropertiesChanged",
                                             g_variant_new ("(sa{sv}as)", "org.exo.Resource1",
                                                            &changed, NULL),
                                             NULL);
            }
        }
      g_dbus_connection_flush_sync (server, NULL, NULL);
      times[run] = (g_get_monotonic_time () - start) / 1000.0;
    }

  bench_report ("dbus_signal_floor_1k_ms", bench_median (times, N_RUNS), "ms", N_RUNS,
                ", \"signals\": 4000, \"what\": \"the D-Bus signals of 1,000 resources "
                "starting, through GDBus alone\"");
  g_dbus_connection_close_sync (server, NULL, NULL);
}

static void
run_signal_floor (void)
{
  with_bus (bench_signal_floor);
}

/* --- the daemon as a process --------------------------------------------- */

static char *
build_path (const char *relative)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = g_path_get_dirname (self);

  /* exo-bench is in <build>/tests/bench */
  return g_build_filename (dir, "..", "..", relative, NULL);
}

static long
rss_kib_of (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) pid);
  g_autofree char *contents = NULL;
  const char *line;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return -1;
  line = strstr (contents, "VmRSS:");
  return line ? strtol (line + 6, NULL, 10) : -1;
}

static gboolean
node_ready (GDBusConnection *c)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) value = NULL;

  reply = g_dbus_connection_call_sync (c, "org.exo.Bench", "/org/exo/Node1",
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", "org.exo.Node1", "State"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, 1000,
                                       NULL, NULL);
  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(v)", &value);
  return g_strcmp0 (g_variant_get_string (value, NULL), "ready") == 0;
}

/* Spawns exo-node (with @config, or the built-in default when NULL) N_RUNS
 * times and measures spawn -> Node1.State == "ready" on D-Bus, and the RSS
 * then. */
static void
bench_node_start_with (const char *address,
                       const char *config,
                       const char *name,
                       const char *rss_name,
                       const char *extra_json)
{
  g_autofree char *exo_node = build_path ("src/daemon/exo-node");
  g_autofree char *plugins = build_path ("plugins");
  g_autoptr(GDBusConnection) client = connect_to (address);
  double times[N_RUNS], rss[N_RUNS];

  for (guint run = 0; run < N_RUNS; run++)
    {
      g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_SILENCE);
      g_autoptr(GSubprocess) proc = NULL;
      g_autoptr(GError) error = NULL;
      gint64 start, deadline;

      g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", address, TRUE);
      /* the default config serves the shipped model, as ./bootstrap run finds it */
      g_subprocess_launcher_setenv (launcher, "EXO_MODEL_PATH", EXO_BENCH_MODEL_PATH, TRUE);
      /* its node-id goes to the build tree, not to the user's state folder */
      g_subprocess_launcher_setenv (launcher, "STATE_DIRECTORY", plugins, TRUE);
      start = g_get_monotonic_time ();
      /* The default config's discovery broadcasts: run it in a network
       * namespace with only loopback, so nothing leaves this machine. */
      proc = g_subprocess_launcher_spawn (launcher, &error, "unshare", "--net", "--",
                                          "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\"",
                                          exo_node, "--plugin-dir", plugins,
                                          "--bus-name", "org.exo.Bench",
                                          config != NULL ? "--config" : NULL, config, NULL);
      if (proc == NULL)
        g_error ("cannot run %s: %s", exo_node, error->message);
      deadline = start + 30 * G_USEC_PER_SEC;
      while (!node_ready (client))
        {
          if (g_get_monotonic_time () > deadline)
            g_error ("exo-node did not become ready within 30 s");
          g_usleep (500);
        }
      times[run] = (g_get_monotonic_time () - start) / 1000.0;
      rss[run] = rss_kib_of (atoi (g_subprocess_get_identifier (proc)));
      g_subprocess_send_signal (proc, SIGTERM);
      g_subprocess_wait (proc, NULL, NULL);
    }

  bench_report (name, bench_median (times, N_RUNS), "ms", N_RUNS, extra_json);
  bench_report (rss_name, bench_median (rss, N_RUNS), "KiB", N_RUNS, extra_json);
  g_dbus_connection_close_sync (client, NULL, NULL);
}

static void
bench_node_start (const char *address)
{
  bench_node_start_with (address, NULL, "node_cold_start_ms", "node_rss_kib",
                         ", \"config\": \"built-in default\"");
}

/* A config of @n dummy-inference engines, each depending on up to two
 * earlier ones (like the group benchmark's DAG). */
static char *
write_many_config (const char *dir,
                   guint       n)
{
  g_autofree char *name = g_strdup_printf ("many-%u.json", n);
  char *path = g_build_filename (dir, name, NULL);
  GString *json = g_string_new ("{ \"resources\": [\n");
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < n; i++)
    {
      g_string_append_printf (json, "  { \"id\": \"e%u\", \"type\": \"dummy-inference\"", i);
      if (i > 0)
        {
          g_string_append_printf (json, ", \"depends-on\": [\"e%u\"", (i - 1) / 2);
          if (i % 3 == 0 && i / 3 != (i - 1) / 2)
            g_string_append_printf (json, ", \"e%u\"", i / 3);
          g_string_append_c (json, ']');
        }
      g_string_append_printf (json, " }%s\n", i + 1 < n ? "," : "");
    }
  g_string_append (json, "] }\n");
  if (!g_file_set_contents (path, json->str, json->len, &error))
    g_error ("%s", error->message);
  g_string_free (json, TRUE);
  return path;
}

static void
bench_node_start_many (const char *address,
                       guint       n)
{
  g_autofree char *dir = g_dir_make_tmp ("exo-bench-config-XXXXXX", NULL);
  g_autofree char *config = write_many_config (dir, n);
  g_autofree char *name = g_strdup_printf ("node_cold_start_%uk_ms", n / 1000);
  g_autofree char *rss_name = g_strdup_printf ("node_rss_%uk_kib", n / 1000);
  g_autofree char *extra = g_strdup_printf (", \"resources\": %u", n);

  bench_node_start_with (address, config, name, rss_name, extra);
  g_unlink (config);
  g_rmdir (dir);
}

static void
bench_node_start_1k (const char *address)
{
  bench_node_start_many (address, 1000);
}

static void
bench_node_start_10k (const char *address)
{
  bench_node_start_many (address, 10000);
}

static void
with_private_bus (void (*func) (const char *address))
{
  g_autofree char *dir = g_dir_make_tmp ("exo-bench-XXXXXX", NULL);
  g_autofree char *socket_path = g_build_filename (dir, "bus", NULL);
  g_autofree char *address = g_strdup_printf ("unix:path=%s", socket_path);
  g_autoptr(GSubprocess) bus = NULL;

  if (getuid () != 0)
    {
      g_printerr ("node_cold_start_ms: needs root (runs exo-node in its own network namespace)\n");
      return;
    }
  /* a bus on a filesystem socket, reachable from the node's namespace */
  bus = exo_test_bus_spawn (socket_path, NULL);
  func (address);
  g_subprocess_force_exit (bus);
  g_subprocess_wait (bus, NULL, NULL);
  g_unlink (socket_path);
  g_rmdir (dir);
}

static void
run_node_start (void)
{
  with_private_bus (bench_node_start);
}

static void
run_node_start_1k (void)
{
  with_private_bus (bench_node_start_1k);
}

static void
run_node_start_10k (void)
{
  with_private_bus (bench_node_start_10k);
}

const BenchEntry bench_daemon_entries[] = {
  { "dbus_get_managed_objects_1k_ms", run_get_managed_objects },
  { "properties_changed_per_object", run_properties_changed },
  { "dbus_signal_floor_1k_ms", run_signal_floor },
  { "node_cold_start_ms", run_node_start },
  { "node_cold_start_1k_ms", run_node_start_1k },
  { "node_cold_start_10k_ms", run_node_start_10k },
  { NULL, NULL },
};
