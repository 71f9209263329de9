/* test-http-server.c: the `http-server` plugin — ExoHttpServer and ExoHttpPeer.
 *
 * The plugin is loaded from the build tree (EXO_TEST_HTTP_PLUGIN) with the
 * real loader.  A fake ExoNodeRole (TestNode, below) is registered under the
 * id the server looks up; the server listens on 127.0.0.1, port 0, in this
 * process; clients are a SoupSession (JSON), curl (the SSE stream, read
 * line by line as it arrives), raw sockets (garbage), and ExoHttpPeer.
 *
 * Everything runs in the main context of this thread: the client calls are
 * asynchronous and the test spins the context until they complete.
 *
 * Servers and peers of this process share one cluster key (test_key, the
 * default key).  http() signs every /peer/ request with it, as ExoHttpPeer
 * does, and checks the signature of every 2xx answer; /http/auth/... send
 * unsigned, forged, stale and replayed requests on purpose.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <math.h>

#define WAIT_MS (20000 * exo_test_slow_factor ())

/* --- the plugin ------------------------------------------------------------ */

static ExoPluginLoader *loader;
static ExoClusterKey *test_key;
static GType server_type;
static GType peer_type;

static void
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
static GPtrArray *refusals;

static GLogWriterOutput
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

static void
discard_log (const char     *log_domain,
             GLogLevelFlags  log_level,
             const char     *message,
             gpointer        user_data)
{
}

static guint
refusals_containing (const char *needle)
{
  guint n = 0;

  for (guint i = 0; i < refusals->len; i++)
    if (strstr (g_ptr_array_index (refusals, i), needle) != NULL)
      n++;
  return n;
}

/* --- a fake node ----------------------------------------------------------- */

#define TEST_TYPE_NODE (test_node_get_type ())
G_DECLARE_FINAL_TYPE (TestNode, test_node, TEST, NODE, ExoManagedResource)

struct _TestNode
{
  ExoManagedResource parent_instance;

  char      *node_id;
  /* behaviour */
  guint      chat_tokens;        /* tokens a chat yields */
  guint      token_interval_ms;  /* between tokens */
  gboolean   chat_hang;          /* a chat never yields (until cancelled) */
  guint      chat_fail_after;    /* >0: a chat fails after this many tokens */
  GError    *chat_refuse;        /* a chat fails with this before its first token */
  GError    *fail_with;          /* prompt/tensor calls fail with this */
  const char *chat_finish_reason; /* what a chat's ExoChatResult says; NULL: "stop" */
  gint64     chat_prompt_tokens; /* likewise; -1: unknown */
  GVariant  *models;             /* EXO_NODE_ROLE_MODELS_TYPE */
  GVariant  *topology;           /* EXO_NODE_ROLE_TOPOLOGY_TYPE */
  char      *models_json;        /* the JSON the server is to write of them */
  char      *topology_json;
  /* what it saw */
  guint      n_prompts;
  guint      n_tensors;
  guint      n_results;
  guint      n_topologies;
  guint      n_chats;
  guint      n_chats_cancelled;
  guint      n_chats_done;
  guint      n_cancels;
  ExoShard  *last_shard;
  ExoGenerationParams *last_params;  /* of the last prompt, tensor or chat; NULL: none given */
  char      *last_prompt;
  char      *last_request_id;
  char      *last_model;
  ExoTensor *last_tensor;
  GArray    *last_tokens;
  gboolean   last_is_finished;
  GStrv      last_visited;
  guint      last_max_depth;
};

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
#define TEST_TYPE_BARE_NODE (test_bare_node_get_type ())
G_DECLARE_FINAL_TYPE (TestBareNode, test_bare_node, TEST, BARE_NODE, ExoManagedResource)

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

typedef struct
{
  TestNode    *node;
  ExoResource *server;
  guint16      port;
  char        *address;     /* 127.0.0.1:PORT */
  SoupSession *session;
} Fixture;

static ExoResource *
server_new (const char *id,
            guint       port,
            const char *node)
{
  return g_object_new (server_type, "id", id, "port", port, "listen-address", "127.0.0.1",
                       "node", node, NULL);
}

static void
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

static void
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

typedef struct
{
  guint        status;
  GBytes      *body;
  char        *content_type;
  char        *allow;
  char        *www_authenticate;
  GError      *error;
} Reply;

static void
reply_free (Reply *reply)
{
  g_clear_pointer (&reply->body, g_bytes_unref);
  g_free (reply->content_type);
  g_free (reply->allow);
  g_free (reply->www_authenticate);
  g_clear_error (&reply->error);
  g_free (reply);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Reply, reply_free)

/* @headers: name, value, …, NULL.  A /peer/ request is signed with @key
 * (NULL: unsigned) as ExoHttpPeer signs it, and the signature of a 2xx
 * answer to it is checked. */
static Reply *
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

static Reply *
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

static Reply *
http_get (Fixture    *fx,
          const char *path)
{
  return http (fx, "GET", path, NULL, NULL, 0, NULL);
}

static Reply *
http_post_json (Fixture    *fx,
                const char *path,
                const char *json)
{
  return http (fx, "POST", path, "application/json", json, strlen (json), NULL);
}

static JsonNode *
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

static char *
reply_text (Reply *reply)
{
  gsize len = 0;
  const char *data = g_bytes_get_data (reply->body, &len);

  return g_strndup (data, len);
}

/* Asserts @reply has @status and an {"error": …} containing @needle. */
static void
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
static void
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

static void
test_models_and_topology (Fixture       *fx,
                          gconstpointer  data)
{
  g_autoptr(Reply) models = http_get (fx, "/v1/models");
  g_autoptr(Reply) topology = http_get (fx, "/v1/topology");
  g_autofree char *models_text = reply_text (models);
  g_autofree char *topology_text = reply_text (topology);

  g_assert_cmpuint (models->status, ==, 200);
  g_assert_cmpstr (models->content_type, ==, "application/json");
  g_assert_cmpstr (models_text, ==, fx->node->models_json);
  g_assert_cmpuint (topology->status, ==, 200);
  g_assert_cmpstr (topology_text, ==, fx->node->topology_json);
}

static GVariant *
caps_variant (const char *model,
              const char *chip,
              guint64     memory,
              double      fp32,
              double      fp16)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "model", "s", model);
  g_variant_dict_insert (&dict, "chip", "s", chip);
  g_variant_dict_insert (&dict, "memory", "t", memory);
  g_variant_dict_insert (&dict, "flops-fp32", "d", fp32);
  g_variant_dict_insert (&dict, "flops-fp16", "d", fp16);
  return g_variant_dict_end (&dict);
}

/* The node's typed topology, written by the server as the TOPOLOGY of
 * docs/cluster-protocol.md: the members in the documented order, nodes and
 * peer_graph sorted by id (the first of a repeated node kept, edges grouped
 * by their from id in the node's order), flops JSON can hold, the node's
 * view after; the same for users and for peers. */
static void
test_topology_json (Fixture       *fx,
                    gconstpointer  data)
{
  static const char expected[] =
    "{\"nodes\":{"
    "\"a-node\":{\"model\":\"A\",\"chip\":\"x86_64\",\"memory\":1024,"
    "\"flops\":{\"fp32\":3.5,\"fp16\":0.0,\"int8\":0.0}},"
    "\"b-node\":{\"model\":\"B\",\"chip\":\"arm\",\"memory\":4096,"
    "\"flops\":{\"fp32\":1000000000000000.0,\"fp16\":0.0,\"int8\":0.0}}},"
    "\"peer_graph\":{"
    "\"a-node\":[{\"from_id\":\"a-node\",\"to_id\":\"b-node\",\"description\":\"10.0.0.2:1\"}],"
    "\"b-node\":[{\"from_id\":\"b-node\",\"to_id\":\"a-node\",\"description\":\"10.0.0.1:1\"},"
    "{\"from_id\":\"b-node\",\"to_id\":\"c-node\",\"description\":\"10.0.0.3:1\"}]},"
    "\"active_node_id\":\"a-node\",\"node_id\":\"a-node\",\"version\":7,\"model_id\":\"llama\","
    "\"n_layers\":16,"
    "\"partitions\":[{\"node_id\":\"a-node\",\"start\":0.0,\"end\":0.25},"
    "{\"node_id\":\"b-node\",\"start\":0.25,\"end\":1.0}],"
    "\"shards\":[{\"node_id\":\"a-node\",\"model_id\":\"llama\",\"start_layer\":0,\"end_layer\":3,"
    "\"n_layers\":16},"
    "{\"node_id\":\"b-node\",\"model_id\":\"llama\",\"start_layer\":4,\"end_layer\":15,"
    "\"n_layers\":16}]}";
  GVariantBuilder nodes, dict;
  g_autofree char *topology_text = NULL;
  g_autofree char *peer_text = NULL;

  g_variant_builder_init (&nodes, G_VARIANT_TYPE ("a{sa{sv}}"));
  g_variant_builder_add (&nodes, "{s@a{sv}}", "b-node", caps_variant ("B", "arm", 4096, 1e17, NAN));
  g_variant_builder_add (&nodes, "{s@a{sv}}", "a-node", caps_variant ("A", "x86_64", 1024, 3.5, 1e-5));
  g_variant_builder_add (&nodes, "{s@a{sv}}", "a-node", caps_variant ("DUP", "x", 1, 1, 1));
  g_variant_builder_init (&dict, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&dict, "{sv}", "nodes", g_variant_builder_end (&nodes));
  g_variant_builder_add (&dict, "{sv}", "edges",
                         g_variant_new_parsed ("[('b-node', 'a-node', '10.0.0.1:1'),"
                                               " ('a-node', 'b-node', '10.0.0.2:1'),"
                                               " ('b-node', 'c-node', '10.0.0.3:1')]"));
  g_variant_builder_add (&dict, "{sv}", "active-node-id", g_variant_new_string ("a-node"));
  g_variant_builder_add (&dict, "{sv}", "shards",
                         g_variant_new_parsed ("[('a-node', 'llama', uint32 0, uint32 3, uint32 16),"
                                               " ('b-node', 'llama', 4, 15, 16)]"));
  g_variant_builder_add (&dict, "{sv}", "partitions",
                         g_variant_new_parsed ("[('a-node', 0.0, 0.25), ('b-node', 0.25, 1.0)]"));
  g_variant_builder_add (&dict, "{sv}", "n-layers", g_variant_new_uint32 (16));
  g_variant_builder_add (&dict, "{sv}", "model-id", g_variant_new_string ("llama"));
  g_variant_builder_add (&dict, "{sv}", "version", g_variant_new_uint64 (7));
  g_variant_builder_add (&dict, "{sv}", "node-id", g_variant_new_string ("a-node"));
  /* of the wrong type: treated as absent */
  g_variant_builder_add (&dict, "{sv}", "active-node-ids", g_variant_new_int32 (3));
  g_clear_pointer (&fx->node->topology, g_variant_unref);
  fx->node->topology = g_variant_ref_sink (g_variant_builder_end (&dict));

  {
    g_autoptr(Reply) topology = http_get (fx, "/v1/topology");
    g_autoptr(Reply) peer = http_post_json (fx, "/peer/v1/topology", "{\"visited\":[],\"max_depth\":1}");

    topology_text = reply_text (topology);
    peer_text = reply_text (peer);
    g_assert_cmpuint (topology->status, ==, 200);
    g_assert_cmpuint (peer->status, ==, 200);
  }
  g_assert_cmpstr (topology_text, ==, expected);
  g_assert_cmpstr (peer_text, ==, expected);
  g_assert_true (exo_json_validate (expected, strlen (expected), 8, NULL, NULL, NULL));
}

/* A node that lists no models, or gives them of the wrong type: the
 * server answers 501 / 500 with the node's words, and keeps running. */
static void
test_models_refused (Fixture       *fx,
                     gconstpointer  data)
{
  g_clear_pointer (&fx->node->models, g_variant_unref);
  fx->node->models = g_variant_ref_sink (g_variant_new_parsed ("['dummy']"));
  {
    g_autoptr(Reply) models = http_get (fx, "/v1/models");

    assert_error_reply (models, 500, "not 'aa{sv}'");
  }
  {
    g_autoptr(Reply) health = http_get (fx, "/healthcheck");

    g_assert_cmpuint (health->status, ==, 200);
  }
}

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

static const char *valid_shard = "{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":7,\"n_layers\":16}";

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
      }
    g_assert_cmpuint (fx->node->n_prompts, ==, 4);
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

static gboolean
have_curl (void)
{
  g_autofree char *path = g_find_program_in_path ("curl");

  return path != NULL;
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

/* --- chat completions ------------------------------------------------------ */

static const char *chat_body =
  "{\"model\":\"dummy\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
  "{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.7}";

static void
test_chat (Fixture       *fx,
           gconstpointer  data)
{
  g_autoptr(Reply) reply = http_post_json (fx, "/v1/chat/completions", chat_body);
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object, *choice, *message, *usage;

  g_assert_cmpuint (reply->status, ==, 200);
  g_assert_cmpstr (reply->content_type, ==, "application/json");
  g_assert_cmpstr (fx->node->last_prompt, ==, "system: be brief\nuser: hi\n");
  g_assert_cmpstr (fx->node->last_model, ==, "dummy");
  /* the OpenAI parameters reach the node; the defaults where absent */
  assert_params (fx->node->last_params, 0, 0.7, 1, FALSE, 0);

  root = reply_json (reply);
  object = json_node_get_object (root);
  g_assert_cmpstr (json_object_get_string_member (object, "object"), ==, "chat.completion");
  g_assert_cmpstr (json_object_get_string_member (object, "model"), ==, "dummy");
  g_assert_true (g_str_has_prefix (json_object_get_string_member (object, "id"), "chatcmpl-"));
  g_assert_cmpint (json_object_get_int_member (object, "created"), >, 1600000000);
  choice = json_array_get_object_element (json_object_get_array_member (object, "choices"), 0);
  g_assert_cmpint (json_object_get_int_member (choice, "index"), ==, 0);
  g_assert_cmpstr (json_object_get_string_member (choice, "finish_reason"), ==, "stop");
  message = json_object_get_object_member (choice, "message");
  g_assert_cmpstr (json_object_get_string_member (message, "role"), ==, "assistant");
  g_assert_cmpstr (json_object_get_string_member (message, "content"), ==, "tok0 tok1 tok2 tok3 tok4 ");
  usage = json_object_get_object_member (object, "usage");
  g_assert_cmpint (json_object_get_int_member (usage, "completion_tokens"), ==, 5);
  g_assert_cmpint (json_object_get_int_member (usage, "total_tokens"), ==, 5);

  /* without "model": the node's first model; content as text parts */
  {
    g_autoptr(Reply) r2 = http_post_json (fx, "/v1/chat/completions",
                                          "{\"messages\":[{\"role\":\"user\",\"content\":"
                                          "[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}],"
                                          "\"stream\":false}");
    g_autoptr(JsonNode) r2_root = reply_json (r2);

    g_assert_cmpuint (r2->status, ==, 200);
    g_assert_cmpstr (json_object_get_string_member (json_node_get_object (r2_root), "model"), ==, "dummy");
    g_assert_cmpstr (fx->node->last_prompt, ==, "user: ab\n");
    assert_params (fx->node->last_params, 0, 0, 1, FALSE, 0);
  }

  /* finish_reason and usage are the node's (its ExoChatResult) */
  fx->node->chat_finish_reason = "length";
  fx->node->chat_prompt_tokens = 7;
  {
    g_autoptr(Reply) r3 = http_post_json (fx, "/v1/chat/completions", chat_body);
    g_autoptr(JsonNode) r3_root = reply_json (r3);
    JsonObject *r3_object = json_node_get_object (r3_root);
    JsonObject *r3_usage = json_object_get_object_member (r3_object, "usage");
    JsonObject *r3_choice = json_array_get_object_element (json_object_get_array_member (r3_object,
                                                                                         "choices"), 0);

    g_assert_cmpuint (r3->status, ==, 200);
    g_assert_cmpstr (json_object_get_string_member (r3_choice, "finish_reason"), ==, "length");
    g_assert_cmpint (json_object_get_int_member (r3_usage, "prompt_tokens"), ==, 7);
    g_assert_cmpint (json_object_get_int_member (r3_usage, "completion_tokens"), ==, 5);
    g_assert_cmpint (json_object_get_int_member (r3_usage, "total_tokens"), ==, 12);
  }

  /* every parameter the node acts on; max_completion_tokens wins over
   * max_tokens; top_p 0 (only the most likely token) is greedy sampling;
   * null is absent */
  {
    static const struct {
      const char *params;
      guint max_tokens;
      double temperature, top_p;
      gboolean has_seed;
      gint64 seed;
    } cases[] = {
      { "\"max_tokens\":3,\"temperature\":1.5,\"top_p\":0.25,\"seed\":-7", 3, 1.5, 0.25, TRUE, -7 },
      { "\"max_tokens\":9,\"max_completion_tokens\":4", 4, 0, 1, FALSE, 0 },
      { "\"max_completion_tokens\":1048576,\"seed\":9223372036854775807", 1048576, 0, 1, TRUE, G_MAXINT64 },
      { "\"temperature\":0.9,\"top_p\":0", 0, 0, 1, FALSE, 0 },
      { "\"temperature\":null,\"top_p\":null,\"max_tokens\":null,\"seed\":null", 0, 0, 1, FALSE, 0 },
      { "\"seed\":0", 0, 0, 1, TRUE, 0 },
    };

    for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        g_autofree char *body = g_strdup_printf ("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],%s}",
                                                 cases[i].params);
        g_autoptr(Reply) r = http_post_json (fx, "/v1/chat/completions", body);

        g_assert_cmpuint (r->status, ==, 200);
        assert_params (fx->node->last_params, cases[i].max_tokens, cases[i].temperature,
                       cases[i].top_p, cases[i].has_seed, cases[i].seed);
      }
  }

  /* the node fails: 502 for a lost next hop, with its message */
  fx->node->chat_fail_after = 2;
  {
    g_autoptr(Reply) r3 = http_post_json (fx, "/v1/chat/completions", chat_body);
    assert_error_reply (r3, 502, "next hop lost");
  }
}

static void
test_chat_bad (Fixture       *fx,
               gconstpointer  data)
{
  static const struct { const char *body; const char *needle; } bad[] = {
    { "{\"messages\":", "malformed JSON" },
    { "not json at all", "malformed JSON" },
    { "[]", "JSON object" },
    { "{}", "missing field 'messages'" },
    { "{\"model\":\"dummy\"}", "missing field 'messages'" },
    { "{\"messages\":{}}", "'messages' must be an array" },
    { "{\"messages\":[]}", "'messages' is empty" },
    { "{\"messages\":[\"hi\"]}", "messages[0] must be an object" },
    { "{\"messages\":[{\"content\":\"hi\"}]}", "messages[0]: missing field 'role'" },
    { "{\"messages\":[{\"role\":1,\"content\":\"hi\"}]}", "'role' must be a string" },
    { "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content" },
    { "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\"}]}]}", "messages[0].content[0]" },
    { "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":\"yes\"}", "'stream' must be a boolean" },
    { "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":1}", "'stream' must be a boolean" },
    { "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":42}", "'model' must be a string" },
    { "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":\"\"}", "'model'" },
    { "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":\"hot\"}", "'temperature' must be a number" },
    { "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":[1]}", "'temperature' must be a number" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(Reply) reply = http_post_json (fx, "/v1/chat/completions", bad[i].body);
      assert_error_reply (reply, 400, bad[i].needle);
    }
  /* NUL bytes, invalid UTF-8, deep nesting (json-glib would recurse off the stack) */
  {
    static const char nul[] = "{\"messages\":[]}\0{}";
    g_autoptr(Reply) reply = http (fx, "POST", "/v1/chat/completions", "application/json",
                                   nul, sizeof nul - 1, NULL);
    assert_error_reply (reply, 400, "NUL");
  }
  {
    static const char latin1[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"caf\xe9\"}]}";
    g_autoptr(Reply) reply = http_post_json (fx, "/v1/chat/completions", latin1);
    assert_error_reply (reply, 400, "UTF-8");
  }
  {
    g_autofree char *deep = g_malloc (200001);
    g_autoptr(Reply) reply = NULL;

    memset (deep, '[', 100000);
    memset (deep + 100000, ']', 100000);
    deep[200000] = '\0';
    g_object_set (fx->server, "max-json-bytes", (guint64) 1000000, NULL);
    reply = http_post_json (fx, "/v1/chat/completions", deep);
    assert_error_reply (reply, 400, "nested deeper");
  }
  g_assert_cmpuint (fx->node->n_chats, ==, 0);
}

/* Runs curl -sN and collects the lines of its output with their arrival time. */
typedef struct
{
  GSubprocess      *process;
  GDataInputStream *out;
  GPtrArray        *lines;
  GArray           *times;     /* gint64, µs */
  gboolean          eof;
} Curl;

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

static gboolean
curl_done (gpointer data)
{
  return ((Curl *) data)->eof;
}

static Curl *
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

static void
curl_free (Curl *curl)
{
  g_subprocess_wait (curl->process, NULL, NULL);
  g_object_unref (curl->out);
  g_object_unref (curl->process);
  g_ptr_array_unref (curl->lines);
  g_array_unref (curl->times);
  g_free (curl);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Curl, curl_free)

static void
test_chat_stream (Fixture       *fx,
                  gconstpointer  data)
{
  g_autoptr(Curl) curl = NULL;
  g_autofree char *body = NULL;
  GPtrArray *events;
  guint n_tokens = 10;
  gint64 first_token_at = 0, last_token_at = 0;

  if (!have_curl ())
    {
      g_test_skip ("curl is not installed");
      return;
    }
  fx->node->chat_tokens = n_tokens;
  fx->node->token_interval_ms = 30;
  body = g_strdup_printf ("{\"model\":\"dummy\",\"stream\":true,\"messages\":"
                          "[{\"role\":\"user\",\"content\":\"count\"}]}");
  curl = curl_start (fx, "/v1/chat/completions", body);
  g_assert_true (exo_test_spin_until (curl_done, curl, WAIT_MS));

  /* SSE: "data: …" lines separated by blank lines */
  events = g_ptr_array_new ();
  for (guint i = 0; i < curl->lines->len; i++)
    {
      const char *line = g_ptr_array_index (curl->lines, i);

      if (line[0] == '\0')
        continue;
      g_assert_true (g_str_has_prefix (line, "data: "));
      g_assert_true (i + 1 < curl->lines->len);
      g_assert_cmpstr (g_ptr_array_index (curl->lines, i + 1), ==, "");
      g_ptr_array_add (events, (gpointer) (line + 6));
      if (events->len == 1)
        first_token_at = g_array_index (curl->times, gint64, i);
      if (events->len == n_tokens)
        last_token_at = g_array_index (curl->times, gint64, i);
    }
  g_assert_cmpuint (events->len, ==, n_tokens + 2);

  for (guint i = 0; i < n_tokens + 1; i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GError) error = NULL;
      JsonObject *object, *choice, *delta;
      g_autofree char *expected = g_strdup_printf ("tok%u ", i);

      json_parser_load_from_data (parser, g_ptr_array_index (events, i), -1, &error);
      g_assert_no_error (error);
      object = json_node_get_object (json_parser_get_root (parser));
      g_assert_cmpstr (json_object_get_string_member (object, "object"), ==, "chat.completion.chunk");
      g_assert_cmpstr (json_object_get_string_member (object, "model"), ==, "dummy");
      choice = json_array_get_object_element (json_object_get_array_member (object, "choices"), 0);
      delta = json_object_get_object_member (choice, "delta");
      if (i == 0)
        g_assert_cmpstr (json_object_get_string_member (delta, "role"), ==, "assistant");
      else
        g_assert_false (json_object_has_member (delta, "role"));
      if (i < n_tokens)
        {
          g_assert_cmpstr (json_object_get_string_member (delta, "content"), ==, expected);
          g_assert_true (json_object_get_null_member (choice, "finish_reason"));
        }
      else
        {
          g_assert_false (json_object_has_member (delta, "content"));
          g_assert_cmpstr (json_object_get_string_member (choice, "finish_reason"), ==, "stop");
          g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (object, "usage"),
                                                       "completion_tokens"), ==, n_tokens);
        }
    }
  g_assert_cmpstr (g_ptr_array_index (events, n_tokens + 1), ==, "[DONE]");
  /* streamed as generated, not buffered: 10 tokens 30 ms apart */
  g_assert_cmpint (last_token_at - first_token_at, >=, 150 * 1000);
  g_ptr_array_unref (events);

  {
    g_autoptr(GVariant) metrics = exo_resource_get_metrics (fx->server);
    guint64 streams = 0;
    g_assert_true (g_variant_lookup (metrics, "streams", "t", &streams));
    g_assert_cmpuint (streams, ==, 1);
  }
}

static void
test_chat_stream_error (Fixture       *fx,
                        gconstpointer  data)
{
  g_autoptr(Curl) curl = NULL;
  const char *last = NULL, *event_line = NULL;

  if (!have_curl ())
    {
      g_test_skip ("curl is not installed");
      return;
    }
  fx->node->chat_fail_after = 2;
  curl = curl_start (fx, "/v1/chat/completions",
                     "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
  g_assert_true (exo_test_spin_until (curl_done, curl, WAIT_MS));

  for (guint i = 0; i < curl->lines->len; i++)
    {
      const char *line = g_ptr_array_index (curl->lines, i);
      if (g_str_equal (line, "event: error"))
        event_line = line;
      if (line[0] != '\0')
        last = line;
    }
  g_assert_nonnull (event_line);
  g_assert_nonnull (last);
  g_assert_true (g_str_has_prefix (last, "data: {\"error\":{\"message\":"));
  g_assert_nonnull (strstr (last, "next hop lost"));
  g_assert_nonnull (strstr (last, "\"type\":\"server_error\",\"param\":null,\"code\":\"bad_gateway\"}}"));
  /* two tokens went out before it */
  g_assert_nonnull (strstr (g_ptr_array_index (curl->lines, 0), "tok0 "));
}

static gboolean
chat_was_cancelled (gpointer data)
{
  return ((TestNode *) data)->n_chats_cancelled == 1;
}

static void
test_chat_timeout (Fixture       *fx,
                   gconstpointer  data)
{
  gint64 start;

  fx->node->chat_hang = TRUE;
  g_object_set (fx->server, "request-timeout-ms", 200, NULL);
  start = g_get_monotonic_time ();
  {
    g_autoptr(Reply) reply = http_post_json (fx, "/v1/chat/completions", chat_body);
    assert_error_reply (reply, 504, "no progress within 200 ms");
  }
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC * exo_test_slow_factor ());
  /* the node's work was cancelled */
  g_assert_true (exo_test_spin_until (chat_was_cancelled, fx->node, WAIT_MS));
}

static guint64 metric_u64 (ExoResource *resource, const char *name);

/* A client that leaves in the middle of a stream cancels the generation. */
static void
test_chat_client_leaves (Fixture       *fx,
                         gconstpointer  data)
{
  g_autofree char *uri = g_strdup_printf ("http://%s/v1/chat/completions", fx->address);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", uri);
  static const char json[] = "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
  g_autoptr(GBytes) body = g_bytes_new_static (json, sizeof json - 1);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(GError) error = NULL;
  char buf[64];

  fx->node->chat_tokens = 100000;
  fx->node->token_interval_ms = 5;
  soup_message_set_request_body_from_bytes (msg, "application/json", body);
  soup_session_send_async (fx->session, msg, G_PRIORITY_DEFAULT, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  stream = soup_session_send_finish (fx->session, result, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  g_clear_object (&result);
  g_input_stream_read_async (stream, buf, sizeof buf, G_PRIORITY_DEFAULT, NULL,
                             exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_assert_cmpint (g_input_stream_read_finish (stream, result, &error), >, 0);

  /* hang up */
  g_input_stream_close (stream, NULL, NULL);
  soup_session_abort (fx->session);
  g_assert_true (exo_test_spin_until (chat_was_cancelled, fx->node, WAIT_MS));
  g_assert_cmpuint (fx->node->n_chats_done, ==, 0);

  /* and before its first token (no status sent yet): cancelled too; neither
   * counts as an error of the server */
  fx->node->chat_hang = TRUE;
  g_clear_object (&result);
  {
    g_autoptr(SoupMessage) early = soup_message_new ("POST", uri);
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    soup_message_set_request_body_from_bytes (early, "application/json", body);
    soup_session_send_async (fx->session, early, G_PRIORITY_DEFAULT, cancellable,
                             exo_test_store_result, &result);
    exo_test_spin (200);
    g_assert_cmpuint (fx->node->n_chats, ==, 2);
    g_cancellable_cancel (cancellable);
    soup_session_abort (fx->session);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  }
  fx->node->n_chats_cancelled = 0;
  g_assert_true (exo_test_spin_until (chat_was_cancelled, fx->node, WAIT_MS));
  exo_test_spin (50);
  g_assert_cmpuint (metric_u64 (fx->server, "server-errors"), ==, 0);
  g_assert_cmpuint (metric_u64 (fx->server, "client-errors"), ==, 0);
}

/* --- OpenAI's shapes -------------------------------------------------------- */

/* Asserts @reply is @status with OpenAI's error object {"message" holding
 * @needle (nullable), "type", "param", "code"} (@param, @code nullable:
 * null). */
static void
assert_openai_error (Reply      *reply,
                     guint       status,
                     const char *type,
                     const char *param,
                     const char *code,
                     const char *needle)
{
  g_autoptr(JsonNode) root = NULL;
  JsonObject *e;

  assert_error_reply (reply, status, needle);
  root = reply_json (reply);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_object_get_member (json_node_get_object (root), "error")));
  e = json_object_get_object_member (json_node_get_object (root), "error");
  g_assert_cmpuint (json_object_get_size (e), ==, 4);
  g_assert_cmpstr (json_object_get_string_member (e, "type"), ==, type);
  if (param != NULL)
    g_assert_cmpstr (json_object_get_string_member (e, "param"), ==, param);
  else
    g_assert_true (json_object_get_null_member (e, "param"));
  if (code != NULL)
    g_assert_cmpstr (json_object_get_string_member (e, "code"), ==, code);
  else
    g_assert_true (json_object_get_null_member (e, "code"));
}

/* Asserts @reply is the peer API's {"error": text} with @status. */
static void
assert_peer_error (Reply *reply,
                   guint  status)
{
  g_autoptr(JsonNode) root = NULL;

  assert_error_reply (reply, status, NULL);
  root = reply_json (reply);
  g_assert_true (JSON_NODE_HOLDS_VALUE (json_object_get_member (json_node_get_object (root), "error")));
}

#define MSG(extra) "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" extra "}"

/* Every error of the user API has OpenAI's shape, with the field at fault
 * as "param" and a stable "code"; the peer API keeps {"error": text}. */
static void
test_openai_errors (Fixture       *fx,
                    gconstpointer  data)
{
  static const struct { const char *path, *body, *param, *needle; } bad[] = {
    { "/v1/chat/completions", "{\"messages\":", NULL, "malformed JSON" },
    { "/v1/chat/completions", "[]", NULL, "JSON object" },
    { "/v1/chat/completions", "{}", "messages", "missing field 'messages'" },
    { "/v1/chat/completions", MSG (",\"temperature\":3"), "temperature", "out of range" },
    { "/v1/chat/completions", MSG (",\"top_p\":\"x\""), "top_p", "must be a number" },
    { "/v1/chat/completions", MSG (",\"max_tokens\":0"), "max_tokens", "out of range" },
    { "/v1/chat/completions", MSG (",\"n\":2"), "n", "must be 1" },
    { "/v1/chat/completions", MSG (",\"seed\":1.5"), "seed", "integer" },
    { "/v1/chat/completions", MSG (",\"model\":7"), "model", "string" },
    { "/v1/chat/completions", MSG (",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]"), "stop", "more than 4" },
    { "/v1/chat/completions", MSG (",\"stop\":[1]"), "stop", "not a string" },
    { "/v1/chat/completions", MSG (",\"stream_options\":{\"include_usage\":true}"), "stream_options",
      "only allowed when 'stream' is true" },
    { "/v1/chat/completions", MSG (",\"stream\":true,\"stream_options\":{\"include_usage\":1}"),
      "stream_options", "boolean" },
    { "/v1/chat/completions", MSG (",\"logprobs\":true"), "logprobs", "not supported" },
    { "/v1/completions", "{\"prompt\":[1,2,3]}", "prompt", "token ids" },
    { "/v1/completions", "{\"prompt\":[[1],[2]]}", "prompt", "token ids" },
    { "/v1/completions", "{\"prompt\":[\"a\",\"b\"]}", "prompt", "several prompts" },
    { "/v1/completions", "{\"prompt\":[]}", "prompt", "one string" },
    { "/v1/completions", "{\"prompt\":5}", "prompt", "must be a string" },
    { "/v1/completions", "{\"prompt\":\"x\",\"echo\":true}", "echo", "not supported" },
    { "/v1/completions", "{\"prompt\":\"x\",\"best_of\":2}", "best_of", "not supported" },
    { "/v1/completions", "{\"prompt\":\"x\",\"logprobs\":2}", "logprobs", "not supported" },
    { "/v1/completions", "{\"prompt\":\"x\",\"suffix\":\"y\"}", "suffix", "not supported" },
    { "/v1/completions", "{\"prompt\":\"x\",\"n\":3}", "n", "must be 1" },
  };
  g_autofree char *long_stop = g_strnfill (EXO_GENERATION_MAX_STOP_LEN + 1, 'x');
  g_autofree char *long_body = g_strdup_printf (MSG (",\"stop\":\"%s\""), long_stop);

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(Reply) reply = http_post_json (fx, bad[i].path, bad[i].body);
      assert_openai_error (reply, 400, "invalid_request_error", bad[i].param, NULL, bad[i].needle);
    }
  {
    g_autoptr(Reply) reply = http_post_json (fx, "/v1/chat/completions", long_body);
    assert_openai_error (reply, 400, "invalid_request_error", "stop", NULL, "longer than 256 bytes");
  }
  g_assert_cmpuint (fx->node->n_chats, ==, 0);

  /* a model the node does not list: 404 before the node generates */
  {
    g_autoptr(Reply) chat = http_post_json (fx, "/v1/chat/completions", MSG (",\"model\":\"gpt-4\""));
    g_autoptr(Reply) text = http_post_json (fx, "/v1/completions", "{\"model\":\"gpt-4\",\"prompt\":\"\"}");
    g_autoptr(Reply) model = http_get (fx, "/v1/models/gpt-4");

    assert_openai_error (chat, 404, "invalid_request_error", "model", "model_not_found", "gpt-4");
    assert_openai_error (text, 404, "invalid_request_error", "model", "model_not_found", "gpt-4");
    assert_openai_error (model, 404, "invalid_request_error", "model", "model_not_found", "gpt-4");
    g_assert_cmpuint (fx->node->n_chats, ==, 0);
  }
  /* the router's and the limits' answers */
  {
    g_autoptr(Reply) missing = http_get (fx, "/v1/nothing");
    g_autoptr(Reply) method = http_get (fx, "/v1/completions");
    g_autoptr(Reply) peer_missing = http_get (fx, "/peer/v1/nothing");
    g_autoptr(Reply) peer_method = http_get (fx, "/peer/v1/prompt");
    g_autoptr(Reply) peer_bad = http_post_json (fx, "/peer/v1/cancel", "{}");
    g_autoptr(Reply) big = NULL;
    g_autoptr(Reply) peer_big = NULL;
    g_autofree char *body = g_strnfill (5000, ' ');

    assert_openai_error (missing, 404, "invalid_request_error", NULL, "unknown_url", "/v1/nothing");
    assert_openai_error (method, 405, "invalid_request_error", NULL, "method_not_allowed", "POST");
    assert_peer_error (peer_missing, 404);
    assert_peer_error (peer_method, 405);
    assert_peer_error (peer_bad, 400);
    g_object_set (fx->server, "max-json-bytes", (guint64) 4096, NULL);
    big = http_post_json (fx, "/v1/chat/completions", body);
    peer_big = http_post_json (fx, "/peer/v1/cancel", body);
    assert_openai_error (big, 413, "invalid_request_error", NULL, "request_too_large", "max-json-bytes");
    assert_peer_error (peer_big, 413);
  }
  /* the node's failures: 5xx, type server_error */
  {
    static const struct { GIOErrorEnum code; guint status; const char *api_code; } fails[] = {
      { G_IO_ERROR_HOST_UNREACHABLE, 502, "bad_gateway" },
      { G_IO_ERROR_TIMED_OUT, 504, "timeout" },
      { G_IO_ERROR_NOT_SUPPORTED, 501, "not_implemented" },
      { G_IO_ERROR_FAILED, 500, "server_error" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS (fails); i++)
      {
        g_autoptr(Reply) reply = NULL;

        g_clear_error (&fx->node->chat_refuse);
        fx->node->chat_refuse = g_error_new (G_IO_ERROR, fails[i].code, "it failed (%u)", fails[i].status);
        reply = http_post_json (fx, "/v1/chat/completions", MSG (""));
        assert_openai_error (reply, fails[i].status, "server_error", NULL, fails[i].api_code, "it failed");
      }
  }
}

/* Runs curl -si on @path with @body (POST): the status, the head and the
 * body. */
static guint
curl_status (Fixture     *fx,
             const char  *path,
             const char  *body,
             char       **head,
             char       **rest)
{
  g_autofree char *url = g_strdup_printf ("http://%s%s", fx->address, path);
  g_autoptr(GSubprocess) curl = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) out = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  char *split;
  guint status = 0;

  curl = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, "curl", "-si", "--max-time", "20",
                           "-H", "Content-Type: application/json", "-d", body, url, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_async (curl, NULL, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, WAIT_MS));
  g_subprocess_communicate_finish (curl, result, &out, NULL, &error);
  g_assert_no_error (error);
  text = g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
  sscanf (text, "HTTP/1.1 %u", &status);
  split = strstr (text, "\r\n\r\n");
  g_assert_nonnull (split);
  *split = '\0';
  *head = g_strdup (text);
  *rest = g_strdup (split + 4);
  return status;
}

/* A streamed request the node refuses before its first token gets that
 * status as a whole answer: 429 with Retry-After when an engine is at
 * max-sessions, not a 200 stream with an error event. */
static void
test_stream_refused (Fixture       *fx,
                     gconstpointer  data)
{
  static const char body[] = "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
  g_autofree char *head = NULL, *rest = NULL;
  g_autoptr(GVariant) metrics = NULL;
  guint64 streams = 1;

  if (!have_curl ())
    {
      g_test_skip ("curl is not installed");
      return;
    }
  fx->node->chat_refuse = g_error_new (G_IO_ERROR, G_IO_ERROR_BUSY,
                                       "engine 'engine' already holds max-sessions (8) requests; retry later");
  g_assert_cmpuint (curl_status (fx, "/v1/chat/completions", body, &head, &rest), ==, 429);
  g_assert_nonnull (strstr (head, "\r\nRetry-After: 1"));
  g_assert_nonnull (strstr (head, "\r\nContent-Type: application/json"));
  g_assert_null (strstr (head, "text/event-stream"));
  g_assert_cmpstr (rest, ==, "{\"error\":{\"message\":\"engine 'engine' already holds max-sessions (8) "
                             "requests; retry later\",\"type\":\"rate_limit_error\",\"param\":null,"
                             "\"code\":\"rate_limit_exceeded\"}}");
  g_clear_pointer (&head, g_free);
  g_clear_pointer (&rest, g_free);
  /* the same for a completion, and not busy: 502 as a whole answer */
  g_clear_error (&fx->node->chat_refuse);
  fx->node->chat_refuse = g_error_new (G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE, "node-2 is unreachable");
  g_assert_cmpuint (curl_status (fx, "/v1/completions", "{\"stream\":true,\"prompt\":\"\"}", &head,
                                 &rest), ==, 502);
  g_assert_null (strstr (head, "Retry-After"));
  g_assert_true (g_str_has_prefix (rest, "{\"error\":{\"message\":\"node-2 is unreachable\""));
  metrics = exo_resource_get_metrics (fx->server);
  g_assert_true (g_variant_lookup (metrics, "streams", "t", &streams));
  g_assert_cmpuint (streams, ==, 0);
}

/* The SSE events of a finished curl: the JSON of each "data: {…}" line
 * (parsed), and whether "data: [DONE]" came last. */
static GPtrArray *
curl_events (Curl     *curl,
             gboolean *done)
{
  GPtrArray *events = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);

  *done = FALSE;
  for (guint i = 0; i < curl->lines->len; i++)
    {
      const char *line = g_ptr_array_index (curl->lines, i);
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GError) error = NULL;

      if (line[0] == '\0')
        continue;
      g_assert_false (*done);
      if (g_str_equal (line, "data: [DONE]"))
        {
          *done = TRUE;
          continue;
        }
      g_assert_true (g_str_has_prefix (line, "data: {"));
      json_parser_load_from_data (parser, line + 6, -1, &error);
      g_assert_no_error (error);
      g_ptr_array_add (events, json_node_ref (json_parser_get_root (parser)));
    }
  return events;
}

/* POST /v1/completions: the prompt goes to the node as given (no chat
 * template); OpenAI's "text_completion", whole and streamed; the same
 * parameters as a chat, stop strings included. */
static void
test_completions (Fixture       *fx,
                  gconstpointer  data)
{
  g_autoptr(Reply) reply = http_post_json (fx, "/v1/completions",
                                           "{\"model\":\"dummy\",\"prompt\":\"Once upon\",\"max_tokens\":3,"
                                           "\"temperature\":0.5,\"seed\":4,\"stop\":[\"\\n\",\"The End\"]}");
  g_autoptr(JsonNode) root = reply_json (reply);
  JsonObject *object = json_node_get_object (root), *choice, *usage;

  g_assert_cmpuint (reply->status, ==, 200);
  g_assert_cmpstr (fx->node->last_prompt, ==, "Once upon");
  assert_params (fx->node->last_params, 3, 0.5, 1, TRUE, 4);
  g_assert_nonnull (fx->node->last_params->stop);
  g_assert_cmpstr (fx->node->last_params->stop[0], ==, "\n");
  g_assert_cmpstr (fx->node->last_params->stop[1], ==, "The End");
  g_assert_null (fx->node->last_params->stop[2]);
  g_assert_true (g_str_has_prefix (json_object_get_string_member (object, "id"), "cmpl-"));
  g_assert_cmpstr (json_object_get_string_member (object, "object"), ==, "text_completion");
  g_assert_cmpstr (json_object_get_string_member (object, "model"), ==, "dummy");
  g_assert_cmpint (json_object_get_int_member (object, "created"), >, 1600000000);
  choice = json_array_get_object_element (json_object_get_array_member (object, "choices"), 0);
  g_assert_cmpuint (json_object_get_size (choice), ==, 4);
  g_assert_cmpstr (json_object_get_string_member (choice, "text"), ==, "tok0 tok1 tok2 tok3 tok4 ");
  g_assert_cmpint (json_object_get_int_member (choice, "index"), ==, 0);
  g_assert_true (json_object_get_null_member (choice, "logprobs"));
  g_assert_cmpstr (json_object_get_string_member (choice, "finish_reason"), ==, "stop");
  usage = json_object_get_object_member (object, "usage");
  g_assert_cmpint (json_object_get_int_member (usage, "completion_tokens"), ==, 5);

  /* no prompt, null, "" and [""] are all the empty prompt; a stop "" is none */
  {
    const char *empty[] = { "{}", "{\"prompt\":null}", "{\"prompt\":\"\"}", "{\"prompt\":[\"\"],\"stop\":\"\"}" };

    for (gsize i = 0; i < G_N_ELEMENTS (empty); i++)
      {
        g_autoptr(Reply) r = http_post_json (fx, "/v1/completions", empty[i]);

        g_assert_cmpuint (r->status, ==, 200);
        g_assert_cmpstr (fx->node->last_prompt, ==, "");
        g_assert_null (fx->node->last_params->stop);
      }
  }

  /* streamed, with the usage as OpenAI sends it: every chunk "usage":
   * null, then one with no choices and the usage */
  if (have_curl ())
    {
      g_autoptr(Curl) curl = curl_start (fx, "/v1/completions",
                                         "{\"prompt\":\"x\",\"stream\":true,"
                                         "\"stream_options\":{\"include_usage\":true}}");
      g_autoptr(GPtrArray) events = NULL;
      g_autoptr(GString) text = g_string_new (NULL);
      gboolean done;

      fx->node->chat_prompt_tokens = 2;
      g_assert_true (exo_test_spin_until (curl_done, curl, WAIT_MS));
      events = curl_events (curl, &done);
      g_assert_true (done);
      g_assert_cmpuint (events->len, ==, 5 + 2);
      for (guint i = 0; i < events->len; i++)
        {
          JsonObject *e = json_node_get_object (g_ptr_array_index (events, i));
          JsonArray *choices = json_object_get_array_member (e, "choices");

          g_assert_cmpstr (json_object_get_string_member (e, "object"), ==, "text_completion");
          g_assert_true (g_str_has_prefix (json_object_get_string_member (e, "id"), "cmpl-"));
          if (i == events->len - 1)
            {
              g_assert_cmpuint (json_array_get_length (choices), ==, 0);
              usage = json_object_get_object_member (e, "usage");
              g_assert_cmpint (json_object_get_int_member (usage, "prompt_tokens"), ==, 2);
              g_assert_cmpint (json_object_get_int_member (usage, "completion_tokens"), ==, 5);
              g_assert_cmpint (json_object_get_int_member (usage, "total_tokens"), ==, 7);
              continue;
            }
          g_assert_true (json_object_get_null_member (e, "usage"));
          choice = json_array_get_object_element (choices, 0);
          g_assert_true (json_object_get_null_member (choice, "logprobs"));
          g_string_append (text, json_object_get_string_member (choice, "text"));
          if (i < 5)
            g_assert_true (json_object_get_null_member (choice, "finish_reason"));
          else
            g_assert_cmpstr (json_object_get_string_member (choice, "finish_reason"), ==, "stop");
        }
      g_assert_cmpstr (text->str, ==, "tok0 tok1 tok2 tok3 tok4 ");
    }
}

/* A chat streamed with stream_options.include_usage; the stop strings
 * reach the node; GET /v1/models/{id}. */
static void
test_chat_usage_and_models (Fixture       *fx,
                            gconstpointer  data)
{
  {
    g_autoptr(Reply) reply = http_post_json (fx, "/v1/chat/completions", MSG (",\"stop\":\"END\""));

    g_assert_cmpuint (reply->status, ==, 200);
    g_assert_cmpstr (fx->node->last_params->stop[0], ==, "END");
    g_assert_null (fx->node->last_params->stop[1]);
  }
  if (have_curl ())
    {
      g_autoptr(Curl) curl = curl_start (fx, "/v1/chat/completions",
                                         MSG (",\"stream\":true,\"stream_options\":{\"include_usage\":true}"));
      g_autoptr(GPtrArray) events = NULL;
      JsonObject *last, *finish;
      gboolean done;

      g_assert_true (exo_test_spin_until (curl_done, curl, WAIT_MS));
      events = curl_events (curl, &done);
      g_assert_true (done);
      g_assert_cmpuint (events->len, ==, 5 + 2);
      for (guint i = 0; i + 1 < events->len; i++)
        g_assert_true (json_object_get_null_member (json_node_get_object (g_ptr_array_index (events, i)),
                                                    "usage"));
      finish = json_node_get_object (g_ptr_array_index (events, 5));
      g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (
                         json_object_get_array_member (finish, "choices"), 0), "finish_reason"), ==, "stop");
      last = json_node_get_object (g_ptr_array_index (events, 6));
      g_assert_cmpstr (json_object_get_string_member (last, "object"), ==, "chat.completion.chunk");
      g_assert_cmpuint (json_array_get_length (json_object_get_array_member (last, "choices")), ==, 0);
      g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (last, "usage"),
                                                   "completion_tokens"), ==, 5);
    }
  /* a model of the list, by id (percent-encoded too), with its "created" */
  g_clear_pointer (&fx->node->models, g_variant_unref);
  fx->node->models = g_variant_ref_sink (g_variant_new_parsed (
    "[{'id': <'dummy'>, 'created': <int64 1700000000>, 'owned-by': <'exo'>},"
    " {'id': <'org/m 2'>}]"));
  {
    g_autoptr(Reply) one = http_get (fx, "/v1/models/dummy");
    g_autoptr(Reply) two = http_get (fx, "/v1/models/org/m%202");
    g_autoptr(Reply) none = http_get (fx, "/v1/models/");
    g_autofree char *one_text = reply_text (one);
    g_autofree char *two_text = reply_text (two);

    g_assert_cmpuint (one->status, ==, 200);
    g_assert_cmpstr (one_text, ==, "{\"id\":\"dummy\",\"object\":\"model\",\"created\":1700000000,"
                                   "\"owned_by\":\"exo\"}");
    g_assert_cmpuint (two->status, ==, 200);
    g_assert_cmpstr (two_text, ==, "{\"id\":\"org/m 2\",\"object\":\"model\"}");
    assert_openai_error (none, 404, "invalid_request_error", NULL, "unknown_url", NULL);
  }
}

#undef MSG

static ExoResource *peer_new (Fixture *fx, const char *id, const char *peer_id);

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

/* --- ExoHttpPeer ----------------------------------------------------------- */

static ExoResource *
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

static guint64
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

  g_assert_cmpuint (metric_u64 (peer, "calls"), ==, 6);
  g_assert_cmpuint (metric_u64 (peer, "call-failures"), ==, 0);
  g_assert_cmpuint (metric_u64 (peer, "rtt-samples"), ==, 7);   /* + the connect probe */

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

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  load_plugin ();
  test_key = exo_cluster_key_new_random ();
  exo_cluster_key_set_default (test_key);
  refusals = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (capture_writer, NULL, NULL);
  if (g_getenv ("G_MESSAGES_DEBUG") == NULL)
    {
      g_log_set_handler ("GLib-GIO", G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO, discard_log, NULL);
      g_log_set_handler ("libsoup", G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO, discard_log, NULL);
    }

#define ADD(path, func) \
  g_test_add ("/http/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

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
  ADD ("rpc/health-status", test_peer_health_status);
  ADD ("rpc/prompt", test_peer_prompt);
  ADD ("rpc/tensor", test_peer_tensor);
  ADD ("rpc/result", test_peer_result);
  ADD ("rpc/topology", test_peer_topology);
  ADD ("api/models-topology", test_models_and_topology);
  ADD ("api/topology-json", test_topology_json);
  ADD ("api/models-refused", test_models_refused);
  ADD ("api/chat", test_chat);
  ADD ("api/chat-bad", test_chat_bad);
  ADD ("api/chat-stream", test_chat_stream);
  ADD ("api/chat-stream-error", test_chat_stream_error);
  ADD ("api/chat-timeout", test_chat_timeout);
  ADD ("api/chat-client-leaves", test_chat_client_leaves);
  ADD ("api/openai-errors", test_openai_errors);
  ADD ("api/stream-refused", test_stream_refused);
  ADD ("api/completions", test_completions);
  ADD ("api/chat-usage-and-models", test_chat_usage_and_models);
  ADD ("peer/connect", test_peer_connect);
  ADD ("peer/learns-id", test_peer_learns_id);
  ADD ("peer/wrong-id", test_peer_wrong_id);
  ADD ("peer/calls", test_peer_calls);
  ADD ("peer/server-down", test_peer_server_down);
  ADD ("peer/health", test_peer_health);
  ADD ("peer/rtt", test_peer_rtt);
  ADD ("auth/peer-unsigned", test_auth_peer_unsigned);
  ADD ("auth/peer-forged", test_auth_peer_forged);
  ADD ("auth/peer-handle", test_auth_peer_handle);
  ADD ("auth/answer-unsigned", test_auth_answer_unsigned);
  ADD ("auth/api-keys", test_auth_api_keys);

  return g_test_run ();
}
