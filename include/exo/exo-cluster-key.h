/* exo-cluster-key.h: the cluster key, and what is signed with it.
 *
 * Nodes of one cluster share a secret key (like Erlang's cookie or Serf's
 * gossip key).  Discovery datagrams and peer RPC requests carry an
 * HMAC-SHA256 made with it, a timestamp and a nonce; answers to peer
 * requests carry a MAC bound to the request's nonce.  The formats are in
 * docs/cluster-protocol.md, the threat model in docs/security.md.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-types.h>

G_BEGIN_DECLS

/**
 * EXO_CLUSTER_KEY_SIZE:
 *
 * The size of a cluster key in bytes (a key file holds it as 64 hexadecimal
 * digits).
 */
#define EXO_CLUSTER_KEY_SIZE 32

/**
 * EXO_CLUSTER_KEY_MAX_KEYS:
 *
 * The most keys one key file may hold: the first signs, all are accepted
 * (for key rotation).
 */
#define EXO_CLUSTER_KEY_MAX_KEYS 4

/**
 * EXO_CLUSTER_AUTH_MAX_SKEW_US:
 *
 * How far (µs) the timestamp of a signed message may be from this host's
 * clock, either way.
 */
#define EXO_CLUSTER_AUTH_MAX_SKEW_US (30 * G_USEC_PER_SEC)

/**
 * EXO_CLUSTER_AUTH_HEADER:
 *
 * The HTTP header that carries the signature of a peer request or answer.
 */
#define EXO_CLUSTER_AUTH_HEADER "X-Exo-Auth"

/**
 * EXO_CLUSTER_AUTH_NODE_HEADER:
 *
 * The HTTP header with the sender's node id (signed with the request): the
 * server keeps the nonces it has seen per sender.
 */
#define EXO_CLUSTER_AUTH_NODE_HEADER "X-Exo-Node-Id"

/**
 * ExoClusterAuthError:
 * @EXO_CLUSTER_AUTH_ERROR_KEY: the key file is missing, unreadable, badly
 *   formed or readable by others
 * @EXO_CLUSTER_AUTH_ERROR_MISSING: the message carries no signature
 * @EXO_CLUSTER_AUTH_ERROR_MALFORMED: the signature is not in the expected form
 * @EXO_CLUSTER_AUTH_ERROR_BAD_MAC: the MAC does not match (another key, or
 *   the message was altered)
 * @EXO_CLUSTER_AUTH_ERROR_STALE: the timestamp is further from our clock than
 *   %EXO_CLUSTER_AUTH_MAX_SKEW_US
 * @EXO_CLUSTER_AUTH_ERROR_REPLAY: the nonce was seen before (or is too old to
 *   tell)
 *
 * Error codes in the %EXO_CLUSTER_AUTH_ERROR domain.  Their strings
 * (exo_cluster_auth_error_to_string()) name the counters in metrics.
 */
typedef enum {
  EXO_CLUSTER_AUTH_ERROR_KEY,
  EXO_CLUSTER_AUTH_ERROR_MISSING,
  EXO_CLUSTER_AUTH_ERROR_MALFORMED,
  EXO_CLUSTER_AUTH_ERROR_BAD_MAC,
  EXO_CLUSTER_AUTH_ERROR_STALE,
  EXO_CLUSTER_AUTH_ERROR_REPLAY,
} ExoClusterAuthError;

/**
 * EXO_CLUSTER_AUTH_ERROR:
 *
 * The error domain of cluster authentication; the codes are
 * #ExoClusterAuthError.
 */
#define EXO_CLUSTER_AUTH_ERROR (exo_cluster_auth_error_quark ())
#define EXO_TYPE_CLUSTER_AUTH_ERROR (exo_cluster_auth_error_get_type ())

EXO_AVAILABLE_IN_ALL
GQuark      exo_cluster_auth_error_quark     (void);
EXO_AVAILABLE_IN_ALL
GType       exo_cluster_auth_error_get_type  (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
const char *exo_cluster_auth_error_to_string (ExoClusterAuthError code);

/**
 * ExoClusterKey:
 *
 * One or more 32-byte keys, immutable and reference counted: the first key
 * signs, every key is accepted.  Safe to use from any thread.
 */
typedef struct _ExoClusterKey ExoClusterKey;

#define EXO_TYPE_CLUSTER_KEY (exo_cluster_key_get_type ())

EXO_AVAILABLE_IN_ALL
GType          exo_cluster_key_get_type          (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
ExoClusterKey *exo_cluster_key_new_random        (void);
EXO_AVAILABLE_IN_ALL
ExoClusterKey *exo_cluster_key_new_from_string   (const char     *text,
                                                  GError        **error);
EXO_AVAILABLE_IN_ALL
ExoClusterKey *exo_cluster_key_load              (const char     *path,
                                                  GError        **error);
EXO_AVAILABLE_IN_ALL
ExoClusterKey *exo_cluster_key_load_or_generate  (const char     *path,
                                                  gboolean       *generated,
                                                  GError        **error);
EXO_AVAILABLE_IN_ALL
gboolean       exo_cluster_key_save              (ExoClusterKey  *key,
                                                  const char     *path,
                                                  GError        **error);
EXO_AVAILABLE_IN_ALL
char          *exo_cluster_key_to_string         (ExoClusterKey  *key);
EXO_AVAILABLE_IN_ALL
ExoClusterKey *exo_cluster_key_ref               (ExoClusterKey  *key);
EXO_AVAILABLE_IN_ALL
void           exo_cluster_key_unref             (ExoClusterKey  *key);
EXO_AVAILABLE_IN_ALL
const char    *exo_cluster_key_get_fingerprint   (ExoClusterKey  *key);
EXO_AVAILABLE_IN_ALL
guint          exo_cluster_key_get_n_keys        (ExoClusterKey  *key);

EXO_AVAILABLE_IN_ALL
char          *exo_cluster_key_sign              (ExoClusterKey  *key,
                                                  const guint8   *data,
                                                  gsize           length);
EXO_AVAILABLE_IN_ALL
gboolean       exo_cluster_key_verify            (ExoClusterKey  *key,
                                                  const guint8   *data,
                                                  gsize           length,
                                                  const char     *mac);

EXO_AVAILABLE_IN_ALL
char          *exo_cluster_key_sign_request      (ExoClusterKey      *key,
                                                  const char         *method,
                                                  const char         *path,
                                                  const char * const *headers,
                                                  const guint8       *body,
                                                  gsize               body_length,
                                                  gint64              now_us,
                                                  char              **out_nonce);
EXO_AVAILABLE_IN_ALL
gboolean       exo_cluster_key_verify_request    (ExoClusterKey      *key,
                                                  const char         *auth,
                                                  const char         *method,
                                                  const char         *path,
                                                  const char * const *headers,
                                                  const guint8       *body,
                                                  gsize               body_length,
                                                  gint64             *out_timestamp_us,
                                                  char              **out_nonce,
                                                  GError            **error);
EXO_AVAILABLE_IN_ALL
char          *exo_cluster_key_sign_response     (ExoClusterKey      *key,
                                                  const char         *request_nonce,
                                                  guint               status,
                                                  const guint8       *body,
                                                  gsize               body_length);
EXO_AVAILABLE_IN_ALL
gboolean       exo_cluster_key_verify_response   (ExoClusterKey      *key,
                                                  const char         *auth,
                                                  const char         *request_nonce,
                                                  guint               status,
                                                  const guint8       *body,
                                                  gsize               body_length,
                                                  GError            **error);

EXO_AVAILABLE_IN_ALL
char          *exo_cluster_auth_new_nonce        (void);

EXO_AVAILABLE_IN_ALL
char          *exo_state_directory_default       (void);
EXO_AVAILABLE_IN_ALL
char          *exo_cluster_key_default_path      (void);
EXO_AVAILABLE_IN_ALL
void           exo_cluster_key_set_default       (ExoClusterKey  *key);
EXO_AVAILABLE_IN_ALL
ExoClusterKey *exo_cluster_key_get_default       (GError        **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoClusterKey, exo_cluster_key_unref)

/* --- ExoReplayGuard -------------------------------------------------------- */

/**
 * ExoReplayGuard:
 *
 * Remembers the nonces of authenticated messages within the allowed clock
 * skew, per sender, to refuse replays.  Bounded: at most `max_entries`
 * nonces and `max_senders` senders.  Not thread-safe: use it from one thread.
 */
typedef struct _ExoReplayGuard ExoReplayGuard;

#define EXO_TYPE_REPLAY_GUARD (exo_replay_guard_get_type ())

EXO_AVAILABLE_IN_ALL
GType           exo_replay_guard_get_type   (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
ExoReplayGuard *exo_replay_guard_new        (gint64          window_us,
                                             guint           max_entries,
                                             guint           max_senders);
EXO_AVAILABLE_IN_ALL
ExoReplayGuard *exo_replay_guard_ref        (ExoReplayGuard *guard);
EXO_AVAILABLE_IN_ALL
void            exo_replay_guard_unref      (ExoReplayGuard *guard);
EXO_AVAILABLE_IN_ALL
gboolean        exo_replay_guard_check      (ExoReplayGuard *guard,
                                             const char     *sender_name,
                                             gint64          timestamp_us,
                                             const char     *nonce,
                                             gint64          now_us,
                                             GError        **error);
EXO_AVAILABLE_IN_ALL
guint           exo_replay_guard_get_size   (ExoReplayGuard *guard);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoReplayGuard, exo_replay_guard_unref)

G_END_DECLS
