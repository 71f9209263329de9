/* exo-test-bus.h: a private dbus-daemon for the end-to-end tests.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

GSubprocess *exo_test_bus_spawn (const char  *socket_path,
                                 char       **out_address);

G_END_DECLS
