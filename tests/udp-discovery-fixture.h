/* udp-discovery-fixture.h: what the parts of test-udp-discovery share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program is test-udp-discovery.c (main(), loading the plugin, the
 * settings cases) and test-udp-discovery-{find,auth,static}.c; each part
 * registers its cases through the test_discovery_register_*() function
 * below.  udp-discovery-fixture.c has the nodes (discovery resources on
 * 127.0.0.1), the plain UDP Sender, the log capture and the waits.  main()
 * sets the globals below before any case runs; everything runs in the
 * test's thread on its thread-default main context.
 */
#pragma once

#include "exo-test-util.h"

G_BEGIN_DECLS

/* The longest node id the plugin accepts (docs/cluster-protocol.md). */
#define UDP_DISCOVERY_TEST_MAX_ID 128

typedef struct {
  ExoResource *resource;
  char        *node_id;
  guint16      port;
  guint16      server_port;
  GHashTable  *peers;        /* id → address, as the signals told */
  GHashTable  *caps;         /* id → GVariant a{sv} */
  guint        found;        /* peer-found emissions */
  guint        lost;         /* peer-lost emissions */
  gint64       last_lost_at;
} Node;

typedef struct {
  GSocket *socket;
  guint16  port;
  char    *ip;
} Sender;

extern GType discovery_type;
extern ExoClusterKey *test_key;   /* the cluster key of every node here */
extern guint interval_ms;     /* broadcast-interval-ms of the nodes */
extern guint timeout_ms;      /* peer-timeout-ms of the nodes */
extern guint wait_ms;         /* upper bound of any wait */
extern GPtrArray *plugin_log;

GLogWriterOutput capture_writer (GLogLevelFlags   log_level,
                                 const GLogField *fields,
                                 gsize            n_fields,
                                 gpointer         user_data);
void discard_log (const char     *log_domain,
                  GLogLevelFlags  log_level,
                  const char     *message,
                  gpointer        user_data);
gboolean log_contains (const char *needle);
guint16 free_udp_port (void);
guint64 metric_u64 (ExoResource *resource,
                    const char  *key);
guint metric_u32 (ExoResource *resource,
                  const char  *key);
char *metric_str (ExoResource *resource,
                  const char  *key);
char **loopback_targets (const guint16 *ports,
                         guint          n);
Node *node_new (const char         *node_id,
                guint16             port,
                const char * const *targets,
                const char         *first_property,
                ...);
void node_start (Node *node);
void node_free (Node *node);
char *expected_address (Node *peer);
void assert_mesh (Node   **nodes,
                  guint    n,
                  gboolean fresh);
Sender *sender_new (const char *ip,
                    guint16     port);
void sender_send_raw (Sender     *sender,
                      guint16     port,
                      const void *data,
                      gsize       length);
char *seal (ExoClusterKey *key,
            const void    *data,
            gsize          length,
            const char    *addresses,
            gint64         ts_us,
            gsize         *out_length);
void sender_send (Sender     *sender,
                  guint16     port,
                  const void *data,
                  gsize       length);
void sender_send_string (Sender     *sender,
                         guint16     port,
                         const char *text);
void sender_free (Sender *sender);
char *exo_message (const char *node_id,
                   guint       grpc_port,
                   const char *instance_id,
                   gint        priority);
gboolean wait_metric (ExoResource *resource,
                      const char  *key,
                      guint64      at_least);
gboolean wait_peer (Node       *node,
                    const char *peer_id,
                    const char *address,
                    gboolean    present);

/* The cases of each part of the program; main() calls these in order. */
void test_discovery_register_find (void);
void test_discovery_register_auth (void);
void test_discovery_register_static (void);

G_END_DECLS
