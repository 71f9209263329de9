/* exoctl-node.c: the commands about the node itself: `plugins` (the
 * plugins it loaded) and `node` (id, version, state, bus and topology).
 *
 * Rules: each reads one Properties.GetAll of org.exo.Node1 (fetch_node());
 * no main loop, single thread.  The topology is JSON from the node; what
 * does not parse is shown as a string rather than dropped.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exoctl-private.h"

#include <stdio.h>

/* ---------------------------------------------------------------- plugins */

int
cmd_plugins (Ctl *ctl)
{
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GVariant) plugins = NULL;
  GVariantIter iter;
  const char *name, *version, *path, *description;
  int rc;

  if ((rc = fetch_node (ctl, &props)) != EXIT_OK)
    return rc;
  plugins = g_variant_lookup_value (props, "Plugins", G_VARIANT_TYPE ("a(ssss)"));
  if (plugins == NULL)
    plugins = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("(ssss)"), NULL, 0));

  if (ctl->json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_array (b);
      g_variant_iter_init (&iter, plugins);
      while (g_variant_iter_next (&iter, "(&s&s&s&s)", &name, &version, &path, &description))
        {
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "name");
          json_builder_add_string_value (b, name);
          json_builder_set_member_name (b, "version");
          json_builder_add_string_value (b, version);
          json_builder_set_member_name (b, "path");
          json_builder_add_string_value (b, path);
          json_builder_set_member_name (b, "description");
          json_builder_add_string_value (b, description);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      root = json_builder_get_root (b);
      print_json (root, TRUE);
      return EXIT_OK;
    }

  {
    g_autoptr(Table) table = table_new (4, "NAME", "VERSION", "PATH", "DESCRIPTION");
    gsize n = g_variant_n_children (plugins);

    g_variant_iter_init (&iter, plugins);
    while (g_variant_iter_next (&iter, "(&s&s&s&s)", &name, &version, &path, &description))
      {
        table_add (table, name, NULL);
        table_add (table, version, NULL);
        table_add (table, path, NULL);
        table_add (table, description, NULL);
      }
    table_print (ctl, table);
    printf ("\n%" G_GSIZE_FORMAT " plugin%s loaded.\n", n, n == 1 ? "" : "s");
  }
  return EXIT_OK;
}

/* ------------------------------------------------------------------- node */

static JsonNode *
parse_topology (const char *topology)
{
  g_autoptr(JsonParser) parser = NULL;
  JsonNode *root;

  if (topology == NULL || topology[0] == '\0')
    return json_node_new (JSON_NODE_NULL);
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, topology, -1, NULL) ||
      (root = json_parser_get_root (parser)) == NULL)
    {
      /* Not JSON: pass it on as a string rather than lose it. */
      JsonNode *node = json_node_new (JSON_NODE_VALUE);
      json_node_set_string (node, topology);
      return node;
    }
  return json_node_copy (root);
}

int
cmd_node (Ctl *ctl)
{
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GVariant) plugins = NULL;
  g_autofree char *node_id = NULL;
  g_autofree char *version = NULL;
  g_autofree char *state = NULL;
  g_autofree char *topology = NULL;
  GVariantIter iter;
  const char *name, *pversion, *path, *description;
  int rc;

  if ((rc = fetch_node (ctl, &props)) != EXIT_OK)
    return rc;
  node_id = lookup_string (props, "NodeId");
  version = lookup_string (props, "Version");
  state = lookup_string (props, "State");
  topology = lookup_string (props, "Topology");
  plugins = g_variant_lookup_value (props, "Plugins", G_VARIANT_TYPE ("a(ssss)"));
  if (plugins == NULL)
    plugins = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("(ssss)"), NULL, 0));

  if (ctl->json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "node_id");
      json_builder_add_string_value (b, node_id != NULL ? node_id : "");
      json_builder_set_member_name (b, "version");
      json_builder_add_string_value (b, version != NULL ? version : "");
      json_builder_set_member_name (b, "state");
      json_builder_add_string_value (b, state != NULL ? state : "");
      json_builder_set_member_name (b, "plugins");
      json_builder_begin_array (b);
      g_variant_iter_init (&iter, plugins);
      while (g_variant_iter_next (&iter, "(&s&s&s&s)", &name, &pversion, &path, &description))
        {
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "name");
          json_builder_add_string_value (b, name);
          json_builder_set_member_name (b, "version");
          json_builder_add_string_value (b, pversion);
          json_builder_set_member_name (b, "path");
          json_builder_add_string_value (b, path);
          json_builder_set_member_name (b, "description");
          json_builder_add_string_value (b, description);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_set_member_name (b, "topology");
      json_builder_add_value (b, parse_topology (topology));
      json_builder_set_member_name (b, "bus_name");
      json_builder_add_string_value (b, ctl->bus_name);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      print_json (root, TRUE);
      return EXIT_OK;
    }

  {
    g_autoptr(GArray) fields = g_array_new (FALSE, TRUE, sizeof (Field));
    GString *names = g_string_new (NULL);
    char *pretty_topology;

    g_array_set_clear_func (fields, field_clear);
    fields_add (fields, "Node ID", clean (node_id), NULL);
    fields_add (fields, "Version", clean (version), NULL);
    fields_add (fields, "State", clean (state), state_color (ctl, state));
    fields_add (fields, "Bus", g_strdup_printf ("%s on the %s", ctl->bus_name, bus_label (ctl)), NULL);

    g_variant_iter_init (&iter, plugins);
    while (g_variant_iter_next (&iter, "(&s&s&s&s)", &name, &pversion, &path, &description))
      {
        g_autofree char *line = g_strdup_printf ("%s %s", name, pversion);
        g_autofree char *shown = clean (line);

        if (names->len > 0)
          g_string_append_c (names, '\n');
        g_string_append (names, shown);
      }
    if (names->len == 0)
      g_string_append (names, "-");
    fields_add (fields, "Plugins", g_string_free (names, FALSE), NULL);

    if (topology == NULL || topology[0] == '\0')
      pretty_topology = g_strdup ("-");
    else
      {
        g_autoptr(JsonNode) parsed = parse_topology (topology);
        g_autoptr(JsonGenerator) gen = json_generator_new ();
        g_autofree char *text = NULL;

        json_generator_set_pretty (gen, TRUE);
        json_generator_set_indent (gen, 2);
        json_generator_set_root (gen, parsed);
        text = json_generator_to_data (gen, NULL);
        /* keep newlines; clean each line */
        {
          g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
          for (guint i = 0; lines[i] != NULL; i++)
            {
              char *c = clean (lines[i]);
              g_free (lines[i]);
              lines[i] = c;
            }
          pretty_topology = g_strjoinv ("\n", lines);
        }
      }
    fields_add (fields, "Topology", pretty_topology, NULL);
    fields_print (ctl, fields);
  }
  return EXIT_OK;
}
