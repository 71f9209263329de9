/* daemon-fixture.h: what the parts of test-daemon share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program is test-daemon.c (main(), the default config, dependency
 * order, --check-config, settings, the cluster key) and
 * test-daemon-lifecycle.c (refused plugins, a taken bus name, Shutdown,
 * signals, usage errors), which registers its cases through
 * test_daemon_register_lifecycle().  daemon-fixture.c starts a private bus
 * and the real exo-node, and asks it over D-Bus.  One thread: the test
 * spins its thread-default main context while it waits for the node.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct
{
  GSubprocess *bus;
  char        *bus_address;
  char        *tmpdir;
  const char  *exo_node;
  const char  *plugin_dir;
} Fixture;

typedef struct
{
  GSubprocess *proc;
  char        *log_path;
} Node;

extern const char engine_config[];

void fixture_setup (Fixture *f, gconstpointer data);
void fixture_teardown (Fixture *f, gconstpointer data);
gboolean have_daemon (Fixture *f);
gboolean can_isolate (void);
char *write_file (Fixture *f, const char *name, const char *contents);
Node *node_start (Fixture *f, const char *log_name, ...);
Node *node_start_isolated (Fixture *f, const char *log_name, ...);
char *node_log (Node *node);
int node_wait (Node *node, guint timeout_ms);
void node_free (Node *node);
GDBusConnection *client (Fixture *f);
gboolean wait_node_ready (GDBusConnection *c, const char *bus_name, guint timeout_ms);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

/* The cases of each part of the program; main() calls these in order. */
void test_daemon_register_lifecycle (void);

G_END_DECLS
