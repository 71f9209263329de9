/* exo-node-log.h: exo-node's log writer (exo-node-log.c).
 *
 * Thread rules: install once in main() before any thread exists; the
 * writer then runs on any thread; start_flush and finish on the main
 * thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Rate-limited writer to journald or stderr, installed as GLib's. */
void exo_node_log_install     (void);
/* What the limit held back is written once its interval is over. */
void exo_node_log_start_flush (void);
/* The timer gone; what the limit still holds written now. */
void exo_node_log_finish      (void);

G_END_DECLS
