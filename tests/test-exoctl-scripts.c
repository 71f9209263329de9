/* test-exoctl-scripts.c: exoctl where it meets scripts and terminals, run
 * against the fake node of exoctl-fake-node.c on a private bus: `show`
 * (Key=Value, -p, --value), `is-active` and `is-failed` (-q, exit
 * statuses), tables that fit 60 columns ($COLUMNS or the terminal's size),
 * the pager (on a pseudo-terminal: $EXO_PAGER, $PAGER, LESS, --no-pager,
 * never for watch), and the bash completion (data/completion/exoctl,
 * sourced with bash-completion and asked for commands, options and ids).
 *
 * Rules: as test-exoctl.c: one fake node served from the main context of
 * the test's thread, which the run_* helpers iterate; every exoctl run is
 * bounded (killed after 60 s).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE                    /* posix_openpt, grantpt, ptsname */

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "exoctl-fake-node.h"

/* ------------------------------------------------------------- helpers */

#define LONG_ERROR "bind to port 5678 failed: Address already in use — " \
                   "is another exo-node running? 日本語 café " \
                   "(see journalctl -u exo-node for the whole story)"

typedef struct
{
  GString  *out;
  gboolean  eof;
} PtyRead;

static gboolean
on_pty_readable (int fd, GIOCondition condition, gpointer user_data)
{
  PtyRead *p = user_data;
  char buf[4096];
  ssize_t n = read (fd, buf, sizeof buf);

  if (n > 0)
    {
      g_string_append_len (p->out, buf, n);
      return G_SOURCE_CONTINUE;
    }
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return G_SOURCE_CONTINUE;
  p->eof = TRUE;                /* EIO: nothing has the terminal open any more */
  return G_SOURCE_REMOVE;
}

/* exoctl with its stdout on a pseudo-terminal @columns wide (stdin and
 * stderr as run_start's); Run.out is what the terminal got, without the
 * colour escapes. */
static Run *
run_pty (const char * const *env, const char * const *args, unsigned short columns)
{
  struct winsize ws = { .ws_row = 200, .ws_col = columns };
  struct termios tio;
  PtyRead p = { g_string_new (NULL), FALSE };
  g_autoptr(GRegex) escapes = g_regex_new ("\033(\\[[0-9;?]*[A-Za-z]|[=>])", 0, 0, NULL);
  g_autofree char *text = NULL;
  int master, slave;
  guint watch;
  Run *run;

  master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
  g_assert_cmpint (master, >=, 0);
  g_assert_cmpint (grantpt (master), ==, 0);
  g_assert_cmpint (unlockpt (master), ==, 0);
  g_assert_cmpint (ioctl (master, TIOCSWINSZ, &ws), ==, 0);
  slave = open (ptsname (master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  g_assert_cmpint (slave, >=, 0);
  g_assert_cmpint (tcgetattr (slave, &tio), ==, 0);
  tio.c_oflag &= ~(tcflag_t) ONLCR;              /* "\n" stays "\n" */
  g_assert_cmpint (tcsetattr (slave, TCSANOW, &tio), ==, 0);
  g_assert_true (g_unix_set_fd_nonblocking (master, TRUE, NULL));

  run = run_start_fd (env, args, slave);          /* slave is closed here now */
  watch = g_unix_fd_add (master, G_IO_IN | G_IO_HUP | G_IO_ERR, on_pty_readable, &p);
  while (!p.eof)
    g_main_context_iteration (NULL, TRUE);
  run_wait (run);
  if (!p.eof)
    g_source_remove (watch);
  close (master);

  text = g_regex_replace_literal (escapes, p.out->str, -1, 0, "", 0, NULL);
  g_string_free (p.out, TRUE);
  g_free (run->out);
  run->out = g_steal_pointer (&text);
  g_test_message ("on the terminal:\n%s", run->out);
  return run;
}

/* Every line of @out at most @columns characters (UTF-8 characters, not
 * bytes). */
static void
assert_fits (const char *out, glong columns)
{
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);

  g_assert_true (g_utf8_validate (out, -1, NULL));
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (g_utf8_strlen (lines[i], -1) > columns)
        g_error ("line %u is %ld characters wide, more than %ld: '%s'", i,
                 g_utf8_strlen (lines[i], -1), columns, lines[i]);
    }
}

static glong
widest_line (const char *out)
{
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  glong widest = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    widest = MAX (widest, g_utf8_strlen (lines[i], -1));
  return widest;
}

/* The fake in a state that makes wide tables: discovery given up with a
 * long error in several scripts, engine degraded. */
static void
fake_wide (void)
{
  fake_reset ();
  fake_set_state ("discovery", "error", LONG_ERROR);
  exo_dbus_resource1_set_result (g_hash_table_lookup (fake.resources, "discovery"),
                                 "start-limit-hit");
  fake_set_state ("engine", "degraded", "model not loaded: the file is not there any more");
}

/* ---------------------------------------------------------------- show */

static void
test_show (void)
{
  fake_reset ();
  fake_set_state ("engine", "degraded", "model not loaded");
  {
    g_autoptr(Run) run = EXOCTL ("show", "engine");
    g_auto(GStrv) lines = g_strsplit (run->out, "\n", -1);
    const char *keys[] = { "Id", "Type", "DisplayName", "State", "Healthy", "Result",
                           "LastError", "ErrorCount", "Attempts", "StateChangedAt",
                           "InitializedAt", "DependsOn", "Metrics.model", "Metrics.requests",
                           "ObjectPath" };

    /* show is for scripts: it reports, it does not judge (exit 0 when
     * degraded) */
    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->err, ==, "");
    g_assert_cmpuint (g_strv_length (lines), ==, G_N_ELEMENTS (keys) + 1);
    for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
      {
        g_autofree char *prefix = g_strconcat (keys[i], "=", NULL);
        g_assert_true (g_str_has_prefix (lines[i], prefix));
      }
    g_assert_true (g_str_has_prefix (run->out, "Id=engine\nType=dummy-inference\n"
                                               "DisplayName=Dummy inference engine\n"
                                               "State=degraded\nHealthy=no\nResult=success\n"
                                               "LastError=model not loaded\nErrorCount=1\n"
                                               "Attempts=0\nStateChangedAt="));
    g_assert_true (g_regex_match_simple ("\nStateChangedAt=[1-9][0-9]{15}\n", run->out, 0, 0));
    g_assert_nonnull (strstr (run->out, "\nDependsOn=\nMetrics.model=llama-3.2-1b\n"
                                        "Metrics.requests=12\n"
                                        "ObjectPath=/org/exo/Node1/resource/engine\n"));
  }
  {
    g_autoptr(Run) run = EXOCTL ("show", "node", "peers", "workers");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (strstr (run->out, "Id=node\n"));
    g_assert_nonnull (strstr (run->out, "DependsOn=engine server discovery\n"));
    /* a blank line between resources */
    g_assert_nonnull (strstr (run->out, "ObjectPath=/org/exo/Node1/resource/node\n\nId=peers\n"));
    g_assert_nonnull (strstr (run->out, "Members=peer-1\n"));
    g_assert_nonnull (strstr (run->out, "\n\nId=workers\n"));
    g_assert_nonnull (strstr (run->out, "Pool.MinSize=1\nPool.MaxSize=8\nPool.Size=3\nPool.Idle=2\n"
                                        "Pool.InUse=1\nPool.Waiting=0\nPool.Acquired=10\n"
                                        "Pool.Timeouts=1\nPool.Created=3\nPool.Destroyed=0\n"));
    g_assert_null (strstr (run->out, "Pool.Size=3\n\nId=peers"));
  }
  {
    /* -p, repeatable and comma-separated, in show's own order */
    g_autoptr(Run) run = EXOCTL ("show", "-p", "State,Healthy", "--property", "Id", "engine");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->out, ==, "Id=engine\nState=degraded\nHealthy=no\n");
  }
  {
    g_autoptr(Run) run = EXOCTL ("show", "--value", "-p", "State", "engine", "server");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->out, ==, "degraded\n\nready\n");
  }
  {
    /* a group name selects its members; a single metric by its key */
    g_autoptr(Run) run = EXOCTL ("show", "-p", "Metrics", "engine");
    g_autoptr(Run) one = EXOCTL ("show", "-p", "Metrics.requests", "--value", "engine");
    g_autoptr(Run) pool = EXOCTL ("show", "-p", "Pool.InUse", "workers");

    g_assert_cmpstr (run->out, ==, "Metrics.model=llama-3.2-1b\nMetrics.requests=12\n");
    g_assert_cmpstr (one->out, ==, "12\n");
    g_assert_cmpstr (pool->out, ==, "Pool.InUse=1\n");
  }
  {
    /* a property a resource does not have: nothing */
    g_autoptr(Run) run = EXOCTL ("show", "-p", "Members,Bogus", "engine");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->out, ==, "");
  }
  {
    g_autoptr(Run) run = EXOCTL ("show", "-p", "Id", "server", "nope", "engine");

    g_assert_cmpint (run->status, ==, 4);
    g_assert_cmpstr (run->out, ==, "Id=server\n\nId=engine\n");
    g_assert_cmpstr (run->err, ==, "exoctl: no resource 'nope'\n");
  }
  {
    /* without an id: the node */
    g_autoptr(Run) run = EXOCTL ("show");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->out, ==,
                     "NodeId=test-node\nVersion=0.1.0\nState=ready\nBusName=org.exo.Node1\n"
                     "Plugins=dummy-inference http-server\n"
                     "Topology={\"nodes\": {\"test-node\": {\"memory\": 1024}}, \"peer_graph\": {}}\n");
  }
  {
    g_autoptr(Run) run = EXOCTL ("show", "-p", "Version", "--value");

    g_assert_cmpstr (run->out, ==, "0.1.0\n");
  }
}

/* --------------------------------------------------- is-active, is-failed */

static void
test_is_active (void)
{
  fake_reset ();
  {
    g_autoptr(Run) run = EXOCTL ("is-active", "engine", "server");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->out, ==, "ready\nready\n");
    g_assert_cmpstr (run->err, ==, "");
  }
  fake_set_state ("engine", "degraded", "model not loaded");
  {
    /* all must be ready (systemctl would say 0 for any) */
    g_autoptr(Run) run = EXOCTL ("is-active", "engine", "server");

    g_assert_cmpint (run->status, ==, 3);
    g_assert_cmpstr (run->out, ==, "degraded\nready\n");
  }
  {
    g_autoptr(Run) run = EXOCTL ("is-active", "-q", "engine");

    g_assert_cmpint (run->status, ==, 3);
    g_assert_cmpstr (run->out, ==, "");
    g_assert_cmpstr (run->err, ==, "");
  }
  {
    g_autoptr(Run) run = EXOCTL ("--quiet", "is-active", "server");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->out, ==, "");
  }
  {
    g_autoptr(Run) run = EXOCTL ("is-active", "server", "nope");

    g_assert_cmpint (run->status, ==, 4);
    g_assert_cmpstr (run->out, ==, "ready\nunknown\n");
    g_assert_cmpstr (run->err, ==, "exoctl: no resource 'nope'\n");
  }
}

static void
test_is_failed (void)
{
  fake_reset ();
  fake_set_state ("engine", "degraded", "model not loaded");
  {
    g_autoptr(Run) run = EXOCTL ("is-failed", "engine", "server");

    g_assert_cmpint (run->status, ==, 1);
    g_assert_cmpstr (run->out, ==, "degraded\nready\n");
  }
  fake_set_state ("discovery", "error", "bind failed");
  {
    /* one failed is enough, as systemctl */
    g_autoptr(Run) run = EXOCTL ("is-failed", "engine", "discovery");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->out, ==, "degraded\nerror\n");
  }
  {
    g_autoptr(Run) run = EXOCTL ("is-failed", "-q", "discovery");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_cmpstr (run->out, ==, "");
  }
  {
    g_autoptr(Run) run = EXOCTL ("is-failed", "-q", "server", "nope");

    g_assert_cmpint (run->status, ==, 4);
    g_assert_cmpstr (run->err, ==, "exoctl: no resource 'nope'\n");
  }
  {
    g_autoptr(Run) run = EXOCTL ("is-failed", "-q", "discovery", "nope");

    g_assert_cmpint (run->status, ==, 0);
  }
}

/* ---------------------------------------------------------------- width */

static void
test_width (void)
{
  const char *env60[] = { "COLUMNS", "60", NULL };

  fake_wide ();

  /* Not a terminal and no COLUMNS: nothing cut. */
  {
    g_autoptr(Run) run = EXOCTL ("list");

    g_assert_cmpint (run->status, ==, 0);
    g_assert_nonnull (strstr (run->out, LONG_ERROR));
    g_assert_nonnull (strstr (run->out, "error (start-limit-hit)"));
    g_assert_cmpint (widest_line (run->out), >, 100);
  }
  /* COLUMNS=60: list, health and plugins fit, with "…" where cut. */
  {
    const char *args[] = { "list", NULL };
    g_autoptr(Run) run = run_envv (env60, args);
    g_auto(GStrv) lines = g_strsplit (run->out, "\n", -1);
    g_auto(GStrv) header = words (lines[0]);

    g_assert_cmpint (run->status, ==, 0);
    assert_fits (run->out, 60);
    g_assert_nonnull (strstr (run->out, "…"));
    g_assert_cmpstr (header[0], ==, "ID");
    g_assert_cmpstr (header[1], ==, "TYPE");
    g_assert_cmpstr (header[2], ==, "STATE");
    /* the short cells are whole; the state still says it is an error */
    {
      g_autofree char *row = row_of (run->out, "discovery");
      g_autofree char *server = row_of (run->out, "server");

      g_assert_nonnull (row);
      g_assert_nonnull (strstr (row, " error ("));
      g_assert_nonnull (server);
      g_assert_nonnull (strstr (server, " http-"));
      g_assert_nonnull (strstr (server, " ready "));
      g_assert_nonnull (strstr (server, " yes "));
    }
    g_assert_nonnull (strstr (run->out, "\n8 resources listed.\n"));
  }
  {
    const char *args[] = { "health", NULL };
    g_autoptr(Run) run = run_envv (env60, args);

    g_autofree char *row = row_of (run->out, "discovery");

    g_assert_cmpint (run->status, ==, 1);
    assert_fits (run->out, 60);
    g_assert_nonnull (row);
    g_assert_nonnull (strstr (row, " error "));
  }
  {
    const char *args[] = { "plugins", NULL };
    g_autoptr(Run) run = run_envv (env60, args);

    g_assert_cmpint (run->status, ==, 0);
    assert_fits (run->out, 60);
  }
  /* --full: nothing cut. */
  {
    const char *args[] = { "list", "--full", NULL };
    g_autoptr(Run) run = run_envv (env60, args);

    g_assert_nonnull (strstr (run->out, LONG_ERROR));
  }
  /* --no-legend: the rows only. */
  {
    const char *args[] = { "list", "--no-legend", NULL };
    g_autoptr(Run) run = run_envv (env60, args);
    g_auto(GStrv) lines = g_strsplit (run->out, "\n", -1);

    assert_fits (run->out, 60);
    g_assert_cmpuint (g_strv_length (lines), ==, N_FAKE + 1);
    g_assert_true (g_str_has_prefix (lines[0], "discovery "));
    g_assert_null (strstr (run->out, "listed"));
  }
  /* A terminal 60 columns wide, no COLUMNS: the same. */
  {
    const char *args[] = { "--no-pager", "list", NULL };
    g_autoptr(Run) run = run_pty (NULL, args, 60);

    g_assert_cmpint (run->status, ==, 0);
    assert_fits (run->out, 60);
    g_assert_nonnull (strstr (run->out, "8 resources listed."));
  }
  {
    const char *args[] = { "--no-pager", "health", NULL };
    g_autoptr(Run) run = run_pty (NULL, args, 60);

    assert_fits (run->out, 60);
  }
  /* A wide one: nothing cut. */
  {
    const char *args[] = { "--no-pager", "list", NULL };
    g_autoptr(Run) run = run_pty (NULL, args, 250);

    g_assert_nonnull (strstr (run->out, LONG_ERROR));
  }
  /* COLUMNS wins over the terminal's size. */
  {
    const char *args[] = { "--no-pager", "list", NULL };
    g_autoptr(Run) run = run_pty (env60, args, 250);

    assert_fits (run->out, 60);
  }
}

/* ---------------------------------------------------------------- pager */

static void
test_pager (void)
{
  fake_reset ();

  /* $EXO_PAGER gets the output on a terminal... */
  {
    const char *env[] = { "EXO_PAGER", "cat -n", NULL };
    const char *args[] = { "list", NULL };
    g_autoptr(Run) run = run_pty (env, args, 80);

    g_assert_cmpint (run->status, ==, 0);
    g_assert_true (g_str_has_prefix (run->out, "     1\tID "));
    g_assert_nonnull (strstr (run->out, "\t8 resources listed.\n"));
  }
  /* ...not with --no-pager, */
  {
    const char *env[] = { "EXO_PAGER", "cat -n", NULL };
    const char *args[] = { "--no-pager", "list", NULL };
    g_autoptr(Run) run = run_pty (env, args, 80);

    g_assert_true (g_str_has_prefix (run->out, "ID "));
  }
  /* ...nor when stdout is not a terminal. */
  {
    const char *env[] = { "EXO_PAGER", "cat -n", NULL };
    const char *args[] = { "list", NULL };
    g_autoptr(Run) run = run_envv (env, args);

    g_assert_true (g_str_has_prefix (run->out, "ID "));
  }
  /* $PAGER when $EXO_PAGER is unset; $EXO_PAGER first. */
  {
    const char *env[] = { "PAGER", "sed s/^/PAGER:/", NULL };
    const char *args[] = { "tree", NULL };
    g_autoptr(Run) run = run_pty (env, args, 80);

    g_assert_true (g_str_has_prefix (run->out, "PAGER:"));
  }
  {
    const char *env[] = { "PAGER", "sed s/^/PAGER:/", "EXO_PAGER", "sed s/^/EXO:/", NULL };
    const char *args[] = { "tree", NULL };
    g_autoptr(Run) run = run_pty (env, args, 80);

    g_assert_true (g_str_has_prefix (run->out, "EXO:"));
  }
  /* An empty EXO_PAGER, or "cat": no pager. */
  {
    const char *env[] = { "PAGER", "sed s/^/PAGER:/", "EXO_PAGER", "", NULL };
    const char *args[] = { "tree", NULL };
    g_autoptr(Run) run = run_pty (env, args, 80);

    g_assert_null (strstr (run->out, "PAGER:"));
    g_assert_nonnull (strstr (run->out, "root (group) ready"));
  }
  /* LESS=FRSXMK for the pager unless LESS is set. */
  {
    const char *env[] = { "EXO_PAGER", "echo \"LESS=$LESS\"; cat", NULL };
    const char *args[] = { "node", NULL };
    g_autoptr(Run) run = run_pty (env, args, 80);

    g_assert_true (g_str_has_prefix (run->out, "LESS=FRSXMK\n"));
  }
  {
    const char *env[] = { "EXO_PAGER", "echo \"LESS=$LESS\"; cat", "LESS", "-R", NULL };
    const char *args[] = { "node", NULL };
    g_autoptr(Run) run = run_pty (env, args, 80);

    g_assert_true (g_str_has_prefix (run->out, "LESS=-R\n"));
  }
  /* A pager that is not there, and no less in PATH: printed as is. */
  {
    const char *env[] = { "EXO_PAGER", "no-such-pager-exoctl", "PATH", "/nonexistent", NULL };
    const char *args[] = { "list", NULL };
    g_autoptr(Run) run = run_pty (env, args, 80);

    g_assert_cmpint (run->status, ==, 0);
    g_assert_true (g_str_has_prefix (run->out, "ID "));
  }
  /* The exit status is exoctl's, not the pager's. */
  fake_set_state ("engine", "degraded", "model not loaded");
  {
    const char *env[] = { "EXO_PAGER", "cat -n", NULL };
    const char *args[] = { "status", "engine", NULL };
    g_autoptr(Run) run = run_pty (env, args, 80);

    g_assert_cmpint (run->status, ==, 3);
    g_assert_true (g_str_has_prefix (run->out, "     1\t"));
    g_assert_nonnull (strstr (run->out, " State: degraded\n"));
  }
  /* Never for watch, is-active, is-failed or the methods. */
  {
    const char *env[] = { "EXO_PAGER", "echo PAGER-RAN; cat", NULL };
    const char *shown[][3] = { { "list", NULL }, { "show", "engine", NULL } };
    const char *not_shown[][4] = {
      { "watch", "--timeout", "0.2", NULL }, { "is-active", "server", NULL },
      { "is-failed", "engine", NULL }, { "restart", "peer-1", NULL },
    };

    for (guint i = 0; i < G_N_ELEMENTS (shown); i++)
      {
        g_autoptr(Run) run = run_pty (env, shown[i], 80);
        g_assert_true (g_str_has_prefix (run->out, "PAGER-RAN\n"));
      }
    for (guint i = 0; i < G_N_ELEMENTS (not_shown); i++)
      {
        g_autoptr(Run) run = run_pty (env, not_shown[i], 80);
        g_assert_null (strstr (run->out, "PAGER-RAN"));
      }
  }
}

/* ----------------------------------------------------------- completion */

static int
compare_strings (const void *a, const void *b)
{
  return g_strcmp0 (*(char * const *) a, *(char * const *) b);
}

/* The replies of the completion for @line, sorted. */
static GStrv
complete (const char *line)
{
  g_autoptr(Run) run = run_completion (line);
  g_auto(GStrv) lines = NULL;
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  GStrv replies;

  g_assert_cmpint (run->status, ==, 0);
  g_assert_cmpstr (run->err, ==, "");
  lines = g_strsplit (run->out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0')
      g_strv_builder_add (b, lines[i]);
  replies = g_strv_builder_end (b);
  qsort (replies, g_strv_length (replies), sizeof (char *), compare_strings);
  return replies;
}

static void
assert_replies (const char *line, const char * const *expected)
{
  g_auto(GStrv) replies = complete (line);
  g_autofree char *got = g_strjoinv (" ", replies);
  g_autofree char *want = g_strjoinv (" ", (char **) expected);

  g_test_message ("'%s' -> %s", line, got);
  g_assert_cmpstr (got, ==, want);
}

static void
assert_offers (const char *line, const char * const *expected)
{
  g_auto(GStrv) replies = complete (line);

  for (guint i = 0; expected[i] != NULL; i++)
    if (!g_strv_contains ((const char * const *) replies, expected[i]))
      {
        g_autofree char *got = g_strjoinv (" ", replies);
        g_error ("'%s' does not offer '%s' (offers: %s)", line, expected[i], got);
      }
}

static void
test_completion (void)
{
  const char *all_ids[] = { "discovery", "engine", "node", "peer-1", "peers", "root",
                            "server", "workers", NULL };

  if (!completion_available ())
    {
      g_test_skip ("bash-completion is not installed (/usr/share/bash-completion)");
      return;
    }
  fake_reset ();

  /* commands */
  assert_offers ("exoctl ", (const char * const []) {
                   "list", "status", "show", "is-active", "is-failed", "health", "start",
                   "stop", "restart", "tree", "watch", "plugins", "node", NULL });
  assert_replies ("exoctl is-", (const char * const []) { "is-active", "is-failed", NULL });
  assert_replies ("exoctl --json st", (const char * const []) { "start", "status", "stop", NULL });
  /* options */
  assert_replies ("exoctl --no-", (const char * const []) {
                    "--no-color", "--no-legend", "--no-pager", NULL });
  assert_offers ("exoctl status -", (const char * const []) {
                   "--bus-name", "--system", "--session", "--json", "--property", "--value",
                   "--quiet", "--full", "-q", "-p", NULL });
  assert_replies ("exoctl show -p State,Me", (const char * const []) {
                    "State,Members", "State,Metrics", NULL });
  assert_replies ("exoctl show --property=Sta", (const char * const []) {
                    "State", "StateChangedAt", NULL });
  /* ids of the running node, for the commands that take ids */
  assert_replies ("exoctl status ", all_ids);
  assert_replies ("exoctl restart p", (const char * const []) { "peer-1", "peers", NULL });
  assert_replies ("exoctl is-active engine s", (const char * const []) { "server", NULL });
  assert_replies ("exoctl stop engine e", (const char * const []) { NULL });
  assert_replies ("exoctl --session --no-pager show w", (const char * const []) { "workers", NULL });
  assert_replies ("exoctl list ", (const char * const []) { NULL });
  assert_replies ("exoctl --bus-name org.exo.Node1 is-failed d",
                  (const char * const []) { "discovery", NULL });
  assert_replies ("exoctl --bus-name=org.exo.Node1 start d",
                  (const char * const []) { "discovery", NULL });
  {
    /* the exoctl given as a path is the one asked */
    g_autofree char *line = g_strconcat (exoctl_path, " status w", NULL);
    assert_replies (line, (const char * const []) { "workers", NULL });
  }
  /* no node under that name: nothing offered, nothing printed, soon */
  {
    gint64 start = g_get_monotonic_time ();

    assert_replies ("exoctl --bus-name org.exo.Nobody status ", (const char * const []) { NULL });
    assert_replies ("exoctl --system --bus-name org.exo.Nobody status ",
                    (const char * const []) { NULL });
    g_assert_cmpint (g_get_monotonic_time () - start, <, 20 * G_USEC_PER_SEC);
  }
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);

  exoctl_path = g_getenv ("EXOCTL");
  if (exoctl_path == NULL)
    exoctl_path = g_test_build_filename (G_TEST_BUILT, "..", "src", "exoctl", "exoctl", NULL);

  g_test_add_func ("/exoctl/show", test_show);
  g_test_add_func ("/exoctl/is-active", test_is_active);
  g_test_add_func ("/exoctl/is-failed", test_is_failed);
  g_test_add_func ("/exoctl/width", test_width);
  g_test_add_func ("/exoctl/pager", test_pager);
  g_test_add_func ("/exoctl/completion", test_completion);

  fake_up ();
  rc = g_test_run ();
  fake_down ();
  return rc;
}
