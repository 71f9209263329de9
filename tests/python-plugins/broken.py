# broken.py: a Python plugin with a syntax error (tests/test-python-plugin.py).
# SPDX-License-Identifier: LGPL-2.1-or-later
EXO_PLUGIN = {'name': 'broken', 'abi': '3.0', 'types': {}
def oops(:
    pass
