/* test-daemon.c: exo-node end to end, as an operator runs it.
 *
 * Each case starts the real exo-node (with the plugins built in this tree)
 * on a private bus and looks at it from outside: over D-Bus, through its
 * log and its exit status.
 *
 * main(), the default config, dependency order, --check-config, settings
 * and the cluster key are here; refused plugins, a taken bus name,
 * Shutdown, signals and usage errors in test-daemon-lifecycle.c; the
 * Fixture and the Node in daemon-fixture.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon-fixture.h"

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char * const *) a, *(char * const *) b);
}

/* Every object's State from one GetManagedObjects call: "id=state,..." sorted. */
static char *
all_states (GDBusConnection *c, const char *bus_name)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariantIter) objects = NULL;
  g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func (g_free);
  const char *path;
  GVariant *ifaces;

  reply = g_dbus_connection_call_sync (c, bus_name, "/org/exo/Node1",
                                       "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                                       NULL, G_VARIANT_TYPE ("(a{oa{sa{sv}}})"),
                                       G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  g_assert_nonnull (reply);
  g_variant_get (reply, "(a{oa{sa{sv}}})", &objects);
  while (g_variant_iter_next (objects, "{&o@a{sa{sv}}}", &path, &ifaces))
    {
      g_autoptr(GVariant) props = g_variant_lookup_value (ifaces, "org.exo.Resource1",
                                                          G_VARIANT_TYPE_VARDICT);
      const char *id = NULL, *state = NULL;

      if (props != NULL && g_variant_lookup (props, "Id", "&s", &id)
          && g_variant_lookup (props, "State", "&s", &state))
        g_ptr_array_add (items, g_strdup_printf ("%s=%s", id, state));
      g_variant_unref (ifaces);
    }
  g_ptr_array_sort (items, compare_strings);
  {
    GString *s = g_string_new (NULL);
    for (guint i = 0; i < items->len; i++)
      g_string_append_printf (s, "%s%s", i ? "," : "", (char *) g_ptr_array_index (items, i));
    return g_string_free (s, FALSE);
  }
}

/* Position of a log line, or -1. */
static gssize
log_pos (const char *log, const char *needle)
{
  const char *p = strstr (log, needle);
  return p ? p - log : -1;
}

/* POST @body to http://127.0.0.1:52415@path from inside the network
 * namespace of @node (nsenter + curl): the body, then a line with the
 * status and the Retry-After header, if any. */
static G_GNUC_NO_INLINE char *
http_in_ns (Node       *node,
            const char *path,
            const char *body)
{
  g_autofree char *url = g_strdup_printf ("http://127.0.0.1:52415%s", path);
  const char *argv[] = {
    "nsenter", "--net", NULL /* --target */, NULL, "curl", "-s", "-S", "-m", "60",
    "-H", "Content-Type: application/json", "--data-binary", body,
    "-w", "\n%{http_code} %header{retry-after}", url, NULL
  };
  g_autofree char *target = g_strdup_printf ("--target=%s", g_subprocess_get_identifier (node->proc));
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  char *out = NULL;

  argv[2] = target;
  argv[3] = "--";
  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  return out;
}

/* A chat through the default config's node: its choice's text, the token
 * count and the finish reason. */
static void
chat_in_ns (Node        *node,
            const char  *prompt,
            const char  *extra,
            char       **text,
            gint64      *completion_tokens,
            gint64      *prompt_tokens,
            char       **finish_reason)
{
  g_autofree char *body = g_strdup_printf ("{\"messages\": [{\"role\": \"user\", \"content\": \"%s\"}]%s}",
                                           prompt, extra);
  char *out = http_in_ns (node, "/v1/chat/completions", body);
  char *nl = strrchr (out, '\n');
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *root, *choice, *usage;

  g_assert_nonnull (nl);
  if (!g_str_has_prefix (nl + 1, "200"))
    g_error ("chat '%s' answered %s: %.*s", prompt, nl + 1, (int) (nl - out), out);
  *nl = '\0';
  json_parser_load_from_data (parser, out, -1, &error);
  g_assert_no_error (error);
  root = json_node_get_object (json_parser_get_root (parser));
  choice = json_array_get_object_element (json_object_get_array_member (root, "choices"), 0);
  *text = g_strdup (json_object_get_string_member (json_object_get_object_member (choice, "message"),
                                                   "content"));
  *finish_reason = g_strdup (json_object_get_string_member (choice, "finish_reason"));
  usage = json_object_get_object_member (root, "usage");
  *completion_tokens = json_object_get_int_member (usage, "completion_tokens");
  *prompt_tokens = json_object_get_int_member (usage, "prompt_tokens");
  g_free (out);
}

/* The built-in default config serves the shipped model (data/models/):
 * greedy answers are stable (golden texts recorded once), max_tokens ends
 * an answer with finish_reason "length", the model's own end with "stop". */
static void
check_default_model_answers (Node *node)
{
  static const struct {
    const char *prompt;
    const char *text;
    gint64      tokens;
    gint64      prompt_tokens;   /* usage.prompt_tokens: the template's tokens, BOS included */
  } golden[] = {
    /* recorded once (the chat template puts the prompt in a longer text) */
    { "Love is", "\t\t-- John Johnson", 15, 10 },
    { "The computer", "\t\t-- John Johnson", 15, 12 },
    { "", "\t\t-- John Christmastics, order, 1988", 29, 7 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (golden); i++)
    for (guint round = 0; round < 2; round++)
      {
        g_autofree char *text = NULL, *reason = NULL;
        gint64 n = 0, np = 0;

        chat_in_ns (node, golden[i].prompt, ", \"temperature\": 0", &text, &n, &np, &reason);
        g_test_message ("prompt '%s': %" G_GINT64_FORMAT " tokens (prompt %" G_GINT64_FORMAT "), %s: '%s'",
                        golden[i].prompt, n, np, reason, text);
        if (golden[i].text != NULL)
          {
            g_assert_cmpstr (text, ==, golden[i].text);
            g_assert_cmpint (n, ==, golden[i].tokens);
          }
        g_assert_cmpint (np, ==, golden[i].prompt_tokens);
        g_assert_cmpstr (reason, ==, "stop");
      }

  /* max_tokens: exactly that many, "length" */
  {
    g_autofree char *text = NULL, *reason = NULL;
    gint64 n = 0, np = 0;

    chat_in_ns (node, "Love is", ", \"temperature\": 0, \"max_tokens\": 5", &text, &n, &np, &reason);
    g_assert_cmpint (n, ==, 5);
    g_assert_cmpint (np, ==, 10);
    g_assert_cmpstr (reason, ==, "length");
  }
}

/* The built-in default config (engine, HTTP server, UDP discovery, node):
 * everything reaches ready, the user API answers, SIGTERM cleans up in
 * reverse dependency order and exits 0.  Run in its own network namespace,
 * so that its discovery broadcasts reach nothing but loopback. */
static void
test_default_config (Fixture *f, gconstpointer data)
{
  g_autoptr(GDBusConnection) c = NULL;
  g_autofree char *log = NULL;
  g_autofree char *states = NULL;
  Node *node;

  if (!have_daemon (f))
    return;
  if (!can_isolate ())
    {
      g_test_skip ("needs root, unshare and ip: the default config broadcasts on the network");
      return;
    }

  node = node_start_isolated (f, "default.log", NULL);
  c = client (f);
  g_assert_true (wait_node_ready (c, "org.exo.Node1", 15000));
  states = all_states (c, "org.exo.Node1");
  g_assert_cmpstr (states, ==, "discovery=ready,engine=ready,node=ready,root=ready,server=ready");
  check_default_model_answers (node);

  kill (atoi (g_subprocess_get_identifier (node->proc)), SIGTERM);
  g_assert_cmpint (node_wait (node, 15000), ==, 0);
  log = node_log (node);
  g_assert_nonnull (strstr (log, "built-in default config"));
  /* dependents before their dependencies */
  g_assert_cmpint (log_pos (log, "node: closing -> closed"), >=, 0);
  g_assert_cmpint (log_pos (log, "node: closing -> closed"), <, log_pos (log, "discovery: ready -> closing"));
  g_assert_cmpint (log_pos (log, "discovery: closing -> closed"), <, log_pos (log, "server: ready -> closing"));
  g_assert_cmpint (log_pos (log, "node: closing -> closed"), <, log_pos (log, "engine: ready -> closing"));
  g_assert_nonnull (strstr (log, "all resources cleaned up"));
  /* Out of the box: a cluster key was made on the first start, private. */
  {
    g_autofree char *key = g_build_filename (f->tmpdir, "state", "cluster.key", NULL);
    g_autofree char *dir = g_build_filename (f->tmpdir, "state", NULL);
    g_autofree char *line = g_strdup_printf ("generated a new cluster key in %s", key);
    GStatBuf st;

    g_assert_nonnull (strstr (log, line));
    g_assert_cmpint (g_stat (key, &st), ==, 0);
    g_assert_cmpint (st.st_mode & 0777, ==, 0600);
    g_assert_cmpint (g_stat (dir, &st), ==, 0);
    g_assert_cmpint (st.st_mode & 0777, ==, 0700);
  }
  node_free (node);
}

static const char chain_config[] =
  "{\n"
  "  \"node\": { \"id\": \"chain-node\" },\n"
  "  \"resources\": [\n"
  "    { \"id\": \"top\", \"type\": \"dummy-inference\", \"depends-on\": [\"middle\"] },\n"
  "    { \"id\": \"bottom\", \"type\": \"dummy-inference\" },\n"
  "    { \"id\": \"middle\", \"type\": \"dummy-inference\", \"depends-on\": [\"bottom\"],\n"
  "      \"settings\": { \"num-generate-tokens\": 5 },\n"
  "      \"retry\": { \"max-retries\": 2, \"initial-delay-ms\": 10, \"jitter\": \"none\" },\n"
  "      \"init-timeout-ms\": 5000 }\n"
  "  ]\n"
  "}\n";

/* Initialize in dependency order, clean up in reverse dependency order
 * (not file order), exit 0 on SIGTERM. */
static void
test_dependency_order (Fixture *f, gconstpointer data)
{
  g_autoptr(GDBusConnection) c = NULL;
  g_autofree char *config = write_file (f, "chain.json", chain_config);
  g_autofree char *log = NULL;
  g_autofree char *states = NULL;
  Node *node;

  if (!have_daemon (f))
    return;

  node = node_start (f, "chain.log", "--config", config, "--bus-name", "org.exo.Test.Chain", NULL);
  c = client (f);
  g_assert_true (wait_node_ready (c, "org.exo.Test.Chain", 10000));
  states = all_states (c, "org.exo.Test.Chain");
  g_assert_cmpstr (states, ==, "bottom=ready,middle=ready,root=ready,top=ready");

  kill (atoi (g_subprocess_get_identifier (node->proc)), SIGTERM);
  g_assert_cmpint (node_wait (node, 10000), ==, 0);
  log = node_log (node);

  g_assert_cmpint (log_pos (log, "bottom: initializing -> ready"), <, log_pos (log, "middle: initializing -> ready"));
  g_assert_cmpint (log_pos (log, "middle: initializing -> ready"), <, log_pos (log, "top: initializing -> ready"));
  g_assert_cmpint (log_pos (log, "top: closing -> closed"), >=, 0);
  g_assert_cmpint (log_pos (log, "top: closing -> closed"), <, log_pos (log, "middle: ready -> closing"));
  g_assert_cmpint (log_pos (log, "middle: closing -> closed"), <, log_pos (log, "bottom: ready -> closing"));
  g_assert_nonnull (strstr (log, "node id chain-node"));
  node_free (node);
}

static void
test_check_config (Fixture *f, gconstpointer data)
{
  g_autofree char *good = write_file (f, "good.json", chain_config);
  g_autofree char *bad = write_file (f, "bad.json",
                                     "{\n  \"resources\": [\n"
                                     "    { \"id\": \"a\", \"type\": \"dummy-inference\",\n"
                                     "      \"settings\": { \"num-generate-tokens\": \"many\" } }\n"
                                     "  ]\n}\n");
  g_autofree char *cycle = write_file (f, "cycle.json",
                                       "{ \"resources\": [\n"
                                       "  { \"id\": \"a\", \"type\": \"dummy-inference\", \"depends-on\": [\"b\"] },\n"
                                       "  { \"id\": \"b\", \"type\": \"dummy-inference\", \"depends-on\": [\"a\"] }\n"
                                       "] }\n");
  g_autofree char *old = write_file (f, "old.json",
                                     "{ \"resources\": [\n"
                                     "  { \"id\": \"a\", \"type\": \"dummy-inference\", \"init-timeout\": 5000 }\n"
                                     "] }\n");
  g_autofree char *log = NULL;
  Node *node;

  if (!have_daemon (f))
    return;

  node = node_start (f, "check-good.log", "--check-config", good, NULL);
  g_assert_cmpint (node_wait (node, 10000), ==, 0);
  log = node_log (node);
  g_assert_nonnull (strstr (log, "configuration is valid (3 resources)"));
  g_clear_pointer (&log, g_free);
  node_free (node);

  node = node_start (f, "check-bad.log", "--check-config", bad, NULL);
  g_assert_cmpint (node_wait (node, 10000), ==, 1);
  log = node_log (node);
  /* file, line and key */
  g_assert_nonnull (strstr (log, "bad.json:4:"));
  g_assert_nonnull (strstr (log, "resources[0].settings.num-generate-tokens"));
  g_clear_pointer (&log, g_free);
  node_free (node);

  node = node_start (f, "check-cycle.log", "--check-config", cycle, NULL);
  g_assert_cmpint (node_wait (node, 10000), ==, 1);
  log = node_log (node);
  g_assert_true (strstr (log, "a -> b -> a") != NULL || strstr (log, "b -> a -> b") != NULL);
  g_clear_pointer (&log, g_free);
  node_free (node);

  /* a key in its deprecated spelling: valid, with a warning that names it
   * on stderr (apart from stdout: node_start () writes both to one file) */
  {
    const char *argv[] = { f->exo_node, "--plugin-dir", f->plugin_dir, "--check-config", old, NULL };
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autoptr(GError) error = NULL;
    int status;

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                 &out, &err, &status, &error));
    g_assert_no_error (error);
    g_assert_true (g_spawn_check_wait_status (status, NULL));
    g_assert_nonnull (strstr (out, "old.json: configuration is valid (1 resource), with 1 warning\n"));
    g_assert_true (g_str_has_prefix (err, "exo-node: warning: "));
    g_assert_nonnull (strstr (err, "old.json:2: resources[0].init-timeout: 'init-timeout' is a "
                                   "deprecated spelling of 'init-timeout-ms'"));
  }
}

/* Settings the plugin can check without side effects (its resource class's
 * check_settings) are refused when the config is built: by --check-config
 * (exit 1, FILE:LINE: KEY: what) and by the daemon's start (exit 1,
 * "refusing to start", nothing runs degraded). */
static void
test_check_settings (Fixture *f, gconstpointer data)
{
  g_autofree char *long_key = g_strnfill (2000, 'k');
  g_autofree char *open_keys = write_file (f, "open-api-keys", "secret-key\n");
  g_autofree char *good_keys = write_file (f, "good-api-keys", "# keys\nsecret-key\n");
  g_autofree char *missing_keys = g_build_filename (f->tmpdir, "no-such-api-keys", NULL);
  struct {
    const char *name;
    const char *type;
    const char *setting;
    char       *value;      /* JSON */
    const char *what;       /* in the message */
  } cases[] = {
    { "empty-key", "http-server", "api-keys", g_strdup ("[\"\"]"), "api-keys[0]: an API key must be" },
    { "space-key", "http-server", "api-keys", g_strdup ("[\"good\", \"a b\"]"), "api-keys[1]: an API key must be" },
    { "long-key", "http-server", "api-keys", g_strdup_printf ("[\"%s\"]", long_key), "api-keys[0]: an API key must be 1 to 1024" },
    { "open-file", "http-server", "api-key-file", g_strdup_printf ("\"%s\"", open_keys), "(mode 0644)" },
    { "missing-file", "http-server", "api-key-file", g_strdup_printf ("\"%s\"", missing_keys), "No such file or directory" },
    { "bracket-peer", "udp-discovery", "static-peers", g_strdup ("[\"[::1:80\"]"), "static-peers: '[::1:80' is not host:port" },
    { "port-peer", "udp-discovery", "static-peers", g_strdup ("[\"127.0.0.1:5\", \"host:99999\"]"), "static-peers: 'host:99999'" },
  };

  if (!have_daemon (f))
    {
      for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
        g_free (cases[i].value);
      return;
    }
  g_assert_cmpint (g_chmod (open_keys, 0644), ==, 0);
  g_assert_cmpint (g_chmod (good_keys, 0600), ==, 0);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gboolean udp = g_str_equal (cases[i].type, "udp-discovery");
      g_autofree char *file = g_strdup_printf ("%s.json", cases[i].name);
      g_autofree char *text = g_strdup_printf (
        "{ \"node\": { \"id\": \"checked\" },\n"
        "  \"resources\": [\n"
        "    { \"id\": \"r\", \"type\": \"%s\",\n"
        "      \"settings\": {\n"
        "        %s,\n"
        "        \"%s\": %s\n"
        "      } } ] }\n",
        cases[i].type,
        udp ? "\"port\": 0, \"broadcast-addresses\": [\"127.0.0.1\"], \"listen-address\": \"127.0.0.1\""
            : "\"port\": 0, \"listen-address\": \"127.0.0.1\"",
        cases[i].setting, cases[i].value);
      g_autofree char *path = write_file (f, file, text);
      g_autofree char *where = g_strdup_printf ("%s:6: resources[0].settings.%s: ", file, cases[i].setting);
      g_autofree char *check_log = g_strdup_printf ("%s-check.log", cases[i].name);
      g_autofree char *start_log = g_strdup_printf ("%s-start.log", cases[i].name);
      g_autofree char *log = NULL;
      Node *node;

      g_test_message ("case %s", cases[i].name);
      node = node_start (f, check_log, "--check-config", path, NULL);
      g_assert_cmpint (node_wait (node, 10000), ==, 1);
      log = node_log (node);
      g_assert_null (strstr (log, "configuration is valid"));
      g_assert_nonnull (strstr (log, where));
      g_assert_nonnull (strstr (log, cases[i].what));
      g_clear_pointer (&log, g_free);
      node_free (node);

      node = node_start (f, start_log, "--config", path, "--bus-name", "org.exo.Test.Checked", NULL);
      g_assert_cmpint (node_wait (node, 5000), ==, 1);
      log = node_log (node);
      g_assert_nonnull (strstr (log, "refusing to start: "));
      g_assert_nonnull (strstr (log, where));
      g_assert_nonnull (strstr (log, cases[i].what));
      g_assert_null (strstr (log, "initializing"));
      g_clear_pointer (&log, g_free);
      node_free (node);
      g_free (cases[i].value);
    }

  /* usable ones pass */
  {
    g_autofree char *text = g_strdup_printf (
      "{ \"resources\": [\n"
      "  { \"id\": \"s\", \"type\": \"http-server\", \"settings\": { \"port\": 0,\n"
      "    \"api-keys\": [\"k-1\"], \"api-key-file\": \"%s\" } },\n"
      "  { \"id\": \"d\", \"type\": \"udp-discovery\", \"settings\": { \"port\": 0,\n"
      "    \"static-peers\": [\"127.0.0.1:52415\", \"[::1]:80\", \"peer.example:1\"] } } ] }\n",
      good_keys);
    g_autofree char *path = write_file (f, "usable.json", text);
    g_autofree char *log = NULL;
    Node *node = node_start (f, "usable-check.log", "--check-config", path, NULL);

    g_assert_cmpint (node_wait (node, 10000), ==, 0);
    log = node_log (node);
    g_assert_nonnull (strstr (log, "configuration is valid (2 resources)"));
    node_free (node);
  }
}

/* The cluster key: made on the first start of a config that has cluster
 * resources (never for one without), kept afterwards; a key file others
 * may read, or one that is not a key, is refused before anything starts,
 * by --check-config too. */
static const char server_config[] =
  "{ \"node\": { \"id\": \"keyed\"%s },\n"
  "  \"resources\": [ { \"id\": \"server\", \"type\": \"http-server\",\n"
  "    \"settings\": { \"port\": 0, \"listen-address\": \"127.0.0.1\" } } ] }\n";

static void
test_cluster_key (Fixture *f, gconstpointer data)
{
  g_autofree char *state = g_build_filename (f->tmpdir, "state", NULL);
  g_autofree char *default_key = g_build_filename (state, "cluster.key", NULL);
  g_autofree char *engine = write_file (f, "engine.json", engine_config);
  g_autofree char *plain = g_strdup_printf (server_config, "");
  g_autofree char *plain_path = write_file (f, "server.json", plain);
  g_autofree char *open_key = g_build_filename (f->tmpdir, "open.key", NULL);
  g_autofree char *junk_key = g_build_filename (f->tmpdir, "junk.key", NULL);
  g_autofree char *with_open = g_strdup_printf (server_config, ", \"cluster-key-file\": \"open.key\"");
  g_autofree char *with_junk = g_strdup_printf (server_config, ", \"cluster-key-file\": \"junk.key\"");
  g_autofree char *open_path = write_file (f, "open.json", with_open);
  g_autofree char *junk_path = write_file (f, "junk.json", with_junk);
  g_autoptr(GDBusConnection) c = NULL;
  g_autofree char *log = NULL;
  g_autofree char *first_key = NULL, *second_key = NULL;
  Node *node;

  if (!have_daemon (f))
    return;

  /* no cluster resource: no key */
  node = node_start (f, "engine.log", "--config", engine, "--bus-name", "org.exo.Test.Engine", NULL);
  c = client (f);
  g_assert_true (wait_node_ready (c, "org.exo.Test.Engine", 10000));
  g_assert_false (g_file_test (default_key, G_FILE_TEST_EXISTS));
  kill (atoi (g_subprocess_get_identifier (node->proc)), SIGTERM);
  g_assert_cmpint (node_wait (node, 10000), ==, 0);
  node_free (node);

  /* a server: the key is made, then kept */
  for (guint i = 0; i < 2; i++)
    {
      node = node_start (f, i == 0 ? "first.log" : "second.log", "--config", plain_path,
                         "--bus-name", "org.exo.Test.Keyed", NULL);
      g_assert_true (wait_node_ready (c, "org.exo.Test.Keyed", 10000));
      kill (atoi (g_subprocess_get_identifier (node->proc)), SIGTERM);
      g_assert_cmpint (node_wait (node, 10000), ==, 0);
      log = node_log (node);
      if (i == 0)
        {
          g_assert_nonnull (strstr (log, "generated a new cluster key in"));
          g_assert_true (g_file_get_contents (default_key, &first_key, NULL, NULL));
        }
      else
        {
          g_autofree char *line = g_strdup_printf ("cluster key %s (fingerprint ", default_key);

          g_assert_null (strstr (log, "generated"));
          g_assert_nonnull (strstr (log, line));
          g_assert_true (g_file_get_contents (default_key, &second_key, NULL, NULL));
        }
      g_clear_pointer (&log, g_free);
      node_free (node);
    }
  g_assert_cmpstr (first_key, ==, second_key);
  g_assert_cmpuint (strlen (first_key), ==, 65);   /* 64 hex digits and a newline */

  /* a key others may read: refused, with the fix in the message */
  g_assert_true (g_file_set_contents (open_key, first_key, -1, NULL));
  g_assert_cmpint (g_chmod (open_key, 0644), ==, 0);
  node = node_start (f, "open.log", "--config", open_path, NULL);
  g_assert_cmpint (node_wait (node, 10000), ==, 1);
  log = node_log (node);
  g_assert_nonnull (strstr (log, "refusing to start: cluster key file "));
  g_assert_nonnull (strstr (log, "open.key: group or others may read or write it (mode 0644)"));
  g_assert_nonnull (strstr (log, "chmod 600"));
  g_clear_pointer (&log, g_free);
  node_free (node);
  node = node_start (f, "open-check.log", "--check-config", open_path, NULL);
  g_assert_cmpint (node_wait (node, 10000), ==, 1);
  log = node_log (node);
  g_assert_nonnull (strstr (log, "mode 0644"));
  g_clear_pointer (&log, g_free);
  node_free (node);

  /* a relative --config naming a relative key file: the key is found
   * beside the config, whatever the folder names look like */
  {
    g_autofree char *with_rel = g_strdup_printf (server_config, ", \"cluster-key-file\": \"rel.key\"");
    g_autofree char *rel_path = write_file (f, "rel.json", with_rel);
    g_autofree char *rel_key = g_build_filename (f->tmpdir, "rel.key", NULL);
    g_autofree char *line = g_strdup_printf ("cluster key %s (fingerprint ", rel_key);
    const char *configs[] = { "rel.json", "./rel.json" };

    g_assert_true (g_file_set_contents (rel_key, first_key, -1, NULL));
    g_assert_cmpint (g_chmod (rel_key, 0600), ==, 0);
    for (gsize i = 0; i < G_N_ELEMENTS (configs); i++)
      {
        node = node_start (f, "rel.log", "--config", configs[i], "--bus-name", "org.exo.Test.Rel", NULL);
        g_assert_true (wait_node_ready (c, "org.exo.Test.Rel", 10000));
        kill (atoi (g_subprocess_get_identifier (node->proc)), SIGTERM);
        g_assert_cmpint (node_wait (node, 10000), ==, 0);
        log = node_log (node);
        g_assert_nonnull (strstr (log, line));
        g_assert_null (strstr (log, "CRITICAL"));
        g_assert_null (strstr (log, "critical"));
        g_clear_pointer (&log, g_free);
        node_free (node);

        node = node_start (f, "rel-check.log", "--check-config", configs[i], NULL);
        g_assert_cmpint (node_wait (node, 10000), ==, 0);
        log = node_log (node);
        g_assert_null (strstr (log, "critical"));
        g_clear_pointer (&log, g_free);
        node_free (node);
      }
    g_unlink (rel_path);
  }

  /* not a key */
  g_assert_true (g_file_set_contents (junk_key, "hello\n", -1, NULL));
  g_assert_cmpint (g_chmod (junk_key, 0600), ==, 0);
  node = node_start (f, "junk.log", "--config", junk_path, NULL);
  g_assert_cmpint (node_wait (node, 10000), ==, 1);
  log = node_log (node);
  g_assert_nonnull (strstr (log, "junk.key:1: expected 64 hexadecimal digits"));
  node_free (node);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("/daemon/default-config", test_default_config);
  ADD ("/daemon/dependency-order", test_dependency_order);
  ADD ("/daemon/check-config", test_check_config);
  ADD ("/daemon/check-settings", test_check_settings);
  test_daemon_register_lifecycle ();
  ADD ("/daemon/cluster-key", test_cluster_key);

  return g_test_run ();
}
