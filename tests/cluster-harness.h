/* cluster-harness.h: three exo-node processes as one cluster, for the
 * cluster tests (test-cluster.c with the dummy engine, test-cluster-llama.c
 * with the llama engine).
 *
 * What it owns: the processes it starts (each with PR_SET_PDEATHSIG, killed
 * at the end and from a crash handler), one private dbus-daemon per
 * cluster, a temporary folder with the configs, logs and the cluster key,
 * and the network namespaces exo-t1..3-PID and exo-tbr-PID (veth pairs on
 * a bridge in the fourth; 10.99.0.x/24 inside them only), removed at the
 * end, from the crash handler, and at the next start if a run died.
 *
 * Thread rules: one thread, the test's; the helpers iterate the default
 * main context only where they say so (wait_exit, async curl).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include <sys/types.h>

G_BEGIN_DECLS

#define N_NODES 3

#define CHECK(cond, ...)                                                        \
  G_STMT_START {                                                                \
    if (!(cond))                                                                \
      {                                                                         \
        g_test_fail_printf (__VA_ARGS__);                                       \
        goto out;                                                               \
      }                                                                         \
  } G_STMT_END

typedef struct {
  char        *id;           /* node-1 … */
  char        *netns;        /* NULL on loopback */
  char        *host;         /* where its server is reached */
  guint16      http_port;
  guint16      udp_port;
  guint64      memory_mib;
  char        *config_path;
  char        *bus_name;
  char        *key_path;     /* its node.cluster-key-file */
  guint16      capture_port; /* also broadcast there (0: no) */
  GSubprocess *proc;
  guint        starts;
  const char  *model;        /* its engine's checkpoint; NULL: the cluster's */
} Node;

typedef struct {
  gboolean         netns;
  char            *tmpdir;
  char            *key_path;     /* the cluster's key */
  GSubprocess     *dbus;
  char            *bus_address;
  GDBusConnection *bus;
  Node             nodes[N_NODES];
  const char      *exo_node;
  const char      *exoctl;
  const char      *plugin_dir;
  const char      *template_name; /* in configs-cluster/; NULL: node.json.in */
  /* for node-llama.json.in; NULL or 0: the shipped exo-fortunes, 64 */
  const char      *model;
  const char      *tokenizer;
  const char      *model_id;
  guint            node_max_tokens;
} Cluster;

/* A curl run in the background (async_curl_done fills it). */
typedef struct {
  GSubprocess *proc;
  gboolean     done;
  char        *out;
  gint64       done_us;
} AsyncCurl;

/* Once, from main(): finds `ip`, names the namespaces after the PID,
 * installs the crash handlers. */
void         harness_init                (void);

/* --- processes --- */
pid_t        subprocess_pid              (GSubprocess         *proc);
void         untrack_pid                 (pid_t                pid);
GSubprocess *spawn                       (const char * const  *argv,
                                          const char          *bus_address,
                                          const char          *log_path,
                                          GSubprocessFlags     flags,
                                          GError             **error);
gboolean     wait_exit                   (GSubprocess         *proc,
                                          guint                timeout_ms);
gboolean     end_process                 (GSubprocess        **proc,
                                          int                  sig,
                                          guint                grace_ms);
char        *run_capture                 (const char * const  *argv,
                                          const char          *bus_address,
                                          int                 *exit_status);
gboolean     run_quiet                   (const char          *cmdline);
void         async_curl_done             (GObject             *source,
                                          GAsyncResult        *result,
                                          gpointer             user_data);

/* --- the cluster --- */
guint16      free_port                   (GSocketType          type);
void         cluster_init                (Cluster             *c,
                                          gboolean             netns);
void         cluster_clear               (Cluster             *c);
gboolean     write_configs               (Cluster             *c,
                                          guint                latency_ms,
                                          guint                num_tokens,
                                          GError             **error);
gboolean     start_bus                   (Cluster             *c,
                                          GError             **error);
gboolean     start_node                  (Cluster             *c,
                                          Node                *n,
                                          GError             **error);

/* --- metrics: D-Bus (polled once a second by the node) and GET /metrics --- */
GVariant    *resource_metrics            (Cluster             *c,
                                          Node                *n,
                                          const char          *id);
gint64       metric                      (GVariant            *metrics,
                                          const char          *key);
gint64       node_metric                 (Cluster             *c,
                                          Node                *n,
                                          const char          *key);
gint64       resource_metric             (Cluster             *c,
                                          Node                *n,
                                          const char          *id,
                                          const char          *key);
gboolean     wait_resource_metric        (Cluster             *c,
                                          Node                *n,
                                          const char          *id,
                                          const char          *key,
                                          gint64               min,
                                          guint                timeout_ms);
gboolean     wait_metric_at_least        (Cluster             *c,
                                          guint                which,
                                          const char          *key,
                                          gint64               min,
                                          guint                timeout_ms);
gint64       live_metric                 (const char          *metrics_text,
                                          const char          *name);
gint64       live_node_metric            (Cluster             *c,
                                          Node                *n,
                                          const char          *name);
double       live_resource_metric_double (Cluster             *c,
                                          Node                *n,
                                          const char          *id,
                                          const char          *name);

/* --- HTTP through curl (inside the node's namespace if it has one) --- */
GPtrArray   *curl_argv                   (Cluster             *c,
                                          Node                *n,
                                          const char          *method,
                                          const char          *path,
                                          const char          *body,
                                          guint                timeout_s);
char        *split_status                (char                *out,
                                          guint               *status);
char        *http                        (Cluster             *c,
                                          Node                *n,
                                          const char          *method,
                                          const char          *path,
                                          const char          *body,
                                          guint               *status);
JsonNode    *parse_json                  (const char          *text);

/* --- the ring --- */
char        *node_ring                   (Cluster             *c,
                                          Node                *n);
gboolean     wait_ring                   (Cluster             *c,
                                          guint                which,
                                          const char          *ring,
                                          guint                timeout_ms,
                                          char               **last);
char        *wait_common_ring            (Cluster             *c,
                                          guint                which,
                                          guint                shards,
                                          guint                timeout_ms);

/* --- network namespaces --- */
/* Makes them; FALSE with the reason (no root, no `ip`, a command that
 * failed) after removing what was made: the caller skips. */
gboolean     netns_begin                 (char               **why);
void         netns_teardown              (void);

/* --- chats in the background (cluster-calls.c) --- */
gboolean     start_curl                  (Cluster             *c,
                                          Node                *n,
                                          const char          *request,
                                          AsyncCurl           *ac,
                                          char               **why);
void         end_curls                   (AsyncCurl           *curls,
                                          guint                n);
gboolean     flow_through                (Cluster             *c,
                                          Node                *api,
                                          Node                *through,
                                          const char          *request,
                                          AsyncCurl           *inflight,
                                          gint64              *base,
                                          gint64              *now,
                                          char               **why);
double       wait_double                 (Cluster             *c,
                                          Node                *n,
                                          const char          *id,
                                          const char          *name,
                                          int                  cmp,
                                          double               value,
                                          guint                timeout_ms);

G_END_DECLS
