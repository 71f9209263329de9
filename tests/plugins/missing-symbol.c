/* missing-symbol.c: a shared object without the exo_plugin_descriptor
 * symbol.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gmodule.h>

G_MODULE_EXPORT int not_an_exo_plugin (void);

G_MODULE_EXPORT int
not_an_exo_plugin (void)
{
  return 42;
}
