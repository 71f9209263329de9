/* fuzz-common.h: what the libFuzzer harnesses of tests/fuzz/ share.
 *
 * Each harness is one file with LLVMFuzzerTestOneInput (), the entry point
 * both libFuzzer (-Dfuzzing=true, clang) and regress.c (the normal build,
 * which replays tests/fuzz/regressions/<harness>/ and the seed corpus)
 * call.  An input is refused or accepted; a crash, a sanitizer report, a
 * GLib critical or warning, or an assertion below is a bug.
 * Single-threaded, like libFuzzer's runs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* GLib criticals and warnings are bugs here: they abort (once per process). */
static inline void
exo_fuzz_init (void)
{
  static gboolean done;

  if (done)
    return;
  done = TRUE;
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_FATAL_MASK);
}

/* What exo-node writes must be JSON, strictly: aborts otherwise. */
static inline void
exo_fuzz_assert_json (const char *text,
                      gsize       length,
                      const char *what)
{
  g_autoptr(GError) error = NULL;
  guint line = 0, column = 0;

  if (!exo_json_validate (text, length, EXO_JSON_MAX_DEPTH_LIMIT, &line, &column, &error))
    {
      fprintf (stderr, "%s is not JSON at %u:%u (%s): %.*s\n", what, line, column,
               error->message, (int) MIN (length, (gsize) 2000), text);
      abort ();
    }
}

#define EXO_FUZZ_CHECK(cond, ...)                                         \
  G_STMT_START {                                                          \
    if (!(cond))                                                          \
      {                                                                   \
        fprintf (stderr, "check failed: %s: ", #cond);                    \
        fprintf (stderr, __VA_ARGS__);                                    \
        fputc ('\n', stderr);                                             \
        abort ();                                                         \
      }                                                                   \
  } G_STMT_END
