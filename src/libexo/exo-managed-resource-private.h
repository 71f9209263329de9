/* exo-managed-resource-private.h: what the files of ExoManagedResource share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Not installed and not given to g-ir-scanner.  It holds the instance
 * private struct (and the ManagedExtra that recoveries use), the small
 * helpers several files use (static inline, so that each file compiles them
 * as it did when they were static in one file), and the functions one file
 * of ExoManagedResource calls in another.  What other library types call
 * (the state-changed hook, the runner) stays in exo-private.h.
 *
 * ExoManagedResource's files:
 *
 *   exo-managed-resource.c           the GObject: class doc, properties and
 *                                    their accessors, the retry delay of
 *                                    initialize, reset and metrics, dispose
 *                                    and finalize
 *   exo-managed-resource-recovery.c  the health-check timer, automatic
 *                                    recovery with backoff, the degraded
 *                                    timer and the restart limit, and the
 *                                    state-changed hook that arms them
 *   exo-managed-resource-run.c       the operation runner:
 *                                    exo_managed_resource_run_async() and
 *                                    the runs of ExoNetworkResource
 *
 * The rules, for all of them:
 *
 * - A managed resource belongs to the main context of its ExoResource
 *   (exo_resource_get_context()): every function here, every timer and
 *   every callback runs there.  There is no lock; no other thread touches
 *   a managed resource's fields.
 * - No callbacks into other objects from inside a state-changed emission
 *   (docs/architecture.md, "No callbacks from inside an emission"):
 *   _exo_managed_resource_state_changed() runs inside it (ExoResource calls
 *   it before the handlers), so it only arms timers and sets flags; the
 *   timers do what calls out, and cancelling a health check is deferred to
 *   an idle.
 * - Re-entrancy: whatever is called out (a health check, a re-initialize,
 *   an operation's attempt, a GTask's callback, a notify handler) may call
 *   back into the resource: change properties, initialize or clean it up,
 *   drop a reference.  So whoever calls out holds a reference (the health
 *   check's and the recovery's callbacks, the runner's GTask).  The timers
 *   hold none: dispose destroys them.
 */
#pragma once

#include "exo-private.h"

G_BEGIN_DECLS

/* What only recoveries, retries and restart limits use: made when first
 * needed, so that a resource that never fails does not carry it. */
typedef struct
{
  ExoRestartLimiter *limiter;            /* for policy; made when first needed */
  GSource           *recover_source;
  GSource           *degraded_source;
  guint              recover_streak;     /* recoveries since the last success */
  guint              prev_delay_ms;
  guint              recover_prev_ms;
  guint              restarts;
  /* settings that nearly every resource leaves at their defaults */
  guint              degraded_restart_ms;
  guint              backoff_reset_ms;
} ManagedExtra;

typedef struct
{
  ExoRetryPolicy    *policy;             /* shared_default_policy() until one is set */
  ManagedExtra      *extra;              /* NULL until needed: MX() */
  GSource           *health_source;
  GCancellable      *health_cancellable;
  gint64             ready_since;        /* monotonic µs, 0 = not ready */
  guint              health_interval_ms;
  /* the health thresholds are ExoResource's, which applies them */
  guint              auto_recover : 1;
  guint              health_running : 1;
  guint              recovering : 1;
  guint              limit_hit : 1;
  guint              came_up : 1;       /* ready since the last recovery started */
} ExoManagedResourcePrivate;

#define DEFAULT_BACKOFF_RESET_MS    10000
#define DEFAULT_DEGRADED_RESTART_MS 10000

/* The instance private data, from any of the files: the offset
 * G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE keeps, copied at class_init. */
G_GNUC_INTERNAL extern gint _exo_managed_resource_private_offset;

#define PRIV(self) ((ExoManagedResourcePrivate *) G_STRUCT_MEMBER_P (EXO_MANAGED_RESOURCE (self), _exo_managed_resource_private_offset))

static inline ManagedExtra *
MX (ExoManagedResourcePrivate *priv)
{
  if (G_UNLIKELY (priv->extra == NULL))
    {
      priv->extra = g_new0 (ManagedExtra, 1);
      priv->extra->degraded_restart_ms = DEFAULT_DEGRADED_RESTART_MS;
      priv->extra->backoff_reset_ms = DEFAULT_BACKOFF_RESET_MS;
    }
  return priv->extra;
}

#define DEGRADED_RESTART_MS(priv) \
  ((priv)->extra != NULL ? (priv)->extra->degraded_restart_ms : DEFAULT_DEGRADED_RESTART_MS)
#define BACKOFF_RESET_MS(priv) \
  ((priv)->extra != NULL ? (priv)->extra->backoff_reset_ms : DEFAULT_BACKOFF_RESET_MS)

/* A field of the extra part, for reading: 0 or NULL when there is none. */
#define MX_GET(priv, field) ((priv)->extra != NULL ? (priv)->extra->field : 0)

static inline void
reset_limiter (ExoManagedResourcePrivate *priv)
{
  if (MX_GET (priv, limiter) != NULL)
    exo_restart_limiter_reset (priv->extra->limiter);
}

static inline void
clear_extra_source (ExoManagedResourcePrivate *priv,
                    glong                      offset)
{
  if (priv->extra != NULL)
    clear_source (G_STRUCT_MEMBER_P (priv->extra, offset));
}

/* exo-managed-resource.c */
G_GNUC_INTERNAL void _exo_managed_resource_notify_restarts (ExoManagedResource *self);

/* exo-managed-resource-recovery.c */
G_GNUC_INTERNAL void _exo_managed_resource_update_health_timer (ExoManagedResource *self);
G_GNUC_INTERNAL void _exo_managed_resource_schedule_recovery (ExoManagedResource *self);

G_END_DECLS
