/* exo-dbus-methods.c: the methods of the exported objects (docs/design.md §4).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns what org.exo.Resource1's methods (Initialize, Cleanup, Restart,
 * CheckHealth) and org.exo.Node1's (Shutdown, GetResource) do, who may call
 * them, and how libexo's errors are named on the bus.
 *
 * Methods that change anything (Initialize, Cleanup, Restart, Shutdown) are
 * allowed to callers whose uid, asked from the bus with
 * GetConnectionUnixUser and cached per unique name until NameOwnerChanged
 * says it left, is the daemon's effective uid or 0.  On a peer-to-peer
 * connection the peer's credentials say it.
 *
 * Runs in the export's main context.  A call in progress holds a reference
 * on the export and on the resource, so that it gets its reply after the
 * resource left the bus or the export was unexported.
 */
#include "exo-dbus-export-private.h"

/* At most this many callers' uids are cached; beyond it the cache starts over. */
#define UID_CACHE_MAX 1024

/* --- errors ------------------------------------------------------------- */

/**
 * exo_dbus_error_register:
 *
 * Maps the libexo error codes that have a name of their own in the contract
 * to it, so that clients get them back as #GErrors in %EXO_RESOURCE_ERROR
 * (NotFound, InvalidState, Failed) and %G_IO_ERROR (Timeout).  Idempotent.
 */
void
exo_dbus_error_register (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      g_dbus_error_register_error (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_NOT_FOUND,
                                   EXO_DBUS_ERROR_NOT_FOUND);
      g_dbus_error_register_error (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                                   EXO_DBUS_ERROR_INVALID_STATE);
      g_dbus_error_register_error (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                                   EXO_DBUS_ERROR_FAILED);
      g_dbus_error_register_error (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                   EXO_DBUS_ERROR_TIMEOUT);
      g_once_init_leave (&done, 1);
    }
}

static const char *
error_to_dbus_name (const GError *error)
{
  if (error->domain == EXO_RESOURCE_ERROR)
    {
      switch (error->code)
        {
        case EXO_RESOURCE_ERROR_NOT_FOUND:
          return EXO_DBUS_ERROR_NOT_FOUND;
        case EXO_RESOURCE_ERROR_INVALID_STATE:
        case EXO_RESOURCE_ERROR_CLOSED:
          return EXO_DBUS_ERROR_INVALID_STATE;
        default:
          break;
        }
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return EXO_DBUS_ERROR_TIMEOUT;

  return EXO_DBUS_ERROR_FAILED;
}

static void
return_error (GDBusMethodInvocation *invocation,
              const GError          *error)
{
  g_dbus_method_invocation_return_dbus_error (invocation, error_to_dbus_name (error),
                                              error->message);
}

/* --- calls that change anything ------------------------------------------ */

typedef enum {
  OP_INITIALIZE,
  OP_CLEANUP,
  OP_RESTART,
  OP_SHUTDOWN,
} Op;

static const char * const op_names[] = {
  "org.exo.Resource1.Initialize",
  "org.exo.Resource1.Cleanup",
  "org.exo.Resource1.Restart",
  "org.exo.Node1.Shutdown",
};

typedef struct
{
  ExoDBusExport         *self;
  ExoResource           *resource;     /* NULL for Shutdown */
  GDBusMethodInvocation *invocation;   /* owned until answered */
  Op                     op;
} Call;

static void
call_free (Call *call)
{
  g_clear_object (&call->self);
  g_clear_object (&call->resource);
  g_clear_object (&call->invocation);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Call, call_free)

static void
op_done_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(Call) call = user_data;
  g_autoptr(GError) error = NULL;
  gboolean ok = FALSE;

  switch (call->op)
    {
    case OP_INITIALIZE:
      ok = exo_resource_initialize_finish (call->resource, result, &error);
      break;
    case OP_CLEANUP:
      ok = exo_resource_cleanup_finish (call->resource, result, &error);
      break;
    case OP_RESTART:
      ok = exo_resource_restart_finish (call->resource, result, &error);
      break;
    case OP_SHUTDOWN:
    default:
      g_assert_not_reached ();
    }

  if (ok)
    g_dbus_method_invocation_return_value (g_steal_pointer (&call->invocation), NULL);
  else
    return_error (g_steal_pointer (&call->invocation), error);
}

static void
call_run (Call *call)
{
  switch (call->op)
    {
    case OP_INITIALIZE:
      exo_resource_initialize_async (call->resource, NULL, op_done_cb, call);
      break;
    case OP_CLEANUP:
      exo_resource_cleanup_async (call->resource, NULL, op_done_cb, call);
      break;
    case OP_RESTART:
      exo_resource_restart_async (call->resource, NULL, op_done_cb, call);
      break;
    case OP_SHUTDOWN:
      {
        g_autoptr(ExoDBusExport) self = g_object_ref (call->self);

        g_dbus_method_invocation_return_value (g_steal_pointer (&call->invocation), NULL);
        call_free (call);
        if (self->exported)
          _exo_dbus_emit_shutdown_requested (self);
      }
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
call_authorized (Call    *call,
                 gboolean known,
                 guint    uid)
{
  g_autofree char *message = NULL;

  if (known && (uid == 0 || uid == (guint) call->self->uid))
    {
      call_run (call);
      return;
    }

  if (known)
    message = g_strdup_printf ("%s is not allowed: uid %u is neither root nor exo-node's uid %u",
                               op_names[call->op], uid, (guint) call->self->uid);
  else
    message = g_strdup_printf ("%s is not allowed: the caller's uid is unknown",
                               op_names[call->op]);
  g_dbus_method_invocation_return_dbus_error (g_steal_pointer (&call->invocation),
                                              EXO_DBUS_ERROR_ACCESS_DENIED, message);
  call_free (call);
}

static void
get_uid_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Call *call = user_data;
  ExoDBusExport *self = call->self;
  g_autoptr(GVariant) reply = NULL;
  guint uid = 0;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, NULL);
  if (reply == NULL)
    {
      call_authorized (call, FALSE, 0);
      return;
    }

  g_variant_get (reply, "(u)", &uid);
  if (self->exported && self->name_owner_changed_id != 0)
    {
      if (g_hash_table_size (self->uids) >= UID_CACHE_MAX)
        g_hash_table_remove_all (self->uids);
      g_hash_table_insert (self->uids,
                           g_strdup (g_dbus_method_invocation_get_sender (call->invocation)),
                           GUINT_TO_POINTER (uid));
    }
  call_authorized (call, TRUE, uid);
}

/* Checks the caller's uid, then runs @op (the invocation is handled either way). */
static gboolean
handle_changing (ExoDBusExport         *self,
                 ExoResource           *resource,
                 GDBusMethodInvocation *invocation,
                 Op                     op)
{
  GDBusConnection *connection = g_dbus_method_invocation_get_connection (invocation);
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  Call *call = g_new0 (Call, 1);
  gpointer cached;

  call->self = g_object_ref (self);
  call->resource = resource != NULL ? g_object_ref (resource) : NULL;
  call->invocation = invocation;   /* ours: answering it gives it up */
  call->op = op;

  if (sender == NULL)
    {
      /* A peer-to-peer connection: the peer is who authenticated. */
      GCredentials *credentials = g_dbus_connection_get_peer_credentials (connection);
      uid_t uid = credentials != NULL ? g_credentials_get_unix_user (credentials, NULL) : (uid_t) -1;

      call_authorized (call, uid != (uid_t) -1, (guint) uid);
    }
  else if (g_hash_table_lookup_extended (self->uids, sender, NULL, &cached))
    call_authorized (call, TRUE, GPOINTER_TO_UINT (cached));
  else
    g_dbus_connection_call (connection,
                            "org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus", "GetConnectionUnixUser",
                            g_variant_new ("(s)", sender), G_VARIANT_TYPE ("(u)"),
                            G_DBUS_CALL_FLAGS_NONE, -1, NULL, get_uid_cb, call);

  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
on_name_owner_changed (GDBusConnection *connection,
                       const char      *sender_name,
                       const char      *object_path,
                       const char      *interface_name,
                       const char      *signal_name,
                       GVariant        *parameters,
                       gpointer         user_data)
{
  ExoDBusExport *self = user_data;
  const char *name, *old_owner, *new_owner;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sss)")))
    return;
  g_variant_get (parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
  if (name[0] == ':' && new_owner[0] == '\0')
    g_hash_table_remove (self->uids, name);
}

/* Caches callers' uids while the bus says who left (a bus connection only). */
void
_exo_dbus_uid_cache_start (ExoDBusExport *self)
{
  if (g_dbus_connection_get_unique_name (self->connection) != NULL)
    self->name_owner_changed_id =
      g_dbus_connection_signal_subscribe (self->connection,
                                          "org.freedesktop.DBus", "org.freedesktop.DBus",
                                          "NameOwnerChanged", "/org/freedesktop/DBus",
                                          NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                          on_name_owner_changed, self, NULL);
}

void
_exo_dbus_uid_cache_stop (ExoDBusExport *self)
{
  if (self->name_owner_changed_id != 0)
    g_dbus_connection_signal_unsubscribe (self->connection, self->name_owner_changed_id);
  self->name_owner_changed_id = 0;
}

/* --- org.exo.Resource1 ---------------------------------------------------- */

static void
check_health_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GDBusMethodInvocation) invocation = user_data;
  gboolean healthy;

  /* An unhealthy resource is an answer, not a failed call. */
  healthy = exo_resource_check_health_finish (EXO_RESOURCE (source), result, NULL);
  g_dbus_method_invocation_return_value (g_steal_pointer (&invocation),
                                         g_variant_new ("(b)", healthy));
}

/* A call of org.exo.Resource1 on @entry's object, checked by GDBus against
 * the interface; takes @invocation. */
void
_exo_dbus_handle_resource_method (ExoDBusExport         *self,
                                  ExoDBusEntry          *entry,
                                  const char            *method_name,
                                  GDBusMethodInvocation *invocation)
{
  if (g_str_equal (method_name, "Initialize"))
    handle_changing (self, entry->resource, invocation, OP_INITIALIZE);
  else if (g_str_equal (method_name, "Cleanup"))
    handle_changing (self, entry->resource, invocation, OP_CLEANUP);
  else if (g_str_equal (method_name, "Restart"))
    handle_changing (self, entry->resource, invocation, OP_RESTART);
  else if (g_str_equal (method_name, "CheckHealth"))
    /* Open to everybody; the callback answers @invocation. */
    exo_resource_check_health_async (entry->resource, NULL, check_health_cb, invocation);
  else
    g_dbus_method_invocation_return_dbus_error (invocation, "org.freedesktop.DBus.Error.UnknownMethod",
                                                "No such method");
}

/* --- org.exo.Node1 ------------------------------------------------------------ */

static gboolean
on_handle_shutdown (ExoDBusNode1          *iface,
                    GDBusMethodInvocation *invocation,
                    gpointer               user_data)
{
  return handle_changing (user_data, NULL, invocation, OP_SHUTDOWN);
}

static ExoDBusEntry *
find_entry_by_id (ExoDBusExport *self,
                  const char    *id)
{
  g_autofree char *escaped = g_dbus_escape_object_path (id);
  g_autofree char *path = g_strconcat (EXO_DBUS_RESOURCE_PATH_PREFIX, escaped[0] != '\0' ? escaped : "_", NULL);
  ExoDBusEntry *entry = g_hash_table_lookup (self->paths, path);
  ExoDBusEntry *found = NULL;
  GHashTableIter iter;
  gpointer value;

  if (entry != NULL && g_strcmp0 (exo_resource_get_id (entry->resource), id) == 0)
    return entry;

  /* The first holder of the plain path is gone; take the lowest suffix. */
  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      entry = value;
      if (g_strcmp0 (exo_resource_get_id (entry->resource), id) == 0 &&
          (found == NULL || strlen (entry->path) < strlen (found->path) ||
           (strlen (entry->path) == strlen (found->path) && strcmp (entry->path, found->path) < 0)))
        found = entry;
    }
  return found;
}

static gboolean
on_handle_get_resource (ExoDBusNode1          *iface,
                        GDBusMethodInvocation *invocation,
                        const char            *id,
                        gpointer               user_data)
{
  ExoDBusExport *self = user_data;
  ExoDBusEntry *entry = find_entry_by_id (self, id);

  if (entry == NULL)
    {
      g_autofree char *message = g_strdup_printf ("no resource '%s'", id);

      g_dbus_method_invocation_return_dbus_error (invocation, EXO_DBUS_ERROR_NOT_FOUND, message);
    }
  else
    exo_dbus_node1_complete_get_resource (iface, invocation, entry->path);

  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* The methods of the Node1 skeleton. */
void
_exo_dbus_node_connect_methods (ExoDBusExport *self)
{
  g_signal_connect (self->node, "handle-shutdown", G_CALLBACK (on_handle_shutdown), self);
  g_signal_connect (self->node, "handle-get-resource", G_CALLBACK (on_handle_get_resource), self);
}
