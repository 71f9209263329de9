/* test-plugin-loader.c: the plugin ABI and loader (docs/design.md §5).
 *
 * The test plugins are built from tests/plugins/ into the folder named by
 * EXO_TEST_PLUGIN_DIR.  Loaded plugins stay resident and their GTypes stay
 * registered for the life of the process, so a test never loads a *copy* of
 * good.so (it would register TestGoodResource a second time): copies are
 * only made for files that must be refused before they are opened, and
 * other folders reach the built plugins through symbolic links.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "exo-test-util.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* Helpers */

/* EXO_TEST_PLUGIN_DIR (set by meson), else plugins/ next to this program
 * (gtester runs it without meson's environment); always absolute. */
static const char *
plugin_dir (void)
{
  static char *dir;

  if (dir == NULL)
    {
      const char *env = g_getenv ("EXO_TEST_PLUGIN_DIR");
      g_autofree char *fallback = g_test_build_filename (G_TEST_BUILT, "plugins", NULL);

      dir = g_canonicalize_filename (env != NULL ? env : fallback, NULL);
    }
  return dir;
}

static char *
built_plugin (const char *name)
{
  g_autofree char *file = g_strconcat (name, ".so", NULL);

  return g_build_filename (plugin_dir (), file, NULL);
}

static char *
make_tmp_dir (void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp ("exo-plugin-test-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

static void
remove_tree (const char *path)
{
  GStatBuf st;

  if (g_lstat (path, &st) != 0)
    return;

  if (S_ISDIR (st.st_mode))
    {
      g_autoptr(GDir) dir = NULL;
      const char *name;

      g_chmod (path, 0700);
      dir = g_dir_open (path, 0, NULL);
      g_assert_nonnull (dir);
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          remove_tree (child);
        }
    }
  g_assert_cmpint (g_remove (path), ==, 0);
}

static char *
write_file (const char *dir,
            const char *name,
            const char *contents,
            gssize      len,
            int         mode)
{
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (dir, name, NULL);

  g_file_set_contents (path, contents, len, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, mode), ==, 0);
  return path;
}

/* A real copy (a different file) of a built plugin. */
static char *
copy_plugin (const char *plugin,
             const char *dir,
             const char *name,
             int         mode)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *source = built_plugin (plugin);
  g_autofree char *contents = NULL;
  gsize len;

  g_file_get_contents (source, &contents, &len, &error);
  g_assert_no_error (error);
  return write_file (dir, name, contents, len, mode);
}

static char *
link_plugin (const char *plugin,
             const char *dir,
             const char *name)
{
  g_autofree char *target = built_plugin (plugin);
  char *path = g_build_filename (dir, name, NULL);

  g_assert_cmpint (symlink (target, path), ==, 0);
  return path;
}

static char *
make_subdir (const char *dir,
             const char *name)
{
  char *path = g_build_filename (dir, name, NULL);

  g_assert_cmpint (g_mkdir (path, 0755), ==, 0);
  return path;
}

/* Checks what every refusal promises: the code, one line, the path, the
 * reason. */
static void
assert_refusal (const GError *error,
                gint          code,
                const char   *path,
                const char   *reason)
{
  g_assert_nonnull (error);
  g_test_message ("refused: %s", error->message);
  if (!g_error_matches (error, EXO_PLUGIN_ERROR, code))
    g_error ("expected %s code %d, got %s code %d: %s",
             g_quark_to_string (EXO_PLUGIN_ERROR), code,
             g_quark_to_string (error->domain), error->code, error->message);
  g_assert_null (strchr (error->message, '\n'));
  if (path != NULL)
    g_assert_true (g_str_has_prefix (error->message, path));
  if (strstr (error->message, reason) == NULL)
    g_error ("message \"%s\" does not contain \"%s\"", error->message, reason);
}

static void
assert_nothing_loaded (ExoPluginLoader *loader)
{
  g_autoptr(GPtrArray) plugins = exo_plugin_loader_list_plugins (loader);
  g_auto(GStrv) names = exo_plugin_loader_list_type_names (loader);

  g_assert_cmpuint (plugins->len, ==, 0);
  g_assert_cmpuint (g_strv_length (names), ==, 0);
}

static const GError *
find_error (GPtrArray  *errors,
            const char *path)
{
  for (guint i = 0; i < errors->len; i++)
    {
      const GError *error = g_ptr_array_index (errors, i);
      if (g_str_has_prefix (error->message, path))
        return error;
    }
  g_error ("no error for %s", path);
  return NULL;
}

/* A good file */

static void
test_load_good (void)
{
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = built_plugin ("good");
  g_autoptr(GPtrArray) plugins = NULL;
  g_auto(GStrv) type_names = NULL;
  ExoPluginInfo *info;
  GType type;

  info = exo_plugin_loader_load_file (loader, path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (info);

  g_assert_cmpstr (exo_plugin_info_get_name (info), ==, "good");
  g_assert_cmpstr (exo_plugin_info_get_version (info), ==, "1.2.3");
  g_assert_cmpstr (exo_plugin_info_get_description (info), ==, "A plugin the loader accepts");
  g_assert_cmpstr (exo_plugin_info_get_path (info), ==, path);
  g_assert_cmpstrv (exo_plugin_info_get_type_names (info),
                    ((const char *[]) { "test-good", "test-good-managed", NULL }));

  type = exo_plugin_loader_lookup_type (loader, "test-good");
  g_assert_true (g_type_is_a (type, EXO_TYPE_RESOURCE));
  g_assert_cmpstr (g_type_name (type), ==, "TestGoodResource");
  g_assert_true (g_type_is_a (exo_plugin_loader_lookup_type (loader, "test-good-managed"),
                              EXO_TYPE_MANAGED_RESOURCE));
  g_assert_true (exo_plugin_loader_lookup_plugin_for_type (loader, "test-good") == info);
  g_assert_true (exo_plugin_loader_lookup_plugin_for_type (loader, "test-good-managed") == info);

  g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "no-such-type"), ==, G_TYPE_INVALID);
  g_assert_null (exo_plugin_loader_lookup_plugin_for_type (loader, "no-such-type"));

  plugins = exo_plugin_loader_list_plugins (loader);
  g_assert_cmpuint (plugins->len, ==, 1);
  g_assert_true (g_ptr_array_index (plugins, 0) == info);

  type_names = exo_plugin_loader_list_type_names (loader);
  g_assert_cmpstrv (type_names, ((const char *[]) { "test-good", "test-good-managed", NULL }));

  /* The info is a boxed type that outlives the loader by reference. */
  {
    ExoPluginInfo *copy = g_boxed_copy (EXO_TYPE_PLUGIN_INFO, info);
    g_assert_true (copy == info);
    g_clear_object (&loader);
    g_assert_cmpstr (exo_plugin_info_get_name (copy), ==, "good");
    g_boxed_free (EXO_TYPE_PLUGIN_INFO, copy);
  }
}

static void
test_good_type_works (void)
{
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = built_plugin ("good");
  g_autoptr(ExoResource) resource = NULL;
  g_autoptr(ExoResource) managed = NULL;
  g_autofree char *greeting = NULL;
  gboolean opened = FALSE;
  GType type;

  g_assert_nonnull (exo_plugin_loader_load_file (loader, path, &error));
  g_assert_no_error (error);

  type = exo_plugin_loader_lookup_type (loader, "test-good");
  resource = g_object_new (type, "id", "good-1", "port", 8080, "greeting", "hi", NULL);
  g_assert_true (EXO_IS_RESOURCE (resource));
  g_assert_cmpstr (exo_resource_get_id (resource), ==, "good-1");
  g_assert_cmpstr (exo_resource_get_resource_type (resource), ==, "test-good");
  g_object_get (resource, "greeting", &greeting, NULL);
  g_assert_cmpstr (greeting, ==, "hi");

  g_assert_true (exo_test_initialize (resource, &error));
  g_assert_no_error (error);
  g_assert_cmpint (exo_resource_get_state (resource), ==, EXO_RESOURCE_STATE_READY);
  g_object_get (resource, "opened", &opened, NULL);
  g_assert_true (opened);

  g_assert_true (exo_test_cleanup (resource, &error));
  g_assert_no_error (error);
  g_assert_cmpint (exo_resource_get_state (resource), ==, EXO_RESOURCE_STATE_CLOSED);
  g_object_get (resource, "opened", &opened, NULL);
  g_assert_false (opened);

  managed = g_object_new (exo_plugin_loader_lookup_type (loader, "test-good-managed"),
                          "id", "good-2", NULL);
  g_assert_true (exo_test_initialize (managed, &error));
  g_assert_no_error (error);
  g_assert_true (exo_test_cleanup (managed, &error));
  g_assert_no_error (error);
}

/* The same plugin file loaded by a second loader in the same process gets the
 * same types. */
static void
test_two_loaders (void)
{
  g_autoptr(ExoPluginLoader) a = exo_plugin_loader_new ();
  g_autoptr(ExoPluginLoader) b = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = built_plugin ("good");

  g_assert_nonnull (exo_plugin_loader_load_file (a, path, &error));
  g_assert_no_error (error);
  g_assert_nonnull (exo_plugin_loader_load_file (b, path, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (exo_plugin_loader_lookup_type (a, "test-good"), ==,
                    exo_plugin_loader_lookup_type (b, "test-good"));
}

/* A bare file name is the file in the current folder, never one found on
 * the library search path. */
static void
test_relative_path (void)
{
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *cwd = g_get_current_dir ();
  ExoPluginInfo *info;

  g_assert_cmpint (g_chdir (plugin_dir ()), ==, 0);
  info = exo_plugin_loader_load_file (loader, "good.so", &error);
  g_assert_cmpint (g_chdir (cwd), ==, 0);

  g_assert_no_error (error);
  g_assert_nonnull (info);
  g_assert_cmpstr (exo_plugin_info_get_path (info), ==, "good.so");
  g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-good"), !=, G_TYPE_INVALID);
}

/* Refusals of files */

static void
test_refuse_wrong_abi_major (void)
{
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = built_plugin ("wrong-abi-major");
  g_autofree char *reason =
    g_strdup_printf ("built for plugin ABI %u.0, this exo-node has %u.%u",
                     EXO_PLUGIN_ABI_MAJOR + 1, EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR);

  /* Its register function aborts: it must never run. */
  g_assert_null (exo_plugin_loader_load_file (loader, path, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_ABI, path, reason);
  assert_nothing_loaded (loader);
}

static void
test_refuse_newer_abi_minor (void)
{
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = built_plugin ("newer-abi-minor");
  g_autofree char *reason =
    g_strdup_printf ("built for plugin ABI %u.%u, this exo-node has %u.%u",
                     EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR + 1,
                     EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR);

  g_assert_null (exo_plugin_loader_load_file (loader, path, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_ABI, path, reason);
  assert_nothing_loaded (loader);
}

static void
test_refuse_missing_symbol (void)
{
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = built_plugin ("missing-symbol");

  g_assert_null (exo_plugin_loader_load_file (loader, path, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_MISSING_SYMBOL, path,
                  "no symbol exo_plugin_descriptor");
  assert_nothing_loaded (loader);
}

static void
test_refuse_name_clash (void)
{
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *good = built_plugin ("good");
  g_autofree char *clash = built_plugin ("name-clash");
  g_autofree char *reason = NULL;

  g_assert_nonnull (exo_plugin_loader_load_file (loader, good, &error));
  g_assert_no_error (error);

  g_assert_null (exo_plugin_loader_load_file (loader, clash, &error));
  reason = g_strdup_printf ("a plugin named 'good' is already loaded from %s", good);
  assert_refusal (error, EXO_PLUGIN_ERROR_NAME_CLASH, clash, reason);

  /* Nothing of the refused plugin is reachable; the first one is intact. */
  g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-clash"), ==, G_TYPE_INVALID);
  g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-good"), !=, G_TYPE_INVALID);
  g_assert_cmpstr (exo_plugin_info_get_path (exo_plugin_loader_lookup_plugin_for_type (loader, "test-good")),
                   ==, good);
  g_clear_error (&error);

  /* The same file a second time is refused the same way. */
  g_assert_null (exo_plugin_loader_load_file (loader, good, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_NAME_CLASH, good, "already loaded");
}

static void
test_refuse_not_shared_object (void)
{
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = make_tmp_dir ();
  g_autofree char *path = write_file (dir, "text.so", "this is not an ELF file\n", -1, 0644);
  g_autofree char *missing = g_build_filename (dir, "missing.so", NULL);

  g_assert_null (exo_plugin_loader_load_file (loader, path, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_NOT_SHARED_OBJECT, path,
                  "not a loadable shared object: ");
  g_clear_error (&error);

  g_assert_null (exo_plugin_loader_load_file (loader, dir, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_NOT_SHARED_OBJECT, dir, "is not a regular file");
  g_clear_error (&error);

  g_assert_null (exo_plugin_loader_load_file (loader, missing, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_NOT_FOUND, missing, g_strerror (ENOENT));

  assert_nothing_loaded (loader);
  remove_tree (dir);
}

static void
test_refuse_unsafe_file (void)
{
  g_autofree char *dir = make_tmp_dir ();
  g_autofree char *world = copy_plugin ("good", dir, "world.so", 0666);
  g_autofree char *group = copy_plugin ("good", dir, "group.so", 0620);
  g_autofree char *text = write_file (dir, "text.so", "not ELF\n", -1, 0602);
  g_autofree char *subdir = make_subdir (dir, "open");
  g_autofree char *in_open_dir = copy_plugin ("good", subdir, "good.so", 0644);
  g_autoptr(ExoPluginLoader) loader = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reason = NULL;

  if (geteuid () == 0)
    g_test_message ("running as root: permissions are still checked by mode");

  /* A fresh loader: the copies would clash by name with a loaded good.so,
   * and the mode must be checked before that. */
  loader = exo_plugin_loader_new ();

  g_assert_null (exo_plugin_loader_load_file (loader, world, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_UNSAFE_FILE, world,
                  "is writable by group or others (mode 0666); refusing to load");
  g_clear_error (&error);

  g_assert_null (exo_plugin_loader_load_file (loader, group, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_UNSAFE_FILE, group,
                  "is writable by group or others (mode 0620); refusing to load");
  g_clear_error (&error);

  /* Checked before the file is opened: a text file is refused for its
   * mode, not for not being a shared object. */
  g_assert_null (exo_plugin_loader_load_file (loader, text, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_UNSAFE_FILE, text, "(mode 0602)");
  g_clear_error (&error);

  /* A safe file in a folder others can write to. */
  g_assert_cmpint (g_chmod (subdir, 0777), ==, 0);
  g_assert_null (exo_plugin_loader_load_file (loader, in_open_dir, &error));
  reason = g_strdup_printf ("its folder %s is writable by group or others (mode 0777); "
                            "refusing to load", subdir);
  assert_refusal (error, EXO_PLUGIN_ERROR_UNSAFE_FILE, in_open_dir, reason);
  g_clear_error (&error);

  /* A link in a safe folder to a file in an unsafe one. */
  {
    g_autofree char *link = g_build_filename (dir, "link.so", NULL);
    g_assert_cmpint (symlink (in_open_dir, link), ==, 0);
    g_assert_null (exo_plugin_loader_load_file (loader, link, &error));
    assert_refusal (error, EXO_PLUGIN_ERROR_UNSAFE_FILE, link, "(mode 0777)");
    g_clear_error (&error);
  }

  assert_nothing_loaded (loader);
  remove_tree (dir);
}

static void
test_refuse_bad_type (void)
{
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = built_plugin ("bad-type");

  g_assert_null (exo_plugin_loader_load_file (loader, path, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_INVALID, path,
                  "plugin 'bad-type' registers type name 'test-bad' as TestBadObject, "
                  "which does not derive from ExoResource");
  assert_nothing_loaded (loader);
  g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-bad"), ==, G_TYPE_INVALID);
  g_clear_error (&error);

  /* Refused again (the module stayed in memory: its type is registered). */
  g_assert_null (exo_plugin_loader_load_file (loader, path, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_INVALID, path, "does not derive from ExoResource");
}

/* Built-in plugins: the checks of descriptors and registrations */

static void
register_test_resource (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "test-builtin", EXO_TYPE_TEST_RESOURCE);
}

static void
register_twice (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "test-twice", EXO_TYPE_TEST_RESOURCE);
  exo_plugin_registrar_add_type (registrar, "test-twice", EXO_TYPE_TEST_RESOURCE);
}

static void
register_clashing_type (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "test-other", EXO_TYPE_TEST_RESOURCE);
  exo_plugin_registrar_add_type (registrar, "test-builtin", EXO_TYPE_TEST_RESOURCE);
}

static void
register_abstract (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "test-abstract", EXO_TYPE_RESOURCE);
}

static void
register_invalid_gtype (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "test-invalid", G_TYPE_INVALID);
}

static void
register_bad_type_name (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "two\nlines", EXO_TYPE_TEST_RESOURCE);
}

static void
register_nothing (ExoPluginRegistrar *registrar)
{
}

#define DESCRIPTOR(major, minor, name, func) \
  { major, minor, name, "0.1", "a built-in test plugin", func, { NULL, } }

static void
test_builtin (void)
{
  static const ExoPluginDescriptor ok =
    DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR, "builtin-ok", register_test_resource);
  static const ExoPluginDescriptor empty =
    DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, 0, "builtin-empty", register_nothing);
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) plugins = NULL;
  ExoPluginInfo *info;

  g_assert_true (exo_plugin_loader_register_builtin (loader, &ok, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-builtin"), ==,
                    EXO_TYPE_TEST_RESOURCE);
  info = exo_plugin_loader_lookup_plugin_for_type (loader, "test-builtin");
  g_assert_cmpstr (exo_plugin_info_get_name (info), ==, "builtin-ok");
  g_assert_cmpstr (exo_plugin_info_get_path (info), ==, "");
  g_assert_cmpstr (exo_plugin_info_get_version (info), ==, "0.1");

  /* An older minor is fine, and so is a plugin with no types. */
  g_assert_true (exo_plugin_loader_register_builtin (loader, &empty, &error));
  g_assert_no_error (error);

  g_assert_false (exo_plugin_loader_register_builtin (loader, &ok, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_NAME_CLASH, "built-in plugin 'builtin-ok'",
                  "a plugin named 'builtin-ok' is already built into the program");

  plugins = exo_plugin_loader_list_plugins (loader);
  g_assert_cmpuint (plugins->len, ==, 2);
  g_assert_cmpstr (exo_plugin_info_get_name (g_ptr_array_index (plugins, 0)), ==, "builtin-ok");
  g_assert_cmpstr (exo_plugin_info_get_name (g_ptr_array_index (plugins, 1)), ==, "builtin-empty");
  g_assert_cmpuint (g_strv_length ((GStrv) exo_plugin_info_get_type_names (g_ptr_array_index (plugins, 1))),
                    ==, 0);
}

typedef struct
{
  ExoPluginDescriptor descriptor;
  gint                code;
  const char         *reason;
} BadBuiltin;

static void
test_builtin_refusals (void)
{
  static const ExoPluginDescriptor ok =
    DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR, "builtin-ok", register_test_resource);
  static const BadBuiltin cases[] = {
    { DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, 0, NULL, register_nothing),
      EXO_PLUGIN_ERROR_INVALID, "invalid plugin descriptor: no name" },
    { DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, 0, "", register_nothing),
      EXO_PLUGIN_ERROR_INVALID, "invalid plugin descriptor: no name" },
    { DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, 0, "two\nlines", register_nothing),
      EXO_PLUGIN_ERROR_INVALID, "invalid name 'two\\nlines'" },
    { DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, 0, "no-func", NULL),
      EXO_PLUGIN_ERROR_INVALID, "plugin 'no-func' has no register function" },
    { DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR + 1, 0, "next-major", register_nothing),
      EXO_PLUGIN_ERROR_ABI, "built for plugin ABI" },
    { DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR + 1, "next-minor", register_nothing),
      EXO_PLUGIN_ERROR_ABI, "built for plugin ABI" },
    { DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, 0, "twice", register_twice),
      EXO_PLUGIN_ERROR_INVALID, "plugin 'twice' registers type name 'test-twice' twice" },
    { DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, 0, "clashing-type", register_clashing_type),
      EXO_PLUGIN_ERROR_NAME_CLASH,
      "plugin 'clashing-type' registers type name 'test-builtin', already registered by "
      "built-in plugin 'builtin-ok'" },
    { DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, 0, "abstract", register_abstract),
      EXO_PLUGIN_ERROR_INVALID, "as ExoResource, which is abstract" },
    { DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, 0, "invalid-gtype", register_invalid_gtype),
      EXO_PLUGIN_ERROR_INVALID, "registers type name 'test-invalid' with an invalid GType" },
    { DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, 0, "bad-type-name", register_bad_type_name),
      EXO_PLUGIN_ERROR_INVALID, "registers an invalid type name 'two\\nlines'" },
  };
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;

  g_assert_true (exo_plugin_loader_register_builtin (loader, &ok, &error));
  g_assert_no_error (error);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GPtrArray) plugins = NULL;
      g_auto(GStrv) names = NULL;

      g_test_message ("case %u: %s", i, cases[i].reason);
      g_assert_false (exo_plugin_loader_register_builtin (loader, &cases[i].descriptor, &error));
      assert_refusal (error, cases[i].code, "built-in plugin", cases[i].reason);
      g_clear_error (&error);

      /* A refused plugin leaves nothing behind, not even types it
       * registered before the one that was wrong. */
      plugins = exo_plugin_loader_list_plugins (loader);
      g_assert_cmpuint (plugins->len, ==, 1);
      names = exo_plugin_loader_list_type_names (loader);
      g_assert_cmpstrv (names, ((const char *[]) { "test-builtin", NULL }));
    }
  g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-other"), ==, G_TYPE_INVALID);
  g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-twice"), ==, G_TYPE_INVALID);
}

/* A built-in plugin and a file plugin share the name space. */
static void
test_builtin_and_file_clash (void)
{
  static const ExoPluginDescriptor good_builtin =
    DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, 0, "good", register_test_resource);
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = built_plugin ("good");

  g_assert_true (exo_plugin_loader_register_builtin (loader, &good_builtin, &error));
  g_assert_no_error (error);
  g_assert_null (exo_plugin_loader_load_file (loader, path, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_NAME_CLASH, path,
                  "a plugin named 'good' is already built into the program");
}

/* Scanning folders */

static void
test_load_all_goes_on (void)
{
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GPtrArray) errors = NULL;
  g_autoptr(GPtrArray) plugins = NULL;
  g_autofree char *good = built_plugin ("good");
  static const struct { const char *plugin; gint code; const char *reason; } expected[] = {
    { "bad-type", EXO_PLUGIN_ERROR_INVALID, "does not derive from ExoResource" },
    { "missing-symbol", EXO_PLUGIN_ERROR_MISSING_SYMBOL, "no symbol exo_plugin_descriptor" },
    { "name-clash", EXO_PLUGIN_ERROR_NAME_CLASH, "a plugin named 'good' is already loaded from" },
    { "newer-abi-minor", EXO_PLUGIN_ERROR_ABI, "built for plugin ABI" },
    { "wrong-abi-major", EXO_PLUGIN_ERROR_ABI, "built for plugin ABI" },
  };

  exo_plugin_loader_add_search_dir (loader, plugin_dir ());
  g_assert_cmpuint (exo_plugin_loader_load_all (loader, &errors), ==, 1);

  plugins = exo_plugin_loader_list_plugins (loader);
  g_assert_cmpuint (plugins->len, ==, 1);
  g_assert_cmpstr (exo_plugin_info_get_path (g_ptr_array_index (plugins, 0)), ==, good);

  /* One error per refused file, in the order the files were met (sorted). */
  g_assert_nonnull (errors);
  g_assert_cmpuint (errors->len, ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_autofree char *path = built_plugin (expected[i].plugin);
      assert_refusal (g_ptr_array_index (errors, i), expected[i].code, path, expected[i].reason);
    }
  g_clear_pointer (&errors, g_ptr_array_unref);

  /* A second scan loads nothing new and does not refuse good.so for
   * clashing with itself. */
  g_assert_cmpuint (exo_plugin_loader_load_all (loader, &errors), ==, 0);
  g_assert_cmpuint (errors->len, ==, G_N_ELEMENTS (expected));
  g_clear_pointer (&errors, g_ptr_array_unref);

  /* Errors may be ignored. */
  g_assert_cmpuint (exo_plugin_loader_load_all (loader, NULL), ==, 0);
}

/* The build tree's layout: plugins/<name>/<name>.so.  One level down is
 * searched, two levels are not; files that are not *.so are ignored. */
static void
test_load_all_layout (void)
{
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(GPtrArray) errors = NULL;
  g_autofree char *dir = make_tmp_dir ();
  g_autofree char *sub = make_subdir (dir, "good");
  g_autofree char *good = link_plugin ("good", sub, "good.so");
  g_autofree char *objects = make_subdir (sub, "good.so.p");
  g_autofree char *deep = write_file (objects, "deep.so", "too deep\n", -1, 0644);
  g_autofree char *junk = write_file (dir, "junk.so", "junk\n", -1, 0644);
  g_autofree char *notes = write_file (dir, "notes.txt", "notes\n", -1, 0644);
  g_autofree char *hidden = write_file (dir, ".hidden.so", "hidden\n", -1, 0644);
  g_autofree char *dangling = g_build_filename (dir, "dangling.so", NULL);
  g_autofree char *nowhere = g_build_filename (dir, "nowhere", NULL);
  g_autofree char *absent = g_build_filename (dir, "absent-folder", NULL);

  g_assert_cmpint (symlink (nowhere, dangling), ==, 0);

  exo_plugin_loader_add_search_dir (loader, absent);    /* skipped silently */
  exo_plugin_loader_add_search_dir (loader, dir);
  g_assert_cmpuint (exo_plugin_loader_load_all (loader, &errors), ==, 1);
  g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-good"), !=, G_TYPE_INVALID);
  g_assert_cmpstr (exo_plugin_info_get_path (exo_plugin_loader_lookup_plugin_for_type (loader, "test-good")),
                   ==, good);

  g_assert_cmpuint (errors->len, ==, 2);
  assert_refusal (find_error (errors, dangling), EXO_PLUGIN_ERROR_NOT_FOUND, dangling,
                  "cannot read it");
  assert_refusal (find_error (errors, junk), EXO_PLUGIN_ERROR_NOT_SHARED_OBJECT, junk,
                  "not a loadable shared object");

  remove_tree (dir);
}

/* Earlier folders win: the later file with the same plugin name is refused. */
static void
test_search_order (void)
{
  g_autofree char *dir_a = make_tmp_dir ();
  g_autofree char *dir_b = make_tmp_dir ();
  g_autofree char *clash = link_plugin ("name-clash", dir_a, "a.so");
  g_autofree char *good = link_plugin ("good", dir_b, "b.so");
  const char *const *dirs;

  {
    g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
    g_autoptr(GPtrArray) errors = NULL;
    /* found again in a later folder: skipped with a note, not refused */
    g_autofree char *reason =
      g_strdup_printf ("skipped: the plugin 'good' is already loaded from %s, earlier in the "
                       "search path", clash);

    exo_plugin_loader_add_search_dir (loader, dir_a);
    exo_plugin_loader_add_search_dir (loader, dir_b);
    dirs = exo_plugin_loader_get_search_dirs (loader);
    g_assert_cmpstrv (dirs, ((const char *[]) { dir_a, dir_b, NULL }));

    g_assert_cmpuint (exo_plugin_loader_load_all (loader, &errors), ==, 1);
    g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-clash"), !=, G_TYPE_INVALID);
    g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-good"), ==, G_TYPE_INVALID);
    g_assert_cmpuint (errors->len, ==, 1);
    assert_refusal (g_ptr_array_index (errors, 0), EXO_PLUGIN_ERROR_SHADOWED, good, reason);
  }

  {
    g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
    g_autoptr(GPtrArray) errors = NULL;

    exo_plugin_loader_add_search_dir (loader, dir_b);
    exo_plugin_loader_add_search_dir (loader, dir_a);
    exo_plugin_loader_add_search_dir (loader, dir_b);   /* already there: ignored */
    dirs = exo_plugin_loader_get_search_dirs (loader);
    g_assert_cmpstrv (dirs, ((const char *[]) { dir_b, dir_a, NULL }));

    g_assert_cmpuint (exo_plugin_loader_load_all (loader, &errors), ==, 1);
    g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-good"), !=, G_TYPE_INVALID);
    g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-clash"), ==, G_TYPE_INVALID);
    g_assert_cmpuint (errors->len, ==, 1);
    assert_refusal (g_ptr_array_index (errors, 0), EXO_PLUGIN_ERROR_SHADOWED, clash, "'good'");
  }

  /* two files of one name in the same folder: a real clash, refused */
  {
    g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
    g_autoptr(GPtrArray) errors = NULL;
    g_autofree char *again = copy_plugin ("good", dir_b, "c.so", 0755);

    exo_plugin_loader_add_search_dir (loader, dir_b);
    g_assert_cmpuint (exo_plugin_loader_load_all (loader, &errors), ==, 1);
    g_assert_cmpuint (errors->len, ==, 1);
    assert_refusal (g_ptr_array_index (errors, 0), EXO_PLUGIN_ERROR_NAME_CLASH, again,
                    "a plugin named 'good' is already loaded from");
  }

  remove_tree (dir_a);
  remove_tree (dir_b);
}

/* EXO_PLUGIN_PATH comes after the folders given first (--plugin-dir) and
 * before the installed folder. */
static void
test_plugin_path_env (void)
{
  g_autofree char *dir_a = make_tmp_dir ();
  g_autofree char *dir_b = make_tmp_dir ();
  g_autofree char *dir_c = make_tmp_dir ();
  g_autofree char *clash = link_plugin ("name-clash", dir_a, "clash.so");
  g_autofree char *good = link_plugin ("good", dir_c, "good.so");
  g_autofree char *env = g_strjoin (":", dir_a, "", dir_b, NULL);
  g_autofree char *installed = g_canonicalize_filename (EXO_PLUGINDIR, NULL);
  g_autofree char *saved = g_strdup (g_getenv ("EXO_PLUGIN_PATH"));

  g_setenv ("EXO_PLUGIN_PATH", env, TRUE);

  {
    g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
    g_autoptr(GPtrArray) errors = NULL;

    exo_plugin_loader_add_default_search_dirs (loader);
    g_assert_cmpstrv (exo_plugin_loader_get_search_dirs (loader),
                      ((const char *[]) { dir_a, dir_b, installed, NULL }));

    g_assert_cmpuint (exo_plugin_loader_load_all (loader, &errors), >=, 1);
    g_assert_cmpstr (exo_plugin_info_get_path (exo_plugin_loader_lookup_plugin_for_type (loader, "test-clash")),
                     ==, clash);
  }

  {
    g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
    g_autoptr(GPtrArray) errors = NULL;

    exo_plugin_loader_add_search_dir (loader, dir_c);    /* as --plugin-dir */
    exo_plugin_loader_add_default_search_dirs (loader);
    g_assert_cmpstrv (exo_plugin_loader_get_search_dirs (loader),
                      ((const char *[]) { dir_c, dir_a, dir_b, installed, NULL }));

    exo_plugin_loader_load_all (loader, &errors);
    g_assert_cmpstr (exo_plugin_info_get_path (exo_plugin_loader_lookup_plugin_for_type (loader, "test-good")),
                     ==, good);
    g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-clash"), ==, G_TYPE_INVALID);
    assert_refusal (find_error (errors, clash), EXO_PLUGIN_ERROR_SHADOWED, clash, good);
  }

  if (saved != NULL)
    g_setenv ("EXO_PLUGIN_PATH", saved, TRUE);
  else
    g_unsetenv ("EXO_PLUGIN_PATH");

  remove_tree (dir_a);
  remove_tree (dir_b);
  remove_tree (dir_c);
}

static void
test_relative_search_dir (void)
{
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *expected = g_build_filename (cwd, "some", "plugins", NULL);

  exo_plugin_loader_add_search_dir (loader, "some/./plugins/");
  g_assert_cmpstrv (exo_plugin_loader_get_search_dirs (loader),
                    ((const char *[]) { expected, NULL }));
}

/* Roles: a plugin declares the type it provides for an interface, and other
 * plugins find it with exo_plugin_lookup_role(). */

GType test_role_get_type (void);
GType test_role_a_get_type (void);
GType test_role_b_get_type (void);

typedef struct _TestRole TestRole;
typedef struct { GTypeInterface parent_iface; } TestRoleInterface;
G_DEFINE_INTERFACE (TestRole, test_role, EXO_TYPE_RESOURCE)
static void test_role_default_init (TestRoleInterface *iface) { }

typedef struct { ExoManagedResource parent_instance; } TestRoleA;
typedef struct { ExoManagedResourceClass parent_class; } TestRoleAClass;
static void test_role_a_iface_init (TestRoleInterface *iface) { }
G_DEFINE_TYPE_WITH_CODE (TestRoleA, test_role_a, EXO_TYPE_MANAGED_RESOURCE,
                         G_IMPLEMENT_INTERFACE (test_role_get_type (), test_role_a_iface_init))
static void test_role_a_class_init (TestRoleAClass *klass) { }
static void test_role_a_init (TestRoleA *self) { }

typedef struct { ExoManagedResource parent_instance; } TestRoleB;
typedef struct { ExoManagedResourceClass parent_class; } TestRoleBClass;
static void test_role_b_iface_init (TestRoleInterface *iface) { }
G_DEFINE_TYPE_WITH_CODE (TestRoleB, test_role_b, EXO_TYPE_MANAGED_RESOURCE,
                         G_IMPLEMENT_INTERFACE (test_role_get_type (), test_role_b_iface_init))
static void test_role_b_class_init (TestRoleBClass *klass) { }
static void test_role_b_init (TestRoleB *self) { }

static void
register_role_a (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "test-role-a", test_role_a_get_type ());
  exo_plugin_registrar_add_role (registrar, test_role_get_type (), test_role_a_get_type ());
}

static void
register_role_b (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_type (registrar, "test-role-b", test_role_b_get_type ());
  exo_plugin_registrar_add_role (registrar, test_role_get_type (), test_role_b_get_type ());
}

static void
register_role_not_interface (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_role (registrar, EXO_TYPE_RESOURCE, EXO_TYPE_TEST_RESOURCE);
}

static void
register_role_not_implemented (ExoPluginRegistrar *registrar)
{
  exo_plugin_registrar_add_role (registrar, test_role_get_type (), EXO_TYPE_TEST_RESOURCE);
}

static void
test_roles (void)
{
  static const ExoPluginDescriptor a =
    DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR, "role-a", register_role_a);
  static const ExoPluginDescriptor b =
    DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR, "role-b", register_role_b);
  static const ExoPluginDescriptor not_interface =
    DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR, "role-not-interface",
                register_role_not_interface);
  static const ExoPluginDescriptor not_implemented =
    DESCRIPTOR (EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR, "role-not-implemented",
                register_role_not_implemented);
  g_autoptr(ExoPluginLoader) loader = exo_plugin_loader_new ();
  g_autoptr(ExoPluginLoader) other = exo_plugin_loader_new ();
  g_autoptr(GError) error = NULL;

  /* Nobody provides it yet. */
  g_assert_cmpuint (exo_plugin_lookup_role (test_role_get_type ()), ==, G_TYPE_INVALID);

  g_assert_false (exo_plugin_loader_register_builtin (loader, &not_interface, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_INVALID, "built-in plugin",
                  "provides a role that is not an interface (ExoResource)");
  g_clear_error (&error);
  g_assert_false (exo_plugin_loader_register_builtin (loader, &not_implemented, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_INVALID, "built-in plugin",
                  "provides role TestRole with ExoTestResource, which is not a non-abstract "
                  "ExoResource implementing it");
  g_clear_error (&error);
  g_assert_cmpuint (exo_plugin_lookup_role (test_role_get_type ()), ==, G_TYPE_INVALID);

  g_assert_true (exo_plugin_loader_register_builtin (loader, &a, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (exo_plugin_lookup_role (test_role_get_type ()), ==, test_role_a_get_type ());

  /* Another type for the same role: refused, and nothing of it is left. */
  g_assert_false (exo_plugin_loader_register_builtin (loader, &b, &error));
  assert_refusal (error, EXO_PLUGIN_ERROR_NAME_CLASH, "built-in plugin",
                  "plugin 'role-b' provides role TestRole with TestRoleB, already provided by "
                  "TestRoleA");
  g_clear_error (&error);
  g_assert_cmpuint (exo_plugin_loader_lookup_type (loader, "test-role-b"), ==, G_TYPE_INVALID);
  g_assert_cmpuint (exo_plugin_lookup_role (test_role_get_type ()), ==, test_role_a_get_type ());

  /* The same plugin in a second loader of the process is fine. */
  g_assert_true (exo_plugin_loader_register_builtin (other, &a, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (exo_plugin_lookup_role (test_role_get_type ()), ==, test_role_a_get_type ());
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  /* First: it sets EXO_PLUGIN_PATH, best done before any thread exists. */
  g_test_add_func ("/exo/plugin/search/plugin-path-env", test_plugin_path_env);
  g_test_add_func ("/exo/plugin/load/good", test_load_good);
  g_test_add_func ("/exo/plugin/load/good-type-works", test_good_type_works);
  g_test_add_func ("/exo/plugin/load/two-loaders", test_two_loaders);
  g_test_add_func ("/exo/plugin/load/relative-path", test_relative_path);
  g_test_add_func ("/exo/plugin/refuse/wrong-abi-major", test_refuse_wrong_abi_major);
  g_test_add_func ("/exo/plugin/refuse/newer-abi-minor", test_refuse_newer_abi_minor);
  g_test_add_func ("/exo/plugin/refuse/missing-symbol", test_refuse_missing_symbol);
  g_test_add_func ("/exo/plugin/refuse/name-clash", test_refuse_name_clash);
  g_test_add_func ("/exo/plugin/refuse/not-shared-object", test_refuse_not_shared_object);
  g_test_add_func ("/exo/plugin/refuse/unsafe-file", test_refuse_unsafe_file);
  g_test_add_func ("/exo/plugin/refuse/bad-type", test_refuse_bad_type);
  g_test_add_func ("/exo/plugin/builtin/register", test_builtin);
  g_test_add_func ("/exo/plugin/builtin/refusals", test_builtin_refusals);
  g_test_add_func ("/exo/plugin/builtin/clash-with-file", test_builtin_and_file_clash);
  g_test_add_func ("/exo/plugin/builtin/roles", test_roles);
  g_test_add_func ("/exo/plugin/load-all/goes-on", test_load_all_goes_on);
  g_test_add_func ("/exo/plugin/load-all/layout", test_load_all_layout);
  g_test_add_func ("/exo/plugin/search/order", test_search_order);
  g_test_add_func ("/exo/plugin/search/relative", test_relative_search_dir);

  return g_test_run ();
}
