/* exo-test-bus.c: a private dbus-daemon for the end-to-end tests.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The bus listens on a filesystem socket (not an abstract one), so that a
 * node running in its own network namespace reaches it too.  It is ready
 * when it prints its address (--print-address): the socket file exists a
 * moment before the daemon listens on it, and a client connecting in that
 * moment is refused.  Called from the test's main thread only.
 */
#include "exo-test-bus.h"

#include <signal.h>
#include <sys/prctl.h>

static void
die_with_test (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* Starts dbus-daemon on @socket_path and returns once it accepts
 * connections (aborts the test if it dies instead). */
GSubprocess *
exo_test_bus_spawn (const char  *socket_path,
                    char       **out_address)
{
  g_autofree char *address = g_strdup_printf ("unix:path=%s", socket_path);
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  GSubprocess *bus;

  /* it goes when the test goes, also when the test aborts */
  g_subprocess_launcher_set_child_setup (launcher, die_with_test, NULL, NULL);
  bus = g_subprocess_launcher_spawn (launcher, &error, "dbus-daemon", "--session", "--nofork",
                                     "--print-address=1", "--address", address, NULL);
  if (bus == NULL)
    g_error ("cannot start dbus-daemon: %s", error->message);
  /* one line, printed once the socket listens; EOF if it died */
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (bus));
  line = g_data_input_stream_read_line_utf8 (out, NULL, NULL, &error);
  if (line == NULL)
    g_error ("dbus-daemon did not start on %s: %s", socket_path,
             error != NULL ? error->message : "it exited");
  if (out_address != NULL)
    *out_address = g_steal_pointer (&address);
  return bus;
}
