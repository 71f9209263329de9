/* clients.h: the two clients of the line service, written twice.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * client-before.c is written by hand with GIO's blocking calls;
 * client-after.c is an ExoNetworkResource.  A call sends `REQUEST\n` and
 * returns the line the service answers.  Both belong to the thread that made
 * them (the after client to the main context that was thread-default then).
 */
#pragma once

#include <exo/exo.h>

/* Each attempt of a call may take this long; both clients use it. */
#define CLIENT_TIMEOUT_MS 1000

/* --- before: hand-written ------------------------------------------------ */

typedef struct _BeforeClient BeforeClient;

BeforeClient *before_client_new              (const char    *address);
char         *before_client_call             (BeforeClient  *self,
                                              const char    *request,
                                              GError       **error);
guint64       before_client_get_connect_attempts (BeforeClient *self);
void          before_client_free             (BeforeClient  *self);

/* --- after: an ExoNetworkResource --------------------------------------- */

#define AFTER_TYPE_CLIENT (after_client_get_type ())
G_DECLARE_FINAL_TYPE (AfterClient, after_client, AFTER, CLIENT, ExoNetworkResource)

AfterClient  *after_client_new               (const char          *address,
                                              guint32              seed);
void          after_client_call_async        (AfterClient         *self,
                                              const char          *request,
                                              GCancellable        *cancellable,
                                              GAsyncReadyCallback  callback,
                                              gpointer             user_data);
char         *after_client_call_finish       (AfterClient         *self,
                                              GAsyncResult        *result,
                                              GError             **error);
