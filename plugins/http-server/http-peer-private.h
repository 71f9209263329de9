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
 *                         exo_network_resource_run_async() with retries,
 *                         tensor, result and cancel over the peer stream
 *                         while it is open
 *   http-peer-stream.c    the peer stream: the signed WebSocket upgrade,
 *                         its reopening with backoff, a call's frame sent
 *                         and its answer frame read
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
#include "http-stream-frame.h"

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

  /* the peer stream (http-peer-stream.c), while connected */
  SoupWebsocketConnection *stream;      /* open and verified, else NULL */
  char        *stream_nonce;            /* of its upgrade */
  guint64      stream_in_seq;
  guint64      stream_out_seq;
  GHashTable  *stream_calls;            /* call id -> StreamPending: answers awaited */
  GCancellable *stream_opening;         /* while an upgrade runs */
  GSource     *stream_retry;            /* the next upgrade, after a backoff */
  guint        stream_backoff_ms;

  /* statistics */
  guint64      stream_opens;
  guint64      stream_call_count;
  guint64      stream_fallbacks;
  guint64      stream_direct_calls;   /* sent at once, without the runner */
  guint64      stream_handshake_failures;
  guint64      stream_refused[EXO_STREAM_N_REFUSED];
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

/* http-peer-stream.c */
/* Opens the stream unless it is open or opening, or this process's server
 * says peer-stream: false (the peer is connected). */
void         http_peer_stream_start     (ExoHttpPeer          *self);
/* Closes it (disconnect, dispose): awaited answers end as dropped. */
void         http_peer_stream_stop      (ExoHttpPeer          *self);
/* Whether a call may go over the stream now (open, room for one more). */
gboolean     http_peer_stream_can_call  (ExoHttpPeer          *self);
/* Makes a call's frame with the stream's key, nonce and next number. */
typedef GBytes *(*HttpPeerFrameFunc)    (ExoClusterKey        *key,
                                         const char           *nonce,
                                         guint64               seq,
                                         const char           *call_id,
                                         gpointer              data);
/* Sends a call's frame and waits for its answer: a GBytes (a JSON object)
 * for 2xx, the error of the HTTP path for the status otherwise; the
 * stream closed before the answer: G_IO_ERROR_CONNECTION_CLOSED (the
 * caller re-sends over HTTP).  @path names the call in errors. */
void         http_peer_stream_call_async (ExoHttpPeer         *self,
                                          HttpPeerFrameFunc    build,
                                          gpointer             build_data,
                                          const char          *call_id,
                                          const char          *path,
                                          guint                timeout_ms,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data);
GBytes      *http_peer_stream_call_finish (ExoHttpPeer         *self,
                                           GAsyncResult        *result,
                                           GError             **error);
void         http_peer_stream_collect_metrics (ExoHttpPeer     *self,
                                               GVariantDict    *metrics);
void         http_peer_stream_add_metric_entries (ExoResourceClass *klass);

/* http-peer-calls.c: fills ExoPeerHandle's vtable */
void         exo_http_peer_peer_handle_init (ExoPeerHandleInterface *iface);

G_END_DECLS
