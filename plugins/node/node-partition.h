/* node-partition.h: ring memory-weighted partitioning, as exo's
 * RingMemoryWeightedPartitioningStrategy and map_partitions_to_shards.
 *
 * Pure functions (GLib only): compiled into the `node` plugin and into
 * tests/test-node-partition.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A node as the partitioner sees it. */
typedef struct {
  const char *node_id;
  guint64     memory;      /* MiB; any unit works, only ratios matter */
} NodePartitionInput;

/* The share [start, end) of [0, 1) given to a node. */
typedef struct {
  char   *node_id;
  double  start;
  double  end;
} NodePartition;

/* A contiguous range of layers given to a node. */
typedef struct {
  char  *node_id;
  guint  start_layer;      /* inclusive */
  guint  end_layer;        /* inclusive */
  guint  n_layers;
} NodeShardAssignment;

/* Round @value to 5 decimals exactly as Python's round(value, 5) does
 * (correctly rounded, ties to even on the exact binary value). */
double     node_partition_round5       (double                    value);

/* Sort @nodes by (memory, id) descending and give each the share
 * end = round5 (start + memory / total), start = the previous end.
 * Returns a GPtrArray of NodePartition (free with g_ptr_array_unref).
 * Nodes are never dropped; when the total memory is 0 every node weighs
 * the same. */
GPtrArray *node_partition_ring_memory_weighted (const NodePartitionInput *nodes,
                                                gsize                     n_nodes);

/* Map @partitions (in ring order) to layer ranges:
 * [int(start * n_layers), int(end * n_layers) - 1], the last partition
 * always ending at n_layers - 1, empty ranges skipped, and the last shard
 * extended to n_layers - 1.  Returns a GPtrArray of NodeShardAssignment. */
GPtrArray *node_partition_map_to_shards (GPtrArray               *partitions,
                                         guint                    n_layers);

/* Index in @shards (NodeShardAssignment) of @node_id, or -1. */
gint       node_partition_find_shard    (GPtrArray               *shards,
                                         const char              *node_id);

/* "a:0-7,b:8-15" — for logs, metrics and tests. */
char      *node_partition_shards_to_string (GPtrArray            *shards);

void       node_partition_free          (NodePartition           *partition);
void       node_shard_assignment_free   (NodeShardAssignment     *assignment);

G_END_DECLS
