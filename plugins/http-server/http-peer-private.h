/* http-peer-private.h: what the files of ExoHttpPeer share: the object's
 * structure, the labels its messages use, and the calls between the files.
 * Not installed.  The type itself (G_DECLARE_FINAL_TYPE) is in
 * http-common.h, next to ExoHttpServer's, for the plugin entry.
 *
 * The peer handle's files:
 *
 *   http-peer.c           ExoHttpPeer as an object: properties, connect
 *                         (the health probe), disconnect, health checks,
 *                         the round-trip window and the metrics
 *   http-peer-exchange.c  one signed HTTP exchange with the peer: send,
 *                         read the answer within the size limit, verify its
 *                         signature, map transport errors; the time limit
 *   http-peer-calls.c     the ExoPeerHandle calls (prompt, tensor, result,
 *                         topology, cancel): each a POST run through
 *                         exo_network_resource_run_async() with retries
 *
 * Rules: the same in every file: everything runs in the GMainContext the
 * peer belongs to (exo_resource_get_context(), the node's): libsoup's
 * callbacks, the timers, the GTasks' callbacks.  No threads, no locks.  An
 * exchange holds its own references to the session, the message and the
 * cluster key, so a disconnect (which drops the session) during an
 * exchange is safe; every exchange's and call's GTask holds the peer.
 * Whatever completes a GTask may run the caller's callback, which may
 * re-enter the peer (a new call, a disconnect).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "http-common.h"
#include "http-auth.h"

G_BEGIN_DECLS

#define RTT_WINDOW                 256

struct _ExoHttpPeer
{
  ExoNetworkResource parent_instance;

  /* settings */
  char        *peer_id;
  GVariant    *capabilities;      /* a{sv}, nullable */
  guint        call_timeout_ms;
  guint        health_timeout_ms;

  /* while connected */
  ExoClusterKey *key;
  SoupSession *session;
  char        *base_uri;          /* "http://host:port" */

  /* statistics */
  guint64      rtt[RTT_WINDOW];
  guint        rtt_count;
  guint        rtt_next;
  guint64      rtt_last;
  guint64      calls;
  guint64      call_failures;
  guint64      probes;
  guint64      probe_failures;
};

static inline const char *
peer_address (ExoHttpPeer *self)
{
  const char *address = exo_network_resource_get_address (EXO_NETWORK_RESOURCE (self));

  return address != NULL ? address : "";
}

static inline const char *
peer_label_id (ExoHttpPeer *self)
{
  return self->peer_id != NULL && self->peer_id[0] != '\0' ? self->peer_id : "(unknown)";
}

/* http-peer.c: the round trip of an exchange that got an answer, in µs */
void         http_peer_record_rtt       (ExoHttpPeer          *self,
                                         guint64               us);

/* http-peer-exchange.c */
/* Sends @msg (taken), signed, and reads the answer, at most
 * EXO_HTTP_MAX_RESPONSE_BYTES: a GBytes on 2xx with a valid signature,
 * else the error for the status or the transport. */
void         http_peer_exchange_async   (ExoHttpPeer          *self,
                                         SoupMessage          *msg,
                                         GBytes               *request_body,
                                         const char           *path,
                                         guint                 timeout_ms,
                                         GCancellable         *cancellable,
                                         GAsyncReadyCallback   callback,
                                         gpointer              user_data);
GBytes      *http_peer_exchange_finish  (ExoHttpPeer          *self,
                                         GAsyncResult         *result,
                                         GError              **error);
/* A request to the connected peer's @path, marked as a peer call. */
SoupMessage *http_peer_new_message      (ExoHttpPeer          *self,
                                         const char           *method,
                                         const char           *path,
                                         GError              **error);

/* http-peer-calls.c: fills ExoPeerHandle's vtable */
void         exo_http_peer_peer_handle_init (ExoPeerHandleInterface *iface);

G_END_DECLS
