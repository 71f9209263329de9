/* http-server-fixture.h: what the parts of test-http-server share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program is test-http-server.c (main()) and
 * test-http-server-{server,rpc,chat,openai,peer,auth}.c; each part registers
 * its cases through the test_http_server_register_*() function below.  The
 * peer-stream programs (test-peer-stream.c, test-peer-stream-hostile.c,
 * with peer-stream-fixture.c) use the fixture too.
 * http-server-fixture.c loads the plugin, captures the server's refusals in
 * the log, and holds the fake node (TestNode), the fixture (a node and a
 * server on 127.0.0.1, port 0) and the HTTP and curl clients.  Everything
 * runs in the main context of the test's thread: the client calls are
 * asynchronous and the helpers spin the context until they complete.
 */
#pragma once

#include "exo-test-util.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <math.h>

G_BEGIN_DECLS

#define WAIT_MS (20000 * exo_test_slow_factor ())

/* The plugin's types, and the cluster key of this process's servers and
 * peers (the default key); set by main(). */
extern ExoPluginLoader *loader;
extern ExoClusterKey *test_key;
extern GType server_type;
extern GType peer_type;

/* The server's refused requests, logged as warnings (capture_writer()). */
extern GPtrArray *refusals;

/* A valid "shard" member of /peer/ requests; the body of a chat. */
extern const char *valid_shard;
extern const char *chat_body;

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
  guint      n_failures;
  GError    *last_failure;
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

/* A node that implements none of ExoNodeRole's vfuncs. */
#define TEST_TYPE_BARE_NODE (test_bare_node_get_type ())
G_DECLARE_FINAL_TYPE (TestBareNode, test_bare_node, TEST, BARE_NODE, ExoManagedResource)

/* --- fixture: a node and a server ------------------------------------------ */

typedef struct
{
  TestNode    *node;
  ExoResource *server;
  guint16      port;
  char        *address;     /* 127.0.0.1:PORT */
  SoupSession *session;
} Fixture;

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

/* Runs curl -sN and collects the lines of its output with their arrival time. */
typedef struct
{
  GSubprocess      *process;
  GDataInputStream *out;
  GPtrArray        *lines;
  GArray           *times;     /* gint64, µs */
  gboolean          eof;
} Curl;

/* --- the plugin and the log (main() sets them up) -------------------------- */

void load_plugin (void);
GLogWriterOutput capture_writer (GLogLevelFlags   log_level,
                                 const GLogField *fields,
                                 gsize            n_fields,
                                 gpointer         user_data);
void discard_log (const char     *log_domain,
                  GLogLevelFlags  log_level,
                  const char     *message,
                  gpointer        user_data);
guint refusals_containing (const char *needle);

/* --- the fixture ----------------------------------------------------------- */

ExoResource *server_new (const char *id,
                         guint       port,
                         const char *node);
void fixture_setup (Fixture       *fx,
                    gconstpointer  data);
void fixture_teardown (Fixture       *fx,
                       gconstpointer  data);

/* --- clients --------------------------------------------------------------- */

void reply_free (Reply *reply);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Reply, reply_free)

Reply *http_signed (Fixture            *fx,
                    ExoClusterKey      *key,
                    const char         *method,
                    const char         *path,
                    const char         *content_type,
                    const void         *body,
                    gsize               body_len,
                    const char * const *headers);
Reply *http (Fixture            *fx,
             const char         *method,
             const char         *path,
             const char         *content_type,
             const void         *body,
             gsize               body_len,
             const char * const *headers);
Reply *http_get (Fixture    *fx,
                 const char *path);
Reply *http_post_json (Fixture    *fx,
                       const char *path,
                       const char *json);
JsonNode *reply_json (Reply *reply);
char *reply_text (Reply *reply);
void assert_error_reply (Reply      *reply,
                         guint       status,
                         const char *needle);
void assert_params (const ExoGenerationParams *got,
                    guint                      max_tokens,
                    double                     temperature,
                    double                     top_p,
                    gboolean                   has_seed,
                    gint64                     seed);
gboolean have_curl (void);
gboolean curl_done (gpointer data);
Curl *curl_start (Fixture    *fx,
                  const char *path,
                  const char *body);
void curl_free (Curl *curl);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Curl, curl_free)

/* --- an ExoHttpPeer and metrics -------------------------------------------- */

ExoResource *peer_new (Fixture    *fx,
                       const char *id,
                       const char *peer_id);
guint64 metric_u64 (ExoResource *resource,
                    const char  *name);

/* Adds a case at /http/@path run on a fresh Fixture. */
#define ADD(path, func) \
  g_test_add ("/http/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

/* The cases of each part of the program; main() calls these in order. */
void test_http_server_register_server (void);
void test_http_server_register_rpc (void);
void test_http_server_register_chat (void);
void test_http_server_register_openai (void);
void test_http_server_register_peer (void);
void test_http_server_register_auth (void);

G_END_DECLS
