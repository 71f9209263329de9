/* test-cluster-node.c: the node resource in this process (plugins loaded
 * from the build tree, without http-server) — a one-node ring, chat with
 * tokens, cancellation, the request timeout, bad input, a discovery with
 * another node id, and peers found while the peer handle type is missing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-cluster (main() in test-cluster.c).  One thread, the test's:
 * the resources run on the default main context, which the helpers here
 * iterate until the asynchronous calls complete.  Owns the plugin loader
 * (loader), which main() drops at the end.
 */
#include "cluster-fixture.h"

/* --- the node in this process --------------------------------------------- */

ExoPluginLoader *loader;

static gboolean
load_plugins (void)
{
  const char *dir = g_getenv ("EXO_TEST_PLUGIN_DIR");
  /* Not http-server: /cluster/node/no-peer-type needs no peer handle provider. */
  const char *names[] = { "dummy-inference", "udp-discovery", "node" };

  if (loader != NULL)
    return TRUE;
  if (dir == NULL)
    return FALSE;
  loader = exo_plugin_loader_new ();
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *file = g_strdup_printf ("libexo-plugin-%s.so", names[i]);
      g_autofree char *path = g_build_filename (dir, names[i], file, NULL);
      g_autoptr(GError) error = NULL;

      if (exo_plugin_loader_load_file (loader, path, &error) == NULL)
        {
          g_test_message ("%s", error->message);
          g_clear_object (&loader);
          return FALSE;
        }
    }
  return TRUE;
}

static ExoResource *
make (const char *type_name,
      const char *id,
      const char *first_property,
      ...)
{
  GType type = exo_plugin_loader_lookup_type (loader, type_name);
  GObject *object;
  va_list args;

  g_assert (type != G_TYPE_INVALID);
  object = g_object_new (type, "id", id, NULL);
  va_start (args, first_property);
  if (first_property != NULL)
    g_object_set_valist (object, first_property, args);
  va_end (args);
  return EXO_RESOURCE (object);
}

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_for (GAsyncResult **slot)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (*slot == NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (*slot);
  return *slot;
}

static gboolean
initialize (ExoResource *r,
            GError     **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  exo_resource_initialize_async (r, NULL, store_result, &result);
  return exo_resource_initialize_finish (r, wait_for (&result), error);
}

static void
cleanup (ExoResource *r)
{
  g_autoptr(GAsyncResult) result = NULL;

  exo_resource_cleanup_async (r, NULL, store_result, &result);
  exo_resource_cleanup_finish (r, wait_for (&result), NULL);
}

typedef struct {
  GString *text;
  guint    calls;
  gsize    tokens;
  gboolean finished;
  gboolean after_finish;
  ExoChatResult *result;   /* of the last chat that succeeded */
} Tokens;

static void
on_token (const char   *request_id,
          const gint32 *tokens,
          gsize         n_tokens,
          const char   *text,
          gboolean      is_finished,
          gpointer      user_data)
{
  Tokens *t = user_data;

  if (t->finished)
    t->after_finish = TRUE;
  t->calls++;
  t->tokens += n_tokens;
  g_string_append (t->text, text);
  t->finished = is_finished;
}

static char *
chat_with (ExoResource                *node,
           const char                 *model,
           const char                 *request_id,
           const ExoGenerationParams  *params,
           Tokens                     *tokens,
           GCancellable               *cancellable,
           GError                    **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  ExoChatResult *chat;

  exo_node_role_chat_async (EXO_NODE_ROLE (node), model, "hello", request_id, params, on_token,
                            tokens, NULL, cancellable, store_result, &result);
  chat = exo_node_role_chat_finish (EXO_NODE_ROLE (node), wait_for (&result), error);
  if (chat == NULL)
    return NULL;
  g_clear_pointer (&tokens->result, exo_chat_result_free);
  tokens->result = chat;
  return g_strdup (exo_chat_result_get_text (chat));
}

static char *
chat (ExoResource   *node,
      const char    *model,
      const char    *request_id,
      Tokens        *tokens,
      GCancellable  *cancellable,
      GError       **error)
{
  return chat_with (node, model, request_id, NULL, tokens, cancellable, error);
}

static double
local_metric_double (ExoResource *r,
                     const char  *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (r);
  double value = -2;

  g_variant_lookup (metrics, key, "d", &value);
  return value;
}

static gint64
local_metric (ExoResource *r,
              const char  *key)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (r);

  return metric (metrics, key);
}

static void
spin_ms (guint ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;

  while (g_get_monotonic_time () < end)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
}

static gboolean
cancel_soon (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

/* One node alone: the whole model is its shard. */
static void
test_node_single (void)
{
  g_autoptr(ExoResourceGroup) root = NULL;
  g_autoptr(ExoResource) engine = NULL;
  g_autoptr(ExoResource) node = NULL;
  g_autoptr(GError) error = NULL;
  ExoNodeRole *role;
  Tokens t = { g_string_new (NULL) };
  g_autofree char *text = NULL;
  g_autoptr(GVariant) value = NULL;

  if (!load_plugins ())
    {
      g_test_skip ("plugins not found (EXO_TEST_PLUGIN_DIR)");
      g_string_free (t.text, TRUE);
      return;
    }
  root = exo_resource_group_new ("root");
  engine = make ("dummy-inference", "engine", "num-generate-tokens", 5, NULL);
  node = make ("node", "node", "discovery", "", "server", "", "node-id", "solo",
               "n-layers", 8, "device-memory-mib", (guint64) 1000, NULL);
  g_assert_true (exo_resource_group_add (root, engine, NULL, NULL));
  g_assert_true (exo_resource_group_add (root, node, (const char *[]) { "engine", NULL }, NULL));
  g_assert_true (initialize (EXO_RESOURCE (root), &error));
  g_assert_no_error (error);
  role = EXO_NODE_ROLE (node);
  g_assert_cmpstr (exo_node_role_get_node_id (role), ==, "solo");

  /* Tokens 2..5, then EOS: four "dummy", streamed, then finished once. */
  text = chat (node, "dummy", "r1", &t, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, "dummydummydummydummy");
  g_assert_cmpstr (t.text->str, ==, text);
  g_assert_cmpuint (t.tokens, ==, 4);
  g_assert_true (t.finished);
  g_assert_false (t.after_finish);
  /* EOS before max-tokens: "stop"; the prompt's tokens were counted */
  g_assert_cmpstr (exo_chat_result_get_finish_reason (t.result), ==, "stop");
  g_assert_cmpint (exo_chat_result_get_completion_tokens (t.result), ==, 4);
  g_assert_cmpint (exo_chat_result_get_prompt_tokens (t.result), >, 0);
  g_assert_cmpint (local_metric (node, "requests"), ==, 1);
  g_assert_cmpint (local_metric (node, "tokens-generated"), ==, 4);
  g_assert_cmpint (local_metric (node, "layers-computed"), ==, 5);
  g_assert_cmpint (local_metric (node, "shard-start"), ==, 0);
  g_assert_cmpint (local_metric (node, "shard-end"), ==, 7);
  g_assert_cmpint (local_metric (node, "requests-in-flight"), ==, 0);

  /* The request's max_tokens when it is below the node's max-tokens (64);
   * the engine samples with its temperature and top_p. */
  {
    g_autoptr(ExoGenerationParams) params = exo_generation_params_new ();

    params->max_tokens = 2;
    params->temperature = 0.75;
    params->top_p = 0.5;
    params->has_seed = TRUE;
    params->seed = 11;
    g_string_truncate (t.text, 0);
    t.tokens = 0;
    t.finished = FALSE;
    g_clear_pointer (&text, g_free);
    text = chat_with (node, "dummy", "r1-params", params, &t, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (text, ==, "dummydummy");
    g_assert_cmpuint (t.tokens, ==, 2);
    g_assert_true (t.finished);
    /* stopped at the request's max_tokens */
    g_assert_cmpstr (exo_chat_result_get_finish_reason (t.result), ==, "length");
    g_assert_cmpint (exo_chat_result_get_completion_tokens (t.result), ==, 2);
    g_assert_cmpfloat (local_metric_double (engine, "last-sample-temperature"), ==, 0.75);
    g_assert_cmpfloat (local_metric_double (engine, "last-sample-top-p"), ==, 0.5);

    /* the node's max-tokens when it is the smaller */
    g_object_set (node, "max-tokens", 3, NULL);
    params->max_tokens = 10;
    g_clear_pointer (&text, g_free);
    text = chat_with (node, "dummy", "r1-capped", params, &t, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (text, ==, "dummydummydummy");
    g_assert_cmpstr (exo_chat_result_get_finish_reason (t.result), ==, "length");
    g_object_set (node, "max-tokens", 64, NULL);

    /* none given: greedy (temperature 0, top_p 1), the node's max-tokens */
    g_clear_pointer (&text, g_free);
    text = chat_with (node, "dummy", "r1-defaults", NULL, &t, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (text, ==, "dummydummydummydummy");
    g_assert_cmpstr (exo_chat_result_get_finish_reason (t.result), ==, "stop");
    g_assert_cmpfloat (local_metric_double (engine, "last-sample-temperature"), ==, 0);
    g_assert_cmpfloat (local_metric_double (engine, "last-sample-top-p"), ==, 1);

    /* what the peer RPC would refuse is refused here too */
    params->temperature = 2.5;
    g_clear_pointer (&text, g_free);
    text = chat_with (node, "dummy", "r1-bad", params, &t, NULL, &error);
    g_assert_null (text);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "temperature"));
    g_clear_error (&error);
    params->temperature = 1;
    params->top_p = 0;
    {
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(ExoShard) shard = exo_shard_new ("dummy", 0, 7, 8);
      const gint32 one = 1;
      g_autoptr(ExoTensor) tensor = exo_tensor_new_int32 (&one, 1);

      exo_node_role_process_tensor_async (role, shard, tensor, "r1-bad-tensor", params, NULL,
                                          store_result, &result);
      g_assert_false (exo_node_role_process_tensor_finish (role, wait_for (&result), &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, "top_p"));
      g_clear_error (&error);
    }
  }

  /* Without a model name: the one served. */
  g_clear_pointer (&text, g_free);
  text = chat (node, NULL, NULL, &t, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, "dummydummydummydummy");

  /* Another model: 404-worthy, named. */
  g_clear_pointer (&text, g_free);
  text = chat (node, "llama-3-8b", "r2", &t, NULL, &error);
  g_assert_null (text);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "llama-3-8b"));
  g_clear_error (&error);

  /* The topology and the models, typed (EXO_NODE_ROLE_*_TYPE). */
  value = exo_node_role_get_topology (role, &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) shards = g_variant_lookup_value (value, "shards", G_VARIANT_TYPE ("a(ssuuu)"));
    g_autoptr(GVariant) nodes = g_variant_lookup_value (value, "nodes", G_VARIANT_TYPE ("a{sa{sv}}"));
    g_autoptr(GVariant) caps = NULL;
    const char *node_id;
    guint64 memory = 0;

    g_assert_true (g_variant_lookup (value, "node-id", "&s", &node_id));
    g_assert_cmpstr (node_id, ==, "solo");
    g_assert_nonnull (shards);
    g_assert_cmpuint (g_variant_n_children (shards), ==, 1);
    g_assert_nonnull (nodes);
    caps = g_variant_lookup_value (nodes, "solo", G_VARIANT_TYPE_VARDICT);
    g_assert_nonnull (caps);
    g_assert_true (g_variant_lookup (caps, "memory", "t", &memory));
    g_assert_cmpuint (memory, ==, 1000);
  }
  g_clear_pointer (&value, g_variant_unref);
  value = exo_node_role_list_models (role, &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) model = g_variant_get_child_value (value, 0);
    const char *id;
    guint32 n_layers;

    g_assert_true (g_variant_lookup (model, "id", "&s", &id));
    g_assert_cmpstr (id, ==, "dummy");
    g_assert_true (g_variant_lookup (model, "n-layers", "u", &n_layers));
    g_assert_cmpuint (n_layers, ==, 8);
  }
  g_clear_pointer (&value, g_variant_unref);
  {
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(GVariant) nodes = NULL;
    const char *visited[] = { "someone", NULL };

    exo_node_role_collect_topology_async (role, visited, 2, NULL, store_result, &result);
    value = exo_node_role_collect_topology_finish (role, wait_for (&result), &error);
    g_assert_no_error (error);
    nodes = g_variant_lookup_value (value, "nodes", G_VARIANT_TYPE ("a{sa{sv}}"));
    g_assert_nonnull (nodes);
    g_assert_cmpuint (g_variant_n_children (nodes), ==, 1);
    /* a peer's answer has no view of the ring */
    g_assert_false (g_variant_lookup (value, "shards", "*", NULL));
    g_clear_pointer (&value, g_variant_unref);
  }

  /* A peer's tensor for another model is refused. */
  {
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(ExoShard) shard = exo_shard_new ("other", 0, 3, 4);
    const gint32 one = 1;
    g_autoptr(ExoTensor) tensor = exo_tensor_new_int32 (&one, 1);

    exo_node_role_process_tensor_async (role, shard, tensor, "r3", NULL, NULL, store_result, &result);
    g_assert_false (exo_node_role_process_tensor_finish (role, wait_for (&result), &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
  }

  /* Cancelled by the caller while in flight. */
  g_object_set (engine, "latency-ms", 50, NULL);
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    g_timeout_add (20, cancel_soon, cancellable);
    g_clear_pointer (&text, g_free);
    text = chat (node, "dummy", "r4", &t, cancellable, &error);
    g_assert_null (text);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
  }

  /* No progress within request-timeout-ms: a clear timeout. */
  g_object_set (engine, "latency-ms", 400, NULL);
  g_object_set (node, "request-timeout-ms", 100, NULL);
  g_clear_pointer (&text, g_free);
  text = chat (node, "dummy", "r5", &t, NULL, &error);
  g_assert_null (text);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, "request r5: no progress for 100 ms"));
  g_clear_error (&error);
  /* The timeout; neither the refused model nor the cancellation counts. */
  g_assert_cmpint (local_metric (node, "failed-requests"), ==, 1);
  /* Let the engine's late answers come back to a forgotten request. */
  spin_ms (600);

  cleanup (EXO_RESOURCE (root));
  g_string_free (t.text, TRUE);
  g_clear_pointer (&t.result, exo_chat_result_free);
}

static ExoResource *
make_discovery (const char *node_id)
{
  guint16 port = free_port (G_SOCKET_TYPE_DATAGRAM);
  g_autofree char *sink = g_strdup_printf ("127.0.0.1:%u", free_port (G_SOCKET_TYPE_DATAGRAM));
  const char *targets[] = { sink, NULL };

  /* Loopback only: no broadcast leaves this host. */
  return make ("udp-discovery", "discovery", "node-id", node_id, "port", (guint) port,
               "listen-address", "127.0.0.1", "broadcast-addresses", targets, NULL);
}

/* The node and its discovery must use one id. */
static void
test_node_id_mismatch (void)
{
  g_autoptr(ExoResourceGroup) root = NULL;
  g_autoptr(GError) error = NULL;

  if (!load_plugins ())
    {
      g_test_skip ("plugins not found (EXO_TEST_PLUGIN_DIR)");
      return;
    }
  root = exo_resource_group_new ("root");
  {
    g_autoptr(ExoResource) engine = make ("dummy-inference", "engine", NULL);
    g_autoptr(ExoResource) discovery = make_discovery ("alpha");
    g_autoptr(ExoResource) node = make ("node", "node", "server", "", "node-id", "beta", NULL);

    exo_resource_group_add (root, engine, NULL, NULL);
    exo_resource_group_add (root, discovery, NULL, NULL);
    exo_resource_group_add (root, node, (const char *[]) { "engine", "discovery", NULL }, NULL);
  }
  g_assert_false (initialize (EXO_RESOURCE (root), &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "node-id 'beta' differs from the node id 'alpha'"));
  cleanup (EXO_RESOURCE (root));
}

/* Without the http-server plugin no plugin provides peer handles: a node
 * with a discovery (which finds peers) fails to initialize and says why. */
static void
test_node_no_peer_type (void)
{
  g_autoptr(ExoResourceGroup) root = NULL;
  g_autoptr(ExoResource) discovery = NULL;
  g_autoptr(ExoResource) node = NULL;
  g_autoptr(GError) error = NULL;
  const GError *last;

  if (!load_plugins ())
    {
      g_test_skip ("plugins not found (EXO_TEST_PLUGIN_DIR)");
      return;
    }
  if (exo_plugin_lookup_role (EXO_TYPE_PEER_HANDLE) != G_TYPE_INVALID)
    {
      g_test_skip ("a peer handle type is provided in this process");
      return;
    }
  root = exo_resource_group_new ("root");
  {
    g_autoptr(ExoResource) engine = make ("dummy-inference", "engine", NULL);

    discovery = make_discovery ("gamma");
    node = make ("node", "node", "server", "", NULL);
    exo_resource_group_add (root, engine, NULL, NULL);
    exo_resource_group_add (root, discovery, NULL, NULL);
    exo_resource_group_add (root, node, (const char *[]) { "engine", "discovery", NULL }, NULL);
  }
  g_assert_false (initialize (EXO_RESOURCE (root), &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  g_assert_cmpint (exo_resource_get_state (node), ==, EXO_RESOURCE_STATE_ERROR);
  last = exo_resource_get_last_error (node);
  g_assert_nonnull (last);
  g_assert_nonnull (strstr (last->message,
                            "no plugin provides peer handles (ExoPeerHandle); "
                            "load the http-server plugin"));
  cleanup (EXO_RESOURCE (root));
}

void
test_cluster_register_node (void)
{
  g_test_add_func ("/cluster/node/single", test_node_single);
  g_test_add_func ("/cluster/node/id-mismatch", test_node_id_mismatch);
  g_test_add_func ("/cluster/node/no-peer-type", test_node_no_peer_type);
}
