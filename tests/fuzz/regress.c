/* regress.c: the main () of the harnesses in the normal build (without
 * libFuzzer): feeds every file of the folders (and files) given as
 * arguments to LLVMFuzzerTestOneInput (), in name order, and prints TAP.
 * A crash, a sanitizer report or an abort fails the test; so do a missing
 * folder and one without files.  meson runs it on tests/fuzz/regressions/
 * <harness>/ (each crasher the fuzzers ever found) and tests/fuzz/corpus/
 * <harness>/ (the seeds).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-common.h"

#include <string.h>

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static gboolean
collect (const char *path,
         GPtrArray  *files)
{
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = NULL;
  const char *name;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
        return FALSE;
      g_ptr_array_add (files, g_strdup (path));
      return TRUE;
    }
  dir = g_dir_open (path, 0, NULL);
  if (dir == NULL)
    return FALSE;
  names = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (name[0] != '.')
      g_ptr_array_add (names, g_build_filename (path, name, NULL));
  g_ptr_array_sort (names, compare_strings);
  for (guint i = 0; i < names->len; i++)
    if (g_file_test (g_ptr_array_index (names, i), G_FILE_TEST_IS_REGULAR))
      g_ptr_array_add (files, g_strdup (g_ptr_array_index (names, i)));
  return TRUE;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);

  for (int i = 1; i < argc; i++)
    if (!collect (argv[i], files))
      {
        printf ("Bail out! %s: no such file or folder\n", argv[i]);
        return 1;
      }
  if (files->len == 0)
    {
      printf ("Bail out! no inputs\n");
      return 1;
    }

  printf ("1..%u\n", files->len);
  fflush (stdout);
  for (guint i = 0; i < files->len; i++)
    {
      const char *path = g_ptr_array_index (files, i);
      g_autofree char *contents = NULL;
      g_autoptr(GError) error = NULL;
      gsize length = 0;

      if (!g_file_get_contents (path, &contents, &length, &error))
        {
          printf ("not ok %u - %s: %s\n", i + 1, path, error->message);
          continue;
        }
      /* An exact copy, so that ASan sees reads past the end. */
      {
        g_autofree guint8 *copy = g_malloc (MAX (length, 1));

        memcpy (copy, contents, length);

        LLVMFuzzerTestOneInput (copy, length);
      }
      printf ("ok %u - %s\n", i + 1, path);
      fflush (stdout);
    }
  return 0;
}
