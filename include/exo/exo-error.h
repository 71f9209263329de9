/* exo-error.h: the error domain of libexo.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-types.h>

G_BEGIN_DECLS

/**
 * ExoResourceError:
 * @EXO_RESOURCE_ERROR_FAILED: a generic failure; retryable
 * @EXO_RESOURCE_ERROR_INVALID_STATE: the call is not allowed in the current state
 * @EXO_RESOURCE_ERROR_CLOSED: the resource is closing or closed
 * @EXO_RESOURCE_ERROR_RESTART_LIMIT: the restart limit was hit; see exo_resource_reset()
 * @EXO_RESOURCE_ERROR_FATAL: a failure that retrying cannot fix
 * @EXO_RESOURCE_ERROR_NOT_FOUND: no resource or member by that name
 * @EXO_RESOURCE_ERROR_DEPENDENCY: a dependency is missing, failed, or forms a cycle
 * @EXO_RESOURCE_ERROR_EXHAUSTED: a pool has no resource to give and may not grow
 * @EXO_RESOURCE_ERROR_UNHEALTHY: a health check failed
 *
 * Error codes in the %EXO_RESOURCE_ERROR domain.  Timeouts and cancellation
 * use %G_IO_ERROR_TIMED_OUT and %G_IO_ERROR_CANCELLED.
 */
typedef enum {
  EXO_RESOURCE_ERROR_FAILED,
  EXO_RESOURCE_ERROR_INVALID_STATE,
  EXO_RESOURCE_ERROR_CLOSED,
  EXO_RESOURCE_ERROR_RESTART_LIMIT,
  EXO_RESOURCE_ERROR_FATAL,
  EXO_RESOURCE_ERROR_NOT_FOUND,
  EXO_RESOURCE_ERROR_DEPENDENCY,
  EXO_RESOURCE_ERROR_EXHAUSTED,
  EXO_RESOURCE_ERROR_UNHEALTHY,
} ExoResourceError;

/**
 * EXO_RESOURCE_ERROR:
 *
 * The error domain of libexo; the codes are #ExoResourceError.  In bindings
 * the domain is `Exo.ResourceError` (for example, PyGObject's
 * `GLib.Error.matches (Exo.ResourceError.quark (), Exo.ResourceError.FAILED)`).
 */
#define EXO_RESOURCE_ERROR (exo_resource_error_quark ())
#define EXO_TYPE_RESOURCE_ERROR (exo_resource_error_get_type ())

EXO_AVAILABLE_IN_ALL
GQuark   exo_resource_error_quark      (void);
EXO_AVAILABLE_IN_ALL
GType    exo_resource_error_get_type   (void) G_GNUC_CONST;

EXO_AVAILABLE_IN_ALL
gboolean exo_error_is_retryable        (const GError *error);

G_END_DECLS
