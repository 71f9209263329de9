/* exo-config.c: ExoConfig, the node's JSON config, checked before anything
 * starts: what a loaded config holds, the load entry points, the accessors.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Loading does all the checking: JSON syntax, the schema, the resource
 * types (through the caller's lookup), every setting against its
 * GParamSpec, retry policies, dependencies and cycles.  What is left for
 * exo_config_build() is to create the objects and add them to a group.
 *
 * The loader is split by responsibility; the files share
 * exo-config-private.h:
 *
 *   exo-config.c         this file: ExoConfig and ResourceSpec (create,
 *                        reference, free), exo_config_load_data() and
 *                        exo_config_load_file(), the accessors
 *   exo-config-reader.c  the text to a JSON tree with the line of every
 *                        value; typed reads that fail with FILE:LINE: KEY
 *                        messages; unknown keys and "did you mean …?"
 *   exo-config-value.c   `settings`: JSON values to GValues, checked by
 *                        each property's GParamSpec
 *   exo-config-schema.c  which keys exist where and what they apply to;
 *                        the walk over a document (node, resources, retry,
 *                        dependencies and cycles)
 *   exo-config-build.c   exo_config_build(): the resources, in a group
 *
 * Rules for all of them: a load is one synchronous call, with no main
 * context, no threads and no locks; the only outside code it runs is the
 * caller's type lookup and class_init of the types it returns.  A loaded
 * ExoConfig is never changed again: it may be read from several threads
 * (its reference count is atomic).  exo_config_build() runs in the thread
 * of the group it builds into.  Nothing here logs: what is wrong is a
 * GError, and what is only doubtful (a key in a deprecated spelling) is a
 * warning kept in the config for the caller, exo_config_get_warnings().
 */
#include "exo-config-private.h"

#include <string.h>

G_DEFINE_QUARK (exo-config-error-quark, exo_config_error)

/* ------------------------------------------------------------------------ */
/* ExoConfig and what it holds                                              */

void
_exo_config_setting_free (gpointer data)
{
  Setting *setting = data;

  g_free (setting->name);
  g_value_unset (&setting->value);
  g_free (setting);
}

void
_exo_config_resource_spec_free (gpointer data)
{
  ResourceSpec *spec = data;

  g_free (spec->id);
  g_free (spec->type_name);
  g_free (spec->display_name);
  g_clear_pointer (&spec->settings, g_ptr_array_unref);
  g_clear_pointer (&spec->depends_on, g_ptr_array_unref);
  g_clear_pointer (&spec->depends_lines, g_array_unref);
  g_free (spec);
}

ResourceSpec *
_exo_config_resource_spec_new (guint index,
                               guint line)
{
  ResourceSpec *spec = g_new0 (ResourceSpec, 1);

  spec->index = index;
  spec->line = line;
  spec->settings = g_ptr_array_new_with_free_func (_exo_config_setting_free);
  spec->depends_on = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (spec->depends_on, NULL);
  spec->depends_lines = g_array_new (FALSE, FALSE, sizeof (guint));
  return spec;
}

/* Sets the members of @policy that the resource's `retry` gives. */
void
_exo_config_apply_retry (const ResourceSpec *spec,
                         ExoRetryPolicy     *policy)
{
  if (spec->retry_mask & RETRY_MAX_RETRIES)
    policy->max_retries = spec->retry.max_retries;
  if (spec->retry_mask & RETRY_INITIAL_DELAY)
    policy->initial_delay_ms = spec->retry.initial_delay_ms;
  if (spec->retry_mask & RETRY_MAX_DELAY)
    policy->max_delay_ms = spec->retry.max_delay_ms;
  if (spec->retry_mask & RETRY_MULTIPLIER)
    policy->multiplier = spec->retry.multiplier;
  if (spec->retry_mask & RETRY_JITTER)
    policy->jitter = spec->retry.jitter;
  if (spec->retry_mask & RETRY_BURST)
    policy->restart_burst = spec->retry.restart_burst;
  if (spec->retry_mask & RETRY_INTERVAL)
    policy->restart_interval_ms = spec->retry.restart_interval_ms;
}

/**
 * exo_config_ref:
 * @self: a config
 *
 * Returns: (transfer full): @self
 */
ExoConfig *
exo_config_ref (ExoConfig *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

/**
 * exo_config_unref:
 * @self: (transfer full): a config
 */
void
exo_config_unref (ExoConfig *self)
{
  g_return_if_fail (self != NULL);

  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  g_free (self->source);
  g_free (self->node_id);
  g_free (self->node_name);
  g_free (self->cluster_key_file);
  g_free (self->state_dir);
  g_strfreev (self->ready_when);
  g_clear_pointer (&self->resources, g_ptr_array_unref);
  g_free (self->order);
  g_strfreev (self->warnings);
  g_free (self);
}

/* ------------------------------------------------------------------------ */
/* Loading                                                                  */

/**
 * exo_config_load_data:
 * @data: the JSON text
 * @len: its length in bytes, or -1 when it is nul-terminated
 * @source_name: (nullable): the name used in error messages, normally the
 *   file name
 * @lookup: maps a resource type name to its #GType
 * @lookup_data: data for @lookup
 * @error: return location for an error in %EXO_CONFIG_ERROR
 *
 * Parses and checks a config.  Every error names @source_name, the line
 * and the key (see %EXO_CONFIG_ERROR).
 *
 * Returns: (transfer full): the config, or %NULL with @error set
 */
ExoConfig *
exo_config_load_data (const char           *data,
                      gssize                len,
                      const char           *source_name,
                      ExoConfigTypeLookup   lookup,
                      gpointer              lookup_data,
                      GError              **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(ExoConfig) config = NULL;
  Loader loader = { 0 };
  JsonNode *root;
  gboolean ok = FALSE;
  gsize size;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (lookup != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (source_name == NULL)
    source_name = "<data>";
  size = len < 0 ? strlen (data) : (gsize) len;

  config = g_new0 (ExoConfig, 1);
  g_atomic_ref_count_init (&config->ref_count);
  config->source = g_strdup (source_name);
  config->node_id = g_strdup ("auto");
  config->resources = g_ptr_array_new_with_free_func (_exo_config_resource_spec_free);

  loader.source = config->source;
  loader.lookup = lookup;
  loader.lookup_data = lookup_data;
  loader.config = config;
  loader.ids = g_hash_table_new (g_str_hash, g_str_equal);

  parser = json_parser_new ();
  root = _exo_config_parse (&loader, parser, data, size, error);
  if (root != NULL)
    ok = _exo_config_load_document (&loader, root, error);

  _exo_config_loader_clear (&loader);

  return ok ? g_steal_pointer (&config) : NULL;
}

/**
 * exo_config_load_file:
 * @path: the config file
 * @lookup: maps a resource type name to its #GType
 * @data: data for @lookup
 * @error: return location for an error in %EXO_CONFIG_ERROR
 *
 * Reads and checks a config file of at most %EXO_CONFIG_MAX_FILE_SIZE
 * bytes.  Messages name @path as given.
 *
 * Returns: (transfer full): the config, or %NULL with @error set
 */
ExoConfig *
exo_config_load_file (const char           *path,
                      ExoConfigTypeLookup   lookup,
                      gpointer              data,
                      GError              **error)
{
  g_autofree char *contents = NULL;
  gsize length = 0;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (lookup != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!_exo_config_read_file (path, &contents, &length, error))
    return NULL;

  return exo_config_load_data (contents, length, path, lookup, data, error);
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                */

/**
 * exo_config_get_source_name:
 * @self: a config
 *
 * Returns: the file name (or source name) used in messages
 */
const char *
exo_config_get_source_name (ExoConfig *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->source;
}

/**
 * exo_config_get_warnings:
 * @self: a config
 *
 * What is wrong with the config but does not stop it: today, keys in a
 * deprecated spelling, one message per key however often it is used, of
 * the form `FILE:LINE: KEY: what` (the first use).  The loader logs
 * nothing: exo-node logs these, and `--check-config` prints them.
 *
 * Returns: (transfer none) (array zero-terminated=1): the warnings, in the
 *   order of the file; empty when there are none
 */
const char * const *
exo_config_get_warnings (ExoConfig *self)
{
  static const char * const none[] = { NULL };

  g_return_val_if_fail (self != NULL, NULL);
  return self->warnings != NULL ? (const char * const *) self->warnings : none;
}

/**
 * exo_config_get_node_id:
 * @self: a config
 *
 * Returns: `node.id`: `"auto"` (also when not given) or the id
 */
const char *
exo_config_get_node_id (ExoConfig *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->node_id;
}

/**
 * exo_config_get_node_name:
 * @self: a config
 *
 * Returns: (nullable): `node.name`, or %NULL when not given
 */
const char *
exo_config_get_node_name (ExoConfig *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->node_name;
}

/**
 * exo_config_get_cluster_key_file:
 * @self: a config
 *
 * Returns: (nullable): `node.cluster-key-file` as written (perhaps
 *   relative), or %NULL when not given
 */
const char *
exo_config_get_cluster_key_file (ExoConfig *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->cluster_key_file;
}

/**
 * exo_config_get_state_dir:
 * @self: a config
 *
 * Returns: (nullable): `node.state-dir` as written (perhaps relative), or
 *   %NULL when not given
 */
const char *
exo_config_get_state_dir (ExoConfig *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->state_dir;
}

/**
 * exo_config_get_ready_when:
 * @self: a config
 *
 * Returns: (nullable) (array zero-terminated=1): the ids of
 *   `node.ready-when` (possibly none), or %NULL for `"all"` (also when not
 *   given)
 */
const char * const *
exo_config_get_ready_when (ExoConfig *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return (const char * const *) self->ready_when;
}

/**
 * exo_config_get_resource_types:
 * @self: a config
 *
 * Returns: (transfer full): the distinct resource type names, in the
 *   order of first use
 */
char **
exo_config_get_resource_types (ExoConfig *self)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  g_return_val_if_fail (self != NULL, NULL);

  for (guint i = 0; i < self->resources->len; i++)
    {
      ResourceSpec *spec = g_ptr_array_index (self->resources, i);

      if (g_hash_table_add (seen, spec->type_name))
        g_strv_builder_add (builder, spec->type_name);
    }
  return g_strv_builder_end (builder);
}

/**
 * exo_config_get_resource_ids:
 * @self: a config
 *
 * Returns: (transfer full): the resource ids, in file order
 */
char **
exo_config_get_resource_ids (ExoConfig *self)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  g_return_val_if_fail (self != NULL, NULL);

  for (guint i = 0; i < self->resources->len; i++)
    {
      ResourceSpec *spec = g_ptr_array_index (self->resources, i);
      g_strv_builder_add (builder, spec->id);
    }
  return g_strv_builder_end (builder);
}
