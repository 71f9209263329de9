/* exo-resource-group-supervisor.c: the supervision of an
 * ExoResourceGroup's members once it is up.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: the member event queue (member_state_changed() queues a
 * MemberEvent, events_cb() drains it from an idle at G_PRIORITY_HIGH);
 * the restart jobs (one-for-one, one-for-all, rest-for-one: restart_set(),
 * process_jobs()), their backoff timers, the restart limits and the
 * escalation to the group's own `error`; the degraded timers; the health
 * pass (pass_cb()) and do_check_health; keep-going; the group's reaction
 * to its own transitions (_exo_resource_group_state_changed()).
 *
 * Rules: everything here runs in the group's main context; no locks.
 * "No callbacks into other objects from inside a signal emission" (see
 * docs/architecture.md, "No callbacks from inside an emission"):
 * member_state_changed() is called by ExoResource after every handler of a
 * member's state-changed, from inside that emission, so it touches only the
 * group's bookkeeping and queues an event; everything that calls out
 * (rollback of a doomed run, restarts, cleanup, health checks) happens in
 * events_cb(), pass_cb() or a timer, outside any emission.  What those call
 * may queue more events; they are handled in the same drain, in order.
 */
#include "exo-resource-group-private.h"

static void schedule_restart (ExoResourceGroup *self,
                              Member           *m);
static void watch_degraded  (ExoResourceGroup *self,
                             Member           *m);

/* --- supervision ------------------------------------------------------- */

static void
job_free (Job *job)
{
  _exo_resource_group_member_unref (job->member);
  g_free (job);
}

void
_exo_resource_group_drop_jobs (ExoResourceGroup *self)
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
  _exo_resource_group_schedule_pass (self);
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
      return _exo_resource_group_collect_set (self, is_not_fresh, NULL);

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
        return _exo_resource_group_collect_set (self, is_marked, GUINT_TO_POINTER (mark));
      }

    case EXO_SUPERVISION_ONE_FOR_ONE:
    default:
      {
        GPtrArray *set = g_ptr_array_new_with_free_func (_exo_resource_group_member_unref);

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
  _exo_resource_group_drop_jobs (self);
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
  _exo_resource_group_schedule_pass (self);
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

  set = g_ptr_array_new_full (run->set->len, _exo_resource_group_member_unref);
  for (guint i = 0; i < run->set->len; i++)
    {
      Member *m = g_ptr_array_index (run->set, i);

      if (!m->removed)
        g_ptr_array_add (set, member_ref (m));
    }

  init = _exo_resource_group_run_new (self, FALSE, FALSE, set, restart_init_done, NULL, NULL);
  priv->job_run = init;
  _exo_resource_group_run_start (init);
  _exo_resource_group_run_unref (init);
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
    _exo_resource_group_schedule_pass (self);
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

      if (m->removed || !_exo_resource_group_ensure_plan (self, NULL))
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
          _exo_resource_group_notify_restarts (self);
          run = _exo_resource_group_run_new (self, TRUE, FALSE, restart_set (self, m), restart_cleanup_done, NULL, NULL);
        }
      else
        {
          GPtrArray *set;

          if (!m->fresh || m->stopped || m->run != NULL || !deps_ready (m))
            {
              job_free (job);
              continue;
            }
          set = g_ptr_array_new_with_free_func (_exo_resource_group_member_unref);
          g_ptr_array_add (set, member_ref (m));
          run = _exo_resource_group_run_new (self, FALSE, FALSE, set, start_done, NULL, NULL);
        }

      job_free (job);
      priv->job_run = run;
      _exo_resource_group_run_start (run);
      _exo_resource_group_run_unref (run);
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

  _exo_resource_group_member_unref (action->member);
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
  if (!priv->up || !_exo_resource_group_ensure_plan (self, NULL))
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

void
_exo_resource_group_schedule_pass (ExoResourceGroup *self)
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

void
_exo_resource_group_member_event_clear (MemberEvent *event)
{
  _exo_resource_group_member_unref (event->member);
  if (event->run != NULL)
    _exo_resource_group_run_unref (event->run);
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
    .run = run != NULL ? _exo_resource_group_run_ref (run) : NULL,
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

void
_exo_resource_group_clear_member_timers (Member *m)
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
        _exo_resource_group_run_finish (event->run);
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
      _exo_resource_group_clear_member_timers (m);
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

  _exo_resource_group_schedule_pass (self);
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
      _exo_resource_group_member_event_clear (&event);
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
                run->error = _exo_resource_group_member_error (m, cause, "failed");
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
  _exo_resource_group_ensure_plan (self, NULL);

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
void
_exo_resource_group_do_check_health (ExoResource *resource,
                                     GTask       *task)
{
  ExoResourceGroup *self = EXO_RESOURCE_GROUP (resource);
  g_autoptr(GPtrArray) set = NULL;
  HealthCheck *check;

  _exo_resource_group_ensure_plan (self, NULL);
  set = _exo_resource_group_collect_set (self, NULL, NULL);

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

void
_exo_resource_group_state_changed (ExoResourceGroup *self,
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
          _exo_resource_group_schedule_pass (self);
        }
      break;

    case EXO_RESOURCE_STATE_ERROR:
      /* A group in error does not supervise until it is initialized again. */
      if (priv->up)
        {
          priv->escalated = TRUE;
          _exo_resource_group_drop_jobs (self);
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
