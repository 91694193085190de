"""Signals during a simulator call behave as with the real DLLs: no Python signal handler runs
inside a simulated C function; it runs once, in the caller, right after the call returns
(docs/simulator.md, "Signals").  CPython runs handlers on the main thread between bytecodes;
pytest runs these tests on the main thread."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest
from simapi import Api, vm_doc

from hcs_sandbox.sim import hresults as H

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or threading.current_thread() is not threading.main_thread(),
    reason="POSIX signals, delivered to the main thread",
)

LATENCY = 0.6  # seconds HcsCreateComputeSystem takes; the signals come during the wait


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What would be printed as "Exception ignored ..." (e.g. by ctypes for an exception that
    unwinds out of a callback)."""
    seen: list[str] = []

    def hook(info: Any) -> None:
        seen.append(f"{info.err_msg}: {info.exc_type.__name__}")

    monkeypatch.setattr(sys, "unraisablehook", hook)
    return seen


@pytest.fixture
def handlers() -> Iterator[None]:
    """Put SIGINT's and SIGUSR1's handlers back after the test."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGUSR1)}
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def _send_later(*signals: signal.Signals, delay: float = 0.15) -> threading.Thread:
    """Send ``signals`` to this process (the OS picks the thread) from another thread."""

    def send() -> None:
        time.sleep(delay)
        for s in signals:
            os.kill(os.getpid(), s)
            time.sleep(0.02)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return sender


def _sleep_while(condition: Callable[[], bool]) -> None:
    # Not Thread.join(): Python 3.11's join, interrupted, marks a live thread stopped.
    while condition():
        time.sleep(0.01)


def _start_create(api: Api, sim: Any, system_id: str) -> tuple[int, ctypes.c_void_p]:
    sim.set_latency("HcsCreateComputeSystem", LATENCY)
    op = api.HcsCreateOperation(None, None)
    handle = ctypes.c_void_p()
    hr = api.HcsCreateComputeSystem(system_id, json.dumps(vm_doc()), op, None, ctypes.byref(handle))
    assert hr == 0
    return op, handle


def _finish(api: Api, op: int, handle: ctypes.c_void_p) -> None:
    """The operation completed during the interrupted wait: its result is there at once."""
    result = ctypes.c_void_p()
    assert api.HcsGetOperationResult(op, ctypes.byref(result)) & 0xFFFFFFFF == H.S_OK
    api.take(result)
    api.HcsCloseOperation(op)
    hr, _doc = api.call("HcsTerminateComputeSystem", handle.value, None)
    assert hr == H.S_OK
    api.HcsCloseComputeSystem(handle.value)


def test_ctrl_c_during_a_wait_is_raised_in_the_caller_after_the_call(
    api: Api, sim: Any, unraisable: list[str], handlers: None
) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    op, handle = _start_create(api, sim, "sigint-wait")
    result = ctypes.c_void_p()
    sender = _send_later(signal.SIGINT)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as caught:
        api.HcsWaitForOperationResult(op, 10_000, ctypes.byref(result))
    elapsed = time.monotonic() - started
    sender.join()
    # Raised here, by the caller's next bytecode, not inside the simulator ...
    assert caught.traceback[-1].name == sys._getframe().f_code.co_name
    # ... after the call ran to its end (not cut short, not an early S_OK) ...
    assert elapsed >= LATENCY * 0.9
    assert unraisable == []
    assert sim.violations() == []
    # ... and SIGINT's handler is the one it was (asyncio and others compare it).
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    api.take(result)
    _finish(api, op, handle)


def test_a_users_handlers_run_once_each_in_the_caller(
    api: Api, sim: Any, unraisable: list[str], handlers: None
) -> None:
    ran: list[tuple[int, str]] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        ran.append((signum, frame.f_code.co_name if frame else "?"))

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGUSR1, on_signal)
    op, handle = _start_create(api, sim, "sigint-user")
    result = ctypes.c_void_p()
    sender = _send_later(signal.SIGINT, signal.SIGINT, signal.SIGUSR1)
    hr = api.HcsWaitForOperationResult(op, 10_000, ctypes.byref(result)) & 0xFFFFFFFF
    here = sys._getframe().f_code.co_name
    sender.join()
    assert hr == H.S_OK  # the call's own result
    # Two SIGINTs during one call: one run, as CPython coalesces a signal until handled.
    assert sorted(ran) == [(signal.SIGINT, here), (signal.SIGUSR1, here)]
    assert unraisable == []
    assert signal.getsignal(signal.SIGINT) is on_signal
    assert signal.getsignal(signal.SIGUSR1) is on_signal
    api.take(result)
    _finish(api, op, handle)


def test_a_handler_that_calls_the_simulator_runs_after_the_call(
    api: Api, sim: Any, unraisable: list[str], handlers: None
) -> None:
    """Like the CLI's SIGWINCH handler (which resizes a guest console): it runs once the
    interrupted call has returned, and its own call is an ordinary one."""
    seen: list[tuple[str, int]] = []

    def on_usr1(signum: int, frame: FrameType | None) -> None:
        seen.append((frame.f_code.co_name if frame else "?", api.HcsGetOperationType(op)))

    signal.signal(signal.SIGUSR1, on_usr1)
    op, handle = _start_create(api, sim, "sigint-nested")
    result = ctypes.c_void_p()
    sender = _send_later(signal.SIGUSR1)
    hr = api.HcsWaitForOperationResult(op, 10_000, ctypes.byref(result)) & 0xFFFFFFFF
    sender.join()
    assert hr == H.S_OK
    assert seen == [(sys._getframe().f_code.co_name, 1)]  # 1: HcsOperationTypeCreate
    assert unraisable == []
    assert signal.getsignal(signal.SIGUSR1) is on_usr1
    api.take(result)
    _finish(api, op, handle)


def test_a_call_on_another_thread_is_not_interrupted(
    api: Api, sim: Any, unraisable: list[str], handlers: None
) -> None:
    """CPython runs handlers on the main thread only: a call made on another thread runs to its
    end, and the main thread sees the KeyboardInterrupt wherever it is."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    op, handle = _start_create(api, sim, "sigint-thread")
    outcome: list[int] = []
    result = ctypes.c_void_p()

    def wait() -> None:
        outcome.append(api.HcsWaitForOperationResult(op, 10_000, ctypes.byref(result)))

    worker = threading.Thread(target=wait)
    worker.start()
    sender = _send_later(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        _sleep_while(worker.is_alive)  # the main thread is interrupted; the worker goes on
    worker.join()
    sender.join()
    assert outcome == [H.S_OK]
    assert unraisable == []
    api.take(result)
    _finish(api, op, handle)


def test_calls_leave_every_handler_as_it_was(api: Api, sim: Any, handlers: None) -> None:
    def mine(signum: int, frame: FrameType | None) -> None:
        raise AssertionError("no signal was sent")

    for sigint_handler in (signal.default_int_handler, mine, signal.SIG_IGN):
        signal.signal(signal.SIGINT, sigint_handler)
        signal.signal(signal.SIGUSR1, mine)
        op = api.HcsCreateOperation(None, None)
        assert api.HcsGetOperationType(op) == -1
        api.HcsCloseOperation(op)
        assert signal.getsignal(signal.SIGINT) is sigint_handler
        assert signal.getsignal(signal.SIGUSR1) is mine


def test_a_signal_found_while_the_handler_is_put_back_runs_in_the_caller(
    handlers: None,
) -> None:
    """A signal that comes after a thunk's last bytecode is found by ``signal.signal``'s check
    for tripped signals while the thunk's result is dropped; the stand-in then puts the handler
    back and trips the signal again, so the handler runs at the caller's next bytecode."""
    from hcs_sandbox.sim import backend

    backend._prepare_signals()
    ran: list[str] = []

    def on_usr1(signum: int, frame: FrameType | None) -> None:
        ran.append(frame.f_code.co_name if frame else "?")

    signal.signal(signal.SIGUSR1, on_usr1)
    backend._saved[signal.SIGUSR1] = on_usr1
    signal.signal(signal.SIGUSR1, backend._defer)
    call: Callable[[int, Any], None] = backend._defer
    call(signal.SIGUSR1, None)  # as CPython would, from the check in signal.signal
    assert ran == [sys._getframe().f_code.co_name]
    assert signal.getsignal(signal.SIGUSR1) is on_usr1
