/* test-config-errors.c: config errors with their code and exact message —
 * from the files of tests/configs/ (file and line) and from data given
 * inline (source name "inline.json").
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Part of test-config (main() in test-config.c).  One case per table entry,
 * named after its file or entry.  One thread.
 */
#include "config-fixture.h"

/* ------------------------------------------------------------------------ */
/* Errors in files: code and the exact message, with file and line          */

typedef struct {
  const char     *file;
  ExoConfigError  code;
  const char     *message;   /* after "PATH:" */
} ErrorCase;

static const ErrorCase error_cases[] = {
  { "syntax-error.json", EXO_CONFIG_ERROR_PARSE,
    "4: syntax error: trailing comma (column 35)" },
  { "missing-comma.json", EXO_CONFIG_ERROR_PARSE,
    "4: syntax error: missing ',' (column 15)" },
  { "unknown-top-level-key.json", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "3: resource: unknown key; did you mean 'resources'?" },
  { "missing-resources.json", EXO_CONFIG_ERROR_INVALID,
    "2: resources: required key is missing" },
  { "missing-id.json", EXO_CONFIG_ERROR_INVALID,
    "4: resources[1].id: required key is missing" },
  { "duplicate-id.json", EXO_CONFIG_ERROR_DUPLICATE_ID,
    "7: resources[2].id: duplicate id 'a' (resources[0], line 3, has it too)" },
  { "bad-id.json", EXO_CONFIG_ERROR_INVALID,
    "4: resources[0].id: the id 'my server' contains ' '; only letters, digits, '_', '.' and '-' are allowed" },
  { "unknown-type.json", EXO_CONFIG_ERROR_UNKNOWN_TYPE,
    "5: resources[0].type: unknown resource type 'http-sever'" },
  { "unknown-setting.json", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "8: resources[0].settings.prot: type 'kinds' has no setting 'prot'; did you mean 'port'?" },
  { "unknown-resource-key.json", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "5: resources[1].depend-on: unknown key; did you mean 'depends-on'?" },
  { "wrong-value-type.json", EXO_CONFIG_ERROR_WRONG_TYPE,
    "8: resources[1].settings.port: expected an integer, got a string" },
  { "out-of-range.json", EXO_CONFIG_ERROR_INVALID,
    "7: resources[0].settings.port: value 70000 is out of range (0 to 65535)" },
  { "bad-enum.json", EXO_CONFIG_ERROR_INVALID,
    "7: resources[0].settings.level: unknown value 'extreme' (expected one of: low, normal, high)" },
  { "rejected-by-pspec.json", EXO_CONFIG_ERROR_INVALID,
    "3: resources[0].settings.token: value not accepted by property 'token' of type TestKinds" },
  { "unknown-dependency.json", EXO_CONFIG_ERROR_MISSING_DEPENDENCY,
    "9: resources[1].depends-on[1]: resource 'discovery' depends on 'engine', which is not defined" },
  { "self-dependency.json", EXO_CONFIG_ERROR_CYCLE,
    "4: resources[0].depends-on[0]: resource 'a' depends on itself" },
  { "cycle.json", EXO_CONFIG_ERROR_CYCLE,
    "9: resources[1].depends-on[1]: dependency cycle: a -> b -> c -> a" },
  { "retry-not-managed.json", EXO_CONFIG_ERROR_INVALID,
    "6: resources[0].retry: 'retry' applies only to managed resources (ExoManagedResource), "
    "and type 'kinds' is not one" },
  { "bad-jitter.json", EXO_CONFIG_ERROR_INVALID,
    "8: resources[0].retry.jitter: unknown value 'partial' (expected one of: full, equal, decorrelated, none)" },
  { "bad-multiplier.json", EXO_CONFIG_ERROR_INVALID,
    "6: resources[0].retry.multiplier: must be a number >= 1 (got 0.5)" },
  { "huge-restart-burst.json", EXO_CONFIG_ERROR_INVALID,
    "6: resources[0].retry: restart-burst must be at most 10000 (got 4294967295)" },
  { "bad-retry-combination.json", EXO_CONFIG_ERROR_INVALID,
    "6: resources[0].retry: max-delay-ms (100) must not be less than initial-delay-ms (5000)" },
  { "duplicate-key.json", EXO_CONFIG_ERROR_PARSE,
    "5: resources[0].settings.port: key given twice in the same object" },
  { "group-key-not-group.json", EXO_CONFIG_ERROR_INVALID,
    "4: resources[0].strategy: 'strategy' applies only to resource groups (ExoResourceGroup), "
    "and type 'test' is not one" },
  { "not-a-setting.json", EXO_CONFIG_ERROR_INVALID,
    "4: resources[0].settings.init-timeout: 'init-timeout' is not a setting; "
    "use the resource key 'init-timeout-ms'" },
};

static void
test_error_file (gconstpointer data)
{
  const ErrorCase *c = data;
  g_autofree char *path = config_path (c->file);
  g_autofree char *expected = g_strdup_printf ("%s:%s", path, c->message);
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;

  config = exo_config_load_file (path, test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, (int) c->code);
  g_assert_cmpstr (error->message, ==, expected);
}

/* ------------------------------------------------------------------------ */
/* Errors in data given inline (source name "inline.json")                  */

typedef struct {
  const char     *name;
  const char     *json;
  ExoConfigError  code;
  const char     *message;   /* the whole message */
} InlineCase;

static const InlineCase inline_cases[] = {
  { "empty", "  \n", EXO_CONFIG_ERROR_PARSE,
    "inline.json:1: syntax error: the file holds no JSON value" },
  { "top-level-array", "[\n]\n", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:1: expected an object at the top level, got an array" },
  { "two-top-level-values", "{ \"resources\": [] }\n{ \"resources\": [] }\n", EXO_CONFIG_ERROR_PARSE,
    "inline.json:2: syntax error: unexpected text after the top-level value (column 1)" },
  { "stray-bracket", "{ \"resources\": [] }\n\n ]\n", EXO_CONFIG_ERROR_PARSE,
    "inline.json:3: syntax error: unexpected text after the top-level value (column 2)" },
  { "comment-after", "{ \"resources\": [] } // done\n", EXO_CONFIG_ERROR_PARSE,
    "inline.json:1: syntax error: unexpected text after the top-level value (column 21)" },
  { "not-utf8", "{ \"resources\": [], \"x\": \"\xff\" }", EXO_CONFIG_ERROR_PARSE,
    "inline.json:1: syntax error: invalid UTF-8 in a string (column 26)" },
  { "bareword", "{\n  \"resources\": tru\n}\n", EXO_CONFIG_ERROR_PARSE,
    "inline.json:2: syntax error: unexpected word 'tru', expected a value (column 16)" },
  { "resources-not-array", "{\n  \"resources\": {\n  }\n}\n", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources: expected an array, got an object" },
  { "resource-not-object", "{ \"resources\": [\n  \"a\"\n] }\n", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0]: expected an object, got a string" },
  { "empty-id", "{ \"resources\": [\n  { \"id\": \"\", \"type\": \"kinds\" }\n] }\n", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].id: the id is empty" },
  { "long-id", "{ \"resources\": [ { \"id\": "
    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"type\": \"kinds\" } ] }",
    EXO_CONFIG_ERROR_INVALID,
    "inline.json:1: resources[0].id: the id is longer than the limit of 64 characters" },
  { "id-not-string", "{ \"resources\": [ { \"id\": 7, \"type\": \"kinds\" } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:1: resources[0].id: expected a string, got an integer" },
  { "missing-type", "{ \"resources\": [\n  { \"id\": \"a\" }\n] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].type: required key is missing" },
  { "abstract-type", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"abstract\" } ] }",
    EXO_CONFIG_ERROR_UNKNOWN_TYPE,
    "inline.json:1: resources[0].type: resource type 'abstract' (ExoResource) is not an instantiable ExoResource" },
  { "not-a-resource", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"plain-object\" } ] }",
    EXO_CONFIG_ERROR_UNKNOWN_TYPE,
    "inline.json:1: resources[0].type: resource type 'plain-object' (GObject) is not an instantiable ExoResource" },
  { "bad-node-id", "{\n  \"node\": { \"id\": \"a/b\" },\n  \"resources\": []\n}", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: node.id: the id 'a/b' contains '/'; only letters, digits, '_', '.' and '-' are allowed" },
  { "unknown-node-key", "{\n  \"node\": { \"idd\": \"x\" },\n  \"resources\": []\n}", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "inline.json:2: node.idd: unknown key; did you mean 'id'?" },
  { "empty-key-file", "{\n  \"node\": { \"cluster-key-file\": \"\" },\n  \"resources\": []\n}",
    EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: node.cluster-key-file: expected the path of a file (1 to 4096 bytes)" },
  { "key-file-not-string", "{\n  \"node\": { \"cluster-key-file\": 1 },\n  \"resources\": []\n}",
    EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: node.cluster-key-file: expected a string, got an integer" },
  { "unknown-key-no-suggestion", "{ \"resources\": [], \"zzzzzz\": 1 }", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "inline.json:1: zzzzzz: unknown key (expected one of: node, resources)" },
  { "unknown-retry-key", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"test\",\n"
    "  \"retry\": { \"max-retry\": 1 } } ] }", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "inline.json:2: resources[0].retry.max-retry: unknown key; did you mean 'max-retries'?" },
  { "negative-timeout", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"test\",\n"
    "  \"init-timeout-ms\": -1 } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].init-timeout-ms: value -1 is out of range (0 to 4294967295)" },
  { "health-not-managed", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"health-check-interval-ms\": 100 } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].health-check-interval-ms: 'health-check-interval-ms' applies only to "
    "managed resources (ExoManagedResource), and type 'kinds' is not one" },
  { "bad-strategy", "{ \"resources\": [ { \"id\": \"g\", \"type\": \"group\",\n"
    "  \"strategy\": \"all-for-one\" } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].strategy: unknown value 'all-for-one' "
    "(expected one of: one-for-one, rest-for-one, one-for-all)" },
  { "read-only-setting", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"computed\": 1 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.computed: property 'computed' of type 'kinds' is read-only" },
  { "base-property-as-setting", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"id\": \"b\" } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.id: 'id' is not a setting; use the resource key 'id'" },
  { "underscore-setting", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"la_bel\": \"x\" } } ] }", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "inline.json:2: resources[0].settings.la_bel: type 'kinds' has no setting 'la_bel'; did you mean 'label'?" },
  { "unknown-setting-no-suggestion", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"test\",\n"
    "  \"settings\": { \"colour\": \"red\" } } ] }", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "inline.json:2: resources[0].settings.colour: type 'test' has no setting 'colour' "
    "(expected one of: auto-recover)" },
  { "double-for-int", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"count\": 1.5 } } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].settings.count: expected an integer, got a number" },
  { "negative-for-uint", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"port\": -1 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.port: value -1 is out of range (0 to 65535)" },
  { "below-int-minimum", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"count\": -11 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.count: value -11 is out of range (-10 to 100)" },
  { "int-wraps", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"count\": 4294967296 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.count: value 4294967296 is out of range (-10 to 100)" },
  { "uint-wraps", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"port\": 4294967376 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.port: value 4294967376 is out of range (0 to 65535)" },
  { "char-range", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"tiny\": 6 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.tiny: value 6 is out of range (-5 to 5)" },
  { "char-wraps", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"tiny\": 256 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.tiny: value 256 is out of range (-5 to 5)" },
  { "uchar-minimum", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"byte\": 0 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.byte: value 0 is out of range (1 to 200)" },
  { "uchar-negative", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"byte\": -56 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.byte: value -56 is out of range (1 to 200)" },
  { "long-range", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"wide\": -1000001 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.wide: value -1000001 is out of range (-1000000 to 1000000)" },
  { "ulong-negative", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"uwide\": -1 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.uwide: value -1 is out of range (0 to 1000000)" },
  { "uint64-negative", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"huge\": -1 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.huge: value -1 is out of range (10 to 18446744073709551615)" },
  { "uint64-minimum", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"huge\": 9 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.huge: value 9 is out of range (10 to 18446744073709551615)" },
  { "double-out-of-range", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"ratio\": 1.5 } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.ratio: value 1.5 is out of range (0 to 1)" },
  { "bool-as-string", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"enabled\": \"yes\" } } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].settings.enabled: expected a boolean, got a string" },
  { "null-string", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"label\": null } } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].settings.label: expected a string, got null" },
  { "strv-element", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"tags\": [\"a\",\n  2] } } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:3: resources[0].settings.tags[1]: expected a string, got an integer" },
  { "strv-not-array", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"tags\": \"a\" } } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].settings.tags: expected an array of strings, got a string" },
  { "bad-flag", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": { \"features\": \"alpha|delta\" } } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].settings.features: unknown flag 'delta' (expected some of: alpha, beta, gamma)" },
  { "settings-not-object", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"settings\": [] } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].settings: expected an object, got an array" },
  { "depends-on-not-array", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"depends-on\": \"b\" }, { \"id\": \"b\", \"type\": \"kinds\" } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].depends-on: expected an array, got a string" },
  { "depends-on-twice", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"depends-on\": [\"b\", \"b\"] }, { \"id\": \"b\", \"type\": \"kinds\" } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].depends-on[1]: 'b' is listed twice" },
  { "two-cycle-later", "{ \"resources\": [\n"
    "  { \"id\": \"a\", \"type\": \"kinds\", \"depends-on\": [\"b\"] },\n"
    "  { \"id\": \"b\", \"type\": \"kinds\", \"depends-on\": [\"c\"] },\n"
    "  { \"id\": \"c\", \"type\": \"kinds\", \"depends-on\": [\"b\"] } ] }", EXO_CONFIG_ERROR_CYCLE,
    "inline.json:3: resources[1].depends-on[0]: dependency cycle: b -> c -> b" },
  { "restart-burst-outside-retry", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"test\",\n"
    "  \"restart-burst\": 3 } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].restart-burst: 'restart-burst' applies only to resource groups "
    "(ExoResourceGroup), and type 'test' is not one; did you mean it inside 'retry'?" },
  { "both-spellings", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\", \"init-timeout-ms\": 1,\n"
    "  \"init-timeout\": 1 } ] }", EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].init-timeout: 'init-timeout' and 'init-timeout-ms' are both given, "
    "but they are one key (the deprecated and the new spelling); keep only 'init-timeout-ms'" },
  { "both-spellings-retry", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"test\",\n"
    "  \"retry\": { \"restart-interval\": 10,\n    \"restart-interval-ms\": 10 } } ] }",
    EXO_CONFIG_ERROR_INVALID,
    "inline.json:2: resources[0].retry.restart-interval: 'restart-interval' and 'restart-interval-ms' "
    "are both given, but they are one key (the deprecated and the new spelling); "
    "keep only 'restart-interval-ms'" },
  { "old-spelling-not-in-retry", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"test\",\n"
    "  \"retry\": { \"init-timeout\": 10 } } ] }", EXO_CONFIG_ERROR_UNKNOWN_KEY,
    "inline.json:2: resources[0].retry.init-timeout: unknown key (expected one of: max-retries, "
    "initial-delay-ms, max-delay-ms, multiplier, jitter, restart-burst, restart-interval-ms)" },
  { "display-name-not-string", "{ \"resources\": [ { \"id\": \"a\", \"type\": \"kinds\",\n"
    "  \"display-name\": false } ] }", EXO_CONFIG_ERROR_WRONG_TYPE,
    "inline.json:2: resources[0].display-name: expected a string, got a boolean" },
};

static void
test_error_inline (gconstpointer data)
{
  const InlineCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;

  config = exo_config_load_data (c->json, -1, "inline.json", test_lookup, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, EXO_CONFIG_ERROR, (int) c->code);
  g_assert_cmpstr (error->message, ==, c->message);
}

/* --- registration ---------------------------------------------------- */

void
test_config_register_errors (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (error_cases); i++)
    {
      g_autofree char *name = g_strndup (error_cases[i].file, strlen (error_cases[i].file) - strlen (".json"));
      g_autofree char *test_path = g_strdup_printf ("/exo/config/error/file/%s", name);

      g_test_add_data_func (test_path, &error_cases[i], test_error_file);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (inline_cases); i++)
    {
      g_autofree char *test_path = g_strdup_printf ("/exo/config/error/inline/%s", inline_cases[i].name);

      g_test_add_data_func (test_path, &inline_cases[i], test_error_inline);
    }
}
