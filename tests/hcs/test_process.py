"""Process: pipes, exit codes, stdin, terminate, signal, modify, open."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.hcs.process import Process
from hcs_sandbox.hcs.system import ComputeSystem

MakeSystem = Callable[..., ComputeSystem]


def params(command: str, **extra: Any) -> dict[str, Any]:
    """ProcessParameters (SchemaReference.md; hcsshim schema2/process_parameters.go)."""
    return {
        "CommandLine": command,
        "CreateStdInPipe": True,
        "CreateStdOutPipe": True,
        "CreateStdErrPipe": True,
        **extra,
    }


@pytest.fixture
def running(make_system: MakeSystem) -> ComputeSystem:
    return make_system(start=True)


def test_echo_and_exit_code(running: ComputeSystem) -> None:
    with running.create_process(params("cmd /c echo hello")) as proc:
        assert proc.pid > 0
        assert proc.stdout is not None
        out = proc.stdout.read()
        assert proc.wait(10) == 0
    assert b"hello" in out
    assert proc.closed
    assert proc.stdout.closed


def test_nonzero_exit_and_stderr(running: ComputeSystem) -> None:
    with running.create_process(params("cmd /c echo oops 1>&2 & exit /b 3")) as proc:
        assert proc.stderr is not None
        assert proc.stdout is not None
        err = proc.stderr.read()
        proc.stdout.read()
        assert proc.wait(10) == 3
        assert proc.exited
        assert proc.exit_status is not None
        assert proc.exit_status.get("ExitCode") == 3
    assert b"oops" in err


def test_stdin_via_more(running: ComputeSystem) -> None:
    with running.create_process(params("more")) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(b"line one\r\nline two\r\n")
        proc.close_stdin()
        assert proc.stdin.closed
        out = proc.stdout.read()
        assert proc.wait(10) == 0
    assert b"line one" in out
    assert b"line two" in out


def test_terminate_long_running(running: ComputeSystem) -> None:
    with running.create_process(params("ping -n 100 127.0.0.1")) as proc:
        time.sleep(0.05)
        assert not proc.exited
        assert proc.terminate() is True
        proc.wait(10)
        assert proc.exited
        assert proc.terminate() is False  # already stopped is not an error (hcsshim Kill)


def test_signal_ctrl_c(running: ComputeSystem) -> None:
    with running.create_process(params("ping -n 100 127.0.0.1")) as proc:
        proc.signal({"Signal": "CtrlC"})
        code = proc.wait(10)
    assert code != 0


def test_wait_timeout(running: ComputeSystem) -> None:
    with running.create_process(params("ping -n 100 127.0.0.1")) as proc:
        with pytest.raises(errors.OperationTimeoutError):
            proc.wait(0.05)
        proc.terminate()
        proc.wait(10)


def test_properties_info_and_open(running: ComputeSystem) -> None:
    with running.create_process(params("ping -n 100 127.0.0.1")) as proc:
        status = proc.properties()
        assert status.get("ProcessId") == proc.pid
        assert status.get("Exited") is False
        assert proc.info().process_id == proc.pid
        with running.open_process(proc.pid) as other:
            assert other.pid == proc.pid
            assert other.stdout is None
            other.terminate()
            assert other.wait(10) is not None
        proc.wait(10)


def test_console_size(running: ComputeSystem) -> None:
    tty = params("cmd", EmulateConsole=True, ConsoleSize=[25, 80], CreateStdErrPipe=False)
    with running.create_process(tty) as proc:
        proc.resize_console(120, 40)
        proc.terminate()
        proc.wait(10)


def test_create_process_without_guest_connection(make_system: MakeSystem) -> None:
    system = make_system(start=True, guest=False)
    with pytest.raises(errors.HcsError) as info:
        system.create_process(params("cmd /c echo hi"))
    assert info.value.function == "HcsCreateProcess"


def test_create_process_in_created_system_fails(make_system: MakeSystem) -> None:
    system = make_system()
    with pytest.raises(errors.HcsError):
        system.create_process(params("cmd /c echo hi"))


def test_process_fault_on_create(running: ComputeSystem, sim: Any) -> None:
    sim.inject("HcsCreateProcess", hresult=0x80370108, where="result")
    with pytest.raises(errors.ConnectFailedError):
        running.create_process(params("cmd /c echo hi"))


def test_process_create_timeout_reaps_handles(running: ComputeSystem, sim: Any) -> None:
    from hcs_sandbox.hcs import operation

    sim.set_latency("HcsCreateProcess", 0.4)
    with pytest.raises(errors.OperationTimeoutError):
        running.create_process(params("cmd /c echo late"), timeout=0.05)
    assert operation.wait_abandoned(5)  # late pipes and process handle closed by the reaper


def test_process_finalizer(running: ComputeSystem) -> None:
    import gc

    proc: Process | None = running.create_process(params("cmd /c echo x"))
    assert proc is not None
    proc.wait(10)
    proc = None
    gc.collect()
    # (the leak fixture checks that the process handle and pipes were closed)


def test_closed_process_rejects_calls(running: ComputeSystem) -> None:
    proc = running.create_process(params("cmd /c echo x"))
    proc.wait(10)
    proc.close()
    proc.close()
    with pytest.raises(errors.HcsError, match="after it was closed"):
        proc.properties()


def test_process_fault_at_call(running: ComputeSystem, sim: Any) -> None:
    """A rejected HcsCreateProcess reads the operation's result with
    HcsGetOperationResultAndProcessInfo (hcsshim runProcessOperation) and raises."""
    sim.inject("HcsCreateProcess", hresult=0x8037010D, where="call")
    with pytest.raises(errors.InvalidJsonError, match="HcsCreateProcess"):
        running.create_process(params("cmd /c echo hi"))


def test_wait_native_optional(running: ComputeSystem) -> None:
    """HcsWaitForProcessExit exists from Windows 10 2104 only: it works, or it says so."""
    from hcs_sandbox.native.loader import NativeUnavailable, get_backend

    with running.create_process(params("cmd /c exit /b 7")) as proc:
        try:
            get_backend().resolve("computecore.dll", "HcsWaitForProcessExit")
        except NativeUnavailable:
            with pytest.raises(errors.HcsUnavailableError, match="HcsWaitForProcessExit"):
                proc.wait_native(5)
            assert proc.wait(10) == 7
        else:
            assert proc.wait_native(5) == 7


def test_pipes_not_requested_are_none(running: ComputeSystem) -> None:
    only_out = {"CommandLine": "cmd /c echo solo", "CreateStdOutPipe": True}
    with running.create_process(only_out) as proc:
        assert proc.stdin is None
        assert proc.stderr is None
        assert proc.stdout is not None
        assert b"solo" in proc.stdout.read()
        assert proc.wait(10) == 0
