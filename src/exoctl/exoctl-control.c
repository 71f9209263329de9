/* exoctl-control.c: the commands that change resources: `start ID...`
 * (Initialize), `stop ID...` (Cleanup) and `restart ID...` (Restart) on
 * org.exo.Resource1.
 *
 * Rules: one Snapshot read to find the ids, then one blocking D-Bus call
 * per id, in the order given, each without a client-side timeout (the
 * node's own timeouts bound Initialize and Cleanup); no main loop, single
 * thread.  A missing id or a failed call is reported on its own line and
 * the others still run; the exit status is the highest (1 a failed call,
 * 4 a missing id).  A node that goes away ends the command at once.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exoctl-private.h"

int
cmd_method (Ctl *ctl, char **ids, const char *method, const char *verb)
{
  g_autoptr(Snapshot) snap = NULL;
  int rc;

  if ((rc = fetch_snapshot (ctl, &snap)) != EXIT_OK)
    return rc;

  for (guint i = 0; ids[i] != NULL; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) reply = NULL;
      Resource *r = snapshot_lookup (snap, ids[i], &rc);

      if (r == NULL)
        continue;
      /* Initialize and Cleanup take as long as the resource takes; the
       * node's own timeouts bound them. */
      reply = g_dbus_connection_call_sync (ctl->connection, ctl->bus_name, r->path,
                                           IFACE_RESOURCE, method, NULL, G_VARIANT_TYPE_UNIT,
                                           G_DBUS_CALL_FLAGS_NO_AUTO_START, G_MAXINT, NULL,
                                           &error);
      if (reply == NULL)
        {
          g_autofree char *shown = clean (ids[i]);
          g_autofree char *what = g_strdup_printf ("cannot %s '%s'", verb, shown);
          int code;

          if (node_gone (ctl, error))
            return not_running (ctl, NULL);     /* no point going on */
          code = report_dbus_error (ctl, error, what);
          rc = MAX (rc, code);
        }
    }
  return rc;
}
