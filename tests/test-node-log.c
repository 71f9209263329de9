/* test-node-log.c: exo-node's log where its users read it (issue 14): the
 * HTTP access log at --verbose, and the journal's fields.
 *
 * Each case starts the real exo-node (with the plugins of this tree) with
 * one http-server on 127.0.0.1 (API keys on) and a private dbus-daemon, and
 * sends it raw HTTP/1.1 requests of its own making (hostile ones: control
 * bytes and a 10 KB path), so nothing between the test and the server
 * cleans them up.
 *
 * /node-log/access/verbose: with --verbose, one line per request: 200,
 *   401, 404, escaped control bytes, a cut 10 KB path, a client that left;
 *   30 alike are all there (not rate-limited as other messages are); no
 *   API key, query string or body is in the log.
 * /node-log/access/quiet: without --verbose, no access line; with
 *   G_MESSAGES_DEBUG naming the server's domain, they are back.
 * /node-log/journal: stderr connected to a journal of the test's making
 *   (below): every entry carries SYSLOG_IDENTIFIER=exo-node once, the
 *   resources' entries EXO_RESOURCE_ID, the access entries their HTTP_*
 *   fields.
 *
 * The journal without systemd: GLib decides that stderr is the journal
 * when it is a socket whose peer is bound under /run/systemd/journal/
 * (g_log_writer_is_journald()), and then sends each entry as a datagram to
 * /run/systemd/journal/socket (g_log_writer_journald(), the native
 * protocol: KEY=VALUE lines, or KEY, a little-endian 64-bit length and the
 * value for values with a newline).  The case runs in a subprocess
 * (g_test_trap_subprocess(): one thread, so unshare() is allowed) that
 * makes its own mount namespace, mounts a tmpfs on /run/systemd there
 * (the host's is untouched), binds both sockets in it and hands the
 * daemon a stream connected to the first as stderr.  It is skipped (saying
 * why) when mount namespaces are not available (not root, no CAP_SYS_ADMIN).
 *
 * Environment (set by meson): EXO_NODE, EXO_TEST_PLUGIN_DIR.
 *
 * Thread rules: one thread; the daemon and the bus are other processes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE  /* unshare() */

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "exo-test-bus.h"

#define WAIT_MS     20000
#define API_KEY     "sekrit-key-4242"
#define QUERY_KEY   "query-secret-7777"
#define BODY_SECRET "body-secret-9999"

typedef struct
{
  char        *tmpdir;
  GSubprocess *bus;
  char        *bus_address;
  GSubprocess *proc;
  char        *log_path;     /* NULL: stderr went elsewhere */
  guint16      port;
} Node;

static void
die_with_test (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static guint16
free_port (void)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (socket, any, TRUE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* @verbose: --verbose; @debug_domains: G_MESSAGES_DEBUG (nullable);
 * @stderr_fd: the daemon's stderr (taken), or -1 for a file. */
static Node *
node_start (gboolean    verbose,
            const char *debug_domains,
            int         stderr_fd)
{
  const char *exo_node = g_getenv ("EXO_NODE");
  const char *plugin_dir = g_getenv ("EXO_TEST_PLUGIN_DIR");
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GError) error = NULL;
  g_autofree char *socket_path = NULL;
  g_autofree char *config = NULL;
  g_autofree char *config_path = NULL;
  g_autofree char *state = NULL;
  g_autofree char *out_path = NULL;
  Node *node = g_new0 (Node, 1);

  node->tmpdir = g_dir_make_tmp ("exo-node-log-XXXXXX", NULL);
  g_assert_nonnull (node->tmpdir);
  socket_path = g_build_filename (node->tmpdir, "bus", NULL);
  node->bus = exo_test_bus_spawn (socket_path, &node->bus_address);
  node->port = free_port ();
  config = g_strdup_printf ("{ \"resources\": [ { \"id\": \"server\", \"type\": \"http-server\",\n"
                            "    \"settings\": { \"port\": %u, \"listen-address\": \"127.0.0.1\",\n"
                            "                  \"api-keys\": [\"" API_KEY "\"] } } ] }\n",
                            node->port);
  config_path = g_build_filename (node->tmpdir, "node.json", NULL);
  g_assert_true (g_file_set_contents (config_path, config, -1, NULL));
  state = g_build_filename (node->tmpdir, "state", NULL);

  g_subprocess_launcher_set_child_setup (launcher, die_with_test, NULL, NULL);
  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", node->bus_address, TRUE);
  g_subprocess_launcher_setenv (launcher, "STATE_DIRECTORY", state, TRUE);
  g_subprocess_launcher_setenv (launcher, "G_DEBUG", "fatal-criticals", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "EXO_PLUGIN_PATH");
  if (debug_domains != NULL)
    g_subprocess_launcher_setenv (launcher, "G_MESSAGES_DEBUG", debug_domains, TRUE);
  else
    g_subprocess_launcher_unsetenv (launcher, "G_MESSAGES_DEBUG");
  out_path = g_build_filename (node->tmpdir, "stdout", NULL);
  g_subprocess_launcher_set_stdout_file_path (launcher, out_path);
  if (stderr_fd >= 0)
    g_subprocess_launcher_take_stderr_fd (launcher, stderr_fd);
  else
    {
      node->log_path = g_build_filename (node->tmpdir, "node.log", NULL);
      g_subprocess_launcher_set_stderr_file_path (launcher, node->log_path);
    }
  node->proc = g_subprocess_launcher_spawn (launcher, &error, exo_node, "--plugin-dir", plugin_dir,
                                            "--config", config_path, "--session",
                                            verbose ? "--verbose" : NULL, NULL);
  g_assert_no_error (error);
  return node;
}

static char *
node_log (Node *node)
{
  char *text = NULL;

  if (node->log_path == NULL || !g_file_get_contents (node->log_path, &text, NULL, NULL))
    return g_strdup ("");
  return text;
}

static void
rm_rf (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        rm_rf (path);
      else
        g_unlink (path);
    }
  g_rmdir (dir);
}

static void
node_stop (Node *node)
{
  g_subprocess_send_signal (node->proc, SIGTERM);
  g_subprocess_wait (node->proc, NULL, NULL);
  g_clear_object (&node->proc);
  g_subprocess_force_exit (node->bus);
  g_subprocess_wait (node->bus, NULL, NULL);
  g_clear_object (&node->bus);
  rm_rf (node->tmpdir);
  g_free (node->tmpdir);
  g_free (node->bus_address);
  g_free (node->log_path);
  g_free (node);
}

/* --- raw HTTP ---------------------------------------------------------------- */

static int
connect_to (Node *node)
{
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = g_htons (node->port),
                              .sin_addr.s_addr = g_htonl (INADDR_LOOPBACK) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval timeout = { .tv_sec = 10 };

  g_assert_cmpint (fd, >=, 0);
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

static void
send_all (int         fd,
          const char *data,
          gsize       length)
{
  while (length > 0)
    {
      gssize n = send (fd, data, length, MSG_NOSIGNAL);

      g_assert_cmpint (n, >, 0);
      data += n;
      length -= (gsize) n;
    }
}

/* Sends @request (Connection: close) and returns the status of the answer,
 * 0 for none. */
static guint
http_raw (Node       *node,
          const char *request,
          gsize       length)
{
  int fd = connect_to (node);
  char buf[4096];
  gsize got = 0;
  guint status = 0;

  if (fd < 0)
    return 0;
  send_all (fd, request, length);
  while (got < sizeof buf - 1)
    {
      gssize n = recv (fd, buf + got, sizeof buf - 1 - got, 0);

      if (n <= 0)
        break;
      got += (gsize) n;
    }
  buf[got] = '\0';
  close (fd);
  if (sscanf (buf, "HTTP/1.1 %u ", &status) != 1)
    return 0;
  return status;
}

/* GET @target with the API key. */
static guint
http_get (Node       *node,
          const char *target)
{
  g_autofree char *request = g_strdup_printf ("GET %s HTTP/1.1\r\nHost: test\r\n"
                                              "Authorization: Bearer " API_KEY "\r\n"
                                              "Connection: close\r\n\r\n", target);

  return http_raw (node, request, strlen (request));
}

/* The server answers (the node is up). */
static void
wait_listening (Node *node)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;
  int fd;

  while ((fd = connect_to (node)) < 0)
    {
      if (g_get_monotonic_time () > deadline || g_subprocess_get_identifier (node->proc) == NULL)
        {
          g_autofree char *log = node_log (node);

          g_error ("exo-node's server did not listen; its log:\n%s", log);
        }
      g_usleep (20 * 1000);
    }
  close (fd);
}

/* --- the log -------------------------------------------------------------------- */

static guint
count_lines (const char *log,
             const char *needle)
{
  g_auto(GStrv) lines = g_strsplit (log, "\n", -1);
  guint n = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], needle) != NULL)
      n++;
  return n;
}

/* Waits until @count lines of the log hold @needle; returns the log. */
static char *
wait_log_lines (Node       *node,
                const char *needle,
                guint       count)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;

  for (;;)
    {
      g_autofree char *log = node_log (node);

      if (count_lines (log, needle) >= count)
        return g_steal_pointer (&log);
      if (g_get_monotonic_time () > deadline)
        g_error ("not %u lines with '%s' in exo-node's log:\n%s", count, needle, log);
      g_usleep (20 * 1000);
    }
}

static gboolean
have_daemon (void)
{
  if (g_getenv ("EXO_NODE") == NULL || g_getenv ("EXO_TEST_PLUGIN_DIR") == NULL)
    {
      g_test_skip ("EXO_NODE / EXO_TEST_PLUGIN_DIR not set");
      return FALSE;
    }
  return TRUE;
}

/* --- the access log ----------------------------------------------------------------- */

static void
test_access_verbose (void)
{
  Node *node;
  g_autofree char *log = NULL;
  g_autofree char *long_path = NULL;
  g_autofree char *post = NULL;
  static const char control[] = "GET /a\x01" "b\x1b[31mred\"q\\ HTTP/1.1\r\nHost: t\r\n"
                                "Authorization: Bearer " API_KEY "\r\nConnection: close\r\n\r\n";
  int fd;

  if (!have_daemon ())
    return;
  node = node_start (TRUE, NULL, -1);
  wait_listening (node);

  g_assert_cmpuint (http_get (node, "/metrics"), ==, 200);
  g_assert_cmpuint (http_get (node, "/no/such/path?api_key=" QUERY_KEY), ==, 404);
  /* no key: refused, and logged as every request is */
  {
    static const char unauthorized[] = "GET /v1/models HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

    g_assert_cmpuint (http_raw (node, unauthorized, strlen (unauthorized)), ==, 401);
  }
  /* raw control bytes, and encoded ones (libsoup decodes the path) */
  g_assert_cmpuint (http_raw (node, control, strlen (control)), ==, 404);
  g_assert_cmpuint (http_get (node, "/x%0Aforged%20line%1B"), ==, 404);
  /* a 10 KB path */
  long_path = g_strnfill (10 * 1024, 'p');
  long_path[0] = '/';
  g_assert_cmpuint (http_get (node, long_path), ==, 404);
  /* a body is never logged */
  post = g_strdup_printf ("POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n"
                          "Authorization: Bearer " API_KEY "\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                          strlen ("{\"messages\": \"" BODY_SECRET "\"}"),
                          "{\"messages\": \"" BODY_SECRET "\"}");
  g_assert_cmpuint (http_raw (node, post, strlen (post)), !=, 0);
  /* a client that leaves in the middle of its body */
  fd = connect_to (node);
  g_assert_cmpint (fd, >=, 0);
  {
    static const char partial[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n"
                                  "Authorization: Bearer " API_KEY "\r\n"
                                  "Content-Length: 1000\r\n\r\n{\"mess";

    send_all (fd, partial, strlen (partial));
  }
  g_usleep (200 * 1000);
  close (fd);
  /* 30 alike: a web server logs every request */
  for (guint i = 0; i < 30; i++)
    {
      g_autofree char *path = g_strdup_printf ("/many/%u", i);

      g_assert_cmpuint (http_get (node, path), ==, 404);
    }

  g_free (wait_log_lines (node, "\"GET /many/", 30));
  log = wait_log_lines (node, "client left", 1);

  g_assert_cmpuint (count_lines (log, "info: exo-http-server: server: 127.0.0.1 \"GET /metrics\" 200 "), ==, 1);
  g_assert_true (g_regex_match_simple ("server: 127\\.0\\.0\\.1 \"GET /metrics\" 200 [0-9]+ B [0-9]+\\.[0-9] ms\n",
                                       log, 0, 0));
  g_assert_cmpuint (count_lines (log, "server: 127.0.0.1 \"GET /no/such/path\" 404 "), ==, 1);
  g_assert_cmpuint (count_lines (log, "server: 127.0.0.1 \"GET /v1/models\" 401 "), ==, 1);
  g_assert_cmpuint (count_lines (log, "\"GET /a\\x01b\\x1b[31mred\\x22q\\x5c\" 404 "), ==, 1);
  g_assert_cmpuint (count_lines (log, "\"GET /x\\x0aforged line\\x1b\" 404 "), ==, 1);
  g_assert_cmpuint (count_lines (log, "(path cut at 256 of 10240 bytes)"), ==, 1);
  {
    g_autofree char *cut = g_strdup_printf ("\"GET /%.255s...\" 404 ", long_path + 1);

    g_assert_cmpuint (count_lines (log, cut), ==, 1);
  }
  g_assert_cmpuint (count_lines (log, "\"POST /v1/chat/completions\" client left after "), ==, 1);
  g_assert_cmpuint (count_lines (log, "\"POST /v1/chat/completions\" "), ==, 2);
  g_assert_cmpuint (count_lines (log, "suppressed"), ==, 0);

  /* nothing the client sent raw reaches the log: no control byte but the
   * newlines between lines, no key, no query, no body, no 10 KB line */
  for (const char *p = log; *p != '\0'; p++)
    g_assert_true (*p == '\n' || (guchar) *p >= 0x20);
  g_assert_null (strstr (log, API_KEY));
  g_assert_null (strstr (log, QUERY_KEY));
  g_assert_null (strstr (log, BODY_SECRET));
  {
    g_auto(GStrv) lines = g_strsplit (log, "\n", -1);

    for (guint i = 0; lines[i] != NULL; i++)
      g_assert_cmpuint (strlen (lines[i]), <, 1024);
  }
  node_stop (node);
}

static void
test_access_quiet (void)
{
  Node *node;
  g_autofree char *log = NULL;

  if (!have_daemon ())
    return;
  node = node_start (FALSE, NULL, -1);
  wait_listening (node);
  g_assert_cmpuint (http_get (node, "/metrics"), ==, 200);
  g_assert_cmpuint (http_get (node, "/nope"), ==, 404);
  /* the log works: the refusal of a request without a key is a warning */
  {
    static const char unauthorized[] = "GET /v1/models HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

    g_assert_cmpuint (http_raw (node, unauthorized, strlen (unauthorized)), ==, 401);
  }
  log = wait_log_lines (node, "refused GET /v1/models", 1);
  g_assert_null (strstr (log, "\"GET "));
  g_assert_null (strstr (log, "info: "));
  node_stop (node);

  /* G_MESSAGES_DEBUG asks for the server's domain without --verbose */
  node = node_start (FALSE, "exo-http-server", -1);
  wait_listening (node);
  g_assert_cmpuint (http_get (node, "/nope"), ==, 404);
  g_free (wait_log_lines (node, "server: 127.0.0.1 \"GET /nope\" 404 ", 1));
  node_stop (node);
}

/* --- the journal ----------------------------------------------------------------------- */

/* One entry of the native protocol: "KEY=VALUE" strings. */
static GPtrArray *
parse_entry (const guint8 *data,
             gsize         length)
{
  GPtrArray *fields = g_ptr_array_new_with_free_func (g_free);
  gsize i = 0;

  while (i < length)
    {
      const guint8 *eol = memchr (data + i, '\n', length - i);
      const guint8 *eq;
      gsize line_length;

      g_assert_nonnull (eol);
      line_length = (gsize) (eol - (data + i));
      eq = memchr (data + i, '=', line_length);
      if (eq != NULL)
        {
          g_ptr_array_add (fields, g_strndup ((const char *) data + i, line_length));
          i += line_length + 1;
        }
      else
        {
          /* KEY\n, a little-endian 64-bit length, the value, \n */
          guint64 value_length;
          g_autofree char *key = g_strndup ((const char *) data + i, line_length);

          i += line_length + 1;
          g_assert_cmpuint (length - i, >=, 8);
          memcpy (&value_length, data + i, 8);
          value_length = GUINT64_FROM_LE (value_length);
          i += 8;
          g_assert_cmpuint (length - i, >, value_length);
          g_ptr_array_add (fields, g_strdup_printf ("%s=%.*s", key, (int) value_length,
                                                    (const char *) data + i));
          i += value_length;
          g_assert_cmpint (data[i], ==, '\n');
          i++;
        }
    }
  return fields;
}

/* The value of @key in @entry (the first), and how many times it is there. */
static const char *
entry_get (GPtrArray  *entry,
           const char *key,
           guint      *count)
{
  const char *value = NULL;
  gsize key_length = strlen (key);

  *count = 0;
  for (guint i = 0; i < entry->len; i++)
    {
      const char *field = g_ptr_array_index (entry, i);

      if (strncmp (field, key, key_length) == 0 && field[key_length] == '=')
        {
          if (value == NULL)
            value = field + key_length + 1;
          (*count)++;
        }
    }
  return value;
}

static const char *
entry_value (GPtrArray  *entry,
             const char *key)
{
  guint count;

  return entry_get (entry, key, &count);
}

static int
unix_socket (int         type,
             const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, type | SOCK_CLOEXEC, 0);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpuint (strlen (path), <, sizeof addr.sun_path);
  strcpy (addr.sun_path, path);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  return fd;
}

/* Datagrams until one is an entry whose MESSAGE holds @needle, or the
 * deadline; each entry is added to @entries. */
static gboolean
receive_until (int         journal_fd,
               GPtrArray  *entries,
               const char *needle)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;
  g_autofree guint8 *buf = g_malloc (256 * 1024);

  while (g_get_monotonic_time () < deadline)
    {
      gssize n = recv (journal_fd, buf, 256 * 1024, 0);
      GPtrArray *entry;
      const char *message;

      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      g_assert_cmpint (n, >, 0);
      entry = parse_entry (buf, (gsize) n);
      g_ptr_array_add (entries, entry);
      message = entry_value (entry, "MESSAGE");
      if (message != NULL && strstr (message, needle) != NULL)
        return TRUE;
    }
  return FALSE;
}

static void
journal_in_namespace (void)
{
  /* a tmpfs on /run/systemd, or on /run where there is no /run/systemd */
  const char *run = g_file_test ("/run/systemd", G_FILE_TEST_IS_DIR) ? "/run/systemd" : "/run";
  const char *dir = "/run/systemd/journal";
  const char *socket_path = "/run/systemd/journal/socket";
  const char *stdout_path = "/run/systemd/journal/stdout";
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct timeval timeout = { .tv_sec = 1 };
  int journal_fd, listen_fd, stderr_fd, accepted_fd;
  gboolean found_resource = FALSE, found_access = FALSE;
  Node *node;

  /* our own mounts, gone with this process; the host's /run stays as it is */
  g_assert_cmpint (unshare (CLONE_NEWNS), ==, 0);
  g_assert_cmpint (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), ==, 0);
  g_assert_cmpint (mount ("tmpfs", run, "tmpfs", 0, "mode=0755"), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);

  journal_fd = unix_socket (SOCK_DGRAM, socket_path);
  setsockopt (journal_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  listen_fd = unix_socket (SOCK_STREAM, stdout_path);
  g_assert_cmpint (listen (listen_fd, 1), ==, 0);
  stderr_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  strcpy (addr.sun_path, stdout_path);
  g_assert_cmpint (connect (stderr_fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  accepted_fd = accept (listen_fd, NULL, NULL);
  g_assert_cmpint (accepted_fd, >=, 0);

  node = node_start (TRUE, NULL, stderr_fd);
  g_assert_true (receive_until (journal_fd, entries, "node ready"));
  g_assert_cmpuint (http_get (node, "/metrics"), ==, 200);
  g_assert_true (receive_until (journal_fd, entries, "\"GET /metrics\" 200"));

  for (guint i = 0; i < entries->len; i++)
    {
      GPtrArray *entry = g_ptr_array_index (entries, i);
      guint count;
      const char *identifier = entry_get (entry, "SYSLOG_IDENTIFIER", &count);

      g_assert_cmpstr (identifier, ==, "exo-node");
      g_assert_cmpuint (count, ==, 1);
      g_assert_nonnull (entry_value (entry, "MESSAGE"));
      g_assert_nonnull (entry_value (entry, "PRIORITY"));
      if (g_strcmp0 (entry_value (entry, "MESSAGE"), "server: initializing -> ready") == 0)
        {
          g_assert_cmpstr (entry_value (entry, "EXO_RESOURCE_ID"), ==, "server");
          g_assert_cmpstr (entry_value (entry, "EXO_STATE"), ==, "ready");
          found_resource = TRUE;
        }
      if (entry_value (entry, "HTTP_METHOD") != NULL)
        {
          g_assert_cmpstr (entry_value (entry, "EXO_RESOURCE_ID"), ==, "server");
          g_assert_cmpstr (entry_value (entry, "HTTP_METHOD"), ==, "GET");
          g_assert_cmpstr (entry_value (entry, "HTTP_PATH"), ==, "/metrics");
          g_assert_cmpstr (entry_value (entry, "HTTP_STATUS"), ==, "200");
          g_assert_cmpstr (entry_value (entry, "HTTP_CLIENT"), ==, "127.0.0.1");
          g_assert_cmpstr (entry_value (entry, "PRIORITY"), ==, "6");
          g_assert_cmpstr (entry_value (entry, "GLIB_DOMAIN"), ==, "exo-http-server");
          g_assert_cmpuint (g_ascii_strtoull (entry_value (entry, "HTTP_BYTES"), NULL, 10), >, 0);
          g_assert_nonnull (entry_value (entry, "HTTP_DURATION_MS"));
          found_access = TRUE;
        }
    }
  g_assert_true (found_resource);
  g_assert_true (found_access);

  node_stop (node);
  close (accepted_fd);
  close (listen_fd);
  close (journal_fd);
}

static gboolean
can_unshare_mounts (void)
{
  g_autofree char *unshare = g_find_program_in_path ("unshare");
  int status = -1;

  if (getuid () != 0 || unshare == NULL)
    return FALSE;
  if (!g_spawn_command_line_sync ("unshare --mount -- true", NULL, NULL, &status, NULL))
    return FALSE;
  return g_spawn_check_wait_status (status, NULL);
}

static void
test_journal (void)
{
  if (!have_daemon ())
    return;
  if (g_test_subprocess ())
    {
      journal_in_namespace ();
      return;
    }
  if (!can_unshare_mounts ())
    {
      g_test_skip ("no mount namespace (needs root and CAP_SYS_ADMIN: `unshare --mount true` "
                   "failed): the journal of the test cannot be made");
      return;
    }
  g_test_trap_subprocess (NULL, (guint64) 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/node-log/access/verbose", test_access_verbose);
  g_test_add_func ("/node-log/access/quiet", test_access_quiet);
  g_test_add_func ("/node-log/journal", test_journal);
  return g_test_run ();
}
