/* exoctl-watch.c: `watch`, state changes printed as they happen, until
 * --count changes, --timeout seconds, SIGINT/SIGTERM, or the node or the
 * bus goes away.
 *
 * Rules: the only command that runs a main loop: a GMainLoop on the
 * global-default main context, in exoctl's one thread.  Every callback
 * here (signal subscriptions, name watch, the connection's ::closed, the
 * timeout and the Unix signal sources) runs from that loop and gets the
 * Watch on cmd_watch()'s stack, so all of them are removed before
 * cmd_watch() returns.  It subscribes before it reads the snapshot, so
 * that no change after the snapshot is lost.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exoctl-private.h"

#include <glib-unix.h>
#include <stdio.h>

typedef struct
{
  Ctl        *ctl;
  GMainLoop  *loop;
  GHashTable *ids;             /* path -> id (owned) */
  int         seen;
  int         exit_code;
  glong       id_width;
  guint       timeout_id;
} Watch;

static void
watch_quit (Watch *w, int code)
{
  w->exit_code = code;
  g_main_loop_quit (w->loop);
}

static void
on_state_changed (GDBusConnection *connection,
                  const char      *sender,
                  const char      *path,
                  const char      *interface,
                  const char      *signal,
                  GVariant        *params,
                  gpointer         user_data)
{
  Watch *w = user_data;
  Ctl *ctl = w->ctl;
  const char *old_state, *new_state, *message;
  const char *known;
  g_autofree char *id = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();

  if (ctl->count > 0 && w->seen >= ctl->count)
    return;
  if (!g_variant_is_of_type (params, G_VARIANT_TYPE ("(sss)")))
    return;
  g_variant_get (params, "(&s&s&s)", &old_state, &new_state, &message);
  known = g_hash_table_lookup (w->ids, path);
  id = known != NULL ? g_strdup (known) : id_from_path (path);

  if (ctl->json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *time = g_date_time_format_iso8601 (now);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "time");
      json_builder_add_string_value (b, time);
      json_builder_set_member_name (b, "timestamp");
      json_builder_add_int_value (b, g_date_time_to_unix (now) * G_USEC_PER_SEC +
                                     g_date_time_get_microsecond (now));
      json_builder_set_member_name (b, "id");
      json_builder_add_string_value (b, id);
      json_builder_set_member_name (b, "old_state");
      json_builder_add_string_value (b, old_state);
      json_builder_set_member_name (b, "new_state");
      json_builder_add_string_value (b, new_state);
      json_builder_set_member_name (b, "error");
      json_builder_add_string_value (b, message);
      json_builder_set_member_name (b, "object_path");
      json_builder_add_string_value (b, path);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      print_json (root, FALSE);
    }
  else
    {
      g_autofree char *time = g_date_time_format (now, "%Y-%m-%d %H:%M:%S");
      g_autofree char *shown_id = clean (id);
      g_autofree char *shown_old = clean (old_state);
      g_autofree char *shown_new = clean (new_state);
      g_autofree char *shown_msg = clean (message);
      glong pad = w->id_width - g_utf8_strlen (shown_id, -1);

      printf ("%s.%03d  %s%*s  ", time, g_date_time_get_microsecond (now) / 1000,
              shown_id, (int) MAX (pad, 0), "");
      print_colored (ctl, state_color (ctl, old_state), shown_old);
      printf (" %s ", glyph (ctl, "→", "->"));
      print_colored (ctl, state_color (ctl, new_state), shown_new);
      if (shown_msg[0] != '\0')
        printf ("  %s", shown_msg);
      putchar ('\n');
      fflush (stdout);
    }

  w->seen++;
  if (ctl->count > 0 && w->seen >= ctl->count)
    watch_quit (w, EXIT_OK);
}

static void
on_interfaces_added (GDBusConnection *connection,
                     const char      *sender,
                     const char      *path,
                     const char      *interface,
                     const char      *signal,
                     GVariant        *params,
                     gpointer         user_data)
{
  Watch *w = user_data;
  const char *object;
  g_autoptr(GVariant) interfaces = NULL;
  Resource *r;

  if (!g_variant_is_of_type (params, G_VARIANT_TYPE ("(oa{sa{sv}})")))
    return;
  g_variant_get (params, "(&o@a{sa{sv}})", &object, &interfaces);
  r = resource_new (object, interfaces);
  if (r != NULL)
    {
      g_hash_table_replace (w->ids, g_strdup (object), g_strdup (r->id));
      w->id_width = MAX (w->id_width, g_utf8_strlen (r->id, -1));
      resource_free (r);
    }
}

static void
on_name_vanished (GDBusConnection *connection, const char *name, gpointer user_data)
{
  Watch *w = user_data;

  fail (EXIT_NOT_RUNNING, "exo-node went away from the %s (name %s)",
        bus_label (w->ctl), w->ctl->bus_name);
  watch_quit (w, EXIT_NOT_RUNNING);
}

static void
on_connection_closed (GDBusConnection *connection, gboolean remote_peer_vanished,
                      GError *error, gpointer user_data)
{
  Watch *w = user_data;

  fail (EXIT_NOT_RUNNING, "the %s went away", bus_label (w->ctl));
  watch_quit (w, EXIT_NOT_RUNNING);
}

static gboolean
on_watch_timeout (gpointer user_data)
{
  Watch *w = user_data;

  w->timeout_id = 0;
  watch_quit (w, EXIT_OK);
  return G_SOURCE_REMOVE;
}

static gboolean
on_watch_signal (gpointer user_data)
{
  watch_quit (user_data, EXIT_OK);
  return G_SOURCE_CONTINUE;
}

int
cmd_watch (Ctl *ctl)
{
  g_autoptr(Snapshot) snap = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Watch w = { ctl, loop, NULL, 0, EXIT_OK, 2, 0 };
  guint sub_state, sub_added, watch_id;
  gulong closed_id;
  guint sigint_id, sigterm_id;
  int rc;

  w.ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  /* Subscribe first, then read the snapshot: the bus handles our AddMatch
   * before our GetManagedObjects, so no change after the snapshot is lost. */
  sub_state = g_dbus_connection_signal_subscribe (ctl->connection, ctl->bus_name,
                                                  IFACE_RESOURCE, "StateChanged", NULL, NULL,
                                                  G_DBUS_SIGNAL_FLAGS_NONE,
                                                  on_state_changed, &w, NULL);
  sub_added = g_dbus_connection_signal_subscribe (ctl->connection, ctl->bus_name,
                                                  IFACE_OBJ_MANAGER, "InterfacesAdded",
                                                  NODE_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                  on_interfaces_added, &w, NULL);

  rc = fetch_snapshot (ctl, &snap);
  if (rc == EXIT_OK)
    {
      for (guint i = 0; i < snap->resources->len; i++)
        {
          Resource *r = g_ptr_array_index (snap->resources, i);
          g_hash_table_replace (w.ids, g_strdup (r->path), g_strdup (r->id));
          w.id_width = MAX (w.id_width, g_utf8_strlen (r->id, -1));
        }

      watch_id = g_bus_watch_name_on_connection (ctl->connection, ctl->bus_name,
                                                 G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                 NULL, on_name_vanished, &w, NULL);
      closed_id = g_signal_connect (ctl->connection, "closed",
                                    G_CALLBACK (on_connection_closed), &w);
      if (ctl->timeout > 0)
        w.timeout_id = g_timeout_add ((guint) MIN (ctl->timeout * 1000.0, (double) G_MAXUINT),
                                    on_watch_timeout, &w);
      sigint_id = g_unix_signal_add (SIGINT, on_watch_signal, &w);
      sigterm_id = g_unix_signal_add (SIGTERM, on_watch_signal, &w);

      g_main_loop_run (loop);
      rc = w.exit_code;

      g_clear_handle_id (&w.timeout_id, g_source_remove);
      g_source_remove (sigint_id);
      g_source_remove (sigterm_id);
      g_signal_handler_disconnect (ctl->connection, closed_id);
      g_bus_unwatch_name (watch_id);
    }

  g_dbus_connection_signal_unsubscribe (ctl->connection, sub_state);
  g_dbus_connection_signal_unsubscribe (ctl->connection, sub_added);
  g_hash_table_unref (w.ids);
  return rc;
}
