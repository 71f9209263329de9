/* test-hostile-json.c: JSON from outside cannot crash or fool exo-node
 * (issue 9, defects 1 and 6), through the real daemon.
 *
 * Each case starts exo-node (dummy-inference, http-server, udp-discovery and
 * node, all on 127.0.0.1 with ports of their own) on a private dbus-daemon,
 * with G_DEBUG=fatal-criticals so that a GLib critical ends it, and a fake
 * peer: a SoupServer on its own thread and main context in this process,
 * listed in the node's static peers, whose health and topology answers each
 * case sets.  Nothing is sent beyond 127.0.0.1.
 *
 * /hostile-json/http/deep: every JSON route (and the shard and generation
 *   parameter headers of a tensor: 1000 there) gets 100,000 '[' behind a
 *   comment, a single-quoted string and
 *   nothing, and answers 400 naming the problem or the limit; the node stays up.
 * /hostile-json/http/values: out-of-range and mistyped OpenAI parameters
 *   (and generation parameters of a peer's prompt), two concatenated
 *   objects, 1e999, lone surrogates: 400, naming the field.
 * /hostile-json/discovery: datagrams with the same bypass, a lone surrogate
 *   in a string, 1e999: dropped and counted, no critical, the node up.
 * /hostile-json/peer-topology: the fake peer answers the topology request
 *   with the bypass and with values json-glib would misread, with a model
 *   name holding U+001F (which json-glib writes back unescaped), then with
 *   flops of 1e-8, which the node used to write back as `1e-08.0`: its
 *   GET /v1/topology must stay strict JSON, and the same text as its D-Bus
 *   Topology (the node plugin writes that one, the http-server the other,
 *   from the node's typed topology); GET /v1/models keeps its text.
 * /hostile-json/check-config: `exo-node --check-config` of such a file
 *   exits 1 with FILE:LINE: … instead of a segfault.
 *
 * Environment (set by meson): EXO_NODE, EXO_TEST_PLUGIN_DIR.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <exo/exo.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include "exo-test-bus.h"

/* The node's cluster key (a file in the test's folder): datagrams and peer
 * RPC are signed with it, so that the hostile JSON inside reaches the
 * parser instead of being dropped unauthenticated. */
static ExoClusterKey *hostile_key;

#define DEEP 100000
#define WAIT_MS 15000

/* --- the fake peer: a SoupServer on a thread of its own ------------------- */

typedef struct {
  GThread      *thread;
  GMainContext *context;
  GMainLoop    *loop;
  guint16       port;
  GMutex        lock;
  GCond         cond;
  gboolean      ready;
  char         *health;        /* the answers; under lock */
  char         *topology;
  guint         n_health;
  guint         n_topology;
  guint         n_unsigned;    /* requests without a valid signature */
} FakePeer;

/* Whether @msg is signed with the cluster key; its nonce in @out_nonce. */
static gboolean
fake_peer_verify (SoupServerMessage  *msg,
                  char              **out_nonce)
{
  SoupMessageHeaders *request_headers = soup_server_message_get_request_headers (msg);
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  g_autoptr(GPtrArray) pairs = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path_and_query = NULL;
  GUri *uri = soup_server_message_get_uri (msg);
  SoupMessageHeadersIter iter;
  const char *name, *value;

  soup_message_headers_iter_init (&iter, request_headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    if (g_ascii_strncasecmp (name, "X-Exo-", 6) == 0 &&
        g_ascii_strcasecmp (name, EXO_CLUSTER_AUTH_HEADER) != 0)
      {
        g_ptr_array_add (pairs, (gpointer) name);
        g_ptr_array_add (pairs, (gpointer) value);
      }
  g_ptr_array_add (pairs, NULL);
  path_and_query = g_uri_get_query (uri) != NULL
                   ? g_strdup_printf ("%s?%s", g_uri_get_path (uri), g_uri_get_query (uri))
                   : g_strdup (g_uri_get_path (uri));
  if (exo_cluster_key_verify_request (hostile_key,
                                      soup_message_headers_get_one (request_headers,
                                                                    EXO_CLUSTER_AUTH_HEADER),
                                      soup_server_message_get_method (msg), path_and_query,
                                      (const char * const *) pairs->pdata,
                                      g_bytes_get_data (body, NULL), g_bytes_get_size (body),
                                      NULL, out_nonce, &error))
    return TRUE;
  g_test_message ("fake peer: refused %s: %s", path_and_query, error->message);
  return FALSE;
}

/* A peer that holds the cluster key, as a node does: it checks each
 * request's signature and signs its answer, so that the hostile JSON it
 * answers reaches the node's parser instead of being refused unsigned. */
static void
fake_peer_handler (SoupServer        *server,
                   SoupServerMessage *msg,
                   const char        *path,
                   GHashTable        *query,
                   gpointer           user_data)
{
  FakePeer *peer = user_data;
  g_autofree char *answer = NULL;
  g_autofree char *nonce = NULL;
  g_autofree char *signature = NULL;
  gsize len;

  if (!fake_peer_verify (msg, &nonce))
    {
      g_mutex_lock (&peer->lock);
      peer->n_unsigned++;
      g_mutex_unlock (&peer->lock);
      soup_server_message_set_status (msg, SOUP_STATUS_UNAUTHORIZED, NULL);
      return;
    }

  g_mutex_lock (&peer->lock);
  if (g_str_equal (path, "/peer/v1/health"))
    {
      answer = g_strdup (peer->health);
      peer->n_health++;
    }
  else if (g_str_equal (path, "/peer/v1/topology"))
    {
      answer = g_strdup (peer->topology);
      peer->n_topology++;
    }
  g_mutex_unlock (&peer->lock);

  if (answer == NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  len = strlen (answer);
  signature = exo_cluster_key_sign_response (hostile_key, nonce, SOUP_STATUS_OK,
                                             (const guint8 *) answer, len);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                EXO_CLUSTER_AUTH_HEADER, signature);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE,
                                    g_steal_pointer (&answer), len);
}

static gpointer
fake_peer_thread (gpointer data)
{
  FakePeer *peer = data;
  g_autoptr(SoupServer) server = NULL;
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (lo, 0);
  g_autoptr(GError) error = NULL;
  GSList *uris;

  g_main_context_push_thread_default (peer->context);
  server = soup_server_new ("server-header", "fake-peer", NULL);
  soup_server_add_handler (server, NULL, fake_peer_handler, peer, NULL);
  g_assert_true (soup_server_listen (server, address, 0, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (server);
  g_mutex_lock (&peer->lock);
  peer->port = (guint16) g_uri_get_port (uris->data);
  peer->ready = TRUE;
  g_cond_signal (&peer->cond);
  g_mutex_unlock (&peer->lock);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  g_main_loop_run (peer->loop);
  soup_server_disconnect (server);
  g_main_context_pop_thread_default (peer->context);
  return NULL;
}

static void
fake_peer_set (FakePeer   *peer,
               const char *health,
               const char *topology)
{
  g_mutex_lock (&peer->lock);
  if (health != NULL)
    {
      g_free (peer->health);
      peer->health = g_strdup (health);
    }
  if (topology != NULL)
    {
      g_free (peer->topology);
      peer->topology = g_strdup (topology);
    }
  g_mutex_unlock (&peer->lock);
}

static guint
fake_peer_topology_count (FakePeer *peer)
{
  guint n;

  g_mutex_lock (&peer->lock);
  n = peer->n_topology;
  g_mutex_unlock (&peer->lock);
  return n;
}

static void
fake_peer_start (FakePeer *peer)
{
  g_mutex_init (&peer->lock);
  g_cond_init (&peer->cond);
  peer->context = g_main_context_new ();
  peer->loop = g_main_loop_new (peer->context, FALSE);
  peer->health = g_strdup ("{\"status\":\"ok\",\"node_id\":\"fake-peer\"}");
  peer->topology = g_strdup ("{\"nodes\":{},\"peer_graph\":{},\"active_node_id\":null}");
  peer->thread = g_thread_new ("fake-peer", fake_peer_thread, peer);
  g_mutex_lock (&peer->lock);
  while (!peer->ready)
    g_cond_wait (&peer->cond, &peer->lock);
  g_mutex_unlock (&peer->lock);
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
fake_peer_stop (FakePeer *peer)
{
  g_main_context_invoke (peer->context, quit_loop, peer->loop);
  g_thread_join (peer->thread);
  g_main_loop_unref (peer->loop);
  g_main_context_unref (peer->context);
  g_free (peer->health);
  g_free (peer->topology);
  g_mutex_clear (&peer->lock);
  g_cond_clear (&peer->cond);
}

/* --- the node ------------------------------------------------------------- */

typedef struct {
  const char   *exo_node;
  const char   *plugin_dir;
  char         *tmpdir;
  GSubprocess  *bus;
  char         *bus_address;
  GSubprocess  *node;
  char         *log_path;
  guint16       http_port;
  guint16       udp_port;
  FakePeer      peer;
  SoupSession  *session;
} Fixture;

static void
child_setup (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static guint16
free_port (GSocketType type)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, type, 0, NULL);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  if (socket == NULL || !g_socket_bind (socket, any, FALSE, NULL))
    return 0;
  bound = g_socket_get_local_address (socket, NULL);
  return bound != NULL ? g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)) : 0;
}

static GSubprocess *
spawn (Fixture            *f,
       const char * const *argv,
       const char         *log_path,
       GSubprocessFlags    flags)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (flags);
  g_autoptr(GError) error = NULL;
  GSubprocess *proc;

  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  if (f->bus_address != NULL)
    g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", f->bus_address, TRUE);
  g_subprocess_launcher_setenv (launcher, "G_DEBUG", "fatal-criticals", TRUE);
  g_subprocess_launcher_setenv (launcher, "NO_COLOR", "1", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "EXO_PLUGIN_PATH");
  if (log_path != NULL)
    {
      g_subprocess_launcher_set_stdout_file_path (launcher, log_path);
      g_subprocess_launcher_set_stderr_file_path (launcher, log_path);
    }
  proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  return proc;
}

static char *
node_log (Fixture *f)
{
  char *log = NULL;

  if (f->log_path == NULL || !g_file_get_contents (f->log_path, &log, NULL, NULL))
    return g_strdup ("");
  return log;
}

/* Status of an HTTP exchange with the node; 0 when it did not answer. */
static guint
http (Fixture            *f,
      const char         *method,
      const char         *path,
      const char         *content_type,
      const void         *body,
      gsize               len,
      const char * const *headers,
      char              **out_body)
{
  g_autofree char *uri = g_strdup_printf ("http://127.0.0.1:%u%s", f->http_port, path);
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(GError) error = NULL;

  if (body != NULL)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (body, len);
      soup_message_set_request_body_from_bytes (msg, content_type, bytes);
    }
  for (guint i = 0; headers != NULL && headers[i] != NULL; i += 2)
    soup_message_headers_replace (soup_message_get_request_headers (msg), headers[i], headers[i + 1]);
  /* peer RPC is signed with the cluster key, as a node holding it does:
   * the hostile body then reaches the parser */
  if (g_str_has_prefix (path, "/peer/") && hostile_key != NULL)
    {
      SoupMessageHeaders *request_headers = soup_message_get_request_headers (msg);
      g_autoptr(GPtrArray) pairs = g_ptr_array_new ();
      g_autofree char *auth = NULL;
      g_autofree char *nonce = NULL;
      SoupMessageHeadersIter iter;
      const char *name, *value;

      soup_message_headers_replace (request_headers, EXO_CLUSTER_AUTH_NODE_HEADER, "hostile-client");
      soup_message_headers_iter_init (&iter, request_headers);
      while (soup_message_headers_iter_next (&iter, &name, &value))
        if (g_ascii_strncasecmp (name, "X-Exo-", 6) == 0)
          {
            g_ptr_array_add (pairs, (gpointer) name);
            g_ptr_array_add (pairs, (gpointer) value);
          }
      g_ptr_array_add (pairs, NULL);
      auth = exo_cluster_key_sign_request (hostile_key, method, path,
                                           (const char * const *) pairs->pdata,
                                           body, body != NULL ? len : 0, g_get_real_time (), &nonce);
      soup_message_headers_replace (request_headers, EXO_CLUSTER_AUTH_HEADER, auth);
    }
  answer = soup_session_send_and_read (f->session, msg, NULL, &error);
  if (out_body != NULL)
    *out_body = answer != NULL ? g_strndup (g_bytes_get_data (answer, NULL), g_bytes_get_size (answer))
                               : g_strdup ("");
  return answer != NULL ? soup_message_get_status (msg) : 0;
}

static guint
post_json (Fixture     *f,
           const char  *path,
           const char  *body,
           gsize        len,
           char       **out_body)
{
  return http (f, "POST", path, "application/json", body, len, NULL, out_body);
}

static void
assert_node_up (Fixture *f)
{
  g_autofree char *body = NULL;
  guint status = http (f, "GET", "/healthcheck", NULL, NULL, 0, NULL, &body);

  if (status != 200 || g_subprocess_get_identifier (f->node) == NULL)
    {
      g_autofree char *log = node_log (f);
      g_error ("exo-node is down (healthcheck %u); its log:\n%s", status, log);
    }
}

/* A sample from GET /metrics (`name{labels}` as the server writes it);
 * -1 when absent. */
static gint64
metric (Fixture    *f,
        const char *sample)
{
  g_autofree char *body = NULL;
  g_autofree char *needle = g_strdup_printf ("\n%s ", sample);
  const char *found;

  if (http (f, "GET", "/metrics", NULL, NULL, 0, NULL, &body) != 200)
    return -1;
  found = strstr (body, needle);
  return found != NULL ? g_ascii_strtoll (found + strlen (needle), NULL, 10) : -1;
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *socket_path = NULL;
  g_autofree char *config_path = NULL;
  g_autofree char *config = NULL;
  g_autofree char *key_path = NULL;
  gint64 deadline;

  f->exo_node = g_getenv ("EXO_NODE");
  f->plugin_dir = g_getenv ("EXO_TEST_PLUGIN_DIR");
  if (f->exo_node == NULL || f->plugin_dir == NULL)
    return;
  f->tmpdir = g_dir_make_tmp ("exo-hostile-XXXXXX", NULL);
  g_assert_nonnull (f->tmpdir);
  f->session = soup_session_new_with_options ("timeout", 20, NULL);
  fake_peer_start (&f->peer);

  socket_path = g_build_filename (f->tmpdir, "bus", NULL);
  f->bus = exo_test_bus_spawn (socket_path, &f->bus_address);

  f->http_port = free_port (G_SOCKET_TYPE_STREAM);
  f->udp_port = free_port (G_SOCKET_TYPE_DATAGRAM);
  key_path = g_build_filename (f->tmpdir, "cluster.key", NULL);
  g_clear_pointer (&hostile_key, exo_cluster_key_unref);
  hostile_key = exo_cluster_key_load_or_generate (key_path, NULL, NULL);
  g_assert_nonnull (hostile_key);
  config = g_strdup_printf (
    "{\n"
    "  \"node\": { \"id\": \"hostile-test\", \"cluster-key-file\": \"%s\" },\n"
    "  \"resources\": [\n"
    "    { \"id\": \"engine\", \"type\": \"dummy-inference\" },\n"
    "    { \"id\": \"server\", \"type\": \"http-server\",\n"
    "      \"settings\": { \"port\": %u, \"listen-address\": \"127.0.0.1\" } },\n"
    "    { \"id\": \"discovery\", \"type\": \"udp-discovery\", \"depends-on\": [\"server\"],\n"
    "      \"settings\": { \"node-id\": \"hostile-test\", \"port\": %u, \"listen-address\": \"127.0.0.1\",\n"
    "                    \"server-port\": %u, \"broadcast-interval-ms\": 200,\n"
    "                    \"broadcast-addresses\": [\"127.0.0.1:%u\"],\n"
    "                    \"static-peers\": [\"127.0.0.1:%u\"] } },\n"
    "    { \"id\": \"node\", \"type\": \"node\", \"depends-on\": [\"engine\", \"server\", \"discovery\"],\n"
    "      \"settings\": { \"node-id\": \"hostile-test\", \"topology-interval-ms\": 200 } }\n"
    "  ]\n"
    "}\n", key_path, f->http_port, f->udp_port, f->http_port, free_port (G_SOCKET_TYPE_DATAGRAM),
    f->peer.port);
  config_path = g_build_filename (f->tmpdir, "node.json", NULL);
  g_assert_true (g_file_set_contents (config_path, config, -1, NULL));
  f->log_path = g_build_filename (f->tmpdir, "node.log", NULL);
  {
    const char *argv[] = { f->exo_node, "--plugin-dir", f->plugin_dir, "--config", config_path,
                           "--session", NULL };
    f->node = spawn (f, argv, f->log_path, G_SUBPROCESS_FLAGS_NONE);
  }

  deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  while (http (f, "GET", "/healthcheck", NULL, NULL, 0, NULL, NULL) != 200)
    {
      if (g_get_monotonic_time () > deadline || g_subprocess_get_identifier (f->node) == NULL)
        {
          g_autofree char *log = node_log (f);
          g_error ("exo-node did not come up; its log:\n%s", log);
        }
      g_usleep (20000);
    }
}

static void
rm_rf (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        rm_rf (path);
      else
        g_unlink (path);
    }
  g_rmdir (dir);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->tmpdir == NULL)
    return;
  if (f->node != NULL)
    {
      g_subprocess_send_signal (f->node, SIGTERM);
      g_subprocess_wait (f->node, NULL, NULL);
      g_clear_object (&f->node);
    }
  g_subprocess_force_exit (f->bus);
  g_subprocess_wait (f->bus, NULL, NULL);
  g_clear_object (&f->bus);
  fake_peer_stop (&f->peer);
  g_clear_object (&f->session);
  rm_rf (f->tmpdir);
  g_free (f->tmpdir);
  g_free (f->bus_address);
  g_free (f->log_path);
}

static gboolean
have_daemon (Fixture *f)
{
  if (f->tmpdir == NULL)
    {
      g_test_skip ("EXO_NODE / EXO_TEST_PLUGIN_DIR not set");
      return FALSE;
    }
  return TRUE;
}

/* PREFIX followed by @n copies of @c. */
static char *
nested (const char *prefix,
        char        c,
        gsize       n,
        gsize      *len)
{
  gsize plen = strlen (prefix);
  char *text = g_malloc (plen + n + 1);

  memcpy (text, prefix, plen);
  memset (text + plen, c, n);
  text[plen + n] = '\0';
  *len = plen + n;
  return text;
}

static void
assert_error_answer (guint       status,
                     const char *body,
                     const char *needle)
{
  if (status != 400 || strstr (body, "\"error\"") == NULL || strstr (body, needle) == NULL)
    g_error ("expected 400 with an error naming '%s', got %u: %.300s", needle, status, body);
}

/* --- the cases ------------------------------------------------------------ */

static void
test_http_deep (Fixture       *f,
                gconstpointer  data)
{
  static const char * const routes[] = {
    "/v1/chat/completions", "/peer/v1/prompt", "/peer/v1/result", "/peer/v1/topology",
  };
  static const struct { const char *prefix; const char *needle; } bypasses[] = {
    { "/*\"*/", "comments are not JSON" },          /* the comment of issue 9 */
    { "'\"'", "single quotes" },                     /* a single-quoted string */
    { "", "nested deeper than the limit of 32 levels" },
    { "{\"a\":\"[[[[\",\"b\":", "nested deeper than the limit of 32 levels" },
  };

  if (!have_daemon (f))
    return;

  for (gsize r = 0; r < G_N_ELEMENTS (routes); r++)
    for (gsize b = 0; b < G_N_ELEMENTS (bypasses); b++)
      {
        gsize len;
        g_autofree char *body = nested (bypasses[b].prefix, '[', DEEP, &len);
        g_autofree char *answer = NULL;
        guint status = post_json (f, routes[r], body, len, &answer);

        g_test_message ("%s %s…: %u %.200s", routes[r], bypasses[b].prefix, status, answer);
        assert_error_answer (status, answer, bypasses[b].needle);
        assert_node_up (f);
      }

  /* The shard of a tensor comes in a header (at most 1024 bytes). */
  for (gsize b = 0; b < G_N_ELEMENTS (bypasses); b++)
    {
      gsize len;
      g_autofree char *shard = nested (bypasses[b].prefix, '[', 1000, &len);
      const char *headers[] = { "X-Exo-Request-Id", "r1", "X-Exo-Shard", shard,
                                "X-Exo-Tensor-Dtype", "int32", "X-Exo-Tensor-Shape", "1", NULL };
      g_autofree char *answer = NULL;
      guint status = http (f, "POST", "/peer/v1/tensor", "application/octet-stream",
                           "\0\0\0\0", 4, headers, &answer);

      assert_error_answer (status, answer, bypasses[b].needle);
      assert_node_up (f);
    }

  /* So do a tensor's generation parameters (X-Exo-Params). */
  for (gsize b = 0; b < G_N_ELEMENTS (bypasses); b++)
    {
      gsize len;
      g_autofree char *params = nested (bypasses[b].prefix, '[', 1000, &len);
      const char *headers[] = { "X-Exo-Request-Id", "r1",
                                "X-Exo-Shard", "{\"model_id\":\"dummy\",\"start_layer\":0,"
                                               "\"end_layer\":7,\"n_layers\":16}",
                                "X-Exo-Tensor-Dtype", "int32", "X-Exo-Tensor-Shape", "1",
                                "X-Exo-Params", params, NULL };
      g_autofree char *answer = NULL;
      guint status = http (f, "POST", "/peer/v1/tensor", "application/octet-stream",
                           "\0\0\0\0", 4, headers, &answer);

      assert_error_answer (status, answer, bypasses[b].needle);
      g_assert_nonnull (strstr (answer, "X-Exo-Params"));
      assert_node_up (f);
    }
}

static void
test_http_values (Fixture       *f,
                  gconstpointer  data)
{
#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
#define PROMPT "\"shard\":{\"model_id\":\"dummy\",\"start_layer\":0,\"end_layer\":7,\"n_layers\":16}," \
               "\"prompt\":\"p\",\"request_id\":\"r\""
  static const struct { const char *path; const char *body; const char *needle; } cases[] = {
    { "/v1/chat/completions", "{" MSG ",\"temperature\":-1e308}", "'temperature' is out of range (0 to 2)" },
    { "/v1/chat/completions", "{" MSG ",\"temperature\":2.5}", "'temperature' is out of range (0 to 2)" },
    { "/v1/chat/completions", "{" MSG ",\"temperature\":1e999}", "too large for a double" },
    { "/v1/chat/completions", "{" MSG ",\"max_tokens\":\"ten\"}", "'max_tokens' must be an integer" },
    { "/v1/chat/completions", "{" MSG ",\"max_tokens\":[1]}", "'max_tokens' must be an integer" },
    { "/v1/chat/completions", "{" MSG ",\"max_tokens\":10.5}", "'max_tokens' must be an integer" },
    { "/v1/chat/completions", "{" MSG ",\"max_tokens\":0}", "'max_tokens' is out of range (1 to 1048576)" },
    { "/v1/chat/completions", "{" MSG ",\"max_tokens\":18446744073709551617}", "64-bit range" },
    { "/v1/chat/completions", "{" MSG ",\"max_completion_tokens\":-5}", "'max_completion_tokens' is out of range" },
    { "/v1/chat/completions", "{" MSG ",\"top_p\":1.5}", "'top_p' is out of range (0 to 1)" },
    { "/v1/chat/completions", "{" MSG ",\"top_p\":\"all\"}", "'top_p' must be a number" },
    { "/v1/chat/completions", "{" MSG ",\"n\":3}", "'n' must be 1" },
    { "/v1/chat/completions", "{" MSG ",\"stop\":7}", "'stop' must be a string" },
    { "/v1/chat/completions", "{" MSG "}{" MSG "}", "after the top-level value" },
    { "/v1/chat/completions", "{" MSG "} // comment", "after the top-level value" },
    { "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800\"}]}",
      "lone UTF-16 surrogate \\\\ud800" },
    { "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", "\\\\u0000" },
    { "/peer/v1/result", "{\"request_id\":\"r\",\"result\":[9223372036854775808],\"is_finished\":true}",
      "64-bit range" },
    { "/peer/v1/topology", "{\"visited\":[],\"max_depth\":1}{\"visited\":[],\"max_depth\":64}",
      "after the top-level value" },
    { "/peer/v1/prompt", "{" PROMPT ",\"params\":{\"top_p\":0}}",
      "field 'params': field 'top_p' is out of range" },
    { "/peer/v1/prompt", "{" PROMPT ",\"params\":{\"temperature\":-1e308}}",
      "field 'params': field 'temperature' is out of range (0 to 2)" },
    { "/peer/v1/prompt", "{" PROMPT ",\"params\":{\"max_tokens\":18446744073709551617}}", "64-bit range" },
    { "/peer/v1/prompt", "{" PROMPT ",\"params\":{\"seed\":9223372036854775808}}", "64-bit range" },
    { "/peer/v1/prompt", "{" PROMPT ",\"params\":\"greedy\"}", "field 'params' must be an object" },
  };
#undef MSG
#undef PROMPT

  if (!have_daemon (f))
    return;

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *answer = NULL;
      guint status = post_json (f, cases[i].path, cases[i].body, strlen (cases[i].body), &answer);

      g_test_message ("%s %s: %u %s", cases[i].path, cases[i].body, status, answer);
      assert_error_answer (status, answer, cases[i].needle);
    }

  /* The good values still work. */
  {
    static const char good[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                               "\"temperature\":0.7,\"top_p\":1,\"max_tokens\":16,\"n\":1,"
                               "\"stop\":[\"\\n\"],\"seed\":-3,\"user\":\"u\"}";
    g_autofree char *answer = NULL;
    guint status = post_json (f, "/v1/chat/completions", good, strlen (good), &answer);

    g_assert_cmpuint (status, ==, 200);
    g_assert_nonnull (strstr (answer, "chat.completion"));
  }
  assert_node_up (f);
}

static void
send_datagram (GSocket     *socket,
               guint16      port,
               const char  *data,
               gsize        len)
{
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new (lo, port);
  g_autoptr(GError) error = NULL;
  g_autofree char *nonce = exo_cluster_auth_new_nonce ();
  g_autofree char *prefix = g_strdup_printf ("EXO-AUTH v1 ts=%" G_GINT64_FORMAT " nonce=%s addrs=127.0.0.1",
                                             g_get_real_time (), nonce);
  g_autoptr(GByteArray) covered = g_byte_array_new ();
  g_autofree char *mac = NULL;
  g_autoptr(GString) datagram = NULL;

  /* the envelope of docs/cluster-protocol.md around the hostile message */
  g_byte_array_append (covered, (const guint8 *) "exo-discovery-v1\n", 17);
  g_byte_array_append (covered, (const guint8 *) prefix, strlen (prefix));
  g_byte_array_append (covered, (const guint8 *) "\n", 1);
  g_byte_array_append (covered, (const guint8 *) data, len);
  mac = exo_cluster_key_sign (hostile_key, covered->data, covered->len);
  datagram = g_string_new (prefix);
  g_string_append_printf (datagram, " mac=%s\n", mac);
  g_string_append_len (datagram, data, (gssize) len);

  g_socket_send_to (socket, to, datagram->str, datagram->len, NULL, &error);
  g_assert_no_error (error);
}

static gboolean
wait_metric_at_least (Fixture    *f,
                      const char *sample,
                      gint64      value)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  while (metric (f, sample) < value)
    {
      if (g_get_monotonic_time () > deadline)
        return FALSE;
      g_usleep (20000);
    }
  return TRUE;
}

#define DROPPED_INVALID "exo_discovery_dropped_messages_total{id=\"discovery\",reason=\"invalid\"}"

static void
test_discovery (Fixture       *f,
                gconstpointer  data)
{
#define HEAD "{\"type\":\"discovery\",\"node_id\":\"evil\",\"grpc_port\":1"
  static const char * const messages[] = {
    HEAD ",\"device_capabilities\":{\"model\":\"\\ud800\"}}",          /* lone surrogate */
    HEAD ",\"device_capabilities\":{\"chip\":\"\\udc00x\"}}",
    HEAD ",\"device_capabilities\":{\"flops\":{\"fp32\":1e999}}}",      /* inf */
    HEAD ",\"device_capabilities\":{\"flops\":{\"fp32\":-1}}}",
    HEAD ",\"device_capabilities\":{\"flops\":{\"fp16\":1e17}}}",       /* 1e+17.0 */
    HEAD ",\"device_capabilities\":{\"memory\":18446744073709551617}}",  /* wraps to 1 */
    HEAD ",\"priority\":99999999999999999999}",
    HEAD "}" HEAD "}",
    HEAD ",\"instance_id\":'x'}",
  };
#undef HEAD
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, 0, NULL);
  gint64 dropped;
  guint n = 0;

  if (!have_daemon (f))
    return;
  g_assert_true (wait_metric_at_least (f, DROPPED_INVALID, 0));
  dropped = metric (f, DROPPED_INVALID);

  /* The bypass in a datagram (at most 4096 bytes). */
  {
    gsize len;
    g_autofree char *deep = nested ("/*\"*/", '[', 4000, &len);
    g_autofree char *quoted = nested ("'\"'", '[', 4000, &len);

    send_datagram (socket, f->udp_port, deep, strlen (deep));
    send_datagram (socket, f->udp_port, quoted, strlen (quoted));
    n += 2;
  }
  for (gsize i = 0; i < G_N_ELEMENTS (messages); i++)
    {
      send_datagram (socket, f->udp_port, messages[i], strlen (messages[i]));
      n++;
    }
  /* Each is dropped, counted, and never reaches GVariant (no critical:
   * exo-node runs with G_DEBUG=fatal-criticals). */
  g_assert_true (wait_metric_at_least (f, DROPPED_INVALID, dropped + n));
  g_assert_cmpint (metric (f, DROPPED_INVALID), ==, dropped + n);
  /* …and again a few announcement periods later: no peer "evil" came of them. */
  g_usleep (500 * 1000);
  assert_node_up (f);
  {
    g_autofree char *topology = NULL;

    g_assert_cmpuint (http (f, "GET", "/v1/topology", NULL, NULL, 0, NULL, &topology), ==, 200);
    g_assert_null (strstr (topology, "evil"));
  }
  {
    g_autofree char *log = node_log (f);
    g_assert_null (strstr (log, "CRITICAL"));
  }
}

/* GET /v1/topology, checked as strict JSON; the text is returned. */
static char *
node_topology (Fixture *f)
{
  g_autofree char *body = NULL;
  g_autoptr(GError) error = NULL;
  guint line = 0, column = 0;

  g_assert_cmpuint (http (f, "GET", "/v1/topology", NULL, NULL, 0, NULL, &body), ==, 200);
  if (!exo_json_validate (body, strlen (body), 32, &line, &column, &error))
    g_error ("the node wrote invalid JSON at %u:%u (%s): %s", line, column, error->message, body);
  return g_steal_pointer (&body);
}

/* org.exo.Node1.Topology on the node's bus: the node plugin's own JSON of
 * its topology (its `topology` property). */
static char *
dbus_topology (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) value = NULL;

  bus = g_dbus_connection_new_for_address_sync (f->bus_address,
                                                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                NULL, NULL, &error);
  g_assert_no_error (error);
  reply = g_dbus_connection_call_sync (bus, "org.exo.Node1", "/org/exo/Node1",
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", "org.exo.Node1", "Topology"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, 10000,
                                       NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return g_variant_dup_string (value, NULL);
}

/* GET /v1/topology (the http-server's JSON of the node's typed topology)
 * and the D-Bus Topology (the node plugin's JSON) are the same text, once
 * the bus has caught up. */
static void
assert_topology_agrees (Fixture *f)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  for (;;)
    {
      g_autofree char *http_text = node_topology (f);
      g_autofree char *dbus_text = dbus_topology (f);

      if (g_str_equal (http_text, dbus_text))
        return;
      if (g_get_monotonic_time () > deadline)
        g_error ("GET /v1/topology and D-Bus Topology differ:\n%s\n%s", http_text, dbus_text);
      g_usleep (50000);
    }
}

static void
test_peer_topology (Fixture       *f,
                    gconstpointer  data)
{
  gsize len;

  /* The fake peer holds the cluster key and signs its hostile answers, as
   * a compromised member of the cluster would (unsigned answers are refused
   * before parsing: /http/auth/answer-unsigned). */
  g_autofree char *deep_comment = nested ("/*\"*/", '[', DEEP, &len);
  g_autofree char *deep_quote = nested ("'\"'", '[', DEEP, &len);
  g_autofree char *deep = nested ("{\"nodes\":", '[', DEEP, &len);
#define CAPS(memory, fp32) \
  "{\"nodes\":{\"fake-peer\":{\"model\":\"m\",\"chip\":\"c\",\"memory\":" memory "," \
  "\"flops\":{\"fp32\":" fp32 ",\"fp16\":0,\"int8\":0}}},\"peer_graph\":{},\"active_node_id\":null}"
  const char *answers[] = {
    deep_comment, deep_quote, deep,
    CAPS ("1e300", "1"),                 /* a cast of 1e300 to guint64 */
    CAPS ("18446744073709551617", "1"),  /* json-glib: 1 */
    CAPS ("1024", "1e999"),              /* inf.0 */
    CAPS ("1024", "1e17"),               /* 1e+17.0 */
    "{\"nodes\":{\"\\ud800\":{\"memory\":1}},\"peer_graph\":{}}",
    CAPS ("1024", "1") " trailing",
    /* valid, but json-glib writes U+001F back unescaped */
    "{\"nodes\":{\"fake-peer\":{\"model\":\"a\\u001fb\",\"chip\":\"c\",\"memory\":1024,"
    "\"flops\":{\"fp32\":1,\"fp16\":0,\"int8\":0}}},\"peer_graph\":{},\"active_node_id\":null}",
  };
  const char *health_tiny =
    "{\"status\":\"ok\",\"node_id\":\"fake-peer\",\"device_capabilities\":"
    "{\"model\":\"m\",\"chip\":\"c\",\"memory\":1024,\"flops\":{\"fp32\":1e-8,\"fp16\":0,\"int8\":0}}}";
  g_autofree char *topology = NULL;
  gint64 deadline;

  if (!have_daemon (f))
    return;

  /* GET /v1/models: the text the node plugin wrote itself before plugin
   * ABI 3.0, now the http-server's JSON of the node's typed models;
   * "created" is when the node started serving (seconds). */
  {
    g_autofree char *models = NULL;
    g_autofree char *expected = NULL;
    gint64 created = 0;
    const char *at;
    gint64 until = g_get_monotonic_time () + WAIT_MS * 1000;
    guint status;

    /* the fixture waited for /healthcheck, which answers before the node
     * is ready (503 until then) */
    while ((status = http (f, "GET", "/v1/models", NULL, NULL, 0, NULL, &models)) == 503 &&
           g_get_monotonic_time () < until)
      {
        g_clear_pointer (&models, g_free);
        g_usleep (20000);
      }
    g_assert_cmpuint (status, ==, 200);
    at = strstr (models, "\"created\":");
    g_assert_nonnull (at);
    created = g_ascii_strtoll (at + strlen ("\"created\":"), NULL, 10);
    g_assert_cmpint (created, <=, g_get_real_time () / G_USEC_PER_SEC);
    g_assert_cmpint (created, >, g_get_real_time () / G_USEC_PER_SEC - 600);
    expected = g_strdup_printf ("{\"object\":\"list\",\"data\":[{\"id\":\"dummy\",\"object\":\"model\","
                                "\"created\":%" G_GINT64_FORMAT ",\"owned_by\":\"exo\",\"n_layers\":16,"
                                "\"ready\":true}]}", created);
    g_assert_cmpstr (models, ==, expected);
  }

  for (gsize i = 0; i < G_N_ELEMENTS (answers); i++)
    {
      guint seen;

      fake_peer_set (&f->peer, NULL, answers[i]);
      seen = fake_peer_topology_count (&f->peer);
      deadline = g_get_monotonic_time () + WAIT_MS * 1000;
      /* Twice: the second request comes after the first answer was parsed. */
      while (fake_peer_topology_count (&f->peer) < seen + 2)
        {
          if (g_get_monotonic_time () > deadline)
            {
              g_autofree char *log = node_log (f);
              g_error ("the node did not ask the fake peer for its topology; its log:\n%s", log);
            }
          g_usleep (20000);
        }
      assert_node_up (f);
      assert_topology_agrees (f);
    }

  /* Flops that json-glib used to write as 1e-08.0. */
  fake_peer_set (&f->peer, health_tiny, CAPS ("1024", "1e-8"));
#undef CAPS
  deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  for (;;)
    {
      topology = node_topology (f);
      /* the fake peer's own report was merged */
      if (strstr (topology, "\"fake-peer\":{\"model\":\"m\",\"chip\":\"c\",\"memory\":1024,") != NULL)
        break;
      g_clear_pointer (&topology, g_free);
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (50000);
    }
  g_test_message ("%s", topology);
  g_assert_null (strstr (topology, "e-08"));
  assert_node_up (f);
  assert_topology_agrees (f);
  /* every request the node sent was signed: the answers were what it parsed */
  g_mutex_lock (&f->peer.lock);
  g_assert_cmpuint (f->peer.n_unsigned, ==, 0);
  g_mutex_unlock (&f->peer.lock);
}

static void
test_check_config (Fixture       *f,
                   gconstpointer  data)
{
  static const struct { const char *prefix; const char *needle; } files[] = {
    { "{\n\"resources\": [], \"x\": /*\"*/", "comments are not JSON" },
    { "{\n\"resources\": [], \"x\": '\"'", "single quotes" },
    { "{\n\"resources\": [], \"x\": ", "nested deeper than the limit of 32 levels" },
  };

  if (!have_daemon (f))
    return;

  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      gsize len;
      g_autofree char *text = nested (files[i].prefix, '[', DEEP, &len);
      g_autofree char *path = g_build_filename (f->tmpdir, "deep.json", NULL);
      g_autofree char *log_path = g_build_filename (f->tmpdir, "check.log", NULL);
      g_autofree char *expected = g_strdup_printf ("exo-node: %s:2: ", path);
      g_autofree char *log = NULL;
      g_autoptr(GSubprocess) proc = NULL;
      const char *argv[] = { f->exo_node, "--plugin-dir", f->plugin_dir, "--check-config", path, NULL };

      g_assert_true (g_file_set_contents (path, text, (gssize) len, NULL));
      proc = spawn (f, argv, log_path, G_SUBPROCESS_FLAGS_NONE);
      g_assert_true (g_subprocess_wait (proc, NULL, NULL));
      g_assert_true (g_file_get_contents (log_path, &log, NULL, NULL));
      g_test_message ("%s", log);
      g_assert_true (g_subprocess_get_if_exited (proc));   /* not a signal */
      g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 1);
      g_assert_nonnull (strstr (log, expected));
      g_assert_nonnull (strstr (log, files[i].needle));
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/hostile-json/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("http/deep", test_http_deep);
  ADD ("http/values", test_http_values);
  ADD ("discovery", test_discovery);
  ADD ("peer-topology", test_peer_topology);
  ADD ("check-config", test_check_config);

  return g_test_run ();
}
