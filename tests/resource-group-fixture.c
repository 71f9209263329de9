/* resource-group-fixture.c: members and waits for test-resource-group.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Members are ExoTestResources without retries of their own (one
 * do_initialize per initialize), so logs and counters say what the group
 * did; the log helpers read exo_test_log_get().  Everything runs in the
 * test's thread; the waits spin its thread-default main context.
 */
#include "resource-group-fixture.h"

#include <string.h>

/* --- helpers ----------------------------------------------------------- */

/* A test resource without retries of its own: one do_initialize per
 * initialize, so that logs and counters say what the group did. */
ExoTestResource *
member_new (const char *id)
{
  ExoTestResource *r = exo_test_resource_new (id);
  ExoRetryPolicy policy = {
    .max_retries = 0, .initial_delay_ms = 1, .max_delay_ms = 1,
    .multiplier = 1.0, .jitter = EXO_JITTER_NONE,
  };

  exo_managed_resource_set_retry_policy (EXO_MANAGED_RESOURCE (r), &policy);
  return r;
}

/* Adds a new test resource called @id depending on the NULL-terminated
 * names that follow; returns it (the group holds the only ref). */
ExoTestResource *
add_member (ExoResourceGroup *group,
            const char       *id,
            ...)
{
  g_autoptr(ExoTestResource) r = member_new (id);
  g_autoptr(GPtrArray) deps = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  const char *dep;
  va_list args;

  va_start (args, id);
  while ((dep = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (deps, (gpointer) dep);
  va_end (args);
  g_ptr_array_add (deps, NULL);

  g_assert_true (exo_resource_group_add (group, EXO_RESOURCE (r),
                                         (const char * const *) deps->pdata, &error));
  g_assert_no_error (error);
  return r;
}

ExoResourceState
state_of (gpointer resource)
{
  return exo_resource_get_state (EXO_RESOURCE (resource));
}

/* The entries of the test log whose kind is @kind ("init", "cleanup", …),
 * for the ids in @ids (all when NULL), comma separated. */
char *
log_filter (const char        *kind,
            const char * const *ids)
{
  g_auto(GStrv) entries = g_strsplit (exo_test_log_get (), ",", -1);
  GString *out = g_string_new (NULL);
  gsize kind_len = strlen (kind);

  for (guint i = 0; entries[i] != NULL; i++)
    {
      const char *e = entries[i];

      if (strncmp (e, kind, kind_len) != 0 || e[kind_len] != ':')
        continue;
      if (ids != NULL && !g_strv_contains (ids, e + kind_len + 1))
        continue;
      if (out->len > 0)
        g_string_append_c (out, ',');
      g_string_append (out, e);
    }
  return g_string_free (out, FALSE);
}

/* The position of @entry in the test log, or -1. */
static int
log_index (const char *entry)
{
  g_auto(GStrv) entries = g_strsplit (exo_test_log_get (), ",", -1);

  for (guint i = 0; entries[i] != NULL; i++)
    if (g_str_equal (entries[i], entry))
      return (int) i;
  return -1;
}

void
assert_before (const char *first,
               const char *second)
{
  int a = log_index (first);
  int b = log_index (second);

  if (a < 0 || b < 0 || a >= b)
    g_error ("expected %s before %s in log: %s", first, second, exo_test_log_get ());
}

/* Records every state a resource enters: "initializing>ready>…". */
static void
history_cb (ExoResource      *resource,
            ExoResourceState  old_state,
            ExoResourceState  new_state,
            gpointer          data)
{
  GString *history = data;

  if (history->len > 0)
    g_string_append_c (history, '>');
  g_string_append (history, exo_resource_state_to_string (new_state));
}

static void
history_free (gpointer data)
{
  g_string_free (data, TRUE);
}

GString *
watch (gpointer resource)
{
  GString *history = g_string_new (NULL);

  g_object_set_data_full (G_OBJECT (resource), "test-history", history, history_free);
  g_signal_connect (resource, "state-changed", G_CALLBACK (history_cb), history);
  return history;
}

void
group_init_ok (ExoResourceGroup *group)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_initialize (EXO_RESOURCE (group), &error));
  g_assert_no_error (error);
  g_assert_cmpint (state_of (group), ==, EXO_RESOURCE_STATE_READY);
}

void
group_cleanup_ok (ExoResourceGroup *group)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_test_cleanup (EXO_RESOURCE (group), &error));
  g_assert_no_error (error);
  g_assert_cmpint (state_of (group), ==, EXO_RESOURCE_STATE_CLOSED);
}

gboolean
wait_state (gpointer         resource,
            ExoResourceState state)
{
  return exo_test_wait_for_state (EXO_RESOURCE (resource), state, 10000);
}

static gboolean
restarts_reached (gpointer data)
{
  gpointer *args = data;

  return exo_resource_group_get_restarts (args[0]) >= GPOINTER_TO_UINT (args[1]);
}

void
wait_restarts (ExoResourceGroup *group,
               guint             n)
{
  gpointer args[2] = { group, GUINT_TO_POINTER (n) };

  g_assert_true (exo_test_spin_until (restarts_reached, args, 10000));
}

void
fail_member (gpointer resource)
{
  g_autoptr(GError) error = g_error_new (EXO_RESOURCE_ERROR, EXO_RESOURCE_ERROR_FAILED,
                                         "connection to '%s' dropped",
                                         exo_resource_get_id (resource));

  exo_resource_report_error (EXO_RESOURCE (resource), error);
  g_assert_cmpint (state_of (resource), ==, EXO_RESOURCE_STATE_ERROR);
}

void
count_cb (ExoResourceGroup *group,
          ExoResource      *member,
          gpointer          data)
{
  (*(guint *) data)++;
}
