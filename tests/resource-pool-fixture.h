/* resource-pool-fixture.h: what the parts of test-resource-pool share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program is test-resource-pool.c (main(), construction and statistics)
 * and test-resource-pool-{acquire,idle,recovery,threads}.c; each part
 * registers its cases through the test_pool_register_*() function below.
 * A Backend is the pooled resources' fake service (resource-pool-fixture.c);
 * every helper here runs in the test's thread and spins its thread-default
 * main context.
 */
#pragma once

#include "exo-test-util.h"

G_BEGIN_DECLS

/* The "backend" the pooled resources talk to: a test switches it off and
 * on, and keeps every resource the pool made for inspection. */
typedef struct
{
  gboolean   down;           /* new resources fail to initialize */
  guint      init_delay_ms;
  GPtrArray *made;           /* ExoTestResource*, owned */
} Backend;

typedef struct
{
  ExoResourcePool *pool;
  guint            value;
} PoolCount;

void backend_init (Backend *backend);
void backend_clear (Backend *backend);
ExoResourcePool *new_pool (Backend *backend,
                           guint    min_size,
                           guint    max_size);
ExoResourcePool *new_ready_pool (Backend *backend,
                                 guint    min_size,
                                 guint    max_size);
void assert_accounting (ExoResourcePool *pool);
void finish_pool (ExoResourcePool *pool,
                  Backend         *backend);
ExoPoolLease *acquire_sync (ExoResourcePool  *pool,
                            guint             timeout_ms,
                            GError          **error);
ExoTestResource *lease_item (ExoPoolLease *lease);
gboolean size_is (gpointer data);
gboolean state_is_closed (gpointer data);
guint64 destroyed_of (ExoResourcePool *pool);

/* The cases of each part of the program; main() calls these in order. */
void test_pool_register_acquire (void);
void test_pool_register_idle (void);
void test_pool_register_recovery (void);
void test_pool_register_threads (void);

G_END_DECLS
