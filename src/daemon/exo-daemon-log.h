/* exo-daemon-log.h: the rate limit of exo-node's log (see exo-daemon-log.c).
 *
 * Thread rules: an ExoLogLimiter may be used from any thread (a mutex).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define EXO_LOG_LIMIT_INTERVAL_US (10 * G_USEC_PER_SEC)
#define EXO_LOG_LIMIT_BURST       10
#define EXO_LOG_LIMIT_MAX_KEYS    128

/* Access lines (an HTTP server's one line per request) are not limited per
 * kind, as a web server logs every request; all of them together are
 * bounded instead: at most this many per EXO_LOG_LIMIT_INTERVAL_US (a flood
 * costs 1,000 lines a second, about 100 kB/s, not the disk). */
#define EXO_LOG_ACCESS_BURST      10000
/* The key all access lines are counted under. */
#define EXO_LOG_ACCESS_KEY        "access"

/* The identifier exo-node's journal entries carry (`journalctl -t exo-node`),
 * as its lines on stderr say "exo-node[PID]". */
#define EXO_LOG_SYSLOG_IDENTIFIER "exo-node"

typedef struct _ExoLogLimiter ExoLogLimiter;

/* Called with what was suppressed: @count messages like @example (the first
 * of them) of @domain at @level. */
typedef void (*ExoLogSuppressedFunc) (const char     *domain,
                                      GLogLevelFlags  level,
                                      const char     *example,
                                      guint           count,
                                      gpointer        user_data);

ExoLogLimiter *exo_log_limiter_new    (gint64                interval_us,
                                       guint                 burst,
                                       guint                 max_keys);
void           exo_log_limiter_free   (ExoLogLimiter        *self);

/* The pattern a message is counted under: its domain, its level, and its
 * text with every word that holds a digit (ids, addresses, counts) made
 * "#".  Free with g_free(). */
char          *exo_log_pattern        (const char           *domain,
                                       GLogLevelFlags        level,
                                       const char           *message);

/* Whether a message may be written at @now_us (monotonic).  At most @burst
 * messages of one pattern per interval pass; the others are counted.  When
 * a pattern's interval is over (checked at its next message, at a flush, or
 * when its entry is evicted from the full table) and messages were
 * suppressed, @report is called first (without the limiter's lock held). */
gboolean       exo_log_limiter_check  (ExoLogLimiter        *self,
                                       const char           *domain,
                                       GLogLevelFlags        level,
                                       const char           *message,
                                       gint64                now_us,
                                       ExoLogSuppressedFunc  report,
                                       gpointer              user_data);
/* The same, counted under @key instead of the message's pattern. */
gboolean       exo_log_limiter_check_key (ExoLogLimiter     *self,
                                          const char        *key,
                                          const char        *domain,
                                          GLogLevelFlags     level,
                                          const char        *message,
                                          gint64             now_us,
                                          ExoLogSuppressedFunc report,
                                          gpointer           user_data);
/* Reports the patterns whose interval is over at @now_us (G_MAXINT64: all). */
void           exo_log_limiter_flush  (ExoLogLimiter        *self,
                                       gint64                now_us,
                                       ExoLogSuppressedFunc  report,
                                       gpointer              user_data);
guint          exo_log_limiter_size   (ExoLogLimiter        *self);

/* Whether a message is an access line: info or debug, with an HTTP_METHOD
 * field (docs/exo-node.md, LOGGING). */
gboolean       exo_log_is_access      (GLogLevelFlags        level,
                                       const GLogField      *fields,
                                       gsize                 n_fields);

/* @fields with SYSLOG_IDENTIFIER=@identifier added unless one is there:
 * what exo-node sends to the journal.  Returns @fields itself (and
 * *@n_out = @n_fields) when nothing was added, else a new array (free the
 * array only, with g_free(); the strings are @fields' and @identifier). */
const GLogField *exo_log_fields_with_identifier (const GLogField *fields,
                                                 gsize            n_fields,
                                                 const char      *identifier,
                                                 gsize           *n_out);

G_END_DECLS
