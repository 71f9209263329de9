#!/usr/bin/env python3
# test-python-config.py: the settings of a Python resource in a config give
# the same errors as a C resource's, and exo-node refuses them the same way.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# For each bad setting (an unknown one, a value of the wrong JSON type, a
# number out of the property's range) it writes one config for py-hello
# (tests/python-plugins/pyhello.py; its settings are GObject properties) and
# one for the C type http-server with the same fault, and runs the real
# exo-node ($EXO_NODE) on each: with --check-config, and as a start.  Both
# must fail with exit status 1 and the same message but for the type,
# setting and value names; a start never gets as far as the bus (it is
# given none).  A good config of the same resources passes --check-config.
# Exits 77 (skipped) where there is no Python loader, as
# test-python-plugin.py, and under valgrind.
#
# Prints TAP; exits 1 if any check fails.

import json
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
TIMEOUT_S = 60

if os.environ.get('EXO_TEST_UNDER_VALGRIND'):
    print('1..0 # SKIP not under valgrind')
    sys.exit(SKIP)
loader = os.environ.get('EXO_PYTHON_LOADER', '')
if not loader or not os.path.exists(loader):
    print('1..0 # SKIP no Python loader in this build (python3-embed, PyGObject or the typelib missing)')
    sys.exit(SKIP)

SRC = os.path.dirname(os.path.abspath(__file__))

# (what, python setting, python value, C setting, C value, expected reason
# with {type}, {key} and {value} for the names that differ)
CASES = [
    ('an unknown setting', 'greting', 'hi', 'prot', 80,
     "type '{type}' has no setting '{key}'; did you mean '{right}'?"),
    ('a string for an integer', 'fail-times', 'two', 'port', 'eighty',
     'expected an integer, got a string'),
    ('a number for a string', 'greeting', 5, 'listen-address', 5,
     'expected a string, got an integer'),
    ('an integer out of range', 'fail-times', 5000, 'port', 70000,
     'value {value} is out of range ({range})'),
]
RIGHT = {'greting': 'greeting', 'prot': 'port'}
RANGE = {'fail-times': '-1 to 1000', 'port': '0 to 65535'}

results = []


def check(name, cond, detail=''):
    results.append((name, bool(cond), detail))


def write_config(tmp, name, rtype, key, value):
    path = os.path.join(tmp, name)
    # line 3 holds the settings: the message names it
    with open(path, 'w') as f:
        f.write('{"resources": [\n  {"id": "r", "type": %s,\n   "settings": %s}\n]}\n'
                % (json.dumps(rtype), json.dumps({key: value})))
    return path


def run_node(tmp, plugins, *args):
    env = dict(os.environ, STATE_DIRECTORY=os.path.join(tmp, 'state'),
               DBUS_SESSION_BUS_ADDRESS='unix:path=%s/no-bus' % tmp)
    env.pop('EXO_PLUGIN_PATH', None)
    proc = subprocess.run([os.environ['EXO_NODE'], '--plugin-dir', plugins,
                           '--plugin-dir', os.environ['EXO_TEST_PLUGIN_DIR']] + list(args),
                          env=env, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=tmp)
    # the lines exo-node writes itself, not its log
    return proc.returncode, [line for line in proc.stderr.splitlines() if line.startswith('exo-node: ')]


def expected(path, rtype, key, value, reason):
    return '%s:3: resources[0].settings.%s: %s' % (
        path, key, reason.format(type=rtype, key=key, value=value, right=RIGHT.get(key),
                                 range=RANGE.get(key)))


def main():
    tmp = tempfile.mkdtemp(prefix='exo-py-config.')
    os.chmod(tmp, 0o700)
    plugins = os.path.join(tmp, 'plugins')
    os.mkdir(plugins, 0o700)
    shutil.copy(os.path.join(SRC, 'python-plugins', 'pyhello.py'), plugins)
    os.chmod(os.path.join(plugins, 'pyhello.py'), 0o600)
    try:
        good = write_config(tmp, 'good.json', 'py-hello', 'fail-times', 3)
        code, err = run_node(tmp, plugins, '--check-config', good)
        check('a good config of a Python resource passes --check-config', code == 0, (code, err))

        for n, (what, py_key, py_value, c_key, c_value, reason) in enumerate(CASES):
            py = write_config(tmp, 'py-%d.json' % n, 'py-hello', py_key, py_value)
            c = write_config(tmp, 'c-%d.json' % n, 'http-server', c_key, c_value)
            py_line = expected(py, 'py-hello', py_key, py_value, reason)
            c_line = expected(c, 'http-server', c_key, c_value, reason)
            for mode, args_of, prefix in (('--check-config', lambda p: ['--check-config', p],
                                           'exo-node: '),
                                          ('a start', lambda p: ['--config', p],
                                           'exo-node: refusing to start: ')):
                c_code, c_err = run_node(tmp, plugins, *args_of(c))
                py_code, py_err = run_node(tmp, plugins, *args_of(py))
                check('%s, C resource, %s: exit 1 and the message' % (what, mode),
                      c_code == 1 and c_err == [prefix + c_line], (c_code, c_err))
                check('%s, Python resource, %s: the same' % (what, mode),
                      py_code == c_code and py_err == [prefix + py_line],
                      (py_code, py_err, prefix + py_line))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print('1..%d' % len(results))
    for n, (name, ok, detail) in enumerate(results, 1):
        print('%s %d - %s' % ('ok' if ok else 'not ok', n, name))
        if not ok:
            for line in str(detail).splitlines():
                print('# ' + line)
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == '__main__':
    sys.exit(main())
