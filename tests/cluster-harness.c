/* cluster-harness.c: three exo-node processes as one cluster (see
 * cluster-harness.h): processes, configs, the private bus, metrics, HTTP
 * through curl, rings, network namespaces.
 *
 * Every process gets PR_SET_PDEATHSIG and is tracked for the crash
 * handler, which kills them and removes the namespaces; namespaces of runs
 * that died are removed at the next start (their PID suffix is gone).
 *
 * Thread rules: one thread, the test's.  The crash handler uses only
 * async-signal-safe calls (kill, fork, execv, waitpid).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cluster-harness.h"

#include <glib/gstdio.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

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

void
untrack_pid (pid_t pid)
{
  for (guint i = 0; i < MAX_PIDS; i++)
    if (live_pids[i] == pid)
      live_pids[i] = 0;
}

void
harness_init (void)
{
  g_autofree char *ip = g_find_program_in_path ("ip");

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
}

/* --- processes ----------------------------------------------------------- */

static void
child_setup (gpointer user_data)
{
  /* Die with the test, whatever happens to it. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

pid_t
subprocess_pid (GSubprocess *proc)
{
  const char *id = g_subprocess_get_identifier (proc);

  return id != NULL ? (pid_t) g_ascii_strtoll (id, NULL, 10) : 0;
}

GSubprocess *
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
gboolean
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
gboolean
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
char *
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

gboolean
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

guint16
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

gboolean
write_configs (Cluster *c,
               guint    latency_ms,
               guint    num_tokens,
               GError **error)
{
  g_autofree char *template_path = g_test_build_filename (G_TEST_DIST, "configs-cluster",
                                                          c->template_name != NULL
                                                          ? c->template_name : "node.json.in",
                                                          NULL);
  g_autofree char *model = c->model != NULL ? g_strdup (c->model)
    : g_test_build_filename (G_TEST_DIST, "..", "data", "models", "exo-fortunes.bin", NULL);
  g_autofree char *tokenizer = c->tokenizer != NULL ? g_strdup (c->tokenizer)
    : g_test_build_filename (G_TEST_DIST, "..", "data", "models", "tokenizer-fortunes.bin", NULL);
  g_autofree char *node_max_tokens = g_strdup_printf ("%u", c->node_max_tokens != 0
                                                      ? c->node_max_tokens : 64);
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
          "@MODEL@", n->model != NULL ? n->model : model,
          "@TOKENIZER@", tokenizer,
          "@MODEL_ID@", c->model_id != NULL ? c->model_id : "exo-fortunes",
          "@NODE_MAX_TOKENS@", node_max_tokens,
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

gboolean
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

gboolean
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
GVariant *
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

gint64
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

gint64
node_metric (Cluster    *c,
             Node       *n,
             const char *key)
{
  g_autoptr(GVariant) m = resource_metrics (c, n, "node");

  return metric (m, key);
}

/* Polls until metric @key of resource @id of @n is at least @min. */
gboolean
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
GPtrArray *
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
char *
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

char *
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

JsonNode *
parse_json (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();

  if (text == NULL || !json_parser_load_from_data (parser, text, -1, NULL) ||
      json_parser_get_root (parser) == NULL)
    return NULL;
  return json_node_copy (json_parser_get_root (parser));
}

/* The ring a node uses, "a:0-7,b:8-15", from GET /v1/topology. */
char *
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
gboolean
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
gboolean
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

/* A double metric of resource @id of @n as its GET /metrics has it now;
 * NAN if none. */
double
live_resource_metric_double (Cluster    *c,
                             Node       *n,
                             const char *id,
                             const char *name)
{
  guint status = 0;
  g_autofree char *text = http (c, n, "GET", "/metrics", NULL, &status);
  g_autofree char *needle = g_strdup_printf ("\n%s{id=\"%s\"} ", name, id);
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

void
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

gboolean
netns_begin (char **why)
{
  g_autofree char *reason = NULL;

  if (geteuid () != 0)
    {
      *why = g_strdup ("network namespaces need root");
      return FALSE;
    }
  if (ip_path[0] == '\0')
    {
      *why = g_strdup ("no `ip` command (iproute2)");
      return FALSE;
    }
  if (!netns_setup (&reason))
    {
      netns_teardown ();
      *why = g_strdup_printf ("cannot make network namespaces (`ip netns` not permitted?): %s",
                              reason);
      return FALSE;
    }
  return TRUE;
}

void
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

void
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


/* Sample @name{id="node"} of the node resource as its server's GET
 * /metrics has it now (the D-Bus property is polled once a second: too late here); -1 if none. */
gint64
live_metric (const char *metrics_text,
             const char *name)
{
  g_autofree char *needle = g_strdup_printf ("\n%s{id=\"node\"} ", name);
  const char *at = metrics_text != NULL ? strstr (metrics_text, needle) : NULL;

  return at != NULL ? g_ascii_strtoll (at + strlen (needle), NULL, 10) : -1;
}

gint64
live_node_metric (Cluster    *c,
                  Node       *n,
                  const char *name)
{
  guint status = 0;
  g_autofree char *text = http (c, n, "GET", "/metrics", NULL, &status);

  return status == 200 ? live_metric (text, name) : -1;
}

void
async_curl_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  AsyncCurl *ac = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &ac->out, NULL, NULL);
  ac->done_us = g_get_monotonic_time ();
  ac->done = TRUE;
}

/* Polls until every node in @which uses the same ring of @shards shards;
 * returns it. */
char *
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

gint64
resource_metric (Cluster    *c,
                 Node       *n,
                 const char *id,
                 const char *key)
{
  g_autoptr(GVariant) m = resource_metrics (c, n, id);

  return metric (m, key);
}

