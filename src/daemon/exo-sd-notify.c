/* exo-sd-notify.c: exo-node's side of the service manager's notification
 * protocol (sd_notify(3)), without libsystemd: "KEY=VALUE" lines in one
 * datagram to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an
 * abstract socket when it starts with '@').
 *
 * Owns: reading $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID once, and
 * removing them from the environment (as sd_notify()'s unset_environment
 * does) so that no program the daemon starts believes it is the service;
 * the socket the messages leave on; the STATUS= text rules (one line,
 * bounded); the watchdog ping timer (WATCHDOG=1 every $WATCHDOG_USEC / 2,
 * only when $WATCHDOG_PID is absent or names this process).
 *
 * Rules: main thread only.  exo_sd_notify_new_from_environment() runs
 * before any other thread exists (setenv/unsetenv are not thread-safe).
 * The watchdog timer is attached to the thread-default main context of the
 * caller of exo_sd_notify_start_watchdog(), the daemon's main loop: when
 * that loop is wedged the pings stop and the manager restarts the service.
 * Sending never blocks (MSG_DONTWAIT): when the manager does not read, the
 * message is lost and the daemon goes on; a failing send is logged once
 * per kind of failure.  Everything read from the environment is hostile:
 * bounded, parsed strictly, ignored with a warning when malformed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-sd-notify.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct _ExoSdNotify
{
  int                 fd;
  struct sockaddr_un  address;
  socklen_t           address_length;
  char               *name;            /* $NOTIFY_SOCKET, for messages */
  guint64             watchdog_usec;   /* 0: no watchdog for this process */
  guint               watchdog_id;
  int                 last_errno;      /* of the last send; 0 after a success */
};

/* @value as it may appear in a message: escaped, at most 120 bytes. */
static char *
printable (const char *value)
{
  g_autofree char *escaped = g_strescape (value, NULL);

  if (strlen (escaped) > 120)
    return g_strdup_printf ("%.117s...", escaped);
  return g_steal_pointer (&escaped);
}

static gboolean
set_address (ExoSdNotify *self,
             const char  *value)
{
  gsize length = strlen (value);

  memset (&self->address, 0, sizeof self->address);
  self->address.sun_family = AF_UNIX;
  if (value[0] == '@')
    {
      /* abstract: a NUL, then the name, which may not be empty */
      if (length < 2 || length > sizeof self->address.sun_path)
        return FALSE;
      memcpy (self->address.sun_path + 1, value + 1, length - 1);
      self->address_length = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + length);
      return TRUE;
    }
  if (value[0] == '/')
    {
      if (length >= sizeof self->address.sun_path)
        return FALSE;
      memcpy (self->address.sun_path, value, length + 1);
      self->address_length = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + length + 1);
      return TRUE;
    }
  return FALSE;
}

/* The watchdog interval $WATCHDOG_USEC asks of this process, or 0. */
static guint64
watchdog_from_environment (void)
{
  const char *usec_value = g_getenv ("WATCHDOG_USEC");
  const char *pid_value = g_getenv ("WATCHDOG_PID");
  guint64 usec, pid;

  if (usec_value == NULL || g_str_equal (usec_value, "0"))
    return 0;     /* 0: the manager wants no watchdog (as sd_watchdog_enabled()) */
  if (!g_ascii_string_to_unsigned (usec_value, 10, 1, G_MAXUINT64, &usec, NULL))
    {
      g_autofree char *shown = printable (usec_value);

      g_warning ("ignoring WATCHDOG_USEC='%s': not a number of microseconds above 0; "
                 "no watchdog pings", shown);
      return 0;
    }
  if (pid_value == NULL)
    return usec;
  if (!g_ascii_string_to_unsigned (pid_value, 10, 1, G_MAXINT32, &pid, NULL))
    {
      g_autofree char *shown = printable (pid_value);

      g_warning ("ignoring the watchdog: WATCHDOG_PID='%s' is not a process id", shown);
      return 0;
    }
  if (pid != (guint64) getpid ())
    {
      g_info ("the watchdog is for process %" G_GUINT64_FORMAT ", not this one (%d): "
              "no watchdog pings", pid, (int) getpid ());
      return 0;
    }
  return usec;
}

/**
 * exo_sd_notify_new_from_environment:
 *
 * Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID and unsets all
 * three.  Call it before any thread exists.
 *
 * Returns: (transfer full) (nullable): the notifier, or %NULL when no
 *   service manager listens ($NOTIFY_SOCKET unset) or its socket cannot be
 *   used (a warning says why)
 */
ExoSdNotify *
exo_sd_notify_new_from_environment (void)
{
  g_autoptr(ExoSdNotify) self = g_new0 (ExoSdNotify, 1);
  const char *socket_value = g_getenv ("NOTIFY_SOCKET");

  self->fd = -1;
  if (socket_value != NULL)
    {
      self->name = g_strdup (socket_value);
      self->watchdog_usec = watchdog_from_environment ();
    }
  g_unsetenv ("NOTIFY_SOCKET");
  g_unsetenv ("WATCHDOG_USEC");
  g_unsetenv ("WATCHDOG_PID");

  if (self->name == NULL)
    return NULL;
  if (!set_address (self, self->name))
    {
      g_autofree char *shown = printable (self->name);

      g_warning ("ignoring NOTIFY_SOCKET='%s': expected an absolute path or '@' and an abstract "
                 "name, shorter than %u bytes; the service manager will not hear from exo-node",
                 shown, (guint) sizeof self->address.sun_path);
      return NULL;
    }
  self->fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (self->fd < 0)
    {
      int saved = errno;

      g_warning ("cannot make a socket for NOTIFY_SOCKET: %s; the service manager will not "
                 "hear from exo-node", g_strerror (saved));
      return NULL;
    }
  return g_steal_pointer (&self);
}

void
exo_sd_notify_free (ExoSdNotify *self)
{
  if (self == NULL)
    return;
  exo_sd_notify_stop_watchdog (self);
  if (self->fd >= 0)
    close (self->fd);
  g_free (self->name);
  g_free (self);
}

/**
 * exo_sd_notify_status_text:
 * @text: a status
 *
 * @text as a STATUS= value: valid UTF-8, one line (control characters
 * become spaces), at most %EXO_SD_NOTIFY_MAX_STATUS bytes (cut at a
 * character boundary, ending in "...").
 *
 * Returns: (transfer full): the value
 */
char *
exo_sd_notify_status_text (const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text, -1);
  gsize length;

  for (char *p = valid; *p != '\0'; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      *p = ' ';
  length = strlen (valid);
  if (length > EXO_SD_NOTIFY_MAX_STATUS)
    {
      const char *end = valid + EXO_SD_NOTIFY_MAX_STATUS - 3;

      /* back to the start of the character that would be cut */
      while (end > valid && ((guchar) *end & 0xc0) == 0x80)
        end--;
      return g_strdup_printf ("%.*s...", (int) (end - valid), valid);
    }
  return g_steal_pointer (&valid);
}

/**
 * exo_sd_notify_send:
 * @self: (nullable): the notifier; %NULL sends nothing
 * @fields: (nullable): lines such as "READY=1" (newline-separated)
 * @status: (nullable): a STATUS= text (see exo_sd_notify_status_text())
 *
 * Sends @fields and @status in one datagram, without blocking.
 *
 * Returns: whether the datagram went out
 */
gboolean
exo_sd_notify_send (ExoSdNotify *self,
                    const char  *fields,
                    const char  *status)
{
  g_autoptr(GString) message = NULL;
  gssize sent;

  if (self == NULL)
    return FALSE;

  message = g_string_new (fields);
  if (status != NULL)
    {
      g_autofree char *line = exo_sd_notify_status_text (status);

      if (message->len > 0)
        g_string_append_c (message, '\n');
      g_string_append (message, "STATUS=");
      g_string_append (message, line);
    }

  do
    sent = sendto (self->fd, message->str, message->len, MSG_DONTWAIT | MSG_NOSIGNAL,
                   (struct sockaddr *) &self->address, self->address_length);
  while (sent < 0 && errno == EINTR);

  if (sent < 0)
    {
      int saved = errno;

      if (saved != self->last_errno)
        {
          g_autofree char *shown = printable (self->name);

          g_warning ("cannot notify the service manager at %s: %s (it may not see that "
                     "exo-node is ready, or alive)", shown, g_strerror (saved));
        }
      self->last_errno = saved;
      return FALSE;
    }
  if (self->last_errno != 0)
    g_message ("notifying the service manager works again");
  self->last_errno = 0;
  return TRUE;
}

/**
 * exo_sd_notify_get_watchdog_usec:
 * @self: (nullable): the notifier
 *
 * Returns: the watchdog interval the manager expects of this process, in
 *   microseconds, or 0 when there is none
 */
guint64
exo_sd_notify_get_watchdog_usec (ExoSdNotify *self)
{
  return self != NULL ? self->watchdog_usec : 0;
}

static gboolean
watchdog_cb (gpointer user_data)
{
  exo_sd_notify_send (user_data, "WATCHDOG=1", NULL);
  return G_SOURCE_CONTINUE;
}

/**
 * exo_sd_notify_start_watchdog:
 * @self: (nullable): the notifier
 *
 * Sends WATCHDOG=1 now and then every half of the watchdog interval (at
 * least %EXO_SD_NOTIFY_MIN_PING_MS apart), from a high-priority timeout on
 * the thread-default main context.
 *
 * Returns: whether pings were started (%FALSE when there is no watchdog)
 */
gboolean
exo_sd_notify_start_watchdog (ExoSdNotify *self)
{
  guint64 interval_ms;

  if (self == NULL || self->watchdog_usec == 0)
    return FALSE;
  if (self->watchdog_id != 0)
    return TRUE;

  interval_ms = self->watchdog_usec / 2 / 1000;
  if (interval_ms < EXO_SD_NOTIFY_MIN_PING_MS)
    {
      g_warning ("the watchdog interval (%" G_GUINT64_FORMAT " us) is shorter than exo-node "
                 "can keep; pinging every %u ms", self->watchdog_usec, EXO_SD_NOTIFY_MIN_PING_MS);
      interval_ms = EXO_SD_NOTIFY_MIN_PING_MS;
    }
  interval_ms = MIN (interval_ms, G_MAXUINT);

  exo_sd_notify_send (self, "WATCHDOG=1", NULL);
  self->watchdog_id = g_timeout_add_full (G_PRIORITY_HIGH, (guint) interval_ms, watchdog_cb,
                                          self, NULL);
  g_source_set_name_by_id (self->watchdog_id, "[exo-node] watchdog ping");
  return TRUE;
}

void
exo_sd_notify_stop_watchdog (ExoSdNotify *self)
{
  if (self != NULL)
    g_clear_handle_id (&self->watchdog_id, g_source_remove);
}
