/* exo-resource-group-plan.c: the plan of an ExoResourceGroup: its
 * dependency graph resolved into edges, the topological order, and the
 * errors for an unknown dependency or a cycle.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: cycle_error(), rebuild_plan(), ensure_plan(), invalidate_plan(),
 * and the public queries over the graph (exo_resource_group_validate(),
 * _get_topological_order(), _get_dependencies(), _get_dependents()).
 *
 * Rules: everything here runs in the group's main context
 * (exo_resource_get_context()); no locks.  Nothing here calls out to other
 * objects (no signal, no GTask callback): the plan is the group's own
 * bookkeeping, so it may be rebuilt anywhere, except that
 * invalidate_plan() drains the live runs (exo-resource-group-run.c), which
 * may start members.  See exo-resource-group-private.h for the rules of
 * all the group's files.
 */
#include "exo-resource-group-private.h"

/* --- the plan: resolved edges and a topological order ----------------- */

static GError *
cycle_error (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  g_autoptr(GPtrArray) path = g_ptr_array_new ();
  g_autoptr(GString) message = g_string_new ("dependency cycle: ");
  Member *start = NULL;
  Member *m;
  guint step = 0;
  guint first, best, len;

  for (guint i = 0; i < priv->members->len; i++)
    {
      m = g_ptr_array_index (priv->members, i);
      m->visit = 0;
      if (start == NULL && m->kahn > 0)
        start = m;
    }
  g_assert (start != NULL);

  /* Every member left over by Kahn's algorithm has a left-over dependency:
   * walking them must come back to a member already seen. */
  m = start;
  while (m->visit == 0)
    {
      Member *next = NULL;

      m->visit = ++step;
      g_ptr_array_add (path, m);
      for (guint i = 0; i < m->n_deps && next == NULL; i++)
        if (m->deps[i]->kahn > 0)
          next = m->deps[i];
      g_assert (next != NULL);
      m = next;
    }

  first = m->visit - 1;
  len = path->len - first;
  best = first;
  for (guint i = first; i < path->len; i++)
    if (((Member *) g_ptr_array_index (path, i))->index <
        ((Member *) g_ptr_array_index (path, best))->index)
      best = i;

  for (guint k = 0; k <= len; k++)
    {
      Member *c = g_ptr_array_index (path, first + (best - first + k) % len);

      if (k > 0)
        g_string_append (message, " -> ");
      g_string_append (message, member_name (c));
    }

  return g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY, message->str);
}

static void
rebuild_plan (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  guint n = priv->members->len;
  gsize n_names = 0;
  gsize off = 0;

  priv->plan_dirty = FALSE;
  g_clear_error (&priv->plan_error);

  /* (the dependency names are counted from their table: most members have none) */
  {
    GHashTableIter iter;
    gpointer names;

    g_hash_table_iter_init (&iter, priv->dep_names);
    while (g_hash_table_iter_next (&iter, NULL, &names))
      n_names += ((GPtrArray *) names)->len;
  }
  for (guint i = 0; i < n; i++)
    ((Member *) g_ptr_array_index (priv->members, i))->n_rdeps = 0;

  g_free (priv->edges);
  priv->edges = g_new (Member *, MAX (2 * n_names, 1));

  /* Resolve the names: the dependencies of each member... */
  for (guint i = 0; i < n; i++)
    {
      Member *m = g_ptr_array_index (priv->members, i);
      GPtrArray *names = g_hash_table_size (priv->dep_names) > 0 ? deps_of (m) : NULL;

      m->deps = priv->edges + off;
      m->n_deps = 0;

      for (guint j = 0; names != NULL && j < names->len; j++)
        {
          const char *name = g_ptr_array_index (names, j);
          Member *d = _exo_resource_group_member_lookup (priv, name);

          if (d == NULL)
            {
              if (priv->plan_error == NULL)
                priv->plan_error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                                                "member '%s' depends on unknown member '%s'",
                                                member_name (m), name);
              continue;
            }
          m->deps[m->n_deps++] = d;
          d->n_rdeps++;
        }
      off += m->n_deps;
    }

  /* ...and the members that depend on each. */
  for (guint i = 0; i < n; i++)
    {
      Member *m = g_ptr_array_index (priv->members, i);

      m->rdeps = priv->edges + off;
      off += m->n_rdeps;
      m->n_rdeps = 0;
    }
  for (guint i = 0; i < n; i++)
    {
      Member *m = g_ptr_array_index (priv->members, i);

      for (guint j = 0; j < m->n_deps; j++)
        m->deps[j]->rdeps[m->deps[j]->n_rdeps++] = m;
    }

  /* Kahn's algorithm; the order array is its own queue. */
  g_ptr_array_set_size (priv->order, 0);
  for (guint i = 0; i < n; i++)
    {
      Member *m = g_ptr_array_index (priv->members, i);

      m->kahn = m->n_deps;
      if (m->kahn == 0)
        g_ptr_array_add (priv->order, m);
    }
  for (guint i = 0; i < priv->order->len; i++)
    {
      Member *m = g_ptr_array_index (priv->order, i);

      for (guint j = 0; j < m->n_rdeps; j++)
        if (--m->rdeps[j]->kahn == 0)
          g_ptr_array_add (priv->order, m->rdeps[j]);
    }

  if (priv->order->len < n)
    {
      if (priv->plan_error == NULL)
        priv->plan_error = cycle_error (self);
      /* Keep every member listed: the rest in insertion order. */
      for (guint i = 0; i < n; i++)
        {
          Member *m = g_ptr_array_index (priv->members, i);

          if (m->kahn > 0)
            g_ptr_array_add (priv->order, m);
        }
    }

  for (guint i = 0; i < n; i++)
    ((Member *) g_ptr_array_index (priv->order, i))->topo = i;
}

gboolean
_exo_resource_group_ensure_plan (ExoResourceGroup  *self,
                                 GError           **error)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  if (priv->plan_dirty)
    rebuild_plan (self);

  if (priv->plan_error != NULL)
    {
      if (error != NULL)
        *error = g_error_copy (priv->plan_error);
      return FALSE;
    }
  return TRUE;
}

/* After the graph changed: rebuild it now if a run depends on it (or if a
 * member left: nothing may point to it any more). */
void
_exo_resource_group_invalidate_plan (ExoResourceGroup *self,
                                     gboolean          now)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  priv->plan_dirty = TRUE;
  if (!now && priv->live_runs->len == 0)
    return;

  rebuild_plan (self);
  _exo_resource_group_drain_live_runs (self, TRUE);
}

/* --- queries ----------------------------------------------------------- */

/**
 * exo_resource_group_validate:
 * @self: a group
 * @error: return location for an error
 *
 * Checks the graph: every dependency names a member, and there is no cycle.
 *
 * Returns: %TRUE if valid; otherwise %FALSE with
 *   %EXO_RESOURCE_ERROR_DEPENDENCY and a message that names the member and
 *   its unknown dependency, or the members of a cycle in order
 */
gboolean
exo_resource_group_validate (ExoResourceGroup  *self,
                             GError           **error)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return _exo_resource_group_ensure_plan (self, error);
}

/**
 * exo_resource_group_get_topological_order:
 * @self: a group
 * @error: return location for an error
 *
 * Returns: (transfer full) (array zero-terminated=1) (nullable): the member
 *   names, dependencies first (the order initialize starts them in when
 *   nothing runs in parallel), or %NULL if the graph is not valid (see
 *   exo_resource_group_validate())
 */
char **
exo_resource_group_get_topological_order (ExoResourceGroup  *self,
                                          GError           **error)
{
  ExoResourceGroupPrivate *priv;
  char **names;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  priv = PRIV (self);
  if (!_exo_resource_group_ensure_plan (self, error))
    return NULL;
  names = g_new (char *, priv->order->len + 1);
  for (guint i = 0; i < priv->order->len; i++)
    names[i] = g_strdup (member_name (g_ptr_array_index (priv->order, i)));
  names[priv->order->len] = NULL;
  return names;
}

/**
 * exo_resource_group_get_dependencies:
 * @self: a group
 * @member: a member name
 *
 * Returns: (transfer full) (array zero-terminated=1) (nullable): the names
 *   @member depends on, in the order given (possibly names that are not
 *   members yet), or %NULL if @member is not a member
 */
char **
exo_resource_group_get_dependencies (ExoResourceGroup *self,
                                     const char       *member)
{
  Member *m;
  char **names;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), NULL);
  g_return_val_if_fail (member != NULL, NULL);

  m = _exo_resource_group_member_lookup (PRIV (self), member);
  if (m == NULL)
    return NULL;
  names = g_new (char *, n_dep_names (m) + 1);
  for (guint i = 0; i < n_dep_names (m); i++)
    names[i] = g_strdup (g_ptr_array_index (deps_of (m), i));
  names[n_dep_names (m)] = NULL;
  return names;
}

/**
 * exo_resource_group_get_dependents:
 * @self: a group
 * @member: a member name
 *
 * Returns: (transfer full) (array zero-terminated=1) (nullable): the names
 *   of the members that depend on @member directly, in the order they were
 *   added, or %NULL if @member is not a member
 */
char **
exo_resource_group_get_dependents (ExoResourceGroup *self,
                                   const char       *member)
{
  ExoResourceGroupPrivate *priv;
  GPtrArray *names;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), NULL);
  g_return_val_if_fail (member != NULL, NULL);

  priv = PRIV (self);
  if (_exo_resource_group_member_lookup (priv, member) == NULL)
    return NULL;

  names = g_ptr_array_new ();
  for (guint i = 0; i < priv->members->len; i++)
    {
      Member *d = g_ptr_array_index (priv->members, i);

      if (_exo_resource_group_member_has_dep_name (d, member))
        g_ptr_array_add (names, g_strdup (member_name (d)));
    }
  g_ptr_array_add (names, NULL);
  return (char **) g_ptr_array_free (names, FALSE);
}
