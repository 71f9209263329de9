/* exo-config-private.h: what the files of the config loader share.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Only the exo-config*.c files include this header; it is not installed
 * and src/daemon has no introspection data.  exo-config.c says which file
 * owns what.
 *
 * Rules: a Loader lives for one exo_config_load_data() call, on one
 * thread.  ResourceSpecs and Settings belong to their ExoConfig and, like
 * it, are not changed after the load.
 */
#pragma once

#include "exo-config.h"

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* ------------------------------------------------------------------------ */
/* What a loaded config holds                                               */

/* The supervision keys of managed resources (exo-config-schema.c). */
#define N_SUPERVISION_KEYS 4

typedef struct {
  const char *key;        /* a resource key, and the ExoManagedResource property */
  guint       minimum;
} SupervisionKey;

extern const SupervisionKey _exo_config_supervision_keys[N_SUPERVISION_KEYS];

typedef struct {
  char   *name;
  guint   line;           /* where the value is */
  GValue  value;
} Setting;

enum {
  RETRY_MAX_RETRIES   = 1 << 0,
  RETRY_INITIAL_DELAY = 1 << 1,
  RETRY_MAX_DELAY     = 1 << 2,
  RETRY_MULTIPLIER    = 1 << 3,
  RETRY_JITTER        = 1 << 4,
  RETRY_BURST         = 1 << 5,
  RETRY_INTERVAL      = 1 << 6,
};

typedef struct {
  guint                  index;
  guint                  line;           /* where the resource's object opens */
  guint                  id_line;
  char                  *id;
  char                  *type_name;
  GType                  type;
  char                  *display_name;
  gboolean               has_init_timeout;
  guint                  init_timeout_ms;
  gboolean               has_health_interval;
  guint                  health_interval_ms;
  guint                  supervision_mask; /* (1 << i): key i given */
  guint                  supervision[N_SUPERVISION_KEYS]; /* values, by index */
  guint                  retry_mask;     /* RETRY_* keys given */
  guint                  retry_line;
  ExoRetryPolicy         retry;
  gboolean               has_strategy;
  ExoSupervisionStrategy strategy;
  gboolean               has_group_burst;
  guint                  group_burst;
  gboolean               has_group_interval;
  guint                  group_interval_ms;
  GPtrArray             *settings;       /* Setting, in file order */
  GPtrArray             *depends_on;     /* char *, NULL-terminated */
  GArray                *depends_lines;  /* guint, one per dependency */
} ResourceSpec;

struct _ExoConfig {
  gatomicrefcount  ref_count;
  char            *source;
  char            *node_id;
  char            *node_name;
  char            *cluster_key_file;
  char            *state_dir;
  char           **ready_when;  /* NULL: all */
  guint            resources_line;
  GPtrArray       *resources;   /* ResourceSpec, in file order */
  guint           *order;       /* indices into resources, dependencies first */
  char           **warnings;    /* old spellings used (exo-config-schema.c) */
};

/* ------------------------------------------------------------------------ */
/* One load in progress                                                     */

typedef struct {
  const char          *source;
  ExoConfigTypeLookup  lookup;
  gpointer             lookup_data;

  GHashTable          *node_lines;       /* JsonNode * -> line of the value */
  GHashTable          *container_lines;  /* JsonObject * / JsonArray * -> line it opens */
  GHashTable          *member_counts;    /* JsonObject * -> members parsed */
  GArray              *open_lines;       /* stack of lines of open containers */
  guint                n_top_levels;
  guint                second_top_level_line;
  guint                last_line;
  JsonObject          *dup_object;       /* first key given twice, if any */
  char                *dup_name;
  guint                dup_line;

  ExoConfig           *config;
  GHashTable          *ids;              /* id -> ResourceSpec *, borrowed */
  JsonNode            *ready_when;       /* node.ready-when, checked last */
  GPtrArray           *deprecations;     /* old spellings used (exo-config-schema.c) */
} Loader;

/* ------------------------------------------------------------------------ */
/* exo-config.c                                                             */

void          _exo_config_setting_free       (gpointer            data);
ResourceSpec *_exo_config_resource_spec_new  (guint               index,
                                              guint               line);
void          _exo_config_resource_spec_free (gpointer            data);
void          _exo_config_apply_retry        (const ResourceSpec *spec,
                                              ExoRetryPolicy     *policy);

static inline guint
resource_spec_n_depends (const ResourceSpec *spec)
{
  return spec->depends_on->len - 1;
}

static inline const char *
resource_spec_depends (const ResourceSpec *spec,
                       guint               i)
{
  return g_ptr_array_index (spec->depends_on, i);
}

/* ------------------------------------------------------------------------ */
/* exo-config-reader.c                                                      */

void        _exo_config_set_key_error    (GError             **error,
                                          ExoConfigError       code,
                                          const char          *source,
                                          guint                line,
                                          const char          *key,
                                          const char          *format,
                                          ...) G_GNUC_PRINTF (6, 7);
char       *_exo_config_describe_unknown (const char          *key,
                                          const char * const  *candidates,
                                          gsize                n_candidates,
                                          const char          *what);

gboolean    _exo_config_read_file        (const char          *path,
                                          char               **contents,
                                          gsize               *length,
                                          GError             **error);
JsonNode   *_exo_config_parse            (Loader              *loader,
                                          JsonParser          *parser,
                                          const char          *data,
                                          gsize                size,
                                          GError             **error);
void        _exo_config_loader_clear     (Loader              *loader);

guint       _exo_config_line_of          (Loader              *loader,
                                          JsonNode            *node);
guint       _exo_config_line_of_object   (Loader              *loader,
                                          JsonObject          *object);

const char *_exo_config_json_kind        (JsonNode            *node);
gboolean    _exo_config_holds            (JsonNode            *node,
                                          GType                value_type);
gboolean    _exo_config_wrong_type       (Loader              *loader,
                                          JsonNode            *node,
                                          const char          *key,
                                          const char          *expected,
                                          GError             **error);
gboolean    _exo_config_read_string      (Loader              *loader,
                                          JsonNode            *node,
                                          const char          *key,
                                          const char         **out,
                                          GError             **error);
gboolean    _exo_config_read_uint        (Loader              *loader,
                                          JsonNode            *node,
                                          const char          *key,
                                          guint               *out,
                                          GError             **error);
gboolean    _exo_config_read_object      (Loader              *loader,
                                          JsonNode            *node,
                                          const char          *key,
                                          JsonObject         **out,
                                          GError             **error);
gboolean    _exo_config_read_array       (Loader              *loader,
                                          JsonNode            *node,
                                          const char          *key,
                                          JsonArray          **out,
                                          GError             **error);
gboolean    _exo_config_check_keys       (Loader              *loader,
                                          JsonObject          *object,
                                          const char          *prefix,
                                          const char * const  *known,
                                          gsize                n_known,
                                          GError             **error);
gboolean    _exo_config_missing_key      (Loader              *loader,
                                          JsonObject          *object,
                                          const char          *key,
                                          GError             **error);

/* ------------------------------------------------------------------------ */
/* exo-config-value.c                                                       */

gboolean    _exo_config_load_settings    (Loader              *loader,
                                          ResourceSpec        *spec,
                                          JsonNode            *node,
                                          const char          *prefix,
                                          GError             **error);

/* ------------------------------------------------------------------------ */
/* exo-config-schema.c                                                      */

const char *_exo_config_dedicated_key    (GParamSpec          *pspec);
GPtrArray  *_exo_config_list_settings    (GObjectClass        *klass);
gboolean    _exo_config_load_document    (Loader              *loader,
                                          JsonNode            *root,
                                          GError             **error);

G_END_DECLS
