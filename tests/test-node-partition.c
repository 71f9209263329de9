/* test-node-partition.c: ring memory-weighted partitioning of the `node`
 * plugin (plugins/node/node-partition.c), against cases computed by hand
 * with exo's rules (docs/cluster-protocol.md):
 *
 *   sort by (memory, id) descending; end = round(start + memory/total, 5);
 *   layers [int(start*n), int(end*n) - 1], last ends at n - 1, empty skipped.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>
#include <string.h>

#include "node-partition.h"

typedef struct {
  const char *id;
  double      start;
  double      end;
} ExpectedPartition;

static GPtrArray *
partition (const NodePartitionInput *nodes,
           gsize                     n)
{
  return node_partition_ring_memory_weighted (nodes, n);
}

static void
assert_partitions (GPtrArray               *got,
                   const ExpectedPartition *want,
                   guint                    n)
{
  g_assert_cmpuint (got->len, ==, n);
  for (guint i = 0; i < n; i++)
    {
      NodePartition *p = g_ptr_array_index (got, i);

      g_assert_cmpstr (p->node_id, ==, want[i].id);
      /* Values are the doubles Python prints: compare exactly. */
      g_assert_cmpfloat (p->start, ==, want[i].start);
      g_assert_cmpfloat (p->end, ==, want[i].end);
    }
}

static void
assert_shards (GPtrArray  *partitions,
               guint       n_layers,
               const char *want)
{
  g_autoptr(GPtrArray) shards = node_partition_map_to_shards (partitions, n_layers);
  g_autofree char *got = node_partition_shards_to_string (shards);

  g_assert_cmpstr (got, ==, want);
  for (guint i = 0; i < shards->len; i++)
    g_assert_cmpuint (((NodeShardAssignment *) g_ptr_array_index (shards, i))->n_layers, ==, n_layers);
}

/* One node: everything. */
static void
test_one_node (void)
{
  const NodePartitionInput nodes[] = { { "a", 1000 } };
  const ExpectedPartition want[] = { { "a", 0, 1.0 } };
  g_autoptr(GPtrArray) p = partition (nodes, G_N_ELEMENTS (nodes));

  assert_partitions (p, want, G_N_ELEMENTS (want));
  assert_shards (p, 16, "a:0-15");
  assert_shards (p, 32, "a:0-31");
  assert_shards (p, 1, "a:0-0");
}

/* Two equal nodes: the tie is broken by id, descending: b first. */
static void
test_two_equal (void)
{
  const NodePartitionInput nodes[] = { { "a", 1000 }, { "b", 1000 } };
  const ExpectedPartition want[] = { { "b", 0, 0.5 }, { "a", 0.5, 1.0 } };
  g_autoptr(GPtrArray) p = partition (nodes, G_N_ELEMENTS (nodes));

  assert_partitions (p, want, G_N_ELEMENTS (want));
  /* 0.5 * 16 = 8 → b 0..7, a 8..15 */
  assert_shards (p, 16, "b:0-7,a:8-15");
  assert_shards (p, 32, "b:0-15,a:16-31");
}

/* Two unequal nodes: 3000/4000 = 0.75. */
static void
test_two_unequal (void)
{
  const NodePartitionInput nodes[] = { { "b", 1000 }, { "a", 3000 } };
  const ExpectedPartition want[] = { { "a", 0, 0.75 }, { "b", 0.75, 1.0 } };
  g_autoptr(GPtrArray) p = partition (nodes, G_N_ELEMENTS (nodes));

  assert_partitions (p, want, G_N_ELEMENTS (want));
  /* 0.75 * 16 = 12 → a 0..11; 0.75 * 32 = 24 → a 0..23 */
  assert_shards (p, 16, "a:0-11,b:12-15");
  assert_shards (p, 32, "a:0-23,b:24-31");
}

/* Three equal nodes: 1/3 rounds to 0.33333; ends 0.33333, 0.66666 and
 * 0.99999 (rounding accumulates, the last end is not 1). */
static void
test_three_equal (void)
{
  const NodePartitionInput nodes[] = { { "a", 1000 }, { "b", 1000 }, { "c", 1000 } };
  const ExpectedPartition want[] = {
    { "c", 0, 0.33333 }, { "b", 0.33333, 0.66666 }, { "a", 0.66666, 0.99999 },
  };
  g_autoptr(GPtrArray) p = partition (nodes, G_N_ELEMENTS (nodes));

  assert_partitions (p, want, G_N_ELEMENTS (want));
  /* 16: int(5.33328) = 5 → c 0..4; int(10.66656) = 10 → b 5..9; a 10..15 (last)
   * 32: int(10.66656) = 10 → c 0..9; int(21.33312) = 21 → b 10..20; a 21..31 */
  assert_shards (p, 16, "c:0-4,b:5-9,a:10-15");
  assert_shards (p, 32, "c:0-9,b:10-20,a:21-31");
}

/* The memories of the multi-node test: 4096, 2048, 2048. */
static void
test_three_unequal_tie (void)
{
  const NodePartitionInput nodes[] = { { "n1", 4096 }, { "n2", 2048 }, { "n3", 2048 } };
  const ExpectedPartition want[] = {
    { "n1", 0, 0.5 }, { "n3", 0.5, 0.75 }, { "n2", 0.75, 1.0 },
  };
  g_autoptr(GPtrArray) p = partition (nodes, G_N_ELEMENTS (nodes));

  assert_partitions (p, want, G_N_ELEMENTS (want));
  assert_shards (p, 16, "n1:0-7,n3:8-11,n2:12-15");
  assert_shards (p, 32, "n1:0-15,n3:16-23,n2:24-31");
}

/* 4:2:1 → 4/7 = 0.571428… → 0.57143; + 2/7 = 0.857144… → 0.85714;
 * + 1/7 = 0.999997… → 1.0. */
static void
test_three_unequal_sevenths (void)
{
  const NodePartitionInput nodes[] = { { "c", 4096 }, { "a", 16384 }, { "b", 8192 } };
  const ExpectedPartition want[] = {
    { "a", 0, 0.57143 }, { "b", 0.57143, 0.85714 }, { "c", 0.85714, 1.0 },
  };
  g_autoptr(GPtrArray) p = partition (nodes, G_N_ELEMENTS (nodes));

  assert_partitions (p, want, G_N_ELEMENTS (want));
  /* 16: int(9.14288) = 9 → a 0..8; int(13.71424) = 13 → b 9..12; c 13..15
   * 32: int(18.28576) = 18 → a 0..17; int(27.42848) = 27 → b 18..26; c 27..31 */
  assert_shards (p, 16, "a:0-8,b:9-12,c:13-15");
  assert_shards (p, 32, "a:0-17,b:18-26,c:27-31");
}

/* Memory first, id second: the smallest id with the most memory leads. */
static void
test_memory_before_id (void)
{
  const NodePartitionInput nodes[] = { { "x", 1 }, { "y", 2 }, { "z", 4 } };
  const ExpectedPartition want[] = {
    { "z", 0, 0.57143 }, { "y", 0.57143, 0.85714 }, { "x", 0.85714, 1.0 },
  };
  g_autoptr(GPtrArray) p = partition (nodes, G_N_ELEMENTS (nodes));

  assert_partitions (p, want, G_N_ELEMENTS (want));
}

/* Seven equal nodes: 1/7 = 0.142857… → 0.14286, and the rounding error
 * accumulates: 0.28572, 0.42858, 0.57144, 0.7143, 0.85716, 1.00002. */
static void
test_seven_equal_rounding (void)
{
  const NodePartitionInput nodes[] = {
    { "a", 1 }, { "b", 1 }, { "c", 1 }, { "d", 1 }, { "e", 1 }, { "f", 1 }, { "g", 1 },
  };
  const ExpectedPartition want[] = {
    { "g", 0, 0.14286 }, { "f", 0.14286, 0.28572 }, { "e", 0.28572, 0.42858 },
    { "d", 0.42858, 0.57144 }, { "c", 0.57144, 0.7143 }, { "b", 0.7143, 0.85716 },
    { "a", 0.85716, 1.00002 },
  };
  g_autoptr(GPtrArray) p = partition (nodes, G_N_ELEMENTS (nodes));

  assert_partitions (p, want, G_N_ELEMENTS (want));
  /* 16: 2.28576→2, 4.57152→4, 6.85728→6, 9.14304→9, 11.4288→11, 13.71456→13 */
  assert_shards (p, 16, "g:0-1,f:2-3,e:4-5,d:6-8,c:9-10,b:11-12,a:13-15");
  /* 32: 4.57152→4, 9.14304→9, 13.71456→13, 18.28608→18, 22.8576→22, 27.42912→27 */
  assert_shards (p, 32, "g:0-3,f:4-8,e:9-12,d:13-17,c:18-21,b:22-26,a:27-31");
}

/* A node too small for a layer gets none: 1000, 1, 1 →
 * 0.998004 → 0.998; 0.998998 → 0.999; 0.999998 → 1.0.  With 16 layers
 * c would get [int(15.968), int(15.984) - 1] = [15, 14]: empty, skipped. */
static void
test_empty_shard_skipped (void)
{
  const NodePartitionInput nodes[] = { { "a", 1000 }, { "b", 1 }, { "c", 1 } };
  const ExpectedPartition want[] = {
    { "a", 0, 0.998 }, { "c", 0.998, 0.999 }, { "b", 0.999, 1.0 },
  };
  g_autoptr(GPtrArray) p = partition (nodes, G_N_ELEMENTS (nodes));
  g_autoptr(GPtrArray) shards = NULL;

  assert_partitions (p, want, G_N_ELEMENTS (want));
  assert_shards (p, 16, "a:0-14,b:15-15");
  assert_shards (p, 32, "a:0-30,b:31-31");

  shards = node_partition_map_to_shards (p, 16);
  g_assert_cmpint (node_partition_find_shard (shards, "a"), ==, 0);
  g_assert_cmpint (node_partition_find_shard (shards, "b"), ==, 1);
  g_assert_cmpint (node_partition_find_shard (shards, "c"), ==, -1);
}

/* More nodes than layers: only some get a layer; the ring still covers
 * every layer exactly once. */
static void
test_more_nodes_than_layers (void)
{
  const NodePartitionInput nodes[] = { { "a", 1 }, { "b", 1 }, { "c", 1 } };
  g_autoptr(GPtrArray) p = partition (nodes, G_N_ELEMENTS (nodes));

  /* 1 layer: c [0, int(0.33333) - 1 = -1] empty, b [0, -1] empty, a last: 0..0 */
  assert_shards (p, 1, "a:0-0");
  /* 2 layers: c [0, 0-1] empty; b [0, int(1.33332) - 1 = 0]; a [1, 1] */
  assert_shards (p, 2, "b:0-0,a:1-1");
}

/* Coverage: for many random memories, shards are contiguous, ordered,
 * start at 0 and end at n - 1. */
static void
test_coverage (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (42);

  for (guint round = 0; round < 2000; round++)
    {
      guint n_nodes = g_rand_int_range (rand, 1, 9);
      guint n_layers = g_rand_int_range (rand, 1, 130);
      NodePartitionInput nodes[8];
      char ids[8][8];
      g_autoptr(GPtrArray) p = NULL;
      g_autoptr(GPtrArray) shards = NULL;
      guint next = 0;

      for (guint i = 0; i < n_nodes; i++)
        {
          g_snprintf (ids[i], sizeof ids[i], "n%u", i);
          nodes[i].node_id = ids[i];
          nodes[i].memory = g_rand_int_range (rand, 1, 100000);
        }
      p = partition (nodes, n_nodes);
      g_assert_cmpuint (p->len, ==, n_nodes);
      shards = node_partition_map_to_shards (p, n_layers);
      g_assert_cmpuint (shards->len, >, 0);
      for (guint i = 0; i < shards->len; i++)
        {
          NodeShardAssignment *s = g_ptr_array_index (shards, i);

          g_assert_cmpuint (s->start_layer, ==, next);
          g_assert_cmpuint (s->end_layer, >=, s->start_layer);
          next = s->end_layer + 1;
        }
      g_assert_cmpuint (next, ==, n_layers);
    }
}

/* round(x, 5) as Python: correctly rounded. */
static void
test_round5 (void)
{
  g_assert_cmpfloat (node_partition_round5 (1.0 / 3.0), ==, 0.33333);
  g_assert_cmpfloat (node_partition_round5 (2.0 / 3.0), ==, 0.66667);
  g_assert_cmpfloat (node_partition_round5 (0.33333 + 1.0 / 3.0), ==, 0.66666);
  g_assert_cmpfloat (node_partition_round5 (0.5), ==, 0.5);
  g_assert_cmpfloat (node_partition_round5 (0.123455), ==, 0.12345);  /* 0.123454999999999995297… */
  g_assert_cmpfloat (node_partition_round5 (0.000005), ==, 0.00001);  /* 5.00000000000000040902e-06 */
  g_assert_cmpfloat (node_partition_round5 (0.999997), ==, 1.0);
  g_assert_cmpfloat (node_partition_round5 (0.0), ==, 0.0);
}

/* Memory 0 everywhere: equal weights instead of a division by zero. */
static void
test_zero_memory (void)
{
  const NodePartitionInput nodes[] = { { "a", 0 }, { "b", 0 } };
  const ExpectedPartition want[] = { { "b", 0, 0.5 }, { "a", 0.5, 1.0 } };
  g_autoptr(GPtrArray) p = partition (nodes, G_N_ELEMENTS (nodes));
  g_autoptr(GPtrArray) empty = partition (NULL, 0);
  g_autoptr(GPtrArray) no_shards = node_partition_map_to_shards (empty, 16);

  assert_partitions (p, want, G_N_ELEMENTS (want));
  g_assert_cmpuint (empty->len, ==, 0);
  g_assert_cmpuint (no_shards->len, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/node/partition/one-node", test_one_node);
  g_test_add_func ("/node/partition/two-equal", test_two_equal);
  g_test_add_func ("/node/partition/two-unequal", test_two_unequal);
  g_test_add_func ("/node/partition/three-equal", test_three_equal);
  g_test_add_func ("/node/partition/three-unequal-tie", test_three_unequal_tie);
  g_test_add_func ("/node/partition/three-unequal-sevenths", test_three_unequal_sevenths);
  g_test_add_func ("/node/partition/memory-before-id", test_memory_before_id);
  g_test_add_func ("/node/partition/seven-equal-rounding", test_seven_equal_rounding);
  g_test_add_func ("/node/partition/empty-shard-skipped", test_empty_shard_skipped);
  g_test_add_func ("/node/partition/more-nodes-than-layers", test_more_nodes_than_layers);
  g_test_add_func ("/node/partition/coverage", test_coverage);
  g_test_add_func ("/node/partition/round5", test_round5);
  g_test_add_func ("/node/partition/zero-memory", test_zero_memory);

  return g_test_run ();
}
