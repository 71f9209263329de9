/* exo-sd-notify.h: the service manager's notification protocol (see
 * exo-sd-notify.c).
 *
 * Thread rules: main thread only; exo_sd_notify_new_from_environment()
 * before any other thread exists (it changes the environment).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The longest STATUS= text sent; a longer one is cut at a character
 * boundary and ends in "...". */
#define EXO_SD_NOTIFY_MAX_STATUS 512
/* The shortest watchdog ping interval: a smaller $WATCHDOG_USEC is pinged
 * at this rate (and a warning says so). */
#define EXO_SD_NOTIFY_MIN_PING_MS 10

typedef struct _ExoSdNotify ExoSdNotify;

ExoSdNotify *exo_sd_notify_new_from_environment (void);
void         exo_sd_notify_free                 (ExoSdNotify *self);

gboolean     exo_sd_notify_send                 (ExoSdNotify *self,
                                                 const char  *fields,
                                                 const char  *status);
char        *exo_sd_notify_status_text          (const char  *text);

guint64      exo_sd_notify_get_watchdog_usec    (ExoSdNotify *self);
gboolean     exo_sd_notify_start_watchdog       (ExoSdNotify *self);
void         exo_sd_notify_stop_watchdog        (ExoSdNotify *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoSdNotify, exo_sd_notify_free)

G_END_DECLS
