/* exo-resource-group.c: named resources with dependencies, supervised.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-private.h"

/**
 * ExoResourceGroup:
 *
 * A resource made of named member resources with dependencies between them
 * (a directed acyclic graph), in the manner of systemd's unit dependencies
 * and Erlang/OTP supervisors.  A group is itself a resource, so groups nest.
 *
 * ## Members and dependencies
 *
 * A member's name is its #ExoAsyncResource:id.  exo_resource_group_add()
 * names the members it depends on; exo_resource_group_add_dependency() adds
 * an edge later.  While the group is `uninitialized` or `closed`, members may
 * be added in any order: the graph is checked by exo_resource_group_validate()
 * and at initialize, which refuse (with %EXO_RESOURCE_ERROR_DEPENDENCY) a
 * dependency on an unknown member ("member 'api' depends on unknown member
 * 'db'") and a cycle ("dependency cycle: a -> b -> c -> a", where `x -> y`
 * reads "x depends on y").  While the group is active, every change is
 * checked at once and refused if it would leave the graph invalid.
 *
 * ## Initialize and cleanup
 *
 * Initialize starts members in dependency order: a member starts when all
 * its dependencies are ready, independent members run in parallel (at most
 * #ExoResourceGroup:max-parallel at a time, 0 = unlimited).  When a member
 * fails, no further member is started and the group's initialize fails with
 * the member's error domain and code and the message "member 'db' failed:
 * <its message>".  Before the failure is reported, the members already
 * started are cleaned up in reverse dependency order (the base class awaits
 * #ExoResourceClass.do_cleanup); the failed member itself is left in
 * `error` so that one can see which member failed and why.
 *
 * Cleanup runs in reverse dependency order: a member is cleaned up when every
 * member that depends on it is closed; independent members in parallel.
 *
 * ## Supervision
 *
 * Once the group is ready it supervises its members.  When a member falls
 * from `ready` or `degraded` to `error`, the group restarts members according
 * to #ExoResourceGroup:strategy:
 *
 * - `one-for-one`: the failed member is cleaned up and initialized again;
 * - `rest-for-one`: the failed member and everything that depends on it,
 *   directly or not: cleaned up dependents first, then initialized in
 *   dependency order;
 * - `one-for-all`: every member, the same way.
 *
 * Restarts run one at a time, in the order the failures happened.  While a
 * member is not usable, the members that depend on it (directly or not) and
 * are `ready` are reported `degraded` with %EXO_RESOURCE_ERROR_DEPENDENCY;
 * when it is usable again, a health check of each of them restores it.
 * More than #ExoResourceGroup:restart-burst restarts within
 * #ExoResourceGroup:restart-interval-ms escalate: the group itself enters
 * `error` with %EXO_RESOURCE_ERROR_RESTART_LIMIT and stops supervising until
 * it is initialized again (a parent group restarts it).
 *
 * The group is the only supervisor of its members: when an
 * #ExoManagedResource is added, the group switches its
 * #ExoManagedResource:auto-recover off (and restores the previous value when
 * the member is removed), so that the member never recovers on its own
 * behind the group's back.  The member's retry policy still applies to the
 * retries within one initialize.  A member that is `degraded` by its own
 * health check is left alone: it is still usable.
 *
 * ## The group's state
 *
 * Once ready, the group is `ready` while every member is `ready`, and
 * `degraded` while any member is not (a member being started for the first
 * time after it was added to a running group does not count until its
 * initialize has finished).  It is `error` after escalation.
 *
 * ## Members that come and go
 *
 * A member added to an active group is initialized as soon as its
 * dependencies are ready; if that first initialize fails, the member stays
 * in `error` (the group is `degraded`) and is not restarted: remove it or
 * initialize it yourself.  exo_resource_group_remove_async() cleans a member
 * up and awaits it; removing a member that others depend on is refused with
 * an error that names them, unless forced, in which case their dependencies
 * on it are dropped.
 */

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

enum {
  PROP_0,
  PROP_STRATEGY,
  PROP_MAX_PARALLEL,
  PROP_RESTART_BURST,
  PROP_RESTART_INTERVAL_MS,
  PROP_RESTARTS,
  PROP_KEEP_GOING,
  N_PROPS,
};

enum {
  SIGNAL_MEMBER_ADDED,
  SIGNAL_MEMBER_REMOVED,
  N_SIGNALS,
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_TYPE_WITH_PRIVATE (ExoResourceGroup, exo_resource_group, EXO_TYPE_RESOURCE)

#define PRIV(self) ((ExoResourceGroupPrivate *) exo_resource_group_get_instance_private (EXO_RESOURCE_GROUP (self)))

#define DEFAULT_RESTART_BURST       5
#define DEFAULT_RESTART_INTERVAL_MS 10000
#define DEFAULT_BACKOFF_RESET_MS    10000

static void schedule_pass   (ExoResourceGroup *self);
static void schedule_restart (ExoResourceGroup *self,
                              Member           *m);
static void push_job        (ExoResourceGroup *self,
                             JobKind           kind,
                             Member           *m);
static void clear_member_timers (Member       *m);
static void watch_degraded  (ExoResourceGroup *self,
                             Member           *m);
static void run_drain       (Run              *run);
static void invalidate_plan (ExoResourceGroup *self,
                             gboolean          now);

/* --- the strategy enum ------------------------------------------------- */

static const GEnumValue strategy_values[] = {
  { EXO_SUPERVISION_ONE_FOR_ONE, "EXO_SUPERVISION_ONE_FOR_ONE", "one-for-one" },
  { EXO_SUPERVISION_REST_FOR_ONE, "EXO_SUPERVISION_REST_FOR_ONE", "rest-for-one" },
  { EXO_SUPERVISION_ONE_FOR_ALL, "EXO_SUPERVISION_ONE_FOR_ALL", "one-for-all" },
  { 0, NULL, NULL },
};

GType
exo_supervision_strategy_get_type (void)
{
  static gsize type_id;

  if (g_once_init_enter (&type_id))
    {
      GType id = g_enum_register_static (g_intern_static_string ("ExoSupervisionStrategy"),
                                         strategy_values);
      g_once_init_leave (&type_id, id);
    }
  return type_id;
}

/**
 * exo_supervision_strategy_to_string:
 * @strategy: a strategy
 *
 * Returns: (transfer none): its nick, e.g. `"one-for-one"`, or %NULL if
 *   @strategy is not a strategy
 */
const char *
exo_supervision_strategy_to_string (ExoSupervisionStrategy strategy)
{
  if ((guint) strategy >= G_N_ELEMENTS (strategy_values) - 1)
    return NULL;
  return strategy_values[strategy].value_nick;
}

/**
 * exo_supervision_strategy_from_string:
 * @str: a nick such as `"rest-for-one"`
 * @out_strategy: (out) (optional): the strategy
 *
 * Returns: %TRUE if @str names a strategy
 */
gboolean
exo_supervision_strategy_from_string (const char             *str,
                                      ExoSupervisionStrategy *out_strategy)
{
  if (str == NULL)
    return FALSE;
  for (guint i = 0; strategy_values[i].value_nick != NULL; i++)
    if (g_str_equal (str, strategy_values[i].value_nick))
      {
        if (out_strategy != NULL)
          *out_strategy = strategy_values[i].value;
        return TRUE;
      }
  return FALSE;
}

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

static MemberSup *
member_sup (Member *m)
{
  if (m->sup == NULL)
    m->sup = g_new0 (MemberSup, 1);
  return m->sup;
}

#define RESTART_SOURCE(m)  ((m)->sup != NULL ? (m)->sup->restart_source : NULL)
#define DEGRADED_SOURCE(m) ((m)->sup != NULL ? (m)->sup->degraded_source : NULL)

/* The member's own restart limiter, if it has a limit. */
static ExoRestartLimiter *
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

static void
member_reset_limiter (Member *m)
{
  if (m->sup != NULL && m->sup->limiter != NULL)
    exo_restart_limiter_reset (m->sup->limiter);
}

/* The names of the members @m depends on, in the order given (NULL: none
 * yet): the group keeps them aside, for the members that have any. */
static GPtrArray *
deps_of (Member *m)
{
  if (m->owner == NULL)
    return NULL;
  return g_hash_table_lookup (PRIV (m->owner)->dep_names, m);
}

static void
forget_dep_names (Member *m)
{
  if (m->owner != NULL)
    g_hash_table_remove (PRIV (m->owner)->dep_names, m);
}

static Member *
member_ref (Member *m)
{
  m->refcount++;
  return m;
}

static void
member_unref (gpointer data)
{
  Member *m = data;

  if (--m->refcount > 0)
    return;
  if (_exo_resource_get_member (m->resource) == m)
    _exo_resource_set_member (m->resource, NULL);
  clear_member_timers (m);
  if (m->sup != NULL)
    {
      g_clear_pointer (&m->sup->limiter, exo_restart_limiter_free);
      g_clear_pointer (&m->sup, g_free);
    }
  forget_dep_names (m);
  g_object_unref (m->resource);
  g_free (m);
}

static inline ExoResourceState
member_state (Member *m)
{
  return exo_resource_get_state (m->resource);
}

/* The group @resource belongs to (until it is released), or %NULL. */
static ExoResourceGroup *
group_of (ExoResource *resource)
{
  Member *m = _exo_resource_get_member (resource);

  return m != NULL ? m->owner : NULL;
}

static inline guint
n_dep_names (Member *m)
{
  GPtrArray *names = deps_of (m);

  return names != NULL ? names->len : 0;
}

static void
add_dep_name (Member     *m,
              const char *name)
{
  GPtrArray *names = deps_of (m);

  if (names == NULL)
    {
      names = g_ptr_array_new_with_free_func (g_free);
      g_hash_table_insert (PRIV (m->owner)->dep_names, m, names);
    }
  g_ptr_array_add (names, g_strdup (name));
}

static gboolean
member_has_dep_name (Member     *m,
                     const char *name)
{
  for (guint i = 0; i < n_dep_names (m); i++)
    if (g_str_equal (g_ptr_array_index (deps_of (m), i), name))
      return TRUE;
  return FALSE;
}

/* The members by name: a set of Member* hashed by their name (a table of
 * name -> Member would keep a second array of pointers, 8 bytes a bucket).
 * A name is looked up with a NameKey, told from a Member by its first
 * word: a Member's is its resource, never &name_key_tag. */
typedef struct
{
  gconstpointer  tag;           /* &name_key_tag */
  const char    *name;
} NameKey;

static const char name_key_tag = 0;

static inline const char *
key_name (gconstpointer key)
{
  const NameKey *name_key = key;

  if (name_key->tag == &name_key_tag)
    return name_key->name;
  return member_name ((Member *) key);
}

static guint
member_key_hash (gconstpointer key)
{
  return g_str_hash (key_name (key));
}

static gboolean
member_key_equal (gconstpointer a,
                  gconstpointer b)
{
  return g_str_equal (key_name (a), key_name (b));
}

static Member *
member_lookup (ExoResourceGroupPrivate *priv,
               const char              *name)
{
  NameKey key = { &name_key_tag, name };

  return g_hash_table_lookup (priv->by_name, &key);
}

static gboolean
group_is_active (ExoResourceGroup *self)
{
  ExoResourceState state = exo_resource_get_state (EXO_RESOURCE (self));

  return state != EXO_RESOURCE_STATE_UNINITIALIZED && state != EXO_RESOURCE_STATE_CLOSED;
}

/* --- the plan: resolved edges and a topological order ----------------- */

static GError *
cycle_error (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  g_autoptr(GPtrArray) path = g_ptr_array_new ();
  g_autoptr(GString) message = g_string_new ("dependency cycle: ");
  Member *start = NULL;
  Member *m;
  guint step = 0;
  guint first, best, len;

  for (guint i = 0; i < priv->members->len; i++)
    {
      m = g_ptr_array_index (priv->members, i);
      m->visit = 0;
      if (start == NULL && m->kahn > 0)
        start = m;
    }
  g_assert (start != NULL);

  /* Every member left over by Kahn's algorithm has a left-over dependency:
   * walking them must come back to a member already seen. */
  m = start;
  while (m->visit == 0)
    {
      Member *next = NULL;

      m->visit = ++step;
      g_ptr_array_add (path, m);
      for (guint i = 0; i < m->n_deps && next == NULL; i++)
        if (m->deps[i]->kahn > 0)
          next = m->deps[i];
      g_assert (next != NULL);
      m = next;
    }

  first = m->visit - 1;
  len = path->len - first;
  best = first;
  for (guint i = first; i < path->len; i++)
    if (((Member *) g_ptr_array_index (path, i))->index <
        ((Member *) g_ptr_array_index (path, best))->index)
      best = i;

  for (guint k = 0; k <= len; k++)
    {
      Member *c = g_ptr_array_index (path, first + (best - first + k) % len);

      if (k > 0)
        g_string_append (message, " -> ");
      g_string_append (message, member_name (c));
    }

  return g_error_new_literal (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY, message->str);
}

static void
rebuild_plan (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  guint n = priv->members->len;
  gsize n_names = 0;
  gsize off = 0;

  priv->plan_dirty = FALSE;
  g_clear_error (&priv->plan_error);

  /* (the dependency names are counted from their table: most members have none) */
  {
    GHashTableIter iter;
    gpointer names;

    g_hash_table_iter_init (&iter, priv->dep_names);
    while (g_hash_table_iter_next (&iter, NULL, &names))
      n_names += ((GPtrArray *) names)->len;
  }
  for (guint i = 0; i < n; i++)
    ((Member *) g_ptr_array_index (priv->members, i))->n_rdeps = 0;

  g_free (priv->edges);
  priv->edges = g_new (Member *, MAX (2 * n_names, 1));

  /* Resolve the names: the dependencies of each member... */
  for (guint i = 0; i < n; i++)
    {
      Member *m = g_ptr_array_index (priv->members, i);
      GPtrArray *names = g_hash_table_size (priv->dep_names) > 0 ? deps_of (m) : NULL;

      m->deps = priv->edges + off;
      m->n_deps = 0;

      for (guint j = 0; names != NULL && j < names->len; j++)
        {
          const char *name = g_ptr_array_index (names, j);
          Member *d = member_lookup (priv, name);

          if (d == NULL)
            {
              if (priv->plan_error == NULL)
                priv->plan_error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                                                "member '%s' depends on unknown member '%s'",
                                                member_name (m), name);
              continue;
            }
          m->deps[m->n_deps++] = d;
          d->n_rdeps++;
        }
      off += m->n_deps;
    }

  /* ...and the members that depend on each. */
  for (guint i = 0; i < n; i++)
    {
      Member *m = g_ptr_array_index (priv->members, i);

      m->rdeps = priv->edges + off;
      off += m->n_rdeps;
      m->n_rdeps = 0;
    }
  for (guint i = 0; i < n; i++)
    {
      Member *m = g_ptr_array_index (priv->members, i);

      for (guint j = 0; j < m->n_deps; j++)
        m->deps[j]->rdeps[m->deps[j]->n_rdeps++] = m;
    }

  /* Kahn's algorithm; the order array is its own queue. */
  g_ptr_array_set_size (priv->order, 0);
  for (guint i = 0; i < n; i++)
    {
      Member *m = g_ptr_array_index (priv->members, i);

      m->kahn = m->n_deps;
      if (m->kahn == 0)
        g_ptr_array_add (priv->order, m);
    }
  for (guint i = 0; i < priv->order->len; i++)
    {
      Member *m = g_ptr_array_index (priv->order, i);

      for (guint j = 0; j < m->n_rdeps; j++)
        if (--m->rdeps[j]->kahn == 0)
          g_ptr_array_add (priv->order, m->rdeps[j]);
    }

  if (priv->order->len < n)
    {
      if (priv->plan_error == NULL)
        priv->plan_error = cycle_error (self);
      /* Keep every member listed: the rest in insertion order. */
      for (guint i = 0; i < n; i++)
        {
          Member *m = g_ptr_array_index (priv->members, i);

          if (m->kahn > 0)
            g_ptr_array_add (priv->order, m);
        }
    }

  for (guint i = 0; i < n; i++)
    ((Member *) g_ptr_array_index (priv->order, i))->topo = i;
}

static gboolean
ensure_plan (ExoResourceGroup  *self,
             GError           **error)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  if (priv->plan_dirty)
    rebuild_plan (self);

  if (priv->plan_error != NULL)
    {
      if (error != NULL)
        *error = g_error_copy (priv->plan_error);
      return FALSE;
    }
  return TRUE;
}

/* --- runs -------------------------------------------------------------- */

static Run *
run_ref (Run *run)
{
  run->refcount++;
  return run;
}

static void
run_unref (Run *run)
{
  if (--run->refcount > 0)
    return;
  g_assert (!run->live);
  if (run->done_destroy != NULL)
    run->done_destroy (run->done_data);
  g_ptr_array_unref (run->set);
  g_ptr_array_unref (run->failed);
  g_clear_error (&run->error);
  g_free (run->queue);
  g_free (run->ops);
  g_object_unref (run->group);
  g_free (run);
}

/* @set: (transfer full): Member* with refs, in topological order */
static Run *
run_new (ExoResourceGroup *self,
         gboolean          cleanup,
         gboolean          stop_on_failure,
         GPtrArray        *set,
         RunDone           done,
         gpointer          done_data,
         GDestroyNotify    done_destroy)
{
  Run *run = g_new0 (Run, 1);

  run->refcount = 1;
  run->group = g_object_ref (self);
  run->cleanup = !!cleanup;
  run->stop_on_failure = !!stop_on_failure;
  run->set = set;
  run->queue = g_new (Member *, MAX (set->len, 1));
  run->failed = g_ptr_array_new_with_free_func (member_unref);
  run->done = done;
  run->done_data = done_data;
  run->done_destroy = done_destroy;
  return run;
}

static void
run_enqueue (Run    *run,
             Member *m)
{
  g_assert (m->rstate == RS_WAITING);
  g_assert (run->q_tail < run->set->len);
  m->rstate = RS_QUEUED;
  run->queue[run->q_tail++] = m;
}

/* Counts, for each waiting member, the members of the run it still waits
 * for; queues those that wait for none.  Called at the start and whenever
 * the graph changed while the run is live. */
static void
run_recount (Run *run)
{
  guint n = run->set->len;

  for (guint k = 0; k < n; k++)
    {
      Member *m = g_ptr_array_index (run->set, run->cleanup ? n - 1 - k : k);
      Member **prev;
      guint n_prev;
      guint count = 0;

      if (m->run != run || m->rstate != RS_WAITING)
        continue;

      prev = run->cleanup ? m->rdeps : m->deps;
      n_prev = run->cleanup ? m->n_rdeps : m->n_deps;
      if (!run->unordered)
        for (guint i = 0; i < n_prev; i++)
          {
            Member *p = prev[i];

            if (p->run != run)
              continue;
            if (p->rstate != RS_DONE)
              count++;
            else if (!run->cleanup && (p->failed || p->skipped))
              m->skipped = TRUE;
          }

      m->pending = count;
      if (count == 0)
        run_enqueue (run, m);
    }
}

static void
run_member_done (Run      *run,
                 Member   *m,
                 gboolean  ok)
{
  gboolean skip_next = !run->cleanup && (!ok || m->skipped);
  Member **next;
  guint n_next;

  m->rstate = RS_DONE;
  run->n_remaining--;

  if (run->unordered)
    return;

  next = run->cleanup ? m->deps : m->rdeps;
  n_next = run->cleanup ? m->n_deps : m->n_rdeps;
  for (guint i = 0; i < n_next; i++)
    {
      Member *n = next[i];

      if (n->run != run || n->rstate != RS_WAITING)
        continue;
      if (skip_next)
        n->skipped = TRUE;
      if (n->pending > 0)
        n->pending--;
      if (n->pending == 0)
        run_enqueue (run, n);
    }
}

static void
run_detach (Run *run)
{
  GPtrArray *live_runs = PRIV (run->group)->live_runs;

  run->live = FALSE;
  g_ptr_array_remove_fast (live_runs, run);
  for (guint i = 0; i < run->set->len; i++)
    {
      Member *m = g_ptr_array_index (run->set, i);

      if (m->run == run)
        {
          m->run = NULL;
          m->rstate = RS_IDLE;
        }
    }
}

/* Ends @run: its members are free again and its done callback runs.
 * Operations still in flight complete into the void. */
static void
run_finish (Run *run)
{
  if (!run->live)
    return;
  run_detach (run);
  run_ref (run);
  run->done (run->group, run, run->done_data);
  run_unref (run);
}

static void
run_abort (Run *run)
{
  if (run == NULL || !run->live)
    return;
  run->aborted = TRUE;
  run_finish (run);
}

static void
run_start (Run *run)
{
  GPtrArray *live_runs = PRIV (run->group)->live_runs;

  run->live = TRUE;
  g_ptr_array_add (live_runs, run);
  for (guint i = 0; i < run->set->len; i++)
    {
      Member *m = g_ptr_array_index (run->set, i);

      g_assert (m->run == NULL);
      m->run = run;
      m->rstate = RS_WAITING;
      m->skipped = FALSE;
      if (!run->cleanup)
        m->failed = FALSE;
    }
  run->n_remaining = run->set->len;
  run_recount (run);
  run_drain (run);
}

static GError *
member_error (Member       *m,
              const GError *error,
              const char   *what)
{
  return g_error_new (error->domain, error->code, "member '%s' %s: %s",
                      member_name (m), what, error->message);
}

/* A run's operations come from one block of the run (a member is started
 * or cleaned up at most once per run): one allocation per run, not per
 * member, and the block goes back whole when the run ends. */
static Op *
op_new (Run    *run,
        Member *m)
{
  Op *op;

  if (run->ops == NULL)
    run->ops = g_new (Op, MAX (run->set->len, 1));
  g_assert (run->n_ops < MAX (run->set->len, 1));
  op = &run->ops[run->n_ops++];
  op->run = run_ref (run);
  op->member = member_ref (m);
  return op;
}

static void
op_free (Op *op)
{
  Member *m = op->member;

  /* the block is the run's: it goes with the run's last reference */
  run_unref (op->run);
  member_unref (m);
}

static void
run_fail (Run          *run,
          Member       *m,
          const GError *error)
{
  m->failed = TRUE;
  g_ptr_array_add (run->failed, member_ref (m));
  if (run->error == NULL)
    run->error = member_error (m, error, "failed");
}

static void
run_init_done (Op           *op,
               gboolean      ok,
               const GError *error)
{
  Run *run = op->run;
  Member *m = op->member;

  run->n_inflight--;

  if (run->live && m->run == run && m->rstate == RS_RUNNING)
    {
      if (ok)
        run_member_done (run, m, TRUE);
      else
        {
          run_fail (run, m, error);
          /* Keep going: the first failure ends the group's start at once
           * (what still starts goes on in the background, what waits for
           * the failed member starts later), so that supervision — the
           * restart of the failed member — does not wait for the slowest
           * member. */
          if (run->stop_on_failure || (run->group_init && PRIV (run->group)->keep_going))
            {
              run_finish (run);
              op_free (op);
              return;
            }
          run_member_done (run, m, FALSE);
        }
    }

  if (run->live)
    run_drain (run);
  op_free (op);
}

static void
run_init_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Op *op = user_data;
  g_autoptr(GError) error = NULL;
  gboolean ok;

  ok = exo_resource_initialize_finish (op->member->resource, result, &error);
  run_init_done (op, ok, error);
}

static void
run_init_waiter_cb (ExoResource   *resource,
                    ExoInitWaiter *waiter,
                    const GError  *error)
{
  run_init_done ((Op *) waiter, error == NULL, error);
}

static void
run_cleanup_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Op *op = user_data;
  Run *run = op->run;
  Member *m = op->member;
  g_autoptr(GError) error = NULL;

  /* A member ends closed even when its do_cleanup fails: go on. */
  if (!exo_resource_cleanup_finish (m->resource, result, &error) && run->error == NULL && run->live)
    run->error = member_error (m, error, "cleanup failed");
  run->n_inflight--;

  if (run->live && m->run == run && m->rstate == RS_RUNNING)
    run_member_done (run, m, TRUE);

  if (run->live)
    run_drain (run);
  op_free (op);
}

/* Starts what may start; a loop, so that members that complete at once and
 * long chains never recurse. */
static void
run_drain (Run *run)
{
  ExoResourceGroupPrivate *priv = PRIV (run->group);

  if (run->draining)
    return;
  run->draining = TRUE;
  run_ref (run);

  while (run->live && !run->doomed && run->q_head < run->q_tail &&
         (priv->max_parallel == 0 || run->n_inflight < priv->max_parallel))
    {
      Member *m = run->queue[run->q_head++];
      ExoResourceState state;
      gboolean busy;

      if (m->run != run || m->rstate != RS_QUEUED)
        continue;

      if (m->skipped)
        {
          run_member_done (run, m, FALSE);
          continue;
        }

      state = member_state (m);
      busy = _exo_resource_is_busy (m->resource);

      if (!run->cleanup)
        {
          if (run->group_init)
            m->init_started = TRUE;
          if (exo_resource_state_is_usable (state) && !busy)
            {
              run_member_done (run, m, TRUE);
              continue;
            }
          m->rstate = RS_RUNNING;
          run->n_inflight++;
          {
            Op *op = op_new (run, m);

            if (!_exo_resource_initialize_internal (m->resource, &op->waiter, run_init_waiter_cb))
              exo_resource_initialize_async (m->resource, NULL, run_init_cb, op);
          }
        }
      else
        {
          if ((state == EXO_RESOURCE_STATE_UNINITIALIZED || state == EXO_RESOURCE_STATE_CLOSED) && !busy)
            {
              run_member_done (run, m, TRUE);
              continue;
            }
          m->rstate = RS_RUNNING;
          run->n_inflight++;
          exo_resource_cleanup_async (m->resource, NULL, run_cleanup_cb, op_new (run, m));
        }
    }

  run->draining = FALSE;
  /* A doomed run is finished by the event queue, outside any emission. */
  if (run->live && run->n_remaining == 0 && !run->doomed)
    run_finish (run);
  run_unref (run);
}

/* Recounts (when asked) and drains every live run.  On a copy: draining
 * may finish a run. */
static void
drain_live_runs (ExoResourceGroup *self,
                 gboolean          recount)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  g_autoptr(GPtrArray) runs = g_ptr_array_copy (priv->live_runs, NULL, NULL);

  for (guint i = 0; i < runs->len; i++)
    run_ref (g_ptr_array_index (runs, i));
  for (guint i = 0; i < runs->len; i++)
    {
      Run *run = g_ptr_array_index (runs, i);

      if (run->live)
        {
          if (recount)
            run_recount (run);
          run_drain (run);
        }
      run_unref (run);
    }
}

/* After the graph changed: rebuild it now if a run depends on it (or if a
 * member left: nothing may point to it any more). */
static void
invalidate_plan (ExoResourceGroup *self,
                 gboolean          now)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  priv->plan_dirty = TRUE;
  if (!now && priv->live_runs->len == 0)
    return;

  rebuild_plan (self);
  drain_live_runs (self, TRUE);
}

/* Members in topological order, with refs, chosen by @pick (or all). */
static GPtrArray *
collect_set (ExoResourceGroup *self,
             gboolean        (*pick) (Member *m, gpointer data),
             gpointer          data)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  GPtrArray *set = g_ptr_array_new_full (priv->order->len, member_unref);

  for (guint i = 0; i < priv->order->len; i++)
    {
      Member *m = g_ptr_array_index (priv->order, i);

      if (pick == NULL || pick (m, data))
        g_ptr_array_add (set, member_ref (m));
    }
  return set;
}

/* --- supervision ------------------------------------------------------- */

static void
job_free (Job *job)
{
  member_unref (job->member);
  g_free (job);
}

static void
drop_jobs (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  Job *job;

  while ((job = g_queue_pop_head (&priv->jobs)) != NULL)
    {
      job->member->job_queued = FALSE;
      job_free (job);
    }
}

static void
push_job (ExoResourceGroup *self,
          JobKind           kind,
          Member           *m)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  Job *job;

  if (m->job_queued)
    return;
  m->job_queued = TRUE;
  job = g_new (Job, 1);
  job->kind = kind;
  job->member = member_ref (m);
  g_queue_push_tail (&priv->jobs, job);
  schedule_pass (self);
}

static gboolean
is_marked (Member   *m,
           gpointer  data)
{
  return m->visit == GPOINTER_TO_UINT (data);
}

static gboolean
is_not_fresh (Member   *m,
              gpointer  data)
{
  return !m->fresh;
}

static GPtrArray *
restart_set (ExoResourceGroup *self,
             Member           *failed)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  static guint mark;

  switch (priv->strategy)
    {
    case EXO_SUPERVISION_ONE_FOR_ALL:
      return collect_set (self, is_not_fresh, NULL);

    case EXO_SUPERVISION_REST_FOR_ONE:
      {
        g_autoptr(GPtrArray) stack = g_ptr_array_new ();

        if (++mark == 0)
          ++mark;
        failed->visit = mark;
        g_ptr_array_add (stack, failed);
        while (stack->len > 0)
          {
            Member *m = g_ptr_array_steal_index_fast (stack, stack->len - 1);

            for (guint i = 0; i < m->n_rdeps; i++)
              if (m->rdeps[i]->visit != mark)
                {
                  m->rdeps[i]->visit = mark;
                  g_ptr_array_add (stack, m->rdeps[i]);
                }
          }
        return collect_set (self, is_marked, GUINT_TO_POINTER (mark));
      }

    case EXO_SUPERVISION_ONE_FOR_ONE:
    default:
      {
        GPtrArray *set = g_ptr_array_new_with_free_func (member_unref);

        g_ptr_array_add (set, member_ref (failed));
        return set;
      }
    }
}

static void
escalate (ExoResourceGroup *self,
          Member           *m)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  const GError *cause = exo_resource_get_last_error (m->resource);
  g_autoptr(GError) error = NULL;

  priv->escalated = TRUE;
  drop_jobs (self);
  error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_RESTART_LIMIT,
                       "group '%s' hit its restart limit (%u restarts within %u ms); "
                       "member '%s' failed: %s",
                       exo_resource_get_id (EXO_RESOURCE (self)),
                       priv->restart_burst, priv->restart_interval_ms, member_name (m),
                       cause != NULL ? cause->message : "unknown error");
  exo_resource_report_error (EXO_RESOURCE (self), error);
}

static void
restart_init_done (ExoResourceGroup *self,
                   Run              *run,
                   gpointer          data)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  if (priv->job_run == run)
    priv->job_run = NULL;
  if (run->aborted || !priv->up || priv->escalated)
    return;

  /* A member that failed to come back is a new failure: it is restarted
   * after its next backoff delay and counts against the restart limit. */
  for (guint i = 0; i < run->failed->len; i++)
    schedule_restart (self, g_ptr_array_index (run->failed, i));
  schedule_pass (self);
}

static void
restart_cleanup_done (ExoResourceGroup *self,
                      Run              *run,
                      gpointer          data)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  GPtrArray *set;
  Run *init;

  if (priv->job_run == run)
    priv->job_run = NULL;
  if (run->aborted || !priv->up || priv->escalated)
    return;

  set = g_ptr_array_new_full (run->set->len, member_unref);
  for (guint i = 0; i < run->set->len; i++)
    {
      Member *m = g_ptr_array_index (run->set, i);

      if (!m->removed)
        g_ptr_array_add (set, member_ref (m));
    }

  init = run_new (self, FALSE, FALSE, set, restart_init_done, NULL, NULL);
  priv->job_run = init;
  run_start (init);
  run_unref (init);
}

static void
start_done (ExoResourceGroup *self,
            Run              *run,
            gpointer          data)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  if (priv->job_run == run)
    priv->job_run = NULL;
  for (guint i = 0; i < run->set->len; i++)
    {
      Member *m = g_ptr_array_index (run->set, i);

      m->fresh = m->deferred = FALSE;
    }
  if (!run->aborted)
    schedule_pass (self);
}

static gboolean
deps_ready (Member *m)
{
  for (guint i = 0; i < m->n_deps; i++)
    if (!exo_resource_state_is_usable (member_state (m->deps[i])) || m->deps[i]->blocked ||
        m->deps[i]->fresh)
      return FALSE;
  return TRUE;
}

/* Runs the queued restarts and starts, one at a time. */
static void
process_jobs (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  while (priv->job_run == NULL && priv->up && !priv->escalated)
    {
      Job *job = g_queue_pop_head (&priv->jobs);
      Member *m;
      Run *run;

      if (job == NULL)
        return;
      m = job->member;
      m->job_queued = FALSE;

      if (m->removed || !ensure_plan (self, NULL))
        {
          job_free (job);
          continue;
        }

      if (job->kind == JOB_RESTART)
        {
          ExoResourceState state = member_state (m);
          gboolean counts;

          if (m->run != NULL || m->stopped || m->given_up ||
              (state != EXO_RESOURCE_STATE_ERROR && !_exo_resource_is_degraded_by_health (m->resource)))
            {
              job_free (job);
              continue;
            }
          /* Its own limit is for flapping: a restart counts when the member
           * came back since the previous one; restarts that keep failing
           * while its backend is away only back off. */
          counts = m->came_up;
          m->came_up = FALSE;
          if (counts && m->limit_burst > 0 &&
              !exo_restart_limiter_try (member_limiter (m), g_get_monotonic_time ()))
            {
              g_autoptr(ExoRetryPolicy) policy =
                exo_managed_resource_get_retry_policy (EXO_MANAGED_RESOURCE (m->resource));
              g_autoptr(GError) error =
                g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_RESTART_LIMIT,
                             "member '%s' restarted %u times within %u ms: given up until it "
                             "is started or restarted by hand",
                             member_name (m), policy->restart_burst, policy->restart_interval_ms);

              /* Like a systemd unit over StartLimitBurst: it stays failed
               * (result start-limit-hit); the group goes on (degraded)
               * without escalating. */
              m->given_up = TRUE;
              if (state == EXO_RESOURCE_STATE_DEGRADED)
                exo_resource_transition (m->resource, EXO_RESOURCE_STATE_ERROR, error);
              else
                exo_resource_report_error (m->resource, error);
              _exo_resource_set_result (m->resource, EXO_RESOURCE_RESULT_START_LIMIT_HIT);
              job_free (job);
              continue;
            }
          if (!exo_restart_limiter_try (priv->limiter, g_get_monotonic_time ()))
            {
              escalate (self, m);
              job_free (job);
              return;
            }
          priv->restarts++;
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESTARTS]);
          run = run_new (self, TRUE, FALSE, restart_set (self, m), restart_cleanup_done, NULL, NULL);
        }
      else
        {
          GPtrArray *set;

          if (!m->fresh || m->stopped || m->run != NULL || !deps_ready (m))
            {
              job_free (job);
              continue;
            }
          set = g_ptr_array_new_with_free_func (member_unref);
          g_ptr_array_add (set, member_ref (m));
          run = run_new (self, FALSE, FALSE, set, start_done, NULL, NULL);
        }

      job_free (job);
      priv->job_run = run;
      run_start (run);
      run_unref (run);
    }
}

typedef enum {
  ACTION_DEGRADE,
  ACTION_RESTORE,
  ACTION_START,
} ActionKind;

typedef struct
{
  ActionKind  kind;
  Member     *member;
  GError     *error;
} Action;

static void
action_free (gpointer data)
{
  Action *action = data;

  member_unref (action->member);
  g_clear_error (&action->error);
  g_free (action);
}

/* The health pass, coalesced into one idle per main-loop iteration: marks
 * the members whose dependencies (transitively) are not usable, degrades
 * them or restores them, starts members added while running, computes the
 * group's own state and runs queued jobs.  O(V + E). */
static gboolean
pass_cb (gpointer data)
{
  ExoResourceGroup *self = data;
  ExoResourceGroupPrivate *priv = PRIV (self);
  g_autoptr(GPtrArray) actions = NULL;
  g_autoptr(GError) group_error = NULL;
  g_autofree Member **culprits = NULL;
  ExoResourceState group_state;

  g_clear_pointer (&priv->pass_source, g_source_unref);
  if (!priv->up || !ensure_plan (self, NULL))
    return G_SOURCE_REMOVE;

  g_object_ref (self);
  actions = g_ptr_array_new_with_free_func (action_free);
  /* culprits[i]: why priv->order[i] is blocked (the first dependency down,
   * or what blocks it), NULL if it is not */
  culprits = g_new (Member *, MAX (priv->order->len, 1));

  for (guint i = 0; i < priv->order->len; i++)
    {
      Member *m = g_ptr_array_index (priv->order, i);
      ExoResourceState state = member_state (m);
      Member *culprit = NULL;

      for (guint j = 0; j < m->n_deps && culprit == NULL; j++)
        {
          Member *d = m->deps[j];

          /* d comes earlier in the order: its culprit is known */
          if (d->blocked)
            culprit = culprits[d->topo];
          else if (member_state (d) != EXO_RESOURCE_STATE_READY)
            culprit = d;
        }
      m->blocked = culprit != NULL;
      culprits[i] = culprit;

      if (m->run == NULL && !priv->escalated)
        {
          Action *action = NULL;

          if (culprit != NULL && exo_resource_state_is_usable (state) && !m->fresh &&
              !m->degraded_by_group)
            {
              action = g_new0 (Action, 1);
              action->kind = ACTION_DEGRADE;
              action->error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                                           "dependency '%s' is %s", member_name (culprit),
                                           exo_resource_state_to_string (member_state (culprit)));
            }
          else if (culprit == NULL && m->degraded_by_group)
            {
              action = g_new0 (Action, 1);
              action->kind = ACTION_RESTORE;
            }
          else if (m->fresh && !m->stopped && !m->job_queued && deps_ready (m))
            {
              action = g_new0 (Action, 1);
              action->kind = ACTION_START;
            }

          if (action != NULL)
            {
              action->member = member_ref (m);
              g_ptr_array_add (actions, action);
            }
          else if (state == EXO_RESOURCE_STATE_ERROR && !m->fresh)
            /* in error and nothing restarts it yet (it failed at the
             * start of a keep-going group, or its first start failed) */
            schedule_restart (self, m);
          else
            /* degraded by its own checks without a transition that said
             * so to the group (it was already when the group started) */
            watch_degraded (self, m);
        }

      if (group_error == NULL && (!m->fresh || m->deferred) && state != EXO_RESOURCE_STATE_READY)
        {
          const GError *cause = exo_resource_get_last_error (m->resource);

          group_error = g_error_new (EXO_RESOURCE_ERROR,
                                     state == EXO_RESOURCE_STATE_ERROR ? EXO_RESOURCE_ERROR_DEPENDENCY
                                                                      : EXO_RESOURCE_ERROR_UNHEALTHY,
                                     "member '%s' is %s%s%s", member_name (m),
                                     exo_resource_state_to_string (state),
                                     cause != NULL ? ": " : "",
                                     cause != NULL ? cause->message : "");
        }
    }

  /* Act only now: what we call may call back into the group. */
  for (guint i = 0; i < actions->len; i++)
    {
      Action *action = g_ptr_array_index (actions, i);
      Member *m = action->member;

      if (m->removed)
        continue;
      switch (action->kind)
        {
        case ACTION_DEGRADE:
          /* Held degraded until the dependency is back: its own health
           * checks do not make it flap meanwhile. */
          if (exo_resource_state_is_usable (member_state (m)))
            {
              m->degraded_by_group = TRUE;
              _exo_resource_hold_degraded (m->resource, action->error);
            }
          break;
        case ACTION_RESTORE:
          m->degraded_by_group = FALSE;
          _exo_resource_hold_degraded (m->resource, NULL);
          /* its own checks failed while it was held: now that is its own
           * problem, and the degraded timer runs */
          watch_degraded (self, m);
          break;
        case ACTION_START:
          push_job (self, JOB_START, m);
          break;
        default:
          g_assert_not_reached ();
        }
    }

  group_state = exo_resource_get_state (EXO_RESOURCE (self));
  if (priv->up && !priv->escalated)
    {
      if (group_error != NULL && group_state == EXO_RESOURCE_STATE_READY)
        exo_resource_report_health (EXO_RESOURCE (self), FALSE, group_error);
      else if (group_error == NULL && group_state == EXO_RESOURCE_STATE_DEGRADED)
        exo_resource_report_health (EXO_RESOURCE (self), TRUE, NULL);
    }

  process_jobs (self);

  g_object_unref (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_pass (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  if (priv->pass_source != NULL || !priv->up)
    return;
  priv->pass_source = g_idle_source_new ();
  g_source_set_priority (priv->pass_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (priv->pass_source, pass_cb, self, NULL);
  g_source_set_static_name (priv->pass_source, "[exo] group health pass");
  g_source_attach (priv->pass_source, exo_resource_get_context (EXO_RESOURCE (self)));
}

/* --- the event queue --------------------------------------------------- */

/* Nothing that reacts to a member's transition runs inside its emission:
 * the handler below only updates the group's own bookkeeping and queues an
 * event; events_cb drains the queue from a source in the group's context.
 * Every handler of the member, connected before or after the group's, so
 * sees every transition, in order, before the group does anything about
 * it (docs/architecture.md, "No callbacks from inside an emission"). */

static void
member_event_clear (MemberEvent *event)
{
  member_unref (event->member);
  if (event->run != NULL)
    run_unref (event->run);
}

static gboolean events_cb (gpointer data);

static void
queue_event (ExoResourceGroup *self,
             Member           *m,
             Run              *run,
             EventKind         kind,
             ExoResourceState  old_state,
             ExoResourceState  new_state)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  MemberEvent event = {
    .member = member_ref (m),
    .run = run != NULL ? run_ref (run) : NULL,
    .kind = kind,
    .old_state = old_state,
    .new_state = new_state,
  };

  g_array_append_val (priv->events, event);
  if (priv->events_source != NULL || priv->draining_events)
    return;
  priv->events_source = g_idle_source_new ();
  /* before the sources that complete tasks: a run's outcome sees the events */
  g_source_set_priority (priv->events_source, G_PRIORITY_HIGH);
  g_source_set_callback (priv->events_source, events_cb, self, NULL);
  g_source_set_static_name (priv->events_source, "[exo] group member events");
  g_source_attach (priv->events_source, exo_resource_get_context (EXO_RESOURCE (self)));
}

static gboolean
degraded_tick_cb (gpointer data)
{
  Member *m = data;
  ExoResourceGroup *self = member_group (m);

  g_clear_pointer (&m->sup->degraded_source, g_source_unref);
  if (self == NULL || m->run != NULL || m->stopped || m->given_up)
    return G_SOURCE_REMOVE;
  if (_exo_resource_is_degraded_by_health (m->resource))
    {
      /* Like systemd's watchdog: restarted, and the result says why. */
      _exo_resource_set_result (m->resource, EXO_RESOURCE_RESULT_UNHEALTHY);
      push_job (self, JOB_RESTART, m);
    }
  return G_SOURCE_REMOVE;
}

static GSource *
member_timeout (Member      *m,
                guint        ms,
                GSourceFunc  func,
                const char  *name)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, m, NULL);
  g_source_set_static_name (source, name);
  g_source_attach (source, exo_resource_get_context (EXO_RESOURCE (member_group (m))));
  return source;
}

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static void
clear_member_timers (Member *m)
{
  if (m->sup == NULL)
    return;
  clear_source (&m->sup->restart_source);
  clear_source (&m->sup->degraded_source);
}

static void
watch_degraded (ExoResourceGroup *self,
                Member           *m)
{
  guint ms;

  if (DEGRADED_SOURCE (m) != NULL || RESTART_SOURCE (m) != NULL || m->job_queued ||
      !m->managed || m->stopped || m->given_up ||
      !_exo_resource_is_degraded_by_health (m->resource))
    return;

  ms = exo_managed_resource_get_degraded_restart (EXO_MANAGED_RESOURCE (m->resource));
  member_sup (m)->degraded_source = member_timeout (m, ms, degraded_tick_cb,
                                                   "[exo] group degraded member");
}

/* What the supervisor does about one transition, outside the emission. */
static void
supervise (ExoResourceGroup *self,
           MemberEvent      *event)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  Member *m = event->member;

  switch (event->kind)
    {
    case EVENT_RUN_FAILED:
      if (event->run->live)
        run_finish (event->run);
      return;

    case EVENT_FELL:
      if (priv->up && !priv->escalated)
        schedule_restart (self, m);
      return;

    case EVENT_EXTERNAL:
    default:
      break;
    }

  /* A transition no run of ours made: somebody else operates the member
   * (a manual Initialize, Cleanup or Restart), or it failed by itself. */
  switch (event->new_state)
    {
    case EXO_RESOURCE_STATE_CLOSING:
      /* Stopped by hand: out of supervision until started again. */
      m->stopped = TRUE;
      clear_member_timers (m);
      break;

    case EXO_RESOURCE_STATE_INITIALIZING:
      /* Started by hand: supervised again, and a give-up is forgotten
       * (like `systemctl restart` after start-limit-hit).  A member that
       * waited for its dependencies is started now. */
      m->stopped = FALSE;
      m->fresh = m->deferred = FALSE;
      if (m->given_up)
        {
          m->given_up = FALSE;
          member_reset_limiter (m);
        }
      if (m->sup != NULL)
        clear_source (&m->sup->restart_source);
      break;

    case EXO_RESOURCE_STATE_ERROR:
      /* Failed by itself, or a manual start failed: one attempt more; the
       * supervisor goes on with its backoff. */
      if (priv->up && !priv->escalated && member_state (m) == EXO_RESOURCE_STATE_ERROR)
        schedule_restart (self, m);
      break;

    case EXO_RESOURCE_STATE_DEGRADED:
      if (priv->up && !priv->escalated)
        watch_degraded (self, m);
      break;

    case EXO_RESOURCE_STATE_READY:
    case EXO_RESOURCE_STATE_UNINITIALIZED:
    case EXO_RESOURCE_STATE_CLOSED:
    default:
      break;
    }

  schedule_pass (self);
}

static gboolean
events_cb (gpointer data)
{
  ExoResourceGroup *self = data;
  ExoResourceGroupPrivate *priv = PRIV (self);

  g_clear_pointer (&priv->events_source, g_source_unref);
  g_object_ref (self);
  priv->draining_events = TRUE;

  /* What we call may queue more: they are handled in this loop, in order. */
  for (guint i = 0; i < priv->events->len; i++)
    {
      MemberEvent event = g_array_index (priv->events, MemberEvent, i);

      g_array_index (priv->events, MemberEvent, i).member = NULL;
      g_array_index (priv->events, MemberEvent, i).run = NULL;
      if (member_group (event.member) == self)
        supervise (self, &event);
      member_event_clear (&event);
    }
  g_array_set_size (priv->events, 0);
  priv->draining_events = FALSE;

  g_object_unref (self);
  return G_SOURCE_REMOVE;
}

/* The handler: bookkeeping of the group's own data only, then the queue. */
static void
member_state_changed (Member           *m,
                      ExoResourceState  old_state,
                      ExoResourceState  new_state)
{
  ExoResourceGroup *self = member_group (m);
  ExoResourceGroupPrivate *priv;
  gboolean fell;

  if (self == NULL)
    return;
  priv = PRIV (self);
  fell = new_state == EXO_RESOURCE_STATE_ERROR && exo_resource_state_is_usable (old_state);

  /* The backoff of its restarts starts again after a stable run. */
  if (new_state == EXO_RESOURCE_STATE_READY)
    {
      m->came_up = TRUE;
      /* (no MemberSup: no backoff to reset, nothing to time) */
      if (m->sup != NULL && m->sup->ready_since == 0)
        m->sup->ready_since = g_get_monotonic_time ();
    }
  else if (!exo_resource_state_is_usable (new_state) && m->sup != NULL && m->sup->ready_since != 0)
    {
      guint reset_ms = m->managed ?
        exo_managed_resource_get_backoff_reset (EXO_MANAGED_RESOURCE (m->resource)) :
        DEFAULT_BACKOFF_RESET_MS;

      if (g_get_monotonic_time () - m->sup->ready_since >= (gint64) reset_ms * 1000)
        m->sup->restart_streak = m->sup->restart_prev_ms = 0;
      m->sup->ready_since = 0;
    }

  if (m->run != NULL)
    {
      Run *run = m->run;

      /* Members a run is working on are its business, unless one that it
       * already brought up falls again. */
      if (fell && !run->cleanup && m->rstate == RS_DONE)
        {
          if (run->stop_on_failure)
            {
              const GError *cause = exo_resource_get_last_error (m->resource);

              /* Not marked failed: it holds what it made, so the rollback
               * cleans it up.  The run starts nothing more; the queue
               * finishes it. */
              if (run->error == NULL && cause != NULL)
                run->error = member_error (m, cause, "failed");
              else if (run->error == NULL)
                run->error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                                          "member '%s' failed after it was ready", member_name (m));
              run->doomed = TRUE;
              queue_event (self, m, run, EVENT_RUN_FAILED, old_state, new_state);
            }
          else if (run->group_init && priv->keep_going)
            {
              /* keep going: the start ends now, the group supervises it */
              if (run->error == NULL)
                run->error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                                          "member '%s' failed after it was ready", member_name (m));
              run->doomed = TRUE;
              queue_event (self, m, run, EVENT_RUN_FAILED, old_state, new_state);
            }
          else if (priv->up)
            queue_event (self, m, NULL, EVENT_FELL, old_state, new_state);
        }
      return;
    }

  queue_event (self, m, NULL, EVENT_EXTERNAL, old_state, new_state);
}

/* Restarts @m after its next backoff delay (its retry policy's, or the
 * group's default for unmanaged members). */
static gboolean
restart_tick_cb (gpointer data)
{
  Member *m = data;

  g_clear_pointer (&m->sup->restart_source, g_source_unref);
  if (member_group (m) != NULL)
    push_job (member_group (m), JOB_RESTART, m);
  return G_SOURCE_REMOVE;
}

static void
schedule_restart (ExoResourceGroup *self,
                  Member           *m)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  g_autoptr(ExoRetryPolicy) policy = NULL;
  MemberSup *sup;
  guint delay;

  if (m->removed || m->stopped || m->given_up || RESTART_SOURCE (m) != NULL || m->job_queued)
    return;

  sup = member_sup (m);
  clear_source (&sup->degraded_source);
  policy = m->managed ? exo_managed_resource_get_retry_policy (EXO_MANAGED_RESOURCE (m->resource))
                      : exo_retry_policy_copy (priv->default_policy);
  delay = exo_retry_policy_next_delay (policy, sup->restart_streak + 1, sup->restart_prev_ms,
                                       _exo_resource_get_rand (m->resource));
  sup->restart_prev_ms = delay;
  if (sup->restart_streak < G_MAXUINT)
    sup->restart_streak++;
  sup->restart_source = member_timeout (m, delay, restart_tick_cb, "[exo] group member restart");
}

/* Called by ExoResource after the handlers of each transition of a member. */
void
_exo_resource_group_member_state_changed (gpointer         member,
                                          ExoResourceState old_state,
                                          ExoResourceState new_state)
{
  member_state_changed (member, old_state, new_state);
}

/* --- initialize, cleanup, health --------------------------------------- */

static gboolean
cancel_idle_cb (gpointer data)
{
  ExoResourceGroup *self = data;
  ExoResourceGroupPrivate *priv = PRIV (self);
  Run *run = priv->init_run;

  g_clear_pointer (&priv->cancel_source, g_source_unref);
  if (run != NULL && run->live)
    {
      g_clear_error (&run->error);
      run->error = g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                "initialize of group '%s' was cancelled",
                                exo_resource_get_id (EXO_RESOURCE (self)));
      run->cancelled = TRUE;
      run_finish (run);
    }
  return G_SOURCE_REMOVE;
}

static void
init_cancelled_cb (GCancellable *cancellable,
                   gpointer      data)
{
  ExoResourceGroup *self = data;
  ExoResourceGroupPrivate *priv = PRIV (self);

  /* Not from inside cancel(): the run finishes from the group's context. */
  if (priv->cancel_source != NULL)
    return;
  priv->cancel_source = g_idle_source_new ();
  g_source_set_priority (priv->cancel_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (priv->cancel_source, cancel_idle_cb, self, NULL);
  g_source_set_static_name (priv->cancel_source, "[exo] group initialize cancelled");
  g_source_attach (priv->cancel_source, exo_resource_get_context (EXO_RESOURCE (self)));
}

static void
disconnect_init_cancellable (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  if (priv->init_cancellable != NULL)
    {
      g_cancellable_disconnect (priv->init_cancellable, priv->init_cancel_id);
      priv->init_cancel_id = 0;
      g_clear_object (&priv->init_cancellable);
    }
  if (priv->cancel_source != NULL)
    {
      g_source_destroy (priv->cancel_source);
      g_clear_pointer (&priv->cancel_source, g_source_unref);
    }
}

static void
init_done (ExoResourceGroup *self,
           Run              *run,
           gpointer          data)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  GTask *task = data;

  disconnect_init_cancellable (self);
  if (priv->init_run == run)
    priv->init_run = NULL;

  if (run->error != NULL && priv->keep_going && !run->aborted && !run->cancelled)
    {
      /* Keep going: the group is up and supervises what failed (restarted
       * with backoff by the health pass) and starts what waits for it once
       * its dependencies are ready, like a system that boots degraded. */
      for (guint i = 0; i < run->set->len; i++)
        {
          Member *m = g_ptr_array_index (run->set, i);

          /* never started (its dependency failed, or the start ended
           * first): started by the health pass once its dependencies
           * are ready; what is still initializing goes on by itself */
          if (!m->init_started && !m->failed && !m->stopped)
            m->fresh = m->deferred = TRUE;
        }
      g_task_return_boolean (task, TRUE);
    }
  else if (run->error != NULL)
    {
      priv->init_failed = TRUE;
      g_task_return_error (task, g_error_copy (run->error));
    }
  else
    g_task_return_boolean (task, TRUE);
}

static void
exo_resource_group_do_initialize (ExoResource *resource,
                                  GTask       *task)
{
  ExoResourceGroup *self = EXO_RESOURCE_GROUP (resource);
  ExoResourceGroupPrivate *priv = PRIV (self);
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;
  Run *run;

  priv->escalated = FALSE;
  priv->init_failed = FALSE;
  exo_restart_limiter_reset (priv->limiter);
  drop_jobs (self);

  if (!ensure_plan (self, &error))
    {
      priv->init_failed = TRUE;
      g_task_return_error (task, error);
      return;
    }

  for (guint i = 0; i < priv->members->len; i++)
    {
      Member *m = g_ptr_array_index (priv->members, i);

      m->fresh = FALSE;
      m->deferred = FALSE;
      m->init_started = FALSE;
      m->degraded_by_group = FALSE;
      m->blocked = FALSE;
      m->stopped = FALSE;
      m->given_up = FALSE;
      if (m->sup != NULL)
        m->sup->restart_streak = m->sup->restart_prev_ms = 0;
      clear_member_timers (m);
      member_reset_limiter (m);
    }

  run = run_new (self, FALSE, !priv->keep_going, collect_set (self, NULL, NULL),
                 init_done, g_object_ref (task), g_object_unref);
  run->group_init = TRUE;
  priv->init_run = run;

  if (cancellable != NULL)
    {
      priv->init_cancellable = g_object_ref (cancellable);
      priv->init_cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (init_cancelled_cb),
                                                    self, NULL);
    }

  run_start (run);
  run_unref (run);
}

/* TRUE when a member is not closed (or uninitialized), or busy. */
gboolean
_exo_resource_group_has_live_members (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  for (guint i = 0; i < priv->members->len; i++)
    {
      Member *m = g_ptr_array_index (priv->members, i);
      ExoResourceState state = member_state (m);

      if ((state != EXO_RESOURCE_STATE_UNINITIALIZED && state != EXO_RESOURCE_STATE_CLOSED &&
           !(priv->init_failed && m->failed && state == EXO_RESOURCE_STATE_ERROR)) ||
          _exo_resource_is_busy (m->resource))
        return TRUE;
    }
  return FALSE;
}

typedef struct
{
  gboolean rollback;
} CleanupPick;

static gboolean
pick_for_cleanup (Member   *m,
                  gpointer  data)
{
  CleanupPick *pick = data;
  ExoResourceState state = member_state (m);

  /* A rollback leaves the member that failed in `error` (to show what
   * failed) and what it never started alone — unless somebody started it
   * since: what is usable or busy is always cleaned up. */
  if (pick->rollback && (!m->init_started || m->failed) &&
      !exo_resource_state_is_usable (state) && !_exo_resource_is_busy (m->resource))
    return FALSE;
  return (state != EXO_RESOURCE_STATE_UNINITIALIZED && state != EXO_RESOURCE_STATE_CLOSED) ||
         _exo_resource_is_busy (m->resource);
}

static void
cleanup_done (ExoResourceGroup *self,
              Run              *run,
              gpointer          data)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  GTask *task = data;

  for (guint i = 0; i < priv->members->len; i++)
    ((Member *) g_ptr_array_index (priv->members, i))->init_started = FALSE;

  if (run->error != NULL)
    g_task_return_error (task, g_error_copy (run->error));
  else
    g_task_return_boolean (task, TRUE);
}

static void
exo_resource_group_do_cleanup (ExoResource *resource,
                               GTask       *task)
{
  ExoResourceGroup *self = EXO_RESOURCE_GROUP (resource);
  ExoResourceGroupPrivate *priv = PRIV (self);
  CleanupPick pick = { .rollback = priv->init_failed };
  gboolean ordered;
  Run *run;

  priv->up = FALSE;
  priv->init_failed = FALSE;
  drop_jobs (self);
  for (guint i = 0; i < priv->members->len; i++)
    clear_member_timers (g_ptr_array_index (priv->members, i));
  run_abort (priv->job_run);
  priv->job_run = NULL;
  run_abort (priv->init_run);
  priv->init_run = NULL;

  /* A graph with a cycle was never initialized by the group; whatever its
   * members hold is released without an order. */
  ordered = ensure_plan (self, NULL);
  run = run_new (self, TRUE, FALSE, collect_set (self, pick_for_cleanup, &pick),
                 cleanup_done, g_object_ref (task), g_object_unref);
  run->unordered = !ordered;
  run_start (run);
  run_unref (run);
}

typedef struct
{
  GTask *task;
  guint  pending;
} HealthCheck;

static void
health_finish (ExoResourceGroup *self,
               HealthCheck      *check)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  GTask *task = check->task;

  g_free (check);
  ensure_plan (self, NULL);

  for (guint i = 0; i < priv->order->len; i++)
    {
      Member *m = g_ptr_array_index (priv->order, i);
      ExoResourceState state = member_state (m);

      if (!m->fresh && state != EXO_RESOURCE_STATE_READY)
        {
          const GError *cause = exo_resource_get_last_error (m->resource);

          g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_UNHEALTHY,
                                   "member '%s' is %s%s%s", member_name (m),
                                   exo_resource_state_to_string (state),
                                   cause != NULL ? ": " : "",
                                   cause != NULL ? cause->message : "");
          g_object_unref (task);
          return;
        }
    }
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static void
member_health_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  HealthCheck *check = user_data;
  ExoResourceGroup *self = g_task_get_source_object (check->task);

  exo_resource_check_health_finish (EXO_RESOURCE (source), result, NULL);
  if (--check->pending == 0)
    health_finish (self, check);
}

/* Checks every usable member (in parallel); healthy when all are ready. */
static void
exo_resource_group_do_check_health (ExoResource *resource,
                                    GTask       *task)
{
  ExoResourceGroup *self = EXO_RESOURCE_GROUP (resource);
  g_autoptr(GPtrArray) set = NULL;
  HealthCheck *check;

  ensure_plan (self, NULL);
  set = collect_set (self, NULL, NULL);

  check = g_new0 (HealthCheck, 1);
  check->task = g_object_ref (task);
  check->pending = 1;

  for (guint i = 0; i < set->len; i++)
    {
      Member *m = g_ptr_array_index (set, i);

      if (m->removed || m->run != NULL || m->degraded_by_group ||
          !exo_resource_state_is_usable (member_state (m)))
        continue;
      check->pending++;
      exo_resource_check_health_async (m->resource, g_task_get_cancellable (task),
                                       member_health_cb, check);
    }

  if (--check->pending == 0)
    health_finish (self, check);
}

static void
group_state_changed (ExoResourceGroup *self,
                     ExoResourceState  old_state,
                     ExoResourceState  new_state,
                     gpointer          user_data)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  switch (new_state)
    {
    case EXO_RESOURCE_STATE_READY:
      if (old_state == EXO_RESOURCE_STATE_INITIALIZING)
        {
          priv->up = TRUE;
          schedule_pass (self);
        }
      break;

    case EXO_RESOURCE_STATE_ERROR:
      /* A group in error does not supervise until it is initialized again. */
      if (priv->up)
        {
          priv->escalated = TRUE;
          drop_jobs (self);
        }
      break;

    case EXO_RESOURCE_STATE_INITIALIZING:
    case EXO_RESOURCE_STATE_CLOSING:
    case EXO_RESOURCE_STATE_CLOSED:
    case EXO_RESOURCE_STATE_UNINITIALIZED:
      priv->up = FALSE;
      break;

    case EXO_RESOURCE_STATE_DEGRADED:
    default:
      break;
    }
}

/* --- adding and removing ---------------------------------------------- */

static void
member_attach (ExoResourceGroup *self,
               Member           *m)
{
  /* Told of the member's transitions by the resource itself (no signal
   * handler: see _exo_resource_group_member_state_changed()). */
  _exo_resource_set_member (m->resource, m);

  if (EXO_IS_MANAGED_RESOURCE (m->resource))
    {
      ExoManagedResource *managed = EXO_MANAGED_RESOURCE (m->resource);

      g_autoptr(ExoRetryPolicy) policy = exo_managed_resource_get_retry_policy (managed);

      m->managed = TRUE;
      m->saved_auto_recover = exo_managed_resource_get_auto_recover (managed);
      exo_managed_resource_set_auto_recover (managed, FALSE);
      if (m->sup != NULL)
        g_clear_pointer (&m->sup->limiter, exo_restart_limiter_free);
      /* the limiter itself is made at the first restart that counts */
      m->limit_burst = MIN (policy->restart_burst, EXO_RESTART_BURST_MAX);
      m->limit_interval_ms = policy->restart_interval_ms;
    }
}

/* Takes @m out of the group's tables and out of any run.  The caller
 * keeps a ref. */
static void
member_detach (ExoResourceGroup *self,
               Member           *m)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  Run *run = m->run;

  m->removed = TRUE;          /* member_group() is NULL: no more bookkeeping */
  clear_member_timers (m);

  g_hash_table_remove (priv->by_name, m);
  g_ptr_array_steal_index (priv->members, m->index);
  for (guint i = m->index; i < priv->members->len; i++)
    ((Member *) g_ptr_array_index (priv->members, i))->index = i;

  /* For a run, a member that left is done. */
  if (run != NULL)
    {
      if (m->rstate != RS_DONE)
        {
          m->rstate = RS_DONE;
          run->n_remaining--;
        }
      m->run = NULL;
    }
  m->deps = m->rdeps = NULL;
  m->n_deps = m->n_rdeps = 0;

  invalidate_plan (self, TRUE);
  if (run != NULL && run->live)
    {
      run_ref (run);
      run_drain (run);
      run_unref (run);
    }
}

static void
member_release (Member *m)
{
  if (_exo_resource_get_member (m->resource) == m)
    _exo_resource_set_member (m->resource, NULL);
  forget_dep_names (m);
  m->owner = NULL;
  if (m->managed)
    exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (m->resource),
                                           m->saved_auto_recover);
  m->managed = FALSE;
}

/**
 * exo_resource_group_new:
 * @id: (nullable): the group's id; one is made up when %NULL
 *
 * Returns: (transfer full): a new, empty group
 */
ExoResourceGroup *
exo_resource_group_new (const char *id)
{
  return g_object_new (EXO_TYPE_RESOURCE_GROUP, "id", id, NULL);
}

/**
 * exo_resource_group_add:
 * @self: a group
 * @resource: the resource to add; its id is its member name
 * @depends_on: (nullable) (array zero-terminated=1): names of the members
 *   it depends on; they need not exist yet while the group is not active
 * @error: return location for an error
 *
 * Adds @resource to @self, which takes a reference.  A resource belongs to
 * at most one group.  Added to an active group, @resource is initialized as
 * soon as its dependencies are ready; its dependencies must then exist.
 * An #ExoManagedResource's auto-recover is switched off while it is a
 * member: the group supervises it.
 *
 * Returns: %TRUE if @resource was added; %FALSE with
 *   %EXO_RESOURCE_ERROR_INVALID_STATE for a name already taken or a resource
 *   already in a group, %EXO_RESOURCE_ERROR_DEPENDENCY for a dependency
 *   that would leave the graph invalid
 */
gboolean
exo_resource_group_add (ExoResourceGroup   *self,
                        ExoResource        *resource,
                        const char * const *depends_on,
                        GError            **error)
{
  ExoResourceGroupPrivate *priv;
  ExoResourceGroup *owner;
  const char *name;
  Member *m;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), FALSE);
  g_return_val_if_fail (EXO_IS_RESOURCE (resource), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  priv = PRIV (self);
  name = exo_resource_get_id (resource);

  owner = group_of (resource);
  if (owner != NULL)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                   "resource '%s' already belongs to group '%s'",
                   name, exo_resource_get_id (EXO_RESOURCE (owner)));
      return FALSE;
    }

  for (ExoResourceGroup *g = self; g != NULL; g = group_of (EXO_RESOURCE (g)))
    if (EXO_RESOURCE (g) == resource)
      {
        g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                     "group '%s' cannot contain itself", name);
        return FALSE;
      }

  if (member_lookup (priv, name) != NULL)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_INVALID_STATE,
                   "group '%s' already has a member '%s'",
                   exo_resource_get_id (EXO_RESOURCE (self)), name);
      return FALSE;
    }

  m = g_new0 (Member, 1);
  m->refcount = 1;
  m->owner = self;
  m->resource = g_object_ref (resource);

  for (guint i = 0; depends_on != NULL && depends_on[i] != NULL; i++)
    {
      if (g_str_equal (depends_on[i], name))
        {
          g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                       "dependency cycle: %s -> %s", name, name);
          member_unref (m);
          return FALSE;
        }
      if (!member_has_dep_name (m, depends_on[i]))
        add_dep_name (m, depends_on[i]);
    }

  m->index = priv->members->len;
  g_ptr_array_add (priv->members, m);
  g_hash_table_add (priv->by_name, m);
  invalidate_plan (self, FALSE);

  if (group_is_active (self))
    {
      if (!ensure_plan (self, error))
        {
          g_hash_table_remove (priv->by_name, m);
          g_ptr_array_steal_index (priv->members, m->index);
          invalidate_plan (self, TRUE);
          member_unref (m);
          return FALSE;
        }
      m->fresh = TRUE;
    }

  member_attach (self, m);
  schedule_pass (self);

  g_signal_emit (self, signals[SIGNAL_MEMBER_ADDED], 0, resource);
  return TRUE;
}

/**
 * exo_resource_group_add_dependency:
 * @self: a group
 * @member: the name of a member
 * @depends_on: the name of the member it depends on
 * @error: return location for an error
 *
 * Makes @member depend on @depends_on.  While the group is not active,
 * @depends_on need not exist yet: see exo_resource_group_validate().
 *
 * Returns: %TRUE if the dependency is recorded; %FALSE with
 *   %EXO_RESOURCE_ERROR_NOT_FOUND if @member is not a member, or
 *   %EXO_RESOURCE_ERROR_DEPENDENCY if the edge makes a cycle with itself or
 *   (while active) a cycle or a missing dependency
 */
gboolean
exo_resource_group_add_dependency (ExoResourceGroup  *self,
                                   const char        *member,
                                   const char        *depends_on,
                                   GError           **error)
{
  ExoResourceGroupPrivate *priv;
  Member *m;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), FALSE);
  g_return_val_if_fail (member != NULL, FALSE);
  g_return_val_if_fail (depends_on != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  priv = PRIV (self);
  m = member_lookup (priv, member);
  if (m == NULL)
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_NOT_FOUND,
                   "group '%s' has no member '%s'",
                   exo_resource_get_id (EXO_RESOURCE (self)), member);
      return FALSE;
    }
  if (g_str_equal (member, depends_on))
    {
      g_set_error (error, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                   "dependency cycle: %s -> %s", member, member);
      return FALSE;
    }
  if (member_has_dep_name (m, depends_on))
    return TRUE;

  add_dep_name (m, depends_on);
  invalidate_plan (self, FALSE);

  if (group_is_active (self) && !ensure_plan (self, error))
    {
      g_ptr_array_remove_index (deps_of (m), n_dep_names (m) - 1);
      invalidate_plan (self, FALSE);
      return FALSE;
    }

  schedule_pass (self);
  return TRUE;
}

static void
removal_finish (GTask  *task,
                GError *error)
{
  ExoResourceGroup *self = g_task_get_source_object (task);
  Member *m = g_task_get_task_data (task);

  member_release (m);
  g_signal_emit (self, signals[SIGNAL_MEMBER_REMOVED], 0, m->resource);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
removal_cleanup_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  exo_resource_cleanup_finish (EXO_RESOURCE (source), result, &error);
  removal_finish (task, error);
}

/**
 * exo_resource_group_remove_async:
 * @self: a group
 * @member: the name of the member to remove
 * @force: remove it even if other members depend on it; their
 *   dependencies on it are dropped
 * @cancellable: (nullable): a cancellable (the cleanup itself always runs
 *   to the end)
 * @callback: called when the member is removed and cleaned up
 * @user_data: data for @callback
 *
 * Removes @member from @self.  If it holds anything (it is not
 * `uninitialized` or `closed`) it is cleaned up first, and
 * #ExoResourceGroup::member-removed is emitted when that is done.
 */
void
exo_resource_group_remove_async (ExoResourceGroup    *self,
                                 const char          *member,
                                 gboolean             force,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  ExoResourceGroupPrivate *priv;
  g_autoptr(GTask) task = NULL;
  g_autoptr(GPtrArray) dependents = NULL;
  ExoResourceState state;
  Member *m;

  g_return_if_fail (EXO_IS_RESOURCE_GROUP (self));
  g_return_if_fail (member != NULL);

  priv = PRIV (self);
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, exo_resource_group_remove_async);

  m = member_lookup (priv, member);
  if (m == NULL)
    {
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_NOT_FOUND,
                               "group '%s' has no member '%s'",
                               exo_resource_get_id (EXO_RESOURCE (self)), member);
      return;
    }

  dependents = g_ptr_array_new ();
  for (guint i = 0; i < priv->members->len; i++)
    {
      Member *d = g_ptr_array_index (priv->members, i);

      if (member_has_dep_name (d, member_name (m)))
        g_ptr_array_add (dependents, d);
    }

  if (dependents->len > 0 && !force)
    {
      g_autoptr(GString) names = g_string_new (NULL);

      for (guint i = 0; i < dependents->len; i++)
        g_string_append_printf (names, "%s'%s'", i > 0 ? ", " : "",
                                member_name ((Member *) g_ptr_array_index (dependents, i)));
      g_task_return_new_error (task, EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_DEPENDENCY,
                               "member '%s' is needed by %s", member_name (m), names->str);
      return;
    }

  for (guint i = 0; i < dependents->len; i++)
    {
      Member *d = g_ptr_array_index (dependents, i);

      for (guint j = 0; j < n_dep_names (d); j++)
        if (g_str_equal (g_ptr_array_index (deps_of (d), j), member_name (m)))
          g_ptr_array_remove_index (deps_of (d), j--);
    }

  g_task_set_task_data (task, member_ref (m), member_unref);
  member_detach (self, m);
  member_unref (m);   /* the group's ref */

  schedule_pass (self);

  state = member_state (m);
  if ((state != EXO_RESOURCE_STATE_UNINITIALIZED && state != EXO_RESOURCE_STATE_CLOSED) ||
      _exo_resource_is_busy (m->resource))
    exo_resource_cleanup_async (m->resource, NULL, removal_cleanup_cb, g_steal_pointer (&task));
  else
    removal_finish (task, NULL);
}

/**
 * exo_resource_group_remove_finish:
 * @self: a group
 * @result: the result given to the callback
 * @error: return location for an error
 *
 * Returns: %TRUE if the member was removed and cleaned up; %FALSE with
 *   %EXO_RESOURCE_ERROR_NOT_FOUND, with %EXO_RESOURCE_ERROR_DEPENDENCY
 *   (naming the members that depend on it; nothing was changed), or with
 *   the error of its cleanup (it was removed all the same)
 */
gboolean
exo_resource_group_remove_finish (ExoResourceGroup  *self,
                                  GAsyncResult      *result,
                                  GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* --- queries ----------------------------------------------------------- */

/**
 * exo_resource_group_validate:
 * @self: a group
 * @error: return location for an error
 *
 * Checks the graph: every dependency names a member, and there is no cycle.
 *
 * Returns: %TRUE if valid; otherwise %FALSE with
 *   %EXO_RESOURCE_ERROR_DEPENDENCY and a message that names the member and
 *   its unknown dependency, or the members of a cycle in order
 */
gboolean
exo_resource_group_validate (ExoResourceGroup  *self,
                             GError           **error)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return ensure_plan (self, error);
}

/**
 * exo_resource_group_lookup:
 * @self: a group
 * @member: a member name
 *
 * Returns: (transfer none) (nullable): the member called @member
 */
ExoResource *
exo_resource_group_lookup (ExoResourceGroup *self,
                           const char       *member)
{
  Member *m;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), NULL);
  g_return_val_if_fail (member != NULL, NULL);

  m = member_lookup (PRIV (self), member);
  return m != NULL ? m->resource : NULL;
}

/**
 * exo_resource_group_get_n_members:
 * @self: a group
 *
 * Returns: the number of members
 */
guint
exo_resource_group_get_n_members (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), 0);
  return PRIV (self)->members->len;
}

/**
 * exo_resource_group_get_members:
 * @self: a group
 *
 * Returns: (transfer container) (element-type ExoResource): the members in
 *   topological order (dependencies first); if the graph is not valid, the
 *   members it cannot order come last, in the order they were added
 */
GPtrArray *
exo_resource_group_get_members (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv;
  GPtrArray *members;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), NULL);

  priv = PRIV (self);
  ensure_plan (self, NULL);
  members = g_ptr_array_new_full (priv->order->len, g_object_unref);
  for (guint i = 0; i < priv->order->len; i++)
    g_ptr_array_add (members, g_object_ref (((Member *) g_ptr_array_index (priv->order, i))->resource));
  return members;
}

/**
 * exo_resource_group_get_topological_order:
 * @self: a group
 * @error: return location for an error
 *
 * Returns: (transfer full) (array zero-terminated=1) (nullable): the member
 *   names, dependencies first (the order initialize starts them in when
 *   nothing runs in parallel), or %NULL if the graph is not valid (see
 *   exo_resource_group_validate())
 */
char **
exo_resource_group_get_topological_order (ExoResourceGroup  *self,
                                          GError           **error)
{
  ExoResourceGroupPrivate *priv;
  char **names;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  priv = PRIV (self);
  if (!ensure_plan (self, error))
    return NULL;
  names = g_new (char *, priv->order->len + 1);
  for (guint i = 0; i < priv->order->len; i++)
    names[i] = g_strdup (member_name (g_ptr_array_index (priv->order, i)));
  names[priv->order->len] = NULL;
  return names;
}

/**
 * exo_resource_group_get_dependencies:
 * @self: a group
 * @member: a member name
 *
 * Returns: (transfer full) (array zero-terminated=1) (nullable): the names
 *   @member depends on, in the order given (possibly names that are not
 *   members yet), or %NULL if @member is not a member
 */
char **
exo_resource_group_get_dependencies (ExoResourceGroup *self,
                                     const char       *member)
{
  Member *m;
  char **names;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), NULL);
  g_return_val_if_fail (member != NULL, NULL);

  m = member_lookup (PRIV (self), member);
  if (m == NULL)
    return NULL;
  names = g_new (char *, n_dep_names (m) + 1);
  for (guint i = 0; i < n_dep_names (m); i++)
    names[i] = g_strdup (g_ptr_array_index (deps_of (m), i));
  names[n_dep_names (m)] = NULL;
  return names;
}

/**
 * exo_resource_group_get_dependents:
 * @self: a group
 * @member: a member name
 *
 * Returns: (transfer full) (array zero-terminated=1) (nullable): the names
 *   of the members that depend on @member directly, in the order they were
 *   added, or %NULL if @member is not a member
 */
char **
exo_resource_group_get_dependents (ExoResourceGroup *self,
                                   const char       *member)
{
  ExoResourceGroupPrivate *priv;
  GPtrArray *names;

  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), NULL);
  g_return_val_if_fail (member != NULL, NULL);

  priv = PRIV (self);
  if (member_lookup (priv, member) == NULL)
    return NULL;

  names = g_ptr_array_new ();
  for (guint i = 0; i < priv->members->len; i++)
    {
      Member *d = g_ptr_array_index (priv->members, i);

      if (member_has_dep_name (d, member))
        g_ptr_array_add (names, g_strdup (member_name (d)));
    }
  g_ptr_array_add (names, NULL);
  return (char **) g_ptr_array_free (names, FALSE);
}

/* --- properties -------------------------------------------------------- */

/**
 * exo_resource_group_get_strategy:
 * @self: a group
 *
 * Returns: the value of #ExoResourceGroup:strategy
 */
ExoSupervisionStrategy
exo_resource_group_get_strategy (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), EXO_SUPERVISION_ONE_FOR_ONE);
  return PRIV (self)->strategy;
}

/**
 * exo_resource_group_set_strategy:
 * @self: a group
 * @strategy: what to restart when a member fails
 *
 * Sets #ExoResourceGroup:strategy.
 */
void
exo_resource_group_set_strategy (ExoResourceGroup       *self,
                                 ExoSupervisionStrategy  strategy)
{
  ExoResourceGroupPrivate *priv;

  g_return_if_fail (EXO_IS_RESOURCE_GROUP (self));
  g_return_if_fail ((guint) strategy <= EXO_SUPERVISION_ONE_FOR_ALL);

  priv = PRIV (self);
  if (priv->strategy == strategy)
    return;
  priv->strategy = strategy;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STRATEGY]);
}

/**
 * exo_resource_group_get_max_parallel:
 * @self: a group
 *
 * Returns: the value of #ExoResourceGroup:max-parallel (0 = no limit)
 */
guint
exo_resource_group_get_max_parallel (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), 0);
  return PRIV (self)->max_parallel;
}

/**
 * exo_resource_group_set_max_parallel:
 * @self: a group
 * @max_parallel: how many members may initialize (or clean up) at once;
 *   0 = no limit
 *
 * Sets #ExoResourceGroup:max-parallel.
 */
void
exo_resource_group_set_max_parallel (ExoResourceGroup *self,
                                     guint             max_parallel)
{
  ExoResourceGroupPrivate *priv;

  g_return_if_fail (EXO_IS_RESOURCE_GROUP (self));

  priv = PRIV (self);
  if (priv->max_parallel == max_parallel)
    return;
  priv->max_parallel = max_parallel;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_PARALLEL]);

  drain_live_runs (self, FALSE);
}

static void
update_limiter (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  exo_restart_limiter_free (priv->limiter);
  priv->limiter = exo_restart_limiter_new (priv->restart_burst, priv->restart_interval_ms);
}

/**
 * exo_resource_group_get_restart_burst:
 * @self: a group
 *
 * Returns: the value of #ExoResourceGroup:restart-burst (0 = no limit)
 */
guint
exo_resource_group_get_restart_burst (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), 0);
  return PRIV (self)->restart_burst;
}

/**
 * exo_resource_group_set_restart_burst:
 * @self: a group
 * @burst: restarts allowed within the interval; 0 = no limit
 *
 * Sets #ExoResourceGroup:restart-burst.  The count of past restarts is
 * forgotten.
 */
void
exo_resource_group_set_restart_burst (ExoResourceGroup *self,
                                      guint             burst)
{
  g_return_if_fail (EXO_IS_RESOURCE_GROUP (self));

  if (PRIV (self)->restart_burst == burst)
    return;
  PRIV (self)->restart_burst = burst;
  update_limiter (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESTART_BURST]);
}

/**
 * exo_resource_group_get_restart_interval:
 * @self: a group
 *
 * Returns: the value of #ExoResourceGroup:restart-interval-ms
 */
guint
exo_resource_group_get_restart_interval (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), 0);
  return PRIV (self)->restart_interval_ms;
}

/**
 * exo_resource_group_set_restart_interval:
 * @self: a group
 * @interval_ms: the window of the restart limit, in milliseconds
 *
 * Sets #ExoResourceGroup:restart-interval-ms.  The count of past restarts
 * is forgotten.
 */
void
exo_resource_group_set_restart_interval (ExoResourceGroup *self,
                                         guint             interval_ms)
{
  g_return_if_fail (EXO_IS_RESOURCE_GROUP (self));

  if (PRIV (self)->restart_interval_ms == interval_ms)
    return;
  PRIV (self)->restart_interval_ms = interval_ms;
  update_limiter (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESTART_INTERVAL_MS]);
}

/**
 * exo_resource_group_get_keep_going:
 * @self: a group
 *
 * Returns: whether a member that fails at the group's start leaves the group
 *   up (see #ExoResourceGroup:keep-going)
 */
gboolean
exo_resource_group_get_keep_going (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), FALSE);
  return PRIV (self)->keep_going;
}

/**
 * exo_resource_group_set_keep_going:
 * @self: a group
 * @keep_going: the new value
 *
 * See #ExoResourceGroup:keep-going.  Takes effect at the next initialize.
 */
void
exo_resource_group_set_keep_going (ExoResourceGroup *self,
                                   gboolean          keep_going)
{
  g_return_if_fail (EXO_IS_RESOURCE_GROUP (self));

  keep_going = !!keep_going;
  if (PRIV (self)->keep_going == (guint) keep_going)
    return;
  PRIV (self)->keep_going = keep_going;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_KEEP_GOING]);
}

/**
 * exo_resource_group_get_restarts:
 * @self: a group
 *
 * Returns: restarts done by supervision since made or reset (one per
 *   failure handled, however many members it restarted)
 */
guint
exo_resource_group_get_restarts (ExoResourceGroup *self)
{
  g_return_val_if_fail (EXO_IS_RESOURCE_GROUP (self), 0);
  return PRIV (self)->restarts;
}

/* --- GObject ----------------------------------------------------------- */

static void
exo_resource_group_reset (ExoResource *resource)
{
  ExoResourceGroup *self = EXO_RESOURCE_GROUP (resource);
  ExoResourceGroupPrivate *priv = PRIV (self);

  EXO_RESOURCE_CLASS (exo_resource_group_parent_class)->reset (resource);

  exo_restart_limiter_reset (priv->limiter);
  if (priv->restarts != 0)
    {
      priv->restarts = 0;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESTARTS]);
    }
}

static void
exo_resource_group_collect_metrics (ExoResource  *resource,
                                    GVariantDict *metrics)
{
  ExoResourceGroupPrivate *priv = PRIV (resource);

  if (EXO_RESOURCE_CLASS (exo_resource_group_parent_class)->collect_metrics != NULL)
    EXO_RESOURCE_CLASS (exo_resource_group_parent_class)->collect_metrics (resource, metrics);

  g_variant_dict_insert (metrics, "members", "u", priv->members->len);
  g_variant_dict_insert (metrics, "restarts", "u", priv->restarts);
  g_variant_dict_insert (metrics, "strategy", "s", exo_supervision_strategy_to_string (priv->strategy));
  g_variant_dict_insert (metrics, "max-parallel", "u", priv->max_parallel);
  g_variant_dict_insert (metrics, "restart-limit-hit", "b", (gboolean) priv->escalated);
}

static void
exo_resource_group_dispose (GObject *object)
{
  ExoResourceGroup *self = EXO_RESOURCE_GROUP (object);
  ExoResourceGroupPrivate *priv = PRIV (self);

  priv->up = FALSE;
  if (priv->pass_source != NULL)
    {
      g_source_destroy (priv->pass_source);
      g_clear_pointer (&priv->pass_source, g_source_unref);
    }
  if (priv->events_source != NULL)
    {
      g_source_destroy (priv->events_source);
      g_clear_pointer (&priv->events_source, g_source_unref);
    }
  for (guint i = 0; i < priv->events->len; i++)
    member_event_clear (&g_array_index (priv->events, MemberEvent, i));
  g_array_set_size (priv->events, 0);
  disconnect_init_cancellable (self);
  drop_jobs (self);

  while (priv->members->len > 0)
    {
      Member *m = g_ptr_array_index (priv->members, priv->members->len - 1);

      clear_member_timers (m);
      m->removed = TRUE;
      m->run = NULL;
      m->deps = m->rdeps = NULL;
      m->n_deps = m->n_rdeps = 0;
      member_release (m);
      g_hash_table_remove (priv->by_name, m);
      g_ptr_array_steal_index (priv->members, priv->members->len - 1);
      member_unref (m);
    }
  g_ptr_array_set_size (priv->order, 0);
  priv->plan_dirty = TRUE;

  G_OBJECT_CLASS (exo_resource_group_parent_class)->dispose (object);
}

static void
exo_resource_group_finalize (GObject *object)
{
  ExoResourceGroupPrivate *priv = PRIV (object);

  g_assert (priv->live_runs->len == 0);
  g_clear_pointer (&priv->members, g_ptr_array_unref);
  g_clear_pointer (&priv->by_name, g_hash_table_unref);
  g_clear_pointer (&priv->dep_names, g_hash_table_unref);
  g_clear_pointer (&priv->order, g_ptr_array_unref);
  g_clear_pointer (&priv->live_runs, g_ptr_array_unref);
  g_clear_pointer (&priv->edges, g_free);
  g_clear_pointer (&priv->limiter, exo_restart_limiter_free);
  g_clear_pointer (&priv->events, g_array_unref);
  g_clear_pointer (&priv->default_policy, exo_retry_policy_free);
  g_clear_error (&priv->plan_error);

  G_OBJECT_CLASS (exo_resource_group_parent_class)->finalize (object);
}

static void
exo_resource_group_constructed (GObject *object)
{
  G_OBJECT_CLASS (exo_resource_group_parent_class)->constructed (object);

  g_signal_connect (object, "state-changed", G_CALLBACK (group_state_changed), NULL);
}

static void
exo_resource_group_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  ExoResourceGroup *self = EXO_RESOURCE_GROUP (object);
  ExoResourceGroupPrivate *priv = PRIV (self);

  switch (prop_id)
    {
    case PROP_STRATEGY:
      g_value_set_enum (value, priv->strategy);
      break;
    case PROP_MAX_PARALLEL:
      g_value_set_uint (value, priv->max_parallel);
      break;
    case PROP_RESTART_BURST:
      g_value_set_uint (value, priv->restart_burst);
      break;
    case PROP_RESTART_INTERVAL_MS:
      g_value_set_uint (value, priv->restart_interval_ms);
      break;
    case PROP_RESTARTS:
      g_value_set_uint (value, priv->restarts);
      break;
    case PROP_KEEP_GOING:
      g_value_set_boolean (value, priv->keep_going);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_resource_group_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  ExoResourceGroup *self = EXO_RESOURCE_GROUP (object);

  switch (prop_id)
    {
    case PROP_STRATEGY:
      exo_resource_group_set_strategy (self, g_value_get_enum (value));
      break;
    case PROP_MAX_PARALLEL:
      exo_resource_group_set_max_parallel (self, g_value_get_uint (value));
      break;
    case PROP_RESTART_BURST:
      exo_resource_group_set_restart_burst (self, g_value_get_uint (value));
      break;
    case PROP_RESTART_INTERVAL_MS:
      exo_resource_group_set_restart_interval (self, g_value_get_uint (value));
      break;
    case PROP_KEEP_GOING:
      exo_resource_group_set_keep_going (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
exo_resource_group_class_init (ExoResourceGroupClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExoResourceClass *resource_class = EXO_RESOURCE_CLASS (klass);

  object_class->constructed = exo_resource_group_constructed;
  object_class->dispose = exo_resource_group_dispose;
  object_class->finalize = exo_resource_group_finalize;
  object_class->get_property = exo_resource_group_get_property;
  object_class->set_property = exo_resource_group_set_property;

  resource_class->do_initialize = exo_resource_group_do_initialize;
  resource_class->do_cleanup = exo_resource_group_do_cleanup;
  resource_class->do_check_health = exo_resource_group_do_check_health;
  resource_class->collect_metrics = exo_resource_group_collect_metrics;
  resource_class->reset = exo_resource_group_reset;
  exo_resource_class_set_resource_type (resource_class, "group");


  /**
   * ExoResourceGroup:strategy:
   *
   * What the group restarts when a member that was ready fails.
   */
  properties[PROP_STRATEGY] =
    g_param_spec_enum ("strategy", NULL, NULL,
                       EXO_TYPE_SUPERVISION_STRATEGY, EXO_SUPERVISION_ONE_FOR_ONE,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoResourceGroup:max-parallel:
   *
   * How many members may initialize or clean up at once; 0 = no limit.
   */
  properties[PROP_MAX_PARALLEL] =
    g_param_spec_uint ("max-parallel", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoResourceGroup:restart-burst:
   *
   * At most this many restarts within #ExoResourceGroup:restart-interval-ms;
   * one more escalates the group to `error`.  0 = no limit.
   */
  properties[PROP_RESTART_BURST] =
    g_param_spec_uint ("restart-burst", NULL, NULL, 0, G_MAXUINT, DEFAULT_RESTART_BURST,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoResourceGroup:restart-interval-ms:
   *
   * The window of the restart limit, in milliseconds.
   */
  properties[PROP_RESTART_INTERVAL_MS] =
    g_param_spec_uint ("restart-interval-ms", NULL, NULL, 0, G_MAXUINT, DEFAULT_RESTART_INTERVAL_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoResourceGroup:restarts:
   *
   * Restarts done by supervision since made or reset.
   */
  properties[PROP_RESTARTS] =
    g_param_spec_uint ("restarts", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExoResourceGroup:keep-going:
   *
   * When %TRUE, a member that fails to initialize while the group starts
   * does not fail the group's initialize (no rollback): the group comes up
   * `degraded`, restarts that member with backoff like any failed member,
   * and starts the members that depend on it once it is ready — the way a
   * system boots with a failed service.  exo-node's root group keeps going.
   */
  properties[PROP_KEEP_GOING] =
    g_param_spec_boolean ("keep-going", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ExoResourceGroup::member-added:
   * @self: the group
   * @member: the resource added
   *
   * Emitted when a member was added.
   */
  signals[SIGNAL_MEMBER_ADDED] =
    g_signal_new ("member-added",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (ExoResourceGroupClass, member_added),
                  NULL, NULL,
                  g_cclosure_marshal_VOID__OBJECT,
                  G_TYPE_NONE, 1, EXO_TYPE_RESOURCE);
  g_signal_set_va_marshaller (signals[SIGNAL_MEMBER_ADDED], G_TYPE_FROM_CLASS (klass),
                              g_cclosure_marshal_VOID__OBJECTv);

  /**
   * ExoResourceGroup::member-removed:
   * @self: the group
   * @member: the resource removed
   *
   * Emitted when a member has left the group and was cleaned up.
   */
  signals[SIGNAL_MEMBER_REMOVED] =
    g_signal_new ("member-removed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (ExoResourceGroupClass, member_removed),
                  NULL, NULL,
                  g_cclosure_marshal_VOID__OBJECT,
                  G_TYPE_NONE, 1, EXO_TYPE_RESOURCE);
  g_signal_set_va_marshaller (signals[SIGNAL_MEMBER_REMOVED], G_TYPE_FROM_CLASS (klass),
                              g_cclosure_marshal_VOID__OBJECTv);
}

static void
exo_resource_group_init (ExoResourceGroup *self)
{
  ExoResourceGroupPrivate *priv = PRIV (self);

  priv->members = g_ptr_array_new_with_free_func (member_unref);
  priv->by_name = g_hash_table_new (member_key_hash, member_key_equal);
  priv->dep_names = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) g_ptr_array_unref);
  priv->order = g_ptr_array_new ();
  priv->live_runs = g_ptr_array_new ();
  priv->strategy = EXO_SUPERVISION_ONE_FOR_ONE;
  priv->restart_burst = DEFAULT_RESTART_BURST;
  priv->restart_interval_ms = DEFAULT_RESTART_INTERVAL_MS;
  priv->limiter = exo_restart_limiter_new (priv->restart_burst, priv->restart_interval_ms);
  priv->plan_dirty = TRUE;
  g_queue_init (&priv->jobs);
  priv->events = g_array_new (FALSE, FALSE, sizeof (MemberEvent));
  priv->default_policy = exo_retry_policy_new ();
}
