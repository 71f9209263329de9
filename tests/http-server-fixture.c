/* http-server-fixture.c: what the parts of test-http-server share — the
 * plugin, the capture of the server's refusals in the log, the fake node
 * (TestNode, TestBareNode), the fixture (a node and a server on 127.0.0.1,
 * port 0), the HTTP client (signed as ExoHttpPeer signs), the curl client of
 * SSE streams, and an ExoHttpPeer of the fixture's server.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One thread: everything here runs in the main context of the test's thread;
 * the fake node's chats tick on it, and the clients spin it until their
 * asynchronous calls complete.  Servers and peers of this process share one
 * cluster key (test_key, the default key).
 */
#include "http-server-fixture.h"

/* --- the plugin ------------------------------------------------------------ */

ExoPluginLoader *loader;
ExoClusterKey *test_key;
GType server_type;
GType peer_type;

void
load_plugin (void)
{
  const char *path = g_getenv ("EXO_TEST_HTTP_PLUGIN");
  g_autoptr(GError) error = NULL;
  ExoPluginInfo *info;

  g_assert_nonnull (path);
  loader = exo_plugin_loader_new ();
  info = exo_plugin_loader_load_file (loader, path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (exo_plugin_info_get_name (info), ==, "http-server");
  server_type = exo_plugin_loader_lookup_type (loader, "http-server");
  peer_type = exo_plugin_loader_lookup_type (loader, "http-peer");
  g_assert_true (g_type_is_a (server_type, EXO_TYPE_MANAGED_RESOURCE));
  g_assert_true (g_type_is_a (server_type, EXO_TYPE_SERVER));
  g_assert_true (g_type_is_a (peer_type, EXO_TYPE_NETWORK_RESOURCE));
  g_assert_true (g_type_is_a (peer_type, EXO_TYPE_PEER_HANDLE));
  /* the node plugin makes its peers of the type provided for ExoPeerHandle */
  g_assert_true (exo_plugin_lookup_role (EXO_TYPE_PEER_HANDLE) == peer_type);
}

/* --- log capture ----------------------------------------------------------- */

/* The server logs refused requests (rate-limited) as warnings, which GTest
 * would make fatal: they are kept here and checked instead. */
GPtrArray *refusals;

GLogWriterOutput
capture_writer (GLogLevelFlags   log_level,
                const GLogField *fields,
                gsize            n_fields,
                gpointer         user_data)
{
  const char *domain = NULL, *message = NULL;

  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_str_equal (fields[i].key, "GLIB_DOMAIN"))
        domain = fields[i].value;
      else if (g_str_equal (fields[i].key, "MESSAGE"))
        message = fields[i].value;
    }
  if (g_strcmp0 (domain, "exo-http-server") == 0 && message != NULL &&
      strstr (message, ": refused ") != NULL)
    {
      g_ptr_array_add (refusals, g_strdup (message));
      return G_LOG_WRITER_HANDLED;
    }
  /* libsoup's and GIO's chatter only when asked for */
  if ((log_level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)) != 0 &&
      g_getenv ("G_MESSAGES_DEBUG") == NULL)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (log_level, fields, n_fields, user_data);
}

void
discard_log (const char     *log_domain,
             GLogLevelFlags  log_level,
             const char     *message,
             gpointer        user_data)
{
}

guint
refusals_containing (const char *needle)
{
  guint n = 0;

  for (guint i = 0; i < refusals->len; i++)
    if (strstr (g_ptr_array_index (refusals, i), needle) != NULL)
      n++;
  return n;
}

/* --- a fake node ----------------------------------------------------------- */


static void test_node_role_init (ExoNodeRoleInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (TestNode, test_node, EXO_TYPE_MANAGED_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_NODE_ROLE, test_node_role_init))

static void
test_node_do_initialize (ExoResource *resource,
                         GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
test_node_do_cleanup (ExoResource *resource,
                      GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static const char *
test_node_get_node_id (ExoNodeRole *role)
{
  return TEST_NODE (role)->node_id;
}

static void
remember (char       **field,
          const char  *value)
{
  g_free (*field);
  *field = g_strdup (value);
}

static void
remember_params (TestNode                  *self,
                 const ExoGenerationParams *params)
{
  g_clear_pointer (&self->last_params, exo_generation_params_free);
  if (params != NULL)
    self->last_params = exo_generation_params_copy (params);
}

static void
complete_call (TestNode *self,
               GTask    *task)
{
  if (self->fail_with != NULL)
    g_task_return_error (task, g_error_copy (self->fail_with));
  else
    g_task_return_boolean (task, TRUE);
}

static void
test_node_process_prompt_async (ExoNodeRole               *role,
                                const ExoShard            *shard,
                                const char                *prompt,
                                const char                *request_id,
                                const ExoGenerationParams *params,
                                GCancellable              *cancellable,
                                GAsyncReadyCallback        callback,
                                gpointer                   user_data)
{
  TestNode *self = TEST_NODE (role);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  self->n_prompts++;
  remember_params (self, params);
  g_clear_pointer (&self->last_shard, exo_shard_free);
  self->last_shard = exo_shard_copy (shard);
  remember (&self->last_prompt, prompt);
  remember (&self->last_request_id, request_id);
  complete_call (self, task);
}

static gboolean
test_node_finish_boolean (ExoNodeRole   *role,
                          GAsyncResult  *result,
                          GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
test_node_process_tensor_async (ExoNodeRole               *role,
                                const ExoShard            *shard,
                                ExoTensor                 *tensor,
                                const char                *request_id,
                                const ExoGenerationParams *params,
                                GCancellable              *cancellable,
                                GAsyncReadyCallback        callback,
                                gpointer                   user_data)
{
  TestNode *self = TEST_NODE (role);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  self->n_tensors++;
  remember_params (self, params);
  g_clear_pointer (&self->last_shard, exo_shard_free);
  self->last_shard = exo_shard_copy (shard);
  g_clear_pointer (&self->last_tensor, exo_tensor_unref);
  self->last_tensor = exo_tensor_ref (tensor);
  remember (&self->last_request_id, request_id);
  complete_call (self, task);
}

static void
test_node_process_result (ExoNodeRole  *role,
                          const char   *request_id,
                          const gint32 *tokens,
                          gsize         n_tokens,
                          gboolean      is_finished)
{
  TestNode *self = TEST_NODE (role);

  self->n_results++;
  remember (&self->last_request_id, request_id);
  g_array_set_size (self->last_tokens, 0);
  g_array_append_vals (self->last_tokens, tokens, n_tokens);
  self->last_is_finished = is_finished;
}

static void
test_node_cancel_request (ExoNodeRole *role,
                          const char  *request_id)
{
  TestNode *self = TEST_NODE (role);

  self->n_cancels++;
  remember (&self->last_request_id, request_id);
}

static void
test_node_process_failure (ExoNodeRole  *role,
                           const char   *request_id,
                           const GError *failure)
{
  TestNode *self = TEST_NODE (role);

  self->n_failures++;
  remember (&self->last_request_id, request_id);
  g_clear_error (&self->last_failure);
  self->last_failure = g_error_copy (failure);
}

static void
test_node_collect_topology_async (ExoNodeRole         *role,
                                  const char * const  *visited,
                                  guint                max_depth,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  TestNode *self = TEST_NODE (role);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  self->n_topologies++;
  g_strfreev (self->last_visited);
  self->last_visited = g_strdupv ((char **) visited);
  self->last_max_depth = max_depth;
  g_task_return_pointer (task, g_variant_ref (self->topology), (GDestroyNotify) g_variant_unref);
}

static GVariant *
test_node_finish_variant (ExoNodeRole   *role,
                          GAsyncResult  *result,
                          GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static GVariant *
test_node_list_models (ExoNodeRole *role)
{
  return g_variant_ref (TEST_NODE (role)->models);
}

static GVariant *
test_node_get_topology (ExoNodeRole *role)
{
  return g_variant_ref (TEST_NODE (role)->topology);
}

static ExoChatResult *
test_node_chat_finish (ExoNodeRole   *role,
                       GAsyncResult  *result,
                       GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

typedef struct
{
  TestNode     *node;
  char         *request_id;
  ExoTokenFunc  on_token;
  gpointer      token_data;
  guint         next;
  GString      *text;
} Chat;

static void
chat_free (Chat *chat)
{
  g_free (chat->request_id);
  g_string_free (chat->text, TRUE);
  g_free (chat);
}

static gboolean
chat_tick_cb (gpointer data)
{
  GTask *task = data;
  Chat *chat = g_task_get_task_data (task);
  TestNode *self = chat->node;
  g_autofree char *text = NULL;
  gint32 token;

  if (g_task_return_error_if_cancelled (task))
    {
      self->n_chats_cancelled++;
      return G_SOURCE_REMOVE;
    }
  if (self->chat_hang)
    return G_SOURCE_CONTINUE;
  if (self->chat_refuse != NULL)
    {
      g_task_return_error (task, g_error_copy (self->chat_refuse));
      return G_SOURCE_REMOVE;
    }
  if (self->chat_fail_after > 0 && chat->next == self->chat_fail_after)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED,
                               "next hop lost: node-2 refused the connection");
      return G_SOURCE_REMOVE;
    }
  if (chat->next == self->chat_tokens)
    {
      self->n_chats_done++;
      g_task_return_pointer (task,
                             exo_chat_result_new (chat->text->str, self->chat_finish_reason,
                                                  self->chat_prompt_tokens, chat->next),
                             (GDestroyNotify) exo_chat_result_free);
      return G_SOURCE_REMOVE;
    }

  token = (gint32) chat->next + 2;
  text = g_strdup_printf ("tok%u ", chat->next);
  g_string_append (chat->text, text);
  chat->next++;
  chat->on_token (chat->request_id, &token, 1, text, chat->next == self->chat_tokens,
                  chat->token_data);
  return G_SOURCE_CONTINUE;
}

static void
test_node_chat_async (ExoNodeRole               *role,
                      const char                *model,
                      const char                *prompt,
                      const char                *request_id,
                      const ExoGenerationParams *params,
                      ExoTokenFunc               on_token,
                      gpointer                   token_data,
                      GCancellable              *cancellable,
                      GAsyncReadyCallback        callback,
                      gpointer                   user_data)
{
  TestNode *self = TEST_NODE (role);
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  Chat *chat = g_new0 (Chat, 1);
  GSource *source;

  self->n_chats++;
  remember_params (self, params);
  remember (&self->last_prompt, prompt);
  remember (&self->last_model, model);
  remember (&self->last_request_id, request_id);

  chat->node = self;
  chat->request_id = g_strdup (request_id);
  chat->on_token = on_token;
  chat->token_data = token_data;
  chat->text = g_string_new (NULL);
  g_task_set_task_data (task, chat, (GDestroyNotify) chat_free);

  source = g_timeout_source_new (self->chat_hang ? 10 : self->token_interval_ms);
  g_source_set_callback (source, chat_tick_cb, task, g_object_unref);
  g_source_attach (source, g_task_get_context (task));
  g_source_unref (source);
}

static void
test_node_role_init (ExoNodeRoleInterface *iface)
{
  iface->get_node_id = test_node_get_node_id;
  iface->process_prompt_async = test_node_process_prompt_async;
  iface->process_prompt_finish = test_node_finish_boolean;
  iface->process_tensor_async = test_node_process_tensor_async;
  iface->process_tensor_finish = test_node_finish_boolean;
  iface->process_result = test_node_process_result;
  iface->collect_topology_async = test_node_collect_topology_async;
  iface->collect_topology_finish = test_node_finish_variant;
  iface->list_models = test_node_list_models;
  iface->get_topology = test_node_get_topology;
  iface->chat_async = test_node_chat_async;
  iface->chat_finish = test_node_chat_finish;
  iface->cancel_request = test_node_cancel_request;
  iface->process_failure = test_node_process_failure;
}

static void
test_node_finalize (GObject *object)
{
  TestNode *self = TEST_NODE (object);

  g_free (self->node_id);
  g_clear_error (&self->fail_with);
  g_clear_error (&self->chat_refuse);
  g_clear_pointer (&self->models, g_variant_unref);
  g_clear_pointer (&self->topology, g_variant_unref);
  g_free (self->models_json);
  g_free (self->topology_json);
  g_clear_pointer (&self->last_shard, exo_shard_free);
  g_clear_pointer (&self->last_params, exo_generation_params_free);
  g_free (self->last_prompt);
  g_free (self->last_request_id);
  g_free (self->last_model);
  g_clear_pointer (&self->last_tensor, exo_tensor_unref);
  g_array_unref (self->last_tokens);
  g_strfreev (self->last_visited);

  G_OBJECT_CLASS (test_node_parent_class)->finalize (object);
}

static void
test_node_class_init (TestNodeClass *klass)
{
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = test_node_finalize;
  resource_class->do_initialize = test_node_do_initialize;
  resource_class->do_cleanup = test_node_do_cleanup;
  exo_resource_class_set_resource_type (resource_class, "test-node");
}

static void
test_node_init (TestNode *self)
{
  self->chat_tokens = 5;
  self->token_interval_ms = 1;
  self->last_tokens = g_array_new (FALSE, FALSE, sizeof (gint32));
  self->chat_prompt_tokens = -1;
  self->models = g_variant_ref_sink (g_variant_new_parsed ("[{'id': <'dummy'>}]"));
  self->models_json = g_strdup ("{\"object\":\"list\",\"data\":[{\"id\":\"dummy\",\"object\":\"model\"}]}");
  self->topology = g_variant_ref_sink (g_variant_new_parsed (
    "{'nodes': <{'fake-node-1': {'model': <'test'>, 'chip': <'x'>, 'memory': <uint64 1024>}}>,"
    " 'edges': <@a(sss) []>}"));
  self->topology_json = g_strdup ("{\"nodes\":{\"fake-node-1\":{\"model\":\"test\",\"chip\":\"x\","
                                  "\"memory\":1024,\"flops\":{\"fp32\":0.0,\"fp16\":0.0,\"int8\":0.0}}},"
                                  "\"peer_graph\":{},\"active_node_id\":null}");
}

static TestNode *
test_node_new (const char *id,
               const char *node_id)
{
  TestNode *node = g_object_new (TEST_TYPE_NODE, "id", id, NULL);

  node->node_id = g_strdup (node_id);
  return node;
}

/* A node that implements none of ExoNodeRole's vfuncs. */

struct _TestBareNode
{
  ExoManagedResource parent_instance;
};

static void
test_bare_node_role_init (ExoNodeRoleInterface *iface)
{
}

G_DEFINE_FINAL_TYPE_WITH_CODE (TestBareNode, test_bare_node, EXO_TYPE_MANAGED_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_NODE_ROLE, test_bare_node_role_init))

static void
test_bare_node_class_init (TestBareNodeClass *klass)
{
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  resource_class->do_initialize = test_node_do_initialize;
  resource_class->do_cleanup = test_node_do_cleanup;
}

static void
test_bare_node_init (TestBareNode *self)
{
}

/* --- fixture: a node and a server ------------------------------------------ */


ExoResource *
server_new (const char *id,
            guint       port,
            const char *node)
{
  return g_object_new (server_type, "id", id, "port", port, "listen-address", "127.0.0.1",
                       "node", node, NULL);
}

void
fixture_setup (Fixture       *fx,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fx->node = test_node_new ("test-node", "fake-node-1");
  g_assert_true (exo_test_initialize (EXO_RESOURCE (fx->node), &error));
  g_assert_no_error (error);

  fx->server = server_new ("test-http", 0, "test-node");
  g_assert_true (exo_test_initialize (fx->server, &error));
  g_assert_no_error (error);
  fx->port = exo_server_get_port (EXO_SERVER (fx->server));
  g_assert_cmpuint (fx->port, !=, 0);
  fx->address = g_strdup_printf ("127.0.0.1:%u", fx->port);
  fx->session = soup_session_new ();
}

void
fixture_teardown (Fixture       *fx,
                  gconstpointer  data)
{
  soup_session_abort (fx->session);
  g_clear_object (&fx->session);
  exo_test_cleanup (fx->server, NULL);
  exo_test_cleanup (EXO_RESOURCE (fx->node), NULL);
  /* let the last idle callbacks (finished messages, tasks) run */
  exo_test_spin (20);
  g_assert_finalize_object (fx->server);
  g_assert_finalize_object (fx->node);
  g_free (fx->address);
}

/* --- an HTTP client -------------------------------------------------------- */


void
reply_free (Reply *reply)
{
  g_clear_pointer (&reply->body, g_bytes_unref);
  g_free (reply->content_type);
  g_free (reply->allow);
  g_free (reply->www_authenticate);
  g_clear_error (&reply->error);
  g_free (reply);
}

/* @headers: name, value, …, NULL.  A /peer/ request is signed with @key
 * (NULL: unsigned) as ExoHttpPeer signs it, and the signature of a 2xx
 * answer to it is checked. */
Reply *
http_signed (Fixture            *fx,
             ExoClusterKey      *key,
             const char         *method,
             const char         *path,
             const char         *content_type,
             const void         *body,
             gsize               body_len,
             const char * const *headers)
{
  g_autofree char *uri = g_strdup_printf ("http://%s%s", fx->address, path);
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree char *nonce = NULL;
  Reply *reply = g_new0 (Reply, 1);
  SoupMessageHeaders *response_headers;

  g_assert_nonnull (msg);
  if (body != NULL)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (body, body_len);
      soup_message_set_request_body_from_bytes (msg, content_type, bytes);
    }
  for (guint i = 0; headers != NULL && headers[i] != NULL; i += 2)
    soup_message_headers_replace (soup_message_get_request_headers (msg), headers[i], headers[i + 1]);
  if (key != NULL && g_str_has_prefix (path, "/peer/"))
    {
      g_autoptr(GPtrArray) pairs = g_ptr_array_new ();
      g_autofree char *auth = NULL;

      soup_message_headers_replace (soup_message_get_request_headers (msg), "X-Exo-Node-Id",
                                    "test-client");
      g_ptr_array_add (pairs, (gpointer) "X-Exo-Node-Id");
      g_ptr_array_add (pairs, (gpointer) "test-client");
      for (guint i = 0; headers != NULL && headers[i] != NULL; i += 2)
        {
          g_ptr_array_add (pairs, (gpointer) headers[i]);
          g_ptr_array_add (pairs, (gpointer) headers[i + 1]);
        }
      g_ptr_array_add (pairs, NULL);
      auth = exo_cluster_key_sign_request (key, method, path, (const char * const *) pairs->pdata,
                                           body, body != NULL ? body_len : 0, g_get_real_time (),
                                           &nonce);
      soup_message_headers_replace (soup_message_get_request_headers (msg), "X-Exo-Auth", auth);
    }

  soup_session_send_and_read_async (fx->session, msg, G_PRIORITY_DEFAULT, NULL,
                                    exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  reply->body = soup_session_send_and_read_finish (fx->session, result, &reply->error);
  reply->status = soup_message_get_status (msg);
  response_headers = soup_message_get_response_headers (msg);
  reply->content_type = g_strdup (soup_message_headers_get_content_type (response_headers, NULL));
  reply->allow = g_strdup (soup_message_headers_get_one (response_headers, "Allow"));
  reply->www_authenticate = g_strdup (soup_message_headers_get_one (response_headers,
                                                                    "WWW-Authenticate"));
  if (nonce != NULL && reply->body != NULL && SOUP_STATUS_IS_SUCCESSFUL (reply->status) &&
      !g_str_equal (method, "HEAD"))
    {
      /* The server signed its answer for this request, with our key. */
      g_autoptr(GError) error = NULL;
      gsize len = 0;
      const guint8 *data = g_bytes_get_data (reply->body, &len);

      exo_cluster_key_verify_response (key, soup_message_headers_get_one (response_headers,
                                                                          "X-Exo-Auth"),
                                       nonce, reply->status, data, len, &error);
      g_assert_no_error (error);
    }
  return reply;
}

Reply *
http (Fixture            *fx,
      const char         *method,
      const char         *path,
      const char         *content_type,
      const void         *body,
      gsize               body_len,
      const char * const *headers)
{
  return http_signed (fx, test_key, method, path, content_type, body, body_len, headers);
}

Reply *
http_get (Fixture    *fx,
          const char *path)
{
  return http (fx, "GET", path, NULL, NULL, 0, NULL);
}

Reply *
http_post_json (Fixture    *fx,
                const char *path,
                const char *json)
{
  return http (fx, "POST", path, "application/json", json, strlen (json), NULL);
}

JsonNode *
reply_json (Reply *reply)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  gsize len = 0;
  const char *data;

  g_assert_no_error (reply->error);
  g_assert_nonnull (reply->body);
  data = g_bytes_get_data (reply->body, &len);
  json_parser_load_from_data (parser, data, (gssize) len, &error);
  g_assert_no_error (error);
  return json_node_ref (json_parser_get_root (parser));
}

char *
reply_text (Reply *reply)
{
  gsize len = 0;
  const char *data = g_bytes_get_data (reply->body, &len);

  return g_strndup (data, len);
}

/* Asserts @reply has @status and an {"error": …} containing @needle. */
void
assert_error_reply (Reply      *reply,
                    guint       status,
                    const char *needle)
{
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;
  const char *message;

  g_assert_no_error (reply->error);
  if (reply->status != status)
    {
      g_autofree char *text = reply_text (reply);
      g_test_message ("expected %u, got %u: %s", status, reply->status, text);
    }
  g_assert_cmpuint (reply->status, ==, status);
  g_assert_cmpstr (reply->content_type, ==, "application/json");
  root = reply_json (reply);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  object = json_node_get_object (root);
  g_assert_true (json_object_has_member (object, "error"));
  /* a chat's node errors have OpenAI's shape {"error": {"message", "type",
   * "param", "code"}}; the rest {"error": text} */
  if (JSON_NODE_HOLDS_OBJECT (json_object_get_member (object, "error")))
    {
      JsonObject *e = json_object_get_object_member (object, "error");

      g_assert_true (json_object_has_member (e, "type"));
      g_assert_true (json_object_has_member (e, "param"));
      g_assert_true (json_object_has_member (e, "code"));
      message = json_object_get_string_member (e, "message");
    }
  else
    message = json_object_get_string_member (object, "error");
  if (needle != NULL && strstr (message, needle) == NULL)
    g_error ("error message '%s' does not contain '%s'", message, needle);
}

/* Asserts @got holds the given parameters. */
void
assert_params (const ExoGenerationParams *got,
               guint                      max_tokens,
               double                     temperature,
               double                     top_p,
               gboolean                   has_seed,
               gint64                     seed)
{
  g_assert_nonnull (got);
  g_assert_cmpuint (got->max_tokens, ==, max_tokens);
  g_assert_cmpfloat (got->temperature, ==, temperature);
  g_assert_cmpfloat (got->top_p, ==, top_p);
  g_assert_cmpint (got->has_seed, ==, has_seed);
  if (has_seed)
    g_assert_cmpint (got->seed, ==, seed);
}

/* --- shared by several parts --------------------------------------------- */

const char *valid_shard = "{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":7,\"n_layers\":16}";

const char *chat_body =
  "{\"model\":\"dummy\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
  "{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.7}";

gboolean
have_curl (void)
{
  g_autofree char *path = g_find_program_in_path ("curl");

  return path != NULL;
}

static void
curl_read_line (Curl *curl);

static void
curl_line_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Curl *curl = user_data;
  g_autoptr(GError) error = NULL;
  gsize len = 0;
  char *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result,
                                                          &len, &error);

  if (line == NULL)
    {
      curl->eof = TRUE;
      return;
    }
  {
    gint64 now = g_get_monotonic_time ();
    g_ptr_array_add (curl->lines, line);
    g_array_append_val (curl->times, now);
  }
  curl_read_line (curl);
}

static void
curl_read_line (Curl *curl)
{
  g_data_input_stream_read_line_async (curl->out, G_PRIORITY_DEFAULT, NULL, curl_line_cb, curl);
}

gboolean
curl_done (gpointer data)
{
  return ((Curl *) data)->eof;
}

Curl *
curl_start (Fixture    *fx,
            const char *path,
            const char *body)
{
  g_autofree char *url = g_strdup_printf ("http://%s%s", fx->address, path);
  g_autoptr(GError) error = NULL;
  Curl *curl = g_new0 (Curl, 1);

  curl->process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                                    "curl", "-sN", "--max-time", "30",
                                    "-H", "Content-Type: application/json",
                                    "-d", body, url, NULL);
  g_assert_no_error (error);
  curl->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (curl->process));
  curl->lines = g_ptr_array_new_with_free_func (g_free);
  curl->times = g_array_new (FALSE, FALSE, sizeof (gint64));
  curl_read_line (curl);
  return curl;
}

void
curl_free (Curl *curl)
{
  g_subprocess_wait (curl->process, NULL, NULL);
  g_object_unref (curl->out);
  g_object_unref (curl->process);
  g_ptr_array_unref (curl->lines);
  g_array_unref (curl->times);
  g_free (curl);
}

ExoResource *
peer_new (Fixture    *fx,
          const char *id,
          const char *peer_id)
{
  g_autoptr(GVariantDict) caps = g_variant_dict_new (NULL);
  ExoRetryPolicy policy = { 2, 20, 200, 2.0, EXO_JITTER_NONE, 0, 10000 };
  ExoResource *peer;

  g_variant_dict_insert (caps, "model", "s", "Test box");
  g_variant_dict_insert (caps, "memory", "t", (guint64) 1024);
  peer = g_object_new (peer_type, "id", id, "peer-id", peer_id, "address", fx->address,
                       "device-capabilities", g_variant_dict_end (caps),
                       "call-timeout-ms", 2000, NULL);
  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (peer), &policy);
  return peer;
}

guint64
metric_u64 (ExoResource *resource,
            const char  *name)
{
  g_autoptr(GVariant) metrics = exo_resource_get_metrics (resource);
  g_autoptr(GVariant) value = g_variant_lookup_value (metrics, name, NULL);

  g_assert_nonnull (value);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (value);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
    return g_variant_get_boolean (value);
  return g_variant_get_uint64 (value);
}
