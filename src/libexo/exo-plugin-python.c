/* exo-plugin-python.c: Python plugins, on libexo's side.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns which files are Python plugin candidates (a `*.py` file, or a
 * package's `__init__.py`, whose first 64 KiB mention EXO_PLUGIN), the lazy
 * dlopen of the Python loader module (src/python-loader/, the interface in
 * exo-plugin-python.h) the first time one is loaded, and the registration of
 * what the module imported through the loader's common checks
 * (_exo_plugin_loader_register: ABI, name clash, the types).  The file and
 * folder permissions are checked by exo_plugin_loader_load_file() before
 * this file sees the path; for a package this file checks every other file
 * and folder in it the same way (check_package()), before its code runs.
 *
 * Rules: the module is opened once per process, and every import runs,
 * under the python_loader lock (the interpreter is the process's, as GTypes
 * are).  The module is opened without G_MODULE_BIND_LOCAL: Python's
 * extension modules (PyGObject's _gi) take libpython's symbols from the
 * global scope, as libpeas's Python loader does.  Library code never logs.
 */
#include "exo-plugin-private.h"
#include "exo-plugin-python.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef EXO_PYTHON_LOADER_PATH
# define EXO_PYTHON_LOADER_PATH "/usr/local/lib/exo-1/libexo-python-loader.so"
#endif

/* How much of a `*.py` file is read to find the EXO_PLUGIN marker. */
#define MARKER_SCAN_BYTES (64 * 1024)

G_LOCK_DEFINE_STATIC (python_loader);
static ExoPythonLoaderImportFunc import_func;   /* under python_loader */
static char *open_error;                        /* under python_loader; kept */

gboolean
_exo_plugin_is_python_file (const char *name)
{
  const char *base = strrchr (name, '/');

  base = base != NULL ? base + 1 : name;
  return base[0] != '.' && strlen (base) > 3 && g_str_has_suffix (base, ".py");
}

/* Whether @path is a Python file that declares a plugin: a plain read of at
 * most MARKER_SCAN_BYTES, before anything else of it is looked at, so that
 * helper modules next to plugins do not start Python. */
gboolean
_exo_plugin_python_is_candidate (const char *path)
{
  g_autofree char *buf = NULL;
  gssize got = 0;
  int fd;

  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0)
    {
      /* A link is followed by load_file (which checks its target); here a
       * link only has to exist to be a candidate, and be refused there if
       * it is wrong. */
      return errno == ELOOP;
    }

  buf = g_malloc (MARKER_SCAN_BYTES + 1);
  while (got < MARKER_SCAN_BYTES)
    {
      gssize n = read (fd, buf + got, MARKER_SCAN_BYTES - got);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      got += n;
    }
  close (fd);
  buf[got] = '\0';

  /* Not strstr(): the text may hold NUL bytes. */
  return g_strstr_len (buf, got, "EXO_PLUGIN") != NULL;
}

/* How deep, and how many entries, check_package() looks into a package
 * before it refuses it as too big to check. */
#define PACKAGE_MAX_DEPTH 8
#define PACKAGE_MAX_ENTRIES 4096

/* For @entry of a package that is a symbolic link: the folder its target
 * is in must be safe as well (others could swap the target there), as for
 * a plugin file that is a link (exo-plugin-checks.c). */
static gboolean
check_link_folder (const char  *path,
                   const char  *entry,
                   GError     **error)
{
  struct stat st;
  char *real;
  g_autofree char *folder = NULL;
  uid_t euid = geteuid ();

  if (lstat (entry, &st) != 0 || !S_ISLNK (st.st_mode))
    return TRUE;
  real = realpath (entry, NULL);
  if (real == NULL)
    {
      int saved_errno = errno;
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_UNSAFE_FILE,
                   "%s: cannot follow the link %s in its package: %s", path, entry,
                   g_strerror (saved_errno));
      return FALSE;
    }
  folder = g_path_get_dirname (real);
  free (real);
  if (stat (folder, &st) != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 ||
      (st.st_uid != 0 && st.st_uid != euid))
    {
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_UNSAFE_FILE,
                   "%s: %s in its package links into %s, which is writable by group or others "
                   "or not owned by root or this user; refusing to load", path, entry, folder);
      return FALSE;
    }
  return TRUE;
}

/* Whether everything under @dir (a package's folder, already checked
 * itself) is safe by the rule for plugin files: not writable by group or
 * others, owned by root or this user.  Links are followed (what they point
 * to is what Python reads), bounded by PACKAGE_MAX_DEPTH. */
static gboolean
check_package_dir (const char  *path,
                   const char  *dir,
                   guint        depth,
                   guint       *n_entries,
                   GError     **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GDir) d = g_dir_open (dir, 0, &local_error);
  uid_t euid = geteuid ();
  const char *name;

  if (d == NULL)
    {
      g_autofree char *reason = _exo_plugin_one_line (local_error->message);
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_UNSAFE_FILE,
                   "%s: cannot read its package folder %s: %s", path, dir, reason);
      return FALSE;
    }

  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *entry = g_build_filename (dir, name, NULL);
      struct stat st;

      if (++*n_entries > PACKAGE_MAX_ENTRIES)
        {
          g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_UNSAFE_FILE,
                       "%s: its package has more than %u files and folders; refusing to load",
                       path, (guint) PACKAGE_MAX_ENTRIES);
          return FALSE;
        }
      if (stat (entry, &st) != 0)
        {
          int saved_errno = errno;
          g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_UNSAFE_FILE,
                       "%s: cannot read %s in its package: %s", path, entry,
                       g_strerror (saved_errno));
          return FALSE;
        }
      if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        {
          g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_UNSAFE_FILE,
                       "%s: %s in its package is writable by group or others (mode %04o); "
                       "refusing to load", path, entry, (guint) (st.st_mode & 07777));
          return FALSE;
        }
      if (st.st_uid != 0 && st.st_uid != euid)
        {
          g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_UNSAFE_FILE,
                       "%s: %s in its package is owned by uid %u, neither root nor this "
                       "user (uid %u); refusing to load",
                       path, entry, (guint) st.st_uid, (guint) euid);
          return FALSE;
        }
      if (!check_link_folder (path, entry, error))
        return FALSE;
      if (S_ISDIR (st.st_mode))
        {
          if (depth + 1 > PACKAGE_MAX_DEPTH)
            {
              g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_UNSAFE_FILE,
                           "%s: its package is nested deeper than %u folders (%s); "
                           "refusing to load", path, (guint) PACKAGE_MAX_DEPTH, entry);
              return FALSE;
            }
          if (!check_package_dir (path, entry, depth + 1, n_entries, error))
            return FALSE;
        }
    }

  return TRUE;
}

/* For a package (@real_path is its `__init__.py`): the other files and
 * folders of it, which its import may read, are checked as the plugin file
 * itself was.  TRUE for a single-file plugin. */
static gboolean
check_package (const char  *path,
               const char  *real_path,
               GError     **error)
{
  g_autofree char *base = g_path_get_basename (real_path);
  g_autofree char *dir = NULL;
  guint n_entries = 0;

  if (strcmp (base, "__init__.py") != 0)
    return TRUE;
  dir = g_path_get_dirname (real_path);
  return check_package_dir (path, dir, 0, &n_entries, error);
}

/* The module's import function, opened on first use; NULL with @error if
 * this program has none.  Called with python_loader held. */
static ExoPythonLoaderImportFunc
get_import_func (const char  *path,
                 GError     **error)
{
  if (import_func == NULL && open_error == NULL)
    {
      g_autoptr(GError) local_error = NULL;
      const char *file = g_getenv ("EXO_PYTHON_LOADER");
      GModule *module;

      if (file == NULL || file[0] == '\0')
        file = EXO_PYTHON_LOADER_PATH;

      module = g_module_open_full (file, G_MODULE_BIND_LAZY, &local_error);
      if (module == NULL)
        open_error = _exo_plugin_one_line (local_error->message);
      else if (!g_module_symbol (module, EXO_PYTHON_LOADER_SYMBOL, (gpointer *) &import_func) ||
               import_func == NULL)
        {
          open_error = g_strdup_printf ("%s has no symbol %s", file, EXO_PYTHON_LOADER_SYMBOL);
          import_func = NULL;
          g_module_close (module);
        }
      else
        g_module_make_resident (module);
    }

  if (import_func == NULL)
    g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_NOT_FOUND,
                 "%s: a Python plugin, and this program cannot load its Python loader: %s",
                 path, open_error);
  return import_func;
}

typedef struct
{
  ExoPluginLoader *loader;
  const char      *path;
} SkipData;

/* The rule of _exo_plugin_loader_register() for a plugin found again,
 * applied to the name a Python plugin's source declares before any of its
 * code runs: a plugin of that name loaded from an earlier search folder
 * wins, and this one is skipped (EXO_PLUGIN_ERROR_SHADOWED).  Any other
 * clash is left to the register step, which says it after the import. */
static gboolean
skip_shadowed (const char  *name,
               gpointer     user_data,
               GError     **error)
{
  const SkipData *data = user_data;
  ExoPluginLoader *self = data->loader;
  ExoPluginInfo *existing = g_hash_table_lookup (self->plugins_by_name, name);

  if (existing == NULL || self->scanning == G_MAXUINT || existing->search_index >= self->scanning)
    return FALSE;
  g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_SHADOWED,
               "%s: skipped: the plugin '%s' is already loaded from %s, earlier in "
               "the search path", data->path, existing->name, existing->path);
  return TRUE;
}

static void
register_python_types (ExoPluginRegistrar *registrar,
                       gpointer            user_data)
{
  const ExoPythonPlugin *plugin = user_data;

  for (guint i = 0; i < plugin->n_types; i++)
    exo_plugin_registrar_add_type (registrar, plugin->type_names[i], plugin->types[i]);
}

/* Imports @real_path (checked by the caller) and registers its types. */
ExoPluginInfo *
_exo_plugin_python_load (ExoPluginLoader  *self,
                         const char       *path,
                         const char       *real_path,
                         GError          **error)
{
  ExoPythonPlugin plugin = { 0, };
  ExoPluginDescriptor descriptor = { 0, };
  SkipData skip_data = { self, path };
  ExoPythonLoaderImportFunc func;
  ExoPluginInfo *info = NULL;
  gboolean register_ran;
  gboolean imported;

  if (!check_package (path, real_path, error))
    return NULL;

  G_LOCK (python_loader);
  func = get_import_func (path, error);
  imported = func != NULL && func (real_path, path, skip_shadowed, &skip_data, &plugin, error);
  G_UNLOCK (python_loader);

  if (!imported)
    return NULL;

  descriptor.abi_major = plugin.abi_major;
  descriptor.abi_minor = plugin.abi_minor;
  descriptor.name = plugin.name;
  descriptor.version = plugin.version;
  descriptor.description = plugin.description;
  info = _exo_plugin_loader_register (self, &descriptor, register_python_types, &plugin,
                                      path, path, &register_ran, error);
  _exo_python_plugin_clear (&plugin);

  return info;
}
