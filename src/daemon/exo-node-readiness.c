/* exo-node-readiness.c: when exo-node's start is over, for the service
 * manager (READY=1), and the one-line summary of its resources (STATUS=).
 *
 * Owns: the set of resources that must be up before READY=1 (the config's
 * node.ready-when, all of them by default) and the rule of when their
 * start is over; the STATUS= text and its rate limit; STOPPING=1.
 *
 * The rule, the one systemd applies to its own units (READY=1 says that
 * the start is over, not that everything went well; STATUS= says how it
 * went):
 *   - READY=1 goes out once the bus name is owned and every required
 *     resource is usable (`ready` or `degraded`), or has settled in
 *     failure: it went to `error` at least once since the node started
 *     (its start failed; the root group keeps restarting it), it was
 *     stopped (`closed`), or it was never started because something it
 *     depends on (directly or not) is in one of those cases.
 *   - A required resource that is still `initializing` (its first attempt,
 *     or its own retries) holds READY=1 back: TimeoutStartSec= of the unit
 *     bounds that wait.
 *   - READY=1 goes out once per run; after it, STATUS= follows the
 *     resources (`running` when all are `ready`, else `degraded`).
 * Only the config's resources count: the peers the node adds to the root
 * group later are not part of the node's start.
 *
 * Rules: main thread, the daemon's main context (the resources' signals
 * arrive there).  A state change costs O(1); the readiness check runs from
 * an idle callback (one per burst of changes) and is O(resources +
 * dependencies) only while no required resource is initializing; the
 * STATUS= text is built at most once per EXO_NODE_STATUS_INTERVAL_US.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-node-readiness.h"

#include <string.h>

typedef struct
{
  ExoNodeReadiness *owner;
  ExoResource      *resource;
  gulong            handler;
  guint            *deps;       /* indices of entries earlier in the array */
  guint             n_deps;
  ExoResourceState  state;
  gboolean          required;
  gboolean          failed;     /* went to `error` since the node started */
} Entry;

struct _ExoNodeReadiness
{
  ExoSdNotify *notify;          /* borrowed */
  Entry       *entries;         /* dependencies first */
  guint        n_entries;
  guint        n_required;
  guint        n_required_usable;
  guint        n_required_initializing;
  gboolean     bus_ready;
  gboolean     ready;           /* READY=1 sent */
  gboolean     stopping;
  guint        evaluate_id;
  guint        status_id;
  gint64       status_sent_us;
  char        *status_sent;
};

static gboolean
usable (ExoResourceState state)
{
  return state == EXO_RESOURCE_STATE_READY || state == EXO_RESOURCE_STATE_DEGRADED;
}

static void
count (ExoNodeReadiness *self,
       ExoResourceState  state,
       int               delta)
{
  if (usable (state))
    self->n_required_usable += delta;
  else if (state == EXO_RESOURCE_STATE_INITIALIZING)
    self->n_required_initializing += delta;
}

/* --- STATUS= -------------------------------------------------------------- */

/* The words STATUS= lists the resources under, in the order listed. */
static const struct {
  ExoResourceState  state;
  const char       *word;
} listed[] = {
  { EXO_RESOURCE_STATE_ERROR, "error" },
  { EXO_RESOURCE_STATE_DEGRADED, "degraded" },
  { EXO_RESOURCE_STATE_INITIALIZING, "initializing" },
  { EXO_RESOURCE_STATE_CLOSING, "closing" },
  { EXO_RESOURCE_STATE_CLOSED, "stopped" },
  { EXO_RESOURCE_STATE_UNINITIALIZED, "waiting" },
};

/**
 * exo_node_readiness_describe:
 * @self: the tracker
 *
 * The STATUS= line: the phase (`starting`, `running`, `degraded`,
 * `stopping`), how many resources are ready, and the others by state, at
 * most %EXO_NODE_STATUS_MAX_NAMES named per state, e.g.
 * `degraded: 2 of 4 resources ready; error: backend; waiting: consumer`.
 *
 * Returns: (transfer full): the line
 */
char *
exo_node_readiness_describe (ExoNodeReadiness *self)
{
  GString *text = g_string_new (NULL);
  guint n_ready = 0;
  const char *phase;

  for (guint i = 0; i < self->n_entries; i++)
    if (self->entries[i].state == EXO_RESOURCE_STATE_READY)
      n_ready++;

  if (self->stopping)
    phase = "stopping";
  else if (!self->ready)
    phase = "starting";
  else
    phase = n_ready == self->n_entries ? "running" : "degraded";
  g_string_append_printf (text, "%s: %u of %u resource%s ready", phase, n_ready, self->n_entries,
                          self->n_entries == 1 ? "" : "s");

  for (guint k = 0; k < G_N_ELEMENTS (listed); k++)
    {
      guint n = 0;

      for (guint i = 0; i < self->n_entries; i++)
        {
          Entry *e = &self->entries[i];

          if (e->state != listed[k].state)
            continue;
          if (n == 0)
            g_string_append_printf (text, "; %s: %s", listed[k].word,
                                    exo_resource_get_id (e->resource));
          else if (n < EXO_NODE_STATUS_MAX_NAMES)
            g_string_append_printf (text, ", %s", exo_resource_get_id (e->resource));
          n++;
        }
      if (n > EXO_NODE_STATUS_MAX_NAMES)
        g_string_append_printf (text, " and %u more", n - EXO_NODE_STATUS_MAX_NAMES);
    }
  return g_string_free (text, FALSE);
}

static void
send_status (ExoNodeReadiness *self,
             const char       *fields)
{
  g_autofree char *text = exo_node_readiness_describe (self);

  if (fields == NULL && g_strcmp0 (text, self->status_sent) == 0)
    return;
  exo_sd_notify_send (self->notify, fields, text);
  g_free (self->status_sent);
  self->status_sent = g_steal_pointer (&text);
  self->status_sent_us = g_get_monotonic_time ();
}

static gboolean
status_cb (gpointer user_data)
{
  ExoNodeReadiness *self = user_data;

  self->status_id = 0;
  send_status (self, NULL);
  return G_SOURCE_REMOVE;
}

/* A change to report: on the next iteration (a burst of changes makes one
 * message), and no sooner than an interval after the last message. */
static void
status_changed (ExoNodeReadiness *self)
{
  gint64 wait_us;

  if (self->status_id != 0)
    return;
  wait_us = self->status_sent_us != 0
            ? self->status_sent_us + EXO_NODE_STATUS_INTERVAL_US - g_get_monotonic_time ()
            : 0;
  self->status_id = g_timeout_add ((guint) (MAX (wait_us, 0) / 1000), status_cb, self);
  g_source_set_name_by_id (self->status_id, "[exo-node] STATUS= update");
}

/* --- READY=1 -------------------------------------------------------------- */

/* Whether every required resource is usable or settled in failure (the
 * rule at the top of this file).  One pass, dependencies first. */
static gboolean
start_is_over (ExoNodeReadiness *self)
{
  g_autofree guint8 *stuck = g_new0 (guint8, MAX (self->n_entries, 1));

  for (guint i = 0; i < self->n_entries; i++)
    {
      Entry *e = &self->entries[i];

      if (usable (e->state))
        continue;
      if (e->failed || e->state == EXO_RESOURCE_STATE_CLOSED)
        stuck[i] = 1;
      else if (e->state == EXO_RESOURCE_STATE_UNINITIALIZED)
        for (guint j = 0; j < e->n_deps && !stuck[i]; j++)
          stuck[i] = stuck[e->deps[j]];
      if (e->required && !stuck[i])
        return FALSE;
    }
  return TRUE;
}

static gboolean
evaluate_cb (gpointer user_data)
{
  ExoNodeReadiness *self = user_data;

  self->evaluate_id = 0;
  if (self->ready || self->stopping || !self->bus_ready)
    return G_SOURCE_REMOVE;
  if (self->n_required_usable < self->n_required &&
      (self->n_required_initializing > 0 || !start_is_over (self)))
    return G_SOURCE_REMOVE;

  self->ready = TRUE;
  g_clear_handle_id (&self->status_id, g_source_remove);
  send_status (self, "READY=1");
  if (self->n_required_usable < self->n_required)
    g_warning ("startup finished degraded (%s); told the service manager READY=1, and the "
               "node keeps restarting what failed", self->status_sent);
  else
    g_message ("told the service manager READY=1 (%s)", self->status_sent);
  return G_SOURCE_REMOVE;
}

static void
evaluate_later (ExoNodeReadiness *self)
{
  if (self->ready || self->stopping || self->evaluate_id != 0)
    return;
  self->evaluate_id = g_idle_add (evaluate_cb, self);
  g_source_set_name_by_id (self->evaluate_id, "[exo-node] readiness check");
}

static void
state_changed_cb (ExoResource      *resource,
                  ExoResourceState  old_state,
                  ExoResourceState  new_state,
                  gpointer          user_data)
{
  Entry *e = user_data;
  ExoNodeReadiness *self = e->owner;

  if (e->required)
    {
      count (self, e->state, -1);
      count (self, new_state, +1);
    }
  e->state = new_state;
  if (new_state == EXO_RESOURCE_STATE_ERROR)
    e->failed = TRUE;
  evaluate_later (self);
  status_changed (self);
}

/* --- life ----------------------------------------------------------------- */

/**
 * exo_node_readiness_new:
 * @notify: (nullable): where to send; borrowed, must outlive the tracker
 * @root: the node's root group, built from the config
 * @required: (nullable) (array zero-terminated=1): the ids of the members
 *   that must be up before READY=1 (`node.ready-when`), %NULL for all
 *
 * Follows the members @root has now, in its main context.  READY=1 waits
 * for exo_node_readiness_set_bus_ready() too.
 *
 * Returns: (transfer full): the tracker
 */
ExoNodeReadiness *
exo_node_readiness_new (ExoSdNotify        *notify,
                        ExoResourceGroup   *root,
                        const char * const *required)
{
  ExoNodeReadiness *self = g_new0 (ExoNodeReadiness, 1);
  g_auto(GStrv) order = exo_resource_group_get_topological_order (root, NULL);
  g_autoptr(GHashTable) index = g_hash_table_new (g_str_hash, g_str_equal);
  guint n = order != NULL ? g_strv_length (order) : 0;

  self->notify = notify;
  self->entries = g_new0 (Entry, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      Entry *e = &self->entries[self->n_entries];
      g_auto(GStrv) deps = exo_resource_group_get_dependencies (root, order[i]);
      ExoResource *resource = exo_resource_group_lookup (root, order[i]);

      if (resource == NULL)
        continue;
      e->owner = self;
      e->resource = g_object_ref (resource);
      e->state = exo_resource_get_state (resource);
      e->required = required == NULL || g_strv_contains (required, order[i]);
      e->deps = g_new (guint, deps != NULL ? g_strv_length (deps) + 1 : 1);
      for (guint j = 0; deps != NULL && deps[j] != NULL; j++)
        {
          gpointer at;

          /* dependencies come first in the order */
          if (g_hash_table_lookup_extended (index, deps[j], NULL, &at))
            e->deps[e->n_deps++] = GPOINTER_TO_UINT (at);
        }
      if (e->required)
        {
          self->n_required++;
          count (self, e->state, +1);
        }
      e->handler = g_signal_connect (resource, "state-changed", G_CALLBACK (state_changed_cb), e);
      g_hash_table_insert (index, (gpointer) exo_resource_get_id (resource),
                           GUINT_TO_POINTER (self->n_entries));
      self->n_entries++;
    }

  status_changed (self);
  return self;
}

/**
 * exo_node_readiness_set_bus_ready:
 * @self: the tracker
 *
 * The node owns its bus name: clients can reach it.
 */
void
exo_node_readiness_set_bus_ready (ExoNodeReadiness *self)
{
  self->bus_ready = TRUE;
  evaluate_later (self);
}

/**
 * exo_node_readiness_set_stopping:
 * @self: the tracker
 *
 * Sends STOPPING=1 (with STATUS=) at once; READY=1 is not sent any more.
 */
void
exo_node_readiness_set_stopping (ExoNodeReadiness *self)
{
  if (self->stopping)
    return;
  self->stopping = TRUE;
  g_clear_handle_id (&self->evaluate_id, g_source_remove);
  g_clear_handle_id (&self->status_id, g_source_remove);
  send_status (self, "STOPPING=1");
}

gboolean
exo_node_readiness_is_ready (ExoNodeReadiness *self)
{
  return self->ready;
}

void
exo_node_readiness_free (ExoNodeReadiness *self)
{
  if (self == NULL)
    return;
  for (guint i = 0; i < self->n_entries; i++)
    {
      g_clear_signal_handler (&self->entries[i].handler, self->entries[i].resource);
      g_clear_object (&self->entries[i].resource);
      g_free (self->entries[i].deps);
    }
  g_clear_handle_id (&self->evaluate_id, g_source_remove);
  g_clear_handle_id (&self->status_id, g_source_remove);
  g_free (self->entries);
  g_free (self->status_sent);
  g_free (self);
}
