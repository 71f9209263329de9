/* test-http-server-rpc.c: the /peer/ RPC endpoints of ExoHttpServer —
 * health-status, prompt, tensor, result and topology, and their refusals.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-http-server (main() in test-http-server.c).  One thread:
 * the server, the fake node and the clients run in the main context of the
 * test's thread; the test spins it until the asynchronous calls complete.
 */
#include "http-server-fixture.h"

/* --- peer RPC -------------------------------------------------------------- */

static void
test_peer_health_status (Fixture       *fx,
                         gconstpointer  data)
{
  g_autoptr(Reply) health = http_get (fx, "/peer/v1/health");
  g_autoptr(Reply) status = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonNode) status_root = NULL;
  g_autoptr(ExoResource) peer = NULL;
  JsonObject *object;
  JsonArray *peers;
  gboolean found = FALSE;

  g_assert_cmpuint (health->status, ==, 200);
  root = reply_json (health);
  object = json_node_get_object (root);
  g_assert_cmpstr (json_object_get_string_member (object, "status"), ==, "ok");
  g_assert_cmpstr (json_object_get_string_member (object, "node_id"), ==, "fake-node-1");

  /* status lists the peer handles of the process */
  peer = g_object_new (peer_type, "id", "peer-listed", "peer-id", "listed-node",
                       "address", "127.0.0.1:9", NULL);
  status = http_get (fx, "/peer/v1/status");
  g_assert_cmpuint (status->status, ==, 200);
  status_root = reply_json (status);
  object = json_node_get_object (status_root);
  g_assert_cmpstr (json_object_get_string_member (object, "node_id"), ==, "fake-node-1");
  g_assert_cmpstr (json_object_get_string_member (object, "state"), ==, "ready");
  g_assert_cmpint (json_object_get_int_member (object, "requests_in_flight"), ==, 0);
  peers = json_object_get_array_member (object, "peers");
  for (guint i = 0; i < json_array_get_length (peers); i++)
    {
      JsonObject *p = json_array_get_object_element (peers, i);
      if (g_strcmp0 (json_object_get_string_member (p, "node_id"), "listed-node") == 0)
        {
          found = TRUE;
          g_assert_cmpstr (json_object_get_string_member (p, "address"), ==, "127.0.0.1:9");
          g_assert_cmpstr (json_object_get_string_member (p, "state"), ==, "uninitialized");
        }
    }
  g_assert_true (found);
}

static void
test_peer_prompt (Fixture       *fx,
                  gconstpointer  data)
{
  g_autofree char *body = g_strdup_printf ("{\"shard\":%s,\"prompt\":\"hello \\u2603\",\"request_id\":\"r-1\"}",
                                           valid_shard);
  g_autoptr(Reply) ok = http_post_json (fx, "/peer/v1/prompt", body);
  g_autofree char *text = reply_text (ok);
  static const struct { const char *body; const char *needle; } bad[] = {
    { "{", "malformed JSON" },
    { "", "empty" },
    { "[1,2]", "JSON object" },
    { "\"prompt\"", "JSON object" },
    { "{\"shard\":{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":7,\"n_layers\":16},\"request_id\":\"r\"}", "'prompt'" },
    { "{\"shard\":{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":7,\"n_layers\":16},\"prompt\":7,\"request_id\":\"r\"}", "'prompt' must be a string" },
    { "{\"shard\":{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":7,\"n_layers\":16},\"prompt\":\"p\"}", "'request_id'" },
    { "{\"shard\":{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":7,\"n_layers\":16},\"prompt\":\"p\",\"request_id\":\"\"}", "'request_id'" },
    { "{\"shard\":\"dummy\",\"prompt\":\"p\",\"request_id\":\"r\"}", "'shard' must be an object" },
    { "{\"prompt\":\"p\",\"request_id\":\"r\"}", "'shard'" },
    { "{\"shard\":{\"model_id\":\"dummy\",\"start_layer\":8,\"end_layer\":7,\"n_layers\":16},\"prompt\":\"p\",\"request_id\":\"r\"}", "not a range" },
    { "{\"shard\":{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":16,\"n_layers\":16},\"prompt\":\"p\",\"request_id\":\"r\"}", "not a range" },
    { "{\"shard\":{\"model_id\":\"dummy\",\"start_layer\":-1,\"end_layer\":7,\"n_layers\":16},\"prompt\":\"p\",\"request_id\":\"r\"}", "out of range" },
    { "{\"shard\":{\"model_id\":\"dummy\",\"start_layer\":0.5,\"end_layer\":7,\"n_layers\":16},\"prompt\":\"p\",\"request_id\":\"r\"}", "must be an integer" },
    { "{\"shard\":{\"start_layer\":0,\"end_layer\":7,\"n_layers\":16},\"prompt\":\"p\",\"request_id\":\"r\"}", "'model_id'" },
    /* the generation parameters (since plugin ABI 2.0): typed, in range, the field named */
#define P "{\"shard\":{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":7,\"n_layers\":16},\"prompt\":\"p\",\"request_id\":\"r\",\"params\":"
    { P "7}", "field 'params' must be an object" },
    { P "null}", "field 'params' must be an object" },
    { P "[]}", "field 'params' must be an object" },
    { P "{\"max_tokens\":0}}", "field 'params': field 'max_tokens' is out of range (1 to 1048576)" },
    { P "{\"max_tokens\":1048577}}", "field 'params': field 'max_tokens' is out of range" },
    { P "{\"max_tokens\":2.5}}", "field 'params': field 'max_tokens' must be an integer" },
    { P "{\"max_tokens\":\"3\"}}", "field 'params': field 'max_tokens' must be an integer" },
    { P "{\"max_tokens\":null}}", "field 'params': field 'max_tokens' must be an integer" },
    { P "{\"temperature\":2.5}}", "field 'params': field 'temperature' is out of range (0 to 2)" },
    { P "{\"temperature\":-0.1}}", "field 'params': field 'temperature' is out of range" },
    { P "{\"temperature\":\"hot\"}}", "field 'params': field 'temperature' must be a number" },
    { P "{\"temperature\":1e999}}", "too large for a double" },
    { P "{\"top_p\":0}}", "field 'params': field 'top_p' is out of range (more than 0, at most 1)" },
    { P "{\"top_p\":1.5}}", "field 'params': field 'top_p' is out of range" },
    { P "{\"top_p\":true}}", "field 'params': field 'top_p' must be a number" },
    { P "{\"seed\":1.5}}", "field 'params': field 'seed' must be an integer" },
    { P "{\"seed\":\"42\"}}", "field 'params': field 'seed' must be an integer" },
    { P "{\"seed\":9223372036854775808}}", "64-bit" },
    /* the API node's id (since plugin ABI 3.2): a bounded string */
    { P "{\"origin\":7}}", "field 'params': field 'origin' must be a string" },
    { P "{\"origin\":null}}", "field 'params': field 'origin' must be a string" },
    { P "{\"origin\":\"" "0123456789012345678901234567890123456789012345678901234567890123"
        "0123456789012345678901234567890123456789012345678901234567890123" "x\"}}",
      "longer than 128 bytes" },
    { P "{\"origin\":\"a\\u0001b\"}}", "control character" },
#undef P
  };

  g_assert_cmpuint (ok->status, ==, 202);
  g_assert_cmpstr (text, ==, "{}");
  g_assert_cmpuint (fx->node->n_prompts, ==, 1);
  g_assert_cmpstr (fx->node->last_prompt, ==, "hello \xe2\x98\x83");
  g_assert_cmpstr (fx->node->last_request_id, ==, "r-1");
  g_assert_cmpstr (fx->node->last_shard->model_id, ==, "dummy");
  g_assert_cmpuint (fx->node->last_shard->start_layer, ==, 0);
  g_assert_cmpuint (fx->node->last_shard->end_layer, ==, 7);
  g_assert_cmpuint (fx->node->last_shard->n_layers, ==, 16);
  /* an older peer sends no parameters: the node gets none (the defaults) */
  g_assert_null (fx->node->last_params);

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(Reply) reply = http_post_json (fx, "/peer/v1/prompt", bad[i].body);
      assert_error_reply (reply, 400, bad[i].needle);
    }
  g_assert_cmpuint (fx->node->n_prompts, ==, 1);

  /* the parameters reach the node; absent members are the defaults, a newer
   * peer's members are ignored */
  {
    static const char *with_params[] = {
      "{\"shard\":{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":7,\"n_layers\":16},"
      "\"prompt\":\"p\",\"request_id\":\"r-2\",\"params\":{\"max_tokens\":3,\"temperature\":0.5,"
      "\"top_p\":0.25,\"seed\":-9223372036854775808}}",
      "{\"params\":{\"top_p\":1,\"stop\":[\"x\"],\"temperature\":2},\"request_id\":\"r-3\",\"prompt\":\"p\","
      "\"shard\":{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":7,\"n_layers\":16}}",
      "{\"params\":{},\"request_id\":\"r-4\",\"prompt\":\"p\","
      "\"shard\":{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":7,\"n_layers\":16}}",
      "{\"params\":{\"origin\":\"node-a\"},\"request_id\":\"r-5\",\"prompt\":\"p\","
      "\"shard\":{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":7,\"n_layers\":16}}",
    };

    for (guint i = 0; i < G_N_ELEMENTS (with_params); i++)
      {
        g_autoptr(Reply) reply = http_post_json (fx, "/peer/v1/prompt", with_params[i]);

        g_assert_cmpuint (reply->status, ==, 202);
        if (i == 0)
          assert_params (fx->node->last_params, 3, 0.5, 0.25, TRUE, G_MININT64);
        else if (i == 1)
          assert_params (fx->node->last_params, 0, 2, 1, FALSE, 0);
        else
          assert_params (fx->node->last_params, 0, 0, 1, FALSE, 0);
        g_assert_cmpstr (fx->node->last_params->origin, ==, i == 3 ? "node-a" : NULL);
      }
    g_assert_cmpuint (fx->node->n_prompts, ==, 5);
    fx->node->n_prompts = 1;
  }

  /* a failing node: its error and a status that says whether to retry */
  fx->node->fail_with = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL, "shard not loaded");
  {
    g_autoptr(Reply) reply = http_post_json (fx, "/peer/v1/prompt", body);
    assert_error_reply (reply, 422, "shard not loaded");
  }
  g_clear_error (&fx->node->fail_with);
  fx->node->fail_with = g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED, "next hop down");
  {
    g_autoptr(Reply) reply = http_post_json (fx, "/peer/v1/prompt", body);
    assert_error_reply (reply, 502, "next hop down");
  }
  g_clear_error (&fx->node->fail_with);

  /* A retried call (same X-Exo-Call-Id) is done once; a failed one is done
   * again when retried; another id is another call. */
  {
    const char *same[] = { "X-Exo-Call-Id", "call-1", NULL };
    const char *other[] = { "X-Exo-Call-Id", "call-2", NULL };
    const char *failing[] = { "X-Exo-Call-Id", "call-3", NULL };
    guint before = fx->node->n_prompts;

    for (guint i = 0; i < 3; i++)
      {
        g_autoptr(Reply) reply = http (fx, "POST", "/peer/v1/prompt", "application/json",
                                       body, strlen (body), same);
        g_assert_cmpuint (reply->status, ==, 202);
      }
    g_assert_cmpuint (fx->node->n_prompts, ==, before + 1);
    {
      g_autoptr(Reply) reply = http (fx, "POST", "/peer/v1/prompt", "application/json",
                                     body, strlen (body), other);
      g_assert_cmpuint (reply->status, ==, 202);
    }
    g_assert_cmpuint (fx->node->n_prompts, ==, before + 2);

    fx->node->fail_with = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "busy");
    {
      g_autoptr(Reply) reply = http (fx, "POST", "/peer/v1/prompt", "application/json",
                                     body, strlen (body), failing);
      g_assert_cmpuint (reply->status, ==, 504);
    }
    g_clear_error (&fx->node->fail_with);
    {
      g_autoptr(Reply) reply = http (fx, "POST", "/peer/v1/prompt", "application/json",
                                     body, strlen (body), failing);
      g_assert_cmpuint (reply->status, ==, 202);
    }
    g_assert_cmpuint (fx->node->n_prompts, ==, before + 4);
  }
}

static void
test_peer_tensor (Fixture       *fx,
                  gconstpointer  data)
{
  float values[6] = { 0.5f, -1.25f, 3.0f, 1e-20f, INFINITY, -0.0f };
  const char *headers[] = {
    "X-Exo-Request-Id", "r-tensor",
    "X-Exo-Shard", valid_shard,
    "X-Exo-Tensor-Dtype", "float32",
    "X-Exo-Tensor-Shape", "2,3",
    "X-Exo-Params", "{\"max_tokens\":5,\"temperature\":1e-8,\"top_p\":0.5,\"seed\":42}",
    NULL,
  };
  g_autoptr(Reply) ok = http (fx, "POST", "/peer/v1/tensor", "application/octet-stream",
                              values, sizeof values, headers);
  g_autoptr(GBytes) expected = g_bytes_new (values, sizeof values);
  const gsize *shape;
  struct { const char *name, *value, *needle; } bad[] = {
    { "X-Exo-Tensor-Dtype", "float33", "X-Exo-Tensor-Dtype" },
    { "X-Exo-Tensor-Dtype", "", "X-Exo-Tensor-Dtype" },
    { "X-Exo-Tensor-Shape", "2,4", "bytes" },
    { "X-Exo-Tensor-Shape", "2,x", "X-Exo-Tensor-Shape" },
    { "X-Exo-Tensor-Shape", "-2,-3", "X-Exo-Tensor-Shape" },
    { "X-Exo-Tensor-Shape", "1,1,1,1,1,1,1,1,6", "dims" },
    { "X-Exo-Tensor-Shape", "4294967295,4294967295,4294967295", "bytes" },
    { "X-Exo-Shard", "{\"model_id\":\"dummy\"}", "X-Exo-Shard" },
    { "X-Exo-Shard", "not json", "X-Exo-Shard" },
    { "X-Exo-Request-Id", "", "X-Exo-Request-Id" },
    /* the generation parameters: as in a prompt, the header and the field named */
    { "X-Exo-Params", "not json", "header X-Exo-Params: malformed JSON" },
    { "X-Exo-Params", "", "header X-Exo-Params: the body is empty" },
    { "X-Exo-Params", "[1]", "header X-Exo-Params must be an object" },
    { "X-Exo-Params", "{\"max_tokens\":0}", "header X-Exo-Params: field 'max_tokens' is out of range" },
    { "X-Exo-Params", "{\"max_tokens\":-1}", "header X-Exo-Params: field 'max_tokens' is out of range" },
    { "X-Exo-Params", "{\"temperature\":3}", "header X-Exo-Params: field 'temperature' is out of range (0 to 2)" },
    { "X-Exo-Params", "{\"temperature\":1e999}", "header X-Exo-Params: malformed JSON" },
    { "X-Exo-Params", "{\"top_p\":-0.0}", "header X-Exo-Params: field 'top_p' is out of range" },
    { "X-Exo-Params", "{\"top_p\":\"all\"}", "header X-Exo-Params: field 'top_p' must be a number" },
    { "X-Exo-Params", "{\"seed\":{}}", "header X-Exo-Params: field 'seed' must be an integer" },
  };

  g_assert_cmpuint (ok->status, ==, 202);
  g_assert_cmpuint (fx->node->n_tensors, ==, 1);
  g_assert_cmpstr (fx->node->last_request_id, ==, "r-tensor");
  assert_params (fx->node->last_params, 5, 1e-8, 0.5, TRUE, 42);
  g_assert_cmpuint (fx->node->last_shard->end_layer, ==, 7);
  g_assert_cmpint (exo_tensor_get_dtype (fx->node->last_tensor), ==, EXO_DTYPE_FLOAT32);
  g_assert_cmpuint (exo_tensor_get_n_dims (fx->node->last_tensor), ==, 2);
  shape = exo_tensor_get_shape (fx->node->last_tensor);
  g_assert_cmpuint (shape[0], ==, 2);
  g_assert_cmpuint (shape[1], ==, 3);
  g_assert_true (g_bytes_equal (exo_tensor_get_data (fx->node->last_tensor), expected));

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      const char *h[11];
      g_autoptr(Reply) reply = NULL;

      memcpy (h, headers, sizeof h);
      for (guint j = 0; j < 10; j += 2)
        if (g_str_equal (h[j], bad[i].name))
          h[j + 1] = bad[i].value;
      reply = http (fx, "POST", "/peer/v1/tensor", "application/octet-stream",
                    values, sizeof values, h);
      assert_error_reply (reply, 400, bad[i].needle);
    }
  {
    /* headers missing altogether */
    g_autoptr(Reply) reply = http (fx, "POST", "/peer/v1/tensor", "application/octet-stream",
                                   values, sizeof values, NULL);
    assert_error_reply (reply, 400, "X-Exo-Request-Id");
  }
  g_assert_cmpuint (fx->node->n_tensors, ==, 1);

  /* int64, 3 dims, and an empty tensor */
  {
    gint64 ints[4] = { G_MININT64, -1, 0, G_MAXINT64 };
    const char *h[] = { "X-Exo-Request-Id", "r2", "X-Exo-Shard", valid_shard,
                        "X-Exo-Tensor-Dtype", "int64", "X-Exo-Tensor-Shape", "1,2,2", NULL };
    g_autoptr(Reply) reply = http (fx, "POST", "/peer/v1/tensor", "application/octet-stream",
                                   ints, sizeof ints, h);
    g_autoptr(GBytes) want = g_bytes_new (ints, sizeof ints);

    g_assert_cmpuint (reply->status, ==, 202);
    g_assert_null (fx->node->last_params);   /* none given (an older peer): none passed on */
    g_assert_cmpint (exo_tensor_get_dtype (fx->node->last_tensor), ==, EXO_DTYPE_INT64);
    g_assert_cmpuint (exo_tensor_get_n_dims (fx->node->last_tensor), ==, 3);
    g_assert_true (g_bytes_equal (exo_tensor_get_data (fx->node->last_tensor), want));
  }
}

static void
test_peer_result (Fixture       *fx,
                  gconstpointer  data)
{
  g_autoptr(Reply) ok = http_post_json (fx, "/peer/v1/result",
                                        "{\"request_id\":\"r-9\",\"result\":[5,-1,2147483647,-2147483648],"
                                        "\"is_finished\":true}");
  static const struct { const char *body; const char *needle; } bad[] = {
    { "{\"request_id\":\"r\",\"result\":[1],\"is_finished\":\"yes\"}", "'is_finished' must be a boolean" },
    { "{\"request_id\":\"r\",\"result\":[1]}", "'is_finished'" },
    { "{\"request_id\":\"r\",\"result\":\"1\",\"is_finished\":true}", "'result' must be an array" },
    { "{\"request_id\":\"r\",\"is_finished\":true}", "'result'" },
    { "{\"request_id\":\"r\",\"result\":[2147483648],\"is_finished\":true}", "element 0" },
    { "{\"request_id\":\"r\",\"result\":[1,\"2\"],\"is_finished\":true}", "element 1" },
    { "{\"request_id\":\"r\",\"result\":[1.5],\"is_finished\":true}", "element 0" },
    { "{\"request_id\":5,\"result\":[1],\"is_finished\":true}", "'request_id' must be a string" },
  };

  g_assert_cmpuint (ok->status, ==, 200);
  g_assert_cmpuint (fx->node->n_results, ==, 1);
  g_assert_cmpstr (fx->node->last_request_id, ==, "r-9");
  g_assert_cmpuint (fx->node->last_tokens->len, ==, 4);
  g_assert_cmpint (g_array_index (fx->node->last_tokens, gint32, 0), ==, 5);
  g_assert_cmpint (g_array_index (fx->node->last_tokens, gint32, 1), ==, -1);
  g_assert_cmpint (g_array_index (fx->node->last_tokens, gint32, 2), ==, G_MAXINT32);
  g_assert_cmpint (g_array_index (fx->node->last_tokens, gint32, 3), ==, G_MININT32);
  g_assert_true (fx->node->last_is_finished);

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(Reply) reply = http_post_json (fx, "/peer/v1/result", bad[i].body);
      assert_error_reply (reply, 400, bad[i].needle);
    }
  g_assert_cmpuint (fx->node->n_results, ==, 1);
}

static void
test_peer_topology (Fixture       *fx,
                    gconstpointer  data)
{
  g_autoptr(Reply) ok = http_post_json (fx, "/peer/v1/topology",
                                        "{\"visited\":[\"a\",\"b\"],\"max_depth\":4}");
  g_autofree char *text = reply_text (ok);
  const char *expected_visited[] = { "a", "b", NULL };
  static const struct { const char *body; const char *needle; } bad[] = {
    { "{\"visited\":[],\"max_depth\":-1}", "'max_depth'" },
    { "{\"visited\":[],\"max_depth\":65}", "'max_depth'" },
    { "{\"visited\":[]}", "'max_depth'" },
    { "{\"visited\":\"a\",\"max_depth\":1}", "'visited' must be an array" },
    { "{\"visited\":[1],\"max_depth\":1}", "element 0" },
    { "{\"max_depth\":1}", "'visited'" },
  };

  g_assert_cmpuint (ok->status, ==, 200);
  g_assert_cmpstr (text, ==, fx->node->topology_json);
  g_assert_cmpuint (fx->node->n_topologies, ==, 1);
  g_assert_cmpstrv (fx->node->last_visited, expected_visited);
  g_assert_cmpuint (fx->node->last_max_depth, ==, 4);

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(Reply) reply = http_post_json (fx, "/peer/v1/topology", bad[i].body);
      assert_error_reply (reply, 400, bad[i].needle);
    }
}

void
test_http_server_register_rpc (void)
{
  ADD ("rpc/health-status", test_peer_health_status);
  ADD ("rpc/prompt", test_peer_prompt);
  ADD ("rpc/tensor", test_peer_tensor);
  ADD ("rpc/result", test_peer_result);
  ADD ("rpc/topology", test_peer_topology);
}
