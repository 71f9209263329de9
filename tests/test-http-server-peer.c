/* test-http-server-peer.c: ExoHttpPeer against an ExoHttpServer of this
 * process — connecting, learning and checking the peer id, calls, the server
 * going down, health checks and round-trip times.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-http-server (main() in test-http-server.c).  One thread:
 * the server, the fake node and the clients run in the main context of the
 * test's thread; the test spins it until the asynchronous calls complete.
 */
#include "http-server-fixture.h"

/* --- ExoHttpPeer ----------------------------------------------------------- */

static void
test_peer_connect (Fixture       *fx,
                   gconstpointer  data)
{
  g_autoptr(ExoResource) peer = peer_new (fx, "peer-fake-node-1", "fake-node-1");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) caps = NULL;
  guint call_timeout = 0, health_timeout = 0;
  const char *model = NULL;

  g_assert_true (exo_test_initialize (peer, &error));
  g_assert_no_error (error);
  g_assert_cmpint (exo_resource_get_state (peer), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpstr (exo_resource_get_resource_type (peer), ==, "http-peer");
  g_assert_cmpstr (exo_peer_handle_get_peer_id (EXO_PEER_HANDLE (peer)), ==, "fake-node-1");
  g_assert_cmpstr (exo_peer_handle_get_address (EXO_PEER_HANDLE (peer)), ==, fx->address);
  caps = exo_peer_handle_get_device_capabilities (EXO_PEER_HANDLE (peer));
  g_assert_true (g_variant_lookup (caps, "model", "&s", &model));
  g_assert_cmpstr (model, ==, "Test box");
  g_object_get (peer, "call-timeout-ms", &call_timeout, "health-timeout-ms", &health_timeout, NULL);
  g_assert_cmpuint (call_timeout, ==, 2000);
  g_assert_cmpuint (health_timeout, ==, 1000);

  g_assert_true (exo_test_check_health (peer, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (metric_u64 (peer, "health-probes"), ==, 2);
  g_assert_cmpuint (metric_u64 (peer, "rtt-samples"), ==, 2);
  g_assert_cmpuint (metric_u64 (peer, "rtt-p50-us"), >, 0);
  g_assert_cmpuint (metric_u64 (peer, "rtt-last-us"), >, 0);

  exo_test_cleanup (peer, NULL);
  exo_test_spin (10);
}

static void
test_peer_learns_id (Fixture       *fx,
                     gconstpointer  data)
{
  g_autoptr(ExoResource) peer = g_object_new (peer_type, "id", "static-peer", "address", fx->address, NULL);

  g_assert_true (exo_test_initialize (peer, NULL));
  g_assert_cmpstr (exo_peer_handle_get_peer_id (EXO_PEER_HANDLE (peer)), ==, "fake-node-1");
  exo_test_cleanup (peer, NULL);
  exo_test_spin (10);
}

static void
test_peer_wrong_id (Fixture       *fx,
                    gconstpointer  data)
{
  g_autoptr(ExoResource) peer = peer_new (fx, "peer-other", "other");
  g_autoptr(GError) error = NULL;
  g_autofree char *expected = g_strdup_printf ("address %s answers as node fake-node-1, expected other",
                                               fx->address);

  g_assert_false (exo_test_initialize (peer, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
  g_assert_cmpstr (error->message, ==, expected);
  /* not retried */
  g_assert_cmpuint (exo_resource_get_attempts (peer), ==, 1);
  g_assert_cmpint (exo_resource_get_state (peer), ==, EXO_RESOURCE_STATE_ERROR);
  exo_test_cleanup (peer, NULL);
  exo_test_spin (10);
}

static gboolean
finish_boolean_call (ExoResource *peer,
                     GAsyncResult *result,
                     gboolean (*finish) (ExoPeerHandle *, GAsyncResult *, GError **),
                     GError     **error)
{
  return finish (EXO_PEER_HANDLE (peer), result, error);
}

/* A /peer/v1/failure body the server refuses (400 naming @needle). */
static void
assert_failure_refused (Fixture    *fx,
                        const char *body,
                        const char *needle)
{
  g_autoptr(Reply) reply = http_post_json (fx, "/peer/v1/failure", body);

  assert_error_reply (reply, 400, needle);
}

static void
test_peer_calls (Fixture       *fx,
                 gconstpointer  data)
{
  g_autoptr(ExoResource) peer = peer_new (fx, "peer-calls", "fake-node-1");
  g_autoptr(ExoShard) shard = exo_shard_new ("dummy", 4, 11, 16);
  g_autoptr(GError) error = NULL;
  ExoPeerHandle *handle = EXO_PEER_HANDLE (peer);

  /* the first call connects; the parameters arrive as they were sent,
   * numbers json-glib would write as `1e-08.0` too */
  {
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(ExoGenerationParams) params = exo_generation_params_new ();

    params->max_tokens = 7;
    params->temperature = 1e-8;
    params->top_p = 0.9;
    params->has_seed = TRUE;
    params->seed = G_MININT64;
    exo_peer_handle_send_prompt_async (handle, shard, "a prompt \xe2\x98\x83 \"quoted\"\n", "req-1",
                                       params, NULL, exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_true (finish_boolean_call (peer, result, exo_peer_handle_send_prompt_finish, &error));
    g_assert_no_error (error);
    g_assert_cmpint (exo_resource_get_state (peer), ==, EXO_RESOURCE_STATE_READY);
    g_assert_cmpuint (fx->node->n_prompts, ==, 1);
    g_assert_cmpstr (fx->node->last_prompt, ==, "a prompt \xe2\x98\x83 \"quoted\"\n");
    g_assert_cmpstr (fx->node->last_request_id, ==, "req-1");
    g_assert_true (exo_shard_equal (fx->node->last_shard, shard));
    assert_params (fx->node->last_params, 7, 1e-8, 0.9, TRUE, G_MININT64);
  }

  /* tensors: bytes, dtype and shape intact */
  {
    gint32 values[12];
    gsize shape[3] = { 1, 3, 4 };
    g_autoptr(GBytes) bytes = NULL;
    g_autoptr(ExoTensor) tensor = NULL;
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(ExoGenerationParams) params = exo_generation_params_new ();

    for (guint i = 0; i < 12; i++)
      values[i] = (gint32) (i * 1000003) - 5;
    bytes = g_bytes_new (values, sizeof values);
    tensor = exo_tensor_new (EXO_DTYPE_INT32, shape, 3, bytes, &error);
    g_assert_no_error (error);
    params->temperature = 0.7;
    params->top_p = 1e-300;
    exo_peer_handle_send_tensor_async (handle, shard, tensor, "req-2", params, NULL,
                                       exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_true (finish_boolean_call (peer, result, exo_peer_handle_send_tensor_finish, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (fx->node->n_tensors, ==, 1);
    g_assert_cmpstr (fx->node->last_request_id, ==, "req-2");
    g_assert_true (exo_shard_equal (fx->node->last_shard, shard));
    g_assert_cmpint (exo_tensor_get_dtype (fx->node->last_tensor), ==, EXO_DTYPE_INT32);
    g_assert_cmpuint (exo_tensor_get_n_dims (fx->node->last_tensor), ==, 3);
    g_assert_cmpmem (exo_tensor_get_shape (fx->node->last_tensor), 3 * sizeof (gsize), shape, sizeof shape);
    g_assert_true (g_bytes_equal (exo_tensor_get_data (fx->node->last_tensor), bytes));
    assert_params (fx->node->last_params, 0, 0.7, 1e-300, FALSE, 0);
  }
  {
    guint16 halves[3] = { 0x3c00, 0xc000, 0x7bff };
    gsize shape[1] = { 3 };
    g_autoptr(GBytes) bytes = g_bytes_new (halves, sizeof halves);
    g_autoptr(ExoTensor) tensor = exo_tensor_new (EXO_DTYPE_FLOAT16, shape, 1, bytes, NULL);
    g_autoptr(GAsyncResult) result = NULL;

    exo_peer_handle_send_tensor_async (handle, shard, tensor, "req-3", NULL, NULL,
                                       exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_true (finish_boolean_call (peer, result, exo_peer_handle_send_tensor_finish, &error));
    g_assert_no_error (error);
    g_assert_cmpint (exo_tensor_get_dtype (fx->node->last_tensor), ==, EXO_DTYPE_FLOAT16);
    g_assert_true (g_bytes_equal (exo_tensor_get_data (fx->node->last_tensor), bytes));
    g_assert_null (fx->node->last_params);   /* none: none sent */
  }

  /* cancellation (/peer/v1/cancel) */
  {
    g_autoptr(GAsyncResult) result = NULL;

    exo_peer_handle_send_cancel_async (handle, "req-2", NULL, exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_true (finish_boolean_call (peer, result, exo_peer_handle_send_cancel_finish, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (fx->node->n_cancels, ==, 1);
    g_assert_cmpstr (fx->node->last_request_id, ==, "req-2");
  }

  /* failures (/peer/v1/failure): the status stands for the error, so
   * that the API node answers as the failing node would have */
  {
    static const struct { GQuark domain; gint code; } errors[] = {
      { 0, G_IO_ERROR_INVALID_ARGUMENT }, { 0, G_IO_ERROR_BUSY }, { 0, G_IO_ERROR_HOST_UNREACHABLE },
    };

    for (guint i = 0; i < G_N_ELEMENTS (errors); i++)
      {
        g_autoptr(GAsyncResult) result = NULL;
        g_autoptr(GError) failure = g_error_new (G_IO_ERROR, errors[i].code, "failed %u \xe2\x98\x83", i);

        exo_peer_handle_send_failure_async (handle, "req-3", failure, NULL, exo_test_store_result, &result);
        g_assert_true (exo_test_wait_result (&result, WAIT_MS));
        g_assert_true (finish_boolean_call (peer, result, exo_peer_handle_send_failure_finish, &error));
        g_assert_no_error (error);
        g_assert_cmpuint (fx->node->n_failures, ==, i + 1);
        g_assert_cmpstr (fx->node->last_request_id, ==, "req-3");
        g_assert_error (fx->node->last_failure, G_IO_ERROR, errors[i].code);
        g_assert_cmpstr (fx->node->last_failure->message, ==, failure->message);
      }
    /* hostile bodies: refused, the field named */
    {
      g_autoptr(GString) long_message = g_string_new ("{\"request_id\":\"r\",\"status\":400,\"message\":\"");

      for (guint i = 0; i < 1100; i++)
        g_string_append_c (long_message, 'm');
      g_string_append (long_message, "\"}");
      assert_failure_refused (fx, "{\"request_id\":\"r\",\"status\":200,\"message\":\"m\"}", "'status'");
      assert_failure_refused (fx, "{\"request_id\":\"r\",\"status\":\"400\",\"message\":\"m\"}", "'status'");
      assert_failure_refused (fx, "{\"request_id\":\"r\",\"status\":400}", "'message'");
      assert_failure_refused (fx, "{\"status\":400,\"message\":\"m\"}", "'request_id'");
      assert_failure_refused (fx, long_message->str, "longer than 1024 bytes");
      g_assert_cmpuint (fx->node->n_failures, ==, G_N_ELEMENTS (errors));
    }
  }

  /* results */
  {
    gint32 tokens[] = { 2, 3, 4, G_MAXINT32, G_MININT32 };
    g_autoptr(GAsyncResult) result = NULL;

    exo_peer_handle_send_result_async (handle, "req-4", tokens, G_N_ELEMENTS (tokens), TRUE, NULL,
                                       exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_true (finish_boolean_call (peer, result, exo_peer_handle_send_result_finish, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (fx->node->n_results, ==, 1);
    g_assert_cmpstr (fx->node->last_request_id, ==, "req-4");
    g_assert_cmpmem (fx->node->last_tokens->data, fx->node->last_tokens->len * sizeof (gint32),
                     tokens, sizeof tokens);
    g_assert_true (fx->node->last_is_finished);
  }

  /* topology */
  {
    const char *visited[] = { "node-a", "node-b", NULL };
    g_autoptr(GAsyncResult) result = NULL;
    g_autofree char *json = NULL;

    exo_peer_handle_collect_topology_async (handle, visited, 3, NULL, exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    json = exo_peer_handle_collect_topology_finish (handle, result, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (json, ==, fx->node->topology_json);
    g_assert_cmpstrv (fx->node->last_visited, visited);
    g_assert_cmpuint (fx->node->last_max_depth, ==, 3);
  }

  g_assert_cmpuint (metric_u64 (peer, "calls"), ==, 9);         /* 6, and 3 failures told */
  g_assert_cmpuint (metric_u64 (peer, "call-failures"), ==, 0);
  g_assert_cmpuint (metric_u64 (peer, "rtt-samples"), ==, 10);  /* + the connect probe */

  /* a 4xx is fatal: one attempt, the server's message */
  fx->node->fail_with = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL, "no such shard here");
  {
    g_autoptr(GAsyncResult) result = NULL;

    exo_peer_handle_send_prompt_async (handle, shard, "p", "req-5", NULL, NULL,
                                       exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_false (finish_boolean_call (peer, result, exo_peer_handle_send_prompt_finish, &error));
    g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
    g_assert_nonnull (strstr (error->message, "no such shard here"));
    g_assert_nonnull (strstr (error->message, "422"));
    g_assert_cmpuint (fx->node->n_prompts, ==, 2);
    g_clear_error (&error);
  }
  /* a 5xx is retried (max_retries 2), then fails with a G_IO_ERROR */
  g_clear_error (&fx->node->fail_with);
  fx->node->fail_with = g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED, "engine hiccup");
  {
    g_autoptr(GAsyncResult) result = NULL;

    exo_peer_handle_send_prompt_async (handle, shard, "p", "req-6", NULL, NULL,
                                       exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_false (finish_boolean_call (peer, result, exo_peer_handle_send_prompt_finish, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
    g_assert_nonnull (strstr (error->message, "engine hiccup"));
    g_assert_cmpuint (fx->node->n_prompts, ==, 5);
    g_clear_error (&error);
  }
  /* neither breaks the connection */
  g_assert_cmpint (exo_resource_get_state (peer), ==, EXO_RESOURCE_STATE_READY);
  g_assert_cmpuint (metric_u64 (peer, "call-failures"), ==, 2);

  exo_test_cleanup (peer, NULL);
  exo_test_spin (10);
}

typedef struct
{
  ExoResource     *resource;
  ExoResourceState state;
} StateWait;

static gboolean
state_is (gpointer data)
{
  StateWait *w = data;
  return exo_resource_get_state (w->resource) == w->state;
}

static gboolean
state_is_not_ready (gpointer data)
{
  StateWait *w = data;
  ExoResourceState s = exo_resource_get_state (w->resource);
  return s == EXO_RESOURCE_STATE_DEGRADED || s == EXO_RESOURCE_STATE_ERROR;
}

static void
test_peer_server_down (Fixture       *fx,
                       gconstpointer  data)
{
  g_autoptr(ExoResource) peer = peer_new (fx, "peer-down", "fake-node-1");
  g_autoptr(GError) error = NULL;
  gint32 token = 7;
  gint64 start, elapsed;
  StateWait wait = { peer, EXO_RESOURCE_STATE_READY };

  exo_managed_resource_set_health_check_interval (EXO_MANAGED_RESOURCE (peer), 100);
  g_assert_true (exo_test_initialize (peer, &error));
  g_assert_no_error (error);

  /* the server goes away */
  g_assert_true (exo_test_cleanup (fx->server, NULL));
  start = g_get_monotonic_time ();
  {
    g_autoptr(GAsyncResult) result = NULL;

    exo_peer_handle_send_result_async (EXO_PEER_HANDLE (peer), "req", &token, 1, FALSE, NULL,
                                       exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_false (exo_peer_handle_send_result_finish (EXO_PEER_HANDLE (peer), result, &error));
  }
  elapsed = g_get_monotonic_time () - start;
  g_test_message ("a call to a stopped server failed after %" G_GINT64_FORMAT " ms: %s",
                  elapsed / 1000, error->message);
  g_assert_true (exo_error_is_connection_error (error));
  g_assert_true (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
                 g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED));
  g_assert_cmpint (elapsed, <, 3 * G_USEC_PER_SEC * exo_test_slow_factor ());
  g_clear_error (&error);
  g_assert_true (exo_test_spin_until (state_is_not_ready, &wait, WAIT_MS));

  /* it comes back on the same port: the peer reconnects by itself */
  g_object_set (fx->server, "port", (guint) fx->port, NULL);
  g_assert_true (exo_test_initialize (fx->server, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (exo_server_get_port (EXO_SERVER (fx->server)), ==, fx->port);
  g_assert_true (exo_test_spin_until (state_is, &wait, WAIT_MS));
  g_assert_cmpuint (exo_managed_resource_get_restarts (EXO_MANAGED_RESOURCE (peer)), >=, 1);
  {
    g_autoptr(GAsyncResult) result = NULL;

    exo_peer_handle_send_result_async (EXO_PEER_HANDLE (peer), "req-back", &token, 1, TRUE, NULL,
                                       exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_true (exo_peer_handle_send_result_finish (EXO_PEER_HANDLE (peer), result, &error));
    g_assert_no_error (error);
    g_assert_cmpstr (fx->node->last_request_id, ==, "req-back");
  }

  exo_managed_resource_set_health_check_interval (EXO_MANAGED_RESOURCE (peer), 0);
  exo_test_cleanup (peer, NULL);
  exo_test_spin (10);
}

/* A peer that does not answer in time: the connect times out.  A failed
 * health check makes a connected peer degraded; it recovers by itself. */
static void
test_peer_health (Fixture       *fx,
                  gconstpointer  data)
{
  g_autoptr(ExoResource) peer = peer_new (fx, "peer-health", "fake-node-1");
  g_autoptr(GSocket) silent = NULL;
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GError) error = NULL;
  g_autofree char *address = NULL;
  StateWait wait = { peer, EXO_RESOURCE_STATE_READY };
  gint64 start;

  /* a socket that accepts connections (in its backlog) but never answers */
  silent = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (silent, any, TRUE, &error));
  g_assert_true (g_socket_listen (silent, &error));
  bound = g_socket_get_local_address (silent, &error);
  g_assert_no_error (error);
  address = g_strdup_printf ("127.0.0.1:%u", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));

  exo_network_resource_set_address (EXO_NETWORK_RESOURCE (peer), address);
  g_object_set (peer, "call-timeout-ms", 200, NULL);
  start = g_get_monotonic_time ();
  g_assert_false (exo_test_initialize (peer, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, "no answer within 200 ms"));
  /* 3 attempts of 200 ms and short backoff delays */
  g_assert_cmpint (g_get_monotonic_time () - start, <, 3 * G_USEC_PER_SEC * exo_test_slow_factor ());
  g_clear_error (&error);
  g_socket_close (silent, NULL);

  /* the real server; its node goes away: degraded, then ready again */
  exo_network_resource_set_address (EXO_NETWORK_RESOURCE (peer), fx->address);
  g_object_set (peer, "call-timeout-ms", 2000, NULL);
  g_assert_true (exo_test_initialize (peer, &error));
  g_assert_no_error (error);
  exo_test_cleanup (EXO_RESOURCE (fx->node), NULL);
  g_assert_false (exo_test_check_health (peer, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "node not ready"));
  g_assert_cmpint (exo_resource_get_state (peer), ==, EXO_RESOURCE_STATE_DEGRADED);
  g_clear_error (&error);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (fx->node), NULL));
  g_assert_true (exo_test_spin_until (state_is, &wait, WAIT_MS));

  exo_test_cleanup (peer, NULL);
  exo_test_spin (10);
}

static int
compare_u64 (gconstpointer a,
             gconstpointer b)
{
  guint64 x = *(const guint64 *) a, y = *(const guint64 *) b;

  return x < y ? -1 : x > y;
}

/* The loopback health-check round trip, for the closing note of issue 5. */
static void
test_peer_rtt (Fixture       *fx,
               gconstpointer  data)
{
  g_autoptr(ExoResource) peer = peer_new (fx, "peer-rtt", "fake-node-1");
  g_autoptr(GArray) samples = g_array_new (FALSE, FALSE, sizeof (guint64));
  guint n = 1000;

  g_assert_true (exo_test_initialize (peer, NULL));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GAsyncResult) result = NULL;
      gint64 start = g_get_monotonic_time ();
      guint64 us;

      exo_resource_check_health_async (peer, NULL, exo_test_store_result, &result);
      g_assert_true (exo_test_wait_result (&result, WAIT_MS));
      g_assert_true (exo_resource_check_health_finish (peer, result, NULL));
      us = (guint64) (g_get_monotonic_time () - start);
      g_array_append_val (samples, us);
    }
  g_array_sort (samples, compare_u64);
  g_test_message ("health check round trip on loopback over %u calls: median %" G_GUINT64_FORMAT
                  " us, p99 %" G_GUINT64_FORMAT " us (check_health_async to callback); "
                  "HTTP exchange only (last 256): median %" G_GUINT64_FORMAT " us, p99 %"
                  G_GUINT64_FORMAT " us",
                  n, g_array_index (samples, guint64, n / 2), g_array_index (samples, guint64, n * 99 / 100),
                  metric_u64 (peer, "rtt-p50-us"), metric_u64 (peer, "rtt-p99-us"));
  if (g_getenv ("EXO_HTTP_RTT_OUT") != NULL)
    {
      g_autofree char *line = g_strdup_printf ("%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %"
                                               G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n",
                                               g_array_index (samples, guint64, n / 2),
                                               g_array_index (samples, guint64, n * 99 / 100),
                                               metric_u64 (peer, "rtt-p50-us"),
                                               metric_u64 (peer, "rtt-p99-us"));
      g_file_set_contents (g_getenv ("EXO_HTTP_RTT_OUT"), line, -1, NULL);
    }
  g_assert_cmpuint (metric_u64 (peer, "rtt-samples"), ==, 256);
  /* one kept-alive connection served them all */
  g_test_message ("server connections: %" G_GUINT64_FORMAT, metric_u64 (fx->server, "connections"));
  g_assert_cmpuint (metric_u64 (fx->server, "connections"), <=, 2);
  exo_test_cleanup (peer, NULL);
  exo_test_spin (10);
}

void
test_http_server_register_peer (void)
{
  ADD ("peer/connect", test_peer_connect);
  ADD ("peer/learns-id", test_peer_learns_id);
  ADD ("peer/wrong-id", test_peer_wrong_id);
  ADD ("peer/calls", test_peer_calls);
  ADD ("peer/server-down", test_peer_server_down);
  ADD ("peer/health", test_peer_health);
  ADD ("peer/rtt", test_peer_rtt);
}
