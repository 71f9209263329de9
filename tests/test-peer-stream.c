/* test-peer-stream.c: the peer stream of the `http-server` plugin
 * (`GET /peer/v1/stream`, a signed WebSocket carrying tensor, result and
 * cancel calls as binary frames; docs/cluster-protocol.md) as a peer uses
 * it: calls over the stream, the stream turned off, the upgrade's
 * signatures, an unsigned 101, the limit of 64 streams, a call slower than
 * call-timeout-ms, a stream cut with a call in flight.  Hostile frames and
 * a hung peer: test-peer-stream-hostile.c.
 *
 * The plugin is loaded from the build tree as test-http-server does, with
 * its fixture (http-server-fixture.c: a fake node and an ExoHttpServer on
 * 127.0.0.1 in this process, ExoHttpPeer clients) and what the peer
 * stream programs share (peer-stream-fixture.c: waits, the raw
 * authenticated stream).
 *
 * One thread: the server, the nodes and the clients run in the main
 * context of the test's thread; the test spins it until what it waits for
 * happened (bounded by WAIT_MS).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "peer-stream-fixture.h"

/* --- a peer of the fixture's server and its calls ---------------------------------- */

static ExoResource *
connected_peer (Fixture    *fx,
                const char *id,
                const char *peer_id)
{
  ExoResource *peer = peer_new (fx, id, peer_id);
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_initialize (peer, &error));
  g_assert_no_error (error);
  return peer;
}

static ExoTensor *
small_tensor (void)
{
  float values[8];
  gsize shape[2] = { 2, 4 };
  g_autoptr(GBytes) bytes = NULL;

  for (guint i = 0; i < 8; i++)
    values[i] = (float) i * 0.5f - 1.0f;
  bytes = g_bytes_new (values, sizeof values);
  return exo_tensor_new (EXO_DTYPE_FLOAT32, shape, 2, bytes, NULL);
}

static gboolean
send_tensor (ExoResource *peer,
             const char  *request_id,
             GError     **error)
{
  g_autoptr(ExoShard) shard = exo_shard_new ("dummy", 4, 11, 16);
  g_autoptr(ExoTensor) tensor = small_tensor ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(ExoGenerationParams) params = exo_generation_params_new ();

  params->max_tokens = 9;
  params->temperature = 0.25;
  exo_peer_handle_send_tensor_async (EXO_PEER_HANDLE (peer), shard, tensor, request_id, params,
                                     NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  return exo_peer_handle_send_tensor_finish (EXO_PEER_HANDLE (peer), result, error);
}

/* --- calls go over the stream ------------------------------------------------------ */

static void
test_stream_calls (Fixture       *fx,
                   gconstpointer  data)
{
  g_autoptr(ExoResource) peer = connected_peer (fx, "peer-stream", "fake-node-1");
  g_autoptr(GError) error = NULL;
  guint64 http_requests;
  const gint32 tokens[3] = { 7, -1, G_MAXINT32 };

  g_assert_true (wait_for (stream_is_open, peer));
  g_assert_cmpuint (metric_u64 (peer, "stream-opens"), ==, 1);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-streams-open"), ==, 1);
  http_requests = metric_u64 (fx->server, "requests");

  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *request_id = g_strdup_printf ("req-%u", i);

      g_assert_true (send_tensor (peer, request_id, &error));
      g_assert_no_error (error);
    }
  g_assert_cmpuint (fx->node->n_tensors, ==, 5);
  g_assert_cmpstr (fx->node->last_request_id, ==, "req-4");
  g_assert_cmpuint (exo_tensor_get_n_dims (fx->node->last_tensor), ==, 2);
  g_assert_cmpuint (exo_tensor_get_shape (fx->node->last_tensor)[1], ==, 4);
  g_assert_cmpfloat (((const float *) g_bytes_get_data (exo_tensor_get_data (fx->node->last_tensor), NULL))[7],
                     ==, 2.5f);
  assert_params (fx->node->last_params, 9, 0.25, 1.0, FALSE, 0);

  {
    g_autoptr(GAsyncResult) result = NULL;

    exo_peer_handle_send_result_async (EXO_PEER_HANDLE (peer), "req-r", tokens, 3, TRUE, NULL,
                                       exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_true (exo_peer_handle_send_result_finish (EXO_PEER_HANDLE (peer), result, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (fx->node->n_results, ==, 1);
    g_assert_cmpuint (fx->node->last_tokens->len, ==, 3);
    g_assert_cmpint (g_array_index (fx->node->last_tokens, gint32, 1), ==, -1);
    g_assert_cmpint (g_array_index (fx->node->last_tokens, gint32, 2), ==, G_MAXINT32);
    g_assert_true (fx->node->last_is_finished);
  }
  {
    g_autoptr(GAsyncResult) result = NULL;

    exo_peer_handle_send_cancel_async (EXO_PEER_HANDLE (peer), "req-c", NULL,
                                       exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_true (exo_peer_handle_send_cancel_finish (EXO_PEER_HANDLE (peer), result, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (fx->node->n_cancels, ==, 1);
    g_assert_cmpstr (fx->node->last_request_id, ==, "req-c");
  }

  /* all seven over the stream, none over HTTP */
  g_assert_cmpuint (metric_u64 (peer, "stream-calls"), ==, 7);
  g_assert_cmpuint (metric_u64 (peer, "stream-fallbacks"), ==, 0);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-stream-frames"), ==, 7);
  g_assert_cmpuint (metric_u64 (fx->server, "requests"), ==, http_requests);
  {
    g_autoptr(Reply) reply = http_get (fx, "/metrics");
    g_autofree char *text = reply_text (reply);

    g_assert_cmpuint (reply->status, ==, 200);
    g_assert_nonnull (strstr (text, "exo_http_peer_stream_frames_total{id=\"test-http\"} 7"));
    g_assert_nonnull (strstr (text, "exo_http_peer_stream_refused_total{id=\"test-http\",reason=\"bad-mac\"} 0"));
  }

  /* a refusal by the node is the HTTP path's error */
  fx->node->fail_with = g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no such layer");
  g_assert_false (send_tensor (peer, "req-bad", &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
  g_assert_nonnull (strstr (error->message, "400"));
  g_assert_nonnull (strstr (error->message, "no such layer"));
  g_clear_error (&error);
  g_clear_error (&fx->node->fail_with);

  /* a long message, not UTF-8: cut to what an answer frame holds, the
   * stream stays open */
  {
    g_autofree char *junk = g_strnfill (1500, '\xff');

    fx->node->fail_with = g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s", junk);
    g_assert_false (send_tensor (peer, "req-junk", &error));
    g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL);
    g_clear_error (&error);
    g_clear_error (&fx->node->fail_with);
    g_assert_cmpuint (metric_u64 (peer, "stream-refused-malformed"), ==, 0);
    g_assert_cmpuint (metric_u64 (peer, "stream-open"), ==, 1);
    g_assert_cmpuint (metric_u64 (peer, "stream-fallbacks"), ==, 0);
  }

  exo_test_cleanup (peer, NULL);
  exo_test_spin (20);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-streams-open"), ==, 0);
}

/* --- peer-stream: false ------------------------------------------------------------ */

static void
test_stream_off (Fixture       *fx,
                 gconstpointer  data)
{
  g_autoptr(ExoResource) peer = NULL;
  g_autoptr(GError) error = NULL;

  g_object_set (fx->server, "peer-stream", FALSE, NULL);
  peer = connected_peer (fx, "peer-no-stream", "fake-node-1");
  exo_test_spin (200);
  g_assert_cmpuint (metric_u64 (peer, "stream-open"), ==, 0);
  g_assert_true (send_tensor (peer, "req-http", &error));
  g_assert_no_error (error);
  g_assert_cmpuint (fx->node->n_tensors, ==, 1);
  g_assert_cmpuint (metric_u64 (peer, "stream-calls"), ==, 0);
  g_assert_cmpuint (metric_u64 (peer, "stream-fallbacks"), ==, 1);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-stream-opens"), ==, 0);

  /* the upgrade itself: 404 */
  {
    const char *headers[] = { "Upgrade", "websocket", "Connection", "Upgrade",
                              "Sec-WebSocket-Version", "13",
                              "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", NULL };
    g_autoptr(Reply) reply = http (fx, "GET", EXO_STREAM_PATH, NULL, NULL, 0, headers);

    assert_error_reply (reply, 404, "peer-stream: false");
  }
  exo_test_cleanup (peer, NULL);
  exo_test_spin (20);
}

/* --- the upgrade's signatures ------------------------------------------------------ */

static void
test_stream_upgrade_auth (Fixture       *fx,
                          gconstpointer  data)
{
  const char *headers[] = { "Upgrade", "websocket", "Connection", "Upgrade",
                            "Sec-WebSocket-Version", "13",
                            "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", NULL };
  g_autoptr(ExoClusterKey) other = exo_cluster_key_new_random ();

  /* unsigned, or signed with another key: 401, no stream */
  {
    g_autoptr(Reply) reply = http_signed (fx, NULL, "GET", EXO_STREAM_PATH, NULL, NULL, 0, headers);

    g_assert_cmpuint (reply->status, ==, 401);
  }
  {
    g_autoptr(Reply) reply = http_signed (fx, other, "GET", EXO_STREAM_PATH, NULL, NULL, 0, headers);

    g_assert_cmpuint (reply->status, ==, 401);
  }
  /* signed, but no WebSocket handshake: 400 */
  {
    g_autoptr(Reply) reply = http_get (fx, EXO_STREAM_PATH);

    assert_error_reply (reply, 400, "not a WebSocket upgrade");
  }
  g_assert_cmpuint (metric_u64 (fx->server, "peer-stream-opens"), ==, 0);
}

/* A server without the key: it answers the health probe (signed: the test
 * has the key) and upgrades anyone without a signature.  The peer must
 * not use that stream. */
static void
fake_handler (SoupServer        *server,
              SoupServerMessage *msg,
              const char        *path,
              GHashTable        *query,
              gpointer           user_data)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autofree char *nonce = NULL;
  g_autofree char *auth = NULL;
  const char *body = "{\"status\":\"ok\",\"node_id\":\"fake-node-1\"}";
  g_autoptr(GPtrArray) pairs = g_ptr_array_new ();
  SoupMessageHeadersIter iter;
  const char *name, *value;

  if (!g_str_equal (path, "/peer/v1/health"))
    return;   /* the upgrade: left to the WebSocket handler, unsigned */
  /* it holds the key here only to pass the peer's connect probe */
  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    if (g_ascii_strncasecmp (name, "X-Exo-", 6) == 0)
      {
        g_ptr_array_add (pairs, (gpointer) name);
        g_ptr_array_add (pairs, (gpointer) value);
      }
  g_ptr_array_add (pairs, NULL);
  g_assert_true (exo_cluster_key_verify_request (test_key,
                                                 soup_message_headers_get_one (headers, "X-Exo-Auth"),
                                                 "GET", path, (const char * const *) pairs->pdata,
                                                 NULL, 0, NULL, &nonce, NULL));
  auth = exo_cluster_key_sign_response (test_key, nonce, 200, (const guint8 *) body, strlen (body));
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "X-Exo-Auth", auth);
  soup_server_message_set_status (msg, 200, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
}

static void
fake_ws_cb (SoupServer              *server,
            SoupServerMessage       *msg,
            const char              *path,
            SoupWebsocketConnection *connection,
            gpointer                 user_data)
{
  guint *upgrades = user_data;

  (*upgrades)++;
}

static gboolean
open_failed (gpointer data)
{
  return metric_u64 (data, "stream-open-failures") >= 1;
}

static void
test_stream_unsigned_101 (Fixture       *fx,
                          gconstpointer  data)
{
  g_autoptr(SoupServer) fake = soup_server_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoResource) peer = NULL;
  g_autoptr(GSList) uris = NULL;
  g_autofree char *address = NULL;
  guint upgrades = 0;
  GUri *uri;

  soup_server_add_handler (fake, NULL, fake_handler, NULL, NULL);
  soup_server_add_websocket_handler (fake, EXO_STREAM_PATH, NULL, NULL, fake_ws_cb, &upgrades, NULL);
  g_assert_true (soup_server_listen_local (fake, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (fake);
  uri = uris->data;
  address = g_strdup_printf ("127.0.0.1:%d", g_uri_get_port (uri));
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify) g_uri_unref);

  peer = g_object_new (peer_type, "id", "peer-fake", "peer-id", "fake-node-1", "address", address,
                       "call-timeout-ms", 2000, NULL);
  g_assert_true (exo_test_initialize (peer, &error));
  g_assert_no_error (error);
  g_assert_true (wait_for (open_failed, peer));
  g_assert_cmpuint (upgrades, ==, 1);
  g_assert_cmpuint (metric_u64 (peer, "stream-open"), ==, 0);
  g_assert_cmpuint (metric_u64 (peer, "stream-opens"), ==, 0);
  exo_test_cleanup (peer, NULL);
  soup_server_disconnect (fake);
  exo_test_spin (20);
}

/* --- the limit ------------------------------------------------------------------- */

/* at most 64 streams: the 65th upgrade is refused 503; one closed makes room */
static void
test_stream_limit (Fixture       *fx,
                   gconstpointer  data)
{
  g_autoptr(GPtrArray) open = g_ptr_array_new_with_free_func ((GDestroyNotify) raw_free);
  guint status = 0;
  Raw *raw;

  for (guint i = 0; i < 64; i++)
    g_ptr_array_add (open, raw_open (fx));
  g_assert_cmpuint (metric_u64 (fx->server, "peer-streams-open"), ==, 64);
  g_assert_null (raw_try_open (fx, &status));
  g_assert_cmpuint (status, ==, 503);
  g_assert_cmpuint (metric_u64 (fx->server, "peer-streams-rejected"), ==, 1);

  g_ptr_array_remove_index (open, 0);
  g_assert_true (wait_for (fewer_than_64_streams, fx));
  raw = raw_open (fx);
  raw_free (raw);
  g_ptr_array_set_size (open, 0);
  exo_test_spin (50);
}

/* --- the stream cut with a call in flight ------------------------------------------ */

/* A node whose tensor calls wait until the test lets them finish. */
#define TEST_TYPE_HOLD_NODE (test_hold_node_get_type ())
G_DECLARE_FINAL_TYPE (TestHoldNode, test_hold_node, TEST, HOLD_NODE, ExoManagedResource)

struct _TestHoldNode
{
  ExoManagedResource parent_instance;
  guint              n_tensors;
  GTask             *held;
};

static const char *
hold_node_get_node_id (ExoNodeRole *role)
{
  return "hold-node-1";
}

static void
hold_node_process_tensor_async (ExoNodeRole               *role,
                                const ExoShard            *shard,
                                ExoTensor                 *tensor,
                                const char                *request_id,
                                const ExoGenerationParams *params,
                                GCancellable              *cancellable,
                                GAsyncReadyCallback        callback,
                                gpointer                   user_data)
{
  TestHoldNode *self = TEST_HOLD_NODE (role);

  self->n_tensors++;
  g_assert_null (self->held);
  self->held = g_task_new (self, cancellable, callback, user_data);
}

static gboolean
hold_node_finish (ExoNodeRole   *role,
                  GAsyncResult  *result,
                  GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
hold_node_role_init (ExoNodeRoleInterface *iface)
{
  iface->get_node_id = hold_node_get_node_id;
  iface->process_tensor_async = hold_node_process_tensor_async;
  iface->process_tensor_finish = hold_node_finish;
}

G_DEFINE_FINAL_TYPE_WITH_CODE (TestHoldNode, test_hold_node, EXO_TYPE_MANAGED_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_NODE_ROLE, hold_node_role_init))

static void
hold_node_do_nothing (ExoResource *resource,
                      GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
test_hold_node_class_init (TestHoldNodeClass *klass)
{
  EXO_RESOURCE_CLASS (klass)->do_initialize = hold_node_do_nothing;
  EXO_RESOURCE_CLASS (klass)->do_cleanup = hold_node_do_nothing;
  exo_resource_class_set_resource_type (EXO_RESOURCE_CLASS (klass), "test-hold-node");
}

static void
test_hold_node_init (TestHoldNode *self)
{
}

static gboolean
node_holds_call (gpointer data)
{
  return ((TestHoldNode *) data)->held != NULL;
}

static void
test_stream_cut (Fixture       *fx,
                 gconstpointer  data)
{
  g_autoptr(TestHoldNode) node = g_object_new (TEST_TYPE_HOLD_NODE, "id", "hold-node", NULL);
  g_autoptr(ExoResource) peer = NULL;
  g_autoptr(ExoShard) shard = exo_shard_new ("dummy", 4, 11, 16);
  g_autoptr(ExoTensor) tensor = small_tensor ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (node), &error));
  g_assert_no_error (error);
  g_object_set (fx->server, "node", "hold-node", NULL);
  peer = connected_peer (fx, "peer-cut", "hold-node-1");
  g_assert_true (wait_for (stream_is_open, peer));

  exo_peer_handle_send_tensor_async (EXO_PEER_HANDLE (peer), shard, tensor, "req-cut", NULL, NULL,
                                     exo_test_store_result, &result);
  g_assert_true (wait_for (node_holds_call, node));
  g_assert_cmpuint (metric_u64 (peer, "stream-calls"), ==, 1);

  /* the stream goes away with the call in flight (peer-stream turned off
   * closes the server's streams): the call is re-sent over HTTP with its
   * call id, answered as a duplicate, and not run again */
  g_object_set (fx->server, "peer-stream", FALSE, NULL);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_true (exo_peer_handle_send_tensor_finish (EXO_PEER_HANDLE (peer), result, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (node->n_tensors, ==, 1);
  g_assert_cmpuint (metric_u64 (peer, "stream-fallbacks"), ==, 1);
  g_assert_cmpuint (metric_u64 (fx->server, "duplicate-peer-calls"), ==, 1);

  /* the first call ends; its answer goes nowhere */
  {
    GTask *held = g_steal_pointer (&node->held);

    g_task_return_boolean (held, TRUE);
    g_object_unref (held);
  }
  exo_test_spin (20);
  exo_test_cleanup (peer, NULL);
  exo_test_cleanup (EXO_RESOURCE (node), NULL);
  exo_test_spin (20);
}

/* call-timeout-ms holds for a call over the stream: an attempt whose answer
 * does not come in time is given up and retried with its call id, which
 * the server takes as a duplicate: the node runs it once. */
static void
test_stream_timeout (Fixture       *fx,
                     gconstpointer  data)
{
  g_autoptr(TestHoldNode) node = g_object_new (TEST_TYPE_HOLD_NODE, "id", "hold-node", NULL);
  g_autoptr(ExoResource) peer = NULL;
  g_autoptr(ExoShard) shard = exo_shard_new ("dummy", 4, 11, 16);
  g_autoptr(ExoTensor) tensor = small_tensor ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  gint64 start;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (node), &error));
  g_assert_no_error (error);
  g_object_set (fx->server, "node", "hold-node", NULL);
  peer = connected_peer (fx, "peer-timeout", "hold-node-1");
  g_object_set (peer, "call-timeout-ms", 300, NULL);
  g_assert_true (wait_for (stream_is_open, peer));

  start = g_get_monotonic_time ();
  exo_peer_handle_send_tensor_async (EXO_PEER_HANDLE (peer), shard, tensor, "req-slow", NULL, NULL,
                                     exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_true (exo_peer_handle_send_tensor_finish (EXO_PEER_HANDLE (peer), result, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 300 * 1000);
  g_assert_cmpuint (node->n_tensors, ==, 1);
  g_assert_cmpuint (metric_u64 (fx->server, "duplicate-peer-calls"), ==, 1);

  {
    GTask *held = g_steal_pointer (&node->held);

    g_task_return_boolean (held, TRUE);
    g_object_unref (held);
  }
  exo_test_spin (20);
  exo_test_cleanup (peer, NULL);
  exo_test_cleanup (EXO_RESOURCE (node), NULL);
  exo_test_spin (20);
}

int
main (int   argc,
      char *argv[])
{
  peer_stream_test_init (&argc, &argv);
  g_test_add ("/peer-stream/calls", Fixture, NULL, fixture_setup, test_stream_calls, fixture_teardown);
  g_test_add ("/peer-stream/off", Fixture, NULL, fixture_setup, test_stream_off, fixture_teardown);
  g_test_add ("/peer-stream/upgrade-auth", Fixture, NULL, fixture_setup, test_stream_upgrade_auth,
              fixture_teardown);
  g_test_add ("/peer-stream/unsigned-101", Fixture, NULL, fixture_setup, test_stream_unsigned_101,
              fixture_teardown);
  g_test_add ("/peer-stream/limit", Fixture, NULL, fixture_setup, test_stream_limit,
              fixture_teardown);
  g_test_add ("/peer-stream/call-timeout", Fixture, NULL, fixture_setup, test_stream_timeout,
              fixture_teardown);
  g_test_add ("/peer-stream/cut-in-flight", Fixture, NULL, fixture_setup, test_stream_cut,
              fixture_teardown);
  return g_test_run ();
}
