/* exoctl-show.c: the commands for scripts, as systemctl has them:
 * `show [ID...]` (every property as Key=Value; the node's without an id),
 * `is-active ID...` (exit 0 when all are ready, 3 otherwise) and
 * `is-failed ID...` (exit 0 when one is in error, 1 otherwise).
 *
 * show's keys are the D-Bus property names (org.exo.Resource1), then
 * Members (groups), Pool.NAME (org.exo.ResourcePool1), Metrics.KEY (sorted)
 * and ObjectPath; values are one line each (clean()), booleans yes/no,
 * times microseconds since the epoch (0: never), lists of ids separated by
 * spaces.  -p selects by name (Metrics or Pool select all of theirs),
 * --value drops the "Key=".  docs/exoctl.md lists them.
 *
 * Rules: each command reads one Snapshot (or, show without an id, one
 * GetAll of org.exo.Node1); no main loop, single thread.  A missing id is
 * reported on stderr and the others still go; exit statuses as
 * exoctl-private.h says.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exoctl-private.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------- show */

/* Whether -p asked for @key ("Metrics.x" is asked for by "Metrics" too). */
static gboolean
wanted (Ctl *ctl, const char *key)
{
  const char *dot;

  if (ctl->properties == NULL || g_hash_table_contains (ctl->properties, key))
    return TRUE;
  dot = strchr (key, '.');
  if (dot != NULL)
    {
      g_autofree char *group = g_strndup (key, (gsize) (dot - key));
      return g_hash_table_contains (ctl->properties, group);
    }
  return FALSE;
}

/* Prints "KEY=VALUE" (or VALUE with --value); takes @value, which must be
 * clean (one line, no control characters). */
static void
show_line (Ctl *ctl, const char *key, char *value)
{
  if (wanted (ctl, key))
    {
      if (ctl->value_only)
        printf ("%s\n", value);
      else
        printf ("%s=%s\n", key, value);
    }
  g_free (value);
}

static char *
ids_line (Snapshot *snap, char **paths)
{
  g_autoptr(GString) s = g_string_new (NULL);

  for (guint i = 0; paths != NULL && paths[i] != NULL; i++)
    {
      g_autofree char *id = snapshot_id (snap, paths[i]);
      g_autofree char *shown = clean (id);

      if (i > 0)
        g_string_append_c (s, ' ');
      g_string_append (s, shown);
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static int
compare_keys (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

static void
show_resource (Ctl *ctl, Snapshot *snap, Resource *r)
{
  g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  GVariantIter iter;
  const char *key;

  show_line (ctl, "Id", clean (r->id));
  show_line (ctl, "Type", clean (r->type));
  show_line (ctl, "DisplayName", clean (r->display_name));
  show_line (ctl, "State", clean (r->state));
  show_line (ctl, "Healthy", g_strdup (r->healthy ? "yes" : "no"));
  show_line (ctl, "Result", clean (r->result));
  show_line (ctl, "LastError", clean (r->last_error));
  show_line (ctl, "ErrorCount", g_strdup_printf ("%u", r->error_count));
  show_line (ctl, "Attempts", g_strdup_printf ("%u", r->attempts));
  show_line (ctl, "StateChangedAt", g_strdup_printf ("%" G_GUINT64_FORMAT, r->state_changed_at));
  show_line (ctl, "InitializedAt", g_strdup_printf ("%" G_GUINT64_FORMAT, r->initialized_at));
  show_line (ctl, "DependsOn", ids_line (snap, r->depends_on));
  if (r->is_group)
    show_line (ctl, "Members", ids_line (snap, r->members));
  for (gsize i = 0; r->pool != NULL && i < G_N_ELEMENTS (pool_props); i++)
    {
      g_autofree char *name = g_strconcat ("Pool.", pool_props[i].dbus_name, NULL);

      show_line (ctl, name, g_strdup_printf ("%" G_GUINT64_FORMAT,
                                             lookup_uint (r->pool, pool_props[i].dbus_name)));
    }

  /* Metrics, sorted by key; a key is made safe for "Key=Value". */
  g_variant_iter_init (&iter, r->metrics);
  while (g_variant_iter_next (&iter, "{&sv}", &key, NULL))
    g_ptr_array_add (keys, g_strdup (key));
  g_ptr_array_sort (keys, compare_keys);
  for (guint i = 0; i < keys->len; i++)
    {
      const char *k = g_ptr_array_index (keys, i);
      g_autoptr(GVariant) value = g_variant_lookup_value (r->metrics, k, NULL);
      g_autofree char *shown_key = clean (k);
      g_autofree char *name = NULL;

      if (value == NULL)
        continue;
      g_strdelimit (shown_key, "=", '_');
      name = g_strconcat ("Metrics.", shown_key, NULL);
      show_line (ctl, name, format_value (value));
    }

  show_line (ctl, "ObjectPath", g_strdup (r->path));
}

/* `show` without an id: the node's properties. */
static int
show_node (Ctl *ctl)
{
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GVariant) plugins = NULL;
  g_autoptr(GString) names = g_string_new (NULL);
  int rc;

  if ((rc = fetch_node (ctl, &props)) != EXIT_OK)
    return rc;

  plugins = g_variant_lookup_value (props, "Plugins", G_VARIANT_TYPE ("a(ssss)"));
  if (plugins != NULL)
    {
      GVariantIter iter;
      const char *name;

      g_variant_iter_init (&iter, plugins);
      while (g_variant_iter_next (&iter, "(&s&s&s&s)", &name, NULL, NULL, NULL))
        {
          g_autofree char *shown = clean (name);

          if (names->len > 0)
            g_string_append_c (names, ' ');
          g_string_append (names, shown);
        }
    }

  {
    const char *keys[] = { "NodeId", "Version", "State" };

    for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
      {
        g_autofree char *value = lookup_string (props, keys[i]);
        show_line (ctl, keys[i], clean (value));
      }
  }
  show_line (ctl, "BusName", g_strdup (ctl->bus_name));
  show_line (ctl, "Plugins", g_string_free (g_steal_pointer (&names), FALSE));
  {
    g_autofree char *topology = lookup_string (props, "Topology");
    show_line (ctl, "Topology", clean (topology));
  }
  return EXIT_OK;
}

int
cmd_show (Ctl *ctl, char **ids)
{
  g_autoptr(Snapshot) snap = NULL;
  gboolean first = TRUE;
  int rc;

  if (ids[0] == NULL)
    return show_node (ctl);

  if ((rc = fetch_snapshot (ctl, &snap)) != EXIT_OK)
    return rc;
  for (guint i = 0; ids[i] != NULL; i++)
    {
      Resource *r = snapshot_lookup (snap, ids[i], &rc);

      if (r == NULL)
        continue;
      if (!first)
        putchar ('\n');
      first = FALSE;
      show_resource (ctl, snap, r);
    }
  return rc;
}

/* ---------------------------------------------------- is-active, is-failed */

/* Prints the state of each id (unless -q; "unknown" for a missing one,
 * which is also reported on stderr).  *@n_good: how many are in @good_state. */
static int
print_states (Ctl *ctl, char **ids, const char *good_state, guint *n_good)
{
  g_autoptr(Snapshot) snap = NULL;
  int rc;

  *n_good = 0;
  if ((rc = fetch_snapshot (ctl, &snap)) != EXIT_OK)
    return rc;
  for (guint i = 0; ids[i] != NULL; i++)
    {
      Resource *r = snapshot_lookup (snap, ids[i], &rc);
      g_autofree char *state = clean (r != NULL ? r->state : "unknown");

      if (r != NULL && g_str_equal (r->state, good_state))
        (*n_good)++;
      if (!ctl->quiet)
        printf ("%s\n", state);
    }
  return rc;
}

/* 0 when every id is ready, 4 when one is missing, else 3.  (systemctl
 * answers 0 when any unit is active; exoctl takes the worst, as status.) */
int
cmd_is_active (Ctl *ctl, char **ids)
{
  guint n_ready;
  int rc = print_states (ctl, ids, "ready", &n_ready);

  if (rc != EXIT_OK)
    return rc;
  return n_ready == g_strv_length (ids) ? EXIT_OK : EXIT_NOT_ACTIVE;
}

/* 0 when any id is in error (as systemctl), else 4 when one is missing,
 * else 1. */
int
cmd_is_failed (Ctl *ctl, char **ids)
{
  guint n_failed;
  int rc = print_states (ctl, ids, "error", &n_failed);

  if (rc == EXIT_NO_RESOURCE && n_failed == 0)
    return EXIT_NO_RESOURCE;
  if (rc != EXIT_OK && rc != EXIT_NO_RESOURCE)
    return rc;                         /* no node */
  return n_failed > 0 ? EXIT_OK : EXIT_FAILED;
}
