/* pipeline-monitor.h: the program's terminal output (pipeline-monitor.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Main context only.
 */
#pragma once

#include "pipeline.h"

G_BEGIN_DECLS

typedef struct _PipelineMonitor PipelineMonitor;

PipelineMonitor *pipeline_monitor_new  (GPtrArray       *resources,
                                        PipelineRun     *run,
                                        gboolean         enabled);
void             pipeline_monitor_say  (PipelineMonitor *self,
                                        const char      *line);
void             pipeline_monitor_stop (PipelineMonitor *self);
void             pipeline_monitor_free (PipelineMonitor *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PipelineMonitor, pipeline_monitor_free)

G_END_DECLS
