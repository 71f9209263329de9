/* resource-group-fixture.h: what the parts of test-resource-group share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program is test-resource-group.c (main(), membership, validation) and
 * test-resource-group-{lifecycle,supervision,recovery,members}.c; each part
 * registers its cases through the test_group_register_*() function below.
 * The helpers (resource-group-fixture.c) make members without retries of
 * their own and wait for states; they run in the test's thread and spin its
 * thread-default main context.
 */
#pragma once

#include "exo-test-util.h"

G_BEGIN_DECLS

ExoTestResource *member_new (const char *id);
ExoTestResource *add_member (ExoResourceGroup *group,
                             const char       *id,
                             ...);
ExoResourceState state_of (gpointer resource);
char *log_filter (const char        *kind,
                  const char * const *ids);
void assert_before (const char *first,
                    const char *second);
GString *watch (gpointer resource);
void group_init_ok (ExoResourceGroup *group);
void group_cleanup_ok (ExoResourceGroup *group);
gboolean wait_state (gpointer         resource,
                     ExoResourceState state);
void wait_restarts (ExoResourceGroup *group,
                    guint             n);
void fail_member (gpointer resource);
void count_cb (ExoResourceGroup *group,
               ExoResource      *member,
               gpointer          data);

/* The cases of each part of the program; main() calls these in order. */
void test_group_register_lifecycle (void);
void test_group_register_supervision (void);
void test_group_register_recovery (void);
void test_group_register_members (void);

G_END_DECLS
