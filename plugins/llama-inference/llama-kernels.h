/* llama-kernels.h: the numeric kernels of the llama engine (matmul in
 * float32 and int8, RMSNorm, softmax, SiLU) and the thread team that
 * splits a matmul by output rows.
 *
 * Thread rules: the kernels are pure functions of their arguments.  A
 * LlamaTeam is used by one thread at a time (the engine's worker); its
 * helper threads only ever run the row ranges that llama_team_run() hands
 * them.
 *
 * Determinism: every output element is computed by one thread, with the
 * same float operations in the same order whatever the thread count, the
 * batch size, the shard and the kernel path (a float dot product sums into
 * 16 independent lanes, then a fixed reduction tree; an int8 one sums each
 * group exactly in integers, then the groups in order in float).  The
 * kernels are compiled with -O3 and -ffp-contract=off and never with
 * -ffast-math.
 *
 * Kernel paths: the portable C code, and copies for AVX2 and AVX-512
 * (llama-kernels-x86.c, GCC target attributes: the build stays portable).
 * The best the CPU has is chosen once, at the first llama_kernels_get ();
 * $EXO_LLAMA_KERNELS (portable, avx2, avx512) can force a lower one.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A weight matrix [rows, cols] in the mapped checkpoint: float32, or int8
 * in groups of @group_size consecutive values with one float32 scale per
 * group (@scales may be unaligned: read through memcpy). */
typedef struct
{
  const float  *f32;
  const gint8  *q8;
  const guint8 *scales;
  guint         rows;
  guint         cols;
  guint         group_size;
} LlamaMatrix;

typedef struct _LlamaTeam LlamaTeam;

typedef enum
{
  LLAMA_KERNELS_PORTABLE,
  LLAMA_KERNELS_AVX2,     /* avx2 */
  LLAMA_KERNELS_AVX512,   /* avx512f, avx512bw, avx512vl, avx512vnni */
} LlamaKernels;

const char   *llama_kernels_to_string    (LlamaKernels  kernels);
gboolean      llama_kernels_from_string  (const char   *name,
                                          LlamaKernels *kernels);
gboolean      llama_kernels_cpu_has      (LlamaKernels  kernels);
/* The path in use: the best this CPU has, or $EXO_LLAMA_KERNELS when the
 * CPU has that (else the best below it, with a message). */
LlamaKernels  llama_kernels_get          (void);
/* Tests only (no matmul may be running): @kernels must be one the CPU has. */
void          llama_kernels_set          (LlamaKernels  kernels);

/* Called on row range [start, end) by one thread of the team. */
typedef void (*LlamaRangeFunc) (gpointer data,
                                guint    start,
                                guint    end);

/* Buffers a team keeps for the thread that uses it, so that a forward
 * pass allocates nothing (a slot grows to the largest size asked for;
 * its contents are not kept from one use to the next). */
enum
{
  LLAMA_SCRATCH_X,
  LLAMA_SCRATCH_XB,
  LLAMA_SCRATCH_XB2,
  LLAMA_SCRATCH_Q,
  LLAMA_SCRATCH_HB,
  LLAMA_SCRATCH_HB2,
  LLAMA_SCRATCH_ATT,
  LLAMA_SCRATCH_ROPE,
  LLAMA_SCRATCH_Q8_VALUES,   /* used by llama_matmul */
  LLAMA_SCRATCH_Q8_SCALES,   /* used by llama_matmul */
  LLAMA_SCRATCH_Q8_SUMS,     /* used by llama_matmul */
  LLAMA_N_SCRATCH,
};

LlamaTeam *llama_team_new       (guint           n_threads);
gpointer   llama_team_scratch   (LlamaTeam      *team,
                                 guint           slot,
                                 gsize           bytes);
void       llama_team_free      (LlamaTeam      *team);
void       llama_team_run       (LlamaTeam      *team,
                                 guint           n_items,
                                 LlamaRangeFunc  func,
                                 gpointer        data);

/* out[b * out_stride + r] = Σ_c w[r, c] · x[b * x_stride + c], for b < batch.
 * An int8 @w quantises each x row to int8 groups of its group size first. */
void  llama_matmul          (LlamaTeam         *team,
                             float             *out,
                             gsize              out_stride,
                             const LlamaMatrix *w,
                             const float       *x,
                             gsize              x_stride,
                             guint              batch);

void  llama_rmsnorm         (float       *out,
                             const float *x,
                             const float *weight,
                             guint        n);
void  llama_softmax         (float       *x,
                             guint        n);
/* hb[i] = silu (hb[i]) * hb2[i] */
void  llama_swiglu          (float       *hb,
                             const float *hb2,
                             guint        n);
/* One attention head over positions 0 .. n_pos - 1: att[t] = q · k_t ×
 * scale, softmax, out = Σ_t att[t] v_t (k_t = keys + t × stride, and v_t
 * likewise; head_size values each). */
void  llama_attend          (const float *q,
                             const float *keys,
                             const float *values,
                             gsize        stride,
                             guint        n_pos,
                             guint        head_size,
                             float        scale,
                             float       *att,
                             float       *out);
/* Row @row of @w as float32 (dequantised for int8). */
void  llama_matrix_get_row  (const LlamaMatrix *w,
                             guint              row,
                             float             *out);
/* Quantise @x (n values, n a multiple of @group_size) to int8 groups
 * (-127..127): scale = max |x| / 127, q = round (x / scale). */
void  llama_quantize_q8     (gint8       *q,
                             float       *scales,
                             const float *x,
                             guint        n,
                             guint        group_size);

G_END_DECLS
