# pyhello.py: the Python test plugin of tests/test-python-plugin.py.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Registers "py-hello", an Exo.ManagedResource written in Python with two
# settings (GObject properties): `greeting`, and `fail-times`, the number
# of initialize attempts that raise before one succeeds (-1: all of them),
# and `noisy`: once ready, a GLib callback of it raises, another calls
# sys.exit(5), and its do_collect_metrics raises (before it chains up).
# Each lifecycle call is appended to the file named by $PYHELLO_TRACE, one
# line "<id> <what>", so the test sees the order of cleanups.  Runs on the
# daemon's main context, like every Python plugin.

import os
import sys

import gi
gi.require_version('Exo', '1')
from gi.repository import Exo, GLib, GObject


def trace(resource, what):
    path = os.environ.get('PYHELLO_TRACE')
    if path:
        with open(path, 'a') as f:
            f.write('%s %s\n' % (resource.get_id(), what))


# its top-level code ran: once per process, the test checks (a copy of this
# file in a later plugin folder is skipped before it runs)
if os.environ.get('PYHELLO_TRACE'):
    with open(os.environ['PYHELLO_TRACE'], 'a') as f:
        f.write('imported %s\n' % __file__)


class PyHello(Exo.ManagedResource):
    __gtype_name__ = 'PyHelloResource'

    greeting = GObject.Property(type=str, default='hello')
    fail_times = GObject.Property(type=int, default=0, minimum=-1, maximum=1000,
                                  nick='fail-times')
    noisy = GObject.Property(type=bool, default=False)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.attempts_made = 0

    def do_do_initialize(self, task):
        self.attempts_made += 1
        trace(self, 'initialize %d' % self.attempts_made)
        if self.fail_times < 0 or self.attempts_made <= self.fail_times:
            raise RuntimeError('%s refuses attempt %d' % (self.greeting, self.attempts_made))
        # completed later, from the main loop
        GLib.timeout_add(5, self._ready, task)

    def _ready(self, task):
        task.return_boolean(True)
        if self.noisy:
            GLib.idle_add(self._boom)
            GLib.idle_add(self._exit)
        return GLib.SOURCE_REMOVE

    def _boom(self):
        raise RuntimeError('callback boom')

    def _exit(self):
        sys.exit(5)          # must not end the node

    def do_do_cleanup(self, task):
        trace(self, 'cleanup')
        task.return_boolean(True)

    def do_do_check_health(self, task):
        task.return_boolean(True)

    def do_collect_metrics(self, metrics):
        if self.noisy:
            raise RuntimeError('metrics boom')
        Exo.ManagedResource.do_collect_metrics(self, metrics)
        metrics.insert_value('py-attempts', GLib.Variant('u', self.attempts_made))


# its own key in /metrics too (plugin ABI 3.2)
Exo.Resource.type_declare_metric(PyHello, 'py-attempts', Exo.MetricKind.COUNTER,
                                   'exo_py_hello_attempts_total', 0,
                                   'Initialize attempts of the Python test resource.')

EXO_PLUGIN = {
    'name': 'pyhello',
    'version': '1.0',
    'description': 'A resource written in Python, for the tests',
    'abi': '3.0',
    'types': {'py-hello': PyHello},
}
