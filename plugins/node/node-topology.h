/* node-topology.h: the cluster topology of docs/cluster-protocol.md
 * (exo's Topology): nodes with their device capabilities, and the peer
 * graph.  JSON in and out with json-glib; GVariant out for ExoNodeRole.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Limits on what a peer may send us. */
#define NODE_TOPOLOGY_MAX_NODES   1024
#define NODE_TOPOLOGY_MAX_EDGES   16384
#define NODE_TOPOLOGY_MAX_ID_LEN  256
/* The largest flops value (TFLOPS) accepted or written out. */
#define NODE_CAPS_MAX_FLOPS       1e15

typedef struct {
  char    *model;
  char    *chip;
  guint64  memory;     /* MiB */
  double   fp32;
  double   fp16;
  double   int8;
  char    *digest;     /* its engine's model digest; NULL: unknown */
} NodeCaps;

NodeCaps *node_caps_new           (const char *model,
                                   const char *chip,
                                   guint64     memory);
NodeCaps *node_caps_copy          (const NodeCaps *caps);
void      node_caps_free          (NodeCaps       *caps);
/* From/to the a{sv} of ExoPeerHandle (model s, chip s, memory t,
 * flops-fp32 d, flops-fp16 d, flops-int8 d, model-digest s).  Missing keys:
 * "", 0, NULL; a digest that is not printable ASCII of at most
 * EXO_MODEL_DIGEST_MAX_LEN bytes is dropped (unknown). */
NodeCaps *node_caps_from_variant  (GVariant       *variant);
GVariant *node_caps_to_variant    (const NodeCaps *caps);
gboolean  node_caps_equal         (const NodeCaps *a,
                                   const NodeCaps *b);
/* @digest if it is a model digest (see above), else NULL. */
const char *node_caps_valid_digest (const char *digest);

typedef struct {
  GHashTable *nodes;          /* id → NodeCaps */
  GHashTable *edges;          /* from id → GPtrArray of NodeEdge */
  char       *active_node_id;
} NodeTopology;

typedef struct {
  char *from_id;
  char *to_id;
  char *description;
} NodeEdge;

NodeTopology *node_topology_new         (void);
void          node_topology_free        (NodeTopology       *topology);
NodeTopology *node_topology_copy        (const NodeTopology *topology);
/* Sets (replaces) the capabilities of @id. */
void          node_topology_update_node (NodeTopology       *topology,
                                         const char         *id,
                                         const NodeCaps     *caps);
void          node_topology_add_edge    (NodeTopology       *topology,
                                         const char         *from_id,
                                         const char         *to_id,
                                         const char         *description);
void          node_topology_remove_node (NodeTopology       *topology,
                                         const char         *id);
/* Merges @other, the answer of peer @peer_id: what a node says about itself
 * wins; what it says about others only fills gaps.  Nodes in @exclude
 * (a set of ids, may be NULL) are left out, and so are new nodes past
 * NODE_TOPOLOGY_MAX_NODES. */
void          node_topology_merge       (NodeTopology       *topology,
                                         const char         *peer_id,
                                         const NodeTopology *other,
                                         GHashTable         *exclude);
/* Node ids, sorted. */
GPtrArray    *node_topology_list_nodes  (const NodeTopology *topology);

/* Adds "nodes" (a{sa{sv}}), "edges" (a(sss)) and, when set, "active-node-id"
 * (s) to an a{sv} builder: EXO_NODE_ROLE_TOPOLOGY_TYPE without the node's
 * own view. */
void          node_topology_build_variant (const NodeTopology *topology,
                                           GVariantBuilder    *dict);
/* The same as a whole a{sv} (not floating). */
GVariant     *node_topology_to_variant    (const NodeTopology *topology);

/* Adds "nodes", "peer_graph" and "active_node_id" members to an open object. */
void          node_topology_build_json  (const NodeTopology *topology,
                                         JsonBuilder        *builder);
char         *node_topology_to_json     (const NodeTopology *topology);
/* Parses and checks a TOPOLOGY (limits above).  G_IO_ERROR_INVALID_DATA. */
NodeTopology *node_topology_from_json   (const char         *json,
                                         gssize              length,
                                         GError            **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NodeTopology, node_topology_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NodeCaps, node_caps_free)

G_END_DECLS
