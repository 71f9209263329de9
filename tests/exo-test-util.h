/* exo-test-util.h: a configurable resource and synchronous wrappers for tests.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>
#include <string.h>

G_BEGIN_DECLS

#define EXO_TYPE_TEST_RESOURCE (exo_test_resource_get_type ())
G_DECLARE_FINAL_TYPE (ExoTestResource, exo_test_resource, EXO, TEST_RESOURCE, ExoManagedResource)

/* A managed resource whose behaviour a test sets through public fields.
 * All counters are only touched in the resource's main context. */
struct _ExoTestResource
{
  ExoManagedResource parent_instance;

  /* behaviour */
  guint     init_delay_ms;      /* 0: do_initialize completes synchronously */
  guint     cleanup_delay_ms;   /* 0: do_cleanup completes synchronously */
  guint     fail_inits;         /* the next N do_initialize calls fail (retryable) */
  gboolean  fail_fatal;         /* failures use EXO_RESOURCE_ERROR_FATAL */
  gboolean  fail_cleanup;       /* do_cleanup reports an error */
  gboolean  healthy;            /* result of do_check_health (default TRUE) */
  gboolean  ignore_cancel;      /* do_initialize ignores its cancellable */

  /* what happened */
  guint     n_init_calls;
  guint     n_init_ok;
  guint     n_cleanup_calls;
  guint     n_health_calls;
  gint      live;               /* +1 per successful init, -1 per cleanup of it */
};

ExoTestResource *exo_test_resource_new   (const char *id);

/* A process-wide log of "init:ID" / "cleanup:ID" lines, comma separated,
 * written by ExoTestResource in the order the calls happen. */
void         exo_test_log_reset          (void);
void         exo_test_log_append         (const char *what,
                                          const char *id);
const char  *exo_test_log_get            (void);

/* Spin the thread-default main context until *result is set (the callback
 * passed to an _async function stores it) or timeout_ms pass. */
gboolean     exo_test_wait_result        (GAsyncResult **result,
                                          guint          timeout_ms);
/* A GAsyncReadyCallback that stores a ref of the result in *(GAsyncResult **) user_data. */
void         exo_test_store_result       (GObject       *source,
                                          GAsyncResult  *result,
                                          gpointer       user_data);

/* Synchronous wrappers that spin the thread-default main context. */
gboolean     exo_test_initialize         (ExoResource   *resource,
                                          GError       **error);
gboolean     exo_test_cleanup            (ExoResource   *resource,
                                          GError       **error);
gboolean     exo_test_check_health       (ExoResource   *resource,
                                          GError       **error);
gboolean     exo_test_wait_for_state     (ExoResource     *resource,
                                          ExoResourceState state,
                                          guint            timeout_ms);
/* Spin the thread-default context for about ms milliseconds. */
void         exo_test_spin               (guint          ms);
/* Spin until cond(data) is TRUE or timeout_ms pass. */
gboolean     exo_test_spin_until         (gboolean     (*cond) (gpointer data),
                                          gpointer       data,
                                          guint          timeout_ms);

G_END_DECLS

G_BEGIN_DECLS
/* 1 normally; larger under valgrind (EXO_TEST_UNDER_VALGRIND=1) or sanitizers
 * (EXO_TEST_SLOW=N).  Multiply upper time bounds and spin durations by it. */
guint        exo_test_slow_factor        (void);
/* $VARIABLE, else RELATIVE to the test program's folder when it exists (a
 * build tree run by hand or by gtester), else NULL.  The string lives as
 * long as the program. */
const char  *exo_test_build_path         (const char    *variable,
                                          const char    *relative);
G_END_DECLS
