/* exo-plugin.c: the plugin loader (docs/design.md §5).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns ExoPluginLoader: the search folders, exo_plugin_loader_load_file()
 * and _register_builtin() (the descriptor and ABI checks shared by both,
 * the call of the plugin's register function, the commit of an accepted
 * plugin), scanning the folders (_load_all()), the lookups of types and
 * plugins, and ExoPluginInfo, the record of a loaded plugin.  The
 * registrar is in exo-plugin-registrar.c, the checks on names and files in
 * exo-plugin-checks.c; exo-plugin-private.h lists the files and the rules.
 *
 * Rules: a loader is used from one thread, without a lock.  A plugin's
 * code is called out twice: its descriptor function (load_file) and its
 * register function (_exo_plugin_loader_register); until its registrar is
 * committed nothing of the plugin is reachable, and a module whose
 * register function ran stays resident.  Library code never logs.
 */
#include "exo-plugin-private.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef EXO_PLUGINDIR
# define EXO_PLUGINDIR "/usr/local/lib/exo-1/plugins"
#endif

/**
 * ExoPluginLoader:
 *
 * Finds, checks and loads plugins, and maps config type names to the GTypes
 * the plugins register.
 *
 * A plugin file is refused, with an error in %EXO_PLUGIN_ERROR whose message
 * is one line that starts with the file's path and says why, when:
 *
 * - the file or its folder is writable by group or others, or is owned by
 *   someone other than root or this user (checked before any of its code
 *   runs);
 * - it is not a loadable shared object;
 * - it has no `exo_plugin_descriptor` symbol;
 * - it was built for a different plugin ABI major or a newer minor;
 * - its descriptor is invalid (no name, no register function);
 * - a plugin of the same name is already loaded (the first one loaded wins:
 *   search folders earlier in the order win);
 * - it registers a type that does not derive from #ExoResource, is abstract,
 *   or a type name that is registered twice.
 *
 * Loaded modules stay resident: GTypes cannot be unregistered.  A plugin
 * refused after its register function ran also stays in memory, but none of
 * its types is reachable through the loader.
 *
 * A loader is meant to be used from one thread.  Library code never logs: a
 * program decides what to say about the errors it gets.
 */

G_DEFINE_QUARK (exo-plugin-error-quark, exo_plugin_error)

/* ExoPluginInfo */

static ExoPluginInfo *
plugin_info_new (const ExoPluginDescriptor *descriptor,
                 const char                *path,
                 GArray                    *types)
{
  ExoPluginInfo *info = g_new0 (ExoPluginInfo, 1);

  g_atomic_ref_count_init (&info->ref_count);
  info->name = g_strdup (descriptor->name);
  info->version = g_strdup (descriptor->version != NULL ? descriptor->version : "");
  info->description = g_strdup (descriptor->description != NULL ? descriptor->description : "");
  info->path = g_strdup (path != NULL ? path : "");
  info->search_index = G_MAXUINT;
  info->type_names = g_new0 (char *, types->len + 1);
  for (guint i = 0; i < types->len; i++)
    info->type_names[i] = g_strdup (g_array_index (types, RegisteredType, i).type_name);

  return info;
}

/**
 * exo_plugin_info_ref:
 * @info: a plugin info
 *
 * Returns: (transfer full): @info
 */
ExoPluginInfo *
exo_plugin_info_ref (ExoPluginInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);

  g_atomic_ref_count_inc (&info->ref_count);
  return info;
}

/**
 * exo_plugin_info_unref:
 * @info: (transfer full): a plugin info
 */
void
exo_plugin_info_unref (ExoPluginInfo *info)
{
  g_return_if_fail (info != NULL);

  if (!g_atomic_ref_count_dec (&info->ref_count))
    return;

  g_free (info->name);
  g_free (info->version);
  g_free (info->path);
  g_free (info->description);
  g_strfreev (info->type_names);
  g_free (info);
}

G_DEFINE_BOXED_TYPE (ExoPluginInfo, exo_plugin_info, exo_plugin_info_ref, exo_plugin_info_unref)

/**
 * exo_plugin_info_get_name:
 * @info: a plugin info
 *
 * Returns: the plugin's unique name, e.g. `"udp-discovery"`
 */
const char *
exo_plugin_info_get_name (ExoPluginInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  return info->name;
}

/**
 * exo_plugin_info_get_version:
 * @info: a plugin info
 *
 * Returns: the plugin's version (empty if it gave none)
 */
const char *
exo_plugin_info_get_version (ExoPluginInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  return info->version;
}

/**
 * exo_plugin_info_get_path:
 * @info: a plugin info
 *
 * Returns: the file the plugin was loaded from, as found in the search
 *   folders; the empty string for a plugin built into the program
 */
const char *
exo_plugin_info_get_path (ExoPluginInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  return info->path;
}

/**
 * exo_plugin_info_get_description:
 * @info: a plugin info
 *
 * Returns: the plugin's one-line description (empty if it gave none)
 */
const char *
exo_plugin_info_get_description (ExoPluginInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  return info->description;
}

/**
 * exo_plugin_info_get_type_names:
 * @info: a plugin info
 *
 * Returns: (transfer none) (array zero-terminated=1): the config type names
 *   the plugin registered, in the order it registered them
 */
const char *const *
exo_plugin_info_get_type_names (ExoPluginInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  return (const char *const *) info->type_names;
}

/* The loader */

G_DEFINE_FINAL_TYPE (ExoPluginLoader, exo_plugin_loader, G_TYPE_OBJECT)

static void
exo_plugin_loader_finalize (GObject *object)
{
  ExoPluginLoader *self = EXO_PLUGIN_LOADER (object);

  g_clear_pointer (&self->types, g_hash_table_unref);
  g_clear_pointer (&self->plugins_by_name, g_hash_table_unref);
  g_clear_pointer (&self->real_paths, g_hash_table_unref);
  g_clear_pointer (&self->plugins, g_ptr_array_unref);
  g_clear_pointer (&self->search_dirs, g_ptr_array_unref);

  G_OBJECT_CLASS (exo_plugin_loader_parent_class)->finalize (object);
}

static void
exo_plugin_loader_class_init (ExoPluginLoaderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = exo_plugin_loader_finalize;
}

static void
exo_plugin_loader_init (ExoPluginLoader *self)
{
  self->scanning = G_MAXUINT;
  self->search_dirs = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (self->search_dirs, NULL);
  self->plugins = g_ptr_array_new_with_free_func ((GDestroyNotify) exo_plugin_info_unref);
  self->plugins_by_name = g_hash_table_new (g_str_hash, g_str_equal);
  self->types = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  self->real_paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

/**
 * exo_plugin_loader_new:
 *
 * Makes a loader with no search folders and no plugins.
 *
 * Returns: (transfer full): a new loader
 */
ExoPluginLoader *
exo_plugin_loader_new (void)
{
  return g_object_new (EXO_TYPE_PLUGIN_LOADER, NULL);
}

/**
 * exo_plugin_loader_add_search_dir:
 * @self: a loader
 * @dir: a folder to search for plugins (a relative path is taken from the
 *   current folder)
 *
 * Appends @dir to the search order.  Folders added first win: a plugin whose
 * name is already loaded from an earlier folder is refused.  Adding a folder
 * that is already in the order does nothing.
 */
void
exo_plugin_loader_add_search_dir (ExoPluginLoader *self,
                                  const char      *dir)
{
  g_autofree char *canonical = NULL;

  g_return_if_fail (EXO_IS_PLUGIN_LOADER (self));
  g_return_if_fail (dir != NULL && *dir != '\0');

  canonical = g_canonicalize_filename (dir, NULL);
  for (guint i = 0; i + 1 < self->search_dirs->len; i++)
    if (strcmp (g_ptr_array_index (self->search_dirs, i), canonical) == 0)
      return;

  /* Keep the array NULL-terminated. */
  g_ptr_array_insert (self->search_dirs, self->search_dirs->len - 1,
                      g_steal_pointer (&canonical));
}

/**
 * exo_plugin_loader_add_default_search_dirs:
 * @self: a loader
 *
 * Appends the folders of `EXO_PLUGIN_PATH` (separated by `:`), then the
 * installed plugin folder.  A daemon adds its `--plugin-dir` folders first.
 */
void
exo_plugin_loader_add_default_search_dirs (ExoPluginLoader *self)
{
  const char *env;

  g_return_if_fail (EXO_IS_PLUGIN_LOADER (self));

  env = g_getenv ("EXO_PLUGIN_PATH");
  if (env != NULL)
    {
      g_auto(GStrv) dirs = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);

      for (guint i = 0; dirs[i] != NULL; i++)
        if (dirs[i][0] != '\0')
          exo_plugin_loader_add_search_dir (self, dirs[i]);
    }

  exo_plugin_loader_add_search_dir (self, EXO_PLUGINDIR);
}

/**
 * exo_plugin_loader_get_search_dirs:
 * @self: a loader
 *
 * Returns: (transfer none) (array zero-terminated=1): the search folders,
 *   absolute, in the order they are searched
 */
const char *const *
exo_plugin_loader_get_search_dirs (ExoPluginLoader *self)
{
  g_return_val_if_fail (EXO_IS_PLUGIN_LOADER (self), NULL);

  return (const char *const *) self->search_dirs->pdata;
}

/* The checks and registration shared by shared objects, Python plugins
 * (exo-plugin-python.c) and built-in plugins.  @where is the path, or a
 * description of a built-in plugin.  The plugin's types are registered by
 * @register_full with @user_data when it is given (a Python plugin), else by
 * the descriptor's register function.  Sets *@register_ran when that was
 * called. */
ExoPluginInfo *
_exo_plugin_loader_register (ExoPluginLoader           *self,
                             const ExoPluginDescriptor *descriptor,
                             ExoPluginRegisterFull      register_full,
                             gpointer                   user_data,
                             const char                *path,
                             const char                *where,
                             gboolean                  *register_ran,
                             GError                   **error)
{
  ExoPluginRegistrar registrar = { 0, };
  ExoPluginInfo *existing;
  ExoPluginInfo *info;

  *register_ran = FALSE;

  /* Nothing but the first two fields may be read before the ABI check. */
  if (descriptor->abi_major != EXO_PLUGIN_ABI_MAJOR ||
      descriptor->abi_minor > EXO_PLUGIN_ABI_MINOR)
    {
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_ABI,
                   "%s: built for plugin ABI %u.%u, this exo-node has %u.%u",
                   where, (guint) descriptor->abi_major, (guint) descriptor->abi_minor,
                   (guint) EXO_PLUGIN_ABI_MAJOR, (guint) EXO_PLUGIN_ABI_MINOR);
      return NULL;
    }

  if (descriptor->name == NULL || descriptor->name[0] == '\0')
    {
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_INVALID,
                   "%s: invalid plugin descriptor: no name", where);
      return NULL;
    }
  if (!_exo_plugin_name_is_valid (descriptor->name))
    {
      g_autofree char *shown = _exo_plugin_printable (descriptor->name);
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_INVALID,
                   "%s: invalid plugin descriptor: invalid name '%s' "
                   "(use letters, digits, '-', '_', '.')",
                   where, shown);
      return NULL;
    }
  if (descriptor->register_func == NULL && register_full == NULL)
    {
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_INVALID,
                   "%s: invalid plugin descriptor: plugin '%s' has no register function",
                   where, descriptor->name);
      return NULL;
    }
  if ((descriptor->version != NULL && !g_utf8_validate (descriptor->version, -1, NULL)) ||
      (descriptor->description != NULL && !g_utf8_validate (descriptor->description, -1, NULL)))
    {
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_INVALID,
                   "%s: invalid plugin descriptor: plugin '%s' has a version or "
                   "description that is not UTF-8",
                   where, descriptor->name);
      return NULL;
    }

  existing = g_hash_table_lookup (self->plugins_by_name, descriptor->name);
  if (existing != NULL)
    {
      if (self->scanning != G_MAXUINT && existing->search_index < self->scanning)
        /* found again later in the search path: the earlier folder wins */
        g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_SHADOWED,
                     "%s: skipped: the plugin '%s' is already loaded from %s, earlier in "
                     "the search path", where, descriptor->name, existing->path);
      else if (existing->path[0] != '\0')
        g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_NAME_CLASH,
                     "%s: a plugin named '%s' is already loaded from %s",
                     where, descriptor->name, existing->path);
      else
        g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_NAME_CLASH,
                     "%s: a plugin named '%s' is already built into the program",
                     where, descriptor->name);
      return NULL;
    }

  registrar.loader = self;
  registrar.plugin_name = descriptor->name;
  registrar.where = where;
  registrar.types = g_array_new (FALSE, TRUE, sizeof (RegisteredType));
  g_array_set_clear_func (registrar.types, _exo_plugin_registered_type_clear);
  registrar.roles = g_array_new (FALSE, TRUE, sizeof (RegisteredRole));

  *register_ran = TRUE;
  if (register_full != NULL)
    register_full (&registrar, user_data);
  else
    descriptor->register_func (&registrar);

  if (registrar.error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&registrar.error));
      g_array_unref (registrar.types);
      g_array_unref (registrar.roles);
      return NULL;
    }
  if (!_exo_plugin_claim_roles (registrar.roles, where, descriptor->name, error))
    {
      g_array_unref (registrar.types);
      g_array_unref (registrar.roles);
      return NULL;
    }
  g_array_unref (registrar.roles);

  /* Commit: nothing of a refused plugin is reachable. */
  info = plugin_info_new (descriptor, path, registrar.types);
  info->search_index = self->scanning;
  g_ptr_array_add (self->plugins, info);
  g_hash_table_insert (self->plugins_by_name, info->name, info);
  for (guint i = 0; i < registrar.types->len; i++)
    {
      TypeEntry *entry = g_new0 (TypeEntry, 1);

      entry->type = g_array_index (registrar.types, RegisteredType, i).type;
      entry->info = info;
      g_hash_table_insert (self->types, info->type_names[i], entry);
    }

  g_array_unref (registrar.types);
  return info;
}

/**
 * exo_plugin_loader_load_file:
 * @self: a loader
 * @path: a plugin file
 * @error: return location for an error in %EXO_PLUGIN_ERROR
 *
 * Checks and loads one plugin file and registers its types.  See
 * #ExoPluginLoader for the reasons a file is refused; the error message is
 * one line that starts with @path.  The file's permissions are checked before
 * any of its code runs.
 *
 * A file whose name ends in `.py` is a Python plugin: it is imported by the
 * Python loader module, loaded (with libpython) only when the first Python
 * plugin is met, and declares itself in a dictionary `EXO_PLUGIN` (name,
 * version, description, abi, types); see docs/writing-plugins-python.md.
 * Besides the reasons above it is refused when it cannot be imported (a
 * syntax error, an exception, a failed import) or its declaration is
 * invalid, and when this program has no Python loader.
 *
 * Returns: (transfer none): the loaded plugin, owned by @self; %NULL on error
 */
ExoPluginInfo *
exo_plugin_loader_load_file (ExoPluginLoader  *self,
                             const char       *path,
                             GError          **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autofree char *real_path = NULL;
  ExoPluginDescriptorFunc descriptor_func = NULL;
  const ExoPluginDescriptor *descriptor;
  gboolean register_ran = FALSE;
  ExoPluginInfo *info;
  GModule *module;

  g_return_val_if_fail (EXO_IS_PLUGIN_LOADER (self), NULL);
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!_exo_plugin_check_file_is_safe (path, &real_path, error))
    return NULL;

  if (_exo_plugin_is_python_file (path))
    {
      info = _exo_plugin_python_load (self, path, real_path, error);
      if (info != NULL)
        g_hash_table_add (self->real_paths, g_steal_pointer (&real_path));
      return info;
    }

  /* Open exactly the file that was checked: a name without a '/' would make
   * dlopen() search the library path instead. */
  module = g_module_open_full (real_path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL, &local_error);
  if (module == NULL)
    {
      g_autofree char *reason = _exo_plugin_one_line (local_error->message);
      const char *shown = reason;

      /* dlerror() usually starts with the path again. */
      if (g_str_has_prefix (shown, real_path) && g_str_has_prefix (shown + strlen (real_path), ": "))
        shown += strlen (real_path) + 2;
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_NOT_SHARED_OBJECT,
                   "%s: not a loadable shared object: %s", path, shown);
      return NULL;
    }

  if (!g_module_symbol (module, EXO_PLUGIN_SYMBOL, (gpointer *) &descriptor_func) ||
      descriptor_func == NULL)
    {
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_MISSING_SYMBOL,
                   "%s: no symbol %s; not an exo plugin", path, EXO_PLUGIN_SYMBOL);
      g_module_close (module);
      return NULL;
    }

  descriptor = descriptor_func ();
  if (descriptor == NULL)
    {
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_INVALID,
                   "%s: invalid plugin descriptor: %s() returned NULL",
                   path, EXO_PLUGIN_SYMBOL);
      g_module_close (module);
      return NULL;
    }

  info = _exo_plugin_loader_register (self, descriptor, NULL, NULL, path, path,
                                      &register_ran, error);

  /* The register function may have registered GTypes, which cannot be
   * unregistered: from then on the code must stay. */
  if (info != NULL || register_ran)
    g_module_make_resident (module);
  g_module_close (module);

  if (info != NULL)
    g_hash_table_add (self->real_paths, g_steal_pointer (&real_path));

  return info;
}

/**
 * exo_plugin_loader_register_builtin:
 * @self: a loader
 * @descriptor: a descriptor compiled into the program, e.g. the result of
 *   the function EXO_PLUGIN_DEFINE() defines
 * @error: return location for an error in %EXO_PLUGIN_ERROR
 *
 * Registers a plugin that is part of the program, with the same checks as a
 * plugin file (except those about files).  Its path is the empty string.
 *
 * Returns: %TRUE if the plugin was registered
 */
gboolean
exo_plugin_loader_register_builtin (ExoPluginLoader            *self,
                                    const ExoPluginDescriptor  *descriptor,
                                    GError                    **error)
{
  g_autofree char *where = NULL;
  gboolean register_ran;

  g_return_val_if_fail (EXO_IS_PLUGIN_LOADER (self), FALSE);
  g_return_val_if_fail (descriptor != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* The name is read only once the ABI is known to match. */
  if (descriptor->abi_major == EXO_PLUGIN_ABI_MAJOR &&
      _exo_plugin_name_is_valid (descriptor->name))
    where = g_strdup_printf ("built-in plugin '%s'", descriptor->name);
  else
    where = g_strdup ("built-in plugin");

  return _exo_plugin_loader_register (self, descriptor, NULL, NULL, NULL, where,
                                      &register_ran, error) != NULL;
}

static gboolean
has_plugin_suffix (const char *name)
{
  return name[0] != '.' && g_str_has_suffix (name, ".so") && strlen (name) > 3;
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The entries of @dir, sorted bytewise; NULL (and @error) if @dir cannot be
 * read, NULL and no error if it does not exist. */
static GPtrArray *
list_dir_sorted (const char  *dir,
                 GError     **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GDir) d = g_dir_open (dir, 0, &local_error);
  g_autoptr(GPtrArray) names = NULL;
  const char *name;

  if (d == NULL)
    {
      if (!g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT) &&
          !g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR))
        {
          g_autofree char *reason = _exo_plugin_one_line (local_error->message);
          g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_NOT_FOUND,
                       "%s: cannot read the plugin folder: %s", dir, reason);
        }
      return NULL;
    }

  names = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_strings);

  return g_steal_pointer (&names);
}

/* Loads @path unless the same file is already loaded (a folder reached
 * twice, or a link to a loaded file). */
static void
load_candidate (ExoPluginLoader *self,
                const char      *path,
                guint           *n_loaded,
                GPtrArray       *errors)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *resolved = realpath (path, NULL);

  if (resolved != NULL && g_hash_table_contains (self->real_paths, resolved))
    return;

  if (exo_plugin_loader_load_file (self, path, &error) != NULL)
    (*n_loaded)++;
  else if (errors != NULL)
    g_ptr_array_add (errors, g_steal_pointer (&error));
}

static gboolean
is_dir (const char *path)
{
  struct stat st;

  return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

static void
scan_dir (ExoPluginLoader *self,
          const char      *dir,
          gboolean         descend,
          guint           *n_loaded,
          GPtrArray       *errors)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) names = list_dir_sorted (dir, &error);

  if (names == NULL)
    {
      if (error != NULL && errors != NULL)
        g_ptr_array_add (errors, g_steal_pointer (&error));
      return;
    }

  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (name[0] == '.')
        continue;

      if (is_dir (path))
        {
          g_autofree char *init = g_build_filename (path, "__init__.py", NULL);

          /* A Python package is a plugin, not a folder of plugins. */
          if (_exo_plugin_python_is_candidate (init))
            load_candidate (self, init, n_loaded, errors);
          else if (descend)
            scan_dir (self, path, FALSE, n_loaded, errors);
        }
      else if (has_plugin_suffix (name) ||
               (_exo_plugin_is_python_file (name) && _exo_plugin_python_is_candidate (path)))
        {
          /* Something that is not a file (a socket, a dangling link) is
           * refused, with its reason, by load_file. */
          load_candidate (self, path, n_loaded, errors);
        }
    }
}

/**
 * exo_plugin_loader_load_all:
 * @self: a loader
 * @errors: (out) (optional) (transfer full) (element-type GError):
 *   return location for the errors, one per refused file, in the order met
 *
 * Loads every `*.so` file in each search folder and in the folders directly
 * below it (the build tree has `plugins/<name>/<name>.so`), in search order
 * and sorted by name within a folder.  A `*.py` file, or a folder with an
 * `__init__.py` (a package), whose text declares `EXO_PLUGIN` in its first
 * 64 KiB is a Python plugin (see exo_plugin_loader_load_file()); other
 * Python files are not plugins and are skipped silently.  A refused file
 * does not stop the others.  A plugin found again in a later search folder
 * is not loaded; its error is %EXO_PLUGIN_ERROR_SHADOWED, which callers may
 * treat as a note rather than a fault.  A folder that does not exist is
 * skipped silently; the same file
 * reached twice is loaded once.
 *
 * Returns: the number of plugins this call loaded
 */
guint
exo_plugin_loader_load_all (ExoPluginLoader  *self,
                            GPtrArray       **errors)
{
  g_autoptr(GPtrArray) errs = NULL;
  guint n_loaded = 0;

  g_return_val_if_fail (EXO_IS_PLUGIN_LOADER (self), 0);

  if (errors != NULL)
    errs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_error_free);

  for (guint i = 0; i + 1 < self->search_dirs->len; i++)
    {
      self->scanning = i;
      scan_dir (self, g_ptr_array_index (self->search_dirs, i), TRUE, &n_loaded, errs);
    }
  self->scanning = G_MAXUINT;

  if (errors != NULL)
    *errors = g_steal_pointer (&errs);

  return n_loaded;
}

/**
 * exo_plugin_loader_lookup_type:
 * @self: a loader
 * @type_name: a config type name, e.g. `"udp-discovery"`
 *
 * Returns: the #GType a loaded plugin registered for @type_name, or
 *   %G_TYPE_INVALID if none did
 */
GType
exo_plugin_loader_lookup_type (ExoPluginLoader *self,
                               const char      *type_name)
{
  TypeEntry *entry;

  g_return_val_if_fail (EXO_IS_PLUGIN_LOADER (self), G_TYPE_INVALID);
  g_return_val_if_fail (type_name != NULL, G_TYPE_INVALID);

  entry = g_hash_table_lookup (self->types, type_name);
  return entry != NULL ? entry->type : G_TYPE_INVALID;
}

/**
 * exo_plugin_loader_lookup_plugin_for_type:
 * @self: a loader
 * @type_name: a config type name
 *
 * Returns: (transfer none) (nullable): the plugin that registered
 *   @type_name, owned by @self, or %NULL
 */
ExoPluginInfo *
exo_plugin_loader_lookup_plugin_for_type (ExoPluginLoader *self,
                                          const char      *type_name)
{
  TypeEntry *entry;

  g_return_val_if_fail (EXO_IS_PLUGIN_LOADER (self), NULL);
  g_return_val_if_fail (type_name != NULL, NULL);

  entry = g_hash_table_lookup (self->types, type_name);
  return entry != NULL ? entry->info : NULL;
}

/**
 * exo_plugin_loader_list_plugins:
 * @self: a loader
 *
 * Returns: (transfer full) (element-type ExoPluginInfo): the loaded
 *   plugins, in load order (the array frees its references)
 */
GPtrArray *
exo_plugin_loader_list_plugins (ExoPluginLoader *self)
{
  GPtrArray *list;

  g_return_val_if_fail (EXO_IS_PLUGIN_LOADER (self), NULL);

  list = g_ptr_array_new_full (self->plugins->len, (GDestroyNotify) exo_plugin_info_unref);
  for (guint i = 0; i < self->plugins->len; i++)
    g_ptr_array_add (list, exo_plugin_info_ref (g_ptr_array_index (self->plugins, i)));

  return list;
}

/**
 * exo_plugin_loader_list_type_names:
 * @self: a loader
 *
 * Returns: (transfer full) (array zero-terminated=1): every registered config
 *   type name, by plugin in load order, then in registration order
 */
char **
exo_plugin_loader_list_type_names (ExoPluginLoader *self)
{
  g_autoptr(GStrvBuilder) builder = NULL;

  g_return_val_if_fail (EXO_IS_PLUGIN_LOADER (self), NULL);

  builder = g_strv_builder_new ();
  for (guint i = 0; i < self->plugins->len; i++)
    {
      ExoPluginInfo *info = g_ptr_array_index (self->plugins, i);
      g_strv_builder_addv (builder, (const char **) info->type_names);
    }

  return g_strv_builder_end (builder);
}
