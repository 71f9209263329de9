# Exo.py: PyGObject overrides for libexo (the Exo-1 typelib).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Makes a Python exception in an implementation fail the attempt.

libexo hands each ``do_*`` vfunc (and each operation given to ``run_async``
or ``use_async``) a ``Gio.Task`` to complete.  When such a task is let go
uncompleted, libexo fails the attempt ("do_initialize of 'x' returned without
completing its task and without keeping a reference to it").

PyGObject, when a vfunc or callback raises, prints the exception with
``PyErr_Print()``, which also stores it in ``sys.last_traceback``: the
traceback's frames keep their locals, ``task`` among them, so the task stays
referenced until the next uncaught exception, and the attempt would wait for
ever.  The wrappers below catch the exception, print it the same way, clear
the frames' locals and return: the task is let go, and libexo fails the
attempt.

They also let ``run_async``/``use_async`` take any ``func_data`` (PyGObject
wants a tuple there, because the trailing ``user_data`` is variadic).
"""

import functools
import traceback

from ..module import get_introspection_module

Exo = get_introspection_module('Exo')

__all__ = []

# The vfuncs whose argument is a Gio.Task the implementation must complete.
_TASK_VFUNCS = frozenset((
    'do_do_initialize',
    'do_do_cleanup',
    'do_do_check_health',
    'do_do_connect',
    'do_do_disconnect',
))


def _report(exc):
    """Prints exc as PyGObject would, without keeping its frames alive."""
    traceback.print_exception(type(exc), exc, exc.__traceback__)
    traceback.clear_frames(exc.__traceback__)


def _guard_vfunc(vfunc):
    @functools.wraps(vfunc)
    def guarded(self, task):
        try:
            vfunc(self, task)
        except Exception as exc:
            _report(exc)
    guarded._exo_guarded = True
    return guarded


def _guard_operation(func):
    if getattr(func, '_exo_guarded', False):
        return func

    @functools.wraps(func)
    def guarded(resource, cancellable, task, *func_data):
        try:
            func(resource, cancellable, task, *func_data)
        except Exception as exc:
            _report(exc)
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
