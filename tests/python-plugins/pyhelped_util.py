# pyhelped_util.py: a helper module beside the pyhelped test plugin, which
# imports it as a top-level module (the loader puts a plugin's folder on
# sys.path while it imports it).  Not a plugin: it never names the marker.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import gi
gi.require_version('Exo', '1')
from gi.repository import Exo


class Helped(Exo.Resource):
    __gtype_name__ = 'PyHelpedResource'

    def do_do_initialize(self, task):
        task.return_boolean(True)

    def do_do_cleanup(self, task):
        task.return_boolean(True)
