#!/usr/bin/env python3
# bench-python.py: python_transition_ns, the cost of one state transition of
# a resource written in Python with one handler written in Python.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The counterpart of transition_ns (bench-core.c): a ready Exo.Resource
# subclass made in Python, a Python `state-changed` handler, and n
# transitions ready <-> degraded driven from Python through
# Exo.Resource.transition(); the median of RUNS runs, one JSON line as
# exo-bench prints.  PyGObject 3.42 does not pass None for a nullable GError
# in-argument (Exo.Resource.transition's @error), so each transition here
# also records one preallocated error as the last error.  exo-bench runs it
# (`exo-bench python_transition_ns`, tests/bench/bench-python.c) with the
# build's typelib and overrides and puts the C floor, transition_ns of the
# same run, and the ratio in its line.  By hand, as
# tests/test-python-resource.py:
#   GI_TYPELIB_PATH=build/src/libexo LD_LIBRARY_PATH=build/src/libexo \
#   PYTHONPATH=src/libexo/python python3 tests/bench/bench-python.py [N]

import json
import statistics
import sys
import time

import gi
gi.require_version('Exo', '1')
from gi.repository import Exo, GLib  # noqa: E402

RUNS = 5


class Trivial(Exo.Resource):
    def do_do_initialize(self, task):
        task.return_boolean(True)

    def do_do_cleanup(self, task):
        task.return_boolean(True)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    r = Trivial(id='bench-python-transition')
    done = []
    r.initialize_async(None, lambda s, res, *u: done.append(r.initialize_finish(res)))
    context = GLib.MainContext.default()
    while not done:
        context.iteration(True)
    assert r.get_state() == Exo.ResourceState.READY

    seen = [0]

    def on_state_changed(resource, old, new):
        seen[0] += 1
    r.connect('state-changed', on_state_changed)

    results = []
    degraded, ready = Exo.ResourceState.DEGRADED, Exo.ResourceState.READY
    error = GLib.Error.new_literal(Exo.resource_error_quark(), 'bench', 0)
    for _ in range(RUNS):
        t0 = time.perf_counter_ns()
        for _ in range(n // 2):
            r.transition(degraded, error)
            r.transition(ready, error)
        results.append((time.perf_counter_ns() - t0) / n)
    assert seen[0] == (n // 2) * 2 * RUNS, seen
    print(json.dumps({'bench': 'python_transition_ns', 'value': round(statistics.median(results), 3),
                      'unit': 'ns', 'n': n, 'handlers': 1, 'runs': RUNS}))


if __name__ == '__main__':
    main()
