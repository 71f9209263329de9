/* cluster-fixture.h: what the parts of test-cluster share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program is test-cluster.c (main(), the three-process scenario on
 * loopback and in network namespaces), test-cluster-security.c (the cluster
 * key) and test-cluster-node.c (the node resource in this process); the
 * parts register their cases through the test_cluster_register_*()
 * functions below.  The processes, configs, bus and namespaces are
 * cluster-harness.c's; cluster-fixture.c adds the checked chat completion.
 * One thread, the test's.
 */
#pragma once

#include "cluster-harness.h"

#include <glib/gstdio.h>

#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

G_BEGIN_DECLS

#define RING_3 "node-1:0-7,node-3:8-11,node-2:12-15"
#define RING_2 "node-1:0-9,node-2:10-15"

/* The body of a plain chat completion request for the dummy engine. */
const char *chat_body (void);
gboolean chat_ok_with (Cluster    *c,
                       Node       *n,
                       const char *extra,
                       guint       expected_tokens,
                       char      **why);
gboolean chat_ok (Cluster *c,
                  Node    *n,
                  guint    expected_tokens,
                  char   **why);

/* The plugins loaded in this process by test-cluster-node.c (NULL: not
 * loaded yet); main() drops it at the end. */
extern ExoPluginLoader *loader;

/* The cases of each part of the program; main() calls these in order. */
void test_cluster_register_node (void);
void test_cluster_register_security (void);

G_END_DECLS
