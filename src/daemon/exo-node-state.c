/* exo-node-state.c: where exo-node keeps its state, and the node id kept
 * there.
 *
 * Owns: the choice of the state directory ($STATE_DIRECTORY, which
 * systemd's StateDirectory= sets and the sandbox of the shipped unit leaves
 * writable; else --state-dir; else node.state-dir of the config; else
 * libexo's default, exo_state_directory_default()); paths of the config
 * that are relative to the config file's folder; the `node-id` file: read
 * and checked like any input from outside (a bounded size, the id's
 * character rules), made once with a random UUID and replaced atomically
 * (g_file_set_contents_full(), mode 0644), made again with a warning when
 * it is not a node id.
 *
 * Rules: synchronous file I/O, no main context, no locks; main() calls it
 * before the resources and any thread of theirs exist.  Logs (the daemon
 * decides what to log): a made id, a replaced file, a file that cannot be
 * written (the node then runs with a random id for this run only).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-node-state.h"

#include <exo/exo.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exo-config.h"

/* A node id file holds one id and a newline; anything larger is not one. */
#define NODE_ID_FILE_MAX 256

/**
 * exo_node_config_relative_path:
 * @path: a path from the config (or the command line)
 * @config_path: (nullable): the config file, %NULL for the built-in one
 *
 * Returns: (transfer full): @path made absolute: relative to the config
 *   file's folder, or to the current folder without a config file
 */
char *
exo_node_config_relative_path (const char *path,
                               const char *config_path)
{
  g_autofree char *base = NULL;

  if (g_path_is_absolute (path))
    return g_strdup (path);
  if (config_path != NULL)
    {
      g_autofree char *dir = g_path_get_dirname (config_path);

      /* beside the config, also when it was named relative to the
       * current folder ("my-node.json", "./my-node.json") */
      base = g_canonicalize_filename (dir, NULL);
    }
  else
    base = g_get_current_dir ();
  return g_canonicalize_filename (path, base);
}

/**
 * exo_node_state_dir_resolve:
 * @option: (nullable): `--state-dir`
 * @configured: (nullable): `node.state-dir` of the config
 * @config_path: (nullable): the config file (@configured is relative to
 *   its folder)
 *
 * $STATE_DIRECTORY (the first folder it names) wins: under systemd the
 * sandbox lets the service write there only; @option or @configured is
 * then ignored with a warning.
 *
 * Returns: (transfer full): the state directory
 */
char *
exo_node_state_dir_resolve (const char *option,
                            const char *configured,
                            const char *config_path)
{
  const char *env = g_getenv ("STATE_DIRECTORY");

  if (env != NULL && *env != '\0')
    {
      char *dir = exo_state_directory_default ();

      if (option != NULL || configured != NULL)
        g_warning ("%s %s is ignored: $STATE_DIRECTORY (systemd's StateDirectory=) names %s, "
                   "the only state directory the service may write",
                   option != NULL ? "--state-dir" : "node.state-dir",
                   option != NULL ? option : configured, dir);
      return dir;
    }
  if (option != NULL)
    return exo_node_config_relative_path (option, NULL);
  if (configured != NULL)
    return exo_node_config_relative_path (configured, config_path);
  return exo_state_directory_default ();
}

/**
 * exo_node_id_is_valid:
 * @id: a candidate node id
 * @error: return location for an error
 *
 * The rules of `node.id`: 1 to %EXO_CONFIG_MAX_ID_LENGTH characters from
 * `A-Z a-z 0-9 _ . -`.
 *
 * Returns: whether @id is a node id
 */
gboolean
exo_node_id_is_valid (const char  *id,
                      GError     **error)
{
  gsize length = strlen (id);

  if (length == 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the node id is empty");
      return FALSE;
    }
  if (length > EXO_CONFIG_MAX_ID_LENGTH)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "the node id is %" G_GSIZE_FORMAT " bytes, more than the limit of %u",
                   length, EXO_CONFIG_MAX_ID_LENGTH);
      return FALSE;
    }
  for (const char *p = id; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != '.' && *p != '-')
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                     "the node id contains the byte 0x%02x; only letters, digits, '_', '.' "
                     "and '-' are allowed", (guint) (guchar) *p);
        return FALSE;
      }
  return TRUE;
}

/**
 * exo_node_id_load:
 * @path: a node id file
 * @error: return location for an error (%G_IO_ERROR_NOT_FOUND when there
 *   is no file)
 *
 * Reads at most %NODE_ID_FILE_MAX bytes: one id, blanks around it ignored.
 *
 * Returns: (transfer full) (nullable): the id
 */
char *
exo_node_id_load (const char  *path,
                  GError     **error)
{
  char buffer[NODE_ID_FILE_MAX + 1];
  struct stat st;
  gssize n;
  int fd;

  /* O_NONBLOCK: a FIFO put there does not hang the start */
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "cannot open: %s",
                   g_strerror (saved));
      return NULL;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      close (fd);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not a regular file");
      return NULL;
    }
  do
    n = read (fd, buffer, sizeof buffer);
  while (n < 0 && errno == EINTR);
  close (fd);
  if (n < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "cannot read: %s",
                   g_strerror (saved));
      return NULL;
    }
  if (n > NODE_ID_FILE_MAX)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "larger than the limit of %u bytes", NODE_ID_FILE_MAX);
      return NULL;
    }
  if (memchr (buffer, '\0', (gsize) n) != NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "contains a NUL byte");
      return NULL;
    }
  buffer[n] = '\0';
  g_strstrip (buffer);
  if (!exo_node_id_is_valid (buffer, error))
    return NULL;
  return g_strdup (buffer);
}

static gboolean
save (const char  *state_dir,
      const char  *path,
      const char  *id,
      GError     **error)
{
  g_autofree char *contents = g_strconcat (id, "\n", NULL);

  if (g_mkdir_with_parents (state_dir, 0700) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "cannot make %s: %s",
                   state_dir, g_strerror (saved));
      return FALSE;
    }
  return g_file_set_contents_full (path, contents, -1,
                                   G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                   0644, error);
}

/**
 * exo_node_id_load_or_create:
 * @state_dir: the state directory
 *
 * The node id kept in `node-id` of @state_dir: read, or made (a random
 * UUID) and written there when the file is missing or does not hold a node
 * id.  When it cannot be written, the made id serves this run only.
 *
 * Returns: (transfer full): the node id
 */
char *
exo_node_id_load_or_create (const char *state_dir)
{
  g_autofree char *path = g_build_filename (state_dir, EXO_NODE_ID_FILE, NULL);
  g_autoptr(GError) error = NULL;
  char *id;
  gboolean missing;

  id = exo_node_id_load (path, &error);
  if (id != NULL)
    return id;

  missing = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  if (!missing)
    g_warning ("%s: %s; making a new node id (the node's peers will see a new node)",
               path, error->message);
  g_clear_error (&error);

  id = g_uuid_string_random ();
  if (!save (state_dir, path, id, &error))
    g_warning ("cannot keep the node id in %s: %s; %s is the node id of this run only",
               path, error->message, id);
  else if (missing)
    g_message ("made the node id %s, kept in %s (it stays across restarts)", id, path);
  else
    g_message ("made the node id %s, kept in %s", id, path);
  return id;
}
