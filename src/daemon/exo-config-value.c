/* exo-config-value.c: `settings`: JSON values to GObject property values.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: finding each setting's GParamSpec on the resource type, refusing
 * properties that are not settings (read-only ones, and those with a
 * resource key of their own, listed in exo-config-schema.c), and the
 * conversion of a JSON value to a GValue of the property's type:
 * booleans, integers, floating point numbers, strings, enums and flags by
 * nick, string arrays.  The GParamSpec judges every value, so a setting's
 * range is the property's own.
 *
 * Rules: synchronous, no main context, no locks.  Only the resource type's
 * class is used (g_type_class_ref()); no instance is made here.
 */
#include "exo-config-private.h"

#include <math.h>

/* ------------------------------------------------------------------------ */
/* One value                                                                */

/* "MIN to MAX" of an integer property, for messages; %NULL for a kind of
 * GParamSpec that GObject does not define. */
static char *
integer_range (GParamSpec *pspec)
{
  if (G_IS_PARAM_SPEC_CHAR (pspec))
    return g_strdup_printf ("%d to %d", G_PARAM_SPEC_CHAR (pspec)->minimum,
                            G_PARAM_SPEC_CHAR (pspec)->maximum);
  if (G_IS_PARAM_SPEC_UCHAR (pspec))
    return g_strdup_printf ("%u to %u", G_PARAM_SPEC_UCHAR (pspec)->minimum,
                            G_PARAM_SPEC_UCHAR (pspec)->maximum);
  if (G_IS_PARAM_SPEC_INT (pspec))
    return g_strdup_printf ("%d to %d", G_PARAM_SPEC_INT (pspec)->minimum,
                            G_PARAM_SPEC_INT (pspec)->maximum);
  if (G_IS_PARAM_SPEC_UINT (pspec))
    return g_strdup_printf ("%u to %u", G_PARAM_SPEC_UINT (pspec)->minimum,
                            G_PARAM_SPEC_UINT (pspec)->maximum);
  if (G_IS_PARAM_SPEC_LONG (pspec))
    return g_strdup_printf ("%ld to %ld", G_PARAM_SPEC_LONG (pspec)->minimum,
                            G_PARAM_SPEC_LONG (pspec)->maximum);
  if (G_IS_PARAM_SPEC_ULONG (pspec))
    return g_strdup_printf ("%lu to %lu", G_PARAM_SPEC_ULONG (pspec)->minimum,
                            G_PARAM_SPEC_ULONG (pspec)->maximum);
  if (G_IS_PARAM_SPEC_INT64 (pspec))
    return g_strdup_printf ("%" G_GINT64_FORMAT " to %" G_GINT64_FORMAT,
                            G_PARAM_SPEC_INT64 (pspec)->minimum, G_PARAM_SPEC_INT64 (pspec)->maximum);
  if (G_IS_PARAM_SPEC_UINT64 (pspec))
    return g_strdup_printf ("%" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT,
                            G_PARAM_SPEC_UINT64 (pspec)->minimum, G_PARAM_SPEC_UINT64 (pspec)->maximum);
  return NULL;
}

/* Every integer type, signed or not, with one range check: the GParamSpec's. */
static gboolean
convert_integer (Loader     *loader,
                 JsonNode   *node,
                 GParamSpec *pspec,
                 const char *key,
                 GValue     *value,
                 GError    **error)
{
  GType type = G_TYPE_FUNDAMENTAL (G_PARAM_SPEC_VALUE_TYPE (pspec));
  gboolean is_unsigned = type == G_TYPE_UCHAR || type == G_TYPE_UINT ||
                         type == G_TYPE_ULONG || type == G_TYPE_UINT64;
  g_auto(GValue) wide = G_VALUE_INIT;
  g_auto(GValue) back = G_VALUE_INIT;
  g_autofree char *range = NULL;
  gint64 v;

  if (!_exo_config_holds (node, G_TYPE_INT64))
    return _exo_config_wrong_type (loader, node, key, "an integer", error);
  v = json_node_get_int (node);

  /* GLib transforms one integer type to another with a C cast: @v comes
   * back unchanged only when the property's type can hold it (and a
   * negative number never fits an unsigned type, even when the cast back
   * restores it). */
  g_value_init (&wide, G_TYPE_INT64);
  g_value_set_int64 (&wide, v);
  g_value_init (&back, G_TYPE_INT64);
  g_value_init (value, G_PARAM_SPEC_VALUE_TYPE (pspec));
  if (g_value_transform (&wide, value) && g_value_transform (value, &back) &&
      g_value_get_int64 (&back) == v && !(is_unsigned && v < 0) &&
      g_param_value_is_valid (pspec, value))
    return TRUE;

  g_value_unset (value);
  range = integer_range (pspec);
  if (range != NULL)
    _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                               _exo_config_line_of (loader, node), key,
                               "value %" G_GINT64_FORMAT " is out of range (%s)", v, range);
  else
    _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                               _exo_config_line_of (loader, node), key,
                               "value %" G_GINT64_FORMAT " is out of range", v);
  return FALSE;
}

static gboolean
convert_floating (Loader     *loader,
                  JsonNode   *node,
                  GParamSpec *pspec,
                  const char *key,
                  GValue     *value,
                  GError    **error)
{
  gboolean is_float = G_IS_PARAM_SPEC_FLOAT (pspec);
  double min, max, v;

  if (_exo_config_holds (node, G_TYPE_INT64))
    v = (double) json_node_get_int (node);
  else if (_exo_config_holds (node, G_TYPE_DOUBLE))
    v = json_node_get_double (node);
  else
    return _exo_config_wrong_type (loader, node, key, "a number", error);

  if (is_float)
    {
      min = G_PARAM_SPEC_FLOAT (pspec)->minimum;
      max = G_PARAM_SPEC_FLOAT (pspec)->maximum;
    }
  else
    {
      min = G_PARAM_SPEC_DOUBLE (pspec)->minimum;
      max = G_PARAM_SPEC_DOUBLE (pspec)->maximum;
    }
  if (!isfinite (v) || v < min || v > max)
    {
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                 _exo_config_line_of (loader, node), key,
                                 "value %g is out of range (%g to %g)", v, min, max);
      return FALSE;
    }

  g_value_init (value, G_PARAM_SPEC_VALUE_TYPE (pspec));
  if (is_float)
    g_value_set_float (value, (float) v);
  else
    g_value_set_double (value, v);
  return TRUE;
}

static char *
enum_nicks (GEnumClass *enum_class)
{
  GString *str = g_string_new (NULL);

  for (guint i = 0; i < enum_class->n_values; i++)
    g_string_append_printf (str, "%s%s", i > 0 ? ", " : "", enum_class->values[i].value_nick);
  return g_string_free (str, FALSE);
}

static char *
flags_nicks (GFlagsClass *flags_class)
{
  GString *str = g_string_new (NULL);

  for (guint i = 0; i < flags_class->n_values; i++)
    g_string_append_printf (str, "%s%s", i > 0 ? ", " : "", flags_class->values[i].value_nick);
  return g_string_free (str, FALSE);
}

static gboolean
convert_enum (Loader     *loader,
              JsonNode   *node,
              GParamSpec *pspec,
              const char *key,
              GValue     *value,
              GError    **error)
{
  GEnumClass *enum_class = G_PARAM_SPEC_ENUM (pspec)->enum_class;
  GEnumValue *enum_value;
  const char *nick;

  if (!_exo_config_read_string (loader, node, key, &nick, error))
    return FALSE;

  enum_value = g_enum_get_value_by_nick (enum_class, nick);
  if (enum_value == NULL)
    {
      g_autofree char *nicks = enum_nicks (enum_class);

      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                 _exo_config_line_of (loader, node), key,
                                 "unknown value '%s' (expected one of: %s)", nick, nicks);
      return FALSE;
    }

  g_value_init (value, G_PARAM_SPEC_VALUE_TYPE (pspec));
  g_value_set_enum (value, enum_value->value);
  return TRUE;
}

static gboolean
add_flag (Loader       *loader,
          JsonNode     *node,
          const char   *key,
          GFlagsClass  *flags_class,
          const char   *nick,
          guint        *flags,
          GError      **error)
{
  GFlagsValue *flags_value = g_flags_get_value_by_nick (flags_class, nick);

  if (flags_value == NULL)
    {
      g_autofree char *nicks = flags_nicks (flags_class);

      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                 _exo_config_line_of (loader, node), key,
                                 "unknown flag '%s' (expected some of: %s)", nick, nicks);
      return FALSE;
    }
  *flags |= flags_value->value;
  return TRUE;
}

/* A string "a|b" or an array of strings ["a", "b"]. */
static gboolean
convert_flags (Loader     *loader,
               JsonNode   *node,
               GParamSpec *pspec,
               const char *key,
               GValue     *value,
               GError    **error)
{
  GFlagsClass *flags_class = G_PARAM_SPEC_FLAGS (pspec)->flags_class;
  guint flags = 0;

  if (_exo_config_holds (node, G_TYPE_STRING))
    {
      g_auto(GStrv) nicks = g_strsplit (json_node_get_string (node), "|", -1);

      for (guint i = 0; nicks[i] != NULL; i++)
        {
          g_strstrip (nicks[i]);
          if (*nicks[i] == '\0')
            continue;
          if (!add_flag (loader, node, key, flags_class, nicks[i], &flags, error))
            return FALSE;
        }
    }
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *element = json_array_get_element (array, i);
          g_autofree char *element_key = g_strdup_printf ("%s[%u]", key, i);
          const char *nick;

          if (!_exo_config_read_string (loader, element, element_key, &nick, error) ||
              !add_flag (loader, element, element_key, flags_class, nick, &flags, error))
            return FALSE;
        }
    }
  else
    return _exo_config_wrong_type (loader, node, key, "a string or an array of strings", error);

  g_value_init (value, G_PARAM_SPEC_VALUE_TYPE (pspec));
  g_value_set_flags (value, flags);
  return TRUE;
}

static gboolean
convert_strv (Loader     *loader,
              JsonNode   *node,
              GParamSpec *pspec,
              const char *key,
              GValue     *value,
              GError    **error)
{
  JsonArray *array;
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  if (!JSON_NODE_HOLDS_ARRAY (node))
    return _exo_config_wrong_type (loader, node, key, "an array of strings", error);

  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      g_autofree char *element_key = g_strdup_printf ("%s[%u]", key, i);
      const char *str;

      if (!_exo_config_read_string (loader, element, element_key, &str, error))
        return FALSE;
      g_strv_builder_add (builder, str);
    }

  g_value_init (value, G_TYPE_STRV);
  g_value_take_boxed (value, g_strv_builder_end (builder));
  return TRUE;
}

static gboolean
convert_setting (Loader     *loader,
                 JsonNode   *node,
                 GParamSpec *pspec,
                 const char *key,
                 GValue     *value,
                 GError    **error)
{
  GType value_type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  gboolean ok;

  switch (G_TYPE_FUNDAMENTAL (value_type))
    {
    case G_TYPE_BOOLEAN:
      if (!_exo_config_holds (node, G_TYPE_BOOLEAN))
        return _exo_config_wrong_type (loader, node, key, "a boolean", error);
      g_value_init (value, G_TYPE_BOOLEAN);
      g_value_set_boolean (value, json_node_get_boolean (node));
      ok = TRUE;
      break;
    case G_TYPE_CHAR:
    case G_TYPE_UCHAR:
    case G_TYPE_INT:
    case G_TYPE_UINT:
    case G_TYPE_LONG:
    case G_TYPE_ULONG:
    case G_TYPE_INT64:
    case G_TYPE_UINT64:
      ok = convert_integer (loader, node, pspec, key, value, error);
      break;
    case G_TYPE_FLOAT:
    case G_TYPE_DOUBLE:
      ok = convert_floating (loader, node, pspec, key, value, error);
      break;
    case G_TYPE_STRING:
      {
        const char *str;

        if (!_exo_config_read_string (loader, node, key, &str, error))
          return FALSE;
        g_value_init (value, value_type);
        g_value_set_string (value, str);
        ok = TRUE;
      }
      break;
    case G_TYPE_ENUM:
      ok = convert_enum (loader, node, pspec, key, value, error);
      break;
    case G_TYPE_FLAGS:
      ok = convert_flags (loader, node, pspec, key, value, error);
      break;
    case G_TYPE_BOXED:
      if (value_type == G_TYPE_STRV)
        {
          ok = convert_strv (loader, node, pspec, key, value, error);
          break;
        }
      G_GNUC_FALLTHROUGH;
    default:
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                 _exo_config_line_of (loader, node), key,
                                 "property '%s' has the type %s, which a config cannot set",
                                 pspec->name, g_type_name (value_type));
      return FALSE;
    }

  if (!ok)
    return FALSE;

  /* The GParamSpec has the last word (custom param types, string rules…). */
  if (g_param_value_validate (pspec, value))
    {
      g_value_unset (value);
      _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                 _exo_config_line_of (loader, node), key,
                                 "value not accepted by property '%s' of type %s",
                                 pspec->name, g_type_name (pspec->owner_type));
      return FALSE;
    }

  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* A resource's `settings`                                                  */

gboolean
_exo_config_load_settings (Loader       *loader,
                           ResourceSpec *spec,
                           JsonNode     *node,
                           const char   *prefix,
                           GError      **error)
{
  g_autofree char *settings_key = g_strdup_printf ("%s.settings", prefix);
  g_autoptr(GTypeClass) type_class = NULL;
  g_autoptr(GList) members = NULL;
  GObjectClass *klass;
  JsonObject *object;

  if (!_exo_config_read_object (loader, node, settings_key, &object, error))
    return FALSE;

  type_class = g_type_class_ref (spec->type);
  klass = G_OBJECT_CLASS (type_class);
  members = json_object_get_members (object);

  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *name = l->data;
      JsonNode *value_node = json_object_get_member (object, name);
      g_autofree char *key = g_strdup_printf ("%s.%s", settings_key, name);
      GParamSpec *pspec = g_object_class_find_property (klass, name);
      Setting *setting;

      /* GObject also finds "listen_address"; the config spells it "listen-address". */
      if (pspec == NULL || !g_str_equal (pspec->name, name))
        {
          g_autoptr(GPtrArray) names = _exo_config_list_settings (klass);
          g_autofree char *what = g_strdup_printf ("type '%s' has no setting '%s'",
                                                   spec->type_name, name);
          g_autofree char *message = NULL;

          message = _exo_config_describe_unknown (name, (const char * const *) names->pdata,
                                                  names->len, what);
          _exo_config_set_key_error (error, EXO_CONFIG_ERROR_UNKNOWN_KEY, loader->source,
                                     _exo_config_line_of (loader, value_node), key, "%s", message);
          return FALSE;
        }

      if (_exo_config_dedicated_key (pspec) != NULL)
        {
          _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                     _exo_config_line_of (loader, value_node), key,
                                     "'%s' is not a setting; use the resource key '%s'",
                                     name, _exo_config_dedicated_key (pspec));
          return FALSE;
        }
      if ((pspec->flags & G_PARAM_WRITABLE) == 0)
        {
          _exo_config_set_key_error (error, EXO_CONFIG_ERROR_INVALID, loader->source,
                                     _exo_config_line_of (loader, value_node), key,
                                     "property '%s' of type '%s' is read-only", name, spec->type_name);
          return FALSE;
        }

      setting = g_new0 (Setting, 1);
      setting->name = g_strdup (pspec->name);
      setting->line = _exo_config_line_of (loader, value_node);
      if (!convert_setting (loader, value_node, pspec, key, &setting->value, error))
        {
          _exo_config_setting_free (setting);
          return FALSE;
        }
      g_ptr_array_add (spec->settings, setting);
    }

  return TRUE;
}
