/* exoctl.c: the command-line client of exo-node (docs/design.md §7):
 * option parsing, the command table and dispatch, and main().
 *
 * A plain D-Bus client: it links GLib, GIO and json-glib, never libexo.
 * Everything it shows comes from one GetManagedObjects call on
 * /org/exo/Node1 and, for `node`, `plugins` and `show` without an id, one
 * Properties.GetAll of org.exo.Node1; it never reads a resource by a call
 * of its own.
 *
 * Exit status, as systemctl's: 0 ok; 1 no exo-node is running (or no bus),
 * a failed method, something unhealthy (`health`), nothing failed
 * (`is-failed`); 2 a usage error; 3 not ready (`status`, `is-active`); 4 an
 * unknown id.  Commands given several ids go on past a missing one and exit
 * with the highest status.  docs/exoctl.md is the reference.
 *
 * The files of exoctl, one per command group (exoctl-private.h declares
 * what they share):
 *   exoctl.c           main, options, the command table, dispatch
 *   exoctl-snapshot.c  reading the node (one call), Resource and Snapshot,
 *                      D-Bus errors as exit statuses
 *   exoctl-output.c    tables (fitted to the width), fields, colours, glyphs,
 *                      times, JSON printing
 *   exoctl-pager.c     the pager on a terminal
 *   exoctl-status.c    list, status, health
 *   exoctl-show.c      show, is-active, is-failed
 *   exoctl-tree.c      tree
 *   exoctl-control.c   start, stop, restart
 *   exoctl-node.c      plugins, node
 *   exoctl-watch.c     watch
 *
 * Rules: exoctl is single-threaded.  Every command but `watch` makes
 * blocking (sync) D-Bus calls and no main loop runs; `watch` runs a loop on
 * the global-default main context (exoctl-watch.c).  Output goes to stdout
 * (through a pager on a terminal, exoctl-pager.c), errors to stderr, one
 * line each.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exoctl-private.h"

#include <locale.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Only the version macros; exoctl does not link libexo. */
#define EXO_INSIDE
#include <exo/exo-version.h>
#undef EXO_INSIDE

static const char usage_text[] =
  "Usage: exoctl [OPTION...] COMMAND [ID...]\n"
  "\n"
  "Query and control a running exo-node over D-Bus.\n"
  "\n"
  "Commands:\n"
  "  list                 List every resource with its state\n"
  "  status ID...         Show all properties and metrics; exit 3 unless ready\n"
  "  show [ID...]         Properties as Key=Value for scripts (no ID: the node)\n"
  "  is-active ID...      Print each state; exit 0 when all are ready, else 3\n"
  "  is-failed ID...      Print each state; exit 0 when one is in error, else 1\n"
  "  health               Show unhealthy resources; exit 1 when there is one\n"
  "  start ID...          Initialize resources\n"
  "  stop ID...           Clean up resources\n"
  "  restart ID...        Restart resources\n"
  "  tree                 Show groups and dependencies as a tree\n"
  "  watch                Print state changes as they happen\n"
  "  plugins              List the plugins the node loaded\n"
  "  node                 Show the node's id, version, state and topology\n"
  "\n"
  "Options:\n"
  "  --session            Talk to the node on the session bus (the default)\n"
  "  --system             Talk to the node on the system bus\n"
  "  --bus-name NAME      The node's bus name (default " DEFAULT_BUS_NAME ")\n"
  "  --json               Print JSON for programs instead of tables\n"
  "  -p, --property NAME  show: only these properties (NAME,NAME...; repeatable)\n"
  "  --value              show: print the values only, without \"Key=\"\n"
  "  -q, --quiet          is-active, is-failed: print nothing, only exit\n"
  "  --no-pager           Do not pipe the output into a pager\n"
  "  --no-legend          Print tables without column headers and footer\n"
  "  -l, --full           Do not cut tables to the terminal's width\n"
  "  --count N            watch: end after N state changes\n"
  "  --timeout SEC        watch: end after SEC seconds\n"
  "  --no-color           Never colour the output (also: NO_COLOR set)\n"
  "  -h, --help           Show this help and exit\n"
  "  --version            Show the version and exit\n"
  "\n"
  "Exit status: 0 ok; 1 no exo-node running, a failed method, health:\n"
  "unhealthy, is-failed: none failed; 2 usage error; 3 status, is-active:\n"
  "not ready; 4 no such resource.  With several IDs, the highest.\n";

static const char short_usage_text[] =
  "Usage: exoctl [--session|--system] [--bus-name NAME] [--json] COMMAND [ID...]\n"
  "Commands: list, status ID..., show [ID...], is-active ID..., is-failed ID...,\n"
  "health, start ID..., stop ID..., restart ID..., tree,\n"
  "watch [--count N] [--timeout SEC], plugins, node.  See 'exoctl --help'.\n";

static int G_GNUC_PRINTF (1, 2)
usage_error (const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  {
    g_autofree char *shown = clean (message);   /* the user's own arguments, echoed */

    fprintf (stderr, "exoctl: %s\n%s", shown, short_usage_text);
  }
  return EXIT_USAGE;
}

/* ------------------------------------------------------------------- main */

/* The width tables fit: $COLUMNS when set (as systemd and POSIX have it),
 * else the terminal's; 0 (never cut) when stdout is no terminal. */
static int
terminal_columns (void)
{
  struct winsize ws;
  const char *env = g_getenv ("COLUMNS");
  guint64 value;

  if (env != NULL && g_ascii_string_to_unsigned (env, 10, 1, G_MAXUSHORT, &value, NULL))
    return (int) value;
  if (isatty (STDOUT_FILENO) && ioctl (STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return isatty (STDOUT_FILENO) ? 80 : 0;
}

static int
connect_bus (Ctl *ctl)
{
  g_autoptr(GError) error = NULL;

  ctl->connection = g_bus_get_sync (ctl->bus_type, NULL, &error);
  if (ctl->connection == NULL)
    {
      g_autofree char *why = g_strdup_printf ("cannot connect to the bus: %s", error->message);
      return not_running (ctl, why);
    }
  g_dbus_connection_set_exit_on_close (ctl->connection, FALSE);
  return EXIT_OK;
}

typedef enum
{
  NO_IDS,
  IDS,                         /* one or more */
  OPTIONAL_IDS,                /* none or more */
} Arity;

/* The commands; @pages: its output goes through the pager on a terminal
 * (not for watch, the answers of is-active/is-failed, or the methods). */
static const struct
{
  const char *name;
  Arity       arity;
  gboolean    pages;
} commands[] = {
  { "list", NO_IDS, TRUE },
  { "status", IDS, TRUE },
  { "show", OPTIONAL_IDS, TRUE },
  { "is-active", IDS, FALSE },
  { "is-failed", IDS, FALSE },
  { "health", NO_IDS, TRUE },
  { "start", IDS, FALSE },
  { "stop", IDS, FALSE },
  { "restart", IDS, FALSE },
  { "tree", NO_IDS, TRUE },
  { "watch", NO_IDS, FALSE },
  { "plugins", NO_IDS, TRUE },
  { "node", NO_IDS, TRUE },
};

static int
run (Ctl *ctl, const char *command, char **ids)
{
  if (g_str_equal (command, "list"))
    return cmd_list (ctl);
  if (g_str_equal (command, "status"))
    return cmd_status (ctl, ids);
  if (g_str_equal (command, "show"))
    return cmd_show (ctl, ids);
  if (g_str_equal (command, "is-active"))
    return cmd_is_active (ctl, ids);
  if (g_str_equal (command, "is-failed"))
    return cmd_is_failed (ctl, ids);
  if (g_str_equal (command, "health"))
    return cmd_health (ctl);
  if (g_str_equal (command, "start"))
    return cmd_method (ctl, ids, "Initialize", "start");
  if (g_str_equal (command, "stop"))
    return cmd_method (ctl, ids, "Cleanup", "stop");
  if (g_str_equal (command, "restart"))
    return cmd_method (ctl, ids, "Restart", "restart");
  if (g_str_equal (command, "tree"))
    return cmd_tree (ctl);
  if (g_str_equal (command, "watch"))
    return cmd_watch (ctl);
  if (g_str_equal (command, "plugins"))
    return cmd_plugins (ctl);
  if (g_str_equal (command, "node"))
    return cmd_node (ctl);
  g_assert_not_reached ();
}

/* -p NAME[,NAME...], each given once or more, into ctl->properties.
 * Returns an exit status. */
static int
parse_properties (Ctl *ctl)
{
  if (ctl->property_args == NULL)
    return EXIT_OK;
  ctl->properties = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; ctl->property_args[i] != NULL; i++)
    {
      g_auto(GStrv) names = g_strsplit (ctl->property_args[i], ",", -1);

      for (guint n = 0; names[n] != NULL; n++)
        if (names[n][0] != '\0')
          g_hash_table_add (ctl->properties, g_strdup (names[n]));
    }
  if (g_hash_table_size (ctl->properties) == 0)
    return usage_error ("--property needs a property name");
  return EXIT_OK;
}

int
main (int argc, char **argv)
{
  Ctl ctl = { 0 };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) args = NULL;
  const char *command;
  char **ids = NULL;
  gsize i, n_args;
  int rc;
  GOptionEntry entries[] = {
    { "session", 0, 0, G_OPTION_ARG_NONE, &ctl.session, NULL, NULL },
    { "system", 0, 0, G_OPTION_ARG_NONE, &ctl.system, NULL, NULL },
    { "bus-name", 0, 0, G_OPTION_ARG_STRING, &ctl.bus_name, NULL, NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &ctl.json, NULL, NULL },
    { "count", 0, 0, G_OPTION_ARG_STRING, &ctl.count_arg, NULL, NULL },
    { "timeout", 0, 0, G_OPTION_ARG_STRING, &ctl.timeout_arg, NULL, NULL },
    { "no-color", 0, 0, G_OPTION_ARG_NONE, &ctl.no_color, NULL, NULL },
    { "property", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &ctl.property_args, NULL, NULL },
    { "value", 0, 0, G_OPTION_ARG_NONE, &ctl.value_only, NULL, NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &ctl.quiet, NULL, NULL },
    { "no-pager", 0, 0, G_OPTION_ARG_NONE, &ctl.no_pager, NULL, NULL },
    { "no-legend", 0, 0, G_OPTION_ARG_NONE, &ctl.no_legend, NULL, NULL },
    { "full", 'l', 0, G_OPTION_ARG_NONE, &ctl.full, NULL, NULL },
    { "help", 'h', 0, G_OPTION_ARG_NONE, &ctl.help, NULL, NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &ctl.version, NULL, NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, NULL },
    { NULL }
  };

  setlocale (LC_ALL, "");

  context = g_option_context_new (NULL);
  g_option_context_set_help_enabled (context, FALSE);
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      rc = usage_error ("%s", error->message);
      goto out;
    }

  if (ctl.help)
    {
      fputs (usage_text, stdout);
      rc = EXIT_OK;
      goto out;
    }
  if (ctl.version)
    {
      printf ("exoctl %s\n", EXO_VERSION_STRING);
      rc = EXIT_OK;
      goto out;
    }

  n_args = args != NULL ? g_strv_length (args) : 0;
  if (n_args == 0)
    {
      rc = usage_error ("no command given");
      goto out;
    }
  command = args[0];
  if (g_str_equal (command, "help"))
    {
      fputs (usage_text, stdout);
      rc = EXIT_OK;
      goto out;
    }
  for (i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (commands[i].name, command))
      break;
  if (i == G_N_ELEMENTS (commands))
    {
      rc = usage_error ("unknown command '%s'", command);
      goto out;
    }
  ids = args + 1;
  if (commands[i].arity == IDS && ids[0] == NULL)
    {
      rc = usage_error ("%s: missing resource ID", command);
      goto out;
    }
  if (commands[i].arity == NO_IDS && ids[0] != NULL)
    {
      rc = usage_error ("%s: unexpected argument '%s'", command, ids[0]);
      goto out;
    }
  for (guint n = 0; ids[n] != NULL; n++)
    if (ids[n][0] == '\0')
      {
        rc = usage_error ("%s: an empty resource ID", command);
        goto out;
      }

  if (ctl.session && ctl.system)
    {
      rc = usage_error ("--session and --system exclude each other");
      goto out;
    }
  if (ctl.count_arg != NULL)
    {
      guint64 value;

      if (!g_ascii_string_to_unsigned (ctl.count_arg, 10, 1, G_MAXINT, &value, NULL))
        {
          rc = usage_error ("--count must be a positive number, not '%s'", ctl.count_arg);
          goto out;
        }
      ctl.count = (int) value;
    }
  if (ctl.timeout_arg != NULL)
    {
      char *end = NULL;

      ctl.timeout = g_ascii_strtod (ctl.timeout_arg, &end);
      if (end == ctl.timeout_arg || *end != '\0' || !(ctl.timeout > 0) || ctl.timeout > 1e9)
        {
          rc = usage_error ("--timeout must be a positive number of seconds, not '%s'",
                            ctl.timeout_arg);
          goto out;
        }
    }
  if ((ctl.count_arg != NULL || ctl.timeout_arg != NULL) && !g_str_equal (command, "watch"))
    {
      rc = usage_error ("--count and --timeout are options of watch");
      goto out;
    }
  if ((ctl.property_args != NULL || ctl.value_only) && !g_str_equal (command, "show"))
    {
      rc = usage_error ("--property and --value are options of show");
      goto out;
    }
  if (ctl.json && (g_str_equal (command, "show") || g_str_has_prefix (command, "is-")))
    {
      rc = usage_error ("%s does not print JSON (status --json does)", command);
      goto out;
    }
  if ((rc = parse_properties (&ctl)) != EXIT_OK)
    goto out;
  if (ctl.bus_name == NULL)
    ctl.bus_name = g_strdup (DEFAULT_BUS_NAME);
  if (!g_dbus_is_name (ctl.bus_name))
    {
      rc = usage_error ("'%s' is not a valid bus name", ctl.bus_name);
      goto out;
    }

  ctl.bus_type = ctl.system ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION;
  ctl.color = !ctl.no_color && isatty (STDOUT_FILENO) && g_getenv ("NO_COLOR") == NULL &&
              g_strcmp0 (g_getenv ("TERM"), "dumb") != 0;
  ctl.utf8 = g_get_charset (NULL);
  ctl.columns = terminal_columns ();

  /* After colours and width were taken from the terminal. */
  if (commands[i].pages)
    pager_open (&ctl);

  rc = connect_bus (&ctl);
  if (rc == EXIT_OK)
    rc = run (&ctl, command, ids);

out:
  fflush (stdout);
  pager_close (&ctl);
  g_clear_object (&ctl.connection);
  g_clear_pointer (&ctl.properties, g_hash_table_unref);
  g_strfreev (ctl.property_args);
  g_free (ctl.bus_name);
  g_free (ctl.count_arg);
  g_free (ctl.timeout_arg);
  return rc;
}
