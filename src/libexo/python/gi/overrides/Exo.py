# Exo.py: PyGObject overrides for libexo (the Exo-1 typelib).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Makes a Python exception in an implementation fail the attempt.

libexo hands each ``do_*`` vfunc (and each operation given to ``run_async``
or ``use_async``) a ``Gio.Task`` to complete.

PyGObject, when a vfunc or callback raises, prints the exception with
``PyErr_Print()``, which also stores it in ``sys.last_traceback``: the
traceback's frames keep their locals, ``task`` among them, so the task stays
referenced until the next uncaught exception, and the attempt would wait for
ever.  The wrappers below catch the exception instead and complete the task
with it: a ``GLib.Error`` as it is, any other exception as
``Exo.ResourceError.FAILED`` (retryable) whose message is
``"<ExceptionType>: <message>"`` (at most 1 KiB, valid UTF-8: a lone
surrogate is backslash-escaped; ``repr()`` if ``str()`` raises, the type's
name if both do).  The attempt fails with that error, and
retries and supervision go on as for an implementation in C.  The traceback
goes to the log once, as a warning in the domain ``Exo-Python`` with the
field ``EXO_RESOURCE_ID``, cut at 8 KiB (saying so), and the frames'
locals are cleared.

An exception raised after the task was completed can only be logged (the
task's error is the first result it was given).  Every ``BaseException`` is
caught, ``SystemExit`` and ``KeyboardInterrupt`` too: ``sys.exit(3)`` in a
vfunc fails that attempt with ``"SystemExit: 3"`` instead of ending the
program that hosts the plugin.

A ``do_collect_metrics`` that raises is logged the same way, and the
metrics of the class it derives from are kept.  exo-node's Python loader
sends what reaches ``sys.excepthook`` (an exception in a plugin's own GLib
callback) to the same log, naming the resource whose method raised.

They also let ``run_async``/``use_async`` take any ``func_data`` (PyGObject
wants a tuple there, because the trailing ``user_data`` is variadic).
"""

import functools
import traceback

from ..module import get_introspection_module
from gi.repository import GLib

Exo = get_introspection_module('Exo')

__all__ = []

LOG_DOMAIN = 'Exo-Python'
# The longest error message made of an exception, in bytes (the log has the
# rest), and the longest traceback logged.
_MAX_MESSAGE = 1024
_MAX_TRACEBACK = 8 * 1024

# The vfuncs whose argument is a Gio.Task the implementation must complete.
_TASK_VFUNCS = frozenset((
    'do_do_initialize',
    'do_do_cleanup',
    'do_do_check_health',
    'do_do_connect',
    'do_do_disconnect',
))


def _bounded(text, limit, note):
    """text as valid UTF-8 (a lone surrogate backslash-escaped), cut to at
    most limit bytes (on a character boundary) with note added if cut."""
    data = text.encode('utf-8', 'backslashreplace')
    if len(data) <= limit:
        return data.decode('utf-8')
    return data[:limit].decode('utf-8', 'ignore') + note


def _exc_text(exc):
    """str(exc), or repr(exc) if that raises, or '' if both do."""
    for fn in (str, repr):
        try:
            text = fn(exc)
            if isinstance(text, str):
                return text
        except BaseException:
            pass
    return ''


def _as_error(exc):
    """The GLib.Error an attempt that raised exc fails with."""
    if isinstance(exc, GLib.Error):
        message = exc.message if isinstance(exc.message, str) else ''
        safe = _bounded(message, _MAX_MESSAGE, '...')
        if safe == message and isinstance(exc.domain, str) and isinstance(exc.code, int):
            return exc
        return GLib.Error.new_literal(GLib.quark_from_string(str(exc.domain)), safe,
                                      int(exc.code))
    name = _bounded(type(exc).__name__, 128, '...')
    text = _exc_text(exc)
    message = _bounded('%s: %s' % (name, text) if text else name, _MAX_MESSAGE, '...')
    return GLib.Error.new_literal(Exo.resource_error_quark(), message,
                                  int(Exo.ResourceError.FAILED))


def _resource_id(resource):
    try:
        return resource.get_id() if isinstance(resource, Exo.Resource) else None
    except BaseException:
        return None


def _resource_in(tb):
    """The innermost Exo.Resource that is the ``self`` of a frame of tb."""
    found = None
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get('self')
        if isinstance(candidate, Exo.Resource):
            found = candidate
        tb = tb.tb_next
    return found


def _report(exc, resource, where):
    """Logs exc's traceback once, through GLib's log (so the program's own
    writer, and its rate limit, see it), without keeping its frames alive.
    Without a resource, the one whose method raised, if any, is named.
    Never raises."""
    try:
        if resource is None:
            resource = _resource_in(exc.__traceback__)
        rid = _resource_id(resource)
        try:
            text = ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        except BaseException:
            text = _exc_text(exc)
        text = _bounded(text.rstrip(), _MAX_TRACEBACK,
                        '\n[traceback cut at %d bytes]' % _MAX_TRACEBACK)
        rid = _bounded(rid, 256, '...') if rid else None
        line = '%s of %r raised: %s' % (where, rid, text) if rid else \
            '%s raised: %s' % (where, text)
        fields = {'MESSAGE': GLib.Variant('s', line)}
        if rid:
            fields['EXO_RESOURCE_ID'] = GLib.Variant('s', rid)
        GLib.log_variant(LOG_DOMAIN, GLib.LogLevelFlags.LEVEL_WARNING,
                         GLib.Variant('a{sv}', fields))
    except BaseException:
        pass
    finally:
        try:
            traceback.clear_frames(exc.__traceback__)
        except BaseException:
            pass


def _fail(task, exc, resource, where):
    _report(exc, resource, where)
    error = _as_error(exc)
    del exc
    try:
        task.return_error(error)
    except BaseException as late:    # pragma: no cover - already returned
        _report(late, resource, where)


def _guard_vfunc(vfunc):
    where = vfunc.__name__[len('do_'):]

    @functools.wraps(vfunc)
    def guarded(self, task):
        try:
            vfunc(self, task)
        except BaseException as exc:    # SystemExit too: it must not end the host
            _fail(task, exc, self, where)
    guarded._exo_guarded = True
    return guarded


def _guard_metrics(cls, vfunc):
    # A do_collect_metrics that raises: the traceback is logged with the
    # resource's id, and the metrics of the class it derives from are kept
    # (collected again: inserting a key twice keeps the last value).
    @functools.wraps(vfunc)
    def guarded(self, metrics):
        try:
            vfunc(self, metrics)
        except BaseException as exc:
            _report(exc, self, 'collect_metrics')
            del exc
            try:
                getattr(cls.__mro__[1], 'do_collect_metrics')(self, metrics)
            except BaseException as exc:
                _report(exc, self, 'collect_metrics')
    guarded._exo_guarded = True
    return guarded


def report_exception(exc, where='a callback'):
    """Logs exc's traceback as the guards do (for a program's sys.excepthook:
    exo-node's Python loader sends what PyGObject prints there)."""
    _report(exc, None, where)


def _guard_operation(func):
    if getattr(func, '_exo_guarded', False):
        return func

    @functools.wraps(func)
    def guarded(resource, cancellable, task, *func_data):
        try:
            func(resource, cancellable, task, *func_data)
        except BaseException as exc:
            _fail(task, exc, resource, 'operation')
    guarded._exo_guarded = True
    return guarded


def _as_user_data(func_data):
    if func_data is None:
        return ()
    if isinstance(func_data, tuple):
        return func_data
    return (func_data,)


def _init_subclass(cls, **kwargs):
    # Runs when a Python subclass is made, before GObjectMeta hooks its do_*
    # methods up as vfuncs.
    super(Exo.Resource, cls).__init_subclass__(**kwargs)
    for name in _TASK_VFUNCS:
        vfunc = cls.__dict__.get(name)
        if callable(vfunc) and not getattr(vfunc, '_exo_guarded', False):
            setattr(cls, name, _guard_vfunc(vfunc))
    vfunc = cls.__dict__.get('do_collect_metrics')
    if callable(vfunc) and not getattr(vfunc, '_exo_guarded', False):
        setattr(cls, 'do_collect_metrics', _guard_metrics(cls, vfunc))


def _runner(method, doc):
    def run(self, func, func_data=None, timeout_ms=0, cancellable=None, callback=None,
            *user_data):
        return method(self, _guard_operation(func), _as_user_data(func_data), timeout_ms,
                      cancellable, callback, *user_data)
    run.__name__ = method.__name__
    run.__doc__ = doc
    return run


# Patched on the introspected classes themselves (not override subclasses),
# so that every class derived from them, in the typelib or in Python, has it.
Exo.Resource.__init_subclass__ = classmethod(_init_subclass)
Exo.Resource.use_async = _runner(
    Exo.Resource.use_async,
    'use_async(self, func, func_data=None, timeout_ms=0, cancellable=None, '
    'callback=None, *user_data)')
Exo.ManagedResource.run_async = _runner(
    Exo.ManagedResource.run_async,
    'run_async(self, func, func_data=None, attempt_timeout_ms=0, cancellable=None, '
    'callback=None, *user_data)')
Exo.NetworkResource.run_async = _runner(
    Exo.NetworkResource.run_async,
    'run_async(self, func, func_data=None, attempt_timeout_ms=0, cancellable=None, '
    'callback=None, *user_data)')

# The Python loader of exo-node (src/python-loader/) checks for this, and
# sends what reaches sys.excepthook (a raising GLib callback) to the log.
Exo._exo_overrides = True
Exo._exo_report_exception = report_exception
