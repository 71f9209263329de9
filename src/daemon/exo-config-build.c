/* exo-config-build.c: exo_config_build(): a loaded config made into
 * resources and added to an ExoResourceGroup.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: creating each resource (with g_object_new_with_properties(), so
 * construct-only settings work), applying its resource keys (display
 * name, timeouts, the retry policy over the type's own defaults,
 * supervision, a group's strategy and restart limit), the type's own check
 * of its settings (exo_resource_check_settings()), and adding all of
 * them to the group in dependency order, or none.
 *
 * Rules: runs in the thread that owns the group (its thread-default main
 * context), iterates no main context and initializes nothing.  The
 * constructors of the resource types (plugin code) run here.  The
 * ExoConfig is only read: one config builds any number of times.
 */
#include "exo-config-private.h"

/* ------------------------------------------------------------------------ */
/* Building                                                                 */

/* What the type can check of its settings without side effects
 * (ExoResourceClass.check_settings), reported at the setting's line. */
static gboolean
check_settings (ExoConfig     *self,
                ResourceSpec  *spec,
                ExoResource   *resource,
                GError       **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autofree char *name = NULL;
  g_autofree char *key = NULL;
  guint line = spec->line;

  if (exo_resource_check_settings (resource, &name, &local_error))
    return TRUE;

  key = g_strdup_printf ("resources[%u]", spec->index);
  for (guint i = 0; name != NULL && i < spec->settings->len; i++)
    {
      Setting *setting = g_ptr_array_index (spec->settings, i);

      if (g_str_equal (setting->name, name))
        {
          g_free (key);
          key = g_strdup_printf ("resources[%u].settings.%s", spec->index, name);
          line = setting->line;
          break;
        }
    }
  _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, self->source, line, key,
                             "%s", local_error->message);
  return FALSE;
}

static ExoResource *
create_resource (ExoConfig     *self,
                 ResourceSpec  *spec,
                 GError       **error)
{
  guint n = 2 + spec->settings->len;
  g_autofree const char **names = g_new (const char *, n);
  g_autofree GValue *values = g_new0 (GValue, n);
  ExoResource *resource;

  names[0] = "id";
  g_value_init (&values[0], G_TYPE_STRING);
  g_value_set_static_string (&values[0], spec->id);
  names[1] = "resource-type";
  g_value_init (&values[1], G_TYPE_STRING);
  g_value_set_static_string (&values[1], spec->type_name);
  for (guint i = 0; i < spec->settings->len; i++)
    {
      Setting *setting = g_ptr_array_index (spec->settings, i);

      names[2 + i] = setting->name;
      g_value_init (&values[2 + i], G_VALUE_TYPE (&setting->value));
      g_value_copy (&setting->value, &values[2 + i]);
    }

  resource = EXO_RESOURCE (g_object_new_with_properties (spec->type, n, names, values));

  for (guint i = 0; i < n; i++)
    g_value_unset (&values[i]);

  if (spec->display_name != NULL)
    exo_resource_set_display_name (resource, spec->display_name);
  if (spec->has_init_timeout)
    exo_resource_set_init_timeout (resource, spec->init_timeout_ms);

  if (EXO_IS_MANAGED_RESOURCE (resource))
    {
      ExoManagedResource *managed = EXO_MANAGED_RESOURCE (resource);

      if (spec->has_health_interval)
        exo_managed_resource_set_health_check_interval (managed, spec->health_interval_ms);
      for (gsize i = 0; i < G_N_ELEMENTS (_exo_config_supervision_keys); i++)
        if (spec->supervision_mask & (1u << i))
          g_object_set (managed, _exo_config_supervision_keys[i].key, spec->supervision[i], NULL);

      if (spec->retry_mask != 0)
        {
          /* Keys not given keep the type's own defaults. */
          g_autoptr(ExoRetryPolicy) policy = exo_managed_resource_get_retry_policy (managed);
          g_autoptr(GError) local_error = NULL;

          _exo_config_apply_retry (spec, policy);

          if (!exo_retry_policy_validate (policy, &local_error))
            {
              g_autofree char *key = g_strdup_printf ("resources[%u].retry", spec->index);

              _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, self->source, spec->retry_line, key,
                                         "%s (with the defaults of type '%s')",
                                         local_error->message, spec->type_name);
              g_object_unref (resource);
              return NULL;
            }
          exo_managed_resource_set_retry_policy (managed, policy);
        }
    }

  if (EXO_IS_RESOURCE_GROUP (resource))
    {
      ExoResourceGroup *group = EXO_RESOURCE_GROUP (resource);

      if (spec->has_strategy)
        exo_resource_group_set_strategy (group, spec->strategy);
      if (spec->has_group_burst)
        exo_resource_group_set_restart_burst (group, spec->group_burst);
      if (spec->has_group_interval)
        exo_resource_group_set_restart_interval (group, spec->group_interval_ms);
    }

  if (!check_settings (self, spec, resource, error))
    {
      g_object_unref (resource);
      return NULL;
    }

  return resource;
}

static void
remove_added (ExoResourceGroup *root,
              GPtrArray        *added)
{
  /* Never initialized, so removal has nothing to wait for. */
  for (guint i = added->len; i > 0; i--)
    exo_resource_group_remove_async (root, g_ptr_array_index (added, i - 1), TRUE,
                                     NULL, NULL, NULL);
}

/**
 * exo_config_build:
 * @self: a loaded config
 * @root: the group the resources are added to
 * @error: return location for an error in %EXO_CONFIG_ERROR
 *
 * Creates every resource of the config (with g_object_new_with_properties(),
 * so construct-only settings work), applies display names, timeouts, retry
 * policies, health-check intervals and group strategies, runs each type's
 * check of its settings (exo_resource_check_settings(): an unusable
 * setting is refused here, with the line of the setting, not at
 * initialize), and adds them to @root with their dependencies.  Nothing is
 * initialized.
 *
 * All resources are created before any is added; when something is
 * refused, @root is left as it was (members already added are removed
 * again).  Ids that are already members of @root, or @root's own id, are
 * refused with %EXO_CONFIG_ERROR_DUPLICATE_ID.
 *
 * Can be called more than once (each call creates new resources).
 *
 * Returns: %TRUE on success
 */
gboolean
exo_config_build (ExoConfig         *self,
                  ExoResourceGroup  *root,
                  GError           **error)
{
  g_autoptr(GHashTable) existing = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) members = NULL;
  g_autoptr(GPtrArray) built = NULL;
  g_autoptr(GPtrArray) added = NULL;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (root), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* The group would refuse these too, but only after others were added. */
  members = exo_resource_group_get_members (root);
  for (guint i = 0; members != NULL && i < members->len; i++)
    g_hash_table_add (existing, (gpointer) exo_resource_get_id (g_ptr_array_index (members, i)));
  for (guint i = 0; i < self->resources->len; i++)
    {
      ResourceSpec *spec = g_ptr_array_index (self->resources, i);
      g_autofree char *key = g_strdup_printf ("resources[%u].id", i);

      if (g_strcmp0 (spec->id, exo_resource_get_id (EXO_RESOURCE (root))) == 0)
        {
          _exo_config_set_key_error (error, EXO_CONFIG_ERROR_DUPLICATE_ID, self->source, spec->id_line, key,
                                     "'%s' is the id of the group the config is built into", spec->id);
          return FALSE;
        }
      if (g_hash_table_contains (existing, spec->id))
        {
          _exo_config_set_key_error (error, EXO_CONFIG_ERROR_DUPLICATE_ID, self->source, spec->id_line, key,
                                     "'%s' is already a member of group '%s'",
                                     spec->id, exo_resource_get_id (EXO_RESOURCE (root)));
          return FALSE;
        }
    }

  built = g_ptr_array_new_full (self->resources->len, g_object_unref);
  for (guint i = 0; i < self->resources->len; i++)
    {
      ExoResource *resource = create_resource (self, g_ptr_array_index (self->resources, i), error);

      if (resource == NULL)
        return FALSE;
      g_ptr_array_add (built, resource);
    }

  added = g_ptr_array_new ();
  for (guint k = 0; k < self->resources->len; k++)
    {
      ResourceSpec *spec = g_ptr_array_index (self->resources, self->order[k]);

      if (!exo_resource_group_add (root, g_ptr_array_index (built, spec->index),
                                   (const char * const *) spec->depends_on->pdata,
                                   &local_error))
        {
          g_autofree char *key = g_strdup_printf ("resources[%u]", spec->index);

          remove_added (root, added);
          _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, self->source, spec->line, key,
                                     "%s", local_error->message);
          return FALSE;
        }
      g_ptr_array_add (added, spec->id);
    }

  if (!exo_resource_group_validate (root, &local_error))
    {
      remove_added (root, added);
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, self->source, self->resources_line,
                                 "resources", "%s", local_error->message);
      return FALSE;
    }

  return TRUE;
}
