/* node-private.h: what the files of the ExoClusterNode resource share
 * (node.c has the map): the object's structure, a peer (Peer), the
 * Deadline of a call to a peer, and the calls between the files.  Not
 * installed; the node plugin has no GIR.
 *
 * Rules: the same for every file of the node (written out in node.c): the
 * node's main context only, no threads, no locks; an asynchronous call
 * keeps a reference on the node and the generation it started in, and
 * touches the node's running state when it completes only if
 * `self->running && generation == self->generation`.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "node.h"
#include "node-partition.h"
#include "node-topology.h"

#include <json-glib/json-glib.h>
#include <string.h>

G_BEGIN_DECLS

#define LOG_DOMAIN "exo-node-plugin"

/* Requests and results a node keeps at most (a limit on what peers and
 * users can make us hold). */
#define MAX_REQUESTS 4096

typedef struct _Peer       Peer;
typedef struct _FailedPeer FailedPeer;   /* node-peers.c's */
typedef struct _Request    Request;      /* node-requests.c's (below) */

/* The settings are node.c's; each file counts its own work in the
 * metrics.  The tables and the ring belong to the file that says so in its
 * opening comment (peers, failed: node-peers.c; topology, partitions,
 * shards, topology_json, topology_variant: node-ring.c; requests,
 * cancelled: node-requests.c, which node-work.c asks for records).  node.c makes
 * them at initialize and drops them at cleanup: requests and peers
 * through their files (requests_close(), peers_remove_all()), the rest in
 * drop_running_state().  `cancelled` outlives the runs: made at init,
 * freed at finalize. */
struct _ExoClusterNode
{
  ExoManagedResource parent_instance;

  /* settings */
  char         *engine_id;
  char         *server_id;
  char         *discovery_id;
  char         *node_id_setting;
  char         *model_id;
  guint         n_layers;
  guint         topology_interval_ms;
  guint         topology_max_depth;
  guint         peer_timeout_ms;
  guint         request_timeout_ms;
  guint         max_tokens;
  guint         peer_health_interval_ms;
  guint         peer_failure_threshold;
  guint64       device_memory_mib;

  /* running (between initialize and cleanup) */
  char               *node_id;        /* the effective id; kept after cleanup */
  guint               generation;     /* bumped by every initialize and cleanup */
  gboolean            running;
  GCancellable       *cancellable;
  ExoResourceGroup   *group;
  ExoInferenceEngine *engine;
  ExoResource        *server;
  ExoDiscovery       *discovery;
  gulong              found_handler;
  gulong              lost_handler;
  NodeCaps           *caps;
  GHashTable         *peers;          /* node id → Peer */
  GHashTable         *failed;         /* node id → FailedPeer */
  GHashTable         *requests;       /* request id → Request */
  GHashTable         *origins;        /* request id → its API node, for work of others' requests here */
  GHashTable         *cancelled;      /* request ids abandoned (set, ids owned by the queue) */
  GQueue              cancelled_order;/* the same ids, oldest first */
  NodeTopology       *topology;       /* the last merged topology */
  GPtrArray          *partitions;     /* NodePartition, ring order */
  GPtrArray          *shards;         /* NodeShardAssignment, ring order */
  char               *topology_json;  /* the `topology` property; kept after cleanup */
  GVariant           *topology_variant; /* the same for ExoNodeRole.get_topology */
  guint               topology_timer;
  guint               health_timer;
  guint               collect_soon;
  guint               reap_idle;
  guint               engine_idle;    /* engine_back_idle(), node.c */
  gulong              engine_handler; /* notify::state of the engine */
  gboolean            collecting;
  guint               pending_removals;
  GTask              *cleanup_task;
  GType               peer_type;
  gint64              serving_since;  /* Unix seconds: the model's `created` (initialize) */
  gboolean            warned_no_peer_type;
  GError             *peer_type_error;

  /* metrics (kept across restarts) */
  guint64       requests_total;
  guint64       tokens_generated;
  guint64       layers_computed;
  guint64       failed_requests;
  guint64       topology_version;
  guint64       peers_failed;
  guint64       peers_joined;
  guint64       topology_errors;
  guint64       hop_failures;
  guint64       dropped_messages;
  guint64       results_sent;      /* result calls to peers */
  guint64       results_skipped;   /* tokens whose news was the tensor to the API node */
  guint64       failures_reported; /* to API nodes: work of theirs failed here */
  guint64       failures_received; /* from peers: work of our requests failed there */
  guint64       cancels_sent;
  guint64       cancels_received;
  guint64       cancelled_dropped;
  guint64       orphans_ended;     /* requests ended here because their API node went */
  guint         peers_other_model; /* usable peers left out of the ring: another model digest */
  gint64        last_failure_detect_ms;
  char         *last_failed_peer;
};

/* A peer discovery found, with its handle in the group (node-peers.c makes
 * and removes them; the ring and the requests use its handle). */
struct _Peer
{
  guint           ref;
  ExoClusterNode *node;        /* not a reference; NULL once removed */
  char           *node_id;
  char           *address;
  char           *resource_id;
  NodeCaps       *caps;        /* as discovery told */
  ExoResource    *handle;
  gulong          state_handler;
  guint           failures;    /* failed health checks in a row */
  gint64          added_us;
  gint64          unusable_since;
  gint64          last_ok_us;
  gboolean        health_pending;
  gboolean        verifying;
  gboolean        ever_ready;
  GError         *fail_error;  /* set when it is to be failed (by the reaper) */
  char           *warned_digest; /* its model digest we logged as not ours (node-ring.c) */
};

/* The record of a request (node-requests.c keeps them; node-work.c reads
 * and fills those of the requests it works on). */
struct _Request
{
  ExoClusterNode *self;          /* not a reference: the table is the node's */
  char           *id;
  gint64          touched_us;
  GArray         *tokens;        /* gint32: sampled here (last shard) */
  ExoGenerationParams *params;   /* the first ones seen; NULL until then */

  /* the API node */
  gboolean        is_api;
  GTask          *task;
  ExoTokenFunc    on_token;
  gpointer        token_data;
  gsize           delivered;
  GString        *text;          /* decoded; cut before a stop string */
  gsize           sent;          /* bytes of text given to on_token */
  gboolean        stopped;       /* a stop string ended it */
  gboolean        context_full;  /* an engine's max-seq-len ended it ("length") */
  GPtrArray      *ring;          /* NodeShardAssignment: the ring at the start */
  GSource        *timeout;       /* no progress for request-timeout-ms (moved, not remade) */
  guint           cancel_idle;
  guint           context_full_grace;  /* the "length" end, after results in flight */
  GCancellable   *cancellable;
  gulong          cancel_handler;
  gint64          started_us;
  gint64          last_progress_us;
  gint64          prompt_tokens; /* the prompt's tokens; -1 until encoded */
};

/* A GCancellable that fires after @timeout_ms or when @parent fires. */
typedef struct {
  GCancellable *cancellable;
  GCancellable *parent;
  gulong        parent_handler;
  guint         timer;
  gboolean      timed_out;
  guint         timeout_ms;
} Deadline;

static inline const char *
self_id (ExoClusterNode *self)
{
  return exo_resource_get_id (EXO_RESOURCE (self));
}

static inline gboolean
is_cancelled (const GError *error)
{
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* --- node.c: the object, its life, shared helpers ------------------------ */

void       log_event           (ExoClusterNode *self,
                                GLogLevelFlags  level,
                                const char     *format,
                                ...) G_GNUC_PRINTF (3, 4);
gboolean   node_id_is_valid    (const char     *id);
Deadline  *deadline_new        (GCancellable   *parent,
                                guint           timeout_ms);
void       deadline_free       (Deadline       *d);
void       deadline_fix_error  (Deadline       *d,
                                GError        **error,
                                const char     *what);
/* notify::topology and ::topology-changed (topology_json changed). */
void       emit_topology_changed (ExoClusterNode *self);

/* --- node-peers.c: peers, their health, discovery ------------------------ */

Peer      *peer_ref            (Peer           *peer);
void       peer_unref          (Peer           *peer);
void       failed_peer_free    (FailedPeer     *failed);
gboolean   peer_is_usable      (Peer           *peer);
Peer      *lookup_usable_peer  (ExoClusterNode *self,
                                const char     *node_id);
void       peer_set_failed     (ExoClusterNode *self,
                                Peer           *peer,
                                const GError   *error);
void       peer_note_failure   (ExoClusterNode *self,
                                Peer           *peer,
                                const GError   *error);
/* do_cleanup: every peer out of the table, its handle out of the group. */
void       peers_remove_all    (ExoClusterNode *self);
/* The peer handle type: the one a plugin provides for ExoPeerHandle
 * (exo_plugin_lookup_role(); the http-server plugin's). */
GType      node_get_peer_type  (ExoClusterNode *self,
                                GError        **error);
void       discovery_peer_found (ExoDiscovery  *discovery,
                                 const char    *node_id,
                                 const char    *address,
                                 GVariant      *caps,
                                 gpointer       user_data);
void       discovery_peer_lost (ExoDiscovery   *discovery,
                                const char     *node_id,
                                gpointer        user_data);
void       reconcile_discovery (ExoClusterNode *self);
gboolean   health_tick         (gpointer        user_data);

/* --- node-ring.c: the ring, the topology we collect and show ------------- */

void       ring_recompute      (ExoClusterNode *self,
                                const char     *why);
NodeShardAssignment *ring_find (GPtrArray      *ring,
                                const char     *node_id);
ExoShard  *shard_for           (ExoClusterNode            *self,
                                const NodeShardAssignment *s);
GPtrArray *copy_shards         (GPtrArray      *shards);
char      *build_topology_json (ExoClusterNode *self);
/* The topology as JSON (the `topology` property, for D-Bus). */
char      *dup_topology_json   (ExoClusterNode *self);
/* The same as EXO_NODE_ROLE_TOPOLOGY_TYPE (ExoNodeRole.get_topology). */
GVariant  *dup_topology_variant (ExoClusterNode *self);
void       collect_begin       (ExoClusterNode     *self,
                                const char * const *visited,
                                guint               max_depth,
                                guint               timeout_ms,
                                GTask              *task);
void       schedule_collect    (ExoClusterNode *self,
                                guint           delay_ms);
gboolean   topology_tick       (gpointer        user_data);

/* --- node-requests.c: the records of requests and their callers -------- */

void       request_free        (Request        *req);
Request   *request_lookup      (ExoClusterNode *self,
                                const char     *id);
/* The record the last shard keeps its tokens in; NULL over the limit. */
Request   *request_ensure      (ExoClusterNode *self,
                                const char     *id);
/* The parameters @req is generated with: the first ones seen for it. */
const ExoGenerationParams *request_params    (Request                   *req,
                                              const ExoGenerationParams *params);
/* Those of the record of @request_id if this node keeps one, else @params. */
const ExoGenerationParams *params_to_pass_on (ExoClusterNode            *self,
                                              const char                *request_id,
                                              const ExoGenerationParams *params);
/* Tokens generated at most for a request with @params. */
guint      max_tokens_for      (ExoClusterNode            *self,
                                const ExoGenerationParams *params);
/* Takes @req out of the table, then answers its caller with @error (taken). */
void       request_fail        (ExoClusterNode *self,
                                Request        *req,
                                GError         *error);
/* @id is over on this node: the engine frees what it keeps of it. */
void       engine_end_request  (ExoClusterNode *self,
                                const char     *id);
/* chat_async, checked: the API node's record (@task taken), then the
 * prompt into the ring. */
void       request_start       (ExoClusterNode            *self,
                                const char                *id,
                                const char                *prompt,
                                const ExoGenerationParams *params,
                                ExoTokenFunc               on_token,
                                gpointer                   token_data,
                                GCancellable              *cancellable,
                                GTask                     *task);
void       request_cancel_from_peer (ExoClusterNode *self,
                                     const char     *request_id);
gboolean   drop_if_cancelled   (ExoClusterNode *self,
                                const char     *id);
void       origin_free         (gpointer                   data);
void       request_note_origin (ExoClusterNode            *self,
                                const char                *request_id,
                                const ExoGenerationParams *params);
void       end_requests_of (ExoClusterNode *self,
                            const char     *node_id);
/* node-metrics.c */
void       node_collect_metrics    (ExoResource      *resource,
                                    GVariantDict     *metrics);
void       node_add_metric_entries (ExoResourceClass *klass);

void       fail_requests_using (ExoClusterNode *self,
                                const char     *node_id,
                                const GError   *error);
void       requests_gc         (ExoClusterNode *self,
                                gint64          now);
/* do_cleanup: every caller answered, the table gone. */
void       requests_close      (ExoClusterNode *self);
guint      requests_in_flight  (ExoClusterNode *self);
void       handle_result       (ExoClusterNode *self,
                                const char     *request_id,
                                const gint32   *tokens,
                                gsize           n_tokens,
                                gboolean        is_finished);

/* --- node-work.c: the ring at work --------------------------------------- */

void       take_tensor         (ExoClusterNode            *self,
                                const char                *request_id,
                                ExoShard                  *shard,
                                ExoTensor                 *tensor,
                                const ExoGenerationParams *params);
void       run_infer           (ExoClusterNode            *self,
                                const char                *request_id,
                                ExoShard                  *shard,
                                ExoTensor                 *input,
                                const ExoGenerationParams *params);
void       start_prompt        (ExoClusterNode            *self,
                                const char                *request_id,
                                const char                *prompt,
                                const ExoGenerationParams *params);
/* The API node, not the first shard, counts the prompt's tokens. */
void       count_prompt        (ExoClusterNode *self,
                                const char     *id,
                                const char     *prompt);

/* --- node-role.c: ExoNodeRole ------------------------------------------- */

void       exo_cluster_node_role_init (ExoNodeRoleInterface *iface);

G_END_DECLS
