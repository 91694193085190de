"""The simulator as a native backend: ``resolve(dll, symbol)`` returns the address of a C
function pointer (a ctypes CFUNCTYPE thunk) with the prototype declared in
:mod:`hcs_sandbox.sim.exports`.  The binding calls it exactly as it calls the real DLLs.

Thunks are created once per process and kept alive for its lifetime; each dispatches to the
process's :class:`~hcs_sandbox.sim.core.Simulator` at call time.

Signals (docs/simulator.md, "Signals"): a C function is never interrupted by a Python signal
handler -- CPython runs handlers on the main thread between bytecodes, so with the real DLLs a
Ctrl+C that arrives during ``HcsWaitForOperationResult`` is handled right after the call returns.
The simulator's C functions are Python code, so on the main thread a thunk stands the Python
handlers down for the length of the call (:func:`_defer`), and re-raises the signals that
arrived once ctypes has returned to the caller (:class:`_Deferred`).
"""

from __future__ import annotations

import collections
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
from hcs_sandbox.sim.state import default_state_dir

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
                    return _dispatch(dll, name, restype, args)  # no signal handler runs here
                return _dispatch_deferring(dll, name, restype, args)

            _prepare_signals()

            thunk = prototype(call)
            _thunks[key] = thunk
        return thunk


# ---- signals: no Python signal handler runs inside a simulated C function -------------------
#
# CPython's C-level signal handler only marks a signal "tripped", whichever thread the OS
# delivers it to; the Python handler runs later, on the main thread, at a bytecode boundary.
# A real DLL runs no bytecode, so a Ctrl+C during HcsWaitForOperationResult is handled right
# after the call returns.  A simulator thunk does run bytecode, so on the main thread the
# outermost thunk
#
# 1. puts :func:`_defer` in place of every Python-level handler (``signal.getsignal`` is
#    callable), which only notes the signal: a KeyboardInterrupt (or whatever a handler
#    raises) never cuts the simulator's work short or unwinds into ctypes, which would print
#    "Exception ignored on calling ctypes callback function" and return 0 (S_OK);
# 2. returns its result as a :class:`_Deferred` (an int).  ctypes converts it to the C return
#    value and drops it; its finalizer, made of C functions only (no bytecode runs on this
#    thread until the caller's next one), puts the handlers back and re-raises the noted
#    signals with ``_thread.interrupt_main(signum)`` (``PyErr_SetInterruptEx``): each handler
#    runs once, in the caller, right after the C call -- where and how often it would run
#    with the real DLLs.  A signal that comes after the thunk's last bytecode finds _defer in
#    ``signal.signal``'s own check for tripped signals while the handler is put back; _defer
#    then puts its handler back itself and trips the signal again as its frame ends.
#
# Other threads need nothing (CPython runs handlers on the main thread only), nor do nested
# calls (a library callback calling the simulator from inside a call).  Not covered: a signal
# that comes in the microseconds between the caller's last bytecode and the thunk's first (while
# ctypes enters the thunk) is handled at the thunk's entry; the default SIGINT handler's
# KeyboardInterrupt is caught there and re-raised after the call, another handler's exception
# unwinds into ctypes as before.  With several Python-level handlers, one of them whose signal
# comes while the finalizer puts the handlers back may run inside the finalizer (SIGINT's is put
# back last, so a KeyboardInterrupt never does).

_csignal: Any = None  # the C module ``_signal``: ``signal.signal``/``getsignal`` add enums
_SIGNALS: tuple[int, ...] = ()  # every signal a Python handler may be set for
_SIGINT = 2  # signal.SIGINT on every platform CPython supports
_get_ident = threading.get_ident
_main_ident = -1  # the thread CPython runs signal handlers on (set by _prepare_signals)
_interrupt_main: Any = None
_getsignal: Any = None
_setsignal: Any = None
_depth = 0  # simulator calls in progress on the main thread (nested ones > 1)
_pending: list[int] = []  # signals _defer noted, in the order they came
_late: list[bool] = []  # non-empty: _defer notes signals even outside a call (slow finalizer)
_saved: dict[int, Any] = {}  # signal -> the handler _defer stands in for
_scan: list[Any] = [None, ()]  # [handlers last seen, ((signal, handler), ...) to stand in for]
_fast: list[Any] = [None, None]  # [(signal, handler), its _Deferred class]: the last one only


def _prepare_signals() -> None:
    """Look up what the deferral needs, once (on the first thunk: nothing at import time)."""
    global _csignal, _SIGNALS, _interrupt_main, _main_ident, _getsignal, _setsignal
    if _csignal is not None:
        return
    import _thread
    import os
    import signal

    _main_ident = threading.main_thread().ident or -1
    if hasattr(os, "register_at_fork"):  # the forking thread is the child's main thread
        os.register_at_fork(after_in_child=_forked)
    uncatchable = {getattr(signal, n) for n in ("SIGKILL", "SIGSTOP") if hasattr(signal, n)}
    _SIGNALS = tuple(int(s) for s in signal.valid_signals() if s not in uncatchable)
    _interrupt_main = _thread.interrupt_main
    csignal = importlib.import_module("_signal")
    _getsignal, _setsignal = csignal.getsignal, csignal.signal
    _csignal = csignal


def _forked() -> None:
    global _main_ident, _depth
    _main_ident, _depth = _get_ident(), 0


class _Step:
    """An object whose finalizer calls ``finish()``: ``__del__`` is a property, so CPython
    calls the partial it returns directly, with no Python frame (no bytecode, no signal
    handler) in between."""

    __slots__ = ("_finish",)
    __del__ = property(operator.attrgetter("_finish"))

    def __init__(self, finish: Any) -> None:
        self._finish = finish


class _Deferred(int):
    """The result of a thunk that stood in for one handler: its class's ``_finish`` puts that
    handler back (one ``signal.signal`` call) when ctypes drops the converted result."""

    __slots__ = ()
    __del__ = property(operator.attrgetter("_finish"))


class _DeferredSteps(int):
    """The result of a thunk that stood in for several handlers, or noted signals: dropping
    it drops ``steps`` (a tuple of :class:`_Step`, finalized last to first), each finalized on
    its own so one that fails does not stop the others."""

    steps: tuple[_Step, ...]


def _defer(signum: int, frame: Any) -> None:
    """The handler that stands in for the Python-level ones during a simulator call."""
    if _depth or _late:
        if signum not in _pending:  # tripped once until handled, as in CPython
            _pending.append(signum)
        return
    # After the call (a finalizer is putting the handlers back), or left in place: put this
    # signal's handler back and trip the signal again as this frame ends, so that handler
    # runs at the caller's next bytecode.
    handler = _saved.get(signum)
    if handler is None:
        return
    _token = _Step(functools.partial(_interrupt_main, signum))  # trips when this frame ends
    _csignal.signal(signum, handler)


def _stand_in() -> tuple[tuple[int, Any], ...]:
    """Put :func:`_defer` in place of every Python-level handler; returns what it replaced
    (SIGINT last: it is put back last)."""
    getsignal, setsignal = _csignal.getsignal, _csignal.signal
    while True:
        swaps: tuple[tuple[int, Any], ...] = ()
        done = 0
        try:
            handlers = list(map(getsignal, _SIGNALS))
            if handlers != _scan[0]:
                found = [
                    (s, _saved[s] if h is _defer else h)
                    for s, h in zip(_SIGNALS, handlers, strict=True)
                    if callable(h) and (h is not _defer or s in _saved)
                ]
                found.sort(key=lambda pair: pair[0] == _SIGINT)
                _scan[:] = [handlers, tuple(found)]
            swaps = _scan[1]
            for signum, handler in swaps:
                _saved[signum] = handler
                setsignal(signum, _defer)  # first runs the handlers of signals already tripped
                done += 1
            return swaps
        except BaseException as exc:
            if _default_sigint(exc):
                continue
            _put_back(swaps[:done])
            raise


def _default_sigint(exc: BaseException) -> bool:
    """Whether ``exc`` is the default SIGINT handler's KeyboardInterrupt, raised in a thunk
    before _defer stood in (so before any simulator work); if so it is noted, to be raised
    again after the call.  Another handler may do more than raise, so it is not run twice:
    its exception unwinds into ctypes, as it always did."""
    if not isinstance(exc, KeyboardInterrupt):
        return False
    if _saved.get(_SIGINT, _getsignal(_SIGINT)) is not _csignal.default_int_handler:
        return False
    if _SIGINT not in _pending:
        _pending.append(_SIGINT)
    return True


def _put_back(swaps: tuple[tuple[int, Any], ...]) -> None:
    """Put the handlers back after a thunk's entry failed (a handler's exception)."""
    global _depth
    _depth -= 1
    for signum, handler in swaps:
        _csignal.signal(signum, handler)
    _pending.clear()


def _fast_class(swap: tuple[int, Any]) -> type[int]:
    """The :class:`_Deferred` class that puts back ``swap``'s handler (one for the last
    ``swap`` only: a handler is not kept alive by a cache)."""
    if _fast[0] is not swap:
        # staticmethod: read through the class, a bare partial becomes a method descriptor
        # in later Pythons (3.13 warns).
        finish = staticmethod(functools.partial(_csignal.signal, *swap))
        _fast[:] = [swap, type("_Deferred", (_Deferred,), {"__slots__": (), "_finish": finish})]
    cls: type[int] = _fast[1]
    return cls


def _steps(swaps: tuple[tuple[int, Any], ...], put_back: Any) -> tuple[Any, ...]:
    """The slow finalizer's steps, last first (a tuple drops its items last to first): put the
    handlers back (``put_back``, a :class:`_Deferred`, does it for one; else SIGINT's last),
    re-raise the noted signals, forget them, stop noting them."""
    setsignal = _csignal.signal
    if put_back is None:
        put_back = tuple(_Step(functools.partial(setsignal, s, h)) for s, h in swaps)
    return (
        _Step(_late.clear),
        _Step(_pending.clear),
        _Step(functools.partial(collections.deque, map(_interrupt_main, _pending), 0)),
        put_back,
    )


def _dispatch_deferring(dll: str, name: str, restype: Any, args: tuple[Any, ...]) -> Any:
    global _depth
    _depth += 1
    try:  # the common case inline: the handlers are as they were last time
        same = list(map(_getsignal, _SIGNALS)) == _scan[0]
        if same:
            for signum, _handler in _scan[1]:
                _setsignal(signum, _defer)  # first runs the handlers of signals already tripped
    except BaseException as exc:  # a handler ran before _defer stood in: see _stand_in
        if not _default_sigint(exc):
            _put_back(_scan[1])
            raise
        same = False
    swaps: tuple[tuple[int, Any], ...] = _scan[1] if same else _stand_in()
    try:
        result = _dispatch(dll, name, restype, args)
        if result is None:  # void, or a NULL pointer
            result = 0
        deferred: Any = result
        if len(swaps) == 1:
            cls = _fast[1] if _fast[0] is swaps[0] else _fast_class(swaps[0])
            deferred = cls(result)
        if _pending or len(swaps) > 1:  # (a signal noted from here on is still re-raised)
            _late.append(True)
            slow = _DeferredSteps(result)
            slow.steps = _steps(swaps, deferred if len(swaps) == 1 else None)
            deferred = slow
    except BaseException:
        _put_back(swaps)
        _late.clear()
        raise
    # From the test of _pending to the C caller: no call, so no bytecode boundary at which a
    # handler could run; a signal that comes now is found by the finalizer (see _defer).
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
        if self.simulator.state_dir != target:
            self.simulator.set_state_dir(target)

    @property
    def identity(self) -> str:
        """``simulator:<state directory>``: two simulator directories are two hosts."""
        return "simulator:" + os.path.normcase(os.path.abspath(self.simulator.state_dir))

    def program_data_dir(self) -> str:
        """The simulated host's ``%ProgramData%`` (with a fake Windows Sandbox base image);
        the sandbox layer asks for it (sim/programdata.py)."""
        from hcs_sandbox.sim.programdata import ensure_program_data

        return str(ensure_program_data(self.simulator.state_dir))

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
