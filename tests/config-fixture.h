/* config-fixture.h: what the parts of test-config share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program is test-config.c (main(), good configs, deprecated
 * spellings, the project's default config) and test-config-{errors,
 * limits}.c; each part registers its cases through the
 * test_config_register_*() function below.  config-fixture.c has TestKinds,
 * a resource type with a property of each kind a config can set, and the
 * type lookup and file helpers the cases load configs with.  One thread:
 * configs are loaded and built in the test's thread.
 */
#pragma once

#include "exo-test-util.h"
#include "exo-config.h"

G_BEGIN_DECLS

typedef enum {
  TEST_LEVEL_LOW,
  TEST_LEVEL_NORMAL,
  TEST_LEVEL_HIGH,
} TestLevel;

typedef enum {
  TEST_FEATURE_ALPHA = 1 << 0,
  TEST_FEATURE_BETA  = 1 << 1,
  TEST_FEATURE_GAMMA = 1 << 2,
} TestFeatures;

#define TEST_TYPE_KINDS (test_kinds_get_type ())
G_DECLARE_FINAL_TYPE (TestKinds, test_kinds, TEST, KINDS, ExoResource)

struct _TestKinds
{
  ExoResource  parent_instance;

  int          count;
  guint        port;
  gint64       big;
  double       ratio;
  gboolean     enabled;
  char        *label;
  TestLevel    level;
  char       **tags;
  TestFeatures features;
  char        *mode;            /* construct-only */
  char        *mode_at_constructed;
  char        *token;           /* lower-case letters only (the GParamSpec's cset) */
  gint8        tiny;            /* the other integer types, with odd ranges */
  guint8       byte;
  glong        wide;
  gulong       uwide;
  guint64      huge;
};

GType test_lookup (const char *type_name,
                   gpointer    user_data);
char *config_path (const char *name);
ExoConfig *load_good (void);
int strv_index (char       **strv,
                const char  *str);
void assert_strv (char       **actual,
                  const char  *expected);

/* The cases of each part of the program; main() calls these in order. */
void test_config_register_errors (void);
void test_config_register_limits (void);

G_END_DECLS
