/* network-resource-fixture.h: what the parts of test-network-resource share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program is test-network-resource.c (main(), connecting, a subclass
 * that drops its task) and test-network-resource-operations.c, which
 * registers its cases through test_network_register_operations().
 * network-resource-fixture.c has an echo server on 127.0.0.1, TestConn (an
 * ExoNetworkResource over GSocketClient) and the helpers around them.  One
 * thread: server, connection and test share the thread-default main
 * context, which the helpers spin.
 */
#pragma once

#include "exo-test-util.h"

G_BEGIN_DECLS

#define TEST_TYPE_CONN (test_conn_get_type ())
G_DECLARE_FINAL_TYPE (TestConn, test_conn, TEST, CONN, ExoNetworkResource)

struct _TestConn
{
  ExoNetworkResource  parent_instance;
  GSocketClient      *client;
  GSocketConnection  *connection;
  GDataInputStream   *input;
  guint               n_connect_calls;
  guint               n_disconnect_calls;
};

#define WAIT_MS 20000

typedef struct _EchoServer EchoServer;

struct _EchoServer
{
  GSocketService *service;
  char           *address;    /* "127.0.0.1:PORT" */
  GPtrArray      *conns;      /* EchoConn*, the open ones */
  guint           n_accepted;
};

EchoServer *echo_server_new (void);
void echo_server_drop_all (EchoServer *server);
void echo_server_free (EchoServer *server);
GSocket *refusing_port_new (char **address);
TestConn *test_conn_new (const char *id,
                         const char *address,
                         guint       max_retries);
guint64 metric_u64 (gpointer    resource,
                    const char *key);
gint64 metric_time (gpointer    resource,
                    const char *key);
char *run_sync (TestConn         *conn,
                ExoOperationFunc  func,
                gpointer          data,
                guint             attempt_timeout_ms,
                GError          **error);
void state_log_cb (ExoResource      *resource,
                   ExoResourceState  old_state,
                   ExoResourceState  new_state,
                   gpointer          user_data);
void close_and_free (TestConn *conn);

/* The cases of each part of the program; main() calls these in order. */
void test_network_register_operations (void);

G_END_DECLS
