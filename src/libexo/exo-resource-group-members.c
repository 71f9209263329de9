/* exo-resource-group-members.c: who is in a group, by name.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns membership: the Member record's life (made, attached to its
 * resource, detached, released, freed), the names a member depends on,
 * the by-name set and its lookup, and the public calls that change or read
 * the set of members: exo_resource_group_add(), _add_dependency(),
 * _remove_async()/_finish(), _lookup(), _get_n_members() and
 * _get_members().  exo-resource-group-private.h lists the group's other
 * files and the rules that hold in all of them.
 *
 * Rules: everything here runs in the group's main context; no locks.
 * member-added and member-removed are emitted from here, outside any
 * member's state-changed emission; their handlers, and a removed member's
 * cleanup (which may complete at once), may re-enter the group: add or
 * remove members, initialize or clean it up.  So the removal holds a
 * reference to the Member (its task's data) across them, and a member
 * that left a run is marked done before the run is drained.
 */
#include "exo-resource-group-private.h"

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

guint
_exo_resource_group_member_key_hash (gconstpointer key)
{
  return g_str_hash (key_name (key));
}

gboolean
_exo_resource_group_member_key_equal (gconstpointer a,
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

void
_exo_resource_group_member_release (Member *m)
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

  g_signal_emit (self, _exo_resource_group_signals[SIGNAL_MEMBER_ADDED], 0, resource);
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

  _exo_resource_group_member_release (m);
  g_signal_emit (self, _exo_resource_group_signals[SIGNAL_MEMBER_REMOVED], 0, m->resource);

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
