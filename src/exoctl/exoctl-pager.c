/* exoctl-pager.c: the pager.  On a terminal, what a command prints goes
 * through $EXO_PAGER, else $PAGER, else less, as systemctl does with
 * $SYSTEMD_PAGER; LESS is set to FRSXMK for the pager when it is unset
 * (quit when it fits one screen, colours, no screen clearing, Ctrl-C
 * quits).  No pager when --no-pager is given, when standard output is not
 * a terminal, when the variable is empty or "cat", or when the program it
 * names (or less) is not found; then exoctl prints as it would without.
 * exoctl.c decides which commands page: never `watch`, `is-active`,
 * `is-failed` or the methods.
 *
 * Rules: pager_open() runs once, from exoctl's one thread, before anything
 * is printed (the caller decided colours and the width from the terminal
 * first).  The pager is spawned with g_spawn (safe although GDBus runs a
 * worker thread), its stdin a pipe that becomes exoctl's stdout; its
 * stdout and stderr stay the terminal.  From then on SIGPIPE is ignored (a
 * pager quit early makes writes fail, it does not kill exoctl).
 * pager_close() flushes, closes the pipe and waits for the pager with
 * SIGINT and SIGQUIT ignored, so that the shell gets the terminal back only
 * when the pager is gone and Ctrl-C inside the pager is the pager's.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exoctl-private.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Whether the program a pager command line starts with can be run. */
static gboolean
pager_found (const char *command)
{
  g_auto(GStrv) argv = NULL;
  g_autofree char *path = NULL;

  if (!g_shell_parse_argv (command, NULL, &argv, NULL))
    return FALSE;
  path = g_find_program_in_path (argv[0]);
  return path != NULL;
}

/* The argv to run, or NULL for no pager. */
static GStrv
pager_argv (void)
{
  const char *command = g_getenv ("EXO_PAGER");
  g_autofree char *less = NULL;

  if (command == NULL)
    command = g_getenv ("PAGER");
  if (command != NULL)
    {
      g_autofree char *stripped = g_strstrip (g_strdup (command));

      if (stripped[0] == '\0' || g_str_equal (stripped, "cat"))
        return NULL;                       /* asked for no pager */
      if (pager_found (stripped))
        {
          const char *argv[] = { "/bin/sh", "-c", stripped, NULL };
          return g_strdupv ((char **) argv);
        }
      /* Not found: less, as if nothing were set. */
    }
  less = g_find_program_in_path ("less");
  if (less != NULL)
    {
      const char *argv[] = { less, NULL };
      return g_strdupv ((char **) argv);
    }
  return NULL;
}

void
pager_open (Ctl *ctl)
{
  g_auto(GStrv) argv = NULL;
  g_auto(GStrv) envp = NULL;
  g_autoptr(GError) error = NULL;
  GPid pid;
  int pipe_fd = -1;

  if (ctl->no_pager || ctl->pager_pid != 0 || !isatty (STDOUT_FILENO))
    return;
  argv = pager_argv ();
  if (argv == NULL)
    return;

  envp = g_get_environ ();
  if (g_environ_getenv (envp, "LESS") == NULL)
    envp = g_environ_setenv (envp, "LESS", "FRSXMK", TRUE);

  fflush (stdout);
  if (!g_spawn_async_with_pipes_and_fds (NULL, (const char * const *) argv,
                                         (const char * const *) envp,
                                         G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_CLOEXEC_PIPES,
                                         NULL, NULL, -1, -1, -1, NULL, NULL, 0,
                                         &pid, &pipe_fd, NULL, NULL, &error))
    return;                                /* print without a pager */

  signal (SIGPIPE, SIG_IGN);
  if (dup2 (pipe_fd, STDOUT_FILENO) < 0)
    {
      /* Cannot happen with a valid fd; end the pager and go on without. */
      close (pipe_fd);
      waitpid (pid, NULL, 0);
      return;
    }
  close (pipe_fd);
  ctl->pager_pid = pid;
}

void
pager_close (Ctl *ctl)
{
  int null_fd;

  if (ctl->pager_pid == 0)
    return;

  fflush (stdout);
  /* EOF for the pager: stdout becomes /dev/null rather than a closed fd. */
  null_fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd >= 0)
    {
      dup2 (null_fd, STDOUT_FILENO);
      close (null_fd);
    }
  else
    close (STDOUT_FILENO);

  signal (SIGINT, SIG_IGN);
  signal (SIGQUIT, SIG_IGN);
  while (waitpid (ctl->pager_pid, NULL, 0) < 0 && errno == EINTR)
    ;
  ctl->pager_pid = 0;
}
