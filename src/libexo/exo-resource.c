/* exo-resource.c: the abstract base that implements the lifecycle once.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * This file owns the GObject: the class documentation, the properties and
 * signal ids (shared through exo-resource-private.h), class_init and the
 * interface's vtable, constructed/dispose/finalize, the public getters and
 * setters, reset and metrics, and the watch on the tasks given to do_*
 * vfuncs (a task dropped uncompleted is answered with an error, from an idle
 * in the resource's context).  The lifecycle itself is in
 * exo-resource-transition.c, exo-resource-flight.c and exo-resource-report.c.
 *
 * Rules: everything here runs in the resource's main context, except
 * class_init and exo_task_return_result(), which any thread may call on a
 * task; the idle of a dropped task runs in the resource's context.  No
 * callbacks from inside a state-changed emission (see
 * exo-resource-private.h): setters here only notify.
 */
#include "exo-resource-private.h"

/**
 * ExoResource:
 *
 * The abstract base class of every resource.  It implements
 * #ExoAsyncResource once: the transition table, single-flight initialize,
 * timeouts, cancellation, cleanup of half-made resources, health checks and
 * the statistics.  A subclass writes only #ExoResourceClass.do_initialize,
 * #ExoResourceClass.do_cleanup and, optionally,
 * #ExoResourceClass.do_check_health.
 *
 * ## How the calls are serialised
 *
 * At most one `do_initialize` or `do_cleanup` of a resource runs at a time.
 * When an attempt times out or every caller cancels, the callers get their
 * error at once and the resource enters `error`; the abandoned attempt's
 * cancellable is cancelled and, when its `do_initialize` returns, whatever it
 * made is cleaned up with `do_cleanup`.  A later initialize or cleanup waits
 * for that first, so a subclass never sees overlapping calls.
 *
 * A resource belongs to the #GMainContext that was thread-default when it
 * was made: call its methods there; its signals are emitted there.
 */

GParamSpec *_exo_resource_properties[N_PROPS];
guint _exo_resource_signal_state_changed;
guint _exo_resource_signal_notify;
gint _exo_resource_private_offset;
static GQuark resource_type_quark;

static void exo_resource_async_resource_init (ExoAsyncResourceInterface *iface);

G_DEFINE_ABSTRACT_TYPE_WITH_CODE (ExoResource, exo_resource, G_TYPE_OBJECT,
                                  G_ADD_PRIVATE (ExoResource)
                                  G_IMPLEMENT_INTERFACE (EXO_TYPE_ASYNC_RESOURCE,
                                                         exo_resource_async_resource_init))

static void
set_id (ExoResourcePrivate *priv,
        const char         *id)
{
  if (!priv->id_inline)
    g_free (priv->id.ptr);
  if (id != NULL && strlen (id) < sizeof priv->id.buf)
    {
      strcpy (priv->id.buf, id);
      priv->id_inline = TRUE;
    }
  else
    {
      priv->id.ptr = g_strdup (id);
      priv->id_inline = FALSE;
    }
}

/* --- reset, metrics, accessors ---------------------------------------- */

/* The base class has no metrics of its own; it is here so that a subclass
 * can chain up unconditionally, as the class documentation says. */
static void
exo_resource_real_collect_metrics (ExoResource  *self,
                                   GVariantDict *metrics)
{
}

static void
exo_resource_real_reset (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  gboolean had_error = EXTRA_GET (priv, last_error) != NULL;

  if (priv->extra != NULL)
    g_clear_error (&priv->extra->last_error);
  if (had_error)
    notify_watched (self, PROP_LAST_ERROR);
  if (priv->error_count != 0)
    {
      priv->error_count = 0;
      notify_watched (self, PROP_ERROR_COUNT);
    }
  set_attempts (self, 0);
  if (priv->result == EXO_RESOURCE_RESULT_START_LIMIT_HIT)
    _exo_resource_set_result (self, EXO_RESOURCE_RESULT_FAILED);
}

/**
 * exo_resource_reset:
 * @self: a resource
 *
 * Forgets past failures: the last error, the error and attempt counters and
 * (for managed resources) the restart limit, like `systemctl reset-failed`.
 * A managed resource held in `error` by its restart limit starts recovering.
 */
void
exo_resource_reset (ExoResource *self)
{
  g_return_if_fail (EXO_IS_RESOURCE (self));

  EXO_RESOURCE_GET_CLASS (self)->reset (self);
}

/**
 * exo_resource_check_settings:
 * @self: a resource, with its properties set
 * @setting: (out) (optional) (nullable) (transfer full): the name of the
 *   property at fault, or %NULL when the error names none
 * @error: return location for an error
 *
 * Runs #ExoResourceClass.check_settings: checks the settings that can be
 * checked without side effects, as initialize would, without initializing
 * anything.  exo_config_build() calls it on every resource it makes, so a
 * config that initialize would refuse is refused when it is loaded (and by
 * `exo-node --check-config`).  A type without the vfunc accepts any
 * settings here.
 *
 * Returns: %TRUE when the settings are usable (or cannot be checked
 *   before initialize)
 *
 * Since: 0.3
 */
gboolean
exo_resource_check_settings (ExoResource  *self,
                             char        **setting,
                             GError      **error)
{
  ExoResourceClass *klass;
  g_autofree char *at_fault = NULL;
  g_autoptr(GError) local_error = NULL;

  if (setting != NULL)
    *setting = NULL;
  g_return_val_if_fail (EXO_IS_RESOURCE (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = EXO_RESOURCE_GET_CLASS (self);
  if (klass->check_settings == NULL ||
      klass->check_settings (self, &at_fault, &local_error))
    {
      /* a vfunc that succeeds names nothing */
      g_warn_if_fail (local_error == NULL);
      return TRUE;
    }

  if (local_error == NULL)
    local_error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FATAL,
                               "the settings of '%s' are not usable", ID (PRIV (self)));
  g_propagate_error (error, g_steal_pointer (&local_error));
  if (setting != NULL)
    *setting = g_steal_pointer (&at_fault);
  return FALSE;
}

/* check_settings (0.3) took a padding slot: the class keeps its size. */
G_STATIC_ASSERT (sizeof (ExoResourceClass) ==
                 sizeof (GObjectClass) + 18 * sizeof (gpointer));

/* Why the metric @value cannot be passed on (D-Bus, /metrics), or NULL:
 * only plain values and arrays of them, bounded.  A value nested deeper
 * than D-Bus allows would make GDBus drop the bus connection of whoever
 * sends it (the daemon's). */
static const char *
metric_value_problem (GVariant *value)
{
  const GVariantType *type = g_variant_get_type (value);

  if (g_variant_type_is_basic (type))
    {
      if ((g_variant_is_of_type (value, G_VARIANT_TYPE_STRING) ||
           g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH) ||
           g_variant_is_of_type (value, G_VARIANT_TYPE_SIGNATURE)) &&
          g_variant_get_size (value) > EXO_RESOURCE_MAX_METRIC_STRING + 1)
        return "a string longer than " G_STRINGIFY (EXO_RESOURCE_MAX_METRIC_STRING) " bytes";
      return NULL;
    }
  if (g_variant_type_is_array (type) &&
      g_variant_type_is_basic (g_variant_type_element (type)))
    {
      if (g_variant_n_children (value) > EXO_RESOURCE_MAX_METRIC_ARRAY ||
          g_variant_get_size (value) > 64 * EXO_RESOURCE_MAX_METRIC_STRING)
        return "an array longer than " G_STRINGIFY (EXO_RESOURCE_MAX_METRIC_ARRAY) " items or 256 KiB";
      return NULL;
    }
  return "not a plain value or an array of them";
}

/* Logs once per process and key (a scrape a second must not flood). */
static void
metric_dropped (ExoResource *self,
                const char  *key,
                GVariant    *value,
                const char  *why)
{
  static GMutex lock;
  static GHashTable *logged;   /* "id\nkey" */
  g_autofree char *which = g_strdup_printf ("%s\n%s", exo_resource_get_id (self), key);
  gboolean first;

  g_mutex_lock (&lock);
  if (logged == NULL)
    logged = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  first = g_hash_table_size (logged) < 1024 && g_hash_table_add (logged, g_steal_pointer (&which));
  g_mutex_unlock (&lock);
  if (first)
    g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING,
                      "EXO_RESOURCE_ID", exo_resource_get_id (self),
                      "MESSAGE", "%s: metric '%.64s' (type '%.32s') left out: %s",
                      exo_resource_get_id (self), key, g_variant_get_type_string (value), why);
}

/**
 * exo_resource_get_metrics:
 * @self: a resource
 *
 * The metrics #ExoResourceClass.collect_metrics gives, checked: only plain
 * values (numbers, booleans, strings of at most
 * %EXO_RESOURCE_MAX_METRIC_STRING bytes) and arrays of them (at most
 * %EXO_RESOURCE_MAX_METRIC_ARRAY items), at most
 * %EXO_RESOURCE_MAX_METRICS keys; anything else is left out, and a
 * warning names it once.
 *
 * Returns: (transfer full): the type-specific metrics as an `a{sv}` dictionary
 */
GVariant *
exo_resource_get_metrics (ExoResource *self)
{
  g_autoptr(GVariantDict) dict = NULL;
  g_autoptr(GVariant) collected = NULL;
  GVariantBuilder builder;
  GVariantIter iter;
  const char *key;
  GVariant *value;
  guint kept = 0;

  g_return_val_if_fail (EXO_IS_RESOURCE (self), NULL);

  /* On the heap, not the stack: a binding's collect_metrics (PyGObject)
   * takes a reference to the boxed GVariantDict it is given. */
  dict = g_variant_dict_new (NULL);
  if (EXO_RESOURCE_GET_CLASS (self)->collect_metrics != NULL)
    EXO_RESOURCE_GET_CLASS (self)->collect_metrics (self, dict);
  collected = g_variant_ref_sink (g_variant_dict_end (dict));

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_iter_init (&iter, collected);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      const char *why = kept >= EXO_RESOURCE_MAX_METRICS
                        ? "more than " G_STRINGIFY (EXO_RESOURCE_MAX_METRICS) " metrics"
                        : metric_value_problem (value);

      if (why == NULL)
        {
          g_variant_builder_add (&builder, "{sv}", key, value);
          kept++;
        }
      else
        metric_dropped (self, key, value, why);
      g_variant_unref (value);
    }
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

const char *
exo_resource_get_id (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), NULL);
  return ID (PRIV (self));
}

const char *
exo_resource_get_resource_type (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), NULL);
  return PRIV (self)->resource_type;
}

const char *
exo_resource_get_display_name (ExoResource *self)
{
  ExoResourcePrivate *priv;

  g_return_val_if_fail (EXO_IS_RESOURCE (self), NULL);
  priv = PRIV (self);
  return priv->display_name != NULL ? priv->display_name : ID (priv);
}

void
exo_resource_set_display_name (ExoResource *self,
                               const char  *display_name)
{
  ExoResourcePrivate *priv;

  g_return_if_fail (EXO_IS_RESOURCE (self));
  priv = PRIV (self);

  if (g_strcmp0 (priv->display_name, display_name) == 0)
    return;
  g_free (priv->display_name);
  priv->display_name = g_strdup (display_name);
  g_object_notify_by_pspec (G_OBJECT (self), _exo_resource_properties[PROP_DISPLAY_NAME]);
}

ExoResourceState
exo_resource_get_state (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), EXO_RESOURCE_STATE_UNINITIALIZED);
  return PRIV (self)->state;
}

gboolean
exo_resource_is_usable (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), FALSE);
  return exo_resource_state_is_usable (PRIV (self)->state);
}

/**
 * exo_resource_is_healthy:
 * @self: a resource
 *
 * Returns: %TRUE when @self is `ready`
 */
gboolean
exo_resource_is_healthy (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), FALSE);
  return PRIV (self)->state == EXO_RESOURCE_STATE_READY;
}

/**
 * exo_resource_get_last_error:
 * @self: a resource
 *
 * Returns: (transfer none) (nullable): the last error recorded, or %NULL
 */
const GError *
exo_resource_get_last_error (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), NULL);
  return EXTRA_GET (PRIV (self), last_error);
}

guint
exo_resource_get_error_count (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), 0);
  return PRIV (self)->error_count;
}

/**
 * exo_resource_get_attempts:
 * @self: a resource
 *
 * Returns: initialize attempts since the last successful initialize (0 once
 *   it succeeds)
 */
guint
exo_resource_get_attempts (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), 0);
  return PRIV (self)->attempts;
}

/**
 * exo_resource_get_result:
 * @self: a resource
 *
 * Returns: why @self is where it is (see #ExoResourceResult)
 */
ExoResourceResult
exo_resource_get_result (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), EXO_RESOURCE_RESULT_SUCCESS);
  return PRIV (self)->result;
}

/**
 * exo_resource_get_state_changed_at:
 * @self: a resource
 *
 * Returns: the wall-clock time of the last transition in µs since the Unix
 *   epoch, 0 = never
 */
gint64
exo_resource_get_state_changed_at (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), 0);
  return PRIV (self)->state_changed_at;
}

/**
 * exo_resource_get_initialized_at:
 * @self: a resource
 *
 * Returns: when the last initialize succeeded, in µs since the Unix epoch,
 *   0 = never
 */
gint64
exo_resource_get_initialized_at (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), 0);
  return PRIV (self)->initialized_at;
}

guint
exo_resource_get_init_timeout (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), 0);
  return PRIV (self)->init_timeout_ms;
}

/**
 * exo_resource_set_init_timeout:
 * @self: a resource
 * @timeout_ms: the time one initialize attempt may take, 0 = unlimited
 *
 * An attempt that takes longer fails with %G_IO_ERROR_TIMED_OUT.
 */
void
exo_resource_set_init_timeout (ExoResource *self,
                               guint        timeout_ms)
{
  g_return_if_fail (EXO_IS_RESOURCE (self));

  if (PRIV (self)->init_timeout_ms == timeout_ms)
    return;
  PRIV (self)->init_timeout_ms = timeout_ms;
  g_object_notify_by_pspec (G_OBJECT (self), _exo_resource_properties[PROP_INIT_TIMEOUT]);
}

/**
 * exo_resource_get_context:
 * @self: a resource
 *
 * Returns: (transfer none): the main context @self belongs to
 */
GMainContext *
exo_resource_get_context (ExoResource *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE (self), NULL);
  return PRIV (self)->context;
}

GRand *
_exo_resource_get_rand (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  if (EXTRA (priv)->rand == NULL)
    priv->extra->rand = g_rand_new ();
  return priv->extra->rand;
}

void
_exo_resource_seed_rand (ExoResource *self,
                         guint32      seed)
{
  ExoResourcePrivate *priv = PRIV (self);

  g_clear_pointer (&EXTRA (priv)->rand, g_rand_free);
  priv->extra->rand = g_rand_new_with_seed (seed);
}

gboolean
_exo_resource_is_busy (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  return priv->busy || priv->in_flight || priv->cleaning;
}

/**
 * exo_resource_class_set_resource_type:
 * @klass: a resource class
 * @resource_type: the type name used in configs, e.g. `"udp-discovery"`
 *
 * Sets the default of #ExoAsyncResource:resource-type for instances of
 * @klass and its subclasses that do not set their own.
 */
void
exo_resource_class_set_resource_type (ExoResourceClass *klass,
                                      const char       *resource_type)
{
  g_return_if_fail (EXO_IS_RESOURCE_CLASS (klass));

  g_type_set_qdata (G_TYPE_FROM_CLASS (klass), resource_type_quark,
                    (gpointer) g_intern_string (resource_type));
}

static const char *
class_resource_type (GType type)
{
  for (; type != 0 && type != EXO_TYPE_RESOURCE; type = g_type_parent (type))
    {
      const char *name = g_type_get_qdata (type, resource_type_quark);
      if (name != NULL)
        return name;
    }
  return NULL;
}

/**
 * exo_task_return_result:
 * @task: the task given to a `do_*` vfunc
 * @ok: whether it succeeded
 * @error: (transfer full) (nullable): the error when it did not
 *
 * Completes @task from a synchronous implementation:
 * `exo_task_return_result (task, open_thing (self, &error), error);`
 */
void
exo_task_return_result (GTask    *task,
                        gboolean  ok,
                        GError   *error)
{
  g_return_if_fail (G_IS_TASK (task));

  if (ok)
    {
      g_clear_error (&error);
      g_task_return_boolean (task, TRUE);
    }
  else if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                             "operation failed");
}

/* --- tasks given to do_* vfuncs ----------------------------------------- */

/* A vfunc must complete its task, at once or later (keeping a reference to it
 * meanwhile).  An implementation that does neither lets the task be finalized
 * uncompleted, and whoever waits for it would wait forever: a C
 * implementation that forgot, or a binding's whose code failed — PyGObject
 * prints an exception raised in a vfunc and returns without completing the
 * task.  So each such task is watched: finalized before its callback ran, it
 * is replaced by one that completes with an error, in the resource's main
 * context, and the callback sees a failed attempt. */

typedef struct
{
  GAsyncReadyCallback  callback;
  gpointer             user_data;
  gpointer             source_tag;
  const char          *vfunc;   /* static */
  ExoResource         *self;    /* owned */
} VfuncWatch;

/* The watch rides on the task as qdata (one GData; a weak ref would cost a
 * second allocation): the task's own callback takes it off, so that its
 * destroy notify runs only for a task finalized before its callback ran. */
static GQuark vfunc_watch_quark;

static void
vfunc_watch_free (gpointer data)
{
  VfuncWatch *watch = data;

  g_clear_object (&watch->self);
  g_free (watch);
}

static gboolean
vfunc_task_dropped_cb (gpointer data)
{
  VfuncWatch *watch = data;
  ExoResourcePrivate *priv = PRIV (watch->self);
  GTask *task;

  g_main_context_push_thread_default (priv->context);
  task = g_task_new (watch->self, NULL, watch->callback, watch->user_data);
  g_task_set_source_tag (task, watch->source_tag);
  g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                           "%s of '%s' returned without completing its task and without "
                           "keeping a reference to it", watch->vfunc, ID (priv));
  g_object_unref (task);
  g_main_context_pop_thread_default (priv->context);
  return G_SOURCE_REMOVE;
}

/* The task is finalized and its callback never ran. */
static void
vfunc_task_gone (gpointer data)
{
  VfuncWatch *watch = data;
  GSource *source;

  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, vfunc_task_dropped_cb, watch, vfunc_watch_free);
  g_source_set_static_name (source, "[exo] vfunc task dropped");
  g_source_attach (source, PRIV (watch->self)->context);
  g_source_unref (source);
}

static void
vfunc_task_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  VfuncWatch *watch = data;

  g_object_steal_qdata (G_OBJECT (result), vfunc_watch_quark);
  watch->callback (source, result, watch->user_data);
  vfunc_watch_free (watch);
}

/* The task of do_initialize is watched the same way, with its attempt as
 * the watch (it has all a watch needs): no allocation of its own. */
static void
init_task_gone (gpointer data)
{
  Attempt *attempt = data;
  VfuncWatch *watch = g_new (VfuncWatch, 1);

  watch->callback = _exo_resource_do_initialize_cb;
  watch->user_data = attempt;
  watch->source_tag = _exo_resource_call_do_initialize;
  watch->vfunc = "do_initialize";
  watch->self = g_object_ref (attempt->self);
  vfunc_task_gone (watch);
}

static void
init_task_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  g_object_steal_qdata (G_OBJECT (result), vfunc_watch_quark);
  _exo_resource_do_initialize_cb (source, result, data);
}

GTask *
_exo_resource_vfunc_init_task_new (ExoResource *self,
                                   Attempt     *attempt)
{
  GTask *task = g_task_new (self, attempt->cancellable, init_task_cb, attempt);

  (g_task_set_source_tag) (task, _exo_resource_call_do_initialize);
#if GLIB_CHECK_VERSION (2, 76, 0)
  g_task_set_static_name (task, "do_initialize");
#endif
  /* the attempt lives until the task's callback ran (or the error that
   * stands for it, when the task is dropped) */
  g_object_set_qdata_full (G_OBJECT (task), vfunc_watch_quark, attempt, init_task_gone);
  return task;
}

/* g_task_new() + g_task_set_source_tag() for the task given to a do_* vfunc
 * (@vfunc, a static string, names it in the error). */
GTask *
_exo_resource_vfunc_task_new (ExoResource         *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data,
                              gpointer             source_tag,
                              const char          *vfunc)
{
  VfuncWatch *watch = g_new (VfuncWatch, 1);
  GTask *task;

  watch->callback = callback;
  watch->user_data = user_data;
  watch->source_tag = source_tag;
  watch->vfunc = vfunc;
  watch->self = g_object_ref (self);

  task = g_task_new (self, cancellable, vfunc_task_cb, watch);
  /* Not the g_task_set_source_tag() macro: before GLib 2.76 it names the
   * task with a copy of the string "source_tag", and GTask copies the name
   * again to the source that completes the task (two allocations per
   * do_initialize of every resource). */
  (g_task_set_source_tag) (task, source_tag);
#if GLIB_CHECK_VERSION (2, 76, 0)
  g_task_set_static_name (task, vfunc);
#endif
  g_object_set_qdata_full (G_OBJECT (task), vfunc_watch_quark, watch, vfunc_task_gone);
  return task;
}

/* --- GObject ----------------------------------------------------------- */

static void
exo_resource_real_do_nothing (ExoResource *self,
                              GTask       *task)
{
  g_task_return_boolean (task, TRUE);
}

static void
exo_resource_constructed (GObject *object)
{
  ExoResource *self = EXO_RESOURCE (object);
  ExoResourcePrivate *priv = PRIV (self);
  static gint counter;

  G_OBJECT_CLASS (exo_resource_parent_class)->constructed (object);

  if (priv->resource_type == NULL)
    {
      priv->resource_type = class_resource_type (G_OBJECT_TYPE (object));
      if (priv->resource_type == NULL)
        priv->resource_type = G_OBJECT_TYPE_NAME (object);
    }

  if (ID (priv) == NULL || ID (priv)[0] == '\0')
    {
      g_autofree char *made = g_strdup_printf ("%s-%d", priv->resource_type,
                                               g_atomic_int_add (&counter, 1) + 1);

      set_id (priv, made);
    }

  _exo_registry_add (self);
  priv->registered = TRUE;
}

static void
exo_resource_dispose (GObject *object)
{
  ExoResource *self = EXO_RESOURCE (object);
  ExoResourcePrivate *priv = PRIV (self);

  if (priv->registered)
    {
      priv->registered = FALSE;
      _exo_registry_remove (self);
    }

  clear_source (&priv->timeout_source);
  clear_extra_source (priv, G_STRUCT_OFFSET (ExoResourceExtra, retry_source));
  clear_extra_source (priv, G_STRUCT_OFFSET (ExoResourceExtra, cleanup_wait_source));

  G_OBJECT_CLASS (exo_resource_parent_class)->dispose (object);

  /* GObject's dispose destroyed the signal handlers: the hooks that stand
   * for handlers go with them. */
  priv->managed_hook = FALSE;
  priv->member_hook = FALSE;
  priv->disposed = TRUE;
}

static void
exo_resource_finalize (GObject *object)
{
  ExoResource *self = EXO_RESOURCE (object);
  ExoResourcePrivate *priv = PRIV (self);

  g_assert (priv->init_waiters_tail == NULL);
  g_assert (priv->cleanup_waiters == NULL);

  if (!priv->id_inline)
    g_clear_pointer (&priv->id.ptr, g_free);
  g_clear_pointer (&priv->display_name, g_free);
  if (priv->extra != NULL)
    {
      g_clear_pointer (&priv->extra->rand, g_rand_free);
      g_clear_pointer (&priv->extra->pending_emissions, g_array_unref);
      g_clear_error (&priv->extra->last_error);
      g_clear_error (&priv->extra->init_error);
      g_clear_pointer (&priv->extra, g_free);
    }
  g_clear_pointer (&priv->context, g_main_context_unref);

  G_OBJECT_CLASS (exo_resource_parent_class)->finalize (object);
}

static void
exo_resource_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  ExoResource *self = EXO_RESOURCE (object);
  ExoResourcePrivate *priv = PRIV (self);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_string (value, ID (priv));
      break;
    case PROP_RESOURCE_TYPE:
      g_value_set_string (value, priv->resource_type);
      break;
    case PROP_DISPLAY_NAME:
      g_value_set_string (value, exo_resource_get_display_name (self));
      break;
    case PROP_STATE:
      g_value_set_enum (value, priv->state);
      break;
    case PROP_INIT_TIMEOUT:
      g_value_set_uint (value, priv->init_timeout_ms);
      break;
    case PROP_ERROR_COUNT:
      g_value_set_uint (value, priv->error_count);
      break;
    case PROP_ATTEMPTS:
      g_value_set_uint (value, priv->attempts);
      break;
    case PROP_LAST_ERROR:
      g_value_set_boxed (value, EXTRA_GET (priv, last_error));
      break;
    case PROP_RESULT:
      g_value_set_enum (value, priv->result);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_resource_set_property (GObject      *object,
                           guint         prop_id,
                           const GValue *value,
                           GParamSpec   *pspec)
{
  ExoResource *self = EXO_RESOURCE (object);
  ExoResourcePrivate *priv = PRIV (self);

  switch (prop_id)
    {
    case PROP_ID:
      set_id (priv, g_value_get_string (value));
      break;
    case PROP_RESOURCE_TYPE:
      if (g_value_get_string (value) != NULL)
        priv->resource_type = g_intern_string (g_value_get_string (value));
      break;
    case PROP_DISPLAY_NAME:
      exo_resource_set_display_name (self, g_value_get_string (value));
      break;
    case PROP_INIT_TIMEOUT:
      exo_resource_set_init_timeout (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_resource_async_resource_init (ExoAsyncResourceInterface *iface)
{
  iface->initialize_async = _exo_resource_real_initialize_async;
  iface->initialize_finish = _exo_resource_real_task_finish;
  iface->cleanup_async = _exo_resource_real_cleanup_async;
  iface->cleanup_finish = _exo_resource_real_task_finish;
  iface->check_health_async = _exo_resource_real_check_health_async;
  iface->check_health_finish = _exo_resource_real_task_finish;
}

static void
exo_resource_class_init (ExoResourceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = exo_resource_constructed;
  object_class->dispose = exo_resource_dispose;
  object_class->finalize = exo_resource_finalize;
  object_class->get_property = exo_resource_get_property;
  object_class->set_property = exo_resource_set_property;

  klass->do_initialize = exo_resource_real_do_nothing;
  klass->do_cleanup = exo_resource_real_do_nothing;
  klass->collect_metrics = exo_resource_real_collect_metrics;
  klass->reset = exo_resource_real_reset;

  _exo_resource_private_offset = ExoResource_private_offset;
  resource_type_quark = g_quark_from_static_string ("exo-resource-type");
  vfunc_watch_quark = g_quark_from_static_string ("exo-vfunc-watch");

  g_object_class_override_property (object_class, PROP_ID, "id");
  g_object_class_override_property (object_class, PROP_RESOURCE_TYPE, "resource-type");
  g_object_class_override_property (object_class, PROP_DISPLAY_NAME, "display-name");
  g_object_class_override_property (object_class, PROP_STATE, "state");

  /**
   * ExoResource:init-timeout:
   *
   * Milliseconds one initialize attempt may take; 0 = unlimited.
   */
  _exo_resource_properties[PROP_INIT_TIMEOUT] =
    g_param_spec_uint ("init-timeout", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_property (object_class, PROP_INIT_TIMEOUT, _exo_resource_properties[PROP_INIT_TIMEOUT]);

  /**
   * ExoResource:error-count:
   *
   * Errors recorded since made or reset: failed initialize attempts, failed
   * health checks, failures reported while usable.  Notified when it changes.
   */
  _exo_resource_properties[PROP_ERROR_COUNT] =
    g_param_spec_uint ("error-count", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_property (object_class, PROP_ERROR_COUNT, _exo_resource_properties[PROP_ERROR_COUNT]);

  /**
   * ExoResource:attempts:
   *
   * Initialize attempts since the last successful one (0 once it succeeds).
   */
  _exo_resource_properties[PROP_ATTEMPTS] =
    g_param_spec_uint ("attempts", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_property (object_class, PROP_ATTEMPTS, _exo_resource_properties[PROP_ATTEMPTS]);

  /**
   * ExoResource:last-error:
   *
   * The last error recorded, or %NULL.
   */
  _exo_resource_properties[PROP_LAST_ERROR] =
    g_param_spec_boxed ("last-error", NULL, NULL, G_TYPE_ERROR,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_property (object_class, PROP_LAST_ERROR, _exo_resource_properties[PROP_LAST_ERROR]);

  /**
   * ExoResource:result:
   *
   * Why the resource is where it is; see #ExoResourceResult.
   */
  _exo_resource_properties[PROP_RESULT] =
    g_param_spec_enum ("result", NULL, NULL, EXO_TYPE_RESOURCE_RESULT, EXO_RESOURCE_RESULT_SUCCESS,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_property (object_class, PROP_RESULT, _exo_resource_properties[PROP_RESULT]);

  _exo_resource_properties[PROP_STATE] = g_object_class_find_property (object_class, "state");
  _exo_resource_properties[PROP_DISPLAY_NAME] = g_object_class_find_property (object_class, "display-name");

  _exo_resource_signal_state_changed = g_signal_lookup ("state-changed", EXO_TYPE_ASYNC_RESOURCE);
  _exo_resource_signal_notify = g_signal_lookup ("notify", G_TYPE_OBJECT);
}

static void
exo_resource_init (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  priv->state = EXO_RESOURCE_STATE_UNINITIALIZED;
  priv->thread = g_thread_self ();
  priv->unhealthy_threshold = 1;
  priv->healthy_threshold = 1;
  priv->context = g_main_context_ref_thread_default ();
}
