/* exo-resource-group-private.h: what the files of ExoResourceGroup share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Not installed and not given to g-ir-scanner.  It holds the instance
 * private struct, the Member, Run, Op, Job and MemberEvent records, the
 * small member helpers (static inline, as they were inlined when the group
 * was one file), and the functions one file of the group calls in another.
 *
 * The group's files:
 *
 *   exo-resource-group.c             the GObject: properties and public
 *                                    getters, the signals, the strategy
 *                                    enum, reset, metrics, dispose and
 *                                    finalize
 *   exo-resource-group-members.c     membership: add, add_dependency,
 *                                    remove, lookup, the by-name set, the
 *                                    Member record's life
 *   exo-resource-group-plan.c        the dependency graph: edges, the
 *                                    topological order, cycle and unknown-
 *                                    dependency errors, the graph queries
 *   exo-resource-group-run.c         runs: ordered initialize and cleanup
 *                                    batches, max-parallel, rollback of a
 *                                    doomed run, the per-member init
 *                                    waiters; the group's initialize and
 *                                    cleanup
 *   exo-resource-group-supervisor.c  the member event queue, restarts and
 *                                    their limits and escalation, degraded
 *                                    timers, the health pass, keep-going
 *
 * The rules, for all of them:
 *
 * - A group lives in one main context (exo_resource_get_context()): every
 *   function here, every source and every callback runs there.  There is
 *   no lock; no other thread touches the group.
 * - No callbacks into other objects from inside a signal emission (see
 *   docs/architecture.md, "No callbacks from inside an emission").  A
 *   member's transitions reach the group through
 *   _exo_resource_group_member_state_changed(), called by ExoResource after
 *   every handler, inside the emission: it only updates the group's
 *   bookkeeping and appends a MemberEvent.  The event queue, drained by an
 *   idle at G_PRIORITY_HIGH, does what calls out.
 * - Re-entrancy: whatever the group calls out (a member's initialize or
 *   cleanup, which may complete at once; a GTask's callback; member-added
 *   and member-removed handlers) may call back into the group: add or
 *   remove members, change properties, initialize or clean it up, drop a
 *   reference.  Whoever calls out holds a reference to what it walks (the
 *   group, the Run, the Member); run_drain() and the event drain do not
 *   nest.
 */
#pragma once

#include "exo-private.h"

G_BEGIN_DECLS

typedef struct _Member Member;
typedef struct _Run Run;
typedef struct _Op Op;

typedef enum {
  RS_IDLE,
  RS_WAITING,
  RS_QUEUED,
  RS_RUNNING,
  RS_DONE,
} RunState;

/* Supervision of a member that was restarted or watched while degraded:
 * the backoff of its restarts, the timers that start them, its own
 * restart limiter.  Made when first needed: most members never need it. */
typedef struct
{
  GSource           *restart_source;
  GSource           *degraded_source;
  ExoRestartLimiter *limiter;      /* made at its first counted restart */
  guint              restart_streak;
  guint              restart_prev_ms;
  /* monotonic µs since it is ready, 0 = not ready: kept only while there
   * is a backoff to reset (a new MemberSup has none) */
  gint64             ready_since;
} MemberSup;

struct _Member
{
  ExoResource      *resource;     /* its id is the member's name: member_name();
                                   * first: see NameKey */
  gint              refcount;
  guint             index;        /* insertion position */
  ExoResourceGroup *owner;        /* weak; the group until the member is released
                                   * (member_group(): NULL once removed) */
  guint             topo;         /* position in the topological order */
  guint             kahn;         /* scratch: unresolved dependencies */
  guint             visit;        /* scratch: walks */
  /* A managed member's own restart limit (its retry policy's restart
   * burst/interval when it was added): over it the group stops restarting
   * that member.  limit_burst 0 = none. */
  guint             limit_interval_ms;

  /* The resolved graph: slices of the group's edge block. */
  Member          **deps;
  Member          **rdeps;
  guint             n_deps;
  guint             n_rdeps;

  /* Scratch of the live run that covers this member, if any. */
  Run              *run;
  guint             pending;
  guint             rstate : 3;
  guint             skipped : 1;  /* a dependency failed in this run */
  guint             failed : 1;   /* its initialize failed in the last run */
  guint             init_started : 1;
  guint             fresh : 1;    /* added to an active group, not started yet */
  guint             deferred : 1; /* keep-going: its dependency failed at start; starts later */
  guint             job_queued : 1;
  guint             degraded_by_group : 1;
  guint             blocked : 1;
  guint             removed : 1;
  guint             managed : 1;
  guint             saved_auto_recover : 1;
  guint             stopped : 1;  /* stopped by hand: out of supervision */
  guint             came_up : 1;  /* ready since its last restart started */
  guint             given_up : 1; /* its own restart limit was hit */
  guint             limit_burst : 14; /* <= EXO_RESTART_BURST_MAX */

  MemberSup        *sup;          /* NULL until needed: member_sup() */
};

G_STATIC_ASSERT (EXO_RESTART_BURST_MAX < (1 << 14));

/* What a member's state-changed handler saw, for the event queue. */
typedef enum {
  EVENT_RUN_FAILED,   /* a member its run brought up fell: roll the run back */
  EVENT_FELL,         /* a member of a run that goes on fell */
  EVENT_EXTERNAL,     /* a transition no run of the group made */
} EventKind;

typedef struct
{
  Member          *member;   /* owned ref */
  Run             *run;      /* owned ref, for EVENT_RUN_FAILED */
  EventKind        kind;
  ExoResourceState old_state;
  ExoResourceState new_state;
} MemberEvent;

typedef void (*RunDone) (ExoResourceGroup *self,
                         Run              *run,
                         gpointer          data);

/* One pass of initialize or cleanup over a set of members, in dependency
 * order (reverse for cleanup), at most max-parallel at a time.  Kahn's
 * algorithm on counters: O(V + E); members whose call completes at once are
 * handled by the loop in run_drain(), never by recursion. */
struct _Run
{
  gint              refcount;
  ExoResourceGroup *group;
  GPtrArray        *set;          /* Member*, owned refs, topological order */
  Member          **queue;
  guint             q_head;
  guint             q_tail;
  guint             n_remaining;
  guint             n_inflight;
  Op               *ops;          /* NULL until the first; n_ops of set->len used */
  guint             n_ops;
  GError           *error;        /* the first failure */
  GPtrArray        *failed;       /* Member* whose initialize failed */
  RunDone           done;
  gpointer          done_data;
  GDestroyNotify    done_destroy;
  guint             cleanup : 1;
  guint             stop_on_failure : 1;
  guint             group_init : 1;
  guint             unordered : 1;
  guint             live : 1;
  guint             aborted : 1;
  guint             draining : 1;
  guint             doomed : 1;   /* a member fell: no new starts, finish soon */
  guint             cancelled : 1; /* the group's own initialize was cancelled */
};

struct _Op
{
  ExoInitWaiter  waiter;   /* an initialize of the member, without a GTask */
  Run           *run;
  Member        *member;
};

typedef enum {
  JOB_RESTART,
  JOB_START,
} JobKind;

typedef struct
{
  JobKind  kind;
  Member  *member;
} Job;

typedef struct
{
  GPtrArray              *members;     /* Member*, owned, insertion order */
  GHashTable             *by_name;     /* a set of Member*, by name: member_lookup() */
  GHashTable             *dep_names;   /* Member* -> GPtrArray of char*: deps_of() */
  GPtrArray              *order;       /* Member*, topological order */
  Member                **edges;
  GError                 *plan_error;
  GPtrArray              *live_runs;   /* Run* */

  ExoSupervisionStrategy  strategy;
  guint                   max_parallel;
  guint                   restart_burst;
  guint                   restart_interval_ms;
  guint                   restarts;
  ExoRestartLimiter      *limiter;

  Run                    *init_run;
  Run                    *job_run;
  GQueue                  jobs;        /* Job* */
  GSource                *pass_source;
  GSource                *cancel_source;
  GCancellable           *init_cancellable;
  gulong                  init_cancel_id;

  /* The event queue: what members' state-changed handlers saw, drained
   * from a source in the group's context (never inside the emission). */
  GArray                 *events;      /* MemberEvent */
  GSource                *events_source;
  ExoRetryPolicy         *default_policy; /* restart backoff of unmanaged members */

  guint                   plan_dirty : 1;
  guint                   up : 1;          /* ready once, supervising */
  guint                   escalated : 1;
  guint                   init_failed : 1; /* the next do_cleanup is a rollback */
  guint                   draining_events : 1;
  guint                   keep_going : 1;  /* a member failing at start does not fail the group */
} ExoResourceGroupPrivate;

/* The instance private data, from any of the group's files: the offset
 * G_DEFINE_TYPE_WITH_PRIVATE keeps, copied at class_init. */
G_GNUC_INTERNAL extern gint _exo_resource_group_private_offset;

#define PRIV(self) ((ExoResourceGroupPrivate *) G_STRUCT_MEMBER_P (EXO_RESOURCE_GROUP (self), _exo_resource_group_private_offset))

#define DEFAULT_RESTART_BURST       5
#define DEFAULT_RESTART_INTERVAL_MS 10000
#define DEFAULT_BACKOFF_RESET_MS    10000

/* --- members ----------------------------------------------------------- */

/* The group @m is in; NULL once it was removed (or its group disposed). */
static inline ExoResourceGroup *
member_group (Member *m)
{
  return m->removed ? NULL : m->owner;
}

static inline const char *
member_name (Member *m)
{
  return exo_resource_get_id (m->resource);
}

static inline MemberSup *
member_sup (Member *m)
{
  if (m->sup == NULL)
    m->sup = g_new0 (MemberSup, 1);
  return m->sup;
}

#define RESTART_SOURCE(m)  ((m)->sup != NULL ? (m)->sup->restart_source : NULL)
#define DEGRADED_SOURCE(m) ((m)->sup != NULL ? (m)->sup->degraded_source : NULL)

/* The member's own restart limiter, if it has a limit. */
static inline ExoRestartLimiter *
member_limiter (Member *m)
{
  MemberSup *sup;

  if (m->limit_burst == 0)
    return NULL;
  sup = member_sup (m);
  if (sup->limiter == NULL)
    sup->limiter = exo_restart_limiter_new (m->limit_burst, m->limit_interval_ms);
  return sup->limiter;
}

static inline void
member_reset_limiter (Member *m)
{
  if (m->sup != NULL && m->sup->limiter != NULL)
    exo_restart_limiter_reset (m->sup->limiter);
}

/* The names of the members @m depends on, in the order given (NULL: none
 * yet): the group keeps them aside, for the members that have any. */
static inline GPtrArray *
deps_of (Member *m)
{
  if (m->owner == NULL)
    return NULL;
  return g_hash_table_lookup (PRIV (m->owner)->dep_names, m);
}

static inline Member *
member_ref (Member *m)
{
  m->refcount++;
  return m;
}

static inline ExoResourceState
member_state (Member *m)
{
  return exo_resource_get_state (m->resource);
}

static inline guint
n_dep_names (Member *m)
{
  GPtrArray *names = deps_of (m);

  return names != NULL ? names->len : 0;
}

static inline gboolean
group_is_active (ExoResourceGroup *self)
{
  ExoResourceState state = exo_resource_get_state (EXO_RESOURCE (self));

  return state != EXO_RESOURCE_STATE_UNINITIALIZED && state != EXO_RESOURCE_STATE_CLOSED;
}

/* exo-resource-group.c */
enum {
  SIGNAL_MEMBER_ADDED,
  SIGNAL_MEMBER_REMOVED,
  N_SIGNALS,
};

/* the signal ids, set at class_init */
G_GNUC_INTERNAL extern guint _exo_resource_group_signals[N_SIGNALS];

void _exo_resource_group_notify_restarts (ExoResourceGroup *self);

/* exo-resource-group-members.c */
void _exo_resource_group_member_unref (gpointer data);
void _exo_resource_group_member_release (Member *m);
gboolean _exo_resource_group_member_has_dep_name (Member     *m,
                                                  const char *name);
Member *_exo_resource_group_member_lookup (ExoResourceGroupPrivate *priv,
                                            const char              *name);
/* the by-name set's hash and equality (priv->by_name) */
guint _exo_resource_group_member_key_hash (gconstpointer key);
gboolean _exo_resource_group_member_key_equal (gconstpointer a,
                                               gconstpointer b);

/* exo-resource-group-plan.c */
gboolean _exo_resource_group_ensure_plan (ExoResourceGroup  *self,
                                          GError           **error);
void _exo_resource_group_invalidate_plan (ExoResourceGroup *self,
                                          gboolean          now);

/* exo-resource-group-run.c */
Run *_exo_resource_group_run_ref (Run *run);
void _exo_resource_group_run_unref (Run *run);
Run *_exo_resource_group_run_new (ExoResourceGroup *self,
                                   gboolean          cleanup,
                                   gboolean          stop_on_failure,
                                   GPtrArray        *set,
                                   RunDone           done,
                                   gpointer          done_data,
                                   GDestroyNotify    done_destroy);
void _exo_resource_group_run_finish (Run *run);
void _exo_resource_group_run_start (Run *run);
GError *_exo_resource_group_member_error (Member       *m,
                                           const GError *error,
                                           const char   *what);
void _exo_resource_group_run_drain (Run *run);
void _exo_resource_group_drain_live_runs (ExoResourceGroup *self,
                                          gboolean          recount);
GPtrArray *_exo_resource_group_collect_set (ExoResourceGroup *self,
                                             gboolean        (*pick) (Member *m, gpointer data),
                                             gpointer          data);
void _exo_resource_group_disconnect_init_cancellable (ExoResourceGroup *self);
void _exo_resource_group_do_initialize (ExoResource *resource,
                                        GTask       *task);
void _exo_resource_group_do_cleanup (ExoResource *resource,
                                     GTask       *task);

/* exo-resource-group-supervisor.c */
void _exo_resource_group_drop_jobs (ExoResourceGroup *self);
void _exo_resource_group_schedule_pass (ExoResourceGroup *self);
void _exo_resource_group_clear_member_timers (Member *m);
void _exo_resource_group_member_event_clear (MemberEvent *event);
void _exo_resource_group_do_check_health (ExoResource *resource,
                                          GTask       *task);
void _exo_resource_group_state_changed (ExoResourceGroup *self,
                                        ExoResourceState  old_state,
                                        ExoResourceState  new_state,
                                        gpointer          user_data);

G_END_DECLS
