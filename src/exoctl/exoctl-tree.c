/* exoctl-tree.c: `tree`, groups and dependencies drawn as a tree (and
 * nested by membership with --json).
 *
 * A resource appears under the group it is a member of and under what
 * depends on it; cycles are shown once and marked.
 *
 * Rules: reads one Snapshot (exoctl-snapshot.c); no main loop, single
 * thread.  The recursion is bounded by the snapshot (a path is never
 * entered twice on one branch).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exoctl-private.h"

#include <stdio.h>

/* The children of @r in the people's tree: for a group, those members no
 * other member depends on (the rest appear under them); then what @r
 * depends on. */
static GPtrArray *
tree_children (Snapshot *snap, Resource *r)
{
  GPtrArray *children = g_ptr_array_new ();     /* paths, borrowed from @snap */

  if (r->is_group && r->members != NULL)
    {
      g_autoptr(GHashTable) needed = g_hash_table_new (g_str_hash, g_str_equal);

      for (guint i = 0; r->members[i] != NULL; i++)
        {
          Resource *m = g_hash_table_lookup (snap->by_path, r->members[i]);
          if (m == NULL)
            continue;
          for (guint d = 0; m->depends_on[d] != NULL; d++)
            g_hash_table_add (needed, m->depends_on[d]);
        }
      for (guint i = 0; r->members[i] != NULL; i++)
        if (!g_hash_table_contains (needed, r->members[i]))
          g_ptr_array_add (children, r->members[i]);
      if (children->len == 0)            /* a cycle: show every member */
        for (guint i = 0; r->members[i] != NULL; i++)
          g_ptr_array_add (children, r->members[i]);
    }
  for (guint d = 0; r->depends_on != NULL && r->depends_on[d] != NULL; d++)
    g_ptr_array_add (children, r->depends_on[d]);
  return children;
}

static void
tree_print (Ctl *ctl, Snapshot *snap, const char *path, GString *prefix,
            gboolean is_top, gboolean is_last, GHashTable *on_path)
{
  Resource *r = g_hash_table_lookup (snap->by_path, path);
  g_autofree char *id = snapshot_id (snap, path);
  g_autofree char *shown_id = clean (id);
  g_autoptr(GPtrArray) children = NULL;
  gsize prefix_len = prefix->len;

  fputs (prefix->str, stdout);
  if (!is_top)
    fputs (is_last ? glyph (ctl, "└─", "`-") : glyph (ctl, "├─", "|-"), stdout);
  print_colored (ctl, state_color (ctl, r != NULL ? r->state : NULL), glyph (ctl, "●", "*"));
  printf (" %s", shown_id);

  if (r == NULL)
    {
      fputs (" (not exported)\n", stdout);
      return;
    }
  {
    g_autofree char *type = clean (r->type);
    g_autofree char *state = clean (r->state);

    printf (" (%s) ", type);
    print_colored (ctl, state_color (ctl, r->state), state);
  }
  if (g_hash_table_contains (on_path, path))
    {
      fputs (" (cycle)\n", stdout);
      return;
    }
  putchar ('\n');

  g_hash_table_add (on_path, (gpointer) path);
  if (!is_top)
    g_string_append (prefix, is_last ? "  " : glyph (ctl, "│ ", "| "));
  children = tree_children (snap, r);
  for (guint i = 0; i < children->len; i++)
    tree_print (ctl, snap, g_ptr_array_index (children, i), prefix, FALSE,
                i + 1 == children->len, on_path);
  g_string_truncate (prefix, prefix_len);
  g_hash_table_remove (on_path, path);
}

/* Roots: resources that are no group's member; among those, the ones no
 * other root depends on. */
static GPtrArray *
tree_roots (Snapshot *snap)
{
  g_autoptr(GHashTable) is_member = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) needed = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) tops = g_ptr_array_new ();
  GPtrArray *roots = g_ptr_array_new ();

  for (guint i = 0; i < snap->resources->len; i++)
    {
      Resource *r = g_ptr_array_index (snap->resources, i);
      for (guint m = 0; r->members != NULL && r->members[m] != NULL; m++)
        if (!g_str_equal (r->members[m], r->path))
          g_hash_table_add (is_member, r->members[m]);
    }
  for (guint i = 0; i < snap->resources->len; i++)
    {
      Resource *r = g_ptr_array_index (snap->resources, i);
      if (!g_hash_table_contains (is_member, r->path))
        {
          g_ptr_array_add (tops, r);
          for (guint d = 0; r->depends_on[d] != NULL; d++)
            g_hash_table_add (needed, r->depends_on[d]);
        }
    }
  for (guint i = 0; i < tops->len; i++)
    {
      Resource *r = g_ptr_array_index (tops, i);
      if (!g_hash_table_contains (needed, r->path))
        g_ptr_array_add (roots, r);
    }
  if (roots->len == 0)
    for (guint i = 0; i < tops->len; i++)
      g_ptr_array_add (roots, g_ptr_array_index (tops, i));
  return roots;
}

static JsonNode *
tree_json (Snapshot *snap, Resource *r, GHashTable *on_path)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, r->id);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, r->type != NULL ? r->type : "");
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, r->state);
  json_builder_set_member_name (b, "healthy");
  json_builder_add_boolean_value (b, r->healthy);
  json_builder_set_member_name (b, "depends_on");
  json_builder_add_value (b, paths_to_ids_json (snap, r->depends_on));
  if (r->is_group)
    {
      g_hash_table_add (on_path, r->path);
      json_builder_set_member_name (b, "members");
      json_builder_begin_array (b);
      for (guint i = 0; r->members[i] != NULL; i++)
        {
          Resource *m = g_hash_table_lookup (snap->by_path, r->members[i]);

          if (m != NULL && !g_hash_table_contains (on_path, m->path))
            json_builder_add_value (b, tree_json (snap, m, on_path));
        }
      json_builder_end_array (b);
      g_hash_table_remove (on_path, r->path);
    }
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

int
cmd_tree (Ctl *ctl)
{
  g_autoptr(Snapshot) snap = NULL;
  g_autoptr(GPtrArray) roots = NULL;
  g_autoptr(GHashTable) on_path = g_hash_table_new (g_str_hash, g_str_equal);
  int rc;

  if ((rc = fetch_snapshot (ctl, &snap)) != EXIT_OK)
    return rc;
  roots = tree_roots (snap);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = json_node_new (JSON_NODE_ARRAY);
      JsonArray *array = json_array_new ();

      /* Nested by membership; dependencies as ids. */
      for (guint i = 0; i < snap->resources->len; i++)
        {
          Resource *r = g_ptr_array_index (snap->resources, i);
          gboolean member = FALSE;

          for (guint j = 0; j < snap->resources->len && !member; j++)
            {
              Resource *g = g_ptr_array_index (snap->resources, j);
              if (g != r && g->members != NULL && g_strv_contains ((const char * const *) g->members, r->path))
                member = TRUE;
            }
          if (!member)
            json_array_add_element (array, tree_json (snap, r, on_path));
        }
      json_node_take_array (root, array);
      print_json (root, TRUE);
      return EXIT_OK;
    }

  for (guint i = 0; i < roots->len; i++)
    {
      g_autoptr(GString) prefix = g_string_new (NULL);
      Resource *r = g_ptr_array_index (roots, i);

      tree_print (ctl, snap, r->path, prefix, TRUE, TRUE, on_path);
    }
  return EXIT_OK;
}
