/* exo-node-state.h: exo-node's state directory and the node id kept in it
 * (see exo-node-state.c).
 *
 * Thread rules: synchronous, no main context; called from main() before
 * the resources exist.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The file in the state directory that holds the node id. */
#define EXO_NODE_ID_FILE "node-id"

char     *exo_node_config_relative_path (const char *path,
                                        const char *config_path);
char     *exo_node_state_dir_resolve (const char  *option,
                                      const char  *configured,
                                      const char  *config_path);

gboolean  exo_node_id_is_valid       (const char  *id,
                                      GError     **error);
char     *exo_node_id_load           (const char  *path,
                                      GError     **error);
char     *exo_node_id_load_or_create (const char  *state_dir);

G_END_DECLS
