"""The simulator as a native backend: ``resolve(dll, symbol)`` returns the address of a C
function pointer (a ctypes CFUNCTYPE thunk) with the prototype declared in
:mod:`hcs_sandbox.sim.exports`.  The binding calls it exactly as it calls the real DLLs.

Thunks are created once per process and kept alive for its lifetime; each dispatches to the
process's :class:`~hcs_sandbox.sim.core.Simulator` at call time.

Signals (docs/simulator.md, "Signals"): a C function is never interrupted by a Python signal
handler -- CPython runs handlers on the main thread between bytecodes, so with the real DLLs a
Ctrl+C that arrives during ``HcsWaitForOperationResult`` is handled right after the call returns.
The simulator's C functions are Python code, so on the main thread a thunk stands SIGINT's
Python handler down for the length of the call (:func:`_defer`), and re-raises a SIGINT that
arrived once ctypes has returned to the caller (:class:`_Deferred`).  Other signals' handlers
are left alone.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import operator
import os
import threading
from typing import Any

from hcs_sandbox import sim as sim_package
from hcs_sandbox.native.loader import NativeUnavailable
from hcs_sandbox.sim import hresults as H
from hcs_sandbox.sim.exports import EXPORTS
from hcs_sandbox.sim.state import default_state_dir, ensure_private_dir

__all__ = ["SimulatorBackend"]

_thunks: dict[tuple[str, str], Any] = {}
_thunks_lock = threading.Lock()

# HCN functions without a trailing ``PWSTR* ErrorRecord`` (HcnClose*.md,
# HcnRegisterServiceCallback.md, HcnUnregisterServiceCallback.md).
_HCN_NO_ERROR_RECORD = {
    "HcnCloseNetwork",
    "HcnCloseEndpoint",
    "HcnRegisterServiceCallback",
    "HcnUnregisterServiceCallback",
}

# Synchronous functions that use an HCN or virtual-disk handle, with the position of that
# handle among their arguments (HcnModify*.md, HcnQuery*Properties.md, HcnCreateEndpoint.md;
# virtdisk AttachVirtualDisk / DetachVirtualDisk; HcsFormatWritableLayerVhd.md,
# HcsGetLayerVhdMountPath.md, HcsSetupBaseOSLayer.md).  The call counts as in flight on that
# handle from entry (before its latency) to return; closing the handle meanwhile is a
# violation (Simulator.begin_use / _closing).
HANDLE_ARGS = {
    "HcnModifyNetwork": 0,
    "HcnQueryNetworkProperties": 0,
    "HcnCreateEndpoint": 0,
    "HcnModifyEndpoint": 0,
    "HcnQueryEndpointProperties": 0,
    "AttachVirtualDisk": 0,
    "DetachVirtualDisk": 0,
    "HcsFormatWritableLayerVhd": 0,
    "HcsGetLayerVhdMountPath": 0,
    "HcsSetupBaseOSLayer": 1,
}


def _dispatch(dll: str, name: str, restype: Any, args: tuple[Any, ...]) -> Any:
    position = HANDLE_ARGS.get(name)
    if position is None:
        return _dispatch_call(dll, name, restype, args)
    sim = sim_package.current_simulator() or sim_package.get_simulator()
    handle = args[position]
    sim.begin_use(handle, name)
    try:
        return _dispatch_call(dll, name, restype, args)
    finally:
        sim.end_use(handle, name)


def _dispatch_call(dll: str, name: str, restype: Any, args: tuple[Any, ...]) -> Any:
    from hcs_sandbox.sim.core import _Failure  # imported by the first call (sys.modules after)

    sim = sim_package.current_simulator() or sim_package.get_simulator()
    try:
        if dll == "computenetwork.dll":
            injected = sim.sync_fault(name)  # HCN calls are synchronous: count, delay, fault
            if injected is not None:
                raise _Failure(injected, f"{name}: injected fault")
        result = getattr(sim, name)(*args)
        if dll == "computenetwork.dll" and name not in _HCN_NO_ERROR_RECORD and args[-1]:
            args[-1][0] = None  # success: no ErrorRecord
    except _Failure as failure:
        if dll == "computenetwork.dll" and name not in _HCN_NO_ERROR_RECORD:
            result = sim.hcn_error(args[-1], failure, name)
        else:
            result = failure.hr
    except BaseException as exc:  # a simulator bug must not unwind into C
        sim.violation(f"internal simulator error in {dll}!{name}: {exc!r}")
        result = H.E_FAIL
    if restype is ctypes.c_int32 and isinstance(result, int):
        return H.signed(result)
    if restype is None:
        return None
    return result


def _thunk(dll: str, name: str) -> Any:
    key = (dll, name)
    with _thunks_lock:
        thunk = _thunks.get(key)
        if thunk is None:
            restype, argtypes = EXPORTS[key]
            prototype = ctypes.CFUNCTYPE(restype, *argtypes)

            def call(*args: Any) -> Any:
                if _get_ident() != _main_ident or _depth:
                    return _dispatch(dll, name, restype, args)  # no SIGINT handler runs here
                return _dispatch_deferring(dll, name, restype, args)

            _prepare_signals(call.__code__)

            thunk = prototype(call)
            _thunks[key] = thunk
        return thunk


# ---- signals: SIGINT's Python handler never runs inside a simulated C function --------------
#
# CPython's C-level signal handler only marks a signal "tripped", whichever thread the OS
# delivers it to; the Python handler runs later, on the main thread, at a bytecode boundary.
# A real DLL runs no bytecode, so a Ctrl+C during HcsWaitForOperationResult is handled right
# after the call returns.  A simulator thunk does run bytecode, so on the main thread the
# outermost thunk
#
# 1. puts :func:`_defer` in place of SIGINT's Python handler (whichever it is: the default
#    one, the CLI's, asyncio's), which only notes the signal: a KeyboardInterrupt never cuts
#    the simulator's work short or unwinds into ctypes (which would print "Exception ignored
#    on calling ctypes callback function" and return 0, S_OK);
# 2. returns its result as a :class:`_Deferred` (an int).  ctypes converts it to the C return
#    value and drops it; its finalizer, made of C functions only (no bytecode runs on this
#    thread until the caller's next one), puts the handler back and, if a SIGINT was noted,
#    trips SIGINT again with ``_thread.interrupt_main`` -- with ``signal.set_wakeup_fd``'s
#    descriptor unset meanwhile, as the OS signal already wrote its byte there (asyncio's
#    ``loop.add_signal_handler`` runs its callback once per byte).  The handler runs once, in
#    the caller, right after the C call: where and how often it would run with the real DLLs.
#    A SIGINT that comes after the thunk's last bytecode finds _defer in ``signal.signal``'s
#    own check for tripped signals while the handler is put back; _defer then puts the
#    handler back itself and trips SIGINT again as its frame ends.
#
# Only SIGINT: other signals' handlers may run inside simulator code, as they always did (at
# a bytecode boundary of the simulator, or in the finalizer's ``signal.signal``); an exception
# one raises there is lost (E_FAIL and a violation, or "Exception ignored").  Other threads
# need nothing (CPython runs handlers on the main thread only), nor do nested calls (a library
# callback calling the simulator from inside a call).
#
# The entry window: a SIGINT tripped before the thunk stands in for the handler is handled at
# the thunk's first bytecode.  ctypes releases the GIL for the foreign call, and the thunk
# waits for it before its first bytecode, so the window lasts as long as another thread holds
# the GIL (up to the 5 ms switch interval), not microseconds: a Ctrl+C sent while the main
# thread makes short calls and another thread runs often lands there.  The default handler's
# KeyboardInterrupt would then unwind into ctypes ("Exception ignored ..."), the call would
# return 0 without running, and the Ctrl+C would be lost; :func:`_unraisable` (chained into
# ``sys.unraisablehook``) catches exactly that case and trips SIGINT again, so the
# KeyboardInterrupt is raised in the caller, before the bogus result is used.  Another SIGINT
# handler that runs there (or raises) is not run twice: its exception goes to ctypes as it
# always did.

_csignal: Any = None  # the C module ``_signal``: ``signal.signal``/``getsignal`` add enums
_SIGINT = 2  # signal.SIGINT on every platform CPython supports
_get_ident = threading.get_ident
_main_ident = -1  # the thread CPython runs signal handlers on (set by _prepare_signals)
_call_code: Any = None  # the code of every thunk's ``call`` (to recognise it in a traceback)
_interrupt_main: Any = None
_getsignal: Any = None
_setsignal: Any = None
_set_wakeup_fd: Any = None
_previous_hook: list[Any] = [None]  # the sys.unraisablehook _unraisable chains to
_depth = 0  # simulator calls in progress on the main thread (nested ones > 1)
_pending: list[bool] = []  # non-empty: _defer noted a SIGINT; the slow finalizer re-raises it
_saved: list[Any] = [None]  # SIGINT's handler that _defer stands in for
_fast: list[Any] = [None, None]  # [handler, its _Deferred class]: the last one only


def _prepare_signals(call_code: Any) -> None:
    """Look up what the deferral needs, once (on the first thunk: nothing at import time)."""
    global _csignal, _call_code, _interrupt_main, _main_ident, _getsignal, _setsignal
    global _set_wakeup_fd
    if _csignal is not None:
        return
    import _thread
    import sys

    _main_ident = threading.main_thread().ident or -1
    if hasattr(os, "register_at_fork"):  # the forking thread is the child's main thread
        os.register_at_fork(after_in_child=_forked)
    _call_code = call_code
    _interrupt_main = _thread.interrupt_main
    csignal = importlib.import_module("_signal")
    _getsignal, _setsignal = csignal.getsignal, csignal.signal
    _set_wakeup_fd = csignal.set_wakeup_fd
    _previous_hook[0] = sys.unraisablehook
    sys.unraisablehook = _unraisable
    _csignal = csignal


def _forked() -> None:
    """In a child forked by another thread while the main thread was in a call (that call is
    not in the child): put SIGINT's handler back and forget a noted SIGINT (CPython forgets
    the child's tripped signals too)."""
    global _main_ident, _depth
    if _get_ident() == _main_ident:
        return  # forked by the main thread: the child returns from its calls as the parent
    _main_ident, _depth = _get_ident(), 0
    _pending.clear()
    if _getsignal(_SIGINT) is _defer:
        _setsignal(_SIGINT, _saved[0])


class _Step:
    """An object whose finalizer calls ``finish()``: ``__del__`` is a property, so CPython
    calls the partial it returns directly, with no Python frame (no bytecode, no signal
    handler) in between."""

    __slots__ = ("_finish",)
    __del__ = property(operator.attrgetter("_finish"))

    def __init__(self, finish: Any) -> None:
        self._finish = finish


class _Deferred(int):
    """The result of a thunk with no SIGINT noted: its class's ``_finish`` puts SIGINT's
    handler back (one ``signal.signal`` call) when ctypes drops the converted result."""

    __slots__ = ()
    __del__ = property(operator.attrgetter("_finish"))


class _DeferredSteps(int):
    """The result of a thunk that noted a SIGINT: dropping it drops ``steps`` (a tuple of
    :class:`_Step`, finalized last to first), each finalized on its own so one that fails
    does not stop the others."""

    steps: tuple[_Step, ...]


def _retrip() -> tuple[_Step, ...]:
    """Steps that trip SIGINT again, last first (a tuple drops its items last to first), with
    ``set_wakeup_fd``'s descriptor unset meanwhile: the OS signal wrote its byte there already
    (``PyErr_SetInterruptEx`` writes one more).  Caveat: the descriptor is set back with the
    default ``warn_on_full_buffer=True`` (CPython cannot read the flag back)."""
    fd = _set_wakeup_fd(-1)
    _set_wakeup_fd(fd)
    trip = _Step(functools.partial(_interrupt_main, _SIGINT))
    if fd == -1:
        return (trip,)
    return (
        _Step(functools.partial(_set_wakeup_fd, fd)),
        trip,
        _Step(functools.partial(_set_wakeup_fd, -1)),
    )


def _defer(signum: int, frame: Any) -> None:
    """SIGINT's handler during a simulator call."""
    if _depth or _pending:  # in a call, or before the slow finalizer re-raises it
        if not _pending:  # tripped once until handled, as in CPython
            _pending.append(True)
        return
    # After the call (a finalizer is putting the handler back), or left in place: put the
    # handler back and trip SIGINT again as this frame ends, so it runs at the caller's next
    # bytecode.
    handler = _saved[0]
    if handler is None:
        return
    _token = _retrip()
    _setsignal(_SIGINT, handler)


def _unraisable(info: Any) -> None:
    """``sys.unraisablehook`` (chained): a KeyboardInterrupt of the default SIGINT handler
    that unwound out of a thunk on the main thread (the entry window) is not printed; SIGINT
    is tripped again as this frame ends, so it is raised in the caller right after the call."""
    tb = info.exc_traceback
    if (
        tb is not None
        and tb.tb_frame.f_code is _call_code
        and isinstance(info.exc_value, KeyboardInterrupt)
        and _get_ident() == _main_ident
        and _getsignal(_SIGINT) is _csignal.default_int_handler
    ):
        _token = _retrip()
        return
    _previous_hook[0](info)


def _fast_class(handler: Any) -> type[int]:
    """The :class:`_Deferred` class that puts ``handler`` back (one for the last handler
    only: a handler is not kept alive by a cache)."""
    if _fast[0] is not handler:
        # staticmethod: read through the class, a bare partial becomes a method descriptor
        # in later Pythons (3.13 warns).
        finish = staticmethod(functools.partial(_setsignal, _SIGINT, handler))
        _fast[:] = [handler, type("_Deferred", (_Deferred,), {"__slots__": (), "_finish": finish})]
    cls: type[int] = _fast[1]
    return cls


def _dispatch_deferring(dll: str, name: str, restype: Any, args: tuple[Any, ...]) -> Any:
    global _depth
    handler = _getsignal(_SIGINT)
    if handler is _defer:  # left in place (putting it back failed): the saved one is SIGINT's
        handler = _saved[0]
    elif not callable(handler):  # SIG_DFL, SIG_IGN: no Python handler to keep out
        return _dispatch(dll, name, restype, args)
    _saved[0] = handler
    _depth += 1
    try:
        _setsignal(_SIGINT, _defer)  # first runs the handlers of signals already tripped
        result = _dispatch(dll, name, restype, args)
        if result is None:  # void, or a NULL pointer
            result = 0
        if _pending:  # (a SIGINT noted from here on is still re-raised: see _defer)
            deferred: Any = _DeferredSteps(result)
            put_back = _Step(functools.partial(_setsignal, _SIGINT, handler))
            deferred.steps = (_Step(_pending.clear), *_retrip(), put_back)
        else:
            cls = _fast[1] if _fast[0] is handler else _fast_class(handler)
            deferred = cls(result)
    except BaseException:  # another signal's handler raised: put SIGINT's back, re-raise both
        _depth -= 1
        _token = _retrip() if _pending else ()  # trips once the traceback lets go of it
        _pending.clear()
        if _getsignal(_SIGINT) is _defer:
            _setsignal(_SIGINT, handler)
        raise
    # From the test of _pending to the C caller: no call, so no bytecode boundary at which a
    # handler could run; a SIGINT that comes now is found by the finalizer (see _defer).
    _depth -= 1
    return deferred


class SimulatorBackend:
    """The backend ``hcs_sandbox.native.loader`` uses when the simulator is requested."""

    name = "simulator"
    simulated = True

    def __init__(self, state_dir: str | None = None) -> None:
        from hcs_sandbox.sim import get_simulator

        self.simulator = get_simulator()
        # Switch the state store only when the directory differs: a switch throws away the
        # store's lock-fd pool and its "ready" flags.
        target = state_dir or default_state_dir()
        if os.path.isdir(target):  # owner-only: an open one of ours is tightened
            try:
                ensure_private_dir(target)
            except PermissionError as exc:  # another user's: refused (one line, no traceback)
                raise NativeUnavailable(
                    str(exc).split(": use ", 1)[0],
                    remedy="use a folder of your own: HCS_SANDBOX_SIMULATOR=/absolute/dir",
                ) from exc
        if self.simulator.state_dir != target:
            self.simulator.set_state_dir(target)

    @property
    def identity(self) -> str:
        """``simulator:<state directory>``: two simulator directories are two hosts."""
        return "simulator:" + os.path.normcase(os.path.abspath(self.simulator.state_dir))

    def host_folders(self) -> tuple[str, ...]:
        """The simulated host's own folder (as given and as its real path): no sandbox may
        map it, as none may map ``C:\\ProgramData`` on Windows (``sandbox/files.py``
        ``protected_folders``)."""
        text = os.path.abspath(self.simulator.state_dir)
        return tuple(dict.fromkeys((text, os.path.realpath(text))))

    def program_data_dir(self) -> str:
        """The simulated host's ``%ProgramData%`` (with a fake Windows Sandbox base image);
        the sandbox layer asks for it (sim/programdata.py)."""
        from hcs_sandbox.sim.programdata import ensure_program_data

        return str(ensure_program_data(self.simulator.state_dir))

    def windows_build(self) -> int:
        """The simulated host's Windows build, which the fake base image's kernel carries
        (sim/programdata.py); the sandbox layer checks the base image against it."""
        from hcs_sandbox.sim.programdata import simulated_windows_build

        return simulated_windows_build()

    def resolve(self, dll: str, symbol: str) -> int:
        key = (dll.lower(), symbol)
        if key not in EXPORTS:
            known = {d for d, _ in EXPORTS}
            if key[0] not in known:
                raise NativeUnavailable(
                    f"HCS simulator: no DLL named {dll}",
                    remedy=f"the simulator provides {', '.join(sorted(known))}",
                )
            raise NativeUnavailable(f"HCS unavailable on this host: {dll} has no export {symbol}")
        if self.simulator.is_hidden(*key):
            raise NativeUnavailable(
                f"HCS unavailable on this host: {dll} has no export {symbol}",
                remedy="this Windows build is too old for this feature (simulated: the export "
                "was hidden with Simulator.hide_export)",
            )
        self.simulator.used = True
        address = ctypes.cast(_thunk(*key), ctypes.c_void_p).value
        assert address
        return address
