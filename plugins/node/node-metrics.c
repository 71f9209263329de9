/* node-metrics.c: what the `node` resource counts, as ExoResource metrics
 * (collect_metrics) and their names in /metrics (docs/metrics.md).  Each
 * file counts its own work in the node's fields (node-private.h); this one
 * only reads them.
 *
 * Rules: the node's main context only (collect_metrics runs there); no
 * locks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "node-private.h"

/* The node's own keys (node.c chains up first). */
void
node_collect_metrics (ExoResource  *resource,
                      GVariantDict *metrics)
{
  ExoClusterNode *self = EXO_CLUSTER_NODE (resource);
  NodeShardAssignment *mine = ring_find (self->shards, self->node_id);
  guint usable = 0;
  GHashTableIter iter;
  gpointer value;

  if (self->peers != NULL)
    {
      g_hash_table_iter_init (&iter, self->peers);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (peer_is_usable (value))
          usable++;
    }

  g_variant_dict_insert (metrics, "node-id", "s", self->node_id != NULL ? self->node_id : "");
  g_variant_dict_insert (metrics, "model-id", "s", self->model_id);
  g_variant_dict_insert (metrics, "n-layers", "u", self->n_layers);
  g_variant_dict_insert (metrics, "memory-mib", "t", self->caps != NULL ? self->caps->memory : 0);
  g_variant_dict_insert (metrics, "requests", "t", self->requests_total);
  g_variant_dict_insert (metrics, "requests-in-flight", "u", requests_in_flight (self));
  g_variant_dict_insert (metrics, "tokens-generated", "t", self->tokens_generated);
  g_variant_dict_insert (metrics, "layers-computed", "t", self->layers_computed);
  g_variant_dict_insert (metrics, "shard-start", "i", mine != NULL ? (gint32) mine->start_layer : -1);
  g_variant_dict_insert (metrics, "shard-end", "i", mine != NULL ? (gint32) mine->end_layer : -1);
  g_variant_dict_insert (metrics, "ring-size", "u", self->shards != NULL ? self->shards->len : 0);
  g_variant_dict_insert (metrics, "peers", "u", usable);
  g_variant_dict_insert (metrics, "peers-known", "u", self->peers != NULL ? g_hash_table_size (self->peers) : 0);
  g_variant_dict_insert (metrics, "peers-failed", "t", self->peers_failed);
  g_variant_dict_insert (metrics, "peers-joined", "t", self->peers_joined);
  g_variant_dict_insert (metrics, "last-failed-peer", "s",
                         self->last_failed_peer != NULL ? self->last_failed_peer : "");
  g_variant_dict_insert (metrics, "last-failure-silence-ms", "x", self->last_failure_detect_ms);
  g_variant_dict_insert (metrics, "topology-version", "t", self->topology_version);
  g_variant_dict_insert (metrics, "topology-errors", "t", self->topology_errors);
  g_variant_dict_insert (metrics, "failed-requests", "t", self->failed_requests);
  g_variant_dict_insert (metrics, "hop-failures", "t", self->hop_failures);
  g_variant_dict_insert (metrics, "dropped-messages", "t", self->dropped_messages);
  g_variant_dict_insert (metrics, "results-sent", "t", self->results_sent);
  g_variant_dict_insert (metrics, "results-skipped", "t", self->results_skipped);
  g_variant_dict_insert (metrics, "failures-reported", "t", self->failures_reported);
  g_variant_dict_insert (metrics, "failures-received", "t", self->failures_received);
  g_variant_dict_insert (metrics, "cancels-sent", "t", self->cancels_sent);
  g_variant_dict_insert (metrics, "cancels-received", "t", self->cancels_received);
  g_variant_dict_insert (metrics, "requests-orphaned", "t", self->orphans_ended);
  g_variant_dict_insert (metrics, "peers-other-model", "u", self->peers_other_model);
  g_variant_dict_insert (metrics, "cancelled-work-dropped", "t", self->cancelled_dropped);
}

/* What the keys above are in /metrics (docs/metrics.md). */
static const ExoMetricEntry node_metric_entries[] = {
  { .key = "node-id", .kind = EXO_METRIC_INFO, .name = "exo_node_info",
    .help = "The node's id and model (value 1); `exoctl node` shows the topology." },
  { .key = "model-id", .kind = EXO_METRIC_INFO, .name = "exo_node_info",
    .help = "The node's id and model (value 1); `exoctl node` shows the topology." },
  { .key = "n-layers", .kind = EXO_METRIC_GAUGE, .name = "exo_node_model_layers",
    .help = "Layers of the node's model." },
  { .key = "memory-mib", .kind = EXO_METRIC_GAUGE, .name = "exo_node_memory_bytes",
    .scale = 1024.0 * 1024.0, .help = "The memory the node announces to its peers." },
  { .key = "requests", .kind = EXO_METRIC_COUNTER, .name = "exo_node_requests_total",
    .help = "Requests the node started." },
  { .key = "requests-in-flight", .kind = EXO_METRIC_GAUGE, .name = "exo_node_requests_in_flight",
    .help = "Requests the node is working on." },
  { .key = "tokens-generated", .kind = EXO_METRIC_COUNTER, .name = "exo_node_tokens_generated_total",
    .help = "Tokens the node's requests generated." },
  { .key = "layers-computed", .kind = EXO_METRIC_COUNTER, .name = "exo_node_layers_computed_total",
    .help = "Layers this node computed (each layer of each position)." },
  { .key = "shard-start", .kind = EXO_METRIC_GAUGE, .name = "exo_node_shard_start_layer",
    .help = "The first layer of the node's shard (-1: none)." },
  { .key = "shard-end", .kind = EXO_METRIC_GAUGE, .name = "exo_node_shard_end_layer",
    .help = "The last layer of the node's shard (-1: none)." },
  { .key = "ring-size", .kind = EXO_METRIC_GAUGE, .name = "exo_node_ring_nodes",
    .help = "Nodes in the ring the model is split over." },
  { .key = "peers", .kind = EXO_METRIC_GAUGE, .name = "exo_node_peers_usable",
    .help = "Peers the node can use now." },
  { .key = "peers-known", .kind = EXO_METRIC_GAUGE, .name = "exo_node_peers_known",
    .help = "Peers the node knows of." },
  { .key = "peers-failed", .kind = EXO_METRIC_COUNTER, .name = "exo_node_peer_failures_total",
    .help = "Peers found failed." },
  { .key = "peers-joined", .kind = EXO_METRIC_COUNTER, .name = "exo_node_peers_joined_total",
    .help = "Peers that joined." },
  /* a changing id: a label would make a new series at every failure */
  { .key = "last-failed-peer", .kind = EXO_METRIC_HIDDEN },
  { .key = "last-failure-silence-ms", .kind = EXO_METRIC_GAUGE,
    .name = "exo_node_last_failure_silence_seconds", .scale = 1e-3,
    .help = "How long the last failed peer was silent before it was found failed." },
  { .key = "topology-version", .kind = EXO_METRIC_GAUGE, .name = "exo_node_topology_version",
    .help = "The version of the node's topology." },
  { .key = "topology-errors", .kind = EXO_METRIC_COUNTER, .name = "exo_node_topology_errors_total",
    .help = "Topology updates that failed." },
  { .key = "failed-requests", .kind = EXO_METRIC_COUNTER, .name = "exo_node_request_failures_total",
    .help = "Requests that failed." },
  { .key = "hop-failures", .kind = EXO_METRIC_COUNTER, .name = "exo_node_hop_failures_total",
    .help = "Calls to the next node of the ring that failed." },
  { .key = "dropped-messages", .kind = EXO_METRIC_COUNTER, .name = "exo_node_dropped_messages_total",
    .help = "Messages from peers the node dropped." },
  { .key = "results-sent", .kind = EXO_METRIC_COUNTER, .name = "exo_node_results_sent_total",
    .help = "Token results the node of the last shard sent to peers." },
  { .key = "results-skipped", .kind = EXO_METRIC_COUNTER, .name = "exo_node_results_skipped_total",
    .help = "Tokens the API node learnt from the next input it was sent, without a result call." },
  { .key = "failures-reported", .kind = EXO_METRIC_COUNTER, .name = "exo_node_failures_reported_total",
    .help = "Failures of other nodes' requests reported to their API node." },
  { .key = "failures-received", .kind = EXO_METRIC_COUNTER, .name = "exo_node_failures_received_total",
    .help = "Failures of this node's requests that peers reported." },
  { .key = "cancels-sent", .kind = EXO_METRIC_COUNTER, .name = "exo_node_cancels_sent_total",
    .help = "Cancellations the node sent to its peers." },
  { .key = "cancels-received", .kind = EXO_METRIC_COUNTER, .name = "exo_node_cancels_received_total",
    .help = "Cancellations the node received." },
  { .key = "requests-orphaned", .kind = EXO_METRIC_COUNTER, .name = "exo_node_requests_orphaned_total",
    .help = "Other nodes' requests ended here because their API node failed or left." },
  { .key = "peers-other-model", .kind = EXO_METRIC_GAUGE, .name = "exo_node_peers_other_model",
    .help = "Usable peers left out of the ring: their engine's model digest is not ours." },
  { .key = "cancelled-work-dropped", .kind = EXO_METRIC_COUNTER,
    .name = "exo_node_cancelled_work_dropped_total",
    .help = "Work for cancelled requests the node dropped." },
};

void
node_add_metric_entries (ExoResourceClass *klass)
{
  exo_resource_class_add_metric_entries (klass, node_metric_entries,
                                         G_N_ELEMENTS (node_metric_entries));
}
