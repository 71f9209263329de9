#!/usr/bin/env python3
# test-python-resource.py: libexo from Python through GObject-Introspection.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Run by meson (suite core) with GI_TYPELIB_PATH and LD_LIBRARY_PATH set to
# the build's src/libexo and PYTHONPATH to the PyGObject overrides
# (src/libexo/python).  Exits 77 (skipped) without python3-gi or without the
# typelib (a build with -Dintrospection=disabled), in a sanitizer build made
# with another compiler than gcc ($EXO_TEST_PYTHON_SKIP; with gcc meson
# preloads the runtimes), and under valgrind (it checks C code, not the
# Python interpreter).
#
# Prints TAP; exits 1 if any case fails.

import ctypes
import os
import signal
import sys
import traceback
import warnings

SKIP = 77


def skip(reason):
    print('1..0 # SKIP %s' % reason)
    sys.exit(SKIP)


if os.environ.get('EXO_TEST_UNDER_VALGRIND'):
    skip('not under valgrind')
if os.environ.get('EXO_TEST_PYTHON_SKIP'):
    skip(os.environ['EXO_TEST_PYTHON_SKIP'])

typelib_dir = os.environ.get('EXO_TEST_TYPELIB_DIR')
if not typelib_dir or not os.path.exists(os.path.join(typelib_dir, 'Exo-1.typelib')):
    skip('no Exo-1.typelib in the build (gobject-introspection missing or disabled)')

try:
    import gi
except ImportError:
    skip('python3-gi (PyGObject) is not installed for %s' % sys.executable)

try:
    gi.require_version('Exo', '1')
    from gi.repository import Exo, Gio, GLib
except (ImportError, ValueError) as e:
    skip('cannot load the Exo typelib: %s' % e)

# A hard guard: a case that hangs must not hang meson until its timeout.
signal.signal(signal.SIGALRM, lambda *a: (print('Bail out! timed out'), os._exit(1)))
signal.alarm(120)

WAIT_MS = 10000
context = GLib.MainContext.default()

# Every structured log record, as {field: str}: the overrides log a vfunc's
# traceback through GLib.log_variant().
LOG = []


def _log_writer(level, fields, n_fields, *user_data):
    record = {}
    for field in fields:
        if field.length < 0:
            record[field.key] = ctypes.string_at(field.value).decode('utf-8', 'replace')
    LOG.append(record)
    return GLib.LogWriterOutput.HANDLED


GLib.log_set_writer_func(_log_writer)


def wait_for(results, timeout_ms=WAIT_MS):
    """Iterates the main context until results is non-empty, with a bound."""
    deadline = GLib.get_monotonic_time() + timeout_ms * 1000
    while not results and GLib.get_monotonic_time() < deadline:
        context.iteration(False)
        if not results:
            GLib.usleep(1000)
    assert results, 'no result after %d ms: the resource is stuck' % timeout_ms
    return results[0]


def call(start, finish):
    """Runs an _async/_finish pair; returns (value, None) or (None, GLib.Error)."""
    results = []
    start(lambda source, result, *user_data: results.append(result))
    result = wait_for(results)
    try:
        return finish(result), None
    except GLib.Error as error:
        return None, error


def no_retries(resource):
    policy = Exo.RetryPolicy.new()
    policy.max_retries = 0
    resource.set_retry_policy(policy)


# --- resources written in Python ----------------------------------------------

class Raises(Exo.Resource):
    """do_initialize raises; do_cleanup and do_check_health too, on request."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.init_raises = True
        self.cleanup_raises = False
        self.health_raises = False
        self.cleanups = 0

    def do_do_initialize(self, task):
        if self.init_raises:
            raise ValueError('initialize failed in Python')
        task.return_boolean(True)

    def do_do_cleanup(self, task):
        self.cleanups += 1
        if self.cleanup_raises:
            raise ValueError('cleanup failed in Python')
        task.return_boolean(True)

    def do_do_check_health(self, task):
        if self.health_raises:
            raise ValueError('health check failed in Python')
        task.return_boolean(True)


class ManagedRaises(Exo.ManagedResource):
    def do_do_initialize(self, task):
        raise RuntimeError('managed initialize failed in Python')

    def do_do_cleanup(self, task):
        task.return_boolean(True)


class Works(Exo.ManagedResource):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inits = 0
        self.cleanups = 0

    def do_do_initialize(self, task):
        self.inits += 1
        # complete later, from the main loop, as a real implementation would
        GLib.timeout_add(5, self._initialized, task)

    def _initialized(self, task):
        task.return_boolean(True)
        return GLib.SOURCE_REMOVE

    def do_do_cleanup(self, task):
        self.cleanups += 1
        task.return_boolean(True)


# --- cases ------------------------------------------------------------------------

def test_initialize_raises():
    """(a) do_initialize raises: the attempt fails, the resource is not stuck."""
    r = Raises(id='py-raises')
    ok, error = call(lambda cb: r.initialize_async(None, cb), r.initialize_finish)
    assert ok is None and error is not None, 'initialize did not fail'
    assert error.matches(Exo.ResourceError.quark(), Exo.ResourceError.FAILED), error
    # the exception's message is the error
    assert error.message == 'ValueError: initialize failed in Python', error.message
    assert r.get_state() == Exo.ResourceState.ERROR, r.get_state()
    assert r.get_last_error().message == error.message
    assert r.cleanups == 1, 'the half-made resource was not cleaned up'
    # the traceback is logged once, with the resource's id
    tracebacks = [f for f in LOG if f.get('EXO_RESOURCE_ID') == 'py-raises']
    assert len(tracebacks) == 1, tracebacks
    assert 'Traceback' in tracebacks[0]['MESSAGE'], tracebacks
    assert "raise ValueError('initialize failed in Python')" in tracebacks[0]['MESSAGE']
    assert tracebacks[0]['GLIB_DOMAIN'] == 'Exo-Python', tracebacks


def test_managed_initialize_raises():
    """(a) the same through an ExoManagedResource (without retries)."""
    r = ManagedRaises(id='py-managed-raises')
    no_retries(r)
    ok, error = call(lambda cb: r.initialize_async(None, cb), r.initialize_finish)
    assert error is not None, 'initialize did not fail'
    assert error.message == 'RuntimeError: managed initialize failed in Python', error.message
    assert r.get_state() == Exo.ResourceState.ERROR, r.get_state()
    r.set_auto_recover(False)
    call(lambda cb: r.cleanup_async(None, cb), r.cleanup_finish)


class Exits(Exo.Resource):
    """do_initialize raises what it is given: SystemExit, KeyboardInterrupt..."""

    def __init__(self, exc, **kwargs):
        super().__init__(**kwargs)
        self.exc = exc

    def do_do_initialize(self, task):
        raise self.exc

    def do_do_cleanup(self, task):
        task.return_boolean(True)


def test_base_exceptions_fail_the_attempt():
    """sys.exit() and KeyboardInterrupt in a vfunc fail that attempt, like any exception."""
    for exc, message in ((SystemExit(3), 'SystemExit: 3'),
                         (KeyboardInterrupt(), 'KeyboardInterrupt'),
                         (GeneratorExit('odd'), 'GeneratorExit: odd')):
        rid = 'py-exits-%s' % type(exc).__name__
        r = Exits(exc, id=rid)
        ok, error = call(lambda cb: r.initialize_async(None, cb), r.initialize_finish)
        assert error is not None and error.message == message, (message, error)
        assert r.get_state() == Exo.ResourceState.ERROR, r.get_state()
        logged = [f for f in LOG if f.get('EXO_RESOURCE_ID') == rid]
        assert len(logged) == 1 and type(exc).__name__ in logged[0]['MESSAGE'], logged


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError('no str for you')


class WorseStr(Exception):
    def __str__(self):
        raise RuntimeError('no str')

    def __repr__(self):
        raise RuntimeError('no repr')


def test_hostile_exception_messages():
    """An exception whose str() raises, or whose message is no valid UTF-8,
    or is huge, still fails the attempt with a safe, bounded message."""
    cases = (
        (BadStr('x'), lambda m: m == "BadStr: BadStr('x')"),
        (WorseStr('x'), lambda m: m == 'WorseStr'),
        (ValueError('bad \udcff byte'), lambda m: m == 'ValueError: bad \\udcff byte'),
        (ValueError('\u00e9' * 5000),
         lambda m: len(m.encode()) <= 1024 + 3 and m.endswith('...')),
        (GLib.Error.new_literal(Exo.resource_error_quark(), 'x' * 5000, 0),
         lambda m: len(m.encode()) <= 1024 + 3),
    )
    for n, (exc, good) in enumerate(cases):
        rid = 'py-hostile-%d' % n
        r = Exits(exc, id=rid)
        ok, error = call(lambda cb: r.initialize_async(None, cb), r.initialize_finish)
        assert error is not None and good(error.message), (n, error and error.message[:80])
        logged = [f for f in LOG if f.get('EXO_RESOURCE_ID') == rid]
        assert len(logged) == 1, (n, logged)
    # the traceback logged is cut at 8 KiB, and says so
    record = [f for f in LOG if f.get('EXO_RESOURCE_ID') == 'py-hostile-3'][0]
    assert len(record['MESSAGE'].encode()) < 8 * 1024 + 200, len(record['MESSAGE'])
    assert record['MESSAGE'].endswith('[traceback cut at 8192 bytes]'), record['MESSAGE'][-80:]


class MetricsRaise(Exo.ManagedResource):
    def do_do_initialize(self, task):
        task.return_boolean(True)

    def do_collect_metrics(self, metrics):
        raise RuntimeError('metrics boom')


def test_collect_metrics_raises():
    """A raising do_collect_metrics is logged with the resource's id, and
    the base class's metrics are kept."""
    base = Works(id='py-metrics-base').get_metrics().unpack()
    r = MetricsRaise(id='py-metrics-raise')
    metrics = r.get_metrics().unpack()
    assert base and set(base) <= set(metrics), (base, metrics)
    logged = [f for f in LOG if f.get('EXO_RESOURCE_ID') == 'py-metrics-raise']
    assert len(logged) == 1 and 'collect_metrics' in logged[0]['MESSAGE'] and \
        'metrics boom' in logged[0]['MESSAGE'], logged


def test_health_and_cleanup_raise():
    """(a) do_check_health and do_cleanup that raise fail too."""
    r = Raises(id='py-raises-later')
    r.init_raises = False
    ok, error = call(lambda cb: r.initialize_async(None, cb), r.initialize_finish)
    assert error is None, error
    r.health_raises = True
    ok, error = call(lambda cb: r.check_health_async(None, cb), r.check_health_finish)
    assert error is not None and error.message == 'ValueError: health check failed in Python', \
        error
    assert r.get_state() == Exo.ResourceState.DEGRADED, r.get_state()
    r.cleanup_raises = True
    ok, error = call(lambda cb: r.cleanup_async(None, cb), r.cleanup_finish)
    assert error is not None and error.message == 'ValueError: cleanup failed in Python', error
    assert r.get_state() == Exo.ResourceState.CLOSED, r.get_state()


def test_initialize_completes():
    """(b) a do_initialize that completes its task (later) makes the resource ready."""
    r = Works(id='py-works')
    ok, error = call(lambda cb: r.initialize_async(None, cb), r.initialize_finish)
    assert error is None and ok, error
    assert r.get_state() == Exo.ResourceState.READY, r.get_state()
    assert r.inits == 1
    ok, error = call(lambda cb: r.cleanup_async(None, cb), r.cleanup_finish)
    assert error is None and ok, error
    assert r.get_state() == Exo.ResourceState.CLOSED
    assert r.cleanups == 1


def test_run_async_from_python():
    """(c) exo_managed_resource_run_async with a Python callable."""
    r = Works(id='py-runner')
    seen = []

    def operation(resource, cancellable, task, *func_data):
        seen.append((resource, func_data))
        task.return_value('answer %d' % len(seen))

    value, error = call(lambda cb: r.run_async(operation, 'payload', 1000, None, cb),
                        r.run_finish)
    assert error is None, error
    assert value == 'answer 1', value
    assert seen == [(r, ('payload',))], seen
    assert r.get_state() == Exo.ResourceState.READY   # the runner initialized it

    # the plain PyGObject form: func_data as a tuple, trailing user_data
    got = []
    r.run_async(operation, ('a', 'b'), 0, None,
                lambda s, res, *ud: got.append((r.run_finish(res), ud)), 'ud')
    wait_for(got)
    assert got == [('answer 2', ('ud',))], got
    assert seen[-1][1] == ('a', 'b'), seen

    # an operation that raises fails its attempt (retried) instead of hanging
    calls = []

    def raises(resource, cancellable, task, *func_data):
        calls.append(1)
        raise KeyError('no such thing')

    no_retries(r)
    value, error = call(lambda cb: r.run_async(raises, None, 0, None, cb), r.run_finish)
    assert error is not None and error.message == "KeyError: 'no such thing'", error
    assert calls == [1], calls
    call(lambda cb: r.cleanup_async(None, cb), r.cleanup_finish)


def test_use_async_from_python():
    """(c) Exo.Resource.use_async with a Python callable: initialize, func, cleanup."""
    r = Works(id='py-use')
    states = []

    def func(resource, cancellable, task, *func_data):
        states.append(resource.get_state())
        task.return_value(len(func_data))

    value, error = call(lambda cb: r.use_async(func, ('x', 'y', 'z'), 5000, None, cb),
                        r.use_finish)
    assert error is None, error
    assert value == 3, value
    assert states == [Exo.ResourceState.READY], states
    assert r.get_state() == Exo.ResourceState.CLOSED    # cleaned up before the callback
    assert r.cleanups == 1


def test_error_domain():
    """(d) an error from libexo is a GLib.Error in the Exo.ResourceError domain."""
    r = Works(id='py-closed')
    call(lambda cb: r.initialize_async(None, cb), r.initialize_finish)
    call(lambda cb: r.cleanup_async(None, cb), r.cleanup_finish)
    r.set_auto_recover(False)

    def operation(resource, cancellable, task, *func_data):
        task.return_value(1)

    try:
        results = []
        r.run_async(operation, None, 0, None, lambda s, res, *ud: results.append(res))
        r.run_finish(wait_for(results))
    except GLib.Error as error:
        assert error.matches(Exo.ResourceError.quark(), Exo.ResourceError.CLOSED), error
        assert error.domain == 'exo-resource-error-quark', error.domain
        assert error.code == int(Exo.ResourceError.CLOSED)
    else:
        raise AssertionError('run_async on a closed resource did not fail')

    # the typelib declares ResourceError as an error domain
    try:
        gi.require_version('GIRepository', '2.0')
        from gi.repository import GIRepository
    except (ImportError, ValueError):
        return
    info = GIRepository.Repository.get_default().find_by_name('Exo', 'ResourceError')
    assert info is not None
    assert GIRepository.enum_info_get_error_domain(info) == 'exo-resource-error-quark'


def test_node_role_typed():
    # ExoNodeRole implemented in Python, called through the checked
    # exo_node_role_*() functions: typed values, and NOT_SUPPORTED for what
    # the implementation leaves out.
    class PyNode(Exo.Resource, Exo.NodeRole):
        __gtype_name__ = 'TestPyNodeRole'

        def do_list_models(self):
            return GLib.Variant('aa{sv}', [{'id': GLib.Variant('s', 'py-model'),
                                            'n-layers': GLib.Variant('u', 4)}])

        def do_get_topology(self):
            return GLib.Variant('a{sv}', {'nodes': GLib.Variant('a{sa{sv}}', {}),
                                          'edges': GLib.Variant('a(sss)', [])})

    node = PyNode(id='py-node')
    assert node.list_models().unpack() == [{'id': 'py-model', 'n-layers': 4}]
    assert node.get_topology().unpack() == {'nodes': {}, 'edges': []}
    assert node.get_node_id() is None
    try:
        node.cancel_request('r-1')
    except GLib.Error as e:
        assert e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.NOT_SUPPORTED), e
        assert "'py-node'" in e.message and 'cancel_request' in e.message, e.message
    else:
        raise AssertionError('cancel_request of a node without it did not fail')
    result = Exo.ChatResult.new('hi', 'length', 3, 2)
    assert (result.get_text(), result.get_finish_reason()) == ('hi', 'length')
    assert (result.get_prompt_tokens(), result.get_completion_tokens()) == (3, 2)


class Flaky(Exo.ManagedResource):
    """Raises on the first `fails` attempts of each initialize, then succeeds."""

    def __init__(self, fails, **kwargs):
        super().__init__(**kwargs)
        self.fails = fails
        self.inits = 0

    def do_do_initialize(self, task):
        self.inits += 1
        if self.fails > 0:
            self.fails -= 1
            raise ConnectionError('backend away')
        task.return_boolean(True)

    def do_do_cleanup(self, task):
        task.return_boolean(True)

    def do_collect_metrics(self, metrics):
        Exo.ManagedResource.do_collect_metrics(self, metrics)
        metrics.insert_value('py-inits', GLib.Variant('u', self.inits))


def fast_retries(resource, n):
    policy = Exo.RetryPolicy.new()
    policy.max_retries = n
    policy.initial_delay_ms = 5
    policy.max_delay_ms = 10
    policy.jitter = Exo.Jitter.NONE
    resource.set_retry_policy(policy)


def wait_state(resource, state):
    deadline = GLib.get_monotonic_time() + WAIT_MS * 1000
    while resource.get_state() != state and GLib.get_monotonic_time() < deadline:
        context.iteration(False)
        GLib.usleep(1000)
    assert resource.get_state() == state, (resource.get_state(), state)


def test_managed_retries_and_recovers():
    """A Python ManagedResource fails, is retried, recovers after a reported error."""
    r = Flaky(2, id='py-flaky')
    fast_retries(r, 5)
    ok, error = call(lambda cb: r.initialize_async(None, cb), r.initialize_finish)
    assert error is None and ok, error
    assert r.inits == 3, r.inits
    assert r.get_last_error().message == 'ConnectionError: backend away'
    # collect_metrics in Python, with the heap GVariantDict, chained up
    # a heap GVariantDict: PyGObject's reference to it is no critical (which
    # PyGObject turns into a Python warning for GLib's own log domain)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        metrics = r.get_metrics().unpack()
    assert not caught, [str(w.message) for w in caught]
    assert metrics['py-inits'] == 3, metrics
    # fails after being ready: auto-recover brings it back (one more failure first)
    r.fails = 1
    r.report_error(GLib.Error.new_literal(Exo.resource_error_quark(), 'lost', 0))
    assert r.get_state() == Exo.ResourceState.ERROR
    wait_state(r, Exo.ResourceState.READY)
    assert r.inits == 5, r.inits
    r.set_auto_recover(False)
    call(lambda cb: r.cleanup_async(None, cb), r.cleanup_finish)


class Net(Exo.NetworkResource):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.refuse = False

    def do_do_connect(self, task):
        if self.refuse:
            raise OSError('connection refused')
        task.return_boolean(True)

    def do_do_disconnect(self, task):
        task.return_boolean(True)


def test_network_resource():
    """A Python NetworkResource connects, fails with the exception's message, counts."""
    n = Net(id='py-net')
    ok, error = call(lambda cb: n.initialize_async(None, cb), n.initialize_finish)
    assert error is None and ok, error
    assert n.get_metrics().unpack()['connect-successes'] == 1
    call(lambda cb: n.cleanup_async(None, cb), n.cleanup_finish)
    n.refuse = True
    no_retries(n)
    ok, error = call(lambda cb: n.initialize_async(None, cb), n.initialize_finish)
    assert error is not None and error.message == 'OSError: connection refused', error
    assert n.get_metrics().unpack()['connect-failures'] >= 1
    n.set_auto_recover(False)
    call(lambda cb: n.cleanup_async(None, cb), n.cleanup_finish)


def test_group_and_pool():
    """A group of Python resources in dependency order; a pool of them."""
    g = Exo.ResourceGroup.new('py-group')
    a, b = Works(id='py-a'), Works(id='py-b')
    g.add(a, None)
    g.add(b, ['py-a'])
    ok, error = call(lambda cb: g.initialize_async(None, cb), g.initialize_finish)
    assert error is None and ok, error
    assert a.get_state() == b.get_state() == Exo.ResourceState.READY
    call(lambda cb: g.cleanup_async(None, cb), g.cleanup_finish)
    assert a.get_state() == b.get_state() == Exo.ResourceState.CLOSED

    pool = Exo.ResourcePool.new(Works.__gtype__, 1, 2)
    ok, error = call(lambda cb: pool.initialize_async(None, cb), pool.initialize_finish)
    assert error is None and ok, error
    lease, error = call(lambda cb: pool.acquire_async(1000, None, cb), pool.acquire_finish)
    assert error is None and isinstance(lease, Exo.PoolLease), (lease, error)
    item = lease.get_resource()
    assert isinstance(item, Works) and item.inits == 1, item
    lease.release()
    call(lambda cb: pool.cleanup_async(None, cb), pool.cleanup_finish)


def test_every_class_constructible():
    """Every non-abstract GObject class of the typelib can be made from Python."""
    from gi.repository import GObject
    made = []
    for name in dir(Exo):
        cls = getattr(Exo, name)
        if not (isinstance(cls, type) and issubclass(cls, GObject.Object)):
            continue
        if GObject.type_test_flags(cls.__gtype__, GObject.TypeFlags.ABSTRACT) or \
                GObject.type_is_a(cls.__gtype__, GObject.TYPE_INTERFACE):
            continue
        obj = GObject.new(cls.__gtype__)
        assert isinstance(obj, cls), name
        made.append(name)
    assert {'ResourceGroup', 'PluginLoader'} <= set(made), made


CASES = [
    test_managed_retries_and_recovers,
    test_network_resource,
    test_group_and_pool,
    test_every_class_constructible,
    test_initialize_raises,
    test_managed_initialize_raises,
    test_base_exceptions_fail_the_attempt,
    test_hostile_exception_messages,
    test_collect_metrics_raises,
    test_health_and_cleanup_raise,
    test_initialize_completes,
    test_run_async_from_python,
    test_use_async_from_python,
    test_error_domain,
    test_node_role_typed,
]


def main():
    print('1..%d' % len(CASES))
    failed = 0
    for n, case in enumerate(CASES, 1):
        try:
            case()
        except Exception:
            failed += 1
            print('not ok %d %s' % (n, case.__name__))
            for line in traceback.format_exc().splitlines():
                print('# ' + line)
        else:
            print('ok %d %s' % (n, case.__name__))
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
