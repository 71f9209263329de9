/* exo-resource-group-run.c: the runs of an ExoResourceGroup: ordered
 * batches of member initializes and cleanups, and the group's own
 * initialize and cleanup made of them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns: Run and Op (run_new() .. run_drain(): Kahn's order on counters, at
 * most max-parallel in flight, members whose call completes at once handled
 * by the loop in run_drain(), never by recursion); the per-member init
 * waiters (an ExoInitWaiter embedded in each Op, no GTask); the rollback of
 * a doomed run (its members cleaned up in reverse order before the group's
 * initialize fails); the group's do_initialize (with its cancellable) and
 * do_cleanup vfuncs.
 *
 * Rules: everything here runs in the group's main context; no locks.  A
 * member's initialize or cleanup callback may come at once (from inside
 * run_drain()) or later: the run holds a reference across every call out
 * (run_ref()/run_unref()) and is re-entered only through run_drain(), which
 * does not nest (run->draining).  A run whose member fell is *doomed*: it
 * starts nothing more, and only the group's event queue
 * (exo-resource-group-supervisor.c) finishes it, never code running inside
 * a member's state-changed emission.
 */
#include "exo-resource-group-private.h"

/* --- runs -------------------------------------------------------------- */

Run *
_exo_resource_group_run_ref (Run *run)
{
  run->refcount++;
  return run;
}

void
_exo_resource_group_run_unref (Run *run)
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
Run *
_exo_resource_group_run_new (ExoResourceGroup *self,
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
  run->failed = g_ptr_array_new_with_free_func (_exo_resource_group_member_unref);
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
void
_exo_resource_group_run_finish (Run *run)
{
  if (!run->live)
    return;
  run_detach (run);
  _exo_resource_group_run_ref (run);
  run->done (run->group, run, run->done_data);
  _exo_resource_group_run_unref (run);
}

static void
run_abort (Run *run)
{
  if (run == NULL || !run->live)
    return;
  run->aborted = TRUE;
  _exo_resource_group_run_finish (run);
}

void
_exo_resource_group_run_start (Run *run)
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
  _exo_resource_group_run_drain (run);
}

GError *
_exo_resource_group_member_error (Member       *m,
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
  op->run = _exo_resource_group_run_ref (run);
  op->member = member_ref (m);
  return op;
}

static void
op_free (Op *op)
{
  Member *m = op->member;

  /* the block is the run's: it goes with the run's last reference */
  _exo_resource_group_run_unref (op->run);
  _exo_resource_group_member_unref (m);
}

static void
run_fail (Run          *run,
          Member       *m,
          const GError *error)
{
  m->failed = TRUE;
  g_ptr_array_add (run->failed, member_ref (m));
  if (run->error == NULL)
    run->error = _exo_resource_group_member_error (m, error, "failed");
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
              _exo_resource_group_run_finish (run);
              op_free (op);
              return;
            }
          run_member_done (run, m, FALSE);
        }
    }

  if (run->live)
    _exo_resource_group_run_drain (run);
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
    run->error = _exo_resource_group_member_error (m, error, "cleanup failed");
  run->n_inflight--;

  if (run->live && m->run == run && m->rstate == RS_RUNNING)
    run_member_done (run, m, TRUE);

  if (run->live)
    _exo_resource_group_run_drain (run);
  op_free (op);
}

/* Starts what may start; a loop, so that members that complete at once and
 * long chains never recurse. */
void
_exo_resource_group_run_drain (Run *run)
{
  ExoResourceGroupPrivate *priv = PRIV (run->group);

  if (run->draining)
    return;
  run->draining = TRUE;
  _exo_resource_group_run_ref (run);

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
    _exo_resource_group_run_finish (run);
  _exo_resource_group_run_unref (run);
}

/* Recounts (when asked) and drains every live run.  On a copy: draining
 * may finish a run. */
void
_exo_resource_group_drain_live_runs (ExoResourceGroup *self,
                                     gboolean          recount)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  g_autoptr(GPtrArray) runs = g_ptr_array_copy (priv->live_runs, NULL, NULL);

  for (guint i = 0; i < runs->len; i++)
    _exo_resource_group_run_ref (g_ptr_array_index (runs, i));
  for (guint i = 0; i < runs->len; i++)
    {
      Run *run = g_ptr_array_index (runs, i);

      if (run->live)
        {
          if (recount)
            run_recount (run);
          _exo_resource_group_run_drain (run);
        }
      _exo_resource_group_run_unref (run);
    }
}

/* Members in topological order, with refs, chosen by @pick (or all). */
GPtrArray *
_exo_resource_group_collect_set (ExoResourceGroup *self,
                                 gboolean        (*pick) (Member *m, gpointer data),
                                 gpointer          data)
{
  ExoResourceGroupPrivate *priv = PRIV (self);
  GPtrArray *set = g_ptr_array_new_full (priv->order->len, _exo_resource_group_member_unref);

  for (guint i = 0; i < priv->order->len; i++)
    {
      Member *m = g_ptr_array_index (priv->order, i);

      if (pick == NULL || pick (m, data))
        g_ptr_array_add (set, member_ref (m));
    }
  return set;
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
      _exo_resource_group_run_finish (run);
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

void
_exo_resource_group_disconnect_init_cancellable (ExoResourceGroup *self)
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

  _exo_resource_group_disconnect_init_cancellable (self);
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

void
_exo_resource_group_do_initialize (ExoResource *resource,
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
  _exo_resource_group_drop_jobs (self);

  if (!_exo_resource_group_ensure_plan (self, &error))
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
      _exo_resource_group_clear_member_timers (m);
      member_reset_limiter (m);
    }

  run = _exo_resource_group_run_new (self, FALSE, !priv->keep_going, _exo_resource_group_collect_set (self, NULL, NULL),
                 init_done, g_object_ref (task), g_object_unref);
  run->group_init = TRUE;
  priv->init_run = run;

  if (cancellable != NULL)
    {
      priv->init_cancellable = g_object_ref (cancellable);
      priv->init_cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (init_cancelled_cb),
                                                    self, NULL);
    }

  _exo_resource_group_run_start (run);
  _exo_resource_group_run_unref (run);
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

void
_exo_resource_group_do_cleanup (ExoResource *resource,
                                GTask       *task)
{
  ExoResourceGroup *self = EXO_RESOURCE_GROUP (resource);
  ExoResourceGroupPrivate *priv = PRIV (self);
  CleanupPick pick = { .rollback = priv->init_failed };
  gboolean ordered;
  Run *run;

  priv->up = FALSE;
  priv->init_failed = FALSE;
  _exo_resource_group_drop_jobs (self);
  for (guint i = 0; i < priv->members->len; i++)
    _exo_resource_group_clear_member_timers (g_ptr_array_index (priv->members, i));
  run_abort (priv->job_run);
  priv->job_run = NULL;
  run_abort (priv->init_run);
  priv->init_run = NULL;

  /* A graph with a cycle was never initialized by the group; whatever its
   * members hold is released without an order. */
  ordered = _exo_resource_group_ensure_plan (self, NULL);
  run = _exo_resource_group_run_new (self, TRUE, FALSE, _exo_resource_group_collect_set (self, pick_for_cleanup, &pick),
                 cleanup_done, g_object_ref (task), g_object_unref);
  run->unordered = !ordered;
  _exo_resource_group_run_start (run);
  _exo_resource_group_run_unref (run);
}
