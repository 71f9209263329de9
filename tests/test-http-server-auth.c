/* test-http-server-auth.c: authentication — unsigned, forged, stale and
 * replayed /peer/ requests, ExoHttpPeer signing, unsigned answers, and API
 * keys on the OpenAI endpoints.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-http-server (main() in test-http-server.c).  One thread:
 * the server, the fake node and the clients run in the main context of the
 * test's thread; the test spins it until the asynchronous calls complete.
 */
#include "http-server-fixture.h"

/* --- authentication -------------------------------------------------------- */

/* The X-Exo-Auth value for a request, as a node holding @key makes it. */
static char *
sign_for (ExoClusterKey *key,
          const char    *method,
          const char    *path,
          const char    *shard,     /* X-Exo-Shard, or NULL */
          const char    *body,
          gint64         ts_us)
{
  const char *pairs[] = { "X-Exo-Node-Id", "test-client", "X-Exo-Shard", shard, NULL };

  if (shard == NULL)
    pairs[2] = NULL;
  return exo_cluster_key_sign_request (key, method, path, pairs, (const guint8 *) body,
                                       body != NULL ? strlen (body) : 0,
                                       ts_us != 0 ? ts_us : g_get_real_time (), NULL);
}

/* @auth as X-Exo-Auth (NULL: none) on an otherwise plain request. */
static Reply *
http_with_auth (Fixture    *fx,
                const char *method,
                const char *path,
                const char *body,
                const char *auth,
                const char *shard)
{
  const char *headers[] = { "X-Exo-Node-Id", "test-client", "X-Exo-Auth", auth,
                            "X-Exo-Shard", shard, NULL };

  if (shard == NULL)
    headers[4] = NULL;
  if (auth == NULL)
    headers[2] = NULL;
  return http_signed (fx, NULL, method, path, body != NULL ? "application/json" : NULL, body,
                      body != NULL ? strlen (body) : 0, headers);
}

static void
assert_refused (Reply      *reply,
                const char *reason)
{
  g_autofree char *needle = g_strdup_printf ("unauthenticated peer request (%s)", reason);

  assert_error_reply (reply, 401, needle);
}

/* Unsigned peer requests are refused with 401, on every /peer/ route,
 * before the node sees them; counted; logged once per 10 s. */
static void
test_auth_peer_unsigned (Fixture       *fx,
                         gconstpointer  data)
{
  g_autofree char *prompt = g_strdup_printf ("{\"shard\":%s,\"prompt\":\"p\",\"request_id\":\"r\"}",
                                             valid_shard);
  const struct { const char *method, *path, *body; } routes[] = {
    { "GET", "/peer/v1/health", NULL },
    { "GET", "/peer/v1/status", NULL },
    { "POST", "/peer/v1/prompt", prompt },
    { "POST", "/peer/v1/tensor", "\0\0\0\0" },
    { "POST", "/peer/v1/result", "{\"request_id\":\"r\",\"result\":[1],\"is_finished\":true}" },
    { "POST", "/peer/v1/topology", "{\"visited\":[],\"max_depth\":2}" },
  };

  g_ptr_array_set_size (refusals, 0);
  for (guint i = 0; i < G_N_ELEMENTS (routes); i++)
    {
      g_autoptr(Reply) reply = http_with_auth (fx, routes[i].method, routes[i].path,
                                               routes[i].body, NULL, NULL);

      assert_refused (reply, "missing");
    }
  /* an unsigned body is refused before it is read: even one over the size
   * limit gets 401 (not 413) */
  {
    gsize big = 2 * 1024 * 1024;
    g_autofree char *bytes = g_malloc (big);
    g_autoptr(Reply) reply = NULL;

    memset (bytes, ' ', big);
    reply = http_signed (fx, NULL, "POST", "/peer/v1/prompt", "application/json", bytes, big,
                         NULL);
    assert_refused (reply, "missing");
  }
  g_assert_cmpuint (fx->node->n_prompts + fx->node->n_tensors + fx->node->n_results +
                    fx->node->n_topologies, ==, 0);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-auth-missing"), ==, G_N_ELEMENTS (routes) + 1);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-auth-failures"), ==, G_N_ELEMENTS (routes) + 1);
  g_assert_cmpuint (refusals->len, ==, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (refusals, 0), "refused GET /peer/v1/health from 127.0.0.1"));
  /* the user API is open without api-keys */
  {
    g_autoptr(Reply) models = http_get (fx, "/v1/models");
    g_assert_cmpuint (models->status, ==, 200);
  }
}

/* Wrong key, altered body, header or path, malformed, stale, replayed:
 * each refused with 401, counted by reason; the node sees only the one
 * request that is genuine. */
static void
test_auth_peer_forged (Fixture       *fx,
                       gconstpointer  data)
{
  g_autoptr(ExoClusterKey) other_key = exo_cluster_key_new_random ();
  g_autofree char *body = g_strdup_printf ("{\"shard\":%s,\"prompt\":\"hello\",\"request_id\":\"r-1\"}",
                                           valid_shard);
  g_autofree char *altered = g_strdup_printf ("{\"shard\":%s,\"prompt\":\"HELLO\",\"request_id\":\"r-1\"}",
                                              valid_shard);
  const char *other_shard = "{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":14,\"n_layers\":16}";

  g_ptr_array_set_size (refusals, 0);
  {
    g_autofree char *auth = sign_for (other_key, "POST", "/peer/v1/prompt", NULL, body, 0);
    g_autoptr(Reply) reply = http_with_auth (fx, "POST", "/peer/v1/prompt", body, auth, NULL);
    assert_refused (reply, "bad-mac");
  }
  {
    g_autofree char *auth = sign_for (test_key, "POST", "/peer/v1/prompt", NULL, body, 0);
    g_autoptr(Reply) reply = http_with_auth (fx, "POST", "/peer/v1/prompt", altered, auth, NULL);
    assert_refused (reply, "bad-mac");
  }
  {
    g_autofree char *auth = sign_for (test_key, "POST", "/peer/v1/result", NULL, body, 0);
    g_autoptr(Reply) reply = http_with_auth (fx, "POST", "/peer/v1/prompt", body, auth, NULL);
    assert_refused (reply, "bad-mac");
  }
  {
    /* the shard of a tensor travels in a header: it is signed too */
    const char *headers[] = { "X-Exo-Node-Id", "test-client", "X-Exo-Request-Id", "r",
                              "X-Exo-Shard", other_shard, "X-Exo-Tensor-Dtype", "int32",
                              "X-Exo-Tensor-Shape", "1,1", "X-Exo-Auth", NULL, NULL };
    const char *signed_pairs[] = { "X-Exo-Node-Id", "test-client", "X-Exo-Request-Id", "r",
                                   "X-Exo-Shard", valid_shard, "X-Exo-Tensor-Dtype", "int32",
                                   "X-Exo-Tensor-Shape", "1,1", NULL };
    guint8 tensor[4] = { 0, };
    g_autofree char *auth = exo_cluster_key_sign_request (test_key, "POST", "/peer/v1/tensor",
                                                          signed_pairs, tensor, 4,
                                                          g_get_real_time (), NULL);
    g_autoptr(Reply) reply = NULL;

    headers[11] = auth;
    reply = http_signed (fx, NULL, "POST", "/peer/v1/tensor", "application/octet-stream",
                         tensor, 4, headers);
    assert_refused (reply, "bad-mac");
  }
  {
    g_autoptr(Reply) reply = http_with_auth (fx, "POST", "/peer/v1/prompt", body, "v1 garbage", NULL);
    assert_refused (reply, "malformed");
  }
  {
    g_autofree char *auth = sign_for (test_key, "POST", "/peer/v1/prompt", NULL, body,
                                      g_get_real_time () - 120 * G_USEC_PER_SEC);
    g_autoptr(Reply) reply = http_with_auth (fx, "POST", "/peer/v1/prompt", body, auth, NULL);
    assert_refused (reply, "stale");
  }
  {
    /* genuine once; the same request again is a replay */
    g_autofree char *auth = sign_for (test_key, "POST", "/peer/v1/prompt", NULL, body, 0);
    g_autoptr(Reply) first = http_with_auth (fx, "POST", "/peer/v1/prompt", body, auth, NULL);
    g_autoptr(Reply) again = http_with_auth (fx, "POST", "/peer/v1/prompt", body, auth, NULL);

    g_assert_cmpuint (first->status, ==, 202);
    assert_refused (again, "replay");

    /* and after a restart of the server, still */
    exo_test_cleanup (fx->server, NULL);
    g_assert_true (exo_test_initialize (fx->server, NULL));
    g_free (fx->address);
    fx->address = g_strdup_printf ("127.0.0.1:%u", exo_server_get_port (EXO_SERVER (fx->server)));
    {
      g_autoptr(Reply) after = http_with_auth (fx, "POST", "/peer/v1/prompt", body, auth, NULL);

      assert_refused (after, "replay");
    }
  }

  g_assert_cmpuint (fx->node->n_prompts, ==, 1);
  g_assert_cmpuint (fx->node->n_tensors, ==, 0);
  g_assert_cmpstr (fx->node->last_prompt, ==, "hello");
  g_assert_cmpuint (metric_u64 (fx->server, "peer-auth-bad-mac"), ==, 4);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-auth-malformed"), ==, 1);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-auth-stale"), ==, 1);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-auth-replay"), ==, 2);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-auth-failures"), ==, 8);
  /* one line per reason */
  g_assert_cmpuint (refusals->len, ==, 4);
  g_assert_cmpuint (refusals_containing ("(bad-mac)"), ==, 1);
  /* and it shows in /metrics */
  {
    g_autoptr(Reply) metrics = http_get (fx, "/metrics");
    g_autofree char *text = reply_text (metrics);

    g_assert_nonnull (strstr (text, "\nexo_http_peer_auth_failures_total{id=\"test-http\",reason=\"bad-mac\"} 4\n"));
  }
}

/* A peer handle with another key is refused by the server; a server that
 * does not sign its answers with our key is not a peer. */
static void
test_auth_peer_handle (Fixture       *fx,
                       gconstpointer  data)
{
  g_autoptr(ExoClusterKey) other_key = exo_cluster_key_new_random ();
  g_autoptr(GError) error = NULL;

  g_ptr_array_set_size (refusals, 0);
  exo_cluster_key_set_default (other_key);
  {
    g_autoptr(ExoResource) peer = peer_new (fx, "peer-other-key", "fake-node-1");

    g_assert_false (exo_test_initialize (peer, &error));
    g_test_message ("%s", error->message);
    g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
    g_assert_nonnull (strstr (error->message, "bad-mac"));
    g_clear_error (&error);
    exo_test_cleanup (peer, NULL);
  }
  exo_cluster_key_set_default (test_key);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-auth-bad-mac"), >=, 1);

  /* A server with another key: the two never talk (the server refuses our
   * signature before it answers; the handle would refuse its answer, see
   * /http/auth/answer-unsigned). */
  exo_test_cleanup (fx->server, NULL);
  exo_cluster_key_set_default (other_key);
  g_assert_true (exo_test_initialize (fx->server, NULL));
  g_free (fx->address);
  fx->port = exo_server_get_port (EXO_SERVER (fx->server));
  fx->address = g_strdup_printf ("127.0.0.1:%u", fx->port);
  exo_cluster_key_set_default (test_key);
  {
    g_autoptr(ExoResource) peer = peer_new (fx, "peer-answer-check", "fake-node-1");

    g_assert_false (exo_test_initialize (peer, &error));
    g_test_message ("%s", error->message);
    g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
    exo_test_cleanup (peer, NULL);
  }
  exo_test_spin (10);
}

static void
answer_unsigned (SoupServer        *server,
                 SoupServerMessage *msg,
                 const char        *path,
                 GHashTable        *query,
                 gpointer           user_data)
{
  static const char body[] = "{\"status\":\"ok\",\"node_id\":\"fake-node-1\"}";

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, body,
                                    sizeof body - 1);
}

/* Something that answers like a node but without the key's signature (an
 * address an attacker controls) never becomes a usable peer. */
static void
test_auth_answer_unsigned (Fixture       *fx,
                           gconstpointer  data)
{
  SoupServer *fake = soup_server_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoResource) peer = NULL;
  GSList *uris;
  guint port;

  soup_server_add_handler (fake, NULL, answer_unsigned, NULL, NULL);
  g_assert_true (soup_server_listen_local (fake, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  uris = soup_server_get_uris (fake);
  port = g_uri_get_port (uris->data);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  g_free (fx->address);
  fx->address = g_strdup_printf ("127.0.0.1:%u", port);

  peer = peer_new (fx, "peer-unsigned", "fake-node-1");
  g_assert_false (exo_test_initialize (peer, &error));
  g_test_message ("%s", error->message);
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
  g_assert_nonnull (strstr (error->message, "not signed with this cluster's key"));
  exo_test_cleanup (peer, NULL);
  soup_server_disconnect (fake);
  g_object_unref (fake);
  exo_test_spin (10);
}

static void
assert_openai_401 (Reply      *reply,
                   const char *code)
{
  g_autoptr(JsonNode) root = NULL;
  JsonObject *error;

  g_assert_cmpuint (reply->status, ==, 401);
  g_assert_cmpstr (reply->www_authenticate, ==, "Bearer realm=\"exo-node\"");
  root = reply_json (reply);
  error = json_object_get_object_member (json_node_get_object (root), "error");
  g_assert_nonnull (error);
  g_assert_cmpstr (json_object_get_string_member (error, "type"), ==, "invalid_request_error");
  g_assert_true (json_object_has_member (error, "param"));
  g_assert_nonnull (json_object_get_string_member (error, "message"));
  if (code == NULL)
    g_assert_true (json_node_is_null (json_object_get_member (error, "code")));
  else
    g_assert_cmpstr (json_object_get_string_member (error, "code"), ==, code);
}

/* With api-keys, the user API wants `Authorization: Bearer <key>` (401 in
 * OpenAI's shape otherwise); /healthcheck and peers are not affected. */
static void
test_auth_api_keys (Fixture       *fx,
                    gconstpointer  data)
{
  const char *keys[] = { "sk-alpha", "sk-beta", NULL };
  g_autoptr(ExoResource) keyed = g_object_new (server_type, "id", "test-http-keys", "port", 0,
                                               "listen-address", "127.0.0.1", "node", "test-node",
                                               "api-keys", keys, NULL);
  const char *alpha[] = { "Authorization", "Bearer sk-alpha", NULL };
  const char *beta[] = { "Authorization", "bearer   sk-beta", NULL };
  const char *wrong[] = { "Authorization", "Bearer sk-gamma", NULL };
  const char *basic[] = { "Authorization", "Basic c2stYWxwaGE=", NULL };
  const char *chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  g_autofree char *saved = g_steal_pointer (&fx->address);

  g_ptr_array_set_size (refusals, 0);
  g_assert_true (exo_test_initialize (keyed, NULL));
  fx->address = g_strdup_printf ("127.0.0.1:%u", exo_server_get_port (EXO_SERVER (keyed)));
  {
    g_autoptr(Reply) none = http_get (fx, "/v1/models");
    g_autoptr(Reply) bad = http (fx, "GET", "/v1/models", NULL, NULL, 0, wrong);
    g_autoptr(Reply) not_bearer = http (fx, "GET", "/v1/models", NULL, NULL, 0, basic);
    g_autoptr(Reply) chat_none = http_post_json (fx, "/v1/chat/completions", chat);
    g_autoptr(Reply) metrics_none = http_get (fx, "/metrics");
    g_autoptr(Reply) ok = http (fx, "GET", "/v1/models", NULL, NULL, 0, alpha);
    g_autoptr(Reply) ok2 = http (fx, "GET", "/v1/topology", NULL, NULL, 0, beta);
    g_autoptr(Reply) chat_ok = http (fx, "POST", "/v1/chat/completions", "application/json",
                                     chat, strlen (chat), alpha);
    g_autoptr(Reply) health = http_get (fx, "/healthcheck");
    g_autoptr(Reply) peer = http_get (fx, "/peer/v1/health");

    assert_openai_401 (none, NULL);
    assert_openai_401 (bad, "invalid_api_key");
    assert_openai_401 (not_bearer, NULL);
    assert_openai_401 (chat_none, NULL);
    g_assert_cmpuint (metrics_none->status, ==, 401);
    g_assert_cmpuint (ok->status, ==, 200);
    g_assert_cmpuint (ok2->status, ==, 200);
    g_assert_cmpuint (chat_ok->status, ==, 200);
    g_assert_cmpuint (health->status, ==, 200);
    g_assert_cmpuint (peer->status, ==, 200);
  }
  g_assert_cmpuint (fx->node->n_chats, ==, 1);
  g_assert_cmpuint (metric_u64 (keyed, "api-key-failures"), ==, 5);
  g_assert_cmpuint (metric_u64 (keyed, "api-keys"), ==, 2);
  g_assert_cmpuint (refusals_containing ("API key"), ==, 1);
  exo_test_cleanup (keyed, NULL);

  /* api-key-file: one key per line; refused when others may read it */
  {
    g_autofree char *dir = g_dir_make_tmp ("exo-api-keys-XXXXXX", NULL);
    g_autofree char *path = g_build_filename (dir, "keys", NULL);
    const char *file_key[] = { "Authorization", "Bearer sk-from-file", NULL };
    g_autoptr(ExoResource) from_file = NULL;
    g_autoptr(ExoResource) too_open = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_true (g_file_set_contents (path, "# keys of the user API\nsk-from-file\n\n", -1, NULL));
    g_assert_cmpint (g_chmod (path, 0600), ==, 0);
    from_file = g_object_new (server_type, "id", "test-http-keyfile", "port", 0,
                              "listen-address", "127.0.0.1", "node", "test-node",
                              "api-key-file", path, NULL);
    g_assert_true (exo_test_initialize (from_file, &error));
    g_assert_no_error (error);
    g_free (fx->address);
    fx->address = g_strdup_printf ("127.0.0.1:%u", exo_server_get_port (EXO_SERVER (from_file)));
    {
      g_autoptr(Reply) ok = http (fx, "GET", "/v1/models", NULL, NULL, 0, file_key);
      g_autoptr(Reply) none = http_get (fx, "/v1/models");

      g_assert_cmpuint (ok->status, ==, 200);
      assert_openai_401 (none, NULL);
    }
    exo_test_cleanup (from_file, NULL);

    g_assert_cmpint (g_chmod (path, 0644), ==, 0);
    too_open = g_object_new (server_type, "id", "test-http-keyfile-open", "port", 0,
                             "listen-address", "127.0.0.1", "node", "test-node",
                             "api-key-file", path, NULL);
    g_assert_false (exo_test_initialize (too_open, &error));
    g_test_message ("%s", error->message);
    g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
    g_assert_nonnull (strstr (error->message, "chmod 600"));
    exo_test_cleanup (too_open, NULL);
    g_remove (path);
    g_rmdir (dir);
  }
  g_free (fx->address);
  fx->address = g_steal_pointer (&saved);
}

void
test_http_server_register_auth (void)
{
  ADD ("auth/peer-unsigned", test_auth_peer_unsigned);
  ADD ("auth/peer-forged", test_auth_peer_forged);
  ADD ("auth/peer-handle", test_auth_peer_handle);
  ADD ("auth/answer-unsigned", test_auth_answer_unsigned);
  ADD ("auth/api-keys", test_auth_api_keys);
}
