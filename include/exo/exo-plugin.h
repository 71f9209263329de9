/* exo-plugin.h: the plugin ABI (docs/design.md §5) and the loader.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <gmodule.h>
#include <exo/exo-resource.h>

G_BEGIN_DECLS

/**
 * ExoPluginRegistrar:
 *
 * Given to a plugin's register function: binds config type names to GTypes.
 */
typedef struct _ExoPluginRegistrar ExoPluginRegistrar;

typedef void (*ExoPluginRegisterFunc) (ExoPluginRegistrar *registrar);

/**
 * ExoPluginDescriptor:
 * @abi_major: %EXO_PLUGIN_ABI_MAJOR the plugin was built with
 * @abi_minor: %EXO_PLUGIN_ABI_MINOR the plugin was built with
 * @name: unique plugin name, e.g. `"udp-discovery"`
 * @version: the plugin's version
 * @description: one line for people
 * @register_func: registers the plugin's types
 *
 * What EXO_PLUGIN_DEFINE() exports.  Do not fill it in by hand.
 */
typedef struct {
  guint32                abi_major;
  guint32                abi_minor;
  const char            *name;
  const char            *version;
  const char            *description;
  ExoPluginRegisterFunc  register_func;
  /*< private >*/
  gpointer               reserved[4];
} ExoPluginDescriptor;

/**
 * EXO_PLUGIN_SYMBOL:
 *
 * The one symbol a plugin exports: `const ExoPluginDescriptor *exo_plugin_descriptor (void)`.
 */
#define EXO_PLUGIN_SYMBOL "exo_plugin_descriptor"

/**
 * EXO_PLUGIN_DEFINE:
 * @name: the plugin name (string literal)
 * @version: the plugin version (string literal)
 * @description: one line (string literal)
 * @register_func: a #ExoPluginRegisterFunc
 *
 * Declares a plugin.  Put it once in the plugin's shared object.
 */
#define EXO_PLUGIN_DEFINE(name, version, description, register_func)              \
  G_MODULE_EXPORT const ExoPluginDescriptor *exo_plugin_descriptor (void);          \
  G_MODULE_EXPORT const ExoPluginDescriptor *                                       \
  exo_plugin_descriptor (void)                                                      \
  {                                                                                 \
    static const ExoPluginDescriptor descriptor = {                                 \
      EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR,                                   \
      name, version, description, register_func, { NULL, }                          \
    };                                                                              \
    return &descriptor;                                                             \
  }

typedef const ExoPluginDescriptor *(*ExoPluginDescriptorFunc) (void);

EXO_AVAILABLE_IN_ALL
void        exo_plugin_registrar_add_type  (ExoPluginRegistrar *registrar,
                                            const char         *type_name,
                                            GType               type);
EXO_AVAILABLE_IN_ALL
void        exo_plugin_registrar_add_role  (ExoPluginRegistrar *registrar,
                                            GType               role,
                                            GType               type);
EXO_AVAILABLE_IN_ALL
GType       exo_plugin_lookup_role         (GType               role);
EXO_AVAILABLE_IN_ALL
const char *exo_plugin_registrar_get_plugin_name (ExoPluginRegistrar *registrar);

/**
 * ExoPluginError:
 * @EXO_PLUGIN_ERROR_NOT_SHARED_OBJECT: the file is not a loadable shared object
 * @EXO_PLUGIN_ERROR_MISSING_SYMBOL: no `exo_plugin_descriptor` symbol
 * @EXO_PLUGIN_ERROR_ABI: built for a different ABI major or a newer minor
 * @EXO_PLUGIN_ERROR_NAME_CLASH: a plugin of that name (or a type name it registers) is loaded
 * @EXO_PLUGIN_ERROR_UNSAFE_FILE: the file (or its folder) is writable by group or others
 * @EXO_PLUGIN_ERROR_INVALID: the descriptor or a registered type is invalid
 * @EXO_PLUGIN_ERROR_NOT_FOUND: no plugin file or type by that name
 * @EXO_PLUGIN_ERROR_SHADOWED: a plugin of that name was loaded from an
 *   earlier folder of the search path (a build tree before an installed
 *   copy): this file is skipped, which is not a fault.  Since plugin ABI 3.1
 */
typedef enum {
  EXO_PLUGIN_ERROR_NOT_SHARED_OBJECT,
  EXO_PLUGIN_ERROR_MISSING_SYMBOL,
  EXO_PLUGIN_ERROR_ABI,
  EXO_PLUGIN_ERROR_NAME_CLASH,
  EXO_PLUGIN_ERROR_UNSAFE_FILE,
  EXO_PLUGIN_ERROR_INVALID,
  EXO_PLUGIN_ERROR_NOT_FOUND,
  EXO_PLUGIN_ERROR_SHADOWED,
} ExoPluginError;

#define EXO_PLUGIN_ERROR (exo_plugin_error_quark ())
EXO_AVAILABLE_IN_ALL
GQuark exo_plugin_error_quark (void);

#define EXO_TYPE_PLUGIN_INFO (exo_plugin_info_get_type ())
/**
 * ExoPluginInfo:
 *
 * A loaded plugin: name, version, path, description, and its type names.
 * Boxed, reference counted, immutable.
 */
typedef struct _ExoPluginInfo ExoPluginInfo;

EXO_AVAILABLE_IN_ALL
GType          exo_plugin_info_get_type        (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
ExoPluginInfo *exo_plugin_info_ref             (ExoPluginInfo *info);
EXO_AVAILABLE_IN_ALL
void           exo_plugin_info_unref           (ExoPluginInfo *info);
EXO_AVAILABLE_IN_ALL
const char    *exo_plugin_info_get_name        (ExoPluginInfo *info);
EXO_AVAILABLE_IN_ALL
const char    *exo_plugin_info_get_version     (ExoPluginInfo *info);
EXO_AVAILABLE_IN_ALL
const char    *exo_plugin_info_get_path        (ExoPluginInfo *info);
EXO_AVAILABLE_IN_ALL
const char    *exo_plugin_info_get_description (ExoPluginInfo *info);
EXO_AVAILABLE_IN_ALL
const char *const *exo_plugin_info_get_type_names (ExoPluginInfo *info);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoPluginInfo, exo_plugin_info_unref)

#define EXO_TYPE_PLUGIN_LOADER (exo_plugin_loader_get_type ())
EXO_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ExoPluginLoader, exo_plugin_loader, EXO, PLUGIN_LOADER, GObject)

EXO_AVAILABLE_IN_ALL
ExoPluginLoader *exo_plugin_loader_new            (void);
EXO_AVAILABLE_IN_ALL
void             exo_plugin_loader_add_search_dir (ExoPluginLoader *self,
                                                   const char      *dir);
EXO_AVAILABLE_IN_ALL
void             exo_plugin_loader_add_default_search_dirs (ExoPluginLoader *self);
EXO_AVAILABLE_IN_ALL
const char *const *exo_plugin_loader_get_search_dirs (ExoPluginLoader *self);
EXO_AVAILABLE_IN_ALL
ExoPluginInfo   *exo_plugin_loader_load_file      (ExoPluginLoader *self,
                                                   const char      *path,
                                                   GError         **error);
EXO_AVAILABLE_IN_ALL
guint            exo_plugin_loader_load_all       (ExoPluginLoader *self,
                                                   GPtrArray      **errors);
EXO_AVAILABLE_IN_ALL
gboolean         exo_plugin_loader_register_builtin (ExoPluginLoader           *self,
                                                     const ExoPluginDescriptor *descriptor,
                                                     GError                   **error);
EXO_AVAILABLE_IN_ALL
GType            exo_plugin_loader_lookup_type    (ExoPluginLoader *self,
                                                   const char      *type_name);
EXO_AVAILABLE_IN_ALL
ExoPluginInfo   *exo_plugin_loader_lookup_plugin_for_type (ExoPluginLoader *self,
                                                           const char      *type_name);
EXO_AVAILABLE_IN_ALL
GPtrArray       *exo_plugin_loader_list_plugins   (ExoPluginLoader *self);
EXO_AVAILABLE_IN_ALL
char           **exo_plugin_loader_list_type_names (ExoPluginLoader *self);

G_END_DECLS
