/* bench-http.c: the HTTP server under 256 concurrent kept-alive clients.
 *
 *   http_healthcheck_256c  GET /healthcheck, 256 connections each sending
 *                          its next request when the answer arrived; req/s,
 *                          with p50_ms / p99_ms / max_ms of the request
 *                          latency: medians of 3 rounds of 25,600 requests
 *   http_chat_256c         POST /v1/chat/completions (not streamed; the
 *                          dummy engine, 9 tokens, no latency) the same
 *                          way: 5 rounds of 2,560 requests
 *
 * One exo-node from the build tree (engine, http-server, node; no
 * discovery) on a private bus (GTestDBus), with PR_SET_PDEATHSIG.  The
 * client is ours: one thread, poll() over 256 non-blocking sockets on
 * 127.0.0.1, each connection kept alive for all its requests.  Bounded in
 * count (REQUESTS_PER_CONN per connection) and in time (DEADLINE_S).
 *
 * Thread rules: one thread; the daemon is another process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bench.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define N_CONNS     256
#define DEADLINE_S  60
#define CHAT_TOKENS 10   /* the dummy engine's num-generate-tokens: 9 tokens */

/* --- the daemon ----------------------------------------------------------- */

typedef struct {
  GTestDBus   *bus;
  GSubprocess *proc;
  char        *tmpdir;
  char        *config;
  guint16      port;
} BenchNode;

static char *
build_path (const char *relative)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = g_path_get_dirname (self);

  return g_build_filename (dir, "..", "..", relative, NULL);
}

static void
child_setup (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static guint16
free_port (void)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  if (socket == NULL || !g_socket_bind (socket, any, FALSE, NULL))
    g_error ("no free port");
  bound = g_socket_get_local_address (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static int
connect_blocking (guint16 port)
{
  struct sockaddr_in to = { 0 };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;

  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  to.sin_family = AF_INET;
  to.sin_port = htons (port);
  to.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (connect (fd, (struct sockaddr *) &to, sizeof to) != 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

static const char chat_body[] =
  "{\"model\":\"dummy\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";

static char *
chat_request (void)
{
  return g_strdup_printf ("POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\n"
                          "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                          strlen (chat_body), chat_body);
}

/* The status of one request on a fresh connection, 0 if none. */
static guint
probe (guint16     port,
       const char *request)
{
  int fd = connect_blocking (port);
  char buf[4096];
  gssize n;
  struct timeval tv = { 2, 0 };

  if (fd < 0)
    return 0;
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (send (fd, request, strlen (request), MSG_NOSIGNAL) < 0 ||
      (n = recv (fd, buf, sizeof buf - 1, 0)) < 12)
    {
      close (fd);
      return 0;
    }
  close (fd);
  buf[n] = '\0';
  return (guint) g_ascii_strtoull (buf + 9, NULL, 10);
}

static BenchNode *
node_start (void)
{
  BenchNode *n = g_new0 (BenchNode, 1);
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autofree char *exo_node = build_path ("src/daemon/exo-node");
  g_autofree char *plugins = build_path ("plugins");
  g_autofree char *json = NULL;
  g_autofree char *chat = chat_request ();
  g_autoptr(GError) error = NULL;
  gint64 deadline;

  n->tmpdir = g_dir_make_tmp ("exo-bench-http-XXXXXX", NULL);
  n->port = free_port ();
  json = g_strdup_printf (
    "{ \"node\": { \"id\": \"bench-http\" }, \"resources\": ["
    " { \"id\": \"engine\", \"type\": \"dummy-inference\","
    "   \"settings\": { \"num-generate-tokens\": %u } },"
    " { \"id\": \"server\", \"type\": \"http-server\","
    "   \"settings\": { \"port\": %u, \"listen-address\": \"127.0.0.1\" } },"
    " { \"id\": \"node\", \"type\": \"node\", \"depends-on\": [\"engine\", \"server\"],"
    "   \"settings\": { \"node-id\": \"bench-http\", \"discovery\": \"\" } } ] }",
    CHAT_TOKENS, n->port);
  n->config = g_build_filename (n->tmpdir, "node.json", NULL);
  if (!g_file_set_contents (n->config, json, -1, NULL))
    g_error ("cannot write %s", n->config);

  n->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (n->bus);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS",
                                g_test_dbus_get_bus_address (n->bus), TRUE);
  n->proc = g_subprocess_launcher_spawn (launcher, &error, exo_node, "--config", n->config,
                                         "--plugin-dir", plugins, "--bus-name",
                                         "org.exo.Bench.Http", "--session", NULL);
  if (n->proc == NULL)
    g_error ("cannot run %s: %s", exo_node, error->message);

  /* ready when a chat is answered */
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (probe (n->port, chat) != 200)
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("exo-node did not answer a chat within 10 s");
      g_usleep (20 * 1000);
    }
  return n;
}

static void
node_stop (BenchNode *n)
{
  g_subprocess_send_signal (n->proc, SIGTERM);
  if (!g_subprocess_wait (n->proc, NULL, NULL))
    g_subprocess_force_exit (n->proc);
  g_clear_object (&n->proc);
  g_test_dbus_down (n->bus);
  g_clear_object (&n->bus);
  g_remove (n->config);
  g_rmdir (n->tmpdir);
  g_free (n->config);
  g_free (n->tmpdir);
  g_free (n);
}

/* --- the load ------------------------------------------------------------- */

typedef struct {
  int      fd;
  guint    done;         /* requests answered */
  gsize    sent;         /* bytes of the current request written */
  GString *in;
  gint64   started_ns;
} Client;

typedef struct {
  double  req_per_s;
  double  p50_ms;
  double  p99_ms;
  double  max_ms;
  guint64 n;
  guint64 errors;
} LoadResult;

static int
cmp_double (const void *a,
            const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y ? 1 : 0;
}

/* The length of the first complete response in @in, 0 if incomplete. */
static gsize
response_length (GString *in,
                 guint   *status)
{
  const char *end = strstr (in->str, "\r\n\r\n");
  const char *cl;
  gsize len;

  if (end == NULL)
    return 0;
  cl = g_strstr_len (in->str, end - in->str, "Content-Length: ");
  len = (end - in->str) + 4 + (cl != NULL ? g_ascii_strtoull (cl + 16, NULL, 10) : 0);
  if (in->len < len)
    return 0;
  *status = (guint) g_ascii_strtoull (in->str + 9, NULL, 10);
  return len;
}

static LoadResult
run_load (guint16     port,
          const char *request,
          guint       requests_per_conn)
{
  Client clients[N_CONNS];
  struct pollfd fds[N_CONNS];
  gsize request_len = strlen (request);
  GArray *latencies = g_array_sized_new (FALSE, FALSE, sizeof (double),
                                         N_CONNS * requests_per_conn);
  LoadResult r = { 0 };
  gint64 start, deadline;
  guint active = N_CONNS;

  start = bench_now_ns ();
  deadline = start + (gint64) DEADLINE_S * G_GINT64_CONSTANT (1000000000);
  for (guint i = 0; i < N_CONNS; i++)
    {
      Client *c = &clients[i];

      c->fd = connect_blocking (port);
      if (c->fd < 0)
        g_error ("connect: %s", g_strerror (errno));
      g_unix_set_fd_nonblocking (c->fd, TRUE, NULL);
      c->in = g_string_new (NULL);
      c->started_ns = bench_now_ns ();
      c->sent = 0;
      c->done = 0;
    }

  while (active > 0 && bench_now_ns () < deadline)
    {
      for (guint i = 0; i < N_CONNS; i++)
        {
          fds[i].fd = clients[i].done < requests_per_conn ? clients[i].fd : -1;
          fds[i].events = clients[i].sent < request_len ? POLLOUT : POLLIN;
          fds[i].revents = 0;
        }
      if (poll (fds, N_CONNS, 1000) <= 0)
        continue;
      for (guint i = 0; i < N_CONNS; i++)
        {
          Client *c = &clients[i];

          if (fds[i].revents == 0)
            continue;
          if (c->sent < request_len)
            {
              gssize n = send (c->fd, request + c->sent, request_len - c->sent, MSG_NOSIGNAL);

              if (n > 0)
                c->sent += n;
              else if (n < 0 && errno != EAGAIN)
                g_error ("send: %s", g_strerror (errno));
              continue;
            }
          for (;;)
            {
              char buf[16384];
              gssize n = recv (c->fd, buf, sizeof buf, 0);
              guint status = 0;
              gsize len;

              if (n < 0 && errno == EAGAIN)
                break;
              if (n <= 0)
                g_error ("connection %u closed by the server after %u requests", i, c->done);
              g_string_append_len (c->in, buf, n);
              len = response_length (c->in, &status);
              if (len == 0)
                continue;
              {
                double ms = (bench_now_ns () - c->started_ns) / 1e6;

                g_array_append_val (latencies, ms);
              }
              if (status != 200)
                r.errors++;
              g_string_erase (c->in, 0, len);
              c->done++;
              c->sent = 0;
              c->started_ns = bench_now_ns ();
              if (c->done == requests_per_conn)
                active--;
              break;
            }
        }
    }

  r.n = latencies->len;
  r.req_per_s = r.n / ((bench_now_ns () - start) / 1e9);
  if (r.n > 0)
    {
      double *v = (double *) (void *) latencies->data;

      qsort (v, r.n, sizeof (double), cmp_double);
      r.p50_ms = v[r.n / 2];
      r.p99_ms = v[MIN (r.n - 1, (guint64) (r.n * 0.99))];
      r.max_ms = v[r.n - 1];
    }
  for (guint i = 0; i < N_CONNS; i++)
    {
      close (clients[i].fd);
      g_string_free (clients[i].in, TRUE);
    }
  g_array_unref (latencies);
  return r;
}

/* @rounds rounds of @per_conn requests per connection after a warm-up;
 * the medians of the rounds' figures. */
static void
measure (const char *name,
         guint16     port,
         const char *request,
         guint       rounds,
         guint       per_conn)
{
  double rps[8], p50[8], p99[8], max[8];
  guint64 n = 0, errors = 0;
  g_autofree char *extra = NULL;

  g_assert (rounds <= G_N_ELEMENTS (rps));
  run_load (port, request, 2);              /* warm-up */
  for (guint i = 0; i < rounds; i++)
    {
      LoadResult r = run_load (port, request, per_conn);

      rps[i] = r.req_per_s;
      p50[i] = r.p50_ms;
      p99[i] = r.p99_ms;
      max[i] = r.max_ms;
      n += r.n;
      errors += r.errors;
    }
  extra = g_strdup_printf (", \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f, "
                           "\"connections\": %d, \"rounds\": %u, \"errors\": %" G_GUINT64_FORMAT,
                           bench_median (p50, rounds), bench_median (p99, rounds),
                           bench_median (max, rounds), N_CONNS, rounds, errors);
  bench_report (name, bench_median (rps, rounds), "req/s", n, extra);
}

static void
bench_http_healthcheck_256c (void)
{
  BenchNode *n = node_start ();
  static const char request[] = "GET /healthcheck HTTP/1.1\r\nHost: bench\r\n\r\n";

  measure ("http_healthcheck_256c", n->port, request, 3, 100);
  node_stop (n);
}

static void
bench_http_chat_256c (void)
{
  BenchNode *n = node_start ();
  g_autofree char *request = chat_request ();

  measure ("http_chat_256c", n->port, request, 5, 10);
  node_stop (n);
}

const BenchEntry bench_http_entries[] = {
  { "http_healthcheck_256c", bench_http_healthcheck_256c },
  { "http_chat_256c", bench_http_chat_256c },
  { NULL, NULL },
};
