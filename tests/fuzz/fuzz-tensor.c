/* fuzz-tensor.c: POST /peer/v1/tensor, its X-Exo-* headers and body
 * (exo_http_tensor_request_parse () of plugins/http-server/http-request.c,
 * compiled in).
 *
 * Input: five lines — X-Exo-Request-Id, X-Exo-Shard, X-Exo-Tensor-Dtype,
 * X-Exo-Tensor-Shape, X-Exo-Params — then the body; a line that is missing,
 * or holds CR or NUL, is a missing header, and so is an empty fifth line
 * (X-Exo-Params is optional: older peers do not send it).  (libsoup never
 * gives a handler a header with CR, LF or NUL.)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-http.h"
#include "http-request.h"

#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *fields[5] = { NULL, };
  g_autoptr(ExoHttpTensorRequest) tensor = NULL;
  g_autoptr(GError) error = NULL;
  gsize pos = 0;
  ExoHttpTensorParseCache cache = { NULL, };

  exo_fuzz_init ();
  for (guint i = 0; i < G_N_ELEMENTS (fields) && pos < size; i++)
    {
      const uint8_t *nl = memchr (data + pos, '\n', size - pos);
      gsize end = nl != NULL ? (gsize) (nl - data) : size;

      if (memchr (data + pos, '\0', end - pos) == NULL && memchr (data + pos, '\r', end - pos) == NULL)
        fields[i] = g_strndup ((const char *) data + pos, end - pos);
      pos = nl != NULL ? end + 1 : size;
    }

  if (fields[4] != NULL && fields[4][0] == '\0')
    g_clear_pointer (&fields[4], g_free);
  tensor = exo_http_tensor_request_parse (fields[0], fields[1], fields[2], fields[3], fields[4],
                                          data + pos, size - pos, NULL, &error);
  /* through a peer stream's cache, twice: the same answer as without,
   * parsed then remembered */
  for (guint round = 0; round < 2; round++)
    {
      g_autoptr(GError) cached_error = NULL;
      g_autoptr(ExoHttpTensorRequest) cached =
        exo_http_tensor_request_parse (fields[0], fields[1], fields[2], fields[3], fields[4],
                                       data + pos, size - pos, &cache, &cached_error);

      EXO_FUZZ_CHECK ((cached == NULL) == (tensor == NULL), "the cache changed the outcome");
      if (cached == NULL)
        EXO_FUZZ_CHECK (g_strcmp0 (cached_error->message, error->message) == 0,
                        "the cache changed the error");
      else
        {
          g_autofree char *a = exo_http_shard_to_string (tensor->shard);
          g_autofree char *b = exo_http_shard_to_string (cached->shard);

          EXO_FUZZ_CHECK (g_str_equal (a, b), "the cache changed the shard");
          EXO_FUZZ_CHECK ((cached->params == NULL) == (tensor->params == NULL), "params");
          if (cached->params != NULL)
            {
              g_autofree char *pa = exo_http_params_to_string (tensor->params);
              g_autofree char *pb = exo_http_params_to_string (cached->params);

              EXO_FUZZ_CHECK (g_str_equal (pa, pb), "the cache changed the params");
            }
        }
    }
  exo_http_tensor_parse_cache_clear (&cache);
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    g_clear_pointer (&fields[i], g_free);
  if (tensor == NULL)
    {
      EXO_FUZZ_CHECK (error != NULL && g_utf8_validate (error->message, -1, NULL),
                      "the error message is not UTF-8");
      exo_fuzz_check_error_answer (error);
      return 0;
    }
  EXO_FUZZ_CHECK (exo_http_id_is_valid (tensor->request_id), "request_id");
  if (tensor->params != NULL)
    exo_fuzz_check_params (tensor->params);
  {
    gsize n_bytes = exo_tensor_get_n_elements (tensor->tensor) * exo_dtype_get_size (exo_tensor_get_dtype (tensor->tensor));
    g_autofree char *shape = exo_tensor_shape_to_string (tensor->tensor);

    EXO_FUZZ_CHECK (n_bytes == size - pos, "the body is %" G_GSIZE_FORMAT " bytes, the tensor %"
                    G_GSIZE_FORMAT, size - pos, n_bytes);
    EXO_FUZZ_CHECK (shape != NULL, "shape");
  }
  return 0;
}
