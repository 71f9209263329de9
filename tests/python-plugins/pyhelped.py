# pyhelped.py: a test plugin of tests/test-python-plugin.py whose resource
# class lives in a helper module beside it (pyhelped_util.py), imported by
# its plain name: the loader has the plugin's folder on sys.path while it
# imports the plugin.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

from pyhelped_util import Helped

EXO_PLUGIN = {
    'name': 'pyhelped',
    'version': '1.0',
    'description': 'A plugin with a helper module beside it, for the tests',
    'abi': '3.0',
    'types': {'py-helped': Helped},
}
