/* exo-plugin-checks.c: checks on what a plugin brings.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns the checks the loader and the registrar make on what comes from
 * outside: plugin and type names (_exo_plugin_name_is_valid()), strings
 * from a plugin made fit for a one-line message (_exo_plugin_printable(),
 * _exo_plugin_one_line()), and whether a plugin file may be loaded at all:
 * a regular file and folder that nobody but root or this user can change,
 * for a symbolic link its target's too (_exo_plugin_check_file_is_safe()),
 * before any of its code runs.  exo-plugin-private.h lists the loader's
 * other files and the rules.
 *
 * Rules: no state, no lock, no call out: any thread may call these.  Every
 * error is one line in EXO_PLUGIN_ERROR that starts with the file's path.
 */
#include "exo-plugin-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

gboolean
_exo_plugin_name_is_valid (const char *name)
{
  size_t len;

  if (name == NULL)
    return FALSE;
  len = strlen (name);
  return len > 0 && len <= NAME_MAX_LEN && strspn (name, NAME_CHARS) == len;
}

/* A string from a plugin, fit for a one-line message. */
char *
_exo_plugin_printable (const char *s)
{
  if (s == NULL)
    return g_strdup ("(null)");
  if (strlen (s) > NAME_MAX_LEN)
    {
      g_autofree char *head = g_strndup (s, NAME_MAX_LEN);
      g_autofree char *escaped = g_strescape (head, NULL);
      return g_strconcat (escaped, "...", NULL);
    }
  return g_strescape (s, NULL);
}

/* One line: control characters (a dlerror() may hold a newline) become spaces. */
char *
_exo_plugin_one_line (const char *s)
{
  char *copy = g_strdup (s != NULL ? s : "unknown error");

  for (char *p = copy; *p != '\0'; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      *p = ' ';
  return copy;
}

static gboolean
check_mode (const char  *path,
            const char  *what,
            GError     **error)
{
  struct stat st;
  uid_t euid = geteuid ();

  if (stat (what, &st) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, EXO_PLUGIN_ERROR,
                   saved_errno == ENOENT || saved_errno == ENOTDIR ?
                     EXO_PLUGIN_ERROR_NOT_FOUND : EXO_PLUGIN_ERROR_UNSAFE_FILE,
                   strcmp (path, what) == 0 ? "%s: cannot read it: %s" :
                                              "%s: cannot read its folder: %s",
                   path, g_strerror (saved_errno));
      return FALSE;
    }

  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    {
      if (strcmp (path, what) == 0)
        g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_UNSAFE_FILE,
                     "%s: is writable by group or others (mode %04o); refusing to load",
                     path, (guint) (st.st_mode & 07777));
      else
        g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_UNSAFE_FILE,
                     "%s: its folder %s is writable by group or others (mode %04o); "
                     "refusing to load",
                     path, what, (guint) (st.st_mode & 07777));
      return FALSE;
    }

  if (st.st_uid != 0 && st.st_uid != euid)
    {
      if (strcmp (path, what) == 0)
        g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_UNSAFE_FILE,
                     "%s: is owned by uid %u, neither root nor this user (uid %u); "
                     "refusing to load",
                     path, (guint) st.st_uid, (guint) euid);
      else
        g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_UNSAFE_FILE,
                     "%s: its folder %s is owned by uid %u, neither root nor this user "
                     "(uid %u); refusing to load",
                     path, what, (guint) st.st_uid, (guint) euid);
      return FALSE;
    }

  return TRUE;
}

/* Whether @path may be loaded at all: a regular file that no one but root or
 * us can change, in a folder no one but root or us can change.  For a
 * symbolic link, the folder of the file it points to is checked too.
 * Returns the real path in @real_path. */
gboolean
_exo_plugin_check_file_is_safe (const char  *path,
                                char       **real_path,
                                GError     **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *resolved = NULL;
  struct stat st;

  if (stat (path, &st) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, EXO_PLUGIN_ERROR,
                   saved_errno == ENOENT || saved_errno == ENOTDIR ?
                     EXO_PLUGIN_ERROR_NOT_FOUND : EXO_PLUGIN_ERROR_UNSAFE_FILE,
                   "%s: cannot read it: %s", path, g_strerror (saved_errno));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_NOT_SHARED_OBJECT,
                   "%s: is not a regular file", path);
      return FALSE;
    }

  if (!check_mode (path, path, error) || !check_mode (path, dir, error))
    return FALSE;

  resolved = realpath (path, NULL);
  if (resolved == NULL)
    {
      int saved_errno = errno;
      g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_NOT_FOUND,
                   "%s: cannot resolve it: %s", path, g_strerror (saved_errno));
      return FALSE;
    }
  if (strcmp (resolved, path) != 0)
    {
      g_autofree char *real_dir = g_path_get_dirname (resolved);

      if (!check_mode (path, resolved, error) ||
          (strcmp (real_dir, dir) != 0 && !check_mode (path, real_dir, error)))
        return FALSE;
    }

  /* realpath() allocates with malloc(), which g_free() frees (GLib >= 2.46). */
  *real_path = g_steal_pointer (&resolved);
  return TRUE;
}
