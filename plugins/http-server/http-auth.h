/* http-auth.h: authentication in the `http-server` plugin — signed peer
 * RPC (both ways) and API keys of the user API (docs/security.md).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* The most API keys, and the longest one, accepted. */
#define EXO_HTTP_MAX_API_KEYS    1024
#define EXO_HTTP_MAX_API_KEY_LEN 1024

/* What a server checks: one per server, for its life (the counters and the
 * nonces seen outlive a restart); used on the server's thread only. */
typedef struct _ExoHttpAuth ExoHttpAuth;

ExoHttpAuth *exo_http_auth_new             (void);
void         exo_http_auth_free            (ExoHttpAuth         *auth);
/* At each initialize: the key, and @api_keys and the lines of @api_key_file
 * (nullable both; when neither holds a key, the user API is open).  FALSE
 * with an error naming the file or the key when one is unusable; then, as
 * after exo_http_auth_unconfigure(), every request is refused. */
gboolean     exo_http_auth_configure       (ExoHttpAuth         *auth,
                                            const char          *resource_id,
                                            ExoClusterKey       *key,
                                            const char * const  *api_keys,
                                            const char          *api_key_file,
                                            GError             **error);
void         exo_http_auth_unconfigure     (ExoHttpAuth         *auth);
/* The checks of exo_http_auth_configure() on @api_keys and @api_key_file
 * (the file is read, nothing is kept): FALSE with the same error, and in
 * @setting the property at fault, for what configure would refuse. */
gboolean     exo_http_auth_check_settings  (const char * const  *api_keys,
                                            const char          *api_key_file,
                                            const char         **setting,
                                            GError             **error);

/* Whether @path is peer RPC (every /peer/ path). */
gboolean     exo_http_auth_is_peer_path    (const char          *path);

/* In the early handler (headers read, body not yet): answers 401 at once,
 * and returns FALSE, for a peer request without a signature and a user
 * request without a valid API key (when keys are configured). */
gboolean     exo_http_auth_check_early     (ExoHttpAuth         *auth,
                                            SoupServerMessage   *msg,
                                            const char          *path);
/* Before a peer route runs (body read): the signature, its time and nonce.
 * On success the answer will be signed (exo_http_auth_sign_response). */
gboolean     exo_http_auth_check_peer      (ExoHttpAuth         *auth,
                                            SoupServerMessage   *msg,
                                            const guint8        *body,
                                            gsize                body_length);
/* Adds the signature to the answer of a verified peer request; does
 * nothing for other messages.  Call it with the final status and body. */
void         exo_http_auth_sign_response   (SoupServerMessage   *msg,
                                            guint                status,
                                            const char          *body,
                                            gsize                body_length);
/* The key and the nonce of a peer request verified by
 * exo_http_auth_check_peer() (both owned by @msg); FALSE for any other. */
gboolean     exo_http_auth_get_verified    (SoupServerMessage   *msg,
                                            ExoClusterKey      **key,
                                            const char         **nonce);
void         exo_http_auth_collect_metrics (ExoHttpAuth         *auth,
                                            GVariantDict        *metrics);
/* Declares what the keys of exo_http_auth_collect_metrics() are (the
 * server's class_init, through http-metrics.c). */
void         exo_http_auth_add_metric_entries (ExoResourceClass *klass);

/* The client side (ExoHttpPeer, the static probes of udp-discovery do the
 * same with libexo's functions).  Signs @msg with @body (nullable) and
 * returns the nonce the answer must be bound to. */
char        *exo_http_auth_sign_request    (ExoClusterKey       *key,
                                            SoupMessage         *msg,
                                            GBytes              *body);
/* A 2xx answer must carry a valid signature for our request. */
gboolean     exo_http_auth_verify_answer   (ExoClusterKey       *key,
                                            SoupMessage         *msg,
                                            const char          *nonce,
                                            GBytes              *body,
                                            GError             **error);

G_END_DECLS
