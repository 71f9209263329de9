# pypkg: a Python plugin that is a package (a folder with __init__.py), for
# tests/test-python-plugin.py.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Registers "py-pkg", whose class lives in a module of the package
# (counter.py) and is reached with a relative import: the loader imports
# the folder as a package.  counter.py itself never names the marker, and a
# package is not searched for more plugins.

from .counter import PkgCounter

EXO_PLUGIN = {
    'name': 'pypkg',
    'version': '0.1',
    'description': 'A Python plugin made of a package, for the tests',
    'abi': '3.0',
    'types': {'py-pkg': PkgCounter},
}
