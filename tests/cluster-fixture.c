/* cluster-fixture.c: what the parts of test-cluster share beyond
 * cluster-harness.c — the body of a chat completion, and a chat completion
 * through a node of a Cluster, checked against the dummy engine's tokens.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One thread, the test's: the chat is cluster-harness.c's blocking http();
 * nothing here keeps state between calls.
 */
#include "cluster-fixture.h"

const char *
chat_body (void)
{
  return "{\"model\": \"dummy\", \"messages\": [{\"role\": \"user\", \"content\": \"hello\"}]}";
}

/* A chat completion through @n, with the OpenAI fields @extra (e.g.
 * "\"max_tokens\": 3") if not NULL: checks the answer is
 * @expected_tokens dummy tokens. */
gboolean
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

gboolean
chat_ok (Cluster *c,
         Node    *n,
         guint    expected_tokens,
         char   **why)
{
  return chat_ok_with (c, n, NULL, expected_tokens, why);
}
