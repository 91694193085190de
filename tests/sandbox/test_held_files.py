"""Removal while another process still holds a file open, under Windows rules (review RV31
F1, F2, F4): retried for a bounded while, then one true error; prune finishes the job.

The Windows rules are emulated on any OS by ``tests/winhold.py`` (no real sleeping)."""

from __future__ import annotations

import errno
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hcs_sandbox import errors
from hcs_sandbox.sandbox import storage
from hcs_sandbox.sandbox.maintenance import prune
from hcs_sandbox.sandbox.sandbox import Sandbox
from hcs_sandbox.sandbox.spec import SandboxSpec
from winhold import Hold, windows_error

if TYPE_CHECKING:
    from conftest import Inspector

DISKS = ("sandbox.vhdx", "sandbox.vmgs")


# ------------------------------------------------------------------ storage.remove_path


def test_a_short_hold_is_waited_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "sandbox.vhdx"
    f.write_bytes(b"x")
    hold = Hold(monkeypatch, ["sandbox.vhdx"], 2.0)
    assert storage.remove_path(f) is True
    assert not f.exists()
    # 50 ms doubling: 0.05 + 0.1 + 0.2 + 0.4 + 0.8 + 1.0 = 2.55 s of fake time
    assert hold.sleeps == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.0])
    assert len(hold.refused) == 6


def test_a_long_hold_ends_in_one_true_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "sandbox.vmgs"
    f.write_bytes(b"x")
    hold = Hold(monkeypatch, ["sandbox.vmgs"], None)
    with pytest.raises(errors.StorageError) as caught:
        storage.remove_path(f)
    assert f.exists()
    assert sum(hold.sleeps) == pytest.approx(storage.HELD_RETRY_SECONDS)
    assert max(hold.sleeps) == pytest.approx(1.0)
    exc = caught.value
    assert str(f) in exc.message
    assert "being used by another process" in exc.message
    assert exc.remedy == storage.HELD_REMEDY
    assert "antivirus" in exc.remedy
    assert "'hcs-sandbox prune'" in exc.remedy
    assert "running VM" not in str(exc)


def test_access_denied_is_retried_and_told_as_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "sandbox.vhdx"
    f.write_bytes(b"x")
    Hold(monkeypatch, ["sandbox.vhdx"], None, winerror=5)
    with pytest.raises(errors.StorageError) as caught:
        storage.remove_path(f)
    assert "Access is denied" in caught.value.message
    assert "may not delete it" in (caught.value.remedy or "")


def test_a_delete_pending_child_keeps_the_folder_a_moment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F2: ERROR_DIR_NOT_EMPTY (145) while a file in it is delete-pending: waited out."""
    folder = tmp_path / "sb"
    folder.mkdir()
    (folder / "logs").mkdir()
    hold = Hold(monkeypatch, ["sb"], 0.3, winerror=145)
    assert storage.remove_path(folder) is True
    assert not folder.exists()
    assert hold.sleeps == pytest.approx([0.05, 0.1, 0.2])


def test_other_errors_fail_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No winerror (every error off Windows) or another one: no retry, the old message."""
    f = tmp_path / "sandbox.vhdx"
    f.write_bytes(b"x")
    hold = Hold(monkeypatch, [], None)

    def refuse(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))  # type: ignore[call-overload]

    monkeypatch.setattr(os, "unlink", refuse)
    with pytest.raises(errors.StorageError) as caught:
        storage.remove_path(f)
    assert hold.sleeps == []
    assert "Permission denied" in caught.value.message

    def other_windows_error(path: object, *args: object, **kwargs: object) -> None:
        raise windows_error(path, 1224)  # ERROR_USER_MAPPED_FILE: not in HELD_WINERRORS

    monkeypatch.setattr(os, "unlink", other_windows_error)
    with pytest.raises(errors.StorageError):
        storage.remove_path(f)
    assert hold.sleeps == []


def test_the_posix_race_retry_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file written into the folder while it is removed (ENOTEMPTY, no winerror): tried
    again at once, as before, without a pause."""
    import shutil

    folder = tmp_path / "sb"
    folder.mkdir()
    (folder / "a").write_text("x")
    hold = Hold(monkeypatch, [], None)
    real = shutil.rmtree
    calls: list[int] = []

    def racing_rmtree(path: object, *args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.ENOTEMPTY, "Directory not empty", os.fspath(path))  # type: ignore[call-overload]
        real(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(shutil, "rmtree", racing_rmtree)
    assert storage.remove_path(folder) is True
    assert len(calls) == 2
    assert hold.sleeps == []


# ------------------------------------------------------------------ remove, prune


def test_remove_waits_out_the_worker_closing_its_disks(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = Sandbox.create(SandboxSpec(name="r1"))
    sb.start()
    hold = Hold(monkeypatch, DISKS, 2.0)
    sb.remove(force=True)
    assert hold.refused  # it was held at first
    world.assert_nothing_left()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's unlink says EISDIR")
def test_remove_deletes_the_files_and_folder_without_looking_first(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """s13-teardown: a sandbox's two files are unlinked at once, and its folder is
    rmdir-ed once the unlink said EISDIR: no lstat (there was one per path before)."""
    sb = Sandbox.create(SandboxSpec(name="r0"))
    sb.start()
    sb.stop()
    directory = sb.directory
    calls: list[tuple[str, str]] = []
    for name in ("lstat", "unlink", "rmdir"):
        real = getattr(os, name)

        def counted(path: object, *args: object, _real: object = real, _name: str = name) -> object:
            if os.fspath(path).startswith(directory):  # type: ignore[call-overload]
                calls.append((_name, os.path.basename(os.fspath(path))))  # type: ignore[call-overload]
            return _real(path, *args)  # type: ignore[operator]

        monkeypatch.setattr(os, name, counted)
    sb.remove()
    assert calls == [
        ("unlink", "sandbox.vmgs"),
        ("unlink", "sandbox.vhdx"),
        ("unlink", os.path.basename(directory)),
        ("rmdir", os.path.basename(directory)),
    ]
    monkeypatch.undo()
    world.assert_nothing_left()


def test_a_longer_hold_leaves_it_for_prune(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = Sandbox.create(SandboxSpec(name="r2"))
    sb.start()
    hold = Hold(monkeypatch, ["sandbox.vhdx"], None)
    with pytest.raises(errors.StorageError) as caught:
        sb.remove(force=True)
    # One wait, for the held file; the folder holding it is not tried (nor waited for)
    # again, and the VMGS is removed.
    assert sum(hold.sleeps) == pytest.approx(storage.HELD_RETRY_SECONDS)
    assert set(hold.refused) == {"sandbox.vhdx"}
    message = str(caught.value)
    assert "sandbox.vhdx" in message
    assert "antivirus" in message
    assert "running VM" not in message
    assert world.records() == ["r2:removing"]
    assert [os.path.basename(f) for f in world.files()] == [sb.id, "sandbox.vhdx"]
    assert world.systems() == []
    hold.release()
    assert prune().records == []  # while its remover (this process) lives: left to it
    _as_if_exited(world)
    report = prune()
    assert report.failures == []
    assert report.records == [f"r2 ({sb.id})"]
    world.assert_nothing_left()


def test_prune_says_each_held_file_once_in_its_own_words(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """F4: one failure per file not removed (not its folder too), no warning that repeats
    it, and a remedy that does not send prune's user to prune."""
    sb = Sandbox.create(SandboxSpec(name="p1"))
    sb.start()
    hold = Hold(monkeypatch, ["sandbox.vhdx"], None)
    with pytest.raises(errors.StorageError):
        sb.remove(force=True)
    _as_if_exited(world)
    caplog.set_level(logging.WARNING)
    report = prune()
    assert len(report.failures) == 1, report.failures
    (line,) = report.failures
    assert "sandbox.vhdx" in line
    assert "prune again once it is closed" in line
    assert "'hcs-sandbox prune'" not in line
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    hold.release()
    assert prune().failures == []
    world.assert_nothing_left()


def test_rollback_of_a_failed_create_waits_too(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, sim: object
) -> None:
    """The create's undo steps delete through remove_path: a short hold leaves nothing."""
    sim.inject("HcsCreateComputeSystem", where="result")  # type: ignore[attr-defined]
    hold = Hold(monkeypatch, DISKS, 1.0)
    with pytest.raises(errors.HcsError):
        Sandbox.create(SandboxSpec(name="c1"))
    assert hold.refused
    world.assert_nothing_left()


# ------------------------------------------------------------------ Ctrl+C, Sandbox.run


def test_ctrl_c_during_a_pause_of_a_rollback(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, sim: object
) -> None:
    """A Ctrl+C in the pause ends that undo step only: the others still run, the create's
    own error is the one raised (rollback.UndoStack), and prune finishes the rest."""
    interrupts: list[float] = []

    def interrupt_once(seconds: float) -> None:
        if not interrupts:
            interrupts.append(seconds)
            raise KeyboardInterrupt

    sim.inject("HcsCreateComputeSystem", where="result")  # type: ignore[attr-defined]
    hold = Hold(monkeypatch, ["sandbox.vmgs"], None, on_sleep=interrupt_once)
    with pytest.raises(errors.HcsError, match="injected fault"):
        Sandbox.create(SandboxSpec(name="c2"))
    assert interrupts == [0.05]  # the first pause was interrupted
    assert world.records() == []  # the record's undo step ran after it
    assert world.files()  # the held file and its folder: prune's
    hold.release()
    assert prune().failures == []
    world.assert_nothing_left()


def test_ctrl_c_during_a_pause_of_sandbox_run_still_removes(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[float] = []

    def interrupt_once(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 1:
            raise KeyboardInterrupt

    Hold(monkeypatch, ["sandbox.vmgs"], 0.5, on_sleep=interrupt_once)
    with Sandbox.run(SandboxSpec(name="k1")) as sb:
        assert sb.state == "running"
    world.assert_nothing_left()


def test_sandbox_run_keeps_the_blocks_exception(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """RV31 F1: a removal failure after the block raised is logged and noted, never raised
    in place of the block's exception."""
    hold = Hold(monkeypatch, ["sandbox.vhdx"], None)
    caplog.set_level(logging.WARNING, logger="hcs_sandbox.sandbox")
    with (
        pytest.raises(ValueError, match="my test assertion failed") as caught,
        Sandbox.run(SandboxSpec(name="u1")),
    ):
        raise ValueError("my test assertion failed")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("u1" in w and "sandbox.vhdx" in w for w in warned), warned
    if sys.version_info >= (3, 11):
        notes = caught.value.__notes__
        assert len(notes) == 1
        assert "removing sandbox 'u1'" in notes[0]
        assert "sandbox.vhdx" in notes[0]
    assert world.records() == ["u1:removing"]
    hold.release()
    _as_if_exited(world)
    assert prune().failures == []
    world.assert_nothing_left()


def test_sandbox_run_raises_the_removal_failure_after_a_clean_block(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = Hold(monkeypatch, ["sandbox.vhdx"], None)
    with (
        pytest.raises(errors.StorageError, match=r"sandbox\.vhdx"),
        Sandbox.run(SandboxSpec(name="u2")),
    ):
        pass
    hold.release()
    Sandbox.get("u2").remove(force=True)
    world.assert_nothing_left()


def test_sandbox_run_keeps_a_ctrl_c_of_the_block(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = Hold(monkeypatch, ["sandbox.vhdx"], None)
    with pytest.raises(KeyboardInterrupt), Sandbox.run(SandboxSpec(name="u3")):
        raise KeyboardInterrupt
    hold.release()
    Sandbox.get("u3").remove(force=True)
    world.assert_nothing_left()


def _as_if_exited(world: Inspector) -> None:
    """The one record's remover is gone (as after its process exited): prune judges it."""
    from hcs_sandbox.sandbox.store import open_store

    with open_store(world.state) as store:
        (record,) = store.list(all=True, kind=None)
        store.update(record.id, owner_pid=0)


# ------------------------------------------------------------------ review RV34


def test_a_held_file_inside_a_folder_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RV34 #1: the folder's deletion fails on a file in it: the message names that file."""
    folder = tmp_path / "sb"
    (folder / "transfer" / "0f0f").mkdir(parents=True)
    (folder / "transfer" / "0f0f" / "big.bin").write_bytes(b"x")
    Hold(monkeypatch, ["big.bin"], None)
    with pytest.raises(errors.StorageError) as caught:
        storage.remove_path(folder)
    message = str(caught.value)
    assert f"could not delete {folder} (" in message
    assert "big.bin is open)" in message
    assert "another hcs-sandbox command such as cp" in message


def test_a_failed_creates_rollback_waits_once_for_all_its_files(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, sim: object
) -> None:
    """RV34 #2: the rollback's deletions share one wait (10 s in all, not 10 s per undo
    step: three steps waited 30 s before)."""
    sim.inject("HcsCreateComputeSystem", where="result")  # type: ignore[attr-defined]
    hold = Hold(monkeypatch, DISKS, None)
    with pytest.raises(errors.HcsError, match="injected fault"):
        Sandbox.create(SandboxSpec(name="c3"))
    assert sum(hold.sleeps) == pytest.approx(storage.HELD_RETRY_SECONDS)
    hold.release()
    assert prune().failures == []
    world.assert_nothing_left()


def test_a_ctrl_c_in_a_rollback_pause_ends_the_waiting(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, sim: object
) -> None:
    """RV34 #2: after a Ctrl+C in a pause, the other undo steps get one attempt each, no
    more waiting (it took three Ctrl+C to end the rollback before)."""
    sleeps: list[float] = []

    def interrupt_first(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 1:
            raise KeyboardInterrupt

    sim.inject("HcsCreateComputeSystem", where="result")  # type: ignore[attr-defined]
    hold = Hold(monkeypatch, DISKS, None, on_sleep=interrupt_first)
    with pytest.raises(errors.HcsError, match="injected fault"):
        Sandbox.create(SandboxSpec(name="c4"))
    assert sleeps == [0.05]
    hold.release()
    assert prune().failures == []
    world.assert_nothing_left()


def test_prune_waits_once_for_all_orphans(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """RV34 #3: prune's orphan files share one wait (10 s per orphan before)."""
    sandboxes = Path(world.state) / "sandboxes"
    for name in ("a", "b", "c"):
        orphan = sandboxes / f"00000000-0000-4000-8000-00000000000{ord(name) - 96}"
        orphan.mkdir(parents=True)
        (orphan / f"{name}.bin").write_bytes(b"x")
    hold = Hold(monkeypatch, ["a.bin", "b.bin", "c.bin"], None)
    report = prune()
    assert len(report.failures) == 3, report.failures
    assert sum(hold.sleeps) == pytest.approx(storage.HELD_RETRY_SECONDS)
    hold.release()
    assert prune().failures == []


# ------------------------------------------------------------------ review RV36


def test_prune_waits_once_for_all_stale_records(
    world: Inspector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RV36 #1: a prune's records share its one wait too (10 s per record before)."""
    from hcs_sandbox.sandbox.store import open_store

    hold = Hold(monkeypatch, ["sandbox.vhdx"], None)
    for name in ("e1", "e2", "e3"):
        sb = Sandbox.create(SandboxSpec(name=name))
        sb.start()
        with pytest.raises(errors.StorageError):
            sb.remove(force=True)
    with open_store(world.state) as store:
        for record in store.list(all=True, kind=None):
            store.update(record.id, owner_pid=0)
    hold.sleeps.clear()
    report = prune()
    assert len(report.failures) == 3, report.failures
    assert sum(hold.sleeps) == pytest.approx(storage.HELD_RETRY_SECONDS)
    hold.release()
    assert prune().failures == []
    world.assert_nothing_left()


def test_a_ctrl_c_in_any_undo_step_ends_the_rollbacks_waiting(
    world: Inspector, monkeypatch: pytest.MonkeyPatch, sim: object
) -> None:
    """RV36 #2: a Ctrl+C in an undo step that is not a pause (the endpoint's delete here)
    also leaves the deletions after it one attempt each (they waited 10 s before)."""
    from hcs_sandbox.sandbox import network

    delete_endpoint = network.delete_endpoint
    interrupted: list[str] = []

    def interrupting(endpoint_id: str) -> bool:
        if not interrupted:
            interrupted.append(endpoint_id)
            raise KeyboardInterrupt
        return delete_endpoint(endpoint_id)

    monkeypatch.setattr(network, "delete_endpoint", interrupting)
    sim.inject("HcsCreateComputeSystem", where="result")  # type: ignore[attr-defined]
    hold = Hold(monkeypatch, DISKS, None)
    with pytest.raises(errors.HcsError, match="injected fault"):
        Sandbox.create(SandboxSpec(name="k1", network="nat"))
    assert interrupted
    assert hold.sleeps == []
    hold.release()
    monkeypatch.setattr(network, "delete_endpoint", delete_endpoint)
    assert prune().failures == []
    world.assert_nothing_left()


# ------------------------------------------------------------------ review RV40


def test_a_folder_whose_tree_cannot_be_reached_is_not_taken_for_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RV40 #3: rmtree failing with FileNotFoundError on a path inside (too long for
    Windows) was read as "already gone": the record went, the folder stayed, exit 0."""
    import shutil

    folder = tmp_path / "sb"
    (folder / "deep").mkdir(parents=True)
    (folder / "deep" / "f").write_bytes(b"x")

    def unreachable(path: object, *args: object, **kwargs: object) -> None:
        raise FileNotFoundError(errno.ENOENT, "The system cannot find the path specified", "x")

    monkeypatch.setattr(shutil, "rmtree", unreachable)
    with pytest.raises(errors.StorageError) as caught:
        storage.remove_path(folder)
    assert folder.exists()
    assert "could not be reached" in str(caught.value)


@pytest.mark.parametrize(
    ("path", "extended"),
    [
        ("C:\\ProgramData\\hcs-sandbox\\x", "\\\\?\\C:\\ProgramData\\hcs-sandbox\\x"),
        ("C:/a/./b/../c", "\\\\?\\C:\\a\\c"),
        ("\\\\srv\\share\\x", "\\\\?\\UNC\\srv\\share\\x"),
        ("\\\\?\\C:\\x", "\\\\?\\C:\\x"),
        ("\\\\.\\C:\\x", "\\\\.\\C:\\x"),
    ],
)
def test_the_extended_length_form_on_windows(path: str, extended: str) -> None:
    assert storage.extended_path(path, windows=True) == extended
    assert storage.extended_path(path, windows=False) == path


def test_deletion_goes_through_the_extended_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RV40 #3: remove_path works on the extended-length form of the path (on Windows,
    ``\\\\?\\C:\\...``: no MAX_PATH limit whatever LongPathsEnabled says)."""
    real = tmp_path / "real"
    (real / "a").mkdir(parents=True)
    (real / "a" / "f").write_bytes(b"x")
    seen: list[str] = []

    def extended(path: str, *, windows: bool | None = None) -> str:
        seen.append(path)
        return str(real) if path == "/as/written" else path

    monkeypatch.setattr(storage, "extended_path", extended)
    assert storage.remove_path("/as/written") is True
    assert not real.exists()
    assert "/as/written" in seen


def test_files_vanishing_under_another_remover_are_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reviews RV42 #3, RV43 #3: another process deleting the same tree makes each entry
    vanish just before this one's unlink: one of two `rm -f` exited 1 though the sandbox was
    gone (three quick retries did not help: the other remover is slower than them).  Here
    every unlink finds its file already deleted by "the other process"."""
    folder = tmp_path / "sb"
    (folder / "deep").mkdir(parents=True)
    for i in range(8):
        (folder / "deep" / f"f{i}").write_bytes(b"x")
    real_unlink = os.unlink
    vanished: list[str] = []

    def other_process_first(path: object, *args: object, **kwargs: object) -> None:
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]
        vanished.append(str(path))
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))

    monkeypatch.setattr(os, "unlink", other_process_first)
    assert storage.remove_path(folder) is True
    assert not folder.exists()
    assert len(vanished) == 8


def test_the_error_after_the_retries_does_not_chain_the_first_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retries run outside the first attempt's ``except`` block: the error they end in
    carries no "During handling of the above exception" chain back to the first refusal
    (``--debug`` showed an extra traceback; review RV47)."""
    f = tmp_path / "sandbox.vmgs"
    f.write_bytes(b"x")
    Hold(monkeypatch, ["sandbox.vmgs"], None)
    with pytest.raises(errors.StorageError) as caught:
        storage.remove_path(f)
    held = caught.value.__cause__ or caught.value.__context__
    assert isinstance(held, OSError)
    assert held.__context__ is None
    with pytest.raises(OSError, match="being used by another process") as direct:
        storage.retry_while_held(lambda: os.unlink(f))
    assert direct.value.__context__ is None
