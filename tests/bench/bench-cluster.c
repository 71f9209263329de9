/* bench-cluster.c: what the cluster costs and how fast it notices a loss.
 *
 *   peer_rtt_p50_us, peer_rtt_p99_us  health check round trips (GET
 *                          /peer/v1/health) through an ExoHttpPeer in this
 *                          process to an exo-node on 127.0.0.1; median over
 *                          rounds of 1000 of each round's percentile, µs
 *   chat_tokens_per_s      a streamed chat completion sent to node 1 of three
 *                          exo-node processes on loopback (dummy engine, no
 *                          latency, 59 tokens), tokens / (last byte − send)
 *   chat_ttft_ms           the same requests: send → first token, ms
 *   peer_failure_detect_ms SIGKILL of node 3 → both other nodes count it
 *                          failed (their `peers-failed` metric on D-Bus), ms;
 *                          extra field `silent_ms`: the same for SIGSTOP (no
 *                          RST, only timeouts tell)
 *   cluster_decode_ratio   tokens/s through a ring of three exo-node
 *                          processes on loopback divided by one node's,
 *                          the llama engine on bench-llama.c's
 *                          stories15M-shaped float32 checkpoint (1152-byte
 *                          activations a hop); greedy streamed chats of 128
 *                          tokens, tokens after the first / (the [DONE]
 *                          event − the first token); the two clusters run
 *                          at once and their chats alternate; median of the
 *                          per-pair ratios (each rate in the JSON line,
 *                          and the CPU time of the nodes per token, which
 *                          the machine's load moves less)
 *
 * The nodes run from the build tree (exo-bench is in <build>/tests/bench)
 * on a private bus (GTestDBus), with PR_SET_PDEATHSIG; HTTP is spoken on a
 * plain socket so that the benchmark needs GIO only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bench.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define N_NODES 3
#define RTT_ROUNDS 5
#define RTT_PER_ROUND 1000
#define CHAT_RUNS 9
#define CHAT_TOKENS 60          /* the dummy engine's num-generate-tokens */
#define KILL_RUNS 5
#define STOP_RUNS 3

/* --- processes ----------------------------------------------------------- */

static char *
build_path (const char *relative)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = g_path_get_dirname (self);

  return g_build_filename (dir, "..", "..", relative, NULL);
}

static void
child_setup (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static guint16
free_port (GSocketType type)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, type, 0, NULL);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  if (socket == NULL || !g_socket_bind (socket, any, FALSE, NULL))
    g_error ("no free port");
  bound = g_socket_get_local_address (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

typedef struct {
  char        *id;
  char        *bus_name;
  char        *config;
  guint16      http_port;
  guint16      udp_port;
  GSubprocess *proc;
} BenchNode;

typedef struct {
  GTestDBus       *bus;
  GDBusConnection *client;
  char            *tmpdir;
  ExoClusterKey   *key;           /* shared by the nodes (and the in-process peer) */
  char            *key_path;
  BenchNode        nodes[N_NODES];
  guint            n_nodes;
} BenchCluster;

static void
node_spawn (BenchCluster *c,
            BenchNode    *n)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autofree char *exo_node = build_path ("src/daemon/exo-node");
  g_autofree char *plugins = build_path ("plugins");
  g_autoptr(GError) error = NULL;

  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS",
                                g_test_dbus_get_bus_address (c->bus), TRUE);
  g_subprocess_launcher_unsetenv (launcher, "EXO_NODE_ID");
  /* the node-id file goes to the build tree, not to the user's state folder */
  g_subprocess_launcher_setenv (launcher, "STATE_DIRECTORY", plugins, TRUE);
  n->proc = g_subprocess_launcher_spawn (launcher, &error, exo_node, "--config", n->config,
                                         "--plugin-dir", plugins, "--bus-name", n->bus_name,
                                         "--session", NULL);
  if (n->proc == NULL)
    g_error ("cannot run %s: %s", exo_node, error->message);
}

static void
node_end (BenchNode *n,
          int        sig)
{
  if (n->proc == NULL)
    return;
  g_subprocess_send_signal (n->proc, sig);
  if (!g_subprocess_wait (n->proc, NULL, NULL))
    g_subprocess_force_exit (n->proc);
  g_clear_object (&n->proc);
}

/* Three nodes with static peers (or one, with no discovery); @engine is
 * the engine resource's JSON, @node_settings more settings of the node
 * ("" or "\"key\": value, "). */
static BenchCluster *
cluster_start_with (guint       n_nodes,
                    const char *engine,
                    const char *node_settings)
{
  BenchCluster *c = g_new0 (BenchCluster, 1);

  c->n_nodes = n_nodes;
  c->tmpdir = g_dir_make_tmp ("exo-bench-cluster-XXXXXX", NULL);
  c->key = exo_cluster_key_new_random ();
  c->key_path = g_build_filename (c->tmpdir, "cluster.key", NULL);
  if (!exo_cluster_key_save (c->key, c->key_path, NULL))
    g_error ("cannot write %s", c->key_path);
  c->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (c->bus);
  c->client = g_dbus_connection_new_for_address_sync (g_test_dbus_get_bus_address (c->bus),
                                                      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                      G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                      NULL, NULL, NULL);
  g_assert (c->client != NULL);

  for (guint i = 0; i < n_nodes; i++)
    {
      c->nodes[i].id = g_strdup_printf ("bench-%u", i + 1);
      c->nodes[i].bus_name = g_strdup_printf ("org.exo.Bench.Cluster.N%u", i + 1);
      c->nodes[i].http_port = free_port (G_SOCKET_TYPE_STREAM);
      c->nodes[i].udp_port = free_port (G_SOCKET_TYPE_DATAGRAM);
    }
  for (guint i = 0; i < n_nodes; i++)
    {
      BenchNode *n = &c->nodes[i];
      g_autoptr(GString) statics = g_string_new (NULL);
      g_autoptr(GString) broadcast = g_string_new (NULL);
      g_autofree char *json = NULL;
      guint64 memory = i == 0 ? 4096 : 2048;

      for (guint j = 0; j < n_nodes; j++)
        if (j != i)
          {
            g_string_append_printf (statics, "%s\"127.0.0.1:%u\"", statics->len ? ", " : "",
                                    c->nodes[j].http_port);
            g_string_append_printf (broadcast, "%s\"127.0.0.1:%u\"", broadcast->len ? ", " : "",
                                    c->nodes[j].udp_port);
          }
      if (n_nodes == 1)
        json = g_strdup_printf (
          "{ \"node\": { \"id\": \"%s\", \"cluster-key-file\": \"%s\" }, \"resources\": ["
          " %s,"
          " { \"id\": \"server\", \"type\": \"http-server\","
          "   \"settings\": { \"port\": %u, \"listen-address\": \"127.0.0.1\" } },"
          " { \"id\": \"node\", \"type\": \"node\", \"depends-on\": [\"engine\", \"server\"],"
          "   \"settings\": { %s\"node-id\": \"%s\", \"discovery\": \"\" } } ] }",
          n->id, c->key_path, engine, n->http_port, node_settings, n->id);
      else
        json = g_strdup_printf (
          "{ \"node\": { \"id\": \"%s\", \"cluster-key-file\": \"%s\" }, \"resources\": ["
          " %s,"
          " { \"id\": \"server\", \"type\": \"http-server\","
          "   \"settings\": { \"port\": %u, \"listen-address\": \"127.0.0.1\" } },"
          " { \"id\": \"discovery\", \"type\": \"udp-discovery\", \"depends-on\": [\"server\"],"
          "   \"settings\": { \"node-id\": \"%s\", \"port\": %u, \"listen-address\": \"127.0.0.1\","
          "     \"server-port\": %u, \"device-memory\": %" G_GUINT64_FORMAT ","
          "     \"static-peers\": [%s], \"broadcast-addresses\": [%s] } },"
          " { \"id\": \"node\", \"type\": \"node\","
          "   \"depends-on\": [\"engine\", \"server\", \"discovery\"],"
          "   \"settings\": { %s\"node-id\": \"%s\", \"device-memory-mib\": %" G_GUINT64_FORMAT " } } ] }",
          n->id, c->key_path, engine, n->http_port, n->id, n->udp_port, n->http_port, memory,
          statics->str, broadcast->str, node_settings, n->id, memory);
      n->config = g_strdup_printf ("%s/%s.json", c->tmpdir, n->id);
      if (!g_file_set_contents (n->config, json, -1, NULL))
        g_error ("cannot write %s", n->config);
      node_spawn (c, n);
    }
  return c;
}

/* The dummy engine: its default answer alone, CHAT_TOKENS in a ring. */
static BenchCluster *
cluster_start (guint n_nodes)
{
  g_autofree char *engine = g_strdup_printf ("{ \"id\": \"engine\", \"type\": \"dummy-inference\"%s }",
                                             n_nodes == 1 ? ""
                                             : ", \"settings\": { \"num-generate-tokens\": "
                                               G_STRINGIFY (CHAT_TOKENS) " }");

  return cluster_start_with (n_nodes, engine, "");
}

static void
cluster_stop (BenchCluster *c)
{
  for (guint i = 0; i < c->n_nodes; i++)
    {
      node_end (&c->nodes[i], SIGTERM);
      g_remove (c->nodes[i].config);
      g_free (c->nodes[i].config);
      g_free (c->nodes[i].id);
      g_free (c->nodes[i].bus_name);
    }
  g_dbus_connection_close_sync (c->client, NULL, NULL);
  g_object_unref (c->client);
  g_test_dbus_down (c->bus);
  g_object_unref (c->bus);
  g_remove (c->key_path);
  g_free (c->key_path);
  exo_cluster_key_unref (c->key);
  g_rmdir (c->tmpdir);
  g_free (c->tmpdir);
  g_free (c);
}

static gint64
node_metric (BenchCluster *c,
             BenchNode    *n,
             const char   *key)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) metrics = NULL;
  g_autoptr(GVariant) v = NULL;

  reply = g_dbus_connection_call_sync (c->client, n->bus_name, "/org/exo/Node1/resource/node",
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", "org.exo.Resource1", "Metrics"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
                                       1000, NULL, NULL);
  if (reply == NULL)
    return -1;
  g_variant_get (reply, "(v)", &metrics);
  v = g_variant_lookup_value (metrics, key, NULL);
  if (v == NULL)
    return -1;
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT64))
    return (gint64) g_variant_get_uint64 (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_INT32))
    return g_variant_get_int32 (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_INT64))
    return g_variant_get_int64 (v);
  return -1;
}

/* Until every node has @peers usable peers and a ring of @ring nodes. */
static void
wait_cluster (BenchCluster *c,
              gint64        peers,
              gint64        ring)
{
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  for (;;)
    {
      gboolean all = TRUE;

      for (guint i = 0; i < c->n_nodes && all; i++)
        if (c->nodes[i].proc != NULL &&
            (node_metric (c, &c->nodes[i], "peers") != peers ||
             node_metric (c, &c->nodes[i], "ring-size") != ring))
          all = FALSE;
      if (all)
        return;
      if (g_get_monotonic_time () > deadline)
        g_error ("the cluster did not form within 30 s");
      g_usleep (20 * 1000);
    }
}

/* --- peer_rtt_p50_us / peer_rtt_p99_us ------------------------------------ */

static double rtt_p50 = -1, rtt_p99 = -1;
static guint64 rtt_n;

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_result (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *slot;
}

static int
cmp_gint64 (gconstpointer a,
            gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return x < y ? -1 : x > y;
}

static void
measure_rtt (void)
{
  BenchCluster *c;
  static ExoPluginLoader *loader;   /* loaded modules stay resident */
  g_autofree char *plugin = build_path ("plugins/http-server/libexo-plugin-http-server.so");
  g_autoptr(GError) error = NULL;
  ExoPluginInfo *info;
  g_autoptr(ExoResource) peer = NULL;
  g_autofree char *address = NULL;
  double p50[RTT_ROUNDS], p99[RTT_ROUNDS];
  GType type;

  if (loader == NULL)
    loader = exo_plugin_loader_new ();
  info = exo_plugin_loader_load_file (loader, plugin, &error);
  if (info == NULL)
    g_error ("cannot load the http-server plugin: %s", error->message);
  type = exo_plugin_loader_lookup_type (loader, "http-peer");
  g_assert (type != G_TYPE_INVALID);

  c = cluster_start (1);
  wait_cluster (c, 0, 1);
  exo_cluster_key_set_default (c->key);   /* the peer signs with the nodes' key */
  address = g_strdup_printf ("127.0.0.1:%u", c->nodes[0].http_port);
  peer = g_object_new (type, "id", "bench-peer", "address", address, NULL);
  {
    GAsyncResult *result = NULL;

    exo_resource_initialize_async (peer, NULL, store_result, &result);
    if (!exo_resource_initialize_finish (peer, wait_result (&result), &error))
      g_error ("the peer did not connect: %s", error->message);
    g_object_unref (result);
  }

  /* Warm up: the first requests open the connection. */
  for (guint i = 0; i < 50; i++)
    {
      GAsyncResult *result = NULL;

      exo_resource_check_health_async (peer, NULL, store_result, &result);
      exo_resource_check_health_finish (peer, wait_result (&result), NULL);
      g_object_unref (result);
    }

  for (guint round = 0; round < RTT_ROUNDS; round++)
    {
      gint64 samples[RTT_PER_ROUND];

      for (guint i = 0; i < RTT_PER_ROUND; i++)
        {
          GAsyncResult *result = NULL;
          gint64 start = bench_now_ns ();

          exo_resource_check_health_async (peer, NULL, store_result, &result);
          if (!exo_resource_check_health_finish (peer, wait_result (&result), &error))
            g_error ("health check failed: %s", error->message);
          samples[i] = bench_now_ns () - start;
          g_object_unref (result);
        }
      qsort (samples, RTT_PER_ROUND, sizeof samples[0], (int (*) (const void *, const void *)) cmp_gint64);
      p50[round] = samples[RTT_PER_ROUND / 2] / 1000.0;
      p99[round] = samples[RTT_PER_ROUND * 99 / 100] / 1000.0;
    }
  rtt_p50 = bench_median (p50, RTT_ROUNDS);
  rtt_p99 = bench_median (p99, RTT_ROUNDS);
  rtt_n = (guint64) RTT_ROUNDS * RTT_PER_ROUND;

  {
    GAsyncResult *result = NULL;

    exo_resource_cleanup_async (peer, NULL, store_result, &result);
    exo_resource_cleanup_finish (peer, wait_result (&result), NULL);
    g_object_unref (result);
  }
  exo_cluster_key_set_default (NULL);
  cluster_stop (c);
}

static void
bench_peer_rtt_p50 (void)
{
  if (rtt_p50 < 0)
    measure_rtt ();
  bench_report ("peer_rtt_p50_us", rtt_p50, "us", rtt_n, ", \"path\": \"GET /peer/v1/health\"");
}

static void
bench_peer_rtt_p99 (void)
{
  if (rtt_p99 < 0)
    measure_rtt ();
  bench_report ("peer_rtt_p99_us", rtt_p99, "us", rtt_n, ", \"path\": \"GET /peer/v1/health\"");
}

/* --- chat_tokens_per_s / chat_ttft_ms ------------------------------------- */

static double chat_tps = -1, chat_ttft = -1;
static guint chat_tokens;

typedef struct {
  double ttft_ms;               /* send → first token */
  double total_ms;              /* send → [DONE] */
  double decode_ms;             /* first token → [DONE] */
  guint  events;                /* events with content */
  gint64 completion_tokens;     /* usage.completion_tokens; -1 if none */
} ChatTimes;

/* One streamed chat completion of @body over a plain socket.  FALSE on
 * error. */
static gboolean
stream_chat (guint16     port,
             const char *body,
             ChatTimes  *t)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) conn = NULL;
  g_autofree char *request = NULL;
  g_autoptr(GString) received = g_string_new (NULL);
  GInputStream *in;
  gint64 start, first = 0, end;
  const char *needle = "\"content\":\"";
  const char *usage;
  char buf[8192];

  conn = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, NULL);
  if (conn == NULL)
    return FALSE;
  request = g_strdup_printf ("POST /v1/chat/completions HTTP/1.1\r\n"
                             "Host: 127.0.0.1:%u\r\n"
                             "Content-Type: application/json\r\n"
                             "Content-Length: %zu\r\n"
                             "Connection: close\r\n\r\n%s", port, strlen (body), body);
  start = bench_now_ns ();
  if (!g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), request,
                                  strlen (request), NULL, NULL, NULL))
    return FALSE;
  in = g_io_stream_get_input_stream (G_IO_STREAM (conn));
  for (;;)
    {
      gssize n = g_input_stream_read (in, buf, sizeof buf, NULL, NULL);

      if (n <= 0)
        break;
      g_string_append_len (received, buf, n);
      if (first == 0 && strstr (received->str, needle) != NULL)
        first = bench_now_ns ();
      if (strstr (received->str, "data: [DONE]") != NULL)
        break;
    }
  end = bench_now_ns ();
  if (first == 0 || strstr (received->str, "data: [DONE]") == NULL)
    return FALSE;
  t->ttft_ms = (first - start) / 1e6;
  t->total_ms = (end - start) / 1e6;
  t->decode_ms = (end - first) / 1e6;
  t->events = 0;
  for (const char *p = strstr (received->str, needle); p != NULL; p = strstr (p + 1, needle))
    t->events++;
  usage = strstr (received->str, "\"completion_tokens\":");
  t->completion_tokens = usage != NULL
    ? g_ascii_strtoll (usage + strlen ("\"completion_tokens\":"), NULL, 10) : -1;
  return TRUE;
}

static const char *
dummy_chat_body (void)
{
  return "{\"model\": \"dummy\", \"stream\": true, "
         "\"messages\": [{\"role\": \"user\", \"content\": \"hello\"}]}";
}

static void
measure_chat (void)
{
  BenchCluster *c = cluster_start (N_NODES);
  double tps[CHAT_RUNS], ttft[CHAT_RUNS];

  wait_cluster (c, N_NODES - 1, N_NODES);
  for (guint run = 0; run < 3; run++)   /* warm up */
    {
      ChatTimes t;

      if (!stream_chat (c->nodes[0].http_port, dummy_chat_body (), &t))
        g_error ("the warm-up chat failed");
    }
  for (guint run = 0; run < CHAT_RUNS; run++)
    {
      ChatTimes t;

      if (!stream_chat (c->nodes[0].http_port, dummy_chat_body (), &t))
        g_error ("chat %u failed", run);
      chat_tokens = t.events;
      ttft[run] = t.ttft_ms;
      tps[run] = chat_tokens / (t.total_ms / 1000.0);
    }
  chat_tps = bench_median (tps, CHAT_RUNS);
  chat_ttft = bench_median (ttft, CHAT_RUNS);
  cluster_stop (c);
}

static void
bench_chat_tokens_per_s (void)
{
  g_autofree char *extra = NULL;

  if (chat_tps < 0)
    measure_chat ();
  extra = g_strdup_printf (", \"nodes\": %d, \"tokens\": %u, \"stream\": true", N_NODES, chat_tokens);
  bench_report ("chat_tokens_per_s", chat_tps, "tokens/s", CHAT_RUNS, extra);
}

static void
bench_chat_ttft_ms (void)
{
  g_autofree char *extra = NULL;

  if (chat_ttft < 0)
    measure_chat ();
  extra = g_strdup_printf (", \"nodes\": %d", N_NODES);
  bench_report ("chat_ttft_ms", chat_ttft, "ms", CHAT_RUNS, extra);
}

/* --- peer_failure_detect_ms ---------------------------------------------- */

/* Stops node 3 with @sig; returns when nodes 1 and 2 both count it failed. */
static double
time_failure (BenchCluster *c,
              int           sig)
{
  gint64 base[2], when[2] = { 0, 0 };
  gint64 start, deadline;

  for (guint i = 0; i < 2; i++)
    base[i] = node_metric (c, &c->nodes[i], "peers-failed");
  start = g_get_monotonic_time ();
  g_subprocess_send_signal (c->nodes[2].proc, sig);
  deadline = start + 30 * G_USEC_PER_SEC;
  while (when[0] == 0 || when[1] == 0)
    {
      for (guint i = 0; i < 2; i++)
        if (when[i] == 0 && node_metric (c, &c->nodes[i], "peers-failed") > base[i])
          when[i] = g_get_monotonic_time ();
      if (g_get_monotonic_time () > deadline)
        g_error ("node 3 was not marked failed within 30 s");
      g_usleep (2000);
    }
  return (MAX (when[0], when[1]) - start) / 1000.0;
}

static void
bench_peer_failure_detect (void)
{
  BenchCluster *c = cluster_start (N_NODES);
  double killed[KILL_RUNS], stopped[STOP_RUNS];
  g_autofree char *extra = NULL;

  wait_cluster (c, N_NODES - 1, N_NODES);
  for (guint run = 0; run < KILL_RUNS; run++)
    {
      killed[run] = time_failure (c, SIGKILL);
      g_subprocess_wait (c->nodes[2].proc, NULL, NULL);
      g_clear_object (&c->nodes[2].proc);
      node_spawn (c, &c->nodes[2]);
      wait_cluster (c, N_NODES - 1, N_NODES);
    }
  for (guint run = 0; run < STOP_RUNS; run++)
    {
      stopped[run] = time_failure (c, SIGSTOP);
      g_subprocess_send_signal (c->nodes[2].proc, SIGCONT);
      wait_cluster (c, N_NODES - 1, N_NODES);
    }
  extra = g_strdup_printf (", \"signal\": \"SIGKILL\", \"silent_ms\": %.1f, \"silent_runs\": %d, "
                           "\"defaults\": \"peer-health-interval-ms 1000, peer-timeout-ms 1000, "
                           "threshold 2\"", bench_median (stopped, STOP_RUNS), STOP_RUNS);
  bench_report ("peer_failure_detect_ms", bench_median (killed, KILL_RUNS), "ms", KILL_RUNS, extra);
  cluster_stop (c);
}

/* --- cluster_decode_ratio ------------------------------------------------ */

#define DECODE_RUNS   7
#define DECODE_TOKENS 128

/* bench-llama.c, when exo-bench is built with the llama plugin */
extern void bench_llama_files (const char **f32,
                               const char **tokenizer) __attribute__((weak));

static BenchCluster *
llama_cluster_start (guint       n_nodes,
                     const char *model,
                     const char *tokenizer)
{
  g_autofree char *engine = g_strdup_printf ("{ \"id\": \"engine\", \"type\": \"llama\", "
                                             "\"settings\": { \"model\": \"%s\", "
                                             "\"tokenizer\": \"%s\", \"threads\": 1 } }",
                                             model, tokenizer);

  return cluster_start_with (n_nodes, engine, "\"model-id\": \"stories15M-shaped\", "
                                              "\"max-tokens\": " G_STRINGIFY (DECODE_TOKENS) ", ");
}

/* A greedy streamed chat of DECODE_TOKENS tokens through @port: tokens/s
 * after the first token (which holds the prompt's prefill). */
static double
decode_rate (guint16    port,
             ChatTimes *t)
{
  const char *body = "{\"model\": \"stories15M-shaped\", \"stream\": true, \"temperature\": 0, "
                     "\"max_tokens\": " G_STRINGIFY (DECODE_TOKENS) ", "
                     "\"messages\": [{\"role\": \"user\", \"content\": \"hello\"}]}";

  if (!stream_chat (port, body, t))
    g_error ("the chat through port %u failed", port);
  if (t->completion_tokens < DECODE_TOKENS / 2)
    g_error ("the chat through port %u ended after %" G_GINT64_FORMAT " tokens", port,
             t->completion_tokens);
  return (t->completion_tokens - 1) / (t->decode_ms / 1000.0);
}

/* CPU time (user + system) of @c's node processes so far, ms: what the
 * hops cost whatever the machine's load. */
static double
cluster_cpu_ms (BenchCluster *c)
{
  double total = 0;

  for (guint i = 0; i < c->n_nodes; i++)
    {
      const char *pid = c->nodes[i].proc != NULL
                        ? g_subprocess_get_identifier (c->nodes[i].proc) : NULL;
      g_autofree char *path = pid != NULL ? g_strdup_printf ("/proc/%s/stat", pid) : NULL;
      g_autofree char *text = NULL;
      const char *after_comm;
      g_auto(GStrv) fields = NULL;

      if (path == NULL || !g_file_get_contents (path, &text, NULL, NULL) ||
          (after_comm = strrchr (text, ')')) == NULL)
        continue;
      /* after "pid (comm)": state is field 3, utime 14, stime 15 */
      fields = g_strsplit (after_comm + 2, " ", 14);
      if (g_strv_length (fields) >= 13)
        total += (g_ascii_strtod (fields[11], NULL) + g_ascii_strtod (fields[12], NULL)) *
                 1000.0 / sysconf (_SC_CLK_TCK);
    }
  return total;
}

/* One node and a ring of three on loopback, running at the same time;
 * their chats alternate so that both see the same load. */
static void
bench_cluster_decode_ratio (void)
{
  const char *model = NULL, *tokenizer = NULL;
  BenchCluster *one, *three;
  double r1[DECODE_RUNS], r3[DECODE_RUNS], ratio[DECODE_RUNS], ttft1[DECODE_RUNS], ttft3[DECODE_RUNS];
  double cpu1 = 0, cpu3 = 0, t1 = 0, t3 = 0;
  gint64 tokens = 0;
  g_autofree char *extra = NULL;

  if (bench_llama_files == NULL)
    {
      g_printerr ("cluster_decode_ratio: exo-bench was built without the llama plugin\n");
      return;
    }
  bench_llama_files (&model, &tokenizer);
  one = llama_cluster_start (1, model, tokenizer);
  three = llama_cluster_start (N_NODES, model, tokenizer);
  wait_cluster (one, 0, 1);
  wait_cluster (three, N_NODES - 1, N_NODES);
  for (guint run = 0; run < 2; run++)   /* warm up: page cache, connections */
    {
      ChatTimes t;

      decode_rate (one->nodes[0].http_port, &t);
      decode_rate (three->nodes[0].http_port, &t);
    }
  for (guint run = 0; run < DECODE_RUNS; run++)
    {
      ChatTimes t;
      double cpu = cluster_cpu_ms (one);

      r1[run] = decode_rate (one->nodes[0].http_port, &t);
      cpu1 += cluster_cpu_ms (one) - cpu;
      t1 += t.completion_tokens;
      ttft1[run] = t.ttft_ms;
      cpu = cluster_cpu_ms (three);
      r3[run] = decode_rate (three->nodes[0].http_port, &t);
      cpu3 += cluster_cpu_ms (three) - cpu;
      t3 += t.completion_tokens;
      ttft3[run] = t.ttft_ms;
      tokens = t.completion_tokens;
      ratio[run] = r3[run] / r1[run];
    }
  extra = g_strdup_printf (", \"one_node_tokens_per_s\": %.1f, \"three_nodes_tokens_per_s\": %.1f, "
                           "\"one_node_ttft_ms\": %.1f, \"three_nodes_ttft_ms\": %.1f, "
                           "\"one_node_cpu_ms_per_token\": %.2f, "
                           "\"three_nodes_cpu_ms_per_token\": %.2f, "
                           "\"tokens\": %" G_GINT64_FORMAT ", \"target\": 0.7, "
                           "\"model\": \"stories15M-shaped, float32, dim 288\"",
                           bench_median (r1, DECODE_RUNS), bench_median (r3, DECODE_RUNS),
                           bench_median (ttft1, DECODE_RUNS), bench_median (ttft3, DECODE_RUNS),
                           cpu1 / MAX (t1, 1), cpu3 / MAX (t3, 1), tokens);
  bench_report ("cluster_decode_ratio", bench_median (ratio, DECODE_RUNS), "ratio", DECODE_RUNS,
                extra);
  cluster_stop (three);
  cluster_stop (one);
}

const BenchEntry bench_cluster_entries[] = {
  { "peer_rtt_p50_us", bench_peer_rtt_p50 },
  { "peer_rtt_p99_us", bench_peer_rtt_p99 },
  { "chat_tokens_per_s", bench_chat_tokens_per_s },
  { "chat_ttft_ms", bench_chat_ttft_ms },
  { "peer_failure_detect_ms", bench_peer_failure_detect },
  { "cluster_decode_ratio", bench_cluster_decode_ratio },
  { NULL, NULL }
};
