/* exo-resource-group.c: named resources with dependencies, supervised.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: the GObject (properties, public getters and setters, dispose and
 * finalize, class_init), membership (exo_resource_group_add(),
 * _add_dependency(), _remove_async(), the by-name set and
 * exo_resource_group_lookup()) and the ExoSupervisionStrategy enum.  The
 * plan, the runs and the supervisor are in exo-resource-group-plan.c,
 * -run.c and -supervisor.c; exo-resource-group-private.h lists the files
 * and the rules that hold in all of them.
 *
 * Rules: everything here runs in the group's main context; no locks.
 * member-added and member-removed are emitted outside any member's
 * state-changed emission; their handlers may re-enter the group, so the
 * membership code holds references across them.
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

enum {
  SIGNAL_MEMBER_ADDED,
  SIGNAL_MEMBER_REMOVED,
  N_SIGNALS,
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

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

static void
forget_dep_names (Member *m)
{
  if (m->owner != NULL)
    g_hash_table_remove (PRIV (m->owner)->dep_names, m);
}

void
_exo_resource_group_member_unref (gpointer data)
{
  Member *m = data;

  if (--m->refcount > 0)
    return;
  if (_exo_resource_get_member (m->resource) == m)
    _exo_resource_set_member (m->resource, NULL);
  _exo_resource_group_clear_member_timers (m);
  if (m->sup != NULL)
    {
      g_clear_pointer (&m->sup->limiter, exo_restart_limiter_free);
      g_clear_pointer (&m->sup, g_free);
    }
  forget_dep_names (m);
  g_object_unref (m->resource);
  g_free (m);
}

/* The group @resource belongs to (until it is released), or %NULL. */
static ExoResourceGroup *
group_of (ExoResource *resource)
{
  Member *m = _exo_resource_get_member (resource);

  return m != NULL ? m->owner : NULL;
}

static void
add_dep_name (Member     *m,
              const char *name)
{
  GPtrArray *names = deps_of (m);

  if (names == NULL)
    {
      names = g_ptr_array_new_with_free_func (g_free);
      g_hash_table_insert (PRIV (m->owner)->dep_names, m, names);
    }
  g_ptr_array_add (names, g_strdup (name));
}

gboolean
_exo_resource_group_member_has_dep_name (Member     *m,
                                         const char *name)
{
  for (guint i = 0; i < n_dep_names (m); i++)
    if (g_str_equal (g_ptr_array_index (deps_of (m), i), name))
      return TRUE;
  return FALSE;
}

/* The members by name: a set of Member* hashed by their name (a table of
 * name -> Member would keep a second array of pointers, 8 bytes a bucket).
 * A name is looked up with a NameKey, told from a Member by its first
 * word: a Member's is its resource, never &name_key_tag. */
typedef struct
{
  gconstpointer  tag;           /* &name_key_tag */
  const char    *name;
} NameKey;

static const char name_key_tag = 0;

static inline const char *
key_name (gconstpointer key)
{
  const NameKey *name_key = key;

  if (name_key->tag == &name_key_tag)
    return name_key->name;
  return member_name ((Member *) key);
}

static guint
member_key_hash (gconstpointer key)
{
  return g_str_hash (key_name (key));
}

static gboolean
member_key_equal (gconstpointer a,
                  gconstpointer b)
{
  return g_str_equal (key_name (a), key_name (b));
}

Member *
_exo_resource_group_member_lookup (ExoResourceGroupPrivate *priv,
                                   const char              *name)
{
  NameKey key = { &name_key_tag, name };

  return g_hash_table_lookup (priv->by_name, &key);
}

/* --- adding and removing ---------------------------------------------- */

static void
member_attach (ExoResourceGroup *self,
               Member           *m)
{
  /* Told of the member's transitions by the resource itself (no signal
   * handler: see _exo_resource_group_member_state_changed()). */
  _exo_resource_set_member (m->resource, m);

  if (EXO_IS_MANAGED_RESOURCE (m->resource))
    {
      ExoManagedResource *managed = EXO_MANAGED_RESOURCE (m->resource);

      g_autoptr(ExoRetryPolicy) policy = exo_managed_resource_get_retry_policy (managed);

      m->managed = TRUE;
      m->saved_auto_recover = exo_managed_resource_get_auto_recover (managed);
      exo_managed_resource_set_auto_recover (managed, FALSE);
      if (m->sup != NULL)
        g_clear_pointer (&m->sup->limiter, exo_restart_limiter_free);
      /* the limiter itself is made at the first restart that counts */
      m->limit_burst = MIN (policy->restart_burst, EXO_RESTART_BURST_MAX);
      m->limit_interval_ms = policy->restart_interval_ms;
    }
}

/* Takes @m out of the group's tables and out of any run.  The caller
 * keeps a ref. */
static void
member_detach (ExoResourceGroup *self,
               Member           *m)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  Run *run = m->run;

  m->removed = TRUE;          /* member_group() is NULL: no more bookkeeping */
  _exo_resource_group_clear_member_timers (m);

  g_hash_table_remove (priv->by_name, m);
  g_ptr_array_steal_index (priv->members, m->index);
  for (guint i = m->index; i < priv->members->len; i++)
    ((Member *) g_ptr_array_index (priv->members, i))->index = i;

  /* For a run, a member that left is done. */
  if (run != NULL)
    {
      if (m->rstate != RS_DONE)
        {
          m->rstate = RS_DONE;
          run->n_remaining--;
        }
      m->run = NULL;
    }
  m->deps = m->rdeps = NULL;
  m->n_deps = m->n_rdeps = 0;

  _exo_resource_group_invalidate_plan (self, TRUE);
  if (run != NULL && run->live)
    {
      _exo_resource_group_run_ref (run);
      _exo_resource_group_run_drain (run);
      _exo_resource_group_run_unref (run);
    }
}

static void
member_release (Member *m)
{
  if (_exo_resource_get_member (m->resource) == m)
    _exo_resource_set_member (m->resource, NULL);
  forget_dep_names (m);
  m->owner = NULL;
  if (m->managed)
    exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (m->resource),
                                           m->saved_auto_recover);
  m->managed = FALSE;
}

/**
 * exo_resource_group_new:
 * @id: (nullable): the group's id; one is made up when %NULL
 *
 * Returns: (transfer full): a new, empty group
 */
ExoResourceGroup *
exo_resource_group_new (const char *id)
{
  return g_object_new (EXO_TYPE_RESOURCE_GROUP, "id", id, NULL);
}

/**
 * exo_resource_group_add:
 * @self: a group
 * @resource: the resource to add; its id is its member name
 * @depends_on: (nullable) (array zero-terminated=1): names of the members
 *   it depends on; they need not exist yet while the group is not active
 * @error: return location for an error
 *
 * Adds @resource to @self, which takes a reference.  A resource belongs to
 * at most one group.  Added to an active group, @resource is initialized as
 * soon as its dependencies are ready; its dependencies must then exist.
 * An #ExoManagedResource's auto-recover is switched off while it is a
 * member: the group supervises it.
 *
 * Returns: %TRUE if @resource was added; %FALSE with
 *   %EXO_RESOURCE_ERROR_INVALID_STATE for a name already taken or a resource
 *   already in a group, %EXO_RESOURCE_ERROR_DEPENDENCY for a dependency
 *   that would leave the graph invalid
 */
gboolean
exo_resource_group_add (ExoResourceGroup   *self,
                        ExoResource        *resource,
                        const char * const *depends_on,
                        GError            **error)
{
  ExoResourceGroupPrivate *priv;
  ExoResourceGroup *owner;
  const char *name;
  Member *m;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), FALSE);
  g_return_val_if_fail (EXO_IS_RESOURCE (resource), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  priv = PRIV (self);
  name = exo_resource_get_id (resource);

  owner = group_of (resource);
  if (owner != NULL)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                   "resource '%s' already belongs to group '%s'",
                   name, exo_resource_get_id (EXO_RESOURCE (owner)));
      return FALSE;
    }

  for (ExoResourceGroup *g = self; g != NULL; g = group_of (EXO_RESOURCE (g)))
    if (EXO_RESOURCE (g) == resource)
      {
        g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                     "group '%s' cannot contain itself", name);
        return FALSE;
      }

  if (_exo_resource_group_member_lookup (priv, name) != NULL)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                   "group '%s' already has a member '%s'",
                   exo_resource_get_id (EXO_RESOURCE (self)), name);
      return FALSE;
    }

  m = g_new0 (Member, 1);
  m->refcount = 1;
  m->owner = self;
  m->resource = g_object_ref (resource);

  for (guint i = 0; depends_on != NULL && depends_on[i] != NULL; i++)
    {
      if (g_str_equal (depends_on[i], name))
        {
          g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                       "dependency cycle: %s -> %s", name, name);
          _exo_resource_group_member_unref (m);
          return FALSE;
        }
      if (!_exo_resource_group_member_has_dep_name (m, depends_on[i]))
        add_dep_name (m, depends_on[i]);
    }

  m->index = priv->members->len;
  g_ptr_array_add (priv->members, m);
  g_hash_table_add (priv->by_name, m);
  _exo_resource_group_invalidate_plan (self, FALSE);

  if (group_is_active (self))
    {
      if (!_exo_resource_group_ensure_plan (self, error))
        {
          g_hash_table_remove (priv->by_name, m);
          g_ptr_array_steal_index (priv->members, m->index);
          _exo_resource_group_invalidate_plan (self, TRUE);
          _exo_resource_group_member_unref (m);
          return FALSE;
        }
      m->fresh = TRUE;
    }

  member_attach (self, m);
  _exo_resource_group_schedule_pass (self);

  g_signal_emit (self, signals[SIGNAL_MEMBER_ADDED], 0, resource);
  return TRUE;
}

/**
 * exo_resource_group_add_dependency:
 * @self: a group
 * @member: the name of a member
 * @depends_on: the name of the member it depends on
 * @error: return location for an error
 *
 * Makes @member depend on @depends_on.  While the group is not active,
 * @depends_on need not exist yet: see exo_resource_group_validate().
 *
 * Returns: %TRUE if the dependency is recorded; %FALSE with
 *   %EXO_RESOURCE_ERROR_NOT_FOUND if @member is not a member, or
 *   %EXO_RESOURCE_ERROR_DEPENDENCY if the edge makes a cycle with itself or
 *   (while active) a cycle or a missing dependency
 */
gboolean
exo_resource_group_add_dependency (ExoResourceGroup  *self,
                                   const char        *member,
                                   const char        *depends_on,
                                   GError           **error)
{
  ExoResourceGroupPrivate *priv;
  Member *m;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), FALSE);
  g_return_val_if_fail (member != NULL, FALSE);
  g_return_val_if_fail (depends_on != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  priv = PRIV (self);
  m = _exo_resource_group_member_lookup (priv, member);
  if (m == NULL)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_NOT_FOUND,
                   "group '%s' has no member '%s'",
                   exo_resource_get_id (EXO_RESOURCE (self)), member);
      return FALSE;
    }
  if (g_str_equal (member, depends_on))
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                   "dependency cycle: %s -> %s", member, member);
      return FALSE;
    }
  if (_exo_resource_group_member_has_dep_name (m, depends_on))
    return TRUE;

  add_dep_name (m, depends_on);
  _exo_resource_group_invalidate_plan (self, FALSE);

  if (group_is_active (self) && !_exo_resource_group_ensure_plan (self, error))
    {
      g_ptr_array_remove_index (deps_of (m), n_dep_names (m) - 1);
      _exo_resource_group_invalidate_plan (self, FALSE);
      return FALSE;
    }

  _exo_resource_group_schedule_pass (self);
  return TRUE;
}

static void
removal_finish (GTask  *task,
                GError *error)
{
  ExoResourceGroup *self = g_task_get_source_object (task);
  Member *m = g_task_get_task_data (task);

  member_release (m);
  g_signal_emit (self, signals[SIGNAL_MEMBER_REMOVED], 0, m->resource);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
removal_cleanup_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  exo_resource_cleanup_finish (EXO_RESOURCE (source), result, &error);
  removal_finish (task, error);
}

/**
 * exo_resource_group_remove_async:
 * @self: a group
 * @member: the name of the member to remove
 * @force: remove it even if other members depend on it; their
 *   dependencies on it are dropped
 * @cancellable: (nullable): a cancellable (the cleanup itself always runs
 *   to the end)
 * @callback: called when the member is removed and cleaned up
 * @user_data: data for @callback
 *
 * Removes @member from @self.  If it holds anything (it is not
 * `uninitialized` or `closed`) it is cleaned up first, and
 * #ExoResourceGroup::member-removed is emitted when that is done.
 */
void
exo_resource_group_remove_async (ExoResourceGroup    *self,
                                 const char          *member,
                                 gboolean             force,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  ExoResourceGroupPrivate *priv;
  g_autoptr(GTask) task = NULL;
  g_autoptr(GPtrArray) dependents = NULL;
  ExoResourceState state;
  Member *m;

  g_return_if_fail (EXO_IS_RESOURCE_GROUP (self));
  g_return_if_fail (member != NULL);

  priv = PRIV (self);
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, exo_resource_group_remove_async);

  m = _exo_resource_group_member_lookup (priv, member);
  if (m == NULL)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_NOT_FOUND,
                               "group '%s' has no member '%s'",
                               exo_resource_get_id (EXO_RESOURCE (self)), member);
      return;
    }

  dependents = g_ptr_array_new ();
  for (guint i = 0; i < priv->members->len; i++)
    {
      Member *d = g_ptr_array_index (priv->members, i);

      if (_exo_resource_group_member_has_dep_name (d, member_name (m)))
        g_ptr_array_add (dependents, d);
    }

  if (dependents->len > 0 && !force)
    {
      g_autoptr(GString) names = g_string_new (NULL);

      for (guint i = 0; i < dependents->len; i++)
        g_string_append_printf (names, "%s'%s'", i > 0 ? ", " : "",
                                member_name ((Member *) g_ptr_array_index (dependents, i)));
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                               "member '%s' is needed by %s", member_name (m), names->str);
      return;
    }

  for (guint i = 0; i < dependents->len; i++)
    {
      Member *d = g_ptr_array_index (dependents, i);

      for (guint j = 0; j < n_dep_names (d); j++)
        if (g_str_equal (g_ptr_array_index (deps_of (d), j), member_name (m)))
          g_ptr_array_remove_index (deps_of (d), j--);
    }

  g_task_set_task_data (task, member_ref (m), _exo_resource_group_member_unref);
  member_detach (self, m);
  _exo_resource_group_member_unref (m);   /* the group's ref */

  _exo_resource_group_schedule_pass (self);

  state = member_state (m);
  if ((state != EXO_RESOURCE_STATE_UNINITIALIZED && state != EXO_RESOURCE_STATE_CLOSED) ||
      _exo_resource_is_busy (m->resource))
    exo_resource_cleanup_async (m->resource, NULL, removal_cleanup_cb, g_steal_pointer (&task));
  else
    removal_finish (task, NULL);
}

/**
 * exo_resource_group_remove_finish:
 * @self: a group
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Returns: %TRUE if the member was removed and cleaned up; %FALSE with
 *   %EXO_RESOURCE_ERROR_NOT_FOUND, with %EXO_RESOURCE_ERROR_DEPENDENCY
 *   (naming the members that depend on it; nothing was changed), or with
 *   the error of its cleanup (it was removed all the same)
 */
gboolean
exo_resource_group_remove_finish (ExoResourceGroup  *self,
                                  GAsyncResult      *result,
                                  GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * exo_resource_group_lookup:
 * @self: a group
 * @member: a member name
 *
 * Returns: (transfer none) (nullable): the member called @member
 */
ExoResource *
exo_resource_group_lookup (ExoResourceGroup *self,
                           const char       *member)
{
  Member *m;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), NULL);
  g_return_val_if_fail (member != NULL, NULL);

  m = _exo_resource_group_member_lookup (PRIV (self), member);
  return m != NULL ? m->resource : NULL;
}

/**
 * exo_resource_group_get_n_members:
 * @self: a group
 *
 * Returns: the number of members
 */
guint
exo_resource_group_get_n_members (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), 0);
  return PRIV (self)->members->len;
}

/**
 * exo_resource_group_get_members:
 * @self: a group
 *
 * Returns: (transfer container) (element-type ExoResource): the members in
 *   topological order (dependencies first); if the graph is not valid, the
 *   members it cannot order come last, in the order they were added
 */
GPtrArray *
exo_resource_group_get_members (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv;
  GPtrArray *members;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), NULL);

  priv = PRIV (self);
  _exo_resource_group_ensure_plan (self, NULL);
  members = g_ptr_array_new_full (priv->order->len, g_object_unref);
  for (guint i = 0; i < priv->order->len; i++)
    g_ptr_array_add (members, g_object_ref (((Member *) g_ptr_array_index (priv->order, i))->resource));
  return members;
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
      member_release (m);
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
  signals[SIGNAL_MEMBER_ADDED] =
    g_signal_new ("member-added",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (ExoResourceGroupClass, member_added),
                  NULL, NULL,
                  g_cclosure_marshal_VOID__OBJECT,
                  G_TYPE_NONE, 1, EXO_TYPE_RESOURCE);
  g_signal_set_va_marshaller (signals[SIGNAL_MEMBER_ADDED], G_TYPE_FROM_CLASS (klass),
                              g_cclosure_marshal_VOID__OBJECTv);

  /**
   * ExoResourceGroup::member-removed:
   * @self: the group
   * @member: the resource removed
   *
   * Emitted when a member has left the group and was cleaned up.
   */
  signals[SIGNAL_MEMBER_REMOVED] =
    g_signal_new ("member-removed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (ExoResourceGroupClass, member_removed),
                  NULL, NULL,
                  g_cclosure_marshal_VOID__OBJECT,
                  G_TYPE_NONE, 1, EXO_TYPE_RESOURCE);
  g_signal_set_va_marshaller (signals[SIGNAL_MEMBER_REMOVED], G_TYPE_FROM_CLASS (klass),
                              g_cclosure_marshal_VOID__OBJECTv);
}

static void
exo_resource_group_init (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  priv->members = g_ptr_array_new_with_free_func (_exo_resource_group_member_unref);
  priv->by_name = g_hash_table_new (member_key_hash, member_key_equal);
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
