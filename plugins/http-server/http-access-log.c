/* http-access-log.c: the access log of ExoHttpServer.
 *
 * Owns: one line per answered request, and one for a request whose client
 * left before its answer was sent, logged with g_log_structured_array() at
 * info level in the server's log domain (exo-node writes it with
 * --verbose), e.g.
 *
 *   server: 127.0.0.1 "GET /v1/models" 200 312 B 0.4 ms
 *   server: 127.0.0.1 "POST /v1/chat/completions" client left after 812.3 ms, before the answer was sent
 *
 * with the fields EXO_RESOURCE_ID, HTTP_CLIENT, HTTP_METHOD, HTTP_PATH,
 * HTTP_STATUS, HTTP_BYTES (the response body), HTTP_DURATION_MS (from
 * libsoup's "request-started", http-metrics.c) and HTTP_CLIENT_LEFT=1.
 *
 * What a client sent is hostile: the method and the path are logged with
 * every byte outside printable ASCII, `"` and `\` as \xHH, and cut
 * (the line says so, and how long the path was).  Never logged: the query
 * string (it may carry a key), any header (Authorization, X-Api-Key) and
 * any body.
 *
 * Nothing is formatted when nobody would see the line: one
 * g_log_writer_default_would_drop() per request (exo-node's writer drops
 * what that drops).  The line is not rate-limited per kind like exo-node's
 * other messages; all access lines together are (exo-daemon-log.h).
 *
 * Rules: called from libsoup's "request-finished" and "request-aborted",
 * in the server's GMainContext; no state.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "http-server-private.h"

#include <string.h>

#define ACCESS_METHOD_MAX_BYTES 16
#define ACCESS_PATH_MAX_BYTES   256

/* @text (at most @max bytes of it) with what is not printable ASCII, `"`
 * and `\` escaped; TRUE when it was cut. */
static gboolean
append_escaped (GString    *out,
                const char *text,
                gsize       length,
                gsize       max)
{
  for (gsize i = 0; i < length && i < max; i++)
    {
      guchar c = (guchar) text[i];

      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
        g_string_append_printf (out, "\\x%02x", c);
      else
        g_string_append_c (out, (char) c);
    }
  return length > max;
}

void
http_server_access_log (ExoHttpServer     *self,
                        SoupServerMessage *msg,
                        double             seconds,
                        gboolean           client_left)
{
  const char *method, *path, *client, *id;
  GUri *uri;
  guint status;
  gsize body_bytes, path_length;
  gboolean method_cut, path_cut;
  char status_text[16], bytes_text[24], ms_text[32];
  g_autoptr(GString) method_text = NULL;
  g_autoptr(GString) path_text = NULL;
  g_autoptr(GString) line = NULL;
  GLogField fields[12];
  gsize n = 0;

  if (g_log_writer_default_would_drop (G_LOG_LEVEL_INFO, G_LOG_DOMAIN))
    return;

  method = soup_server_message_get_method (msg);
  uri = soup_server_message_get_uri (msg);
  /* a client that left before its request line: no request to log */
  if (method == NULL || uri == NULL)
    return;
  path = g_uri_get_path (uri);
  path_length = path != NULL ? strlen (path) : 0;
  client = soup_server_message_get_remote_host (msg);
  id = exo_resource_get_id (EXO_RESOURCE (self));
  status = soup_server_message_get_status (msg);
  body_bytes = (gsize) soup_server_message_get_response_body (msg)->length;

  method_text = g_string_new (NULL);
  method_cut = append_escaped (method_text, method, strlen (method), ACCESS_METHOD_MAX_BYTES);
  if (method_cut)
    g_string_append (method_text, "...");
  path_text = g_string_new (NULL);
  path_cut = append_escaped (path_text, path != NULL ? path : "", path_length,
                             ACCESS_PATH_MAX_BYTES);
  if (path_cut)
    g_string_append (path_text, "...");

  g_snprintf (status_text, sizeof status_text, "%u", status);
  g_snprintf (bytes_text, sizeof bytes_text, "%" G_GSIZE_FORMAT, body_bytes);
  g_snprintf (ms_text, sizeof ms_text, "%.3f", MAX (seconds, 0) * 1000);

  line = g_string_new (NULL);
  g_string_append_printf (line, "%s: %s \"%s %s\" ", id, client != NULL ? client : "-",
                          method_text->str, path_text->str);
  if (client_left)
    {
      g_string_append_printf (line, "client left after %.1f ms, before the answer was sent",
                              MAX (seconds, 0) * 1000);
      if (status != 0)
        g_string_append_printf (line, " (status %u, %" G_GSIZE_FORMAT " B)", status, body_bytes);
    }
  else
    g_string_append_printf (line, "%u %" G_GSIZE_FORMAT " B %.1f ms", status, body_bytes,
                            MAX (seconds, 0) * 1000);
  if (path_cut)
    g_string_append_printf (line, " (path cut at %u of %" G_GSIZE_FORMAT " bytes)",
                            ACCESS_PATH_MAX_BYTES, path_length);

  fields[n++] = (GLogField) { "MESSAGE", line->str, -1 };
  fields[n++] = (GLogField) { "PRIORITY", "6", -1 };
  fields[n++] = (GLogField) { "GLIB_DOMAIN", G_LOG_DOMAIN, -1 };
  fields[n++] = (GLogField) { "EXO_RESOURCE_ID", id, -1 };
  fields[n++] = (GLogField) { "HTTP_CLIENT", client != NULL ? client : "", -1 };
  fields[n++] = (GLogField) { "HTTP_METHOD", method_text->str, -1 };
  fields[n++] = (GLogField) { "HTTP_PATH", path_text->str, -1 };
  if (status != 0)
    fields[n++] = (GLogField) { "HTTP_STATUS", status_text, -1 };
  fields[n++] = (GLogField) { "HTTP_BYTES", bytes_text, -1 };
  fields[n++] = (GLogField) { "HTTP_DURATION_MS", ms_text, -1 };
  if (client_left)
    fields[n++] = (GLogField) { "HTTP_CLIENT_LEFT", "1", -1 };
  g_assert (n <= G_N_ELEMENTS (fields));
  g_log_structured_array (G_LOG_LEVEL_INFO, fields, n);
}
