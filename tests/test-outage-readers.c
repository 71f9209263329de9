/* test-outage-readers.c: /outage/readers — thousands of GetAll replies
 * while the backend flaps between ready and degraded, each with ErrorCount
 * equal to its connect and probe failures.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-outage (main() in test-outage.c).  One thread: the Hammer's
 * calls are asynchronous and the server is toggled from a timeout, all on
 * the test's thread-default main context.
 */
#include "outage-fixture.h"

/* --- many readers while the backend flaps ------------------------------- */

typedef struct
{
  Fixture  *f;
  guint     outstanding;
  guint     replies;
  guint     mismatches;
  char     *first_mismatch;
  gboolean  stop;
} Hammer;

static void hammer_send (Hammer *h);

static void
hammer_cb (GObject *source, GAsyncResult *result, gpointer data)
{
  Hammer *h = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  g_autoptr(GVariant) props = NULL;
  guint error_count = 0, cf, pf;
  const char *state = NULL;

  h->outstanding--;
  g_assert_no_error (error);
  g_variant_get (reply, "(@a{sv})", &props);
  g_assert_true (g_variant_lookup (props, "ErrorCount", "u", &error_count));
  g_assert_true (g_variant_lookup (props, "State", "&s", &state));
  cf = metric_u (props, "backend-connect-failures");
  pf = metric_u (props, "backend-probe-failures");
  h->replies++;
  if (error_count != cf + pf)
    {
      h->mismatches++;
      if (h->first_mismatch == NULL)
        h->first_mismatch = g_strdup_printf ("State %s, ErrorCount %u, backend-connect-failures %u, "
                                             "backend-probe-failures %u", state, error_count, cf, pf);
    }
  if (!h->stop)
    hammer_send (h);
}

static void
hammer_send (Hammer *h)
{
  h->outstanding++;
  g_dbus_connection_call (h->f->c, BUS_NAME, h->f->backend_path, "org.freedesktop.DBus.Properties",
                          "GetAll", g_variant_new ("(s)", RESOURCE_IFACE),
                          G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL,
                          hammer_cb, h);
}

static gboolean
toggle_server_cb (gpointer data)
{
  Server *s = data;

  if (s->service != NULL)
    server_stop (s);
  else
    server_restart (s);
  return G_SOURCE_CONTINUE;
}

static gboolean
hammer_idle (gpointer data)
{
  return ((Hammer *) data)->outstanding == 0;
}

/* Every GetAll has ErrorCount = backend-connect-failures +
 * backend-probe-failures, also a GetAll that the daemon runs in the very
 * main-loop iteration in which a failed health check makes the backend
 * `degraded` (the error and the transition come in one dispatch).  The
 * backend flaps between ready and degraded (the server goes up and down
 * every 20 ms, it is checked every 10 ms; degraded-restart-ms is long, so
 * it is never restarted) while 16 GetAll calls are always in flight.  Before
 * the export synced ErrorCount with Metrics, about one transition in twenty
 * showed ErrorCount one ahead, and every run of this case saw it. */
static void
test_readers (Fixture *f, gconstpointer data)
{
  g_autofree char *config = NULL;
  Hammer h = { f, 0, };
  guint toggle_id;

  if (!have_programs (f))
    return;
  start_bus (f);
  server_start_first (&f->server);
  config = write_config (f, "readers.json",
                         "\"health-check-interval-ms\": 10, \"unhealthy-threshold\": 1,"
                         " \"degraded-restart-ms\": 60000");
  node_start (f, config);

  for (guint i = 0; i < 16; i++)
    hammer_send (&h);
  toggle_id = g_timeout_add (20, toggle_server_cb, &f->server);
  exo_test_spin (2500);
  g_source_remove (toggle_id);
  h.stop = TRUE;
  g_assert_true (exo_test_spin_until (hammer_idle, &h, bound_ms (10000)));

  g_test_message ("%u GetAll replies, backend transitions: %u, mismatches: %u%s%s", h.replies,
                  f->backend.n_changes, h.mismatches, h.first_mismatch ? "; first: " : "",
                  h.first_mismatch ? h.first_mismatch : "");
  g_assert_cmpuint (f->backend.n_changes, >=, 10);
  g_assert_cmpuint (h.mismatches, ==, 0);
  g_free (h.first_mismatch);
}

/* A backend that is down when exo-node starts does not stop the node: it
 * comes up degraded, the backend is retried with backoff, the consumer
 * (which depends on it) waits, and both are ready once the server is
 * there — nobody types anything. */

/* --- registration ---------------------------------------------------- */

void
test_outage_register_readers (void)
{
  g_test_add ("/outage/readers", Fixture, NULL, fixture_setup, test_readers, fixture_teardown);
}
