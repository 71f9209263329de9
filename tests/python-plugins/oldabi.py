# oldabi.py: a Python plugin written for another plugin ABI (tests/test-python-plugin.py).
# SPDX-License-Identifier: LGPL-2.1-or-later
from gi.repository import Exo


class OldAbi(Exo.Resource):
    pass


EXO_PLUGIN = {'name': 'oldabi', 'abi': '2.0', 'types': {'py-old': OldAbi}}
