/* llama-sessions.h: the request states of the llama engine (position, KV
 * cache, random state per request id), bounded in number and idle time.
 *
 * Thread rules: every function may be called from any thread; the table
 * has its own lock.  Between llama_sessions_begin() and
 * llama_sessions_finish() the session is busy: only the thread that began
 * it reads or writes its weights, kv and pos (the fields below), and the
 * table neither frees nor expires it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "llama-forward.h"
#include "llama-model.h"

G_BEGIN_DECLS

/* The ids of ended or expired requests the table remembers. */
#define LLAMA_MAX_TOMBSTONES 4096

typedef struct _LlamaSessions LlamaSessions;

typedef struct
{
  char              *request_id;
  LlamaShardWeights *weights;      /* the shard of its KV cache; NULL before its first pass */
  LlamaKVCache      *kv;
  guint              pos;          /* positions done */

  /*< private >*/
  gsize              kv_bytes;
  guint64            rng;
  gboolean           rng_ready;
  gint64             last_used_us;
  gboolean           busy;
  gboolean           ended;
  gboolean           fresh;        /* made by the begin that holds it */
} LlamaSession;

typedef struct
{
  guint   sessions;
  guint64 kv_bytes;
  guint64 expired;
  guint64 refused;
} LlamaSessionStats;

LlamaSessions *llama_sessions_new         (void);
void           llama_sessions_free        (LlamaSessions     *table);
void           llama_sessions_set_limits  (LlamaSessions     *table,
                                           guint              max_sessions,
                                           guint              timeout_ms);
/* Takes the session of @request_id for a pass over @weights (made if new,
 * within max-sessions: else G_IO_ERROR_BUSY; an ended or expired id is
 * G_IO_ERROR_CLOSED). */
LlamaSession  *llama_sessions_begin       (LlamaSessions     *table,
                                           const char        *request_id,
                                           LlamaShardWeights *weights,
                                           const char        *engine_id,
                                           GError           **error);
/* Gives it back: @n_done positions were computed (0: the pass failed; a
 * session that the failed pass made is forgotten). */
void           llama_sessions_finish      (LlamaSessions     *table,
                                           LlamaSession      *session,
                                           guint              n_done);
/* The random state of @request_id, seeded on its first use; give it back
 * with llama_sessions_put_rng(). */
gboolean       llama_sessions_take_rng    (LlamaSessions     *table,
                                           const char        *request_id,
                                           guint64            seed,
                                           gboolean           has_seed,
                                           const char        *engine_id,
                                           guint64           *state,
                                           GError           **error);
void           llama_sessions_put_rng     (LlamaSessions     *table,
                                           const char        *request_id,
                                           guint64            state);
void           llama_sessions_end         (LlamaSessions     *table,
                                           const char        *request_id);
void           llama_sessions_expire      (LlamaSessions     *table);
void           llama_sessions_clear       (LlamaSessions     *table);
void           llama_sessions_get_stats   (LlamaSessions     *table,
                                           LlamaSessionStats *stats);

G_END_DECLS
