/* exo-test-util.c: a configurable resource and synchronous wrappers for tests.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

G_DEFINE_FINAL_TYPE (ExoTestResource, exo_test_resource, EXO_TYPE_MANAGED_RESOURCE)

static GString *test_log;
static GMutex test_log_lock;

void
exo_test_log_reset (void)
{
  g_mutex_lock (&test_log_lock);
  if (test_log == NULL)
    test_log = g_string_new (NULL);
  g_string_truncate (test_log, 0);
  g_mutex_unlock (&test_log_lock);
}

void
exo_test_log_append (const char *what,
                     const char *id)
{
  g_mutex_lock (&test_log_lock);
  if (test_log == NULL)
    test_log = g_string_new (NULL);
  if (test_log->len > 0)
    g_string_append_c (test_log, ',');
  g_string_append_printf (test_log, "%s:%s", what, id);
  g_mutex_unlock (&test_log_lock);
}

const char *
exo_test_log_get (void)
{
  if (test_log == NULL)
    test_log = g_string_new (NULL);
  return test_log->str;
}

/* --- the resource ------------------------------------------------------ */

typedef struct
{
  GTask   *task;
  GSource *timer;
  gulong   cancel_id;
  gint     refcount;
  gboolean init;
  gboolean done;
} Pending;

static void
pending_unref (gpointer data)
{
  Pending *pending = data;

  if (--pending->refcount == 0)
    g_free (pending);
}

static void
pending_finish (Pending *pending)
{
  ExoTestResource *self = g_task_get_source_object (pending->task);
  GCancellable *cancellable = g_task_get_cancellable (pending->task);

  pending->done = TRUE;
  if (pending->cancel_id != 0)
    g_cancellable_disconnect (cancellable, pending->cancel_id);
  pending->cancel_id = 0;

  if (pending->init)
    {
      if (!self->ignore_cancel && cancellable != NULL && g_cancellable_is_cancelled (cancellable))
        {
          exo_test_log_append ("init-cancelled", exo_resource_get_id (EXO_RESOURCE (self)));
          g_task_return_new_error (pending->task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                   "test init cancelled");
        }
      else if (self->fail_inits > 0)
        {
          self->fail_inits--;
          exo_test_log_append ("init-failed", exo_resource_get_id (EXO_RESOURCE (self)));
          g_task_return_new_error (pending->task, EXO_RESOURCE_ERROR,
                                   self->fail_fatal ? EXO_RESOURCE_ERROR_FATAL : EXO_RESOURCE_ERROR_FAILED,
                                   "test init of '%s' failed",
                                   exo_resource_get_id (EXO_RESOURCE (self)));
        }
      else
        {
          self->n_init_ok++;
          self->live++;
          exo_test_log_append ("init-done", exo_resource_get_id (EXO_RESOURCE (self)));
          g_task_return_boolean (pending->task, TRUE);
        }
    }
  else
    {
      exo_test_log_append ("cleanup-done", exo_resource_get_id (EXO_RESOURCE (self)));
      if (self->fail_cleanup)
        g_task_return_new_error (pending->task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                                 "test cleanup of '%s' failed",
                                 exo_resource_get_id (EXO_RESOURCE (self)));
      else
        g_task_return_boolean (pending->task, TRUE);
    }

  g_clear_object (&pending->task);
  pending_unref (pending);
}

static gboolean
pending_timer_cb (gpointer data)
{
  Pending *pending = data;

  g_clear_pointer (&pending->timer, g_source_unref);
  pending_finish (pending);
  return G_SOURCE_REMOVE;
}

static gboolean
pending_cancel_idle_cb (gpointer data)
{
  Pending *pending = data;

  if (pending->done)
    return G_SOURCE_REMOVE;
  if (pending->timer != NULL)
    {
      g_source_destroy (pending->timer);
      g_clear_pointer (&pending->timer, g_source_unref);
    }
  pending_finish (pending);
  return G_SOURCE_REMOVE;
}

static void
pending_cancelled_cb (GCancellable *cancellable,
                      gpointer      data)
{
  Pending *pending = data;
  ExoTestResource *self = g_task_get_source_object (pending->task);
  GSource *idle;

  if (self->ignore_cancel)
    return;
  /* Finish from the resource's context, not from inside cancel(). */
  idle = g_idle_source_new ();
  pending->refcount++;
  g_source_set_callback (idle, pending_cancel_idle_cb, pending, pending_unref);
  g_source_attach (idle, exo_resource_get_context (EXO_RESOURCE (self)));
  g_source_unref (idle);
}

static void
run_maybe_delayed (ExoTestResource *self,
                   GTask           *task,
                   guint            delay_ms,
                   gboolean         init)
{
  Pending *pending = g_new0 (Pending, 1);
  GCancellable *cancellable = g_task_get_cancellable (task);

  pending->task = g_object_ref (task);
  pending->init = init;
  pending->refcount = 1;

  if (delay_ms == 0)
    {
      pending_finish (pending);
      return;
    }

  pending->timer = g_timeout_source_new (delay_ms);
  g_source_set_callback (pending->timer, pending_timer_cb, pending, NULL);
  g_source_attach (pending->timer, exo_resource_get_context (EXO_RESOURCE (self)));
  if (init && cancellable != NULL)
    pending->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (pending_cancelled_cb),
                                                pending, NULL);
}

static void
exo_test_resource_do_initialize (ExoResource *resource,
                                 GTask       *task)
{
  ExoTestResource *self = EXO_TEST_RESOURCE (resource);

  self->n_init_calls++;
  exo_test_log_append ("init", exo_resource_get_id (resource));
  run_maybe_delayed (self, task, self->init_delay_ms, TRUE);
}

static void
exo_test_resource_do_cleanup (ExoResource *resource,
                              GTask       *task)
{
  ExoTestResource *self = EXO_TEST_RESOURCE (resource);

  self->n_cleanup_calls++;
  if (self->live > 0)
    self->live--;
  exo_test_log_append ("cleanup", exo_resource_get_id (resource));
  run_maybe_delayed (self, task, self->cleanup_delay_ms, FALSE);
}

static void
exo_test_resource_do_check_health (ExoResource *resource,
                                   GTask       *task)
{
  ExoTestResource *self = EXO_TEST_RESOURCE (resource);

  self->n_health_calls++;
  if (self->healthy)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                             "test resource '%s' is unhealthy", exo_resource_get_id (resource));
}

static void
exo_test_resource_collect_metrics (ExoResource  *resource,
                                   GVariantDict *metrics)
{
  ExoTestResource *self = EXO_TEST_RESOURCE (resource);

  EXO_RESOURCE_CLASS (exo_test_resource_parent_class)->collect_metrics (resource, metrics);
  g_variant_dict_insert (metrics, "init-calls", "u", self->n_init_calls);
}

static void
exo_test_resource_class_init (ExoTestResourceClass *klass)
{
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  resource_class->do_initialize = exo_test_resource_do_initialize;
  resource_class->do_cleanup = exo_test_resource_do_cleanup;
  resource_class->do_check_health = exo_test_resource_do_check_health;
  resource_class->collect_metrics = exo_test_resource_collect_metrics;
  exo_resource_class_set_resource_type (resource_class, "test");
}

static void
exo_test_resource_init (ExoTestResource *self)
{
  self->healthy = TRUE;
}

ExoTestResource *
exo_test_resource_new (const char *id)
{
  return g_object_new (EXO_TYPE_TEST_RESOURCE, "id", id, NULL);
}

/* --- waiting ----------------------------------------------------------- */

void
exo_test_store_result (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  GAsyncResult **out = user_data;

  g_assert_null (*out);
  *out = g_object_ref (result);
}

gboolean
exo_test_wait_result (GAsyncResult **result,
                      guint          timeout_ms)
{
  return exo_wait_for_result (NULL, result, timeout_ms);
}

gboolean
exo_test_initialize (ExoResource  *resource,
                     GError      **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  exo_resource_initialize_async (resource, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 30000));
  return exo_resource_initialize_finish (resource, result, error);
}

gboolean
exo_test_cleanup (ExoResource  *resource,
                  GError      **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  exo_resource_cleanup_async (resource, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 30000));
  return exo_resource_cleanup_finish (resource, result, error);
}

gboolean
exo_test_check_health (ExoResource  *resource,
                       GError      **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  exo_resource_check_health_async (resource, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 30000));
  return exo_resource_check_health_finish (resource, result, error);
}

static gboolean
timeout_flag_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

gboolean
exo_test_spin_until (gboolean (*cond) (gpointer data),
                     gpointer   data,
                     guint      timeout_ms)
{
  gboolean expired = FALSE;
  GSource *timer = g_timeout_source_new (timeout_ms);
  GMainContext *context = g_main_context_ref_thread_default ();

  g_source_set_callback (timer, timeout_flag_cb, &expired, NULL);
  g_source_attach (timer, context);

  while (!cond (data) && !expired)
    g_main_context_iteration (context, TRUE);

  g_source_destroy (timer);
  g_source_unref (timer);
  g_main_context_unref (context);
  return cond (data);
}

typedef struct
{
  ExoResource      *resource;
  ExoResourceState  state;
} StateWait;

static gboolean
state_reached (gpointer data)
{
  StateWait *wait = data;
  return exo_resource_get_state (wait->resource) == wait->state;
}

gboolean
exo_test_wait_for_state (ExoResource      *resource,
                         ExoResourceState  state,
                         guint             timeout_ms)
{
  StateWait wait = { resource, state };
  return exo_test_spin_until (state_reached, &wait, timeout_ms);
}

static gboolean
never (gpointer data)
{
  return FALSE;
}

void
exo_test_spin (guint ms)
{
  exo_test_spin_until (never, NULL, ms);
}

guint
exo_test_slow_factor (void)
{
  static guint factor;

  if (factor == 0)
    {
      const char *slow = g_getenv ("EXO_TEST_SLOW");

      factor = 1;
      if (slow != NULL && g_ascii_strtoull (slow, NULL, 10) > 0)
        factor = (guint) g_ascii_strtoull (slow, NULL, 10);
      else if (g_getenv ("EXO_TEST_UNDER_VALGRIND") != NULL)
        factor = 10;
    }
  return factor;
}

/* $@variable, else @relative to this program's folder (a build tree run
 * by hand or by gtester) when that exists, else NULL.  Main thread only. */
const char *
exo_test_build_path (const char *variable,
                     const char *relative)
{
  static GHashTable *found;
  const char *value = g_getenv (variable);
  g_autofree char *self = NULL, *dir = NULL;
  char *path;

  if (value != NULL)
    return value;
  if (found == NULL)
    found = g_hash_table_new (g_str_hash, g_str_equal);
  if ((path = g_hash_table_lookup (found, variable)) != NULL)
    return path;
  self = g_file_read_link ("/proc/self/exe", NULL);
  if (self == NULL)
    return NULL;
  dir = g_path_get_dirname (self);
  path = g_canonicalize_filename (relative, dir);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_free (path);
      return NULL;
    }
  g_hash_table_insert (found, (gpointer) variable, path);   /* kept for the run */
  return path;
}
