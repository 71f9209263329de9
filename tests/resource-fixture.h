/* resource-fixture.h: what the parts of test-resource share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program is test-resource.c (main(), transitions, identity, the
 * lifecycle, single flight) and test-resource-{failure,operations}.c; each
 * part registers its cases through the test_resource_register_*() function
 * below.  resource-fixture.c records transitions and drives a resource to a
 * state; it runs in the test's thread and spins its thread-default main
 * context.
 */
#pragma once

#include "exo-test-util.h"

G_BEGIN_DECLS

typedef struct
{
  GArray *transitions;   /* pairs of (old, new) */
} Recorder;

void record_cb (ExoResource      *resource,
                ExoResourceState  old_state,
                ExoResourceState  new_state,
                gpointer          data);
char *recorder_string (Recorder *rec);
ExoTestResource *new_plain (const char *id);
void drive_to (ExoResource      *r,
               ExoResourceState  state);

/* The cases of each part of the program; main() calls these in order. */
void test_resource_register_failure (void);
void test_resource_register_operations (void);

G_END_DECLS
