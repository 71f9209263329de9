/* exo-resource-group.c: named resources with dependencies, supervised.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: the GObject (the class documentation, properties, public getters
 * and setters, reset and metrics, dispose and finalize, class_init with
 * the member-added and member-removed signals) and the
 * ExoSupervisionStrategy enum.  Membership is in
 * exo-resource-group-members.c; the plan, the runs and the supervisor are
 * in exo-resource-group-plan.c, -run.c and -supervisor.c;
 * exo-resource-group-private.h lists the files and the rules that hold in
 * all of them.
 *
 * Rules: everything here runs in the group's main context; no locks.  The
 * setters' notifications may run handlers that re-enter the group; dispose
 * releases the members without emitting member-removed.
 */
#include "exo-resource-group-private.h"

/**
 * ExoResourceGroup:
 *
 * A resource made of named member resources with dependencies between them
 * (a directed acyclic graph), in the manner of systemd's unit dependencies
 * and Erlang/OTP supervisors.  A group is itself a resource, so groups nest.
 *
 * ## Members and dependencies
 *
 * A member's name is its #ExoAsyncResource:id.  exo_resource_group_add()
 * names the members it depends on; exo_resource_group_add_dependency() adds
 * an edge later.  While the group is `uninitialized` or `closed`, members may
 * be added in any order: the graph is checked by exo_resource_group_validate()
 * and at initialize, which refuse (with %EXO_RESOURCE_ERROR_DEPENDENCY) a
 * dependency on an unknown member ("member 'api' depends on unknown member
 * 'db'") and a cycle ("dependency cycle: a -> b -> c -> a", where `x -> y`
 * reads "x depends on y").  While the group is active, every change is
 * checked at once and refused if it would leave the graph invalid.
 *
 * ## Initialize and cleanup
 *
 * Initialize starts members in dependency order: a member starts when all
 * its dependencies are ready, independent members run in parallel (at most
 * #ExoResourceGroup:max-parallel at a time, 0 = unlimited).  When a member
 * fails, no further member is started and the group's initialize fails with
 * the member's error domain and code and the message "member 'db' failed:
 * <its message>".  Before the failure is reported, the members already
 * started are cleaned up in reverse dependency order (the base class awaits
 * #ExoResourceClass.do_cleanup); the failed member itself is left in
 * `error` so that one can see which member failed and why.
 *
 * Cleanup runs in reverse dependency order: a member is cleaned up when every
 * member that depends on it is closed; independent members in parallel.
 *
 * ## Supervision
 *
 * Once the group is ready it supervises its members.  When a member falls
 * from `ready` or `degraded` to `error`, the group restarts members according
 * to #ExoResourceGroup:strategy:
 *
 * - `one-for-one`: the failed member is cleaned up and initialized again;
 * - `rest-for-one`: the failed member and everything that depends on it,
 *   directly or not: cleaned up dependents first, then initialized in
 *   dependency order;
 * - `one-for-all`: every member, the same way.
 *
 * Restarts run one at a time, in the order the failures happened.  While a
 * member is not usable, the members that depend on it (directly or not) and
 * are `ready` are reported `degraded` with %EXO_RESOURCE_ERROR_DEPENDENCY;
 * when it is usable again, a health check of each of them restores it.
 * More than #ExoResourceGroup:restart-burst restarts within
 * #ExoResourceGroup:restart-interval-ms escalate: the group itself enters
 * `error` with %EXO_RESOURCE_ERROR_RESTART_LIMIT and stops supervising until
 * it is initialized again (a parent group restarts it).
 *
 * The group is the only supervisor of its members: when an
 * #ExoManagedResource is added, the group switches its
 * #ExoManagedResource:auto-recover off (and restores the previous value when
 * the member is removed), so that the member never recovers on its own
 * behind the group's back.  The member's retry policy still applies to the
 * retries within one initialize.  A member that is `degraded` by its own
 * health check is left alone: it is still usable.
 *
 * ## The group's state
 *
 * Once ready, the group is `ready` while every member is `ready`, and
 * `degraded` while any member is not (a member being started for the first
 * time after it was added to a running group does not count until its
 * initialize has finished).  It is `error` after escalation.
 *
 * ## Members that come and go
 *
 * A member added to an active group is initialized as soon as its
 * dependencies are ready; if that first initialize fails, the member stays
 * in `error` (the group is `degraded`) and is not restarted: remove it or
 * initialize it yourself.  exo_resource_group_remove_async() cleans a member
 * up and awaits it; removing a member that others depend on is refused with
 * an error that names them, unless forced, in which case their dependencies
 * on it are dropped.
 */

enum {
  PROP_0,
  PROP_STRATEGY,
  PROP_MAX_PARALLEL,
  PROP_RESTART_BURST,
  PROP_RESTART_INTERVAL_MS,
  PROP_RESTARTS,
  PROP_KEEP_GOING,
  N_PROPS,
};

static GParamSpec *properties[N_PROPS];
guint _exo_resource_group_signals[N_SIGNALS];

G_DEFINE_TYPE_WITH_PRIVATE (ExoResourceGroup, exo_resource_group, EXO_TYPE_RESOURCE)

gint _exo_resource_group_private_offset;

/* --- the strategy enum ------------------------------------------------- */

static const GEnumValue strategy_values[] = {
  { EXO_SUPERVISION_ONE_FOR_ONE, "EXO_SUPERVISION_ONE_FOR_ONE", "one-for-one" },
  { EXO_SUPERVISION_REST_FOR_ONE, "EXO_SUPERVISION_REST_FOR_ONE", "rest-for-one" },
  { EXO_SUPERVISION_ONE_FOR_ALL, "EXO_SUPERVISION_ONE_FOR_ALL", "one-for-all" },
  { 0, NULL, NULL },
};

GType
exo_supervision_strategy_get_type (void)
{
  static gsize type_id;

  if (g_once_init_enter (&type_id))
    {
      GType id = g_enum_register_static (g_intern_static_string ("ExoSupervisionStrategy"),
                                         strategy_values);
      g_once_init_leave (&type_id, id);
    }
  return type_id;
}

/**
 * exo_supervision_strategy_to_string:
 * @strategy: a strategy
 *
 * Returns: (transfer none): its nick, e.g. `"one-for-one"`, or %NULL if
 *   @strategy is not a strategy
 */
const char *
exo_supervision_strategy_to_string (ExoSupervisionStrategy strategy)
{
  if ((guint) strategy >= G_N_ELEMENTS (strategy_values) - 1)
    return NULL;
  return strategy_values[strategy].value_nick;
}

/**
 * exo_supervision_strategy_from_string:
 * @str: a nick such as `"rest-for-one"`
 * @out_strategy: (out) (optional): the strategy
 *
 * Returns: %TRUE if @str names a strategy
 */
gboolean
exo_supervision_strategy_from_string (const char             *str,
                                      ExoSupervisionStrategy *out_strategy)
{
  if (str == NULL)
    return FALSE;
  for (guint i = 0; strategy_values[i].value_nick != NULL; i++)
    if (g_str_equal (str, strategy_values[i].value_nick))
      {
        if (out_strategy != NULL)
          *out_strategy = strategy_values[i].value;
        return TRUE;
      }
  return FALSE;
}


/* --- properties -------------------------------------------------------- */

/**
 * exo_resource_group_get_strategy:
 * @self: a group
 *
 * Returns: the value of #ExoResourceGroup:strategy
 */
ExoSupervisionStrategy
exo_resource_group_get_strategy (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), EXO_SUPERVISION_ONE_FOR_ONE);
  return PRIV (self)->strategy;
}

/**
 * exo_resource_group_set_strategy:
 * @self: a group
 * @strategy: what to restart when a member fails
 *
 * Sets #ExoResourceGroup:strategy.
 */
void
exo_resource_group_set_strategy (ExoResourceGroup       *self,
                                 ExoSupervisionStrategy  strategy)
{
  ExoResourceGroupPrivate *priv;

  g_return_if_fail (EXO_IS_RESOURCE_GROUP (self));
  g_return_if_fail ((guint) strategy <= EXO_SUPERVISION_ONE_FOR_ALL);

  priv = PRIV (self);
  if (priv->strategy == strategy)
    return;
  priv->strategy = strategy;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STRATEGY]);
}

/**
 * exo_resource_group_get_max_parallel:
 * @self: a group
 *
 * Returns: the value of #ExoResourceGroup:max-parallel (0 = no limit)
 */
guint
exo_resource_group_get_max_parallel (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), 0);
  return PRIV (self)->max_parallel;
}

/**
 * exo_resource_group_set_max_parallel:
 * @self: a group
 * @max_parallel: how many members may initialize (or clean up) at once;
 *   0 = no limit
 *
 * Sets #ExoResourceGroup:max-parallel.
 */
void
exo_resource_group_set_max_parallel (ExoResourceGroup *self,
                                     guint             max_parallel)
{
  ExoResourceGroupPrivate *priv;

  g_return_if_fail (EXO_IS_RESOURCE_GROUP (self));

  priv = PRIV (self);
  if (priv->max_parallel == max_parallel)
    return;
  priv->max_parallel = max_parallel;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_PARALLEL]);

  _exo_resource_group_drain_live_runs (self, FALSE);
}

static void
update_limiter (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  exo_restart_limiter_free (priv->limiter);
  priv->limiter = exo_restart_limiter_new (priv->restart_burst, priv->restart_interval_ms);
}

/**
 * exo_resource_group_get_restart_burst:
 * @self: a group
 *
 * Returns: the value of #ExoResourceGroup:restart-burst (0 = no limit)
 */
guint
exo_resource_group_get_restart_burst (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), 0);
  return PRIV (self)->restart_burst;
}

/**
 * exo_resource_group_set_restart_burst:
 * @self: a group
 * @burst: restarts allowed within the interval; 0 = no limit
 *
 * Sets #ExoResourceGroup:restart-burst.  The count of past restarts is
 * forgotten.
 */
void
exo_resource_group_set_restart_burst (ExoResourceGroup *self,
                                      guint             burst)
{
  g_return_if_fail (EXO_IS_RESOURCE_GROUP (self));

  if (PRIV (self)->restart_burst == burst)
    return;
  PRIV (self)->restart_burst = burst;
  update_limiter (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESTART_BURST]);
}

/**
 * exo_resource_group_get_restart_interval:
 * @self: a group
 *
 * Returns: the value of #ExoResourceGroup:restart-interval-ms
 */
guint
exo_resource_group_get_restart_interval (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), 0);
  return PRIV (self)->restart_interval_ms;
}

/**
 * exo_resource_group_set_restart_interval:
 * @self: a group
 * @interval_ms: the window of the restart limit, in milliseconds
 *
 * Sets #ExoResourceGroup:restart-interval-ms.  The count of past restarts
 * is forgotten.
 */
void
exo_resource_group_set_restart_interval (ExoResourceGroup *self,
                                         guint             interval_ms)
{
  g_return_if_fail (EXO_IS_RESOURCE_GROUP (self));

  if (PRIV (self)->restart_interval_ms == interval_ms)
    return;
  PRIV (self)->restart_interval_ms = interval_ms;
  update_limiter (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESTART_INTERVAL_MS]);
}

/**
 * exo_resource_group_get_keep_going:
 * @self: a group
 *
 * Returns: whether a member that fails at the group's start leaves the group
 *   up (see #ExoResourceGroup:keep-going)
 */
gboolean
exo_resource_group_get_keep_going (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), FALSE);
  return PRIV (self)->keep_going;
}

/**
 * exo_resource_group_set_keep_going:
 * @self: a group
 * @keep_going: the new value
 *
 * See #ExoResourceGroup:keep-going.  Takes effect at the next initialize.
 */
void
exo_resource_group_set_keep_going (ExoResourceGroup *self,
                                   gboolean          keep_going)
{
  g_return_if_fail (EXO_IS_RESOURCE_GROUP (self));

  keep_going = !!keep_going;
  if (PRIV (self)->keep_going == (guint) keep_going)
    return;
  PRIV (self)->keep_going = keep_going;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_KEEP_GOING]);
}

/**
 * exo_resource_group_get_restarts:
 * @self: a group
 *
 * Returns: restarts done by supervision since made or reset (one per
 *   failure handled, however many members it restarted)
 */
guint
exo_resource_group_get_restarts (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), 0);
  return PRIV (self)->restarts;
}

/* For the supervisor: restarts changed. */
void
_exo_resource_group_notify_restarts (ExoResourceGroup *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESTARTS]);
}

/* --- GObject ----------------------------------------------------------- */

static void
exo_resource_group_reset (ExoResource *resource)
{
  ExoResourceGroup *self = EXO_RESOURCE_GROUP (resource);
  ExoResourceGroupPrivate *priv = PRIV (self);

  EXO_RESOURCE_CLASS (exo_resource_group_parent_class)->reset (resource);

  exo_restart_limiter_reset (priv->limiter);
  if (priv->restarts != 0)
    {
      priv->restarts = 0;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESTARTS]);
    }
}

static void
exo_resource_group_collect_metrics (ExoResource  *resource,
                                    GVariantDict *metrics)
{
  ExoResourceGroupPrivate *priv = PRIV (resource);

  if (EXO_RESOURCE_CLASS (exo_resource_group_parent_class)->collect_metrics != NULL)
    EXO_RESOURCE_CLASS (exo_resource_group_parent_class)->collect_metrics (resource, metrics);

  g_variant_dict_insert (metrics, "members", "u", priv->members->len);
  g_variant_dict_insert (metrics, "restarts", "u", priv->restarts);
  g_variant_dict_insert (metrics, "strategy", "s", exo_supervision_strategy_to_string (priv->strategy));
  g_variant_dict_insert (metrics, "max-parallel", "u", priv->max_parallel);
  g_variant_dict_insert (metrics, "restart-limit-hit", "b", (gboolean) priv->escalated);
}

/* What the keys above are in /metrics (docs/metrics.md). */
static const ExoMetricEntry group_metric_entries[] = {
  { .key = "members", .kind = EXO_METRIC_GAUGE, .name = "exo_group_members",
    .help = "Members of the group; `exoctl tree` shows them." },
  { .key = "restarts", .kind = EXO_METRIC_COUNTER, .name = "exo_group_member_restarts_total",
    .help = "Restarts of members by the group's supervision." },
  { .key = "strategy", .kind = EXO_METRIC_INFO, .name = "exo_group_info",
    .help = "The group's supervision strategy (value 1)." },
  { .key = "max-parallel", .kind = EXO_METRIC_GAUGE, .name = "exo_group_max_parallel",
    .help = "Members the group initializes at a time (0: no limit)." },
  { .key = "restart-limit-hit", .kind = EXO_METRIC_GAUGE, .name = "exo_resource_restart_limit_hit",
    .help = "1 when the resource was given up on (start-limit-hit); `exoctl restart ID` starts it again." },
};

static void
exo_resource_group_dispose (GObject *object)
{
  ExoResourceGroup *self = EXO_RESOURCE_GROUP (object);
  ExoResourceGroupPrivate *priv = PRIV (self);

  priv->up = FALSE;
  if (priv->pass_source != NULL)
    {
      g_source_destroy (priv->pass_source);
      g_clear_pointer (&priv->pass_source, g_source_unref);
    }
  if (priv->events_source != NULL)
    {
      g_source_destroy (priv->events_source);
      g_clear_pointer (&priv->events_source, g_source_unref);
    }
  for (guint i = 0; i < priv->events->len; i++)
    _exo_resource_group_member_event_clear (&g_array_index (priv->events, MemberEvent, i));
  g_array_set_size (priv->events, 0);
  _exo_resource_group_disconnect_init_cancellable (self);
  _exo_resource_group_drop_jobs (self);

  while (priv->members->len > 0)
    {
      Member *m = g_ptr_array_index (priv->members, priv->members->len - 1);

      _exo_resource_group_clear_member_timers (m);
      m->removed = TRUE;
      m->run = NULL;
      m->deps = m->rdeps = NULL;
      m->n_deps = m->n_rdeps = 0;
      _exo_resource_group_member_release (m);
      g_hash_table_remove (priv->by_name, m);
      g_ptr_array_steal_index (priv->members, priv->members->len - 1);
      _exo_resource_group_member_unref (m);
    }
  g_ptr_array_set_size (priv->order, 0);
  priv->plan_dirty = TRUE;

  G_OBJECT_CLASS (exo_resource_group_parent_class)->dispose (object);
}

static void
exo_resource_group_finalize (GObject *object)
{
  ExoResourceGroupPrivate *priv = PRIV (object);

  g_assert (priv->live_runs->len == 0);
  g_clear_pointer (&priv->members, g_ptr_array_unref);
  g_clear_pointer (&priv->by_name, g_hash_table_unref);
  g_clear_pointer (&priv->dep_names, g_hash_table_unref);
  g_clear_pointer (&priv->order, g_ptr_array_unref);
  g_clear_pointer (&priv->live_runs, g_ptr_array_unref);
  g_clear_pointer (&priv->edges, g_free);
  g_clear_pointer (&priv->limiter, exo_restart_limiter_free);
  g_clear_pointer (&priv->events, g_array_unref);
  g_clear_pointer (&priv->default_policy, exo_retry_policy_free);
  g_clear_error (&priv->plan_error);

  G_OBJECT_CLASS (exo_resource_group_parent_class)->finalize (object);
}

static void
exo_resource_group_constructed (GObject *object)
{
  G_OBJECT_CLASS (exo_resource_group_parent_class)->constructed (object);

  g_signal_connect (object, "state-changed", G_CALLBACK (_exo_resource_group_state_changed), NULL);
}

static void
exo_resource_group_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  ExoResourceGroup *self = EXO_RESOURCE_GROUP (object);
  ExoResourceGroupPrivate *priv = PRIV (self);

  switch (prop_id)
    {
    case PROP_STRATEGY:
      g_value_set_enum (value, priv->strategy);
      break;
    case PROP_MAX_PARALLEL:
      g_value_set_uint (value, priv->max_parallel);
      break;
    case PROP_RESTART_BURST:
      g_value_set_uint (value, priv->restart_burst);
      break;
    case PROP_RESTART_INTERVAL_MS:
      g_value_set_uint (value, priv->restart_interval_ms);
      break;
    case PROP_RESTARTS:
      g_value_set_uint (value, priv->restarts);
      break;
    case PROP_KEEP_GOING:
      g_value_set_boolean (value, priv->keep_going);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_resource_group_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  ExoResourceGroup *self = EXO_RESOURCE_GROUP (object);

  switch (prop_id)
    {
    case PROP_STRATEGY:
      exo_resource_group_set_strategy (self, g_value_get_enum (value));
      break;
    case PROP_MAX_PARALLEL:
      exo_resource_group_set_max_parallel (self, g_value_get_uint (value));
      break;
    case PROP_RESTART_BURST:
      exo_resource_group_set_restart_burst (self, g_value_get_uint (value));
      break;
    case PROP_RESTART_INTERVAL_MS:
      exo_resource_group_set_restart_interval (self, g_value_get_uint (value));
      break;
    case PROP_KEEP_GOING:
      exo_resource_group_set_keep_going (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_resource_group_class_init (ExoResourceGroupClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  /* for PRIV() in the group's other files */
  _exo_resource_group_private_offset = ExoResourceGroup_private_offset;

  object_class->constructed = exo_resource_group_constructed;
  object_class->dispose = exo_resource_group_dispose;
  object_class->finalize = exo_resource_group_finalize;
  object_class->get_property = exo_resource_group_get_property;
  object_class->set_property = exo_resource_group_set_property;

  resource_class->do_initialize = _exo_resource_group_do_initialize;
  resource_class->do_cleanup = _exo_resource_group_do_cleanup;
  resource_class->do_check_health = _exo_resource_group_do_check_health;
  resource_class->collect_metrics = exo_resource_group_collect_metrics;
  exo_resource_class_add_metric_entries (resource_class, group_metric_entries,
                                         G_N_ELEMENTS (group_metric_entries));
  resource_class->reset = exo_resource_group_reset;
  exo_resource_class_set_resource_type (resource_class, "group");


  /**
   * ExoResourceGroup:strategy:
   *
   * What the group restarts when a member that was ready fails.
   */
  properties[PROP_STRATEGY] =
    g_param_spec_enum ("strategy", NULL, NULL,
                       EXO_TYPE_SUPERVISION_STRATEGY, EXO_SUPERVISION_ONE_FOR_ONE,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoResourceGroup:max-parallel:
   *
   * How many members may initialize or clean up at once; 0 = no limit.
   */
  properties[PROP_MAX_PARALLEL] =
    g_param_spec_uint ("max-parallel", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoResourceGroup:restart-burst:
   *
   * At most this many restarts within #ExoResourceGroup:restart-interval-ms;
   * one more escalates the group to `error`.  0 = no limit.
   */
  properties[PROP_RESTART_BURST] =
    g_param_spec_uint ("restart-burst", NULL, NULL, 0, G_MAXUINT, DEFAULT_RESTART_BURST,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoResourceGroup:restart-interval-ms:
   *
   * The window of the restart limit, in milliseconds.
   */
  properties[PROP_RESTART_INTERVAL_MS] =
    g_param_spec_uint ("restart-interval-ms", NULL, NULL, 0, G_MAXUINT, DEFAULT_RESTART_INTERVAL_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoResourceGroup:restarts:
   *
   * Restarts done by supervision since made or reset.
   */
  properties[PROP_RESTARTS] =
    g_param_spec_uint ("restarts", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoResourceGroup:keep-going:
   *
   * When %TRUE, a member that fails to initialize while the group starts
   * does not fail the group's initialize (no rollback): the group comes up
   * `degraded`, restarts that member with backoff like any failed member,
   * and starts the members that depend on it once it is ready — the way a
   * system boots with a failed service.  exo-node's root group keeps going.
   */
  properties[PROP_KEEP_GOING] =
    g_param_spec_boolean ("keep-going", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ExoResourceGroup::member-added:
   * @self: the group
   * @member: the resource added
   *
   * Emitted when a member was added.
   */
  _exo_resource_group_signals[SIGNAL_MEMBER_ADDED] =
    g_signal_new ("member-added",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (ExoResourceGroupClass, member_added),
                  NULL, NULL,
                  g_cclosure_marshal_VOID__OBJECT,
                  G_TYPE_NONE, 1, EXO_TYPE_RESOURCE);
  g_signal_set_va_marshaller (_exo_resource_group_signals[SIGNAL_MEMBER_ADDED], G_TYPE_FROM_CLASS (klass),
                              g_cclosure_marshal_VOID__OBJECTv);

  /**
   * ExoResourceGroup::member-removed:
   * @self: the group
   * @member: the resource removed
   *
   * Emitted when a member has left the group and was cleaned up.
   */
  _exo_resource_group_signals[SIGNAL_MEMBER_REMOVED] =
    g_signal_new ("member-removed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (ExoResourceGroupClass, member_removed),
                  NULL, NULL,
                  g_cclosure_marshal_VOID__OBJECT,
                  G_TYPE_NONE, 1, EXO_TYPE_RESOURCE);
  g_signal_set_va_marshaller (_exo_resource_group_signals[SIGNAL_MEMBER_REMOVED], G_TYPE_FROM_CLASS (klass),
                              g_cclosure_marshal_VOID__OBJECTv);
}

static void
exo_resource_group_init (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  priv->members = g_ptr_array_new_with_free_func (_exo_resource_group_member_unref);
  priv->by_name = g_hash_table_new (_exo_resource_group_member_key_hash,
                                    _exo_resource_group_member_key_equal);
  priv->dep_names = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) g_ptr_array_unref);
  priv->order = g_ptr_array_new ();
  priv->live_runs = g_ptr_array_new ();
  priv->strategy = EXO_SUPERVISION_ONE_FOR_ONE;
  priv->restart_burst = DEFAULT_RESTART_BURST;
  priv->restart_interval_ms = DEFAULT_RESTART_INTERVAL_MS;
  priv->limiter = exo_restart_limiter_new (priv->restart_burst, priv->restart_interval_ms);
  priv->plan_dirty = TRUE;
  g_queue_init (&priv->jobs);
  priv->events = g_array_new (FALSE, FALSE, sizeof (MemberEvent));
  priv->default_policy = exo_retry_policy_new ();
}
