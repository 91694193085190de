"""exec / spawn through the simulator: output, exit codes, large and binary output, stdin,
timeouts and kill, signals, a TTY session, concurrency, guest-connection failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox.run(SandboxSpec(name="ex", environment={"FROM_SPEC": "spec"})) as sandbox:
        yield sandbox


def test_output_and_exit_code(sb: Sandbox) -> None:
    result = sb.exec("cmd /c echo out & echo err 1>&2 & exit 7")
    assert result.exit_code == 7
    assert not result.ok
    assert result.stdout_text == "out \n"
    assert result.stderr_text == "err \n"
    assert result.duration >= 0


def test_argv_list_is_quoted(sb: Sandbox) -> None:
    result = sb.exec(["cmd", "/c", "echo", "a b"])
    assert result.command_line == 'cmd /c echo "a b"'
    assert result.ok


def test_unknown_program_is_9009(sb: Sandbox) -> None:
    result = sb.exec("no-such-program.exe")
    assert result.exit_code == 9009
    assert "not recognized" in result.stderr_text


def test_large_output_both_streams_without_deadlock(sb: Sandbox) -> None:
    # 10 MB on stdout while stderr also gets 2 MB: both pipes drained concurrently.
    result = sb.exec("cmd /c bytes 10000000 & bytes 2000000 1>&2", timeout=60)
    assert result.ok
    assert len(result.stdout) == 10_000_000
    assert len(result.stderr) == 2_000_000
    pattern = bytes(range(256))
    assert result.stdout[:512] == pattern * 2  # binary bytes intact (no newline translation)
    assert result.stdout[-10:] == (pattern * (10_000_000 // 256 + 1))[:10_000_000][-10:]


def test_stdin_is_delivered_and_closed(sb: Sandbox) -> None:
    data = b"line one\r\n" + bytes(range(1, 256)) + b"\r\n" * 3
    result = sb.exec("more", stdin=data)
    assert result.ok
    assert result.stdout == data


def test_environment_workdir_user(sb: Sandbox) -> None:
    sb.exec("cmd /c mkdir C:\\work").check()
    result = sb.exec(
        "cmd /c echo %FROM_SPEC% %MINE% & cd & whoami",
        env={"MINE": "mine"},
        workdir="C:\\work",
        user="sandbox\\someone",
    )
    lines = [line.rstrip() for line in result.stdout_text.splitlines()]
    assert lines == ["spec mine", "C:\\work", "sandbox\\someone"]


def test_bad_working_directory_is_an_hcs_error(sb: Sandbox) -> None:
    with pytest.raises(errors.HcsError):
        sb.exec("cmd /c ver", workdir="C:\\does\\not\\exist")


def test_timeout_kills_and_keeps_partial_output(sb: Sandbox) -> None:
    started = time.monotonic()
    with pytest.raises(errors.ExecTimeoutError) as info:
        sb.exec("cmd /c echo begin & timeout /t 60", timeout=0.5)
    assert time.monotonic() - started < 10
    assert info.value.exit_code == 124
    assert info.value.killed
    assert b"begin" in info.value.stdout
    assert "did not finish within 0.5 s" in str(info.value)


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_bad_timeout(sb: Sandbox, timeout: float) -> None:
    with pytest.raises(errors.SpecError):
        sb.exec("cmd /c ver", timeout=timeout)


def test_spawn_streams_chunks_as_they_arrive(sb: Sandbox) -> None:
    with sb.spawn("ping -n 3 host") as proc:
        stamps: list[float] = []
        texts: list[bytes] = []
        for chunk in proc:
            assert chunk.stream == "stdout"
            stamps.append(time.monotonic())
            texts.append(chunk.data)
        assert proc.wait(10) == 0
    assert b"".join(texts).count(b"Reply from host") == 3
    # ping sleeps 1 s between replies: output came in more than one piece, over time.
    assert len(stamps) >= 2
    assert stamps[-1] - stamps[0] > 0.5


def test_spawn_tags_stderr(sb: Sandbox) -> None:
    with sb.spawn("cmd /c echo a & echo b 1>&2") as proc:
        chunks = list(proc)
        assert proc.wait(10) == 0
    streams = {c.stream: c.data for c in chunks}
    assert streams == {"stdout": b"a \r\n", "stderr": b"b \r\n"}


def test_spawn_write_and_close_stdin(sb: Sandbox) -> None:
    with sb.spawn("more") as proc:
        proc.write(b"hello ")
        proc.write(b"world")
        proc.close_stdin()
        proc.close_stdin()  # idempotent
        assert b"".join(c.data for c in proc) == b"hello world"
        assert proc.wait(10) == 0
        assert proc.exit_code == 0
        with pytest.raises(errors.SandboxStateError):
            proc.write(b"late")


def test_kill(sb: Sandbox) -> None:
    proc = sb.spawn("timeout /t 60")
    try:
        assert proc.poll() is None
        assert proc.kill() is True
        assert proc.wait(10) != 0
        assert proc.kill() is False  # already stopped
    finally:
        proc.close()


def test_signal_ctrl_c(sb: Sandbox) -> None:
    with sb.spawn("timeout /t 60") as proc:
        proc.signal("CtrlC")
        code = proc.wait(10)
    assert code == 0xC000013A  # STATUS_CONTROL_C_EXIT
    with sb.spawn("cmd /c ver") as proc, pytest.raises(errors.SpecError):
        proc.signal("SIGKILL")


def test_wait_timeout_does_not_kill(sb: Sandbox) -> None:
    with sb.spawn("timeout /t 60") as proc:
        with pytest.raises(errors.ExecTimeoutError) as info:
            proc.wait(0.2)
        assert not info.value.killed
        assert proc.poll() is None
    # close() ended it


def test_close_ends_a_running_process(sb: Sandbox, sim: Any) -> None:
    proc = sb.spawn("timeout /t 60")
    proc.close()
    proc.close()
    assert proc.process.closed


def test_tty_session(sb: Sandbox) -> None:
    with sb.spawn("cmd", tty=True, console_size=(100, 30)) as proc:
        assert proc.tty
        proc.write(b"echo hi\r\n")
        proc.resize(132, 43)
        proc.write(b"echo oops 1>&2\r\n")
        proc.write(b"exit 4\r\n")
        out, err = proc.communicate(timeout=10)
        assert proc.wait(10) == 4
    assert out == b"hi\r\noops\r\n" or out.replace(b" ", b"") == b"hi\r\noops\r\n"
    assert err == b""  # EmulateConsole: one stream


def test_resize_needs_a_tty(sb: Sandbox) -> None:
    with sb.spawn("more") as proc, pytest.raises(errors.SandboxStateError):
        proc.resize(80, 25)


def test_exec_needs_a_running_sandbox() -> None:
    sb = Sandbox.create(SandboxSpec(name="notyet"))
    try:
        with pytest.raises(errors.SandboxStateError, match="it is created"):
            sb.exec("cmd /c ver")
        sb.start()
        sb.pause()
        with pytest.raises(errors.SandboxStateError, match="resume"):
            sb.spawn("cmd /c ver")
    finally:
        sb.remove(force=True)


def test_guest_connection_failure_is_reported(sb: Sandbox, sim: Any) -> None:
    sim.inject("HcsCreateProcess", hresult=0x80370108)  # HCS_E_CONNECT_FAILED
    with pytest.raises(errors.ConnectFailedError, match="guest connection failed") as info:
        sb.exec("cmd /c ver")
    assert info.value.name == "HCS_E_CONNECT_FAILED"
    assert sb.exec("cmd /c ver").ok  # one-shot fault


def test_concurrent_execs_in_20_sandboxes() -> None:
    count = 20
    sandboxes = [Sandbox.create(SandboxSpec(name=f"par{i}")) for i in range(count)]
    failures: list[BaseException] = []
    outputs: dict[int, bytes] = {}
    try:
        for sandbox in sandboxes:
            sandbox.start()

        def work(i: int) -> None:
            try:
                for _ in range(3):
                    result = sandboxes[i].exec(f"cmd /c echo sandbox {i} & bytes 100000")
                    assert result.ok
                    assert len(result.stdout) == len(f"sandbox {i} \r\n") + 100000
                outputs[i] = result.stdout[:20]
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not failures, failures
        for i in range(count):
            assert outputs[i].startswith(f"sandbox {i} ".encode())
    finally:
        for sandbox in sandboxes:
            sandbox.remove(force=True)
