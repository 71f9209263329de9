/* exo-resource.h: the abstract base that implements ExoAsyncResource once.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-async-resource.h>

G_BEGIN_DECLS

#define EXO_TYPE_RESOURCE (exo_resource_get_type ())

/**
 * EXO_RESOURCE_MAX_METRICS:
 *
 * The most metric keys exo_resource_get_metrics() passes on for one
 * resource.  New in plugin ABI 3.2.
 */
#define EXO_RESOURCE_MAX_METRICS 1024

/**
 * EXO_RESOURCE_MAX_METRIC_STRING:
 *
 * The longest string metric value, in bytes.  New in plugin ABI 3.2.
 */
#define EXO_RESOURCE_MAX_METRIC_STRING 4096

/**
 * EXO_RESOURCE_MAX_METRIC_ARRAY:
 *
 * The most items of an array metric value.  New in plugin ABI 3.2.
 */
#define EXO_RESOURCE_MAX_METRIC_ARRAY 256

EXO_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (ExoResource, exo_resource, EXO, RESOURCE, GObject)

/**
 * ExoResourceClass:
 * @do_initialize: make the resource.  Complete @task (transfer none: take a
 *   reference to complete it after returning) exactly once with
 *   g_task_return_boolean() or g_task_return_error(); honour
 *   g_task_get_cancellable().  A synchronous implementation completes @task
 *   before returning.
 * @do_cleanup: release what @do_initialize made (also a half-made resource
 *   after a failed, cancelled or timed-out attempt).  Same completion and
 *   ownership rules.
 * @do_check_health: optional; complete @task (same ownership rules) with
 *   %TRUE (healthy) or an error that says what is wrong.  Without it a
 *   usable resource is healthy.
 * @collect_metrics: add type-specific metrics; chain up first.
 * @retry_delay: after failed attempt number @attempt (1-based) of one
 *   initialize, return the delay in ms before the next attempt, or -1 to
 *   give up.  The base class never retries; #ExoManagedResource does.
 * @reset: clear failure state (last error, counters, restart limit).
 * @check_settings: optional; check the settings (properties) that can be
 *   checked without side effects, before anything is initialized.  Return
 *   %FALSE with an error, and the name of the property at fault in
 *   @setting, for a setting that initialize would refuse.  Since 0.3
 *
 * Subclasses implement only @do_initialize, @do_cleanup and optionally
 * @do_check_health.  Each receives a #GTask whose source object is the
 * resource; state, statistics, timeouts, single-flight and cancellation are
 * handled here.
 *
 * The @task of @do_initialize, @do_cleanup and @do_check_health is
 * (transfer none): the caller drops its reference when the vfunc returns.
 * To complete it later, take a reference with g_object_ref() and complete
 * the task exactly once from that reference; completing it after returning
 * without one is a use-after-free.  A task that is never completed blocks
 * every later initialize and cleanup of the resource.
 */
struct _ExoResourceClass
{
  GObjectClass parent_class;

  /**
   * ExoResourceClass::do_initialize:
   * @self: the resource
   * @task: (transfer none): the task to complete with the result
   *
   * Makes the resource.  Complete @task exactly once, with
   * g_task_return_boolean() or g_task_return_error(), before returning or
   * later; honour g_task_get_cancellable().
   *
   * @task is borrowed: the caller drops its reference when this returns.
   * To complete it later, keep a reference (`g_object_ref (task)`) and drop
   * it after returning the result.
   */
  void     (*do_initialize)   (ExoResource     *self,
                               GTask           *task);
  /**
   * ExoResourceClass::do_cleanup:
   * @self: the resource
   * @task: (transfer none): the task to complete with the result
   *
   * Releases what do_initialize made, also a half-made resource.
   * Complete @task exactly once, before returning or later.
   *
   * @task is borrowed: the caller drops its reference when this returns.
   * To complete it later, keep a reference (`g_object_ref (task)`) and drop
   * it after returning the result.
   */
  void     (*do_cleanup)      (ExoResource     *self,
                               GTask           *task);
  /**
   * ExoResourceClass::do_check_health:
   * @self: the resource
   * @task: (transfer none): the task to complete with the result
   *
   * Checks the resource.  Complete @task exactly once, with %TRUE or an
   * error that says what is wrong, before returning or later.
   *
   * @task is borrowed: the caller drops its reference when this returns.
   * To complete it later, keep a reference (`g_object_ref (task)`) and drop
   * it after returning the result.
   */
  void     (*do_check_health) (ExoResource     *self,
                               GTask           *task);
  void     (*collect_metrics) (ExoResource     *self,
                               GVariantDict    *metrics);
  gint64   (*retry_delay)     (ExoResource     *self,
                               guint            attempt,
                               const GError    *error);
  void     (*reset)           (ExoResource     *self);

  /* since 0.3 */
  /**
   * ExoResourceClass::check_settings:
   * @self: the resource, with its properties set and not initialized
   * @setting: (out) (nullable) (transfer full): the name of the property
   *   at fault, when one is (never %NULL itself)
   * @error: return location for an error
   *
   * Checks what can be checked of the settings without side effects:
   * parses, ranges, combinations, whether a named file is usable.  It must
   * not open sockets, start threads, write files or keep state: it runs
   * on resources that are never initialized (`exo-node --check-config`).
   *
   * Returns: %TRUE when the settings are usable
   */
  gboolean (*check_settings)  (ExoResource     *self,
                               char           **setting,
                               GError         **error);

  /*< private >*/
  gpointer padding[11];
};

EXO_AVAILABLE_IN_ALL
void              exo_resource_class_set_resource_type (ExoResourceClass *klass,
                                                        const char       *resource_type);

/**
 * ExoMetricKind:
 * @EXO_METRIC_HIDDEN: not exported: the key is in the `Metrics`
 *   dictionary only (a pre-computed mean or quantile, the text of a last
 *   error)
 * @EXO_METRIC_GAUGE: a value that goes up and down; a boolean is 0 or 1
 * @EXO_METRIC_COUNTER: a count that only grows (from 0 again only when
 *   the process starts again or exo_resource_reset() forgets it)
 * @EXO_METRIC_SUMMARY: the `_sum` or the `_count` of a summary: both
 *   keys are declared, with the same name but for that suffix
 * @EXO_METRIC_INFO: a fact about the resource (an address, a port, an
 *   id): a label, named after the key, of an `_info` gauge whose value is 1
 *
 * What a key of exo_resource_get_metrics() is, for an exporter such as the
 * `/metrics` route of the http-server plugin (docs/metrics.md).
 */
typedef enum {
  EXO_METRIC_HIDDEN,
  EXO_METRIC_GAUGE,
  EXO_METRIC_COUNTER,
  EXO_METRIC_SUMMARY,
  EXO_METRIC_INFO,
} ExoMetricKind;

/**
 * ExoMetricEntry:
 * @key: the key in the metrics dictionary (#ExoResourceClass.collect_metrics)
 * @kind: what the value is
 * @name: (nullable): the name of the sample in Prometheus' exposition,
 *   with the unit in it and `_total` for a counter, e.g.
 *   `exo_pool_wait_seconds_sum`; constant labels may follow in braces,
 *   e.g. `exo_http_peer_auth_failures_total{reason="bad-mac"}`.  For
 *   %EXO_METRIC_INFO, the `_info` family the key is a label of.  %NULL
 *   for %EXO_METRIC_HIDDEN
 * @scale: what the value is multiplied by to be in the name's unit (1e-6
 *   for microseconds exported as seconds); 0 means 1.  A negative value
 *   of a scaled entry (a duration or a time of -1: none) is not exported
 * @help: (nullable): the `# HELP` text (one line); %NULL for
 *   %EXO_METRIC_HIDDEN
 *
 * Declares what one metric key is; see
 * exo_resource_class_add_metric_entries().  Names start with `exo_`.
 */
typedef struct {
  const char    *key;
  ExoMetricKind  kind;
  const char    *name;
  double         scale;
  const char    *help;

  /*< private >*/
  gpointer       padding[2];
} ExoMetricEntry;

EXO_AVAILABLE_IN_ALL
void                  exo_resource_class_add_metric_entries (ExoResourceClass     *klass,
                                                             const ExoMetricEntry *entries,
                                                             guint                 n_entries);
EXO_AVAILABLE_IN_ALL
const ExoMetricEntry *exo_resource_class_find_metric_entry  (ExoResourceClass     *klass,
                                                             const char           *key);
EXO_AVAILABLE_IN_ALL
gboolean              exo_resource_type_declare_metric      (GType                 type,
                                                             const char           *key,
                                                             ExoMetricKind         kind,
                                                             const char           *name,
                                                             double                scale,
                                                             const char           *help);

EXO_AVAILABLE_IN_ALL
const char       *exo_resource_get_id               (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
const char       *exo_resource_get_resource_type    (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
const char       *exo_resource_get_display_name     (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
void              exo_resource_set_display_name     (ExoResource  *self,
                                                     const char   *display_name);
EXO_AVAILABLE_IN_ALL
ExoResourceState  exo_resource_get_state            (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
gboolean          exo_resource_is_usable            (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
gboolean          exo_resource_is_healthy           (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
const GError     *exo_resource_get_last_error       (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
guint             exo_resource_get_error_count      (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
guint             exo_resource_get_attempts         (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
ExoResourceResult exo_resource_get_result           (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
gint64            exo_resource_get_state_changed_at (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
gint64            exo_resource_get_initialized_at   (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
guint             exo_resource_get_init_timeout     (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
void              exo_resource_set_init_timeout     (ExoResource  *self,
                                                     guint         timeout_ms);
EXO_AVAILABLE_IN_ALL
GMainContext     *exo_resource_get_context          (ExoResource  *self);
EXO_AVAILABLE_IN_ALL
GVariant         *exo_resource_get_metrics          (ExoResource  *self);

EXO_AVAILABLE_IN_ALL
void              exo_resource_initialize_async     (ExoResource         *self,
                                                     GCancellable        *cancellable,
                                                     GAsyncReadyCallback  callback,
                                                     gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gboolean          exo_resource_initialize_finish    (ExoResource         *self,
                                                     GAsyncResult        *result,
                                                     GError             **error);
EXO_AVAILABLE_IN_ALL
void              exo_resource_cleanup_async        (ExoResource         *self,
                                                     GCancellable        *cancellable,
                                                     GAsyncReadyCallback  callback,
                                                     gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gboolean          exo_resource_cleanup_finish       (ExoResource         *self,
                                                     GAsyncResult        *result,
                                                     GError             **error);
EXO_AVAILABLE_IN_ALL
void              exo_resource_check_health_async   (ExoResource         *self,
                                                     GCancellable        *cancellable,
                                                     GAsyncReadyCallback  callback,
                                                     gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gboolean          exo_resource_check_health_finish  (ExoResource         *self,
                                                     GAsyncResult        *result,
                                                     GError             **error);
EXO_AVAILABLE_IN_ALL
void              exo_resource_ensure_ready_async   (ExoResource         *self,
                                                     GCancellable        *cancellable,
                                                     GAsyncReadyCallback  callback,
                                                     gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gboolean          exo_resource_ensure_ready_finish  (ExoResource         *self,
                                                     GAsyncResult        *result,
                                                     GError             **error);
EXO_AVAILABLE_IN_ALL
void              exo_resource_restart_async        (ExoResource         *self,
                                                     GCancellable        *cancellable,
                                                     GAsyncReadyCallback  callback,
                                                     gpointer             user_data);
EXO_AVAILABLE_IN_ALL
gboolean          exo_resource_restart_finish       (ExoResource         *self,
                                                     GAsyncResult        *result,
                                                     GError             **error);

EXO_AVAILABLE_IN_ALL
void              exo_resource_reset                (ExoResource  *self);

EXO_AVAILABLE_IN_ALL
gboolean          exo_resource_check_settings       (ExoResource  *self,
                                                     char        **setting,
                                                     GError      **error);

/* For subclasses: report what happened to a ready resource. */
EXO_AVAILABLE_IN_ALL
void              exo_resource_report_error         (ExoResource  *self,
                                                     const GError *error);
EXO_AVAILABLE_IN_ALL
void              exo_resource_report_health        (ExoResource  *self,
                                                     gboolean      healthy,
                                                     const GError *error);

/* For subclasses and runtimes built on libexo (groups, pools). */
EXO_AVAILABLE_IN_ALL
gboolean          exo_resource_transition           (ExoResource      *self,
                                                     ExoResourceState  new_state,
                                                     const GError     *error);
EXO_AVAILABLE_IN_ALL
gboolean          exo_resource_state_transition_is_legal (ExoResourceState from,
                                                          ExoResourceState to);

/* Helpers for do_* implementations. */
EXO_AVAILABLE_IN_ALL
void              exo_task_return_result            (GTask        *task,
                                                     gboolean      ok,
                                                     GError       *error);

G_END_DECLS
