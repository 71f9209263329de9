/* exo-cluster-auth.c: what is signed with the cluster key, and
 * ExoReplayGuard.
 *
 * Owns: the canonical forms of signed peer requests and answers and the
 * X-Exo-Auth header (docs/cluster-protocol.md); ExoReplayGuard, the
 * bounded memory of nonces that refuses stale and replayed messages.
 *
 * Threads: the signing functions only read their arguments (an
 * ExoClusterKey is immutable): any thread.  An ExoReplayGuard is not
 * thread-safe: one owner, one thread.  Nothing here logs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-private.h"

#include <string.h>

/* The longest X-Exo-Auth value parsed. */
#define MAX_AUTH_LEN 256
#define NONCE_BYTES 16
/* The longest nonce an ExoReplayGuard keeps (hex digits). */
#define MAX_NONCE_LEN 64

/* Exactly @length hexadecimal digits. */
static gboolean
is_hex (const char *s,
        gsize       length)
{
  if (strlen (s) != length)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isxdigit (s[i]))
      return FALSE;
  return TRUE;
}

/* --- peer requests and answers ------------------------------------------------ */

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* The canonical text of a request; NULL (MALFORMED) when a header value
 * could be confused with the separators. */
static GString *
canonical_request (const char          *method,
                   const char          *path,
                   const char * const  *headers,
                   const guint8        *body,
                   gsize                body_length,
                   gint64               timestamp_us,
                   const char          *nonce,
                   GError             **error)
{
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *body_hash = NULL;
  GString *text;

  for (guint i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2)
    {
      g_autofree char *name = g_ascii_strdown (headers[i], -1);

      if (!g_str_has_prefix (name, "x-exo-") || g_str_equal (name, "x-exo-auth"))
        continue;
      if (strpbrk (headers[i + 1], "\r\n") != NULL || strpbrk (name, "\r\n:") != NULL)
        {
          g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_MALFORMED,
                       "header %s cannot be signed (line break)", headers[i]);
          return NULL;
        }
      /* HTTP servers drop the white space around a value and may replace
       * invalid UTF-8 (libsoup does): so does the signature */
      {
        g_autofree char *value = g_strstrip (g_utf8_make_valid (headers[i + 1], -1));

        g_ptr_array_add (lines, g_strdup_printf ("%s:%s", name, value));
      }
    }
  g_ptr_array_sort (lines, compare_strings);

  body_hash = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                           body != NULL ? body : (const guint8 *) "",
                                           body != NULL ? body_length : 0);
  text = g_string_new ("exo-peer-request-v1\n");
  g_string_append_printf (text, "%s\n%s\n%u\n", method, path, lines->len);
  for (guint i = 0; i < lines->len; i++)
    g_string_append_printf (text, "%s\n", (const char *) g_ptr_array_index (lines, i));
  g_string_append_printf (text, "%s\n%" G_GINT64_FORMAT "\n%s", body_hash, timestamp_us, nonce);
  return text;
}

/**
 * exo_cluster_key_sign_request:
 * @key: a key
 * @method: the HTTP method
 * @path: the path (and `?query`) of the request
 * @headers: (array zero-terminated=1) (nullable): name, value, name, value,
 *   …, %NULL: the request's headers; those named `X-Exo-*` are signed
 * @body: (array length=body_length) (nullable): the body
 * @body_length: its size
 * @now_us: the time to sign (g_get_real_time())
 * @out_nonce: (out) (optional): the nonce used, for
 *   exo_cluster_key_verify_response()
 *
 * Signs a peer request: the value of an %EXO_CLUSTER_AUTH_HEADER header,
 * `v1 ts=<µs> nonce=<32 hex> mac=<64 hex>`.  The MAC covers the method,
 * the path, the `X-Exo-*` headers, a SHA-256 of the body, the time and
 * the nonce (docs/cluster-protocol.md).
 *
 * Returns: (transfer full): the header value
 */
char *
exo_cluster_key_sign_request (ExoClusterKey      *key,
                              const char         *method,
                              const char         *path,
                              const char * const *headers,
                              const guint8       *body,
                              gsize               body_length,
                              gint64              now_us,
                              char              **out_nonce)
{
  g_autofree char *nonce = exo_cluster_auth_new_nonce ();
  g_autofree char *mac = NULL;
  g_autoptr(GString) text = NULL;
  char *value;

  g_return_val_if_fail (key != NULL && method != NULL && path != NULL, NULL);

  text = canonical_request (method, path, headers, body, body_length, now_us, nonce, NULL);
  if (text == NULL)
    {
      /* Our own headers never hold line breaks; sign without them rather
       * than send nothing: the server refuses it and says why. */
      text = canonical_request (method, path, NULL, body, body_length, now_us, nonce, NULL);
    }
  mac = exo_cluster_key_sign (key, (const guint8 *) text->str, text->len);
  value = g_strdup_printf ("v1 ts=%" G_GINT64_FORMAT " nonce=%s mac=%s", now_us, nonce, mac);
  if (out_nonce != NULL)
    *out_nonce = g_steal_pointer (&nonce);
  return value;
}

static gboolean
set_malformed (GError     **error,
               const char  *what)
{
  g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_MALFORMED,
               "%s header is malformed: %s", EXO_CLUSTER_AUTH_HEADER, what);
  return FALSE;
}

/* Splits "v1 ts=… nonce=… mac=…" (or "v1 mac=…" when !with_ts). */
static gboolean
parse_auth (const char  *auth,
            gboolean     with_ts,
            gint64      *timestamp_us,
            char       **nonce,
            char       **mac,
            GError     **error)
{
  g_auto(GStrv) parts = NULL;
  guint n = with_ts ? 4 : 2;
  guint64 ts;

  if (auth == NULL || *auth == '\0')
    {
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_MISSING,
                   "no %s header (unsigned)", EXO_CLUSTER_AUTH_HEADER);
      return FALSE;
    }
  if (strlen (auth) > MAX_AUTH_LEN)
    return set_malformed (error, "too long");
  parts = g_strsplit (auth, " ", -1);
  if (g_strv_length (parts) != n || !g_str_equal (parts[0], "v1"))
    return set_malformed (error, with_ts ? "expected 'v1 ts=… nonce=… mac=…'"
                                         : "expected 'v1 mac=…'");
  if (with_ts)
    {
      if (!g_str_has_prefix (parts[1], "ts=") ||
          !g_ascii_string_to_unsigned (parts[1] + 3, 10, 0, G_MAXINT64, &ts, NULL))
        return set_malformed (error, "ts is not a time in microseconds");
      if (!g_str_has_prefix (parts[2], "nonce=") ||
          !is_hex (parts[2] + 6, 2 * NONCE_BYTES))
        return set_malformed (error, "nonce is not 32 hexadecimal digits");
      *timestamp_us = (gint64) ts;
      *nonce = g_ascii_strdown (parts[2] + 6, -1);
    }
  if (!g_str_has_prefix (parts[n - 1], "mac=") ||
      !is_hex (parts[n - 1] + 4, 64))
    {
      if (with_ts)
        g_clear_pointer (nonce, g_free);
      return set_malformed (error, "mac is not 64 hexadecimal digits");
    }
  *mac = g_strdup (parts[n - 1] + 4);
  return TRUE;
}

/**
 * exo_cluster_key_verify_request:
 * @key: a key
 * @auth: (nullable): the %EXO_CLUSTER_AUTH_HEADER header received
 * @method: the request's method
 * @path: its path (and `?query`)
 * @headers: (array zero-terminated=1) (nullable): its headers, name, value,
 *   …, %NULL
 * @body: (array length=body_length) (nullable): its body
 * @body_length: the body's size
 * @out_timestamp_us: (out) (optional): the signed time
 * @out_nonce: (out) (optional): the signed nonce
 * @error: return location for an error
 *
 * Checks the signature of a peer request (see
 * exo_cluster_key_sign_request()); not its freshness, which an
 * #ExoReplayGuard checks with the time and nonce returned.
 *
 * Returns: %TRUE if the MAC is right; else %FALSE with
 *   %EXO_CLUSTER_AUTH_ERROR_MISSING, %EXO_CLUSTER_AUTH_ERROR_MALFORMED or
 *   %EXO_CLUSTER_AUTH_ERROR_BAD_MAC
 */
gboolean
exo_cluster_key_verify_request (ExoClusterKey      *key,
                                const char         *auth,
                                const char         *method,
                                const char         *path,
                                const char * const *headers,
                                const guint8       *body,
                                gsize               body_length,
                                gint64             *out_timestamp_us,
                                char              **out_nonce,
                                GError            **error)
{
  g_autofree char *nonce = NULL;
  g_autofree char *mac = NULL;
  g_autoptr(GString) text = NULL;
  gint64 ts = 0;

  g_return_val_if_fail (key != NULL && method != NULL && path != NULL, FALSE);

  if (!parse_auth (auth, TRUE, &ts, &nonce, &mac, error))
    return FALSE;
  text = canonical_request (method, path, headers, body, body_length, ts, nonce, error);
  if (text == NULL)
    return FALSE;
  if (!exo_cluster_key_verify (key, (const guint8 *) text->str, text->len, mac))
    {
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_BAD_MAC,
                   "the signature does not match (another cluster key?)");
      return FALSE;
    }
  if (out_timestamp_us != NULL)
    *out_timestamp_us = ts;
  if (out_nonce != NULL)
    *out_nonce = g_steal_pointer (&nonce);
  return TRUE;
}

static GString *
canonical_response (const char   *request_nonce,
                    guint         status,
                    const guint8 *body,
                    gsize         body_length)
{
  g_autofree char *body_hash = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                                            body != NULL ? body : (const guint8 *) "",
                                                            body != NULL ? body_length : 0);
  GString *text = g_string_new ("exo-peer-response-v1\n");

  g_string_append_printf (text, "%s\n%u\n%s", request_nonce, status, body_hash);
  return text;
}

/**
 * exo_cluster_key_sign_response:
 * @key: a key
 * @request_nonce: the nonce of the (verified) request answered
 * @status: the HTTP status of the answer
 * @body: (array length=body_length) (nullable): the answer's body
 * @body_length: its size
 *
 * Signs an answer to a peer request: the value of an
 * %EXO_CLUSTER_AUTH_HEADER header, `v1 mac=<64 hex>`, over the request's
 * nonce, the status and a SHA-256 of the body.  Bound to the request's
 * nonce, it cannot be replayed as the answer to another request.
 *
 * Returns: (transfer full): the header value
 */
char *
exo_cluster_key_sign_response (ExoClusterKey *key,
                               const char    *request_nonce,
                               guint          status,
                               const guint8  *body,
                               gsize          body_length)
{
  g_autoptr(GString) text = NULL;
  g_autofree char *mac = NULL;

  g_return_val_if_fail (key != NULL && request_nonce != NULL, NULL);

  text = canonical_response (request_nonce, status, body, body_length);
  mac = exo_cluster_key_sign (key, (const guint8 *) text->str, text->len);
  return g_strdup_printf ("v1 mac=%s", mac);
}

/**
 * exo_cluster_key_verify_response:
 * @key: a key
 * @auth: (nullable): the %EXO_CLUSTER_AUTH_HEADER header of the answer
 * @request_nonce: the nonce our request was signed with
 * @status: the answer's HTTP status
 * @body: (array length=body_length) (nullable): the answer's body
 * @body_length: its size
 * @error: return location for an error
 *
 * Checks that an answer comes from a holder of the key and answers our
 * request (see exo_cluster_key_sign_response()).
 *
 * Returns: %TRUE if it does; else %FALSE with
 *   %EXO_CLUSTER_AUTH_ERROR_MISSING, %EXO_CLUSTER_AUTH_ERROR_MALFORMED or
 *   %EXO_CLUSTER_AUTH_ERROR_BAD_MAC
 */
gboolean
exo_cluster_key_verify_response (ExoClusterKey *key,
                                 const char    *auth,
                                 const char    *request_nonce,
                                 guint          status,
                                 const guint8  *body,
                                 gsize          body_length,
                                 GError       **error)
{
  g_autofree char *mac = NULL;
  g_autoptr(GString) text = NULL;

  g_return_val_if_fail (key != NULL && request_nonce != NULL, FALSE);

  if (!parse_auth (auth, FALSE, NULL, NULL, &mac, error))
    return FALSE;
  text = canonical_response (request_nonce, status, body, body_length);
  if (!exo_cluster_key_verify (key, (const guint8 *) text->str, text->len, mac))
    {
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_BAD_MAC,
                   "the answer's signature does not match (another cluster key?)");
      return FALSE;
    }
  return TRUE;
}


/* --- ExoReplayGuard ----------------------------------------------------------- */

typedef struct _Sender Sender;

typedef struct
{
  GList   link;              /* in ExoReplayGuard.order; data = this entry */
  Sender *sender;
  gint64  timestamp_us;
  char    nonce[MAX_NONCE_LEN + 1];
} Entry;

struct _Sender
{
  char       *name;
  GHashTable *nonces;        /* Entry.nonce → Entry */
  gint64      watermark;     /* nonces signed at or before this are forgotten */
};

struct _ExoReplayGuard
{
  gatomicrefcount ref_count;
  gint64          window_us;
  guint           max_entries;
  guint           max_senders;
  GHashTable     *senders;   /* name → Sender */
  GQueue          order;     /* Entry links, in the order they came */
};

G_DEFINE_BOXED_TYPE (ExoReplayGuard, exo_replay_guard, exo_replay_guard_ref, exo_replay_guard_unref)

static void
sender_free (Sender *sender)
{
  g_hash_table_unref (sender->nonces);
  g_free (sender->name);
  g_free (sender);
}

/**
 * exo_replay_guard_new:
 * @window_us: the allowed clock skew, either way (e.g.
 *   %EXO_CLUSTER_AUTH_MAX_SKEW_US)
 * @max_entries: the most nonces remembered (≥ 1)
 * @max_senders: the most senders remembered (≥ 1)
 *
 * A replay guard.  A message is accepted once: when its timestamp is within
 * @window_us of the time given, its nonce was not seen from that sender,
 * and it is newer than every nonce of that sender that had to be forgotten
 * (past @max_entries, the oldest is forgotten first).  Memory stays below
 * about 100 bytes per entry.
 *
 * Returns: (transfer full): the guard
 */
ExoReplayGuard *
exo_replay_guard_new (gint64 window_us,
                      guint  max_entries,
                      guint  max_senders)
{
  ExoReplayGuard *guard;

  g_return_val_if_fail (window_us > 0, NULL);
  g_return_val_if_fail (max_entries > 0 && max_senders > 0, NULL);

  guard = g_new0 (ExoReplayGuard, 1);
  g_atomic_ref_count_init (&guard->ref_count);
  guard->window_us = window_us;
  guard->max_entries = max_entries;
  guard->max_senders = max_senders;
  guard->senders = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) sender_free);
  g_queue_init (&guard->order);
  return guard;
}

/**
 * exo_replay_guard_ref:
 * @guard: a guard
 *
 * Returns: (transfer full): @guard
 */
ExoReplayGuard *
exo_replay_guard_ref (ExoReplayGuard *guard)
{
  g_return_val_if_fail (guard != NULL, NULL);
  g_atomic_ref_count_inc (&guard->ref_count);
  return guard;
}

/**
 * exo_replay_guard_unref:
 * @guard: (transfer full): a guard
 */
void
exo_replay_guard_unref (ExoReplayGuard *guard)
{
  GList *link;

  g_return_if_fail (guard != NULL);
  if (!g_atomic_ref_count_dec (&guard->ref_count))
    return;
  while ((link = g_queue_pop_head_link (&guard->order)) != NULL)
    g_free (link->data);
  g_hash_table_unref (guard->senders);
  g_free (guard);
}

static void
forget (ExoReplayGuard *guard,
        Entry          *entry)
{
  Sender *sender = entry->sender;

  g_queue_unlink (&guard->order, &entry->link);
  g_hash_table_remove (sender->nonces, entry->nonce);
  sender->watermark = MAX (sender->watermark, entry->timestamp_us);
  g_free (entry);
}

/* Forgets what has aged out of the window, and senders with nothing left
 * to remember: anything they signed before now - window is stale anyway. */
static void
expire (ExoReplayGuard *guard,
        gint64          now_us,
        gboolean        sweep_senders)
{
  gint64 horizon = now_us - guard->window_us;
  GHashTableIter iter;
  Sender *sender;

  while (guard->order.head != NULL &&
         ((Entry *) guard->order.head->data)->timestamp_us < horizon)
    forget (guard, guard->order.head->data);
  if (!sweep_senders)
    return;
  g_hash_table_iter_init (&iter, guard->senders);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &sender))
    if (g_hash_table_size (sender->nonces) == 0 && sender->watermark < horizon)
      g_hash_table_iter_remove (&iter);
}

/**
 * exo_replay_guard_check:
 * @guard: a guard
 * @sender_name: (nullable): who signed (an authenticated name, such as the node
 *   id inside the signed message)
 * @timestamp_us: the signed time (µs since the epoch)
 * @nonce: the signed nonce (at most 64 characters)
 * @now_us: this host's time (g_get_real_time())
 * @error: return location for an error
 *
 * Checks and remembers an authenticated message.  Call it only after the
 * MAC was verified: only holders of the key should fill the guard.
 *
 * Returns: %TRUE if the message is fresh; else %FALSE with
 *   %EXO_CLUSTER_AUTH_ERROR_STALE or %EXO_CLUSTER_AUTH_ERROR_REPLAY (or
 *   %EXO_CLUSTER_AUTH_ERROR_MALFORMED for an over-long nonce)
 */
gboolean
exo_replay_guard_check (ExoReplayGuard *guard,
                        const char     *sender_name,
                        gint64          timestamp_us,
                        const char     *nonce,
                        gint64          now_us,
                        GError        **error)
{
  Sender *sender;
  Entry *entry;

  g_return_val_if_fail (guard != NULL, FALSE);
  g_return_val_if_fail (nonce != NULL, FALSE);

  if (sender_name == NULL)
    sender_name = "";
  if (strlen (nonce) > MAX_NONCE_LEN)
    {
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_MALFORMED,
                   "the nonce is longer than %d characters", MAX_NONCE_LEN);
      return FALSE;
    }
  if (timestamp_us < now_us - guard->window_us || timestamp_us > now_us + guard->window_us)
    {
      double ahead_s = (double) (timestamp_us - now_us) / G_USEC_PER_SEC;

      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_STALE,
                   "signed %.1f s %s; at most %.0f s either way are accepted "
                   "(are the clocks in sync?)",
                   ahead_s < 0 ? -ahead_s : ahead_s, ahead_s < 0 ? "ago" : "in the future",
                   (double) guard->window_us / G_USEC_PER_SEC);
      return FALSE;
    }

  expire (guard, now_us, FALSE);
  sender = g_hash_table_lookup (guard->senders, sender_name);
  if (sender == NULL)
    {
      if (g_hash_table_size (guard->senders) >= guard->max_senders)
        expire (guard, now_us, TRUE);
      if (g_hash_table_size (guard->senders) >= guard->max_senders)
        {
          g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_REPLAY,
                       "cannot tell: more than %u senders within %.0f s",
                       guard->max_senders, (double) guard->window_us / G_USEC_PER_SEC);
          return FALSE;
        }
      sender = g_new0 (Sender, 1);
      sender->name = g_strdup (sender_name);
      sender->nonces = g_hash_table_new (g_str_hash, g_str_equal);
      sender->watermark = G_MININT64;
      g_hash_table_insert (guard->senders, sender->name, sender);
    }
  if (timestamp_us <= sender->watermark)
    {
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_REPLAY,
                   "signed before the oldest nonce remembered from this sender");
      return FALSE;
    }
  if (g_hash_table_contains (sender->nonces, nonce))
    {
      g_set_error (error, EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_REPLAY,
                   "the nonce was seen before (a replayed message)");
      return FALSE;
    }

  entry = g_new0 (Entry, 1);
  entry->link.data = entry;
  entry->sender = sender;
  entry->timestamp_us = timestamp_us;
  g_strlcpy (entry->nonce, nonce, sizeof entry->nonce);
  g_hash_table_add (sender->nonces, entry->nonce);
  g_queue_push_tail_link (&guard->order, &entry->link);
  while (guard->order.length > guard->max_entries)
    forget (guard, guard->order.head->data);
  return TRUE;
}

/**
 * exo_replay_guard_get_size:
 * @guard: a guard
 *
 * Returns: how many nonces it remembers now
 */
guint
exo_replay_guard_get_size (ExoReplayGuard *guard)
{
  g_return_val_if_fail (guard != NULL, 0);
  return guard->order.length;
}
