/* llama-test-util.c: tiny checkpoints, the naive reference and engine
 * helpers for the llama tests (see llama-test-util.h).
 *
 * The reference is written as plainly as possible, in double, from the
 * description of the model (RMSNorm, RoPE θ = 10000 over pairs in each
 * head, grouped-query attention, SwiGLU, classifier), independently of the
 * engine's code: it is what the engine's numbers are checked against.
 *
 * Thread rules: single-threaded test code.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "llama-test-util.h"
#include "exo-test-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

/* --- weights --------------------------------------------------------------- */

static double
next_uniform (guint64 *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return (double) (*s >> 11) / 9007199254740992.0 * 2.0 - 1.0;   /* [-1, 1) */
}

static float *
random_floats (gsize n, double scale, double offset, guint64 *s)
{
  float *v = g_new (float, n);

  for (gsize i = 0; i < n; i++)
    v[i] = (float) (offset + scale * next_uniform (s));
  return v;
}

TinyModel *
tiny_model_new (int dim, int hidden, int n_layers, int n_heads, int n_kv_heads,
                int vocab, int seq_len, gboolean shared, guint64 seed)
{
  TinyModel *m = g_new0 (TinyModel, 1);
  int kv_dim = dim / n_heads * n_kv_heads, L = n_layers;
  guint64 s = seed * 2654435761u + 88172645463325252ull;
  double sd = 1.0 / sqrt (dim), sh = 1.0 / sqrt (hidden);

  m->dim = dim;
  m->hidden = hidden;
  m->n_layers = n_layers;
  m->n_heads = n_heads;
  m->n_kv_heads = n_kv_heads;
  m->vocab = vocab;
  m->seq_len = seq_len;
  m->shared = shared;
  m->group_size = dim % 32 == 0 && hidden % 32 == 0 ? 32 : dim % 8 == 0 && hidden % 8 == 0 ? 8 : 1;
  m->emb = random_floats ((gsize) vocab * dim, 1.0, 0.0, &s);
  m->att_norm = random_floats ((gsize) L * dim, 0.2, 1.0, &s);
  m->wq = random_floats ((gsize) L * dim * dim, 2 * sd, 0.0, &s);
  m->wk = random_floats ((gsize) L * kv_dim * dim, 2 * sd, 0.0, &s);
  m->wv = random_floats ((gsize) L * kv_dim * dim, 2 * sd, 0.0, &s);
  m->wo = random_floats ((gsize) L * dim * dim, sd, 0.0, &s);
  m->ffn_norm = random_floats ((gsize) L * dim, 0.2, 1.0, &s);
  m->w1 = random_floats ((gsize) L * hidden * dim, 2 * sd, 0.0, &s);
  m->w2 = random_floats ((gsize) L * dim * hidden, sh, 0.0, &s);
  m->w3 = random_floats ((gsize) L * hidden * dim, 2 * sd, 0.0, &s);
  m->final_norm = random_floats (dim, 0.2, 1.0, &s);
  m->cls = shared ? NULL : random_floats ((gsize) vocab * dim, 2 * sd, 0.0, &s);
  return m;
}

void
tiny_model_free (TinyModel *m)
{
  if (m == NULL)
    return;
  g_free (m->emb);
  g_free (m->att_norm);
  g_free (m->wq);
  g_free (m->wk);
  g_free (m->wv);
  g_free (m->wo);
  g_free (m->ffn_norm);
  g_free (m->w1);
  g_free (m->w2);
  g_free (m->w3);
  g_free (m->final_norm);
  g_free (m->cls);
  g_free (m);
}

static gsize
kv_dim (TinyModel *m)
{
  return (gsize) m->dim / m->n_heads * m->n_kv_heads;
}

/* export.py's quantize_q80: per group, scale = max |w| / 127, q = round (w / scale) */
static void
quantize (const float *w, gsize n, int gs, gint8 *q, float *scales)
{
  for (gsize g = 0; g < n / gs; g++)
    {
      float wmax = 0.0f;

      for (int j = 0; j < gs; j++)
        wmax = MAX (wmax, fabsf (w[g * gs + j]));
      scales[g] = wmax / 127.0f;
      for (int j = 0; j < gs; j++)
        q[g * gs + j] = scales[g] > 0 ? (gint8) rintf (w[g * gs + j] / scales[g]) : 0;
    }
}

static void
put_floats (GByteArray *out, const float *v, gsize n)
{
  g_byte_array_append (out, (const guint8 *) v, n * sizeof (float));
}

static void
put_q8 (GByteArray *out, const float *v, gsize n, int gs)
{
  g_autofree gint8 *q = g_new (gint8, n);
  g_autofree float *s = g_new (float, n / gs);

  quantize (v, n, gs, q, s);
  g_byte_array_append (out, (const guint8 *) q, n);
  g_byte_array_append (out, (const guint8 *) s, n / gs * sizeof (float));
}

/* One tensor kind for all layers: per layer in v2 (each is its own
 * quantised tensor), all at once otherwise. */
static void
put_layers (GByteArray *out, TinyFormat f, const float *v, gsize per_layer, int L, int gs)
{
  for (int l = 0; l < L; l++)
    if (f == TINY_V2)
      put_q8 (out, v + l * per_layer, per_layer, gs);
    else
      put_floats (out, v + l * per_layer, per_layer);
}

GBytes *
tiny_model_serialize (TinyModel *m, TinyFormat f)
{
  GByteArray *out = g_byte_array_new ();
  int L = m->n_layers, d = m->dim, h = m->hidden, gs = m->group_size;
  gsize kv = kv_dim (m);
  gint32 header[7] = { d, h, L, m->n_heads, m->n_kv_heads, m->vocab, m->seq_len };

  if (f == TINY_LEGACY)
    {
      gsize freq = (gsize) m->seq_len * (d / m->n_heads) / 2;
      g_autofree float *zeros = g_new0 (float, freq);

      if (!m->shared)
        header[5] = -m->vocab;
      g_byte_array_append (out, (const guint8 *) header, sizeof header);
      put_floats (out, m->emb, (gsize) m->vocab * d);
      put_floats (out, m->att_norm, (gsize) L * d);
      put_floats (out, m->wq, (gsize) L * d * d);
      put_floats (out, m->wk, L * kv * d);
      put_floats (out, m->wv, L * kv * d);
      put_floats (out, m->wo, (gsize) L * d * d);
      put_floats (out, m->ffn_norm, (gsize) L * d);
      put_floats (out, m->w1, (gsize) L * h * d);
      put_floats (out, m->w2, (gsize) L * d * h);
      put_floats (out, m->w3, (gsize) L * h * d);
      put_floats (out, m->final_norm, d);
      put_floats (out, zeros, freq);
      put_floats (out, zeros, freq);
      if (!m->shared)
        put_floats (out, m->cls, (gsize) m->vocab * d);
      return g_byte_array_free_to_bytes (out);
    }

  {
    guint8 pad[256] = { 0, };
    guint32 magic = 0x616b3432;
    gint32 version = f == TINY_V1 ? 1 : 2;

    memcpy (pad, &magic, 4);
    memcpy (pad + 4, &version, 4);
    memcpy (pad + 8, header, sizeof header);
    pad[36] = m->shared ? 1 : 0;
    if (f == TINY_V2)
      memcpy (pad + 37, &gs, 4);
    g_byte_array_append (out, pad, sizeof pad);
  }
  put_floats (out, m->att_norm, (gsize) L * d);
  put_floats (out, m->ffn_norm, (gsize) L * d);
  put_floats (out, m->final_norm, d);
  if (f == TINY_V2)
    put_q8 (out, m->emb, (gsize) m->vocab * d, gs);
  else
    put_floats (out, m->emb, (gsize) m->vocab * d);
  put_layers (out, f, m->wq, (gsize) d * d, L, gs);
  put_layers (out, f, m->wk, kv * d, L, gs);
  put_layers (out, f, m->wv, kv * d, L, gs);
  put_layers (out, f, m->wo, (gsize) d * d, L, gs);
  put_layers (out, f, m->w1, (gsize) h * d, L, gs);
  put_layers (out, f, m->w2, (gsize) d * h, L, gs);
  put_layers (out, f, m->w3, (gsize) h * d, L, gs);
  if (!m->shared)
    put_layers (out, f, m->cls, (gsize) m->vocab * d, 1, gs);
  return g_byte_array_free_to_bytes (out);
}

char *
tiny_model_write (TinyModel *m, TinyFormat f, const char *dir, const char *name)
{
  g_autoptr(GBytes) bytes = tiny_model_serialize (m, f);
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), &error);
  g_assert_no_error (error);
  return path;
}

static float *
round_trip (const float *v, gsize n, int gs)
{
  float *out = g_new (float, n);
  g_autofree gint8 *q = g_new (gint8, n);
  g_autofree float *s = g_new (float, n / gs);

  quantize (v, n, gs, q, s);
  for (gsize i = 0; i < n; i++)
    out[i] = (float) q[i] * s[i / gs];
  return out;
}

TinyModel *
tiny_model_dequantized (TinyModel *m)
{
  TinyModel *c = g_memdup2 (m, sizeof *m);
  int L = m->n_layers, d = m->dim, h = m->hidden, gs = m->group_size;
  gsize kv = kv_dim (m);

  c->emb = round_trip (m->emb, (gsize) m->vocab * d, gs);
  c->att_norm = g_memdup2 (m->att_norm, (gsize) L * d * sizeof (float));
  c->ffn_norm = g_memdup2 (m->ffn_norm, (gsize) L * d * sizeof (float));
  c->final_norm = g_memdup2 (m->final_norm, d * sizeof (float));
  /* each layer's tensor has its own groups, and they never straddle layers */
  c->wq = round_trip (m->wq, (gsize) L * d * d, gs);
  c->wk = round_trip (m->wk, L * kv * d, gs);
  c->wv = round_trip (m->wv, L * kv * d, gs);
  c->wo = round_trip (m->wo, (gsize) L * d * d, gs);
  c->w1 = round_trip (m->w1, (gsize) L * h * d, gs);
  c->w2 = round_trip (m->w2, (gsize) L * d * h, gs);
  c->w3 = round_trip (m->w3, (gsize) L * h * d, gs);
  c->cls = m->shared ? NULL : round_trip (m->cls, (gsize) m->vocab * d, gs);
  return c;
}

TinyModel *
tiny_model_read_legacy (const char *path)
{
  g_autofree char *data = NULL;
  gsize len;
  const gint32 *hdr;
  const float *p;
  TinyModel *m;
  gsize kv;
  int L;

  if (!g_file_get_contents (path, &data, &len, NULL))
    return NULL;
  hdr = (const gint32 *) (void *) data;
  m = g_new0 (TinyModel, 1);
  m->dim = hdr[0];
  m->hidden = hdr[1];
  m->n_layers = L = hdr[2];
  m->n_heads = hdr[3];
  m->n_kv_heads = hdr[4];
  m->shared = hdr[5] > 0;
  m->vocab = abs (hdr[5]);
  m->seq_len = hdr[6];
  kv = kv_dim (m);
  p = (const float *) (const void *) (data + 28);
#define TAKE(field, n) (m->field = g_memdup2 (p, (n) * sizeof (float)), p += (n))
  TAKE (emb, (gsize) m->vocab * m->dim);
  TAKE (att_norm, (gsize) L * m->dim);
  TAKE (wq, (gsize) L * m->dim * m->dim);
  TAKE (wk, L * kv * m->dim);
  TAKE (wv, L * kv * m->dim);
  TAKE (wo, (gsize) L * m->dim * m->dim);
  TAKE (ffn_norm, (gsize) L * m->dim);
  TAKE (w1, (gsize) L * m->hidden * m->dim);
  TAKE (w2, (gsize) L * m->dim * m->hidden);
  TAKE (w3, (gsize) L * m->hidden * m->dim);
  TAKE (final_norm, (gsize) m->dim);
  p += (gsize) m->seq_len * (m->dim / m->n_heads);   /* freq_cis_real and _imag */
  if (!m->shared)
    TAKE (cls, (gsize) m->vocab * m->dim);
#undef TAKE
  return m;
}

/* --- the reference ------------------------------------------------------------ */

struct _TinyRef
{
  TinyModel *m;
  gboolean   quantize;
  int        pos;
  double    *keys;     /* L × seq × kv_dim */
  double    *values;
};

TinyRef *
tiny_ref_new (TinyModel *m, gboolean quantize_activations)
{
  TinyRef *ref = g_new0 (TinyRef, 1);

  ref->m = m;
  ref->quantize = quantize_activations;
  ref->keys = g_new0 (double, (gsize) m->n_layers * m->seq_len * kv_dim (m));
  ref->values = g_new0 (double, (gsize) m->n_layers * m->seq_len * kv_dim (m));
  return ref;
}

void
tiny_ref_free (TinyRef *ref)
{
  g_free (ref->keys);
  g_free (ref->values);
  g_free (ref);
}

static void
rmsnorm (double *out, const double *x, const float *w, int n)
{
  double ss = 0;

  for (int i = 0; i < n; i++)
    ss += x[i] * x[i];
  ss = 1.0 / sqrt (ss / n + 1e-5);
  for (int i = 0; i < n; i++)
    out[i] = w[i] * ss * x[i];
}

/* out (rows) = W (rows × cols) · x (cols) */
static void
matvec (TinyRef *ref, double *out, const float *w, const double *x, int rows, int cols)
{
  g_autofree double *xin = g_memdup2 (x, cols * sizeof (double));
  int gs = ref->m->group_size;

  if (ref->quantize)
    for (int g = 0; g < cols / gs; g++)
      {
        double amax = 0, scale;

        for (int j = 0; j < gs; j++)
          amax = MAX (amax, fabs (x[g * gs + j]));
        scale = amax / 127.0;
        for (int j = 0; j < gs; j++)
          xin[g * gs + j] = scale > 0 ? round (x[g * gs + j] / scale) * scale : 0;
      }
  for (int r = 0; r < rows; r++)
    {
      double sum = 0;

      for (int c = 0; c < cols; c++)
        sum += (double) w[(gsize) r * cols + c] * xin[c];
      out[r] = sum;
    }
}

static void
rotate (double *v, int n, int head_size, int pos)
{
  for (int i = 0; i < n; i += 2)
    {
      int j = (i % head_size) / 2;
      double theta = pos * pow (10000.0, -2.0 * j / head_size);
      double a = v[i], b = v[i + 1];

      v[i] = a * cos (theta) - b * sin (theta);
      v[i + 1] = a * sin (theta) + b * cos (theta);
    }
}

void
tiny_ref_step (TinyRef *ref, int token, double *logits)
{
  TinyModel *m = ref->m;
  int d = m->dim, h = m->hidden, hs = d / m->n_heads, kv = kv_dim (m), p = ref->pos;
  g_autofree double *x = g_new (double, d);
  g_autofree double *xb = g_new (double, d);
  g_autofree double *q = g_new (double, d);
  g_autofree double *att_out = g_new (double, d);
  g_autofree double *tmp = g_new (double, d);
  g_autofree double *h1 = g_new (double, h);
  g_autofree double *h3 = g_new (double, h);
  g_autofree double *scores = g_new (double, m->seq_len);
  const float *cls = m->shared ? m->emb : m->cls;

  for (int i = 0; i < d; i++)
    x[i] = m->emb[(gsize) token * d + i];

  for (int l = 0; l < m->n_layers; l++)
    {
      double *k = ref->keys + ((gsize) l * m->seq_len + p) * kv;
      double *v = ref->values + ((gsize) l * m->seq_len + p) * kv;

      rmsnorm (xb, x, m->att_norm + l * d, d);
      matvec (ref, q, m->wq + (gsize) l * d * d, xb, d, d);
      matvec (ref, k, m->wk + (gsize) l * kv * d, xb, kv, d);
      matvec (ref, v, m->wv + (gsize) l * kv * d, xb, kv, d);
      rotate (q, d, hs, p);
      rotate (k, kv, hs, p);

      for (int head = 0; head < m->n_heads; head++)
        {
          int kvh = head / (m->n_heads / m->n_kv_heads);
          double max = -INFINITY, sum = 0;

          for (int t = 0; t <= p; t++)
            {
              const double *kt = ref->keys + ((gsize) l * m->seq_len + t) * kv + kvh * hs;

              scores[t] = 0;
              for (int i = 0; i < hs; i++)
                scores[t] += q[head * hs + i] * kt[i];
              scores[t] /= sqrt (hs);
              max = MAX (max, scores[t]);
            }
          for (int t = 0; t <= p; t++)
            sum += scores[t] = exp (scores[t] - max);
          for (int i = 0; i < hs; i++)
            {
              double o = 0;

              for (int t = 0; t <= p; t++)
                o += scores[t] / sum * ref->values[((gsize) l * m->seq_len + t) * kv + kvh * hs + i];
              att_out[head * hs + i] = o;
            }
        }
      matvec (ref, tmp, m->wo + (gsize) l * d * d, att_out, d, d);
      for (int i = 0; i < d; i++)
        x[i] += tmp[i];

      rmsnorm (xb, x, m->ffn_norm + l * d, d);
      matvec (ref, h1, m->w1 + (gsize) l * h * d, xb, h, d);
      matvec (ref, h3, m->w3 + (gsize) l * h * d, xb, h, d);
      for (int i = 0; i < h; i++)
        h1[i] = h1[i] / (1.0 + exp (-h1[i])) * h3[i];
      matvec (ref, tmp, m->w2 + (gsize) l * d * h, h1, d, h);
      for (int i = 0; i < d; i++)
        x[i] += tmp[i];
    }

  rmsnorm (xb, x, m->final_norm, d);
  matvec (ref, logits, cls, xb, m->vocab, d);
  ref->pos++;
}

char *
tiny_tokenizer_write (const char * const *pieces, const float *scores, guint n,
                      const char *dir, const char *name)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  char *path = g_build_filename (dir, name, NULL);
  gint32 max_len = 1;
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < n; i++)
    max_len = MAX (max_len, (gint32) strlen (pieces[i]));
  g_byte_array_append (out, (const guint8 *) &max_len, 4);
  for (guint i = 0; i < n; i++)
    {
      gint32 len = strlen (pieces[i]);

      g_byte_array_append (out, (const guint8 *) &scores[i], 4);
      g_byte_array_append (out, (const guint8 *) &len, 4);
      g_byte_array_append (out, (const guint8 *) pieces[i], len);
    }
  g_file_set_contents (path, (const char *) out->data, out->len, &error);
  g_assert_no_error (error);
  return path;
}

static gboolean
plain_byte (guint b)
{
  return (b >= 0x20 && b < 0x7f && b != '[' && b != ']' && b != '<') || b == '\t' || b == '\n';
}

char *
tiny_tokenizer_write_ids (guint n, const char *dir, const char *name)
{
  g_autoptr(GPtrArray) pieces = g_ptr_array_new_with_free_func (g_free);
  g_autofree float *scores = g_new0 (float, n);

  g_assert_cmpuint (n, >=, 259);
  g_ptr_array_add (pieces, g_strdup ("<unk>"));
  g_ptr_array_add (pieces, g_strdup ("<s>"));
  g_ptr_array_add (pieces, g_strdup ("</s>"));
  for (guint id = 3; id < n; id++)
    g_ptr_array_add (pieces, id < 259 && plain_byte (id - 3) ? g_strdup_printf ("<0x%02X>", id - 3)
                                                          : g_strdup_printf ("[%u]", id));
  return tiny_tokenizer_write ((const char * const *) pieces->pdata, scores, n, dir, name);
}

GArray *
tiny_tokenizer_text_ids (const char *text)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));

  while (*text != '\0')
    {
      gint32 id;

      if (plain_byte ((guint8) *text))
        id = 3 + (guint8) *text++;
      else if (g_str_has_prefix (text, "<unk>"))
        {
          id = 0;
          text += strlen ("<unk>");
        }
      else
        {
          const char *close = text[0] == '[' ? strchr (text, ']') : NULL;
          g_autofree char *digits = close != NULL ? g_strndup (text + 1, close - text - 1) : NULL;
          guint64 value;

          if (digits == NULL ||
              !g_ascii_string_to_unsigned (digits, 10, 3, G_MAXINT32, &value, NULL))
            return NULL;
          id = (gint32) value;
          text = close + 1;
        }
      g_array_append_val (ids, id);
    }
  return g_steal_pointer (&ids);
}

/* --- the engine ------------------------------------------------------------------- */

static ExoPluginLoader *loader;

void
llama_test_load_plugins (void)
{
  const char *dir = g_getenv ("EXO_TEST_BUILD_PLUGIN_DIR");
  g_autofree char *fallback = NULL;

  if (dir == NULL)
    {
      g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
      g_autofree char *here = g_path_get_dirname (self);

      fallback = g_build_filename (here, "..", "plugins", NULL);
      dir = fallback;
    }
  loader = exo_plugin_loader_new ();
  exo_plugin_loader_add_search_dir (loader, dir);
  exo_plugin_loader_load_all (loader, NULL);
}

gboolean
llama_test_kernels_usable (void)
{
  const char *want = g_getenv ("EXO_LLAMA_KERNELS");
  g_autoptr(TinyModel) m = NULL;
  g_autoptr(GVariant) metrics = NULL;
  g_autofree char *dir = NULL, *path = NULL;
  ExoInferenceEngine *engine;
  const char *got = NULL;
  gboolean usable;

  if (want == NULL || *want == '\0')
    return TRUE;
  dir = g_dir_make_tmp ("llama-kernels-XXXXXX", NULL);
  g_assert_nonnull (dir);
  m = tiny_model_new (16, 32, 1, 2, 2, 8, 8, TRUE, 1);
  path = tiny_model_write (m, TINY_LEGACY, dir, "m.bin");
  engine = llama_test_engine_new (path, NULL, NULL);
  g_assert_true (exo_test_initialize (EXO_RESOURCE (engine), NULL));
  metrics = exo_resource_get_metrics (EXO_RESOURCE (engine));
  g_assert_true (g_variant_lookup (metrics, "kernels", "&s", &got));
  usable = g_strcmp0 (got, want) == 0;
  if (!usable)
    g_print ("1..0 # SKIP EXO_LLAMA_KERNELS=%s: this CPU lacks it (the engine uses %s)\n", want, got);
  g_assert_true (exo_test_cleanup (EXO_RESOURCE (engine), NULL));
  g_object_unref (engine);
  g_unlink (path);
  g_rmdir (dir);
  return usable;
}

ExoInferenceEngine *
llama_test_engine_new (const char *model, const char *tokenizer, const char *first_property, ...)
{
  GType type = exo_plugin_loader_lookup_type (loader, "llama");
  GObject *engine;
  va_list ap;

  g_assert_true (type != G_TYPE_INVALID);
  va_start (ap, first_property);
  engine = g_object_new_valist (type, first_property, ap);
  va_end (ap);
  g_object_set (engine, "model", model, "tokenizer", tokenizer, NULL);
  g_assert_true (EXO_IS_INFERENCE_ENGINE (engine));
  return EXO_INFERENCE_ENGINE (engine);
}

ExoTensor *
llama_test_infer (ExoInferenceEngine *engine, const char *request_id, const ExoShard *shard,
                  ExoTensor *input, GError **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  exo_inference_engine_infer_tensor_async (engine, request_id, shard, input, NULL,
                                           exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 120000));
  return exo_inference_engine_infer_tensor_finish (engine, result, error);
}

ExoTensor *
llama_test_encode (ExoInferenceEngine *engine, const char *text, GError **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(ExoShard) shard = exo_shard_new ("m", 0, 0, 1);

  exo_inference_engine_encode_async (engine, shard, text, NULL, exo_test_store_result, &result);
  g_assert_true (exo_test_wait_result (&result, 30000));
  return exo_inference_engine_encode_finish (engine, result, error);
}

ExoTensor *
llama_test_tokens (const gint32 *ids, gsize n)
{
  return exo_tensor_new_int32 (ids, n);
}

gint32
llama_test_token (ExoTensor *t)
{
  g_assert_cmpint (exo_tensor_get_dtype (t), ==, EXO_DTYPE_INT32);
  g_assert_cmpuint (exo_tensor_get_n_elements (t), ==, 1);
  return ((const gint32 *) exo_tensor_peek_data (t))[0];
}
