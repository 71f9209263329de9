/* exo.h: the only header users of libexo include.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#define EXO_INSIDE
#include <exo/exo-version.h>
#include <exo/exo-types.h>
#include <exo/exo-error.h>
#include <exo/exo-json.h>
#include <exo/exo-retry-policy.h>
#include <exo/exo-async-resource.h>
#include <exo/exo-resource.h>
#include <exo/exo-managed-resource.h>
#include <exo/exo-network-resource.h>
#include <exo/exo-task.h>
#include <exo/exo-task-manager.h>
#include <exo/exo-registry.h>
#include <exo/exo-scope.h>
#include <exo/exo-inference.h>
#include <exo/exo-generation-params.h>
#include <exo/exo-cluster.h>
#include <exo/exo-node-role.h>
#include <exo/exo-cluster-key.h>
#include <exo/exo-plugin.h>
#include <exo/exo-resource-pool.h>
#include <exo/exo-resource-group.h>
#undef EXO_INSIDE
