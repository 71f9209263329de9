/* exo-registry.h: the live resources of a process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-resource.h>

G_BEGIN_DECLS

#define EXO_TYPE_REGISTRY (exo_registry_get_type ())

EXO_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ExoRegistry, exo_registry, EXO, REGISTRY, GObject)

EXO_AVAILABLE_IN_ALL
ExoRegistry *exo_registry_get_default (void);
EXO_AVAILABLE_IN_ALL
ExoResource *exo_registry_lookup      (ExoRegistry *self,
                                       const char  *id);
EXO_AVAILABLE_IN_ALL
GPtrArray   *exo_registry_list        (ExoRegistry *self);
EXO_AVAILABLE_IN_ALL
guint        exo_registry_get_size    (ExoRegistry *self);

G_END_DECLS
