/* node-partition.c: ring memory-weighted partitioning, as exo does it.
 *
 * exo (exo/topology/ring_memory_weighted_partitioning_strategy.py):
 *
 *     nodes.sort(key=lambda x: (x[1].memory, x[0]), reverse=True)
 *     total_memory = sum(node[1].memory for node in nodes)
 *     start = 0
 *     for node in nodes:
 *       end = round(start + (node[1].memory / total_memory), 5)
 *       partitions.append(Partition(node[0], start, end))
 *       start = end
 *
 * and (exo/topology/partitioning_strategy.py) map_partitions_to_shards:
 * start_layer = int(start * n), end_layer = int(end * n) - 1, the last
 * partition ends at n - 1, empty shards are skipped, the last shard is
 * extended to n - 1.
 *
 * Rules: pure functions of their arguments, no state, no main context, no
 * lock: any thread; the node calls them in its context, the tests alone.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "node-partition.h"

#include <math.h>
#include <string.h>

double
node_partition_round5 (double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  /* printf's %.5f is correctly rounded from the exact binary value, as
   * Python's round(x, 5) (which goes through dtoa mode 3).  A tie cannot
   * occur: x * 10^5 = n + 1/2 has no exact binary representation. */
  if (!isfinite (value))
    return value;
  g_ascii_formatd (buf, sizeof buf, "%.5f", value);
  return g_ascii_strtod (buf, NULL);
}

void
node_partition_free (NodePartition *partition)
{
  if (partition == NULL)
    return;
  g_free (partition->node_id);
  g_free (partition);
}

void
node_shard_assignment_free (NodeShardAssignment *assignment)
{
  if (assignment == NULL)
    return;
  g_free (assignment->node_id);
  g_free (assignment);
}

static int
compare_desc (gconstpointer a,
              gconstpointer b)
{
  const NodePartitionInput *x = *(const NodePartitionInput * const *) a;
  const NodePartitionInput *y = *(const NodePartitionInput * const *) b;

  if (x->memory != y->memory)
    return x->memory > y->memory ? -1 : 1;
  /* Python compares str by code point; strcmp on UTF-8 gives the same order. */
  return -strcmp (x->node_id, y->node_id);
}

GPtrArray *
node_partition_ring_memory_weighted (const NodePartitionInput *nodes,
                                     gsize                     n_nodes)
{
  g_autoptr(GPtrArray) sorted = g_ptr_array_sized_new (n_nodes);
  GPtrArray *partitions = g_ptr_array_new_with_free_func ((GDestroyNotify) node_partition_free);
  double total = 0;
  double start = 0;

  for (gsize i = 0; i < n_nodes; i++)
    {
      g_ptr_array_add (sorted, (gpointer) &nodes[i]);
      total += (double) nodes[i].memory;
    }
  g_ptr_array_sort (sorted, compare_desc);

  for (guint i = 0; i < sorted->len; i++)
    {
      const NodePartitionInput *node = g_ptr_array_index (sorted, i);
      NodePartition *p = g_new0 (NodePartition, 1);
      double weight = total > 0 ? (double) node->memory / total : 1.0 / (double) n_nodes;

      p->node_id = g_strdup (node->node_id);
      p->start = start;
      p->end = node_partition_round5 (start + weight);
      start = p->end;
      g_ptr_array_add (partitions, p);
    }
  return partitions;
}

GPtrArray *
node_partition_map_to_shards (GPtrArray *partitions,
                              guint      n_layers)
{
  GPtrArray *shards = g_ptr_array_new_with_free_func ((GDestroyNotify) node_shard_assignment_free);

  g_return_val_if_fail (partitions != NULL, shards);

  for (guint i = 0; i < partitions->len && n_layers > 0; i++)
    {
      NodePartition *p = g_ptr_array_index (partitions, i);
      /* int() in Python truncates toward zero; shares are never negative. */
      gint64 start_layer = (gint64) (p->start * n_layers);
      gint64 end_layer = (gint64) (p->end * n_layers) - 1;

      if (i == partitions->len - 1)
        end_layer = (gint64) n_layers - 1;
      if (end_layer > (gint64) n_layers - 1)
        end_layer = (gint64) n_layers - 1;

      if (start_layer <= end_layer)
        {
          NodeShardAssignment *s = g_new0 (NodeShardAssignment, 1);

          s->node_id = g_strdup (p->node_id);
          s->start_layer = (guint) start_layer;
          s->end_layer = (guint) end_layer;
          s->n_layers = n_layers;
          g_ptr_array_add (shards, s);
        }
    }

  if (shards->len > 0)
    {
      NodeShardAssignment *last = g_ptr_array_index (shards, shards->len - 1);

      if (last->end_layer < n_layers - 1)
        last->end_layer = n_layers - 1;
    }
  return shards;
}

gint
node_partition_find_shard (GPtrArray  *shards,
                           const char *node_id)
{
  if (shards == NULL || node_id == NULL)
    return -1;
  for (guint i = 0; i < shards->len; i++)
    if (g_strcmp0 (((NodeShardAssignment *) g_ptr_array_index (shards, i))->node_id, node_id) == 0)
      return (gint) i;
  return -1;
}

char *
node_partition_shards_to_string (GPtrArray *shards)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; shards != NULL && i < shards->len; i++)
    {
      NodeShardAssignment *a = g_ptr_array_index (shards, i);

      g_string_append_printf (s, "%s%s:%u-%u", i > 0 ? "," : "", a->node_id,
                              a->start_layer, a->end_layer);
    }
  return g_string_free (s, FALSE);
}
