/* exo-types.h: enumerations shared by the whole library.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <glib-object.h>
#include <gio/gio.h>
#include <exo/exo-version.h>

G_BEGIN_DECLS

/**
 * ExoResourceState:
 * @EXO_RESOURCE_STATE_UNINITIALIZED: made, never initialized
 * @EXO_RESOURCE_STATE_INITIALIZING: an initialize attempt (or its retries) is running
 * @EXO_RESOURCE_STATE_READY: initialized and healthy
 * @EXO_RESOURCE_STATE_DEGRADED: initialized, but the last health check failed
 * @EXO_RESOURCE_STATE_ERROR: initialize failed, or the resource failed after it was ready
 * @EXO_RESOURCE_STATE_CLOSING: cleanup is running
 * @EXO_RESOURCE_STATE_CLOSED: cleaned up; may be initialized again
 *
 * The lifecycle states of a resource.  The nicks (`"ready"`, …) are the only
 * spelling used on D-Bus, in JSON and in the CLI.
 */
typedef enum {
  EXO_RESOURCE_STATE_UNINITIALIZED,
  EXO_RESOURCE_STATE_INITIALIZING,
  EXO_RESOURCE_STATE_READY,
  EXO_RESOURCE_STATE_DEGRADED,
  EXO_RESOURCE_STATE_ERROR,
  EXO_RESOURCE_STATE_CLOSING,
  EXO_RESOURCE_STATE_CLOSED,
} ExoResourceState;

#define EXO_RESOURCE_STATE_LAST (EXO_RESOURCE_STATE_CLOSED + 1)

/**
 * ExoJitter:
 * @EXO_JITTER_FULL: uniform in [0, delay] (the default)
 * @EXO_JITTER_EQUAL: delay/2 + uniform in [0, delay/2]
 * @EXO_JITTER_DECORRELATED: uniform in [initial, previous * 3], capped at the maximum
 * @EXO_JITTER_NONE: exactly the computed delay
 *
 * How a backoff delay is randomised.
 */
typedef enum {
  EXO_JITTER_FULL,
  EXO_JITTER_EQUAL,
  EXO_JITTER_DECORRELATED,
  EXO_JITTER_NONE,
} ExoJitter;

/**
 * ExoResourceResult:
 * @EXO_RESOURCE_RESULT_SUCCESS: nothing went wrong since the last initialize started
 * @EXO_RESOURCE_RESULT_FAILED: the last initialize failed, or the resource
 *   failed after it was ready
 * @EXO_RESOURCE_RESULT_TIMEOUT: the last initialize timed out
 * @EXO_RESOURCE_RESULT_UNHEALTHY: its supervisor restarts it because it stayed
 *   `degraded` (failing its own health checks) for too long, like systemd's
 *   watchdog result
 * @EXO_RESOURCE_RESULT_START_LIMIT_HIT: its supervisor gave up: the restart
 *   limit was hit; it stays in `error` until it is started or restarted by
 *   hand (or reset)
 *
 * Why a resource is where it is, in the manner of a systemd unit's `Result`
 * property.  The nicks (`"success"`, `"start-limit-hit"`, …) are the
 * spelling used on D-Bus and in the CLI.
 */
typedef enum {
  EXO_RESOURCE_RESULT_SUCCESS,
  EXO_RESOURCE_RESULT_FAILED,
  EXO_RESOURCE_RESULT_TIMEOUT,
  EXO_RESOURCE_RESULT_UNHEALTHY,
  EXO_RESOURCE_RESULT_START_LIMIT_HIT,
} ExoResourceResult;

#define EXO_TYPE_RESOURCE_STATE (exo_resource_state_get_type ())
#define EXO_TYPE_RESOURCE_RESULT (exo_resource_result_get_type ())
#define EXO_TYPE_JITTER (exo_jitter_get_type ())

EXO_AVAILABLE_IN_ALL
GType            exo_resource_state_get_type    (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
GType            exo_jitter_get_type            (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
GType            exo_resource_result_get_type   (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
const char      *exo_resource_result_to_string  (ExoResourceResult result);

EXO_AVAILABLE_IN_ALL
const char      *exo_resource_state_to_string   (ExoResourceState  state);
EXO_AVAILABLE_IN_ALL
gboolean         exo_resource_state_from_string (const char       *str,
                                                 ExoResourceState *out_state);
EXO_AVAILABLE_IN_ALL
gboolean         exo_resource_state_is_usable   (ExoResourceState  state);

EXO_AVAILABLE_IN_ALL
const char      *exo_jitter_to_string           (ExoJitter         jitter);
EXO_AVAILABLE_IN_ALL
gboolean         exo_jitter_from_string         (const char       *str,
                                                 ExoJitter        *out_jitter);

G_END_DECLS
