/* exoctl-control.c: the commands that change a resource: `start ID`
 * (Initialize), `stop ID` (Cleanup) and `restart ID` (Restart) on
 * org.exo.Resource1.
 *
 * Rules: one blocking D-Bus call without a client-side timeout (the
 * node's own timeouts bound Initialize and Cleanup), after reading one
 * Snapshot to find the resource; no main loop, single thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exoctl-private.h"

int
cmd_method (Ctl *ctl, const char *id, const char *method, const char *verb)
{
  g_autoptr(Snapshot) snap = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  Resource *r;
  int rc;

  if ((rc = fetch_snapshot (ctl, &snap)) != EXIT_OK)
    return rc;
  r = snapshot_find (snap, id);
  if (r == NULL)
    return fail (EXIT_NO_RESOURCE, "no resource '%s'", id);

  /* Initialize and Cleanup take as long as the resource takes; the node's
   * own timeouts bound them. */
  reply = g_dbus_connection_call_sync (ctl->connection, ctl->bus_name, r->path,
                                       IFACE_RESOURCE, method, NULL, G_VARIANT_TYPE_UNIT,
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, G_MAXINT, NULL, &error);
  if (reply == NULL)
    {
      g_autofree char *what = g_strdup_printf ("cannot %s '%s'", verb, id);
      return report_dbus_error (ctl, error, what);
    }
  return EXIT_OK;
}
