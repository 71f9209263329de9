/* exo-node-readiness.h: when exo-node tells the service manager it is
 * ready, and the STATUS= line (see exo-node-readiness.c).
 *
 * Thread rules: main thread, the daemon's main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>

#include "exo-sd-notify.h"

G_BEGIN_DECLS

/* STATUS= is sent at most once per this interval. */
#define EXO_NODE_STATUS_INTERVAL_US G_USEC_PER_SEC
/* Names listed per state in STATUS=; the rest are counted. */
#define EXO_NODE_STATUS_MAX_NAMES   3

typedef struct _ExoNodeReadiness ExoNodeReadiness;

ExoNodeReadiness *exo_node_readiness_new           (ExoSdNotify         *notify,
                                                    ExoResourceGroup    *root,
                                                    const char * const  *required);
void              exo_node_readiness_free          (ExoNodeReadiness    *self);

void              exo_node_readiness_set_bus_ready (ExoNodeReadiness    *self);
void              exo_node_readiness_set_stopping  (ExoNodeReadiness    *self);
gboolean          exo_node_readiness_is_ready      (ExoNodeReadiness    *self);
char             *exo_node_readiness_describe      (ExoNodeReadiness    *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoNodeReadiness, exo_node_readiness_free)

G_END_DECLS
