/* test-cluster-key.c: libexo's cluster key (ExoClusterKey), the signatures
 * of peer requests and answers, and ExoReplayGuard.
 *
 * Key files are made in a temporary folder of this test; nothing else on
 * the machine is read or written.  Single-threaded.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

#include <glib/gstdio.h>
#include <sys/stat.h>

static char *tmpdir;

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmpdir, name, NULL);
}

static void
write_key_file (const char *path,
                const char *text,
                int         mode)
{
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  g_assert_cmpint (g_chmod (path, mode), ==, 0);
}

static void
rm_rf (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        rm_rf (path);
      else
        g_remove (path);
    }
  g_rmdir (dir);
}

/* --- the key file ------------------------------------------------------------ */

static void
test_generate_and_load (void)
{
  g_autofree char *dir = tmp_path ("state/sub");
  g_autofree char *path = g_build_filename (dir, "cluster.key", NULL);
  g_autoptr(ExoClusterKey) made = NULL;
  g_autoptr(ExoClusterKey) again = NULL;
  g_autoptr(ExoClusterKey) loaded = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  gboolean generated = FALSE;
  GStatBuf st;

  made = exo_cluster_key_load_or_generate (path, &generated, &error);
  g_assert_no_error (error);
  g_assert_true (generated);
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_cmpint (g_stat (dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_assert_cmpuint (strlen (text), ==, 65);
  g_assert_cmpuint (strspn (text, "0123456789abcdef"), ==, 64);
  g_assert_cmpuint (exo_cluster_key_get_n_keys (made), ==, 1);
  g_assert_cmpuint (strlen (exo_cluster_key_get_fingerprint (made)), ==, 16);

  /* the second start loads the same key */
  again = exo_cluster_key_load_or_generate (path, &generated, &error);
  g_assert_no_error (error);
  g_assert_false (generated);
  g_assert_cmpstr (exo_cluster_key_get_fingerprint (again), ==, exo_cluster_key_get_fingerprint (made));
  loaded = exo_cluster_key_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (exo_cluster_key_get_fingerprint (loaded), ==, exo_cluster_key_get_fingerprint (made));

  /* never overwritten */
  g_assert_false (exo_cluster_key_save (made, path, &error));
  g_assert_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY);
  g_assert_nonnull (strstr (error->message, "exists already"));
}

static void
test_refused_files (void)
{
  struct { const char *text; int mode; const char *needle; } cases[] = {
    { "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", 0644, "mode 0644" },
    { "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", 0640, "chmod 600" },
    { "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", 0606, "group or others" },
    { "hello\n", 0600, ":1: expected 64 hexadecimal digits" },
    { "# only a comment\n\n", 0600, "holds no key" },
    { "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\n", 0600, ":1: expected 64" },
    { "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 0600, ":1: expected 64" },
  };
  g_autofree char *path = tmp_path ("refused.key");
  g_autofree char *missing = tmp_path ("missing.key");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(ExoClusterKey) key = NULL;

      write_key_file (path, cases[i].text, cases[i].mode);
      key = exo_cluster_key_load (path, &error);
      g_assert_null (key);
      g_assert_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, cases[i].needle));
      g_assert_nonnull (strstr (error->message, path));
    }

  /* five keys: one too many */
  {
    g_autoptr(GString) five = g_string_new (NULL);
    g_autoptr(GError) error = NULL;

    for (guint i = 0; i < 5; i++)
      g_string_append (five, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
    write_key_file (path, five->str, 0600);
    g_assert_null (exo_cluster_key_load (path, &error));
    g_assert_nonnull (strstr (error->message, "more than 4 keys"));
  }
  /* binary data, too big, a folder, missing */
  {
    g_autoptr(GError) error = NULL;
    g_autofree char *big = g_strnfill (5000, '#');

    g_assert_true (g_file_set_contents (path, "\0\1\2", 3, NULL));
    g_assert_cmpint (g_chmod (path, 0600), ==, 0);
    g_assert_null (exo_cluster_key_load (path, &error));
    g_assert_nonnull (strstr (error->message, "binary"));
    g_clear_error (&error);
    write_key_file (path, big, 0600);
    g_assert_null (exo_cluster_key_load (path, &error));
    g_assert_nonnull (strstr (error->message, "larger than 4096 bytes"));
    g_clear_error (&error);
    g_assert_null (exo_cluster_key_load (tmpdir, &error));
    g_assert_nonnull (strstr (error->message, "not a regular file"));
    g_clear_error (&error);
    g_assert_null (exo_cluster_key_load (missing, &error));
    g_assert_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY);
    g_assert_nonnull (strstr (error->message, "cannot open"));
  }
  g_remove (path);
}

static void
test_several_keys (void)
{
  g_autoptr(ExoClusterKey) old_key = exo_cluster_key_new_random ();
  g_autoptr(ExoClusterKey) new_key = exo_cluster_key_new_random ();
  g_autofree char *old_text = exo_cluster_key_to_string (old_key);
  g_autofree char *new_text = exo_cluster_key_to_string (new_key);
  g_autofree char *both_text = g_strdup_printf ("# rotation\n%s  \n%s", new_text, old_text);
  g_autoptr(ExoClusterKey) both = NULL;
  g_autoptr(GError) error = NULL;
  const guint8 data[] = "message";
  g_autofree char *by_old = exo_cluster_key_sign (old_key, data, sizeof data);
  g_autofree char *by_new = exo_cluster_key_sign (new_key, data, sizeof data);
  g_autofree char *by_both = NULL;

  both = exo_cluster_key_new_from_string (both_text, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (exo_cluster_key_get_n_keys (both), ==, 2);
  /* the first line signs; every line is accepted */
  g_assert_cmpstr (exo_cluster_key_get_fingerprint (both), ==, exo_cluster_key_get_fingerprint (new_key));
  by_both = exo_cluster_key_sign (both, data, sizeof data);
  g_assert_cmpstr (by_both, ==, by_new);
  g_assert_true (exo_cluster_key_verify (both, data, sizeof data, by_old));
  g_assert_true (exo_cluster_key_verify (both, data, sizeof data, by_new));
  g_assert_false (exo_cluster_key_verify (old_key, data, sizeof data, by_new));
  /* altered data, a changed digit, upper case, wrong length, not hex */
  g_assert_false (exo_cluster_key_verify (new_key, (const guint8 *) "messagf", sizeof data, by_new));
  by_new[10] = by_new[10] == '0' ? '1' : '0';
  g_assert_false (exo_cluster_key_verify (new_key, data, sizeof data, by_new));
  g_assert_false (exo_cluster_key_verify (new_key, data, sizeof data, "abc"));
  g_assert_false (exo_cluster_key_verify (new_key, data, sizeof data, NULL));
  {
    g_autofree char *upper = g_ascii_strup (by_old, -1);

    g_assert_true (exo_cluster_key_verify (old_key, data, sizeof data, upper));
  }
}

/* HMAC-SHA256 as RFC 4231 test case 2 would give it with a 32-byte key:
 * checked against GLib's own g_compute_hmac_for_data(). */
static void
test_mac_is_hmac_sha256 (void)
{
  const char *hex = "4a656665000000000000000000000000000000000000000000000000000000ff";
  g_autoptr(ExoClusterKey) key = exo_cluster_key_new_from_string (hex, NULL);
  const guint8 raw[32] = { 0x4a, 0x65, 0x66, 0x65, [31] = 0xff };
  const char *data = "what do ya want for nothing?";
  g_autofree char *expected = g_compute_hmac_for_data (G_CHECKSUM_SHA256, raw, sizeof raw,
                                                       (const guchar *) data, strlen (data));
  g_autofree char *mac = exo_cluster_key_sign (key, (const guint8 *) data, strlen (data));

  g_assert_cmpstr (mac, ==, expected);
}

/* --- signed peer requests and answers --------------------------------------- */

static void
test_request_signature (void)
{
  g_autoptr(ExoClusterKey) key = exo_cluster_key_new_random ();
  g_autoptr(ExoClusterKey) other = exo_cluster_key_new_random ();
  const char *headers[] = { "X-Exo-Node-Id", "a", "X-Exo-Shard", "{\"s\":1}", "Content-Type", "x",
                            NULL };
  /* the same headers, another order, other case, white space, and headers
   * that are not signed */
  const char *received[] = { "x-exo-shard", "  {\"s\":1} ", "Accept", "*/*", "X-EXO-NODE-ID", "a",
                             "X-Exo-Auth", "ignored", NULL };
  const char *altered[] = { "X-Exo-Node-Id", "a", "X-Exo-Shard", "{\"s\":2}", NULL };
  const guint8 body[] = { 1, 2, 3, 4 };
  gint64 now = g_get_real_time ();
  g_autofree char *nonce = NULL;
  g_autofree char *auth = exo_cluster_key_sign_request (key, "POST", "/peer/v1/tensor", headers,
                                                        body, sizeof body, now, &nonce);
  g_autofree char *got_nonce = NULL;
  g_autoptr(GError) error = NULL;
  gint64 ts = 0;

  g_assert_true (g_str_has_prefix (auth, "v1 ts="));
  g_assert_true (exo_cluster_key_verify_request (key, auth, "POST", "/peer/v1/tensor", received,
                                                 body, sizeof body, &ts, &got_nonce, &error));
  g_assert_no_error (error);
  g_assert_cmpint (ts, ==, now);
  g_assert_cmpstr (got_nonce, ==, nonce);

#define REFUSED(code, k, a, m, p, h, b, n)                                              \
  G_STMT_START {                                                                        \
    g_autoptr(GError) e = NULL;                                                         \
    g_assert_false (exo_cluster_key_verify_request (k, a, m, p, h, b, n, NULL, NULL, &e)); \
    g_assert_error (e, EXO_CLUSTER_AUTH_ERROR, code);                                   \
  } G_STMT_END

  REFUSED (EXO_CLUSTER_AUTH_ERROR_BAD_MAC, other, auth, "POST", "/peer/v1/tensor", headers, body, sizeof body);
  REFUSED (EXO_CLUSTER_AUTH_ERROR_BAD_MAC, key, auth, "PUT", "/peer/v1/tensor", headers, body, sizeof body);
  REFUSED (EXO_CLUSTER_AUTH_ERROR_BAD_MAC, key, auth, "POST", "/peer/v1/prompt", headers, body, sizeof body);
  REFUSED (EXO_CLUSTER_AUTH_ERROR_BAD_MAC, key, auth, "POST", "/peer/v1/tensor", altered, body, sizeof body);
  REFUSED (EXO_CLUSTER_AUTH_ERROR_BAD_MAC, key, auth, "POST", "/peer/v1/tensor", headers, body, 3);
  REFUSED (EXO_CLUSTER_AUTH_ERROR_BAD_MAC, key, auth, "POST", "/peer/v1/tensor", NULL, body, sizeof body);
  REFUSED (EXO_CLUSTER_AUTH_ERROR_MISSING, key, NULL, "POST", "/peer/v1/tensor", headers, body, sizeof body);
  REFUSED (EXO_CLUSTER_AUTH_ERROR_MISSING, key, "", "POST", "/peer/v1/tensor", headers, body, sizeof body);
  {
    const char *bad[] = {
      "v2 ts=1 nonce=00000000000000000000000000000000 mac=0000000000000000000000000000000000000000000000000000000000000000",
      "v1 ts=x nonce=00000000000000000000000000000000 mac=0000000000000000000000000000000000000000000000000000000000000000",
      "v1 ts=-5 nonce=00000000000000000000000000000000 mac=0000000000000000000000000000000000000000000000000000000000000000",
      "v1 ts=1 nonce=0000 mac=0000000000000000000000000000000000000000000000000000000000000000",
      "v1 ts=1 nonce=00000000000000000000000000000000 mac=00",
      "v1 ts=1 nonce=00000000000000000000000000000000",
      "v1 ts=1  nonce=00000000000000000000000000000000 mac=0000000000000000000000000000000000000000000000000000000000000000",
      "garbage",
    };
    g_autofree char *long_auth = g_strnfill (300, 'v');

    for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
      REFUSED (EXO_CLUSTER_AUTH_ERROR_MALFORMED, key, bad[i], "POST", "/p", NULL, NULL, 0);
    REFUSED (EXO_CLUSTER_AUTH_ERROR_MALFORMED, key, long_auth, "POST", "/p", NULL, NULL, 0);
  }
  {
    /* a header that could forge the separators is refused */
    const char *newline[] = { "X-Exo-Shard", "a\nb", NULL };

    REFUSED (EXO_CLUSTER_AUTH_ERROR_MALFORMED, key, auth, "POST", "/peer/v1/tensor", newline, body, sizeof body);
  }
#undef REFUSED
}

static void
test_response_signature (void)
{
  g_autoptr(ExoClusterKey) key = exo_cluster_key_new_random ();
  g_autoptr(ExoClusterKey) other = exo_cluster_key_new_random ();
  const char *body = "{\"status\":\"ok\"}";
  g_autofree char *nonce = exo_cluster_auth_new_nonce ();
  g_autofree char *another_nonce = exo_cluster_auth_new_nonce ();
  g_autofree char *auth = exo_cluster_key_sign_response (key, nonce, 200, (const guint8 *) body,
                                                         strlen (body));
  g_autoptr(GError) error = NULL;

  g_assert_cmpstr (nonce, !=, another_nonce);
  g_assert_true (exo_cluster_key_verify_response (key, auth, nonce, 200, (const guint8 *) body,
                                                  strlen (body), &error));
  g_assert_no_error (error);
  /* for another request, another status, another body, another key */
  g_assert_false (exo_cluster_key_verify_response (key, auth, another_nonce, 200,
                                                   (const guint8 *) body, strlen (body), NULL));
  g_assert_false (exo_cluster_key_verify_response (key, auth, nonce, 202, (const guint8 *) body,
                                                   strlen (body), NULL));
  g_assert_false (exo_cluster_key_verify_response (key, auth, nonce, 200, (const guint8 *) "{}", 2,
                                                   NULL));
  g_assert_false (exo_cluster_key_verify_response (other, auth, nonce, 200, (const guint8 *) body,
                                                   strlen (body), &error));
  g_assert_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_BAD_MAC);
  g_clear_error (&error);
  g_assert_false (exo_cluster_key_verify_response (key, NULL, nonce, 200, NULL, 0, &error));
  g_assert_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_MISSING);
}

/* --- ExoReplayGuard ------------------------------------------------------------ */

#define WINDOW (30 * G_USEC_PER_SEC)

static gboolean
fresh (ExoReplayGuard *guard,
       const char     *sender,
       gint64          ts,
       const char     *nonce,
       gint64          now,
       gint            expected_code)   /* -1: accepted */
{
  g_autoptr(GError) error = NULL;
  gboolean ok = exo_replay_guard_check (guard, sender, ts, nonce, now, &error);

  if (expected_code < 0)
    g_assert_no_error (error);
  else
    g_assert_error (error, EXO_CLUSTER_AUTH_ERROR, expected_code);
  return ok;
}

static void
test_replay_guard (void)
{
  g_autoptr(ExoReplayGuard) guard = exo_replay_guard_new (WINDOW, 4, 2);
  gint64 now = 1000 * G_USEC_PER_SEC;

  g_assert_true (fresh (guard, "a", now, "n1", now, -1));
  /* the same nonce again: a replay, whatever the time */
  g_assert_false (fresh (guard, "a", now, "n1", now + 1, EXO_CLUSTER_AUTH_ERROR_REPLAY));
  /* another sender may use it (nonces are per sender) */
  g_assert_true (fresh (guard, "b", now, "n1", now, -1));
  /* stale, either way */
  g_assert_false (fresh (guard, "a", now - WINDOW - 1, "n2", now, EXO_CLUSTER_AUTH_ERROR_STALE));
  g_assert_false (fresh (guard, "a", now + WINDOW + 1, "n3", now, EXO_CLUSTER_AUTH_ERROR_STALE));
  g_assert_true (fresh (guard, "a", now - WINDOW, "n4", now, -1));
  /* a third sender within the window: the limit */
  g_assert_false (fresh (guard, "c", now, "n1", now, EXO_CLUSTER_AUTH_ERROR_REPLAY));
  g_assert_cmpuint (exo_replay_guard_get_size (guard), ==, 3);

  /* past max-entries the oldest is forgotten, and what its sender signed
   * before it is refused: no replay gets through a full memory */
  g_assert_true (fresh (guard, "a", now + 10, "n5", now, -1));
  g_assert_true (fresh (guard, "a", now + 20, "n6", now, -1));   /* n1 of a goes */
  g_assert_cmpuint (exo_replay_guard_get_size (guard), ==, 4);
  g_assert_false (fresh (guard, "a", now, "n1", now, EXO_CLUSTER_AUTH_ERROR_REPLAY));
  g_assert_false (fresh (guard, "a", now - 5, "n7", now, EXO_CLUSTER_AUTH_ERROR_REPLAY));
  g_assert_true (fresh (guard, "a", now + 30, "n8", now, -1));

  /* later, everything has aged out: the senders are forgotten too */
  now += 3 * WINDOW;
  g_assert_true (fresh (guard, "c", now, "n1", now, -1));
  g_assert_true (fresh (guard, "d", now, "n1", now, -1));
  g_assert_cmpuint (exo_replay_guard_get_size (guard), ==, 2);
  /* a nonce too long to remember */
  {
    g_autofree char *long_nonce = g_strnfill (65, 'a');

    g_assert_false (fresh (guard, "c", now, long_nonce, now, EXO_CLUSTER_AUTH_ERROR_MALFORMED));
  }
}

/* Many nonces, bounded memory. */
static void
test_replay_guard_bounded (void)
{
  g_autoptr(ExoReplayGuard) guard = exo_replay_guard_new (WINDOW, 1000, 10);
  gint64 now = g_get_real_time ();

  for (guint i = 0; i < 20000; i++)
    {
      g_autofree char *nonce = exo_cluster_auth_new_nonce ();
      g_autofree char *sender = g_strdup_printf ("s%u", i % 10);

      g_assert_true (exo_replay_guard_check (guard, sender, now + i, nonce, now + i, NULL));
      g_assert_cmpuint (exo_replay_guard_get_size (guard), <=, 1000);
    }
}

/* --- the default key ------------------------------------------------------------ */

static void
test_default_key (void)
{
  g_autofree char *path = tmp_path ("env.key");
  g_autoptr(ExoClusterKey) set = exo_cluster_key_new_random ();
  g_autoptr(ExoClusterKey) saved = exo_cluster_key_new_random ();
  g_autoptr(GError) error = NULL;

  exo_cluster_key_set_default (NULL);
  g_unsetenv ("EXO_CLUSTER_KEY_FILE");
  g_assert_null (exo_cluster_key_get_default (&error));
  g_assert_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_KEY);
  g_assert_nonnull (strstr (error->message, "node.cluster-key-file"));
  g_clear_error (&error);

  g_assert_true (exo_cluster_key_save (saved, path, &error));
  g_setenv ("EXO_CLUSTER_KEY_FILE", path, TRUE);
  {
    g_autoptr(ExoClusterKey) from_env = exo_cluster_key_get_default (&error);

    g_assert_no_error (error);
    g_assert_cmpstr (exo_cluster_key_get_fingerprint (from_env), ==,
                     exo_cluster_key_get_fingerprint (saved));
  }
  exo_cluster_key_set_default (set);
  {
    g_autoptr(ExoClusterKey) got = exo_cluster_key_get_default (&error);

    g_assert_true (got == set);
  }
  exo_cluster_key_set_default (NULL);
  g_unsetenv ("EXO_CLUSTER_KEY_FILE");
  g_remove (path);
}

static void
test_state_directory (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *key = NULL;

  g_setenv ("STATE_DIRECTORY", "/run/first:/run/second", TRUE);
  dir = exo_state_directory_default ();
  g_assert_cmpstr (dir, ==, "/run/first");
  key = exo_cluster_key_default_path ();
  g_assert_cmpstr (key, ==, "/run/first/cluster.key");
  g_unsetenv ("STATE_DIRECTORY");
  g_free (dir);
  dir = exo_state_directory_default ();
  if (geteuid () == 0)
    g_assert_cmpstr (dir, ==, "/var/lib/exo-node");
  else
    g_assert_true (g_str_has_suffix (dir, "/exo-node"));
  g_assert_cmpstr (exo_cluster_auth_error_to_string (EXO_CLUSTER_AUTH_ERROR_BAD_MAC), ==, "bad-mac");
  g_assert_cmpstr (exo_cluster_auth_error_to_string (99), ==, "unknown");
}

int
main (int    argc,
      char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("exo-cluster-key-XXXXXX", NULL);
  g_assert_nonnull (tmpdir);

  g_test_add_func ("/cluster-key/file/generate-and-load", test_generate_and_load);
  g_test_add_func ("/cluster-key/file/refused", test_refused_files);
  g_test_add_func ("/cluster-key/several-keys", test_several_keys);
  g_test_add_func ("/cluster-key/hmac-sha256", test_mac_is_hmac_sha256);
  g_test_add_func ("/cluster-key/request", test_request_signature);
  g_test_add_func ("/cluster-key/response", test_response_signature);
  g_test_add_func ("/cluster-key/replay-guard/rules", test_replay_guard);
  g_test_add_func ("/cluster-key/replay-guard/bounded", test_replay_guard_bounded);
  g_test_add_func ("/cluster-key/default", test_default_key);
  g_test_add_func ("/cluster-key/state-directory", test_state_directory);

  rc = g_test_run ();
  rm_rf (tmpdir);
  g_free (tmpdir);
  return rc;
}
