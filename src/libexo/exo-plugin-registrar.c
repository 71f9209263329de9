/* exo-plugin-registrar.c: what a plugin's register function calls.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns the registrar side of loading a plugin: exo_plugin_registrar_add_type()
 * and _add_role() with their checks (the first thing wrong is kept and
 * refuses the whole plugin), exo_plugin_registrar_get_plugin_name(), and the
 * process-wide table of roles: _exo_plugin_claim_roles() for an accepted
 * plugin and exo_plugin_lookup_role().  exo-plugin.c makes the registrar,
 * calls the register function and commits what it collected;
 * exo-plugin-private.h lists the loader's files and the rules.
 *
 * Rules: the registrar's functions run on the loader's thread, from inside
 * a plugin's register function; they call nothing out.  The roles table is
 * the process's (as GTypes are) and is touched only under G_LOCK (roles),
 * which is a leaf lock: exo_plugin_lookup_role() may be called from any
 * thread.
 */
#include "exo-plugin-private.h"

#include <string.h>

/* The roles plugins provide (exo_plugin_registrar_add_role()), for the whole
 * process as GTypes are: interface GType -> implementing GType. */
G_LOCK_DEFINE_STATIC (roles);
static GHashTable *roles;

static void
registrar_fail (ExoPluginRegistrar *registrar,
                gint                code,
                const char         *format,
                ...) G_GNUC_PRINTF (3, 4);

static void
registrar_fail (ExoPluginRegistrar *registrar,
                gint                code,
                const char         *format,
                ...)
{
  g_autofree char *reason = NULL;
  va_list args;

  if (registrar->error != NULL)
    return;

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);

  registrar->error = g_error_new (EXO_PLUGIN_ERROR, code, "%s: plugin '%s' %s",
                                  registrar->where, registrar->plugin_name, reason);
}

/**
 * exo_plugin_registrar_add_type:
 * @registrar: the registrar given to the register function
 * @type_name: the name configs use for the type, e.g. `"udp-discovery"`
 *   (letters, digits, `-`, `_` and `.`)
 * @type: a non-abstract #GType deriving from #ExoResource
 *
 * Binds @type_name to @type.  A type that does not derive from #ExoResource,
 * an abstract type, an invalid name or a name registered twice make the
 * loader refuse the whole plugin, with an error that says which.
 */
void
exo_plugin_registrar_add_type (ExoPluginRegistrar *registrar,
                               const char         *type_name,
                               GType               type)
{
  RegisteredType entry;
  TypeEntry *existing;

  g_return_if_fail (registrar != NULL);

  if (registrar->error != NULL)
    return;

  if (!_exo_plugin_name_is_valid (type_name))
    {
      g_autofree char *shown = _exo_plugin_printable (type_name);
      registrar_fail (registrar, EXO_PLUGIN_ERROR_INVALID,
                      "registers an invalid type name '%s' (use letters, digits, '-', '_', '.')",
                      shown);
      return;
    }

  if (type == G_TYPE_INVALID || g_type_name (type) == NULL)
    {
      registrar_fail (registrar, EXO_PLUGIN_ERROR_INVALID,
                      "registers type name '%s' with an invalid GType", type_name);
      return;
    }

  if (!g_type_is_a (type, EXO_TYPE_RESOURCE))
    {
      registrar_fail (registrar, EXO_PLUGIN_ERROR_INVALID,
                      "registers type name '%s' as %s, which does not derive from ExoResource",
                      type_name, g_type_name (type));
      return;
    }

  if (G_TYPE_IS_ABSTRACT (type))
    {
      registrar_fail (registrar, EXO_PLUGIN_ERROR_INVALID,
                      "registers type name '%s' as %s, which is abstract",
                      type_name, g_type_name (type));
      return;
    }

  for (guint i = 0; i < registrar->types->len; i++)
    if (strcmp (g_array_index (registrar->types, RegisteredType, i).type_name, type_name) == 0)
      {
        registrar_fail (registrar, EXO_PLUGIN_ERROR_INVALID,
                        "registers type name '%s' twice", type_name);
        return;
      }

  existing = g_hash_table_lookup (registrar->loader->types, type_name);
  if (existing != NULL)
    {
      if (existing->info->path[0] != '\0')
        registrar_fail (registrar, EXO_PLUGIN_ERROR_NAME_CLASH,
                        "registers type name '%s', already registered by plugin '%s' (%s)",
                        type_name, existing->info->name, existing->info->path);
      else
        registrar_fail (registrar, EXO_PLUGIN_ERROR_NAME_CLASH,
                        "registers type name '%s', already registered by built-in plugin '%s'",
                        type_name, existing->info->name);
      return;
    }

  entry.type_name = g_strdup (type_name);
  entry.type = type;
  g_array_append_val (registrar->types, entry);
}

/**
 * exo_plugin_registrar_add_role:
 * @registrar: the registrar given to the register function
 * @role: an interface type, e.g. %EXO_TYPE_PEER_HANDLE
 * @type: a non-abstract #GType deriving from #ExoResource that implements @role
 *
 * Declares @type as the plugin's implementation of @role, for resources of
 * other plugins that make objects of a role themselves: the node plugin makes
 * a peer handle of exo_plugin_lookup_role (%EXO_TYPE_PEER_HANDLE) for each peer
 * it finds.  Find the type with exo_plugin_lookup_role().
 *
 * One type per role in a process: a plugin that provides a role already
 * provided by another type is refused (%EXO_PLUGIN_ERROR_NAME_CLASH).  An
 * invalid @role or @type makes the loader refuse the plugin
 * (%EXO_PLUGIN_ERROR_INVALID).
 *
 * Added in plugin ABI 2.1.
 */
void
exo_plugin_registrar_add_role (ExoPluginRegistrar *registrar,
                               GType               role,
                               GType               type)
{
  RegisteredRole entry;

  g_return_if_fail (registrar != NULL);

  if (registrar->error != NULL)
    return;

  if (!G_TYPE_IS_INTERFACE (role))
    {
      registrar_fail (registrar, EXO_PLUGIN_ERROR_INVALID,
                      "provides a role that is not an interface (%s)",
                      role != G_TYPE_INVALID && g_type_name (role) != NULL ? g_type_name (role) : "invalid GType");
      return;
    }
  if (type == G_TYPE_INVALID || g_type_name (type) == NULL ||
      !g_type_is_a (type, EXO_TYPE_RESOURCE) || G_TYPE_IS_ABSTRACT (type) ||
      !g_type_is_a (type, role))
    {
      registrar_fail (registrar, EXO_PLUGIN_ERROR_INVALID,
                      "provides role %s with %s, which is not a non-abstract ExoResource "
                      "implementing it",
                      g_type_name (role),
                      type != G_TYPE_INVALID && g_type_name (type) != NULL ? g_type_name (type) : "an invalid GType");
      return;
    }
  for (guint i = 0; i < registrar->roles->len; i++)
    if (g_array_index (registrar->roles, RegisteredRole, i).role == role)
      {
        registrar_fail (registrar, EXO_PLUGIN_ERROR_INVALID,
                        "provides role %s twice", g_type_name (role));
        return;
      }

  entry.role = role;
  entry.type = type;
  g_array_append_val (registrar->roles, entry);
}

/**
 * exo_plugin_lookup_role:
 * @role: an interface type, e.g. %EXO_TYPE_PEER_HANDLE
 *
 * The type a loaded plugin provides for @role with
 * exo_plugin_registrar_add_role(), by any #ExoPluginLoader of this process
 * (GTypes are process-wide).  Thread-safe.
 *
 * Returns: the type, or %G_TYPE_INVALID when no loaded plugin provides @role
 *
 * Added in plugin ABI 2.1.
 */
GType
exo_plugin_lookup_role (GType role)
{
  GType type = G_TYPE_INVALID;

  G_LOCK (roles);
  if (roles != NULL)
    type = GPOINTER_TO_SIZE (g_hash_table_lookup (roles, GSIZE_TO_POINTER (role)));
  G_UNLOCK (roles);
  return type;
}

/* Claims the roles of an accepted plugin, or says which one another type
 * holds (and claims none). */
gboolean
_exo_plugin_claim_roles (GArray      *wanted,
                         const char  *where,
                         const char  *plugin_name,
                         GError     **error)
{
  gboolean ok = TRUE;

  G_LOCK (roles);
  if (roles == NULL)
    roles = g_hash_table_new (NULL, NULL);
  for (guint i = 0; ok && i < wanted->len; i++)
    {
      RegisteredRole *r = &g_array_index (wanted, RegisteredRole, i);
      GType held = GPOINTER_TO_SIZE (g_hash_table_lookup (roles, GSIZE_TO_POINTER (r->role)));

      if (held != G_TYPE_INVALID && held != r->type)
        {
          g_set_error (error, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_NAME_CLASH,
                       "%s: plugin '%s' provides role %s with %s, already provided by %s",
                       where, plugin_name, g_type_name (r->role), g_type_name (r->type),
                       g_type_name (held));
          ok = FALSE;
        }
    }
  for (guint i = 0; ok && i < wanted->len; i++)
    {
      RegisteredRole *r = &g_array_index (wanted, RegisteredRole, i);

      g_hash_table_insert (roles, GSIZE_TO_POINTER (r->role), GSIZE_TO_POINTER (r->type));
    }
  G_UNLOCK (roles);
  return ok;
}

/**
 * exo_plugin_registrar_get_plugin_name:
 * @registrar: the registrar given to the register function
 *
 * Returns: the name of the plugin being registered
 */
const char *
exo_plugin_registrar_get_plugin_name (ExoPluginRegistrar *registrar)
{
  g_return_val_if_fail (registrar != NULL, NULL);
  return registrar->plugin_name;
}

void
_exo_plugin_registered_type_clear (gpointer data)
{
  RegisteredType *entry = data;

  g_clear_pointer (&entry->type_name, g_free);
}
