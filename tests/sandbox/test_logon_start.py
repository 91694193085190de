"""``Sandbox.start`` returns once the logon command runs in the guest (or starting it failed or
gave up, logged): nothing of it depends on a background thread that a process ending right
after ``start`` would never run.  Waiting for its end stays in the background."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox.sandbox import logon
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector

CONNECT_FAILED = 0x80370108  # HCS_E_CONNECT_FAILED (HCSHResult.md)


def _share_names(sim: Any, sb: Sandbox) -> list[str]:
    record = sim.store.read("systems", sb.system_id)
    return [s["Name"] for s in record.get("Shares") or []]


def _processes_created(sim: Any) -> int:
    return int(sim.calls().get("HcsCreateProcess", 0))


def _until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_start_returns_once_the_command_runs_in_the_guest(sim: Any) -> None:
    spec = SandboxSpec(name="sync", logon_command="cmd /c echo hi & ping -n 2 127.0.0.1 >nul")
    with Sandbox.run(spec) as sb:
        # At once, without joining anything: the share is there, the process was created
        # and the log says so; only its end is awaited in the background.
        assert _processes_created(sim) == 1
        assert "logon command started: cmd /c echo hi" in sb.logs()
        assert logon.LOG_SHARE in _share_names(sim, sb)
        assert sb.logon_error is None
        thread = sb._logon_thread
        assert thread is not None
        assert thread.is_alive()  # the ping takes a second
        thread.join(15)
        assert "logon command exited with code 0" in sb.logs()
        assert logon.LOG_SHARE not in _share_names(sim, sb)  # the starter saw the end


def test_progress_tells_the_logon_steps_and_the_wait(sim: Any) -> None:
    sim.inject("HcsCreateProcess", hresult=CONNECT_FAILED, times=1)
    seen: list[str] = []
    spec = SandboxSpec(name="told", logon_command="cmd /c echo hi")
    with Sandbox.run(spec, progress=seen.append) as sb:
        assert "starting the logon command" in seen
        assert any(s.startswith("waiting for the guest to run the logon command (") for s in seen)
        assert seen[-1].endswith("up to 180 s)")
        assert "logon command started" in sb.logs()
        assert sb._logon_thread is not None
        sb._logon_thread.join(15)


def test_closing_the_object_right_after_start_loses_nothing(sim: Any, world: Inspector) -> None:
    sb = Sandbox.create(
        SandboxSpec(
            name="closed", logon_command="cmd /c echo one & ping -n 2 127.0.0.1 >nul & echo two"
        )
    )
    try:
        sb.start()
        thread = sb._logon_thread
        sb.close()  # the API user is done with this object; the command still runs
        assert thread is not None
        thread.join(15)
        assert not thread.is_alive()
        text = Sandbox.get("closed").logs()
        assert "logon command started" in text
        assert (
            "logon command exited with code 0" in text
            or "finished with exit code 0 (seen by the guest)" in text
        )
        assert text.split("---- logon command output ----\n")[1].split() == ["one", "two"]
        # The share's removal needed the closed handle: it stays until the VM stops.
        assert logon.LOG_SHARE in _share_names(sim, sb)
        assert sb._system is None  # nothing re-opened a handle behind the closed object
    finally:
        Sandbox.get("closed").remove(force=True)
    world.assert_nothing_left()


def test_ctrl_c_while_waiting_for_the_guest(sim: Any, world: Inspector) -> None:
    sim.inject("HcsCreateProcess", hresult=CONNECT_FAILED, times=1000)

    def interrupt(step: str) -> None:
        if step.startswith("waiting for the guest"):
            raise KeyboardInterrupt

    sb = Sandbox.create(SandboxSpec(name="intr", logon_command="cmd /c echo hi"))
    try:
        with pytest.raises(KeyboardInterrupt):
            sb.start(progress=interrupt)
        # The sandbox itself started; its logon command did not, and its share is gone.
        assert sb.state == "running"
        assert "logon command not started: interrupted" in sb.logs()
        assert logon.LOG_SHARE not in _share_names(sim, sb)
        assert sb._logon_thread is None
    finally:
        sb.remove(force=True)
    world.assert_nothing_left()


def test_ctrl_c_after_the_command_was_created_ends_it(sim: Any, world: Inspector) -> None:
    """An interrupt after the process's creation, before start() returned: the start it
    belonged to failed, so the command is ended, not left running unwatched."""
    sb = Sandbox.create(SandboxSpec(name="late", logon_command="timeout /t -1"))
    real_log_line = sb._log_line

    def log_line(text: str) -> None:
        if text.startswith("logon command started"):
            raise KeyboardInterrupt
        real_log_line(text)

    sb._log_line = log_line  # type: ignore[method-assign]
    try:
        with pytest.raises(KeyboardInterrupt):
            sb.start()
        assert _processes_created(sim) == 1
        assert sim.leaks().get("process", 0) == 0  # its handle was closed...
        assert all(p.exited.is_set() for p in sim._processes.values())  # ...and it ended
        assert "logon command not started: interrupted" in sb.logs()
        assert logon.LOG_SHARE not in _share_names(sim, sb)
        assert sb._logon_thread is None
    finally:
        sb.remove(force=True)
    world.assert_nothing_left()


def test_a_start_that_gives_up_says_why_at_once(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logon, "READY_TIMEOUT", 0.2)
    monkeypatch.setattr(logon, "_RETRY_EVERY", 0.05)
    sim.inject("HcsCreateProcess", hresult=CONNECT_FAILED, times=1000)
    spec = SandboxSpec(name="never", logon_command="cmd /c echo x")
    with Sandbox.run(spec) as sb:
        assert sb._logon_thread is None
        assert sb.logon_error is not None
        assert "HCS_E_CONNECT_FAILED" in sb.logon_error
        assert "logon command not started" in sb.logs()
        assert logon.LOG_SHARE not in _share_names(sim, sb)


def test_no_logon_command_no_error() -> None:
    with Sandbox.run(SandboxSpec(name="plain")) as sb:
        assert sb.logon_error is None
        assert sb._logon_thread is None
