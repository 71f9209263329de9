/* exo-dbus-export.h: a resource tree on D-Bus (docs/design.md §4).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>

G_BEGIN_DECLS

/* The object paths and error names of the contract (data/org.exo.Node1.xml). */
#define EXO_DBUS_NODE_PATH            "/org/exo/Node1"
#define EXO_DBUS_RESOURCE_PATH_PREFIX "/org/exo/Node1/resource/"

#define EXO_DBUS_ERROR_NOT_FOUND      "org.exo.Error.NotFound"
#define EXO_DBUS_ERROR_INVALID_STATE  "org.exo.Error.InvalidState"
#define EXO_DBUS_ERROR_TIMEOUT        "org.exo.Error.Timeout"
#define EXO_DBUS_ERROR_FAILED         "org.exo.Error.Failed"
#define EXO_DBUS_ERROR_ACCESS_DENIED  "org.freedesktop.DBus.Error.AccessDenied"

#define EXO_TYPE_DBUS_EXPORT (exo_dbus_export_get_type ())

G_DECLARE_FINAL_TYPE (ExoDBusExport, exo_dbus_export, EXO, DBUS_EXPORT, GObject)

ExoDBusExport *exo_dbus_export_new            (GDBusConnection  *connection,
                                               const char       *node_id,
                                               ExoResourceGroup *root);
void           exo_dbus_export_set_plugins    (ExoDBusExport    *self,
                                               GPtrArray        *plugin_infos);
void           exo_dbus_export_set_topology   (ExoDBusExport    *self,
                                               const char       *json);
void           exo_dbus_export_set_node_state (ExoDBusExport    *self,
                                               const char       *state);
void           exo_dbus_export_unexport       (ExoDBusExport    *self);

const char    *exo_dbus_export_get_object_path (ExoDBusExport   *self,
                                                ExoResource     *resource);
guint          exo_dbus_export_get_n_objects   (ExoDBusExport   *self);

void           exo_dbus_error_register         (void);

G_END_DECLS
