/* test-metrics.c: GET /metrics as Prometheus wants it (issue 14), through
 * the real daemon, and the libexo API behind it (ExoMetricEntry).
 *
 * main() starts one exo-node for the whole program: dummy-inference, a
 * second engine of type llama (the shipped model), http-server,
 * udp-discovery (announcing to itself), node, and an http-peer to its own
 * server, on 127.0.0.1 and a private dbus-daemon, with
 * G_DEBUG=fatal-criticals.  It sends traffic (/healthcheck twice a second
 * apart on one connection, a 404, a chat whole and one streamed,
 * /v1/models) and scrapes /metrics once.
 *
 * /metrics/promtool: `promtool check metrics` (its lint: `_total`, units,
 *   reserved suffixes, HELP) passes; skipped without promtool.
 * /metrics/types: the TYPE of each family: no exo_resource_metric; every
 *   *_total is a counter and every counter a *_total; every sample belongs
 *   to the family before it; histograms have _bucket with le="+Inf" equal
 *   to _count, and _sum; the request latency and time-to-first-token
 *   histograms counted the traffic (not a kept-alive connection's idle
 *   time); process_* and exo_build_info.
 * /metrics/declared: every key of every resource's D-Bus Metrics has an
 *   ExoMetricEntry (the plugins are loaded in this process too), and each
 *   exported one is in /metrics under its entry's name.
 * /metrics/entries/lookup, /metrics/entries/refused: the API on classes
 *   of this file.
 *
 * Environment (set by meson): EXO_NODE, EXO_TEST_PLUGIN_DIR,
 * EXO_MODEL_PATH.
 *
 * Thread rules: one thread; the daemon and the bus are other processes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <exo/exo.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include "exo-test-bus.h"

#define WAIT_MS 30000

static const char * const plugins[] = {
  "dummy-inference", "llama-inference", "http-server", "udp-discovery", "node",
};

/* --- the daemon ------------------------------------------------------------ */

static struct {
  char            *tmpdir;
  GSubprocess     *bus;
  char            *bus_address;
  GSubprocess     *node;
  char            *log_path;
  guint16          port;
  SoupSession     *session;
  char            *text;       /* /metrics after the traffic */
} the_node;

static guint16
free_port (GSocketType type)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, type, 0, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (socket, any, TRUE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* The status of @method @path (with @json, nullable), its body in @body. */
static guint
http (const char  *method,
      const char  *path,
      const char  *json,
      char       **body)
{
  g_autofree char *uri = g_strdup_printf ("http://127.0.0.1:%u%s", the_node.port, path);
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr(GBytes) bytes = NULL;

  if (json != NULL)
    {
      g_autoptr(GBytes) request = g_bytes_new (json, strlen (json));

      soup_message_set_request_body_from_bytes (msg, "application/json", request);
    }
  bytes = soup_session_send_and_read (the_node.session, msg, NULL, NULL);
  if (body != NULL)
    *body = bytes != NULL ? g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes)) : NULL;
  return bytes != NULL ? soup_message_get_status (msg) : 0;
}

static void
die_with_test (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static void
dump_log_and_fail (const char *what)
{
  g_autofree char *log = NULL;

  g_file_get_contents (the_node.log_path, &log, NULL, NULL);
  g_error ("%s; exo-node's log:\n%s", what, log != NULL ? log : "(none)");
}

/* Every resource of the config is ready (as /metrics says). */
static gboolean
all_ready (void)
{
  static const char * const ids[] = { "engine", "llama", "server", "discovery", "node", "peer-self" };
  g_autofree char *text = NULL;

  if (http ("GET", "/metrics", NULL, &text) != 200)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      g_autofree char *needle = g_strdup_printf ("\nexo_resource_state{id=\"%s\",", ids[i]);
      const char *line = strstr (text, needle);

      if (line == NULL || strncmp (strchr (line + 1, '\n') - strlen ("state=\"ready\"} 1"),
                                   "state=\"ready\"} 1", strlen ("state=\"ready\"} 1")) != 0)
        return FALSE;
    }
  return TRUE;
}

static gboolean
daemon_start (void)
{
  const char *exo_node = g_getenv ("EXO_NODE");
  const char *plugin_dir = g_getenv ("EXO_TEST_PLUGIN_DIR");
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(ExoClusterKey) key = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *socket_path = NULL;
  g_autofree char *key_path = NULL;
  g_autofree char *config = NULL;
  g_autofree char *config_path = NULL;
  guint16 udp_port;
  gint64 deadline;

  if (exo_node == NULL || plugin_dir == NULL)
    return FALSE;
  the_node.tmpdir = g_dir_make_tmp ("exo-metrics-XXXXXX", NULL);
  g_assert_nonnull (the_node.tmpdir);
  socket_path = g_build_filename (the_node.tmpdir, "bus", NULL);
  the_node.bus = exo_test_bus_spawn (socket_path, &the_node.bus_address);
  key_path = g_build_filename (the_node.tmpdir, "cluster.key", NULL);
  key = exo_cluster_key_load_or_generate (key_path, NULL, &error);
  g_assert_no_error (error);

  the_node.port = free_port (G_SOCKET_TYPE_STREAM);
  udp_port = free_port (G_SOCKET_TYPE_DATAGRAM);
  config = g_strdup_printf (
    "{ \"node\": { \"id\": \"metrics-test\", \"cluster-key-file\": \"%s\" },\n"
    "  \"resources\": [\n"
    "    { \"id\": \"engine\", \"type\": \"dummy-inference\" },\n"
    "    { \"id\": \"llama\", \"type\": \"llama\",\n"
    "      \"settings\": { \"model\": \"exo-fortunes.bin\", \"tokenizer\": \"tokenizer-fortunes.bin\",\n"
    "                    \"threads\": 1 } },\n"
    "    { \"id\": \"server\", \"type\": \"http-server\",\n"
    "      \"settings\": { \"port\": %u, \"listen-address\": \"127.0.0.1\" } },\n"
    "    { \"id\": \"discovery\", \"type\": \"udp-discovery\", \"depends-on\": [\"server\"],\n"
    "      \"settings\": { \"node-id\": \"metrics-test\", \"port\": %u, \"listen-address\": \"127.0.0.1\",\n"
    "                    \"server-port\": %u, \"broadcast-interval-ms\": 200,\n"
    "                    \"broadcast-addresses\": [\"127.0.0.1:%u\"] } },\n"
    "    { \"id\": \"node\", \"type\": \"node\", \"depends-on\": [\"engine\", \"server\", \"discovery\"],\n"
    "      \"settings\": { \"node-id\": \"metrics-test\" } },\n"
    "    { \"id\": \"peer-self\", \"type\": \"http-peer\", \"depends-on\": [\"server\"],\n"
    "      \"settings\": { \"peer-id\": \"metrics-test\", \"address\": \"127.0.0.1:%u\" } }\n"
    "  ] }\n", key_path, the_node.port, udp_port, the_node.port, udp_port, the_node.port);
  config_path = g_build_filename (the_node.tmpdir, "node.json", NULL);
  g_assert_true (g_file_set_contents (config_path, config, -1, NULL));
  the_node.log_path = g_build_filename (the_node.tmpdir, "node.log", NULL);

  g_subprocess_launcher_set_child_setup (launcher, die_with_test, NULL, NULL);
  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", the_node.bus_address, TRUE);
  g_subprocess_launcher_setenv (launcher, "G_DEBUG", "fatal-criticals", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "EXO_PLUGIN_PATH");
  g_subprocess_launcher_set_stdout_file_path (launcher, the_node.log_path);
  g_subprocess_launcher_set_stderr_file_path (launcher, the_node.log_path);
  the_node.node = g_subprocess_launcher_spawn (launcher, &error, exo_node, "--plugin-dir", plugin_dir,
                                             "--config", config_path, "--session", NULL);
  g_assert_no_error (error);
  the_node.session = soup_session_new_with_options ("timeout", 20, NULL);

  deadline = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;
  while (!all_ready ())
    {
      if (g_get_monotonic_time () > deadline || g_subprocess_get_identifier (the_node.node) == NULL)
        dump_log_and_fail ("exo-node's resources did not all become ready");
      g_usleep (50 * 1000);
    }
  return TRUE;
}

static void
rm_rf (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        rm_rf (path);
      else
        g_unlink (path);
    }
  g_rmdir (dir);
}

static void
daemon_stop (void)
{
  if (the_node.node != NULL)
    {
      g_subprocess_send_signal (the_node.node, SIGTERM);
      g_subprocess_wait (the_node.node, NULL, NULL);
      g_clear_object (&the_node.node);
    }
  if (the_node.bus != NULL)
    {
      g_subprocess_force_exit (the_node.bus);
      g_subprocess_wait (the_node.bus, NULL, NULL);
      g_clear_object (&the_node.bus);
    }
  g_clear_object (&the_node.session);
  if (the_node.tmpdir != NULL)
    rm_rf (the_node.tmpdir);
  g_clear_pointer (&the_node.tmpdir, g_free);
  g_clear_pointer (&the_node.bus_address, g_free);
  g_clear_pointer (&the_node.log_path, g_free);
  g_clear_pointer (&the_node.text, g_free);
}

static void
send_traffic_and_scrape (void)
{
  static const char chat[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4";
  g_autofree char *whole = g_strconcat (chat, "}", NULL);
  g_autofree char *streamed = g_strconcat (chat, ",\"stream\":true}", NULL);
  g_autofree char *body = NULL;

  g_assert_cmpuint (http ("GET", "/healthcheck", NULL, NULL), ==, 200);
  /* the same kept-alive connection, idle for a second: not part of the
   * next request's duration */
  g_usleep (G_USEC_PER_SEC);
  g_assert_cmpuint (http ("GET", "/healthcheck", NULL, NULL), ==, 200);
  g_assert_cmpuint (http ("GET", "/nope", NULL, NULL), ==, 404);
  g_assert_cmpuint (http ("GET", "/v1/models", NULL, NULL), ==, 200);
  if (http ("POST", "/v1/chat/completions", whole, &body) != 200)
    dump_log_and_fail (body != NULL ? body : "the chat failed");
  g_clear_pointer (&body, g_free);
  g_assert_cmpuint (http ("POST", "/v1/chat/completions", streamed, &body), ==, 200);
  g_assert_nonnull (strstr (body, "data: [DONE]"));
  g_assert_cmpuint (http ("GET", "/metrics", NULL, &the_node.text), ==, 200);
}

static gboolean
have_daemon (void)
{
  if (the_node.text == NULL)
    {
      g_test_skip ("EXO_NODE or EXO_TEST_PLUGIN_DIR not set");
      return FALSE;
    }
  return TRUE;
}

/* --- /metrics/promtool ------------------------------------------------------- */

static void
test_promtool (void)
{
  g_autofree char *promtool = g_find_program_in_path ("promtool");
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  if (!have_daemon ())
    return;
  if (promtool == NULL)
    {
      g_test_skip ("promtool is not installed (Debian: package prometheus)");
      return;
    }
  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                           G_SUBPROCESS_FLAGS_STDERR_PIPE, &error, promtool, "check", "metrics", NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (proc, the_node.text, NULL, &out, &err, &error));
  g_assert_no_error (error);
  if (!g_subprocess_get_successful (proc) || (out != NULL && out[0] != '\0') ||
      (err != NULL && err[0] != '\0'))
    g_error ("promtool check metrics: %s%s\non:\n%s", out, err, the_node.text);
}

/* --- /metrics/types ----------------------------------------------------------- */

/* Whether @sample is of @family: its name, or for a histogram the name
 * and _bucket, _sum or _count, for a summary _sum or _count (we write no
 * quantiles). */
static gboolean
sample_in_family (const char *sample,
                  const char *family,
                  const char *type)
{
  gboolean histogram = g_str_equal (type, "histogram");
  const char *rest;

  if (!histogram && !g_str_equal (type, "summary"))
    return g_str_equal (sample, family);
  if (!g_str_has_prefix (sample, family))
    return FALSE;
  rest = sample + strlen (family);
  return g_str_equal (rest, "_sum") || g_str_equal (rest, "_count") ||
         (histogram && g_str_equal (rest, "_bucket"));
}

/* Whether @name has @word between underscores (or at an end). */
static gboolean
has_word (const char *name,
          const char *word)
{
  g_auto(GStrv) words = g_strsplit (name, "_", -1);

  return g_strv_contains ((const char * const *) words, word);
}

/* The value of the first sample that starts with @prefix (a whole line's
 * start); NAN when there is none. */
static double
sample_value (const char *text,
              const char *prefix)
{
  g_autofree char *needle = g_strconcat ("\n", prefix, NULL);
  const char *at = strstr (text, needle);
  const char *end;

  if (at == NULL)
    return NAN;
  end = strchr (at + 1, '\n');
  while (end > at && end[-1] != ' ')
    end--;
  return g_ascii_strtod (end, NULL);
}

static void
test_types (void)
{
  g_autoptr(GHashTable) types = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_auto(GStrv) lines = NULL;
  g_autofree char *family = NULL;
  const char *type = NULL;
  guint n_histograms = 0, n_inf = 0, n_sum = 0, n_count = 0;
  double now = g_get_real_time () / 1e6;

  if (!have_daemon ())
    return;
  g_assert_null (strstr (the_node.text, "exo_resource_metric"));
  lines = g_strsplit (the_node.text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];
      g_autofree char *sample = NULL;

      if (line[0] == '\0' || g_str_has_prefix (line, "# HELP "))
        continue;
      if (g_str_has_prefix (line, "# TYPE "))
        {
          g_auto(GStrv) parts = g_strsplit (line + strlen ("# TYPE "), " ", 2);

          g_assert_cmpuint (g_strv_length (parts), ==, 2);
          g_assert_false (g_hash_table_contains (types, parts[0]));   /* one TYPE per family */
          g_free (family);
          family = g_strdup (parts[0]);
          g_hash_table_insert (types, g_strdup (parts[0]), g_strdup (parts[1]));
          type = g_hash_table_lookup (types, family);
          /* counters are *_total, and *_total are counters */
          g_assert_cmpint (g_str_equal (type, "counter"), ==, g_str_has_suffix (family, "_total"));
          /* no units but the base ones */
          g_assert_false (has_word (family, "ms"));
          g_assert_false (has_word (family, "us"));
          g_assert_false (has_word (family, "mib"));
          g_assert_false (has_word (family, "milliseconds"));
          if (g_str_equal (type, "histogram"))
            n_histograms++;
          if (g_str_has_suffix (family, "_info"))
            g_assert_cmpstr (type, ==, "gauge");
          continue;
        }
      g_assert_nonnull (family);   /* a sample after its family's TYPE */
      sample = g_strndup (line, strcspn (line, "{ "));
      if (!sample_in_family (sample, family, type))
        g_error ("sample '%s' is not of the family before it (%s, %s)", line, family, type);
      if (g_str_has_suffix (family, "_info"))
        g_assert_true (g_str_has_suffix (line, "} 1"));
      if (g_str_equal (type, "histogram"))
        {
          if (g_str_has_suffix (sample, "_bucket") && strstr (line, "le=\"+Inf\"} ") != NULL)
            n_inf++;
          n_sum += g_str_has_suffix (sample, "_sum");
          n_count += g_str_has_suffix (sample, "_count");
        }
    }
  /* every histogram series has its +Inf bucket, _sum and _count */
  g_assert_cmpuint (n_histograms, >=, 2);
  g_assert_cmpuint (n_inf, >, 0);
  g_assert_cmpuint (n_inf, ==, n_sum);
  g_assert_cmpuint (n_inf, ==, n_count);

  g_assert_cmpstr (g_hash_table_lookup (types, "exo_http_request_duration_seconds"), ==, "histogram");
  g_assert_cmpstr (g_hash_table_lookup (types, "exo_chat_time_to_first_token_seconds"), ==, "histogram");
  g_assert_cmpstr (g_hash_table_lookup (types, "exo_http_requests_total"), ==, "counter");
  g_assert_cmpstr (g_hash_table_lookup (types, "exo_resource_restarts_total"), ==, "counter");
  g_assert_cmpstr (g_hash_table_lookup (types, "exo_node_tokens_generated_total"), ==, "counter");
  g_assert_cmpstr (g_hash_table_lookup (types, "exo_engine_forward_seconds_total"), ==, "counter");
  g_assert_cmpstr (g_hash_table_lookup (types, "exo_http_connections_open"), ==, "gauge");
  g_assert_cmpstr (g_hash_table_lookup (types, "exo_resource_restart_limit_hit"), ==, "gauge");

  /* both chats' first tokens; each request's duration by route */
  g_assert_cmpfloat (sample_value (the_node.text, "exo_chat_time_to_first_token_seconds_count{id=\"server\"}"),
                     ==, 2);
  g_assert_cmpfloat (sample_value (the_node.text,
                                   "exo_chat_time_to_first_token_seconds_bucket{id=\"server\",le=\"+Inf\"}"),
                     ==, 2);
  g_assert_cmpfloat (sample_value (the_node.text, "exo_chat_time_to_first_token_seconds_sum{id=\"server\"}"),
                     >, 0);
  g_assert_cmpfloat (sample_value (the_node.text, "exo_http_request_duration_seconds_count{id=\"server\","
                                                "route=\"/v1/chat/completions\"}"), ==, 2);
  g_assert_cmpfloat (sample_value (the_node.text, "exo_http_request_duration_seconds_count{id=\"server\","
                                                "route=\"other\"}"), ==, 1);
  g_assert_cmpfloat (sample_value (the_node.text, "exo_http_requests_total{id=\"server\","
                                                "route=\"/healthcheck\",code=\"200\"}"), >=, 2);
  g_assert_cmpfloat (sample_value (the_node.text, "exo_http_request_duration_seconds_bucket{id=\"server\","
                                                "route=\"/healthcheck\",le=\"0.5\"}"), ==,
                     sample_value (the_node.text, "exo_http_request_duration_seconds_count{id=\"server\","
                                                  "route=\"/healthcheck\"}"));

  /* process_* as the client libraries have them */
  g_assert_cmpstr (g_hash_table_lookup (types, "process_cpu_seconds_total"), ==, "counter");
  g_assert_cmpfloat (sample_value (the_node.text, "process_cpu_seconds_total "), >, 0);
  g_assert_cmpfloat (sample_value (the_node.text, "process_resident_memory_bytes "), >, 1 << 20);
  g_assert_cmpfloat (sample_value (the_node.text, "process_virtual_memory_bytes "), >,
                     sample_value (the_node.text, "process_resident_memory_bytes "));
  g_assert_cmpfloat (sample_value (the_node.text, "process_open_fds "), >, 3);
  g_assert_cmpfloat (sample_value (the_node.text, "process_max_fds "), >=,
                     sample_value (the_node.text, "process_open_fds "));
  g_assert_cmpfloat (sample_value (the_node.text, "process_start_time_seconds "), >, now - 600);
  g_assert_cmpfloat (sample_value (the_node.text, "process_start_time_seconds "), <=, now + 1);
  {
    static const char * const gauges[] = {
      "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
      "process_max_fds", "process_start_time_seconds",
    };

    for (guint i = 0; i < G_N_ELEMENTS (gauges); i++)
      g_assert_cmpstr (g_hash_table_lookup (types, gauges[i]), ==, "gauge");
  }

  /* the build */
  {
    g_autofree char *build = g_strdup_printf ("\nexo_build_info{version=\"%s\",abi=\"%d.%d\"} 1\n",
                                              EXO_VERSION_STRING, EXO_PLUGIN_ABI_MAJOR,
                                              EXO_PLUGIN_ABI_MINOR);

    g_assert_cmpstr (g_hash_table_lookup (types, "exo_build_info"), ==, "gauge");
    g_assert_nonnull (strstr (the_node.text, build));
  }
}

/* --- /metrics/declared ---------------------------------------------------------- */

static GVariant *
dbus_metrics (GDBusConnection *bus,
              const char      *id)
{
  g_autofree char *escaped = g_dbus_escape_object_path (id);
  g_autofree char *path = g_strdup_printf ("/org/exo/Node1/resource/%s", escaped);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  GVariant *value = NULL;

  reply = g_dbus_connection_call_sync (bus, "org.exo.Node1", path, "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", "org.exo.Resource1", "Metrics"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NO_AUTO_START, 5000,
                                       NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

/* Whether @key of resource @id (@value) is in /metrics as @entry says. */
static gboolean
exported (const char           *id,
          const ExoMetricEntry *entry,
          const char           *key,
          GVariant             *value)
{
  const char *brace = strchr (entry->name, '{');
  g_autofree char *name = g_strndup (entry->name, brace != NULL ? (gsize) (brace - entry->name)
                                                                : strlen (entry->name));
  g_autofree char *needle = NULL;

  if (entry->kind == EXO_METRIC_INFO)
    {
      g_autofree char *label = g_strdelimit (g_strdup (key), "-", '_');
      g_autofree char *line = NULL;
      const char *at;

      needle = g_strdup_printf ("\n%s{id=\"%s\",", name, id);
      at = strstr (the_node.text, needle);
      if (at == NULL)
        return FALSE;
      line = g_strndup (at + 1, strcspn (at + 1, "\n"));
      g_free (needle);
      needle = g_strdup_printf (",%s=\"", label);
      return strstr (line, needle) != NULL;
    }
  if (brace != NULL)
    needle = g_strdup_printf ("\n%s{id=\"%s\",%.*s} ", name, id, (int) (strlen (brace) - 2), brace + 1);
  else
    needle = g_strdup_printf ("\n%s{id=\"%s\"} ", name, id);
  /* a negative duration or time (-1: none) is left out */
  if (entry->scale != 0 && entry->scale != 1 &&
      ((g_variant_is_of_type (value, G_VARIANT_TYPE_INT64) && g_variant_get_int64 (value) < 0) ||
       (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32) && g_variant_get_int32 (value) < 0)))
    return strstr (the_node.text, needle) == NULL;
  return strstr (the_node.text, needle) != NULL;
}

static void
test_declared (void)
{
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GError) error = NULL;
  const char *plugin_dir = g_getenv ("EXO_TEST_PLUGIN_DIR");
  const char *at = the_node.text;
  guint n_resources = 0, n_keys = 0, n_exported = 0;

  if (!have_daemon ())
    return;
  for (guint i = 0; i < G_N_ELEMENTS (plugins); i++)
    {
      g_autofree char *file = g_strdup_printf ("libexo-plugin-%s.so", plugins[i]);
      g_autofree char *path = g_build_filename (plugin_dir, plugins[i], file, NULL);

      exo_plugin_loader_load_file (loader, path, &error);
      g_assert_no_error (error);
    }
  bus = g_dbus_connection_new_for_address_sync (the_node.bus_address,
                                                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                NULL, NULL, &error);
  g_assert_no_error (error);

  /* every resource, as exo_resource_state lists them */
  while ((at = strstr (at, "\nexo_resource_state{id=\"")) != NULL)
    {
      g_autofree char *id = NULL;
      g_autofree char *type_name = NULL;
      g_autoptr(GVariant) metrics = NULL;
      g_autoptr(GTypeClass) klass = NULL;
      const char *type_at;
      GType type;
      GVariantIter iter;
      const char *key;
      GVariant *value;

      at += strlen ("\nexo_resource_state{id=\"");
      id = g_strndup (at, strcspn (at, "\""));
      type_at = strstr (at, "type=\"") + strlen ("type=\"");
      type_name = g_strndup (type_at, strcspn (type_at, "\""));
      type = g_str_equal (type_name, "group") ? EXO_TYPE_RESOURCE_GROUP
                                              : exo_plugin_loader_lookup_type (loader, type_name);
      g_assert_true (g_type_is_a (type, EXO_TYPE_RESOURCE));
      klass = g_type_class_ref (type);
      metrics = dbus_metrics (bus, id);
      n_resources++;

      g_variant_iter_init (&iter, metrics);
      while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
        {
          const ExoMetricEntry *entry = exo_resource_class_find_metric_entry (EXO_RESOURCE_CLASS (klass), key);

          n_keys++;
          if (entry == NULL)
            g_error ("metric '%s' of resource '%s' (%s) has no ExoMetricEntry: it is not in /metrics",
                     key, id, type_name);
          if (entry->kind == EXO_METRIC_HIDDEN)
            continue;
          if (!exported (id, entry, key, value))
            g_error ("metric '%s' of resource '%s' is not in /metrics as %s", key, id, entry->name);
          n_exported++;
        }
    }
  g_test_message ("%u resources, %u metric keys, %u exported", n_resources, n_keys, n_exported);
  g_assert_cmpuint (n_resources, >=, 7);   /* the six of the config, the root group */
  g_assert_cmpuint (n_exported, >, 100);
}

/* --- /metrics/entries ------------------------------------------------------------ */

typedef struct { ExoResource parent_instance; } TestBase;
typedef struct { ExoResourceClass parent_class; } TestBaseClass;
typedef struct { TestBase parent_instance; } TestDerived;
typedef struct { TestBaseClass parent_class; } TestDerivedClass;

static GType test_base_get_type (void);
static GType test_derived_get_type (void);
G_DEFINE_TYPE (TestBase, test_base, EXO_TYPE_RESOURCE)
G_DEFINE_TYPE (TestDerived, test_derived, test_base_get_type ())

static const ExoMetricEntry base_entries[] = {
  { .key = "calls", .kind = EXO_METRIC_COUNTER, .name = "exo_test_calls_total", .help = "Calls." },
  { .key = "busy", .kind = EXO_METRIC_GAUGE, .name = "exo_test_busy", .help = "1 while busy." },
  { .key = "address", .kind = EXO_METRIC_INFO, .name = "exo_test_info", .help = "Where (value 1)." },
};
static const ExoMetricEntry derived_entries[] = {
  /* a subclass says better what "busy" is */
  { .key = "busy", .kind = EXO_METRIC_HIDDEN },
  { .key = "wait-us", .kind = EXO_METRIC_SUMMARY, .name = "exo_test_wait_seconds_sum", .scale = 1e-6,
    .help = "Waits." },
};

static void
test_base_class_init (TestBaseClass *klass)
{
  exo_resource_class_add_metric_entries (EXO_RESOURCE_CLASS (klass), base_entries,
                                         G_N_ELEMENTS (base_entries));
}

static void
test_base_init (TestBase *self)
{
}

static void
test_derived_class_init (TestDerivedClass *klass)
{
  exo_resource_class_add_metric_entries (EXO_RESOURCE_CLASS (klass), derived_entries,
                                         G_N_ELEMENTS (derived_entries));
}

static void
test_derived_init (TestDerived *self)
{
}

/* A class whose table is gone (and overwritten) after its class_init. */
typedef ExoResource      TestTemp;
typedef ExoResourceClass TestTempClass;
static GType test_temp_get_type (void);
G_DEFINE_TYPE (TestTemp, test_temp, EXO_TYPE_RESOURCE)

static void
test_temp_class_init (TestTempClass *klass)
{
  ExoMetricEntry *table = g_new0 (ExoMetricEntry, 1);
  char *key = g_strdup ("temp"), *name = g_strdup ("exo_test_temp_total");
  char *help = g_strdup ("From a table gone since.");

  table[0].key = key;
  table[0].kind = EXO_METRIC_COUNTER;
  table[0].name = name;
  table[0].help = help;
  exo_resource_class_add_metric_entries (klass, table, 1);
  memset (key, 'x', strlen (key));
  memset (name, 'x', strlen (name));
  g_free (key);
  g_free (name);
  g_free (help);
  g_free (table);
}

static void
test_temp_init (TestTemp *self)
{
}

/* @found declares what @expected does (the table is copied: not the same
 * pointer) */
static gboolean
entry_is (const ExoMetricEntry *found,
          const ExoMetricEntry *expected)
{
  return found != NULL && found != expected && g_strcmp0 (found->key, expected->key) == 0 &&
         found->kind == expected->kind && g_strcmp0 (found->name, expected->name) == 0 &&
         found->scale == expected->scale && g_strcmp0 (found->help, expected->help) == 0;
}

static void
test_entries_lookup (void)
{
  g_autoptr(GTypeClass) base = g_type_class_ref (test_base_get_type ());
  g_autoptr(GTypeClass) derived = g_type_class_ref (test_derived_get_type ());
  g_autoptr(GTypeClass) managed = g_type_class_ref (EXO_TYPE_MANAGED_RESOURCE);

  g_assert_true (entry_is (exo_resource_class_find_metric_entry (EXO_RESOURCE_CLASS (base), "calls"), &base_entries[0]));
  g_assert_true (entry_is (exo_resource_class_find_metric_entry (EXO_RESOURCE_CLASS (base), "busy"), &base_entries[1]));
  g_assert_null (exo_resource_class_find_metric_entry (EXO_RESOURCE_CLASS (base), "wait-us"));
  g_assert_null (exo_resource_class_find_metric_entry (EXO_RESOURCE_CLASS (base), "nothing"));
  /* the parent's, unless the class declares the key itself */
  g_assert_true (entry_is (exo_resource_class_find_metric_entry (EXO_RESOURCE_CLASS (derived), "calls"), &base_entries[0]));
  g_assert_true (entry_is (exo_resource_class_find_metric_entry (EXO_RESOURCE_CLASS (derived), "busy"), &derived_entries[0]));
  g_assert_true (entry_is (exo_resource_class_find_metric_entry (EXO_RESOURCE_CLASS (derived), "wait-us"), &derived_entries[1]));
  /* a temporary table (a binding's) is as good as a static one */
  {
    g_autoptr(GTypeClass) temp = g_type_class_ref (test_temp_get_type ());
    const ExoMetricEntry *e = exo_resource_class_find_metric_entry (EXO_RESOURCE_CLASS (temp), "temp");

    g_assert_nonnull (e);
    g_assert_cmpstr (e->name, ==, "exo_test_temp_total");
    g_assert_cmpstr (e->help, ==, "From a table gone since.");
    g_assert_cmpint (e->kind, ==, EXO_METRIC_COUNTER);
  }
  /* libexo's own classes declare theirs */
  g_assert_cmpint (exo_resource_class_find_metric_entry (EXO_RESOURCE_CLASS (managed), "restarts")->kind, ==,
                   EXO_METRIC_COUNTER);
}

/* A class whose metrics hold what D-Bus cannot carry or is too big. */
typedef ExoResource      TestWild;
typedef ExoResourceClass TestWildClass;
static GType test_wild_get_type (void);
G_DEFINE_TYPE (TestWild, test_wild, EXO_TYPE_RESOURCE)

static void
test_wild_collect_metrics (ExoResource  *resource,
                           GVariantDict *metrics)
{
  GVariant *deep = g_variant_new_uint32 (1);
  g_autoptr(GPtrArray) many = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *long_string = g_strnfill (EXO_RESOURCE_MAX_METRIC_STRING + 1, 'x');

  for (guint i = 0; i < 100; i++)
    deep = g_variant_new_variant (deep);
  for (guint i = 0; i <= EXO_RESOURCE_MAX_METRIC_ARRAY; i++)
    g_ptr_array_add (many, g_strdup_printf ("%u", i));
  g_ptr_array_add (many, NULL);
  g_variant_dict_insert (metrics, "fine", "u", 7);
  g_variant_dict_insert (metrics, "targets", "^as", (char *[]) { "a", "b", NULL });
  g_variant_dict_insert_value (metrics, "deep", deep);
  g_variant_dict_insert (metrics, "long", "s", long_string);
  g_variant_dict_insert (metrics, "many", "^as", (char **) many->pdata);
  g_variant_dict_insert (metrics, "dict", "@a{sv}", g_variant_new ("a{sv}", NULL));
}

static void
test_wild_class_init (TestWildClass *klass)
{
  klass->collect_metrics = test_wild_collect_metrics;
}

static void
test_wild_init (TestWild *self)
{
}

/* What a plugin (a Python one: any value) puts in its metrics never
 * reaches D-Bus unchecked: a variant nested deeper than D-Bus allows made
 * GDBus drop the daemon's bus connection. */
static void
test_metrics_checked (void)
{
  g_autoptr(ExoResource) wild = g_object_new (test_wild_get_type (), "id", "wild", NULL);
  g_autoptr(GVariant) metrics = NULL;
  g_autoptr(GVariant) again = NULL;
  g_autoptr(GVariant) targets = NULL;
  guint32 fine = 0;

  if (!g_test_subprocess ())
    {
      /* the warnings come in the dictionary's order: read them whole */
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
      g_test_trap_assert_passed ();
      g_test_trap_assert_stderr ("*wild: metric 'deep' (type 'v') left out: not a plain value*");
      g_test_trap_assert_stderr ("*wild: metric 'dict' (type 'a{sv}') left out*");
      g_test_trap_assert_stderr ("*wild: metric 'long' (type 's') left out: a string longer*");
      g_test_trap_assert_stderr ("*wild: metric 'many' (type 'as') left out: an array longer*");
      g_test_trap_assert_stderr_unmatched ("*'fine'*");
      g_test_trap_assert_stderr_unmatched ("*'deep'*'deep'*");
      return;
    }
  g_log_set_always_fatal (G_LOG_FATAL_MASK);
  metrics = exo_resource_get_metrics (wild);
  g_assert_true (g_variant_lookup (metrics, "fine", "u", &fine));
  g_assert_cmpuint (fine, ==, 7);
  targets = g_variant_lookup_value (metrics, "targets", G_VARIANT_TYPE_STRING_ARRAY);
  g_assert_nonnull (targets);
  g_assert_false (g_variant_lookup (metrics, "deep", "v", NULL));
  g_assert_null (g_variant_lookup_value (metrics, "long", NULL));
  g_assert_null (g_variant_lookup_value (metrics, "many", NULL));
  g_assert_null (g_variant_lookup_value (metrics, "dict", NULL));
  g_assert_true (g_variant_is_normal_form (metrics));
  /* said once: a scrape a second must not flood the log */
  again = exo_resource_get_metrics (wild);
  g_assert_cmpuint (g_variant_n_children (again), ==, g_variant_n_children (metrics));
}

static void
test_entries_refused (void)
{
  static const ExoMetricEntry bad[] = {
    { .key = "a", .kind = EXO_METRIC_COUNTER, .name = "exo_test_a", .help = "no _total" },
    { .key = "b", .kind = EXO_METRIC_GAUGE, .name = "test_b", .help = "not exo_" },
    { .key = "c", .kind = EXO_METRIC_GAUGE, .name = "exo_testC", .help = "upper case" },
    { .key = "d", .kind = EXO_METRIC_GAUGE, .name = "exo_test_d_total", .help = "a gauge's _total" },
    { .key = "e", .kind = EXO_METRIC_SUMMARY, .name = "exo_test_e", .help = "no _sum or _count" },
    { .key = "f", .kind = EXO_METRIC_INFO, .name = "exo_test_f", .help = "no _info" },
    { .key = "id", .kind = EXO_METRIC_INFO, .name = "exo_test_info", .help = "the id label" },
    { .key = "g", .kind = EXO_METRIC_GAUGE, .name = "exo_test_g", .help = NULL },
    { .key = "h", .kind = EXO_METRIC_COUNTER, .name = "exo_test_h_total{id=\"x\"}", .help = "id taken" },
    { .key = "i", .kind = EXO_METRIC_COUNTER, .name = "exo_test_i_total{why=\"a\"b\"}", .help = "quote" },
    { .key = "j", .kind = EXO_METRIC_GAUGE, .name = "exo_test_j_seconds", .scale = -1, .help = "scale" },
    /* the family of the parent's "calls": the series would be doubled */
    { .key = "l", .kind = EXO_METRIC_COUNTER, .name = "exo_test_calls_total", .help = "a clash" },
    { .key = "m", .kind = EXO_METRIC_COUNTER, .name = "exo_test_calls_total{why=\"x\"}", .help = "a clash" },
    /* one line of text, bounded */
    { .key = "n", .kind = EXO_METRIC_GAUGE, .name = "exo_test_n", .help = "carriage\rreturn" },
  };
  static const ExoMetricEntry good[] = {
    { .key = "k", .kind = EXO_METRIC_COUNTER, .name = "exo_test_k_total{why=\"x-y\",how=\"z\"}",
      .help = "constant labels" },
  };
  g_autoptr(GTypeClass) klass = g_type_class_ref (test_derived_get_type ());

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_test_expect_message ("Exo", G_LOG_LEVEL_CRITICAL, "*not added*");
      exo_resource_class_add_metric_entries (EXO_RESOURCE_CLASS (klass), &bad[i], 1);
      g_test_assert_expected_messages ();
      g_assert_null (exo_resource_class_find_metric_entry (EXO_RESOURCE_CLASS (klass), bad[i].key));
    }
  {
    g_autofree char *long_name = g_strdup_printf ("exo_test_%0300d", 0);
    g_autofree char *long_help = g_strnfill (1025, 'h');
    ExoMetricEntry too_long[] = {
      { .key = "o", .kind = EXO_METRIC_GAUGE, .name = long_name, .help = "long name" },
      { .key = "p", .kind = EXO_METRIC_GAUGE, .name = "exo_test_p", .help = long_help },
    };

    for (guint i = 0; i < G_N_ELEMENTS (too_long); i++)
      {
        g_test_expect_message ("Exo", G_LOG_LEVEL_CRITICAL, "*longer than*not added*");
        exo_resource_class_add_metric_entries (EXO_RESOURCE_CLASS (klass), &too_long[i], 1);
        g_test_assert_expected_messages ();
      }
  }
  /* the same family again for the same key (a subclass saying better) is fine */
  g_assert_true (exo_resource_type_declare_metric (test_derived_get_type (), "calls", EXO_METRIC_COUNTER,
                                                   "exo_test_calls_total", 0, "Calls, said again."));
  exo_resource_class_add_metric_entries (EXO_RESOURCE_CLASS (klass), good, G_N_ELEMENTS (good));
  g_assert_true (entry_is (exo_resource_class_find_metric_entry (EXO_RESOURCE_CLASS (klass), "k"), &good[0]));
}

int
main (int   argc,
      char *argv[])
{
  int status;

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/metrics/entries/lookup", test_entries_lookup);
  g_test_add_func ("/metrics/entries/refused", test_entries_refused);
  g_test_add_func ("/metrics/checked", test_metrics_checked);
  g_test_add_func ("/metrics/promtool", test_promtool);
  g_test_add_func ("/metrics/types", test_types);
  g_test_add_func ("/metrics/declared", test_declared);

  /* one daemon for the cases that look at it */
  if (daemon_start ())
    send_traffic_and_scrape ();
  status = g_test_run ();
  daemon_stop ();
  return status;
}
