/* exo-dbus-refresh.c: the property values of the exported resources
 * (docs/design.md §4).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns what the values are: it reads them from the resources and stores
 * them with the setters of exo-dbus-objects.c, which do nothing for a value
 * that did not change.
 *
 * What comes straight from a transition (State, Healthy, StateChangedAt,
 * InitializedAt) is set at the transition, at once.  Everything else is set
 * in one idle of ours per main-loop iteration, the refresh, for the entries
 * marked dirty since the last one: the failure statistics (LastError,
 * ErrorCount, Attempts, Result), Metrics and pool counters, DependsOn,
 * Members, and the default topology.  The refresh ends with the emission of
 * PropertiesChanged, so any number of changes in one iteration make at most
 * one emission per object and interface.
 *
 * The rules that keep replies consistent:
 *
 * - LastError, ErrorCount, Attempts and Result are set only together with
 *   Metrics (DIRTY_STATS comes with DIRTY_METRICS), in the refresh, never
 *   at the transition: a resource counts a failure in its metrics in the
 *   same dispatch in which libexo records it, and no reply or emission may
 *   have ErrorCount ahead of the resource's own failure counters, also when
 *   the error comes with a transition (a failed health check that makes it
 *   `degraded`).
 * - Metrics and pool counters are read after every transition and every
 *   notify of the resource other than state (once per refresh however many
 *   came), and polled once a second; a value that did not change emits
 *   nothing.  They are computed the first time a client reads them (with
 *   the failure statistics, so that the two agree), not when the resource
 *   is added: nobody can have seen them before, and a node starting 10,000
 *   resources would compute them 30,000 times for nobody.  Until then
 *   transitions and the poll leave them alone.
 * - DependsOn changes with membership (member-added/-removed mark the
 *   group's members) and with exo_resource_group_add_dependency(), which has
 *   no signal: the poll compares the dependency ids once a second, and a
 *   change reorders the group's Members and changes the topology.  A
 *   transition does not look at them.
 * - The default topology is O(resources): rebuilt at most every
 *   TOPOLOGY_INTERVAL_MS, from per-entry pieces of JSON that only the state
 *   is inserted into (the dependencies are those DependsOn shows).
 *
 * Runs in the export's main context.
 */
#include "exo-dbus-export-private.h"

#include <json-glib/json-glib.h>

/* How often Metrics and pool counters are polled, in seconds. */
#define POLL_INTERVAL_S 1
/* Before the GDBus idles (G_PRIORITY_DEFAULT) that answer calls. */
#define REFRESH_PRIORITY (G_PRIORITY_DEFAULT - 1)
#define TOPOLOGY_INTERVAL_MS 100

/* --- marking ------------------------------------------------------------- */

static gboolean
refresh_cb (gpointer data);

void
_exo_dbus_schedule_refresh (ExoDBusExport *self)
{
  if (self->refresh_source != NULL || !self->exported)
    return;

  self->refresh_source = g_idle_source_new ();
  g_source_set_priority (self->refresh_source, REFRESH_PRIORITY);
  g_source_set_callback (self->refresh_source, refresh_cb, self, NULL);
  g_source_set_static_name (self->refresh_source, "[exo] ExoDBusExport refresh");
  g_source_attach (self->refresh_source, self->context);
}

void
_exo_dbus_mark_dirty (ExoDBusEntry *entry,
                      guint         what)
{
  ExoDBusExport *self = entry->self;

  entry->dirty |= what;
  if (!entry->queued)
    {
      entry->queued = TRUE;
      g_ptr_array_add (self->dirty_entries, entry);
    }
  _exo_dbus_schedule_refresh (self);
}

void
_exo_dbus_mark_topology_dirty (ExoDBusExport *self)
{
  if (self->topology != NULL)
    return;
  self->topology_dirty = TRUE;
  _exo_dbus_schedule_refresh (self);
}

/* Marks Members of @group and DependsOn of each of its members dirty. */
void
_exo_dbus_mark_group_dirty (ExoDBusExport    *self,
                            ExoResourceGroup *group)
{
  ExoDBusEntry *group_entry = _exo_dbus_lookup_entry (self, EXO_RESOURCE (group));
  g_autoptr(GPtrArray) members = exo_resource_group_get_members (group);

  if (group_entry != NULL)
    _exo_dbus_mark_dirty (group_entry, DIRTY_MEMBERS);

  for (guint i = 0; i < members->len; i++)
    {
      ExoDBusEntry *entry = _exo_dbus_lookup_entry (self, g_ptr_array_index (members, i));

      if (entry != NULL && entry->parent == group)
        _exo_dbus_mark_dirty (entry, DIRTY_DEPS);
    }
  _exo_dbus_mark_topology_dirty (self);
}

/* --- values from the resources --------------------------------------------- */

/* The properties that come straight from the resource's state: set at
 * each transition, at once. */
void
_exo_dbus_entry_sync_state (ExoDBusEntry *entry)
{
  ExoResource *resource = entry->resource;
  ExoResourceState state = exo_resource_get_state (resource);
  GVariant *nick = _exo_dbus_state_variant (state);

  if (nick != NULL)
    _exo_dbus_entry_set (entry, PROP_STATE, g_variant_ref (nick));
  else
    _exo_dbus_entry_set_string (entry, PROP_STATE, exo_resource_state_to_string (state));
  _exo_dbus_entry_set_boolean (entry, PROP_HEALTHY, state == EXO_RESOURCE_STATE_READY);
  _exo_dbus_entry_set_uint64 (entry, PROP_STATE_CHANGED_AT,
                              (guint64) MAX (exo_resource_get_state_changed_at (resource), 0));
  _exo_dbus_entry_set_uint64 (entry, PROP_INITIALIZED_AT,
                              (guint64) MAX (exo_resource_get_initialized_at (resource), 0));
}

/* The failure statistics: set only together with Metrics (see the rules
 * above). */
static void
sync_stats (ExoDBusEntry *entry)
{
  ExoResource *resource = entry->resource;
  const GError *last_error = exo_resource_get_last_error (resource);

  _exo_dbus_entry_set_string (entry, PROP_LAST_ERROR, last_error != NULL ? last_error->message : "");
  _exo_dbus_entry_set_uint32 (entry, PROP_ERROR_COUNT, exo_resource_get_error_count (resource));
  _exo_dbus_entry_set_uint32 (entry, PROP_ATTEMPTS, exo_resource_get_attempts (resource));
  _exo_dbus_entry_set_result (entry, exo_resource_get_result (resource));
}

static void
sync_metrics (ExoDBusEntry *entry)
{
  /* exo_resource_get_metrics() returns a reference the setter takes */
  _exo_dbus_entry_set (entry, PROP_METRICS, exo_resource_get_metrics (entry->resource));

  if (entry->ifaces & (1u << IFACE_POOL))
    {
      ExoPoolStats stats;

      exo_resource_pool_get_stats (EXO_RESOURCE_POOL (entry->resource), &stats);
      _exo_dbus_entry_set_uint32 (entry, PROP_MIN_SIZE, stats.min_size);
      _exo_dbus_entry_set_uint32 (entry, PROP_MAX_SIZE, stats.max_size);
      _exo_dbus_entry_set_uint32 (entry, PROP_SIZE, stats.size);
      _exo_dbus_entry_set_uint32 (entry, PROP_IDLE, stats.idle);
      _exo_dbus_entry_set_uint32 (entry, PROP_IN_USE, stats.in_use);
      _exo_dbus_entry_set_uint32 (entry, PROP_WAITING, stats.waiting);
      _exo_dbus_entry_set_uint64 (entry, PROP_ACQUIRED, stats.acquired);
      _exo_dbus_entry_set_uint64 (entry, PROP_TIMEOUTS, stats.timeouts);
      _exo_dbus_entry_set_uint64 (entry, PROP_CREATED, stats.created);
      _exo_dbus_entry_set_uint64 (entry, PROP_DESTROYED, stats.destroyed);
    }
}

/* Returns: (transfer floating): @paths[0 .. n - 1] as `ao` */
static GVariant *
objv_variant (const char **paths,
              guint        n)
{
  if (n == 0)
    return g_variant_ref (_exo_dbus_empty_objv_variant ());
  return g_variant_new_objv (paths, n);
}

/* Returns whether the dependency ids changed since the last call.  With
 * @polled, unchanged ids leave DependsOn alone (the paths they map to only
 * change with membership, which marks DIRTY_DEPS). */
static gboolean
sync_depends_on (ExoDBusEntry *entry,
                 gboolean      polled)
{
  ExoDBusExport *self = entry->self;
  g_autofree const char **heap = NULL;
  const char *stack[16];
  const char **paths = stack;
  g_auto(GStrv) deps = NULL;
  gboolean changed;
  guint n_deps, n = 0;

  if (entry->parent != NULL)
    deps = exo_resource_group_get_dependencies (entry->parent,
                                                exo_resource_get_id (entry->resource));
  if (deps == NULL)
    deps = g_new0 (char *, 1);
  changed = entry->deps == NULL || !g_strv_equal ((const char * const *) entry->deps,
                                                  (const char * const *) deps);
  if (polled && !changed)
    return FALSE;

  n_deps = g_strv_length (deps);
  if (n_deps > G_N_ELEMENTS (stack))
    paths = heap = g_new (const char *, n_deps);
  for (guint i = 0; i < n_deps; i++)
    {
      ExoDBusEntry *dep = _exo_dbus_lookup_entry (self, exo_resource_group_lookup (entry->parent, deps[i]));

      if (dep != NULL)
        paths[n++] = dep->path;
    }
  _exo_dbus_entry_set (entry, PROP_DEPENDS_ON, objv_variant (paths, n));

  if (changed)
    {
      g_strfreev (entry->deps);
      entry->deps = g_steal_pointer (&deps);
      g_clear_pointer (&entry->topology_tail, g_free);
    }
  return changed;
}

void
_exo_dbus_entry_sync_members (ExoDBusEntry *entry)
{
  ExoDBusExport *self = entry->self;
  /* In dependency order; members that cannot be ordered come last. */
  g_autoptr(GPtrArray) members = exo_resource_group_get_members (EXO_RESOURCE_GROUP (entry->resource));
  g_autofree const char **paths = g_new (const char *, members->len + 1);
  guint n = 0;

  for (guint i = 0; i < members->len; i++)
    {
      ExoDBusEntry *member = _exo_dbus_lookup_entry (self, g_ptr_array_index (members, i));

      if (member != NULL)
        paths[n++] = member->path;
    }
  _exo_dbus_entry_set (entry, PROP_MEMBERS, objv_variant (paths, n));
}

/* Metrics and pool counters are NULL until somebody reads them. */
static gboolean
has_metrics (ExoDBusEntry *entry)
{
  return entry->values[PROP_METRICS] != NULL;
}

/* Before any value of @entry is read: Metrics and pool counters (and
 * the failure statistics they must agree with) if not computed yet. */
void
_exo_dbus_entry_ensure_values (ExoDBusEntry *entry)
{
  if (!has_metrics (entry))
    {
      sync_stats (entry);
      sync_metrics (entry);
    }
}

/* Every value of a new entry but Members (its members are added after it)
 * and Metrics and pool counters (when first read). */
void
_exo_dbus_entry_sync_all (ExoDBusEntry *entry)
{
  ExoResource *resource = entry->resource;

  _exo_dbus_entry_set_string (entry, PROP_ID, exo_resource_get_id (resource));
  _exo_dbus_entry_set_string (entry, PROP_TYPE, exo_resource_get_resource_type (resource));
  _exo_dbus_entry_set_string (entry, PROP_DISPLAY_NAME, exo_resource_get_display_name (resource));
  _exo_dbus_entry_sync_state (entry);
  sync_stats (entry);
  sync_depends_on (entry, FALSE);
  if (entry->ifaces & (1u << IFACE_GROUP))
    _exo_dbus_entry_set (entry, PROP_MEMBERS, g_variant_ref (_exo_dbus_empty_objv_variant ()));
}

void
_exo_dbus_sync_node_state (ExoDBusExport *self)
{
  const char *state = self->node_state;

  if (state == NULL)
    state = exo_resource_state_to_string (exo_resource_get_state (EXO_RESOURCE (self->root)));
  exo_dbus_node1_set_state (self->node, state);
}

/* --- the default topology ----------------------------------------------- */

/* Appends @str as a JSON string, byte for byte what json-glib's generator
 * wrote for it when the topology was built with it. */
static void
append_json_string (GString    *out,
                    const char *str)
{
  const guchar *p = (const guchar *) str;

  for (; p != NULL && *p != '\0'; p++)
    if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
      break;

  if (p != NULL && *p == '\0')
    {
      g_string_append_c (out, '"');
      g_string_append_len (out, str, (const char *) p - str);
      g_string_append_c (out, '"');
    }
  else
    {
      /* Something to escape (rare in ids): json-glib's own rules. */
      g_autoptr(JsonNode) node = json_node_init_string (json_node_alloc (), str);
      g_autofree char *text = json_to_string (node, FALSE);

      g_string_append (out, text);
    }
}

/* {"id":…,"type":…,"state": */
static char *
build_topology_head (ExoResource *resource)
{
  GString *out = g_string_new ("{\"id\":");

  append_json_string (out, exo_resource_get_id (resource));
  g_string_append (out, ",\"type\":");
  append_json_string (out, exo_resource_get_resource_type (resource));
  g_string_append (out, ",\"state\":");
  return g_string_free (out, FALSE);
}

/* ,"group":…,"depends_on":[…]} */
static char *
build_topology_tail (ExoResourceGroup *parent,
                     char            **deps)
{
  GString *out = g_string_new (",\"group\":");

  if (parent != NULL)
    append_json_string (out, exo_resource_get_id (EXO_RESOURCE (parent)));
  else
    g_string_append (out, "null");
  g_string_append (out, ",\"depends_on\":[");
  for (guint i = 0; deps != NULL && deps[i] != NULL; i++)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      append_json_string (out, deps[i]);
    }
  g_string_append (out, "]}");
  return g_string_free (out, FALSE);
}

static void
build_topology_group (ExoDBusExport    *self,
                      GString          *out,
                      ExoResourceGroup *group);

/* An entry keeps its object of the topology but the state, built once
 * (and again when its dependencies change): a rebuild with 10,000
 * resources copies strings. */
static void
build_topology_resource (ExoDBusExport    *self,
                         GString          *out,
                         ExoResource      *resource,
                         ExoResourceGroup *parent)
{
  ExoDBusEntry *entry = _exo_dbus_lookup_entry (self, resource);
  const char *state = exo_resource_state_to_string (exo_resource_get_state (resource));

  if (out->str[out->len - 1] == '}')
    g_string_append_c (out, ',');

  if (entry != NULL)
    {
      /* The dependency ids the refresh last saw (current within the poll). */
      if (entry->topology_head == NULL)
        entry->topology_head = build_topology_head (resource);
      if (entry->topology_tail == NULL)
        entry->topology_tail = build_topology_tail (parent, entry->deps);
      g_string_append (out, entry->topology_head);
      append_json_string (out, state);
      g_string_append (out, entry->topology_tail);
    }
  else
    {
      g_auto(GStrv) deps = NULL;
      g_autofree char *head = build_topology_head (resource);
      g_autofree char *tail = NULL;

      if (parent != NULL)
        deps = exo_resource_group_get_dependencies (parent, exo_resource_get_id (resource));
      tail = build_topology_tail (parent, deps);
      g_string_append (out, head);
      append_json_string (out, state);
      g_string_append (out, tail);
    }

  if (EXO_IS_RESOURCE_GROUP (resource))
    build_topology_group (self, out, EXO_RESOURCE_GROUP (resource));
}

static void
build_topology_group (ExoDBusExport    *self,
                      GString          *out,
                      ExoResourceGroup *group)
{
  g_autoptr(GPtrArray) members = exo_resource_group_get_members (group);

  for (guint i = 0; i < members->len; i++)
    build_topology_resource (self, out, g_ptr_array_index (members, i), group);
}

/* {"node_id": …, "resources": [{"id", "type", "state", "group",
 * "depends_on": [ids]}, …]}, compact, as json-glib generated it. */
static char *
build_topology (ExoDBusExport *self)
{
  GString *out = g_string_sized_new (128 + 128 * g_hash_table_size (self->entries));
  gsize length;

  g_string_append (out, "{\"node_id\":");
  append_json_string (out, self->node_id);
  g_string_append (out, ",\"resources\":[");
  build_topology_resource (self, out, EXO_RESOURCE (self->root), NULL);
  g_string_append (out, "]}");

  /* json-glib leaves U+001F unescaped. */
  length = out->len;
  return exo_json_fix_generated (g_string_free (out, FALSE), &length);
}

static gboolean
topology_due_cb (gpointer data)
{
  ExoDBusExport *self = data;

  g_clear_pointer (&self->topology_source, g_source_unref);
  _exo_dbus_schedule_refresh (self);
  return G_SOURCE_REMOVE;
}

static void
refresh_topology (ExoDBusExport *self)
{
  gint64 now, next;

  if (self->topology != NULL)
    {
      self->topology_dirty = FALSE;
      return;
    }
  if (!self->topology_dirty || self->topology_source != NULL)
    return;

  /* At most every TOPOLOGY_INTERVAL_MS, or a node starting 1,000
   * resources rebuilds it in every iteration. */
  now = g_get_monotonic_time ();
  next = self->topology_built_at + TOPOLOGY_INTERVAL_MS * 1000;
  if (now >= next || self->topology_built_at == 0)
    {
      g_autofree char *json = build_topology (self);

      exo_dbus_node1_set_topology (self->node, json);
      self->topology_built_at = now;
      self->topology_dirty = FALSE;
    }
  else
    {
      self->topology_source = g_timeout_source_new ((guint) ((next - now) / 1000) + 1);
      g_source_set_callback (self->topology_source, topology_due_cb, self, NULL);
      g_source_set_static_name (self->topology_source, "[exo] ExoDBusExport topology");
      g_source_attach (self->topology_source, self->context);
    }
}

/* --- refreshing ----------------------------------------------------------- */

static void
refresh_entry (ExoDBusEntry *entry)
{
  ExoDBusExport *self = entry->self;
  guint what = entry->dirty;

  entry->queued = FALSE;
  entry->dirty = 0;
  if (what & DIRTY_STATS)
    sync_stats (entry);
  if ((what & DIRTY_METRICS) && has_metrics (entry))
    sync_metrics (entry);
  if (what & (DIRTY_DEPS | DIRTY_POLL))
    {
      /* A dependency added to a member reorders its group's Members and
       * changes the topology; nothing else says so.  The group is
       * refreshed in this refresh too, before the emission. */
      gboolean polled = !(what & DIRTY_DEPS);

      if (sync_depends_on (entry, polled) && polled && entry->parent != NULL)
        {
          ExoDBusEntry *parent = _exo_dbus_lookup_entry (self, EXO_RESOURCE (entry->parent));

          if (parent != NULL)
            _exo_dbus_mark_dirty (parent, DIRTY_MEMBERS);
          _exo_dbus_mark_topology_dirty (self);
        }
    }
  if ((what & DIRTY_MEMBERS) && (entry->ifaces & (1u << IFACE_GROUP)))
    _exo_dbus_entry_sync_members (entry);
}

static gboolean
refresh_cb (gpointer data)
{
  ExoDBusExport *self = data;

  /* refresh_source stays set until the end: what the entries below mark
   * is done in this loop, not in another refresh. */
  while (self->dirty_entries->len > 0)
    {
      g_autoptr(GPtrArray) dirty = g_steal_pointer (&self->dirty_entries);

      self->dirty_entries = g_ptr_array_new ();
      for (guint i = 0; i < dirty->len; i++)
        refresh_entry (g_ptr_array_index (dirty, i));
    }

  refresh_topology (self);
  _exo_dbus_emit_properties_changed (self);

  g_clear_pointer (&self->refresh_source, g_source_unref);
  return G_SOURCE_REMOVE;
}

/* Runs every pending refresh now (after building, so that the first
 * GetManagedObjects is complete). */
void
_exo_dbus_flush_refresh (ExoDBusExport *self)
{
  if (self->refresh_source != NULL)
    {
      g_source_destroy (self->refresh_source);
      refresh_cb (self);
    }
}

/* Metrics and pool counters change without a signal, and so do DependsOn
 * and Members after exo_resource_group_add_dependency(): look once a second.
 * Values that did not change emit nothing.  Members and the topology (the
 * costly ones) are only recomputed when some dependency list changed: their
 * other inputs (states, membership) come with signals. */
static gboolean
poll_cb (gpointer data)
{
  ExoDBusExport *self = data;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    _exo_dbus_mark_dirty (value, DIRTY_METRICS | DIRTY_POLL);

  return G_SOURCE_CONTINUE;
}

GSource *
_exo_dbus_poll_source_new (ExoDBusExport *self)
{
  GSource *source = g_timeout_source_new_seconds (POLL_INTERVAL_S);

  g_source_set_callback (source, poll_cb, self, NULL);
  g_source_set_static_name (source, "[exo] ExoDBusExport poll");
  return source;
}
