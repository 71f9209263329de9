/* exo-config.h: the node's JSON config, checked before anything starts.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <exo/exo.h>

G_BEGIN_DECLS

/**
 * EXO_CONFIG_ERROR:
 *
 * The error domain of config files.  Every message has the form
 * `FILE:LINE: KEY: what is wrong`, where KEY is a path such as
 * `resources[2].settings.port` or `node.id`; errors about the file as a
 * whole (it cannot be read, it is too large) have the form `FILE: what`,
 * and JSON syntax errors `FILE:LINE: syntax error: what (column N)` with
 * json-glib's position.
 *
 * LINE is the line of the key's value: the line a string, number or
 * boolean is on, or the line where an object or array opens (normally the
 * line of its key).  A missing key is reported at the line where the
 * object that lacks it opens.
 */
#define EXO_CONFIG_ERROR (exo_config_error_quark ())

/**
 * ExoConfigError:
 * @EXO_CONFIG_ERROR_PARSE: not valid JSON (or a key given twice in one object)
 * @EXO_CONFIG_ERROR_INVALID: a value that is not allowed (empty id, out of
 *   range, unknown enum nick, a key that does not apply to the type, a key
 *   given in its deprecated and its new spelling, …)
 * @EXO_CONFIG_ERROR_UNKNOWN_TYPE: a resource type the lookup does not know
 * @EXO_CONFIG_ERROR_UNKNOWN_KEY: a key the schema or the type does not have
 * @EXO_CONFIG_ERROR_WRONG_TYPE: a JSON value of the wrong kind
 * @EXO_CONFIG_ERROR_MISSING_DEPENDENCY: `depends-on` names an id that is not defined
 * @EXO_CONFIG_ERROR_CYCLE: the dependencies form a cycle (or a self-dependency)
 * @EXO_CONFIG_ERROR_DUPLICATE_ID: two resources with one id, or an id that
 *   is already a member of the group the config is built into
 * @EXO_CONFIG_ERROR_IO: the file cannot be read
 * @EXO_CONFIG_ERROR_LIMIT: the file exceeds a size limit (bytes, resources,
 *   nesting depth); the message says which
 */
typedef enum {
  EXO_CONFIG_ERROR_PARSE,
  EXO_CONFIG_ERROR_INVALID,
  EXO_CONFIG_ERROR_UNKNOWN_TYPE,
  EXO_CONFIG_ERROR_UNKNOWN_KEY,
  EXO_CONFIG_ERROR_WRONG_TYPE,
  EXO_CONFIG_ERROR_MISSING_DEPENDENCY,
  EXO_CONFIG_ERROR_CYCLE,
  EXO_CONFIG_ERROR_DUPLICATE_ID,
  EXO_CONFIG_ERROR_IO,
  EXO_CONFIG_ERROR_LIMIT,
} ExoConfigError;

/* Limits on what a config may contain (enforced, named in the error). */
#define EXO_CONFIG_MAX_FILE_SIZE  (1024 * 1024)  /* bytes */
#define EXO_CONFIG_MAX_RESOURCES  10000
#define EXO_CONFIG_MAX_DEPTH      32             /* nesting of objects and arrays */
#define EXO_CONFIG_MAX_ID_LENGTH  64

GQuark exo_config_error_quark (void);

/**
 * ExoConfigTypeLookup:
 * @type_name: a resource type name from the config, e.g. `"udp-discovery"`
 * @user_data: the data given to the load function
 *
 * Returns: the #GType registered for @type_name (a non-abstract type
 *   deriving #ExoResource), or %G_TYPE_INVALID when the name is unknown
 */
typedef GType (*ExoConfigTypeLookup) (const char *type_name,
                                      gpointer    user_data);

/**
 * ExoConfig:
 *
 * A config file, parsed and checked against the resource types: once
 * loaded, only exo_config_build() remains and it creates every resource.
 * Reference counted; not thread-safe apart from ref/unref.
 */
typedef struct _ExoConfig ExoConfig;

ExoConfig  *exo_config_ref                (ExoConfig            *self);
void        exo_config_unref              (ExoConfig            *self);

ExoConfig  *exo_config_load_file          (const char           *path,
                                           ExoConfigTypeLookup   lookup,
                                           gpointer              data,
                                           GError              **error);
ExoConfig  *exo_config_load_data          (const char           *data,
                                           gssize                len,
                                           const char           *source_name,
                                           ExoConfigTypeLookup   lookup,
                                           gpointer              lookup_data,
                                           GError              **error);

const char *exo_config_get_source_name    (ExoConfig            *self);
const char *exo_config_get_node_id        (ExoConfig            *self);
const char *exo_config_get_node_name      (ExoConfig            *self);
const char *exo_config_get_cluster_key_file (ExoConfig          *self);
const char *exo_config_get_state_dir      (ExoConfig            *self);
const char * const *
            exo_config_get_ready_when     (ExoConfig            *self);
char      **exo_config_get_resource_types (ExoConfig            *self);
char      **exo_config_get_resource_ids   (ExoConfig            *self);
const char * const *
            exo_config_get_warnings       (ExoConfig            *self);

gboolean    exo_config_build              (ExoConfig            *self,
                                           ExoResourceGroup     *root,
                                           GError              **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExoConfig, exo_config_unref)

G_END_DECLS
