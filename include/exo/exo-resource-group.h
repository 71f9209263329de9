/* exo-resource-group.h: named resources with dependencies, supervised.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(EXO_INSIDE) && !defined(EXO_COMPILATION)
# error "Only <exo/exo.h> can be included directly."
#endif

#include <exo/exo-resource.h>

G_BEGIN_DECLS

/**
 * ExoSupervisionStrategy:
 * @EXO_SUPERVISION_ONE_FOR_ONE: restart only the member that failed (the default)
 * @EXO_SUPERVISION_REST_FOR_ONE: restart the member that failed and every
 *   member that depends on it, directly or not
 * @EXO_SUPERVISION_ONE_FOR_ALL: restart every member of the group
 *
 * What an #ExoResourceGroup restarts when a member that was ready fails, in
 * the manner of Erlang/OTP supervisors.  The nicks (`"one-for-one"`, …) are
 * the spelling used in configs and on the command line.
 */
typedef enum {
  EXO_SUPERVISION_ONE_FOR_ONE,
  EXO_SUPERVISION_REST_FOR_ONE,
  EXO_SUPERVISION_ONE_FOR_ALL,
} ExoSupervisionStrategy;

#define EXO_TYPE_SUPERVISION_STRATEGY (exo_supervision_strategy_get_type ())

EXO_AVAILABLE_IN_ALL
GType        exo_supervision_strategy_get_type    (void) G_GNUC_CONST;
EXO_AVAILABLE_IN_ALL
const char  *exo_supervision_strategy_to_string   (ExoSupervisionStrategy  strategy);
EXO_AVAILABLE_IN_ALL
gboolean     exo_supervision_strategy_from_string (const char             *str,
                                                   ExoSupervisionStrategy *out_strategy);

#define EXO_TYPE_RESOURCE_GROUP (exo_resource_group_get_type ())

EXO_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (ExoResourceGroup, exo_resource_group, EXO, RESOURCE_GROUP, ExoResource)

/**
 * ExoResourceGroupClass:
 * @member_added: class closure of #ExoResourceGroup::member-added
 * @member_removed: class closure of #ExoResourceGroup::member-removed
 *
 * The class of resource groups.  Subclasses (the daemon's root group, a
 * node's group) usually add members in their constructor or when peers
 * appear and chain up for everything else.
 */
struct _ExoResourceGroupClass
{
  ExoResourceClass parent_class;

  void (*member_added)   (ExoResourceGroup *self,
                          ExoResource      *member);
  void (*member_removed) (ExoResourceGroup *self,
                          ExoResource      *member);

  /*< private >*/
  gpointer padding[8];
};

EXO_AVAILABLE_IN_ALL
ExoResourceGroup       *exo_resource_group_new                  (const char         *id);

EXO_AVAILABLE_IN_ALL
gboolean                exo_resource_group_add                  (ExoResourceGroup   *self,
                                                                 ExoResource        *resource,
                                                                 const char * const *depends_on,
                                                                 GError            **error);
EXO_AVAILABLE_IN_ALL
gboolean                exo_resource_group_add_dependency       (ExoResourceGroup   *self,
                                                                 const char         *member,
                                                                 const char         *depends_on,
                                                                 GError            **error);
EXO_AVAILABLE_IN_ALL
void                    exo_resource_group_remove_async         (ExoResourceGroup   *self,
                                                                 const char         *member,
                                                                 gboolean            force,
                                                                 GCancellable       *cancellable,
                                                                 GAsyncReadyCallback callback,
                                                                 gpointer            user_data);
EXO_AVAILABLE_IN_ALL
gboolean                exo_resource_group_remove_finish        (ExoResourceGroup   *self,
                                                                 GAsyncResult       *result,
                                                                 GError            **error);
EXO_AVAILABLE_IN_ALL
gboolean                exo_resource_group_validate             (ExoResourceGroup   *self,
                                                                 GError            **error);

EXO_AVAILABLE_IN_ALL
ExoResource            *exo_resource_group_lookup               (ExoResourceGroup   *self,
                                                                 const char         *member);
EXO_AVAILABLE_IN_ALL
guint                   exo_resource_group_get_n_members        (ExoResourceGroup   *self);
EXO_AVAILABLE_IN_ALL
GPtrArray              *exo_resource_group_get_members          (ExoResourceGroup   *self);
EXO_AVAILABLE_IN_ALL
char                  **exo_resource_group_get_dependencies     (ExoResourceGroup   *self,
                                                                 const char         *member);
EXO_AVAILABLE_IN_ALL
char                  **exo_resource_group_get_dependents       (ExoResourceGroup   *self,
                                                                 const char         *member);
EXO_AVAILABLE_IN_ALL
char                  **exo_resource_group_get_topological_order (ExoResourceGroup  *self,
                                                                  GError           **error);

EXO_AVAILABLE_IN_ALL
ExoSupervisionStrategy  exo_resource_group_get_strategy         (ExoResourceGroup   *self);
EXO_AVAILABLE_IN_ALL
void                    exo_resource_group_set_strategy         (ExoResourceGroup   *self,
                                                                 ExoSupervisionStrategy strategy);
EXO_AVAILABLE_IN_ALL
guint                   exo_resource_group_get_max_parallel     (ExoResourceGroup   *self);
EXO_AVAILABLE_IN_ALL
void                    exo_resource_group_set_max_parallel     (ExoResourceGroup   *self,
                                                                 guint               max_parallel);
EXO_AVAILABLE_IN_ALL
guint                   exo_resource_group_get_restart_burst    (ExoResourceGroup   *self);
EXO_AVAILABLE_IN_ALL
void                    exo_resource_group_set_restart_burst    (ExoResourceGroup   *self,
                                                                 guint               burst);
EXO_AVAILABLE_IN_ALL
guint                   exo_resource_group_get_restart_interval (ExoResourceGroup   *self);
EXO_AVAILABLE_IN_ALL
void                    exo_resource_group_set_restart_interval (ExoResourceGroup   *self,
                                                                 guint               interval_ms);
EXO_AVAILABLE_IN_ALL
guint                   exo_resource_group_get_restarts         (ExoResourceGroup   *self);
EXO_AVAILABLE_IN_ALL
gboolean                exo_resource_group_get_keep_going       (ExoResourceGroup   *self);
EXO_AVAILABLE_IN_ALL
void                    exo_resource_group_set_keep_going       (ExoResourceGroup   *self,
                                                                 gboolean            keep_going);

G_END_DECLS
