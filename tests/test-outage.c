/* test-outage.c: an outage of a backend, end to end.
 *
 * The real exo-node runs a config of two resources from the tcp-backend
 * plugin (tests/outage-plugin/, a plugin written as a third party writes
 * one): `backend`, a TCP connection to a server that this test runs on
 * 127.0.0.1, and `consumer`, which depends on it.  The test kills the server
 * (stops listening and closes its connections), brings it back on the same
 * port, and watches the node from outside, over D-Bus, as an operator does:
 *
 * - /outage/recover: the backend recovers by itself after the server
 *   returns, within its largest restart delay plus one health interval
 *   (with a margin); the consumer is `degraded` once and `ready` once over
 *   the outage; every sample of the backend's properties has
 *   ErrorCount = backend-connect-failures + backend-probe-failures of the
 *   same GetAll.  Then a second outage with a manual Restart while the
 *   server is down, in the middle of the group's own restart of the
 *   backend: the Restart fails, and the backend still recovers by itself.
 * - /outage/readers: the same equality in every one of thousands of GetAll
 *   replies while the backend flaps between ready and degraded
 *   (test-outage-readers.c).
 * - /outage/start-limit: over its own restart limit the backend is given up
 *   (`error`, Result `start-limit-hit`, shown by `exoctl status`), makes no
 *   more attempts when the server is back, and a manual Restart brings it
 *   back.
 *
 * The root group has a restart limit of its own (5 restarts within 10 s,
 * fixed: exo-node's config cannot change it); over it the whole root group
 * enters `error` and supervises nothing any more, whatever the members' own
 * limits say.  The retry policy of /outage/recover lets each initialize
 * retry for 1.15 s, so that each outage takes one or two group restarts; the
 * test checks that the root group never hit its limit.
 *
 * The Fixture, the TCP server and the node over D-Bus are in
 * outage-fixture.c.  One thread: the test's thread-default main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>
#include <string.h>

#include "outage-fixture.h"

/* --- exoctl ------------------------------------------------------------- */

typedef struct
{
  gboolean  done;
  char     *out;
} Communicated;

static void
communicated_cb (GObject *source, GAsyncResult *result, gpointer data)
{
  Communicated *c = data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &c->out, NULL, NULL);
  c->done = TRUE;
}

static gboolean
communicated (gpointer data)
{
  return ((Communicated *) data)->done;
}

static char *
exoctl (Fixture *f, const char *command, const char *arg)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  Communicated c = { FALSE, NULL };

  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", f->bus_address, TRUE);
  g_subprocess_launcher_setenv (launcher, "NO_COLOR", "1", TRUE);
  proc = g_subprocess_launcher_spawn (launcher, &error, f->exoctl, command, arg, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (proc, NULL, NULL, communicated_cb, &c);
  if (!exo_test_spin_until (communicated, &c, bound_ms (10000)))
    {
      g_subprocess_force_exit (proc);
      exo_test_spin_until (communicated, &c, bound_ms (10000));
      g_error ("exoctl %s %s did not finish within %u ms", command, arg, bound_ms (10000));
    }
  g_assert_true (g_subprocess_wait (proc, NULL, NULL));
  return c.out != NULL ? c.out : g_strdup ("");
}

/* --- a D-Bus Restart that the test does not block on -------------------- */

typedef struct
{
  gboolean  done;
  gint64    t_us;
  GError   *error;
} Call;

static void
call_cb (GObject *source, GAsyncResult *result, gpointer data)
{
  Call *call = data;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             &call->error);

  call->t_us = g_get_monotonic_time ();
  call->done = TRUE;
}

static void
restart_async (Fixture *f, Call *call)
{
  memset (call, 0, sizeof *call);
  g_dbus_connection_call (f->c, BUS_NAME, f->backend_path, RESOURCE_IFACE, "Restart", NULL, NULL,
                          G_DBUS_CALL_FLAGS_NONE, (gint) bound_ms (20000), NULL, call_cb, call);
}

/* --- the scenario ------------------------------------------------------- */

typedef gboolean (*Until) (Fixture *f, const Sample *s, gpointer data);

/* Samples the backend every SAMPLE_MS (serving the test's main context in
 * between: the server's accepts, signals, calls) until @until says so or
 * @timeout_ms pass; checks ErrorCount in every sample.  Returns whether
 * @until was met; @last gets the last sample. */
static gboolean
sample_until (Fixture *f, gint64 t0_us, Until until, gpointer data,
              guint timeout_ms, Sample *last)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  for (;;)
    {
      gboolean met;

      sample_clear (last);
      sample_backend (f, t0_us, last);
      check_error_count (f, last);
      met = until != NULL && until (f, last, data);
      if (met || g_get_monotonic_time () >= deadline)
        return met;
      exo_test_spin (MIN (SAMPLE_MS, (deadline - g_get_monotonic_time ()) / 1000 + 1));
    }
}

static gboolean
until_ready (Fixture *f, const Sample *s, gpointer data)
{
  return g_str_equal (s->state, "ready");
}

static gboolean
until_state (Fixture *f, const Sample *s, gpointer data)
{
  return g_str_equal (s->state, data);
}

static gboolean
until_call_done (Fixture *f, const Sample *s, gpointer data)
{
  return ((Call *) data)->done;
}

static gboolean
until_given_up (Fixture *f, const Sample *s, gpointer data)
{
  return g_str_equal (s->state, "error") && g_str_equal (s->result, "start-limit-hit");
}

static gboolean
watch_ready (gpointer data)
{
  Watch *w = data;

  return g_str_has_suffix (w->changes->str, "->ready,");
}

static gboolean
server_accepted (gpointer data)
{
  return ((Server *) data)->accepted > 0;
}

/* The bound of a recovery after the server's return: the largest restart
 * delay, one health interval, and a margin of 2× for a loaded machine. */
static guint
recovery_bound_ms (void)
{
  return bound_ms (2 * (MAX_DELAY_MS + HEALTH_INTERVAL_MS));
}

/* Kills the server for OUTAGE_MS, brings it back and waits for the backend
 * to be ready.  With @manual, a Restart is called on the backend once its
 * State is @manual_when, and the server stays down until it has answered.
 * Returns the recovery time in ms after the server's return. */
static double
outage (Fixture *f, const char *name, Call *manual, const char *manual_when)
{
  g_auto(Sample) s = { 0, };
  gint64 t_kill, t_up;
  double recovery_ms;

  g_string_truncate (f->trace, 0);
  watch_reset (&f->backend);
  watch_reset (&f->consumer);

  server_stop (&f->server);
  t_kill = g_get_monotonic_time ();
  g_string_append_printf (f->trace, "--- %s: server killed\n", name);

  if (manual != NULL)
    {
      g_assert_true (sample_until (f, t_kill, until_state, (gpointer) manual_when,
                                   bound_ms (5000), &s));
      restart_async (f, manual);
      g_string_append_printf (f->trace, "%+7.0f ms  Restart called\n", ms_since (t_kill));
      g_assert_true (sample_until (f, t_kill, until_call_done, manual, bound_ms (20000), &s));
      g_string_append_printf (f->trace, "%+7.0f ms  Restart answered: %s\n", ms_since (t_kill),
                              manual->error != NULL ? manual->error->message : "success");
    }
  sample_until (f, t_kill, NULL, NULL, (guint) MAX (OUTAGE_MS - ms_since (t_kill), 0), &s);
  g_assert_cmpstr (s.state, !=, "ready");

  server_restart (&f->server);
  t_up = g_get_monotonic_time ();
  g_string_append_printf (f->trace, "%+7.0f ms  server back\n", ms_since (t_kill));

  if (!sample_until (f, t_kill, until_ready, NULL, recovery_bound_ms (), &s))
    {
      /* how long it would have taken, for the message */
      sample_until (f, t_kill, until_ready, NULL, bound_ms (10000), &s);
      g_error ("%s: the backend was not ready %u ms after the server's return (%s after %.0f ms)",
               name, recovery_bound_ms (), s.state, ms_since (t_up));
    }
  /* The signal says when it really happened; a sample may come up to
   * SAMPLE_MS later. */
  exo_test_spin_until (watch_ready, &f->backend, 1000);
  recovery_ms = f->backend.last_ready_us != 0 ? (f->backend.last_ready_us - t_up) / 1000.0
                                              : (s.t_us - t_up) / 1000.0;

  /* The consumer is back too, and then nothing flaps. */
  g_assert_true (exo_test_spin_until (watch_ready, &f->consumer, bound_ms (2000)));
  sample_until (f, t_kill, NULL, NULL, 500, &s);
  g_assert_cmpstr (s.state, ==, "ready");
  g_assert_cmpstr (s.result, ==, "success");

  g_test_message ("%s: backend ready %.0f ms after the server's return (bound %u ms); "
                  "server down %.0f ms; backend transitions: %s; connect failures %u, "
                  "probe failures %u",
                  name, recovery_ms, recovery_bound_ms (), (t_up - t_kill) / 1000.0,
                  f->backend.changes->str, s.connect_failures, s.probe_failures);
  if (g_test_verbose ())
    g_test_message ("%s: samples:\n%s", name, f->trace->str);
  return recovery_ms;
}

/* The backend of /outage/recover: degraded after 2 failed checks, restarted
 * by its group after 200 ms degraded; each initialize makes up to 6 attempts
 * 50, 100, 200, 400 and 400 ms apart (1.15 s: an outage takes one or two
 * group restarts, well within the root group's limit), the group's restarts
 * wait 50, 100, 200, 400, 400… ms; after 500 ms ready the backoff starts
 * afresh. */
static const char recover_keys[] =
  "\"health-check-interval-ms\": " G_STRINGIFY (HEALTH_INTERVAL_MS) ", \"unhealthy-threshold\": 2,"
  " \"degraded-restart-ms\": 200, \"backoff-reset-ms\": 500,\n"
  "      \"retry\": { \"max-retries\": 5, \"initial-delay-ms\": 50,"
  " \"max-delay-ms\": " G_STRINGIFY (MAX_DELAY_MS) ", \"multiplier\": 2.0, \"jitter\": \"none\","
  " \"restart-burst\": 20, \"restart-interval-ms\": 10000 }";

static void
test_recover (Fixture *f, gconstpointer data)
{
  g_autofree char *config = NULL;
  g_auto(Sample) s = { 0, };
  Call manual;
  guint root_restarts = 0;
  guint connect_failures, probe_failures;

  if (!have_programs (f))
    return;
  start_bus (f);
  server_start_first (&f->server);
  config = write_config (f, "recover.json", recover_keys);

  /* 1. all ready */
  node_start (f, config);
  sample_until (f, g_get_monotonic_time (), NULL, NULL, 0, &s);
  g_assert_cmpstr (s.state, ==, "ready");
  g_assert_cmpuint (s.error_count, ==, 0);
  /* the backend's connection (the test's main context runs the accepts) */
  g_assert_true (exo_test_spin_until (server_accepted, &f->server, bound_ms (2000)));

  /* 2. an outage: recovery without anyone doing anything */
  outage (f, "outage 1", NULL, NULL);
  sample_until (f, g_get_monotonic_time (), NULL, NULL, 0, &s);
  connect_failures = s.connect_failures;
  probe_failures = s.probe_failures;
  /* it was restarted by its group (failed connects), not only degraded */
  g_assert_cmpuint (connect_failures, >=, 1);
  g_assert_cmpuint (probe_failures, >=, 2);
  g_assert_cmpstr (f->consumer.changes->str, ==, "ready->degraded,degraded->ready,");
  g_assert_false (root_limit_hit (f, &root_restarts));
  g_test_message ("root group restarts after outage 1: %u", root_restarts);

  /* stable for longer than backoff-reset-ms */
  exo_test_spin (600);

  /* 3. a second outage with a manual Restart while the server is down, in
   * the middle of the group's own restart of the backend */
  outage (f, "outage 2 (manual Restart)", &manual, "initializing");
  g_assert_nonnull (manual.error);
  g_test_message ("the manual Restart failed: %s", manual.error->message);
  g_clear_error (&manual.error);
  sample_until (f, g_get_monotonic_time (), NULL, NULL, 0, &s);
  g_assert_cmpuint (s.connect_failures, >, connect_failures);
  g_assert_cmpstr (f->consumer.changes->str, ==, "ready->degraded,degraded->ready,");
  g_assert_false (root_limit_hit (f, &root_restarts));
  g_test_message ("root group restarts after outage 2: %u (exo-node's root has no limit)", root_restarts);
}

static const char limit_keys[] =
  "\"health-check-interval-ms\": " G_STRINGIFY (HEALTH_INTERVAL_MS) ", \"unhealthy-threshold\": 2,"
  " \"degraded-restart-ms\": 200,\n"
  "      \"retry\": { \"max-retries\": 1, \"initial-delay-ms\": 50,"
  " \"max-delay-ms\": " G_STRINGIFY (MAX_DELAY_MS) ", \"multiplier\": 2.0, \"jitter\": \"none\","
  " \"restart-burst\": 2, \"restart-interval-ms\": 60000 }";

static void
test_start_limit (Fixture *f, gconstpointer data)
{
  g_autofree char *config = NULL;
  g_autofree char *status = NULL;
  g_auto(Sample) s = { 0, };
  g_auto(Sample) given_up = { 0, };
  gint64 t_kill, t_up, t_restart;
  guint accepted, root_restarts = 0;
  Call manual;

  if (!have_programs (f))
    return;
  start_bus (f);
  server_start_first (&f->server);
  config = write_config (f, "limit.json", limit_keys);
  node_start (f, config);

  /* a long outage is not given up (test_recover): flapping is.  The
   * backend comes back and fails again; the third restart after it came
   * back, within the interval, is over its limit of 2. */
  t_kill = g_get_monotonic_time ();
  for (guint flap = 0;; flap++)
    {
      g_assert_cmpuint (flap, <, 6);
      server_stop (&f->server);
      g_string_append_printf (f->trace, "%+7.0f ms  --- server killed (flap %u)\n",
                              ms_since (t_kill), flap);
      /* restarted (it left ready for initializing) or given up */
      g_assert_true (sample_until (f, t_kill, until_state, "initializing", bound_ms (3000), &s) ||
                     until_given_up (f, &s, NULL));
      if (until_given_up (f, &s, NULL))
        break;
      server_restart (&f->server);
      g_string_append_printf (f->trace, "%+7.0f ms  server back\n", ms_since (t_kill));
      if (!sample_until (f, t_kill, until_ready, NULL, bound_ms (3000), &s))
        {
          g_assert_true (until_given_up (f, &s, NULL));
          break;
        }
    }
  /* the give-up itself is recorded as an error of the backend: from then
   * on ErrorCount = failures + 1 */
  if (!until_given_up (f, &s, NULL))
    g_assert_true (sample_until (f, t_kill, until_given_up, NULL, bound_ms (3000), &s));
  if (f->server.service != NULL)
    server_stop (&f->server);
  g_test_message ("given up %.0f ms after the server was killed: %s", ms_since (t_kill),
                  s.last_error);
  g_assert_nonnull (strstr (s.last_error, "restarted 2 times"));

  /* it stays given up: no more attempts, also once the server is back */
  sample_until (f, t_kill, NULL, NULL, 300, &given_up);
  server_restart (&f->server);
  t_up = g_get_monotonic_time ();
  accepted = f->server.accepted;
  g_string_append_printf (f->trace, "%+7.0f ms  server back\n", ms_since (t_kill));
  sample_until (f, t_kill, NULL, NULL, recovery_bound_ms (), &s);
  g_assert_cmpstr (s.state, ==, "error");
  g_assert_cmpstr (s.result, ==, "start-limit-hit");
  g_assert_cmpuint (s.connect_failures, ==, given_up.connect_failures);
  g_assert_cmpuint (s.probe_failures, ==, given_up.probe_failures);
  g_assert_cmpuint (s.error_count, ==, given_up.error_count);
  g_assert_cmpuint (f->server.accepted, ==, accepted);
  g_test_message ("nothing happened in the %.0f ms after the server's return", ms_since (t_up));
  g_assert_false (root_limit_hit (f, &root_restarts));
  /* The limit counts flapping only (restarts after the backend came up);
   * on a loaded machine one more restart can find the backend still away,
   * which the supervisor counts and the limit does not.  The give-up above
   * ("restarted 2 times", start-limit-hit) is the limit's own account. */
  g_test_message ("root group restarts: %u", root_restarts);
  g_assert_cmpuint (root_restarts, >=, 2);
  g_assert_cmpuint (root_restarts, <=, 5);

  if (f->exoctl != NULL)
    {
      status = exoctl (f, "status", "backend");
      g_test_message ("exoctl status backend:\n%s", status);
      g_assert_nonnull (strstr (status, "Result"));
      g_assert_nonnull (strstr (status, "start-limit-hit (given up: restart limit hit;"));
    }
  else
    g_test_message ("EXOCTL not set: exoctl status not checked");

  /* a Restart by hand brings it back */
  t_restart = g_get_monotonic_time ();
  restart_async (f, &manual);
  g_assert_true (sample_until (f, t_kill, until_call_done, &manual, bound_ms (10000), &s));
  g_assert_no_error (manual.error);
  g_assert_true (sample_until (f, t_kill, until_ready, NULL, bound_ms (2000), &s));
  g_test_message ("Restart answered %.0f ms after it was called; backend ready after %.0f ms",
                  (manual.t_us - t_restart) / 1000.0, (s.t_us - t_restart) / 1000.0);
  g_assert_cmpstr (s.result, !=, "start-limit-hit");
  g_assert_cmpstr (s.result, ==, "success");
  g_assert_cmpuint (f->server.accepted, >, accepted);
  g_assert_true (exo_test_spin_until (watch_ready, &f->consumer, bound_ms (2000)));
  /* the consumer: exactly one degraded/ready pair per time the backend
   * went away (the two flaps it came back from, and the give-up) */
  g_assert_cmpstr (f->consumer.changes->str, ==,
                   "ready->degraded,degraded->ready,ready->degraded,degraded->ready,"
                   "ready->degraded,degraded->ready,");

  /* ... and supervised again: the next outage restarts it by itself */
  server_stop (&f->server);
  t_kill = g_get_monotonic_time ();
  g_string_append_printf (f->trace, "--- server killed again\n");
  g_assert_true (sample_until (f, t_kill, until_state, "initializing", bound_ms (3000), &s));
  g_assert_cmpstr (s.result, ==, "unhealthy");
  server_restart (&f->server);
  t_up = g_get_monotonic_time ();
  g_string_append_printf (f->trace, "%+7.0f ms  server back\n", ms_since (t_kill));
  g_assert_true (sample_until (f, t_kill, until_ready, NULL, recovery_bound_ms (), &s));
  g_test_message ("supervised again after the Restart: restarted by its group in the next "
                  "outage, ready %.0f ms after the server's return", (s.t_us - t_up) / 1000.0);
  g_assert_false (root_limit_hit (f, &root_restarts));
  if (g_test_verbose ())
    g_test_message ("samples:\n%s", f->trace->str);
}

static char *
resource_state (Fixture *f, const char *path)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) value = NULL;

  reply = g_dbus_connection_call_sync (f->c, BUS_NAME, path, "org.freedesktop.DBus.Properties",
                                       "Get", g_variant_new ("(ss)", "org.exo.Resource1", "State"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, 2000,
                                       NULL, NULL);
  g_assert_nonnull (reply);
  g_variant_get (reply, "(v)", &value);
  return g_variant_dup_string (value, NULL);
}

static void
test_down_at_start (Fixture *f, gconstpointer data)
{
  g_autofree char *config = NULL;
  g_autofree char *consumer = NULL;
  g_autofree char *state = NULL;
  g_auto(Sample) s = { 0, };
  gint64 t_up, deadline;

  if (!have_programs (f))
    return;
  start_bus (f);
  server_start_first (&f->server);   /* picks the port */
  server_stop (&f->server);
  config = write_config (f, "down.json", recover_keys);
  node_start_until (f, config, "degraded");
  consumer = resource_state (f, f->consumer_path);
  g_assert_cmpstr (consumer, ==, "uninitialized");   /* waits for its dependency */

  exo_test_spin (500);
  server_restart (&f->server);
  t_up = g_get_monotonic_time ();
  g_assert_true (sample_until (f, t_up, until_ready, NULL, recovery_bound_ms (), &s));
  g_test_message ("backend ready %.0f ms after the server came up", ms_since (t_up));
  g_assert_true (exo_test_spin_until (watch_ready, &f->consumer, bound_ms (3000)));
  deadline = g_get_monotonic_time () + (gint64) bound_ms (3000) * 1000;
  do
    {
      g_clear_pointer (&state, g_free);
      exo_test_spin (20);
      state = get_node_state (f);
    }
  while (g_strcmp0 (state, "ready") != 0 && g_get_monotonic_time () < deadline);
  g_assert_cmpstr (state, ==, "ready");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/outage/recover", Fixture, NULL, fixture_setup, test_recover, fixture_teardown);
  test_outage_register_readers ();
  g_test_add ("/outage/start-limit", Fixture, NULL, fixture_setup, test_start_limit, fixture_teardown);
  g_test_add ("/outage/down-at-start", Fixture, NULL, fixture_setup, test_down_at_start, fixture_teardown);

  return g_test_run ();
}
