/* exo-resource-private.h: what the files of ExoResource share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Not installed and not given to g-ir-scanner.  It holds the instance
 * private struct (and the ExoResourceExtra that failures use), the
 * properties and signal ids, the small helpers several files use (static
 * inline, so that each file compiles them as it did when they were static
 * in one file), and the functions one file of ExoResource calls in another.
 * Cross-library internals (what groups, pools and managed resources call)
 * stay in exo-private.h.
 *
 * ExoResource's files:
 *
 *   exo-resource.c             the GObject: class doc, properties, class_init,
 *                              constructed/dispose/finalize, public getters
 *                              and setters, reset and metrics, the watch on
 *                              the tasks given to do_* vfuncs
 *   exo-resource-transition.c  the transition table and
 *                              exo_resource_transition(): the hot path, the
 *                              emission, re-entrant transitions queued, the
 *                              error records
 *   exo-resource-flight.c      initialize and cleanup: waiters, attempts, the
 *                              init timeout, retries, the zombie attempt
 *   exo-resource-report.c      report_health/report_error (from any thread),
 *                              health thresholds and checks, the group and
 *                              managed-resource hooks, ensure_ready, restart
 *
 * The rules, for all of them:
 *
 * - A resource belongs to the GMainContext that was thread-default when it
 *   was made (priv->context).  Everything here runs there, with no lock.
 *   The one exception: exo_resource_report_health() and
 *   exo_resource_report_error() may be called from any thread; they forward
 *   the report to that context (exo-resource-report.c).
 * - No callbacks into other objects from inside a state-changed emission
 *   (docs/architecture.md, "No callbacks from inside an emission").  A
 *   handler may change the state again: the state changes at once, the
 *   emission is queued (extra->pending_emissions) until the current one has
 *   reached every handler.
 * - Whatever is called out (a signal handler, a GTask's callback, a do_*
 *   vfunc, which may complete at once) may re-enter the resource: initialize,
 *   clean up, transition, drop a reference.  So whoever calls out holds a
 *   reference to the resource.
 * - The hot path, exo_resource_transition() and emit_transition(), lives in
 *   exo-resource-transition.c with what it calls, and PRIV(), EXTRA() and
 *   notify_watched() are inline here: keep it so.
 */
#pragma once

#include "exo-private.h"

G_BEGIN_DECLS

typedef struct _Attempt Attempt;

struct _Attempt
{
  ExoResource  *self;         /* owned while the attempt runs */
  GCancellable *cancellable;
  gboolean      abandoned;
  /* why its do_initialize failed, while its cleanup runs, is the
   * resource's extra->init_error (one attempt at a time is busy) */
};

/* What only failures, retries, zombies and nested emissions use: made when
 * first needed, so that a resource that never fails does not carry it. */
typedef struct
{
  GError           *last_error;
  GRand            *rand;
  GSource          *retry_source;
  GSource          *cleanup_wait_source; /* how long a cleanup waits for a zombie */
  GError           *init_error;        /* why do_initialize failed, while its cleanup runs */
  /* Transitions made by handlers during an emission: emitted after it, in
   * order (guint32: old | new << 8 | has_error << 16); NULL until needed. */
  GArray           *pending_emissions;
} ExoResourceExtra;

typedef struct
{
  union {
    char           *ptr;
    char            buf[16];
  }                 id;                /* ID(): inline when it fits, as most ids do */
  char             *display_name;
  const char       *resource_type;     /* interned */
  GMainContext     *context;
  ExoResourceExtra *extra;             /* NULL until needed: EXTRA() */
  gint64            state_changed_at;
  gint64            initialized_at;
  guint             error_count;
  guint             attempts;
  guint             attempts_notified; /* the value `notify::attempts` last told */
  guint             init_timeout_ms;

  /* Health hysteresis: consecutive outcomes of health checks. */
  guint             health_fails;
  guint             health_passes;
  guint             unhealthy_threshold;
  guint             healthy_threshold;

  /* The initialize flight: one set of callers sharing attempts. */
  /* in the order they came (Waiter, or the library's): a ring, the last
   * one's next is the first */
  ExoInitWaiter    *init_waiters_tail;
  Attempt          *attempt;           /* the live attempt, if any */
  GSource          *timeout_source;

  GSList           *cleanup_waiters;   /* GTask*, the last one first */

  guint8            state;             /* ExoResourceState: a byte, read on every transition */
  guint8            result;            /* ExoResourceResult */
  guint             in_flight : 1;
  guint             busy : 1;          /* a do_initialize or do_cleanup runs */
  guint             needs_cleanup : 1; /* do_initialize succeeded, no do_cleanup since */
  guint             start_pending : 1;
  guint             cleanup_pending : 1;
  guint             cleaning : 1;
  guint             registered : 1;
  guint             attempt_counted : 1; /* the next attempt is counted and timed, not started */
  guint             degraded_by_health : 1; /* degraded by its own failing checks */
  guint             held : 1;          /* kept degraded by its supervisor (a dependency is down) */
  guint             emitting : 1;      /* inside a state-changed emission */
  guint             zombie : 1;        /* busy with a vfunc of an abandoned attempt */
  guint             managed_hook : 1;  /* an ExoManagedResource: told of transitions first */
  guint             member_hook : 1;   /* in a group, not disposed: the group is told */
  guint             disposed : 1;      /* its handlers are gone: so are the hooks */
  guint             id_inline : 1;
  guint             flight_attempt;    /* beside the bits: no hole */

  GThread          *thread;            /* the thread that made it */
  gpointer          member;            /* the record of the group it is in, if any */
} ExoResourcePrivate;

G_STATIC_ASSERT (EXO_RESOURCE_STATE_LAST <= 8);
G_STATIC_ASSERT (EXO_RESOURCE_RESULT_START_LIMIT_HIT < 8);

/* The instance private data, from any of the files: the offset
 * G_DEFINE_TYPE_WITH_PRIVATE keeps, copied at class_init.  Not a checked
 * cast: PRIV() is on the hot path. */
G_GNUC_INTERNAL extern gint _exo_resource_private_offset;

#define PRIV(self) ((ExoResourcePrivate *) G_STRUCT_MEMBER_P (self, _exo_resource_private_offset))

#define ID(priv) ((priv)->id_inline ? (priv)->id.buf : (priv)->id.ptr)

static inline ExoResourceExtra *
EXTRA (ExoResourcePrivate *priv)
{
  if (G_UNLIKELY (priv->extra == NULL))
    priv->extra = g_new0 (ExoResourceExtra, 1);
  return priv->extra;
}

/* A field of the extra part, for reading: NULL when there is none. */
#define EXTRA_GET(priv, field) ((priv)->extra != NULL ? (priv)->extra->field : NULL)

enum {
  PROP_0,
  PROP_ID,
  PROP_RESOURCE_TYPE,
  PROP_DISPLAY_NAME,
  PROP_STATE,
  PROP_INIT_TIMEOUT,
  PROP_ERROR_COUNT,
  PROP_ATTEMPTS,
  PROP_LAST_ERROR,
  PROP_RESULT,
  N_PROPS,
};

G_GNUC_INTERNAL extern GParamSpec *_exo_resource_properties[N_PROPS];
G_GNUC_INTERNAL extern guint _exo_resource_signal_state_changed;
G_GNUC_INTERNAL extern guint _exo_resource_signal_notify;

/* Notifies @prop only when somebody listens: the statistics change on hot
 * paths (every attempt), where an unobserved notify would cost more than the
 * work itself. */
static inline void
notify_watched (ExoResource *self,
                guint        prop)
{
  if (g_signal_has_handler_pending (self, _exo_resource_signal_notify,
                                    g_param_spec_get_name_quark (_exo_resource_properties[prop]), FALSE))
    g_object_notify_by_pspec (G_OBJECT (self), _exo_resource_properties[prop]);
}

/* `attempts` is notified when an attempt failed and when a flight ended,
 * not when an attempt starts: a first attempt that succeeds (every member
 * of a group starting) changes nothing anyone saw, and costs no notify. */
static inline void
notify_attempts (ExoResource *self)
{
  ExoResourcePrivate *priv = PRIV (self);

  if (priv->attempts_notified == priv->attempts)
    return;
  priv->attempts_notified = priv->attempts;
  notify_watched (self, PROP_ATTEMPTS);
}

static inline void
set_attempts (ExoResource *self,
              guint        attempts)
{
  PRIV (self)->attempts = attempts;
  notify_attempts (self);
}

static inline void
clear_extra_source (ExoResourcePrivate *priv,
                    glong               offset)
{
  if (priv->extra != NULL)
    clear_source (G_STRUCT_MEMBER_P (priv->extra, offset));
}

/* exo-resource-transition.c */
G_GNUC_INTERNAL void _exo_resource_record_error (ExoResource  *self,
                                                 const GError *error);

/* exo-resource-flight.c */
G_GNUC_INTERNAL void _exo_resource_do_initialize_cb (GObject      *source,
                                                     GAsyncResult *result,
                                                     gpointer      user_data);
G_GNUC_INTERNAL void _exo_resource_call_do_initialize (ExoResource *self,
                                                       Attempt     *attempt);
G_GNUC_INTERNAL void _exo_resource_real_initialize_async (ExoAsyncResource    *resource,
                                                          GCancellable        *cancellable,
                                                          GAsyncReadyCallback  callback,
                                                          gpointer             user_data);
G_GNUC_INTERNAL gboolean _exo_resource_real_task_finish (ExoAsyncResource  *resource,
                                                         GAsyncResult      *result,
                                                         GError           **error);
G_GNUC_INTERNAL void _exo_resource_real_cleanup_async (ExoAsyncResource    *resource,
                                                       GCancellable        *cancellable,
                                                       GAsyncReadyCallback  callback,
                                                       gpointer             user_data);

/* exo-resource-report.c */
G_GNUC_INTERNAL void _exo_resource_real_check_health_async (ExoAsyncResource    *resource,
                                                            GCancellable        *cancellable,
                                                            GAsyncReadyCallback  callback,
                                                            gpointer             user_data);

/* exo-resource.c */
G_GNUC_INTERNAL GTask *_exo_resource_vfunc_init_task_new (ExoResource *self,
                                                          Attempt     *attempt);

G_END_DECLS
