/* exo-daemon-log.c: the rate limit of exo-node's log, as journald and
 * systemd have ("Suppressed N messages").
 *
 * A flood of one message (a peer flapping, accept failing at the file
 * descriptor limit, a critical from a library on every datagram) must not
 * fill the disk or hide everything else.  Messages are counted per pattern
 * (domain, level, and the text with its numbers and ids masked): at most
 * `burst` of a pattern per interval are written; when the interval is
 * over, one line says how many were suppressed.  The table of patterns is
 * bounded (`max_keys`): when it is full the entry whose interval began
 * first is reported and dropped.
 *
 * Access lines (exo_log_is_access()) are counted apart, all under one key
 * of their own limiter (EXO_LOG_ACCESS_BURST per interval, exo-node.c), so
 * that every request is logged and a flood of requests still cannot fill
 * the disk: their paths differ and would each make a kind of their own.
 *
 * Also here: what the journal gets besides the fields of a message
 * (exo_log_fields_with_identifier()).
 *
 * Thread rules: GLib calls the log writer from any thread; every call here
 * takes the limiter's mutex, and report callbacks run without it held (so
 * they may log through the limiter again).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-daemon-log.h"

#include <string.h>

#define PATTERN_MAX_CHARS 160

typedef struct
{
  char           *key;
  char           *domain;
  char           *example;     /* the first message suppressed */
  GLogLevelFlags  level;
  gint64          window_start;
  guint           passed;
  guint           suppressed;
} Entry;

struct _ExoLogLimiter
{
  GMutex      lock;
  gint64      interval_us;
  guint       burst;
  guint       max_keys;
  GHashTable *entries;         /* key → Entry* (owned) */
};

typedef struct
{
  char           *domain;
  char           *example;
  GLogLevelFlags  level;
  guint           count;
} Report;

static void
entry_free (Entry *entry)
{
  g_free (entry->key);
  g_free (entry->domain);
  g_free (entry->example);
  g_free (entry);
}

static void
report_free (Report *report)
{
  g_free (report->domain);
  g_free (report->example);
  g_free (report);
}

ExoLogLimiter *
exo_log_limiter_new (gint64 interval_us,
                     guint  burst,
                     guint  max_keys)
{
  ExoLogLimiter *self = g_new0 (ExoLogLimiter, 1);

  g_mutex_init (&self->lock);
  self->interval_us = MAX (interval_us, 1);
  self->burst = MAX (burst, 1u);
  self->max_keys = MAX (max_keys, 1u);
  self->entries = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify) entry_free);
  return self;
}

void
exo_log_limiter_free (ExoLogLimiter *self)
{
  if (self == NULL)
    return;
  g_hash_table_unref (self->entries);
  g_mutex_clear (&self->lock);
  g_free (self);
}

static gboolean
is_word_char (char c)
{
  return g_ascii_isalnum (c) || c == '-' || c == '_' || c == '.' || c == ':' || c == '/';
}

char *
exo_log_pattern (const char     *domain,
                 GLogLevelFlags  level,
                 const char     *message)
{
  GString *out = g_string_new (NULL);
  const char *p = message != NULL ? message : "";

  g_string_append_printf (out, "%s\n%d\n", domain != NULL ? domain : "",
                          (int) (level & G_LOG_LEVEL_MASK));
  while (*p != '\0' && out->len < PATTERN_MAX_CHARS)
    {
      if (is_word_char (*p))
        {
          const char *start = p;
          gboolean digit = FALSE;

          while (is_word_char (*p))
            digit |= g_ascii_isdigit (*p++);
          if (digit)
            g_string_append_c (out, '#');
          else
            g_string_append_len (out, start, p - start);
        }
      else
        g_string_append_c (out, *p++);
    }
  return g_string_free (out, FALSE);
}

static Report *
take_report (Entry *entry)
{
  Report *report;

  if (entry->suppressed == 0)
    return NULL;
  report = g_new0 (Report, 1);
  report->domain = g_strdup (entry->domain);
  report->example = g_steal_pointer (&entry->example);
  report->level = entry->level;
  report->count = entry->suppressed;
  entry->suppressed = 0;
  return report;
}

static void
deliver (GPtrArray            *reports,
         ExoLogSuppressedFunc  report,
         gpointer              user_data)
{
  for (guint i = 0; i < reports->len; i++)
    {
      Report *r = g_ptr_array_index (reports, i);

      if (report != NULL)
        report (r->domain, r->level, r->example, r->count, user_data);
    }
}

/* Makes room for one entry: drops (and reports) the oldest. */
static void
evict_one (ExoLogLimiter *self,
           GPtrArray     *reports)
{
  GHashTableIter iter;
  gpointer value;
  Entry *oldest = NULL;
  Report *report;

  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (oldest == NULL || ((Entry *) value)->window_start < oldest->window_start)
      oldest = value;
  if (oldest == NULL)
    return;
  report = take_report (oldest);
  if (report != NULL)
    g_ptr_array_add (reports, report);
  g_hash_table_remove (self->entries, oldest->key);
}

/* The table is full: expired entries go first, then the oldest. */
static void
make_room (ExoLogLimiter *self,
           gint64         now_us,
           GPtrArray     *reports)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Entry *e = value;

      if (now_us - e->window_start >= self->interval_us)
        {
          Report *r = take_report (e);

          if (r != NULL)
            g_ptr_array_add (reports, r);
          g_hash_table_iter_remove (&iter);
        }
    }
  if (g_hash_table_size (self->entries) >= self->max_keys)
    evict_one (self, reports);
}

gboolean
exo_log_limiter_check (ExoLogLimiter        *self,
                       const char           *domain,
                       GLogLevelFlags        level,
                       const char           *message,
                       gint64                now_us,
                       ExoLogSuppressedFunc  report,
                       gpointer              user_data)
{
  g_autofree char *key = exo_log_pattern (domain, level, message);

  return exo_log_limiter_check_key (self, key, domain, level, message, now_us, report, user_data);
}

gboolean
exo_log_limiter_check_key (ExoLogLimiter        *self,
                           const char           *key,
                           const char           *domain,
                           GLogLevelFlags        level,
                           const char           *message,
                           gint64                now_us,
                           ExoLogSuppressedFunc  report,
                           gpointer              user_data)
{
  g_autoptr(GPtrArray) reports = g_ptr_array_new_with_free_func ((GDestroyNotify) report_free);
  gboolean pass;
  Entry *entry;

  g_mutex_lock (&self->lock);
  entry = g_hash_table_lookup (self->entries, key);
  if (entry != NULL && now_us - entry->window_start >= self->interval_us)
    {
      Report *r = take_report (entry);

      if (r != NULL)
        g_ptr_array_add (reports, r);
      entry->window_start = now_us;
      entry->passed = 0;
    }
  if (entry == NULL)
    {
      if (g_hash_table_size (self->entries) >= self->max_keys)
        make_room (self, now_us, reports);
      entry = g_new0 (Entry, 1);
      entry->key = g_strdup (key);
      entry->domain = g_strdup (domain);
      entry->level = level & G_LOG_LEVEL_MASK;
      entry->window_start = now_us;
      g_hash_table_insert (self->entries, entry->key, entry);
    }
  pass = entry->passed < self->burst;
  if (pass)
    entry->passed++;
  else
    {
      if (entry->suppressed == 0)
        {
          g_free (entry->example);
          entry->example = g_strdup (message);
        }
      entry->suppressed++;
    }
  g_mutex_unlock (&self->lock);

  deliver (reports, report, user_data);
  return pass;
}

void
exo_log_limiter_flush (ExoLogLimiter        *self,
                       gint64                now_us,
                       ExoLogSuppressedFunc  report,
                       gpointer              user_data)
{
  g_autoptr(GPtrArray) reports = g_ptr_array_new_with_free_func ((GDestroyNotify) report_free);
  GHashTableIter iter;
  gpointer value;

  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Entry *e = value;

      if (now_us == G_MAXINT64 || now_us - e->window_start >= self->interval_us)
        {
          Report *r = take_report (e);

          if (r != NULL)
            g_ptr_array_add (reports, r);
          g_hash_table_iter_remove (&iter);
        }
    }
  g_mutex_unlock (&self->lock);

  deliver (reports, report, user_data);
}

guint
exo_log_limiter_size (ExoLogLimiter *self)
{
  guint n;

  g_mutex_lock (&self->lock);
  n = g_hash_table_size (self->entries);
  g_mutex_unlock (&self->lock);
  return n;
}

gboolean
exo_log_is_access (GLogLevelFlags   level,
                   const GLogField *fields,
                   gsize            n_fields)
{
  if ((level & (G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG)) == 0)
    return FALSE;
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "HTTP_METHOD") == 0)
      return TRUE;
  return FALSE;
}

const GLogField *
exo_log_fields_with_identifier (const GLogField *fields,
                                gsize            n_fields,
                                const char      *identifier,
                                gsize           *n_out)
{
  GLogField *out;

  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "SYSLOG_IDENTIFIER") == 0)
      {
        *n_out = n_fields;
        return fields;
      }
  out = g_new (GLogField, n_fields + 1);
  if (n_fields > 0)
    memcpy (out, fields, n_fields * sizeof (GLogField));
  out[n_fields].key = "SYSLOG_IDENTIFIER";
  out[n_fields].value = identifier;
  out[n_fields].length = -1;
  *n_out = n_fields + 1;
  return out;
}
