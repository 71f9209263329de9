/* pipeline-uploader.c: the `pipeline-uploader` stage — posts each batch to
 * the receiver over HTTP — and PipelineSession, the pooled HTTP session
 * (one SoupSession of one connection) that its batches share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Main context of the resource only: the pool, the sessions and libsoup's
 * callbacks all run there.  Every upload carries its batch id in
 * X-Batch-Id, so sending a batch again is harmless: the receiver accepts it
 * once.  A 503 gives the session back to the pool; a failed connection
 * gives it back broken (exo_pool_lease_invalidate), and the pool makes a
 * new one.  Both errors are retried by the stage's retry policy.  Each
 * attempt asks the receiver where it listens (it may have been restarted on
 * another port); while it does not listen, the attempt fails with a
 * retryable error.
 */
#include "pipeline.h"

#include <libsoup/soup.h>

/* --- PipelineSession ----------------------------------------------------------- */

struct _PipelineSession
{
  ExoManagedResource  parent_instance;
  SoupSession        *soup;
};

G_DEFINE_FINAL_TYPE (PipelineSession, pipeline_session, EXO_TYPE_MANAGED_RESOURCE)

/* A SoupSession can outlive its cleanup by a moment (a request being
 * cancelled holds it): the ledger counts it until it is finalized. */
static void
soup_session_gone (gpointer  data,
                   GObject  *where_the_object_was)
{
  pipeline_ledger_close (PIPELINE_HANDLE_HTTP_SESSION);
}

static void
pipeline_session_do_initialize (ExoResource *resource,
                                GTask       *task)
{
  PipelineSession *self = PIPELINE_SESSION (resource);

  self->soup = soup_session_new_with_options ("max-conns", 1, "max-conns-per-host", 1,
                                              "timeout", 10, "idle-timeout", 30,
                                              "user-agent", "exo-resource-pipeline/0.1", NULL);
  /* the receiver is local: no proxy, whatever the environment says */
  soup_session_set_proxy_resolver (self->soup, NULL);
  pipeline_ledger_open (PIPELINE_HANDLE_HTTP_SESSION);
  g_object_weak_ref (G_OBJECT (self->soup), soup_session_gone, NULL);
  g_task_return_boolean (task, TRUE);
}

static void
pipeline_session_do_cleanup (ExoResource *resource,
                             GTask       *task)
{
  PipelineSession *self = PIPELINE_SESSION (resource);

  if (self->soup != NULL)
    soup_session_abort (self->soup);   /* closes its connection now */
  g_clear_object (&self->soup);
  g_task_return_boolean (task, TRUE);
}

static void
pipeline_session_dispose (GObject *object)
{
  g_clear_object (&PIPELINE_SESSION (object)->soup);
  G_OBJECT_CLASS (pipeline_session_parent_class)->dispose (object);
}

static void
pipeline_session_class_init (PipelineSessionClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = pipeline_session_dispose;
  EXO_RESOURCE_CLASS (klass)->do_initialize = pipeline_session_do_initialize;
  EXO_RESOURCE_CLASS (klass)->do_cleanup = pipeline_session_do_cleanup;
  exo_resource_class_set_resource_type (EXO_RESOURCE_CLASS (klass), "pipeline-session");
}

static void
pipeline_session_init (PipelineSession *self)
{
}

/* --- PipelineUploader ------------------------------------------------------------ */

struct _PipelineUploader
{
  PipelineStage    parent_instance;

  char            *receiver;      /* id of a pipeline-receiver, when no url */
  char            *url;
  guint            sessions;      /* the pool's max-size */

  GUri            *uri;           /* where the last attempt posted */
  char            *uri_text;      /* and as text, to see a change */
  ExoResourcePool *pool;
  guint64          unavailable;   /* 503 answers */
  guint64          connection_failures;
};

G_DEFINE_FINAL_TYPE (PipelineUploader, pipeline_uploader, PIPELINE_TYPE_STAGE)

enum { PROP_0, PROP_RECEIVER, PROP_URL, PROP_SESSIONS, N_PROPS };
static GParamSpec *properties[N_PROPS];

#define ACQUIRE_TIMEOUT_MS 5000

typedef struct
{
  PipelineUploader *self;
  PipelineBatch    *batch;
  GTask            *task;
  GCancellable     *cancellable;
  ExoPoolLease     *lease;
  GUri             *uri;
  SoupMessage      *message;
} Upload;

static void
upload_free (Upload *upload)
{
  g_clear_pointer (&upload->lease, exo_pool_lease_unref);   /* gives the session back */
  g_clear_object (&upload->message);
  g_clear_pointer (&upload->uri, g_uri_unref);
  g_clear_object (&upload->cancellable);
  pipeline_batch_unref (upload->batch);
  g_object_unref (upload->task);
  g_free (upload);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Upload, upload_free)

static void
sent_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(Upload) upload = user_data;
  PipelineUploader *self = upload->self;
  g_autoptr(GBytes) body = NULL;
  GError *error = NULL;
  guint status;

  body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  if (body == NULL)
    {
      /* the connection is in an unknown state: the pool drops this session */
      exo_pool_lease_invalidate (upload->lease);
      g_clear_pointer (&upload->lease, exo_pool_lease_unref);
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          self->connection_failures++;
          g_prefix_error (&error, "connection to the receiver failed: ");
        }
      g_task_return_error (upload->task, error);
      return;
    }

  /* the session is back in the pool before the next batch asks for one */
  g_clear_pointer (&upload->lease, exo_pool_lease_unref);
  status = soup_message_get_status (upload->message);
  if (SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      g_task_return_boolean (upload->task, TRUE);
    }
  else if (status == SOUP_STATUS_SERVICE_UNAVAILABLE)
    {
      self->unavailable++;
      g_task_return_new_error (upload->task, PIPELINE_ERROR, PIPELINE_ERROR_UNAVAILABLE,
                               "the receiver answered %u %s", status,
                               soup_message_get_reason_phrase (upload->message));
    }
  else
    {
      /* the receiver will not take it, now or later */
      g_task_return_new_error (upload->task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                               "the receiver refused %s: %u %s", upload->batch->id, status,
                               soup_message_get_reason_phrase (upload->message));
    }
}

static void
got_session_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(Upload) upload = user_data;
  GError *error = NULL;
  PipelineSession *session;
  SoupMessageHeaders *headers;
  SoupMessage *message;
  GCancellable *cancellable;
  char rows[16];

  upload->lease = exo_resource_pool_acquire_finish (EXO_RESOURCE_POOL (source), result, &error);
  if (upload->lease == NULL)
    {
      g_task_return_error (upload->task, error);
      return;
    }
  session = PIPELINE_SESSION (exo_pool_lease_get_resource (upload->lease));

  upload->message = soup_message_new_from_uri (SOUP_METHOD_POST, upload->uri);
  /* the batch id makes this POST idempotent: the session may send it on
   * the connection it keeps (libsoup opens a new one for each other POST) */
  soup_message_add_flags (upload->message, SOUP_MESSAGE_IDEMPOTENT);
  headers = soup_message_get_request_headers (upload->message);
  soup_message_headers_replace (headers, "X-Batch-Id", upload->batch->id);
  g_snprintf (rows, sizeof rows, "%u", upload->batch->rows->len);
  soup_message_headers_replace (headers, "X-Batch-Rows", rows);
  soup_message_set_request_body_from_bytes (upload->message, "application/x-ndjson",
                                            upload->batch->payload);
  /* read what the call needs before the upload is handed over: C does not
   * fix the order in which arguments are evaluated */
  message = upload->message;
  cancellable = upload->cancellable;
  soup_session_send_and_read_async (session->soup, message, G_PRIORITY_DEFAULT,
                                    cancellable, sent_cb, g_steal_pointer (&upload));
}

/* Where to post now: the `url` setting, or where the receiver listens at
 * this moment (a restarted receiver may listen on another port). */
static gboolean
resolve_url (PipelineUploader  *self,
             GError           **error)
{
  const char *url = self->url;
  g_autoptr(ExoResource) receiver = NULL;
  gboolean changed;

  if (url == NULL || *url == '\0')
    {
      receiver = exo_registry_lookup (exo_registry_get_default (), self->receiver);
      if (receiver == NULL || !PIPELINE_IS_RECEIVER (receiver))
        {
          g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                       "no pipeline-receiver with id '%s' (setting `receiver`)", self->receiver);
          return FALSE;
        }
      url = pipeline_receiver_get_url (PIPELINE_RECEIVER (receiver));
      if (url == NULL)
        {
          /* retryable: it is being restarted, say */
          g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                       "receiver '%s' is not listening", self->receiver);
          return FALSE;
        }
    }
  if (self->uri != NULL && g_str_equal (self->uri_text, url))
    return TRUE;
  changed = self->uri != NULL;
  g_clear_pointer (&self->uri, g_uri_unref);
  g_clear_pointer (&self->uri_text, g_free);
  self->uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, error);
  if (self->uri == NULL)
    return FALSE;
  self->uri_text = g_strdup (url);
  if (changed)
    pipeline_stage_emit_event (PIPELINE_STAGE (self), "%s: posting to %s from now on",
                               exo_resource_get_id (EXO_RESOURCE (self)), url);
  return TRUE;
}

static void
pipeline_uploader_run_attempt (PipelineStage *stage,
                               PipelineBatch *batch,
                               guint          attempt,
                               GCancellable  *cancellable,
                               GTask         *task)
{
  PipelineUploader *self = PIPELINE_UPLOADER (stage);
  GError *error = NULL;
  Upload *upload;

  if (!resolve_url (self, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  upload = g_new0 (Upload, 1);
  upload->self = self;
  upload->uri = g_uri_ref (self->uri);
  upload->batch = pipeline_batch_ref (batch);
  upload->task = g_object_ref (task);
  upload->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  exo_resource_pool_acquire_async (self->pool, ACQUIRE_TIMEOUT_MS, cancellable,
                                   got_session_cb, upload);
}

static void
leak_detected_cb (ExoResourcePool *pool,
                  ExoResource     *resource,
                  guint64          held_ms,
                  gpointer         user_data)
{
  pipeline_stage_emit_event (user_data, "%s: %s has been lent for %" G_GUINT64_FORMAT " ms",
                             exo_resource_get_id (EXO_RESOURCE (pool)),
                             exo_resource_get_id (resource), held_ms);
}

static void
pool_ready_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  PipelineUploader *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (!exo_resource_initialize_finish (EXO_RESOURCE (source), result, &error))
    g_clear_object (&self->pool);   /* what it made is cleaned up already */
  exo_task_return_result (task, error == NULL, error);
}

static void
pipeline_uploader_do_initialize (ExoResource *resource,
                                 GTask       *task)
{
  PipelineUploader *self = PIPELINE_UPLOADER (resource);
  g_autofree char *pool_id = g_strconcat (exo_resource_get_id (resource), "-sessions", NULL);
  GError *error = NULL;

  if (!resolve_url (self, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  g_clear_object (&self->pool);
  self->pool = g_object_new (EXO_TYPE_RESOURCE_POOL, "id", pool_id,
                             "item-type", PIPELINE_TYPE_SESSION,
                             "min-size", 1, "max-size", self->sessions,
                             "drain-timeout-ms", 5000, "leak-threshold-ms", 10000, NULL);
  g_signal_connect_object (self->pool, "leak-detected", G_CALLBACK (leak_detected_cb), self, 0);
  exo_resource_initialize_async (EXO_RESOURCE (self->pool), g_task_get_cancellable (task),
                                 pool_ready_cb, g_object_ref (task));
}

static void
pool_closed_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  /* closed either way; an error says sessions were still lent at the drain timeout */
  exo_resource_cleanup_finish (EXO_RESOURCE (source), result, &error);
  exo_task_return_result (task, error == NULL, error);
}

static void
pipeline_uploader_do_cleanup (ExoResource *resource,
                              GTask       *task)
{
  PipelineUploader *self = PIPELINE_UPLOADER (resource);
  g_autoptr(ExoResourcePool) pool = g_steal_pointer (&self->pool);

  if (pool == NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  exo_resource_cleanup_async (EXO_RESOURCE (pool), NULL, pool_closed_cb, g_object_ref (task));
}

gboolean
pipeline_uploader_get_pool_stats (PipelineUploader *self,
                                  ExoPoolStats     *stats)
{
  if (self->pool == NULL)
    return FALSE;
  exo_resource_pool_get_stats (self->pool, stats);
  return TRUE;
}

static void
pipeline_uploader_collect_metrics (ExoResource  *resource,
                                   GVariantDict *metrics)
{
  PipelineUploader *self = PIPELINE_UPLOADER (resource);
  ExoPoolStats stats = { 0, };

  EXO_RESOURCE_CLASS (pipeline_uploader_parent_class)->collect_metrics (resource, metrics);
  g_variant_dict_insert (metrics, "answered-503", "t", self->unavailable);
  g_variant_dict_insert (metrics, "connection-failures", "t", self->connection_failures);
  pipeline_uploader_get_pool_stats (self, &stats);
  g_variant_dict_insert (metrics, "pool-size", "u", stats.size);
  g_variant_dict_insert (metrics, "pool-max-size", "u", self->sessions);
  g_variant_dict_insert (metrics, "pool-idle", "u", stats.idle);
  g_variant_dict_insert (metrics, "pool-in-use", "u", stats.in_use);
  g_variant_dict_insert (metrics, "pool-waiting", "u", stats.waiting);
  g_variant_dict_insert (metrics, "pool-created", "t", stats.created);
  g_variant_dict_insert (metrics, "pool-destroyed", "t", stats.destroyed);
}

static void
pipeline_uploader_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  PipelineUploader *self = PIPELINE_UPLOADER (object);

  switch (prop_id)
    {
    case PROP_RECEIVER:
      g_value_set_string (value, self->receiver);
      break;
    case PROP_URL:
      g_value_set_string (value, self->url);
      break;
    case PROP_SESSIONS:
      g_value_set_uint (value, self->sessions);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pipeline_uploader_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  PipelineUploader *self = PIPELINE_UPLOADER (object);

  switch (prop_id)
    {
    case PROP_RECEIVER:
      g_free (self->receiver);
      self->receiver = g_value_dup_string (value);
      break;
    case PROP_URL:
      g_free (self->url);
      self->url = g_value_dup_string (value);
      break;
    case PROP_SESSIONS:
      self->sessions = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  g_object_notify_by_pspec (object, pspec);
}

static void
pipeline_uploader_finalize (GObject *object)
{
  PipelineUploader *self = PIPELINE_UPLOADER (object);

  g_clear_object (&self->pool);
  g_clear_pointer (&self->uri, g_uri_unref);
  g_free (self->uri_text);
  g_free (self->receiver);
  g_free (self->url);
  G_OBJECT_CLASS (pipeline_uploader_parent_class)->finalize (object);
}

static void
pipeline_uploader_class_init (PipelineUploaderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->get_property = pipeline_uploader_get_property;
  object_class->set_property = pipeline_uploader_set_property;
  object_class->finalize = pipeline_uploader_finalize;
  resource_class->do_initialize = pipeline_uploader_do_initialize;
  resource_class->do_cleanup = pipeline_uploader_do_cleanup;
  resource_class->collect_metrics = pipeline_uploader_collect_metrics;
  PIPELINE_STAGE_CLASS (klass)->run_attempt = pipeline_uploader_run_attempt;
  exo_resource_class_set_resource_type (resource_class, "pipeline-uploader");

  properties[PROP_RECEIVER] =
    g_param_spec_string ("receiver", NULL, "The id of the pipeline-receiver to post to",
                         "receiver",
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_URL] =
    g_param_spec_string ("url", NULL, "Where to post instead (http://host:port/batches)", NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_SESSIONS] =
    g_param_spec_uint ("sessions", NULL, "The most HTTP sessions in the pool", 1, 16, 3,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
pipeline_uploader_init (PipelineUploader *self)
{
  self->receiver = g_strdup ("receiver");
  self->sessions = 3;
}
