/* exo-node.c: the node daemon.
 *
 * Reads a JSON config (or the built-in default), loads plugins, builds the
 * resources into a root group, initializes them in dependency order on a
 * GMainLoop, exports everything on D-Bus, and cleans up in reverse
 * dependency order on SIGTERM/SIGINT or org.exo.Node1.Shutdown().
 *
 * A config with cluster resources (discovery, server, node, peers) gets
 * the cluster key before anything starts: node.cluster-key-file, else
 * cluster.key in the state directory, generated there on first start
 * (docs/security.md); the plugins take it from exo_cluster_key_get_default().
 *
 * Under a service manager (Type=notify): READY=1, STATUS= and STOPPING=1
 * (exo-node-readiness.c) and watchdog pings from the main loop
 * (exo-sd-notify.c).  The node id without --node-id or node.id is kept in
 * the state directory (exo-node-state.c).
 *
 * Owns: the command line, the daemon's one Daemon record (daemon_state),
 * the log lines of every resource's transitions,
 * failures and results, the start (config, node id, cluster key, root
 * group, bus, export, initialize) and the shutdown (signals, Shutdown(),
 * the bus name lost, the shutdown timeout) and the teardown after the loop.
 *
 * Rules: one thread runs all of this, on the global default main context:
 * the resources are made there (no thread-default context is pushed), so
 * their signals, the export, the bus callbacks, the timers and the Unix
 * signal sources (g_unix_signal_add(), not signal handlers) all run in
 * g_main_loop_run() on the main thread; Daemon and the watched set are
 * touched only there, with no lock.  Before any thread exists main() sets
 * what is process-wide: the log writer (exo-node-log.c, which GLib calls
 * on whichever thread logs), the sd_notify state (it unsets
 * $NOTIFY_SOCKET) and the default node id.
 * Re-entrancy: begin_shutdown() may come from a signal, Shutdown() or the
 * loss of the bus name, even during the start; shutting_down makes it run
 * once, and a second SIGTERM/SIGINT exits at once.  The root's cleanup
 * callback or the shutdown timer quits the loop; the teardown then
 * unexports before it drops the root, and disconnects every handler it
 * connected (unwatch_all()) before the resources go.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <exo/exo.h>

#include <glib-unix.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "exo-config.h"
#include "exo-daemon-log.h"
#include "exo-node-log.h"
#include "exo-dbus-export.h"
#include "exo-node-readiness.h"
#include "exo-node-resources.h"
#include "exo-node-state.h"
#include "exo-sd-notify.h"

#define DEFAULT_BUS_NAME "org.exo.Node1"
#define DEFAULT_CONFIG_RESOURCE "/org/exo/node/default-config.json"

typedef struct
{
  /* options */
  char              *config_path;
  char             **plugin_dirs;
  char              *bus_name;
  gboolean           use_system;
  gboolean           use_session;
  char              *node_id;
  gboolean           verbose;
  gboolean           version;
  char              *check_config;
  char              *state_dir_option;
  int                shutdown_timeout_s;

  /* running */
  char              *state_dir;
  ExoSdNotify       *notify;        /* NULL without a service manager */
  ExoNodeReadiness  *readiness;     /* NULL without a service manager */
  GMainLoop         *loop;
  ExoPluginLoader   *loader;
  ExoResourceGroup  *root;
  GDBusConnection   *connection;
  ExoDBusExport     *export;
  guint              name_id;
  guint              sigterm_id;
  guint              sigint_id;
  guint              shutdown_timer;
  gint64             started_us;
  int                exit_code;
  gboolean           shutting_down;
  gboolean           name_acquired;
  GHashTable        *watched;      /* ExoResource* set (weak) */
  /* the error that log_state logged with a transition: (resource, its
   * error count then); compared, never dereferenced */
  gconstpointer      logged_resource;
  guint              logged_error_count;
} Daemon;

static Daemon daemon_state;

/* --- logging ----------------------------------------------------------- */

/* Connections are file descriptors: the soft limit (often 1024) goes up to
 * the hard one (LimitNOFILE= in the unit), as systemd advises for programs
 * that do not use select().  The HTTP server copes with the limit anyway
 * (http-connections.c). */
static void
raise_fd_limit (void)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max)
    return;
  limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? 1048576 : limit.rlim_max;
  setrlimit (RLIMIT_NOFILE, &limit);
}

static void
log_state (ExoResource      *resource,
           ExoResourceState  old_state,
           ExoResourceState  new_state,
           gpointer          user_data)
{
  Daemon *d = user_data;
  const GError *error = exo_resource_get_last_error (resource);
  const char *id = exo_resource_get_id (resource);
  const char *state = exo_resource_state_to_string (new_state);

  /* an error that comes with this transition is printed here only for
   * `error` and `degraded`; for other states log_error_count prints it */
  if (new_state == EXO_RESOURCE_STATE_ERROR || new_state == EXO_RESOURCE_STATE_DEGRADED)
    {
      d->logged_resource = resource;
      d->logged_error_count = exo_resource_get_error_count (resource);
      g_log_structured ("exo-node", G_LOG_LEVEL_WARNING,
                        "EXO_RESOURCE_ID", id,
                        "EXO_STATE", state,
                        "MESSAGE", "%s: %s -> %s: %s", id,
                        exo_resource_state_to_string (old_state), state,
                        error != NULL ? error->message : "unknown error");
    }
  else
    g_log_structured ("exo-node", G_LOG_LEVEL_MESSAGE,
                      "EXO_RESOURCE_ID", id,
                      "EXO_STATE", state,
                      "MESSAGE", "%s: %s -> %s", id,
                      exo_resource_state_to_string (old_state), state);
}

/* Every failed attempt and failed health check is in the log, not only the
 * state changes: a hung or flapping backend is visible while it happens.
 * Errors that come with a transition are logged by log_state. */
static void
log_error_count (ExoResource *resource,
                 GParamSpec  *pspec,
                 gpointer     user_data)
{
  Daemon *d = user_data;
  const GError *error = exo_resource_get_last_error (resource);
  const char *id = exo_resource_get_id (resource);
  ExoResourceState state = exo_resource_get_state (resource);

  /* logged with its transition already */
  if (error == NULL || exo_resource_get_error_count (resource) == 0 ||
      (d->logged_resource == (gconstpointer) resource &&
       d->logged_error_count == exo_resource_get_error_count (resource)))
    return;
  if (state == EXO_RESOURCE_STATE_INITIALIZING)
    g_log_structured ("exo-node", G_LOG_LEVEL_WARNING,
                      "EXO_RESOURCE_ID", id,
                      "EXO_STATE", exo_resource_state_to_string (state),
                      "MESSAGE", "%s: initialize attempt failed (%u since the last success): %s",
                      id, exo_resource_get_attempts (resource), error->message);
  else if (exo_resource_state_is_usable (state))
    g_log_structured ("exo-node", G_LOG_LEVEL_WARNING,
                      "EXO_RESOURCE_ID", id,
                      "EXO_STATE", exo_resource_state_to_string (state),
                      "MESSAGE", "%s: health check failed (%s): %s", id,
                      exo_resource_state_to_string (state), error->message);
  else
    /* recorded while in error, closing or closed (a failure reported
     * again, a cleanup that failed or stopped waiting) */
    g_log_structured ("exo-node", G_LOG_LEVEL_WARNING,
                      "EXO_RESOURCE_ID", id,
                      "EXO_STATE", exo_resource_state_to_string (state),
                      "MESSAGE", "%s: error (%s): %s", id,
                      exo_resource_state_to_string (state), error->message);
}

static void
log_result (ExoResource *resource,
            GParamSpec  *pspec,
            gpointer     user_data)
{
  ExoResourceResult result = exo_resource_get_result (resource);
  const char *id = exo_resource_get_id (resource);

  if (result == EXO_RESOURCE_RESULT_START_LIMIT_HIT)
    g_log_structured ("exo-node", G_LOG_LEVEL_WARNING,
                      "EXO_RESOURCE_ID", id,
                      "EXO_RESULT", "start-limit-hit",
                      "MESSAGE", "%s: given up: restart limit hit; it stays in error until "
                      "restarted by hand (exoctl restart %s)", id, id);
  else if (result == EXO_RESOURCE_RESULT_UNHEALTHY)
    g_log_structured ("exo-node", G_LOG_LEVEL_WARNING,
                      "EXO_RESOURCE_ID", id,
                      "EXO_RESULT", "unhealthy",
                      "MESSAGE", "%s: degraded for too long: restarting it", id);
}

static void watch_resource (Daemon *d, ExoResource *resource);

static void
member_added_cb (ExoResourceGroup *group,
                 ExoResource      *member,
                 gpointer          user_data)
{
  watch_resource (user_data, member);
}

static void
watched_gone (gpointer data,
              GObject *where_the_object_was)
{
  Daemon *d = data;

  if (d->watched != NULL)
    g_hash_table_remove (d->watched, where_the_object_was);
}

static void
watch_resource (Daemon      *d,
                ExoResource *resource)
{
  if (g_hash_table_contains (d->watched, resource))
    return;
  g_hash_table_add (d->watched, resource);
  g_object_weak_ref (G_OBJECT (resource), watched_gone, d);

  g_signal_connect (resource, "state-changed", G_CALLBACK (log_state), d);
  g_signal_connect (resource, "notify::error-count", G_CALLBACK (log_error_count), d);
  g_signal_connect (resource, "notify::result", G_CALLBACK (log_result), d);
  if (EXO_IS_RESOURCE_GROUP (resource))
    {
      g_autoptr(GPtrArray) members = exo_resource_group_get_members (EXO_RESOURCE_GROUP (resource));

      g_signal_connect (resource, "member-added", G_CALLBACK (member_added_cb), d);
      for (guint i = 0; i < members->len; i++)
        watch_resource (d, g_ptr_array_index (members, i));
    }
}

static void
unwatch_all (Daemon *d)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, d->watched);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      g_signal_handlers_disconnect_by_data (key, d);
      g_object_weak_unref (G_OBJECT (key), watched_gone, d);
    }
  g_hash_table_remove_all (d->watched);
}

/* --- shutdown ---------------------------------------------------------- */

static gboolean
shutdown_timeout_cb (gpointer user_data)
{
  Daemon *d = user_data;

  d->shutdown_timer = 0;
  g_warning ("cleanup did not finish within %d s; exiting anyway", d->shutdown_timeout_s);
  d->exit_code = 1;
  g_main_loop_quit (d->loop);
  return G_SOURCE_REMOVE;
}

static void
root_cleanup_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Daemon *d = user_data;
  g_autoptr(GError) error = NULL;

  if (!exo_resource_cleanup_finish (EXO_RESOURCE (source), result, &error))
    g_warning ("cleanup finished with an error: %s", error->message);
  else
    g_message ("all resources cleaned up; exiting");

  g_clear_handle_id (&d->shutdown_timer, g_source_remove);
  g_main_loop_quit (d->loop);
}

static void
begin_shutdown (Daemon     *d,
                const char *why)
{
  if (d->shutting_down)
    return;
  d->shutting_down = TRUE;

  g_message ("%s: cleaning up in reverse dependency order", why);
  if (d->readiness != NULL)
    exo_node_readiness_set_stopping (d->readiness);
  if (d->shutdown_timeout_s > 0)
    d->shutdown_timer = g_timeout_add_seconds (d->shutdown_timeout_s, shutdown_timeout_cb, d);
  exo_resource_cleanup_async (EXO_RESOURCE (d->root), NULL, root_cleanup_cb, d);
}

static gboolean
signal_cb (gpointer user_data)
{
  Daemon *d = &daemon_state;
  const char *name = user_data;

  if (d->shutting_down)
    {
      g_warning ("second %s: forcing exit without finishing cleanup", name);
      fflush (stderr);
      _exit (1);
    }
  begin_shutdown (d, name);
  return G_SOURCE_CONTINUE;
}

static void
shutdown_requested_cb (ExoDBusExport *export,
                       gpointer       user_data)
{
  begin_shutdown (user_data, "Shutdown() called on D-Bus");
}

/* --- bus ----------------------------------------------------------------- */

static void
name_acquired_cb (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  Daemon *d = user_data;

  d->name_acquired = TRUE;
  g_message ("owns %s on the %s bus", name, d->use_system ? "system" : "session");
  if (d->readiness != NULL)
    exo_node_readiness_set_bus_ready (d->readiness);
}

static void
name_lost_cb (GDBusConnection *connection,
              const char      *name,
              gpointer         user_data)
{
  Daemon *d = user_data;

  if (connection == NULL)
    g_warning ("lost the connection to the %s bus", d->use_system ? "system" : "session");
  else if (!d->name_acquired)
    {
      g_autoptr(GVariant) owner = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus",
                                                               "/org/freedesktop/DBus",
                                                               "org.freedesktop.DBus", "GetNameOwner",
                                                               g_variant_new ("(s)", name),
                                                               G_VARIANT_TYPE ("(s)"),
                                                               G_DBUS_CALL_FLAGS_NONE, 2000,
                                                               NULL, NULL);
      if (owner != NULL)
        g_warning ("cannot own %s: another exo-node owns it (use --bus-name to run a second node)",
                   name);
      else
        g_warning ("cannot own %s: the bus refused it (on the system bus, the policy in "
                   "org.exo.Node1.conf lets only root own it)", name);
    }
  else
    g_warning ("lost the bus name %s", name);

  d->exit_code = 1;
  if (!d->shutting_down)
    begin_shutdown (d, "bus name lost");
}

/* --- start --------------------------------------------------------------- */

static void
root_initialize_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  Daemon *d = user_data;
  g_autoptr(GError) error = NULL;
  double ms = (g_get_monotonic_time () - d->started_us) / 1000.0;

  if (exo_resource_initialize_finish (EXO_RESOURCE (source), result, &error))
    {
      /* the root group finishes its start even when a member failed (it
       * goes on with the others): say what is up, not just "ready" */
      g_autoptr(GPtrArray) members = exo_resource_group_get_members (EXO_RESOURCE_GROUP (source));
      g_autoptr(GString) not_ready = g_string_new (NULL);
      guint n_ready = 0;

      for (guint i = 0; i < members->len; i++)
        {
          ExoResource *member = g_ptr_array_index (members, i);

          if (exo_resource_get_state (member) == EXO_RESOURCE_STATE_READY)
            n_ready++;
          else
            g_string_append_printf (not_ready, "%s%s (%s)", not_ready->len > 0 ? ", " : "",
                                    exo_resource_get_id (member),
                                    exo_resource_state_to_string (exo_resource_get_state (member)));
        }
      g_log_structured ("exo-node", G_LOG_LEVEL_MESSAGE,
                        "EXO_RESOURCE_ID", exo_resource_get_id (EXO_RESOURCE (source)),
                        "EXO_STATE", n_ready == members->len ? "ready" : "degraded",
                        "MESSAGE", "node %s: %u of %u resource%s ready in %.1f ms%s%s",
                        n_ready == members->len ? "ready" : "started",
                        n_ready, members->len, members->len == 1 ? "" : "s", ms,
                        not_ready->len > 0 ? "; not ready: " : "", not_ready->str);
    }
  else if (!d->shutting_down)
    g_warning ("node failed to start: %s (the daemon keeps running; inspect with exoctl)",
               error->message);
}

static GType
lookup_type (const char *type_name,
             gpointer    user_data)
{
  return exo_plugin_loader_lookup_type (EXO_PLUGIN_LOADER (user_data), type_name);
}

static ExoConfig *
load_config (Daemon      *d,
             const char  *path,
             GError     **error)
{
  if (path != NULL)
    return exo_config_load_file (path, lookup_type, d->loader, error);

  {
    /* The static library's constructor may be dropped by the linker:
     * look the config up in our resource bundle directly. */
    g_autoptr(GBytes) bytes = g_resource_lookup_data (exo_node_get_resource (),
                                                      DEFAULT_CONFIG_RESOURCE,
                                                       G_RESOURCE_LOOKUP_FLAGS_NONE, error);
    gsize len;
    const char *data;

    if (bytes == NULL)
      return NULL;
    data = g_bytes_get_data (bytes, &len);
    return exo_config_load_data (data, (gssize) len, "<built-in default config>",
                                 lookup_type, d->loader, error);
  }
}

static void
load_plugins (Daemon *d)
{
  g_autoptr(GPtrArray) errors = NULL;
  guint n;

  d->loader = exo_plugin_loader_new ();
  for (guint i = 0; d->plugin_dirs != NULL && d->plugin_dirs[i] != NULL; i++)
    exo_plugin_loader_add_search_dir (d->loader, d->plugin_dirs[i]);
  exo_plugin_loader_add_default_search_dirs (d->loader);

  n = exo_plugin_loader_load_all (d->loader, &errors);
  for (guint i = 0; errors != NULL && i < errors->len; i++)
    {
      GError *e = g_ptr_array_index (errors, i);

      /* a build tree's plugins before the installed ones: not a fault */
      if (g_error_matches (e, EXO_PLUGIN_ERROR, EXO_PLUGIN_ERROR_SHADOWED))
        g_debug ("plugin %s", e->message);
      else
        g_warning ("plugin refused: %s", e->message);
    }
  g_info ("%u plugins loaded", n);
}

/* The node resource (the `node` plugin) owns the cluster topology: mirror it
 * on org.exo.Node1.Topology. */
static void
topology_changed_cb (GObject    *node,
                     const char *json,
                     gpointer    user_data)
{
  Daemon *d = user_data;

  if (d->export != NULL && json != NULL)
    exo_dbus_export_set_topology (d->export, json);
}

static void
follow_topology (Daemon *d)
{
  g_autoptr(GPtrArray) members = exo_resource_group_get_members (d->root);

  for (guint i = 0; i < members->len; i++)
    {
      GObject *member = g_ptr_array_index (members, i);
      g_autofree char *json = NULL;

      if (!EXO_IS_NODE_ROLE (member) || g_signal_lookup ("topology-changed", G_OBJECT_TYPE (member)) == 0)
        continue;
      /* disconnected with the other handlers of @d in unwatch_all () */
      g_signal_connect (member, "topology-changed", G_CALLBACK (topology_changed_cb), d);
      if (g_object_class_find_property (G_OBJECT_GET_CLASS (member), "topology") != NULL)
        g_object_get (member, "topology", &json, NULL);
      if (json != NULL && json[0] != '\0')
        exo_dbus_export_set_topology (d->export, json);
    }
}

/* --- the cluster key ------------------------------------------------------ */

/* Whether @root holds resources that speak to other nodes. */
static gboolean
uses_cluster (ExoResourceGroup *root)
{
  g_autoptr(GPtrArray) members = exo_resource_group_get_members (root);

  for (guint i = 0; i < members->len; i++)
    {
      GObject *member = g_ptr_array_index (members, i);

      if (EXO_IS_DISCOVERY (member) || EXO_IS_SERVER (member) || EXO_IS_NODE_ROLE (member) ||
          EXO_IS_PEER_HANDLE (member))
        return TRUE;
    }
  return FALSE;
}

/* node.cluster-key-file (relative to the config file's folder), else
 * cluster.key in the state directory. */
static char *
cluster_key_path (const char *config_path,
                  ExoConfig  *config,
                  const char *state_dir)
{
  const char *configured = exo_config_get_cluster_key_file (config);

  if (configured == NULL)
    return g_build_filename (state_dir, "cluster.key", NULL);
  return exo_node_config_relative_path (configured, config_path);
}

static gboolean
setup_cluster_key (Daemon      *d,
                   ExoConfig   *config,
                   GError     **error)
{
  g_autoptr(ExoClusterKey) key = NULL;
  g_autofree char *path = NULL;
  gboolean generated = FALSE;

  if (exo_config_get_cluster_key_file (config) == NULL && !uses_cluster (d->root))
    return TRUE;
  path = cluster_key_path (d->config_path, config, d->state_dir);
  key = exo_cluster_key_load_or_generate (path, &generated, error);
  if (key == NULL)
    return FALSE;
  if (generated)
    g_message ("generated a new cluster key in %s (fingerprint %s). Nodes that share this key "
               "form one cluster: to add a node, copy this file to it (keep it mode 0600) at the "
               "same path, or name it with node.cluster-key-file. Anyone with the key can join "
               "(docs/security.md)", path, exo_cluster_key_get_fingerprint (key));
  else
    g_message ("cluster key %s (fingerprint %s, %u key%s)", path,
               exo_cluster_key_get_fingerprint (key), exo_cluster_key_get_n_keys (key),
               exo_cluster_key_get_n_keys (key) == 1 ? "" : "s");
  exo_cluster_key_set_default (key);
  return TRUE;
}

/* A start that cannot go on: stderr, and STATUS= for `systemctl status`. */
static int
refuse_to_start (Daemon     *d,
                 const char *why)
{
  g_autofree char *status = g_strdup_printf ("refusing to start: %s", why);

  fprintf (stderr, "exo-node: %s\n", status);
  exo_sd_notify_send (d->notify, NULL, status);
  return 1;
}

static int
check_config (Daemon     *d,
              const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;
  g_autoptr(ExoResourceGroup) root = NULL;
  g_auto(GStrv) ids = NULL;
  const char * const *warnings;
  guint n_warnings;

  config = load_config (d, path, &error);
  if (config != NULL)
    {
      /* Build into a throw-away group: this also checks the settings
       * against the types and the dependency graph. */
      root = exo_resource_group_new ("root");   /* the same id as when running */
      if (!exo_config_build (config, root, &error))
        g_clear_pointer (&config, exo_config_unref);
    }
  if (config != NULL &&
      (exo_config_get_cluster_key_file (config) != NULL || uses_cluster (root)))
    {
      /* An existing key file must be usable; a missing one is made at start. */
      g_autofree char *state_dir = exo_node_state_dir_resolve (d->state_dir_option,
                                                               exo_config_get_state_dir (config),
                                                               path);
      g_autofree char *key_path = cluster_key_path (path, config, state_dir);
      g_autoptr(ExoClusterKey) key = NULL;

      if (g_file_test (key_path, G_FILE_TEST_EXISTS) &&
          (key = exo_cluster_key_load (key_path, &error)) == NULL)
        g_clear_pointer (&config, exo_config_unref);
    }
  if (config == NULL)
    {
      fprintf (stderr, "exo-node: %s\n", error->message);
      return 1;
    }

  /* valid, but with keys in a deprecated spelling */
  warnings = exo_config_get_warnings (config);
  for (n_warnings = 0; warnings[n_warnings] != NULL; n_warnings++)
    fprintf (stderr, "exo-node: warning: %s\n", warnings[n_warnings]);

  ids = exo_config_get_resource_ids (config);
  if (n_warnings > 0)
    printf ("%s: configuration is valid (%u resource%s), with %u warning%s\n", path,
            g_strv_length (ids), g_strv_length (ids) == 1 ? "" : "s",
            n_warnings, n_warnings == 1 ? "" : "s");
  else
    printf ("%s: configuration is valid (%u resource%s)\n", path, g_strv_length (ids),
            g_strv_length (ids) == 1 ? "" : "s");
  return 0;
}

int
main (int argc, char **argv)
{
  Daemon *d = &daemon_state;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExoConfig) config = NULL;
  g_autofree char *node_id = NULL;
  const GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &d->config_path,
      "Read the configuration from FILE (default: the built-in config)", "FILE" },
    { "plugin-dir", 'p', 0, G_OPTION_ARG_FILENAME_ARRAY, &d->plugin_dirs,
      "Look for plugins in DIR first (repeatable)", "DIR" },
    { "bus-name", 0, 0, G_OPTION_ARG_STRING, &d->bus_name,
      "Own NAME on the bus (default " DEFAULT_BUS_NAME ")", "NAME" },
    { "session", 0, 0, G_OPTION_ARG_NONE, &d->use_session, "Use the session bus (default)", NULL },
    { "system", 0, 0, G_OPTION_ARG_NONE, &d->use_system, "Use the system bus", NULL },
    { "node-id", 0, 0, G_OPTION_ARG_STRING, &d->node_id,
      "Use ID as the node id (overrides the config)", "ID" },
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &d->state_dir_option,
      "Keep the node id and the cluster key in DIR (default: $STATE_DIRECTORY, "
      "node.state-dir, ~/.local/state/exo-node)", "DIR" },
    { "shutdown-timeout", 0, 0, G_OPTION_ARG_INT, &d->shutdown_timeout_s,
      "Give cleanup at most SEC seconds on shutdown (default 30)", "SEC" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &d->verbose, "Log debug messages", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &d->version, "Print the version and exit", NULL },
    { "check-config", 0, 0, G_OPTION_ARG_FILENAME, &d->check_config,
      "Validate FILE (with the plugins) and exit", "FILE" },
    { NULL }
  };

  setlocale (LC_ALL, "");
  d->shutdown_timeout_s = 30;

  context = g_option_context_new ("- run an exo node");
  g_option_context_set_summary (context,
    "Runs the resources of the config on a main loop and exports them on D-Bus.\n"
    "Inspect it with exoctl, busctl --user or gdbus introspect.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      fprintf (stderr, "exo-node: %s (see exo-node --help)\n", error->message);
      return 2;
    }
  if (argc > 1)
    {
      fprintf (stderr, "exo-node: unexpected argument '%s' (see exo-node --help)\n", argv[1]);
      return 2;
    }
  if (d->use_system && d->use_session)
    {
      fprintf (stderr, "exo-node: --session and --system exclude each other\n");
      return 2;
    }
  if (d->version)
    {
      printf ("exo-node %s (plugin ABI %d.%d)\n", EXO_VERSION_STRING,
              EXO_PLUGIN_ABI_MAJOR, EXO_PLUGIN_ABI_MINOR);
      return 0;
    }
  if (d->shutdown_timeout_s < 0)
    {
      fprintf (stderr, "exo-node: --shutdown-timeout must be 0 (no limit) or more seconds\n");
      return 2;
    }
  if (d->bus_name != NULL && !g_dbus_is_name (d->bus_name))
    {
      fprintf (stderr, "exo-node: '%s' is not a valid bus name\n", d->bus_name);
      return 2;
    }
  if (d->node_id != NULL && !exo_node_id_is_valid (d->node_id, &error))
    {
      fprintf (stderr, "exo-node: --node-id: %s\n", error->message);
      return 2;
    }

  /* --verbose: debug and info messages are written (exo-node-log.c) */
  if (d->verbose)
    g_log_set_debug_enabled (TRUE);
  exo_node_log_install ();
  /* before any thread exists: it unsets $NOTIFY_SOCKET and the watchdog's
   * variables */
  d->notify = exo_sd_notify_new_from_environment ();
  raise_fd_limit ();

  load_plugins (d);

  if (d->check_config != NULL)
    {
      int rc = check_config (d, d->check_config);
      g_clear_object (&d->loader);
      return rc;
    }

  config = load_config (d, d->config_path, &error);
  if (config == NULL)
    return refuse_to_start (d, error->message);
  /* keys in a deprecated spelling, once each */
  for (const char * const *w = exo_config_get_warnings (config); *w != NULL; w++)
    g_warning ("%s", *w);

  d->state_dir = exo_node_state_dir_resolve (d->state_dir_option, exo_config_get_state_dir (config),
                                             d->config_path);
  if (d->node_id != NULL)
    node_id = g_strdup (d->node_id);
  else if (g_strcmp0 (exo_config_get_node_id (config), "auto") != 0
           && exo_config_get_node_id (config) != NULL)
    node_id = g_strdup (exo_config_get_node_id (config));
  else
    node_id = exo_node_id_load_or_create (d->state_dir);

  /* The resources not given a node id (discovery, node, the peer requests'
   * X-Exo-Node-Id) take this one: set before any thread exists and before
   * the resources are made. */
  exo_node_id_set_default (node_id);

  d->root = exo_resource_group_new ("root");
  exo_resource_set_display_name (EXO_RESOURCE (d->root), "node root group");
  /* Nothing supervises the root: it never escalates (and so never stops
   * supervising everything because one backend is away).  Each resource's
   * own restart limit (retry.restart-burst) is what gives up, on flapping. */
  exo_resource_group_set_restart_burst (d->root, 0);
  /* A backend that is down when the node starts does not stop the node:
   * the node comes up degraded and the resource is retried with backoff. */
  exo_resource_group_set_keep_going (d->root, TRUE);
  if (!exo_config_build (config, d->root, &error) || !setup_cluster_key (d, config, &error))
    return refuse_to_start (d, error->message);

  d->connection = g_bus_get_sync (d->use_system ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION,
                                  NULL, &error);
  if (d->connection == NULL)
    {
      g_autofree char *why = g_strdup_printf ("cannot connect to the %s bus: %s",
                                              d->use_system ? "system" : "session", error->message);

      return refuse_to_start (d, why);
    }
  g_dbus_connection_set_exit_on_close (d->connection, FALSE);

  d->loop = g_main_loop_new (NULL, FALSE);
  d->watched = g_hash_table_new (NULL, NULL);
  watch_resource (d, EXO_RESOURCE (d->root));

  d->export = exo_dbus_export_new (d->connection, node_id, d->root);
  {
    g_autoptr(GPtrArray) plugins = exo_plugin_loader_list_plugins (d->loader);
    exo_dbus_export_set_plugins (d->export, plugins);
  }
  g_signal_connect (d->export, "shutdown-requested", G_CALLBACK (shutdown_requested_cb), d);
  follow_topology (d);
  if (d->notify != NULL)
    d->readiness = exo_node_readiness_new (d->notify, d->root, exo_config_get_ready_when (config));

  d->name_id = g_bus_own_name_on_connection (d->connection,
                                             d->bus_name ? d->bus_name : DEFAULT_BUS_NAME,
                                             G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                                             name_acquired_cb, name_lost_cb, d, NULL);

  d->sigterm_id = g_unix_signal_add (SIGTERM, signal_cb, (gpointer) "SIGTERM");
  d->sigint_id = g_unix_signal_add (SIGINT, signal_cb, (gpointer) "SIGINT");

  g_message ("exo-node %s starting: node id %s, %s, state directory %s", EXO_VERSION_STRING,
             node_id, d->config_path ? d->config_path : "built-in default config", d->state_dir);
  if (exo_sd_notify_start_watchdog (d->notify))
    g_info ("watchdog: pinging the service manager every %" G_GUINT64_FORMAT " ms",
            MAX (exo_sd_notify_get_watchdog_usec (d->notify) / 2000, EXO_SD_NOTIFY_MIN_PING_MS));
  d->started_us = g_get_monotonic_time ();
  exo_node_log_start_flush ();
  exo_resource_initialize_async (EXO_RESOURCE (d->root), NULL, root_initialize_cb, d);

  g_main_loop_run (d->loop);

  exo_sd_notify_stop_watchdog (d->notify);
  g_clear_pointer (&d->readiness, exo_node_readiness_free);

  g_clear_handle_id (&d->sigterm_id, g_source_remove);
  g_clear_handle_id (&d->sigint_id, g_source_remove);
  g_clear_handle_id (&d->shutdown_timer, g_source_remove);
  if (d->name_id != 0)
    g_bus_unown_name (d->name_id);
  exo_dbus_export_unexport (d->export);
  g_clear_object (&d->export);
  unwatch_all (d);
  g_clear_pointer (&d->watched, g_hash_table_unref);
  if (d->connection != NULL)
    g_dbus_connection_flush_sync (d->connection, NULL, NULL);
  g_clear_object (&d->connection);
  g_clear_object (&d->root);
  exo_cluster_key_set_default (NULL);
  g_clear_object (&d->loader);
  g_clear_pointer (&d->loop, g_main_loop_unref);
  g_clear_pointer (&d->plugin_dirs, g_strfreev);
  g_clear_pointer (&d->config_path, g_free);
  g_clear_pointer (&d->bus_name, g_free);
  g_clear_pointer (&d->node_id, g_free);
  g_clear_pointer (&d->check_config, g_free);
  g_clear_pointer (&d->state_dir_option, g_free);
  g_clear_pointer (&d->state_dir, g_free);
  g_clear_pointer (&d->notify, exo_sd_notify_free);
  exo_node_log_finish ();

  return d->exit_code;
}
