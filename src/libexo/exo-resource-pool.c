/* exo-resource-pool.c: a pool of resources made by a factory.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * This file is the GObject: the type, its property specs (get_property and
 * set_property; the getters and setters are in
 * exo-resource-pool-settings.c), the constructors, the coalesced property
 * notifications (notify_cb), the ::leak-detected signal, and constructed,
 * dispose and finalize.  The pool's other files, and the rules they share,
 * are in exo-resource-pool-private.h.
 *
 * Threads: all of it runs in the pool's main context.  Under the mutex it
 * touches notify_pending, last_notify_us and the counters it publishes
 * (notify_cb, _exo_resource_pool_schedule_notify); it reads phase without
 * it.  Only on the main context: the configuration (item type and
 * properties, factory), the sources, and the values last notified.
 * exo_resource_pool_init() and finalize touch everything without the
 * mutex: no other thread can see the pool then.
 *
 * Re-entrancy: notify_cb notifies after unlocking; its handlers, and those
 * of ::leak-detected, may call back into the pool.
 */
#include "exo-resource-pool-private.h"

/**
 * ExoResourcePool:
 *
 * A pool of resources made by a factory: a #GType with construct
 * properties, or an #ExoPoolFactory callback.  The pool is itself an
 * #ExoResource: initializing it makes #ExoResourcePool:min-size resources;
 * cleaning it up drains it; its state is `ready` while it can serve and
 * `degraded` while making resources fails.
 *
 * ## Borrowing
 *
 * - exo_resource_pool_acquire_async() waits up to a timeout for a resource
 *   and gives an #ExoPoolLease; waiters are served first come, first served,
 *   and a resource that sat idle longer than
 *   #ExoResourcePool:validate-after-idle-ms is health-checked first.
 * - exo_resource_pool_try_acquire() and exo_resource_pool_release() are the
 *   non-blocking, thread-safe pair for worker threads: an idle `ready`
 *   resource or %NULL, never a wait, never a creation.  While callers of
 *   exo_resource_pool_acquire_async() wait, they come first and
 *   exo_resource_pool_try_acquire() gets %NULL.
 *
 * A resource given back in a state other than `ready`, past its lifetime,
 * or with exo_resource_pool_release_broken() / exo_pool_lease_invalidate()
 * is cleaned up and dropped, and a new one is made for whoever waits.
 *
 * ## Upkeep
 *
 * In the pool's main context, a timer evicts resources idle (since their
 * last release) longer than #ExoResourcePool:idle-timeout-ms down to
 * #ExoResourcePool:min-size, retires idle resources past
 * #ExoResourcePool:max-lifetime-ms (each resource's lifetime is shortened
 * by a random 0–10 % so that resources made together do not expire
 * together), health-checks idle resources every
 * #ExoResourcePool:idle-check-interval-ms, and reports leases held longer
 * than #ExoResourcePool:leak-threshold-ms with #ExoResourcePool::leak-detected.
 * When making a resource fails, it is retried with the backoff of
 * #ExoResourcePool:retry-policy for as long as someone waits, so waiters
 * are served once the backend is back.
 *
 * ## Threads
 *
 * exo_resource_pool_try_acquire(), exo_resource_pool_release(),
 * exo_resource_pool_release_broken(), the lease functions and the
 * statistics may be called from any thread.  Everything else, including
 * exo_resource_pool_acquire_async(), belongs to the pool's main context.
 * Property notifications are coalesced and emitted in the pool's context.
 * A lease dropped on another thread hands its reference to the pool over to
 * the pool's context, so that the pool is always finalized there, and its
 * resources cleaned up there, even when a worker drops the last lease.
 */

enum {
  SIGNAL_LEAK_DETECTED,
  N_SIGNALS,
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (ExoResourcePool, exo_resource_pool, EXO_TYPE_RESOURCE)

/* --- wake-up sources --------------------------------------------------- */

static gboolean
wake_source_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  g_source_set_ready_time (source, -1);
  return callback (user_data);
}

static GSourceFuncs wake_source_funcs = {
  .dispatch = wake_source_dispatch,
};

static GSource *
wake_source_new (ExoResourcePool *self,
                 GSourceFunc      func,
                 int              priority,
                 const char      *name)
{
  GSource *source = g_source_new (&wake_source_funcs, sizeof (GSource));

  g_source_set_callback (source, func, self, NULL);
  g_source_set_priority (source, priority);
  g_source_set_static_name (source, name);
  g_source_attach (source, exo_resource_get_context (EXO_RESOURCE (self)));
  return source;
}

/* --- notifications, signals, metrics ----------------------------------- */

static gboolean
notify_cb (gpointer data)
{
  ExoResourcePool *self = data;
  GObject *object = G_OBJECT (self);
  guint size, idle, in_use, waiting;
  guint64 acquired, timeouts, created, destroyed, leaks;

  g_mutex_lock (&self->mutex);
  self->notify_pending = FALSE;
  self->last_notify_us = g_get_monotonic_time ();
  size = size_locked (self);
  idle = self->n_idle;
  in_use = self->n_lent + self->n_busy;
  waiting = self->waiters.length;
  acquired = self->acquired;
  timeouts = self->timeouts;
  created = self->created;
  destroyed = self->destroyed;
  leaks = self->leaks;
  g_mutex_unlock (&self->mutex);

  g_object_freeze_notify (object);
#define NOTIFY_IF_CHANGED(field, value, prop) \
  if (self->field != (value)) \
    { \
      self->field = (value); \
      g_object_notify_by_pspec (object, properties[prop]); \
    }
  NOTIFY_IF_CHANGED (n_size, size, PROP_SIZE);
  NOTIFY_IF_CHANGED (n_idle_notified, idle, PROP_IDLE);
  NOTIFY_IF_CHANGED (n_in_use, in_use, PROP_IN_USE);
  NOTIFY_IF_CHANGED (n_waiting, waiting, PROP_WAITING);
  NOTIFY_IF_CHANGED (n_acquired, acquired, PROP_ACQUIRED);
  NOTIFY_IF_CHANGED (n_timeouts, timeouts, PROP_TIMEOUTS);
  NOTIFY_IF_CHANGED (n_created, created, PROP_CREATED);
  NOTIFY_IF_CHANGED (n_destroyed, destroyed, PROP_DESTROYED);
  NOTIFY_IF_CHANGED (n_leaks, leaks, PROP_LEAKS);
#undef NOTIFY_IF_CHANGED
  g_object_thaw_notify (object);

  return G_SOURCE_CONTINUE;
}

/* From the pool's context: the counters changed. */
void
_exo_resource_pool_schedule_notify (ExoResourcePool *self)
{
  gboolean notify;
  gint64 when = 0;

  g_mutex_lock (&self->mutex);
  notify = want_notify_locked (self, &when);
  g_mutex_unlock (&self->mutex);
  wake (self, FALSE, notify, when);
}

/* For maintenance, in the pool's context. */
void
_exo_resource_pool_emit_leak_detected (ExoResourcePool *self,
                                       ExoResource     *resource,
                                       guint64          held_ms)
{
  g_signal_emit (self, signals[SIGNAL_LEAK_DETECTED], 0, resource, held_ms);
}

/* For the settings: @prop changed. */
void
_exo_resource_pool_notify (ExoResourcePool *self,
                           guint            prop)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

static void
exo_resource_pool_collect_metrics (ExoResource  *resource,
                                   GVariantDict *metrics)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (resource);
  ExoPoolStats stats;
  guint64 wait_count, wait_total_us;

  if (EXO_RESOURCE_CLASS (exo_resource_pool_parent_class)->collect_metrics != NULL)
    EXO_RESOURCE_CLASS (exo_resource_pool_parent_class)->collect_metrics (resource, metrics);

  exo_resource_pool_get_stats (self, &stats);
  g_variant_dict_insert (metrics, "min-size", "u", stats.min_size);
  g_variant_dict_insert (metrics, "max-size", "u", stats.max_size);
  g_variant_dict_insert (metrics, "size", "u", stats.size);
  g_variant_dict_insert (metrics, "idle", "u", stats.idle);
  g_variant_dict_insert (metrics, "in-use", "u", stats.in_use);
  g_variant_dict_insert (metrics, "waiting", "u", stats.waiting);
  g_variant_dict_insert (metrics, "acquired", "t", stats.acquired);
  g_variant_dict_insert (metrics, "timeouts", "t", stats.timeouts);
  g_variant_dict_insert (metrics, "created", "t", stats.created);
  g_variant_dict_insert (metrics, "destroyed", "t", stats.destroyed);
  g_variant_dict_insert (metrics, "leaks", "t", stats.leaks);
  g_variant_dict_insert (metrics, "create-failures", "t", stats.create_failures);
  g_variant_dict_insert (metrics, "wait-time-mean-us", "t", stats.wait_time_mean_us);
  g_variant_dict_insert (metrics, "wait-time-max-us", "t", stats.wait_time_max_us);
  /* the mean's own data, for a summary in /metrics (a mean cannot be
   * aggregated; a sum and a count can) */
  g_mutex_lock (&self->mutex);
  wait_count = self->wait_count;
  wait_total_us = self->wait_total_us;
  g_mutex_unlock (&self->mutex);
  g_variant_dict_insert (metrics, "wait-count", "t", wait_count);
  g_variant_dict_insert (metrics, "wait-time-total-us", "t", wait_total_us);
}

/* What the keys above are in /metrics (docs/metrics.md). */
static const ExoMetricEntry pool_metric_entries[] = {
  { .key = "min-size", .kind = EXO_METRIC_GAUGE, .name = "exo_pool_min_size",
    .help = "Resources the pool keeps at least." },
  { .key = "max-size", .kind = EXO_METRIC_GAUGE, .name = "exo_pool_max_size",
    .help = "The most resources the pool makes." },
  { .key = "size", .kind = EXO_METRIC_GAUGE, .name = "exo_pool_size",
    .help = "Resources in the pool (idle and in use); `exoctl status ID` has the pool's counters." },
  { .key = "idle", .kind = EXO_METRIC_GAUGE, .name = "exo_pool_idle",
    .help = "Idle resources in the pool." },
  { .key = "in-use", .kind = EXO_METRIC_GAUGE, .name = "exo_pool_in_use",
    .help = "Resources the pool lent out." },
  { .key = "waiting", .kind = EXO_METRIC_GAUGE, .name = "exo_pool_waiting",
    .help = "Callers waiting for a resource of the pool." },
  { .key = "acquired", .kind = EXO_METRIC_COUNTER, .name = "exo_pool_acquired_total",
    .help = "Successful acquisitions." },
  { .key = "timeouts", .kind = EXO_METRIC_COUNTER, .name = "exo_pool_timeouts_total",
    .help = "Acquisitions that timed out." },
  { .key = "created", .kind = EXO_METRIC_COUNTER, .name = "exo_pool_created_total",
    .help = "Resources the pool made." },
  { .key = "destroyed", .kind = EXO_METRIC_COUNTER, .name = "exo_pool_destroyed_total",
    .help = "Resources the pool retired." },
  { .key = "leaks", .kind = EXO_METRIC_COUNTER, .name = "exo_pool_leaks_total",
    .help = "Leases held past the pool's leak-threshold-ms." },
  { .key = "create-failures", .kind = EXO_METRIC_COUNTER, .name = "exo_pool_create_failures_total",
    .help = "Resources whose creation or initialize failed." },
  /* a mean: exo_pool_wait_seconds_sum / _count give it over any interval */
  { .key = "wait-time-mean-us", .kind = EXO_METRIC_HIDDEN },
  { .key = "wait-time-max-us", .kind = EXO_METRIC_GAUGE, .name = "exo_pool_wait_max_seconds",
    .scale = 1e-6, .help = "The longest wait of a served acquisition since the pool was made." },
  { .key = "wait-count", .kind = EXO_METRIC_SUMMARY, .name = "exo_pool_wait_seconds_count",
    .help = "How long served acquisitions waited for a resource." },
  { .key = "wait-time-total-us", .kind = EXO_METRIC_SUMMARY, .name = "exo_pool_wait_seconds_sum",
    .scale = 1e-6, .help = "How long served acquisitions waited for a resource." },
};

/* --- construction ------------------------------------------------------ */

/**
 * exo_resource_pool_new:
 * @item_type: a non-abstract subtype of #ExoResource
 * @min_size: resources made on initialize and kept
 * @max_size: the most resources that may exist
 *
 * Makes a pool of @item_type.  Each resource gets the id
 * `<pool id>-<serial>`.
 *
 * Returns: (transfer full): a new pool, uninitialized
 */
ExoResourcePool *
exo_resource_pool_new (GType item_type,
                       guint min_size,
                       guint max_size)
{
  return exo_resource_pool_new_with_properties (item_type, min_size, max_size, 0, NULL, NULL);
}

/**
 * exo_resource_pool_new_with_properties:
 * @item_type: a non-abstract subtype of #ExoResource
 * @min_size: resources made on initialize and kept
 * @max_size: the most resources that may exist
 * @n_properties: the length of @names and @values
 * @names: (array length=n_properties): construct property names
 * @values: (array length=n_properties): their values (copied)
 *
 * Makes a pool whose resources are `g_object_new_with_properties
 * (item_type, names, values)`.  Without an `id` among @names, each resource
 * gets the id `<pool id>-<serial>`.
 *
 * Returns: (transfer full): a new pool, uninitialized
 */
ExoResourcePool *
exo_resource_pool_new_with_properties (GType               item_type,
                                       guint               min_size,
                                       guint               max_size,
                                       guint               n_properties,
                                       const char * const *names,
                                       const GValue       *values)
{
  ExoResourcePool *self;

  g_return_val_if_fail (g_type_is_a (item_type, EXO_TYPE_RESOURCE), NULL);
  g_return_val_if_fail (!G_TYPE_IS_ABSTRACT (item_type), NULL);
  g_return_val_if_fail (n_properties == 0 || (names != NULL && values != NULL), NULL);
  g_return_val_if_fail (max_size > 0, NULL);

  self = g_object_new (EXO_TYPE_RESOURCE_POOL,
                       "item-type", item_type,
                       "max-size", max_size,
                       "min-size", min_size,
                       NULL);

  self->n_item_props = n_properties;
  self->item_prop_names = g_new0 (char *, n_properties + 1);
  self->item_prop_values = g_new0 (GValue, MAX (n_properties, 1));
  for (guint i = 0; i < n_properties; i++)
    {
      self->item_prop_names[i] = g_strdup (names[i]);
      g_value_init (&self->item_prop_values[i], G_VALUE_TYPE (&values[i]));
      g_value_copy (&values[i], &self->item_prop_values[i]);
    }

  return self;
}

/**
 * exo_resource_pool_new_with_factory:
 * @factory: (scope notified): makes an uninitialized resource
 * @user_data: data for @factory
 * @user_data_free: (nullable): frees @user_data with the pool
 * @min_size: resources made on initialize and kept
 * @max_size: the most resources that may exist
 *
 * Returns: (transfer full): a new pool, uninitialized
 */
ExoResourcePool *
exo_resource_pool_new_with_factory (ExoPoolFactory  factory,
                                    gpointer        user_data,
                                    GDestroyNotify  user_data_free,
                                    guint           min_size,
                                    guint           max_size)
{
  ExoResourcePool *self;

  g_return_val_if_fail (factory != NULL, NULL);
  g_return_val_if_fail (max_size > 0, NULL);

  self = g_object_new (EXO_TYPE_RESOURCE_POOL,
                       "max-size", max_size,
                       "min-size", min_size,
                       NULL);
  self->factory = factory;
  self->factory_data = user_data;
  self->factory_data_free = user_data_free;
  return self;
}


/* --- GObject ----------------------------------------------------------- */

static void
exo_resource_pool_constructed (GObject *object)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (object);

  G_OBJECT_CLASS (exo_resource_pool_parent_class)->constructed (object);

  self->dispatch_source = wake_source_new (self, _exo_resource_pool_dispatch_cb, G_PRIORITY_DEFAULT,
                                           "[exo] pool dispatch");
  self->notify_source = wake_source_new (self, notify_cb, G_PRIORITY_DEFAULT_IDLE,
                                         "[exo] pool notify");
  self->unref_source = wake_source_new (self, _exo_resource_pool_unref_cb, G_PRIORITY_DEFAULT,
                                        "[exo] pool unref");
  g_signal_connect (self, "state-changed", G_CALLBACK (_exo_resource_pool_state_changed_cb), NULL);
}

static void
exo_resource_pool_dispose (GObject *object)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (object);
  g_autoptr(GPtrArray) freed = NULL;

  clear_source (&self->dispatch_source);
  clear_source (&self->notify_source);
  clear_source (&self->unref_source);
  clear_source (&self->maintenance_source);
  clear_source (&self->retry_source);
  clear_source (&self->drain_source);
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);

  freed = _exo_resource_pool_dispose_slots (self);

  G_OBJECT_CLASS (exo_resource_pool_parent_class)->dispose (object);
}

static void
exo_resource_pool_finalize (GObject *object)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (object);

  g_assert (g_queue_is_empty (&self->waiters));
  g_assert (self->init_task == NULL && self->cleanup_task == NULL);

  g_clear_pointer (&self->idle, g_free);
  g_clear_pointer (&self->slots, g_hash_table_unref);
  g_clear_pointer (&self->orphans, g_hash_table_unref);
  g_clear_pointer (&self->doomed, g_ptr_array_unref);
  g_clear_pointer (&self->doomed_spare, g_ptr_array_unref);
  g_clear_pointer (&self->free_orphans, g_ptr_array_unref);
  for (guint i = 0; i < self->n_item_props; i++)
    g_value_unset (&self->item_prop_values[i]);
  g_clear_pointer (&self->item_prop_values, g_free);
  g_clear_pointer (&self->item_prop_names, g_strfreev);
  if (self->factory_data_free != NULL)
    self->factory_data_free (self->factory_data);
  g_clear_pointer (&self->retry_policy, exo_retry_policy_free);
  g_clear_object (&self->cancellable);
  g_clear_error (&self->create_error);
  g_clear_error (&self->prewarm_error);
  g_clear_pointer (&self->owner_thread, g_thread_unref);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (exo_resource_pool_parent_class)->finalize (object);
}

static void
exo_resource_pool_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (object);
  ExoPoolStats stats;

  if (prop_id >= PROP_SIZE)
    exo_resource_pool_get_stats (self, &stats);

  switch (prop_id)
    {
    case PROP_ITEM_TYPE:
      g_value_set_gtype (value, self->item_type);
      break;
    case PROP_MIN_SIZE:
      g_value_set_uint (value, exo_resource_pool_get_min_size (self));
      break;
    case PROP_MAX_SIZE:
      g_value_set_uint (value, exo_resource_pool_get_max_size (self));
      break;
    case PROP_IDLE_TIMEOUT_MS:
      g_value_set_uint (value, self->idle_timeout_ms);
      break;
    case PROP_MAX_LIFETIME_MS:
      g_value_set_uint (value, self->lifetime_ms);
      break;
    case PROP_VALIDATE_AFTER_IDLE_MS:
      g_value_set_uint (value, self->validate_ms);
      break;
    case PROP_IDLE_CHECK_INTERVAL_MS:
      g_value_set_uint (value, self->check_ms);
      break;
    case PROP_LEAK_THRESHOLD_MS:
      g_value_set_uint (value, self->leak_ms);
      break;
    case PROP_DRAIN_TIMEOUT_MS:
      g_value_set_uint (value, self->drain_timeout_ms);
      break;
    case PROP_RETRY_POLICY:
      g_value_set_boxed (value, self->retry_policy);
      break;
    case PROP_SIZE:
      g_value_set_uint (value, stats.size);
      break;
    case PROP_IDLE:
      g_value_set_uint (value, stats.idle);
      break;
    case PROP_IN_USE:
      g_value_set_uint (value, stats.in_use);
      break;
    case PROP_WAITING:
      g_value_set_uint (value, stats.waiting);
      break;
    case PROP_ACQUIRED:
      g_value_set_uint64 (value, stats.acquired);
      break;
    case PROP_TIMEOUTS:
      g_value_set_uint64 (value, stats.timeouts);
      break;
    case PROP_CREATED:
      g_value_set_uint64 (value, stats.created);
      break;
    case PROP_DESTROYED:
      g_value_set_uint64 (value, stats.destroyed);
      break;
    case PROP_LEAKS:
      g_value_set_uint64 (value, stats.leaks);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_resource_pool_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  ExoResourcePool *self = EXO_RESOURCE_POOL (object);

  switch (prop_id)
    {
    case PROP_ITEM_TYPE:
      {
        GType type = g_value_get_gtype (value);
        /* The default, the abstract base, means "a factory callback". */
        self->item_type = type == EXO_TYPE_RESOURCE ? G_TYPE_INVALID : type;
      }
      break;
    case PROP_MIN_SIZE:
      exo_resource_pool_set_min_size (self, g_value_get_uint (value));
      break;
    case PROP_MAX_SIZE:
      exo_resource_pool_set_max_size (self, g_value_get_uint (value));
      break;
    case PROP_IDLE_TIMEOUT_MS:
      exo_resource_pool_set_idle_timeout (self, g_value_get_uint (value));
      break;
    case PROP_MAX_LIFETIME_MS:
      exo_resource_pool_set_max_lifetime (self, g_value_get_uint (value));
      break;
    case PROP_VALIDATE_AFTER_IDLE_MS:
      exo_resource_pool_set_validate_after_idle (self, g_value_get_uint (value));
      break;
    case PROP_IDLE_CHECK_INTERVAL_MS:
      exo_resource_pool_set_idle_check_interval (self, g_value_get_uint (value));
      break;
    case PROP_LEAK_THRESHOLD_MS:
      exo_resource_pool_set_leak_threshold (self, g_value_get_uint (value));
      break;
    case PROP_DRAIN_TIMEOUT_MS:
      exo_resource_pool_set_drain_timeout (self, g_value_get_uint (value));
      break;
    case PROP_RETRY_POLICY:
      if (g_value_get_boxed (value) != NULL)
        exo_resource_pool_set_retry_policy (self, g_value_get_boxed (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_resource_pool_class_init (ExoResourcePoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->constructed = exo_resource_pool_constructed;
  object_class->dispose = exo_resource_pool_dispose;
  object_class->finalize = exo_resource_pool_finalize;
  object_class->get_property = exo_resource_pool_get_property;
  object_class->set_property = exo_resource_pool_set_property;

  resource_class->do_initialize = _exo_resource_pool_do_initialize;
  resource_class->do_cleanup = _exo_resource_pool_do_cleanup;
  resource_class->do_check_health = _exo_resource_pool_do_check_health;
  resource_class->collect_metrics = exo_resource_pool_collect_metrics;
  exo_resource_class_add_metric_entries (resource_class, pool_metric_entries,
                                         G_N_ELEMENTS (pool_metric_entries));

  exo_resource_class_set_resource_type (resource_class, "pool");

#define RW (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY)
#define RO (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY)

  /**
   * ExoResourcePool:item-type:
   *
   * The type of resource made, or %G_TYPE_INVALID with a factory callback.
   */
  properties[PROP_ITEM_TYPE] =
    g_param_spec_gtype ("item-type", NULL, NULL, EXO_TYPE_RESOURCE,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * ExoResourcePool:min-size:
   *
   * Resources made on initialize and kept however idle.
   */
  properties[PROP_MIN_SIZE] =
    g_param_spec_uint ("min-size", NULL, NULL, 0, G_MAXINT, 0, RW);
  /**
   * ExoResourcePool:max-size:
   *
   * The most resources that may exist at once.
   */
  properties[PROP_MAX_SIZE] =
    g_param_spec_uint ("max-size", NULL, NULL, 1, G_MAXINT, 10, RW);
  /**
   * ExoResourcePool:idle-timeout-ms:
   *
   * A resource idle (since its last release) this long is dropped, down to
   * #ExoResourcePool:min-size; 0 = never.
   */
  properties[PROP_IDLE_TIMEOUT_MS] =
    g_param_spec_uint ("idle-timeout-ms", NULL, NULL, 0, G_MAXUINT, 600000, RW);
  /**
   * ExoResourcePool:max-lifetime-ms:
   *
   * A resource older than this (less a random 0–10 % per resource) is
   * retired when given back or while idle; 0 = unlimited.
   */
  properties[PROP_MAX_LIFETIME_MS] =
    g_param_spec_uint ("max-lifetime-ms", NULL, NULL, 0, G_MAXUINT, 1800000, RW);
  /**
   * ExoResourcePool:validate-after-idle-ms:
   *
   * exo_resource_pool_acquire_async() health-checks a resource that sat
   * idle this long before lending it; 0 = never.
   */
  properties[PROP_VALIDATE_AFTER_IDLE_MS] =
    g_param_spec_uint ("validate-after-idle-ms", NULL, NULL, 0, G_MAXUINT, 0, RW);
  /**
   * ExoResourcePool:idle-check-interval-ms:
   *
   * Idle resources are health-checked this often; failing ones are
   * dropped.  0 = never.
   */
  properties[PROP_IDLE_CHECK_INTERVAL_MS] =
    g_param_spec_uint ("idle-check-interval-ms", NULL, NULL, 0, G_MAXUINT, 0, RW);
  /**
   * ExoResourcePool:leak-threshold-ms:
   *
   * A resource lent longer than this is reported once with
   * #ExoResourcePool::leak-detected; 0 = never.
   */
  properties[PROP_LEAK_THRESHOLD_MS] =
    g_param_spec_uint ("leak-threshold-ms", NULL, NULL, 0, G_MAXUINT, 0, RW);
  /**
   * ExoResourcePool:drain-timeout-ms:
   *
   * How long cleanup waits for lent resources to come back before it closes
   * them anyway; 0 = no wait.
   */
  properties[PROP_DRAIN_TIMEOUT_MS] =
    g_param_spec_uint ("drain-timeout-ms", NULL, NULL, 0, G_MAXUINT, 30000, RW);
  /**
   * ExoResourcePool:retry-policy:
   *
   * The backoff between attempts to make a resource after a failure.
   */
  properties[PROP_RETRY_POLICY] =
    g_param_spec_boxed ("retry-policy", NULL, NULL, EXO_TYPE_RETRY_POLICY, RW);
  /**
   * ExoResourcePool:size:
   *
   * Resources that exist, idle or in use.
   */
  properties[PROP_SIZE] = g_param_spec_uint ("size", NULL, NULL, 0, G_MAXUINT, 0, RO);
  /**
   * ExoResourcePool:idle:
   *
   * Resources ready to be lent.
   */
  properties[PROP_IDLE] = g_param_spec_uint ("idle", NULL, NULL, 0, G_MAXUINT, 0, RO);
  /**
   * ExoResourcePool:in-use:
   *
   * Resources lent out or being checked by the pool.
   */
  properties[PROP_IN_USE] = g_param_spec_uint ("in-use", NULL, NULL, 0, G_MAXUINT, 0, RO);
  /**
   * ExoResourcePool:waiting:
   *
   * Callers of exo_resource_pool_acquire_async() waiting for a resource.
   */
  properties[PROP_WAITING] = g_param_spec_uint ("waiting", NULL, NULL, 0, G_MAXUINT, 0, RO);
  /**
   * ExoResourcePool:acquired:
   *
   * Successful acquisitions.
   */
  properties[PROP_ACQUIRED] =
    g_param_spec_uint64 ("acquired", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * ExoResourcePool:timeouts:
   *
   * Acquisitions that timed out.
   */
  properties[PROP_TIMEOUTS] =
    g_param_spec_uint64 ("timeouts", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * ExoResourcePool:created:
   *
   * Resources made and initialized.
   */
  properties[PROP_CREATED] =
    g_param_spec_uint64 ("created", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * ExoResourcePool:destroyed:
   *
   * Resources dropped: evicted, retired, broken, unhealthy or closed.
   */
  properties[PROP_DESTROYED] =
    g_param_spec_uint64 ("destroyed", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * ExoResourcePool:leaks:
   *
   * Loans reported by #ExoResourcePool::leak-detected.
   */
  properties[PROP_LEAKS] =
    g_param_spec_uint64 ("leaks", NULL, NULL, 0, G_MAXUINT64, 0, RO);

#undef RW
#undef RO

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ExoResourcePool::leak-detected:
   * @self: the pool
   * @resource: the resource lent too long
   * @held_for_ms: how long it has been lent
   *
   * Emitted once per loan, in the pool's context, when a resource has been
   * lent longer than #ExoResourcePool:leak-threshold-ms.
   */
  signals[SIGNAL_LEAK_DETECTED] =
    g_signal_new ("leak-detected",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, EXO_TYPE_RESOURCE, G_TYPE_UINT64);
}

static void
exo_resource_pool_init (ExoResourcePool *self)
{
  g_mutex_init (&self->mutex);
  g_queue_init (&self->waiters);
  self->slots = g_hash_table_new (g_direct_hash, NULL);
  self->doomed = g_ptr_array_new ();
  self->doomed_spare = g_ptr_array_new ();
  self->free_orphans = g_ptr_array_new ();
  self->cancellable = g_cancellable_new ();
  /* ExoResource took the thread-default context of this thread */
  self->owner_thread = g_thread_ref (g_thread_self ());
  self->phase = PHASE_DOWN;
  self->min_size = 0;
  self->max_size = 10;
  self->idle_timeout_ms = 600000;
  self->lifetime_ms = 1800000;
  self->drain_timeout_ms = 30000;
  self->last_notify_us = G_MININT64 / 2;
  self->idle_alloc = 16;
  self->idle = g_new (Slot *, self->idle_alloc);

  self->retry_policy = exo_retry_policy_new ();
  self->retry_policy->max_retries = G_MAXUINT;
  self->retry_policy->initial_delay_ms = 50;
  self->retry_policy->max_delay_ms = 2000;
  self->retry_policy->jitter = EXO_JITTER_EQUAL;

  _exo_resource_pool_update_config (self);
}
