/* test-daemon-log.c: the rate limit of exo-node's log (src/daemon/exo-daemon-log.c),
 * the budget of access lines and the journal's SYSLOG_IDENTIFIER (through the
 * real daemon: test-node-log).
 *
 * Time is passed in, so the cases run without waiting.  That the daemon
 * writes few lines under a flood of accept failures is checked through the
 * real exo-node by test-http-limits (/http-limits/fd-limit).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-daemon-log.h"

#include <string.h>

#define SEC G_USEC_PER_SEC

typedef struct
{
  guint    calls;
  guint    total;
  char    *last_example;
  char    *last_domain;
} Reports;

static void
on_suppressed (const char     *domain,
               GLogLevelFlags  level,
               const char     *example,
               guint           count,
               gpointer        user_data)
{
  Reports *r = user_data;

  r->calls++;
  r->total += count;
  g_free (r->last_example);
  r->last_example = g_strdup (example);
  g_free (r->last_domain);
  r->last_domain = g_strdup (domain);
}

static void
reports_clear (Reports *r)
{
  g_free (r->last_example);
  g_free (r->last_domain);
  memset (r, 0, sizeof *r);
}

static void
test_pattern (void)
{
  g_autofree char *a = exo_log_pattern ("exo-node-plugin", G_LOG_LEVEL_WARNING,
                                        "node-1: peer node-3 at 127.0.0.1:52415 lost (3 failures)");
  g_autofree char *b = exo_log_pattern ("exo-node-plugin", G_LOG_LEVEL_WARNING,
                                        "node-1: peer node-12 at 10.0.0.7:80 lost (41 failures)");
  g_autofree char *c = exo_log_pattern ("exo-http-server", G_LOG_LEVEL_WARNING,
                                        "node-1: peer node-3 at 127.0.0.1:52415 lost (3 failures)");
  g_autofree char *d = exo_log_pattern ("exo-node-plugin", G_LOG_LEVEL_MESSAGE,
                                        "node-1: peer node-3 at 127.0.0.1:52415 lost (3 failures)");
  g_autofree char *e = exo_log_pattern ("exo-node-plugin", G_LOG_LEVEL_WARNING,
                                        "node-1: peer node-3 joined");
  g_autofree char *uuid1 = exo_log_pattern (NULL, G_LOG_LEVEL_MESSAGE,
                                            "request 5b0c2f3e-4d1a-4e7b-9c00-1f2e3d4c5b6a: cancelled");
  g_autofree char *uuid2 = exo_log_pattern (NULL, G_LOG_LEVEL_MESSAGE,
                                            "request 9f1e0000-aaaa-bbbb-cccc-0123456789ab: cancelled");
  g_autofree char *text = exo_log_pattern ("d", G_LOG_LEVEL_WARNING, "fail: Too many open files");
  GString *longer = g_string_new (NULL);
  g_autofree char *bounded = NULL;

  /* numbers, ids and addresses do not make a new kind of message */
  g_assert_cmpstr (a, ==, b);
  g_assert_cmpstr (uuid1, ==, uuid2);
  /* the domain, the level and the words do */
  g_assert_cmpstr (a, !=, c);
  g_assert_cmpstr (a, !=, d);
  g_assert_cmpstr (a, !=, e);
  g_assert_nonnull (strstr (text, "fail: Too many open files"));

  for (guint i = 0; i < 10000; i++)
    g_string_append (longer, "word ");
  bounded = exo_log_pattern ("d", G_LOG_LEVEL_WARNING, longer->str);
  g_assert_cmpuint (strlen (bounded), <, 200);
  g_string_free (longer, TRUE);
}

/* A flood of one kind: a burst passes, the rest is counted and reported
 * once when the interval is over. */
static void
test_burst (void)
{
  ExoLogLimiter *limiter = exo_log_limiter_new (10 * SEC, 10, 128);
  Reports r = { 0 };
  guint passed = 0;
  gint64 t = 1000 * SEC;

  for (guint i = 0; i < 1000; i++)
    {
      g_autofree char *message = g_strdup_printf ("fail: accept %u: Too many open files", i);

      if (exo_log_limiter_check (limiter, "gio", G_LOG_LEVEL_WARNING, message, t + i,
                                 on_suppressed, &r))
        passed++;
    }
  g_assert_cmpuint (passed, ==, 10);
  g_assert_cmpuint (r.calls, ==, 0);

  /* another kind is not held back by the first */
  g_assert_true (exo_log_limiter_check (limiter, "gio", G_LOG_LEVEL_WARNING, "something else",
                                        t + 2000, on_suppressed, &r));

  /* the interval is over: the next message passes, after the report */
  g_assert_true (exo_log_limiter_check (limiter, "gio", G_LOG_LEVEL_WARNING,
                                        "fail: accept 5000: Too many open files", t + 10 * SEC,
                                        on_suppressed, &r));
  g_assert_cmpuint (r.calls, ==, 1);
  g_assert_cmpuint (r.total, ==, 990);
  g_assert_cmpstr (r.last_example, ==, "fail: accept 10: Too many open files");
  g_assert_cmpstr (r.last_domain, ==, "gio");

  exo_log_limiter_free (limiter);
  reports_clear (&r);
}

/* Without a next message, a flush reports what was held back. */
static void
test_flush (void)
{
  ExoLogLimiter *limiter = exo_log_limiter_new (10 * SEC, 2, 128);
  Reports r = { 0 };

  for (guint i = 0; i < 5; i++)
    exo_log_limiter_check (limiter, "x", G_LOG_LEVEL_WARNING, "flap", 0, on_suppressed, &r);
  exo_log_limiter_flush (limiter, 5 * SEC, on_suppressed, &r);
  g_assert_cmpuint (r.calls, ==, 0);            /* not over yet */
  exo_log_limiter_flush (limiter, 10 * SEC, on_suppressed, &r);
  g_assert_cmpuint (r.calls, ==, 1);
  g_assert_cmpuint (r.total, ==, 3);
  g_assert_cmpuint (exo_log_limiter_size (limiter), ==, 0);

  /* at exit: everything */
  for (guint i = 0; i < 4; i++)
    exo_log_limiter_check (limiter, "x", G_LOG_LEVEL_WARNING, "flap", 20 * SEC, on_suppressed, &r);
  exo_log_limiter_flush (limiter, G_MAXINT64, on_suppressed, &r);
  g_assert_cmpuint (r.calls, ==, 2);
  g_assert_cmpuint (r.total, ==, 5);

  exo_log_limiter_free (limiter);
  reports_clear (&r);
}

/* Many kinds at once: the table stays bounded, and what an evicted kind
 * held back is still reported. */
static void
test_bounded (void)
{
  ExoLogLimiter *limiter = exo_log_limiter_new (10 * SEC, 1, 4);
  Reports r = { 0 };

  for (guint i = 0; i < 100; i++)
    {
      g_autofree char *message = g_strdup_printf ("kind %c%c", 'a' + i % 26, 'a' + i / 26);

      exo_log_limiter_check (limiter, "x", G_LOG_LEVEL_WARNING, message, i, on_suppressed, &r);
      exo_log_limiter_check (limiter, "x", G_LOG_LEVEL_WARNING, message, i, on_suppressed, &r);
      g_assert_cmpuint (exo_log_limiter_size (limiter), <=, 4);
    }
  /* 100 kinds, each suppressed once; 96 evicted and reported */
  g_assert_cmpuint (r.total, ==, 96);
  exo_log_limiter_flush (limiter, G_MAXINT64, on_suppressed, &r);
  g_assert_cmpuint (r.total, ==, 100);

  exo_log_limiter_free (limiter);
  reports_clear (&r);
}

/* The report callback may log again (the daemon writes its line through
 * the same writer): no lock is held while it runs. */
static ExoLogLimiter *reentrant_limiter;

static void
reentrant_report (const char     *domain,
                  GLogLevelFlags  level,
                  const char     *example,
                  guint           count,
                  gpointer        user_data)
{
  *(guint *) user_data += count;
  exo_log_limiter_check (reentrant_limiter, "report", G_LOG_LEVEL_WARNING, "suppressed",
                         100 * SEC, NULL, NULL);
}

static void
test_reentrant (void)
{
  guint total = 0;

  reentrant_limiter = exo_log_limiter_new (1 * SEC, 1, 8);
  for (guint i = 0; i < 3; i++)
    exo_log_limiter_check (reentrant_limiter, "x", G_LOG_LEVEL_WARNING, "m", 0,
                           reentrant_report, &total);
  exo_log_limiter_check (reentrant_limiter, "x", G_LOG_LEVEL_WARNING, "m", 2 * SEC,
                         reentrant_report, &total);
  g_assert_cmpuint (total, ==, 2);
  exo_log_limiter_free (reentrant_limiter);
}

/* Access lines: every one passes up to a budget for all of them together,
 * whatever their paths (which would each make a kind of their own). */
static void
test_access (void)
{
  ExoLogLimiter *limiter = exo_log_limiter_new (10 * SEC, EXO_LOG_ACCESS_BURST, 1);
  Reports r = { 0 };
  const GLogField access[] = {
    { "MESSAGE", "server: 127.0.0.1 \"GET /\" 200 3 B 0.1 ms", -1 },
    { "HTTP_METHOD", "GET", -1 },
  };
  const GLogField other[] = { { "MESSAGE", "server: ready", -1 } };
  guint passed = 0;

  g_assert_true (exo_log_is_access (G_LOG_LEVEL_INFO, access, G_N_ELEMENTS (access)));
  g_assert_true (exo_log_is_access (G_LOG_LEVEL_DEBUG, access, G_N_ELEMENTS (access)));
  g_assert_false (exo_log_is_access (G_LOG_LEVEL_WARNING, access, G_N_ELEMENTS (access)));
  g_assert_false (exo_log_is_access (G_LOG_LEVEL_INFO, other, G_N_ELEMENTS (other)));

  for (guint i = 0; i < EXO_LOG_ACCESS_BURST + 500; i++)
    {
      g_autofree char *message = g_strdup_printf ("server: 127.0.0.1 \"GET /%c%c%c\" 404 9 B 0.1 ms",
                                                  'a' + i % 26, 'a' + i / 26 % 26, 'a' + i / 676 % 26);

      if (exo_log_limiter_check_key (limiter, EXO_LOG_ACCESS_KEY, "exo-http-server",
                                     G_LOG_LEVEL_INFO, message, i, on_suppressed, &r))
        passed++;
    }
  g_assert_cmpuint (passed, ==, EXO_LOG_ACCESS_BURST);
  g_assert_cmpuint (exo_log_limiter_size (limiter), ==, 1);
  exo_log_limiter_flush (limiter, 10 * SEC, on_suppressed, &r);
  g_assert_cmpuint (r.calls, ==, 1);
  g_assert_cmpuint (r.total, ==, 500);
  g_assert_cmpstr (r.last_domain, ==, "exo-http-server");
  g_assert_nonnull (strstr (r.last_example, "\"GET /"));

  exo_log_limiter_free (limiter);
  reports_clear (&r);
}

/* What the journal gets: SYSLOG_IDENTIFIER once. */
static void
test_identifier (void)
{
  const GLogField plain[] = {
    { "MESSAGE", "hello", -1 },
    { "PRIORITY", "5", -1 },
  };
  const GLogField named[] = {
    { "MESSAGE", "hello", -1 },
    { "SYSLOG_IDENTIFIER", "someone", -1 },
  };
  const GLogField *out;
  gsize n = 0;

  out = exo_log_fields_with_identifier (plain, G_N_ELEMENTS (plain), EXO_LOG_SYSLOG_IDENTIFIER, &n);
  g_assert_true (out != plain);
  g_assert_cmpuint (n, ==, 3);
  g_assert_cmpstr (out[0].key, ==, "MESSAGE");
  g_assert_cmpstr (out[1].key, ==, "PRIORITY");
  g_assert_cmpstr (out[2].key, ==, "SYSLOG_IDENTIFIER");
  g_assert_cmpstr (out[2].value, ==, "exo-node");
  g_assert_cmpint (out[2].length, ==, -1);
  g_free ((gpointer) out);

  out = exo_log_fields_with_identifier (named, G_N_ELEMENTS (named), EXO_LOG_SYSLOG_IDENTIFIER, &n);
  g_assert_true (out == named);
  g_assert_cmpuint (n, ==, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/daemon-log/pattern", test_pattern);
  g_test_add_func ("/daemon-log/burst", test_burst);
  g_test_add_func ("/daemon-log/flush", test_flush);
  g_test_add_func ("/daemon-log/bounded", test_bounded);
  g_test_add_func ("/daemon-log/reentrant", test_reentrant);
  g_test_add_func ("/daemon-log/access", test_access);
  g_test_add_func ("/daemon-log/identifier", test_identifier);
  return g_test_run ();
}
