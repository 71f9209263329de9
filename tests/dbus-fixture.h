/* dbus-fixture.h: what the parts of test-dbus share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The program is test-dbus.c (main(), objects and the node object) and
 * test-dbus-{signals,methods,auth}.c; each part registers its cases through
 * the test_dbus_register_*() function below, most with ADD (a Fixture set up
 * on the private bus main() starts).  dbus-fixture.c has the Fixture, the
 * Recorder of what the client saw, the waits and the client calls.  One
 * thread: the export and the client share the thread-default main context,
 * so every call is asynchronous and the helpers spin that context.
 */
#pragma once

#include "exo-test-util.h"
#include "exo-dbus-export.h"

G_BEGIN_DECLS

#define WAIT_MS (30000 * exo_test_slow_factor ())

#define RESOURCE_PATH(id) EXO_DBUS_RESOURCE_PATH_PREFIX id

typedef struct
{
  GPtrArray  *added;             /* paths (InterfacesAdded) */
  GPtrArray  *removed;           /* paths (InterfacesRemoved) */
  GPtrArray  *state_changes;     /* "path old>new:message" */
  GHashTable *pc_counts;         /* "path interface" -> count of PropertiesChanged */
  GHashTable *pc_last;           /* "path interface" -> GVariant a{sv} of the last one */
  guint       ids[3];
} Recorder;

typedef struct
{
  char             *address;
  GDBusConnection  *server;
  GDBusConnection  *client;
  const char       *server_name;
  ExoResourceGroup *root;
  ExoResourceGroup *workers;
  ExoTestResource  *db;
  ExoTestResource  *api;
  ExoTestResource  *w1;
  ExoTestResource  *w2;
  ExoResourcePool  *pool;
  ExoDBusExport    *export;
  Recorder          rec;
  guint             n_shutdown_requests;
} Fixture;

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

extern GTestDBus *test_bus;

guint pc_count (Fixture    *f,
                const char *path,
                const char *iface);
GVariant *pc_last (Fixture    *f,
                   const char *path,
                   const char *iface);
gboolean strv_has (GPtrArray  *array,
                   const char *what);
void wait_for_string (GPtrArray  *array,
                      const char *what);
void wait_for_count (GPtrArray *array,
                     guint      n);
GVariant *call_full (GDBusConnection     *client,
                     const char          *dest,
                     const char          *path,
                     const char          *iface,
                     const char          *method,
                     GVariant            *params,
                     const GVariantType  *reply_type,
                     GError             **error);
GVariant *call (Fixture            *f,
                const char         *path,
                const char         *iface,
                const char         *method,
                GVariant           *params,
                const GVariantType *reply_type,
                GError            **error);
GVariant *get_property (Fixture    *f,
                        const char *path,
                        const char *iface,
                        const char *name);
char *get_string (Fixture    *f,
                  const char *path,
                  const char *iface,
                  const char *name);
void barrier (Fixture *f);
GVariant *get_managed_objects (Fixture *f);
void assert_dbus_error (const GError *error,
                        const char   *name);
void add_member (ExoResourceGroup   *group,
                 gpointer            resource,
                 const char * const *deps);
void fixture_set_up_on (Fixture    *f,
                        const char *address);
void fixture_set_up (Fixture       *f,
                     gconstpointer  data);
void fixture_tear_down (Fixture       *f,
                        gconstpointer  data);
const char *path_of (Fixture *f,
                     gpointer resource);

/* The cases of each part of the program; main() calls these in order. */
void test_dbus_register_signals (void);
void test_dbus_register_methods (void);
void test_dbus_register_auth (void);

G_END_DECLS
