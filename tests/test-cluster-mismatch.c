/* test-cluster-mismatch.c: nodes that run different checkpoints under one
 * model id (an operator's mistake) through real exo-node processes, with
 * the harness of cluster-harness.c.
 *
 * llama-1 serves the shipped model (data/models/exo-fortunes.bin, dim 128,
 * 4 layers) and answers a chat alone; then llama-2 starts with the same
 * model id and another checkpoint.  The two find each other, and each
 * keeps the other out of its ring (their engines' model digests differ,
 * plugin ABI 3.3): llama-1 counts one peer of another model
 * (exo_node_peers_other_model), logs it, keeps a ring of itself alone, and
 * answers the same chat with the same text as before.
 *
 * /cluster/mismatch/dims: llama-2's checkpoint is one the test writes:
 *   dim 32, 4 layers, the same vocabulary (its layers could not take
 *   llama-1's activations).
 * /cluster/mismatch/int8: llama-2 runs the shipped int8 export of the same
 *   model (data/models/exo-fortunes-q8.bin): the same shapes, other
 *   numbers — it would answer other tokens without an error.
 * /cluster/mismatch/restart: two nodes on one model form a ring; llama-2's
 *   file is replaced by the int8 export and its engine restarted
 *   (`exoctl restart engine`): the node takes the new digest and the two
 *   part.
 *
 * Environment (set by meson): EXO_NODE, EXO_TEST_PLUGIN_DIR, EXOCTL,
 * G_TEST_SRCDIR.
 *
 * Thread rules: one thread, the test's.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cluster-harness.h"
#include "llama-test-util.h"

#include <string.h>

static const char request[] = "{\"model\": \"exo-fortunes\", \"messages\": [{\"role\": \"user\", "
                              "\"content\": \"In the\"}], \"max_tokens\": 16, \"temperature\": 0}";

/* The answer's text of the chat through @n; NULL unless 200. */
static char *
chat_text (Cluster *c,
           Node    *n)
{
  guint status = 0;
  g_autofree char *body = http (c, n, "POST", "/v1/chat/completions", request, &status);
  g_autoptr(JsonNode) root = status == 200 ? parse_json (body) : NULL;
  JsonObject *choice;

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_test_message ("HTTP %u %s", status, body != NULL ? body : "");
      return NULL;
    }
  choice = json_array_get_object_element (json_object_get_array_member (json_node_get_object (root),
                                                                        "choices"), 0);
  return g_strdup (json_object_get_string_member (json_object_get_object_member (choice, "message"),
                                                  "content"));
}

/* llama-1 … llama-3 serving exo-fortunes (llama-1 the shipped file). */
static void
mismatch_cluster_init (Cluster *c)
{
  cluster_init (c, FALSE);
  c->template_name = "node-llama.json.in";
  c->model_id = "exo-fortunes";
  for (guint i = 0; i < N_NODES; i++)
    {
      g_free (c->nodes[i].id);
      c->nodes[i].id = g_strdup_printf ("llama-%u", i + 1);
      g_free (c->nodes[i].bus_name);
      c->nodes[i].bus_name = g_strdup_printf ("org.exo.Test.ClusterMismatch.N%u", i + 1);
    }
}

static void
run_case (const char *other_model)
{
  Cluster cl, *c = &cl;
  g_autoptr(GError) error = NULL;
  g_autoptr(TinyModel) tiny = NULL;
  g_autofree char *tiny_path = NULL;
  g_autofree char *alone = NULL;
  g_autofree char *after = NULL;
  g_autofree char *ring = NULL;
  g_autofree char *first_ring = NULL;
  gint64 deadline, other = -1;

  mismatch_cluster_init (c);
  if (c->exo_node == NULL || c->plugin_dir == NULL || c->tmpdir == NULL)
    {
      g_test_skip ("EXO_NODE and EXO_TEST_PLUGIN_DIR must be set");
      goto out;
    }
  if (other_model == NULL)
    {
      /* the shipped model's shape but dim 32: 4 layers, vocab 512 */
      tiny = tiny_model_new (32, 96, 4, 4, 2, 512, 256, TRUE, 17);
      other_model = tiny_path = tiny_model_write (tiny, TINY_LEGACY, c->tmpdir, "other.bin");
    }
  c->nodes[1].model = other_model;
  g_assert_true (write_configs (c, 0, 0, &error));
  g_assert_no_error (error);
  g_assert_true (start_bus (c, &error));
  g_assert_no_error (error);

  g_assert_true (start_node (c, &c->nodes[0], &error));
  g_assert_no_error (error);
  first_ring = wait_common_ring (c, 0x1, 1, 20000);
  g_assert_nonnull (first_ring);
  alone = chat_text (c, &c->nodes[0]);
  g_assert_nonnull (alone);

  g_assert_true (start_node (c, &c->nodes[1], &error));
  g_assert_no_error (error);
  g_assert_true (wait_metric_at_least (c, 0x3, "peers", 1, 20000));
  /* they found each other; once their topologies are in, each keeps the
   * other out */
  deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (g_get_monotonic_time () < deadline &&
         ((other = live_node_metric (c, &c->nodes[0], "exo_node_peers_other_model")) < 1 ||
          live_node_metric (c, &c->nodes[1], "exo_node_peers_other_model") < 1))
    g_usleep (100 * 1000);
  g_assert_cmpint (other, ==, 1);
  g_assert_cmpint (live_node_metric (c, &c->nodes[1], "exo_node_peers_other_model"), ==, 1);
  ring = node_ring (c, &c->nodes[0]);
  g_test_message ("llama-1's ring: %s", ring);
  g_assert_cmpstr (ring, ==, "llama-1:0-3");
  after = chat_text (c, &c->nodes[0]);
  g_assert_cmpstr (after, ==, alone);

out:
  cluster_clear (c);
}

/* A node of a ring of two whose engine restarts on another checkpoint (the
 * operator replaced the file, then `exoctl restart engine`): the node takes
 * the engine's new digest, and the two part. */
static void
test_restart (void)
{
  Cluster cl, *c = &cl;
  g_autoptr(GError) error = NULL;
  g_autofree char *shipped = g_test_build_filename (G_TEST_DIST, "..", "data", "models",
                                                    "exo-fortunes.bin", NULL);
  g_autofree char *q8 = g_test_build_filename (G_TEST_DIST, "..", "data", "models",
                                               "exo-fortunes-q8.bin", NULL);
  g_autofree char *path = NULL, *contents = NULL, *ring = NULL, *out = NULL;
  gsize length = 0;
  gint64 deadline, other = -1;
  int rc = -1;

  mismatch_cluster_init (c);
  if (c->exo_node == NULL || c->plugin_dir == NULL || c->tmpdir == NULL || c->exoctl == NULL)
    {
      g_test_skip ("EXO_NODE, EXO_TEST_PLUGIN_DIR and EXOCTL must be set");
      goto out;
    }
  /* llama-2 runs a copy of the shipped model: the same digest */
  path = g_build_filename (c->tmpdir, "m2.bin", NULL);
  g_assert_true (g_file_get_contents (shipped, &contents, &length, NULL));
  g_assert_true (g_file_set_contents (path, contents, (gssize) length, NULL));
  c->nodes[1].model = path;
  g_assert_true (write_configs (c, 0, 0, &error));
  g_assert_no_error (error);
  g_assert_true (start_bus (c, &error));
  for (guint i = 0; i < 2; i++)
    g_assert_true (start_node (c, &c->nodes[i], &error));
  g_assert_no_error (error);
  ring = wait_common_ring (c, 0x3, 2, 20000);
  g_assert_nonnull (ring);
  g_test_message ("one model: %s", ring);

  /* the file becomes the int8 export; the engine restarts */
  g_clear_pointer (&contents, g_free);
  g_assert_true (g_file_get_contents (q8, &contents, &length, NULL));
  g_assert_true (g_file_set_contents (path, contents, (gssize) length, NULL));
  {
    const char *argv[] = { c->exoctl, "--bus-name", c->nodes[1].bus_name, "restart", "engine", NULL };

    out = run_capture (argv, c->bus_address, &rc);
    g_assert_cmpint (rc, ==, 0);
  }
  deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (g_get_monotonic_time () < deadline &&
         ((other = live_node_metric (c, &c->nodes[0], "exo_node_peers_other_model")) < 1 ||
          live_node_metric (c, &c->nodes[1], "exo_node_peers_other_model") < 1))
    g_usleep (100 * 1000);
  g_assert_cmpint (other, ==, 1);
  g_clear_pointer (&ring, g_free);
  ring = node_ring (c, &c->nodes[0]);
  g_test_message ("after the restart on the int8 file: llama-1's ring %s", ring);
  g_assert_cmpstr (ring, ==, "llama-1:0-3");

out:
  cluster_clear (c);
}

static void
test_dims (void)
{
  run_case (NULL);
}

static void
test_int8 (void)
{
  g_autofree char *q8 = g_test_build_filename (G_TEST_DIST, "..", "data", "models",
                                               "exo-fortunes-q8.bin", NULL);

  run_case (q8);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  harness_init ();

  g_test_add_func ("/cluster/mismatch/dims", test_dims);
  g_test_add_func ("/cluster/mismatch/int8", test_int8);
  g_test_add_func ("/cluster/mismatch/restart", test_restart);
  return g_test_run ();
}
