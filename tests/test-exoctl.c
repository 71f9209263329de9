/* test-exoctl.c: the exoctl binary against a fake exo-node on a private bus
 * (exoctl-fake-node.c): each test runs the real exoctl (path in $EXOCTL) as
 * a subprocess and checks its exit status, its tables and its JSON.  The
 * commands for scripts, the pager, the width and the bash completion are
 * tested in test-exoctl-scripts.c, exoctl against the real exo-node in
 * test-exoctl-node.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "exoctl-fake-node.h"

/* ---------------------------------------------------------------- tests */

static void
test_usage (void)
{
  struct { const char *args[5]; const char *message; } cases[] = {
    { { NULL }, "no command given" },
    { { "frobnicate", NULL }, "unknown command 'frobnicate'" },
    { { "status", NULL }, "missing resource ID" },
    { { "start", NULL }, "missing resource ID" },
    { { "is-active", NULL }, "missing resource ID" },
    { { "is-failed", "-q", NULL }, "missing resource ID" },
    { { "restart", "engine", "", NULL }, "an empty resource ID" },
    { { "list", "-p", "State", NULL }, "options of show" },
    { { "status", "engine", "--value", NULL }, "options of show" },
    { { "show", "-p", ",", "engine", NULL }, "needs a property name" },
    { { "--json", "show", "engine", NULL }, "does not print JSON" },
    { { "--json", "is-active", "engine", NULL }, "does not print JSON" },
    { { "list", "extra", NULL }, "unexpected argument 'extra'" },
    { { "--bogus", "list", NULL }, "--bogus" },
    { { "--session", "--system", "list", NULL }, "exclude each other" },
    { { "watch", "--count", "0", NULL }, "--count" },
    { { "watch", "--count", "many", NULL }, "--count" },
    { { "watch", "--timeout", "-1", NULL }, "--timeout" },
    { { "list", "--count", "2", NULL }, "options of watch" },
    { { "--bus-name", "not a name", "list", NULL }, "not a valid bus name" },
  };

  fake_reset ();
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(Run) run = run_envv (NULL, cases[i].args);
      g_auto(GStrv) lines = g_strsplit (run->err, "\n", -1);

      g_assert_cmpint (run->status, ==, 2);
      g_assert_cmpstr (run->out, ==, "");
      g_assert_true (g_str_has_prefix (lines[0], "exoctl: "));
      g_assert_nonnull (strstr (lines[0], cases[i].message));
      g_assert_nonnull (strstr (run->err, "Usage: exoctl"));
    }

  /* Nothing reached the node. */
  g_assert_cmpuint (fake.calls->len, ==, 0);

  {
    g_autoptr(Run) run = EXOCTL ("--help");
    const char *commands[] = { "list", "status ID...", "show [ID...]", "is-active ID...",
                               "is-failed ID...", "health", "start ID...", "stop ID...",
                               "restart ID...", "tree", "watch", "plugins", "node" };
    const char *options[] = { "--json", "--bus-name", "--property", "--value", "--quiet",
                              "--no-pager", "--no-legend", "--full" };
    g_auto(GStrv) lines = NULL;

    g_assert_cmpint (run->status, ==, 0);
    for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
      g_assert_nonnull (strstr (run->out, commands[i]));
    for (guint i = 0; i < G_N_ELEMENTS (options); i++)
      g_assert_nonnull (strstr (run->out, options[i]));
    /* the help fits an 80-column terminal */
    lines = g_strsplit (run->out, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++)
      g_assert_cmpint (g_utf8_strlen (lines[i], -1), <=, 80);
  }
  {
    g_autoptr(Run) run = EXOCTL ("--version");
    g_assert_cmpint (run->status, ==, 0);
    g_assert_true (g_str_has_prefix (run->out, "exoctl "));
  }
}

/* No node: exit 1, as systemctl's "Failed to connect to bus" (3 would be
 * "not active"). */
static void
test_not_running (void)
{
  const char *commands[][3] = {
    { "list", NULL }, { "status", "engine", NULL }, { "health", NULL }, { "start", "engine", NULL },
    { "tree", NULL }, { "watch", NULL }, { "plugins", NULL }, { "node", NULL },
    { "show", NULL }, { "show", "engine", NULL }, { "is-active", "engine", NULL },
    { "is-failed", "engine", NULL }, { "restart", "engine", NULL },
  };

  fake_reset ();
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      const char *args[6] = { "--bus-name", "org.exo.Nobody", commands[i][0], commands[i][1], NULL };
      g_autoptr(Run) run = run_envv (NULL, args);

      g_assert_cmpint (run->status, ==, 1);
      g_assert_cmpstr (run->out, ==, "");
      g_assert_cmpstr (run->err, ==,
                       "exoctl: no exo-node is running on the session bus (name org.exo.Nobody)\n");
    }

  /* No bus at all. */
  {
    const char *env[] = { "DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/exoctl-test", NULL };
    const char *args[] = { "list", NULL };
    g_autoptr(Run) run = run_envv (env, args);
    g_assert_cmpint (run->status, ==, 1);
    g_assert_true (g_str_has_prefix (run->err, "exoctl: no exo-node is running on the session bus "
                                               "(name org.exo.Node1)"));
    g_assert_cmpuint (strlen (run->err), ==, strcspn (run->err, "\n") + 1);   /* one line */
  }
}

static void
test_list (void)
{
  g_autoptr(Run) run = NULL;
  g_auto(GStrv) lines = NULL;
  g_auto(GStrv) header = NULL;

  fake_reset ();
  fake_set_state ("discovery", "error", "bind to port 5678 failed: Address already in use");
  run = EXOCTL ("list");
  g_assert_cmpint (run->status, ==, 0);

  lines = g_strsplit (run->out, "\n", -1);
  header = words (lines[0]);
  g_assert_cmpstr (header[0], ==, "ID");
  g_assert_cmpstr (header[1], ==, "TYPE");
  g_assert_cmpstr (header[2], ==, "STATE");
  g_assert_cmpstr (header[3], ==, "HEALTHY");
  g_assert_cmpstr (header[4], ==, "ERRORS");
  g_assert_cmpstr (header[5], ==, "LAST");

  for (guint i = 0; i < N_FAKE; i++)
    {
      g_autofree char *row = row_of (run->out, fake_specs[i].id);
      g_auto(GStrv) w = NULL;
      gboolean is_discovery = g_str_equal (fake_specs[i].id, "discovery");

      g_assert_nonnull (row);
      w = words (row);
      g_assert_cmpstr (w[1], ==, fake_specs[i].type);
      g_assert_cmpstr (w[2], ==, is_discovery ? "error" : "ready");
      g_assert_cmpstr (w[3], ==, is_discovery ? "no" : "yes");
      g_assert_cmpstr (w[4], ==, is_discovery ? "1" : "0");
      if (is_discovery)
        g_assert_nonnull (strstr (row, "bind to port 5678 failed: Address already in use"));
      else
        g_assert_cmpstr (w[5], ==, "-");
    }
  /* Columns are aligned: STATE starts at the same offset in every row. */
  {
    const char *state_col = strstr (lines[0], "STATE");
    gsize offset = (gsize) (state_col - lines[0]);

    for (guint i = 1; i <= N_FAKE; i++)
      g_assert_true (g_str_has_prefix (lines[i] + offset, "ready") ||
                     g_str_has_prefix (lines[i] + offset, "error"));
  }
  g_assert_nonnull (strstr (run->out, "8 resources listed."));
  /* not a tty: no colours */
  g_assert_null (strchr (run->out, '\033'));
}

static void
test_list_json (void)
{
  g_autoptr(Run) run = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonArray *array;
  JsonObject *o;
  JsonObject *pool;
  JsonObject *metrics;

  fake_reset ();
  run = EXOCTL ("--json", "list");
  g_assert_cmpint (run->status, ==, 0);
  root = parse_json (run->out);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (root));
  array = json_node_get_array (root);
  g_assert_cmpuint (json_array_get_length (array), ==, N_FAKE);

  for (guint i = 0; i < N_FAKE; i++)
    {
      const char *keys[] = { "id", "type", "display_name", "state", "healthy", "last_error",
                             "error_count", "attempts", "state_changed_at", "initialized_at",
                             "depends_on", "metrics" };

      o = find_by_id (array, fake_specs[i].id);
      g_assert_nonnull (o);
      for (guint k = 0; k < G_N_ELEMENTS (keys); k++)
        g_assert_true (json_object_has_member (o, keys[k]));
      g_assert_cmpstr (json_object_get_string_member (o, "type"), ==, fake_specs[i].type);
      g_assert_cmpstr (json_object_get_string_member (o, "display_name"), ==, fake_specs[i].display_name);
      g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "ready");
      g_assert_true (json_object_get_boolean_member (o, "healthy"));
      g_assert_cmpint (json_object_get_int_member (o, "state_changed_at"), >, 0);
      g_assert_true (strv_array_equal (json_object_get_array_member (o, "depends_on"),
                                       fake_specs[i].depends_on));
      g_assert_true (json_object_has_member (o, "members") == (fake_specs[i].members[0] != NULL));
      if (fake_specs[i].members[0] != NULL)
        g_assert_true (strv_array_equal (json_object_get_array_member (o, "members"),
                                         fake_specs[i].members));
      g_assert_true (json_object_has_member (o, "pool") == fake_specs[i].pool);
    }

  o = find_by_id (array, "workers");
  pool = json_object_get_object_member (o, "pool");
  g_assert_cmpint (json_object_get_int_member (pool, "min_size"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (pool, "max_size"), ==, 8);
  g_assert_cmpint (json_object_get_int_member (pool, "size"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (pool, "idle"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (pool, "in_use"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (pool, "waiting"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (pool, "acquired"), ==, 10);
  g_assert_cmpint (json_object_get_int_member (pool, "timeouts"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (pool, "created"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (pool, "destroyed"), ==, 0);

  o = find_by_id (array, "engine");
  metrics = json_object_get_object_member (o, "metrics");
  g_assert_cmpint (json_object_get_int_member (metrics, "requests"), ==, 12);
  g_assert_cmpstr (json_object_get_string_member (metrics, "model"), ==, "llama-3.2-1b");
  g_assert_cmpstr (json_object_get_string_member (o, "last_error"), ==, "");
  g_assert_cmpint (json_object_get_int_member (o, "error_count"), ==, 0);

  /* The id comes from the Id property, not from the escaped path. */
  o = find_by_id (array, "peer-1");
  g_assert_nonnull (o);
}

static void
test_status (void)
{
  fake_reset ();
  fake_set_state ("engine", "degraded", "model not loaded");

  {
    /* not ready: exit 3, as `systemctl status` for a unit not active */
    g_autoptr(Run) run = EXOCTL ("status", "engine");

    g_assert_cmpint (run->status, ==, 3);
    g_assert_cmpstr (run->err, ==, "");
    g_assert_nonnull (strstr (run->out, "engine"));
    g_assert_nonnull (strstr (run->out, "Type: dummy-inference\n"));
    g_assert_nonnull (strstr (run->out, "Display name: Dummy inference engine\n"));
    g_assert_nonnull (strstr (run->out, "State: degraded\n"));
    g_assert_nonnull (strstr (run->out, "Healthy: no\n"));
    g_assert_nonnull (strstr (run->out, "Last error: model not loaded\n"));
    g_assert_nonnull (strstr (run->out, "Errors: 1\n"));
    g_assert_nonnull (strstr (run->out, "Attempts: 0\n"));
    g_assert_nonnull (strstr (run->out, "State changed: "));
    g_assert_nonnull (strstr (run->out, "Initialized: "));
    g_assert_nonnull (strstr (run->out, "Depends on: -\n"));
    g_assert_nonnull (strstr (run->out, "Metrics: model: llama-3.2-1b\n"));
    g_assert_nonnull (strstr (run->out, "requests: "));
    g_assert_nonnull (strstr (run->out, "12"));
    g_assert_nonnull (strstr (run->out, "Object path: /org/exo/Node1/resource/engine\n"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("status", "node");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (strstr (run->out, "Depends on: engine, server, discovery\n"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("status", "peers");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (strstr (run->out, "Members: peer-1\n"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("status", "workers");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (strstr (run->out, "Pool: size 3 (min 1, max 8), idle 2, in use 1, waiting 0\n"));
    g_assert_nonnull (strstr (run->out, "acquired 10, timeouts 1, created 3, destroyed 0\n"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("status", "engine", "--json");
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonObject *o;

    g_assert_cmpint (run->status, ==, 3);
    g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
    o = json_node_get_object (root);
    g_assert_cmpstr (json_object_get_string_member (o, "id"), ==, "engine");
    g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "degraded");
    g_assert_false (json_object_get_boolean_member (o, "healthy"));
    g_assert_cmpstr (json_object_get_string_member (o, "last_error"), ==, "model not loaded");
    g_assert_cmpint (json_object_get_int_member (o, "error_count"), ==, 1);
  }
  {
    g_autoptr(Run) run = EXOCTL ("status", "nope");

    g_assert_cmpint (run->status, ==, 4);
    g_assert_cmpstr (run->out, ==, "");
    g_assert_cmpstr (run->err, ==, "exoctl: no resource 'nope'\n");
  }
}

/* status ID...: a block per id with a blank line between, a missing id
 * reported and skipped; the exit status is the highest (0 all ready, 3 one
 * not ready, 4 one missing). */
static void
test_status_several (void)
{
  fake_reset ();
  {
    g_autoptr(Run) run = EXOCTL ("status", "server", "peer-1");
    const char *second = NULL;

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->err, ==, "");
    g_assert_true (g_str_has_prefix (run->out, "● server — HTTP server\n"));
    second = strstr (run->out, "\n\n● peer-1 — Peer 1\n");
    g_assert_nonnull (second);
    g_assert_nonnull (strstr (run->out, "Object path: /org/exo/Node1/resource/server\n"));
    g_assert_nonnull (strstr (second, "Object path: /org/exo/Node1/resource/peer_2d1\n"));
  }

  fake_set_state ("engine", "degraded", "model not loaded");
  {
    g_autoptr(Run) run = EXOCTL ("status", "server", "engine");

    g_assert_cmpint (run->status, ==, 3);
    g_assert_nonnull (strstr (run->out, "State: degraded\n"));
    g_assert_nonnull (strstr (run->out, "HTTP server"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("status", "server", "nope", "engine", "nope-2");

    g_assert_cmpint (run->status, ==, 4);
    g_assert_cmpstr (run->err, ==, "exoctl: no resource 'nope'\nexoctl: no resource 'nope-2'\n");
    g_assert_nonnull (strstr (run->out, "● server"));
    g_assert_nonnull (strstr (run->out, "● engine"));
  }
  {
    /* --json: one object per id, one after the other (what jq reads) */
    g_autoptr(Run) run = EXOCTL ("--json", "status", "server", "engine");
    g_autoptr(JsonParser) parser = json_parser_new ();
    const char *second = strstr (run->out, "}\n{");
    g_autofree char *first = NULL;
    g_autoptr(JsonNode) a = NULL;
    g_autoptr(JsonNode) b = NULL;

    g_assert_cmpint (run->status, ==, 3);
    g_assert_nonnull (second);
    first = g_strndup (run->out, (gsize) (second - run->out) + 1);
    a = parse_json (first);
    b = parse_json (second + 2);
    g_assert_cmpstr (json_object_get_string_member (json_node_get_object (a), "id"), ==, "server");
    g_assert_cmpstr (json_object_get_string_member (json_node_get_object (b), "id"), ==, "engine");
  }
}

static void
test_health (void)
{
  fake_reset ();
  {
    g_autoptr(Run) run = EXOCTL ("health");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (strstr (run->out, "healthy"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("--json", "health");
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonObject *o = json_node_get_object (root);

    g_assert_cmpint (run->status, ==, 0);
    g_assert_true (json_object_get_boolean_member (o, "healthy"));
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o, "unhealthy")), ==, 0);
  }

  fake_set_state ("engine", "degraded", "model not loaded");
  {
    g_autoptr(Run) run = EXOCTL ("health");
    g_autofree char *row = NULL;
    g_auto(GStrv) w = NULL;

    g_assert_cmpint (run->status, ==, 1);
    row = row_of (run->out, "engine");
    g_assert_nonnull (row);
    w = words (row);
    g_assert_cmpstr (w[1], ==, "degraded");
    g_assert_nonnull (strstr (row, "model not loaded"));
    g_assert_null (row_of (run->out, "server"));
    g_assert_nonnull (strstr (run->out, "1 of 8"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("--json", "health");
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonObject *o = json_node_get_object (root);
    const char *expected[] = { "engine", NULL };

    g_assert_cmpint (run->status, ==, 1);
    g_assert_false (json_object_get_boolean_member (o, "healthy"));
    g_assert_true (strv_array_equal (json_object_get_array_member (o, "unhealthy"), expected));
  }
}

static void
test_methods (void)
{
  struct { const char *command; const char *method; } cases[] = {
    { "start", "Initialize" }, { "stop", "Cleanup" }, { "restart", "Restart" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      fake_reset ();
      {
        g_autoptr(Run) run = EXOCTL (cases[i].command, "peer-1");
        g_autofree char *expected = g_strdup_printf ("%s peer-1", cases[i].method);

        g_assert_cmpint (run->status, ==, 0);
        g_assert_cmpstr (run->err, ==, "");
        g_assert_cmpuint (fake.calls->len, ==, 1);
        g_assert_cmpstr (g_ptr_array_index (fake.calls, 0), ==, expected);
      }
      {
        /* The node refuses: AccessDenied, on one line, exit 1. */
        g_autoptr(Run) run = EXOCTL (cases[i].command, "server");

        g_assert_cmpint (run->status, ==, 1);
        g_assert_true (g_str_has_prefix (run->err, "exoctl: "));
        g_assert_nonnull (strstr (run->err, "uid 4242 may not change resources of this node"));
        g_assert_cmpuint (strlen (run->err), ==, strcspn (run->err, "\n") + 1);
        g_assert_null (strstr (run->err, "GDBus.Error"));
      }
      {
        g_autoptr(Run) run = EXOCTL (cases[i].command, "discovery");

        g_assert_cmpint (run->status, ==, 1);
        g_assert_nonnull (strstr (run->err, "bind to port 5678 failed: Address already in use"));
        g_assert_cmpuint (strlen (run->err), ==, strcspn (run->err, "\n") + 1);   /* one line */
        g_assert_null (strchr (run->err, '\033'));                              /* no ESC */
        g_assert_null (strstr (run->err, "\302\233"));                           /* no 8-bit CSI */
      }
      {
        g_autoptr(Run) run = EXOCTL (cases[i].command, "nope");

        g_assert_cmpint (run->status, ==, 4);
        g_assert_cmpstr (run->err, ==, "exoctl: no resource 'nope'\n");
      }
      g_assert_cmpuint (fake.calls->len, ==, 3);
    }

  /* Several ids: each called in order; a missing one or a failure is
   * reported and the others still go; the exit status is the highest. */
  fake_reset ();
  {
    g_autoptr(Run) run = EXOCTL ("restart", "peer-1", "nope", "server", "engine");

    g_assert_cmpint (run->status, ==, 4);
    g_assert_true (g_str_has_prefix (run->err, "exoctl: no resource 'nope'\nexoctl: cannot restart 'server': "));
    g_assert_cmpuint (fake.calls->len, ==, 3);
    g_assert_cmpstr (g_ptr_array_index (fake.calls, 0), ==, "Restart peer-1");
    g_assert_cmpstr (g_ptr_array_index (fake.calls, 1), ==, "Restart server");
    g_assert_cmpstr (g_ptr_array_index (fake.calls, 2), ==, "Restart engine");
  }
  fake_reset ();
  {
    g_autoptr(Run) run = EXOCTL ("stop", "discovery", "engine");

    g_assert_cmpint (run->status, ==, 1);
    g_assert_nonnull (strstr (run->err, "cannot stop 'discovery'"));
    g_assert_cmpuint (fake.calls->len, ==, 2);
  }
  fake_reset ();
  {
    g_autoptr(Run) run = EXOCTL ("start", "engine", "peer-1");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->err, ==, "");
    g_assert_cmpuint (fake.calls->len, ==, 2);
    g_assert_cmpstr (g_ptr_array_index (fake.calls, 1), ==, "Initialize peer-1");
  }
}

static void
test_tree (void)
{
  fake_reset ();
  {
    g_autoptr(Run) run = EXOCTL ("tree");
    g_auto(GStrv) lines = NULL;
    int root_line = -1, peers_line = -1, peer_line = -1, node_line = -1;

    g_assert_cmpint (run->status, ==, 0);
    lines = g_strsplit (run->out, "\n", -1);
    g_assert_nonnull (strstr (lines[0], "root (group) ready"));
    for (int i = 0; lines[i] != NULL; i++)
      {
        if (strstr (lines[i], " root (") != NULL) root_line = i;
        if (strstr (lines[i], " peers (group)") != NULL) peers_line = i;
        if (strstr (lines[i], " peer-1 (peer)") != NULL) peer_line = i;
        if (strstr (lines[i], " node (node)") != NULL) node_line = i;
      }
    g_assert_cmpint (root_line, ==, 0);
    g_assert_cmpint (node_line, >, 0);
    g_assert_cmpint (peers_line, >, 0);
    g_assert_cmpint (peer_line, ==, peers_line + 1);
    /* peer-1 is nested deeper than peers */
    g_assert_cmpint (strstr (lines[peer_line], "peer-1") - lines[peer_line], >,
                     strstr (lines[peers_line], "peers") - lines[peers_line]);
    /* every resource appears */
    for (guint i = 0; i < N_FAKE; i++)
      {
        g_autofree char *needle = g_strdup_printf (" %s (%s)", fake_specs[i].id, fake_specs[i].type);
        g_assert_nonnull (strstr (run->out, needle));
      }
    /* dependencies hang under their dependents: server under discovery */
    {
      gboolean found = FALSE;
      for (int i = 1; lines[i] != NULL && lines[i + 1] != NULL; i++)
        if (strstr (lines[i], " discovery (") != NULL && strstr (lines[i + 1], " server (") != NULL &&
            strstr (lines[i + 1], "server") - lines[i + 1] > strstr (lines[i], "discovery") - lines[i])
          found = TRUE;
      g_assert_true (found);
    }
  }
  {
    g_autoptr(Run) run = EXOCTL ("tree", "--json");
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonArray *top;
    JsonObject *r, *peers, *node;
    JsonArray *members;
    const char *node_deps[] = { "engine", "server", "discovery", NULL };

    g_assert_cmpint (run->status, ==, 0);
    top = json_node_get_array (root);
    g_assert_cmpuint (json_array_get_length (top), ==, 1);
    r = json_array_get_object_element (top, 0);
    g_assert_cmpstr (json_object_get_string_member (r, "id"), ==, "root");
    members = json_object_get_array_member (r, "members");
    g_assert_cmpuint (json_array_get_length (members), ==, 6);
    peers = find_by_id (members, "peers");
    g_assert_nonnull (peers);
    g_assert_nonnull (find_by_id (json_object_get_array_member (peers, "members"), "peer-1"));
    node = find_by_id (members, "node");
    g_assert_true (strv_array_equal (json_object_get_array_member (node, "depends_on"), node_deps));
  }
}

static void
test_watch (void)
{
  const char *modes[] = { "text", "json" };

  for (guint m = 0; m < G_N_ELEMENTS (modes); m++)
    {
      gboolean json = g_str_equal (modes[m], "json");
      g_autoptr(Run) run = NULL;
      g_auto(GStrv) lines = NULL;
      ExoDBusResource1 *engine, *peer;
      int before;

      fake_reset ();
      engine = g_hash_table_lookup (fake.resources, "engine");
      peer = g_hash_table_lookup (fake.resources, "peer-1");

      before = g_atomic_int_get (&fake.gmo_calls);
      run = json ? run_start (NULL, (const char * const []) { "watch", "--json", "--count", "2", "--timeout", "60", NULL })
                 : run_start (NULL, (const char * const []) { "watch", "--count", "2", "--timeout", "60", NULL });

      /* exoctl subscribes before its GetManagedObjects: once that call is
       * here, the bus routes our signals to it. */
      while (g_atomic_int_get (&fake.gmo_calls) == before && !run->done)
        g_main_context_iteration (NULL, TRUE);
      g_assert_false (run->done);

      fake_set_state ("engine", "degraded", "model not loaded");
      exo_dbus_resource1_emit_state_changed (engine, "ready", "degraded", "model not loaded");
      fake_set_state ("peer-1", "closing", NULL);
      exo_dbus_resource1_emit_state_changed (peer, "ready", "closing", "");
      /* a third one must not be printed: --count 2 */
      exo_dbus_resource1_emit_state_changed (peer, "closing", "closed", "");

      g_assert_cmpint (run_wait (run), ==, 0);
      g_assert_cmpstr (run->err, ==, "");
      lines = g_strsplit (run->out, "\n", -1);
      g_assert_cmpuint (g_strv_length (lines), ==, 3);   /* two lines and "" */
      g_assert_cmpstr (lines[2], ==, "");

      if (!json)
        {
          g_auto(GStrv) w0 = words (lines[0]);
          g_auto(GStrv) w1 = words (lines[1]);

          /* time (date and clock), id, old → new, error */
          g_assert_true (g_regex_match_simple ("^\\d{4}-\\d\\d-\\d\\d$", w0[0], 0, 0));
          g_assert_true (g_regex_match_simple ("^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}$", w0[1], 0, 0));
          g_assert_cmpstr (w0[2], ==, "engine");
          g_assert_cmpstr (w0[3], ==, "ready");
          g_assert_cmpstr (w0[4], ==, "→");
          g_assert_cmpstr (w0[5], ==, "degraded");
          g_assert_nonnull (strstr (lines[0], "model not loaded"));
          g_assert_cmpstr (w1[2], ==, "peer-1");
          g_assert_cmpstr (w1[3], ==, "ready");
          g_assert_cmpstr (w1[5], ==, "closing");
          g_assert_null (w1[6]);
        }
      else
        {
          g_autoptr(JsonNode) n0 = parse_json (lines[0]);
          g_autoptr(JsonNode) n1 = parse_json (lines[1]);
          JsonObject *o0 = json_node_get_object (n0);
          JsonObject *o1 = json_node_get_object (n1);

          g_assert_cmpstr (json_object_get_string_member (o0, "id"), ==, "engine");
          g_assert_cmpstr (json_object_get_string_member (o0, "old_state"), ==, "ready");
          g_assert_cmpstr (json_object_get_string_member (o0, "new_state"), ==, "degraded");
          g_assert_cmpstr (json_object_get_string_member (o0, "error"), ==, "model not loaded");
          g_assert_true (json_object_has_member (o0, "time"));
          g_assert_cmpstr (json_object_get_string_member (o1, "id"), ==, "peer-1");
          g_assert_cmpstr (json_object_get_string_member (o1, "new_state"), ==, "closing");
          g_assert_cmpstr (json_object_get_string_member (o1, "error"), ==, "");
        }
    }

  /* --timeout ends a quiet watch with exit 0. */
  {
    gint64 start = g_get_monotonic_time ();
    g_autoptr(Run) run = EXOCTL ("watch", "--timeout", "0.3");
    gint64 elapsed = g_get_monotonic_time () - start;

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->out, ==, "");
    g_assert_cmpstr (run->err, ==, "");
    g_assert_cmpint (elapsed, >=, 300 * 1000);
    g_assert_cmpint (elapsed, <, 30 * G_USEC_PER_SEC);
  }
}

static void
test_plugins (void)
{
  fake_reset ();
  {
    g_autoptr(Run) run = EXOCTL ("plugins");
    g_autofree char *row = NULL;
    g_auto(GStrv) w = NULL;

    g_assert_cmpint (run->status, ==, 0);
    g_assert_true (g_str_has_prefix (run->out, "NAME "));
    row = row_of (run->out, "dummy-inference");
    g_assert_nonnull (row);
    w = words (row);
    g_assert_cmpstr (w[1], ==, "1.0.0");
    g_assert_cmpstr (w[2], ==, "/usr/lib/exo-1/plugins/dummy-inference.so");
    g_assert_nonnull (strstr (row, "A fake inference engine"));
    g_clear_pointer (&row, g_free);
    row = row_of (run->out, "http-server");
    g_assert_nonnull (row);
    g_assert_nonnull (strstr (run->out, "2 plugins loaded."));
  }
  {
    g_autoptr(Run) run = EXOCTL ("--json", "plugins");
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonArray *a = json_node_get_array (root);
    JsonObject *o;

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpuint (json_array_get_length (a), ==, 2);
    o = json_array_get_object_element (a, 1);
    g_assert_cmpstr (json_object_get_string_member (o, "name"), ==, "http-server");
    g_assert_cmpstr (json_object_get_string_member (o, "version"), ==, "1.2.0");
    g_assert_cmpstr (json_object_get_string_member (o, "path"), ==, "/usr/lib/exo-1/plugins/http-server.so");
    g_assert_cmpstr (json_object_get_string_member (o, "description"), ==, "Peer RPC and the user API");
  }
}

static void
test_node (void)
{
  fake_reset ();
  {
    g_autoptr(Run) run = EXOCTL ("node");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (strstr (run->out, "Node ID: test-node\n"));
    g_assert_nonnull (strstr (run->out, "Version: 0.1.0\n"));
    g_assert_nonnull (strstr (run->out, "State: ready\n"));
    g_assert_nonnull (strstr (run->out, "dummy-inference 1.0.0"));
    g_assert_nonnull (strstr (run->out, "\"memory\" : 1024"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("node", "--json");
    g_autoptr(JsonNode) root = parse_json (run->out);
    JsonObject *o = json_node_get_object (root);
    JsonObject *topology;
    JsonArray *plugins;

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (json_object_get_string_member (o, "node_id"), ==, "test-node");
    g_assert_cmpstr (json_object_get_string_member (o, "version"), ==, "0.1.0");
    g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "ready");
    plugins = json_object_get_array_member (o, "plugins");
    g_assert_cmpuint (json_array_get_length (plugins), ==, 2);
    g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (plugins, 0), "name"),
                     ==, "dummy-inference");
    topology = json_object_get_object_member (o, "topology");
    g_assert_nonnull (topology);
    g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (
                       json_object_get_object_member (topology, "nodes"), "test-node"), "memory"), ==, 1024);
  }
}

/* exoctl reads with one GetManagedObjects, never a call per resource. */
static void
test_one_call (void)
{
  int before;

  fake_reset ();
  before = g_atomic_int_get (&fake.gmo_calls);
  {
    g_autoptr(Run) run = EXOCTL ("list");
    g_assert_cmpint (run->status, ==, 0);
  }
  g_assert_cmpint (g_atomic_int_get (&fake.gmo_calls), ==, before + 1);
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);

  /* By hand: `test-exoctl --serve` runs the fake node until killed, so
   * that exoctl can be tried on a terminal. */
  if (argc > 1 && g_str_equal (argv[1], "--serve"))
    {
      fake_up ();
      g_print ("DBUS_SESSION_BUS_ADDRESS=%s\n", g_test_dbus_get_bus_address (fake.bus));
      while (TRUE)
        g_main_context_iteration (NULL, TRUE);
    }

  /* meson sets EXOCTL; run alone, the binary is next door in the build. */
  exoctl_path = g_getenv ("EXOCTL");
  if (exoctl_path == NULL)
    exoctl_path = g_test_build_filename (G_TEST_BUILT, "..", "src", "exoctl", "exoctl", NULL);

  g_test_add_func ("/exoctl/usage", test_usage);
  g_test_add_func ("/exoctl/not-running", test_not_running);
  g_test_add_func ("/exoctl/list", test_list);
  g_test_add_func ("/exoctl/list/json", test_list_json);
  g_test_add_func ("/exoctl/list/one-call", test_one_call);
  g_test_add_func ("/exoctl/status", test_status);
  g_test_add_func ("/exoctl/status/several", test_status_several);
  g_test_add_func ("/exoctl/health", test_health);
  g_test_add_func ("/exoctl/methods", test_methods);
  g_test_add_func ("/exoctl/tree", test_tree);
  g_test_add_func ("/exoctl/watch", test_watch);
  g_test_add_func ("/exoctl/plugins", test_plugins);
  g_test_add_func ("/exoctl/node", test_node);

  fake_up ();
  rc = g_test_run ();
  fake_down ();
  return rc;
}
