/* test-resource-operations.c: ExoResource beyond initialize and cleanup —
 * vfuncs that let their task go, ensure_ready, report_error, restart,
 * re-entrant transition order, metrics chained up, ExoAsyncResource ids.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-resource (main() in test-resource.c).  The test types here
 * (TestDropResource, TestMetricsResource, TestPlainAsync) are private to
 * this file.  One thread: the test's thread-default main context.
 */
#include "resource-fixture.h"

/* --- vfuncs that let their task go ---------------------------------------- */

/* A resource whose vfuncs can return without completing their task and
 * without keeping it: what a binding's implementation does when it raises
 * (PyGObject prints the exception and returns). */
#define TEST_TYPE_DROP_RESOURCE (test_drop_resource_get_type ())
G_DECLARE_FINAL_TYPE (TestDropResource, test_drop_resource, TEST, DROP_RESOURCE, ExoResource)

struct _TestDropResource
{
  ExoResource parent_instance;
  gboolean    drop_init;
  gboolean    drop_init_later;   /* keep the task a while, then drop it */
  gboolean    drop_cleanup;
  gboolean    drop_health;
  guint       n_cleanup_calls;
};

G_DEFINE_FINAL_TYPE (TestDropResource, test_drop_resource, EXO_TYPE_RESOURCE)

static gboolean
drop_later_cb (gpointer data)
{
  g_object_unref (data);   /* the last reference: uncompleted */
  return G_SOURCE_REMOVE;
}

static void
drop_do_initialize (ExoResource *resource,
                    GTask       *task)
{
  TestDropResource *self = TEST_DROP_RESOURCE (resource);

  if (self->drop_init_later)
    g_timeout_add (20, drop_later_cb, g_object_ref (task));
  else if (!self->drop_init)
    g_task_return_boolean (task, TRUE);
}

static void
drop_do_cleanup (ExoResource *resource,
                 GTask       *task)
{
  TestDropResource *self = TEST_DROP_RESOURCE (resource);

  self->n_cleanup_calls++;
  if (!self->drop_cleanup)
    g_task_return_boolean (task, TRUE);
}

static void
drop_do_check_health (ExoResource *resource,
                      GTask       *task)
{
  if (!TEST_DROP_RESOURCE (resource)->drop_health)
    g_task_return_boolean (task, TRUE);
}

static void
test_drop_resource_class_init (TestDropResourceClass *klass)
{
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  resource_class->do_initialize = drop_do_initialize;
  resource_class->do_cleanup = drop_do_cleanup;
  resource_class->do_check_health = drop_do_check_health;
}

static void
test_drop_resource_init (TestDropResource *self)
{
}

/* Runs an _async/_finish pair of ExoResource with a bound: without the
 * check, the dropped task would leave the caller waiting for ever. */
typedef void     (*AsyncCall)  (ExoResource *, GCancellable *, GAsyncReadyCallback, gpointer);
typedef gboolean (*FinishCall) (ExoResource *, GAsyncResult *, GError **);

static gboolean
call_bounded (ExoResource  *resource,
              AsyncCall     start,
              FinishCall    finish,
              GError      **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  start (resource, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000 * exo_test_slow_factor ()));
  return finish (resource, result, error);
}

static void
test_vfunc_drops_task (void)
{
  g_autoptr(TestDropResource) r = g_object_new (TEST_TYPE_DROP_RESOURCE, "id", "dropper", NULL);
  g_autoptr(GError) error = NULL;

  /* do_initialize returns without completing its task: the attempt fails,
   * the half-made resource is cleaned up, the resource is in error */
  r->drop_init = TRUE;
  g_assert_false (call_bounded (EXO_RESOURCE (r), exo_resource_initialize_async,
                                exo_resource_initialize_finish, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "do_initialize of 'dropper' returned without "
                                            "completing its task"));
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_cmpuint (r->n_cleanup_calls, ==, 1);
  g_clear_error (&error);

  /* the same when it kept the task a while and then let it go */
  r->drop_init = FALSE;
  r->drop_init_later = TRUE;
  g_assert_false (call_bounded (EXO_RESOURCE (r), exo_resource_initialize_async,
                                exo_resource_initialize_finish, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_clear_error (&error);

  /* a health check that lets its task go is a failed check */
  r->drop_init_later = FALSE;
  g_assert_true (call_bounded (EXO_RESOURCE (r), exo_resource_initialize_async,
                               exo_resource_initialize_finish, NULL));
  r->drop_health = TRUE;
  g_assert_false (call_bounded (EXO_RESOURCE (r), exo_resource_check_health_async,
                                exo_resource_check_health_finish, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "do_check_health of 'dropper'"));
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_DEGRADED);
  g_clear_error (&error);

  /* a cleanup that lets its task go still ends in closed, with the error */
  r->drop_cleanup = TRUE;
  g_assert_false (call_bounded (EXO_RESOURCE (r), exo_resource_cleanup_async,
                                exo_resource_cleanup_finish, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "do_cleanup of 'dropper'"));
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSED);
}

/* --- ensure_ready, report_error, restart -------------------------------- */

static void
test_ensure_ready (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("ensure");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  exo_resource_ensure_ready_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_true (exo_resource_ensure_ready_finish (EXO_RESOURCE (r), result, NULL));
  g_assert_cmpuint (r->n_init_calls, ==, 1);
  g_clear_object (&result);

  /* ready: no new attempt */
  exo_resource_ensure_ready_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_true (exo_resource_ensure_ready_finish (EXO_RESOURCE (r), result, NULL));
  g_assert_cmpuint (r->n_init_calls, ==, 1);
  g_clear_object (&result);

  /* closed: fails fast, no attempt */
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
  exo_resource_ensure_ready_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_false (exo_resource_ensure_ready_finish (EXO_RESOURCE (r), result, &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED);
  g_assert_cmpuint (r->n_init_calls, ==, 1);
}

static void
test_initialize_while_closing (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("closing");
  g_autoptr(GAsyncResult) cleanup_res = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  r->cleanup_delay_ms = 50;
  exo_resource_cleanup_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &cleanup_res);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_CLOSING);
  g_assert_false (exo_test_initialize (EXO_RESOURCE (r), &error));
  g_assert_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_CLOSED);
  g_assert_true (exo_test_wait_result (&cleanup_res, 5000));
  g_assert_true (exo_resource_cleanup_finish (EXO_RESOURCE (r), cleanup_res, NULL));
}

static void
test_report_error_and_reinit (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("crash");
  g_autoptr(GError) crash = g_error_new (G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, "peer went away");

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  exo_resource_report_error (EXO_RESOURCE (r), crash);
  g_assert_cmpint (exo_resource_get_state (EXO_RESOURCE (r)), ==, EXO_RESOURCE_STATE_ERROR);
  g_assert_error ((GError *) exo_resource_get_last_error (EXO_RESOURCE (r)),
                  G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  g_assert_cmpuint (exo_resource_get_error_count (EXO_RESOURCE (r)), ==, 1);

  /* re-initialize cleans up what the failed instance left first */
  exo_test_log_reset ();
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_assert_cmpstr (exo_test_log_get (), ==,
                   "cleanup:crash,cleanup-done:crash,init:crash,init-done:crash");
  g_assert_cmpint (r->live, ==, 1);

  exo_resource_reset (EXO_RESOURCE (r));
  g_assert_null (exo_resource_get_last_error (EXO_RESOURCE (r)));
  g_assert_cmpuint (exo_resource_get_error_count (EXO_RESOURCE (r)), ==, 0);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

static void
test_restart (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("restart");
  g_autoptr(GAsyncResult) result = NULL;
  Recorder rec = { g_array_new (FALSE, FALSE, sizeof (guint)) };
  g_autofree char *seq = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_signal_connect (r, "state-changed", G_CALLBACK (record_cb), &rec);
  exo_resource_restart_async (EXO_RESOURCE (r), NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 5000));
  g_assert_true (exo_resource_restart_finish (EXO_RESOURCE (r), result, NULL));
  seq = recorder_string (&rec);
  g_assert_cmpstr (seq, ==, "ready>closing>closed>initializing>ready");
  g_assert_cmpuint (r->n_init_calls, ==, 2);
  g_assert_cmpuint (r->n_cleanup_calls, ==, 1);
  g_signal_handlers_disconnect_by_data (r, &rec);
  g_array_unref (rec.transitions);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* A direct subclass of ExoResource that chains up in collect_metrics, as
 * ExoResourceClass documents. */
#define TEST_TYPE_METRICS_RESOURCE (test_metrics_resource_get_type ())
G_DECLARE_FINAL_TYPE (TestMetricsResource, test_metrics_resource, TEST, METRICS_RESOURCE, ExoResource)

struct _TestMetricsResource
{
  ExoResource parent_instance;
};

G_DEFINE_FINAL_TYPE (TestMetricsResource, test_metrics_resource, EXO_TYPE_RESOURCE)

static void
test_metrics_resource_collect_metrics (ExoResource  *resource,
                                       GVariantDict *metrics)
{
  EXO_RESOURCE_CLASS (test_metrics_resource_parent_class)->collect_metrics (resource, metrics);
  g_variant_dict_insert (metrics, "answer", "u", 42);
}

static void
test_metrics_resource_class_init (TestMetricsResourceClass *klass)
{
  EXO_RESOURCE_CLASS (klass)->collect_metrics = test_metrics_resource_collect_metrics;
}

static void
test_metrics_resource_init (TestMetricsResource *self)
{
}

static void
test_metrics_chain_up (void)
{
  g_autoptr(TestMetricsResource) r = g_object_new (TEST_TYPE_METRICS_RESOURCE, "id", "metrics", NULL);
  g_autoptr(GVariant) metrics = NULL;
  guint answer = 0;

  /* The base class has a collect_metrics to chain up to… */
  g_assert_nonnull (EXO_RESOURCE_CLASS (test_metrics_resource_parent_class)->collect_metrics);

  /* …that adds nothing: the subclass gets exactly its own metric. */
  metrics = exo_resource_get_metrics (EXO_RESOURCE (r));
  g_assert_true (g_variant_is_of_type (metrics, G_VARIANT_TYPE_VARDICT));
  g_assert_cmpuint (g_variant_n_children (metrics), ==, 1);
  g_assert_true (g_variant_lookup (metrics, "answer", "u", &answer));
  g_assert_cmpuint (answer, ==, 42);

  /* The same once it is ready. */
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  g_clear_pointer (&metrics, g_variant_unref);
  metrics = exo_resource_get_metrics (EXO_RESOURCE (r));
  g_assert_cmpuint (g_variant_n_children (metrics), ==, 1);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (r), NULL));
}

/* An ExoAsyncResource that is not an ExoResource: its id is read with
 * g_object_get(), and exo_async_resource_get_id() keeps a copy for it. */
#define TEST_TYPE_PLAIN_ASYNC (test_plain_async_get_type ())
G_DECLARE_FINAL_TYPE (TestPlainAsync, test_plain_async, TEST, PLAIN_ASYNC, GObject)

struct _TestPlainAsync
{
  GObject  parent_instance;
  char    *id;
};

enum {
  PLAIN_PROP_0,
  PLAIN_PROP_ID,
  PLAIN_PROP_RESOURCE_TYPE,
  PLAIN_PROP_DISPLAY_NAME,
  PLAIN_PROP_STATE,
};

static void
test_plain_async_iface_init (ExoAsyncResourceInterface *iface)
{
}

G_DEFINE_FINAL_TYPE_WITH_CODE (TestPlainAsync, test_plain_async, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (EXO_TYPE_ASYNC_RESOURCE,
                                                      test_plain_async_iface_init))

static void
test_plain_async_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  TestPlainAsync *self = TEST_PLAIN_ASYNC (object);

  switch (prop_id)
    {
    case PLAIN_PROP_ID:
    case PLAIN_PROP_DISPLAY_NAME:
      g_value_set_string (value, self->id);
      break;
    case PLAIN_PROP_RESOURCE_TYPE:
      g_value_set_string (value, "plain");
      break;
    case PLAIN_PROP_STATE:
      g_value_set_enum (value, EXO_RESOURCE_STATE_UNINITIALIZED);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
test_plain_async_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  TestPlainAsync *self = TEST_PLAIN_ASYNC (object);

  switch (prop_id)
    {
    case PLAIN_PROP_ID:
      g_free (self->id);
      self->id = g_value_dup_string (value);
      break;
    case PLAIN_PROP_RESOURCE_TYPE:
    case PLAIN_PROP_DISPLAY_NAME:
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
test_plain_async_finalize (GObject *object)
{
  g_free (TEST_PLAIN_ASYNC (object)->id);
  G_OBJECT_CLASS (test_plain_async_parent_class)->finalize (object);
}

static void
test_plain_async_class_init (TestPlainAsyncClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = test_plain_async_get_property;
  object_class->set_property = test_plain_async_set_property;
  object_class->finalize = test_plain_async_finalize;
  g_object_class_override_property (object_class, PLAIN_PROP_ID, "id");
  g_object_class_override_property (object_class, PLAIN_PROP_RESOURCE_TYPE, "resource-type");
  g_object_class_override_property (object_class, PLAIN_PROP_DISPLAY_NAME, "display-name");
  g_object_class_override_property (object_class, PLAIN_PROP_STATE, "state");
}

static void
test_plain_async_init (TestPlainAsync *self)
{
}

static void
test_async_id_stable (void)
{
  g_autoptr(TestPlainAsync) r = g_object_new (TEST_TYPE_PLAIN_ASYNC, "id", "plain-1", NULL);
  const char *first, *second;

  first = exo_async_resource_get_id (EXO_ASYNC_RESOURCE (r));
  g_assert_cmpstr (first, ==, "plain-1");

  /* A second call must not free what the first returned (ASan and valgrind
   * see the use after free here)… */
  second = exo_async_resource_get_id (EXO_ASYNC_RESOURCE (r));
  g_assert_cmpstr (first, ==, "plain-1");
  g_assert_cmpstr (second, ==, "plain-1");
  /* …it gives the very same string. */
  g_assert_true (first == second);
}

/* Regression: a handler that changes the state again from inside an
 * emission (a plugin that cleans itself up on `degraded`) must not make the
 * handlers after it see the second transition before the first. */
static void
reenter_cb (ExoResource *r, ExoResourceState o, ExoResourceState n, gpointer data)
{
  if (n == EXO_RESOURCE_STATE_DEGRADED)
    exo_resource_cleanup_async (r, NULL, NULL, NULL);
}

static void
record_order_cb (ExoResource *r, ExoResourceState o, ExoResourceState n, gpointer data)
{
  g_string_append_printf (data, "%s>%s,", exo_resource_state_to_string (o),
                          exo_resource_state_to_string (n));
}

static void
test_reentrant_transition_order (void)
{
  g_autoptr(ExoTestResource) r = new_plain ("reenter");
  g_autoptr(GString) before = g_string_new (NULL);
  g_autoptr(GString) after = g_string_new (NULL);

  g_signal_connect (r, "state-changed", G_CALLBACK (record_order_cb), before);
  g_signal_connect (r, "state-changed", G_CALLBACK (reenter_cb), NULL);
  g_signal_connect (r, "state-changed", G_CALLBACK (record_order_cb), after);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (r), NULL));
  exo_resource_report_health (EXO_RESOURCE (r), FALSE, NULL);
  g_assert_true (exo_test_wait_for_state (EXO_RESOURCE (r), EXO_RESOURCE_STATE_CLOSED, 5000));
  g_assert_cmpstr (after->str, ==,
                   "uninitialized>initializing,initializing>ready,ready>degraded,"
                   "degraded>closing,closing>closed,");
  g_assert_cmpstr (before->str, ==, after->str);
}

/* --- registration ---------------------------------------------------- */

void
test_resource_register_operations (void)
{
  g_test_add_func ("/exo/resource/vfunc-drops-task", test_vfunc_drops_task);
  g_test_add_func ("/exo/resource/ensure-ready", test_ensure_ready);
  g_test_add_func ("/exo/resource/initialize-while-closing", test_initialize_while_closing);
  g_test_add_func ("/exo/resource/report-error-and-reinit", test_report_error_and_reinit);
  g_test_add_func ("/exo/resource/restart", test_restart);
  g_test_add_func ("/exo/resource/regression/reentrant-transition-order", test_reentrant_transition_order);
  g_test_add_func ("/exo/resource/metrics/chain-up", test_metrics_chain_up);
  g_test_add_func ("/exo/async-resource/id/stable", test_async_id_stable);
}
