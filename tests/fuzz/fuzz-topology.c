/* fuzz-topology.c: a peer's answer to POST /peer/v1/topology, as the node
 * parses it (node_topology_from_json () of plugins/node/node-topology.c,
 * compiled in), then merges it and writes its own topology.
 *
 * What the node writes must be strict JSON (json-glib once wrote inf.0 and
 * 1e+17.0) and must parse back to the same nodes; the http-server's JSON of
 * the same topology, typed (plugins/http-server/http-node-json.c, compiled
 * in), must be the same text.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-common.h"
#include "node-topology.h"
#include "http-node-json.h"

#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(NodeTopology) topology = NULL;
  g_autoptr(NodeTopology) merged = NULL;
  g_autoptr(NodeTopology) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;

  exo_fuzz_init ();
  if (size > G_MAXSSIZE)
    return 0;
  topology = node_topology_from_json ((const char *) data, (gssize) size, &error);
  if (topology == NULL)
    {
      EXO_FUZZ_CHECK (error != NULL && g_utf8_validate (error->message, -1, NULL), "error");
      return 0;
    }

  /* As the node does with a peer's answer. */
  merged = node_topology_new ();
  {
    g_autoptr(NodeCaps) self = node_caps_new ("self", "x86_64", 1024);
    node_topology_update_node (merged, "self", self);
  }
  node_topology_merge (merged, "peer", topology, NULL);

  text = node_topology_to_json (merged);
  exo_fuzz_assert_json (text, strlen (text), "the topology we write");
  /* The http-server writes the node's typed topology (ExoNodeRole) as the
   * same text: what peers of every build read. */
  {
    g_autoptr(GVariant) typed = node_topology_to_variant (merged);
    g_autoptr(JsonNode) root = http_node_topology_to_json (typed);
    g_autoptr(JsonGenerator) generator = json_generator_new ();
    g_autofree char *served = NULL;

    json_generator_set_root (generator, root);
    served = exo_json_fix_generated (json_generator_to_data (generator, NULL), NULL);
    EXO_FUZZ_CHECK (g_str_equal (served, text), "the server writes %s for the node's %s", served, text);
  }
  again = node_topology_from_json (text, -1, &error);
  /* Only a count limit may refuse it (a peer of 1024 nodes and us). */
  EXO_FUZZ_CHECK (again != NULL || strstr (error->message, "more than") != NULL,
                  "our own topology is refused: %s (%s)", error->message, text);
  EXO_FUZZ_CHECK (again == NULL || g_hash_table_size (again->nodes) == g_hash_table_size (merged->nodes),
                  "nodes lost in the round trip");
  return 0;
}
