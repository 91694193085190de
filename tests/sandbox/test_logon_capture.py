"""Logon output captured inside the guest (a read-write log share), independent of the
process that started the sandbox; the command line that does it; safe reading."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import logon
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec

if TYPE_CHECKING:
    from conftest import Inspector

SHARE = "\\\\?\\VMSMB\\VSMB-{dcc079ae-60ba-4d07-847c-3493609c0870}\\hcs-logs"


def _until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_command_line_shape() -> None:
    line = logon.guest_command_line("echo a & echo b", SHARE)
    assert line == (
        f'cmd /c cmd /c "echo a & echo b" 1>>"{SHARE}\\logon.log" 2>&1 '
        f'&& echo ok>"{SHARE}\\logon.done"'
    )
    # Metacharacters inside the command's own quotes are escaped for the outer cmd.exe only.
    assert 'cmd /c "echo "a^&b" & ver"' in logon.guest_command_line('echo "a&b" & ver', SHARE)
    assert 'cmd /c ""C:\\x y\\t.exe" /q"' in logon.guest_command_line('"C:\\x y\\t.exe" /q', SHARE)
    with pytest.raises(errors.SpecError):
        logon.guest_command_line("ver", 'C:\\"bad')


def test_output_survives_the_starting_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The starter drops its process handle and pipes at once and never removes the share
    (what the end of 'run -d' does: the handle closes, nobody terminates the guest process):
    the guest still writes all the output and the done marker."""

    def vanish(sandbox: Sandbox, proc: Any) -> None:
        proc._process.close()  # hcs layer: close pipes and handle, no terminate
        proc._closed = True
        proc._closing.set()

    monkeypatch.setattr(logon, "_wait_in_guest", vanish)
    monkeypatch.setattr(logon, "_remove_share", lambda system: None)
    spec = SandboxSpec(
        name="detached", logon_command="cmd /c echo one & ping -n 2 127.0.0.1 >nul & echo two"
    )
    with Sandbox.run(spec) as sb:
        thread = sb._logon_thread  # type: ignore[attr-defined]
        thread.join(10)
        assert not thread.is_alive()
        # Another process (a fresh object) reads what the guest keeps writing.
        _until(lambda: "seen by the guest" in Sandbox.get("detached").logs())
        text = Sandbox.get("detached").logs()
        assert "logon command started" in text
        assert "logon command exited" not in text  # nobody waited for it here
        assert "finished with exit code 0 (seen by the guest)" in text
        output = text.split("---- logon command output ----\n")[1]
        assert output.split() == ["one", "two"]
        # The share is the guest-log folder only; the lifecycle log is in the store.
        guest_dir = logon.guest_log_dir(sb)
        assert sorted(os.listdir(guest_dir)) == ["logon.done", "logon.log"]
        assert not (guest_dir.parent.parent / "sandbox.log").exists()


def test_share_removed_when_the_starter_saw_the_end(sim: Any) -> None:
    spec = SandboxSpec(name="tidy", logon_command="cmd /c echo hi")
    with Sandbox.run(spec) as sb:
        thread = sb._logon_thread  # type: ignore[attr-defined]
        thread.join(10)
        assert "logon command exited with code 0" in sb.logs()
        system = sb._open_system()
        assert system is not None
        shares = system.properties({"PropertyTypes": []})
        assert "hcs-logs" not in str(shares)
        # A second sandbox start writes to the same log (appended), new marker.
        assert "hi" in sb.logs()


def test_failing_share_falls_back_to_pipes(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(sandbox: Sandbox) -> None:
        sandbox._log_line("logon command output: could not share the log folder (test)")

    monkeypatch.setattr(logon, "_add_share", broken)
    spec = SandboxSpec(name="pipes", logon_command="cmd /c echo via pipes & exit 3")
    with Sandbox.run(spec) as sb:
        sb._logon_thread.join(10)  # type: ignore[attr-defined]
        text = sb.logs()
        assert "could not share the log folder" in text
        assert "logon command exited with code 3" in text
        assert "via pipes" in text.split("---- logon command output ----\n")[1]


def test_reading_is_bounded_and_never_follows_links(monkeypatch: pytest.MonkeyPatch) -> None:
    sb = Sandbox.create(SandboxSpec(name="reader"))
    try:
        directory = logon.guest_log_dir(sb)
        directory.mkdir(parents=True)
        (directory / "logon.log").write_bytes(b"A" * 100 + b"tail\r\n")
        monkeypatch.setattr(logon, "MAX_SHOWN", 10)
        text = sb.logs()
        assert "only the last 10 bytes" in text
        assert text.endswith("\nAAAAtail\n")
        # The guest replaced its log with a link to a host file: not read.
        secret = directory.parent.parent / "secret.txt"
        secret.write_text("host secret", encoding="utf-8")
        (directory / "logon.log").unlink()
        (directory / "logon.log").symlink_to(secret)
        with pytest.raises(errors.StorageError) as info:
            sb.logs()
        assert "host secret" not in str(info.value)
        assert "reader" in str(info.value)
        secret.unlink()
    finally:
        sb.remove(force=True)


def test_a_removed_sandbox_ends_the_logon_thread_quietly(world: Inspector) -> None:
    import threading

    from hcs_sandbox.sandbox import logon

    sb = Sandbox.create(SandboxSpec(name="gone", logon_command="cmd /c echo hi"))
    sb.start()
    sb.remove(force=True)
    raised: list[BaseException] = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: raised.append(args.exc_value)  # type: ignore[assignment]
    try:
        thread = threading.Thread(target=logon._run, args=(sb, "cmd /c echo hi", 0.5))
        thread.start()
        thread.join(10)
    finally:
        threading.excepthook = old_hook
    assert not thread.is_alive()
    assert raised == []
    world.assert_nothing_left()
