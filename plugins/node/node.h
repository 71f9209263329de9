/* node.h: the `node` plugin's resource type (config type "node").
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>

G_BEGIN_DECLS

#define EXO_TYPE_CLUSTER_NODE (exo_cluster_node_get_type ())
G_DECLARE_FINAL_TYPE (ExoClusterNode, exo_cluster_node, EXO, CLUSTER_NODE, ExoManagedResource)

/* The plugin's register function (tests that compile the plugin in call
 * it through the plugin loader's register_builtin). */
const ExoPluginDescriptor *exo_plugin_descriptor (void);

G_END_DECLS
