/* bench-llama-ref.h: the plain reference decoder bench-llama.c measures
 * the engine against (see bench-llama-ref.c).  Thread rules: one thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

typedef struct _RefModel RefModel;

/* A legacy float32 llama2.c checkpoint, read into memory. */
RefModel *ref_model_open (const char *path);
void      ref_model_free (RefModel   *m);
/* Runs @token at @pos; returns the argmax of the logits. */
int       ref_model_step (RefModel   *m,
                          int         token,
                          int         pos);
