/* newer-abi-minor.c: a test plugin built for a newer plugin ABI minor than
 * this libexo has.  Its register function must never run.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <exo/exo.h>
#include <stdlib.h>

static void
newer_abi_minor_register (ExoPluginRegistrar *registrar)
{
  abort ();
}

G_MODULE_EXPORT const ExoPluginDescriptor *exo_plugin_descriptor (void);

G_MODULE_EXPORT const ExoPluginDescriptor *
exo_plugin_descriptor (void)
{
  static const ExoPluginDescriptor descriptor = {
    EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR + 1,
    "newer-abi-minor", "1.0.0", "Built for a newer ABI minor",
    newer_abi_minor_register, { NULL, }
  };
  return &descriptor;
}
