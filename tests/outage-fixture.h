/* outage-fixture.h: what the parts of test-outage share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program is test-outage.c (main(), the outages, the start limit, a
 * backend down at start) and test-outage-readers.c (many readers while the
 * backend flaps), which registers its case through
 * test_outage_register_readers().  outage-fixture.c has the Fixture (a
 * private bus and the real exo-node with the tcp-backend plugin), the TCP
 * server the backend talks to, and the node seen over D-Bus.  One thread:
 * the server, the signal subscriptions and the asynchronous calls all run
 * on the test's thread-default main context, which the helpers spin.
 */
#pragma once

#include "exo-test-util.h"

G_BEGIN_DECLS

#define BUS_NAME      "org.exo.Node1"
#define NODE_PATH     "/org/exo/Node1"
#define RESOURCE_IFACE "org.exo.Resource1"

/* The backend's supervision settings, shared by the configs and the bounds. */
#define HEALTH_INTERVAL_MS   100
#define MAX_DELAY_MS         400
#define OUTAGE_MS            1500
#define SAMPLE_MS            50

typedef struct
{
  GSocketService *service;     /* NULL while down */
  guint16         port;
  GPtrArray      *connections; /* GSocketConnection*, accepted and still open */
  guint           accepted;    /* connections accepted since the test began */
} Server;

typedef struct
{
  char    *id;
  GString *changes;            /* "old->new," per StateChanged, in order */
  guint    n_changes;
  gint64   last_ready_us;      /* monotonic, when "->ready" last arrived */
  guint    subscription;
} Watch;

typedef struct
{
  GSubprocess     *bus;
  char            *bus_address;
  char            *tmpdir;
  const char      *exo_node;
  const char      *plugin_dir;
  const char      *exoctl;
  GSubprocess     *node;
  char            *node_log;
  GDBusConnection *c;
  char            *backend_path;
  char            *consumer_path;
  Server           server;
  Watch            backend;
  Watch            consumer;
  GString         *trace;      /* the samples of the current phase */
  gboolean         given_up;    /* the backend's give-up was seen */
  guint            lagging_samples; /* the plugin one failure ahead (see check_error_count) */
  gboolean         mismatch_reported;
} Fixture;

typedef struct
{
  gint64  t_us;                /* monotonic */
  char   *state;
  char   *result;
  char   *last_error;
  guint   error_count;
  guint   attempts;
  guint   connect_failures;
  guint   probe_failures;
} Sample;

void sample_clear (Sample *s);
guint bound_ms (guint ms);
double ms_since (gint64 t0_us);
void fixture_setup (Fixture *f, gconstpointer data);
char *node_log (Fixture *f);
void fixture_teardown (Fixture *f, gconstpointer data);
gboolean have_programs (Fixture *f);
void start_bus (Fixture *f);
void server_stop (Server *s);
void server_start_first (Server *s);
void server_restart (Server *s);
void watch_reset (Watch *w);
char *write_config (Fixture *f, const char *name, const char *backend_keys);
char *get_node_state (Fixture *f);
void node_start_until (Fixture *f, const char *config, const char *wanted);
void node_start (Fixture *f, const char *config);
guint metric_u (GVariant *props, const char *name);
void sample_backend (Fixture *f, gint64 t0_us, Sample *s);
void check_error_count (Fixture *f, const Sample *s);
gboolean root_limit_hit (Fixture *f, guint *restarts);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Sample, sample_clear)

/* The cases of each part of the program; main() calls these in order. */
void test_outage_register_readers (void);

G_END_DECLS
