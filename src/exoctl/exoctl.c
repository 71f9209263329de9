/* exoctl.c: the command-line client of exo-node (docs/design.md §7):
 * option parsing, the command table and dispatch, and main().
 *
 * A plain D-Bus client: it links GLib, GIO and json-glib, never libexo.
 * Everything it shows comes from one GetManagedObjects call on
 * /org/exo/Node1 and, for `node` and `plugins`, one Properties.GetAll of
 * org.exo.Node1; it never makes a call per resource.
 *
 * Exit status: 0 ok; 1 a failed method, or something unhealthy (`health`);
 * 2 a usage error; 3 no exo-node is running (or no bus); 4 an unknown id.
 * docs/exoctl.md is the reference.
 *
 * The files of exoctl, one per command group (exoctl-private.h declares
 * what they share):
 *   exoctl.c           main, options, the command table, dispatch
 *   exoctl-snapshot.c  reading the node (one call), Resource and Snapshot,
 *                      D-Bus errors as exit statuses
 *   exoctl-output.c    tables, fields, colours, glyphs, times, JSON printing
 *   exoctl-status.c    list, status, health
 *   exoctl-tree.c      tree
 *   exoctl-control.c   start, stop, restart
 *   exoctl-node.c      plugins, node
 *   exoctl-watch.c     watch
 *
 * Rules: exoctl is single-threaded.  Every command but `watch` makes
 * blocking (sync) D-Bus calls and no main loop runs; `watch` runs a loop on
 * the global-default main context (exoctl-watch.c).  Output goes to stdout,
 * errors to stderr, one line each.
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
  "Usage: exoctl [OPTION...] COMMAND [ARG]\n"
  "\n"
  "Query and control a running exo-node over D-Bus.\n"
  "\n"
  "Commands:\n"
  "  list                 List every resource with its state\n"
  "  status ID            Show all properties and metrics of one resource\n"
  "  health               Show unhealthy resources; exit 1 when there is one\n"
  "  start ID             Initialize a resource\n"
  "  stop ID              Clean up a resource\n"
  "  restart ID           Restart a resource\n"
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
  "  --count N            watch: end after N state changes\n"
  "  --timeout SEC        watch: end after SEC seconds\n"
  "  --no-color           Never colour the output (also: NO_COLOR set)\n"
  "  -h, --help           Show this help and exit\n"
  "  --version            Show the version and exit\n"
  "\n"
  "Exit status: 0 ok; 1 a failed method or an unhealthy node (health);\n"
  "2 usage error; 3 no exo-node running; 4 no such resource.\n";

static const char short_usage_text[] =
  "Usage: exoctl [--session|--system] [--bus-name NAME] [--json] COMMAND [ID]\n"
  "Commands: list, status ID, health, start ID, stop ID, restart ID, tree,\n"
  "watch [--count N] [--timeout SEC], plugins, node.  See 'exoctl --help'.\n";

static int G_GNUC_PRINTF (1, 2)
usage_error (const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  fprintf (stderr, "exoctl: %s\n%s", message, short_usage_text);
  return EXIT_USAGE;
}

/* ------------------------------------------------------------------- main */

static int
terminal_columns (void)
{
  struct winsize ws;
  const char *env = g_getenv ("COLUMNS");

  if (ioctl (STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  if (env != NULL && atoi (env) > 0)
    return atoi (env);
  return 80;
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
  NEEDS_NOTHING,
  NEEDS_ID,
} Arity;

static const struct
{
  const char *name;
  Arity       arity;
} commands[] = {
  { "list", NEEDS_NOTHING },
  { "status", NEEDS_ID },
  { "health", NEEDS_NOTHING },
  { "start", NEEDS_ID },
  { "stop", NEEDS_ID },
  { "restart", NEEDS_ID },
  { "tree", NEEDS_NOTHING },
  { "watch", NEEDS_NOTHING },
  { "plugins", NEEDS_NOTHING },
  { "node", NEEDS_NOTHING },
};

static int
run (Ctl *ctl, const char *command, const char *id)
{
  if (g_str_equal (command, "list"))
    return cmd_list (ctl);
  if (g_str_equal (command, "status"))
    return cmd_status (ctl, id);
  if (g_str_equal (command, "health"))
    return cmd_health (ctl);
  if (g_str_equal (command, "start"))
    return cmd_method (ctl, id, "Initialize", "start");
  if (g_str_equal (command, "stop"))
    return cmd_method (ctl, id, "Cleanup", "stop");
  if (g_str_equal (command, "restart"))
    return cmd_method (ctl, id, "Restart", "restart");
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

int
main (int argc, char **argv)
{
  Ctl ctl = { 0 };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) args = NULL;
  const char *command;
  const char *id = NULL;
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
  if (commands[i].arity == NEEDS_ID)
    {
      if (n_args < 2 || args[1][0] == '\0')
        {
          rc = usage_error ("%s: missing resource ID", command);
          goto out;
        }
      id = args[1];
    }
  if (n_args > (commands[i].arity == NEEDS_ID ? 2u : 1u))
    {
      rc = usage_error ("%s: unexpected argument '%s'", command,
                        args[commands[i].arity == NEEDS_ID ? 2 : 1]);
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
  ctl.columns = isatty (STDOUT_FILENO) ? terminal_columns () : 0;

  rc = connect_bus (&ctl);
  if (rc == EXIT_OK)
    rc = run (&ctl, command, id);

out:
  fflush (stdout);
  g_clear_object (&ctl.connection);
  g_free (ctl.bus_name);
  g_free (ctl.count_arg);
  g_free (ctl.timeout_arg);
  return rc;
}
