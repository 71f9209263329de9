/* bench-group.c: initialize and clean up a large group.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bench.h"

#include <stdio.h>

/* A resource whose do_initialize and do_cleanup complete at once. */
#define BENCH_TYPE_GROUP_LEAF (bench_group_leaf_get_type ())
G_DECLARE_FINAL_TYPE (BenchGroupLeaf, bench_group_leaf, BENCH, GROUP_LEAF, ExoResource)

struct _BenchGroupLeaf
{
  ExoResource parent_instance;
};

G_DEFINE_FINAL_TYPE (BenchGroupLeaf, bench_group_leaf, EXO_TYPE_RESOURCE)

static void
bench_group_leaf_do_nothing (ExoResource *self,
                             GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
bench_group_leaf_class_init (BenchGroupLeafClass *klass)
{
  EXO_RESOURCE_CLASS (klass)->do_initialize = bench_group_leaf_do_nothing;
  EXO_RESOURCE_CLASS (klass)->do_cleanup = bench_group_leaf_do_nothing;
  exo_resource_class_set_resource_type (EXO_RESOURCE_CLASS (klass), "bench-leaf");
}

static void
bench_group_leaf_init (BenchGroupLeaf *self)
{
}

#define N_MEMBERS 10000
#define RUNS      7

/* A random DAG: member i depends on up to two distinct earlier members. */
static ExoResourceGroup *
make_group (guint32  seed,
            guint   *out_edges,
            guint   *out_depth)
{
  ExoResourceGroup *group = exo_resource_group_new ("bench");
  g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
  g_autofree guint *depth = g_new0 (guint, N_MEMBERS);
  guint edges = 0;
  guint max_depth = 0;

  for (guint i = 0; i < N_MEMBERS; i++)
    {
      g_autoptr(ExoResource) r = NULL;
      char id[16], dep0[16], dep1[16];
      const char *deps[3] = { NULL, NULL, NULL };
      guint n = i == 0 ? 0 : (guint) g_rand_int_range (rand, 0, MIN (i, 2) + 1);
      guint a = 0, b = 0;

      g_snprintf (id, sizeof id, "r%u", i);
      r = g_object_new (BENCH_TYPE_GROUP_LEAF, "id", id, NULL);
      if (n >= 1)
        {
          a = (guint) g_rand_int_range (rand, 0, (gint32) i);
          g_snprintf (dep0, sizeof dep0, "r%u", a);
          deps[0] = dep0;
          depth[i] = depth[a] + 1;
        }
      if (n == 2)
        {
          do
            b = (guint) g_rand_int_range (rand, 0, (gint32) i);
          while (b == a);
          g_snprintf (dep1, sizeof dep1, "r%u", b);
          deps[1] = dep1;
          depth[i] = MAX (depth[i], depth[b] + 1);
        }
      edges += n;
      max_depth = MAX (max_depth, depth[i]);
      if (!exo_resource_group_add (group, r, deps, NULL))
        g_error ("bench: could not add %s", id);
    }

  *out_edges = edges;
  *out_depth = max_depth;
  return group;
}

static void
done_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      data)
{
  g_autoptr(GError) error = NULL;
  gboolean ok;

  if (g_async_result_is_tagged (result, exo_resource_cleanup_async))
    ok = exo_resource_cleanup_finish (EXO_RESOURCE (source), result, &error);
  else
    ok = exo_resource_initialize_finish (EXO_RESOURCE (source), result, &error);
  if (!ok)
    g_error ("bench: group failed: %s", error->message);
  *(gboolean *) data = TRUE;
}

static void
assert_all (ExoResourceGroup *group,
            ExoResourceState  state)
{
  g_autoptr(GPtrArray) members = exo_resource_group_get_members (group);

  if (exo_resource_get_state (EXO_RESOURCE (group)) != state)
    g_error ("bench: group is %s", exo_resource_state_to_string (exo_resource_get_state (EXO_RESOURCE (group))));
  for (guint i = 0; i < members->len; i++)
    if (exo_resource_get_state (g_ptr_array_index (members, i)) != state)
      g_error ("bench: a member is not %s", exo_resource_state_to_string (state));
}

/* Both figures come from the same runs; each benchmark name reports one. */
static double init_ms[RUNS];
static double cleanup_ms[RUNS];
static guint measured_edges;
static guint measured_depth;
static gboolean measured;

static void
measure (void)
{
  if (measured)
    return;

  for (guint run = 0; run < RUNS; run++)
    {
      g_autoptr(ExoResourceGroup) group = make_group (0x5eed + run, &measured_edges, &measured_depth);
      gboolean done = FALSE;
      gint64 start;

      start = bench_now_ns ();
      exo_resource_initialize_async (EXO_RESOURCE (group), NULL, done_cb, &done);
      bench_wait_flag (&done);
      init_ms[run] = (bench_now_ns () - start) / 1e6;
      assert_all (group, EXO_RESOURCE_STATE_READY);

      done = FALSE;
      start = bench_now_ns ();
      exo_resource_cleanup_async (EXO_RESOURCE (group), NULL, done_cb, &done);
      bench_wait_flag (&done);
      cleanup_ms[run] = (bench_now_ns () - start) / 1e6;
      assert_all (group, EXO_RESOURCE_STATE_CLOSED);
    }
  measured = TRUE;
}

static void
report (const char *name,
        double     *values)
{
  double copy[RUNS];
  double min = values[0], max = values[0];
  g_autofree char *extra = NULL;

  for (guint i = 0; i < RUNS; i++)
    {
      copy[i] = values[i];
      min = MIN (min, values[i]);
      max = MAX (max, values[i]);
    }
  extra = g_strdup_printf (", \"runs\": %u, \"min\": %.3f, \"max\": %.3f, \"edges\": %u, \"depth\": %u",
                           RUNS, min, max, measured_edges, measured_depth);
  bench_report (name, bench_median (copy, RUNS), "ms", N_MEMBERS, extra);
}

static void
bench_group_init_10k (void)
{
  measure ();
  report ("group_init_10k_ms", init_ms);
}

static void
bench_group_cleanup_10k (void)
{
  measure ();
  report ("group_cleanup_10k_ms", cleanup_ms);
}

const BenchEntry bench_group_entries[] = {
  { "group_init_10k_ms", bench_group_init_10k },
  { "group_cleanup_10k_ms", bench_group_cleanup_10k },
  { NULL, NULL },
};
