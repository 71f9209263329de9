/* exo-resource-pool.h: a pool of resources made by a factory.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-resource.h>
#include <exo/exo-retry-policy.h>

G_BEGIN_DECLS

#define EXO_TYPE_RESOURCE_POOL (exo_resource_pool_get_type ())

EXO_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ExoResourcePool, exo_resource_pool, EXO, RESOURCE_POOL, ExoResource)

#define EXO_TYPE_POOL_LEASE (exo_pool_lease_get_type ())

/**
 * ExoPoolLease:
 *
 * A resource lent by an #ExoResourcePool.  Releasing the last reference
 * returns the resource to its pool, so a lease held in
 * `g_autoptr(ExoPoolLease)` is returned when it goes out of scope.  A lease
 * may be released from any thread.
 */
typedef struct _ExoPoolLease ExoPoolLease;

/**
 * ExoPoolFactory:
 * @pool: the pool that needs a resource
 * @serial: a number unique within @pool, counting from 1
 * @user_data: the data given with the factory
 *
 * Makes a new, uninitialized resource for @pool; the pool initializes it.
 * Called in the pool's main context.
 *
 * Returns: (transfer full) (nullable): a new resource, or %NULL when none
 *   can be made (the pool counts that as a failed creation)
 */
typedef ExoResource *(*ExoPoolFactory) (ExoResourcePool *pool,
                                        guint            serial,
                                        gpointer         user_data);

/**
 * ExoPoolStats:
 * @min_size: the #ExoResourcePool:min-size
 * @max_size: the #ExoResourcePool:max-size
 * @size: resources that exist (@idle + @in_use)
 * @idle: resources ready to be lent
 * @in_use: resources lent out, or being validated by the pool
 * @waiting: callers of exo_resource_pool_acquire_async() still waiting
 * @acquired: successful acquisitions since the pool was made
 * @timeouts: acquisitions that timed out
 * @created: resources made and initialized
 * @destroyed: resources retired, evicted, broken or closed
 * @leaks: leases held longer than #ExoResourcePool:leak-threshold-ms
 * @create_failures: resources whose creation or initialize failed
 * @wait_time_mean_us: mean time a served exo_resource_pool_acquire_async()
 *   waited, in µs
 * @wait_time_max_us: the longest such wait, in µs
 *
 * A consistent snapshot of a pool's statistics; see
 * exo_resource_pool_get_stats().  At rest, `size == idle + in_use` and
 * `created - destroyed == size`.
 */
typedef struct {
  guint   min_size;
  guint   max_size;
  guint   size;
  guint   idle;
  guint   in_use;
  guint   waiting;
  guint64 acquired;
  guint64 timeouts;
  guint64 created;
  guint64 destroyed;
  guint64 leaks;
  guint64 create_failures;
  guint64 wait_time_mean_us;
  guint64 wait_time_max_us;

  /*< private >*/
  guint64 reserved[4];
} ExoPoolStats;

EXO_AVAILABLE_IN_ALL
ExoResourcePool *exo_resource_pool_new                 (GType                 item_type,
                                                        guint                 min_size,
                                                        guint                 max_size);
EXO_AVAILABLE_IN_ALL
ExoResourcePool *exo_resource_pool_new_with_properties (GType                 item_type,
                                                        guint                 min_size,
                                                        guint                 max_size,
                                                        guint                 n_properties,
                                                        const char * const   *names,
                                                        const GValue         *values);
EXO_AVAILABLE_IN_ALL
ExoResourcePool *exo_resource_pool_new_with_factory    (ExoPoolFactory        factory,
                                                        gpointer              user_data,
                                                        GDestroyNotify        user_data_free,
                                                        guint                 min_size,
                                                        guint                 max_size);

EXO_AVAILABLE_IN_ALL
void             exo_resource_pool_acquire_async       (ExoResourcePool      *self,
                                                        guint                 timeout_ms,
                                                        GCancellable         *cancellable,
                                                        GAsyncReadyCallback   callback,
                                                        gpointer              user_data);
EXO_AVAILABLE_IN_ALL
ExoPoolLease    *exo_resource_pool_acquire_finish      (ExoResourcePool      *self,
                                                        GAsyncResult         *result,
                                                        GError              **error);

/* Thread-safe, non-blocking. */
EXO_AVAILABLE_IN_ALL
ExoResource     *exo_resource_pool_try_acquire         (ExoResourcePool      *self);
EXO_AVAILABLE_IN_ALL
ExoPoolLease    *exo_resource_pool_try_acquire_lease   (ExoResourcePool      *self);
EXO_AVAILABLE_IN_ALL
void             exo_resource_pool_release             (ExoResourcePool      *self,
                                                        ExoResource          *resource);
EXO_AVAILABLE_IN_ALL
void             exo_resource_pool_release_broken      (ExoResourcePool      *self,
                                                        ExoResource          *resource);
EXO_AVAILABLE_IN_ALL
void             exo_resource_pool_get_stats           (ExoResourcePool      *self,
                                                        ExoPoolStats         *stats);
EXO_AVAILABLE_IN_ALL
guint            exo_resource_pool_get_size            (ExoResourcePool      *self);
EXO_AVAILABLE_IN_ALL
guint            exo_resource_pool_get_idle            (ExoResourcePool      *self);
EXO_AVAILABLE_IN_ALL
guint            exo_resource_pool_get_in_use          (ExoResourcePool      *self);
EXO_AVAILABLE_IN_ALL
guint            exo_resource_pool_get_waiting         (ExoResourcePool      *self);

/* Configuration; call in the pool's main context. */
EXO_AVAILABLE_IN_ALL
GType            exo_resource_pool_get_item_type       (ExoResourcePool      *self);
EXO_AVAILABLE_IN_ALL
guint            exo_resource_pool_get_min_size        (ExoResourcePool      *self);
EXO_AVAILABLE_IN_ALL
void             exo_resource_pool_set_min_size        (ExoResourcePool      *self,
                                                        guint                 min_size);
EXO_AVAILABLE_IN_ALL
guint            exo_resource_pool_get_max_size        (ExoResourcePool      *self);
EXO_AVAILABLE_IN_ALL
void             exo_resource_pool_set_max_size        (ExoResourcePool      *self,
                                                        guint                 max_size);
EXO_AVAILABLE_IN_ALL
guint            exo_resource_pool_get_idle_timeout    (ExoResourcePool      *self);
EXO_AVAILABLE_IN_ALL
void             exo_resource_pool_set_idle_timeout    (ExoResourcePool      *self,
                                                        guint                 timeout_ms);
EXO_AVAILABLE_IN_ALL
guint            exo_resource_pool_get_max_lifetime    (ExoResourcePool      *self);
EXO_AVAILABLE_IN_ALL
void             exo_resource_pool_set_max_lifetime    (ExoResourcePool      *self,
                                                        guint                 lifetime_ms);
EXO_AVAILABLE_IN_ALL
guint            exo_resource_pool_get_validate_after_idle (ExoResourcePool  *self);
EXO_AVAILABLE_IN_ALL
void             exo_resource_pool_set_validate_after_idle (ExoResourcePool  *self,
                                                            guint             idle_ms);
EXO_AVAILABLE_IN_ALL
guint            exo_resource_pool_get_idle_check_interval (ExoResourcePool  *self);
EXO_AVAILABLE_IN_ALL
void             exo_resource_pool_set_idle_check_interval (ExoResourcePool  *self,
                                                            guint             interval_ms);
EXO_AVAILABLE_IN_ALL
guint            exo_resource_pool_get_leak_threshold  (ExoResourcePool      *self);
EXO_AVAILABLE_IN_ALL
void             exo_resource_pool_set_leak_threshold  (ExoResourcePool      *self,
                                                        guint                 threshold_ms);
EXO_AVAILABLE_IN_ALL
guint            exo_resource_pool_get_drain_timeout   (ExoResourcePool      *self);
EXO_AVAILABLE_IN_ALL
void             exo_resource_pool_set_drain_timeout   (ExoResourcePool      *self,
                                                        guint                 timeout_ms);
EXO_AVAILABLE_IN_ALL
ExoRetryPolicy  *exo_resource_pool_get_retry_policy    (ExoResourcePool      *self);
EXO_AVAILABLE_IN_ALL
void             exo_resource_pool_set_retry_policy    (ExoResourcePool      *self,
                                                        const ExoRetryPolicy *policy);

EXO_AVAILABLE_IN_ALL
GType            exo_pool_lease_get_type               (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
ExoPoolLease    *exo_pool_lease_ref                    (ExoPoolLease         *lease);
EXO_AVAILABLE_IN_ALL
void             exo_pool_lease_unref                  (ExoPoolLease         *lease);
EXO_AVAILABLE_IN_ALL
ExoResource     *exo_pool_lease_get_resource           (ExoPoolLease         *lease);
EXO_AVAILABLE_IN_ALL
ExoResourcePool *exo_pool_lease_get_pool               (ExoPoolLease         *lease);
EXO_AVAILABLE_IN_ALL
void             exo_pool_lease_release                (ExoPoolLease         *lease);
EXO_AVAILABLE_IN_ALL
void             exo_pool_lease_invalidate             (ExoPoolLease         *lease);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoPoolLease, exo_pool_lease_unref)

G_END_DECLS
