/* test-http-server.c: the `http-server` plugin — ExoHttpServer and ExoHttpPeer.
 *
 * The plugin is loaded from the build tree (EXO_TEST_HTTP_PLUGIN) with the
 * real loader.  A fake ExoNodeRole (TestNode, in http-server-fixture.c) is
 * registered under the id the server looks up; the server listens on 127.0.0.1, port 0, in this
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
 * This file holds main(): it loads the plugin, sets the key and the log
 * capture, and registers the cases of each part, in this order:
 * test-http-server-{server,rpc,chat,openai,peer,auth}.c; the helpers they
 * share are in http-server-fixture.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-server-fixture.h"

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

  test_http_server_register_server ();
  test_http_server_register_rpc ();
  test_http_server_register_chat ();
  test_http_server_register_openai ();
  test_http_server_register_peer ();
  test_http_server_register_auth ();

  return g_test_run ();
}
