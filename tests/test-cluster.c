/* test-cluster.c: three exo-node processes as one cluster (issue 5).
 *
 * /cluster/loopback: three nodes on 127.0.0.1 with distinct ports and
 *   static peers, each with its own bus name on one private dbus-daemon.
 * /cluster/netns: the same in network namespaces exo-t1..3-PID (veth pairs
 *   on a bridge in a fourth namespace, exo-tbr-PID; 10.99.0.x/24 inside the
 *   namespaces only), found by UDP broadcast.  Needs root and `ip netns`;
 *   skipped otherwise.  The PID suffix lets several runs (build folders)
 *   share a host; namespaces of runs that died are removed at the start.
 *
 * Each scenario: the nodes find each other (within 5 s) and agree on the
 * ring (they share a cluster key, a file in the test's folder); a chat
 * completion sent to node 1 is computed by all three shards;
 * a streamed chat whose client hangs up after 3 events stops on every
 * shard within one token (their layers-computed and tokens-generated
 * counters stop);
 * a request in flight when node 3 is killed (SIGKILL) fails fast with a
 * clear error; nodes 1 and 2 mark node 3 failed (measured; ≤ 10 s required,
 * ≤ 5 s the target) and re-partition; node 3, restarted, rejoins.
 *
 * /cluster/loopback/security: node-3 has another cluster key and never
 *   joins nodes 1 and 2; unsigned peer RPC, forged, replayed and
 *   spoofed-source datagrams sent to node 1 are dropped and counted (seen
 *   on D-Bus), and the spoofed source is never probed; node-3 joins once it
 *   has the cluster's key file.
 *
 * /cluster/node/...: the node resource in this process (plugins loaded from
 *   the build tree, without http-server): a one-node ring, chat with tokens,
 *   cancellation, the request timeout, bad input, a discovery with another
 *   node id, and peers found while the peer handle type is missing.
 *
 * Every process gets PR_SET_PDEATHSIG, is killed at the end, and namespaces
 * are removed at the end and from a crash handler.
 *
 * Environment (set by meson): EXO_NODE, EXOCTL, EXO_TEST_PLUGIN_DIR,
 * G_TEST_SRCDIR.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <exo/exo.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_NODES 3
#define RING_3 "node-1:0-7,node-3:8-11,node-2:12-15"
#define RING_2 "node-1:0-9,node-2:10-15"

#define CHECK(cond, ...)                                                        \
  G_STMT_START {                                                                \
    if (!(cond))                                                                \
      {                                                                         \
        g_test_fail_printf (__VA_ARGS__);                                       \
        goto out;                                                               \
      }                                                                         \
  } G_STMT_END

/* --- crash safety: what a signal handler can undo ------------------------ */

#define MAX_PIDS 32
static volatile pid_t live_pids[MAX_PIDS];
static volatile sig_atomic_t netns_made;
static char ip_path[256];
#define N_NETNS 4
static char netns_names[N_NETNS][32];   /* exo-t1-PID … exo-t3-PID, exo-tbr-PID */

static void
run_ip_netns_del_signal_safe (const char *name)
{
  pid_t pid = fork ();

  if (pid == 0)
    {
      char *argv[] = { ip_path, (char *) "netns", (char *) "del", (char *) name, NULL };
      execv (ip_path, argv);
      _exit (127);
    }
  if (pid > 0)
    waitpid (pid, NULL, 0);
}

static void
emergency_cleanup (int sig)
{
  for (guint i = 0; i < MAX_PIDS; i++)
    if (live_pids[i] > 0)
      kill (live_pids[i], SIGKILL);
  if (netns_made && ip_path[0] != '\0')
    for (guint i = 0; i < N_NETNS; i++)
      run_ip_netns_del_signal_safe (netns_names[i]);
  signal (sig, SIG_DFL);
  raise (sig);
}

static void
install_crash_handlers (void)
{
  const int sigs[] = { SIGABRT, SIGSEGV, SIGBUS, SIGTERM, SIGINT, SIGILL, SIGFPE };

  for (guint i = 0; i < G_N_ELEMENTS (sigs); i++)
    {
      struct sigaction sa = { 0 };

      sa.sa_handler = emergency_cleanup;
      sa.sa_flags = SA_RESETHAND;
      sigaction (sigs[i], &sa, NULL);
    }
}

static void
track_pid (pid_t pid)
{
  for (guint i = 0; i < MAX_PIDS; i++)
    if (live_pids[i] == 0)
      {
        live_pids[i] = pid;
        return;
      }
}

static void
untrack_pid (pid_t pid)
{
  for (guint i = 0; i < MAX_PIDS; i++)
    if (live_pids[i] == pid)
      live_pids[i] = 0;
}

/* --- processes ----------------------------------------------------------- */

static void
child_setup (gpointer user_data)
{
  /* Die with the test, whatever happens to it. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static pid_t
subprocess_pid (GSubprocess *proc)
{
  const char *id = g_subprocess_get_identifier (proc);

  return id != NULL ? (pid_t) g_ascii_strtoll (id, NULL, 10) : 0;
}

static GSubprocess *
spawn (const char * const  *argv,
       const char          *bus_address,
       const char          *log_path,
       GSubprocessFlags     flags,
       GError             **error)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (flags);
  GSubprocess *proc;

  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  if (bus_address != NULL)
    g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", bus_address, TRUE);
  g_subprocess_launcher_setenv (launcher, "NO_COLOR", "1", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "EXO_NODE_ID");
  /* nothing lands in the state directory of whoever runs the tests */
  g_subprocess_launcher_setenv (launcher, "STATE_DIRECTORY", g_get_tmp_dir (), TRUE);
  if (log_path != NULL)
    g_subprocess_launcher_set_stdout_file_path (launcher, log_path);
  proc = g_subprocess_launcher_spawnv (launcher, argv, error);
  if (proc != NULL)
    track_pid (subprocess_pid (proc));
  return proc;
}

static void
store_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

/* Waits for @proc to exit, at most @timeout_ms; TRUE if it did. */
static gboolean
wait_exit (GSubprocess *proc,
           guint        timeout_ms)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  gboolean done = FALSE;
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  g_subprocess_wait_async (proc, cancellable, store_done, &done);
  while (!done && g_get_monotonic_time () < deadline)
    {
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (2000);
    }
  if (!done)
    {
      /* The callback must not outlive @done. */
      g_cancellable_cancel (cancellable);
      while (!done)
        g_main_context_iteration (NULL, TRUE);
      return g_subprocess_get_identifier (proc) == NULL;
    }
  untrack_pid (subprocess_pid (proc));
  return TRUE;
}

/* Ends @proc: @sig first, SIGKILL after @grace_ms.  TRUE if @sig sufficed. */
static gboolean
end_process (GSubprocess **proc,
             int           sig,
             guint         grace_ms)
{
  gboolean clean = TRUE;
  pid_t pid;

  if (*proc == NULL)
    return TRUE;
  pid = subprocess_pid (*proc);
  if (pid > 0)
    {
      g_subprocess_send_signal (*proc, sig);
      if (!wait_exit (*proc, grace_ms))
        {
          clean = FALSE;
          g_subprocess_force_exit (*proc);
          wait_exit (*proc, 5000);
        }
    }
  untrack_pid (pid);
  g_clear_object (proc);
  return clean;
}

/* Runs @argv to the end; returns its stdout, or NULL. */
static char *
run_capture (const char * const *argv,
             const char         *bus_address,
             int                *exit_status)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = spawn (argv, bus_address, NULL,
                                       G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                                       &error);
  char *out = NULL;

  if (proc == NULL)
    return NULL;
  if (!g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, NULL, &error))
    g_clear_pointer (&out, g_free);
  untrack_pid (subprocess_pid (proc));
  if (exit_status != NULL)
    *exit_status = g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
  return out;
}

static gboolean
run_quiet (const char *cmdline)
{
  g_auto(GStrv) argv = NULL;
  int status = -1;
  g_autofree char *out = NULL;

  if (!g_shell_parse_argv (cmdline, NULL, &argv, NULL))
    return FALSE;
  out = run_capture ((const char * const *) argv, NULL, &status);
  return status == 0;
}

/* --- the cluster --------------------------------------------------------- */

typedef struct {
  char        *id;           /* node-1 … */
  char        *netns;        /* NULL on loopback */
  char        *host;         /* where its server is reached */
  guint16      http_port;
  guint16      udp_port;
  guint64      memory_mib;
  char        *config_path;
  char        *bus_name;
  char        *key_path;     /* its node.cluster-key-file */
  guint16      capture_port; /* also broadcast there (0: no) */
  GSubprocess *proc;
  guint        starts;
} Node;

typedef struct {
  gboolean         netns;
  char            *tmpdir;
  char            *key_path;     /* the cluster's key */
  GSubprocess     *dbus;
  char            *bus_address;
  GDBusConnection *bus;
  Node             nodes[N_NODES];
  const char      *exo_node;
  const char      *exoctl;
  const char      *plugin_dir;
  const char      *template_name; /* in configs-cluster/; NULL: node.json.in */
} Cluster;

static guint16
free_port (GSocketType type)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, type, 0, NULL);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  if (socket == NULL || !g_socket_bind (socket, any, FALSE, NULL))
    return 0;
  bound = g_socket_get_local_address (socket, NULL);
  return bound != NULL ? g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)) : 0;
}

static char *
fill_template (const char *template,
               const char *const *pairs)
{
  GString *s = g_string_new (template);

  for (guint i = 0; pairs[i] != NULL; i += 2)
    g_string_replace (s, pairs[i], pairs[i + 1], 0);
  return g_string_free (s, FALSE);
}

static gboolean
write_configs (Cluster *c,
               guint    latency_ms,
               guint    num_tokens,
               GError **error)
{
  g_autofree char *template_path = g_test_build_filename (G_TEST_DIST, "configs-cluster",
                                                          c->template_name != NULL
                                                          ? c->template_name : "node.json.in",
                                                          NULL);
  g_autofree char *model = g_test_build_filename (G_TEST_DIST, "..", "data", "models",
                                                  "exo-fortunes.bin", NULL);
  g_autofree char *tokenizer = g_test_build_filename (G_TEST_DIST, "..", "data", "models",
                                                      "tokenizer-fortunes.bin", NULL);
  g_autofree char *template = NULL;

  if (!g_file_get_contents (template_path, &template, NULL, error))
    return FALSE;

  for (guint i = 0; i < N_NODES; i++)
    {
      Node *n = &c->nodes[i];
      g_autoptr(GString) statics = g_string_new (NULL);
      g_autoptr(GString) broadcast = g_string_new (NULL);
      g_autofree char *http_port = g_strdup_printf ("%u", n->http_port);
      g_autofree char *udp_port = g_strdup_printf ("%u", n->udp_port);
      g_autofree char *memory = g_strdup_printf ("%" G_GUINT64_FORMAT, n->memory_mib);
      g_autofree char *latency = g_strdup_printf ("%u", latency_ms);
      g_autofree char *tokens = g_strdup_printf ("%u", num_tokens);
      g_autofree char *json = NULL;

      if (!c->netns)
        {
          for (guint j = 0; j < N_NODES; j++)
            {
              if (j == i)
                continue;
              g_string_append_printf (statics, "%s\"127.0.0.1:%u\"", statics->len ? ", " : "",
                                      c->nodes[j].http_port);
              g_string_append_printf (broadcast, "%s\"127.0.0.1:%u\"",
                                      broadcast->len ? ", " : "", c->nodes[j].udp_port);
            }
          if (n->capture_port != 0)
            g_string_append_printf (broadcast, ", \"127.0.0.1:%u\"", n->capture_port);
          g_string_prepend (broadcast, ",\n                    \"broadcast-addresses\": [");
          g_string_append (broadcast, "]");
        }

      {
        const char *pairs[] = {
          /* The discovery and the node take the daemon's node id: from the
           * config, or for the last node from --node-id (start_node). */
          "@CONFIG_NODE_ID@", i == N_NODES - 1 ? "auto" : n->id,
          "@LATENCY_MS@", latency,
          "@NUM_TOKENS@", tokens,
          "@HTTP_PORT@", http_port,
          "@HTTP_LISTEN@", c->netns ? "0.0.0.0" : "127.0.0.1",
          "@UDP_PORT@", udp_port,
          "@UDP_LISTEN@", c->netns ? "0.0.0.0" : "127.0.0.1",
          "@MEMORY_MIB@", memory,
          "@STATIC_PEERS@", statics->str,
          "@BROADCAST_SETTING@", broadcast->str,
          "@KEY_FILE@", n->key_path != NULL ? n->key_path : c->key_path,
          "@MODEL@", model,
          "@TOKENIZER@", tokenizer,
          NULL,
        };
        json = fill_template (template, pairs);
      }
      g_free (n->config_path);
      n->config_path = g_strdup_printf ("%s/%s.json", c->tmpdir, n->id);
      if (!g_file_set_contents (n->config_path, json, -1, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
start_bus (Cluster  *c,
           GError  **error)
{
  g_autofree char *conf_path = g_build_filename (c->tmpdir, "bus.conf", NULL);
  g_autofree char *conf = g_strdup_printf (
    "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
    " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
    "<busconfig>\n"
    "  <type>session</type>\n"
    /* A path socket: abstract sockets do not cross network namespaces. */
    "  <listen>unix:path=%s/bus</listen>\n"
    "  <auth>EXTERNAL</auth>\n"
    "  <policy context=\"default\">\n"
    "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
    "    <allow eavesdrop=\"true\"/>\n"
    "    <allow own=\"*\"/>\n"
    "  </policy>\n"
    "</busconfig>\n", c->tmpdir);
  g_autofree char *conf_arg = g_strdup_printf ("--config-file=%s", conf_path);
  const char *argv[] = { "dbus-daemon", conf_arg, "--nofork", "--print-address=1", NULL };
  g_autoptr(GDataInputStream) in = NULL;
  g_autofree char *line = NULL;

  if (!g_file_set_contents (conf_path, conf, -1, error))
    return FALSE;
  c->dbus = spawn (argv, NULL, NULL, G_SUBPROCESS_FLAGS_STDOUT_PIPE, error);
  if (c->dbus == NULL)
    return FALSE;
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (c->dbus));
  line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, error);
  if (line == NULL)
    return FALSE;
  c->bus_address = g_strdup (g_strstrip (line));
  c->bus = g_dbus_connection_new_for_address_sync (c->bus_address,
                                                   G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                   NULL, NULL, error);
  return c->bus != NULL;
}

static gboolean
start_node (Cluster *c,
            Node    *n,
            GError **error)
{
  g_autofree char *log = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();

  n->starts++;
  log = g_strdup_printf ("%s/%s.%u.log", c->tmpdir, n->id, n->starts);
  if (n->netns != NULL)
    {
      g_ptr_array_add (argv, ip_path);
      g_ptr_array_add (argv, (gpointer) "netns");
      g_ptr_array_add (argv, (gpointer) "exec");
      g_ptr_array_add (argv, n->netns);
    }
  g_ptr_array_add (argv, (gpointer) c->exo_node);
  g_ptr_array_add (argv, (gpointer) "--config");
  g_ptr_array_add (argv, n->config_path);
  g_ptr_array_add (argv, (gpointer) "--plugin-dir");
  g_ptr_array_add (argv, (gpointer) c->plugin_dir);
  g_ptr_array_add (argv, (gpointer) "--bus-name");
  g_ptr_array_add (argv, n->bus_name);
  g_ptr_array_add (argv, (gpointer) "--session");
  if (n == &c->nodes[N_NODES - 1])
    {
      g_ptr_array_add (argv, (gpointer) "--node-id");
      g_ptr_array_add (argv, n->id);
    }
  g_ptr_array_add (argv, NULL);
  n->proc = spawn ((const char * const *) argv->pdata, c->bus_address, log,
                   G_SUBPROCESS_FLAGS_STDERR_MERGE, error);
  return n->proc != NULL;
}

/* The Metrics of resource @id of @n, or NULL while it is not on the bus. */
static GVariant *
resource_metrics (Cluster    *c,
                  Node       *n,
                  const char *id)
{
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *path = g_strdup_printf ("/org/exo/Node1/resource/%s", id);
  GVariant *value = NULL;

  if (n->proc == NULL)
    return NULL;
  reply = g_dbus_connection_call_sync (c->bus, n->bus_name, path,
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", "org.exo.Resource1", "Metrics"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
                                       2000, NULL, NULL);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(v)", &value);
  return value;
}

static gint64
metric (GVariant   *metrics,
        const char *key)
{
  g_autoptr(GVariant) v = metrics != NULL ? g_variant_lookup_value (metrics, key, NULL) : NULL;

  if (v == NULL)
    return -1;
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT64))
    return (gint64) g_variant_get_uint64 (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_INT64))
    return g_variant_get_int64 (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_INT32))
    return g_variant_get_int32 (v);
  return -1;
}

static gint64
node_metric (Cluster    *c,
             Node       *n,
             const char *key)
{
  g_autoptr(GVariant) m = resource_metrics (c, n, "node");

  return metric (m, key);
}

/* Polls until metric @key of resource @id of @n is at least @min. */
static gboolean
wait_resource_metric (Cluster    *c,
                      Node       *n,
                      const char *id,
                      const char *key,
                      gint64      min,
                      guint       timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  do
    {
      g_autoptr(GVariant) m = resource_metrics (c, n, id);

      if (metric (m, key) >= min)
        return TRUE;
      g_usleep (20 * 1000);
    }
  while (g_get_monotonic_time () < deadline);
  return FALSE;
}

/* HTTP through curl (inside the node's namespace for the netns variant). */
static GPtrArray *
curl_argv (Cluster    *c,
           Node       *n,
           const char *method,
           const char *path,
           const char *body,
           guint       timeout_s)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);

  if (n->netns != NULL)
    {
      g_ptr_array_add (argv, g_strdup (ip_path));
      g_ptr_array_add (argv, g_strdup ("netns"));
      g_ptr_array_add (argv, g_strdup ("exec"));
      g_ptr_array_add (argv, g_strdup (n->netns));
    }
  g_ptr_array_add (argv, g_strdup ("curl"));
  g_ptr_array_add (argv, g_strdup ("-s"));
  g_ptr_array_add (argv, g_strdup ("-m"));
  g_ptr_array_add (argv, g_strdup_printf ("%u", timeout_s));
  g_ptr_array_add (argv, g_strdup ("-w"));
  g_ptr_array_add (argv, g_strdup ("\n%{http_code}"));
  g_ptr_array_add (argv, g_strdup ("-X"));
  g_ptr_array_add (argv, g_strdup (method));
  if (body != NULL)
    {
      g_ptr_array_add (argv, g_strdup ("-H"));
      g_ptr_array_add (argv, g_strdup ("Content-Type: application/json"));
      g_ptr_array_add (argv, g_strdup ("--data-binary"));
      g_ptr_array_add (argv, g_strdup (body));
    }
  g_ptr_array_add (argv, g_strdup_printf ("http://%s:%u%s", n->host, n->http_port, path));
  g_ptr_array_add (argv, NULL);
  return argv;
}

/* Splits curl's output into the body (returned) and the status. */
static char *
split_status (char  *out,
              guint *status)
{
  char *nl;

  *status = 0;
  if (out == NULL)
    return NULL;
  nl = strrchr (out, '\n');
  if (nl == NULL)
    return out;
  *status = (guint) g_ascii_strtoull (nl + 1, NULL, 10);
  *nl = '\0';
  return out;
}

static char *
http (Cluster    *c,
      Node       *n,
      const char *method,
      const char *path,
      const char *body,
      guint      *status)
{
  g_autoptr(GPtrArray) argv = curl_argv (c, n, method, path, body, 30);

  return split_status (run_capture ((const char * const *) argv->pdata, NULL, NULL), status);
}

static JsonNode *
parse_json (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();

  if (text == NULL || !json_parser_load_from_data (parser, text, -1, NULL) ||
      json_parser_get_root (parser) == NULL)
    return NULL;
  return json_node_copy (json_parser_get_root (parser));
}

/* The ring a node uses, "a:0-7,b:8-15", from GET /v1/topology. */
static char *
node_ring (Cluster *c,
           Node    *n)
{
  guint status;
  g_autofree char *body = http (c, n, "GET", "/v1/topology", NULL, &status);
  g_autoptr(JsonNode) root = NULL;
  GString *ring;
  JsonArray *shards;

  if (status != 200 || (root = parse_json (body)) == NULL || !JSON_NODE_HOLDS_OBJECT (root) ||
      !json_object_has_member (json_node_get_object (root), "shards"))
    return NULL;
  shards = json_object_get_array_member (json_node_get_object (root), "shards");
  ring = g_string_new (NULL);
  for (guint i = 0; i < json_array_get_length (shards); i++)
    {
      JsonObject *s = json_array_get_object_element (shards, i);

      g_string_append_printf (ring, "%s%s:%" G_GINT64_FORMAT "-%" G_GINT64_FORMAT,
                              i > 0 ? "," : "", json_object_get_string_member (s, "node_id"),
                              json_object_get_int_member (s, "start_layer"),
                              json_object_get_int_member (s, "end_layer"));
    }
  return g_string_free (ring, FALSE);
}

/* Polls until every node in @which (a bitmask) uses @ring. */
static gboolean
wait_ring (Cluster    *c,
           guint       which,
           const char *ring,
           guint       timeout_ms,
           char      **last)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  do
    {
      gboolean all = TRUE;

      for (guint i = 0; i < N_NODES && all; i++)
        {
          g_autofree char *got = NULL;

          if (!(which & (1u << i)))
            continue;
          got = node_ring (c, &c->nodes[i]);
          if (g_strcmp0 (got, ring) != 0)
            {
              all = FALSE;
              if (last != NULL)
                {
                  g_free (*last);
                  *last = g_strdup_printf ("%s: %s", c->nodes[i].id, got ? got : "(no answer)");
                }
            }
        }
      if (all)
        return TRUE;
      g_usleep (50 * 1000);
    }
  while (g_get_monotonic_time () < deadline);
  return FALSE;
}

/* Polls until @key of each node in @which is at least @min. */
static gboolean
wait_metric_at_least (Cluster    *c,
                      guint       which,
                      const char *key,
                      gint64      min,
                      guint       timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  do
    {
      gboolean all = TRUE;

      for (guint i = 0; i < N_NODES && all; i++)
        if ((which & (1u << i)) && node_metric (c, &c->nodes[i], key) < min)
          all = FALSE;
      if (all)
        return TRUE;
      g_usleep (20 * 1000);
    }
  while (g_get_monotonic_time () < deadline);
  return FALSE;
}

static const char *
chat_body (void)
{
  return "{\"model\": \"dummy\", \"messages\": [{\"role\": \"user\", \"content\": \"hello\"}]}";
}

/* A chat completion through @n, with the OpenAI fields @extra (e.g.
 * "\"max_tokens\": 3") if not NULL: checks the answer is
 * @expected_tokens dummy tokens. */
static gboolean
chat_ok_with (Cluster    *c,
              Node       *n,
              const char *extra,
              guint       expected_tokens,
              char      **why)
{
  guint status;
  g_autofree char *request = extra == NULL ? g_strdup (chat_body ())
    : g_strdup_printf ("{\"model\": \"dummy\", \"messages\": [{\"role\": \"user\", "
                       "\"content\": \"hello\"}], %s}", extra);
  g_autofree char *body = http (c, n, "POST", "/v1/chat/completions", request, &status);
  g_autoptr(JsonNode) root = parse_json (body);
  JsonObject *choice, *usage;
  const char *content;
  g_autofree char *expected = NULL;
  GString *e = g_string_new (NULL);

  for (guint i = 0; i < expected_tokens; i++)
    g_string_append (e, "dummy");
  expected = g_string_free (e, FALSE);

  if (status != 200 || root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      *why = g_strdup_printf ("HTTP %u: %s", status, body ? body : "(nothing)");
      return FALSE;
    }
  choice = json_array_get_object_element (
    json_object_get_array_member (json_node_get_object (root), "choices"), 0);
  content = json_object_get_string_member (json_object_get_object_member (choice, "message"),
                                           "content");
  usage = json_object_get_object_member (json_node_get_object (root), "usage");
  if (g_strcmp0 (content, expected) != 0 ||
      json_object_get_int_member (usage, "completion_tokens") != expected_tokens)
    {
      *why = g_strdup_printf ("unexpected answer (%u tokens expected): %s", expected_tokens, body);
      return FALSE;
    }
  return TRUE;
}

static gboolean
chat_ok (Cluster *c,
         Node    *n,
         guint    expected_tokens,
         char   **why)
{
  return chat_ok_with (c, n, NULL, expected_tokens, why);
}

/* A streamed chat completion through @n with the OpenAI fields @extra:
 * exactly @expected_tokens events with a token, then the final chunk
 * (usage.completion_tokens) and [DONE]. */
static gboolean
stream_ok_with (Cluster    *c,
                Node       *n,
                const char *extra,
                guint       expected_tokens,
                char      **why)
{
  guint status, token_events = 0, other_events = 0;
  g_autofree char *request = g_strdup_printf ("{\"model\": \"dummy\", \"stream\": true, "
                                              "\"messages\": [{\"role\": \"user\", "
                                              "\"content\": \"hello\"}], %s}", extra);
  g_autofree char *body = http (c, n, "POST", "/v1/chat/completions", request, &status);
  g_auto(GStrv) lines = NULL;
  gint64 usage_tokens = -1;
  gboolean done = FALSE;

  if (status != 200 || body == NULL)
    {
      *why = g_strdup_printf ("HTTP %u: %s", status, body ? body : "(nothing)");
      return FALSE;
    }
  lines = g_strsplit (body, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonObject *chunk, *choice, *delta;

      if (g_str_equal (lines[i], "data: [DONE]"))
        {
          done = TRUE;
          continue;
        }
      if (!g_str_has_prefix (lines[i], "data: {") ||
          (root = parse_json (lines[i] + strlen ("data: "))) == NULL)
        continue;
      chunk = json_node_get_object (root);
      choice = json_array_get_object_element (json_object_get_array_member (chunk, "choices"), 0);
      delta = json_object_get_object_member (choice, "delta");
      if (json_object_has_member (delta, "content") &&
          g_str_equal (json_object_get_string_member (delta, "content"), "dummy"))
        token_events++;
      else
        other_events++;
      if (json_object_has_member (chunk, "usage"))
        usage_tokens = json_object_get_int_member (json_object_get_object_member (chunk, "usage"),
                                                   "completion_tokens");
    }
  if (token_events != expected_tokens || usage_tokens != expected_tokens || !done)
    {
      *why = g_strdup_printf ("%u token events (%u expected), %u others, usage %" G_GINT64_FORMAT
                              ", %s: %s", token_events, expected_tokens, other_events, usage_tokens,
                              done ? "[DONE]" : "no [DONE]", body);
      return FALSE;
    }
  return TRUE;
}

/* A double metric of resource @id of @n as its GET /metrics has it now;
 * NAN if none. */
static double
live_resource_metric_double (Cluster    *c,
                             Node       *n,
                             const char *id,
                             const char *name)
{
  guint status = 0;
  g_autofree char *text = http (c, n, "GET", "/metrics", NULL, &status);
  g_autofree char *needle = g_strdup_printf ("exo_resource_metric{id=\"%s\",name=\"%s\"} ", id, name);
  const char *at = status == 200 && text != NULL ? strstr (text, needle) : NULL;

  return at != NULL ? g_ascii_strtod (at + strlen (needle), NULL) : NAN;
}

static void
dump_logs (Cluster *c)
{
  g_autoptr(GDir) dir = g_dir_open (c->tmpdir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *text = NULL;
      gsize len;

      if (!g_str_has_suffix (name, ".log"))
        continue;
      path = g_build_filename (c->tmpdir, name, NULL);
      if (g_file_get_contents (path, &text, &len, NULL))
        g_test_message ("--- %s (last 6000 bytes) ---\n%s", name,
                        len > 6000 ? text + len - 6000 : text);
    }
}

/* Sanitizer reports in the nodes' logs (an ASan build): a failure when
 * they point into the node plugin, a message otherwise. */
static void
check_sanitizer_reports (Cluster *c)
{
  g_autoptr(GDir) dir = g_dir_open (c->tmpdir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *text = NULL;
      const char *report;

      if (!g_str_has_suffix (name, ".log"))
        continue;
      path = g_build_filename (c->tmpdir, name, NULL);
      if (!g_file_get_contents (path, &text, NULL, NULL))
        continue;
      report = strstr (text, "ERROR: AddressSanitizer");
      if (report == NULL)
        report = strstr (text, "ERROR: LeakSanitizer");
      if (report == NULL)
        report = strstr (text, "runtime error:");
      if (report == NULL)
        continue;
      if (strstr (report, "plugins/node/") != NULL)
        g_test_fail_printf ("%s: sanitizer report in the node plugin:\n%.4000s", name, report);
      else
        g_test_message ("%s: sanitizer report (not in the node plugin):\n%.2000s", name, report);
    }
}

static void
rm_rf (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      g_remove (child);
    }
  g_rmdir (path);
}

static void
netns_teardown (void)
{
  for (guint i = 0; i < N_NETNS; i++)
    {
      g_autofree char *cmd = g_strdup_printf ("%s netns del %s", ip_path, netns_names[i]);
      run_quiet (cmd);
    }
  netns_made = FALSE;
}

/* Namespaces of earlier runs that died without cleaning up. */
static void
netns_remove_stale (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/run/netns", 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      const char *dash = strrchr (name, '-');
      pid_t pid;

      if (!g_str_has_prefix (name, "exo-t") || dash == NULL || dash[1] == '\0')
        continue;
      pid = (pid_t) g_ascii_strtoll (dash + 1, NULL, 10);
      if (pid > 0 && pid != getpid () && kill (pid, 0) < 0 && errno == ESRCH)
        {
          g_autofree char *cmd = g_strdup_printf ("%s netns del %s", ip_path, name);
          run_quiet (cmd);
        }
    }
}

/* Namespaces exo-t1..3-PID with veth pairs on a bridge in exo-tbr-PID;
 * the interfaces are made directly in their namespaces. */
static gboolean
netns_setup (char **why)
{
  guint tag = (guint) getpid () % 100000;
  g_autofree char *c0 = g_strdup_printf ("netns add %s", netns_names[3]);
  g_autofree char *c1 = g_strdup_printf ("-n %s link add exbr%u type bridge", netns_names[3], tag);
  g_autofree char *c2 = g_strdup_printf ("-n %s link set exbr%u up", netns_names[3], tag);
  g_autofree char *c3 = g_strdup_printf ("-n %s link set lo up", netns_names[3]);
  const char *cmds[] = { c0, c1, c2, c3 };

  netns_remove_stale ();
  netns_made = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (cmds); i++)
    {
      g_autofree char *cmd = g_strdup_printf ("%s %s", ip_path, cmds[i]);
      if (!run_quiet (cmd))
        {
          *why = g_strdup_printf ("'%s' failed", cmd);
          return FALSE;
        }
    }
  for (guint i = 1; i <= N_NODES; i++)
    {
      const char *ns = netns_names[i - 1], *br = netns_names[3];
      g_autofree char *d1 = g_strdup_printf ("%s netns add %s", ip_path, ns);
      g_autofree char *d2 = g_strdup_printf ("%s link add exv%u-%u netns %s type veth "
                                             "peer name exb%u-%u netns %s",
                                             ip_path, i, tag, ns, i, tag, br);
      g_autofree char *d3 = g_strdup_printf ("%s -n %s link set exb%u-%u master exbr%u up",
                                             ip_path, br, i, tag, tag);
      g_autofree char *d4 = g_strdup_printf ("%s -n %s addr add 10.99.0.%u/24 brd + dev exv%u-%u",
                                             ip_path, ns, i, i, tag);
      g_autofree char *d5 = g_strdup_printf ("%s -n %s link set exv%u-%u up", ip_path, ns, i, tag);
      g_autofree char *d6 = g_strdup_printf ("%s -n %s link set lo up", ip_path, ns);
      const char *all[] = { d1, d2, d3, d4, d5, d6 };

      for (guint j = 0; j < G_N_ELEMENTS (all); j++)
        if (!run_quiet (all[j]))
          {
            *why = g_strdup_printf ("'%s' failed", all[j]);
            return FALSE;
          }
    }
  return TRUE;
}

static void
cluster_init (Cluster *c,
              gboolean netns)
{
  memset (c, 0, sizeof *c);
  c->netns = netns;
  c->exo_node = g_getenv ("EXO_NODE");
  c->exoctl = g_getenv ("EXOCTL");
  c->plugin_dir = g_getenv ("EXO_TEST_PLUGIN_DIR");
  c->tmpdir = g_dir_make_tmp ("exo-cluster-XXXXXX", NULL);
  if (c->tmpdir != NULL)
    {
      /* The cluster's key: as an operator copies one file to every node. */
      g_autoptr(ExoClusterKey) key = exo_cluster_key_new_random ();

      c->key_path = g_build_filename (c->tmpdir, "cluster.key", NULL);
      exo_cluster_key_save (key, c->key_path, NULL);
    }

  for (guint i = 0; i < N_NODES; i++)
    {
      Node *n = &c->nodes[i];

      n->id = g_strdup_printf ("node-%u", i + 1);
      n->bus_name = g_strdup_printf ("org.exo.Test.Cluster.N%u", i + 1);
      n->memory_mib = i == 0 ? 4096 : 2048;
      if (netns)
        {
          n->netns = g_strdup (netns_names[i]);
          n->host = g_strdup_printf ("10.99.0.%u", i + 1);
          n->http_port = 52415;
          n->udp_port = 5678;
        }
      else
        {
          n->host = g_strdup ("127.0.0.1");
          n->http_port = free_port (G_SOCKET_TYPE_STREAM);
          n->udp_port = free_port (G_SOCKET_TYPE_DATAGRAM);
        }
    }
}

static void
cluster_clear (Cluster *c)
{
  gboolean keep = g_getenv ("EXO_TEST_KEEP_LOGS") != NULL;

  for (guint i = 0; i < N_NODES; i++)
    {
      Node *n = &c->nodes[i];

      end_process (&n->proc, SIGKILL, 5000);
      g_free (n->id);
      g_free (n->netns);
      g_free (n->host);
      g_free (n->config_path);
      g_free (n->bus_name);
      g_free (n->key_path);
    }
  g_free (c->key_path);
  if (c->bus != NULL)
    g_dbus_connection_close_sync (c->bus, NULL, NULL);
  g_clear_object (&c->bus);
  end_process (&c->dbus, SIGTERM, 5000);
  g_free (c->bus_address);
  if (c->tmpdir != NULL)
    check_sanitizer_reports (c);
  if (c->tmpdir != NULL && g_test_failed ())
    dump_logs (c);
  if (c->tmpdir != NULL && !g_test_failed () && !keep)
    rm_rf (c->tmpdir);
  else if (c->tmpdir != NULL)
    g_test_message ("logs kept in %s", c->tmpdir);
  g_free (c->tmpdir);
}

/* --- the scenario ------------------------------------------------------------ */

/* A metric of the node resource as its server's GET /metrics has it now
 * (the D-Bus property is polled once a second: too late here); -1 if none. */
static gint64
live_metric (const char *metrics_text,
             const char *name)
{
  g_autofree char *needle = g_strdup_printf ("exo_resource_metric{id=\"node\",name=\"%s\"} ", name);
  const char *at = metrics_text != NULL ? strstr (metrics_text, needle) : NULL;

  return at != NULL ? g_ascii_strtoll (at + strlen (needle), NULL, 10) : -1;
}

static gint64
live_node_metric (Cluster    *c,
                  Node       *n,
                  const char *name)
{
  guint status = 0;
  g_autofree char *text = http (c, n, "GET", "/metrics", NULL, &status);

  return status == 200 ? live_metric (text, name) : -1;
}

/* The counters that grow while a request is computed, per node. */
static gboolean
read_work (Cluster *c,
           gint64   layers[N_NODES],
           gint64  *tokens)
{
  *tokens = 0;
  for (guint i = 0; i < N_NODES; i++)
    {
      guint status = 0;
      g_autofree char *text = http (c, &c->nodes[i], "GET", "/metrics", NULL, &status);
      gint64 t = live_metric (text, "tokens-generated");

      layers[i] = live_metric (text, "layers-computed");
      if (status != 200 || layers[i] < 0 || t < 0)
        return FALSE;
      *tokens += t;
    }
  return TRUE;
}

/* A streamed chat through node 1 whose client (curl) is killed after
 * @cut_after events.  Every shard must stop within one token: no more
 * tokens than were sent plus the one in flight plus one, no shard computing
 * more than one pass beyond that; without cancellation on every shard the
 * ring goes on to the last token. */
static gboolean
stream_cut_stops_everywhere (Cluster *c,
                             guint    cut_after,
                             guint    total_tokens,
                             char   **why)
{
  const char *body = "{\"model\": \"dummy\", \"stream\": true, "
                     "\"messages\": [{\"role\": \"user\", \"content\": \"hello\"}]}";
  g_autoptr(GPtrArray) argv = curl_argv (c, &c->nodes[0], "POST", "/v1/chat/completions", body, 30);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDataInputStream) in = NULL;
  GSubprocess *curl = NULL;
  gint64 layers0[N_NODES], layers[N_NODES], last[N_NODES], layers_cut[N_NODES], tokens0, tokens;
  gint64 tokens_cut, last_tokens = -1;
  gint64 stable_since = 0, deadline;
  guint events = 0;
  gboolean ok = FALSE;

  /* curl -N: each event as it arrives */
  g_ptr_array_insert (argv, argv->len - 2, g_strdup ("-N"));
  if (!read_work (c, layers0, &tokens0))
    {
      *why = g_strdup ("cannot read the nodes' metrics");
      return FALSE;
    }
  curl = spawn ((const char * const *) argv->pdata, NULL, NULL,
                G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error);
  if (curl == NULL)
    {
      *why = g_strdup_printf ("curl: %s", error->message);
      return FALSE;
    }
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (curl));
  while (events < cut_after)
    {
      g_autofree char *line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, NULL);

      if (line == NULL)
        break;
      if (g_str_has_prefix (line, "data: {"))
        events++;
    }
  /* What the ring had generated when the client hung up: on a loaded
   * machine this reader can lag the stream by a few tokens, which the
   * nodes cannot know of.  The bound below counts from here. */
  if (!read_work (c, layers_cut, &tokens_cut))
    {
      *why = g_strdup ("cannot read the nodes' metrics");
      end_process (&curl, SIGKILL, 5000);
      return FALSE;
    }
  /* hang up */
  end_process (&curl, SIGKILL, 5000);

  if (events < cut_after)
    {
      *why = g_strdup_printf ("the stream ended after %u events", events);
      return FALSE;
    }

  /* Wait until the counters stop (unchanged for 600 ms; a token takes
   * 3 × latency-ms), at most 10 s. */
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  memset (last, 0, sizeof last);
  while (g_get_monotonic_time () < deadline)
    {
      gint64 now = g_get_monotonic_time ();

      if (!read_work (c, layers, &tokens))
        {
          *why = g_strdup ("cannot read the nodes' metrics");
          return FALSE;
        }
      if (tokens != last_tokens || memcmp (layers, last, sizeof last) != 0)
        {
          last_tokens = tokens;
          memcpy (last, layers, sizeof last);
          stable_since = now;
        }
      else if (now - stable_since >= 600 * 1000)
        break;
      g_usleep (50 * 1000);
    }
  g_test_message ("stream cut after %u events: %" G_GINT64_FORMAT " tokens generated "
                  "(%u without cancellation); layers-computed per node %" G_GINT64_FORMAT
                  ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "; cancels received %"
                  G_GINT64_FORMAT ", %" G_GINT64_FORMAT "; work dropped %" G_GINT64_FORMAT
                  ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT,
                  cut_after, tokens - tokens0, total_tokens, layers[0] - layers0[0],
                  layers[1] - layers0[1], layers[2] - layers0[2],
                  live_node_metric (c, &c->nodes[1], "cancels-received"),
                  live_node_metric (c, &c->nodes[2], "cancels-received"),
                  live_node_metric (c, &c->nodes[0], "cancelled-work-dropped"),
                  live_node_metric (c, &c->nodes[1], "cancelled-work-dropped"),
                  live_node_metric (c, &c->nodes[2], "cancelled-work-dropped"));
  if (tokens - tokens0 > MAX (cut_after, tokens_cut - tokens0) + 2)
    {
      *why = g_strdup_printf ("%" G_GINT64_FORMAT " tokens were generated for a stream cut "
                              "after %u events, %" G_GINT64_FORMAT " generated at the cut "
                              "(at most 2 more: the token in flight and one more)",
                              tokens - tokens0, cut_after, tokens_cut - tokens0);
      goto out;
    }
  for (guint i = 0; i < N_NODES; i++)
    if (layers[i] - layers0[i] > tokens - tokens0 + 1)
      {
        *why = g_strdup_printf ("%s computed %" G_GINT64_FORMAT " passes for %" G_GINT64_FORMAT
                                " tokens of a cut stream", c->nodes[i].id,
                                layers[i] - layers0[i], tokens - tokens0);
        goto out;
      }
  if (live_node_metric (c, &c->nodes[0], "requests-in-flight") != 0)
    {
      *why = g_strdup ("node-1 still has the request in flight");
      goto out;
    }
  for (guint i = 1; i < N_NODES; i++)
    if (live_node_metric (c, &c->nodes[i], "cancels-received") < 1)
      {
        *why = g_strdup_printf ("%s was not told of the cancellation", c->nodes[i].id);
        goto out;
      }
  ok = TRUE;
out:
  return ok;
}

typedef struct {
  GSubprocess *proc;
  gboolean     done;
  char        *out;
  gint64       done_us;
} AsyncCurl;

static void
async_curl_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  AsyncCurl *ac = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &ac->out, NULL, NULL);
  ac->done_us = g_get_monotonic_time ();
  ac->done = TRUE;
}

static void
run_scenario (Cluster *c)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *why = NULL;
  g_autofree char *last = NULL;
  AsyncCurl inflight = { 0 };
  gint64 t0, t_found, t_kill, t_fail[N_NODES] = { 0 }, t_rejoin;
  gint64 base_failed[N_NODES];
  guint status;
  const guint all = 0x7, survivors = 0x3;
  /* Dummy engine: 20 ms per infer call, 30 tokens (so a request takes
   * about 30 × 3 × 20 ms ≈ 2 s: long enough to kill a node during one). */
  const guint latency_ms = 20, num_tokens = 30, expected_tokens = num_tokens - 1;

  CHECK (c->exo_node != NULL && c->plugin_dir != NULL, "EXO_NODE and EXO_TEST_PLUGIN_DIR must be set");
  CHECK (c->tmpdir != NULL, "cannot make a temporary folder");
  CHECK (write_configs (c, latency_ms, num_tokens, &error), "configs: %s", error->message);
  CHECK (start_bus (c, &error), "dbus-daemon: %s", error ? error->message : "?");

  /* 1. Three nodes find each other and agree on the ring. */
  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < N_NODES; i++)
    CHECK (start_node (c, &c->nodes[i], &error), "starting %s: %s", c->nodes[i].id, error->message);
  CHECK (wait_metric_at_least (c, all, "peers", 2, 15000),
         "the nodes did not find each other within 15 s");
  t_found = g_get_monotonic_time ();
  g_test_message ("three nodes found each other %.0f ms after start", (t_found - t0) / 1000.0);
  CHECK (t_found - t0 <= 5 * G_USEC_PER_SEC,
         "discovery took %.0f ms (limit 5000)", (t_found - t0) / 1000.0);
  CHECK (wait_ring (c, all, RING_3, 10000, &last), "no common ring %s; last: %s", RING_3, last);

  /* 2. A chat completion through node 1 runs on all three shards. */
  CHECK (chat_ok (c, &c->nodes[0], expected_tokens, &why), "chat through node 1: %s", why);
  CHECK (wait_metric_at_least (c, all, "layers-computed", 1, 5000),
         "not every node computed its shard");
  for (guint i = 0; i < N_NODES && c->exoctl != NULL; i++)
    {
      /* As an operator sees it. */
      const char *argv[] = { c->exoctl, "--bus-name", c->nodes[i].bus_name, "--json",
                             "status", "node", NULL };
      int rc;
      g_autofree char *out = run_capture (argv, c->bus_address, &rc);
      g_autoptr(JsonNode) root = parse_json (out);
      JsonObject *metrics;

      CHECK (rc == 0 && root != NULL && JSON_NODE_HOLDS_OBJECT (root),
             "exoctl status node on %s: exit %d: %s", c->nodes[i].id, rc, out);
      metrics = json_object_get_object_member (json_node_get_object (root), "metrics");
      CHECK (metrics != NULL && json_object_get_int_member (metrics, "layers-computed") > 0,
             "%s: layers-computed is 0: %s", c->nodes[i].id, out);
      g_test_message ("%s: shard %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT ", layers-computed %"
                      G_GINT64_FORMAT ", tokens-generated %" G_GINT64_FORMAT, c->nodes[i].id,
                      json_object_get_int_member (metrics, "shard-start"),
                      json_object_get_int_member (metrics, "shard-end"),
                      json_object_get_int_member (metrics, "layers-computed"),
                      json_object_get_int_member (metrics, "tokens-generated"));
    }

  /* 2a. The request's max_tokens (below the nodes' max-tokens, 64, and the
   * engine's 29 tokens) is obeyed by the last shard, node-2, for a request
   * that node-1 took; node-2 samples with its temperature and top_p (and
   * node-1 never samples). */
  CHECK (chat_ok_with (c, &c->nodes[0], "\"max_tokens\": 3, \"temperature\": 0.5, "
                       "\"top_p\": 0.25, \"seed\": 7", 3, &why),
         "chat with max_tokens 3 through node 1: %s", why);
  CHECK (live_resource_metric_double (c, &c->nodes[1], "engine", "last-sample-temperature") == 0.5 &&
         live_resource_metric_double (c, &c->nodes[1], "engine", "last-sample-top-p") == 0.25,
         "node-2 (the last shard) did not sample with temperature 0.5 and top_p 0.25: %g, %g",
         live_resource_metric_double (c, &c->nodes[1], "engine", "last-sample-temperature"),
         live_resource_metric_double (c, &c->nodes[1], "engine", "last-sample-top-p"));
  CHECK (live_resource_metric_double (c, &c->nodes[0], "engine", "last-sample-temperature") == -1,
         "node-1 sampled, but it does not hold the last shard");
  CHECK (stream_ok_with (c, &c->nodes[0], "\"max_completion_tokens\": 3", 3, &why),
         "streamed chat with max_completion_tokens 3 through node 1: %s", why);

  /* 2b. A stream cut by its client stops on every shard within one token. */
  CHECK (stream_cut_stops_everywhere (c, 3, expected_tokens, &why), "cut stream: %s", why);

  /* 3. Kill node 3 while a request is in flight. */
  for (guint i = 0; i < N_NODES; i++)
    base_failed[i] = node_metric (c, &c->nodes[i], "peers-failed");
  {
    g_autoptr(GPtrArray) argv = curl_argv (c, &c->nodes[0], "POST", "/v1/chat/completions",
                                           chat_body (), 60);

    inflight.proc = spawn ((const char * const *) argv->pdata, NULL, NULL,
                           G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                           &error);
    CHECK (inflight.proc != NULL, "curl: %s", error->message);
    g_subprocess_communicate_utf8_async (inflight.proc, NULL, NULL, async_curl_done, &inflight);
  }
  CHECK (wait_metric_at_least (c, 0x1, "requests-in-flight", 1, 5000),
         "the request did not start on node 1");
  g_usleep (300 * 1000);
  t_kill = g_get_monotonic_time ();
  end_process (&c->nodes[2].proc, SIGKILL, 5000);

  {
    gint64 deadline = t_kill + 15 * G_USEC_PER_SEC;

    while (g_get_monotonic_time () < deadline &&
           (!inflight.done || t_fail[0] == 0 || t_fail[1] == 0))
      {
        while (g_main_context_iteration (NULL, FALSE))
          ;
        for (guint i = 0; i < 2; i++)
          if (t_fail[i] == 0 && node_metric (c, &c->nodes[i], "peers-failed") > base_failed[i])
            t_fail[i] = g_get_monotonic_time ();
        g_usleep (10 * 1000);
      }
  }
  CHECK (inflight.done, "the request in flight did not end within 15 s of the kill");
  untrack_pid (subprocess_pid (inflight.proc));
  {
    g_autofree char *body = split_status (g_steal_pointer (&inflight.out), &status);

    g_test_message ("request in flight ended %.0f ms after the kill: HTTP %u %s",
                    (inflight.done_us - t_kill) / 1000.0, status, body);
    CHECK (status >= 500 && body != NULL && strstr (body, "node-3") != NULL &&
           strstr (body, "unreachable") != NULL,
           "the request in flight did not fail with a clear error: HTTP %u %s", status, body);
    CHECK (inflight.done_us - t_kill <= 5 * G_USEC_PER_SEC,
           "the request in flight took %.0f ms to fail", (inflight.done_us - t_kill) / 1000.0);
  }
  for (guint i = 0; i < 2; i++)
    {
      CHECK (t_fail[i] != 0, "%s did not mark node-3 failed within 15 s", c->nodes[i].id);
      g_test_message ("%s marked node-3 failed %.0f ms after SIGKILL (target 5000, limit 10000)",
                      c->nodes[i].id, (t_fail[i] - t_kill) / 1000.0);
      CHECK (t_fail[i] - t_kill <= 10 * G_USEC_PER_SEC, "%s took %.0f ms to mark node-3 failed",
             c->nodes[i].id, (t_fail[i] - t_kill) / 1000.0);
    }
  CHECK (wait_ring (c, survivors, RING_2, 5000, &last), "no re-partition to %s; last: %s",
         RING_2, last);
  CHECK (chat_ok (c, &c->nodes[1], expected_tokens, &why), "chat with two nodes: %s", why);
  /* A two-node ring: node-1 takes the request, node-2 (the last shard)
   * stops it at max_tokens and samples with its parameters. */
  CHECK (chat_ok_with (c, &c->nodes[0], "\"max_tokens\": 4, \"temperature\": 1.25, \"top_p\": 0.75",
                       4, &why),
         "chat with max_tokens 4 through node 1 of two: %s", why);
  CHECK (live_resource_metric_double (c, &c->nodes[1], "engine", "last-sample-temperature") == 1.25 &&
         live_resource_metric_double (c, &c->nodes[1], "engine", "last-sample-top-p") == 0.75,
         "node-2 (the last shard of two) did not sample with temperature 1.25 and top_p 0.75");
  CHECK (stream_ok_with (c, &c->nodes[0], "\"max_tokens\": 3", 3, &why),
         "streamed chat with max_tokens 3 through node 1 of two: %s", why);

  /* 4. Node 3 comes back and rejoins. */
  t_rejoin = g_get_monotonic_time ();
  CHECK (start_node (c, &c->nodes[2], &error), "restarting node-3: %s", error->message);
  CHECK (wait_ring (c, all, RING_3, 15000, &last), "node-3 did not rejoin; last: %s", last);
  g_test_message ("node-3 rejoined %.0f ms after its restart", (g_get_monotonic_time () - t_rejoin) / 1000.0);
  CHECK (chat_ok (c, &c->nodes[1], expected_tokens, &why), "chat after the rejoin: %s", why);
  CHECK (wait_metric_at_least (c, 0x4, "layers-computed", 1, 5000),
         "the restarted node-3 computed nothing");

  /* 5. A node that stops answering without closing its sockets (SIGSTOP:
   * the kernel still accepts connections, nothing answers): only timeouts
   * can tell.  Then it wakes up (SIGCONT) and rejoins. */
  for (guint i = 0; i < N_NODES; i++)
    base_failed[i] = node_metric (c, &c->nodes[i], "peers-failed");
  t_kill = g_get_monotonic_time ();
  g_subprocess_send_signal (c->nodes[2].proc, SIGSTOP);
  memset (t_fail, 0, sizeof t_fail);
  {
    gint64 deadline = t_kill + 15 * G_USEC_PER_SEC;

    while (g_get_monotonic_time () < deadline && (t_fail[0] == 0 || t_fail[1] == 0))
      {
        for (guint i = 0; i < 2; i++)
          if (t_fail[i] == 0 && node_metric (c, &c->nodes[i], "peers-failed") > base_failed[i])
            t_fail[i] = g_get_monotonic_time ();
        g_usleep (10 * 1000);
      }
  }
  for (guint i = 0; i < 2; i++)
    {
      CHECK (t_fail[i] != 0, "%s did not mark the stopped node-3 failed within 15 s",
             c->nodes[i].id);
      g_test_message ("%s marked the silent (SIGSTOP) node-3 failed %.0f ms after it stopped "
                      "(target 5000, limit 10000)", c->nodes[i].id, (t_fail[i] - t_kill) / 1000.0);
      CHECK (t_fail[i] - t_kill <= 10 * G_USEC_PER_SEC,
             "%s took %.0f ms to mark the silent node-3 failed", c->nodes[i].id,
             (t_fail[i] - t_kill) / 1000.0);
    }
  CHECK (wait_ring (c, survivors, RING_2, 5000, &last), "no re-partition to %s; last: %s",
         RING_2, last);
  t_rejoin = g_get_monotonic_time ();
  g_subprocess_send_signal (c->nodes[2].proc, SIGCONT);
  CHECK (wait_ring (c, all, RING_3, 15000, &last), "node-3 did not rejoin after SIGCONT; last: %s",
         last);
  g_test_message ("node-3 rejoined %.0f ms after SIGCONT", (g_get_monotonic_time () - t_rejoin) / 1000.0);
  CHECK (chat_ok (c, &c->nodes[2], expected_tokens, &why), "chat through node 3: %s", why);

  /* 6. Clean shutdown: SIGTERM, cleanup in order, exit 0 (23 is a leak
   * report of an ASan build, shown above). */
  for (guint i = 0; i < N_NODES; i++)
    {
      GSubprocess *proc = g_object_ref (c->nodes[i].proc);
      gboolean clean = end_process (&c->nodes[i].proc, SIGTERM, 10000);

      CHECK (clean, "%s did not shut down within 10 s of SIGTERM", c->nodes[i].id);
      CHECK (g_subprocess_get_if_exited (proc) &&
             (g_subprocess_get_exit_status (proc) == 0 || g_subprocess_get_exit_status (proc) == 23),
             "%s did not exit cleanly after SIGTERM (%s %d)", c->nodes[i].id,
             g_subprocess_get_if_exited (proc) ? "exit status" : "signal",
             g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc)
                                               : g_subprocess_get_term_sig (proc));
      g_object_unref (proc);
    }

out:
  if (inflight.proc != NULL)
    {
      end_process (&inflight.proc, SIGKILL, 2000);
      while (!inflight.done)
        g_main_context_iteration (NULL, TRUE);
    }
  g_free (inflight.out);
}

static void
test_loopback (void)
{
  Cluster c;

  cluster_init (&c, FALSE);
  run_scenario (&c);
  cluster_clear (&c);
}

static void
test_netns (void)
{
  Cluster c;
  g_autofree char *why = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("network namespaces need root");
      return;
    }
  if (ip_path[0] == '\0')
    {
      g_test_skip ("no `ip` command");
      return;
    }
  if (!netns_setup (&why))
    {
      netns_teardown ();
      g_test_skip_printf ("cannot make network namespaces: %s", why);
      return;
    }
  cluster_init (&c, TRUE);
  run_scenario (&c);
  cluster_clear (&c);
  netns_teardown ();
}

/* --- the llama engine: one node and three give the same tokens ------------- */

#define LLAMA_PROMPT "In the"  /* both settings run to max_tokens with it */
#define LLAMA_MAX_TOKENS 64
#define LLAMA_MAX_SESSIONS 8   /* the engine's max-sessions in node-llama.json.in */
/* The tokens of LLAMA_PROMPT in the node's chat template, as the committed
 * tokenizer encodes them (BOS included): usage.prompt_tokens. */
#define LLAMA_PROMPT_TOKENS 9

static char *
llama_request (const char *extra)
{
  return g_strdup_printf ("{\"model\": \"exo-fortunes\", \"messages\": [{\"role\": \"user\", "
                          "\"content\": \"" LLAMA_PROMPT "\"}], \"max_tokens\": %u, %s}",
                          LLAMA_MAX_TOKENS, extra);
}

/* A chat with the llama engine through @n: its content and completion_tokens;
 * fails unless usage.prompt_tokens is LLAMA_PROMPT_TOKENS. */
static gboolean
llama_chat (Cluster    *c,
            Node       *n,
            const char *extra,
            char      **content,
            gint64     *completion_tokens,
            char      **why)
{
  guint status;
  g_autofree char *request = llama_request (extra);
  g_autofree char *body = http (c, n, "POST", "/v1/chat/completions", request, &status);
  g_autoptr(JsonNode) root = parse_json (body);
  JsonObject *o, *choice, *usage;

  if (status != 200 || root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      *why = g_strdup_printf ("HTTP %u: %s", status, body ? body : "(nothing)");
      return FALSE;
    }
  o = json_node_get_object (root);
  choice = json_array_get_object_element (json_object_get_array_member (o, "choices"), 0);
  usage = json_object_get_object_member (o, "usage");
  *content = g_strdup (json_object_get_string_member (
    json_object_get_object_member (choice, "message"), "content"));
  *completion_tokens = json_object_get_int_member (usage, "completion_tokens");
  if (json_object_get_int_member (usage, "prompt_tokens") != LLAMA_PROMPT_TOKENS ||
      json_object_get_int_member (usage, "total_tokens") != LLAMA_PROMPT_TOKENS + *completion_tokens)
    {
      *why = g_strdup_printf ("usage.prompt_tokens is not %d (or total_tokens not the sum): %s",
                              LLAMA_PROMPT_TOKENS, body);
      return FALSE;
    }
  return TRUE;
}

/* Polls until every node in @which uses the same ring of @shards shards;
 * returns it. */
static char *
wait_common_ring (Cluster *c,
                  guint    which,
                  guint    shards,
                  guint    timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  do
    {
      g_autofree char *first = NULL;
      gboolean all = TRUE;

      for (guint i = 0; i < N_NODES && all; i++)
        {
          g_autofree char *got = NULL;

          if (!(which & (1u << i)))
            continue;
          got = node_ring (c, &c->nodes[i]);
          if (got == NULL)
            all = FALSE;
          else if (first == NULL)
            {
              g_auto(GStrv) parts = g_strsplit (got, ",", -1);

              if (g_strv_length (parts) != shards)
                all = FALSE;
              first = g_steal_pointer (&got);
            }
          else if (!g_str_equal (first, got))
            all = FALSE;
        }
      if (all && first != NULL)
        return g_steal_pointer (&first);
      g_usleep (50 * 1000);
    }
  while (g_get_monotonic_time () < deadline);
  return NULL;
}

static void
test_llama_identical (void)
{
  Cluster cl, *c = &cl;
  g_autoptr(GError) error = NULL;
  g_autofree char *why = NULL;
  g_autofree char *ring1 = NULL;
  g_autofree char *ring3 = NULL;
  /* greedy; seeded sampling */
  const char *settings[] = { "\"temperature\": 0",
                             "\"temperature\": 0.8, \"top_p\": 0.9, \"seed\": 42" };
  char *one[G_N_ELEMENTS (settings)] = { NULL }, *three[G_N_ELEMENTS (settings)] = { NULL };
  gint64 one_n[G_N_ELEMENTS (settings)], three_n[G_N_ELEMENTS (settings)];
  gint64 base[N_NODES];
  AsyncCurl held[LLAMA_MAX_SESSIONS] = { { 0 } };
  pid_t stopped = 0;

  cluster_init (c, FALSE);
  c->template_name = "node-llama.json.in";
  for (guint i = 0; i < N_NODES; i++)
    {
      /* distinct from the other cases' node-N and their bus names */
      g_free (c->nodes[i].id);
      c->nodes[i].id = g_strdup_printf ("llama-%u", i + 1);
      g_free (c->nodes[i].bus_name);
      c->nodes[i].bus_name = g_strdup_printf ("org.exo.Test.ClusterLlama.N%u", i + 1);
    }

  CHECK (c->exo_node != NULL && c->plugin_dir != NULL, "EXO_NODE and EXO_TEST_PLUGIN_DIR must be set");
  CHECK (c->tmpdir != NULL, "cannot make a temporary folder");
  CHECK (write_configs (c, 0, 0, &error), "configs: %s", error->message);
  CHECK (start_bus (c, &error), "dbus-daemon: %s", error ? error->message : "?");

  /* 1. One node alone holds every layer. */
  CHECK (start_node (c, &c->nodes[0], &error), "starting llama-1: %s", error->message);
  ring1 = wait_common_ring (c, 0x1, 1, 20000);
  CHECK (ring1 != NULL, "llama-1 alone has no ring of one shard within 20 s");
  g_test_message ("one node: %s", ring1);
  for (guint k = 0; k < G_N_ELEMENTS (settings); k++)
    CHECK (llama_chat (c, &c->nodes[0], settings[k], &one[k], &one_n[k], &why),
           "one node, %s: %s", settings[k], why);

  /* 2. Three nodes: the same requests through llama-1. */
  for (guint i = 1; i < N_NODES; i++)
    CHECK (start_node (c, &c->nodes[i], &error), "starting %s: %s", c->nodes[i].id, error->message);
  CHECK (wait_metric_at_least (c, 0x7, "peers", 2, 20000),
         "the llama nodes did not find each other within 20 s");
  ring3 = wait_common_ring (c, 0x7, 3, 20000);
  CHECK (ring3 != NULL, "no common ring of three shards within 20 s");
  g_test_message ("three nodes: %s", ring3);
  for (guint i = 0; i < N_NODES; i++)
    {
      base[i] = live_node_metric (c, &c->nodes[i], "layers-computed");
      CHECK (base[i] >= 0, "%s: no layers-computed metric", c->nodes[i].id);
    }
  for (guint k = 0; k < G_N_ELEMENTS (settings); k++)
    CHECK (llama_chat (c, &c->nodes[0], settings[k], &three[k], &three_n[k], &why),
           "three nodes, %s: %s", settings[k], why);
  /* Through llama-2, not the first shard: it counts the prompt's tokens
   * with its own engine; the same answer. */
  {
    g_autofree char *text = NULL;
    gint64 n_text = 0;

    CHECK (llama_chat (c, &c->nodes[1], settings[0], &text, &n_text, &why),
           "three nodes through llama-2: %s", why);
    CHECK (n_text == one_n[0] && g_strcmp0 (text, one[0]) == 0,
           "through llama-2: %" G_GINT64_FORMAT " tokens \"%s\"", n_text, text);
  }

  for (guint k = 0; k < G_N_ELEMENTS (settings); k++)
    {
      g_test_message ("%s: %" G_GINT64_FORMAT " tokens: %s", settings[k], one_n[k], one[k]);
      CHECK (one_n[k] == LLAMA_MAX_TOKENS,
             "%s: one node generated %" G_GINT64_FORMAT " tokens, not %d (the prompt ends early)",
             settings[k], one_n[k], LLAMA_MAX_TOKENS);
      CHECK (three_n[k] == one_n[k] && g_strcmp0 (three[k], one[k]) == 0,
             "%s: one node gave %" G_GINT64_FORMAT " tokens \"%s\", three gave %" G_GINT64_FORMAT
             " tokens \"%s\"", settings[k], one_n[k], one[k], three_n[k], three[k]);
    }
  /* the two settings do differ (the seeded run samples) */
  CHECK (g_strcmp0 (one[0], one[1]) != 0, "greedy and seeded sampling gave the same text");
  for (guint i = 0; i < N_NODES; i++)
    {
      gint64 now = live_node_metric (c, &c->nodes[i], "layers-computed");

      CHECK (now > base[i] && now > 0, "%s: layers-computed %" G_GINT64_FORMAT " (was %"
             G_GINT64_FORMAT "): it did not compute its shard", c->nodes[i].id, now, base[i]);
    }

  /* 3. max-sessions: with the middle shard (llama-3) stopped, eight
   * requests through llama-1 hold its engine's eight sessions (their
   * tensors wait on the hop to llama-3); a ninth is answered 429 with
   * Retry-After, not streamed. */
  stopped = subprocess_pid (c->nodes[2].proc);
  CHECK (stopped > 0 && kill (stopped, SIGSTOP) == 0, "cannot stop llama-3");
  for (guint i = 0; i < LLAMA_MAX_SESSIONS; i++)
    {
      g_autofree char *request = llama_request ("\"temperature\": 0");
      g_autoptr(GPtrArray) argv = curl_argv (c, &c->nodes[0], "POST", "/v1/chat/completions",
                                             request, 30);

      held[i].proc = spawn ((const char * const *) argv->pdata, NULL, NULL,
                            G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                            &error);
      CHECK (held[i].proc != NULL, "curl: %s", error->message);
      g_subprocess_communicate_utf8_async (held[i].proc, NULL, NULL, async_curl_done, &held[i]);
    }
  {
    gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
    double sessions;

    while ((sessions = live_resource_metric_double (c, &c->nodes[0], "engine", "sessions"))
           < LLAMA_MAX_SESSIONS && g_get_monotonic_time () < deadline)
      {
        while (g_main_context_iteration (NULL, FALSE))
          ;
        g_usleep (10 * 1000);
      }
    CHECK (sessions >= LLAMA_MAX_SESSIONS, "llama-1's engine holds %g sessions, not %d",
           sessions, LLAMA_MAX_SESSIONS);
  }
  {
    g_autofree char *request = llama_request ("\"temperature\": 0");
    g_autoptr(GPtrArray) argv = curl_argv (c, &c->nodes[0], "POST", "/v1/chat/completions",
                                           request, 10);
    g_autofree char *out = NULL;
    char *body;
    guint status;

    g_ptr_array_insert (argv, 1, g_strdup ("-i"));   /* the head too */
    out = run_capture ((const char * const *) argv->pdata, NULL, NULL);
    body = split_status (out, &status);
    CHECK (status == 429 && body != NULL && strstr (body, "Retry-After: 1\r\n") != NULL &&
           strstr (body, "\"rate_limit_error\"") != NULL &&
           strstr (body, "text/event-stream") == NULL,
           "the request past max-sessions: HTTP %u: %s", status, body);
  }
  CHECK (kill (stopped, SIGCONT) == 0, "cannot continue llama-3");
  stopped = 0;
  {
    gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
    guint done = 0;

    while (done < LLAMA_MAX_SESSIONS && g_get_monotonic_time () < deadline)
      {
        g_main_context_iteration (NULL, FALSE);
        g_usleep (5 * 1000);
        done = 0;
        for (guint i = 0; i < LLAMA_MAX_SESSIONS; i++)
          done += held[i].done;
      }
    CHECK (done == LLAMA_MAX_SESSIONS, "%u of the %d held requests ended within 30 s", done,
           LLAMA_MAX_SESSIONS);
  }
  /* the ring is whole again (it may have dropped llama-3) and answers */
  g_clear_pointer (&ring3, g_free);
  ring3 = wait_common_ring (c, 0x7, 3, 20000);
  CHECK (ring3 != NULL, "no common ring of three shards within 20 s after llama-3 continued");
  {
    g_autofree char *text = NULL;
    gint64 n_text = 0;
    gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
    gboolean ok;

    while (!(ok = llama_chat (c, &c->nodes[0], settings[0], &text, &n_text, &why)) &&
           g_get_monotonic_time () < deadline)
      {
        g_clear_pointer (&why, g_free);
        g_clear_pointer (&text, g_free);
        g_usleep (200 * 1000);
      }
    CHECK (ok && g_strcmp0 (text, one[0]) == 0, "after the 429: %s", why ? why : text);
  }

out:
  if (stopped > 0)
    kill (stopped, SIGCONT);
  for (guint i = 0; i < LLAMA_MAX_SESSIONS; i++)
    if (held[i].proc != NULL)
      {
        end_process (&held[i].proc, SIGKILL, 2000);
        while (!held[i].done)
          g_main_context_iteration (NULL, TRUE);
        g_free (held[i].out);
      }
  for (guint k = 0; k < G_N_ELEMENTS (settings); k++)
    {
      g_free (one[k]);
      g_free (three[k]);
    }
  cluster_clear (c);
}

/* --- security: the cluster key ------------------------------------------------ */

static GSocket *
socket_on (const char  *ip,
           guint16      port,
           GSocketType  type)
{
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string (ip);
  g_autoptr(GSocketAddress) where = g_inet_socket_address_new (address, port);
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, type, 0, NULL);

  if (socket == NULL || !g_socket_bind (socket, where, TRUE, NULL))
    return NULL;
  if (type == G_SOCKET_TYPE_STREAM && !g_socket_listen (socket, NULL))
    return NULL;
  return g_steal_pointer (&socket);
}

static guint16
local_port (GSocket *socket)
{
  g_autoptr(GSocketAddress) local = g_socket_get_local_address (socket, NULL);

  return local != NULL ? g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local)) : 0;
}

static gboolean
send_datagram (GSocket    *socket,
               guint16     port,
               const void *data,
               gsize       length)
{
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new (lo, port);

  return g_socket_send_to (socket, to, data, length, NULL, NULL) == (gssize) length;
}

/* The datagram a holder of @key sends for @message, announcing @addresses
 * (docs/cluster-protocol.md, made here independently of the plugin). */
static char *
seal (ExoClusterKey *key,
      const char    *message,
      const char    *addresses,
      gsize         *out_length)
{
  g_autofree char *nonce = exo_cluster_auth_new_nonce ();
  g_autofree char *prefix = g_strdup_printf ("EXO-AUTH v1 ts=%" G_GINT64_FORMAT " nonce=%s addrs=%s",
                                             g_get_real_time (), nonce, addresses);
  g_autofree char *covered = g_strdup_printf ("exo-discovery-v1\n%s\n%s", prefix, message);
  g_autofree char *mac = exo_cluster_key_sign (key, (const guint8 *) covered, strlen (covered));
  char *datagram = g_strdup_printf ("%s mac=%s\n%s", prefix, mac, message);

  *out_length = strlen (datagram);
  return datagram;
}

static gint64
resource_metric (Cluster    *c,
                 Node       *n,
                 const char *id,
                 const char *key)
{
  g_autoptr(GVariant) m = resource_metrics (c, n, id);

  return metric (m, key);
}

/* Nodes 1 and 2 share the cluster's key, node 3 has another: it never
 * joins them; the attacks of issue 9 against node 1 fail and are counted;
 * with the cluster's key file, node 3 joins. */
static void
test_security (void)
{
  Cluster cl, *c = &cl;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) capture = NULL;
  g_autoptr(GSocket) spoofer = NULL;
  g_autoptr(GSocket) honest = NULL;
  g_autoptr(GSocket) trap = NULL;
  g_autofree char *last = NULL;
  g_autofree char *why = NULL;
  char captured[8192];
  gssize n_captured = 0;
  guint status = 0;
  const guint num_tokens = 10, expected_tokens = num_tokens - 1;

  cluster_init (c, FALSE);
  CHECK (c->exo_node != NULL && c->plugin_dir != NULL, "EXO_NODE and EXO_TEST_PLUGIN_DIR must be set");
  CHECK (c->key_path != NULL, "cannot make a temporary folder");
  {
    g_autoptr(ExoClusterKey) other = exo_cluster_key_new_random ();

    c->nodes[2].key_path = g_build_filename (c->tmpdir, "another.key", NULL);
    CHECK (exo_cluster_key_save (other, c->nodes[2].key_path, &error), "key: %s", error->message);
  }
  /* Node 2 also announces itself to a socket of ours (a capture on the
   * wire); a listener waits where a spoofed copy would point node 1. */
  capture = socket_on ("127.0.0.1", 0, G_SOCKET_TYPE_DATAGRAM);
  spoofer = socket_on ("127.0.0.66", 0, G_SOCKET_TYPE_DATAGRAM);
  honest = socket_on ("127.0.0.1", 0, G_SOCKET_TYPE_DATAGRAM);
  trap = socket_on ("127.0.0.66", c->nodes[1].http_port, G_SOCKET_TYPE_STREAM);
  CHECK (capture != NULL && spoofer != NULL && honest != NULL && trap != NULL,
         "cannot make the test's sockets on 127.0.0.1 and 127.0.0.66");
  g_socket_set_blocking (trap, FALSE);
  c->nodes[1].capture_port = local_port (capture);
  CHECK (write_configs (c, 0, num_tokens, &error), "configs: %s", error->message);
  CHECK (start_bus (c, &error), "dbus-daemon: %s", error ? error->message : "?");
  for (guint i = 0; i < N_NODES; i++)
    CHECK (start_node (c, &c->nodes[i], &error), "starting %s: %s", c->nodes[i].id, error->message);

  /* 1. Nodes 1 and 2 form a ring; node 3, with another key, stays alone. */
  CHECK (wait_ring (c, 0x3, RING_2, 15000, &last), "no ring %s; last: %s", RING_2, last);
  CHECK (wait_ring (c, 0x4, "node-3:0-15", 15000, &last), "node-3 is not alone; last: %s", last);
  CHECK (wait_resource_metric (c, &c->nodes[0], "discovery", "dropped-auth-bad-mac", 1, 10000),
         "node-1 counted no datagram of node-3 as bad-mac");
  CHECK (wait_resource_metric (c, &c->nodes[0], "server", "peer-auth-bad-mac", 1, 10000),
         "node-1 counted no probe of node-3 as bad-mac");
  CHECK (wait_resource_metric (c, &c->nodes[2], "discovery", "static-probe-failures", 1, 10000),
         "node-3 counted no failed probe");
  g_test_message ("node-1: %" G_GINT64_FORMAT " datagrams and %" G_GINT64_FORMAT
                  " peer requests of node-3 refused (bad-mac)",
                  resource_metric (c, &c->nodes[0], "discovery", "dropped-auth-bad-mac"),
                  resource_metric (c, &c->nodes[0], "server", "peer-auth-bad-mac"));

  /* 2. Unsigned peer RPC: 401, counted, the node does nothing. */
  {
    g_autofree char *prompt = g_strdup_printf (
      "{\"shard\": {\"model_id\": \"dummy\", \"start_layer\": 0, \"end_layer\": 14, "
      "\"n_layers\": 16}, \"prompt\": \"hi\", \"request_id\": \"forged\"}");
    g_autofree char *body = http (c, &c->nodes[0], "POST", "/peer/v1/prompt", prompt, &status);

    CHECK (status == 401 && body != NULL && strstr (body, "unauthenticated") != NULL,
           "unsigned /peer/v1/prompt: HTTP %u %s", status, body ? body : "");
  }
  CHECK (wait_resource_metric (c, &c->nodes[0], "server", "peer-auth-missing", 1, 5000),
         "the unsigned peer request was not counted");

  /* 3. A forged datagram (exo's bare message): dropped and counted. */
  {
    g_autofree char *forged = g_strdup_printf (
      "{\"type\": \"discovery\", \"node_id\": \"intruder\", \"grpc_port\": %u, "
      "\"device_capabilities\": {\"memory\": 1048576}}", c->nodes[1].http_port);

    CHECK (send_datagram (honest, c->nodes[0].udp_port, forged, strlen (forged)),
           "cannot send the forged datagram");
  }
  CHECK (wait_resource_metric (c, &c->nodes[0], "discovery", "dropped-auth-missing", 1, 5000),
         "the forged datagram was not counted");

  /* 4. A real datagram of node 2, replayed from a spoofed source. */
  g_socket_set_timeout (capture, 10);
  n_captured = g_socket_receive (capture, captured, sizeof captured, NULL, &error);
  CHECK (n_captured > 0, "no datagram of node-2 captured: %s", error ? error->message : "?");
  CHECK (send_datagram (spoofer, c->nodes[0].udp_port, captured, (gsize) n_captured),
         "cannot send the spoofed datagram");
  CHECK (wait_resource_metric (c, &c->nodes[0], "discovery", "dropped-auth-unannounced-source", 1,
                               5000), "the spoofed datagram was not refused");
  /* The same for a node node-1 does not know yet, pointing at the listener:
   * signed by a key holder, for 127.0.0.1, sent from 127.0.0.66. */
  {
    g_autoptr(ExoClusterKey) key = exo_cluster_key_load (c->key_path, &error);
    g_autofree char *message = NULL;
    g_autofree char *datagram = NULL;
    gsize length = 0;

    CHECK (key != NULL, "cannot read the cluster key: %s", error->message);
    message = g_strdup_printf ("{\"type\": \"discovery\", \"node_id\": \"ghost\", "
                               "\"grpc_port\": %u}", c->nodes[1].http_port);
    datagram = seal (key, message, "127.0.0.1", &length);
    CHECK (send_datagram (spoofer, c->nodes[0].udp_port, datagram, length),
           "cannot send the spoofed datagram");
  }
  CHECK (wait_resource_metric (c, &c->nodes[0], "discovery", "dropped-auth-unannounced-source", 2,
                               5000), "the spoofed datagram of a new node was not refused");
  /* From the right address it is genuine, once; again, it is a replay. */
  CHECK (send_datagram (honest, c->nodes[0].udp_port, captured, (gsize) n_captured) &&
         send_datagram (honest, c->nodes[0].udp_port, captured, (gsize) n_captured),
         "cannot replay the datagram");
  CHECK (wait_resource_metric (c, &c->nodes[0], "discovery", "dropped-auth-replay", 1, 5000),
         "the replayed datagram was not refused");

  /* 5. Nobody connected to where the spoofed copy pointed. */
  g_usleep (3 * G_USEC_PER_SEC);
  {
    g_autoptr(GSocket) probe = g_socket_accept (trap, NULL, NULL);

    CHECK (probe == NULL, "node-1 connected to 127.0.0.66:%u, the spoofed source",
           c->nodes[1].http_port);
  }

  /* 6. The ring is as it was; it computes. */
  CHECK (wait_ring (c, 0x3, RING_2, 5000, &last), "the ring changed; last: %s", last);
  CHECK (node_metric (c, &c->nodes[0], "peers") == 1, "node-1 has %" G_GINT64_FORMAT " peers",
         node_metric (c, &c->nodes[0], "peers"));
  CHECK (chat_ok (c, &c->nodes[0], expected_tokens, &why), "chat on nodes 1 and 2: %s", why);

  /* 7. Node 3 gets the cluster's key file (an operator copies it) and joins. */
  CHECK (end_process (&c->nodes[2].proc, SIGTERM, 10000), "node-3 did not stop");
  {
    g_autofree char *text = NULL;

    CHECK (g_file_get_contents (c->key_path, &text, NULL, &error) &&
           g_file_set_contents (c->nodes[2].key_path, text, -1, &error),
           "copying the key: %s", error->message);
    g_chmod (c->nodes[2].key_path, 0600);
  }
  CHECK (start_node (c, &c->nodes[2], &error), "restarting node-3: %s", error->message);
  CHECK (wait_ring (c, 0x7, RING_3, 20000, &last), "node-3 did not join with the key; last: %s",
         last);
  CHECK (chat_ok (c, &c->nodes[0], expected_tokens, &why), "chat on three nodes: %s", why);

  /* 8. Node-1's peer requests carry its node id (the daemon's, from the
   * config) in X-Exo-Node-Id: a genuine announcement of a node "listener"
   * at a socket of ours, and the first request node-1 sends there. */
  {
    g_autoptr(GSocket) listener = socket_on ("127.0.0.1", 0, G_SOCKET_TYPE_STREAM);
    g_autoptr(GSocket) conn = NULL;
    g_autoptr(ExoClusterKey) key = exo_cluster_key_load (c->key_path, &error);
    g_autofree char *message = NULL;
    g_autofree char *datagram = NULL;
    char request[8192] = { 0, };
    gsize length = 0, got = 0;

    CHECK (listener != NULL && key != NULL, "cannot listen or read the key");
    message = g_strdup_printf ("{\"type\": \"discovery\", \"node_id\": \"listener\", "
                               "\"grpc_port\": %u}", local_port (listener));
    datagram = seal (key, message, "127.0.0.1", &length);
    CHECK (send_datagram (honest, c->nodes[0].udp_port, datagram, length),
           "cannot announce the listener");
    g_socket_set_timeout (listener, 10);
    conn = g_socket_accept (listener, NULL, &error);
    CHECK (conn != NULL, "node-1 did not connect to the listener: %s", error->message);
    g_socket_set_timeout (conn, 10);
    while (got < sizeof request - 1 && strstr (request, "\r\n\r\n") == NULL)
      {
        gssize r = g_socket_receive (conn, request + got, sizeof request - 1 - got, NULL, NULL);

        if (r <= 0)
          break;
        got += (gsize) r;
      }
    CHECK (g_strstr_len (request, -1, "\r\nX-Exo-Node-Id: node-1\r\n") != NULL,
           "node-1's peer request has not its node id: %s", request);
  }

out:
  cluster_clear (c);
}

/* --- the node in this process ---------------------------------------------- */

static ExoPluginLoader *loader;

static gboolean
load_plugins (void)
{
  const char *dir = g_getenv ("EXO_TEST_PLUGIN_DIR");
  /* Not http-server: /cluster/node/no-peer-type needs no peer handle provider. */
  const char *names[] = { "dummy-inference", "udp-discovery", "node" };

  if (loader != NULL)
    return TRUE;
  if (dir == NULL)
    return FALSE;
  loader = exo_plugin_loader_new ();
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *file = g_strdup_printf ("libexo-plugin-%s.so", names[i]);
      g_autofree char *path = g_build_filename (dir, names[i], file, NULL);
      g_autoptr(GError) error = NULL;

      if (exo_plugin_loader_load_file (loader, path, &error) == NULL)
        {
          g_test_message ("%s", error->message);
          g_clear_object (&loader);
          return FALSE;
        }
    }
  return TRUE;
}

static ExoResource *
make (const char *type_name,
      const char *id,
      const char *first_property,
      ...)
{
  GType type = exo_plugin_loader_lookup_type (loader, type_name);
  GObject *object;
  va_list args;

  g_assert (type != G_TYPE_INVALID);
  object = g_object_new (type, "id", id, NULL);
  va_start (args, first_property);
  if (first_property != NULL)
    g_object_set_valist (object, first_property, args);
  va_end (args);
  return EXO_RESOURCE (object);
}

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_for (GAsyncResult **slot)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (*slot == NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (*slot);
  return *slot;
}

static gboolean
initialize (ExoResource *r,
            GError     **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  exo_resource_initialize_async (r, NULL, store_result, &result);
  return exo_resource_initialize_finish (r, wait_for (&result), error);
}

static void
cleanup (ExoResource *r)
{
  g_autoptr(GAsyncResult) result = NULL;

  exo_resource_cleanup_async (r, NULL, store_result, &result);
  exo_resource_cleanup_finish (r, wait_for (&result), NULL);
}

typedef struct {
  GString *text;
  guint    calls;
  gsize    tokens;
  gboolean finished;
  gboolean after_finish;
  ExoChatResult *result;   /* of the last chat that succeeded */
} Tokens;

static void
on_token (const char   *request_id,
          const gint32 *tokens,
          gsize         n_tokens,
          const char   *text,
          gboolean      is_finished,
          gpointer      user_data)
{
  Tokens *t = user_data;

  if (t->finished)
    t->after_finish = TRUE;
  t->calls++;
  t->tokens += n_tokens;
  g_string_append (t->text, text);
  t->finished = is_finished;
}

static char *
chat_with (ExoResource                *node,
           const char                 *model,
           const char                 *request_id,
           const ExoGenerationParams  *params,
           Tokens                     *tokens,
           GCancellable               *cancellable,
           GError                    **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  ExoChatResult *chat;

  exo_node_role_chat_async (EXO_NODE_ROLE (node), model, "hello", request_id, params, on_token,
                            tokens, NULL, cancellable, store_result, &result);
  chat = exo_node_role_chat_finish (EXO_NODE_ROLE (node), wait_for (&result), error);
  if (chat == NULL)
    return NULL;
  g_clear_pointer (&tokens->result, exo_chat_result_free);
  tokens->result = chat;
  return g_strdup (exo_chat_result_get_text (chat));
}

static char *
chat (ExoResource   *node,
      const char    *model,
      const char    *request_id,
      Tokens        *tokens,
      GCancellable  *cancellable,
      GError       **error)
{
  return chat_with (node, model, request_id, NULL, tokens, cancellable, error);
}

static double
local_metric_double (ExoResource *r,
                     const char  *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (r);
  double value = -2;

  g_variant_lookup (metrics, key, "d", &value);
  return value;
}

static gint64
local_metric (ExoResource *r,
              const char  *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (r);

  return metric (metrics, key);
}

static void
spin_ms (guint ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;

  while (g_get_monotonic_time () < end)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
}

static gboolean
cancel_soon (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

/* One node alone: the whole model is its shard. */
static void
test_node_single (void)
{
  g_autoptr(ExoResourceGroup) root = NULL;
  g_autoptr(ExoResource) engine = NULL;
  g_autoptr(ExoResource) node = NULL;
  g_autoptr(GError) error = NULL;
  ExoNodeRole *role;
  Tokens t = { g_string_new (NULL) };
  g_autofree char *text = NULL;
  g_autoptr(GVariant) value = NULL;

  if (!load_plugins ())
    {
      g_test_skip ("plugins not found (EXO_TEST_PLUGIN_DIR)");
      g_string_free (t.text, TRUE);
      return;
    }
  root = exo_resource_group_new ("root");
  engine = make ("dummy-inference", "engine", "num-generate-tokens", 5, NULL);
  node = make ("node", "node", "discovery", "", "server", "", "node-id", "solo",
               "n-layers", 8, "device-memory-mib", (guint64) 1000, NULL);
  g_assert_true (exo_resource_group_add (root, engine, NULL, NULL));
  g_assert_true (exo_resource_group_add (root, node, (const char *[]) { "engine", NULL }, NULL));
  g_assert_true (initialize (EXO_RESOURCE (root), &error));
  g_assert_no_error (error);
  role = EXO_NODE_ROLE (node);
  g_assert_cmpstr (exo_node_role_get_node_id (role), ==, "solo");

  /* Tokens 2..5, then EOS: four "dummy", streamed, then finished once. */
  text = chat (node, "dummy", "r1", &t, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, "dummydummydummydummy");
  g_assert_cmpstr (t.text->str, ==, text);
  g_assert_cmpuint (t.tokens, ==, 4);
  g_assert_true (t.finished);
  g_assert_false (t.after_finish);
  /* EOS before max-tokens: "stop"; the prompt's tokens were counted */
  g_assert_cmpstr (exo_chat_result_get_finish_reason (t.result), ==, "stop");
  g_assert_cmpint (exo_chat_result_get_completion_tokens (t.result), ==, 4);
  g_assert_cmpint (exo_chat_result_get_prompt_tokens (t.result), >, 0);
  g_assert_cmpint (local_metric (node, "requests"), ==, 1);
  g_assert_cmpint (local_metric (node, "tokens-generated"), ==, 4);
  g_assert_cmpint (local_metric (node, "layers-computed"), ==, 5);
  g_assert_cmpint (local_metric (node, "shard-start"), ==, 0);
  g_assert_cmpint (local_metric (node, "shard-end"), ==, 7);
  g_assert_cmpint (local_metric (node, "requests-in-flight"), ==, 0);

  /* The request's max_tokens when it is below the node's max-tokens (64);
   * the engine samples with its temperature and top_p. */
  {
    g_autoptr(ExoGenerationParams) params = exo_generation_params_new ();

    params->max_tokens = 2;
    params->temperature = 0.75;
    params->top_p = 0.5;
    params->has_seed = TRUE;
    params->seed = 11;
    g_string_truncate (t.text, 0);
    t.tokens = 0;
    t.finished = FALSE;
    g_clear_pointer (&text, g_free);
    text = chat_with (node, "dummy", "r1-params", params, &t, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (text, ==, "dummydummy");
    g_assert_cmpuint (t.tokens, ==, 2);
    g_assert_true (t.finished);
    /* stopped at the request's max_tokens */
    g_assert_cmpstr (exo_chat_result_get_finish_reason (t.result), ==, "length");
    g_assert_cmpint (exo_chat_result_get_completion_tokens (t.result), ==, 2);
    g_assert_cmpfloat (local_metric_double (engine, "last-sample-temperature"), ==, 0.75);
    g_assert_cmpfloat (local_metric_double (engine, "last-sample-top-p"), ==, 0.5);

    /* the node's max-tokens when it is the smaller */
    g_object_set (node, "max-tokens", 3, NULL);
    params->max_tokens = 10;
    g_clear_pointer (&text, g_free);
    text = chat_with (node, "dummy", "r1-capped", params, &t, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (text, ==, "dummydummydummy");
    g_assert_cmpstr (exo_chat_result_get_finish_reason (t.result), ==, "length");
    g_object_set (node, "max-tokens", 64, NULL);

    /* none given: greedy (temperature 0, top_p 1), the node's max-tokens */
    g_clear_pointer (&text, g_free);
    text = chat_with (node, "dummy", "r1-defaults", NULL, &t, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (text, ==, "dummydummydummydummy");
    g_assert_cmpstr (exo_chat_result_get_finish_reason (t.result), ==, "stop");
    g_assert_cmpfloat (local_metric_double (engine, "last-sample-temperature"), ==, 0);
    g_assert_cmpfloat (local_metric_double (engine, "last-sample-top-p"), ==, 1);

    /* what the peer RPC would refuse is refused here too */
    params->temperature = 2.5;
    g_clear_pointer (&text, g_free);
    text = chat_with (node, "dummy", "r1-bad", params, &t, NULL, &error);
    g_assert_null (text);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "temperature"));
    g_clear_error (&error);
    params->temperature = 1;
    params->top_p = 0;
    {
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(ExoShard) shard = exo_shard_new ("dummy", 0, 7, 8);
      const gint32 one = 1;
      g_autoptr(ExoTensor) tensor = exo_tensor_new_int32 (&one, 1);

      exo_node_role_process_tensor_async (role, shard, tensor, "r1-bad-tensor", params, NULL,
                                          store_result, &result);
      g_assert_false (exo_node_role_process_tensor_finish (role, wait_for (&result), &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, "top_p"));
      g_clear_error (&error);
    }
  }

  /* Without a model name: the one served. */
  g_clear_pointer (&text, g_free);
  text = chat (node, NULL, NULL, &t, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, "dummydummydummydummy");

  /* Another model: 404-worthy, named. */
  g_clear_pointer (&text, g_free);
  text = chat (node, "llama-3-8b", "r2", &t, NULL, &error);
  g_assert_null (text);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "llama-3-8b"));
  g_clear_error (&error);

  /* The topology and the models, typed (EXO_NODE_ROLE_*_TYPE). */
  value = exo_node_role_get_topology (role, &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) shards = g_variant_lookup_value (value, "shards", G_VARIANT_TYPE ("a(ssuuu)"));
    g_autoptr(GVariant) nodes = g_variant_lookup_value (value, "nodes", G_VARIANT_TYPE ("a{sa{sv}}"));
    g_autoptr(GVariant) caps = NULL;
    const char *node_id;
    guint64 memory = 0;

    g_assert_true (g_variant_lookup (value, "node-id", "&s", &node_id));
    g_assert_cmpstr (node_id, ==, "solo");
    g_assert_nonnull (shards);
    g_assert_cmpuint (g_variant_n_children (shards), ==, 1);
    g_assert_nonnull (nodes);
    caps = g_variant_lookup_value (nodes, "solo", G_VARIANT_TYPE_VARDICT);
    g_assert_nonnull (caps);
    g_assert_true (g_variant_lookup (caps, "memory", "t", &memory));
    g_assert_cmpuint (memory, ==, 1000);
  }
  g_clear_pointer (&value, g_variant_unref);
  value = exo_node_role_list_models (role, &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) model = g_variant_get_child_value (value, 0);
    const char *id;
    guint32 n_layers;

    g_assert_true (g_variant_lookup (model, "id", "&s", &id));
    g_assert_cmpstr (id, ==, "dummy");
    g_assert_true (g_variant_lookup (model, "n-layers", "u", &n_layers));
    g_assert_cmpuint (n_layers, ==, 8);
  }
  g_clear_pointer (&value, g_variant_unref);
  {
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(GVariant) nodes = NULL;
    const char *visited[] = { "someone", NULL };

    exo_node_role_collect_topology_async (role, visited, 2, NULL, store_result, &result);
    value = exo_node_role_collect_topology_finish (role, wait_for (&result), &error);
    g_assert_no_error (error);
    nodes = g_variant_lookup_value (value, "nodes", G_VARIANT_TYPE ("a{sa{sv}}"));
    g_assert_nonnull (nodes);
    g_assert_cmpuint (g_variant_n_children (nodes), ==, 1);
    /* a peer's answer has no view of the ring */
    g_assert_false (g_variant_lookup (value, "shards", "*", NULL));
    g_clear_pointer (&value, g_variant_unref);
  }

  /* A peer's tensor for another model is refused. */
  {
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(ExoShard) shard = exo_shard_new ("other", 0, 3, 4);
    const gint32 one = 1;
    g_autoptr(ExoTensor) tensor = exo_tensor_new_int32 (&one, 1);

    exo_node_role_process_tensor_async (role, shard, tensor, "r3", NULL, NULL, store_result, &result);
    g_assert_false (exo_node_role_process_tensor_finish (role, wait_for (&result), &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
  }

  /* Cancelled by the caller while in flight. */
  g_object_set (engine, "latency-ms", 50, NULL);
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    g_timeout_add (20, cancel_soon, cancellable);
    g_clear_pointer (&text, g_free);
    text = chat (node, "dummy", "r4", &t, cancellable, &error);
    g_assert_null (text);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
  }

  /* No progress within request-timeout-ms: a clear timeout. */
  g_object_set (engine, "latency-ms", 400, NULL);
  g_object_set (node, "request-timeout-ms", 100, NULL);
  g_clear_pointer (&text, g_free);
  text = chat (node, "dummy", "r5", &t, NULL, &error);
  g_assert_null (text);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, "request r5: no progress for 100 ms"));
  g_clear_error (&error);
  /* The timeout; neither the refused model nor the cancellation counts. */
  g_assert_cmpint (local_metric (node, "failed-requests"), ==, 1);
  /* Let the engine's late answers come back to a forgotten request. */
  spin_ms (600);

  cleanup (EXO_RESOURCE (root));
  g_string_free (t.text, TRUE);
  g_clear_pointer (&t.result, exo_chat_result_free);
}

static ExoResource *
make_discovery (const char *node_id)
{
  guint16 port = free_port (G_SOCKET_TYPE_DATAGRAM);
  g_autofree char *sink = g_strdup_printf ("127.0.0.1:%u", free_port (G_SOCKET_TYPE_DATAGRAM));
  const char *targets[] = { sink, NULL };

  /* Loopback only: no broadcast leaves this host. */
  return make ("udp-discovery", "discovery", "node-id", node_id, "port", (guint) port,
               "listen-address", "127.0.0.1", "broadcast-addresses", targets, NULL);
}

/* The node and its discovery must use one id. */
static void
test_node_id_mismatch (void)
{
  g_autoptr(ExoResourceGroup) root = NULL;
  g_autoptr(GError) error = NULL;

  if (!load_plugins ())
    {
      g_test_skip ("plugins not found (EXO_TEST_PLUGIN_DIR)");
      return;
    }
  root = exo_resource_group_new ("root");
  {
    g_autoptr(ExoResource) engine = make ("dummy-inference", "engine", NULL);
    g_autoptr(ExoResource) discovery = make_discovery ("alpha");
    g_autoptr(ExoResource) node = make ("node", "node", "server", "", "node-id", "beta", NULL);

    exo_resource_group_add (root, engine, NULL, NULL);
    exo_resource_group_add (root, discovery, NULL, NULL);
    exo_resource_group_add (root, node, (const char *[]) { "engine", "discovery", NULL }, NULL);
  }
  g_assert_false (initialize (EXO_RESOURCE (root), &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "node-id 'beta' differs from the node id 'alpha'"));
  cleanup (EXO_RESOURCE (root));
}

/* Without the http-server plugin no plugin provides peer handles: a node
 * with a discovery (which finds peers) fails to initialize and says why. */
static void
test_node_no_peer_type (void)
{
  g_autoptr(ExoResourceGroup) root = NULL;
  g_autoptr(ExoResource) discovery = NULL;
  g_autoptr(ExoResource) node = NULL;
  g_autoptr(GError) error = NULL;
  const GError *last;

  if (!load_plugins ())
    {
      g_test_skip ("plugins not found (EXO_TEST_PLUGIN_DIR)");
      return;
    }
  if (exo_plugin_lookup_role (EXO_TYPE_PEER_HANDLE) != G_TYPE_INVALID)
    {
      g_test_skip ("a peer handle type is provided in this process");
      return;
    }
  root = exo_resource_group_new ("root");
  {
    g_autoptr(ExoResource) engine = make ("dummy-inference", "engine", NULL);

    discovery = make_discovery ("gamma");
    node = make ("node", "node", "server", "", NULL);
    exo_resource_group_add (root, engine, NULL, NULL);
    exo_resource_group_add (root, discovery, NULL, NULL);
    exo_resource_group_add (root, node, (const char *[]) { "engine", "discovery", NULL }, NULL);
  }
  g_assert_false (initialize (EXO_RESOURCE (root), &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  g_assert_cmpint (exo_resource_get_state (node), ==, EXO_RESOURCE_STATE_ERROR);
  last = exo_resource_get_last_error (node);
  g_assert_nonnull (last);
  g_assert_nonnull (strstr (last->message,
                            "no plugin provides peer handles (ExoPeerHandle); "
                            "load the http-server plugin"));
  cleanup (EXO_RESOURCE (root));
}

/* The node plugin's operator messages stay out of the test output (and a
 * warning is not fatal here); everything else as usual. */
static GLogWriterOutput
quiet_writer (GLogLevelFlags   level,
              const GLogField *fields,
              gsize            n_fields,
              gpointer         user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0 &&
        g_strcmp0 (fields[i].value, "exo-node-plugin") == 0 &&
        !(level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR)))
      return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, user_data);
}

int
main (int argc, char **argv)
{
  g_autofree char *ip = NULL;

  g_test_init (&argc, &argv, NULL);

  ip = g_find_program_in_path ("ip");
  if (ip == NULL && g_file_test ("/usr/sbin/ip", G_FILE_TEST_IS_EXECUTABLE))
    ip = g_strdup ("/usr/sbin/ip");
  if (ip != NULL)
    g_strlcpy (ip_path, ip, sizeof ip_path);
  for (guint i = 0; i < N_NETNS; i++)
    {
      if (i < N_NODES)
        g_snprintf (netns_names[i], sizeof netns_names[i], "exo-t%u-%d", i + 1, (int) getpid ());
      else
        g_snprintf (netns_names[i], sizeof netns_names[i], "exo-tbr-%d", (int) getpid ());
    }
  install_crash_handlers ();

  g_log_set_writer_func (quiet_writer, NULL, NULL);
  /* the key of the nodes made in this process (/cluster/node/...) */
  {
    g_autoptr(ExoClusterKey) key = exo_cluster_key_new_random ();

    exo_cluster_key_set_default (key);
  }

  g_test_add_func ("/cluster/node/single", test_node_single);
  g_test_add_func ("/cluster/node/id-mismatch", test_node_id_mismatch);
  g_test_add_func ("/cluster/node/no-peer-type", test_node_no_peer_type);
  g_test_add_func ("/cluster/loopback", test_loopback);
  g_test_add_func ("/cluster/loopback/security", test_security);
  g_test_add_func ("/cluster/llama/identical", test_llama_identical);
  g_test_add_func ("/cluster/netns", test_netns);

  {
    int rc = g_test_run ();

    g_clear_object (&loader);
    return rc;
  }
}
