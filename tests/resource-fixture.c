/* resource-fixture.c: a Recorder of transitions, a plain resource and a way
 * to drive it to a state, for test-resource.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One thread: the Recorder is connected to state-changed and the drives
 * spin the test's thread-default main context.
 */
#include "resource-fixture.h"

/* --- helpers ----------------------------------------------------------- */

void
record_cb (ExoResource      *resource,
           ExoResourceState  old_state,
           ExoResourceState  new_state,
           gpointer          data)
{
  Recorder *rec = data;
  guint pair[2] = { old_state, new_state };

  g_assert_cmpint (exo_resource_get_state (resource), ==, new_state);
  g_array_append_vals (rec->transitions, pair, 2);
}

char *
recorder_string (Recorder *rec)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < rec->transitions->len; i += 2)
    {
      if (s->len == 0)
        g_string_append (s, exo_resource_state_to_string (g_array_index (rec->transitions, guint, i)));
      g_string_append_printf (s, ">%s",
                              exo_resource_state_to_string (g_array_index (rec->transitions, guint, i + 1)));
    }
  return g_string_free (s, FALSE);
}

ExoTestResource *
new_plain (const char *id)
{
  ExoTestResource *r = exo_test_resource_new (id);
  ExoRetryPolicy policy = {
    .max_retries = 0, .initial_delay_ms = 1, .max_delay_ms = 1,
    .multiplier = 1.0, .jitter = EXO_JITTER_NONE,
  };

  /* No retries and no recovery: the base contract alone. */
  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (r), &policy);
  exo_managed_resource_set_auto_recover (EXO_MANAGED_RESOURCE (r), FALSE);
  return r;
}

/* Drive a fresh resource to @state along legal edges with exo_resource_transition(). */
void
drive_to (ExoResource      *r,
          ExoResourceState  state)
{
  static const ExoResourceState paths[EXO_RESOURCE_STATE_LAST][3] = {
    [EXO_RESOURCE_STATE_UNINITIALIZED] = { 0 },
    [EXO_RESOURCE_STATE_INITIALIZING]  = { EXO_RESOURCE_STATE_INITIALIZING },
    [EXO_RESOURCE_STATE_READY]         = { EXO_RESOURCE_STATE_INITIALIZING, EXO_RESOURCE_STATE_READY },
    [EXO_RESOURCE_STATE_DEGRADED]      = { EXO_RESOURCE_STATE_INITIALIZING, EXO_RESOURCE_STATE_READY,
                                           EXO_RESOURCE_STATE_DEGRADED },
    [EXO_RESOURCE_STATE_ERROR]         = { EXO_RESOURCE_STATE_INITIALIZING, EXO_RESOURCE_STATE_ERROR },
    [EXO_RESOURCE_STATE_CLOSING]       = { EXO_RESOURCE_STATE_CLOSING },
    [EXO_RESOURCE_STATE_CLOSED]        = { EXO_RESOURCE_STATE_CLOSING, EXO_RESOURCE_STATE_CLOSED },
  };

  for (guint i = 0; i < 3 && paths[state][i] != 0; i++)
    g_assert_true (exo_resource_transition (r, paths[state][i], NULL));
  g_assert_cmpint (exo_resource_get_state (r), ==, state);
}
