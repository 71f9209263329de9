/* test-udp-discovery.c: the udp-discovery plugin, in process — main(), the
 * plugin's loading and its settings.
 *
 * Several discovery resources share this program's main context on
 * 127.0.0.1, each on its own port, and send to each other's ports as
 * unicast "broadcast addresses", so the tests need no broadcast-capable
 * interface and send nothing beyond loopback.  Bad datagrams come from
 * plain GSockets; static peers are a SoupServer in this process.
 *
 * Every node of this process uses one cluster key (test_key, the default
 * key); the plain sockets seal what they send with it (sender_send), so the
 * checks of the message behind the envelope are exercised, or send raw or
 * forged datagrams on purpose (/udp-discovery/auth/...).
 *
 * The plugin is loaded through ExoPluginLoader from $EXO_UDP_DISCOVERY_PLUGIN
 * (set by meson), as the daemon loads it.
 *
 * The nodes, the sender and the waits are in udp-discovery-fixture.c; the
 * cases finding and losing peers in test-udp-discovery-find.c, the
 * authentication cases in test-udp-discovery-auth.c, static peers in
 * test-udp-discovery-static.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "udp-discovery-fixture.h"

/* --- settings ----------------------------------------------------------------- */

static void
test_defaults (void)
{
  g_autoptr(ExoResource) resource = NULL;
  guint port, interval, timeout, server_port;
  g_autofree char *listen = NULL;
  g_autofree char *interface_type = NULL;
  g_auto(GStrv) addresses = NULL;
  g_auto(GStrv) statics = NULL;

  g_unsetenv ("EXO_NODE_ID");
  resource = g_object_new (discovery_type, "id", "defaults", NULL);
  g_object_get (resource,
                "port", &port, "listen-address", &listen, "broadcast-addresses", &addresses,
                "broadcast-interval-ms", &interval, "peer-timeout-ms", &timeout,
                "static-peers", &statics, "server-port", &server_port,
                "interface-type", &interface_type, NULL);
  g_assert_cmpuint (port, ==, 5678);
  g_assert_cmpstr (listen, ==, "0.0.0.0");
  g_assert_true (addresses == NULL || addresses[0] == NULL);
  g_assert_cmpuint (interval, ==, 2500);
  g_assert_cmpuint (timeout, ==, 30000);
  g_assert_true (statics == NULL || statics[0] == NULL);
  g_assert_cmpuint (server_port, ==, 0);
  g_assert_cmpstr (interface_type, ==, "auto");
  g_assert_cmpstr (exo_resource_get_resource_type (resource), ==, "udp-discovery");
  g_assert_true (EXO_IS_DISCOVERY (resource));
}

static void
test_node_id (void)
{
  g_autoptr(ExoResource) one = NULL;
  g_autoptr(ExoResource) two = NULL;
  g_autoptr(ExoResource) from_env = NULL;
  g_autoptr(ExoResource) configured = NULL;
  g_autofree char *id_one = NULL, *id_two = NULL, *id_env = NULL, *id_conf = NULL;
  g_autofree char *instance_one = NULL, *instance_two = NULL;
  g_autoptr(GError) error = NULL;

  /* No setting, no environment: one random id per process. */
  g_unsetenv ("EXO_NODE_ID");
  one = g_object_new (discovery_type, "id", "one", NULL);
  two = g_object_new (discovery_type, "id", "two", NULL);
  g_object_get (one, "effective-node-id", &id_one, "instance-id", &instance_one, NULL);
  g_object_get (two, "effective-node-id", &id_two, "instance-id", &instance_two, NULL);
  g_assert_true (g_uuid_string_is_valid (id_one));
  g_assert_cmpstr (id_one, ==, id_two);
  g_assert_cmpstr (instance_one, !=, instance_two);

  /* The daemon's id through the environment. */
  g_setenv ("EXO_NODE_ID", "from-the-daemon", TRUE);
  from_env = g_object_new (discovery_type, "id", "env", NULL);
  g_object_get (from_env, "effective-node-id", &id_env, NULL);
  g_assert_cmpstr (id_env, ==, "from-the-daemon");

  /* The setting wins. */
  configured = g_object_new (discovery_type, "id", "conf", "node-id", "configured", NULL);
  g_object_get (configured, "effective-node-id", &id_conf, NULL);
  g_assert_cmpstr (id_conf, ==, "configured");
  g_unsetenv ("EXO_NODE_ID");

  /* An id that could not go on the wire is refused. */
  {
    g_autofree char *long_id = g_strnfill (UDP_DISCOVERY_TEST_MAX_ID + 1, 'x');
    g_autoptr(ExoResource) bad = g_object_new (discovery_type, "id", "bad", "node-id", long_id,
                                               "port", (guint) free_udp_port (),
                                               "listen-address", "127.0.0.1",
                                               "broadcast-addresses", (const char *[]) { "127.0.0.1:9", NULL },
                                               NULL);

    g_assert_false (exo_test_initialize (bad, &error));
    g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
    g_assert_nonnull (strstr (error->message, "node-id"));
    g_clear_error (&error);
    g_assert_true (exo_test_cleanup (bad, NULL));
  }
}

static void
test_bad_settings (void)
{
  struct { const char *property; const char *value[3]; const char *needle; } cases[] = {
    { "broadcast-addresses", { "not-an-address", NULL }, "broadcast-addresses: 'not-an-address'" },
    { "broadcast-addresses", { "127.0.0.1:0", NULL }, "no valid port" },
    { "broadcast-addresses", { "127.0.0.1:99999", NULL }, "no valid port" },
    { "broadcast-addresses", { "::1", NULL }, "not an IPv4 address" },
    { "static-peers", { "127.0.0.1", NULL }, "static-peers: '127.0.0.1' has no port" },
    { "static-peers", { "[bad:", NULL }, "static-peers: '[bad:'" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(ExoResource) resource = NULL;
      g_autoptr(GError) error = NULL;

      resource = g_object_new (discovery_type, "id", "bad-settings", "node-id", "n",
                               "port", (guint) free_udp_port (), "listen-address", "127.0.0.1",
                               "broadcast-addresses", (const char *[]) { "127.0.0.1:9", NULL },
                               NULL);
      g_object_set (resource, cases[i].property, cases[i].value, NULL);
      g_assert_false (exo_test_initialize (resource, &error));
      g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, cases[i].needle));
      g_assert_true (exo_test_cleanup (resource, NULL));
    }

  /* listen-address */
  {
    g_autoptr(ExoResource) resource = g_object_new (discovery_type, "id", "bad-listen",
                                                    "node-id", "n", "listen-address", "nowhere",
                                                    NULL);
    g_autoptr(GError) error = NULL;

    g_assert_false (exo_test_initialize (resource, &error));
    g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
    g_assert_nonnull (strstr (error->message, "listen-address"));
    g_assert_true (exo_test_cleanup (resource, NULL));
  }
}

/* Port 0 binds any free port, and "addr" without a port means that port. */
static void
test_any_port (void)
{
  g_autoptr(ExoResource) resource = g_object_new (discovery_type, "id", "any-port",
                                                  "node-id", "lonely", "port", 0,
                                                  "listen-address", "127.0.0.1",
                                                  "broadcast-addresses", (const char *[]) { "127.0.0.1", NULL },
                                                  "broadcast-interval-ms", interval_ms,
                                                  NULL);
  g_autoptr(GVariant) metrics = NULL;
  g_autofree const char **sent_to = NULL;
  g_autofree char *expected = NULL;
  guint32 port = 0;

  g_assert_true (exo_test_initialize (resource, NULL));
  g_assert_true (wait_metric (resource, "own-messages", 2));
  metrics = exo_resource_get_metrics (resource);
  g_assert_true (g_variant_lookup (metrics, "port", "u", &port));
  g_assert_cmpuint (port, >, 0);
  g_assert_true (g_variant_lookup (metrics, "broadcast-targets", "^a&s", &sent_to));
  expected = g_strdup_printf ("127.0.0.1:%u", port);
  g_assert_cmpuint (g_strv_length ((char **) sent_to), ==, 1);
  g_assert_cmpstr (sent_to[0], ==, expected);
  g_assert_true (exo_test_cleanup (resource, NULL));
}

/* --- main ----------------------------------------------------------------------- */

static GType
load_plugin (ExoPluginLoader *loader,
             const char      *argv0)
{
  const char *path = g_getenv ("EXO_UDP_DISCOVERY_PLUGIN");
  g_autofree char *fallback = NULL;
  g_autoptr(GError) error = NULL;
  ExoPluginInfo *info;   /* the loader's */

  if (path == NULL)
    {
      g_autofree char *dir = g_path_get_dirname (argv0);

      fallback = g_build_filename (dir, "..", "plugins", "udp-discovery",
                                   "libexo-plugin-udp-discovery.so", NULL);
      path = fallback;
    }
  info = exo_plugin_loader_load_file (loader, path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (exo_plugin_info_get_name (info), ==, "udp-discovery");
  return exo_plugin_loader_lookup_type (loader, "udp-discovery");
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(ExoPluginLoader) loader = NULL;
  guint slow;
  int ret;

  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (capture_writer, NULL, NULL);
  /* GTest shows every g_debug(); GSocketClient has many. */
  if (g_getenv ("G_MESSAGES_DEBUG") == NULL)
    {
      g_log_set_handler ("GLib-GIO", G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO, discard_log, NULL);
      g_log_set_handler ("libsoup", G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO, discard_log, NULL);
    }
  plugin_log = g_ptr_array_new_with_free_func (g_free);
  test_key = exo_cluster_key_new_random ();
  exo_cluster_key_set_default (test_key);

  loader = exo_plugin_loader_new ();
  discovery_type = load_plugin (loader, argv[0]);
  g_assert_true (g_type_is_a (discovery_type, EXO_TYPE_DISCOVERY));

  slow = exo_test_slow_factor ();
  interval_ms = 100 * slow;
  timeout_ms = 600 * slow;
  wait_ms = 10000 * slow;

  g_test_add_func ("/udp-discovery/settings/defaults", test_defaults);
  g_test_add_func ("/udp-discovery/settings/node-id", test_node_id);
  g_test_add_func ("/udp-discovery/settings/invalid", test_bad_settings);
  g_test_add_func ("/udp-discovery/settings/any-port", test_any_port);
  test_discovery_register_find ();
  test_discovery_register_auth ();
  test_discovery_register_static ();

  ret = g_test_run ();
  exo_cluster_key_set_default (NULL);
  g_clear_pointer (&test_key, exo_cluster_key_unref);
  g_ptr_array_unref (plugin_log);
  return ret;
}
