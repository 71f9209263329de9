/* test-node-role.c: ExoNodeRole through its checked callers
 * (exo_node_role_*()) and ExoChatResult, with two small implementations
 * written here: TestRole implements every vfunc with typed values,
 * BareRole none.  No plugin, no server: libexo alone.
 *
 * Single-threaded: everything runs in the default main context, which
 * exo_test_wait_result() spins.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

#include <string.h>

#define WAIT_MS 5000

/* --- TestRole: every vfunc, typed values ---------------------------------- */

#define TEST_TYPE_ROLE (test_role_get_type ())
G_DECLARE_FINAL_TYPE (TestRole, test_role, TEST, ROLE, ExoResource)

struct _TestRole
{
  ExoResource parent_instance;

  /* behaviour */
  gboolean  models_wrong_type;    /* list_models gives "as" */
  gboolean  models_none;          /* list_models gives NULL */
  gboolean  chat_no_result;       /* chat_finish gives NULL without an error */
  gboolean  prompt_silent_fail;   /* process_prompt_finish: FALSE without an error */
  /* what it saw */
  char     *last_request_id;
  guint     n_results;
  guint     n_cancels;
  GStrv     last_visited;
};

static void test_role_iface_init (ExoNodeRoleInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (TestRole, test_role, EXO_TYPE_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_NODE_ROLE, test_role_iface_init))

static void
test_role_do_initialize (ExoResource *resource,
                         GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
test_role_do_cleanup (ExoResource *resource,
                      GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static const char *
role_get_node_id (ExoNodeRole *role)
{
  return "node-a";
}

static void
role_process_prompt_async (ExoNodeRole               *role,
                           const ExoShard            *shard,
                           const char                *prompt,
                           const char                *request_id,
                           const ExoGenerationParams *params,
                           GCancellable              *cancellable,
                           GAsyncReadyCallback        callback,
                           gpointer                   user_data)
{
  g_autoptr(GTask) task = g_task_new (role, cancellable, callback, user_data);

  g_free (TEST_ROLE (role)->last_request_id);
  TEST_ROLE (role)->last_request_id = g_strdup (request_id);
  g_task_return_boolean (task, TRUE);
}

static gboolean
role_process_prompt_finish (ExoNodeRole   *role,
                            GAsyncResult  *result,
                            GError       **error)
{
  gboolean ok = g_task_propagate_boolean (G_TASK (result), error);

  return ok && !TEST_ROLE (role)->prompt_silent_fail;
}

static void
role_process_result (ExoNodeRole  *role,
                     const char   *request_id,
                     const gint32 *tokens,
                     gsize         n_tokens,
                     gboolean      is_finished)
{
  TEST_ROLE (role)->n_results++;
}

static void
role_cancel_request (ExoNodeRole *role,
                     const char  *request_id)
{
  TEST_ROLE (role)->n_cancels++;
}

static GVariant *
a_topology (void)
{
  return g_variant_new_parsed ("{'nodes': <{'node-a': {'model': <'box'>, 'chip': <'x86_64'>,"
                               " 'memory': <uint64 2048>}}>,"
                               " 'edges': <[('node-a', 'node-b', '127.0.0.1:1')]>}");
}

static void
role_collect_topology_async (ExoNodeRole         *role,
                             const char * const  *visited,
                             guint                max_depth,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (role, cancellable, callback, user_data);

  g_strfreev (TEST_ROLE (role)->last_visited);
  TEST_ROLE (role)->last_visited = g_strdupv ((char **) visited);
  /* floating, as an implementation may give it */
  g_task_return_pointer (task, g_variant_ref_sink (a_topology ()), (GDestroyNotify) g_variant_unref);
}

static GVariant *
role_collect_topology_finish (ExoNodeRole   *role,
                              GAsyncResult  *result,
                              GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static GVariant *
role_list_models (ExoNodeRole *role)
{
  TestRole *self = TEST_ROLE (role);

  if (self->models_none)
    return NULL;
  if (self->models_wrong_type)
    return g_variant_new_parsed ("['box']");
  return g_variant_new_parsed ("[{'id': <'box'>, 'owned-by': <'exo'>, 'n-layers': <uint32 8>,"
                               " 'ready': <true>}]");
}

static GVariant *
role_get_topology (ExoNodeRole *role)
{
  return a_topology ();   /* floating */
}

typedef struct
{
  ExoTokenFunc on_token;
  gpointer     token_data;
  char        *request_id;
} Chat;

static void
chat_free (Chat *chat)
{
  g_free (chat->request_id);
  g_free (chat);
}

static gboolean
chat_tick (gpointer data)
{
  GTask *task = data;
  Chat *chat = g_task_get_task_data (task);
  const gint32 tokens[] = { 7, 8 };

  if (chat->on_token != NULL)
    chat->on_token (chat->request_id, tokens, G_N_ELEMENTS (tokens), "hi!", TRUE, chat->token_data);
  if (TEST_ROLE (g_task_get_source_object (task))->chat_no_result)
    g_task_return_pointer (task, NULL, NULL);
  else
    g_task_return_pointer (task, exo_chat_result_new ("hi!", "length", 3, 2),
                           (GDestroyNotify) exo_chat_result_free);
  return G_SOURCE_REMOVE;
}

static void
role_chat_async (ExoNodeRole               *role,
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
  GTask *task = g_task_new (role, cancellable, callback, user_data);
  Chat *chat = g_new0 (Chat, 1);

  chat->on_token = on_token;
  chat->token_data = token_data;
  chat->request_id = g_strdup (request_id != NULL ? request_id : "made-up");
  g_task_set_task_data (task, chat, (GDestroyNotify) chat_free);
  g_idle_add_full (G_PRIORITY_DEFAULT, chat_tick, task, g_object_unref);
}

static ExoChatResult *
role_chat_finish (ExoNodeRole   *role,
                  GAsyncResult  *result,
                  GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
test_role_iface_init (ExoNodeRoleInterface *iface)
{
  iface->get_node_id = role_get_node_id;
  iface->process_prompt_async = role_process_prompt_async;
  iface->process_prompt_finish = role_process_prompt_finish;
  /* process_tensor: left out, as an implementation may */
  iface->process_result = role_process_result;
  iface->collect_topology_async = role_collect_topology_async;
  iface->collect_topology_finish = role_collect_topology_finish;
  iface->cancel_request = role_cancel_request;
  iface->list_models = role_list_models;
  iface->get_topology = role_get_topology;
  iface->chat_async = role_chat_async;
  iface->chat_finish = role_chat_finish;
}

static void
test_role_finalize (GObject *object)
{
  TestRole *self = TEST_ROLE (object);

  g_free (self->last_request_id);
  g_strfreev (self->last_visited);
  G_OBJECT_CLASS (test_role_parent_class)->finalize (object);
}

static void
test_role_class_init (TestRoleClass *klass)
{
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = test_role_finalize;
  resource_class->do_initialize = test_role_do_initialize;
  resource_class->do_cleanup = test_role_do_cleanup;
}

static void
test_role_init (TestRole *self)
{
}

/* --- BareRole: no vfunc at all ------------------------------------------- */

#define TEST_TYPE_BARE_ROLE (test_bare_role_get_type ())
G_DECLARE_FINAL_TYPE (TestBareRole, test_bare_role, TEST, BARE_ROLE, ExoResource)

struct _TestBareRole
{
  ExoResource parent_instance;
};

static void
test_bare_role_iface_init (ExoNodeRoleInterface *iface)
{
}

G_DEFINE_FINAL_TYPE_WITH_CODE (TestBareRole, test_bare_role, EXO_TYPE_RESOURCE,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_NODE_ROLE, test_bare_role_iface_init))

static void
test_bare_role_class_init (TestBareRoleClass *klass)
{
}

static void
test_bare_role_init (TestBareRole *self)
{
}

/* --- helpers ------------------------------------------------------------- */

typedef struct
{
  GString *text;
  gsize    tokens;
  guint    freed;           /* token_notify ran */
  gboolean freed_early;     /* before the chat's callback */
  gboolean callback_ran;
  GAsyncResult *result;
} ChatWatch;

static void
watch_token (const char   *request_id,
             const gint32 *tokens,
             gsize         n_tokens,
             const char   *text,
             gboolean      is_finished,
             gpointer      user_data)
{
  ChatWatch *w = user_data;

  w->tokens += n_tokens;
  g_string_append (w->text, text);
}

static void
watch_free (gpointer user_data)
{
  ChatWatch *w = user_data;

  w->freed++;
  if (!w->callback_ran)
    w->freed_early = TRUE;
}

static void
watch_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  ChatWatch *w = user_data;

  w->callback_ran = TRUE;
  w->result = g_object_ref (result);
}

static gboolean
watch_has_result (gpointer data)
{
  return ((ChatWatch *) data)->result != NULL;
}

static ExoChatResult *
chat_through (ExoNodeRole  *role,
              ChatWatch    *w,
              GError      **error)
{
  exo_node_role_chat_async (role, NULL, "hello", "req-1", NULL, watch_token, w, watch_free, NULL,
                            watch_done, w);
  g_assert_true (exo_test_spin_until (watch_has_result, w, WAIT_MS));
  return exo_node_role_chat_finish (role, w->result, error);
}

static void
watch_clear (ChatWatch *w)
{
  g_clear_object (&w->result);
  g_string_free (w->text, TRUE);
}

/* --- the tests ----------------------------------------------------------- */

/* Every call through the wrappers, with the values typed as documented. */
static void
test_typed_values (void)
{
  g_autoptr(TestRole) node = g_object_new (TEST_TYPE_ROLE, "id", "node", NULL);
  ExoNodeRole *role = EXO_NODE_ROLE (node);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) models = NULL;
  g_autoptr(GVariant) topology = NULL;
  g_autoptr(ExoChatResult) chat = NULL;
  ChatWatch w = { g_string_new (NULL) };

  g_assert_cmpstr (exo_node_role_get_node_id (role), ==, "node-a");

  models = exo_node_role_list_models (role, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_is_of_type (models, G_VARIANT_TYPE (EXO_NODE_ROLE_MODELS_TYPE)));
  g_assert_false (g_variant_is_floating (models));
  {
    g_autoptr(GVariant) model = g_variant_get_child_value (models, 0);
    const char *id;
    guint32 n_layers;

    g_assert_true (g_variant_lookup (model, "id", "&s", &id));
    g_assert_cmpstr (id, ==, "box");
    g_assert_true (g_variant_lookup (model, "n-layers", "u", &n_layers));
    g_assert_cmpuint (n_layers, ==, 8);
  }

  topology = exo_node_role_get_topology (role, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_is_of_type (topology, G_VARIANT_TYPE (EXO_NODE_ROLE_TOPOLOGY_TYPE)));
  g_assert_false (g_variant_is_floating (topology));
  g_clear_pointer (&topology, g_variant_unref);

  {
    const char *visited[] = { "x", NULL };
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(GVariant) edges = NULL;

    exo_node_role_collect_topology_async (role, visited, 2, NULL, exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    topology = exo_node_role_collect_topology_finish (role, result, &error);
    g_assert_no_error (error);
    g_assert_cmpstrv (node->last_visited, visited);
    edges = g_variant_lookup_value (topology, "edges", G_VARIANT_TYPE ("a(sss)"));
    g_assert_cmpuint (g_variant_n_children (edges), ==, 1);
  }

  {
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(ExoShard) shard = exo_shard_new ("box", 0, 7, 8);

    exo_node_role_process_prompt_async (role, shard, "p", "req-2", NULL, NULL,
                                        exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_true (exo_node_role_process_prompt_finish (role, result, &error));
    g_assert_no_error (error);
    g_assert_cmpstr (node->last_request_id, ==, "req-2");
  }

  {
    const gint32 tokens[] = { 1, 2, 3 };

    g_assert_true (exo_node_role_process_result (role, "req-2", tokens, 3, TRUE, &error));
    g_assert_true (exo_node_role_process_result (role, "req-2", NULL, 0, FALSE, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (node->n_results, ==, 2);
    g_assert_true (exo_node_role_cancel_request (role, "req-2", &error));
    g_assert_no_error (error);
    g_assert_cmpuint (node->n_cancels, ==, 1);
  }

  /* the chat's result is an ExoChatResult; the token data is freed after
   * the callback ran, once */
  chat = chat_through (role, &w, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (exo_chat_result_get_text (chat), ==, "hi!");
  g_assert_cmpstr (exo_chat_result_get_finish_reason (chat), ==, "length");
  g_assert_cmpint (exo_chat_result_get_prompt_tokens (chat), ==, 3);
  g_assert_cmpint (exo_chat_result_get_completion_tokens (chat), ==, 2);
  g_assert_cmpstr (w.text->str, ==, "hi!");
  g_assert_cmpuint (w.tokens, ==, 2);
  g_assert_cmpuint (w.freed, ==, 1);
  g_assert_false (w.freed_early);
  watch_clear (&w);
}

/* A node that implements nothing: NOT_SUPPORTED from every call that can
 * fail, the documented default from the one that cannot. */
static void
test_not_supported (void)
{
  g_autoptr(TestBareRole) node = g_object_new (TEST_TYPE_BARE_ROLE, "id", "bare", NULL);
  ExoNodeRole *role = EXO_NODE_ROLE (node);
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoShard) shard = exo_shard_new ("box", 0, 7, 8);
  const gint32 one = 1;
  g_autoptr(ExoTensor) tensor = exo_tensor_new_int32 (&one, 1);
  ChatWatch w = { g_string_new (NULL) };

  g_assert_null (exo_node_role_get_node_id (role));

  g_assert_null (exo_node_role_list_models (role, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, "'bare'"));
  g_assert_nonnull (strstr (error->message, "list_models"));
  g_clear_error (&error);
  g_assert_null (exo_node_role_get_topology (role, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  g_assert_false (exo_node_role_process_result (role, "r", &one, 1, FALSE, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  g_assert_false (exo_node_role_cancel_request (role, "r", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, "cancel_request"));
  g_clear_error (&error);

  {
    g_autoptr(GAsyncResult) result = NULL;

    exo_node_role_process_prompt_async (role, shard, "p", "r", NULL, NULL, exo_test_store_result,
                                        &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_false (exo_node_role_process_prompt_finish (role, result, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
    g_clear_error (&error);
  }
  {
    g_autoptr(GAsyncResult) result = NULL;

    exo_node_role_process_tensor_async (role, shard, tensor, "r", NULL, NULL, exo_test_store_result,
                                        &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_false (exo_node_role_process_tensor_finish (role, result, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
    g_clear_error (&error);
  }
  {
    g_autoptr(GAsyncResult) result = NULL;

    exo_node_role_collect_topology_async (role, NULL, 1, NULL, exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_null (exo_node_role_collect_topology_finish (role, result, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
    g_clear_error (&error);
  }

  /* chat: the callback runs with the error, then the token data is freed */
  g_assert_null (chat_through (role, &w, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_assert_nonnull (strstr (error->message, "chat_async"));
  g_clear_error (&error);
  g_assert_cmpuint (w.freed, ==, 1);
  g_assert_false (w.freed_early);
  g_assert_cmpuint (w.tokens, ==, 0);
  watch_clear (&w);

  /* A node that lacks only process_tensor (TestRole): the same error. */
  {
    g_autoptr(TestRole) partial = g_object_new (TEST_TYPE_ROLE, "id", "partial", NULL);
    g_autoptr(GAsyncResult) result = NULL;

    exo_node_role_process_tensor_async (EXO_NODE_ROLE (partial), shard, tensor, "r", NULL, NULL,
                                        exo_test_store_result, &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_false (exo_node_role_process_tensor_finish (EXO_NODE_ROLE (partial), result, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
    g_assert_nonnull (strstr (error->message, "'partial'"));
    g_clear_error (&error);
  }
}

/* What an implementation gives that breaks the contract becomes an error
 * that names the node, never a crash in the caller. */
static void
test_bad_values (void)
{
  g_autoptr(TestRole) node = g_object_new (TEST_TYPE_ROLE, "id", "liar", NULL);
  ExoNodeRole *role = EXO_NODE_ROLE (node);
  g_autoptr(GError) error = NULL;
  ChatWatch w = { g_string_new (NULL) };

  node->models_wrong_type = TRUE;
  g_assert_null (exo_node_role_list_models (role, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "'as', not 'aa{sv}'"));
  g_clear_error (&error);

  node->models_wrong_type = FALSE;
  node->models_none = TRUE;
  g_assert_null (exo_node_role_list_models (role, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "'liar' gave no models"));
  g_clear_error (&error);

  node->chat_no_result = TRUE;
  g_assert_null (chat_through (role, &w, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_clear_error (&error);
  watch_clear (&w);

  node->prompt_silent_fail = TRUE;
  {
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(ExoShard) shard = exo_shard_new ("box", 0, 7, 8);

    exo_node_role_process_prompt_async (role, shard, "p", "r", NULL, NULL, exo_test_store_result,
                                        &result);
    g_assert_true (exo_test_wait_result (&result, WAIT_MS));
    g_assert_false (exo_node_role_process_prompt_finish (role, result, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
    g_assert_nonnull (strstr (error->message, "without saying why"));
    g_clear_error (&error);
  }
}

/* A NULL or wrong instance, or a missing argument, is a programming error:
 * a critical, and nothing is called. */
static void
test_refuses_wrong_instance (void)
{
  g_autoptr(GObject) not_a_node = g_object_new (G_TYPE_OBJECT, NULL);
  g_autoptr(TestRole) node = g_object_new (TEST_TYPE_ROLE, "id", "node", NULL);
  g_autoptr(GError) error = NULL;

  g_test_expect_message ("Exo", G_LOG_LEVEL_CRITICAL, "*EXO_IS_NODE_ROLE*");
  g_assert_null (exo_node_role_list_models (NULL, &error));
  g_test_assert_expected_messages ();

  g_test_expect_message ("Exo", G_LOG_LEVEL_CRITICAL, "*EXO_IS_NODE_ROLE*");
  g_assert_null (exo_node_role_get_topology ((ExoNodeRole *) not_a_node, &error));
  g_test_assert_expected_messages ();

  g_test_expect_message ("Exo", G_LOG_LEVEL_CRITICAL, "*EXO_IS_NODE_ROLE*");
  g_assert_null (exo_node_role_get_node_id ((ExoNodeRole *) not_a_node));
  g_test_assert_expected_messages ();

  g_test_expect_message ("Exo", G_LOG_LEVEL_CRITICAL, "*EXO_IS_NODE_ROLE*");
  exo_node_role_chat_async ((ExoNodeRole *) not_a_node, NULL, "p", NULL, NULL, NULL, NULL, NULL,
                            NULL, NULL, NULL);
  g_test_assert_expected_messages ();

  g_test_expect_message ("Exo", G_LOG_LEVEL_CRITICAL, "*prompt != NULL*");
  exo_node_role_chat_async (EXO_NODE_ROLE (node), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                            NULL, NULL);
  g_test_assert_expected_messages ();

  g_test_expect_message ("Exo", G_LOG_LEVEL_CRITICAL, "*request_id != NULL*");
  g_assert_false (exo_node_role_cancel_request (EXO_NODE_ROLE (node), NULL, &error));
  g_test_assert_expected_messages ();
  g_assert_cmpuint (node->n_cancels, ==, 0);

  g_test_expect_message ("Exo", G_LOG_LEVEL_CRITICAL, "*tokens != NULL*");
  g_assert_false (exo_node_role_process_result (EXO_NODE_ROLE (node), "r", NULL, 2, FALSE, &error));
  g_test_assert_expected_messages ();
  g_assert_cmpuint (node->n_results, ==, 0);
  g_assert_no_error (error);
}

static void
test_chat_result (void)
{
  g_autoptr(ExoChatResult) plain = exo_chat_result_new (NULL, NULL, -1, -1);
  g_autoptr(ExoChatResult) full = exo_chat_result_new ("text", "length", 10, 4);
  g_autoptr(ExoChatResult) copy = exo_chat_result_copy (full);

  g_assert_cmpstr (exo_chat_result_get_text (plain), ==, "");
  g_assert_cmpstr (exo_chat_result_get_finish_reason (plain), ==, "stop");
  g_assert_cmpint (exo_chat_result_get_prompt_tokens (plain), ==, -1);
  g_assert_cmpint (exo_chat_result_get_completion_tokens (plain), ==, -1);

  g_assert_cmpstr (exo_chat_result_get_text (copy), ==, "text");
  g_assert_cmpstr (exo_chat_result_get_finish_reason (copy), ==, "length");
  g_assert_cmpint (exo_chat_result_get_prompt_tokens (copy), ==, 10);
  g_assert_cmpint (exo_chat_result_get_completion_tokens (copy), ==, 4);
  g_assert_true (G_TYPE_IS_BOXED (EXO_TYPE_CHAT_RESULT));

  g_test_expect_message ("Exo", G_LOG_LEVEL_CRITICAL, "*finish_reason*");
  g_assert_null (exo_chat_result_new ("x", "tired", 0, 0));
  g_test_assert_expected_messages ();
  g_test_expect_message ("Exo", G_LOG_LEVEL_CRITICAL, "*prompt_tokens >= -1*");
  g_assert_null (exo_chat_result_new ("x", NULL, -2, 0));
  g_test_assert_expected_messages ();
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/node-role/typed-values", test_typed_values);
  g_test_add_func ("/node-role/not-supported", test_not_supported);
  g_test_add_func ("/node-role/bad-values", test_bad_values);
  g_test_add_func ("/node-role/refuses-wrong-instance", test_refuses_wrong_instance);
  g_test_add_func ("/node-role/chat-result", test_chat_result);

  return g_test_run ();
}
