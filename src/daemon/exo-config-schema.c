/* exo-config-schema.c: which keys a config has, and a document checked
 * against them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: the keys of the top level, of `node`, of a resource and of
 * `retry`; the supervision keys of managed resources; the base-class
 * properties that have a resource key of their own; the deprecated
 * spellings of keys (read as the new ones, with a warning); which types
 * each key applies to.  And the walk over a parsed document: `node`, then
 * every resource (id, type through the caller's lookup, the resource
 * keys, `retry`, `settings` through exo-config-value.c, `depends-on`),
 * then the dependencies as a whole (defined, acyclic, an order to add
 * them in), then `node.ready-when` (ids of the file).
 * docs/config.md describes every key: a key added here belongs there too.
 *
 * Rules: synchronous, no main context, no locks; the caller's type lookup
 * runs once per resource, from inside the load.
 */
#include "exo-config-private.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* The keys (docs/config.md has a table of each)                            */

static const char * const node_keys[] = {
  "id", "name", "cluster-key-file", "state-dir", "ready-when",
};
static const char * const top_level_keys[] = { "node", "resources" };
static const char * const resource_keys[] = {
  "id", "type", "display-name", "settings", "depends-on", "retry",
  "health-check-interval-ms", "init-timeout-ms",
  "unhealthy-threshold", "healthy-threshold", "degraded-restart-ms", "backoff-reset-ms",
  "strategy", "restart-burst", "restart-interval-ms",
};
static const char * const retry_keys[] = {
  "max-retries", "initial-delay-ms", "max-delay-ms", "multiplier", "jitter",
  "restart-burst", "restart-interval-ms",
};

/* Properties of libexo's base classes that have their own resource key, or
 * that no config may set. */
static const struct {
  const char *property;
  const char *key;
} dedicated_properties[] = {
  { "id", "id" },
  { "resource-type", "type" },
  { "display-name", "display-name" },
  { "init-timeout", "init-timeout-ms" },
  { "retry-policy", "retry" },
  { "health-check-interval", "health-check-interval-ms" },
  { "strategy", "strategy" },
  { "restart-burst", "restart-burst" },
  { "restart-interval-ms", "restart-interval-ms" },
  { "unhealthy-threshold", "unhealthy-threshold" },
  { "healthy-threshold", "healthy-threshold" },
  { "degraded-restart-ms", "degraded-restart-ms" },
  { "backoff-reset-ms", "backoff-reset-ms" },
};

/* Supervision keys of managed resources: resource keys, each an
 * ExoManagedResource property of the same name (unsigned; minimum). */
const SupervisionKey _exo_config_supervision_keys[] = {
  { "unhealthy-threshold", 1 },
  { "healthy-threshold", 1 },
  { "degraded-restart-ms", 0 },
  { "backoff-reset-ms", 0 },
};

/* Old spellings of keys, still read.  Every time in a config is in
 * milliseconds and its key ends in "-ms"; these spell a key as the libexo
 * property or function behind it is named (ExoResource:init-timeout,
 * exo_resource_group_set_restart_interval()), which counts milliseconds
 * too, so a value is taken as it is.  Each is read as the new key of the
 * same object when the object has that key (a resource, `retry`), with a
 * warning; both spellings in one object are refused.  docs/config.md lists
 * them ("Deprecated spellings"). */
static const struct {
  const char *old_key;
  const char *key;
} deprecated_keys[] = {
  { "init-timeout", "init-timeout-ms" },
  { "health-check-interval", "health-check-interval-ms" },
  { "restart-interval", "restart-interval-ms" },
};

/* ------------------------------------------------------------------------ */
/* Which properties are settings                                            */

static gboolean
owned_by_base_class (GParamSpec *pspec)
{
  return pspec->owner_type == EXO_TYPE_ASYNC_RESOURCE ||
         pspec->owner_type == EXO_TYPE_RESOURCE ||
         pspec->owner_type == EXO_TYPE_MANAGED_RESOURCE ||
         pspec->owner_type == EXO_TYPE_RESOURCE_GROUP;
}

const char *
_exo_config_dedicated_key (GParamSpec *pspec)
{
  if (!owned_by_base_class (pspec))
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (dedicated_properties); i++)
    if (g_str_equal (pspec->name, dedicated_properties[i].property))
      return dedicated_properties[i].key;
  return NULL;
}

static gboolean
is_setting (GParamSpec *pspec)
{
  return (pspec->flags & G_PARAM_WRITABLE) != 0 && _exo_config_dedicated_key (pspec) == NULL;
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* The settable property names of @klass, sorted (for messages). */
GPtrArray *
_exo_config_list_settings (GObjectClass *klass)
{
  g_autofree GParamSpec **pspecs = NULL;
  guint n = 0;
  GPtrArray *names = g_ptr_array_new ();

  pspecs = g_object_class_list_properties (klass, &n);
  for (guint i = 0; i < n; i++)
    if (is_setting (pspecs[i]))
      g_ptr_array_add (names, (gpointer) pspecs[i]->name);
  g_ptr_array_sort (names, compare_strings);
  return names;
}

static gboolean
check_id (Loader     *loader,
          JsonNode   *node,
          const char *key,
          const char *id,
          GError    **error)
{
  guint line = _exo_config_line_of (loader, node);

  if (*id == '\0')
    {
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line, key,
                                 "the id is empty");
      return FALSE;
    }
  if (strlen (id) > EXO_CONFIG_MAX_ID_LENGTH)
    {
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line, key,
                                 "the id is longer than the limit of %u characters",
                                 EXO_CONFIG_MAX_ID_LENGTH);
      return FALSE;
    }
  for (const char *p = id; *p != '\0'; p++)
    {
      if (g_ascii_isalnum (*p) || *p == '_' || *p == '.' || *p == '-')
        continue;
      if (g_ascii_isprint (*p))
        _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line, key,
                                   "the id '%s' contains '%c'; "
                                   "only letters, digits, '_', '.' and '-' are allowed",
                                   id, *p);
      else
        _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line, key,
                                   "the id contains the byte 0x%02x; "
                                   "only letters, digits, '_', '.' and '-' are allowed",
                                   (guint) (guchar) *p);
      return FALSE;
    }

  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Old spellings                                                            */

/* An old spelling used in the file: one per old key, however often used. */
typedef struct {
  const char *old_key;
  const char *key;
  char       *path;     /* the first use */
  guint       line;
  guint       n_more;   /* uses after the first */
} Deprecation;

static void
deprecation_free (gpointer data)
{
  Deprecation *deprecation = data;

  g_free (deprecation->path);
  g_free (deprecation);
}

static void
note_deprecation (Loader     *loader,
                  const char *old_key,
                  const char *key,
                  const char *path,
                  guint       line)
{
  Deprecation *deprecation;

  if (loader->deprecations == NULL)
    loader->deprecations = g_ptr_array_new_with_free_func (deprecation_free);

  for (guint i = 0; i < loader->deprecations->len; i++)
    {
      deprecation = g_ptr_array_index (loader->deprecations, i);
      if (g_str_equal (deprecation->old_key, old_key))
        {
          deprecation->n_more++;
          return;
        }
    }

  deprecation = g_new0 (Deprecation, 1);
  deprecation->old_key = old_key;
  deprecation->key = key;
  deprecation->path = g_strdup (path);
  deprecation->line = line;
  g_ptr_array_add (loader->deprecations, deprecation);
}

static int
compare_deprecations (gconstpointer a,
                      gconstpointer b)
{
  const Deprecation *da = *(const Deprecation * const *) a;
  const Deprecation *db = *(const Deprecation * const *) b;

  return (da->line > db->line) - (da->line < db->line);
}

/* The warnings of the load, by the line where each old key is first used. */
static char **
deprecation_warnings (Loader *loader)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  if (loader->deprecations != NULL)
    g_ptr_array_sort (loader->deprecations, compare_deprecations);
  for (guint i = 0; loader->deprecations != NULL && i < loader->deprecations->len; i++)
    {
      Deprecation *deprecation = g_ptr_array_index (loader->deprecations, i);
      g_autofree char *more = NULL;
      g_autofree char *warning = NULL;

      if (deprecation->n_more > 0)
        more = g_strdup_printf ("; %u more use%s in this file", deprecation->n_more,
                                deprecation->n_more == 1 ? "" : "s");
      warning = g_strdup_printf ("%s:%u: %s: '%s' is a deprecated spelling of '%s' "
                                 "(the same value, in milliseconds)%s",
                                 loader->source, MAX (deprecation->line, 1), deprecation->path,
                                 deprecation->old_key, deprecation->key, more != NULL ? more : "");
      g_strv_builder_add (builder, warning);
    }
  return g_strv_builder_end (builder);
}

/* Reads the old spelling of a key of @object as the new one, when @known
 * (the keys of @object) has the new one.  The JSON node moves to the new
 * name, so the rest of the load sees only new keys, and messages keep the
 * line the value is on. */
static gboolean
read_deprecated_keys (Loader             *loader,
                      JsonObject         *object,
                      const char         *prefix,
                      const char * const *known,
                      gsize               n_known,
                      GError            **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (deprecated_keys); i++)
    {
      const char *old_key = deprecated_keys[i].old_key;
      const char *key = deprecated_keys[i].key;
      JsonNode *node = json_object_get_member (object, old_key);
      g_autofree char *path = NULL;
      gboolean applies = FALSE;

      for (gsize j = 0; j < n_known && !applies; j++)
        applies = g_str_equal (known[j], key);
      if (node == NULL || !applies)
        continue;

      path = g_strdup_printf ("%s.%s", prefix, old_key);
      if (json_object_has_member (object, key))
        {
          _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                     _exo_config_line_of (loader, node), path,
                                     "'%s' and '%s' are both given, but they are one key "
                                     "(the deprecated and the new spelling); keep only '%s'",
                                     old_key, key, key);
          return FALSE;
        }

      note_deprecation (loader, old_key, key, path, _exo_config_line_of (loader, node));
      json_object_set_member (object, key, json_node_ref (node));
      json_object_remove_member (object, old_key);
    }

  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Checking the document                                                    */

/* A path of `node`: a string of 1 to 4096 bytes, into *@out. */
static gboolean
read_path (Loader      *loader,
           JsonNode    *node,
           const char  *key,
           const char  *what,
           char       **out,
           GError     **error)
{
  const char *path;

  if (!_exo_config_read_string (loader, node, key, &path, error))
    return FALSE;
  if (*path == '\0' || strlen (path) > 4096)
    {
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                 _exo_config_line_of (loader, node), key,
                                 "expected the path of %s (1 to 4096 bytes)", what);
      return FALSE;
    }
  g_free (*out);
  *out = g_strdup (path);
  return TRUE;
}

static gboolean
load_node (Loader    *loader,
           JsonNode  *node,
           GError   **error)
{
  JsonObject *object;
  JsonNode *member;

  if (!_exo_config_read_object (loader, node, "node", &object, error) ||
      !_exo_config_check_keys (loader, object, "node", node_keys, G_N_ELEMENTS (node_keys), error))
    return FALSE;

  if ((member = json_object_get_member (object, "id")) != NULL)
    {
      const char *id;

      if (!_exo_config_read_string (loader, member, "node.id", &id, error))
        return FALSE;
      if (!g_str_equal (id, "auto") && !check_id (loader, member, "node.id", id, error))
        return FALSE;
      g_free (loader->config->node_id);
      loader->config->node_id = g_strdup (id);
    }

  if ((member = json_object_get_member (object, "name")) != NULL)
    {
      const char *name;

      if (!_exo_config_read_string (loader, member, "node.name", &name, error))
        return FALSE;
      loader->config->node_name = g_strdup (name);
    }

  if ((member = json_object_get_member (object, "cluster-key-file")) != NULL &&
      !read_path (loader, member, "node.cluster-key-file", "a file", &loader->config->cluster_key_file,
                  error))
    return FALSE;
  if ((member = json_object_get_member (object, "state-dir")) != NULL &&
      !read_path (loader, member, "node.state-dir", "a folder", &loader->config->state_dir, error))
    return FALSE;

  /* checked once the resources are known (load_ready_when) */
  loader->ready_when = json_object_get_member (object, "ready-when");
  return TRUE;
}

/* node.ready-when: "all", or an array of the ids of resources of the file,
 * each once (docs/config.md, "Readiness under a service manager"). */
static gboolean
load_ready_when (Loader  *loader,
                 GError **error)
{
  JsonNode *node = loader->ready_when;
  g_autoptr(GHashTable) seen = NULL;
  g_autoptr(GPtrArray) ids = NULL;
  JsonArray *array;

  if (node == NULL)
    return TRUE;
  if (_exo_config_holds (node, G_TYPE_STRING))
    {
      if (g_str_equal (json_node_get_string (node), "all"))
        return TRUE;
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                 _exo_config_line_of (loader, node), "node.ready-when",
                                 "expected \"all\" or an array of resource ids");
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return _exo_config_wrong_type (loader, node, "node.ready-when",
                                   "\"all\" or an array of resource ids", error);

  array = json_node_get_array (node);
  seen = g_hash_table_new (g_str_hash, g_str_equal);
  ids = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      g_autofree char *key = g_strdup_printf ("node.ready-when[%u]", i);
      guint line = _exo_config_line_of (loader, element);
      const char *id;

      if (!_exo_config_read_string (loader, element, key, &id, error))
        return FALSE;
      if (!g_hash_table_contains (loader->ids, id))
        {
          _exo_config_set_key_error (error, EXO_CONFIG_ERROR_MISSING_DEPENDENCY, loader->source,
                                     line, key, "'%s' is not a resource of this file", id);
          return FALSE;
        }
      if (!g_hash_table_add (seen, (gpointer) id))
        {
          _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line, key,
                                     "'%s' is listed twice", id);
          return FALSE;
        }
      g_ptr_array_add (ids, g_strdup (id));
    }
  g_ptr_array_add (ids, NULL);
  loader->config->ready_when = (char **) g_ptr_array_free (g_steal_pointer (&ids), FALSE);
  return TRUE;
}

static gboolean
not_applicable (Loader             *loader,
                JsonNode           *node,
                const char         *key,
                const char         *name,
                const ResourceSpec *spec,
                const char         *what,
                GError            **error)
{
  gboolean in_retry = g_type_is_a (spec->type, EXO_TYPE_MANAGED_RESOURCE) &&
                      g_str_has_prefix (name, "restart-");

  /* A managed resource's restart limit lives in its "retry" object. */
  _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                             _exo_config_line_of (loader, node), key,
                             "'%s' applies only to %s, and type '%s' is not one%s",
                             name, what, spec->type_name,
                             in_retry ? "; did you mean it inside 'retry'?" : "");
  return FALSE;
}

static gboolean
load_retry (Loader       *loader,
            ResourceSpec *spec,
            JsonNode     *node,
            const char   *prefix,
            GError      **error)
{
  g_autofree char *retry_key = g_strdup_printf ("%s.retry", prefix);
  g_autoptr(ExoRetryPolicy) policy = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GList) members = NULL;
  JsonObject *object;

  if (!g_type_is_a (spec->type, EXO_TYPE_MANAGED_RESOURCE))
    return not_applicable (loader, node, retry_key, "retry", spec,
                           "managed resources (ExoManagedResource)", error);

  if (!_exo_config_read_object (loader, node, retry_key, &object, error) ||
      !read_deprecated_keys (loader, object, retry_key, retry_keys, G_N_ELEMENTS (retry_keys), error) ||
      !_exo_config_check_keys (loader, object, retry_key, retry_keys, G_N_ELEMENTS (retry_keys), error))
    return FALSE;

  spec->retry_line = _exo_config_line_of (loader, node);
  members = json_object_get_members (object);
  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *name = l->data;
      JsonNode *member = json_object_get_member (object, name);
      g_autofree char *key = g_strdup_printf ("%s.%s", retry_key, name);

      if (g_str_equal (name, "max-retries"))
        {
          if (!_exo_config_read_uint (loader, member, key, &spec->retry.max_retries, error))
            return FALSE;
          spec->retry_mask |= RETRY_MAX_RETRIES;
        }
      else if (g_str_equal (name, "initial-delay-ms"))
        {
          if (!_exo_config_read_uint (loader, member, key, &spec->retry.initial_delay_ms, error))
            return FALSE;
          spec->retry_mask |= RETRY_INITIAL_DELAY;
        }
      else if (g_str_equal (name, "max-delay-ms"))
        {
          if (!_exo_config_read_uint (loader, member, key, &spec->retry.max_delay_ms, error))
            return FALSE;
          spec->retry_mask |= RETRY_MAX_DELAY;
        }
      else if (g_str_equal (name, "multiplier"))
        {
          double v;

          if (_exo_config_holds (member, G_TYPE_INT64))
            v = (double) json_node_get_int (member);
          else if (_exo_config_holds (member, G_TYPE_DOUBLE))
            v = json_node_get_double (member);
          else
            return _exo_config_wrong_type (loader, member, key, "a number", error);
          if (!isfinite (v) || v < 1.0)
            {
              _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                         _exo_config_line_of (loader, member), key,
                                         "must be a number >= 1 (got %g)", v);
              return FALSE;
            }
          spec->retry.multiplier = v;
          spec->retry_mask |= RETRY_MULTIPLIER;
        }
      else if (g_str_equal (name, "jitter"))
        {
          const char *str;

          if (!_exo_config_read_string (loader, member, key, &str, error))
            return FALSE;
          if (!exo_jitter_from_string (str, &spec->retry.jitter))
            {
              _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                         _exo_config_line_of (loader, member), key,
                                         "unknown value '%s' (expected one of: full, equal, decorrelated, none)",
                                         str);
              return FALSE;
            }
          spec->retry_mask |= RETRY_JITTER;
        }
      else if (g_str_equal (name, "restart-burst"))
        {
          if (!_exo_config_read_uint (loader, member, key, &spec->retry.restart_burst, error))
            return FALSE;
          spec->retry_mask |= RETRY_BURST;
        }
      else if (g_str_equal (name, "restart-interval-ms"))
        {
          if (!_exo_config_read_uint (loader, member, key, &spec->retry.restart_interval_ms, error))
            return FALSE;
          spec->retry_mask |= RETRY_INTERVAL;
        }
      else
        g_assert_not_reached ();
    }

  /* The keys not given keep the defaults; the whole must make sense. */
  policy = exo_retry_policy_new ();
  _exo_config_apply_retry (spec, policy);
  if (!exo_retry_policy_validate (policy, &local_error))
    {
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, spec->retry_line,
                                 retry_key, "%s", local_error->message);
      return FALSE;
    }

  return TRUE;
}

static gboolean
load_depends_on (Loader       *loader,
                 ResourceSpec *spec,
                 JsonNode     *node,
                 const char   *prefix,
                 GError      **error)
{
  g_autofree char *depends_key = g_strdup_printf ("%s.depends-on", prefix);
  JsonArray *array;

  if (!_exo_config_read_array (loader, node, depends_key, &array, error))
    return FALSE;

  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      g_autofree char *key = g_strdup_printf ("%s[%u]", depends_key, i);
      guint line = _exo_config_line_of (loader, element);
      const char *dependency;

      if (!_exo_config_read_string (loader, element, key, &dependency, error))
        return FALSE;
      if (g_str_equal (dependency, spec->id))
        {
          _exo_config_set_key_error (error, EXO_CONFIG_ERROR_CYCLE, loader->source, line, key,
                                     "resource '%s' depends on itself", spec->id);
          return FALSE;
        }
      for (guint j = 0; j < resource_spec_n_depends (spec); j++)
        if (g_str_equal (resource_spec_depends (spec, j), dependency))
          {
            _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source, line, key,
                                       "'%s' is listed twice", dependency);
            return FALSE;
          }

      g_ptr_array_insert (spec->depends_on, spec->depends_on->len - 1, g_strdup (dependency));
      g_array_append_val (spec->depends_lines, line);
    }

  return TRUE;
}

static gboolean
load_resource (Loader    *loader,
               guint      index,
               JsonNode  *node,
               GError   **error)
{
  g_autofree char *prefix = g_strdup_printf ("resources[%u]", index);
  g_autofree char *key = NULL;
  ResourceSpec *spec, *other;
  JsonObject *object;
  JsonNode *member;
  const char *str;
  gboolean is_managed, is_group;

  if (!_exo_config_read_object (loader, node, prefix, &object, error) ||
      !read_deprecated_keys (loader, object, prefix, resource_keys, G_N_ELEMENTS (resource_keys), error) ||
      !_exo_config_check_keys (loader, object, prefix, resource_keys, G_N_ELEMENTS (resource_keys), error))
    return FALSE;

  spec = _exo_config_resource_spec_new (index, _exo_config_line_of (loader, node));
  g_ptr_array_add (loader->config->resources, spec);

  /* id */
  key = g_strdup_printf ("%s.id", prefix);
  if ((member = json_object_get_member (object, "id")) == NULL)
    return _exo_config_missing_key (loader, object, key, error);
  if (!_exo_config_read_string (loader, member, key, &str, error) ||
      !check_id (loader, member, key, str, error))
    return FALSE;
  if ((other = g_hash_table_lookup (loader->ids, str)) != NULL)
    {
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_DUPLICATE_ID, loader->source,
                                 _exo_config_line_of (loader, member), key,
                                 "duplicate id '%s' (resources[%u], line %u, has it too)",
                                 str, other->index, other->id_line);
      return FALSE;
    }
  spec->id = g_strdup (str);
  spec->id_line = _exo_config_line_of (loader, member);
  g_hash_table_insert (loader->ids, spec->id, spec);
  g_clear_pointer (&key, g_free);

  /* type */
  key = g_strdup_printf ("%s.type", prefix);
  if ((member = json_object_get_member (object, "type")) == NULL)
    return _exo_config_missing_key (loader, object, key, error);
  if (!_exo_config_read_string (loader, member, key, &str, error))
    return FALSE;
  spec->type_name = g_strdup (str);
  spec->type = loader->lookup (str, loader->lookup_data);
  if (spec->type == G_TYPE_INVALID)
    {
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_UNKNOWN_TYPE, loader->source,
                                 _exo_config_line_of (loader, member), key,
                                 "unknown resource type '%s'", str);
      return FALSE;
    }
  if (!g_type_is_a (spec->type, EXO_TYPE_RESOURCE) || G_TYPE_IS_ABSTRACT (spec->type))
    {
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_UNKNOWN_TYPE, loader->source,
                                 _exo_config_line_of (loader, member), key,
                                 "resource type '%s' (%s) is not an instantiable ExoResource",
                                 str, g_type_name (spec->type));
      return FALSE;
    }
  g_clear_pointer (&key, g_free);

  is_managed = g_type_is_a (spec->type, EXO_TYPE_MANAGED_RESOURCE);
  is_group = g_type_is_a (spec->type, EXO_TYPE_RESOURCE_GROUP);

  if ((member = json_object_get_member (object, "display-name")) != NULL)
    {
      key = g_strdup_printf ("%s.display-name", prefix);
      if (!_exo_config_read_string (loader, member, key, &str, error))
        return FALSE;
      spec->display_name = g_strdup (str);
      g_clear_pointer (&key, g_free);
    }

  if ((member = json_object_get_member (object, "init-timeout-ms")) != NULL)
    {
      key = g_strdup_printf ("%s.init-timeout-ms", prefix);
      if (!_exo_config_read_uint (loader, member, key, &spec->init_timeout_ms, error))
        return FALSE;
      spec->has_init_timeout = TRUE;
      g_clear_pointer (&key, g_free);
    }

  if ((member = json_object_get_member (object, "health-check-interval-ms")) != NULL)
    {
      key = g_strdup_printf ("%s.health-check-interval-ms", prefix);
      if (!is_managed)
        return not_applicable (loader, member, key, "health-check-interval-ms", spec,
                               "managed resources (ExoManagedResource)", error);
      if (!_exo_config_read_uint (loader, member, key, &spec->health_interval_ms, error))
        return FALSE;
      spec->has_health_interval = TRUE;
      g_clear_pointer (&key, g_free);
    }

  for (gsize i = 0; i < G_N_ELEMENTS (_exo_config_supervision_keys); i++)
    {
      if ((member = json_object_get_member (object, _exo_config_supervision_keys[i].key)) == NULL)
        continue;
      key = g_strdup_printf ("%s.%s", prefix, _exo_config_supervision_keys[i].key);
      if (!is_managed)
        return not_applicable (loader, member, key, _exo_config_supervision_keys[i].key, spec,
                               "managed resources (ExoManagedResource)", error);
      if (!_exo_config_read_uint (loader, member, key, &spec->supervision[i], error))
        return FALSE;
      if (spec->supervision[i] < _exo_config_supervision_keys[i].minimum)
        {
          _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                     _exo_config_line_of (loader, member), key,
                                     "must be at least %u (got %u)",
                                     _exo_config_supervision_keys[i].minimum, spec->supervision[i]);
          return FALSE;
        }
      spec->supervision_mask |= 1u << i;
      g_clear_pointer (&key, g_free);
    }

  if ((member = json_object_get_member (object, "retry")) != NULL &&
      !load_retry (loader, spec, member, prefix, error))
    return FALSE;

  if ((member = json_object_get_member (object, "strategy")) != NULL)
    {
      key = g_strdup_printf ("%s.strategy", prefix);
      if (!is_group)
        return not_applicable (loader, member, key, "strategy", spec,
                               "resource groups (ExoResourceGroup)", error);
      if (!_exo_config_read_string (loader, member, key, &str, error))
        return FALSE;
      if (!exo_supervision_strategy_from_string (str, &spec->strategy))
        {
          _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                     _exo_config_line_of (loader, member), key,
                                     "unknown value '%s' (expected one of: one-for-one, rest-for-one, one-for-all)",
                                     str);
          return FALSE;
        }
      spec->has_strategy = TRUE;
      g_clear_pointer (&key, g_free);
    }

  if ((member = json_object_get_member (object, "restart-burst")) != NULL)
    {
      key = g_strdup_printf ("%s.restart-burst", prefix);
      if (!is_group)
        return not_applicable (loader, member, key, "restart-burst", spec,
                               "resource groups (ExoResourceGroup)", error);
      if (!_exo_config_read_uint (loader, member, key, &spec->group_burst, error))
        return FALSE;
      if (spec->group_burst > EXO_RESTART_BURST_MAX)
        {
          _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                     _exo_config_line_of (loader, member), key,
                                     "must be at most %u (got %u)", EXO_RESTART_BURST_MAX, spec->group_burst);
          return FALSE;
        }
      spec->has_group_burst = TRUE;
      g_clear_pointer (&key, g_free);
    }

  if ((member = json_object_get_member (object, "restart-interval-ms")) != NULL)
    {
      key = g_strdup_printf ("%s.restart-interval-ms", prefix);
      if (!is_group)
        return not_applicable (loader, member, key, "restart-interval-ms", spec,
                               "resource groups (ExoResourceGroup)", error);
      if (!_exo_config_read_uint (loader, member, key, &spec->group_interval_ms, error))
        return FALSE;
      spec->has_group_interval = TRUE;
      g_clear_pointer (&key, g_free);
    }

  if ((member = json_object_get_member (object, "settings")) != NULL &&
      !_exo_config_load_settings (loader, spec, member, prefix, error))
    return FALSE;

  if ((member = json_object_get_member (object, "depends-on")) != NULL &&
      !load_depends_on (loader, spec, member, prefix, error))
    return FALSE;

  return TRUE;
}

/* Every dependency defined; no cycle; an order with dependencies first
 * (a depth-first post-order, without recursion: 10 000 resources in a
 * chain must not exhaust the stack). */
static gboolean
check_dependencies (Loader  *loader,
                    GError **error)
{
  ExoConfig *config = loader->config;
  guint n = config->resources->len;
  g_autofree guint8 *color = g_new0 (guint8, n);   /* 0 new, 1 on the path, 2 done */
  g_autofree guint *path = g_new (guint, n);
  g_autofree guint *next_edge = g_new (guint, n);
  guint n_order = 0;

  for (guint i = 0; i < n; i++)
    {
      ResourceSpec *spec = g_ptr_array_index (config->resources, i);

      for (guint j = 0; j < resource_spec_n_depends (spec); j++)
        {
          const char *dependency = resource_spec_depends (spec, j);

          if (!g_hash_table_contains (loader->ids, dependency))
            {
              g_autofree char *key = g_strdup_printf ("resources[%u].depends-on[%u]", i, j);

              _exo_config_set_key_error (error, EXO_CONFIG_ERROR_MISSING_DEPENDENCY, loader->source,
                                         g_array_index (spec->depends_lines, guint, j), key,
                                         "resource '%s' depends on '%s', which is not defined",
                                         spec->id, dependency);
              return FALSE;
            }
        }
    }

  config->order = g_new (guint, MAX (n, 1));
  for (guint root = 0; root < n; root++)
    {
      guint depth = 0;

      if (color[root] != 0)
        continue;

      color[root] = 1;
      path[depth] = root;
      next_edge[depth] = 0;
      depth++;

      while (depth > 0)
        {
          ResourceSpec *spec = g_ptr_array_index (config->resources, path[depth - 1]);
          guint edge = next_edge[depth - 1]++;
          ResourceSpec *dependency;

          if (edge >= resource_spec_n_depends (spec))
            {
              color[spec->index] = 2;
              config->order[n_order++] = spec->index;
              depth--;
              continue;
            }

          dependency = g_hash_table_lookup (loader->ids, resource_spec_depends (spec, edge));
          if (color[dependency->index] == 0)
            {
              color[dependency->index] = 1;
              path[depth] = dependency->index;
              next_edge[depth] = 0;
              depth++;
            }
          else if (color[dependency->index] == 1)
            {
              g_autoptr(GString) cycle = g_string_new (NULL);
              g_autofree char *key = NULL;
              ResourceSpec *first;
              guint start = 0, first_edge;

              while (path[start] != dependency->index)
                start++;
              for (guint k = start; k < depth; k++)
                {
                  ResourceSpec *member = g_ptr_array_index (config->resources, path[k]);
                  g_string_append_printf (cycle, "%s -> ", member->id);
                }
              g_string_append (cycle, dependency->id);

              /* Reported where the cycle's first member names the next one. */
              first = g_ptr_array_index (config->resources, path[start]);
              first_edge = next_edge[start] - 1;
              key = g_strdup_printf ("resources[%u].depends-on[%u]", first->index, first_edge);
              _exo_config_set_key_error (error, EXO_CONFIG_ERROR_CYCLE, loader->source,
                                         g_array_index (first->depends_lines, guint, first_edge), key,
                                         "dependency cycle: %s", cycle->str);
              return FALSE;
            }
        }
    }

  g_assert (n_order == n);
  return TRUE;
}

gboolean
_exo_config_load_document (Loader    *loader,
                           JsonNode  *root,
                           GError   **error)
{
  JsonObject *object;
  JsonNode *member;
  JsonArray *resources;
  guint n;

  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_WRONG_TYPE,
                   "%s:%u: expected an object at the top level, got %s",
                   loader->source, MAX (loader->last_line, 1), _exo_config_json_kind (root));
      return FALSE;
    }
  object = json_node_get_object (root);

  if (!_exo_config_check_keys (loader, object, NULL, top_level_keys, G_N_ELEMENTS (top_level_keys), error))
    return FALSE;

  if ((member = json_object_get_member (object, "node")) != NULL &&
      !load_node (loader, member, error))
    return FALSE;

  if ((member = json_object_get_member (object, "resources")) == NULL)
    return _exo_config_missing_key (loader, object, "resources", error);
  if (!_exo_config_read_array (loader, member, "resources", &resources, error))
    return FALSE;
  loader->config->resources_line = _exo_config_line_of (loader, member);

  n = json_array_get_length (resources);
  if (n > EXO_CONFIG_MAX_RESOURCES)
    {
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_LIMIT, loader->source,
                                 _exo_config_line_of (loader, member),
                                 "resources", "%u resources are more than the limit of %u",
                                 n, EXO_CONFIG_MAX_RESOURCES);
      return FALSE;
    }

  for (guint i = 0; i < n; i++)
    if (!load_resource (loader, i, json_array_get_element (resources, i), error))
      return FALSE;

  if (!check_dependencies (loader, error) || !load_ready_when (loader, error))
    return FALSE;

  loader->config->warnings = deprecation_warnings (loader);
  return TRUE;
}
