/* exo-plugin-python.h: the interface between libexo's plugin loader and the
 * Python loader module (src/python-loader/).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Not installed and not given to g-ir-scanner.  libexo (exo-plugin-python.c)
 * dlopens the module lazily, the first time a Python plugin is found, and
 * calls its one exported function, EXO_PYTHON_LOADER_SYMBOL, to import a
 * file; a process without Python plugins never loads libpython.
 *
 * Rules: the import function is called from the thread that uses the
 * ExoPluginLoader, under libexo's python_loader lock (one import at a time
 * in the process).  It takes the GIL itself and releases it before it
 * returns.  Everything it fills in is allocated with GLib and freed by
 * _exo_python_plugin_clear().
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* "2": the function takes a skip callback; a module of the old interface
 * (another build's, through EXO_PYTHON_LOADER) is refused for want of it. */
#define EXO_PYTHON_LOADER_SYMBOL "exo_python_loader_import2"
#define EXO_PYTHON_LOADER_MAX_TYPES 64

typedef struct
{
  guint32   abi_major;
  guint32   abi_minor;
  char     *name;
  char     *version;
  char     *description;
  guint     n_types;
  char    **type_names;   /* config type names, n_types of them */
  GType    *types;        /* the GTypes of the Python classes */
} ExoPythonPlugin;

/* Asked, before any code of a plugin runs, with the name its source
 * declares (a literal `'name'` in a top-level `EXO_PLUGIN = {...}`, read
 * without running it): TRUE, with @error set, if the plugin must not be
 * imported (a plugin of that name was loaded from an earlier folder). */
typedef gboolean (*ExoPythonLoaderSkipFunc) (const char  *name,
                                             gpointer     user_data,
                                             GError     **error);

/* Imports @real_path (a `*.py` file or a package's `__init__.py`) and fills
 * @plugin from its EXO_PLUGIN declaration, unless @skip (called first, when
 * the name can be read from the source) says not to.  On failure sets
 * @error, in EXO_PLUGIN_ERROR, one line starting with @shown_path. */
typedef gboolean (*ExoPythonLoaderImportFunc) (const char               *real_path,
                                               const char               *shown_path,
                                               ExoPythonLoaderSkipFunc   skip,
                                               gpointer                  skip_data,
                                               ExoPythonPlugin          *plugin,
                                               GError                  **error);

static inline void
_exo_python_plugin_clear (ExoPythonPlugin *plugin)
{
  g_clear_pointer (&plugin->name, g_free);
  g_clear_pointer (&plugin->version, g_free);
  g_clear_pointer (&plugin->description, g_free);
  g_clear_pointer (&plugin->type_names, g_strfreev);
  g_clear_pointer (&plugin->types, g_free);
  plugin->n_types = 0;
}

G_END_DECLS
