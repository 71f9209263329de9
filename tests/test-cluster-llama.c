/* test-cluster-llama.c: the llama engine through real exo-node processes
 * (issue 11), with the harness of cluster-harness.c.
 *
 * Every case runs the same streamed chats (greedy; temperature 0.8, top_p
 * 0.9, seed 42; 64 tokens each) on one node, then on a ring of two, then
 * of three, and checks that each ring gives the same text and as many
 * tokens as the node alone (with stories260K: the same token ids), that
 * every shard's layers-computed grew, and that the peers kept their
 * connections (each node's connections-closed-idle grows by a few during a
 * chat, not by two a token).
 *
 * /cluster/llama/identical: the shipped model (data/models/exo-fortunes.bin,
 *   4 layers) on loopback with static peers; then a stop string (the ring
 *   is cancelled, every engine ends the request); then max-sessions (a ninth
 *   request, whole or streamed, is answered 429 while the middle shard is
 *   stopped); then llama-3 is killed (SIGKILL) during a long request: it
 *   fails fast with the clear error, the ring re-partitions to two shards,
 *   the next request gives the same tokens as one node and no engine keeps
 *   the failed request's state; then llama-3 rejoins and llama-1, the API
 *   node, is killed during a long request: the others end it at once.
 * /cluster/llama/stories260K: ../shared/models/stories260K.bin (written by
 *   llama2.c, 5 layers; $EXO_TEST_STORIES260K, skipped when absent).  Its
 *   512-token tokenizer is not at hand: the test writes one whose pieces
 *   name their ids (tiny_tokenizer_write_ids), so the text gives the ids.
 * /cluster/llama/netns: the shipped model in network namespaces (root and
 *   `ip netns`, else skipped), found by UDP broadcast on 10.99.0.0/24.
 *
 * Environment (set by meson): EXO_NODE, EXO_TEST_PLUGIN_DIR, G_TEST_SRCDIR,
 * EXO_TEST_STORIES260K.
 *
 * Thread rules: one thread, the test's.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cluster-harness.h"
#include "llama-test-util.h"

#include <signal.h>
#include <string.h>

#define MAX_TOKENS 64           /* per chat; every setting must run to it */
#define MAX_SESSIONS 8          /* the engine's max-sessions in node-llama.json.in */
#define SESSION_TIMEOUT_MS 6000 /* and its session-timeout-ms */
#define KILL_MAX_TOKENS 200     /* the request in flight when llama-3 is killed */
#define N_SETTINGS 2
#define MAX_CLOSED_PER_CHAT 8   /* connections-closed-idle on a node during one chat */

static const char *settings[N_SETTINGS] = {
  "\"temperature\": 0",
  "\"temperature\": 0.8, \"top_p\": 0.9, \"seed\": 42",
};

typedef struct {
  const char *model_id;
  const char *prompt;         /* the user message */
  gint64      prompt_tokens;  /* usage.prompt_tokens: BOS and the template "user: …\n" */
  gboolean    ids;            /* its text names its ids (tiny_tokenizer_write_ids) */
} LlamaCase;

/* "In the" in the committed tokenizer: 9 tokens with BOS. */
static const LlamaCase fortunes = { "exo-fortunes", "In the", 9, FALSE };
/* every character a byte token: BOS, the dummy prefix, 23 characters */
static const LlamaCase stories = { "stories260K", "Once upon a time", 25, TRUE };

static char *
chat_request (const LlamaCase *lc,
              guint            max_tokens,
              gboolean         stream,
              const char      *extra)
{
  return g_strdup_printf ("{\"model\": \"%s\", \"messages\": [{\"role\": \"user\", "
                          "\"content\": \"%s\"}], \"max_tokens\": %u, \"stream\": %s, %s}",
                          lc->model_id, lc->prompt, max_tokens, stream ? "true" : "false", extra);
}

/* For messages: the text, or with lc->ids its ids. */
static char *
describe (const LlamaCase *lc,
          const char      *text)
{
  g_autoptr(GArray) ids = lc->ids ? tiny_tokenizer_text_ids (text) : NULL;
  GString *s;

  if (ids == NULL)
    return g_strdup (text);
  s = g_string_new (NULL);
  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf (s, "%s%d", i ? " " : "", g_array_index (ids, gint32, i));
  return g_string_free (s, FALSE);
}

/* A streamed chat through @n: the text of its token events (an event can
 * carry more than one token).  Fails unless it runs to MAX_TOKENS
 * ("length") with the case's usage.prompt_tokens and [DONE], and with
 * lc->ids unless the text names MAX_TOKENS ids. */
static char *
stream_text (Cluster         *c,
             Node            *n,
             const LlamaCase *lc,
             const char      *extra,
             char           **why)
{
  g_autofree char *request = chat_request (lc, MAX_TOKENS, TRUE, extra);
  guint status = 0;
  g_autofree char *body = http (c, n, "POST", "/v1/chat/completions", request, &status);
  g_autoptr(GString) text = g_string_new (NULL);
  g_auto(GStrv) lines = NULL;
  gint64 prompt_tokens = -1, completion_tokens = -1;
  g_autofree char *finish = NULL;
  guint events = 0;
  gboolean done = FALSE;

  if (status != 200 || body == NULL)
    {
      *why = g_strdup_printf ("HTTP %u: %s", status, body ? body : "(nothing)");
      return NULL;
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
          (root = parse_json (lines[i] + strlen ("data: "))) == NULL ||
          !JSON_NODE_HOLDS_OBJECT (root) ||
          !json_object_has_member (json_node_get_object (root), "choices"))
        continue;
      chunk = json_node_get_object (root);
      choice = json_array_get_object_element (json_object_get_array_member (chunk, "choices"), 0);
      delta = json_object_get_object_member (choice, "delta");
      if (json_object_has_member (delta, "content"))
        {
          g_string_append (text, json_object_get_string_member (delta, "content"));
          events++;
        }
      if (json_object_has_member (chunk, "usage"))
        {
          JsonObject *usage = json_object_get_object_member (chunk, "usage");

          prompt_tokens = json_object_get_int_member (usage, "prompt_tokens");
          completion_tokens = json_object_get_int_member (usage, "completion_tokens");
          g_free (finish);
          finish = g_strdup (json_object_get_string_member_with_default (choice, "finish_reason",
                                                                         NULL));
        }
    }
  if (!done || events == 0 || completion_tokens != MAX_TOKENS ||
      g_strcmp0 (finish, "length") != 0 || prompt_tokens != lc->prompt_tokens)
    {
      *why = g_strdup_printf ("%u token events, usage %" G_GINT64_FORMAT " + %" G_GINT64_FORMAT
                              " tokens (%d + %" G_GINT64_FORMAT " expected), finish_reason %s, "
                              "%s: %s", events, completion_tokens, prompt_tokens, MAX_TOKENS,
                              lc->prompt_tokens, finish ? finish : "none",
                              done ? "[DONE]" : "no [DONE]", body);
      return NULL;
    }
  if (lc->ids)
    {
      g_autoptr(GArray) ids = tiny_tokenizer_text_ids (text->str);

      if (ids == NULL || ids->len != MAX_TOKENS)
        {
          *why = g_strdup_printf ("the text names %d ids, not %d: %s", ids ? (int) ids->len : -1,
                                  MAX_TOKENS, text->str);
          return NULL;
        }
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

/* The same chat answered whole: its message.content, with usage as
 * stream_text() wants it. */
static char *
whole_text (Cluster         *c,
            Node            *n,
            const LlamaCase *lc,
            const char      *extra,
            char           **why)
{
  g_autofree char *request = chat_request (lc, MAX_TOKENS, FALSE, extra);
  guint status = 0;
  g_autofree char *body = http (c, n, "POST", "/v1/chat/completions", request, &status);
  g_autoptr(JsonNode) root = parse_json (body);
  JsonObject *o, *choice, *usage;

  if (status != 200 || root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      *why = g_strdup_printf ("HTTP %u: %s", status, body ? body : "(nothing)");
      return NULL;
    }
  o = json_node_get_object (root);
  choice = json_array_get_object_element (json_object_get_array_member (o, "choices"), 0);
  usage = json_object_get_object_member (o, "usage");
  if (json_object_get_int_member (usage, "completion_tokens") != MAX_TOKENS ||
      json_object_get_int_member (usage, "prompt_tokens") != lc->prompt_tokens ||
      json_object_get_int_member (usage, "total_tokens") != lc->prompt_tokens + MAX_TOKENS)
    {
      *why = g_strdup_printf ("usage is not %" G_GINT64_FORMAT " + %d tokens: %s",
                              lc->prompt_tokens, MAX_TOKENS, body);
      return NULL;
    }
  return g_strdup (json_object_get_string_member (json_object_get_object_member (choice, "message"),
                                                  "content"));
}

/* The cluster's nodes are llama-1 … llama-3 with @lc's model. */
static void
llama_cluster_init (Cluster         *c,
                    gboolean         netns,
                    const LlamaCase *lc)
{
  cluster_init (c, netns);
  c->template_name = "node-llama.json.in";
  c->model_id = lc->model_id;
  c->node_max_tokens = KILL_MAX_TOKENS;
  for (guint i = 0; i < N_NODES; i++)
    {
      /* distinct from test-cluster's node-N and their bus names */
      g_free (c->nodes[i].id);
      c->nodes[i].id = g_strdup_printf ("llama-%u", i + 1);
      g_free (c->nodes[i].bus_name);
      c->nodes[i].bus_name = g_strdup_printf ("org.exo.Test.ClusterLlama.N%u", i + 1);
    }
}

/* Result calls the first @n_nodes nodes made so far; -1 if one has no
 * such metric. */
static gint64
results_sent (Cluster *c,
              guint    n_nodes)
{
  gint64 total = 0;

  for (guint i = 0; i < n_nodes; i++)
    {
      gint64 n = live_node_metric (c, &c->nodes[i], "exo_node_results_sent_total");

      if (n < 0)
        return -1;
      total += n;
    }
  return total;
}

/* The chats of every setting through the ring of the first @n_nodes
 * nodes (started here), compared with @one (filled when @n_nodes is 1):
 * the same text, and every node's layers-computed grew. */
static gboolean
ring_gives_the_same (Cluster         *c,
                     const LlamaCase *lc,
                     guint            n_nodes,
                     char            *one[N_SETTINGS],
                     char           **why)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *ring = NULL;
  guint which = (1u << n_nodes) - 1;
  gint64 base[N_NODES];
  double closed[N_NODES];
  gint64 results_base;

  if (!start_node (c, &c->nodes[n_nodes - 1], &error))
    {
      *why = g_strdup_printf ("starting %s: %s", c->nodes[n_nodes - 1].id, error->message);
      return FALSE;
    }
  if (n_nodes > 1 && !wait_metric_at_least (c, which, "peers", n_nodes - 1, 20000))
    {
      *why = g_strdup_printf ("%u nodes did not find each other within 20 s", n_nodes);
      return FALSE;
    }
  ring = wait_common_ring (c, which, n_nodes, 20000);
  if (ring == NULL)
    {
      *why = g_strdup_printf ("no common ring of %u shards within 20 s", n_nodes);
      return FALSE;
    }
  g_test_message ("%s, %u node(s): %s", lc->model_id, n_nodes, ring);
  for (guint i = 0; i < n_nodes; i++)
    if ((base[i] = live_node_metric (c, &c->nodes[i], "exo_node_layers_computed_total")) < 0)
      {
        *why = g_strdup_printf ("%s: no layers-computed metric", c->nodes[i].id);
        return FALSE;
      }
  for (guint i = 0; i < n_nodes; i++)
    closed[i] = live_resource_metric_double (c, &c->nodes[i], "server", "exo_http_connections_closed_idle_total");
  results_base = results_sent (c, n_nodes);
  for (guint k = 0; k < N_SETTINGS; k++)
    {
      g_autofree char *reason = NULL;
      g_autofree char *got = stream_text (c, &c->nodes[0], lc, settings[k], &reason);

      if (got == NULL)
        {
          *why = g_strdup_printf ("%u node(s), %s: %s", n_nodes, settings[k], reason);
          return FALSE;
        }
      if (n_nodes == 1)
        {
          g_autofree char *text = describe (lc, got);

          g_test_message ("%s: %s", settings[k], text);
          one[k] = g_steal_pointer (&got);
        }
      else if (g_strcmp0 (got, one[k]) != 0)
        {
          g_autofree char *a = describe (lc, one[k]);
          g_autofree char *b = describe (lc, got);

          *why = g_strdup_printf ("%s: one node gave \"%s\", %u nodes \"%s\"", settings[k], a,
                                  n_nodes, b);
          return FALSE;
        }
      /* The last shard tells the API node (ours, node 1) alone each
       * token, and nobody when node 1 holds the first shard (the token
       * it gets as input is the news); the last result goes to every
       * node.  exo's broadcast of every token to every node sent
       * (n - 1) results a token. */
      if (k == 0 && n_nodes > 1)
        {
          gint64 sent = results_sent (c, n_nodes) - results_base;
          gint64 most = (g_str_has_prefix (ring, c->nodes[0].id) &&
                         ring[strlen (c->nodes[0].id)] == ':' ? 0 : MAX_TOKENS) + n_nodes - 1;

          if (results_base < 0 || sent > most)
            {
              *why = g_strdup_printf ("ring %s: %" G_GINT64_FORMAT " result calls for a chat of at "
                                      "most %d tokens through %s (at most %" G_GINT64_FORMAT ")",
                                      ring, sent, MAX_TOKENS, c->nodes[0].id, most);
              return FALSE;
            }
          g_test_message ("ring %s: %" G_GINT64_FORMAT " result calls for the chat", ring, sent);
        }
      /* The peers keep their connections: a connection per peer call
       * (libsoup's default for a POST) closes about two on each node per
       * token; here the chat's own and the metrics reads' close. */
      for (guint i = 0; k == 0 && n_nodes > 1 && i < n_nodes; i++)
        {
          double now = live_resource_metric_double (c, &c->nodes[i], "server",
                                                    "exo_http_connections_closed_idle_total");

          if (!(now - closed[i] <= MAX_CLOSED_PER_CHAT))
            {
              *why = g_strdup_printf ("%s: %g kept-alive connections closed during a chat of %d "
                                      "tokens (at most %d): a connection per peer call?",
                                      c->nodes[i].id, now - closed[i], MAX_TOKENS,
                                      MAX_CLOSED_PER_CHAT);
              return FALSE;
            }
        }
    }
  if (n_nodes == 1 && g_strcmp0 (one[0], one[1]) == 0)
    {
      *why = g_strdup ("greedy and seeded sampling gave the same tokens");
      return FALSE;
    }
  for (guint i = 0; i < n_nodes; i++)
    {
      gint64 now = live_node_metric (c, &c->nodes[i], "exo_node_layers_computed_total");

      if (now <= base[i])
        {
          *why = g_strdup_printf ("%s: layers-computed %" G_GINT64_FORMAT " (was %" G_GINT64_FORMAT
                                  "): it did not compute its shard of %u", c->nodes[i].id, now,
                                  base[i], n_nodes);
          return FALSE;
        }
    }
  /* The decode steps of the shards without the classifier ran on their
   * node's main thread (no hand-off to the worker and back); the last
   * shard's (with the classifier) on its worker: the same tokens either
   * way (above). */
  if (n_nodes > 1)
    for (guint i = 0; i < n_nodes; i++)
      {
        double steps = live_resource_metric_double (c, &c->nodes[i], "engine",
                                                    "exo_engine_inline_steps_total");
        g_autofree char *last = g_strdup_printf (",%s:", c->nodes[i].id);
        gboolean is_last = g_str_has_suffix (ring, "") && strstr (ring, last) != NULL &&
                           strchr (strstr (ring, last) + 1, ',') == NULL;

        if (is_last ? steps != 0 : !(steps > 0))
          {
            *why = g_strdup_printf ("ring %s: %s ran %g decode steps inline (%s)", ring,
                                    c->nodes[i].id, steps,
                                    is_last ? "none expected: it holds the classifier"
                                            : "some expected: no classifier");
            return FALSE;
          }
      }
  /* answered whole: the same text */
  {
    g_autofree char *reason = NULL;
    g_autofree char *got = whole_text (c, &c->nodes[0], lc, settings[0], &reason);

    if (got == NULL || g_strcmp0 (got, one[0]) != 0)
      {
        *why = g_strdup_printf ("%u node(s), not streamed: %s", n_nodes,
                                reason != NULL ? reason : got);
        return FALSE;
      }
  }
  /* A prompt the first shard refuses (longer than max-seq-len), sent to
   * a node that is not the first shard: that node (its API node) is told
   * at once and answers 400 with the reason, not a 504 after
   * request-timeout-ms. */
  if (n_nodes > 1)
    {
      g_autoptr(GString) request = g_string_new ("{\"model\": \"");
      g_autofree char *body = NULL;
      gint64 started = g_get_monotonic_time ();
      guint status = 0;

      g_string_append_printf (request, "%s\", \"max_tokens\": 2, \"prompt\": \"", lc->model_id);
      for (guint i = 0; i < 600; i++)
        g_string_append (request, "x y ");
      g_string_append (request, "\"}");
      body = http (c, &c->nodes[n_nodes - 1], "POST", "/v1/completions", request->str, &status);
      if (status != 400 || body == NULL || strstr (body, "max-seq-len") == NULL ||
          g_get_monotonic_time () - started > 5 * G_USEC_PER_SEC)
        {
          *why = g_strdup_printf ("%u nodes: a prompt too long through %s: status %u after %.1f s: %s",
                                  n_nodes, c->nodes[n_nodes - 1].id, status,
                                  (g_get_monotonic_time () - started) / 1e6,
                                  body != NULL ? body : "(nothing)");
          return FALSE;
        }
    }
  /* A generation that fills the context (max-seq-len) on a peer's engine
   * ends for "length" with the text so far at the API node (told by the
   * peer), as on one node. */
  if (n_nodes > 1 && g_strcmp0 (lc->model_id, "exo-fortunes") == 0)
    {
      g_autoptr(GString) request = g_string_new ("{\"model\": \"exo-fortunes\", \"prompt\": \"");
      g_autofree char *body = NULL;
      guint status = 0;

      for (guint i = 0; i < 115; i++)
        g_string_append (request, "q ");
      g_string_append (request, "\", \"max_tokens\": 60, \"temperature\": 2, \"seed\": 5}");
      body = http (c, &c->nodes[n_nodes - 1], "POST", "/v1/completions", request->str, &status);
      if (status != 200 || body == NULL || strstr (body, "\"finish_reason\":\"length\"") == NULL ||
          strstr (body, "\"completion_tokens\":25") == NULL)
        {
          *why = g_strdup_printf ("%u nodes: a generation that fills the context through %s: "
                                  "status %u: %s", n_nodes, c->nodes[n_nodes - 1].id, status,
                                  body != NULL ? body : "(nothing)");
          return FALSE;
        }
    }
  /* through the last node too (not the first shard when n > 1): it
   * counts the prompt's tokens with its own engine */
  if (n_nodes > 1)
    {
      g_autofree char *reason = NULL;
      g_autofree char *got = stream_text (c, &c->nodes[n_nodes - 1], lc, settings[0],
                                                &reason);

      if (got == NULL || g_strcmp0 (got, one[0]) != 0)
        {
          *why = g_strdup_printf ("%u nodes, through %s: %s", n_nodes, c->nodes[n_nodes - 1].id,
                                  reason != NULL ? reason : "other tokens than one node's");
          return FALSE;
        }
    }
  return TRUE;
}

/* One node, two, three: the same tokens. */
static gboolean
one_two_three (Cluster         *c,
               const LlamaCase *lc,
               char            *one[N_SETTINGS],
               char           **why)
{
  g_autoptr(GError) error = NULL;

  if (c->exo_node == NULL || c->plugin_dir == NULL)
    {
      *why = g_strdup ("EXO_NODE and EXO_TEST_PLUGIN_DIR must be set");
      return FALSE;
    }
  if (c->tmpdir == NULL)
    {
      *why = g_strdup ("cannot make a temporary folder");
      return FALSE;
    }
  if (!write_configs (c, 0, 0, &error) || !start_bus (c, &error))
    {
      *why = g_strdup_printf ("configs or dbus-daemon: %s", error ? error->message : "?");
      return FALSE;
    }
  for (guint n = 1; n <= N_NODES; n++)
    if (!ring_gives_the_same (c, lc, n, one, why))
      return FALSE;
  return TRUE;
}

static void
clear_texts (char *one[N_SETTINGS])
{
  for (guint k = 0; k < N_SETTINGS; k++)
    g_clear_pointer (&one[k], g_free);
}

/* A stop string through the ring of three: the answer is one node's text
 * up to the string, "stop"; llama-1 tells both peers to cancel (the ring
 * would otherwise run to MAX_TOKENS), and every engine ends the request
 * (none holds a session, none expired). */
static gboolean
stop_in_ring (Cluster         *c,
              const LlamaCase *lc,
              char            *one[N_SETTINGS],
              char           **why)
{
  gsize len = strlen (one[0]);
  g_autofree char *stop = g_strndup (one[0] + len / 3, 3);
  g_autoptr(JsonNode) quoted_node = json_node_init_string (json_node_alloc (), stop);
  g_autofree char *quoted = json_to_string (quoted_node, FALSE);
  g_autofree char *extra = g_strdup_printf ("%s, \"stop\": %s", settings[0], quoted);
  g_autofree char *request = chat_request (lc, MAX_TOKENS, FALSE, extra);
  const char *at = strstr (one[0], stop);
  g_autofree char *expected = g_strndup (one[0], (gsize) (at - one[0]));
  gint64 sent = live_node_metric (c, &c->nodes[0], "exo_node_cancels_sent_total");
  double expired[N_NODES];
  guint status = 0;
  g_autofree char *body = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *choice;

  for (guint i = 0; i < N_NODES; i++)
    expired[i] = live_resource_metric_double (c, &c->nodes[i], "engine",
                                              "exo_engine_sessions_expired_total");
  body = http (c, &c->nodes[0], "POST", "/v1/chat/completions", request, &status);
  root = parse_json (body);
  if (status != 200 || root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      *why = g_strdup_printf ("stop \"%s\" through three nodes: HTTP %u: %s", stop, status, body);
      return FALSE;
    }
  choice = json_array_get_object_element (json_object_get_array_member (json_node_get_object (root),
                                                                        "choices"), 0);
  if (g_strcmp0 (json_object_get_string_member (json_object_get_object_member (choice, "message"),
                                                "content"), expected) != 0 ||
      g_strcmp0 (json_object_get_string_member (choice, "finish_reason"), "stop") != 0)
    {
      *why = g_strdup_printf ("stop \"%s\" through three nodes: not \"%s\" and \"stop\": %s", stop,
                              expected, body);
      return FALSE;
    }
  if (live_node_metric (c, &c->nodes[0], "exo_node_cancels_sent_total") != sent + 2)
    {
      *why = g_strdup_printf ("stop \"%s\": llama-1 sent %" G_GINT64_FORMAT " cancels, not 2", stop,
                              live_node_metric (c, &c->nodes[0], "exo_node_cancels_sent_total") - sent);
      return FALSE;
    }
  for (guint i = 0; i < N_NODES; i++)
    {
      double sessions = wait_double (c, &c->nodes[i], "engine", "exo_engine_sessions", -1, 0, 2000);
      double now = live_resource_metric_double (c, &c->nodes[i], "engine",
                                                "exo_engine_sessions_expired_total");

      if (sessions != 0 || now != expired[i])
        {
          *why = g_strdup_printf ("%s's engine holds %g sessions after a stop string ended the "
                                  "request (%g expired meanwhile)", c->nodes[i].id, sessions,
                                  now - expired[i]);
          return FALSE;
        }
    }
  g_test_message ("stop \"%s\" through three nodes: \"%s\"", stop, expected);
  return TRUE;
}

/* max-sessions: with the middle shard (llama-3) stopped, eight requests
 * through llama-1 hold its engine's eight sessions (their tensors wait on
 * the hop to llama-3); a ninth is answered 429 with Retry-After, not
 * streamed.  Then llama-3 continues and the ring answers as before. */
static gboolean
max_sessions (Cluster         *c,
              const LlamaCase *lc,
              char            *one[N_SETTINGS],
              char           **why)
{
  AsyncCurl held[MAX_SESSIONS] = { { 0 } };
  g_autofree char *request = chat_request (lc, MAX_TOKENS, FALSE, settings[0]);
  pid_t stopped = subprocess_pid (c->nodes[2].proc);
  gboolean ok = FALSE;
  double sessions;

  if (stopped <= 0 || kill (stopped, SIGSTOP) != 0)
    {
      *why = g_strdup ("cannot stop llama-3");
      return FALSE;
    }
  for (guint i = 0; i < MAX_SESSIONS; i++)
    if (!start_curl (c, &c->nodes[0], request, &held[i], why))
      goto out;
  sessions = wait_double (c, &c->nodes[0], "engine", "exo_engine_sessions", 1, MAX_SESSIONS, 5000);
  if (sessions < MAX_SESSIONS)
    {
      *why = g_strdup_printf ("llama-1's engine holds %g sessions, not %d", sessions, MAX_SESSIONS);
      goto out;
    }
  {
    g_autoptr(GPtrArray) argv = curl_argv (c, &c->nodes[0], "POST", "/v1/chat/completions",
                                           request, 10);
    g_autofree char *out = NULL;
    char *body;
    guint status;

    g_ptr_array_insert (argv, 1, g_strdup ("-i"));   /* the head too */
    out = run_capture ((const char * const *) argv->pdata, NULL, NULL);
    body = split_status (out, &status);
    if (status != 429 || body == NULL || strstr (body, "Retry-After: 1\r\n") == NULL ||
        strstr (body, "\"rate_limit_error\"") == NULL || strstr (body, "text/event-stream") != NULL)
      {
        *why = g_strdup_printf ("the request past max-sessions: HTTP %u: %s", status, body);
        goto out;
      }
  }
  /* streamed the same: the stream opens at the first token, so the
   * refusal before it is a 429 too, not an error event in a 200 */
  {
    g_autofree char *streamed = chat_request (lc, MAX_TOKENS, TRUE, settings[0]);
    g_autoptr(GPtrArray) argv = curl_argv (c, &c->nodes[0], "POST", "/v1/chat/completions",
                                           streamed, 10);
    g_autofree char *out = NULL;
    char *body;
    guint status;

    g_ptr_array_insert (argv, 1, g_strdup ("-i"));
    out = run_capture ((const char * const *) argv->pdata, NULL, NULL);
    body = split_status (out, &status);
    if (status != 429 || body == NULL || strstr (body, "Retry-After: 1\r\n") == NULL ||
        strstr (body, "\"rate_limit_exceeded\"") == NULL || strstr (body, "text/event-stream") != NULL)
      {
        *why = g_strdup_printf ("the streamed request past max-sessions: HTTP %u: %s", status, body);
        goto out;
      }
  }
  if (kill (stopped, SIGCONT) != 0)
    {
      *why = g_strdup ("cannot continue llama-3");
      goto out;
    }
  stopped = 0;
  {
    gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
    guint done = 0;

    while (done < MAX_SESSIONS && g_get_monotonic_time () < deadline)
      {
        g_main_context_iteration (NULL, FALSE);
        g_usleep (5 * 1000);
        done = 0;
        for (guint i = 0; i < MAX_SESSIONS; i++)
          done += held[i].done;
      }
    if (done < MAX_SESSIONS)
      {
        *why = g_strdup_printf ("%u of the %d held requests ended within 30 s", done, MAX_SESSIONS);
        goto out;
      }
  }
  /* The ring is whole again and answers.  When llama-3 was stopped long
   * enough to be dropped from the ring (3 s of missed health checks, on a
   * loaded machine), the held requests failed on llama-1 without llama-3
   * hearing of it: it runs their queued tensors when it continues and
   * keeps their sessions until session-timeout-ms (so, in the meantime,
   * refuses other requests with max-sessions).  Wait for that. */
  {
    gint64 t0 = g_get_monotonic_time ();
    double left = wait_double (c, &c->nodes[2], "engine", "exo_engine_sessions", -1, 0,
                               SESSION_TIMEOUT_MS + 5000);

    if (left != 0)
      {
        *why = g_strdup_printf ("llama-3's engine still holds %g sessions %d ms after it "
                                "continued", left, SESSION_TIMEOUT_MS + 5000);
        goto out;
      }
    g_test_message ("llama-3's engine held no session %.0f ms after it continued (%g expired)",
                    (g_get_monotonic_time () - t0) / 1000.0,
                    live_resource_metric_double (c, &c->nodes[2], "engine", "exo_engine_sessions_expired_total"));
  }
  {
    g_autofree char *ring = wait_common_ring (c, 0x7, 3, 20000);
    g_autofree char *got = NULL;
    gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

    if (ring == NULL)
      {
        *why = g_strdup ("no common ring of three shards within 20 s after llama-3 continued");
        goto out;
      }
    while ((got = stream_text (c, &c->nodes[0], lc, settings[0], why)) == NULL &&
           g_get_monotonic_time () < deadline)
      {
        g_clear_pointer (why, g_free);
        g_usleep (200 * 1000);
      }
    if (got == NULL || g_strcmp0 (got, one[0]) != 0)
      {
        if (*why == NULL)
          *why = g_strdup ("after the 429: other tokens than one node's");
        goto out;
      }
  }
  ok = TRUE;
out:
  if (stopped > 0)
    kill (stopped, SIGCONT);
  end_curls (held, MAX_SESSIONS);
  return ok;
}

/* llama-3 (the middle shard) is killed while a request of KILL_MAX_TOKENS
 * tokens flows through it: the request fails within 5 s with the error
 * naming llama-3 as unreachable, llama-1 and llama-2 re-partition into two
 * shards, the next request gives one node's tokens, and the engines hold
 * no session (the failed request's state is freed). */
static gboolean
kill_mid_request (Cluster         *c,
                  const LlamaCase *lc,
                  char            *one[N_SETTINGS],
                  char           **why)
{
  AsyncCurl inflight = { 0 };
  g_autofree char *request = chat_request (lc, KILL_MAX_TOKENS, FALSE, settings[0]);
  gint64 base, t_kill, now = -1;
  double expired_before[2];
  gboolean ok = FALSE;

  for (guint i = 0; i < 2; i++)
    expired_before[i] = live_resource_metric_double (c, &c->nodes[i], "engine",
                                                     "exo_engine_sessions_expired_total");
  if (!flow_through (c, &c->nodes[0], &c->nodes[2], request, &inflight, &base, &now, why))
    goto out;
  t_kill = g_get_monotonic_time ();
  end_process (&c->nodes[2].proc, SIGKILL, 5000);
  {
    gint64 deadline = t_kill + 15 * G_USEC_PER_SEC;

    while (!inflight.done && g_get_monotonic_time () < deadline)
      {
        while (g_main_context_iteration (NULL, FALSE))
          ;
        g_usleep (5 * 1000);
      }
  }
  if (!inflight.done)
    {
      *why = g_strdup ("the request in flight did not end within 15 s of the kill");
      goto out;
    }
  untrack_pid (subprocess_pid (inflight.proc));
  {
    guint status;
    char *body = split_status (inflight.out, &status);

    g_test_message ("request in flight ended %.0f ms after the kill of llama-3 (after %"
                    G_GINT64_FORMAT " of its passes): HTTP %u %s",
                    (inflight.done_us - t_kill) / 1000.0, now - base, status, body);
    if (status < 500 || body == NULL || strstr (body, "llama-3") == NULL ||
        strstr (body, "unreachable") == NULL)
      {
        *why = g_strdup_printf ("the request in flight did not fail with the clear error: "
                                "HTTP %u %s", status, body);
        goto out;
      }
    if (inflight.done_us - t_kill > 5 * G_USEC_PER_SEC)
      {
        *why = g_strdup_printf ("the request in flight took %.0f ms to fail",
                                (inflight.done_us - t_kill) / 1000.0);
        goto out;
      }
  }
  {
    g_autofree char *ring = wait_common_ring (c, 0x3, 2, 10000);
    g_autofree char *got = NULL;
    gint64 base1[2];

    if (ring == NULL)
      {
        *why = g_strdup ("llama-1 and llama-2 did not re-partition into two shards within 10 s");
        goto out;
      }
    g_test_message ("after the kill: %s", ring);
    for (guint i = 0; i < 2; i++)
      base1[i] = live_node_metric (c, &c->nodes[i], "exo_node_layers_computed_total");
    got = stream_text (c, &c->nodes[0], lc, settings[0], why);
    if (got == NULL || g_strcmp0 (got, one[0]) != 0)
      {
        if (*why == NULL)
          *why = g_strdup ("the request after the kill: other tokens than one node's");
        goto out;
      }
    for (guint i = 0; i < 2; i++)
      if (live_node_metric (c, &c->nodes[i], "exo_node_layers_computed_total") <= base1[i])
        {
          *why = g_strdup_printf ("%s computed nothing after the re-partition", c->nodes[i].id);
          goto out;
        }
  }
  /* ended, not expired (session-timeout-ms is 6 s) */
  for (guint i = 0; i < 2; i++)
    {
      double sessions = wait_double (c, &c->nodes[i], "engine", "exo_engine_sessions", -1, 0, 2000);
      double expired = live_resource_metric_double (c, &c->nodes[i], "engine", "exo_engine_sessions_expired_total");

      if (sessions != 0 || expired != expired_before[i])
        {
          *why = g_strdup_printf ("%s's engine holds %g sessions after the failed request "
                                  "(%g expired meanwhile)", c->nodes[i].id, sessions,
                                  expired - expired_before[i]);
          goto out;
        }
    }
  ok = TRUE;
out:
  end_curls (&inflight, 1);
  return ok;
}

/* Then llama-3 starts again (a ring of three), and llama-1, the API node,
 * is killed while a long request of its flows through the ring: the middle
 * shard, whose next hop is alive, ends the request at once (nobody is left
 * to end it) instead of keeping its session until session-timeout-ms;
 * requests-orphaned counts it and no session expired. */
static gboolean
kill_api_node (Cluster         *c,
               const LlamaCase *lc,
               char           **why)
{
  AsyncCurl inflight = { 0 };
  g_autofree char *request = chat_request (lc, KILL_MAX_TOKENS, FALSE, settings[0]);
  g_autofree char *ring = NULL;
  g_autoptr(GError) error = NULL;
  double expired_before[2], sessions[2];
  gint64 base, now, t_kill, orphaned = 0;
  gboolean ok = FALSE;

  if (!start_node (c, &c->nodes[2], &error) || (ring = wait_common_ring (c, 0x7, 3, 15000)) == NULL)
    {
      *why = g_strdup_printf ("llama-3 did not rejoin a ring of three: %s",
                              error != NULL ? error->message : "no common ring within 15 s");
      goto out;
    }
  for (guint i = 0; i < 2; i++)
    expired_before[i] = live_resource_metric_double (c, &c->nodes[i + 1], "engine",
                                                     "exo_engine_sessions_expired_total");
  if (!flow_through (c, &c->nodes[0], &c->nodes[2], request, &inflight, &base, &now, why))
    goto out;
  t_kill = g_get_monotonic_time ();
  end_process (&c->nodes[0].proc, SIGKILL, 5000);
  for (guint i = 0; i < 2; i++)
    {
      sessions[i] = wait_double (c, &c->nodes[i + 1], "engine", "exo_engine_sessions", -1, 0,
                                 SESSION_TIMEOUT_MS / 2);
      orphaned += live_node_metric (c, &c->nodes[i + 1], "exo_node_requests_orphaned_total");
      if (sessions[i] != 0 ||
          live_resource_metric_double (c, &c->nodes[i + 1], "engine",
                                       "exo_engine_sessions_expired_total") != expired_before[i])
        {
          *why = g_strdup_printf ("ring %s: %s kept the request of its dead API node: %g sessions "
                                  "%d ms after the kill", ring, c->nodes[i + 1].id, sessions[i],
                                  SESSION_TIMEOUT_MS / 2);
          goto out;
        }
    }
  g_test_message ("ring %s, llama-1 killed: no session left after %.0f ms, requests-orphaned %"
                  G_GINT64_FORMAT, ring, (g_get_monotonic_time () - t_kill) / 1000.0, orphaned);
  if (orphaned < 1)
    {
      *why = g_strdup ("no node counted the request of its dead API node (requests-orphaned)");
      goto out;
    }
  ok = TRUE;
out:
  end_curls (&inflight, 1);
  return ok;
}

static void
test_identical (void)
{
  Cluster cl, *c = &cl;
  char *one[N_SETTINGS] = { NULL };
  g_autofree char *why = NULL;

  llama_cluster_init (c, FALSE, &fortunes);
  CHECK (one_two_three (c, &fortunes, one, &why), "%s", why);
  CHECK (stop_in_ring (c, &fortunes, one, &why), "%s", why);
  CHECK (max_sessions (c, &fortunes, one, &why), "%s", why);
  CHECK (kill_mid_request (c, &fortunes, one, &why), "%s", why);
  CHECK (kill_api_node (c, &fortunes, &why), "%s", why);
out:
  clear_texts (one);
  cluster_clear (c);
}

static void
test_stories (void)
{
  const char *path = g_getenv ("EXO_TEST_STORIES260K");
  Cluster cl, *c = &cl;
  char *one[N_SETTINGS] = { NULL };
  g_autofree char *why = NULL;
  g_autofree char *tokenizer = NULL;

  if (path == NULL || !g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_test_skip ("stories260K.bin is absent (../shared/models beside the source tree)");
      return;
    }
  llama_cluster_init (c, FALSE, &stories);
  CHECK (c->tmpdir != NULL, "cannot make a temporary folder");
  tokenizer = tiny_tokenizer_write_ids (512, c->tmpdir, "tokenizer-ids-512.bin");
  c->model = path;
  c->tokenizer = tokenizer;
  CHECK (one_two_three (c, &stories, one, &why), "%s", why);
out:
  clear_texts (one);
  cluster_clear (c);
}

static void
test_netns (void)
{
  Cluster cl, *c = &cl;
  char *one[N_SETTINGS] = { NULL };
  g_autofree char *why = NULL;

  if (!netns_begin (&why))
    {
      g_test_skip (why);
      return;
    }
  llama_cluster_init (c, TRUE, &fortunes);
  CHECK (one_two_three (c, &fortunes, one, &why), "%s", why);
out:
  clear_texts (one);
  cluster_clear (c);
  netns_teardown ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  harness_init ();

  g_test_add_func ("/cluster/llama/identical", test_identical);
  g_test_add_func ("/cluster/llama/stories260K", test_stories);
  g_test_add_func ("/cluster/llama/netns", test_netns);
  return g_test_run ();
}
