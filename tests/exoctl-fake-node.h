/* exoctl-fake-node.h: what the exoctl tests (test-exoctl.c,
 * test-exoctl-scripts.c) share: a fake exo-node on a private bus and
 * running the real exoctl against it.
 *
 * The fake node exports the D-Bus API of docs/design.md §4 (data/org.exo.Node1.xml
 * through gdbus-codegen) on a private dbus-daemon started with GTestDBus:
 * an ObjectManager at /org/exo/Node1, org.exo.Node1 there, and the
 * resources of fake_specs with org.exo.Resource1 (+ ResourceGroup1 /
 * ResourcePool1).  Its methods: "server" refuses (AccessDenied),
 * "discovery" fails, the others succeed; every call is recorded in
 * fake.calls.
 *
 * Rules: one fake per test program (the global `fake`), served from the
 * global-default main context of the test's main thread, which the run_*
 * helpers iterate while exoctl runs; GDBus' worker thread only counts
 * GetManagedObjects calls (atomically).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "exo-dbus-generated.h"

#define BUS_NAME    "org.exo.Node1"
#define NODE_PATH   "/org/exo/Node1"

typedef struct
{
  const char *id;
  const char *type;
  const char *display_name;
  const char *depends_on[4];
  const char *members[8];     /* non-empty: a group */
  gboolean    pool;
} FakeSpec;

#define N_FAKE 8
extern const FakeSpec fake_specs[N_FAKE];

typedef struct
{
  GTestDBus                 *bus;
  GDBusConnection           *connection;
  GDBusObjectManagerServer  *manager;
  ExoDBusNode1              *node;
  GHashTable                *resources;     /* id -> ExoDBusResource1 (owned) */
  gint                       gmo_calls;     /* GetManagedObjects received (atomic) */
  guint                      filter_id;
  GPtrArray                 *calls;         /* "Method id" strings */
} Fake;

extern Fake fake;
extern const char *exoctl_path;              /* set by main () */

void fake_up        (void);
void fake_down      (void);
/* Every resource ready, healthy, without error and result; no calls. */
void fake_reset     (void);
void fake_set_state (const char *id,
                     const char *state,
                     const char *error);

/* One run of exoctl. */
typedef struct
{
  GSubprocess *proc;
  gboolean     done;
  char        *out;           /* "" when stdout was not a pipe */
  char        *err;
  int          status;
  guint        timeout_id;
} Run;

void run_free (Run *run);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Run, run_free)

/* Starts exoctl with @args (NULL-terminated); @env: NAME=VALUE pairs to set
 * (a NULL value unsets).  COLUMNS, EXO_PAGER, PAGER and LESS are unset
 * unless @env sets them.  run_start_fd: stdout goes to @stdout_fd (taken),
 * not to a pipe. */
Run *run_start    (const char * const *env,
                   const char * const *args);
Run *run_start_fd (const char * const *env,
                   const char * const *args,
                   int                 stdout_fd);
/* Any program, its stdout and stderr collected as for exoctl. */
Run *run_spawn    (GSubprocessLauncher *launcher,
                   const char * const  *argv);
/* Waits for its end (bounded: killed after 60 s) and returns the status. */
int  run_wait     (Run                *run);
Run *run_envv     (const char * const *env,
                   const char * const *args);

#define EXOCTL(...)          run_envv (NULL, (const char * const []) { __VA_ARGS__, NULL })

JsonNode   *parse_json       (const char *text);
JsonObject *find_by_id       (JsonArray  *array,
                              const char *id);
gboolean    strv_array_equal (JsonArray  *array,
                              const char * const *expected);
/* The table row of @id: the line that starts with "@id ". */
char       *row_of           (const char *out,
                              const char *id);
/* "a b   c" -> ["a", "b", "c"] */
GStrv       words            (const char *line);

/* Bash completion: whether bash-completion is installed, and the replies
 * of exoctl's completion (data/completion/exoctl, or $EXOCTL_COMPLETION)
 * for the command line @line ("exoctl status e"; a final blank completes
 * a new word), one per line in Run.out; exoctl is the one built. */
gboolean completion_available (void);
Run     *run_completion       (const char *line);
