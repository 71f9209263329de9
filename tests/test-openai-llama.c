/* test-openai-llama.c: the user API's OpenAI requests through a real
 * exo-node with the llama engine and the shipped model
 * (data/models/exo-fortunes.bin), asked with curl as a user would
 * (issue 11, item 5), with the harness of cluster-harness.c (one node).
 *
 * /openai/llama/models: GET /v1/models carries "created" (when the node
 *   started serving), GET /v1/models/{id} the same entry, another id 404.
 * /openai/llama/stop: greedy answers cut by `stop` strings, whole and
 *   streamed: the text is the greedy text up to the first stop string,
 *   without it; a string that spans two streamed tokens is held back and
 *   never sent; held-back text that turns out not to be one is sent at the
 *   end; "finish_reason" is "stop"; the engine keeps no session after.
 * /openai/llama/completions: POST /v1/completions without a chat template:
 *   "" generates from BOS alone (usage.prompt_tokens 1), whole and
 *   streamed with stream_options.include_usage; the same text both ways,
 *   without the leading space of the first piece (as llama2.c decodes
 *   after BOS), while the answer to a prompt of text keeps it; without
 *   max_tokens a completion generates OpenAI's 16 tokens, a chat the
 *   node's max-tokens.
 * /openai/llama/errors: n > 1, an unknown model, bad fields: OpenAI's
 *   error object with "param" and "code".
 * /openai/llama/quiet-log: the node logged no warning meanwhile; it stops.
 *
 * Environment (set by meson): EXO_NODE, EXO_TEST_PLUGIN_DIR, G_TEST_SRCDIR.
 *
 * Thread rules: one thread, the test's.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cluster-harness.h"

#include <string.h>

#define GREEDY_TOKENS 24
#define CHAT(extra) "{\"model\": \"exo-fortunes\", \"messages\": [{\"role\": \"user\", " \
                    "\"content\": \"In the\"}], \"temperature\": 0" extra "}"

/* One node for every case: started by the first that needs it. */
static Cluster cluster;
static gboolean cluster_up;
static gint64 started_s;

static Node *
the_node (void)
{
  Cluster *c = &cluster;
  g_autoptr(GError) error = NULL;
  g_autofree char *ring = NULL;

  if (cluster_up)
    return &c->nodes[0];
  if (c->exo_node == NULL || c->plugin_dir == NULL || c->tmpdir == NULL)
    {
      g_test_fail_printf ("EXO_NODE and EXO_TEST_PLUGIN_DIR must be set, and a temporary folder made");
      return NULL;
    }
  started_s = g_get_real_time () / G_USEC_PER_SEC;
  if (!write_configs (c, 0, 0, &error) || !start_bus (c, &error) ||
      !start_node (c, &c->nodes[0], &error))
    {
      g_test_fail_printf ("starting the node: %s", error != NULL ? error->message : "?");
      return NULL;
    }
  ring = wait_common_ring (c, 0x1, 1, 20000);
  if (ring == NULL)
    {
      g_test_fail_printf ("the node has no ring of its own within 20 s");
      return NULL;
    }
  cluster_up = TRUE;
  return &c->nodes[0];
}

/* POST (or GET without @body) through curl: the JSON answer, or NULL with
 * the test failed. */
static JsonNode *
ask (const char *path,
     const char *body,
     guint       expected)
{
  Node *n = the_node ();
  guint status = 0;
  g_autofree char *out = NULL;
  JsonNode *root;

  if (n == NULL)
    return NULL;
  out = http (&cluster, n, body != NULL ? "POST" : "GET", path, body, &status);
  root = parse_json (out);
  if (status != expected || root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_test_fail_printf ("%s %s: HTTP %u (not %u): %s", body != NULL ? "POST" : "GET", path, status,
                          expected, out != NULL ? out : "(nothing)");
      g_clear_pointer (&root, json_node_unref);
    }
  return root;
}

/* The one choice of a whole answer: its text (chat or completion) and
 * finish reason; the usage's counts. */
static char *
answer_text (JsonNode    *root,
             const char **finish,
             gint64      *prompt_tokens,
             gint64      *completion_tokens)
{
  JsonObject *o = json_node_get_object (root);
  JsonObject *choice = json_array_get_object_element (json_object_get_array_member (o, "choices"), 0);
  JsonObject *usage = json_object_get_object_member (o, "usage");

  *finish = json_object_get_string_member (choice, "finish_reason");
  *prompt_tokens = json_object_get_int_member (usage, "prompt_tokens");
  *completion_tokens = json_object_get_int_member (usage, "completion_tokens");
  if (json_object_has_member (choice, "message"))
    return g_strdup (json_object_get_string_member (json_object_get_object_member (choice, "message"),
                                                    "content"));
  return g_strdup (json_object_get_string_member (choice, "text"));
}

typedef struct {
  GPtrArray *pieces;            /* the text of each chunk that has some */
  char      *finish;
  gint64     prompt_tokens;     /* of the usage chunk; -1: none */
  gint64     completion_tokens;
  gboolean   done;
} Stream;

static void
stream_clear (Stream *s)
{
  g_clear_pointer (&s->pieces, g_ptr_array_unref);
  g_clear_pointer (&s->finish, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Stream, stream_clear)

static char *
stream_text (Stream *s)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < s->pieces->len; i++)
    g_string_append (text, g_ptr_array_index (s->pieces, i));
  return g_string_free (text, FALSE);
}

/* A request with "stream": true and stream_options.include_usage: FALSE
 * with the test failed unless it is OpenAI's stream (every chunk of
 * @object with "usage": null, then one without choices and with the usage,
 * then [DONE]). */
static gboolean
ask_stream (const char *path,
            const char *body,
            const char *object,
            Stream     *s)
{
  Node *n = the_node ();
  guint status = 0;
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;

  s->pieces = g_ptr_array_new_with_free_func (g_free);
  s->prompt_tokens = -1;
  if (n == NULL)
    return FALSE;
  out = http (&cluster, n, "POST", path, body, &status);
  if (status != 200 || out == NULL)
    {
      g_test_fail_printf ("POST %s: HTTP %u: %s", path, status, out != NULL ? out : "(nothing)");
      return FALSE;
    }
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonObject *chunk, *choice;
      JsonArray *choices;

      if (lines[i][0] == '\0')
        continue;
      if (s->done || (s->prompt_tokens >= 0 && !g_str_equal (lines[i], "data: [DONE]")))
        {
          g_test_fail_printf ("POST %s: \"%s\" after the usage or [DONE]", path, lines[i]);
          return FALSE;
        }
      if (g_str_equal (lines[i], "data: [DONE]"))
        {
          s->done = TRUE;
          continue;
        }
      root = g_str_has_prefix (lines[i], "data: {") ? parse_json (lines[i] + 6) : NULL;
      if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root) ||
          g_strcmp0 (json_object_get_string_member_with_default (json_node_get_object (root), "object",
                                                                 NULL), object) != 0 ||
          !json_object_has_member (json_node_get_object (root), "usage"))
        {
          g_test_fail_printf ("POST %s: not a %s event with \"usage\": %s", path, object, lines[i]);
          return FALSE;
        }
      chunk = json_node_get_object (root);
      choices = json_object_get_array_member (chunk, "choices");
      if (json_array_get_length (choices) == 0)
        {
          JsonObject *usage = json_object_get_object_member (chunk, "usage");

          s->prompt_tokens = json_object_get_int_member (usage, "prompt_tokens");
          s->completion_tokens = json_object_get_int_member (usage, "completion_tokens");
          continue;
        }
      if (!json_object_get_null_member (chunk, "usage") || s->finish != NULL)
        {
          g_test_fail_printf ("POST %s: a chunk with usage, or after the finish: %s", path, lines[i]);
          return FALSE;
        }
      choice = json_array_get_object_element (choices, 0);
      if (!json_object_get_null_member (choice, "finish_reason"))
        s->finish = g_strdup (json_object_get_string_member (choice, "finish_reason"));
      if (json_object_has_member (choice, "text") &&
          json_object_get_string_member (choice, "text")[0] != '\0')
        g_ptr_array_add (s->pieces, g_strdup (json_object_get_string_member (choice, "text")));
      else if (json_object_has_member (choice, "delta") &&
               json_object_has_member (json_object_get_object_member (choice, "delta"), "content"))
        g_ptr_array_add (s->pieces, g_strdup (json_object_get_string_member (
                                                json_object_get_object_member (choice, "delta"), "content")));
    }
  if (!s->done || s->finish == NULL || s->prompt_tokens < 0)
    {
      g_test_fail_printf ("POST %s: no finish, usage or [DONE]: %s", path, out);
      return FALSE;
    }
  return TRUE;
}

/* The engine holds no request state (its sessions gauge drops to 0). */
static gboolean
engine_idle (void)
{
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  double sessions;

  while ((sessions = live_resource_metric_double (&cluster, &cluster.nodes[0], "engine",
                                                  "exo_engine_sessions")) != 0 &&
         g_get_monotonic_time () < deadline)
    g_usleep (20 * 1000);
  if (sessions != 0)
    g_test_fail_printf ("the engine still holds %g sessions", sessions);
  return sessions == 0;
}

static void
test_models (void)
{
  g_autoptr(JsonNode) list = ask ("/v1/models", NULL, 200);
  g_autoptr(JsonNode) one = NULL;
  g_autoptr(JsonNode) none = NULL;
  JsonObject *model;
  gint64 created;

  if (list == NULL)
    return;
  model = json_array_get_object_element (json_object_get_array_member (json_node_get_object (list),
                                                                       "data"), 0);
  g_assert_cmpstr (json_object_get_string_member (model, "id"), ==, "exo-fortunes");
  g_assert_cmpstr (json_object_get_string_member (model, "object"), ==, "model");
  g_assert_cmpstr (json_object_get_string_member (model, "owned_by"), ==, "exo");
  created = json_object_get_int_member (model, "created");
  g_assert_cmpint (created, >=, started_s);
  g_assert_cmpint (created, <=, g_get_real_time () / G_USEC_PER_SEC);

  one = ask ("/v1/models/exo-fortunes", NULL, 200);
  g_assert_nonnull (one);
  g_assert_true (json_node_equal (one, json_array_get_element (json_object_get_array_member (
                                    json_node_get_object (list), "data"), 0)));
  none = ask ("/v1/models/gpt-4", NULL, 404);
  g_assert_nonnull (none);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (
                     json_node_get_object (none), "error"), "code"), ==, "model_not_found");
}

/* @stop as a JSON string (ASCII and the escapes JSON needs). */
static char *
json_string (const char *text)
{
  g_autoptr(JsonNode) node = json_node_init_string (json_node_alloc (), text);

  return json_to_string (node, FALSE);
}

/* The greedy text up to the first occurrence of @stop (all of it when
 * none). */
static char *
cut_at (const char *text,
        const char *stop)
{
  const char *at = strstr (text, stop);

  return at != NULL ? g_strndup (text, (gsize) (at - text)) : g_strdup (text);
}

static void
test_stop (void)
{
  g_autofree char *body = g_strdup_printf (CHAT (", \"max_tokens\": %d"), GREEDY_TOKENS);
  g_autoptr(JsonNode) whole = ask ("/v1/chat/completions", body, 200);
  g_autofree char *greedy = NULL;
  g_autofree char *stream_body = NULL;
  g_auto(Stream) plain = { 0 };
  const char *finish;
  gint64 prompt_tokens, completion_tokens;
  gsize len;

  if (whole == NULL)
    return;
  greedy = answer_text (whole, &finish, &prompt_tokens, &completion_tokens);
  g_test_message ("greedy: \"%s\"", greedy);
  g_assert_cmpstr (finish, ==, "length");
  g_assert_cmpint (completion_tokens, ==, GREEDY_TOKENS);
  g_assert_cmpint (prompt_tokens, ==, 9);   /* BOS and "user: In the\n" */
  len = strlen (greedy);
  g_assert_cmpuint (len, >=, 12);

  /* the same streamed: the pieces the stop strings below are made of */
  stream_body = g_strdup_printf (CHAT (", \"max_tokens\": %d, \"stream\": true, "
                                       "\"stream_options\": {\"include_usage\": true}"), GREEDY_TOKENS);
  if (!ask_stream ("/v1/chat/completions", stream_body, "chat.completion.chunk", &plain))
    return;
  {
    g_autofree char *text = stream_text (&plain);
    g_assert_cmpstr (text, ==, greedy);
  }

  /* whole: a string from the middle of the text */
  {
    g_autofree char *stop = g_strndup (greedy + len / 2, 3);
    g_autofree char *quoted = json_string (stop);
    g_autofree char *request = g_strdup_printf (CHAT (", \"max_tokens\": %d, \"stop\": [\"never seen\", %s]"),
                                                GREEDY_TOKENS, quoted);
    g_autoptr(JsonNode) cut = ask ("/v1/chat/completions", request, 200);
    g_autofree char *expected = cut_at (greedy, stop);
    g_autofree char *got = NULL;

    if (cut == NULL)
      return;
    got = answer_text (cut, &finish, &prompt_tokens, &completion_tokens);
    g_test_message ("stop \"%s\": \"%s\" (%" G_GINT64_FORMAT " tokens)", stop, got, completion_tokens);
    g_assert_cmpstr (got, ==, expected);
    g_assert_cmpstr (finish, ==, "stop");
    g_assert_cmpint (completion_tokens, <, GREEDY_TOKENS);
    g_assert_cmpint (prompt_tokens, ==, 9);
  }

  /* streamed: a string across two tokens' texts is never sent */
  for (guint k = 1; k + 1 < plain.pieces->len; k++)
    {
      const char *a = g_ptr_array_index (plain.pieces, k), *b = g_ptr_array_index (plain.pieces, k + 1);
      g_autofree char *stop = NULL, *quoted = NULL, *request = NULL, *expected = NULL, *got = NULL;
      g_auto(Stream) cut = { 0 };

      if (strlen (a) < 2 || strlen (b) < 1)
        continue;
      stop = g_strdup_printf ("%s%c", a + strlen (a) - 2, b[0]);
      quoted = json_string (stop);
      request = g_strdup_printf (CHAT (", \"max_tokens\": %d, \"stream\": true, \"stop\": %s, "
                                       "\"stream_options\": {\"include_usage\": true}"),
                                 GREEDY_TOKENS, quoted);
      if (!ask_stream ("/v1/chat/completions", request, "chat.completion.chunk", &cut))
        return;
      got = stream_text (&cut);
      expected = cut_at (greedy, stop);
      g_test_message ("streamed, stop \"%s\" across tokens %u and %u: \"%s\"", stop, k, k + 1, got);
      g_assert_cmpstr (got, ==, expected);
      g_assert_cmpstr (cut.finish, ==, "stop");
      g_assert_cmpint (cut.prompt_tokens, ==, 9);
      g_assert_cmpint (cut.completion_tokens, <=, (gint64) k + 2);
      for (guint i = 0; i < cut.pieces->len; i++)
        g_assert_null (strstr (g_ptr_array_index (cut.pieces, i), stop));
      break;
    }

  /* held back, then not a stop string after all: sent at the end */
  {
    g_autofree char *stop = g_strdup_printf ("%c\x01", greedy[len - 1]);
    g_autofree char *quoted = json_string (stop);
    g_autofree char *request = g_strdup_printf (CHAT (", \"max_tokens\": %d, \"stream\": true, "
                                                      "\"stop\": %s, \"stream_options\": "
                                                      "{\"include_usage\": true}"), GREEDY_TOKENS, quoted);
    g_auto(Stream) held = { 0 };
    g_autofree char *got = NULL;

    if (!ask_stream ("/v1/chat/completions", request, "chat.completion.chunk", &held))
      return;
    got = stream_text (&held);
    g_assert_cmpstr (got, ==, greedy);
    g_assert_cmpstr (held.finish, ==, "length");
    g_assert_cmpint (held.completion_tokens, ==, GREEDY_TOKENS);
  }
  /* a stopped request leaves nothing in the engine */
  engine_idle ();
}

static void
test_completions (void)
{
  g_autoptr(JsonNode) whole = ask ("/v1/completions", "{\"prompt\": \"\", \"max_tokens\": 16, "
                                   "\"temperature\": 0}", 200);
  g_autoptr(JsonNode) prompted = NULL;
  g_auto(Stream) streamed = { 0 };
  g_autofree char *text = NULL, *again = NULL, *other = NULL;
  const char *finish;
  gint64 prompt_tokens, completion_tokens;
  JsonObject *o;

  if (whole == NULL)
    return;
  o = json_node_get_object (whole);
  g_assert_cmpstr (json_object_get_string_member (o, "object"), ==, "text_completion");
  g_assert_true (g_str_has_prefix (json_object_get_string_member (o, "id"), "cmpl-"));
  g_assert_cmpstr (json_object_get_string_member (o, "model"), ==, "exo-fortunes");
  g_assert_true (json_object_get_null_member (json_array_get_object_element (
                   json_object_get_array_member (o, "choices"), 0), "logprobs"));
  text = answer_text (whole, &finish, &prompt_tokens, &completion_tokens);
  g_test_message ("from BOS: \"%s\"", text);
  g_assert_cmpint (prompt_tokens, ==, 1);        /* BOS alone */
  g_assert_cmpint (completion_tokens, ==, 16);
  g_assert_cmpstr (finish, ==, "length");
  g_assert_cmpuint (strlen (text), >, 0);
  /* the piece after BOS without its leading space (" One" at the start of
   * a text is "One", as llama2.c prints it) */
  g_assert_true (text[0] != ' ');

  if (!ask_stream ("/v1/completions", "{\"prompt\": \"\", \"max_tokens\": 16, \"temperature\": 0, "
                   "\"stream\": true, \"stream_options\": {\"include_usage\": true}}",
                   "text_completion", &streamed))
    return;
  again = stream_text (&streamed);
  g_assert_cmpstr (again, ==, text);
  g_assert_cmpstr (streamed.finish, ==, "length");
  g_assert_cmpint (streamed.prompt_tokens, ==, 1);
  g_assert_cmpint (streamed.completion_tokens, ==, 16);
  g_assert_cmpuint (streamed.pieces->len, >, 0);
  g_assert_true (((const char *) g_ptr_array_index (streamed.pieces, 0))[0] != ' ');

  /* without max_tokens: OpenAI's 16 tokens, the same greedy text */
  {
    g_autoptr(JsonNode) unbounded = ask ("/v1/completions", "{\"prompt\": \"\", \"temperature\": 0}", 200);
    g_autofree char *same = NULL;

    if (unbounded == NULL)
      return;
    same = answer_text (unbounded, &finish, &prompt_tokens, &completion_tokens);
    g_assert_cmpint (completion_tokens, ==, 16);
    g_assert_cmpstr (finish, ==, "length");
    g_assert_cmpstr (same, ==, text);
  }
  /* a chat without max_tokens: the node's max-tokens (64 here) */
  {
    g_autoptr(JsonNode) chat = ask ("/v1/chat/completions", CHAT (""), 200);
    g_autofree char *reply = NULL;

    if (chat == NULL)
      return;
    reply = answer_text (chat, &finish, &prompt_tokens, &completion_tokens);
    g_assert_cmpint (completion_tokens, >, 16);
  }
  /* a prompt of text: its answer keeps the space of its first piece
   * ("The" goes on with " Universe") */
  {
    g_autoptr(JsonNode) the = ask ("/v1/completions", "{\"prompt\": \"The\", \"max_tokens\": 4, "
                                   "\"temperature\": 0}", 200);
    g_autofree char *goes_on = NULL;

    if (the == NULL)
      return;
    goes_on = answer_text (the, &finish, &prompt_tokens, &completion_tokens);
    g_test_message ("after \"The\": \"%s\"", goes_on);
    g_assert_true (goes_on[0] == ' ');
  }

  /* no chat template: "In the" is fewer tokens than the chat's 9 */
  prompted = ask ("/v1/completions", "{\"prompt\": \"In the\", \"max_tokens\": 4}", 200);
  if (prompted == NULL)
    return;
  other = answer_text (prompted, &finish, &prompt_tokens, &completion_tokens);
  g_assert_cmpint (prompt_tokens, >, 1);
  g_assert_cmpint (prompt_tokens, <, 9);
  g_assert_cmpint (completion_tokens, ==, 4);
  engine_idle ();
}

/* A generation that fills the model's context (max-seq-len 256) ends
 * with the text so far and the finish reason "length", whole and
 * streamed, as OpenAI's does at a model's context length; not with an
 * error that loses the text. */
static void
test_context_full (void)
{
  g_autoptr(GString) body = g_string_new ("{\"prompt\": \"");
  g_autoptr(JsonNode) whole = NULL;
  g_auto(Stream) streamed = { 0 };
  g_autofree char *text = NULL, *again = NULL;
  const char *finish;
  gint64 prompt_tokens, completion_tokens;

  for (guint i = 0; i < 115; i++)
    g_string_append (body, "q ");
  g_string_append (body, "\", \"max_tokens\": 60, \"temperature\": 2, \"seed\": 5");
  {
    g_autofree char *request = g_strdup_printf ("%s}", body->str);

    whole = ask ("/v1/completions", request, 200);
  }
  if (whole == NULL)
    return;
  text = answer_text (whole, &finish, &prompt_tokens, &completion_tokens);
  g_test_message ("%" G_GINT64_FORMAT " + %" G_GINT64_FORMAT " tokens, %s", prompt_tokens,
                  completion_tokens, finish);
  g_assert_cmpstr (finish, ==, "length");
  g_assert_cmpint (prompt_tokens, >, 196);
  g_assert_cmpint (completion_tokens, <, 60);
  /* 256 positions computed; the token sampled from the last is the
   * answer's last */
  g_assert_cmpint (prompt_tokens + completion_tokens, ==, 257);
  {
    g_autofree char *request = g_strdup_printf ("%s, \"stream\": true, "
                                                "\"stream_options\": {\"include_usage\": true}}",
                                                body->str);

    if (!ask_stream ("/v1/completions", request, "text_completion", &streamed))
      return;
  }
  again = stream_text (&streamed);
  g_assert_cmpstr (again, ==, text);
  g_assert_cmpstr (streamed.finish, ==, "length");
  g_assert_cmpint (streamed.completion_tokens, ==, completion_tokens);
}

static void
test_errors (void)
{
  static const struct { const char *path, *body; guint status; const char *param, *code; } cases[] = {
    { "/v1/chat/completions", CHAT (", \"n\": 2"), 400, "n", NULL },
    { "/v1/chat/completions", CHAT (", \"max_tokens\": 0"), 400, "max_tokens", NULL },
    { "/v1/chat/completions", CHAT (", \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]"), 400, "stop", NULL },
    { "/v1/chat/completions", "{\"model\": \"gpt-4\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}",
      404, "model", "model_not_found" },
    { "/v1/completions", "{\"prompt\": [[1, 2]]}", 400, "prompt", NULL },
    { "/v1/completions", "{\"prompt\": \"x\", \"stream_options\": {\"include_usage\": true}}", 400,
      "stream_options", NULL },
    { "/v1/embeddings", "{}", 404, NULL, "unknown_url" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(JsonNode) root = ask (cases[i].path, cases[i].body, cases[i].status);
      JsonObject *e;

      if (root == NULL)
        return;
      e = json_object_get_object_member (json_node_get_object (root), "error");
      g_assert_nonnull (e);
      g_assert_cmpuint (json_object_get_size (e), ==, 4);
      g_assert_cmpstr (json_object_get_string_member (e, "type"), ==, "invalid_request_error");
      g_assert_cmpstr (json_object_get_string_member_with_default (e, "param", NULL), ==, cases[i].param);
      g_assert_cmpstr (json_object_get_string_member_with_default (e, "code", NULL), ==, cases[i].code);
      g_assert_nonnull (json_object_get_string_member (e, "message"));
    }
}

/* Last: the node logged no warning (a request a stop string ended is
 * dropped quietly where its work was still under way); then it stops. */
static void
test_quiet_log (void)
{
  Node *n = the_node ();
  g_autofree char *path = NULL;
  g_autofree char *log = NULL;
  g_auto(GStrv) lines = NULL;

  if (n == NULL)
    return;
  path = g_strdup_printf ("%s/%s.%u.log", cluster.tmpdir, n->id, n->starts);
  g_assert_true (g_file_get_contents (path, &log, NULL, NULL));
  lines = g_strsplit (log, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], "warning:") != NULL && strstr (lines[i], "dbus-daemon") == NULL)
      g_test_fail_printf ("the node warned: %s", lines[i]);
  cluster_clear (&cluster);
  cluster_up = FALSE;
}

int
main (int argc, char **argv)
{

  g_test_init (&argc, &argv, NULL);
  harness_init ();
  cluster_init (&cluster, FALSE);
  cluster.template_name = "node-llama.json.in";
  cluster.model_id = "exo-fortunes";
  cluster.node_max_tokens = 64;
  g_free (cluster.nodes[0].id);
  cluster.nodes[0].id = g_strdup ("openai-1");
  g_free (cluster.nodes[0].bus_name);
  cluster.nodes[0].bus_name = g_strdup ("org.exo.Test.OpenAI.N1");

  g_test_add_func ("/openai/llama/models", test_models);
  g_test_add_func ("/openai/llama/stop", test_stop);
  g_test_add_func ("/openai/llama/completions", test_completions);
  g_test_add_func ("/openai/llama/context-full", test_context_full);
  g_test_add_func ("/openai/llama/errors", test_errors);
  g_test_add_func ("/openai/llama/quiet-log", test_quiet_log);
  return g_test_run ();
}
