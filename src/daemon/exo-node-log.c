/* exo-node-log.c: exo-node's log writer.
 *
 * Owns: the GLogWriterFunc the daemon installs (exo_node_log_install()):
 * debug and info only with --verbose or G_MESSAGES_DEBUG, every message
 * through the rate limit of exo-daemon-log.c (per kind; access lines with
 * a budget of their own), then to journald with every field and
 * SYSLOG_IDENTIFIER=exo-node when stderr is the journal, else one line on
 * stderr ("HH:MM:SS.mmm exo-node[PID]: level: domain: message"); the line
 * that stands for what the limit held back, and the timer that writes it
 * when no message of that kind follows.
 *
 * Rules: exo_node_log_install() runs in main() before any thread exists;
 * the limiters are made there and never replaced, so the writer, which
 * GLib calls on whichever thread logs (a plugin's worker), only reads
 * them; each limiter takes its own mutex; the local time zone is made once
 * (g_once_init_enter()).  The flush timer is on the global default main
 * context (the daemon's loop); exo_node_log_finish() runs after the loop.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-node-log.h"

#include <exo/exo.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "exo-daemon-log.h"

static ExoLogLimiter *log_limiter;     /* per kind of message */
static ExoLogLimiter *access_limiter;  /* all access lines together */
static guint log_flush_id;

static const char *
level_name (GLogLevelFlags level)
{
  switch (level & G_LOG_LEVEL_MASK)
    {
    case G_LOG_LEVEL_ERROR:    return "error";
    case G_LOG_LEVEL_CRITICAL: return "critical";
    case G_LOG_LEVEL_WARNING:  return "warning";
    case G_LOG_LEVEL_MESSAGE:  return "notice";
    case G_LOG_LEVEL_INFO:     return "info";
    case G_LOG_LEVEL_DEBUG:    return "debug";
    default:                   return "log";
    }
}

/* Journald gets every field when stderr is the journal (systemd connects
 * it to /run/systemd/journal/stdout), and SYSLOG_IDENTIFIER=exo-node, which
 * GLib does not add; a terminal gets one readable line. */
static void
write_fields (GLogLevelFlags   log_level,
              const GLogField *fields,
              gsize            n_fields)
{
  const char *message = NULL, *domain = NULL;

  if (g_log_writer_is_journald (fileno (stderr)))
    {
      gsize n_journal;
      const GLogField *journal = exo_log_fields_with_identifier (fields, n_fields,
                                                                 EXO_LOG_SYSLOG_IDENTIFIER,
                                                                 &n_journal);
      GLogWriterOutput written = g_log_writer_journald (log_level, journal, n_journal, NULL);

      if (journal != fields)
        g_free ((gpointer) journal);
      if (written == G_LOG_WRITER_HANDLED)
        return;
    }

  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
        message = fields[i].value;
      else if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0)
        domain = fields[i].value;
    }

  {
    /* the zone once: looking it up per line was 4 % of a cold start */
    static GTimeZone *local_zone;
    g_autoptr(GDateTime) now = NULL;

    /* any thread may log first */
    if (g_once_init_enter (&local_zone))
      g_once_init_leave (&local_zone, g_time_zone_new_local ());
    now = g_date_time_new_now (local_zone);
    g_autofree char *stamp = g_date_time_format (now, "%H:%M:%S.%f");

    /* %f is microseconds: keep milliseconds */
    if (stamp != NULL && strlen (stamp) > 12)
      stamp[12] = '\0';
    fprintf (stderr, "%s exo-node[%d]: %s: %s%s%s\n",
             stamp ? stamp : "", (int) getpid (), level_name (log_level),
             domain != NULL && g_strcmp0 (domain, "exo-node") != 0 ? domain : "",
             domain != NULL && g_strcmp0 (domain, "exo-node") != 0 ? ": " : "",
             message ? message : "");
    fflush (stderr);
  }
}

/* The line that stands for messages the rate limit held back; @user_data
 * is non-NULL (@access_limiter) for access lines. */
static void
log_suppressed (const char     *domain,
                GLogLevelFlags  level,
                const char     *example,
                guint           count,
                gpointer        user_data)
{
  guint interval_s = (guint) (EXO_LOG_LIMIT_INTERVAL_US / G_USEC_PER_SEC);
  g_autofree char *message =
    user_data != NULL
    ? g_strdup_printf ("%u access log lines suppressed (at most %u per %u s), like: %s", count,
                       EXO_LOG_ACCESS_BURST, interval_s, example != NULL ? example : "")
    : g_strdup_printf ("%u similar messages suppressed (at most %u of a kind per %u s), like: %s",
                       count, EXO_LOG_LIMIT_BURST, interval_s, example != NULL ? example : "");
  char priority[2] = { (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) ? '3'
                       : (level & G_LOG_LEVEL_WARNING) ? '4' : '5', '\0' };
  GLogField fields[] = {
    { "MESSAGE", message, -1 },
    { "PRIORITY", priority, -1 },
    { "GLIB_DOMAIN", domain != NULL ? domain : "exo-node", -1 },
    { "EXO_SUPPRESSED", "1", -1 },
  };

  write_fields (level, fields, G_N_ELEMENTS (fields));
}

/* Debug and info messages are written with --verbose (main() enables
 * GLib's debug output, g_log_set_debug_enabled()) or when G_MESSAGES_DEBUG
 * names their domain: what g_log_writer_default_would_drop() answers, so
 * that code can ask it before it formats a message (the HTTP access log
 * does).  Every message passes the rate limit first (exo-daemon-log.c): a
 * flood of one kind of message costs a line per interval, not the disk;
 * access lines have a budget of their own. */
static GLogWriterOutput
log_writer (GLogLevelFlags   log_level,
            const GLogField *fields,
            gsize            n_fields,
            gpointer         user_data)
{
  const char *message = NULL, *domain = NULL;
  gboolean pass = TRUE;

  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
        message = fields[i].value;
      else if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0)
        domain = fields[i].value;
    }
  if ((log_level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)) &&
      g_log_writer_default_would_drop (log_level & G_LOG_LEVEL_MASK, domain))
    return G_LOG_WRITER_HANDLED;

  if (access_limiter != NULL && exo_log_is_access (log_level, fields, n_fields))
    pass = exo_log_limiter_check_key (access_limiter, EXO_LOG_ACCESS_KEY, domain, log_level,
                                      message, g_get_monotonic_time (), log_suppressed,
                                      access_limiter);
  else if (log_limiter != NULL)
    pass = exo_log_limiter_check (log_limiter, domain, log_level, message, g_get_monotonic_time (),
                                  log_suppressed, NULL);
  if (!pass)
    return G_LOG_WRITER_HANDLED;

  write_fields (log_level, fields, n_fields);
  return G_LOG_WRITER_HANDLED;
}

/* Reports what the limit held back once its interval is over, even when
 * no message of that kind follows. */
static gboolean
log_flush_cb (gpointer user_data)
{
  exo_log_limiter_flush (log_limiter, g_get_monotonic_time (), log_suppressed, NULL);
  exo_log_limiter_flush (access_limiter, g_get_monotonic_time (), log_suppressed, access_limiter);
  return G_SOURCE_CONTINUE;
}

void
exo_node_log_install (void)
{
  log_limiter = exo_log_limiter_new (EXO_LOG_LIMIT_INTERVAL_US, EXO_LOG_LIMIT_BURST,
                                     EXO_LOG_LIMIT_MAX_KEYS);
  access_limiter = exo_log_limiter_new (EXO_LOG_LIMIT_INTERVAL_US, EXO_LOG_ACCESS_BURST, 1);
  g_log_set_writer_func (log_writer, NULL, NULL);
}

void
exo_node_log_start_flush (void)
{
  if (log_flush_id == 0)
    log_flush_id = g_timeout_add_seconds ((guint) (EXO_LOG_LIMIT_INTERVAL_US / G_USEC_PER_SEC),
                                          log_flush_cb, NULL);
}

void
exo_node_log_finish (void)
{
  g_clear_handle_id (&log_flush_id, g_source_remove);
  exo_log_limiter_flush (log_limiter, G_MAXINT64, log_suppressed, NULL);
  exo_log_limiter_flush (access_limiter, G_MAXINT64, log_suppressed, access_limiter);
}
