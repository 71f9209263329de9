/* exoctl-snapshot.c: what exoctl reads from the node and how it fails.
 *
 * fetch_snapshot() is the one GetManagedObjects call on /org/exo/Node1,
 * parsed into a Snapshot of Resources (sorted by id; object paths of
 * unknown objects are shown as the id they stand for); fetch_node() is the
 * one Properties.GetAll of org.exo.Node1.  snapshot_lookup() finds the
 * ids a command was given, reporting those it lacks.  resource_to_json() is a
 * Resource as `--json` prints it.  report_dbus_error() and not_running()
 * turn D-Bus errors into one line on stderr and an exit status.
 *
 * Rules: blocking (sync) D-Bus calls on Ctl.connection, made from the one
 * thread; no main loop needs to run.  A Snapshot owns its Resources and is
 * read-only once made.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exoctl-private.h"

#include <string.h>

/* The pool properties, in the order of docs/design.md §4, with their JSON keys. */
const PoolProperty pool_props[10] = {
  { "MinSize",   "min_size" },
  { "MaxSize",   "max_size" },
  { "Size",      "size" },
  { "Idle",      "idle" },
  { "InUse",     "in_use" },
  { "Waiting",   "waiting" },
  { "Acquired",  "acquired" },
  { "Timeouts",  "timeouts" },
  { "Created",   "created" },
  { "Destroyed", "destroyed" },
};

/* ------------------------------------------------------------- D-Bus errors */

const char *
bus_label (Ctl *ctl)
{
  return ctl->bus_type == G_BUS_TYPE_SYSTEM ? "system bus" : "session bus";
}

int
not_running (Ctl *ctl, const char *why)
{
  if (why != NULL)
    return fail (EXIT_NOT_RUNNING, "no exo-node is running on the %s (name %s): %s",
                 bus_label (ctl), ctl->bus_name, why);
  return fail (EXIT_NOT_RUNNING, "no exo-node is running on the %s (name %s)",
               bus_label (ctl), ctl->bus_name);
}

static gboolean
error_is_not_running (const GError *error)
{
  return g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER);
}

/* Whether the node's bus name has an owner now. */
static gboolean
node_has_owner (Ctl *ctl)
{
  g_autoptr(GVariant) reply = NULL;
  gboolean owned;

  reply = g_dbus_connection_call_sync (ctl->connection, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "NameHasOwner", g_variant_new ("(s)", ctl->bus_name),
                                       G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE, -1,
                                       NULL, NULL);
  if (reply == NULL)
    return TRUE;     /* cannot tell: report the original error */
  g_variant_get (reply, "(b)", &owned);
  return owned;
}

/* Whether @error says that no node is there: no owner of its name, or the
 * node went away before it answered. */
gboolean
node_gone (Ctl *ctl, const GError *error)
{
  return error_is_not_running (error) ||
         (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY) && !node_has_owner (ctl));
}

/* Reports a D-Bus error on one line and returns the exit status for it. */
int
report_dbus_error (Ctl *ctl, GError *error, const char *what)
{
  if (node_gone (ctl, error))
    return not_running (ctl, NULL);

  g_dbus_error_strip_remote_error (error);
  if (what != NULL)
    return fail (EXIT_FAILED, "%s: %s", what, error->message);
  return fail (EXIT_FAILED, "%s", error->message);
}

/* --------------------------------------------------------------- snapshot */

void
resource_free (Resource *r)
{
  g_free (r->path);
  g_free (r->id);
  g_free (r->type);
  g_free (r->display_name);
  g_free (r->state);
  g_free (r->last_error);
  g_free (r->result);
  g_strfreev (r->depends_on);
  g_clear_pointer (&r->metrics, g_variant_unref);
  g_clear_pointer (&r->pool, g_variant_unref);
  g_strfreev (r->members);
  g_free (r);
}

void
snapshot_free (Snapshot *snap)
{
  g_clear_pointer (&snap->by_path, g_hash_table_unref);
  g_clear_pointer (&snap->resources, g_ptr_array_unref);
  g_free (snap);
}

char *
lookup_string (GVariant *props, const char *key)
{
  g_autoptr(GVariant) v = NULL;

  if (props == NULL)
    return NULL;
  v = g_variant_lookup_value (props, key, G_VARIANT_TYPE_STRING);
  return v != NULL ? g_variant_dup_string (v, NULL) : NULL;
}

guint64
lookup_uint (GVariant *props, const char *key)
{
  g_autoptr(GVariant) v = NULL;

  if (props == NULL)
    return 0;
  v = g_variant_lookup_value (props, key, NULL);
  if (v == NULL)
    return 0;
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT64))
    return g_variant_get_uint64 (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_INT32))
    return (guint64) MAX (g_variant_get_int32 (v), 0);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_INT64))
    return (guint64) MAX (g_variant_get_int64 (v), 0);
  return 0;
}

static char **
lookup_objv (GVariant *props, const char *key)
{
  g_autoptr(GVariant) v = NULL;

  if (props == NULL)
    return g_new0 (char *, 1);
  v = g_variant_lookup_value (props, key, G_VARIANT_TYPE_OBJECT_PATH_ARRAY);
  return v != NULL ? g_variant_dup_objv (v, NULL) : g_new0 (char *, 1);
}

/* The id a resource path stands for when the object itself is unknown. */
char *
id_from_path (const char *path)
{
  if (g_str_has_prefix (path, RESOURCE_PREFIX))
    {
      guint8 *id = g_dbus_unescape_object_path (path + strlen (RESOURCE_PREFIX));

      if (id != NULL)
        {
          char *valid = g_utf8_make_valid ((const char *) id, -1);
          g_free (id);
          return valid;
        }
    }
  return g_strdup (path);
}

Resource *
resource_new (const char *path, GVariant *interfaces)
{
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GVariant) healthy = NULL;
  g_autoptr(GVariant) group = NULL;
  Resource *r;

  props = g_variant_lookup_value (interfaces, IFACE_RESOURCE, G_VARIANT_TYPE_VARDICT);
  if (props == NULL)
    return NULL;

  r = g_new0 (Resource, 1);
  r->path = g_strdup (path);
  r->id = lookup_string (props, "Id");
  if (r->id == NULL || r->id[0] == '\0')
    {
      g_free (r->id);
      r->id = id_from_path (path);
    }
  r->type = lookup_string (props, "Type");
  r->display_name = lookup_string (props, "DisplayName");
  r->state = lookup_string (props, "State");
  if (r->state == NULL)
    r->state = g_strdup ("unknown");
  r->last_error = lookup_string (props, "LastError");
  r->result = lookup_string (props, "Result");
  if (r->result == NULL || r->result[0] == '\0')
    {
      g_free (r->result);
      r->result = g_strdup ("success");
    }
  healthy = g_variant_lookup_value (props, "Healthy", G_VARIANT_TYPE_BOOLEAN);
  r->healthy = healthy != NULL && g_variant_get_boolean (healthy);
  r->error_count = (guint32) lookup_uint (props, "ErrorCount");
  r->attempts = (guint32) lookup_uint (props, "Attempts");
  r->state_changed_at = lookup_uint (props, "StateChangedAt");
  r->initialized_at = lookup_uint (props, "InitializedAt");
  r->depends_on = lookup_objv (props, "DependsOn");
  r->metrics = g_variant_lookup_value (props, "Metrics", G_VARIANT_TYPE_VARDICT);
  if (r->metrics == NULL)
    r->metrics = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));

  r->pool = g_variant_lookup_value (interfaces, IFACE_POOL, G_VARIANT_TYPE_VARDICT);
  group = g_variant_lookup_value (interfaces, IFACE_GROUP, G_VARIANT_TYPE_VARDICT);
  r->is_group = group != NULL;
  if (r->is_group)
    r->members = lookup_objv (group, "Members");

  return r;
}

static int
compare_resources (gconstpointer a, gconstpointer b)
{
  const Resource *ra = *(const Resource * const *) a;
  const Resource *rb = *(const Resource * const *) b;
  int cmp = g_strcmp0 (ra->id, rb->id);

  return cmp != 0 ? cmp : g_strcmp0 (ra->path, rb->path);
}

static Snapshot *
snapshot_new (GVariant *objects)
{
  Snapshot *snap = g_new0 (Snapshot, 1);
  GVariantIter iter;
  const char *path;
  GVariant *interfaces;

  snap->resources = g_ptr_array_new_with_free_func ((GDestroyNotify) resource_free);
  snap->by_path = g_hash_table_new (g_str_hash, g_str_equal);

  g_variant_iter_init (&iter, objects);
  while (g_variant_iter_next (&iter, "{&o@a{sa{sv}}}", &path, &interfaces))
    {
      Resource *r = resource_new (path, interfaces);

      if (r != NULL)
        g_ptr_array_add (snap->resources, r);
      g_variant_unref (interfaces);
    }

  g_ptr_array_sort (snap->resources, compare_resources);
  for (guint i = 0; i < snap->resources->len; i++)
    {
      Resource *r = g_ptr_array_index (snap->resources, i);
      g_hash_table_insert (snap->by_path, r->path, r);
    }
  return snap;
}

Resource *
snapshot_find (Snapshot *snap, const char *id)
{
  for (guint i = 0; i < snap->resources->len; i++)
    {
      Resource *r = g_ptr_array_index (snap->resources, i);
      if (g_str_equal (r->id, id))
        return r;
    }
  return NULL;
}

/* snapshot_find() for a command given several ids: a missing one is
 * reported on stderr and raises *@rc to EXIT_NO_RESOURCE; the command goes
 * on with the others. */
Resource *
snapshot_lookup (Snapshot *snap, const char *id, int *rc)
{
  Resource *r = snapshot_find (snap, id);

  if (r == NULL)
    {
      g_autofree char *shown = clean (id);
      int code = fail (EXIT_NO_RESOURCE, "no resource '%s'", shown);

      *rc = MAX (*rc, code);
    }
  return r;
}

/* The id for an object path, known or not. */
char *
snapshot_id (Snapshot *snap, const char *path)
{
  Resource *r = g_hash_table_lookup (snap->by_path, path);

  return r != NULL ? g_strdup (r->id) : id_from_path (path);
}

/* The one GetManagedObjects call.  Returns an exit status. */
int
fetch_snapshot (Ctl *ctl, Snapshot **out)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) objects = NULL;

  reply = g_dbus_connection_call_sync (ctl->connection, ctl->bus_name, NODE_PATH,
                                       IFACE_OBJ_MANAGER, "GetManagedObjects", NULL,
                                       G_VARIANT_TYPE ("(a{oa{sa{sv}}})"),
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, &error);
  if (reply == NULL)
    return report_dbus_error (ctl, error, "cannot read the resources");

  objects = g_variant_get_child_value (reply, 0);
  *out = snapshot_new (objects);
  return EXIT_OK;
}

/* The one Properties.GetAll of org.exo.Node1.  Returns an exit status. */
int
fetch_node (Ctl *ctl, GVariant **out)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_sync (ctl->connection, ctl->bus_name, NODE_PATH,
                                       IFACE_PROPERTIES, "GetAll",
                                       g_variant_new ("(s)", IFACE_NODE),
                                       G_VARIANT_TYPE ("(a{sv})"),
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, &error);
  if (reply == NULL)
    return report_dbus_error (ctl, error, "cannot read the node");

  *out = g_variant_get_child_value (reply, 0);
  return EXIT_OK;
}

/* ------------------------------------------------------------------- json */

JsonNode *
paths_to_ids_json (Snapshot *snap, char **paths)
{
  JsonArray *array = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; paths != NULL && paths[i] != NULL; i++)
    {
      g_autofree char *id = snapshot_id (snap, paths[i]);
      json_array_add_string_element (array, id);
    }
  json_node_take_array (node, array);
  return node;
}

JsonNode *
resource_to_json (Snapshot *snap, Resource *r)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, r->id);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, r->type != NULL ? r->type : "");
  json_builder_set_member_name (b, "display_name");
  json_builder_add_string_value (b, r->display_name != NULL ? r->display_name : "");
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, r->state);
  json_builder_set_member_name (b, "healthy");
  json_builder_add_boolean_value (b, r->healthy);
  json_builder_set_member_name (b, "last_error");
  json_builder_add_string_value (b, r->last_error != NULL ? r->last_error : "");
  json_builder_set_member_name (b, "result");
  json_builder_add_string_value (b, r->result);
  json_builder_set_member_name (b, "error_count");
  json_builder_add_int_value (b, r->error_count);
  json_builder_set_member_name (b, "attempts");
  json_builder_add_int_value (b, r->attempts);
  json_builder_set_member_name (b, "state_changed_at");
  json_builder_add_int_value (b, (gint64) r->state_changed_at);
  json_builder_set_member_name (b, "initialized_at");
  json_builder_add_int_value (b, (gint64) r->initialized_at);
  json_builder_set_member_name (b, "depends_on");
  json_builder_add_value (b, paths_to_ids_json (snap, r->depends_on));
  json_builder_set_member_name (b, "metrics");
  json_builder_add_value (b, json_gvariant_serialize (r->metrics));
  if (r->pool != NULL)
    {
      json_builder_set_member_name (b, "pool");
      json_builder_begin_object (b);
      for (gsize i = 0; i < G_N_ELEMENTS (pool_props); i++)
        {
          json_builder_set_member_name (b, pool_props[i].json_key);
          json_builder_add_int_value (b, (gint64) lookup_uint (r->pool, pool_props[i].dbus_name));
        }
      json_builder_end_object (b);
    }
  if (r->is_group)
    {
      json_builder_set_member_name (b, "members");
      json_builder_add_value (b, paths_to_ids_json (snap, r->members));
    }
  json_builder_set_member_name (b, "object_path");
  json_builder_add_string_value (b, r->path);
  json_builder_end_object (b);

  return json_builder_get_root (b);
}
