/* test-http-server-server.c: the ExoHttpServer itself — listening,
 * the simple endpoints and their errors, size limits, /metrics, file
 * descriptors and fuzzed requests.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-http-server (main() in test-http-server.c).  One thread:
 * the server, the fake node and the clients run in the main context of the
 * test's thread; the test spins it until the asynchronous calls complete.
 */
#include "http-server-fixture.h"

/* --- listening ------------------------------------------------------------- */

static void
test_listen (Fixture       *fx,
             gconstpointer  data)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (fx->server);
  g_autoptr(ExoResource) defaults = g_object_new (server_type, "id", "defaults", NULL);
  guint port = 0, max_json = 0;
  guint64 max_body = 0;
  g_autofree char *address = NULL, *node = NULL;

  g_assert_true (g_variant_lookup (metrics, "port", "u", &port));
  g_assert_cmpuint (port, ==, fx->port);
  g_assert_cmpstr (exo_server_get_listen_address (EXO_SERVER (fx->server)), ==, "127.0.0.1");
  g_assert_cmpstr (exo_resource_get_resource_type (fx->server), ==, "http-server");

  /* the documented defaults */
  g_object_get (defaults, "port", &port, "listen-address", &address, "node", &node,
                "max-body-bytes", &max_body, NULL);
  g_assert_cmpuint (port, ==, 52415);
  g_assert_cmpstr (address, ==, "0.0.0.0");
  g_assert_cmpstr (node, ==, "node");
  g_assert_cmpuint (max_body, ==, 16 * 1024 * 1024);
  {
    guint64 v = 0;
    g_object_get (defaults, "max-json-bytes", &v, NULL);
    max_json = (guint) v;
  }
  g_assert_cmpuint (max_json, ==, 1024 * 1024);
}

static void
test_address_in_use (Fixture       *fx,
                     gconstpointer  data)
{
  g_autoptr(ExoResource) second = server_new ("test-http-2", fx->port, "test-node");
  g_autoptr(ExoResource) bad = g_object_new (server_type, "id", "test-http-3",
                                             "listen-address", "not-an-address", NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *expected = g_strdup_printf ("cannot listen on 127.0.0.1:%u: Address already in use",
                                               fx->port);

  g_assert_false (exo_test_initialize (second, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
  g_assert_cmpstr (error->message, ==, expected);
  /* fatal: one attempt, no retries */
  g_assert_cmpuint (exo_resource_get_attempts (second), ==, 1);
  g_clear_error (&error);

  g_assert_false (exo_test_initialize (bad, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
  g_assert_nonnull (strstr (error->message, "not-an-address"));
}

/* --- simple endpoints ------------------------------------------------------ */

static void
test_healthcheck (Fixture       *fx,
                  gconstpointer  data)
{
  g_autoptr(Reply) reply = http_get (fx, "/healthcheck");
  g_autoptr(Reply) head = http (fx, "HEAD", "/healthcheck", NULL, NULL, 0, NULL);
  g_autofree char *text = reply_text (reply);

  g_assert_cmpuint (reply->status, ==, 200);
  g_assert_cmpstr (reply->content_type, ==, "application/json");
  g_assert_cmpstr (text, ==, "{\"status\":\"ok\"}");
  g_assert_cmpuint (head->status, ==, 200);
}

static void
test_node_not_ready (Fixture       *fx,
                     gconstpointer  data)
{
  g_autoptr(ExoResource) lonely = server_new ("test-http-lonely", 0, "no-such-node");
  g_autoptr(GError) error = NULL;
  g_autofree char *saved = NULL;

  g_assert_true (exo_test_initialize (lonely, &error));
  g_assert_no_error (error);
  saved = fx->address;
  fx->address = g_strdup_printf ("127.0.0.1:%u", exo_server_get_port (EXO_SERVER (lonely)));

  {
    g_autoptr(Reply) health = http_get (fx, "/peer/v1/health");
    g_autoptr(Reply) models = http_get (fx, "/v1/models");
    g_autoptr(Reply) chat = http_post_json (fx, "/v1/chat/completions",
                                            "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    g_autoptr(Reply) healthcheck = http_get (fx, "/healthcheck");

    assert_error_reply (health, 503, "node not ready");
    assert_error_reply (models, 503, "node not ready");
    assert_error_reply (chat, 503, "node not ready");
    g_assert_cmpuint (healthcheck->status, ==, 200);
  }

  /* a node that is not usable is not ready either */
  g_free (fx->address);
  fx->address = g_steal_pointer (&saved);
  exo_test_cleanup (EXO_RESOURCE (fx->node), NULL);
  {
    g_autoptr(Reply) health = http_get (fx, "/peer/v1/health");
    assert_error_reply (health, 503, "node not ready");
  }
  g_assert_true (exo_test_initialize (EXO_RESOURCE (fx->node), NULL));
  {
    g_autoptr(Reply) health = http_get (fx, "/peer/v1/health");
    g_assert_cmpuint (health->status, ==, 200);
  }

  exo_test_cleanup (lonely, NULL);
}

/* A node that lacks a call: 501 with the call named, for users and peers;
 * /peer/v1/health still answers (without a node id). */
static void
test_node_lacks_calls (Fixture       *fx,
                       gconstpointer  data)
{
  g_autoptr(ExoResource) bare = g_object_new (TEST_TYPE_BARE_NODE, "id", "test-bare-node", NULL);
  g_autoptr(ExoResource) server = server_new ("test-http-bare", 0, "test-bare-node");
  g_autoptr(GError) error = NULL;
  g_autofree char *saved = fx->address;

  g_assert_true (exo_test_initialize (bare, &error));
  g_assert_true (exo_test_initialize (server, &error));
  g_assert_no_error (error);
  fx->address = g_strdup_printf ("127.0.0.1:%u", exo_server_get_port (EXO_SERVER (server)));
  {
    g_autoptr(Reply) models = http_get (fx, "/v1/models");
    g_autoptr(Reply) topology = http_get (fx, "/v1/topology");
    g_autoptr(Reply) chat = http_post_json (fx, "/v1/chat/completions",
                                            "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    g_autoptr(Reply) cancel = http_post_json (fx, "/peer/v1/cancel", "{\"request_id\":\"r-1\"}");
    g_autoptr(Reply) peer_topology = http_post_json (fx, "/peer/v1/topology",
                                                     "{\"visited\":[],\"max_depth\":1}");
    g_autoptr(Reply) health = http_get (fx, "/peer/v1/health");
    g_autoptr(JsonNode) health_root = NULL;

    assert_error_reply (models, 501, "does not implement list_models");
    assert_error_reply (topology, 501, "does not implement get_topology");
    assert_error_reply (chat, 501, "does not implement chat_async");
    assert_error_reply (cancel, 501, "does not implement cancel_request");
    assert_error_reply (peer_topology, 501, "does not implement collect_topology_async");
    g_assert_cmpuint (health->status, ==, 200);
    health_root = reply_json (health);
    g_assert_cmpstr (json_object_get_string_member (json_node_get_object (health_root), "node_id"), ==, "");
  }
  g_free (fx->address);
  fx->address = g_steal_pointer (&saved);
  exo_test_cleanup (server, NULL);
  exo_test_cleanup (bare, NULL);
}

static void
test_not_found_and_method (Fixture       *fx,
                           gconstpointer  data)
{
  g_autoptr(Reply) missing = http_get (fx, "/v2/nothing");
  g_autoptr(Reply) prefix = http_get (fx, "/v1/models/extra");
  g_autoptr(Reply) get_chat = http_get (fx, "/v1/chat/completions");
  g_autoptr(Reply) post_metrics = http_post_json (fx, "/metrics", "{}");
  g_autoptr(Reply) put_prompt = http (fx, "PUT", "/peer/v1/prompt", "application/json", "{}", 2, NULL);
  g_autoptr(Reply) delete_health = http (fx, "DELETE", "/healthcheck", NULL, NULL, 0, NULL);

  assert_error_reply (missing, 404, "/v2/nothing");
  assert_error_reply (prefix, 404, NULL);
  assert_error_reply (get_chat, 405, "POST");
  g_assert_cmpstr (get_chat->allow, ==, "POST");
  assert_error_reply (post_metrics, 405, NULL);
  g_assert_cmpstr (post_metrics->allow, ==, "GET, HEAD");
  assert_error_reply (put_prompt, 405, NULL);
  g_assert_cmpstr (put_prompt->allow, ==, "POST");
  assert_error_reply (delete_health, 405, NULL);
}

/* --- size limits ----------------------------------------------------------- */

static void
test_size_limits (Fixture       *fx,
                  gconstpointer  data)
{
  g_autofree char *big_json = NULL;
  g_autofree guint8 *big_tensor = g_malloc0 (8192);
  const char *headers[] = {
    "X-Exo-Request-Id", "r", "X-Exo-Shard", valid_shard,
    "X-Exo-Tensor-Dtype", "float32", "X-Exo-Tensor-Shape", "2048", NULL,
  };
  GString *s = g_string_new ("{\"messages\":[{\"role\":\"user\",\"content\":\"");

  g_object_set (fx->server, "max-json-bytes", (guint64) 2048, "max-body-bytes", (guint64) 4096, NULL);
  while (s->len < 3000)
    g_string_append (s, "aaaaaaaaaaaaaaaa");
  g_string_append (s, "\"}]}");
  big_json = g_string_free (s, FALSE);

  {
    g_autoptr(Reply) reply = http_post_json (fx, "/v1/chat/completions", big_json);
    assert_error_reply (reply, 413, "2048");
  }
  {
    g_autoptr(Reply) reply = http_post_json (fx, "/peer/v1/prompt", big_json);
    assert_error_reply (reply, 413, "max-json-bytes");
  }
  {
    g_autoptr(Reply) reply = http (fx, "POST", "/peer/v1/tensor", "application/octet-stream",
                                   big_tensor, 8192, headers);
    assert_error_reply (reply, 413, "max-body-bytes");
  }
  /* a tensor between the JSON and the body limit passes */
  {
    const char *h[] = { "X-Exo-Request-Id", "r", "X-Exo-Shard", valid_shard,
                        "X-Exo-Tensor-Dtype", "float32", "X-Exo-Tensor-Shape", "768", NULL };
    g_autoptr(Reply) reply = http (fx, "POST", "/peer/v1/tensor", "application/octet-stream",
                                   big_tensor, 3072, h);
    g_assert_cmpuint (reply->status, ==, 202);
  }
  g_assert_cmpuint (fx->node->n_chats, ==, 0);
  g_assert_cmpuint (fx->node->n_prompts, ==, 0);
  g_assert_cmpuint (fx->node->n_tensors, ==, 1);

  /* the server still serves */
  {
    g_autoptr(Reply) reply = http_get (fx, "/healthcheck");
    g_assert_cmpuint (reply->status, ==, 200);
  }
}

/* A chunked body (no Content-Length) over the limit, sent with curl. */
static void
test_size_limit_chunked (Fixture       *fx,
                         gconstpointer  data)
{
  g_autofree char *url = g_strdup_printf ("http://%s/v1/chat/completions", fx->address);
  g_autoptr(GSubprocess) curl = NULL;
  g_autoptr(GBytes) input = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  GString *body = g_string_new ("{\"messages\":[{\"role\":\"user\",\"content\":\"");

  if (!have_curl ())
    {
      g_test_skip ("curl is not installed");
      g_string_free (body, TRUE);
      return;
    }
  g_object_set (fx->server, "max-json-bytes", (guint64) 4096, NULL);
  while (body->len < 20000)
    g_string_append (body, "bbbbbbbbbbbbbbbb");
  g_string_append (body, "\"}]}");
  input = g_string_free_to_bytes (body);

  curl = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                           "curl", "-s", "--max-time", "20", "-H", "Transfer-Encoding: chunked",
                           "-H", "Content-Type: application/json", "--data-binary", "@-",
                           "-w", "\n%{http_code}", url, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_async (curl, input, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  {
    g_autoptr(GBytes) stdout_bytes = NULL;
    g_subprocess_communicate_finish (curl, result, &stdout_bytes, NULL, &error);
    g_assert_no_error (error);
    out = g_strndup (g_bytes_get_data (stdout_bytes, NULL), g_bytes_get_size (stdout_bytes));
  }
  g_assert_true (g_str_has_suffix (out, "\n413"));
  g_assert_nonnull (strstr (out, "max-json-bytes"));
  g_assert_cmpuint (fx->node->n_chats, ==, 0);
}

/* --- file descriptors ------------------------------------------------------ */

static guint
count_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

typedef struct
{
  guint limit;
} FdWait;

static gboolean
fds_back_to (gpointer data)
{
  return count_fds () <= ((FdWait *) data)->limit;
}

static gboolean
all_closed_idle (gpointer data)
{
  return metric_u64 (data, "connections-closed-idle") == 120;
}

/* Clients that connect, ask and leave (as curl does) cost the server no
 * file descriptor afterwards: every connection is kept alive, and one the
 * client closes between requests is closed here too (libsoup 3.2 alone
 * keeps it: see http-connections.c). */
static void
test_no_fd_leak (Fixture       *fx,
                 gconstpointer  data)
{
  SoupSession *saved = fx->session;
  FdWait wait;
  guint before;

  if (!g_file_test ("/proc/self/fd", G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no /proc/self/fd");
      return;
    }
  {
    /* warm up: the first request creates the resolver and such */
    g_autoptr(Reply) reply = http_get (fx, "/healthcheck");
  }
  before = count_fds ();
  for (guint i = 0; i < 100; i++)
    {
      g_autoptr(Reply) reply = NULL;

      fx->session = soup_session_new ();
      reply = http_get (fx, i % 2 ? "/healthcheck" : "/v1/models");
      g_assert_cmpuint (reply->status, ==, 200);
      soup_session_abort (fx->session);
      g_clear_object (&fx->session);
    }
  wait.limit = before + 2;
  if (!exo_test_spin_until (fds_back_to, &wait, WAIT_MS))
    g_error ("%u file descriptors before 100 connections, %u after", before, count_fds ());

  /* Peers too; when they close their connection, so does the server. */
  g_assert_true (metric_u64 (fx->server, "keep-alive"));
  for (guint i = 0; i < 20; i++)
    {
      const char *peer_header[] = { "X-Exo-Peer", "1", NULL };

      fx->session = soup_session_new ();
      for (guint j = 0; j < 3; j++)
        {
          g_autoptr(Reply) reply = http (fx, "GET", "/peer/v1/health", NULL, NULL, 0, peer_header);
          g_assert_cmpuint (reply->status, ==, 200);
        }
      soup_session_abort (fx->session);
      g_clear_object (&fx->session);
    }
  fx->session = saved;
  if (!exo_test_spin_until (fds_back_to, &wait, WAIT_MS))
    g_error ("%u file descriptors before 20 peer sessions, %u after (%" G_GUINT64_FORMAT
             " closed idle, %" G_GUINT64_FORMAT " open)", before, count_fds (),
             metric_u64 (fx->server, "connections-closed-idle"),
             metric_u64 (fx->server, "connections-open"));
  g_assert_true (exo_test_spin_until (all_closed_idle, fx->server, WAIT_MS));
  g_assert_cmpuint (metric_u64 (fx->server, "connections-open"), ==, 1);
  g_assert_cmpuint (metric_u64 (fx->server, "connections"), ==, 1 + 100 + 20);
}

/* --- /metrics -------------------------------------------------------------- */

static void
test_metrics (Fixture       *fx,
              gconstpointer  data)
{
  g_autoptr(ExoResource) pool = g_object_new (EXO_TYPE_RESOURCE_POOL, "id", "test-pool",
                                              "item-type", EXO_TYPE_TEST_RESOURCE,
                                              "max-size", 3, NULL);
  g_autoptr(Reply) warmup = http_get (fx, "/healthcheck");
  g_autoptr(Reply) missing = http_get (fx, "/nope");
  g_autoptr(Reply) reply = NULL;
  g_autoptr(GRegex) sample = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  guint n_samples = 0;

  g_assert_true (exo_test_initialize (pool, NULL));
  reply = http_get (fx, "/metrics");
  g_assert_cmpuint (reply->status, ==, 200);
  g_assert_true (g_str_has_prefix (reply->content_type, "text/plain"));
  text = reply_text (reply);

  /* Prometheus text format 0.0.4: each sample `name{labels} value` */
  sample = g_regex_new ("^[a-zA-Z_:][a-zA-Z0-9_:]*"
                        "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\\n]|\\\\[\\\\\"n])*\""
                        "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\\n]|\\\\[\\\\\"n])*\")*\\})?"
                        " (-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|[+-]Inf)$", 0, 0, &error);
  g_assert_no_error (error);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (lines[i][0] == '\0')
        continue;
      if (lines[i][0] == '#')
        {
          g_assert_true (g_str_has_prefix (lines[i], "# HELP ") || g_str_has_prefix (lines[i], "# TYPE "));
          continue;
        }
      if (!g_regex_match (sample, lines[i], 0, NULL))
        g_error ("not a Prometheus sample: '%s'", lines[i]);
      n_samples++;
    }
  g_assert_cmpuint (n_samples, >, 10);

  g_assert_nonnull (strstr (text, "\nexo_resource_state{id=\"test-node\",type=\"test-node\",state=\"ready\"} 1\n"));
  g_assert_nonnull (strstr (text, "\nexo_resource_state{id=\"test-http\",type=\"http-server\",state=\"ready\"} 1\n"));
  g_assert_nonnull (strstr (text, "\nexo_resource_errors_total{id=\"test-node\"} 0\n"));
  g_assert_nonnull (strstr (text, "\nexo_pool_size{id=\"test-pool\"} 0\n"));
  g_assert_nonnull (strstr (text, "\nexo_pool_max_size{id=\"test-pool\"} 3\n"));
  g_assert_nonnull (strstr (text, "\nexo_pool_acquired_total{id=\"test-pool\"} 0\n"));
  g_assert_nonnull (strstr (text, "\nexo_http_requests_total{id=\"test-http\",route=\"/healthcheck\",code=\"200\"} 1\n"));
  g_assert_nonnull (strstr (text, "\nexo_http_requests_total{id=\"test-http\",route=\"other\",code=\"404\"} 1\n"));
  g_assert_nonnull (strstr (text, "# TYPE exo_http_requests_total counter\n"));
  g_assert_nonnull (strstr (text, "\nexo_http_request_duration_seconds_count{id=\"test-http\",route=\"/healthcheck\"} 1\n"));
  {
    g_autofree char *info = g_strdup_printf (",listen_address=\"127.0.0.1\",port=\"%u\"} 1\n", fx->port);

    g_assert_nonnull (strstr (text, "\nexo_http_server_info{id=\"test-http\",cluster_key_fingerprint=\""));
    g_assert_nonnull (strstr (text, info));
  }
  g_assert_null (strstr (text, "exo_resource_metric"));

  exo_test_cleanup (pool, NULL);
}

/* --- robustness ------------------------------------------------------------ */

static char *
mutate (GRand      *rand,
        const char *text)
{
  GString *s = g_string_new (text);
  guint n = g_rand_int_range (rand, 1, 6);
  static const char alphabet[] = "{}[]\":,0123456789.-eEtruefalsn \\u\x01\xff\xc3";

  for (guint i = 0; i < n && s->len > 0; i++)
    {
      guint pos = g_rand_int_range (rand, 0, s->len);
      char c = alphabet[g_rand_int_range (rand, 0, sizeof alphabet - 1)];

      switch (g_rand_int_range (rand, 0, 3))
        {
        case 0:
          s->str[pos] = c;
          break;
        case 1:
          g_string_insert_c (s, pos, c);
          break;
        default:
          g_string_erase (s, pos, 1);
          break;
        }
    }
  return g_string_free (s, FALSE);
}

static void
test_fuzz (Fixture       *fx,
           gconstpointer  data)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (20240605);
  g_autofree char *prompt = g_strdup_printf ("{\"shard\":%s,\"prompt\":\"p\",\"request_id\":\"r\"}", valid_shard);
  const char *seeds[][2] = {
    { "/peer/v1/prompt", prompt },
    { "/peer/v1/result", "{\"request_id\":\"r\",\"result\":[1,2,3],\"is_finished\":false}" },
    { "/peer/v1/topology", "{\"visited\":[\"a\"],\"max_depth\":2}" },
    { "/v1/chat/completions", chat_body },
    { "/peer/v1/tensor", "" },
  };
  guint n_requests = 0;

  fx->node->chat_tokens = 1;
  for (gsize s = 0; s < G_N_ELEMENTS (seeds); s++)
    for (guint i = 0; i < 60; i++)
      {
        g_autoptr(Reply) reply = NULL;

        if (i % 3 == 0)
          {
            /* random bytes */
            guint len = g_rand_int_range (rand, 0, 300);
            g_autofree guint8 *bytes = g_malloc (len + 1);

            for (guint j = 0; j < len; j++)
              bytes[j] = (guint8) g_rand_int_range (rand, 0, 256);
            reply = http (fx, "POST", seeds[s][0], "application/json", bytes, len, NULL);
            if (!g_str_equal (seeds[s][0], "/peer/v1/tensor"))
              g_assert_cmpuint (reply->status, ==, 400);
          }
        else if (g_str_equal (seeds[s][0], "/peer/v1/tensor"))
          {
            /* random headers */
            g_autofree char *shape = g_strdup_printf ("%d,%d", g_rand_int_range (rand, -2, 5),
                                                      g_rand_int_range (rand, -2, 5));
            g_autofree char *shard = mutate (rand, valid_shard);
            const char *dtypes[] = { "float32", "int32", "int64", "float16", "bool", "" };
            const char *h[] = { "X-Exo-Request-Id", "r", "X-Exo-Shard", shard,
                                "X-Exo-Tensor-Dtype", dtypes[g_rand_int_range (rand, 0, 6)],
                                "X-Exo-Tensor-Shape", shape, NULL };
            guint8 bytes[64] = { 0, };
            guint len = g_rand_int_range (rand, 0, 65);

            reply = http (fx, "POST", seeds[s][0], "application/octet-stream", bytes, len, h);
          }
        else
          {
            g_autofree char *body = mutate (rand, seeds[s][1]);
            reply = http_post_json (fx, seeds[s][0], body);
          }
        g_assert_no_error (reply->error);
        /* a chat may name a model the node does not serve now: 404 */
        g_assert_true (reply->status == 200 || reply->status == 202 || reply->status == 400 ||
                       (reply->status == 404 && g_str_equal (seeds[s][0], "/v1/chat/completions")));
        if (reply->status == 400 || reply->status == 404)
          assert_error_reply (reply, reply->status, NULL);
        n_requests++;
      }

  /* garbage on a raw socket */
  for (guint i = 0; i < 30; i++)
    {
      g_autoptr(GSocketClient) client = g_socket_client_new ();
      g_autoptr(GSocketConnection) conn = NULL;
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GBytes) answer = NULL;
      g_autoptr(GError) error = NULL;
      guint8 garbage[512];
      guint len = g_rand_int_range (rand, 1, sizeof garbage - 4);

      for (guint j = 0; j < len; j++)
        garbage[j] = (guint8) g_rand_int_range (rand, 0, 256);
      if (i % 2 == 0)
        memcpy (garbage, "POST /v1/chat/completions HTTP/1.1\r\n", MIN (len, 36));
      memcpy (garbage + len, "\r\n\r\n", 4);

      g_socket_client_connect_to_host_async (client, fx->address, 0, NULL, exo_test_store_result, &result);
      g_assert_true (exo_test_wait_result (&result, WAIT_MS));
      conn = g_socket_client_connect_to_host_finish (client, result, &error);
      g_assert_no_error (error);
      g_clear_object (&result);
      g_output_stream_write_all_async (g_io_stream_get_output_stream (G_IO_STREAM (conn)),
                                       garbage, len + 4, G_PRIORITY_DEFAULT, NULL,
                                       exo_test_store_result, &result);
      g_assert_true (exo_test_wait_result (&result, WAIT_MS));
      g_output_stream_write_all_finish (g_io_stream_get_output_stream (G_IO_STREAM (conn)),
                                        result, NULL, NULL);
      g_clear_object (&result);
      g_socket_shutdown (g_socket_connection_get_socket (conn), FALSE, TRUE, NULL);
      g_input_stream_read_bytes_async (g_io_stream_get_input_stream (G_IO_STREAM (conn)), 4096,
                                       G_PRIORITY_DEFAULT, NULL, exo_test_store_result, &result);
      g_assert_true (exo_test_wait_result (&result, WAIT_MS));
      answer = g_input_stream_read_bytes_finish (g_io_stream_get_input_stream (G_IO_STREAM (conn)),
                                                 result, NULL);
      /* an answer, if any, is an HTTP error, never a success */
      if (answer != NULL && g_bytes_get_size (answer) > 12)
        g_assert_true (memcmp (g_bytes_get_data (answer, NULL), "HTTP/1.1 4", 10) == 0 ||
                       memcmp (g_bytes_get_data (answer, NULL), "HTTP/1.1 5", 10) == 0 ||
                       memcmp (g_bytes_get_data (answer, NULL), "HTTP/1.0 4", 10) == 0);
      g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
    }

  {
    g_autoptr(Reply) reply = http_get (fx, "/healthcheck");
    g_assert_cmpuint (reply->status, ==, 200);
  }
  g_test_message ("%u fuzzed requests", n_requests);
}

void
test_http_server_register_server (void)
{
  ADD ("server/listen", test_listen);
  ADD ("server/address-in-use", test_address_in_use);
  ADD ("server/healthcheck", test_healthcheck);
  ADD ("server/node-not-ready", test_node_not_ready);
  ADD ("server/node-lacks-calls", test_node_lacks_calls);
  ADD ("server/not-found-and-method", test_not_found_and_method);
  ADD ("server/size-limits", test_size_limits);
  ADD ("server/size-limit-chunked", test_size_limit_chunked);
  ADD ("server/metrics", test_metrics);
  ADD ("server/no-fd-leak", test_no_fd_leak);
  ADD ("server/fuzz", test_fuzz);
}
