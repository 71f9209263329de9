#!/usr/bin/env python3
# test-python-plugin.py: exo-node with Python plugins, end to end.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Starts a private dbus-daemon and the real exo-node ($EXO_NODE) with the
# Python plugins of tests/python-plugins/ (copied into a private folder,
# mode 0700/0600, as the loader demands) next to the built C plugins
# ($EXO_TEST_PLUGIN_DIR), and checks: the Python resource reaches `ready`
# with its setting, is on D-Bus with its own metric, in `exoctl status`
# ($EXOCTL) and in the http-server's /metrics, Restart works; a package
# plugin (pypkg/, a folder with __init__.py) is loaded with its module; a
# raising do_initialize is retried (`flaky` succeeds on its third attempt)
# or ends in `error` with the exception's message (`bad`); a plugin with a
# syntax error and one for another ABI are refused in one line each, a
# Python file without the marker is not touched, a package with a module
# that anyone may write is refused before any of it runs, a planted .pyc
# beside a plugin is not run and none is written there, a copy of a plugin
# in a later folder is skipped before it runs, and the rest
# starts; tracebacks of a plugin's GLib callbacks and collect_metrics go to
# the log with the resource's id, the base metrics kept; on
# SIGTERM the C resource that depends on the Python one is cleaned up
# first.  Exits 77 (skipped) where there is no Python loader (no
# python3-embed, no typelib: -Dintrospection=disabled) and under valgrind.
# In the ASan build exo-node's leaks are checked when it exits (tests/
# meson.build, tests/lsan-python.supp): a report makes its exit status
# non-zero, and the SIGTERM case fails.
#
# Prints TAP; exits 1 if any check fails.

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

SKIP = 77
WAIT_S = 20
BUS_NAME = 'org.exo.Test.Python'


def skip(reason):
    print('1..0 # SKIP %s' % reason)
    sys.exit(SKIP)


if os.environ.get('EXO_TEST_UNDER_VALGRIND'):
    skip('not under valgrind')
loader = os.environ.get('EXO_PYTHON_LOADER', '')
if not loader or not os.path.exists(loader):
    skip('no Python loader in this build (python3-embed, PyGObject or the typelib missing)')
try:
    from gi.repository import Gio, GLib
except ImportError:
    skip('python3-gi (PyGObject) is not installed for %s' % sys.executable)

signal.signal(signal.SIGALRM, lambda *a: (print('Bail out! timed out'), os._exit(1)))
signal.alarm(150)

SRC = os.path.dirname(os.path.abspath(__file__))
CONFIG = {
    'resources': [
        {'id': 'py', 'type': 'py-hello', 'settings': {'greeting': 'hi'}},
        {'id': 'flaky', 'type': 'py-hello', 'settings': {'fail-times': 2},
         'retry': {'max-retries': 5, 'initial-delay-ms': 10, 'max-delay-ms': 50,
                   'jitter': 'none'}},
        {'id': 'bad', 'type': 'py-hello', 'settings': {'fail-times': -1},
         'retry': {'max-retries': 1, 'initial-delay-ms': 10, 'max-delay-ms': 20000,
                   'jitter': 'none'}},
        {'id': 'pkg', 'type': 'py-pkg', 'settings': {'start': 7}},
        {'id': 'noisy', 'type': 'py-hello', 'settings': {'noisy': True}},
        {'id': 'helped', 'type': 'py-helped'},
        {'id': 'server', 'type': 'http-server', 'depends-on': ['py'],
         'settings': {'port': 0, 'listen-address': '127.0.0.1'}},
    ],
}

results = []


def check(name, cond, detail=''):
    results.append((name, bool(cond), detail))


def resource_prop(bus, rid, prop):
    path = bus.call_sync(BUS_NAME, '/org/exo/Node1', 'org.exo.Node1', 'GetResource',
                         GLib.Variant('(s)', (rid,)), GLib.VariantType('(o)'),
                         Gio.DBusCallFlags.NONE, 5000, None).unpack()[0]
    value = bus.call_sync(BUS_NAME, path, 'org.freedesktop.DBus.Properties', 'Get',
                          GLib.Variant('(ss)', ('org.exo.Resource1', prop)),
                          GLib.VariantType('(v)'), Gio.DBusCallFlags.NONE, 5000, None)
    return value.unpack()[0], path


def wait_until(what, fn):
    deadline = time.monotonic() + WAIT_S
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except GLib.Error as e:
            last = e.message
        time.sleep(0.05)
    raise AssertionError('%s: not within %d s (last: %r)' % (what, WAIT_S, last))


PLANTED = """import gi
gi.require_version('Exo', '1')
from gi.repository import Exo


class Planted(Exo.Resource):
    __gtype_name__ = 'PyPlantedResource'


EXO_PLUGIN = {'name': 'planted', 'version': '1', 'abi': '3.0', 'types': {'py-planted': Planted}}
"""


def plant_bytecode(plugins, marker):
    """planted.py, and beside it in a 0777 __pycache__ a .pyc of other code
    whose header matches the source's mtime and size: Python would run it."""
    import importlib._bootstrap_external as bootstrap
    import importlib.util
    source = os.path.join(plugins, 'planted.py')
    with open(source, 'w') as f:
        f.write(PLANTED)
    os.chmod(source, 0o600)
    st = os.stat(source)
    evil = compile(PLANTED + 'open(%r, "w").close()\n' % marker, source, 'exec')
    cache = importlib.util.cache_from_source(source)
    os.mkdir(os.path.dirname(cache))
    os.chmod(os.path.dirname(cache), 0o777)
    with open(cache, 'wb') as f:
        f.write(bootstrap._code_to_timestamp_pyc(evil, int(st.st_mtime), st.st_size))


def main():
    tmp = tempfile.mkdtemp(prefix='exo-py-plugin.')
    os.chmod(tmp, 0o700)
    plugins = os.path.join(tmp, 'plugins')
    os.mkdir(plugins, 0o700)
    for name in ('pyhello.py', 'pyhelped.py', 'pyhelped_util.py', 'broken.py', 'oldabi.py',
                 'helper.py'):
        shutil.copy(os.path.join(SRC, 'python-plugins', name), plugins)
        os.chmod(os.path.join(plugins, name), 0o600)
    pkg_dir = os.path.join(plugins, 'pypkg')
    os.mkdir(pkg_dir, 0o700)
    for name in ('__init__.py', 'counter.py'):
        shutil.copy(os.path.join(SRC, 'python-plugins', 'pypkg', name), pkg_dir)
        os.chmod(os.path.join(pkg_dir, name), 0o600)
    # evilpkg/: a package whose __init__.py and folder are fine, but one of
    # its other modules is writable by anyone: refused, none of it imported
    evil_dir = os.path.join(plugins, 'evilpkg')
    os.mkdir(evil_dir, 0o755)
    with open(os.path.join(evil_dir, '__init__.py'), 'w') as f:
        f.write('from . import helper\nEXO_PLUGIN = {}\n')
    os.chmod(os.path.join(evil_dir, '__init__.py'), 0o644)
    with open(os.path.join(evil_dir, 'helper.py'), 'w') as f:
        f.write('open(%r, "w").close()\n' % os.path.join(tmp, 'evil-ran'))
    os.chmod(os.path.join(evil_dir, 'helper.py'), 0o666)
    # linkpkg/: a package whose module is a link to a fine file (0644,
    # ours) in a folder anyone can write (the file could be swapped there)
    link_dir = os.path.join(plugins, 'linkpkg')
    os.mkdir(link_dir, 0o755)
    with open(os.path.join(link_dir, '__init__.py'), 'w') as f:
        f.write('from . import lnf\nEXO_PLUGIN = {}\n')
    os.chmod(os.path.join(link_dir, '__init__.py'), 0o644)
    open_dir = os.path.join(tmp, 'open')
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o777)
    with open(os.path.join(open_dir, 'f.py'), 'w') as f:
        f.write('open(%r, "w").close()\n' % os.path.join(tmp, 'link-ran'))
    os.chmod(os.path.join(open_dir, 'f.py'), 0o644)
    os.symlink(os.path.join(open_dir, 'f.py'), os.path.join(link_dir, 'lnf.py'))
    plant_bytecode(plugins, os.path.join(tmp, 'planted-ran'))
    # the same plugin again in a later --plugin-dir: skipped before it runs
    later = os.path.join(tmp, 'later-plugins')
    os.mkdir(later, 0o700)
    shutil.copy(os.path.join(plugins, 'pyhello.py'), later)
    config = os.path.join(tmp, 'node.json')
    with open(config, 'w') as f:
        json.dump(CONFIG, f)
    trace = os.path.join(tmp, 'trace')
    log_path = os.path.join(tmp, 'node.log')

    bus_proc = subprocess.Popen(['dbus-daemon', '--session', '--nofork', '--print-address=1',
                                 '--address=unix:path=%s/bus' % tmp],
                                stdout=subprocess.PIPE, text=True)
    node = None
    try:
        address = bus_proc.stdout.readline().strip()
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=address, PYHELLO_TRACE=trace,
                   STATE_DIRECTORY=os.path.join(tmp, 'state'))
        env.pop('EXO_PLUGIN_PATH', None)
        # the loader itself must not write bytecode beside plugins
        env.pop('PYTHONDONTWRITEBYTECODE', None)
        with open(log_path, 'w') as log:
            node = subprocess.Popen([os.environ['EXO_NODE'], '--config', config,
                                     '--plugin-dir', plugins,
                                     '--plugin-dir', os.environ['EXO_TEST_PLUGIN_DIR'],
                                     '--plugin-dir', later,
                                     '--bus-name', BUS_NAME],
                                    env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        bus = Gio.DBusConnection.new_for_address_sync(
            address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
            Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)

        state = wait_until('py ready', lambda: resource_prop(bus, 'py', 'State')[0] == 'ready')
        check('the Python resource reaches ready', state)
        wait_until('server ready', lambda: resource_prop(bus, 'server', 'State')[0] == 'ready')
        check('the C resource that depends on it reaches ready', True)
        rtype, py_path = resource_prop(bus, 'py', 'Type')
        check('it is on D-Bus with its config type', rtype == 'py-hello', rtype)
        metrics, _ = resource_prop(bus, 'py', 'Metrics')
        check('its Python metric is in Metrics', metrics.get('py-attempts') == 1, metrics)

        exoctl = os.environ.get('EXOCTL')
        if exoctl:
            status = subprocess.run([exoctl, '--bus-name', BUS_NAME, '--no-pager', 'status', 'py'],
                                    env=env, capture_output=True, text=True, timeout=WAIT_S)
            out = status.stdout
            check('exoctl status shows the Python resource, ready, with its metric',
                  status.returncode == 0 and re.search(r'Type: py-hello\n', out) and
                  re.search(r'State: ready\n', out) and re.search(r'py-attempts: 1\n', out),
                  (status.returncode, out, status.stderr))

        server_metrics, _ = resource_prop(bus, 'server', 'Metrics')
        url = 'http://127.0.0.1:%d/metrics' % server_metrics['port']
        # straight to the node, whatever http_proxy says
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=WAIT_S) as reply:
            exposition = reply.read().decode()
        check('/metrics has the Python resource with its type and state',
              'exo_resource_state{id="py",type="py-hello",state="ready"} 1\n' in exposition,
              [line for line in exposition.splitlines() if 'py' in line])
        check("/metrics has the metrics its base class declares (Exo.ManagedResource's)",
              'exo_resource_restarts_total{id="py"} 0\n' in exposition and
              'exo_resource_errors_total{id="py"} 0\n' in exposition,
              [line for line in exposition.splitlines() if 'id="py"' in line])
        check('/metrics has the metric the Python class declares itself',
              'exo_py_hello_attempts_total{id="py"} 1\n' in exposition and
              '# TYPE exo_py_hello_attempts_total counter\n' in exposition,
              [line for line in exposition.splitlines() if 'py_hello' in line])

        wait_until('pkg ready', lambda: resource_prop(bus, 'pkg', 'State')[0] == 'ready')
        pkg_metrics, _ = resource_prop(bus, 'pkg', 'Metrics')
        check('a package plugin is imported as a package, with its setting',
              re.fullmatch(r'exo_plugin_[0-9]+_pypkg\.counter', pkg_metrics.get('pkg-module', ''))
              and pkg_metrics.get('pkg-start') == 7, pkg_metrics)

        wait_until('flaky ready', lambda: resource_prop(bus, 'flaky', 'State')[0] == 'ready')
        with open(trace) as f:
            flaky = [line for line in f if line.startswith('flaky initialize')]
        check('a raising do_initialize is retried until it succeeds', len(flaky) == 3, flaky)

        wait_until('bad in error', lambda: resource_prop(bus, 'bad', 'State')[0] == 'error')
        last_error, _ = resource_prop(bus, 'bad', 'LastError')
        check('a raising do_initialize gives error with the exception message',
              last_error.startswith('RuntimeError: hello refuses attempt '), last_error)

        wait_until('noisy ready', lambda: resource_prop(bus, 'noisy', 'State')[0] == 'ready')
        noisy_metrics, _ = resource_prop(bus, 'noisy', 'Metrics')
        check('a raising do_collect_metrics keeps the base class metrics',
              'restarts' in noisy_metrics and 'py-attempts' not in noisy_metrics, noisy_metrics)

        def noisy_logged():
            with open(log_path) as f:
                text = f.read()
            return ("Exo-Python: a callback of 'noisy' raised: Traceback" in text and
                    'SystemExit: 5' in text and
                    "Exo-Python: collect_metrics of 'noisy' raised: Traceback" in text and
                    text)
        text = wait_until('the noisy tracebacks in the log', noisy_logged)
        check("tracebacks of a plugin's GLib callback and collect_metrics go to the log "
              "with the resource id, none raw to stderr",
              not any(line.startswith('Traceback') for line in text.splitlines()),
              [line for line in text.splitlines() if line.startswith('Traceback')])

        bus.call_sync(BUS_NAME, py_path, 'org.exo.Resource1', 'Restart', None, None,
                      Gio.DBusCallFlags.NONE, 10000, None)
        wait_until('py ready again', lambda: resource_prop(bus, 'py', 'State')[0] == 'ready')
        with open(trace) as f:
            py_lines = [line.strip() for line in f if line.startswith('py ')]
        check('Restart cleans up and initializes the Python resource again',
              py_lines[:3] == ['py initialize 1', 'py cleanup', 'py initialize 2'], py_lines)

        with open(log_path) as f:
            log = f.read()
        refused = [line for line in log.splitlines() if 'broken.py' in line]
        check('a plugin with a syntax error is refused in one line naming the file',
              len(refused) == 1 and 'plugin refused: %s/broken.py: cannot import it: SyntaxError'
              % plugins in refused[0], refused)
        old = [line for line in log.splitlines() if 'oldabi.py' in line]
        check('a Python plugin for another ABI is refused in one line',
              len(old) == 1 and 'built for plugin ABI 2.0' in old[0], old)
        check('a Python file without EXO_PLUGIN is not a plugin',
              '%s/helper.py' % plugins not in log)
        check('a planted .pyc beside a plugin is not run (its source is)',
              not os.path.exists(os.path.join(tmp, 'planted-ran')) and 'planted' not in log,
              [line for line in log.splitlines() if 'planted' in line])
        check('no bytecode is written beside plugins',
              not os.path.exists(os.path.join(pkg_dir, '__pycache__')) and
              os.listdir(os.path.join(plugins, '__pycache__')) ==
              [os.path.basename(importlib.util.cache_from_source('planted.py'))],
              os.listdir(os.path.join(plugins, '__pycache__')))
        with open(trace) as f:
            imports = [line.strip() for line in f if line.startswith('imported ')]
        check('the same plugin in a later folder is skipped quietly, before its code runs',
              imports == ['imported %s/pyhello.py' % os.path.realpath(plugins)] and
              later not in log, (imports, [line for line in log.splitlines() if later in line]))
        check('a plugin imports a helper module beside it by its name',
              'pyhelped' not in log and
              wait_until('helped ready',
                         lambda: resource_prop(bus, 'helped', 'State')[0] == 'ready'),
              [line for line in log.splitlines() if 'pyhelped' in line])
        evil = [line for line in log.splitlines() if 'evilpkg' in line]
        check('a package with a group/world-writable module is refused in one line naming it',
              len(evil) == 1 and '%s/evilpkg/helper.py in its package is writable by group or '
              'others (mode 0666)' % plugins in evil[0] and
              not os.path.exists(os.path.join(tmp, 'evil-ran')), evil)
        linked = [line for line in log.splitlines() if 'linkpkg' in line]
        check('a package with a module linked into a folder others can write is refused',
              len(linked) == 1 and 'lnf.py in its package links into %s' % open_dir in linked[0] and
              not os.path.exists(os.path.join(tmp, 'link-ran')), linked)

        node.send_signal(signal.SIGTERM)
        code = node.wait(timeout=WAIT_S)
        check('SIGTERM: exo-node exits 0', code == 0, code)
        with open(log_path) as f:
            lines = f.read().splitlines()

        term = next((i for i, line in enumerate(lines) if 'SIGTERM' in line), len(lines))

        def first(text):
            return next((i for i, line in enumerate(lines) if i > term and text in line), None)
        server_closed = first('server: closing -> closed')
        py_closing = first('py: ready -> closing')
        check('SIGTERM: the C resource is cleaned up before the Python one it depends on',
              server_closed is not None and py_closing is not None and server_closed < py_closing,
              (server_closed, py_closing))
        with open(trace) as f:
            cleanups = [line.strip() for line in f if line.strip() == 'py cleanup']
        check('SIGTERM: the Python resource is cleaned up (after the Restart)',
              len(cleanups) == 2, cleanups)
    except Exception:
        check('no exception', False, traceback.format_exc())
    finally:
        if node is not None and node.poll() is None:
            node.kill()
            node.wait()
        bus_proc.kill()
        bus_proc.wait()
        if any(not ok for _, ok, _ in results):
            try:
                with open(log_path) as f:
                    sys.stdout.write(''.join('# log: ' + line for line in f.readlines()[-40:]))
            except OSError:
                pass
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
