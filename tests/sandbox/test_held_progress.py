"""The wait for a file still held open by another process is told through ``progress``
(``Sandbox.remove``, ``prune``, a failed create's rollback): "waiting for NAME, held open by
another process (N s of 10 s): PATH" before each pause; nothing when nothing is held.

The Windows rules are emulated on any OS by ``tests/winhold.py`` (no real sleeping)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import storage
from hcs_sandbox.sandbox.maintenance import prune
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec
from winhold import Hold

if TYPE_CHECKING:
    from conftest import Inspector

DISKS = ("sandbox.vhdx", "sandbox.vmgs")


def _waiting(path: str, seconds: int) -> str:
    name = os.path.basename(path)
    return f"waiting for {name}, held open by another process ({seconds} s of 10 s): {path}"


def test_remove_tells_progress_what_it_waits_for(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = Sandbox.create(SandboxSpec(name="w1"))
    sb.start()
    vmgs = os.path.join(sb.directory, "sandbox.vmgs")
    hold = Hold(monkeypatch, DISKS, 2.0)
    seen: list[str] = []
    sb.remove(force=True, progress=seen.append)
    # One text before each pause (50 ms doubling): 0, .05, .15, .35, .75 and 1.55 s waited.
    assert hold.sleeps == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.0])
    assert seen == [_waiting(vmgs, s) for s in (0, 0, 0, 0, 0, 1)]
    world.assert_nothing_left()


def test_remove_tells_nothing_when_nothing_is_held(world: Inspector) -> None:
    sb = Sandbox.create(SandboxSpec(name="w2"))
    sb.start()
    seen: list[str] = []
    sb.remove(force=True, progress=seen.append)
    assert seen == []
    world.assert_nothing_left()


def test_a_wait_in_vain_counts_up_to_the_limit_once_for_the_sandbox(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seconds are the removal's (one HeldWait): the VMGS is waited for up to 10 s, the
    VHDX held by the same process is then tried once, without a pause or a text."""
    sb = Sandbox.create(SandboxSpec(name="w3"))
    sb.start()
    hold = Hold(monkeypatch, DISKS, None)
    seen: list[str] = []
    with pytest.raises(errors.StorageError):
        sb.remove(force=True, progress=seen.append)
    assert len(seen) == len(hold.sleeps)
    assert all("sandbox.vmgs" in text for text in seen)
    assert seen[-1].startswith(
        "waiting for sandbox.vmgs, held open by another process (9 s of 10 s): "
    )
    hold.release()


def test_a_ctrl_c_while_the_wait_is_told_ends_the_waiting(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt from ``progress`` (a Ctrl+C while the line is written) ends the
    waiting as one in the pause does (HeldWait.stop): no pause, the others one attempt."""
    sb = Sandbox.create(SandboxSpec(name="w4"))
    sb.start()
    hold = Hold(monkeypatch, DISKS, None)
    seen: list[str] = []

    def interrupted(text: str) -> None:
        seen.append(text)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sb.remove(force=True, progress=interrupted)
    assert len(seen) == 1
    assert hold.sleeps == []
    hold.release()


def test_a_ctrl_c_in_a_pause_is_as_without_progress(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = Sandbox.create(SandboxSpec(name="w5"))
    sb.start()

    def interrupt_first(seconds: float) -> None:
        if len(hold.sleeps) == 1:
            raise KeyboardInterrupt

    hold = Hold(monkeypatch, DISKS, None, on_sleep=interrupt_first)
    seen: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        sb.remove(force=True, progress=seen.append)
    assert hold.sleeps == [0.05]
    assert len(seen) == 1
    hold.release()


def test_prune_tells_progress_what_it_waits_for(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    orphan = Path(world.state) / "sandboxes" / "00000000-0000-4000-8000-000000000001"
    orphan.mkdir(parents=True)
    (orphan / "a.bin").write_bytes(b"x")
    hold = Hold(monkeypatch, ["a.bin"], 0.3)
    seen: list[str] = []
    report = prune(progress=seen.append)
    assert report.failures == []
    assert hold.sleeps == pytest.approx([0.05, 0.1, 0.2])
    # (A file inside a folder: its whole path on Windows; the name alone where rmtree
    # deletes it relative to its folder's descriptor, as on Linux.)
    assert len(seen) == 3
    for text in seen:
        assert text.startswith("waiting for a.bin, held open by another process (0 s of 10 s)")
    seen.clear()
    assert prune(progress=seen.append).failures == []
    assert seen == []


def test_a_failed_creates_rollback_tells_progress_what_it_waits_for(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, sim: object
) -> None:
    sim.inject("HcsCreateComputeSystem", where="result")  # type: ignore[attr-defined]
    hold = Hold(monkeypatch, DISKS, 0.1)
    seen: list[str] = []
    with pytest.raises(errors.HcsError, match="injected fault"):
        Sandbox.create(SandboxSpec(name="w6"), progress=seen.append)
    assert hold.sleeps == pytest.approx([0.05, 0.1])
    waits = [text for text in seen if text.startswith("waiting for")]
    assert len(waits) == 2
    assert all("sandbox.vmgs, held open by another process (0 s of 10 s): " in t for t in waits)
    assert seen[-2:] == waits  # after the steps of the create
    world.assert_nothing_left()


def test_the_text_names_the_file_and_strips_the_device_prefix() -> None:
    from winhold import windows_error

    wait = storage.HeldWait(progress=None)
    wait.left = 6.5
    exc = windows_error("\\\\?\\C:\\ProgramData\\hcs-sandbox\\sandboxes\\x\\sandbox.vhdx")
    text = storage._waiting(exc, wait)
    if os.sep == "\\":
        assert text == (
            "waiting for sandbox.vhdx, held open by another process (3 s of 10 s): "
            "C:\\ProgramData\\hcs-sandbox\\sandboxes\\x\\sandbox.vhdx"
        )
    else:  # (a POSIX basename does not split at backslashes: the name is the path)
        assert text == (
            "waiting for C:\\ProgramData\\hcs-sandbox\\sandboxes\\x\\sandbox.vhdx, held "
            "open by another process (3 s of 10 s)"
        )
    nameless = OSError(32, "held")
    assert storage._waiting(nameless, wait) == (
        "waiting for a file, held open by another process (3 s of 10 s)"
    )


def test_a_progress_callback_that_fails_is_dropped_and_the_wait_goes_on(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Review RV59 F2: an ordinary exception from ``progress`` (a bug in the callback, a
    terminal that went away: EIO) is not the file's error and does not cut the wait short:
    it is logged once, the callback is not called again, and the removal waits as it would
    without it."""
    sb = Sandbox.create(SandboxSpec(name="w7"))
    sb.start()
    hold = Hold(monkeypatch, DISKS, 2.0)
    calls: list[str] = []

    def broken(text: str) -> None:
        calls.append(text)
        raise OSError(5, "Input/output error")

    with caplog.at_level("WARNING", logger="hcs_sandbox.sandbox.storage"):
        sb.remove(force=True, progress=broken)
    assert len(calls) == 1
    assert hold.sleeps == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.0])  # waited as without
    assert [r.getMessage() for r in caplog.records] == [
        "the progress callback failed ([Errno 5] Input/output error); waiting on without it"
    ]
    world.assert_nothing_left()


def test_a_failed_creates_rollback_survives_a_failing_progress_callback(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, sim: object
) -> None:
    """Review RV59 F2: the rollback still deletes every file (it waits as without the
    callback), and the create's own error is the one raised."""
    sim.inject("HcsCreateComputeSystem", where="result")  # type: ignore[attr-defined]
    hold = Hold(monkeypatch, DISKS, 0.1)

    def broken(text: str) -> None:
        if text.startswith("waiting for"):
            raise RuntimeError("callback bug")

    with pytest.raises(errors.HcsError, match="injected fault"):
        Sandbox.create(SandboxSpec(name="w8"), progress=broken)
    assert hold.sleeps == pytest.approx([0.05, 0.1])  # it waited as without the callback
    world.assert_nothing_left()


@pytest.mark.parametrize(
    ("winerror", "expected"),
    [
        (32, "waiting for NAME, held open by another process (3 s of 10 s): PATH"),
        (5, "waiting for NAME, which may be held open by another process (3 s of 10 s): PATH"),
        (145, "waiting for the files in NAME to be let go by another process (3 s of 10 s): PATH"),
    ],
)
def test_the_text_says_what_each_windows_error_means(
    tmp_path: Path, winerror: int, expected: str
) -> None:
    """Review RV59 F3: ERROR_DIR_NOT_EMPTY names a folder whose files are held, not the
    folder as held; ERROR_ACCESS_DENIED may also be a file this account may not delete."""
    from winhold import windows_error

    wait = storage.HeldWait(progress=None)
    wait.left = 6.5
    path = str(tmp_path / "sandboxes" / "x")
    text = storage._waiting(windows_error(path, winerror), wait)
    assert text == expected.replace("NAME", "x").replace("PATH", path)


def test_sandbox_run_tells_its_progress_of_the_removals_wait(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review RV59 F1: ``Sandbox.run``'s removal at the block's end gets the run's
    ``progress``."""
    seen: list[str] = []
    with Sandbox.run(SandboxSpec(name="w9"), progress=seen.append) as sb:
        vmgs = os.path.join(sb.directory, "sandbox.vmgs")
        hold = Hold(monkeypatch, DISKS, 0.1)
    waits = [text for text in seen if text.startswith("waiting for")]
    assert waits == [_waiting(vmgs, 0)] * len(hold.sleeps)
    assert hold.sleeps
    world.assert_nothing_left()
