/* test-systemd-unit.c: the shipped systemd unit, and exo-sd-notify.c in
 * this process.
 *
 * data/exo-node.service (as built, with the paths of the install) is
 * checked with `systemd-analyze security --offline` (the exposure at most
 * 3.0) and `systemd-analyze verify` (with ExecStart= naming the exo-node of
 * this build, which verify wants to exist); data/exo-node.sysusers.conf
 * with `systemd-sysusers --dry-run`.  They skip when the tools (Debian's
 * systemd package) are absent.  exo-sd-notify.c: what it reads from the
 * environment and removes from it, the datagrams it sends, the STATUS=
 * text rules.  exo-node's use of it end to end: test-systemd.c.
 *
 * Main thread only, no main loop.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "exo-sd-notify.h"
#include "exo-test-util.h"

/* --- the unit -------------------------------------------------------------- */

static gboolean
have_tool (const char *name, char **path)
{
  *path = g_find_program_in_path (name);
  if (*path == NULL)
    {
      g_autofree char *message = g_strdup_printf ("%s is not installed (Debian: systemd)", name);

      g_test_skip (message);
      return FALSE;
    }
  if (exo_test_build_path ("EXO_UNIT", "../data/exo-node.service") == NULL)
    {
      g_test_skip ("EXO_UNIT not set");
      return FALSE;
    }
  return TRUE;
}

static char *
unit_text (void)
{
  char *text = NULL;

  g_assert_true (g_file_get_contents (exo_test_build_path ("EXO_UNIT", "../data/exo-node.service"), &text, NULL, NULL));
  return text;
}

/* The value of the first KEY= line of @text. */
static char *
unit_value (const char *text, const char *key)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  gsize length = strlen (key);

  for (guint i = 0; lines[i] != NULL; i++)
    if (strncmp (lines[i], key, length) == 0 && lines[i][length] == '=')
      return g_strdup (lines[i] + length + 1);
  return NULL;
}

static void
test_unit_security (void)
{
  g_autofree char *analyze = NULL;
  g_autofree char *out = NULL, *err = NULL;
  const char *line;
  double exposure;
  int status;

  if (!have_tool ("systemd-analyze", &analyze))
    return;
  {
    const char *argv[] = { analyze, "security", "--offline=true", "--no-pager",
                           exo_test_build_path ("EXO_UNIT", "../data/exo-node.service"), NULL };

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                                 &err, &status, NULL));
  }
  g_test_message ("%s%s", out, err);
  line = strstr (out, "Overall exposure level for exo-node.service: ");
  g_assert_nonnull (line);
  exposure = g_ascii_strtod (line + strlen ("Overall exposure level for exo-node.service: "), NULL);
  g_test_message ("exposure %.1f", exposure);
  g_assert_cmpfloat (exposure, >, 0.0);
  g_assert_cmpfloat (exposure, <=, 3.0);
}

/* systemd-analyze verify on the unit with ExecStart= naming the exo-node
 * of this build (verify wants the program to exist); the rest as shipped. */
static void
test_unit_verify (void)
{
  g_autofree char *analyze = NULL;
  g_autofree char *text = NULL, *exec = NULL, *rewritten = NULL, *tmpdir = NULL, *path = NULL;
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *type = NULL, *watchdog = NULL, *user = NULL;
  g_auto(GStrv) words = NULL;
  const char *exo_node = exo_test_build_path ("EXO_NODE", "../src/daemon/exo-node");
  int status;

  if (!have_tool ("systemd-analyze", &analyze))
    return;
  if (exo_node == NULL)
    {
      g_test_skip ("EXO_NODE not set");
      return;
    }
  text = unit_text ();
  type = unit_value (text, "Type");
  g_assert_cmpstr (type, ==, "notify");
  watchdog = unit_value (text, "WatchdogSec");
  g_assert_nonnull (watchdog);
  user = unit_value (text, "User");
  g_assert_cmpstr (user, ==, "exo-node");

  exec = unit_value (text, "ExecStart");
  g_assert_nonnull (exec);
  words = g_strsplit (exec, " ", -1);
  g_assert_true (g_str_has_suffix (words[0], "/exo-node"));
  g_assert_cmpstr (words[1], ==, "--system");
  g_assert_cmpstr (words[2], ==, "--config");
  g_assert_true (g_str_has_suffix (words[3], "/exo/exo-node.json"));
  {
    g_autofree char *old_line = g_strconcat ("ExecStart=", words[0], NULL);
    g_autofree char *new_line = g_strconcat ("ExecStart=", exo_node, NULL);
    g_auto(GStrv) parts = g_strsplit (text, old_line, 2);

    rewritten = g_strjoinv (new_line, parts);
  }
  tmpdir = g_dir_make_tmp ("exo-unit-XXXXXX", NULL);
  path = g_build_filename (tmpdir, "exo-node.service", NULL);
  g_assert_true (g_file_set_contents (path, rewritten, -1, NULL));
  {
    const char *argv[] = { analyze, "verify", "--man=no", path, NULL };

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                                 &err, &status, NULL));
  }
  g_test_message ("verify: %s%s", out, err);
  g_unlink (path);
  g_rmdir (tmpdir);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_cmpstr (err, ==, "");
}

/* The sysusers.d file makes the user the unit runs as. */
static void
test_unit_sysusers (void)
{
  g_autofree char *sysusers = NULL;
  g_autofree char *root = NULL, *etc = NULL, *out = NULL, *err = NULL;
  g_autofree char *text = NULL, *user = NULL, *expected = NULL;
  const char *file = exo_test_build_path ("EXO_SYSUSERS", "../../data/exo-node.sysusers.conf");
  int status;

  if (!have_tool ("systemd-sysusers", &sysusers))
    return;
  if (file == NULL)
    {
      g_test_skip ("EXO_SYSUSERS not set");
      return;
    }
  text = unit_text ();
  user = unit_value (text, "User");
  root = g_dir_make_tmp ("exo-sysusers-XXXXXX", NULL);
  etc = g_build_filename (root, "etc", NULL);
  g_assert_cmpint (g_mkdir (etc, 0755), ==, 0);
  {
    g_autofree char *root_option = g_strconcat ("--root=", root, NULL);
    const char *argv[] = { sysusers, "--dry-run", root_option, file, NULL };

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                                 &err, &status, NULL));
  }
  g_test_message ("sysusers: %s%s", out, err);
  g_rmdir (etc);
  g_rmdir (root);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  expected = g_strdup_printf ("Creating user '%s'", user);
  g_assert_true (strstr (out, expected) != NULL || strstr (err, expected) != NULL);
}

/* --- exo-sd-notify.c ------------------------------------------------------- */

static GSocket *
listen_datagrams (const char *path)
{
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
  g_autoptr(GError) error = NULL;
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM,
                                  G_SOCKET_PROTOCOL_DEFAULT, &error);

  g_assert_no_error (error);
  g_socket_bind (socket, address, FALSE, &error);
  g_assert_no_error (error);
  return socket;
}

static char *
receive (GSocket *socket)
{
  g_autoptr(GError) error = NULL;
  char buffer[4096];
  gssize n;

  if (!g_socket_condition_timed_wait (socket, G_IO_IN, 2 * G_USEC_PER_SEC, NULL, &error))
    return NULL;
  n = g_socket_receive (socket, buffer, sizeof buffer - 1, NULL, &error);
  g_assert_no_error (error);
  buffer[n] = '\0';
  return g_strdup (buffer);
}

/* The variables are read once and removed: nothing the daemon starts
 * inherits them. */
static void
test_environment (void)
{
  g_autofree char *dir = g_dir_make_tmp ("exo-sd-notify-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "notify", NULL);
  g_autofree char *pid = g_strdup_printf ("%d", (int) getpid ());
  g_autoptr(GSocket) socket = listen_datagrams (path);
  g_autofree char *message = NULL;

  {
    g_autoptr(ExoSdNotify) notify = NULL;

    g_setenv ("NOTIFY_SOCKET", path, TRUE);
    g_setenv ("WATCHDOG_USEC", "3000000", TRUE);
    g_setenv ("WATCHDOG_PID", pid, TRUE);
    notify = exo_sd_notify_new_from_environment ();
    g_assert_nonnull (notify);
    g_assert_null (g_getenv ("NOTIFY_SOCKET"));
    g_assert_null (g_getenv ("WATCHDOG_USEC"));
    g_assert_null (g_getenv ("WATCHDOG_PID"));
    g_assert_cmpuint (exo_sd_notify_get_watchdog_usec (notify), ==, 3000000);

    g_assert_true (exo_sd_notify_send (notify, "READY=1", "two\nlines"));
    message = receive (socket);
    g_assert_cmpstr (message, ==, "READY=1\nSTATUS=two lines");
  }
  {
    /* the watchdog of another process */
    g_autoptr(ExoSdNotify) notify = NULL;

    g_setenv ("NOTIFY_SOCKET", path, TRUE);
    g_setenv ("WATCHDOG_USEC", "3000000", TRUE);
    g_setenv ("WATCHDOG_PID", "1", TRUE);
    notify = exo_sd_notify_new_from_environment ();
    g_assert_nonnull (notify);
    g_assert_cmpuint (exo_sd_notify_get_watchdog_usec (notify), ==, 0);
    g_assert_false (exo_sd_notify_start_watchdog (notify));
    g_assert_null (g_getenv ("WATCHDOG_PID"));
  }
  {
    /* no manager: nothing, and the watchdog's variables go too */
    g_unsetenv ("NOTIFY_SOCKET");
    g_setenv ("WATCHDOG_USEC", "3000000", TRUE);
    g_assert_null (exo_sd_notify_new_from_environment ());
    g_assert_null (g_getenv ("WATCHDOG_USEC"));
    g_assert_false (exo_sd_notify_send (NULL, "READY=1", NULL));
  }

  g_unlink (path);
  g_rmdir (dir);
}

/* STATUS= is one line of valid UTF-8, at most EXO_SD_NOTIFY_MAX_STATUS
 * bytes, cut between characters. */
static void
test_status_text (void)
{
  g_autoptr(GString) long_text = g_string_new (NULL);
  g_autofree char *line = NULL, *cut = NULL, *invalid = NULL;

  line = exo_sd_notify_status_text ("a\tb\rc\nd\x7f");
  g_assert_cmpstr (line, ==, "a b c d ");
  invalid = exo_sd_notify_status_text ("ok \xff\xfe");
  g_assert_true (g_utf8_validate (invalid, -1, NULL));
  g_assert_true (g_str_has_prefix (invalid, "ok "));

  for (guint i = 0; i < EXO_SD_NOTIFY_MAX_STATUS; i++)
    g_string_append (long_text, "\xc3\xa9");   /* é, two bytes */
  cut = exo_sd_notify_status_text (long_text->str);
  g_assert_cmpuint (strlen (cut), <=, EXO_SD_NOTIFY_MAX_STATUS);
  g_assert_cmpuint (strlen (cut), >=, EXO_SD_NOTIFY_MAX_STATUS - 4);
  g_assert_true (g_str_has_suffix (cut, "..."));
  g_assert_true (g_utf8_validate (cut, -1, NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/systemd/unit/security", test_unit_security);
  g_test_add_func ("/systemd/unit/verify", test_unit_verify);
  g_test_add_func ("/systemd/unit/sysusers", test_unit_sysusers);
  g_test_add_func ("/systemd/sd-notify/environment", test_environment);
  g_test_add_func ("/systemd/sd-notify/status-text", test_status_text);

  return g_test_run ();
}
