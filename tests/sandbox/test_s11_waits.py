"""Round s11, task "win" (review RV29 finding 3): the library's long waits are cut into
slices of at most ``SLICE`` seconds, so that Ctrl+C interrupts them on Windows before
Python 3.14, where a blocked lock acquire -- ``Queue.get``, ``Event.wait`` -- keeps the
KeyboardInterrupt out until the wait ends (CPython gh-125541; on Linux, where these tests
run, a signal interrupts the wait anyway, so a SIGINT test would pass before the fix too).
The fakes below record the timeouts each wait asked for.  Each test fails on the code
before the change (1843ecf)."""

from __future__ import annotations

import queue
from typing import Any

import pytest

from hcs_sandbox.hcs import _slices
from hcs_sandbox.hcs._slices import SLICE, slices
from hcs_sandbox.hcs._watch import Watch
from hcs_sandbox.hcs.events import Event
from hcs_sandbox.native.types import HcsEventType
from hcs_sandbox.sandbox.guest import GuestProcess
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec


class Scripted:
    """A wait that records its timeouts: each call takes the next answer of ``script``
    (``None``: nothing came in time); a call without a timeout (the code before the fix)
    gets the awaited thing at once, so that the test ends and says what was asked."""

    def __init__(self, script: list[Any], awaited: Any) -> None:
        self.script = script
        self.awaited = awaited
        self.timeouts: list[float | None] = []

    def next(self, timeout: float | None) -> Any:
        self.timeouts.append(timeout)
        if timeout is None:
            return self.awaited
        return self.script.pop(0)


class ScriptedQueue(Scripted):
    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        answer = self.next(timeout)
        if answer is None:
            raise queue.Empty
        return answer


class ScriptedEvent(Scripted):
    def wait(self, timeout: float | None = None) -> bool:
        return bool(self.next(timeout))

    def set(self) -> None:
        pass


def test_slices_cut_a_wait_and_add_up_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(_slices.time, "monotonic", lambda: now[0])
    parts = []
    for part in slices(0.6):
        parts.append(part)
        now[0] += part  # the wait took all of its slice: nothing came
    assert parts == pytest.approx([SLICE, SLICE, 0.6 - 2 * SLICE])
    assert list(slices(0)) == [0.0]  # one look, no wait
    assert list(slices(-1.0)) == [0.0]
    endless = slices(None)
    assert [next(endless) for _ in range(100)] == [SLICE] * 100


def test_watch_wait_without_a_timeout_waits_in_slices() -> None:
    watch = Watch(HcsEventType.SYSTEM_EXITED)
    done = ScriptedEvent([None, None, True], awaited=True)
    watch._done = done  # type: ignore[assignment]
    assert watch.wait(None) is True  # the exit came during the third slice
    assert done.timeouts == [SLICE, SLICE, SLICE]


def test_watch_wait_with_a_long_timeout_waits_in_slices() -> None:
    # ComputeSystem.wait(30) in stop, Sandbox.wait's 365 days in "run" and "wait": a timed
    # Event.wait is no more interruptible than an untimed one.
    watch = Watch(HcsEventType.SYSTEM_EXITED)
    done = ScriptedEvent([None, True], awaited=True)
    watch._done = done  # type: ignore[assignment]
    assert watch.wait(30.0) is True
    assert done.timeouts == [SLICE, SLICE]
    quick = ScriptedEvent([None], awaited=True)
    watch._done = quick  # type: ignore[assignment]
    assert watch.wait(0) is False
    assert quick.timeouts == [0.0]


class SilentProcess:
    """What GuestProcess needs of an hcs Process, without pipes (no reader threads)."""

    pid = 4242
    stdout = None
    stderr = None


def test_guest_process_read_of_a_silent_process_waits_in_slices() -> None:
    # exec without --timeout: _pump -> GuestProcess.read(timeout=None) (RV29 finding 3).
    proc = GuestProcess(SilentProcess(), command_line="cmd /c pause")  # type: ignore[arg-type]
    proc._open_streams = 1
    output = ScriptedQueue([None, None, ("stdout", b"hi")], awaited=("stdout", b"hi"))
    proc._queue = output  # type: ignore[assignment]
    chunk = proc.read()
    assert chunk is not None
    assert chunk.data == b"hi"
    assert output.timeouts == [SLICE, SLICE, SLICE]


def test_sandbox_events_without_a_timeout_wait_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    from hcs_sandbox.hcs.system import ComputeSystem

    exited = Event(HcsEventType.SYSTEM_EXITED, "{}")
    events = ScriptedQueue([None, None, exited], awaited=exited)
    sb = Sandbox.create(SandboxSpec(name="slices"))
    try:
        sb.start()
        with monkeypatch.context() as patch:
            patch.setattr(ComputeSystem, "events", lambda self: events)
            assert [e.type for e in sb.events()] == ["SystemExited"]
        assert events.timeouts == [SLICE, SLICE, SLICE]
    finally:
        sb.remove(force=True)
