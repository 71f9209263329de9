# pyhello_util.py: a helper module beside the pyhello test plugin, which
# imports it as a top-level module (the loader puts a plugin's folder on
# sys.path while it imports it).  Not a plugin: it never names the marker.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os


def trace(resource, what):
    """Appends "<id> <what>" to the file named by $PYHELLO_TRACE."""
    path = os.environ.get('PYHELLO_TRACE')
    if path:
        with open(path, 'a') as f:
            f.write('%s %s\n' % (resource.get_id(), what))
