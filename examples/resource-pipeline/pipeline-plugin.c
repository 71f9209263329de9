/* pipeline-plugin.c: the `resource-pipeline` exo-node plugin — the example's
 * resource types, for a config (pipeline.json) instead of the program.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The register function runs once, in the thread that loads the plugin.
 */
#include "pipeline.h"

static void
resource_pipeline_register (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "pipeline-receiver", PIPELINE_TYPE_RECEIVER);
  exo_plugin_registrar_add_type (registrar, "pipeline-reader", PIPELINE_TYPE_READER);
  exo_plugin_registrar_add_type (registrar, "pipeline-processor", PIPELINE_TYPE_PROCESSOR);
  exo_plugin_registrar_add_type (registrar, "pipeline-uploader", PIPELINE_TYPE_UPLOADER);
  exo_plugin_registrar_add_type (registrar, "pipeline-run", PIPELINE_TYPE_RUN);
}

EXO_PLUGIN_DEFINE ("resource-pipeline", "0.1.0",
                   "The resource-pipeline example: SQLite reader, file processor, HTTP uploader",
                   resource_pipeline_register)
