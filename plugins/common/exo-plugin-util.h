/* exo-plugin-util.h: small helpers the in-tree plugins share, so that each
 * is written once.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: the property setters of a set_property() that tell whether the
 * value changed (exo_plugin_set_string(), exo_plugin_set_uint()), and a
 * GSource that fires at the ready time it is given
 * (exo_plugin_ready_time_source_new()), which a per-request timeout keeps
 * for the request instead of making and destroying a timer per token.
 * Private to plugins/ (found through plugin_common_inc in
 * plugins/meson.build): never installed, not libexo API, no symbols (static
 * inline only).
 *
 * Rules: none of it keeps state or locks.  The setters touch only the field
 * given, on the caller's thread (a set_property, in the object's main
 * context).  A ready-time source is attached to the thread-default main
 * context of its maker and dispatches there; it is not ready until
 * g_source_set_ready_time() gives it a time, and the time stays set: a
 * callback that returns G_SOURCE_CONTINUE must move it (or set -1), else
 * the source fires again at once.  A new ready time wakes the context
 * (GLib writes its eventfd), so a timeout that progress pushes back is
 * set once and, when it fires early, moved to the deadline of the last
 * progress (the request timers do so).
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* Replaces *@field with a copy of @value's string: TRUE if it changed. */
static inline gboolean
exo_plugin_set_string (char         **field,
                       const GValue  *value)
{
  const char *s = g_value_get_string (value);

  if (g_strcmp0 (*field, s) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (s);
  return TRUE;
}

/* Sets *@field to @value's guint: TRUE if it changed. */
static inline gboolean
exo_plugin_set_uint (guint        *field,
                     const GValue *value)
{
  guint v = g_value_get_uint (value);

  if (*field == v)
    return FALSE;
  *field = v;
  return TRUE;
}

static inline gboolean
exo_plugin_ready_time_dispatch (GSource     *source,
                                GSourceFunc  callback,
                                gpointer     user_data)
{
  return callback (user_data);
}

/* A source named @static_name that calls @callback (@user_data, not owned)
 * at the ready time set on it, attached to the thread-default main
 * context.  Returns: (transfer full): the source; destroy and unref it. */
static inline GSource *
exo_plugin_ready_time_source_new (GSourceFunc  callback,
                                  gpointer     user_data,
                                  const char  *static_name)
{
  static GSourceFuncs ready_time_funcs = {
    .dispatch = exo_plugin_ready_time_dispatch,
  };
  GSource *source = g_source_new (&ready_time_funcs, sizeof (GSource));

  g_source_set_callback (source, callback, user_data, NULL);
  g_source_set_static_name (source, static_name);
  g_source_attach (source, g_main_context_get_thread_default ());
  return source;
}

G_END_DECLS
