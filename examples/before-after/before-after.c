/* before-after.c: the same client written twice, measured under real faults.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * main() picks the role of the process: `--serve` (service.c), `--client`
 * (workload.c), or, by default, the orchestrator that lives here.  The
 * orchestrator starts the service (this program again), puts one
 * fault-injecting proxy (proxy.c) in front of it for each client, starts the
 * two client processes, injects the faults of the schedule (schedule.c) at
 * their times, and when both clients have reported prints the table; with
 * --check it exits 1 unless the claims hold.  A death of the service that is
 * not a scheduled kill (its exit is watched) is reported, counted apart and
 * the service started again; --check fails then, unless it was the one
 * --kill-service-at asked for.  Ctrl-C (SIGINT, SIGTERM) stops the clients
 * early: they report, and the table of the calls made so far is printed.
 * See README.md.
 *
 * One thread, the default main context.  Child processes die with this one
 * (PR_SET_PDEATHSIG); the service is killed at the end.
 */
#include "before-after.h"
#include "client-loc.h"

#include <glib-unix.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#define LISTEN_TRIES_MAX  50      /* a service or proxy that cannot listen, in a row */
#define LISTEN_RETRY_MS   100
#define GRACE_MS          30000   /* beyond the duration, for the clients to report */

enum { BEFORE, AFTER, N_CLIENTS };

static const char *const client_names[N_CLIENTS] = { "before", "after" };

typedef struct
{
  gboolean   ok;          /* exited 0 and reported */
  guint64    attempted;
  guint64    succeeded;
  guint64    connects;
  double     elapsed_ms;
  double     p50_ms;
  double     p99_ms;
  double     max_ms;
  double     stall_ms;
  int        fds_leaked;
  GPtrArray *errors;      /* "COUNT MESSAGE" */
} ClientRun;

typedef struct
{
  /* options */
  guint        duration_ms;
  guint        interval_ms;
  guint32      seed;
  gboolean     check;

  char        *self;       /* this program */
  GArray      *faults;
  GMainLoop   *loop;
  int          status;
  gint64       t0_us;
  GPtrArray   *timers;     /* GSource *, destroyed at the end */

  GSubprocess *service;
  char         service_pid[24];    /* the current one's, kept: it is gone once it is reaped */
  gboolean     service_listening;  /* it said its port */
  gboolean     unscheduled_start;  /* it was started again after an unscheduled death */
  guint16      service_port;
  guint        service_failures;   /* starts in a row that did not listen */
  guint        reopen_failures;    /* the same for the proxies */
  guint        kills;
  guint        restarts;
  guint        deaths;             /* outside the schedule */
  guint        deaths_restarted;
  guint        kill_at_ms;         /* --kill-service-at: one death outside the schedule */
  guint        injected_kills;
  gint64       killed_at_us;
  gboolean     ending;
  gboolean     interrupted;

  FaultProxy  *proxy[N_CLIENTS];
  GSubprocess *client_process[N_CLIENTS];   /* while it runs (client_done_cb has the reference) */
  ClientRun    client[N_CLIENTS];
  guint        n_reported;
} Demo;

typedef struct
{
  Demo        *demo;
  const Fault *fault;
  gboolean     begin;
} FaultEvent;

static void service_start (Demo *demo);

static const char *
plural (guint64 n)
{
  return n == 1 ? "" : "s";
}

static double
since_start_s (Demo *demo)
{
  return demo->t0_us == 0 ? 0 : (g_get_monotonic_time () - demo->t0_us) / 1e6;
}

static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocess *
spawn_self (Demo        *demo,
            const char **args,
            GError     **error)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  g_ptr_array_add (argv, demo->self);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  return g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, error);
}

static void
add_timer (Demo           *demo,
           guint           ms,
           GSourceFunc     func,
           gpointer        data,
           GDestroyNotify  destroy)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, data, destroy);
  g_source_attach (source, NULL);
  g_ptr_array_add (demo->timers, source);
}

static void
fatal (Demo       *demo,
       const char *format,
       ...) G_GNUC_PRINTF (2, 3);

static void
fatal (Demo       *demo,
       const char *format,
       ...)
{
  va_list args;

  va_start (args, format);
  vfprintf (stderr, format, args);
  va_end (args);
  fputc ('\n', stderr);
  demo->status = 2;
  g_main_loop_quit (demo->loop);
}

/* --- the service -------------------------------------------------------- */

/* SIGKILL, as a fault (counted) or at the end. */
static void
service_kill (Demo     *demo,
              gboolean  fault)
{
  if (demo->service == NULL)
    return;
  if (fault && g_subprocess_get_identifier (demo->service) == NULL)
    {
      /* it died by itself, and its exit is not seen yet: a death too */
      demo->deaths++;
      printf ("%7.2f s  kill     service (pid %s) had died already, outside the schedule\n",
              since_start_s (demo), demo->service_pid);
    }
  else if (fault)
    printf ("%7.2f s  kill     service (pid %s) killed\n", since_start_s (demo), demo->service_pid);
  g_subprocess_force_exit (demo->service);
  g_subprocess_wait (demo->service, NULL, NULL);
  g_clear_object (&demo->service);
  demo->unscheduled_start = FALSE;   /* what starts next is the schedule's */
  if (fault)
    {
      demo->kills++;
      demo->killed_at_us = g_get_monotonic_time ();
    }
}

/* The service ended.  Ours to notice when it was not a kill of ours (that
 * one clears demo->service first) and it had said where it listens (before
 * that, service_line_cb sees its output end and starts it again). */
static void
service_exited_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      data)
{
  Demo *demo = data;
  GSubprocess *process = G_SUBPROCESS (source);
  g_autofree char *how = NULL;

  if (!g_subprocess_wait_finish (process, result, NULL)
      || process != demo->service || demo->ending || !demo->service_listening)
    return;
  how = g_subprocess_get_if_signaled (process)
        ? g_strdup_printf ("killed by signal %d", g_subprocess_get_term_sig (process))
        : g_strdup_printf ("exit status %d", g_subprocess_get_exit_status (process));
  demo->deaths++;
  printf ("%7.2f s  death    service (pid %s) died outside the schedule (%s)%s\n",
          since_start_s (demo), demo->service_pid, how,
          demo->interrupted ? "" : "; starting it again");
  fflush (stdout);
  g_clear_object (&demo->service);
  if (demo->interrupted)
    return;
  demo->killed_at_us = g_get_monotonic_time ();
  demo->unscheduled_start = TRUE;
  service_start (demo);
}

static gboolean
service_retry_cb (gpointer data)
{
  service_start (data);
  return G_SOURCE_REMOVE;
}

static void start_clients (Demo *demo);

static void
service_line_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      data)
{
  Demo *demo = data;
  g_autoptr(GSubprocess) process = g_object_get_data (source, "process");   /* our reference */
  g_autofree char *line = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (source),
                                                                result, NULL, NULL);
  guint64 port = 0;

  g_object_unref (source);
  if (process != demo->service || demo->ending)
    return;   /* killed (or the run ended) before it said where it listens */

  if (line == NULL || !g_ascii_string_to_unsigned (line, 10, 1, G_MAXUINT16, &port, NULL))
    {
      /* it exited without listening: its port was taken, say */
      g_clear_object (&demo->service);
      if (++demo->service_failures >= LISTEN_TRIES_MAX)
        fatal (demo, "the service did not start %u times in a row", LISTEN_TRIES_MAX);
      else
        add_timer (demo, LISTEN_RETRY_MS, service_retry_cb, demo, NULL);
      return;
    }
  demo->service_failures = 0;
  demo->service_listening = TRUE;
  if (demo->service_port == 0)
    {
      demo->service_port = port;
      start_clients (demo);
      return;
    }
  if (demo->unscheduled_start)
    demo->deaths_restarted++;
  else
    demo->restarts++;
  printf ("%7.2f s  %-8s service back (pid %s), %.0f ms after the %s\n", since_start_s (demo),
          demo->unscheduled_start ? "death" : "kill", demo->service_pid,
          (g_get_monotonic_time () - demo->killed_at_us) / 1000.0,
          demo->unscheduled_start ? "death" : "kill");
  demo->unscheduled_start = FALSE;
  fflush (stdout);
}

/* Starts the service on its port (any port the first time) and reads the
 * line where it says which. */
static void
service_start (Demo *demo)
{
  g_autofree char *port = g_strdup_printf ("%u", demo->service_port);
  const char *args[] = { "--serve", port, NULL };
  g_autoptr(GError) error = NULL;
  GDataInputStream *out;
  const char *pid;

  if (demo->ending || demo->service != NULL)
    return;
  demo->service = spawn_self (demo, args, &error);
  if (demo->service == NULL)
    {
      fatal (demo, "cannot start the service: %s", error->message);
      return;
    }
  pid = g_subprocess_get_identifier (demo->service);   /* NULL once it is reaped */
  g_strlcpy (demo->service_pid, pid != NULL ? pid : "?", sizeof demo->service_pid);
  demo->service_listening = FALSE;
  g_subprocess_wait_async (demo->service, NULL, service_exited_cb, demo);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (demo->service));
  g_object_set_data (G_OBJECT (out), "process", g_object_ref (demo->service));
  g_data_input_stream_read_line_async (out, G_PRIORITY_DEFAULT, NULL, service_line_cb, demo);
}

/* --- faults ------------------------------------------------------------- */

static gboolean
reopen_cb (gpointer data)
{
  Demo *demo = data;
  g_autoptr(GError) error = NULL;

  for (int i = 0; i < N_CLIENTS; i++)
    if (!fault_proxy_set_refusing (demo->proxy[i], FALSE, &error))
      {
        printf ("%7.2f s  refuse   a proxy cannot listen again yet: %s\n",
                since_start_s (demo), error->message);
        if (++demo->reopen_failures >= LISTEN_TRIES_MAX)
          fatal (demo, "a proxy could not listen again %u times in a row", LISTEN_TRIES_MAX);
        else
          add_timer (demo, LISTEN_RETRY_MS, reopen_cb, demo, NULL);
        return G_SOURCE_REMOVE;
      }
  demo->reopen_failures = 0;
  printf ("%7.2f s  refuse   proxies accept again\n", since_start_s (demo));
  return G_SOURCE_REMOVE;
}

static gboolean
fault_cb (gpointer data)
{
  FaultEvent *event = data;
  Demo *demo = event->demo;
  const Fault *fault = event->fault;

  switch (fault->kind)
    {
    case FAULT_KILL:
      if (event->begin)
        service_kill (demo, TRUE);
      else
        service_start (demo);
      break;
    case FAULT_RESET:
      for (int i = 0; i < N_CLIENTS; i++)
        fault_proxy_reset_next (demo->proxy[i], fault->amount);
      printf ("%7.2f s  reset    %u more request%s through each proxy will be reset\n",
              since_start_s (demo), fault->amount, fault->amount == 1 ? "" : "s");
      break;
    case FAULT_LATENCY:
      for (int i = 0; i < N_CLIENTS; i++)
        fault_proxy_set_delay (demo->proxy[i], event->begin ? fault->amount : 0);
      printf ("%7.2f s  latency  %u ms each way\n", since_start_s (demo),
              event->begin ? fault->amount : 0);
      break;
    case FAULT_REFUSE:
      if (!event->begin)
        return reopen_cb (demo);
      for (int i = 0; i < N_CLIENTS; i++)
        fault_proxy_set_refusing (demo->proxy[i], TRUE, NULL);
      printf ("%7.2f s  refuse   proxies closed their connections and refuse\n",
              since_start_s (demo));
      break;
    case N_FAULT_KINDS:
    default:
      g_assert_not_reached ();
    }
  fflush (stdout);
  return G_SOURCE_REMOVE;
}

static void
schedule_faults (Demo *demo)
{
  for (guint i = 0; i < demo->faults->len; i++)
    {
      const Fault *fault = &g_array_index (demo->faults, Fault, i);

      for (int begin = 1; begin >= 0; begin--)
        {
          FaultEvent *event = g_new0 (FaultEvent, 1);

          event->demo = demo;
          event->fault = fault;
          event->begin = begin;
          add_timer (demo, fault->at_ms + (begin ? 0 : fault->length_ms), fault_cb, event, g_free);
          if (fault->kind == FAULT_RESET)
            break;   /* it has no end */
        }
    }
}

/* --kill-service-at: one SIGKILL the orchestrator does not account for,
 * as `kill -9` from outside would; once the service listens. */
static gboolean
kill_service_cb (gpointer data)
{
  Demo *demo = data;

  if (demo->service == NULL || !demo->service_listening)
    return G_SOURCE_CONTINUE;   /* down (a scheduled kill), or starting: a moment later */
  printf ("%7.2f s  death    sending SIGKILL to the service (pid %s), outside the schedule "
          "(--kill-service-at)\n", since_start_s (demo), demo->service_pid);
  fflush (stdout);
  g_subprocess_send_signal (demo->service, SIGKILL);
  demo->injected_kills++;
  return G_SOURCE_REMOVE;
}

static gboolean
kill_service_at_cb (gpointer data)
{
  Demo *demo = data;

  if (kill_service_cb (demo) == G_SOURCE_CONTINUE)
    add_timer (demo, 50, kill_service_cb, demo, NULL);
  return G_SOURCE_REMOVE;
}

/* --- the clients -------------------------------------------------------- */

typedef struct
{
  Demo *demo;
  int   index;
} ClientRef;

static void finish_run (Demo *demo);

/* Reads the ERROR and RESULT lines of a client process (workload.c). */
static gboolean
parse_report (ClientRun  *run,
              const char *output)
{
  g_auto(GStrv) lines = g_strsplit (output != NULL ? output : "", "\n", -1);
  gboolean have_result = FALSE;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) fields = NULL;

      if (g_str_has_prefix (lines[i], "ERROR "))
        {
          g_ptr_array_add (run->errors, g_strdup (lines[i] + 6));
          continue;
        }
      if (!g_str_has_prefix (lines[i], "RESULT "))
        continue;
      have_result = TRUE;
      fields = g_strsplit (lines[i] + 7, " ", -1);
      for (guint j = 0; fields[j] != NULL; j++)
        {
          const char *eq = strchr (fields[j], '=');
          g_autofree char *key = eq ? g_strndup (fields[j], eq - fields[j]) : NULL;
          const char *value = eq ? eq + 1 : NULL;

          if (key == NULL)
            continue;
          if (g_str_equal (key, "attempted"))
            run->attempted = g_ascii_strtoull (value, NULL, 10);
          else if (g_str_equal (key, "succeeded"))
            run->succeeded = g_ascii_strtoull (value, NULL, 10);
          else if (g_str_equal (key, "connects"))
            run->connects = g_ascii_strtoull (value, NULL, 10);
          else if (g_str_equal (key, "elapsed_ms"))
            run->elapsed_ms = g_ascii_strtod (value, NULL);
          else if (g_str_equal (key, "p50_ms"))
            run->p50_ms = g_ascii_strtod (value, NULL);
          else if (g_str_equal (key, "p99_ms"))
            run->p99_ms = g_ascii_strtod (value, NULL);
          else if (g_str_equal (key, "max_ms"))
            run->max_ms = g_ascii_strtod (value, NULL);
          else if (g_str_equal (key, "stall_ms"))
            run->stall_ms = g_ascii_strtod (value, NULL);
          else if (g_str_equal (key, "fds_leaked"))
            run->fds_leaked = (int) g_ascii_strtoll (value, NULL, 10);
        }
    }
  return have_result && run->succeeded <= run->attempted;
}

static void
client_done_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      data)
{
  ClientRef *ref = data;
  Demo *demo = ref->demo;
  ClientRun *run = &demo->client[ref->index];
  GSubprocess *process = G_SUBPROCESS (source);
  g_autofree char *output = NULL;
  g_autoptr(GError) error = NULL;

  if (!g_subprocess_communicate_utf8_finish (process, result, &output, NULL, &error))
    fprintf (stderr, "client '%s': %s\n", client_names[ref->index], error->message);
  else if (!g_subprocess_get_successful (process))
    fprintf (stderr, "client '%s' failed (exit status %d)\n", client_names[ref->index],
             g_subprocess_get_status (process));
  else if (!parse_report (run, output))
    fprintf (stderr, "client '%s' did not report\n", client_names[ref->index]);
  else
    run->ok = TRUE;

  printf ("%7.2f s  client   %s done\n", since_start_s (demo), client_names[ref->index]);
  demo->client_process[ref->index] = NULL;
  g_free (ref);
  g_object_unref (process);
  if (++demo->n_reported == N_CLIENTS)
    finish_run (demo);
}

static gboolean
watchdog_cb (gpointer data)
{
  fatal (data, "the clients did not report within %u ms after the end", GRACE_MS);
  return G_SOURCE_REMOVE;
}

static void
start_clients (Demo *demo)
{
  g_autofree char *duration = g_strdup_printf ("%u", demo->duration_ms);
  g_autofree char *interval = g_strdup_printf ("%u", demo->interval_ms);
  g_autofree char *seed = g_strdup_printf ("%" G_GUINT32_FORMAT, demo->seed);
  g_autoptr(GError) error = NULL;

  for (int i = 0; i < N_CLIENTS; i++)
    {
      demo->proxy[i] = fault_proxy_new (demo->service_port, &error);
      if (demo->proxy[i] == NULL)
        {
          fatal (demo, "cannot start a proxy: %s", error->message);
          return;
        }
    }
  printf ("service on 127.0.0.1:%u (pid %s); proxies on :%u (before) and :%u (after)\n",
          demo->service_port, demo->service_pid,
          fault_proxy_get_port (demo->proxy[BEFORE]), fault_proxy_get_port (demo->proxy[AFTER]));

  demo->t0_us = g_get_monotonic_time ();
  for (int i = 0; i < N_CLIENTS; i++)
    {
      g_autofree char *address = g_strdup_printf ("127.0.0.1:%u", fault_proxy_get_port (demo->proxy[i]));
      const char *args[] = { "--client", client_names[i], address, duration, interval, seed, NULL };
      GSubprocess *process = spawn_self (demo, args, &error);
      ClientRef *ref;

      if (process == NULL)
        {
          fatal (demo, "cannot start the %s client: %s", client_names[i], error->message);
          return;
        }
      ref = g_new0 (ClientRef, 1);
      ref->demo = demo;
      ref->index = i;
      demo->client_process[i] = process;
      g_subprocess_communicate_utf8_async (process, NULL, NULL, client_done_cb, ref);
    }
  printf ("%7.2f s  client   before and after started\n", since_start_s (demo));
  fflush (stdout);
  schedule_faults (demo);
  if (demo->kill_at_ms > 0)
    add_timer (demo, demo->kill_at_ms, kill_service_at_cb, demo, NULL);
  add_timer (demo, demo->duration_ms + GRACE_MS, watchdog_cb, demo, NULL);
}

/* --- the table ---------------------------------------------------------- */

static double
success_rate (const ClientRun *run)
{
  return run->attempted > 0 ? 100.0 * run->succeeded / run->attempted : 0;
}

static void
print_row (const char *label,
           int         decimals,
           double      before,
           double      after)
{
  printf ("  %-34s %12.*f %12.*f\n", label, decimals, before, decimals, after);
}

static void
print_table (Demo *demo)
{
  const ClientRun *b = &demo->client[BEFORE], *a = &demo->client[AFTER];

  printf ("\n  %-34s %12s %12s\n", "", "before", "after");
  print_row ("calls attempted", 0, b->attempted, a->attempted);
  print_row ("calls succeeded", 0, b->succeeded, a->succeeded);
  print_row ("calls failed", 0, b->attempted - b->succeeded, a->attempted - a->succeeded);
  print_row ("success rate (%)", 2, success_rate (b), success_rate (a));
  print_row ("calls per second", 1, b->attempted / (b->elapsed_ms / 1000),
             a->attempted / (a->elapsed_ms / 1000));
  print_row ("successful calls per second", 1, b->succeeded / (b->elapsed_ms / 1000),
             a->succeeded / (a->elapsed_ms / 1000));
  print_row ("latency p50 (ms)", 2, b->p50_ms, a->p50_ms);
  print_row ("latency p99 (ms)", 2, b->p99_ms, a->p99_ms);
  print_row ("latency max (ms)", 2, b->max_ms, a->max_ms);
  print_row ("connection attempts (client)", 0, b->connects, a->connects);
  print_row ("connections accepted (proxy)", 0,
             fault_proxy_get_accepted (demo->proxy[BEFORE]),
             fault_proxy_get_accepted (demo->proxy[AFTER]));
  print_row ("requests reset (proxy)", 0, fault_proxy_get_resets (demo->proxy[BEFORE]),
             fault_proxy_get_resets (demo->proxy[AFTER]));
  print_row ("longest stall of the caller (ms)", 1, b->stall_ms, a->stall_ms);
  print_row ("file descriptors left open", 0, b->fds_leaked, a->fds_leaked);
  print_row ("lines of code (client-*.c)", 0, CLIENT_BEFORE_LOC, CLIENT_AFTER_LOC);

  for (int i = 0; i < N_CLIENTS; i++)
    {
      const ClientRun *run = &demo->client[i];

      if (run->errors->len > 0)
        printf ("\n  why calls of the %s client failed:\n", client_names[i]);
      for (guint j = 0; j < run->errors->len; j++)
        printf ("    %s\n", (const char *) g_ptr_array_index (run->errors, j));
    }
}

/* The claims of --check; returns whether they all hold. */
static gboolean
check_claims (Demo *demo)
{
  const ClientRun *b = &demo->client[BEFORE], *a = &demo->client[AFTER];
  guint kills = 0, resets = 0;
  gboolean ok = TRUE;

  for (guint i = 0; i < demo->faults->len; i++)
    {
      const Fault *fault = &g_array_index (demo->faults, Fault, i);

      kills += fault->kind == FAULT_KILL;
      resets += fault->kind == FAULT_RESET ? fault->amount : 0;
    }

  printf ("\ncheck:\n");
#define CLAIM(cond, ...) G_STMT_START {                        \
    gboolean holds_ = (cond);                                  \
    printf ("  %s ", holds_ ? "yes:" : "NO: ");                \
    printf (__VA_ARGS__);                                      \
    printf ("\n");                                             \
    ok = ok && holds_;                                         \
  } G_STMT_END
  CLAIM (b->ok && a->ok && b->attempted > 0 && a->attempted > 0,
         "both clients ran and reported (%" G_GUINT64_FORMAT " and %" G_GUINT64_FORMAT " calls)",
         b->attempted, a->attempted);
  CLAIM (demo->kills == kills && demo->restarts == kills,
         "the service was killed %u time%s and came back %u time%s (scheduled: %u)",
         demo->kills, plural (demo->kills), demo->restarts, plural (demo->restarts), kills);
  CLAIM (demo->deaths == demo->injected_kills && demo->deaths_restarted == demo->deaths,
         "the service died %u time%s outside the schedule (%u asked for with --kill-service-at) "
         "and came back %u time%s%s", demo->deaths, plural (demo->deaths), demo->injected_kills,
         demo->deaths_restarted, plural (demo->deaths_restarted),
         demo->deaths > demo->injected_kills ? ": the fault schedule was disturbed" : "");
  CLAIM (fault_proxy_get_resets (demo->proxy[BEFORE]) == resets &&
         fault_proxy_get_resets (demo->proxy[AFTER]) == resets,
         "each proxy reset the %u requests scheduled (before: %u, after: %u)", resets,
         fault_proxy_get_resets (demo->proxy[BEFORE]), fault_proxy_get_resets (demo->proxy[AFTER]));
  CLAIM (success_rate (a) > success_rate (b),
         "the after client has the higher success rate (%.2f %% against %.2f %%)",
         success_rate (a), success_rate (b));
  CLAIM (a->fds_leaked == 0, "the after client left no file descriptor open (%d)", a->fds_leaked);
#undef CLAIM
  return ok;
}

static void
finish_run (Demo *demo)
{
  demo->ending = TRUE;
  g_ptr_array_set_size (demo->timers, 0);   /* faults still to come, the watchdog */
  service_kill (demo, FALSE);
  if (!demo->client[BEFORE].ok || !demo->client[AFTER].ok)
    demo->status = 2;
  else
    {
      print_table (demo);
      if (demo->interrupted)
        {
          printf ("\ninterrupted: the table counts the calls made until then%s\n",
                  demo->check ? "; the claims are not checked" : "");
          demo->status = 130;
        }
      else if (demo->check && !check_claims (demo))
        demo->status = 1;
    }
  fflush (stdout);
  g_main_loop_quit (demo->loop);
}

/* --- main --------------------------------------------------------------- */

/* Ctrl-C: the clients stop early and report; the table of what they did
 * is printed (finish_run). */
static gboolean
interrupt_cb (gpointer data)
{
  Demo *demo = data;
  gboolean running = FALSE;

  if (demo->interrupted || demo->ending)
    return G_SOURCE_CONTINUE;
  demo->interrupted = TRUE;
  g_ptr_array_set_size (demo->timers, 0);   /* the faults still to come, the watchdog */
  for (int i = 0; i < N_CLIENTS; i++)
    if (demo->client_process[i] != NULL)
      {
        g_subprocess_send_signal (demo->client_process[i], SIGINT);
        running = TRUE;
      }
  printf ("%7.2f s  interrupted%s\n", since_start_s (demo),
          running ? ": the clients stop and report" : "");
  fflush (stdout);
  if (!running && demo->n_reported == 0)
    {
      demo->status = 130;   /* before the clients started */
      g_main_loop_quit (demo->loop);
    }
  else
    add_timer (demo, GRACE_MS, watchdog_cb, demo, NULL);
  return G_SOURCE_CONTINUE;
}

static void
timer_free (gpointer data)
{
  g_source_destroy (data);
  g_source_unref (data);
}

static gboolean
parse_uint (const char *text,
            guint64     max,
            guint64    *value)
{
  return g_ascii_string_to_unsigned (text, 10, 0, max, value, NULL);
}

static int
internal_main (int    argc,
               char **argv)
{
  guint64 port, duration, interval, seed;

  if (g_str_equal (argv[1], "--serve") && argc == 3 && parse_uint (argv[2], G_MAXUINT16, &port))
    return service_main (port);
  if (g_str_equal (argv[1], "--client") && argc == 7 &&
      (g_str_equal (argv[2], "before") || g_str_equal (argv[2], "after")) &&
      parse_uint (argv[4], 3600 * 1000, &duration) &&
      parse_uint (argv[5], 60 * 1000, &interval) && interval > 0 &&
      parse_uint (argv[6], G_MAXUINT32, &seed))
    return workload_main (argv[2], argv[3], duration, interval, seed);
  fprintf (stderr, "usage: %s --serve PORT | --client before|after ADDRESS DURATION_MS INTERVAL_MS SEED\n"
           "(both are started by the example itself)\n", argv[0]);
  return 2;
}

int
main (int    argc,
      char **argv)
{
  double duration_s = 20;
  int every_ms = 1500, interval_ms = 10, kill_at_ms = 0;
  g_autofree char *seed_text = NULL;
  g_autofree char *faults_text = NULL;
  gboolean schedule_only = FALSE, check = FALSE;
  GOptionEntry entries[] = {
    { "duration", 'd', 0, G_OPTION_ARG_DOUBLE, &duration_s,
      "How long the clients run (default 20, at most 3600)", "SECONDS" },
    { "seed", 's', 0, G_OPTION_ARG_STRING, &seed_text,
      "Seed of the fault schedule (default: a random one, printed)", "N" },
    { "faults", 'f', 0, G_OPTION_ARG_STRING, &faults_text,
      "Which faults: a list of kill, reset, latency, refuse, or all (the default)", "LIST" },
    { "fault-every", 'e', 0, G_OPTION_ARG_INT, &every_ms,
      "Mean time from the end of a fault to the next (default 1500)", "MS" },
    { "interval", 'i', 0, G_OPTION_ARG_INT, &interval_ms,
      "Time between the calls of each client (default 10)", "MS" },
    { "kill-service-at", 0, 0, G_OPTION_ARG_INT, &kill_at_ms,
      "Also SIGKILL the service once at MS, outside the schedule, as `kill -9` from "
      "outside would (--check expects that one death)", "MS" },
    { "schedule-only", 0, 0, G_OPTION_ARG_NONE, &schedule_only,
      "Print the fault schedule and exit", NULL },
    { "check", 0, 0, G_OPTION_ARG_NONE, &check,
      "Exit 1 unless the faults happened, the after client succeeded more often "
      "and left no file descriptor open", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  guint kinds = FAULT_KINDS_ALL;
  guint64 seed;
  guint sigint_id, sigterm_id;
  Demo demo = { 0, };

  if (argc >= 2 && (g_str_equal (argv[1], "--serve") || g_str_equal (argv[1], "--client")))
    return internal_main (argc, argv);

  context = g_option_context_new ("- the same client written twice, under real faults");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return 2;
    }
  if (argc > 1)
    {
      fprintf (stderr, "unexpected argument '%s' (see --help)\n", argv[1]);
      return 2;
    }
  if (!(duration_s >= 1 && duration_s <= 3600))
    {
      fprintf (stderr, "--duration: %g is out of range: 1 to 3600 s\n", duration_s);
      return 2;
    }
  if (every_ms < 100 || every_ms > 600000)
    {
      fprintf (stderr, "--fault-every: %d is out of range: 100 to 600000 ms\n", every_ms);
      return 2;
    }
  if (interval_ms < 1 || interval_ms > 60000)
    {
      fprintf (stderr, "--interval: %d is out of range: 1 to 60000 ms\n", interval_ms);
      return 2;
    }
  if (kill_at_ms < 0 || kill_at_ms >= duration_s * 1000)
    {
      fprintf (stderr, "--kill-service-at: %d is out of range: 0 (never) to the duration, in ms\n",
               kill_at_ms);
      return 2;
    }
  if (faults_text != NULL && !fault_kinds_parse (faults_text, &kinds, &error))
    {
      fprintf (stderr, "--faults: %s\n", error->message);
      return 2;
    }
  if (seed_text == NULL)
    seed = g_random_int ();
  else if (!parse_uint (seed_text, G_MAXUINT32, &seed))
    {
      fprintf (stderr, "--seed: '%s' is not a number from 0 to %u\n", seed_text, G_MAXUINT32);
      return 2;
    }

  demo.duration_ms = (guint) lround (duration_s * 1000);
  demo.interval_ms = interval_ms;
  demo.kill_at_ms = kill_at_ms;
  demo.seed = seed;
  demo.check = check;
  demo.faults = fault_schedule_new (seed, demo.duration_ms, every_ms, kinds);

  printf ("before/after: seed %" G_GUINT32_FORMAT ", %.1f s, one call every %d ms per client\n"
          "fault schedule (%u fault%s):\n", demo.seed, demo.duration_ms / 1000.0, interval_ms,
          demo.faults->len, plural (demo.faults->len));
  for (guint i = 0; i < demo.faults->len; i++)
    {
      const Fault *fault = &g_array_index (demo.faults, Fault, i);
      g_autofree char *text = fault_describe (fault);

      printf ("%7.2f s  %-8s %s\n", fault->at_ms / 1000.0, fault_kind_to_string (fault->kind), text);
    }
  fflush (stdout);
  if (schedule_only)
    {
      g_array_unref (demo.faults);
      return 0;
    }

  demo.self = g_file_read_link ("/proc/self/exe", NULL);
  if (demo.self == NULL)
    demo.self = g_strdup (argv[0]);
  demo.loop = g_main_loop_new (NULL, FALSE);
  demo.timers = g_ptr_array_new_with_free_func (timer_free);
  for (int i = 0; i < N_CLIENTS; i++)
    demo.client[i].errors = g_ptr_array_new_with_free_func (g_free);

  sigint_id = g_unix_signal_add (SIGINT, interrupt_cb, &demo);
  sigterm_id = g_unix_signal_add (SIGTERM, interrupt_cb, &demo);

  printf ("\n");
  service_start (&demo);
  if (demo.status == 0)
    g_main_loop_run (demo.loop);

  demo.ending = TRUE;
  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);
  service_kill (&demo, FALSE);
  g_ptr_array_unref (demo.timers);
  for (int i = 0; i < N_CLIENTS; i++)
    {
      g_clear_pointer (&demo.proxy[i], fault_proxy_free);
      g_ptr_array_unref (demo.client[i].errors);
    }
  g_main_loop_unref (demo.loop);
  g_array_unref (demo.faults);
  g_free (demo.self);
  return demo.status;
}
