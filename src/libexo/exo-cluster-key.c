/* exo-cluster-key.c: ExoClusterKey — the cluster's shared secret, its key
 * file, and the HMAC-SHA256 signatures made with it (GHmac).
 *
 * Owns: reading, checking and generating key files; MACs; the process-wide
 * default key (exo_cluster_key_set_default()).  What is signed, and the
 * replay guard, are in exo-cluster-auth.c.
 *
 * Threads: an ExoClusterKey is immutable after it is made, so any thread may
 * sign and verify with it; the default key is guarded by a mutex.  Library
 * code: nothing here logs; errors are GErrors in EXO_CLUSTER_AUTH_ERROR.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* The largest key file read: a few keys and comments. */
#define MAX_KEY_FILE_BYTES 4096
#define NONCE_BYTES 16
#define MAC_HEX_LEN 64

struct _ExoClusterKey
{
  gatomicrefcount ref_count;
  guint           n_keys;
  guint8          keys[EXO_CLUSTER_KEY_MAX_KEYS][EXO_CLUSTER_KEY_SIZE];
  /* HMAC states with each key already absorbed, copied for each MAC: only
   * read after key_finish(), so any thread may copy them */
  GHmac          *keyed[EXO_CLUSTER_KEY_MAX_KEYS];
  char            fingerprint[17];
};

G_DEFINE_QUARK (exo-cluster-auth-error-quark, exo_cluster_auth_error)

G_DEFINE_BOXED_TYPE (ExoClusterKey, exo_cluster_key, exo_cluster_key_ref, exo_cluster_key_unref)

static const char * const auth_error_names[] = {
  [EXO_CLUSTER_AUTH_ERROR_KEY] = "key",
  [EXO_CLUSTER_AUTH_ERROR_MISSING] = "missing",
  [EXO_CLUSTER_AUTH_ERROR_MALFORMED] = "malformed",
  [EXO_CLUSTER_AUTH_ERROR_BAD_MAC] = "bad-mac",
  [EXO_CLUSTER_AUTH_ERROR_STALE] = "stale",
  [EXO_CLUSTER_AUTH_ERROR_REPLAY] = "replay",
};

GType
exo_cluster_auth_error_get_type (void)
{
  static gsize type_id = 0;

  if (g_once_init_enter (&type_id))
    {
      static const GEnumValue values[] = {
        { EXO_CLUSTER_AUTH_ERROR_KEY, "EXO_CLUSTER_AUTH_ERROR_KEY", "key" },
        { EXO_CLUSTER_AUTH_ERROR_MISSING, "EXO_CLUSTER_AUTH_ERROR_MISSING", "missing" },
        { EXO_CLUSTER_AUTH_ERROR_MALFORMED, "EXO_CLUSTER_AUTH_ERROR_MALFORMED", "malformed" },
        { EXO_CLUSTER_AUTH_ERROR_BAD_MAC, "EXO_CLUSTER_AUTH_ERROR_BAD_MAC", "bad-mac" },
        { EXO_CLUSTER_AUTH_ERROR_STALE, "EXO_CLUSTER_AUTH_ERROR_STALE", "stale" },
        { EXO_CLUSTER_AUTH_ERROR_REPLAY, "EXO_CLUSTER_AUTH_ERROR_REPLAY", "replay" },
        { 0, NULL, NULL }
      };
      GType type = g_enum_register_static (g_intern_static_string ("ExoClusterAuthError"), values);
      g_once_init_leave (&type_id, type);
    }
  return type_id;
}

/**
 * exo_cluster_auth_error_to_string:
 * @code: an error code
 *
 * The name of @code as metrics spell it: `key`, `missing`, `malformed`,
 * `bad-mac`, `stale`, `replay`.
 *
 * Returns: (transfer none): the name, or `unknown`
 */
const char *
exo_cluster_auth_error_to_string (ExoClusterAuthError code)
{
  if ((guint) code < G_N_ELEMENTS (auth_error_names))
    return auth_error_names[code];
  return "unknown";
}

/* --- bytes ------------------------------------------------------------------ */

static void
random_bytes (guint8 *buffer,
              gsize   length)
{
  gsize done = 0;

  while (done < length)
    {
      ssize_t n = getrandom (buffer + done, length - done, 0);

      if (n < 0 && errno == EINTR)
        continue;
      /* getrandom() does not fail for this size on Linux ≥ 3.17 */
      g_assert (n > 0);
      done += (gsize) n;
    }
}

static void
to_hex (const guint8 *bytes,
        gsize         length,
        char         *out)   /* 2 * length + 1 */
{
  static const char digits[] = "0123456789abcdef";

  for (gsize i = 0; i < length; i++)
    {
      out[2 * i] = digits[bytes[i] >> 4];
      out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
  out[2 * length] = '\0';
}

/* Exactly 2 * @length hex digits (either case) in @hex[0 … hex_length). */
static gboolean
from_hex (const char *hex,
          gsize       hex_length,
          guint8     *out,
          gsize       length)
{
  if (hex_length != 2 * length)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    {
      int hi = g_ascii_xdigit_value (hex[2 * i]);
      int lo = g_ascii_xdigit_value (hex[2 * i + 1]);

      if (hi < 0 || lo < 0)
        return FALSE;
      out[i] = (guint8) (hi << 4 | lo);
    }
  return TRUE;
}

/* Compares without an early exit: the time does not tell where they differ. */
static gboolean
equal_constant_time (const guint8 *a,
                     const guint8 *b,
                     gsize         length)
{
  guint8 diff = 0;

  for (gsize i = 0; i < length; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

static void
hmac (GHmac        *keyed,
      const guint8 *data,
      gsize         length,
      guint8        digest[32])
{
  g_autoptr(GHmac) h = g_hmac_copy (keyed);
  gsize digest_len = 32;

  g_hmac_update (h, data, (gssize) length);
  g_hmac_get_digest (h, digest, &digest_len);
  g_assert (digest_len == 32);
}

/**
 * exo_cluster_auth_new_nonce:
 *
 * 16 random bytes as 32 hexadecimal digits: a nonce for a signed message.
 *
 * Returns: (transfer full): the nonce
 */
char *
exo_cluster_auth_new_nonce (void)
{
  guint8 bytes[NONCE_BYTES];
  char *hex = g_malloc (2 * NONCE_BYTES + 1);

  random_bytes (bytes, sizeof bytes);
  to_hex (bytes, sizeof bytes, hex);
  return hex;
}

/* --- the key ------------------------------------------------------------------ */

static ExoClusterKey *
key_new (void)
{
  ExoClusterKey *key = g_new0 (ExoClusterKey, 1);

  g_atomic_ref_count_init (&key->ref_count);
  return key;
}

static void
key_finish (ExoClusterKey *key)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize digest_len = sizeof digest;

  g_checksum_update (sum, (const guchar *) "exo-cluster-key-fingerprint\n", -1);
  g_checksum_update (sum, key->keys[0], EXO_CLUSTER_KEY_SIZE);
  g_checksum_get_digest (sum, digest, &digest_len);
  to_hex (digest, 8, key->fingerprint);
  for (guint i = 0; i < key->n_keys; i++)
    key->keyed[i] = g_hmac_new (G_CHECKSUM_SHA256, key->keys[i], EXO_CLUSTER_KEY_SIZE);
}

/**
 * exo_cluster_key_ref:
 * @key: a key
 *
 * Returns: (transfer full): @key
 */
ExoClusterKey *
exo_cluster_key_ref (ExoClusterKey *key)
{
  g_return_val_if_fail (key != NULL, NULL);
  g_atomic_ref_count_inc (&key->ref_count);
  return key;
}

/**
 * exo_cluster_key_unref:
 * @key: (transfer full): a key
 *
 * Drops a reference; the last one wipes the key bytes.
 */
void
exo_cluster_key_unref (ExoClusterKey *key)
{
  g_return_if_fail (key != NULL);
  if (g_atomic_ref_count_dec (&key->ref_count))
    {
      for (guint i = 0; i < EXO_CLUSTER_KEY_MAX_KEYS; i++)
        g_clear_pointer (&key->keyed[i], g_hmac_unref);
      memset (key->keys, 0, sizeof key->keys);
      g_free (key);
    }
}

/**
 * exo_cluster_key_new_random:
 *
 * A new random key (from getrandom(2)), not saved anywhere.
 *
 * Returns: (transfer full): the key
 */
ExoClusterKey *
exo_cluster_key_new_random (void)
{
  ExoClusterKey *key = key_new ();

  key->n_keys = 1;
  random_bytes (key->keys[0], EXO_CLUSTER_KEY_SIZE);
  key_finish (key);
  return key;
}

static ExoClusterKey *
parse_keys (const char  *text,
            gsize        length,
            const char  *where,
            GError     **error)
{
  g_autoptr(ExoClusterKey) key = key_new ();
  const char *p = text, *end = text + length;
  guint line_no = 0;

  while (p < end)
    {
      const char *eol = memchr (p, '\n', (gsize) (end - p));
      const char *line_end = eol != NULL ? eol : end;
      const char *a = p, *b = line_end;

      line_no++;
      p = eol != NULL ? eol + 1 : end;
      while (a < b && g_ascii_isspace (*a))
        a++;
      while (b > a && g_ascii_isspace (b[-1]))
        b--;
      if (a == b || *a == '#')
        continue;
      if (key->n_keys == EXO_CLUSTER_KEY_MAX_KEYS)
        {
          g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY,
                       "%s:%u: more than %d keys", where, line_no, EXO_CLUSTER_KEY_MAX_KEYS);
          return NULL;
        }
      if (!from_hex (a, (gsize) (b - a), key->keys[key->n_keys], EXO_CLUSTER_KEY_SIZE))
        {
          g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY,
                       "%s:%u: expected 64 hexadecimal digits (a %d-byte key), as "
                       "`openssl rand -hex 32` makes", where, line_no, EXO_CLUSTER_KEY_SIZE);
          return NULL;
        }
      key->n_keys++;
    }
  if (key->n_keys == 0)
    {
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY,
                   "%s: holds no key (expected 64 hexadecimal digits)", where);
      return NULL;
    }
  key_finish (key);
  return g_steal_pointer (&key);
}

/**
 * exo_cluster_key_new_from_string:
 * @text: the contents of a key file
 * @error: return location for an error
 *
 * Parses a key file's text: one key per line as 64 hexadecimal digits;
 * blank lines and lines starting with `#` are ignored; at most
 * %EXO_CLUSTER_KEY_MAX_KEYS keys.  The first key signs.
 *
 * Returns: (transfer full) (nullable): the key, or %NULL with
 *   %EXO_CLUSTER_AUTH_ERROR_KEY
 */
ExoClusterKey *
exo_cluster_key_new_from_string (const char  *text,
                                 GError     **error)
{
  g_return_val_if_fail (text != NULL, NULL);
  return parse_keys (text, strlen (text), "key", error);
}

/**
 * exo_cluster_key_to_string:
 * @key: a key
 *
 * The text of a key file holding @key (one line per key, first the one
 * that signs).
 *
 * Returns: (transfer full): the text
 */
char *
exo_cluster_key_to_string (ExoClusterKey *key)
{
  GString *text = g_string_new (NULL);

  g_return_val_if_fail (key != NULL, NULL);
  for (guint i = 0; i < key->n_keys; i++)
    {
      char hex[2 * EXO_CLUSTER_KEY_SIZE + 1];

      to_hex (key->keys[i], EXO_CLUSTER_KEY_SIZE, hex);
      g_string_append_printf (text, "%s\n", hex);
    }
  return g_string_free (text, FALSE);
}

static gboolean
set_key_file_error (GError     **error,
                    const char  *path,
                    const char  *what,
                    int          saved_errno)
{
  g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY,
               "cluster key file %s: %s: %s", path, what, g_strerror (saved_errno));
  return FALSE;
}

/**
 * exo_cluster_key_load:
 * @path: a key file
 * @error: return location for an error
 *
 * Reads a key file.  Refused: a file that is not a regular file, that
 * group or others may read or write (it must be mode 0600 or 0400, as
 * ssh wants of private keys), that belongs to another user than this
 * process's or root, or that is larger than 4096 bytes.
 *
 * Returns: (transfer full) (nullable): the key, or %NULL with
 *   %EXO_CLUSTER_AUTH_ERROR_KEY naming the file and the problem
 */
ExoClusterKey *
exo_cluster_key_load (const char  *path,
                      GError     **error)
{
  g_autofree char *text = NULL;
  struct stat st;
  ssize_t n;
  gsize length = 0;
  int fd;

  g_return_val_if_fail (path != NULL, NULL);

  fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
  if (fd < 0)
    {
      set_key_file_error (error, path, "cannot open", errno);
      return NULL;
    }
  if (fstat (fd, &st) < 0)
    {
      int saved = errno;

      close (fd);
      set_key_file_error (error, path, "cannot stat", saved);
      return NULL;
    }
  if (!S_ISREG (st.st_mode))
    {
      close (fd);
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY,
                   "cluster key file %s: not a regular file", path);
      return NULL;
    }
  if ((st.st_mode & 077) != 0)
    {
      close (fd);
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY,
                   "cluster key file %s: group or others may read or write it (mode %04o); "
                   "refusing a key others can read: chmod 600 %s",
                   path, (guint) (st.st_mode & 07777), path);
      return NULL;
    }
  if (st.st_uid != geteuid () && st.st_uid != 0)
    {
      close (fd);
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY,
                   "cluster key file %s: belongs to uid %u, not to this user (uid %u) or root",
                   path, (guint) st.st_uid, (guint) geteuid ());
      return NULL;
    }

  text = g_malloc (MAX_KEY_FILE_BYTES + 1);
  while (length <= MAX_KEY_FILE_BYTES)
    {
      n = read (fd, text + length, MAX_KEY_FILE_BYTES + 1 - length);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;

          close (fd);
          set_key_file_error (error, path, "cannot read", saved);
          return NULL;
        }
      if (n == 0)
        break;
      length += (gsize) n;
    }
  close (fd);
  if (length > MAX_KEY_FILE_BYTES)
    {
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY,
                   "cluster key file %s: larger than %d bytes", path, MAX_KEY_FILE_BYTES);
      return NULL;
    }
  if (memchr (text, '\0', length) != NULL)
    {
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY,
                   "cluster key file %s: expected text (64 hexadecimal digits per key), "
                   "found binary data", path);
      return NULL;
    }
  return parse_keys (text, length, path, error);
}

/* Writes @key to a new file at @path (0600), atomically: a temporary file
 * is linked into place, so a reader never sees half a key and two nodes
 * starting at once cannot both create it.  EEXIST when @path exists. */
static gboolean
save_exclusive (ExoClusterKey  *key,
                const char     *path,
                GError        **error)
{
  g_autofree char *text = exo_cluster_key_to_string (key);
  g_autofree char *tmp = g_strdup_printf ("%s.XXXXXX", path);
  gsize length = strlen (text), done = 0;
  int fd, rc;

  fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    return set_key_file_error (error, path, "cannot create a temporary file next to it", errno);
  while (done < length)
    {
      ssize_t n = write (fd, text + done, length - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;

          close (fd);
          g_unlink (tmp);
          return set_key_file_error (error, path, "cannot write", saved);
        }
      done += (gsize) n;
    }
  memset (text, 0, length);
  if (fsync (fd) < 0 || close (fd) < 0)
    {
      int saved = errno;

      g_unlink (tmp);
      return set_key_file_error (error, path, "cannot write", saved);
    }
  rc = link (tmp, path);
  {
    int saved = errno;

    g_unlink (tmp);
    if (rc < 0)
      {
        g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                     "cluster key file %s: cannot create: %s", path, g_strerror (saved));
        return FALSE;
      }
  }
  return TRUE;
}

/**
 * exo_cluster_key_save:
 * @key: a key
 * @path: where: a file that does not exist yet
 * @error: return location for an error
 *
 * Writes @key to a new key file, mode 0600, creating its folder (mode 0700)
 * when missing.  An existing file is never overwritten.
 *
 * Returns: %TRUE on success
 */
gboolean
exo_cluster_key_save (ExoClusterKey  *key,
                      const char     *path,
                      GError        **error)
{
  g_autofree char *dir = NULL;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);

  dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0700) < 0)
    return set_key_file_error (error, path, "cannot create its folder", errno);
  if (!save_exclusive (key, path, &local_error))
    {
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_EXISTS))
        g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY,
                     "cluster key file %s: exists already; not overwritten", path);
      else if (local_error->domain == G_IO_ERROR)
        g_set_error_literal (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY,
                             local_error->message);
      else
        g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  return TRUE;
}

/**
 * exo_cluster_key_load_or_generate:
 * @path: a key file
 * @generated: (out) (optional): set to whether the key was made now
 * @error: return location for an error
 *
 * Loads @path (see exo_cluster_key_load()); when it does not exist, makes a
 * new random key and saves it there (see exo_cluster_key_save()).  Two
 * processes doing this at once end up with the same key.
 *
 * Returns: (transfer full) (nullable): the key
 */
ExoClusterKey *
exo_cluster_key_load_or_generate (const char  *path,
                                  gboolean    *generated,
                                  GError     **error)
{
  g_autoptr(ExoClusterKey) key = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *dir = NULL;

  g_return_val_if_fail (path != NULL, NULL);

  if (generated != NULL)
    *generated = FALSE;
  if (g_file_test (path, G_FILE_TEST_EXISTS) || g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    return exo_cluster_key_load (path, error);

  dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0700) < 0)
    {
      set_key_file_error (error, path, "cannot create its folder", errno);
      return NULL;
    }
  key = exo_cluster_key_new_random ();
  if (!save_exclusive (key, path, &local_error))
    {
      /* Another process made it first: use theirs. */
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_EXISTS))
        return exo_cluster_key_load (path, error);
      g_set_error_literal (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY,
                           local_error->message);
      return NULL;
    }
  if (generated != NULL)
    *generated = TRUE;
  return g_steal_pointer (&key);
}

/**
 * exo_cluster_key_get_fingerprint:
 * @key: a key
 *
 * 16 hexadecimal digits derived from the signing key (a hash; it does not
 * reveal the key): nodes that show the same fingerprint share the key.
 *
 * Returns: (transfer none): the fingerprint
 */
const char *
exo_cluster_key_get_fingerprint (ExoClusterKey *key)
{
  g_return_val_if_fail (key != NULL, NULL);
  return key->fingerprint;
}

/**
 * exo_cluster_key_get_n_keys:
 * @key: a key
 *
 * Returns: how many keys @key accepts (1 to %EXO_CLUSTER_KEY_MAX_KEYS)
 */
guint
exo_cluster_key_get_n_keys (ExoClusterKey *key)
{
  g_return_val_if_fail (key != NULL, 0);
  return key->n_keys;
}

/* --- MACs ------------------------------------------------------------------- */

/**
 * exo_cluster_key_sign:
 * @key: a key
 * @data: (array length=length): the bytes to sign
 * @length: their number
 *
 * HMAC-SHA256 of @data with the signing (first) key.
 *
 * Returns: (transfer full): the MAC as 64 lowercase hexadecimal digits
 */
char *
exo_cluster_key_sign (ExoClusterKey *key,
                      const guint8  *data,
                      gsize          length)
{
  guint8 digest[32];
  char *hex;

  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (data != NULL || length == 0, NULL);

  hmac (key->keyed[0], data != NULL ? data : (const guint8 *) "", length, digest);
  hex = g_malloc (MAC_HEX_LEN + 1);
  to_hex (digest, sizeof digest, hex);
  return hex;
}

/**
 * exo_cluster_key_verify:
 * @key: a key
 * @data: (array length=length): the signed bytes
 * @length: their number
 * @mac: the MAC received, 64 hexadecimal digits
 *
 * Whether @mac is the HMAC-SHA256 of @data with any of @key's keys.  The
 * comparison takes the same time wherever the MACs differ.
 *
 * Returns: %TRUE if it is
 */
gboolean
exo_cluster_key_verify (ExoClusterKey *key,
                        const guint8  *data,
                        gsize          length,
                        const char    *mac)
{
  guint8 received[32];
  gboolean ok = FALSE;

  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (data != NULL || length == 0, FALSE);

  if (mac == NULL || !from_hex (mac, strlen (mac), received, sizeof received))
    return FALSE;
  for (guint i = 0; i < key->n_keys; i++)
    {
      guint8 expected[32];

      hmac (key->keyed[i], data != NULL ? data : (const guint8 *) "", length, expected);
      ok |= equal_constant_time (expected, received, sizeof received);
    }
  return ok;
}

/* --- where the key lives ------------------------------------------------------ */

/**
 * exo_state_directory_default:
 *
 * Where exo-node keeps its state: `$STATE_DIRECTORY` (the first one) when
 * systemd sets it (`StateDirectory=`), else `/var/lib/exo-node` for root,
 * else `$XDG_STATE_HOME/exo-node` (`~/.local/state/exo-node`).
 *
 * Returns: (transfer full): the folder
 */
char *
exo_state_directory_default (void)
{
  const char *env = g_getenv ("STATE_DIRECTORY");

  if (env != NULL && *env != '\0')
    {
      const char *colon = strchr (env, ':');

      return colon != NULL ? g_strndup (env, (gsize) (colon - env)) : g_strdup (env);
    }
  if (geteuid () == 0)
    return g_strdup ("/var/lib/exo-node");
  return g_build_filename (g_get_user_state_dir (), "exo-node", NULL);
}

/**
 * exo_cluster_key_default_path:
 *
 * `cluster.key` in exo_state_directory_default().
 *
 * Returns: (transfer full): the path
 */
char *
exo_cluster_key_default_path (void)
{
  g_autofree char *dir = exo_state_directory_default ();

  return g_build_filename (dir, "cluster.key", NULL);
}

static GMutex default_lock;
static ExoClusterKey *default_key;

/**
 * exo_cluster_key_set_default:
 * @key: (nullable): the key, or %NULL to unset it
 *
 * Sets the key that exo_cluster_key_get_default() returns: exo-node sets
 * the key of its config (`node.cluster-key-file`) before any resource
 * starts.
 */
void
exo_cluster_key_set_default (ExoClusterKey *key)
{
  ExoClusterKey *old;

  g_mutex_lock (&default_lock);
  old = default_key;
  default_key = key != NULL ? exo_cluster_key_ref (key) : NULL;
  g_mutex_unlock (&default_lock);
  if (old != NULL)
    exo_cluster_key_unref (old);
}

/**
 * exo_cluster_key_get_default:
 * @error: return location for an error
 *
 * The key the cluster resources of this process use: the one given to
 * exo_cluster_key_set_default(), else the file named by
 * `$EXO_CLUSTER_KEY_FILE` (loaded, never generated).
 *
 * Returns: (transfer full) (nullable): the key, or %NULL with
 *   %EXO_CLUSTER_AUTH_ERROR_KEY
 */
ExoClusterKey *
exo_cluster_key_get_default (GError **error)
{
  ExoClusterKey *key = NULL;
  const char *env;

  g_mutex_lock (&default_lock);
  if (default_key != NULL)
    key = exo_cluster_key_ref (default_key);
  g_mutex_unlock (&default_lock);
  if (key != NULL)
    return key;

  env = g_getenv ("EXO_CLUSTER_KEY_FILE");
  if (env != NULL && *env != '\0')
    return exo_cluster_key_load (env, error);

  g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY,
               "no cluster key: exo-node loads it from node.cluster-key-file (see "
               "docs/security.md); other programs call exo_cluster_key_set_default() or "
               "set EXO_CLUSTER_KEY_FILE");
  return NULL;
}
