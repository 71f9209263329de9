/* exoctl-status.c: the commands that show resources for people: `list`
 * (a table of all), `status ID...` (every property and metric of each;
 * exit 3 unless all are ready), `health` (the unhealthy ones; exit 1 when
 * there is one).
 *
 * Rules: each command reads one Snapshot (exoctl-snapshot.c) and prints
 * it; no main loop, single thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exoctl-private.h"

#include <stdio.h>

int
cmd_list (Ctl *ctl)
{
  g_autoptr(Snapshot) snap = NULL;
  g_autoptr(Table) table = NULL;
  int rc;

  if ((rc = fetch_snapshot (ctl, &snap)) != EXIT_OK)
    return rc;

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = json_node_new (JSON_NODE_ARRAY);
      JsonArray *array = json_array_new ();

      for (guint i = 0; i < snap->resources->len; i++)
        json_array_add_element (array, resource_to_json (snap, g_ptr_array_index (snap->resources, i)));
      json_node_take_array (root, array);
      print_json (root, TRUE);
      return EXIT_OK;
    }

  table = table_new (6, "ID", "TYPE", "STATE", "HEALTHY", "ERRORS", "LAST ERROR");
  for (guint i = 0; i < snap->resources->len; i++)
    {
      Resource *r = g_ptr_array_index (snap->resources, i);
      g_autofree char *errors = g_strdup_printf ("%u", r->error_count);

      g_autofree char *state = NULL;

      /* A give-up shows where one looks first, like systemctl's "failed
       * (Result: start-limit-hit)". */
      if (!g_str_equal (r->result, "success") && g_str_equal (r->state, "error"))
        state = g_strdup_printf ("%s (%s)", r->state, r->result);
      else
        state = g_strdup (r->state);
      table_add (table, r->id, NULL);
      table_add (table, r->type, NULL);
      table_add (table, state, state_color (ctl, r->state));
      table_add (table, r->healthy ? "yes" : "no",
                 ctl->color ? (r->healthy ? COLOR_GREEN : COLOR_RED) : NULL);
      table_add (table, errors, NULL);
      table_add (table, r->last_error != NULL && r->last_error[0] != '\0' ? r->last_error : "-",
                 NULL);
    }
  table_print (ctl, table);
  if (!ctl->no_legend)
    printf ("\n%u resource%s listed.\n", snap->resources->len,
            snap->resources->len == 1 ? "" : "s");
  return EXIT_OK;
}

static char *
join_ids (Snapshot *snap, char **paths)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; paths != NULL && paths[i] != NULL; i++)
    {
      g_autofree char *id = snapshot_id (snap, paths[i]);
      g_autofree char *shown = clean (id);

      if (i > 0)
        g_string_append (s, ", ");
      g_string_append (s, shown);
    }
  if (s->len == 0)
    g_string_append (s, "-");
  return g_string_free (s, FALSE);
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

/* The `status` block of one resource. */
static void
status_print (Ctl *ctl, Snapshot *snap, Resource *r)
{
  g_autoptr(GArray) fields = NULL;
  g_autofree char *title_id = NULL;
  g_autofree char *title_name = NULL;

  title_id = clean (r->id);
  title_name = clean (r->display_name);
  print_colored (ctl, state_color (ctl, r->state), glyph (ctl, "●", "*"));
  printf (" %s", title_id);
  if (title_name[0] != '\0' && !g_str_equal (title_name, title_id))
    printf (" %s %s", glyph (ctl, "—", "-"), title_name);
  putchar ('\n');

  fields = g_array_new (FALSE, TRUE, sizeof (Field));
  g_array_set_clear_func (fields, field_clear);
  fields_add (fields, "Type", clean (r->type), NULL);
  fields_add (fields, "Display name", clean (r->display_name), NULL);
  fields_add (fields, "State", clean (r->state), state_color (ctl, r->state));
  fields_add (fields, "Healthy", g_strdup (r->healthy ? "yes" : "no"),
              ctl->color ? (r->healthy ? COLOR_GREEN : COLOR_RED) : NULL);
  if (g_str_equal (r->result, "start-limit-hit"))
    fields_add (fields, "Result",
                g_strdup ("start-limit-hit (given up: restart limit hit; "
                          "`exoctl restart` starts it again)"),
                ctl->color ? COLOR_RED : NULL);
  else
    fields_add (fields, "Result", clean (r->result),
                !g_str_equal (r->result, "success") && ctl->color ? COLOR_RED : NULL);
  fields_add (fields, "Last error",
              r->last_error != NULL && r->last_error[0] != '\0' ? clean (r->last_error) : g_strdup ("-"),
              r->last_error != NULL && r->last_error[0] != '\0' && ctl->color ? COLOR_RED : NULL);
  fields_add (fields, "Errors", g_strdup_printf ("%u", r->error_count), NULL);
  fields_add (fields, "Attempts", g_strdup_printf ("%u", r->attempts), NULL);
  fields_add (fields, "State changed", format_time (r->state_changed_at, TRUE), NULL);
  fields_add (fields, "Initialized", format_time (r->initialized_at, TRUE), NULL);
  fields_add (fields, "Depends on", join_ids (snap, r->depends_on), NULL);
  if (r->is_group)
    fields_add (fields, "Members", join_ids (snap, r->members), NULL);
  if (r->pool != NULL)
    {
      fields_add (fields, "Pool",
                  g_strdup_printf ("size %" G_GUINT64_FORMAT " (min %" G_GUINT64_FORMAT
                                   ", max %" G_GUINT64_FORMAT "), idle %" G_GUINT64_FORMAT
                                   ", in use %" G_GUINT64_FORMAT ", waiting %" G_GUINT64_FORMAT,
                                   lookup_uint (r->pool, "Size"), lookup_uint (r->pool, "MinSize"),
                                   lookup_uint (r->pool, "MaxSize"), lookup_uint (r->pool, "Idle"),
                                   lookup_uint (r->pool, "InUse"), lookup_uint (r->pool, "Waiting")),
                  NULL);
      fields_add (fields, "Pool totals",
                  g_strdup_printf ("acquired %" G_GUINT64_FORMAT ", timeouts %" G_GUINT64_FORMAT
                                   ", created %" G_GUINT64_FORMAT ", destroyed %" G_GUINT64_FORMAT,
                                   lookup_uint (r->pool, "Acquired"), lookup_uint (r->pool, "Timeouts"),
                                   lookup_uint (r->pool, "Created"), lookup_uint (r->pool, "Destroyed")),
                  NULL);
    }

  {
    GString *metrics = g_string_new (NULL);
    GVariantIter iter;
    const char *key;
    GVariant *value;
    g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);

    g_variant_iter_init (&iter, r->metrics);
    while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
      {
        g_autofree char *shown_key = clean (key);
        g_autofree char *shown = format_value (value);

        g_ptr_array_add (lines, g_strdup_printf ("%s: %s", shown_key, shown));
        g_variant_unref (value);
      }
    g_ptr_array_sort (lines, compare_strings);
    for (guint i = 0; i < lines->len; i++)
      {
        if (i > 0)
          g_string_append_c (metrics, '\n');
        g_string_append (metrics, g_ptr_array_index (lines, i));
      }
    if (metrics->len == 0)
      g_string_append (metrics, "-");
    fields_add (fields, "Metrics", g_string_free (metrics, FALSE), NULL);
  }
  fields_add (fields, "Object path", g_strdup (r->path), NULL);

  fields_print (ctl, fields);
}

/* Like `systemctl status`: a block per id (a blank line between), or with
 * --json one object per id, one after the other; exit 0 when every one is
 * ready, 3 when one is not, 4 when one does not exist. */
int
cmd_status (Ctl *ctl, char **ids)
{
  g_autoptr(Snapshot) snap = NULL;
  gboolean first = TRUE;
  int rc;

  if ((rc = fetch_snapshot (ctl, &snap)) != EXIT_OK)
    return rc;

  for (guint i = 0; ids[i] != NULL; i++)
    {
      Resource *r = snapshot_lookup (snap, ids[i], &rc);

      if (r == NULL)
        continue;
      if (!g_str_equal (r->state, "ready"))
        rc = MAX (rc, EXIT_NOT_ACTIVE);
      if (ctl->json)
        {
          g_autoptr(JsonNode) node = resource_to_json (snap, r);
          print_json (node, TRUE);
          continue;
        }
      if (!first)
        putchar ('\n');
      first = FALSE;
      status_print (ctl, snap, r);
    }
  return rc;
}

int
cmd_health (Ctl *ctl)
{
  g_autoptr(Snapshot) snap = NULL;
  g_autoptr(GPtrArray) unhealthy = g_ptr_array_new ();
  int rc;

  if ((rc = fetch_snapshot (ctl, &snap)) != EXIT_OK)
    return rc;

  for (guint i = 0; i < snap->resources->len; i++)
    {
      Resource *r = g_ptr_array_index (snap->resources, i);
      if (!r->healthy)
        g_ptr_array_add (unhealthy, r);
    }

  if (ctl->json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "healthy");
      json_builder_add_boolean_value (b, unhealthy->len == 0);
      json_builder_set_member_name (b, "unhealthy");
      json_builder_begin_array (b);
      for (guint i = 0; i < unhealthy->len; i++)
        json_builder_add_string_value (b, ((Resource *) g_ptr_array_index (unhealthy, i))->id);
      json_builder_end_array (b);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      print_json (root, TRUE);
    }
  else if (unhealthy->len == 0)
    {
      print_colored (ctl, COLOR_GREEN, "healthy");
      printf (": all %u resource%s ready.\n", snap->resources->len,
              snap->resources->len == 1 ? " is" : "s are");
    }
  else
    {
      g_autoptr(Table) table = table_new (3, "ID", "STATE", "LAST ERROR");

      for (guint i = 0; i < unhealthy->len; i++)
        {
          Resource *r = g_ptr_array_index (unhealthy, i);

          table_add (table, r->id, NULL);
          table_add (table, r->state, state_color (ctl, r->state));
          table_add (table, r->last_error != NULL && r->last_error[0] != '\0' ? r->last_error : "-",
                     NULL);
        }
      table_print (ctl, table);
      putchar ('\n');
      print_colored (ctl, COLOR_RED, "unhealthy");
      printf (": %u of %u resource%s not ready.\n", unhealthy->len, snap->resources->len,
              snap->resources->len == 1 ? "" : "s");
    }

  return unhealthy->len == 0 ? EXIT_OK : EXIT_FAILED;
}
