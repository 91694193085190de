"""Session 17 (QA s17): reads that make no state directory (agent F8), an explicitly empty
``state_dir`` (tester F7), handles a Sandbox keeps closed quietly when it is collected
(agent F4) and exec when the sandbox stops under the command (tester F5)."""

from __future__ import annotations

import gc
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hcs_sandbox
from hcs_sandbox import Sandbox, SandboxSpec, errors
from hcs_sandbox.sandbox import paths

# -- reads make no state directory (agent F8) -----------------------------------------------


def _reads(where: str | Path | None) -> None:
    assert Sandbox.list(state_dir=where) == []
    assert Sandbox.list(all=False, state_dir=where) == []
    with pytest.raises(errors.SandboxNotFoundError) as info:
        Sandbox.get("web", state_dir=where)
    assert "does not exist" in info.value.message
    assert paths.state_dir_text(where) in info.value.message
    report = hcs_sandbox.reconcile(state_dir=where)
    assert report == type(report)()
    pruned = hcs_sandbox.prune(state_dir=where)
    assert pruned == type(pruned)()
    dry = hcs_sandbox.prune(state_dir=where, dry_run=True)
    assert dry == type(dry)(dry_run=True)


def test_reads_of_a_missing_state_dir_make_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "state"
    _reads(missing)
    _reads(str(missing))
    assert not (tmp_path / "typo").exists()


def test_reads_of_a_missing_relative_state_dir_make_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    _reads("relative")
    monkeypatch.setenv(paths.ENV_STATE_DIR, "relstate")
    _reads(None)
    assert os.listdir(work) == []


def test_reads_see_what_a_create_made(state_dir: Path) -> None:
    assert not state_dir.exists()
    assert Sandbox.list() == []
    assert not state_dir.exists()
    sb = Sandbox.create(SandboxSpec(name="made"))
    try:
        assert state_dir.is_dir()  # the create made it
        if sys.platform != "win32":
            assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
        assert [s.name for s in Sandbox.list()] == ["made"]
        assert Sandbox.get("made").id == sb.id
        assert hcs_sandbox.reconcile().records == 1
    finally:
        sb.remove(force=True)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_a_read_still_checks_an_existing_state_dir(tmp_path: Path) -> None:
    """An existing state directory open to others is tightened by a read, as before."""
    state = tmp_path / "open"
    state.mkdir()
    os.chmod(state, 0o755)
    assert Sandbox.list(state_dir=state) == []
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX files")
def test_a_read_refuses_a_state_dir_that_is_a_file(tmp_path: Path) -> None:
    state = tmp_path / "file"
    state.write_text("x")
    with pytest.raises(errors.StoreError, match="not a directory"):
        Sandbox.list(state_dir=state)
    with pytest.raises(errors.StoreError, match="not a directory"):
        hcs_sandbox.prune(state_dir=state)


def _unreachable(monkeypatch: pytest.MonkeyPatch, target: Path) -> None:
    """``target`` exists but its parent may not be searched: lstat and stat of it fail with
    EACCES, as for a user other than root (the chmod test below needs one)."""
    for name in ("lstat", "stat"):
        real = getattr(os, name)

        def denied(p: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            if os.fspath(p) == str(target):
                raise PermissionError(13, "Permission denied", os.fspath(p))
            return _real(p, *args, **kwargs)

        monkeypatch.setattr(os, name, denied)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX store checks")
def test_a_state_dir_that_cannot_be_reached_is_not_called_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only "not found" is a missing state directory (review RV-misc R1): a permission error
    reaches the existing checks and their message, for every read."""
    state = tmp_path / "locked" / "state"
    state.mkdir(parents=True, mode=0o700)
    _unreachable(monkeypatch, state)
    for read in (
        lambda: Sandbox.list(state_dir=state),
        lambda: Sandbox.get("web", state_dir=state),
        lambda: hcs_sandbox.reconcile(state_dir=state),
        lambda: hcs_sandbox.prune(state_dir=state),
        lambda: paths.existing_state_dir_text(state),
    ):
        with pytest.raises(errors.StoreError) as info:
            read()
        assert "Permission denied" in info.value.message
        assert "does not exist" not in info.value.message


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may open any folder"
)
def test_a_state_dir_under_a_closed_parent_is_not_called_missing(tmp_path: Path) -> None:
    """As above with a real folder closed to its owner (not for root, as in test_review_rv20)."""
    parent = tmp_path / "locked"
    state = parent / "state"
    state.mkdir(parents=True, mode=0o700)
    parent.chmod(0)
    try:
        with pytest.raises(errors.StoreError, match="Permission denied"):
            Sandbox.list(state_dir=state)
        with pytest.raises(errors.StoreError, match="Permission denied"):
            hcs_sandbox.prune(state_dir=state)
    finally:
        parent.chmod(0o700)


@pytest.mark.skipif(sys.platform == "win32", reason="Windows reports it as not found")
def test_a_state_dir_under_a_file_is_missing(tmp_path: Path) -> None:
    """A parent that is a file (ENOTDIR): the folder cannot exist, so reads see none."""
    (tmp_path / "file").write_text("x")
    _reads(tmp_path / "file" / "state")
    assert (tmp_path / "file").read_text() == "x"


# -- an explicitly empty state_dir (tester F7) -------------------------------------------


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_state_dir_argument_is_a_spec_error(state_dir: Path, value: str) -> None:
    for call in (
        lambda: Sandbox.list(state_dir=value),
        lambda: Sandbox.get("x", state_dir=value),
        lambda: Sandbox.create(SandboxSpec(), state_dir=value),
        lambda: hcs_sandbox.prune(state_dir=value),
    ):
        with pytest.raises(errors.SpecError) as info:
            call()
        assert info.value.field == "state_dir"
        assert "empty" in info.value.message
    assert not state_dir.exists()


# -- handles a Sandbox keeps are closed quietly when it is collected (agent F4) -------------

_NOT_CLOSED = "was not closed"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_listed_objects_that_read_state_close_quietly(
    caplog: pytest.LogCaptureFixture, state_dir: Path
) -> None:
    made = [Sandbox.create(SandboxSpec(name=f"keep{i}")) for i in range(3)]
    for sb in made:
        sb.start()
    del sb
    caplog.set_level(logging.DEBUG, logger="hcs_sandbox")
    made.clear()  # the objects that made and started them, never closed
    gc.collect()
    listed = Sandbox.list()
    assert [(s.name, s.state) for s in listed] == [(f"keep{i}", "running") for i in range(3)]
    assert all(s._system is not None for s in listed)  # each read opened a handle
    same = Sandbox.get("KEEP0")
    assert same.state == "running"
    same.close()
    assert same.state == "running"  # used after close: a new handle, quiet too
    del same
    listed.clear()
    gc.collect()
    assert [w for w in _warnings(caplog) if _NOT_CLOSED in w] == []
    collected = [r for r in caplog.records if "collected; closing its handle" in r.getMessage()]
    assert len(collected) == 3 + 3 + 1  # debug lines: the safety net did close them
    for name in ("keep0", "keep1", "keep2"):
        Sandbox.get(name).remove(force=True)


def test_a_terminate_on_close_sandbox_collected_still_warns(
    caplog: pytest.LogCaptureFixture, state_dir: Path
) -> None:
    """Its last handle's close makes HCS terminate it: dropping the object is worth a
    warning (the sandbox dies with it)."""
    sb = Sandbox.create(SandboxSpec(name="toc"), terminate_on_close=True)
    sb.start()
    ident = sb.system_id
    caplog.set_level(logging.WARNING, logger="hcs_sandbox")
    del sb
    gc.collect()
    assert [w for w in _warnings(caplog) if _NOT_CLOSED in w] == [
        f"compute system {ident!r} was not closed; closing its handle"
    ]
    Sandbox.get("toc").remove(force=True)


def test_a_compute_system_never_closed_still_warns(
    caplog: pytest.LogCaptureFixture, state_dir: Path
) -> None:
    """The hcs layer's safety net is unchanged for a handle no owner releases."""
    from hcs_sandbox.hcs.system import ComputeSystem

    sb = Sandbox.create(SandboxSpec(name="raw"))
    try:
        caplog.set_level(logging.WARNING, logger="hcs_sandbox")
        system = ComputeSystem.open(sb.system_id)
        del system
        gc.collect()
        assert [w for w in _warnings(caplog) if _NOT_CLOSED in w] == [
            f"compute system {sb.system_id!r} was not closed; closing its handle"
        ]
    finally:
        sb.remove(force=True)


def test_the_documented_idioms_print_no_warning_at_exit(
    sim_state_dir: Path, state_dir: Path
) -> None:
    """The api.md example and the agent's loop, each in its own process: the objects
    still alive at exit are closed by the safety net (atexit) without a word."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HCS_SANDBOX_")}
    env.update(HCS_SANDBOX_SIMULATOR=str(sim_state_dir), HCS_SANDBOX_STATE_DIR=str(state_dir))
    scripts = [
        "from hcs_sandbox import Sandbox, SandboxSpec\n"
        "sb = Sandbox.create(SandboxSpec(name='web', persistence='persistent'))\n"
        "sb.start()\nsb.stop(timeout=30)\nsb.start()\n"
        "same = Sandbox.get('WEB')\nprint(same.state)\n",
        "from hcs_sandbox import Sandbox\nfor s in Sandbox.list():\n    print(s.name, s.state)\n",
        "from hcs_sandbox import Sandbox\nSandbox.get('web').remove(force=True)\n",
    ]
    outputs = []
    for script in scripts:
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert _NOT_CLOSED not in done.stderr, done.stderr
        outputs.append(done.stdout)
    assert outputs[:2] == ["running\n", "web running\n"]


# -- exec when the sandbox stops under the command (tester F5) ---------------------------

_PING = ["cmd", "/c", "ping", "-n", "30", "127.0.0.1"]


def _later(seconds: float, action: Callable[[], object]) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("how", ["kill", "remove"])
def test_exec_raises_when_the_sandbox_stops_under_the_command(state_dir: Path, how: str) -> None:
    sb = Sandbox.create(SandboxSpec(name="w2"))
    sb.start()
    other = Sandbox.get("w2")  # another object (its own handle), as another process
    stop = other.kill if how == "kill" else (lambda: other.remove(force=True))
    killer = _later(0.5, stop)
    began = time.monotonic()
    with pytest.raises(errors.SandboxExitedError) as info:
        sb.exec(_PING, timeout=60)
    killer.join()
    assert time.monotonic() - began < 20  # ended by the stop, not by ping's 30 s
    exc = info.value
    assert isinstance(exc, errors.SandboxStateError)
    assert exc.state == "stopped"
    assert exc.exit_code == 125
    assert exc.process_exit_code == 1  # what the simulator reports for a killed process
    assert b"Pinging 127.0.0.1" in exc.stdout  # the output until then
    assert "sandbox 'w2' stopped while the command" in exc.message
    assert "or the command shut it down" in exc.message  # review RV-misc R3
    assert "\n" not in str(exc)
    if how == "kill":
        sb.remove(force=True)
    other.close()
    sb.close()


def test_spawn_wait_raises_when_the_sandbox_stops(state_dir: Path) -> None:
    sb = Sandbox.create(SandboxSpec(name="w3"))
    sb.start()
    try:
        with sb.spawn(_PING) as proc:
            proc.close_stdin()
            assert proc.read(timeout=20) is not None  # it runs
            Sandbox.get("w3").kill()
            with pytest.raises(errors.SandboxExitedError):
                proc.wait(timeout=20)
            with pytest.raises(errors.SandboxExitedError):  # asked again: the same answer
                proc.wait(timeout=1)
            assert proc.poll() == 1  # the code as HCS reported it
    finally:
        sb.remove(force=True)


def test_exec_codes_of_a_running_sandbox_are_returned(state_dir: Path, sim: Any) -> None:
    """A failing command in a sandbox that runs on: its own code (one HCS query to make
    sure); a command that returned 0: no query at all."""
    with Sandbox.run(SandboxSpec(name="w4")) as sb:
        sb.exec(["cmd", "/c", "echo", "warm"], timeout=30)
        before = sim.calls().get("HcsGetComputeSystemProperties", 0)
        assert sb.exec(["cmd", "/c", "exit", "0"], timeout=30).exit_code == 0
        after_ok = sim.calls().get("HcsGetComputeSystemProperties", 0)
        assert sb.exec(["cmd", "/c", "exit", "3"], timeout=30).exit_code == 3
        after_fail = sim.calls().get("HcsGetComputeSystemProperties", 0)
    # Each exec reads the sandbox's state first (one query); the failing one asks once more.
    assert after_fail - after_ok == (after_ok - before) + 1


def test_the_librarys_own_guest_commands_keep_their_own_error(state_dir: Path) -> None:
    """cp's helpers and mapped-folder links (files._guest_run, exec_command) are not the
    user's command: a stop under them keeps their GuestCommandError (exit 1), never the
    user-command SandboxExitedError naming an internal command line (review RV-misc R2)."""
    from hcs_sandbox.sandbox import files, guest

    sb = Sandbox.create(SandboxSpec(name="w5"))
    sb.start()
    try:
        system = sb._open_system()
        assert system is not None
        other = Sandbox.get("w5")
        killer = _later(0.5, other.kill)
        with pytest.raises(guest.GuestCommandError) as info:
            files._guest_run(system, " ".join(_PING), doing="copying x", where="sandbox 'w5'")
        killer.join()
        assert not isinstance(info.value, errors.SandboxExitedError)
        assert info.value.exit_code == 1
        assert "copying x" in info.value.message
        other.close()
    finally:
        sb.remove(force=True)
        sb.close()


def test_the_librarys_own_failing_commands_ask_hcs_nothing_more(state_dir: Path, sim: Any) -> None:
    """An internal command's own non-zero code (_guest_kind's 2 and 3) costs no state query."""
    from hcs_sandbox.sandbox import guest

    with Sandbox.run(SandboxSpec(name="w6")) as sb:
        system = sb._open_system()
        assert system is not None
        before = sim.calls().get("HcsGetComputeSystemProperties", 0)
        assert guest.exec_command(system, "cmd /c exit 3", timeout=30).exit_code == 3
        assert sim.calls().get("HcsGetComputeSystemProperties", 0) == before


def test_a_stop_just_after_a_failing_command_keeps_its_code_on_the_error(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command ended by itself with 3, then the sandbox was killed before the check: it
    cannot be told from a command cut short, so the message allows for it and
    process_exit_code keeps the command's 3 (review RV-misc R3)."""
    from hcs_sandbox.sandbox import guest

    real = guest.GuestProcess._wait_exit
    killed: list[int] = []

    def wait_then_kill(self: guest.GuestProcess, timeout: float | None) -> int:
        code = real(self, timeout)
        other = Sandbox.get("w7")
        other.kill()  # another process's kill, after the exit and before the check
        other.close()
        killed.append(code)
        return code

    with Sandbox.run(SandboxSpec(name="w7")) as sb:
        monkeypatch.setattr(guest.GuestProcess, "_wait_exit", wait_then_kill)
        with pytest.raises(errors.SandboxExitedError) as info:
            sb.exec(["cmd", "/c", "exit", "3"], timeout=30)
    assert killed == [3]
    assert info.value.process_exit_code == 3
    assert "ran or just after it ended" in info.value.message
    assert "may not be the command's own" in info.value.message
