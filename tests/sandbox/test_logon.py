"""The logon command: runs once after start, output to the log, retries while the guest
connection is not up."""

from __future__ import annotations

from typing import Any

from hcs_sandbox.sandbox import logon
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec


def _wait(sb: Sandbox) -> None:
    thread = getattr(sb, "_logon_thread", None)
    assert thread is not None
    thread.join(20)
    assert not thread.is_alive()


def test_logon_output_goes_to_the_log() -> None:
    spec = SandboxSpec(name="lo", logon_command="cmd /c echo first & echo second 1>&2 & exit 2")
    with Sandbox.run(spec) as sb:
        _wait(sb)
        text = sb.logs()
        assert "logon command started" in text
        assert "logon command exited with code 2" in text
        output = text.split("---- logon command output ----\n")[1]
        assert "first" in output
        assert "second" in output
        assert logon.logon_log_path(sb).exists()


def test_no_logon_command_no_thread() -> None:
    with Sandbox.run(SandboxSpec(name="plain")) as sb:
        assert getattr(sb, "_logon_thread", "missing") is None
        assert "logon" not in sb.logs()


def test_logon_waits_for_the_guest_connection(sim: Any) -> None:
    # The guest agent is "not up" for the first two attempts.
    sim.inject("HcsCreateProcess", hresult=0x80370108, times=2)  # HCS_E_CONNECT_FAILED
    spec = SandboxSpec(name="slow", logon_command="cmd /c echo finally")
    with Sandbox.run(spec) as sb:
        _wait(sb)
        assert "logon command exited with code 0" in sb.logs()
        assert "finally" in sb.logs()


def test_logon_gives_up_and_says_why(sim: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(logon, "READY_TIMEOUT", 0.3)
    monkeypatch.setattr(logon, "_RETRY_EVERY", 0.05)
    spec = SandboxSpec(name="never", logon_command="cmd /c echo x")
    sb = Sandbox.create(spec)
    try:
        sim.inject("HcsCreateProcess", hresult=0x80370108, times=1000)
        sb.start()  # returns once it gave up: no thread waits for a command
        assert getattr(sb, "_logon_thread", "missing") is None
        assert sb.logon_error is not None
        assert "HCS_E_CONNECT_FAILED" in sb.logon_error
        assert "logon command not started" in sb.logs()
        assert "HCS_E_CONNECT_FAILED" in sb.logs()
    finally:
        sb.remove(force=True)
