/* http-auth.c: authentication in the `http-server` plugin.
 *
 * Owns: the checks of the server — every /peer/ request carries an
 * X-Exo-Auth signature made with the cluster key (method, path, X-Exo-*
 * headers, SHA-256 of the body, time, nonce), refused with 401 when it is
 * missing, malformed, wrong, stale or replayed; the answers to verified
 * peer requests are signed in turn, bound to the request's nonce; the user
 * API takes `Authorization: Bearer <key>` when API keys are configured —
 * and the same signing and checking on the client side (ExoHttpPeer).
 * Failures are counted per reason (metrics) and logged at most once per
 * 10 s per reason.  Formats: docs/cluster-protocol.md; why: docs/security.md.
 *
 * Threads: an ExoHttpAuth belongs to one server and is used on the thread
 * of its main context only.  The client functions use only their
 * arguments (an ExoClusterKey is immutable).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-auth.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Nonces of peer requests remembered (per sender, within the clock skew). */
#define MAX_REPLAY_ENTRIES  65536
#define MAX_REPLAY_SENDERS  1024
#define LOG_INTERVAL_US     (10 * G_USEC_PER_SEC)
#define MAX_API_KEY_FILE    (1024 * 1024)
#define MSG_DATA_KEY        "exo-http-auth-peer"

/* Log slots: the ExoClusterAuthError codes of peer requests, then API keys. */
#define LOG_SLOT_API_KEY    (EXO_CLUSTER_AUTH_ERROR_REPLAY + 1)
#define N_LOG_SLOTS         (LOG_SLOT_API_KEY + 1)

struct _ExoHttpAuth
{
  char           *resource_id;
  ExoClusterKey  *key;               /* NULL: not configured, everything refused */
  ExoReplayGuard *guard;
  GArray         *api_keys;          /* SHA-256 digests, 32 bytes each */

  guint64         peer_failures[N_LOG_SLOTS];   /* by ExoClusterAuthError code */
  guint64         api_key_missing;
  guint64         api_key_invalid;
  gint64          logged_at[N_LOG_SLOTS];
  guint64         suppressed[N_LOG_SLOTS];
};

/* What the answer of a verified peer request is signed with. */
typedef struct
{
  ExoClusterKey *key;
  char          *nonce;
} PeerMsgData;

static void
peer_msg_data_free (PeerMsgData *data)
{
  exo_cluster_key_unref (data->key);
  g_free (data->nonce);
  g_free (data);
}

static gboolean
equal_constant_time (const guint8 *a,
                     const guint8 *b,
                     gsize         length)
{
  guint8 diff = 0;

  for (gsize i = 0; i < length; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

static void
sha256 (const char *text,
        gsize       length,
        guint8      digest[32])
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  gsize digest_len = 32;

  g_checksum_update (sum, (const guchar *) text, (gssize) length);
  g_checksum_get_digest (sum, digest, &digest_len);
}

/* --- API keys ----------------------------------------------------------------- */

static gboolean
api_key_is_valid (const char *key,
                  gsize       length)
{
  if (length == 0 || length > EXO_HTTP_MAX_API_KEY_LEN)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (key[i] <= 0x20 || key[i] >= 0x7f)
      return FALSE;
  return TRUE;
}

static gboolean
add_api_key (ExoHttpAuth  *auth,
             const char   *key,
             gsize         length,
             const char   *where,
             GError      **error)
{
  guint8 digest[32];

  if (!api_key_is_valid (key, length))
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "%s: an API key must be 1 to %d printable ASCII characters without spaces",
                   where, EXO_HTTP_MAX_API_KEY_LEN);
      return FALSE;
    }
  if (auth->api_keys->len >= EXO_HTTP_MAX_API_KEYS)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "%s: more than %d API keys", where, EXO_HTTP_MAX_API_KEYS);
      return FALSE;
    }
  sha256 (key, length, digest);
  g_array_append_vals (auth->api_keys, digest, 32);
  return TRUE;
}

/* One key per line; blank lines and '#' comments ignored.  The file must
 * not be readable by group or others (it holds secrets). */
static gboolean
load_api_key_file (ExoHttpAuth  *auth,
                   const char   *path,
                   GError      **error)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) local_error = NULL;
  g_auto(GStrv) lines = NULL;
  GStatBuf st;
  gsize length = 0;

  if (g_stat (path, &st) < 0)
    {
      int saved = errno;

      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "api-key-file %s: %s", path, g_strerror (saved));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode) || st.st_size > MAX_API_KEY_FILE)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "api-key-file %s: not a regular file of at most %d bytes", path,
                   MAX_API_KEY_FILE);
      return FALSE;
    }
  if ((st.st_mode & 077) != 0)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "api-key-file %s: group or others may read or write it (mode %04o); "
                   "refusing keys others can read: chmod 600 %s",
                   path, (guint) (st.st_mode & 07777), path);
      return FALSE;
    }
  if (!g_file_get_contents (path, &text, &length, &local_error))
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "api-key-file: %s", local_error->message);
      return FALSE;
    }
  if (length > MAX_API_KEY_FILE || memchr (text, '\0', length) != NULL)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                   "api-key-file %s: expected text, one key per line", path);
      return FALSE;
    }
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);
      g_autofree char *where = NULL;

      if (*line == '\0' || *line == '#')
        continue;
      where = g_strdup_printf ("api-key-file %s:%u", path, i + 1);
      if (!add_api_key (auth, line, strlen (line), where, error))
        return FALSE;
    }
  return TRUE;
}

/* --- the server's state ------------------------------------------------------- */

ExoHttpAuth *
exo_http_auth_new (void)
{
  ExoHttpAuth *auth = g_new0 (ExoHttpAuth, 1);

  auth->resource_id = g_strdup ("");
  auth->guard = exo_replay_guard_new (EXO_CLUSTER_AUTH_MAX_SKEW_US, MAX_REPLAY_ENTRIES,
                                      MAX_REPLAY_SENDERS);
  auth->api_keys = g_array_new (FALSE, FALSE, 1);
  return auth;
}

void
exo_http_auth_unconfigure (ExoHttpAuth *auth)
{
  g_clear_pointer (&auth->key, exo_cluster_key_unref);
  /* the digests of secrets: wipe them */
  if (auth->api_keys->len > 0)
    memset (auth->api_keys->data, 0, auth->api_keys->len);
  g_array_set_size (auth->api_keys, 0);
}

gboolean
exo_http_auth_configure (ExoHttpAuth         *auth,
                         const char          *resource_id,
                         ExoClusterKey       *key,
                         const char * const  *api_keys,
                         const char          *api_key_file,
                         GError             **error)
{
  exo_http_auth_unconfigure (auth);
  g_free (auth->resource_id);
  auth->resource_id = g_strdup (resource_id);
  for (guint i = 0; api_keys != NULL && api_keys[i] != NULL; i++)
    {
      g_autofree char *where = g_strdup_printf ("api-keys[%u]", i);

      if (!add_api_key (auth, api_keys[i], strlen (api_keys[i]), where, error))
        {
          exo_http_auth_unconfigure (auth);
          return FALSE;
        }
    }
  if (api_key_file != NULL && *api_key_file != '\0' &&
      !load_api_key_file (auth, api_key_file, error))
    {
      exo_http_auth_unconfigure (auth);
      return FALSE;
    }
  auth->key = exo_cluster_key_ref (key);
  return TRUE;
}

/* The same checks and the same reading of the file as
 * exo_http_auth_configure(), into a throw-away ExoHttpAuth: reads the file,
 * changes nothing. */
gboolean
exo_http_auth_check_settings (const char * const  *api_keys,
                              const char          *api_key_file,
                              const char         **setting,
                              GError             **error)
{
  ExoHttpAuth *auth = exo_http_auth_new ();
  gboolean ok = TRUE;

  *setting = NULL;
  for (guint i = 0; ok && api_keys != NULL && api_keys[i] != NULL; i++)
    {
      g_autofree char *where = g_strdup_printf ("api-keys[%u]", i);

      if (!add_api_key (auth, api_keys[i], strlen (api_keys[i]), where, error))
        {
          *setting = "api-keys";
          ok = FALSE;
        }
    }
  if (ok && api_key_file != NULL && *api_key_file != '\0' &&
      !load_api_key_file (auth, api_key_file, error))
    {
      *setting = "api-key-file";
      ok = FALSE;
    }
  exo_http_auth_free (auth);
  return ok;
}

void
exo_http_auth_free (ExoHttpAuth *auth)
{
  if (auth == NULL)
    return;
  exo_http_auth_unconfigure (auth);
  g_free (auth->resource_id);
  exo_replay_guard_unref (auth->guard);
  g_array_unref (auth->api_keys);
  g_free (auth);
}

gboolean
exo_http_auth_is_peer_path (const char *path)
{
  return path != NULL && g_str_has_prefix (path, "/peer/");
}

/* --- refusing -------------------------------------------------------------------- */

static void
log_refusal (ExoHttpAuth       *auth,
             guint              slot,
             SoupServerMessage *msg,
             const char        *what)
{
  gint64 now = g_get_monotonic_time ();
  const char *host = soup_server_message_get_remote_host (msg);
  GUri *uri = soup_server_message_get_uri (msg);
  const char *raw = uri != NULL ? g_uri_get_path (uri) : "?";
  g_autofree char *path = g_utf8_make_valid (raw, (gssize) strnlen (raw, 128));
  g_autofree char *more = NULL;

  if (auth->logged_at[slot] != 0 && now - auth->logged_at[slot] < LOG_INTERVAL_US)
    {
      auth->suppressed[slot]++;
      return;
    }
  if (auth->suppressed[slot] > 0)
    more = g_strdup_printf (" (%" G_GUINT64_FORMAT " more like it not logged in the last %d s)",
                            auth->suppressed[slot], (int) (LOG_INTERVAL_US / G_USEC_PER_SEC));
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
                    "EXO_RESOURCE_ID", auth->resource_id,
                    "MESSAGE", "%s: refused %s %s from %s: %s%s", auth->resource_id,
                    soup_server_message_get_method (msg), path, host != NULL ? host : "?", what,
                    more != NULL ? more : "");
  auth->logged_at[slot] = now;
  auth->suppressed[slot] = 0;
}

static void
respond_401 (SoupServerMessage *msg,
             JsonNode          *body)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  gsize length = 0;
  char *text;

  json_generator_set_root (generator, body);
  text = json_generator_to_data (generator, &length);
  soup_server_message_set_status (msg, SOUP_STATUS_UNAUTHORIZED, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, text, length);
  /* Whoever it is, it does not get to keep the connection. */
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Connection", "close");
}

static void
refuse_peer (ExoHttpAuth       *auth,
             SoupServerMessage *msg,
             const GError      *error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *message = NULL;
  guint slot = error->domain == EXO_CLUSTER_AUTH_ERROR && error->code < N_LOG_SLOTS
               ? (guint) error->code : EXO_CLUSTER_AUTH_ERROR_MALFORMED;

  auth->peer_failures[slot]++;
  message = g_strdup_printf ("unauthenticated peer request (%s): %s",
                             exo_cluster_auth_error_to_string (slot), error->message);
  log_refusal (auth, slot, msg, message);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, message);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  respond_401 (msg, root);
}

/* 401 in OpenAI's shape, as its clients expect. */
static void
refuse_user (ExoHttpAuth       *auth,
             SoupServerMessage *msg,
             gboolean           missing)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  const char *message = missing
    ? "You didn't provide an API key. You need to provide your API key in an Authorization "
      "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
    : "Incorrect API key provided.";

  if (missing)
    auth->api_key_missing++;
  else
    auth->api_key_invalid++;
  log_refusal (auth, LOG_SLOT_API_KEY, msg, missing ? "no API key" : "wrong API key");

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, message);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, "invalid_request_error");
  json_builder_set_member_name (builder, "param");
  json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "code");
  if (missing)
    json_builder_add_null_value (builder);
  else
    json_builder_add_string_value (builder, "invalid_api_key");
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  respond_401 (msg, root);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "WWW-Authenticate", "Bearer realm=\"exo-node\"");
}

/* --- the checks ------------------------------------------------------------------ */

/* Whether `Authorization: Bearer <key>` names a configured key; *missing
 * when there is no bearer token at all. */
static gboolean
api_key_matches (ExoHttpAuth *auth,
                 const char  *header,
                 gboolean    *missing)
{
  const char *token;
  gsize length;
  guint8 digest[32];
  gboolean ok = FALSE;

  *missing = TRUE;
  if (header == NULL)
    return FALSE;
  while (*header == ' ' || *header == '\t')
    header++;
  if (g_ascii_strncasecmp (header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
    return FALSE;
  token = header + 6;
  while (*token == ' ' || *token == '\t')
    token++;
  length = strlen (token);
  while (length > 0 && (token[length - 1] == ' ' || token[length - 1] == '\t'))
    length--;
  if (length == 0)
    return FALSE;
  *missing = FALSE;
  if (!api_key_is_valid (token, length))
    return FALSE;
  sha256 (token, length, digest);
  /* every configured key is compared: the time does not tell which matched */
  for (guint i = 0; i < auth->api_keys->len / 32; i++)
    ok |= equal_constant_time (digest, (const guint8 *) auth->api_keys->data + 32 * i, 32);
  return ok;
}

gboolean
exo_http_auth_check_early (ExoHttpAuth       *auth,
                           SoupServerMessage *msg,
                           const char        *path)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);

  if (exo_http_auth_is_peer_path (path))
    {
      if (auth->key == NULL ||
          soup_message_headers_get_one (headers, EXO_CLUSTER_AUTH_HEADER) == NULL)
        {
          g_autoptr(GError) error = g_error_new (EXO_CLUSTER_AUTH_ERROR,
                                                 EXO_CLUSTER_AUTH_ERROR_MISSING,
                                                 "no %s header", EXO_CLUSTER_AUTH_HEADER);
          refuse_peer (auth, msg, error);
          return FALSE;
        }
      return TRUE;
    }
  /* The user API: open unless keys are configured; /healthcheck always. */
  if (auth->api_keys->len == 0 || g_strcmp0 (path, "/healthcheck") == 0)
    return TRUE;
  {
    gboolean missing;

    if (api_key_matches (auth, soup_message_headers_get_one (headers, "Authorization"), &missing))
      return TRUE;
    refuse_user (auth, msg, missing);
    return FALSE;
  }
}

/* name, value, …, NULL of @headers (the strings belong to @headers). */
static GPtrArray *
header_pairs (SoupMessageHeaders *headers)
{
  GPtrArray *pairs = g_ptr_array_new ();
  SoupMessageHeadersIter iter;
  const char *name, *value;

  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    if (g_ascii_strncasecmp (name, "X-Exo-", 6) == 0)
      {
        g_ptr_array_add (pairs, (gpointer) name);
        g_ptr_array_add (pairs, (gpointer) value);
      }
  g_ptr_array_add (pairs, NULL);
  return pairs;
}

static char *
path_and_query (GUri *uri)
{
  const char *query = g_uri_get_query (uri);

  return query != NULL ? g_strdup_printf ("%s?%s", g_uri_get_path (uri), query)
                       : g_strdup (g_uri_get_path (uri));
}

gboolean
exo_http_auth_check_peer (ExoHttpAuth       *auth,
                          SoupServerMessage *msg,
                          const guint8      *body,
                          gsize              body_length)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autoptr(GPtrArray) pairs = header_pairs (headers);
  g_autofree char *path = path_and_query (soup_server_message_get_uri (msg));
  g_autofree char *nonce = NULL;
  g_autoptr(GError) error = NULL;
  PeerMsgData *data;
  gint64 timestamp = 0;

  if (auth->key == NULL)
    {
      error = g_error_new (EXO_CLUSTER_AUTH_ERROR, EXO_CLUSTER_AUTH_ERROR_MISSING,
                           "the server has no cluster key");
      refuse_peer (auth, msg, error);
      return FALSE;
    }
  if (!exo_cluster_key_verify_request (auth->key,
                                       soup_message_headers_get_one (headers, EXO_CLUSTER_AUTH_HEADER),
                                       soup_server_message_get_method (msg), path,
                                       (const char * const *) pairs->pdata, body, body_length,
                                       &timestamp, &nonce, &error) ||
      !exo_replay_guard_check (auth->guard,
                               soup_message_headers_get_one (headers, EXO_CLUSTER_AUTH_NODE_HEADER),
                               timestamp, nonce, g_get_real_time (), &error))
    {
      refuse_peer (auth, msg, error);
      return FALSE;
    }

  data = g_new0 (PeerMsgData, 1);
  data->key = exo_cluster_key_ref (auth->key);
  data->nonce = g_steal_pointer (&nonce);
  g_object_set_data_full (G_OBJECT (msg), MSG_DATA_KEY, data, (GDestroyNotify) peer_msg_data_free);
  return TRUE;
}

void
exo_http_auth_sign_response (SoupServerMessage *msg,
                             guint              status,
                             const char        *body,
                             gsize              body_length)
{
  PeerMsgData *data = g_object_get_data (G_OBJECT (msg), MSG_DATA_KEY);
  g_autofree char *auth = NULL;

  if (data == NULL)
    return;
  auth = exo_cluster_key_sign_response (data->key, data->nonce, status,
                                        (const guint8 *) body, body_length);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                EXO_CLUSTER_AUTH_HEADER, auth);
}

gboolean
exo_http_auth_get_verified (SoupServerMessage  *msg,
                            ExoClusterKey     **key,
                            const char        **nonce)
{
  PeerMsgData *data = g_object_get_data (G_OBJECT (msg), MSG_DATA_KEY);

  if (data == NULL)
    return FALSE;
  *key = data->key;
  *nonce = data->nonce;
  return TRUE;
}

void
exo_http_auth_collect_metrics (ExoHttpAuth  *auth,
                               GVariantDict *metrics)
{
  static const struct { ExoClusterAuthError code; const char *name; } peer[] = {
    { EXO_CLUSTER_AUTH_ERROR_MISSING, "peer-auth-missing" },
    { EXO_CLUSTER_AUTH_ERROR_MALFORMED, "peer-auth-malformed" },
    { EXO_CLUSTER_AUTH_ERROR_BAD_MAC, "peer-auth-bad-mac" },
    { EXO_CLUSTER_AUTH_ERROR_STALE, "peer-auth-stale" },
    { EXO_CLUSTER_AUTH_ERROR_REPLAY, "peer-auth-replay" },
  };
  guint64 total = 0;

  for (guint i = 0; i < G_N_ELEMENTS (peer); i++)
    {
      guint64 n = auth != NULL ? auth->peer_failures[peer[i].code] : 0;

      g_variant_dict_insert (metrics, peer[i].name, "t", n);
      total += n;
    }
  g_variant_dict_insert (metrics, "peer-auth-failures", "t", total);
  g_variant_dict_insert (metrics, "api-key-failures", "t",
                         auth != NULL ? auth->api_key_missing + auth->api_key_invalid : 0);
  g_variant_dict_insert (metrics, "api-keys", "u",
                         auth != NULL ? auth->api_keys->len / 32 : 0);
  g_variant_dict_insert (metrics, "cluster-key-fingerprint", "s",
                         auth != NULL && auth->key != NULL
                         ? exo_cluster_key_get_fingerprint (auth->key) : "");
  g_variant_dict_insert (metrics, "replay-cache-size", "u",
                         auth != NULL ? exo_replay_guard_get_size (auth->guard) : 0);
}

/* What the keys above are in /metrics (docs/metrics.md). */
#define PEER_AUTH(metric_key, reason)                                                   \
  { .key = metric_key, .kind = EXO_METRIC_COUNTER,                                      \
    .name = "exo_http_peer_auth_failures_total{reason=\"" reason "\"}",                  \
    .help = "Peer requests refused by their signature, by reason (the log says which)." }
static const ExoMetricEntry auth_metric_entries[] = {
  PEER_AUTH ("peer-auth-missing", "missing"),
  PEER_AUTH ("peer-auth-malformed", "malformed"),
  PEER_AUTH ("peer-auth-bad-mac", "bad-mac"),
  PEER_AUTH ("peer-auth-stale", "stale"),
  PEER_AUTH ("peer-auth-replay", "replay"),
  /* the sum of the above: sum() of their series */
  { .key = "peer-auth-failures", .kind = EXO_METRIC_HIDDEN },
  { .key = "api-key-failures", .kind = EXO_METRIC_COUNTER, .name = "exo_http_api_key_failures_total",
    .help = "Requests refused for a missing or unknown API key." },
  { .key = "api-keys", .kind = EXO_METRIC_GAUGE, .name = "exo_http_api_keys",
    .help = "API keys the server accepts (0: the user API is open)." },
  { .key = "cluster-key-fingerprint", .kind = EXO_METRIC_INFO, .name = "exo_http_server_info",
    .help = "The server's address, port and cluster key fingerprint (value 1)." },
  { .key = "replay-cache-size", .kind = EXO_METRIC_GAUGE, .name = "exo_http_replay_cache_entries",
    .help = "Nonces of peer requests the server remembers against replays." },
};
#undef PEER_AUTH

void
exo_http_auth_add_metric_entries (ExoResourceClass *klass)
{
  exo_resource_class_add_metric_entries (klass, auth_metric_entries, G_N_ELEMENTS (auth_metric_entries));
}

/* --- the client side ---------------------------------------------------------------- */

char *
exo_http_auth_sign_request (ExoClusterKey *key,
                            SoupMessage   *msg,
                            GBytes        *body)
{
  SoupMessageHeaders *headers = soup_message_get_request_headers (msg);
  g_autoptr(GPtrArray) pairs = NULL;
  g_autofree char *path = path_and_query (soup_message_get_uri (msg));
  g_autofree char *auth = NULL;
  const guint8 *data = NULL;
  gsize length = 0;
  char *nonce = NULL;

  if (body != NULL)
    data = g_bytes_get_data (body, &length);
  soup_message_headers_replace (headers, EXO_CLUSTER_AUTH_NODE_HEADER, exo_node_id_default ());
  pairs = header_pairs (headers);
  auth = exo_cluster_key_sign_request (key, soup_message_get_method (msg), path,
                                       (const char * const *) pairs->pdata, data, length,
                                       g_get_real_time (), &nonce);
  soup_message_headers_replace (headers, EXO_CLUSTER_AUTH_HEADER, auth);
  return nonce;
}

gboolean
exo_http_auth_verify_answer (ExoClusterKey  *key,
                             SoupMessage    *msg,
                             const char     *nonce,
                             GBytes         *body,
                             GError        **error)
{
  const guint8 *data = NULL;
  gsize length = 0;

  if (body != NULL)
    data = g_bytes_get_data (body, &length);
  return exo_cluster_key_verify_response (key,
                                          soup_message_headers_get_one (
                                            soup_message_get_response_headers (msg),
                                            EXO_CLUSTER_AUTH_HEADER),
                                          nonce, soup_message_get_status (msg),
                                          data, length, error);
}
