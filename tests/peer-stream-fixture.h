/* peer-stream-fixture.h: what the two peer stream programs share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The programs are test-peer-stream.c (calls over the stream, the upgrade,
 * the limit, cut and slow calls) and test-peer-stream-hostile.c (hostile
 * frames, a hung peer).  Both run on http-server-fixture.c's Fixture (a
 * fake node and an ExoHttpServer on 127.0.0.1, ExoHttpPeer clients) and
 * start with peer_stream_test_init().  peer-stream-fixture.c holds the
 * waits, the metric predicates, the raw authenticated stream (Raw: a
 * SoupSession upgrade signed with the cluster key, frames sent as they
 * are) and the frame builder of its cases, and the capture of the
 * server's "no answer to pings" lines.
 *
 * One thread: everything runs in the main context of the test's thread,
 * except a Raw opened with a client context of its own
 * (raw_try_open_with()), whose context is pushed as thread-default only
 * while wait_for_two() iterates it.
 */
#pragma once

#include "http-server-fixture.h"
#include "http-stream-frame.h"

G_BEGIN_DECLS

/* --- the programs' start ----------------------------------------------------- */

/* g_test_init(), the plugin, the cluster key, the log capture (refusals,
 * stream_timeouts) and, unless G_MESSAGES_DEBUG is set, GIO's and
 * libsoup's debug messages discarded. */
void peer_stream_test_init (int    *argc,
                            char ***argv);

/* The server's lines about streams closed for no answer to pings
 * (char *), in the order logged; the rest of the log goes on to
 * capture_writer(). */
extern GPtrArray *stream_timeouts;

/* --- waiting ------------------------------------------------------------------ */

typedef gboolean (*Predicate) (gpointer data);

/* Spins the test's context until @predicate holds; FALSE after WAIT_MS. */
gboolean wait_for (Predicate predicate,
                   gpointer  data);
/* Likewise, iterating in turn @client (pushed as thread-default while it
 * runs, so that what libsoup makes there stays there) and the test's. */
gboolean wait_for_two (GMainContext *client,
                       Predicate     predicate,
                       gpointer      data);

/* Predicates on metrics: of an ExoHttpPeer (@data), its stream is open;
 * of the Fixture's server (@data: the Fixture), fewer than 64 streams,
 * exactly one stream open. */
gboolean stream_is_open (gpointer data);
gboolean fewer_than_64_streams (gpointer data);
gboolean one_stream_open (gpointer data);

/* --- a raw authenticated stream --------------------------------------------------- */

typedef struct
{
  SoupWebsocketConnection *ws;
  char                    *nonce;     /* the upgrade's, which the frames' MACs bind */
  GPtrArray               *answers;   /* GBytes, every message received */
  gboolean                 closed;
} Raw;

void raw_free (Raw *raw);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Raw, raw_free)

/* An upgrade signed with the cluster key, its 101 checked; NULL with the
 * status in @status when the server refuses it.  @session runs in @client
 * (NULL: the test's context). */
Raw *raw_try_open_with (Fixture      *fx,
                        SoupSession  *session,
                        GMainContext *client,
                        guint        *status);
/* With the fixture's session. */
Raw *raw_try_open (Fixture *fx,
                   guint   *status);
/* Likewise, and the upgrade must succeed. */
Raw *raw_open (Fixture *fx);
void raw_send (Raw    *raw,
               GBytes *frame);
/* Predicates: @data (a Raw) was closed; got a message or was closed. */
gboolean raw_closed (gpointer data);
gboolean raw_answered (gpointer data);

/* A result frame of call "call-1" from the client, sequence number @seq,
 * its MAC made with @key over @raw's nonce. */
GBytes *result_frame (ExoClusterKey *key,
                      Raw           *raw,
                      guint64        seq);

G_END_DECLS
