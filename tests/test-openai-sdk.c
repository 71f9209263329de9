/* test-openai-sdk.c: the official OpenAI SDK for Node.js (the `openai` npm
 * package, version 4) against a real exo-node with the llama engine and
 * the shipped model (issue 11, item 5), with the harness of
 * cluster-harness.c (one node).  Each case runs tests/openai-sdk.cjs with
 * Node.js once; that script makes the SDK's calls and asserts what the
 * SDK gives back.
 *
 * /openai/sdk/chat: a whole chat (object, id, role, finish, usage).
 * /openai/sdk/stream: streamed with stream_options.include_usage: the same
 *   text, the usage in a last chunk without choices; the SDK's stream
 *   helper agrees.
 * /openai/sdk/stop: stop strings, whole and streamed.
 * /openai/sdk/max-tokens: max_tokens and max_completion_tokens.
 * /openai/sdk/completions: /v1/completions of "" whole and streamed, the
 *   default of 16 tokens.
 * /openai/sdk/models: models.list (iterated) and models.retrieve.
 * /openai/sdk/errors: an unknown model (chat, streamed chat, completion,
 *   models.retrieve) and n=2: the SDK's APIError has the status, message,
 *   type, param and code the server sent.
 * /openai/sdk/quiet-log: the node warned of nothing meanwhile; it stops.
 *
 * Skipped, saying why, when `node` is not installed (Debian: nodejs) or
 * the SDK is not where ./bootstrap installs it (EXO_OPENAI_SDK_DIR, by
 * default .cache/openai-node beside tests/: `npm install openai@4.…`).
 *
 * Environment (set by meson): EXO_NODE, EXO_TEST_PLUGIN_DIR, G_TEST_SRCDIR,
 * EXO_OPENAI_SDK_DIR.
 *
 * Thread rules: one thread, the test's; node runs as a child process
 * (killed with the test, cluster-harness.c), at most SDK_CASE_MS each.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cluster-harness.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#define SDK_CASE_MS 120000

static Cluster cluster;
static gboolean cluster_up;
static gboolean cluster_cleared;
static char *node_js;      /* the node program; NULL: none */
static char *sdk_modules;  /* node_modules holding openai; NULL: none */
static char *script;

/* Why the cases cannot run here, or NULL. */
static char *
missing (void)
{
  if (node_js == NULL)
    return g_strdup ("node is not installed (Debian package nodejs; ./bootstrap installs it)");
  if (sdk_modules == NULL)
    {
      const char *dir = g_getenv ("EXO_OPENAI_SDK_DIR");

      return g_strdup_printf ("the openai npm package is not in %s/node_modules (./bootstrap "
                              "installs it with npm)", dir != NULL ? dir : ".cache/openai-node");
    }
  return NULL;
}

static Node *
the_node (void)
{
  Cluster *c = &cluster;
  g_autoptr(GError) error = NULL;
  g_autofree char *ring = NULL;

  if (cluster_up)
    return &c->nodes[0];
  if (c->exo_node == NULL || c->plugin_dir == NULL || c->tmpdir == NULL)
    {
      g_test_fail_printf ("EXO_NODE and EXO_TEST_PLUGIN_DIR must be set, and a temporary folder made");
      return NULL;
    }
  if (!write_configs (c, 0, 0, &error) || !start_bus (c, &error) ||
      !start_node (c, &c->nodes[0], &error))
    {
      g_test_fail_printf ("starting the node: %s", error != NULL ? error->message : "?");
      return NULL;
    }
  ring = wait_common_ring (c, 0x1, 1, 20000);
  if (ring == NULL)
    {
      g_test_fail_printf ("the node has no ring of its own within 20 s");
      return NULL;
    }
  cluster_up = TRUE;
  return &c->nodes[0];
}

/* Runs openai-sdk.cjs @name against the node: passes when it exits 0;
 * its output goes to the test's log either way. */
static void
run_case (gconstpointer data)
{
  const char *name = data;
  g_autofree char *why = missing ();
  g_autofree char *base_url = NULL;
  g_autofree char *out_path = NULL;
  g_autofree char *out = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  Node *n;

  if (why != NULL)
    {
      g_test_skip (why);
      return;
    }
  n = the_node ();
  if (n == NULL)
    return;
  base_url = g_strdup_printf ("http://%s:%u/v1", n->host, n->http_port);
  out_path = g_strdup_printf ("%s/sdk-%s.out", cluster.tmpdir, name);
  {
    const char *argv[] = { node_js, script, name, base_url, cluster.model_id, NULL };

    proc = spawn (argv, NULL, out_path, G_SUBPROCESS_FLAGS_STDERR_MERGE, &error);
  }
  if (proc == NULL)
    {
      g_test_fail_printf ("running %s: %s", node_js, error->message);
      return;
    }
  if (!wait_exit (proc, SDK_CASE_MS))
    {
      end_process (&proc, SIGKILL, 5000);
      g_file_get_contents (out_path, &out, NULL, NULL);
      g_test_fail_printf ("openai-sdk.cjs %s still ran after %d s:\n%s", name, SDK_CASE_MS / 1000,
                          out != NULL ? out : "");
      return;
    }
  g_file_get_contents (out_path, &out, NULL, NULL);
  if (!g_subprocess_get_if_exited (proc) || g_subprocess_get_exit_status (proc) != 0)
    {
      g_test_fail_printf ("openai-sdk.cjs %s failed:\n%s", name, out != NULL ? out : "(no output)");
      return;
    }
  if (out != NULL)
    {
      g_auto(GStrv) lines = g_strsplit (g_strchomp (out), "\n", -1);

      for (guint i = 0; lines[i] != NULL; i++)
        g_test_message ("%s", lines[i]);
    }
}

static void
stop_cluster (void)
{
  if (cluster_cleared)
    return;
  cluster_clear (&cluster);
  cluster_cleared = TRUE;
  cluster_up = FALSE;
}

/* Last: the node logged no warning; then it stops. */
static void
test_quiet_log (void)
{
  g_autofree char *why = missing ();
  g_autofree char *path = NULL;
  g_autofree char *log = NULL;
  g_auto(GStrv) lines = NULL;

  if (why != NULL || !cluster_up)
    {
      g_test_skip (why != NULL ? why : "the node did not start");
      stop_cluster ();
      return;
    }
  path = g_strdup_printf ("%s/%s.%u.log", cluster.tmpdir, cluster.nodes[0].id, cluster.nodes[0].starts);
  g_assert_true (g_file_get_contents (path, &log, NULL, NULL));
  lines = g_strsplit (log, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], "warning:") != NULL && strstr (lines[i], "dbus-daemon") == NULL)
      g_test_fail_printf ("the node warned: %s", lines[i]);
  stop_cluster ();
}

/* The node program and the SDK's node_modules, when there. */
static void
find_sdk (void)
{
  const char *dir = g_getenv ("EXO_OPENAI_SDK_DIR");
  g_autofree char *fallback = NULL;
  g_autofree char *modules = NULL;
  g_autofree char *manifest = NULL;

  node_js = g_find_program_in_path ("node");
  if (dir == NULL)
    dir = fallback = g_test_build_filename (G_TEST_DIST, "..", ".cache", "openai-node", NULL);
  modules = g_build_filename (dir, "node_modules", NULL);
  manifest = g_build_filename (modules, "openai", "package.json", NULL);
  if (g_file_test (manifest, G_FILE_TEST_IS_REGULAR))
    {
      sdk_modules = g_steal_pointer (&modules);
      /* node's require() looks there for a script outside the folder */
      g_setenv ("NODE_PATH", sdk_modules, TRUE);
    }
  script = g_test_build_filename (G_TEST_DIST, "openai-sdk.cjs", NULL);
}

int
main (int argc, char **argv)
{
  static const char * const cases[] = {
    "chat", "stream", "stop", "max-tokens", "completions", "models", "errors",
  };
  int status;

  g_test_init (&argc, &argv, NULL);
  harness_init ();
  find_sdk ();
  cluster_init (&cluster, FALSE);
  cluster.template_name = "node-llama.json.in";
  cluster.model_id = "exo-fortunes";
  cluster.node_max_tokens = 64;
  g_free (cluster.nodes[0].id);
  cluster.nodes[0].id = g_strdup ("openai-sdk-1");
  g_free (cluster.nodes[0].bus_name);
  cluster.nodes[0].bus_name = g_strdup ("org.exo.Test.OpenAISDK.N1");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/openai/sdk/%s", cases[i]);

      g_test_add_data_func (path, cases[i], run_case);
    }
  g_test_add_func ("/openai/sdk/quiet-log", test_quiet_log);
  status = g_test_run ();
  stop_cluster ();
  g_free (node_js);
  g_free (sdk_modules);
  g_free (script);
  return status;
}
