/* test-cluster-mismatch.c: a ring whose nodes run different checkpoints
 * under one model id (an operator's mistake) through real exo-node
 * processes, with the harness of cluster-harness.c.
 *
 * /cluster/mismatch/dims: llama-1 serves the shipped model (dim 128,
 *   4 layers); llama-2 the same model id with a checkpoint the test writes
 *   (dim 32, 4 layers, the same vocabulary).  They form a ring of two; a
 *   chat through llama-1 reaches llama-2's layers with activations they
 *   cannot take.  The user gets a server error (500, type server_error)
 *   that names the node and asks whether the nodes run the same
 *   checkpoint — not a 400 blaming the request.
 *
 * Environment (set by meson): EXO_NODE, EXO_TEST_PLUGIN_DIR, G_TEST_SRCDIR.
 *
 * Thread rules: one thread, the test's.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cluster-harness.h"
#include "llama-test-util.h"

#include <string.h>

static void
test_dims (void)
{
  Cluster cl, *c = &cl;
  g_autoptr(GError) error = NULL;
  g_autoptr(TinyModel) other = NULL;
  g_autofree char *other_path = NULL;
  g_autofree char *ring = NULL;
  g_autofree char *out = NULL;
  const char *request = "{\"model\": \"exo-fortunes\", \"messages\": [{\"role\": \"user\", "
                        "\"content\": \"In the\"}], \"max_tokens\": 8, \"temperature\": 0}";
  guint status = 0;
  char *body;

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
  if (c->exo_node == NULL || c->plugin_dir == NULL || c->tmpdir == NULL)
    {
      g_test_skip ("EXO_NODE and EXO_TEST_PLUGIN_DIR must be set");
      goto out;
    }
  /* the shipped model's shape but dim 32: 4 layers, vocab 512 */
  other = tiny_model_new (32, 96, 4, 4, 2, 512, 256, TRUE, 17);
  other_path = tiny_model_write (other, TINY_LEGACY, c->tmpdir, "other.bin");
  c->nodes[1].model = other_path;
  g_assert_true (write_configs (c, 0, 0, &error));
  g_assert_no_error (error);
  g_assert_true (start_bus (c, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < 2; i++)
    {
      g_assert_true (start_node (c, &c->nodes[i], &error));
      g_assert_no_error (error);
    }
  g_assert_true (wait_metric_at_least (c, 0x3, "peers", 1, 20000));
  ring = wait_common_ring (c, 0x3, 2, 20000);
  g_assert_nonnull (ring);
  g_test_message ("ring: %s", ring);

  out = http (c, &c->nodes[0], "POST", "/v1/chat/completions", request, &status);
  body = out != NULL ? strchr (out, '{') : NULL;
  g_test_message ("HTTP %u %s", status, body != NULL ? body : "");
  g_assert_cmpuint (status, ==, 500);
  g_assert_nonnull (body);
  g_assert_nonnull (strstr (body, "\"server_error\""));
  g_assert_nonnull (strstr (body, "llama-2"));
  g_assert_nonnull (strstr (body, "same checkpoint"));

out:
  cluster_clear (c);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  harness_init ();

  g_test_add_func ("/cluster/mismatch/dims", test_dims);
  return g_test_run ();
}
