# counter.py: the resource class of the pypkg test plugin (__init__.py).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# An Exo.Resource whose initialize and cleanup complete at once; its one
# metric, `pkg-module`, is the module's own name, to show that it was
# imported as part of the package.

import gi
gi.require_version('Exo', '1')
from gi.repository import Exo, GLib, GObject


class PkgCounter(Exo.Resource):
    __gtype_name__ = 'PyPkgCounter'

    start = GObject.Property(type=int, default=0, minimum=0, maximum=100)

    def do_do_initialize(self, task):
        task.return_boolean(True)

    def do_do_cleanup(self, task):
        task.return_boolean(True)

    def do_collect_metrics(self, metrics):
        Exo.Resource.do_collect_metrics(self, metrics)
        metrics.insert_value('pkg-module', GLib.Variant('s', __name__))
        metrics.insert_value('pkg-start', GLib.Variant('i', self.start))
