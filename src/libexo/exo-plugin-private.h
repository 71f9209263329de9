/* exo-plugin-private.h: what the files of the plugin loader share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Not installed and not given to g-ir-scanner.  It holds the structures
 * behind the public opaque types (ExoPluginLoader, ExoPluginInfo,
 * ExoPluginRegistrar) and the records they keep, the limits on names, and
 * the functions one file of the loader calls in another.
 *
 * The loader's files:
 *
 *   exo-plugin.c            ExoPluginLoader: search folders, loading files
 *                           and built-in plugins (the descriptor and ABI
 *                           checks, the commit of an accepted plugin),
 *                           scanning folders, the lookups; ExoPluginInfo
 *   exo-plugin-registrar.c  what a plugin's register function calls:
 *                           exo_plugin_registrar_add_type(), _add_role(),
 *                           the process-wide table of roles and
 *                           exo_plugin_lookup_role()
 *   exo-plugin-checks.c     checks on what comes from outside: names, the
 *                           strings shown in errors, the file and folder
 *                           permissions of a plugin file
 *   exo-plugin-python.c     Python plugins: which files are candidates, the
 *                           lazy dlopen of the Python loader module
 *                           (src/python-loader/, interface in
 *                           exo-plugin-python.h) and the registration of
 *                           what it imported
 *
 * The rules, for all of them:
 *
 * - A loader is used from one thread (the one that made it); it has no
 *   lock.  A registrar lives on the stack of one load, on that thread.
 * - The table of roles is the process's, as GTypes are: it is read and
 *   written only under its G_LOCK (exo-plugin-registrar.c), and
 *   exo_plugin_lookup_role() may be called from any thread.
 * - Everything a plugin gives (its descriptor, names, types) is hostile
 *   until checked: nothing but the ABI fields is read before the ABI check,
 *   names are checked before they are stored or shown, and a refused
 *   plugin leaves nothing reachable.  The plugin's own code runs in two
 *   calls out, both in exo-plugin.c: its descriptor function and its
 *   register function (which calls the registrar's functions).
 * - Library code never logs: every refusal is a one-line GError in
 *   EXO_PLUGIN_ERROR that starts with the file's path.
 */
#pragma once

#include "exo-private.h"

G_BEGIN_DECLS

/* The characters allowed in plugin names and type names: they appear in
 * config files, D-Bus properties and one-line error messages. */
#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
#define NAME_MAX_LEN 128

struct _ExoPluginInfo
{
  gatomicrefcount  ref_count;
  char            *name;
  char            *version;
  char            *path;          /* "" for a built-in plugin */
  guint            search_index;  /* the search folder it was found in; G_MAXUINT if none */
  char            *description;
  char           **type_names;
};

typedef struct
{
  char  *type_name;
  GType  type;
} RegisteredType;

struct _ExoPluginRegistrar
{
  ExoPluginLoader *loader;
  const char      *plugin_name;
  const char      *where;         /* the path, or "built-in plugin 'x'" */
  GArray          *types;         /* RegisteredType */
  GArray          *roles;         /* RegisteredRole */
  GError          *error;         /* the first thing wrong */
};

typedef struct
{
  GType  role;
  GType  type;
} RegisteredRole;

typedef struct
{
  GType          type;
  ExoPluginInfo *info;            /* borrowed from plugins */
} TypeEntry;

struct _ExoPluginLoader
{
  GObject     parent_instance;

  GPtrArray  *search_dirs;        /* char*, NULL-terminated */
  GPtrArray  *plugins;            /* ExoPluginInfo*, in load order */
  GHashTable *plugins_by_name;    /* name (borrowed) -> ExoPluginInfo* (borrowed) */
  GHashTable *types;              /* type name (borrowed) -> TypeEntry* */
  GHashTable *real_paths;         /* real path of every loaded file (owned) */
  guint       scanning;           /* index of the search folder load_all() scans, else G_MAXUINT */
};

/* exo-plugin.c */
typedef void (*ExoPluginRegisterFull) (ExoPluginRegistrar *registrar,
                                       gpointer            user_data);
ExoPluginInfo *_exo_plugin_loader_register  (ExoPluginLoader           *self,
                                             const ExoPluginDescriptor *descriptor,
                                             ExoPluginRegisterFull      register_full,
                                             gpointer                   user_data,
                                             const char                *path,
                                             const char                *where,
                                             gboolean                  *register_ran,
                                             GError                   **error);

/* exo-plugin-python.c */
gboolean       _exo_plugin_is_python_file      (const char      *name);
gboolean       _exo_plugin_python_is_candidate (const char      *path);
ExoPluginInfo *_exo_plugin_python_load         (ExoPluginLoader *self,
                                                const char      *path,
                                                const char      *real_path,
                                                GError         **error);

/* exo-plugin-registrar.c */
gboolean _exo_plugin_claim_roles            (GArray      *wanted,
                                             const char  *where,
                                             const char  *plugin_name,
                                             GError     **error);
void     _exo_plugin_registered_type_clear  (gpointer     data);

/* exo-plugin-checks.c */
gboolean _exo_plugin_name_is_valid          (const char  *name);
char    *_exo_plugin_printable              (const char  *s);
char    *_exo_plugin_one_line               (const char  *s);
gboolean _exo_plugin_check_file_is_safe     (const char  *path,
                                             char       **real_path,
                                             GError     **error);

G_END_DECLS
