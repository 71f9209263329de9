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
 * This file holds main() and the scenario (/cluster/loopback and
 * /cluster/netns); /cluster/loopback/security is in test-cluster-security.c,
 * /cluster/node/... in test-cluster-node.c, the checked chat completion they
 * share in cluster-fixture.c.
 *
 * The processes, configs, bus and namespaces are cluster-harness.c's:
 * every process gets PR_SET_PDEATHSIG, is killed at the end, and namespaces
 * are removed at the end and from a crash handler.  The llama engine's
 * cluster cases are in test-cluster-llama.c.
 *
 * Environment (set by meson): EXO_NODE, EXOCTL, EXO_TEST_PLUGIN_DIR,
 * G_TEST_SRCDIR.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cluster-fixture.h"

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

/* --- the scenario ------------------------------------------------------------ */

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
      gint64 t = live_metric (text, "exo_node_tokens_generated_total");

      layers[i] = live_metric (text, "exo_node_layers_computed_total");
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
  /* hang up (end_process() returns once curl is gone and its socket closed) */
  end_process (&curl, SIGKILL, 5000);
  /* What the ring had generated when the client was gone: on a loaded
   * machine this reader lags the stream by several tokens, which the nodes
   * cannot know of.  The bound below counts from here. */
  if (!read_work (c, layers_cut, &tokens_cut))
    {
      *why = g_strdup ("cannot read the nodes' metrics");
      return FALSE;
    }

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
                  live_node_metric (c, &c->nodes[1], "exo_node_cancels_received_total"),
                  live_node_metric (c, &c->nodes[2], "exo_node_cancels_received_total"),
                  live_node_metric (c, &c->nodes[0], "exo_node_cancelled_work_dropped_total"),
                  live_node_metric (c, &c->nodes[1], "exo_node_cancelled_work_dropped_total"),
                  live_node_metric (c, &c->nodes[2], "exo_node_cancelled_work_dropped_total"));
  /* The server learns of the hang-up when it next writes an event: the
   * token in flight, the one whose write fails, one more in the ring. */
  if (tokens - tokens0 > MAX (cut_after, tokens_cut - tokens0) + 3 ||
      tokens - tokens0 >= total_tokens)
    {
      *why = g_strdup_printf ("%" G_GINT64_FORMAT " tokens were generated for a stream cut "
                              "after %u events, %" G_GINT64_FORMAT " generated when the client "
                              "was gone (at most 3 more: the token in flight, the one whose "
                              "write fails and one more; %u without cancellation)",
                              tokens - tokens0, cut_after, tokens_cut - tokens0, total_tokens);
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
  if (live_node_metric (c, &c->nodes[0], "exo_node_requests_in_flight") != 0)
    {
      *why = g_strdup ("node-1 still has the request in flight");
      goto out;
    }
  for (guint i = 1; i < N_NODES; i++)
    if (live_node_metric (c, &c->nodes[i], "exo_node_cancels_received_total") < 1)
      {
        *why = g_strdup_printf ("%s was not told of the cancellation", c->nodes[i].id);
        goto out;
      }
  ok = TRUE;
out:
  return ok;
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
  CHECK (live_resource_metric_double (c, &c->nodes[1], "engine", "exo_engine_last_sample_temperature") == 0.5 &&
         live_resource_metric_double (c, &c->nodes[1], "engine", "exo_engine_last_sample_top_p") == 0.25,
         "node-2 (the last shard) did not sample with temperature 0.5 and top_p 0.25: %g, %g",
         live_resource_metric_double (c, &c->nodes[1], "engine", "exo_engine_last_sample_temperature"),
         live_resource_metric_double (c, &c->nodes[1], "engine", "exo_engine_last_sample_top_p"));
  CHECK (live_resource_metric_double (c, &c->nodes[0], "engine", "exo_engine_last_sample_temperature") == -1,
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
  CHECK (live_resource_metric_double (c, &c->nodes[1], "engine", "exo_engine_last_sample_temperature") == 1.25 &&
         live_resource_metric_double (c, &c->nodes[1], "engine", "exo_engine_last_sample_top_p") == 0.75,
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

  if (!netns_begin (&why))
    {
      g_test_skip (why);
      return;
    }
  cluster_init (&c, TRUE);
  run_scenario (&c);
  cluster_clear (&c);
  netns_teardown ();
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
  g_test_init (&argc, &argv, NULL);
  harness_init ();

  g_log_set_writer_func (quiet_writer, NULL, NULL);
  /* the key of the nodes made in this process (/cluster/node/...) */
  {
    g_autoptr(ExoClusterKey) key = exo_cluster_key_new_random ();

    exo_cluster_key_set_default (key);
  }

  test_cluster_register_node ();
  g_test_add_func ("/cluster/loopback", test_loopback);
  test_cluster_register_security ();
  g_test_add_func ("/cluster/netns", test_netns);

  {
    int rc = g_test_run ();

    g_clear_object (&loader);
    return rc;
  }
}
