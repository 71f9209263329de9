/* http-node-json.h: the node's typed answers (ExoNodeRole, exo-node-role.h)
 * as the JSON of the wire (docs/cluster-protocol.md): the models of
 * GET /v1/models and GET /v1/models/{id}, the TOPOLOGY of POST /peer/v1/topology and
 * GET /v1/topology.  Pure: GLib, json-glib and libexo, no server, no
 * main context; the answers are built in the caller's thread.  Not
 * installed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* {"object": "list", "data": [model…]} from EXO_NODE_ROLE_MODELS_TYPE: each
 * model {"id", "object": "model", then "created", "owned_by", "n_layers",
 * "ready" when the node gave them (of the documented types)}.  A model
 * without a string `id` is left out. */
JsonNode *http_node_models_to_json   (GVariant *models);

/* The model @id of EXO_NODE_ROLE_MODELS_TYPE as one model object of
 * GET /v1/models ({"id", "object": "model", …}: GET /v1/models/{id}), or
 * NULL when @models has no model @id. */
JsonNode *http_node_model_to_json    (GVariant   *models,
                                      const char *id);

/* The `id` of the first model of EXO_NODE_ROLE_MODELS_TYPE, or NULL. */
char     *http_node_models_first_id  (GVariant *models);

/* The TOPOLOGY of docs/cluster-protocol.md from EXO_NODE_ROLE_TOPOLOGY_TYPE:
 * "nodes" (sorted by id, the first of a repeated id kept), "peer_graph"
 * (edges grouped by their from id, sorted; in the node's order within a
 * group), "active_node_id" (null when absent), then the node's view when
 * the node gave it: "node_id", "version", "model_id", "n_layers",
 * "partitions", "shards".  Keys of another type than documented are
 * treated as absent.  Flops and fractions are written as JSON can hold
 * them: non-finite values as 0, flops outside 1e-4..1e15 TFLOPS as 0 or
 * 1e15 (json-glib writes neither 1e+17.0 nor inf as JSON). */
JsonNode *http_node_topology_to_json (GVariant *topology);

G_END_DECLS
