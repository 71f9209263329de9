/* llama-sessions.c: the table of request states of the llama engine.
 *
 * It owns every LlamaSession (and through it the KV caches) and the
 * tombstones: the ids of requests that ended or expired (the last
 * LLAMA_MAX_TOMBSTONES), so that a late tensor of such a request is refused
 * instead of silently starting over at position 0.  Limits: at most
 * max-sessions states (one more is G_IO_ERROR_BUSY, which the API maps to
 * 429), and a state idle for timeout-ms (0: never) is dropped.
 *
 * Thread rules: see llama-sessions.h; table->lock guards everything here
 * except the fields of a busy session that its holder owns.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "llama-sessions.h"
#include "llama-sampler.h"

#include <gio/gio.h>

struct _LlamaSessions
{
  GMutex      lock;
  GHashTable *sessions;        /* request id → LlamaSession */
  GHashTable *tombstones;      /* request id, owned; also in tombstone_order */
  GQueue      tombstone_order;
  guint       max_sessions;
  guint       timeout_ms;
  guint64     expired;
  guint64     refused;
};

static void
session_free (LlamaSession *s)
{
  g_free (s->request_id);
  g_clear_pointer (&s->weights, llama_shard_weights_unref);
  g_clear_pointer (&s->kv, llama_kv_cache_free);
  g_free (s);
}

LlamaSessions *
llama_sessions_new (void)
{
  LlamaSessions *t = g_new0 (LlamaSessions, 1);

  g_mutex_init (&t->lock);
  t->sessions = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                       (GDestroyNotify) session_free);
  t->tombstones = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  t->max_sessions = 8;
  t->timeout_ms = 60000;
  return t;
}

void
llama_sessions_free (LlamaSessions *t)
{
  if (t == NULL)
    return;
  g_hash_table_unref (t->sessions);
  g_hash_table_unref (t->tombstones);
  g_queue_clear (&t->tombstone_order);   /* the strings were the table's */
  g_mutex_clear (&t->lock);
  g_free (t);
}

void
llama_sessions_set_limits (LlamaSessions *t,
                           guint          max_sessions,
                           guint          timeout_ms)
{
  g_mutex_lock (&t->lock);
  t->max_sessions = MAX (max_sessions, 1);
  t->timeout_ms = timeout_ms;
  g_mutex_unlock (&t->lock);
}

static void
add_tombstone (LlamaSessions *t,
               const char    *request_id)
{
  char *id;

  if (g_hash_table_contains (t->tombstones, request_id))
    return;
  if (t->tombstone_order.length >= LLAMA_MAX_TOMBSTONES)
    g_hash_table_remove (t->tombstones, g_queue_pop_head (&t->tombstone_order));
  id = g_strdup (request_id);
  g_queue_push_tail (&t->tombstone_order, id);
  g_hash_table_add (t->tombstones, id);
}

static void
drop (LlamaSessions *t,
      LlamaSession  *s)
{
  add_tombstone (t, s->request_id);
  g_hash_table_remove (t->sessions, s->request_id);   /* frees it */
}

static void
expire_locked (LlamaSessions *t)
{
  gint64 now = g_get_monotonic_time ();
  GHashTableIter iter;
  LlamaSession *s;

  if (t->timeout_ms == 0)
    return;
  g_hash_table_iter_init (&iter, t->sessions);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &s))
    if (!s->busy && now - s->last_used_us > (gint64) t->timeout_ms * 1000)
      {
        add_tombstone (t, s->request_id);
        g_hash_table_iter_remove (&iter);
        t->expired++;
      }
}

void
llama_sessions_expire (LlamaSessions *t)
{
  g_mutex_lock (&t->lock);
  expire_locked (t);
  g_mutex_unlock (&t->lock);
}

/* The session of @request_id, made if new (within max-sessions). */
static LlamaSession *
ensure_locked (LlamaSessions  *t,
               const char     *request_id,
               const char     *engine_id,
               GError        **error)
{
  LlamaSession *s = g_hash_table_lookup (t->sessions, request_id);

  if (s != NULL)
    {
      if (s->ended)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED, "request %s has ended", request_id);
          return NULL;
        }
      return s;
    }
  if (g_hash_table_contains (t->tombstones, request_id))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                   "request %s has ended or expired here (its state is gone)", request_id);
      return NULL;
    }
  if (g_hash_table_size (t->sessions) >= t->max_sessions)
    expire_locked (t);
  if (g_hash_table_size (t->sessions) >= t->max_sessions)
    {
      t->refused++;
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY,
                   "engine '%s' already holds max-sessions (%u) requests; retry later",
                   engine_id, t->max_sessions);
      return NULL;
    }
  s = g_new0 (LlamaSession, 1);
  s->request_id = g_strdup (request_id);
  s->last_used_us = g_get_monotonic_time ();
  s->fresh = TRUE;
  g_hash_table_insert (t->sessions, s->request_id, s);
  return s;
}

LlamaSession *
llama_sessions_begin (LlamaSessions      *t,
                      const char         *request_id,
                      LlamaShardWeights  *w,
                      const char         *engine_id,
                      GError            **error)
{
  LlamaSession *s;

  g_mutex_lock (&t->lock);
  s = ensure_locked (t, request_id, engine_id, error);
  if (s == NULL)
    goto out;
  if (s->busy)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, "request %s is already running here",
                   request_id);
      s = NULL;
      goto out;
    }
  if (s->weights == NULL)
    {
      s->weights = llama_shard_weights_ref (w);
      s->kv = llama_kv_cache_new (w->end_layer - w->start_layer + 1, w->config->kv_dim);
    }
  else if (s->weights->start_layer != w->start_layer || s->weights->end_layer != w->end_layer)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "request %s runs layers %u..%u here, not %u..%u", request_id,
                   s->weights->start_layer, s->weights->end_layer, w->start_layer, w->end_layer);
      s = NULL;
      goto out;
    }
  s->busy = TRUE;
out:
  g_mutex_unlock (&t->lock);
  return s;
}

void
llama_sessions_finish (LlamaSessions *t,
                       LlamaSession  *s,
                       guint          n_done)
{
  g_mutex_lock (&t->lock);
  s->busy = FALSE;
  s->pos += n_done;
  s->kv_bytes = llama_kv_cache_get_bytes (s->kv);
  s->last_used_us = g_get_monotonic_time ();
  if (s->ended)
    drop (t, s);
  else if (n_done == 0 && s->fresh && !s->rng_ready)
    g_hash_table_remove (t->sessions, s->request_id);   /* it never started */
  else if (n_done > 0)
    s->fresh = FALSE;
  g_mutex_unlock (&t->lock);
}

gboolean
llama_sessions_take_rng (LlamaSessions  *t,
                         const char     *request_id,
                         guint64         seed,
                         gboolean        has_seed,
                         const char     *engine_id,
                         guint64        *state,
                         GError        **error)
{
  LlamaSession *s;

  g_mutex_lock (&t->lock);
  s = ensure_locked (t, request_id, engine_id, error);
  if (s != NULL)
    {
      if (!s->rng_ready)
        {
          s->rng = llama_rng_seed (has_seed ? seed
                                            : ((guint64) g_random_int () << 32) | g_random_int ());
          s->rng_ready = TRUE;
        }
      s->fresh = FALSE;
      s->last_used_us = g_get_monotonic_time ();
      *state = s->rng;
    }
  g_mutex_unlock (&t->lock);
  return s != NULL;
}

void
llama_sessions_put_rng (LlamaSessions *t,
                        const char    *request_id,
                        guint64        state)
{
  LlamaSession *s;

  g_mutex_lock (&t->lock);
  s = g_hash_table_lookup (t->sessions, request_id);
  if (s != NULL)
    s->rng = state;
  g_mutex_unlock (&t->lock);
}

void
llama_sessions_end (LlamaSessions *t,
                    const char    *request_id)
{
  LlamaSession *s;

  g_mutex_lock (&t->lock);
  s = g_hash_table_lookup (t->sessions, request_id);
  if (s != NULL && s->busy)
    s->ended = TRUE;     /* its holder drops it in finish */
  else if (s != NULL)
    drop (t, s);
  else
    add_tombstone (t, request_id);
  g_mutex_unlock (&t->lock);
}

/* Forgets every state (not the tombstones); no session may be busy. */
void
llama_sessions_clear (LlamaSessions *t)
{
  g_mutex_lock (&t->lock);
  g_hash_table_remove_all (t->sessions);
  g_mutex_unlock (&t->lock);
}

void
llama_sessions_get_stats (LlamaSessions     *t,
                          LlamaSessionStats *stats)
{
  GHashTableIter iter;
  LlamaSession *s;

  g_mutex_lock (&t->lock);
  stats->sessions = g_hash_table_size (t->sessions);
  stats->kv_bytes = 0;
  g_hash_table_iter_init (&iter, t->sessions);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &s))
    stats->kv_bytes += s->kv_bytes;
  stats->expired = t->expired;
  stats->refused = t->refused;
  g_mutex_unlock (&t->lock);
}
