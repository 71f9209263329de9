/* bench.h: the benchmark registry of exo-bench.
 *
 * Each benchmark runs the real code path several times, takes the median and
 * prints one JSON line through bench_report():
 *   {"bench": "pool_cycle_ns", "value": 41.7, "unit": "ns", "n": 5000000}
 */
#pragma once

#include <exo/exo.h>

typedef void (*BenchFunc) (void);

typedef struct {
  const char *name;     /* the name printed and matched on the command line */
  BenchFunc   func;
} BenchEntry;

/* Print one result line; @extra_json is "" or ", \"key\": value, ..." */
void   bench_report      (const char *name,
                          double      value,
                          const char *unit,
                          guint64     n,
                          const char *extra_json);
double bench_median      (double     *values,
                          guint       n_values);
/* Monotonic time in nanoseconds. */
gint64 bench_now_ns      (void);
/* Spin the thread-default main context until *flag is TRUE. */
void   bench_wait_flag   (gboolean   *flag);

/* bench-llama.c (built with the llama plugin): its stories15M-shaped
 * float32 checkpoint and a tokenizer for it, made on first use, removed
 * at exit. */
void   bench_llama_files (const char **f32,
                          const char **tokenizer);

/* Tables provided by bench-*.c; each ends with { NULL, NULL }. */
extern const BenchEntry bench_core_entries[];
extern const BenchEntry bench_pool_entries[];
extern const BenchEntry bench_group_entries[];
extern const BenchEntry bench_daemon_entries[];
extern const BenchEntry bench_cluster_entries[];
extern const BenchEntry bench_recovery_entries[];
extern const BenchEntry bench_http_entries[];
extern const BenchEntry bench_llama_entries[];
extern const BenchEntry bench_python_entries[];
