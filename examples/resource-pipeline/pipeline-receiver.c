/* pipeline-receiver.c: the `pipeline-receiver` resource — the HTTP server the
 * uploader posts batches to, run in a thread of its own with its own
 * GMainContext, so that its 503s and dropped connections are real HTTP.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Threads: initialize and cleanup run in the resource's main context; they
 * start the server thread and wait for it.  The handshake cannot lose a
 * wakeup: the thread says "started" from an idle callback of its running
 * loop (or, when it cannot listen, before it ends), and the loop is quit
 * by an idle source attached to the thread's own context, which only the
 * running loop dispatches.  The SoupServer and its handlers live in the
 * server thread only.  The counters and the two dedup tables are shared
 * and guarded by `lock`; pipeline_receiver_get_stats() may be called from
 * any thread.
 *
 * It stores each batch once: a batch id (X-Batch-Id) seen before is
 * answered 200 and counted as a duplicate, and every row id is counted once
 * whatever batch brings it.  The store (tables and counters) belongs to the
 * object, not to one initialize: it survives a restart of the receiver (the
 * port may change then; the uploader asks for the URL at each attempt), so
 * "exactly once" holds across it.  Bodies, ids and tables are bounded (below); a
 * body too big, or without a Content-Length, is refused from the request's
 * head and its connection closed, unread.
 * With simulate-failures, the first SIMULATED_BATCHES batches meet a fixed
 * schedule of failures, by the order in which the receiver first saw them:
 * the 1st and 7th are answered 503 once; the 3rd and 9th are stored and
 * then their connection is closed without an answer (so they come again:
 * duplicates); the 5th and 11th lose their connection, then get a 503.
 */
#include "pipeline.h"

#include <libsoup/soup.h>

struct _PipelineReceiver
{
  ExoResource      parent_instance;

  guint            port;
  guint            delay_ms;
  gboolean         simulate_failures;

  GThread         *thread;
  GMainContext    *context;       /* the server thread's, while it serves */
  GMainLoop       *loop;          /* runs in it */

  GMutex           lock;
  GCond            started_cond;
  gboolean         started;
  GError          *start_error;
  char            *url;
  PipelineReceiverStats stats;
  GHashTable      *batches;       /* id -> BatchRecord */
  GHashTable      *rows;          /* set of gint64 row ids */
};

G_DEFINE_FINAL_TYPE (PipelineReceiver, pipeline_receiver, EXO_TYPE_RESOURCE)

enum { PROP_0, PROP_PORT, PROP_DELAY_MS, PROP_SIMULATE_FAILURES, PROP_URL, N_PROPS };
static GParamSpec *properties[N_PROPS];

#define MAX_BODY_BYTES     (4 * 1024 * 1024)
#define MAX_BATCH_ID       64
#define MAX_BATCHES        100000
#define MAX_ROWS           1000000
#define SIMULATED_BATCHES  12

typedef struct
{
  guint    ordinal;    /* 1, 2, … in the order first seen */
  guint    requests;
  gboolean stored;
} BatchRecord;

typedef enum {
  ACTION_ACCEPT,
  ACTION_UNAVAILABLE,       /* 503 */
  ACTION_DROP,              /* close the connection, store nothing */
  ACTION_ACCEPT_AND_DROP,   /* store, then close without answering */
} Action;

/* --- in the server thread ------------------------------------------------------ */

static Action
scheduled_failure (const BatchRecord *record)
{
  if (record->ordinal > SIMULATED_BATCHES)
    return ACTION_ACCEPT;
  switch (record->ordinal % 6)
    {
    case 1:
      return record->requests == 1 ? ACTION_UNAVAILABLE : ACTION_ACCEPT;
    case 3:
      return record->requests == 1 ? ACTION_ACCEPT_AND_DROP : ACTION_ACCEPT;
    case 5:
      return record->requests == 1 ? ACTION_DROP
           : record->requests == 2 ? ACTION_UNAVAILABLE : ACTION_ACCEPT;
    default:
      return ACTION_ACCEPT;
    }
}

static gboolean
valid_batch_id (const char *id)
{
  gsize n = id != NULL ? strlen (id) : 0;

  if (n == 0 || n > MAX_BATCH_ID)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isalnum (id[i]) && id[i] != '-' && id[i] != '_' && id[i] != '.')
      return FALSE;
  return TRUE;
}

/* The row ids of a body of JSON lines that each start with {"id":N, */
static GArray *
parse_row_ids (GBytes *body)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  gsize size;
  const char *data = g_bytes_get_data (body, &size);
  const char *end = data + size;

  while (data < end)
    {
      const char *eol = memchr (data, '\n', end - data);
      gsize len = (eol != NULL ? eol : end) - data;
      char digits[24];
      gsize n = 0;
      guint64 id;

      if (len < 8 || memcmp (data, "{\"id\":", 6) != 0)
        return NULL;
      while (6 + n < len && n < sizeof digits - 1 && g_ascii_isdigit (data[6 + n]))
        {
          digits[n] = data[6 + n];
          n++;
        }
      digits[n] = '\0';
      if (n == 0 || 6 + n >= len || data[6 + n] != ','
          || !g_ascii_string_to_unsigned (digits, 10, 1, G_MAXINT64, &id, NULL))
        return NULL;
      g_array_append_val (ids, id);
      data += len + 1;
    }
  return ids->len > 0 ? g_steal_pointer (&ids) : NULL;
}

static void
drop_connection (SoupServerMessage *message)
{
  g_autoptr(GIOStream) stream = soup_server_message_steal_connection (message);

  if (stream != NULL)
    g_io_stream_close (stream, NULL, NULL);
}

static void
refuse (PipelineReceiver  *self,
        SoupServerMessage *message,
        guint              status,
        const char        *why)
{
  g_mutex_lock (&self->lock);
  self->stats.refused++;
  g_mutex_unlock (&self->lock);
  soup_server_message_set_status (message, status, NULL);
  soup_server_message_set_response (message, "text/plain", SOUP_MEMORY_COPY, why, strlen (why));
}

/* Under the lock: stores the batch unless it came before (the caller
 * checked that its rows fit under MAX_ROWS). */
static void
store (PipelineReceiver *self,
       BatchRecord      *record,
       GArray           *ids)
{
  if (record->stored)
    {
      self->stats.duplicate_batches++;
      return;
    }
  record->stored = TRUE;
  self->stats.batches++;
  for (guint i = 0; i < ids->len; i++)
    {
      gint64 id = g_array_index (ids, gint64, i);

      if (g_hash_table_contains (self->rows, &id))
        self->stats.duplicate_rows++;
      else
        {
          g_hash_table_add (self->rows, g_memdup2 (&id, sizeof id));
          self->stats.rows++;
        }
    }
}

static void
respond (PipelineReceiver  *self,
         SoupServerMessage *message)
{
  const char *id = soup_message_headers_get_one (soup_server_message_get_request_headers (message),
                                                 "X-Batch-Id");
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GArray) ids = NULL;
  BatchRecord *record;
  Action action;

  g_mutex_lock (&self->lock);
  self->stats.requests++;
  g_mutex_unlock (&self->lock);

  if (strcmp (soup_server_message_get_method (message), SOUP_METHOD_POST) != 0)
    {
      refuse (self, message, SOUP_STATUS_METHOD_NOT_ALLOWED, "POST a batch\n");
      return;
    }
  if (!valid_batch_id (id))
    {
      refuse (self, message, SOUP_STATUS_BAD_REQUEST, "X-Batch-Id: 1 to 64 of A-Z a-z 0-9 - _ .\n");
      return;
    }
  /* at most MAX_BODY_BYTES: early_cb saw its Content-Length */
  body = soup_message_body_flatten (soup_server_message_get_request_body (message));
  ids = parse_row_ids (body);
  if (ids == NULL)
    {
      refuse (self, message, SOUP_STATUS_BAD_REQUEST, "one {\"id\":N,…} a line\n");
      return;
    }

  g_mutex_lock (&self->lock);
  record = g_hash_table_lookup (self->batches, id);
  if (record == NULL && g_hash_table_size (self->batches) >= MAX_BATCHES)
    {
      g_mutex_unlock (&self->lock);
      refuse (self, message, SOUP_STATUS_INSUFFICIENT_STORAGE, "too many batches\n");
      return;
    }
  if (record == NULL)
    {
      record = g_new0 (BatchRecord, 1);
      record->ordinal = g_hash_table_size (self->batches) + 1;
      g_hash_table_insert (self->batches, g_strdup (id), record);
    }
  record->requests++;
  action = self->simulate_failures ? scheduled_failure (record) : ACTION_ACCEPT;
  if ((action == ACTION_ACCEPT || action == ACTION_ACCEPT_AND_DROP) && !record->stored
      && self->stats.rows + ids->len > MAX_ROWS)
    {
      g_mutex_unlock (&self->lock);
      refuse (self, message, SOUP_STATUS_INSUFFICIENT_STORAGE, "the receiver holds 1000000 rows\n");
      return;
    }
  if (action == ACTION_UNAVAILABLE)
    self->stats.unavailable++;
  else if (action == ACTION_DROP || action == ACTION_ACCEPT_AND_DROP)
    self->stats.dropped++;
  if (action == ACTION_ACCEPT || action == ACTION_ACCEPT_AND_DROP)
    store (self, record, ids);
  g_mutex_unlock (&self->lock);

  switch (action)
    {
    case ACTION_UNAVAILABLE:
      soup_server_message_set_status (message, SOUP_STATUS_SERVICE_UNAVAILABLE, NULL);
      break;
    case ACTION_DROP:
    case ACTION_ACCEPT_AND_DROP:
      drop_connection (message);
      break;
    case ACTION_ACCEPT:
      soup_server_message_set_status (message, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (message, "text/plain", SOUP_MEMORY_STATIC, "stored\n", 7);
      break;
    }
}

static gboolean
delayed_respond_cb (gpointer user_data)
{
  SoupServerMessage *message = user_data;
  PipelineReceiver *self = g_object_get_data (G_OBJECT (message), "pipeline-receiver");

  soup_server_message_unpause (message);
  respond (self, message);
  return G_SOURCE_REMOVE;
}

static void
batches_cb (SoupServer        *server,
            SoupServerMessage *message,
            const char        *path,
            GHashTable        *query,
            gpointer           user_data)
{
  PipelineReceiver *self = user_data;
  GSource *delay;

  if (self->delay_ms == 0)
    {
      respond (self, message);
      return;
    }
  /* answer later without holding up the other connections */
  soup_server_message_pause (message);
  g_object_set_data (G_OBJECT (message), "pipeline-receiver", self);
  delay = g_timeout_source_new (self->delay_ms);
  g_source_set_callback (delay, delayed_respond_cb, g_object_ref (message), g_object_unref);
  g_source_attach (delay, g_main_context_get_thread_default ());
  g_source_unref (delay);
}

/* Answers from the request's head alone and closes the connection:
 * libsoup 3.2 would read the whole body before answering, however big. */
static void
refuse_unread (PipelineReceiver  *self,
               SoupServerMessage *message,
               guint              status)
{
  g_autoptr(GIOStream) stream = soup_server_message_steal_connection (message);
  g_autofree char *head = g_strdup_printf ("HTTP/1.1 %u %s\r\nConnection: close\r\n"
                                           "Content-Length: 0\r\n\r\n",
                                           status, soup_status_get_phrase (status));

  g_mutex_lock (&self->lock);
  self->stats.refused++;
  g_mutex_unlock (&self->lock);
  if (stream == NULL)
    return;
  /* a few bytes into an empty socket buffer: this does not wait */
  g_output_stream_write_all (g_io_stream_get_output_stream (stream), head, strlen (head),
                             NULL, NULL, NULL);
  g_io_stream_close (stream, NULL, NULL);
}

/* Refuses a body that is too big, or of a size not said, before it is read. */
static void
early_cb (SoupServer        *server,
          SoupServerMessage *message,
          const char        *path,
          GHashTable        *query,
          gpointer           user_data)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (message);
  SoupEncoding encoding = soup_message_headers_get_encoding (headers);

  if (encoding != SOUP_ENCODING_CONTENT_LENGTH && encoding != SOUP_ENCODING_NONE)
    refuse_unread (user_data, message, SOUP_STATUS_LENGTH_REQUIRED);
  else if (soup_message_headers_get_content_length (headers) > MAX_BODY_BYTES)
    refuse_unread (user_data, message, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE);
}

/* In the server thread, once its loop runs: what initialize waits for. */
static gboolean
started_cb (gpointer data)
{
  PipelineReceiver *self = data;

  g_mutex_lock (&self->lock);
  self->started = TRUE;
  g_cond_signal (&self->started_cond);
  g_mutex_unlock (&self->lock);
  return G_SOURCE_REMOVE;
}

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static gpointer
server_thread (gpointer data)
{
  PipelineReceiver *self = data;
  GMainContext *context = g_main_context_new ();
  g_autoptr(SoupServer) server = NULL;
  GError *error = NULL;

  g_main_context_push_thread_default (context);
  server = soup_server_new ("server-header", "exo-pipeline-receiver ", NULL);
  soup_server_add_early_handler (server, "/batches", early_cb, self, NULL);
  soup_server_add_handler (server, "/batches", batches_cb, self, NULL);
  soup_server_listen_local (server, self->port, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);

  if (error != NULL)
    {
      g_mutex_lock (&self->lock);
      self->start_error = error;
      self->started = TRUE;
      g_cond_signal (&self->started_cond);
      g_mutex_unlock (&self->lock);
    }
  else
    {
      GSList *uris = soup_server_get_uris (server);
      GMainLoop *loop = g_main_loop_new (context, FALSE);
      GSource *started = g_idle_source_new ();

      /* read by the resource's context once started_cb said so */
      g_mutex_lock (&self->lock);
      self->url = g_strdup_printf ("http://127.0.0.1:%d/batches", g_uri_get_port (uris->data));
      self->context = g_main_context_ref (context);
      self->loop = g_main_loop_ref (loop);
      g_mutex_unlock (&self->lock);
      g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

      g_source_set_callback (started, started_cb, self, NULL);
      g_source_attach (started, context);
      g_source_unref (started);
      g_main_loop_run (loop);   /* until quit_cb */
      g_main_loop_unref (loop);
    }

  soup_server_disconnect (server);   /* the listener and every connection */
  g_clear_object (&server);
  while (g_main_context_iteration (context, FALSE))
    ;
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);   /* frees what is still attached, paused answers too */
  return NULL;
}

/* --- in the resource's context --------------------------------------------------- */

/* Called only once initialize saw the thread start (or fail to). */
static void
stop_thread (PipelineReceiver *self)
{
  if (self->thread == NULL)
    return;
  if (self->context != NULL)
    {
      /* dispatched by the running loop, however soon after its start this comes */
      GSource *quit = g_idle_source_new ();

      g_source_set_priority (quit, G_PRIORITY_HIGH);
      g_source_set_callback (quit, quit_cb, g_main_loop_ref (self->loop),
                             (GDestroyNotify) g_main_loop_unref);
      g_source_attach (quit, self->context);
      g_source_unref (quit);
    }
  g_thread_join (g_steal_pointer (&self->thread));
  pipeline_ledger_close (PIPELINE_HANDLE_SERVER_THREAD);
  g_clear_pointer (&self->loop, g_main_loop_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->url, g_free);
}

static void
pipeline_receiver_do_initialize (ExoResource *resource,
                                 GTask       *task)
{
  PipelineReceiver *self = PIPELINE_RECEIVER (resource);
  GError *error = NULL;

  stop_thread (self);   /* initialized twice without a cleanup: one thread at a time */
  /* the store is kept: a batch stored before a restart is still stored */
  g_mutex_lock (&self->lock);
  self->started = FALSE;
  g_mutex_unlock (&self->lock);

  self->thread = g_thread_try_new ("pipeline-receiver", server_thread, self, &error);
  if (self->thread == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  pipeline_ledger_open (PIPELINE_HANDLE_SERVER_THREAD);

  /* it listens and runs its loop, or fails to listen, at once */
  g_mutex_lock (&self->lock);
  while (!self->started)
    g_cond_wait (&self->started_cond, &self->lock);
  error = g_steal_pointer (&self->start_error);
  g_mutex_unlock (&self->lock);

  if (error != NULL)
    {
      g_prefix_error (&error, "cannot listen on 127.0.0.1:%u: ", self->port);
      stop_thread (self);
    }
  else
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_URL]);
  exo_task_return_result (task, error == NULL, error);
}

static void
pipeline_receiver_do_cleanup (ExoResource *resource,
                              GTask       *task)
{
  stop_thread (PIPELINE_RECEIVER (resource));
  g_task_return_boolean (task, TRUE);
}

/**
 * pipeline_receiver_get_url:
 *
 * Returns: (nullable): where to post batches, while the receiver listens
 */
const char *
pipeline_receiver_get_url (PipelineReceiver *self)
{
  return self->url;
}

void
pipeline_receiver_get_stats (PipelineReceiver      *self,
                             PipelineReceiverStats *stats)
{
  g_mutex_lock (&self->lock);
  *stats = self->stats;
  g_mutex_unlock (&self->lock);
}

static void
pipeline_receiver_collect_metrics (ExoResource  *resource,
                                   GVariantDict *metrics)
{
  PipelineReceiverStats stats;

  EXO_RESOURCE_CLASS (pipeline_receiver_parent_class)->collect_metrics (resource, metrics);
  pipeline_receiver_get_stats (PIPELINE_RECEIVER (resource), &stats);
  g_variant_dict_insert (metrics, "requests", "t", stats.requests);
  g_variant_dict_insert (metrics, "batches", "t", stats.batches);
  g_variant_dict_insert (metrics, "rows", "t", stats.rows);
  g_variant_dict_insert (metrics, "duplicate-batches", "t", stats.duplicate_batches);
  g_variant_dict_insert (metrics, "duplicate-rows", "t", stats.duplicate_rows);
  g_variant_dict_insert (metrics, "answered-503", "t", stats.unavailable);
  g_variant_dict_insert (metrics, "dropped", "t", stats.dropped);
  g_variant_dict_insert (metrics, "refused", "t", stats.refused);
}

static void
pipeline_receiver_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  PipelineReceiver *self = PIPELINE_RECEIVER (object);

  switch (prop_id)
    {
    case PROP_PORT:
      g_value_set_uint (value, self->port);
      break;
    case PROP_DELAY_MS:
      g_value_set_uint (value, self->delay_ms);
      break;
    case PROP_SIMULATE_FAILURES:
      g_value_set_boolean (value, self->simulate_failures);
      break;
    case PROP_URL:
      g_value_set_string (value, self->url);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pipeline_receiver_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  PipelineReceiver *self = PIPELINE_RECEIVER (object);

  /* read by the server thread: set while it does not run */
  g_return_if_fail (self->thread == NULL);
  switch (prop_id)
    {
    case PROP_PORT:
      self->port = g_value_get_uint (value);
      break;
    case PROP_DELAY_MS:
      self->delay_ms = g_value_get_uint (value);
      break;
    case PROP_SIMULATE_FAILURES:
      self->simulate_failures = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  g_object_notify_by_pspec (object, pspec);
}

static void
pipeline_receiver_finalize (GObject *object)
{
  PipelineReceiver *self = PIPELINE_RECEIVER (object);

  stop_thread (self);
  g_hash_table_unref (self->batches);
  g_hash_table_unref (self->rows);
  g_clear_error (&self->start_error);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->started_cond);
  G_OBJECT_CLASS (pipeline_receiver_parent_class)->finalize (object);
}

static void
pipeline_receiver_class_init (PipelineReceiverClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->get_property = pipeline_receiver_get_property;
  object_class->set_property = pipeline_receiver_set_property;
  object_class->finalize = pipeline_receiver_finalize;
  resource_class->do_initialize = pipeline_receiver_do_initialize;
  resource_class->do_cleanup = pipeline_receiver_do_cleanup;
  resource_class->collect_metrics = pipeline_receiver_collect_metrics;
  exo_resource_class_set_resource_type (resource_class, "pipeline-receiver");

  properties[PROP_PORT] =
    g_param_spec_uint ("port", NULL, "The port on 127.0.0.1 (0: any free one)", 0, 65535, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_DELAY_MS] =
    g_param_spec_uint ("delay-ms", NULL, "How long each answer takes (ms)", 0, 10000, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_SIMULATE_FAILURES] =
    g_param_spec_boolean ("simulate-failures", NULL,
                          "Answer 503 and drop connections on a schedule", FALSE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  properties[PROP_URL] =
    g_param_spec_string ("url", NULL, "Where to post batches, while listening", NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
pipeline_receiver_init (PipelineReceiver *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->started_cond);
  self->batches = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->rows = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
}
