/* http-exposition.c: Prometheus' text exposition format (version 0.0.4).
 *
 * Owns how /metrics is written: families (one `# HELP` and `# TYPE` each,
 * their samples together, families sorted by name), label escaping, the
 * spelling of values, fixed-bucket histograms, and the process_* metrics
 * read from /proc/self.  What is exported is http-metrics.c's business.
 *
 * Rules: everything runs in the caller's thread (the server's
 * GMainContext); no locks.  Reads of /proc are bounded (a fixed buffer for
 * /proc/self/stat; at most PROC_STAT_MAX bytes of /proc/stat, once per
 * server), so a scrape costs the same however long the process runs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-exposition.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* /proc/stat has a line per CPU and one for every interrupt before
 * `btime`: a few KiB, more on big machines; past this, no start time. */
#define PROC_STAT_MAX (1024 * 1024)

struct _HttpFamily
{
  char       *name;
  const char *type;     /* static */
  char       *help;
  GString    *samples;
};

struct _HttpExposition
{
  GHashTable *families; /* name -> HttpFamily* (owned) */
};

struct _HttpHistogram
{
  const double *bounds;
  guint         n_bounds;
  guint64      *counts;  /* per bucket, not cumulative; [n_bounds] is +Inf's */
  double        sum;
  guint64       count;
};

static void
family_free (HttpFamily *family)
{
  g_free (family->name);
  g_free (family->help);
  g_string_free (family->samples, TRUE);
  g_free (family);
}

HttpExposition *
http_exposition_new (void)
{
  HttpExposition *self = g_new0 (HttpExposition, 1);

  self->families = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) family_free);
  return self;
}

void
http_exposition_free (HttpExposition *self)
{
  g_hash_table_unref (self->families);
  g_free (self);
}

HttpFamily *
http_exposition_family (HttpExposition *self,
                        const char     *name,
                        const char     *type,
                        const char     *help)
{
  HttpFamily *family = g_hash_table_lookup (self->families, name);

  if (family != NULL)
    return strcmp (family->type, type) == 0 ? family : NULL;
  family = g_new0 (HttpFamily, 1);
  family->name = g_strdup (name);
  family->type = type;
  family->help = g_strdup (help);
  family->samples = g_string_new (NULL);
  g_hash_table_insert (self->families, family->name, family);
  return family;
}

static int
compare_families (gconstpointer a,
                  gconstpointer b)
{
  const HttpFamily *fa = *(HttpFamily * const *) a;
  const HttpFamily *fb = *(HttpFamily * const *) b;

  return strcmp (fa->name, fb->name);
}

/* HELP text: `\` and newlines escaped. */
static void
append_help (GString    *out,
             const char *help)
{
  for (const char *p = help; *p != '\0'; p++)
    {
      if (*p == '\\')
        g_string_append (out, "\\\\");
      else if (*p == '\n')
        g_string_append (out, "\\n");
      else
        g_string_append_c (out, *p);
    }
}

char *
http_exposition_end (HttpExposition *self)
{
  g_autoptr(GPtrArray) families = g_ptr_array_new ();
  GString *out = g_string_new (NULL);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->families);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (families, value);
  g_ptr_array_sort (families, compare_families);
  for (guint i = 0; i < families->len; i++)
    {
      HttpFamily *family = g_ptr_array_index (families, i);

      g_string_append_printf (out, "# HELP %s ", family->name);
      append_help (out, family->help);
      g_string_append_printf (out, "\n# TYPE %s %s\n", family->name, family->type);
      g_string_append_len (out, family->samples->str, family->samples->len);
    }
  http_exposition_free (self);
  return g_string_free (out, FALSE);
}

void
http_labels_append (GString    *labels,
                    const char *name,
                    const char *value)
{
  if (labels->len > 0)
    g_string_append_c (labels, ',');
  g_string_append_printf (labels, "%s=\"", name);
  for (const char *p = value != NULL ? value : ""; *p != '\0'; p++)
    {
      switch (*p)
        {
        case '\\':
          g_string_append (labels, "\\\\");
          break;
        case '"':
          g_string_append (labels, "\\\"");
          break;
        case '\n':
          g_string_append (labels, "\\n");
          break;
        default:
          g_string_append_c (labels, *p);
        }
    }
  g_string_append_c (labels, '"');
}

/* The shortest of %.15g and %.17g that reads back as @v. */
static void
append_double (GString *out,
               double   v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isnan (v))
    {
      g_string_append (out, "NaN");
      return;
    }
  if (isinf (v))
    {
      g_string_append (out, v > 0 ? "+Inf" : "-Inf");
      return;
    }
  g_ascii_formatd (buf, sizeof buf, "%.15g", v);
  if (g_ascii_strtod (buf, NULL) != v)
    g_ascii_formatd (buf, sizeof buf, "%.17g", v);
  g_string_append (out, buf);
}

static void
begin_sample (HttpFamily *family,
              const char *sample,
              const char *labels)
{
  g_string_append (family->samples, sample != NULL ? sample : family->name);
  if (labels != NULL && labels[0] != '\0')
    g_string_append_printf (family->samples, "{%s}", labels);
  g_string_append_c (family->samples, ' ');
}

void
http_family_add_double (HttpFamily *family,
                        const char *sample,
                        const char *labels,
                        double      value)
{
  begin_sample (family, sample, labels);
  append_double (family->samples, value);
  g_string_append_c (family->samples, '\n');
}

void
http_family_add_u64 (HttpFamily *family,
                     const char *sample,
                     const char *labels,
                     guint64     value)
{
  begin_sample (family, sample, labels);
  g_string_append_printf (family->samples, "%" G_GUINT64_FORMAT "\n", value);
}

void
http_family_add_i64 (HttpFamily *family,
                     const char *sample,
                     const char *labels,
                     gint64      value)
{
  begin_sample (family, sample, labels);
  g_string_append_printf (family->samples, "%" G_GINT64_FORMAT "\n", value);
}

/* --- histograms ----------------------------------------------------------- */

HttpHistogram *
http_histogram_new (const double *bounds,
                    guint         n_bounds)
{
  HttpHistogram *self = g_new0 (HttpHistogram, 1);

  self->bounds = bounds;
  self->n_bounds = n_bounds;
  self->counts = g_new0 (guint64, n_bounds + 1);
  return self;
}

void
http_histogram_free (HttpHistogram *self)
{
  g_free (self->counts);
  g_free (self);
}

void
http_histogram_observe (HttpHistogram *self,
                        double         value)
{
  guint i = 0;

  if (isnan (value))
    return;
  while (i < self->n_bounds && value > self->bounds[i])
    i++;
  self->counts[i]++;
  self->sum += value;
  self->count++;
}

void
http_histogram_write (const HttpHistogram *self,
                      HttpFamily          *family,
                      const char          *labels)
{
  g_autofree char *bucket = g_strconcat (family->name, "_bucket", NULL);
  g_autofree char *sum = g_strconcat (family->name, "_sum", NULL);
  g_autofree char *count = g_strconcat (family->name, "_count", NULL);
  g_autoptr(GString) le = g_string_new (NULL);
  guint64 cumulative = 0;

  for (guint i = 0; i <= self->n_bounds; i++)
    {
      g_string_assign (le, labels != NULL ? labels : "");
      if (le->len > 0)
        g_string_append_c (le, ',');
      g_string_append (le, "le=\"");
      if (i < self->n_bounds)
        append_double (le, self->bounds[i]);
      else
        g_string_append (le, "+Inf");
      g_string_append_c (le, '"');
      cumulative += self->counts[i];
      http_family_add_u64 (family, bucket, le->str, cumulative);
    }
  http_family_add_double (family, sum, labels, self->sum);
  http_family_add_u64 (family, count, labels, self->count);
}

/* --- process_* -------------------------------------------------------------- */

/* Up to @size - 1 bytes of @path, NUL-terminated; FALSE when unreadable. */
static gboolean
read_proc_file (const char *path,
                char       *buf,
                gsize       size)
{
  gsize len = 0;
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return FALSE;
  while (len < size - 1)
    {
      ssize_t n = read (fd, buf + len, size - 1 - len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      len += (gsize) n;
    }
  close (fd);
  buf[len] = '\0';
  return len > 0;
}

/* The boot time (`btime` of /proc/stat), in s since the epoch; 0 when it
 * is not in the first PROC_STAT_MAX bytes. */
static guint64
boot_time (void)
{
  FILE *file = fopen ("/proc/stat", "re");
  char line[512];
  gboolean line_start = TRUE;
  gsize total = 0;
  guint64 btime = 0;

  if (file == NULL)
    return 0;
  /* fgets cuts long lines (the `intr` line) into pieces: only a piece at
   * the start of a line can be `btime`. */
  while (total < PROC_STAT_MAX && fgets (line, sizeof line, file) != NULL)
    {
      gsize len = strlen (line);

      if (line_start && strncmp (line, "btime ", 6) == 0)
        {
          btime = g_ascii_strtoull (line + 6, NULL, 10);
          break;
        }
      total += len;
      line_start = len > 0 && line[len - 1] == '\n';
    }
  fclose (file);
  return btime;
}

/* Open descriptors, not counting the one that reads the list. */
static gboolean
count_open_fds (guint64 *out)
{
  DIR *dir = opendir ("/proc/self/fd");
  struct dirent *entry;
  guint64 n = 0;

  if (dir == NULL)
    return FALSE;
  /* bounded by RLIMIT_NOFILE: the kernel lists open descriptors only */
  while ((entry = readdir (dir)) != NULL)
    if (entry->d_name[0] != '.')
      n++;
  closedir (dir);
  *out = n > 0 ? n - 1 : 0;
  return TRUE;
}

void
http_exposition_add_process (HttpExposition *self,
                             double         *start_time)
{
  char stat[4096];
  long ticks = sysconf (_SC_CLK_TCK);
  long page = sysconf (_SC_PAGESIZE);
  struct rlimit limit;
  guint64 fds;

  if (ticks > 0 && page > 0 && read_proc_file ("/proc/self/stat", stat, sizeof stat))
    {
      /* `pid (comm) state …`: comm may hold spaces and parentheses; the
       * fields are counted from the last `)` (field 3, state, is 0 here) */
      const char *p = strrchr (stat, ')');
      guint64 field[22] = { 0 };
      guint n = 0;

      for (p = p != NULL ? p + 1 : NULL; p != NULL && n < G_N_ELEMENTS (field); n++)
        {
          char *end;

          while (*p == ' ')
            p++;
          if (*p == '\0')
            break;
          if (n == 0)
            end = (char *) p + 1;   /* the state, one letter */
          else
            field[n] = g_ascii_strtoull (p, &end, 10);
          if (end == p)
            break;
          p = end;
        }
      if (n == G_N_ELEMENTS (field))
        {
          /* utime 14, stime 15, starttime 22, vsize 23, rss 24 (proc(5)) */
          double cpu = (double) (field[11] + field[12]) / ticks;

          http_family_add_double (http_exposition_family (self, "process_cpu_seconds_total", "counter",
                                                          "Total user and system CPU time spent in seconds."),
                                  NULL, NULL, cpu);
          http_family_add_u64 (http_exposition_family (self, "process_virtual_memory_bytes", "gauge",
                                                       "Virtual memory size in bytes."),
                               NULL, NULL, field[20]);
          http_family_add_u64 (http_exposition_family (self, "process_resident_memory_bytes", "gauge",
                                                       "Resident memory size in bytes."),
                               NULL, NULL, field[21] * (guint64) page);
          if (*start_time == 0)
            {
              guint64 btime = boot_time ();

              if (btime > 0)
                *start_time = (double) btime + (double) field[19] / ticks;
            }
          if (*start_time > 0)
            http_family_add_double (http_exposition_family (self, "process_start_time_seconds", "gauge",
                                                            "Start time of the process since unix epoch in seconds."),
                                    NULL, NULL, *start_time);
        }
    }
  if (count_open_fds (&fds))
    http_family_add_u64 (http_exposition_family (self, "process_open_fds", "gauge",
                                                 "Number of open file descriptors."),
                         NULL, NULL, fds);
  if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    http_family_add_u64 (http_exposition_family (self, "process_max_fds", "gauge",
                                                 "Maximum number of open file descriptors."),
                         NULL, NULL, (guint64) limit.rlim_cur);
}
