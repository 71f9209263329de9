/* wrong-abi-major.c: a test plugin built for the next plugin ABI major.
 * Its register function must never run.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <exo/exo.h>
#include <stdlib.h>

static void
wrong_abi_major_register (ExoPluginRegistrar *registrar)
{
  abort ();
}

G_MODULE_EXPORT const ExoPluginDescriptor *exo_plugin_descriptor (void);

G_MODULE_EXPORT const ExoPluginDescriptor *
exo_plugin_descriptor (void)
{
  static const ExoPluginDescriptor descriptor = {
    EXO_PLUGIN_ABI_MAJOR + 1, 0,
    "wrong-abi-major", "1.0.0", "Built for the next ABI major",
    wrong_abi_major_register, { NULL, }
  };
  return &descriptor;
}
