/* http-exposition.h: Prometheus' text exposition format (version 0.0.4),
 * written family by family, histograms, and the process_* metrics.  What
 * the server exports is chosen in http-metrics.c; this is only how it is
 * written.  Not installed.
 *
 * Rules: an HttpExposition and an HttpHistogram belong to their caller's
 * thread (the server's GMainContext); no locks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _HttpExposition HttpExposition;
typedef struct _HttpFamily HttpFamily;

HttpExposition *http_exposition_new          (void);
void            http_exposition_free         (HttpExposition *self);
/* The text: every family sorted by name, `# HELP`, `# TYPE`, then its
 * samples in the order they were added.  Frees @self. */
char           *http_exposition_end          (HttpExposition *self);

/* The family @name, made with @type ("counter", "gauge", "summary",
 * "histogram") and @help (one line) the first time it is asked for;
 * NULL when it exists with another type (the caller drops the sample). */
HttpFamily     *http_exposition_family       (HttpExposition *self,
                                              const char     *name,
                                              const char     *type,
                                              const char     *help);

/* Appends `,name="value"` (no comma when @labels is empty) to @labels,
 * with the value escaped as the format wants. */
void            http_labels_append           (GString        *labels,
                                              const char     *name,
                                              const char     *value);

/* One sample: `@sample{@labels} value` (@sample NULL: the family's name;
 * @labels NULL or "" for none, else `a="b",c="d"`, already escaped). */
void            http_family_add_double       (HttpFamily     *family,
                                              const char     *sample,
                                              const char     *labels,
                                              double          value);
void            http_family_add_u64          (HttpFamily     *family,
                                              const char     *sample,
                                              const char     *labels,
                                              guint64         value);
void            http_family_add_i64          (HttpFamily     *family,
                                              const char     *sample,
                                              const char     *labels,
                                              gint64          value);

/* A histogram with fixed buckets (@bounds: ascending upper bounds, in the
 * unit of the observations, static; +Inf is implicit). */
typedef struct _HttpHistogram HttpHistogram;

HttpHistogram  *http_histogram_new           (const double        *bounds,
                                              guint                n_bounds);
void            http_histogram_free          (HttpHistogram       *self);
void            http_histogram_observe       (HttpHistogram       *self,
                                              double               value);
/* `_bucket{@labels,le="…"}` for each bound and +Inf (cumulative), `_sum`,
 * `_count`; @family is of type "histogram". */
void            http_histogram_write         (const HttpHistogram *self,
                                              HttpFamily          *family,
                                              const char          *labels);

/* process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds and
 * process_start_time_seconds, as Prometheus' client libraries define them,
 * from /proc/self (Linux; what cannot be read is left out).
 * @start_time caches the start time (0: not read yet). */
void            http_exposition_add_process  (HttpExposition *self,
                                              double         *start_time);

G_END_DECLS
