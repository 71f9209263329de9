/* fuzz-topology.c: a peer's answer to POST /peer/v1/topology, as the node
 * parses it (node_topology_from_json () of plugins/node/node-topology.c,
 * compiled in), then merges it and writes its own topology.
 *
 * What the node writes must be strict JSON (json-glib once wrote inf.0 and
 * 1e+17.0) and must parse back to the same nodes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-common.h"
#include "node-topology.h"

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
  again = node_topology_from_json (text, -1, &error);
  /* Only a count limit may refuse it (a peer of 1024 nodes and us). */
  EXO_FUZZ_CHECK (again != NULL || strstr (error->message, "more than") != NULL,
                  "our own topology is refused: %s (%s)", error->message, text);
  EXO_FUZZ_CHECK (again == NULL || g_hash_table_size (again->nodes) == g_hash_table_size (merged->nodes),
                  "nodes lost in the round trip");
  return 0;
}
