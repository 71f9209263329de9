/* exo-resource-metrics.c: what each key of a resource's metrics is.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * This file owns the declared metric entries (ExoMetricEntry): a class
 * says, next to its collect_metrics, which of its keys is a counter, a
 * gauge, a summary's sum or count, a label of an `_info` family, or not
 * exported, and under which name and unit.  An exporter (the http-server
 * plugin's /metrics) finds the entry of a key with
 * exo_resource_class_find_metric_entry(), the class's own first, then its
 * parents'.  The entries themselves are the caller's (static tables); this
 * file keeps, per GType, a table of key -> entry in the type's qdata.
 *
 * Rules: entries are added from class_init (GType holds its class init
 * lock then; nothing reads the class's table before class_init returns);
 * after that the tables are only read, from any thread, without a lock.
 */
#include "exo-resource-private.h"

#include <math.h>
#include <string.h>

static GQuark
entries_quark (void)
{
  static GQuark quark;

  /* as G_DEFINE_QUARK: a race gives the same quark twice */
  if (G_UNLIKELY (quark == 0))
    quark = g_quark_from_static_string ("exo-metric-entries");
  return quark;
}

/* [a-z_][a-z0-9_]* between @start and @end (lower case: the house style,
 * and no `:`, which Prometheus keeps for recording rules). */
static gboolean
is_snake_name (const char *start,
               const char *end)
{
  if (start == end || g_ascii_isdigit (*start))
    return FALSE;
  for (const char *p = start; p < end; p++)
    if (!(g_ascii_islower (*p) || g_ascii_isdigit (*p) || *p == '_'))
      return FALSE;
  return TRUE;
}

/* `{name="value",…}` (the whole of @labels), values without `"`, `\` or
 * a newline: constant labels need no escaping. */
static gboolean
are_constant_labels (const char *labels)
{
  const char *p = labels;

  if (*p++ != '{')
    return FALSE;
  for (;;)
    {
      const char *name = p;
      const char *close;

      while (*p != '\0' && *p != '=')
        p++;
      if (*p != '=' || !is_snake_name (name, p) || g_str_has_prefix (name, "__") ||
          strncmp (name, "id=", 3) == 0 || strncmp (name, "le=", 3) == 0 ||
          strncmp (name, "quantile=", 9) == 0 || p[1] != '"')
        return FALSE;
      p += 2;
      close = strchr (p, '"');
      if (close == NULL)
        return FALSE;
      for (; p < close; p++)
        if (*p == '\\' || *p == '\n')
          return FALSE;
      p = close + 1;
      if (*p == '}')
        return p[1] == '\0';
      if (*p++ != ',')
        return FALSE;
    }
}

/* The label an INFO key becomes: the key with `-` as `_`. */
static gboolean
is_info_label_key (const char *key)
{
  g_autofree char *label = g_strdelimit (g_strdup (key), "-", '_');

  return is_snake_name (label, label + strlen (label)) &&
         !g_str_has_prefix (label, "__") && strcmp (label, "id") != 0;
}

/* The family of @name: up to its constant labels. */
static gsize
family_len (const char *name)
{
  const char *labels = strchr (name, '{');

  return labels != NULL ? (gsize) (labels - name) : strlen (name);
}

/* Whether @type or a parent declares another key than @key whose name is
 * @name (the same family, with or without the same labels: a family
 * with constant labels is one per label set, which is allowed when the
 * labels differ). */
static gboolean
family_taken (GType       type,
              const char *key,
              const char *name)
{
  for (; type != 0 && g_type_is_a (type, EXO_TYPE_RESOURCE); type = g_type_parent (type))
    {
      GHashTable *table = g_type_get_qdata (type, entries_quark ());
      GHashTableIter iter;
      gpointer value;

      if (table == NULL)
        continue;
      g_hash_table_iter_init (&iter, table);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          const ExoMetricEntry *e = value;

          /* the keys of an _info family are its labels: many a family */
          if (e->kind == EXO_METRIC_HIDDEN || e->kind == EXO_METRIC_INFO || e->name == NULL ||
              g_strcmp0 (e->key, key) == 0)
            continue;
          if (family_len (e->name) == family_len (name) &&
              strncmp (e->name, name, family_len (name)) == 0 &&
              (strchr (name, '{') == NULL || strchr (e->name, '{') == NULL ||
               strcmp (e->name, name) == 0))
            return TRUE;
        }
    }
  return FALSE;
}

/* Why @entry is not usable, or NULL. */
static const char *
entry_problem (const ExoMetricEntry *entry)
{
  const char *name = entry->name;
  const char *labels;
  const char *end;

  if (entry->key == NULL || entry->key[0] == '\0')
    return "no key";
  if (strlen (entry->key) > 128)
    return "a key longer than 128 bytes";
  if ((guint) entry->kind > EXO_METRIC_INFO)
    return "an unknown kind";
  if (entry->kind == EXO_METRIC_HIDDEN)
    return NULL;
  if (name == NULL || entry->help == NULL || entry->help[0] == '\0')
    return "no name or no help";
  if (strlen (name) > 256 || strlen (entry->help) > 1024)
    return "a name longer than 256 bytes or a help longer than 1024";
  for (const char *c = entry->help; *c != '\0'; c++)
    if ((guchar) *c < 0x20 || *c == 0x7f)
      return "a help with a control character (one line of text)";
  if (!isfinite (entry->scale) || entry->scale < 0)
    return "a scale that is not a finite number >= 0";
  labels = strchr (name, '{');
  end = labels != NULL ? labels : name + strlen (name);
  if (!g_str_has_prefix (name, "exo_") || !is_snake_name (name, end))
    return "a name that is not exo_ and then lower case, digits and _";
  if (labels != NULL && (entry->kind == EXO_METRIC_INFO || !are_constant_labels (labels)))
    return "constant labels that are not {name=\"value\",…} (none on an _info)";

#define ENDS_WITH(suffix) \
  ((gsize) (end - name) > strlen (suffix) && strncmp (end - strlen (suffix), suffix, strlen (suffix)) == 0)
  switch (entry->kind)
    {
    case EXO_METRIC_COUNTER:
      if (!ENDS_WITH ("_total"))
        return "a counter whose name does not end in _total";
      break;
    case EXO_METRIC_SUMMARY:
      if (!ENDS_WITH ("_sum") && !ENDS_WITH ("_count"))
        return "a summary whose name does not end in _sum or _count";
      break;
    case EXO_METRIC_INFO:
      if (!ENDS_WITH ("_info"))
        return "an info whose name does not end in _info";
      if (!is_info_label_key (entry->key))
        return "an info key that is not a label name (with - for _; not id)";
      break;
    case EXO_METRIC_GAUGE:
      if (ENDS_WITH ("_total") || ENDS_WITH ("_sum") || ENDS_WITH ("_count") ||
          ENDS_WITH ("_bucket") || ENDS_WITH ("_info"))
        return "a gauge with a suffix of another kind";
      break;
    case EXO_METRIC_HIDDEN:
    default:
      break;
    }
#undef ENDS_WITH
  return NULL;
}

/**
 * exo_resource_class_add_metric_entries:
 * @klass: a resource class, in its class_init
 * @entries: (array length=n_entries): what the keys of @klass's
 *   #ExoResourceClass.collect_metrics are; copied (a binding's temporary
 *   table does as well as a static one)
 * @n_entries: the length of @entries
 *
 * Declares what the metric keys of @klass are, for exporters: which is a
 * counter, a gauge, a summary's `_sum` or `_count`, a label of an `_info`
 * family or not exported, under which name and in which unit
 * (docs/metrics.md).  A key a class does not declare is looked for in its
 * parent classes; a key no class declares is not exported.  An entry for
 * a key @klass declared already replaces it.
 *
 * An entry whose name does not follow Prometheus' conventions (`exo_`,
 * lower case; `_total` for a counter; `_sum` or `_count` for a summary;
 * `_info` for an info) is refused with a critical warning.
 */
void
exo_resource_class_add_metric_entries (ExoResourceClass     *klass,
                                       const ExoMetricEntry *entries,
                                       guint                 n_entries)
{
  GType type;
  GHashTable *table;

  g_return_if_fail (EXO_IS_RESOURCE_CLASS (klass));
  g_return_if_fail (entries != NULL || n_entries == 0);

  type = G_TYPE_FROM_CLASS (klass);
  table = g_type_get_qdata (type, entries_quark ());
  if (table == NULL)
    {
      /* lives as long as the type: types are never unloaded; the copies
       * of the entries are its values, their strings interned */
      table = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
      g_type_set_qdata (type, entries_quark (), table);
    }
  for (guint i = 0; i < n_entries; i++)
    {
      const char *problem = entry_problem (&entries[i]);

      if (problem == NULL && entries[i].kind != EXO_METRIC_HIDDEN &&
          entries[i].kind != EXO_METRIC_INFO &&
          family_taken (type, entries[i].key, entries[i].name))
        problem = "the family of another key of this class or a parent class (the series would be doubled)";

      if (problem != NULL)
        {
          g_critical ("%s: metric entry '%s' (%s) has %s; not added", G_STRFUNC,
                      entries[i].key != NULL ? entries[i].key : "(null)",
                      entries[i].name != NULL ? entries[i].name : "(null)", problem);
          continue;
        }
      {
        ExoMetricEntry *copy = g_new0 (ExoMetricEntry, 1);

        copy->key = g_intern_string (entries[i].key);
        copy->kind = entries[i].kind;
        copy->name = g_intern_string (entries[i].name);
        copy->scale = entries[i].scale;
        copy->help = g_intern_string (entries[i].help);
        g_hash_table_insert (table, (gpointer) copy->key, copy);
      }
    }
}

/**
 * exo_resource_class_find_metric_entry:
 * @klass: a resource class
 * @key: a key of its metrics
 *
 * What @key is: the entry @klass declared for it, else the nearest parent
 * class's.  Safe from any thread once the class is initialized.
 *
 * Returns: (transfer none) (nullable): the entry, or %NULL when no class
 *   declared @key
 */
const ExoMetricEntry *
exo_resource_class_find_metric_entry (ExoResourceClass *klass,
                                      const char       *key)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_CLASS (klass), NULL);
  g_return_val_if_fail (key != NULL, NULL);

  for (GType type = G_TYPE_FROM_CLASS (klass); type != 0; type = g_type_parent (type))
    {
      GHashTable *table = g_type_get_qdata (type, entries_quark ());
      const ExoMetricEntry *entry = table != NULL ? g_hash_table_lookup (table, key) : NULL;

      if (entry != NULL)
        return entry;
      if (type == EXO_TYPE_RESOURCE)
        break;
    }
  return NULL;
}

/**
 * exo_resource_type_declare_metric:
 * @type: a resource type (a subtype of #ExoResource), its class made
 * @key: a key of its metrics
 * @kind: what it is
 * @name: (nullable): the exported family, as #ExoMetricEntry.name
 * @scale: as #ExoMetricEntry.scale; 0 means 1
 * @help: (nullable): the `# HELP` text
 *
 * Declares one metric key of @type, as exo_resource_class_add_metric_entries()
 * does for a table, for code that has the type but not its class
 * structure: a language binding (Python: call it after the class
 * statement, `Exo.Resource.type_declare_metric (MyResource, 'queue-length',
 * Exo.MetricKind.GAUGE, 'exo_my_queue_length', 0, 'Items waiting.')`).
 * An entry whose name does not follow Prometheus' conventions is refused
 * with a critical warning.  New in plugin ABI 3.2.
 *
 * Returns: whether the key was declared
 */
gboolean
exo_resource_type_declare_metric (GType          type,
                                  const char    *key,
                                  ExoMetricKind  kind,
                                  const char    *name,
                                  double         scale,
                                  const char    *help)
{
  ExoMetricEntry entry = { 0 };
  ExoResourceClass *klass;
  const ExoMetricEntry *found;
  gboolean declared;

  g_return_val_if_fail (g_type_is_a (type, EXO_TYPE_RESOURCE), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);

  entry.key = key;
  entry.kind = kind;
  entry.name = name;
  entry.scale = scale;
  entry.help = help;
  klass = g_type_class_ref (type);
  exo_resource_class_add_metric_entries (klass, &entry, 1);
  found = exo_resource_class_find_metric_entry (klass, key);
  declared = found != NULL && g_strcmp0 (found->name, name) == 0;
  g_type_class_unref (klass);
  return declared;
}
