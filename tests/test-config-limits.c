/* test-config-limits.c: the config's limits and I/O — a missing file, a
 * directory, a file too large, too many resources, a long dependency
 * chain, nesting too deep.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-config (main() in test-config.c).  Large configs are made in
 * memory or in a temporary file.  One thread.
 */
#include <glib/gstdio.h>

#include "config-fixture.h"

/* ------------------------------------------------------------------------ */
/* Limits and I/O                                                           */

static void
test_missing_file (void)
{
  g_autofree char *path = config_path ("does-not-exist.json");
  g_autofree char *expected = g_strdup_printf ("%s: cannot open: %s", path, g_strerror (ENOENT));
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;

  config = exo_config_load_file (path, test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_IO);
  g_assert_cmpstr (error->message, ==, expected);
}

static void
test_directory (void)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "configs", NULL);
  g_autofree char *expected = g_strdup_printf ("%s: cannot read: %s", path, g_strerror (EISDIR));
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;

  config = exo_config_load_file (path, test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_IO);
  g_assert_cmpstr (error->message, ==, expected);
}

/* A valid config padded with spaces to @size bytes. */
static char *
padded_config (gsize size)
{
  const char *json = "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\" } ] }";
  char *data = g_malloc (size + 1);

  g_assert_cmpuint (size, >=, strlen (json) + 1);
  memset (data, ' ', size);
  memcpy (data, json, strlen (json));
  data[size - 1] = '\n';
  data[size] = '\0';
  return data;
}

static void
test_file_too_large (void)
{
  g_autofree char *dir = g_dir_make_tmp ("exo-config-XXXXXX", NULL);
  g_autofree char *big = g_build_filename (dir, "big.json", NULL);
  g_autofree char *limit = g_build_filename (dir, "limit.json", NULL);
  g_autofree char *data = padded_config (EXO_CONFIG_MAX_FILE_SIZE + 1);
  g_autofree char *expected = g_strdup_printf ("%s: the config is larger than the limit of "
                                               "1048576 bytes (1 MiB)", big);
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;

  g_assert_nonnull (dir);
  g_assert_true (g_file_set_contents (big, data, EXO_CONFIG_MAX_FILE_SIZE + 1, NULL));
  config = exo_config_load_file (big, test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_LIMIT);
  g_assert_cmpstr (error->message, ==, expected);
  g_clear_error (&error);

  /* The same, given as data. */
  config = exo_config_load_data (data, EXO_CONFIG_MAX_FILE_SIZE + 1, "big.json", test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_LIMIT);
  g_assert_cmpstr (error->message, ==,
                   "big.json: the config is larger than the limit of 1048576 bytes (1 MiB)");
  g_clear_error (&error);

  /* Exactly the limit is allowed. */
  g_assert_true (g_file_set_contents (limit, data, EXO_CONFIG_MAX_FILE_SIZE, NULL));
  config = exo_config_load_file (limit, test_lookup, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (config);

  g_assert_cmpint (g_remove (big), ==, 0);
  g_assert_cmpint (g_remove (limit), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static char *
many_resources (guint n)
{
  GString *json = g_string_new ("{\n  \"resources\": [\n");

  for (guint i = 0; i < n; i++)
    g_string_append_printf (json, "    { \"id\": \"r%u\", \"type\": \"kinds\"%s }%s\n",
                            i, i > 0 ? ", \"depends-on\": [\"r0\"]" : "", i + 1 < n ? "," : "");
  g_string_append (json, "  ]\n}\n");
  return g_string_free (json, FALSE);
}

static void
test_too_many_resources (void)
{
  g_autofree char *at_limit = many_resources (EXO_CONFIG_MAX_RESOURCES);
  g_autofree char *over = many_resources (EXO_CONFIG_MAX_RESOURCES + 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;
  g_auto(GStrv) ids = NULL;

  config = exo_config_load_data (at_limit, -1, "many.json", test_lookup, NULL, &error);
  g_assert_no_error (error);
  ids = exo_config_get_resource_ids (config);
  g_assert_cmpuint (g_strv_length (ids), ==, EXO_CONFIG_MAX_RESOURCES);
  g_clear_pointer (&config, exo_config_unref);

  config = exo_config_load_data (over, -1, "many.json", test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_LIMIT);
  g_assert_cmpstr (error->message, ==,
                   "many.json:2: resources: 10001 resources are more than the limit of 10000");
}

/* A chain of 10 000 dependencies: checked without deep recursion. */
static void
test_long_chain (void)
{
  GString *json = g_string_new ("{ \"resources\": [\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;
  g_autofree char *data = NULL;
  guint n = EXO_CONFIG_MAX_RESOURCES;

  for (guint i = 0; i < n; i++)
    {
      g_string_append_printf (json, "{ \"id\": \"r%u\", \"type\": \"kinds\"", i);
      if (i + 1 < n)
        g_string_append_printf (json, ", \"depends-on\": [\"r%u\"]", i + 1);
      else
        g_string_append (json, ", \"depends-on\": [\"r0\"]");
      g_string_append (json, i + 1 < n ? " },\n" : " }\n");
    }
  g_string_append (json, "] }\n");
  data = g_string_free (json, FALSE);

  config = exo_config_load_data (data, -1, "chain.json", test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_CYCLE);
  g_assert_true (g_str_has_prefix (error->message,
                                   "chain.json:2: resources[0].depends-on[0]: dependency cycle: r0 -> r1 -> r2 -> "));
  g_assert_true (g_str_has_suffix (error->message, " -> r9999 -> r0"));
}

static void
test_too_deep (void)
{
  GString *json = g_string_new ("{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
                                "  \"settings\": { \"tags\": ");
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;
  g_autofree char *data = NULL;

  /* Far deeper than json-glib 1.6 survives without the limit. */
  for (guint i = 0; i < 200000; i++)
    g_string_append_c (json, '[');
  for (guint i = 0; i < 200000; i++)
    g_string_append_c (json, ']');
  g_string_append (json, " } } ] }\n");
  data = g_string_free (json, FALSE);

  config = exo_config_load_data (data, -1, "deep.json", test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, EXO_CONFIG_ERROR_LIMIT);
  g_assert_cmpstr (error->message, ==,
                   "deep.json:2: objects and arrays nested deeper than the limit of 32 levels");
}

/* --- registration ---------------------------------------------------- */

void
test_config_register_limits (void)
{
  g_test_add_func ("/exo/config/limit/missing-file", test_missing_file);
  g_test_add_func ("/exo/config/limit/directory", test_directory);
  g_test_add_func ("/exo/config/limit/file-size", test_file_too_large);
  g_test_add_func ("/exo/config/limit/resources", test_too_many_resources);
  g_test_add_func ("/exo/config/limit/long-chain", test_long_chain);
  g_test_add_func ("/exo/config/limit/depth", test_too_deep);
}
